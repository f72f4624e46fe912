//! `acl list` and `acl validate`: the rules as Mosquitto reads them, and
//! what it would refuse or misread.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::*;

#[derive(Debug, Serialize)]
pub(super) struct ValidateReport {
    file: String,
    /// Whether Mosquitto reads the whole file as written.
    valid: bool,
    /// The line of a NUL byte, when Mosquitto meets that error first: it
    /// starts with the file but ignores that line and every line after it.
    ignored_from: Option<usize>,
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
        let summary = match (self.valid, self.ignored_from) {
            (true, _) => format!("{} Mosquitto accepts {}", p.mark(true), self.file),
            (false, Some(line)) => format!(
                "{} Mosquitto starts with {} but ignores line {line} and every line after it",
                p.mark(false),
                self.file
            ),
            (false, None) => format!("{} Mosquitto refuses {}", p.mark(false), self.file),
        };
        let _ = writeln!(
            s,
            "{summary} ({} error(s), {} warning(s))",
            self.errors, self.warnings
        );
        s
    }
}

pub(super) fn validate(config: &Config, file: &Path) -> Result<Outcome, Error> {
    let bytes = read(file)?;
    let doc = acl::parse(&bytes, file)?;
    let findings = lint::validate(&doc, config.id_policy);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    // Mosquitto stops at the first error it meets: a refusal, or a NUL byte.
    let ignored_from = findings
        .iter()
        .find(|f| f.severity == Severity::Error)
        .filter(|f| f.code == acl::NUL_BYTE)
        .map(|f| f.line);
    let report = ValidateReport {
        file: file.display().to_string(),
        valid: errors == 0,
        ignored_from,
        errors,
        warnings: findings.len() - errors,
        findings,
    };
    Ok(if errors > 0 {
        Outcome::report(report).with_error(AclError::Invalid {
            path: file.to_path_buf(),
            errors,
            ignored_from,
        })
    } else {
        Outcome::report(report)
    })
}

// ---------------------------------------------------------------- list

#[derive(Debug, Serialize)]
pub(super) struct RuleView {
    line: usize,
    access: Access,
    filter: String,
}

#[derive(Debug, Serialize)]
pub(super) struct UserView {
    username: String,
    rules: Vec<RuleView>,
}

#[derive(Debug, Serialize)]
pub(super) struct ListReport {
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

pub(super) fn rule_views(doc: &Document, entries: &[eval::Listed]) -> Vec<RuleView> {
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

pub(super) fn list(config: &Config, file: &Path, args: &AclListArgs) -> Result<Outcome, Error> {
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
