//! `server up`, `down`, `reload`, `status` and `logs`: the steps, in an
//! order that changes nothing until every refusal has had its chance.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use super::config::{self, ServerDir};
use super::diagnose::diagnose;
use super::docker::{Container, CreateRequest, Engine, StartError};
use super::ready::{self, Served};
use super::stage::{self, MOSQUITTO_UID, Staged};
use super::{BrokerError, CONTAINER_PORT, ContainerSpec, LABEL_CONFIG_HASH, LABEL_SERVER_DIR};
use crate::error::Error;
use crate::files::{self, UpdateOptions};
use crate::identity::{self, CertDir, CertInfo, Identity, Timestamp};
use crate::output::{Output, sanitize};

/// What every server command works with.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub cert_dir: &'a CertDir,
    pub server_dir: &'a Path,
    pub output: &'a Output,
}

/// `server up`'s choices.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub spec: ContainerSpec,
    /// Remove a container of that name that wott-mqtt did not create.
    pub replace: bool,
    pub dry_run: bool,
    /// How long to wait for the first CONNACK.
    pub timeout: Duration,
}

/// One file of the server dir and what happened to it.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: PathBuf,
    /// `created`, `updated` or `unchanged`.
    pub change: &'static str,
    /// The unified diff, in a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl FileChange {
    pub fn is_changed(&self) -> bool {
        self.change != "unchanged"
    }
}

/// What `server up` did to the container (or would do, in a dry run).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Pull {
        image: String,
    },
    /// The old container, removed before creating the new one.
    Remove {
        id: String,
        reason: String,
    },
    Create {
        name: String,
    },
    Start {
        name: String,
    },
    Restart {
        name: String,
        reason: String,
    },
    /// SIGHUP: Mosquitto re-reads its certificates and permissions.acl.
    Reload {
        name: String,
        reason: String,
    },
}

/// How the broker proved it works.
#[derive(Debug, Clone, Serialize)]
pub struct Ready {
    /// From the start of the wait to the CONNACK.
    pub after_ms: u64,
    pub attempts: u32,
    /// Where the probe connected, e.g. `127.0.0.1:8883`.
    pub address: String,
    pub served: Served,
}

/// The command a client device runs next.
#[derive(Debug, Clone, Serialize)]
pub struct NextStep {
    pub command: String,
    /// The address in that command, if one could be found.
    pub host_ip: Option<IpAddr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub changed: bool,
    pub dry_run: bool,
    pub container: String,
    pub container_id: Option<String>,
    pub image: String,
    pub bind: IpAddr,
    pub port: u16,
    pub server_id: String,
    pub server_dir: PathBuf,
    pub engine: String,
    pub files: Vec<FileChange>,
    pub certificates: Staged,
    pub actions: Vec<Action>,
    pub ready: Option<Ready>,
    pub next_step: NextStep,
}

/// `server up`.
pub async fn up(ctx: &Context<'_>, opts: &UpOptions) -> Result<UpReport, Error> {
    let out = ctx.output;
    let spec = &opts.spec;
    let identity = Identity::load(ctx.cert_dir)?;
    for warning in &identity.warnings {
        out.warn(&sanitize(&warning.message));
    }
    let engine = Engine::connect().await?;
    out.debug(1, &format!("container engine: {}", engine.endpoint()));

    let existing = engine.container(&spec.name).await?;
    if let Some(c) = &existing
        && !c.is_managed()
        && !opts.replace
    {
        return Err(BrokerError::NameClash {
            name: spec.name.clone(),
            image: c.image.clone(),
            state: c.state.clone(),
        }
        .into());
    }

    let server_dir = ServerDir::new(absolute(ctx.server_dir)?);
    check_broker_can_read(&server_dir)?;

    let mut actions = Vec::new();
    let image_id = match engine.image_id(&spec.image).await? {
        Some(id) => Some(id),
        None => {
            actions.push(Action::Pull {
                image: spec.image.clone(),
            });
            if opts.dry_run {
                None
            } else {
                engine.pull(&spec.image, out).await?;
                Some(
                    engine
                        .image_id(&spec.image)
                        .await?
                        .ok_or_else(|| BrokerError::Pull {
                            image: spec.image.clone(),
                            reason: "the engine reported success, but the image is not there"
                                .into(),
                        })?,
                )
            }
        }
    };

    let files = write_files(&server_dir, opts.dry_run)?;
    let staged = stage::stage(&identity, &server_dir.certs_dir(), opts.dry_run)?;
    let conf = config::mosquitto_conf();
    let hash = image_id
        .as_deref()
        .map(|id| spec.config_hash(id, server_dir.path(), conf.as_bytes()));

    let step = decide(existing, hash.as_deref(), staged.is_changed());
    let name = spec.name.clone();
    let mut container_id = None;
    let mut expect_served = None;
    match step {
        Step::Create => {
            actions.push(Action::Create { name: name.clone() });
        }
        Step::Replace(old) | Step::Recreate(old) => {
            let reason = if old.is_managed() {
                "its configuration changed".to_string()
            } else {
                format!(
                    "--replace: wott-mqtt did not create it (image {})",
                    old.image
                )
            };
            actions.push(Action::Remove {
                id: short(&old.id),
                reason,
            });
            actions.push(Action::Create { name: name.clone() });
            if !opts.dry_run {
                out.note(&format!("removing the old container {name}"));
                engine.stop(&old.id).await?;
                engine.remove(&old.id).await?;
            }
        }
        Step::Start(c) => {
            actions.push(Action::Start { name: name.clone() });
            container_id = Some(c.id);
        }
        Step::Restart(c) => {
            actions.push(Action::Restart {
                name: name.clone(),
                reason: format!("it was {}", c.state),
            });
            if !opts.dry_run {
                engine.stop(&c.id).await?;
            }
            container_id = Some(c.id);
        }
        Step::Reload(c) => {
            actions.push(Action::Reload {
                name: name.clone(),
                reason: "the certificates changed".into(),
            });
            expect_served = Some(staged.fingerprint_sha256.clone());
            container_id = Some(c.id);
        }
        Step::Keep(c) => container_id = Some(c.id),
    }

    let next_step = next_step(identity.device_id(), spec.bind);
    let changed =
        !actions.is_empty() || staged.is_changed() || files.iter().any(|f| f.is_changed());
    let mut report = UpReport {
        changed,
        dry_run: opts.dry_run,
        container: name.clone(),
        container_id: container_id.as_deref().map(short),
        image: spec.image.clone(),
        bind: spec.bind,
        port: spec.port,
        server_id: identity.device_id().to_string(),
        server_dir: server_dir.path().to_path_buf(),
        engine: engine.endpoint().to_string(),
        files,
        certificates: staged,
        actions,
        ready: None,
        next_step,
    };
    if opts.dry_run {
        return Ok(report);
    }

    let id = match container_id {
        Some(id) => {
            match report.actions.last() {
                Some(Action::Start { .. } | Action::Restart { .. }) => {
                    out.note(&format!("starting the container {name}"));
                    start_existing(&engine, &id, spec).await?;
                }
                Some(Action::Reload { .. }) => {
                    out.note(&format!(
                        "the certificates changed: reloading the broker in {name}"
                    ));
                    engine.signal(&id, "SIGHUP").await?;
                }
                _ => {}
            }
            id
        }
        None => {
            out.note(&format!(
                "creating the container {name} from {}",
                spec.image
            ));
            let labels = spec.labels(server_dir.path(), hash.as_deref().unwrap_or_default());
            let id = engine
                .create(&CreateRequest {
                    name: &name,
                    image: &spec.image,
                    bind: spec.bind,
                    port: spec.port,
                    container_port: CONTAINER_PORT,
                    mounts: spec.mounts(&server_dir),
                    labels,
                })
                .await?;
            start_new(&engine, &id, spec).await?;
            report.container_id = Some(short(&id));
            id
        }
    };
    if report.changed {
        out.note("waiting for the broker to accept an mTLS CONNECT");
    }
    report.ready = Some(
        wait_ready(
            &engine,
            &id,
            &name,
            &identity,
            spec,
            opts.timeout,
            expect_served.as_deref(),
        )
        .await?,
    );
    Ok(report)
}

enum Step {
    Create,
    Replace(Container),
    Recreate(Container),
    Start(Container),
    Restart(Container),
    Reload(Container),
    Keep(Container),
}

/// The least that brings the container in line: `hash` is `None` when the
/// image is yet to be pulled (a dry run), which means a new container.
fn decide(existing: Option<Container>, hash: Option<&str>, certs_changed: bool) -> Step {
    match existing {
        None => Step::Create,
        Some(c) if !c.is_managed() => Step::Replace(c),
        Some(c) if hash.is_none() || c.label(LABEL_CONFIG_HASH) != hash => Step::Recreate(c),
        Some(c) if c.restarting => Step::Restart(c),
        Some(c) if !c.running => Step::Start(c),
        Some(c) if certs_changed => Step::Reload(c),
        Some(c) => Step::Keep(c),
    }
}

/// Starts a container we just created; removes it again when it cannot start.
async fn start_new(engine: &Engine, id: &str, spec: &ContainerSpec) -> Result<(), BrokerError> {
    match engine.start(id).await {
        Ok(()) => Ok(()),
        Err(failure) => {
            let _ = engine.remove(id).await;
            Err(start_failure(engine, failure, spec).await)
        }
    }
}

async fn start_existing(
    engine: &Engine,
    id: &str,
    spec: &ContainerSpec,
) -> Result<(), BrokerError> {
    match engine.start(id).await {
        Ok(()) => Ok(()),
        Err(failure) => Err(start_failure(engine, failure, spec).await),
    }
}

async fn start_failure(engine: &Engine, failure: StartError, spec: &ContainerSpec) -> BrokerError {
    match failure {
        StartError::PortBusy(_) => {
            let holder = engine
                .publishers_of(spec.port)
                .await
                .ok()
                .and_then(|names| names.into_iter().find(|n| *n != spec.name))
                .map(|n| format!("the container {n}"));
            BrokerError::PortBusy {
                bind: spec.bind,
                port: spec.port,
                holder,
            }
        }
        StartError::Other(e) => e,
    }
}

/// Waits for a CONNACK over mTLS with the server's own identity (and, after a
/// reload, for the staged certificate to be the one served), watching the
/// container: when it exits or restarts, its log says why.
async fn wait_ready(
    engine: &Engine,
    id: &str,
    name: &str,
    identity: &Identity,
    spec: &ContainerSpec,
    timeout: Duration,
    expect_fingerprint: Option<&str>,
) -> Result<Ready, BrokerError> {
    let started = Instant::now();
    let address = probe_address(spec.bind);
    let baseline = engine.container(id).await?.map_or(0, |c| c.restart_count);
    let mut attempts = 0;
    let mut pause = Duration::from_millis(10);
    let last = loop {
        attempts += 1;
        let remaining = timeout.saturating_sub(started.elapsed());
        let attempt = ready::probe(
            identity,
            address,
            spec.port,
            remaining.min(ready::ATTEMPT_TIMEOUT),
        )
        .await;
        let last = match attempt {
            Ok(served) if expect_fingerprint.is_none_or(|f| f == served.fingerprint_sha256) => {
                return Ok(Ready {
                    after_ms: started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
                    attempts,
                    address: std::net::SocketAddr::new(address, spec.port).to_string(),
                    served,
                });
            }
            Ok(served) => format!(
                "the broker still serves the old certificate (SHA-256 {})",
                served.fingerprint_sha256
            ),
            Err(reason) => reason,
        };
        let container = engine
            .container(id)
            .await?
            .ok_or_else(|| BrokerError::NoContainer {
                name: name.to_string(),
            })?;
        if !container.running || container.restarting || container.restart_count > baseline {
            return Err(crashed(engine, &container, baseline).await);
        }
        if started.elapsed() >= timeout {
            break last;
        }
        tokio::time::sleep(pause.min(timeout.saturating_sub(started.elapsed()))).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    };
    Err(BrokerError::NotReady {
        name: name.to_string(),
        seconds: timeout.as_secs(),
        last,
    })
}

/// Explains a container that exited or restarts, from its last run's log,
/// and stops it so that it does not restart forever.
async fn crashed(engine: &Engine, container: &Container, baseline: i64) -> BrokerError {
    let restarts = container.restarting || container.restart_count > baseline;
    let mut log = engine
        .log_lines(&container.id, 200)
        .await
        .unwrap_or_default();
    if log.is_empty() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        log = engine
            .log_lines(&container.id, 200)
            .await
            .unwrap_or_default();
    }
    let mut diagnosis = diagnose(&log);
    if let Some(error) = &container.error {
        diagnosis.lines.push(format!("(engine) {error}"));
    }
    let stopped = restarts && engine.stop(&container.id).await.is_ok();
    let exit = container
        .exit_code
        .map(|c| format!(" (exit code {c})"))
        .unwrap_or_default();
    BrokerError::Crashed {
        name: container.name.clone(),
        how: if restarts {
            format!("keeps restarting{exit}")
        } else {
            format!("exited{exit}")
        },
        cause: diagnosis.cause,
        lines: diagnosis.lines,
        stopped,
    }
}

/// Renders mosquitto.conf, creates permissions.acl if it is missing (never
/// overwriting it) and the data folder (owned by uid 1883).
fn write_files(dir: &ServerDir, dry_run: bool) -> Result<Vec<FileChange>, Error> {
    let exists = dir.path().is_dir();
    if !exists && !dry_run {
        std::fs::create_dir_all(dir.path()).map_err(|e| server_dir_error(dir.path(), &e))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| server_dir_error(dir.path(), &e))?;
    }
    let conf = config::mosquitto_conf();
    let mut changes = vec![
        write_file(&dir.conf_path(), exists || !dry_run, dry_run, |_| {
            conf.clone().into_bytes()
        })?,
        write_file(&dir.acl_path(), exists || !dry_run, dry_run, |old| {
            old.map_or_else(|| config::initial_acl().as_bytes().to_vec(), <[u8]>::to_vec)
        })?,
    ];
    let data = dir.data_dir();
    let data_ok = std::fs::metadata(&data).is_ok_and(|m| m.is_dir() && m.uid() == MOSQUITTO_UID);
    if !data_ok {
        if !dry_run {
            let fail = |e: io::Error| server_dir_error(&data, &e);
            if !data.is_dir() {
                std::fs::create_dir(&data).map_err(fail)?;
                std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
                    .map_err(fail)?;
            }
            std::os::unix::fs::chown(&data, Some(MOSQUITTO_UID), Some(MOSQUITTO_UID))
                .map_err(fail)?;
        }
        changes.push(FileChange {
            path: data,
            change: if data_ok { "updated" } else { "created" },
            diff: None,
        });
    }
    Ok(changes)
}

/// One file through `files::update`, or (in a dry run of a server dir that
/// does not exist yet) its diff against nothing.
fn write_file(
    path: &Path,
    dir_exists: bool,
    dry_run: bool,
    content: impl FnOnce(Option<&[u8]>) -> Vec<u8>,
) -> Result<FileChange, Error> {
    let edit = if dir_exists {
        files::update::<files::FileError>(
            path,
            UpdateOptions {
                dry_run,
                new_mode: 0o644,
            },
            |old| Ok(content(old)),
        )?
    } else {
        files::Edit {
            path: path.to_path_buf(),
            before: None,
            after: content(None),
            method: None,
        }
    };
    Ok(FileChange {
        path: path.to_path_buf(),
        change: match (&edit.before, edit.changed()) {
            (None, _) => "created",
            (Some(_), true) => "updated",
            (Some(_), false) => "unchanged",
        },
        diff: (dry_run && edit.changed()).then(|| edit.diff()),
    })
}

/// The broker (uid 1883) must reach permissions.acl: the server dir must be
/// searchable and the file readable by others (or theirs). Checked before
/// anything is written, on what already exists.
fn check_broker_can_read(dir: &ServerDir) -> Result<(), BrokerError> {
    let allowed = |meta: &std::fs::Metadata, bit: u32| {
        meta.uid() == MOSQUITTO_UID || meta.permissions().mode() & bit != 0
    };
    if let Ok(meta) = std::fs::metadata(dir.path())
        && !allowed(&meta, 0o001)
    {
        return Err(BrokerError::NotReadableByBroker {
            path: dir.path().to_path_buf(),
            mode: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
            is_dir: true,
        });
    }
    if let Ok(meta) = std::fs::metadata(dir.acl_path())
        && !allowed(&meta, 0o004)
    {
        return Err(BrokerError::NotReadableByBroker {
            path: dir.acl_path(),
            mode: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
            is_dir: false,
        });
    }
    Ok(())
}

fn server_dir_error(path: &Path, e: &io::Error) -> BrokerError {
    BrokerError::ServerDir {
        path: path.to_path_buf(),
        reason: e.to_string(),
        kind: e.kind(),
    }
}

/// The server dir as an absolute path without symlinks where it exists: the
/// engine needs absolute mount sources, and the label must be stable.
fn absolute(path: &Path) -> Result<PathBuf, BrokerError> {
    match std::fs::canonicalize(path) {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::path::absolute(path).map_err(|e| server_dir_error(path, &e))
        }
        Err(e) => Err(server_dir_error(path, &e)),
    }
}

/// Where the probe connects: the bound address, or loopback for a wildcard.
fn probe_address(bind: IpAddr) -> IpAddr {
    match bind {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// `wott-mqtt hosts add <server-id> <ip>` with this host's address as
/// clients see it: the bound address, or the one the default route uses.
fn next_step(server_id: &str, bind: IpAddr) -> NextStep {
    let host_ip = if bind.is_unspecified() {
        outbound_address(bind.is_ipv6())
    } else {
        Some(bind)
    };
    NextStep {
        command: format!(
            "wott-mqtt hosts add {server_id} {}",
            host_ip.map_or_else(|| "<this host's IP>".to_string(), |ip| ip.to_string())
        ),
        host_ip,
    }
}

/// The local address of the default route (no packet is sent: connecting a
/// UDP socket only picks the route).
fn outbound_address(v6: bool) -> Option<IpAddr> {
    let (local, remote) = if v6 {
        ("[::]:0", "[2001:db8::1]:9")
    } else {
        ("0.0.0.0:0", "192.0.2.1:9")
    };
    let socket = UdpSocket::bind(local).ok()?;
    socket.connect(remote).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// `server down`'s choices.
#[derive(Debug, Clone)]
pub struct DownOptions {
    pub name: String,
    /// Remove the server dir too.
    pub purge: bool,
    pub dry_run: bool,
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
pub async fn down(ctx: &Context<'_>, opts: &DownOptions) -> Result<DownReport, Error> {
    let server_dir = ServerDir::new(absolute(ctx.server_dir)?);
    let purge = opts.purge && server_dir.path().exists();
    if purge && !is_managed_dir(&server_dir) {
        return Err(BrokerError::PurgeRefused {
            dir: server_dir.path().to_path_buf(),
        }
        .into());
    }
    let engine = Engine::connect().await?;
    let existing = engine.container(&opts.name).await?;
    if let Some(c) = &existing
        && !c.is_managed()
    {
        return Err(BrokerError::NotManaged {
            name: opts.name.clone(),
            image: c.image.clone(),
        }
        .into());
    }
    if !opts.dry_run {
        if let Some(c) = &existing {
            ctx.output.note(&format!(
                "stopping and removing the container {}",
                opts.name
            ));
            engine.stop(&c.id).await?;
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
pub async fn reload(ctx: &Context<'_>, opts: &ReloadOptions) -> Result<ReloadReport, Error> {
    let identity = Identity::load(ctx.cert_dir)?;
    for warning in &identity.warnings {
        ctx.output.warn(&sanitize(&warning.message));
    }
    let engine = Engine::connect().await?;
    let container = running_managed(&engine, &opts.name).await?;
    let server_dir = ServerDir::new(absolute(ctx.server_dir)?);
    check_mounts(&container, &server_dir)?;
    let staged = stage::stage(&identity, &server_dir.certs_dir(), opts.dry_run)?;
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
    engine.signal(&container.id, "SIGHUP").await?;
    report.signalled = true;
    let spec = spec_of(&container)?;
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
    let container = engine
        .container(name)
        .await?
        .ok_or_else(|| BrokerError::NoContainer {
            name: name.to_string(),
        })?;
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

/// The bind address and port a container publishes [`CONTAINER_PORT`] on.
fn spec_of(container: &Container) -> Result<ContainerSpec, BrokerError> {
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
    /// What the user should know or do.
    pub notes: Vec<String>,
}

/// `server status`.
pub async fn status(
    ctx: &Context<'_>,
    name: &str,
    timeout: Duration,
) -> Result<StatusReport, Error> {
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
    if report.managed
        && let Some(image_id) = engine.image_id(&container.image).await?
    {
        let spec = spec_of(&container)?;
        let hash = spec.config_hash(&image_id, dir.path(), config::mosquitto_conf().as_bytes());
        let current = container.label(LABEL_CONFIG_HASH) == Some(hash.as_str());
        report.config_current = Some(current);
        if !current {
            report.notes.push(
                    "the image or wott-mqtt's configuration changed since the container was created; `wott-mqtt server up` recreates it".into(),
                );
        }
    }
    if report.running {
        let spec = spec_of(&container)?;
        match Identity::load(ctx.cert_dir) {
            Ok(identity) => {
                let address = probe_address(spec.bind);
                match ready::probe(&identity, address, spec.port, timeout).await {
                    Ok(served) => report.served = Some(served),
                    Err(reason) => report.probe_error = Some(reason),
                }
            }
            Err(e) => {
                report.probe_error = Some(format!(
                    "cannot load this device's identity to connect with: {e}"
                ));
            }
        }
    } else {
        report.notes.push(format!(
            "the container is {}; `wott-mqtt server up` starts it (`wott-mqtt server logs` shows why it stopped)",
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
) -> Result<(), Error> {
    let engine = Engine::connect().await?;
    let container = engine
        .container(name)
        .await?
        .ok_or_else(|| BrokerError::NoContainer {
            name: name.to_string(),
        })?;
    let mut stream = std::pin::pin!(engine.logs(&container.id, tail, follow));
    while let Some(chunk) = stream.next().await {
        match sink(&chunk?) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => {
                return Err(BrokerError::Stdout(e.to_string()).into());
            }
        }
    }
    Ok(())
}
