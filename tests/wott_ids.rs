//! Issue 16: a device ID typed anywhere (`acl allow|revoke|check|list|apply`,
//! `hosts add|remove`, `check --server`, both `setup` roles, flags and
//! prompts) must be shaped as WoTT's, else it is refused with what is wrong
//! and the ID meant, and no file changes; `--any-id` (or
//! `WOTT_MQTT_ANY_ID`) takes any DNS name. `acl validate` warns about such
//! users already in a file.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::acl::Acl;
use support::{CertFixture, Run, wott};

/// The ID every near miss below means.
const MEANT: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";
const OTHER: &str = "0123456789abcdef0123456789abcdef.d.wott.local";

/// A near miss: what is typed, a fragment of the reason, and whether the
/// ID meant is certain enough to suggest.
struct Miss {
    typed: &'static str,
    reason: &'static str,
    suggests: bool,
}

const MISSES: &[Miss] = &[
    Miss {
        typed: "4853b630822946019393b16c5b710b9e",
        reason: "it lacks the domain .d.wott.local",
        suggests: true,
    },
    Miss {
        typed: "4853B630822946019393B16C5B710B9E.d.wott.local",
        reason: "it has upper-case letters; Mosquitto compares usernames byte for byte",
        suggests: true,
    },
    Miss {
        typed: "4853b630822946019393b16c5b710b9e.d.wott.locl",
        reason: "its domain is \".d.wott.locl\", a WoTT device ID's is .d.wott.local",
        suggests: true,
    },
    Miss {
        typed: "4853b630822946019393b16c5b71.d.wott.local",
        reason: "its hex part has 28 characters, a WoTT device ID's has 32",
        suggests: false,
    },
];

/// The refusal of `miss`: exit 2, the reason, the did-you-mean (or none),
/// and the way out in the hint.
#[track_caller]
fn refused(run: &Run, miss: &Miss) {
    run.code(2).error(
        &format!(
            "\"{}\" is not a WoTT device ID: {}",
            miss.typed, miss.reason
        ),
        "pass --any-id or set WOTT_MQTT_ANY_ID=1",
    );
    let error = run.error_line();
    if miss.suggests {
        assert!(
            error.ends_with(&format!("; did you mean {MEANT}?")),
            "{error}"
        );
    } else {
        assert!(!error.contains("did you mean"), "{error}");
    }
}

const ACL: &str =
    "# fleet\nuser 0123456789abcdef0123456789abcdef.d.wott.local\r\ntopic read wott/#\n";

#[test]
fn acl_commands_refuse_near_misses_and_leave_the_file_as_it_was() {
    let acl = Acl::new(ACL);
    for miss in MISSES {
        for args in [
            vec!["allow", miss.typed, "wott/temperature"],
            vec!["allow", miss.typed, "wott/temperature", "--dry-run"],
            vec!["revoke", miss.typed],
            vec!["check", miss.typed, "wott/temperature"],
            vec!["list", miss.typed],
        ] {
            refused(&acl.run(&args), miss);
            assert_eq!(acl.bytes(), ACL.as_bytes(), "{args:?}");
        }
    }
    // The ID meant works, and `self` is this device's ID as its certificate has it.
    acl.run(&["allow", MEANT, "wott/temperature"]).success();
    let text = acl.text();
    assert!(text.starts_with(ACL), "{text}");
    assert!(text.contains(&format!("user {MEANT}")), "{text}");
}

#[test]
fn acl_apply_names_every_bad_line_and_writes_nothing() {
    let acl = Acl::new(ACL);
    let mut input = format!("{OTHER} wott/# read\n");
    for miss in MISSES {
        input.push_str(&format!("{} wott/temperature read\n", miss.typed));
    }
    input.push_str(&format!("{MEANT} a/#/b read\n"));
    let run = wott()
        .args(["acl", "apply", "-", "--file"])
        .arg(acl.path())
        .stdin(input.clone())
        .run();
    run.code(2)
        .stderr_has("pass --any-id or set WOTT_MQTT_ANY_ID=1");
    for (i, miss) in MISSES.iter().enumerate() {
        run.stderr_has(&format!(
            "<stdin>:{}: \"{}\" is not a WoTT device ID: {}",
            i + 2,
            miss.typed,
            miss.reason
        ));
    }
    // The topic error is reported with them, on its own line.
    run.stderr_has(&format!("<stdin>:{}: invalid MQTT topic", MISSES.len() + 2));
    assert_eq!(acl.bytes(), ACL.as_bytes());

    // JSON: the element index too, and the details in the document.
    let json = format!(
        r#"[{{"device": "{OTHER}", "topic": "t", "access": "read"}},
            {{"device": "{}", "topic": "t", "access": "read"}}]"#,
        MISSES[1].typed
    );
    let run = wott()
        .args(["acl", "apply", "-", "--json", "--file"])
        .arg(acl.path())
        .stdin(json)
        .run();
    run.code(2);
    let details = run.json()["error"]["details"].clone();
    let details = details.as_array().unwrap();
    assert_eq!(details.len(), 1, "{details:?}");
    let detail = details[0].as_str().unwrap();
    assert!(
        detail.starts_with("<stdin>:2: element [1]: ")
            && detail.ends_with(&format!("did you mean {MEANT}?")),
        "{detail}"
    );
    assert_eq!(acl.bytes(), ACL.as_bytes());
}

const HOSTS: &str = "127.0.0.1\tlocalhost\n# keep me\n10.0.0.9 0123456789abcdef0123456789abcdef.d.wott.local # wott-mqtt\n";

fn hosts_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts");
    fs::write(&path, HOSTS).unwrap();
    (dir, path)
}

#[test]
fn hosts_add_and_remove_refuse_near_misses_and_leave_the_file_as_it_was() {
    let (_dir, path) = hosts_file();
    for miss in MISSES {
        for args in [
            vec!["add", miss.typed, "10.0.0.1"],
            vec!["add", miss.typed, "10.0.0.1", "--dry-run"],
            vec!["remove", miss.typed],
        ] {
            let run = wott()
                .arg("hosts")
                .args(&args)
                .arg("--hosts-file")
                .arg(&path)
                .run();
            refused(&run, miss);
            assert_eq!(fs::read(&path).unwrap(), HOSTS.as_bytes(), "{args:?}");
        }
    }
}

#[test]
fn check_refuses_a_near_miss_before_it_reads_or_dials_anything() {
    for miss in MISSES {
        // No cert dir at all: an accepted ID would end in exit 3.
        let run = wott()
            .args([
                "check",
                "--server",
                miss.typed,
                "--cert-dir",
                "/nonexistent",
            ])
            .run();
        refused(&run, miss);
        // MQTT_SERVER, as the tutorial's client reads it, is typed too.
        let run = wott()
            .args(["check", "--cert-dir", "/nonexistent"])
            .env("MQTT_SERVER", miss.typed)
            .run();
        refused(&run, miss);
    }
    // An address is not a device ID, and stays allowed.
    wott()
        .args([
            "check",
            "--server",
            "127.0.0.1",
            "--cert-dir",
            "/nonexistent",
        ])
        .run()
        .code(3);
}

#[test]
fn setup_client_refuses_a_near_miss_and_writes_no_hosts_entry() {
    let fx = CertFixture::new();
    let (_dir, path) = hosts_file();
    for miss in MISSES {
        let run = wott()
            .args(["setup", "client", "--server", miss.typed])
            .args(["--ip", "127.0.0.1", "--yes", "--hosts-file"])
            .arg(&path)
            .cert_dir(&fx.dir())
            .run();
        refused(&run, miss);
        assert_eq!(fs::read(&path).unwrap(), HOSTS.as_bytes());
    }
}

#[test]
fn setup_server_refuses_a_near_miss_in_allow_before_anything_exists() {
    let fx = CertFixture::new();
    let server_dir = fx.root.path().join("server");
    for miss in MISSES {
        let run = wott()
            .args(["setup", "server", "--yes", "--allow"])
            .arg(format!("{}:wott/#:read", miss.typed))
            .arg("--server-dir")
            .arg(&server_dir)
            .cert_dir(&fx.dir())
            .run();
        refused(&run, miss);
        assert!(!server_dir.exists(), "{}", miss.typed);
    }
}

#[test]
fn any_id_and_its_environment_variable_take_other_names() {
    let acl = Acl::new(ACL);
    let name = "broker.example.com";
    acl.run(&["allow", name, "wott/#"])
        .code(2)
        .error("\"broker.example.com\" is not a WoTT device ID", "--any-id");
    assert_eq!(acl.bytes(), ACL.as_bytes());
    acl.run(&["--any-id", "allow", name, "wott/#"]).success();
    assert!(
        acl.text().contains("user broker.example.com"),
        "{}",
        acl.text()
    );
    // Only a true value turns it on; empty, 0 and false are "unset".
    for off in ["", "0", "false"] {
        wott()
            .args(["acl", "revoke", name, "--file"])
            .arg(acl.path())
            .env("WOTT_MQTT_ANY_ID", off)
            .run()
            .code(2);
    }
    wott()
        .args(["acl", "revoke", name, "--file"])
        .arg(acl.path())
        .env("WOTT_MQTT_ANY_ID", "1")
        .run()
        .success();
    assert_eq!(acl.bytes(), ACL.as_bytes());

    let (_dir, path) = hosts_file();
    wott()
        .args(["hosts", "add", name, "10.0.0.1", "--hosts-file"])
        .arg(&path)
        .env("WOTT_MQTT_ANY_ID", "1")
        .run()
        .success();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("{HOSTS}10.0.0.1 {name} # wott-mqtt\n")
    );

    // check and setup get past the ID: here to the identity (exit 3) and a dry run.
    wott()
        .args([
            "check",
            "--any-id",
            "--server",
            name,
            "--cert-dir",
            "/nonexistent",
        ])
        .run()
        .code(3);
    let fx = CertFixture::new();
    wott()
        .args([
            "setup",
            "client",
            "--server",
            name,
            "--ip",
            "10.0.0.2",
            "--dry-run",
        ])
        .arg("--hosts-file")
        .arg(&path)
        .cert_dir(&fx.dir())
        .env("WOTT_MQTT_ANY_ID", "yes")
        .run()
        .success()
        .stdout_has(&format!("+10.0.0.2 {name} # wott-mqtt"));
}

#[test]
fn acl_validate_warns_about_users_no_agent_certificate_can_match() {
    let mut text = format!("user {MEANT}\ntopic read a\n");
    for miss in MISSES {
        text.push_str(&format!("user {}\ntopic read a\n", miss.typed));
    }
    text.push_str("user broker.example.com\ntopic read a\n");
    let acl = Acl::new(&text);
    let file = acl.path().display().to_string();
    let run = acl.run(&["validate"]);
    // Warnings: Mosquitto reads the file, so the exit code stays 0.
    run.success().stdout_has("Mosquitto accepts");
    for (i, miss) in MISSES.iter().enumerate() {
        let start = format!(
            "{file}:{}: warning: user `{}` is not a WoTT device ID: {}",
            2 * i + 3,
            miss.typed,
            miss.reason
        );
        let line = run.stdout.lines().find(|l| l.starts_with(&start));
        let line = line.unwrap_or_else(|| panic!("no {start:?} in\n{}", run.stdout));
        assert_eq!(
            line.contains(&format!("; did you mean {MEANT}?")),
            miss.suggests,
            "{line}"
        );
        assert!(line.ends_with("[not-wott-id]"), "{line}");
    }
    let doc = acl.run(&["validate", "--json"]).json();
    let codes: Vec<(u64, &str)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["line"].as_u64().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(codes, [3, 5, 7, 9, 11].map(|l| (l, "not-wott-id")), "{doc}");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["warnings"], 5);
    // --any-id: the author's own names are not a finding.
    let run = acl.run(&["validate", "--any-id"]);
    run.success();
    assert!(!run.stdout.contains("not-wott-id"), "{}", run.stdout);
    assert_eq!(acl.text(), text);
}

// ------------------------------------------------------ through a terminal

/// The client wizard asks again after a near miss, with the did-you-mean,
/// and nothing reaches the hosts file before an ID is accepted: here the
/// user gives up with Ctrl-C at the re-asked prompt.
#[test]
fn the_client_wizard_refuses_a_typed_near_miss_and_writes_nothing() {
    let fx = CertFixture::new();
    let (dir, path) = hosts_file();
    let before = support::snapshot(dir.path());
    let mut p = spawn(&fx.dir(), &path, &["client"]);
    p.exp_string("Server device ID").unwrap();
    p.send(MISSES[1].typed).unwrap();
    p.send("\r").unwrap();
    p.flush().unwrap();
    p.exp_string(&format!("did you mean {MEANT}?")).unwrap();
    assert_eq!(before, support::snapshot(dir.path()));
    p.send_control('c').unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&mut p), 130);
    assert_eq!(before, support::snapshot(dir.path()));
}

// The server wizard's grant prompt: tests/setup_server.rs
// (`the_wizard_asks_for_grants_with_validation_and_starts_the_broker`).

fn spawn(certs: &Path, hosts: &Path, extra: &[&str]) -> rexpect::session::PtySession {
    let mut cmd = Command::new(support::bin());
    for var in support::ENV_VARS {
        cmd.env_remove(var);
    }
    cmd.arg("setup")
        .args(extra)
        .arg("--cert-dir")
        .arg(certs)
        .arg("--hosts-file")
        .arg(hosts)
        .env("TERM", "xterm")
        .env("WOTT_MQTT_TEST", "1");
    rexpect::session::spawn_command(cmd, Some(20_000)).unwrap()
}

fn exit_code(p: &mut rexpect::session::PtySession) -> i32 {
    match p.process.wait().unwrap() {
        rexpect::process::wait::WaitStatus::Exited(_, code) => code,
        other => panic!("wott-mqtt did not exit normally: {other:?}"),
    }
}
