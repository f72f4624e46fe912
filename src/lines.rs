//! Text files as lines, losslessly: the one engine under the ACL edits and
//! the hosts edits.
//!
//! A file is read as [`Line`]s and never normalised: a line is its text and
//! its ending (`\n`, `\r\n`, or nothing for a last line without one), and
//! the lines put back together are the file's bytes. An edit is a set of
//! byte-range changes ([`Edits`]) that becomes the [`Piece`]s `files`
//! writes: every stretch between two changes is copied from the old file as
//! it is, so a line an edit does not mean to change keeps every byte (tabs,
//! CRLF, trailing spaces, bytes that are not UTF-8).
//!
//! Files can be large (an ad-block /etc/hosts has 200,000 lines), so
//! [`read`] streams them as [`Chunk`]s of whole lines; a caller looking for
//! one word searches a chunk's bytes and splits only the lines it hits.
//!
//! The rules every edit of either file follows:
//!
//! - **Endings.** A line ends at `\n`; a `\r` just before it belongs to the
//!   ending (`\r\n`); any other `\r` is text.
//! - **Style.** A new line ends the way the line it follows ends. After a
//!   last line that has no ending, new lines end like the first line of the
//!   file that has one (`\n` in a file that has none).
//! - **No final newline stays so.** Lines added after a last line without
//!   an ending get none at the very end. When an edit deletes the last lines
//!   of such a file, the line left last gives up its ending too, unless it
//!   is nothing but its ending (a blank line would vanish with it).
//! - **A bare CR at the end** is followed by `\r\n` before new lines: a
//!   `\n` alone would pair with it into one ending, and deleting the new
//!   lines would then take the CR with them.
//!
//! These rules make "add some lines, then delete them again" give back the
//! original bytes, whatever its ends were (property-tested in `acl` and
//! `hosts`, and fuzzed).

use std::io::{self, Read};
use std::ops::Range;

use crate::files::Piece;

/// How much of a file [`read`] hands over at a time.
pub const CHUNK: usize = 128 * 1024;

/// One line of a file, as it is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based.
    pub number: usize,
    /// Where the line starts in the file.
    pub offset: u64,
    /// The line, its ending included.
    bytes: &'a [u8],
    /// Where its ending starts in `bytes`.
    text_len: usize,
    /// What deleting this line may take of the previous line's ending (see
    /// [`Edits::delete_line`]).
    give_back: u8,
}

impl<'a> Line<'a> {
    /// The line without its ending.
    pub fn text(&self) -> &'a [u8] {
        &self.bytes[..self.text_len]
    }

    /// `\n`, `\r\n`, or empty for a last line without one.
    pub fn ending(&self) -> &'a [u8] {
        &self.bytes[self.text_len..]
    }

    /// The line up to its `\n`: the text, and the `\r` of a CRLF ending.
    pub fn content(&self) -> &'a [u8] {
        match self.bytes.last() {
            Some(b'\n') => &self.bytes[..self.bytes.len() - 1],
            _ => self.bytes,
        }
    }

    /// The whole line, ending included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Where the line is in the file, ending included.
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.bytes.len() as u64
    }

    pub fn has_ending(&self) -> bool {
        self.text_len < self.bytes.len()
    }

    /// Where the line is, to delete it later (a `Line` borrows what it was
    /// read from; its span does not).
    pub fn span(&self) -> LineSpan {
        LineSpan {
            start: self.offset,
            end: self.offset + self.bytes.len() as u64,
            give_back: self.give_back,
        }
    }

    /// How the line ends, as new lines after it should.
    pub fn tail(&self) -> Tail {
        Tail {
            ending: ending_kind(self.ending()),
            bare_cr: self.text().ends_with(b"\r"),
        }
    }
}

/// Where a line is in its file, ending included, and what deleting it may
/// take of the previous line's ending (see [`Edits::delete_line`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSpan {
    pub start: u64,
    pub end: u64,
    give_back: u8,
}

impl LineSpan {
    pub fn range(&self) -> Range<u64> {
        self.start..self.end
    }
}

fn ending_kind(ending: &[u8]) -> Option<&'static [u8]> {
    match ending {
        b"\r\n" => Some(b"\r\n"),
        b"\n" => Some(b"\n"),
        _ => None,
    }
}

/// How a line ends, which decides how lines added after it end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    /// `\n` or `\r\n`; `None` for a last line without an ending.
    pub ending: Option<&'static [u8]>,
    /// The text ends with a `\r` that is not part of an ending.
    pub bare_cr: bool,
}

/// The bytes that put `new` lines after a line that ends as `tail` does
/// (`None`: at the start of an empty file), in a file whose style is
/// `style`. See the module's rules.
pub fn added_after(tail: Option<Tail>, style: &[u8], new: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    match tail.map(|t| (t.ending, t.bare_cr)) {
        None => {
            for line in new {
                out.extend_from_slice(line);
                out.extend_from_slice(style);
            }
        }
        Some((Some(ending), _)) => {
            for line in new {
                out.extend_from_slice(line);
                out.extend_from_slice(ending);
            }
        }
        Some((None, bare_cr)) => {
            for line in new {
                out.extend_from_slice(if bare_cr && out.is_empty() {
                    b"\r\n"
                } else {
                    style
                });
                out.extend_from_slice(line);
            }
        }
    }
    out
}

/// The lines of bytes already in memory, as [`read`] would give them.
pub fn split(bytes: &[u8]) -> Lines<'_> {
    Lines {
        bytes,
        pos: 0,
        offset: 0,
        number: 0,
        behind: [None; 3],
    }
}

/// Iterator over the lines of some bytes (see [`split`] and [`Chunk::lines`]).
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Where `bytes` starts in the file.
    offset: u64,
    /// Lines before `pos`.
    number: usize,
    /// The three bytes before `bytes` in the file (`None`: before its start).
    behind: [Option<u8>; 3],
}

impl<'a> Lines<'a> {
    /// The byte `back` (1..=3) positions before `at` in the file, if any.
    fn byte_before(&self, at: usize, back: usize) -> Option<u8> {
        match at.checked_sub(back) {
            Some(i) => Some(self.bytes[i]),
            None => self.behind[3 - (back - at)],
        }
    }

    /// What deleting the line at `at` may take of the previous line's
    /// ending: its length, unless the previous line is nothing but that
    /// ending, or there is none.
    fn give_back(&self, at: usize) -> u8 {
        match (
            self.byte_before(at, 3),
            self.byte_before(at, 2),
            self.byte_before(at, 1),
        ) {
            (_, _, None) => 0,
            (before, Some(b'\r'), Some(b'\n')) => {
                if before.is_none_or(|b| b == b'\n') {
                    0
                } else {
                    2
                }
            }
            (_, before, Some(_)) => u8::from(before.is_some_and(|b| b != b'\n')),
        }
    }

    /// The position the next line starts at.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        let rest = self.bytes.get(self.pos..).filter(|r| !r.is_empty())?;
        let (text_len, len) = match memchr::memchr(b'\n', rest) {
            Some(i) if i > 0 && rest[i - 1] == b'\r' => (i - 1, i + 1),
            Some(i) => (i, i + 1),
            None => (rest.len(), rest.len()),
        };
        self.number += 1;
        let line = Line {
            number: self.number,
            offset: self.offset + self.pos as u64,
            bytes: &rest[..len],
            text_len,
            give_back: self.give_back(self.pos),
        };
        self.pos += len;
        Some(line)
    }
}

/// Whole lines of a file, as [`read`] hands them over.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// Whole lines; only the file's last chunk may end without a `\n`.
    pub bytes: &'a [u8],
    /// Where the chunk starts in the file.
    pub offset: u64,
    /// How many lines come before it.
    pub lines_before: usize,
    behind: [Option<u8>; 3],
}

impl<'a> Chunk<'a> {
    /// Every line of the chunk.
    pub fn lines(&self) -> Lines<'a> {
        self.lines_from(0, self.lines_before)
    }

    /// The lines from `start`, which must be where a line starts and have
    /// `before` lines of the file before it.
    pub fn lines_from(&self, start: usize, before: usize) -> Lines<'a> {
        Lines {
            bytes: self.bytes,
            pos: start,
            offset: self.offset,
            number: before,
            behind: self.behind,
        }
    }
}

/// What an edit needs to know about a file as a whole, from [`read`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Size in bytes.
    pub len: u64,
    pub lines: usize,
    /// The ending of the first line that has one: the file's style.
    pub newline: Option<&'static [u8]>,
    /// How the last line ends; `None` for an empty file.
    pub last: Option<Tail>,
}

impl Summary {
    /// The file's style: how new lines end where nothing else decides.
    pub fn style(&self) -> &'static [u8] {
        self.newline.unwrap_or(b"\n")
    }

    /// Whether the file ends without a newline (and is not empty).
    pub fn lacks_final_newline(&self) -> bool {
        self.last.is_some_and(|t| t.ending.is_none())
    }

    /// The bytes that add `new` lines at the end of the file.
    pub fn appended(&self, new: &[&[u8]]) -> Vec<u8> {
        added_after(self.last, self.style(), new)
    }

    /// The summary of bytes already in memory.
    pub fn of(bytes: &[u8]) -> Summary {
        read(bytes, CHUNK, |_| true).unwrap_or_default()
    }

    fn see(&mut self, chunk: &Chunk<'_>) {
        let bytes = chunk.bytes;
        if self.newline.is_none()
            && let Some(i) = memchr::memchr(b'\n', bytes)
        {
            let cr = match i {
                0 => chunk.behind[2] == Some(b'\r'),
                _ => bytes[i - 1] == b'\r',
            };
            self.newline = Some(if cr { b"\r\n" } else { b"\n" });
        }
        let newlines = memchr::memchr_iter(b'\n', bytes).count();
        self.lines += newlines + usize::from(bytes.last() != Some(&b'\n'));
        self.len += bytes.len() as u64;
        let last_start = match bytes.len().checked_sub(1) {
            Some(end) => memchr::memrchr(b'\n', &bytes[..end]).map_or(0, |i| i + 1),
            None => return,
        };
        if let Some(line) = chunk.lines_from(last_start, 0).next() {
            self.last = Some(line.tail());
        }
    }
}

/// Reads `reader` to its end and shows it to `f` as chunks of whole lines
/// of about `chunk` bytes (a longer line comes whole); `f` returns `false`
/// to stop. Returns the file's [`Summary`] (of what was read, when stopped).
pub fn read(
    mut reader: impl Read,
    chunk: usize,
    mut f: impl FnMut(&Chunk<'_>) -> bool,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    // `buf[..filled]` holds what was read and not shown yet: a partial line.
    let mut buf = vec![0u8; chunk.max(1)];
    let mut filled = 0;
    let mut behind = [None; 3];
    loop {
        if filled == buf.len() {
            // A line longer than the buffer: make room for the rest of it.
            buf.resize(buf.len() * 2, 0);
        }
        let read = loop {
            match reader.read(&mut buf[filled..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        let start = filled;
        filled += read;
        let eof = read == 0;
        // Whole lines only; a partial last line waits for more.
        let end = if eof {
            filled
        } else {
            match memchr::memrchr(b'\n', &buf[start..filled]) {
                Some(i) => start + i + 1,
                None => continue,
            }
        };
        if end > 0 {
            let whole = Chunk {
                bytes: &buf[..end],
                offset: summary.len,
                lines_before: summary.lines,
                behind,
            };
            summary.see(&whole);
            if !f(&whole) {
                return Ok(summary);
            }
            behind = match end {
                1 => [behind[1], behind[2], Some(buf[0])],
                2 => [behind[2], Some(buf[0]), Some(buf[1])],
                _ => [Some(buf[end - 3]), Some(buf[end - 2]), Some(buf[end - 1])],
            };
            buf.copy_within(end..filled, 0);
            filled -= end;
        }
        if eof {
            return Ok(summary);
        }
    }
}

/// Changes at byte offsets of a file, turned into the [`Piece`]s that
/// `files::update_pieces` writes: the stretches in between are copied from
/// the old file untouched.
#[derive(Debug, Default, Clone)]
pub struct Edits {
    changes: Vec<(Range<u64>, Vec<u8>)>,
    /// Lines deleted whole: where each starts, and what it may take of the
    /// ending before it.
    deleted_lines: Vec<(u64, u64)>,
}

impl Edits {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Replaces `range` of the old file with `bytes`.
    pub fn replace(&mut self, range: Range<u64>, bytes: Vec<u8>) {
        self.changes.push((range, bytes));
    }

    pub fn delete(&mut self, range: Range<u64>) {
        self.replace(range, Vec::new());
    }

    pub fn insert(&mut self, at: u64, bytes: Vec<u8>) {
        self.replace(at..at, bytes);
    }

    /// Deletes a whole line, ending included (`Line::span`). Deleting the
    /// same line twice deletes it once. When the lines deleted are the last
    /// of a file without a final newline, the line left last gives up its
    /// ending (see the module's rules).
    pub fn delete_line(&mut self, line: LineSpan) {
        self.deleted_lines
            .push((line.start, u64::from(line.give_back)));
        self.delete(line.range());
    }

    /// Where the run of deletions that reaches `end` starts (`end` when
    /// none reaches it). One sort, so that removing thousands of lines at
    /// the end of a file stays linear.
    fn deleted_run_to(&self, end: u64) -> u64 {
        let mut deletions: Vec<&Range<u64>> = self
            .changes
            .iter()
            .filter(|(r, b)| b.is_empty() && r.start < r.end && r.end <= end)
            .map(|(r, _)| r)
            .collect();
        deletions.sort_by_key(|r| std::cmp::Reverse(r.end));
        let mut start = end;
        for range in deletions {
            if range.end < start {
                break;
            }
            start = start.min(range.start);
        }
        start
    }

    /// From where on the edits leave nothing of a file of `len` bytes: every
    /// old byte from there is deleted, and no new bytes land before the end.
    /// `len` when the last byte stays.
    pub fn deleted_tail(&self, len: u64) -> u64 {
        let kept = self
            .changes
            .iter()
            .filter(|(r, b)| !b.is_empty() && r.start < len)
            .map(|(r, _)| r.end + 1)
            .max()
            .unwrap_or(0);
        self.deleted_run_to(len).max(kept.min(len))
    }

    /// A file that does not end with a newline keeps having none: when the
    /// edits delete its last lines, the line left last loses its ending,
    /// unless new bytes end the file or that line is nothing but its ending.
    fn keep_no_final_newline(&mut self, old_len: u64) {
        // The start of the run of deletions that reaches the end of the file.
        let start = self.deleted_run_to(old_len);
        // New bytes at or after it end the new file as they are.
        if start == old_len
            || start == 0
            || self
                .changes
                .iter()
                .any(|(r, b)| !b.is_empty() && r.end >= start)
        {
            return;
        }
        let Some(&(_, give_back)) = self.deleted_lines.iter().find(|(at, _)| *at == start) else {
            return;
        };
        let ending = start - give_back..start;
        if give_back == 0
            || self
                .changes
                .iter()
                .any(|(r, _)| r.start < ending.end && r.end > ending.start)
        {
            return;
        }
        self.delete(ending);
    }

    /// The new file as pieces of the old one (summarised by `old`) and new
    /// bytes, the module's rules applied. Overlapping deletions count once.
    pub fn into_pieces(mut self, old: &Summary) -> Vec<Piece> {
        if old.lacks_final_newline() {
            self.keep_no_final_newline(old.len);
        }
        self.changes.sort_by_key(|(r, _)| (r.start, r.end));
        self.changes.dedup();
        let mut pieces = Vec::with_capacity(self.changes.len() * 2 + 1);
        let mut at = 0;
        for (range, bytes) in self.changes {
            if range.start > at {
                pieces.push(Piece::Old(at..range.start));
            }
            if !bytes.is_empty() {
                pieces.push(Piece::New(bytes));
            }
            at = at.max(range.end);
        }
        if at < old.len {
            pieces.push(Piece::Old(at..old.len));
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::materialize;

    /// Number, offset, text, ending and give-back of each line.
    type Parts<'a> = Vec<(usize, u64, &'a [u8], &'a [u8], u8)>;

    fn parts(bytes: &[u8]) -> Parts<'_> {
        split(bytes)
            .map(|l| (l.number, l.offset, l.text(), l.ending(), l.give_back))
            .collect()
    }

    fn edit(old: &[u8], f: impl FnOnce(&[Line<'_>], &mut Edits)) -> Vec<u8> {
        let lines: Vec<Line<'_>> = split(old).collect();
        let mut edits = Edits::default();
        f(&lines, &mut edits);
        let pieces = edits.into_pieces(&Summary::of(old));
        materialize(Some(std::io::Cursor::new(old)), &pieces).unwrap()
    }

    #[test]
    fn lines_keep_their_endings() {
        assert_eq!(
            parts(b"a\r\n\tb\n\nc\r"),
            [
                (1, 0, &b"a"[..], &b"\r\n"[..], 0),
                (2, 3, b"\tb", b"\n", 2),
                (3, 6, b"", b"\n", 1),
                (4, 7, b"c\r", b"", 0),
            ]
        );
        let line = split(b"x\r\n").next().unwrap();
        assert_eq!(line.content(), b"x\r");
        assert_eq!(line.range(), 0..3);
    }

    #[test]
    fn chunks_hold_whole_lines_and_agree_with_split() {
        let text = b"one\r\n\r\n\nfour\nfive\r";
        let whole: Vec<_> = parts(text);
        for size in 1..8 {
            let mut seen = Vec::new();
            let summary = read(&text[..], size, |chunk| {
                assert!(
                    chunk.bytes.ends_with(b"\n")
                        || chunk.offset + chunk.bytes.len() as u64 == text.len() as u64
                );
                for l in chunk.lines() {
                    seen.push((
                        l.number,
                        l.offset,
                        l.text().to_vec(),
                        l.ending().to_vec(),
                        l.give_back,
                    ));
                }
                true
            })
            .unwrap();
            let expected: Vec<_> = whole
                .iter()
                .map(|(n, o, t, e, g)| (*n, *o, t.to_vec(), e.to_vec(), *g))
                .collect();
            assert_eq!(seen, expected, "chunk size {size}");
            assert_eq!(summary, Summary::of(text));
        }
        let s = Summary::of(text);
        assert_eq!((s.len, s.lines, s.newline), (18, 5, Some(&b"\r\n"[..])));
        assert_eq!(
            s.last,
            Some(Tail {
                ending: None,
                bare_cr: true
            })
        );
        assert!(s.lacks_final_newline());
    }

    #[test]
    fn new_lines_follow_the_line_before_them() {
        let add = |old: &[u8]| -> Vec<u8> {
            let mut out = old.to_vec();
            out.extend(Summary::of(old).appended(&[b"x", b"y"]));
            out
        };
        assert_eq!(add(b""), b"x\ny\n");
        assert_eq!(add(b"a\r\n"), b"a\r\nx\r\ny\r\n");
        assert_eq!(add(b"a\r\nb"), b"a\r\nb\r\nx\r\ny");
        assert_eq!(add(b"a\nb\r\n"), b"a\nb\r\nx\r\ny\r\n");
        assert_eq!(add(b"a\r"), b"a\r\r\nx\ny");
    }

    #[test]
    fn deleting_the_last_lines_keeps_a_missing_final_newline() {
        let delete_from = |old: &[u8], from: usize| {
            edit(old, |lines, edits| {
                for line in &lines[from..] {
                    edits.delete_line(line.span());
                }
            })
        };
        assert_eq!(delete_from(b"a\r\nb\nc", 1), b"a");
        assert_eq!(delete_from(b"a\r\nb\nc", 2), b"a\r\nb");
        // A blank line left last keeps its ending: it would vanish otherwise.
        assert_eq!(delete_from(b"a\n\nc", 2), b"a\n\n");
        assert_eq!(delete_from(b"a\n\r\nc", 2), b"a\n\r\n");
        // With a final newline, nothing more is deleted.
        assert_eq!(delete_from(b"a\nb\n", 1), b"a\n");
        // Deleting every line leaves an empty file.
        assert_eq!(delete_from(b"a\nb", 0), b"");
        // New bytes at the end: they end the file as they are.
        let out = edit(b"a\nb", |lines, edits| {
            edits.delete_line(lines[1].span());
            edits.insert(3, b"\nc".to_vec());
        });
        assert_eq!(out, b"a\n\nc");
        // New lines where the deleted last lines began end the file instead.
        let out = edit(b"a\nb\nc", |lines, edits| {
            edits.delete_line(lines[2].span());
            edits.insert(4, b"x\n".to_vec());
        });
        assert_eq!(out, b"a\nb\nx\n");
    }

    #[test]
    fn edits_become_pieces_around_untouched_stretches() {
        let old = b"a\nb\nc\n";
        let mut edits = Edits::default();
        edits.replace(2..4, b"B\n".to_vec());
        edits.insert(6, b"d\n".to_vec());
        edits.delete(0..2);
        edits.delete(0..2);
        let pieces = edits.into_pieces(&Summary::of(old));
        assert_eq!(pieces[1], Piece::Old(4..6));
        assert_eq!(
            materialize(Some(std::io::Cursor::new(&old[..])), &pieces).unwrap(),
            b"B\nc\nd\n"
        );
        assert_eq!(
            Edits::default().into_pieces(&Summary::of(old)),
            vec![Piece::Old(0..6)]
        );
    }
}
