//! `whoami` through the real binary, on agent-style cert dirs in every shape
//! a device meets in the field.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use support::{CertFixture, DeviceRequest, snapshot, wott, wott_unprivileged};
use time::Duration;

#[test]
fn plain_whoami_prints_exactly_the_cn() {
    let fx = CertFixture::new();
    wott()
        .arg("whoami")
        .cert_dir(&fx.dir())
        .run()
        .success()
        .stdout_is(&format!("{}\n", fx.id()))
        .stderr_is_empty();
}

#[test]
fn cert_path_and_config_path_are_honoured_like_the_agent() {
    let fx = CertFixture::new();
    let expected = format!("{}\n", fx.id());
    wott()
        .arg("whoami")
        .env("CERT_PATH", fx.dir())
        .run()
        .success()
        .stdout_is(&expected);
    wott()
        .arg("whoami")
        .env("CONFIG_PATH", fx.root.path())
        .run()
        .success()
        .stdout_is(&expected);
    // The flag wins over the environment.
    wott()
        .arg("whoami")
        .env("CERT_PATH", "/nonexistent")
        .cert_dir(&fx.dir())
        .run()
        .success()
        .stdout_is(&expected);
}

#[test]
fn long_reports_a_healthy_identity() {
    let fx = CertFixture::new();
    let run = wott().args(["whoami", "--long"]).cert_dir(&fx.dir()).run();
    run.success()
        .stdout_has(&format!("Device ID      {}", fx.id()))
        .stdout_has("EC P-256")
        .stdout_has("✓ matches the certificate (mode 0600)")
        .stdout_has("✓ signed the certificate (CN=WoTT test CA")
        .stdout_has("✓ 6d 2")
        .stderr_is_empty();
}

#[test]
fn json_is_one_documented_document() {
    let fx = CertFixture::new();
    let run = wott().args(["whoami", "--json"]).cert_dir(&fx.dir()).run();
    run.success();
    let doc = run.json();
    assert_eq!(doc["device_id"], fx.id());
    assert_eq!(doc["exit_code"], 0);
    let cert = &doc["certificate"];
    assert_eq!(cert["common_name"], fx.id());
    assert_eq!(cert["dns_names"][0], fx.id());
    assert_eq!(cert["key_algorithm"], "EC");
    assert_eq!(cert["curve"], "P-256");
    assert_eq!(cert["validity"]["state"], "valid");
    assert!(cert["validity"]["seconds_left"].as_i64().unwrap() > 6 * 86_400);
    assert!(cert["not_after"].as_str().unwrap().ends_with('Z'));
    assert_eq!(cert["fingerprint_sha256"].as_str().unwrap().len(), 95);
    assert!(cert["issuer"].as_str().unwrap().contains("WoTT test CA"));
    assert!(cert["serial"].as_str().unwrap().contains(':'));
    assert_eq!(doc["key"]["matches_certificate"], true);
    assert_eq!(doc["key"]["mode"], "0600");
    assert_eq!(doc["ca"]["verifies_certificate"], true);
    assert_eq!(doc["warnings"], serde_json::json!([]));
}

#[test]
fn fingerprint_matches_openssl() {
    let fx = CertFixture::new();
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(fx.path("client.crt"))
        .output();
    if support::skip_without("openssl (apt-get install openssl)", out.is_ok()) {
        return;
    }
    let out = out.unwrap();
    assert!(out.status.success(), "openssl failed: {out:?}");
    let openssl = String::from_utf8(out.stdout).unwrap();
    let doc = wott()
        .args(["whoami", "--json"])
        .cert_dir(&fx.dir())
        .run()
        .json();
    let ours = doc["certificate"]["fingerprint_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        openssl.trim().ends_with(&ours),
        "openssl: {openssl} ours: {ours}"
    );
}

// ---- warnings: printed on stderr, listed in JSON, exit 0 ----

fn warning_codes(fx: &CertFixture) -> Vec<String> {
    let run = wott().args(["whoami", "--json"]).cert_dir(&fx.dir()).run();
    run.success();
    run.json()["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn expired_certificate_warns_but_still_names_the_device() {
    let fx = CertFixture::with(DeviceRequest::expired);
    wott()
        .arg("whoami")
        .cert_dir(&fx.dir())
        .run()
        .success()
        .stdout_is(&format!("{}\n", fx.id()))
        .stderr_has("warning: the certificate expired 2d 0h ago")
        .stderr_has("sudo wott-agent");
    assert_eq!(warning_codes(&fx), ["expired"]);
}

#[test]
fn expiring_within_the_renewal_threshold_warns() {
    let fx = CertFixture::with(|r| r.expiring_in(Duration::hours(30)));
    wott()
        .arg("whoami")
        .cert_dir(&fx.dir())
        .run()
        .success()
        .stderr_has("warning: the certificate expires in 1d ")
        .stderr_has("overdue");
    assert_eq!(warning_codes(&fx), ["expires-soon"]);
}

#[test]
fn not_yet_valid_warns_about_the_clock() {
    let fx = CertFixture::with(DeviceRequest::not_yet_valid);
    wott()
        .arg("whoami")
        .cert_dir(&fx.dir())
        .run()
        .success()
        .stderr_has("check the clock");
    assert_eq!(warning_codes(&fx), ["not-yet-valid"]);
}

#[test]
fn key_readable_by_others_warns_with_the_chmod() {
    let fx = CertFixture::new();
    fs::set_permissions(fx.path("client.key"), fs::Permissions::from_mode(0o644)).unwrap();
    wott()
        .arg("whoami")
        .cert_dir(&fx.dir())
        .run()
        .success()
        .stderr_has("has mode 0644")
        .stderr_has("sudo chmod 600");
    assert_eq!(warning_codes(&fx), ["key-permissions"]);
}

#[test]
fn cn_missing_from_the_sans_warns() {
    let fx = CertFixture::with(|r| r.dns_names(&["other.d.wott.local"]));
    wott()
        .arg("whoami")
        .cert_dir(&fx.dir())
        .run()
        .success()
        .stderr_has("is not among the certificate's DNS names (other.d.wott.local)");
    assert_eq!(warning_codes(&fx), ["cn-not-in-san"]);
}

#[test]
fn a_bundle_uses_the_first_certificate_and_says_so() {
    let fx = CertFixture::new();
    let mut bundle = fx.identity.cert_pem.clone();
    bundle.push_str(&fx.ca.cert_pem());
    fx.write("client.crt", bundle);
    wott()
        .arg("whoami")
        .cert_dir(&fx.dir())
        .run()
        .success()
        .stdout_is(&format!("{}\n", fx.id()))
        .stderr_has("holds 2 certificates; using the first one");
    assert_eq!(warning_codes(&fx), ["bundle"]);
}

#[test]
fn quiet_silences_warnings() {
    let fx = CertFixture::with(DeviceRequest::expired);
    wott()
        .args(["whoami", "-q"])
        .cert_dir(&fx.dir())
        .run()
        .success()
        .stderr_is_empty();
}

// ---- bad identities: a clear error naming the file, a hint, exit 3, nothing changed ----

/// Runs `whoami` (plain when `long` is false) and checks the error and that
/// the cert dir is byte-for-byte as before.
#[track_caller]
fn fails(fx: &CertFixture, long: bool, message: &str, hint: &str) {
    let before = snapshot(fx.root.path());
    let mut w = wott().arg("whoami").cert_dir(&fx.dir());
    if long {
        w = w.arg("--long");
    }
    w.run().code(3).error(message, hint);
    assert_eq!(before, snapshot(fx.root.path()), "whoami changed files");
}

#[test]
fn cert_dir_missing() {
    let fx = CertFixture::new();
    let missing = fx.root.path().join("nope");
    wott().arg("whoami").cert_dir(&missing).run().code(3).error(
        &format!("the cert dir {} does not exist", missing.display()),
        "--cert-dir",
    );
}

#[test]
fn client_crt_missing() {
    let fx = CertFixture::new();
    fs::remove_file(fx.path("client.crt")).unwrap();
    fails(
        &fx,
        false,
        "client.crt is missing (the device's certificate)",
        "sudo wott-agent",
    );
}

#[test]
fn client_crt_empty() {
    let fx = CertFixture::new();
    fx.write("client.crt", "");
    fails(
        &fx,
        false,
        "client.crt is empty",
        "interrupted while writing",
    );
}

#[test]
fn client_crt_garbage() {
    let fx = CertFixture::new();
    fx.write("client.crt", "this is not a certificate\n\u{1b}[2J");
    fails(
        &fx,
        false,
        "client.crt is not PEM: no -----BEGIN CERTIFICATE----- line found",
        "PEM text",
    );
}

#[test]
fn client_crt_in_der_form() {
    let fx = CertFixture::new();
    let der = CertificateDer::from_pem_slice(fx.identity.cert_pem.as_bytes()).unwrap();
    fx.write("client.crt", der.as_ref());
    fails(
        &fx,
        false,
        "client.crt is in binary DER form",
        "openssl x509 -inform der -in",
    );
}

#[test]
fn client_crt_holding_the_key() {
    let fx = CertFixture::new();
    fx.write("client.crt", &fx.identity.key_pem);
    fails(
        &fx,
        false,
        "client.crt holds a private key (PRIVATE KEY), not a certificate",
        "copied to the wrong name",
    );
}

#[test]
fn client_crt_truncated() {
    let fx = CertFixture::new();
    let pem = &fx.identity.cert_pem;
    fx.write("client.crt", &pem[..pem.len() / 2]);
    fails(
        &fx,
        false,
        "client.crt holds a damaged certificate: the PEM block is cut short",
        "truncated",
    );
}

#[test]
fn certificate_without_cn() {
    let fx = CertFixture::with(DeviceRequest::without_common_name);
    fails(&fx, false, "client.crt has no subject CN", "subject CN");
}

#[test]
fn client_key_unreadable_plain_works_long_says_sudo() {
    let fx = CertFixture::new();
    // The agent's layout: a world-readable folder and certificate, a root-only key.
    fs::set_permissions(fx.root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(fx.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    if !support::is_root() {
        fs::set_permissions(fx.path("client.key"), fs::Permissions::from_mode(0o000)).unwrap();
    }
    wott_unprivileged()
        .arg("whoami")
        .cert_dir(&fx.dir())
        .run()
        .success()
        .stdout_is(&format!("{}\n", fx.id()));
    let run = wott_unprivileged()
        .args(["whoami", "--long"])
        .cert_dir(&fx.dir())
        .run();
    run.code(3)
        .stdout_has(&format!("Device ID      {}", fx.id()))
        .error("cannot read", "run the command with sudo");
    assert!(run.stderr.contains("client.key"), "{}", run.stderr);
}

#[test]
fn client_key_encrypted() {
    let fx = CertFixture::new();
    fx.write(
        "client.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    fails(
        &fx,
        true,
        "client.key is encrypted with a passphrase",
        "openssl pkey",
    );
    // A legacy OpenSSL-encrypted key says so in a header instead.
    fx.write(
        "client.key",
        "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END EC PRIVATE KEY-----\n",
    );
    fails(
        &fx,
        true,
        "client.key is encrypted with a passphrase",
        "openssl pkey",
    );
}

#[test]
fn client_key_of_another_certificate() {
    let fx = CertFixture::new();
    let other = fx
        .ca
        .issue(&DeviceRequest::new("other.d.wott.local"))
        .unwrap();
    fx.write("client.key", &other.key_pem);
    fails(
        &fx,
        true,
        "client.key does not belong to",
        "restore the client.crt and client.key that belong together",
    );
    let doc = wott()
        .args(["whoami", "--json"])
        .cert_dir(&fx.dir())
        .run()
        .json();
    assert_eq!(doc["key"]["matches_certificate"], false);
    assert_eq!(doc["exit_code"], 3);
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("belong together")
    );
}

#[test]
fn client_key_holding_a_certificate() {
    let fx = CertFixture::new();
    fx.write("client.key", &fx.identity.cert_pem);
    fails(
        &fx,
        true,
        "client.key holds a PEM block labelled \"CERTIFICATE\", not a private key",
        "-----BEGIN PRIVATE KEY-----",
    );
}

#[test]
fn ca_that_did_not_sign_the_certificate() {
    let fx = CertFixture::new();
    let other = support::Authority::new("Some other CA").unwrap();
    fx.write("ca.crt", other.cert_pem());
    fails(
        &fx,
        true,
        "ca.crt did not sign",
        "restore the agent's ca.crt",
    );
    let doc = wott()
        .args(["whoami", "--json"])
        .cert_dir(&fx.dir())
        .run()
        .json();
    assert_eq!(doc["ca"]["verifies_certificate"], false);
}

#[test]
fn ca_missing() {
    let fx = CertFixture::new();
    fs::remove_file(fx.path("ca.crt")).unwrap();
    fails(
        &fx,
        true,
        "ca.crt is missing (the device's CA certificate)",
        "copy the WoTT CA certificate",
    );
}

#[test]
fn json_errors_are_json_too() {
    let fx = CertFixture::new();
    fs::remove_file(fx.path("client.crt")).unwrap();
    let run = wott().args(["whoami", "--json"]).cert_dir(&fx.dir()).run();
    run.code(3);
    let doc = run.json();
    assert_eq!(doc["exit_code"], 3);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client.crt is missing")
    );
}

#[test]
fn hostile_certificate_text_cannot_drive_the_terminal() {
    // The subject of a certificate is attacker-controlled text: a CN that
    // is not a device ID is refused, and shown escaped.
    let fx = CertFixture::with(|_| {
        DeviceRequest::new("evil\u{1b}[2J\u{1b}]0;pwned\u{7}").dns_names(&["x.d.wott.local"])
    });
    let run = wott().args(["whoami", "--long"]).cert_dir(&fx.dir()).run();
    run.code(3).stderr_has("evil\\u{1b}[2J");
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'),
        "{run:?}"
    );
}

#[test]
fn usage_errors_exit_2_and_help_lists_only_working_commands() {
    wott()
        .args(["whoami", "--bogus"])
        .run()
        .code(2)
        .stderr_has("error: unexpected argument '--bogus' found")
        .stdout_is("");
    let help = wott().arg("--help").run();
    help.success()
        .stdout_has("--cert-dir")
        .stdout_has("--color");
    // Exactly these commands, in this order, and each one's help runs.
    let section = help
        .stdout
        .split("Commands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_else(|| panic!("no Commands: section in\n{}", help.stdout));
    let listed: Vec<&str> = section
        .lines()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(
        listed,
        [
            "demo",
            "setup",
            "whoami",
            "check",
            "acl",
            "hosts",
            "server",
            "doctor",
            "completions",
            "man",
            "help"
        ]
    );
    for command in listed.iter().filter(|c| **c != "help") {
        wott()
            .args([command, "--help"])
            .run()
            .success()
            .stdout_has(&format!("Usage: wott-mqtt {command}"));
    }
    let version = wott().arg("--version").run();
    version.success().stdout_has(env!("CARGO_PKG_VERSION"));
}
