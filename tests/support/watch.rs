//! A running `wott-mqtt server watch --json` and the events it prints, and
//! the agent's way of renewing: the three files rewritten in place, one
//! after another (agent/__init__.py, `run()`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::DeviceIdentity;
use super::server::Server;

/// `server watch --json` for `server`, its events read as they come. Killed
/// on drop.
pub struct WatchProcess {
    pub child: Child,
    events: Receiver<Value>,
    /// Every event seen so far, for the failure messages.
    pub seen: Vec<Value>,
}

impl WatchProcess {
    pub fn start(server: &Server, extra: &[&str]) -> WatchProcess {
        Self::start_with(server, extra, &[])
    }

    pub fn start_with(server: &Server, extra: &[&str], env: &[(&str, &str)]) -> WatchProcess {
        let mut command = super::wott()
            .cert_dir(&server.certs.dir())
            .arg("--server-dir")
            .arg(server.dir())
            .args(["--json", "server", "watch"])
            .args(extra)
            .into_command();
        command
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("start server watch");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        WatchProcess {
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// The next event named `name` within `within`, skipping others.
    pub fn wait_for(&mut self, name: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if event["event"] == name {
                        return event;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no {name:?} event within {within:?}; seen: {:#?}",
                        self.seen
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "watch ended before a {name:?} event; seen: {:#?}",
                        self.seen
                    )
                }
            }
        }
    }

    /// The events that arrive within `within`.
    pub fn drain(&mut self, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while let Ok(event) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(event.clone());
            got.push(event);
        }
        got
    }

    /// Sends `signal` (e.g. "TERM") and waits for the exit; returns the
    /// exit code and how long it took.
    pub fn stop(&mut self, signal: &str) -> (Option<i32>, Duration) {
        let started = Instant::now();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let status = self.child.wait().expect("wait");
        (status.code(), started.elapsed())
    }
}

impl Drop for WatchProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rewrites `path` in place (truncate, write): the inode, owner and mode stay.
pub fn rewrite_in_place(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.write_all(bytes).expect("write");
}

/// The agent's renewal: `client.crt`, then `ca.crt`, then `client.key`,
/// then `combined.pem`, each truncated and rewritten, `pause` apart.
pub fn agent_renews(cert_dir: &Path, new: &DeviceIdentity, pause: Duration) {
    rewrite_in_place(&cert_dir.join("client.crt"), new.cert_pem.as_bytes());
    std::thread::sleep(pause);
    rewrite_in_place(&cert_dir.join("ca.crt"), new.ca_pem.as_bytes());
    std::thread::sleep(pause);
    rewrite_in_place(&cert_dir.join("client.key"), new.key_pem.as_bytes());
    std::thread::sleep(pause);
    let combined = format!("{}{}", new.cert_pem, new.key_pem);
    let path = cert_dir.join("combined.pem");
    if path.exists() {
        rewrite_in_place(&path, combined.as_bytes());
    } else {
        std::fs::write(path, combined).expect("write combined.pem");
    }
}

/// How many times the broker's log says it reloaded.
pub fn reloads(server: &Server) -> usize {
    let out = Command::new("docker")
        .args(["logs", &server.name])
        .output()
        .expect("docker logs");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .filter(|l| l.contains("Reloading config."))
        .count()
}
