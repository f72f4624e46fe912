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
//!
//! - [`entry`]: what one line maps, read the way the resolver reads it;
//! - `scan`: the search for a name through a streamed file;
//! - [`edit`]: the edits `add` and `remove` make ([`Plan`]);
//! - [`file`]: those edits and the lookups on the file on disk;
//! - [`document`]: the same for bytes in memory (tests, the fuzzer).

pub mod document;
pub mod edit;
pub mod entry;
pub mod file;
mod scan;

use std::ffi::OsStr;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use document::{Document, fuzzing};
pub use edit::{Action, Plan, managed_line};
pub use entry::Entry;
pub use file::{
    Change, add, entries_for, is_system_hosts_file, join_ips, list, lookup, remove, system_lookup,
};

use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;
use crate::files::FileError;
use crate::names::truncate_for_message;

/// The file the system resolver reads.
pub const DEFAULT_HOSTS_FILE: &str = "/etc/hosts";

/// The last word of every line this tool writes, after a `#`.
pub const MARKER: &str = "wott-mqtt";

/// Mode of a hosts file this tool creates.
const NEW_FILE_MODE: u32 = 0o644;

/// Every line `list` shows contains this (in `# wott-mqtt` or `.d.wott.local`).
const WOTT_WORD: &str = "wott";

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
        value: truncate_for_message(&value.to_string_lossy()),
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
pub(super) fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "localhost"
        || lower.ends_with(".localhost")
        || lower == "localhost.localdomain"
        || lower == "ip6-localhost"
        || lower == "ip6-loopback"
}
