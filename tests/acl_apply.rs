//! `wott-mqtt acl apply` through the real binary: the desired grants of many
//! devices from a file or stdin, the exact bytes written, a second run that
//! writes nothing, and every bad input refused with the ACL byte-identical.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use support::{Run, wott};

const D1: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";
const D2: &str = "0123456789abcdef0123456789abcdef.d.wott.local";
const D3: &str = "fedcba9876543210fedcba9876543210.d.wott.local";

/// A temp dir with a permissions.acl, and a grants file beside it.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(acl: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("permissions.acl"), acl).unwrap();
        Fixture { dir }
    }

    fn acl(&self) -> PathBuf {
        self.dir.path().join("permissions.acl")
    }

    fn text(&self) -> String {
        fs::read_to_string(self.acl()).unwrap()
    }

    fn grants(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, content).unwrap();
        path
    }

    /// `acl apply ARGS --acl-file permissions.acl`.
    fn apply(&self, args: &[&str]) -> support::Wott {
        wott()
            .args(["acl", "apply"])
            .args(args)
            .arg("--acl-file")
            .arg(self.acl())
    }
}

/// The file's inode and modification time: a run that writes nothing keeps both.
fn identity(path: &std::path::Path) -> (u64, i64, i64) {
    let meta = fs::metadata(path).unwrap();
    (meta.ino(), meta.mtime(), meta.mtime_nsec())
}

const HAND_WRITTEN: &str = "\
# Managed by hand and by wott-mqtt
topic read public/#
pattern read broadcast/%u

user 4853b630822946019393b16c5b710b9e.d.wott.local
topic read old/topic
topic deny wott/temperature/secret
topic readwrite wott/temperature

user fedcba9876543210fedcba9876543210.d.wott.local
topic write legacy
";

#[test]
fn apply_makes_each_listed_device_exactly_so_and_a_second_run_writes_nothing() {
    let f = Fixture::new(HAND_WRITTEN);
    let grants = f.grants(
        "grants.txt",
        format!(
            "# the fleet\n\n{D1} wott/temperature readwrite\n{D1}\twott/+/secret   read\r\n{D2} wott/temperature read\n{D1} wott/temperature readwrite\n"
        ),
    );
    let run = f.apply(&[grants.to_str().unwrap()]).run();
    run.success()
        .stdout_has(&format!("added: {D2} (new block: 1 added)"))
        .stdout_has(&format!("changed: {D1} (1 added, 1 removed)"))
        .stdout_has(": 1 added, 1 changed, 0 removed, 0 unchanged")
        .stderr_has(&format!(
            "{}:7 `topic deny wott/temperature/secret` still denies part of {D1}'s grants",
            f.acl().display()
        ));
    assert_eq!(
        f.text(),
        format!(
            "\
# Managed by hand and by wott-mqtt
topic read public/#
pattern read broadcast/%u

user {D1}
topic deny wott/temperature/secret
topic readwrite wott/temperature
topic read wott/+/secret

user {D3}
topic write legacy

user {D2}
topic read wott/temperature
"
        )
    );

    // The same input again, as JSON from stdin: nothing written.
    let before = identity(&f.acl());
    let json = format!(
        r#"[{{"device": "{D2}", "topic": "wott/temperature", "access": "read"}},
            {{"device": "{D1}", "topic": "wott/+/secret", "access": "read"}},
            {{"device": "{D1}", "topic": "wott/temperature", "access": "readwrite"}}]"#
    );
    let run = f.apply(&["-", "--json"]).stdin(json).run();
    run.success().stderr_lacks("SIGHUP");
    let doc = run.json();
    assert_eq!(doc["changed"], false);
    assert_eq!(doc["format"], "json");
    assert_eq!(doc["input"], "<stdin>");
    assert_eq!(doc["devices"]["unchanged"], serde_json::json!([D2, D1]));
    assert_eq!(doc["devices"]["added"], serde_json::json!([]));
    assert_eq!(identity(&f.acl()), before);
}

#[test]
fn json_reports_devices_and_grants_and_dry_run_prints_the_diff() {
    let f = Fixture::new(HAND_WRITTEN);
    let before = fs::read(f.acl()).unwrap();
    let input = format!("{D1} wott/temperature read\n{D2} wott/# readwrite\n{D2} wott/x write\n");
    let run = f
        .apply(&["--dry-run", "--json", "--exclusive"])
        .stdin(input.clone())
        .run();
    run.success();
    let doc = run.json();
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["exclusive"], true);
    assert_eq!(doc["entries"], 3);
    assert_eq!(doc["devices"]["added"], serde_json::json!([D2]));
    assert_eq!(doc["devices"]["changed"], serde_json::json!([D1]));
    assert_eq!(doc["devices"]["removed"], serde_json::json!([D3]));
    assert_eq!(
        doc["grants"],
        serde_json::json!({"added": 2, "updated": 1, "removed": 2})
    );
    let diff = doc["diff"].as_str().unwrap();
    assert!(diff.contains("-topic read old/topic\n"), "{diff}");
    assert!(
        diff.contains("-topic readwrite wott/temperature\n+topic read wott/temperature\n"),
        "{diff}"
    );
    assert!(
        diff.contains(&format!("-user {D3}\n-topic write legacy\n")),
        "{diff}"
    );
    assert_eq!(fs::read(f.acl()).unwrap(), before, "a dry run wrote");

    // For real: the unlisted device's block goes; the hand-written lines stay.
    f.apply(&["--exclusive"])
        .stdin(input.clone())
        .run()
        .success()
        .stdout_has(&format!("removed: {D3} (1 grant(s))"));
    assert_eq!(
        f.text(),
        format!(
            "\
# Managed by hand and by wott-mqtt
topic read public/#
pattern read broadcast/%u

user {D1}
topic deny wott/temperature/secret
topic read wott/temperature

user {D2}
topic readwrite wott/#
topic write wott/x
"
        )
    );
    let run = f.apply(&["--exclusive", "--json"]).stdin(input).run();
    assert_eq!(run.json()["changed"], false);
}

#[test]
fn apply_creates_a_missing_acl_file() {
    let f = Fixture::new("");
    fs::remove_file(f.acl()).unwrap();
    f.apply(&[])
        .stdin(format!("{D1} wott/temperature readwrite\n"))
        .run()
        .success();
    assert_eq!(
        f.text(),
        format!("user {D1}\ntopic readwrite wott/temperature\n")
    );
}

/// Runs `acl apply` with `input` on stdin, and checks the exit code, that
/// stderr has each fragment and the ACL is byte for byte as it was.
#[track_caller]
fn refused(f: &Fixture, args: &[&str], input: &str, fragments: &[&str]) -> Run {
    let before = fs::read(f.acl()).unwrap();
    let stamp = identity(&f.acl());
    let run = f.apply(args).stdin(input).run();
    run.code(2);
    for fragment in fragments {
        run.stderr_has(fragment);
    }
    assert_eq!(fs::read(f.acl()).unwrap(), before, "the ACL changed");
    assert_eq!(identity(&f.acl()), stamp, "the ACL was rewritten");
    run
}

#[test]
fn every_bad_line_is_named_at_once_and_nothing_is_written() {
    let f = Fixture::new(HAND_WRITTEN);
    let input = format!(
        "{D1} wott/ok read\n\
         not_an_id wott/x read\n\
         {D1} wott/#/x read\n\
         {D1} wott/y rw\n\
         {D1} wott/z\n\
         {D1} wott/ok write\n\
         self wott/x read\n\
         {D2} wott/x deny\n\
         {D2} wott/a b read\n\
         {D2} wott/\u{7}bell read\n"
    );
    let run = refused(
        &f,
        &["-"],
        &input,
        &[
            "error: 9 bad grant(s) in <stdin>; nothing was written",
            "<stdin>:2: invalid device ID \"not_an_id\"",
            "<stdin>:3: invalid MQTT topic \"wott/#/x\": '#' must be the last level",
            "<stdin>:4: unknown access \"rw\": use read, write or readwrite",
            "<stdin>:5: the access is missing",
            &format!("<stdin>:6: {D1} is granted write on wott/ok here, but read on line 1"),
            "<stdin>:7: `self` is not read here",
            "<stdin>:8: `deny` is not a grant",
            "<stdin>:9: expected `<device-id> <topic-filter> <read|write|readwrite>`, found 4 field(s)",
            "<stdin>:10: invalid MQTT topic \"wott/\\u{7}bell\"",
            "hint: write one grant per line",
        ],
    );
    run.stdout_is("");
    // --json: the same, as one document.
    let run = refused(&f, &["--json"], &input, &[]);
    let doc = run.json();
    assert_eq!(doc["exit_code"], 2);
    let details = doc["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 9);
    assert!(
        details[0]
            .as_str()
            .unwrap()
            .starts_with("<stdin>:2: invalid device ID")
    );
}

#[test]
fn bad_json_is_named_with_line_and_element() {
    let f = Fixture::new(HAND_WRITTEN);
    let cases: &[(&str, &[&str])] = &[
        (
            "{\"device\": 1}",
            &["<stdin>:1: the JSON input must be an array"],
        ),
        (
            &format!(
                "[\n  {{\"device\": \"{D1}\", \"topic\": \"t\", \"access\": \"read\"}},\n  {{\"device\": \"{D1}\", \"topic\": \"t\"}},\n  [1],\n  {{\"device\": 5, \"topic\": \"t\", \"access\": \"write\", \"acces\": \"x\"}}\n]"
            ),
            &[
                "4 bad grant(s) in <stdin>",
                "<stdin>:3: element [1]: \"access\" is missing",
                "<stdin>:4: element [2]: expected an object",
                "<stdin>:5: element [3]: unknown key \"acces\"",
                "<stdin>:5: element [3]: \"device\" must be a string, not a number",
            ],
        ),
        (
            &format!(
                "[{{\"device\": \"{D1}\", \"topic\": \"t\", \"access\": \"read\"}},\n {{\"device\": \"{D1}\",\n \"topic\" \"t\"}}]"
            ),
            &["<stdin>:3: element [1]: invalid JSON: expected `:`"],
        ),
        ("[", &["the array is not closed"]),
        ("[] trailing", &["unexpected text after the JSON array"]),
    ];
    for (input, fragments) in cases {
        refused(&f, &[], input, fragments);
    }
}

#[test]
fn other_refusals_leave_the_acl_as_it_was() {
    let f = Fixture::new(HAND_WRITTEN);
    // Lines that are not UTF-8.
    let before = fs::read(f.acl()).unwrap();
    let run = f.apply(&[]).stdin(b"\xff\xfe wott/x read\n".to_vec()).run();
    run.code(2).stderr_has("<stdin>:1: the line is not UTF-8");
    assert_eq!(fs::read(f.acl()).unwrap(), before);
    // Nothing listed, and --exclusive would empty the file.
    refused(
        &f,
        &["--exclusive"],
        "# nobody\n",
        &[
            "<stdin> lists no grants, and --exclusive would remove every device's grants",
            "hint: list the devices that keep",
        ],
    );
    // A grants file that does not exist.
    let missing = f.dir.path().join("missing.json");
    refused(
        &f,
        &[missing.to_str().unwrap()],
        "",
        &[
            "the grants file",
            "missing.json does not exist",
            "hint: pass a file",
        ],
    );
    // Nothing listed, not exclusive: nothing to do.
    let run = f.apply(&["--json"]).stdin("").run();
    run.success();
    assert_eq!(run.json()["changed"], false);
    assert_eq!(fs::read(f.acl()).unwrap(), before);
}

#[test]
fn a_grant_past_a_nul_byte_is_refused() {
    let f = Fixture::new("user a\ntopic x\n\0\nuser b\n");
    let before = fs::read(f.acl()).unwrap();
    let run = f.apply(&[]).stdin(format!("{D1} wott/x read\n")).run();
    run.code(1).stderr_has("contains a NUL byte");
    assert_eq!(fs::read(f.acl()).unwrap(), before);
}
