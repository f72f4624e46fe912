//! Test support: run the real binary like a user's terminal does, and build
//! the files it works on.
//!
//! `wott().args([..]).env(..).run()` runs `wott-mqtt` with a clean
//! environment and returns a [`Run`] whose assertions print the whole
//! stdout/stderr when they fail.
//!
//! # Skipping a test
//!
//! A test that needs something this machine may lack skips through one
//! helper, [`skip_without`] (in `skip.rs`), and nothing else: no bare
//! `eprintln!("SKIPPED…"); return;`. Under `CI=true` a missing prerequisite
//! fails the test; elsewhere it prints `SKIPPED: …` past the test runner's
//! capture and appends a line to the skip log (`target/test-skips.log`,
//! counted and printed by `.ci/run`). The usual checks are ready-made:
//!
//! ```ignore
//! if !docker::available() { return; }          // a Docker engine
//! if !mosquitto::Broker::available() { return; } // the mosquitto binary
//! if !root_available("to run the binary as nobody") { return; }
//! if skip_without("openssl", openssl_runs) { return; } // anything else
//! ```

#![allow(dead_code)]

pub mod acl;
pub mod deliveries;
pub mod docker;
pub mod doctor;
pub mod mosquitto;
pub mod relay;
pub mod server;
pub mod skip;
pub mod watch;

pub use skip::skip_without;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use wott_mqtt::identity::pki::{Authority, DeviceIdentity, DeviceRequest, random_device_id};

/// Environment variables the binary reads; cleared so the host cannot leak in.
pub const ENV_VARS: &[&str] = &[
    "CERT_PATH",
    "CONFIG_PATH",
    "WOTT_MQTT_SERVER_DIR",
    "WOTT_MQTT_ACL_FILE",
    "WOTT_MQTT_HOSTS_FILE",
    "MQTT_SERVER",
    "MQTT_PORT",
    "MQTT_TOPIC",
    "NO_COLOR",
    "DOCKER_HOST",
    "WOTT_MQTT_IMAGE",
    "WOTT_MQTT_MOSQUITTO",
    "WOTT_MQTT_ANY_ID",
];

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wott-mqtt"))
}

/// A `wott-mqtt` invocation being put together.
pub struct Wott {
    command: Command,
    stdin: Option<Vec<u8>>,
    line: Vec<String>,
}

pub fn wott() -> Wott {
    let mut command = Command::new(bin());
    for var in ENV_VARS {
        command.env_remove(var);
    }
    command.env("WOTT_MQTT_TEST", "1");
    Wott {
        command,
        stdin: None,
        line: vec!["wott-mqtt".into()],
    }
}

/// The same, run as the unprivileged user `nobody` (via setpriv) when the
/// tests run as root, to see what a user without sudo sees.
pub fn wott_unprivileged() -> Wott {
    if !is_root() {
        return wott();
    }
    let mut w = wott();
    let mut command = Command::new("setpriv");
    command.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
    command.arg(bin());
    for var in ENV_VARS {
        command.env_remove(var);
    }
    w.command = command;
    w.line.insert(0, "setpriv(nobody)".into());
    w
}

/// The binary run as `uid:gid` with these supplementary groups (via
/// setpriv; needs root), e.g. a user in the docker group.
pub fn wott_as(uid: u32, gid: u32, groups: &[u32]) -> Wott {
    let mut w = wott();
    let mut command = Command::new("setpriv");
    command.arg(format!("--reuid={uid}"));
    command.arg(format!("--regid={gid}"));
    if groups.is_empty() {
        command.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        command.arg(format!("--groups={}", list.join(",")));
    }
    command.arg("--").arg(bin());
    for var in ENV_VARS {
        command.env_remove(var);
    }
    command.env("WOTT_MQTT_TEST", "1");
    w.command = command;
    w.line.insert(0, format!("setpriv({uid}:{gid})"));
    w
}

/// The same, started by another program that gets `prefix`, then the
/// binary's path and the arguments: e.g. `unshare --mount sh -c SCRIPT sh`,
/// to run it in a mount namespace with a read-only or full filesystem.
pub fn wott_inside<S: AsRef<OsStr>>(program: &str, prefix: impl IntoIterator<Item = S>) -> Wott {
    let mut w = wott();
    let mut command = Command::new(program);
    command.args(prefix);
    command.arg(bin());
    for var in ENV_VARS {
        command.env_remove(var);
    }
    command.env("WOTT_MQTT_TEST", "1");
    w.command = command;
    w.line.insert(0, program.into());
    w
}

pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

impl Wott {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.line.push(arg.as_ref().to_string_lossy().into_owned());
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn cert_dir(self, dir: &Path) -> Self {
        self.arg("--cert-dir").arg(dir)
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// The command as built so far, to spawn a long-running process (such
    /// as `server watch`) instead of running it to its end.
    pub fn into_command(self) -> Command {
        self.command
    }

    pub fn run(mut self) -> Run {
        use std::io::Write;
        self.command.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self.command.spawn().expect("spawn wott-mqtt");
        if let Some(bytes) = self.stdin.take() {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(&bytes)
                .expect("write stdin");
        }
        let output = child.wait_with_output().expect("wait for wott-mqtt");
        Run {
            line: self.line.join(" "),
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub line: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n$ {}\nexit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.line, self.code, self.stdout, self.stderr
        )
    }

    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        if self.code != expected {
            self.fail(&format!("expected exit code {expected}"));
        }
        self
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        self.code(0)
    }

    #[track_caller]
    pub fn stdout_is(&self, expected: &str) -> &Self {
        if self.stdout != expected {
            self.fail(&format!("expected stdout {expected:?}"));
        }
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        if !self.stdout.contains(needle) {
            self.fail(&format!("stdout lacks {needle:?}"));
        }
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        if !self.stderr.contains(needle) {
            self.fail(&format!("stderr lacks {needle:?}"));
        }
        self
    }

    #[track_caller]
    pub fn stderr_lacks(&self, needle: &str) -> &Self {
        if self.stderr.contains(needle) {
            self.fail(&format!("stderr unexpectedly has {needle:?}"));
        }
        self
    }

    #[track_caller]
    pub fn stderr_is_empty(&self) -> &Self {
        if !self.stderr.is_empty() {
            self.fail("expected an empty stderr");
        }
        self
    }

    /// The `error: …` line on stderr.
    #[track_caller]
    pub fn error_line(&self) -> &str {
        match self.stderr.lines().find(|l| l.starts_with("error: ")) {
            Some(line) => line,
            None => self.fail("no error: line on stderr"),
        }
    }

    /// An `error: …` line and a `hint: …` line with these fragments.
    #[track_caller]
    pub fn error(&self, message: &str, hint: &str) -> &Self {
        let error_line = self.stderr.lines().find(|l| l.starts_with("error: "));
        let hint_line = self.stderr.lines().find(|l| l.starts_with("hint: "));
        match (error_line, hint_line) {
            (Some(e), Some(h)) if e.contains(message) && h.contains(hint) => self,
            _ => self.fail(&format!(
                "expected error containing {message:?} and hint containing {hint:?}"
            )),
        }
    }

    /// stdout parsed as exactly one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_str(&self.stdout) {
            Ok(v) => v,
            Err(e) => self.fail(&format!("stdout is not one JSON document: {e}")),
        }
    }
}

/// A temp folder holding an agent-style cert dir.
pub struct CertFixture {
    pub root: tempfile::TempDir,
    pub ca: Authority,
    pub identity: DeviceIdentity,
}

impl CertFixture {
    /// A healthy identity in `<tmp>/certs`.
    pub fn new() -> Self {
        Self::with(|r| r)
    }

    /// An identity made from the agent's defaults, changed by `adjust`.
    pub fn with(adjust: impl FnOnce(DeviceRequest) -> DeviceRequest) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let ca = Authority::new("WoTT test CA").expect("CA");
        let id = random_device_id().expect("id");
        let identity = ca.issue(&adjust(DeviceRequest::new(&id))).expect("issue");
        identity
            .write_to(&root.path().join("certs"))
            .expect("write identity");
        CertFixture { root, ca, identity }
    }

    pub fn dir(&self) -> PathBuf {
        self.root.path().join("certs")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) {
        std::fs::write(self.path(name), bytes).expect("write fixture file");
    }

    pub fn id(&self) -> &str {
        &self.identity.device_id
    }
}

/// Every file under `dir` with its bytes, to prove a command changed nothing.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

/// Whether the tests run as root; when not, the test is skipped through
/// [`skip_without`] (a failure under CI), saying `why` it needs root.
#[track_caller]
pub fn root_available(why: &str) -> bool {
    !skip_without(&format!("root ({why})"), is_root())
}

/// Splits a command line as the tool prints it: words separated by spaces,
/// single quotes around a word that needs them (`output::shell_word`).
pub fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}

/// A `wott-mqtt …` command line the tool printed, as a command to run
/// exactly as printed (this build's binary for `wott-mqtt`; as root, the
/// tool prints no `sudo`).
pub fn printed_command(line: &str) -> Command {
    let words = shell_words(line);
    let (program, args) = words.split_first().expect("an empty command line");
    assert_eq!(
        program, "wott-mqtt",
        "the printed command starts with {program:?}, not wott-mqtt: {line}"
    );
    let mut command = Command::new(bin());
    command.args(args);
    command
}
