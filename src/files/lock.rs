//! The edit lock and the atomic write under it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::content::Content;
use super::{FileError, open_optional, parent_dir, read_optional, resolve, sync_dir};

/// How the new content reached the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMethod {
    /// Temp file, fsync, rename: atomic.
    Rename,
    /// Overwritten in place under the lock (bind-mounted file, or an unwritable directory).
    InPlace,
}

/// An exclusive hold on one file for a read-modify-write.
#[derive(Debug)]
pub struct Locked {
    /// The file itself, symbolic links resolved, so the link stays a link.
    pub(super) target: PathBuf,
    /// What the user named, for messages.
    shown: PathBuf,
    _dir: File,
}

/// Takes the edit lock for `path`, waiting for other wott-mqtt processes.
/// Only a regular file (or a path where one can be created) can be edited:
/// a device, FIFO or socket is refused before anything opens it.
pub fn lock(path: &Path) -> Result<Locked, FileError> {
    lock_within(path, lock_timeout())
}

/// How long an edit waits for the lock: `WOTT_MQTT_LOCK_TIMEOUT` seconds,
/// else five minutes. Any user who may open the folder can hold its lock, so
/// the wait must end.
fn lock_timeout() -> Duration {
    std::env::var("WOTT_MQTT_LOCK_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(Duration::from_secs(300), Duration::from_secs_f64)
}

/// Who hears that an edit waits for its lock; set once by the binary (a
/// line on stderr, unless `-q`).
static WAITING: OnceLock<Notice> = OnceLock::new();

/// A line for the user.
type Notice = Box<dyn Fn(&str) + Send + Sync>;

/// Makes [`lock`] say `notice` lines while it waits.
pub fn on_waiting(notice: impl Fn(&str) + Send + Sync + 'static) {
    let _ = WAITING.set(Box::new(notice));
}

/// Takes the lock on `dir`, waiting at most `timeout`; says so after a
/// second. The wait is the kernel's (a blocking `flock` on a second handle
/// of the same open folder, in a thread), so waiters queue as before; the
/// deadline only ends the wait.
fn wait_for_lock_within(
    dir_file: &File,
    dir: &Path,
    path: &Path,
    timeout: Duration,
) -> Result<(), FileError> {
    let lock_error = |source| FileError::Lock {
        path: path.to_path_buf(),
        source,
    };
    match dir_file.try_lock() {
        Ok(()) => return Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(source)) => return Err(lock_error(source)),
    }
    // The same open folder: a lock taken through it is ours.
    let handle = dir_file.try_clone().map_err(lock_error)?;
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(handle.lock());
    });
    let started = Instant::now();
    let first = Duration::from_secs(1).min(timeout);
    let result = match waited.recv_timeout(first) {
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            if let Some(notice) = WAITING.get() {
                notice(&format!(
                    "waiting for the edit lock on {} (another process holds it; giving up after {:.0} s)",
                    dir.display(),
                    timeout.as_secs_f64()
                ));
            }
            waited.recv_timeout(timeout.saturating_sub(started.elapsed()))
        }
        other => other,
    };
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(lock_error(source)),
        Err(_) => Err(FileError::LockTimeout {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            seconds: timeout.as_secs_f64(),
        }),
    }
}

/// [`lock`] with its own deadline.
fn lock_within(path: &Path, timeout: Duration) -> Result<Locked, FileError> {
    let target = resolve(path)?;
    let dir = parent_dir(&target);
    let dir_file = File::open(dir).map_err(|source| FileError::Lock {
        path: path.to_path_buf(),
        source,
    })?;
    wait_for_lock_within(&dir_file, dir, path, timeout)?;
    let locked = Locked {
        target,
        shown: path.to_path_buf(),
        _dir: dir_file,
    };
    locked.remove_stale_temps();
    Ok(locked)
}

impl Locked {
    /// The file's current bytes, or `None` when it does not exist yet.
    pub fn read(&self) -> Result<Option<Vec<u8>>, FileError> {
        read_optional(&self.target).map_err(|e| self.rename_path(e))
    }

    /// Replaces the file's content atomically, keeping its mode and owner.
    /// A new file gets `new_mode`.
    pub fn write(&self, bytes: &[u8], new_mode: u32) -> Result<WriteMethod, FileError> {
        self.write_content(&Content::Bytes(bytes), new_mode)
    }

    /// The file opened for reading, or `None` when it does not exist yet.
    pub fn open(&self) -> Result<Option<File>, FileError> {
        open_optional(&self.target).map_err(|e| self.rename_path(e))
    }

    pub(super) fn write_content(
        &self,
        content: &Content<'_>,
        new_mode: u32,
    ) -> Result<WriteMethod, FileError> {
        let existing = match fs::metadata(&self.target) {
            Ok(meta) if meta.is_dir() => {
                return Err(FileError::IsDirectory {
                    path: self.shown.clone(),
                });
            }
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(self.write_error(source)),
        };
        let mode = existing
            .as_ref()
            .map_or(new_mode, |m| m.permissions().mode() & 0o7777);
        let owner = existing.as_ref().map(|m| (m.uid(), m.gid()));

        match self.write_via_rename(content, mode, owner) {
            Ok(()) => Ok(WriteMethod::Rename),
            Err(Fallback::InPlace) if existing.is_some() => {
                // The new content may be made of the old file's bytes: read
                // them all before overwriting it.
                let bytes = content.to_bytes().map_err(|e| self.write_error(e))?;
                self.write_in_place(&bytes)?;
                Ok(WriteMethod::InPlace)
            }
            Err(Fallback::InPlace) => {
                Err(self.write_error(io::Error::from(io::ErrorKind::PermissionDenied)))
            }
            Err(Fallback::Fail(e)) => Err(e),
        }
    }

    pub(super) fn write_via_rename(
        &self,
        content: &Content<'_>,
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<(), Fallback> {
        let temp = self.temp_path();
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
        {
            Ok(file) => file,
            // The directory is not ours to create files in, but the file may be writable.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(Fallback::InPlace),
            Err(e) => return Err(Fallback::Fail(self.write_error(e))),
        };
        let result = (|| {
            if let Some((uid, gid)) = owner {
                let meta = file.metadata()?;
                if (meta.uid(), meta.gid()) != (uid, gid) {
                    std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
                }
            }
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            if owner.is_some() {
                copy_xattrs(&self.target, &file)?;
            }
            content.write_to(&mut file)?;
            file.sync_all()?;
            fs::rename(&temp, &self.target)
        })();
        match result {
            Ok(()) => {
                sync_dir(parent_dir(&self.target));
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(&temp);
                match Errno::from_io_error(&e) {
                    // EBUSY: the file is a mount point (container /etc/hosts).
                    // EPERM from fchown or fsetxattr: we may not give the copy
                    // the original's owner or attributes; in place keeps them.
                    Some(Errno::BUSY | Errno::PERM) => Err(Fallback::InPlace),
                    _ => Err(Fallback::Fail(self.write_error(e))),
                }
            }
        }
    }

    /// Overwrites the file where it is (its directory entry cannot be
    /// replaced). The space for the new content is reserved before a byte
    /// changes, so a full disk stops it with the file as it was; a write
    /// that fails anyway puts the old content back.
    fn write_in_place(&self, bytes: &[u8]) -> Result<(), FileError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.target)
            .map_err(|e| self.write_error(e))?;
        let mut old = Vec::new();
        file.read_to_end(&mut old)
            .map_err(|e| self.write_error(e))?;
        if bytes.len() > old.len() {
            match rustix::fs::fallocate(
                &file,
                rustix::fs::FallocateFlags::KEEP_SIZE,
                0,
                bytes.len() as u64,
            ) {
                Ok(()) => {}
                // A filesystem that cannot reserve: the restore below is all there is.
                Err(Errno::OPNOTSUPP) => {}
                Err(e) => return Err(self.write_error(e.into())),
            }
        }
        let overwrite = |file: &mut File, content: &[u8]| -> io::Result<()> {
            file.seek(SeekFrom::Start(0))?;
            file.write_all(content)?;
            file.set_len(content.len() as u64)?;
            file.sync_all()
        };
        match overwrite(&mut file, bytes) {
            Ok(()) => Ok(()),
            Err(source) => Err(FileError::InPlace {
                path: self.shown.clone(),
                source,
                restored: overwrite(&mut file, &old).is_ok(),
            }),
        }
    }

    fn temp_prefix(&self) -> String {
        let name = self
            .target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!(".{name}.wott-mqtt.")
    }

    fn temp_path(&self) -> PathBuf {
        let name = format!("{}{}.tmp", self.temp_prefix(), std::process::id());
        parent_dir(&self.target).join(name)
    }

    /// Temp files left by a killed run. We hold the lock, so no live run owns one.
    fn remove_stale_temps(&self) {
        let prefix = self.temp_prefix();
        let Ok(entries) = fs::read_dir(parent_dir(&self.target)) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    pub(super) fn write_error(&self, source: io::Error) -> FileError {
        FileError::Write {
            path: self.shown.clone(),
            source,
        }
    }

    fn rename_path(&self, error: FileError) -> FileError {
        match error {
            FileError::Read { source, .. } => FileError::Read {
                path: self.shown.clone(),
                source,
            },
            FileError::IsDirectory { .. } => FileError::IsDirectory {
                path: self.shown.clone(),
            },
            FileError::NotRegular { kind, .. } => FileError::NotRegular {
                path: self.shown.clone(),
                kind,
            },
            other => other,
        }
    }
}

/// Gives `to` every extended attribute of the file at `from`: an SELinux
/// label, a POSIX ACL, `user.*` attributes. A new file replacing the old
/// one by rename would lose them otherwise.
fn copy_xattrs(from: &Path, to: &File) -> io::Result<()> {
    let size = match rustix::fs::listxattr_query(from) {
        Ok(size) => size,
        Err(Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if size == 0 {
        return Ok(());
    }
    let mut names = vec![0u8; size];
    let len = rustix::fs::listxattr(from, &mut names[..])?;
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
        let size = rustix::fs::getxattr_query(from, name.as_c_str())?;
        let mut value = vec![0u8; size];
        let len = rustix::fs::getxattr(from, name.as_c_str(), &mut value[..])?;
        rustix::fs::fsetxattr(
            to,
            name.as_c_str(),
            &value[..len],
            rustix::fs::XattrFlags::empty(),
        )?;
    }
    Ok(())
}

pub(super) enum Fallback {
    InPlace,
    Fail(FileError),
}
