//! `hosts` against the system around it: many processes editing one file at
//! once, a hosts file that is a bind mount (as /etc/hosts is inside every
//! container), and the system resolver reading what `hosts add` wrote.
//!
//! The mount tests run the binary in a private mount namespace (`unshare
//! --mount`, needs root). There /etc is replaced by a temp folder and
//! /etc/hosts by a bind-mounted temp file, so the real /etc/hosts is never
//! touched while glibc's resolver really reads the file the test wrote.

#![allow(clippy::unwrap_used)]

mod support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use support::{Run, bin, skip_without};

const DEBIAN: &str =
    "127.0.0.1\tlocalhost\n127.0.1.1\tpi\n\n::1     localhost ip6-localhost ip6-loopback\n";

fn server(i: usize) -> String {
    format!("{i:032x}.d.wott.local")
}

/// Runs `sh -c script` in a new private mount namespace; `$0` is the
/// binary, `$1…` are `args`.
fn in_mount_namespace(script: &str, args: &[&OsStr]) -> Run {
    let mut command = Command::new("unshare");
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
        ])
        .arg(bin())
        .args(args)
        .env_remove("WOTT_MQTT_HOSTS_FILE")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    let output = command.output().expect("run unshare");
    Run {
        line: format!("unshare --mount sh -c {script:?} {args:?}"),
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn mount_namespaces_available() -> bool {
    let probe = tempfile::tempdir().unwrap();
    let (a, b) = (probe.path().join("a"), probe.path().join("b"));
    fs::write(&a, "a").unwrap();
    fs::write(&b, "b").unwrap();
    Command::new("unshare")
        .args(["--mount", "--", "mount", "--bind"])
        .args([&a, &b])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn skip_without_mount_namespaces() -> bool {
    skip_without(
        "mount namespaces (root, `unshare --mount` and `mount --bind`)",
        mount_namespaces_available(),
    )
}

#[test]
fn thirty_two_concurrent_adds_all_land_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts");
    fs::write(&path, DEBIAN).unwrap();
    let children: Vec<_> = (0..32)
        .map(|i| {
            Command::new(bin())
                .args(["hosts", "add", &server(i), &format!("10.0.1.{i}"), "--json"])
                .arg("--hosts-file")
                .arg(&path)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(doc["changed"], true);
    }
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(DEBIAN), "{text}");
    assert_eq!(text.lines().count(), DEBIAN.lines().count() + 32, "{text}");
    for i in 0..32 {
        let line = format!("10.0.1.{i} {} # wott-mqtt", server(i));
        assert_eq!(
            text.lines().filter(|l| *l == line).count(),
            1,
            "{line}\n{text}"
        );
    }
    // Nothing left behind: no temp files, no lock files.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn concurrent_adds_of_one_name_leave_exactly_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts");
    fs::write(&path, DEBIAN).unwrap();
    let name = server(7);
    let children: Vec<_> = (1..=8)
        .map(|i| {
            Command::new(bin())
                .args(["hosts", "add", &name, &format!("10.0.2.{i}"), "-q"])
                .arg("--hosts-file")
                .arg(&path)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let text = fs::read_to_string(&path).unwrap();
    let entries = wott_mqtt::hosts::Document::parse(text.as_bytes()).entries_for(&name);
    assert_eq!(entries.len(), 1, "{text}");
    assert!(entries[0].managed);
    assert!(text.starts_with(DEBIAN));
}

#[test]
fn a_bind_mounted_hosts_file_is_written_in_place() {
    if skip_without_mount_namespaces() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (real, mount_point) = (dir.path().join("real"), dir.path().join("hosts"));
    fs::write(&real, DEBIAN).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
    fs::write(&mount_point, "underneath\n").unwrap();
    let hosts = |args: &str| {
        in_mount_namespace(
            &format!(
                "mount --bind \"$1\" \"$2\" && exec \"$0\" hosts {args} --json --hosts-file \"$2\""
            ),
            &[real.as_os_str(), mount_point.as_os_str()],
        )
    };

    let run = hosts(&format!("add {} 10.0.0.1", server(1)));
    run.success();
    let doc = run.json();
    assert_eq!(doc["changed"], true);
    assert_eq!(
        doc["write_method"], "in-place",
        "rename onto a mount point is EBUSY"
    );
    let expected = format!("{DEBIAN}10.0.0.1 {} # wott-mqtt\n", server(1));
    assert_eq!(fs::read_to_string(&real).unwrap(), expected);
    assert_eq!(
        fs::metadata(&real).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    assert_eq!(fs::read_to_string(&mount_point).unwrap(), "underneath\n");

    let run = hosts(&format!("add {} 10.0.0.2", server(1)));
    run.success();
    assert_eq!(run.json()["write_method"], "in-place");
    let run = hosts(&format!("remove {}", server(1)));
    run.success();
    assert_eq!(fs::read_to_string(&real).unwrap(), DEBIAN);
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["hosts", "real"], "temp files left behind");
}

/// A container's view: /etc is a temp copy of what the resolver needs, and
/// /etc/hosts is a bind mount of `hosts`.
struct Container {
    etc: tempfile::TempDir,
    hosts: tempfile::NamedTempFile,
}

impl Container {
    fn new(hosts: &str) -> Self {
        let etc = tempfile::tempdir().unwrap();
        for file in [
            "nsswitch.conf",
            "host.conf",
            "ld.so.cache",
            "resolv.conf",
            "gai.conf",
        ] {
            let source = Path::new("/etc").join(file);
            if source.exists() {
                fs::copy(&source, etc.path().join(file)).unwrap();
            }
        }
        fs::write(etc.path().join("hosts"), "").unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        fs::write(file.path(), hosts).unwrap();
        Container { etc, hosts: file }
    }

    fn set_nsswitch(&self, content: &str) {
        fs::write(self.etc.path().join("nsswitch.conf"), content).unwrap();
    }

    fn run(&self, args: &str) -> Run {
        in_mount_namespace(
            &format!(
                "mount --bind \"$1\" /etc && mount --bind \"$2\" /etc/hosts && exec \"$0\" {args}"
            ),
            &[self.etc.path().as_os_str(), self.hosts.path().as_os_str()],
        )
    }

    fn hosts(&self) -> String {
        fs::read_to_string(self.hosts.path()).unwrap()
    }

    /// What glibc's resolver says for `name` in the container, through
    /// `getent hosts` (not through wott-mqtt): the address and names of
    /// its answer, or nothing when the name does not resolve.
    fn getent(&self, name: &str) -> Vec<String> {
        let run = in_mount_namespace(
            &format!(
                "mount --bind \"$1\" /etc && mount --bind \"$2\" /etc/hosts && exec getent hosts {name}"
            ),
            &[self.etc.path().as_os_str(), self.hosts.path().as_os_str()],
        );
        assert!(run.code == 0 || run.code == 2, "getent failed: {run:?}");
        run.stdout.split_whitespace().map(str::to_string).collect()
    }
}

#[test]
fn in_a_container_add_writes_etc_hosts_and_the_resolver_agrees() {
    if skip_without_mount_namespaces() {
        return;
    }
    let docker = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n172.17.0.2\t3f4b1c2d9e8a\n";
    let container = Container::new(docker);
    let name = server(42);

    let run = container.run(&format!("hosts add {name} 10.77.0.5 --json"));
    run.success();
    let doc = run.json();
    assert_eq!(doc["hosts_file"], "/etc/hosts");
    assert_eq!(doc["write_method"], "in-place");
    assert_eq!(
        container.hosts(),
        format!("{docker}10.77.0.5 {name} # wott-mqtt\n")
    );
    // The resolver itself, asked without wott-mqtt.
    assert_eq!(container.getent(&name), ["10.77.0.5", name.as_str()]);

    // And `hosts check` reports the same.
    let run = container.run(&format!("hosts check {name}"));
    run.success()
        .stdout_has("10.77.0.5  (/etc/hosts line 4, wott-mqtt)")
        .stdout_has("resolver     10.77.0.5")
        .stdout_has("✓ the system resolver agrees with /etc/hosts")
        .stderr_is_empty();
    let doc = container.run(&format!("hosts check {name} --json")).json();
    assert_eq!(doc["agrees"], true);
    assert_eq!(doc["system_hosts_file"], true);
    assert_eq!(
        doc["resolver"]["addresses"],
        serde_json::json!(["10.77.0.5"])
    );

    // The resolver follows a changed IP at once.
    container
        .run(&format!("hosts add {name} fd00::77"))
        .success();
    assert_eq!(container.getent(&name), ["fd00::77", name.as_str()]);
    let doc = container.run(&format!("hosts check {name} --json")).json();
    assert_eq!(
        doc["resolver"]["addresses"],
        serde_json::json!(["fd00::77"])
    );
    assert_eq!(doc["agrees"], true);

    // The real /etc/hosts was never the one edited.
    assert!(!fs::read_to_string("/etc/hosts").unwrap().contains(&name));
}

#[test]
fn check_explains_a_resolver_that_does_not_read_the_hosts_file() {
    if skip_without_mount_namespaces() {
        return;
    }
    let name = server(43);
    let container = Container::new(&format!("10.77.0.6 {name} # wott-mqtt\n"));
    container.set_nsswitch("hosts: dns\n");
    // The resolver really ignores the file: getent finds nothing.
    assert_eq!(container.getent(&name), Vec::<String>::new());
    container.run(&format!("hosts check {name}")).code(4).error(
        "does not resolve on this machine",
        "/etc/nsswitch.conf lists `files`",
    );
}
