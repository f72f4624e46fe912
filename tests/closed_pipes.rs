//! Issue 16: no command panics on a closed stdout or stderr (`setup client`
//! did: exit 101, "failed printing to stderr: Broken pipe"). Every command
//! runs three times: with both pipes open, with stdout a pipe whose reader
//! is gone, and the same with stderr. A closed pipe ends the command with
//! the code it has with open ones, and never with a panic.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::io::Write as _;
use std::process::{Command, Stdio};

use support::acl::Acl;
use support::mosquitto::ClosedPort;
use support::server::Server;
use support::{CertFixture, docker, wott};

const ID: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";

/// A pipe whose read end is already closed: every write to it fails with EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Closed {
    Nothing,
    Stdout,
    Stderr,
}

/// Runs `args` with `closed` closed; the exit code and what the open
/// streams said.
fn run(mut command: Command, stdin: Option<&[u8]>, closed: Closed) -> (i32, String, String) {
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command.stdout(if closed == Closed::Stdout {
        closed_pipe()
    } else {
        Stdio::piped()
    });
    command.stderr(if closed == Closed::Stderr {
        closed_pipe()
    } else {
        Stdio::piped()
    });
    let mut child = command.spawn().unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every subcommand path (`acl allow`, `server up`, …), read from the
/// `Commands:` sections of `--help`, so that a new command is covered too.
fn command_paths() -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut queue = vec![Vec::<String>::new()];
    while let Some(path) = queue.pop() {
        let help = wott().args(&path).arg("--help").run();
        help.success();
        let mut in_commands = false;
        for line in help.stdout.lines() {
            if line == "Commands:" {
                in_commands = true;
                continue;
            }
            if in_commands {
                let Some(name) = line
                    .strip_prefix("  ")
                    .and_then(|l| l.split_whitespace().next())
                else {
                    in_commands = !line.trim().is_empty() && line.starts_with(' ');
                    continue;
                };
                if line.starts_with("   ") || name == "help" {
                    continue;
                }
                let mut sub = path.clone();
                sub.push(name.to_string());
                queue.push(sub);
            }
        }
        paths.push(path);
    }
    paths.sort();
    paths
}

#[test]
fn no_command_panics_when_stdout_or_stderr_is_closed() {
    let fx = CertFixture::new();
    let tmp = fx.root.path();
    let acl = Acl::new(format!("user {ID}\ntopic read wott/#\n"));
    let hosts = tmp.join("hosts");
    fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let closed_port = ClosedPort::new();
    let port = closed_port.port.to_string();
    let acl_file = acl.path().display().to_string();
    let hosts_file = hosts.display().to_string();
    let server_dir = tmp.join("server").display().to_string();
    let grants = format!("{ID} wott/temperature read\n");

    // (argv, stdin): every `--help`, then real work on temp files.
    let mut table: Vec<(Vec<String>, Option<&[u8]>)> = Vec::new();
    let paths = command_paths();
    assert!(
        paths.iter().any(|p| p == &["acl", "allow"]) && paths.len() > 20,
        "{paths:?}"
    );
    for path in &paths {
        let mut args = path.clone();
        args.push("--help".into());
        table.push((args, None));
    }
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let acl_cmd = |v: &[&str]| {
        let mut args = s(&["acl", "--file", &acl_file]);
        args.extend(s(v));
        args
    };
    for args in [
        s(&["--version"]),
        s(&["whoami"]),
        s(&["whoami", "--long"]),
        s(&["whoami", "--json"]),
        acl_cmd(&["list"]),
        acl_cmd(&["list", "--json"]),
        acl_cmd(&["validate"]),
        acl_cmd(&["check", ID, "wott/temperature"]),
        acl_cmd(&["check", ID, "other/topic"]),
        acl_cmd(&["allow", ID, "wott/x", "--dry-run"]),
        acl_cmd(&["allow", ID, "wott/y", "--no-reload"]),
        acl_cmd(&["revoke", ID, "wott/y", "--no-reload"]),
        acl_cmd(&["allow", "ABC", "wott/x"]),
        s(&[
            "hosts",
            "add",
            ID,
            "10.0.0.1",
            "--dry-run",
            "--hosts-file",
            &hosts_file,
        ]),
        s(&["hosts", "list", "--hosts-file", &hosts_file]),
        s(&["hosts", "check", "localhost", "--hosts-file", &hosts_file]),
        s(&["setup", "client", "--hosts-file", &hosts_file]),
        s(&[
            "setup",
            "client",
            "--server",
            ID,
            "--ip",
            "127.0.0.1",
            "--port",
            &port,
            "--yes",
            "--hosts-file",
            &hosts_file,
        ]),
        s(&["setup", "server", "--server-dir", &server_dir]),
        s(&["check", "--server", ID, "--port", "abc", "--json"]),
        s(&["server", "status"]),
        s(&["server", "logs"]),
        s(&["server", "watch", "--print-unit"]),
        s(&["doctor", "--hosts-file", &hosts_file, "--timeout", "1"]),
        s(&[
            "doctor",
            "--json",
            "--hosts-file",
            &hosts_file,
            "--timeout",
            "1",
        ]),
        s(&["completions", "bash"]),
        s(&["man"]),
        s(&["no-such-command"]),
    ] {
        table.push((args, None));
    }
    table.push((
        acl_cmd(&["apply", "-", "--no-reload"]),
        Some(grants.as_bytes()),
    ));

    let mut failures = Vec::new();
    for (args, stdin) in &table {
        let command = || {
            let mut c = wott().args(args).cert_dir(&fx.dir()).into_command();
            c.env("WOTT_MQTT_SERVER_DIR", &server_dir);
            c
        };
        let (expected, _, _) = run(command(), *stdin, Closed::Nothing);
        for closed in [Closed::Stdout, Closed::Stderr] {
            let (code, stdout, stderr) = run(command(), *stdin, closed);
            if code == 101 || code != expected || stderr.contains("panicked") {
                failures.push(format!(
                    "{closed:?} closed: wott-mqtt {} exited {code} (with open pipes: {expected})\n\
                     stdout: {stdout}\nstderr: {stderr}",
                    args.join(" ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs:\n{}",
        failures.len(),
        table.len() * 2,
        failures.join("\n")
    );
}

/// The commands that drive the engine: `demo` end to end, and a managed
/// broker's `server up`, `status`, `reload`, `logs` and `down`, each with a
/// closed stdout and with a closed stderr (progress, spinners and the
/// engine's messages go to stderr).
#[test]
fn the_engine_commands_do_not_panic_on_a_closed_pipe_either() {
    if !docker::available() {
        return;
    }
    let image = docker::test_image();
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut check =
        |what: &str, closed: Closed, expected: i32, (code, _, stderr): (i32, String, String)| {
            if code != expected || stderr.contains("panicked") {
                failures.push(format!(
                    "{closed:?} closed: {what} exited {code}, expected {expected}\nstderr: {stderr}"
                ));
            }
        };
    for closed in [Closed::Stdout, Closed::Stderr] {
        let mut demo = wott().args(["demo", "--image", &image]).into_command();
        demo.env("TMPDIR", tmp.path());
        check("demo", closed, 0, run(demo, None, closed));
    }
    let s = Server::new("closed-pipes");
    for (sub, closed) in [
        ("up", Closed::Stderr),
        ("status", Closed::Stdout),
        ("status", Closed::Stderr),
        ("reload", Closed::Stdout),
        ("reload", Closed::Stderr),
        ("logs", Closed::Stdout),
        ("logs", Closed::Stderr),
        ("down", Closed::Stdout),
        ("up", Closed::Stdout),
        ("down", Closed::Stderr),
    ] {
        let command = if sub == "up" {
            s.up().into_command()
        } else {
            s.cmd(sub).into_command()
        };
        check(
            &format!("server {sub}"),
            closed,
            0,
            run(command, None, closed),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        s.inspect("{{.Name}}").is_none(),
        "server down left the container"
    );
}
