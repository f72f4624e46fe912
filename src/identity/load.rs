//! Reading the agent's three files: each checked for what it must be (a
//! PEM certificate, a PKCS#8/SEC1/PKCS#1 key, a CA bundle), with a precise
//! error for each way it is not.

use std::fs;
use std::io;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};

use super::error::AGENT_RENEW;
use super::*;
use crate::names::{DeviceId, NameError};

/// The most an identity file may hold: the agent's are a few kilobytes.
pub const MAX_IDENTITY_FILE: u64 = 1 << 20;

/// Reads one of the three files: a regular file (a FIFO would block, a
/// device such as /dev/zero would never end) of at most
/// [`MAX_IDENTITY_FILE`] bytes. Opened non-blocking, so that a FIFO is seen
/// for what it is before anything waits on it.
fn read_bounded(path: &Path, role: Role) -> io::Result<Result<Vec<u8>, IdentityError>> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a directory"
        } else if meta.file_type().is_fifo() {
            "a FIFO"
        } else if meta.file_type().is_char_device() || meta.file_type().is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Ok(Err(IdentityError::NotAFile {
            path: path.to_path_buf(),
            role,
            kind,
        }));
    }
    let mut bytes = Vec::new();
    file.take(MAX_IDENTITY_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_IDENTITY_FILE {
        return Ok(Err(IdentityError::TooLarge {
            path: path.to_path_buf(),
            role,
            limit: MAX_IDENTITY_FILE,
        }));
    }
    Ok(Ok(bytes))
}

pub(super) fn read_role_file(path: &Path, role: Role) -> Result<Vec<u8>, IdentityError> {
    match read_bounded(path, role) {
        Ok(Err(refused)) => Err(refused),
        Ok(Ok(bytes)) if bytes.iter().all(u8::is_ascii_whitespace) => Err(IdentityError::Empty {
            path: path.to_path_buf(),
            role,
        }),
        Ok(Ok(bytes)) => Ok(bytes),
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
pub(super) fn read_certificates(
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

pub(super) fn describe_label(label: &str) -> String {
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

pub(super) fn looks_like_der_key(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x30) && key_spki(&PrivateKeyDer::Pkcs8(bytes.to_vec().into())).is_ok()
}

/// Reads `client.crt`: the first certificate, which must have a CN.
pub fn load_certificate(path: &Path) -> Result<LoadedCert, IdentityError> {
    let mut certs = read_certificates(path, Role::Certificate)?;
    let count = certs.len();
    let (der, info) = certs.swap_remove(0);
    let Some(cn) = &info.common_name else {
        return Err(IdentityError::NoCommonName {
            path: path.to_path_buf(),
            subject: info.subject,
        });
    };
    // The device ID goes into terminals, hosts entries, ACL lines and
    // printed commands: once here, it is a DNS name or the identity is refused.
    if let Err(NameError::DeviceId { reason, .. }) = DeviceId::new(cn) {
        return Err(IdentityError::InvalidCommonName {
            path: path.to_path_buf(),
            common_name: cn.escape_debug().take(120).collect(),
            reason,
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
    let spki =
        key_spki(&der).map_err(|e| match certificate::pkcs8_algorithm(der.secret_der()) {
            // Well-formed, of a kind rustls does not sign with.
            Some(algorithm) => IdentityError::UnsupportedKey {
                path: path.to_path_buf(),
                algorithm,
            },
            None => corrupt(&format!("the key does not load ({e})")),
        })?;
    Ok(LoadedKey {
        path: path.to_path_buf(),
        der,
        spki,
        mode,
    })
}

pub(super) fn key_spki(key: &PrivateKeyDer<'_>) -> Result<Vec<u8>, rustls::Error> {
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
