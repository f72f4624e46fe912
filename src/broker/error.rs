//! What can go wrong with the managed broker, and what to do about it.

use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use super::diagnose::CrashCause;
use super::image_error::ImageError;
use crate::check::CheckError;
use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;
use crate::files::FileError;
use crate::identity::IdentityError;
use crate::output::shell_word;
use crate::runtime::RuntimeError;

/// One endpoint `Engine::connect` tried, and why it did not answer.
#[derive(Debug, Clone, Serialize)]
pub struct Tried {
    pub endpoint: String,
    pub reason: String,
    /// The socket is there but this user may not use it.
    #[serde(skip)]
    pub permission_denied: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The server device's identity, which the broker presents, is unusable.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A file of the server dir could not be written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The broker answered the readiness probe and refused it.
    #[error(transparent)]
    Probe(#[from] CheckError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// No image to run: the local image cannot be built, or none can be had.
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("no container engine answered; tried {}", tried_list(tried))]
    EngineUnreachable { tried: Vec<Tried>, from_env: bool },
    #[error("DOCKER_HOST={value} uses a scheme wott-mqtt cannot connect with")]
    UnsupportedHost { value: String },
    #[error("the container engine at {endpoint} could not {during}: {message}")]
    Engine {
        endpoint: String,
        during: String,
        message: String,
    },
    #[error(
        "the container engine at {endpoint} stopped answering while trying to {during} ({message})"
    )]
    EngineLost {
        endpoint: String,
        during: String,
        message: String,
    },
    #[error("the image {image} is not on this machine, and pulling it failed: {reason}")]
    Pull { image: String, reason: String },
    #[error(
        "a container named {name} already exists and wott-mqtt did not create it (image {image}, {state})"
    )]
    NameClash {
        name: String,
        image: String,
        state: String,
    },
    #[error("port {port} on {bind} is already in use{}", holder.as_ref().map(|h| format!(" by {h}")).unwrap_or_default())]
    PortBusy {
        bind: IpAddr,
        port: u16,
        /// `container X`, when a container publishes that port.
        holder: Option<String>,
    },
    #[error("the broker in container {name} {how}: {cause}{}", quote(lines))]
    Crashed {
        name: String,
        /// `exited with code 1`, `keeps restarting`.
        how: String,
        cause: CrashCause,
        /// The log lines that show the cause, from the broker's last run.
        lines: Vec<String>,
        /// Whether wott-mqtt stopped the container to end a restart loop.
        stopped: bool,
    },
    #[error(
        "the broker in container {name} did not complete an mTLS CONNECT within {seconds} s; last attempt: {last}"
    )]
    NotReady {
        name: String,
        seconds: u64,
        last: String,
    },
    #[error("there is no container named {name}")]
    NoContainer { name: String },
    #[error("the container {name} is not running ({state})")]
    NotRunning { name: String, state: String },
    #[error("the container {name} was not created by wott-mqtt (image {image})")]
    NotManaged { name: String, image: String },
    #[error("cannot stage {}: {reason}", path.display())]
    Stage {
        path: PathBuf,
        reason: String,
        kind: io::ErrorKind,
    },
    #[error("the staged copy of the identity in {} is not usable: {reason}", dir.display())]
    StagedInvalid { dir: PathBuf, reason: String },
    #[error("cannot prepare the server dir {}: {reason}", path.display())]
    ServerDir {
        path: PathBuf,
        reason: String,
        kind: io::ErrorKind,
    },
    #[error(
        "the broker runs as uid {broker_uid} and cannot read {} (mode {mode:04o}, owner uid {uid})", path.display()
    )]
    NotReadableByBroker {
        path: PathBuf,
        mode: u32,
        uid: u32,
        /// 1883, or the user's uid when the broker runs as that user.
        broker_uid: u32,
        is_dir: bool,
    },
    #[error("the container {name} mounts {}, not {}", mounted.display(), given.display())]
    WrongServerDir {
        name: String,
        mounted: PathBuf,
        given: PathBuf,
    },
    #[error("the container {name} publishes no host port for Mosquitto's 8883/tcp")]
    NotPublished { name: String },
    #[error(
        "the container {name} runs as the user {user:?}, whose uid and gid wott-mqtt cannot tell"
    )]
    UnknownUser { name: String, user: String },
    #[error(
        "not reloading the broker in {name}: {problem}; on a reload with such a file Mosquitto 2.0 enforces no ACL at all (every device may read and write every topic)"
    )]
    ReloadWithheld {
        name: String,
        problem: String,
        acl_file: PathBuf,
        server_dir: PathBuf,
    },
    #[error(
        "the broker in {name} enforces NO ACL: it failed to load {} on its last reload, so every device may read and write every topic{}",
        acl_file.display(), quote(lines)
    )]
    RunningOpen {
        name: String,
        lines: Vec<String>,
        acl_file: PathBuf,
        server_dir: PathBuf,
    },
    #[error("refusing the server dir: {} {reason} (owner uid {uid}, mode {mode:04o})", path.display())]
    UntrustedServerDir {
        path: PathBuf,
        uid: u32,
        mode: u32,
        reason: String,
    },
    #[error("cannot read the broker's settings in {}: {reason}", path.display())]
    BadRecord { path: PathBuf, reason: String },
    #[error("cannot write to stdout: {0}")]
    Stdout(String),
    #[error("refusing to purge {}: it holds no mosquitto.conf written by wott-mqtt", dir.display())]
    PurgeRefused { dir: PathBuf },
}

fn tried_list(tried: &[Tried]) -> String {
    tried
        .iter()
        .map(|t| format!("{} ({})", t.endpoint, t.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

fn quote(lines: &[String]) -> String {
    let mut s = String::new();
    if !lines.is_empty() {
        s.push_str("\nthe broker's log:");
        for line in lines {
            let _ = write!(s, "\n  | {line}");
        }
    }
    s
}

impl Diagnose for BrokerError {
    fn hint(&self) -> Option<String> {
        match self {
            BrokerError::Identity(e) => e.hint(),
            BrokerError::File(e) => e.hint(),
            BrokerError::Probe(e) => e.hint(),
            BrokerError::Runtime(e) => e.hint(),
            BrokerError::Image(e) => e.hint(),
            BrokerError::EngineUnreachable { .. }
            | BrokerError::UnsupportedHost { .. }
            | BrokerError::Engine { .. }
            | BrokerError::EngineLost { .. }
            | BrokerError::Pull { .. } => engine_hint(self),
            BrokerError::Stage { .. }
            | BrokerError::ServerDir { .. }
            | BrokerError::StagedInvalid { .. }
            | BrokerError::NotReadableByBroker { .. }
            | BrokerError::PurgeRefused { .. }
            | BrokerError::UntrustedServerDir { .. }
            | BrokerError::BadRecord { .. }
            | BrokerError::Stdout(_) => files_hint(self),
            BrokerError::ReloadWithheld { .. } | BrokerError::RunningOpen { .. } => acl_hint(self),
            _ => container_hint(self),
        }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            BrokerError::Identity(e) => e.exit_code(),
            BrokerError::File(e) => e.exit_code(),
            BrokerError::Probe(e) => e.exit_code(),
            BrokerError::Runtime(e) => e.exit_code(),
            BrokerError::Image(e) => e.exit_code(),
            _ => ExitCode::Failure,
        }
    }
}

/// The container engine: not reachable, failing, or without the image.
fn engine_hint(error: &BrokerError) -> Option<String> {
    Some(match error {
        BrokerError::EngineUnreachable { tried, from_env } => {
            if tried.iter().any(|t| t.permission_denied) {
                "add your user to the `docker` group (`sudo usermod -aG docker $USER`, then log in \
                 again), or run the command with sudo"
                    .into()
            } else if *from_env {
                "start the engine DOCKER_HOST points at, or unset DOCKER_HOST to use the local Docker socket".into()
            } else {
                "install and start Docker (`sudo systemctl start docker`) or Podman \
                 (`systemctl start podman.socket`), or point DOCKER_HOST at a running engine \
                 (unix:///path/to/docker.sock or tcp://host:2375)"
                    .into()
            }
        }
        BrokerError::UnsupportedHost { .. } => {
            "use a unix:// socket or tcp:// address; for a remote TLS engine, tunnel it \
             (`ssh -L /tmp/docker.sock:/var/run/docker.sock host`) and set DOCKER_HOST=unix:///tmp/docker.sock"
                .into()
        }
        BrokerError::Engine { .. } => {
            "check the engine with `docker info` and its log (`journalctl -u docker`)".into()
        }
        BrokerError::EngineLost { .. } => {
            "the engine stopped or restarted: check it (`systemctl status docker`, `docker info`), \
             then run the command again; `wott-mqtt server up` picks up from where it stopped"
                .into()
        }
        BrokerError::Pull { image, reason } => pull_hint(image, reason),
        _ => return None,
    })
}

/// A pull that failed: no registry, no credentials, no room.
fn pull_hint(image: &str, reason: &str) -> String {
    let reason = reason.to_ascii_lowercase();
    let load = format!(
        "load the image from a file: on a machine that can pull, `docker pull {image} && \
         docker save {image} -o mosquitto.tar`, then here `docker load -i mosquitto.tar`"
    );
    if reason.contains("no space left") {
        "free room for the engine (`docker system df` shows what it holds, \
         `docker image prune` removes unused images), then run the command again"
            .into()
    } else if reason.contains("unauthorized")
        || reason.contains("denied")
        || reason.contains("authentication required")
    {
        format!(
            "check the image's name, and log in to its registry if it needs it (`docker login`); \
             or {load}"
        )
    } else if registry_unreachable(&reason) {
        format!(
            "no registry answers here: without --image (and WOTT_MQTT_IMAGE), wott-mqtt builds a \
             local image from this machine's Mosquitto (`wott-mqtt server image` builds it now); \
             or {load}"
        )
    } else {
        format!("{load}; or pass --image with an image that is already here (`docker images`)")
    }
}

/// Whether a pull failed because no registry could be reached (no route,
/// no name resolution, nothing answering, a timeout), as opposed to a
/// registry that answered and refused (authentication, a missing tag) or a
/// local failure (a full disk). Only the first may be papered over by
/// building a local image.
pub fn registry_unreachable(reason: &str) -> bool {
    const LOCAL_OR_REFUSED: [&str; 8] = [
        "no space left",
        "unauthorized",
        "denied",
        "manifest unknown",
        "not found: manifest",
        "toomanyrequests",
        "read-only file system",
        "authentication required",
    ];
    const UNREACHABLE: [&str; 12] = [
        "dial tcp",
        "no such host",
        "lookup ",
        "i/o timeout",
        "connection refused",
        "network is unreachable",
        "no route to host",
        "tls handshake timeout",
        "context deadline exceeded",
        "client.timeout exceeded",
        "temporary failure in name resolution",
        "server misbehaving",
    ];
    let reason = reason.to_ascii_lowercase();
    !LOCAL_OR_REFUSED.iter().any(|m| reason.contains(m))
        && UNREACHABLE.iter().any(|m| reason.contains(m))
}

/// The broker's container: in the way, crashed, missing or not ours.
fn container_hint(error: &BrokerError) -> Option<String> {
    Some(match error {
        BrokerError::NameClash { name, .. } => format!(
            "pass --replace to remove that container and create the broker in its place, \
             or choose another name with --name (`docker rm -f {name}` removes it by hand)"
        ),
        BrokerError::PortBusy { port, .. } => format!(
            "stop what listens on port {port} (`sudo ss -ltnp 'sport = :{port}'` shows it), \
             or publish the broker on another port with --port (clients then need MQTT_PORT)"
        ),
        BrokerError::Crashed { cause, stopped, .. } => {
            let mut hint = cause.hint();
            if *stopped {
                hint.push_str("; wott-mqtt stopped the container to end its restart loop, run `wott-mqtt server up` once fixed");
            }
            hint
        }
        BrokerError::NotReady { name, .. } => format!(
            "see what the broker says with `wott-mqtt server logs --name {name}`, \
             or wait longer with --timeout"
        ),
        BrokerError::NoContainer { .. } | BrokerError::NotRunning { .. } => {
            "start the broker with `wott-mqtt server up`".into()
        }
        BrokerError::NotManaged { .. } => {
            "wott-mqtt only manages containers it created; pass the right --name, \
             or manage that container with `docker` directly"
                .into()
        }
        BrokerError::WrongServerDir { mounted, .. } => {
            format!(
                "pass --server-dir {} (or WOTT_MQTT_SERVER_DIR)",
                mounted.display()
            )
        }
        BrokerError::NotPublished { .. } | BrokerError::UnknownUser { .. } => {
            "recreate it with `wott-mqtt server up`".into()
        }
        _ => return None,
    })
}

/// The server dir and the staged copies of the identity.
fn files_hint(error: &BrokerError) -> Option<String> {
    Some(match error {
        BrokerError::Stage { kind, .. } if *kind == io::ErrorKind::PermissionDenied => {
            "run the command with sudo: the agent's key is readable by root only, and the broker's copy must belong to uid 1883"
                .into()
        }
        BrokerError::ServerDir { kind, .. } if *kind == io::ErrorKind::PermissionDenied => {
            "run the command with sudo, or pass --server-dir with a folder you own \
             (without root, the broker runs as you)"
                .into()
        }
        BrokerError::Stage { .. } | BrokerError::ServerDir { .. } => {
            "check the path, or choose another folder with --server-dir".into()
        }
        BrokerError::StagedInvalid { .. } => {
            "the agent may have renewed the certificate while it was copied: run the command again".into()
        }
        BrokerError::NotReadableByBroker { path, is_dir, .. } => {
            if *is_dir {
                format!("let others enter the folder: sudo chmod o+rx {}", path.display())
            } else {
                format!("let others read the file: sudo chmod o+r {}", path.display())
            }
        }
        BrokerError::Stdout(_) => return None,
        BrokerError::BadRecord { path, .. } => format!(
            "`server up` writes this file (JSON) with the settings it was given: fix it, or remove it \
             (`sudo rm {}`) and run `server up` again with the flags the broker was started with",
            shell_word(&path.display().to_string())
        ),
        BrokerError::PurgeRefused { .. } => {
            "check --server-dir; remove the folder by hand if you really mean it".into()
        }

        BrokerError::UntrustedServerDir { path, reason, .. } if reason.contains("symbolic link") => format!(
            "remove the link (`sudo rm {}`) and run the command again: wott-mqtt writes this file itself",
            shell_word(&path.display().to_string())
        ),
        BrokerError::UntrustedServerDir { path, .. } => format!(
            "root writes the server dir and hands it to the broker, so only root may control it and every folder above it: \
             `sudo chown root:root {p} && sudo chmod go-w {p}` if that is right, or choose another --server-dir",
            p = shell_word(&path.display().to_string())
        ),
        _ => return None,
    })
}

/// A reload that would open the broker, or did.
fn acl_hint(error: &BrokerError) -> Option<String> {
    let (name, acl_file, server_dir, open) = match error {
        BrokerError::ReloadWithheld {
            name,
            acl_file,
            server_dir,
            ..
        } => (name, acl_file, server_dir, false),
        BrokerError::RunningOpen {
            name,
            acl_file,
            server_dir,
            ..
        } => (name, acl_file, server_dir, true),
        _ => return None,
    };
    let validate = format!(
        "wott-mqtt acl validate --acl-file {}",
        shell_word(&acl_file.display().to_string())
    );
    let server = format!(
        "sudo wott-mqtt --server-dir {} server",
        shell_word(&server_dir.display().to_string())
    );
    let name = shell_word(name);
    Some(if open {
        format!(
            "fix the file now (`{validate}` names every line Mosquitto refuses), then `{server} reload --name {name}`; \
             until then, `{server} down --name {name}` stops the open broker"
        )
    } else {
        format!(
            "the broker keeps the rules it loaded last; fix the file (`{validate}` names every line Mosquitto refuses), \
             then `{server} reload --name {name}`"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::registry_unreachable;

    #[test]
    fn no_registry_is_told_from_a_refusal_and_a_full_disk() {
        for offline in [
            r#"Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host"#,
            r#"Get "https://registry-1.docker.io/v2/": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)"#,
            "Get \"https://registry-1.docker.io/v2/\": dial tcp 54.1.2.3:443: connect: network is unreachable",
            "pinging container registry registry-1.docker.io: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: Temporary failure in name resolution",
        ] {
            assert!(registry_unreachable(offline), "{offline}");
        }
        for other in [
            "pull access denied for eclipse-mosquitto, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
            "unauthorized: incorrect username or password",
            "manifest for eclipse-mosquitto:9 not found: manifest unknown: manifest unknown",
            "write /var/lib/docker/tmp/GetImageBlob1: no space left on device",
            "toomanyrequests: You have reached your pull rate limit",
        ] {
            assert!(!registry_unreachable(other), "{other}");
        }
    }
}
