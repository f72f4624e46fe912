//! The edits `hosts add` and `hosts remove` make, as a [`Plan`]: byte-range
//! changes of the file (`lines::Edits`) and what each means ([`Action`]).
//!
//! `add` maps a name to one address, changing as little as possible; `remove`
//! deletes only lines this tool wrote. Both follow the line rules of
//! `crate::lines`, so adding a name and removing it again gives back the
//! original bytes.

use std::io;
use std::net::IpAddr;

use serde::Serialize;

use super::entry::Token;
use super::scan::{Mapping, Scan};
use super::{Entry, MARKER};
use crate::files::{self, Piece};
use crate::lines::{Edits, Summary};
use crate::names::DeviceId;

/// What an edit did to one line. Line numbers are those of the file before
/// the edit, except for `appended`, which is the new line's number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// A new managed line at the end of the file.
    Appended { line: usize },
    /// A managed line's address changed in place.
    Updated { line: usize, old_ip: IpAddr },
    /// A line that mapped only this name got the new address and the marker.
    Adopted { line: usize, old_ip: IpAddr },
    /// The name was taken off a line whose other names stay as they were.
    NameRemoved {
        line: usize,
        ip: IpAddr,
        kept: Vec<String>,
    },
    /// A line that mapped only this name was deleted.
    LineRemoved {
        line: usize,
        ip: IpAddr,
        managed: bool,
    },
}

/// An edit of a hosts file: the byte-range changes, and what they mean.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    edits: Edits,
    pub actions: Vec<Action>,
    /// The lines that mapped the name before the edit.
    pub before: Vec<Entry>,
    /// Lines that still map the name and were deliberately left alone
    /// (`remove` touches only managed lines).
    pub left: Vec<Entry>,
    /// The file as it was.
    file: Summary,
}

impl Plan {
    fn new(scan: &Scan) -> Plan {
        Plan {
            file: scan.file,
            ..Plan::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// The new content: the old file's unchanged ranges and the new bytes
    /// between them.
    pub(super) fn pieces(&self) -> Vec<Piece> {
        self.edits.clone().into_pieces(&self.file)
    }

    /// The edited bytes, for content already in memory (the bytes the plan
    /// was made from).
    pub fn apply(&self, original: &[u8]) -> io::Result<Vec<u8>> {
        files::materialize(Some(io::Cursor::new(original)), &self.pieces())
    }

    /// Takes `name` off a mapping line: the whole line when it maps nothing
    /// else, otherwise just the word and one run of whitespace next to it.
    fn remove_name(&mut self, m: &Mapping, name: &str) {
        let kept = m.other_names(name);
        if kept.is_empty() {
            self.edits.delete_line(m.span);
            self.actions.push(Action::LineRemoved {
                line: m.number,
                ip: m.parsed.ip,
                managed: m.parsed.managed,
            });
            return;
        }
        let names = &m.parsed.names;
        let is_ours = |t: &Token| t.text.eq_ignore_ascii_case(name);
        for (i, token) in names.iter().enumerate() {
            if !is_ours(token) {
                continue;
            }
            let range = if names[i + 1..].iter().any(|t| !is_ours(t)) {
                // A kept name follows: drop the word and the space after it.
                token.span.start..names[i + 1].span.start
            } else {
                // The last kept word comes before it: drop the space before it and the word.
                let previous_end = if i == 0 {
                    m.parsed.ip_span.end
                } else {
                    names[i - 1].span.end
                };
                previous_end..token.span.end
            };
            self.edits.delete(m.absolute(&range));
        }
        self.actions.push(Action::NameRemoved {
            line: m.number,
            ip: m.parsed.ip,
            kept,
        });
    }

    fn append(&mut self, line: &str) {
        let bytes = self.file.appended(&[line.as_bytes()]);
        self.edits.insert(self.file.len, bytes);
        self.actions.push(Action::Appended {
            line: self.file.lines + 1,
        });
    }
}

/// The line `add` writes.
pub fn managed_line(name: &DeviceId, ip: IpAddr) -> String {
    format!("{ip} {name} # {MARKER}")
}

/// Maps `name` to `ip` and nothing else, changing as little as possible.
/// `scan` must have searched for `name`.
///
/// - Every line already maps it to `ip`: nothing changes.
/// - A managed line maps it alone: that line's address is replaced in place.
/// - Else a line already maps it to `ip`: that line stays.
/// - Else a line maps it alone: it gets the new address and the marker.
/// - Else a managed line is appended.
///
/// Every other line that maps the name loses it; its other names stay as they
/// were, and a line left with no name is deleted.
pub(super) fn plan_add(scan: &Scan, name: &DeviceId, ip: IpAddr) -> Plan {
    let found: Vec<Mapping> = scan.mappings_of(name.as_str()).collect();
    let mut plan = Plan {
        before: found.iter().map(Mapping::entry).collect(),
        ..Plan::new(scan)
    };
    if !found.is_empty() && found.iter().all(|m| m.parsed.ip == ip) {
        return plan;
    }
    let only_ours = |m: &Mapping| m.other_names(name.as_str()).is_empty();
    let keeper = found
        .iter()
        .position(|m| m.parsed.managed && only_ours(m))
        .or_else(|| found.iter().position(|m| m.parsed.ip == ip))
        .or_else(|| found.iter().position(only_ours));
    for (i, m) in found.iter().enumerate() {
        if Some(i) != keeper {
            plan.remove_name(m, name.as_str());
            continue;
        }
        if m.parsed.ip == ip {
            continue;
        }
        plan.edits
            .replace(m.absolute(&m.parsed.ip_span), ip.to_string().into_bytes());
        if m.parsed.managed {
            plan.actions.push(Action::Updated {
                line: m.number,
                old_ip: m.parsed.ip,
            });
        } else {
            plan.edits
                .insert(m.text_end(), format!(" # {MARKER}").into_bytes());
            plan.actions.push(Action::Adopted {
                line: m.number,
                old_ip: m.parsed.ip,
            });
        }
    }
    if keeper.is_none() {
        plan.append(&managed_line(name, ip));
    }
    plan
}

/// Deletes the managed lines that map `name` (only the name, when a managed
/// line also maps others). Lines this tool did not write are left alone and
/// reported in [`Plan::left`]. `scan` must have searched for `name`.
pub(super) fn plan_remove(scan: &Scan, name: &str) -> Plan {
    let mut plan = Plan::new(scan);
    for m in scan.mappings_of(name) {
        plan.before.push(m.entry());
        if m.parsed.managed {
            plan.remove_name(&m, name);
        } else {
            plan.left.push(m.entry());
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::fmt::Write as _;

    use proptest::prelude::*;

    use super::*;
    use crate::hosts::{Document, is_reserved, parse_server_ip};

    fn id(s: &str) -> DeviceId {
        DeviceId::new(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn add(text: &str, name: &str, addr: &str) -> (String, Plan) {
        let plan = plan_add(&Scan::of(text.as_bytes(), name), &id(name), ip(addr));
        (
            String::from_utf8(plan.apply(text.as_bytes()).unwrap()).unwrap(),
            plan,
        )
    }

    fn remove(text: &str, name: &str) -> (String, Plan) {
        let plan = plan_remove(&Scan::of(text.as_bytes(), name), name);
        (
            String::from_utf8(plan.apply(text.as_bytes()).unwrap()).unwrap(),
            plan,
        )
    }

    #[test]
    fn lines_keep_their_endings() {
        let doc = Document::parse(b"a\r\n\tb\n\nc");
        let lines: Vec<_> = doc.lines().map(|l| (l.text(), l.ending())).collect();
        assert_eq!(
            lines,
            [
                (&b"a"[..], &b"\r\n"[..]),
                (b"\tb", b"\n"),
                (b"", b"\n"),
                (b"c", b"")
            ]
        );
        assert_eq!(Scan::of(doc.bytes(), "x").file.lines, 4);
    }

    #[test]
    fn names_compare_like_glibc() {
        let doc = Document::parse(
            b"10.0.0.1 Broker.Example # broker\n\
              10.0.0.2 other#broker broker\n\
              not-an-ip broker\n\
              10.0.0.3\n\
              # 10.0.0.4 broker\n\
              10.0.0.5\tx\tBROKER # wott-mqtt\n",
        );
        let entries = doc.entries_for("broker");
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].ip, ip("10.0.0.5"));
        assert!(entries[0].managed);
        assert_eq!(doc.entries_for("broker.example")[0].line, 1);
        assert_eq!(doc.entries_for("other")[0].names, ["other"]);
    }

    #[test]
    fn add_appends_in_the_files_style() {
        let (out, plan) = add("a b\n", "s.d.wott.local", "10.0.0.9");
        assert_eq!(out, "a b\n10.0.0.9 s.d.wott.local # wott-mqtt\n");
        assert_eq!(plan.actions, [Action::Appended { line: 2 }]);
        let (out, _) = add("x\r\ny", "s", "10.0.0.9");
        assert_eq!(out, "x\r\ny\r\n10.0.0.9 s # wott-mqtt");
        let (out, _) = add("", "s", "fd00::1");
        assert_eq!(out, "fd00::1 s # wott-mqtt\n");
    }

    #[test]
    fn same_ip_changes_nothing_even_on_a_hand_written_line() {
        let text = "10.0.0.9   s  # mine\n";
        let (out, plan) = add(text, "s", "10.0.0.9");
        assert_eq!(out, text);
        assert!(plan.is_empty());
        assert_eq!(plan.before.len(), 1);
    }

    #[test]
    fn a_managed_line_is_updated_in_place() {
        let (out, plan) = add("a\n10.0.0.1 s # wott-mqtt\nb\n", "s", "10.0.0.2");
        assert_eq!(out, "a\n10.0.0.2 s # wott-mqtt\nb\n");
        assert_eq!(
            plan.actions,
            [Action::Updated {
                line: 2,
                old_ip: ip("10.0.0.1")
            }]
        );
    }

    #[test]
    fn aliases_on_a_foreign_line_stay_where_they_were() {
        for (before, after) in [
            ("10.0.0.1\tmqtt s nas\n", "10.0.0.1\tmqtt nas\n"),
            ("10.0.0.1\ts mqtt\n", "10.0.0.1\tmqtt\n"),
            ("10.0.0.1 mqtt\tS # c\n", "10.0.0.1 mqtt # c\n"),
            ("10.0.0.1 a s s b\n", "10.0.0.1 a b\n"),
            ("10.0.0.1 a s s\n", "10.0.0.1 a\n"),
        ] {
            let (out, _) = add(before, "s", "10.0.0.2");
            assert_eq!(
                out,
                format!("{after}10.0.0.2 s # wott-mqtt\n"),
                "{before:?}"
            );
        }
    }

    #[test]
    fn a_line_mapping_only_the_name_is_adopted() {
        let (out, plan) = add("10.0.0.1  s\t# office\n", "s", "10.0.0.2");
        assert_eq!(out, "10.0.0.2  s\t# office # wott-mqtt\n");
        assert!(matches!(
            plan.actions[..],
            [Action::Adopted { line: 1, .. }]
        ));
        // Now managed: the next change updates it in place.
        let (again, _) = add(&out, "s", "10.0.0.3");
        assert_eq!(again, "10.0.0.3  s\t# office # wott-mqtt\n");
    }

    #[test]
    fn duplicates_collapse_to_one_line() {
        let text = "10.0.0.1 s\n10.0.0.2 s # wott-mqtt\n10.0.0.3 s x\nfd00::1 s\n";
        let (out, _) = add(text, "s", "10.0.0.4");
        assert_eq!(out, "10.0.0.4 s # wott-mqtt\n10.0.0.3 x\n");
        let doc = Document::parse(out.as_bytes());
        assert_eq!(doc.entries_for("s").len(), 1);
    }

    #[test]
    fn deleting_the_last_lines_keeps_a_missing_final_newline() {
        let (out, _) = add("10.0.0.1 s\n10.0.0.1 s\n10.0.0.1 s", "s", "10.0.0.2");
        assert_eq!(out, "10.0.0.2 s # wott-mqtt");
        // A bare CR at the end must not merge with the new line's LF.
        let (out, _) = add("\r", "s", "10.0.0.2");
        assert_eq!(remove(&out, "s").0, "\r");
    }

    #[test]
    fn remove_deletes_only_managed_lines() {
        let text = "10.0.0.1 s # wott-mqtt\n10.0.0.2 s x\n";
        let (out, plan) = remove(text, "s");
        assert_eq!(out, "10.0.0.2 s x\n");
        assert_eq!(plan.left.len(), 1);
        let (out, _) = remove("a\n10.0.0.1 s # wott-mqtt", "s");
        assert_eq!(out, "a");
        let (out, _) = remove("10.0.0.1 s # wott-mqtt", "s");
        assert_eq!(out, "");
    }

    #[test]
    fn wott_entries_are_managed_or_in_the_wott_domain() {
        let doc = Document::parse(
            b"10.0.0.1 a.d.wott.local\n10.0.0.2 b # wott-mqtt\n10.0.0.3 wott\n10.0.0.4 d.wott.local\n",
        );
        let lines: Vec<usize> = doc.wott_entries().iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 2]);
    }

    #[test]
    fn server_ips_are_checked() {
        let ok = |s: &str| parse_server_ip(OsStr::new(s)).unwrap();
        assert_eq!(ok("192.168.1.20"), ip("192.168.1.20"));
        assert_eq!(ok("fd00::20"), ip("fd00::20"));
        for bad in [
            "",
            "1.2.3",
            "256.1.1.1",
            " 10.0.0.1",
            "10.0.0.1\n",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "fe80::1%eth0",
            "example.com",
        ] {
            assert!(parse_server_ip(OsStr::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn loopback_names_are_reserved() {
        assert!(is_reserved("LOCALHOST"));
        assert!(is_reserved("a.localhost"));
        assert!(!is_reserved("localhost.d.wott.local"));
    }

    /// Lines of the kinds real hosts files have, as raw bytes: mappings with
    /// names the tests look for, comments, markers, junk.
    fn hosts_line() -> impl Strategy<Value = Vec<u8>> {
        let ip = prop::sample::select(vec![
            "10.0.0.1",
            "10.0.0.9",
            "::1",
            "fd00::1",
            "fe80::1%lo0",
            "not-an-ip",
            "192.168.1.1",
        ]);
        let name = prop::sample::select(vec![
            "s",
            "S",
            "s#x",
            "other",
            "localhost",
            "ip6-localhost",
            "s.d.wott.local",
            "X.D.WOTT.LOCAL",
            "wott-mqtt",
        ]);
        let space = prop::sample::select(vec![" ", "\t", "  ", " \t"]);
        let comment = prop::sample::select(vec![
            "",
            " # c",
            " # wott-mqtt",
            "\t#wott-mqtt",
            " # note # wott-mqtt",
            "  ",
        ]);
        let mapping = (
            prop::sample::select(vec!["", " ", "\t"]),
            ip,
            prop::collection::vec((space, name), 0..4),
            comment,
        )
            .prop_map(|(indent, ip, names, comment)| {
                let mut line = format!("{indent}{ip}");
                for (space, name) in names {
                    line.push_str(space);
                    line.push_str(name);
                }
                line.push_str(comment);
                line.into_bytes()
            });
        prop_oneof![
            4 => mapping,
            1 => Just(b"# comment \xc3\xa9\xf0\x9f\x98\x80".to_vec()),
            1 => Just(b"10.0.0.2 s caf\xe9 other".to_vec()),
            1 => Just(b"\xff\xfe garbage \x00".to_vec()),
            1 => Just(Vec::new()),
            1 => proptest::collection::vec(any::<u8>(), 0..20),
        ]
    }

    fn hosts_file() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec((hosts_line(), prop_oneof![Just("\n"), Just("\r\n")]), 0..12),
            any::<bool>(),
        )
            .prop_map(|(lines, final_newline)| {
                let mut out = Vec::new();
                let count = lines.len();
                for (i, (line, eol)) in lines.into_iter().enumerate() {
                    out.extend_from_slice(&line);
                    if i + 1 < count || final_newline {
                        out.extend_from_slice(eol.as_bytes());
                    }
                }
                out
            })
    }

    proptest! {
        #[test]
        fn parse_then_render_is_the_identity(bytes in hosts_file()) {
            prop_assert_eq!(Document::parse(&bytes).render(), bytes);
        }

        #[test]
        fn arbitrary_bytes_render_back_too(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let doc = Document::parse(&bytes);
            prop_assert_eq!(doc.render(), bytes.clone());
            for line in doc.lines() {
                let _ = Document::entry(&line);
            }
        }

        #[test]
        fn the_search_finds_what_parsing_every_line_finds(bytes in hosts_file(), name in "[sS]|localhost|s\\.d\\.wott\\.local|wott-mqtt|other|caf") {
            let doc = Document::parse(&bytes);
            let everything: Vec<Entry> = doc
                .lines()
                .filter_map(|l| Document::entry(&l))
                .filter(|e| e.maps(&name))
                .collect();
            prop_assert_eq!(doc.entries_for(&name), everything);
        }

        #[test]
        fn scanning_in_small_chunks_finds_the_same_lines(bytes in hosts_file(), chunk in 1usize..9, word in "s|wott|localhost|\\?") {
            let whole = Scan::of(&bytes, &word);
            let chunked = Scan::read_chunked(&bytes[..], &word, chunk).unwrap();
            let doc = Document::parse(&bytes);
            let lines: Vec<_> = doc.lines().collect();
            prop_assert_eq!(whole.file.len, bytes.len() as u64);
            prop_assert_eq!(whole.file.lines, lines.len());
            for scan in [&whole, &chunked] {
                prop_assert_eq!(scan.file, whole.file);
                let expected: Vec<usize> = lines
                    .iter()
                    .filter(|l| l.text().to_ascii_lowercase().windows(word.len()).any(|w| w == word.as_bytes()))
                    .map(|l| l.number)
                    .collect();
                let numbers: Vec<usize> = scan.hits.iter().map(|f| f.number).collect();
                prop_assert_eq!(numbers, expected);
                for hit in &scan.hits {
                    let line = lines[hit.number - 1];
                    prop_assert_eq!(hit.span, line.span());
                    prop_assert_eq!(&hit.text[..], line.text());
                }
            }
        }

        #[test]
        fn add_then_remove_gives_back_the_original(bytes in hosts_file(), addr in (1..=u32::MAX).prop_map(std::net::Ipv4Addr::from)) {
            let name = id("new-server.d.wott.local");
            let added = plan_add(&Scan::of(&bytes, name.as_str()), &name, IpAddr::V4(addr)).apply(&bytes).unwrap();
            prop_assert!(added.starts_with(&bytes), "only an append");
            let after = Scan::of(&added, name.as_str());
            prop_assert_eq!(after.entries_mapping(name.as_str()).len(), 1);
            let again = plan_add(&after, &name, IpAddr::V4(addr));
            prop_assert!(again.is_empty());
            let removed = plan_remove(&after, name.as_str()).apply(&added).unwrap();
            prop_assert_eq!(removed, bytes);
        }

        #[test]
        fn after_add_the_name_maps_to_one_ip_on_one_line(bytes in hosts_file(), last in 1u8..=9) {
            let target = IpAddr::from([10, 0, 0, last]);
            let doc = Document::parse(&bytes);
            let plan = plan_add(&Scan::of(&bytes, "s"), &id("s"), target);
            let out = plan.apply(&bytes).unwrap();
            let after = Document::parse(&out);
            let entries = after.entries_for("s");
            prop_assert!(entries.iter().all(|e| e.ip == target), "{:?}", entries);
            prop_assert!(!entries.is_empty());
            if !plan.is_empty() {
                prop_assert_eq!(entries.len(), 1);
            }
            // Every other name keeps its addresses.
            for other in ["localhost", "other", "ip6-localhost"] {
                let before: Vec<IpAddr> = doc.entries_for(other).iter().map(|e| e.ip).collect();
                let now: Vec<IpAddr> = after.entries_for(other).iter().map(|e| e.ip).collect();
                prop_assert_eq!(before, now);
            }
        }
    }

    #[test]
    fn a_large_file_is_searched_across_chunks() {
        let mut text = String::new();
        for i in 0..20_000 {
            let _ = writeln!(text, "0.0.0.0 ad{i:05}.example.com");
        }
        text.push_str("10.0.0.1 S.d.wott.local\n");
        for i in 0..20_000 {
            let _ = writeln!(text, "0.0.0.0 tr{i:05}.example.com");
        }
        let doc = Document::parse(text.as_bytes());
        let entries = doc.entries_for("s.d.wott.local");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].line, 20_001);
        assert_eq!(doc.entries_for("tr19999.example.com")[0].line, 40_001);
        assert_eq!(doc.entries_for("ad00000.example.com")[0].line, 1);
    }
}
