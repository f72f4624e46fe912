//! `doctor`'s server checks on a real managed broker (Docker) and real
//! server dirs: a healthy broker has no failure; then, on the same broker
//! to keep the suite short, each fault is injected in turn, the finding's
//! code, level and fix asserted, and the printed fix run as printed.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use support::doctor::{BrokerDoctor, ServerFiles, docker_cmd, failures, finding, findings, fix};
use support::server::Server;
use support::watch::WatchProcess;
use support::{CertFixture, docker};

const FAILED: i32 = 13;

#[test]
fn a_healthy_broker_then_each_fault_with_its_printed_fix() {
    if !support::root_available("to stage copies for uid 1883 and run the printed fixes")
        || !docker::available()
    {
        return;
    }
    let server = Server::new("doctor");
    server.up().run().success();
    let d = BrokerDoctor::new(&server);

    // Healthy: no failure, and every server check that applies is ok.
    let doc = d.run(0);
    assert_eq!(failures(&doc), Vec::<String>::new());
    assert_eq!(
        doc["roles"],
        serde_json::json!(["identity", "server", "acl"])
    );
    for code in [
        "server.dir-trust",
        "server.conf-edited",
        "server.settings",
        "server.staged",
        "server.ca-expiry",
        "server.engine",
        "server.running",
        "server.open-acl",
        "server.cert-drift",
        "server.acl-drift",
        "server.config-current",
        "server.bind",
        "server.restart-policy",
        "server.hardening",
        "identity.cn-in-san",
    ] {
        finding(&doc, code, "ok");
    }
    // No watcher runs for this broker.
    let watcher = finding(&doc, "server.watcher", "warning");
    assert!(fix(watcher).contains("server watch"), "{watcher}");

    // A hand edit of mosquitto.conf; `server up` puts it back.
    let conf = server.path("mosquitto.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("allow_anonymous true\n");
    std::fs::write(&conf, &text).unwrap();
    let doc = d.run(FAILED);
    let edited = finding(&doc, "server.conf-edited", "warning");
    assert!(
        edited["found"]
            .as_str()
            .unwrap()
            .contains("+allow_anonymous true"),
        "{edited}"
    );
    let setting = finding(&doc, "server.settings", "failure");
    assert!(
        setting["found"]
            .as_str()
            .unwrap()
            .contains("allow_anonymous"),
        "{setting}"
    );
    assert!(fix(setting).ends_with("server up"), "{setting}");
    d.run_printed(&fix(setting));
    let doc = d.run(0);
    finding(&doc, "server.conf-edited", "ok");

    // The agent renews: the broker serves the old certificate, the copies are old.
    // Both warnings (a broker without a watcher is like this for a while
    // after every renewal), so doctor exits 0 and `--strict` 13.
    server.renew_certificate();
    d.run_strict(FAILED);
    let doc = d.run(0);
    let drift = finding(&doc, "server.cert-drift", "warning");
    assert!(fix(drift).ends_with("server reload"), "{drift}");
    let staged = finding(&doc, "server.staged", "warning");
    assert!(
        staged["found"]
            .as_str()
            .unwrap()
            .contains("not the agent's current"),
        "{staged}"
    );
    d.run_printed(&fix(drift));
    let doc = d.run(0);
    finding(&doc, "server.cert-drift", "ok");
    finding(&doc, "server.staged", "ok");

    // permissions.acl edited after the broker loaded it.
    let acl = server.path("permissions.acl");
    let before = std::fs::read_to_string(&acl).unwrap();
    std::fs::write(&acl, format!("{before}\n# edited by hand\n")).unwrap();
    let doc = d.run(0);
    let drift = finding(&doc, "server.acl-drift", "warning");
    d.run_printed(&fix(drift));
    let doc = d.run(0);
    finding(&doc, "server.acl-drift", "ok");

    // A staged key others may read.
    let key = server.path("certs/client.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let doc = d.run(FAILED);
    let staged = finding(&doc, "server.staged", "failure");
    assert!(
        staged["found"].as_str().unwrap().contains("mode 0644"),
        "{staged}"
    );
    d.run_printed(&fix(staged));
    let doc = d.run(0);
    finding(&doc, "server.staged", "ok");

    // No restart policy.
    docker_cmd(&["update", "--restart", "no", &server.name]);
    let doc = d.run(0);
    let policy = finding(&doc, "server.restart-policy", "warning");
    d.run_printed(&fix(policy));
    let doc = d.run(0);
    finding(&doc, "server.restart-policy", "ok");

    // A server dir others may write to.
    let mode = std::fs::metadata(server.dir())
        .unwrap()
        .permissions()
        .mode();
    std::fs::set_permissions(server.dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let doc = d.run(FAILED);
    let trust = finding(&doc, "server.dir-trust", "failure");
    assert!(fix(trust).contains("chmod go-w"), "{trust}");
    std::fs::set_permissions(server.dir(), std::fs::Permissions::from_mode(mode)).unwrap();

    // A reload from elsewhere with a line Mosquitto refuses: the broker runs open.
    std::fs::write(
        &acl,
        format!("{before}user typo\ntopic sometimes secret/#\n"),
    )
    .unwrap();
    docker_cmd(&["kill", "--signal", "HUP", &server.name]);
    std::thread::sleep(Duration::from_millis(500));
    let doc = d.run(FAILED);
    let open = finding(&doc, "server.open-acl", "failure");
    assert!(
        open["why"].as_str().unwrap().contains("every topic"),
        "{open}"
    );
    assert!(fix(open).contains("server reload"), "{open}");
    finding(&doc, "acl.refused", "failure");
    std::fs::write(&acl, &before).unwrap();
    let reload = fix(open).split('`').nth(3).unwrap().to_string();
    assert!(reload.ends_with("server reload"), "{reload}");
    d.run_printed(&reload);
    let doc = d.run(0);
    finding(&doc, "server.open-acl", "ok");

    // A `server watch` process keeps this broker current.
    let mut watch = WatchProcess::start(&server, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let doc = d.run(0);
    let keeper = finding(&doc, "server.watcher", "ok");
    assert!(
        keeper["found"].as_str().unwrap().contains("pid"),
        "{keeper}"
    );
    let _ = watch.child.kill();
    let _ = watch.child.wait();

    // This server in its own hosts file: to an address of its own, or not.
    std::fs::write(d.scratch.hosts(), format!("127.0.0.1 {}\n", server.id())).unwrap();
    let doc = d.run(0);
    finding(&doc, "client.hosts-stale", "ok");
    finding(&doc, "client.probe", "ok");
    std::fs::write(d.scratch.hosts(), format!("192.0.2.7 {}\n", server.id())).unwrap();
    let doc = d.run(FAILED);
    let stale = finding(&doc, "client.hosts-stale", "failure");
    assert!(fix(stale).contains("hosts add"), "{stale}");
    std::fs::write(d.scratch.hosts(), "").unwrap();

    // The staged key given back to root: the restarted broker cannot load it.
    let key = server.path("certs/client.key");
    std::os::unix::fs::chown(&key, Some(0), Some(0)).unwrap();
    docker_cmd(&["restart", "-t", "1", &server.name]);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let doc = loop {
        let doc = d.run(FAILED);
        let crashed = findings(&doc, "server.running")
            .iter()
            .any(|f| f["found"].as_str().unwrap().contains("private key"));
        if crashed || std::time::Instant::now() > deadline {
            break doc;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let crashed = finding(&doc, "server.running", "failure");
    assert!(
        crashed["found"].as_str().unwrap().contains("private key"),
        "{crashed}"
    );
    assert!(fix(crashed).ends_with("server up"), "{crashed}");
    d.run_printed(&fix(crashed));
    let doc = d.run(0);
    finding(&doc, "server.running", "ok");

    // The broker stopped; `server up` starts it.
    docker_cmd(&["stop", "-t", "1", &server.name]);
    let doc = d.run(FAILED);
    let running = finding(&doc, "server.running", "failure");
    d.run_printed(&fix(running));
    let doc = d.run(0);
    finding(&doc, "server.running", "ok");

    // Published on every address.
    server
        .cmd("up")
        .args(["--image", server.image(), "--bind", "0.0.0.0", "--port"])
        .arg(server.port.to_string())
        .run()
        .success();
    let doc = d.run(0);
    let bind = finding(&doc, "server.bind", "warning");
    assert!(bind["why"].as_str().unwrap().contains("ufw"), "{bind}");
    let command = fix(bind);
    assert!(command.contains("server up --bind "), "{command}");
    if !command.contains('<') {
        d.run_printed(&command);
        let doc = d.run(0);
        finding(&doc, "server.bind", "ok");
    }
}

#[test]
fn an_engine_that_does_not_answer_fails_server_engine() {
    let files = ServerFiles::new("# no grants\n");
    let run = support::doctor::doctor(&files.certs.dir(), &files.dir(), &files.scratch.hosts())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run();
    run.code(FAILED);
    let doc = run.json();
    let engine = finding(&doc, "server.engine", "failure");
    assert!(
        engine["found"]
            .as_str()
            .unwrap()
            .contains("no container engine answered"),
        "{engine}"
    );
    // The server dir's own files are still checked.
    finding(&doc, "server.conf-edited", "ok");
    finding(&doc, "server.settings", "ok");
    assert!(findings(&doc, "server.running").is_empty());
}

#[test]
fn a_ca_that_expires_within_30_days_warns_and_an_expired_one_fails() {
    if !support::doctor::openssl_available() {
        return;
    }
    let certs = CertFixture::new();
    let id = certs.id().to_string();
    let dir = certs.dir();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(&dir)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "10",
        "-subj",
        "/CN=Short-lived CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &format!("/CN={id}"),
        "-addext",
        &format!("subjectAltName=DNS:{id}"),
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "7",
        "-copy_extensions",
        "copy",
        "-out",
        "client.crt",
    ]);
    std::fs::remove_file(dir.join("ca.key")).unwrap();
    std::fs::set_permissions(
        dir.join("client.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let files = ServerFiles::with_certs(certs, "# no grants\n");
    let doc = files.doctor();
    let ca = finding(&doc, "server.ca-expiry", "warning");
    assert!(
        ca["found"].as_str().unwrap().contains("Short-lived CA"),
        "{ca}"
    );
    finding(&doc, "identity.chain", "ok");

    // Eleven days on, the CA has expired: a failure, with what to do.
    let faketime = support::mosquitto::libfaketime();
    if support::skip_without("libfaketime (apt-get install faketime)", faketime.is_some()) {
        return;
    }
    let faketime = faketime.unwrap();
    let later = support::doctor::doctor(&files.certs.dir(), &files.dir(), &files.scratch.hosts())
        .env("LD_PRELOAD", &faketime)
        .env("FAKETIME", "+11d")
        .run()
        .json();
    let ca = finding(&later, "server.ca-expiry", "failure");
    assert!(ca["found"].as_str().unwrap().contains("expired"), "{ca}");
    assert!(fix(ca).contains("server reload"), "{ca}");
}

#[test]
fn settings_that_open_the_broker_fail_one_by_one() {
    let files = ServerFiles::new("# no grants\n");
    let conf = files.dir().join("mosquitto.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let edited = text
        .replace("require_certificate true", "require_certificate false")
        .replace("use_identity_as_username true\n", "")
        .replace("tls_version tlsv1.2\n", "")
        .replace("log_dest stderr", "log_dest none");
    std::fs::write(&conf, edited).unwrap();
    let doc = files.doctor();
    let settings: Vec<(&str, &str)> = findings(&doc, "server.settings")
        .iter()
        .map(|f| (f["level"].as_str().unwrap(), f["found"].as_str().unwrap()))
        .collect();
    assert_eq!(
        settings,
        [
            ("failure", "require_certificate is `false`"),
            ("failure", "use_identity_as_username is not set"),
            ("warning", "tls_version is not set"),
            ("warning", "logging is off (log_dest none or log_type none)"),
        ],
        "{doc}"
    );
    finding(&doc, "server.conf-edited", "warning");
}
