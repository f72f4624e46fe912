//! `acl list | allow | revoke | validate | check`: the ACL file from the
//! command line. Arguments become a `DeviceId`, `TopicFilter` or `TopicName`
//! here, before anything reads or writes the file; the work is done by `acl`.

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;

use serde::Serialize;

use super::Config;
use crate::acl::edit::{self, AllowAction};
use crate::acl::eval::Refused;
use crate::acl::lint::{self, Finding, Severity};
use crate::acl::{
    self, Access, AclError, Client, Document, Kind, Need, Reason, Rules, Section, eval,
};
use crate::broker;
use crate::cli::{
    AccessArg, AclAllowArgs, AclArgs, AclCheckArgs, AclCommand, AclListArgs, AclRevokeArgs,
};
use crate::error::Error;
use crate::exit_code::ExitCode;
use crate::files::{self, FileError};
use crate::identity;
use crate::names::{DeviceId, TopicFilter, TopicName};
use crate::output::{Human, Outcome, Paint, excerpt, sanitize};

pub fn run(config: &Config, args: AclArgs) -> Result<Outcome, Error> {
    let file = args
        .file
        .filter(|f| !f.as_os_str().is_empty())
        .unwrap_or_else(|| config.server_dir.join(acl::FILE_NAME));
    match args.command {
        AclCommand::List(a) => list(config, &file, &a),
        AclCommand::Allow(a) => allow(config, &file, &a),
        AclCommand::Revoke(a) => revoke(config, &file, &a),
        AclCommand::Validate => validate(&file),
        AclCommand::Check(a) => check(config, &file, &a),
    }
}

/// `DEVICE_ID` or `self` (this device's ID, from the agent's client.crt).
fn device(config: &Config, value: &str) -> Result<DeviceId, Error> {
    if value == "self" {
        let cert = identity::device_id(&config.cert_dir)?;
        return Ok(DeviceId::new(cert.device_id())?);
    }
    Ok(DeviceId::new(value)?)
}

fn read(file: &Path) -> Result<Vec<u8>, Error> {
    files::read_optional(file)?.ok_or_else(|| {
        AclError::NotFound {
            path: file.to_path_buf(),
        }
        .into()
    })
}

/// The ACL file, for reading as a stream.
fn open(file: &Path) -> Result<File, Error> {
    match files::open_optional(file)? {
        Some(handle) => Ok(handle),
        None => Err(AclError::NotFound {
            path: file.to_path_buf(),
        }
        .into()),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn location(file: &Path, line: usize) -> String {
    format!("{}:{line}", file.display())
}

/// A line of the file, for reports.
#[derive(Debug, Serialize)]
struct LineRef {
    line: usize,
    /// `file:line`.
    location: String,
    text: String,
}

impl LineRef {
    fn noted(file: &Path, noted: edit::Noted) -> Self {
        LineRef {
            line: noted.line,
            location: location(file, noted.line),
            text: noted.text,
        }
    }
}

/// Called once after `allow` or `revoke` has changed the file. Mosquitto
/// reads its ACL only at start and on SIGHUP, so a running broker that
/// `wott-mqtt server` manages from this file's folder is reloaded here
/// (unless `--no-reload`); returns the containers reloaded. Otherwise the
/// user is told how to apply the change.
fn applied(config: &Config, file: &Path, reload: bool) -> Vec<String> {
    if reload {
        match broker::reload_after_acl_edit(file) {
            Ok(reloaded) if !reloaded.is_empty() => return reloaded,
            Ok(_) => {}
            Err(e) => {
                config.output.warn(&sanitize(&format!(
                    "{} changed, but the broker could not be reloaded: {e}; \
                     apply it with `sudo wott-mqtt server reload`",
                    file.display()
                )));
                return Vec::new();
            }
        }
    }
    config.output.note(&format!(
        "note: Mosquitto reads {} only when it starts and on SIGHUP; reload the broker to apply this \
         (`wott-mqtt server reload` for the broker `wott-mqtt server up` runs, \
         `systemctl reload mosquitto`, or `docker kill --signal HUP <container>`)",
        file.display()
    ));
    Vec::new()
}

/// `reloaded: the broker in NAME (SIGHUP)` lines.
fn reloaded_lines(s: &mut String, p: Paint, reloaded: &[String]) {
    for name in reloaded {
        let _ = writeln!(
            s,
            "{} the broker in {} (SIGHUP): the change is in force",
            p.good("reloaded:"),
            sanitize(name)
        );
    }
}

/// Says so when the file has lines Mosquitto refuses: the edit keeps them.
fn warn_if_refused(config: &Config, file: &Path, refused: Option<&Refused>) {
    if let Some(refused) = refused {
        config.output.warn(&sanitize(&format!(
            "Mosquitto would refuse {}: {}; run `wott-mqtt acl validate` for details",
            location(file, refused.line + 1),
            refused.message
        )));
    }
}

// ---------------------------------------------------------------- allow

#[derive(Debug, Serialize)]
struct AllowReport {
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
    reloaded: Vec<String>,
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
        reloaded_lines(&mut s, p, &self.reloaded);
        if self.dry_run && self.changed {
            let _ = writeln!(s, "{}", p.dim("dry run: nothing was written"));
        }
        s
    }
}

fn grant_access(arg: AccessArg) -> Access {
    match arg {
        AccessArg::Read => Access::Read,
        AccessArg::Write => Access::Write,
        AccessArg::Readwrite => Access::ReadWrite,
    }
}

fn allow(config: &Config, file: &Path, args: &AclAllowArgs) -> Result<Outcome, Error> {
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
    let reloaded = if edit.changed && !args.dry_run {
        applied(config, file, !args.no_reload)
    } else {
        Vec::new()
    };
    Ok(Outcome::report(AllowReport {
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
    }))
}

// ---------------------------------------------------------------- revoke

#[derive(Debug, Serialize)]
struct RevokeReport {
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
    reloaded: Vec<String>,
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
        for line in &self.removed {
            let _ = writeln!(
                s,
                "{} {} {}",
                p.good("removed:"),
                line.location,
                sanitize(&excerpt(&line.text, 200))
            );
        }
        for line in &self.removed_users {
            let _ = writeln!(
                s,
                "{} {} {} (no rules left)",
                p.good("removed:"),
                line.location,
                sanitize(&excerpt(&line.text, 200))
            );
        }
        for line in &self.kept_denies {
            let _ = writeln!(
                s,
                "{} {} {} (deny rules are kept)",
                p.dim("kept:"),
                line.location,
                sanitize(&excerpt(&line.text, 200))
            );
        }
        reloaded_lines(&mut s, p, &self.reloaded);
        if self.dry_run && self.changed {
            let _ = writeln!(s, "{}", p.dim("dry run: nothing was written"));
        }
        s
    }
}

fn revoke(config: &Config, file: &Path, args: &AclRevokeArgs) -> Result<Outcome, Error> {
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
    let reloaded = if edit.changed && !args.dry_run {
        applied(config, file, !args.no_reload)
    } else {
        Vec::new()
    };
    Ok(Outcome::report(RevokeReport {
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
    }))
}

// ---------------------------------------------------------------- validate

#[derive(Debug, Serialize)]
struct ValidateReport {
    file: String,
    /// Whether Mosquitto accepts the file.
    valid: bool,
    errors: usize,
    warnings: usize,
    findings: Vec<Finding>,
}

impl Human for ValidateReport {
    fn human(&self, p: Paint) -> String {
        let mut s = String::new();
        for f in &self.findings {
            let label = match f.severity {
                Severity::Error => p.bad("error:"),
                Severity::Warning => p.warn("warning:"),
            };
            let _ = writeln!(
                s,
                "{}:{}: {label} {} [{}]",
                self.file,
                f.line,
                sanitize(&f.message),
                f.code
            );
            let _ = writeln!(s, "    | {}", sanitize(&excerpt(&f.text, 200)));
        }
        let summary = if self.valid {
            format!("{} Mosquitto accepts {}", p.mark(true), self.file)
        } else {
            format!("{} Mosquitto refuses {}", p.mark(false), self.file)
        };
        let _ = writeln!(
            s,
            "{summary} ({} error(s), {} warning(s))",
            self.errors, self.warnings
        );
        s
    }
}

fn validate(file: &Path) -> Result<Outcome, Error> {
    let bytes = read(file)?;
    let doc = acl::parse(&bytes, file)?;
    let findings = lint::validate(&doc);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let report = ValidateReport {
        file: file.display().to_string(),
        valid: errors == 0,
        errors,
        warnings: findings.len() - errors,
        findings,
    };
    Ok(if errors > 0 {
        Outcome::report(report).with_error(AclError::Invalid {
            path: file.to_path_buf(),
            errors,
        })
    } else {
        Outcome::report(report)
    })
}

// ---------------------------------------------------------------- list

#[derive(Debug, Serialize)]
struct RuleView {
    line: usize,
    access: Access,
    filter: String,
}

#[derive(Debug, Serialize)]
struct UserView {
    username: String,
    rules: Vec<RuleView>,
}

#[derive(Debug, Serialize)]
struct ListReport {
    file: String,
    /// The device asked about, if any.
    device_id: Option<String>,
    /// Rules before the first `user` line: clients without a username only.
    anonymous: Vec<RuleView>,
    /// Each user's rules, in the order Mosquitto tries them (deny rules first).
    users: Vec<UserView>,
    /// `pattern` rules, tried for every client after its own rules.
    patterns: Vec<RuleView>,
}

fn rule_views(doc: &Document, entries: &[eval::Listed]) -> Vec<RuleView> {
    entries
        .iter()
        .map(|e| RuleView {
            line: e.line + 1,
            access: e.access,
            filter: match &doc.lines()[e.line].kind {
                Kind::Rule(rule) => text(doc.bytes(&rule.filter)),
                _ => String::new(),
            },
        })
        .collect()
}

impl Human for ListReport {
    fn human(&self, p: Paint) -> String {
        let mut s = String::new();
        let rules = |s: &mut String, rules: &[RuleView]| {
            for r in rules {
                let _ = writeln!(
                    s,
                    "  {:<10} {:<40} {}",
                    r.access.keyword(),
                    sanitize(&r.filter),
                    p.dim(&format!("{}:{}", self.file, r.line))
                );
            }
        };
        if self.device_id.is_none() && !self.anonymous.is_empty() {
            let _ = writeln!(
                s,
                "{} {}",
                p.bold("anonymous clients"),
                p.dim("(rules before the first `user` line; never a certificate client)")
            );
            rules(&mut s, &self.anonymous);
        }
        for user in &self.users {
            let _ = writeln!(s, "{} {}", p.bold("user"), sanitize(&user.username));
            rules(&mut s, &user.rules);
        }
        if let Some(device) = &self.device_id
            && self.users.is_empty()
        {
            let _ = writeln!(
                s,
                "{} {} {}",
                p.bold("user"),
                sanitize(device),
                p.dim("(no rules of its own)")
            );
        }
        if !self.patterns.is_empty() {
            let _ = writeln!(
                s,
                "{} {}",
                p.bold("every client"),
                p.dim(
                    "(pattern lines, after the client's own rules; %u = username, %c = client ID)"
                )
            );
            rules(&mut s, &self.patterns);
        }
        if s.is_empty() {
            let _ = writeln!(s, "{}: no rules: Mosquitto denies everything", self.file);
        }
        s
    }
}

fn list(config: &Config, file: &Path, args: &AclListArgs) -> Result<Outcome, Error> {
    let device = args
        .device
        .as_deref()
        .map(|d| device(config, d))
        .transpose()?;
    let bytes = read(file)?;
    let doc = acl::parse(&bytes, file)?;
    let ruleset = eval::Ruleset::build(&doc);
    let users = ruleset
        .users
        .iter()
        .filter(|(name, _)| {
            device
                .as_ref()
                .is_none_or(|d| d.as_str().as_bytes() == *name)
        })
        .map(|(name, entries)| UserView {
            username: text(name),
            rules: rule_views(&doc, entries),
        })
        .collect();
    let report = ListReport {
        file: file.display().to_string(),
        device_id: device.map(|d| d.to_string()),
        anonymous: rule_views(&doc, &ruleset.anonymous),
        users,
        patterns: rule_views(&doc, &ruleset.patterns),
    };
    Ok(match acl::refusal(&doc, file) {
        Some(refusal) => Outcome::report(report).with_error(refusal),
        None => Outcome::report(report),
    })
}

// ---------------------------------------------------------------- check

#[derive(Debug, Serialize)]
struct CheckReport {
    file: String,
    device_id: String,
    /// `null` when --client-id was not given.
    client_id: Option<String>,
    topic: String,
    /// Whether every access asked for is allowed.
    allowed: bool,
    checks: Vec<AccessCheck>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct AccessCheck {
    access: Need,
    allowed: bool,
    /// `rule`, `sys-write`, `shared-prefix`, `dangerous-username`,
    /// `dangerous-client-id`, `no-rules` or `no-match`.
    reason: &'static str,
    /// The line that decided, when a line did.
    decided_by: Option<LineRef>,
    /// `anonymous`, `user` or `pattern`, when a line decided.
    section: Option<Section>,
    explanation: String,
}

impl Human for CheckReport {
    fn human(&self, p: Paint) -> String {
        let mut s = String::new();
        for c in &self.checks {
            let verdict = if c.allowed {
                p.good("allowed")
            } else {
                p.bad("denied")
            };
            let _ = write!(
                s,
                "{} {:<5} {verdict}: {}",
                p.mark(c.allowed),
                c.access.word(),
                sanitize(&c.explanation)
            );
            if let Some(line) = &c.decided_by {
                let _ = write!(
                    s,
                    "\n    {}  {}",
                    line.location,
                    sanitize(&excerpt(&line.text, 200))
                );
            }
            s.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(s, "{} {}", p.dim("note:"), sanitize(note));
        }
        s
    }
}

fn check_accesses(arg: AccessArg) -> &'static [Need] {
    match arg {
        AccessArg::Read => &[Need::Read],
        AccessArg::Write => &[Need::Write],
        AccessArg::Readwrite => &[Need::Read, Need::Write],
    }
}

fn explain(verdict: &eval::Verdict, need: Need, device: &str, topic: &str) -> String {
    let verb = need.word();
    match verdict.reason {
        Reason::Rule { section, .. } => {
            let whose = match section {
                Section::User => format!("{device}'s own rule"),
                Section::Pattern => "a pattern rule for every client".to_string(),
                Section::Anonymous => "a rule for anonymous clients".to_string(),
            };
            if verdict.allowed {
                format!("{whose} grants {verb} on {topic}")
            } else {
                format!("{whose} denies {topic}; deny rules are checked before grants")
            }
        }
        Reason::SysWrite => {
            "Mosquitto refuses every PUBLISH to $SYS topics, whatever the ACL says".to_string()
        }
        Reason::SharedPrefix => {
            "$share/… is the shared-subscription prefix: Mosquitto never lets a client publish or receive it as a topic"
                .to_string()
        }
        Reason::DangerousUsername => format!(
            "the username {device} contains + or #, and Mosquitto denies such clients once `pattern` lines exist"
        ),
        Reason::DangerousClientId => {
            "the client ID contains + or #, and Mosquitto denies such clients once `pattern` lines exist"
                .to_string()
        }
        Reason::NoRules => format!(
            "no rule applies to {device}: it has no `user` block with rules and there are no `pattern` lines"
        ),
        Reason::NoMatch => {
            format!("no rule grants {verb} on {topic}; Mosquitto denies what no rule allows")
        }
    }
}

fn reason_code(reason: Reason) -> &'static str {
    match reason {
        Reason::Rule { .. } => "rule",
        Reason::SysWrite => "sys-write",
        Reason::SharedPrefix => "shared-prefix",
        Reason::DangerousUsername => "dangerous-username",
        Reason::DangerousClientId => "dangerous-client-id",
        Reason::NoRules => "no-rules",
        Reason::NoMatch => "no-match",
    }
}

/// The topic to check: a topic name. A filter is refused with the reason.
fn check_topic(value: &str) -> Result<TopicName, Error> {
    let filter = TopicFilter::new(value)?;
    if filter.has_wildcards() {
        return Err(AclError::FilterNotTopic {
            topic: value.to_string(),
        }
        .into());
    }
    Ok(TopicName::new(value)?)
}

fn check(config: &Config, file: &Path, args: &AclCheckArgs) -> Result<Outcome, Error> {
    let device = device(config, &args.device)?;
    let topic = check_topic(&args.topic)?;
    if let Some(id) = &args.client_id {
        acl::check_client_id(id)?;
    }
    // Streamed: a 20,000-device file is never held in memory for a check.
    let username = device.as_str().as_bytes();
    let scanned = Rules::scan(open(file)?, Some(username)).map_err(|source| FileError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let rules = scanned.map_err(|refused| AclError::Refused {
        path: file.to_path_buf(),
        line: refused.line + 1,
        message: refused.message,
    })?;
    let client = Client {
        username: Some(username),
        client_id: args.client_id.as_deref().map(str::as_bytes),
    };
    let mut checks = Vec::new();
    let mut notes = Vec::new();
    let mut unknown = Vec::new();
    for &need in check_accesses(args.access) {
        let verdict = rules.check(client, topic.as_str().as_bytes(), need);
        let (decided_by, section) = match verdict.reason {
            Reason::Rule { line, section } => (
                rules.rule(line).map(|rule| LineRef {
                    line: line + 1,
                    location: location(file, line + 1),
                    text: text(&rule.text),
                }),
                Some(section),
            ),
            _ => (None, None),
        };
        checks.push(AccessCheck {
            access: need,
            allowed: verdict.allowed,
            reason: reason_code(verdict.reason),
            decided_by,
            section,
            explanation: explain(&verdict, need, device.as_str(), topic.as_str()),
        });
        for line in verdict.unknown_client_id {
            if !unknown.contains(&line) {
                unknown.push(line);
            }
        }
        notes.push(match (need, verdict.allowed) {
            (Need::Read, true) => format!(
                "Mosquitto checks read access on each message it delivers: messages published on {topic} reach this device"
            ),
            (Need::Read, false) => format!(
                "a SUBSCRIBE to {topic} still succeeds (Mosquitto never checks subscriptions with an acl_file), but every message on it is silently dropped for this device"
            ),
            (Need::Write, true) => continue,
            (Need::Write, false) => {
                "a denied PUBLISH is dropped without an error (QoS 0), or acknowledged and dropped (QoS 1 and 2 with MQTT 3.1.1)"
                    .to_string()
            }
        });
    }
    if !unknown.is_empty() {
        let lines: Vec<String> = unknown.iter().map(|l| location(file, l + 1)).collect();
        notes.push(format!(
            "{} use %c and were skipped because the client ID is unknown; pass --client-id to include them",
            lines.join(", ")
        ));
    }
    let allowed = checks.iter().all(|c| c.allowed);
    let report = CheckReport {
        file: file.display().to_string(),
        device_id: device.to_string(),
        client_id: args.client_id.clone(),
        topic: topic.to_string(),
        allowed,
        checks,
        notes,
    };
    let code = if allowed {
        ExitCode::Success
    } else {
        ExitCode::Failure
    };
    Ok(Outcome::report(report).with_code(code))
}
