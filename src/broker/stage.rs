//! Copies of the device identity that the broker can read.
//!
//! Mosquitto 2 drops root privileges *before* it loads its certificate and
//! key, so the agent's root-owned, mode-0600 `client.key` is unreadable to it
//! and the broker exits with "Unable to load server key file … Permission
//! denied". The tutorial's `run.sh` walks into exactly that. So the broker
//! gets copies in `<server-dir>/certs`: the folder 0700, the key 0600, all
//! owned by the image's `mosquitto` user (uid 1883). The agent renews the
//! certificate every few days, so every `server up` and `server reload`
//! copies again, and the copy is checked to be a valid identity before the
//! broker is told to use it. When Mosquitto runs as the invoking user
//! instead ([`super::RunAs::User`]), the copies are that user's.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::BrokerError;
use crate::files;
use crate::identity::{CA_CRT, CLIENT_CRT, CLIENT_KEY, CertDir, Identity};

/// The uid and gid Mosquitto runs as in the `eclipse-mosquitto` image.
pub const MOSQUITTO_UID: u32 = 1883;

/// What staging did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct Staged {
    pub dir: PathBuf,
    /// The files whose content, mode or owner changed (`certs/` itself when
    /// it was created or its mode or owner fixed).
    pub changed: Vec<String>,
    /// SHA-256 of the staged certificate: what the broker serves after a reload.
    pub fingerprint_sha256: String,
    /// Who owns the copies: the user Mosquitto runs as.
    pub owner_uid: u32,
    pub owner_gid: u32,
}

impl Staged {
    pub fn is_changed(&self) -> bool {
        !self.changed.is_empty()
    }
}

/// Copies `identity`'s three files into `certs_dir`, owned by `owner` (uid
/// and gid Mosquitto runs as: 1883 for the image's default).
/// `identity` has been validated (key matches, CA signed it, valid now); the
/// copies are validated again, so a renewal racing with us is caught.
pub fn stage(
    identity: &Identity,
    certs_dir: &Path,
    owner: (u32, u32),
    dry_run: bool,
) -> Result<Staged, BrokerError> {
    let sources = [
        (CLIENT_CRT, identity.cert.path.as_path(), 0o644),
        (CLIENT_KEY, identity.key.path.as_path(), 0o600),
        (CA_CRT, identity.ca.path.as_path(), 0o644),
    ];
    let mut contents = Vec::with_capacity(sources.len());
    for (name, source, mode) in sources {
        let bytes = fs::read(source).map_err(|e| BrokerError::Stage {
            path: source.to_path_buf(),
            reason: e.to_string(),
            kind: e.kind(),
        })?;
        contents.push((name, bytes, mode));
    }
    let mut changed = Vec::new();
    if prepare_dir(certs_dir, owner, dry_run)? {
        changed.push(format!("{}/", certs_dir.display()));
    }
    for (name, bytes, mode) in &contents {
        let path = certs_dir.join(name);
        let differs = if dry_run {
            differs(&path, bytes, *mode, owner)
        } else {
            files::replace_owned(&path, bytes, *mode, owner).map_err(|e| stage_error(&path, e))?
        };
        if differs {
            changed.push(path.display().to_string());
        }
    }
    if !dry_run {
        // What the broker will read must itself be a valid identity.
        Identity::load(&CertDir::new(certs_dir)).map_err(|e| BrokerError::StagedInvalid {
            dir: certs_dir.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(Staged {
        dir: certs_dir.to_path_buf(),
        changed,
        fingerprint_sha256: identity.cert.info.fingerprint_sha256.clone(),
        owner_uid: owner.0,
        owner_gid: owner.1,
    })
}

/// Creates `dir` (0700, `owner`) or fixes its mode and owner. True when it changed.
fn prepare_dir(dir: &Path, owner: (u32, u32), dry_run: bool) -> Result<bool, BrokerError> {
    let fail = |e: io::Error| BrokerError::Stage {
        path: dir.to_path_buf(),
        reason: e.to_string(),
        kind: e.kind(),
    };
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => Some(meta),
        Ok(_) => {
            return Err(BrokerError::Stage {
                path: dir.to_path_buf(),
                reason: "it exists and is not a directory".into(),
                kind: io::ErrorKind::AlreadyExists,
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(fail(e)),
    };
    let right = meta
        .as_ref()
        .is_some_and(|m| m.permissions().mode() & 0o7777 == 0o700 && (m.uid(), m.gid()) == owner);
    if right {
        return Ok(false);
    }
    if dry_run {
        return Ok(true);
    }
    if meta.is_none() {
        fs::create_dir(dir).map_err(fail)?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(fail)?;
    std::os::unix::fs::chown(dir, Some(owner.0), Some(owner.1)).map_err(fail)?;
    Ok(true)
}

/// Whether writing `bytes` with `mode` and `owner` to `path` would change it.
fn differs(path: &Path, bytes: &[u8], mode: u32, owner: (u32, u32)) -> bool {
    let same = fs::read(path).is_ok_and(|old| old == bytes)
        && fs::metadata(path)
            .is_ok_and(|m| m.permissions().mode() & 0o7777 == mode && (m.uid(), m.gid()) == owner);
    !same
}

fn stage_error(path: &Path, error: files::FileError) -> BrokerError {
    let (reason, kind) = match &error {
        files::FileError::Read { source, .. }
        | files::FileError::Write { source, .. }
        | files::FileError::Lock { source, .. } => (source.to_string(), source.kind()),
        other => (other.to_string(), io::ErrorKind::Other),
    };
    BrokerError::Stage {
        path: path.to_path_buf(),
        reason,
        kind,
    }
}

/// The tests' one skip helper (a failure under CI, a recorded skip elsewhere).
#[cfg(test)]
#[path = "../../tests/support/skip.rs"]
mod skip;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::pki::{Authority, DeviceRequest, random_device_id};

    const BROKER: (u32, u32) = (MOSQUITTO_UID, MOSQUITTO_UID);

    /// Staging chowns to uid 1883, which needs root.
    fn skip_without_root() -> bool {
        let root = crate::broker::run_as::invoker().0 == 0;
        super::skip::skip_without("root (staging chowns to uid 1883)", root)
    }

    fn me() -> (u32, u32) {
        crate::broker::run_as::invoker()
    }

    fn identity(dir: &Path) -> Identity {
        let ca = Authority::new("CA").unwrap();
        ca.issue(&DeviceRequest::new(&random_device_id().unwrap()))
            .unwrap()
            .write_to(dir)
            .unwrap();
        Identity::load(&CertDir::new(dir)).unwrap()
    }

    #[test]
    fn copies_belong_to_the_broker_and_a_second_run_changes_nothing() {
        if skip_without_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let agent = identity(&tmp.path().join("agent"));
        let certs = tmp.path().join("certs");

        let planned = stage(&agent, &certs, BROKER, true).unwrap();
        assert_eq!(planned.changed.len(), 4, "{:?}", planned.changed);
        assert!(!certs.exists(), "a dry run writes nothing");

        let staged = stage(&agent, &certs, BROKER, false).unwrap();
        assert_eq!(staged.changed.len(), 4);
        let attrs = |p: &Path| {
            let m = fs::metadata(p).unwrap();
            (m.uid(), m.gid(), m.permissions().mode() & 0o7777)
        };
        assert_eq!(attrs(&certs), (1883, 1883, 0o700));
        assert_eq!(attrs(&certs.join(CLIENT_KEY)), (1883, 1883, 0o600));
        assert_eq!(attrs(&certs.join(CLIENT_CRT)), (1883, 1883, 0o644));
        assert_eq!(
            fs::read(certs.join(CLIENT_KEY)).unwrap(),
            fs::read(&agent.key.path).unwrap()
        );
        assert_eq!(
            staged.fingerprint_sha256,
            agent.cert.info.fingerprint_sha256
        );

        assert!(!stage(&agent, &certs, BROKER, false).unwrap().is_changed());
        assert!(!stage(&agent, &certs, BROKER, true).unwrap().is_changed());
    }

    #[test]
    fn a_copy_someone_loosened_is_put_right() {
        if skip_without_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let agent = identity(&tmp.path().join("agent"));
        let certs = tmp.path().join("certs");
        stage(&agent, &certs, BROKER, false).unwrap();
        let key = certs.join(CLIENT_KEY);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&key, Some(0), Some(0)).unwrap();
        let again = stage(&agent, &certs, BROKER, false).unwrap();
        assert_eq!(again.changed, [key.display().to_string()]);
        let m = fs::metadata(&key).unwrap();
        assert_eq!((m.uid(), m.permissions().mode() & 0o777), (1883, 0o600));
    }

    #[test]
    fn a_renewed_certificate_is_staged_again() {
        if skip_without_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let agent_dir = tmp.path().join("agent");
        let first = identity(&agent_dir);
        let certs = tmp.path().join("certs");
        stage(&first, &certs, BROKER, false).unwrap();
        let renewed = identity(&agent_dir);
        let staged = stage(&renewed, &certs, BROKER, false).unwrap();
        assert_eq!(staged.changed.len(), 3, "{:?}", staged.changed);
        assert_eq!(
            Identity::load(&CertDir::new(&certs))
                .unwrap()
                .cert
                .info
                .fingerprint_sha256,
            renewed.cert.info.fingerprint_sha256
        );
    }

    #[test]
    fn a_user_broker_gets_copies_of_its_own_without_root() {
        // What `demo` and a docker-group user rely on: no chown to another user.
        let tmp = tempfile::tempdir().unwrap();
        let agent = identity(&tmp.path().join("agent"));
        let certs = tmp.path().join("certs");
        let staged = stage(&agent, &certs, me(), false).unwrap();
        assert_eq!(staged.changed.len(), 4, "{:?}", staged.changed);
        assert_eq!((staged.owner_uid, staged.owner_gid), me());
        let attrs = |p: &Path| {
            let m = fs::metadata(p).unwrap();
            ((m.uid(), m.gid()), m.permissions().mode() & 0o7777)
        };
        assert_eq!(attrs(&certs), (me(), 0o700));
        assert_eq!(attrs(&certs.join(CLIENT_KEY)), (me(), 0o600));
        assert_eq!(attrs(&certs.join(CA_CRT)), (me(), 0o644));
        assert!(!stage(&agent, &certs, me(), false).unwrap().is_changed());
        assert!(!stage(&agent, &certs, me(), true).unwrap().is_changed());
    }
}
