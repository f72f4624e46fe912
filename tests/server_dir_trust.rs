//! The security review's server-dir findings, replayed through the binary:
//! root's `server up` must not write into a folder another user controls
//! (a `mosquitto.conf` linked to a root file, a `data` link that root would
//! chown and mount read-write), and the folders it creates get mode 0755
//! whatever the umask.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::process::Command;

use support::server::{Server, owner_and_mode};
use support::{docker, is_root};

const NOBODY: u32 = 65534;

fn victim(server: &Server) -> std::path::PathBuf {
    let path = server.root.path().join("victim");
    std::fs::write(&path, "root's own file\n").unwrap();
    path
}

#[test]
fn a_server_dir_another_user_owns_is_refused_and_nothing_written() {
    if !docker::available() || !is_root() {
        return;
    }
    let server = Server::new("trust-owner");
    let target = victim(&server);
    std::fs::create_dir(server.dir()).unwrap();
    symlink(&target, server.path("mosquitto.conf")).unwrap();
    std::os::unix::fs::lchown(server.path("mosquitto.conf"), Some(NOBODY), Some(NOBODY)).unwrap();
    std::os::unix::fs::chown(server.dir(), Some(NOBODY), Some(NOBODY)).unwrap();
    server
        .up()
        .run()
        .code(1)
        .error(
            &format!(
                "refusing the server dir: {} it belongs to another user than root (owner uid {NOBODY}, mode 0755)",
                server.dir().display()
            ),
            "only root may control it and every folder above it",
        );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "root's own file\n"
    );
    assert_eq!(server.inspect("{{.Id}}"), None, "no container was created");
}

#[test]
fn a_linked_conf_or_data_folder_is_refused_even_in_roots_own_dir() {
    if !docker::available() || !is_root() {
        return;
    }
    let server = Server::new("trust-links");
    let target = victim(&server);
    std::fs::create_dir(server.dir()).unwrap();
    symlink(&target, server.path("mosquitto.conf")).unwrap();
    server
        .up()
        .run()
        .code(1)
        .stderr_has("mosquitto.conf it is a symbolic link")
        .stderr_has("sudo rm ");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "root's own file\n"
    );

    std::fs::remove_file(server.path("mosquitto.conf")).unwrap();
    let rootdir = server.root.path().join("rootdir");
    std::fs::create_dir(&rootdir).unwrap();
    symlink(&rootdir, server.path("data")).unwrap();
    server
        .up()
        .run()
        .code(1)
        .stderr_has("is a symbolic link, not a directory");
    assert_eq!(
        owner_and_mode(&rootdir).0,
        0,
        "the link's target keeps its owner"
    );
    assert_eq!(server.inspect("{{.Id}}"), None);
}

#[test]
fn a_folder_above_that_others_may_write_is_refused_but_tmp_is_fine() {
    if !docker::available() || !is_root() {
        return;
    }
    let server = Server::new("trust-above");
    let above = server.root.path().join("shared");
    std::fs::create_dir(&above).unwrap();
    std::fs::set_permissions(&above, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = support::wott()
        .cert_dir(&server.certs.dir())
        .arg("--server-dir")
        .arg(above.join("mosquitto"))
        .args([
            "server",
            "up",
            "--name",
            &server.name,
            "--image",
            server.image(),
        ])
        .args(["--bind", "127.0.0.1", "--port", &server.port.to_string()])
        .run();
    run.code(1).stderr_has(&format!(
        "refusing the server dir: {} other users may write to it (owner uid 0, mode 0777)",
        above.display()
    ));
    assert!(!above.join("mosquitto").exists());
}

#[test]
fn folders_it_creates_are_0755_whatever_the_umask() {
    if !docker::available() || !is_root() {
        return;
    }
    let server = Server::new("trust-umask");
    let deep = server.root.path().join("a/b/mosquitto");
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"umask 000 && exec "$@""#)
        .arg("sh")
        .arg(support::bin())
        .arg("--cert-dir")
        .arg(server.certs.dir())
        .arg("--server-dir")
        .arg(&deep)
        .args([
            "server",
            "up",
            "--name",
            &server.name,
            "--image",
            server.image(),
        ])
        .args(["--bind", "127.0.0.1", "--port", &server.port.to_string()])
        .env("WOTT_MQTT_TEST", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for dir in [
        server.root.path().join("a"),
        server.root.path().join("a/b"),
        deep.clone(),
    ] {
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(
            (meta.uid(), meta.permissions().mode() & 0o7777),
            (0, 0o755),
            "{}",
            dir.display()
        );
    }
}
