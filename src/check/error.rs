//! Why a probe failed, in the user's terms, with the fix.
//!
//! Every variant carries the facts the message needs (the address dialled,
//! the certificate the server showed, the alert the broker sent) and maps to
//! the stage it ends and the exit code DESIGN.md promises for that stage.
//! `classify_*` turn the raw `io::Error` / `rustls::Error` of a failing step
//! into one of these.

use std::net::SocketAddr;
use std::time::Duration;

use super::Stage;
use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;
use crate::identity::{CertInfo, IdentityError, Timestamp};
use crate::output::{human_duration, shell_word};
use crate::tls::TlsConfigError;

/// The tutorial's broker port, and the one its client example gets wrong.
pub const TUTORIAL_PORT: u16 = 8883;

const TUTORIAL_TYPO_PORT: u16 = 8333;

/// The server certificate as the error messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenCert {
    pub subject: String,
    pub issuer: String,
    pub common_name: Option<String>,
    /// DNS and IP SANs: the names TLS verifies against.
    pub names: Vec<String>,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// The key identifier of the CA that issued it, as the certificate says.
    pub authority_key_id: Option<String>,
}

/// This device's CA as the messages name it: a name alone does not tell two
/// CAs apart (a test CA and WoTT's may share one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurCa {
    pub subject: String,
    pub key_id: Option<String>,
    /// SHA-256 of ca.crt's certificate; `None` when no CA certificate signed ours.
    pub fingerprint: Option<String>,
}

impl OurCa {
    pub fn from_info(info: &CertInfo) -> Self {
        OurCa {
            subject: info.subject.clone(),
            key_id: info.subject_key_id.clone(),
            fingerprint: Some(info.fingerprint_sha256.clone()),
        }
    }
}

impl SeenCert {
    pub fn from_info(info: &CertInfo) -> Self {
        SeenCert {
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            common_name: info.common_name.clone(),
            names: info
                .dns_names
                .iter()
                .chain(&info.ip_addresses)
                .cloned()
                .collect(),
            not_before: info.not_before,
            not_after: info.not_after,
            authority_key_id: info.authority_key_id.clone(),
        }
    }

    /// Whether the certificate names other devices and not `server` (an
    /// address is not checked here; TLS does that).
    fn names_another_device(&self, server: &str) -> bool {
        server.parse::<std::net::IpAddr>().is_err()
            && !self.names.is_empty()
            && !self.names.iter().any(|n| n.eq_ignore_ascii_case(server))
    }

    fn names_text(&self) -> String {
        if self.names.is_empty() {
            "no names at all (no subject alternative names; TLS ignores the CN)".into()
        } else {
            self.names.join(", ")
        }
    }
}

/// How the dialled address was chosen; the hint for a wrong server differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `--connect-to`.
    ConnectTo,
    /// The server name, resolved (hosts file or DNS).
    Resolved,
    /// The server was given as an IP address.
    Literal,
}

/// Why a TCP connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    Refused,
    Unreachable,
    TimedOut,
    Other,
}

/// What ended a probe. `Display` is the `error:` line, [`Diagnose::hint`]
/// the `hint:` line.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    TlsConfig(#[from] TlsConfigError),

    #[error("{host} does not resolve: {reason}")]
    Resolve { host: String, reason: String },

    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        addr: SocketAddr,
        failure: ConnectFailure,
        reason: String,
        /// The same port on loopback accepts connections (a refused
        /// address of this machine): the broker listens on loopback only.
        loopback_only: Option<SocketAddr>,
    },

    #[error(
        "{addr} does not speak TLS: it closed the TLS handshake and then answered a plain MQTT CONNECT"
    )]
    PlainMqtt { addr: SocketAddr },
    #[error(
        "{addr} closed the connection during the TLS handshake without a TLS answer ({reason})"
    )]
    HandshakeClosed { addr: SocketAddr, reason: String },
    #[error("{addr} does not speak TLS: {reason}")]
    NotTls { addr: SocketAddr, reason: String },
    #[error("{}", unknown_issuer_text(cert, our_ca, server))]
    ServerUnknownIssuer {
        cert: Box<SeenCert>,
        our_ca: Box<OurCa>,
        server: String,
    },
    #[error("the server's certificate ({}) expired {} ago, on {}", cert.subject, human_duration(*seconds_ago), cert.not_after)]
    ServerExpired {
        cert: Box<SeenCert>,
        seconds_ago: i64,
    },
    #[error("the server's certificate ({}) is not valid until {}", cert.subject, cert.not_before)]
    ServerNotYetValid { cert: Box<SeenCert> },
    #[error("the server's certificate does not carry the server ID {expected}: it names {}", cert.names_text())]
    ServerWrongName {
        expected: String,
        cert: Box<SeenCert>,
        addr: SocketAddr,
        via: Via,
    },
    #[error("the server's certificate is not acceptable: {reason}")]
    ServerCertInvalid { reason: String },
    #[error("the broker rejected this device's certificate{} (TLS alert: {alert})", if *after_handshake { " after the TLS 1.3 handshake, when it read CONNECT" } else { "" })]
    ClientCertRejected {
        alert: String,
        after_handshake: bool,
        our_issuer: String,
    },
    #[error("the broker and wott-mqtt share no TLS version or cipher suite (TLS alert: {alert})")]
    TlsIncompatible { alert: String },
    #[error("the TLS handshake with {addr} failed: {reason}")]
    Tls { addr: SocketAddr, reason: String },

    #[error("the broker refused the MQTT connection: {}", connack_text(*code))]
    ConnackRefused { code: u8, client_id: String },
    #[error("the broker closed the connection right after CONNECT, without answering it")]
    ClosedAfterConnect { tls13: bool },
    #[error("the server's answer to {stage} is not MQTT: {reason}")]
    NotMqtt { stage: Stage, reason: String },
    #[error("the broker closed the connection while waiting for the {stage} answer{}", if reason.is_empty() { String::new() } else { format!(" ({reason})") })]
    ConnectionLost { stage: Stage, reason: String },

    #[error("the broker refused the subscription to {topic}")]
    SubscribeRefused { topic: String, device_id: String },
    #[error("{}", no_message_text(topic, *waited, *roundtrip, *others))]
    NoMessage {
        topic: String,
        device_id: String,
        waited: Duration,
        roundtrip: bool,
        /// Messages that arrived but were not the probe (roundtrip only).
        others: usize,
    },

    #[error("{} within {}, the --timeout", timeout_text(*stage), seconds(*limit))]
    Timeout { stage: Stage, limit: Duration },
}

/// Another device first (when the certificate does not carry `server`),
/// then the CA; a CA of the same name is told apart by its key ID or
/// ca.crt's fingerprint.
fn unknown_issuer_text(cert: &SeenCert, ours: &OurCa, server: &str) -> String {
    let mut s = String::new();
    if cert.names_another_device(server) {
        s.push_str(&format!(
            "the server's certificate does not carry {server}, the ID asked for: it names {}; and it ",
            cert.names_text()
        ));
    } else {
        s.push_str(&format!("the server's certificate ({}) ", cert.subject));
    }
    s.push_str(&format!(
        "was not issued by this device's CA ({}); its issuer is {}",
        ours.subject, cert.issuer
    ));
    if cert.issuer == ours.subject {
        let theirs = cert
            .authority_key_id
            .as_deref()
            .map(|id| format!("issuer key ID {id}"));
        let mine = [
            ours.key_id.as_deref().map(|id| format!("key ID {id}")),
            ours.fingerprint
                .as_deref()
                .map(|f| format!("ca.crt SHA-256 {f}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        s.push_str(&format!(
            ", another CA of the same name ({}; this device's CA: {})",
            theirs
                .as_deref()
                .unwrap_or("the certificate does not name its issuer's key ID"),
            if mine.is_empty() { "unknown" } else { &mine }
        ));
    }
    s
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

fn connack_text(code: u8) -> &'static str {
    match code {
        1 => "it does not accept MQTT 3.1.1 (CONNACK 1, unacceptable protocol version)",
        2 => "it rejected the client ID (CONNACK 2, identifier rejected)",
        3 => "the broker is unavailable (CONNACK 3, server unavailable)",
        4 => "bad user name or password (CONNACK 4)",
        5 => "not authorised (CONNACK 5)",
        _ => "an unknown CONNACK return code",
    }
}

fn no_message_text(topic: &str, waited: Duration, roundtrip: bool, others: usize) -> String {
    if roundtrip {
        let others = match others {
            0 => String::new(),
            1 => " (1 other message arrived)".into(),
            n => format!(" ({n} other messages arrived)"),
        };
        format!(
            "published a probe message to {topic}, but it did not come back within {}{others}",
            seconds(waited)
        )
    } else {
        format!(
            "subscribed to {topic}, but no message arrived within {}",
            seconds(waited)
        )
    }
}

fn timeout_text(stage: Stage) -> &'static str {
    match stage {
        Stage::Identity => "the identity did not load",
        Stage::Resolve => "the name did not resolve",
        Stage::Tcp => "the TCP connection was not accepted",
        Stage::Tls => "the TLS handshake did not finish",
        Stage::Connect => "no CONNACK arrived",
        Stage::Subscribe => "no SUBACK arrived",
        Stage::Message => "no message arrived",
    }
}

const SERVER_LOGS: &str =
    "its log says why (on the server: `wott-mqtt server logs`, or `journalctl -u mosquitto`)";

/// The Mosquitto fact every "no message" diagnosis rests on.
pub const ACL_SUBSCRIBE_NOTE: &str = "Mosquitto grants every SUBSCRIBE under acl_file and silently drops what the ACL denies, so only a delivered message proves access";

impl CheckError {
    /// The stage this error ends.
    pub fn stage(&self) -> Stage {
        match self {
            CheckError::Identity(_) | CheckError::TlsConfig(_) => Stage::Identity,
            CheckError::Resolve { .. } => Stage::Resolve,
            CheckError::Connect { .. } => Stage::Tcp,
            CheckError::PlainMqtt { .. }
            | CheckError::HandshakeClosed { .. }
            | CheckError::NotTls { .. }
            | CheckError::ServerUnknownIssuer { .. }
            | CheckError::ServerExpired { .. }
            | CheckError::ServerNotYetValid { .. }
            | CheckError::ServerWrongName { .. }
            | CheckError::ServerCertInvalid { .. }
            | CheckError::ClientCertRejected { .. }
            | CheckError::TlsIncompatible { .. }
            | CheckError::Tls { .. } => Stage::Tls,
            CheckError::ConnackRefused { .. } | CheckError::ClosedAfterConnect { .. } => {
                Stage::Connect
            }
            CheckError::NotMqtt { stage, .. }
            | CheckError::ConnectionLost { stage, .. }
            | CheckError::Timeout { stage, .. } => *stage,
            CheckError::SubscribeRefused { .. } => Stage::Subscribe,
            CheckError::NoMessage { .. } => Stage::Message,
        }
    }
}

fn stage_exit_code(stage: Stage) -> ExitCode {
    match stage {
        Stage::Identity => ExitCode::Identity,
        Stage::Resolve => ExitCode::Resolve,
        Stage::Tcp => ExitCode::Connect,
        Stage::Tls => ExitCode::Tls,
        Stage::Connect => ExitCode::MqttRefused,
        Stage::Subscribe => ExitCode::Failure,
        Stage::Message => ExitCode::NoMessage,
    }
}

impl Diagnose for CheckError {
    fn hint(&self) -> Option<String> {
        match self {
            CheckError::Identity(e) => e.hint(),
            CheckError::TlsConfig(e) => e.hint(),
            CheckError::Resolve { host, .. } => Some(resolve_hint(host)),
            CheckError::Connect {
                addr,
                failure,
                loopback_only,
                ..
            } => Some(connect_hint(*addr, *failure, *loopback_only)),
            CheckError::PlainMqtt { .. }
            | CheckError::HandshakeClosed { .. }
            | CheckError::NotTls { .. }
            | CheckError::TlsIncompatible { .. }
            | CheckError::Tls { .. } => port_hint(self),
            CheckError::ServerUnknownIssuer { .. }
            | CheckError::ServerExpired { .. }
            | CheckError::ServerNotYetValid { .. }
            | CheckError::ServerWrongName { .. }
            | CheckError::ServerCertInvalid { .. } => server_cert_hint(self),
            CheckError::ClientCertRejected {
                alert, our_issuer, ..
            } => Some(client_cert_hint(alert, our_issuer)),
            CheckError::ConnackRefused { code, client_id } => Some(connack_hint(*code, client_id)),
            CheckError::ClosedAfterConnect { .. }
            | CheckError::NotMqtt { .. }
            | CheckError::ConnectionLost { .. } => session_hint(self),
            CheckError::SubscribeRefused { .. } | CheckError::NoMessage { .. } => access_hint(self),
            CheckError::Timeout { stage, .. } => Some(timeout_hint(*stage)),
        }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            CheckError::Identity(e) => e.exit_code(),
            CheckError::TlsConfig(e) => e.exit_code(),
            CheckError::ConnectionLost { .. } => ExitCode::Failure,
            CheckError::SubscribeRefused { .. } => ExitCode::NoMessage,
            other => stage_exit_code(other.stage()),
        }
    }
}

fn resolve_hint(host: &str) -> String {
    format!(
        "map the server's device ID to its address: `sudo wott-mqtt hosts add {host} <server IP>` \
         (`wott-mqtt server up` on the server prints this command), or dial the address directly \
         with --connect-to <server IP>"
    )
}

/// A port that is not the broker's TLS listener, or a TLS it cannot speak.
fn port_hint(error: &CheckError) -> Option<String> {
    Some(match error {
        CheckError::PlainMqtt { addr } => format!(
            "port {} is a plain-MQTT listener; use the broker's TLS listener (port {TUTORIAL_PORT} in the tutorial) \
             with --port / MQTT_PORT, or give this listener cafile, certfile, keyfile and require_certificate true",
            addr.port()
        ),
        CheckError::HandshakeClosed { addr, .. } => format!(
            "port {} may not be a TLS listener, or the broker dropped the connection before TLS \
             (e.g. max_connections); check --port (the tutorial's TLS port is {TUTORIAL_PORT}); {SERVER_LOGS}",
            addr.port()
        ),
        CheckError::NotTls { addr, .. } => format!(
            "port {} runs another protocol; point --port / MQTT_PORT at the broker's TLS listener (port {TUTORIAL_PORT} in the tutorial)",
            addr.port()
        ),
        CheckError::TlsIncompatible { .. } => {
            "wott-mqtt speaks TLS 1.2 and 1.3 with modern cipher suites; check the broker's tls_version and ciphers lines".into()
        }
        CheckError::Tls { .. } => format!("check --port and the broker's TLS settings; {SERVER_LOGS}"),
        _ => return None,
    })
}

/// The certificate the broker presented is not one this device accepts.
fn server_cert_hint(error: &CheckError) -> Option<String> {
    Some(match error {
        CheckError::ServerUnknownIssuer { server, cert, .. } if cert.names_another_device(server) => format!(
            "the address dialled reached another device: check the hosts entry (`wott-mqtt hosts list`) or \
             --connect-to, and that {server} is the server's ID (`wott-mqtt whoami` there); the broker and this \
             device must also be enrolled with the same WoTT CA"
        ),
        CheckError::ServerUnknownIssuer { server, .. } => format!(
            "the broker and this device must be enrolled with the same WoTT CA: check that {server} is the right \
             machine (`wott-mqtt whoami` there), that the broker's certfile is that device's client.crt, and that \
             this device's ca.crt is the agent's"
        ),
        CheckError::ServerExpired { .. } => "on the server, renew the certificate (`sudo wott-agent`; the agent renews when fewer than 3 days are left) \
             and make Mosquitto load it: `wott-mqtt server reload` (SIGHUP). If the server has a fresh certificate already, \
             the broker still serves the old one until it reloads. Check this machine's clock too (`timedatectl`)"
            .into(),
        CheckError::ServerNotYetValid { .. } => {
            "this machine's clock may be behind: check it with `timedatectl` (and enable NTP)".into()
        }
        CheckError::ServerWrongName {
            expected,
            cert,
            addr,
            via,
        } => wrong_name_hint(expected, cert, *addr, *via),
        CheckError::ServerCertInvalid { .. } => {
            "the broker's certfile must be the server device's WoTT client.crt".into()
        }
        _ => return None,
    })
}

fn wrong_name_hint(expected: &str, cert: &SeenCert, addr: SocketAddr, via: Via) -> String {
    let other = cert
        .common_name
        .as_deref()
        .map(|cn| format!(" (device {cn})"))
        .unwrap_or_default();
    match via {
        Via::Literal => format!(
            "WoTT certificates name the device ID, not an address: use --server <the server's device ID> \
             --connect-to {}{}",
            addr.ip(),
            cert.common_name
                .as_deref()
                .map(|cn| format!(" (this server's certificate says {cn})"))
                .unwrap_or_default()
        ),
        Via::ConnectTo => format!(
            "--connect-to {} reaches another device{other}: give the address of {expected}, \
             or check --server",
            addr.ip()
        ),
        Via::Resolved => format!(
            "{expected} resolves to {}, which is another device{other}: fix the hosts entry with \
             `sudo wott-mqtt hosts add {expected} <the right IP>`, or check --server / MQTT_SERVER",
            addr.ip()
        ),
    }
}

/// The broker refused this device's certificate with TLS alert `alert`.
fn client_cert_hint(alert: &str, our_issuer: &str) -> String {
    match alert {
        "CertificateExpired" => {
            "the broker considers this device's certificate expired although it is valid here: \
            compare the clocks of both machines (`timedatectl`)"
                .into()
        }
        "CertificateRevoked" => {
            "the broker's CRL lists this device's certificate; renew it with `sudo wott-agent`"
                .into()
        }
        _ => format!(
            "the broker trusts another CA for client certificates: its cafile must be the WoTT CA that issued \
             this device's certificate ({our_issuer}); on the server, point cafile at the agent's ca.crt and \
             run `wott-mqtt server reload`"
        ),
    }
}

/// CONNACK with return code `code`.
fn connack_hint(code: u8, client_id: &str) -> String {
    match code {
        2 => format!("choose another client ID with --client-id (this one was {client_id})"),
        3 => format!("the broker is overloaded or shutting down; {SERVER_LOGS}"),
        4 | 5 => "the broker does not take this device's certificate as its login: its listener needs \
            `require_certificate true` and `use_identity_as_username true` (the tutorial's mosquitto.conf); \
            without them, `allow_anonymous false` refuses every client without a password"
            .into(),
        _ => format!("the broker must accept MQTT 3.1.1; {SERVER_LOGS}"),
    }
}

/// The connection ended, or did not speak MQTT, once TLS was up.
fn session_hint(error: &CheckError) -> Option<String> {
    Some(match error {
        CheckError::ClosedAfterConnect { tls13 } => format!(
            "{SERVER_LOGS}: a client ID it refuses, a CONNECT larger than its max_packet_size, or a listener that \
             is not MQTT{}",
            if *tls13 {
                "; with TLS 1.3 a broker that rejects the client certificate can also just close"
            } else {
                ""
            }
        ),
        CheckError::NotMqtt { .. } => format!(
            "the port answers TLS but not MQTT: point --port / MQTT_PORT at the broker's MQTT listener (port {TUTORIAL_PORT} in the tutorial)"
        ),
        CheckError::ConnectionLost { .. } => SERVER_LOGS.to_string(),
        _ => return None,
    })
}

/// Subscribed, but the ACL (or a missing publisher) kept the message away.
/// The topic is quoted for the shell: it may hold `$`, `#` or spaces.
fn access_hint(error: &CheckError) -> Option<String> {
    Some(match error {
        CheckError::SubscribeRefused { topic, device_id } => {
            let word = shell_word(topic);
            format!(
                "this device may not read {topic}: on the server, `wott-mqtt acl check {device_id} {word} --access read` \
                 shows which rule decides, and `wott-mqtt acl allow {device_id} {word} --access read` grants it"
            )
        }
        CheckError::NoMessage {
            topic,
            device_id,
            roundtrip: true,
            ..
        } => {
            let word = shell_word(topic);
            format!(
                "{ACL_SUBSCRIBE_NOTE}. On the server run `wott-mqtt acl check {device_id} {word} --access read` \
                 and `… --access write`; grant both with `wott-mqtt acl allow {device_id} {word} --access readwrite`"
            )
        }
        CheckError::NoMessage {
            topic, device_id, ..
        } => {
            let word = shell_word(topic);
            format!(
                "{ACL_SUBSCRIBE_NOTE}. On the server run `wott-mqtt acl check {device_id} {word} --access read` \
                 (and --access write for the publishing device); if access is allowed, check that something \
                 publishes on {topic}, or test both directions with --roundtrip"
            )
        }
        _ => return None,
    })
}

fn timeout_hint(stage: Stage) -> String {
    match stage {
        Stage::Identity | Stage::Resolve => {
            "the resolver is slow or unreachable: check /etc/resolv.conf, or add a hosts entry with `sudo wott-mqtt hosts add`".into()
        }
        Stage::Tcp => "a firewall may drop the packets, or the address is not the server: check the hosts entry \
            (`wott-mqtt hosts list`) and that the broker's port is open"
            .into(),
        Stage::Tls | Stage::Connect | Stage::Subscribe => format!(
            "the port accepts connections but does not answer like an MQTT-over-TLS broker; check --port; {SERVER_LOGS}"
        ),
        Stage::Message => "raise --timeout, or see the hint for a missing message".into(),
    }
}

fn connect_hint(
    addr: SocketAddr,
    failure: ConnectFailure,
    loopback_only: Option<SocketAddr>,
) -> String {
    let port = addr.port();
    // The tutorial's 8883/8333 slip, only where it can be the cause.
    let port_note = match port {
        TUTORIAL_TYPO_PORT => format!(
            "; note: you asked for port {TUTORIAL_TYPO_PORT}, the broker's default is {TUTORIAL_PORT} \
             (the tutorial mixes the two): try --port {TUTORIAL_PORT}"
        ),
        TUTORIAL_PORT => format!(
            "; a broker configured for {TUTORIAL_TYPO_PORT} instead of {TUTORIAL_PORT} (the tutorial mixes the two) fails this way too"
        ),
        _ => String::new(),
    };
    match failure {
        ConnectFailure::Refused => match loopback_only {
            Some(listener) => format!(
                "{listener} accepts connections, so the broker on this machine probably listens on loopback \
                 only (e.g. `wott-mqtt server up --bind 127.0.0.1`): other machines cannot reach it either; \
                 connect to {} here, or run the broker with --bind 0.0.0.0 (or this address); \
                 `wott-mqtt server status` shows its binding",
                listener.ip()
            ),
            None if addr.ip().is_loopback() => format!(
                "nothing listens on port {port} on this machine: is the broker running? `wott-mqtt server status`{port_note}"
            ),
            None => format!(
                "nothing listens on port {port} there: is the broker running? On the server: `wott-mqtt server status`; \
                 a broker that listens on loopback only (`--bind 127.0.0.1`) refuses other machines this way{port_note}"
            ),
        },
        ConnectFailure::TimedOut => format!(
            "no answer: a firewall may drop the packets, or {} is not the server (check `wott-mqtt hosts list`){port_note}",
            addr.ip()
        ),
        ConnectFailure::Unreachable => format!(
            "no route to {}: check the address (`wott-mqtt hosts list`) and this machine's network",
            addr.ip()
        ),
        ConnectFailure::Other => format!("on the server: `wott-mqtt server status`{port_note}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_has_its_documented_exit_code() {
        let addr: SocketAddr = ([127, 0, 0, 1], 8883).into();
        let cases = [
            (
                CheckError::Resolve {
                    host: "x.invalid".into(),
                    reason: "not found".into(),
                },
                4,
            ),
            (
                CheckError::Connect {
                    addr,
                    failure: ConnectFailure::Refused,
                    reason: "refused".into(),
                    loopback_only: None,
                },
                5,
            ),
            (CheckError::PlainMqtt { addr }, 6),
            (
                CheckError::ClientCertRejected {
                    alert: "UnknownCA".into(),
                    after_handshake: true,
                    our_issuer: "CN=CA".into(),
                },
                6,
            ),
            (
                CheckError::ConnackRefused {
                    code: 5,
                    client_id: "c".into(),
                },
                7,
            ),
            (CheckError::ClosedAfterConnect { tls13: false }, 7),
            (
                CheckError::NoMessage {
                    topic: "t".into(),
                    device_id: "d".into(),
                    waited: Duration::from_secs(1),
                    roundtrip: false,
                    others: 0,
                },
                8,
            ),
            (
                CheckError::Timeout {
                    stage: Stage::Tcp,
                    limit: Duration::from_secs(10),
                },
                5,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit_code().code(), code, "{error}");
            assert!(error.hint().is_some_and(|h| !h.is_empty()), "{error}");
        }
    }

    #[test]
    fn port_hints_name_the_8883_8333_slip() {
        let hint = |port| {
            CheckError::Connect {
                addr: ([127, 0, 0, 1], port).into(),
                failure: ConnectFailure::Refused,
                reason: String::new(),
                loopback_only: None,
            }
            .hint()
            .unwrap()
        };
        assert!(hint(8333).contains("try --port 8883"), "{}", hint(8333));
        assert!(hint(8883).contains("8333"), "{}", hint(8883));
        assert!(hint(1883).contains("server status"), "{}", hint(1883));
        // Only those two ports are the tutorial's slip.
        assert!(!hint(1883).contains("8333"), "{}", hint(1883));
        assert!(!hint(46437).contains("8333"), "{}", hint(46437));
    }

    #[test]
    fn same_named_cas_are_told_apart_and_another_device_comes_first() {
        let id = "4853b630822946019393b16c5b710b9e.d.wott.local";
        let cert = |names: &[&str], aki: Option<&str>| SeenCert {
            subject: format!("CN={}", names.first().unwrap_or(&"x")),
            issuer: "CN=WoTT CA".into(),
            common_name: names.first().map(|n| n.to_string()),
            names: names.iter().map(|n| n.to_string()).collect(),
            not_before: Timestamp(0),
            not_after: Timestamp(0),
            authority_key_id: aki.map(str::to_string),
        };
        let ours = OurCa {
            subject: "CN=WoTT CA".into(),
            key_id: Some("AA:BB".into()),
            fingerprint: Some("01:02".into()),
        };
        let text = |c: &SeenCert, ours: &OurCa| unknown_issuer_text(c, ours, id);
        assert_eq!(
            text(&cert(&[id], Some("CC:DD")), &ours),
            format!(
                "the server's certificate (CN={id}) was not issued by this device's CA (CN=WoTT CA); \
                 its issuer is CN=WoTT CA, another CA of the same name (issuer key ID CC:DD; this \
                 device's CA: key ID AA:BB, ca.crt SHA-256 01:02)"
            )
        );
        assert!(
            text(&cert(&[id], None), &ours)
                .contains("the certificate does not name its issuer's key ID")
        );
        let other = "0123456789abcdef0123456789abcdef.d.wott.local";
        assert!(
            text(&cert(&[other], None), &ours).starts_with(&format!(
                "the server's certificate does not carry {id}, the ID asked for: it names {other}; and it was not issued"
            ))
        );
        // Names of its own: only then "another device"; another CA name: no key IDs.
        assert!(text(&cert(&[], None), &ours).starts_with("the server's certificate (CN=x)"));
        let mut stranger = cert(&[id], None);
        stranger.issuer = "CN=Other".into();
        assert!(!text(&stranger, &ours).contains("same name"));
    }

    #[test]
    fn timeouts_read_as_sentences() {
        let e = CheckError::Timeout {
            stage: Stage::Connect,
            limit: Duration::from_millis(2500),
        };
        assert_eq!(
            e.to_string(),
            "no CONNACK arrived within 2.5 s, the --timeout"
        );
    }
}
