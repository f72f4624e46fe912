//! `setup`: flags into answers, a terminal if there is one, then the wizard.

use super::Config;
use crate::cli::{SetupArgs, SetupClientArgs, SetupRole, SetupServerArgs};
use crate::error::Error;
use crate::hosts;
use crate::names::{DeviceId, TopicFilter};
use crate::output::Outcome;
use crate::tutorial::setup::{self, ClientAnswers, Grant, Prompter, ServerAnswers, Terminal};

pub fn run(config: &Config, mut args: SetupArgs) -> Result<Outcome, Error> {
    setup::exit_130_on_ctrl_c();
    let mut terminal = Terminal::open();
    let role = match args.role.take() {
        Some(role) => role,
        None => {
            let Some(terminal) = terminal.as_mut() else {
                return Err(Error::usage(
                    "setup needs a role, and there is no terminal to ask for it",
                    Some(
                        "run `wott-mqtt setup server --allow CLIENT_ID --yes` or \
                         `wott-mqtt setup client --server ID --ip IP --yes`"
                            .to_string(),
                    ),
                ));
            };
            let roles = [
                "server: run the Mosquitto broker on this device".to_string(),
                "client: connect this device to a broker".to_string(),
            ];
            match terminal.select("What is this device's role?", &roles, 0)? {
                Some(0) => SetupRole::Server(server_defaults()),
                Some(_) => SetupRole::Client(SetupClientArgs::default()),
                None => {
                    return Err(Error::usage(
                        "setup cancelled; nothing was changed",
                        None::<String>,
                    ));
                }
            }
        }
    };
    match role {
        SetupRole::Server(server_args) => server(config, &args, server_args, terminal),
        SetupRole::Client(client_args) => client(config, &args, client_args, terminal),
    }
}

/// `setup server` with no flags, for the role chosen at the prompt.
fn server_defaults() -> SetupServerArgs {
    use clap::FromArgMatches;
    let matches = <SetupServerArgs as clap::Args>::augment_args(clap::Command::new("server"))
        .get_matches_from(["server"]);
    SetupServerArgs::from_arg_matches(&matches).expect("the defaults parse")
}

fn server(
    config: &Config,
    setup: &SetupArgs,
    args: SetupServerArgs,
    mut terminal: Option<Terminal>,
) -> Result<Outcome, Error> {
    let grants = args
        .allow
        .iter()
        .map(|a| Grant::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    let answers = ServerAnswers {
        grants,
        up: super::server::up_options(args.up),
        yes: setup.yes,
    };
    let prompter = terminal.as_mut().map(|t| t as &mut dyn Prompter);
    Ok(Outcome::report(setup::server(
        &config.context(),
        answers,
        prompter,
    )?))
}

fn client(
    config: &Config,
    setup: &SetupArgs,
    args: SetupClientArgs,
    mut terminal: Option<Terminal>,
) -> Result<Outcome, Error> {
    let answers = ClientAnswers {
        server: args.server.as_deref().map(DeviceId::new).transpose()?,
        ip: args.ip.as_deref().map(hosts::parse_server_ip).transpose()?,
        port: args.port,
        topic: args.topic.as_deref().map(TopicFilter::new).transpose()?,
        hosts_file: setup.file.path(),
        yes: setup.yes,
        roundtrip: args.roundtrip,
    };
    let prompter = terminal.as_mut().map(|t| t as &mut dyn Prompter);
    let (report, failure) = setup::client(&config.context(), answers, prompter)?;
    Ok(match failure {
        Some(error) => Outcome::report(report).with_error(error),
        None => Outcome::report(report),
    })
}
