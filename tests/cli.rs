//! The command line's polish: completions, man pages, --version, colour.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::ffi::OsStrExt;
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

/// With `--json` anywhere on the command line, a command line clap refuses
/// is still one JSON document on stdout, with `exit_code` and `error:
/// {message, hint}`, like every other failure: a playbook's `from_json`
/// never meets an empty stdout.
#[test]
fn with_json_every_usage_error_is_one_json_document() {
    // (arguments, environment, message, hint)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (
            &["check", "--server", "X", "--json", "--port", "abc"],
            &[],
            "invalid value 'abc' for '--port <PORT>'",
            "see `wott-mqtt check --help`",
        ),
        (
            &["check", "--server", "X", "--json"],
            &[("MQTT_PORT", "abc")],
            "invalid value 'abc' for '--port <PORT>'",
            "see `wott-mqtt check --help`",
        ),
        (
            &["--json", "acl", "bogus"],
            &[],
            "unrecognized subcommand 'bogus'",
            "see `wott-mqtt acl --help`",
        ),
        (
            &["check", "--json", "--prot", "3"],
            &[],
            "unexpected argument '--prot' found",
            "a similar argument exists: '--port'; see `wott-mqtt check --help`",
        ),
        (
            &["acl", "check", "--json", "self"],
            &[],
            "the following required arguments were not provided: <TOPIC>",
            "see `wott-mqtt acl check --help`",
        ),
        (
            &["--json", "acl", "check", "--access", "all", "self", "t"],
            &[],
            "invalid value 'all' for '--access <ACCESS>' [possible values: read, write, readwrite]",
            "see `wott-mqtt acl check --help`",
        ),
        (
            &["hosts", "--json"],
            &[],
            "'wott-mqtt hosts' requires a subcommand",
            "see `wott-mqtt hosts --help`",
        ),
    ];
    for (args, env, message, hint) in cases {
        let mut w = wott().args(*args);
        for (key, value) in *env {
            w = w.env(key, value);
        }
        let run = w.run();
        run.code(2).error(message, hint);
        let doc = run.json();
        assert_eq!(doc["exit_code"], 2, "{args:?}: {doc:#}");
        let error = doc["error"]["message"].as_str().unwrap();
        assert!(error.contains(message), "{args:?}: {error}");
        assert_eq!(doc["error"]["hint"], *hint, "{args:?}");
        assert_eq!(doc.as_object().unwrap().len(), 2, "{args:?}: {doc:#}");
    }
    // Every hint's command runs as printed.
    for (_, _, _, hint) in cases {
        let command = hint.rsplit_once('`').unwrap().0.rsplit_once('`').unwrap().1;
        let words: Vec<&str> = command.split_whitespace().skip(1).collect();
        wott()
            .args(&words)
            .run()
            .success()
            .stdout_has("Usage: wott-mqtt");
    }

    // Not UTF-8: named, in JSON too.
    let bad = std::ffi::OsStr::from_bytes(b"wott/\xff");
    let run = wott()
        .args(["acl", "check", "--json", "self"])
        .arg(bad)
        .run();
    run.code(2);
    assert!(
        run.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the argument \"wott/\\xff\" is not UTF-8 text")
    );

    // Without --json, clap's own text, and nothing on stdout.
    let run = wott()
        .args(["check", "--server", "X", "--port", "abc"])
        .run();
    run.code(2)
        .stdout_is("")
        .stderr_has("error: invalid value 'abc' for '--port <PORT>'")
        .stderr_has("For more information, try '--help'.");
    // Help is not a failure: it stays text, on stdout, exit 0.
    wott()
        .args(["check", "--help", "--json"])
        .run()
        .success()
        .stdout_has("Usage: wott-mqtt check");
}

/// `--hosts-file`'s help says what each command does with the file, and the
/// read-only commands leave it exactly as it was.
#[test]
fn hosts_file_help_says_read_only_where_the_command_only_reads() {
    let help = |args: &[&str]| {
        let run = wott().args(args).arg("--help").run();
        run.success();
        let text = run.stdout.clone();
        let at = text.find("--hosts-file").expect("--hosts-file in the help");
        text[at..]
            .lines()
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    for read_only in [&["check"][..], &["hosts", "list"], &["hosts", "check"]] {
        assert_eq!(
            help(read_only),
            "The hosts file to read; it is never written [default: /etc/hosts]",
            "{read_only:?}"
        );
    }
    for edits in [
        &["hosts", "add"][..],
        &["hosts", "remove"],
        &["setup", "client"],
    ] {
        assert_eq!(
            help(edits),
            "The hosts file to read and edit [default: /etc/hosts]",
            "{edits:?}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let text = "127.0.0.1 localhost\n192.0.2.7 a.d.wott.invalid # wott-mqtt\n";
    std::fs::write(&hosts, text).unwrap();
    let fx = CertFixture::new();
    let before = support::snapshot(dir.path());
    let modified = std::fs::metadata(&hosts).unwrap().modified().unwrap();
    for args in [
        &["check", "--server", "a.d.wott.invalid", "--hosts-file"][..],
        &["hosts", "list", "--hosts-file"],
        &["hosts", "check", "a.d.wott.invalid", "--hosts-file"],
    ] {
        wott().args(args).arg(&hosts).cert_dir(&fx.dir()).run();
    }
    assert_eq!(support::snapshot(dir.path()), before);
    assert_eq!(
        std::fs::metadata(&hosts).unwrap().modified().unwrap(),
        modified
    );
}
