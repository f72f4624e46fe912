//! The server dir's own files: `mosquitto.conf` rendered, a first
//! `permissions.acl`, the folders Mosquitto writes, and the checks that the
//! broker can read what it must.
//!
//! Root writes here, so the folder must be one only root (or, without root,
//! the invoking user) controls, as sshd's StrictModes demands of a home:
//! [`trust`] refuses a server dir, or any folder above it, that another user
//! owns or that others may write to (a sticky, root-owned folder such as
//! /tmp excepted: nobody can replace another's entry in it). Folders it
//! creates get mode 0755 whatever the umask, and the folders Mosquitto
//! writes are created and chowned through handles that never follow a link.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::config::{self, ServerDir};
use super::run_as::invoker;
use super::{BrokerError, ContainerSpec, RunAs};
use crate::files::dir::Dir;
use crate::files::{self, UpdateOptions};

/// One file of the server dir and what happened to it.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: PathBuf,
    /// `created`, `updated` or `unchanged`.
    pub change: &'static str,
    /// The unified diff, in a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl FileChange {
    pub fn is_changed(&self) -> bool {
        self.change != "unchanged"
    }
}

/// Renders mosquitto.conf, creates permissions.acl if it is missing (never
/// overwriting it) and the folders Mosquitto writes (owned by the user it
/// runs as: uid 1883 for the image's default).
pub(crate) fn write_files(
    dir: &ServerDir,
    spec: &ContainerSpec,
    dry_run: bool,
) -> Result<Vec<FileChange>, BrokerError> {
    let exists = dir.path().is_dir();
    trust(dir.path(), dry_run)?;
    refuse_link(&dir.conf_path())?;
    let conf = config::mosquitto_conf();
    let mut changes = vec![
        write_file(&dir.conf_path(), exists || !dry_run, dry_run, |_| {
            conf.clone().into_bytes()
        })?,
        write_file(&dir.acl_path(), exists || !dry_run, dry_run, |old| {
            old.map_or_else(|| config::initial_acl().as_bytes().to_vec(), <[u8]>::to_vec)
        })?,
    ];
    let owner = spec.run_as.owner();
    let parent = match Dir::open(dir.path()) {
        Ok(parent) => Some(parent),
        Err(e) if dry_run && !exists && e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(server_dir_error(dir.path(), &e)),
    };
    for name in spec.writable_dirs() {
        let path = dir.path().join(name);
        let existed = path.is_dir();
        let changed = match &parent {
            Some(parent) => {
                parent
                    .subdir(name, 0o700, owner, dry_run)
                    .map_err(|e| server_dir_error(&path, &e))?
                    .1
            }
            None => true,
        };
        if changed {
            changes.push(FileChange {
                path,
                change: if existed { "updated" } else { "created" },
                diff: None,
            });
        }
    }
    Ok(changes)
}

/// Refuses a server dir that is not root's (or the invoking user's), or
/// below a folder that is not, or that others may write to; creates what
/// is missing of it with mode 0755 (unless `dry_run`).
pub(crate) fn trust(dir: &Path, dry_run: bool) -> Result<(), BrokerError> {
    let me = invoker();
    let mut existing = PathBuf::from("/");
    let mut missing = Vec::new();
    for component in dir.components().skip(1) {
        let next = existing.join(component);
        if !missing.is_empty() || !next.exists() {
            missing.push(component.as_os_str().to_os_string());
            continue;
        }
        existing = next;
    }
    let mut chain: Vec<&Path> = existing.ancestors().collect();
    chain.reverse();
    for (i, path) in chain.iter().enumerate() {
        let is_server_dir = missing.is_empty() && i + 1 == chain.len();
        check_trusted(path, me.0, is_server_dir)?;
    }
    if dry_run || missing.is_empty() {
        return Ok(());
    }
    let mut at = Dir::open(&existing).map_err(|e| server_dir_error(&existing, &e))?;
    for name in &missing {
        let name = name.to_string_lossy();
        let (made, _) = at
            .subdir(&name, 0o755, me, false)
            .map_err(|e| server_dir_error(&at.path().join(name.as_ref()), &e))?;
        at = made.ok_or_else(|| server_dir_error(dir, &io::Error::other("not created")))?;
    }
    Ok(())
}

/// [`trust`]'s refusal, if any, changing nothing: what `doctor` reports.
pub fn check_trust(dir: &Path) -> Result<(), BrokerError> {
    trust(dir, true)
}

/// One folder of the chain [`trust`] walks.
fn check_trusted(path: &Path, my_uid: u32, is_server_dir: bool) -> Result<(), BrokerError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| server_dir_error(path, &e))?;
    let (uid, mode) = (meta.uid(), meta.permissions().mode() & 0o7777);
    let fail = |reason: &str| BrokerError::UntrustedServerDir {
        path: path.to_path_buf(),
        uid,
        mode,
        reason: reason.to_string(),
    };
    if meta.file_type().is_symlink() {
        return Err(fail("it is a symbolic link"));
    }
    if uid != 0 && uid != my_uid {
        return Err(fail(if my_uid == 0 {
            "it belongs to another user than root"
        } else {
            "it belongs to another user than root or you"
        }));
    }
    let sticky_root = uid == 0 && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && (is_server_dir || !sticky_root) {
        return Err(fail("other users may write to it"));
    }
    Ok(())
}

/// `mosquitto.conf` is rendered over whatever is there: never through a link.
fn refuse_link(path: &Path) -> Result<(), BrokerError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(BrokerError::UntrustedServerDir {
            path: path.to_path_buf(),
            uid: meta.uid(),
            mode: meta.permissions().mode() & 0o7777,
            reason: "it is a symbolic link, and wott-mqtt writes this file".into(),
        }),
        _ => Ok(()),
    }
}

/// One file through `files::update`, or (in a dry run of a server dir that
/// does not exist yet) its diff against nothing.
pub(crate) fn write_file(
    path: &Path,
    dir_exists: bool,
    dry_run: bool,
    content: impl FnOnce(Option<&[u8]>) -> Vec<u8>,
) -> Result<FileChange, BrokerError> {
    let edit = if dir_exists {
        files::update::<files::FileError>(
            path,
            UpdateOptions {
                dry_run,
                new_mode: 0o644,
            },
            |old| Ok(content(old)),
        )?
    } else {
        files::Edit {
            path: path.to_path_buf(),
            before: None,
            after: content(None),
            method: None,
        }
    };
    Ok(FileChange {
        path: path.to_path_buf(),
        change: match (&edit.before, edit.changed()) {
            (None, _) => "created",
            (Some(_), true) => "updated",
            (Some(_), false) => "unchanged",
        },
        diff: (dry_run && edit.changed()).then(|| edit.diff()),
    })
}

/// The broker (uid 1883, or the user it runs as) must reach
/// permissions.acl: the server dir must be searchable and the file readable
/// by others (or theirs). Checked before anything is written, on what
/// already exists.
pub(crate) fn check_broker_can_read(dir: &ServerDir, run_as: RunAs) -> Result<(), BrokerError> {
    let broker_uid = run_as.owner().0;
    let allowed = |meta: &std::fs::Metadata, bit: u32| {
        meta.uid() == broker_uid || meta.permissions().mode() & bit != 0
    };
    if let Ok(meta) = std::fs::metadata(dir.path())
        && !allowed(&meta, 0o001)
    {
        return Err(BrokerError::NotReadableByBroker {
            path: dir.path().to_path_buf(),
            mode: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
            broker_uid,
            is_dir: true,
        });
    }
    if let Ok(meta) = std::fs::metadata(dir.acl_path())
        && !allowed(&meta, 0o004)
    {
        return Err(BrokerError::NotReadableByBroker {
            path: dir.acl_path(),
            mode: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
            broker_uid,
            is_dir: false,
        });
    }
    Ok(())
}

pub(super) fn server_dir_error(path: &Path, e: &io::Error) -> BrokerError {
    BrokerError::ServerDir {
        path: path.to_path_buf(),
        reason: e.to_string(),
        kind: e.kind(),
    }
}

/// The server dir as an absolute path without symlinks as far as it
/// exists: the engine needs absolute mount sources, the label must be
/// stable, and [`trust`] checks the real folders.
pub(super) fn absolute(path: &Path) -> Result<PathBuf, BrokerError> {
    let full = std::path::absolute(path).map_err(|e| server_dir_error(path, &e))?;
    let mut rest = Vec::new();
    let mut at = full.as_path();
    loop {
        match std::fs::canonicalize(at) {
            Ok(real) => {
                return Ok(rest.iter().rev().fold(real, |p, name| p.join(name)));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match (at.parent(), at.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_os_string());
                    at = parent;
                }
                _ => return Ok(full),
            },
            Err(e) => return Err(server_dir_error(path, &e)),
        }
    }
}
