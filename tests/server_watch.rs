//! `server watch` against the real engine and a real Mosquitto: renewals
//! written the agent's way are applied within seconds, a renewal or an ACL
//! that must not be applied never is (the broker keeps its last good
//! state), the container and the engine coming and going are said and
//! survived, and SIGTERM ends it with 0.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use support::server::Server;
use support::watch::{WatchProcess, agent_renews, reloads, rewrite_in_place};
use support::{DeviceRequest, docker};

const SOON: Duration = Duration::from_secs(15);

/// The fingerprint the broker serves now, read by `openssl s_client` with
/// a client identity of the same CA (independent of the agent's files,
/// which a test may have half-written).
fn served(server: &Server) -> String {
    let client = tempfile::tempdir().unwrap();
    server
        .certs
        .ca
        .issue(&DeviceRequest::new(&support::random_device_id().unwrap()))
        .unwrap()
        .write_to(client.path())
        .unwrap();
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", server.port),
        ])
        .arg("-cert")
        .arg(client.path().join("client.crt"))
        .arg("-key")
        .arg(client.path().join("client.key"))
        .arg("-CAfile")
        .arg(client.path().join("ca.crt"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("{text}"));
    let end = text.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    let pem = client.path().join("served.pem");
    fs::write(&pem, &text[begin..end]).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&pem)
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    line.split_once('=')
        .unwrap_or_else(|| panic!("{line}"))
        .1
        .to_string()
}

fn renewal(server: &Server) -> support::DeviceIdentity {
    server
        .certs
        .ca
        .issue(&DeviceRequest::new(server.id()).ip_address([127, 0, 0, 1].into()))
        .unwrap()
}

fn fingerprint(identity: &support::DeviceIdentity) -> String {
    let dir = tempfile::tempdir().unwrap();
    identity.write_to(dir.path()).unwrap();
    wott_mqtt::identity::Identity::load(&wott_mqtt::identity::CertDir::new(dir.path()))
        .unwrap()
        .cert
        .info
        .fingerprint_sha256
}

fn started(what: &str) -> Option<(Server, WatchProcess)> {
    if !docker::available() {
        return None;
    }
    let server = Server::new(what);
    server.up().run().success();
    let mut watch = WatchProcess::start(&server, &[]);
    watch.wait_for("watching", SOON);
    watch.wait_for("current", SOON);
    Some((server, watch))
}

#[test]
fn a_renewal_written_the_agents_way_is_served_within_seconds() {
    let Some((server, mut watch)) = started("watch-renew") else {
        return;
    };
    let new = renewal(&server);
    let began = Instant::now();
    agent_renews(&server.certs.dir(), &new, Duration::from_millis(20));
    let renewed = watch.wait_for("renewed", SOON);
    assert_eq!(renewed["level"], "info");
    assert_eq!(
        renewed["new"]["fingerprint_sha256"],
        fingerprint(&new).as_str()
    );
    assert!(renewed["old"]["serial"].is_string(), "{renewed}");
    assert_eq!(served(&server), fingerprint(&new));
    assert!(began.elapsed() < SOON);
    // Applied once: one reload, then quiet.
    server.cmd("status").run().code(0);
    assert!(
        watch.drain(Duration::from_secs(1)).is_empty(),
        "{:#?}",
        watch.seen
    );
}

#[test]
fn a_half_written_renewal_waits_and_never_reloads_until_the_key_comes() {
    let Some((server, mut watch)) = started("watch-half") else {
        return;
    };
    let old = served(&server);
    let before = reloads(&server);
    let new = renewal(&server);
    let certs = server.certs.dir();
    // The new certificate with the old key, for three seconds.
    rewrite_in_place(&certs.join("client.crt"), new.cert_pem.as_bytes());
    let waiting = watch.wait_for("waiting", SOON);
    assert_eq!(waiting["level"], "warning");
    assert!(
        waiting["reason"]
            .as_str()
            .unwrap()
            .contains("keeps serving"),
        "{waiting}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(served(&server), old);
    assert_eq!(reloads(&server), before, "reloaded with a broken pair");
    rewrite_in_place(&certs.join("client.key"), new.key_pem.as_bytes());
    watch.wait_for("renewed", SOON);
    assert_eq!(served(&server), fingerprint(&new));
}

#[test]
fn an_empty_certificate_another_device_or_an_expired_renewal_is_never_applied() {
    let Some((server, mut watch)) = started("watch-bad") else {
        return;
    };
    let old = served(&server);
    let before = reloads(&server);
    let certs = server.certs.dir();
    let original: Vec<(String, Vec<u8>)> = ["client.crt", "client.key", "ca.crt"]
        .iter()
        .map(|n| (n.to_string(), fs::read(certs.join(n)).unwrap()))
        .collect();
    let restore = || {
        for (name, bytes) in &original {
            rewrite_in_place(&certs.join(name), bytes);
        }
    };

    rewrite_in_place(&certs.join("client.crt"), b"");
    watch.wait_for("waiting", SOON);
    restore();
    watch.wait_for("current", SOON);

    let other_id = support::random_device_id().unwrap();
    let other = server
        .certs
        .ca
        .issue(&DeviceRequest::new(&other_id))
        .unwrap();
    agent_renews(&certs, &other, Duration::from_millis(10));
    let refused = watch.wait_for("renewal-refused", SOON);
    assert_eq!(refused["level"], "error");
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.contains(&other_id) && reason.contains(server.id()),
        "{reason}"
    );
    assert!(refused["hint"].as_str().unwrap().contains("server reload"));
    restore();
    watch.wait_for("current", SOON);

    let expired = server
        .certs
        .ca
        .issue(&DeviceRequest::new(server.id()).expired())
        .unwrap();
    agent_renews(&certs, &expired, Duration::from_millis(10));
    let refused = watch.wait_for("renewal-refused", SOON);
    assert!(
        refused["reason"].as_str().unwrap().contains("expired"),
        "{refused}"
    );

    assert_eq!(served(&server), old);
    assert_eq!(reloads(&server), before, "a bad renewal was reloaded");
}

#[test]
fn an_acl_mosquitto_would_refuse_is_never_reloaded_and_a_valid_edit_is() {
    let Some((server, mut watch)) = started("watch-acl") else {
        return;
    };
    let acl = server.path("permissions.acl");
    let good = fs::read(&acl).unwrap();
    let before = reloads(&server);

    // A tab-indented line: Mosquitto refuses the file.
    let mut bad = good.clone();
    bad.extend_from_slice(b"\ttopic read x\n");
    fs::write(&acl, &bad).unwrap();
    let refused = watch.wait_for("acl-refused", SOON);
    assert!(
        refused["hint"].as_str().unwrap().contains("acl validate"),
        "{refused}"
    );
    fs::remove_file(&acl).unwrap();
    let gone = watch.wait_for("acl-refused", SOON);
    assert!(
        gone["problem"].as_str().unwrap().contains("does not exist"),
        "{gone}"
    );
    assert_eq!(reloads(&server), before, "reloaded with a refused ACL");
    server.cmd("status").run().code(0);

    let mut edited = good.clone();
    edited.extend_from_slice(b"\n# a comment added by hand\n");
    fs::write(&acl, &edited).unwrap();
    watch.wait_for("acl-reloaded", SOON);
    assert_eq!(reloads(&server), before + 1);
    server.cmd("status").run().code(0);
}

#[test]
fn the_container_going_and_coming_back_is_said_and_watched_again() {
    let Some((server, mut watch)) = started("watch-container") else {
        return;
    };
    // Killed Mosquitto: the restart policy brings it back, watch sees both.
    let out = Command::new("docker")
        .args(["kill", "--signal", "KILL", &server.name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    watch.wait_for("broker-stopped", SOON);
    // `docker kill` is an explicit stop for the restart policy; `up` starts it.
    server.up().run().success();
    watch.wait_for("broker-started", SOON);
    watch.wait_for("current", SOON);

    Command::new("docker")
        .args(["restart", &server.name])
        .output()
        .unwrap();
    watch.wait_for("broker-started", SOON);
    watch.wait_for("current", SOON);
    server.cmd("status").run().code(0);

    Command::new("docker")
        .args(["rm", "-f", &server.name])
        .output()
        .unwrap();
    let removed = watch.wait_for("broker-removed", SOON);
    assert_eq!(removed["level"], "error");
    server.up().run().success();
    watch.wait_for("current", SOON);
}

#[test]
fn sigterm_and_sigint_end_it_with_exit_0_within_a_second() {
    let Some((server, mut watch)) = started("watch-stop") else {
        return;
    };
    let (code, took) = watch.stop("TERM");
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(1), "{took:?}");
    let mut again = WatchProcess::start(&server, &[]);
    again.wait_for("current", SOON);
    let (code, _) = again.stop("INT");
    assert_eq!(code, Some(0));
}

#[test]
fn the_printed_unit_passes_systemd_analyze_verify() {
    let server = Server::new("watch-unit");
    let run = server.cmd("watch").arg("--print-unit").run();
    run.success();
    let unit = run.stdout.clone();
    assert!(unit.contains("ExecStart="), "{unit}");
    assert!(unit.contains(&format!("--name {}", server.name)), "{unit}");
    assert!(unit.contains("server watch"), "{unit}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join(format!("wott-mqtt-watch-{}.service", server.name));
    fs::write(&path, &unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify:\n{stderr}\n{unit}"
    );
    assert!(!stderr.contains(&path.display().to_string()), "{stderr}");
}

#[test]
fn install_without_systemd_is_refused_and_writes_nothing() {
    if support::skip_without(
        "a machine where systemd does not run (the refusal under test)",
        !std::path::Path::new("/run/systemd/system").is_dir(),
    ) {
        return;
    }
    let server = Server::new("watch-install");
    let run = server.cmd("watch").arg("--install").run();
    run.code(1).error(
        "systemd is not running on this machine",
        "run `wott-mqtt server watch` under the supervisor",
    );
    let unit = format!(
        "/etc/systemd/system/wott-mqtt-watch-{}.service",
        server.name
    );
    assert!(!std::path::Path::new(&unit).exists());
}

#[test]
fn an_engine_away_for_a_while_is_waited_for_and_a_renewal_meanwhile_applied_after() {
    if !docker::available() {
        return;
    }
    let server = Server::new("watch-engine");
    server.up().run().success();
    let relay = support::relay::Relay::new();
    let host = relay.docker_host();
    let mut watch = WatchProcess::start_with(&server, &[], &[("DOCKER_HOST", &host)]);
    watch.wait_for("current", SOON);
    relay.cut();
    let away = watch.wait_for("engine-unreachable", SOON);
    assert_eq!(away["level"], "warning");
    let new = renewal(&server);
    agent_renews(&server.certs.dir(), &new, Duration::from_millis(20));
    std::thread::sleep(Duration::from_secs(2));
    relay.restore();
    watch.wait_for("engine-back", SOON);
    watch.wait_for("renewed", SOON);
    assert_eq!(served(&server), fingerprint(&new));
    // The watch lived through it: it still stops cleanly.
    assert_eq!(watch.stop("TERM").0, Some(0));
}

#[test]
fn setup_server_offers_the_watch_and_without_systemd_prints_the_command_that_runs_it() {
    if !docker::available()
        || support::skip_without(
            "a machine where systemd does not run (the case under test)",
            !std::path::Path::new("/run/systemd/system").is_dir(),
        )
    {
        return;
    }
    let server = Server::new("watch-setup");
    let setup = |extra: &[&str]| {
        support::wott()
            .cert_dir(&server.certs.dir())
            .arg("--server-dir")
            .arg(server.dir())
            .args(["setup", "--image", server.image(), "--name", &server.name])
            .args(["--bind", "127.0.0.1", "--port", &server.port.to_string()])
            .args(["server", "--yes", "--json"])
            .args(extra)
            .run()
    };
    let declined = setup(&["--no-watch"]);
    declined.success();
    assert_eq!(declined.json()["watch"]["status"], "declined");

    let run = setup(&[]);
    run.success();
    let doc = run.json();
    assert_eq!(doc["watch"]["status"], "no-systemd", "{doc}");
    let command = doc["watch"]["command"].as_str().unwrap().to_string();
    assert!(command.ends_with("server watch"), "{command}");
    // Run as printed, it keeps this broker current.
    let mut child = support::printed_command(&command)
        .arg("--json")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let current = std::io::BufRead::lines(stdout)
        .map(|l| l.unwrap())
        .find(|l| l.contains("\"event\":\"current\""));
    let _ = child.kill();
    let _ = child.wait();
    let current = current.expect("the printed watch never said the broker is current");
    assert!(current.contains(&server.name), "{current}");
}
