//! `wott-mqtt acl …` through the real binary, on real files: what the user
//! sees, the exact bytes written, and the bytes left alone. `acl check` has
//! its own file, `tests/acl_check.rs`.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use support::acl::Acl;
use support::{CertFixture, snapshot, wott, wott_unprivileged};

const D1: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";
const D2: &str = "0123456789abcdef0123456789abcdef.d.wott.local";

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

// ------------------------------------------------------------------ allow

#[test]
fn allow_creates_the_file_and_a_second_run_changes_nothing() {
    let acl = Acl::empty();
    acl.run(&["allow", D1, "wott/#"])
        .success()
        .stdout_has(&format!(
            "added: {}:2 topic readwrite wott/#",
            acl.path().display()
        ))
        .stderr_has("SIGHUP");
    assert_eq!(acl.text(), format!("user {D1}\ntopic readwrite wott/#\n"));
    assert_eq!(mode(&acl.path()), 0o644);

    let run = acl.run(&["allow", D1, "wott/#", "--json"]);
    run.success();
    let doc = run.json();
    assert_eq!(doc["changed"], false);
    assert_eq!(doc["action"], "unchanged");
    assert_eq!(doc["line"], 2);
    assert_eq!(doc["exit_code"], 0);
    // Nothing written, so no reload advice.
    run.stderr_is_empty();
}

#[test]
fn allow_reports_changed_true_in_json() {
    let acl = Acl::empty();
    let doc = acl
        .run(&["allow", D1, "a/b", "--access", "read", "--json"])
        .json();
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["action"], "added-user");
    assert_eq!(doc["access"], "read");
    assert_eq!(doc["device_id"], D1);
    assert!(doc.get("diff").is_none());
}

#[test]
fn allow_edits_the_devices_block_and_leaves_every_other_byte() {
    let original = format!(
        "# WoTT ACL\r\n\r\nuser {D1}\r\n  topic read wott/temperature\t\r\n\r\n# the other one\r\nuser {D2}\r\ntopic   wott/#\r\npattern read devices/%u/#"
    );
    let acl = Acl::new(&original);
    acl.run(&["allow", D1, "wott/humidity", "--access", "write"])
        .success()
        .stdout_has(":5 topic write wott/humidity");
    assert_eq!(
        acl.text(),
        format!(
            "# WoTT ACL\r\n\r\nuser {D1}\r\n  topic read wott/temperature\t\r\n  topic write wott/humidity\r\n\r\n# the other one\r\nuser {D2}\r\ntopic   wott/#\r\npattern read devices/%u/#"
        )
    );
}

#[test]
fn changing_the_access_updates_the_line_in_place() {
    let acl = Acl::new(format!(
        "user {D1}\ntopic read wott/#\nuser {D2}\ntopic read wott/#\n"
    ));
    acl.run(&["allow", D1, "wott/#", "--access", "readwrite"])
        .success()
        .stdout_has("updated:");
    assert_eq!(
        acl.text(),
        format!("user {D1}\ntopic readwrite wott/#\nuser {D2}\ntopic read wott/#\n")
    );
}

/// A duplicate grant on the last line of a file without a final newline goes,
/// and the blank line before it stays (the property test found it lost).
#[test]
fn a_duplicate_on_the_last_line_goes_and_the_blank_line_before_it_stays() {
    let acl = Acl::new(format!("user {D1}\ntopic wott/#\n\ntopic wott/#"));
    acl.run(&["allow", D1, "wott/#", "--access", "read"])
        .success()
        .stdout_has("updated:")
        .stdout_has(":4 (a duplicate of that grant)");
    assert_eq!(acl.text(), format!("user {D1}\ntopic read wott/#\n\n"));
}

#[test]
fn a_new_device_is_appended_after_a_blank_line() {
    let acl = Acl::new(format!("user {D1}\ntopic read a\n"));
    acl.run(&["allow", D2, "b"]).success();
    assert_eq!(
        acl.text(),
        format!("user {D1}\ntopic read a\n\nuser {D2}\ntopic readwrite b\n")
    );
    // A file without a final newline keeps having none.
    let acl = Acl::new(format!("user {D1}\ntopic read a"));
    acl.run(&["allow", D2, "b"]).success();
    assert_eq!(
        acl.text(),
        format!("user {D1}\ntopic read a\n\nuser {D2}\ntopic readwrite b")
    );
    acl.run(&["revoke", D2]).success();
    assert_eq!(acl.text(), format!("user {D1}\ntopic read a"));
}

#[test]
fn dry_run_prints_the_diff_and_writes_nothing() {
    let acl = Acl::new(format!("user {D1}\ntopic read a\n"));
    let before = snapshot(acl.dir.path());
    let run = acl.run(&["allow", D1, "b", "--dry-run"]);
    run.success()
        .stdout_has("+topic readwrite b")
        .stdout_has("dry run: nothing was written");
    assert_eq!(snapshot(acl.dir.path()), before);
    let doc = acl.run(&["allow", D1, "b", "--dry-run", "--json"]).json();
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["dry_run"], true);
    assert!(doc["diff"].as_str().unwrap().contains("+topic readwrite b"));
    assert_eq!(snapshot(acl.dir.path()), before);

    // A dry run against a missing file creates nothing either.
    let empty = Acl::empty();
    empty.run(&["allow", D1, "b", "--dry-run"]).success();
    assert!(!empty.path().exists());
}

#[test]
fn allow_keeps_mode_and_non_utf8_bytes() {
    let original = b"# caf\xe9\nuser x\ntopic read \xff/a\n".to_vec();
    let acl = Acl::new(&original);
    fs::set_permissions(acl.path(), fs::Permissions::from_mode(0o640)).unwrap();
    acl.run(&["allow", D1, "a"]).success();
    let mut expected = original.clone();
    expected.extend_from_slice(format!("\nuser {D1}\ntopic readwrite a\n").as_bytes());
    assert_eq!(acl.bytes(), expected);
    assert_eq!(mode(&acl.path()), 0o640);
}

#[test]
fn allow_warns_when_a_deny_rule_still_wins() {
    let acl = Acl::new(format!("user {D1}\ntopic deny wott/secret\n"));
    acl.run(&["allow", D1, "wott/#"])
        .success()
        .stderr_has(":2 `topic deny wott/secret` still denies part of this grant");
}

#[test]
fn an_edit_keeps_a_line_mosquitto_refuses_and_says_so() {
    let original = format!("user {D1}\n  # indented comment\ntopic read a\n");
    let acl = Acl::new(&original);
    acl.run(&["allow", D1, "b"])
        .success()
        .stderr_has(":2: a comment must start with `#` in the first column");
    assert_eq!(
        acl.text(),
        format!("user {D1}\n  # indented comment\ntopic read a\ntopic readwrite b\n")
    );
    let doc = acl.run(&["list", "--json"]).json();
    assert_eq!(doc["exit_code"], 11);
    assert_eq!(doc["users"][0]["rules"][1]["filter"], "b");
}

/// Past a NUL byte Mosquitto reads nothing: a grant that would land there
/// is refused and the file left as it was; one before it is written, with
/// the warning every edit of a damaged file gets.
#[test]
fn allow_refuses_a_grant_past_a_nul_byte_and_writes_one_before_it() {
    let original = format!("user {D1}\ntopic read a\nuser {D2}\ntopic read b\0x\n");
    let acl = Acl::new(&original);
    acl.run(&[
        "allow",
        "fedcba9876543210fedcba9876543210.d.wott.local",
        "c",
    ])
    .code(1)
    .error(":4 contains a NUL byte", "remove the NUL byte");
    assert_eq!(acl.bytes(), original.as_bytes());
    acl.run(&["allow", D1, "c"])
        .success()
        .stderr_has("warning: ")
        .stderr_has(":4: the line contains a NUL byte")
        .stderr_lacks("would refuse");
    assert_eq!(
        acl.bytes(),
        format!("user {D1}\ntopic read a\ntopic readwrite c\nuser {D2}\ntopic read b\0x\n")
            .as_bytes()
    );
}

#[test]
fn allow_self_uses_this_devices_id() {
    let fx = CertFixture::new();
    let acl = Acl::empty();
    wott()
        .args(["acl", "allow", "self", "wott/#", "--file"])
        .arg(acl.path())
        .cert_dir(&fx.dir())
        .run()
        .success();
    assert_eq!(
        acl.text(),
        format!("user {}\ntopic readwrite wott/#\n", fx.id())
    );
    // Without an identity, `self` is an identity error (exit 3).
    let missing = Acl::empty();
    wott()
        .args([
            "acl",
            "allow",
            "self",
            "a",
            "--cert-dir",
            "/nonexistent",
            "--file",
        ])
        .arg(missing.path())
        .run()
        .code(3);
    assert!(!missing.path().exists());
}

#[test]
fn the_file_defaults_to_the_server_dir_and_follows_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let grant = |line: &str| format!("user {D1}\ntopic readwrite {line}\n");
    let allow = |topic: &str| {
        wott()
            .args(["acl", "allow", D1, topic, "--server-dir"])
            .arg(dir.path())
    };
    let (default, env, flag) = (
        dir.path().join("permissions.acl"),
        dir.path().join("env.acl"),
        dir.path().join("flag.acl"),
    );
    allow("a").run().success();
    assert_eq!(fs::read_to_string(&default).unwrap(), grant("a"));

    // The environment beats the server dir; --file (and --acl-file) beat the environment.
    allow("b").env("WOTT_MQTT_ACL_FILE", &env).run().success();
    assert_eq!(fs::read_to_string(&env).unwrap(), grant("b"));
    allow("c")
        .env("WOTT_MQTT_ACL_FILE", &env)
        .arg("--file")
        .arg(&flag)
        .run()
        .success();
    assert_eq!(fs::read_to_string(&flag).unwrap(), grant("c"));
    assert_eq!(fs::read_to_string(&env).unwrap(), grant("b"));
    assert_eq!(fs::read_to_string(&default).unwrap(), grant("a"));
}

/// `WOTT_MQTT_ACL_FILE=` counts as unset, with or without --file, as every
/// other path variable does (clap used to refuse the empty value).
#[test]
fn an_empty_acl_file_variable_counts_as_unset() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("flag.acl");
    for sub in [
        &["allow", D1, "x"][..],
        &["list"],
        &["validate"],
        &["check", D1, "x"],
    ] {
        wott()
            .arg("acl")
            .args(sub)
            .arg("--file")
            .arg(&flag)
            .env("WOTT_MQTT_ACL_FILE", "")
            .run()
            .success();
    }
    assert_eq!(
        fs::read_to_string(&flag).unwrap(),
        format!("user {D1}\ntopic readwrite x\n")
    );
    wott()
        .args(["acl", "allow", D1, "y", "--server-dir"])
        .arg(dir.path())
        .env("WOTT_MQTT_ACL_FILE", "")
        .run()
        .success();
    assert_eq!(
        fs::read_to_string(dir.path().join("permissions.acl")).unwrap(),
        format!("user {D1}\ntopic readwrite y\n")
    );
}

#[test]
fn concurrent_grants_lose_nothing() {
    let acl = Acl::empty();
    let children: Vec<_> = (0..12)
        .map(|i| {
            std::process::Command::new(support::bin())
                .args([
                    "acl",
                    "allow",
                    &format!("{i:032x}.d.wott.local"),
                    "wott/#",
                    "--file",
                ])
                .arg(acl.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let text = acl.text();
    for i in 0..12 {
        assert!(
            text.contains(&format!("user {i:032x}.d.wott.local\n")),
            "{text}"
        );
    }
    assert_eq!(text.matches("topic readwrite wott/#").count(), 12);
}

// ------------------------------------------------------------------ safety

const ORIGINAL: &str = "user 4853b630822946019393b16c5b710b9e.d.wott.local\ntopic read a\n";

#[test]
fn invalid_device_ids_are_refused_and_the_file_is_untouched() {
    let acl = Acl::new(ORIGINAL);
    for bad in [
        "dev+1",
        "dev#1",
        "two words",
        "line\nbreak",
        "tab\there",
        "esc\x1b[2J",
        "bell\x07",
        "-rf",
        "",
    ] {
        let run = wott()
            .args(["acl", "allow", "--file"])
            .arg(acl.path())
            .args(["--", bad, "wott/#"])
            .run();
        run.code(2)
            .error("invalid device ID", "a device ID is a DNS name");
        assert_eq!(acl.bytes(), ORIGINAL.as_bytes(), "{bad:?}");
        let run = wott()
            .args(["acl", "revoke", "--file"])
            .arg(acl.path())
            .args(["--", bad])
            .run();
        run.code(2).error("invalid device ID", "DNS name");
        assert_eq!(acl.bytes(), ORIGINAL.as_bytes(), "{bad:?}");
    }
    // Without `--`, a leading '-' is an unknown option: still exit 2, still untouched.
    acl.run(&["allow", "-rf", "wott/#"]).code(2);
    assert_eq!(acl.bytes(), ORIGINAL.as_bytes());
}

#[test]
fn invalid_topics_are_refused_and_the_file_is_untouched() {
    let acl = Acl::new(ORIGINAL);
    let deep = "a/".repeat(201) + "a";
    for bad in [
        "wott/#/x",
        "wott/temp#",
        "wott/+x",
        "a\nuser evil\ntopic readwrite #",
        "a\rb",
        "a\x00b".replace('\0', "\u{1}").as_str(),
        " leading",
        "trailing ",
        "",
        deep.as_str(),
    ] {
        let run = acl.run(&["allow", D1, bad]);
        run.code(2).error("invalid MQTT topic", "MQTT topics");
        assert_eq!(acl.bytes(), ORIGINAL.as_bytes(), "{bad:?}");
    }
}

#[test]
fn a_file_the_user_may_not_write_is_left_alone_with_a_sudo_hint() {
    if !support::root_available("to run as another user") {
        return;
    }
    let acl = Acl::new(ORIGINAL);
    fs::set_permissions(acl.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let run = wott_unprivileged()
        .args(["acl", "allow", D1, "wott/#", "--file"])
        .arg(acl.path())
        .run();
    run.code(1).error("cannot write", "sudo");
    assert_eq!(acl.bytes(), ORIGINAL.as_bytes());
    assert_eq!(fs::metadata(acl.path()).unwrap().uid(), 0);

    fs::set_permissions(acl.path(), fs::Permissions::from_mode(0o600)).unwrap();
    wott_unprivileged()
        .args(["acl", "check", D1, "a", "--file"])
        .arg(acl.path())
        .run()
        // Not 1, which would read as "denied".
        .code(10)
        .error("cannot read", "run the command with sudo");
    assert_eq!(acl.bytes(), ORIGINAL.as_bytes());
}

// ------------------------------------------------------------------ revoke

#[test]
fn revoke_removes_one_grant_or_all_and_keeps_denies() {
    let original = format!(
        "# acl\nuser {D1}\ntopic read a\ntopic deny a/secret\ntopic write b\n\nuser {D2}\ntopic read a\n"
    );
    let acl = Acl::new(&original);
    acl.run(&["revoke", D1, "a"])
        .success()
        .stdout_has(":3 topic read a");
    assert_eq!(
        acl.text(),
        format!(
            "# acl\nuser {D1}\ntopic deny a/secret\ntopic write b\n\nuser {D2}\ntopic read a\n"
        )
    );
    let run = acl.run(&["revoke", D1, "--json"]);
    let doc = run.json();
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["removed"][0]["line"], 4);
    assert_eq!(doc["kept_denies"][0]["text"], "topic deny a/secret");
    assert_eq!(
        acl.text(),
        format!("# acl\nuser {D1}\ntopic deny a/secret\n\nuser {D2}\ntopic read a\n")
    );
    let doc = acl.run(&["revoke", D1, "--json"]).json();
    assert_eq!(doc["changed"], false);
}

#[test]
fn allow_then_revoke_restores_the_file() {
    let original = "# hand-written\r\nuser someone\r\ntopic read x\r\n";
    let acl = Acl::new(original);
    acl.run(&["allow", D1, "wott/#"]).success();
    assert_ne!(acl.text(), original);
    acl.run(&["revoke", D1])
        .success()
        .stdout_has("(no rules left)");
    assert_eq!(acl.text(), original);
}

#[test]
fn revoke_of_an_unknown_grant_changes_nothing() {
    let acl = Acl::new(ORIGINAL);
    acl.run(&["revoke", D1, "x"])
        .success()
        .stdout_has("unchanged:")
        .stderr_is_empty();
    assert_eq!(acl.bytes(), ORIGINAL.as_bytes());
    let missing = Acl::empty();
    missing
        .run(&["revoke", D1])
        .code(9)
        .error("does not exist", "acl allow");
    assert!(!missing.path().exists());
}

#[test]
fn revoke_dry_run_writes_nothing() {
    let acl = Acl::new(ORIGINAL);
    acl.run(&["revoke", D1, "--dry-run"])
        .success()
        .stdout_has("-topic read a");
    assert_eq!(acl.bytes(), ORIGINAL.as_bytes());
}

// ------------------------------------------------------------------ validate

#[test]
fn validate_names_each_line_mosquitto_refuses() {
    let original =
        format!("user {D1}\ntopic read ok\n # note\n\ttopic read x\ntopic read a/#/b\ntopic\n");
    let acl = Acl::new(&original);
    let run = acl.run(&["validate"]);
    let file = acl.path().display().to_string();
    run.code(1)
        .stdout_has(&format!(
            "{file}:3: error: a comment must start with `#` in the first column"
        ))
        .stdout_has(&format!(
            "{file}:4: error: Mosquitto separates words with spaces only"
        ))
        .stdout_has(&format!("{file}:5: error: invalid topic filter `a/#/b`"))
        .stdout_has(&format!(
            "{file}:6: error: a `topic` or `pattern` line needs a topic filter"
        ))
        .stdout_has("Mosquitto refuses")
        .error("has 4 line(s) Mosquitto refuses", "acl validate");
    let doc = acl.run(&["validate", "--json"]).json();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["errors"], 4);
    assert_eq!(doc["findings"][0]["code"], "invalid-line");
    assert_eq!(doc["ignored_from"], serde_json::Value::Null);
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(acl.text(), original);
}

#[test]
fn validate_warns_about_legal_surprises() {
    let acl = Acl::new(format!(
        "topic read early\nuser {D1}\ntopic read\ntopic read a\ntopic read a\n"
    ));
    acl.run(&["validate"])
        .success()
        .stdout_has(":1: warning: this rule comes before the first `user` line")
        .stdout_has(":3: warning: this grants readwrite on the topic named `read`")
        .stdout_has(":5: warning: repeats line 4")
        .stdout_has("Mosquitto accepts");
    let clean = Acl::new(format!("user {D1}\ntopic readwrite wott/#\n"));
    clean.run(&["validate"]).success().stdout_is(&format!(
        "✓ Mosquitto accepts {} (0 error(s), 0 warning(s))\n",
        clean.path().display()
    ));
}

// ------------------------------------------------------------------ list

#[test]
fn list_shows_rules_per_user_in_mosquittos_order() {
    let acl = Acl::new(format!(
        "topic read anon\nuser {D1}\ntopic read a\ntopic deny a/x\nuser {D2}\ntopic b\nuser {D1}\ntopic write c\npattern read devices/%u/#\n"
    ));
    let run = acl.run(&["list"]);
    run.success()
        .stdout_has("anonymous clients")
        .stdout_has(&format!("user {D1}"))
        .stdout_has("every client");
    let doc = acl.run(&["list", "--json"]).json();
    assert_eq!(doc["anonymous"][0]["filter"], "anon");
    let d1 = &doc["users"][0];
    assert_eq!(d1["username"], D1);
    let lines: Vec<u64> = d1["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        lines,
        [4, 3, 8],
        "deny first, then grants in file order, blocks merged"
    );
    assert_eq!(doc["users"][1]["rules"][0]["access"], "readwrite");
    assert_eq!(doc["patterns"][0]["filter"], "devices/%u/#");

    let doc = acl.run(&["list", D2, "--json"]).json();
    assert_eq!(doc["users"].as_array().unwrap().len(), 1);
    assert_eq!(doc["users"][0]["username"], D2);
}
