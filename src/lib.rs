//! wott-mqtt: secure MQTT between devices with WoTT certificates.
//!
//! The library behind the `wott-mqtt` binary. The modules are layered in the
//! order a command flows through them, and imports only point down
//! (ARCHITECTURE.md has the map):
//!
//! 1. `cli` (clap definitions) and `commands` (arguments in, printing out);
//! 2. `tutorial`: the tutorial's flows, `setup` and `demo`;
//! 3. `error`: the one error type that knows every domain's;
//! 4. `doctor`, which audits through all the domains below it;
//! 5. the domains: `identity`, `acl`, `hosts`, `check`, `broker`;
//! 6. the ground: `files`, `lines`, `names`, `output`, `tls`, `runtime`,
//!    `diagnose`, `exit_code`.
//!
//! Nothing prints with `print!`/`eprintln!` and friends: they panic on a
//! closed stdout or stderr. Output goes through `output`.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod acl;
pub(crate) mod broker;
pub(crate) mod check;
pub(crate) mod cli;
pub(crate) mod commands;
pub(crate) mod diagnose;
pub(crate) mod doctor;
pub(crate) mod error;
pub(crate) mod exit_code;
pub mod files;
pub mod hosts;
pub mod identity;
pub mod lines;
pub mod names;
pub(crate) mod output;
pub(crate) mod runtime;
pub(crate) mod tls;
pub(crate) mod tutorial;

pub use exit_code::ExitCode;

/// Parses the process's command line and runs it; a command line clap
/// refuses is reported by `commands::parse` (as JSON with `--json`).
pub fn main() -> ExitCode {
    use clap::Parser;
    match cli::Cli::try_parse() {
        Ok(cli) => run(cli),
        Err(e) => commands::refused(e),
    }
}

/// Runs one parsed command line and returns the process exit code.
pub fn run(cli: cli::Cli) -> ExitCode {
    let config = commands::Config::from_args(&cli.global);
    let output = config.output.clone();
    files::on_waiting(move |line| output.note(line));
    let result = commands::run(&config, cli.command);
    config.output.finish(result)
}
