//! The command line's polish: completions, man pages, --version, colour.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use support::{CertFixture, wott};

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let run = wott().args(["completions", shell]).run();
        run.success().stdout_has("wott-mqtt");
        for command in ["whoami", "hosts", "check", "setup"] {
            assert!(
                run.stdout.contains(command),
                "{shell} completions lack {command}"
            );
        }
    }
    // The bash script is valid bash.
    let script = wott().args(["completions", "bash"]).run().stdout.clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wott-mqtt.bash");
    std::fs::write(&path, script).unwrap();
    let status = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(status.success());
    wott().args(["completions", "tcsh"]).run().code(2);
}

#[test]
fn man_pages_come_from_the_same_definitions() {
    let run = wott().arg("man").run();
    run.success()
        .stdout_has(".TH wott-mqtt 1")
        .stdout_has("whoami")
        .stdout_has("\\-\\-cert\\-dir");
    let dir = tempfile::tempdir().unwrap();
    let run = wott().args(["man", "--dir"]).arg(dir.path()).run();
    run.success();
    for page in [
        "wott-mqtt.1",
        "wott-mqtt-check.1",
        "wott-mqtt-hosts-add.1",
        "wott-mqtt-setup-client.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.starts_with(".ie"), "{page}");
    }
}

#[test]
fn version_names_the_git_commit() {
    let run = wott().arg("--version").run();
    run.success();
    let line = run.stdout.trim();
    let commit = line
        .strip_prefix(&format!("wott-mqtt {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected --version: {line}"));
    let in_git = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .is_ok_and(|o| o.status.success());
    if in_git {
        assert_eq!(commit.len(), 12, "{line}");
        assert!(commit.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    }
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let fx = CertFixture::new();
    let long = |color: &str, no_color: bool| {
        let mut w = wott()
            .args(["whoami", "--long", "--color", color])
            .cert_dir(&fx.dir());
        if no_color {
            w = w.env("NO_COLOR", "1");
        }
        let run = w.run();
        run.success();
        run.stdout.contains("\x1b[")
    };
    assert!(long("always", false));
    assert!(long("always", true), "--color always overrides NO_COLOR");
    assert!(!long("never", false));
    assert!(!long("auto", false), "auto: stdout is a pipe here");
}

#[test]
fn auto_colour_on_a_terminal_unless_no_color() {
    let fx = CertFixture::new();
    let on_terminal = |no_color: bool| {
        let mut cmd = Command::new(support::bin());
        cmd.args(["whoami", "--long", "--cert-dir"])
            .arg(fx.dir())
            .env("TERM", "xterm");
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let mut p = rexpect::session::spawn_command(cmd, Some(10_000)).unwrap();
        let text = p.exp_eof().unwrap();
        text.contains("\x1b[")
    };
    assert!(on_terminal(false));
    assert!(!on_terminal(true));
}
