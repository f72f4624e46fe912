//! `doctor`: every check that applies to this device, each with its fix, and
//! the support bundle.
//!
//! Support staff used to ask for `whoami --long`, `server status`, `acl
//! check`, `check` and the broker's log one by one, and nothing looked at a
//! server's configuration as a whole. Doctor finds which roles this device
//! has (an identity in the cert dir; a server dir and its managed broker;
//! hosts entries for `*.d.wott.local` or `--server` for a client's broker),
//! runs every check of those roles, and says for each what it found, why it
//! matters and the command that fixes it. It asks the domains and changes
//! nothing: the identity is `identity`'s inspection, the broker's state is
//! `server status`'s report, the ACL is `acl validate`'s lint plus
//! [`crate::acl::audit`], the probe is `check`'s.
//!
//! Every check has a stable code ([`CHECKS`], documented in docs/doctor.md;
//! a test keeps the two in step). [`bundle`] packs the results and what
//! support needs to read them into one tar.gz, without any key material.

mod acl;
pub mod bundle;
mod client;
mod conf;
mod identity;
mod server;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::broker::Context;
use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;

pub use bundle::{BundleOptions, BundleReport};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Failure,
}

/// Which part of the tutorial a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Identity,
    Server,
    Acl,
    Client,
}

impl Role {
    pub fn title(self) -> &'static str {
        match self {
            Role::Identity => "Identity",
            Role::Server => "Server",
            Role::Acl => "ACL",
            Role::Client => "Client",
        }
    }
}

/// A check doctor can run: its stable code and what it looks at.
#[derive(Debug, Clone, Copy)]
pub struct CheckInfo {
    pub code: &'static str,
    pub role: Role,
    /// What it looks at: docs/doctor.md's table says the same.
    #[cfg_attr(not(test), allow(dead_code))]
    pub summary: &'static str,
}

const fn info(code: &'static str, role: Role, summary: &'static str) -> CheckInfo {
    CheckInfo {
        code,
        role,
        summary,
    }
}

/// Every check, in the order doctor runs them. docs/doctor.md lists the
/// same codes (a unit test keeps them in step); a code never changes meaning.
pub const CHECKS: &[CheckInfo] = &[
    info(
        "identity.files",
        Role::Identity,
        "client.crt, client.key and ca.crt are there and load",
    ),
    info(
        "identity.device-id",
        Role::Identity,
        "the certificate's CN is a WoTT device ID",
    ),
    info(
        "identity.expiry",
        Role::Identity,
        "the certificate is valid now and for more than 3 days",
    ),
    info(
        "identity.key-match",
        Role::Identity,
        "client.key belongs to client.crt",
    ),
    info("identity.chain", Role::Identity, "ca.crt signed client.crt"),
    info(
        "identity.key-quality",
        Role::Identity,
        "the key's algorithm and size",
    ),
    info(
        "identity.cn-in-san",
        Role::Identity,
        "the CN is among the certificate's DNS names",
    ),
    info(
        "identity.key-mode",
        Role::Identity,
        "other users cannot read client.key",
    ),
    info(
        "server.dir-trust",
        Role::Server,
        "the server dir and the folders above it are root's and not writable by others",
    ),
    info(
        "server.conf-edited",
        Role::Server,
        "mosquitto.conf is what `server up` renders",
    ),
    info(
        "server.settings",
        Role::Server,
        "the settings that make the broker secure are in mosquitto.conf",
    ),
    info(
        "server.staged",
        Role::Server,
        "the staged copies are the agent's, with the right owner and modes",
    ),
    info(
        "server.ca-expiry",
        Role::Server,
        "the CA certificate the broker trusts is valid for more than 30 days",
    ),
    info(
        "server.engine",
        Role::Server,
        "the container engine answers",
    ),
    info(
        "server.running",
        Role::Server,
        "the broker's container runs and answers an mTLS CONNECT",
    ),
    info(
        "server.open-acl",
        Role::Server,
        "the broker enforces its ACL (its last ACL load did not fail)",
    ),
    info(
        "server.cert-drift",
        Role::Server,
        "the broker serves the agent's current certificate",
    ),
    info(
        "server.acl-drift",
        Role::Server,
        "the broker loaded permissions.acl after its last change",
    ),
    info(
        "server.config-current",
        Role::Server,
        "the container was created from the current image and configuration",
    ),
    info(
        "server.bind",
        Role::Server,
        "who can reach the broker's port",
    ),
    info(
        "server.restart-policy",
        Role::Server,
        "the engine restarts the broker after a crash or a reboot",
    ),
    info(
        "server.hardening",
        Role::Server,
        "the container has no capabilities, no new privileges and a read-only root",
    ),
    info(
        "server.watcher",
        Role::Server,
        "something applies renewals and ACL edits (`server watch`)",
    ),
    info(
        "acl.file",
        Role::Acl,
        "permissions.acl exists and can be read",
    ),
    info(
        "acl.refused",
        Role::Acl,
        "Mosquitto accepts every line of permissions.acl",
    ),
    info(
        "acl.lint",
        Role::Acl,
        "no rule means something else than it seems (`acl validate`'s warnings)",
    ),
    info("acl.duplicate", Role::Acl, "no rule repeats another"),
    info(
        "acl.broad-grant",
        Role::Acl,
        "no grant reaches every topic, or writes to $SYS",
    ),
    info(
        "acl.shadowed",
        Role::Acl,
        "no grant is already given by a wider grant of the same device",
    ),
    info(
        "acl.device-id",
        Role::Acl,
        "every `user` is a WoTT device ID",
    ),
    info(
        "client.hosts-missing",
        Role::Client,
        "the server's ID resolves (a hosts entry)",
    ),
    info(
        "client.hosts-duplicate",
        Role::Client,
        "one hosts line maps the server's ID",
    ),
    info(
        "client.hosts-stale",
        Role::Client,
        "the hosts entry points at the server's current address",
    ),
    info(
        "client.probe",
        Role::Client,
        "`check`'s staged probe passes up to SUBACK",
    ),
];

/// The check `code`; a code not in [`CHECKS`] is a bug.
fn check_info(code: &str) -> CheckInfo {
    CHECKS
        .iter()
        .copied()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("doctor check {code} is not in CHECKS"))
}

/// One finding: a check's verdict on one thing.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub role: Role,
    pub level: Level,
    /// What the finding is about, when a check looks at several things: a
    /// server ID, a line of a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// What was found.
    pub found: String,
    /// Why it matters (for a warning or failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The command that fixes it, runnable as printed; or, where no one
    /// command can, what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(code: &'static str, found: impl Into<String>) -> Finding {
        Finding {
            code,
            role: check_info(code).role,
            level: Level::Ok,
            subject: None,
            found: found.into(),
            why: None,
            fix: None,
        }
    }

    pub fn warning(
        code: &'static str,
        found: impl Into<String>,
        why: impl Into<String>,
    ) -> Finding {
        Finding {
            level: Level::Warning,
            why: Some(why.into()),
            ..Finding::ok(code, found)
        }
    }

    pub fn failure(
        code: &'static str,
        found: impl Into<String>,
        why: impl Into<String>,
    ) -> Finding {
        Finding {
            level: Level::Failure,
            ..Finding::warning(code, found, why)
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }

    pub fn maybe_fix(mut self, fix: Option<String>) -> Finding {
        self.fix = fix;
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Finding {
        self.subject = Some(subject.into());
        self
    }
}

/// What doctor is asked.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// The client's broker (`--server`): its device ID.
    pub server: Option<String>,
    /// The broker's TLS port for the client probe.
    pub port: u16,
    /// The topic the probe subscribes to.
    pub topic: String,
    pub hosts_file: PathBuf,
    /// The broker's container (`--name`); else the server dir's.
    pub name: Option<String>,
    /// How long each network probe may take.
    pub timeout: Duration,
}

/// Everything doctor found, per role.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// The roles that apply to this device, in the order they are checked.
    pub roles: Vec<Role>,
    pub cert_dir: PathBuf,
    pub server_dir: PathBuf,
    /// The servers the client checks were run for.
    pub servers: Vec<String>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
    /// Extra material for a bundle; not part of the report.
    #[serde(skip)]
    pub material: Material,
}

/// How many findings of each level.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warnings: usize,
    pub failures: usize,
}

/// What the checks read that a bundle carries too.
#[derive(Debug, Clone, Default)]
pub struct Material {
    /// `server status --json`'s document.
    pub status: Option<serde_json::Value>,
    /// The broker's container ID, for its log.
    pub container_id: Option<String>,
    /// `check --json`'s document, per server.
    pub checks: Vec<(String, serde_json::Value)>,
}

impl DoctorReport {
    /// Whether doctor should end with [`ExitCode::DoctorFailed`]: a
    /// failure, or with `strict` a warning too.
    pub fn failed(&self, strict: bool) -> bool {
        self.summary.failures > 0 || (strict && self.summary.warnings > 0)
    }

    fn push(&mut self, findings: impl IntoIterator<Item = Finding>) {
        for finding in findings {
            match finding.level {
                Level::Ok => self.summary.ok += 1,
                Level::Warning => self.summary.warnings += 1,
                Level::Failure => self.summary.failures += 1,
            }
            if !self.roles.contains(&finding.role) {
                self.roles.push(finding.role);
            }
            self.findings.push(finding);
        }
    }
}

/// Runs every check that applies.
pub async fn doctor(ctx: &Context<'_>, options: &DoctorOptions) -> DoctorReport {
    let mut report = DoctorReport {
        roles: Vec::new(),
        cert_dir: ctx.cert_dir.path().to_path_buf(),
        server_dir: ctx.server_dir.to_path_buf(),
        servers: Vec::new(),
        findings: Vec::new(),
        summary: Summary::default(),
        material: Material::default(),
    };
    let is_server = server::applies(ctx);
    let identity = identity::check(ctx, is_server);
    report.push(identity.findings);
    if is_server {
        let (findings, material) = server::check(ctx, options).await;
        report.push(findings);
        report.material.status = material.status;
        report.material.container_id = material.container_id;
        report.push(acl::check(ctx));
    }
    let servers = client::servers(options);
    let own_server_id = identity.device_id.as_deref().filter(|_| is_server);
    for server in &servers {
        let (findings, check) = client::check(ctx, options, server, own_server_id).await;
        report.push(findings);
        if let Some(check) = check {
            report.material.checks.push((server.clone(), check));
        }
    }
    report.servers = servers;
    report
}

/// Doctor found failures (or, with `--strict`, warnings).
#[derive(Debug, thiserror::Error)]
#[error("{}", failed_message(*failures, *warnings, *strict))]
pub struct DoctorFailed {
    pub failures: usize,
    pub warnings: usize,
    pub strict: bool,
}

fn failed_message(failures: usize, warnings: usize, strict: bool) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if strict && failures == 0 {
        format!("doctor found {} (--strict)", plural(warnings, "warning"))
    } else {
        format!("doctor found {}", plural(failures, "failure"))
    }
}

impl Diagnose for DoctorFailed {
    fn hint(&self) -> Option<String> {
        Some("each finding above says why it matters and the command that fixes it".into())
    }

    fn exit_code(&self) -> ExitCode {
        ExitCode::DoctorFailed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_grouped_by_role() {
        for (i, a) in CHECKS.iter().enumerate() {
            assert!(
                a.code
                    .starts_with(&format!("{}.", format!("{:?}", a.role).to_lowercase())),
                "{} is not under its role",
                a.code
            );
            for b in &CHECKS[i + 1..] {
                assert_ne!(a.code, b.code);
                assert!(a.role <= b.role, "{} after {}", a.code, b.code);
            }
        }
    }

    #[test]
    fn docs_list_every_check_and_nothing_else() {
        let doc = include_str!("../../docs/doctor.md");
        for check in CHECKS {
            let row = format!("| `{}` | {} |", check.code, check.summary);
            assert!(doc.contains(&row), "docs/doctor.md lacks the row {row:?}");
        }
        let section = doc
            .split("\n## ")
            .find(|s| s.starts_with("The checks"))
            .expect("docs/doctor.md has a section \"The checks\"");
        let documented: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter(|code| code.contains('.') && !code.contains(' '))
            .collect();
        for code in documented {
            assert!(
                CHECKS.iter().any(|c| c.code == code),
                "docs/doctor.md lists {code}, which doctor does not have"
            );
        }
    }
}
