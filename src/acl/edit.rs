//! Granting and revoking, as edits of a [`Document`].
//!
//! Both operations touch only the lines they mean to change and return the
//! new bytes; the file itself is written by `files::update`.
//!
//! - `allow` leaves exactly one grant line for the device and topic, with the
//!   requested access: it updates the first existing one in place (and drops
//!   duplicates of it in the device's blocks), or adds a line to the device's
//!   last `user` block, or appends a new block.
//! - `revoke` removes grant lines (never `deny` lines: revoking must not give
//!   access back). A block left with nothing but blank lines goes with its
//!   `user` line, so `allow` then `revoke` of a new device restores the file.

use std::ops::Range;

use super::document::{self, Access, Document, Kind, Line, Patch};
use super::topic;
use crate::files::Piece;

impl Allowed {
    /// The whole new text, given the old one.
    pub fn text(&self, old: &[u8]) -> Vec<u8> {
        self.pieces
            .as_ref()
            .map_or_else(|| old.to_vec(), |p| document::concat(p, old))
    }
}

impl Revoked {
    /// The whole new text, given the old one.
    pub fn text(&self, old: &[u8]) -> Vec<u8> {
        self.pieces
            .as_ref()
            .map_or_else(|| old.to_vec(), |p| document::concat(p, old))
    }
}

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
    /// The new text as pieces of the old one and new bytes; `None` when nothing changes.
    pub pieces: Option<Vec<Piece>>,
    pub action: AllowAction,
    /// 1-based line of the grant in the new text.
    pub line: usize,
    /// 1-based lines (in the old text) of duplicate grants that were removed.
    pub removed_duplicates: Vec<usize>,
    /// 1-based lines (in the old text) of this device's `deny` rules that
    /// overlap the grant: Mosquitto checks them first, so they still deny.
    pub overlapping_denies: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Revoked {
    /// The new text as pieces of the old one and new bytes; `None` when nothing changes.
    pub pieces: Option<Vec<Piece>>,
    /// 1-based lines (in the old text) of the grants removed.
    pub removed: Vec<usize>,
    /// 1-based lines of `user` lines removed with their emptied blocks.
    pub removed_users: Vec<usize>,
    /// 1-based lines of this device's `deny` rules, which revoke keeps.
    pub kept_denies: Vec<usize>,
}

/// The blocks of one user: for each, the `user` line and the lines after it
/// up to the next `user` line.
fn blocks_of(doc: &Document, user: &[u8]) -> Vec<(usize, Range<usize>)> {
    let lines = doc.lines();
    let mut blocks = Vec::new();
    let mut open: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        if let Kind::User { name } = &line.kind {
            if let Some(start) = open.take() {
                blocks.push((start, start + 1..i));
            }
            if doc.bytes(name) == user {
                open = Some(i);
            }
        }
    }
    if let Some(start) = open {
        blocks.push((start, start + 1..lines.len()));
    }
    blocks
}

/// A grant (not `deny`) `topic` line; its filter and access.
fn grant<'a>(doc: &Document<'a>, line: &Line) -> Option<(&'a [u8], Access)> {
    match &line.kind {
        Kind::Rule(rule) if !rule.pattern && rule.access != Access::Deny => {
            Some((doc.bytes(&rule.filter), rule.access))
        }
        _ => None,
    }
}

fn deny<'a>(doc: &Document<'a>, line: &Line) -> Option<&'a [u8]> {
    match &line.kind {
        Kind::Rule(rule) if !rule.pattern && rule.access == Access::Deny => {
            Some(doc.bytes(&rule.filter))
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

fn indent_of<'a>(doc: &Document<'a>, line: &Line) -> &'a [u8] {
    let content = doc.content(line);
    let n = content.iter().take_while(|&&b| b == b' ').count();
    &content[..n]
}

/// Grants `user` `access` (not `Deny`) on `filter`.
pub fn allow(doc: &Document, user: &[u8], filter: &[u8], access: Access) -> Allowed {
    debug_assert!(access != Access::Deny);
    let lines = doc.lines();
    let blocks = blocks_of(doc, user);
    let in_blocks = || blocks.iter().flat_map(|(_, range)| range.clone());

    let overlapping_denies = in_blocks()
        .filter(|&i| deny(doc, &lines[i]).is_some_and(|d| topic::overlaps(d, filter)))
        .map(|i| i + 1)
        .collect();
    let existing: Vec<(usize, Access)> = in_blocks()
        .filter_map(|i| grant(doc, &lines[i]).map(|(f, a)| (i, f, a)))
        .filter(|&(_, f, _)| f == filter)
        .map(|(i, _, a)| (i, a))
        .collect();

    let mut patch = Patch::new(doc);
    let (action, removed_duplicates) = if let Some(&(first, current)) = existing.first() {
        let duplicates: Vec<usize> = existing[1..].iter().map(|&(i, _)| i).collect();
        for &i in &duplicates {
            patch.delete(i);
        }
        if current != access {
            let indent = indent_of(doc, &lines[first]);
            patch.replace(first, &topic_line(indent, access, filter));
        }
        let action = if current == access && duplicates.is_empty() {
            AllowAction::Unchanged
        } else {
            AllowAction::Updated
        };
        (action, duplicates.iter().map(|i| i + 1).collect())
    } else if let Some((user_line, range)) = blocks.last() {
        let anchor = range
            .clone()
            .rev()
            .find(|&i| !matches!(lines[i].kind, Kind::Blank | Kind::Comment))
            .unwrap_or(*user_line);
        let indent = range
            .clone()
            .rev()
            .find(|&i| matches!(lines[i].kind, Kind::Rule(_)))
            .map_or(&b""[..], |i| indent_of(doc, &lines[i]));
        patch.insert_after(anchor, &[topic_line(indent, access, filter)]);
        (AllowAction::Added, Vec::new())
    } else {
        let mut head = Vec::new();
        if lines.last().is_some_and(|l| !matches!(l.kind, Kind::Blank)) {
            head.push(Vec::new());
        }
        head.push([&b"user "[..], user].concat());
        patch.append(&head);
        patch.append(&[topic_line(b"", access, filter)]);
        (AllowAction::AddedUser, Vec::new())
    };
    patch.mark_last();

    let (pieces, line) = if action == AllowAction::Unchanged {
        (None, existing.first().map_or(0, |&(i, _)| i) + 1)
    } else {
        let rendered = patch.render();
        let line = match action {
            // Duplicates all come after the first grant, which keeps its number.
            AllowAction::Updated => existing.first().map_or(0, |&(i, _)| i) + 1,
            _ => rendered.marked_line.unwrap_or(0),
        };
        (Some(rendered.pieces), line)
    };
    Allowed {
        pieces,
        action,
        line,
        removed_duplicates,
        overlapping_denies,
    }
}

/// Removes `user`'s grants on `filter`, or all its grants when `filter` is `None`.
pub fn revoke(doc: &Document, user: &[u8], filter: Option<&[u8]>) -> Revoked {
    let lines = doc.lines();
    let blocks = blocks_of(doc, user);
    let mut patch = Patch::new(doc);
    let mut deleted = vec![false; lines.len()];
    let mut removed = Vec::new();
    let mut removed_users = Vec::new();
    let mut kept_denies = Vec::new();

    for (user_line, range) in &blocks {
        let mut remove: Vec<usize> = Vec::new();
        for i in range.clone() {
            if let Some((f, _)) = grant(doc, &lines[i])
                && filter.is_none_or(|wanted| wanted == f)
            {
                remove.push(i);
            }
            if deny(doc, &lines[i]).is_some() {
                kept_denies.push(i + 1);
            }
        }
        if remove.is_empty() {
            continue;
        }
        removed.extend(remove.iter().map(|i| i + 1));
        let emptied = range
            .clone()
            .all(|i| remove.contains(&i) || matches!(lines[i].kind, Kind::Blank));
        if emptied {
            remove.extend(range.clone());
            remove.push(*user_line);
            removed_users.push(user_line + 1);
            if range.end == lines.len()
                && *user_line > 0
                && matches!(lines[user_line - 1].kind, Kind::Blank)
            {
                // The last block: also the blank line `allow` put before it.
                remove.push(user_line - 1);
            }
        }
        remove.sort_unstable();
        remove.dedup();
        for i in remove {
            if !deleted[i] {
                deleted[i] = true;
                patch.delete(i);
            }
        }
    }
    let pieces = (!patch.is_empty()).then(|| patch.render().pieces);
    Revoked {
        pieces,
        removed,
        removed_users,
        kept_denies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow_s(text: &str, user: &str, filter: &str, access: Access) -> (String, Allowed) {
        let doc = Document::parse(text.as_bytes()).unwrap();
        let a = allow(&doc, user.as_bytes(), filter.as_bytes(), access);
        let t = String::from_utf8(a.text(text.as_bytes())).unwrap();
        (t, a)
    }

    fn revoke_s(text: &str, user: &str, filter: Option<&str>) -> (String, Revoked) {
        let doc = Document::parse(text.as_bytes()).unwrap();
        let r = revoke(&doc, user.as_bytes(), filter.map(str::as_bytes));
        let t = String::from_utf8(r.text(text.as_bytes())).unwrap();
        (t, r)
    }

    #[test]
    fn a_new_device_gets_a_block_at_the_end() {
        let (t, a) = allow_s("", "d1", "wott/#", Access::ReadWrite);
        assert_eq!(t, "user d1\ntopic readwrite wott/#\n");
        assert_eq!((a.action, a.line), (AllowAction::AddedUser, 2));
        let (t, a) = allow_s("# acl\nuser d0\ntopic x", "d1", "y", Access::Read);
        assert_eq!(t, "# acl\nuser d0\ntopic x\n\nuser d1\ntopic read y\n");
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
        assert_eq!(a.removed_duplicates, vec![4]);
    }

    #[test]
    fn overlapping_denies_are_reported() {
        let (_, a) = allow_s(
            "user d1\ntopic deny wott/secret\n",
            "d1",
            "wott/#",
            Access::Read,
        );
        assert_eq!(a.overlapping_denies, vec![2]);
    }

    #[test]
    fn revoke_then_allow_round_trips() {
        let original = "# acl\nuser d0\ntopic x";
        let (added, _) = allow_s(original, "d1", "y", Access::Read);
        let (back, r) = revoke_s(&added, "d1", Some("y"));
        assert_eq!(back, "# acl\nuser d0\ntopic x\n");
        assert_eq!((r.removed, r.removed_users), (vec![6], vec![5]));
        let (back, _) = revoke_s(&added, "d1", None);
        assert_eq!(back, "# acl\nuser d0\ntopic x\n");
    }

    #[test]
    fn revoke_keeps_denies_comments_and_other_users() {
        let text = "user d1\ntopic read a\ntopic deny b\n\nuser d2\ntopic read a\n";
        let (t, r) = revoke_s(text, "d1", None);
        assert_eq!(t, "user d1\ntopic deny b\n\nuser d2\ntopic read a\n");
        assert_eq!(r.kept_denies, vec![3]);
        let (t, r) = revoke_s(text, "d1", Some("zz"));
        assert_eq!((t.as_str(), r.removed.len()), (text, 0));
        // A block in the middle keeps the separator before the next one.
        let text = "user d0\ntopic a\n\nuser d1\ntopic b\n\nuser d2\ntopic c\n";
        let (t, _) = revoke_s(text, "d1", None);
        assert_eq!(t, "user d0\ntopic a\n\nuser d2\ntopic c\n");
    }
}
