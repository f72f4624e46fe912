//! One pass over a hosts file: the lines that contain a word.
//!
//! A line that maps a name contains it, so only the lines a
//! case-insensitive substring search finds need parsing; everything else is
//! only counted. The file comes through `lines::read` in chunks of whole
//! lines, so memory stays flat however large the file is, and the search
//! runs over a chunk's bytes, not line by line.

use std::io::{self, Read};

use memchr::memmem;

use super::Entry;
use super::entry::{self, Parsed};
use crate::lines::{self, LineSpan, Summary};

/// The lines that contain the word (ASCII case-insensitively), and the file
/// as a whole.
#[derive(Debug, Clone, Default)]
pub(super) struct Scan {
    pub file: Summary,
    pub hits: Vec<Hit>,
}

/// A line that contains the word.
#[derive(Debug, Clone)]
pub(super) struct Hit {
    pub number: usize,
    pub span: LineSpan,
    /// The line without its ending.
    pub text: Vec<u8>,
}

/// A line that maps names, where it is in the file.
#[derive(Debug, Clone)]
pub(super) struct Mapping {
    pub number: usize,
    pub span: LineSpan,
    pub text_len: u64,
    pub parsed: Parsed,
}

impl Mapping {
    pub fn entry(&self) -> Entry {
        self.parsed.entry(self.number)
    }

    /// A span of the line as a range of the file.
    pub fn absolute(&self, span: &std::ops::Range<usize>) -> std::ops::Range<u64> {
        self.span.start + span.start as u64..self.span.start + span.end as u64
    }

    /// Where the line's text ends in the file (before its ending).
    pub fn text_end(&self) -> u64 {
        self.span.start + self.text_len
    }

    pub fn other_names(&self, name: &str) -> Vec<String> {
        self.parsed
            .names
            .iter()
            .filter(|n| !n.text.eq_ignore_ascii_case(name))
            .map(|n| n.text.clone())
            .collect()
    }
}

impl Scan {
    pub fn read(reader: impl Read, word: &str) -> io::Result<Scan> {
        Scan::read_chunked(reader, word, lines::CHUNK)
    }

    /// Bytes in memory cannot fail to read.
    pub fn of(bytes: &[u8], word: &str) -> Scan {
        Scan::read(bytes, word).unwrap_or_default()
    }

    pub fn read_chunked(reader: impl Read, word: &str, chunk: usize) -> io::Result<Scan> {
        let word = word.to_ascii_lowercase();
        let finder = memmem::Finder::new(word.as_bytes());
        let mut hits = Vec::new();
        let mut lowered: Vec<u8> = Vec::new();
        let file = lines::read(reader, chunk, |whole| {
            if word.is_empty() {
                return true;
            }
            lowered.clear();
            lowered.extend_from_slice(whole.bytes);
            lowered.make_ascii_lowercase();
            let (mut from, mut counted_to, mut before) = (0, 0, whole.lines_before);
            while let Some(at) = finder.find(&lowered[from..]) {
                let at = from + at;
                let start = memchr::memrchr(b'\n', &whole.bytes[..at]).map_or(0, |i| i + 1);
                before += memchr::memchr_iter(b'\n', &whole.bytes[counted_to..start]).count();
                counted_to = start;
                let mut rest = whole.lines_from(start, before);
                let Some(line) = rest.next() else { break };
                hits.push(Hit {
                    number: line.number,
                    span: line.span(),
                    text: line.text().to_vec(),
                });
                from = rest.position();
                if from >= whole.bytes.len() {
                    break;
                }
            }
            true
        })?;
        Ok(Scan { file, hits })
    }

    /// The lines found that map names.
    pub fn mappings(&self) -> impl Iterator<Item = Mapping> + '_ {
        self.hits.iter().filter_map(|hit| {
            entry::parse(&hit.text).map(|parsed| Mapping {
                number: hit.number,
                span: hit.span,
                text_len: hit.text.len() as u64,
                parsed,
            })
        })
    }

    /// The mappings of `name`, which must contain the scanned word.
    pub fn mappings_of<'s>(&'s self, name: &'s str) -> impl Iterator<Item = Mapping> + 's {
        self.mappings().filter(move |m| {
            m.parsed
                .names
                .iter()
                .any(|n| n.text.eq_ignore_ascii_case(name))
        })
    }

    pub fn entries_mapping(&self, name: &str) -> Vec<Entry> {
        self.mappings_of(name).map(|m| m.entry()).collect()
    }

    pub fn wott_entries(&self) -> Vec<Entry> {
        self.mappings()
            .map(|m| m.entry())
            .filter(Entry::is_wott)
            .collect()
    }
}
