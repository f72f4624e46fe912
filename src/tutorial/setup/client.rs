//! The client role: map the server's device ID to its IP in the hosts
//! file, then probe the broker with this device's identity.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{
    DEFAULT_PORT, DEFAULT_TOPIC, Prompter, TUTORIAL_SLIP_PORT, cancelled, healthy_identity,
    no_terminal, say,
};
use crate::broker::Context;
use crate::check::{self, CheckError, Expect, Host, Plan, Subscription, Target, Until};
use crate::diagnose::Diagnose;
use crate::error::Error;
use crate::hosts;
use crate::names::{DeviceId, IdPolicy, TopicFilter, TopicName};
use crate::output::{Paint, Report, sanitize, shell_word};

/// How long the client role's check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Show the hosts diff and the check it would run; change and contact nothing.
    pub dry_run: bool,
    /// Which server IDs the prompt accepts.
    pub id_policy: IdPolicy,
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
    /// Whether the hosts file was changed (with `dry_run`: would be).
    pub changed: bool,
    pub dry_run: bool,
    /// The hosts file's unified diff, in a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The probe's report; `null` in a dry run, which contacts nothing.
    pub check: Option<check::Report>,
    /// The command that runs the same probe, without the hosts entry, in a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
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
    if !answers.yes && !answers.dry_run {
        missing.push("--yes");
    }
    missing
}

/// The client role. Asks for what the flags leave open when `prompter` is a
/// terminal; otherwise everything must be given. On a failed check, the
/// wizard offers to change an answer and try again.
pub fn client(
    ctx: &Context<'_>,
    mut answers: ClientAnswers,
    prompter: Option<&mut dyn Prompter>,
) -> Result<(ClientReport, Option<CheckError>), Error> {
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
    if answers.dry_run {
        return client_once(ctx, &answers, Some(prompter));
    }
    if !answers.yes {
        prompter.say(&client_summary(&answers));
        if !prompter.confirm("Write the hosts entry and check the connection?", true)? {
            return Err(cancelled());
        }
    }
    loop {
        let (report, failure) = client_once(ctx, &answers, Some(&mut *prompter))?;
        let Some(error) = failure else {
            return Ok((report, None));
        };
        if !retry(prompter, &mut answers, &error, ctx.output.paint_stderr())? {
            return Ok((report, Some(error)));
        }
    }
}

/// Shows why the check failed and asks what to change; `false`: stop here.
fn retry(
    prompter: &mut dyn Prompter,
    answers: &mut ClientAnswers,
    error: &CheckError,
    paint: Paint,
) -> Result<bool, Error> {
    prompter.say(&format!(
        "{} {}",
        paint.bad("✗"),
        sanitize(&error.to_string())
    ));
    if let Some(hint) = error.hint() {
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
        _ => return Ok(false),
    }
    ask_client(prompter, answers, paint, false)?;
    Ok(true)
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
            &|s| {
                DeviceId::typed(s, answers.id_policy)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        )?;
        answers.server = Some(DeviceId::typed(&value, answers.id_policy)?);
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

/// One pass of the client role with settled answers: the hosts entry, then
/// the check (in a dry run, the diff and the check it would run).
fn client_once(
    ctx: &Context<'_>,
    answers: &ClientAnswers,
    mut prompter: Option<&mut dyn Prompter>,
) -> Result<(ClientReport, Option<CheckError>), Error> {
    let (Some(server), Some(ip)) = (answers.server.clone(), answers.ip) else {
        return Err(no_terminal("client", &missing_flags(answers)));
    };
    let port = answers.port.unwrap_or(DEFAULT_PORT);
    let topic = answers
        .topic
        .clone()
        .map_or_else(|| TopicFilter::new(DEFAULT_TOPIC), Ok)?;
    if port == TUTORIAL_SLIP_PORT && answers.yes {
        ctx.output.warn(&port_slip_warning());
    }

    let change = hosts::add(&answers.hosts_file, &server, ip, answers.dry_run)?;
    let paint = ctx.output.paint_stderr();
    let state = match (change.edit.changed, answers.dry_run) {
        (false, _) => " (already there)",
        (true, false) => " (written)",
        (true, true) => " (would be written: dry run)",
    };
    say(
        ctx,
        &mut prompter,
        &format!(
            "{} hosts     {} maps {server} to {ip}{state}",
            paint.mark(true),
            answers.hosts_file.display(),
        ),
    );
    let mut report = ClientReport {
        role: "client",
        server: server.to_string(),
        ip,
        port,
        topic: topic.to_string(),
        hosts_file: answers.hosts_file.display().to_string(),
        changed: change.edit.changed,
        dry_run: answers.dry_run,
        diff: change.edit.diff,
        check: None,
        probe: None,
        next: next_commands(&server, port, &topic),
    };
    if answers.dry_run {
        // A dry run contacts nothing: the probe would need the hosts entry
        // it does not write, and --roundtrip publishes a message that every
        // subscriber of the topic receives. It says what the check would do
        // and prints the command that runs that probe now, by the IP.
        let (would, command) = dry_run_probe(&server, ip, port, &topic, answers.roundtrip);
        say(ctx, &mut prompter, &would);
        report.probe = Some(command);
        return Ok((report, None));
    }
    let checked = probe(ctx, answers, &server, ip, port, &topic)?;
    for line in Report::human(&checked, paint).lines() {
        say(ctx, &mut prompter, line);
    }
    let failure = checked.failure().cloned();
    report.check = Some(checked);
    Ok((report, failure))
}

/// The check after the hosts entry is written: through the system resolver
/// when that was the system's hosts file, as the tutorial's client will
/// connect; otherwise dialling the IP directly, still verifying the server ID.
fn probe(
    ctx: &Context<'_>,
    answers: &ClientAnswers,
    server: &DeviceId,
    ip: IpAddr,
    port: u16,
    topic: &TopicFilter,
) -> Result<check::Report, Error> {
    let system = hosts::is_system_hosts_file(&answers.hosts_file);
    let target = Target {
        server: Host::parse(server.as_str())?,
        port,
        connect_to: (!system).then_some(ip),
        hosts_file: Some(answers.hosts_file.clone()),
    };
    let plan = Plan::new(check_until(topic, answers.roundtrip)?, CHECK_TIMEOUT);
    crate::runtime::block_on_interruptible(check::check(ctx.cert_dir, &target, &plan))?
        .ok_or(Error::Interrupted)
}

/// For a dry run: what the check would do, and the `sudo wott-mqtt check …`
/// that runs that probe now, by the IP, without the hosts entry.
fn dry_run_probe(
    server: &DeviceId,
    ip: IpAddr,
    port: u16,
    topic: &TopicFilter,
    roundtrip: bool,
) -> (String, String) {
    let (then, flag) = if roundtrip {
        (
            ", then publish a probe there and wait for it",
            " --roundtrip",
        )
    } else {
        ("", "")
    };
    (
        format!(
            "- check     would connect to {ip}:{port} as this device, verify that the server's \
             certificate carries {server}, and subscribe to {topic}{then}; not run in a dry run"
        ),
        format!(
            "sudo wott-mqtt check --server {server} --connect-to {ip} --port {port} --topic {}{flag}",
            shell_word(topic.as_str())
        ),
    )
}

/// How far the client's check goes: SUBACK, or with `roundtrip` our own
/// message back (which needs a topic name, not a filter).
fn check_until(topic: &TopicFilter, roundtrip: bool) -> Result<Until, Error> {
    let subscription = Subscription {
        filter: topic.clone(),
        qos: rumqttc::QoS::AtLeastOnce,
    };
    if !roundtrip {
        return Ok(Until::Subscribe(subscription));
    }
    let name = TopicName::new(topic.as_str()).map_err(|e| {
        Error::usage(
            format!("--roundtrip publishes to the topic, so it cannot be a filter: {e}"),
            Some("give a topic without + or #".to_string()),
        )
    })?;
    Ok(Until::Message {
        subscription,
        expect: Expect::Roundtrip(name),
        within: Duration::from_secs(5),
    })
}

/// The commands that run the tutorial's client from here.
fn next_commands(server: &DeviceId, port: u16, topic: &TopicFilter) -> Vec<String> {
    let topic = shell_word(topic.as_str());
    vec![
        format!(
            "MQTT_SERVER={server} MQTT_PORT={port} MQTT_TOPIC={topic} python3 paho-connect-wott.py   # the tutorial's Paho client"
        ),
        format!(
            "sudo wott-mqtt check --server {server} --port {port} --topic {topic} --wait 30   # wait for a message"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

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
