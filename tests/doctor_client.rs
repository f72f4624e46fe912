//! `doctor`'s client checks against a real Mosquitto: the hosts entry for
//! the server's ID (missing, duplicated, pointing nowhere) and `check`'s
//! staged probe. Each fault is injected into a real hosts file or broker,
//! and the printed `hosts add` is run as printed (with the address filled
//! in where only the user can know it).

#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;

use support::doctor::{failures, finding, findings, fix, run_json};
use support::mosquitto::{Broker, BrokerConfig, ClosedPort};
use support::{Authority, DeviceIdentity, DeviceRequest, random_device_id, wott};

const FAILED: i32 = 13;

struct Client {
    ca: Authority,
    server: DeviceIdentity,
    root: tempfile::TempDir,
}

impl Client {
    fn new() -> Client {
        let ca = Authority::new("WoTT test CA").unwrap();
        let server = ca
            .issue(&DeviceRequest::new(&random_device_id().unwrap()))
            .unwrap();
        let root = tempfile::tempdir().unwrap();
        ca.issue(&DeviceRequest::new(&random_device_id().unwrap()))
            .unwrap()
            .write_to(&root.path().join("certs"))
            .unwrap();
        let client = Client { ca, server, root };
        client.hosts_file("127.0.0.1 localhost\n");
        client
    }

    fn id(&self) -> &str {
        &self.server.device_id
    }

    fn hosts(&self) -> PathBuf {
        self.root.path().join("hosts")
    }

    fn hosts_file(&self, text: &str) {
        std::fs::write(self.hosts(), text).unwrap();
    }

    /// The tutorial's broker, granting nothing (the probe stops at SUBACK).
    fn broker(&self) -> Broker {
        Broker::start(&BrokerConfig::wott(&self.server, "# nothing\n"))
    }

    fn doctor(&self, port: u16) -> support::Wott {
        support::doctor::doctor(
            &self.root.path().join("certs"),
            &self.root.path().join("no-server"),
            &self.hosts(),
        )
        .args(["--port", &port.to_string()])
    }

    /// A printed `hosts add`, with `ip` for the address only the user knows.
    fn run_hosts_add(&self, command: &str, ip: &str) {
        let line = command
            .trim_start_matches("sudo ")
            .replace("<server IP>", ip);
        let out = support::printed_command(&line).output().unwrap();
        assert!(out.status.success(), "{line}: {out:?}");
    }
}

#[test]
fn a_healthy_client_passes_for_every_server_the_hosts_file_maps() {
    if !Broker::available() {
        return;
    }
    let client = Client::new();
    let broker = client.broker();
    client.hosts_file(&format!(
        "127.0.0.1 localhost\n127.0.0.1 {} # wott-mqtt\n",
        client.id()
    ));
    let (_, doc) = run_json(client.doctor(broker.port), 0);
    assert_eq!(failures(&doc), Vec::<String>::new());
    assert_eq!(doc["roles"], serde_json::json!(["identity", "client"]));
    assert_eq!(doc["servers"], serde_json::json!([client.id()]));
    for code in [
        "client.hosts-missing",
        "client.hosts-duplicate",
        "client.probe",
    ] {
        let f = finding(&doc, code, "ok");
        assert_eq!(f["subject"], client.id());
    }
}

#[test]
fn a_missing_hosts_entry_fails_and_the_printed_hosts_add_repairs_it() {
    if !Broker::available() {
        return;
    }
    let client = Client::new();
    let broker = client.broker();
    let (_, doc) = run_json(
        client.doctor(broker.port).args(["--server", client.id()]),
        FAILED,
    );
    let f = finding(&doc, "client.hosts-missing", "failure");
    let command = fix(f);
    assert!(command.contains("hosts add --hosts-file"), "{command}");
    // Without an address to dial the probe cannot resolve the name either.
    finding(&doc, "client.probe", "failure");
    client.run_hosts_add(&command, "127.0.0.1");
    let (_, doc) = run_json(
        client.doctor(broker.port).args(["--server", client.id()]),
        0,
    );
    finding(&doc, "client.probe", "ok");
}

#[test]
fn two_addresses_for_the_server_fail_and_one_address_twice_warns() {
    if !Broker::available() {
        return;
    }
    let client = Client::new();
    let broker = client.broker();
    let id = client.id().to_string();
    client.hosts_file(&format!("127.0.0.1 {id}\n127.0.0.1 {id}\n"));
    let (_, doc) = run_json(client.doctor(broker.port), 0);
    let f = finding(&doc, "client.hosts-duplicate", "warning");
    assert!(f["found"].as_str().unwrap().contains("lines 1, 2"), "{f}");

    client.hosts_file(&format!("127.0.0.1 {id}\n127.0.0.2 {id}\n"));
    let (_, doc) = run_json(client.doctor(broker.port), FAILED);
    let f = finding(&doc, "client.hosts-duplicate", "failure");
    let command = fix(f);
    assert!(command.ends_with(&format!("{id} 127.0.0.1")), "{command}");
    client.run_hosts_add(&command, "127.0.0.1");
    let (_, doc) = run_json(client.doctor(broker.port), 0);
    finding(&doc, "client.hosts-duplicate", "ok");
    assert_eq!(
        std::fs::read_to_string(client.hosts())
            .unwrap()
            .matches(&id)
            .count(),
        1
    );
}

#[test]
fn an_address_that_refuses_connections_may_be_stale() {
    let client = Client::new();
    let closed = ClosedPort::new();
    client.hosts_file(&format!("127.0.0.1 {}\n", client.id()));
    let (_, doc) = run_json(client.doctor(closed.port), FAILED);
    let probe = finding(&doc, "client.probe", "failure");
    assert!(probe["found"].as_str().unwrap().contains("tcp"), "{probe}");
    let stale = finding(&doc, "client.hosts-stale", "warning");
    assert!(fix(stale).contains("hosts add"), "{stale}");
}

#[test]
fn a_broker_that_does_not_trust_this_device_fails_the_probe_with_checks_diagnosis() {
    if !Broker::available() {
        return;
    }
    let client = Client::new();
    let other = Authority::new("Another CA").unwrap();
    let mut config = BrokerConfig::wott(&client.server, "# nothing\n");
    config.client_ca_pem = Some(other.cert_pem());
    let broker = Broker::start(&config);
    client.hosts_file(&format!("127.0.0.1 {}\n", client.id()));
    let (_, doc) = run_json(client.doctor(broker.port), FAILED);
    let probe = finding(&doc, "client.probe", "failure");
    assert!(
        probe["found"]
            .as_str()
            .unwrap()
            .contains("the tls stage failed"),
        "{probe}"
    );
    assert!(probe["fix"].is_string(), "{probe}");
    let _ = &client.ca;
    // The check's own report is part of a bundle, not of the findings.
    assert!(findings(&doc, "client.probe").len() == 1);
    // And `check` says the same.
    let run = wott()
        .cert_dir(&client.root.path().join("certs"))
        .args([
            "check",
            "--server",
            client.id(),
            "--connect-to",
            "127.0.0.1",
        ])
        .args(["--port", &broker.port.to_string()])
        .run();
    run.code(6);
}

#[test]
fn a_hosts_file_that_cannot_be_read_fails_hosts_missing() {
    let client = Client::new();
    std::fs::remove_file(client.hosts()).unwrap();
    std::fs::create_dir(client.hosts()).unwrap();
    let closed = ClosedPort::new();
    let (_, doc) = run_json(
        client.doctor(closed.port).args(["--server", client.id()]),
        FAILED,
    );
    let f = finding(&doc, "client.hosts-missing", "failure");
    assert!(f["found"].as_str().unwrap().contains("hosts"), "{f}");
    assert!(findings(&doc, "client.hosts-duplicate").is_empty());
}

#[test]
fn a_typed_server_id_must_be_wott_shaped_and_a_fix_for_another_name_carries_any_id() {
    let client = Client::new();
    let upper = client
        .id()
        .to_uppercase()
        .replace(".D.WOTT.LOCAL", ".d.wott.local");
    let before = std::fs::read(client.hosts()).unwrap();
    client
        .doctor(1)
        .args(["--server", &upper])
        .run()
        .code(2)
        .stderr_has(&format!("did you mean {}?", client.id()));
    assert_eq!(std::fs::read(client.hosts()).unwrap(), before);

    let (_, doc) = run_json(
        client
            .doctor(1)
            .args(["--any-id", "--server", "broker.example.com"]),
        FAILED,
    );
    let command = fix(finding(&doc, "client.hosts-missing", "failure"));
    assert!(
        command.contains("--any-id broker.example.com <server IP>"),
        "{command}"
    );
    client.run_hosts_add(&command, "127.0.0.1");
    let hosts = std::fs::read_to_string(client.hosts()).unwrap();
    assert!(
        hosts.lines().any(|line| line
            .split_whitespace()
            .take(2)
            .eq(["127.0.0.1", "broker.example.com"])),
        "{hosts}"
    );
}
