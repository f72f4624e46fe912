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

/// Parses the process's command line and runs it. Clap reports its own
/// usage errors, except one: for an argument that is not UTF-8 it does not
/// say which, so that error is named here, with its fix, like any other.
pub fn main() -> ExitCode {
    use clap::Parser;
    match cli::Cli::try_parse() {
        Ok(cli) => run(cli),
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidUtf8 => {
            let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
            let json = args.iter().any(|a| a == "--json");
            let bad: Vec<String> = args
                .iter()
                .filter(|a| a.to_str().is_none())
                .map(|a| escape_bytes(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())))
                .collect();
            let output = output::Output::new(json, false, 0, output::ColorChoice::Auto);
            output.finish(Err(Error::usage(
                format!("the argument \"{}\" is not UTF-8 text", bad.join("\", \"")),
                "device IDs, topics and client IDs are UTF-8; re-type the value, or convert it \
                 (e.g. with `iconv -t UTF-8`)"
                    .to_string(),
            )))
        }
        Err(e) => e.exit(),
    }
}

/// Bytes as text, invalid UTF-8 shown as `\xNN`.
fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Runs one parsed command line and returns the process exit code.
pub fn run(cli: cli::Cli) -> ExitCode {
    let config = config::Config::from_args(&cli.global);
    let result = commands::run(&config, cli.command);
    config.output.finish(result)
}
