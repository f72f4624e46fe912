//! Who may read or write a topic, decided exactly as Mosquitto 2.x decides it.
//!
//! The order is that of `mosquitto_acl_check` (`src/security.c`) and
//! `mosquitto_acl_check_default` (`src/security_default.c`) in Mosquitto 2.0.11:
//!
//! 1. Built-in rules first: nobody publishes to `$SYS…` (except
//!    `$SYS/broker/connection/+/state`), and nobody publishes to or receives
//!    `$share…` as a topic.
//! 2. The client's own rules: those of the `user` blocks naming its username
//!    (all such blocks, merged), or the anonymous section (rules before the
//!    first `user` line) when it has no username. `deny` rules come first (the
//!    last one in the file first), then grants in file order. The first
//!    matching rule decides: a `deny` denies, a grant that includes the
//!    access allows; a grant without it is passed over.
//! 3. If nothing decided and the file has `pattern` lines: a username or
//!    client ID containing `+` or `#` is denied outright; otherwise the
//!    patterns, with `%u` and `%c` substituted, are tried the same way.
//! 4. Nothing decided: denied.
//!
//! So a user's own grant beats a `pattern deny`, and a user's `deny` beats
//! every pattern. SUBSCRIBE is never checked: Mosquitto grants every
//! subscription and checks each message it delivers (`read`) instead.

use std::io::{self, Read};

use serde::Serialize;

use super::document::{self, Access, Document, Kind, LineView, Need};
use super::{lint, topic};

/// The client asking: its username (the certificate CN with
/// `use_identity_as_username`) and, if known, its MQTT client ID.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub username: Option<&'a [u8]>,
    /// `None`: not known, so `pattern` lines that use `%c` cannot be evaluated.
    pub client_id: Option<&'a [u8]>,
}

/// Which part of the file a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    /// Before the first `user` line: clients without a username.
    Anonymous,
    /// A `user` block.
    User,
    /// A `pattern` line: every client.
    Pattern,
}

/// What decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// This rule line (index into the document's lines).
    Rule { line: usize, section: Section },
    /// Mosquitto refuses PUBLISH to `$SYS` topics whatever the ACL says.
    SysWrite,
    /// `$share/…` is a shared-subscription prefix, never a topic.
    SharedPrefix,
    /// With `pattern` lines present, Mosquitto denies a username containing `+` or `#`.
    DangerousUsername,
    /// With `pattern` lines present, Mosquitto denies a client ID containing `+` or `#`.
    DangerousClientId,
    /// No rules at all apply to this client: no block of its own and no patterns.
    NoRules,
    /// Rules apply, but none grants this access: Mosquitto denies by default.
    NoMatch,
}

/// The answer for one access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub reason: Reason,
    /// `pattern` lines using `%c` that were passed over because the client
    /// ID is unknown (line indices); with another client ID they might decide.
    pub unknown_client_id: Vec<usize>,
}

/// One rule as Mosquitto holds it in memory, and the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Index of the line in the file (0-based).
    pub line: usize,
    pub access: Access,
    pub filter: Vec<u8>,
    /// The line as written, trailing whitespace removed, for reports.
    pub text: Vec<u8>,
}

/// The rules that apply to one client, in the order Mosquitto tries them.
/// They own their bytes, so they can be gathered while streaming the file.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The client's own list (its user blocks, or the anonymous section);
    /// `None` when Mosquitto has no list for it.
    own: Option<Vec<Entry>>,
    own_section: Section,
    patterns: Vec<Entry>,
}

/// Mosquitto's list order: each `deny` is pushed to the front, grants are
/// appended, so denies run last-in-file first, then grants in file order.
fn ordered(list: Vec<Entry>) -> Vec<Entry> {
    let (mut denies, grants): (Vec<Entry>, Vec<Entry>) =
        list.into_iter().partition(|e| e.access == Access::Deny);
    denies.reverse();
    denies.extend(grants);
    denies
}

/// A line of the file Mosquitto refuses: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Index of the line (0-based).
    pub line: usize,
    pub code: &'static str,
    pub message: String,
}

/// Gathers one client's rules, line by line, in file order.
struct Collector<'u> {
    username: Option<&'u [u8]>,
    in_own: bool,
    own: Vec<Entry>,
    patterns: Vec<Entry>,
}

impl<'u> Collector<'u> {
    fn new(username: Option<&'u [u8]>) -> Self {
        Collector {
            username,
            in_own: username.is_none(),
            own: Vec::new(),
            patterns: Vec::new(),
        }
    }

    fn feed(&mut self, line: &LineView) {
        match &line.kind {
            Kind::User { name } => self.in_own = self.username == Some(line.bytes(name)),
            Kind::Rule(rule) if rule.pattern || self.in_own => {
                let entry = Entry {
                    line: line.index,
                    access: rule.access,
                    filter: line.bytes(&rule.filter).to_vec(),
                    text: line.shown().into_bytes(),
                };
                if rule.pattern {
                    self.patterns.push(entry);
                } else {
                    self.own.push(entry);
                }
            }
            _ => {}
        }
    }

    fn finish(self) -> Rules {
        // Mosquitto creates a user's list with its first rule: a `user` line
        // with no rules under it leaves the client without a list.
        let has_own = !self.own.is_empty();
        Rules {
            own: has_own.then(|| ordered(self.own)),
            own_section: if self.username.is_some() {
                Section::User
            } else {
                Section::Anonymous
            },
            patterns: ordered(self.patterns),
        }
    }
}

impl Rules {
    /// The rules for a client with this username (`None`: anonymous).
    /// Assumes a file Mosquitto accepts (see `Document::first_invalid`).
    pub fn for_user(doc: &Document, username: Option<&[u8]>) -> Rules {
        let mut collector = Collector::new(username);
        doc.visit(|line| collector.feed(line));
        collector.finish()
    }

    /// The same, reading the file line by line, so that a large file is
    /// never held in memory. Stops at the first line Mosquitto refuses.
    pub fn scan(reader: impl Read, username: Option<&[u8]>) -> io::Result<Result<Rules, Refused>> {
        let mut collector = Collector::new(username);
        let mut refused = None;
        document::scan(reader, |line| {
            if let Kind::Invalid(invalid) = &line.kind {
                let (code, message) = lint::explain_line(line, invalid);
                refused = Some(Refused {
                    line: line.index,
                    code,
                    message,
                });
                return false;
            }
            collector.feed(line);
            true
        })?;
        Ok(match refused {
            Some(refused) => Err(refused),
            None => Ok(collector.finish()),
        })
    }

    /// The rule on line `index` (0-based), if it is one of these rules.
    pub fn rule(&self, index: usize) -> Option<&Entry> {
        self.own
            .iter()
            .flatten()
            .chain(&self.patterns)
            .find(|e| e.line == index)
    }

    /// Whether `client` may have `need` on the topic name `topic`.
    pub fn check(&self, client: Client, topic: &[u8], need: Need) -> Verdict {
        let verdict = |allowed, reason| Verdict {
            allowed,
            reason,
            unknown_client_id: Vec::new(),
        };
        if topic.starts_with(b"$SYS")
            && need == Need::Write
            && !topic::matches(b"$SYS/broker/connection/+/state", topic)
        {
            return verdict(false, Reason::SysWrite);
        }
        if topic.starts_with(b"$share") {
            return verdict(false, Reason::SharedPrefix);
        }
        if self.own.is_none() && self.patterns.is_empty() {
            return verdict(false, Reason::NoRules);
        }
        if let Some(verdict) = self.own_decision(topic, need) {
            return verdict;
        }
        if !self.patterns.is_empty() {
            if client.username.is_some_and(has_wildcard) {
                return verdict(false, Reason::DangerousUsername);
            }
            if client.client_id.is_some_and(has_wildcard) {
                return verdict(false, Reason::DangerousClientId);
            }
        }
        self.pattern_decision(client, topic, need)
    }

    /// Step 2: the client's own rules, denies first; `None` when none decides.
    fn own_decision(&self, topic: &[u8], need: Need) -> Option<Verdict> {
        let section = self.own_section;
        for entry in self.own.iter().flatten() {
            if topic.first() == Some(&b'$') && entry.filter.first() != Some(&b'$') {
                continue;
            }
            if !topic::matches(&entry.filter, topic) {
                continue;
            }
            let Some(allowed) = decides(entry.access, need) else {
                continue;
            };
            return Some(Verdict {
                allowed,
                reason: Reason::Rule {
                    line: entry.line,
                    section,
                },
                unknown_client_id: Vec::new(),
            });
        }
        None
    }

    /// Step 3 and 4: the patterns with `%u` and `%c` substituted, else denied.
    fn pattern_decision(&self, client: Client, topic: &[u8], need: Need) -> Verdict {
        let mut unknown = Vec::new();
        for entry in &self.patterns {
            let filter = &entry.filter;
            let uses_u = contains(filter, b"%u");
            let uses_c = contains(filter, b"%c");
            if uses_u && client.username.is_none() {
                continue;
            }
            let Some(client_id) = client.client_id.or((!uses_c).then_some(&b""[..])) else {
                unknown.push(entry.line);
                continue;
            };
            let filter = substitute(filter, client_id, client.username);
            if !topic::matches(&filter, topic) {
                continue;
            }
            let Some(allowed) = decides(entry.access, need) else {
                continue;
            };
            return Verdict {
                allowed,
                reason: Reason::Rule {
                    line: entry.line,
                    section: Section::Pattern,
                },
                unknown_client_id: unknown,
            };
        }
        Verdict {
            allowed: false,
            reason: Reason::NoMatch,
            unknown_client_id: unknown,
        }
    }
}

/// What a matching rule with `access` decides for `need`: a deny denies, a
/// grant that includes it allows, any other grant is passed over (`None`).
fn decides(access: Access, need: Need) -> Option<bool> {
    if access == Access::Deny {
        Some(false)
    } else {
        access.grants(need).then_some(true)
    }
}

fn has_wildcard(value: &[u8]) -> bool {
    value.iter().any(|&b| b == b'+' || b == b'#')
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `%c` → client ID, `%u` → username, scanning left to right as Mosquitto
/// does (`%%c` is a `%` followed by the client ID). `%u` stays literal when
/// there is no username.
pub fn substitute(filter: &[u8], client_id: &[u8], username: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(filter.len() + client_id.len());
    let mut i = 0;
    while i < filter.len() {
        if filter[i] == b'%' && i + 1 < filter.len() {
            match (filter[i + 1], username) {
                (b'c', _) => {
                    out.extend_from_slice(client_id);
                    i += 2;
                    continue;
                }
                (b'u', Some(user)) => {
                    out.extend_from_slice(user);
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(filter[i]);
        i += 1;
    }
    out
}

/// A rule in a [`Ruleset`]: its line (0-based) and access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub line: usize,
    pub access: Access,
}

/// The whole file as Mosquitto loads it: the anonymous list, each user's
/// list (in order of first appearance), and the patterns.
#[derive(Debug, Clone, Default)]
pub struct Ruleset<'a> {
    pub anonymous: Vec<Listed>,
    pub users: Vec<(&'a [u8], Vec<Listed>)>,
    pub patterns: Vec<Listed>,
}

/// [`ordered`] for listed rules.
fn ordered_listed(list: Vec<Listed>) -> Vec<Listed> {
    let (mut denies, grants): (Vec<Listed>, Vec<Listed>) =
        list.into_iter().partition(|e| e.access == Access::Deny);
    denies.reverse();
    denies.extend(grants);
    denies
}

impl<'a> Ruleset<'a> {
    pub fn build(doc: &Document<'a>) -> Ruleset<'a> {
        let mut anonymous = Vec::new();
        let mut users: Vec<(&'a [u8], Vec<Listed>)> = Vec::new();
        let mut index: std::collections::HashMap<&'a [u8], usize> = Default::default();
        let mut patterns = Vec::new();
        let mut current: Option<&'a [u8]> = None;
        for (i, line) in doc.lines().iter().enumerate() {
            match &line.kind {
                Kind::User { name } => current = Some(doc.bytes(name)),
                Kind::Rule(rule) => {
                    let entry = Listed {
                        line: i,
                        access: rule.access,
                    };
                    if rule.pattern {
                        patterns.push(entry);
                    } else if let Some(user) = current {
                        let slot = *index.entry(user).or_insert_with(|| {
                            users.push((user, Vec::new()));
                            users.len() - 1
                        });
                        users[slot].1.push(entry);
                    } else {
                        anonymous.push(entry);
                    }
                }
                _ => {}
            }
        }
        Ruleset {
            anonymous: ordered_listed(anonymous),
            users: users
                .into_iter()
                .map(|(u, l)| (u, ordered_listed(l)))
                .collect(),
            patterns: ordered_listed(patterns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        acl: &str,
        user: Option<&str>,
        client_id: Option<&str>,
        topic: &str,
        need: Need,
    ) -> (bool, Reason) {
        let doc = Document::parse(acl.as_bytes()).unwrap();
        assert!(doc.first_invalid().is_none(), "{acl}");
        let rules = Rules::for_user(&doc, user.map(str::as_bytes));
        let v = rules.check(
            Client {
                username: user.map(str::as_bytes),
                client_id: client_id.map(str::as_bytes),
            },
            topic.as_bytes(),
            need,
        );
        (v.allowed, v.reason)
    }

    fn rule(line: usize, section: Section) -> Reason {
        Reason::Rule { line, section }
    }

    const U: Option<&str> = Some("dev1");
    const C: Option<&str> = Some("client1");

    #[test]
    fn denies_are_checked_before_grants_and_beat_patterns() {
        let acl = "user dev1\ntopic readwrite a/#\ntopic deny a/secret\npattern readwrite %u/#\n";
        assert_eq!(
            check(acl, U, C, "a/x", Need::Read),
            (true, rule(1, Section::User))
        );
        assert_eq!(
            check(acl, U, C, "a/secret", Need::Read),
            (false, rule(2, Section::User))
        );
        // A user deny stops before the patterns are tried.
        let acl = "user dev1\ntopic deny dev1/x\npattern readwrite %u/#\n";
        assert_eq!(
            check(acl, U, C, "dev1/x", Need::Write),
            (false, rule(1, Section::User))
        );
        assert_eq!(
            check(acl, U, C, "dev1/y", Need::Write),
            (true, rule(2, Section::Pattern))
        );
    }

    #[test]
    fn a_user_grant_beats_a_pattern_deny() {
        let acl = "pattern deny %u/#\nuser dev1\ntopic read dev1/x\n";
        assert_eq!(
            check(acl, U, C, "dev1/x", Need::Read),
            (true, rule(2, Section::User))
        );
        assert_eq!(
            check(acl, U, C, "dev1/x", Need::Write),
            (false, rule(0, Section::Pattern))
        );
    }

    #[test]
    fn the_last_deny_in_the_file_is_tried_first() {
        let acl = "user dev1\ntopic deny a/#\ntopic deny a/b\n";
        assert_eq!(
            check(acl, U, C, "a/b", Need::Read),
            (false, rule(2, Section::User))
        );
    }

    #[test]
    fn the_anonymous_section_is_for_clients_without_a_username() {
        let acl = "topic read a\nuser dev1\ntopic read b\n";
        assert_eq!(check(acl, U, C, "a", Need::Read), (false, Reason::NoMatch));
        assert_eq!(
            check(acl, None, C, "a", Need::Read),
            (true, rule(0, Section::Anonymous))
        );
        assert_eq!(
            check(acl, None, C, "b", Need::Read),
            (false, Reason::NoMatch)
        );
    }

    #[test]
    fn blocks_of_one_user_are_merged_and_empty_blocks_make_no_list() {
        let acl = "user dev1\ntopic read a\nuser other\ntopic read b\nuser dev1\ntopic write c\n";
        assert_eq!(
            check(acl, U, C, "c", Need::Write),
            (true, rule(5, Section::User))
        );
        assert_eq!(
            check("user dev1\n", U, C, "a", Need::Read),
            (false, Reason::NoRules)
        );
    }

    #[test]
    fn access_words() {
        let acl = "user dev1\ntopic r\ntopic read x\ntopic write y\n";
        assert!(check(acl, U, C, "r", Need::Write).0);
        assert!(check(acl, U, C, "x", Need::Read).0);
        assert!(!check(acl, U, C, "x", Need::Write).0);
        assert!(check(acl, U, C, "y", Need::Write).0);
        assert!(!check(acl, U, C, "y", Need::Read).0);
    }

    #[test]
    fn patterns_substitute_username_and_client_id() {
        let acl = "pattern read devices/%u/%c/#\n";
        assert!(check(acl, U, C, "devices/dev1/client1/t", Need::Read).0);
        assert!(!check(acl, U, C, "devices/dev1/other/t", Need::Read).0);
        assert_eq!(
            substitute(b"%%c/%u/%x%", b"C", Some(b"U")),
            b"%C/U/%x%".to_vec()
        );
    }

    #[test]
    fn wildcards_in_ids_are_denied_only_when_patterns_exist() {
        let acl = "user dev1\ntopic read a\npattern read b\n";
        assert_eq!(
            check(acl, U, Some("c+1"), "a", Need::Read),
            (true, rule(1, Section::User))
        );
        assert_eq!(
            check(acl, U, Some("c+1"), "b", Need::Read),
            (false, Reason::DangerousClientId)
        );
        assert_eq!(
            check(acl, Some("d#"), C, "b", Need::Read),
            (false, Reason::DangerousUsername)
        );
        let no_patterns = "user c+1\ntopic read a\n";
        assert!(check(no_patterns, Some("c+1"), C, "a", Need::Read).0);
    }

    #[test]
    fn built_in_dollar_rules() {
        let acl = "user dev1\ntopic readwrite $SYS/#\ntopic readwrite $share/#\n";
        assert_eq!(
            check(acl, U, C, "$SYS/x", Need::Write),
            (false, Reason::SysWrite)
        );
        assert_eq!(
            check(acl, U, C, "$SYSTEM", Need::Write),
            (false, Reason::SysWrite)
        );
        assert!(check(acl, U, C, "$SYS/x", Need::Read).0);
        assert!(check(acl, U, C, "$SYS/broker/connection/b/state", Need::Write).0);
        assert_eq!(
            check(acl, U, C, "$share/g/t", Need::Read),
            (false, Reason::SharedPrefix)
        );
        assert!(!check("user dev1\ntopic read #\n", U, C, "$x/y", Need::Read).0);
    }

    #[test]
    fn scanning_finds_the_same_rules_and_stops_at_a_refused_line() {
        let acl = "pattern read %u/#\r\nuser dev1\ntopic deny a\ntopic read a/#  \n";
        let doc = Document::parse(acl.as_bytes()).unwrap();
        let from_doc = Rules::for_user(&doc, Some(b"dev1"));
        let scanned = Rules::scan(acl.as_bytes(), Some(b"dev1")).unwrap().unwrap();
        assert_eq!(from_doc.own, scanned.own);
        assert_eq!(from_doc.patterns, scanned.patterns);
        assert_eq!(scanned.rule(3).unwrap().text, b"topic read a/#");
        let refused = Rules::scan(&b"user x\n  # no\ntopic a\n"[..], None)
            .unwrap()
            .unwrap_err();
        assert_eq!((refused.line, refused.code), (1, "invalid-line"));
    }

    #[test]
    fn unknown_client_ids_skip_client_id_patterns() {
        let doc = Document::parse(b"pattern deny %c/#\npattern read #\n").unwrap();
        let rules = Rules::for_user(&doc, Some(b"dev1"));
        let client = Client {
            username: Some(b"dev1"),
            client_id: None,
        };
        let v = rules.check(client, b"x/y", Need::Read);
        assert!(v.allowed);
        assert_eq!(v.unknown_client_id, vec![0]);
    }
}
