//! `acl validate`: what Mosquitto would refuse, and what it would accept but
//! probably not do what the author meant.
//!
//! Errors are lines that make Mosquitto 2.x refuse the whole file: at start
//! it stops at the first one and does not start; on a reload (SIGHUP) it
//! logs `Error opening acl file` and then enforces no ACL at all, so every
//! device may read and write every topic (verified on 2.0.11). That is why
//! `broker::sighup` never reloads a broker while this module finds an error.
//! Warnings are legal lines with a surprising meaning.

use std::ops::Range;

use serde::Serialize;

use super::FastMap;
use super::document::{Access, Document, Invalid, Kind, LineView, Rule, Span};
use crate::names::{self, IdPolicy};

/// The warning for a `user` whose name is not shaped as a WoTT device ID.
pub const NOT_WOTT_ID: &str = "not-wott-id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem on one line.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// 1-based line number.
    pub line: usize,
    pub severity: Severity,
    /// A stable identifier, e.g. `invalid-line`, `anonymous-rule`.
    pub code: &'static str,
    pub message: String,
    /// The line as written (trailing whitespace removed).
    pub text: String,
}

fn quote(bytes: &[u8]) -> String {
    format!(
        "`{}`",
        crate::output::excerpt(&String::from_utf8_lossy(bytes), 80)
    )
}

/// Why Mosquitto refuses line `line_index` of `doc`, in words: a stable code and a message.
pub fn explain(doc: &Document, line_index: usize, invalid: &Invalid) -> (&'static str, String) {
    let line = &doc.lines()[line_index];
    explain_in(doc.text(), line.start()..line.content_end(), invalid)
}

/// [`explain`] for a line met while reading a file.
pub fn explain_line(line: &LineView, invalid: &Invalid) -> (&'static str, String) {
    let (text, content) = line.spanned();
    explain_in(text, content, invalid)
}

/// [`explain`] for a line at `content` in `text` (the spans in `invalid` index `text`).
pub fn explain_in(text: &[u8], content: Range<usize>, invalid: &Invalid) -> (&'static str, String) {
    let bytes = |span: &Span| &text[span.range()];
    let content = &text[content];
    match invalid {
        Invalid::UnknownWord { word } => {
            let w = bytes(word);
            let trimmed: Vec<u8> = content
                .iter()
                .copied()
                .skip_while(|b| matches!(b, b' ' | b'\t'))
                .collect();
            let message = if trimmed.starts_with(b"#") {
                "a comment must start with `#` in the first column; Mosquitto refuses an indented `#`"
                    .to_string()
            } else if content.starts_with(b"\t") || w.contains(&b'\t') {
                "Mosquitto separates words with spaces only: a tab before or between the words makes the line unreadable"
                    .to_string()
            } else if [&b"topic"[..], b"pattern", b"user"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k))
            {
                format!(
                    "{} is not a keyword: Mosquitto's keywords are lowercase (topic, pattern, user)",
                    quote(w)
                )
            } else {
                format!(
                    "{} is not `topic`, `pattern` or `user`, so Mosquitto refuses the line",
                    quote(w)
                )
            };
            ("invalid-line", message)
        }
        Invalid::EmptyTopic => (
            "empty-topic",
            "a `topic` or `pattern` line needs a topic filter".to_string(),
        ),
        Invalid::BadAccess { word } => (
            "invalid-access",
            format!(
                "{} is not an access (read, write, readwrite or deny); a filter that contains spaces needs the access word before it",
                quote(bytes(word))
            ),
        ),
        Invalid::BadFilter { filter, reason } => (
            "invalid-topic",
            format!(
                "invalid topic filter {}: {}",
                quote(bytes(filter)),
                reason.describe()
            ),
        ),
        Invalid::MissingUsername => (
            "missing-username",
            "`user` needs a username after it".to_string(),
        ),
        Invalid::NulByte => (
            "nul-byte",
            "the line contains a NUL byte: Mosquitto starts, but silently ignores this line and every line after it"
                .to_string(),
        ),
    }
}

/// Who a rule is for (`None`: anonymous or pattern), pattern or not, filter, access.
type RuleKey<'a> = (Option<&'a [u8]>, bool, &'a [u8], Access);

/// Every error and warning in the file, in line order. Under
/// [`IdPolicy::Wott`], a `user` whose name is not a WoTT device ID is a
/// warning (once per name): no agent-issued certificate carries it.
pub fn validate(doc: &Document, policy: IdPolicy) -> Vec<Finding> {
    let mut linter = Linter::new(doc);
    for (i, line) in doc.lines().iter().enumerate() {
        match &line.kind {
            Kind::Invalid(invalid) => {
                let (code, message) = explain(doc, i, invalid);
                linter.add(i, Severity::Error, code, message);
            }
            Kind::User { name } => {
                let name = doc.bytes(name);
                let first = !linter.rules_per_user.contains_key(name);
                linter.rules_per_user.entry(name).or_insert(0);
                linter.user_lines.push(i);
                if first && policy == IdPolicy::Wott {
                    linter.user_name(i, name);
                }
            }
            Kind::Rule(rule) => linter.rule(i, rule),
            Kind::Blank | Kind::Comment => {}
        }
    }
    linter.users_without_rules();
    let mut findings = linter.findings;
    findings.sort_by_key(|f| f.line);
    findings
}

/// What `validate` has seen so far, and what it found.
struct Linter<'d, 'a> {
    doc: &'d Document<'a>,
    /// For each line, the `user` line whose block it is in.
    owners: Vec<Option<usize>>,
    /// Whether a `topic` rule follows line i in the same block.
    topic_follows: Vec<bool>,
    /// Each rule seen, and the line (1-based) it was first seen on.
    seen: FastMap<RuleKey<'a>, usize>,
    rules_per_user: FastMap<&'a [u8], usize>,
    user_lines: Vec<usize>,
    findings: Vec<Finding>,
}

impl<'d, 'a> Linter<'d, 'a> {
    fn new(doc: &'d Document<'a>) -> Self {
        let lines = doc.lines();
        let rule_lines = lines
            .iter()
            .filter(|l| matches!(l.kind, Kind::Rule(_)))
            .count();
        let mut topic_follows = vec![false; lines.len()];
        let mut follows = false;
        for (i, line) in lines.iter().enumerate().rev() {
            topic_follows[i] = follows;
            match &line.kind {
                Kind::User { .. } => follows = false,
                Kind::Rule(rule) if !rule.pattern => follows = true,
                _ => {}
            }
        }
        Linter {
            doc,
            owners: doc.owners(),
            topic_follows,
            seen: FastMap::with_capacity_and_hasher(rule_lines, Default::default()),
            rules_per_user: FastMap::with_capacity_and_hasher(
                lines.len() - rule_lines,
                Default::default(),
            ),
            user_lines: Vec::new(),
            findings: Vec::new(),
        }
    }

    fn add(&mut self, i: usize, severity: Severity, code: &'static str, message: String) {
        self.findings.push(Finding {
            line: i + 1,
            severity,
            code,
            message,
            text: self.doc.shown(&self.doc.lines()[i]),
        });
    }

    /// A `user` line on line `i` whose name is not a WoTT device ID.
    fn user_name(&mut self, i: usize, name: &[u8]) {
        let text = String::from_utf8_lossy(name);
        if let Err(problem) = names::wott_shape(&text) {
            self.add(
                i,
                Severity::Warning,
                NOT_WOTT_ID,
                format!(
                    "user {} is not a WoTT device ID: {problem}; Mosquitto compares usernames byte \
                     for byte, so its rules apply to no agent-issued certificate (for devices of \
                     your own CA, pass --any-id)",
                    quote(name)
                ),
            );
        }
    }

    /// The warnings a `topic` or `pattern` line on line `i` may earn.
    fn rule(&mut self, i: usize, rule: &Rule) {
        let doc = self.doc;
        let owner = self.owners[i].and_then(|u| doc.user_name(u));
        let filter = doc.bytes(&rule.filter);
        let substitutes = contains(filter, b"%u") || contains(filter, b"%c");
        if rule.pattern {
            self.pattern(i, owner, substitutes);
        } else {
            match owner {
                None => self.add(
                    i,
                    Severity::Warning,
                    "anonymous-rule",
                    "this rule comes before the first `user` line, so it applies only to clients without a username; with use_identity_as_username every certificate client has one"
                        .to_string(),
                ),
                Some(user) => *self.rules_per_user.entry(user).or_insert(0) += 1,
            }
            if substitutes {
                self.add(
                    i,
                    Severity::Warning,
                    "substitution-in-topic",
                    "%u and %c are replaced only in `pattern` lines; in a `topic` line they are literal"
                        .to_string(),
                );
            }
        }
        if !rule.explicit && matches!(filter, b"read" | b"write" | b"readwrite" | b"deny") {
            self.add(
                i,
                Severity::Warning,
                "missing-topic",
                format!(
                    "this grants readwrite on the topic named {}: the filter after the access word is missing",
                    quote(filter)
                ),
            );
        }
        let key = (
            if rule.pattern { None } else { owner },
            rule.pattern,
            filter,
            rule.access,
        );
        match self.seen.get(&key) {
            Some(&first) => self.add(
                i,
                Severity::Warning,
                "duplicate",
                format!("repeats line {first}"),
            ),
            None => {
                self.seen.insert(key, i + 1);
            }
        }
    }

    /// A `pattern` line inside a user's block, or without a substitution.
    fn pattern(&mut self, i: usize, owner: Option<&[u8]>, substitutes: bool) {
        if let Some(user) = owner.filter(|_| self.topic_follows[i]) {
            self.add(
                i,
                Severity::Warning,
                "pattern-in-user-block",
                format!(
                    "`pattern` lines apply to every client, not only to user {}; put patterns before the first `user` line or at the end",
                    quote(user)
                ),
            );
        }
        if !substitutes {
            self.add(
                i,
                Severity::Warning,
                "pattern-without-substitution",
                "this pattern has no %u or %c, so it gives every client the same access (Mosquitto warns about it too)"
                    .to_string(),
            );
        }
    }

    /// Once per user: a `user` whose blocks hold no `topic` rule.
    fn users_without_rules(&mut self) {
        for i in std::mem::take(&mut self.user_lines) {
            if let Some(name) = self.doc.user_name(i)
                && self.rules_per_user.get(name) == Some(&0)
            {
                self.add(
                    i,
                    Severity::Warning,
                    "user-without-rules",
                    format!(
                        "user {} has no `topic` rules, so only the `pattern` lines apply to it",
                        quote(name)
                    ),
                );
                self.rules_per_user.remove(name);
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(text: &str) -> Vec<(usize, &'static str)> {
        validate(&Document::parse(text.as_bytes()).unwrap(), IdPolicy::Any)
            .into_iter()
            .map(|f| (f.line, f.code))
            .collect()
    }

    #[test]
    fn errors_name_the_cause() {
        let f = validate(
            &Document::parse(b" # note\n\ttopic a\nTopic a\n").unwrap(),
            IdPolicy::Wott,
        );
        assert!(f[0].message.contains("first column"), "{}", f[0].message);
        assert!(f[1].message.contains("spaces only"), "{}", f[1].message);
        assert!(f[2].message.contains("lowercase"), "{}", f[2].message);
        assert!(f.iter().all(|f| f.severity == Severity::Error));
    }

    #[test]
    fn lints() {
        assert_eq!(
            codes(
                "topic read a\nuser d\npattern read x\ntopic read %c\ntopic read\ntopic read %c\nuser e\npattern read %c\n"
            ),
            vec![
                (1, "anonymous-rule"),
                (3, "pattern-in-user-block"),
                (3, "pattern-without-substitution"),
                (4, "substitution-in-topic"),
                (5, "missing-topic"),
                (6, "substitution-in-topic"),
                (6, "duplicate"),
                (7, "user-without-rules"),
            ]
        );
        assert!(codes("user d\ntopic readwrite a/#\npattern read %u/#\n").is_empty());
    }

    #[test]
    fn users_not_shaped_as_wott_ids_are_warned_about_once() {
        let id = "4853b630822946019393b16c5b710b9e.d.wott.local";
        let text = format!(
            "user {id}\ntopic a\nuser {}\ntopic a\nuser broker.example.com\ntopic a\nuser {}\ntopic b\n",
            id.to_uppercase().replace(".D.WOTT.LOCAL", ".d.wott.local"),
            id.to_uppercase().replace(".D.WOTT.LOCAL", ".d.wott.local"),
        );
        let doc = Document::parse(text.as_bytes()).unwrap();
        let found: Vec<Finding> = validate(&doc, IdPolicy::Wott);
        let lines: Vec<(usize, &str)> = found.iter().map(|f| (f.line, f.code)).collect();
        assert_eq!(lines, [(3, NOT_WOTT_ID), (5, NOT_WOTT_ID)]);
        assert!(found.iter().all(|f| f.severity == Severity::Warning));
        assert!(
            found[0].message.contains(&format!("did you mean {id}?")),
            "{}",
            found[0].message
        );
        assert!(validate(&doc, IdPolicy::Any).is_empty());
    }
}
