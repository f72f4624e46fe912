//! The security review's in-place finding, replayed: a file that cannot be
//! replaced by rename is written in place (here: a user's own file in a
//! folder only root may write to, so no temp file can be made beside it;
//! a container's bind-mounted /etc/hosts is the other case). On a full disk
//! that write used to stop half-way (an ACL lost its last `deny`, a hosts
//! file got half a line) and the hint still said "the file was not
//! changed". Now the space is reserved first: the edit fails before a byte
//! changes, and says so.

#![allow(clippy::unwrap_used)]

mod support;

use std::ffi::OsStr;
use std::path::Path;

use support::{root_available, wott_inside};

/// Runs `wott-mqtt ARGS` as `nobody` in a mount namespace where `dir` is a
/// full 1 MiB tmpfs, root's and closed to others, holding a copy of `file`
/// that `nobody` owns; returns the run and the file's bytes afterwards.
fn on_full_disk(dir: &Path, file: &str, args: &[&str]) -> (support::Run, Vec<u8>) {
    let out = tempfile::tempdir().unwrap();
    let script = r#"set -e
dir=$1; file=$2; out=$3; shift 3
cp "$dir/$file" "$out/seed"
mount -t tmpfs -o size=1m,mode=0755 tmpfs "$dir"
cp "$out/seed" "$dir/$file"
chown 65534:65534 "$dir/$file"
dd if=/dev/zero of="$dir/.filler" bs=4096 2>/dev/null || true
set +e
setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
code=$?
cp "$dir/$file" "$out/after"
exit $code"#;
    let run = wott_inside(
        "unshare",
        [
            OsStr::new("--mount"),
            OsStr::new("--propagation"),
            OsStr::new("private"),
            OsStr::new("sh"),
            OsStr::new("-c"),
            OsStr::new(script),
            OsStr::new("sh"),
            dir.as_os_str(),
            OsStr::new(file),
            out.path().as_os_str(),
        ],
    )
    .args(args)
    .run();
    (run, std::fs::read(out.path().join("after")).unwrap())
}

#[test]
fn a_full_disk_stops_an_in_place_edit_before_it_changes_a_byte() {
    if !root_available("to mount a small tmpfs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Larger than a tmpfs block, so that growing it needs new blocks.
    // Two whole tmpfs pages: any growth needs a new one.
    let mut hosts = String::from("127.0.0.1\tlocalhost\n");
    while hosts.len() < 8192 {
        hosts.push_str("10.1.2.3 filler-name-for-a-full-block.example.com\n");
    }
    hosts.truncate(8192 - 1);
    hosts.push('\n');
    std::fs::write(tmp.path().join("hosts"), &hosts).unwrap();
    let hosts_file = tmp.path().join("hosts").display().to_string();
    let (run, after) = on_full_disk(
        tmp.path(),
        "hosts",
        &[
            "hosts",
            "add",
            "4853b630822946019393b16c5b710b9e.d.wott.local",
            "192.168.1.20",
            "--hosts-file",
            &hosts_file,
        ],
    );
    run.code(1)
        .stderr_has("No space left on device")
        .stderr_has("the file was not changed");
    assert_eq!(String::from_utf8(after).unwrap(), hosts);

    let mut acl = String::from("user d1\ntopic readwrite wott/#\n");
    while acl.len() < 8192 {
        acl.push_str("# a comment that fills the block up to the end\n");
    }
    acl.truncate(8192 - "\ntopic deny secret/#\n".len());
    acl.push_str("\ntopic deny secret/#\n");
    std::fs::write(tmp.path().join("permissions.acl"), &acl).unwrap();
    let acl_file = tmp.path().join("permissions.acl").display().to_string();
    let (run, after) = on_full_disk(
        tmp.path(),
        "permissions.acl",
        &[
            "acl",
            "--acl-file",
            &acl_file,
            "--any-id",
            "allow",
            "d2.example.com",
            "wott/temperature",
        ],
    );
    run.code(1)
        .stderr_has("No space left on device")
        .stderr_has("the file was not changed");
    assert_eq!(String::from_utf8(after).unwrap(), acl);
}
