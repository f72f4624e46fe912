//! Whether the broker serves older files than those on disk.
//!
//! Mosquitto reads its certificate and permissions.acl at start and on each
//! reload (SIGHUP), and serves what it read until the next one. So the
//! broker drifts when the agent renews the certificate (every few days) and
//! nobody reloads, or when permissions.acl is edited by hand after the
//! broker last loaded it. `server status` says so in its exit code, and
//! `server watch` repairs it.

use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::Serialize;

use super::diagnose::loads_files;
use super::ready::Served;
use crate::identity::Timestamp;

/// What the broker serves that is older than the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stale {
    /// It serves another certificate than the agent's `client.crt`.
    Certificate,
    /// `permissions.acl` changed after the broker last loaded it.
    Acl,
}

/// One drift, for people.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub what: Stale,
    pub detail: String,
}

/// The served certificate against the agent's (its SHA-256 fingerprint
/// and expiry).
pub fn certificate(served: &Served, agent: (&str, Timestamp)) -> Option<Drift> {
    let (fingerprint, not_after) = agent;
    (served.fingerprint_sha256 != fingerprint).then(|| Drift {
        what: Stale::Certificate,
        detail: format!(
            "the broker serves a certificate valid until {}, but the agent's is valid until {}: \
             the agent renewed the certificate",
            served.not_after, not_after
        ),
    })
}

/// `acl_file`'s modification time against `loaded` (Unix nanoseconds),
/// when the broker last read it; nothing when either is unknown.
pub fn acl(acl_file: &Path, loaded: Option<i128>) -> Option<Drift> {
    let loaded = loaded?;
    let modified = std::fs::metadata(acl_file).ok()?.modified().ok()?;
    let modified = i128::try_from(modified.duration_since(UNIX_EPOCH).ok()?.as_nanos()).ok()?;
    (modified > loaded).then(|| Drift {
        what: Stale::Acl,
        detail: format!(
            "{} changed at {}, after the broker last loaded it at {}",
            acl_file.display(),
            Timestamp((modified / 1_000_000_000) as i64),
            Timestamp((loaded / 1_000_000_000) as i64),
        ),
    })
}

/// When the broker last read its files: the time of the last start or
/// reload line in its log (timed by the engine), else when the container
/// started.
pub fn last_load(log: &[(Option<i128>, String)], started_at: Option<Timestamp>) -> Option<i128> {
    log.iter()
        .rev()
        .find(|(_, line)| loads_files(line))
        .and_then(|(at, _)| *at)
        .or_else(|| started_at.map(|t| i128::from(t.0) * 1_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_start_or_reload_is_when_the_files_were_read() {
        let log = vec![
            (
                Some(10),
                "2026-12-03T11:10:21: mosquitto version 2.0.11 starting".into(),
            ),
            (Some(20), "2026-12-03T11:10:21: New connection".into()),
            (Some(30), "2026-12-03T11:10:29: Reloading config.".into()),
            (
                Some(40),
                "2026-12-03T11:10:29: Client x disconnected.".into(),
            ),
        ];
        assert_eq!(last_load(&log, None), Some(30));
        assert_eq!(last_load(&log[..2], None), Some(10));
        assert_eq!(last_load(&[], Some(Timestamp(2))), Some(2_000_000_000));
        assert_eq!(last_load(&[], None), None);
    }

    #[test]
    fn an_acl_written_after_the_load_drifts() {
        let dir = tempfile::tempdir().unwrap();
        let acl_file = dir.path().join("permissions.acl");
        std::fs::write(&acl_file, "user a\ntopic read x\n").unwrap();
        assert!(acl(&acl_file, Some(0)).is_some());
        assert!(acl(&acl_file, Some(i128::MAX)).is_none());
        assert!(acl(&acl_file, None).is_none());
        assert!(acl(&dir.path().join("missing"), Some(0)).is_none());
    }
}
