//! `server up` by a user who is not root but may use the Docker socket (its
//! group), on the real engine: the broker runs as that user, reads copies
//! that user owns and writes its data and log into the server dir; reload,
//! status and `acl allow`'s reload work the same; root's `server up` on the
//! same folder recreates the container as uid 1883 (the user is part of the
//! configuration hash), after which the user is told to use sudo.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::Value;
use support::server::{Server, owner_and_mode};
use support::{docker, random_device_id, wott_as};

const NOBODY: u32 = 65534;

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

/// `wott-mqtt --cert-dir … --server-dir … server <sub> --name …` as nobody
/// in the socket's group.
fn as_user(server: &Server, group: u32, sub: &str) -> support::Wott {
    wott_as(NOBODY, NOBODY, &[group])
        .cert_dir(&server.certs.dir())
        .arg("--server-dir")
        .arg(server.dir())
        .args(["server", sub, "--name", &server.name])
}

fn up_args(server: &Server) -> Vec<String> {
    vec![
        "--image".into(),
        server.image().to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--port".into(),
        server.port.to_string(),
        "--json".into(),
    ]
}

fn actions(json: &Value) -> Vec<String> {
    json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_docker_group_user_runs_the_broker_as_themselves_and_root_takes_it_back() {
    if !support::root_available("to run the binary as an unprivileged user") {
        return;
    }
    if !docker::available() {
        return;
    }
    let Some(group) = docker::socket_group_or_skip() else {
        return;
    };
    let server = Server::new("user");
    chown_tree(server.certs.root.path(), NOBODY);
    chown_tree(server.root.path(), NOBODY);

    let run = as_user(&server, group, "up").args(up_args(&server)).run();
    run.success();
    let json = run.json();
    assert_eq!(json["certificates"]["owner_uid"], NOBODY);
    assert_eq!(actions(&json), ["create"]);
    assert_eq!(
        server.inspect("{{.Config.User}}").as_deref(),
        Some("65534:65534")
    );
    assert_eq!(owner_and_mode(&server.path("certs")), (NOBODY, 0o700));
    assert_eq!(
        owner_and_mode(&server.path("certs/client.key")),
        (NOBODY, 0o600)
    );
    assert_eq!(owner_and_mode(&server.path("data")), (NOBODY, 0o700));
    assert_eq!(owner_and_mode(&server.path("log")), (NOBODY, 0o700));
    let log = std::fs::read_to_string(server.path("log/mosquitto.log")).unwrap();
    assert!(log.contains("New client connected"), "{log}");

    let again = as_user(&server, group, "up").args(up_args(&server)).run();
    again.success();
    assert_eq!(again.json()["changed"], false);

    // A grant reloads the user's broker, through the docker group.
    let client = random_device_id().unwrap();
    wott_as(NOBODY, NOBODY, &[group])
        .arg("--server-dir")
        .arg(server.dir())
        .args(["acl", "allow", &client, "wott/temperature"])
        .run()
        .success()
        .stdout_has(&format!("reloaded: the broker in {}", server.name));
    as_user(&server, group, "reload").run().success();
    as_user(&server, group, "status")
        .run()
        .success()
        .stdout_has("Config      current");

    // Root's `server up` refuses a folder the user controls: root would
    // write into it. Taken back as the hint says, it runs the image's uid
    // 1883 again.
    let id_before = server.inspect("{{.Id}}").unwrap();
    server.up().run().code(1).error(
        "it belongs to another user than root",
        "sudo chown root:root",
    );
    assert_eq!(server.inspect("{{.Id}}").unwrap(), id_before);
    chown_tree(server.root.path(), 0);
    let root = server.up().arg("--json").run();
    root.success();
    assert_eq!(actions(&root.json()), ["remove", "create"]);
    assert_eq!(
        server.inspect("{{.Config.User}}").as_deref(),
        Some("1883:1883"),
        "Mosquitto never runs as root in the container"
    );
    assert_eq!(
        owner_and_mode(&server.path("certs/client.key")),
        (1883, 0o600)
    );
    assert_eq!(std::fs::metadata(server.path("data")).unwrap().uid(), 1883);
    let id_root = server.inspect("{{.Id}}").unwrap();
    assert_ne!(id_before, id_root);

    // Now only root may change it; the user is told so, and nothing changes.
    let acl_before = std::fs::read(server.path("permissions.acl")).unwrap();
    as_user(&server, group, "up")
        .args(&up_args(&server)[..6])
        .run()
        .code(1)
        .error("cannot prepare the server dir", "sudo");
    assert_eq!(server.inspect("{{.Id}}").unwrap(), id_root);
    assert_eq!(
        std::fs::read(server.path("permissions.acl")).unwrap(),
        acl_before
    );
    assert_eq!(
        owner_and_mode(&server.path("certs/client.key")),
        (1883, 0o600)
    );

    server.cmd("down").arg("--purge").run().success();
    assert!(!server.dir().exists());
}
