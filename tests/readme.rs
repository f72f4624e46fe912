//! The README's tour is real output: every `$ wott-mqtt …` line in a console
//! block marked `<!-- tour: server|client|demo -->` runs here, as that device,
//! and its output must match the lines under it.
//!
//! The fixture gives the devices the README's IDs and maps the temp paths back
//! to the agent's (`/opt/wott/certs`, `/opt/wott/mosquitto`, `/etc/hosts`).
//! In expected lines, `…` matches any text, and a line holding only `…`
//! matches any number of lines. `sudo ` is dropped. `demo` runs as written:
//! where no registry answers, it builds its image from this machine's
//! Mosquitto.
//!
//! Every step must exit 0, unless the next line of the block is `$ echo $?`,
//! whose output is then the exit code the step must end with.
//!
//! `README_PRINT=1 cargo test --test readme -- --nocapture` prints what the
//! commands print now, normalised, to paste into the README.

#![allow(clippy::unwrap_used)]

mod support;

use std::fs;

use support::{Authority, DeviceRequest, docker};

const SERVER_ID: &str = "4853b630822946019393b16c5b710b9e.d.wott.local";
const CLIENT_ID: &str = "7b3e0f1a2c4d4e5f8a9b0c1d2e3f4a5b.d.wott.local";

/// The pseudo-step that shows the previous step's exit code.
const ECHO_EXIT_CODE: &str = "echo $?";

/// One `$ command` and the lines it must print.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The tour blocks of the README, by device.
fn tour(device: &str) -> Vec<Step> {
    let readme = include_str!("../README.md");
    let marker = format!("<!-- tour: {device} -->");
    let mut steps = Vec::new();
    let mut rest = readme;
    while let Some(at) = rest.find(&marker) {
        rest = &rest[at + marker.len()..];
        let start = rest
            .find("```console\n")
            .expect("a console block after the marker")
            + 11;
        let end = rest[start..].find("\n```").expect("the end of the block") + start;
        for line in rest[start..end].lines() {
            if let Some(command) = line.strip_prefix("$ ") {
                steps.push(Step {
                    command: command.trim_start_matches("sudo ").to_string(),
                    expected: Vec::new(),
                });
            } else if let Some(step) = steps.last_mut() {
                step.expected.push(line.to_string());
            }
        }
        rest = &rest[end..];
    }
    steps
}

/// Whether `line` matches `pattern`, where `…` stands for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split('…');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Whether `lines` match `patterns`; a pattern `…` alone takes any number of lines.
fn lines_match(patterns: &[String], lines: &[&str]) -> bool {
    match patterns.split_first() {
        None => lines.is_empty(),
        Some((p, rest)) if p == "…" => {
            (0..=lines.len()).any(|skip| lines_match(rest, &lines[skip..]))
        }
        Some((p, rest)) => lines
            .split_first()
            .is_some_and(|(line, more)| line_matches(p, line) && lines_match(rest, more)),
    }
}

struct Devices {
    root: tempfile::TempDir,
}

impl Devices {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let ca = Authority::new("WoTT CA").unwrap();
        for (name, id) in [("server", SERVER_ID), ("client", CLIENT_ID)] {
            ca.issue(&DeviceRequest::new(id))
                .unwrap()
                .write_to(&root.path().join(name).join("certs"))
                .unwrap();
        }
        // The server dir as `server up` leaves it, and a client's stock /etc/hosts.
        let server_dir = root.path().join("server/mosquitto");
        fs::create_dir_all(&server_dir).unwrap();
        fs::write(
            server_dir.join("permissions.acl"),
            include_str!("../templates/permissions.acl"),
        )
        .unwrap();
        fs::write(
            root.path().join("client/hosts"),
            "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n",
        )
        .unwrap();
        Devices { root }
    }

    fn path(&self, rel: &str) -> String {
        self.root.path().join(rel).display().to_string()
    }

    /// Runs a tour command as `device` and returns its output, normalised.
    fn run(&self, device: &str, command: &str) -> (i32, String) {
        let mut args = support::shell_words(command);
        assert_eq!(args.remove(0), "wott-mqtt", "{command}");
        // stdout and stderr into one pipe, so lines come in the order a
        // terminal shows them.
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut command = std::process::Command::new(support::bin());
        command
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CERT_PATH", self.path(&format!("{device}/certs")))
            .env("WOTT_MQTT_SERVER_DIR", self.path("server/mosquitto"))
            .env("WOTT_MQTT_HOSTS_FILE", self.path("client/hosts"))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(writer.try_clone().unwrap())
            .stderr(writer);
        let mut child = command.spawn().unwrap();
        drop(command);
        let mut output = String::new();
        std::io::Read::read_to_string(&mut reader, &mut output).unwrap();
        let code = child.wait().unwrap().code().unwrap_or(-1);
        let text = output
            .replace(&self.path(&format!("{device}/certs")), "/opt/wott/certs")
            .replace(&self.path("server/mosquitto"), "/opt/wott/mosquitto")
            .replace(&self.path("client/hosts"), "/etc/hosts");
        (code, text)
    }
}

fn run_tour(device: &str) {
    let steps = tour(device);
    assert!(
        !steps.is_empty(),
        "the README has no `<!-- tour: {device} -->` block"
    );
    let devices = Devices::new();
    let print = std::env::var_os("README_PRINT").is_some();
    let mut failures = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if step.command == ECHO_EXIT_CODE {
            continue;
        }
        let (code, text) = devices.run(device, &step.command);
        let lines: Vec<&str> = text.lines().collect();
        if print {
            println!("$ {}\n{text}[exit {code}]", step.command);
        }
        if !lines_match(&step.expected, &lines) {
            failures.push(format!(
                "$ {}\n--- README ---\n{}\n--- actual (exit {code}) ---\n{text}",
                step.command,
                step.expected.join("\n")
            ));
        }
        let expected_code = match steps.get(i + 1) {
            Some(next) if next.command == ECHO_EXIT_CODE => next.expected.join("\n"),
            _ => "0".to_string(),
        };
        if code.to_string() != expected_code {
            failures.push(format!(
                "$ {}\nexits {code}, the README says {expected_code}",
                step.command
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "the README's tour is out of date:\n\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn the_servers_tour_is_real_output() {
    run_tour("server");
}

#[test]
fn the_clients_tour_is_real_output() {
    run_tour("client");
}

#[test]
fn the_demo_in_the_readme_is_real_output() {
    if !docker::available() {
        return;
    }
    run_tour("demo");
}

#[test]
fn the_matcher_matches_what_it_should() {
    assert!(line_matches("a … c", "a b c"));
    assert!(line_matches("…", "anything"));
    assert!(line_matches("exact", "exact"));
    assert!(!line_matches("exact", "exactly"));
    assert!(!line_matches("a … c", "a b d"));
    let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&p(&["x", "…", "z"]), &["x", "1", "2", "z"]));
    assert!(lines_match(&p(&["x", "…", "z"]), &["x", "z"]));
    assert!(!lines_match(&p(&["x", "z"]), &["x", "y", "z"]));
    assert_eq!(
        support::shell_words("wott-mqtt acl allow 'wott/#' x"),
        ["wott-mqtt", "acl", "allow", "wott/#", "x"]
    );
}
