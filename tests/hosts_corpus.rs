//! `hosts add`, `add` again, a changed IP and `remove`, through the binary, on
//! every real-world shape in tests/corpus/hosts and on a 200,000-line ad-block
//! list: only the managed line ever changes, and add followed by remove gives
//! back the original bytes.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use support::wott;

const SERVER: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/hosts");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hosts"))
        .collect();
    files.sort();
    assert!(files.len() >= 12, "corpus missing: {files:?}");
    files
}

/// The shape of the public ad-block lists (StevenBlack/hosts): a header with
/// the loopback block, then one `0.0.0.0 domain` line per blocked name.
/// bench/hosts.sh writes the same lines.
pub fn ad_block_list(lines: usize) -> Vec<u8> {
    let mut out = String::from(
        "# Title: StevenBlack/hosts\n#\n# This hosts file is a merged collection of hosts from reputable sources,\n\
         # with a dash of crowd sourcing via GitHub\n#\n\
         127.0.0.1 localhost\n127.0.0.1 localhost.localdomain\n127.0.0.1 local\n\
         255.255.255.255 broadcasthost\n::1 localhost\n::1 ip6-localhost\n::1 ip6-loopback\n\
         fe80::1%lo0 localhost\nff00::0 ip6-localnet\nff00::0 ip6-mcastprefix\n\
         ff02::1 ip6-allnodes\nff02::2 ip6-allrouters\nff02::3 ip6-allhosts\n0.0.0.0 0.0.0.0\n\
         # End of custom host records.\n# Start StevenBlack\n",
    );
    for i in 0..lines {
        out.push_str(&format!("0.0.0.0 ads{i:06}.tracker{:02}.com\n", i % 97));
    }
    out.into_bytes()
}

/// What appending `line` to `original` must give, restated independently of
/// the implementation: the file's own line ending, and no final newline
/// added where the file had none.
fn appended(original: &[u8], line: &str) -> Vec<u8> {
    let crlf = original
        .iter()
        .rposition(|b| *b == b'\n')
        .is_some_and(|i| i > 0 && original[i - 1] == b'\r');
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut out = original.to_vec();
    if original.is_empty() || original.ends_with(b"\n") {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(eol.as_bytes());
    } else {
        out.extend_from_slice(eol.as_bytes());
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn hosts(path: &Path, args: &[&str]) -> support::Run {
    wott()
        .arg("hosts")
        .args(args)
        .arg("--hosts-file")
        .arg(path)
        .arg("--json")
        .run()
}

fn round_trip(name: &str, original: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts");
    fs::write(&path, original).unwrap();
    let context = format!("corpus file {name}");

    // add
    let run = hosts(&path, &["add", SERVER, "192.168.1.20"]);
    run.success();
    let doc = run.json();
    assert_eq!(doc["changed"], true, "{context}");
    assert_eq!(doc["actions"][0]["action"], "appended", "{context}");
    let added = fs::read(&path).unwrap();
    assert_eq!(
        added,
        appended(original, &format!("192.168.1.20 {SERVER} # wott-mqtt")),
        "{context}: add must only append the managed line"
    );

    // add again: nothing written, not even the same bytes
    let inode = fs::metadata(&path).unwrap().ino();
    let run = hosts(&path, &["add", SERVER, "192.168.1.20"]);
    run.success();
    assert_eq!(run.json()["changed"], false, "{context}");
    assert_eq!(fs::read(&path).unwrap(), added, "{context}");
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "{context}");

    // list sees it as managed
    let listed = hosts(&path, &["list"]).json();
    let entries = listed["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["names"][0] == SERVER && e["managed"] == true && e["ip"] == "192.168.1.20"),
        "{context}: {listed}"
    );

    // a new IP replaces the line's address in place
    let run = hosts(&path, &["add", SERVER, "fd00::20"]);
    run.success();
    let doc = run.json();
    assert_eq!(doc["actions"][0]["action"], "updated", "{context}");
    assert_eq!(doc["actions"][0]["old_ip"], "192.168.1.20", "{context}");
    assert_eq!(
        fs::read(&path).unwrap(),
        appended(original, &format!("fd00::20 {SERVER} # wott-mqtt")),
        "{context}: the IP change must touch only the managed line"
    );

    // remove gives back the original, byte for byte
    let run = hosts(&path, &["remove", SERVER]);
    run.success();
    assert_eq!(run.json()["changed"], true, "{context}");
    assert_eq!(fs::read(&path).unwrap(), original, "{context}");
    let run = hosts(&path, &["remove", SERVER]);
    run.success();
    assert_eq!(run.json()["changed"], false, "{context}");
    assert_eq!(fs::read(&path).unwrap(), original, "{context}");
}

#[test]
fn every_corpus_file_round_trips_byte_for_byte() {
    for file in corpus() {
        let original = fs::read(&file).unwrap();
        round_trip(&file.display().to_string(), &original);
    }
}

#[test]
fn corpus_files_keep_their_other_entries_readable() {
    // The hand-written entries in the corpus are found where glibc finds them.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/hosts");
    let lookup = |file: &str, name: &str| {
        wott_mqtt::hosts::lookup(&dir.join(file), name)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(lookup("debian.hosts", "bookworm"), ["127.0.1.1"]);
    assert_eq!(lookup("debian.hosts", "LOCALHOST"), ["127.0.0.1", "::1"]);
    assert_eq!(
        lookup("raspberry-pi-os.hosts", "raspberrypi"),
        ["127.0.1.1"]
    );
    assert_eq!(
        lookup("docker-container.hosts", "3f4b1c2d9e8a"),
        ["172.17.0.2"]
    );
    assert_eq!(lookup("ipv6.hosts", "nas"), ["fd00::10"]);
    assert_eq!(
        lookup("ipv6.hosts", "long-form.example.test"),
        ["2001:db8::2"]
    );
    // glibc ignores an address with a zone ID.
    assert!(lookup("ipv6.hosts", "router.local").is_empty());
    assert_eq!(lookup("tabs-and-spaces.hosts", "printer.lan"), ["10.0.0.2"]);
    assert_eq!(lookup("crlf.hosts", "fileserver"), ["10.0.0.5"]);
    assert!(lookup("crlf.hosts", "rhino.acme.com").is_empty());
    assert_eq!(lookup("no-final-newline.hosts", "camera"), ["10.0.0.3"]);
    assert_eq!(lookup("inline-comments.hosts", "cam"), ["10.0.0.3"]);
    assert!(lookup("inline-comments.hosts", "cam-garage").is_empty());
    assert!(lookup("inline-comments.hosts", "disabled.lan").is_empty());
    assert_eq!(
        lookup("utf8-and-latin1-comments.hosts", "nas"),
        ["10.0.0.4"]
    );
    assert_eq!(lookup("ip-only-lines.hosts", "printer"), ["10.0.0.2"]);
    assert!(lookup("ip-only-lines.hosts", "host-with-bad-address").is_empty());
    assert!(lookup("empty.hosts", "localhost").is_empty());
}

#[test]
fn a_200000_line_ad_block_list_round_trips() {
    let original = ad_block_list(200_000);
    assert!(original.len() > 6_000_000, "{}", original.len());
    round_trip("ad-block list", &original);

    // A dry run on it prints a diff of the one new line.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts");
    fs::write(&path, &original).unwrap();
    let run = wott()
        .args([
            "hosts",
            "add",
            SERVER,
            "10.1.2.3",
            "--dry-run",
            "--hosts-file",
        ])
        .arg(&path)
        .run();
    run.success()
        .stdout_has(&format!("+10.1.2.3 {SERVER} # wott-mqtt\n"));
    let added: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    assert_eq!(added.len(), 1, "{}", run.stdout);
    assert!(run.stdout.lines().count() < 12, "{}", run.stdout);
    assert_eq!(fs::read(&path).unwrap(), original);
}
