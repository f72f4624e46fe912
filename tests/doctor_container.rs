//! `doctor`'s container checks on a broker remade by hand: a container
//! made from the current inputs but without the hardening `server up`
//! gives it, then one made from other inputs; each finding's printed fix is
//! run as printed and recreates it as `server up` makes it.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::docker;
use support::doctor::{BrokerDoctor, docker_cmd, finding, fix};
use support::server::Server;

/// The managed container, remade by hand without the hardening `server up`
/// gives it, carrying `hash` as its configuration hash; waits until it answers.
fn remake_unhardened(server: &Server, hash: &str) {
    let labels: serde_json::Map<String, Value> =
        serde_json::from_str(&server.inspect("{{json .Config.Labels}}").unwrap()).unwrap();
    let dir = labels["org.wott-mqtt.server-dir"]
        .as_str()
        .unwrap()
        .to_string();
    docker_cmd(&["rm", "-f", &server.name]);
    let mut args: Vec<String> = ["run", "-d", "--name", &server.name, "--user", "1883:1883"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // The limits `server up` sets are part of the hash; the hardening is not.
    for arg in [
        "--memory",
        "256m",
        "--pids-limit",
        "64",
        "--restart",
        "unless-stopped",
        "-p",
    ] {
        args.push(arg.into());
    }
    args.push(format!("127.0.0.1:{}:8883", server.port));
    for (source, target, ro) in [
        (dir.clone(), "/mosquitto/config", ":ro"),
        (format!("{dir}/certs"), "/mosquitto/certs", ":ro"),
        (format!("{dir}/data"), "/mosquitto/data", ""),
        (format!("{dir}/log"), "/mosquitto/log", ""),
    ] {
        args.extend(["-v".into(), format!("{source}:{target}{ro}")]);
    }
    for (key, value) in &labels {
        let value = if key == "org.wott-mqtt.config-hash" {
            hash.to_string()
        } else {
            value.as_str().unwrap().to_string()
        };
        args.extend(["--label".into(), format!("{key}={value}")]);
    }
    args.push(server.image().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker_cmd(&args);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while server.cmd("status").run().code != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the hand-made broker never answered"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_unhardened_or_outdated_container_warns_and_the_printed_fix_recreates_it() {
    if !support::root_available("to stage copies for uid 1883 and run the printed fixes")
        || !docker::available()
    {
        return;
    }
    let server = Server::new("doctor-hand");
    server.up().run().success();
    let d = BrokerDoctor::new(&server);
    let hash = server
        .inspect("{{index .Config.Labels \"org.wott-mqtt.config-hash\"}}")
        .unwrap();

    // The current inputs, but not hardened: `server up` alone would keep it.
    remake_unhardened(&server, &hash);
    let doc = d.run(0);
    finding(&doc, "server.config-current", "ok");
    let hardening = finding(&doc, "server.hardening", "warning");
    let command = fix(hardening);
    assert!(command.contains("server down && "), "{command}");
    for part in command.split(" && ") {
        d.run_printed(part);
    }
    let doc = d.run(0);
    finding(&doc, "server.hardening", "ok");

    // Created from other inputs: `server up` recreates it, hardened.
    remake_unhardened(&server, "0000");
    let doc = d.run(0);
    let outdated = finding(&doc, "server.config-current", "warning");
    assert!(fix(outdated).ends_with("server up"), "{outdated}");
    assert!(fix(finding(&doc, "server.hardening", "warning")).ends_with("server up"));
    d.run_printed(&fix(outdated));
    let doc = d.run(0);
    finding(&doc, "server.config-current", "ok");
    finding(&doc, "server.hardening", "ok");
}
