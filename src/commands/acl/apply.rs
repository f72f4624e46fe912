//! `acl apply`: a fleet's grants from a file or stdin, in one write and at
//! most one reload.

use std::fmt::Write as _;
use std::io::{IsTerminal, Read};
use std::path::Path;

use serde::Serialize;

use super::*;
use crate::acl::apply::{Applied, DeviceChange};
use crate::acl::desired::{self, Format};
use crate::cli::AclApplyArgs;

/// The devices by what happened to them: in JSON, lists of device IDs.
#[derive(Debug)]
struct Devices {
    /// `added`, `changed` or `removed`, and what it did, in that order.
    changes: Vec<(&'static str, DeviceChange)>,
    unchanged: Vec<String>,
}

impl Devices {
    fn count(&self, what: &str) -> usize {
        self.changes.iter().filter(|(w, _)| *w == what).count()
    }

    fn ids(&self, what: &str) -> Vec<&str> {
        self.changes
            .iter()
            .filter(|(w, _)| *w == what)
            .map(|(_, c)| c.device.as_str())
            .collect()
    }
}

impl Serialize for Devices {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(4))?;
        for what in ["added", "changed", "removed"] {
            map.serialize_entry(what, &self.ids(what))?;
        }
        map.serialize_entry("unchanged", &self.unchanged)?;
        map.end()
    }
}

/// Grant lines, counted over every device.
#[derive(Debug, Default, Serialize)]
struct GrantCounts {
    added: usize,
    updated: usize,
    removed: usize,
}

/// A listed device's `deny` line that still takes away part of its grants.
#[derive(Debug, Serialize)]
struct DenyRef {
    device: String,
    #[serde(flatten)]
    line: LineRef,
}

#[derive(Debug, Serialize)]
struct ApplyReport {
    file: String,
    /// The input's path, or `<stdin>`.
    input: String,
    format: Format,
    changed: bool,
    dry_run: bool,
    exclusive: bool,
    /// Entries read, duplicates included.
    entries: usize,
    devices: Devices,
    grants: GrantCounts,
    overlapping_denies: Vec<DenyRef>,
    /// The unified diff, with --dry-run.
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
    /// The managed broker containers that reloaded the file.
    #[serde(flatten)]
    reloaded: Reloads,
}

impl Human for ApplyReport {
    fn human(&self, p: Paint) -> String {
        let mut s = String::new();
        if let Some(diff) = &self.diff {
            s.push_str(&sanitize(diff));
        }
        let labels = ["added:", "changed:", "removed:"].map(|l| (l, p.good(l)));
        for (what, change) in &self.devices.changes {
            let label = labels
                .iter()
                .find(|(l, _)| l.trim_end_matches(':') == *what)
                .map_or("", |(_, painted)| painted.as_str());
            let _ = write!(s, "{label} {} (", sanitize(&change.device));
            counts(&mut s, what, change);
            s.push_str(")\n");
        }
        let d = &self.devices;
        if self.changed {
            let _ = writeln!(
                s,
                "{} {}: {} added, {} changed, {} removed, {} unchanged",
                p.good("applied:"),
                self.file,
                d.count("added"),
                d.count("changed"),
                d.count("removed"),
                d.unchanged.len()
            );
        } else {
            let _ = writeln!(
                s,
                "{} {} already grants the {} device(s) of {} exactly this",
                p.dim("unchanged:"),
                self.file,
                d.unchanged.len(),
                self.input
            );
        }
        self.reloaded.lines(&mut s, p);
        if self.dry_run && self.changed {
            let _ = writeln!(s, "{}", p.dim("dry run: nothing was written"));
        }
        s
    }
}

/// `new block: 2 added`, `1 added, 1 removed`, `3 grant(s)`.
fn counts(s: &mut String, what: &str, c: &DeviceChange) {
    if what == "removed" {
        let _ = write!(s, "{} grant(s)", c.removed);
        return;
    }
    if what == "added" {
        s.push_str("new block: ");
    }
    let mut first = true;
    for (n, word) in [
        (c.added, "added"),
        (c.updated, "updated"),
        (c.removed, "removed"),
    ] {
        if n > 0 {
            let _ = write!(s, "{}{n} {word}", if first { "" } else { ", " });
            first = false;
        }
    }
}

/// How stdin is named in messages and in the report.
const STDIN: &str = "<stdin>";

/// The input's name and bytes: the file, or stdin for `-` or nothing.
fn read_input(grants: Option<&Path>) -> Result<(String, Vec<u8>), Error> {
    let stdin_hint = || {
        "pass a file (`wott-mqtt acl apply grants.json`), or pipe the grants in \
         (`… | wott-mqtt acl apply -`)"
            .to_string()
    };
    match grants.filter(|g| g.as_os_str() != "-") {
        Some(path) => match files::read_optional(path)? {
            Some(bytes) => Ok((path.display().to_string(), bytes)),
            None => Err(Error::usage(
                format!("the grants file {} does not exist", path.display()),
                stdin_hint(),
            )),
        },
        None => {
            let mut stdin = std::io::stdin();
            if grants.is_none() && stdin.is_terminal() {
                return Err(Error::usage(
                    "`acl apply` reads the grants from stdin, which is a terminal",
                    stdin_hint(),
                ));
            }
            let mut bytes = Vec::new();
            stdin
                .read_to_end(&mut bytes)
                .map_err(|source| FileError::Read {
                    path: STDIN.into(),
                    source,
                })?;
            Ok((STDIN.into(), bytes))
        }
    }
}

pub(super) fn apply(config: &Config, file: &Path, args: &AclApplyArgs) -> Result<Outcome, Error> {
    let (input, bytes) = read_input(args.grants.as_deref())?;
    let desired =
        desired::parse(&bytes, config.id_policy).map_err(|problems| AclError::BadGrants {
            input: input.clone(),
            problems,
        })?;
    drop(bytes);
    if args.exclusive && desired.devices.is_empty() {
        return Err(AclError::NothingExclusive {
            input,
            path: file.to_path_buf(),
        }
        .into());
    }
    let done = acl::file::apply(file, &desired, args.exclusive, args.dry_run)?;
    let (edit, result) = (done.edit, done.result);
    warn_if_refused(config, file, result.refused.as_ref());
    let overlapping_denies = denies(config, file, &result);
    // One reload, whatever the number of devices.
    let (reloaded, withheld) = if edit.changed && !args.dry_run {
        applied(config, file, !args.no_reload)
    } else {
        (Reloads::default(), None)
    };
    let (devices, grants) = tally(result);
    let outcome = Outcome::report(ApplyReport {
        file: file.display().to_string(),
        input,
        format: desired.format,
        changed: edit.changed,
        dry_run: args.dry_run,
        exclusive: args.exclusive,
        entries: desired.entries,
        devices,
        grants,
        overlapping_denies,
        diff: args.dry_run.then(|| edit.diff.unwrap_or_default()),
        reloaded,
    });
    Ok(match withheld {
        Some(error) => outcome.with_error(error),
        None => outcome,
    })
}

fn denies(config: &Config, file: &Path, applied: &Applied) -> Vec<DenyRef> {
    let refs: Vec<DenyRef> = applied
        .overlapping_denies
        .iter()
        .map(|d| DenyRef {
            device: d.device.clone(),
            line: LineRef::noted(file, d.line.clone()),
        })
        .collect();
    for deny in &refs {
        config.output.warn(&sanitize(&format!(
            "{} `{}` still denies part of {}'s grants: Mosquitto checks deny rules first",
            deny.line.location, deny.line.text, deny.device
        )));
    }
    refs
}

fn tally(applied: Applied) -> (Devices, GrantCounts) {
    let mut grants = GrantCounts::default();
    let mut changes = Vec::with_capacity(applied.added.len() + applied.changed.len());
    for (what, list) in [
        ("added", applied.added),
        ("changed", applied.changed),
        ("removed", applied.removed),
    ] {
        for change in list {
            grants.added += change.added;
            grants.updated += change.updated;
            grants.removed += change.removed;
            changes.push((what, change));
        }
    }
    let devices = Devices {
        changes,
        unchanged: applied.unchanged,
    };
    (devices, grants)
}
