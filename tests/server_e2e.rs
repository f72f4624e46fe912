//! The tutorial, end to end, against the real Docker engine: a server whose
//! key is the agent's (root-owned, 0600) runs the broker with `server up`; a
//! client granted with `acl allow` gets messages through `check` and through
//! `mosquitto_sub` / `mosquitto_pub` by the server's device ID; `acl revoke`
//! stops delivery without a manual reload; a second `up` changes nothing;
//! then `status`, `logs`, `reload`, `down`.
//!
//! The clients reach the server by name through a hosts file that
//! `wott-mqtt hosts add --hosts-file` writes, bind-mounted over /etc/hosts in
//! a private mount namespace (`unshare --mount`), so the machine's own
//! /etc/hosts is never touched.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::mosquitto::Broker;
use support::server::{Device, Server, owner_and_mode, roundtrip_check};
use support::{docker, is_root, skip_without, wott};

const TOPIC: &str = "wott/temperature";

struct Client {
    _root: tempfile::TempDir,
    id: String,
    certs: PathBuf,
    hosts: PathBuf,
}

impl Client {
    /// A device from the same CA as the server, and an empty hosts file.
    fn new(server: &Server) -> Client {
        let Device { root, id, certs } = server.new_device();
        let hosts = root.path().join("hosts");
        std::fs::write(&hosts, "127.0.0.1\tlocalhost\n").unwrap();
        Client {
            id,
            certs,
            hosts,
            _root: root,
        }
    }

    fn path(&self, name: &str) -> String {
        self.certs.join(name).display().to_string()
    }

    /// `mosquitto_sub`/`mosquitto_pub` ARGS by the server's device ID, in a
    /// mount namespace where /etc/hosts is this client's hosts file.
    fn mosquitto(&self, tool: &str, server: &Server, args: &[&str]) -> Command {
        let mut command = Command::new("unshare");
        command
            .args([
                "--mount",
                "sh",
                "-c",
                r#"mount --bind "$0" /etc/hosts && exec "$@""#,
            ])
            .arg(&self.hosts)
            .arg(tool)
            .args(["-h", server.id(), "-p", &server.port.to_string()])
            .args(["--cafile", &self.path("ca.crt")])
            .args(["--cert", &self.path("client.crt")])
            .args(["--key", &self.path("client.key")])
            .args(["-t", TOPIC])
            .args(args);
        command
    }

    /// Subscribes for one message, publishes until it arrives or `within`
    /// passes; returns what the subscriber printed and its exit status.
    fn pub_sub(&self, server: &Server, payload: &str, within: Duration) -> Output {
        let seconds = within.as_secs().to_string();
        let sub: Child = self
            .mosquitto(
                "mosquitto_sub",
                server,
                &["-C", "1", "-W", &seconds, "-i", "e2e-sub"],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + within;
        let sub_pid = sub.id().to_string();
        while Instant::now() < deadline && Path::new(&format!("/proc/{sub_pid}")).exists() {
            let out = self
                .mosquitto("mosquitto_pub", server, &["-m", payload, "-i", "e2e-pub"])
                .output()
                .unwrap();
            assert!(out.status.success(), "mosquitto_pub: {out:?}");
            if is_zombie(&sub_pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        sub.wait_with_output().unwrap()
    }

    fn check(&self, server: &Server) -> support::Wott {
        roundtrip_check(&self.certs, server, TOPIC)
    }
}

fn is_zombie(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2) == Some("Z"))
        .unwrap_or(true)
}

fn acl(server: &Server, args: &[&str]) -> support::Run {
    wott()
        .cert_dir(&server.certs.dir())
        .arg("--server-dir")
        .arg(server.dir())
        .arg("acl")
        .args(args)
        .run()
}

#[test]
fn the_tutorial_end_to_end() {
    if !docker::available() || !Broker::available() {
        return;
    }
    if skip_without(
        "root, for a private mount namespace (unshare --mount)",
        is_root(),
    ) {
        return;
    }
    let server = Server::new("e2e");
    // The agent's key: root's, mode 0600. Mounted as is, Mosquitto could not read it.
    assert_eq!(owner_and_mode(&server.certs.path("client.key")), (0, 0o600));

    let up = server.up().arg("--json").run();
    up.success();
    let up = up.json();
    assert_eq!(up["changed"], true);
    assert_eq!(up["ready"]["served"]["common_name"], server.id());

    let client = Client::new(&server);
    wott()
        .args(["hosts", "add", server.id(), "127.0.0.1", "--hosts-file"])
        .arg(&client.hosts)
        .run()
        .success();

    // Not granted yet: connected and subscribed, but nothing arrives.
    client.check(&server).args(["--wait", "2"]).run().code(8);

    acl(
        &server,
        &["allow", &client.id, TOPIC, "--access", "readwrite"],
    )
    .success()
    .stdout_has(&format!("reloaded: the broker in {}", server.name));
    client.check(&server).run().success();
    let got = client.pub_sub(&server, "21.5", Duration::from_secs(15));
    assert!(got.status.success(), "mosquitto_sub: {got:?}");
    assert_eq!(String::from_utf8_lossy(&got.stdout), "21.5\n");

    // Revoked: delivery stops, with no manual reload.
    let revoke = acl(&server, &["revoke", &client.id, "--json"]);
    revoke.success();
    assert_eq!(revoke.json()["reloaded"], serde_json::json!([server.name]));
    client.check(&server).args(["--wait", "2"]).run().code(8);
    let got = client.pub_sub(&server, "22.0", Duration::from_secs(3));
    assert!(
        !got.status.success(),
        "a revoked client still receives: {got:?}"
    );
    assert_eq!(String::from_utf8_lossy(&got.stdout), "");

    // `--no-reload` edits the file and leaves the broker alone.
    let allow = acl(
        &server,
        &["allow", &client.id, TOPIC, "--no-reload", "--json"],
    );
    allow.success();
    assert_eq!(allow.json()["reloaded"], serde_json::json!([]));
    client.check(&server).args(["--wait", "2"]).run().code(8);

    // `server reload` applies it.
    server.cmd("reload").run().success();
    client.check(&server).run().success();

    let again = server.up().arg("--json").run();
    again.success();
    assert_eq!(again.json()["changed"], false);

    let status = server.cmd("status").arg("--json").run();
    status.success();
    assert_eq!(status.json()["served"]["common_name"], server.id());
    server
        .cmd("logs")
        .run()
        .success()
        .stdout_has(&format!("u'{}'", client.id))
        .stdout_has("Reloading config.");
    server.cmd("down").run().success();
    assert_eq!(server.inspect("{{.Id}}"), None);
    server.cmd("status").run().code(1);
}
