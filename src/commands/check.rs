//! `check`: the staged probe, from the command line.
//!
//! Turns the flags into a [`Target`] and a [`Plan`], runs [`check::check`]
//! on a current-thread runtime (the only async work this command does), and
//! prints one line per stage.

use std::fmt::Write as _;
use std::time::Duration;

use rumqttc::QoS;

use super::Config;
use crate::check::{self, Expect, Host, Plan, Report, Subscription, Target, Until};
use crate::cli::CheckArgs;
use crate::error::Error;
use crate::names::{TopicFilter, TopicName};
use crate::output::{Human, Outcome, Paint, sanitize, sanitize_field};

/// Without --timeout the probe may take this long, plus the message wait.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long --roundtrip waits for its probe without --wait.
const DEFAULT_ROUNDTRIP_WAIT: Duration = Duration::from_secs(5);

pub fn run(config: &Config, args: &CheckArgs) -> Result<Outcome, Error> {
    let target = target(config, args)?;
    let plan = plan(args)?;
    let report =
        crate::runtime::block_on_interruptible(check::check(&config.cert_dir, &target, &plan))?
            .ok_or(Error::Interrupted)?;
    for warning in &report.warnings {
        config.output.warn(&sanitize(&warning.message));
    }
    Ok(match report.failure().cloned() {
        Some(error) => Outcome::report(report).with_error(error),
        None => Outcome::report(report),
    })
}

fn target(config: &Config, args: &CheckArgs) -> Result<Target, Error> {
    let server = args.server.as_deref().ok_or_else(|| {
        Error::usage(
            "no server to check: pass --server or set MQTT_SERVER",
            Some(
                "give the server's device ID (`wott-mqtt whoami` on the server prints it), \
                 e.g. --server 4853b630822946019393b16c5b710b9e.d.wott.local"
                    .to_string(),
            ),
        )
    })?;
    Ok(Target {
        server: Host::typed(server, config.id_policy)?,
        port: args.port,
        connect_to: args
            .connect_to
            .as_deref()
            .map(crate::hosts::parse_server_ip)
            .transpose()?,
        hosts_file: Some(args.file.path()),
    })
}

fn seconds(flag: &str, value: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero() && d.as_secs() <= 86_400)
        .ok_or_else(|| {
            Error::usage(
                format!(
                    "{flag} {value} is not a number of seconds greater than 0 (and at most 86400)"
                ),
                Some(format!("e.g. {flag} 5 or {flag} 0.5")),
            )
        })
}

fn plan(args: &CheckArgs) -> Result<Plan, Error> {
    let qos = match args.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    let subscription = Subscription {
        filter: TopicFilter::new(&args.topic)?,
        qos,
    };
    let wait = args.wait.map(|w| seconds("--wait", w)).transpose()?;
    let (until, window) = match (args.roundtrip, wait) {
        (false, None) => (Until::Subscribe(subscription), Duration::ZERO),
        (roundtrip, wait) => {
            let expect = if roundtrip {
                Expect::Roundtrip(TopicName::new(&args.topic).map_err(|e| {
                    Error::usage(
                        format!("--roundtrip publishes to --topic, so it cannot be a filter: {e}"),
                        Some("give a topic without + or #, e.g. --topic wott/temperature".into()),
                    )
                })?)
            } else {
                Expect::Any
            };
            let within = wait.unwrap_or(DEFAULT_ROUNDTRIP_WAIT);
            (
                Until::Message {
                    subscription,
                    expect,
                    within,
                },
                within,
            )
        }
    };
    let timeout = match args.timeout {
        None => DEFAULT_TIMEOUT + window,
        Some(t) => {
            let timeout = seconds("--timeout", t)?;
            if timeout < window {
                return Err(Error::usage(
                    format!(
                        "--timeout {t} is shorter than the {} s message wait",
                        window.as_secs_f64()
                    ),
                    Some("--timeout bounds the whole probe: make it longer than --wait".into()),
                ));
            }
            timeout
        }
    };
    let mut plan = Plan::new(until, timeout);
    if let Some(id) = &args.client_id {
        if id.chars().any(char::is_control) {
            return Err(Error::usage(
                format!("--client-id {id:?} contains a control character"),
                None,
            ));
        }
        plan.client_id = id.clone();
    }
    Ok(plan)
}

impl Human for Report {
    fn human(&self, p: Paint) -> String {
        let mut s = String::new();
        for stage in &self.stages {
            let text = match (&stage.error, stage.detail.is_empty()) {
                (Some(error), true) => error,
                _ => &stage.detail,
            };
            let _ = writeln!(
                s,
                "{} {} {:>9}  {}",
                p.mark(stage.ok),
                p.bold(&format!("{:<9}", stage.name.name())),
                format!("{:.1} ms", stage.ms),
                sanitize_field(text)
            );
        }
        s
    }
}
