//! `acl allow` and `acl revoke`: one grant in or out, and the reload that
//! applies it.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::*;

#[derive(Debug, Serialize)]
pub(super) struct AllowReport {
    file: String,
    device_id: String,
    topic: String,
    access: Access,
    changed: bool,
    action: AllowAction,
    /// The grant line after the edit.
    line: usize,
    location: String,
    /// Lines (before the edit) of duplicate grants that were removed.
    removed_duplicates: Vec<usize>,
    /// This device's `deny` rules that still take away part of the grant.
    overlapping_denies: Vec<LineRef>,
    dry_run: bool,
    /// The unified diff, with --dry-run.
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
    /// The managed broker containers that reloaded the file.
    #[serde(flatten)]
    reloaded: Reloads,
}

impl Human for AllowReport {
    fn human(&self, p: Paint) -> String {
        let mut s = String::new();
        if let Some(diff) = &self.diff {
            s.push_str(&sanitize(diff));
        }
        let grant = format!("topic {} {}", self.access.keyword(), sanitize(&self.topic));
        let what = match self.action {
            AllowAction::Unchanged => format!(
                "{} {} already grants {} {} on {}",
                p.dim("unchanged:"),
                self.location,
                sanitize(&self.device_id),
                self.access.keyword(),
                sanitize(&self.topic)
            ),
            AllowAction::Updated => format!("{} {} {grant}", p.good("updated:"), self.location),
            AllowAction::Added => format!("{} {} {grant}", p.good("added:"), self.location),
            AllowAction::AddedUser => format!(
                "{} {} {grant} (new block for user {})",
                p.good("added:"),
                self.location,
                sanitize(&self.device_id)
            ),
        };
        let _ = writeln!(s, "{what}");
        for line in &self.removed_duplicates {
            let _ = writeln!(
                s,
                "{} {} (a duplicate of that grant)",
                p.good("removed:"),
                location(Path::new(&self.file), *line)
            );
        }
        self.reloaded.lines(&mut s, p);
        if self.dry_run && self.changed {
            let _ = writeln!(s, "{}", p.dim("dry run: nothing was written"));
        }
        s
    }
}

pub(super) fn grant_access(arg: AccessArg) -> Access {
    match arg {
        AccessArg::Read => Access::Read,
        AccessArg::Write => Access::Write,
        AccessArg::Readwrite => Access::ReadWrite,
    }
}

pub(super) fn allow(config: &Config, file: &Path, args: &AclAllowArgs) -> Result<Outcome, Error> {
    let device = device(config, &args.device)?;
    let filter = TopicFilter::new(&args.topic)?;
    let access = grant_access(args.access);
    let granted = acl::file::allow(file, &device, &filter, access, args.dry_run)?;
    let (edit, allowed) = (granted.edit, granted.result);
    warn_if_refused(config, file, allowed.refused.as_ref());
    let (action, line) = (allowed.action, allowed.line);
    let removed_duplicates: Vec<usize> =
        allowed.removed_duplicates.iter().map(|n| n.line).collect();
    let denies: Vec<LineRef> = allowed
        .overlapping_denies
        .into_iter()
        .map(|n| LineRef::noted(file, n))
        .collect();
    for deny in &denies {
        config.output.warn(&sanitize(&format!(
            "{} `{}` still denies part of this grant: Mosquitto checks deny rules first",
            deny.location, deny.text
        )));
    }
    let (reloaded, withheld) = if edit.changed && !args.dry_run {
        applied(config, file, !args.no_reload)
    } else {
        (Reloads::default(), None)
    };
    let outcome = Outcome::report(AllowReport {
        file: file.display().to_string(),
        device_id: device.to_string(),
        topic: filter.to_string(),
        access,
        changed: edit.changed,
        action,
        line,
        location: location(file, line),
        removed_duplicates,
        overlapping_denies: denies,
        dry_run: args.dry_run,
        diff: args.dry_run.then(|| edit.diff.unwrap_or_default()),
        reloaded,
    });
    Ok(match withheld {
        Some(error) => outcome.with_error(error),
        None => outcome,
    })
}

// ---------------------------------------------------------------- revoke

#[derive(Debug, Serialize)]
pub(super) struct RevokeReport {
    file: String,
    device_id: String,
    /// `null`: all of the device's grants.
    topic: Option<String>,
    changed: bool,
    /// The grant lines removed (numbered as before the edit).
    removed: Vec<LineRef>,
    /// `user` lines removed with their emptied blocks.
    removed_users: Vec<LineRef>,
    /// This device's `deny` rules, which revoke keeps.
    kept_denies: Vec<LineRef>,
    dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
    /// The managed broker containers that reloaded the file.
    #[serde(flatten)]
    reloaded: Reloads,
}

impl Human for RevokeReport {
    fn human(&self, p: Paint) -> String {
        let mut s = String::new();
        if let Some(diff) = &self.diff {
            s.push_str(&sanitize(diff));
        }
        if self.removed.is_empty() {
            let what = match &self.topic {
                Some(topic) => format!(
                    "{} has no grant on {} in {}",
                    sanitize(&self.device_id),
                    sanitize(topic),
                    self.file
                ),
                None => format!(
                    "{} has no grants in {}",
                    sanitize(&self.device_id),
                    self.file
                ),
            };
            let _ = writeln!(s, "{} {what}", p.dim("unchanged:"));
        }
        let lines = [
            (p.good("removed:"), &self.removed, ""),
            (p.good("removed:"), &self.removed_users, " (no rules left)"),
            (p.dim("kept:"), &self.kept_denies, " (deny rules are kept)"),
        ];
        for (label, refs, why) in lines {
            for line in refs {
                let text = excerpt(&line.text, 200);
                let _ = writeln!(s, "{label} {} {}{why}", line.location, sanitize(&text));
            }
        }
        self.reloaded.lines(&mut s, p);
        if self.dry_run && self.changed {
            let _ = writeln!(s, "{}", p.dim("dry run: nothing was written"));
        }
        s
    }
}

pub(super) fn revoke(config: &Config, file: &Path, args: &AclRevokeArgs) -> Result<Outcome, Error> {
    let device = device(config, &args.device)?;
    let filter = args.topic.as_deref().map(TopicFilter::new).transpose()?;
    let revoked = acl::file::revoke(file, &device, filter.as_ref(), args.dry_run)?;
    let (edit, revoked) = (revoked.edit, revoked.result);
    warn_if_refused(config, file, revoked.refused.as_ref());
    let refs = |noted: Vec<edit::Noted>| {
        noted
            .into_iter()
            .map(|n| LineRef::noted(file, n))
            .collect::<Vec<_>>()
    };
    let removed = refs(revoked.removed);
    let removed_users = refs(revoked.removed_users);
    let kept_denies = refs(revoked.kept_denies);
    let (reloaded, withheld) = if edit.changed && !args.dry_run {
        applied(config, file, !args.no_reload)
    } else {
        (Reloads::default(), None)
    };
    let outcome = Outcome::report(RevokeReport {
        file: file.display().to_string(),
        device_id: device.to_string(),
        topic: filter.map(|f| f.to_string()),
        changed: edit.changed,
        removed,
        removed_users,
        kept_denies,
        dry_run: args.dry_run,
        diff: args.dry_run.then(|| edit.diff.unwrap_or_default()),
        reloaded,
    });
    Ok(match withheld {
        Some(error) => outcome.with_error(error),
        None => outcome,
    })
}

// ---------------------------------------------------------------- validate
