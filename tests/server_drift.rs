//! `server status` says in its exit code when the broker serves older files
//! than the ones on disk: a renewed certificate not yet applied, or a
//! permissions.acl edited after the broker last loaded it. Monitoring can
//! test for it; the note's command, run exactly as printed, repairs it.
//! And the status probe ends its session with DISCONNECT, so the broker's
//! log shows no protocol error for it.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::process::Command;

use support::docker;
use support::server::Server;

/// Exit code 12: the broker serves older files than those on disk.
const DRIFT: i32 = 12;

fn status(server: &Server) -> support::Run {
    server.cmd("status").arg("--json").run()
}

fn broker_log(server: &Server) -> String {
    let out = Command::new("docker")
        .args(["logs", &server.name])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The command in a note's backticks, run as printed.
fn run_printed(note: &str) -> std::process::Output {
    let command = note
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in {note:?}"));
    support::printed_command(command).output().unwrap()
}

fn drift_kinds(doc: &serde_json::Value) -> Vec<String> {
    doc["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["what"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_renewal_not_applied_is_drift_and_the_printed_reload_repairs_it() {
    if !support::root_available("to run the printed command without sudo") || !docker::available() {
        return;
    }
    let server = Server::new("drift-cert");
    server.up().run().success();
    let current = status(&server);
    current.code(0);
    assert!(drift_kinds(&current.json()).is_empty());

    // The agent renews: a new certificate and key, in place.
    server.renew_certificate();
    let drifted = status(&server);
    drifted.code(DRIFT);
    let doc = drifted.json();
    assert_eq!(drift_kinds(&doc), ["certificate"]);
    let note = doc["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .find(|n| n.contains("server reload"))
        .unwrap_or_else(|| panic!("no reload note: {doc}"))
        .to_string();
    let out = run_printed(&note);
    assert!(out.status.success(), "{note}: {out:?}");
    status(&server).code(0);

    // Text for people: the same exit code, the note on stdout.
    server.renew_certificate();
    server
        .cmd("status")
        .run()
        .code(DRIFT)
        .stdout_has("the agent renewed the certificate");
}

#[test]
fn an_acl_edited_after_the_last_load_is_drift_until_a_reload() {
    if !docker::available() {
        return;
    }
    let server = Server::new("drift-acl");
    server.up().run().success();
    status(&server).code(0);
    let acl = server.path("permissions.acl");
    let mut text = fs::read(&acl).unwrap();
    text.extend_from_slice(b"\n# edited by hand\n");
    fs::write(&acl, &text).unwrap();
    let drifted = status(&server);
    drifted.code(DRIFT);
    assert_eq!(drift_kinds(&drifted.json()), ["acl"]);
    server.cmd("reload").run().success();
    status(&server).code(0);
}

#[test]
fn the_status_probe_ends_its_session_cleanly() {
    if !docker::available() {
        return;
    }
    let server = Server::new("drift-disconnect");
    server.up().run().success();
    for _ in 0..3 {
        status(&server).code(0);
    }
    let log = broker_log(&server);
    assert!(
        !log.contains("protocol error"),
        "a probe left without DISCONNECT:\n{log}"
    );
    assert!(log.contains("disconnected."), "{log}");
}
