//! One broker per server dir: `server up` records what it was given in
//! `<server-dir>/broker.json`, every later command finds that broker without
//! `--name`, and a later `server up` keeps what no flag names. Against the
//! real engine, with a custom name, image, port and bind address: the case
//! where the old defaults planned to remove the broker and start another.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use support::server::{Server, inspect, remove_container, unique_name};
use support::{Wott, docker, random_device_id, snapshot, wott};

/// `wott-mqtt … server <sub>` for the server's dirs, without `--name`.
fn server_cmd(server: &Server, sub: &str) -> Wott {
    wott()
        .cert_dir(&server.certs.dir())
        .arg("--server-dir")
        .arg(server.dir())
        .args(["server", sub])
}

fn container_id(name: &str) -> String {
    inspect(name, "{{.Id}}").unwrap_or_else(|| panic!("no container {name}"))
}

#[test]
fn a_custom_broker_is_found_without_name_and_kept_by_a_bare_up() {
    if !docker::available() {
        return;
    }
    let server = Server::new("remember");
    server.up().run().success();
    let id = container_id(&server.name);
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(server.path("broker.json")).unwrap()).unwrap();
    assert_eq!(record["name"], server.name.as_str());
    assert_eq!(record["port"], server.port);
    assert_eq!(record["image"], server.image());
    assert_eq!(record["bind"], "127.0.0.1");

    let status = server_cmd(&server, "status").arg("--json").run();
    status.success();
    assert_eq!(status.json()["container"], server.name.as_str());
    assert_eq!(status.json()["running"], true);
    server_cmd(&server, "logs")
        .args(["--tail", "3"])
        .run()
        .success();
    let reload = server_cmd(&server, "reload").arg("--json").run();
    reload.success();
    assert_eq!(reload.json()["container"], server.name.as_str());

    // The cron line docs/server.md used to give: it kept the broker as it is.
    let bare = server_cmd(&server, "up").arg("--json").run();
    bare.success();
    let doc = bare.json();
    assert_eq!(doc["changed"], false, "{}", bare.stdout);
    assert_eq!(doc["container"], server.name.as_str());
    assert_eq!(doc["port"], server.port);
    let kept: Vec<&str> = doc["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    for setting in ["name", "image", "bind", "port"] {
        assert!(kept.contains(&setting), "{kept:?}");
    }
    assert_eq!(container_id(&server.name), id, "the broker was replaced");
    server_cmd(&server, "up")
        .run()
        .success()
        .stdout_has("Kept")
        .stdout_has("as recorded in broker.json");

    let down = server_cmd(&server, "down").arg("--json").run();
    down.success();
    assert_eq!(down.json()["container"], server.name.as_str());
    assert_eq!(inspect(&server.name, "{{.Id}}"), None);
}

#[test]
fn a_flag_changes_only_what_it_names_and_a_dry_run_shows_it() {
    if !docker::available() {
        return;
    }
    let server = Server::new("remember-flag");
    server.up().run().success();
    let record_before = fs::read(server.path("broker.json")).unwrap();
    let other = support::mosquitto::free_port();
    let dry = server_cmd(&server, "up")
        .args(["--port", &other.to_string(), "--dry-run", "--json"])
        .run();
    dry.success();
    let doc = dry.json();
    assert_eq!(doc["port"], other);
    assert_eq!(doc["container"], server.name.as_str());
    let record = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("broker.json"))
        .expect("the record in the dry run's files");
    assert_eq!(record["change"], "updated");
    assert!(
        record["diff"]
            .as_str()
            .unwrap()
            .contains(&format!("+  \"port\": {other}")),
        "{record}"
    );
    assert_eq!(fs::read(server.path("broker.json")).unwrap(), record_before);

    server_cmd(&server, "up")
        .args(["--port", &other.to_string()])
        .run()
        .success();
    let ports = inspect(&server.name, "{{json .HostConfig.PortBindings}}").unwrap();
    assert!(
        ports.contains(&format!("\"HostPort\":\"{other}\"")),
        "{ports}"
    );
    // Still the test image, on loopback: nothing else moved.
    assert_eq!(
        inspect(&server.name, "{{.Config.Image}}").unwrap(),
        server.image()
    );
    assert!(ports.contains("127.0.0.1"), "{ports}");
}

#[test]
fn a_new_name_replaces_the_server_dirs_broker() {
    if !docker::available() {
        return;
    }
    let server = Server::new("remember-rename");
    server.up().run().success();
    let renamed = unique_name("renamed");
    let run = server_cmd(&server, "up")
        .args(["--name", &renamed, "--json"])
        .run();
    remove_container(&renamed);
    run.success();
    let doc = run.json();
    assert_eq!(doc["container"], renamed.as_str());
    let actions = doc["actions"].to_string();
    assert!(
        actions.contains("the server dir's broker is now named"),
        "{actions}"
    );
    assert_eq!(
        inspect(&server.name, "{{.Id}}"),
        None,
        "the old broker stayed"
    );
}

#[test]
fn a_broker_from_before_the_record_is_found_by_its_label() {
    if !docker::available() {
        return;
    }
    let server = Server::new("remember-label");
    server.up().run().success();
    fs::remove_file(server.path("broker.json")).unwrap();
    let status = server_cmd(&server, "status").arg("--json").run();
    status.success();
    assert_eq!(status.json()["container"], server.name.as_str());
    // A bare `server up` takes that broker's settings from the container
    // itself, keeps it, and records them.
    let id = container_id(&server.name);
    let up = server_cmd(&server, "up").arg("--json").run();
    up.success();
    assert_eq!(up.json()["container"], server.name.as_str());
    assert_eq!(up.json()["port"], server.port);
    assert_eq!(up.json()["actions"], serde_json::json!([]));
    assert_eq!(container_id(&server.name), id);
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(server.path("broker.json")).unwrap()).unwrap();
    assert_eq!(record["image"], server.image());
}

#[test]
fn a_record_that_is_not_json_or_not_trusted_is_refused_and_nothing_changes() {
    if !docker::available() {
        return;
    }
    let server = Server::new("remember-bad");
    server.up().run().success();
    let record = server.path("broker.json");

    fs::write(&record, b"{\"name\": \"x\",\n").unwrap();
    let before = snapshot(&server.dir());
    server_cmd(&server, "reload")
        .run()
        .code(1)
        .stderr_has("cannot read the broker's settings in")
        .stderr_has("broker.json")
        .stderr_has("hint: `server up` writes this file (JSON)");
    assert_eq!(snapshot(&server.dir()), before);

    fs::write(&record, b"{\"name\": \"someone-elses\"}\n").unwrap();
    fs::set_permissions(&record, fs::Permissions::from_mode(0o666)).unwrap();
    let before = snapshot(&server.dir());
    server_cmd(&server, "down")
        .run()
        .code(1)
        .stderr_has("other users may write to it")
        .stderr_has("chmod go-w");
    assert_eq!(snapshot(&server.dir()), before);
    assert!(inspect(&server.name, "{{.Id}}").is_some());

    fs::remove_file(&record).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &record).unwrap();
    server_cmd(&server, "status")
        .run()
        .code(1)
        .stderr_has("it is a symbolic link")
        .stderr_has("remove the link");
    // `server up` reads it too, for the settings no flag names.
    let passwd = fs::read("/etc/passwd").unwrap();
    server
        .up()
        .run()
        .code(1)
        .stderr_has("it is a symbolic link");
    assert_eq!(fs::read("/etc/passwd").unwrap(), passwd);
    fs::remove_file(&record).unwrap();
    server.up().run().success();
    assert!(fs::symlink_metadata(&record).unwrap().is_file());
}

#[test]
fn setup_server_without_flags_keeps_the_recorded_broker() {
    if !docker::available() {
        return;
    }
    let server = Server::new("remember-setup");
    server.up().run().success();
    let id = container_id(&server.name);
    let client = random_device_id().unwrap();
    let run = wott()
        .cert_dir(&server.certs.dir())
        .arg("--server-dir")
        .arg(server.dir())
        .args(["setup", "server", "--yes", "--json", "--allow", &client])
        .run();
    run.success();
    assert_eq!(run.json()["server"]["container"], server.name.as_str());
    assert_eq!(container_id(&server.name), id);
}
