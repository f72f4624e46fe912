//! Safe edits of shared system files: /etc/hosts and Mosquitto's permissions.acl.
//!
//! Every edit is a read-modify-write under an exclusive lock, so concurrent
//! runs serialize instead of losing each other's changes. The new content goes
//! to a temp file in the same directory, is fsynced, and is renamed over the
//! original, so a killed process leaves the old file or the new one, never a
//! mix. The original mode and owner are kept. Where rename cannot work (EBUSY
//! on a bind-mounted /etc/hosts inside a container, or a directory we may not
//! create files in) the content is written in place, still under the lock.
//!
//! The lock is a `flock` on the file's directory: it survives the rename of
//! the file itself and leaves no lock file behind.
//!
//! [`update`] hands the editor the old bytes and takes the new ones. For files
//! that can be large (an ad-block /etc/hosts), [`update_pieces`] lets the
//! editor stream the old file and describe the new content as ranges of it
//! plus new bytes; the ranges are copied inside the kernel.

mod content;
mod error;
mod lock;
mod update;

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rustix::io::Errno;

pub use content::{Piece, materialize};
pub use error::FileError;
pub use lock::{Locked, WriteMethod, lock};
pub use update::{
    Edit, PieceEdit, UpdateOptions, replace_owned, unified_diff, update, update_pieces,
};

/// Reads a whole file, or `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, FileError> {
    let Some(mut file) = open_optional(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|source| FileError::read(path, source))?;
    Ok(Some(bytes))
}

/// Opens a file for reading, or `None` when it does not exist. A pipe is
/// fine (`--hosts-file <(ssh server cat /etc/hosts)` for a read-only
/// command); edits accept regular files only (see [`lock`]).
pub fn open_optional(path: &Path) -> Result<Option<File>, FileError> {
    match File::open(path) {
        Ok(file) if file.metadata().is_ok_and(|m| m.is_dir()) => Err(FileError::IsDirectory {
            path: path.to_path_buf(),
        }),
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::symlink_metadata(path) {
            Ok(link) if link.file_type().is_symlink() => Err(FileError::DanglingSymlink {
                path: path.to_path_buf(),
                target: fs::read_link(path).unwrap_or_default(),
            }),
            _ => Ok(None),
        },
        Err(source) => Err(FileError::read(path, source)),
    }
}

/// Directories, devices, FIFOs and sockets are not files wott-mqtt edits.
fn check_regular(path: &Path, meta: &fs::Metadata) -> Result<(), FileError> {
    use std::os::unix::fs::FileTypeExt;
    let file_type = meta.file_type();
    let kind = if file_type.is_file() {
        return Ok(());
    } else if file_type.is_dir() {
        return Err(FileError::IsDirectory {
            path: path.to_path_buf(),
        });
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(FileError::NotRegular {
        path: path.to_path_buf(),
        kind,
    })
}

/// The file a path finally names: symbolic links followed, so that editing
/// /etc/hosts → /run/hosts edits the real file and keeps the link.
fn resolve(path: &Path) -> Result<PathBuf, FileError> {
    match fs::canonicalize(path) {
        Ok(real) => {
            let meta = fs::metadata(&real).map_err(|source| FileError::read(path, source))?;
            check_regular(path, &meta)?;
            Ok(real)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Ok(target) = fs::read_link(path) {
                return Err(FileError::DanglingSymlink {
                    path: path.to_path_buf(),
                    target,
                });
            }
            let dir = parent_dir(path);
            let dir = fs::canonicalize(dir).map_err(|source| match source.kind() {
                io::ErrorKind::NotFound => FileError::MissingFolder {
                    path: path.to_path_buf(),
                    dir: dir.to_path_buf(),
                },
                _ if Errno::from_io_error(&source) == Some(Errno::LOOP) => FileError::SymlinkLoop {
                    path: path.to_path_buf(),
                },
                _ => FileError::Write {
                    path: path.to_path_buf(),
                    source,
                },
            })?;
            Ok(match path.file_name() {
                Some(name) => dir.join(name),
                None => dir,
            })
        }
        Err(source) => Err(FileError::read(path, source)),
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}
