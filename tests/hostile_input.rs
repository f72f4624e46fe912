//! The hostile-input catalogue: every way a value, a file or a filesystem can
//! be wrong, through the real binary. Each case must end in an `error:` line
//! that names the cause, a `hint:` line with the fix, the documented non-zero
//! exit code (also in `--json`), no raw control character on the terminal, a
//! short message even for a huge value, and every file byte for byte (and
//! every link, folder and device) as it was, with no temp file left behind.
//!
//! This file owns the case list; the table in docs/reliability.md is made
//! from it. `UPDATE_DOCS=1 cargo test --test hostile_input` rewrites the table;
//! otherwise a test fails when the two differ.

#![allow(clippy::unwrap_used)]

mod support;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::{Authority, DeviceRequest, Run, is_root, skip_without, wott, wott_inside};

const SERVER: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";
const DEVICE: &str = "7b3e0f1a2c4d4e5f8a9b0c1d2e3f4a5b.d.wott.local";

const HOSTS: &str = "127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n\n\
                     ::1\t\tlocalhost ip6-localhost ip6-loopback\n\
                     192.168.1.20 4853b630822946019393b16c5b710b9e.d.wott.local # wott-mqtt\n";

const ACL: &str = "# permissions.acl\n\
                   user 4853b630822946019393b16c5b710b9e.d.wott.local\n\
                   topic readwrite wott/#\n\n\
                   user 7b3e0f1a2c4d4e5f8a9b0c1d2e3f4a5b.d.wott.local\n\
                   topic read wott/temperature\n";

/// Where a case's command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The fixture folder as it is.
    Here,
    /// The fixture folder bind-mounted read-only, in a mount namespace.
    ReadOnly,
    /// The fixture folder on a tmpfs with no byte left, in a mount namespace.
    FullDisk,
}

/// One hostile input: the command, what it must say, and how it exits.
struct Case {
    kind: &'static str,
    what: &'static str,
    /// `$HOSTS`, `$ACL`, `$CERTS` stand for the fixture's files.
    args: Vec<OsString>,
    prepare: fn(&Fixture),
    place: Place,
    code: i32,
    /// What the `error:` and `hint:` lines must contain: required, and never
    /// empty (an empty fragment is in every message), see [`Case::says`].
    error: Option<&'static str>,
    hint: Option<&'static str>,
}

fn case(kind: &'static str, what: &'static str, args: &[&str]) -> Case {
    Case {
        kind,
        what,
        args: args.iter().map(OsString::from).collect(),
        prepare: |_| {},
        place: Place::Here,
        code: 2,
        error: None,
        hint: None,
    }
}

impl Case {
    #[track_caller]
    fn says(mut self, code: i32, error: &'static str, hint: &'static str) -> Self {
        assert!(
            !error.trim().is_empty() && !hint.trim().is_empty(),
            "case {:?}: the expected error and hint must say something",
            self.what
        );
        self.code = code;
        self.error = Some(error);
        self.hint = Some(hint);
        self
    }

    /// The expected error and hint fragments; a case without them is a defect.
    fn expected(&self) -> (&'static str, &'static str) {
        match (self.error, self.hint) {
            (Some(error), Some(hint)) => (error, hint),
            _ => panic!(
                "case {:?} does not say what the command must say: add .says(code, error, hint)",
                self.what
            ),
        }
    }

    fn prepare(mut self, prepare: fn(&Fixture)) -> Self {
        self.prepare = prepare;
        self
    }

    fn on(mut self, place: Place) -> Self {
        self.place = place;
        self
    }

    /// Replaces argument `index` with raw bytes (not UTF-8, or too long to spell out).
    fn raw(mut self, index: usize, bytes: Vec<u8>) -> Self {
        self.args[index] = OsString::from_vec(bytes);
        self
    }
}

fn long(prefix: &str, fill: char, count: usize, suffix: &str) -> Vec<u8> {
    let mut s = String::from(prefix);
    s.extend(std::iter::repeat_n(fill, count));
    s.push_str(suffix);
    s.into_bytes()
}

/// A PEM block of about 4 MB whose base64 is valid but holds no certificate.
fn pem_4mb(label: &str) -> Vec<u8> {
    let mut pem = format!("-----BEGIN {label}-----\n").into_bytes();
    for i in 0..(4 * 1024 * 1024 / 65) {
        let c = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64];
        pem.extend(std::iter::repeat_n(c, 64));
        pem.push(b'\n');
    }
    pem.extend_from_slice(format!("-----END {label}-----\n").as_bytes());
    pem
}

fn truncate_file(path: &Path) {
    let bytes = fs::read(path).unwrap();
    fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

fn replace_with_dir(path: &Path) {
    fs::remove_file(path).unwrap();
    fs::create_dir(path).unwrap();
}

fn replace_with_link(path: &Path, target: &Path) {
    fs::remove_file(path).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

fn replace_with_fifo(path: &Path) {
    fs::remove_file(path).unwrap();
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo");
}

fn replace_with_loop(path: &Path) {
    let other = path.with_extension("loop");
    replace_with_link(path, &other);
    std::os::unix::fs::symlink(path, &other).unwrap();
}

fn append(path: &Path, bytes: &[u8]) {
    let mut content = fs::read(path).unwrap();
    content.extend_from_slice(bytes);
    fs::write(path, content).unwrap();
}

/// Every case. The order is the table's order.
fn cases() -> Vec<Case> {
    use Place::{FullDisk, ReadOnly};
    const ID: &str = "is a DNS name";
    const TOPIC: &str = "MQTT topics are UTF-8 without control characters";
    const IP: &str = "give the server's IPv4 or IPv6 address";
    const UTF8: &str = "re-type the value, or convert it";
    const CERT: &str = "restore it with `sudo wott-agent`";
    fn hosts<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["hosts", args[0], "--hosts-file", "$HOSTS"];
        v.extend_from_slice(&args[1..]);
        v
    }
    fn acl<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["acl", "--file", "$ACL"];
        v.extend_from_slice(args);
        v
    }
    vec![
        // Injection into device IDs.
        case(
            "device ID",
            "newline smuggling a second hosts line",
            &hosts(&["add", "evil\n10.6.6.6 bank.example", "10.0.0.2"]),
        )
        .says(2, "it contains the character '\\n'", ID),
        case(
            "device ID",
            "space smuggling a second name",
            &hosts(&["add", "evil bank.example", "10.0.0.2"]),
        )
        .says(2, "whitespace and control characters are not allowed", ID),
        case(
            "device ID",
            "tab",
            &hosts(&["add", "evil\tbank.example", "10.0.0.2"]),
        )
        .says(2, "it contains the character '\\t'", ID),
        case(
            "device ID",
            "`#` turning the rest into a comment",
            &hosts(&["add", "evil#x", "10.0.0.2"]),
        )
        .says(2, "it contains '#'", ID),
        case(
            "device ID",
            "terminal escape sequence",
            &hosts(&["add", "evil\x1b[2Jx", "10.0.0.2"]),
        )
        .says(2, "it contains the character '\\u{1b}'", ID),
        case(
            "device ID",
            "carriage return",
            &hosts(&["remove", "evil\rx"]),
        )
        .says(2, "it contains the character '\\r'", ID),
        case(
            "device ID",
            "option-like name",
            &[
                "hosts",
                "add",
                "--hosts-file",
                "$HOSTS",
                "--",
                "-rf",
                "10.0.0.2",
            ],
        )
        .says(2, "starts or ends with '-'", ID),
        case(
            "device ID",
            "newline smuggling an ACL `user` line",
            &acl(&["allow", "d1\nuser admin", "wott/#"]),
        )
        .says(2, "it contains the character '\\n'", ID),
        case(
            "device ID",
            "space in an ACL username",
            &acl(&["allow", "d1 topic", "wott/#"]),
        )
        .says(2, "whitespace and control characters are not allowed", ID),
        case(
            "device ID",
            "MQTT wildcard `+` as a username",
            &acl(&["allow", "+", "wott/#"]),
        )
        .says(2, "it contains '+'", ID),
        case(
            "device ID",
            "newline in `acl revoke`",
            &acl(&["revoke", "d1\ntopic #"]),
        )
        .says(2, "it contains the character '\\n'", ID),
        case(
            "device ID",
            "control character in `acl check`",
            &acl(&["check", "d\x01", "wott/x"]),
        )
        .says(2, "it contains the character '\\u{1}'", ID),
        case(
            "device ID",
            "newline in `setup client --server`",
            &[
                "setup",
                "client",
                "--server",
                "evil\nx",
                "--ip",
                "10.0.0.2",
                "--yes",
                "--hosts-file",
                "$HOSTS",
                "--cert-dir",
                "$CERTS",
            ],
        )
        .says(2, "it contains the character '\\n'", ID),
        // Injection into topics.
        case(
            "topic",
            "newline smuggling a `topic readwrite #` line",
            &acl(&["allow", DEVICE, "a\nuser evil\ntopic readwrite #"]),
        )
        .says(2, "it contains the control character '\\n'", TOPIC),
        case(
            "topic",
            "carriage return",
            &acl(&["allow", DEVICE, "wott/x\r"]),
        )
        .says(2, "it contains the control character '\\r'", TOPIC),
        case(
            "topic",
            "leading space (permissions.acl cannot keep it)",
            &acl(&["allow", DEVICE, " wott/#"]),
        )
        .says(2, "starts or ends with whitespace", TOPIC),
        case(
            "topic",
            "trailing tab",
            &acl(&["allow", DEVICE, "wott/#\t"]),
        )
        .says(2, "it contains the control character '\\t'", TOPIC),
        case(
            "topic",
            "`#` not last",
            &acl(&["allow", DEVICE, "wott/#/x"]),
        )
        .says(2, "'#' must be the last level", TOPIC),
        case(
            "topic",
            "wildcard inside a level",
            &acl(&["allow", DEVICE, "wott/a#"]),
        )
        .says(2, "mixes a wildcard with other characters", TOPIC),
        case("topic", "empty", &acl(&["allow", DEVICE, ""])).says(2, "it is empty", TOPIC),
        case(
            "topic",
            "newline in `acl revoke`",
            &acl(&["revoke", DEVICE, "wott/#\nuser x"]),
        )
        .says(2, "it contains the control character '\\n'", TOPIC),
        case(
            "topic",
            "a filter where `acl check` needs a topic name",
            &acl(&["check", DEVICE, "wott/#"]),
        )
        .says(
            2,
            "needs a topic name, not the filter",
            "check a topic a publisher really uses",
        ),
        case(
            "topic",
            "newline in `acl check --client-id`",
            &acl(&["check", DEVICE, "wott/x", "--client-id", "c\nd"]),
        )
        .says(
            2,
            "contains the control character '\\n'",
            "pass the client ID the device connects with",
        ),
        case(
            "topic",
            "newline in `check --topic`",
            &[
                "check",
                "--server",
                SERVER,
                "--topic",
                "wott/x\ny",
                "--hosts-file",
                "$HOSTS",
                "--cert-dir",
                "$CERTS",
            ],
        )
        .says(2, "it contains the control character '\\n'", TOPIC),
        // Injection into IP addresses.
        case(
            "IP",
            "newline smuggling a second hosts line",
            &hosts(&["add", SERVER, "10.0.0.2\n10.6.6.6 bank.example"]),
        )
        .says(2, "invalid IP address", IP),
        case(
            "IP",
            "space smuggling a second name",
            &hosts(&["add", SERVER, "10.0.0.2 bank.example"]),
        )
        .says(2, "invalid IP address", IP),
        case(
            "IP",
            "`#` after the address",
            &hosts(&["add", SERVER, "10.0.0.2#x"]),
        )
        .says(2, "invalid IP address", IP),
        case(
            "IP",
            "octet out of range",
            &hosts(&["add", SERVER, "10.0.0.256"]),
        )
        .says(2, "it is not an IPv4 address", IP),
        case(
            "IP",
            "IPv6 zone ID",
            &hosts(&["add", SERVER, "fe80::1%eth0"]),
        )
        .says(2, "zone IDs (%eth0) cannot be used in a hosts file", IP),
        case(
            "IP",
            "the unspecified address",
            &hosts(&["add", SERVER, "0.0.0.0"]),
        )
        .says(2, "it is the unspecified address", IP),
        case(
            "IP",
            "a multicast address",
            &hosts(&["add", SERVER, "ff02::1"]),
        )
        .says(2, "it is a multicast address", IP),
        case(
            "IP",
            "newline in `setup client --ip`",
            &[
                "setup",
                "client",
                "--server",
                SERVER,
                "--ip",
                "10.0.0.2\n10.6.6.6 x",
                "--yes",
                "--hosts-file",
                "$HOSTS",
                "--cert-dir",
                "$CERTS",
            ],
        )
        .says(2, "invalid IP address", IP),
        case(
            "IP",
            "newline in `check --connect-to`",
            &[
                "check",
                "--server",
                SERVER,
                "--connect-to",
                "10.0.0.2\nx",
                "--hosts-file",
                "$HOSTS",
                "--cert-dir",
                "$CERTS",
            ],
        )
        .says(2, "invalid IP address", IP),
        // Huge values.
        case(
            "huge",
            "100,000-character device ID",
            &hosts(&["add", "X", "10.0.0.2"]),
        )
        .raw(4, long("", 'a', 100_000, ".d.wott.local"))
        .says(2, "a DNS name has at most 253", ID),
        case(
            "huge",
            "100,000-character IP address",
            &hosts(&["add", SERVER, "X"]),
        )
        .raw(5, long("10.", '0', 100_000, ".1"))
        .says(2, "invalid IP address", IP),
        case(
            "huge",
            "100,000-byte topic (MQTT allows 65,535)",
            &acl(&["allow", DEVICE, "X"]),
        )
        .raw(5, long("wott/", 'x', 100_000, ""))
        .says(2, "MQTT allows at most 65535", TOPIC),
        case(
            "huge",
            "topic with 202 levels (Mosquitto allows 201)",
            &acl(&["allow", DEVICE, "X"]),
        )
        .raw(5, long("wott", '/', 201, "x"))
        .says(
            2,
            "it has 202 levels; Mosquitto refuses topics with more than 201",
            TOPIC,
        ),
        case(
            "huge",
            "64-character DNS label",
            &acl(&["allow", "X", "wott/#"]),
        )
        .raw(4, long("", 'b', 64, ".d.wott.local"))
        .says(2, "a DNS label has at most 63", ID),
        // Not UTF-8.
        case(
            "non-UTF-8",
            "Latin-1 device ID in `hosts add`",
            &hosts(&["add", "X", "10.0.0.2"]),
        )
        .raw(4, b"caf\xe9.d.wott.local".to_vec())
        .says(2, "it is not UTF-8 text", ID),
        case(
            "non-UTF-8",
            "invalid byte in an IP address",
            &hosts(&["add", SERVER, "X"]),
        )
        .raw(5, b"10.0.0.\xff".to_vec())
        .says(2, "it is not UTF-8 text", IP),
        case(
            "non-UTF-8",
            "Latin-1 device ID in `acl allow`",
            &acl(&["allow", "X", "wott/#"]),
        )
        .raw(4, b"caf\xe9".to_vec())
        .says(2, "the argument \"caf\\xe9\" is not UTF-8 text", UTF8),
        case(
            "non-UTF-8",
            "invalid byte in a topic",
            &acl(&["allow", DEVICE, "X"]),
        )
        .raw(5, b"wott/\xff".to_vec())
        .says(2, "the argument \"wott/\\xff\" is not UTF-8 text", UTF8),
        case(
            "non-UTF-8",
            "invalid byte in `check --server`",
            &[
                "check",
                "--server",
                "X",
                "--hosts-file",
                "$HOSTS",
                "--cert-dir",
                "$CERTS",
            ],
        )
        .raw(2, b"\xc3\x28.d.wott.local".to_vec())
        .says(2, "is not UTF-8 text", UTF8),
        // The file being edited.
        case(
            "file",
            "hosts file is a dangling symbolic link",
            &hosts(&["add", SERVER, "10.0.0.2"]),
        )
        .prepare(|f| replace_with_link(&f.hosts(), &f.root().join("gone")))
        .says(
            1,
            "is a symbolic link to",
            "point the link at an existing file",
        ),
        case(
            "file",
            "hosts file is a loop of symbolic links",
            &hosts(&["add", SERVER, "10.0.0.2"]),
        )
        .prepare(|f| replace_with_loop(&f.hosts()))
        .says(
            1,
            "leads to a loop of symbolic links",
            "points back at itself",
        ),
        case(
            "file",
            "ACL file is a dangling symbolic link",
            &acl(&["allow", DEVICE, "wott/#"]),
        )
        .prepare(|f| replace_with_link(&f.acl(), &f.root().join("gone")))
        .says(
            1,
            "is a symbolic link to",
            "point the link at an existing file",
        ),
        case(
            "file",
            "hosts file is a directory",
            &hosts(&["add", SERVER, "10.0.0.2"]),
        )
        .prepare(|f| replace_with_dir(&f.hosts()))
        .says(1, "is a directory, not a file", "not of a directory"),
        case(
            "file",
            "hosts file is a directory (`hosts list`)",
            &hosts(&["list"]),
        )
        .prepare(|f| replace_with_dir(&f.hosts()))
        .says(1, "is a directory, not a file", "not of a directory"),
        case(
            "file",
            "ACL file is a directory",
            &acl(&["allow", DEVICE, "wott/#"]),
        )
        .prepare(|f| replace_with_dir(&f.acl()))
        .says(1, "is a directory, not a file", "not of a directory"),
        case(
            "file",
            "hosts file is /dev/null (rename would replace the device)",
            &hosts(&["add", SERVER, "10.0.0.2"]),
        )
        .prepare(|f| replace_with_link(&f.hosts(), Path::new("/dev/null")))
        .says(
            1,
            "is a character device, not a regular file",
            "pass the path of a regular file",
        ),
        case(
            "file",
            "ACL file is /dev/zero (an edit would never finish reading it)",
            &acl(&["revoke", DEVICE]),
        )
        .prepare(|f| replace_with_link(&f.acl(), Path::new("/dev/zero")))
        .says(
            1,
            "is a character device, not a regular file",
            "pass the path of a regular file",
        ),
        case(
            "file",
            "hosts file is a FIFO (opening it for an edit blocks)",
            &hosts(&["remove", SERVER]),
        )
        .prepare(|f| replace_with_fifo(&f.hosts()))
        .says(
            1,
            "is a FIFO (named pipe), not a regular file",
            "pass the path of a regular file",
        ),
        case(
            "file",
            "ACL file is a FIFO",
            &acl(&["allow", DEVICE, "wott/#"]),
        )
        .prepare(|f| replace_with_fifo(&f.acl()))
        .says(
            1,
            "is a FIFO (named pipe), not a regular file",
            "pass the path of a regular file",
        ),
        case(
            "file",
            "hosts file in a folder that does not exist",
            &[
                "hosts",
                "add",
                "--hosts-file",
                "$ROOT/no/such/hosts",
                SERVER,
                "10.0.0.2",
            ],
        )
        .says(1, "does not exist", "sudo mkdir -p"),
        case(
            "file",
            "a file where the path needs a folder",
            &[
                "hosts",
                "add",
                "--hosts-file",
                "$HOSTS/hosts",
                SERVER,
                "10.0.0.2",
            ],
        )
        .says(1, "Not a directory", "is a file, not a folder"),
        case(
            "file",
            "hosts file on a read-only filesystem",
            &hosts(&["add", SERVER, "10.0.0.2"]),
        )
        .on(ReadOnly)
        .says(1, "Read-only file system", "remount it read-write"),
        case(
            "file",
            "ACL file on a read-only filesystem",
            &acl(&["allow", DEVICE, "wott/#"]),
        )
        .on(ReadOnly)
        .says(1, "Read-only file system", "remount it read-write"),
        case(
            "file",
            "hosts file on a full disk",
            &hosts(&["add", SERVER, "10.0.0.2"]),
        )
        .on(FullDisk)
        .says(1, "No space left on device", "is full; free some space"),
        case("file", "ACL file on a full disk", &acl(&["revoke", DEVICE]))
            .on(FullDisk)
            .says(1, "No space left on device", "is full; free some space"),
        case(
            "file",
            "10,000-character ACL line Mosquitto refuses (`acl check`)",
            &acl(&["check", DEVICE, "wott/temperature"]),
        )
        .prepare(|f| append(&f.acl(), &long("topic read wott/", 'x', 10_000, "#/x\n")))
        .says(11, "Mosquitto would refuse", "acl validate"),
        case(
            "file",
            "10,000-character ACL line Mosquitto refuses (`acl validate`)",
            &acl(&["validate"]),
        )
        .prepare(|f| append(&f.acl(), &long("topic read wott/", 'x', 10_000, "#/x\n")))
        .says(1, "has 1 line(s) Mosquitto refuses", "acl validate"),
        case(
            "file",
            "NUL byte in the ACL file (Mosquitto ignores the rest)",
            &acl(&["check", DEVICE, "wott/temperature"]),
        )
        .prepare(|f| append(&f.acl(), b"topic read x\0y\n"))
        .says(
            11,
            "the line contains a NUL byte: Mosquitto starts, but",
            "acl validate",
        ),
        case(
            "file",
            "`acl allow` after a NUL byte in the ACL file (the grant would never apply)",
            &acl(&[
                "allow",
                "fedcba9876543210fedcba9876543210.d.wott.local",
                "wott/temperature",
            ]),
        )
        .prepare(|f| append(&f.acl(), b"topic read x\0y\n"))
        .says(
            1,
            "contains a NUL byte: Mosquitto ignores that line and every line after it",
            "remove the NUL byte",
        ),
        case(
            "file",
            "NUL byte in the ACL file (`acl validate`)",
            &acl(&["validate"]),
        )
        .prepare(|f| append(&f.acl(), b"topic read x\0y\n"))
        .says(
            1,
            "Mosquitto ignores it from line 7 on (a NUL byte)",
            "acl validate",
        ),
        // Certificates.
        case(
            "certificate",
            "truncated client.crt",
            &["whoami", "--cert-dir", "$CERTS"],
        )
        .prepare(|f| truncate_file(&f.certs().join("client.crt")))
        .says(3, "holds a damaged certificate", CERT),
        case(
            "certificate",
            "truncated client.key",
            &["whoami", "--long", "--cert-dir", "$CERTS"],
        )
        .prepare(|f| truncate_file(&f.certs().join("client.key")))
        .says(3, "client.key holds a damaged private key", CERT),
        case(
            "certificate",
            "truncated ca.crt",
            &["whoami", "--long", "--cert-dir", "$CERTS"],
        )
        .prepare(|f| truncate_file(&f.certs().join("ca.crt")))
        .says(3, "ca.crt holds a damaged CA certificate", CERT),
        case(
            "certificate",
            "4 MB PEM block as client.crt",
            &["whoami", "--cert-dir", "$CERTS"],
        )
        .prepare(|f| fs::write(f.certs().join("client.crt"), pem_4mb("CERTIFICATE")).unwrap())
        .says(
            3,
            "client.crt is larger than 1048576 bytes",
            "re-run `sudo wott-agent`",
        ),
        case(
            "certificate",
            "4 MB PEM block as ca.crt",
            &["whoami", "--long", "--cert-dir", "$CERTS"],
        )
        .prepare(|f| fs::write(f.certs().join("ca.crt"), pem_4mb("CERTIFICATE")).unwrap())
        .says(
            3,
            "ca.crt is larger than 1048576 bytes",
            "re-run `sudo wott-agent`",
        ),
        case(
            "certificate",
            "4 MB PEM block as client.key (`check`)",
            &[
                "check",
                "--server",
                SERVER,
                "--hosts-file",
                "$HOSTS",
                "--cert-dir",
                "$CERTS",
            ],
        )
        .prepare(|f| fs::write(f.certs().join("client.key"), pem_4mb("PRIVATE KEY")).unwrap())
        .says(
            3,
            "client.key is larger than 1048576 bytes",
            "re-run `sudo wott-agent`",
        ),
        case(
            "certificate",
            "client.crt is a link to /dev/zero (never ends)",
            &["whoami", "--cert-dir", "$CERTS"],
        )
        .prepare(|f| {
            fs::remove_file(f.certs().join("client.crt")).unwrap();
            std::os::unix::fs::symlink("/dev/zero", f.certs().join("client.crt")).unwrap();
        })
        .says(3, "client.crt is a device, not a file", "small PEM files"),
        case(
            "certificate",
            "client.crt is a FIFO (blocks a reader)",
            &["whoami", "--cert-dir", "$CERTS"],
        )
        .prepare(|f| {
            fs::remove_file(f.certs().join("client.crt")).unwrap();
            let made = std::process::Command::new("mkfifo")
                .arg(f.certs().join("client.crt"))
                .status()
                .unwrap();
            assert!(made.success());
        })
        .says(3, "client.crt is a FIFO, not a file", "small PEM files"),
        case(
            "certificate",
            "truncated client.crt (`check`)",
            &[
                "check",
                "--server",
                SERVER,
                "--hosts-file",
                "$HOSTS",
                "--cert-dir",
                "$CERTS",
            ],
        )
        .prepare(|f| truncate_file(&f.certs().join("client.crt")))
        .says(3, "holds a damaged certificate", CERT),
        case(
            "certificate",
            "truncated client.crt (`acl allow self`)",
            &acl(&["allow", "self", "wott/#", "--cert-dir", "$CERTS"]),
        )
        .prepare(|f| truncate_file(&f.certs().join("client.crt")))
        .says(3, "holds a damaged certificate", CERT),
    ]
}

/// A folder with a hosts file, an ACL file and an agent cert dir.
struct Fixture {
    dir: tempfile::TempDir,
}

/// One identity for every fixture: key generation is the slow part.
fn identity() -> &'static (String, String, String) {
    static IDENTITY: OnceLock<(String, String, String)> = OnceLock::new();
    IDENTITY.get_or_init(|| {
        let ca = Authority::new("WoTT test CA").unwrap();
        let id = ca.issue(&DeviceRequest::new(DEVICE)).unwrap();
        (id.cert_pem, id.key_pem, id.ca_pem)
    })
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let f = Fixture { dir };
        fs::write(f.hosts(), HOSTS).unwrap();
        fs::write(f.acl(), ACL).unwrap();
        fs::create_dir(f.certs()).unwrap();
        let (cert, key, ca) = identity();
        fs::write(f.certs().join("client.crt"), cert).unwrap();
        fs::write(f.certs().join("client.key"), key).unwrap();
        fs::set_permissions(
            f.certs().join("client.key"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        fs::write(f.certs().join("ca.crt"), ca).unwrap();
        f
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn hosts(&self) -> PathBuf {
        self.root().join("hosts")
    }

    fn acl(&self) -> PathBuf {
        self.root().join("permissions.acl")
    }

    fn certs(&self) -> PathBuf {
        self.root().join("certs")
    }

    fn args(&self, args: &[OsString]) -> Vec<OsString> {
        let root = self.root().as_os_str().as_bytes();
        args.iter()
            .map(|a| {
                let bytes = a.as_bytes();
                let (name, rest): (&[u8], &[u8]) = if let Some(r) = bytes.strip_prefix(b"$HOSTS") {
                    (b"/hosts", r)
                } else if let Some(r) = bytes.strip_prefix(b"$ACL") {
                    (b"/permissions.acl", r)
                } else if let Some(r) = bytes.strip_prefix(b"$CERTS") {
                    (b"/certs", r)
                } else if let Some(r) = bytes.strip_prefix(b"$ROOT") {
                    (b"", r)
                } else {
                    return a.clone();
                };
                OsString::from_vec([root, name, rest].concat())
            })
            .collect()
    }
}

/// What a folder holds: each entry's kind, and a file's bytes or a link's target.
fn state(dir: &Path) -> Vec<(PathBuf, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            let relative = path.strip_prefix(dir).unwrap().to_path_buf();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = format!("{:o}", meta.permissions().mode());
            let t = meta.file_type();
            if t.is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.push((
                    relative,
                    format!("link {mode}"),
                    target.into_os_string().into_vec(),
                ));
            } else if t.is_dir() {
                out.push((relative, format!("dir {mode}"), Vec::new()));
                stack.push(path);
            } else if t.is_file() {
                out.push((relative, format!("file {mode}"), fs::read(&path).unwrap()));
            } else {
                let kind = if t.is_fifo() { "fifo" } else { "special" };
                out.push((relative, format!("{kind} {mode}"), Vec::new()));
            }
        }
    }
    out.sort();
    out
}

/// Runs `args` where the case says, returning the run and the folder's state
/// after it (for a full disk, as the tmpfs held it before it went away).
fn run_case(case: &Case, f: &Fixture, args: &[OsString]) -> (Run, Vec<(PathBuf, String, Vec<u8>)>) {
    let root = f.root().as_os_str().to_owned();
    match case.place {
        Place::Here => (wott().args(args).run(), state(f.root())),
        Place::ReadOnly => {
            let script = r#"set -e
root=$1; shift
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
exec "$@""#;
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
                    &root,
                ],
            )
            .args(args)
            .run();
            (run, state(f.root()))
        }
        Place::FullDisk => {
            let out = tempfile::tempdir().unwrap();
            let script = r#"set -e
root=$1; out=$2; shift 2
mkdir "$out/seed" "$out/after"
cp -a "$root/." "$out/seed/"
mount -t tmpfs -o size=1m tmpfs "$root"
cp -a "$out/seed/." "$root/"
dd if=/dev/zero of="$root/.filler" bs=4096 2>/dev/null || true
set +e
"$@"
code=$?
rm -f "$root/.filler"
cp -a "$root/." "$out/after/"
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
                    &root,
                    out.path().as_os_str(),
                ],
            )
            .args(args)
            .run();
            (run, state(&out.path().join("after")))
        }
    }
}

fn mount_namespaces_work() -> bool {
    is_root()
        && Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs \"$d\" && mount -o remount,ro \"$d\"; r=$?; umount \"$d\" 2>/dev/null; rmdir \"$d\"; exit $r")
            .status()
            .is_ok_and(|s| s.success())
}

/// Checks one case; returns what is wrong with it, if anything.
fn check(case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let f = Fixture::new();
    (case.prepare)(&f);
    let before = state(f.root());
    let args = f.args(&case.args);

    let (expected_error, expected_hint) = case.expected();
    let (run, after) = run_case(case, &f, &args);
    let error = run.stderr.lines().find(|l| l.starts_with("error: "));
    let hint = run.stderr.lines().find(|l| l.starts_with("hint: "));
    if run.code != case.code {
        problems.push(format!("exit code {} instead of {}", run.code, case.code));
    }
    if !error.is_some_and(|e| e.contains(expected_error)) {
        problems.push(format!("no error line containing {expected_error:?}"));
    }
    if !hint.is_some_and(|h| h.contains(expected_hint)) {
        problems.push(format!("no hint line containing {expected_hint:?}"));
    }
    if let Some(c) = run.stderr.chars().find(|c| c.is_control() && *c != '\n') {
        problems.push(format!("raw control character {c:?} on stderr"));
    }
    if run.stderr.len() > 2_000 {
        problems.push(format!("stderr is {} bytes long", run.stderr.len()));
    }
    if after != before {
        let changed: Vec<_> = before
            .iter()
            .chain(&after)
            .filter(|e| !(before.contains(e) && after.contains(e)))
            .map(|(p, kind, _)| format!("{} ({kind})", p.display()))
            .collect();
        problems.push(format!("files changed: {changed:?}"));
    }

    // The same with --json: one document with the error and the exit code.
    if case.place == Place::Here {
        let f = Fixture::new();
        (case.prepare)(&f);
        let mut args = f.args(&case.args);
        args.insert(0, "--json".into());
        let run = wott().args(&args).run();
        match serde_json::from_str::<serde_json::Value>(&run.stdout) {
            Ok(doc) => {
                if doc["exit_code"] != case.code || run.code != case.code {
                    problems.push(format!(
                        "--json: exit code {} / {}",
                        doc["exit_code"], run.code
                    ));
                }
                let message = doc["error"]["message"].as_str().unwrap_or_default();
                if !message.contains(expected_error) {
                    problems.push(format!("--json: error.message is {message:?}"));
                }
                let hint = doc["error"]["hint"].as_str().unwrap_or_default();
                if !hint.contains(expected_hint) {
                    problems.push(format!("--json: error.hint is {hint:?}"));
                }
            }
            Err(e) => problems.push(format!("--json: stdout is not one JSON document ({e})")),
        }
    }
    if !problems.is_empty() {
        problems.push(format!(
            "$ {}\nexit code {}\n--- stderr ---\n{}",
            run.line,
            run.code,
            run.stderr.chars().take(1500).collect::<String>()
        ));
    }
    problems
}

/// Every case names the error and the hint it expects, so that none can
/// pass by matching anything.
#[test]
fn every_case_says_what_the_command_must_say() {
    for case in cases() {
        let (error, hint) = case.expected();
        assert!(!error.is_empty() && !hint.is_empty(), "{}", case.what);
    }
}

#[test]
fn every_hostile_input_is_refused_clearly_and_changes_nothing() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let namespaces = mount_namespaces_work();
    let mut failures = Vec::new();
    let mut skipped = 0;
    for (i, case) in cases.iter().enumerate() {
        if case.place != Place::Here && !namespaces {
            skipped += 1;
            continue;
        }
        let problems = check(case);
        if !problems.is_empty() {
            failures.push(format!(
                "case {} ({}: {}):\n  {}",
                i + 1,
                case.kind,
                case.what,
                problems.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    if skipped > 0 {
        skip_without(
            &format!(
                "root and mount namespaces (unshare --mount) for {skipped} read-only and full-disk cases"
            ),
            false,
        );
    }
}

/// Read-only commands read a pipe: `--hosts-file <(ssh server cat /etc/hosts)`.
#[test]
fn read_only_commands_read_a_pipe() {
    let f = Fixture::new();
    let fifo = f.root().join("pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::write(fifo, HOSTS).unwrap())
    };
    wott()
        .args(["hosts", "list", "--hosts-file"])
        .arg(&fifo)
        .run()
        .success()
        .stdout_has(SERVER);
    writer.join().unwrap();
}

#[test]
fn a_symlinked_file_is_edited_through_the_link_and_stays_a_link() {
    let f = Fixture::new();
    let real = f.root().join("real-hosts");
    fs::rename(f.hosts(), &real).unwrap();
    std::os::unix::fs::symlink(&real, f.hosts()).unwrap();
    wott()
        .args(f.args(&[
            "hosts".into(),
            "add".into(),
            "--hosts-file".into(),
            "$HOSTS".into(),
            SERVER.into(),
            "10.0.0.9".into(),
        ]))
        .run()
        .success();
    assert!(
        fs::symlink_metadata(f.hosts())
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let text = fs::read_to_string(&real).unwrap();
    assert!(
        text.contains(&format!("10.0.0.9 {SERVER} # wott-mqtt")),
        "{text}"
    );
}

// ---------------------------------------------------------------- the table

const BEGIN: &str =
    "<!-- hostile-input:begin (generated by tests/hostile_input.rs; UPDATE_DOCS=1 to rewrite) -->";
const END: &str = "<!-- hostile-input:end -->";

/// An argument as the table shows it: escapes for control characters and
/// invalid bytes, long values abbreviated.
fn shown(arg: &OsStr) -> String {
    if arg == SERVER {
        return "$SERVER".into();
    }
    if arg == DEVICE {
        return "$DEVICE".into();
    }
    let bytes = arg.as_bytes();
    let mut text = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => text.push_str("\\n"),
                '\r' => text.push_str("\\r"),
                '\t' => text.push_str("\\t"),
                '|' => text.push_str("\\|"),
                c if c.is_control() => text.push_str(&format!("\\x{:02x}", c as u32)),
                c => text.push(c),
            }
        }
        for b in chunk.invalid() {
            text.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > 60 {
        let head: String = text.chars().take(12).collect();
        text = format!("{head}…({} bytes)", bytes.len());
    }
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./$:#+%@".contains(&b));
    if plain { text } else { format!("'{text}'") }
}

fn table() -> String {
    let mut out = String::new();
    out.push_str("| # | Input | Kind | Command | Exit | Error says | Hint says |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for (i, c) in cases().iter().enumerate() {
        let command: Vec<String> = c.args.iter().map(|a| shown(a)).collect();
        let place = match c.place {
            Place::Here => "",
            Place::ReadOnly => " (read-only mount)",
            Place::FullDisk => " (full tmpfs)",
        };
        let cell = |s: &str| s.replace('|', "\\|").replace('`', "'");
        let (error, hint) = c.expected();
        out.push_str(&format!(
            "| {} | {}{place} | {} | `wott-mqtt {}` | {} | {} | {} |\n",
            i + 1,
            c.what,
            c.kind,
            command.join(" ").replace('`', "'"),
            c.code,
            cell(error),
            cell(hint),
        ));
    }
    out
}

#[test]
fn the_table_in_docs_reliability_is_this_catalogue() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reliability.md");
    let doc = fs::read_to_string(&path).unwrap_or_default();
    let generated = format!("{BEGIN}\n{}{END}", table());
    let current = doc
        .find(BEGIN)
        .zip(doc.find(END))
        .map(|(b, e)| &doc[b..e + END.len()]);
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1") {
        let updated = match current {
            Some(old) => doc.replacen(old, &generated, 1),
            None => format!("{doc}\n{generated}\n"),
        };
        fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        current == Some(generated.as_str()),
        "the hostile-input table in docs/reliability.md is not this catalogue; \
         run `UPDATE_DOCS=1 cargo test --test hostile_input` and commit the result"
    );
}
