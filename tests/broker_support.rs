//! The test broker itself works with the tutorial's setup, using only
//! Mosquitto's own clients: the baseline every other broker test builds on.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use support::mosquitto::{Broker, BrokerConfig};
use support::{Authority, DeviceRequest, random_device_id};

#[test]
fn mosquitto_clients_exchange_a_message_over_mtls() {
    if !Broker::available()
        || support::skip_without(
            "mosquitto_sub",
            Command::new("mosquitto_sub").arg("--help").output().is_ok(),
        )
    {
        return;
    }
    let ca = Authority::new("CA").unwrap();
    let server = ca
        .issue(&DeviceRequest::new(&random_device_id().unwrap()).ip_address([127, 0, 0, 1].into()))
        .unwrap();
    let client = ca
        .issue(&DeviceRequest::new(&random_device_id().unwrap()))
        .unwrap();
    let acl = format!("user {}\ntopic readwrite wott/#\n", client.device_id);
    let broker = Broker::start(&BrokerConfig::wott(&server, &acl));
    let certs = tempfile::tempdir().unwrap();
    client.write_to(certs.path()).unwrap();
    let port = broker.port.to_string();
    let tls = |cmd: &mut Command| {
        cmd.args(["-h", "127.0.0.1", "-p", &port, "--cafile"])
            .arg(certs.path().join("ca.crt"))
            .arg("--cert")
            .arg(certs.path().join("client.crt"))
            .arg("--key")
            .arg(certs.path().join("client.key"));
    };
    let mut publish = Command::new("mosquitto_pub");
    tls(&mut publish);
    publish.args(["-t", "wott/temperature", "-m", "21.5", "-r"]);
    let status = publish.status().unwrap();
    assert!(status.success(), "{}", broker.log());
    let mut subscribe = Command::new("mosquitto_sub");
    tls(&mut subscribe);
    subscribe.args(["-t", "wott/temperature", "-C", "1", "-W", "5"]);
    let out = subscribe.output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "21.5\n",
        "{}",
        broker.log()
    );
}
