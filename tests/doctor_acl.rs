//! `doctor`'s ACL checks on a real server dir's permissions.acl: each fault
//! written into the file, the finding's code, level and fix asserted, and
//! the printed fix run as printed where it is a command.

#![allow(clippy::unwrap_used)]

mod support;

use support::doctor::{ServerFiles, finding, findings, fix};
use support::random_device_id;

fn id() -> String {
    random_device_id().unwrap()
}

#[test]
fn a_tidy_acl_passes_every_acl_check() {
    let files = ServerFiles::new(&format!(
        "user {}\ntopic readwrite wott/temperature\ntopic read wott/config\n",
        id()
    ));
    let doc = files.doctor();
    for code in [
        "acl.file",
        "acl.refused",
        "acl.lint",
        "acl.duplicate",
        "acl.broad-grant",
        "acl.shadowed",
        "acl.device-id",
    ] {
        finding(&doc, code, "ok");
        assert_eq!(findings(&doc, code).len(), 1, "{code}");
    }
    assert!(doc["roles"].as_array().unwrap().contains(&"acl".into()));
}

#[test]
fn a_missing_acl_fails() {
    let files = ServerFiles::new("");
    std::fs::remove_file(files.acl()).unwrap();
    let doc = files.doctor();
    finding(&doc, "acl.file", "failure");
}

#[test]
fn a_line_mosquitto_refuses_fails_and_names_the_line() {
    let files = ServerFiles::new(&format!("user {}\n\ttopic read x\n", id()));
    let doc = files.doctor();
    let f = finding(&doc, "acl.refused", "failure");
    assert!(
        f["subject"]
            .as_str()
            .unwrap()
            .ends_with("permissions.acl:2"),
        "{f}"
    );
    assert!(fix(f).contains("acl validate"), "{f}");
    assert!(f["why"].as_str().unwrap().contains("no ACL at all"), "{f}");
}

#[test]
fn lint_warnings_and_duplicates_warn() {
    let device = id();
    let files = ServerFiles::new(&format!(
        "topic read early\nuser {device}\ntopic read a\ntopic read a\n"
    ));
    let doc = files.doctor();
    let lint = finding(&doc, "acl.lint", "warning");
    assert!(
        lint["found"].as_str().unwrap().contains("anonymous-rule"),
        "{lint}"
    );
    let dup = finding(&doc, "acl.duplicate", "warning");
    assert!(
        dup["found"].as_str().unwrap().contains("repeats line 3"),
        "{dup}"
    );
    assert!(fix(dup).contains("delete line 4"), "{dup}");
}

#[test]
fn broad_grants_fail_and_the_printed_revoke_removes_one() {
    let (a, b) = (id(), id());
    let files = ServerFiles::new(&format!(
        "pattern readwrite #\nuser {a}\ntopic readwrite #\ntopic write $SYS/broker/uptime\nuser {b}\ntopic read +/#\n"
    ));
    let doc = files.doctor();
    let broad = findings(&doc, "acl.broad-grant");
    let levels: Vec<(&str, &str)> = broad
        .iter()
        .map(|f| {
            (
                f["subject"].as_str().unwrap().rsplit(':').next().unwrap(),
                f["level"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        levels,
        [
            ("1", "failure"),
            ("3", "failure"),
            ("4", "failure"),
            ("6", "warning")
        ],
        "{broad:#?}"
    );
    assert!(fix(broad[0]).contains("a pattern applies to every client"));
    let revoke = fix(broad[1]);
    let command = revoke.split(" (then").next().unwrap();
    assert!(
        command.ends_with(&format!("acl revoke {a} '#'")),
        "{command}"
    );
    files.run_printed(command);
    let after = files.doctor();
    let lines: Vec<&str> = findings(&after, "acl.broad-grant")
        .iter()
        .filter_map(|f| f["subject"].as_str())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        !std::fs::read_to_string(files.acl())
            .unwrap()
            .contains("readwrite #\ntopic write")
    );
}

#[test]
fn a_shadowed_grant_warns_and_the_printed_revoke_removes_it() {
    let device = id();
    let files = ServerFiles::new(&format!(
        "user {device}\ntopic readwrite wott/#\ntopic read wott/temperature\n"
    ));
    let doc = files.doctor();
    let f = finding(&doc, "acl.shadowed", "warning");
    assert!(f["found"].as_str().unwrap().contains("line 2"), "{f}");
    let command = fix(f);
    assert!(
        command.ends_with(&format!("acl revoke {device} wott/temperature")),
        "{command}"
    );
    files.run_printed(&command);
    let after = files.doctor();
    finding(&after, "acl.shadowed", "ok");
    assert!(
        std::fs::read_to_string(files.acl())
            .unwrap()
            .contains("readwrite wott/#")
    );
}

#[test]
fn a_user_that_is_no_wott_device_warns_with_the_spelling_it_meant() {
    let device = id();
    let upper = device.replace(".d.wott.local", "").to_uppercase() + ".d.wott.local";
    let files = ServerFiles::new(&format!(
        "user {upper}\ntopic read a\nuser {}\ntopic read b\n",
        device.trim_end_matches(".d.wott.local")
    ));
    let doc = files.doctor();
    let odd = findings(&doc, "acl.device-id");
    assert_eq!(odd.len(), 2, "{odd:#?}");
    assert!(odd.iter().all(|f| f["level"] == "warning"));
    assert!(
        fix(odd[0]).contains(&format!("`user {device}`")),
        "{}",
        odd[0]
    );
    assert!(
        fix(odd[1]).contains(&format!("`user {device}`")),
        "{}",
        odd[1]
    );
    // Said once, by acl.device-id, not again by acl.lint (acl validate's not-wott-id).
    finding(&doc, "acl.lint", "ok");
}

#[test]
fn a_printed_revoke_for_a_user_of_another_ca_carries_any_id_and_runs() {
    let files = ServerFiles::new(
        "user broker.example.com\ntopic readwrite site/#\ntopic read site/status\n",
    );
    let doc = files.doctor();
    let command = fix(finding(&doc, "acl.shadowed", "warning"));
    assert!(
        command.ends_with("acl revoke --any-id broker.example.com site/status"),
        "{command}"
    );
    files.run_printed(&command);
    finding(&files.doctor(), "acl.shadowed", "ok");
}
