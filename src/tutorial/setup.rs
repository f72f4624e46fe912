//! `setup`: the tutorial as a wizard, for the server role and the client role.
//!
//! The wizard is a thin layer of questions over the same library functions
//! the commands call (`hosts::add`, `check::check`, `acl`, `broker`): it
//! never implements a step a second time. Every question has a flag, so
//! `setup client --server … --ip … --yes` runs in CI or Ansible with no
//! terminal. Without a terminal, a missing answer is a usage error (exit 2)
//! that lists the flags to pass, raised before anything is changed: the
//! wizard never hangs waiting for input nobody can give.
//!
//! Questions go through the [`Prompter`] trait: [`Terminal`] asks with
//! dialoguer on stderr, and tests drive the real binary through a
//! pseudo-terminal. Ctrl-C at any point exits 130; files are only ever
//! replaced atomically (`files`), so none is left half-written.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, Select};
use serde::Serialize;

use crate::acl::{self, Access};
use crate::broker::{self, Context, UpOptions, UpReport};
use crate::check::{self, Host, Plan, Subscription, Target, Until};
use crate::error::Error;
use crate::hosts;
use crate::identity::{Inspection, Validity};
use crate::names::{DeviceId, TopicFilter};
use crate::output::{Human, Paint, Report, human_duration, sanitize};

/// The port the tutorial's broker listens on.
pub const DEFAULT_PORT: u16 = 8883;
/// The port the tutorial's client example uses by mistake.
pub const TUTORIAL_SLIP_PORT: u16 = 8333;
/// The tutorial's topic.
pub const DEFAULT_TOPIC: &str = "wott/temperature";

/// How long the client role's check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks the user. [`Terminal`] is the real one.
pub trait Prompter {
    /// One of `items`; `None` when the user backs out (Esc).
    fn select(
        &mut self,
        prompt: &str,
        items: &[String],
        default: usize,
    ) -> Result<Option<usize>, Error>;
    /// A line of text, asked again until `validate` accepts it.
    fn input(
        &mut self,
        prompt: &str,
        default: Option<&str>,
        validate: &dyn Fn(&str) -> Result<(), String>,
    ) -> Result<String, Error>;
    fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool, Error>;
    /// A line of progress or explanation.
    fn say(&mut self, text: &str);
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
            input = input.default(default.to_string());
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

/// Makes Ctrl-C end the wizard with exit code 130 and a visible cursor, at
/// any point: in a prompt, during the check, or between steps.
pub fn exit_130_on_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        let term = console::Term::stderr();
        let _ = term.show_cursor();
        let _ = term.write_line("");
        std::process::exit(130);
    });
}

/// Answers for the client role, from flags; missing ones are asked.
#[derive(Debug, Clone, Default)]
pub struct ClientAnswers {
    pub server: Option<DeviceId>,
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
    pub topic: Option<TopicFilter>,
    pub hosts_file: PathBuf,
    /// Proceed without asking for confirmation.
    pub yes: bool,
    /// Publish a probe and wait for it, proving read and write access.
    pub roundtrip: bool,
}

/// What `setup client` did.
#[derive(Debug, Serialize)]
pub struct ClientReport {
    pub role: &'static str,
    pub server: String,
    pub ip: IpAddr,
    pub port: u16,
    pub topic: String,
    pub hosts_file: String,
    /// Whether the hosts file was changed.
    pub changed: bool,
    pub check: check::Report,
    /// The commands that run the tutorial's client from here.
    pub next: Vec<String>,
}

/// The flags for missing answers, when there is no terminal to ask.
fn missing_flags(answers: &ClientAnswers) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if answers.server.is_none() {
        missing.push("--server SERVER_ID");
    }
    if answers.ip.is_none() {
        missing.push("--ip IP");
    }
    if !answers.yes {
        missing.push("--yes");
    }
    missing
}

fn no_terminal(role: &str, missing: &[&str]) -> Error {
    Error::usage(
        format!(
            "setup {role} needs answers but there is no terminal to ask: pass {}",
            missing.join(", ")
        ),
        Some(format!(
            "see `wott-mqtt setup {role} --help`; every question has a flag"
        )),
    )
}

/// The client role: map the server's device ID to its IP in the hosts file,
/// then probe the broker with this device's identity. Asks for what the
/// flags leave open when `prompter` is a terminal; otherwise everything must
/// be given.
pub fn client(
    ctx: &Context<'_>,
    mut answers: ClientAnswers,
    prompter: Option<&mut dyn Prompter>,
) -> Result<(ClientReport, Option<check::CheckError>), Error> {
    let Some(prompter) = prompter else {
        let missing = missing_flags(&answers);
        if !missing.is_empty() {
            return Err(no_terminal("client", &missing));
        }
        healthy_identity(ctx, None)?;
        return client_once(ctx, &answers, None);
    };
    healthy_identity(ctx, Some(&mut *prompter))?;

    let use_defaults = answers.yes;
    ask_client(
        prompter,
        &mut answers,
        ctx.output.paint_stderr(),
        use_defaults,
    )?;
    if !answers.yes {
        prompter.say(&client_summary(&answers));
        if !prompter.confirm("Write the hosts entry and check the connection?", true)? {
            return Err(Error::usage(
                "setup cancelled; nothing was changed",
                None::<String>,
            ));
        }
    }
    loop {
        let (report, failure) = client_once(ctx, &answers, Some(&mut *prompter))?;
        let Some(error) = failure else {
            return Ok((report, None));
        };
        let paint = ctx.output.paint_stderr();
        prompter.say(&format!(
            "{} {}",
            paint.bad("✗"),
            sanitize(&error.to_string())
        ));
        if let Some(hint) = crate::diagnose::Diagnose::hint(&error) {
            prompter.say(&format!("  {} {}", paint.bold("hint:"), sanitize(&hint)));
        }
        let choices = [
            "Retry the check".to_string(),
            "Change the server ID".to_string(),
            "Change the server IP".to_string(),
            "Change the port".to_string(),
            "Change the topic".to_string(),
            "Stop here".to_string(),
        ];
        match prompter.select("What now?", &choices, 0)? {
            Some(0) => {}
            Some(1) => answers.server = None,
            Some(2) => answers.ip = None,
            Some(3) => answers.port = None,
            Some(4) => answers.topic = None,
            _ => return Ok((report, Some(error))),
        }
        ask_client(prompter, &mut answers, paint, false)?;
    }
}

fn client_summary(answers: &ClientAnswers) -> String {
    let server = answers
        .server
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let ip = answers.ip.map(|ip| ip.to_string()).unwrap_or_default();
    format!(
        "This will add `{ip} {server}` to {} and connect to {server}:{} as this device, subscribing to {}.",
        answers.hosts_file.display(),
        answers.port.unwrap_or(DEFAULT_PORT),
        answers.topic.as_ref().map_or(DEFAULT_TOPIC, |t| t.as_str()),
    )
}

/// Asks every client question whose answer is still open; with
/// `use_defaults`, the port and topic take their defaults unasked.
fn ask_client(
    p: &mut dyn Prompter,
    answers: &mut ClientAnswers,
    paint: Paint,
    use_defaults: bool,
) -> Result<(), Error> {
    if use_defaults {
        answers.port.get_or_insert(DEFAULT_PORT);
        if answers.topic.is_none() {
            answers.topic = Some(TopicFilter::new(DEFAULT_TOPIC)?);
        }
    }
    if answers.server.is_none() {
        let value = p.input(
            "Server device ID (`wott-mqtt whoami` on the server prints it)",
            None,
            &|s| DeviceId::new(s).map(drop).map_err(|e| e.to_string()),
        )?;
        answers.server = Some(DeviceId::new(&value)?);
    }
    if answers.ip.is_none() {
        let value = p.input("Server IP address", None, &|s| {
            hosts::parse_server_ip(std::ffi::OsStr::new(s))
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        answers.ip = Some(hosts::parse_server_ip(std::ffi::OsStr::new(&value))?);
    }
    while answers.port.is_none() {
        let value = p.input("Broker port", Some(&DEFAULT_PORT.to_string()), &|s| {
            s.parse::<u16>()
                .ok()
                .filter(|&port| port > 0)
                .map(drop)
                .ok_or_else(|| format!("{s:?} is not a port number (1-65535)"))
        })?;
        let port: u16 = value
            .parse()
            .map_err(|_| Error::usage(format!("{value:?} is not a port"), None::<String>))?;
        if port == TUTORIAL_SLIP_PORT {
            p.say(&format!(
                "{} {}",
                paint.warn("warning:"),
                port_slip_warning()
            ));
            if !p.confirm(&format!("Use port {port} anyway?"), false)? {
                continue;
            }
        }
        answers.port = Some(port);
    }
    if answers.topic.is_none() {
        let value = p.input("Topic to subscribe to", Some(DEFAULT_TOPIC), &|s| {
            TopicFilter::new(s).map(drop).map_err(|e| e.to_string())
        })?;
        answers.topic = Some(TopicFilter::new(&value)?);
    }
    Ok(())
}

/// Why 8333 is suspicious.
pub fn port_slip_warning() -> String {
    format!(
        "the tutorial's broker listens on {DEFAULT_PORT}; {TUTORIAL_SLIP_PORT} comes from a slip in its client example"
    )
}

/// One pass of the client role with settled answers: the hosts entry, then the check.
fn client_once(
    ctx: &Context<'_>,
    answers: &ClientAnswers,
    mut prompter: Option<&mut dyn Prompter>,
) -> Result<(ClientReport, Option<check::CheckError>), Error> {
    let (Some(server), Some(ip)) = (answers.server.clone(), answers.ip) else {
        return Err(no_terminal("client", &missing_flags(answers)));
    };
    let port = answers.port.unwrap_or(DEFAULT_PORT);
    let topic = answers
        .topic
        .clone()
        .map_or_else(|| TopicFilter::new(DEFAULT_TOPIC), Ok)?;
    let mut say = |text: &str| match prompter.as_deref_mut() {
        Some(p) => p.say(text),
        None => ctx.output.note(text),
    };
    if port == TUTORIAL_SLIP_PORT && answers.yes {
        ctx.output.warn(&port_slip_warning());
    }

    let change = hosts::add(&answers.hosts_file, &server, ip, false)?;
    let paint = ctx.output.paint_stderr();
    say(&format!(
        "{} hosts     {} maps {server} to {ip}{}",
        paint.mark(true),
        answers.hosts_file.display(),
        if change.edit.changed {
            " (written)"
        } else {
            " (already there)"
        }
    ));

    // Through the system resolver when we wrote the system's hosts file, as
    // the tutorial's client will connect; otherwise dial the IP directly and
    // still verify the server ID.
    let system = hosts::is_system_hosts_file(&answers.hosts_file);
    let target = Target {
        server: Host::parse(server.as_str())?,
        port,
        connect_to: (!system).then_some(ip),
        hosts_file: Some(answers.hosts_file.clone()),
    };
    let until = if answers.roundtrip {
        let name = crate::names::TopicName::new(topic.as_str()).map_err(|e| {
            Error::usage(
                format!("--roundtrip publishes to the topic, so it cannot be a filter: {e}"),
                Some("give a topic without + or #".to_string()),
            )
        })?;
        Until::Message {
            subscription: Subscription {
                filter: topic.clone(),
                qos: rumqttc::QoS::AtLeastOnce,
            },
            expect: check::Expect::Roundtrip(name),
            within: Duration::from_secs(5),
        }
    } else {
        Until::Subscribe(Subscription {
            filter: topic.clone(),
            qos: rumqttc::QoS::AtLeastOnce,
        })
    };
    let plan = Plan::new(until, CHECK_TIMEOUT);
    let report = crate::runtime::block_on(check::check(ctx.cert_dir, &target, &plan))?;
    for line in Report::human(&report, paint).lines() {
        say(line);
    }
    let failure = report.failure().cloned();
    let next = vec![
        format!(
            "MQTT_SERVER={server} MQTT_PORT={port} MQTT_TOPIC={topic} python3 client.py   # the tutorial's Paho client"
        ),
        format!(
            "sudo wott-mqtt check --server {server} --port {port} --topic {topic} --wait 30   # wait for a message"
        ),
    ];
    Ok((
        ClientReport {
            role: "client",
            server: server.to_string(),
            ip,
            port,
            topic: topic.to_string(),
            hosts_file: answers.hosts_file.display().to_string(),
            changed: change.edit.changed,
            check: report,
            next,
        },
        failure,
    ))
}

impl Human for ClientReport {
    fn human(&self, p: Paint) -> String {
        let mut s = String::new();
        let ok = self.check.failure().is_none();
        let _ = writeln!(
            s,
            "{} client of {}:{} (topic {})",
            if ok {
                p.good("Set up:")
            } else {
                p.bad("Not working yet:")
            },
            sanitize(&self.server),
            self.port,
            sanitize(&self.topic)
        );
        if ok {
            let _ = writeln!(s, "Next, on this device:");
            for line in &self.next {
                let _ = writeln!(s, "  {line}");
            }
        }
        s
    }
}

// ------------------------------------------------------------------ server

/// One `--allow ID[:TOPIC[:ACCESS]]`: a client device and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub device: DeviceId,
    pub topic: TopicFilter,
    pub access: Access,
}

impl Grant {
    /// The wizard's default access: the tutorial's client only subscribes.
    pub const DEFAULT_ACCESS: Access = Access::Read;

    /// Parses `ID[:TOPIC[:ACCESS]]`. A topic may itself contain `:`; only a
    /// last part that is an access word is read as the access.
    pub fn parse(value: &str) -> Result<Grant, Error> {
        let (id, rest) = value.split_once(':').unwrap_or((value, ""));
        let device = DeviceId::new(id)?;
        let (topic, access) = match rest.rsplit_once(':') {
            Some((topic, word)) if access_word(word).is_some() => (topic, access_word(word)),
            _ => match access_word(rest) {
                Some(access) if !rest.is_empty() => ("", Some(access)),
                _ => (rest, None),
            },
        };
        let topic = if topic.is_empty() {
            DEFAULT_TOPIC
        } else {
            topic
        };
        Ok(Grant {
            device,
            topic: TopicFilter::new(topic)?,
            access: access.unwrap_or(Self::DEFAULT_ACCESS),
        })
    }
}

fn access_word(word: &str) -> Option<Access> {
    match word {
        "read" => Some(Access::Read),
        "write" => Some(Access::Write),
        "readwrite" => Some(Access::ReadWrite),
        _ => None,
    }
}

/// Answers for the server role.
#[derive(Debug, Clone)]
pub struct ServerAnswers {
    /// From `--allow`; when empty on a terminal, the wizard asks.
    pub grants: Vec<Grant>,
    pub up: UpOptions,
    pub yes: bool,
}

/// What one grant did to permissions.acl.
#[derive(Debug, Serialize)]
pub struct GrantReport {
    pub device_id: String,
    pub topic: String,
    pub access: Access,
    pub changed: bool,
}

/// What `setup server` did.
#[derive(Debug, Serialize)]
pub struct ServerReport {
    pub role: &'static str,
    pub device_id: String,
    pub acl_file: String,
    pub grants: Vec<GrantReport>,
    /// Managed broker containers that re-read permissions.acl (SIGHUP).
    pub reloaded: Vec<String>,
    pub server: UpReport,
    /// Whether anything changed: the ACL, the server dir or the container.
    pub changed: bool,
    /// What each client device runs next.
    pub next: Vec<String>,
}

/// The server role: show this device's identity, ask which clients to
/// grant, start the broker (`broker::up`), write the grants
/// (`acl::file::allow`) and reload it, then say what each client runs.
pub fn server(
    ctx: &Context<'_>,
    mut answers: ServerAnswers,
    prompter: Option<&mut dyn Prompter>,
) -> Result<ServerReport, Error> {
    if prompter.is_none() && !answers.yes && !answers.up.dry_run {
        return Err(no_terminal(
            "server",
            &["--yes (and --allow ID[:TOPIC[:ACCESS]] per client)"],
        ));
    }
    let paint = ctx.output.paint_stderr();
    let say_line = |prompter: &mut Option<&mut dyn Prompter>, text: &str| match prompter {
        Some(p) => p.say(text),
        None => ctx.output.note(text),
    };
    let mut prompter = prompter;
    let device_id = healthy_identity(ctx, prompter.as_deref_mut())?;

    if let Some(p) = prompter.as_deref_mut() {
        if answers.grants.is_empty() && !answers.yes {
            ask_grants(p, &mut answers.grants)?;
        }
        if !answers.yes {
            p.say(&server_summary(&answers, &device_id));
            if !p.confirm("Start the broker and write these grants?", true)? {
                return Err(Error::usage(
                    "setup cancelled; nothing was changed",
                    None::<String>,
                ));
            }
        }
    }

    let up = crate::runtime::block_on(broker::up(ctx, &answers.up))??;
    say_line(&mut prompter, &up_line(&up, paint));

    let acl_file = ctx.server_dir.join(acl::FILE_NAME);
    let mut grants = Vec::new();
    for grant in &answers.grants {
        let edit = acl::file::allow(
            &acl_file,
            &grant.device,
            &grant.topic,
            grant.access,
            answers.up.dry_run,
        )?;
        say_line(
            &mut prompter,
            &format!(
                "{} acl       {} may {} {}{}",
                paint.mark(true),
                grant.device,
                grant.access.keyword(),
                grant.topic,
                if edit.edit.changed {
                    ""
                } else {
                    " (already granted)"
                }
            ),
        );
        grants.push(GrantReport {
            device_id: grant.device.to_string(),
            topic: grant.topic.to_string(),
            access: grant.access,
            changed: edit.edit.changed,
        });
    }
    let acl_changed = grants.iter().any(|g| g.changed);
    let reloaded = if acl_changed && !answers.up.dry_run {
        broker::reload_after_acl_edit(&acl_file)?
    } else {
        Vec::new()
    };
    let ip = up
        .next_step
        .host_ip
        .map_or_else(|| "<this server's IP>".to_string(), |ip| ip.to_string());
    let port = up.port;
    let mut next: Vec<String> = answers
        .grants
        .iter()
        .map(|g| {
            format!(
                "on {}: sudo wott-mqtt setup client --server {device_id} --ip {ip} --port {port} --topic {} --yes",
                g.device, g.topic
            )
        })
        .collect();
    if next.is_empty() {
        next.push(format!(
            "on each client: sudo wott-mqtt setup client --server {device_id} --ip {ip} --port {port} --yes              (first grant it here: sudo wott-mqtt acl allow <CLIENT_ID> {DEFAULT_TOPIC})"
        ));
    }
    Ok(ServerReport {
        role: "server",
        device_id,
        acl_file: acl_file.display().to_string(),
        changed: up.changed || acl_changed,
        grants,
        reloaded,
        server: up,
        next,
    })
}

/// Shows this device's identity and stops the wizard, before any question or
/// change, when it cannot be used (key, CA, expiry): both roles connect with it.
/// Returns the device ID.
fn healthy_identity(
    ctx: &Context<'_>,
    prompter: Option<&mut (dyn Prompter + '_)>,
) -> Result<String, Error> {
    let inspection = Inspection::load(ctx.cert_dir)?;
    let line = identity_line(&inspection, ctx.output.paint_stderr());
    match prompter {
        Some(p) => p.say(&line),
        None => ctx.output.note(&line),
    }
    for warning in &inspection.warnings {
        ctx.output.warn(&sanitize(&warning.message));
    }
    let device_id = inspection.cert.device_id().to_string();
    inspection.into_identity()?;
    Ok(device_id)
}

fn identity_line(inspection: &Inspection, paint: Paint) -> String {
    let cert = &inspection.cert;
    let validity = match cert.info.validity_at(inspection.now) {
        Validity::Valid { seconds_left } => format!("valid for {}", human_duration(seconds_left)),
        Validity::Expired { seconds_ago } => format!("expired {} ago", human_duration(seconds_ago)),
        Validity::NotYetValid { seconds_until } => {
            format!("not valid for another {}", human_duration(seconds_until))
        }
    };
    let healthy = inspection.problems().is_empty()
        && matches!(
            cert.info.validity_at(inspection.now),
            Validity::Valid { .. }
        );
    let key = match inspection.key_matches() {
        Some(true) => "key matches",
        Some(false) => "key does NOT match",
        None => "key unreadable",
    };
    format!(
        "{} identity  this device is {} (certificate {validity}; {key}; {})",
        paint.mark(healthy),
        sanitize(cert.device_id()),
        inspection.ca_signer().map_or_else(
            || "not signed by ca.crt".to_string(),
            |ca| format!("issued by {}", sanitize(&ca.subject))
        )
    )
}

fn up_line(up: &UpReport, paint: Paint) -> String {
    let ready = up.ready.as_ref().map_or_else(String::new, |r| {
        format!("; ready after {:.2} s", r.after_ms as f64 / 1000.0)
    });
    format!(
        "{} broker    {} on {}:{} ({}){ready}",
        paint.mark(true),
        up.container,
        up.bind,
        up.port,
        if up.dry_run {
            "dry run"
        } else if up.changed {
            "started"
        } else {
            "already up"
        }
    )
}

fn server_summary(answers: &ServerAnswers, device_id: &str) -> String {
    let mut s = format!(
        "This will run Mosquitto as {} ({}) on {}:{}, serving {device_id}",
        answers.up.spec.name, answers.up.spec.image, answers.up.spec.bind, answers.up.spec.port
    );
    if answers.grants.is_empty() {
        s.push_str(", with no client granted yet.");
    } else {
        s.push_str(", and grant:");
        for g in &answers.grants {
            let _ = write!(s, "\n  {} {} {}", g.device, g.access.keyword(), g.topic);
        }
    }
    s
}

/// Asks for client grants until an empty device ID.
fn ask_grants(p: &mut dyn Prompter, grants: &mut Vec<Grant>) -> Result<(), Error> {
    loop {
        let prompt = if grants.is_empty() {
            "Client device ID to grant (`wott-mqtt whoami` on the client; empty: none)"
        } else {
            "Another client device ID (empty: done)"
        };
        let id = p.input(prompt, Some(""), &|s| {
            if s.is_empty() {
                Ok(())
            } else {
                DeviceId::new(s).map(drop).map_err(|e| e.to_string())
            }
        })?;
        if id.is_empty() {
            return Ok(());
        }
        let device = DeviceId::new(&id)?;
        let topic = p.input("Topic", Some(DEFAULT_TOPIC), &|s| {
            TopicFilter::new(s).map(drop).map_err(|e| e.to_string())
        })?;
        let items = [
            "read: subscribe and receive (the tutorial's client)".to_string(),
            "write: publish".to_string(),
            "readwrite: both".to_string(),
        ];
        let access = match p.select("Access", &items, 0)? {
            Some(1) => Access::Write,
            Some(2) => Access::ReadWrite,
            _ => Access::Read,
        };
        grants.push(Grant {
            device,
            topic: TopicFilter::new(&topic)?,
            access,
        });
    }
}

impl Human for ServerReport {
    fn human(&self, p: Paint) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {} serves MQTT over mTLS on port {}{}",
            p.good(if self.server.dry_run {
                "Dry run:"
            } else {
                "Set up:"
            }),
            sanitize(&self.device_id),
            self.server.port,
            if self.reloaded.is_empty() {
                String::new()
            } else {
                format!("; {} re-read {}", self.reloaded.join(", "), self.acl_file)
            }
        );
        let _ = writeln!(s, "Next:");
        for line in &self.next {
            let _ = writeln!(s, "  {line}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::Diagnose;

    #[test]
    fn grants_parse_id_topic_and_access() {
        let g = Grant::parse("a.d.wott.local").unwrap();
        assert_eq!((g.topic.as_str(), g.access), (DEFAULT_TOPIC, Access::Read));
        let g = Grant::parse("a.d.wott.local:sensors/#").unwrap();
        assert_eq!((g.topic.as_str(), g.access), ("sensors/#", Access::Read));
        let g = Grant::parse("a.d.wott.local:sensors/#:readwrite").unwrap();
        assert_eq!(
            (g.topic.as_str(), g.access),
            ("sensors/#", Access::ReadWrite)
        );
        let g = Grant::parse("a.d.wott.local:write").unwrap();
        assert_eq!((g.topic.as_str(), g.access), (DEFAULT_TOPIC, Access::Write));
        let g = Grant::parse("a.d.wott.local:urn:x:write").unwrap();
        assert_eq!((g.topic.as_str(), g.access), ("urn:x", Access::Write));
        let g = Grant::parse("a.d.wott.local:urn:x").unwrap();
        assert_eq!((g.topic.as_str(), g.access), ("urn:x", Access::Read));
        assert!(Grant::parse("bad id:wott/#").is_err());
        assert!(Grant::parse("a.d.wott.local:a/#/b").is_err());
    }

    #[test]
    fn missing_answers_name_their_flags() {
        let answers = ClientAnswers::default();
        assert_eq!(
            missing_flags(&answers),
            ["--server SERVER_ID", "--ip IP", "--yes"]
        );
        let error = no_terminal("client", &missing_flags(&answers));
        assert!(
            error
                .to_string()
                .contains("pass --server SERVER_ID, --ip IP, --yes"),
            "{error}"
        );
        assert_eq!(error.exit_code(), crate::ExitCode::Usage);
    }
}
