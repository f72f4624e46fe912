//! The staged mTLS probe behind `check`, `server up` readiness and
//! `server status`.
//!
//! Support staff run `check` first, and mosquitto_sub answers half a dozen
//! different faults with "A TLS error occurred." or "The connection was
//! lost.". So the probe takes one step at a time, times each, stops at the
//! first failure (it never reconnects), and turns that failure into a
//! [`CheckError`] that names the cause and the fix:
//!
//! 1. **identity**: `client.crt`, `client.key`, `ca.crt` load, match, are
//!    valid now (before any network);
//! 2. **resolve**: which address the server name gives (or `--connect-to`);
//! 3. **tcp**;
//! 4. **tls**: protocol, cipher, and the server's certificate, recorded
//!    even when it fails verification ([`crate::tls`]);
//! 5. **connect**: CONNECT → CONNACK;
//! 6. **subscribe**: SUBSCRIBE → SUBACK;
//! 7. **message**: any message (`--wait`), or our own probe coming back
//!    (`--roundtrip`).
//!
//! # Library API
//!
//! [`probe`] runs stages 2 to 7 (up to [`Plan::until`]) with an already
//! loaded [`Identity`]; [`check`] adds stage 1 from a [`CertDir`]. Both are
//! async and return a [`Report`]: per-stage results, the addresses, the TLS
//! session, the server certificate as seen on the wire
//! ([`CertInfo`]), and the [`CheckError`] the probe ended with, if any.
//! `server up` waits for readiness with `Until::Connect`; `server status`
//! reads the certificate the broker serves with `Until::Tls`:
//!
//! ```no_run
//! # async fn f(identity: &wott_mqtt::identity::Identity) {
//! use std::time::Duration;
//! use wott_mqtt::check::{probe, Host, Plan, Target, Until};
//! let target = Target {
//!     server: Host::parse("4853b630822946019393b16c5b710b9e.d.wott.local").unwrap(),
//!     port: 8883,
//!     connect_to: Some([127, 0, 0, 1].into()),
//!     hosts_file: None,
//! };
//! let report = probe(identity, &target, &Plan::new(Until::Connect, Duration::from_secs(5))).await;
//! if let Some(error) = report.failure() { /* error.stage(), error.to_string(), hint */ }
//! let served = report.server_certificate.as_ref().map(|c| c.not_after);
//! # }
//! ```
//!
//! With TLS 1.3 the broker checks our certificate after the handshake has
//! completed on our side, so `Until::Tls` proves only the server's half; the
//! broker's verdict arrives with the first read. The probe therefore reads
//! CONNACK before it declares the TLS stage passed, and a TLS alert at that
//! point is a TLS failure (exit 6), not an MQTT one.
//!
//! The MQTT side uses rumqttc's packet codec over the stream we dial (see
//! `mqtt.rs` for why not its event loop). For `--connect-to`, the socket goes
//! to the given IP while TLS verifies (and sends as SNI) the server ID, like
//! curl `--resolve`.

mod error;
mod mqtt;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use rumqttc::tokio_rustls::TlsConnector;
use rumqttc::tokio_rustls::client::TlsStream;
use rumqttc::{Connect, Packet, Publish, QoS, Subscribe, SubscribeReasonCode};
use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

pub use error::{ACL_SUBSCRIBE_NOTE, CheckError, ConnectFailure, SeenCert, TUTORIAL_PORT, Via};

use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;
use crate::identity::{CertDir, CertInfo, Identity, Timestamp, Validity, Warning};
use crate::names::{DeviceId, NameError, TopicFilter, TopicName};
use crate::output::human_duration;
use crate::tls::{self, PeerRecord, TlsOptions};
use mqtt::{Session, SessionError, Transport};

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
    /// An IP literal, or a DNS name TLS can verify.
    pub fn parse(value: &str) -> Result<Host, NameError> {
        if let Ok(ip) = value.parse::<IpAddr>() {
            return Ok(Host(ServerName::IpAddress(ip.into())));
        }
        let id = DeviceId::new(value)?;
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
    /// The TLS handshake (the server's certificate).
    Tls,
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

    fn reaches(&self, stage: Stage) -> bool {
        let last = match self.until {
            Until::Tls => Stage::Tls,
            Until::Connect => Stage::Connect,
            Until::Subscribe(_) => Stage::Subscribe,
            Until::Message { .. } => Stage::Message,
        };
        stage <= last
    }
}

/// `wott-check-` and 12 random hex digits: 23 characters, the most MQTT
/// 3.1.1 guarantees a broker accepts, and unique so that no other client's
/// session is taken over.
pub fn random_client_id() -> String {
    format!("wott-check-{}", random_hex(6))
}

fn random_hex(bytes: usize) -> String {
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
    failure: Option<CheckError>,
}

impl Report {
    fn new(target: &Target) -> Self {
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

    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    pub fn exit_code(&self) -> ExitCode {
        self.failure
            .as_ref()
            .map_or(ExitCode::Success, Diagnose::exit_code)
    }

    fn pass(&mut self, stage: Stage, started: Instant, detail: String) {
        self.stages.push(StageReport {
            name: stage,
            ok: true,
            ms: millis(started.elapsed()),
            detail,
            error: None,
            hint: None,
        });
    }

    fn fail(&mut self, started: Instant, detail: String, error: CheckError) -> CheckError {
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

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// Stages 1 to 7: loads the identity from `dir` (exit 3 before any network
/// when it is unusable), then [`probe`]s.
pub async fn check(dir: &CertDir, target: &Target, plan: &Plan) -> Report {
    let mut report = Report::new(target);
    let started = Instant::now();
    let loaded = Identity::load(dir)
        .map_err(CheckError::from)
        .and_then(|identity| {
            let (config, record) =
                tls::client_config(identity.credentials(), &TlsOptions::default())?;
            Ok((identity, config, record))
        });
    let (identity, config, record) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            let detail = format!("cert dir {}", dir.path().display());
            report.failure = Some(report.fail(started, detail, e));
            return report;
        }
    };
    report.pass(Stage::Identity, started, identity_detail(&identity));
    report.warnings = identity.warnings.clone();
    run(&mut report, &identity, config, record, target, plan).await;
    report
}

/// Stages 2 to 7 with an identity already loaded. A client configuration
/// that cannot be built from it is reported as a failed identity stage.
pub async fn probe(identity: &Identity, target: &Target, plan: &Plan) -> Report {
    let mut report = Report::new(target);
    let started = Instant::now();
    match tls::client_config(identity.credentials(), &TlsOptions::default()) {
        Ok((config, record)) => run(&mut report, identity, config, record, target, plan).await,
        Err(e) => {
            let detail = format!("cert dir {}", identity.dir.path().display());
            report.failure = Some(report.fail(started, detail, e.into()));
        }
    }
    report
}

async fn run(
    report: &mut Report,
    identity: &Identity,
    config: Arc<rustls::ClientConfig>,
    record: PeerRecord,
    target: &Target,
    plan: &Plan,
) {
    report.device_id = Some(identity.device_id().to_string());
    let mut probe = Probe {
        report,
        identity,
        target,
        plan,
        deadline: Instant::now() + plan.timeout,
    };
    if let Err(e) = probe.run(config, record).await {
        probe.report.failure = Some(e);
    }
}

fn identity_detail(identity: &Identity) -> String {
    let info = &identity.cert.info;
    let validity = match info.validity_at(Timestamp::now()) {
        Validity::Valid { seconds_left } => format!("{} left", human_duration(seconds_left)),
        other => format!("{other:?}"),
    };
    let ca = identity
        .ca
        .signer_of(&identity.cert)
        .map_or_else(String::new, |ca| format!(", CA {}", ca.subject));
    format!("{} ({validity}){ca}", identity.device_id())
}

/// One run: the report being filled, and the deadline for all of it.
struct Probe<'a> {
    report: &'a mut Report,
    identity: &'a Identity,
    target: &'a Target,
    plan: &'a Plan,
    deadline: Instant,
}

type Tls = TlsStream<Transport>;

impl Probe<'_> {
    /// Fails `stage` with a timeout error once the whole probe's deadline passes.
    async fn bounded<T>(
        &self,
        stage: Stage,
        step: impl Future<Output = Result<T, CheckError>>,
    ) -> Result<T, CheckError> {
        match timeout_at(self.deadline, step).await {
            Ok(result) => result,
            Err(_) => Err(CheckError::Timeout {
                stage,
                limit: self.plan.timeout,
            }),
        }
    }

    async fn run(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        record: PeerRecord,
    ) -> Result<(), CheckError> {
        let (addresses, via) = self.resolve().await?;
        let (tcp, addr) = self.tcp(&addresses).await?;
        let (mut tls, tls_started) = self.tls(config, &record, tcp, addr, via).await?;
        // The TLS stage is only recorded as passed once the broker has
        // answered: with TLS 1.3 it judges our certificate after the handshake.
        let tls_detail = self.tls_summary(&tls);
        let tls_elapsed = tls_started.elapsed();
        if !self.plan.reaches(Stage::Connect) {
            self.report.pass(Stage::Tls, tls_started, tls_detail);
            let _ = timeout(Duration::from_millis(200), tls.shutdown()).await;
            return Ok(());
        }
        let mut session = Session::new(tls);
        self.connect(&mut session, tls_started, tls_elapsed, tls_detail)
            .await?;
        let result = self.mqtt(&mut session).await;
        let _ = timeout(Duration::from_millis(200), session.close()).await;
        result
    }

    async fn resolve(&mut self) -> Result<(Vec<SocketAddr>, Via), CheckError> {
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

    /// Tries each address in turn, like curl; the last failure is the one reported.
    async fn tcp(
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
                        failure: error::classify_connect(&e),
                        reason: connect_reason(&e),
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
        let error = last.unwrap_or_else(|| CheckError::Resolve {
            host: self.target.server.to_string(),
            reason: "no address to connect to".into(),
        });
        Err(self.report.fail(started, failures.join("; "), error))
    }

    async fn tls(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        record: &PeerRecord,
        tcp: TcpStream,
        addr: SocketAddr,
        via: Via,
    ) -> Result<(Tls, Instant), CheckError> {
        let started = Instant::now();
        let connector = TlsConnector::from(config);
        let server_name = self.target.server.server_name().clone();
        let outcome = timeout_at(
            self.deadline,
            connector.connect(server_name, Transport::new(tcp)),
        )
        .await;
        let seen = record
            .end_entity()
            .and_then(|der| CertInfo::from_der(der.as_ref()).ok());
        self.report.server_certificate = seen.clone();
        let io = match outcome {
            Ok(Ok(stream)) => return Ok((stream, started)),
            Ok(Err(io)) => Some(io),
            Err(_elapsed) => None,
        };
        let detail = seen
            .as_ref()
            .map(|c| format!("server certificate: {}", describe_cert(c)))
            .unwrap_or_else(|| "no server certificate received".into());
        let error = match io {
            None => CheckError::Timeout {
                stage: Stage::Tls,
                limit: self.plan.timeout,
            },
            Some(io) => {
                let our_issuer = self.identity.cert.info.issuer.clone();
                let our_ca = self
                    .identity
                    .ca
                    .signer_of(&self.identity.cert)
                    .map_or_else(|| our_issuer.clone(), |c| c.subject.clone());
                let cx = error::TlsContext {
                    addr,
                    server: &self.target.server.to_string(),
                    via,
                    seen: seen.as_ref().map(SeenCert::from_info),
                    our_ca: &our_ca,
                    our_issuer: &our_issuer,
                    now: Timestamp::now(),
                };
                match error::classify_handshake(&io, cx) {
                    Some(error) => error,
                    None => {
                        let reason = io.to_string();
                        self.plain_mqtt_or(addr, reason).await
                    }
                }
            }
        };
        Err(self.report.fail(started, detail, error))
    }

    /// The peer hung up on our TLS hello. If the same port answers a plain
    /// MQTT CONNECT, say so: that is the "wrong port" mistake.
    async fn plain_mqtt_or(&self, addr: SocketAddr, reason: String) -> CheckError {
        let limit = self.deadline.min(Instant::now() + Duration::from_secs(2));
        let attempt = async {
            let tcp = TcpStream::connect(addr).await.ok()?;
            let _ = tcp.set_nodelay(true);
            let mut session = Session::new(tcp);
            session
                .send(Packet::Connect(Connect::new(&self.plan.client_id)))
                .await
                .ok()?;
            let answer = session.next().await.ok();
            let _ = session.close().await;
            answer
        };
        match timeout_at(limit, attempt).await {
            Ok(Some(Packet::ConnAck(_))) => CheckError::PlainMqtt { addr },
            _ => CheckError::HandshakeClosed { addr, reason },
        }
    }

    fn tls_summary(&mut self, tls: &Tls) -> String {
        let (_, connection) = tls.get_ref();
        let session = TlsSession {
            protocol: connection
                .protocol_version()
                .map_or_else(|| "unknown".into(), tls::protocol_name),
            cipher: connection
                .negotiated_cipher_suite()
                .map_or_else(|| "unknown".into(), |s| format!("{:?}", s.suite())),
            key_exchange: connection
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name())),
        };
        let cert = self
            .report
            .server_certificate
            .as_ref()
            .map(|c| format!("; server {}", describe_cert(c)))
            .unwrap_or_default();
        let detail = format!("{}, {}{cert}", session.protocol, session.cipher);
        self.report.tls = Some(session);
        detail
    }

    async fn connect(
        &mut self,
        session: &mut Session<Tls>,
        tls_started: Instant,
        tls_elapsed: Duration,
        tls_detail: String,
    ) -> Result<(), CheckError> {
        let mut connect = Connect::new(self.plan.client_id.as_str());
        // The broker must not drop us for silence while we wait for a message.
        connect.keep_alive = u16::try_from(self.plan.timeout.as_secs() + 30).unwrap_or(u16::MAX);
        self.report.client_id = Some(self.plan.client_id.clone());
        let tls13 = self
            .report
            .tls
            .as_ref()
            .is_some_and(|t| t.protocol == "TLS 1.3");
        let started = Instant::now();
        let exchange = async {
            session
                .send(Packet::Connect(connect))
                .await
                .map_err(|e| self.connect_error(e, tls13))?;
            // The broker's first packet must be CONNACK (MQTT 3.1.1, 3.2).
            match session
                .next()
                .await
                .map_err(|e| self.connect_error(e, tls13))?
            {
                Packet::ConnAck(ack) => Ok(ack),
                other => Err(CheckError::NotMqtt {
                    stage: Stage::Connect,
                    reason: format!("expected CONNACK, got {}", packet_name(&other)),
                }),
            }
        };
        let result = self.bounded(Stage::Connect, exchange).await;
        if let Err(error) = &result
            && error.stage() == Stage::Tls
        {
            // A TLS alert instead of CONNACK: the broker rejected us after
            // the TLS 1.3 handshake. That is the TLS stage failing.
            let error = error.clone();
            let detail =
                format!("{tls_detail}; then the broker sent a TLS alert instead of CONNACK");
            return Err(self.report.fail(tls_started, detail, error));
        }
        self.report.stages.push(StageReport {
            name: Stage::Tls,
            ok: true,
            ms: millis(tls_elapsed),
            detail: tls_detail,
            error: None,
            hint: None,
        });
        let ack = match result {
            Ok(ack) => ack,
            Err(error) => return Err(self.report.fail(started, String::new(), error)),
        };
        let code = ack.code as u8;
        if code != 0 {
            let error = CheckError::ConnackRefused {
                code,
                client_id: self.plan.client_id.clone(),
            };
            return Err(self.report.fail(started, format!("CONNACK {code}"), error));
        }
        self.report.pass(
            Stage::Connect,
            started,
            format!("CONNACK accepted, client ID {}", self.plan.client_id),
        );
        Ok(())
    }

    fn connect_error(&self, e: SessionError, tls13: bool) -> CheckError {
        match e {
            SessionError::Io(io) => match error::rustls_error(&io) {
                Some(rustls::Error::AlertReceived(alert)) => {
                    error::alert_error(alert, true, &self.identity.cert.info.issuer)
                }
                _ if error::is_hang_up(&io) => CheckError::ClosedAfterConnect { tls13 },
                _ => CheckError::ConnectionLost {
                    stage: Stage::Connect,
                    reason: io.to_string(),
                },
            },
            SessionError::Closed => CheckError::ClosedAfterConnect { tls13 },
            SessionError::Protocol(reason) => CheckError::NotMqtt {
                stage: Stage::Connect,
                reason,
            },
        }
    }

    /// SUBSCRIBE, then the message, as far as the plan goes.
    async fn mqtt(&mut self, session: &mut Session<Tls>) -> Result<(), CheckError> {
        let (subscription, expect) = match &self.plan.until {
            Until::Tls | Until::Connect => return Ok(()),
            Until::Subscribe(s) => (s, None),
            Until::Message {
                subscription,
                expect,
                within,
            } => (subscription, Some((expect, *within))),
        };
        let early = self
            .subscribe(session, subscription, expect.is_some())
            .await?;
        if let Some((expect, within)) = expect {
            self.message(session, subscription, expect, within, early)
                .await?;
        }
        Ok(())
    }

    async fn subscribe(
        &mut self,
        session: &mut Session<Tls>,
        subscription: &Subscription,
        message_follows: bool,
    ) -> Result<Vec<Publish>, CheckError> {
        let started = Instant::now();
        let topic = subscription.filter.as_str().to_string();
        let mut packet = Subscribe::new(topic.clone(), subscription.qos);
        packet.pkid = 1;
        let mut early = Vec::new();
        let exchange = async {
            session
                .send(Packet::Subscribe(packet))
                .await
                .map_err(|e| lost(Stage::Subscribe, e))?;
            loop {
                match session
                    .next()
                    .await
                    .map_err(|e| lost(Stage::Subscribe, e))?
                {
                    Packet::SubAck(ack) if ack.pkid == 1 => return Ok(ack),
                    Packet::Publish(p) => early.push(p),
                    _ => {}
                }
            }
        };
        let ack = match self.bounded(Stage::Subscribe, exchange).await {
            Ok(ack) => ack,
            Err(e) => return Err(self.report.fail(started, String::new(), e)),
        };
        let granted = match ack.return_codes.first() {
            Some(SubscribeReasonCode::Success(qos)) => Some(*qos as u8),
            _ => None,
        };
        self.report.subscription = Some(SubscriptionReport {
            topic: topic.clone(),
            qos: subscription.qos as u8,
            granted_qos: granted,
        });
        let Some(granted) = granted else {
            let error = CheckError::SubscribeRefused {
                topic,
                device_id: self.identity.device_id().to_string(),
            };
            return Err(self
                .report
                .fail(started, "SUBACK 0x80 (failure)".into(), error));
        };
        let mut detail = format!("{topic} granted QoS {granted}");
        if !message_follows {
            detail.push_str(&format!(
                " (not proof of access: {ACL_SUBSCRIBE_NOTE}; use --wait or --roundtrip)"
            ));
        }
        self.report.pass(Stage::Subscribe, started, detail);
        Ok(early)
    }

    async fn message(
        &mut self,
        session: &mut Session<Tls>,
        subscription: &Subscription,
        expect: &Expect,
        within: Duration,
        early: Vec<Publish>,
    ) -> Result<(), CheckError> {
        let started = Instant::now();
        let window = self.deadline.min(started + within);
        let probe_payload = format!("wott-mqtt check {}", random_hex(8));
        let (topic, roundtrip) = match expect {
            Expect::Any => (subscription.filter.as_str().to_string(), false),
            Expect::Roundtrip(topic) => (topic.as_str().to_string(), true),
        };
        let wanted = |p: &Publish| !roundtrip || p.payload.as_ref() == probe_payload.as_bytes();
        let mut others = 0usize;
        let mut found = None;
        for p in early {
            if wanted(&p) {
                found = Some(p);
                break;
            }
            others += 1;
        }
        if found.is_none() {
            let wait = async {
                if roundtrip {
                    let mut publish =
                        Publish::new(topic.clone(), subscription.qos, probe_payload.clone());
                    if subscription.qos != QoS::AtMostOnce {
                        publish.pkid = 2;
                    }
                    session
                        .send(Packet::Publish(publish))
                        .await
                        .map_err(|e| lost(Stage::Message, e))?;
                }
                loop {
                    if let Packet::Publish(p) =
                        session.next().await.map_err(|e| lost(Stage::Message, e))?
                    {
                        if wanted(&p) {
                            return Ok(p);
                        }
                        others += 1;
                    }
                }
            };
            match timeout_at(window, wait).await {
                Ok(Ok(p)) => found = Some(p),
                Ok(Err(e)) => return Err(self.report.fail(started, String::new(), e)),
                Err(_) => {}
            }
        }
        let Some(p) = found else {
            let error = CheckError::NoMessage {
                topic,
                device_id: self.identity.device_id().to_string(),
                waited: started.elapsed().min(within),
                roundtrip,
                others,
            };
            return Err(self.report.fail(started, String::new(), error));
        };
        let shown = &p.payload[..p.payload.len().min(200)];
        let report = MessageReport {
            topic: p.topic.clone(),
            qos: p.qos as u8,
            retained: p.retain,
            bytes: p.payload.len(),
            payload: String::from_utf8_lossy(shown).into_owned(),
            roundtrip,
        };
        let detail = format!(
            "{}{} bytes on {}{}",
            if roundtrip {
                "our probe came back: "
            } else {
                ""
            },
            report.bytes,
            report.topic,
            if report.retained { " (retained)" } else { "" },
        );
        self.report.message = Some(report);
        self.report.pass(Stage::Message, started, detail);
        Ok(())
    }
}

fn lost(stage: Stage, e: SessionError) -> CheckError {
    match e {
        SessionError::Io(io) => CheckError::ConnectionLost {
            stage,
            reason: io.to_string(),
        },
        SessionError::Closed => CheckError::ConnectionLost {
            stage,
            reason: String::new(),
        },
        SessionError::Protocol(reason) => CheckError::NotMqtt { stage, reason },
    }
}

fn packet_name(packet: &Packet) -> &'static str {
    match packet {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}

/// `CN=…, DNS a, b, issued by CN=…, 6d 23h left`.
fn describe_cert(info: &CertInfo) -> String {
    let names: Vec<&str> = info
        .dns_names
        .iter()
        .chain(&info.ip_addresses)
        .map(String::as_str)
        .collect();
    let names = if names.is_empty() {
        "no SAN".to_string()
    } else {
        format!("SAN {}", names.join(", "))
    };
    let validity = match info.validity_at(Timestamp::now()) {
        Validity::Valid { seconds_left } => format!("{} left", human_duration(seconds_left)),
        Validity::Expired { seconds_ago } => {
            format!("expired {} ago", human_duration(seconds_ago))
        }
        Validity::NotYetValid { seconds_until } => {
            format!("valid in {}", human_duration(seconds_until))
        }
    };
    format!(
        "{} ({names}), issued by {}, {validity}",
        info.subject, info.issuer
    )
}

fn describe_hosts(finding: &HostsFileFinding) -> String {
    match finding {
        HostsFileFinding::Entry { path, addresses } => {
            format!("{path} maps it to {}", join(addresses.iter()))
        }
        HostsFileFinding::NoEntry { path } => format!("{path} has no entry for it"),
        HostsFileFinding::Unreadable { path, reason } => format!("cannot read {path}: {reason}"),
    }
}

/// What the hosts file at `path` says about `name`.
fn hosts_file_finding(path: &Path, name: &str) -> HostsFileFinding {
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

fn join<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// getaddrinfo's message without Rust's "failed to lookup address information:" prefix.
fn resolver_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    text.strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text)
        .to_string()
}

/// "connection refused", without the "(os error 111)" suffix.
fn connect_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_addresses_or_dns_names() {
        assert_eq!(
            Host::parse("127.0.0.1").unwrap().ip(),
            Some([127, 0, 0, 1].into())
        );
        assert!(Host::parse("::1").unwrap().ip().is_some());
        let id = "4853b630822946019393b16c5b710b9e.d.wott.local";
        assert_eq!(Host::parse(id).unwrap().to_string(), id);
        assert!(Host::parse("bad name").is_err());
        assert!(Host::parse("evil\nhost").is_err());
    }

    #[test]
    fn client_ids_fit_mqtt_311_and_differ() {
        let a = random_client_id();
        assert_eq!(a.len(), 23, "{a}");
        assert_ne!(a, random_client_id());
    }

    #[test]
    fn stages_run_in_order_and_plans_stop_where_asked() {
        let plan = Plan::new(Until::Connect, Duration::from_secs(1));
        assert!(plan.reaches(Stage::Tls) && plan.reaches(Stage::Connect));
        assert!(!plan.reaches(Stage::Subscribe));
        assert!(Stage::Resolve < Stage::Message);
    }

    #[test]
    fn reasons_lose_the_os_noise() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(connect_reason(&e), "connection refused");
    }
}
