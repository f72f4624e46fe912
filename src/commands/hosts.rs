//! `hosts add|remove|list|check`: the tutorial's /etc/hosts step, made safe.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;

use super::Config;
use crate::cli::{HostsAddArgs, HostsCheckArgs, HostsCommand, HostsListArgs, HostsRemoveArgs};
use crate::error::Error;
use crate::files::WriteMethod;
use crate::hosts::{self, Action, Change, Entry, HostsError};
use crate::names::{DeviceId, IdPolicy, NameError, WOTT_DOMAIN};
use crate::output::{Human, Outcome, Paint, sanitize};

pub fn run(config: &Config, command: HostsCommand) -> Result<Outcome, Error> {
    match command {
        HostsCommand::Add(args) => add(config, &args),
        HostsCommand::Remove(args) => remove(config, &args),
        HostsCommand::List(args) => list(config, &args),
        HostsCommand::Check(args) => check(config, &args),
    }
}

/// A device ID from the command line, which may not even be UTF-8; it must
/// be WoTT-shaped unless `--any-id`.
fn device_id(policy: IdPolicy, value: &OsStr) -> Result<DeviceId, NameError> {
    match value.to_str() {
        Some(text) => DeviceId::typed(text, policy),
        None => Err(NameError::DeviceId {
            value: value.to_string_lossy().chars().take(80).collect(),
            reason: "it is not UTF-8 text".into(),
        }),
    }
}

fn add(config: &Config, args: &HostsAddArgs) -> Result<Outcome, Error> {
    let name = device_id(config.id_policy, &args.server_id)?;
    let ip = hosts::parse_server_ip(&args.ip)?;
    let path = args.file.path();
    if name.as_str().len() == 32 && name.as_str().bytes().all(|b| b.is_ascii_hexdigit()) {
        config.output.warn(&format!(
            "{name} has no domain; the server's certificate names it {name}{WOTT_DOMAIN}, \
             and clients must use that name"
        ));
    }
    let change = hosts::add(&path, &name, ip, args.dry_run)?;
    Ok(Outcome::report(EditReport::new(
        "add",
        &path,
        &name,
        Some(ip),
        change,
        args.dry_run,
    )))
}

fn remove(config: &Config, args: &HostsRemoveArgs) -> Result<Outcome, Error> {
    let name = device_id(config.id_policy, &args.server_id)?;
    let path = args.file.path();
    let change = hosts::remove(&path, &name, args.dry_run)?;
    for entry in &change.plan.left {
        config.output.warn(&format!(
            "line {} of {} still maps {name} to {}; wott-mqtt did not write that line, \
             so it was left alone: edit it by hand",
            entry.line,
            sanitize(&path.display().to_string()),
            entry.ip
        ));
    }
    Ok(Outcome::report(EditReport::new(
        "remove",
        &path,
        &name,
        None,
        change,
        args.dry_run,
    )))
}

/// The result of `hosts add` or `hosts remove`.
#[derive(Debug, Serialize)]
struct EditReport {
    #[serde(skip)]
    command: &'static str,
    hosts_file: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    changed: bool,
    dry_run: bool,
    /// How the file was written: `rename` (atomic) or `in-place` (bind mount).
    write_method: Option<WriteMethod>,
    actions: Vec<Action>,
    /// The lines that mapped the name before the edit.
    before: Vec<Entry>,
    /// Lines that still map the name because wott-mqtt did not write them.
    left: Vec<Entry>,
    /// The unified diff, for a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
}

impl EditReport {
    fn new(
        command: &'static str,
        path: &Path,
        name: &DeviceId,
        ip: Option<IpAddr>,
        change: Change,
        dry_run: bool,
    ) -> Self {
        let Change { edit, plan } = change;
        EditReport {
            command,
            hosts_file: path.display().to_string(),
            name: name.to_string(),
            ip,
            changed: edit.changed,
            dry_run,
            write_method: edit.method,
            diff: edit.diff,
            actions: plan.actions,
            before: plan.before,
            left: plan.left,
        }
    }

    fn describe(&self, action: &Action) -> String {
        let name = &self.name;
        let ip = self.ip.map(|ip| ip.to_string()).unwrap_or_default();
        match action {
            Action::Appended { line } => format!("added {name} → {ip} (line {line})"),
            Action::Updated { line, old_ip } => {
                format!("updated line {line}: {name} → {ip} (was {old_ip})")
            }
            Action::Adopted { line, old_ip } => format!(
                "updated line {line}: {name} → {ip} (was {old_ip}); wott-mqtt now manages that line"
            ),
            Action::NameRemoved { line, ip, kept } => format!(
                "took {name} off line {line} ({ip}), which still maps {}",
                sanitize(&kept.join(" "))
            ),
            Action::LineRemoved { line, ip, .. } => {
                format!("removed line {line} ({ip} {name})")
            }
        }
    }
}

impl Human for EditReport {
    fn human(&self, p: Paint) -> String {
        let file = sanitize(&self.hosts_file);
        if let Some(diff) = &self.diff {
            if diff.is_empty() {
                return format!("{file}: nothing to change (dry run)\n");
            }
            return show_diff(diff);
        }
        let mut s = String::new();
        if !self.changed {
            let lines = join_lines(&self.before);
            let _ = match (self.command, self.ip) {
                ("add", Some(ip)) => writeln!(
                    s,
                    "{} {} already maps to {ip} in {file} ({lines}); nothing changed",
                    p.mark(true),
                    self.name
                ),
                _ if self.left.is_empty() => writeln!(
                    s,
                    "{} {} is not in {file}; nothing to remove",
                    p.mark(true),
                    self.name
                ),
                _ => writeln!(
                    s,
                    "{} wott-mqtt manages no line for {} in {file}; nothing removed",
                    p.mark(false),
                    self.name
                ),
            };
            return s;
        }
        let how = match self.write_method {
            Some(WriteMethod::InPlace) => " (in place: it could not be replaced by rename)",
            _ => "",
        };
        let _ = writeln!(s, "{} {file}{how}", p.bold("Updated"));
        for action in &self.actions {
            let _ = writeln!(s, "  {} {}", p.mark(true), self.describe(action));
        }
        s
    }
}

/// A diff for the terminal: tabs stay tabs and CRLF endings print as line
/// ends; every other control character is escaped.
pub(super) fn show_diff(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len());
    for line in diff.split_inclusive('\n') {
        let (text, eol) = match line.strip_suffix("\r\n") {
            Some(text) => (text, "\n"),
            None => match line.strip_suffix('\n') {
                Some(text) => (text, "\n"),
                None => (line, ""),
            },
        };
        for part in text.split_inclusive('\t') {
            match part.strip_suffix('\t') {
                Some(part) => {
                    out.push_str(&sanitize(part));
                    out.push('\t');
                }
                None => out.push_str(&sanitize(part)),
            }
        }
        out.push_str(eol);
    }
    out
}

fn join_lines(entries: &[Entry]) -> String {
    let numbers: Vec<String> = entries.iter().map(|e| e.line.to_string()).collect();
    match numbers.len() {
        1 => format!("line {}", numbers[0]),
        _ => format!("lines {}", numbers.join(", ")),
    }
}

fn list(config: &Config, args: &HostsListArgs) -> Result<Outcome, Error> {
    let path = args.file.path();
    let entries = hosts::list(&path)?;
    if entries.is_none() {
        config.output.warn(&format!(
            "{} does not exist",
            sanitize(&path.display().to_string())
        ));
    }
    Ok(Outcome::report(ListReport {
        hosts_file: path.display().to_string(),
        exists: entries.is_some(),
        entries: entries.unwrap_or_default(),
    }))
}

#[derive(Debug, Serialize)]
struct ListReport {
    hosts_file: String,
    exists: bool,
    entries: Vec<Entry>,
}

impl Human for ListReport {
    fn human(&self, p: Paint) -> String {
        let file = sanitize(&self.hosts_file);
        if self.entries.is_empty() {
            return format!(
                "no lines managed by wott-mqtt or mapping *{WOTT_DOMAIN} names in {file}\n"
            );
        }
        let width = self
            .entries
            .iter()
            .map(|e| e.ip.to_string().len())
            .max()
            .unwrap_or(2)
            .max(2);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}",
            p.bold(&format!("{:>5}  {:<width$}  NAMES", "LINE", "IP"))
        );
        for e in &self.entries {
            let tag = if e.managed {
                format!("  {}", p.dim("# wott-mqtt"))
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "{:>5}  {:<width$}  {}{tag}",
                e.line,
                e.ip.to_string(),
                sanitize(&e.names.join(" "))
            );
        }
        s
    }
}

fn check(config: &Config, args: &HostsCheckArgs) -> Result<Outcome, Error> {
    // Any name: this compares what the resolver and the file say, and
    // writes nothing (`hosts check localhost` is a fair question).
    let name = device_id(IdPolicy::Any, &args.server_id)?;
    let path = args.file.path();
    let system_file = hosts::is_system_hosts_file(&path);
    let shown = sanitize(&path.display().to_string()).into_owned();
    let entries = hosts::entries_for(&path, name.as_str())?;
    let mut file_addresses: Vec<IpAddr> = Vec::new();
    for e in &entries {
        if !file_addresses.contains(&e.ip) {
            file_addresses.push(e.ip);
        }
    }
    let resolved = hosts::system_lookup(name.as_str());
    let mut report = CheckReport {
        name: name.to_string(),
        hosts_file: path.display().to_string(),
        system_hosts_file: system_file,
        file: entries,
        file_addresses,
        resolver: ResolverAnswer {
            addresses: Vec::new(),
            error: None,
        },
        agrees: false,
        warnings: Vec::new(),
    };
    let resolved = match resolved {
        Ok(ips) => ips,
        Err(e) => {
            report.resolver.error = Some(e.to_string());
            let error = HostsError::Unresolved {
                name: name.to_string(),
                reason: e.to_string(),
                in_file: !report.file.is_empty(),
                hosts_file: path.clone(),
            };
            return Ok(Outcome::report(report).with_error(error));
        }
    };
    report.agrees = same_set(&resolved, &report.file_addresses);
    report.resolver.addresses = resolved;
    if !report.agrees {
        let resolver = hosts::join_ips(&report.resolver.addresses);
        let why = if !system_file {
            format!(
                "the system resolver reads {}, not {shown}",
                hosts::DEFAULT_HOSTS_FILE
            )
        } else {
            "a source listed before `files` in /etc/nsswitch.conf, or a cache (nscd, \
             systemd-resolved), answers first"
                .to_string()
        };
        let warning = if report.file_addresses.is_empty() {
            format!("{name} is not in {shown}, yet the system resolver returns {resolver}: {why}")
        } else {
            format!(
                "{shown} maps {name} to {} but the system resolver returns {resolver}: {why}",
                hosts::join_ips(&report.file_addresses)
            )
        };
        config.output.warn(&warning);
        report.warnings.push(warning);
    }
    Ok(Outcome::report(report))
}

fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    a.iter().all(|ip| b.contains(ip)) && b.iter().all(|ip| a.contains(ip))
}

/// `hosts check`: the file's answer against the resolver's.
#[derive(Debug, Serialize)]
struct CheckReport {
    name: String,
    hosts_file: String,
    /// Whether `hosts_file` is the file the system resolver reads.
    system_hosts_file: bool,
    /// The lines of the hosts file that map the name.
    file: Vec<Entry>,
    file_addresses: Vec<IpAddr>,
    resolver: ResolverAnswer,
    agrees: bool,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ResolverAnswer {
    addresses: Vec<IpAddr>,
    error: Option<String>,
}

impl Human for CheckReport {
    fn human(&self, p: Paint) -> String {
        let file = sanitize(&self.hosts_file);
        let mut s = String::new();
        let _ = writeln!(s, "{}", p.bold(&self.name));
        if self.file.is_empty() {
            let _ = writeln!(s, "  {:<12} (no entry in {file})", "hosts file");
        }
        for e in &self.file {
            let managed = if e.managed { ", wott-mqtt" } else { "" };
            let _ = writeln!(
                s,
                "  {:<12} {}  ({file} line {}{managed})",
                "hosts file", e.ip, e.line
            );
        }
        let resolver = match &self.resolver.error {
            Some(error) => format!("does not resolve ({})", sanitize(error)),
            None => hosts::join_ips(&self.resolver.addresses),
        };
        let _ = writeln!(s, "  {:<12} {resolver}", "resolver");
        if self.resolver.error.is_none() {
            let verdict = if self.agrees {
                format!("the system resolver agrees with {file}")
            } else {
                format!("the system resolver and {file} disagree")
            };
            let _ = writeln!(s, "{} {verdict}", p.mark(self.agrees));
        }
        s
    }
}
