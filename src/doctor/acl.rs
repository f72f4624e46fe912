//! The ACL checks: `acl validate`'s lint and [`crate::acl::audit`] on the
//! server dir's permissions.acl.

use super::Finding;
use crate::acl::Document;
use crate::acl::audit::{self, Audit};
use crate::acl::lint::{self, Severity};
use crate::broker::Context;
use crate::broker::config::ServerDir;
use crate::names::{self, IdPolicy};
use crate::output::shell_word;

pub(super) fn check(ctx: &Context<'_>) -> Vec<Finding> {
    let path = ServerDir::new(ctx.server_dir).acl_path();
    let shown = path.display().to_string();
    let bytes = match crate::files::read_optional(&path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return vec![
                Finding::failure(
                    "acl.file",
                    format!("{shown} does not exist"),
                    "the broker refuses to start without its acl_file",
                )
                .fix(ctx.command("server up")),
            ];
        }
        Err(e) => {
            return vec![Finding::failure(
                "acl.file",
                e.to_string(),
                "nothing about the grants can be told",
            )];
        }
    };
    let Ok(doc) = Document::parse(&bytes) else {
        return vec![Finding::failure(
            "acl.file",
            format!("{shown} is 4 GiB or more"),
            "Mosquitto cannot use it",
        )];
    };
    let mut out = vec![Finding::ok("acl.file", format!("{shown} can be read"))];
    let validate = ctx.command("acl validate");
    // acl.device-id below reports the users that are no WoTT device ID.
    let findings = lint::validate(&doc, IdPolicy::Any);
    let (errors, warnings): (Vec<_>, Vec<_>) =
        findings.iter().partition(|f| f.severity == Severity::Error);
    if errors.is_empty() {
        out.push(Finding::ok("acl.refused", "Mosquitto accepts every line"));
    }
    for f in &errors {
        out.push(
            Finding::failure(
                "acl.refused",
                format!("line {}: {} (`{}`)", f.line, f.message, f.text),
                "Mosquitto refuses the whole file: a broker started with it exits, and one reloaded with it enforces no ACL at all",
            )
            .subject(format!("{shown}:{}", f.line))
            .fix(format!("correct line {} of {shown}; `{validate}` names every line Mosquitto refuses", f.line)),
        );
    }
    let (duplicates, others): (Vec<_>, Vec<_>) =
        warnings.into_iter().partition(|f| f.code == "duplicate");
    push_or_ok(
        &mut out,
        "acl.lint",
        "no rule means something else than it seems",
        others.into_iter().map(|f| {
            Finding::warning(
                "acl.lint",
                format!("line {}: {} [{}] (`{}`)", f.line, f.message, f.code, f.text),
                "Mosquitto accepts the line, but it does not do what it seems to",
            )
            .subject(format!("{shown}:{}", f.line))
            .fix(format!(
                "edit line {} of {shown} (`{validate}` explains each warning)",
                f.line
            ))
        }),
    );
    push_or_ok(&mut out, "acl.duplicate", "no rule repeats another", duplicates.into_iter().map(|f| {
        Finding::warning(
            "acl.duplicate",
            format!("line {} {} (`{}`)", f.line, f.message, f.text),
            "a repeated grant changes nothing, and keeps the access after one of the two lines is removed",
        )
        .subject(format!("{shown}:{}", f.line))
        .fix(format!("delete line {} of {shown}, then `{}`", f.line, ctx.command("server reload")))
    }));
    let audits = audit::audit(&doc);
    let of = |code: &'static str| audits.iter().filter(move |a| a.code == code);
    push_or_ok(
        &mut out,
        "acl.broad-grant",
        "no grant reaches every topic or writes to $SYS",
        of(audit::BROAD_GRANT).map(|a| broad(ctx, &shown, a)),
    );
    push_or_ok(&mut out, "acl.shadowed", "no grant is given twice", of(audit::SHADOWED).map(|a| {
        let fix = match (&a.user, &a.filter) {
            (Some(user), Some(filter)) => ctx.command(&format!("acl revoke {}", user_and(user, filter))),
            _ => format!("delete line {} of {shown}", a.line),
        };
        Finding::warning("acl.shadowed", format!("line {}: {} (`{}`)", a.line, a.message, a.text), "whoever later revokes the wider grant expects the access to end, and this line keeps part of it")
            .subject(format!("{shown}:{}", a.line))
            .fix(fix)
    }));
    push_or_ok(&mut out, "acl.device-id", "every `user` is a WoTT device ID", of(audit::NOT_WOTT_SHAPED).map(|a| {
        let fix = match &a.suggestion {
            Some(s) => format!("change line {} of {shown} to `user {s}`, then `{}`", a.line, ctx.command("server reload")),
            None => format!("check the device's ID (`wott-mqtt whoami` on the device) and correct line {} of {shown}", a.line),
        };
        Finding::warning("acl.device-id", format!("line {}: {}", a.line, a.message), "the grants under it apply to no WoTT device, so the device that was meant gets nothing")
            .subject(format!("{shown}:{}", a.line))
            .fix(fix)
    }));
    out
}

/// `USER FILTER` as an `acl` command takes them: with `--any-id` for a
/// user that is no WoTT device ID, which the command refuses otherwise.
fn user_and(user: &str, filter: &str) -> String {
    format!("{} {}", any_user(user), shell_word(filter))
}

fn any_user(user: &str) -> String {
    let any = if names::is_wott_shaped(user) {
        ""
    } else {
        "--any-id "
    };
    format!("{any}{}", shell_word(user))
}

/// The findings, or one ok finding when there are none.
fn push_or_ok(
    out: &mut Vec<Finding>,
    code: &'static str,
    ok: &str,
    findings: impl Iterator<Item = Finding>,
) {
    let before = out.len();
    out.extend(findings);
    if out.len() == before {
        out.push(Finding::ok(code, ok));
    }
}

fn broad(ctx: &Context<'_>, shown: &str, a: &Audit) -> Finding {
    let found = format!("line {}: {} (`{}`)", a.line, a.message, a.text);
    let why = "a device should get the topics it needs, not every other device's; a leaked or misused certificate then reaches only its own";
    let finding = if a.severity == Severity::Error {
        Finding::failure("acl.broad-grant", found, why)
    } else {
        Finding::warning("acl.broad-grant", found, why)
    };
    let fix = match (&a.user, &a.filter) {
        (Some(user), Some(filter)) => format!(
            "{} (then grant what it needs: {})",
            ctx.command(&format!("acl revoke {}", user_and(user, filter))),
            ctx.command(&format!("acl allow {} <TOPIC>", any_user(user)))
        ),
        _ => format!(
            "narrow or delete line {} of {shown} (a pattern applies to every client; use %u/…), then `{}`",
            a.line,
            ctx.command("server reload")
        ),
    };
    finding.subject(format!("{shown}:{}", a.line)).fix(fix)
}
