//! The lossless line model of a Mosquitto acl_file.
//!
//! A [`Document`] borrows the file's bytes and records, for every line, where
//! it is and what Mosquitto makes of it; [`scan`] shows the same lines
//! ([`LineView`]) one at a time from a stream, for files too large to hold.
//! Nothing is normalised: an edit ([`Edits`]) is a set of byte ranges to
//! replace, and every line it does not touch is copied verbatim (CRLF, tabs,
//! runs of spaces, a missing final newline, lines Mosquitto would refuse).
//!
//! Each line is read the way `aclfile__parse` in Mosquitto 2.0.11's
//! `src/security_default.c` reads it, and those quirks are part of the model:
//!
//! - trailing whitespace (`isspace`: space, `\t`, `\r`, `\v`, `\f`) is ignored,
//!   which is why CRLF files work;
//! - a comment is a line whose *first byte* is `#`; an indented `#` is an
//!   invalid line and Mosquitto refuses the file;
//! - words are separated by spaces only: a tab-indented line is invalid, and
//!   `topic read\tx` is the topic `read\tx` with readwrite access;
//! - `topic X` (one word) is readwrite on `X`, even when X is `read`;
//! - after the access word, the rest of the line (trimmed) is the filter, so
//!   a filter may contain spaces when the access word is given.

use std::io::{self, BufRead};
use std::ops::Range;

use serde::Serialize;

use super::topic;
use crate::files::Piece;

/// A byte range in a document. `u32` keeps a 60,000-line file's line table
/// small; [`Document::parse`] refuses texts of 4 GiB or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn new(range: Range<usize>) -> Span {
        // `Document::parse` checked that every offset fits.
        Span {
            start: range.start as u32,
            end: range.end as u32,
        }
    }

    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// The text is too large to be an ACL file (4 GiB or more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// What a rule line grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
    #[serde(rename = "readwrite")]
    ReadWrite,
    /// Takes access away; Mosquitto checks deny rules before grants.
    Deny,
}

impl Access {
    pub fn keyword(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::ReadWrite => "readwrite",
            Access::Deny => "deny",
        }
    }

    fn from_keyword(word: &[u8]) -> Option<Access> {
        Some(match word {
            b"read" => Access::Read,
            b"write" => Access::Write,
            b"readwrite" => Access::ReadWrite,
            b"deny" => Access::Deny,
            _ => return None,
        })
    }

    /// Whether a matching rule with this access grants `need`.
    pub fn grants(self, need: Need) -> bool {
        matches!(
            (self, need),
            (Access::ReadWrite, _) | (Access::Read, Need::Read) | (Access::Write, Need::Write)
        )
    }
}

/// One kind of access a client asks for: receiving a message, or publishing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    Read,
    Write,
}

impl Need {
    pub fn word(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::Write => "write",
        }
    }
}

/// A `topic` or `pattern` line Mosquitto accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `pattern` (applies to every client, `%c`/`%u` substituted) rather than `topic`.
    pub pattern: bool,
    pub access: Access,
    /// Whether the access word is written out (`topic X` alone means readwrite).
    pub explicit: bool,
    /// Where the filter is in the document.
    pub filter: Span,
}

/// Why Mosquitto refuses a line (and with it the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// The first word is not `topic`, `pattern` or `user`.
    UnknownWord { word: Span },
    /// `topic` or `pattern` with nothing after it.
    EmptyTopic,
    /// The word after `topic`/`pattern` is not an access keyword, and more follows.
    BadAccess { word: Span },
    /// The filter breaks MQTT's wildcard rules or Mosquitto's limits.
    BadFilter {
        filter: Span,
        reason: topic::FilterProblem,
    },
    /// `user` with no name.
    MissingUsername,
    /// A NUL byte: Mosquitto's line reader silently drops the rest of the file.
    NulByte,
}

/// What a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Empty, or only whitespace.
    Blank,
    Comment,
    /// `user <name>`: the rules that follow, up to the next `user`, are this user's.
    User {
        name: Span,
    },
    Rule(Rule),
    Invalid(Invalid),
}

/// One line: where its bytes are, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    start: u32,
    content_end: u32,
    end: u32,
    pub kind: Kind,
}

impl Line {
    /// Where the line starts in the document.
    pub fn start(&self) -> usize {
        self.start as usize
    }

    /// The end of the content: before the `\n`, after any `\r`.
    pub fn content_end(&self) -> usize {
        self.content_end as usize
    }

    /// After the `\n`, or the end of the file for a last line without one.
    pub fn end(&self) -> usize {
        self.end as usize
    }

    pub fn has_newline(&self) -> bool {
        self.end > self.content_end
    }
}

/// A parsed acl_file that still holds every original byte.
#[derive(Debug, Clone)]
pub struct Document<'a> {
    text: &'a [u8],
    lines: Vec<Line>,
}

impl<'a> Document<'a> {
    /// Reads every line of `text`. Any bytes are fine; only the size is limited.
    pub fn parse(text: &'a [u8]) -> Result<Document<'a>, TooLarge> {
        if u32::try_from(text.len()).is_err() {
            return Err(TooLarge);
        }
        let has_nul = memchr::memchr(0, text).is_some();
        let mut lines = Vec::with_capacity(memchr::memchr_iter(b'\n', text).count() + 1);
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', text) {
            lines.push(line(text, start, newline, newline + 1, has_nul));
            start = newline + 1;
        }
        if start < text.len() {
            lines.push(line(text, start, text.len(), text.len(), has_nul));
        }
        Ok(Document { text, lines })
    }

    /// The bytes the document was parsed from: rendering without edits.
    pub fn text(&self) -> &'a [u8] {
        self.text
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    pub fn bytes(&self, span: &Span) -> &'a [u8] {
        &self.text[span.range()]
    }

    /// A line without its `\n` (any `\r` included).
    pub fn content(&self, line: &Line) -> &'a [u8] {
        &self.text[line.start()..line.content_end()]
    }

    /// A line without its line ending and trailing whitespace, for messages.
    pub fn shown(&self, line: &Line) -> String {
        String::from_utf8_lossy(trim_end(self.content(line))).into_owned()
    }

    /// `\r\n` when the file uses CRLF (judged by its first line), else `\n`.
    pub fn newline(&self) -> &'static [u8] {
        match self.lines.iter().find(|l| l.has_newline()) {
            Some(line) if self.content(line).ends_with(b"\r") => b"\r\n",
            _ => b"\n",
        }
    }

    /// For each line, the index of the `user` line whose block it is in;
    /// `None` before the first `user` line (the anonymous section).
    pub fn owners(&self) -> Vec<Option<usize>> {
        let mut current = None;
        self.lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                if let Kind::User { .. } = line.kind {
                    current = Some(i);
                }
                current
            })
            .collect()
    }

    /// The name on a `user` line.
    pub fn user_name(&self, index: usize) -> Option<&'a [u8]> {
        match &self.lines.get(index)?.kind {
            Kind::User { name } => Some(self.bytes(name)),
            _ => None,
        }
    }

    /// The first line Mosquitto refuses, if any: Mosquitto stops there and
    /// does not start (or does not load the file on reload).
    pub fn first_invalid(&self) -> Option<(usize, &Invalid)> {
        self.lines
            .iter()
            .enumerate()
            .find_map(|(i, l)| match &l.kind {
                Kind::Invalid(invalid) => Some((i, invalid)),
                _ => None,
            })
    }
}

fn line(text: &[u8], start: usize, content_end: usize, end: usize, has_nul: bool) -> Line {
    let kind = if has_nul {
        parse_kind(text, start..content_end)
    } else {
        parse_line(text, start, content_end)
    };
    Line {
        start: start as u32,
        content_end: content_end as u32,
        end: end as u32,
        kind,
    }
}

/// What the line at `content` (without its `\n`) in `text` is; the spans in
/// the result index `text`. For reading a file line by line.
pub fn parse_kind(text: &[u8], content: Range<usize>) -> Kind {
    if memchr::memchr(0, &text[content.clone()]).is_some() {
        return Kind::Invalid(Invalid::NulByte);
    }
    parse_line(text, content.start, content.end)
}

/// C's `isspace` in the "C" locale.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

/// `misc__trimblanks`: whitespace off both ends.
fn trim_range(text: &[u8], mut range: Range<usize>) -> Range<usize> {
    while range.start < range.end && is_space(text[range.start]) {
        range.start += 1;
    }
    while range.end > range.start && is_space(text[range.end - 1]) {
        range.end -= 1;
    }
    range
}

/// The next space-separated word at or after `from`, like `strtok_r(…, " ")`:
/// the word's range and where the next search starts.
fn word(text: &[u8], from: usize, end: usize) -> Option<(Span, usize)> {
    let mut start = from;
    while start < end && text[start] == b' ' {
        start += 1;
    }
    if start == end {
        return None;
    }
    let stop = memchr::memchr(b' ', &text[start..end]).map_or(end, |i| start + i);
    let next = if stop < end { stop + 1 } else { end };
    Some((Span::new(start..stop), next))
}

fn parse_line(text: &[u8], start: usize, content_end: usize) -> Kind {
    let end = start + trim_end(&text[start..content_end]).len();
    if end > start && text[start] == b'#' {
        return Kind::Comment;
    }
    let Some((first, rest)) = word(text, start, end) else {
        return Kind::Blank;
    };
    match &text[first.range()] {
        b"topic" | b"pattern" => {
            let pattern = &text[first.range()] == b"pattern";
            let Some((second, after)) = word(text, rest, end) else {
                return Kind::Invalid(Invalid::EmptyTopic);
            };
            let (access, explicit, filter) = if after < end {
                match Access::from_keyword(&text[second.range()]) {
                    Some(access) => (access, true, Span::new(trim_range(text, after..end))),
                    None => return Kind::Invalid(Invalid::BadAccess { word: second }),
                }
            } else {
                (Access::ReadWrite, false, second)
            };
            if let Some(reason) = topic::filter_problem(&text[filter.range()]) {
                return Kind::Invalid(Invalid::BadFilter { filter, reason });
            }
            Kind::Rule(Rule {
                pattern,
                access,
                explicit,
                filter,
            })
        }
        b"user" => {
            if rest >= end {
                return Kind::Invalid(Invalid::MissingUsername);
            }
            Kind::User {
                name: Span::new(trim_range(text, rest..end)),
            }
        }
        _ => Kind::Invalid(Invalid::UnknownWord { word: first }),
    }
}

/// One line as met while reading a file from start to end: its bytes, where
/// it is in the file, and what it means. The same view comes from a parsed
/// [`Document`] ([`Document::visit`]) or from a stream ([`scan`]), so the edits
/// and the evaluator are written once for both.
#[derive(Debug)]
pub struct LineView<'t> {
    /// 0-based.
    pub index: usize,
    /// Where the line starts in the file.
    pub offset: u64,
    /// The text the spans in `kind` index, and where in it the line is.
    base: &'t [u8],
    start: usize,
    content_end: usize,
    end: usize,
    pub kind: Kind,
}

impl<'t> LineView<'t> {
    /// The bytes of a span in `kind`.
    pub fn bytes(&self, span: &Span) -> &'t [u8] {
        &self.base[span.range()]
    }

    /// The line without its `\n` (any `\r` included).
    pub fn content(&self) -> &'t [u8] {
        &self.base[self.start..self.content_end]
    }

    /// The line as written, without its ending and trailing whitespace.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(trim_end(self.content())).into_owned()
    }

    pub fn has_newline(&self) -> bool {
        self.end > self.content_end
    }

    /// The line's bytes in the file, ending included.
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + (self.end - self.start) as u64
    }

    /// `\r\n` when the line ends with CRLF, `\n` when with LF, `None` without an ending.
    pub fn ending(&self) -> Option<&'static [u8]> {
        match (self.has_newline(), self.content().ends_with(b"\r")) {
            (false, _) => None,
            (true, true) => Some(b"\r\n"),
            (true, false) => Some(b"\n"),
        }
    }

    /// The text the spans index, and where the line's content is in it.
    pub(crate) fn spanned(&self) -> (&'t [u8], Range<usize>) {
        (self.base, self.start..self.content_end)
    }

    /// Leading spaces (the only indentation Mosquitto understands).
    pub fn indent(&self) -> &'t [u8] {
        let content = self.content();
        &content[..content.iter().take_while(|&&b| b == b' ').count()]
    }
}

impl<'a> Document<'a> {
    /// Shows every line to `f`, in order.
    pub fn visit(&self, mut f: impl FnMut(&LineView)) {
        for (index, line) in self.lines.iter().enumerate() {
            f(&LineView {
                index,
                offset: line.start as u64,
                base: self.text,
                start: line.start(),
                content_end: line.content_end(),
                end: line.end(),
                kind: line.kind.clone(),
            });
        }
    }
}

/// Shows every line of `reader` to `f`, in order, reading it chunk by chunk
/// so that a large file is never held in memory. `f` returns `false` to stop.
pub fn scan(mut reader: impl BufRead, mut f: impl FnMut(&LineView) -> bool) -> io::Result<()> {
    // A line split across two chunks is put together here.
    let mut carry: Vec<u8> = Vec::new();
    let mut offset = 0u64;
    let mut index = 0;
    let mut show = |base: &[u8], start: usize, end: usize, check_nul: bool| {
        let content_end = end - usize::from(base[end - 1] == b'\n');
        let kind = if check_nul {
            parse_kind(base, start..content_end)
        } else {
            parse_line(base, start, content_end)
        };
        let view = LineView {
            index,
            offset,
            base,
            start,
            content_end,
            end,
            kind,
        };
        index += 1;
        offset += (end - start) as u64;
        f(&view)
    };
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            if !carry.is_empty() {
                show(&carry, 0, carry.len(), true);
            }
            return Ok(());
        }
        let check_nul = memchr::memchr(0, chunk).is_some();
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', chunk) {
            let go_on = if carry.is_empty() {
                show(chunk, start, newline + 1, check_nul)
            } else {
                carry.extend_from_slice(&chunk[start..=newline]);
                let go_on = show(&carry, 0, carry.len(), true);
                carry.clear();
                go_on
            };
            if !go_on {
                return Ok(());
            }
            start = newline + 1;
        }
        carry.extend_from_slice(&chunk[start..]);
        let len = chunk.len();
        reader.consume(len);
    }
}

/// Changes at byte offsets of a file, turned into the [`Piece`]s that
/// `files::update_pieces` writes: the stretches in between are copied from
/// the old file untouched.
#[derive(Debug, Default)]
pub struct Edits {
    changes: Vec<(Range<u64>, Vec<u8>)>,
    /// Lines deleted whole: where each starts, and the length of the ending
    /// of the line before it.
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

    /// Deletes a whole line, `range` with its ending; `before` is the length
    /// of the ending of the line before it that [`Self::keep_no_final_newline`]
    /// may take (0 for the first line, and for a line that would vanish).
    pub fn delete_line(&mut self, range: Range<u64>, before: u64) {
        self.deleted_lines.push((range.start, before));
        self.delete(range);
    }

    /// For a file that does not end with a newline: when the edits delete
    /// its last lines, the line left last loses its ending too, so the file
    /// still ends without one. Lines added at the end of such a file get no
    /// final newline either, so adding lines and deleting them again gives
    /// back the original bytes.
    pub fn keep_no_final_newline(&mut self, old_len: u64) {
        if self
            .changes
            .iter()
            .any(|(r, b)| !b.is_empty() && r.end >= old_len)
        {
            return; // the file ends with new bytes
        }
        // The start of the run of deletions that reaches the end of the file.
        let mut start = old_len;
        while let Some(from) = self
            .changes
            .iter()
            .filter(|(r, b)| b.is_empty() && r.end == start && r.start < start)
            .map(|(r, _)| r.start)
            .min()
        {
            start = from;
        }
        if start == old_len || start == 0 {
            return;
        }
        let Some(&(_, before)) = self.deleted_lines.iter().find(|(at, _)| *at == start) else {
            return;
        };
        let ending = start - before..start;
        if before == 0
            || self
                .changes
                .iter()
                .any(|(r, _)| r.start < ending.end && r.end > ending.start)
        {
            return;
        }
        self.delete(ending);
    }

    /// The new file, given the old one's length. Overlapping deletions of
    /// the same line count once.
    pub fn into_pieces(mut self, old_len: u64) -> Vec<Piece> {
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
        if at < old_len {
            pieces.push(Piece::Old(at..old_len));
        }
        pieces
    }
}

/// Pieces of a new text as one buffer, given the old text.
pub fn concat(pieces: &[Piece], old: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Old(range) => {
                out.extend_from_slice(&old[range.start as usize..range.end as usize])
            }
            Piece::New(bytes) => out.extend_from_slice(bytes),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Kind> {
        Document::parse(text.as_bytes())
            .unwrap()
            .lines()
            .iter()
            .map(|l| l.kind.clone())
            .collect()
    }

    fn rule(doc: &Document, i: usize) -> (bool, Access, bool, String) {
        match &doc.lines()[i].kind {
            Kind::Rule(r) => (
                r.pattern,
                r.access,
                r.explicit,
                String::from_utf8_lossy(doc.bytes(&r.filter)).into_owned(),
            ),
            other => panic!("line {i} is {other:?}"),
        }
    }

    #[test]
    fn lines_are_read_like_mosquitto_reads_them() {
        let text = "# c\n\n  \t\r\nuser  a b \r\ntopic x\ntopic read\ntopic   read    a b\r\npattern deny %c/#\ntopic read\tx\n";
        let doc = Document::parse(text.as_bytes()).unwrap();
        let k = kinds(text);
        assert_eq!(k[0], Kind::Comment);
        assert_eq!(k[1], Kind::Blank);
        assert_eq!(k[2], Kind::Blank);
        assert_eq!(doc.user_name(3), Some(&b"a b"[..]));
        assert_eq!(rule(&doc, 4), (false, Access::ReadWrite, false, "x".into()));
        assert_eq!(
            rule(&doc, 5),
            (false, Access::ReadWrite, false, "read".into())
        );
        assert_eq!(rule(&doc, 6), (false, Access::Read, true, "a b".into()));
        assert_eq!(rule(&doc, 7), (true, Access::Deny, true, "%c/#".into()));
        assert_eq!(
            rule(&doc, 8),
            (false, Access::ReadWrite, false, "read\tx".into())
        );
    }

    #[test]
    fn what_mosquitto_refuses() {
        let k = kinds(
            " # indented\n\ttopic a\nTopic a\ntopic\nuser\nuser   \ntopic foo bar\ntopic read a/#/b\nx\0y\n",
        );
        assert!(matches!(k[0], Kind::Invalid(Invalid::UnknownWord { .. })));
        assert!(matches!(k[1], Kind::Invalid(Invalid::UnknownWord { .. })));
        assert!(matches!(k[2], Kind::Invalid(Invalid::UnknownWord { .. })));
        assert_eq!(k[3], Kind::Invalid(Invalid::EmptyTopic));
        assert_eq!(k[4], Kind::Invalid(Invalid::MissingUsername));
        assert_eq!(k[5], Kind::Invalid(Invalid::MissingUsername));
        assert!(matches!(k[6], Kind::Invalid(Invalid::BadAccess { .. })));
        assert!(matches!(k[7], Kind::Invalid(Invalid::BadFilter { .. })));
        assert_eq!(k[8], Kind::Invalid(Invalid::NulByte));
    }

    #[test]
    fn lines_stay_small() {
        // 60,000 lines should cost a couple of megabytes, not tens.
        assert!(
            std::mem::size_of::<Line>() <= 32,
            "{}",
            std::mem::size_of::<Line>()
        );
    }

    #[test]
    fn streaming_and_parsed_views_agree() {
        let text = b"user a\r\n  topic read x\n\n#c\ntopic";
        let doc = Document::parse(text).unwrap();
        let mut parsed = Vec::new();
        doc.visit(|l| parsed.push((l.index, l.range(), l.shown(), l.ending(), l.indent().len())));
        let mut streamed = Vec::new();
        scan(&text[..], |l| {
            streamed.push((l.index, l.range(), l.shown(), l.ending(), l.indent().len()));
            true
        })
        .unwrap();
        assert_eq!(parsed, streamed);
        // Lines split across chunks of every size come out whole.
        for capacity in 1..8 {
            let mut chunked = Vec::new();
            let reader = io::BufReader::with_capacity(capacity, &text[..]);
            scan(reader, |l| {
                chunked.push((l.index, l.range(), l.shown(), l.ending(), l.indent().len()));
                true
            })
            .unwrap();
            assert_eq!(parsed, chunked, "capacity {capacity}");
        }
        assert_eq!(parsed[0].3, Some(&b"\r\n"[..]));
        assert_eq!(parsed[4].1, 27..32);
        assert_eq!(parsed[4].3, None);
    }

    #[test]
    fn edits_become_pieces_around_untouched_stretches() {
        let old = b"a\nb\nc\n";
        let mut edits = Edits::default();
        edits.replace(2..4, b"B\n".to_vec());
        edits.insert(6, b"d\n".to_vec());
        edits.delete(0..2);
        edits.delete(0..2);
        let pieces = edits.into_pieces(6);
        assert_eq!(concat(&pieces, old), b"B\nc\nd\n");
        assert_eq!(pieces[1], Piece::Old(4..6));
        assert_eq!(Edits::default().into_pieces(6), vec![Piece::Old(0..6)]);
    }

    #[test]
    fn deleting_the_last_lines_keeps_a_missing_final_newline() {
        let old = b"a\r\nb\nc";
        let mut edits = Edits::default();
        edits.delete_line(3..5, 2);
        edits.delete_line(5..6, 1);
        edits.keep_no_final_newline(6);
        assert_eq!(concat(&edits.into_pieces(6), old), b"a");
        // Not at the end, or with new bytes at the end: nothing more to do.
        let mut edits = Edits::default();
        edits.delete_line(3..5, 2);
        edits.keep_no_final_newline(6);
        assert_eq!(concat(&edits.into_pieces(6), old), b"a\r\nc");
        let mut edits = Edits::default();
        edits.delete_line(5..6, 1);
        edits.insert(6, b"\nd".to_vec());
        edits.keep_no_final_newline(6);
        assert_eq!(concat(&edits.into_pieces(6), old), b"a\r\nb\n\nd");
    }
}
