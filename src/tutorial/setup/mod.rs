//! `setup`: the tutorial as a wizard, for the server role ([`server`]) and
//! the client role ([`client`]).
//!
//! The wizard is a thin layer of questions over the same library functions
//! the commands call (`hosts::add`, `check::check`, `acl`, `broker`): it
//! never implements a step a second time. Every question has a flag, so
//! `setup client --server … --ip … --yes` runs in CI or Ansible with no
//! terminal. Without a terminal, a missing answer is a usage error (exit 2)
//! that lists the flags to pass, raised before anything is changed: the
//! wizard never hangs waiting for input nobody can give.
//!
//! Questions go through the [`Prompter`] trait; `commands::setup` asks them
//! on the terminal, and tests drive the real binary through a
//! pseudo-terminal. Ctrl-C ends the wizard with exit 130 through the same
//! cancellation as every other command (`runtime::block_on_interruptible`,
//! and prompts that return an interruption); files are only ever replaced
//! atomically (`files`), so none is left half-written.

pub mod client;
pub mod server;

use crate::broker::Context;
use crate::error::Error;
use crate::identity::{Inspection, Validity};
use crate::output::{Paint, human_duration, sanitize, sanitize_field};

pub use client::{ClientAnswers, ClientReport};
pub use server::{Grant, ServerAnswers, ServerReport};

/// The port the tutorial's broker listens on.
pub const DEFAULT_PORT: u16 = 8883;
/// The port the tutorial's client example uses by mistake.
pub const TUTORIAL_SLIP_PORT: u16 = 8333;
/// The tutorial's topic.
pub const DEFAULT_TOPIC: &str = "wott/temperature";

/// Asks the user; `commands::setup` asks on the terminal.
pub trait Prompter {
    /// One of `items`; `None` when the user backs out (Esc).
    fn select(
        &mut self,
        prompt: &str,
        items: &[String],
        default: usize,
    ) -> Result<Option<usize>, Error>;
    /// A line of text, asked again until `validate` accepts it.
    fn input(
        &mut self,
        prompt: &str,
        default: Option<&str>,
        validate: &dyn Fn(&str) -> Result<(), String>,
    ) -> Result<String, Error>;
    fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool, Error>;
    /// A line of progress or explanation.
    fn say(&mut self, text: &str);
}

/// The usage error for answers no terminal can give.
pub(crate) fn no_terminal(role: &str, missing: &[&str]) -> Error {
    Error::usage(
        format!(
            "setup {role} needs answers but there is no terminal to ask: pass {}",
            missing.join(", ")
        ),
        Some(format!(
            "see `wott-mqtt setup {role} --help`; every question has a flag"
        )),
    )
}

/// Says a line of progress: through the prompter when there is one, else
/// as a note on stderr.
fn say(ctx: &Context<'_>, prompter: &mut Option<&mut dyn Prompter>, text: &str) {
    match prompter {
        Some(p) => p.say(text),
        None => ctx.output.note(text),
    }
}

/// The usage error for "no" to a confirmation.
fn cancelled() -> Error {
    Error::usage("setup cancelled; nothing was changed", None::<String>)
}

/// Shows this device's identity and stops the wizard, before any question or
/// change, when it cannot be used (key, CA, expiry): both roles connect with it.
/// Returns the device ID.
pub(crate) fn healthy_identity(
    ctx: &Context<'_>,
    prompter: Option<&mut (dyn Prompter + '_)>,
) -> Result<String, Error> {
    let inspection = Inspection::load(ctx.cert_dir)?;
    let line = identity_line(&inspection, ctx.output.paint_stderr());
    match prompter {
        Some(p) => p.say(&line),
        None => ctx.output.note(&line),
    }
    for warning in &inspection.warnings {
        ctx.output.warn(&sanitize(&warning.message));
    }
    let device_id = inspection.cert.device_id().to_string();
    inspection.into_identity()?;
    Ok(device_id)
}

fn identity_line(inspection: &Inspection, paint: Paint) -> String {
    let cert = &inspection.cert;
    let validity = match cert.info.validity_at(inspection.now) {
        Validity::Valid { seconds_left } => format!("valid for {}", human_duration(seconds_left)),
        Validity::Expired { seconds_ago } => format!("expired {} ago", human_duration(seconds_ago)),
        Validity::NotYetValid { seconds_until } => {
            format!("not valid for another {}", human_duration(seconds_until))
        }
    };
    let healthy = inspection.problems().is_empty()
        && matches!(
            cert.info.validity_at(inspection.now),
            Validity::Valid { .. }
        );
    let key = match inspection.key_matches() {
        Some(true) => "key matches",
        Some(false) => "key does NOT match",
        None => "key unreadable",
    };
    format!(
        "{} identity  this device is {} (certificate {validity}; {key}; {})",
        paint.mark(healthy),
        sanitize_field(cert.device_id()),
        inspection.ca_signer().map_or_else(
            || "not signed by ca.crt".to_string(),
            |ca| format!("issued by {}", sanitize_field(&ca.subject))
        )
    )
}
