//! What `server watch` has to say: one event per line of its log.

use serde::Serialize;

use crate::identity::Timestamp;

/// How much an event matters: `info` for what went as it should, `warning`
/// for what waits (the broker keeps serving its last good state), `error`
/// for what needs a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// A certificate, as the log names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertId {
    pub serial: String,
    pub fingerprint_sha256: String,
    pub not_after: Timestamp,
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// Watching began.
    Watching {
        container: String,
        cert_dir: String,
        acl_file: String,
    },
    /// The broker serves the files on disk.
    Current {
        container: String,
        certificate: CertId,
    },
    /// The renewed certificate (and permissions.acl) applied and served.
    Renewed {
        container: String,
        old: Option<CertId>,
        new: CertId,
    },
    /// permissions.acl changed and the broker reloaded it.
    AclReloaded {
        container: String,
    },
    /// The broker ran without its ACL (a failed load); reloaded with a
    /// file it accepts, it enforces the rules again.
    AclRestored {
        container: String,
    },
    /// The agent's files are not a complete, consistent identity yet (a
    /// renewal being written): the broker keeps the current certificate.
    Waiting {
        reason: String,
    },
    /// A renewal that must not be applied: another device ID, expired, …
    RenewalRefused {
        reason: String,
        hint: String,
    },
    /// permissions.acl has a line Mosquitto refuses: not reloaded (on a
    /// reload Mosquitto would enforce no ACL at all).
    AclRefused {
        problem: String,
        hint: String,
    },
    /// A reload that did not go through.
    ApplyFailed {
        reason: String,
        hint: Option<String>,
    },
    /// The broker's container, as the engine reports it.
    BrokerStarted {
        container: String,
    },
    BrokerStopped {
        container: String,
        exit_code: Option<i64>,
    },
    BrokerRemoved {
        container: String,
    },
    /// No running container to keep current (gone, stopped, not ours).
    BrokerMissing {
        container: String,
        reason: String,
    },
    /// The container engine does not answer; watch tries again.
    EngineUnreachable {
        reason: String,
    },
    EngineBack {
        endpoint: String,
    },
    /// SIGTERM or SIGINT.
    Stopped,
}

impl Event {
    pub fn level(&self) -> Level {
        match self {
            Event::Watching { .. }
            | Event::Current { .. }
            | Event::Renewed { .. }
            | Event::AclReloaded { .. }
            | Event::AclRestored { .. }
            | Event::BrokerStarted { .. }
            | Event::EngineBack { .. }
            | Event::Stopped => Level::Info,
            Event::Waiting { .. }
            | Event::BrokerStopped { .. }
            | Event::BrokerMissing { .. }
            | Event::EngineUnreachable { .. } => Level::Warning,
            Event::RenewalRefused { .. }
            | Event::AclRefused { .. }
            | Event::ApplyFailed { .. }
            | Event::BrokerRemoved { .. } => Level::Error,
        }
    }
}
