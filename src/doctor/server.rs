//! The server checks: the server dir's files, and the managed broker as
//! `server status` sees it (the engine, its log, its TLS port).

use std::net::{IpAddr, UdpSocket};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::{DoctorOptions, Finding, conf};
use crate::broker::config::{CERTS_SUBDIR, ServerDir};
use crate::broker::diagnose::CrashCause;
use crate::broker::drift::Stale;
use crate::broker::record::{self, RECORD_FILE};
use crate::broker::watch::unit::{self, Keeper};
use crate::broker::{self, BrokerError, Context, RunAs, StatusReport};
use crate::diagnose::Diagnose;
use crate::identity::{self, CA_CRT, CLIENT_CRT, CLIENT_KEY, Timestamp, Validity};
use crate::output::{human_duration, shell_word};

/// A CA that expires within this many seconds is a warning.
const CA_WARNING_SECS: i64 = 30 * 86_400;

/// What the server checks read that a bundle carries too.
#[derive(Debug, Default)]
pub(super) struct ServerMaterial {
    pub status: Option<serde_json::Value>,
    pub container_id: Option<String>,
}

/// Whether this device runs the managed broker: its server dir holds a
/// rendered `mosquitto.conf` or a `broker.json`.
pub(super) fn applies(ctx: &Context<'_>) -> bool {
    let dir = ServerDir::new(ctx.server_dir);
    dir.conf_path().exists() || dir.path().join(RECORD_FILE).exists()
}

/// A `server …` command for the broker doctor looks at, as it runs from here.
fn server_command(ctx: &Context<'_>, options: &DoctorOptions, rest: &str) -> String {
    match &options.name {
        Some(name) => ctx.command(&format!("{rest} --name {}", shell_word(name))),
        None => ctx.command(rest),
    }
}

pub(super) async fn check(
    ctx: &Context<'_>,
    options: &DoctorOptions,
) -> (Vec<Finding>, ServerMaterial) {
    let dir = ServerDir::new(ctx.server_dir);
    let cmd = |rest: &str| server_command(ctx, options, rest);
    let mut out = Vec::new();
    out.push(match broker::check_trust(dir.path()) {
        Ok(()) => Finding::ok(
            "server.dir-trust",
            format!("{} and the folders above it are trusted", dir.path().display()),
        ),
        Err(e) => Finding::failure(
            "server.dir-trust",
            e.to_string(),
            "root writes into the server dir and gives parts of it to the broker's user: whoever else may write there can make root write or chown elsewhere; `server up` and `server reload` refuse it",
        )
        .maybe_fix(e.hint()),
    });
    out.extend(conf::check(&dir, &cmd("server up")));
    let run_as = record::read(dir.path())
        .ok()
        .flatten()
        .map_or_else(RunAs::for_invoker, |s| s.run_as());
    out.extend(staged(ctx, &dir, run_as, &cmd("server reload")));
    out.extend(ca_expiry(ctx));

    let mut material = ServerMaterial::default();
    let report = match broker::status(ctx, options.name.as_deref(), options.timeout).await {
        Ok(report) => report,
        Err(e) => {
            let code = if matches!(e, BrokerError::EngineUnreachable { .. }) {
                "server.engine"
            } else {
                "server.running"
            };
            out.push(
                Finding::failure(
                    code,
                    e.to_string(),
                    "the broker runs in a container: without the engine nothing about it can be told or changed",
                )
                .maybe_fix(e.hint()),
            );
            return (out, material);
        }
    };
    material.status = serde_json::to_value(&report).ok();
    material.container_id = report.details.as_ref().map(|c| c.id.clone());
    out.push(Finding::ok(
        "server.engine",
        format!("the container engine at {} answers", report.engine),
    ));
    out.extend(container(ctx, options, &report));
    (out, material)
}

/// The staged copies in `<server-dir>/certs`: the agent's files, owned by
/// the broker's user, the key 0600, the folder root's.
fn staged(ctx: &Context<'_>, dir: &ServerDir, run_as: RunAs, reload: &str) -> Vec<Finding> {
    let certs = dir.certs_dir();
    let owner = run_as.owner();
    let (dir_mode, dir_owner) = run_as.certs_dir();
    let mut problems = Vec::new();
    // A renewal not staged yet is what `server.cert-drift` warns about
    // (the normal state for a second without a watcher), not a fault of
    // the copies.
    let mut stale = Vec::new();
    match std::fs::symlink_metadata(&certs) {
        Err(e) => problems.push(format!("cannot read {}: {e}", certs.display())),
        Ok(meta) if !meta.is_dir() => problems.push(format!("{} is not a folder", certs.display())),
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o7777;
            if mode != dir_mode || (meta.uid(), meta.gid()) != dir_owner {
                problems.push(format!(
                    "{CERTS_SUBDIR}/ has owner {}:{} and mode {mode:04o}, not {}:{} and {dir_mode:04o}",
                    meta.uid(),
                    meta.gid(),
                    dir_owner.0,
                    dir_owner.1
                ));
            }
        }
    }
    for (name, want_mode, agent) in [
        (CLIENT_CRT, 0o644, ctx.cert_dir.cert_path()),
        (CLIENT_KEY, 0o600, ctx.cert_dir.key_path()),
        (CA_CRT, 0o644, ctx.cert_dir.ca_path()),
    ] {
        let path = certs.join(name);
        match std::fs::symlink_metadata(&path) {
            Err(e) => problems.push(format!("{}: {e}", path.display())),
            Ok(meta) if !meta.file_type().is_file() => {
                problems.push(format!("{} is not a regular file", path.display()));
            }
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o7777;
                if mode != want_mode || (meta.uid(), meta.gid()) != owner {
                    problems.push(format!(
                        "{name} has owner {}:{} and mode {mode:04o}, not {}:{} and {want_mode:04o}",
                        meta.uid(),
                        meta.gid(),
                        owner.0,
                        owner.1
                    ));
                }
                // Compared, never shown: the key's bytes stay here.
                if let (Ok(a), Ok(b)) = (std::fs::read(&path), std::fs::read(&agent))
                    && a != b
                {
                    stale.push(format!(
                        "{name} is not the agent's current {} (a renewal not staged yet)",
                        agent.display()
                    ));
                }
            }
        }
    }
    if problems.is_empty() && stale.is_empty() {
        return vec![Finding::ok(
            "server.staged",
            format!(
                "{} holds the agent's files, owner {}:{}, key 0600",
                certs.display(),
                owner.0,
                owner.1
            ),
        )];
    }
    let faults = problems.into_iter().map(|p| {
        Finding::failure(
            "server.staged",
            p,
            "Mosquitto drops root before it loads its certificate and key: the copies must be the broker user's, the key unreadable to others, and the folder not the broker's to change",
        )
        .fix(reload)
    });
    let renewals = stale.into_iter().map(|p| {
        Finding::warning(
            "server.staged",
            p,
            "the broker loads the staged copies, so it keeps serving the old certificate until they are staged again",
        )
        .fix(reload)
    });
    faults.chain(renewals).collect()
}

/// The agent's `ca.crt`: the broker trusts it for every client, and it
/// needs a restart to load a new one.
fn ca_expiry(ctx: &Context<'_>) -> Vec<Finding> {
    let Ok(ca) = identity::load_ca(&ctx.cert_dir.ca_path()) else {
        return Vec::new(); // identity.files said why
    };
    let now = Timestamp::now();
    ca.infos
        .iter()
        .map(|info| match info.validity_at(now) {
            Validity::Expired { seconds_ago } => Finding::failure(
                "server.ca-expiry",
                format!("the CA {} expired {} ago ({})", info.subject, human_duration(seconds_ago), info.not_after),
                "the broker verifies every client against this CA: with it expired, no device can connect",
            )
            .fix(format!("get the new WoTT CA with the agent (sudo wott-agent), then `{}` (it restarts the broker for a new ca.crt: Mosquitto loads cafile only at start)", ctx.command("server reload"))),
            Validity::Valid { seconds_left } if seconds_left < CA_WARNING_SECS => Finding::warning(
                "server.ca-expiry",
                format!("the CA {} expires in {} ({})", info.subject, human_duration(seconds_left), info.not_after),
                "when it expires no device can connect; Mosquitto loads a new cafile only when it restarts, not on reload",
            ),
            Validity::NotYetValid { .. } => Finding::failure(
                "server.ca-expiry",
                format!("the CA {} is not valid yet ({})", info.subject, info.not_before),
                "no certificate it signed verifies until then; usually the clock is wrong",
            )
            .fix("check the clock: timedatectl status"),
            Validity::Valid { seconds_left } => Finding::ok(
                "server.ca-expiry",
                format!("the CA {} is valid until {} ({} left)", info.subject, info.not_after, human_duration(seconds_left)),
            ),
        })
        .collect()
}

/// What the engine, the broker's log and its TLS port say.
fn container(ctx: &Context<'_>, options: &DoctorOptions, report: &StatusReport) -> Vec<Finding> {
    let cmd = |rest: &str| server_command(ctx, options, rest);
    let name = &report.container;
    let Some(details) = report.details.as_ref() else {
        return vec![
            Finding::failure(
                "server.running",
                format!("there is no container named {name}"),
                "the server dir is set up, but no broker serves it: clients cannot connect",
            )
            .fix(cmd("server up")),
        ];
    };
    let mut out = Vec::new();
    out.push(if !report.running {
        match &report.crash {
            Some(crash) => Finding::failure(
                "server.running",
                format!(
                    "{name} is {}: {} (its log: {})",
                    details.state,
                    crash.explanation,
                    crash.lines.join(" / ")
                ),
                format!("no broker serves the clients; {}", crash.hint),
            )
            .fix(match crash.cause {
                CrashCause::AclFile => cmd("acl validate"),
                _ => cmd("server up"),
            }),
            None => Finding::failure(
                "server.running",
                format!("{name} is {}", details.state),
                "no broker serves the clients",
            )
            .fix(cmd("server up")),
        }
    } else if let Some(served) = &report.served {
        Finding::ok(
            "server.running",
            format!(
                "{name} runs and answers an mTLS CONNECT; it serves {}, valid until {}",
                served
                    .common_name
                    .as_deref()
                    .unwrap_or("a certificate without CN"),
                served.not_after
            ),
        )
    } else {
        let reason = report.probe_error.as_deref().unwrap_or("no answer");
        if reason.starts_with("cannot load this device's identity") {
            // Our side, not the broker's: identity.* says what is wrong.
            Finding::warning(
                "server.running",
                format!("{name} runs; whether it answers cannot be told: {reason}"),
                "the probe connects as this device, which needs its whole identity (root reads client.key)",
            )
        } else {
            Finding::failure(
                "server.running",
                format!("{name} runs but does not answer an mTLS CONNECT: {reason}"),
                "clients get the same answer",
            )
            .fix(cmd("server status"))
        }
    });
    if report.running {
        out.push(match &report.acl_open {
            Some(lines) => Finding::failure(
                "server.open-acl",
                format!("{name} enforces no ACL: its log shows {}", lines.join(" / ")),
                format!(
                    "Mosquitto 2.0 that fails to load its ACL on a reload allows every authenticated device to read and write every topic, until a reload with a valid file; until then, `{}` stops the open broker",
                    cmd("server down")
                ),
            )
            .fix(format!(
                "correct permissions.acl (`{}` names every line Mosquitto refuses), then `{}`",
                ctx.command("acl validate"),
                cmd("server reload")
            )),
            None => Finding::ok("server.open-acl", "its last ACL load did not fail"),
        });
        for (what, code, why) in [
            (
                Stale::Certificate,
                "server.cert-drift",
                "the broker keeps serving the certificate it loaded; it expires within days of a renewal, and then no client connects",
            ),
            (
                Stale::Acl,
                "server.acl-drift",
                "the grants in force are not the ones in the file: a grant or revoke is not applied yet",
            ),
        ] {
            out.push(match report.drift.iter().find(|d| d.what == what) {
                Some(drift) => {
                    Finding::warning(code, drift.detail.clone(), why).fix(cmd("server reload"))
                }
                None if code == "server.cert-drift" && report.served.is_none() => continue,
                None if code == "server.cert-drift" => {
                    Finding::ok(code, "the broker serves the agent's current certificate")
                }
                None => Finding::ok(
                    code,
                    "the broker loaded permissions.acl after its last change",
                ),
            });
        }
    }
    match report.config_current {
        Some(true) => out.push(Finding::ok(
            "server.config-current",
            "the container was created from the current image and configuration",
        )),
        Some(false) => out.push(
            Finding::warning(
                "server.config-current",
                "the image or wott-mqtt's configuration changed since the container was created",
                "the broker runs with older settings than `server up` would give it",
            )
            .fix(cmd("server up")),
        ),
        None => {}
    }
    out.extend(bind(ctx, options, details));
    let policy = details.restart_policy.as_str();
    out.push(if matches!(policy, "unless-stopped" | "always") {
        Finding::ok("server.restart-policy", format!("restart policy {policy}"))
    } else {
        Finding::warning(
            "server.restart-policy",
            format!(
                "restart policy {}",
                if policy.is_empty() { "none" } else { policy }
            ),
            "after a crash, an engine restart or a reboot the broker stays down until someone starts it",
        )
        .fix(format!(
            "docker update --restart unless-stopped {}",
            shell_word(name)
        ))
    });
    out.push(if details.hardened {
        Finding::ok(
            "server.hardening",
            "no capabilities, no new privileges, read-only root filesystem",
        )
    } else {
        Finding::warning(
            "server.hardening",
            format!("{name} runs with capabilities, may gain privileges, or has a writable root filesystem"),
            "a compromised broker could do more in the container and on the host than it needs to",
        )
        .fix(if !details.is_managed() {
            cmd("server up --replace")
        } else if report.config_current == Some(false) {
            cmd("server up")
        } else {
            // Created from the current inputs, so `server up` would keep it.
            format!("{} && {}", cmd("server down"), cmd("server up"))
        })
    });
    out.push(watcher(ctx, options, name));
    out
}

/// Published on every address: reachable from every network, and Docker's
/// rules bypass the host's firewall.
fn bind(
    ctx: &Context<'_>,
    options: &DoctorOptions,
    details: &broker::docker::Container,
) -> Vec<Finding> {
    let open: Vec<_> = details
        .ports
        .iter()
        .filter(|p| {
            p.host_ip
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_unspecified())
        })
        .collect();
    if open.is_empty() {
        let shown: Vec<String> = details
            .ports
            .iter()
            .map(|p| format!("{}:{}", p.host_ip, p.host_port))
            .collect();
        return vec![Finding::ok(
            "server.bind",
            format!(
                "published on {}",
                if shown.is_empty() {
                    "no port".to_string()
                } else {
                    shown.join(", ")
                }
            ),
        )];
    }
    let lan =
        primary_address().map_or_else(|| "<this server's LAN IP>".to_string(), |ip| ip.to_string());
    open.into_iter()
        .map(|p| {
            Finding::warning(
                "server.bind",
                format!("published on {}:{} (every address of this machine)", p.host_ip, p.host_port),
                "every network this machine is on can reach the broker, and ports Docker publishes bypass host firewalls such as ufw or iptables INPUT rules: --bind is the real boundary (clients still need a certificate the WoTT CA signed)",
            )
            .fix(server_command(ctx, options, &format!("server up --bind {lan}")))
        })
        .collect()
}

/// The address this machine reaches other networks from (no packet is
/// sent: a UDP socket is only connected).
fn primary_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

/// Whether something applies renewals: `server watch` as a service or a process.
fn watcher(ctx: &Context<'_>, options: &DoctorOptions, name: &str) -> Finding {
    let why = "the agent renews the certificate every few days and the broker serves the old one until a reload: without `server watch`, clients stop connecting when it expires";
    match unit::keeper(name, ctx.server_dir) {
        Keeper::Unit {
            unit,
            enabled: true,
        } => Finding::ok("server.watcher", format!("{unit} is installed and enabled")),
        Keeper::Process { pid } => Finding::ok(
            "server.watcher",
            format!("`wott-mqtt server watch` runs (pid {pid})"),
        ),
        Keeper::Unit {
            unit,
            enabled: false,
        } => Finding::warning(
            "server.watcher",
            format!("{unit} is installed but not enabled"),
            why,
        )
        .fix(format!(
            "{}systemctl enable --now {unit}",
            crate::output::sudo()
        )),
        Keeper::Nothing { unit } => {
            let fix = if unit::systemd_running() {
                server_command(ctx, options, "server watch --install")
            } else {
                format!(
                    "run `{}` under this machine's supervisor (there is no systemd)",
                    server_command(ctx, options, "server watch")
                )
            };
            Finding::warning(
                "server.watcher",
                format!("nothing keeps the broker current: {unit} is not installed and no `server watch` runs"),
                why,
            )
            .fix(fix)
        }
    }
}
