//! Universal rules of the ACL document and its edits, for any input.
//!
//! - parse → render gives back the exact bytes, whatever they are;
//! - `allow` touches only the lines it reports, and is idempotent;
//! - after `allow`, the device has the access (unless its own deny rule wins);
//! - `revoke` never gives access that was not there before;
//! - `allow` then `revoke` of a new device restores the file;
//! - `apply` leaves each listed device exactly its grants, each on one line,
//!   keeps every other line (all of them, unless `exclusive`) in order, and
//!   is idempotent; new devices added by `apply` and revoked give back the
//!   file.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use wott_mqtt::acl::apply;
use wott_mqtt::acl::desired::{self, Desired};
use wott_mqtt::acl::document;
use wott_mqtt::acl::edit::{self, AllowAction};
use wott_mqtt::acl::{Access, Client, Document, Kind, Need, Rules};
use wott_mqtt::files;
use wott_mqtt::lines::{Edits, Summary};
use wott_mqtt::names::IdPolicy;

/// A reader that hands over at most `.1` bytes per read, so that streaming
/// code meets line breaks at every chunk boundary.
struct Trickle<'a>(&'a [u8], usize);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn acl_line() -> impl Strategy<Value = String> {
    let user = prop::sample::select(vec!["d1", "d2", "d3", "d1 "]);
    let filter = prop::sample::select(vec![
        "a", "a/b", "a/+", "a/#", "#", "+/b", "$x/#", "b", "%c/#", "a b",
    ]);
    let access = prop::sample::select(vec!["", "read ", "write ", "readwrite ", "deny "]);
    let space = prop::sample::select(vec!["", " ", "  ", "\t", " \t "]);
    prop_oneof![
        3 => (user, space.clone()).prop_map(|(u, w)| format!("user {u}{w}")),
        6 => (space.clone(), access.clone(), filter.clone(), space.clone())
            .prop_map(|(lead, a, f, w)| format!("{}topic {a}{f}{w}", lead.replace('\t', " "))),
        2 => (access, filter).prop_map(|(a, f)| format!("pattern {a}{f}")),
        1 => Just("# comment".to_string()),
        1 => Just(String::new()),
        1 => "[ -~\t]{0,16}",
    ]
}

fn acl_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(acl_line(), 0..24),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, final_newline)| {
            let newline = if crlf { "\r\n" } else { "\n" };
            let mut text = lines.join(newline);
            if final_newline && !lines.is_empty() {
                text.push_str(newline);
            }
            text
        })
}

fn grant_access() -> impl Strategy<Value = Access> {
    prop::sample::select(vec![Access::Read, Access::Write, Access::ReadWrite])
}

fn user() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["d1", "d2", "d3", "d4"])
}

fn filter() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "a/b", "a/+", "a/#", "#", "b", "$x/y", "c/d"])
}

const TOPICS: &[&str] = &["a", "a/b", "a/c", "b", "b/b", "$x/y", "c/d", "d1/x"];
const CLIENT_IDS: &[Option<&str>] = &[None, Some("c"), Some("d1")];

/// Every (user, topic, access, client ID) answer for a document.
fn answers(doc: &Document) -> Vec<bool> {
    let mut out = Vec::new();
    for user in ["d1", "d2", "d3", "d4"] {
        let rules = Rules::for_user(doc, Some(user.as_bytes()));
        for topic in TOPICS {
            for need in [Need::Read, Need::Write] {
                for client_id in CLIENT_IDS {
                    let client = Client {
                        username: Some(user.as_bytes()),
                        client_id: client_id.map(str::as_bytes),
                    };
                    out.push(rules.check(client, topic.as_bytes(), need).allowed);
                }
            }
        }
    }
    out
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|&b| b == b'\n').collect()
}

proptest! {
    // Half the generated files are ones Mosquitto refuses, which two
    // properties skip: room for those rejects at any PROPTEST_CASES.
    #![proptest_config(ProptestConfig {
        max_global_rejects: 1 << 20,
        ..ProptestConfig::with_cases(512)
    })]

    #[test]
    fn any_bytes_render_back_unchanged(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let doc = Document::parse(&bytes).unwrap();
        prop_assert_eq!(doc.text(), &bytes[..]);
        let mut joined = Vec::new();
        let mut at = 0;
        for line in doc.lines() {
            prop_assert_eq!(line.start(), at);
            prop_assert!(line.start() <= line.content_end() && line.content_end() <= line.end());
            joined.extend_from_slice(&bytes[line.start()..line.end()]);
            at = line.end();
        }
        prop_assert_eq!(&joined, &bytes);
        // No edits: the pieces spell the old file.
        let pieces = Edits::default().into_pieces(&Summary::of(&bytes));
        prop_assert_eq!(files::materialize(Some(std::io::Cursor::new(&bytes)), &pieces).unwrap(), bytes.clone());
        // Reading as a stream sees the same lines as parsing.
        let mut parsed = Vec::new();
        doc.visit(|l| parsed.push((l.range(), format!("{:?}", l.kind), l.shown())));
        let mut streamed = Vec::new();
        document::scan(Trickle(&bytes[..], 5), |l| {
            streamed.push((l.range(), format!("{:?}", l.kind), l.shown()));
            true
        }).unwrap();
        prop_assert_eq!(parsed.len(), streamed.len());
        for (p, q) in parsed.iter().zip(&streamed) {
            // Spans differ (absolute vs per line); ranges and text must not.
            prop_assert_eq!(&p.0, &q.0);
            prop_assert_eq!(&p.2, &q.2);
        }
    }

    #[test]
    fn whitespace_heavy_text_parses_into_its_own_lines(text in "[a-z #+/%\t\r\n]{0,400}") {
        let doc = Document::parse(text.as_bytes()).unwrap();
        let joined: Vec<u8> = doc
            .lines()
            .iter()
            .flat_map(|l| text.as_bytes()[l.start()..l.end()].to_vec())
            .collect();
        prop_assert_eq!(joined, text.as_bytes());
    }

    #[test]
    fn streamed_edits_equal_parsed_edits(
        text in acl_text(), user in user(), filter in filter(), access in grant_access(),
        revoke_filter in prop::option::of(filter())
    ) {
        let doc = Document::parse(text.as_bytes()).unwrap();
        let parsed = edit::allow(&doc, user.as_bytes(), filter.as_bytes(), access);
        let chunked = || Trickle(text.as_bytes(), 7);
        let streamed = edit::allow_stream(chunked(), user.as_bytes(), filter.as_bytes(), access).unwrap();
        prop_assert_eq!(&parsed.pieces, &streamed.pieces);
        prop_assert_eq!((parsed.action, parsed.line), (streamed.action, streamed.line));
        let parsed = edit::revoke(&doc, user.as_bytes(), revoke_filter.map(str::as_bytes));
        let streamed = edit::revoke_stream(chunked(), user.as_bytes(), revoke_filter.map(str::as_bytes)).unwrap();
        prop_assert_eq!(&parsed.pieces, &streamed.pieces);
        prop_assert_eq!(&parsed.removed, &streamed.removed);
        let scanned = Rules::scan(chunked(), Some(user.as_bytes())).unwrap();
        prop_assert_eq!(scanned.is_err(), doc.first_invalid().is_some());
    }

    #[test]
    fn allow_touches_only_what_it_reports_and_is_idempotent(
        text in acl_text(), user in user(), filter in filter(), access in grant_access()
    ) {
        let doc = Document::parse(text.as_bytes()).unwrap();
        let allowed = edit::allow(&doc, user.as_bytes(), filter.as_bytes(), access);
        let new_text = allowed.text(text.as_bytes()).unwrap();
        prop_assert_eq!(allowed.pieces.is_some(), new_text != text.as_bytes());

        // Every old line not reported as changed is still there, in order.
        let old = lines(text.as_bytes());
        let new = lines(&new_text);
        let mut touched: Vec<usize> = allowed.removed_duplicates.iter().map(|n| n.line - 1).collect();
        if allowed.action == AllowAction::Updated {
            touched.push(allowed.line - 1);
        }
        let mut next = 0;
        for (i, line) in old.iter().enumerate() {
            if touched.contains(&i) {
                continue;
            }
            let gained_newline = i + 1 == old.len() && !line.ends_with(b"\n");
            // Deleting a file's last lines gives the line left last the
            // file's old ending: none, when the file had no final newline.
            let ends_file = |at: usize| at + 1 == new.len() && !new_text.ends_with(b"\n");
            let found = new[next..].iter().enumerate().position(|(k, n)| {
                *n == *line
                    || (gained_newline && n.starts_with(line) && n.len() <= line.len() + 2)
                    || (ends_file(next + k) && line.starts_with(n) && line.len() <= n.len() + 2)
            });
            prop_assert!(found.is_some(), "old line {} {:?} lost", i + 1, String::from_utf8_lossy(line));
            next += found.unwrap() + 1;
        }
        prop_assert!(new.len() <= old.len() + 3);

        // Idempotent.
        let again_doc = Document::parse(&new_text).unwrap();
        let again = edit::allow(&again_doc, user.as_bytes(), filter.as_bytes(), access);
        prop_assert_eq!(again.action, AllowAction::Unchanged);
        prop_assert!(again.pieces.is_none());

        // The grant line says what was asked.
        let granted = &again_doc.lines()[allowed.line - 1];
        let shown = again_doc.shown(granted);
        prop_assert!(shown.trim_start().starts_with("topic "), "{}", shown);
        prop_assert!(shown.ends_with(filter), "{}", shown);
    }

    #[test]
    fn after_allow_the_device_has_the_access(
        text in acl_text(), user in user(), access in grant_access(),
        topic in prop::sample::select(vec!["a", "a/b", "b", "c/d"])
    ) {
        let doc = Document::parse(text.as_bytes()).unwrap();
        prop_assume!(doc.first_invalid().is_none());
        let allowed = edit::allow(&doc, user.as_bytes(), topic.as_bytes(), access);
        prop_assume!(allowed.overlapping_denies.is_empty());
        let new_text = allowed.text(text.as_bytes()).unwrap();
        let after = Document::parse(&new_text).unwrap();
        let rules = Rules::for_user(&after, Some(user.as_bytes()));
        for need in [Need::Read, Need::Write] {
            let client = Client { username: Some(user.as_bytes()), client_id: Some(b"c") };
            let verdict = rules.check(client, topic.as_bytes(), need);
            if access.grants(need) {
                prop_assert!(verdict.allowed, "{:?} {:?}", need, verdict);
            }
        }
    }

    #[test]
    fn revoke_never_grants_more(
        text in acl_text(), user in user(), filter in prop::option::of(filter())
    ) {
        let doc = Document::parse(text.as_bytes()).unwrap();
        prop_assume!(doc.first_invalid().is_none());
        let revoked = edit::revoke(&doc, user.as_bytes(), filter.map(str::as_bytes));
        let new_text = revoked.text(text.as_bytes()).unwrap();
        let after = Document::parse(&new_text).unwrap();
        prop_assert!(after.first_invalid().is_none());
        for (before, now) in answers(&doc).into_iter().zip(answers(&after)) {
            prop_assert!(before || !now, "revoke gave access that was denied before");
        }
        let again = edit::revoke(&after, user.as_bytes(), filter.map(str::as_bytes));
        prop_assert!(again.pieces.is_none());
    }

    #[test]
    fn allow_then_revoke_of_a_new_device_restores_the_file(
        text in acl_text(), filter in filter(), access in grant_access()
    ) {
        // d9 never appears in generated text. Any ending: no final newline,
        // trailing blank lines (the fuzzer found both broke this).
        let doc = Document::parse(text.as_bytes()).unwrap();
        let allowed = edit::allow(&doc, b"d9", filter.as_bytes(), access);
        let added_text = allowed.text(text.as_bytes()).unwrap();
        let added = Document::parse(&added_text).unwrap();
        let revoked = edit::revoke(&added, b"d9", None);
        let restored = revoked.text(&added_text).unwrap();
        prop_assert_eq!(String::from_utf8_lossy(&restored), text);
    }

    #[test]
    fn apply_leaves_listed_devices_exactly_their_grants(
        text in acl_text(), input in desired_input(), exclusive in any::<bool>()
    ) {
        let desired = desired::parse(input.as_bytes(), IdPolicy::Any).unwrap();
        let doc = Document::parse(text.as_bytes()).unwrap();
        let applied = apply::apply(&doc, &desired, exclusive);
        let streamed = apply::apply_stream(Trickle(text.as_bytes(), 7), &desired, exclusive).unwrap();
        prop_assert_eq!(&applied.pieces, &streamed.pieces);
        let new_text = applied.text(text.as_bytes()).unwrap();
        let after = Document::parse(&new_text).unwrap();

        let listed: Vec<(String, Vec<(String, Access)>)> = desired
            .devices
            .iter()
            .map(|d| {
                let mut grants: Vec<(String, Access)> =
                    d.grants.iter().map(|(f, a)| (f.to_string(), *a)).collect();
                grants.sort_by(|a, b| a.0.cmp(&b.0));
                (d.id.to_string(), grants)
            })
            .collect();
        let before = grants_by_user(&doc);
        let now = grants_by_user(&after);
        for (user, wanted) in &listed {
            prop_assert_eq!(now.get(user.as_str()), Some(wanted), "{}", user);
        }
        for (user, grants) in &before {
            if listed.iter().any(|(u, _)| u == user) {
                continue;
            }
            let expected = if exclusive { None } else { Some(grants) };
            prop_assert_eq!(now.get(user.as_str()), expected, "{}", user);
        }
        // Every line that is not a grant of a user it edits is still there, in order.
        let kept = |doc: &Document, edited: &dyn Fn(&str) -> bool| -> Vec<String> {
            let owners = doc.owners();
            doc.lines().iter().enumerate().filter_map(|(i, line)| {
                let owner = owners[i].and_then(|o| doc.user_name(o)).map(|n| String::from_utf8_lossy(n).into_owned());
                let grant = matches!(&line.kind, Kind::Rule(r) if !r.pattern && r.access != Access::Deny);
                let touched = matches!(line.kind, Kind::Blank | Kind::User { .. })
                    || (grant && owner.as_deref().is_some_and(edited));
                (!touched).then(|| doc.shown(line))
            }).collect()
        };
        let edited = |user: &str| exclusive || listed.iter().any(|(u, _)| u == user);
        prop_assert_eq!(kept(&doc, &edited), kept(&after, &edited));

        // Idempotent.
        let again = apply::apply(&after, &desired, exclusive);
        prop_assert!(again.pieces.is_none(), "{:?}", String::from_utf8_lossy(&new_text));
        prop_assert_eq!(again.unchanged.len(), desired.devices.len());
    }

    #[test]
    fn devices_added_by_apply_and_revoked_give_back_the_file(text in acl_text(), input in new_devices_input()) {
        let desired: Desired = desired::parse(input.as_bytes(), IdPolicy::Any).unwrap();
        let doc = Document::parse(text.as_bytes()).unwrap();
        let added_text = apply::apply(&doc, &desired, false).text(text.as_bytes()).unwrap();
        let mut current = added_text;
        for device in desired.devices.iter().rev() {
            let doc = Document::parse(&current).unwrap();
            current = edit::revoke(&doc, device.id.as_str().as_bytes(), None).text(&current).unwrap();
        }
        prop_assert_eq!(String::from_utf8_lossy(&current), text);
    }
}

/// Each user's grant lines (not `pattern`, not `deny`), sorted; `None` for a
/// user without any.
fn grants_by_user(doc: &Document) -> std::collections::HashMap<String, Vec<(String, Access)>> {
    let owners = doc.owners();
    let mut out: std::collections::HashMap<String, Vec<(String, Access)>> = Default::default();
    for (i, line) in doc.lines().iter().enumerate() {
        let Some(user) = owners[i].and_then(|o| doc.user_name(o)) else {
            continue;
        };
        if let Kind::Rule(rule) = &line.kind
            && !rule.pattern
            && rule.access != Access::Deny
        {
            out.entry(String::from_utf8_lossy(user).into_owned())
                .or_default()
                .push((
                    String::from_utf8_lossy(doc.bytes(&rule.filter)).into_owned(),
                    rule.access,
                ));
        }
    }
    for grants in out.values_mut() {
        grants.sort_by(|a, b| a.0.cmp(&b.0));
    }
    out
}

/// `acl apply` input granting some of `users`, one access per device and
/// filter (contradictions are input errors).
fn grants_input(
    users: Vec<&'static str>,
    count: std::ops::Range<usize>,
) -> impl Strategy<Value = String> {
    let grant = (
        prop::sample::select(users),
        filter(),
        prop::sample::select(vec!["read", "write", "readwrite"]),
    );
    prop::collection::vec(grant, count).prop_map(|grants| {
        let mut seen = std::collections::HashMap::new();
        grants
            .into_iter()
            .filter(|(u, f, a)| *seen.entry((*u, *f)).or_insert(*a) == *a)
            .map(|(u, f, a)| format!("{u} {f} {a}\n"))
            .collect()
    })
}

/// `acl apply` input naming some of the users the generated files use.
fn desired_input() -> impl Strategy<Value = String> {
    grants_input(vec!["d1", "d2", "d3", "d4"], 0..6)
}

/// `acl apply` input naming users the generated files never use.
fn new_devices_input() -> impl Strategy<Value = String> {
    grants_input(vec!["d8", "d9"], 1..5)
}
