//! `hosts add|remove|list|check` through the real binary: the rules for names
//! already in the file, dry runs, JSON, and every bad input ending in a clear
//! error with the file byte-for-byte untouched.

#![allow(clippy::unwrap_used)]

mod support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use support::{Run, is_root, skip_without, wott, wott_unprivileged};

const SERVER: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";

/// A hosts file in a temp folder.
struct HostsFile {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl HostsFile {
    fn new(content: &str) -> Self {
        Self::bytes(content.as_bytes())
    }

    fn bytes(content: &[u8]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, content).unwrap();
        HostsFile { dir, path }
    }

    fn read(&self) -> String {
        String::from_utf8(fs::read(&self.path).unwrap()).unwrap()
    }

    /// `wott-mqtt hosts <first> --hosts-file <path> <rest>`: the option goes
    /// right after the subcommand so that tests can use `--`.
    fn run<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Run {
        let mut args = args.into_iter();
        wott()
            .arg("hosts")
            .args(args.next())
            .arg("--hosts-file")
            .arg(&self.path)
            .args(args)
            .run()
    }
}

const DEBIAN: &str =
    "127.0.0.1\tlocalhost\n127.0.1.1\tpi\n\n::1     localhost ip6-localhost ip6-loopback\n";

#[test]
fn add_appends_a_marked_line_and_says_so() {
    let f = HostsFile::new(DEBIAN);
    f.run(["add", SERVER, "192.168.1.20"])
        .success()
        .stdout_has(&format!("Updated {}", f.path.display()))
        .stdout_has(&format!("✓ added {SERVER} → 192.168.1.20 (line 5)"))
        .stderr_is_empty();
    assert_eq!(
        f.read(),
        format!("{DEBIAN}192.168.1.20 {SERVER} # wott-mqtt\n")
    );
}

#[test]
fn the_same_ip_again_changes_nothing_and_writes_nothing() {
    let f = HostsFile::new(&format!("{DEBIAN}192.168.1.20 {SERVER} # wott-mqtt\n"));
    let before = fs::metadata(&f.path).unwrap();
    let run = f.run(["add", SERVER, "192.168.1.20"]);
    run.success().stdout_has(&format!(
        "✓ {SERVER} already maps to 192.168.1.20 in {} (line 5); nothing changed",
        f.path.display()
    ));
    let after = fs::metadata(&f.path).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );

    let doc = f.run(["add", SERVER, "192.168.1.20", "--json"]).json();
    assert_eq!(doc["changed"], false);
    assert_eq!(doc["write_method"], serde_json::Value::Null);
    assert_eq!(doc["actions"], serde_json::json!([]));
    assert_eq!(doc["before"][0]["line"], 5);
}

#[test]
fn a_hand_written_line_with_the_same_ip_counts_as_done() {
    let text = format!("10.0.0.9\t{SERVER}   # the broker\n");
    let f = HostsFile::new(&text);
    let doc = f.run(["add", SERVER, "10.0.0.9", "--json"]).json();
    assert_eq!(doc["changed"], false);
    assert_eq!(f.read(), text);
}

#[test]
fn a_stale_ip_on_a_managed_line_is_replaced_in_place() {
    let f = HostsFile::new(&format!(
        "127.0.0.1 localhost\n10.0.0.1 {SERVER} # wott-mqtt\n10.0.0.50 nas\n"
    ));
    let run = f.run(["add", SERVER, "10.0.0.2"]);
    run.success().stdout_has(&format!(
        "✓ updated line 2: {SERVER} → 10.0.0.2 (was 10.0.0.1)"
    ));
    assert_eq!(
        f.read(),
        format!("127.0.0.1 localhost\n10.0.0.2 {SERVER} # wott-mqtt\n10.0.0.50 nas\n")
    );
}

#[test]
fn aliases_on_a_hand_written_line_keep_their_address() {
    let f = HostsFile::new(&format!(
        "127.0.0.1 localhost\n10.0.0.7\tmqtt {SERVER}\tnas # office rack\n"
    ));
    let run = f.run(["add", SERVER, "10.0.0.9", "--json"]);
    run.success();
    let doc = run.json();
    assert_eq!(doc["actions"][0]["action"], "name-removed");
    assert_eq!(
        doc["actions"][0]["kept"],
        serde_json::json!(["mqtt", "nas"])
    );
    assert_eq!(doc["actions"][1]["action"], "appended");
    assert_eq!(
        f.read(),
        format!(
            "127.0.0.1 localhost\n10.0.0.7\tmqtt nas # office rack\n10.0.0.9 {SERVER} # wott-mqtt\n"
        )
    );
    let lookup = |name: &str| wott_mqtt::hosts::lookup(&f.path, name).unwrap();
    assert_eq!(
        lookup("mqtt"),
        ["10.0.0.7".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        lookup("nas"),
        ["10.0.0.7".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        lookup(SERVER),
        ["10.0.0.9".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn a_hand_written_line_for_the_name_alone_is_taken_over() {
    let f = HostsFile::new(&format!(
        "10.0.0.7  {}  # from the tutorial\n",
        SERVER.to_uppercase()
    ));
    f.run(["add", SERVER, "10.0.0.9"])
        .success()
        .stdout_has("wott-mqtt now manages that line");
    assert_eq!(
        f.read(),
        format!(
            "10.0.0.9  {}  # from the tutorial # wott-mqtt\n",
            SERVER.to_uppercase()
        )
    );
    // Managed from now on: listed, and removed by `remove`.
    let doc = f.run(["list", "--json"]).json();
    assert_eq!(doc["entries"][0]["managed"], true);
    f.run(["remove", SERVER]).success();
    assert_eq!(f.read(), "");
}

#[test]
fn duplicates_end_as_one_line() {
    let f = HostsFile::new(&format!(
        "10.0.0.1 {SERVER}\n127.0.0.1 localhost\n10.0.0.2 {SERVER} # wott-mqtt\nfd00::3 {SERVER} nas\n"
    ));
    f.run(["add", SERVER, "10.0.0.4"]).success();
    assert_eq!(
        f.read(),
        format!("127.0.0.1 localhost\n10.0.0.4 {SERVER} # wott-mqtt\nfd00::3 nas\n")
    );
}

#[test]
fn dry_run_prints_a_unified_diff_and_writes_nothing() {
    let text = format!("127.0.0.1\tlocalhost\n10.0.0.1 {SERVER} # wott-mqtt\n");
    let f = HostsFile::new(&text);
    let path = f.path.display().to_string();
    let run = f.run(["add", SERVER, "10.0.0.2", "--dry-run"]);
    run.success().stdout_is(&format!(
        "--- {path}\n+++ {path}\n@@ -1,2 +1,2 @@\n 127.0.0.1\tlocalhost\n-10.0.0.1 {SERVER} # wott-mqtt\n+10.0.0.2 {SERVER} # wott-mqtt\n"
    ));
    assert_eq!(f.read(), text);

    let doc = f.run(["remove", SERVER, "--dry-run", "--json"]).json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["changed"], true);
    assert!(
        doc["diff"]
            .as_str()
            .unwrap()
            .contains(&format!("-10.0.0.1 {SERVER}"))
    );
    assert_eq!(f.read(), text);

    f.run(["add", SERVER, "10.0.0.1", "--dry-run"])
        .success()
        .stdout_is(&format!("{path}: nothing to change (dry run)\n"));
}

#[test]
fn remove_deletes_only_its_own_lines_and_warns_about_the_rest() {
    let text = format!("10.0.0.1 {SERVER} # wott-mqtt\n10.0.0.7 mqtt {SERVER}\n");
    let f = HostsFile::new(&text);
    let run = f.run(["remove", SERVER]);
    run.success()
        .stdout_has(&format!("✓ removed line 1 (10.0.0.1 {SERVER})"))
        .stderr_has(&format!(
            "warning: line 2 of {} still maps {SERVER} to 10.0.0.7; wott-mqtt did not write that line, \
             so it was left alone: edit it by hand\n",
            f.path.display()
        ));
    assert_eq!(f.read(), format!("10.0.0.7 mqtt {SERVER}\n"));

    let doc = f.run(["remove", SERVER, "--json"]).json();
    assert_eq!(doc["changed"], false);
    assert_eq!(doc["left"][0]["line"], 1);
    assert_eq!(f.read(), format!("10.0.0.7 mqtt {SERVER}\n"));
}

/// A dangling link, or a missing folder, is refused by `remove` exactly as
/// by `add`: both decide under the lock, and neither touches the link.
#[test]
fn remove_and_add_give_the_same_answer_on_a_dangling_link_or_a_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("hosts");
    std::os::unix::fs::symlink("gone", &link).unwrap();
    let missing_folder = dir.path().join("no-such-dir/hosts");
    for (path, message, hint) in [
        (
            &link,
            format!(
                "{} is a symbolic link to gone, which does not exist",
                link.display()
            ),
            "point the link at an existing file",
        ),
        (
            &missing_folder,
            format!(
                "the folder {} does not exist",
                dir.path().join("no-such-dir").display()
            ),
            "create it first",
        ),
    ] {
        let run = |args: &[&str]| {
            wott()
                .arg("hosts")
                .args(args)
                .arg("--hosts-file")
                .arg(path)
                .run()
        };
        let add = run(&["add", SERVER, "10.0.0.1"]);
        add.code(1).error(&message, hint);
        for remove in [&["remove", SERVER][..], &["remove", SERVER, "--dry-run"]] {
            let run = run(remove);
            run.code(1).error(&message, hint);
            assert_eq!(run.stderr, add.stderr, "{remove:?}");
        }
    }
    assert_eq!(fs::read_link(&link).unwrap(), PathBuf::from("gone"));
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing created"
    );
}

#[test]
fn a_missing_file_is_created_by_add_and_left_missing_by_remove() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts");
    let run = |args: &[&str]| {
        wott()
            .arg("hosts")
            .args(args)
            .arg("--hosts-file")
            .arg(&path)
            .run()
    };
    run(&["remove", SERVER]).success().stdout_has("is not in");
    assert!(!path.exists());
    run(&["list"]).success().stderr_has("does not exist");
    assert!(!path.exists());
    run(&["add", SERVER, "10.0.0.1"]).success();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("10.0.0.1 {SERVER} # wott-mqtt\n")
    );
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o644
    );
}

#[test]
fn list_shows_managed_lines_and_wott_names() {
    let f = HostsFile::new(&format!(
        "127.0.0.1 localhost\n10.0.0.7 mqtt aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.D.WOTT.LOCAL\n\
         fd00::8 broker # wott-mqtt\n# 10.0.0.9 {SERVER}\n10.0.0.10 wott.example\n"
    ));
    f.run(["list"]).success().stdout_is(
        " LINE  IP        NAMES\n    \
         2  10.0.0.7  mqtt aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.D.WOTT.LOCAL\n    \
         3  fd00::8   broker  # wott-mqtt\n",
    );
    let doc = f.run(["list", "--json"]).json();
    assert_eq!(
        doc["entries"],
        serde_json::json!([
            {"line": 2, "ip": "10.0.0.7", "names": ["mqtt", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.D.WOTT.LOCAL"], "managed": false},
            {"line": 3, "ip": "fd00::8", "names": ["broker"], "managed": true},
        ])
    );
    assert_eq!(doc["exists"], true);
    assert_eq!(doc["exit_code"], 0);

    HostsFile::new(DEBIAN)
        .run(["list"])
        .success()
        .stdout_has("no lines managed by wott-mqtt or mapping *.d.wott.local names");
}

#[test]
fn the_flag_wins_over_the_environment_and_empty_means_etc_hosts() {
    let a = HostsFile::new("");
    let b = HostsFile::new("");
    wott()
        .args(["hosts", "add", SERVER, "10.0.0.1"])
        .env("WOTT_MQTT_HOSTS_FILE", &a.path)
        .run()
        .success();
    assert!(a.read().contains(SERVER));
    wott()
        .args(["hosts", "add", SERVER, "10.0.0.2", "--hosts-file"])
        .arg(&b.path)
        .env("WOTT_MQTT_HOSTS_FILE", &a.path)
        .run()
        .success();
    assert!(b.read().contains("10.0.0.2"));
    assert!(a.read().contains("10.0.0.1"));
    // Read-only: the real /etc/hosts is only read here, never edited.
    let doc = wott()
        .args(["hosts", "list", "--json"])
        .env("WOTT_MQTT_HOSTS_FILE", "")
        .run()
        .json();
    assert_eq!(doc["hosts_file"], "/etc/hosts");
}

#[test]
fn hostile_input_is_refused_and_the_file_is_untouched() {
    let original = format!("127.0.0.1 localhost\n10.0.0.1 {SERVER} # wott-mqtt\n");
    let long_label = format!("{}.d.wott.local", "a".repeat(300));
    let label_64 = "b".repeat(64);
    // The hint of each kind of bad argument.
    const ID: &str = "a device ID is a DNS name such as";
    const IP: &str = "give the server's IPv4 or IPv6 address";
    let cases: Vec<(Vec<&OsStr>, &str, &str)> = vec![
        (
            vec![
                OsStr::new("add"),
                OsStr::new("evil\n10.6.6.6 bank.example"),
                OsStr::new("10.0.0.2"),
            ],
            "invalid device ID",
            ID,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::new("evil bank.example"),
                OsStr::new("10.0.0.2"),
            ],
            "whitespace",
            ID,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::new("evil\tbank"),
                OsStr::new("10.0.0.2"),
            ],
            "whitespace",
            ID,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::new("evil#x"),
                OsStr::new("10.0.0.2"),
            ],
            "'#'",
            ID,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::new("evil\x1b[2Jx"),
                OsStr::new("10.0.0.2"),
            ],
            "control characters",
            ID,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::new("--"),
                OsStr::new("-rf"),
                OsStr::new("10.0.0.2"),
            ],
            "starts or ends with '-'",
            ID,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::new(&long_label),
                OsStr::new("10.0.0.2"),
            ],
            "at most 253",
            ID,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::new(&label_64),
                OsStr::new("10.0.0.2"),
            ],
            "at most 63",
            ID,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::from_bytes(b"caf\xe9.d.wott.local"),
                OsStr::new("10.0.0.2"),
            ],
            "not UTF-8",
            ID,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::new(SERVER),
                OsStr::new("10.0.0.2\n10.6.6.6 bank.example"),
            ],
            "invalid IP address",
            IP,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::new(SERVER),
                OsStr::new("10.0.0.2 bank.example"),
            ],
            "invalid IP address",
            IP,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::new(SERVER),
                OsStr::new("999.0.0.1"),
            ],
            "invalid IP address",
            IP,
        ),
        (
            vec![OsStr::new("add"), OsStr::new(SERVER), OsStr::new("10.0.0")],
            "invalid IP address",
            IP,
        ),
        (
            vec![OsStr::new("add"), OsStr::new(SERVER), OsStr::new("")],
            "invalid IP address",
            IP,
        ),
        (
            vec![OsStr::new("add"), OsStr::new(SERVER), OsStr::new("0.0.0.0")],
            "unspecified",
            IP,
        ),
        (
            vec![OsStr::new("add"), OsStr::new(SERVER), OsStr::new("ff02::1")],
            "multicast",
            IP,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::new(SERVER),
                OsStr::new("fe80::1%eth0"),
            ],
            "zone IDs",
            IP,
        ),
        (
            vec![
                OsStr::new("add"),
                OsStr::new(SERVER),
                OsStr::from_bytes(b"10.0.0.\xff"),
            ],
            "not UTF-8",
            IP,
        ),
        (
            vec![
                OsStr::new("add"),
                // Past the WoTT shape, which refuses it first.
                OsStr::new("--any-id"),
                OsStr::new("localhost"),
                OsStr::new("10.0.0.2"),
            ],
            "loopback name",
            "not localhost",
        ),
        (
            vec![OsStr::new("remove"), OsStr::new("evil\n10.0.0.1")],
            "invalid device ID",
            ID,
        ),
        (
            vec![OsStr::new("remove"), OsStr::new("--"), OsStr::new("-rf")],
            "starts or ends with '-'",
            ID,
        ),
    ];
    for (args, message, hint) in cases {
        let f = HostsFile::new(&original);
        let run = f.run(&args);
        run.code(2).error(message, hint);
        assert!(
            run.stderr.lines().any(|l| l.starts_with("hint: ")),
            "{args:?}: no hint\n{}",
            run.stderr
        );
        assert_eq!(fs::read(&f.path).unwrap(), original.as_bytes(), "{args:?}");
        let names: Vec<_> = fs::read_dir(f.dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{args:?}: left files behind");
    }
}

#[test]
fn a_leading_dash_without_a_separator_is_a_usage_error() {
    let original = "127.0.0.1 localhost\n";
    let f = HostsFile::new(original);
    f.run(["add", "-rf", "10.0.0.2"])
        .code(2)
        .stderr_has("error: unexpected argument '-r' found")
        .stderr_has("to pass '-r' as a value, use '-- -r'");
    f.run(["add", SERVER, "-10.0.0.2"])
        .code(2)
        .stderr_has("error: unexpected argument '-1' found")
        .stderr_has("to pass '-1' as a value, use '-- -1'");
    assert_eq!(f.read(), original);
}

#[test]
fn bad_input_with_json_is_one_error_document() {
    let f = HostsFile::new(DEBIAN);
    let run = f.run(["add", SERVER, "10.0.0.256", "--json"]);
    run.code(2);
    let doc = run.json();
    assert_eq!(doc["exit_code"], 2);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("10.0.0.256")
    );
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("IPv4 or IPv6")
    );
    assert_eq!(f.read(), DEBIAN);
}

#[test]
fn a_device_id_without_its_domain_is_refused_or_with_any_id_warned_about() {
    let f = HostsFile::new("");
    f.run(["add", "4853b630822946019393b16c5b710b9e", "10.0.0.1"])
        .code(2)
        .error(&format!("did you mean {SERVER}?"), "--any-id");
    assert_eq!(f.read(), "");
    f.run([
        "add",
        "--any-id",
        "4853b630822946019393b16c5b710b9e",
        "10.0.0.1",
    ])
    .success()
    .stderr_has("warning: 4853b630822946019393b16c5b710b9e has no domain")
    .stderr_has(SERVER);
}

#[test]
fn a_directory_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["add", SERVER, "10.0.0.1"],
        vec!["list"],
        vec!["remove", SERVER],
    ] {
        wott()
            .arg("hosts")
            .args(&args)
            .arg("--hosts-file")
            .arg(dir.path())
            .run()
            .code(1)
            .error("is a directory, not a file", "not of a directory");
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn mode_and_owner_are_kept() {
    if skip_without("root (to chown a test file)", is_root()) {
        return;
    }
    let f = HostsFile::new(DEBIAN);
    fs::set_permissions(&f.path, fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&f.path, Some(1234), Some(5678)).unwrap();
    let doc = f.run(["add", SERVER, "10.0.0.1", "--json"]).json();
    assert_eq!(doc["write_method"], "rename");
    let meta = fs::metadata(&f.path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
}

#[test]
fn a_user_without_sudo_is_told_to_use_it_and_nothing_changes() {
    if skip_without("root (to run the binary as nobody)", is_root()) {
        return;
    }
    let f = HostsFile::new(DEBIAN);
    // Like /etc: everyone may read, only root may write.
    fs::set_permissions(f.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let unprivileged = |args: &[&str]| {
        wott_unprivileged()
            .arg("hosts")
            .args(args)
            .arg("--hosts-file")
            .arg(&f.path)
            .run()
    };
    unprivileged(&["add", SERVER, "10.0.0.1"])
        .code(1)
        .error("cannot write", "run the command with sudo");
    assert_eq!(f.read(), DEBIAN);
    assert_eq!(fs::read_dir(f.dir.path()).unwrap().count(), 1);
    // Reading needs no privileges.
    unprivileged(&["list"]).success();
}

#[test]
fn check_names_an_unresolvable_server_and_how_to_fix_it() {
    // Names under .invalid never resolve (RFC 6761); the file maps it anyway.
    let name = "4853b630822946019393b16c5b710b9e.wott-test.invalid";
    let f = HostsFile::new(&format!("10.0.0.1 {name} # wott-mqtt\n"));
    let run = f.run(["check", name]);
    run.code(4)
        .stdout_has(&format!(
            "10.0.0.1  ({} line 1, wott-mqtt)",
            f.path.display()
        ))
        .stdout_has("does not resolve")
        .error(
            "does not resolve on this machine",
            "the system resolver reads /etc/hosts",
        );
    let doc = f.run(["check", name, "--json"]).json();
    assert_eq!(doc["exit_code"], 4);
    assert_eq!(doc["file_addresses"], serde_json::json!(["10.0.0.1"]));
    assert_eq!(doc["system_hosts_file"], false);
    assert!(doc["resolver"]["error"].is_string());
}

#[test]
fn check_warns_when_the_file_and_the_resolver_disagree() {
    // localhost resolves through /etc/hosts on every machine; this file says otherwise.
    let f = HostsFile::new("10.9.9.9 localhost\n");
    let run = f.run(["check", "localhost"]);
    run.success()
        .stdout_has("✗ the system resolver and")
        .stderr_has(&format!(
            "warning: {} maps localhost to 10.9.9.9 but the system resolver returns",
            f.path.display()
        ))
        .stderr_has("the system resolver reads /etc/hosts");
    let doc = f.run(["check", "localhost", "--json"]).json();
    assert_eq!(doc["agrees"], false);
    assert_eq!(doc["warnings"].as_array().unwrap().len(), 1);
}

/// The security review: an edit by rename made a new file, so an SELinux
/// label, a POSIX ACL or a `user.*` attribute on /etc/hosts was lost.
#[test]
fn extended_attributes_survive_an_edit() {
    let f = HostsFile::new("127.0.0.1\tlocalhost\n");
    let set = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, sys; os.setxattr(sys.argv[1], 'user.wott-test', b'kept')",
        ])
        .arg(&f.path)
        .status()
        .unwrap();
    if skip_without(
        "a temporary folder whose filesystem keeps user.* attributes",
        set.success(),
    ) {
        return;
    }
    f.run(["add", SERVER, "192.168.1.20"]).success();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, sys; print(os.getxattr(sys.argv[1], 'user.wott-test').decode())",
        ])
        .arg(&f.path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kept\n", "{out:?}");
    assert!(f.read().contains("192.168.1.20"));
}
