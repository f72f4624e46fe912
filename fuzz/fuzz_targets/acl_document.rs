//! The ACL document: parse, edit (`allow`, `revoke`), render.
//!
//! The input is a permissions.acl plus the choices of an edit: a device ID
//! and a topic filter, made from the input or taken from the file's own
//! `user` and `topic` lines (so edits of known devices and grants are
//! reached), an access, and the buffer size of the streaming reader the
//! commands use. Invariants:
//!
//! - no panic; parse → render gives back the input exactly, and the stream
//!   reader sees the same lines as the parser at any buffer size;
//! - streamed edits equal parsed edits;
//! - `allow` is idempotent, leaves the grant it reports and keeps every
//!   other line, in order (a last line may gain or lose its newline with
//!   the lines added or deleted after it); in a file without deny rules,
//!   the device then has the access;
//! - `revoke` is idempotent and never gives access that was denied;
//! - `allow` then `revoke` of a device the file does not know gives back the
//!   original bytes (docs/acl.md promises it).

#![no_main]


use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use wott_mqtt::acl::document::{self, Invalid, LineView};
use wott_mqtt::acl::edit::{self, AllowAction};
use wott_mqtt::acl::{Access, Client, Document, Kind, Need, Rules};
use wott_mqtt::names::{DeviceId, TopicFilter, TopicName};

#[derive(Debug, Arbitrary)]
enum Pick<'a> {
    /// The n-th name of this kind in the file.
    FromFile(u16),
    /// Bytes mapped onto the characters of valid names.
    Made(&'a [u8]),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Grant {
    Read,
    Write,
    ReadWrite,
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    buffer: u8,
    user: Pick<'a>,
    filter: Pick<'a>,
    access: Grant,
    /// Revoke every grant of the device rather than the one on the filter.
    revoke_all: bool,
    file: &'a [u8],
}

fn access(grant: Grant) -> Access {
    match grant {
        Grant::Read => Access::Read,
        Grant::Write => Access::Write,
        Grant::ReadWrite => Access::ReadWrite,
    }
}

fn made(bytes: &[u8], alphabet: &[u8], max: usize) -> String {
    bytes
        .iter()
        .take(max)
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect()
}

fn user(pick: &Pick, doc: &Document) -> DeviceId {
    let text = match pick {
        Pick::FromFile(n) => {
            let names: Vec<String> = (0..doc.lines().len())
                .filter_map(|i| doc.user_name(i))
                .filter_map(|b| std::str::from_utf8(b).ok())
                .filter(|s| DeviceId::new(s).is_ok())
                .map(str::to_string)
                .collect();
            names
                .get(usize::from(*n) % names.len().max(1))
                .cloned()
                .unwrap_or_default()
        }
        Pick::Made(bytes) => made(bytes, b"abcdefghijklmnopqrstuvwxyz0123456789-.", 253),
    };
    DeviceId::new(&text).unwrap_or_else(|_| DeviceId::new("fz.d.wott.local").unwrap())
}

fn filter(pick: &Pick, doc: &Document) -> TopicFilter {
    let text = match pick {
        Pick::FromFile(n) => {
            let filters: Vec<String> = doc
                .lines()
                .iter()
                .filter_map(|l| match &l.kind {
                    Kind::Rule(rule) => std::str::from_utf8(doc.bytes(&rule.filter)).ok(),
                    _ => None,
                })
                .filter(|s| TopicFilter::new(s).is_ok())
                .map(str::to_string)
                .collect();
            filters
                .get(usize::from(*n) % filters.len().max(1))
                .cloned()
                .unwrap_or_default()
        }
        Pick::Made(bytes) => made(bytes, b"ab/+#$ %cu\xc3", 300),
    };
    TopicFilter::new(&text).unwrap_or_else(|_| TopicFilter::new("fz/#").unwrap())
}

/// A line as the reader saw it, with spans resolved to bytes.
fn seen(line: &LineView) -> (std::ops::Range<u64>, String, String) {
    let kind = match &line.kind {
        Kind::Blank => "blank".to_string(),
        Kind::Comment => "comment".to_string(),
        Kind::User { name } => format!("user {:?}", line.bytes(name)),
        Kind::Rule(r) => format!(
            "rule {} {:?} {} {:?}",
            r.pattern,
            r.access,
            r.explicit,
            line.bytes(&r.filter)
        ),
        Kind::Invalid(Invalid::UnknownWord { word }) => format!("unknown {:?}", line.bytes(word)),
        Kind::Invalid(Invalid::BadAccess { word }) => format!("access {:?}", line.bytes(word)),
        Kind::Invalid(Invalid::BadFilter { filter, reason }) => {
            format!("filter {:?} {reason:?}", line.bytes(filter))
        }
        Kind::Invalid(other) => format!("{other:?}"),
    };
    (line.range(), line.shown(), kind)
}

/// Whether `username` may read and write each topic, for a few topics.
fn answers(doc: &Document, username: &[u8], topics: &[&[u8]]) -> Vec<bool> {
    let rules = Rules::for_user(doc, Some(username));
    let mut out = Vec::new();
    for topic in topics {
        for need in [Need::Read, Need::Write] {
            for client_id in [&b"c"[..], username] {
                let client = Client {
                    username: Some(username),
                    client_id: Some(client_id),
                };
                out.push(rules.check(client, topic, need).allowed);
            }
        }
    }
    out
}

/// Every old line `allow` does not report as changed is in the new file,
/// in order.
fn keeps_unreported_lines(old_text: &[u8], new_text: &[u8], allowed: &edit::Allowed) {
    let lines = |t: &'_ [u8]| -> Vec<Vec<u8>> {
        t.split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    };
    let (old, new) = (lines(old_text), lines(new_text));
    let mut touched: Vec<usize> = allowed
        .removed_duplicates
        .iter()
        .map(|n| n.line - 1)
        .collect();
    if allowed.action == AllowAction::Updated {
        touched.push(allowed.line - 1);
    }
    let ends_new_file = |at: usize| at + 1 == new.len() && !new_text.ends_with(b"\n");
    let mut next = 0;
    for (i, line) in old.iter().enumerate().filter(|(i, _)| !touched.contains(i)) {
        let ends_old_file = i + 1 == old.len() && !line.ends_with(b"\n");
        let found = new[next..].iter().enumerate().position(|(k, n)| {
            n == line
                || (ends_old_file && n.starts_with(line) && n.len() <= line.len() + 2)
                || (ends_new_file(next + k) && line.starts_with(n) && line.len() <= n.len() + 2)
        });
        let Some(found) = found else {
            panic!(
                "allow lost line {} {:?}",
                i + 1,
                String::from_utf8_lossy(line)
            );
        };
        next += found + 1;
    }
}

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

fuzz_target!(|input: Input| {
    let file = input.file;
    let Ok(doc) = Document::parse(file) else {
        return;
    };

    // Lossless, and the stream reader agrees with the parser.
    assert_eq!(doc.text(), file);
    let mut at = 0;
    for line in doc.lines() {
        assert_eq!(line.start(), at);
        assert!(line.start() <= line.content_end() && line.content_end() <= line.end());
        at = line.end();
    }
    assert_eq!(at, file.len());
    let buffer = usize::from(input.buffer % 32) + 1;
    let reader = || Trickle(file, buffer);
    let mut parsed = Vec::new();
    doc.visit(|l| parsed.push(seen(l)));
    let mut streamed = Vec::new();
    document::scan_chunked(file, buffer, |l| {
        streamed.push(seen(l));
        true
    })
    .unwrap();
    assert_eq!(parsed, streamed, "buffer {buffer}");

    let user = user(&input.user, &doc);
    let filter = filter(&input.filter, &doc);
    let (u, f) = (user.as_str().as_bytes(), filter.as_str().as_bytes());
    let access = access(input.access);
    let valid = doc.first_invalid().is_none();

    // allow
    let allowed = edit::allow(&doc, u, f, access);
    let streamed = edit::allow_stream(reader(), u, f, access).unwrap();
    assert_eq!(allowed.pieces, streamed.pieces);
    assert_eq!(
        (allowed.action, allowed.line),
        (streamed.action, streamed.line)
    );
    let added = allowed.text(file).unwrap();
    assert_eq!(allowed.pieces.is_some(), added != file);
    keeps_unreported_lines(file, &added, &allowed);
    let after = Document::parse(&added).unwrap();
    let again = edit::allow(&after, u, f, access);
    assert_eq!(
        again.action,
        AllowAction::Unchanged,
        "allow is not idempotent"
    );
    assert!(again.pieces.is_none());
    let grant = after.shown(&after.lines()[allowed.line - 1]);
    assert!(
        grant.trim_start().starts_with("topic ") && grant.ends_with(filter.as_str()),
        "line {} is {grant:?}",
        allowed.line
    );
    let no_denies = !doc
        .lines()
        .iter()
        .any(|l| matches!(&l.kind, Kind::Rule(r) if r.access == Access::Deny));
    if valid
        && no_denies
        && let Ok(topic) = TopicName::new(filter.as_str())
    {
        let rules = Rules::for_user(&after, Some(u));
        for need in [Need::Read, Need::Write] {
            // Mosquitto lets no client publish to $SYS…, whatever the ACL says.
            let sys_write = need == Need::Write && topic.as_str().starts_with("$SYS");
            if access.grants(need) && !sys_write {
                let client = Client {
                    username: Some(u),
                    client_id: Some(b"c"),
                };
                let verdict = rules.check(client, topic.as_str().as_bytes(), need);
                assert!(verdict.allowed, "{need:?} {verdict:?}");
            }
        }
    }

    // revoke
    let only = (!input.revoke_all).then_some(f);
    let revoked = edit::revoke(&doc, u, only);
    let streamed = edit::revoke_stream(reader(), u, only).unwrap();
    assert_eq!(revoked.pieces, streamed.pieces);
    assert_eq!(revoked.removed, streamed.removed);
    let removed = revoked.text(file).unwrap();
    let after = Document::parse(&removed).unwrap();
    assert!(
        edit::revoke(&after, u, only).pieces.is_none(),
        "revoke is not idempotent"
    );
    if valid {
        assert!(
            after.first_invalid().is_none(),
            "revoke made the file invalid"
        );
        let topics: Vec<&[u8]> = vec![f, b"a", b"a/b", b"$x/y"];
        let topics: Vec<&[u8]> = topics
            .into_iter()
            .filter(|t| !t.contains(&b'+') && !t.contains(&b'#'))
            .collect();
        for (was, now) in answers(&doc, u, &topics)
            .into_iter()
            .zip(answers(&after, u, &topics))
        {
            assert!(was || !now, "revoke gave access that was denied");
        }
    }

    // allow then revoke of a device the file does not know: the original bytes.
    let known = (0..doc.lines().len()).any(|i| doc.user_name(i) == Some(u));
    if !known {
        let added_doc = Document::parse(&added).unwrap();
        for only in [None, Some(f)] {
            let back = edit::revoke(&added_doc, u, only).text(&added).unwrap();
            assert!(
                back == file,
                "allow then revoke of {user} did not restore the file: {:?}",
                String::from_utf8_lossy(&back)
            );
        }
    }
});
