//! `setup`: flags into answers, a terminal if there is one, then the wizard
//! (`tutorial::setup`), and its report printed.

use std::fmt::Write as _;
use std::io::IsTerminal;

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, Select};
use serde::Serialize;

use super::Config;
use crate::cli::{SetupArgs, SetupClientArgs, SetupRole, SetupServerArgs};
use crate::error::Error;
use crate::hosts;
use crate::names::{DeviceId, TopicFilter};
use crate::output::{Human, Outcome, Paint, sanitize};
use crate::tutorial::setup::server::WatchSetup;
use crate::tutorial::setup::{
    self, ClientAnswers, ClientReport, Grant, Prompter, ServerAnswers, ServerReport,
};

pub fn run(config: &Config, mut args: SetupArgs) -> Result<Outcome, Error> {
    crate::runtime::catch_interrupts()?;
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
        .map(|a| Grant::parse(a, config.id_policy))
        .collect::<Result<Vec<_>, _>>()?;
    let broker = &setup.broker;
    let requested = crate::broker::record::Requested {
        name: broker.name.clone(),
        image: broker.image.clone(),
        mosquitto: super::server::non_empty(broker.mosquitto.clone()),
        bind: broker.bind,
        port: broker.port,
        ..Default::default()
    };
    let recorded = crate::runtime::block_on(crate::broker::record::recall(&config.server_dir))??;
    let up = super::server::up_options(recorded, requested, args.run);
    let answers = ServerAnswers {
        grants,
        up,
        yes: setup.yes,
        watch: !args.no_watch,
        id_policy: config.id_policy,
    };
    let prompter = terminal.as_mut().map(|t| t as &mut dyn Prompter);
    Ok(Outcome::report(ServerView(setup::server::server(
        &config.context(),
        answers,
        prompter,
    )?)))
}

fn client(
    config: &Config,
    setup: &SetupArgs,
    args: SetupClientArgs,
    mut terminal: Option<Terminal>,
) -> Result<Outcome, Error> {
    if setup.broker.name.is_some() || setup.broker.bind.is_some() {
        return Err(Error::usage(
            "--name and --bind set up the broker: they belong to `setup server`",
            Some("on a client, pass --server, --ip and --port (the broker's port)".to_string()),
        ));
    }
    let answers = ClientAnswers {
        server: args
            .server
            .as_deref()
            .map(|s| DeviceId::typed(s, config.id_policy))
            .transpose()?,
        ip: args.ip.as_deref().map(hosts::parse_server_ip).transpose()?,
        port: setup.broker.port,
        topic: args.topic.as_deref().map(TopicFilter::new).transpose()?,
        hosts_file: setup.file.path(),
        yes: setup.yes,
        roundtrip: args.roundtrip,
        dry_run: args.dry_run,
        id_policy: config.id_policy,
    };
    let prompter = terminal.as_mut().map(|t| t as &mut dyn Prompter);
    let (report, failure) = setup::client::client(&config.context(), answers, prompter)?;
    Ok(match failure {
        Some(error) => Outcome::report(ClientView(report)).with_error(error),
        None => Outcome::report(ClientView(report)),
    })
}

/// dialoguer on stderr (stdout stays for the result).
pub struct Terminal {
    theme: ColorfulTheme,
    term: console::Term,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Terminal")
    }
}

impl Terminal {
    /// The terminal, when stdin and stderr both are one.
    pub fn open() -> Option<Terminal> {
        (std::io::stdin().is_terminal() && std::io::stderr().is_terminal()).then(|| Terminal {
            theme: ColorfulTheme::default(),
            term: console::Term::stderr(),
        })
    }
}

fn prompt_error(e: dialoguer::Error) -> Error {
    let dialoguer::Error::IO(io) = e;
    if io.kind() == std::io::ErrorKind::Interrupted {
        // Ctrl-C in a prompt: leave the terminal as it was (`Output::finish`
        // ends the line, as for every interrupted command).
        let _ = console::Term::stderr().show_cursor();
        Error::Interrupted
    } else {
        Error::usage(
            format!("cannot ask on the terminal: {io}"),
            Some("answer with flags instead: wott-mqtt setup client --help".to_string()),
        )
    }
}

impl Prompter for Terminal {
    fn select(
        &mut self,
        prompt: &str,
        items: &[String],
        default: usize,
    ) -> Result<Option<usize>, Error> {
        Select::with_theme(&self.theme)
            .with_prompt(prompt)
            .items(items)
            .default(default)
            .interact_on_opt(&self.term)
            .map_err(prompt_error)
    }

    fn input(
        &mut self,
        prompt: &str,
        default: Option<&str>,
        validate: &dyn Fn(&str) -> Result<(), String>,
    ) -> Result<String, Error> {
        let mut input = Input::<String>::with_theme(&self.theme)
            .with_prompt(prompt)
            .validate_with(|value: &String| validate(value.trim()));
        if let Some(default) = default {
            // An empty default ("empty: none") is accepted, not shown as "()".
            input = input
                .default(default.to_string())
                .show_default(!default.is_empty());
        }
        input
            .interact_text_on(&self.term)
            .map(|s| s.trim().to_string())
            .map_err(prompt_error)
    }

    fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool, Error> {
        Confirm::with_theme(&self.theme)
            .with_prompt(prompt)
            .default(default)
            .wait_for_newline(true)
            .interact_on(&self.term)
            .map_err(prompt_error)
    }

    fn say(&mut self, text: &str) {
        let _ = self.term.write_line(text);
    }
}

/// `setup client`'s report, printed.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct ClientView(ClientReport);

impl Human for ClientView {
    fn human(&self, p: Paint) -> String {
        let r = &self.0;
        let mut s = String::new();
        if r.dry_run {
            s.push_str(&super::hosts::show_diff(
                r.diff.as_deref().unwrap_or_default(),
            ));
            let _ = writeln!(
                s,
                "{} nothing was written and nothing contacted; to probe {}:{} now, by its IP:",
                p.good("Dry run:"),
                sanitize(&r.server),
                r.port
            );
            let _ = writeln!(s, "  {}", r.probe.as_deref().unwrap_or_default());
            return s;
        }
        let ok = r.check.as_ref().is_some_and(|c| c.failure().is_none());
        let _ = writeln!(
            s,
            "{} client of {}:{} (topic {})",
            if ok {
                p.good("Set up:")
            } else {
                p.bad("Not working yet:")
            },
            sanitize(&r.server),
            r.port,
            sanitize(&r.topic)
        );
        if ok {
            let _ = writeln!(s, "Next, on this device:");
            for line in &r.next {
                let _ = writeln!(s, "  {line}");
            }
        }
        s
    }
}

/// `setup server`'s report, printed.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct ServerView(ServerReport);

impl Human for ServerView {
    fn human(&self, p: Paint) -> String {
        let r = &self.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {} serves MQTT over mTLS on port {}{}",
            p.good(if r.server.dry_run {
                "Dry run:"
            } else {
                "Set up:"
            }),
            sanitize(&r.device_id),
            r.server.port,
            if r.reloaded.is_empty() {
                String::new()
            } else {
                format!("; {} re-read {}", r.reloaded.join(", "), r.acl_file)
            }
        );
        let _ = writeln!(s, "Next:");
        for line in &r.next {
            let _ = writeln!(s, "  {line}");
        }
        match &r.watch {
            WatchSetup::Installed { unit, .. } => {
                let _ = writeln!(s, "Renewals: {unit} applies them as the agent writes them.");
            }
            WatchSetup::NoSystemd { command } => {
                let _ = writeln!(
                    s,
                    "Renewals: the agent renews the certificate weekly; run `{command}` under this machine's \
                     supervisor to apply each renewal as it comes."
                );
            }
            WatchSetup::Declined { .. } => {}
        }
        s
    }
}
