//! One readiness attempt: a real mTLS CONNECT with the server's own identity,
//! through [`crate::check::probe`] (the same TLS configuration and client as
//! `wott-mqtt check`), reporting the certificate the broker served.
//!
//! A broker that is still starting refuses or drops the connection; that is
//! worth another attempt. A broker that answers and rejects us (or serves a
//! certificate we cannot accept) will not change its mind: that ends the wait.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::check::{self, CheckError, Host, Plan, Until};
use crate::identity::{Identity, Timestamp};

/// How long one attempt may take before the next.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// The certificate the broker presented, read over TLS.
#[derive(Debug, Clone, Serialize)]
pub struct Served {
    pub common_name: Option<String>,
    pub serial: String,
    pub not_after: Timestamp,
    pub fingerprint_sha256: String,
    /// `TLS 1.2` or `TLS 1.3`.
    pub protocol: Option<String>,
}

/// Why an attempt did not get a CONNACK.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Not listening yet, or dropped the connection: try again.
    NotYet(String),
    /// The broker answered and refused, or its certificate is unacceptable.
    Refused(CheckError),
}

impl Failure {
    pub fn message(&self) -> String {
        match self {
            Failure::NotYet(reason) => reason.clone(),
            Failure::Refused(e) => e.to_string(),
        }
    }
}

/// Connects to `address:port`, verifies the broker's certificate against the
/// server's device ID, presents the server's identity, and waits for CONNACK.
pub async fn probe(
    identity: &Identity,
    address: IpAddr,
    port: u16,
    timeout: Duration,
) -> Result<Served, Failure> {
    let server = Host::parse(identity.device_id()).map_err(|e| {
        Failure::Refused(CheckError::ServerCertInvalid {
            reason: e.to_string(),
        })
    })?;
    let target = check::Target {
        server,
        port,
        connect_to: Some(address),
        hosts_file: None,
    };
    let report = check::probe(identity, &target, &Plan::new(Until::Connect, timeout)).await;
    let served = report.server_certificate.as_ref().map(|cert| Served {
        common_name: cert.common_name.clone(),
        serial: cert.serial.clone(),
        not_after: cert.not_after,
        fingerprint_sha256: cert.fingerprint_sha256.clone(),
        protocol: report.tls.as_ref().map(|t| t.protocol.clone()),
    });
    match (report.into_failure(), served) {
        (None, Some(served)) => Ok(served),
        (None, None) => Err(Failure::NotYet(
            "the handshake completed but recorded no server certificate".into(),
        )),
        (Some(error), _) if is_transient(&error) => Err(Failure::NotYet(error.to_string())),
        (Some(error), _) => Err(Failure::Refused(error)),
    }
}

/// What a broker (or the engine's port proxy in front of it) says while it
/// is still starting.
fn is_transient(error: &CheckError) -> bool {
    matches!(
        error,
        CheckError::Connect { .. }
            | CheckError::HandshakeClosed { .. }
            | CheckError::NotTls { .. }
            | CheckError::Tls { .. }
            | CheckError::ConnectionLost { .. }
            | CheckError::ClosedAfterConnect { .. }
            | CheckError::Timeout { .. }
    )
}
