//! The hosts document: parse, edit (`add`, `remove`), render.
//!
//! The input is a hosts file plus the choices of an edit: a device ID and an
//! address, made from the input or taken from the file itself (so that edits
//! of names the file already maps are reached), and the chunk size of the
//! streaming scanner the commands use. Invariants:
//!
//! - no panic; parse → render gives back the input exactly;
//! - the streamed edit (any chunk size) equals the in-memory one;
//! - after `add`, the name maps to the address alone, on one line when
//!   anything changed, and a second `add` changes nothing;
//! - every other name keeps its addresses; lines that do not contain the
//!   name keep their text;
//! - `remove` leaves no managed line for the name, keeps hand-written ones,
//!   and is idempotent;
//! - `add` then `remove` of a name the file does not map gives back the
//!   original bytes (docs/hosts.md promises it).

#![no_main]

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use wott_mqtt::hosts::{self, Document, Entry};
use wott_mqtt::names::DeviceId;

#[derive(Debug, Arbitrary)]
enum Name<'a> {
    /// The n-th word of the file that is a valid device ID, maybe in another case.
    FromFile { index: u16, upper: bool },
    /// Bytes mapped onto the characters of DNS names.
    Made(&'a [u8]),
}

#[derive(Debug, Arbitrary)]
enum Ip {
    V4([u8; 4]),
    V6([u8; 16]),
    /// The n-th address the file maps.
    FromFile(u16),
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    chunk: u8,
    name: Name<'a>,
    ip: Ip,
    file: &'a [u8],
}

const FALLBACK_NAME: &str = "fz.d.wott.local";

/// Whitespace-separated words, cut at a `#` the way glibc reads a line.
fn words(file: &[u8]) -> Vec<String> {
    file.split(|b| b.is_ascii_whitespace())
        .map(|w| w.split(|&b| b == b'#').next().unwrap_or_default())
        .filter(|w| !w.is_empty())
        .filter_map(|w| std::str::from_utf8(w).ok().map(str::to_string))
        .collect()
}

fn device_id(name: &Name, file: &[u8]) -> DeviceId {
    let text = match name {
        Name::FromFile { index, upper } => {
            let valid: Vec<String> = words(file)
                .into_iter()
                .filter(|w| DeviceId::new(w).is_ok())
                .collect();
            match valid.get(usize::from(*index) % valid.len().max(1)) {
                Some(w) if *upper => w.to_ascii_uppercase(),
                Some(w) => w.clone(),
                None => FALLBACK_NAME.into(),
            }
        }
        Name::Made(bytes) => {
            const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-.SDWOTL";
            bytes
                .iter()
                .take(253)
                .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
                .collect()
        }
    };
    DeviceId::new(&text).unwrap_or_else(|_| DeviceId::new(FALLBACK_NAME).unwrap())
}

fn address(ip: &Ip, doc: &Document) -> IpAddr {
    let candidate = match ip {
        Ip::V4(o) => IpAddr::V4(Ipv4Addr::from(*o)),
        Ip::V6(o) => IpAddr::V6(Ipv6Addr::from(*o)),
        Ip::FromFile(n) => {
            let ips: Vec<IpAddr> = doc.lines().filter_map(|l| Document::entry(&l)).map(|e| e.ip).collect();
            ips.get(usize::from(*n) % ips.len().max(1))
                .copied()
                .unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
        }
    };
    // Only addresses `hosts add` accepts from the command line.
    hosts::parse_server_ip(OsStr::new(&candidate.to_string()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
}

/// Whether `small` appears in `big` in order (not necessarily adjacent).
fn is_subsequence(small: &[Vec<u8>], big: &[Vec<u8>]) -> bool {
    let mut rest = big.iter();
    small.iter().all(|line| rest.any(|other| other == line))
}

fn ips(entries: &[Entry]) -> Vec<IpAddr> {
    entries.iter().map(|e| e.ip).collect()
}

/// The text of every line that does not contain `name` (ASCII case-insensitively).
fn untouched_lines(bytes: &[u8], name: &str) -> Vec<Vec<u8>> {
    let needle = name.to_ascii_lowercase();
    Document::parse(bytes)
        .lines()
        .map(|l| l.text().to_vec())
        .filter(|t| {
            !t.to_ascii_lowercase()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        })
        .collect()
}

fuzz_target!(|input: Input| {
    let file = input.file;
    let doc = Document::parse(file);

    // Lossless.
    assert_eq!(doc.render(), file);
    let mut joined = Vec::with_capacity(file.len());
    for line in doc.lines() {
        assert_eq!(line.offset, joined.len() as u64);
        joined.extend_from_slice(line.text());
        joined.extend_from_slice(line.ending());
        let _ = Document::entry(&line);
    }
    assert_eq!(joined, file);

    let chunk = usize::from(input.chunk % 64) + 1;
    assert_eq!(
        doc.wott_entries(),
        hosts::fuzzing::wott_entries_chunked(file, chunk)
    );

    let name = device_id(&input.name, file);
    let ip = address(&input.ip, &doc);
    let before = doc.entries_for(name.as_str());
    let others: Vec<String> = words(file)
        .into_iter()
        .filter(|w| !w.eq_ignore_ascii_case(name.as_str()))
        .take(4)
        .collect();

    // add
    let plan = doc.plan_add(&name, ip);
    let added = plan.apply(file).unwrap();
    let streamed = hosts::fuzzing::plan_add_chunked(file, &name, ip, chunk).apply(file).unwrap();
    assert_eq!(added, streamed, "streamed add differs (chunk {chunk})");
    let after = Document::parse(&added);
    let entries = after.entries_for(name.as_str());
    assert!(!entries.is_empty(), "add left no mapping");
    assert!(entries.iter().all(|e| e.ip == ip), "{entries:?}");
    if !plan.is_empty() {
        assert_eq!(entries.len(), 1, "{entries:?}");
    }
    assert!(after.plan_add(&name, ip).is_empty(), "add is not idempotent");
    for other in &others {
        assert_eq!(
            ips(&doc.entries_for(other)),
            ips(&after.entries_for(other)),
            "add of {name} moved {other}"
        );
    }
    // Lines without the name stay, in order (a line that loses the name joins them).
    assert!(is_subsequence(
        &untouched_lines(file, name.as_str()),
        &untouched_lines(&added, name.as_str())
    ));

    // remove
    let plan = doc.plan_remove(&name);
    let removed = plan.apply(file).unwrap();
    let streamed = hosts::fuzzing::plan_remove_chunked(file, &name, chunk).apply(file).unwrap();
    assert_eq!(removed, streamed, "streamed remove differs (chunk {chunk})");
    let after = Document::parse(&removed);
    let left = after.entries_for(name.as_str());
    assert!(left.iter().all(|e| !e.managed), "{left:?}");
    let hand_written: Vec<IpAddr> = before.iter().filter(|e| !e.managed).map(|e| e.ip).collect();
    assert_eq!(ips(&left), hand_written);
    assert!(after.plan_remove(&name).is_empty(), "remove is not idempotent");
    for other in &others {
        assert_eq!(
            ips(&doc.entries_for(other)),
            ips(&after.entries_for(other)),
            "remove of {name} moved {other}"
        );
    }
    // Lines without the name stay, in order (a line that loses the name joins them).
    assert!(is_subsequence(
        &untouched_lines(file, name.as_str()),
        &untouched_lines(&removed, name.as_str())
    ));

    // add then remove of a name the file does not map: the original bytes.
    if before.is_empty() {
        let back = Document::parse(&added).plan_remove(&name).apply(&added).unwrap();
        assert!(back == file, "add then remove of {name} did not restore the file");
    }
});
