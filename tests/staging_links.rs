//! The security review's staging finding, replayed through the binary as
//! the broker's own uid: uid 1883 owned `certs/` and could replace the
//! staged copies with links to root's files, which root's next `server
//! reload` overwrote with the device key and gave to uid 1883. Now the
//! links are replaced, never followed, and `certs/` becomes root's, so uid
//! 1883 cannot plant anything in it again.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use support::server::{Server, owner_and_mode};
use support::{docker, is_root};

/// `sh -c SCRIPT` as uid:gid 1883 (the broker's user), without groups.
fn as_broker(script: &str) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=1883",
            "--regid=1883",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap()
}

#[test]
fn links_the_broker_user_plants_in_certs_are_never_followed() {
    if !docker::available() || !is_root() {
        return;
    }
    let server = Server::new("links");
    server.up().run().success();
    let certs = server.path("certs");
    // The layout of earlier releases: certs/ belonged to uid 1883.
    std::os::unix::fs::chown(&certs, Some(1883), Some(1883)).unwrap();
    std::fs::set_permissions(&certs, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let victim = server.root.path().join("authorized_keys");
    std::fs::write(&victim, "ssh-ed25519 AAAA root@host\n").unwrap();
    std::os::unix::fs::chown(&victim, Some(0), Some(0)).unwrap();
    let out = as_broker(&format!(
        "ln -sf {v} {c}/client.key && ln -sf {v} {c}/client.crt",
        v = victim.display(),
        c = certs.display()
    ));
    assert!(out.status.success(), "{out:?}");

    server.cmd("reload").run().success();

    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "ssh-ed25519 AAAA root@host\n",
        "the link's target is never written"
    );
    assert_eq!(std::fs::metadata(&victim).unwrap().uid(), 0);
    let key = std::fs::symlink_metadata(certs.join("client.key")).unwrap();
    assert!(key.file_type().is_file(), "the link itself was replaced");
    assert_eq!(owner_and_mode(&certs.join("client.key")), (1883, 0o600));
    assert_eq!(owner_and_mode(&certs), (0, 0o750));
    // And uid 1883 can no longer put anything there.
    let out = as_broker(&format!(
        "ln -sf {v} {c}/client.key.new",
        v = victim.display(),
        c = certs.display()
    ));
    assert!(!out.status.success(), "uid 1883 created an entry in certs/");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    // The broker still reads its copies.
    server.cmd("status").run().success();
}
