//! A managed broker for the tests: an agent-style identity, a server dir, a
//! unique container name and a free loopback port, and `server …` commands
//! run against the local test image. The container is removed on drop.
//!
//! The broker is only ever reached through its published 127.0.0.1 port,
//! never through a container's bridge address.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::mosquitto::free_port;
use super::{CertFixture, DeviceRequest, Wott, docker, random_device_id, wott};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A unique container name, so that parallel tests never meet.
pub fn unique_name(what: &str) -> String {
    format!(
        "wott-mqtt-test-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A client of a [`Server`]: its ID and cert dir, kept while this lives.
pub struct Device {
    pub root: tempfile::TempDir,
    pub id: String,
    pub certs: PathBuf,
}

impl Device {
    /// `check --roundtrip` on `topic`: 0 when its own message came back, 8 when not.
    pub fn roundtrip(&self, server: &Server, topic: &str) -> i32 {
        roundtrip_check(&self.certs, server, topic)
            .args(["--wait", "2"])
            .run()
            .code
    }
}

/// `check --roundtrip` on `topic` as the device of `certs`, dialling the
/// test broker on 127.0.0.1 and verifying it by its device ID.
pub fn roundtrip_check(certs: &Path, server: &Server, topic: &str) -> Wott {
    wott()
        .cert_dir(certs)
        .args([
            "check",
            "--server",
            server.id(),
            "--connect-to",
            "127.0.0.1",
        ])
        .args(["--port", &server.port.to_string(), "--topic", topic])
        .arg("--roundtrip")
}

pub struct Server {
    pub certs: CertFixture,
    pub root: tempfile::TempDir,
    pub name: String,
    pub port: u16,
    image: std::sync::OnceLock<String>,
}

impl Server {
    /// A server identity like the agent's (root-owned, 0600 key) and a
    /// server dir that does not exist yet. Needs no Docker engine: the test
    /// image is built on first use of [`Server::image`].
    pub fn new(what: &str) -> Server {
        Self::with_certs(what, CertFixture::new())
    }

    /// The same with this server identity (e.g. one with an IP address in
    /// its SANs, for clients that connect to 127.0.0.1 by address).
    pub fn with_certs(what: &str, certs: CertFixture) -> Server {
        Server {
            certs,
            root: tempfile::tempdir().expect("tempdir"),
            name: unique_name(what),
            port: free_port(),
            image: std::sync::OnceLock::new(),
        }
    }

    /// The agent's renewal, at once: a new certificate for the same ID from
    /// the same CA, written over the server's identity.
    pub fn renew_certificate(&self) {
        self.certs
            .ca
            .issue(&DeviceRequest::new(self.id()))
            .expect("issue")
            .write_to(&self.certs.dir())
            .expect("write the renewal");
    }

    /// A client device from the server's CA, in a temp dir of its own.
    pub fn new_device(&self) -> Device {
        self.device_of(&self.certs.ca)
    }

    /// A client device from `ca` (another CA than the server's, say).
    pub fn device_of(&self, ca: &super::Authority) -> Device {
        let root = tempfile::tempdir().expect("tempdir");
        let id = random_device_id().expect("id");
        let certs = root.path().join("certs");
        ca.issue(&DeviceRequest::new(&id))
            .expect("issue")
            .write_to(&certs)
            .expect("write the device's identity");
        Device { root, id, certs }
    }

    /// The local test image, built (once per machine) on first use when an
    /// engine answers; without one, only its name, so that tests that end
    /// before a container is made (no engine, a refused identity) run
    /// without Docker.
    pub fn image(&self) -> &str {
        self.image.get_or_init(|| {
            if docker::engine_answers() {
                docker::test_image()
            } else {
                docker::test_image_tag()
            }
        })
    }

    pub fn id(&self) -> &str {
        self.certs.id()
    }

    pub fn dir(&self) -> PathBuf {
        self.root.path().join("server")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    /// `wott-mqtt --cert-dir … --server-dir … server <sub> --name …`.
    pub fn cmd(&self, sub: &str) -> Wott {
        wott()
            .cert_dir(&self.certs.dir())
            .arg("--server-dir")
            .arg(self.dir())
            .args(["server", sub, "--name", &self.name])
    }

    /// `server up` on 127.0.0.1 and the free port, with the test image.
    pub fn up(&self) -> Wott {
        self.cmd("up")
            .args(["--image", self.image(), "--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
    }

    /// `docker inspect -f FORMAT name`, trimmed; `None` when there is no such container.
    pub fn inspect(&self, format: &str) -> Option<String> {
        inspect(&self.name, format)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        remove_container(&self.name);
    }
}

pub fn inspect(name: &str, format: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["inspect", "-f", format, name])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn remove_container(name: &str) {
    let _ = Command::new("docker")
        .args(["rm", "-f", "-v", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Removes a container when dropped.
pub struct ContainerGuard(pub String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        remove_container(&self.0);
    }
}

/// The owner uid and mode of a path.
pub fn owner_and_mode(path: &Path) -> (u32, u32) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(path).expect("metadata");
    (meta.uid(), meta.permissions().mode() & 0o7777)
}
