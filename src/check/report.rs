//! What a probe found, stage by stage: `check --json` prints it, `server
//! up` and `server status` read the server's certificate from it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{CheckError, Stage, Target};
use crate::diagnose::Diagnose;
use crate::identity::{CertInfo, Warning};

/// One stage's outcome, as `--json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub name: Stage,
    pub ok: bool,
    /// Milliseconds, to 0.1 ms.
    pub ms: f64,
    /// What the stage found, pass or fail.
    pub detail: String,
    pub error: Option<String>,
    pub hint: Option<String>,
}

/// The negotiated TLS session.
#[derive(Debug, Clone, Serialize)]
pub struct TlsSession {
    /// `TLS 1.2` or `TLS 1.3`.
    pub protocol: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// e.g. `X25519`.
    pub key_exchange: Option<String>,
}

/// How the address was found, and what the hosts file says.
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    /// `connect-to`, `literal` or `resolver`.
    pub source: &'static str,
    pub addresses: Vec<IpAddr>,
    /// What the hosts file says about the server name (not looked up for an
    /// address, or when the target names no hosts file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts_file: Option<HostsFileFinding>,
}

/// What the hosts file says about the server name.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum HostsFileFinding {
    Entry {
        path: String,
        addresses: Vec<IpAddr>,
    },
    NoEntry {
        path: String,
    },
    Unreadable {
        path: String,
        reason: String,
    },
}

/// The subscription as the broker granted it.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionReport {
    pub topic: String,
    pub qos: u8,
    /// The granted QoS; `None` when the broker refused (0x80).
    pub granted_qos: Option<u8>,
}

/// The message that proved access.
#[derive(Debug, Clone, Serialize)]
pub struct MessageReport {
    pub topic: String,
    pub qos: u8,
    pub retained: bool,
    pub bytes: usize,
    /// The payload as UTF-8 (invalid bytes replaced), at most 200 bytes of it.
    pub payload: String,
    /// Whether this was our own `--roundtrip` probe.
    pub roundtrip: bool,
}

/// Everything a probe found. `--json` prints it (plus `exit_code`, `error`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub server: String,
    pub port: u16,
    pub connect_to: Option<IpAddr>,
    pub device_id: Option<String>,
    pub stages: Vec<StageReport>,
    pub resolution: Option<Resolution>,
    pub connected_to: Option<SocketAddr>,
    pub tls: Option<TlsSession>,
    /// The server's certificate as presented, even when it failed verification.
    pub server_certificate: Option<CertInfo>,
    pub client_id: Option<String>,
    pub subscription: Option<SubscriptionReport>,
    pub message: Option<MessageReport>,
    /// Identity warnings (expires soon, key mode, …).
    pub warnings: Vec<Warning>,
    #[serde(skip)]
    pub(super) failure: Option<CheckError>,
}

impl Report {
    pub(super) fn new(target: &Target) -> Self {
        Report {
            server: target.server.to_string(),
            port: target.port,
            connect_to: target.connect_to,
            device_id: None,
            stages: Vec::new(),
            resolution: None,
            connected_to: None,
            tls: None,
            server_certificate: None,
            client_id: None,
            subscription: None,
            message: None,
            warnings: Vec::new(),
            failure: None,
        }
    }

    /// What ended the probe, if it did not pass.
    pub fn failure(&self) -> Option<&CheckError> {
        self.failure.as_ref()
    }

    pub fn into_failure(self) -> Option<CheckError> {
        self.failure
    }

    pub(super) fn pass(&mut self, stage: Stage, started: Instant, detail: String) {
        self.stages.push(StageReport {
            name: stage,
            ok: true,
            ms: millis(started.elapsed()),
            detail,
            error: None,
            hint: None,
        });
    }

    pub(super) fn fail(
        &mut self,
        started: Instant,
        detail: String,
        error: CheckError,
    ) -> CheckError {
        self.stages.push(StageReport {
            name: error.stage(),
            ok: false,
            ms: millis(started.elapsed()),
            detail,
            error: Some(error.to_string()),
            hint: error.hint(),
        });
        error
    }
}

pub(super) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
