//! A renewal and an ACL reload under `server watch`, with 100 clients
//! subscribed to a real Mosquitto in the managed container: none is
//! dropped, every one receives the messages published afterwards, and the
//! broker serves the renewed certificate. (docs/performance.md measures the
//! same with 1,000 clients.)

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::deliveries::{Conn, connect};
use support::server::Server;
use support::watch::{WatchProcess, agent_renews};
use support::{CertFixture, DeviceRequest, docker, random_device_id};

const CLIENTS: usize = 100;
const TOPIC: &str = "wott/load";
const SOON: Duration = Duration::from_secs(20);

async fn publish(publisher: &Conn, payload: &str) {
    publisher
        .publish_all(&[TOPIC.to_string()], |_| payload.to_string())
        .await;
}

async fn all_receive(subscribers: &[Conn], payload: &str) {
    for (i, s) in subscribers.iter().enumerate() {
        assert!(
            s.receives(payload, SOON).await,
            "subscriber {i} did not receive {payload:?} (connection: {:?})",
            s.error()
        );
    }
}

fn none_dropped(subscribers: &[Conn]) {
    let dropped: Vec<(usize, String)> = subscribers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.error().map(|e| (i, e)))
        .collect();
    assert!(
        dropped.is_empty(),
        "{} of {CLIENTS} dropped: {dropped:?}",
        dropped.len()
    );
}

#[test]
fn a_renewal_and_an_acl_reload_drop_none_of_100_subscribers() {
    if !docker::available() {
        return;
    }
    // Clients connect to 127.0.0.1 by address: the server's certificate names it.
    let certs = CertFixture::with(|r| r.ip_address([127, 0, 0, 1].into()));
    let server = Server::with_certs("watch-load", certs);
    server.up().run().success();
    let client_id = random_device_id().unwrap();
    let client = server
        .certs
        .ca
        .issue(&DeviceRequest::new(&client_id))
        .unwrap();
    let acl_file = server.path("permissions.acl");
    support::wott()
        .arg("--server-dir")
        .arg(server.dir())
        .args(["acl", "--acl-file"])
        .arg(&acl_file)
        .args(["allow", &client_id, TOPIC, "--access", "readwrite"])
        .run()
        .success();
    let mut watch = WatchProcess::start(&server, &[]);
    watch.wait_for("current", SOON);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let publisher = connect(server.port, &client, "load-publisher").await;
        let mut subscribers = Vec::new();
        for i in 0..CLIENTS {
            let s = connect(server.port, &client, &format!("load-{i}")).await;
            s.subscribe_all(&[TOPIC.to_string()]).await;
            subscribers.push(s);
        }
        publish(&publisher, "before").await;
        all_receive(&subscribers, "before").await;

        let renewed = server
            .certs
            .ca
            .issue(&DeviceRequest::new(server.id()).ip_address([127, 0, 0, 1].into()))
            .unwrap();
        agent_renews(&server.certs.dir(), &renewed, Duration::from_millis(20));
        watch.wait_for("renewed", SOON);
        publish(&publisher, "after-renewal").await;
        all_receive(&subscribers, "after-renewal").await;
        none_dropped(&subscribers);

        let mut acl = std::fs::read(&acl_file).unwrap();
        acl.extend_from_slice(b"\n# reviewed\n");
        std::fs::write(&acl_file, acl).unwrap();
        watch.wait_for("acl-reloaded", SOON);
        publish(&publisher, "after-acl").await;
        all_receive(&subscribers, "after-acl").await;
        none_dropped(&subscribers);

        // A client that connects now gets the renewed certificate.
        let late = connect(server.port, &client, "load-late").await;
        assert!(late.error().is_none());
    });
    server.cmd("status").run().code(0);
}
