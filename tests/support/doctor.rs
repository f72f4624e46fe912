//! Running `doctor --json` and reading its findings.

use std::path::{Path, PathBuf};

use serde_json::Value;

use std::process::Command;

use super::server::Server;
use super::{CertFixture, Run, Wott, wott};

/// `wott-mqtt --cert-dir CERTS --server-dir SERVER doctor --json --hosts-file HOSTS`.
pub fn doctor(certs: &Path, server_dir: &Path, hosts: &Path) -> Wott {
    wott()
        .cert_dir(certs)
        .arg("--server-dir")
        .arg(server_dir)
        .args(["doctor", "--json", "--hosts-file"])
        .arg(hosts)
}

/// A scratch place: an empty hosts file and a server dir that does not
/// exist, so that only the identity role applies unless a test adds more.
pub struct Scratch {
    pub root: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join("hosts"), "127.0.0.1 localhost\n").expect("hosts");
        Scratch { root }
    }

    pub fn hosts(&self) -> PathBuf {
        self.root.path().join("hosts")
    }

    pub fn server_dir(&self) -> PathBuf {
        self.root.path().join("no-server")
    }
}

/// Every finding with this code.
pub fn findings<'a>(doc: &'a Value, code: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == code)
        .collect()
}

/// The finding with this code and level; panics with the whole document
/// when there is none.
#[track_caller]
pub fn finding<'a>(doc: &'a Value, code: &str, level: &str) -> &'a Value {
    findings(doc, code)
        .into_iter()
        .find(|f| f["level"] == level)
        .unwrap_or_else(|| {
            panic!(
                "no {level} finding {code}:\n{}",
                serde_json::to_string_pretty(doc).unwrap_or_default()
            )
        })
}

/// The finding's fix.
#[track_caller]
pub fn fix(finding: &Value) -> String {
    finding["fix"]
        .as_str()
        .unwrap_or_else(|| panic!("no fix in {finding}"))
        .to_string()
}

/// The codes of every finding that is not ok.
pub fn problems(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["level"] != "ok")
        .map(|f| format!("{} {}: {}", f["level"], f["code"], f["found"]))
        .collect()
}

/// Failures only.
pub fn failures(doc: &Value) -> Vec<String> {
    problems(doc)
        .into_iter()
        .filter(|p| p.starts_with("\"failure\""))
        .collect()
}

/// Runs and parses, with the exit code checked.
#[track_caller]
pub fn run_json(w: Wott, code: i32) -> (Run, Value) {
    let run = w.run();
    run.code(code);
    let doc = run.json();
    (run, doc)
}

/// A server dir with the rendered mosquitto.conf, so the server role (and
/// with it the ACL's) applies; no broker runs.
pub struct ServerFiles {
    pub certs: CertFixture,
    pub scratch: Scratch,
}

impl ServerFiles {
    pub fn new(acl: &str) -> ServerFiles {
        Self::with_certs(CertFixture::new(), acl)
    }

    pub fn with_certs(certs: CertFixture, acl: &str) -> ServerFiles {
        let files = ServerFiles {
            certs,
            scratch: Scratch::new(),
        };
        std::fs::create_dir(files.dir()).unwrap();
        let conf = include_str!("../../templates/mosquitto.conf")
            .replace("{{listener_port}}", "8883")
            .replace("{{certs_dir}}", "/mosquitto/certs")
            .replace("{{config_dir}}", "/mosquitto/config");
        std::fs::write(files.dir().join("mosquitto.conf"), conf).unwrap();
        std::fs::write(files.acl(), acl).unwrap();
        files
    }

    pub fn dir(&self) -> PathBuf {
        self.scratch.root.path().join("server")
    }

    pub fn acl(&self) -> PathBuf {
        self.dir().join("permissions.acl")
    }

    /// Doctor's document; the broker's checks fail (there is none), so the
    /// exit code is not asserted here.
    pub fn doctor(&self) -> serde_json::Value {
        doctor(&self.certs.dir(), &self.dir(), &self.scratch.hosts())
            .run()
            .json()
    }

    /// Runs a printed `wott-mqtt …` command exactly as printed.
    pub fn run_printed(&self, command: &str) {
        let out = super::printed_command(command.trim_start_matches("sudo "))
            .env_remove("WOTT_MQTT_ACL_FILE")
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}: {out:?}");
    }
}

/// Whether the `openssl` command runs (for certificates rcgen cannot make);
/// a skip through `skip_without` otherwise.
pub fn openssl_available() -> bool {
    let runs = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    !super::skip_without("openssl", runs)
}

/// `doctor` for a managed test broker, with a hosts file of its own.
pub struct BrokerDoctor<'a> {
    pub server: &'a Server,
    pub scratch: Scratch,
}

impl<'a> BrokerDoctor<'a> {
    pub fn new(server: &'a Server) -> Self {
        BrokerDoctor {
            server,
            scratch: Scratch::new(),
        }
    }

    /// `doctor --json`'s document, the exit code checked.
    #[track_caller]
    pub fn run(&self, code: i32) -> Value {
        run_json(self.doctor(), code).1
    }

    /// The same with `--strict` (warnings fail too).
    #[track_caller]
    pub fn run_strict(&self, code: i32) -> Value {
        run_json(self.doctor().arg("--strict"), code).1
    }

    fn doctor(&self) -> Wott {
        doctor(
            &self.server.certs.dir(),
            &self.server.dir(),
            &self.scratch.hosts(),
        )
        .args(["--timeout", "3", "--port", &self.server.port.to_string()])
    }

    /// Runs a printed `wott-mqtt …` (or other) command exactly as printed.
    pub fn run_printed(&self, command: &str) {
        let out = if command.starts_with("wott-mqtt ") {
            super::printed_command(command).output().unwrap()
        } else {
            let words = super::shell_words(command);
            Command::new(&words[0]).args(&words[1..]).output().unwrap()
        };
        assert!(out.status.success(), "{command}: {out:?}");
    }
}

pub fn docker_cmd(args: &[&str]) {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {out:?}");
}
