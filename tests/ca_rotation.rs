//! A new CA: Mosquitto reloads its certificate and key on SIGHUP but reads
//! `cafile` only at start, so after the agent brings a new `ca.crt` a
//! reload alone would go on verifying clients against the old CA, and the
//! devices of the new one could not connect. `server reload` and `server
//! up` restart the broker then (and only then), on the real engine.

#![allow(clippy::unwrap_used)]

mod support;

use support::server::{Device, Server};
use support::{Authority, DeviceRequest, docker, wott};

/// A client of `ca`, granted `wott/#` on `server`'s broker.
fn device_of(server: &Server, ca: &Authority) -> Device {
    let device = server.device_of(ca);
    wott()
        .cert_dir(&server.certs.dir())
        .arg("--server-dir")
        .arg(server.dir())
        .args([
            "acl",
            "allow",
            &device.id,
            "wott/#",
            "--access",
            "readwrite",
        ])
        .run()
        .success();
    device
}

/// The agent's identity for the server's same device ID, from `ca`.
fn rotate(server: &Server, ca: &Authority) {
    ca.issue(&DeviceRequest::new(server.id()))
        .unwrap()
        .write_to(&server.certs.dir())
        .unwrap();
}

#[test]
fn a_new_ca_restarts_the_broker_so_its_devices_connect() {
    if !docker::available() {
        return;
    }
    let server = Server::new("ca-rotation");
    server.up().run().success();
    let old = device_of(&server, &server.certs.ca);
    assert_eq!(old.roundtrip(&server, "wott/a"), 0);

    // A renewal from the same CA is a reload, as before: no restart.
    server.renew_certificate();
    server
        .cmd("reload")
        .run()
        .success()
        .stdout_has("Reloaded the broker in");
    assert_eq!(old.roundtrip(&server, "wott/a"), 0);

    // A new CA through `server reload`: a restart, said, and the new CA's
    // devices get in while the old CA's are refused at the TLS stage.
    let second = Authority::new("WoTT rotated CA").unwrap();
    rotate(&server, &second);
    let new = device_of(&server, &second);
    server
        .cmd("reload")
        .run()
        .success()
        .stdout_has("Restarted (for the new ca.crt) the broker in")
        .stderr_has("ca.crt changed: Mosquitto reads its CA only at start");
    assert_eq!(new.roundtrip(&server, "wott/b"), 0);
    assert_eq!(old.roundtrip(&server, "wott/b"), 6);

    // And through `server up` (what `setup server` and a re-run do).
    let third = Authority::new("WoTT third CA").unwrap();
    rotate(&server, &third);
    let newest = device_of(&server, &third);
    server
        .up()
        .run()
        .success()
        .stderr_has("ca.crt changed: restarting the broker in");
    assert_eq!(newest.roundtrip(&server, "wott/c"), 0);
    assert_eq!(new.roundtrip(&server, "wott/c"), 6);
    server.cmd("status").run().code(0);
}
