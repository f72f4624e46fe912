//! The security review's certificate finding, replayed: a CN is text an
//! attacker with any CA-signed certificate chooses. It reached the terminal
//! raw (escape sequences cleared the screen, a newline made plain `whoami`
//! print two lines, U+202E reversed text) and a printed `sudo` command (a CN
//! `a;touch${IFS}/tmp/pwned;` ran `touch` as root when pasted). Now an
//! identity whose CN is not a device ID is refused when it is loaded, with
//! the CN shown escaped, and every value in a printed command is quoted.

#![allow(clippy::unwrap_used)]

mod support;

use support::mosquitto::{Broker, BrokerConfig};
use support::{CertFixture, DeviceRequest, wott};

/// An identity whose certificate's CN is `cn` (and no SAN).
fn identity_named(cn: &str) -> CertFixture {
    let cn = cn.to_string();
    CertFixture::with(move |request: DeviceRequest| {
        let _ = request;
        DeviceRequest::new(&cn).dns_names(&[])
    })
}

fn assert_no_raw_controls(run: &support::Run) {
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains(['\u{1b}', '\u{7}', '\u{202e}']),
            "{name} carries a raw control or format character: {text:?}"
        );
    }
}

#[test]
fn a_cn_that_is_not_a_device_id_is_refused_and_shown_escaped() {
    for (cn, shown) in [
        ("a;touch${IFS}/tmp/pwned;", "a;touch${IFS}/tmp/pwned;"),
        ("dev\nfake-line", "dev\\nfake-line"),
        (
            "abc\u{202e}fed.d.wott.local",
            "abc\\u{202e}fed.d.wott.local",
        ),
        (
            "\u{1b}[2J\u{1b}]0;owned\u{7}",
            "\\u{1b}[2J\\u{1b}]0;owned\\u{7}",
        ),
    ] {
        let certs = identity_named(cn);
        for args in [
            &["whoami"][..],
            &["whoami", "--long"],
            &["acl", "check", "self", "x"],
        ] {
            let run = wott().cert_dir(&certs.dir()).args(args).run();
            run.code(3)
                .stderr_has(&format!(
                    "names the device \"{shown}\", which is not a device ID"
                ))
                .stderr_has("re-enroll with `sudo wott-agent`");
            assert_no_raw_controls(&run);
            assert_eq!(run.stdout, "", "{args:?}: nothing on stdout");
        }
        let run = wott()
            .cert_dir(&certs.dir())
            .args(["setup", "server", "--yes", "--dry-run"])
            .run();
        run.code(3).stderr_has("which is not a device ID");
        assert_no_raw_controls(&run);
        assert!(
            !run.stdout.contains("setup client --server"),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn a_servers_hostile_subject_is_printed_escaped_by_check() {
    if !Broker::available() {
        return;
    }
    let client = CertFixture::new();
    // The server's certificate, from the same CA, verifies by its SAN; its
    // CN is hostile, and `check` shows what the server presented.
    let server = client
        .ca
        .issue(
            &DeviceRequest::new("srv\u{1b}]0;owned\u{7}\u{202e}").dns_names(&["srv.d.wott.local"]),
        )
        .unwrap();
    let broker = Broker::start(&BrokerConfig::wott(&server, ""));
    let run = wott()
        .cert_dir(&client.dir())
        .args([
            "check",
            "--any-id",
            "--server",
            "srv.d.wott.local",
            "--connect-to",
            "127.0.0.1",
        ])
        .args(["--port", &broker.port.to_string()])
        .run();
    run.success()
        .stdout_has("srv\\u{1b}]0;owned\\u{7}\\u{202e}");
    assert_no_raw_controls(&run);
}
