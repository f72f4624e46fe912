//! How `server up|down|status|logs|reload` print their reports.

use std::fmt::Write as _;

use serde::Serialize;

use crate::broker::{
    self, Action, DownReport, FileChange, ImageReport, ReloadReport, StatusReport, UpReport,
};
use crate::output::{Human, Paint, human_duration, sanitize, sanitize_field};

/// `server logs --json`; printed as it arrives otherwise.
#[derive(Debug, Serialize)]
pub(super) struct LogLines {
    pub(super) lines: Vec<String>,
}

impl Human for LogLines {
    fn human(&self, _: Paint) -> String {
        self.lines
            .iter()
            .map(|l| format!("{}\n", sanitize(l)))
            .collect()
    }
}

pub(super) fn row(s: &mut String, label: &str, value: &str) {
    let _ = writeln!(s, "  {label:<12}{}", sanitize_field(value));
}

pub(super) fn file_lines(s: &mut String, files: &[FileChange], dry_run: bool) {
    for file in files.iter().filter(|f| f.is_changed()) {
        let verb = match (file.change, dry_run) {
            ("created", false) => "created",
            ("created", true) => "create",
            (_, false) => "updated",
            (_, true) => "update",
        };
        let _ = writeln!(s, "  {verb} {}", file.path.display());
        if let Some(diff) = &file.diff {
            for line in diff.lines() {
                let _ = writeln!(s, "    {}", sanitize(line));
            }
        }
    }
}

pub(super) fn action_line(action: &Action, plan: bool) -> String {
    let verb = |present: &'static str, past: &'static str| if plan { present } else { past };
    match action {
        Action::Pull { image } => format!("{} the image {image}", verb("pull", "pulled")),
        Action::Build { image } => format!(
            "{} the image {image} from this machine's Mosquitto",
            verb("build", "built")
        ),
        Action::Remove { id, reason } => {
            format!(
                "{} the container {id} ({reason})",
                verb("remove", "removed")
            )
        }
        Action::Create { name } => format!(
            "{} the container {name}",
            verb("create and start", "created and started")
        ),
        Action::Start { name } => format!("{} the container {name}", verb("start", "started")),
        Action::Restart { name, reason } => format!(
            "{} the container {name} ({reason})",
            verb("restart", "restarted")
        ),
        Action::Reload { name, reason } => format!(
            "{} the broker in {name} with SIGHUP ({reason})",
            verb("reload", "reloaded")
        ),
    }
}

/// `server image`'s report, printed.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub(super) struct ImageView(pub(super) ImageReport);

impl Human for ImageView {
    fn human(&self, p: Paint) -> String {
        let r = &self.0;
        let mut s = String::new();
        let headline = match (r.dry_run, r.changed) {
            (true, true) => format!("Dry run: {} would be built; nothing was changed.", r.tag),
            (_, false) => format!("{} {} is current; nothing changed.", p.mark(true), r.tag),
            (false, true) => format!("{} Built {}.", p.mark(true), r.tag),
        };
        let _ = writeln!(s, "{}", p.bold(&headline));
        if let Some(id) = &r.id {
            row(&mut s, "Image ID", id);
        }
        let m = &r.mosquitto;
        let package = m.package.as_deref().map_or_else(
            || "not from a Debian package".to_string(),
            |p| format!("Debian package {p}"),
        );
        row(
            &mut s,
            "Mosquitto",
            &format!("{} {} ({package})", m.path.display(), m.version),
        );
        row(&mut s, "Binary", &format!("sha256:{}", m.sha256));
        let bytes: u64 = r.files.iter().map(|f| f.bytes).sum();
        row(
            &mut s,
            "Contents",
            &format!(
                "{} files copied from this machine, {:.1} MB, {}; the eclipse-mosquitto:2 layout",
                r.files.iter().filter(|f| f.from.is_some()).count(),
                bytes as f64 / 1e6,
                r.architecture
            ),
        );
        if let Some(old) = &r.replaced {
            row(&mut s, "Replaced", old);
        }
        row(&mut s, "Engine", &r.engine);
        let _ = writeln!(
            s,
            "server up, setup server and demo run it by themselves when eclipse-mosquitto:2 \
             cannot be pulled{}.",
            if r.tag.starts_with(broker::LOCAL_REPOSITORY) && r.tag.ends_with("-local") {
                String::new()
            } else {
                format!("; this tag is not the default, so pass --image {}", r.tag)
            }
        );
        s
    }
}

/// What `server up` changed, or would change in a dry run.
fn changes(s: &mut String, r: &UpReport) {
    let staged = &r.certificates;
    let _ = writeln!(s, "\n{}", if r.dry_run { "Plan:" } else { "Changed:" });
    file_lines(s, &r.files, r.dry_run);
    if staged.is_changed() {
        let _ = writeln!(
            s,
            "  {} the certificates in {} (owner uid {}, key mode 0600)",
            if r.dry_run { "stage" } else { "staged" },
            staged.dir.display(),
            staged.owner_uid
        );
    }
    for action in &r.actions {
        let _ = writeln!(s, "  {}", action_line(action, r.dry_run));
    }
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
pub(super) struct UpView(pub(super) UpReport);

impl Human for UpView {
    fn human(&self, p: Paint) -> String {
        let r = &self.0;
        let mut s = String::new();
        let headline = if r.dry_run {
            format!(
                "Dry run for the broker {}: nothing was changed.",
                r.container
            )
        } else if r.changed {
            format!("{} The broker {} is up.", p.mark(true), r.container)
        } else {
            format!(
                "{} The broker {} is up; nothing changed.",
                p.mark(true),
                r.container
            )
        };
        let _ = writeln!(s, "{}", p.bold(&headline));
        row(&mut s, "Server ID", &r.server_id);
        row(
            &mut s,
            "Listening",
            &format!(
                "{} → {}/tcp in the container",
                std::net::SocketAddr::new(r.bind, r.port),
                broker::CONTAINER_PORT
            ),
        );
        row(&mut s, "Image", &r.image.describe());
        row(&mut s, "Server dir", &r.server_dir.display().to_string());
        if !r.kept.is_empty() {
            row(
                &mut s,
                "Kept",
                &format!(
                    "{} as recorded in {} (a flag changes one)",
                    r.kept.join(", "),
                    broker::record::RECORD_FILE
                ),
            );
        }
        if let Some(ready) = &r.ready {
            row(
                &mut s,
                "Ready",
                &format!(
                    "mTLS CONNECT to {} got CONNACK after {:.2} s; serving {}, valid until {}",
                    ready.address,
                    ready.after_ms as f64 / 1000.0,
                    ready
                        .served
                        .common_name
                        .as_deref()
                        .unwrap_or("a certificate without CN"),
                    ready.served.not_after
                ),
            );
        }
        if r.changed {
            changes(&mut s, r);
        }
        if !r.dry_run {
            let _ = writeln!(
                s,
                "\nOn each client device, map this server's ID to this host:\n  sudo {}",
                r.next_step.command
            );
            if r.bind.is_loopback() {
                let _ = writeln!(
                    s,
                    "  ({} listens on loopback only: only clients on this machine can reach it.)",
                    r.bind
                );
            }
        }
        s
    }
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
pub(super) struct DownView(pub(super) DownReport);

impl Human for DownView {
    fn human(&self, p: Paint) -> String {
        let r = &self.0;
        let mut s = String::new();
        let (removed, purged) = if r.dry_run {
            ("would be stopped and removed", "would be removed")
        } else {
            ("stopped and removed", "removed")
        };
        match &r.removed {
            Some(id) => {
                let _ = writeln!(
                    s,
                    "{} The container {} ({id}) {removed}.",
                    p.mark(true),
                    r.container
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "{} There is no container {}; nothing to remove.",
                    p.mark(true),
                    r.container
                );
            }
        }
        if r.purged {
            let _ = writeln!(s, "  The server dir {} {purged}.", r.server_dir.display());
        } else if r.server_dir.exists() {
            let _ = writeln!(
                s,
                "  The server dir {} stays (permissions.acl keeps the grants); --purge removes it.",
                r.server_dir.display()
            );
        }
        s
    }
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
pub(super) struct ReloadView(pub(super) ReloadReport);

impl Human for ReloadView {
    fn human(&self, p: Paint) -> String {
        let r = &self.0;
        let mut s = String::new();
        let staged = if r.changed {
            "the certificates changed and were staged again"
        } else {
            "the staged certificates were already current"
        };
        if r.dry_run {
            let _ = writeln!(
                s,
                "Dry run: {}; the broker in {} would be {}.",
                if r.changed {
                    "the certificates changed and would be staged again"
                } else {
                    "the staged certificates are current"
                },
                r.container,
                if r.certificates.ca_changed {
                    "restarted (ca.crt changed, and Mosquitto reads its CA only at start)"
                } else {
                    "sent SIGHUP"
                }
            );
            for path in &r.certificates.changed {
                let _ = writeln!(s, "  would update {path}");
            }
            return s;
        }
        let _ = writeln!(
            s,
            "{} {} the broker in {}: {staged}.",
            p.mark(true),
            if r.restarted {
                "Restarted (for the new ca.crt)"
            } else {
                "Reloaded"
            },
            r.container
        );
        if let Some(served) = &r.served {
            row(
                &mut s,
                "Serving",
                &format!(
                    "{}, valid until {}",
                    served
                        .common_name
                        .as_deref()
                        .unwrap_or("a certificate without CN"),
                    served.not_after
                ),
            );
        }
        s
    }
}

/// The container's rows of `server status`.
fn container_rows(s: &mut String, r: &StatusReport, c: &broker::docker::Container) {
    row(s, "Image", &c.image);
    for port in &c.ports {
        row(
            s,
            "Port",
            &format!(
                "{}:{} → {}",
                port.host_ip, port.host_port, port.container_port
            ),
        );
    }
    if let Some(uptime) = r.uptime_seconds {
        row(s, "Uptime", &human_duration(uptime));
    }
    row(s, "Restarts", &c.restart_count.to_string());
    row(
        s,
        "Managed",
        if r.managed {
            "yes (created by wott-mqtt)"
        } else {
            "no"
        },
    );
    if let Some(current) = r.config_current {
        row(s, "Config", if current { "current" } else { "outdated" });
    }
}

/// Why the broker's last run failed, and the notes of `server status`.
fn problems(s: &mut String, p: Paint, r: &StatusReport) {
    if let Some(lines) = &r.acl_open {
        let _ = writeln!(
            s,
            "{} the broker enforces NO ACL: its last reload failed to load permissions.acl, so every device may read and write every topic",
            p.bad("✗")
        );
        for line in lines {
            let _ = writeln!(s, "  | {}", sanitize(line));
        }
    }
    if let Some(crash) = &r.crash {
        let _ = writeln!(
            s,
            "{} the broker's last run failed: {}",
            p.bad("✗"),
            crash.explanation
        );
        for line in &crash.lines {
            let _ = writeln!(s, "  | {}", sanitize(line));
        }
        let _ = writeln!(s, "{} {}", p.bold("fix:"), sanitize(&crash.hint));
    }
    for note in &r.notes {
        let _ = writeln!(s, "{} {}", p.warn("note:"), sanitize(note));
    }
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
pub(super) struct StatusView(pub(super) StatusReport);

impl Human for StatusView {
    fn human(&self, p: Paint) -> String {
        let r = &self.0;
        let mut s = String::new();
        let state = r
            .details
            .as_ref()
            .map_or("absent".to_string(), |c| c.state.to_string());
        let _ = writeln!(
            s,
            "{} {} {}",
            p.mark(r.running && r.served.is_some()),
            p.bold(&format!("Broker {}", r.container)),
            state
        );
        if let Some(c) = &r.details {
            container_rows(&mut s, r, c);
        }
        match (&r.served, &r.probe_error) {
            (Some(served), _) => row(
                &mut s,
                "Serving",
                &format!(
                    "{}, valid until {} (read over TLS)",
                    served
                        .common_name
                        .as_deref()
                        .unwrap_or("a certificate without CN"),
                    served.not_after
                ),
            ),
            (None, Some(error)) => row(&mut s, "Serving", &format!("unknown: {error}")),
            (None, None) => {}
        }
        if let Some(agent) = &r.agent_certificate {
            row(
                &mut s,
                "On disk",
                &format!(
                    "{}, valid until {} ({})",
                    agent
                        .common_name
                        .as_deref()
                        .unwrap_or("a certificate without CN"),
                    agent.not_after,
                    agent.path.display()
                ),
            );
        }
        problems(&mut s, p, r);
        s
    }
}
