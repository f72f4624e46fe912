//! The security review's container finding: the broker ran with every
//! capability, could gain privileges, wrote anywhere in its filesystem and
//! had no limits. `server up` now creates it hardened, and it still serves.

#![allow(clippy::unwrap_used)]

mod support;

use support::docker;
use support::server::Server;

#[test]
fn the_broker_runs_without_capabilities_privileges_or_a_writable_root() {
    if !docker::available() {
        return;
    }
    let server = Server::new("hardened");
    server
        .up()
        .args(["--memory", "128M", "--pids-limit", "32"])
        .run()
        .success();
    let inspect = |format: &str| server.inspect(format).unwrap();
    assert_eq!(inspect("{{.HostConfig.CapDrop}}"), "[ALL]");
    assert_eq!(inspect("{{.HostConfig.CapAdd}}"), "[]");
    assert_eq!(
        inspect("{{.HostConfig.SecurityOpt}}"),
        "[no-new-privileges:true]"
    );
    assert_eq!(inspect("{{.HostConfig.ReadonlyRootfs}}"), "true");
    assert_eq!(
        inspect("{{.HostConfig.Memory}}"),
        (128u64 << 20).to_string()
    );
    assert_eq!(inspect("{{.HostConfig.PidsLimit}}"), "32");
    assert_eq!(inspect("{{.HostConfig.Privileged}}"), "false");
    assert_eq!(inspect("{{.Config.User}}"), "1883:1883");
    // It serves, and it still writes its log where it may.
    server.cmd("status").run().success();
    let log = std::fs::read_to_string(server.path("log/mosquitto.log")).unwrap();
    assert!(log.contains("running"), "{log}");
    // Other limits are another container, and the same ones change nothing.
    let again = server
        .up()
        .args(["--memory", "128M", "--pids-limit", "32", "--json"])
        .run();
    again.success();
    assert_eq!(again.json()["changed"], false);
    let bigger = server.up().args(["--memory", "192M", "--json"]).run();
    bigger.success();
    assert_eq!(bigger.json()["actions"][0]["action"], "remove");
    assert_eq!(
        inspect("{{.HostConfig.Memory}}"),
        (192u64 << 20).to_string()
    );
}

#[test]
fn limits_that_docker_would_refuse_are_usage_errors() {
    for (flag, value, reason) in [
        ("--memory", "1M", "at least 6M"),
        ("--memory", "lots", "a size such as 256M"),
        ("--memory", "12T", "a size such as 256M"),
        ("--pids-limit", "2", "8..=100000"),
    ] {
        support::wott()
            .args(["server", "up", flag, value])
            .run()
            .code(2)
            .stderr_has(reason);
    }
}
