//! `check` through the real binary against a real Mosquitto per test: every
//! fault support meets, each asserting the failing stage, the exit code and
//! that the message names the cause and the fix.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::mosquitto::{Broker, BrokerConfig, ClosedPort, libfaketime};
use support::{Authority, DeviceIdentity, DeviceRequest, Run, Wott, random_device_id, wott};

/// A CA, a server identity and a client identity from it, the client's cert
/// dir on disk: the tutorial's two devices.
struct Devices {
    ca: Authority,
    server: DeviceIdentity,
    client: DeviceIdentity,
    certs: tempfile::TempDir,
}

impl Devices {
    fn new() -> Self {
        Self::with_server(|r| r.ip_address([127, 0, 0, 1].into()))
    }

    /// The server's certificate request adjusted by `adjust` (it starts as
    /// the agent's: CN and DNS SAN = a fresh device ID).
    fn with_server(adjust: impl FnOnce(DeviceRequest) -> DeviceRequest) -> Self {
        let ca = Authority::new("WoTT test CA").unwrap();
        let server = ca
            .issue(&adjust(DeviceRequest::new(&random_device_id().unwrap())))
            .unwrap();
        let client = ca
            .issue(&DeviceRequest::new(&random_device_id().unwrap()))
            .unwrap();
        let certs = tempfile::tempdir().unwrap();
        client.write_to(certs.path()).unwrap();
        Devices {
            ca,
            server,
            client,
            certs,
        }
    }

    fn acl(&self, access: &str) -> String {
        format!("user {}\ntopic {access} wott/#\n", self.client.device_id)
    }

    /// The tutorial's broker (`tls_version tlsv1.2`, which Mosquitto 2 reads
    /// as the minimum, so TLS 1.3 is negotiated; client certificates
    /// required; CN as user name) granting this client `readwrite` on wott/#.
    fn broker(&self) -> Broker {
        Broker::start(&BrokerConfig::wott(&self.server, &self.acl("readwrite")))
    }

    /// `wott-mqtt check` as the client, dialling 127.0.0.1 and verifying the
    /// server's device ID.
    /// A broker whose certificate (`request`) another CA, named `ca_name`,
    /// issued; it trusts this device's CA for clients.
    fn broker_of(&self, ca_name: &str, request: DeviceRequest) -> Broker {
        let server = Authority::new(ca_name)
            .unwrap()
            .issue(&request)
            .unwrap()
            .trusting(&self.ca);
        Broker::start(&BrokerConfig::wott(&server, &self.acl("readwrite")))
    }

    fn check(&self, port: u16) -> Wott {
        wott()
            .arg("check")
            .cert_dir(self.certs.path())
            .args([
                "--server",
                &self.server.device_id,
                "--connect-to",
                "127.0.0.1",
            ])
            .args(["--port", &port.to_string()])
    }

    fn id(&self) -> &str {
        &self.client.device_id
    }
}

fn mosquitto_clients() -> bool {
    !support::skip_without(
        "mosquitto_sub and mosquitto_pub (apt-get install mosquitto-clients)",
        Command::new("mosquitto_pub").arg("--help").output().is_ok(),
    )
}

/// mosquitto_pub/sub with the same certificates, by IP (the server has an IP SAN).
fn mosquitto_client(program: &str, certs: &Path, port: u16) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--cafile"])
        .arg(certs.join("ca.crt"))
        .arg("--cert")
        .arg(certs.join("client.crt"))
        .arg("--key")
        .arg(certs.join("client.key"));
    cmd
}

/// Puts a retained message on `topic` as the device whose certs are in `certs`.
fn retain(certs: &Path, port: u16, topic: &str, message: &str, broker: &Broker) {
    let status = mosquitto_client("mosquitto_pub", certs, port)
        .args(["-t", topic, "-m", message, "-r"])
        .status()
        .unwrap();
    assert!(status.success(), "mosquitto_pub failed:\n{}", broker.log());
}

/// The stage lines' marks and names, e.g. `["✓ identity", "✗ tls"]`.
fn stages(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[track_caller]
fn assert_stages(run: &Run, expected: &[&str]) {
    assert_eq!(stages(run), expected, "\n{}\n{}", run.stdout, run.stderr);
}

const UP_TO_TLS: [&str; 4] = ["✓ identity", "✓ resolve", "✓ tcp", "✗ tls"];

// ---------------------------------------------------------------- success

#[test]
fn a_retained_message_proves_the_whole_path() {
    if !Broker::available() || !mosquitto_clients() {
        return;
    }
    let d = Devices::new();
    let broker = d.broker();
    retain(
        d.certs.path(),
        broker.port,
        "wott/temperature",
        "21.5",
        &broker,
    );
    let run = d.check(broker.port).args(["--wait", "2"]).run();
    run.success().stderr_is_empty();
    assert_stages(
        &run,
        &[
            "✓ identity",
            "✓ resolve",
            "✓ tcp",
            "✓ tls",
            "✓ connect",
            "✓ subscribe",
            "✓ message",
        ],
    );
    run.stdout_has(&format!("{} (", d.id()))
        .stdout_has("127.0.0.1 from --connect-to (not resolved); TLS verifies")
        .stdout_has("TLS 1.3, TLS13_")
        .stdout_has(&format!("server CN={}", d.server.device_id))
        .stdout_has("issued by CN=WoTT test CA")
        .stdout_has("wott/temperature granted QoS 0")
        .stdout_has("4 bytes on wott/temperature (retained)");
}

#[test]
fn json_is_one_document_with_every_stage() {
    if !Broker::available() || !mosquitto_clients() {
        return;
    }
    let d = Devices::new();
    let broker = d.broker();
    retain(
        d.certs.path(),
        broker.port,
        "wott/temperature",
        "21.5",
        &broker,
    );
    let run = d.check(broker.port).args(["--wait", "2", "--json"]).run();
    run.success();
    let doc = run.json();
    assert_eq!(doc["exit_code"], 0);
    let names: Vec<&str> = doc["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "identity",
            "resolve",
            "tcp",
            "tls",
            "connect",
            "subscribe",
            "message"
        ]
    );
    for stage in doc["stages"].as_array().unwrap() {
        assert_eq!(stage["ok"], true, "{stage}");
        assert!(stage["ms"].as_f64().unwrap() >= 0.0, "{stage}");
        assert!(stage["detail"].is_string(), "{stage}");
        assert!(
            stage["error"].is_null() && stage["hint"].is_null(),
            "{stage}"
        );
    }
    assert_eq!(doc["server_certificate"]["common_name"], d.server.device_id);
    assert_eq!(doc["tls"]["protocol"], "TLS 1.3");
    assert_eq!(doc["resolution"]["addresses"][0], "127.0.0.1");
    assert_eq!(doc["connected_to"], format!("127.0.0.1:{}", broker.port));
    assert_eq!(doc["message"]["payload"], "21.5");
    assert_eq!(doc["message"]["retained"], true);
    assert_eq!(doc["device_id"], d.id());
    assert!(doc.get("error").is_none());
}

#[test]
fn a_plain_subscribe_passes_but_says_it_proves_nothing() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let broker = d.broker();
    let run = d.check(broker.port).run();
    run.success();
    assert_eq!(stages(&run).last().unwrap(), "✓ subscribe");
    run.stdout_has("not proof of access: Mosquitto grants every SUBSCRIBE under acl_file")
        .stdout_has("use --wait or --roundtrip");
}

#[test]
fn roundtrip_publishes_a_probe_and_receives_it() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let broker = d.broker();
    for qos in ["0", "1", "2"] {
        let run = d
            .check(broker.port)
            .args(["--roundtrip", "--qos", qos])
            .run();
        run.success()
            .stdout_has("✓ message")
            .stdout_has("our probe came back")
            // Issue 16: it is a real message, and says so.
            .stdout_has("every subscriber of the topic received it too");
    }
    let run = d.check(broker.port).args(["--roundtrip", "--json"]).run();
    run.success();
    let payload = run.json()["message"]["payload"]
        .as_str()
        .unwrap()
        .to_string();
    let rest = payload.strip_prefix("wott-mqtt check probe ").unwrap();
    let (nonce, rest) = rest.split_once(' ').unwrap();
    assert!(
        nonce.len() >= 8 && nonce.bytes().all(|b| b.is_ascii_hexdigit()),
        "{payload}"
    );
    let at = rest.strip_prefix(&format!("from {} at ", d.id())).unwrap();
    assert!(at.starts_with("20") && at.ends_with('Z'), "{payload}");
}

#[test]
fn a_tls12_only_broker_and_the_environment_variables_work_too() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let mut config = BrokerConfig::wott(&d.server, &d.acl("readwrite"));
    config.max_tls_version = Some("TLSv1.2".into());
    let broker = Broker::start(&config);
    let run = wott()
        .args(["check", "--connect-to", "127.0.0.1", "--roundtrip"])
        .cert_dir(d.certs.path())
        .env("MQTT_SERVER", &d.server.device_id)
        .env("MQTT_PORT", broker.port.to_string())
        .env("MQTT_TOPIC", "wott/env")
        .run();
    run.success()
        .stdout_has("TLS 1.2, TLS_ECDHE_ECDSA_WITH_")
        .stdout_has("wott/env granted");
}

#[test]
fn an_ip_san_lets_the_server_be_named_by_address() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let broker = d.broker();
    wott()
        .arg("check")
        .cert_dir(d.certs.path())
        .args(["--server", "127.0.0.1", "--port", &broker.port.to_string()])
        .run()
        .success()
        .stdout_has("127.0.0.1 is an address; nothing to resolve");
}

// --------------------------------------------------------------- identity

#[test]
fn an_expired_identity_fails_before_any_network() {
    let ca = Authority::new("CA").unwrap();
    let certs = tempfile::tempdir().unwrap();
    ca.issue(&DeviceRequest::new(&random_device_id().unwrap()).expired())
        .unwrap()
        .write_to(certs.path())
        .unwrap();
    // A name that can never resolve: reaching the network would exit 4.
    let run = wott()
        .arg("check")
        .cert_dir(certs.path())
        .args(["--any-id", "--server", "broker.invalid"])
        .run();
    run.code(3).error(
        "client.crt expired 2d 0h ago",
        "renew it with `sudo wott-agent`",
    );
    assert_stages(&run, &["✗ identity"]);
}

#[test]
fn a_key_from_another_certificate_is_an_identity_error() {
    let ca = Authority::new("CA").unwrap();
    let mine = ca
        .issue(&DeviceRequest::new(&random_device_id().unwrap()))
        .unwrap();
    let other = ca
        .issue(&DeviceRequest::new(&random_device_id().unwrap()))
        .unwrap();
    let certs = tempfile::tempdir().unwrap();
    mine.with_key_of(&other).write_to(certs.path()).unwrap();
    let run = wott()
        .args(["check", "--any-id", "--server", "broker.invalid", "--json"])
        .cert_dir(certs.path())
        .run();
    run.code(3);
    let doc = run.json();
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["stages"][0]["name"], "identity");
    assert_eq!(doc["stages"][0]["ok"], false);
    let message = doc["stages"][0]["error"].as_str().unwrap();
    assert!(message.contains("does not belong to"), "{message}");
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("restore the client.crt and client.key that belong together")
    );
    assert_eq!(doc["stages"].as_array().unwrap().len(), 1);
}

#[test]
fn an_unreadable_key_says_to_use_sudo() {
    if !support::root_available("to run the binary as another user") {
        return;
    }
    let ca = Authority::new("CA").unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let certs = root.path().join("certs");
    ca.issue(&DeviceRequest::new(&random_device_id().unwrap()))
        .unwrap()
        .write_to(&certs)
        .unwrap();
    std::fs::set_permissions(&certs, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = support::wott_unprivileged()
        .args(["check", "--any-id", "--server", "broker.invalid"])
        .cert_dir(&certs)
        .run();
    run.code(3)
        .error("cannot read", "run the command with sudo");
    assert_stages(&run, &["✗ identity"]);
}

// ---------------------------------------------------------------- resolve

#[test]
fn a_name_that_does_not_resolve_points_to_hosts_add() {
    let d = Devices::new();
    let run = wott()
        .arg("check")
        .cert_dir(d.certs.path())
        .args([
            "--any-id",
            "--server",
            "4853b630822946019393b16c5b710b9e.d.wott.invalid",
        ])
        .run();
    run.code(4).error(
        "4853b630822946019393b16c5b710b9e.d.wott.invalid does not resolve",
        "sudo wott-mqtt hosts add 4853b630822946019393b16c5b710b9e.d.wott.invalid <server IP>",
    );
    assert_stages(&run, &["✓ identity", "✗ resolve"]);
}

#[test]
fn the_resolve_stage_says_what_the_hosts_file_has() {
    let d = Devices::new();
    let hosts = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(hosts.path(), "127.0.0.1 localhost\n").unwrap();
    let run = wott()
        .arg("check")
        .cert_dir(d.certs.path())
        .args([
            "--any-id",
            "--server",
            "device.d.wott.invalid",
            "--json",
            "--hosts-file",
        ])
        .arg(hosts.path())
        .run();
    run.code(4);
    let doc = run.json();
    let resolve = &doc["stages"][1];
    assert_eq!(resolve["name"], "resolve");
    assert!(
        resolve["detail"]
            .as_str()
            .unwrap()
            .ends_with("has no entry for it"),
        "{resolve}"
    );

    // The same through the environment, with an entry that the system
    // resolver (which reads /etc/hosts, not this file) does not know.
    std::fs::write(
        hosts.path(),
        "192.0.2.7 device.d.wott.invalid # wott-mqtt\n",
    )
    .unwrap();
    let run = wott()
        .arg("check")
        .cert_dir(d.certs.path())
        .args(["--any-id", "--server", "device.d.wott.invalid"])
        .env("WOTT_MQTT_HOSTS_FILE", hosts.path())
        .run();
    run.code(4)
        .stdout_has(&format!("{} maps it to 192.0.2.7", hosts.path().display()));
}

#[test]
fn localhost_resolves_through_the_system_resolver() {
    if !Broker::available() {
        return;
    }
    let d = Devices::with_server(|r| r.dns_names(&["localhost"]));
    let broker = d.broker();
    let run = wott()
        .arg("check")
        .cert_dir(d.certs.path())
        .args(["--any-id", "--server", "localhost"])
        .args(["--port", &broker.port.to_string()])
        .run();
    // localhost may resolve to ::1 first, where nothing listens: the probe
    // then tries the next address, like curl.
    run.success()
        .stdout_has("localhost → ")
        .stdout_has(&format!("connected to 127.0.0.1:{}", broker.port));
}

// -------------------------------------------------------------------- tcp

#[test]
fn nothing_listening_names_server_status_and_the_port_slip() {
    let d = Devices::new();
    let closed = ClosedPort::new();
    let port = closed.port;
    let run = d.check(port).run();
    run.code(5).error(
        &format!("cannot connect to 127.0.0.1:{port}: connection refused"),
        "`wott-mqtt server status`",
    );
    // Issue 16: the 8883/8333 slip only where it can be the cause.
    run.stderr_lacks("8333").stderr_lacks("the tutorial mixes");
    assert_stages(&run, &["✓ identity", "✓ resolve", "✗ tcp"]);
}

/// An address of this machine other than loopback, if it has one.
fn a_local_address() -> Option<std::net::IpAddr> {
    // A UDP "connection" sends nothing; it only picks the source address.
    ["192.0.2.1:9", "198.51.100.1:9", "10.255.255.1:9"]
        .iter()
        .filter_map(|target| {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
            socket.connect(target).ok()?;
            Some(socket.local_addr().ok()?.ip())
        })
        .find(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

/// Issue 16: the broker listens on loopback only and the check dials this
/// machine's own LAN address: that is named as the likely cause.
#[test]
fn a_broker_on_loopback_only_is_named_when_this_machines_address_is_refused() {
    if !Broker::available() {
        return;
    }
    let local = a_local_address();
    if support::skip_without(
        "an address of this machine other than loopback",
        local.is_some(),
    ) {
        return;
    }
    let ip = local.unwrap().to_string();
    let d = Devices::new();
    let broker = d.broker(); // listener PORT 127.0.0.1
    let port = broker.port.to_string();
    let run = wott()
        .arg("check")
        .cert_dir(d.certs.path())
        .args([
            "--server",
            &d.server.device_id,
            "--connect-to",
            &ip,
            "--port",
            &port,
        ])
        .run();
    run.code(5).error(
        &format!("cannot connect to {ip}:{port}: connection refused"),
        &format!(
            "127.0.0.1:{port} accepts connections, so the broker on this machine probably listens on loopback only"
        ),
    );
    // Refused on loopback itself: nothing to point at.
    let closed = ClosedPort::new();
    d.check(closed.port)
        .run()
        .code(5)
        .stderr_lacks("listens on loopback only")
        .stderr_has("nothing listens on port");
}

#[test]
fn port_8333_is_called_out_as_the_tutorial_slip() {
    let d = Devices::new();
    if support::skip_without(
        "port 8333 on 127.0.0.1 with nothing listening",
        std::net::TcpStream::connect(("127.0.0.1", 8333)).is_err(),
    ) {
        return;
    }
    d.check(8333)
        .run()
        .code(5)
        .error("connection refused", "you asked for port 8333")
        .stderr_has("try --port 8883");
}

// -------------------------------------------------------------------- tls

#[test]
fn a_plain_mqtt_port_is_named_as_such() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let broker = Broker::start(&BrokerConfig::plain());
    let run = d.check(broker.port).run();
    run.code(6).error(
        "does not speak TLS: it closed the TLS handshake and then answered a plain MQTT CONNECT",
        "plain-MQTT listener; use the broker's TLS listener (port 8883 in the tutorial)",
    );
    assert_stages(&run, &UP_TO_TLS);
}

/// Issue 16: a test CA and the device's CA often share a name; the message
/// tells them apart instead of "not issued by CN=X; its issuer is CN=X".
#[test]
fn a_server_certificate_from_another_ca_of_the_same_name_is_told_apart() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let broker = d.broker_of(
        "WoTT test CA",
        DeviceRequest::new(&d.server.device_id).ip_address([127, 0, 0, 1].into()),
    );
    let run = d.check(broker.port).run();
    run.code(6).error(
        "was not issued by this device's CA (CN=WoTT test CA, O=wott-mqtt throwaway CA); its issuer \
         is CN=WoTT test CA, O=wott-mqtt throwaway CA, another CA of the same name (issuer key ID ",
        "must be enrolled with the same WoTT CA",
    );
    let error = run.error_line();
    // This device's ca.crt by its fingerprint, as `openssl x509 -fingerprint -sha256` prints it.
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let der = CertificateDer::from_pem_slice(d.ca.cert_pem().as_bytes()).unwrap();
    let fingerprint = wott_mqtt::identity::fingerprint(der.as_ref());
    assert!(
        error.contains(&format!("ca.crt SHA-256 {fingerprint}")),
        "{error}"
    );
    // Each side's key ID (rcgen writes both extensions), and they differ.
    let ids: Vec<&str> = error
        .match_indices("key ID ")
        .map(|(i, _)| &error[i + 7..i + 7 + 59])
        .collect();
    assert_eq!(ids.len(), 2, "{error}");
    assert_ne!(ids[0], ids[1], "{error}");
}

/// Issue 16: the server answered with another device's certificate, from
/// another CA: the wrong device is said first.
#[test]
fn another_devices_certificate_from_another_ca_says_the_device_first() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let other_id = random_device_id().unwrap();
    let broker = d.broker_of("WoTT test CA", DeviceRequest::new(&other_id));
    let run = d.check(broker.port).run();
    run.code(6).error(
        &format!(
            "the server's certificate does not carry {}, the ID asked for: it names {other_id}; \
             and it was not issued by this device's CA",
            d.server.device_id
        ),
        "reached another device",
    );
}

#[test]
fn a_server_certificate_from_another_ca_names_its_issuer() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let broker = d.broker_of(
        "Somebody else's CA",
        DeviceRequest::new(&d.server.device_id),
    );
    let run = d.check(broker.port).run();
    run.code(6).error(
        "was not issued by this device's CA (CN=WoTT test CA",
        "must be enrolled with the same WoTT CA",
    );
    run.stderr_has("its issuer is CN=Somebody else's CA")
        .stdout_has("issued by CN=Somebody else's CA");
    assert_stages(&run, &UP_TO_TLS);
    // The rejected certificate is reported in full, not just its error.
    let run = d.check(broker.port).arg("--json").run();
    run.code(6);
    let seen = &run.json()["server_certificate"];
    assert_eq!(seen["common_name"], d.server.device_id);
    assert!(
        seen["issuer"]
            .as_str()
            .unwrap()
            .contains("Somebody else's CA")
    );
    assert!(seen["fingerprint_sha256"].is_string());
}

#[test]
fn an_expired_server_certificate_says_renew_and_reload() {
    if !Broker::available() {
        return;
    }
    let d = Devices::with_server(DeviceRequest::expired);
    let broker = d.broker();
    let run = d.check(broker.port).run();
    run.code(6)
        .error("the server's certificate (CN=", "`wott-mqtt server reload`");
    run.stderr_has(") expired 2d 0h ago");
    assert_stages(&run, &UP_TO_TLS);
}

#[test]
fn a_server_certificate_for_another_device_names_the_ids_it_carries() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let other = random_device_id().unwrap();
    let imposter = d.ca.issue(&DeviceRequest::new(&other)).unwrap();
    let broker = Broker::start(&BrokerConfig::wott(&imposter, &d.acl("readwrite")));
    let run = d.check(broker.port).run();
    run.code(6).error(
        &format!(
            "does not carry the server ID {}: it names {other}",
            d.server.device_id
        ),
        &format!("--connect-to 127.0.0.1 reaches another device (device {other})"),
    );
    assert_stages(&run, &UP_TO_TLS);
}

#[test]
fn an_address_as_server_explains_device_ids() {
    if !Broker::available() {
        return;
    }
    let d = Devices::with_server(|r| r);
    let broker = d.broker();
    let run = wott()
        .arg("check")
        .cert_dir(d.certs.path())
        .args(["--server", "127.0.0.1", "--port", &broker.port.to_string()])
        .run();
    run.code(6).error(
        "does not carry the server ID 127.0.0.1",
        &format!(
            "use --server <the server's device ID> --connect-to 127.0.0.1 (this server's certificate says {})",
            d.server.device_id
        ),
    );
}

/// The broker trusts another CA for client certificates.
fn broker_trusting_a_stranger(d: &Devices, max_tls: Option<&str>) -> Broker {
    let mut config = BrokerConfig::wott(&d.server, &d.acl("readwrite"));
    config.client_ca_pem = Some(Authority::new("Stranger CA").unwrap().cert_pem());
    config.max_tls_version = max_tls.map(str::to_string);
    Broker::start(&config)
}

#[test]
fn a_broker_that_trusts_another_ca_rejects_us_during_a_tls12_handshake() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let broker = broker_trusting_a_stranger(&d, Some("TLSv1.2"));
    let run = d.check(broker.port).run();
    run.code(6).error(
        "the broker rejected this device's certificate (TLS alert: ",
        "its cafile must be the WoTT CA that issued this device's certificate (CN=WoTT test CA",
    );
    assert_stages(&run, &UP_TO_TLS);
}

#[test]
fn a_broker_that_trusts_another_ca_rejects_us_after_a_tls13_handshake() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let broker = broker_trusting_a_stranger(&d, None);
    let run = d.check(broker.port).arg("--json").run();
    run.code(6);
    let doc = run.json();
    let stages = doc["stages"].as_array().unwrap();
    let last = stages.last().unwrap();
    assert_eq!(last["name"], "tls", "{doc:#}");
    assert_eq!(last["ok"], false);
    let error = last["error"].as_str().unwrap();
    assert!(
        error.contains("rejected this device's certificate after the TLS 1.3 handshake"),
        "{error}"
    );
    assert!(last["detail"].as_str().unwrap().contains("TLS 1.3"));
    assert!(last["hint"].as_str().unwrap().contains("cafile"));
    assert_eq!(doc["tls"]["protocol"], "TLS 1.3");
    assert!(!stages.iter().any(|s| s["name"] == "connect"));
}

#[test]
fn a_broker_whose_clock_says_our_certificate_expired_rejects_it() {
    if !Broker::available()
        || support::skip_without(
            "libfaketime (apt-get install faketime)",
            libfaketime().is_some(),
        )
    {
        return;
    }
    // Ten days ahead, the broker sees our 7-day certificate as expired (and
    // its own too, which a server does not check). Both TLS versions.
    let d = Devices::with_server(|r| {
        r.ip_address([127, 0, 0, 1].into()).valid_between(
            time::OffsetDateTime::now_utc() - time::Duration::days(1),
            time::OffsetDateTime::now_utc() + time::Duration::days(30),
        )
    });
    for max_tls in [Some("TLSv1.2"), None] {
        let mut config = BrokerConfig::wott(&d.server, &d.acl("readwrite"));
        config.max_tls_version = max_tls.map(str::to_string);
        config.clock_offset = Some("+10d".into());
        let broker = Broker::start(&config);
        let run = d.check(broker.port).run();
        run.code(6).error(
            "the broker rejected this device's certificate",
            "compare the clocks of both machines",
        );
        run.stderr_has("CertificateExpired");
        assert_stages(&run, &UP_TO_TLS);
    }
}

#[test]
fn a_silent_port_times_out_in_the_tls_stage_within_the_limit() {
    let d = Devices::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let run = d.check(port).args(["--timeout", "0.5"]).run();
    let took = started.elapsed();
    run.code(6).error(
        "the TLS handshake did not finish within 0.5 s, the --timeout",
        "does not answer like an MQTT-over-TLS broker",
    );
    assert_stages(&run, &UP_TO_TLS);
    assert!(took < Duration::from_secs(3), "took {took:?}");
    drop(listener);
}

// ------------------------------------------------------------------- mqtt

#[test]
fn a_broker_that_wants_passwords_refuses_connect_as_not_authorised() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let mut config = BrokerConfig::wott(&d.server, &d.acl("readwrite"));
    config.use_identity_as_username = false;
    let broker = Broker::start(&config);
    let run = d.check(broker.port).run();
    run.code(7).error(
        "the broker refused the MQTT connection: not authorised (CONNACK 5)",
        "`use_identity_as_username true`",
    );
    assert_stages(
        &run,
        &["✓ identity", "✓ resolve", "✓ tcp", "✓ tls", "✗ connect"],
    );
    // One attempt, no reconnect loop.
    let log = broker.log();
    assert_eq!(log.matches("New connection from").count(), 1, "{log}");
}

#[test]
fn a_broker_that_drops_the_connect_is_named() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let mut config = BrokerConfig::wott(&d.server, &d.acl("readwrite"));
    // Mosquitto closes the connection, without CONNACK, on a CONNECT larger
    // than max_packet_size.
    config.extra.push("max_packet_size 20".into());
    let broker = Broker::start(&config);
    let run = d.check(broker.port).run();
    run.code(7).error(
        "the broker closed the connection right after CONNECT, without answering it",
        "max_packet_size",
    );
    assert_stages(
        &run,
        &["✓ identity", "✓ resolve", "✓ tcp", "✓ tls", "✗ connect"],
    );
}

#[test]
fn a_denied_read_ends_with_no_message_and_the_acl_check_hint() {
    if !Broker::available() || !mosquitto_clients() {
        return;
    }
    let d = Devices::new();
    // The ACL lets the client write wott/# but not read it.
    let broker = Broker::start(&BrokerConfig::wott(&d.server, &d.acl("write")));
    retain(
        d.certs.path(),
        broker.port,
        "wott/temperature",
        "21.5",
        &broker,
    );
    let run = d.check(broker.port).args(["--wait", "1"]).run();
    run.code(8).error(
        "subscribed to wott/temperature, but no message arrived within 1 s",
        &format!(
            "only a delivered message proves access. On the server run `wott-mqtt acl check {} wott/temperature --access read`",
            d.id()
        ),
    );
    run.stderr_has("Mosquitto grants every SUBSCRIBE under acl_file");
    assert_stages(
        &run,
        &[
            "✓ identity",
            "✓ resolve",
            "✓ tcp",
            "✓ tls",
            "✓ connect",
            "✓ subscribe",
            "✗ message",
        ],
    );
}

#[test]
fn a_denied_write_ends_a_roundtrip_with_no_message() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let broker = Broker::start(&BrokerConfig::wott(&d.server, &d.acl("read")));
    for qos in ["0", "1"] {
        let run = d
            .check(broker.port)
            .args(["--roundtrip", "--wait", "0.5", "--qos", qos])
            .run();
        run.code(8).error(
            "published a probe message to wott/temperature, but it did not come back within 0.5 s",
            "--access readwrite",
        );
    }
}

#[test]
fn ctrl_c_ends_a_wait_with_exit_130() {
    if !Broker::available() {
        return;
    }
    let d = Devices::new();
    let broker = d.broker();
    let mut child = Command::new(support::bin())
        .arg("check")
        .arg("--cert-dir")
        .arg(d.certs.path())
        .args(["--server", &d.server.device_id, "--connect-to", "127.0.0.1"])
        .args(["--port", &broker.port.to_string(), "--wait", "30"])
        .args(["--client-id", "ctrl-c-probe"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Subscribed: the probe is in its 30 s wait for a message.
    broker.wait_for_log("Sending SUBACK to ctrl-c-probe");
    let started = Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // Ended by the signal, not by the wait running out.
    assert!(started.elapsed() < Duration::from_secs(10));
}

// ---------------------------------------------------------------- interop

#[test]
fn check_and_mosquitto_clients_share_a_tutorial_broker_and_certificates() {
    if !Broker::available() || !mosquitto_clients() {
        return;
    }
    let d = Devices::new();
    let broker = d.broker();
    let port = broker.port;
    // mosquitto_sub waits for one message; check's roundtrip probe is it.
    let sub = mosquitto_client("mosquitto_sub", d.certs.path(), port)
        .args([
            "-t",
            "wott/interop",
            "-C",
            "1",
            "-W",
            "10",
            "-i",
            "interop-sub",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    broker.wait_for_log("Sending SUBACK to interop-sub");
    d.check(port)
        .args(["--topic", "wott/interop", "--roundtrip"])
        .run()
        .success();
    let out = sub.wait_with_output().unwrap();
    let received = String::from_utf8_lossy(&out.stdout);
    // A subscriber that is not wott-mqtt reads what the probe is, and from whom.
    assert!(
        received.starts_with("wott-mqtt check probe ")
            && received.contains(&format!(" from {} at ", d.id())),
        "mosquitto_sub got {received:?}\n{}",
        broker.log()
    );
    // And the other way: mosquitto_pub's message is what check receives.
    retain(
        d.certs.path(),
        port,
        "wott/interop",
        "from mosquitto_pub",
        &broker,
    );
    let run = d
        .check(port)
        .args(["--topic", "wott/interop", "--wait", "2", "--json"])
        .run();
    run.success();
    assert_eq!(run.json()["message"]["payload"], "from mosquitto_pub");
    // The broker saw the client's CN as its user name (use_identity_as_username).
    assert!(
        broker.log().contains(&format!("u'{}'", d.id())),
        "{}",
        broker.log()
    );
}

// ------------------------------------------------------------------ usage

#[test]
fn usage_errors_exit_2_with_a_hint() {
    let d = Devices::new();
    wott()
        .arg("check")
        .cert_dir(d.certs.path())
        .run()
        .code(2)
        .error(
            "no server to check: pass --server or set MQTT_SERVER",
            "wott-mqtt whoami",
        );
    d.check(8883)
        .args(["--roundtrip", "--topic", "wott/#"])
        .run()
        .code(2)
        .error(
            "--roundtrip publishes to --topic, so it cannot be a filter",
            "without + or #",
        );
    d.check(8883)
        .args(["--wait", "5", "--timeout", "2"])
        .run()
        .code(2)
        .error(
            "--timeout 2 is shorter than the 5 s message wait",
            "make it longer than --wait",
        );
    d.check(8883)
        .args(["--wait", "0"])
        .run()
        .code(2)
        .error("--wait 0 is not a number of seconds", "--wait 5");
    wott()
        .arg("check")
        .cert_dir(d.certs.path())
        .args(["--server", "bad\nname"])
        .run()
        .code(2)
        .error("invalid device ID", "a device ID is a DNS name");
}
