//! What can be wrong with a device identity, file by file, and the fix.

use std::io;
use std::path::PathBuf;

use serde::Serialize;

use super::{CA_CRT, CLIENT_CRT, CLIENT_KEY, DEFAULT_CERT_DIR, Timestamp};
use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;
use crate::output::human_duration;

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
    #[error("{} is {kind}, not a file (the device's {})", path.display(), role.noun())]
    NotAFile {
        path: PathBuf,
        role: Role,
        kind: &'static str,
    },
    #[error("{} is larger than {limit} bytes: not the device's {}", path.display(), role.noun())]
    TooLarge {
        path: PathBuf,
        role: Role,
        limit: u64,
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
    #[error("{} names the device \"{common_name}\", which is not a device ID: {reason}", path.display())]
    InvalidCommonName {
        path: PathBuf,
        /// Escaped: control and format characters shown, never sent.
        common_name: String,
        reason: String,
    },
    #[error("{} is encrypted with a passphrase", path.display())]
    KeyEncrypted { path: PathBuf },
    #[error("{} holds a private key of a kind TLS here cannot use ({algorithm})", path.display())]
    UnsupportedKey { path: PathBuf, algorithm: String },
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

pub(crate) const AGENT_RENEW: &str =
    "renew it with `sudo wott-agent` and check that the agent service runs";

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
            IdentityError::InvalidCommonName { .. } => {
                "a WoTT certificate's CN is the device ID, a DNS name such as 4853b630822946019393b16c5b710b9e.d.wott.local; \
                 this one was not issued by the agent: re-enroll with `sudo wott-agent`, or point --cert-dir / CERT_PATH at the agent's folder"
                    .into()
            }
            IdentityError::NotAFile { .. } | IdentityError::TooLarge { .. } => {
                "the agent writes its certificates and key as small PEM files; point --cert-dir / CERT_PATH \
                 at the agent's folder, or re-run `sudo wott-agent` to write them again"
                    .into()
            }
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
            IdentityError::UnsupportedKey { .. } => {
                "the WoTT agent's keys are EC P-256; rustls (in wott-mqtt) signs with EC P-256 or \
                 P-384, RSA or Ed25519 keys only: issue this device a certificate with one of those \
                 (`sudo wott-agent` writes the agent's own)"
                    .into()
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
