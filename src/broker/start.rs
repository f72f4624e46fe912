//! Starting the broker's container, and telling whether a running broker
//! answers: the steps of `server up` that wait on the engine or the broker.

use std::time::{Duration, Instant};

use super::docker::{Engine, StartError};
use super::ready;
use super::{BrokerError, ContainerSpec};
use crate::identity::Identity;

/// Whether the running broker completes an mTLS CONNECT. A broker that has
/// just been restarted (by Docker's restart policy, after a crash or a kill)
/// needs a moment before it listens, so it gets a few seconds' grace before
/// it is judged not to answer.
pub(super) async fn answers(identity: &Identity, spec: &ContainerSpec) -> bool {
    const GRACE: Duration = Duration::from_secs(3);
    let address = super::wait::probe_address(spec.bind);
    let deadline = Instant::now() + GRACE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ready::probe(
            identity,
            address,
            spec.port,
            left.max(Duration::from_millis(200)),
        )
        .await
        {
            Ok(_) => return true,
            Err(ready::Failure::Refused(_)) => return false,
            Err(ready::Failure::NotYet(_)) if Instant::now() >= deadline => return false,
            Err(ready::Failure::NotYet(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Whether a container that cannot start is removed again (one we just
/// created) or left for `server logs` (one that was there before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Made {
    Now,
    Before,
}

/// Starts the container; on failure, says why from its logs.
pub(super) async fn start(
    engine: &Engine,
    id: &str,
    spec: &ContainerSpec,
    made: Made,
) -> Result<(), BrokerError> {
    let Err(failure) = engine.start(id).await else {
        return Ok(());
    };
    if made == Made::Now {
        let _ = engine.remove(id).await;
    }
    Err(start_failure(engine, failure, spec).await)
}

pub(super) async fn start_failure(
    engine: &Engine,
    failure: StartError,
    spec: &ContainerSpec,
) -> BrokerError {
    match failure {
        StartError::PortBusy => {
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
