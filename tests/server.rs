//! The broker's lifecycle against the real Docker engine: `server up` from
//! nothing, again with nothing to do, after a renewal, a config change, a
//! stop and the tutorial's key mistake; `status`, `logs`, `reload`, `down`.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use serde_json::Value;
use support::server::{Server, owner_and_mode};
use support::{DeviceRequest, docker, snapshot};

/// The server dir's files, without what the broker writes itself: its
/// persistence (it saves on stop) and its log.
fn config_files(server: &Server) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    snapshot(&server.dir())
        .into_iter()
        .filter(|(path, _)| {
            !path.starts_with(server.path("data")) && !path.starts_with(server.path("log"))
        })
        .collect()
}

fn up_json(server: &Server) -> Value {
    let run = server.up().arg("--json").run();
    run.success();
    run.json()
}

fn actions(json: &Value) -> Vec<String> {
    json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_string())
        .collect()
}

/// The agent renewing the certificate: a new key and certificate from the same CA.
fn renew(server: &Server) -> String {
    let renewed = server
        .certs
        .ca
        .issue(&DeviceRequest::new(server.id()))
        .unwrap();
    renewed.write_to(&server.certs.dir()).unwrap();
    wott_mqtt::identity::Identity::load(&wott_mqtt::identity::CertDir::new(server.certs.dir()))
        .unwrap()
        .cert
        .info
        .fingerprint_sha256
}

fn docker(args: &[&str]) {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {out:?}");
}

#[test]
fn up_then_up_again_changes_nothing_and_status_logs_reload_down_work() {
    if !docker::available() {
        return;
    }
    let server = Server::new("life");
    // The agent's layout: a root-owned key only root may read.
    let (_, key_mode) = owner_and_mode(&server.certs.path("client.key"));
    assert_eq!(key_mode, 0o600);

    let first = up_json(&server);
    assert_eq!(first["changed"], true);
    assert_eq!(actions(&first), ["create"]);
    assert_eq!(first["ready"]["served"]["common_name"], server.id());
    assert_eq!(
        first["next_step"]["command"],
        format!("wott-mqtt hosts add {} 127.0.0.1", server.id())
    );
    // Root's, readable by the broker's group: uid 1883 cannot plant links in it.
    assert_eq!(owner_and_mode(&server.path("certs")), (0, 0o750));
    assert_eq!(
        owner_and_mode(&server.path("certs/client.key")),
        (1883, 0o600)
    );
    assert_eq!(owner_and_mode(&server.path("data")), (1883, 0o700));
    assert_eq!(
        server.inspect("{{index .Config.Labels \"org.wott-mqtt.managed-by\"}} {{.HostConfig.RestartPolicy.Name}}"),
        Some("wott-mqtt unless-stopped".into())
    );
    let id = server.inspect("{{.Id}}").unwrap();
    let conf_inode = std::fs::metadata(server.path("mosquitto.conf"))
        .unwrap()
        .ino();
    let files = config_files(&server);

    // Again: nothing to do, nothing touched, and still proven ready.
    let second = up_json(&server);
    assert_eq!(second["changed"], false);
    assert_eq!(actions(&second), Vec::<String>::new());
    assert!(second["ready"]["after_ms"].is_u64());
    assert_eq!(server.inspect("{{.Id}}"), Some(id.clone()));
    assert_eq!(
        std::fs::metadata(server.path("mosquitto.conf"))
            .unwrap()
            .ino(),
        conf_inode
    );
    assert!(config_files(&server) == files, "a second up rewrote a file");
    server.up().run().success().stdout_has(&format!(
        "The broker {} is up; nothing changed.",
        server.name
    ));

    let status = server.cmd("status").arg("--json").run();
    status.success();
    let status = status.json();
    assert_eq!(status["running"], true);
    assert_eq!(status["managed"], true);
    assert_eq!(status["config_current"], true);
    assert_eq!(status["details"]["restart_count"], 0);
    assert_eq!(status["details"]["ports"][0]["host_port"], server.port);
    assert_eq!(status["served"]["common_name"], server.id());
    assert_eq!(
        status["served"]["fingerprint_sha256"],
        status["agent_certificate"]["fingerprint_sha256"]
    );
    assert_eq!(status["notes"], serde_json::json!([]));
    server
        .cmd("status")
        .run()
        .success()
        .stdout_has("(read over TLS)");

    let logs = server.cmd("logs").run();
    logs.success().stdout_has(&format!(
        "mosquitto version {} running",
        docker::mosquitto_version()
    ));
    let tail = server.cmd("logs").args(["--tail", "1"]).run();
    assert_eq!(tail.success().stdout.lines().count(), 1, "{tail:?}");
    let json = server.cmd("logs").arg("--json").run().json();
    assert!(json["lines"].as_array().unwrap().len() >= 5);

    let reload = server.cmd("reload").arg("--json").run();
    reload.success();
    let reload = reload.json();
    assert_eq!(reload["signalled"], true);
    assert_eq!(reload["changed"], false);
    assert_eq!(reload["served"]["common_name"], server.id());
    assert_eq!(server.inspect("{{.Id}}"), Some(id));

    let plan = server.cmd("down").args(["--dry-run", "--json"]).run();
    plan.success();
    assert_eq!(plan.json()["changed"], true);
    assert!(
        server.inspect("{{.Id}}").is_some(),
        "a dry run removes nothing"
    );

    let down = server.cmd("down").arg("--json").run();
    down.success();
    let down = down.json();
    assert_eq!(down["changed"], true);
    assert_eq!(down["was_running"], true);
    assert_eq!(server.inspect("{{.Id}}"), None);
    assert!(config_files(&server) == files, "down keeps the server dir");
    server.cmd("status").run().code(1).stdout_has("absent");

    let purge = server.cmd("down").args(["--purge", "--json"]).run();
    purge.success();
    assert_eq!(purge.json()["purged"], true);
    assert!(!server.dir().exists());
}

#[test]
fn a_renewed_certificate_is_noticed_staged_and_served_without_a_restart() {
    if !docker::available() {
        return;
    }
    let server = Server::new("renew");
    up_json(&server);
    let id = server.inspect("{{.Id}}").unwrap();
    let started = server.inspect("{{.State.StartedAt}}").unwrap();

    let renewed = renew(&server);
    let status = server.cmd("status").run();
    status
        .success()
        .stdout_has("the agent renewed the certificate; run `sudo wott-mqtt server reload`");

    // `up` stages the new copy and reloads the running broker.
    let json = up_json(&server);
    assert_eq!(json["changed"], true);
    assert_eq!(actions(&json), ["reload"]);
    assert_eq!(json["ready"]["served"]["fingerprint_sha256"], renewed);
    assert_eq!(server.inspect("{{.Id}}"), Some(id.clone()));
    assert_eq!(
        server.inspect("{{.State.StartedAt}}"),
        Some(started.clone())
    );

    // `reload` does the same.
    let renewed = renew(&server);
    let reload = server.cmd("reload").arg("--json").run();
    reload.success();
    let reload = reload.json();
    assert_eq!(reload["changed"], true);
    assert_eq!(reload["served"]["fingerprint_sha256"], renewed);
    assert_eq!(server.inspect("{{.State.StartedAt}}"), Some(started));
    let status = server.cmd("status").arg("--json").run().json();
    assert_eq!(status["served"]["fingerprint_sha256"], renewed);
    assert_eq!(status["notes"], serde_json::json!([]));
}

#[test]
fn reload_dry_run_stages_nothing() {
    if !docker::available() {
        return;
    }
    let server = Server::new("reloaddry");
    up_json(&server);
    renew(&server);
    let before = config_files(&server);
    let json = server.cmd("reload").args(["--dry-run", "--json"]).run();
    json.success();
    let json = json.json();
    assert_eq!(json["changed"], true);
    assert_eq!(json["signalled"], false);
    assert_eq!(config_files(&server), before);
}

#[test]
fn another_port_recreates_the_container() {
    if !docker::available() {
        return;
    }
    let mut server = Server::new("recreate");
    up_json(&server);
    let old = server.inspect("{{.Id}}").unwrap();
    server.port = support::mosquitto::free_port();
    let plan = server.up().args(["--dry-run", "--json"]).run().json();
    assert_eq!(actions(&plan), ["remove", "create"]);
    assert_eq!(
        server.inspect("{{.Id}}"),
        Some(old.clone()),
        "a dry run touches nothing"
    );

    let json = up_json(&server);
    assert_eq!(actions(&json), ["remove", "create"]);
    assert_eq!(
        json["ready"]["address"],
        format!("127.0.0.1:{}", server.port)
    );
    assert_ne!(server.inspect("{{.Id}}"), Some(old));
}

#[test]
fn a_stopped_broker_is_started_again() {
    if !docker::available() {
        return;
    }
    let server = Server::new("stopped");
    up_json(&server);
    docker(&["stop", &server.name]);
    let status = server.cmd("status").arg("--json").run();
    status.code(1);
    assert_eq!(
        status.json()["crash"],
        Value::Null,
        "a clean stop is no crash"
    );
    let json = up_json(&server);
    assert_eq!(actions(&json), ["start"]);
    assert_eq!(json["ready"]["served"]["common_name"], server.id());
}

#[test]
fn replace_takes_over_a_container_we_did_not_create() {
    if !docker::available() {
        return;
    }
    let server = Server::new("replace");
    docker(&["create", "--name", &server.name, server.image()]);
    let json = server.up().args(["--replace", "--json"]).run();
    json.success();
    let json = json.json();
    assert_eq!(actions(&json), ["remove", "create"]);
    assert_eq!(
        server.inspect("{{index .Config.Labels \"org.wott-mqtt.managed-by\"}}"),
        Some("wott-mqtt".into())
    );
}

#[test]
fn the_tutorials_key_mistake_is_explained_and_up_repairs_it() {
    if !docker::available() {
        return;
    }
    let server = Server::new("keyperm");
    up_json(&server);
    // What run.sh does: the broker reads a root-owned, 0600 key.
    std::os::unix::fs::chown(server.path("certs/client.key"), Some(0), Some(0)).unwrap();
    docker(&["restart", &server.name]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        let run = server.cmd("status").arg("--json").run();
        let json = run.json();
        if json["crash"] != Value::Null || std::time::Instant::now() > deadline {
            run.code(1);
            break json;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(status["crash"]["cause"], "key-permission", "{status:#}");
    let lines = status["crash"]["lines"].to_string();
    assert!(lines.contains("Unable to load server key file"), "{lines}");
    assert!(lines.contains("Permission denied"), "{lines}");
    server
        .cmd("status")
        .run()
        .code(1)
        .stdout_has("it may not read its private key")
        .stdout_has("| ");

    let json = up_json(&server);
    assert_eq!(json["changed"], true);
    assert_eq!(
        owner_and_mode(&server.path("certs/client.key")),
        (1883, 0o600)
    );
    assert_eq!(json["ready"]["served"]["common_name"], server.id());
}

#[test]
fn logs_follow_streams_new_lines_until_interrupted() {
    use std::io::{BufRead, BufReader};
    if !docker::available() {
        return;
    }
    let server = Server::new("follow");
    up_json(&server);
    let mut follow = Command::new(support::bin())
        .args([
            "server",
            "logs",
            "--follow",
            "--tail",
            "1",
            "--name",
            &server.name,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // The last line so far, then what the reload adds while following.
    received
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    server.cmd("reload").run().success();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("Reloading config."))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        seen.push(
            received
                .recv_timeout(left)
                .expect("no new log line while following"),
        );
    }
    Command::new("kill")
        .args(["-INT", &follow.id().to_string()])
        .status()
        .unwrap();
    let status = follow.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "Ctrl-C ends --follow like a shell does"
    );
}
