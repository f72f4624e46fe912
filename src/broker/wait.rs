//! Waiting for the broker, and explaining it when it dies instead.
//!
//! Ready means a real mTLS CONNECT with the server's own identity got a
//! CONNACK (never a fixed sleep). Between attempts the container is
//! inspected: when it exited or restarted, its last run's log says why.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::diagnose::diagnose;
use super::docker::{Container, Engine};
use super::ready::{self, Failure, Served};
use super::{BrokerError, ContainerSpec};
use crate::check::CheckError;
use crate::identity::Identity;

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

/// Where the probe connects: the bound address, or loopback for a wildcard.
pub(super) fn probe_address(bind: IpAddr) -> IpAddr {
    match bind {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// Waits for a CONNACK over mTLS with the server's own identity (and, after a
/// reload, for the staged certificate to be the one served), watching the
/// container: when it exits or restarts, its log says why.
pub(super) async fn wait_ready(
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
    let mut pause = Duration::from_millis(5);
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
            // After a reload the old certificate may be served (and be
            // expired) for a moment: only the staged one counts.
            Err(Failure::Refused(error))
                if expect_fingerprint.is_none() || !is_about_server_certificate(&error) =>
            {
                return Err(error.into());
            }
            Err(failure) => failure.message(),
        };
        let container = engine.existing(id, name).await?;
        // A restart alone may be the one that fixes it (after a reload), and
        // a broker killed just before we looked comes back by the restart
        // policy: one restart gets a few seconds. A container seen exited,
        // or restarting again, has failed.
        let one_restart = container.restart_count <= baseline + 1
            && started.elapsed() < RESTART_GRACE
            && (container.running || container.restarting);
        if (!container.running || container.restarting) && !one_restart {
            return Err(crashed(engine, &container, baseline).await);
        }
        if started.elapsed() >= timeout {
            break last;
        }
        tokio::time::sleep(pause.min(timeout.saturating_sub(started.elapsed()))).await;
        pause = (pause * 2).min(MAX_PAUSE);
    };
    Err(BrokerError::NotReady {
        name: name.to_string(),
        seconds: timeout.as_secs(),
        last,
    })
}

/// How long a broker that restarts once (killed just before `up` looked)
/// has to come back before it is judged to crash.
const RESTART_GRACE: Duration = Duration::from_secs(3);

/// The longest pause between attempts: short, because a broker that starts
/// in half a second should not be reported ready a quarter second late.
const MAX_PAUSE: Duration = Duration::from_millis(25);

fn is_about_server_certificate(error: &CheckError) -> bool {
    matches!(
        error,
        CheckError::ServerExpired { .. }
            | CheckError::ServerNotYetValid { .. }
            | CheckError::ServerUnknownIssuer { .. }
            | CheckError::ServerWrongName { .. }
            | CheckError::ServerCertInvalid { .. }
    )
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
