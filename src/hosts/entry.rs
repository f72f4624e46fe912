//! What one hosts line maps, read the way glibc's `files` backend reads it.
//!
//! `hosts-parser` splits the line; this module adds what the resolver does
//! and the parser does not: a `#` anywhere ends the line (even inside a
//! word), a line whose address is not an IP maps nothing, and names compare
//! ASCII case-insensitively. It also keeps each token's byte span, so an
//! edit can take one name off a line and leave every other byte.

use std::borrow::Cow;
use std::net::IpAddr;
use std::ops::Range;

use hosts_parser::HostsFileLine;
use serde::Serialize;

use super::MARKER;
use crate::names::WOTT_DOMAIN;

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

/// What one line maps, with byte spans relative to the line.
#[derive(Debug, Clone)]
pub(super) struct Parsed {
    pub ip: IpAddr,
    pub ip_span: Range<usize>,
    pub names: Vec<Token>,
    pub managed: bool,
}

/// A name on a line, and where it is.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub text: String,
    pub span: Range<usize>,
}

impl Parsed {
    pub fn entry(&self, number: usize) -> Entry {
        Entry {
            line: number,
            ip: self.ip,
            names: self.names.iter().map(|n| n.text.clone()).collect(),
            managed: self.managed,
        }
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

/// Reads one line (without its ending) with hosts-parser. `None` for blank
/// lines, comments, lines it cannot parse, and lines the resolver ignores
/// (the address is not an IP).
pub(super) fn parse(line: &[u8]) -> Option<Parsed> {
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

/// The mapping a line (without its ending) makes, if it makes one.
pub fn entry_of(number: usize, line: &[u8]) -> Option<Entry> {
    parse(line).map(|p| p.entry(number))
}
