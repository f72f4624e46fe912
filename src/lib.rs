//! wott-mqtt: secure MQTT between devices with WoTT certificates.
//!
//! The library behind the `wott-mqtt` binary. Each concern has one home:
//! `identity` (the agent's certificate), `files` (locked atomic edits),
//! `acl` (Mosquitto's permissions.acl: lossless edits and its exact rules),
//! `hosts` (lossless /etc/hosts edits), `names` (validated device IDs and topics), `pki` (throwaway identities for
//! `demo` and the tests), `demo` (the tutorial on one machine, from those
//! same pieces), `output` (text, JSON, colour), and `commands`, which
//! turns the parsed command line into calls on the rest.

pub mod acl;
pub mod broker;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod error;
pub mod exit_code;
pub mod files;
pub mod hosts;
pub mod identity;
pub mod names;
pub mod output;
pub mod pki;
pub mod runtime;
pub mod setup;
pub mod tls;

pub use error::{Error, Result};
pub use exit_code::ExitCode;

/// `0.1.0 (abc123def456)`: the crate version and the git commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("WOTT_MQTT_GIT_COMMIT"),
    ")"
);

/// Runs one parsed command line and returns the process exit code.
pub fn run(cli: cli::Cli) -> ExitCode {
    let config = config::Config::from_args(&cli.global);
    let result = commands::run(&config, cli.command);
    config.output.finish(result)
}
