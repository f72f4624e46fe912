//! The one rustls client configuration: this device's identity, the WoTT CA,
//! the ring provider, and a verifier that remembers what the server showed.
//!
//! `check`, `server up` readiness and `server status` all connect with
//! [`client_config`], so they trust and present exactly the same things.
//!
//! Two things a stock `ClientConfig` cannot do, and why this one can:
//!
//! - **Report the server's certificate when verification fails.** A support
//!   person needs "the server presented CN=other-device, issued by another
//!   CA", not just "UnknownIssuer". rustls drops the peer chain when the
//!   verifier rejects it, so [`RecordingVerifier`] stores the chain in a
//!   [`PeerRecord`] *before* delegating to rustls' own `WebPkiServerVerifier`.
//!   The checks themselves (chain to `ca.crt`, validity, name against SANs
//!   only) are webpki's, unchanged.
//! - **Verify a name other than the one dialled** (curl `--resolve`). Callers
//!   that dial the socket themselves (as `check` does) simply hand the server
//!   ID to the TLS connector as the server name. Callers that give the config
//!   to a library which verifies the host string it dials (rumqttc does, see
//!   the crate notes) set [`TlsOptions::verify_as`]: the verifier then checks
//!   the certificate against that name whatever the connector passed.
//!
//! Only the ring provider is used, passed explicitly, so nothing here depends
//! on (or installs) a process-wide default provider.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;

/// What this device presents and trusts: its certificate chain and key, and
/// the CA certificates it accepts the server's from, with the files they
/// came from for messages. `identity::Identity::credentials` makes one.
#[derive(Debug)]
pub struct Credentials<'a> {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub roots: &'a [CertificateDer<'static>],
    pub cert_path: &'a Path,
    pub key_path: &'a Path,
    pub ca_path: &'a Path,
}

/// Why a client configuration could not be built from a device's
/// [`Credentials`]. These are identity problems that `Identity::load` could
/// not see (rustls is stricter than x509-parser about some encodings), so
/// they exit like one.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsConfigError {
    #[error("{path}: rustls cannot use this CA certificate as a trust anchor: {reason}")]
    TrustAnchor { path: String, reason: String },
    #[error("cannot build a certificate verifier from {path}: {reason}")]
    Verifier { path: String, reason: String },
    #[error("rustls refuses {cert} with {key}: {reason}")]
    ClientAuth {
        cert: String,
        key: String,
        reason: String,
    },
}

impl Diagnose for TlsConfigError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            TlsConfigError::TrustAnchor { .. } | TlsConfigError::Verifier { .. } => {
                "ca.crt must be the WoTT CA certificate the agent writes; restore it with `sudo wott-agent`".into()
            }
            TlsConfigError::ClientAuth { .. } => {
                "client.crt and client.key must be the pair the agent wrote; restore them with `sudo wott-agent`".into()
            }
        })
    }

    fn exit_code(&self) -> ExitCode {
        ExitCode::Identity
    }
}

/// Choices beyond the identity itself.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Verify the server certificate against this name instead of the one the
    /// connector passes (the dialled host). For libraries that dial and verify
    /// the same string, e.g. rumqttc given an IP address.
    pub verify_as: Option<ServerName<'static>>,
    /// ALPN protocols to offer; none by default (Mosquitto needs none).
    pub alpn: Vec<Vec<u8>>,
}

/// The server's certificate chain as it was presented, whether or not it
/// verified. Shared between the verifier (which fills it) and the caller.
#[derive(Debug, Clone, Default)]
pub struct PeerRecord(Arc<Mutex<Option<Vec<CertificateDer<'static>>>>>);

impl PeerRecord {
    /// The chain the server sent, end-entity first, if the handshake got that far.
    pub fn chain(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The server's own certificate, as it was sent.
    pub fn end_entity(&self) -> Option<CertificateDer<'static>> {
        self.chain()?.into_iter().next()
    }

    fn record(&self, chain: Vec<CertificateDer<'static>>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(chain);
    }
}

/// Delegates every decision to webpki, but records the chain first and can
/// substitute the name to verify.
#[derive(Debug)]
pub struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    record: PeerRecord,
    verify_as: Option<ServerName<'static>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.record.record(
            std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect(),
        );
        let name = self.verify_as.as_ref().unwrap_or(server_name);
        self.inner
            .verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The crypto provider every connection uses: ring, never aws-lc.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration that presents the device's certificate, trusts
/// only its CA, and records the server's chain in the returned
/// [`PeerRecord`]. Use one configuration per connection when you need the
/// record: it holds the chain of the last handshake.
pub fn client_config(
    credentials: Credentials<'_>,
    options: &TlsOptions,
) -> Result<(Arc<ClientConfig>, PeerRecord), TlsConfigError> {
    let (verifier, record) = verifier(&credentials, options)?;
    let client_auth_error = |reason: String| TlsConfigError::ClientAuth {
        cert: credentials.cert_path.display().to_string(),
        key: credentials.key_path.display().to_string(),
        reason,
    };
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| client_auth_error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(credentials.chain, credentials.key)
        .map_err(|e| client_auth_error(e.to_string()))?;
    config.alpn_protocols = options.alpn.clone();
    Ok((Arc::new(config), record))
}

/// The verifier [`client_config`] installs: webpki with the device's CA as
/// the only root, recording into a fresh [`PeerRecord`].
pub fn verifier(
    credentials: &Credentials<'_>,
    options: &TlsOptions,
) -> Result<(Arc<RecordingVerifier>, PeerRecord), TlsConfigError> {
    let ca_path = credentials.ca_path.display().to_string();
    let mut roots = RootCertStore::empty();
    for cert in credentials.roots {
        roots
            .add(cert.clone())
            .map_err(|e| TlsConfigError::TrustAnchor {
                path: ca_path.clone(),
                reason: e.to_string(),
            })?;
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| TlsConfigError::Verifier {
            path: ca_path,
            reason: e.to_string(),
        })?;
    let record = PeerRecord::default();
    let verifier = RecordingVerifier {
        inner,
        record: record.clone(),
        verify_as: options.verify_as.clone(),
    };
    Ok((Arc::new(verifier), record))
}

/// `TLS 1.3`, `TLS 1.2`: the negotiated version as people write it.
pub fn protocol_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::pki::{Authority, DeviceRequest, random_device_id};
    use crate::identity::{CertDir, CertInfo, Identity};

    /// A device identity issued and trusted by `ca`.
    fn identity(ca: &Authority) -> (tempfile::TempDir, Identity) {
        let dir = tempfile::tempdir().unwrap();
        ca.issue(&DeviceRequest::new(&random_device_id().unwrap()))
            .unwrap()
            .write_to(dir.path())
            .unwrap();
        let identity = Identity::load(&CertDir::new(dir.path())).unwrap();
        (dir, identity)
    }

    /// The verifier's verdict on `server`'s certificate when the connector
    /// asks for `dialled`.
    fn verdict(
        identity: &Identity,
        server: &crate::identity::pki::DeviceIdentity,
        dialled: &str,
        options: &TlsOptions,
    ) -> (Result<ServerCertVerified, rustls::Error>, PeerRecord) {
        let (verifier, record) = verifier(&identity.credentials(), options).unwrap();
        client_config(identity.credentials(), options).unwrap();
        let der = CertificateDer::from(
            crate::identity::pem::blocks(server.cert_pem.as_bytes())[0]
                .der
                .clone()
                .unwrap(),
        );
        let name = ServerName::try_from(dialled.to_string()).unwrap();
        let result = verifier.verify_server_cert(&der, &[], &name, &[], UnixTime::now());
        (result, record)
    }

    #[test]
    fn records_the_chain_even_when_verification_fails() {
        let (_dir, identity) = identity(&Authority::new("CA").unwrap());
        let stranger = Authority::new("Another CA").unwrap();
        let server_id = random_device_id().unwrap();
        let server = stranger.issue(&DeviceRequest::new(&server_id)).unwrap();
        let (result, record) = verdict(&identity, &server, &server_id, &TlsOptions::default());
        assert!(
            matches!(
                result,
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            ),
            "{result:?}"
        );
        let seen = CertInfo::from_der(record.end_entity().unwrap().as_ref()).unwrap();
        assert_eq!(seen.common_name.as_deref(), Some(server_id.as_str()));
        assert!(seen.issuer.contains("Another CA"), "{}", seen.issuer);
    }

    #[test]
    fn verify_as_replaces_the_dialled_name() {
        let ca = Authority::new("CA").unwrap();
        let (_dir, identity) = identity(&ca);
        let server_id = random_device_id().unwrap();
        let server = ca.issue(&DeviceRequest::new(&server_id)).unwrap();

        let (dialled_ip, _) = verdict(&identity, &server, "127.0.0.1", &TlsOptions::default());
        assert!(dialled_ip.is_err(), "an IP is not among the SANs");
        let options = TlsOptions {
            verify_as: Some(ServerName::try_from(server_id.clone()).unwrap()),
            ..TlsOptions::default()
        };
        let (substituted, _) = verdict(&identity, &server, "127.0.0.1", &options);
        assert!(substituted.is_ok(), "{substituted:?}");
        let wrong = TlsOptions {
            verify_as: Some(ServerName::try_from("other.d.wott.local").unwrap()),
            ..TlsOptions::default()
        };
        let (mismatch, _) = verdict(&identity, &server, &server_id, &wrong);
        assert!(mismatch.is_err(), "verify_as wins over the dialled name");
    }
}
