//! Docker faults: the engine stops answering in the middle of `server up`,
//! the container is killed, the broker crash-loops on a broken file. Each
//! gives a clear message, leaves a consistent state, and the next
//! `server up` recovers.
//!
//! "The engine stops" is simulated with a relay that goes silent when a
//! given request goes by (`support::relay`).

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::docker;
use support::relay::{ENGINE, Relay};
use support::server::Server;

/// A Docker engine reached through the Unix socket the relay forwards to.
fn engine_socket_available() -> bool {
    docker::available()
        && !support::skip_without(
            &format!("the Docker engine's socket at {ENGINE}"),
            Path::new(ENGINE).exists(),
        )
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = support::snapshot(dir)
        .into_iter()
        .map(|(p, _)| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn the_engine_stopping_during_up_is_named_and_the_next_up_recovers() {
    if !engine_socket_available() {
        return;
    }
    let server = Server::new("engine-stops");
    let relay = Relay::cutting_at("/start");
    let run = server.up().env("DOCKER_HOST", relay.docker_host()).run();
    assert!(
        relay.cut.load(Ordering::SeqCst),
        "the relay never saw the start request"
    );
    run.code(1).error(
        &format!(
            "the container engine at {} stopped answering while trying to start the container",
            relay.docker_host()
        ),
        "picks up from where it stopped",
    );
    // Consistent: the files are complete and the container exists, not started.
    assert_eq!(
        files(&server.dir()),
        [
            "broker.json",
            "certs/ca.crt",
            "certs/client.crt",
            "certs/client.key",
            "mosquitto.conf",
            "permissions.acl"
        ]
    );
    assert_eq!(
        server.inspect("{{.State.Status}}").as_deref(),
        Some("created")
    );

    // With the engine back, `up` finishes the job: it starts that container.
    let run = server.up().arg("--json").run();
    run.success();
    let doc = run.json();
    assert_eq!(doc["changed"], true);
    let actions: Vec<&str> = doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["start"], "{doc}");
    server.cmd("status").run().success();
}

#[test]
fn an_engine_gone_before_the_container_is_created_leaves_nothing_half_made() {
    if !engine_socket_available() {
        return;
    }
    let server = Server::new("engine-gone");
    let relay = Relay::cutting_at("/containers/create");
    server
        .up()
        .env("DOCKER_HOST", relay.docker_host())
        .run()
        .code(1)
        .error(
            "stopped answering while trying to create the container",
            "systemctl status docker",
        );
    assert_eq!(server.inspect("{{.Id}}"), None);
    server.up().run().success().stdout_has("is up");
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_container_is_explained_and_started_again() {
    if !docker::available() {
        return;
    }
    let server = Server::new("killed");
    server.up().run().success();

    // The broker process dies (kill -9, the OOM killer): Docker's restart
    // policy brings it back, and `up` finds nothing to do.
    let pid = server.inspect("{{.State.Pid}}").unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    // At once, while Docker is restarting it: `up` waits for it, nothing to repair.
    let run = server.up().arg("--json").run();
    run.success();
    assert_eq!(run.json()["changed"], false, "{}", run.stdout);
    wait_for("the restart", || {
        server
            .inspect("{{.RestartCount}} {{.State.Status}}")
            .as_deref()
            == Some("1 running")
    });
    let run = server.up().arg("--json").run();
    run.success();
    assert_eq!(run.json()["changed"], false, "{}", run.stdout);

    // `docker kill`: the engine does not restart it; status says what happened.
    std::process::Command::new("docker")
        .args(["kill", &server.name])
        .output()
        .unwrap();
    wait_for("the exit", || {
        server.inspect("{{.State.Running}}").as_deref() == Some("false")
    });
    server
        .cmd("status")
        .run()
        .code(1)
        .stdout_has("killed from outside (SIGKILL, exit code 137")
        .stdout_has("server up` starts it again");
    server.up().run().success().stdout_has("is up");
    server.cmd("status").run().success();
}

#[test]
fn a_crash_loop_on_a_broken_acl_is_stopped_explained_and_recovered() {
    if !docker::available() {
        return;
    }
    let server = Server::new("crashloop");
    server.up().run().success();
    let acl = server.path("permissions.acl");
    let good = std::fs::read(&acl).unwrap();
    // Someone breaks permissions.acl by hand, and the container restarts
    // (e.g. a reboot): Mosquitto now refuses to start, again and again.
    std::fs::write(&acl, "user someone\ntopic sideways wott/#\n").unwrap();
    std::process::Command::new("docker")
        .args(["restart", &server.name])
        .output()
        .unwrap();
    let run = server.up().args(["--timeout", "20"]).run();
    run.code(1)
        .stderr_has("it cannot load permissions.acl")
        .stderr_has("Invalid topic access type \"sideways\"")
        .error(
            &format!("the broker in container {}", server.name),
            "wott-mqtt acl validate",
        );
    // Stopped rather than left restarting forever, and the file left as it was.
    assert_eq!(
        server.inspect("{{.State.Running}}").as_deref(),
        Some("false")
    );
    assert_eq!(
        std::fs::read_to_string(&acl).unwrap(),
        "user someone\ntopic sideways wott/#\n"
    );
    server
        .cmd("status")
        .run()
        .code(1)
        .stdout_has("it cannot load permissions.acl");

    // Fixed: the next `up` brings it back.
    std::fs::write(&acl, good).unwrap();
    server.up().run().success().stdout_has("is up");
    server.cmd("status").run().success();
}
