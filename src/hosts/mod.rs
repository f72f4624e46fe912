//! /etc/hosts as a lossless document, and the edits `hosts add` and `hosts
//! remove` make to it.
//!
//! The tutorial has users hand-edit /etc/hosts as root, the one step where a
//! typo breaks name resolution for the whole machine. Tools that rewrite the
//! file from a parsed model reorder it, drop comments or aliases, or add a
//! second line for a changed IP. Here an edit is a short list of byte-range
//! patches on the original bytes: every line it does not mean to change is
//! written back exactly as it was (tabs, CRLF, comments, a missing final
//! newline, non-UTF-8 bytes, lines nobody can parse).
//!
//! `hosts-parser` reads the lines that matter; it never writes (its
//! `serialize()` reformats). A line it cannot parse, such as an IP on its own,
//! is kept verbatim and maps nothing. Names compare the way glibc's `files`
//! backend compares them: ASCII case-insensitively, with a `#` anywhere
//! starting a comment, and lines whose address is not an IP ignored.
//!
//! Files can be large (ad-block lists have hundreds of thousands of lines), so
//! only lines that contain the name being looked for are parsed: a
//! case-insensitive substring search over the bytes finds them. A line that
//! maps a name always contains it, so this finds exactly what parsing every
//! line would (a property test checks that).
//!
//! Lines this tool writes end with the marker comment `# wott-mqtt`; `list`
//! shows them and `remove` deletes only them.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::{IpAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::{Path, PathBuf};

use hosts_parser::HostsFileLine;
use memchr::memmem;
use serde::Serialize;

use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;
use crate::files::{self, FileError, Piece, PieceEdit, UpdateOptions};
use crate::names::{DeviceId, WOTT_DOMAIN};

/// The file the system resolver reads.
pub const DEFAULT_HOSTS_FILE: &str = "/etc/hosts";

/// The last word of every line this tool writes, after a `#`.
pub const MARKER: &str = "wott-mqtt";

/// Mode of a hosts file this tool creates.
const NEW_FILE_MODE: u32 = 0o644;

/// What can go wrong with a hosts entry.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("invalid IP address {value:?}: {reason}")]
    InvalidIp { value: String, reason: String },
    #[error("refusing to map {name}: it is a loopback name the machine itself relies on")]
    ReservedName { name: String },
    #[error("{name} does not resolve on this machine: {reason}")]
    Unresolved {
        name: String,
        reason: String,
        /// Whether the hosts file maps the name (so the resolver ignores it).
        in_file: bool,
        /// The hosts file checked; the resolver reads only /etc/hosts.
        hosts_file: PathBuf,
    },
}

impl Diagnose for HostsError {
    fn hint(&self) -> Option<String> {
        match self {
            HostsError::File(e) => e.hint(),
            HostsError::InvalidIp { .. } => Some(
                "give the server's IPv4 or IPv6 address, e.g. 192.168.1.20 or fd00::20 \
                 (`hostname -I` on the server lists them)"
                    .into(),
            ),
            HostsError::ReservedName { .. } => Some(
                "map the server's device ID (`wott-mqtt whoami` on the server prints it), \
                 not localhost"
                    .into(),
            ),
            HostsError::Unresolved {
                name, hosts_file, ..
            } if hosts_file != Path::new(DEFAULT_HOSTS_FILE) => Some(format!(
                "the system resolver reads {DEFAULT_HOSTS_FILE}, not {}: \
                     sudo wott-mqtt hosts add {name} <server IP>",
                hosts_file.display()
            )),
            HostsError::Unresolved {
                name,
                in_file: false,
                ..
            } => Some(format!(
                "add it: sudo wott-mqtt hosts add {name} <server IP>"
            )),
            HostsError::Unresolved { in_file: true, .. } => Some(
                "/etc/hosts maps it but the resolver does not read it: check that the \
                 `hosts:` line of /etc/nsswitch.conf lists `files`"
                    .into(),
            ),
        }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            HostsError::File(e) => e.exit_code(),
            HostsError::InvalidIp { .. } | HostsError::ReservedName { .. } => ExitCode::Usage,
            HostsError::Unresolved { .. } => ExitCode::Resolve,
        }
    }
}

/// Parses a server address from the command line: an IPv4 or IPv6 address
/// that a client can connect to.
pub fn parse_server_ip(value: &OsStr) -> Result<IpAddr, HostsError> {
    let fail = |reason: &str| HostsError::InvalidIp {
        value: truncate(&value.to_string_lossy()),
        reason: reason.to_string(),
    };
    let text = value.to_str().ok_or_else(|| fail("it is not UTF-8 text"))?;
    let ip: IpAddr = text.parse().map_err(|_| {
        if text.contains('%') {
            fail("zone IDs (%eth0) cannot be used in a hosts file; use a global or ULA address")
        } else {
            fail("it is not an IPv4 address (192.168.1.20) or an IPv6 address (fd00::20)")
        }
    })?;
    if ip.is_unspecified() {
        return Err(fail(
            "it is the unspecified address, which names no host to connect to",
        ));
    }
    if ip.is_multicast() {
        return Err(fail("it is a multicast address"));
    }
    if let IpAddr::V4(v4) = ip
        && v4.is_broadcast()
    {
        return Err(fail("it is the broadcast address"));
    }
    Ok(ip)
}

/// Loopback names (RFC 6761 and Debian's defaults). Moving one of them breaks
/// the machine, so `add` refuses them.
fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "localhost"
        || lower.ends_with(".localhost")
        || lower == "localhost.localdomain"
        || lower == "ip6-localhost"
        || lower == "ip6-loopback"
}

fn truncate(value: &str) -> String {
    const MAX: usize = 80;
    if value.chars().count() <= MAX {
        return value.to_string();
    }
    format!("{}…", value.chars().take(MAX).collect::<String>())
}

/// A hosts file's bytes, read as lines. Nothing is copied or normalised:
/// rendering the lines gives back the input exactly. The commands stream the
/// file instead (see [`add`]); this is for bytes already in memory.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    bytes: &'a [u8],
}

/// One line: its text and its line ending, as they are in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based.
    pub number: usize,
    /// Byte offset of the line's start in the text it was read from.
    pub offset: usize,
    /// The line without its ending.
    pub text: &'a [u8],
    /// `"\n"`, `"\r\n"`, or empty for a last line without one.
    pub ending: &'a [u8],
}

impl Line<'_> {
    /// The mapping this line makes, if it makes one.
    pub fn entry(&self) -> Option<Entry> {
        parse_entry(self.text).map(|p| p.entry(self.number))
    }
}

/// A line that maps names to an address, as the resolver reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    pub ip: IpAddr,
    pub names: Vec<String>,
    /// Written by this tool (ends with `# wott-mqtt`).
    pub managed: bool,
}

impl Entry {
    pub fn maps(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Written by this tool, or maps a `*.d.wott.local` name: what `list` shows.
    pub fn is_wott(&self) -> bool {
        self.managed
            || self.names.iter().any(|n| {
                let n = n.as_bytes();
                n.len() > WOTT_DOMAIN.len()
                    && n[n.len() - WOTT_DOMAIN.len()..].eq_ignore_ascii_case(WOTT_DOMAIN.as_bytes())
            })
    }
}

/// Iterator over the lines of some bytes.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
    number: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        let rest = self.bytes.get(self.pos..).filter(|r| !r.is_empty())?;
        let (len, ending) = match memchr::memchr(b'\n', rest) {
            Some(i) if i > 0 && rest[i - 1] == b'\r' => (i - 1, 2),
            Some(i) => (i, 1),
            None => (rest.len(), 0),
        };
        self.number += 1;
        let line = Line {
            number: self.number,
            offset: self.pos,
            text: &rest[..len],
            ending: &rest[len..len + ending],
        };
        self.pos += len + ending;
        Some(line)
    }
}

impl<'a> Document<'a> {
    pub fn parse(bytes: &'a [u8]) -> Self {
        Document { bytes }
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every line, in order.
    pub fn lines(&self) -> Lines<'a> {
        Lines {
            bytes: self.bytes,
            pos: 0,
            number: 0,
        }
    }

    /// The lines again, concatenated: the same bytes as the input.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len());
        for line in self.lines() {
            out.extend_from_slice(line.text);
            out.extend_from_slice(line.ending);
        }
        out
    }

    /// Every line that maps `name` (ASCII case-insensitively), in file order.
    pub fn entries_for(&self, name: &str) -> Vec<Entry> {
        Scan::of(self.bytes, name).entries_mapping(name)
    }

    /// What `hosts list` shows: see [`Entry::is_wott`].
    pub fn wott_entries(&self) -> Vec<Entry> {
        Scan::of(self.bytes, WOTT_WORD).wott_entries()
    }

    /// The edit `hosts add` makes to these bytes ([`Plan::apply`] gives the
    /// result). The command streams the file instead; the plan is the same.
    pub fn plan_add(&self, name: &DeviceId, ip: IpAddr) -> Plan {
        plan_add(&Scan::of(self.bytes, name.as_str()), name, ip)
    }

    /// The edit `hosts remove` makes to these bytes.
    pub fn plan_remove(&self, name: &DeviceId) -> Plan {
        plan_remove(&Scan::of(self.bytes, name.as_str()), name.as_str())
    }
}

/// For `fuzz/`: the plans as the commands make them, from a stream read
/// `chunk` bytes at a time, so the fuzzer reaches the scanner's chunk
/// boundaries with small inputs. Always compiled, so it cannot rot unseen.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    pub fn plan_add_chunked(bytes: &[u8], name: &DeviceId, ip: IpAddr, chunk: usize) -> Plan {
        let scan = Scan::read_chunked(bytes, name.as_str(), chunk.max(1)).unwrap_or_default();
        plan_add(&scan, name, ip)
    }

    pub fn plan_remove_chunked(bytes: &[u8], name: &DeviceId, chunk: usize) -> Plan {
        let scan = Scan::read_chunked(bytes, name.as_str(), chunk.max(1)).unwrap_or_default();
        plan_remove(&scan, name.as_str())
    }

    /// What `hosts list` shows, scanned in chunks.
    pub fn wott_entries_chunked(bytes: &[u8], chunk: usize) -> Vec<Entry> {
        Scan::read_chunked(bytes, WOTT_WORD, chunk.max(1))
            .unwrap_or_default()
            .wott_entries()
    }
}

/// Every line `list` shows contains this (in `# wott-mqtt` or `.d.wott.local`).
const WOTT_WORD: &str = "wott";

/// How much of the file is read, lower-cased and searched at a time.
const SCAN_CHUNK: usize = 128 * 1024;

/// One pass over a hosts file: the lines that contain a word (ASCII
/// case-insensitively), and what an edit needs to know about the rest.
///
/// A line that maps a name contains it, so only these lines need parsing;
/// everything else is counted, not kept. The file is read in chunks, so
/// memory does not grow with its size.
#[derive(Debug, Clone, Default)]
struct Scan {
    /// Size in bytes.
    len: u64,
    newlines: usize,
    last_byte: Option<u8>,
    /// Whether the file's last line ending is CRLF.
    crlf: bool,
    found: Vec<Found>,
}

/// A line that contains the word.
#[derive(Debug, Clone)]
struct Found {
    number: usize,
    offset: u64,
    text: Vec<u8>,
    ending_len: u64,
    /// Length of the previous line's ending: 0 for the first line.
    before_len: u64,
}

impl Scan {
    fn read(reader: impl Read, word: &str) -> io::Result<Scan> {
        Scan::read_chunked(reader, word, SCAN_CHUNK)
    }

    /// Bytes in memory cannot fail to read.
    fn of(bytes: &[u8], word: &str) -> Scan {
        Scan::read(bytes, word).unwrap_or_default()
    }

    fn read_chunked(mut reader: impl Read, word: &str, chunk: usize) -> io::Result<Scan> {
        let word = word.to_ascii_lowercase();
        let search = Search {
            finder: memmem::Finder::new(word.as_bytes()).into_owned(),
            enabled: !word.is_empty(),
        };
        let mut scan = Scan::default();
        let mut buf: Vec<u8> = Vec::with_capacity(chunk);
        let mut lowered: Vec<u8> = Vec::with_capacity(chunk);
        // The two bytes before buf[0], for the ending of the line before a hit.
        let mut before: [Option<u8>; 2] = [None, None];
        loop {
            let start = buf.len();
            buf.resize(start + chunk, 0);
            let read = loop {
                match reader.read(&mut buf[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            buf.truncate(start + read);
            let eof = read == 0;
            // Only whole lines are searched; a partial last line waits for more.
            let end = if eof {
                buf.len()
            } else {
                match memchr::memrchr(b'\n', &buf) {
                    Some(i) => i + 1,
                    None => continue,
                }
            };
            if end > 0 {
                scan.region(&buf[..end], before, &search, &mut lowered);
                before = match end {
                    1 => [before[1], Some(buf[0])],
                    _ => [Some(buf[end - 2]), Some(buf[end - 1])],
                };
                scan.len += end as u64;
                buf.drain(..end);
            }
            if eof {
                return Ok(scan);
            }
        }
    }

    /// Searches whole lines `region`, which starts at `self.len` in the file.
    fn region(
        &mut self,
        region: &[u8],
        before: [Option<u8>; 2],
        search: &Search,
        lowered: &mut Vec<u8>,
    ) {
        let byte_before = |i: usize, back: usize| -> Option<u8> {
            match i.checked_sub(back) {
                Some(j) => Some(region[j]),
                None => before[2 - (back - i)],
            }
        };
        let mut counted_to = 0;
        if search.enabled {
            lowered.clear();
            lowered.extend_from_slice(region);
            lowered.make_ascii_lowercase();
            let mut from = 0;
            while let Some(hit) = search.finder.find(&lowered[from..]) {
                let hit = from + hit;
                let start = memchr::memrchr(b'\n', &region[..hit]).map_or(0, |i| i + 1);
                self.newlines += memchr::memchr_iter(b'\n', &region[counted_to..start]).count();
                counted_to = start;
                let mut lines = Lines {
                    bytes: region,
                    pos: start,
                    number: self.newlines,
                };
                let Some(line) = lines.next() else { break };
                let offset = self.len + start as u64;
                let before_len = match (byte_before(start, 2), byte_before(start, 1)) {
                    _ if offset == 0 => 0,
                    (Some(b'\r'), Some(b'\n')) => 2,
                    _ => 1,
                };
                self.found.push(Found {
                    number: line.number,
                    offset,
                    text: line.text.to_vec(),
                    ending_len: line.ending.len() as u64,
                    before_len,
                });
                from = lines.pos;
                if from >= region.len() {
                    break;
                }
            }
        }
        self.newlines += memchr::memchr_iter(b'\n', &region[counted_to..]).count();
        if let Some(i) = memchr::memrchr(b'\n', region) {
            self.crlf = if i > 0 {
                region[i - 1] == b'\r'
            } else {
                before[1] == Some(b'\r')
            };
        }
        if let Some(last) = region.last() {
            self.last_byte = Some(*last);
        }
    }

    fn line_count(&self) -> usize {
        self.newlines + usize::from(self.len > 0 && self.last_byte != Some(b'\n'))
    }

    /// The found lines that map names.
    fn mappings(&self) -> impl Iterator<Item = Mapping> + '_ {
        self.found.iter().filter_map(|found| {
            parse_entry(&found.text).map(|parsed| Mapping {
                number: found.number,
                offset: found.offset,
                text_len: found.text.len() as u64,
                ending_len: found.ending_len,
                before_len: found.before_len,
                parsed,
            })
        })
    }

    /// The mappings of `name`, which must contain the scanned word.
    fn mappings_of<'s>(&'s self, name: &'s str) -> impl Iterator<Item = Mapping> + 's {
        self.mappings().filter(move |m| {
            m.parsed
                .names
                .iter()
                .any(|n| n.text.eq_ignore_ascii_case(name))
        })
    }

    fn entries_mapping(&self, name: &str) -> Vec<Entry> {
        self.mappings_of(name).map(|m| m.entry()).collect()
    }

    fn wott_entries(&self) -> Vec<Entry> {
        self.mappings()
            .map(|m| m.entry())
            .filter(Entry::is_wott)
            .collect()
    }
}

#[derive(Debug)]
struct Search {
    finder: memmem::Finder<'static>,
    enabled: bool,
}

/// A mapping line where it is in the file, with its tokens' spans.
#[derive(Debug, Clone)]
struct Mapping {
    number: usize,
    offset: u64,
    text_len: u64,
    ending_len: u64,
    before_len: u64,
    parsed: Parsed,
}

/// What one line maps, with byte spans relative to the line.
#[derive(Debug, Clone)]
struct Parsed {
    ip: IpAddr,
    ip_span: Range<usize>,
    names: Vec<Token>,
    managed: bool,
}

#[derive(Debug, Clone)]
struct Token {
    text: String,
    span: Range<usize>,
}

impl Parsed {
    fn entry(&self, number: usize) -> Entry {
        Entry {
            line: number,
            ip: self.ip,
            names: self.names.iter().map(|n| n.text.clone()).collect(),
            managed: self.managed,
        }
    }
}

impl Mapping {
    fn entry(&self) -> Entry {
        self.parsed.entry(self.number)
    }

    fn absolute(&self, span: &Range<usize>) -> Range<u64> {
        self.offset + span.start as u64..self.offset + span.end as u64
    }

    fn end(&self) -> u64 {
        self.offset + self.text_len + self.ending_len
    }

    fn other_names(&self, name: &str) -> Vec<String> {
        self.parsed
            .names
            .iter()
            .filter(|n| !n.text.eq_ignore_ascii_case(name))
            .map(|n| n.text.clone())
            .collect()
    }
}

/// The line as text of the same byte length: invalid UTF-8 bytes become `?`
/// (never whitespace or `#`), so token offsets are byte offsets.
fn text_of(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => {
            let mut text = String::with_capacity(bytes.len());
            for chunk in bytes.utf8_chunks() {
                text.push_str(chunk.valid());
                text.extend(std::iter::repeat_n('?', chunk.invalid().len()));
            }
            Cow::Owned(text)
        }
    }
}

/// Reads one line with hosts-parser. `None` for blank lines, comments, lines it
/// cannot parse, and lines the resolver ignores (the address is not an IP).
fn parse_entry(line: &[u8]) -> Option<Parsed> {
    let text = text_of(line);
    let parsed = HostsFileLine::from_string(&text).ok()?;
    let ip_text = parsed.ip()?;
    let ip: IpAddr = ip_text.parse().ok()?;
    // hosts-parser splits on whitespace in order, so each token is the next
    // occurrence of its text after the previous one.
    let mut cursor = 0;
    let mut locate = |token: &str| -> Option<Range<usize>> {
        let at = cursor + text[cursor..].find(token)?;
        cursor = at + token.len();
        Some(at..cursor)
    };
    let ip_span = locate(&ip_text)?;
    let mut names = Vec::new();
    for host in parsed.hosts() {
        let span = locate(&host)?;
        // glibc ends the line at a `#` anywhere, even inside a word.
        if let Some(hash) = host.find('#') {
            if hash > 0 {
                names.push(Token {
                    text: host[..hash].to_string(),
                    span: span.start..span.start + hash,
                });
            }
            break;
        }
        names.push(Token { text: host, span });
    }
    if names.is_empty() {
        return None;
    }
    let mut words = text.split_whitespace().rev();
    let managed = words.next() == Some(MARKER) && words.next() == Some("#");
    Some(Parsed {
        ip,
        ip_span,
        names,
        managed,
    })
}

/// What an edit did to one line. Line numbers are those of the file before
/// the edit, except for `appended`, which is the new line's number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// A new managed line at the end of the file.
    Appended { line: usize },
    /// A managed line's address changed in place.
    Updated { line: usize, old_ip: IpAddr },
    /// A line that mapped only this name got the new address and the marker.
    Adopted { line: usize, old_ip: IpAddr },
    /// The name was taken off a line whose other names stay as they were.
    NameRemoved {
        line: usize,
        ip: IpAddr,
        kept: Vec<String>,
    },
    /// A line that mapped only this name was deleted.
    LineRemoved {
        line: usize,
        ip: IpAddr,
        managed: bool,
    },
}

#[derive(Debug, Clone)]
struct Patch {
    range: Range<u64>,
    with: String,
    /// For a deleted line: the length of the ending before it.
    before_len: Option<u64>,
}

/// An edit of a hosts file: byte-range patches plus what they mean.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    patches: Vec<Patch>,
    pub actions: Vec<Action>,
    /// The lines that mapped the name before the edit.
    pub before: Vec<Entry>,
    /// Lines that still map the name and were deliberately left alone
    /// (`remove` touches only managed lines).
    pub left: Vec<Entry>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.patches.is_empty()
    }

    /// The new content of a file of `len` bytes: its unchanged ranges and
    /// the new bytes between them.
    fn pieces(&self, len: u64) -> Vec<Piece> {
        let mut patches: Vec<&Patch> = self.patches.iter().collect();
        patches.sort_by_key(|p| (p.range.start, p.range.end));
        let mut pieces = Vec::with_capacity(patches.len() * 2 + 1);
        let mut at = 0;
        for patch in patches {
            debug_assert!(patch.range.start >= at, "overlapping patches");
            pieces.push(Piece::Old(at..patch.range.start.max(at)));
            pieces.push(Piece::New(patch.with.clone().into_bytes()));
            at = patch.range.end.max(at);
        }
        pieces.push(Piece::Old(at..len));
        pieces
    }

    /// The edited bytes, for content already in memory.
    pub fn apply(&self, original: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(original.len());
        for piece in self.pieces(original.len() as u64) {
            match piece {
                Piece::Old(range) => {
                    out.extend_from_slice(&original[range.start as usize..range.end as usize]);
                }
                Piece::New(bytes) => out.extend_from_slice(&bytes),
            }
        }
        out
    }

    fn replace(&mut self, range: Range<u64>, with: impl Into<String>) {
        self.patches.push(Patch {
            range,
            with: with.into(),
            before_len: None,
        });
    }

    /// Deletes a whole line. A last line without an ending takes the ending
    /// of the last line kept before it, so the file keeps having no final
    /// newline. Lines are deleted in file order, so the lines deleted just
    /// before this one are already patches ending where it starts.
    fn delete_line(&mut self, m: &Mapping) {
        let (mut start, mut before_len) = (m.offset, m.before_len);
        if m.ending_len == 0 {
            while let Some(i) = self.patches.iter().position(|p| {
                p.before_len.is_some() && p.range.end == start && p.range.start < start
            }) {
                let merged = self.patches.swap_remove(i);
                start = merged.range.start;
                before_len = merged.before_len.unwrap_or(0);
            }
            start -= before_len;
        }
        self.patches.push(Patch {
            range: start..m.end(),
            with: String::new(),
            before_len: Some(before_len),
        });
    }

    /// Takes `name` off a mapping line: the whole line when it maps nothing
    /// else, otherwise just the word and one run of whitespace next to it.
    fn remove_name(&mut self, m: &Mapping, name: &str) {
        let kept = m.other_names(name);
        if kept.is_empty() {
            self.delete_line(m);
            self.actions.push(Action::LineRemoved {
                line: m.number,
                ip: m.parsed.ip,
                managed: m.parsed.managed,
            });
            return;
        }
        let names = &m.parsed.names;
        let is_ours = |t: &Token| t.text.eq_ignore_ascii_case(name);
        for (i, token) in names.iter().enumerate() {
            if !is_ours(token) {
                continue;
            }
            let range = if names[i + 1..].iter().any(|t| !is_ours(t)) {
                // A kept name follows: drop the word and the space after it.
                token.span.start..names[i + 1].span.start
            } else {
                // The last kept word comes before it: drop the space before it and the word.
                let previous_end = if i == 0 {
                    m.parsed.ip_span.end
                } else {
                    names[i - 1].span.end
                };
                previous_end..token.span.end
            };
            self.replace(m.absolute(&range), "");
        }
        self.actions.push(Action::NameRemoved {
            line: m.number,
            ip: m.parsed.ip,
            kept,
        });
    }

    fn append(&mut self, scan: &Scan, line: &str) {
        let eol = if scan.crlf { "\r\n" } else { "\n" };
        let with = match scan.last_byte {
            None | Some(b'\n') => format!("{line}{eol}"),
            // A bare CR would pair with our LF into one CRLF ending, which
            // `remove` would then take away whole.
            Some(b'\r') => format!("\r\n{line}"),
            // Keep the file's style: no newline at the very end.
            Some(_) => format!("{eol}{line}"),
        };
        self.replace(scan.len..scan.len, with);
        self.actions.push(Action::Appended {
            line: scan.line_count() + 1,
        });
    }
}

/// The line `add` writes.
pub fn managed_line(name: &DeviceId, ip: IpAddr) -> String {
    format!("{ip} {name} # {MARKER}")
}

/// Maps `name` to `ip` and nothing else, changing as little as possible.
/// `scan` must have searched for `name`.
///
/// - Every line already maps it to `ip`: nothing changes.
/// - A managed line maps it alone: that line's address is replaced in place.
/// - Else a line already maps it to `ip`: that line stays.
/// - Else a line maps it alone: it gets the new address and the marker.
/// - Else a managed line is appended.
///
/// Every other line that maps the name loses it; its other names stay as they
/// were, and a line left with no name is deleted.
fn plan_add(scan: &Scan, name: &DeviceId, ip: IpAddr) -> Plan {
    let found: Vec<Mapping> = scan.mappings_of(name.as_str()).collect();
    let mut plan = Plan {
        before: found.iter().map(Mapping::entry).collect(),
        ..Plan::default()
    };
    if !found.is_empty() && found.iter().all(|m| m.parsed.ip == ip) {
        return plan;
    }
    let only_ours = |m: &Mapping| m.other_names(name.as_str()).is_empty();
    let keeper = found
        .iter()
        .position(|m| m.parsed.managed && only_ours(m))
        .or_else(|| found.iter().position(|m| m.parsed.ip == ip))
        .or_else(|| found.iter().position(only_ours));
    for (i, m) in found.iter().enumerate() {
        if Some(i) != keeper {
            plan.remove_name(m, name.as_str());
            continue;
        }
        if m.parsed.ip == ip {
            continue;
        }
        plan.replace(m.absolute(&m.parsed.ip_span), ip.to_string());
        if m.parsed.managed {
            plan.actions.push(Action::Updated {
                line: m.number,
                old_ip: m.parsed.ip,
            });
        } else {
            let end = m.offset + m.text_len;
            plan.replace(end..end, format!(" # {MARKER}"));
            plan.actions.push(Action::Adopted {
                line: m.number,
                old_ip: m.parsed.ip,
            });
        }
    }
    if keeper.is_none() {
        plan.append(scan, &managed_line(name, ip));
    }
    plan
}

/// Deletes the managed lines that map `name` (only the name, when a managed
/// line also maps others). Lines this tool did not write are left alone and
/// reported in [`Plan::left`]. `scan` must have searched for `name`.
fn plan_remove(scan: &Scan, name: &str) -> Plan {
    let mut plan = Plan::default();
    for m in scan.mappings_of(name) {
        plan.before.push(m.entry());
        if m.parsed.managed {
            plan.remove_name(&m, name);
        } else {
            plan.left.push(m.entry());
        }
    }
    plan
}

/// An edit of a hosts file on disk.
#[derive(Debug)]
pub struct Change {
    pub edit: PieceEdit,
    pub plan: Plan,
}

/// `hosts add`: maps `name` to `ip` in the file at `path`, under the lock,
/// atomically, streaming the file (see [`plan_add`] for the rules). Creates
/// the file if needed.
pub fn add(path: &Path, name: &DeviceId, ip: IpAddr, dry_run: bool) -> Result<Change, HostsError> {
    if is_reserved(name.as_str()) {
        return Err(HostsError::ReservedName {
            name: name.to_string(),
        });
    }
    edit(path, dry_run, name.as_str(), |scan| {
        plan_add(scan, name, ip)
    })
}

/// `hosts remove`: deletes the managed lines for `name` (see [`plan_remove`]).
/// A missing file has nothing to remove and is not created.
pub fn remove(path: &Path, name: &DeviceId, dry_run: bool) -> Result<Change, HostsError> {
    if std::fs::metadata(path).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        return Ok(Change {
            edit: PieceEdit {
                path: path.to_path_buf(),
                changed: false,
                method: None,
                diff: dry_run.then(String::new),
            },
            plan: Plan::default(),
        });
    }
    edit(path, dry_run, name.as_str(), |scan| {
        plan_remove(scan, name.as_str())
    })
}

fn edit(
    path: &Path,
    dry_run: bool,
    word: &str,
    plan: impl FnOnce(&Scan) -> Plan,
) -> Result<Change, HostsError> {
    let mut planned = Plan::default();
    let edit = files::update_pieces(
        path,
        UpdateOptions {
            dry_run,
            new_mode: NEW_FILE_MODE,
        },
        |old| -> Result<Vec<Piece>, HostsError> {
            let scan = match old {
                Some(file) => Scan::read(file, word).map_err(|source| FileError::Read {
                    path: path.to_path_buf(),
                    source,
                })?,
                None => Scan::default(),
            };
            planned = plan(&scan);
            Ok(planned.pieces(scan.len))
        },
    )?;
    Ok(Change {
        edit,
        plan: planned,
    })
}

/// Streams the file at `path` looking for `word`; `None` when it does not exist.
fn scan_file(path: &Path, word: &str) -> Result<Option<Scan>, FileError> {
    let Some(file) = files::open_optional(path)? else {
        return Ok(None);
    };
    Scan::read(&file, word)
        .map(Some)
        .map_err(|source| FileError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// The addresses the file at `path` maps `name` to, distinct, in file order.
/// A missing file maps nothing.
pub fn lookup(path: &Path, name: &str) -> Result<Vec<IpAddr>, FileError> {
    let mut ips = Vec::new();
    for entry in entries_for(path, name)? {
        if !ips.contains(&entry.ip) {
            ips.push(entry.ip);
        }
    }
    Ok(ips)
}

/// The lines of the file at `path` that map `name`. A missing file maps nothing.
pub fn entries_for(path: &Path, name: &str) -> Result<Vec<Entry>, FileError> {
    Ok(scan_file(path, name)?
        .map(|scan| scan.entries_mapping(name))
        .unwrap_or_default())
}

/// `hosts list`: the managed lines and the `*.d.wott.local` mappings of the
/// file at `path`, or `None` when it does not exist.
pub fn list(path: &Path) -> Result<Option<Vec<Entry>>, FileError> {
    Ok(scan_file(path, WOTT_WORD)?.map(|scan| scan.wott_entries()))
}

/// What the system resolver (getaddrinfo, as every client on the machine
/// uses it) returns for `name`: distinct addresses in its order.
pub fn system_lookup(name: &str) -> io::Result<Vec<IpAddr>> {
    let mut ips = Vec::new();
    for addr in (name, 0).to_socket_addrs()? {
        if !ips.contains(&addr.ip()) {
            ips.push(addr.ip());
        }
    }
    Ok(ips)
}

/// Whether `path` is the file the system resolver reads.
pub fn is_system_hosts_file(path: &Path) -> bool {
    let system = Path::new(DEFAULT_HOSTS_FILE);
    path == system
        || matches!(
            (std::fs::canonicalize(path), std::fs::canonicalize(system)),
            (Ok(a), Ok(b)) if a == b
        )
}

/// `a, b and c`.
pub fn join_ips(ips: &[IpAddr]) -> String {
    let mut s = String::new();
    for (i, ip) in ips.iter().enumerate() {
        if i > 0 {
            s.push_str(if i + 1 == ips.len() { " and " } else { ", " });
        }
        let _ = write!(s, "{ip}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(s: &str) -> DeviceId {
        DeviceId::new(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn add(text: &str, name: &str, addr: &str) -> (String, Plan) {
        let plan = plan_add(&Scan::of(text.as_bytes(), name), &id(name), ip(addr));
        (
            String::from_utf8(plan.apply(text.as_bytes())).unwrap(),
            plan,
        )
    }

    fn remove(text: &str, name: &str) -> (String, Plan) {
        let plan = plan_remove(&Scan::of(text.as_bytes(), name), name);
        (
            String::from_utf8(plan.apply(text.as_bytes())).unwrap(),
            plan,
        )
    }

    #[test]
    fn lines_keep_their_endings() {
        let doc = Document::parse(b"a\r\n\tb\n\nc");
        let lines: Vec<_> = doc.lines().map(|l| (l.text, l.ending)).collect();
        assert_eq!(
            lines,
            [
                (&b"a"[..], &b"\r\n"[..]),
                (b"\tb", b"\n"),
                (b"", b"\n"),
                (b"c", b"")
            ]
        );
        assert_eq!(Scan::of(doc.bytes(), "x").line_count(), 4);
    }

    #[test]
    fn names_compare_like_glibc() {
        let doc = Document::parse(
            b"10.0.0.1 Broker.Example # broker\n\
              10.0.0.2 other#broker broker\n\
              not-an-ip broker\n\
              10.0.0.3\n\
              # 10.0.0.4 broker\n\
              10.0.0.5\tx\tBROKER # wott-mqtt\n",
        );
        let entries = doc.entries_for("broker");
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].ip, ip("10.0.0.5"));
        assert!(entries[0].managed);
        assert_eq!(doc.entries_for("broker.example")[0].line, 1);
        assert_eq!(doc.entries_for("other")[0].names, ["other"]);
    }

    #[test]
    fn add_appends_in_the_files_style() {
        let (out, plan) = add("a b\n", "s.d.wott.local", "10.0.0.9");
        assert_eq!(out, "a b\n10.0.0.9 s.d.wott.local # wott-mqtt\n");
        assert_eq!(plan.actions, [Action::Appended { line: 2 }]);
        let (out, _) = add("x\r\ny", "s", "10.0.0.9");
        assert_eq!(out, "x\r\ny\r\n10.0.0.9 s # wott-mqtt");
        let (out, _) = add("", "s", "fd00::1");
        assert_eq!(out, "fd00::1 s # wott-mqtt\n");
    }

    #[test]
    fn same_ip_changes_nothing_even_on_a_hand_written_line() {
        let text = "10.0.0.9   s  # mine\n";
        let (out, plan) = add(text, "s", "10.0.0.9");
        assert_eq!(out, text);
        assert!(plan.is_empty());
        assert_eq!(plan.before.len(), 1);
    }

    #[test]
    fn a_managed_line_is_updated_in_place() {
        let (out, plan) = add("a\n10.0.0.1 s # wott-mqtt\nb\n", "s", "10.0.0.2");
        assert_eq!(out, "a\n10.0.0.2 s # wott-mqtt\nb\n");
        assert_eq!(
            plan.actions,
            [Action::Updated {
                line: 2,
                old_ip: ip("10.0.0.1")
            }]
        );
    }

    #[test]
    fn aliases_on_a_foreign_line_stay_where_they_were() {
        for (before, after) in [
            ("10.0.0.1\tmqtt s nas\n", "10.0.0.1\tmqtt nas\n"),
            ("10.0.0.1\ts mqtt\n", "10.0.0.1\tmqtt\n"),
            ("10.0.0.1 mqtt\tS # c\n", "10.0.0.1 mqtt # c\n"),
            ("10.0.0.1 a s s b\n", "10.0.0.1 a b\n"),
            ("10.0.0.1 a s s\n", "10.0.0.1 a\n"),
        ] {
            let (out, _) = add(before, "s", "10.0.0.2");
            assert_eq!(
                out,
                format!("{after}10.0.0.2 s # wott-mqtt\n"),
                "{before:?}"
            );
        }
    }

    #[test]
    fn a_line_mapping_only_the_name_is_adopted() {
        let (out, plan) = add("10.0.0.1  s\t# office\n", "s", "10.0.0.2");
        assert_eq!(out, "10.0.0.2  s\t# office # wott-mqtt\n");
        assert!(matches!(
            plan.actions[..],
            [Action::Adopted { line: 1, .. }]
        ));
        // Now managed: the next change updates it in place.
        let (again, _) = add(&out, "s", "10.0.0.3");
        assert_eq!(again, "10.0.0.3  s\t# office # wott-mqtt\n");
    }

    #[test]
    fn duplicates_collapse_to_one_line() {
        let text = "10.0.0.1 s\n10.0.0.2 s # wott-mqtt\n10.0.0.3 s x\nfd00::1 s\n";
        let (out, _) = add(text, "s", "10.0.0.4");
        assert_eq!(out, "10.0.0.4 s # wott-mqtt\n10.0.0.3 x\n");
        let doc = Document::parse(out.as_bytes());
        assert_eq!(doc.entries_for("s").len(), 1);
    }

    #[test]
    fn deleting_the_last_lines_keeps_a_missing_final_newline() {
        let (out, _) = add("10.0.0.1 s\n10.0.0.1 s\n10.0.0.1 s", "s", "10.0.0.2");
        assert_eq!(out, "10.0.0.2 s # wott-mqtt");
        // A bare CR at the end must not merge with the new line's LF.
        let (out, _) = add("\r", "s", "10.0.0.2");
        assert_eq!(remove(&out, "s").0, "\r");
    }

    #[test]
    fn remove_deletes_only_managed_lines() {
        let text = "10.0.0.1 s # wott-mqtt\n10.0.0.2 s x\n";
        let (out, plan) = remove(text, "s");
        assert_eq!(out, "10.0.0.2 s x\n");
        assert_eq!(plan.left.len(), 1);
        let (out, _) = remove("a\n10.0.0.1 s # wott-mqtt", "s");
        assert_eq!(out, "a");
        let (out, _) = remove("10.0.0.1 s # wott-mqtt", "s");
        assert_eq!(out, "");
    }

    #[test]
    fn wott_entries_are_managed_or_in_the_wott_domain() {
        let doc = Document::parse(
            b"10.0.0.1 a.d.wott.local\n10.0.0.2 b # wott-mqtt\n10.0.0.3 wott\n10.0.0.4 d.wott.local\n",
        );
        let lines: Vec<usize> = doc.wott_entries().iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 2]);
    }

    #[test]
    fn server_ips_are_checked() {
        let ok = |s: &str| parse_server_ip(OsStr::new(s)).unwrap();
        assert_eq!(ok("192.168.1.20"), ip("192.168.1.20"));
        assert_eq!(ok("fd00::20"), ip("fd00::20"));
        for bad in [
            "",
            "1.2.3",
            "256.1.1.1",
            " 10.0.0.1",
            "10.0.0.1\n",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "fe80::1%eth0",
            "example.com",
        ] {
            assert!(parse_server_ip(OsStr::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn loopback_names_are_reserved() {
        assert!(is_reserved("LOCALHOST"));
        assert!(is_reserved("a.localhost"));
        assert!(!is_reserved("localhost.d.wott.local"));
    }

    /// Lines of the kinds real hosts files have, as raw bytes: mappings with
    /// names the tests look for, comments, markers, junk.
    fn hosts_line() -> impl Strategy<Value = Vec<u8>> {
        let ip = prop::sample::select(vec![
            "10.0.0.1",
            "10.0.0.9",
            "::1",
            "fd00::1",
            "fe80::1%lo0",
            "not-an-ip",
            "192.168.1.1",
        ]);
        let name = prop::sample::select(vec![
            "s",
            "S",
            "s#x",
            "other",
            "localhost",
            "ip6-localhost",
            "s.d.wott.local",
            "X.D.WOTT.LOCAL",
            "wott-mqtt",
        ]);
        let space = prop::sample::select(vec![" ", "\t", "  ", " \t"]);
        let comment = prop::sample::select(vec![
            "",
            " # c",
            " # wott-mqtt",
            "\t#wott-mqtt",
            " # note # wott-mqtt",
            "  ",
        ]);
        let mapping = (
            prop::sample::select(vec!["", " ", "\t"]),
            ip,
            prop::collection::vec((space, name), 0..4),
            comment,
        )
            .prop_map(|(indent, ip, names, comment)| {
                let mut line = format!("{indent}{ip}");
                for (space, name) in names {
                    line.push_str(space);
                    line.push_str(name);
                }
                line.push_str(comment);
                line.into_bytes()
            });
        prop_oneof![
            4 => mapping,
            1 => Just(b"# comment \xc3\xa9\xf0\x9f\x98\x80".to_vec()),
            1 => Just(b"10.0.0.2 s caf\xe9 other".to_vec()),
            1 => Just(b"\xff\xfe garbage \x00".to_vec()),
            1 => Just(Vec::new()),
            1 => proptest::collection::vec(any::<u8>(), 0..20),
        ]
    }

    fn hosts_file() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec((hosts_line(), prop_oneof![Just("\n"), Just("\r\n")]), 0..12),
            any::<bool>(),
        )
            .prop_map(|(lines, final_newline)| {
                let mut out = Vec::new();
                let count = lines.len();
                for (i, (line, eol)) in lines.into_iter().enumerate() {
                    out.extend_from_slice(&line);
                    if i + 1 < count || final_newline {
                        out.extend_from_slice(eol.as_bytes());
                    }
                }
                out
            })
    }

    proptest! {
        #[test]
        fn parse_then_render_is_the_identity(bytes in hosts_file()) {
            prop_assert_eq!(Document::parse(&bytes).render(), bytes);
        }

        #[test]
        fn arbitrary_bytes_render_back_too(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let doc = Document::parse(&bytes);
            prop_assert_eq!(doc.render(), bytes.clone());
            for line in doc.lines() {
                let _ = line.entry();
            }
        }

        #[test]
        fn the_search_finds_what_parsing_every_line_finds(bytes in hosts_file(), name in "[sS]|localhost|s\\.d\\.wott\\.local|wott-mqtt|other|caf") {
            let doc = Document::parse(&bytes);
            let everything: Vec<Entry> = doc
                .lines()
                .filter_map(|l| l.entry())
                .filter(|e| e.maps(&name))
                .collect();
            prop_assert_eq!(doc.entries_for(&name), everything);
        }

        #[test]
        fn scanning_in_small_chunks_finds_the_same_lines(bytes in hosts_file(), chunk in 1usize..9, word in "s|wott|localhost|\\?") {
            let whole = Scan::of(&bytes, &word);
            let chunked = Scan::read_chunked(&bytes[..], &word, chunk).unwrap();
            let doc = Document::parse(&bytes);
            let lines: Vec<Line<'_>> = doc.lines().collect();
            prop_assert_eq!(whole.len, bytes.len() as u64);
            prop_assert_eq!(whole.line_count(), lines.len());
            prop_assert_eq!(whole.last_byte, bytes.last().copied());
            let crlf = lines.iter().rev().find(|l| !l.ending.is_empty()).is_some_and(|l| l.ending == b"\r\n");
            prop_assert_eq!(whole.crlf, crlf);
            for scan in [&whole, &chunked] {
                prop_assert_eq!(scan.len, whole.len);
                prop_assert_eq!(scan.line_count(), whole.line_count());
                prop_assert_eq!(scan.crlf, whole.crlf);
                let expected: Vec<usize> = lines
                    .iter()
                    .filter(|l| l.text.to_ascii_lowercase().windows(word.len()).any(|w| w == word.as_bytes()))
                    .map(|l| l.number)
                    .collect();
                let numbers: Vec<usize> = scan.found.iter().map(|f| f.number).collect();
                prop_assert_eq!(numbers, expected);
                for found in &scan.found {
                    let line = lines[found.number - 1];
                    prop_assert_eq!(found.offset, line.offset as u64);
                    prop_assert_eq!(&found.text[..], line.text);
                    prop_assert_eq!(found.ending_len, line.ending.len() as u64);
                    let before = if found.number == 1 { 0 } else { lines[found.number - 2].ending.len() as u64 };
                    prop_assert_eq!(found.before_len, before);
                }
            }
        }

        #[test]
        fn add_then_remove_gives_back_the_original(bytes in hosts_file(), addr in (1..=u32::MAX).prop_map(std::net::Ipv4Addr::from)) {
            let name = id("new-server.d.wott.local");
            let added = plan_add(&Scan::of(&bytes, name.as_str()), &name, IpAddr::V4(addr)).apply(&bytes);
            prop_assert!(added.starts_with(&bytes), "only an append");
            let after = Scan::of(&added, name.as_str());
            prop_assert_eq!(after.entries_mapping(name.as_str()).len(), 1);
            let again = plan_add(&after, &name, IpAddr::V4(addr));
            prop_assert!(again.is_empty());
            let removed = plan_remove(&after, name.as_str()).apply(&added);
            prop_assert_eq!(removed, bytes);
        }

        #[test]
        fn after_add_the_name_maps_to_one_ip_on_one_line(bytes in hosts_file(), last in 1u8..=9) {
            let target = IpAddr::from([10, 0, 0, last]);
            let doc = Document::parse(&bytes);
            let plan = plan_add(&Scan::of(&bytes, "s"), &id("s"), target);
            let out = plan.apply(&bytes);
            let after = Document::parse(&out);
            let entries = after.entries_for("s");
            prop_assert!(entries.iter().all(|e| e.ip == target), "{:?}", entries);
            prop_assert!(!entries.is_empty());
            if !plan.is_empty() {
                prop_assert_eq!(entries.len(), 1);
            }
            // Every other name keeps its addresses.
            for other in ["localhost", "other", "ip6-localhost"] {
                let before: Vec<IpAddr> = doc.entries_for(other).iter().map(|e| e.ip).collect();
                let now: Vec<IpAddr> = after.entries_for(other).iter().map(|e| e.ip).collect();
                prop_assert_eq!(before, now);
            }
        }
    }

    #[test]
    fn a_large_file_is_searched_across_chunks() {
        let mut text = String::new();
        for i in 0..20_000 {
            let _ = writeln!(text, "0.0.0.0 ad{i:05}.example.com");
        }
        text.push_str("10.0.0.1 S.d.wott.local\n");
        for i in 0..20_000 {
            let _ = writeln!(text, "0.0.0.0 tr{i:05}.example.com");
        }
        let doc = Document::parse(text.as_bytes());
        let entries = doc.entries_for("s.d.wott.local");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].line, 20_001);
        assert_eq!(doc.entries_for("tr19999.example.com")[0].line, 40_001);
        assert_eq!(doc.entries_for("ad00000.example.com")[0].line, 1);
    }
}
