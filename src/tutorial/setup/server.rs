//! The server role: show this device's identity, ask which clients to
//! grant, start the broker (`broker::up`), write the grants
//! (`acl::file::allow`) and reload it, then say what each client runs.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::{DEFAULT_TOPIC, Prompter, cancelled, healthy_identity, no_terminal, say};
use crate::acl::{self, Access};
use crate::broker::watch::unit;
use crate::broker::{self, Context, ImageChoice, ImageRequest, UpOptions, UpReport};
use crate::error::Error;
use crate::names::{DeviceId, IdPolicy, TopicFilter};
use crate::output::{Paint, shell_word};

/// One `--allow ID[:TOPIC[:ACCESS]]`: a client device and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub device: DeviceId,
    pub topic: TopicFilter,
    pub access: Access,
}

impl Grant {
    /// The wizard's default access: the tutorial's client only subscribes.
    pub const DEFAULT_ACCESS: Access = Access::Read;

    /// Parses `ID[:TOPIC[:ACCESS]]`. A topic may itself contain `:`; only a
    /// last part that is an access word is read as the access. The ID is a
    /// typed one: under [`IdPolicy::Wott`] it must be WoTT-shaped.
    pub fn parse(value: &str, policy: IdPolicy) -> Result<Grant, Error> {
        let (id, rest) = value.split_once(':').unwrap_or((value, ""));
        let device = DeviceId::typed(id, policy)?;
        let (topic, access) = match rest.rsplit_once(':') {
            Some((topic, word)) if access_word(word).is_some() => (topic, access_word(word)),
            _ => match access_word(rest) {
                Some(access) if !rest.is_empty() => ("", Some(access)),
                _ => (rest, None),
            },
        };
        let topic = if topic.is_empty() {
            DEFAULT_TOPIC
        } else {
            topic
        };
        Ok(Grant {
            device,
            topic: TopicFilter::new(topic)?,
            access: access.unwrap_or(Self::DEFAULT_ACCESS),
        })
    }
}

fn access_word(word: &str) -> Option<Access> {
    match word {
        "read" => Some(Access::Read),
        "write" => Some(Access::Write),
        "readwrite" => Some(Access::ReadWrite),
        _ => None,
    }
}

/// Answers for the server role.
#[derive(Debug, Clone)]
pub struct ServerAnswers {
    /// From `--allow`; when empty on a terminal, the wizard asks.
    pub grants: Vec<Grant>,
    pub up: UpOptions,
    pub yes: bool,
    /// Install `server watch` as a systemd service (unless `--no-watch`,
    /// or the answer no), so that renewals are applied as they come.
    pub watch: bool,
    /// Which client IDs the prompts accept.
    pub id_policy: IdPolicy,
}

/// What became of keeping the broker current.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum WatchSetup {
    /// The systemd service runs `server watch` (or would, in a dry run).
    Installed {
        unit: String,
        changed: bool,
        dry_run: bool,
    },
    /// `--no-watch`, or the answer no: renewals wait for a `server reload`.
    Declined { command: String },
    /// No systemd here: this command, under the supervisor the machine uses.
    NoSystemd { command: String },
}

/// What one grant did to permissions.acl.
#[derive(Debug, Serialize)]
pub struct GrantReport {
    pub device_id: String,
    pub topic: String,
    pub access: Access,
    pub changed: bool,
}

/// What `setup server` did.
#[derive(Debug, Serialize)]
pub struct ServerReport {
    pub role: &'static str,
    pub device_id: String,
    /// The image the broker runs, as chosen before the first question.
    pub image: ImageChoice,
    pub acl_file: String,
    pub grants: Vec<GrantReport>,
    /// Managed broker containers that re-read permissions.acl (SIGHUP).
    pub reloaded: Vec<String>,
    pub server: UpReport,
    /// Whether something keeps the broker current as the agent renews.
    pub watch: WatchSetup,
    /// Whether anything changed: the ACL, the server dir or the container.
    pub changed: bool,
    /// What each client device runs next.
    pub next: Vec<String>,
}

/// The server role; see the module.
pub fn server(
    ctx: &Context<'_>,
    mut answers: ServerAnswers,
    mut prompter: Option<&mut dyn Prompter>,
) -> Result<ServerReport, Error> {
    if prompter.is_none() && !answers.yes && !answers.up.dry_run {
        return Err(no_terminal(
            "server",
            &["--yes (and --allow ID[:TOPIC[:ACCESS]] per client)"],
        ));
    }
    let device_id = healthy_identity(ctx, prompter.as_deref_mut())?;
    let image = preflight(ctx, &mut answers.up, &mut prompter)?;
    if let Some(p) = prompter.as_deref_mut() {
        ask_server(p, &mut answers, &device_id)?;
    }
    let up = crate::runtime::block_on_interruptible(broker::up(ctx, &answers.up))?
        .ok_or(Error::Interrupted)??;
    say(ctx, &mut prompter, &up_line(&up, ctx.output.paint_stderr()));
    let acl_file = ctx.server_dir.join(acl::FILE_NAME);
    let grants = grant_all(ctx, &answers, &acl_file, &mut prompter)?;
    let acl_changed = grants.iter().any(|g| g.changed);
    let reloaded = if acl_changed && !answers.up.dry_run {
        broker::reload_after_acl_edit(&acl_file)?
            .into_iter()
            .map(|a| a.container)
            .collect()
    } else {
        Vec::new()
    };
    let next = next_for_clients(&answers, &device_id, &up);
    let watch = keep_current(ctx, &answers, &up, &mut prompter)?;
    let watch_changed = matches!(watch, WatchSetup::Installed { changed: true, .. });
    Ok(ServerReport {
        role: "server",
        device_id,
        image,
        acl_file: acl_file.display().to_string(),
        watch,
        changed: up.changed || acl_changed || watch_changed,
        grants,
        reloaded,
        server: up,
        next,
    })
}

/// What would make `server up` fail, before the first question: the
/// container's name, the image (pulled or built now, unless a dry run),
/// the port. The broker then runs the image chosen here.
fn preflight(
    ctx: &Context<'_>,
    up: &mut UpOptions,
    prompter: &mut Option<&mut dyn Prompter>,
) -> Result<ImageChoice, Error> {
    let checked = crate::runtime::block_on_interruptible(broker::preflight(ctx, up))?
        .ok_or(Error::Interrupted)??;
    let paint = ctx.output.paint_stderr();
    say(
        ctx,
        prompter,
        &format!(
            "{} image     {}; port {}:{} is free",
            paint.mark(true),
            checked.image.describe(),
            up.spec.bind,
            up.spec.port
        ),
    );
    up.spec.image = checked.image.reference.clone();
    up.image = ImageRequest::Given(checked.image.reference.clone());
    Ok(checked.image)
}

/// On a terminal: the grants, unless given, and a confirmation, unless `--yes`.
fn ask_server(
    p: &mut dyn Prompter,
    answers: &mut ServerAnswers,
    device_id: &str,
) -> Result<(), Error> {
    if answers.yes {
        return Ok(());
    }
    if answers.grants.is_empty() {
        ask_grants(p, &mut answers.grants, answers.id_policy)?;
    }
    p.say(&server_summary(answers, device_id));
    if !p.confirm("Start the broker and write these grants?", true)? {
        return Err(cancelled());
    }
    if answers.watch && unit::systemd_running() {
        answers.watch = p.confirm(
            "Keep the broker current as the agent renews its certificate (a systemd service running `wott-mqtt server watch`)?",
            true,
        )?;
    }
    Ok(())
}

/// The systemd service that runs `server watch` for this broker: installed
/// (and started), declined, or, without systemd, the command to run under
/// the machine's own supervisor.
fn keep_current(
    ctx: &Context<'_>,
    answers: &ServerAnswers,
    up: &UpReport,
    prompter: &mut Option<&mut dyn Prompter>,
) -> Result<WatchSetup, Error> {
    let paint = ctx.output.paint_stderr();
    let command = ctx.command("server watch");
    let (setup, line) = if !answers.watch {
        let line = format!(
            "- watch     not installed: renewals wait for `{}`",
            ctx.command("server reload")
        );
        (WatchSetup::Declined { command }, line)
    } else if !unit::systemd_running() {
        let line = format!(
            "- watch     systemd is not running here: run `{command}` under this machine's supervisor to apply renewals as they come"
        );
        (WatchSetup::NoSystemd { command }, line)
    } else {
        let spec = unit::UnitSpec::for_broker(ctx, &up.container, None, None)?;
        let report = unit::install(&spec, answers.up.dry_run)?;
        let line = format!(
            "{} watch     {} {}: renewals are applied as they come",
            paint.mark(true),
            report.unit,
            if report.dry_run {
                "would be installed"
            } else {
                report.action
            }
        );
        let setup = WatchSetup::Installed {
            unit: report.unit,
            changed: report.changed,
            dry_run: report.dry_run,
        };
        (setup, line)
    };
    say(ctx, prompter, &line);
    Ok(setup)
}

/// Writes each grant into permissions.acl, saying what it did.
fn grant_all(
    ctx: &Context<'_>,
    answers: &ServerAnswers,
    acl_file: &Path,
    prompter: &mut Option<&mut dyn Prompter>,
) -> Result<Vec<GrantReport>, Error> {
    let paint = ctx.output.paint_stderr();
    let mut grants = Vec::new();
    for grant in &answers.grants {
        let edit = acl::file::allow(
            acl_file,
            &grant.device,
            &grant.topic,
            grant.access,
            answers.up.dry_run,
        )?;
        say(
            ctx,
            prompter,
            &format!(
                "{} acl       {} may {} {}{}",
                paint.mark(true),
                grant.device,
                grant.access.keyword(),
                grant.topic,
                if edit.edit.changed {
                    ""
                } else {
                    " (already granted)"
                }
            ),
        );
        grants.push(GrantReport {
            device_id: grant.device.to_string(),
            topic: grant.topic.to_string(),
            access: grant.access,
            changed: edit.edit.changed,
        });
    }
    Ok(grants)
}

/// The `setup client` each granted client runs next.
fn next_for_clients(answers: &ServerAnswers, device_id: &str, up: &UpReport) -> Vec<String> {
    let ip = up
        .next_step
        .host_ip
        .map_or_else(|| "<this server's IP>".to_string(), |ip| ip.to_string());
    let port = up.port;
    let any = crate::names::any_id_flag(device_id);
    let mut next: Vec<String> = answers
        .grants
        .iter()
        .map(|g| {
            format!(
                "on {}: sudo wott-mqtt setup client{any} --server {device_id} --ip {ip} --port {port} --topic {} --yes",
                g.device,
                shell_word(g.topic.as_str())
            )
        })
        .collect();
    if next.is_empty() {
        next.push(format!(
            "on each client: sudo wott-mqtt setup client{any} --server {device_id} --ip {ip} --port {port} --yes              (first grant it here: sudo wott-mqtt acl allow <CLIENT_ID> {DEFAULT_TOPIC})"
        ));
    }
    next
}

fn up_line(up: &UpReport, paint: Paint) -> String {
    let ready = up.ready.as_ref().map_or_else(String::new, |r| {
        format!("; ready after {:.2} s", r.after_ms as f64 / 1000.0)
    });
    format!(
        "{} broker    {} on {}:{} ({}){ready}",
        paint.mark(true),
        up.container,
        up.bind,
        up.port,
        if up.dry_run {
            "dry run"
        } else if up.changed {
            "started"
        } else {
            "already up"
        }
    )
}

fn server_summary(answers: &ServerAnswers, device_id: &str) -> String {
    let mut s = format!(
        "This will run Mosquitto as {} ({}) on {}:{}, serving {device_id}",
        answers.up.spec.name, answers.up.spec.image, answers.up.spec.bind, answers.up.spec.port
    );
    if answers.grants.is_empty() {
        s.push_str(", with no client granted yet.");
    } else {
        s.push_str(", and grant:");
        for g in &answers.grants {
            let _ = write!(s, "\n  {} {} {}", g.device, g.access.keyword(), g.topic);
        }
    }
    s
}

/// Asks for client grants until an empty device ID.
fn ask_grants(
    p: &mut dyn Prompter,
    grants: &mut Vec<Grant>,
    policy: IdPolicy,
) -> Result<(), Error> {
    loop {
        let prompt = if grants.is_empty() {
            "Client device ID to grant (`wott-mqtt whoami` on the client; empty: none)"
        } else {
            "Another client device ID (empty: done)"
        };
        let id = p.input(prompt, Some(""), &|s| {
            if s.is_empty() {
                Ok(())
            } else {
                DeviceId::typed(s, policy)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        })?;
        if id.is_empty() {
            return Ok(());
        }
        let device = DeviceId::typed(&id, policy)?;
        let topic = p.input("Topic", Some(DEFAULT_TOPIC), &|s| {
            TopicFilter::new(s).map(drop).map_err(|e| e.to_string())
        })?;
        let items = [
            "read: subscribe and receive (the tutorial's client)".to_string(),
            "write: publish".to_string(),
            "readwrite: both".to_string(),
        ];
        let access = match p.select("Access", &items, 0)? {
            Some(1) => Access::Write,
            Some(2) => Access::ReadWrite,
            _ => Access::Read,
        };
        grants.push(Grant {
            device,
            topic: TopicFilter::new(&topic)?,
            access,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_id_topic_and_access() {
        let g = Grant::parse("a.d.wott.local", IdPolicy::Any).unwrap();
        assert_eq!((g.topic.as_str(), g.access), (DEFAULT_TOPIC, Access::Read));
        let g = Grant::parse("a.d.wott.local:sensors/#", IdPolicy::Any).unwrap();
        assert_eq!((g.topic.as_str(), g.access), ("sensors/#", Access::Read));
        let g = Grant::parse("a.d.wott.local:sensors/#:readwrite", IdPolicy::Any).unwrap();
        assert_eq!(
            (g.topic.as_str(), g.access),
            ("sensors/#", Access::ReadWrite)
        );
        let g = Grant::parse("a.d.wott.local:write", IdPolicy::Any).unwrap();
        assert_eq!((g.topic.as_str(), g.access), (DEFAULT_TOPIC, Access::Write));
        let g = Grant::parse("a.d.wott.local:urn:x:write", IdPolicy::Any).unwrap();
        assert_eq!((g.topic.as_str(), g.access), ("urn:x", Access::Write));
        let g = Grant::parse("a.d.wott.local:urn:x", IdPolicy::Any).unwrap();
        assert_eq!((g.topic.as_str(), g.access), ("urn:x", Access::Read));
        assert!(Grant::parse("bad id:wott/#", IdPolicy::Any).is_err());
        let upper = "4853B630822946019393B16C5B710B9E.d.wott.local:wott/#";
        assert!(Grant::parse(upper, IdPolicy::Wott).is_err());
        assert!(Grant::parse(&upper.to_lowercase(), IdPolicy::Wott).is_ok());
        assert!(Grant::parse("a.d.wott.local:a/#/b", IdPolicy::Any).is_err());
    }
}
