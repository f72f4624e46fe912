//! Stage 2, **resolve**: the address to dial, from `--connect-to`, an IP
//! given as the server, or the system resolver, and what the hosts file says
//! about the name (the tutorial's own step).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use tokio::time::Instant;

use std::fmt;

use super::*;

impl Probe<'_> {
    pub(super) async fn resolve(&mut self) -> Result<(Vec<SocketAddr>, Via), CheckError> {
        let started = Instant::now();
        let port = self.target.port;
        let server = &self.target.server;
        let (source, via, result) = match (self.target.connect_to, server.ip()) {
            (Some(ip), _) => ("connect-to", Via::ConnectTo, Ok(vec![ip])),
            (None, Some(ip)) => ("literal", Via::Literal, Ok(vec![ip])),
            (None, None) => {
                let name = server.to_string();
                let lookup = async {
                    let found = tokio::net::lookup_host((name.as_str(), port))
                        .await
                        .map_err(|e| CheckError::Resolve {
                            host: name.clone(),
                            reason: resolver_reason(&e),
                        })?;
                    let mut ips: Vec<IpAddr> = Vec::new();
                    for addr in found {
                        if !ips.contains(&addr.ip()) {
                            ips.push(addr.ip());
                        }
                    }
                    if ips.is_empty() {
                        return Err(CheckError::Resolve {
                            host: name.clone(),
                            reason: "the resolver returned no address".into(),
                        });
                    }
                    Ok(ips)
                };
                (
                    "resolver",
                    Via::Resolved,
                    self.bounded(Stage::Resolve, lookup).await,
                )
            }
        };
        let hosts_file = match server.ip() {
            None => self
                .target
                .hosts_file
                .as_deref()
                .map(|path| hosts_file_finding(path, &server.to_string())),
            Some(_) => None,
        };
        let addresses = match result {
            Ok(addresses) => addresses,
            Err(e) => {
                let detail = hosts_file.as_ref().map(describe_hosts).unwrap_or_default();
                return Err(self.report.fail(started, detail, e));
            }
        };
        let list = join(addresses.iter());
        let detail = match via {
            Via::ConnectTo => format!(
                "{list} from --connect-to (not resolved); TLS verifies {}",
                self.target.server
            ),
            Via::Literal => format!("{list} is an address; nothing to resolve"),
            Via::Resolved => format!("{} → {list}", self.target.server),
        };
        let detail = match &hosts_file {
            Some(finding) => format!("{detail}; {}", describe_hosts(finding)),
            None => detail,
        };
        self.report.resolution = Some(Resolution {
            source,
            addresses: addresses.clone(),
            hosts_file,
        });
        self.report.pass(Stage::Resolve, started, detail);
        Ok((
            addresses
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            via,
        ))
    }
}

pub(super) fn describe_hosts(finding: &HostsFileFinding) -> String {
    match finding {
        HostsFileFinding::Entry { path, addresses } => {
            format!("{path} maps it to {}", join(addresses.iter()))
        }
        HostsFileFinding::NoEntry { path } => format!("{path} has no entry for it"),
        HostsFileFinding::Unreadable { path, reason } => format!("cannot read {path}: {reason}"),
    }
}

/// What the hosts file at `path` says about `name`.
pub(super) fn hosts_file_finding(path: &Path, name: &str) -> HostsFileFinding {
    let shown = path.display().to_string();
    match crate::hosts::lookup(path, name) {
        Ok(addresses) if addresses.is_empty() => HostsFileFinding::NoEntry { path: shown },
        Ok(addresses) => HostsFileFinding::Entry {
            path: shown,
            addresses,
        },
        Err(e) => HostsFileFinding::Unreadable {
            path: shown,
            reason: e.to_string(),
        },
    }
}

pub(super) fn join<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// getaddrinfo's message without Rust's "failed to lookup address information:" prefix.
pub(super) fn resolver_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    text.strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text)
        .to_string()
}
