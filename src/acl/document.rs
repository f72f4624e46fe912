//! The lossless line model of a Mosquitto acl_file.
//!
//! A [`Document`] borrows the file's bytes and records, for every line, where
//! it is and what Mosquitto makes of it. Nothing is normalised: rendering a
//! document is handing back the bytes it was parsed from, and an edit
//! ([`Patch`]) copies every line it does not touch verbatim (CRLF, tabs, runs
//! of spaces, a missing final newline, lines Mosquitto would refuse).
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

/// An edit of a document: lines replaced, removed or added, everything else
/// copied byte for byte.
#[derive(Debug)]
pub struct Patch<'d, 'a> {
    doc: &'d Document<'a>,
    /// Per line index: what happens to it. Sorted by index when rendered.
    changes: Vec<(usize, Change)>,
    /// Whole lines (with their endings) added at the end of the file.
    append: Vec<Vec<u8>>,
    /// The change whose first output line number [`Patch::render`] reports.
    marked: Option<Marked>,
    last: Option<Marked>,
}

#[derive(Debug)]
enum Change {
    /// The line's new bytes, ending included.
    Replace(Vec<u8>),
    Delete,
    /// Whole lines (each with its ending) inserted after this line.
    After(Vec<Vec<u8>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marked {
    Change(usize),
    Append(usize),
}

/// A rendered patch: the new text as ranges of the old text and new bytes,
/// so that `files::update_pieces` copies the unchanged stretches inside the
/// kernel and the file is never assembled in memory.
#[derive(Debug)]
pub struct Rendered {
    pub pieces: Vec<Piece>,
    /// 1-based line number, in the new text, of the marked change.
    pub marked_line: Option<usize>,
}

impl Rendered {
    /// The new text in one piece, given the old one.
    pub fn concat(&self, old: &[u8]) -> Vec<u8> {
        concat(&self.pieces, old)
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

/// Collects output pieces, joining adjacent old stretches.
struct Output<'a> {
    text: &'a [u8],
    pieces: Vec<Piece>,
    lines: usize,
    ends_with_newline: bool,
    empty: bool,
}

impl Output<'_> {
    fn kept(&mut self, range: Range<usize>, lines: usize) {
        if range.is_empty() {
            return;
        }
        self.ends_with_newline = self.text[range.end - 1] == b'\n';
        self.empty = false;
        self.lines += lines;
        let range = range.start as u64..range.end as u64;
        match self.pieces.last_mut() {
            Some(Piece::Old(last)) if last.end == range.start => last.end = range.end,
            _ => self.pieces.push(Piece::Old(range)),
        }
    }

    fn added(&mut self, bytes: Vec<u8>, lines: usize) {
        if bytes.is_empty() {
            return;
        }
        self.ends_with_newline = bytes.ends_with(b"\n");
        self.empty = false;
        self.lines += lines;
        self.pieces.push(Piece::New(bytes));
    }
}

impl<'d, 'a> Patch<'d, 'a> {
    pub fn new(doc: &'d Document<'a>) -> Self {
        Patch {
            doc,
            changes: Vec::new(),
            append: Vec::new(),
            marked: None,
            last: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.append.is_empty()
    }

    /// Replaces line `index` with `content` (no line ending: the line keeps
    /// its own, CRLF included).
    pub fn replace(&mut self, index: usize, content: &[u8]) -> &mut Self {
        let line = &self.doc.lines[index];
        let mut bytes = content.to_vec();
        if self.doc.content(line).ends_with(b"\r") {
            bytes.push(b'\r');
        }
        bytes.extend_from_slice(&self.doc.text[line.content_end()..line.end()]);
        self.push(index, Change::Replace(bytes))
    }

    pub fn delete(&mut self, index: usize) -> &mut Self {
        self.push(index, Change::Delete)
    }

    /// Inserts `lines` (contents without endings) after line `index`, with
    /// the line ending that line uses.
    pub fn insert_after(&mut self, index: usize, lines: &[Vec<u8>]) -> &mut Self {
        let newline = self.line_ending(index);
        let lines = lines
            .iter()
            .map(|content| [content.as_slice(), newline].concat())
            .collect();
        self.push(index, Change::After(lines))
    }

    /// Adds `lines` (contents without endings) at the end of the file.
    pub fn append(&mut self, lines: &[Vec<u8>]) -> &mut Self {
        let newline = self.doc.newline();
        self.append.extend(
            lines
                .iter()
                .map(|content| [content.as_slice(), newline].concat()),
        );
        self.last = Some(Marked::Append(
            self.append.len().saturating_sub(lines.len()),
        ));
        self
    }

    fn push(&mut self, index: usize, change: Change) -> &mut Self {
        self.changes.push((index, change));
        self.last = Some(Marked::Change(self.changes.len() - 1));
        self
    }

    /// Makes [`Patch::render`] report where the most recent change's first
    /// line ends up.
    pub fn mark_last(&mut self) -> &mut Self {
        self.marked = self.last;
        self
    }

    fn line_ending(&self, index: usize) -> &'static [u8] {
        let line = &self.doc.lines[index];
        if line.has_newline() {
            if self.doc.content(line).ends_with(b"\r") {
                b"\r\n"
            } else {
                b"\n"
            }
        } else {
            self.doc.newline()
        }
    }

    pub fn render(mut self) -> Rendered {
        let doc = self.doc;
        let lines = &doc.lines;
        // A stable sort keeps the order in which changes to one line were made.
        let mut order: Vec<usize> = (0..self.changes.len()).collect();
        order.sort_by_key(|&i| self.changes[i].0);
        let mut out = Output {
            text: doc.text,
            pieces: Vec::new(),
            lines: 0,
            ends_with_newline: true,
            empty: true,
        };
        let mut marked_line = None;
        let mut copied_to = 0usize; // the first line not yet written
        let copy = |out: &mut Output<'a>, from: usize, to: usize| {
            if from < to {
                out.kept(lines[from].start()..lines[to - 1].end(), to - from);
            }
        };
        for ci in order {
            let index = self.changes[ci].0;
            if copied_to < index {
                copy(&mut out, copied_to, index);
                copied_to = index;
            }
            let marked = self.marked == Some(Marked::Change(ci));
            match std::mem::replace(&mut self.changes[ci].1, Change::Delete) {
                Change::Replace(bytes) => {
                    if copied_to == index {
                        if marked {
                            marked_line = Some(out.lines + 1);
                        }
                        out.added(bytes, 1);
                        copied_to = index + 1;
                    }
                }
                Change::Delete => {
                    if copied_to == index {
                        copied_to = index + 1;
                    }
                }
                Change::After(new_lines) => {
                    if copied_to == index {
                        // The line itself is unchanged: copy it first.
                        copy(&mut out, index, index + 1);
                        copied_to = index + 1;
                    }
                    if !out.ends_with_newline && !out.empty {
                        out.added(doc.newline().to_vec(), 0);
                    }
                    if marked {
                        marked_line = Some(out.lines + 1);
                    }
                    let n = new_lines.len();
                    out.added(new_lines.concat(), n);
                }
            }
        }
        copy(&mut out, copied_to, lines.len());
        if !self.append.is_empty() {
            if !out.ends_with_newline && !out.empty {
                out.added(doc.newline().to_vec(), 0);
            }
            for (i, line) in std::mem::take(&mut self.append).into_iter().enumerate() {
                if self.marked == Some(Marked::Append(i)) {
                    marked_line = Some(out.lines + 1);
                }
                out.added(line, 1);
            }
        }
        Rendered {
            pieces: out.pieces,
            marked_line,
        }
    }
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
    fn unchanged_patch_renders_the_original() {
        for text in ["", "a", "a\n", "a\r\nb", "\n\n", "user x\ntopic y"] {
            let doc = Document::parse(text.as_bytes()).unwrap();
            assert_eq!(
                Patch::new(&doc).render().concat(text.as_bytes()),
                text.as_bytes()
            );
        }
    }

    #[test]
    fn patches_keep_untouched_lines_and_endings() {
        let text = "a\r\nb\r\nc";
        let doc = Document::parse(text.as_bytes()).unwrap();
        let mut p = Patch::new(&doc);
        p.replace(1, b"B").mark_last();
        let r = p.render();
        assert_eq!(r.concat(text.as_bytes()), b"a\r\nB\r\nc");
        assert_eq!(r.marked_line, Some(2));

        let mut p = Patch::new(&doc);
        p.insert_after(2, &[b"d".to_vec()]).mark_last();
        let r = p.render();
        assert_eq!(r.concat(text.as_bytes()), b"a\r\nb\r\nc\r\nd\r\n");
        assert_eq!(r.marked_line, Some(4));

        let mut p = Patch::new(&doc);
        p.delete(0)
            .append(&[b"x".to_vec(), b"y".to_vec()])
            .mark_last();
        let r = p.render();
        assert_eq!(r.concat(text.as_bytes()), b"b\r\nc\r\nx\r\ny\r\n");
        assert_eq!(r.marked_line, Some(3));
    }
}
