//! `server down`, `reload`, `status` and `logs`: the running broker.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use super::config::{self, ServerDir};
use super::diagnose::{CrashCause, diagnose_exit};
use super::docker::{Container, Engine};
use super::ready::{self, Served};
use super::stage::{self, Staged};
use super::up::{Context, absolute, server_dir_error, short};
use super::watch::{probe_address, reload_and_confirm, wait_ready};
use super::{
    BrokerError, CONTAINER_PORT, ContainerSpec, LABEL_CONFIG_HASH, LABEL_MANAGED_BY,
    LABEL_SERVER_DIR, MANAGED_BY, RunAs,
};
use crate::identity::{self, CertInfo, Identity, Timestamp};
use crate::output::sanitize;

/// `server down`'s choices.
#[derive(Debug, Clone)]
pub struct DownOptions {
    pub name: String,
    /// Remove the server dir too.
    pub purge: bool,
    pub dry_run: bool,
    /// Stop Mosquitto with SIGTERM first (up to 10 s), so that it saves its
    /// persistence; `false` removes the container at once, for a throwaway
    /// broker (`demo`), about 200 ms sooner.
    pub graceful: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    pub changed: bool,
    pub dry_run: bool,
    pub container: String,
    /// The removed container's ID, if there was one.
    pub removed: Option<String>,
    pub was_running: bool,
    pub server_dir: PathBuf,
    /// Whether the server dir was (or, in a dry run, would be) removed.
    pub purged: bool,
}

/// `server down`: stop and remove the container; with `purge`, the server dir too.
pub async fn down(ctx: &Context<'_>, opts: &DownOptions) -> Result<DownReport, BrokerError> {
    let server_dir = ServerDir::new(absolute(ctx.server_dir)?);
    let purge = opts.purge && server_dir.path().exists();
    if purge && !is_managed_dir(&server_dir) {
        return Err(BrokerError::PurgeRefused {
            dir: server_dir.path().to_path_buf(),
        });
    }
    let engine = Engine::connect().await?;
    let existing = engine.container(&opts.name).await?;
    if let Some(c) = &existing
        && !c.is_managed()
    {
        return Err(BrokerError::NotManaged {
            name: opts.name.clone(),
            image: c.image.clone(),
        });
    }
    if !opts.dry_run {
        if let Some(c) = &existing {
            ctx.output.note(&format!(
                "{} the container {}",
                if opts.graceful {
                    "stopping and removing"
                } else {
                    "removing"
                },
                opts.name
            ));
            if opts.graceful {
                engine.stop(&c.id).await?;
            }
            engine.remove(&c.id).await?;
        }
        if purge {
            std::fs::remove_dir_all(server_dir.path())
                .map_err(|e| server_dir_error(server_dir.path(), &e))?;
        }
    }
    Ok(DownReport {
        changed: existing.is_some() || purge,
        dry_run: opts.dry_run,
        container: opts.name.clone(),
        removed: existing.as_ref().map(|c| short(&c.id)),
        was_running: existing.as_ref().is_some_and(|c| c.running),
        server_dir: server_dir.path().to_path_buf(),
        purged: purge,
    })
}

/// Whether `dir` holds a mosquitto.conf that wott-mqtt rendered.
fn is_managed_dir(dir: &ServerDir) -> bool {
    std::fs::read(dir.conf_path())
        .is_ok_and(|conf| conf.starts_with(config::MANAGED_MARKER.as_bytes()))
}

/// `server reload`'s choices.
#[derive(Debug, Clone)]
pub struct ReloadOptions {
    pub name: String,
    pub dry_run: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// Whether the staged certificates changed.
    pub changed: bool,
    pub dry_run: bool,
    pub container: String,
    pub certificates: Staged,
    /// Whether SIGHUP was sent.
    pub signalled: bool,
    /// The certificate the broker serves after the reload.
    pub served: Option<Served>,
}

/// `server reload`: stage the certificates again, SIGHUP, and wait until the
/// broker serves the staged certificate.
pub async fn reload(ctx: &Context<'_>, opts: &ReloadOptions) -> Result<ReloadReport, BrokerError> {
    let identity = Identity::load(ctx.cert_dir)?;
    for warning in &identity.warnings {
        ctx.output.warn(&sanitize(&warning.message));
    }
    let engine = Engine::connect().await?;
    let container = running_managed(&engine, &opts.name).await?;
    let server_dir = ServerDir::new(absolute(ctx.server_dir)?);
    check_mounts(&container, &server_dir)?;
    let spec = spec_of(&container)?;
    let staged = stage::stage(
        &identity,
        &server_dir.certs_dir(),
        spec.run_as.owner(),
        opts.dry_run,
    )?;
    let mut report = ReloadReport {
        changed: staged.is_changed(),
        dry_run: opts.dry_run,
        container: opts.name.clone(),
        certificates: staged,
        signalled: false,
        served: None,
    };
    if opts.dry_run {
        return Ok(report);
    }
    if !reload_and_confirm(&engine, &container.id).await? {
        ctx.output.warn(&format!(
            "{} did not log \"Reloading config.\" within 3 s after SIGHUP",
            opts.name
        ));
    }
    report.signalled = true;
    let ready = wait_ready(
        &engine,
        &container.id,
        &opts.name,
        &identity,
        &spec,
        opts.timeout,
        Some(&report.certificates.fingerprint_sha256),
    )
    .await?;
    report.served = Some(ready.served);
    Ok(report)
}

async fn running_managed(engine: &Engine, name: &str) -> Result<Container, BrokerError> {
    let container = engine.existing(name, name).await?;
    if !container.is_managed() {
        return Err(BrokerError::NotManaged {
            name: name.to_string(),
            image: container.image,
        });
    }
    if !container.running || container.restarting {
        return Err(BrokerError::NotRunning {
            name: name.to_string(),
            state: container.state,
        });
    }
    Ok(container)
}

/// Staging into a folder the container does not mount would change nothing.
fn check_mounts(container: &Container, dir: &ServerDir) -> Result<(), BrokerError> {
    match container.label(LABEL_SERVER_DIR) {
        Some(mounted) if Path::new(mounted) != dir.path() => Err(BrokerError::WrongServerDir {
            name: container.name.clone(),
            mounted: PathBuf::from(mounted),
            given: dir.path().to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// The bind address and port a container publishes [`CONTAINER_PORT`] on,
/// and the user it runs as.
fn spec_of(container: &Container) -> Result<ContainerSpec, BrokerError> {
    let run_as =
        RunAs::from_container_user(&container.user).ok_or_else(|| BrokerError::UnknownUser {
            name: container.name.clone(),
            user: container.user.clone(),
        })?;
    let published = container
        .ports
        .iter()
        .find(|p| p.container_port == format!("{CONTAINER_PORT}/tcp"))
        .ok_or_else(|| BrokerError::NotPublished {
            name: container.name.clone(),
        })?;
    Ok(ContainerSpec {
        name: container.name.clone(),
        image: container.image.clone(),
        bind: published
            .host_ip
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        port: published.host_port,
        run_as,
    })
}

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
    /// What the user should know or do.
    pub notes: Vec<String>,
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

/// `server status`.
pub async fn status(
    ctx: &Context<'_>,
    name: &str,
    timeout: Duration,
) -> Result<StatusReport, BrokerError> {
    let engine = Engine::connect().await?;
    let container = engine.container(name).await?;
    let server_dir = ServerDir::new(absolute(ctx.server_dir)?);
    let agent_certificate = CertSummary::read(ctx.cert_dir.cert_path());
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
        agent_certificate,
        staged_certificate: None,
        crash: None,
        notes: Vec::new(),
    };
    let Some(container) = container else {
        report.notes.push(format!(
            "there is no container named {name}; start the broker with `wott-mqtt server up`"
        ));
        return Ok(report);
    };
    if !report.managed {
        report.notes.push(format!(
            "the container {name} was not created by wott-mqtt; `wott-mqtt server up --replace` replaces it"
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
        && let Some(image_id) = engine.image_id(&container.image).await?
    {
        let hash = spec.config_hash(&image_id, dir.path(), config::mosquitto_conf().as_bytes());
        let current = container.label(LABEL_CONFIG_HASH) == Some(hash.as_str());
        report.config_current = Some(current);
        if !current {
            report.notes.push(
                "the image or wott-mqtt's configuration changed since the container was created; \
                 `wott-mqtt server up` recreates it"
                    .into(),
            );
        }
    }
    if report.running {
        report.probe_error = match (&spec, Identity::load(ctx.cert_dir)) {
            (Err(e), _) => Some(e.to_string()),
            (Ok(_), Err(e)) => Some(format!(
                "cannot load this device's identity to connect with: {e}"
            )),
            (Ok(spec), Ok(identity)) => {
                match ready::probe(&identity, probe_address(spec.bind), spec.port, timeout).await {
                    Ok(served) => {
                        report.served = Some(served);
                        None
                    }
                    Err(failure) => Some(failure.message()),
                }
            }
        };
    }
    // Exited with an error, waiting to restart, or restarted and not
    // answering (a crash loop caught between two runs): the log says why.
    let failing = if report.running {
        report.served.is_none() && container.restart_count > 0
    } else {
        container.restarting || container.exit_code.is_some_and(|c| c != 0)
    };
    if failing {
        let diagnosis = diagnose_exit(
            &engine.log_lines(&container.id, 200).await?,
            container.exit_code,
            container.oom_killed,
        );
        report.crash = Some(Crash {
            cause: diagnosis.cause,
            explanation: diagnosis.cause.to_string(),
            hint: diagnosis.cause.hint(),
            lines: diagnosis.lines,
        });
    }
    if !report.running {
        report.notes.push(format!(
            "the broker is not running (container state: {}); `sudo wott-mqtt server up` starts it",
            container.state
        ));
    }
    if let (Some(served), Some(agent)) = (&report.served, &report.agent_certificate)
        && served.fingerprint_sha256 != agent.fingerprint_sha256
    {
        report.notes.push(format!(
            "the broker serves a certificate valid until {}, but the agent's is valid until {}: \
             the agent renewed the certificate; run `sudo wott-mqtt server reload`",
            served.not_after, agent.not_after
        ));
    }
    report.details = Some(container);
    Ok(report)
}

/// `server logs`: writes the container's output to `sink` as it arrives.
pub async fn logs(
    name: &str,
    tail: Option<u64>,
    follow: bool,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<(), BrokerError> {
    let engine = Engine::connect().await?;
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

/// After `acl allow` / `acl revoke`: sends SIGHUP to each running managed
/// broker whose server dir holds `acl_file`, so the change applies now, and
/// returns their names. When the file is not a managed server dir's
/// permissions.acl, it returns at once, without a runtime or an engine
/// connection, so ACL edits elsewhere stay fast.
pub fn reload_after_acl_edit(acl_file: &Path) -> Result<Vec<String>, BrokerError> {
    let Some(dir) = acl_file.parent() else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let server_dir = ServerDir::new(dir);
    if acl_file.file_name() != Some(std::ffi::OsStr::new(config::ACL_FILE))
        || !is_managed_dir(&server_dir)
    {
        return Ok(Vec::new());
    }
    let dir = absolute(dir)?;
    crate::runtime::block_on(async {
        let engine = Engine::connect().await?;
        let dir = dir.display().to_string();
        let brokers = engine
            .running_with_labels(&[(LABEL_MANAGED_BY, MANAGED_BY), (LABEL_SERVER_DIR, &dir)])
            .await?;
        let mut reloaded = Vec::new();
        for (id, name) in brokers {
            reload_and_confirm(&engine, &id).await?;
            reloaded.push(name);
        }
        Ok(reloaded)
    })?
}
