//! `allow`, `revoke` and `apply` applied to the ACL file on disk: under the
//! edit lock, streaming the file, written atomically (`files::update_pieces`).
//! The `acl` commands and the `setup` wizard call these.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::apply::{self, Applied};
use super::desired::Desired;
use super::edit::{self, Allowed, Revoked};
use super::eval::Refused;
use super::{Access, AclError, NEW_FILE_MODE, NUL_BYTE};
use crate::files::{self, FileError, Piece, PieceEdit, UpdateOptions};
use crate::names::{DeviceId, TopicFilter};

/// An edit of the ACL file and what it did.
#[derive(Debug)]
pub struct FileEdit<T> {
    /// Whether the file changed (or would, with `dry_run`), and the diff of a dry run.
    pub edit: PieceEdit,
    /// The lines involved; its `pieces` have been written and are `None`.
    pub result: T,
}

/// Grants `device` `access` on `filter` in the ACL file at `path`, creating
/// the file if needed. Idempotent.
pub fn allow(
    path: &Path,
    device: &DeviceId,
    filter: &TopicFilter,
    access: Access,
    dry_run: bool,
) -> Result<FileEdit<Allowed>, AclError> {
    edit_file(path, dry_run, |old| {
        let mut allowed = edit::allow_stream(
            lines_of(old),
            device.as_str().as_bytes(),
            filter.as_str().as_bytes(),
            access,
        )
        .map_err(read_error(path))?;
        let pieces = allowed.pieces.take();
        not_past_nul(
            path,
            allowed.refused.as_ref(),
            pieces.is_some(),
            allowed.line,
        )?;
        Ok((allowed, pieces))
    })
}

/// Removes `device`'s grant on `filter`, or all its grants when `filter` is
/// `None`, from the ACL file at `path`. Idempotent; `deny` lines are kept.
pub fn revoke(
    path: &Path,
    device: &DeviceId,
    filter: Option<&TopicFilter>,
    dry_run: bool,
) -> Result<FileEdit<Revoked>, AclError> {
    edit_file(path, dry_run, |old| {
        if old.is_none() {
            return Err(AclError::NotFound {
                path: path.to_path_buf(),
            });
        }
        let mut revoked = edit::revoke_stream(
            lines_of(old),
            device.as_str().as_bytes(),
            filter.map(|f| f.as_str().as_bytes()),
        )
        .map_err(read_error(path))?;
        let pieces = revoked.pieces.take();
        Ok((revoked, pieces))
    })
}

/// Makes the grants of each device in `desired` exactly the listed ones in
/// the ACL file at `path`, creating the file if needed; with `exclusive`,
/// every other device's grants go too. One lock, one pass, one write.
/// Idempotent.
pub fn apply(
    path: &Path,
    desired: &Desired,
    exclusive: bool,
    dry_run: bool,
) -> Result<FileEdit<Applied>, AclError> {
    edit_file(path, dry_run, |old| {
        let mut applied =
            apply::apply_stream(lines_of(old), desired, exclusive).map_err(read_error(path))?;
        let pieces = applied.pieces.take();
        not_past_nul(
            path,
            applied.refused.as_ref(),
            pieces.is_some(),
            applied.last_grant_line,
        )?;
        Ok((applied, pieces))
    })
}

/// Runs `edit` on the file under the lock and writes the pieces it returns
/// (`None`: nothing changes).
fn edit_file<T>(
    path: &Path,
    dry_run: bool,
    edit: impl FnOnce(Option<&File>) -> Result<(T, Option<Vec<Piece>>), AclError>,
) -> Result<FileEdit<T>, AclError> {
    let mut result = None;
    let edit = files::update_pieces(
        path,
        options(dry_run),
        |old| -> Result<Vec<Piece>, AclError> {
            let (value, pieces) = edit(old)?;
            result = Some(value);
            Ok(pieces.unwrap_or_else(|| unchanged(old)))
        },
    )?;
    let result =
        result.ok_or_else(|| read_error(path)(io::Error::other("the edit did not run")))?;
    Ok(FileEdit { edit, result })
}

/// Past a NUL byte Mosquitto reads nothing: a grant there would be a silent
/// no-op, so an edit that writes and needs a grant on `line` (1-based, new
/// file) past it is refused.
fn not_past_nul(
    path: &Path,
    refused: Option<&Refused>,
    writes: bool,
    line: usize,
) -> Result<(), AclError> {
    match refused.filter(|r| r.code == NUL_BYTE) {
        Some(refused) if writes && line > refused.line + 1 => Err(AclError::NulByte {
            path: path.to_path_buf(),
            line: refused.line + 1,
        }),
        _ => Ok(()),
    }
}

fn options(dry_run: bool) -> UpdateOptions {
    UpdateOptions {
        dry_run,
        new_mode: NEW_FILE_MODE,
    }
}

/// The old file as `files::update_pieces` hands it over, for streaming
/// (`None`: it does not exist, which reads as an empty file).
fn lines_of(old: Option<&File>) -> Box<dyn Read + '_> {
    match old {
        Some(file) => Box::new(file),
        None => Box::new(io::empty()),
    }
}

/// The pieces that spell the old file unchanged.
fn unchanged(old: Option<&File>) -> Vec<Piece> {
    let len = old.and_then(|f| f.metadata().ok()).map_or(0, |m| m.len());
    vec![Piece::Old(0..len)]
}

fn read_error(path: &Path) -> impl Fn(io::Error) -> AclError + '_ {
    move |source| {
        AclError::File(FileError::Read {
            path: path.to_path_buf(),
            source,
        })
    }
}
