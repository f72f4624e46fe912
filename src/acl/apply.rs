//! `acl apply`: many devices' grants made exactly the desired ones, in one
//! pass over the file and one write.
//!
//! Each device of the input ([`Desired`]) becomes a [`Want`] of the block
//! engine with `Others::All`: its listed grants are kept, updated or added,
//! and its other grant lines are revoked, by the same rules as `allow` and
//! `revoke` (see [`super::blocks`]). Devices the input does not name are
//! left alone, unless `exclusive`, which revokes their grants too. The
//! result says, per device, what changed.

use std::io::{self, Read};

use serde::Serialize;

use super::FastMap;
use super::blocks::{self, BlockEdits, DeviceEdit, Others, Want};
use super::desired::Desired;
use super::document::{Access, Document};
use super::edit::{Noted, text_of};
use super::eval::Refused;
use crate::files::Piece;

/// What happened to one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceChange {
    pub device: String,
    /// Grant lines added.
    pub added: usize,
    /// Grant lines whose access was rewritten.
    pub updated: usize,
    /// Grant lines removed: other grants, and duplicates of wanted ones.
    pub removed: usize,
}

/// A `deny` line of a listed device that overlaps one of its grants.
#[derive(Debug, Clone)]
pub struct Deny {
    pub device: String,
    pub line: Noted,
}

#[derive(Debug, Clone)]
pub struct Applied {
    /// The new file as pieces of the old one and new bytes; `None` when nothing changes.
    pub pieces: Option<Vec<Piece>>,
    /// Listed devices that had no block: they got one.
    pub added: Vec<DeviceChange>,
    /// Listed devices whose lines changed.
    pub changed: Vec<DeviceChange>,
    /// Devices not listed whose grants were revoked (`exclusive`).
    pub removed: Vec<DeviceChange>,
    /// Listed devices that already had exactly their grants.
    pub unchanged: Vec<String>,
    /// Deny lines that still take away part of a listed grant.
    pub overlapping_denies: Vec<Deny>,
    /// The first line Mosquitto refuses, if any (the edit keeps it).
    pub refused: Option<Refused>,
    /// The last line a wanted grant is on (about: numbered as in the old
    /// file, added lines after it), to tell whether a grant lies past a NUL
    /// byte Mosquitto stops reading at.
    pub last_grant_line: usize,
}

impl Applied {
    /// The whole new text, given the old one.
    pub fn text(&self, old: &[u8]) -> io::Result<Vec<u8>> {
        text_of(self.pieces.as_deref(), old)
    }
}

/// Every listed grant, device after device, as the engine reads them.
fn flat_grants(desired: &Desired) -> Vec<(&[u8], Access)> {
    let mut grants = Vec::with_capacity(desired.grants());
    for device in &desired.devices {
        for (filter, access) in &device.grants {
            grants.push((filter.as_str().as_bytes(), *access));
        }
    }
    grants
}

fn wants<'a>(desired: &'a Desired, grants: &'a [(&'a [u8], Access)]) -> Vec<Want<'a>> {
    let mut at = 0;
    desired
        .devices
        .iter()
        .map(|device| {
            let mine = &grants[at..at + device.grants.len()];
            at += device.grants.len();
            Want {
                user: device.id.as_str().as_bytes(),
                grants: mine,
                others: Others::All,
            }
        })
        .collect()
}

/// Applies `desired` to a parsed document.
pub fn apply(doc: &Document, desired: &Desired, exclusive: bool) -> Applied {
    let grants = flat_grants(desired);
    let wants = wants(desired, &grants);
    summarize(desired, blocks::edit_document(doc, &wants, exclusive))
}

/// [`apply`], reading the file as a stream.
pub fn apply_stream(reader: impl Read, desired: &Desired, exclusive: bool) -> io::Result<Applied> {
    let grants = flat_grants(desired);
    let wants = wants(desired, &grants);
    Ok(summarize(
        desired,
        blocks::edit_stream(reader, &wants, exclusive)?,
    ))
}

fn change(device: String, edit: &DeviceEdit) -> DeviceChange {
    let details = edit.details();
    DeviceChange {
        device,
        added: edit.added,
        updated: details.updated.len(),
        removed: details.removed.len() + details.duplicates.len(),
    }
}

fn summarize(desired: &Desired, edits: BlockEdits) -> Applied {
    let mut applied = Applied {
        pieces: edits.pieces,
        added: Vec::new(),
        changed: Vec::new(),
        removed: Vec::new(),
        unchanged: Vec::new(),
        overlapping_denies: Vec::new(),
        refused: edits.refused,
        last_grant_line: 0,
    };
    for (device, edit) in desired.devices.iter().zip(edits.devices) {
        let id = device.id.to_string();
        let found = edit.found_last.unwrap_or(0);
        let added = edit.added_line.map_or(0, |l| l + edit.added - 1);
        applied.last_grant_line = applied.last_grant_line.max(found).max(added);
        for line in &edit.details().overlapping_denies {
            applied.overlapping_denies.push(Deny {
                device: id.clone(),
                line: line.clone(),
            });
        }
        if edit.new_block {
            applied.added.push(change(id, &edit));
        } else if edit.changed() {
            applied.changed.push(change(id, &edit));
        } else {
            applied.unchanged.push(id);
        }
    }
    // One entry per user, however many blocks it had.
    let mut by_user: FastMap<Vec<u8>, usize> = FastMap::default();
    for block in edits.unlisted {
        let next = applied.removed.len();
        let at = *by_user.entry(block.user.clone()).or_insert(next);
        if at == next {
            applied.removed.push(DeviceChange {
                device: String::from_utf8_lossy(&block.user).into_owned(),
                added: 0,
                updated: 0,
                removed: 0,
            });
        }
        applied.removed[at].removed += block.removed.len();
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::desired;

    fn run(text: &str, input: &str, exclusive: bool) -> (String, Applied) {
        let desired = desired::parse(input.as_bytes(), crate::names::IdPolicy::Any).unwrap();
        let doc = Document::parse(text.as_bytes()).unwrap();
        let applied = apply(&doc, &desired, exclusive);
        let streamed = apply_stream(text.as_bytes(), &desired, exclusive).unwrap();
        assert_eq!(streamed.pieces, applied.pieces);
        let new = String::from_utf8(applied.text(text.as_bytes()).unwrap()).unwrap();
        // Idempotent: the same input again changes nothing.
        let again_doc = Document::parse(new.as_bytes()).unwrap();
        let again = apply(&again_doc, &desired, exclusive);
        assert!(again.pieces.is_none(), "second run changed {new:?}");
        assert_eq!(again.unchanged.len(), desired.devices.len());
        (new, applied)
    }

    fn names(changes: &[DeviceChange]) -> Vec<&str> {
        changes.iter().map(|c| c.device.as_str()).collect()
    }

    #[test]
    fn new_devices_get_blocks_in_input_order() {
        let (t, a) = run("", "d2 a read\nd1 b write\nd2 c readwrite\n", false);
        assert_eq!(
            t,
            "user d2\ntopic read a\ntopic readwrite c\n\nuser d1\ntopic write b\n"
        );
        assert_eq!(names(&a.added), ["d2", "d1"]);
        assert_eq!(a.added[0].added, 2);
        let (t, _) = run("# acl\r\nuser d0\r\ntopic x", "d1 a read\nd2 b read", false);
        assert_eq!(
            t,
            "# acl\r\nuser d0\r\ntopic x\r\n\r\nuser d1\r\ntopic read a\r\n\r\nuser d2\r\ntopic read b"
        );
    }

    #[test]
    fn listed_devices_get_exactly_their_grants() {
        let text = "topic anon\nuser d1\n  topic read a/#\n  topic deny a/secret\n  topic old\n# d1's note\n\nuser d2\ntopic x\n";
        let (t, a) = run(text, "d1 a/# readwrite\nd1 b read\n", false);
        assert_eq!(
            t,
            "topic anon\nuser d1\n  topic readwrite a/#\n  topic deny a/secret\n  topic read b\n# d1's note\n\nuser d2\ntopic x\n"
        );
        assert_eq!(
            a.changed,
            [DeviceChange {
                device: "d1".into(),
                added: 1,
                updated: 1,
                removed: 1
            }]
        );
        assert_eq!(a.overlapping_denies[0].line.line, 4);
        assert!(a.removed.is_empty() && a.added.is_empty());
    }

    #[test]
    fn exclusive_removes_unlisted_blocks_and_keeps_hand_written_lines() {
        let text = "pattern read broadcast/%u\nuser d1\ntopic a\n\nuser d2\ntopic b\ntopic deny c\n\nuser d3\ntopic c\n\nuser d3\ntopic d\n";
        let (t, a) = run(text, "d1 a readwrite", true);
        assert_eq!(
            t,
            "pattern read broadcast/%u\nuser d1\ntopic a\n\nuser d2\ntopic deny c\n"
        );
        assert_eq!(names(&a.removed), ["d2", "d3"]);
        assert_eq!(a.removed[1].removed, 2);
        assert_eq!(a.unchanged, ["d1"]);
        // Not exclusive: the others stay.
        let (t, a) = run(text, "d1 a readwrite", false);
        assert_eq!((t.as_str(), a.pieces.is_none()), (text, true));
    }

    #[test]
    fn a_devices_emptied_blocks_go_but_its_last_takes_new_grants() {
        let text = "user d1\ntopic x\n\nuser d0\ntopic y\n\nuser d1\ntopic z\n";
        let (t, a) = run(text, "d1 w read", false);
        assert_eq!(t, "user d0\ntopic y\n\nuser d1\ntopic read w\n");
        assert_eq!(a.changed[0].removed, 2);
        // The grant is already in an earlier block: the later one goes.
        let (t, _) = run(text, "d1 x readwrite", false);
        assert_eq!(t, "user d1\ntopic x\n\nuser d0\ntopic y\n");
        // A duplicate in a later block goes with that block.
        let (t, a) = run(
            "user d1\ntopic x\nuser d1\ntopic x\n",
            "d1 x readwrite",
            false,
        );
        assert_eq!(t, "user d1\ntopic x\n");
        assert_eq!(a.changed[0].removed, 1);
    }

    #[test]
    fn adding_devices_then_removing_them_restores_the_file() {
        // Files without `user` blocks, with every kind of ending.
        for original in [
            "",
            "# acl\n",
            "topic x",
            "b\n\n",
            "x\n\r",
            "pattern read %u/#\r\n",
            "\n",
            "a\n   ",
        ] {
            let (added, _) = run(original, "d8 a read\nd9 b write\nd8 c write", false);
            let (back, a) = run(&added, "", true);
            assert_eq!(back, original, "{added:?}");
            assert_eq!(names(&a.removed), ["d8", "d9"]);
            // One at a time, the last block first.
            let (one, _) = run(&added, "d8 a read\nd8 c write", true);
            let (back, _) = run(&one, "", true);
            assert_eq!(back, original, "{one:?}");
        }
    }
}
