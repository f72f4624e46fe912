//! A local Mosquitto image for tests against the real Docker engine.
//!
//! There is no registry here, so `eclipse-mosquitto:2` cannot be pulled. This
//! builds an image with the same layout from the host's Debian `mosquitto`
//! package: the binary and its shared libraries, `/etc/passwd` with the
//! `mosquitto` user (uid 1883), `/mosquitto/config|data|log` owned by 1883,
//! and `CMD mosquitto -c /mosquitto/config/mosquitto.conf`. Like the real image
//! it starts as root and Mosquitto drops to uid 1883 before loading the
//! certificates, so the key-permission pitfall reproduces faithfully.
//!
//! The rootfs is written as a tar in memory and given to `docker import`,
//! which needs no registry. Built once per machine (under a file lock, so
//! parallel tests wait for one build) and reused.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Bump when the image's layout changes.
const LAYOUT: u32 = 1;

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

/// The test image's tag, e.g. `wott-mqtt-test/mosquitto:2.0.11-1`: another
/// host version or layout is another image.
pub fn test_image_tag() -> String {
    format!("wott-mqtt-test/mosquitto:{}-{LAYOUT}", mosquitto_version())
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

/// The local test image, built on first use.
pub fn test_image() -> String {
    let tag = test_image_tag();
    let lock =
        File::create(std::env::temp_dir().join("wott-mqtt-test-image.lock")).expect("lock file");
    lock.lock().expect("lock the image build");
    let exists = Command::new("docker")
        .args(["image", "inspect", &tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        build(&tag);
    }
    tag
}

fn build(tag: &str) {
    let rootfs = rootfs_tar();
    let mut child = Command::new("docker")
        .args([
            "import",
            "--change",
            r#"CMD ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]"#,
            "--change",
            "EXPOSE 1883",
            "--change",
            "LABEL org.wott-mqtt.test-image=true",
            "-",
            tag,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run docker import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&rootfs)
        .expect("send the rootfs");
    let out = child.wait_with_output().expect("docker import");
    assert!(
        out.status.success(),
        "docker import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The shared libraries `ldd` lists for a binary, loader included.
fn shared_libraries(binary: &str) -> Vec<String> {
    let out = Command::new("ldd").arg(binary).output().expect("run ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}

fn rootfs_tar() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let dir = |tar: &mut tar::Builder<Vec<u8>>, path: &str, uid: u64, mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_uid(uid);
        header.set_gid(uid);
        header.set_mode(mode);
        header.set_size(0);
        tar.append_data(&mut header, path, std::io::empty())
            .expect("tar dir");
    };
    for d in [
        "etc",
        "usr",
        "usr/sbin",
        "lib",
        "lib64",
        "lib/x86_64-linux-gnu",
        "usr/lib",
        "usr/lib/x86_64-linux-gnu",
        "run",
        "var",
        "var/lib",
    ] {
        dir(&mut tar, d, 0, 0o755);
    }
    dir(&mut tar, "tmp", 0, 0o1777);
    dir(&mut tar, "mosquitto", 1883, 0o755);
    for d in ["mosquitto/config", "mosquitto/data", "mosquitto/log"] {
        dir(&mut tar, d, 1883, 0o755);
    }
    let file = |tar: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(mode);
        header.set_size(bytes.len() as u64);
        tar.append_data(&mut header, path.trim_start_matches('/'), bytes)
            .expect("tar file");
    };
    file(&mut tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nmosquitto:x:1883:1883:mosquitto:/var/empty:/sbin/nologin\n", 0o644);
    file(
        &mut tar,
        "etc/group",
        b"root:x:0:\nmosquitto:x:1883:\n",
        0o644,
    );
    file(
        &mut tar,
        "etc/nsswitch.conf",
        b"passwd: files\ngroup: files\nhosts: files\n",
        0o644,
    );
    let binary = "/usr/sbin/mosquitto";
    file(
        &mut tar,
        binary,
        &fs::read(binary).expect("read /usr/sbin/mosquitto"),
        0o755,
    );
    for lib in shared_libraries(binary) {
        // ldd paths may be symlinks; store the real content under the listed name.
        let bytes = fs::read(Path::new(&lib)).expect("read a shared library");
        file(&mut tar, &lib, &bytes, 0o755);
    }
    tar.into_inner().expect("finish tar")
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
    let tag = format!(
        "wott-mqtt-test/mosquitto-{variant}:{}-{LAYOUT}",
        mosquitto_version()
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
        run(&["rm", &builder]);
    }
    tag
}
