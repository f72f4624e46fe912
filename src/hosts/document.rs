//! A hosts file's bytes already in memory, with the same reads and edits
//! the commands make on the file on disk. For the tests and the fuzzer; the
//! commands stream the file instead (see [`super::file`]).

use std::net::IpAddr;

use super::edit::{Plan, plan_add, plan_remove};
use super::entry::entry_of;
use super::scan::Scan;
use super::{Entry, WOTT_WORD};
use crate::lines::{self, Line, Lines};
use crate::names::DeviceId;

/// A hosts file's bytes, read as lines. Nothing is copied or normalised:
/// the lines put back together are the input.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    bytes: &'a [u8],
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
        lines::split(self.bytes)
    }

    /// The mapping `line` makes, if it makes one.
    pub fn entry(line: &Line<'_>) -> Option<Entry> {
        entry_of(line.number, line.text())
    }

    /// The lines again, concatenated: the same bytes as the input.
    pub fn render(&self) -> Vec<u8> {
        self.lines()
            .flat_map(|l| l.bytes().iter().copied())
            .collect()
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
    /// result).
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
    use std::net::IpAddr;

    use crate::hosts::edit::{Plan, plan_add, plan_remove};
    use crate::hosts::scan::Scan;
    use crate::hosts::{Entry, WOTT_WORD};
    use crate::names::DeviceId;

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
