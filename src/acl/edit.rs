//! Granting and revoking, as edits of the ACL file.
//!
//! Both operations read the file once, line by line, and describe the new
//! file as byte ranges of the old one plus new lines ([`Piece`]s): every line
//! they do not mean to change is copied as it is, and the file never needs to
//! be held in memory twice. They run on a parsed [`Document`] or on a stream;
//! the logic is the same ([`LineView`]).
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

use super::document::{self, Access, Document, Kind, LineView};
use super::eval::Refused;
use super::{lint, topic};
use crate::files::{self, Piece};
use crate::lines::{self, Edits, LineSpan, Summary, Tail};

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

/// A line an edit reports: its 1-based number (in the old file) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Noted {
    pub line: usize,
    pub text: String,
}

impl Noted {
    fn of(line: &LineView) -> Self {
        Noted {
            line: line.index + 1,
            text: line.shown(),
        }
    }
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
fn text_of(pieces: Option<&[Piece]>, old: &[u8]) -> io::Result<Vec<u8>> {
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

/// The first line Mosquitto refuses, as the edits report it.
#[derive(Debug, Default)]
struct FirstRefusal(Option<Refused>);

impl FirstRefusal {
    fn see(&mut self, line: &LineView) {
        if self.0.is_none()
            && let Kind::Invalid(invalid) = &line.kind
        {
            let (code, message) = lint::explain_line(line, invalid);
            self.0 = Some(Refused {
                line: line.index,
                code,
                message,
            });
        }
    }
}

fn is_grant<'t>(line: &LineView<'t>) -> Option<(&'t [u8], Access)> {
    match &line.kind {
        Kind::Rule(rule) if !rule.pattern && rule.access != Access::Deny => {
            Some((line.bytes(&rule.filter), rule.access))
        }
        _ => None,
    }
}

fn is_deny<'t>(line: &LineView<'t>) -> Option<&'t [u8]> {
    match &line.kind {
        Kind::Rule(rule) if !rule.pattern && rule.access == Access::Deny => {
            Some(line.bytes(&rule.filter))
        }
        _ => None,
    }
}

fn topic_line(indent: &[u8], access: Access, filter: &[u8]) -> Vec<u8> {
    let mut line = indent.to_vec();
    line.extend_from_slice(b"topic ");
    line.extend_from_slice(access.keyword().as_bytes());
    line.push(b' ');
    line.extend_from_slice(filter);
    line
}

/// Where a new grant goes in the device's last block: after its last line
/// that is not blank or a comment.
#[derive(Debug, Clone)]
struct Anchor {
    /// 1-based line number.
    line: usize,
    /// The end of that line, ending included.
    end: u64,
    tail: Tail,
}

impl Anchor {
    fn of(line: &LineView) -> Anchor {
        Anchor {
            line: line.index + 1,
            end: line.range().end,
            tail: line.tail(),
        }
    }
}

/// The device's grant on the filter met first: it is the one that stays.
#[derive(Debug, Clone)]
struct FirstGrant {
    line: usize,
    span: LineSpan,
    access: Access,
    indent: Vec<u8>,
    crlf: bool,
    has_newline: bool,
}

/// `allow`, one line at a time.
struct AllowScan<'q> {
    user: &'q [u8],
    filter: &'q [u8],
    access: Access,
    refusal: FirstRefusal,
    in_block: bool,
    anchor: Option<Anchor>,
    /// Indentation of the last rule line of the device's current block.
    indent: Vec<u8>,
    found: Option<FirstGrant>,
    duplicates: Vec<(LineSpan, Noted)>,
    denies: Vec<Noted>,
}

impl<'q> AllowScan<'q> {
    fn new(user: &'q [u8], filter: &'q [u8], access: Access) -> Self {
        AllowScan {
            user,
            filter,
            access,
            refusal: FirstRefusal::default(),
            in_block: false,
            anchor: None,
            indent: Vec::new(),
            found: None,
            duplicates: Vec::new(),
            denies: Vec::new(),
        }
    }

    fn see(&mut self, line: &LineView) {
        self.refusal.see(line);
        if let Kind::User { name } = &line.kind {
            self.in_block = line.bytes(name) == self.user;
            if self.in_block {
                self.indent.clear();
                self.anchor = Some(Anchor::of(line));
            }
            return;
        }
        if !self.in_block {
            return;
        }
        if !matches!(line.kind, Kind::Blank | Kind::Comment) {
            self.anchor = Some(Anchor::of(line));
        }
        if let Kind::Rule(_) = line.kind {
            self.indent = line.indent().to_vec();
        }
        if let Some(deny) = is_deny(line)
            && topic::overlaps(deny, self.filter)
        {
            self.denies.push(Noted::of(line));
        }
        if let Some((filter, access)) = is_grant(line)
            && filter == self.filter
        {
            if self.found.is_none() {
                self.found = Some(FirstGrant {
                    line: line.index + 1,
                    span: line.span(),
                    access,
                    indent: line.indent().to_vec(),
                    crlf: line.content().ends_with(b"\r"),
                    has_newline: line.has_newline(),
                });
            } else {
                self.duplicates.push((line.span(), Noted::of(line)));
            }
        }
    }

    fn finish(self, file: &Summary) -> Allowed {
        let mut edits = Edits::default();
        let (action, line) = if let Some(found) = &self.found {
            for (span, _) in &self.duplicates {
                edits.delete_line(*span);
            }
            if found.access != self.access {
                let mut bytes = topic_line(&found.indent, self.access, self.filter);
                if found.crlf {
                    bytes.push(b'\r');
                }
                if found.has_newline {
                    bytes.push(b'\n');
                }
                edits.replace(found.span.range(), bytes);
            }
            let action = if edits.is_empty() {
                AllowAction::Unchanged
            } else {
                AllowAction::Updated
            };
            // Duplicates all come after the first grant, which keeps its number.
            (action, found.line)
        } else if let Some(anchor) = &self.anchor {
            let grant = topic_line(&self.indent, self.access, self.filter);
            edits.insert(
                anchor.end,
                lines::added_after(Some(anchor.tail), file.style(), &[&grant]),
            );
            (AllowAction::Added, anchor.line + 1)
        } else {
            // A new block after one blank line, always: `revoke` takes exactly
            // one blank line away with the last block, which gives back the
            // original bytes even when the file ended with a blank line.
            let mut user = b"user ".to_vec();
            user.extend_from_slice(self.user);
            let grant = topic_line(b"", self.access, self.filter);
            let block: Vec<&[u8]> = match file.last {
                Some(_) => vec![b"", &user, &grant],
                None => vec![&user, &grant],
            };
            edits.insert(file.len, file.appended(&block));
            (AllowAction::AddedUser, file.lines + block.len())
        };
        Allowed {
            pieces: (!edits.is_empty()).then(|| edits.into_pieces(file)),
            action,
            line,
            removed_duplicates: self.duplicates.into_iter().map(|(_, n)| n).collect(),
            overlapping_denies: self.denies,
            refused: self.refusal.0,
        }
    }
}

/// One of the device's blocks while it is being read.
#[derive(Debug)]
struct Block {
    user_line: Noted,
    user_span: LineSpan,
    /// The line just before the `user` line, when it is blank.
    blank_before: Option<LineSpan>,
    grants: Vec<(LineSpan, Noted)>,
    blanks: Vec<LineSpan>,
    /// Whether anything but grants and blank lines is in it.
    keeps_something: bool,
}

/// `revoke`, one line at a time.
struct RevokeScan<'q> {
    user: &'q [u8],
    filter: Option<&'q [u8]>,
    refusal: FirstRefusal,
    block: Option<Block>,
    previous_blank: Option<LineSpan>,
    edits: Edits,
    removed: Vec<Noted>,
    removed_users: Vec<Noted>,
    kept_denies: Vec<Noted>,
}

impl<'q> RevokeScan<'q> {
    fn new(user: &'q [u8], filter: Option<&'q [u8]>) -> Self {
        RevokeScan {
            user,
            filter,
            refusal: FirstRefusal::default(),
            block: None,
            previous_blank: None,
            edits: Edits::default(),
            removed: Vec::new(),
            removed_users: Vec::new(),
            kept_denies: Vec::new(),
        }
    }

    fn see(&mut self, line: &LineView) {
        self.refusal.see(line);
        let span = line.span();
        if let Kind::User { name } = &line.kind {
            self.close(false);
            if line.bytes(name) == self.user {
                self.block = Some(Block {
                    user_line: Noted::of(line),
                    user_span: span,
                    blank_before: self.previous_blank.take(),
                    grants: Vec::new(),
                    blanks: Vec::new(),
                    keeps_something: false,
                });
            }
        } else if let Some(block) = &mut self.block {
            if let Some((filter, _)) = is_grant(line)
                && self.filter.is_none_or(|wanted| wanted == filter)
            {
                block.grants.push((span, Noted::of(line)));
            } else if matches!(line.kind, Kind::Blank) {
                block.blanks.push(span);
            } else {
                block.keeps_something = true;
                if is_deny(line).is_some() {
                    self.kept_denies.push(Noted::of(line));
                }
            }
        }
        self.previous_blank = matches!(line.kind, Kind::Blank).then_some(span);
    }

    /// The device's block ends (at the next `user` line, or at the end of the file).
    fn close(&mut self, at_end: bool) {
        let Some(block) = self.block.take() else {
            return;
        };
        if block.grants.is_empty() {
            return;
        }
        for (span, noted) in block.grants {
            self.edits.delete_line(span);
            self.removed.push(noted);
        }
        if !block.keeps_something {
            self.edits.delete_line(block.user_span);
            self.removed_users.push(block.user_line);
            for span in block.blanks {
                self.edits.delete_line(span);
            }
            if at_end && let Some(span) = block.blank_before {
                // The last block: also the blank line `allow` put before it.
                self.edits.delete_line(span);
            }
        }
    }

    fn finish(mut self, file: &Summary) -> Revoked {
        self.close(true);
        let edits = self.edits;
        Revoked {
            pieces: (!edits.is_empty()).then(|| edits.into_pieces(file)),
            removed: self.removed,
            removed_users: self.removed_users,
            kept_denies: self.kept_denies,
            refused: self.refusal.0,
        }
    }
}

/// Grants `user` `access` (not `Deny`) on `filter`, in a parsed document.
pub fn allow(doc: &Document, user: &[u8], filter: &[u8], access: Access) -> Allowed {
    debug_assert!(access != Access::Deny);
    let mut scan = AllowScan::new(user, filter, access);
    let file = doc.visit(|line| scan.see(line));
    scan.finish(&file)
}

/// [`allow`], reading the file as a stream.
pub fn allow_stream(
    reader: impl Read,
    user: &[u8],
    filter: &[u8],
    access: Access,
) -> io::Result<Allowed> {
    let mut scan = AllowScan::new(user, filter, access);
    let file = document::scan(reader, |line| {
        scan.see(line);
        true
    })?;
    Ok(scan.finish(&file))
}

/// Removes `user`'s grants on `filter`, or all its grants when `filter` is
/// `None`, in a parsed document.
pub fn revoke(doc: &Document, user: &[u8], filter: Option<&[u8]>) -> Revoked {
    let mut scan = RevokeScan::new(user, filter);
    let file = doc.visit(|line| scan.see(line));
    scan.finish(&file)
}

/// [`revoke`], reading the file as a stream.
pub fn revoke_stream(reader: impl Read, user: &[u8], filter: Option<&[u8]>) -> io::Result<Revoked> {
    let mut scan = RevokeScan::new(user, filter);
    let file = document::scan(reader, |line| {
        scan.see(line);
        true
    })?;
    Ok(scan.finish(&file))
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
