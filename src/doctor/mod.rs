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
//! Every check has a stable code (`codes::CHECKS`, documented in docs/doctor.md;
//! a test keeps the two in step). [`bundle`] packs the results and what
//! support needs to read them into one tar.gz, without any key material.

mod acl;
pub mod bundle;
mod client;
mod codes;
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
pub use codes::{Level, Role};

use codes::check_info;

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
