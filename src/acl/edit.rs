//! Granting and revoking, as edits of the ACL file.
//!
//! Both are one device's case of the block engine ([`super::blocks`]): the
//! file is read once, line by line, and the new file is described as byte
//! ranges of the old one plus new lines ([`Piece`]s), so every line they do
//! not mean to change is copied as it is and the file never needs to be held
//! in memory twice. They run on a parsed [`Document`] or on a stream.
//!
//! - `allow` leaves exactly one grant line for the device and topic, with the
//!   requested access: it updates the first existing one in place (and drops
//!   duplicates of it in the device's blocks), or adds a line to the device's
//!   last `user` block, or appends a new block.
//! - `revoke` removes grant lines (never `deny` lines: revoking must not give
//!   access back). A block left with nothing but blank lines goes with its
//!   `user` line, so `allow` then `revoke` of a new device restores the file.
//! - Both keep the ends of the file as they were: a new block always follows
//!   one blank line (which `revoke` takes away with the last block), and a
//!   file without a final newline keeps having none.

use std::io::{self, Read};

use super::blocks::{self, BlockEdits, Others, Want};
use super::document::{Access, Document};
use super::eval::Refused;
use crate::files::{self, Piece};

pub use super::blocks::Noted;

/// What `allow` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AllowAction {
    /// The grant was already there with this access.
    Unchanged,
    /// An existing grant line got the new access (or lost duplicates).
    Updated,
    /// A line was added to the device's existing block.
    Added,
    /// The device had no block: one was appended.
    AddedUser,
}

#[derive(Debug, Clone)]
pub struct Allowed {
    /// The new file as pieces of the old one and new bytes; `None` when nothing changes.
    pub pieces: Option<Vec<Piece>>,
    pub action: AllowAction,
    /// 1-based line of the grant in the new file.
    pub line: usize,
    /// Duplicate grants that were removed.
    pub removed_duplicates: Vec<Noted>,
    /// This device's `deny` rules that overlap the grant: Mosquitto checks
    /// them first, so they still deny.
    pub overlapping_denies: Vec<Noted>,
    /// The first line Mosquitto refuses, if any (the edit keeps it).
    pub refused: Option<Refused>,
}

#[derive(Debug, Clone)]
pub struct Revoked {
    /// The new file as pieces of the old one; `None` when nothing changes.
    pub pieces: Option<Vec<Piece>>,
    /// The grants removed.
    pub removed: Vec<Noted>,
    /// `user` lines removed with their emptied blocks.
    pub removed_users: Vec<Noted>,
    /// This device's `deny` rules, which revoke keeps.
    pub kept_denies: Vec<Noted>,
    pub refused: Option<Refused>,
}

/// The whole new text of an edit, given the old one (for tests and the fuzzer).
pub(super) fn text_of(pieces: Option<&[Piece]>, old: &[u8]) -> io::Result<Vec<u8>> {
    match pieces {
        Some(pieces) => files::materialize(Some(io::Cursor::new(old)), pieces),
        None => Ok(old.to_vec()),
    }
}

impl Allowed {
    /// The whole new text, given the old one.
    pub fn text(&self, old: &[u8]) -> io::Result<Vec<u8>> {
        text_of(self.pieces.as_deref(), old)
    }
}

impl Revoked {
    /// The whole new text, given the old one.
    pub fn text(&self, old: &[u8]) -> io::Result<Vec<u8>> {
        text_of(self.pieces.as_deref(), old)
    }
}

fn allow_want<'a>(user: &'a [u8], grant: &'a [(&'a [u8], Access); 1]) -> Want<'a> {
    debug_assert!(grant[0].1 != Access::Deny);
    Want {
        user,
        grants: grant,
        others: Others::Keep,
    }
}

fn allowed(mut edits: BlockEdits) -> Allowed {
    let device = edits.devices.pop().unwrap_or_default();
    let (action, line) = match (device.found_first, device.added_line) {
        (Some(line), _) if device.changed() => (AllowAction::Updated, line),
        (Some(line), _) => (AllowAction::Unchanged, line),
        (None, Some(line)) if device.new_block => (AllowAction::AddedUser, line),
        (None, line) => (AllowAction::Added, line.unwrap_or_default()),
    };
    let details = device.into_details();
    Allowed {
        pieces: edits.pieces,
        action,
        line,
        removed_duplicates: details.duplicates,
        overlapping_denies: details.overlapping_denies,
        refused: edits.refused,
    }
}

fn revoke_want<'a>(user: &'a [u8], filter: Option<&'a [u8]>) -> Want<'a> {
    Want {
        user,
        grants: &[],
        others: filter.map_or(Others::All, Others::Only),
    }
}

fn revoked(mut edits: BlockEdits) -> Revoked {
    let details = edits.devices.pop().unwrap_or_default().into_details();
    Revoked {
        pieces: edits.pieces,
        removed: details.removed,
        removed_users: details.removed_users,
        kept_denies: details.denies,
        refused: edits.refused,
    }
}

/// Grants `user` `access` (not `Deny`) on `filter`, in a parsed document.
pub fn allow(doc: &Document, user: &[u8], filter: &[u8], access: Access) -> Allowed {
    let grant = [(filter, access)];
    let wants = [allow_want(user, &grant)];
    allowed(blocks::edit_document(doc, &wants, false))
}

/// [`allow`], reading the file as a stream.
pub fn allow_stream(
    reader: impl Read,
    user: &[u8],
    filter: &[u8],
    access: Access,
) -> io::Result<Allowed> {
    let grant = [(filter, access)];
    let wants = [allow_want(user, &grant)];
    Ok(allowed(blocks::edit_stream(reader, &wants, false)?))
}

/// Removes `user`'s grants on `filter`, or all its grants when `filter` is
/// `None`, in a parsed document.
pub fn revoke(doc: &Document, user: &[u8], filter: Option<&[u8]>) -> Revoked {
    let wants = [revoke_want(user, filter)];
    revoked(blocks::edit_document(doc, &wants, false))
}

/// [`revoke`], reading the file as a stream.
pub fn revoke_stream(reader: impl Read, user: &[u8], filter: Option<&[u8]>) -> io::Result<Revoked> {
    let wants = [revoke_want(user, filter)];
    Ok(revoked(blocks::edit_stream(reader, &wants, false)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(noted: &[Noted]) -> Vec<usize> {
        noted.iter().map(|n| n.line).collect()
    }

    fn allow_s(text: &str, user: &str, filter: &str, access: Access) -> (String, Allowed) {
        let doc = Document::parse(text.as_bytes()).unwrap();
        let a = allow(&doc, user.as_bytes(), filter.as_bytes(), access);
        let streamed =
            allow_stream(text.as_bytes(), user.as_bytes(), filter.as_bytes(), access).unwrap();
        assert_eq!(streamed.pieces, a.pieces);
        let t = String::from_utf8(a.text(text.as_bytes()).unwrap()).unwrap();
        (t, a)
    }

    fn revoke_s(text: &str, user: &str, filter: Option<&str>) -> (String, Revoked) {
        let doc = Document::parse(text.as_bytes()).unwrap();
        let r = revoke(&doc, user.as_bytes(), filter.map(str::as_bytes));
        let streamed =
            revoke_stream(text.as_bytes(), user.as_bytes(), filter.map(str::as_bytes)).unwrap();
        assert_eq!(streamed.pieces, r.pieces);
        let t = String::from_utf8(r.text(text.as_bytes()).unwrap()).unwrap();
        (t, r)
    }

    #[test]
    fn a_new_device_gets_a_block_at_the_end() {
        let (t, a) = allow_s("", "d1", "wott/#", Access::ReadWrite);
        assert_eq!(t, "user d1\ntopic readwrite wott/#\n");
        assert_eq!((a.action, a.line), (AllowAction::AddedUser, 2));
        // No final newline before, none after.
        let (t, a) = allow_s("# acl\nuser d0\ntopic x", "d1", "y", Access::Read);
        assert_eq!(t, "# acl\nuser d0\ntopic x\n\nuser d1\ntopic read y");
        assert_eq!(a.line, 6);
        // One blank line before the block, even after a blank line.
        let (t, a) = allow_s("user d0\ntopic x\n\n", "d1", "y", Access::Read);
        assert_eq!(t, "user d0\ntopic x\n\n\nuser d1\ntopic read y\n");
        assert_eq!(a.line, 6);
        let (t, _) = allow_s("user d0\r\ntopic x\r\n", "d1", "y", Access::Write);
        assert_eq!(t, "user d0\r\ntopic x\r\n\r\nuser d1\r\ntopic write y\r\n");
    }

    #[test]
    fn a_known_device_gets_a_line_in_its_last_block() {
        let text = "user d1\n  topic read a\n\n# next\nuser d2\ntopic b\n";
        let (t, a) = allow_s(text, "d1", "c", Access::Read);
        assert_eq!(
            t,
            "user d1\n  topic read a\n  topic read c\n\n# next\nuser d2\ntopic b\n"
        );
        assert_eq!((a.action, a.line), (AllowAction::Added, 3));
    }

    #[test]
    fn changing_access_updates_the_line_in_place() {
        let text = "user d1\ntopic read a\t\r\nuser d2\ntopic read a\n";
        let (t, a) = allow_s(text, "d1", "a", Access::ReadWrite);
        assert_eq!(t, "user d1\ntopic readwrite a\r\nuser d2\ntopic read a\n");
        assert_eq!((a.action, a.line), (AllowAction::Updated, 2));
        let (t2, a2) = allow_s(&t, "d1", "a", Access::ReadWrite);
        assert_eq!(t2, t);
        assert_eq!(a2.action, AllowAction::Unchanged);
        // No access word means readwrite: nothing to do.
        let (t3, a3) = allow_s("user d1\ntopic a\n", "d1", "a", Access::ReadWrite);
        assert_eq!(
            (t3.as_str(), a3.action),
            ("user d1\ntopic a\n", AllowAction::Unchanged)
        );
    }

    #[test]
    fn duplicates_collapse_to_one_grant() {
        let text = "user d1\ntopic read a\nuser d1\ntopic write a\n";
        let (t, a) = allow_s(text, "d1", "a", Access::Read);
        assert_eq!(t, "user d1\ntopic read a\nuser d1\n");
        assert_eq!(lines(&a.removed_duplicates), vec![4]);
    }

    #[test]
    fn overlapping_denies_are_reported() {
        let (_, a) = allow_s(
            "user d1\ntopic deny wott/secret\n",
            "d1",
            "wott/#",
            Access::Read,
        );
        assert_eq!(lines(&a.overlapping_denies), vec![2]);
    }

    #[test]
    fn revoke_then_allow_round_trips() {
        let original = "# acl\nuser d0\ntopic x";
        let (added, _) = allow_s(original, "d1", "y", Access::Read);
        let (back, r) = revoke_s(&added, "d1", Some("y"));
        assert_eq!(back, original);
        assert_eq!(
            (lines(&r.removed), lines(&r.removed_users)),
            (vec![6], vec![5])
        );
        let (back, _) = revoke_s(&added, "d1", None);
        assert_eq!(back, original);
    }

    /// Found by fuzzing (fuzz/fuzz_targets/acl_document.rs): `allow` then
    /// `revoke` of a new device gave back the file with a final newline it
    /// did not have, or without a trailing blank line it had.
    #[test]
    fn allow_then_revoke_restores_the_ends_of_a_file_exactly() {
        for original in [
            "b\n# end",
            "b\n# end\n",
            "b\n\n",
            "b\n   ",
            "\n",
            "\r\n",
            "user d0\r\ntopic x",
            "user d0\ntopic x\n\n\n",
            "x\n\r",
            "user d0\ntopic x\r",
            "",
        ] {
            let (added, _) = allow_s(original, "d9", "f", Access::Write);
            for only in [None, Some("f")] {
                let (back, _) = revoke_s(&added, "d9", only);
                assert_eq!(back, original, "{added:?}");
            }
        }
        // A known device's new grant at the end of a file without a final newline, too.
        let original = "user d1\ntopic a";
        let (added, _) = allow_s(original, "d1", "b", Access::Read);
        assert_eq!(added, "user d1\ntopic a\ntopic read b");
        assert_eq!(revoke_s(&added, "d1", Some("b")).0, original);
    }

    /// Found by the property test `allow_touches_only_what_it_reports_and_is_idempotent`
    /// (tests/acl_properties.rs): deleting the last line of a file without a
    /// final newline took the ending of the blank line before it, so the blank
    /// line vanished too. A blank line left last now keeps its newline.
    #[test]
    fn deleting_the_last_line_keeps_the_blank_line_before_it() {
        let (t, a) = allow_s(
            "user d1 \ntopic a/+\n\ntopic a/+",
            "d1",
            "a/+",
            Access::Read,
        );
        assert_eq!(t, "user d1 \ntopic read a/+\n\n");
        assert_eq!(lines(&a.removed_duplicates), vec![4]);
        let (t, _) = revoke_s("user d1\ntopic a\n\ntopic b", "d1", Some("b"));
        assert_eq!(t, "user d1\ntopic a\n\n");
        // A line that is more than its ending still gives it up.
        let (t, _) = allow_s(
            "user d2\ntopic b\nuser d2\ntopic b",
            "d2",
            "b",
            Access::Read,
        );
        assert_eq!(t, "user d2\ntopic read b\nuser d2");
    }

    #[test]
    fn removed_user_lines_are_reported_as_written() {
        for (text, shown) in [
            ("user d1\ntopic a\n", "user d1"),
            ("  user \t d1 \t\r\ntopic a\n", "  user \t d1"),
            ("user d\u{e9}1\ntopic a", "user d\u{e9}1"),
        ] {
            let user = shown.trim_start().trim_start_matches("user").trim();
            let (_, r) = revoke_s(text, user, None);
            assert_eq!(
                r.removed_users,
                [Noted {
                    line: 1,
                    text: shown.into()
                }],
                "{text:?}"
            );
        }
    }

    #[test]
    fn revoke_keeps_denies_comments_and_other_users() {
        let text = "user d1\ntopic read a\ntopic deny b\n\nuser d2\ntopic read a\n";
        let (t, r) = revoke_s(text, "d1", None);
        assert_eq!(t, "user d1\ntopic deny b\n\nuser d2\ntopic read a\n");
        assert_eq!(lines(&r.kept_denies), vec![3]);
        let (t, r) = revoke_s(text, "d1", Some("zz"));
        assert_eq!((t.as_str(), r.removed.len()), (text, 0));
        // A block in the middle keeps the separator before the next one.
        let text = "user d0\ntopic a\n\nuser d1\ntopic b\n\nuser d2\ntopic c\n";
        let (t, _) = revoke_s(text, "d1", None);
        assert_eq!(t, "user d0\ntopic a\n\nuser d2\ntopic c\n");
    }
}
