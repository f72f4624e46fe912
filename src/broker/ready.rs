//! Readiness: the broker is up when a real mTLS CONNECT with the server's own
//! identity gets a CONNACK, through the same probe as `wott-mqtt check`.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::identity::{Identity, Timestamp};

/// How long one attempt may take before the next.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// The certificate the broker presented.
#[derive(Debug, Clone, Serialize)]
pub struct Served {
    pub common_name: Option<String>,
    pub not_after: Timestamp,
    pub fingerprint_sha256: String,
}

/// One mTLS CONNECT to `address:port`, verifying the server as this device's ID.
pub async fn probe(
    _identity: &Identity,
    _address: IpAddr,
    _port: u16,
    _timeout: Duration,
) -> Result<Served, String> {
    // PENDING: wired to crate::check::probe once the check branch is on main.
    Err("the readiness probe is not wired yet".into())
}
