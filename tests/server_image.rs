//! `server image` against the real Docker engine: it builds the local image
//! from this machine's Mosquitto with the official layout, finds it current
//! the second time, and refuses clearly, tagging nothing, when the binary
//! is no Mosquitto 2 that can run, the tag is not a reference, there is no
//! engine, or the engine refuses the archive.
//!
//! Every test tags its own image (a unique tag, removed on drop), so tests
//! and parallel runs never meet. Binaries that are ELF but no usable
//! Mosquitto are compiled here with `cc`.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::docker::{self, ImageGuard, image_id};
use support::{skip_without, wott};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A tag no other test or run uses, removed when dropped.
fn unique_tag(what: &str) -> ImageGuard {
    ImageGuard(format!(
        "wott-mqtt-test/image-{what}:{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

fn image(tag: &ImageGuard) -> support::Wott {
    wott().args(["server", "image", "--tag", &tag.0])
}

fn inspect(image: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["image", "inspect", "-f", format, image])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn sha256_of(path: &str) -> String {
    let bytes = std::fs::read(path).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn it_builds_the_official_layout_once_and_then_finds_it_current() {
    if !docker::available() {
        return;
    }
    let tag = unique_tag("build");
    let run = image(&tag).arg("--json").run();
    run.success();
    let doc = run.json();
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["tag"], tag.0.as_str());
    let id = doc["id"].as_str().unwrap().to_string();
    assert_eq!(image_id(&tag.0).as_deref(), Some(id.as_str()));
    assert_eq!(doc["mosquitto"]["version"], "2.0.11");
    assert_eq!(doc["mosquitto"]["sha256"], sha256_of("/usr/sbin/mosquitto"));

    // The official image's command, port and volumes; labels naming the source.
    assert_eq!(
        inspect(&tag.0, "{{json .Config.Cmd}}"),
        r#"["/usr/sbin/mosquitto","-c","/mosquitto/config/mosquitto.conf"]"#
    );
    assert_eq!(
        inspect(&tag.0, "{{json .Config.ExposedPorts}}"),
        r#"{"1883/tcp":{}}"#
    );
    assert_eq!(
        inspect(&tag.0, "{{json .Config.Volumes}}"),
        r#"{"/mosquitto/data":{},"/mosquitto/log":{}}"#
    );
    let label = |key: &str| inspect(&tag.0, &format!("{{{{index .Config.Labels \"{key}\"}}}}"));
    assert_eq!(
        label("org.wott-mqtt.image.mosquitto-sha256"),
        sha256_of("/usr/sbin/mosquitto")
    );
    assert!(label("org.wott-mqtt.image.mosquitto-package").starts_with("mosquitto 2.0.11-"));

    // The files, owners and modes, as a container of it sees them.
    let listing = layout(&tag.0);
    for dir in ["mosquitto/config/", "mosquitto/data/", "mosquitto/log/"] {
        assert!(
            listing.contains(&(dir.to_string(), 1883)),
            "{dir}: {listing:?}"
        );
    }
    for file in [
        "usr/sbin/mosquitto",
        "etc/passwd",
        "lib64/ld-linux-x86-64.so.2",
    ] {
        assert!(
            listing.iter().any(|(p, _)| p == file),
            "{file}: {listing:?}"
        );
    }

    // Again: current, nothing changes, and quickly the same ID.
    let run = image(&tag).arg("--json").run();
    run.success();
    assert_eq!(run.json()["changed"], false);
    assert_eq!(run.json()["id"], id.as_str());
    image(&tag)
        .run()
        .success()
        .stdout_has(&format!("{} is current; nothing changed.", tag.0));
}

/// `(path, uid)` of every entry of a container made from `image`.
fn layout(image: &str) -> Vec<(String, u64)> {
    let name = format!("wott-mqtt-test-layout-{}", std::process::id());
    let _guard = support::server::ContainerGuard(name.clone());
    let created = Command::new("docker")
        .args(["create", "--name", &name, image])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let export = Command::new("docker")
        .args(["export", &name])
        .output()
        .unwrap();
    assert!(export.status.success());
    let mut archive = tar::Archive::new(export.stdout.as_slice());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().display().to_string(),
                e.header().uid().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_dry_run_says_what_it_would_build_and_tags_nothing() {
    if !docker::available() {
        return;
    }
    let tag = unique_tag("dry");
    let run = image(&tag).args(["--dry-run", "--json"]).run();
    run.success();
    assert_eq!(run.json()["changed"], true);
    assert_eq!(run.json()["dry_run"], true);
    assert!(run.json()["id"].is_null());
    assert_eq!(image_id(&tag.0), None);
}

/// A C program compiled here, or `None` (skipped) without a compiler.
fn compile(dir: &Path, name: &str, source: &str, args: &[&str]) -> Option<PathBuf> {
    let found = Command::new("cc").arg("--version").output().is_ok();
    if skip_without("a C compiler (cc)", found) {
        return None;
    }
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let out = dir.join(name);
    let status = Command::new("cc")
        .arg(&c)
        .arg("-o")
        .arg(&out)
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success());
    Some(out)
}

#[test]
fn binaries_that_are_no_usable_mosquitto_2_are_refused_and_nothing_is_tagged() {
    if !docker::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = dir.path().join("mosquitto.sh");
    std::fs::write(&script, "#!/bin/sh\necho mosquitto version 2.0.11\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some(old) = compile(
        dir.path(),
        "old",
        "#include <stdio.h>\nint main(void){puts(\"mosquitto version 1.6.9\");return 3;}\n",
        &[],
    ) else {
        return;
    };
    let lib = dir.path().join("libwottgone.so");
    let lib_ok = Command::new("sh")
        .arg("-c")
        .arg("echo 'int gone(void){return 0;}' > gone.c && cc -shared -fPIC gone.c -o libwottgone.so")
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(lib_ok.success());
    let unresolved = compile(
        dir.path(),
        "unresolved",
        "int gone(void);\nint main(void){return gone();}\n",
        &["-L.", "-lwottgone"],
    )
    .unwrap();
    std::fs::remove_file(&lib).unwrap();

    let cases: [(&Path, &str, &str); 5] = [
        (
            &script,
            "cannot be the Mosquitto binary: it is not an ELF executable",
            "point --mosquitto",
        ),
        (
            &old,
            "is Mosquitto 1.6.9; wott-mqtt renders a configuration for Mosquitto 2.0",
            "install Mosquitto 2",
        ),
        (
            &unresolved,
            "links libwottgone.so, which is not installed on this machine",
            "reinstall it",
        ),
        (
            Path::new("/usr/bin/true"),
            "does not say it is Mosquitto",
            "point --mosquitto",
        ),
        (
            Path::new("/no/such/mosquitto"),
            "/no/such/mosquitto is not a file",
            "check the path given with --mosquitto",
        ),
    ];
    for (binary, error, hint) in cases {
        let tag = unique_tag("refused");
        image(&tag)
            .arg("--mosquitto")
            .arg(binary)
            .run()
            .code(1)
            .error(error, hint);
        assert_eq!(image_id(&tag.0), None, "{}", binary.display());
    }
    // The same through the environment.
    let tag = unique_tag("refused-env");
    image(&tag)
        .env("WOTT_MQTT_MOSQUITTO", &script)
        .run()
        .code(1)
        .error("it is not an ELF executable", "point --mosquitto");
    assert_eq!(image_id(&tag.0), None);
}

#[test]
fn a_binary_others_may_write_is_not_copied() {
    if !docker::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("mosquitto");
    std::fs::copy("/usr/sbin/mosquitto", &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o777)).unwrap();
    let tag = unique_tag("untrusted");
    image(&tag)
        .arg("--mosquitto")
        .arg(&copy)
        .run()
        .code(1)
        .error("others may write it (mode 0777)", "chmod go-w");
    assert_eq!(image_id(&tag.0), None);

    // A safe file in a folder anyone may write to: it could be swapped.
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    image(&tag)
        .arg("--mosquitto")
        .arg(&copy)
        .run()
        .code(1)
        .error(
            "its folder",
            &format!(
                "chmod go-w {}",
                dir.path().canonicalize().unwrap().display()
            ),
        )
        .stderr_has("others may write it (mode 0777)");
    assert_eq!(image_id(&tag.0), None);
}

#[test]
fn a_tag_that_is_no_image_reference_is_a_usage_error() {
    for bad in [
        "Wott/Mosquitto:1",
        "wott mqtt:1",
        "wott/mosquitto:",
        "wott@sha256:1",
    ] {
        let run = wott().args(["server", "image", "--tag", bad]).run();
        run.code(2)
            .stderr_has(&format!("invalid value '{bad}' for '--tag <TAG>'"))
            .stderr_has("e.g. wott-mqtt/mosquitto:2.0.11-local");
    }
}

#[test]
fn a_tag_on_an_image_wott_mqtt_did_not_build_is_left_alone() {
    if !docker::available() {
        return;
    }
    let tag = unique_tag("foreign");
    let mut import = Command::new("docker")
        .args(["import", "-", &tag.0])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    tar.append_data(&mut header, "hello", b"hi\n".as_slice())
        .unwrap();
    import
        .stdin
        .take()
        .unwrap()
        .write_all(&tar.into_inner().unwrap())
        .unwrap();
    assert!(import.wait().unwrap().success());
    let before = image_id(&tag.0).unwrap();
    image(&tag).run().code(1).error(
        "already names an image that wott-mqtt did not build",
        "docker rmi",
    );
    assert_eq!(image_id(&tag.0), Some(before));
}

#[test]
fn without_an_engine_it_says_so() {
    let tag = unique_tag("noengine");
    image(&tag)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run()
        .code(1)
        .error("no container engine answered", "DOCKER_HOST");
}

/// A relay to the real engine that breaks the manifest in the body of
/// `POST /images/load`: the engine receives a whole archive it cannot read,
/// and refuses it. Every other request passes unchanged.
struct Corrupting {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Corrupting {
    fn new() -> Corrupting {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let engine = UnixStream::connect("/var/run/docker.sock").unwrap();
                let (mut from_engine, mut to_client) =
                    (engine.try_clone().unwrap(), client.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_engine, &mut to_client);
                    let _ = to_client.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || Self::forward(client, engine));
            }
        });
        Corrupting { path, _dir: dir }
    }

    fn forward(mut client: UnixStream, mut engine: UnixStream) {
        let mut buf = vec![0u8; 65536];
        // Sent already, kept to find a marker that straddles two reads.
        let mut tail: Vec<u8> = Vec::new();
        // From `/images/load` on, held back until the manifest is broken.
        let mut held: Option<Vec<u8>> = None;
        while let Ok(n) = client.read(&mut buf) {
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            let mut send: Vec<u8> = Vec::new();
            match held.as_mut() {
                None => {
                    let mut window = std::mem::take(&mut tail);
                    window.extend_from_slice(chunk);
                    match find(&window, b"/images/load") {
                        Some(at) => {
                            let split = at.saturating_sub(window.len() - n);
                            send.extend_from_slice(&chunk[..split]);
                            held = Some(chunk[split..].to_vec());
                        }
                        None => {
                            send.extend_from_slice(chunk);
                            tail = window[window.len().saturating_sub(16)..].to_vec();
                        }
                    }
                }
                Some(h) if h.is_empty() => send.extend_from_slice(chunk),
                Some(h) => h.extend_from_slice(chunk),
            }
            if let Some(h) = held.as_mut().filter(|h| !h.is_empty())
                && let Some(at) = find(h, br#"[{"Config""#)
            {
                h[at] = b'!';
                send.append(h);
            }
            if engine.write_all(&send).is_err() {
                break;
            }
        }
        let _ = engine.shutdown(std::net::Shutdown::Write);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn an_engine_that_refuses_the_archive_is_named_and_nothing_is_tagged() {
    if !docker::available() {
        return;
    }
    let relay = Corrupting::new();
    let tag = unique_tag("refusal");
    image(&tag)
        .env("DOCKER_HOST", format!("unix://{}", relay.path.display()))
        .run()
        .code(1)
        .error(
            &format!("the container engine refused the image {}", tag.0),
            "nothing was tagged",
        );
    assert_eq!(image_id(&tag.0), None);
}
