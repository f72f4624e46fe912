//! The hosts file on disk: `add` and `remove` under the edit lock,
//! streaming the file and written atomically (`files::update_pieces`), and
//! the read-only lookups `list`, `check` and `check`'s resolve stage make.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

use super::edit::{Plan, plan_add, plan_remove};
use super::scan::Scan;
use super::{DEFAULT_HOSTS_FILE, Entry, HostsError, NEW_FILE_MODE, WOTT_WORD, is_reserved};
use crate::files::{self, FileError, Piece, PieceEdit, UpdateOptions};
use crate::names::DeviceId;

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
/// A missing file has nothing to remove and is not created; like `add`, the
/// answer is decided under the lock, so a dangling link or a missing folder
/// is refused the same way.
pub fn remove(path: &Path, name: &DeviceId, dry_run: bool) -> Result<Change, HostsError> {
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
            Ok(planned.pieces())
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
