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

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::config::CERTS_SUBDIR;
use super::{BrokerError, RunAs};
use crate::files::dir::{Dir, Entry};
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
    /// Whether `ca.crt`'s content changed: Mosquitto reads its `cafile` only
    /// at start (not on SIGHUP), so a running broker needs a restart.
    pub ca_changed: bool,
    /// Who owns the copies: the user Mosquitto runs as.
    pub owner_uid: u32,
    pub owner_gid: u32,
}

impl Staged {
    pub fn is_changed(&self) -> bool {
        !self.changed.is_empty()
    }
}

/// Copies `identity`'s three files into `<server_dir>/certs`, for a broker
/// that runs as `run_as`: the copies are that user's (uid 1883 for the
/// image's), the folder is root's and only readable by the broker's group
/// when root stages ([`RunAs::certs_dir`]), so the broker's user can read the
/// copies but never put a link in their place. `identity` has been
/// validated (key matches, CA signed it, valid now); the copies are validated
/// again, so a renewal racing with us is caught. Nothing is resolved by path:
/// see `files::dir`.
pub fn stage(
    identity: &Identity,
    server_dir: &Path,
    run_as: RunAs,
    dry_run: bool,
) -> Result<Staged, BrokerError> {
    let owner = run_as.owner();
    let certs_dir = server_dir.join(CERTS_SUBDIR);
    let sources = [
        (CLIENT_CRT, identity.cert.path.as_path(), 0o644),
        (CLIENT_KEY, identity.key.path.as_path(), 0o600),
        (CA_CRT, identity.ca.path.as_path(), 0o644),
    ];
    let mut contents = Vec::with_capacity(sources.len());
    for (name, source, mode) in sources {
        let bytes = fs::read(source).map_err(|e| stage_error(source, &e))?;
        contents.push((name, bytes, mode));
    }
    let (dir_mode, dir_owner) = run_as.certs_dir();
    let (certs, dir_changed) = match Dir::open(server_dir) {
        Ok(parent) => parent
            .subdir(CERTS_SUBDIR, dir_mode, dir_owner, dry_run)
            .map_err(|e| stage_error(&certs_dir, &e))?,
        // A dry run before the first `server up`: everything is to be made.
        Err(e) if dry_run && e.kind() == io::ErrorKind::NotFound => (None, true),
        Err(e) => return Err(stage_error(server_dir, &e)),
    };
    let mut changed = Vec::new();
    let mut ca_changed = false;
    if dir_changed {
        changed.push(format!("{}/", certs_dir.display()));
    }
    for (name, bytes, mode) in &contents {
        let path = certs_dir.join(name);
        let current = match &certs {
            Some(certs) => certs.read(name).map_err(|e| stage_error(&path, &e))?,
            None => Entry::Missing,
        };
        let same = matches!(&current, Entry::File { bytes: b, mode: m, owner: o }
            if b == bytes && m == mode && *o == owner);
        if same {
            continue;
        }
        if *name == CA_CRT && !matches!(&current, Entry::File { bytes: b, .. } if b == bytes) {
            ca_changed = true;
        }
        if let (Some(certs), false) = (&certs, dry_run) {
            certs
                .replace(name, bytes, *mode, owner)
                .map_err(|e| stage_error(&path, &e))?;
        }
        changed.push(path.display().to_string());
    }
    if !dry_run {
        // What the broker will read must itself be a valid identity.
        Identity::load(&CertDir::new(&certs_dir)).map_err(|e| BrokerError::StagedInvalid {
            dir: certs_dir.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(Staged {
        dir: certs_dir,
        changed,
        fingerprint_sha256: identity.cert.info.fingerprint_sha256.clone(),
        ca_changed,
        owner_uid: owner.0,
        owner_gid: owner.1,
    })
}

fn stage_error(path: &Path, e: &io::Error) -> BrokerError {
    BrokerError::Stage {
        path: path.to_path_buf(),
        reason: e.to_string(),
        kind: e.kind(),
    }
}

/// The tests' one skip helper (a failure under CI, a recorded skip elsewhere).
#[cfg(test)]
#[path = "../../tests/support/skip.rs"]
mod skip;

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::identity::pki::{Authority, DeviceRequest, random_device_id};

    /// Staging chowns to uid 1883, which needs root.
    fn skip_without_root() -> bool {
        let root = crate::broker::run_as::invoker().0 == 0;
        super::skip::skip_without("root (staging chowns to uid 1883)", root)
    }

    fn me() -> (u32, u32) {
        crate::broker::run_as::invoker()
    }

    fn user() -> RunAs {
        RunAs::User {
            uid: me().0,
            gid: me().1,
        }
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

        let planned = stage(&agent, tmp.path(), RunAs::Image, true).unwrap();
        assert_eq!(planned.changed.len(), 4, "{:?}", planned.changed);
        assert!(!certs.exists(), "a dry run writes nothing");

        let staged = stage(&agent, tmp.path(), RunAs::Image, false).unwrap();
        assert_eq!(staged.changed.len(), 4);
        let attrs = |p: &Path| {
            let m = fs::metadata(p).unwrap();
            (m.uid(), m.gid(), m.permissions().mode() & 0o7777)
        };
        assert_eq!(
            attrs(&certs),
            (0, 1883, 0o750),
            "root's: uid 1883 reads, but cannot plant links"
        );
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

        assert!(
            !stage(&agent, tmp.path(), RunAs::Image, false)
                .unwrap()
                .is_changed()
        );
        assert!(
            !stage(&agent, tmp.path(), RunAs::Image, true)
                .unwrap()
                .is_changed()
        );
    }

    #[test]
    fn a_copy_someone_loosened_is_put_right() {
        if skip_without_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let agent = identity(&tmp.path().join("agent"));
        let certs = tmp.path().join("certs");
        stage(&agent, tmp.path(), RunAs::Image, false).unwrap();
        let key = certs.join(CLIENT_KEY);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&key, Some(0), Some(0)).unwrap();
        let again = stage(&agent, tmp.path(), RunAs::Image, false).unwrap();
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
        stage(&first, tmp.path(), RunAs::Image, false).unwrap();
        let renewed = identity(&agent_dir);
        let staged = stage(&renewed, tmp.path(), RunAs::Image, false).unwrap();
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
        let staged = stage(&agent, tmp.path(), user(), false).unwrap();
        assert_eq!(staged.changed.len(), 4, "{:?}", staged.changed);
        assert_eq!((staged.owner_uid, staged.owner_gid), me());
        let attrs = |p: &Path| {
            let m = fs::metadata(p).unwrap();
            ((m.uid(), m.gid()), m.permissions().mode() & 0o7777)
        };
        assert_eq!(attrs(&certs), (me(), 0o700));
        assert_eq!(attrs(&certs.join(CLIENT_KEY)), (me(), 0o600));
        assert_eq!(attrs(&certs.join(CA_CRT)), (me(), 0o644));
        assert!(
            !stage(&agent, tmp.path(), user(), false)
                .unwrap()
                .is_changed()
        );
        assert!(
            !stage(&agent, tmp.path(), user(), true)
                .unwrap()
                .is_changed()
        );
    }

    /// The review's attack: uid 1883 owned `certs/` and replaced the copies
    /// with links to root's files, which staging then overwrote and chowned.
    #[test]
    fn links_planted_in_certs_are_replaced_and_their_targets_untouched() {
        if skip_without_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let agent = identity(&tmp.path().join("agent"));
        let certs = tmp.path().join("certs");
        // The old layout: certs/ belonged to uid 1883, which planted links.
        fs::create_dir(&certs).unwrap();
        std::os::unix::fs::chown(&certs, Some(1883), Some(1883)).unwrap();
        let victim = tmp.path().join("authorized_keys");
        fs::write(&victim, b"ssh-ed25519 AAAA root@host\n").unwrap();
        std::os::unix::fs::symlink(&victim, certs.join(CLIENT_KEY)).unwrap();
        std::os::unix::fs::symlink(&victim, certs.join(CLIENT_CRT)).unwrap();
        stage(&agent, tmp.path(), RunAs::Image, false).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"ssh-ed25519 AAAA root@host\n");
        let m = fs::metadata(&victim).unwrap();
        assert_eq!(m.uid(), 0, "the target keeps its owner");
        let key = fs::symlink_metadata(certs.join(CLIENT_KEY)).unwrap();
        assert!(key.file_type().is_file());
        assert_eq!((key.uid(), key.permissions().mode() & 0o777), (1883, 0o600));
        let dir = fs::metadata(&certs).unwrap();
        assert_eq!(
            (dir.uid(), dir.gid(), dir.permissions().mode() & 0o7777),
            (0, 1883, 0o750)
        );
    }
}
