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
mod error;
mod load;
pub(crate) mod pem;
pub mod pki;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;

pub use certificate::{CertInfo, Timestamp, Validity, fingerprint, is_signed_by};
pub use error::{IdentityError, Role};
pub use load::{certificate_warnings, load_ca, load_certificate, load_key};

use crate::output::human_duration;
use crate::tls::Credentials;

pub const CLIENT_CRT: &str = "client.crt";

pub const CLIENT_KEY: &str = "client.key";

pub const CA_CRT: &str = "ca.crt";

/// Where the agent keeps its identity when neither `CERT_PATH` nor `CONFIG_PATH` is set.
pub const DEFAULT_CERT_DIR: &str = "/opt/wott/certs";

/// The agent renews a certificate when fewer than this many seconds are left.
pub const RENEWAL_THRESHOLD_SECS: i64 = 3 * 86_400;

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
    use crate::diagnose::Diagnose;
    use crate::exit_code::ExitCode;
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
