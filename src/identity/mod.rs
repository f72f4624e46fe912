//! The device identity the WoTT agent keeps: `client.crt`, `client.key`, `ca.crt`.
//!
//! The device ID is the CN of `client.crt`. This module loads the three files,
//! says precisely what is wrong with each (a missing file, DER instead of PEM,
//! a key where the certificate should be, an encrypted key, a key that belongs
//! to another certificate, a CA that did not sign it, an expired certificate),
//! and hands `check`, `server up` and `whoami` one validated [`Identity`].
//!
//! It reads only what a caller needs: the device ID comes from `client.crt`
//! alone, so a user who cannot read the root-only `client.key` still gets it,
//! exactly like `wott-agent whoami`.

mod certificate;
pub(crate) mod pem;
pub mod pki;

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use serde::Serialize;

pub use certificate::{CertInfo, Timestamp, Validity, fingerprint, is_signed_by};

use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;
use crate::output::human_duration;
use crate::tls::Credentials;

pub const CLIENT_CRT: &str = "client.crt";
pub const CLIENT_KEY: &str = "client.key";
pub const CA_CRT: &str = "ca.crt";

/// Where the agent keeps its identity when neither `CERT_PATH` nor `CONFIG_PATH` is set.
pub const DEFAULT_CERT_DIR: &str = "/opt/wott/certs";

/// The agent renews a certificate when fewer than this many seconds are left.
pub const RENEWAL_THRESHOLD_SECS: i64 = 3 * 86_400;

/// Which of the three files a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Certificate,
    Key,
    Ca,
}

impl Role {
    fn noun(self) -> &'static str {
        match self {
            Role::Certificate => "certificate",
            Role::Key => "private key",
            Role::Ca => "CA certificate",
        }
    }

    fn expected_header(self) -> &'static str {
        match self {
            Role::Certificate | Role::Ca => "-----BEGIN CERTIFICATE-----",
            Role::Key => "-----BEGIN PRIVATE KEY-----",
        }
    }
}

/// What is wrong with the identity, naming the file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdentityError {
    #[error("the cert dir {} does not exist", path.display())]
    DirMissing { path: PathBuf },
    #[error("cannot open the cert dir {}: {reason}", path.display())]
    DirUnreadable {
        path: PathBuf,
        kind: io::ErrorKind,
        reason: String,
    },
    #[error("{} is missing (the device's {})", path.display(), role.noun())]
    Missing { path: PathBuf, role: Role },
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable {
        path: PathBuf,
        role: Role,
        kind: io::ErrorKind,
        reason: String,
    },
    #[error("{} is empty", path.display())]
    Empty { path: PathBuf, role: Role },
    #[error("{} is not PEM: no {} line found", path.display(), role.expected_header())]
    NotPem { path: PathBuf, role: Role },
    #[error("{} is in binary DER form; wott-mqtt and mosquitto need PEM", path.display())]
    Der { path: PathBuf, role: Role },
    #[error("{} holds {found}, not a {}", path.display(), role.noun())]
    WrongContent {
        path: PathBuf,
        role: Role,
        found: String,
    },
    #[error("{} holds a damaged {}: {reason}", path.display(), role.noun())]
    Corrupt {
        path: PathBuf,
        role: Role,
        reason: String,
    },
    #[error("{} has no subject CN, so it names no device ID (subject: {subject})", path.display())]
    NoCommonName { path: PathBuf, subject: String },
    #[error("{} is encrypted with a passphrase", path.display())]
    KeyEncrypted { path: PathBuf },
    #[error("{} does not belong to {} (the public keys differ)", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{} did not sign {} (the certificate's issuer is {issuer})", ca.display(), cert.display())]
    NotSignedByCa {
        cert: PathBuf,
        ca: PathBuf,
        issuer: String,
    },
    #[error("{} expired {} ago, on {not_after}", path.display(), human_duration(*seconds_ago))]
    Expired {
        path: PathBuf,
        not_after: Timestamp,
        seconds_ago: i64,
    },
    #[error("{} is not valid until {not_before}, {} from now", path.display(), human_duration(*seconds_until))]
    NotYetValid {
        path: PathBuf,
        not_before: Timestamp,
        seconds_until: i64,
    },
}

const AGENT_RENEW: &str = "renew it with `sudo wott-agent` and check that the agent service runs";

impl Diagnose for IdentityError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            IdentityError::DirMissing { .. } => format!(
                "install and enroll the WoTT agent (it writes {DEFAULT_CERT_DIR}), \
                 or point --cert-dir / CERT_PATH at the folder holding client.crt"
            ),
            IdentityError::DirUnreadable { kind, .. } | IdentityError::Unreadable { kind, .. }
                if *kind == io::ErrorKind::PermissionDenied =>
            {
                match self {
                    IdentityError::Unreadable {
                        role: Role::Key, ..
                    } => "the agent keeps client.key readable by root only (mode 0600): run the command with sudo".into(),
                    _ => "run the command with sudo".into(),
                }
            }
            IdentityError::DirUnreadable { .. } | IdentityError::Unreadable { .. } => {
                "check the file and its folder".into()
            }
            IdentityError::Missing { role: Role::Ca, .. } => {
                "the agent writes ca.crt next to client.crt; re-run `sudo wott-agent`, or copy the WoTT CA certificate there".into()
            }
            IdentityError::Missing { .. } => "enroll the device with `sudo wott-agent`, \
                 or point --cert-dir / CERT_PATH at the folder that holds the agent's client.crt, client.key and ca.crt"
                .into(),
            IdentityError::Empty { .. } => {
                "the agent may have been interrupted while writing it (or the disk was full); re-run `sudo wott-agent`".into()
            }
            IdentityError::NotPem { role, .. } => format!(
                "the file must be PEM text starting with {}; restore the agent's file with `sudo wott-agent`",
                role.expected_header()
            ),
            IdentityError::Der { path, role } => match role {
                Role::Key => format!(
                    "convert it: openssl pkey -inform der -in {0} -out {0}.pem, then move {0}.pem to {0}",
                    path.display()
                ),
                _ => format!(
                    "convert it: openssl x509 -inform der -in {0} -out {0}.pem, then move {0}.pem to {0}",
                    path.display()
                ),
            },
            IdentityError::WrongContent { role, .. } => format!(
                "was a file copied to the wrong name? {} must hold a block starting with {}",
                match role {
                    Role::Certificate => CLIENT_CRT,
                    Role::Key => CLIENT_KEY,
                    Role::Ca => CA_CRT,
                },
                role.expected_header()
            ),
            IdentityError::Corrupt { .. } => {
                "the file is truncated or damaged; restore it with `sudo wott-agent`".into()
            }
            IdentityError::NoCommonName { .. } => {
                "the device ID is the certificate's subject CN; use the certificate the WoTT agent issued".into()
            }
            IdentityError::KeyEncrypted { path } => format!(
                "mosquitto and wott-mqtt need the unencrypted key the agent writes; \
                 decrypt it with: openssl pkey -in {} -out client.key.plain",
                path.display()
            ),
            IdentityError::KeyMismatch { .. } => {
                "the agent may be renewing right now: run the command again in a minute; \
                 otherwise restore the client.crt and client.key that belong together (`sudo wott-agent`)"
                    .into()
            }
            IdentityError::NotSignedByCa { .. } => {
                "ca.crt must be the CA that issued client.crt; restore the agent's ca.crt".into()
            }
            IdentityError::Expired { .. } => format!(
                "the agent renews certificates when fewer than 3 days are left; {AGENT_RENEW}"
            ),
            IdentityError::NotYetValid { .. } => {
                "check this machine's clock (`timedatectl`); a clock running behind makes new certificates look not yet valid".into()
            }
        })
    }

    fn exit_code(&self) -> ExitCode {
        ExitCode::Identity
    }
}

/// The folder that holds the agent's three files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertDir(PathBuf);

impl CertDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CertDir(path.into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn cert_path(&self) -> PathBuf {
        self.0.join(CLIENT_CRT)
    }

    pub fn key_path(&self) -> PathBuf {
        self.0.join(CLIENT_KEY)
    }

    pub fn ca_path(&self) -> PathBuf {
        self.0.join(CA_CRT)
    }

    /// Distinguishes "no such folder" from "no such file in it".
    fn check_dir(&self) -> Result<(), IdentityError> {
        match fs::metadata(&self.0) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(IdentityError::DirUnreadable {
                path: self.0.clone(),
                kind: io::ErrorKind::NotADirectory,
                reason: "it is not a directory".into(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(IdentityError::DirMissing {
                path: self.0.clone(),
            }),
            Err(e) => Err(IdentityError::DirUnreadable {
                path: self.0.clone(),
                kind: e.kind(),
                reason: e.to_string(),
            }),
        }
    }
}

/// Something worth knowing that does not stop the identity from working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Stable identifier: `bundle`, `expires-soon`, `expired`, `not-yet-valid`,
    /// `key-permissions`, `cn-not-in-san`.
    pub code: &'static str,
    pub message: String,
}

/// `client.crt`, parsed.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    pub path: PathBuf,
    pub info: CertInfo,
    pub der: CertificateDer<'static>,
    /// How many certificates the file holds; the first is the device's.
    pub count: usize,
}

impl LoadedCert {
    /// The subject CN; `load_certificate` guarantees there is one.
    pub fn device_id(&self) -> &str {
        self.info.common_name.as_deref().unwrap_or_default()
    }
}

/// `client.key`, parsed, with what we learnt about it.
#[derive(Debug)]
pub struct LoadedKey {
    pub path: PathBuf,
    pub der: PrivateKeyDer<'static>,
    /// The public half, DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    pub mode: u32,
}

/// `ca.crt`, parsed.
#[derive(Debug, Clone)]
pub struct LoadedCa {
    pub path: PathBuf,
    pub certs: Vec<CertificateDer<'static>>,
    pub infos: Vec<CertInfo>,
}

impl LoadedCa {
    /// The CA certificate that signed `cert`, if any of them did.
    pub fn signer_of(&self, cert: &LoadedCert) -> Option<&CertInfo> {
        self.certs
            .iter()
            .zip(&self.infos)
            .find(|(ca, _)| is_signed_by(cert.der.as_ref(), ca.as_ref()))
            .map(|(_, info)| info)
    }
}

fn read_role_file(path: &Path, role: Role) -> Result<Vec<u8>, IdentityError> {
    match fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Err(IdentityError::Empty {
            path: path.to_path_buf(),
            role,
        }),
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(IdentityError::Missing {
            path: path.to_path_buf(),
            role,
        }),
        Err(e) => Err(IdentityError::Unreadable {
            path: path.to_path_buf(),
            role,
            kind: e.kind(),
            reason: e.to_string(),
        }),
    }
}

/// Every certificate in a PEM file, each parsed, with a precise error for
/// anything else the file holds instead.
fn read_certificates(
    path: &Path,
    role: Role,
) -> Result<Vec<(CertificateDer<'static>, CertInfo)>, IdentityError> {
    let bytes = read_role_file(path, role)?;
    let blocks = pem::blocks(&bytes);
    let certs: Vec<&pem::Block> = blocks
        .iter()
        .filter(|b| b.label.ends_with("CERTIFICATE") && b.label != "CERTIFICATE REQUEST")
        .collect();
    if certs.is_empty() {
        return Err(match blocks.first() {
            Some(other) => IdentityError::WrongContent {
                path: path.to_path_buf(),
                role,
                found: describe_label(&other.label),
            },
            None if CertInfo::from_der(&bytes).is_ok() => IdentityError::Der {
                path: path.to_path_buf(),
                role,
            },
            None if looks_like_der_key(&bytes) => IdentityError::WrongContent {
                path: path.to_path_buf(),
                role,
                found: "a binary (DER) private key".into(),
            },
            None => IdentityError::NotPem {
                path: path.to_path_buf(),
                role,
            },
        });
    }
    certs
        .into_iter()
        .enumerate()
        .map(|(index, block)| {
            let corrupt = |reason: String| IdentityError::Corrupt {
                path: path.to_path_buf(),
                role,
                reason: if index == 0 {
                    reason
                } else {
                    format!("certificate {} of the bundle: {reason}", index + 1)
                },
            };
            let der = block.der.clone().ok_or_else(|| {
                corrupt("the PEM block is cut short or its base64 is damaged".into())
            })?;
            let info = CertInfo::from_der(&der)
                .map_err(|e| corrupt(format!("the DER does not parse ({e})")))?;
            Ok((CertificateDer::from(der), info))
        })
        .collect()
}

fn describe_label(label: &str) -> String {
    if label.contains("PRIVATE KEY") {
        format!("a private key ({label})")
    } else if label.contains("PUBLIC KEY") {
        format!("a public key ({label})")
    } else if label.contains("CERTIFICATE REQUEST") {
        format!("a certificate signing request ({label})")
    } else {
        format!("a PEM block labelled {label:?}")
    }
}

fn looks_like_der_key(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x30) && key_spki(&PrivateKeyDer::Pkcs8(bytes.to_vec().into())).is_ok()
}

/// Reads `client.crt`: the first certificate, which must have a CN.
pub fn load_certificate(path: &Path) -> Result<LoadedCert, IdentityError> {
    let mut certs = read_certificates(path, Role::Certificate)?;
    let count = certs.len();
    let (der, info) = certs.swap_remove(0);
    if info.common_name.is_none() {
        return Err(IdentityError::NoCommonName {
            path: path.to_path_buf(),
            subject: info.subject,
        });
    }
    Ok(LoadedCert {
        path: path.to_path_buf(),
        info,
        der,
        count,
    })
}

/// Reads `ca.crt`: one or more CA certificates.
pub fn load_ca(path: &Path) -> Result<LoadedCa, IdentityError> {
    let (certs, infos) = read_certificates(path, Role::Ca)?.into_iter().unzip();
    Ok(LoadedCa {
        path: path.to_path_buf(),
        certs,
        infos,
    })
}

/// Reads `client.key` (PKCS#8, SEC1 or PKCS#1 PEM) and derives its public key.
pub fn load_key(path: &Path) -> Result<LoadedKey, IdentityError> {
    let bytes = read_role_file(path, Role::Key)?;
    let mode = fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o7777);
    let blocks = pem::blocks(&bytes);
    let corrupt = |reason: &str| IdentityError::Corrupt {
        path: path.to_path_buf(),
        role: Role::Key,
        reason: reason.to_string(),
    };
    let Some(block) = blocks.iter().find(|b| b.label.contains("PRIVATE KEY")) else {
        return Err(match blocks.first() {
            Some(other) => IdentityError::WrongContent {
                path: path.to_path_buf(),
                role: Role::Key,
                found: describe_label(&other.label),
            },
            None if looks_like_der_key(&bytes) => IdentityError::Der {
                path: path.to_path_buf(),
                role: Role::Key,
            },
            None => IdentityError::NotPem {
                path: path.to_path_buf(),
                role: Role::Key,
            },
        });
    };
    if block.is_encrypted() {
        return Err(IdentityError::KeyEncrypted {
            path: path.to_path_buf(),
        });
    }
    let der = block
        .der
        .clone()
        .ok_or_else(|| corrupt("the PEM block is cut short or its base64 is damaged"))?;
    let der = match block.label.as_str() {
        "PRIVATE KEY" => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
        "EC PRIVATE KEY" => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
        "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
        other => {
            return Err(IdentityError::WrongContent {
                path: path.to_path_buf(),
                role: Role::Key,
                found: format!("an unsupported key type ({other})"),
            });
        }
    };
    let spki = key_spki(&der).map_err(|e| corrupt(&format!("the key does not load ({e})")))?;
    Ok(LoadedKey {
        path: path.to_path_buf(),
        der,
        spki,
        mode,
    })
}

fn key_spki(key: &PrivateKeyDer<'_>) -> Result<Vec<u8>, rustls::Error> {
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key.clone_key())?;
    signing
        .public_key()
        .map(|spki| spki.as_ref().to_vec())
        .ok_or_else(|| rustls::Error::General("the key type cannot report its public key".into()))
}

/// Warnings about the certificate alone (and the key file's mode, which needs
/// no read access): what plain `whoami` can tell without reading the key.
pub fn certificate_warnings(cert: &LoadedCert, key_path: &Path, now: Timestamp) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if cert.count > 1 {
        warnings.push(Warning {
            code: "bundle",
            message: format!(
                "{} holds {} certificates; using the first one ({})",
                cert.path.display(),
                cert.count,
                cert.info.subject
            ),
        });
    }
    match cert.info.validity_at(now) {
        Validity::Expired { seconds_ago } => warnings.push(Warning {
            code: "expired",
            message: format!(
                "the certificate expired {} ago ({}); {AGENT_RENEW}",
                human_duration(seconds_ago),
                cert.info.not_after
            ),
        }),
        Validity::NotYetValid { seconds_until } => warnings.push(Warning {
            code: "not-yet-valid",
            message: format!(
                "the certificate is not valid for another {} ({}); check the clock",
                human_duration(seconds_until),
                cert.info.not_before
            ),
        }),
        Validity::Valid { seconds_left } if seconds_left < RENEWAL_THRESHOLD_SECS => {
            warnings.push(Warning {
                code: "expires-soon",
                message: format!(
                    "the certificate expires in {} ({}); the agent renews when fewer than 3 days are left, so it is overdue: {AGENT_RENEW}",
                    human_duration(seconds_left),
                    cert.info.not_after
                ),
            })
        }
        Validity::Valid { .. } => {}
    }
    if !cert.info.has_dns_name(cert.device_id()) {
        warnings.push(Warning {
            code: "cn-not-in-san",
            message: format!(
                "the CN {} is not among the certificate's DNS names ({}); TLS clients check names against those only, so clients cannot verify this device as a server",
                cert.device_id(),
                if cert.info.dns_names.is_empty() {
                    "none".to_string()
                } else {
                    cert.info.dns_names.join(", ")
                }
            ),
        });
    }
    if let Ok(meta) = fs::metadata(key_path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warnings.push(Warning {
                code: "key-permissions",
                message: format!(
                    "{} has mode {mode:04o}: other users can read the private key; fix with: sudo chmod 600 {}",
                    key_path.display(),
                    key_path.display()
                ),
            });
        }
    }
    warnings
}

/// Everything about a cert dir, for `whoami --long`: the certificate (which
/// must load), and the key and CA with their own errors.
#[derive(Debug)]
pub struct Inspection {
    pub dir: CertDir,
    pub cert: LoadedCert,
    pub key: Result<LoadedKey, IdentityError>,
    pub ca: Result<LoadedCa, IdentityError>,
    pub now: Timestamp,
    pub warnings: Vec<Warning>,
}

impl Inspection {
    /// Loads all three files; fails only when `client.crt` itself is unusable.
    pub fn load(dir: &CertDir) -> Result<Inspection, IdentityError> {
        dir.check_dir()?;
        let cert = load_certificate(&dir.cert_path())?;
        let now = Timestamp::now();
        let warnings = certificate_warnings(&cert, &dir.key_path(), now);
        Ok(Inspection {
            dir: dir.clone(),
            key: load_key(&dir.key_path()),
            ca: load_ca(&dir.ca_path()),
            cert,
            now,
            warnings,
        })
    }

    pub fn key_matches(&self) -> Option<bool> {
        self.key
            .as_ref()
            .ok()
            .map(|k| k.spki == self.cert.info.spki)
    }

    pub fn ca_signer(&self) -> Option<&CertInfo> {
        self.ca
            .as_ref()
            .ok()
            .and_then(|ca| ca.signer_of(&self.cert))
    }

    /// The errors that make this identity unusable for TLS, most basic first.
    /// Expiry is not among them: `whoami` reports it as a warning.
    pub fn problems(&self) -> Vec<IdentityError> {
        let mut problems = Vec::new();
        match (&self.key, self.key_matches()) {
            (Err(e), _) => problems.push(e.clone()),
            (Ok(_), Some(false)) => problems.push(IdentityError::KeyMismatch {
                cert: self.cert.path.clone(),
                key: self.dir.key_path(),
            }),
            _ => {}
        }
        match &self.ca {
            Err(e) => problems.push(e.clone()),
            Ok(_) if self.ca_signer().is_none() => problems.push(IdentityError::NotSignedByCa {
                cert: self.cert.path.clone(),
                ca: self.dir.ca_path(),
                issuer: self.cert.info.issuer.clone(),
            }),
            Ok(_) => {}
        }
        problems
    }

    /// The validated identity, or the first reason it cannot be used,
    /// including expiry.
    pub fn into_identity(self) -> Result<Identity, IdentityError> {
        if let Some(problem) = self.problems().into_iter().next() {
            return Err(problem);
        }
        match self.cert.info.validity_at(self.now) {
            Validity::Expired { seconds_ago } => {
                return Err(IdentityError::Expired {
                    path: self.cert.path.clone(),
                    not_after: self.cert.info.not_after,
                    seconds_ago,
                });
            }
            Validity::NotYetValid { seconds_until } => {
                return Err(IdentityError::NotYetValid {
                    path: self.cert.path.clone(),
                    not_before: self.cert.info.not_before,
                    seconds_until,
                });
            }
            Validity::Valid { .. } => {}
        }
        let (Ok(key), Ok(ca)) = (self.key, self.ca) else {
            unreachable!("problems() reports a key or CA that did not load");
        };
        Ok(Identity {
            dir: self.dir,
            cert: self.cert,
            key,
            ca,
            warnings: self.warnings,
        })
    }
}

/// A complete, consistent, currently valid identity: what TLS needs.
#[derive(Debug)]
pub struct Identity {
    pub dir: CertDir,
    pub cert: LoadedCert,
    pub key: LoadedKey,
    pub ca: LoadedCa,
    /// Things worth telling the user (bundle, expiring soon, key mode).
    pub warnings: Vec<Warning>,
}

impl Identity {
    /// Loads and validates the identity in `dir`: the key matches, the CA
    /// signed the certificate, and the certificate is valid now.
    pub fn load(dir: &CertDir) -> Result<Identity, IdentityError> {
        Inspection::load(dir)?.into_identity()
    }

    pub fn device_id(&self) -> &str {
        self.cert.device_id()
    }

    /// The certificate chain to present: the device certificate, then any
    /// further certificates in `client.crt`.
    /// What TLS presents and trusts for this device.
    pub fn credentials(&self) -> Credentials<'_> {
        Credentials {
            chain: vec![self.cert.der.clone()],
            key: self.key.der.clone_key(),
            roots: &self.ca.certs,
            cert_path: &self.cert.path,
            key_path: &self.key.path,
            ca_path: &self.ca.path,
        }
    }
}

/// Reads just the device ID (CN of `client.crt`), like `wott-agent whoami`.
pub fn device_id(dir: &CertDir) -> Result<LoadedCert, IdentityError> {
    dir.check_dir()?;
    load_certificate(&dir.cert_path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::pki::{Authority, DeviceRequest, random_device_id};

    fn issued(request: impl FnOnce(DeviceRequest) -> DeviceRequest) -> (tempfile::TempDir, String) {
        let ca = Authority::new("CA").unwrap();
        let id = random_device_id().unwrap();
        let dir = tempfile::tempdir().unwrap();
        ca.issue(&request(DeviceRequest::new(&id)))
            .unwrap()
            .write_to(dir.path())
            .unwrap();
        (dir, id)
    }

    #[test]
    fn a_healthy_identity_loads() {
        let (dir, id) = issued(|r| r);
        let identity = Identity::load(&CertDir::new(dir.path())).unwrap();
        assert_eq!(identity.device_id(), id);
        assert_eq!(identity.cert.info.curve.as_deref(), Some("P-256"));
        assert!(identity.warnings.is_empty(), "{:?}", identity.warnings);
    }

    #[test]
    fn expired_is_a_warning_for_inspection_and_an_error_for_use() {
        let (dir, _) = issued(DeviceRequest::expired);
        let inspection = Inspection::load(&CertDir::new(dir.path())).unwrap();
        assert_eq!(inspection.warnings[0].code, "expired");
        assert!(inspection.problems().is_empty());
        let err = inspection.into_identity().unwrap_err();
        assert!(matches!(err, IdentityError::Expired { .. }), "{err:?}");
        assert_eq!(err.exit_code(), ExitCode::Identity);
    }
}
