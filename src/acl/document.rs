//! The lossless line model of a Mosquitto acl_file.
//!
//! A [`Document`] borrows the file's bytes and records, for every line, where
//! it is and what Mosquitto makes of it; [`scan`] shows the same lines
//! ([`LineView`]) one at a time from a stream, for files too large to hold.
//! The lines themselves, and the edits of them, are `crate::lines`'s: nothing
//! is normalised, and every line an edit does not touch is copied verbatim
//! (CRLF, tabs, runs of spaces, a missing final newline, lines Mosquitto
//! would refuse).
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

use std::io::{self, Read};
use std::ops::Range;

use serde::Serialize;

use super::topic;
use crate::lines::{self, LineSpan, Summary, Tail};

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

/// One line of a [`Document`]: where its bytes are, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine {
    start: u32,
    content_end: u32,
    end: u32,
    pub kind: Kind,
}

impl ParsedLine {
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
    lines: Vec<ParsedLine>,
}

impl<'a> Document<'a> {
    /// Reads every line of `text`. Any bytes are fine; only the size is limited.
    pub fn parse(text: &'a [u8]) -> Result<Document<'a>, TooLarge> {
        if u32::try_from(text.len()).is_err() {
            return Err(TooLarge);
        }
        let has_nul = memchr::memchr(0, text).is_some();
        let mut parsed = Vec::with_capacity(memchr::memchr_iter(b'\n', text).count() + 1);
        for line in lines::split(text) {
            let start = line.offset as usize;
            let content_end = start + line.content().len();
            parsed.push(ParsedLine {
                start: start as u32,
                content_end: content_end as u32,
                end: line.range().end as u32,
                kind: kind_of(text, start..content_end, has_nul),
            });
        }
        Ok(Document {
            text,
            lines: parsed,
        })
    }

    /// The bytes the document was parsed from: rendering without edits.
    pub fn text(&self) -> &'a [u8] {
        self.text
    }

    pub fn lines(&self) -> &[ParsedLine] {
        &self.lines
    }

    pub fn bytes(&self, span: &Span) -> &'a [u8] {
        &self.text[span.range()]
    }

    /// A line without its `\n` (any `\r` included).
    pub fn content(&self, line: &ParsedLine) -> &'a [u8] {
        &self.text[line.start()..line.content_end()]
    }

    /// A line without its line ending and trailing whitespace, for messages.
    pub fn shown(&self, line: &ParsedLine) -> String {
        String::from_utf8_lossy(trim_end(self.content(line))).into_owned()
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

/// What the line at `content` in `text` is; `has_nul`: whether the text
/// holds a NUL byte anywhere, which only then is looked for in the line.
fn kind_of(text: &[u8], content: Range<usize>, has_nul: bool) -> Kind {
    if has_nul {
        parse_kind(text, content)
    } else {
        parse_line(text, content.start, content.end)
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
    line: lines::Line<'t>,
    /// The text the spans in `kind` index, and where the line starts in it.
    base: &'t [u8],
    start: usize,
    pub kind: Kind,
}

impl<'t> LineView<'t> {
    /// The bytes of a span in `kind`.
    pub fn bytes(&self, span: &Span) -> &'t [u8] {
        &self.base[span.range()]
    }

    /// The line without its `\n` (any `\r` included).
    pub fn content(&self) -> &'t [u8] {
        self.line.content()
    }

    /// The line as written, without its ending and trailing whitespace.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(trim_end(self.content())).into_owned()
    }

    /// The length in bytes of [`LineView::shown`]'s text, before any lossy
    /// decoding: the content without trailing whitespace.
    pub fn shown_len(&self) -> usize {
        trim_end(self.content()).len()
    }

    pub fn has_newline(&self) -> bool {
        self.line.has_ending()
    }

    /// The line's bytes in the file, ending included.
    pub fn range(&self) -> Range<u64> {
        self.line.range()
    }

    /// `\r\n` when the line ends with CRLF, `\n` when with LF, `None` without an ending.
    pub fn ending(&self) -> Option<&'static [u8]> {
        self.line.tail().ending
    }

    /// How the line ends, for lines added after it.
    pub fn tail(&self) -> Tail {
        self.line.tail()
    }

    /// Where the line is, to delete it later.
    pub fn span(&self) -> LineSpan {
        self.line.span()
    }

    /// The text the spans index, and where the line's content is in it.
    pub(crate) fn spanned(&self) -> (&'t [u8], Range<usize>) {
        (self.base, self.start..self.start + self.content().len())
    }

    /// Leading spaces (the only indentation Mosquitto understands).
    pub fn indent(&self) -> &'t [u8] {
        let content = self.content();
        &content[..content.iter().take_while(|&&b| b == b' ').count()]
    }
}

impl<'a> Document<'a> {
    /// Shows every line to `f`, in order, and returns the file's summary.
    pub fn visit(&self, mut f: impl FnMut(&LineView)) -> Summary {
        for (index, line) in lines::split(self.text).enumerate() {
            f(&LineView {
                index,
                line,
                base: self.text,
                start: line.offset as usize,
                kind: self.lines[index].kind.clone(),
            });
        }
        Summary::of(self.text)
    }
}

/// Shows every line of `reader` to `f`, in order, reading it chunk by chunk
/// so that a large file is never held in memory. `f` returns `false` to
/// stop. Returns the file's summary (of what was read, when stopped).
pub fn scan(reader: impl Read, f: impl FnMut(&LineView) -> bool) -> io::Result<Summary> {
    scan_chunked(reader, lines::CHUNK, f)
}

/// [`scan`] in chunks of `chunk` bytes: for the fuzzer and the tests, which
/// reach the chunk boundaries with small inputs.
#[doc(hidden)]
pub fn scan_chunked(
    reader: impl Read,
    chunk: usize,
    mut f: impl FnMut(&LineView) -> bool,
) -> io::Result<Summary> {
    let mut index = 0;
    lines::read(reader, chunk, |whole| {
        let has_nul = memchr::memchr(0, whole.bytes).is_some();
        for line in whole.lines() {
            let start = (line.offset - whole.offset) as usize;
            let content = start..start + line.content().len();
            let view = LineView {
                index,
                line,
                base: whole.bytes,
                start,
                kind: kind_of(whole.bytes, content, has_nul),
            };
            index += 1;
            if !f(&view) {
                return false;
            }
        }
        true
    })
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
            std::mem::size_of::<ParsedLine>() <= 32,
            "{}",
            std::mem::size_of::<ParsedLine>()
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
            scan_chunked(&text[..], capacity, |l| {
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
}
