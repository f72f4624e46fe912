//! The security review's lock finding, replayed: the edit lock is an
//! `flock` on the file's folder, which any user who may open the folder can
//! take, so `flock /etc sleep …` by anyone made root's `hosts add` wait
//! silently forever. Now it says that it waits, gives up after a deadline
//! with the way to find the holder, and changes nothing.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{root_available, wott};

#[test]
fn a_lock_another_user_holds_ends_the_wait_with_a_clear_error() {
    if !root_available("to hold the lock as another user") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let hosts = tmp.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1\tlocalhost\n").unwrap();
    // As nobody: hold the folder's lock, say so, and keep it (`-o`: in
    // flock itself, so that killing it frees the lock).
    let mut holder = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "flock",
            "-o",
        ])
        .arg(tmp.path())
        .args(["sh", "-c", "echo held; exec sleep 60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "held\n", "flock never took the lock");
    let begun = Instant::now();
    let run = wott()
        .env("WOTT_MQTT_LOCK_TIMEOUT", "2")
        .args([
            "hosts",
            "add",
            "4853b630822946019393b16c5b710b9e.d.wott.local",
            "192.168.1.20",
            "--hosts-file",
        ])
        .arg(&hosts)
        .run();
    let took = begun.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    run.code(1)
        .stderr_has("waiting for the edit lock on")
        .error(
            &format!(
                "cannot lock {} for editing: something has held the lock on {} for 2 s",
                hosts.display(),
                tmp.path().display()
            ),
            "fuser -v",
        );
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert_eq!(
        std::fs::read_to_string(&hosts).unwrap(),
        "127.0.0.1\tlocalhost\n"
    );
    // Free again, the same edit goes through at once.
    wott()
        .args([
            "hosts",
            "add",
            "4853b630822946019393b16c5b710b9e.d.wott.local",
            "192.168.1.20",
            "--hosts-file",
        ])
        .arg(&hosts)
        .run()
        .success();
}
