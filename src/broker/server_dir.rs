//! The server dir's own files: `mosquitto.conf` rendered, a first
//! `permissions.acl`, the folders Mosquitto writes, and the checks that the
//! broker can read what it must.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::config::{self, ServerDir};
use super::{BrokerError, ContainerSpec, RunAs};
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
    if !exists && !dry_run {
        std::fs::create_dir_all(dir.path()).map_err(|e| server_dir_error(dir.path(), &e))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| server_dir_error(dir.path(), &e))?;
    }
    let conf = config::mosquitto_conf();
    let mut changes = vec![
        write_file(&dir.conf_path(), exists || !dry_run, dry_run, |_| {
            conf.clone().into_bytes()
        })?,
        write_file(&dir.acl_path(), exists || !dry_run, dry_run, |old| {
            old.map_or_else(|| config::initial_acl().as_bytes().to_vec(), <[u8]>::to_vec)
        })?,
    ];
    let (uid, gid) = spec.run_as.owner();
    for writable in spec.writable_dirs(dir) {
        let existed = writable.is_dir();
        let owned = std::fs::metadata(&writable).is_ok_and(|m| m.is_dir() && m.uid() == uid);
        if owned {
            continue;
        }
        if !dry_run {
            let fail = |e: io::Error| server_dir_error(&writable, &e);
            if !existed {
                std::fs::create_dir(&writable).map_err(fail)?;
                std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o700))
                    .map_err(fail)?;
            }
            std::os::unix::fs::chown(&writable, Some(uid), Some(gid)).map_err(fail)?;
        }
        changes.push(FileChange {
            path: writable,
            change: if existed { "updated" } else { "created" },
            diff: None,
        });
    }
    Ok(changes)
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

/// The server dir as an absolute path without symlinks where it exists: the
/// engine needs absolute mount sources, and the label must be stable.
pub(super) fn absolute(path: &Path) -> Result<PathBuf, BrokerError> {
    match std::fs::canonicalize(path) {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::path::absolute(path).map_err(|e| server_dir_error(path, &e))
        }
        Err(e) => Err(server_dir_error(path, &e)),
    }
}
