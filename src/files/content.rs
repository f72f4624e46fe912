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
    /// Writes the content. Long ranges of the old file are copied inside the
    /// kernel (`io::copy` between files uses copy_file_range); short ones,
    /// as an edit of thousands of lines makes, go through a read-ahead
    /// window, so that the syscalls follow the size of the file, not the
    /// number of pieces.
    pub(super) fn write_to(&self, out: &mut File) -> io::Result<()> {
        match self {
            Content::Bytes(bytes) => out.write_all(bytes),
            Content::Pieces { old, pieces } => write_pieces(*old, pieces, out),
        }
    }

    pub(super) fn to_bytes(&self) -> io::Result<Cow<'_, [u8]>> {
        match self {
            Content::Bytes(bytes) => Ok(Cow::Borrowed(bytes)),
            Content::Pieces { old, pieces } => materialize(*old, pieces).map(Cow::Owned),
        }
    }
}

/// Old ranges shorter than this are read through the window; the output is
/// written in about this much at a time.
const WINDOW: usize = 256 * 1024;

fn write_pieces(old: Option<&File>, pieces: &[Piece], out: &mut File) -> io::Result<()> {
    let mut buffer: Vec<u8> = Vec::with_capacity(WINDOW);
    let mut window = Window::default();
    for piece in pieces {
        match piece {
            Piece::New(bytes) if bytes.len() >= WINDOW => {
                out.write_all(&buffer)?;
                buffer.clear();
                out.write_all(bytes)?;
            }
            Piece::New(bytes) => buffer.extend_from_slice(bytes),
            Piece::Old(range) => {
                let old = old.ok_or_else(no_old_file)?;
                if range.end - range.start >= WINDOW as u64 {
                    out.write_all(&buffer)?;
                    buffer.clear();
                    copy_in_kernel(old, range, out)?;
                } else {
                    buffer.extend_from_slice(window.get(old, range)?);
                }
            }
        }
        if buffer.len() >= WINDOW {
            out.write_all(&buffer)?;
            buffer.clear();
        }
    }
    out.write_all(&buffer)
}

fn copy_in_kernel(mut old: &File, range: &Range<u64>, out: &mut File) -> io::Result<()> {
    old.seek(SeekFrom::Start(range.start))?;
    let wanted = range.end - range.start;
    if io::copy(&mut old.take(wanted), out)? != wanted {
        return Err(changed_underneath());
    }
    Ok(())
}

/// Bytes of the old file read ahead, from `start`.
#[derive(Debug, Default)]
struct Window {
    start: u64,
    bytes: Vec<u8>,
}

impl Window {
    /// `range` of the old file, read ahead when the window does not hold it.
    fn get(&mut self, old: &File, range: &Range<u64>) -> io::Result<&[u8]> {
        use std::os::unix::fs::FileExt;
        let len = (range.end - range.start) as usize;
        let end = self.start + self.bytes.len() as u64;
        if range.start < self.start || range.end > end {
            self.bytes.resize(len.max(WINDOW), 0);
            let mut filled = 0;
            while filled < self.bytes.len() {
                match old.read_at(&mut self.bytes[filled..], range.start + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.bytes.truncate(filled);
            self.start = range.start;
            if filled < len {
                return Err(changed_underneath());
            }
        }
        let from = (range.start - self.start) as usize;
        Ok(&self.bytes[from..from + len])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_write_the_same_bytes_through_the_window_and_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let old_bytes: Vec<u8> = (0..(3 * WINDOW + 17)).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("old"), &old_bytes).unwrap();
        let old = File::open(dir.path().join("old")).unwrap();
        let len = old_bytes.len() as u64;
        let w = WINDOW as u64;
        let mut pieces = vec![Piece::New(b"head".to_vec())];
        // Many short ranges, some out of order, then one long one.
        let mut starts: Vec<u64> = (0..w + 300).step_by(97).collect();
        starts.swap(3, 40);
        for start in starts {
            pieces.push(Piece::Old(start..start + 40));
            pieces.push(Piece::New(vec![b'|']));
        }
        pieces.push(Piece::Old(10..w * 2 + 5));
        pieces.push(Piece::Old(len - 3..len));
        let expected = materialize(Some(&old), &pieces).unwrap();
        let mut out = tempfile::tempfile().unwrap();
        Content::Pieces {
            old: Some(&old),
            pieces: &pieces,
        }
        .write_to(&mut out)
        .unwrap();
        out.seek(SeekFrom::Start(0)).unwrap();
        let mut written = Vec::new();
        out.read_to_end(&mut written).unwrap();
        assert_eq!(written, expected);
        // A range past the end: the file changed while it was edited.
        let mut out = tempfile::tempfile().unwrap();
        let past = [Piece::Old(len - 3..len + 1)];
        let err = Content::Pieces {
            old: Some(&old),
            pieces: &past,
        }
        .write_to(&mut out)
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("changed while it was being edited")
        );
    }
}
