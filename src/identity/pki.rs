//! A throwaway certificate authority that issues WoTT-layout identities.
//!
//! The WoTT agent keeps `client.crt`, `client.key` (PKCS#8, EC P-256, mode
//! 0600) and `ca.crt` in its cert dir, with the device ID
//! (`<32 hex>.d.wott.local`) as the subject CN and as a DNS SAN. `demo` needs
//! such identities without an agent, and the tests need them in every broken
//! shape a device meets in the field: expired, not yet valid, from another CA,
//! with a key that belongs to another certificate. One module makes them all.

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};

use super::{CA_CRT, CLIENT_CRT, CLIENT_KEY};
use crate::diagnose::Diagnose;
use crate::names::WOTT_DOMAIN;

/// How long the agent's certificates live.
pub const WOTT_CERT_LIFETIME: Duration = Duration::days(7);

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot get random bytes from the operating system")]
    Random,
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: io::Error },
}

impl Diagnose for PkiError {}

/// A certificate authority that lives in memory only.
#[derive(Debug)]
pub struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    /// A new self-signed CA named `common_name`, valid from a day ago for ten years.
    pub fn new(common_name: &str) -> Result<Self, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "wott-mqtt throwaway CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        params.serial_number = Some(random_serial()?);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Authority { issuer })
    }

    /// The CA certificate, as the agent's `ca.crt` holds it.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Issues a device identity as described by `request`.
    pub fn issue(&self, request: &DeviceRequest) -> Result<DeviceIdentity, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = &request.common_name {
            params
                .distinguished_name
                .push(DnType::CommonName, cn.as_str());
        }
        params.subject_alt_names = request
            .dns_names
            .iter()
            .map(|name| Ok(SanType::DnsName(name.clone().try_into()?)))
            .chain(
                request
                    .ip_addresses
                    .iter()
                    .map(|ip| Ok(SanType::IpAddress(*ip))),
            )
            .collect::<Result<_, rcgen::Error>>()?;
        params.not_before = request.not_before;
        params.not_after = request.not_after;
        params.serial_number = Some(random_serial()?);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // The same identity serves as the broker's server certificate and as an MQTT client's.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(DeviceIdentity {
            device_id: request.common_name.clone().unwrap_or_default(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_pem: self.cert_pem(),
        })
    }
}

/// What to put in a device certificate. [`DeviceRequest::new`] gives what the
/// agent gets; the other methods make the broken variants.
#[derive(Debug, Clone)]
pub struct DeviceRequest {
    common_name: Option<String>,
    dns_names: Vec<String>,
    ip_addresses: Vec<IpAddr>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl DeviceRequest {
    /// A healthy agent certificate: CN and DNS SAN `device_id`, issued an hour
    /// ago, valid for the agent's seven days.
    pub fn new(device_id: &str) -> Self {
        let not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        DeviceRequest {
            common_name: Some(device_id.to_string()),
            dns_names: vec![device_id.to_string()],
            ip_addresses: Vec::new(),
            not_before,
            not_after: not_before + WOTT_CERT_LIFETIME,
        }
    }
}

/// The broken shapes the tests need; not in the release build.
#[cfg(any(test, feature = "test-support"))]
impl DeviceRequest {
    /// Expired two days ago (issued nine days ago).
    pub fn expired(self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.valid_between(now - Duration::days(9), now - Duration::days(2))
    }

    /// Valid from tomorrow.
    pub fn not_yet_valid(self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.valid_between(now + Duration::days(1), now + Duration::days(8))
    }

    /// Expires after `left`, like a certificate the agent failed to renew.
    pub fn expiring_in(self, left: Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        self.valid_between(now + left - WOTT_CERT_LIFETIME, now + left)
    }

    pub fn valid_between(mut self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// No subject CN at all.
    pub fn without_common_name(mut self) -> Self {
        self.common_name = None;
        self
    }

    /// Replaces the DNS SANs.
    pub fn dns_names(mut self, names: &[&str]) -> Self {
        self.dns_names = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// Adds an IP SAN, so that tools without a `--connect-to` can reach the
    /// broker by address (e.g. `mosquitto_sub -h 127.0.0.1` in tests).
    pub fn ip_address(mut self, ip: IpAddr) -> Self {
        self.ip_addresses.push(ip);
        self
    }
}

/// The three files of an agent cert dir, in memory.
#[derive(Debug, Clone)]
pub struct DeviceIdentity {
    pub device_id: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

impl DeviceIdentity {
    /// Writes `client.crt`, `client.key` (mode 0600) and `ca.crt` into `dir`,
    /// creating it (mode 0700) if needed, as the agent lays them out.
    pub fn write_to(&self, dir: &Path) -> Result<(), PkiError> {
        let fail = |path: &Path, source| PkiError::Write {
            path: path.display().to_string(),
            source,
        };
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| fail(dir, e))?;
        }
        write_file(&dir.join(CLIENT_CRT), &self.cert_pem, 0o644)
            .map_err(|e| fail(&dir.join(CLIENT_CRT), e))?;
        write_file(&dir.join(CLIENT_KEY), &self.key_pem, 0o600)
            .map_err(|e| fail(&dir.join(CLIENT_KEY), e))?;
        write_file(&dir.join(CA_CRT), &self.ca_pem, 0o644)
            .map_err(|e| fail(&dir.join(CA_CRT), e))?;
        Ok(())
    }
}

fn write_file(path: &Path, text: &str, mode: u32) -> io::Result<()> {
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

/// Mismatched identities for the tests; not in the release build.
#[cfg(any(test, feature = "test-support"))]
impl DeviceIdentity {
    /// This certificate with another identity's key: the pair does not match.
    pub fn with_key_of(mut self, other: &DeviceIdentity) -> Self {
        self.key_pem = other.key_pem.clone();
        self
    }

    /// This identity trusting another CA (its own certificate stays as issued).
    pub fn trusting(mut self, ca: &Authority) -> Self {
        self.ca_pem = ca.cert_pem();
        self
    }
}

/// A fresh ID in the agent's format: 32 lowercase hex characters + `.d.wott.local`.
pub fn random_device_id() -> Result<String, PkiError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{hex}{WOTT_DOMAIN}"))
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    bytes[0] &= 0x7f; // a positive INTEGER
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::DeviceId;

    #[test]
    fn device_ids_look_like_the_agents() {
        let id = random_device_id().unwrap();
        assert!(DeviceId::new(&id).unwrap().is_wott(), "{id}");
        assert_ne!(id, random_device_id().unwrap());
    }

    #[test]
    fn identities_are_written_with_agent_modes() {
        let ca = Authority::new("Test CA").unwrap();
        let id = random_device_id().unwrap();
        let identity = ca.issue(&DeviceRequest::new(&id)).unwrap();
        assert!(identity.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        identity.write_to(&certs).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&certs), 0o700);
        assert_eq!(mode(&certs.join(CLIENT_KEY)), 0o600);
        assert_eq!(mode(&certs.join(CLIENT_CRT)), 0o644);
    }
}
