//! `setup`: the wizard through a pseudo-terminal, and the same steps with
//! flags and no terminal, against a real Mosquitto.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use support::mosquitto::{Broker, BrokerConfig, ClosedPort};
use support::{Authority, DeviceIdentity, DeviceRequest, random_device_id, wott};

/// A WoTT-shaped server ID, for runs that stop before any connection.
const SERVER_ID: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";

/// A broker device and a client device from one CA, the client granted
/// readwrite on wott/#, and an empty hosts file.
struct Tutorial {
    client: DeviceIdentity,
    server: DeviceIdentity,
    dir: tempfile::TempDir,
    broker: Option<Broker>,
}

impl Tutorial {
    fn new() -> Option<Self> {
        if !Broker::available() {
            return None;
        }
        let ca = Authority::new("WoTT test CA").unwrap();
        let server = ca
            .issue(&DeviceRequest::new(&random_device_id().unwrap()))
            .unwrap();
        let client = ca
            .issue(&DeviceRequest::new(&random_device_id().unwrap()))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        client.write_to(&dir.path().join("certs")).unwrap();
        fs::write(dir.path().join("hosts"), "127.0.0.1\tlocalhost\n").unwrap();
        let acl = format!("user {}\ntopic readwrite wott/#\n", client.device_id);
        let broker = Broker::start(&BrokerConfig::wott(&server, &acl));
        Some(Tutorial {
            client,
            server,
            dir,
            broker: Some(broker),
        })
    }

    fn port(&self) -> String {
        self.broker.as_ref().unwrap().port.to_string()
    }

    fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    fn hosts(&self) -> PathBuf {
        self.dir.path().join("hosts")
    }

    fn hosts_text(&self) -> String {
        fs::read_to_string(self.hosts()).unwrap()
    }

    fn setup_client(&self) -> support::Wott {
        wott()
            .args(["setup", "client"])
            .cert_dir(&self.certs())
            .arg("--hosts-file")
            .arg(self.hosts())
    }
}

// ------------------------------------------------------- without a terminal

#[test]
fn without_a_terminal_missing_answers_list_their_flags_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let before = support::snapshot(dir.path());
    wott()
        .args(["setup", "client", "--hosts-file"])
        .arg(&hosts)
        .run()
        .code(2)
        .error(
            "pass --server SERVER_ID, --ip IP, --yes",
            "every question has a flag",
        );
    wott()
        .args([
            "setup",
            "client",
            "--server",
            SERVER_ID,
            "--ip",
            "192.0.2.1",
            "--hosts-file",
        ])
        .arg(&hosts)
        .run()
        .code(2)
        .error("pass --yes", "setup client --help");
    wott()
        .arg("setup")
        .run()
        .code(2)
        .error("setup needs a role", "setup client");
    assert_eq!(before, support::snapshot(dir.path()));
}

#[test]
fn bad_answers_in_flags_are_refused_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let before = support::snapshot(dir.path());
    let run = |args: &[&str]| {
        wott()
            .args(["setup", "client", "--yes", "--hosts-file"])
            .arg(&hosts)
            .args(args)
            .run()
    };
    run(&["--server", "evil\nhost", "--ip", "192.0.2.1"])
        .code(2)
        .error("invalid device ID", "DNS name");
    run(&["--server", SERVER_ID, "--ip", "0.0.0.0"])
        .code(2)
        .error("invalid IP address", "server's IPv4 or IPv6");
    run(&[
        "--server",
        SERVER_ID,
        "--ip",
        "192.0.2.1",
        "--topic",
        "a/#/b",
    ])
    .code(2)
    .error("invalid MQTT topic", "last");
    assert_eq!(before, support::snapshot(dir.path()));
}

#[test]
fn flags_alone_set_up_a_client_and_a_rerun_changes_nothing() {
    let Some(t) = Tutorial::new() else { return };
    let run = t
        .setup_client()
        .args([
            "--server",
            &t.server.device_id,
            "--ip",
            "127.0.0.1",
            "--port",
            &t.port(),
            "--yes",
            "--roundtrip",
            "--json",
        ])
        .run();
    run.success();
    let doc = run.json();
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["role"], "client");
    assert_eq!(doc["check"]["device_id"], t.client.device_id.as_str());
    assert!(doc["check"]["message"].is_object(), "{doc}");
    assert_eq!(
        t.hosts_text(),
        format!(
            "127.0.0.1\tlocalhost\n127.0.0.1 {} # wott-mqtt\n",
            t.server.device_id
        )
    );
    // The same answers again: the file is already right.
    let run = t
        .setup_client()
        .args([
            "--server",
            &t.server.device_id,
            "--ip",
            "127.0.0.1",
            "--port",
            &t.port(),
            "--yes",
        ])
        .run();
    run.success()
        .stdout_has(&format!(
            "Set up: client of {}:{}",
            t.server.device_id,
            t.port()
        ))
        .stdout_has(&format!(
            "MQTT_SERVER={} MQTT_PORT={}",
            t.server.device_id,
            t.port()
        ))
        // The tutorial's client example, by the name the tutorial gives it.
        .stdout_has("python3 paho-connect-wott.py")
        .stderr_has("(already there)");
}

/// `--dry-run` writes nothing and contacts nothing (the probe would need
/// the hosts entry it does not write, and `--roundtrip` would publish to
/// real subscribers): it shows the diff, says what the check would do, and
/// prints the command that runs that probe now, which works as printed.
#[test]
fn dry_run_shows_the_diff_and_the_check_and_its_probe_command_runs() {
    let Some(t) = Tutorial::new() else { return };
    let before = support::snapshot(t.dir.path());
    let id = t.server.device_id.clone();
    let port = t.port();
    let args = [
        "--server",
        &id,
        "--ip",
        "127.0.0.1",
        "--port",
        &port,
        "--dry-run",
    ];
    let run = t.setup_client().args(args).run();
    run.success()
        .stdout_has(&format!("+127.0.0.1 {id} # wott-mqtt\n"))
        .stdout_has("Dry run: nothing was written and nothing contacted")
        .stderr_has("(would be written: dry run)")
        .stderr_has(&format!(
            "would connect to 127.0.0.1:{port} as this device, verify that the server's \
             certificate carries {id}, and subscribe to wott/temperature; not run in a dry run"
        ));
    let probe = format!(
        "sudo wott-mqtt check --server {id} --connect-to 127.0.0.1 --port {port} --topic wott/temperature"
    );
    run.stdout_has(&format!("  {probe}\n"));

    let run = t
        .setup_client()
        .args(args)
        .args(["--roundtrip", "--json"])
        .run();
    run.success();
    let doc = run.json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["check"], serde_json::Value::Null);
    assert!(
        doc["diff"]
            .as_str()
            .unwrap()
            .contains(&format!("+127.0.0.1 {id} # wott-mqtt"))
    );
    assert_eq!(doc["probe"], format!("{probe} --roundtrip"));

    assert_eq!(
        support::snapshot(t.dir.path()),
        before,
        "a dry run writes nothing"
    );
    let log = t.broker.as_ref().unwrap().log();
    assert!(
        !log.contains("New connection"),
        "a dry run contacts nothing:\n{log}"
    );

    // The printed probe runs as printed (as root; CERT_PATH stands in for /opt/wott/certs).
    for command in [probe.clone(), format!("{probe} --roundtrip")] {
        let words: Vec<&str> = command.split(' ').skip(2).collect();
        wott()
            .args(words)
            .env("CERT_PATH", t.certs())
            .run()
            .success()
            .stdout_has("✓ subscribe");
    }
}

#[test]
fn a_failing_check_exits_with_its_code_and_says_why() {
    let Some(t) = Tutorial::new() else { return };
    let closed = ClosedPort::new();
    let closed_port = closed.port.to_string();
    t.setup_client()
        .args([
            "--server",
            &t.server.device_id,
            "--ip",
            "127.0.0.1",
            "--port",
            &closed_port,
            "--yes",
        ])
        .run()
        .code(5)
        .stdout_has("Not working yet")
        .error("connection refused", "server status");
}

#[test]
fn port_8333_with_yes_warns_about_the_tutorial_slip() {
    let Some(t) = Tutorial::new() else { return };
    t.setup_client()
        .args([
            "--server",
            &t.server.device_id,
            "--ip",
            "127.0.0.1",
            "--port",
            "8333",
            "--yes",
        ])
        .run()
        .code(5)
        .stderr_has("warning: the tutorial's broker listens on 8883");
}

// ------------------------------------------------------ through a terminal

fn spawn(t: &Tutorial, extra: &[&str]) -> rexpect::session::PtySession {
    let mut cmd = Command::new(support::bin());
    cmd.args(["setup"])
        .args(extra)
        .arg("--cert-dir")
        .arg(t.certs())
        .arg("--hosts-file")
        .arg(t.hosts());
    cmd.env("TERM", "xterm").env_remove("NO_COLOR");
    rexpect::session::spawn_command(cmd, Some(20_000)).unwrap()
}

fn answer(p: &mut rexpect::session::PtySession, prompt: &str, text: &str) {
    p.exp_string(prompt).unwrap();
    p.send(text).unwrap();
    p.send("\r").unwrap();
    p.flush().unwrap();
}

fn exit_code(p: &mut rexpect::session::PtySession) -> i32 {
    match p.process.wait().unwrap() {
        rexpect::process::wait::WaitStatus::Exited(_, code) => code,
        other => panic!("wott-mqtt did not exit normally: {other:?}"),
    }
}

#[test]
fn the_wizard_asks_again_after_a_bad_answer_and_sets_up_the_client() {
    let Some(t) = Tutorial::new() else { return };
    let mut p = spawn(&t, &[]);
    p.exp_string("What is this device's role?").unwrap();
    p.send("\x1b[B\r").unwrap(); // the second role: client
    p.flush().unwrap();
    answer(&mut p, "Server device ID", "not a device id");
    p.exp_string("invalid device ID").unwrap();
    p.send(&"\x08".repeat(20)).unwrap(); // dialoguer keeps the rejected text; erase it
    p.send(&t.server.device_id).unwrap();
    p.send("\r").unwrap();
    p.flush().unwrap();
    answer(&mut p, "Server IP address", "127.0.0.1");
    // The broker's port replaces the default 8883.
    p.exp_string("Broker port").unwrap();
    p.send(&format!("{}{}\r", "\x08".repeat(10), t.port()))
        .unwrap();
    p.flush().unwrap();
    answer(&mut p, "Topic to subscribe to", "");
    answer(
        &mut p,
        "Write the hosts entry and check the connection?",
        "y",
    );
    p.exp_string(&format!("client of {}", t.server.device_id))
        .unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&mut p), 0);
    assert!(
        t.hosts_text()
            .contains(&format!("127.0.0.1 {} # wott-mqtt", t.server.device_id))
    );
}

#[test]
fn the_wizard_warns_on_port_8333_and_asks_again() {
    let Some(t) = Tutorial::new() else { return };
    let mut p = spawn(
        &t,
        &[
            "client",
            "--server",
            &t.server.device_id.clone(),
            "--ip",
            "127.0.0.1",
        ],
    );
    p.exp_string("Broker port").unwrap();
    p.send(&format!("{}8333\r", "\x08".repeat(10))).unwrap();
    p.flush().unwrap();
    p.exp_string("8333 comes from a slip").unwrap();
    answer(&mut p, "Use port 8333 anyway?", "n");
    p.exp_string("Broker port").unwrap();
    p.send(&format!("{}{}\r", "\x08".repeat(10), t.port()))
        .unwrap();
    p.flush().unwrap();
    answer(&mut p, "Topic to subscribe to", "");
    answer(&mut p, "Write the hosts entry", "y");
    p.exp_string(&format!("client of {}", t.server.device_id))
        .unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&mut p), 0);
}

#[test]
fn a_failed_check_offers_to_change_an_answer() {
    let Some(t) = Tutorial::new() else { return };
    let closed = ClosedPort::new();
    let closed_port = closed.port.to_string();
    let mut p = spawn(
        &t,
        &[
            "client",
            "--server",
            &t.server.device_id.clone(),
            "--ip",
            "127.0.0.1",
            "--port",
            &closed_port,
            "--yes",
        ],
    );
    p.exp_string("connection refused").unwrap();
    p.exp_string("What now?").unwrap();
    // Down three times: "Change the port".
    p.send("\x1b[B\x1b[B\x1b[B\r").unwrap();
    p.flush().unwrap();
    p.exp_string("Broker port").unwrap();
    p.send(&format!("{}{}\r", "\x08".repeat(10), t.port()))
        .unwrap();
    p.flush().unwrap();
    p.exp_string(&format!("client of {}", t.server.device_id))
        .unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&mut p), 0);
}

/// Issue 16: Ctrl-C while the check runs (here a port that accepts and never
/// answers) leaves the terminal on a new line after the `^C` it echoes
/// (`stty echoctl`, as interactive shells have it).
#[test]
fn ctrl_c_during_the_check_ends_the_line() {
    let Some(t) = Tutorial::new() else { return };
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "stty echo echoctl && exec \"$0\" \"$@\""])
        .arg(support::bin())
        .args(["setup", "client", "--server", &t.server.device_id])
        .args(["--ip", "127.0.0.1", "--port", &port, "--yes", "--cert-dir"])
        .arg(t.certs())
        .arg("--hosts-file")
        .arg(t.hosts())
        .env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
    p.exp_string("(written)").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    p.send_control('c').unwrap();
    let rest = p.exp_eof().unwrap();
    assert_eq!(exit_code(&mut p), 130);
    assert!(
        rest.contains("^C") && rest.ends_with('\n'),
        "the output ends mid-line: {rest:?}"
    );
    drop(silent);
}

#[test]
fn ctrl_c_exits_130_and_changes_nothing() {
    let Some(t) = Tutorial::new() else { return };
    let before = support::snapshot(t.dir.path());
    let mut p = spawn(&t, &["client"]);
    p.exp_string("Server device ID").unwrap();
    p.send_control('c').unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&mut p), 130);
    assert_eq!(before, support::snapshot(t.dir.path()));
}

#[test]
fn an_unusable_identity_stops_the_client_role_before_anything_changes() {
    let Some(t) = Tutorial::new() else { return };
    let before = support::snapshot(t.dir.path());
    let other = support::Authority::new("x")
        .unwrap()
        .issue(&DeviceRequest::new("other.d.wott.local"))
        .unwrap();
    fs::write(t.certs().join("client.key"), &other.key_pem).unwrap();
    let before_key = support::snapshot(t.dir.path());
    t.setup_client()
        .args([
            "--server",
            &t.server.device_id,
            "--ip",
            "127.0.0.1",
            "--port",
            &t.port(),
            "--yes",
        ])
        .run()
        .code(3)
        .error("does not belong to", "belong together");
    assert_eq!(
        before_key,
        support::snapshot(t.dir.path()),
        "the hosts file must stay as it was"
    );
    assert_ne!(before, before_key);

    // Through the terminal too: no question is asked.
    let mut p = spawn(&t, &["client"]);
    p.exp_string("key does NOT match").unwrap();
    p.exp_string("does not belong to").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(exit_code(&mut p), 3);
    assert_eq!(before_key, support::snapshot(t.dir.path()));
}
