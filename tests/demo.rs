//! `demo` end to end on the real Docker engine, with the local test image:
//! it passes, and leaves nothing behind (no container, no temp folder),
//! also when it fails or is interrupted; `--keep` leaves both and the
//! command it prints removes them; without an engine or an image it says
//! what to do. Run by root and, through setpriv, by an unprivileged member
//! of the socket's group, where the broker runs as that user.
//!
//! Each test gives the demo its own TMPDIR, so what is left behind is
//! exactly what is in that folder, and the containers whose server dir
//! label lies in it.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::server::inspect;
use support::{Run, docker, is_root, wott, wott_as};

const NOBODY: u32 = 65534;

/// A TMPDIR of the demo's own, owned by `uid`.
struct Tmp {
    dir: tempfile::TempDir,
}

impl Tmp {
    fn new() -> Tmp {
        Tmp {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn owned_by(uid: u32) -> Tmp {
        let tmp = Tmp::new();
        std::os::unix::fs::chown(tmp.path(), Some(uid), Some(uid)).unwrap();
        tmp
    }

    fn path(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).unwrap()
    }

    fn entries(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    /// Demo containers whose server dir lies in this TMPDIR.
    fn containers(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args([
                "ps",
                "-a",
                "--filter",
                "name=wott-mqtt-demo-",
                "--format",
                "{{.Names}}\t{{.Label \"org.wott-mqtt.server-dir\"}}",
            ])
            .output()
            .unwrap();
        let root = self.path().display().to_string();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(_, dir)| dir.starts_with(&root))
            .map(|(name, _)| name.to_string())
            .collect()
    }

    #[track_caller]
    fn assert_nothing_left(&self, run: &Run) {
        assert_eq!(self.containers(), Vec::<String>::new(), "{run:?}");
        assert_eq!(self.entries(), Vec::<PathBuf>::new(), "{run:?}");
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        for name in self.containers() {
            support::server::remove_container(&name);
        }
    }
}

fn demo(tmp: &Tmp) -> support::Wott {
    wott().env("TMPDIR", tmp.path()).arg("demo")
}

/// Runs a command line the demo printed, with this build first in PATH.
fn sh(line: &str, as_user: Option<(u32, u32)>) -> std::process::Output {
    let bin_dir = support::bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = match as_user {
        Some((uid, group)) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                &format!("--groups={group}"),
                "--",
                "sh",
                "-c",
                line,
            ]);
            c
        }
        None => {
            let mut c = Command::new("sh");
            c.args(["-c", line]);
            c
        }
    };
    command.env("PATH", path).env_remove("DOCKER_HOST");
    let out = command.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "$ {line}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn the_tutorial_passes_and_nothing_is_left_behind() {
    if !docker::available() {
        return;
    }
    let tmp = Tmp::new();
    let run = demo(&tmp).args(["--image", &docker::test_image()]).run();
    run.success()
        .stdout_has("✓ 1. The server device's identity (the WoTT agent would have enrolled it)")
        .stdout_has("✓ 4. Grant the client in permissions.acl")
        .stdout_has("✓ 5. Start Mosquitto")
        .stdout_has("✓ 6. The client connects, subscribes, publishes, receives")
        .stdout_has("our probe came back")
        .stdout_has("on the server: sudo wott-mqtt acl allow <client-id> wott/temperature")
        .stdout_has("on the server: sudo wott-mqtt server up")
        .stdout_has("on the client: sudo wott-mqtt hosts add <server-id> <server-ip>")
        .stdout_has("on the client: sudo wott-mqtt check --server <server-id> --roundtrip")
        .stdout_has("The tutorial works on this machine")
        .stdout_has("Removed the container wott-mqtt-demo-");
    // Progress goes to stderr, one line per step without a terminal.
    run.stderr_has("[5/6] Start Mosquitto");
    tmp.assert_nothing_left(&run);
}

#[test]
fn json_is_one_document_with_the_steps_ids_and_port() {
    if !docker::available() {
        return;
    }
    let tmp = Tmp::new();
    let run = demo(&tmp)
        .args(["--json", "--image", &docker::test_image()])
        .run();
    run.success();
    let json = run.json();
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["passed"], true);
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6);
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step["number"], i + 1);
        assert_eq!(step["ok"], true, "{step}");
        assert!(step["real_world"].as_str().unwrap().contains("wott-mqtt "));
    }
    let id = |key: &str| json[key].as_str().unwrap().to_string();
    assert!(id("server_id").ends_with(".d.wott.local"));
    assert!(id("client_id").ends_with(".d.wott.local"));
    assert_ne!(id("server_id"), id("client_id"));
    assert!(id("container").starts_with("wott-mqtt-demo-"));
    assert!(json["container_id"].is_string());
    assert!(json["port"].as_u64().unwrap() > 0);
    assert_eq!(json["check"]["message"]["roundtrip"], true);
    assert_eq!(json["check"]["device_id"], json["client_id"]);
    assert_eq!(json["cleanup"]["container_removed"], true);
    assert_eq!(json["cleanup"]["workdir_removed"], true);
    assert_eq!(
        json["run_as"]["kind"],
        if is_root() { "image" } else { "user" }
    );
    assert!(
        json["workdir"]
            .as_str()
            .unwrap()
            .starts_with(&tmp.path().display().to_string())
    );
    tmp.assert_nothing_left(&run);
}

#[test]
fn keep_leaves_the_broker_and_its_files_and_the_printed_command_removes_them() {
    if !docker::available() {
        return;
    }
    let tmp = Tmp::new();
    let run = demo(&tmp)
        .args(["--keep", "--image", &docker::test_image()])
        .run();
    run.success().stdout_has("Kept, as --keep asked:");
    let containers = tmp.containers();
    assert_eq!(containers.len(), 1, "{run:?}");
    assert_eq!(
        inspect(&containers[0], "{{.State.Running}}").as_deref(),
        Some("true")
    );
    let workdir = tmp.entries();
    assert_eq!(workdir.len(), 1);
    for part in [
        "server/certs/client.key",
        "server/mosquitto/permissions.acl",
        "client/certs/client.crt",
    ] {
        assert!(workdir[0].join(part).is_file(), "{part}");
    }

    // The printed check works against what was kept.
    let line_after = |heading: &str| {
        let mut lines = run.stdout.lines().skip_while(|l| *l != heading);
        lines.nth(1).unwrap().trim().to_string()
    };
    let check = line_after("Try:");
    assert!(check.contains(" check --server "), "{check}");
    let out = sh(&check, None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("our probe came back"));

    let remove = line_after("Remove it all:");
    assert!(
        remove.contains("server down --purge --name wott-mqtt-demo-"),
        "{remove}"
    );
    sh(&remove, None);
    tmp.assert_nothing_left(&run);
}

#[test]
fn without_an_engine_it_says_so_and_creates_nothing() {
    let tmp = Tmp::new();
    let run = demo(&tmp).env("DOCKER_HOST", "tcp://127.0.0.1:1").run();
    run.code(1).error(
        "no container engine answered; tried tcp://127.0.0.1:1 (connection refused)",
        "start the engine DOCKER_HOST points at",
    );
    assert_eq!(run.stdout, "", "no step ran");
    tmp.assert_nothing_left(&run);

    let json = demo(&tmp)
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .arg("--json")
        .run();
    json.code(1);
    let json = json.json();
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["passed"], false);
    assert_eq!(json["steps"], Value::Array(Vec::new()));
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no container engine")
    );
    assert!(
        json["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("DOCKER_HOST")
    );
    assert_eq!(tmp.entries(), Vec::<PathBuf>::new());
}

#[test]
fn a_user_who_may_not_use_docker_is_told_about_the_docker_group() {
    if !support::root_available("to run the demo as nobody") {
        return;
    }
    if !docker::available() {
        return;
    }
    let tmp = Tmp::owned_by(NOBODY);
    let run = wott_as(NOBODY, NOBODY, &[])
        .env("TMPDIR", tmp.path())
        .arg("demo")
        .run();
    run.code(1)
        .error("permission denied", "add your user to the `docker` group");
    tmp.assert_nothing_left(&run);
}

#[test]
fn a_missing_image_that_cannot_be_pulled_points_to_image_and_docker_load() {
    if !docker::available() {
        return;
    }
    let tmp = Tmp::new();
    let image = "wott-mqtt-test/no-such-image:0";
    let run = demo(&tmp).args(["--image", image]).run();
    run.code(1)
        .error(
            &format!("the image {image} is not on this machine, and pulling it failed"),
            "wott-mqtt server image",
        )
        .stderr_has("docker load -i")
        .stdout_has("✗ Stopped at step 5.");
    tmp.assert_nothing_left(&run);
}

#[test]
fn a_broker_that_dies_is_explained_and_removed() {
    if !docker::available() {
        return;
    }
    let image = docker::test_image_with_cmd(
        "exits",
        r#"["/usr/sbin/mosquitto", "-c", "/no/such/mosquitto.conf"]"#,
    );
    let tmp = Tmp::new();
    let run = demo(&tmp).args(["--json", "--image", &image]).run();
    run.code(1);
    let json = run.json();
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("it rejects its configuration"), "{json}");
    assert!(
        message.contains("Unable to open config file /no/such/mosquitto.conf"),
        "the broker's own words are quoted: {json}"
    );
    assert_eq!(json["steps"][4]["ok"], false);
    assert_eq!(json["cleanup"]["container_removed"], true);
    tmp.assert_nothing_left(&run);
}

#[test]
fn ctrl_c_removes_what_it_made_and_exits_130() {
    if !docker::available() {
        return;
    }
    // A broker that runs but never listens on 8883: the demo waits for it.
    let image = docker::test_image_with_cmd("silent", r#"["/usr/sbin/mosquitto", "-p", "1884"]"#);
    let tmp = Tmp::new();
    let mut child = Command::new(support::bin())
        .env("TMPDIR", tmp.path())
        .env_remove("DOCKER_HOST")
        .args(["demo", "--image", &image])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let running = loop {
        let running = tmp
            .containers()
            .into_iter()
            .find(|name| inspect(name, "{{.State.Running}}").as_deref() == Some("true"));
        if running.is_some() || started.elapsed() > Duration::from_secs(20) {
            break running;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(running.is_some(), "the demo's container never ran");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = child.stdin.take();
    let output = child.wait_with_output().unwrap();
    let run = Run {
        line: "wott-mqtt demo (then SIGINT)".into(),
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    run.code(130)
        .stdout_has("Interrupted at step 5.")
        .stdout_has("Removed the container");
    tmp.assert_nothing_left(&run);
}

/// The demo as nobody in the socket's group: no root anywhere.
fn as_docker_user(tmp: &Tmp) -> Option<support::Wott> {
    if !support::root_available("to run the demo as an unprivileged user") {
        return None;
    }
    if !docker::available() {
        return None;
    }
    let group = docker::socket_group_or_skip()?;
    Some(
        wott_as(NOBODY, NOBODY, &[group])
            .env("TMPDIR", tmp.path())
            .arg("demo"),
    )
}

#[test]
fn a_docker_group_user_runs_the_demo_without_root() {
    let tmp = Tmp::owned_by(NOBODY);
    let Some(demo) = as_docker_user(&tmp) else {
        return;
    };
    let run = demo
        .args(["--json", "--image", &docker::test_image()])
        .run();
    run.success();
    let json = run.json();
    assert_eq!(json["passed"], true);
    assert_eq!(json["run_as"]["kind"], "user");
    assert_eq!(json["run_as"]["uid"], NOBODY);
    assert!(
        json["steps"][4]["detail"]
            .as_str()
            .unwrap()
            .contains("uid 65534 (you)")
    );
    tmp.assert_nothing_left(&run);
}

#[test]
fn a_docker_group_users_kept_demo_runs_as_that_user_and_they_can_remove_it() {
    let tmp = Tmp::owned_by(NOBODY);
    let Some(demo) = as_docker_user(&tmp) else {
        return;
    };
    let group = docker::socket_group().unwrap();
    let run = demo
        .args(["--json", "--keep", "--image", &docker::test_image()])
        .run();
    run.success();
    let json = run.json();
    let name = json["container"].as_str().unwrap();
    assert_eq!(
        inspect(name, "{{.Config.User}}").as_deref(),
        Some("65534:65534")
    );
    let server_dir = PathBuf::from(json["server_dir"].as_str().unwrap());
    let owner = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(owner(&server_dir.join("certs")), (NOBODY, NOBODY, 0o700));
    assert_eq!(
        owner(&server_dir.join("certs/client.key")),
        (NOBODY, NOBODY, 0o600)
    );
    assert_eq!(owner(&server_dir.join("data")).0, NOBODY);
    // Mosquitto, as that user, writes its log into the server dir.
    let log = std::fs::read_to_string(server_dir.join("log/mosquitto.log")).unwrap();
    assert!(log.contains("mosquitto version"), "{log}");
    assert!(log.contains("New client connected"), "{log}");

    let remove = json["cleanup"]["commands"][0].as_str().unwrap();
    sh(remove, Some((NOBODY, group)));
    tmp.assert_nothing_left(&run);
}

/// Whether the engine has `eclipse-mosquitto:2` (then the demo runs it).
fn official_image_present() -> bool {
    docker::image_id("eclipse-mosquitto:2").is_some()
}

#[test]
fn without_image_it_builds_one_from_this_machines_mosquitto_when_nothing_can_be_pulled() {
    if !docker::available() {
        return;
    }
    let tmp = Tmp::new();
    let run = demo(&tmp).arg("--json").run();
    run.success();
    let json = run.json();
    assert_eq!(json["passed"], true);
    if official_image_present() {
        assert_eq!(json["image"]["ref"], "eclipse-mosquitto:2");
        assert_eq!(json["image"]["source"], "present");
    } else {
        assert_eq!(json["image"]["ref"], "wott-mqtt/mosquitto:2.0.11-local");
        let source = json["image"]["source"].as_str().unwrap();
        assert!(source == "built" || source == "present", "{source}");
        run.stderr_has("no registry answered for eclipse-mosquitto:2, so the broker runs wott-mqtt/mosquitto:2.0.11-local");
        let labels = inspect(
            "wott-mqtt/mosquitto:2.0.11-local",
            "{{index .Config.Labels \"org.wott-mqtt.image.built-from\"}}",
        );
        assert_eq!(labels.as_deref(), Some("/usr/sbin/mosquitto"));
    }
    tmp.assert_nothing_left(&run);
}

#[test]
fn without_image_or_a_mosquitto_to_build_one_it_names_both_ways_out_and_leaves_nothing() {
    if !docker::available() || official_image_present() || !is_root() {
        return;
    }
    // No Mosquitto on this machine: /usr/sbin/mosquitto hidden in a mount namespace.
    let tmp = Tmp::new();
    let run = docker::wott_without_mosquitto()
        .env("TMPDIR", tmp.path())
        .args(["demo", "--json"])
        .run();
    run.code(1);
    let json = run.json();
    assert_eq!(json["passed"], false);
    assert!(json["image"].is_null());
    let error = json["error"]["message"].as_str().unwrap();
    assert!(
        error.starts_with(
            "the image eclipse-mosquitto:2 is not on this machine, no registry answered ("
        ),
        "{error}"
    );
    assert!(
        error.contains(
            "no local image can be built: there is no Mosquitto on this machine to build an \
             image from (looked for "
        ),
        "{error}"
    );
    let hint = json["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("apt-get install mosquitto"), "{hint}");
    assert!(hint.contains("docker load -i mosquitto.tar"), "{hint}");
    assert!(!hint.contains("sudo "), "root needs no sudo: {hint}");
    tmp.assert_nothing_left(&run);
    // No image was built from anything.
    let out = Command::new("docker")
        .args([
            "images",
            "-q",
            "--filter",
            "label=org.wott-mqtt.image.built-from=/dev/null",
        ])
        .output()
        .unwrap();
    assert!(out.stdout.is_empty());
}
