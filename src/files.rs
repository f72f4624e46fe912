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

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

impl FileError {
    /// A failed read, with the cases that have their own message picked out.
    fn read(path: &Path, source: io::Error) -> FileError {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::IsADirectory => FileError::IsDirectory { path },
            _ if source.raw_os_error() == Some(ELOOP) => FileError::SymlinkLoop { path },
            _ => FileError::Read { path, source },
        }
    }

    fn source_io(&self) -> Option<&io::Error> {
        match self {
            FileError::Read { source, .. }
            | FileError::Lock { source, .. }
            | FileError::Write { source, .. } => Some(source),
            FileError::IsDirectory { .. }
            | FileError::DanglingSymlink { .. }
            | FileError::SymlinkLoop { .. }
            | FileError::NotRegular { .. }
            | FileError::MissingFolder { .. } => None,
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
            | FileError::Write { path, .. } => path,
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
                    "the disk holding {path} is full; free some space and run the command again (the file was not changed)"
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
            _ => return None,
        })
    }

    fn exit_code(&self) -> ExitCode {
        ExitCode::Failure
    }
}

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
    target: PathBuf,
    /// What the user named, for messages.
    shown: PathBuf,
    _dir: File,
}

/// Takes the edit lock for `path`, waiting for other wott-mqtt processes.
/// Only a regular file (or a path where one can be created) can be edited:
/// a device, FIFO or socket is refused before anything opens it.
pub fn lock(path: &Path) -> Result<Locked, FileError> {
    let target = resolve(path)?;
    let dir = parent_dir(&target);
    let dir_file = File::open(dir).map_err(|source| FileError::Lock {
        path: path.to_path_buf(),
        source,
    })?;
    dir_file.lock().map_err(|source| FileError::Lock {
        path: path.to_path_buf(),
        source,
    })?;
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

    fn write_content(
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

    fn write_via_rename(
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
                match e.raw_os_error() {
                    // EBUSY: the file is a mount point (container /etc/hosts).
                    // EPERM from fchown: we may not give the copy the original owner.
                    Some(EBUSY) | Some(EPERM) => Err(Fallback::InPlace),
                    _ => Err(Fallback::Fail(self.write_error(e))),
                }
            }
        }
    }

    fn write_in_place(&self, bytes: &[u8]) -> Result<(), FileError> {
        let result = (|| {
            let mut file = OpenOptions::new().write(true).open(&self.target)?;
            file.write_all(bytes)?;
            file.set_len(bytes.len() as u64)?;
            file.sync_all()
        })();
        result.map_err(|e| self.write_error(e))
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

    fn write_error(&self, source: io::Error) -> FileError {
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

const EBUSY: i32 = 16;
const EPERM: i32 = 1;
const ELOOP: i32 = 40;

enum Fallback {
    InPlace,
    Fail(FileError),
}

/// The result of a read-modify-write.
#[derive(Debug, Clone)]
pub struct Edit {
    pub path: PathBuf,
    pub before: Option<Vec<u8>>,
    pub after: Vec<u8>,
    /// `None` when nothing was written (unchanged, or a dry run).
    pub method: Option<WriteMethod>,
}

impl Edit {
    pub fn changed(&self) -> bool {
        self.before.as_deref() != Some(self.after.as_slice())
    }

    /// A unified diff of the change, empty when nothing changes.
    pub fn diff(&self) -> String {
        unified_diff(
            &self.path.display().to_string(),
            self.before.as_deref().unwrap_or_default(),
            &self.after,
        )
    }
}

/// Options for [`update`].
#[derive(Debug, Clone, Copy)]
pub struct UpdateOptions {
    /// Compute the new content and the diff, write nothing.
    pub dry_run: bool,
    /// Mode of the file when it is created.
    pub new_mode: u32,
}

/// Reads `path` under the lock, lets `edit` compute the new bytes from the
/// current ones (`None`: the file does not exist), and writes them back
/// atomically when they differ.
pub fn update<E: From<FileError>>(
    path: &Path,
    options: UpdateOptions,
    edit: impl FnOnce(Option<&[u8]>) -> Result<Vec<u8>, E>,
) -> Result<Edit, E> {
    let locked = lock(path)?;
    let before = locked.read()?;
    let after = edit(before.as_deref())?;
    let mut result = Edit {
        path: path.to_path_buf(),
        before,
        after,
        method: None,
    };
    if result.changed() && !options.dry_run {
        result.method = Some(locked.write(&result.after, options.new_mode)?);
    }
    Ok(result)
}

/// Part of a file's new content: a byte range of the old file, or new bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Old(Range<u64>),
    New(Vec<u8>),
}

/// New content as written by [`Locked::write`] or [`update_pieces`].
enum Content<'a> {
    Bytes(&'a [u8]),
    Pieces {
        old: Option<&'a File>,
        pieces: &'a [Piece],
    },
}

impl Content<'_> {
    /// Writes the content; ranges of the old file are copied inside the
    /// kernel (`io::copy` between files uses copy_file_range).
    fn write_to(&self, out: &mut File) -> io::Result<()> {
        match self {
            Content::Bytes(bytes) => out.write_all(bytes),
            Content::Pieces { old, pieces } => {
                for piece in *pieces {
                    match piece {
                        Piece::New(bytes) => out.write_all(bytes)?,
                        Piece::Old(range) => {
                            let mut old = old_file(*old)?;
                            old.seek(SeekFrom::Start(range.start))?;
                            let wanted = range.end - range.start;
                            let copied = io::copy(&mut old.take(wanted), out)?;
                            if copied != wanted {
                                return Err(changed_underneath());
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn to_bytes(&self) -> io::Result<Cow<'_, [u8]>> {
        match self {
            Content::Bytes(bytes) => Ok(Cow::Borrowed(bytes)),
            Content::Pieces { old, pieces } => materialize(*old, pieces).map(Cow::Owned),
        }
    }
}

fn old_file(old: Option<&File>) -> io::Result<&File> {
    old.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no old file to copy from"))
}

fn changed_underneath() -> io::Error {
    io::Error::other("the file changed while it was being edited; run the command again")
}

/// The pieces as one buffer.
fn materialize(old: Option<&File>, pieces: &[Piece]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::New(bytes) => out.extend_from_slice(bytes),
            Piece::Old(range) => {
                let mut old = old_file(old)?;
                old.seek(SeekFrom::Start(range.start))?;
                let wanted = range.end - range.start;
                if old.take(wanted).read_to_end(&mut out)? as u64 != wanted {
                    return Err(changed_underneath());
                }
            }
        }
    }
    Ok(out)
}

/// The result of [`update_pieces`].
#[derive(Debug, Clone)]
pub struct PieceEdit {
    pub path: PathBuf,
    pub changed: bool,
    /// `None` when nothing was written (unchanged, or a dry run).
    pub method: Option<WriteMethod>,
    /// The unified diff, for dry runs only: it needs both versions in memory.
    pub diff: Option<String>,
}

/// [`update`] for files that may be large (an ad-block /etc/hosts has
/// 200,000 lines): `edit` reads the old file itself, as a stream, and
/// describes the new content as [`Piece`]s. Unchanged ranges are copied
/// inside the kernel, so a one-line edit costs about what `cp` does and
/// memory stays flat. Same lock, temp file, fsync, rename, mode and owner,
/// and in-place fallback as [`update`].
pub fn update_pieces<E: From<FileError>>(
    path: &Path,
    options: UpdateOptions,
    edit: impl FnOnce(Option<&File>) -> Result<Vec<Piece>, E>,
) -> Result<PieceEdit, E> {
    let locked = lock(path)?;
    let old = locked.open()?;
    let old_len = match &old {
        Some(file) => Some(
            file.metadata()
                .map_err(|source| FileError::Read {
                    path: path.to_path_buf(),
                    source,
                })?
                .len(),
        ),
        None => None,
    };
    let pieces = normalize(edit(old.as_ref())?);
    let changed = match old_len {
        Some(0) => !pieces.is_empty(),
        Some(len) => pieces != [Piece::Old(0..len)],
        None => true,
    };
    let mut result = PieceEdit {
        path: path.to_path_buf(),
        changed,
        method: None,
        diff: None,
    };
    let read_error = |source| FileError::Read {
        path: path.to_path_buf(),
        source,
    };
    if options.dry_run {
        let before = match old_len {
            Some(len) => materialize(old.as_ref(), &[Piece::Old(0..len)]).map_err(read_error)?,
            None => Vec::new(),
        };
        let after = materialize(old.as_ref(), &pieces).map_err(read_error)?;
        result.diff = Some(unified_diff(&path.display().to_string(), &before, &after));
    } else if changed {
        let content = Content::Pieces {
            old: old.as_ref(),
            pieces: &pieces,
        };
        result.method = Some(locked.write_content(&content, options.new_mode)?);
    }
    Ok(result)
}

/// Drops empty pieces and joins adjacent ones, so that "unchanged" has one
/// spelling: a single `Old(0..len)`.
fn normalize(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        match (out.last_mut(), piece) {
            (_, Piece::Old(r)) if r.is_empty() => {}
            (_, Piece::New(b)) if b.is_empty() => {}
            (Some(Piece::Old(last)), Piece::Old(r)) if last.end == r.start => last.end = r.end,
            (Some(Piece::New(last)), Piece::New(b)) => last.extend_from_slice(&b),
            (_, piece) => out.push(piece),
        }
    }
    out
}

/// A unified diff between two versions of a file, labelled with its path.
pub fn unified_diff(label: &str, before: &[u8], after: &[u8]) -> String {
    if before == after {
        return String::new();
    }
    let before = String::from_utf8_lossy(before);
    let after = String::from_utf8_lossy(after);
    similar::TextDiff::from_lines(before.as_ref(), after.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(label, label)
        .to_string()
}

/// Makes `path` hold exactly `bytes` with exactly this mode and owner,
/// atomically, under the lock: for copies handed to another user, such as the
/// broker's staged key (uid 1883, 0600). Unlike [`update`], the old file's
/// mode and owner are not kept. Returns whether anything changed.
pub fn replace_owned(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: (u32, u32),
) -> Result<bool, FileError> {
    let locked = lock(path)?;
    let same_content = locked.read()?.as_deref() == Some(bytes);
    let same_attributes = fs::symlink_metadata(&locked.target).is_ok_and(|m| {
        m.file_type().is_file()
            && m.permissions().mode() & 0o7777 == mode
            && (m.uid(), m.gid()) == owner
    });
    if same_content && same_attributes {
        return Ok(false);
    }
    match locked.write_via_rename(&Content::Bytes(bytes), mode, Some(owner)) {
        Ok(()) => Ok(true),
        Err(Fallback::Fail(e)) => Err(e),
        Err(Fallback::InPlace) => {
            Err(locked.write_error(io::Error::from(io::ErrorKind::PermissionDenied)))
        }
    }
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
                _ if source.raw_os_error() == Some(ELOOP) => FileError::SymlinkLoop {
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
    use super::*;

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
}
