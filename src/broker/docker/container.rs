//! A container as `docker inspect` describes it, in plain values.

use std::collections::HashMap;

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};
use serde::Serialize;

use crate::identity::Timestamp;

/// A host address and port published to the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    pub host_ip: String,
    pub host_port: u16,
    /// e.g. `8883/tcp`.
    pub container_port: String,
}

/// A container's state, as the engine names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Running,
    Paused,
    Restarting,
    Stopping,
    Removing,
    Exited,
    Dead,
    Unknown,
}

impl From<ContainerStateStatusEnum> for State {
    fn from(status: ContainerStateStatusEnum) -> State {
        match status {
            ContainerStateStatusEnum::CREATED => State::Created,
            ContainerStateStatusEnum::RUNNING => State::Running,
            ContainerStateStatusEnum::PAUSED => State::Paused,
            ContainerStateStatusEnum::RESTARTING => State::Restarting,
            ContainerStateStatusEnum::STOPPING => State::Stopping,
            ContainerStateStatusEnum::REMOVING => State::Removing,
            ContainerStateStatusEnum::EXITED => State::Exited,
            ContainerStateStatusEnum::DEAD => State::Dead,
            ContainerStateStatusEnum::EMPTY => State::Unknown,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Restarting => "restarting",
            State::Stopping => "stopping",
            State::Removing => "removing",
            State::Exited => "exited",
            State::Dead => "dead",
            State::Unknown => "unknown",
        })
    }
}

/// What `docker inspect` says about a container, in plain values.
#[derive(Debug, Clone, Serialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// The image reference it was created from, e.g. `eclipse-mosquitto:2`.
    pub image: String,
    pub image_id: String,
    /// The `User` it runs as; empty for the image's default.
    pub user: String,
    #[serde(skip)]
    pub labels: HashMap<String, String>,
    pub state: State,
    pub running: bool,
    pub restarting: bool,
    pub exit_code: Option<i64>,
    /// The kernel's OOM killer ended the last run.
    pub oom_killed: bool,
    /// The engine's own error, e.g. when the process could not start.
    pub error: Option<String>,
    pub started_at: Option<Timestamp>,
    pub restart_count: i64,
    pub ports: Vec<Published>,
    /// The memory limit in bytes; 0 for none.
    pub memory: i64,
    /// The process limit; 0 or less for none.
    pub pids_limit: i64,
    /// Whether it runs with no capabilities, no new privileges and a
    /// read-only root filesystem (what `server up` creates).
    pub hardened: bool,
    /// The engine's restart policy (`unless-stopped`, `always`, `no`, …);
    /// empty when none is set.
    pub restart_policy: String,
}

impl Container {
    pub(super) fn from_inspect(c: ContainerInspectResponse) -> Container {
        let state = c.state.unwrap_or_default();
        let config = c.config.unwrap_or_default();
        let host = c.host_config.unwrap_or_default();
        let hardened = host.readonly_rootfs == Some(true)
            && host
                .cap_drop
                .as_ref()
                .is_some_and(|caps| caps.iter().any(|c| c.eq_ignore_ascii_case("ALL")))
            && host
                .security_opt
                .as_ref()
                .is_some_and(|opts| opts.iter().any(|o| o.starts_with("no-new-privileges")));
        let (memory, pids_limit) = (host.memory.unwrap_or(0), host.pids_limit.unwrap_or(0));
        let restart_policy = host
            .restart_policy
            .as_ref()
            .and_then(|p| p.name)
            .map(|name| name.to_string())
            .unwrap_or_default();
        let ports = host
            .port_bindings
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(container_port, bindings)| {
                bindings
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |b| Published {
                        host_ip: b
                            .host_ip
                            .filter(|ip| !ip.is_empty())
                            .unwrap_or_else(|| "0.0.0.0".into()),
                        host_port: b.host_port.and_then(|p| p.parse().ok()).unwrap_or(0),
                        container_port: container_port.clone(),
                    })
            })
            .collect();
        Container {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image: config.image.unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            user: config.user.unwrap_or_default(),
            labels: config.labels.unwrap_or_default(),
            state: state.status.map_or(State::Unknown, State::from),
            running: state.running.unwrap_or(false),
            restarting: state.restarting.unwrap_or(false),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            error: state.error.filter(|e| !e.is_empty()),
            started_at: state.started_at.as_deref().and_then(parse_time),
            restart_count: c.restart_count.unwrap_or(0),
            ports,
            memory,
            pids_limit,
            hardened,
            restart_policy,
        }
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// Docker's `2026-05-07T21:09:36.123456789Z`; its zero time means never.
pub(super) fn parse_time(text: &str) -> Option<Timestamp> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()?
        .unix_timestamp();
    (t > 0).then_some(Timestamp(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_times_parse_and_zero_means_never() {
        assert_eq!(
            parse_time("2026-05-07T21:09:36.123456789Z"),
            Some(Timestamp(1_778_188_176))
        );
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
    }
}
