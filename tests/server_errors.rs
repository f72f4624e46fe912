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
    assert!(!server.dir().exists(), "nothing may be written");
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
        .args(["create", "--name", &server.name, server.image()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let id = server.inspect("{{.Id}}").unwrap();

    server.up().run().code(1).error(
        &format!(
            "a container named {} already exists and wott-mqtt did not create it (image {}, created)",
            server.name, server.image()
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
    let mut server = Server::new("port");
    // The OS picks the port the holder keeps busy.
    let holder = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    server.port = holder.local_addr().unwrap().port();
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
fn a_dry_run_names_a_busy_port_too() {
    if !docker::available() {
        return;
    }
    let server = Server::new("dryport");
    let holder = TcpListener::bind(("127.0.0.1", server.port)).unwrap();
    server.up().arg("--dry-run").run().code(1).error(
        &format!("port {} on 127.0.0.1 is already in use", server.port),
        "--port",
    );
    assert!(!server.dir().exists());
    drop(holder);
}

#[test]
fn the_image_comes_from_the_environment_when_image_is_not_given() {
    if !docker::available() {
        return;
    }
    let server = Server::new("envimage");
    let json = server
        .cmd("up")
        .env("WOTT_MQTT_IMAGE", server.image())
        .args(["--bind", "127.0.0.1", "--port"])
        .arg(server.port.to_string())
        .args(["--dry-run", "--json"])
        .run()
        .json();
    assert_eq!(json["image"]["ref"], server.image());
    assert_eq!(json["image"]["source"], "present");
    assert!(!server.dir().exists());
}

#[test]
fn without_image_or_a_mosquitto_up_names_both_ways_out_and_changes_nothing() {
    if !docker::available()
        || !support::is_root()
        || docker::image_id("eclipse-mosquitto:2").is_some()
    {
        return;
    }
    let server = Server::new("noimage");
    let run = docker::wott_without_mosquitto()
        .cert_dir(&server.certs.dir())
        .arg("--server-dir")
        .arg(server.dir())
        .args([
            "server",
            "up",
            "--name",
            &server.name,
            "--bind",
            "127.0.0.1",
            "--port",
        ])
        .arg(server.port.to_string())
        .run();
    run.code(1)
        .error(
            "no local image can be built: there is no Mosquitto on this machine",
            "apt-get install mosquitto",
        )
        .stderr_has("docker load -i mosquitto.tar");
    assert!(!server.dir().exists(), "nothing written");
    assert_eq!(server.inspect("{{.Id}}"), None);
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
        .arg(server.image())
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

#[test]
fn an_expired_identity_is_refused_before_anything_happens() {
    let mut server = Server::new("expired");
    server.certs = support::CertFixture::with(support::DeviceRequest::expired);
    server
        .up()
        .run()
        .code(3)
        .error("expired", "renew it with `sudo wott-agent`");
    assert!(!server.dir().exists());
    assert_eq!(server.inspect("{{.Id}}"), None);
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let server = Server::new("mismatch");
    let other = support::CertFixture::new();
    std::fs::copy(other.path("client.key"), server.certs.path("client.key")).unwrap();
    server.up().run().code(3).error(
        "does not belong to",
        "client.crt and client.key that belong together",
    );
    assert!(!server.dir().exists());
}

#[test]
fn without_root_the_agents_key_cannot_be_read_and_sudo_is_suggested() {
    if !support::root_available("to run a command as nobody") {
        return;
    }
    let server = Server::new("nobody");
    // nobody may enter the fixture's folders, but not read the 0600 key.
    for dir in [
        server.certs.root.path(),
        &server.certs.dir(),
        server.root.path(),
    ] {
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    support::wott_unprivileged()
        .cert_dir(&server.certs.dir())
        .arg("--server-dir")
        .arg(server.dir())
        .args(["server", "up", "--name", &server.name])
        .run()
        .code(3)
        .error("client.key", "sudo");
    assert!(!server.dir().exists());
}

#[test]
fn a_server_dir_the_broker_cannot_enter_is_refused() {
    if !docker::available() {
        return;
    }
    let server = Server::new("closed");
    std::fs::create_dir(server.dir()).unwrap();
    std::fs::set_permissions(
        server.dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    server.up().run().code(1).error(
        "the broker runs as uid 1883 and cannot read",
        &format!("sudo chmod o+rx {}", server.dir().display()),
    );
    assert!(snapshot(&server.dir()).is_empty(), "nothing written");
    assert_eq!(server.inspect("{{.Id}}"), None);
}

#[test]
fn down_without_a_container_changes_nothing() {
    if !docker::available() {
        return;
    }
    let server = Server::new("nodown");
    let json = server.cmd("down").arg("--json").run();
    json.success();
    let json = json.json();
    assert_eq!(json["changed"], false);
    assert_eq!(json["removed"], serde_json::Value::Null);
    server
        .cmd("down")
        .run()
        .success()
        .stdout_has(&format!("There is no container {}", server.name));
}

#[test]
fn purge_refuses_a_folder_wott_mqtt_did_not_write() {
    if !docker::available() {
        return;
    }
    let server = Server::new("purge");
    std::fs::create_dir(server.dir()).unwrap();
    std::fs::write(server.path("precious.txt"), "keep me").unwrap();
    let before = snapshot(&server.dir());
    server
        .cmd("down")
        .arg("--purge")
        .run()
        .code(1)
        .error("refusing to purge", "remove the folder by hand");
    assert_eq!(snapshot(&server.dir()), before);
}

#[test]
fn logs_status_and_reload_of_a_missing_container_say_so() {
    if !docker::available() {
        return;
    }
    let server = Server::new("absent");
    server.cmd("logs").run().code(1).error(
        &format!("there is no container named {}", server.name),
        "server up",
    );
    server.cmd("reload").run().code(1).error(
        &format!("there is no container named {}", server.name),
        "server up",
    );
    let status = server.cmd("status").arg("--json").run();
    status.code(1);
    let json = status.json();
    assert_eq!(json["exists"], false);
    assert_eq!(json["running"], false);
    assert!(!server.dir().exists());
}

#[test]
fn bad_names_and_images_are_usage_errors() {
    let server = Server::new("usage");
    const NAME: &str = "a container name starts with a letter or digit and holds only letters, digits, `_`, `.` and `-`";
    const IMAGE: &str = "an image reference such as eclipse-mosquitto:2, without spaces";
    for (flag, value, reason) in [
        ("--name", "-leading-dash", NAME),
        ("--name", "has space", NAME),
        ("--name", "semi;colon", NAME),
        ("--image", "eclipse mosquitto", IMAGE),
        ("--bind", "not-an-ip", "invalid IP address syntax"),
        ("--port", "0", "0 is not in 1..=65535"),
        ("--port", "70000", "70000 is not in 1..=65535"),
    ] {
        let run = support::wott()
            .cert_dir(&server.certs.dir())
            .arg("--server-dir")
            .arg(server.dir())
            .args(["server", "up", &format!("{flag}={value}")])
            .run();
        // The value, the flag and why: not just the flag clap echoes.
        run.code(2)
            .stderr_has(&format!("error: invalid value '{value}' for '{flag} <"))
            .stderr_has(&format!(">': {reason}\n"));
    }
    assert!(!server.dir().exists());
}
