//! `server status` and `server logs`: what the broker is doing, read from
//! the engine, its log and its TLS port.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use super::Context;
use super::config::{self, ServerDir};
use super::diagnose::{CrashCause, diagnose_exit, failed_open};
use super::docker::{Container, Engine};
use super::drift::{self, Drift};
use super::ready::{self, Served};
use super::record;
use super::running::spec_of;
use super::server_dir::absolute;
use super::sighup;
use super::wait::probe_address;
use super::{BrokerError, ContainerSpec, LABEL_CONFIG_HASH, LABEL_SERVER_DIR};
use crate::identity::{self, CertInfo, Identity, Timestamp};
use crate::output::shell_word;

/// A certificate, briefly.
#[derive(Debug, Clone, Serialize)]
pub struct CertSummary {
    pub path: PathBuf,
    pub common_name: Option<String>,
    pub not_after: Timestamp,
    pub fingerprint_sha256: String,
}

impl CertSummary {
    fn read(path: PathBuf) -> Option<CertSummary> {
        let cert = identity::load_certificate(&path).ok()?;
        Some(CertSummary::of(path, &cert.info))
    }

    fn of(path: PathBuf, info: &CertInfo) -> CertSummary {
        CertSummary {
            path,
            common_name: info.common_name.clone(),
            not_after: info.not_after,
            fingerprint_sha256: info.fingerprint_sha256.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub container: String,
    pub engine: String,
    /// Whether a container of that name exists.
    pub exists: bool,
    pub managed: bool,
    pub running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Container>,
    pub uptime_seconds: Option<i64>,
    /// Whether the container was created from the current image and config;
    /// `None` when that cannot be told (no image, not managed).
    pub config_current: Option<bool>,
    /// The certificate the broker serves, read over TLS.
    pub served: Option<Served>,
    /// Why the served certificate could not be read.
    pub probe_error: Option<String>,
    /// The agent's client.crt, as on disk now.
    pub agent_certificate: Option<CertSummary>,
    /// The copy the broker reads (`<server-dir>/certs/client.crt`).
    pub staged_certificate: Option<CertSummary>,
    /// Why the broker stopped, from its log, when it exited with an error
    /// or keeps restarting.
    pub crash: Option<Crash>,
    /// When the broker enforces no ACL at all (its last ACL load failed on a
    /// reload): the log lines that show it.
    pub acl_open: Option<Vec<String>>,
    /// What the broker serves that is older than the file on disk.
    pub drift: Vec<Drift>,
    /// The server dir the container mounts.
    pub server_dir: PathBuf,
    /// What the user should know or do.
    pub notes: Vec<String>,
}

impl StatusReport {
    /// The broker enforces no ACL: the error `server status` ends with.
    pub fn open_error(&self) -> Option<BrokerError> {
        let lines = self.acl_open.clone()?;
        let target = sighup::Target {
            id: "",
            name: &self.container,
            server_dir: &self.server_dir,
        };
        Some(sighup::running_open(target, lines))
    }
}

/// A stopped broker's diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct Crash {
    pub cause: CrashCause,
    pub explanation: String,
    pub hint: String,
    /// The log lines that show it.
    pub lines: Vec<String>,
}

/// How many of the broker's last log lines `status` reads for a failed ACL load.
const LOG_TAIL: u64 = 5000;

/// `server status` of the broker `flag` names, else the server dir's.
pub async fn status(
    ctx: &Context<'_>,
    flag: Option<&str>,
    timeout: Duration,
) -> Result<StatusReport, BrokerError> {
    let engine = Engine::connect().await?;
    let server_dir = ServerDir::new(absolute(ctx.server_dir)?);
    let name = &record::broker_name(&engine, server_dir.path(), flag).await?;
    let container = engine.container(name).await?;
    let mut report = StatusReport {
        container: name.to_string(),
        engine: engine.endpoint().to_string(),
        exists: container.is_some(),
        managed: container.as_ref().is_some_and(Container::is_managed),
        running: container
            .as_ref()
            .is_some_and(|c| c.running && !c.restarting),
        details: None,
        uptime_seconds: None,
        config_current: None,
        served: None,
        probe_error: None,
        agent_certificate: CertSummary::read(ctx.cert_dir.cert_path()),
        staged_certificate: None,
        crash: None,
        acl_open: None,
        drift: Vec::new(),
        server_dir: server_dir.path().to_path_buf(),
        notes: Vec::new(),
    };
    let Some(container) = container else {
        report.notes.push(format!(
            "there is no container named {name}; start the broker with `{}`",
            next(ctx, flag, "server up")
        ));
        return Ok(report);
    };
    if !report.managed {
        report.notes.push(format!(
            "the container {name} was not created by wott-mqtt; `{}` replaces it",
            next(ctx, flag, "server up --replace")
        ));
    }
    let dir = container
        .label(LABEL_SERVER_DIR)
        .map_or_else(|| server_dir.clone(), ServerDir::new);
    report.staged_certificate = CertSummary::read(dir.certs_dir().join(identity::CLIENT_CRT));
    if report.running {
        report.uptime_seconds = container
            .started_at
            .map(|t| (Timestamp::now().0 - t.0).max(0));
    }
    let spec = spec_of(&container);
    if report.managed
        && let Ok(spec) = &spec
    {
        report.config_current = config_current(&engine, &container, spec, &dir).await?;
        if report.config_current == Some(false) {
            report.notes.push(format!(
                "the image or wott-mqtt's configuration changed since the container was created; \
                 `{}` recreates it",
                next(ctx, flag, "server up")
            ));
        }
    }
    if report.running {
        match served(ctx, &spec, timeout).await {
            Ok(served) => report.served = Some(served),
            Err(reason) => report.probe_error = Some(reason),
        }
    }
    report.server_dir = dir.path().to_path_buf();
    if report.running {
        let log = engine.timed_log_lines(&container.id, LOG_TAIL).await?;
        let lines: Vec<String> = log.iter().map(|(_, line)| line.clone()).collect();
        report.acl_open = failed_open(&lines);
        report.drift = drifts(&report, &dir, &log, &container);
    }
    report.crash = crash(&engine, &container, &report).await?;
    report.notes.extend(notes(ctx, flag, &container, &report));
    report.details = Some(container);
    Ok(report)
}

/// Whether the container was made from the current image and
/// configuration; `None` when its image is gone.
async fn config_current(
    engine: &Engine,
    container: &Container,
    spec: &ContainerSpec,
    dir: &ServerDir,
) -> Result<Option<bool>, BrokerError> {
    let Some(image_id) = engine.image_id(&container.image).await? else {
        return Ok(None);
    };
    let hash = spec.config_hash(&image_id, dir.path(), config::mosquitto_conf().as_bytes());
    Ok(Some(
        container.label(LABEL_CONFIG_HASH) == Some(hash.as_str()),
    ))
}

/// The certificate the broker serves, read over TLS with this device's
/// identity, or why it could not be read.
async fn served(
    ctx: &Context<'_>,
    spec: &Result<ContainerSpec, BrokerError>,
    timeout: Duration,
) -> Result<Served, String> {
    let spec = spec.as_ref().map_err(ToString::to_string)?;
    let identity = Identity::load(ctx.cert_dir)
        .map_err(|e| format!("cannot load this device's identity to connect with: {e}"))?;
    ready::probe(&identity, probe_address(spec.bind), spec.port, timeout)
        .await
        .map_err(|failure| failure.message())
}

/// Why the broker stopped, from its log: when it exited with an error,
/// waits to restart, or restarted and does not answer (a crash loop caught
/// between two runs).
async fn crash(
    engine: &Engine,
    container: &Container,
    report: &StatusReport,
) -> Result<Option<Crash>, BrokerError> {
    let failing = if report.running {
        report.served.is_none() && container.restart_count > 0
    } else {
        container.restarting || container.exit_code.is_some_and(|c| c != 0)
    };
    if !failing {
        return Ok(None);
    }
    let diagnosis = diagnose_exit(
        &engine.log_lines(&container.id, 200).await?,
        container.exit_code,
        container.oom_killed,
    );
    Ok(Some(Crash {
        cause: diagnosis.cause,
        explanation: diagnosis.cause.to_string(),
        hint: diagnosis.cause.hint(),
        lines: diagnosis.lines,
    }))
}

/// What the running broker serves that is older than the files on disk.
fn drifts(
    report: &StatusReport,
    dir: &ServerDir,
    log: &[(Option<i128>, String)],
    container: &Container,
) -> Vec<Drift> {
    let served = report.served.as_ref();
    let agent = report.agent_certificate.as_ref();
    let certificate = served
        .zip(agent)
        .and_then(|(s, a)| drift::certificate(s, (&a.fingerprint_sha256, a.not_after)));
    let loaded = drift::last_load(log, container.started_at);
    certificate
        .into_iter()
        .chain(drift::acl(&dir.acl_path(), loaded))
        .collect()
}

/// What the user should know or do about a broker that is not running, or
/// serves older files than those on disk: each with the command that
/// repairs it, as it runs from here.
fn notes(
    ctx: &Context<'_>,
    flag: Option<&str>,
    container: &Container,
    report: &StatusReport,
) -> Vec<String> {
    let mut notes = Vec::new();
    if !report.running {
        notes.push(format!(
            "the broker is not running (container state: {}); `{}` starts it",
            container.state,
            next(ctx, flag, "server up")
        ));
    }
    for drift in &report.drift {
        notes.push(format!(
            "{}; `{}` applies it",
            drift.detail,
            next(ctx, flag, "server reload")
        ));
    }
    notes
}

/// A `server …` command for this broker, as it runs from here: with
/// `--name` when status was given one (else the server dir's broker is the
/// one it acts on).
fn next(ctx: &Context<'_>, flag: Option<&str>, command: &str) -> String {
    match flag {
        Some(name) => ctx.command(&format!("{command} --name {}", shell_word(name))),
        None => ctx.command(command),
    }
}

/// `server logs` of the broker `name`, else the server dir's: writes the
/// container's output to `sink` as it arrives.
pub async fn logs(
    ctx: &Context<'_>,
    name: Option<&str>,
    tail: Option<u64>,
    follow: bool,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<(), BrokerError> {
    let engine = Engine::connect().await?;
    let server_dir = absolute(ctx.server_dir)?;
    let name = &record::broker_name(&engine, &server_dir, name).await?;
    let container = engine.existing(name, name).await?;
    let mut stream = std::pin::pin!(engine.logs(&container.id, tail, follow));
    while let Some(chunk) = stream.next().await {
        match sink(&chunk?) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => {
                return Err(BrokerError::Stdout(e.to_string()));
            }
        }
    }
    Ok(())
}
