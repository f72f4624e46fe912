//! What `doctor` audits in an ACL that Mosquitto accepts: grants wider
//! than a device should have, grants another grant already gives, and
//! usernames that can never be a WoTT device.
//!
//! [`super::lint`] says what Mosquitto refuses or reads surprisingly, line by
//! line; this module judges what the accepted rules *grant*. A grant of `#`
//! (or `+/#`, every level a wildcard) lets a device read or write every
//! topic of every other device; write on `$SYS/…` lets it fake the broker's
//! own status topics; a `pattern` line does either for every client at once.
//! A narrower grant beside a wider one of the same device changes nothing
//! and misleads whoever later revokes the wide one. And since Mosquitto
//! compares usernames byte for byte with the certificate's CN, a `user`
//! that is not `<32 lower-case hex>.d.wott.local` matches no WoTT device.

use serde::Serialize;

use super::document::{Access, Document, Kind};
use super::lint::Severity;
use crate::names;

/// One finding of the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// 1-based line number.
    pub line: usize,
    pub severity: Severity,
    /// `broad-grant`, `shadowed` or `not-wott-shaped`.
    pub code: &'static str,
    pub message: String,
    /// The line as written.
    pub text: String,
    /// The `user` the rule belongs to (`None`: a pattern or the anonymous section).
    pub user: Option<String>,
    /// The rule's filter, for a rule.
    pub filter: Option<String>,
    /// A username's WoTT-shaped spelling, when it is certain.
    pub suggestion: Option<String>,
}

pub const BROAD_GRANT: &str = "broad-grant";
pub const SHADOWED: &str = "shadowed";
pub const NOT_WOTT_SHAPED: &str = "not-wott-shaped";

/// One `topic` or `pattern` rule that grants something.
struct Grant<'a> {
    line: usize,
    user: Option<&'a [u8]>,
    pattern: bool,
    filter: &'a [u8],
    access: Access,
}

/// Every audit finding of `doc`, in line order.
pub fn audit(doc: &Document) -> Vec<Audit> {
    let owners = doc.owners();
    let mut grants = Vec::new();
    let mut users: Vec<(usize, &[u8])> = Vec::new();
    for (i, line) in doc.lines().iter().enumerate() {
        match &line.kind {
            Kind::Rule(rule) if rule.access != Access::Deny => grants.push(Grant {
                line: i,
                user: owners[i].and_then(|u| doc.user_name(u)),
                pattern: rule.pattern,
                filter: doc.bytes(&rule.filter),
                access: rule.access,
            }),
            Kind::User { name } => {
                let name = doc.bytes(name);
                if !users.iter().any(|(_, n)| *n == name) {
                    users.push((i, name));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let text = |i: usize| doc.shown(&doc.lines()[i]);
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for grant in &grants {
        if let Some((severity, message)) = breadth(grant) {
            out.push(Audit {
                line: grant.line + 1,
                severity,
                code: BROAD_GRANT,
                message,
                text: text(grant.line),
                user: grant.user.filter(|_| !grant.pattern).map(lossy),
                filter: Some(lossy(grant.filter)),
                suggestion: None,
            });
        }
    }
    for grant in grants.iter().filter(|g| !g.pattern && g.user.is_some()) {
        let wider = grants.iter().find(|other| {
            other.line != grant.line
                && !other.pattern
                && other.user == grant.user
                && includes(other.access, grant.access)
                && covers(other.filter, grant.filter)
                && !(other.filter == grant.filter && other.access == grant.access)
        });
        if let Some(wider) = wider {
            out.push(Audit {
                line: grant.line + 1,
                severity: Severity::Warning,
                code: SHADOWED,
                message: format!(
                    "line {} (`{}`) already grants this device all of it, so this line changes nothing",
                    wider.line + 1,
                    text(wider.line)
                ),
                text: text(grant.line),
                user: grant.user.map(lossy),
                filter: Some(lossy(grant.filter)),
                suggestion: None,
            });
        }
    }
    for (i, name) in users {
        let name = lossy(name);
        if let Err(problem) = names::wott_shape(&name) {
            out.push(Audit {
                line: i + 1,
                severity: Severity::Warning,
                code: NOT_WOTT_SHAPED,
                message: format!(
                    "user {name:?} is not a WoTT device ID: {problem}; Mosquitto compares the username byte for byte with the certificate's CN, so these rules apply to no WoTT device"
                ),
                text: text(i),
                user: Some(name),
                filter: None,
                suggestion: problem.suggestion,
            });
        }
    }
    out.sort_by_key(|a| a.line);
    out
}

/// Whether a grant reaches further than one device should: every topic
/// (`#`, `+/#`, …), or write on the broker's `$SYS` tree.
fn breadth(grant: &Grant) -> Option<(Severity, String)> {
    let whom = if grant.pattern {
        "this pattern gives every client".to_string()
    } else {
        match grant.user {
            Some(user) => format!("this gives {}", String::from_utf8_lossy(user)),
            None => "this gives every client without a username".to_string(),
        }
    };
    let writes = grant.access != Access::Read;
    let filter = String::from_utf8_lossy(grant.filter);
    if whole_tree(grant.filter) {
        let what = match grant.access {
            Access::Read => "read access to every topic (every other device's messages)",
            Access::Write => "write access to every topic (it can impersonate every other device)",
            _ => {
                "read and write access to every topic (every other device's messages, and it can impersonate them)"
            }
        };
        let severity = if writes {
            Severity::Error
        } else {
            Severity::Warning
        };
        return Some((severity, format!("`{filter}`: {whom} {what}")));
    }
    if writes && grant.filter.starts_with(b"$SYS") {
        return Some((
            Severity::Error,
            format!(
                "`{filter}`: {whom} write access to the broker's own $SYS topics, so it can fake the broker's status"
            ),
        ));
    }
    None
}

/// `#`, `+/#`, `+/+/#`: a filter that matches every (non-`$`) topic.
pub fn whole_tree(filter: &[u8]) -> bool {
    let levels: Vec<&[u8]> = filter.split(|&b| b == b'/').collect();
    match levels.split_last() {
        Some((last, rest)) => *last == b"#" && rest.iter().all(|l| *l == b"+"),
        None => false,
    }
}

/// Whether a rule with access `wide` gives everything `narrow` gives.
fn includes(wide: Access, narrow: Access) -> bool {
    wide == narrow || wide == Access::ReadWrite
}

/// Whether every topic that matches `narrow` also matches `wide`, with
/// Mosquitto's rules (`#` also matches the parent level; `$`-topics only
/// match filters that start with `$`).
pub fn covers(wide: &[u8], narrow: &[u8]) -> bool {
    if wide.is_empty() || narrow.is_empty() || (wide[0] == b'$') != (narrow[0] == b'$') {
        return false;
    }
    let mut w = wide.split(|&b| b == b'/');
    let mut n = narrow.split(|&b| b == b'/');
    loop {
        match (w.next(), n.next()) {
            (Some(b"#"), _) => return true,
            (None, None) => return true,
            (None, Some(_)) => return false,
            // `a/#` matches `a`: what is left of `wide` must be just `#`.
            (Some(rest), None) => return rest == b"#" && w.next().is_none(),
            (Some(_), Some(b"#")) => return false,
            (Some(b"+"), Some(_)) => {}
            (Some(x), Some(y)) if x == y && y != b"+" => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(text: &str) -> Vec<(usize, &'static str, Severity)> {
        audit(&Document::parse(text.as_bytes()).unwrap())
            .into_iter()
            .map(|a| (a.line, a.code, a.severity))
            .collect()
    }

    const A: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";

    #[test]
    fn covering_follows_mosquittos_matching() {
        assert!(covers(b"#", b"a/b"));
        assert!(covers(b"a/#", b"a"));
        assert!(covers(b"a/#", b"a/+/c"));
        assert!(covers(b"a/+", b"a/b"));
        assert!(!covers(b"a/+", b"a/#"));
        assert!(!covers(b"a/b", b"a/+"));
        assert!(!covers(b"#", b"$SYS/x"));
        assert!(covers(b"$SYS/#", b"$SYS/x"));
        assert!(!covers(b"a/b", b"a/b/c"));
        assert!(!covers(b"a/b/c", b"a/b"));
        assert!(whole_tree(b"+/+/#"));
        assert!(!whole_tree(b"a/#"));
    }

    #[test]
    fn broad_shadowed_and_odd_users_are_found() {
        let text = format!(
            "pattern read #\nuser {A}\ntopic readwrite wott/#\ntopic read wott/temperature\ntopic write $SYS/broker/x\ntopic wott/#\nuser ABC.d.wott.local\ntopic readwrite +/#\n"
        );
        assert_eq!(
            codes(&text),
            vec![
                (1, BROAD_GRANT, Severity::Warning),
                (4, SHADOWED, Severity::Warning),
                (5, BROAD_GRANT, Severity::Error),
                (7, NOT_WOTT_SHAPED, Severity::Warning),
                (8, BROAD_GRANT, Severity::Error),
            ]
        );
        assert!(
            codes(&format!(
                "user {A}\ntopic read a/b\ntopic write a/b\ndeny #\n"
            ))
            .is_empty()
        );
    }
}
