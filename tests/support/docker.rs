//! The Mosquitto image for tests against the real Docker engine.
//!
//! There is no registry here, so `eclipse-mosquitto:2` cannot be pulled. The
//! tests use what the product builds where no registry answers: `wott-mqtt
//! server image`, from the host's Debian `mosquitto` package, with the
//! layout of the official image (it starts as root and Mosquitto drops to
//! uid 1883, so the key-permission pitfall reproduces faithfully).
//!
//! The tag is this checkout's own ([`test_image`]), so test runs of other
//! checkouts on the same engine never move it; within one checkout the
//! build is the same each time, and `server image` finds it current.

use std::fs::{self, File};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The host's Mosquitto version, from the binary itself (`mosquitto -h`
/// prints `mosquitto version 2.0.11` first), e.g. `2.0.11`: the version the
/// test image runs, so tests compare logs with it instead of a pinned one.
pub fn mosquitto_version() -> String {
    let out = Command::new("mosquitto")
        .arg("-h")
        .output()
        .expect("run `mosquitto -h` (apt-get install mosquitto)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("mosquitto version "))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("`mosquitto -h` names no version:\n{text}"))
}

/// The test image's tag, `wott-mqtt-test/mosquitto:<checkout>`: test runs of
/// other checkouts on the same engine never move it.
pub fn test_image_tag() -> String {
    format!("wott-mqtt-test/mosquitto:{}", checkout_id())
}

/// Whether a Docker engine answers (`docker version`), silently.
pub fn engine_answers() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a Docker engine answers; under CI its absence fails the test.
/// Returns false (after saying so) when the caller should skip.
pub fn available() -> bool {
    !super::skip_without("a Docker engine (docker version)", engine_answers())
}

/// Eight hex digits that name this checkout, for tags no other checkout uses.
pub fn checkout_id() -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, env!("CARGO_MANIFEST_DIR").as_bytes());
    digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The test image, `wott-mqtt server image --tag wott-mqtt-test/mosquitto:<checkout>`,
/// made current once per test process.
pub fn test_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let tag = test_image_tag();
            super::wott()
                .args(["server", "image", "--tag", &tag])
                .run()
                .success();
            tag
        })
        .clone()
}

/// The group that may use the Docker socket (`rw` for the group), for
/// running the binary as an unprivileged member of it.
pub fn socket_group() -> Option<u32> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = fs::metadata("/var/run/docker.sock").ok()?;
    (meta.permissions().mode() & 0o060 == 0o060 && meta.gid() != 0).then(|| meta.gid())
}

/// [`socket_group`], or `None` after skipping the test through
/// [`super::skip_without`] (a failure under CI).
pub fn socket_group_or_skip() -> Option<u32> {
    let group = socket_group();
    if super::skip_without(
        "a group that may use the Docker socket (e.g. `docker`)",
        group.is_some(),
    ) {
        return None;
    }
    group
}

/// The test image with another command (`CMD` as JSON), e.g. a broker that
/// never listens on 8883 or one that exits at once. Built once, like
/// [`test_image`], and tagged `wott-mqtt-test/mosquitto-<variant>`.
pub fn test_image_with_cmd(variant: &str, cmd_json: &str) -> String {
    let base = test_image();
    let base_id = image_id(&base).expect("the test image exists");
    let tag = format!(
        "wott-mqtt-test/mosquitto-{variant}:{}",
        &base_id.trim_start_matches("sha256:")[..12]
    );
    let lock =
        File::create(std::env::temp_dir().join(format!("wott-mqtt-test-image-{variant}.lock")))
            .expect("lock file");
    lock.lock().expect("lock the image build");
    let exists = |image: &str| {
        Command::new("docker")
            .args(["image", "inspect", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !exists(&tag) {
        let builder = format!("wott-mqtt-test-build-{variant}-{}", std::process::id());
        let run = |args: &[&str]| {
            let out = Command::new("docker")
                .args(args)
                .output()
                .expect("run docker");
            assert!(
                out.status.success(),
                "docker {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["create", "--name", &builder, &base]);
        run(&[
            "commit",
            "--change",
            &format!("CMD {cmd_json}"),
            &builder,
            &tag,
        ]);
        run(&["rm", "-v", &builder]);
    }
    tag
}

/// The ID of a local image, or `None`.
pub fn image_id(image: &str) -> Option<String> {
    super::server::inspect(image, "{{.Id}}")
}

/// `wott-mqtt` on a machine without Mosquitto: run in a mount namespace
/// where `/usr/sbin/mosquitto` (and so `/sbin/mosquitto`) is `/dev/null`.
/// Needs root.
pub fn wott_without_mosquitto() -> super::Wott {
    super::wott_inside(
        "unshare",
        [
            "--mount",
            "sh",
            "-c",
            "mount --bind /dev/null /usr/sbin/mosquitto && exec \"$@\"",
            "sh",
        ],
    )
}

/// Removes an image tag when dropped (and the image, when nothing else uses it).
pub struct ImageGuard(pub String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
