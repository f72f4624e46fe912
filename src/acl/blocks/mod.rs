//! The devices' `user` blocks, edited in one pass over the file: the one
//! engine under `allow`, `revoke` and `apply`.
//!
//! Each device the caller names gets a [`Want`]: the grants it must have
//! (each on exactly one line) and which of its other grant lines go. The
//! scan reads the file once, line by line, and records edits
//! (`crate::lines::Edits`); every line it does not mean to change is
//! copied as it is. The rules, the same for one device as for ten thousand:
//!
//! - A wanted grant already there stays where it is: its first line keeps
//!   its place (its access rewritten in place if it differs), later lines
//!   with the same filter in the device's blocks are deleted.
//! - A missing grant is added after the last line of the device's last
//!   block that is not blank or a comment, indented like its last rule; a
//!   device with no block gets one at the end of the file, after one blank
//!   line (or none, in an empty file).
//! - `deny` lines are never removed (taking a deny away would give access
//!   back), nor are `pattern` lines, comments, lines Mosquitto refuses, or
//!   anything before the first `user` line.
//! - A block left with nothing but blank lines by the removals goes with its
//!   `user` line (and, when it ends the file, with the one blank line before
//!   it), so that adding a device and removing it again gives back the
//!   original bytes. `allow` never removes a block.
//!
//! With `exclusive`, every block of a user no [`Want`] names loses its grant
//! lines by the same rules.

mod scan;

use std::io::{self, Read};

use scan::Scan;

use super::document::{self, Access, Document, LineView};
use super::eval::Refused;
use crate::files::Piece;
use crate::lines::Summary;

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

/// Which of a device's grant lines that no wanted grant covers go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Others<'a> {
    /// None of them (`allow`); blocks are never removed.
    Keep,
    /// The ones on this filter (`revoke TOPIC`).
    Only(&'a [u8]),
    /// All of them (`revoke` of a device, `apply`).
    All,
}

impl Others<'_> {
    fn take(self, filter: &[u8]) -> bool {
        match self {
            Others::Keep => false,
            Others::Only(wanted) => wanted == filter,
            Others::All => true,
        }
    }
}

/// What one device's grants are to become.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    /// The `user` name: the device ID.
    pub user: &'a [u8],
    /// Grants it must have, each on one line; new lines come in this order.
    /// `Access::Deny` is not a grant.
    pub grants: &'a [(&'a [u8], Access)],
    pub others: Others<'a>,
}

/// The lines the scan reports for one wanted device; most devices of a
/// large run have none, and then it is not allocated.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// Lines whose access was rewritten.
    pub updated: Vec<usize>,
    /// Later lines of a wanted grant, deleted.
    pub duplicates: Vec<Noted>,
    /// Other grants removed.
    pub removed: Vec<Noted>,
    /// `user` lines removed with their emptied blocks.
    pub removed_users: Vec<Noted>,
    /// The device's `deny` lines (kept).
    pub denies: Vec<Noted>,
    /// Those of them that overlap a wanted grant: Mosquitto checks them first.
    pub overlapping_denies: Vec<Noted>,
}

static NO_DETAILS: Details = Details {
    updated: Vec::new(),
    duplicates: Vec::new(),
    removed: Vec::new(),
    removed_users: Vec::new(),
    denies: Vec::new(),
    overlapping_denies: Vec::new(),
};

/// What the scan did to one wanted device.
#[derive(Debug, Clone, Default)]
pub struct DeviceEdit {
    /// The line (old numbering) its first wanted grant was found on.
    pub found_first: Option<usize>,
    /// The last line (old numbering) a wanted grant of it was found on.
    pub found_last: Option<usize>,
    /// How many of its wanted grants were missing and were added.
    pub added: usize,
    /// The line of the first added grant in the new file, when no line
    /// before it was deleted; `None` when nothing was added.
    pub added_line: Option<usize>,
    /// Whether the added grants went into a new block.
    pub new_block: bool,
    details: Option<Box<Details>>,
}

impl DeviceEdit {
    pub fn details(&self) -> &Details {
        self.details.as_deref().unwrap_or(&NO_DETAILS)
    }

    pub fn into_details(self) -> Details {
        self.details.map(|d| *d).unwrap_or_default()
    }

    fn details_mut(&mut self) -> &mut Details {
        self.details.get_or_insert_with(Box::default)
    }

    pub fn changed(&self) -> bool {
        let d = self.details();
        self.added > 0
            || !(d.updated.is_empty()
                && d.duplicates.is_empty()
                && d.removed.is_empty()
                && d.removed_users.is_empty())
    }
}

/// What the scan did to one block of a user no [`Want`] names (`exclusive`).
#[derive(Debug, Clone)]
pub struct UnlistedEdit {
    pub user: Vec<u8>,
    pub removed: Vec<Noted>,
    /// The `user` line, when the block went with it.
    pub removed_user: Option<Noted>,
    pub denies: Vec<Noted>,
}

/// The result of a scan.
#[derive(Debug, Clone)]
pub struct BlockEdits {
    /// The new file as pieces of the old one and new bytes; `None` when nothing changes.
    pub pieces: Option<Vec<Piece>>,
    /// One per [`Want`], in order.
    pub devices: Vec<DeviceEdit>,
    /// The blocks of unlisted users that lost grants, in file order.
    pub unlisted: Vec<UnlistedEdit>,
    /// The first line Mosquitto refuses, if any (the edits keep it).
    pub refused: Option<Refused>,
    /// The old file's summary.
    pub file: Summary,
}

/// Runs the scan over a parsed document.
pub fn edit_document(doc: &Document, wants: &[Want], exclusive: bool) -> BlockEdits {
    let mut scan = Scan::new(wants, exclusive);
    let file = doc.visit(|line| scan.see(line));
    scan.finish(file)
}

/// Runs the scan over a stream, never holding the whole file.
pub fn edit_stream(reader: impl Read, wants: &[Want], exclusive: bool) -> io::Result<BlockEdits> {
    let mut scan = Scan::new(wants, exclusive);
    let file = document::scan(reader, |line| {
        scan.see(line);
        true
    })?;
    Ok(scan.finish(file))
}
