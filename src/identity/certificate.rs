//! The facts of one X.509 certificate, extracted once into owned values.
//!
//! Used for our own `client.crt` (`whoami`) and for the certificate a broker
//! presents over the wire (`check`, `server status`).

use serde::Serialize;
use x509_parser::oid_registry::Oid;
use x509_parser::prelude::*;

/// A point in time, shown as `2026-11-24 20:53:13 UTC` and serialized as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(::time::OffsetDateTime::now_utc().unix_timestamp())
    }

    fn datetime(self) -> Option<::time::OffsetDateTime> {
        ::time::OffsetDateTime::from_unix_timestamp(self.0).ok()
    }

    pub fn rfc3339(self) -> String {
        self.datetime()
            .and_then(|t| {
                t.format(&::time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| self.0.to_string())
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.datetime() {
            Some(t) => write!(
                f,
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            None => write!(f, "@{}", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

/// Where a certificate stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Validity {
    Valid { seconds_left: i64 },
    Expired { seconds_ago: i64 },
    NotYetValid { seconds_until: i64 },
}

/// Everything `whoami --long` and `check` show about a certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub issuer: String,
    pub serial: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// `EC`, `RSA`, `Ed25519`, or the OID's short name.
    pub key_algorithm: String,
    /// `P-256` for the agent's keys.
    pub curve: Option<String>,
    pub key_bits: Option<usize>,
    pub signature_algorithm: String,
    /// SHA-256 of the DER, as `openssl x509 -fingerprint -sha256` prints it.
    pub fingerprint_sha256: String,
    pub is_ca: bool,
    /// The subject key identifier, `AB:CD:…`: tells apart two CAs of one name.
    #[serde(skip)]
    pub subject_key_id: Option<String>,
    /// The issuer's key identifier as this certificate names it.
    #[serde(skip)]
    pub authority_key_id: Option<String>,
    /// The DER SubjectPublicKeyInfo, to compare with a private key's.
    #[serde(skip)]
    pub spki: Vec<u8>,
}

impl CertInfo {
    /// Parses a DER certificate; the error is x509-parser's reason.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        let registry = oid_registry();
        let short_name = |oid: &Oid<'_>| {
            oid2sn(oid, registry)
                .map(str::to_string)
                .unwrap_or_else(|_| oid.to_id_string())
        };
        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => dns_names.push((*dns).to_string()),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            ip_addresses.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let spki = cert.public_key();
        let (key_algorithm, curve) = match short_name(&spki.algorithm.algorithm).as_str() {
            "id-ecPublicKey" => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|oid| friendly_curve(&short_name(&oid)));
                ("EC".to_string(), curve)
            }
            "rsaEncryption" => ("RSA".to_string(), None),
            other => (other.to_string(), None),
        };
        let key_bits = spki.parsed().ok().map(|k| k.key_size()).filter(|&b| b > 0);
        let validity = cert.validity();
        let mut subject_key_id = None;
        let mut authority_key_id = None;
        for extension in cert.extensions() {
            match extension.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(key_id(id.0)),
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    authority_key_id = aki.key_identifier.as_ref().map(|id| key_id(id.0));
                }
                _ => {}
            }
        }
        Ok(CertInfo {
            subject: cert.subject().to_string(),
            common_name: cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_string),
            dns_names,
            ip_addresses,
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
            not_before: Timestamp(validity.not_before.timestamp()),
            not_after: Timestamp(validity.not_after.timestamp()),
            key_algorithm,
            curve,
            key_bits,
            signature_algorithm: short_name(&cert.signature_algorithm.algorithm),
            fingerprint_sha256: fingerprint(der),
            is_ca: cert.is_ca(),
            subject_key_id,
            authority_key_id,
            spki: spki.raw.to_vec(),
        })
    }

    pub fn validity_at(&self, now: Timestamp) -> Validity {
        if now < self.not_before {
            Validity::NotYetValid {
                seconds_until: self.not_before.0 - now.0,
            }
        } else if now > self.not_after {
            Validity::Expired {
                seconds_ago: now.0 - self.not_after.0,
            }
        } else {
            Validity::Valid {
                seconds_left: self.not_after.0 - now.0,
            }
        }
    }

    /// Whether a DNS SAN equals `name` (ASCII case-insensitive, as DNS is).
    pub fn has_dns_name(&self, name: &str) -> bool {
        self.dns_names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// Whether `ca_der`'s key made the signature on `cert_der`.
pub fn is_signed_by(cert_der: &[u8], ca_der: &[u8]) -> bool {
    let (Ok((_, cert)), Ok((_, ca))) = (
        X509Certificate::from_der(cert_der),
        X509Certificate::from_der(ca_der),
    ) else {
        return false;
    };
    cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// `AB:CD:…`, upper-case hex pairs, as OpenSSL prints fingerprints and key
/// identifiers.
fn key_id(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The SHA-256 fingerprint of a DER certificate, as [`key_id`] writes it.
pub fn fingerprint(der: &[u8]) -> String {
    key_id(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

fn friendly_curve(short_name: &str) -> String {
    match short_name {
        "prime256v1" => "P-256".into(),
        "secp384r1" => "P-384".into(),
        "secp521r1" => "P-521".into(),
        // Curves the registry has no name for, by their OIDs.
        "1.3.132.0.10" => "secp256k1".into(),
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1".into(),
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1".into(),
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1".into(),
        other => other.into(),
    }
}

/// The algorithm of a well-formed PKCS#8 private key, in the words of
/// [`CertInfo`] (`EC secp256k1`, `ed448`, `RSA`); `None` when the DER is not
/// a PKCS#8 structure (then it is damaged, or another format).
pub fn pkcs8_algorithm(der: &[u8]) -> Option<String> {
    let (rest, info) = x509_parser::der_parser::parse_der(der).ok()?;
    let items = info.as_sequence().ok()?;
    if !rest.is_empty() || items.len() < 3 {
        return None;
    }
    let algorithm = items[1].as_sequence().ok()?;
    let oid = algorithm.first()?.as_oid().ok()?;
    let name = |oid: &Oid<'_>| {
        oid2sn(oid, oid_registry())
            .map(str::to_string)
            .unwrap_or_else(|_| oid.to_id_string())
    };
    Some(match name(oid).as_str() {
        "id-ecPublicKey" => match algorithm.get(1).and_then(|p| p.as_oid().ok()) {
            Some(curve) => format!("EC {}", friendly_curve(&name(curve))),
            None => "EC".into(),
        },
        "rsaEncryption" => "RSA".into(),
        other => other.into(),
    })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}
