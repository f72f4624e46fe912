//! `setup`: flags into answers, a terminal if there is one, then the wizard.

use crate::cli::{SetupArgs, SetupClientArgs, SetupRole};
use crate::config::Config;
use crate::error::Error;
use crate::hosts;
use crate::names::{DeviceId, TopicFilter};
use crate::output::Outcome;
use crate::setup::{self, ClientAnswers, Prompter, Terminal};

pub fn run(config: &Config, mut args: SetupArgs) -> Result<Outcome, Error> {
    setup::exit_130_on_ctrl_c();
    let mut terminal = Terminal::open();
    let role = match args.role.take() {
        Some(role) => role,
        None => {
            let Some(terminal) = terminal.as_mut() else {
                return Err(Error::usage(
                    "setup needs a role, and there is no terminal to ask for it",
                    Some("run `wott-mqtt setup client --server ID --ip IP --yes`".to_string()),
                ));
            };
            let roles = ["client: connect this device to a broker".to_string()];
            match terminal.select("What is this device's role?", &roles, 0)? {
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
        SetupRole::Client(client_args) => client(config, &args, client_args, terminal),
    }
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
    let (report, failure) = setup::client(config, answers, prompter)?;
    Ok(match failure {
        Some(error) => Outcome::report(report).with_error(error.into()),
        None => Outcome::report(report),
    })
}
