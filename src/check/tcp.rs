//! Stage 3, **tcp**: a connection to each address in turn, and why none
//! answered.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::error::ConnectFailure;
use super::*;

impl Probe<'_> {
    /// Tries each address in turn, like curl; the last failure is the one reported.
    pub(super) async fn tcp(
        &mut self,
        addresses: &[SocketAddr],
    ) -> Result<(TcpStream, SocketAddr), CheckError> {
        let started = Instant::now();
        let mut failures: Vec<String> = Vec::new();
        let mut last = None;
        for &addr in addresses {
            let attempt = async {
                TcpStream::connect(addr)
                    .await
                    .map_err(|e| CheckError::Connect {
                        addr,
                        failure: classify::classify_connect(&e),
                        reason: connect_reason(&e),
                        loopback_only: None,
                    })
            };
            match self.bounded(Stage::Tcp, attempt).await {
                Ok(stream) => {
                    let mut detail = format!("connected to {addr}");
                    if !failures.is_empty() {
                        detail.push_str(&format!(" (after {})", failures.join("; ")));
                    }
                    self.report.connected_to = Some(addr);
                    self.report.pass(Stage::Tcp, started, detail);
                    return Ok((stream, addr));
                }
                Err(e @ CheckError::Timeout { .. }) => {
                    failures.push(format!("{addr}: no answer"));
                    last = Some(e);
                    break;
                }
                Err(e) => {
                    let reason = match &e {
                        CheckError::Connect { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    };
                    failures.push(format!("{addr}: {reason}"));
                    last = Some(e);
                }
            }
        }
        if let Some(CheckError::Connect {
            addr,
            failure: ConnectFailure::Refused,
            loopback_only,
            ..
        }) = &mut last
        {
            *loopback_only = loopback_listener(*addr).await;
        }
        let error = last.unwrap_or_else(|| CheckError::Resolve {
            host: self.target.server.to_string(),
            reason: "no address to connect to".into(),
        });
        Err(self.report.fail(started, failures.join("; "), error))
    }
}

/// When `refused` is an address of this machine other than loopback, the
/// same port on loopback, if something listens there: a broker bound to
/// 127.0.0.1 only (`server up --bind 127.0.0.1`) refuses every other address.
async fn loopback_listener(refused: SocketAddr) -> Option<SocketAddr> {
    let ip = refused.ip();
    // Binding works only to an address this machine has.
    if ip.is_loopback() || std::net::UdpSocket::bind((ip, 0)).is_err() {
        return None;
    }
    let loopback = match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    let probe = SocketAddr::new(loopback, refused.port());
    match tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(probe)).await {
        Ok(Ok(_)) => Some(probe),
        _ => None,
    }
}

/// "connection refused", without the "(os error 111)" suffix.
pub(super) fn connect_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.to_lowercase()
}
