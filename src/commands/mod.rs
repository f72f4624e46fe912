//! Glue between the command line and the library: each command turns its
//! clap arguments into typed values, calls the domain modules, and returns an
//! [`Outcome`] for `output` to print.

mod acl;
mod check;
mod config;
mod demo;
mod docs;
mod doctor;
mod hosts;
mod parse;
mod server;
mod setup;
mod whoami;

pub use config::Config;
pub use parse::refused;

use crate::cli::Command;
use crate::error::Error;
use crate::output::Outcome;

/// Runs one command.
pub fn run(config: &Config, command: Command) -> Result<Outcome, Error> {
    match command {
        Command::Whoami(args) => whoami::run(config, &args),
        Command::Hosts(command) => hosts::run(config, command),
        Command::Check(args) => check::run(config, &args),
        Command::Setup(args) => setup::run(config, args),
        Command::Completions(args) => docs::completions(&args),
        Command::Man(args) => docs::man(&args),
        Command::Acl(args) => acl::run(config, args),
        Command::Server(command) => server::run(config, command),
        Command::Demo(args) => demo::run(config, args),
        Command::Doctor(args) => doctor::run(config, &args),
    }
}
