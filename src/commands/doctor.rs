//! `doctor [--bundle FILE]`: the checks, grouped by role, and the bundle.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::Config;
use crate::cli::{DoctorArgs, VERSION};
use crate::doctor::{
    self, BundleOptions, BundleReport, DoctorFailed, DoctorOptions, DoctorReport, Level, Role,
};
use crate::error::Error;
use crate::names::DeviceId;
use crate::output::{Human, Outcome, Paint, sanitize_field};

pub fn run(config: &Config, args: &DoctorArgs) -> Result<Outcome, Error> {
    let ctx = config.context();
    let options = DoctorOptions {
        server: match &args.server {
            Some(id) => Some(DeviceId::typed(id, config.id_policy)?.to_string()),
            None => None,
        },
        port: args.port,
        topic: args.topic.clone(),
        hosts_file: args.file.path(),
        name: args.container.name.clone(),
        timeout: Duration::from_secs(args.timeout.max(1)),
    };
    let bundle = args.bundle.as_ref().map(|path| BundleOptions {
        path: path.clone(),
        no_acl: args.no_acl,
        log_lines: args.log_lines,
        tool_version: VERSION.to_string(),
        hosts_file: options.hosts_file.clone(),
    });
    let work = async {
        let report = doctor::doctor(&ctx, &options).await;
        let written = match &bundle {
            Some(bundle) => Some(doctor::bundle::bundle(&ctx, &report, bundle).await),
            None => None,
        };
        (report, written)
    };
    let (report, written) =
        crate::runtime::block_on_interruptible(work)?.ok_or(Error::Interrupted)?;
    let failed = DoctorFailed {
        failures: report.summary.failures,
        warnings: report.summary.warnings,
        strict: args.strict,
    };
    let is_failed = report.failed(args.strict);
    let view = DoctorView {
        report,
        bundle: written.as_ref().and_then(|w| w.as_ref().ok()).cloned(),
    };
    Ok(match written {
        // The bundle is what was asked for: once written, exit 0.
        Some(Err(e)) => Outcome::report(view).with_error(Error::from(e)),
        Some(Ok(_)) => Outcome::report(view),
        None if is_failed => Outcome::report(view).with_error(failed),
        None => Outcome::report(view),
    })
}

/// The report, with the bundle when one was written. The JSON schema is
/// documented in docs/doctor.md.
#[derive(Debug, Serialize)]
struct DoctorView {
    #[serde(flatten)]
    report: DoctorReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<BundleReport>,
}

impl Human for DoctorView {
    fn human(&self, p: Paint) -> String {
        let r = &self.report;
        let mut s = String::new();
        for role in [Role::Identity, Role::Server, Role::Acl, Role::Client] {
            let findings: Vec<_> = r.findings.iter().filter(|f| f.role == role).collect();
            if findings.is_empty() {
                continue;
            }
            let place = match role {
                Role::Identity => format!("cert dir {}", r.cert_dir.display()),
                Role::Server => format!("server dir {}", r.server_dir.display()),
                Role::Acl => format!("{}", r.server_dir.join(crate::acl::FILE_NAME).display()),
                Role::Client => format!("broker {}", r.servers.join(", ")),
            };
            let _ = writeln!(
                s,
                "{}  {}",
                p.bold(role.title()),
                p.dim(&sanitize_field(&place))
            );
            for f in findings {
                let mark = match f.level {
                    Level::Ok => p.good("✓"),
                    Level::Warning => p.warn("!"),
                    Level::Failure => p.bad("✗"),
                };
                let _ = writeln!(s, "  {mark} {:<24} {}", f.code, sanitize_field(&f.found));
                if let Some(why) = &f.why {
                    let _ = writeln!(s, "      {} {}", p.dim("why"), sanitize_field(why));
                }
                if let Some(fix) = &f.fix {
                    let _ = writeln!(s, "      {} {}", p.bold("fix"), sanitize_field(fix));
                }
            }
            s.push('\n');
        }
        let sum = r.summary;
        let _ = writeln!(
            s,
            "{} ok, {} warning{}, {} failure{}",
            sum.ok,
            sum.warnings,
            if sum.warnings == 1 { "" } else { "s" },
            sum.failures,
            if sum.failures == 1 { "" } else { "s" }
        );
        if let Some(b) = &self.bundle {
            let _ = writeln!(
                s,
                "{} bundle written: {} ({} bytes, {} files, mode 0600, no key material)",
                p.good("✓"),
                sanitize_field(&b.path.display().to_string()),
                b.bytes,
                b.files.len()
            );
            for name in &b.scrubbed {
                let _ = writeln!(
                    s,
                    "  scrubbed what looked like key material from {}",
                    sanitize_field(name)
                );
            }
        }
        s
    }
}
