//! wott-mqtt: secure MQTT between devices with WoTT certificates.
//!
//! The library behind the `wott-mqtt` binary. The modules are layered in the
//! order a command flows through them, and imports only point down
//! (ARCHITECTURE.md has the map):
//!
//! 1. `cli` (clap definitions) and `commands` (arguments in, printing out);
//! 2. `tutorial`: the tutorial's flows, `setup` and `demo`;
//! 3. `error`: the one error type that knows every domain's;
//! 4. the domains: `identity`, `acl`, `hosts`, `check`, `broker`;
//! 5. the ground: `files`, `lines`, `names`, `output`, `tls`, `runtime`,
//!    `diagnose`, `exit_code`.

pub mod acl;
pub(crate) mod broker;
pub(crate) mod check;
pub(crate) mod cli;
pub(crate) mod commands;
pub(crate) mod diagnose;
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

use error::Error;

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
    let config = commands::Config::from_args(&cli.global);
    let output = config.output.clone();
    files::on_waiting(move |line| output.note(line));
    let result = commands::run(&config, cli.command);
    config.output.finish(result)
}
