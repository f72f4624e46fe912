//! The client checks: the hosts entry for the server's ID, then `check`'s
//! staged probe up to SUBACK.

use std::net::{IpAddr, UdpSocket};
use std::path::Path;

use rumqttc::QoS;

use super::{DoctorOptions, Finding};
use crate::broker::Context;
use crate::check::{self, Host, Plan, Stage, Subscription, Target, Until};
use crate::diagnose::Diagnose;
use crate::hosts::{self, DEFAULT_HOSTS_FILE};
use crate::names::{self, TopicFilter, WOTT_DOMAIN};
use crate::output::{shell_word, sudo};

/// The servers to check as a client: `--server`, else every
/// `*.d.wott.local` name the hosts file maps.
pub(super) fn servers(options: &DoctorOptions) -> Vec<String> {
    if let Some(server) = &options.server {
        return vec![server.clone()];
    }
    let mut out: Vec<String> = Vec::new();
    for entry in hosts::list(&options.hosts_file)
        .ok()
        .flatten()
        .unwrap_or_default()
    {
        for name in entry.names {
            let wott =
                name.len() > WOTT_DOMAIN.len() && name.to_ascii_lowercase().ends_with(WOTT_DOMAIN);
            if wott && !out.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                out.push(name);
            }
        }
    }
    out
}

/// `hosts add`, as it runs from here.
fn hosts_add(options: &DoctorOptions, server: &str, ip: &str) -> String {
    let file = if options.hosts_file == Path::new(DEFAULT_HOSTS_FILE) {
        String::new()
    } else {
        format!(
            " --hosts-file {}",
            shell_word(&options.hosts_file.display().to_string())
        )
    };
    let any = if names::is_wott_shaped(server) {
        ""
    } else {
        " --any-id"
    };
    format!(
        "{}wott-mqtt hosts add{file}{any} {} {ip}",
        sudo(),
        shell_word(server)
    )
}

/// Whether `ip` is an address of this machine.
fn is_local(ip: IpAddr) -> bool {
    UdpSocket::bind((ip, 0)).is_ok()
}

/// `own_id`: this device's ID, when it is itself a server (its own
/// addresses are then known).
pub(super) async fn check(
    ctx: &Context<'_>,
    options: &DoctorOptions,
    server: &str,
    own_server_id: Option<&str>,
) -> (Vec<Finding>, Option<serde_json::Value>) {
    let mut out = Vec::new();
    let shown = options.hosts_file.display().to_string();
    let entries = match hosts::entries_for(&options.hosts_file, server) {
        Ok(entries) => entries,
        Err(e) => {
            out.push(
                Finding::failure(
                    "client.hosts-missing",
                    e.to_string(),
                    "the resolver reads the hosts file too: what it maps cannot be told",
                )
                .subject(server)
                .maybe_fix(e.hint()),
            );
            Vec::new()
        }
    };
    let unreadable = !out.is_empty();
    let mut ips: Vec<IpAddr> = Vec::new();
    for entry in &entries {
        if !ips.contains(&entry.ip) {
            ips.push(entry.ip);
        }
    }
    if entries.is_empty() && !unreadable {
        match hosts::system_lookup(server) {
            Ok(found) if !found.is_empty() => out.push(
                Finding::ok(
                    "client.hosts-missing",
                    format!("{shown} has no line for it, but the resolver answers {}", hosts::join_ips(&found)),
                )
                .subject(server),
            ),
            _ => out.push(
                Finding::failure(
                    "client.hosts-missing",
                    format!("{shown} has no line for {server}, and it does not resolve"),
                    "clients reach the broker by its device ID, which its certificate carries: without a hosts entry (or DNS) they cannot find it",
                )
                .subject(server)
                .fix(hosts_add(options, server, "<server IP>")),
            ),
        }
    } else if !entries.is_empty() {
        let lines: Vec<String> = entries.iter().map(|e| e.line.to_string()).collect();
        out.push(
            Finding::ok(
                "client.hosts-missing",
                format!("{shown} maps it (line {})", lines.join(", ")),
            )
            .subject(server),
        );
        out.push(if ips.len() > 1 {
            Finding::failure(
                "client.hosts-duplicate",
                format!("lines {} of {shown} map it to {}", lines.join(", "), hosts::join_ips(&ips)),
                "the resolver uses the first line and ignores the others: whichever was meant, one of them is wrong",
            )
            .subject(server)
            .fix(hosts_add(options, server, &ips[0].to_string()))
        } else if entries.len() > 1 {
            Finding::warning(
                "client.hosts-duplicate",
                format!("lines {} of {shown} all map it to {}", lines.join(", "), ips[0]),
                "a later change of address edits one line and leaves the others stale",
            )
            .subject(server)
            .fix(hosts_add(options, server, &ips[0].to_string()))
        } else {
            Finding::ok(
                "client.hosts-duplicate",
                format!("line {} of {shown} maps it to {}", entries[0].line, ips[0]),
            )
            .subject(server)
        });
        if own_server_id.is_some_and(|id| id.eq_ignore_ascii_case(server)) {
            let foreign: Vec<IpAddr> = ips.iter().copied().filter(|ip| !is_local(*ip)).collect();
            out.push(if foreign.is_empty() {
                Finding::ok("client.hosts-stale", "it maps this server to an address of this machine")
                    .subject(server)
            } else {
                Finding::failure(
                    "client.hosts-stale",
                    format!("{shown} maps this server's own ID to {}, which is not an address of this machine", hosts::join_ips(&foreign)),
                    "the entry is stale: connections to this server's ID go elsewhere",
                )
                .subject(server)
                .fix(hosts_add(options, server, "<this server's IP>"))
            });
        }
    }

    let Ok(filter) = TopicFilter::new(&options.topic) else {
        return (out, None);
    };
    let Ok(host) = Host::parse(server) else {
        out.push(Finding::failure(
            "client.probe",
            format!("{server} is not a name or address to connect to"),
            "the probe cannot run",
        ));
        return (out, None);
    };
    let custom_file = !hosts::is_system_hosts_file(&options.hosts_file);
    let target = Target {
        server: host,
        port: options.port,
        // A hosts file other than the resolver's: dial where it says.
        connect_to: if custom_file {
            ips.first().copied()
        } else {
            None
        },
        hosts_file: Some(options.hosts_file.clone()),
    };
    let plan = Plan::new(
        Until::Subscribe(Subscription {
            filter,
            qos: QoS::AtMostOnce,
        }),
        options.timeout,
    );
    let report = check::check(ctx.cert_dir, &target, &plan).await;
    let json = serde_json::to_value(&report).ok();
    let probe = match report.failure() {
        None => Finding::ok(
            "client.probe",
            format!(
                "{} on port {}: every stage passed up to SUBACK on {} (under an acl_file a SUBACK proves no access; `check --roundtrip` does)",
                server, options.port, options.topic
            ),
        )
        .subject(server),
        Some(error) => {
            if error.stage() == Stage::Tcp && !ips.is_empty() {
                out.push(
                    Finding::warning(
                        "client.hosts-stale",
                        format!("{} (from {shown}) does not accept connections on port {}", hosts::join_ips(&ips), options.port),
                        "the hosts entry may be stale (the server moved), or the broker is down or listens elsewhere",
                    )
                    .subject(server)
                    .fix(hosts_add(options, server, "<server IP>")),
                );
            }
            Finding::failure(
                "client.probe",
                format!("the {} stage failed: {error}", error.stage()),
                "this is what this device's MQTT client meets",
            )
            .subject(server)
            .maybe_fix(error.hint())
        }
    };
    out.push(probe);
    (out, json)
}
