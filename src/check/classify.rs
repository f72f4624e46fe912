//! The raw failures of a step (`io::Error`, `rustls::Error`, a TLS alert)
//! sorted into the [`CheckError`]s that name their cause.

use std::io;
use std::net::SocketAddr;

use rustls::{AlertDescription, CertificateError};

use super::error::*;
use crate::identity::Timestamp;

/// Sorts a failed `connect()` into the cases the hints distinguish.
pub fn classify_connect(e: &io::Error) -> ConnectFailure {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
        io::ErrorKind::TimedOut => ConnectFailure::TimedOut,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            ConnectFailure::Unreachable
        }
        _ => ConnectFailure::Other,
    }
}

/// The rustls error inside an I/O error from tokio-rustls, if any.
pub fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Whether `e` means the peer went away (EOF, reset, broken pipe) rather
/// than said something.
pub fn is_hang_up(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// What the broker's TLS alert says about this device's certificate, when
/// it is about that at all.
pub fn client_cert_alert(alert: &AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateRequired
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::AccessDenied
            | AlertDescription::DecryptError
    )
}

/// Facts a TLS classification needs beyond the error itself.
#[derive(Debug)]
pub struct TlsContext<'a> {
    pub addr: SocketAddr,
    pub server: &'a str,
    pub via: Via,
    pub seen: Option<SeenCert>,
    pub our_ca: &'a OurCa,
    pub our_issuer: &'a str,
    pub now: Timestamp,
}

/// Classifies a failed handshake. `None` means "the peer hung up without a
/// TLS answer": the caller finds out whether it speaks plain MQTT instead.
pub fn classify_handshake(e: &io::Error, cx: TlsContext<'_>) -> Option<CheckError> {
    let Some(tls) = rustls_error(e) else {
        if is_hang_up(e) {
            return None;
        }
        return Some(CheckError::Tls {
            addr: cx.addr,
            reason: e.to_string(),
        });
    };
    let seen = || {
        Box::new(cx.seen.clone().unwrap_or_else(|| SeenCert {
            subject: "not received".into(),
            issuer: "unknown".into(),
            common_name: None,
            names: Vec::new(),
            not_before: cx.now,
            not_after: cx.now,
            authority_key_id: None,
        }))
    };
    Some(match tls {
        rustls::Error::InvalidCertificate(cert_error) => match cert_error {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                CheckError::ServerUnknownIssuer {
                    cert: seen(),
                    our_ca: Box::new(cx.our_ca.clone()),
                    server: cx.server.to_string(),
                }
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                let cert = seen();
                CheckError::ServerExpired {
                    seconds_ago: cx.now.0 - cert.not_after.0,
                    cert,
                }
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                CheckError::ServerNotYetValid { cert: seen() }
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                CheckError::ServerWrongName {
                    expected: cx.server.to_string(),
                    cert: seen(),
                    addr: cx.addr,
                    via: cx.via,
                }
            }
            other => CheckError::ServerCertInvalid {
                reason: format!("{other}"),
            },
        },
        rustls::Error::AlertReceived(alert) => alert_error(alert, false, cx.our_issuer),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            CheckError::NotTls {
                addr: cx.addr,
                reason: format!("its answer is not a TLS record ({tls})"),
            }
        }
        rustls::Error::PeerIncompatible(_) => CheckError::TlsIncompatible {
            alert: format!("{tls}"),
        },
        other => CheckError::Tls {
            addr: cx.addr,
            reason: other.to_string(),
        },
    })
}

/// A TLS alert from the broker, during the handshake or (TLS 1.3) just after.
pub fn alert_error(
    alert: &AlertDescription,
    after_handshake: bool,
    our_issuer: &str,
) -> CheckError {
    if client_cert_alert(alert) {
        CheckError::ClientCertRejected {
            alert: format!("{alert:?}"),
            after_handshake,
            our_issuer: our_issuer.to_string(),
        }
    } else {
        CheckError::TlsIncompatible {
            alert: format!("{alert:?}"),
        }
    }
}
