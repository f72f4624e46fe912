//! `wott-mqtt acl check` through the real binary: the answer, the line that
//! decides it, and an exit code of its own for every error (never 1, which
//! means "denied").

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::Path;

use support::acl::Acl;
use support::{CertFixture, snapshot, wott};

const D1: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";
const D2: &str = "0123456789abcdef0123456789abcdef.d.wott.local";

// ------------------------------------------------------------------ check

fn check_acl() -> Acl {
    Acl::new(format!(
        "# tutorial\nuser {D1}\ntopic readwrite wott/#\ntopic deny wott/secret\n\nuser {D2}\ntopic read wott/temperature\n\npattern readwrite clients/%c/#\n"
    ))
}

#[test]
fn check_says_allowed_and_which_line_decides() {
    let acl = check_acl();
    let file = acl.path().display().to_string();
    acl.run(&["check", D1, "wott/temperature", "--access", "write"])
        .success()
        .stdout_has("✓ write allowed")
        .stdout_has(&format!("{file}:3  topic readwrite wott/#"));
    acl.run(&["check", D1, "wott/secret", "--access", "read"])
        .code(1)
        .stdout_has("✗ read  denied")
        .stdout_has(&format!("{file}:4  topic deny wott/secret"))
        .stdout_has("a SUBSCRIBE to wott/secret still succeeds");
    acl.run(&["check", D2, "wott/temperature"])
        .code(1)
        .stdout_has("✓ read  allowed")
        .stdout_has("✗ write denied: no rule grants write on wott/temperature");
}

#[test]
fn check_json_is_one_document() {
    let acl = check_acl();
    let run = acl.run(&[
        "check",
        D2,
        "wott/temperature",
        "--access",
        "read",
        "--json",
    ]);
    run.success();
    let doc = run.json();
    assert_eq!(doc["allowed"], true);
    assert_eq!(doc["client_id"], serde_json::Value::Null);
    let c = &doc["checks"][0];
    assert_eq!(c["access"], "read");
    assert_eq!(c["reason"], "rule");
    assert_eq!(c["section"], "user");
    assert_eq!(c["decided_by"]["line"], 7);
    assert_eq!(
        c["decided_by"]["location"],
        format!("{}:7", acl.path().display())
    );
    assert_eq!(doc["exit_code"], 0);
}

#[test]
fn check_uses_the_client_id_for_patterns() {
    let acl = check_acl();
    acl.run(&["check", D2, "clients/sensor-1/x", "--client-id", "sensor-1"])
        .success()
        .stdout_has(":9  pattern readwrite clients/%c/#  → clients/sensor-1/#\n");
    let doc = acl
        .run(&[
            "check",
            D2,
            "clients/sensor-1/x",
            "--client-id",
            "sensor-1",
            "--json",
        ])
        .json();
    let decided = &doc["checks"][0]["decided_by"];
    assert_eq!(decided["text"], "pattern readwrite clients/%c/#");
    assert_eq!(decided["filter"], "clients/sensor-1/#");
    assert_eq!(decided["substituted"], true);
    // A user's own line is shown as it is: nothing to substitute.
    let doc = acl.run(&["check", D1, "wott/t", "--json"]).json();
    assert_eq!(doc["checks"][0]["decided_by"]["filter"], "wott/#");
    assert_eq!(doc["checks"][0]["decided_by"]["substituted"], false);
    acl.run(&["check", D2, "clients/sensor-1/x", "--client-id", "other"])
        .code(1);
    acl.run(&["check", D2, "clients/sensor-1/x"])
        .code(1)
        .stdout_has("use %c and were skipped because the client ID is unknown");
    acl.run(&["check", D2, "clients/a/x", "--client-id", "x+y"])
        .code(1)
        .stdout_has("the client ID contains + or #");
}

/// docs/scaling.md's fleet pattern: the deciding line, and the filter it
/// becomes for this device.
#[test]
fn check_shows_a_pattern_with_the_substitution_done() {
    let acl = Acl::new("pattern write devices/%u/#\npattern read  commands/#\n");
    acl.run(&[
        "check",
        D1,
        &format!("devices/{D1}/temp"),
        "--access",
        "write",
    ])
    .success()
    .stdout_has(&format!(
        ":1  pattern write devices/%u/#  → devices/{D1}/#\n"
    ));
    acl.run(&["check", D1, "commands/reboot", "--access", "read"])
        .success()
        .stdout_has(":2  pattern read  commands/#\n");
}

#[test]
fn check_knows_mosquittos_built_in_rules() {
    let acl = Acl::new(format!(
        "user {D1}\ntopic readwrite $SYS/#\ntopic readwrite #\n"
    ));
    acl.run(&["check", D1, "$SYS/broker/uptime", "--access", "write"])
        .code(1)
        .stdout_has("Mosquitto refuses every PUBLISH to $SYS topics");
    acl.run(&["check", D1, "$SYS/broker/uptime", "--access", "read"])
        .success();
    let plain = Acl::new(format!("user {D1}\ntopic readwrite #\n"));
    plain
        .run(&["check", D1, "$SYS/broker/uptime", "--access", "read"])
        .code(1);
}

#[test]
fn check_refuses_a_filter_with_the_reason() {
    let acl = check_acl();
    acl.run(&["check", D1, "wott/#"])
        .code(2)
        .error("needs a topic name, not the filter", "wott/temperature");
    acl.run(&["check", D1, "wott/+/x", "--json"]).code(2);
    acl.run(&["check", D1, "a", "--client-id", "bad\nid"])
        .code(2)
        .error("invalid client ID", "--client-id");
    assert_eq!(acl.bytes(), check_acl().bytes());
}

/// `acl check` answers 0 (allowed) and 1 (denied), like grep; every error
/// has a code of its own, at least 2 (docs/exit-codes.md), and a JSON
/// document that says so. Nothing is ever written.
#[test]
fn check_errors_exit_with_their_own_codes_never_1() {
    let case = |acl: &Acl, args: &[&str], code: i32, message: &str, hint: &str| {
        let before = snapshot(acl.dir.path());
        acl.run(args).code(code).error(message, hint);
        let mut json_args = args.to_vec();
        json_args.push("--json");
        let run = acl.run(&json_args);
        run.code(code);
        let doc = run.json();
        assert_eq!(doc["exit_code"], code, "{doc:#}");
        assert!(
            doc["error"]["message"].as_str().unwrap().contains(message),
            "{doc:#}"
        );
        assert_eq!(snapshot(acl.dir.path()), before, "{args:?} changed a file");
    };
    // 9: the file does not exist (and is not created).
    let missing = Acl::empty();
    case(
        &missing,
        &["check", D1, "a"],
        9,
        "does not exist",
        "acl allow",
    );
    assert!(!missing.path().exists());
    // 10: it cannot be read: a directory, a dangling link.
    let dir = Acl::empty();
    fs::create_dir(dir.path()).unwrap();
    case(
        &dir,
        &["check", D1, "a"],
        10,
        "is a directory",
        "not of a directory",
    );
    let link = Acl::empty();
    std::os::unix::fs::symlink("nowhere.acl", link.path()).unwrap();
    case(
        &link,
        &["check", D1, "a"],
        10,
        "is a symbolic link to nowhere.acl",
        "point the link",
    );
    assert_eq!(
        fs::read_link(link.path()).unwrap(),
        Path::new("nowhere.acl")
    );
    // 11: Mosquitto would refuse it, so its rules decide nothing.
    let refused = Acl::new(format!("user {D1}\ntopic readwrite #\n  # indented\n"));
    case(
        &refused,
        &["check", D1, "a"],
        11,
        "Mosquitto would refuse",
        "acl validate",
    );
    assert_eq!(
        refused.text(),
        format!("user {D1}\ntopic readwrite #\n  # indented\n")
    );
    // 2: the command line; 3: `self` without an identity.
    let acl = check_acl();
    case(
        &acl,
        &["check", D1, "wott/#"],
        2,
        "needs a topic name",
        "wott/temperature",
    );
    case(
        &acl,
        &["check", "self", "a", "--cert-dir", "/nonexistent"],
        3,
        "/nonexistent",
        "--cert-dir",
    );
    // And the answers themselves.
    acl.run(&["check", D1, "wott/temperature"]).code(0);
    acl.run(&["check", D1, "wott/secret"]).code(1);
}

#[test]
fn check_self_checks_this_devices_id() {
    let fx = CertFixture::new();
    let acl = Acl::new(format!("user {}\ntopic read wott/#\n", fx.id()));
    let check = |extra: &[&str]| {
        wott()
            .args([
                "acl", "check", "self", "wott/t", "--access", "read", "--file",
            ])
            .arg(acl.path())
            .args(extra)
            .cert_dir(&fx.dir())
            .run()
    };
    check(&[])
        .success()
        .stdout_has(&format!("{}'s own rule grants read on wott/t", fx.id()));
    let doc = check(&["--json"]).json();
    assert_eq!(doc["device_id"], fx.id());
    assert_eq!(doc["checks"][0]["decided_by"]["line"], 2);
}
