//! The scan behind [`super::edit_document`] and [`super::edit_stream`]:
//! the per-device state, the blocks met so far, and the edits they make.

use super::{BlockEdits, DeviceEdit, Noted, Others, UnlistedEdit, Want};
use crate::acl::FastMap;
use crate::acl::document::{Access, Kind, LineView};
use crate::acl::eval::Refused;
use crate::acl::{lint, topic};
use crate::lines::{self, Edits, LineSpan, Summary, Tail};

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

/// `topic ACCESS FILTER`, indented by `indent` spaces (the only indentation
/// Mosquitto reads).
fn topic_line(indent: usize, access: Access, filter: &[u8]) -> Vec<u8> {
    let mut lines = NewLines::default();
    lines.topic(indent, access, filter);
    lines.bytes
}

/// New lines (without endings) in one buffer: an edit adding tens of
/// thousands of lines makes two allocations, not one per line.
#[derive(Debug, Default)]
struct NewLines {
    bytes: Vec<u8>,
    /// Where each line ends in `bytes`.
    ends: Vec<usize>,
}

impl NewLines {
    fn line(&mut self, parts: &[&[u8]]) {
        for part in parts {
            self.bytes.extend_from_slice(part);
        }
        self.ends.push(self.bytes.len());
    }

    fn topic(&mut self, indent: usize, access: Access, filter: &[u8]) {
        self.bytes.resize(self.bytes.len() + indent, b' ');
        self.line(&[b"topic ", access.keyword().as_bytes(), b" ", filter]);
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// The lines, for `lines::added_after`.
    fn refs(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let line = &self.bytes[start..end];
                start = end;
                line
            })
            .collect()
    }
}

/// Where new grants go in a device's last block: after its last line that
/// is not blank or a comment.
#[derive(Debug, Clone, Copy)]
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

/// A wanted grant's first line: it is the one that stays.
#[derive(Debug, Clone)]
struct Found {
    line: usize,
    span: LineSpan,
    access: Access,
    indent: usize,
    crlf: bool,
    has_newline: bool,
}

/// A block's `user` line, to report it if the block goes: its number and,
/// unless it is the usual `user ` before the name, what comes before the
/// name (the name itself is known), so that thousands of blocks cost no
/// allocation each.
#[derive(Debug)]
struct UserLine {
    line: usize,
    prefix: Option<Box<[u8]>>,
}

impl UserLine {
    fn of(line: &LineView, name: &[u8]) -> UserLine {
        // The name ends where the shown text ends (trailing blanks trimmed).
        let prefix = &line.content()[..line.shown_len().saturating_sub(name.len())];
        UserLine {
            line: line.index + 1,
            prefix: (prefix != b"user ").then(|| prefix.into()),
        }
    }

    fn noted(&self, name: &[u8]) -> Noted {
        let mut text = self.prefix.as_deref().unwrap_or(b"user ").to_vec();
        text.extend_from_slice(name);
        Noted {
            line: self.line,
            text: String::from_utf8_lossy(&text).into_owned(),
        }
    }
}

/// Whose block is being read.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Listed(usize),
    Unlisted(usize),
}

/// One block while it is being read, and until its fate is decided.
#[derive(Debug)]
struct Block {
    owner: Owner,
    user_line: UserLine,
    user_span: LineSpan,
    /// The blank line just before the `user` line.
    blank_before: Option<LineSpan>,
    /// Grant lines it loses.
    going: Vec<(LineSpan, Noted)>,
    lost_duplicates: bool,
    blanks: Vec<LineSpan>,
    /// Whether anything but lost grants and blank lines is in it.
    keeps_something: bool,
}

/// A wanted device while the file is read: small, since a run may have
/// tens of thousands.
#[derive(Debug, Default)]
struct Device<'a> {
    edit: DeviceEdit,
    /// Where its wanted grants start in `Scan::found`.
    base: usize,
    /// For a device with many wanted grants: their filters, sorted, with
    /// their index (a few are searched in order).
    lookup: Vec<(&'a [u8], usize)>,
    anchor: Option<Anchor>,
    /// Indentation (spaces) of the last rule line of its current block.
    indent: usize,
    /// Its latest block, emptied: removed unless new grants go into it.
    pending: Option<Box<Block>>,
}

/// Beyond this many wanted grants, a device's filters are looked up sorted.
const FEW: usize = 8;

impl<'a> Device<'a> {
    fn new(want: &Want<'a>, base: usize) -> Device<'a> {
        let mut lookup = Vec::new();
        if want.grants.len() > FEW {
            lookup = want
                .grants
                .iter()
                .enumerate()
                .map(|(i, (filter, _))| (*filter, i))
                .collect();
            lookup.sort_unstable();
        }
        Device {
            base,
            lookup,
            ..Device::default()
        }
    }

    /// The index of the wanted grant on `filter`, if any.
    fn wanted(&self, want: &Want, filter: &[u8]) -> Option<usize> {
        if self.lookup.is_empty() {
            return want.grants.iter().position(|(f, _)| *f == filter);
        }
        self.lookup
            .binary_search_by(|(f, _)| (*f).cmp(filter))
            .ok()
            .map(|at| self.lookup[at].1)
    }
}

pub(super) struct Scan<'w, 'a> {
    wants: &'w [Want<'a>],
    index: FastMap<&'a [u8], usize>,
    exclusive: bool,
    devices: Vec<Device<'a>>,
    /// Every wanted grant's first line, device after device.
    found: Vec<Option<Found>>,
    unlisted: Vec<UnlistedEdit>,
    block: Option<Block>,
    previous_blank: Option<LineSpan>,
    refusal: FirstRefusal,
    edits: Edits,
    /// The blank lines before removed blocks: each goes too when nothing
    /// is left after it.
    separators: Vec<LineSpan>,
}

impl<'w, 'a> Scan<'w, 'a> {
    pub(super) fn new(wants: &'w [Want<'a>], exclusive: bool) -> Self {
        let mut index = FastMap::with_capacity_and_hasher(wants.len(), Default::default());
        let mut devices = Vec::with_capacity(wants.len());
        let mut base = 0;
        for (i, want) in wants.iter().enumerate() {
            index.insert(want.user, i);
            devices.push(Device::new(want, base));
            base += want.grants.len();
        }
        Scan {
            wants,
            index,
            exclusive,
            devices,
            found: vec![None; base],
            unlisted: Vec::new(),
            block: None,
            previous_blank: None,
            refusal: FirstRefusal::default(),
            edits: Edits::default(),
            separators: Vec::new(),
        }
    }

    pub(super) fn see(&mut self, line: &LineView) {
        self.refusal.see(line);
        let span = line.span();
        if let Kind::User { name } = &line.kind {
            self.close();
            self.open(line, line.bytes(name), span);
        } else if let Some(mut block) = self.block.take() {
            self.in_block(&mut block, line, span);
            self.block = Some(block);
        }
        self.previous_blank = matches!(line.kind, Kind::Blank).then_some(span);
    }

    fn open(&mut self, line: &LineView, name: &[u8], span: LineSpan) {
        let owner = match self.index.get(name) {
            Some(&i) => {
                // Its earlier emptied block is not its last: it goes.
                if let Some(pending) = self.devices[i].pending.take() {
                    self.drop_block(*pending);
                }
                let device = &mut self.devices[i];
                device.indent = 0;
                device.anchor = Some(Anchor::of(line));
                Owner::Listed(i)
            }
            None if self.exclusive => {
                self.unlisted.push(UnlistedEdit {
                    user: name.to_vec(),
                    removed: Vec::new(),
                    removed_user: None,
                    denies: Vec::new(),
                });
                Owner::Unlisted(self.unlisted.len() - 1)
            }
            None => return,
        };
        self.block = Some(Block {
            owner,
            user_line: UserLine::of(line, name),
            user_span: span,
            blank_before: self.previous_blank,
            going: Vec::new(),
            lost_duplicates: false,
            blanks: Vec::new(),
            keeps_something: false,
        });
    }

    fn in_block(&mut self, block: &mut Block, line: &LineView, span: LineSpan) {
        let wants = self.wants;
        let (want, mut device, unlisted) = match block.owner {
            Owner::Listed(i) => (Some(&wants[i]), Some(&mut self.devices[i]), None),
            Owner::Unlisted(j) => (None, None, Some(&mut self.unlisted[j])),
        };
        if let Some(device) = device.as_deref_mut() {
            if !matches!(line.kind, Kind::Blank | Kind::Comment) {
                device.anchor = Some(Anchor::of(line));
            }
            if let Kind::Rule(_) = line.kind {
                device.indent = line.indent().len();
            }
        }
        if let Some(deny) = is_deny(line) {
            block.keeps_something = true;
            if let (Some(want), Some(device)) = (want, device) {
                let details = device.edit.details_mut();
                if want.grants.iter().any(|(f, _)| topic::overlaps(deny, f)) {
                    details.overlapping_denies.push(Noted::of(line));
                }
                details.denies.push(Noted::of(line));
            } else if let Some(unlisted) = unlisted {
                unlisted.denies.push(Noted::of(line));
            }
        } else if let Some((filter, access)) = is_grant(line) {
            let wanted = match (want, device) {
                (Some(want), Some(device)) => device.wanted(want, filter).map(|k| (device, k)),
                _ => None,
            };
            match wanted {
                Some((device, k)) if self.found[device.base + k].is_none() => {
                    self.found[device.base + k] = Some(Found {
                        line: line.index + 1,
                        span,
                        access,
                        indent: line.indent().len(),
                        crlf: line.content().ends_with(b"\r"),
                        has_newline: line.has_newline(),
                    });
                    block.keeps_something = true;
                }
                Some((device, _)) => {
                    self.edits.delete_line(span);
                    device.edit.details_mut().duplicates.push(Noted::of(line));
                    block.lost_duplicates = true;
                }
                None if want.is_none_or(|w| w.others.take(filter)) => {
                    block.going.push((span, Noted::of(line)));
                }
                None => block.keeps_something = true,
            }
        } else if matches!(line.kind, Kind::Blank) {
            block.blanks.push(span);
        } else {
            block.keeps_something = true;
        }
    }

    /// The block being read ends (at the next `user` line, or at the end of the file).
    fn close(&mut self) {
        let Some(mut block) = self.block.take() else {
            return;
        };
        let lost = !block.going.is_empty() || block.lost_duplicates;
        for (span, noted) in std::mem::take(&mut block.going) {
            self.edits.delete_line(span);
            match block.owner {
                Owner::Listed(i) => self.devices[i].edit.details_mut().removed.push(noted),
                Owner::Unlisted(j) => self.unlisted[j].removed.push(noted),
            }
        }
        let drops = match block.owner {
            Owner::Listed(i) => self.wants[i].others != Others::Keep,
            Owner::Unlisted(_) => true,
        };
        if !lost || block.keeps_something || !drops {
            return;
        }
        match block.owner {
            // New grants may still go into it: decided at the end.
            Owner::Listed(i) if !self.wants[i].grants.is_empty() => {
                self.devices[i].pending = Some(Box::new(block));
            }
            _ => self.drop_block(block),
        }
    }

    /// Removes an emptied block: its `user` line and its blank lines; the
    /// blank line before it goes too if the block turns out to end the file.
    fn drop_block(&mut self, block: Block) {
        self.edits.delete_line(block.user_span);
        for span in &block.blanks {
            self.edits.delete_line(*span);
        }
        self.separators.extend(block.blank_before);
        match block.owner {
            Owner::Listed(i) => {
                let noted = block.user_line.noted(self.wants[i].user);
                self.devices[i].edit.details_mut().removed_users.push(noted);
            }
            Owner::Unlisted(j) => {
                let noted = block.user_line.noted(&self.unlisted[j].user);
                self.unlisted[j].removed_user = Some(noted);
            }
        }
    }

    pub(super) fn finish(mut self, file: Summary) -> BlockEdits {
        self.close();
        // The lines of the blocks of new devices, appended at the end.
        let mut appended = NewLines::default();
        let mut grants = NewLines::default();
        let mut missing = Vec::new();
        for i in 0..self.wants.len() {
            self.settle_found(i, &mut missing);
            // Its last block, emptied, stays when new grants go into it.
            if let Some(pending) = self.devices[i].pending.take()
                && missing.is_empty()
            {
                self.drop_block(*pending);
            }
            if !missing.is_empty() {
                grants.clear();
                self.add(i, &missing, &file, &mut grants, &mut appended);
            }
        }
        // The removed blocks that end the file take the blank line before them.
        let tail = self.edits.deleted_tail(file.len);
        for span in std::mem::take(&mut self.separators) {
            if span.end >= tail {
                self.edits.delete_line(span);
            }
        }
        if !appended.is_empty() {
            self.edits.insert(file.len, file.appended(&appended.refs()));
        }
        let edits = self.edits;
        BlockEdits {
            pieces: (!edits.is_empty()).then(|| edits.into_pieces(&file)),
            devices: self.devices.into_iter().map(|d| d.edit).collect(),
            unlisted: self
                .unlisted
                .into_iter()
                .filter(|u| !u.removed.is_empty())
                .collect(),
            refused: self.refusal.0,
            file,
        }
    }

    /// Adds device `i`'s `missing` grants (built in `grants`): after its
    /// anchor, or as a new block in `appended`.
    fn add(
        &mut self,
        i: usize,
        missing: &[usize],
        file: &Summary,
        grants: &mut NewLines,
        appended: &mut NewLines,
    ) {
        let want = &self.wants[i];
        let device = &mut self.devices[i];
        if let Some(anchor) = device.anchor {
            for &k in missing {
                grants.topic(device.indent, want.grants[k].1, want.grants[k].0);
            }
            self.edits.insert(
                anchor.end,
                lines::added_after(Some(anchor.tail), file.style(), &grants.refs()),
            );
            device.edit.added_line = Some(anchor.line + 1);
        } else {
            // One blank line before each new block (none at the start of
            // an empty file): `revoke` takes it away with the last block.
            if file.last.is_some() || !appended.is_empty() {
                appended.line(&[]);
            }
            appended.line(&[b"user ", want.user]);
            device.edit.added_line = Some(file.lines + appended.ends.len() + 1);
            device.edit.new_block = true;
            for &k in missing {
                appended.topic(0, want.grants[k].1, want.grants[k].0);
            }
        }
        device.edit.added = missing.len();
    }

    /// Rewrites the access of device `i`'s wanted grants found with another
    /// one, and puts the indices of those not found in `missing`.
    fn settle_found(&mut self, i: usize, missing: &mut Vec<usize>) {
        let want = &self.wants[i];
        let device = &mut self.devices[i];
        missing.clear();
        for (k, (filter, access)) in want.grants.iter().enumerate() {
            let Some(found) = &self.found[device.base + k] else {
                missing.push(k);
                continue;
            };
            device.edit.found_first.get_or_insert(found.line);
            device.edit.found_last = device.edit.found_last.max(Some(found.line));
            if found.access == *access {
                continue;
            }
            let mut bytes = topic_line(found.indent, *access, filter);
            if found.crlf {
                bytes.push(b'\r');
            }
            if found.has_newline {
                bytes.push(b'\n');
            }
            self.edits.replace(found.span.range(), bytes);
            device.edit.details_mut().updated.push(found.line);
        }
    }
}
