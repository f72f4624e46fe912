//! New content as the edits describe it: bytes, or [`Piece`]s of the old
//! file and new bytes, and how either reaches a file or a buffer.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;

/// Part of a file's new content: a byte range of the old file, or new bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Old(Range<u64>),
    New(Vec<u8>),
}

/// New content as written by [`Locked::write`] or [`update_pieces`].
pub(super) enum Content<'a> {
    Bytes(&'a [u8]),
    Pieces {
        old: Option<&'a File>,
        pieces: &'a [Piece],
    },
}

impl Content<'_> {
    /// Writes the content; ranges of the old file are copied inside the
    /// kernel (`io::copy` between files uses copy_file_range).
    pub(super) fn write_to(&self, out: &mut File) -> io::Result<()> {
        match self {
            Content::Bytes(bytes) => out.write_all(bytes),
            Content::Pieces { old, pieces } => {
                for piece in *pieces {
                    match piece {
                        Piece::New(bytes) => out.write_all(bytes)?,
                        Piece::Old(range) => {
                            let mut old = old.ok_or_else(no_old_file)?;
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

    pub(super) fn to_bytes(&self) -> io::Result<Cow<'_, [u8]>> {
        match self {
            Content::Bytes(bytes) => Ok(Cow::Borrowed(bytes)),
            Content::Pieces { old, pieces } => materialize(*old, pieces).map(Cow::Owned),
        }
    }
}

fn no_old_file() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "no old file to copy from")
}

fn changed_underneath() -> io::Error {
    io::Error::other("the file changed while it was being edited; run the command again")
}

/// The pieces as one buffer, the ranges of the old content read from `old`
/// (a file, or `io::Cursor` over bytes in memory).
pub fn materialize<R: Read + Seek>(mut old: Option<R>, pieces: &[Piece]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::New(bytes) => out.extend_from_slice(bytes),
            Piece::Old(range) => {
                let old = old.as_mut().ok_or_else(no_old_file)?;
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
