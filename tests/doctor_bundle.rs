//! `doctor --bundle FILE` on a real broker: one tar.gz, mode 0600, with
//! everything support asks for, and no key material in any form. The
//! archive is extracted and every file searched for PEM markers, `PRIVATE
//! KEY`, and slices of each key's PEM body and DER (the key's PEM is also
//! planted in permissions.acl, to prove the scrubbing). And the file is
//! written safely: never through a link, never in a folder others may
//! write to without the sticky bit.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::doctor::Scratch;
use support::server::{Server, owner_and_mode};
use support::{docker, random_device_id, wott};

fn bundle_cmd(server: &Server, hosts: &Path, path: &Path) -> support::Wott {
    support::doctor::doctor(&server.certs.dir(), &server.dir(), hosts)
        .args([
            "--timeout",
            "3",
            "--port",
            &server.port.to_string(),
            "--bundle",
        ])
        .arg(path)
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    support::snapshot(dir)
}

fn extract(archive: &Path) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    out
}

/// Slices of a PEM key's base64 body and of its DER.
fn key_fragments(pem: &str) -> (Vec<String>, Vec<Vec<u8>>) {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = data_encoding::BASE64.decode(body.as_bytes()).unwrap();
    let text: Vec<String> = body
        .as_bytes()
        .chunks_exact(32)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let binary: Vec<Vec<u8>> = der.chunks_exact(16).map(<[u8]>::to_vec).collect();
    assert!(text.len() >= 3 && binary.len() >= 3);
    (text, binary)
}

fn assert_no_key_material(dir: &Path, keys: &[String]) {
    for (path, bytes) in files(dir) {
        let text = String::from_utf8_lossy(&bytes);
        for marker in ["-----BEGIN", "PRIVATE KEY"] {
            assert!(
                !text.contains(marker),
                "{} holds {marker}:\n{text}",
                path.display()
            );
        }
        for key in keys {
            let (text_slices, der_slices) = key_fragments(key);
            for slice in &text_slices {
                assert!(
                    !text.contains(slice.as_str()),
                    "{} holds a piece of a key's PEM",
                    path.display()
                );
            }
            for slice in &der_slices {
                assert!(
                    !bytes.windows(slice.len()).any(|w| w == slice.as_slice()),
                    "{} holds a piece of a key's DER",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_bundle_holds_what_support_needs_and_no_key_material() {
    if !support::root_available("to stage copies for uid 1883") || !docker::available() {
        return;
    }
    let server = Server::new("doctor-bundle");
    server.up().run().success();
    let client = random_device_id().unwrap();
    support::wott()
        .cert_dir(&server.certs.dir())
        .arg("--server-dir")
        .arg(server.dir())
        .args(["acl", "allow", &client, "wott/temperature"])
        .run()
        .success();
    let scratch = Scratch::new();
    std::fs::write(
        scratch.hosts(),
        format!(
            "127.0.0.1 localhost\n127.0.0.1 {} # wott-mqtt\n",
            server.id()
        ),
    )
    .unwrap();
    let key = std::fs::read_to_string(server.certs.path("client.key")).unwrap();
    let staged_key = std::fs::read_to_string(server.path("certs/client.key")).unwrap();

    let path = scratch.root.path().join("support.tar.gz");
    let run = bundle_cmd(&server, &scratch.hosts(), &path)
        .arg("--log-lines")
        .arg("5")
        .run();
    run.success();
    let doc = run.json();
    assert_eq!(doc["bundle"]["path"], path.display().to_string());
    assert_eq!(owner_and_mode(&path).1, 0o600);

    let out = extract(&path);
    let root = out.path().join("wott-mqtt-doctor");
    for name in [
        "version.txt",
        "doctor.json",
        "server-status.json",
        "broker.log",
        "server/mosquitto.conf",
        "server/broker.json",
        "server/permissions.acl",
        "hosts.txt",
        "certificates.json",
    ] {
        assert!(root.join(name).is_file(), "the bundle lacks {name}");
    }
    assert!(root.join(format!("check/{}.json", server.id())).is_file());
    let version = std::fs::read_to_string(root.join("version.txt")).unwrap();
    assert!(version.starts_with("wott-mqtt 0."), "{version}");
    assert!(
        version.contains("container engine:") && version.contains("os-release"),
        "{version}"
    );
    let findings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("doctor.json")).unwrap()).unwrap();
    assert!(findings["findings"].as_array().unwrap().len() > 20);
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("server-status.json")).unwrap()).unwrap();
    assert_eq!(status["running"], true);
    let log = std::fs::read_to_string(root.join("broker.log")).unwrap();
    assert!(log.lines().count() <= 5, "{log}");
    assert!(
        std::fs::read_to_string(root.join("server/permissions.acl"))
            .unwrap()
            .contains(&client)
    );
    assert!(
        std::fs::read_to_string(root.join("hosts.txt"))
            .unwrap()
            .contains(server.id())
    );
    let certs = std::fs::read_to_string(root.join("certificates.json")).unwrap();
    let fingerprint = run_fingerprint(&server.certs.path("client.crt"));
    assert!(certs.contains(&fingerprint), "{fingerprint} not in {certs}");
    for field in [
        "subject",
        "issuer",
        "serial",
        "not_before",
        "not_after",
        "served_by_broker",
    ] {
        assert!(certs.contains(field), "{field} not in {certs}");
    }
    assert_no_key_material(out.path(), &[key.clone(), staged_key]);

    // Key material planted where the bundle copies from is scrubbed.
    let acl = server.path("permissions.acl");
    let planted: String = key.lines().map(|l| format!("# {l}\n")).collect();
    let mut text = std::fs::read_to_string(&acl).unwrap();
    text.push_str(&planted);
    std::fs::write(&acl, text).unwrap();
    let run = bundle_cmd(&server, &scratch.hosts(), &path).run();
    run.success();
    let scrubbed = run.json()["bundle"]["scrubbed"].clone();
    assert_eq!(
        scrubbed,
        serde_json::json!(["wott-mqtt-doctor/server/permissions.acl"])
    );
    let out = extract(&path);
    assert_no_key_material(out.path(), std::slice::from_ref(&key));

    // --no-acl leaves it out.
    let run = bundle_cmd(&server, &scratch.hosts(), &path)
        .arg("--no-acl")
        .run();
    run.success();
    let out = extract(&path);
    assert!(
        !out.path()
            .join("wott-mqtt-doctor/server/permissions.acl")
            .exists()
    );
    assert!(
        out.path()
            .join("wott-mqtt-doctor/server/mosquitto.conf")
            .exists()
    );
}

/// `openssl x509 -fingerprint -sha256`'s colon-separated upper-case hex.
fn run_fingerprint(cert: &Path) -> String {
    let doc = wott()
        .cert_dir(cert.parent().unwrap())
        .args(["whoami", "--json"])
        .run()
        .json();
    doc["certificate"]["fingerprint_sha256"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_bundle_is_never_written_through_a_link_nor_where_others_may_swap_it() {
    let certs = support::CertFixture::new();
    let scratch = Scratch::new();
    let doctor = |path: &Path| {
        support::doctor::doctor(&certs.dir(), &scratch.server_dir(), &scratch.hosts())
            .arg("--bundle")
            .arg(path)
            .run()
    };

    // An existing file is replaced, and ends up 0600.
    let path = scratch.root.path().join("b.tar.gz");
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    doctor(&path).success();
    assert_eq!(owner_and_mode(&path).1, 0o600);
    assert_ne!(std::fs::read(&path).unwrap(), b"old");

    // A link in its place is refused, and what it points to untouched.
    let victim = scratch.root.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let link = scratch.root.path().join("link.tar.gz");
    symlink(&victim, &link).unwrap();
    doctor(&link)
        .code(1)
        .error("refusing to write the bundle", "");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // A folder anyone may write to is refused, unless it is sticky.
    let open = scratch.root.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    doctor(&open.join("b.tar.gz"))
        .code(1)
        .error("other users may write to", "");
    assert!(!open.join("b.tar.gz").exists());
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    doctor(&open.join("b.tar.gz")).success();
    assert_eq!(owner_and_mode(&open.join("b.tar.gz")).1, 0o600);

    // Identity only: the bundle still has what applies, no key.
    let out = extract(&open.join("b.tar.gz"));
    let root = out.path().join("wott-mqtt-doctor");
    assert!(root.join("doctor.json").is_file() && root.join("certificates.json").is_file());
    assert!(!root.join("server-status.json").exists());
    let key = std::fs::read_to_string(certs.path("client.key")).unwrap();
    assert_no_key_material(out.path(), &[key]);
}
