//! Read-modify-write of a whole file ([`update`]) or of a file too large to
//! hold twice ([`update_pieces`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use super::FileError;
use super::content::{Content, Piece, materialize};
use super::lock::{WriteMethod, lock};

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
    // An edit that leaves a missing file empty does not create it.
    let changed = match old_len {
        Some(0) | None => !pieces.is_empty(),
        Some(len) => pieces != [Piece::Old(0..len)],
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
