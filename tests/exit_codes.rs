//! docs/exit-codes.md against the binary: which identity problem stops
//! which command (exit 3) and which only warns. Each row of the doc's table
//! is rebuilt here from real runs and must be in the doc as is.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use support::{CertFixture, DeviceRequest, Run, wott};

const DOC: &str = include_str!("../docs/exit-codes.md");
/// WoTT-shaped IDs for the commands that take one.
const SERVER: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";
const CLIENT: &str = "0123456789abcdef0123456789abcdef.d.wott.local";

/// The identity problems, in the table's column order.
fn problems() -> Vec<CertFixture> {
    let mismatch = CertFixture::new();
    let other = CertFixture::new();
    std::fs::copy(other.path("client.key"), mismatch.path("client.key")).unwrap();
    let missing = CertFixture::new();
    std::fs::remove_file(missing.path("client.crt")).unwrap();
    vec![
        CertFixture::with(DeviceRequest::expired),
        CertFixture::with(DeviceRequest::not_yet_valid),
        mismatch,
        missing,
    ]
}

/// A row's command, run as the device of `fx` with its files in `tmp`.
/// The engine never answers, so nothing past the identity can happen.
fn run(command: &str, fx: &CertFixture, tmp: &Path) -> Run {
    let acl = tmp.join("permissions.acl");
    std::fs::write(&acl, format!("user {}\ntopic readwrite wott/#\n", fx.id())).unwrap();
    let args: &[&str] = match command {
        "whoami" => &["whoami"],
        "whoami --long" => &["whoami", "--long"],
        "acl allow self" => &["acl", "allow", "self", "wott/t"],
        "acl check self" => &["acl", "check", "self", "wott/t"],
        "check" => &["check", "--server", SERVER],
        "server up" => &["server", "up"],
        "server reload" => &["server", "reload"],
        "setup client" => &[
            "setup",
            "client",
            "--server",
            SERVER,
            "--ip",
            "192.0.2.1",
            "--yes",
        ],
        "setup server" => &["setup", "server", "--allow", CLIENT, "--yes"],
        other => panic!("no way to run {other:?}"),
    };
    wott()
        .args(args)
        .cert_dir(&fx.dir())
        .env("WOTT_MQTT_SERVER_DIR", tmp.join("server"))
        .env("WOTT_MQTT_ACL_FILE", &acl)
        .env("WOTT_MQTT_HOSTS_FILE", tmp.join("hosts"))
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .run()
}

#[test]
fn the_identity_table_is_what_each_command_does() {
    let problems = problems();
    for command in [
        "whoami",
        "whoami --long",
        "acl allow self",
        "acl check self",
        "check",
        "server up",
        "server reload",
        "setup client",
        "setup server",
    ] {
        let cells: Vec<String> = problems
            .iter()
            .map(|fx| {
                let tmp = tempfile::tempdir().unwrap();
                let run = run(command, fx, tmp.path());
                if run.code == 3 {
                    // A refusal changes nothing: no hosts file, no server dir.
                    assert!(!tmp.path().join("hosts").exists(), "{command}");
                    assert!(!tmp.path().join("server").exists(), "{command}");
                }
                let warns = run.stderr.lines().any(|l| l.starts_with("warning: "));
                format!("{}{}", run.code, if warns { ", warns" } else { "" })
            })
            .collect();
        let row = format!("| `{command}` | {} |", cells.join(" | "));
        assert!(
            DOC.contains(&row),
            "docs/exit-codes.md lacks the row\n{row}"
        );
    }
}
