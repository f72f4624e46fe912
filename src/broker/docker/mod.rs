//! The container engine, through the Docker Engine API (bollard).
//!
//! Only the calls the broker's lifecycle needs, each turning the engine's
//! answer into plain values and its failures into [`BrokerError`]s that say
//! what was being done. bollard models API 1.53 but sends requests without a
//! version prefix, so the engine answers in its own default version; every
//! call here is exercised against a Docker 20.10 engine (API 1.41) by the
//! tests.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};

pub(crate) mod container;
mod load;
mod pull;

pub use container::Container;

use super::error::{BrokerError, Tried};

/// How long one ordinary API call may take (a stop waits up to 10 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an endpoint may take to answer the first ping.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected container engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: String,
}

/// A mount, as the container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// Everything needed to create the broker's container.
#[derive(Debug, Clone)]
pub struct CreateRequest<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub bind: IpAddr,
    pub port: u16,
    pub container_port: u16,
    pub mounts: Vec<BindMount>,
    /// The container's `User` (`uid:gid`).
    pub user: String,
    pub limits: super::Limits,
    pub labels: HashMap<String, String>,
}

impl Engine {
    /// Connects to `DOCKER_HOST` when set; else to the Docker socket, then
    /// Podman's (rootless, then system). Each must answer a ping; when none
    /// does, the error lists each endpoint and why.
    pub async fn connect() -> Result<Engine, BrokerError> {
        let from_env = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty());
        let candidates = match &from_env {
            Some(host) => vec![host.trim().to_string()],
            None => default_endpoints(),
        };
        let mut tried = Vec::new();
        for endpoint in candidates {
            let docker = match Docker::connect_with_host(&endpoint) {
                Ok(docker) => docker.with_timeout(REQUEST_TIMEOUT),
                Err(DockerError::UnsupportedURISchemeError { .. }) => {
                    return Err(BrokerError::UnsupportedHost { value: endpoint });
                }
                Err(DockerError::SocketNotFoundError(_)) => {
                    tried.push(Tried {
                        endpoint,
                        reason: "no such socket".into(),
                        permission_denied: false,
                    });
                    continue;
                }
                Err(e) => {
                    tried.push(Tried {
                        endpoint,
                        reason: reason(&e),
                        permission_denied: io_kind(&e) == Some(io::ErrorKind::PermissionDenied),
                    });
                    continue;
                }
            };
            match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
                Ok(Ok(_)) => return Ok(Engine { docker, endpoint }),
                Ok(Err(e)) => tried.push(Tried {
                    endpoint,
                    reason: reason(&e),
                    permission_denied: io_kind(&e) == Some(io::ErrorKind::PermissionDenied),
                }),
                Err(_) => tried.push(Tried {
                    endpoint,
                    reason: format!("no answer within {} s", PING_TIMEOUT.as_secs()),
                    permission_denied: false,
                }),
            }
        }
        Err(BrokerError::EngineUnreachable {
            tried,
            from_env: from_env.is_some(),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn fail(&self, during: &str, error: DockerError) -> BrokerError {
        if is_connection_lost(&error) {
            return BrokerError::EngineLost {
                endpoint: self.endpoint.clone(),
                during: during.to_string(),
                message: reason(&error),
            };
        }
        BrokerError::Engine {
            endpoint: self.endpoint.clone(),
            during: during.to_string(),
            message: reason(&error),
        }
    }

    /// The engine's name and version, e.g. `Docker Engine - Community 27.5.1 (API 1.47)`.
    pub async fn version(&self) -> Result<String, BrokerError> {
        let v = self
            .docker
            .version()
            .await
            .map_err(|e| self.fail("read the engine's version", e))?;
        let product = v
            .platform
            .map(|p| p.name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "engine".into());
        Ok(format!(
            "{product} {} (API {}, {} {})",
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default(),
            v.os.unwrap_or_default(),
            v.arch.unwrap_or_default(),
        ))
    }

    /// The container called `name`, or `None`.
    pub async fn container(&self, name: &str) -> Result<Option<Container>, BrokerError> {
        match self.docker.inspect_container(name, None).await {
            Ok(c) => Ok(Some(Container::from_inspect(c))),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(self.fail(&format!("inspect the container {name}"), e)),
        }
    }

    /// The container called (or with the ID) `key`; `name` is how the error names it.
    pub async fn existing(&self, key: &str, name: &str) -> Result<Container, BrokerError> {
        self.container(key)
            .await?
            .ok_or_else(|| BrokerError::NoContainer {
                name: name.to_string(),
            })
    }

    /// The ID of the local image `image` refers to, or `None` when it is not here.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, BrokerError> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(i.id),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(self.fail(&format!("inspect the image {image}"), e)),
        }
    }

    /// Creates the broker's container; returns its ID.
    pub async fn create(&self, request: &CreateRequest<'_>) -> Result<String, BrokerError> {
        let port_key = format!("{}/tcp", request.container_port);
        let body = ContainerCreateBody {
            image: Some(request.image.to_string()),
            user: Some(request.user.clone()),
            labels: Some(request.labels.clone()),
            exposed_ports: Some(vec![port_key.clone()]),
            host_config: Some(HostConfig {
                port_bindings: Some(HashMap::from([(
                    port_key,
                    Some(vec![PortBinding {
                        host_ip: Some(request.bind.to_string()),
                        host_port: Some(request.port.to_string()),
                    }]),
                )])),
                mounts: Some(
                    request
                        .mounts
                        .iter()
                        .map(|m| Mount {
                            typ: Some(MountType::BIND),
                            source: Some(m.source.clone()),
                            target: Some(m.target.clone()),
                            read_only: Some(m.read_only),
                            ..Default::default()
                        })
                        .collect(),
                ),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                // Mosquitto runs as its own user from the start, so it needs
                // no capability and may gain none; it writes only to the
                // data and log mounts.
                cap_drop: Some(vec!["ALL".to_string()]),
                security_opt: Some(vec!["no-new-privileges:true".to_string()]),
                readonly_rootfs: Some(true),
                memory: Some(request.limits.memory),
                pids_limit: Some(request.limits.pids),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(request.name)
            .build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map(|r| r.id)
            .map_err(|e| self.fail(&format!("create the container {}", request.name), e))
    }

    /// Starts a container. A port that is taken comes back as [`StartError::PortBusy`].
    pub async fn start(&self, id: &str) -> Result<(), StartError> {
        match self.docker.start_container(id, None).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let message = reason(&e);
                if message.contains("address already in use")
                    || message.contains("port is already allocated")
                {
                    Err(StartError::PortBusy)
                } else {
                    Err(StartError::Other(self.fail("start the container", e)))
                }
            }
        }
    }

    /// Stops a container, giving Mosquitto 10 s to save its state.
    pub async fn stop(&self, id: &str) -> Result<(), BrokerError> {
        let options = StopContainerOptionsBuilder::default().t(10).build();
        match self.docker.stop_container(id, Some(options)).await {
            // 304: already stopped.
            Ok(()) => Ok(()),
            Err(e) if status(&e) == Some(304) => Ok(()),
            Err(e) => Err(self.fail("stop the container", e)),
        }
    }

    /// Restarts a container (stop, giving Mosquitto 10 s, then start).
    pub async fn restart(&self, id: &str) -> Result<(), BrokerError> {
        let options = RestartContainerOptionsBuilder::default().t(10).build();
        self.docker
            .restart_container(id, Some(options))
            .await
            .map_err(|e| self.fail("restart the container", e))
    }

    /// Removes a container, killing it if it still runs, with the anonymous
    /// volumes the image's `VOLUME`s gave it (`/mosquitto/log` when nothing
    /// is mounted there); bind mounts and named volumes stay.
    pub async fn remove(&self, id: &str) -> Result<(), BrokerError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status(&e) == Some(404) => Ok(()),
            Err(e) => Err(self.fail("remove the container", e)),
        }
    }

    /// Sends a signal, e.g. `SIGHUP` to make Mosquitto reload.
    pub async fn signal(&self, id: &str, signal: &str) -> Result<(), BrokerError> {
        let options = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.docker
            .kill_container(id, Some(options))
            .await
            .map_err(|e| self.fail(&format!("send {signal} to the container"), e))
    }

    /// The container's output, stdout and stderr together, as it arrives.
    pub fn logs(
        &self,
        id: &str,
        tail: Option<u64>,
        follow: bool,
    ) -> impl Stream<Item = Result<Vec<u8>, BrokerError>> + '_ {
        self.logs_since(id, tail, follow, None)
    }

    /// [`Engine::logs`] from the Unix time `since` (seconds) on.
    pub fn logs_since(
        &self,
        id: &str,
        tail: Option<u64>,
        follow: bool,
        since: Option<i64>,
    ) -> impl Stream<Item = Result<Vec<u8>, BrokerError>> + '_ {
        let tail = tail.map_or_else(|| "all".to_string(), |n| n.to_string());
        let mut options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .tail(&tail);
        if let Some(since) = since.and_then(|s| i32::try_from(s).ok()) {
            options = options.since(since);
        }
        let options = options.build();
        self.docker
            .logs(id, Some(options))
            .map(move |item| match item {
                Ok(
                    LogOutput::StdOut { message }
                    | LogOutput::StdErr { message }
                    | LogOutput::Console { message }
                    | LogOutput::StdIn { message },
                ) => Ok(message.to_vec()),
                Err(e) => Err(self.fail("read the container's log", e)),
            })
    }

    /// The last `tail` lines of the container's log.
    pub async fn log_lines(&self, id: &str, tail: u64) -> Result<Vec<String>, BrokerError> {
        self.log_lines_since(id, Some(tail), None).await
    }

    /// The log lines from the Unix time `since` on (the last `tail` of them).
    pub async fn log_lines_since(
        &self,
        id: &str,
        tail: Option<u64>,
        since: Option<i64>,
    ) -> Result<Vec<String>, BrokerError> {
        let mut bytes = Vec::new();
        let mut stream = std::pin::pin!(self.logs_since(id, tail, false, since));
        while let Some(chunk) = stream.next().await {
            bytes.extend(chunk?);
        }
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// The last `tail` lines of the container's log, each with the Unix
    /// time (nanoseconds) the engine received it.
    pub async fn timed_log_lines(
        &self,
        id: &str,
        tail: u64,
    ) -> Result<Vec<(Option<i128>, String)>, BrokerError> {
        let tail = tail.to_string();
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .tail(&tail)
            .build();
        let mut bytes = Vec::new();
        let mut stream = std::pin::pin!(self.docker.logs(id, Some(options)));
        while let Some(item) = stream.next().await {
            match item.map_err(|e| self.fail("read the container's log", e))? {
                LogOutput::StdOut { message }
                | LogOutput::StdErr { message }
                | LogOutput::Console { message }
                | LogOutput::StdIn { message } => bytes.extend_from_slice(&message),
            }
        }
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| match line.split_once(' ') {
                Some((at, rest)) => (unix_nanos(at), rest.to_string()),
                None => (unix_nanos(line), String::new()),
            })
            .collect())
    }

    /// The (ID, name) of running containers carrying every `key=value` label.
    pub async fn running_with_labels(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, BrokerError> {
        self.list(HashMap::from([
            (
                "label",
                labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            ),
            ("status", vec!["running".to_string()]),
        ]))
        .await
    }

    /// The start, die and destroy events of the containers carrying the
    /// label `key=value`, as they happen; the stream ends (or errs) when the
    /// engine goes away.
    pub fn container_events(
        &self,
        label: (&str, &str),
    ) -> impl Stream<Item = Result<ContainerEvent, BrokerError>> + 'static {
        let engine = self.clone();
        let filters = HashMap::from([
            ("type", vec!["container".to_string()]),
            ("label", vec![format!("{}={}", label.0, label.1)]),
            (
                "event",
                vec![
                    "start".to_string(),
                    "die".to_string(),
                    "destroy".to_string(),
                ],
            ),
        ]);
        let options = EventsOptionsBuilder::default().filters(&filters).build();
        self.docker.events(Some(options)).map(move |item| {
            let message = item.map_err(|e| engine.fail("follow the engine's events", e))?;
            let attributes = message.actor.and_then(|a| a.attributes).unwrap_or_default();
            Ok(ContainerEvent {
                action: message.action.unwrap_or_default(),
                name: attributes.get("name").cloned().unwrap_or_default(),
                exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
            })
        })
    }

    /// The (ID, name) of containers in any state carrying every `key=value` label.
    pub async fn with_labels(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, BrokerError> {
        self.list_all(
            HashMap::from([(
                "label",
                labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            )]),
            true,
        )
        .await
    }

    /// The names of running containers that publish host port `port`.
    pub async fn publishers_of(&self, port: u16) -> Result<Vec<String>, BrokerError> {
        let list = self
            .list(HashMap::from([("publish", vec![port.to_string()])]))
            .await?;
        Ok(list.into_iter().map(|(_, name)| name).collect())
    }

    /// The (ID, name) of the running containers `filters` select.
    async fn list(
        &self,
        filters: HashMap<&str, Vec<String>>,
    ) -> Result<Vec<(String, String)>, BrokerError> {
        self.list_all(filters, false).await
    }

    /// The (ID, name) of the containers `filters` select, stopped ones too with `all`.
    async fn list_all(
        &self,
        filters: HashMap<&str, Vec<String>>,
        all: bool,
    ) -> Result<Vec<(String, String)>, BrokerError> {
        let options = ListContainersOptionsBuilder::default()
            .all(all)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.fail("list containers", e))?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let name = c.names?.into_iter().next()?;
                Some((c.id?, name.trim_start_matches('/').to_string()))
            })
            .collect())
    }
}

/// An RFC 3339 time as the engine writes it (`2026-12-03T11:10:21.123456789Z`).
fn unix_nanos(text: &str) -> Option<i128> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp_nanos)
}

/// A container event the engine reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// `start`, `die` or `destroy`.
    pub action: String,
    pub name: String,
    /// For `die`: the main process's exit code.
    pub exit_code: Option<i64>,
}

/// Why a start failed.
#[derive(Debug)]
pub enum StartError {
    /// The engine could not bind the host port.
    PortBusy,
    Other(BrokerError),
}

/// `eclipse-mosquitto:2` → (`eclipse-mosquitto`, `2`); `host:5000/img` →
/// (`host:5000/img`, `latest`); a digest reference stays whole. Without a
/// tag the engine would pull every tag of the repository.
pub fn split_reference(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], Some(&image[name_start + i + 1..])),
        None => (image, Some("latest")),
    }
}

fn default_endpoints() -> Vec<String> {
    let uid = rustix::process::getuid().as_raw();
    endpoints_for(std::env::var_os("XDG_RUNTIME_DIR").as_deref(), uid)
}

/// Docker's socket, then Podman's: rootless (`$XDG_RUNTIME_DIR`, then
/// `/run/user/UID`), then the system one.
fn endpoints_for(runtime_dir: Option<&std::ffi::OsStr>, uid: u32) -> Vec<String> {
    let mut endpoints = vec!["unix:///var/run/docker.sock".to_string()];
    if let Some(runtime) = runtime_dir.filter(|d| !d.is_empty()) {
        endpoints.push(format!(
            "unix://{}",
            Path::new(runtime).join("podman/podman.sock").display()
        ));
    }
    let user = format!("unix:///run/user/{uid}/podman/podman.sock");
    if !endpoints.contains(&user) {
        endpoints.push(user);
    }
    endpoints.push("unix:///run/podman/podman.sock".to_string());
    endpoints
}

fn status(error: &DockerError) -> Option<u16> {
    match error {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// A short reason: the engine's own message, or the underlying I/O error.
/// Whether the connection to the engine broke (the engine stopped, crashed
/// or restarted), as opposed to the engine answering with an error.
fn is_connection_lost(error: &DockerError) -> bool {
    match error {
        DockerError::HyperLegacyError { .. } | DockerError::HyperResponseError { .. } => true,
        DockerError::IOError { err } => matches!(
            err.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionRefused
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::NotFound
        ),
        _ => false,
    }
}

/// The kind of the I/O error under an engine error, if one is under it.
fn io_kind(error: &DockerError) -> Option<io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        source = e.source();
    }
    None
}

fn reason(error: &DockerError) -> String {
    match error {
        DockerError::DockerResponseServerError { message, .. } => return message.clone(),
        DockerError::RequestTimeoutError => return "the request timed out".into(),
        _ => {}
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::PermissionDenied => "permission denied".into(),
                io::ErrorKind::ConnectionRefused => "connection refused".into(),
                io::ErrorKind::NotFound => "no such socket".into(),
                _ => io.to_string(),
            };
        }
        source = e.source();
    }
    error.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_like_the_docker_cli() {
        assert_eq!(
            split_reference("eclipse-mosquitto:2"),
            ("eclipse-mosquitto", Some("2"))
        );
        assert_eq!(
            split_reference("eclipse-mosquitto"),
            ("eclipse-mosquitto", Some("latest"))
        );
        assert_eq!(
            split_reference("registry.local:5000/org/mosquitto"),
            ("registry.local:5000/org/mosquitto", Some("latest"))
        );
        assert_eq!(
            split_reference("registry.local:5000/org/mosquitto:2.0"),
            ("registry.local:5000/org/mosquitto", Some("2.0"))
        );
        assert_eq!(
            split_reference("mosquitto@sha256:abc"),
            ("mosquitto@sha256:abc", None)
        );
    }

    #[test]
    fn docker_comes_first_then_podman_rootless_then_system() {
        assert_eq!(
            endpoints_for(Some(std::ffi::OsStr::new("/run/user/1000")), 1000),
            [
                "unix:///var/run/docker.sock",
                "unix:///run/user/1000/podman/podman.sock",
                "unix:///run/podman/podman.sock",
            ]
        );
        assert_eq!(
            endpoints_for(Some(std::ffi::OsStr::new("/tmp/xdg")), 1000),
            [
                "unix:///var/run/docker.sock",
                "unix:///tmp/xdg/podman/podman.sock",
                "unix:///run/user/1000/podman/podman.sock",
                "unix:///run/podman/podman.sock",
            ]
        );
        assert_eq!(endpoints_for(None, 0).len(), 3);
    }
}
