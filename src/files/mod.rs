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
pub mod dir;
mod error;
mod lock;
mod update;

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rustix::io::Errno;

pub use content::{Piece, materialize};
pub use error::FileError;
pub use lock::{Locked, WriteMethod, lock, on_waiting};
pub use update::{Edit, PieceEdit, UpdateOptions, unified_diff, update, update_pieces};

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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::diagnose::Diagnose;

    fn opts() -> UpdateOptions {
        UpdateOptions {
            dry_run: false,
            new_mode: 0o644,
        }
    }

    #[test]
    fn update_writes_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, b"a\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let edit = update::<FileError>(&path, opts(), |old| {
            let mut v = old.unwrap().to_vec();
            v.extend_from_slice(b"b\n");
            Ok(v)
        })
        .unwrap();
        assert!(edit.changed());
        assert_eq!(edit.method, Some(WriteMethod::Rename));
        assert_eq!(fs::read(&path).unwrap(), b"a\nb\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(edit.diff().contains("+b"));
    }

    #[test]
    fn unchanged_content_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"same").unwrap();
        let inode = fs::metadata(&path).unwrap().ino();
        let edit = update::<FileError>(&path, opts(), |old| Ok(old.unwrap().to_vec())).unwrap();
        assert!(!edit.changed());
        assert_eq!(edit.method, None);
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
    }

    #[test]
    fn dry_run_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"old\n").unwrap();
        let edit = update::<FileError>(
            &path,
            UpdateOptions {
                dry_run: true,
                ..opts()
            },
            |_| Ok(b"new\n".to_vec()),
        )
        .unwrap();
        assert!(edit.changed());
        assert_eq!(fs::read(&path).unwrap(), b"old\n");
        assert!(edit.diff().contains("-old") && edit.diff().contains("+new"));
    }

    #[test]
    fn symlinks_are_followed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        let link = dir.path().join("link");
        fs::write(&real, b"x\n").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        update::<FileError>(&link, opts(), |_| Ok(b"y\n".to_vec())).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&real).unwrap(), b"y\n");
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = update::<FileError>(dir.path(), opts(), |_| Ok(vec![])).unwrap_err();
        assert!(matches!(err, FileError::IsDirectory { .. }), "{err:?}");
    }

    #[test]
    fn a_device_is_refused_and_never_replaced() {
        // A link to /dev/null stands for `--hosts-file /dev/null` run as root:
        // renaming a temp file over it would replace the device.
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("hosts");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let err = update::<FileError>(&link, opts(), |_| Ok(b"x\n".to_vec())).unwrap_err();
        assert!(
            matches!(
                err,
                FileError::NotRegular {
                    kind: "a character device",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.hint().unwrap().contains("regular file"));
        use std::os::unix::fs::FileTypeExt;
        assert!(
            fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }

    #[test]
    fn a_symlink_loop_and_a_missing_folder_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let err = update::<FileError>(&a, opts(), |_| Ok(vec![])).unwrap_err();
        assert!(matches!(err, FileError::SymlinkLoop { .. }), "{err:?}");
        assert!(matches!(
            open_optional(&a),
            Err(FileError::SymlinkLoop { .. })
        ));
        let missing = dir.path().join("no/such/hosts");
        let err = update::<FileError>(&missing, opts(), |_| Ok(vec![])).unwrap_err();
        assert!(matches!(err, FileError::MissingFolder { .. }), "{err:?}");
        assert!(err.hint().unwrap().contains("mkdir -p"));
    }

    #[test]
    fn a_dangling_symlink_is_not_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("hosts");
        std::os::unix::fs::symlink(dir.path().join("gone"), &link).unwrap();
        assert!(matches!(
            open_optional(&link),
            Err(FileError::DanglingSymlink { .. })
        ));
        let err = update::<FileError>(&link, opts(), |_| Ok(vec![])).unwrap_err();
        assert!(matches!(err, FileError::DanglingSymlink { .. }), "{err:?}");
        assert!(!dir.path().join("gone").exists());
    }

    #[test]
    fn stale_temp_files_are_cleaned_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, b"a\n").unwrap();
        let stale = dir.path().join(".hosts.wott-mqtt.999999.tmp");
        fs::write(&stale, b"half").unwrap();
        update::<FileError>(&path, opts(), |_| Ok(b"b\n".to_vec())).unwrap();
        assert!(!stale.exists());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn new_file_gets_the_requested_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.acl");
        update::<FileError>(&path, opts(), |old| {
            assert!(old.is_none());
            Ok(b"user a\n".to_vec())
        })
        .unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn pieces_copy_old_ranges_and_add_new_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, b"one\ntwo\nthree\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let edit = update_pieces::<FileError>(&path, opts(), |old| {
            assert!(old.is_some());
            Ok(vec![
                Piece::Old(0..4),
                Piece::New(b"2\n".to_vec()),
                Piece::Old(8..14),
                Piece::New(Vec::new()),
            ])
        })
        .unwrap();
        assert!(edit.changed);
        assert_eq!(edit.method, Some(WriteMethod::Rename));
        assert_eq!(fs::read(&path).unwrap(), b"one\n2\nthree\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    fn pieces_that_spell_the_old_file_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, b"abc\n").unwrap();
        let inode = fs::metadata(&path).unwrap().ino();
        let edit = update_pieces::<FileError>(&path, opts(), |_| {
            Ok(vec![Piece::Old(0..2), Piece::Old(2..4), Piece::New(vec![])])
        })
        .unwrap();
        assert!(!edit.changed);
        assert_eq!(edit.method, None);
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
    }

    #[test]
    fn an_edit_that_leaves_a_missing_file_empty_does_not_create_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        for dry_run in [true, false] {
            let options = UpdateOptions { dry_run, ..opts() };
            let edit = update_pieces::<FileError>(&path, options, |old| {
                assert!(old.is_none());
                Ok(vec![Piece::New(Vec::new())])
            })
            .unwrap();
            assert!(!edit.changed);
            assert_eq!(edit.method, None);
            assert!(!path.exists());
        }
    }

    #[test]
    fn pieces_dry_run_gives_a_diff_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, b"a\nb\n").unwrap();
        let edit = update_pieces::<FileError>(
            &path,
            UpdateOptions {
                dry_run: true,
                ..opts()
            },
            |_| Ok(vec![Piece::Old(0..2), Piece::New(b"c\n".to_vec())]),
        )
        .unwrap();
        assert!(edit.changed);
        let diff = edit.diff.unwrap();
        assert!(diff.contains("-b") && diff.contains("+c"), "{diff}");
        assert_eq!(fs::read(&path).unwrap(), b"a\nb\n");
    }

    #[test]
    fn pieces_beyond_the_old_file_fail_and_leave_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, b"short\n").unwrap();
        let err = update_pieces::<FileError>(&path, opts(), |_| Ok(vec![Piece::Old(0..100)]))
            .unwrap_err();
        assert!(err.to_string().contains("changed while"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"short\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
