//! What can go wrong with a file, and the fix for each case.

use std::io;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;

/// What went wrong with a file, and which one.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is a directory, not a file", path.display())]
    IsDirectory { path: PathBuf },
    #[error("{} is a symbolic link to {}, which does not exist", path.display(), target.display())]
    DanglingSymlink { path: PathBuf, target: PathBuf },
    #[error("{} leads to a loop of symbolic links", path.display())]
    SymlinkLoop { path: PathBuf },
    /// A device, FIFO or socket: reading it may never end, and replacing it
    /// by rename would destroy it (think `--hosts-file /dev/null` as root).
    #[error("{} is {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("the folder {} does not exist", dir.display())]
    MissingFolder { path: PathBuf, dir: PathBuf },
    #[error("cannot lock {} for editing: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
    /// Another process held the folder's lock longer than the deadline.
    #[error("cannot lock {} for editing: something has held the lock on {} for {seconds:.0} s", path.display(), dir.display())]
    LockTimeout {
        path: PathBuf,
        dir: PathBuf,
        seconds: f64,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    /// Overwriting the file where it is failed half-way (after the space
    /// was reserved); `restored`: the old content was put back.
    #[error("cannot write {} in place: {source}", path.display())]
    InPlace {
        path: PathBuf,
        source: io::Error,
        restored: bool,
    },
}

impl FileError {
    /// A failed read, with the cases that have their own message picked out.
    pub(super) fn read(path: &Path, source: io::Error) -> FileError {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::IsADirectory => FileError::IsDirectory { path },
            _ if Errno::from_io_error(&source) == Some(Errno::LOOP) => {
                FileError::SymlinkLoop { path }
            }
            _ => FileError::Read { path, source },
        }
    }

    fn source_io(&self) -> Option<&io::Error> {
        match self {
            FileError::Read { source, .. }
            | FileError::Lock { source, .. }
            | FileError::Write { source, .. }
            | FileError::InPlace { source, .. } => Some(source),
            FileError::IsDirectory { .. }
            | FileError::DanglingSymlink { .. }
            | FileError::SymlinkLoop { .. }
            | FileError::NotRegular { .. }
            | FileError::MissingFolder { .. }
            | FileError::LockTimeout { .. } => None,
        }
    }

    /// What became of the file: only an in-place write that failed half-way
    /// may have touched it.
    fn aftermath(&self) -> &'static str {
        match self {
            FileError::InPlace { restored: true, .. } => {
                "the write stopped half-way; the file was put back as it was"
            }
            FileError::InPlace {
                restored: false, ..
            } => {
                "the write stopped half-way and the file could not be put back: check it, and restore it from a backup if it is damaged"
            }
            _ => "the file was not changed",
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            FileError::Read { path, .. }
            | FileError::IsDirectory { path }
            | FileError::DanglingSymlink { path, .. }
            | FileError::SymlinkLoop { path }
            | FileError::NotRegular { path, .. }
            | FileError::MissingFolder { path, .. }
            | FileError::Lock { path, .. }
            | FileError::LockTimeout { path, .. }
            | FileError::Write { path, .. }
            | FileError::InPlace { path, .. } => path,
        }
    }
}

impl Diagnose for FileError {
    fn hint(&self) -> Option<String> {
        let path = self.path().display();
        if let FileError::IsDirectory { .. } = self {
            return Some(format!(
                "pass the path of the file itself, not of a directory: {path} is a directory"
            ));
        }
        match self {
            FileError::DanglingSymlink { .. } => {
                return Some(
                    "point the link at an existing file, or pass the real file's path".into(),
                );
            }
            FileError::SymlinkLoop { .. } => {
                return Some(format!(
                    "a symbolic link on the way to {path} points back at itself; \
                     fix the link (`ls -l` shows where each one points) or pass the real file's path"
                ));
            }
            FileError::NotRegular { .. } => {
                return Some(
                    "pass the path of a regular file: wott-mqtt replaces the file it edits, \
                     which would destroy a device or a FIFO"
                        .into(),
                );
            }
            FileError::LockTimeout { dir, .. } => {
                let dir = crate::output::shell_word(&dir.display().to_string()).into_owned();
                return Some(format!(
                    "find what holds it with `fuser -v {dir}` (or `lsof {dir}`) and stop it, then run the command again; \
                     WOTT_MQTT_LOCK_TIMEOUT=SECONDS waits longer (the file was not changed)"
                ));
            }
            FileError::MissingFolder { dir, .. } => {
                return Some(format!(
                    "create it first (sudo mkdir -p {}) or pass a path in an existing folder",
                    dir.display()
                ));
            }
            _ => {}
        }
        let source = self.source_io()?;
        Some(match source.kind() {
            io::ErrorKind::PermissionDenied => {
                format!("{path} belongs to another user; run the command with sudo")
            }
            io::ErrorKind::ReadOnlyFilesystem => {
                format!(
                    "{path} is on a read-only filesystem; remount it read-write or choose another file"
                )
            }
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                format!(
                    "the disk holding {path} is full; free some space and run the command again ({})",
                    self.aftermath()
                )
            }
            io::ErrorKind::NotFound => format!("check the path {path}"),
            io::ErrorKind::NotADirectory => {
                format!(
                    "a part of {path} before the file name is a file, not a folder; check the path"
                )
            }
            io::ErrorKind::InvalidFilename => {
                "the path or one of its names is longer than the system allows; check the path"
                    .into()
            }
            _ if matches!(self, FileError::InPlace { .. }) => {
                format!("{path}: {}", self.aftermath())
            }
            _ => return None,
        })
    }

    fn exit_code(&self) -> ExitCode {
        ExitCode::Failure
    }
}
