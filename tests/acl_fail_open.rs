//! The security review's critical finding, replayed on the real broker: one
//! line Mosquitto refuses in a hand-edited permissions.acl, plus a reload,
//! makes Mosquitto 2.0 enforce no ACL at all. No command of the tool may
//! send that reload, and `server status` must notice a broker that got one
//! from elsewhere.
//!
//! The witness is a device with no grant at all: `check --roundtrip` on a
//! topic it was never granted gets its own message back only when the broker
//! enforces nothing (exit 0); while the ACL holds, the message is dropped
//! (exit 8).

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::server::Server;
use support::{docker, wott};

fn acl(server: &Server) -> PathBuf {
    server.path("permissions.acl")
}

fn allow(server: &Server, device: &str, topic: &str) -> support::Run {
    wott()
        .cert_dir(&server.certs.dir())
        .args(["acl", "--acl-file"])
        .arg(acl(server))
        .args(["allow", device, topic, "--access", "readwrite"])
        .run()
}

#[test]
fn no_command_reloads_a_broken_acl_and_status_sees_an_open_broker() {
    if !docker::available() {
        return;
    }
    let server = Server::new("failopen");
    server.up().run().success();
    let granted = server.new_device();
    let stranger = server.new_device();
    allow(&server, &granted.id, "wott/temperature")
        .success()
        .stdout_has("the change is in force");
    assert_eq!(granted.roundtrip(&server, "wott/temperature"), 0);
    assert_eq!(
        stranger.roundtrip(&server, "secret/x"),
        8,
        "no grant, no message"
    );

    // A hand edit with a typo Mosquitto refuses.
    let mut text = std::fs::read(acl(&server)).unwrap();
    text.extend_from_slice(b"user typo\ntopic sometimes secret/#\n");
    std::fs::write(acl(&server), &text).unwrap();

    // acl allow writes its own edit, withholds the reload, and says why.
    let third = server.new_device();
    let run = allow(&server, &third.id, "wott/temperature");
    run.code(1)
        .stderr_has("not reloading the broker in")
        .stderr_has("permissions.acl:")
        .stderr_has("enforces no ACL at all")
        .stderr_has("acl validate --acl-file");
    assert!(String::from_utf8_lossy(&std::fs::read(acl(&server)).unwrap()).contains(&third.id));
    assert_eq!(stranger.roundtrip(&server, "secret/x"), 8);

    // server reload refuses before it changes anything.
    let before = std::fs::read(acl(&server)).unwrap();
    server
        .cmd("reload")
        .run()
        .code(1)
        .stderr_has("not reloading the broker in");
    assert_eq!(std::fs::read(acl(&server)).unwrap(), before);
    assert_eq!(stranger.roundtrip(&server, "secret/x"), 8);

    // server up after a renewal would reload: refused as well.
    server.renew_certificate();
    server
        .up()
        .run()
        .code(1)
        .stderr_has("not reloading the broker in");
    assert_eq!(stranger.roundtrip(&server, "secret/x"), 8);

    // The wizard grants through the same door.
    let fourth = server.new_device();
    wott()
        .cert_dir(&server.certs.dir())
        .arg("--server-dir")
        .arg(server.dir())
        .args(["setup", "server", "--yes", "--allow", &fourth.id])
        .args([
            "--image",
            server.image(),
            "--bind",
            "127.0.0.1",
            "--name",
            &server.name,
        ])
        .args(["--port", &server.port.to_string()])
        .run()
        .code(1)
        .stderr_has("not reloading the broker in");
    assert_eq!(stranger.roundtrip(&server, "secret/x"), 8);
    // The broker keeps its last good rules, older than the file: drift.
    server
        .cmd("status")
        .run()
        .code(12)
        .stdout_has("after the broker last loaded it");

    // SIGHUP from elsewhere opens the broker; status says so, loudly.
    let out = Command::new("docker")
        .args(["kill", "--signal", "HUP", &server.name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        stranger.roundtrip(&server, "secret/x"),
        0,
        "Mosquitto 2.0 with a refused ACL after a reload enforces nothing"
    );
    let status = server.cmd("status").run();
    status
        .code(1)
        .stdout_has("enforces NO ACL")
        .stderr_has("enforces NO ACL")
        .stderr_has("server reload --name");
    let json = server.cmd("status").arg("--json").run();
    json.code(1);
    assert!(json.json()["acl_open"].is_array(), "{}", json.stdout);

    // Fixed by hand, a reload through the tool closes it again.
    let now = String::from_utf8(std::fs::read(acl(&server)).unwrap()).unwrap();
    std::fs::write(
        acl(&server),
        now.replace("user typo\ntopic sometimes secret/#\n", ""),
    )
    .unwrap();
    server.cmd("reload").run().success();
    server.cmd("status").run().success();
    assert_eq!(stranger.roundtrip(&server, "secret/x"), 8);
}
