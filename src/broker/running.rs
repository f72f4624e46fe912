//! The running managed broker as the commands after `server up` find it:
//! the container, the server dir it mounts, the spec it was created with.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::config::ServerDir;
use super::docker::{Container, Engine};
use super::{BrokerError, CONTAINER_PORT, ContainerSpec, LABEL_SERVER_DIR, Limits, RunAs};

pub(super) async fn running_managed(engine: &Engine, name: &str) -> Result<Container, BrokerError> {
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
            state: container.state.to_string(),
        });
    }
    Ok(container)
}

/// Staging into a folder the container does not mount would change nothing.
pub(super) fn check_mounts(container: &Container, dir: &ServerDir) -> Result<(), BrokerError> {
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
pub(super) fn spec_of(container: &Container) -> Result<ContainerSpec, BrokerError> {
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
        limits: Limits {
            memory: container.memory,
            pids: container.pids_limit,
        },
    })
}
