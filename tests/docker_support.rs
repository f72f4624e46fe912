//! The local test image behaves like eclipse-mosquitto:2: the tutorial's
//! run.sh mistake (the agent's root-only key mounted into the container) makes
//! the broker exit with "Permission denied", and a key owned by uid 1883 works.
//! `server up` is tested against this image.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Authority, DeviceRequest, docker, random_device_id};

struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.0])
            .output();
    }
}

fn run_broker(config_dir: &std::path::Path) -> Container {
    let name = format!("wott-mqtt-support-{}", std::process::id());
    let out = Command::new("docker")
        .args(["run", "-d", "--name", &name, "-v"])
        .arg(format!("{}:/mosquitto/config:ro", config_dir.display()))
        .arg(docker::test_image())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Container(name)
}

fn logs_until(container: &Container, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = Command::new("docker")
            .args(["logs", &container.0])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_test_image_reproduces_the_key_permission_pitfall() {
    if !docker::available() {
        return;
    }
    let ca = Authority::new("CA").unwrap();
    let server = ca
        .issue(&DeviceRequest::new(&random_device_id().unwrap()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    server.write_to(&dir.path().join("certs")).unwrap();
    fs::set_permissions(dir.path().join("certs"), fs::Permissions::from_mode(0o755)).unwrap();
    let conf = "listener 8883\ncafile /mosquitto/config/certs/ca.crt\ncertfile /mosquitto/config/certs/client.crt\n\
                keyfile /mosquitto/config/certs/client.key\nrequire_certificate true\nlog_dest stderr\n";
    fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();

    // The agent's key: root-owned, 0600. Mosquitto drops to uid 1883 first.
    let c = run_broker(dir.path());
    let logs = logs_until(&c, "Permission denied");
    assert!(
        logs.contains("Unable to load server key file") && logs.contains("Permission denied"),
        "{logs}"
    );
    drop(c);

    // Owned by 1883, as `server up` stages it: the broker starts.
    std::os::unix::fs::chown(dir.path().join("certs/client.key"), Some(1883), Some(1883)).unwrap();
    let c = run_broker(dir.path());
    let logs = logs_until(&c, "running");
    let running = format!("mosquitto version {} running", docker::mosquitto_version());
    assert!(logs.contains(&running), "{logs}");
}
