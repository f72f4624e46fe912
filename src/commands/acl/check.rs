//! `acl check`: may this device read or write this topic, and which line
//! decides, with the exit code of the answer.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::*;

#[derive(Debug, Serialize)]
pub(super) struct CheckReport {
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
pub(super) struct AccessCheck {
    access: Need,
    allowed: bool,
    /// `rule`, `sys-write`, `shared-prefix`, `dangerous-username`,
    /// `dangerous-client-id`, `no-rules` or `no-match`.
    reason: &'static str,
    /// The line that decided, when a line did.
    decided_by: Option<DecidingLine>,
    /// `anonymous`, `user` or `pattern`, when a line decided.
    section: Option<Section>,
    explanation: String,
}

/// The line that decided an access, and the filter it matched with.
#[derive(Debug, Serialize)]
pub(super) struct DecidingLine {
    #[serde(flatten)]
    line: LineRef,
    /// The filter as Mosquitto matched it: for a `pattern` line, with `%u`
    /// and `%c` substituted.
    filter: String,
    /// Whether `filter` differs from the line's own (a substitution happened).
    substituted: bool,
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
            if let Some(decided) = &c.decided_by {
                let _ = write!(
                    s,
                    "\n    {}  {}",
                    decided.line.location,
                    sanitize(&excerpt(&decided.line.text, 200))
                );
                if decided.substituted {
                    let _ = write!(s, "  → {}", sanitize(&excerpt(&decided.filter, 200)));
                }
            }
            s.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(s, "{} {}", p.dim("note:"), sanitize(note));
        }
        s
    }
}

pub(super) fn check_accesses(arg: AccessArg) -> &'static [Need] {
    match arg {
        AccessArg::Read => &[Need::Read],
        AccessArg::Write => &[Need::Write],
        AccessArg::Readwrite => &[Need::Read, Need::Write],
    }
}

pub(super) fn explain(verdict: &eval::Verdict, need: Need, device: &str, topic: &str) -> String {
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

pub(super) fn reason_code(reason: Reason) -> &'static str {
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
pub(super) fn check_topic(value: &str) -> Result<TopicName, Error> {
    let filter = TopicFilter::new(value)?;
    if filter.has_wildcards() {
        return Err(AclError::FilterNotTopic {
            topic: value.to_string(),
        }
        .into());
    }
    Ok(TopicName::new(value)?)
}

pub(super) fn check(config: &Config, file: &Path, args: &AclCheckArgs) -> Result<Outcome, Error> {
    let device = device(config, &args.device)?;
    let topic = check_topic(&args.topic)?;
    if let Some(id) = &args.client_id {
        acl::check_client_id(id)?;
    }
    // Streamed: a 20,000-device file is never held in memory for a check.
    let username = device.as_str().as_bytes();
    let scanned = Rules::scan(open(file)?, Some(username)).map_err(|source| {
        AclError::Unreadable(FileError::Read {
            path: file.to_path_buf(),
            source,
        })
    })?;
    // A NUL byte is no refusal, but past it Mosquitto reads nothing: no answer either.
    let rules = scanned.map_err(|refused| AclError::Refused {
        path: file.to_path_buf(),
        line: refused.line + 1,
        message: refused.message,
        ignores_rest: refused.code == acl::NUL_BYTE,
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
        checks.push(access_check(file, &rules, client, &verdict, need, &topic));
        for line in verdict.unknown_client_id {
            if !unknown.contains(&line) {
                unknown.push(line);
            }
        }
        if let Some(note) = delivery_note(need, verdict.allowed, &topic) {
            notes.push(note);
        }
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

/// One access's answer, with the line that decided it.
fn access_check(
    file: &Path,
    rules: &Rules,
    client: Client,
    verdict: &eval::Verdict,
    need: Need,
    topic: &TopicName,
) -> AccessCheck {
    let (decided_by, section) = match verdict.reason {
        Reason::Rule { line, section } => (
            rules.rule(line).map(|rule| {
                let filter = match section {
                    Section::Pattern => eval::substitute(
                        &rule.filter,
                        client.client_id.unwrap_or_default(),
                        client.username,
                    ),
                    Section::User | Section::Anonymous => rule.filter.clone(),
                };
                DecidingLine {
                    line: LineRef {
                        line: line + 1,
                        location: location(file, line + 1),
                        text: text(&rule.text),
                    },
                    substituted: filter != rule.filter,
                    filter: text(&filter),
                }
            }),
            Some(section),
        ),
        _ => (None, None),
    };
    let device = String::from_utf8_lossy(client.username.unwrap_or_default());
    AccessCheck {
        access: need,
        allowed: verdict.allowed,
        reason: reason_code(verdict.reason),
        decided_by,
        section,
        explanation: explain(verdict, need, &device, topic.as_str()),
    }
}

/// What the answer means for messages, as Mosquitto delivers them.
fn delivery_note(need: Need, allowed: bool, topic: &TopicName) -> Option<String> {
    Some(match (need, allowed) {
        (Need::Read, true) => format!(
            "Mosquitto checks read access on each message it delivers: messages published on {topic} reach this device"
        ),
        (Need::Read, false) => format!(
            "a SUBSCRIBE to {topic} still succeeds (Mosquitto never checks subscriptions with an acl_file), but every message on it is silently dropped for this device"
        ),
        (Need::Write, true) => return None,
        (Need::Write, false) => {
            "a denied PUBLISH is dropped without an error (QoS 0), or acknowledged and dropped (QoS 1 and 2 with MQTT 3.1.1)"
                .to_string()
        }
    })
}
