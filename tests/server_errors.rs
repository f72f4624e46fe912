//! `server up` refusals and failures against the real Docker engine: each
//! names the cause and the fix, and a refusal changes nothing.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::TcpListener;
use std::process::Command;

use support::server::{ContainerGuard, Server, inspect, unique_name};
use support::{docker, snapshot};

#[test]
fn an_unreachable_tcp_engine_says_what_was_tried() {
    let server = Server::new("noengine");
    server
        .up()
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .run()
        .code(1)
        .error(
            "no container engine answered; tried tcp://127.0.0.1:1 (connection refused)",
            "start the engine DOCKER_HOST points at",
        );
    assert!(!server.dir().exists(), "nothing may be written");
}

#[test]
fn a_missing_socket_is_named_and_json_carries_the_error() {
    let server = Server::new("nosocket");
    let run = server
        .up()
        .arg("--json")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run();
    run.code(1);
    let json = run.json();
    assert_eq!(json["exit_code"], 1);
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("unix:///nonexistent/docker.sock (no such socket)"),
        "{message}"
    );
    assert!(!server.dir().exists());
}

#[test]
fn an_unsupported_docker_host_scheme_is_refused() {
    let server = Server::new("scheme");
    server
        .up()
        .env("DOCKER_HOST", "ssh://user@host")
        .run()
        .code(1)
        .error("DOCKER_HOST=ssh://user@host", "tunnel it");
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    if !docker::available() {
        return;
    }
    let server = Server::new("dry");
    let run = server.up().arg("--dry-run").run();
    run.success()
        .stdout_has("nothing was changed")
        .stdout_has("+listener 8883")
        .stdout_has(&format!("create and start the container {}", server.name));
    assert!(!server.dir().exists());
    assert_eq!(server.inspect("{{.Id}}"), None);

    let json = server.up().args(["--dry-run", "--json"]).run().json();
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["changed"], true);
    assert_eq!(json["actions"][0]["action"], "create");
    assert!(!server.dir().exists());
}

#[test]
fn a_missing_image_that_cannot_be_pulled_is_named_with_the_offline_fix() {
    if !docker::available() {
        return;
    }
    let server = Server::new("pull");
    let image = format!("wott-mqtt-test/absent-{}:1", std::process::id());
    server
        .cmd("up")
        .args(["--image", &image, "--bind", "127.0.0.1", "--port"])
        .arg(server.port.to_string())
        .run()
        .code(1)
        .error(
            &format!("the image {image} is not on this machine, and pulling it failed"),
            "docker load -i mosquitto.tar",
        )
        .stderr_has(&format!("pulling {image}"));
    assert!(!server.dir().exists(), "a failed pull must change nothing");
    assert_eq!(server.inspect("{{.Id}}"), None);
}

#[test]
fn a_container_we_did_not_create_is_refused_without_replace() {
    if !docker::available() {
        return;
    }
    let server = Server::new("clash");
    let out = Command::new("docker")
        .args(["create", "--name", &server.name, &server.image])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let id = server.inspect("{{.Id}}").unwrap();

    server.up().run().code(1).error(
        &format!(
            "a container named {} already exists and wott-mqtt did not create it (image {}, created)",
            server.name, server.image
        ),
        "pass --replace",
    );
    assert_eq!(server.inspect("{{.Id}}"), Some(id.clone()), "untouched");
    assert!(!server.dir().exists(), "nothing written");

    // `down` refuses it too.
    server.cmd("down").run().code(1).error(
        "was not created by wott-mqtt",
        "manage that container with `docker`",
    );
    assert_eq!(server.inspect("{{.Id}}"), Some(id));
}

#[test]
fn a_busy_port_is_named_and_leaves_no_container() {
    if !docker::available() {
        return;
    }
    let server = Server::new("port");
    let holder = TcpListener::bind(("127.0.0.1", server.port)).unwrap();
    server.up().run().code(1).error(
        &format!("port {} on 127.0.0.1 is already in use", server.port),
        "--port",
    );
    assert_eq!(
        server.inspect("{{.Id}}"),
        None,
        "the failed container is removed"
    );
    drop(holder);
}

#[test]
fn a_port_held_by_another_container_names_that_container() {
    if !docker::available() {
        return;
    }
    let server = Server::new("portc");
    let other = ContainerGuard(unique_name("holder"));
    let out = Command::new("docker")
        .args(["run", "-d", "--name", &other.0, "-p"])
        .arg(format!("127.0.0.1:{}:1883", server.port))
        .arg(&server.image)
        // Without -c, Mosquitto runs in local-only mode: it stays up.
        .arg("/usr/sbin/mosquitto")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    server.up().run().code(1).error(
        &format!(
            "port {} on 127.0.0.1 is already in use by the container {}",
            server.port, other.0
        ),
        "--port",
    );
    assert_eq!(server.inspect("{{.Id}}"), None);
    assert_eq!(
        inspect(&other.0, "{{.State.Running}}").as_deref(),
        Some("true")
    );
}

#[test]
fn a_broker_that_rejects_permissions_acl_is_explained_from_its_log() {
    if !docker::available() {
        return;
    }
    let server = Server::new("badacl");
    std::fs::create_dir(server.dir()).unwrap();
    let acl = "user someone\ntopic sideways wott/#\n";
    std::fs::write(server.path("permissions.acl"), acl).unwrap();
    let run = server.up().args(["--timeout", "20"]).run();
    run.code(1)
        .error(
            &format!("the broker in container {}", server.name),
            "wott-mqtt acl validate",
        )
        .stderr_has("it cannot load permissions.acl")
        .stderr_has("| ")
        .stderr_has("Invalid topic access type \"sideways\"");
    // The ACL is the user's: never overwritten.
    assert_eq!(
        std::fs::read_to_string(server.path("permissions.acl")).unwrap(),
        acl
    );
    // Stopped rather than left restarting forever.
    assert_eq!(
        server.inspect("{{.State.Running}}").as_deref(),
        Some("false")
    );
    let _ = snapshot;
}
