//! What a probe is asked to do: the server ([`Host`], [`Target`]), how far
//! to go ([`Until`]) and within what time ([`Plan`]).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use rumqttc::QoS;
use rustls::pki_types::ServerName;
use serde::Serialize;

use crate::names::{DeviceId, IdPolicy, NameError, TopicFilter, TopicName};

/// One step of the probe, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Identity,
    Resolve,
    Tcp,
    Tls,
    /// CONNECT → CONNACK.
    Connect,
    /// SUBSCRIBE → SUBACK.
    Subscribe,
    Message,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Identity => "identity",
            Stage::Resolve => "resolve",
            Stage::Tcp => "tcp",
            Stage::Tls => "tls",
            Stage::Connect => "connect",
            Stage::Subscribe => "subscribe",
            Stage::Message => "message",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The server as the user names it: its device ID (a DNS name), or an
/// address. Only [`Host::parse`] makes one, so it is always a name TLS can verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host(ServerName<'static>);

impl Host {
    /// An IP literal, or a DNS name TLS can verify (a name read from a
    /// certificate or a record, taken as it is).
    pub fn parse(value: &str) -> Result<Host, NameError> {
        Self::typed(value, IdPolicy::Any)
    }

    /// An IP literal, or a device ID a person typed (`--server`, a prompt):
    /// under [`IdPolicy::Wott`] it must be WoTT-shaped.
    pub fn typed(value: &str, policy: IdPolicy) -> Result<Host, NameError> {
        if let Ok(ip) = value.parse::<IpAddr>() {
            return Ok(Host(ServerName::IpAddress(ip.into())));
        }
        let id = DeviceId::typed(value, policy)?;
        let name =
            ServerName::try_from(id.as_str().to_string()).map_err(|e| NameError::DeviceId {
                value: value.to_string(),
                reason: format!("TLS cannot verify it as a server name ({e})"),
            })?;
        Ok(Host(name))
    }

    /// The address, when the server was given as one.
    pub fn ip(&self) -> Option<IpAddr> {
        match &self.0 {
            ServerName::IpAddress(ip) => Some(IpAddr::from(*ip)),
            _ => None,
        }
    }

    /// The name TLS verifies and sends as SNI.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.0
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_str())
    }
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The server's device ID (verified against its certificate) or address.
    pub server: Host,
    pub port: u16,
    /// Dial this address instead of resolving `server`; TLS still verifies
    /// `server`. Like curl `--resolve`.
    pub connect_to: Option<IpAddr>,
    /// The hosts file whose entry for `server` the resolve stage reports
    /// (`None`: don't look).
    pub hosts_file: Option<PathBuf>,
}

/// What to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub filter: TopicFilter,
    pub qos: QoS,
}

/// Which message proves access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Any message on the subscription, e.g. a retained one (`--wait`).
    Any,
    /// Our own probe, published to this topic (`--roundtrip`).
    Roundtrip(TopicName),
}

/// How far the probe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    /// CONNACK: the broker accepted this device.
    Connect,
    /// SUBACK. Under Mosquitto's acl_file this proves nothing about access.
    Subscribe(Subscription),
    /// A message, waiting at most `within` after SUBACK.
    Message {
        subscription: Subscription,
        expect: Expect,
        within: Duration,
    },
}

/// How to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub until: Until,
    /// Bounds the whole probe, every stage included.
    pub timeout: Duration,
    /// The MQTT client ID. Never the device ID itself: the broker would
    /// disconnect the device's own session with that ID.
    pub client_id: String,
}

impl Plan {
    /// A plan with a fresh random client ID ([`random_client_id`]).
    pub fn new(until: Until, timeout: Duration) -> Self {
        Plan {
            until,
            timeout,
            client_id: random_client_id(),
        }
    }
}

/// `wott-check-` and 12 random hex digits: 23 characters, the most MQTT
/// 3.1.1 guarantees a broker accepts, and unique so that no other client's
/// session is taken over.
pub fn random_client_id() -> String {
    format!("wott-check-{}", random_hex(6))
}

pub(super) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if SystemRandom::new().fill(&mut buf).is_err() {
        // Uniqueness only; fall back to the clock.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> (8 * (i % 16))) as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
