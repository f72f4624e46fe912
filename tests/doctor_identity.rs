//! `doctor`'s identity checks: each fault injected into a real cert dir,
//! the finding's code, level and fix asserted; a healthy identity gets no
//! problem at all.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::doctor::{Scratch, doctor, finding, fix, problems, run_json};
use support::{Authority, CertFixture, DeviceRequest, random_device_id};

/// Doctor exits 13 when a check fails.
const FAILED: i32 = 13;

fn run(certs: &CertFixture, code: i32) -> serde_json::Value {
    let scratch = Scratch::new();
    run_json(
        doctor(&certs.dir(), &scratch.server_dir(), &scratch.hosts()),
        code,
    )
    .1
}

#[test]
fn a_healthy_identity_has_no_problem_and_only_its_role_applies() {
    let certs = CertFixture::new();
    let doc = run(&certs, 0);
    assert_eq!(problems(&doc), Vec::<String>::new());
    assert_eq!(doc["roles"], serde_json::json!(["identity"]));
    for code in [
        "identity.files",
        "identity.device-id",
        "identity.expiry",
        "identity.key-match",
        "identity.chain",
        "identity.key-quality",
        "identity.cn-in-san",
        "identity.key-mode",
    ] {
        finding(&doc, code, "ok");
    }
    assert_eq!(doc["exit_code"], 0);
}

#[test]
fn a_missing_ca_fails_identity_files() {
    let certs = CertFixture::new();
    std::fs::remove_file(certs.path("ca.crt")).unwrap();
    let doc = run(&certs, FAILED);
    let f = finding(&doc, "identity.files", "failure");
    assert!(f["found"].as_str().unwrap().contains("ca.crt"), "{f}");
}

#[test]
fn an_expired_certificate_fails_with_the_agents_fix() {
    let certs = CertFixture::with(DeviceRequest::expired);
    let doc = run(&certs, FAILED);
    let f = finding(&doc, "identity.expiry", "failure");
    assert!(f["found"].as_str().unwrap().contains("expired"), "{f}");
    assert!(fix(f).contains("wott-agent"), "{f}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 failure")
    );
}

#[test]
fn a_certificate_not_valid_yet_fails() {
    let certs = CertFixture::with(DeviceRequest::not_yet_valid);
    let doc = run(&certs, FAILED);
    let f = finding(&doc, "identity.expiry", "failure");
    assert!(fix(f).contains("clock"), "{f}");
}

#[test]
fn an_overdue_renewal_warns_and_strict_makes_it_fail() {
    let certs = CertFixture::with(|r| r.expiring_in(time::Duration::hours(30)));
    let doc = run(&certs, 0);
    let f = finding(&doc, "identity.expiry", "warning");
    assert!(f["why"].as_str().unwrap().contains("3 days"), "{f}");
    let scratch = Scratch::new();
    let (run, doc) = run_json(
        doctor(&certs.dir(), &scratch.server_dir(), &scratch.hosts()).arg("--strict"),
        FAILED,
    );
    assert!(run.stderr.contains("--strict"), "{}", run.stderr);
    assert_eq!(doc["exit_code"], FAILED);
}

#[test]
fn a_key_of_another_certificate_fails_key_match() {
    let certs = CertFixture::new();
    let other = certs
        .ca
        .issue(&DeviceRequest::new(&random_device_id().unwrap()))
        .unwrap();
    certs.write("client.key", &other.key_pem);
    let doc = run(&certs, FAILED);
    let f = finding(&doc, "identity.key-match", "failure");
    assert!(
        f["found"].as_str().unwrap().contains("does not belong"),
        "{f}"
    );
    assert!(fix(f).contains("wott-agent"));
}

#[test]
fn a_ca_that_did_not_sign_fails_the_chain() {
    let certs = CertFixture::new();
    certs.write("ca.crt", Authority::new("Another CA").unwrap().cert_pem());
    let doc = run(&certs, FAILED);
    let f = finding(&doc, "identity.chain", "failure");
    assert!(f["found"].as_str().unwrap().contains("did not sign"), "{f}");
}

#[test]
fn a_readable_key_fails_and_the_printed_chmod_repairs_it() {
    let certs = CertFixture::new();
    std::fs::set_permissions(
        certs.path("client.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let doc = run(&certs, FAILED);
    let f = finding(&doc, "identity.key-mode", "failure");
    let command = fix(f);
    assert!(command.contains("chmod 600"), "{command}");
    let words = support::shell_words(command.trim_start_matches("sudo "));
    let status = Command::new(&words[0]).args(&words[1..]).status().unwrap();
    assert!(status.success());
    let doc = run(&certs, 0);
    finding(&doc, "identity.key-mode", "ok");
}

#[test]
fn a_cn_that_is_not_a_dns_name_of_the_certificate_warns_on_a_client() {
    let certs = CertFixture::with(|r| r.dns_names(&["other.d.wott.local"]));
    let doc = run(&certs, 0);
    let f = finding(&doc, "identity.cn-in-san", "warning");
    assert!(
        f["found"].as_str().unwrap().contains("other.d.wott.local"),
        "{f}"
    );
}

#[test]
fn a_cn_that_is_no_wott_device_id_warns() {
    let root = tempfile::tempdir().unwrap();
    let ca = Authority::new("Own CA").unwrap();
    ca.issue(&DeviceRequest::new("broker.example.com"))
        .unwrap()
        .write_to(&root.path().join("certs"))
        .unwrap();
    let scratch = Scratch::new();
    let (_, doc) = run_json(
        doctor(
            &root.path().join("certs"),
            &scratch.server_dir(),
            &scratch.hosts(),
        ),
        0,
    );
    let f = finding(&doc, "identity.device-id", "warning");
    assert!(
        f["found"].as_str().unwrap().contains("broker.example.com"),
        "{f}"
    );
}

#[test]
fn a_small_rsa_key_fails_key_quality() {
    if !support::doctor::openssl_available() {
        return;
    }
    let certs = CertFixture::new();
    let id = certs.id().to_string();
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:1024", "-nodes", "-days", "7",
        ])
        .arg("-keyout")
        .arg(certs.path("client.key"))
        .arg("-out")
        .arg(certs.path("client.crt"))
        .args([
            "-subj",
            &format!("/CN={id}"),
            "-addext",
            &format!("subjectAltName=DNS:{id}"),
        ])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    std::fs::set_permissions(
        certs.path("client.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let doc = run(&certs, FAILED);
    let f = finding(&doc, "identity.key-quality", "failure");
    assert!(f["found"].as_str().unwrap().contains("RSA 1024"), "{f}");
    // Self-signed, so not by ca.crt: the chain says so too.
    finding(&doc, "identity.chain", "failure");
}

#[test]
fn an_unusual_curve_warns_key_quality_and_names_the_key_rustls_cannot_use() {
    if !support::doctor::openssl_available() {
        return;
    }
    let certs = CertFixture::new();
    let id = certs.id().to_string();
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:secp256k1", "-nodes", "-days", "7"])
        .arg("-keyout")
        .arg(certs.path("client.key"))
        .arg("-out")
        .arg(certs.path("client.crt"))
        .args(["-subj", &format!("/CN={id}")])
        .args(["-addext", &format!("subjectAltName=DNS:{id}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::set_permissions(
        certs.path("client.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let doc = run(&certs, FAILED);
    let quality = finding(&doc, "identity.key-quality", "warning");
    assert!(
        quality["found"]
            .as_str()
            .unwrap()
            .starts_with("EC secp256k1"),
        "{quality}"
    );
    // Not "damaged": a sound key of a kind rustls does not sign with.
    let files = finding(&doc, "identity.files", "failure");
    assert!(
        files["found"]
            .as_str()
            .unwrap()
            .ends_with("holds a private key of a kind TLS here cannot use (EC secp256k1)"),
        "{files}"
    );
    assert!(fix(files).contains("EC P-256"), "{files}");
    support::wott()
        .cert_dir(&certs.dir())
        .args(["whoami", "--long"])
        .run()
        .code(3)
        .stderr_has("cannot use (EC secp256k1)");
}

#[test]
fn people_get_the_findings_grouped_with_why_and_fix() {
    let certs = CertFixture::with(DeviceRequest::expired);
    let scratch = Scratch::new();
    let run = support::wott()
        .cert_dir(&certs.dir())
        .arg("--server-dir")
        .arg(scratch.server_dir())
        .args(["doctor", "--hosts-file"])
        .arg(scratch.hosts())
        .run();
    run.code(FAILED)
        .stdout_has("Identity  cert dir")
        .stdout_has("✗ identity.expiry")
        .stdout_has("      why ")
        .stdout_has("      fix ")
        .stdout_has("1 failure")
        .error("doctor found 1 failure", "the command that fixes it");
}

#[test]
fn a_cn_that_is_not_a_dns_name_of_the_certificate_fails_on_a_server() {
    let certs = CertFixture::with(|r| r.dns_names(&["other.d.wott.local"]));
    let files = support::doctor::ServerFiles::with_certs(certs, "# no grants\n");
    let doc = files.doctor();
    let f = finding(&doc, "identity.cn-in-san", "failure");
    assert!(f["why"].as_str().unwrap().contains("cannot verify"), "{f}");
}

#[test]
fn no_cert_dir_is_a_failure_with_its_hint() {
    let scratch = Scratch::new();
    let (_, doc) = run_json(
        doctor(
            &scratch.root.path().join("nowhere"),
            &scratch.server_dir(),
            &scratch.hosts(),
        ),
        FAILED,
    );
    let f = finding(&doc, "identity.files", "failure");
    assert!(
        f["found"].as_str().unwrap().contains("does not exist"),
        "{f}"
    );
    assert!(f["fix"].is_string(), "{f}");
    assert_eq!(doc["findings"].as_array().unwrap().len(), 1);
}
