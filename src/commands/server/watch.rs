//! `server watch`: the log it prints (a line per event, or JSON lines), and
//! its systemd unit (`--print-unit`, `--install`, `--uninstall`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::broker::watch::unit::{self, UnitReport, UnitSpec};
use crate::broker::watch::{self, CertId, Event, Level, WatchOptions};
use crate::broker::{Context, record};
use crate::cli::ServerWatchArgs;
use crate::error::Error;
use crate::identity::Timestamp;
use crate::output::{Human, Outcome, Paint, sanitize, shell_word};

/// The debounce: the agent writes its three files within milliseconds.
const SETTLE: Duration = Duration::from_millis(500);

/// `--recheck`'s default, left out of a printed unit.
const DEFAULT_RECHECK: u64 = 3600;

pub fn run(ctx: &Context<'_>, args: &ServerWatchArgs) -> Result<Outcome, Error> {
    if args.print_unit || args.install || args.uninstall {
        return unit_command(ctx, args);
    }
    if args.dry_run {
        return Err(Error::usage(
            "--dry-run goes with --install or --uninstall",
            Some("a watch changes nothing until a renewal: run it without --dry-run".to_string()),
        ));
    }
    let options = WatchOptions {
        name: args.container.name.clone(),
        recheck: Duration::from_secs(args.recheck),
        settle: SETTLE,
        timeout: Duration::from_secs(args.timeout),
    };
    let output = ctx.output;
    let paint = output.paint_stdout();
    let mut emit = |event: Event| print_event(&event, output.is_json(), paint);
    match crate::runtime::block_on_until_stopped(watch::watch(ctx, &options, &mut emit))? {
        Some(Err(e)) => Err(e.into()),
        // The loop ends only when stopped.
        Some(Ok(())) | None => {
            print_event(&Event::Stopped, output.is_json(), paint);
            Ok(Outcome::streamed())
        }
    }
}

/// One line on stdout, flushed: the log a supervisor keeps. A closed
/// stdout ends nothing: the broker still needs keeping current.
fn print_event(event: &Event, json: bool, paint: Paint) {
    let line = if json {
        let mut doc = serde_json::to_value(event).unwrap_or_default();
        if let serde_json::Value::Object(map) = &mut doc {
            map.insert("time".into(), Timestamp::now().rfc3339().into());
            map.insert(
                "level".into(),
                serde_json::to_value(event.level()).unwrap_or_default(),
            );
        }
        doc.to_string()
    } else {
        let mark = match event.level() {
            Level::Info => paint.good("·"),
            Level::Warning => paint.warn("warning:"),
            Level::Error => paint.bad("error:"),
        };
        format!("{mark} {}", sanitize(&describe(event)))
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// An event for people.
fn describe(event: &Event) -> String {
    match event {
        Event::Watching {
            container,
            cert_dir,
            acl_file,
        } => format!("watching {cert_dir} and {acl_file} for {container}"),
        Event::Current {
            container,
            certificate,
        } => format!(
            "{container} serves the agent's certificate ({}) and permissions.acl",
            cert(certificate)
        ),
        Event::Renewed {
            container,
            old,
            new,
        } => match old {
            Some(old) => format!(
                "renewal applied: {container} serves serial {} (was {}), SHA-256 {}, valid until {}",
                new.serial, old.serial, new.fingerprint_sha256, new.not_after
            ),
            None => format!("renewal applied: {container} serves {}", cert(new)),
        },
        Event::AclReloaded { container } => {
            format!("permissions.acl changed: {container} reloaded it")
        }
        Event::AclRestored { container } => format!(
            "{container} enforced no ACL after a failed load; reloaded with a valid permissions.acl, it enforces it again"
        ),
        Event::Waiting { reason } => format!("waiting for a complete renewal: {reason}"),
        Event::RenewalRefused { reason, hint } => format!("renewal not applied: {reason}; {hint}"),
        Event::AclRefused { problem, hint } => format!(
            "permissions.acl not reloaded: {problem}; on a reload with it Mosquitto would enforce no ACL at all; {hint}"
        ),
        Event::ApplyFailed { reason, hint } => match hint {
            Some(hint) => format!("reload failed: {reason}; {hint}"),
            None => format!("reload failed: {reason}"),
        },
        Event::BrokerStarted { container } => format!("{container} started"),
        Event::BrokerStopped {
            container,
            exit_code,
        } => match exit_code {
            Some(code) => format!("{container} stopped (exit code {code})"),
            None => format!("{container} stopped"),
        },
        Event::BrokerRemoved { container } => format!(
            "{container} was removed; watching for the server dir's next broker (`wott-mqtt server up` starts it)"
        ),
        Event::BrokerMissing { container, reason } => {
            format!("no broker to keep current in {container}: {reason}")
        }
        Event::EngineUnreachable { reason } => reason.clone(),
        Event::EngineBack { endpoint } => {
            format!("the container engine at {endpoint} answers again")
        }
        Event::Stopped => "stopped".to_string(),
    }
}

fn cert(c: &CertId) -> String {
    format!(
        "serial {}, SHA-256 {}, valid until {}",
        c.serial, c.fingerprint_sha256, c.not_after
    )
}

/// `--print-unit`, `--install`, `--uninstall`.
fn unit_command(ctx: &Context<'_>, args: &ServerWatchArgs) -> Result<Outcome, Error> {
    let spec = unit_spec(ctx, args)?;
    if args.print_unit {
        return Ok(Outcome::report(UnitText {
            unit: spec.unit_name(),
            path: spec.unit_path().display().to_string(),
            text: spec.render(),
        }));
    }
    let report = if args.install {
        unit::install(&spec, args.dry_run)?
    } else {
        unit::uninstall(&spec, args.dry_run)?
    };
    Ok(Outcome::report(UnitView(report)))
}

/// The unit for this invocation: this binary, these dirs, this broker.
fn unit_spec(ctx: &Context<'_>, args: &ServerWatchArgs) -> Result<UnitSpec, Error> {
    let name = args.container.name.as_deref();
    let container = match name {
        Some(name) => name.to_string(),
        None => record::read(ctx.server_dir)?
            .map_or_else(|| crate::broker::DEFAULT_NAME.to_string(), |s| s.name),
    };
    let recheck = (args.recheck != DEFAULT_RECHECK).then_some(args.recheck);
    Ok(UnitSpec::for_broker(ctx, &container, name, recheck)?)
}

/// `--print-unit`: the unit's text, as is (ready for `> /etc/systemd/system/…`).
#[derive(Serialize)]
struct UnitText {
    unit: String,
    path: String,
    text: String,
}

impl Human for UnitText {
    fn human(&self, _: Paint) -> String {
        self.text.clone()
    }
}

struct UnitView(UnitReport);

impl Serialize for UnitView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Human for UnitView {
    fn human(&self, p: Paint) -> String {
        let r = &self.0;
        let mut s = String::new();
        let what = if r.dry_run {
            format!("Dry run: {} would be {}.", r.unit, r.action)
        } else {
            format!("{} {} {}.", p.mark(true), r.unit, r.action)
        };
        let _ = writeln!(s, "{}", p.bold(&what));
        let _ = writeln!(s, "  Unit file   {}", r.path.display());
        for command in &r.commands {
            let _ = writeln!(
                s,
                "  {}  {command}",
                if r.dry_run { "would run" } else { "ran      " }
            );
        }
        if r.action != "removed" && r.action != "absent" && !r.dry_run {
            let _ = writeln!(s, "  Its log: journalctl -u {}", shell_word(&r.unit));
        }
        s
    }
}
