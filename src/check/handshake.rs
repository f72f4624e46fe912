//! Stage 4, **tls**: the handshake with this device's identity, the
//! server's certificate as presented (also when it fails verification), and
//! a plain-MQTT port told apart from a TLS one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::tokio_rustls::TlsConnector;
use rumqttc::{Connect, Packet};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::*;
use crate::identity::CertInfo;

impl Probe<'_> {
    pub(super) async fn tls(
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
                let our_ca = self.identity.ca.signer_of(&self.identity.cert).map_or_else(
                    || OurCa {
                        subject: our_issuer.clone(),
                        key_id: None,
                        fingerprint: None,
                    },
                    OurCa::from_info,
                );
                let cx = classify::TlsContext {
                    addr,
                    server: &self.target.server.to_string(),
                    via,
                    seen: seen.as_ref().map(SeenCert::from_info),
                    our_ca: &our_ca,
                    our_issuer: &our_issuer,
                    now: Timestamp::now(),
                };
                match classify::classify_handshake(&io, cx) {
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
    pub(super) async fn plain_mqtt_or(&self, addr: SocketAddr, reason: String) -> CheckError {
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

    pub(super) fn tls_summary(&mut self, tls: &Tls) -> String {
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
}

/// `CN=…, DNS a, b, issued by CN=…, 6d 23h left`.
pub(super) fn describe_cert(info: &CertInfo) -> String {
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
