//! The one way wott-mqtt makes a running broker reload: the ACL it would
//! load is checked first, then SIGHUP, then the broker's log says what
//! happened.
//!
//! Mosquitto 2.0 that fails to load its ACL file on a reload does not keep
//! its old rules: it logs `Error opening acl file` and then enforces no ACL
//! at all, so every authenticated device may read and write every topic
//! (verified on 2.0.11, with and without `user` blocks). At start it refuses
//! such a file and exits. So no path of this tool sends SIGHUP while
//! permissions.acl has a line Mosquitto refuses (what `acl validate` reports
//! as an error), or is missing; and after the signal, "in force" is said
//! only when the log shows the reload and no ACL error after it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::BrokerError;
use super::diagnose::{RELOAD_LINE, failed_open};
use super::docker::Engine;
use crate::acl;
use crate::files;
use crate::identity::Timestamp;

/// How long the broker has to log the reload.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the ACL's errors may trail the reload line in the log.
const ACL_ERRORS_GRACE: Duration = Duration::from_millis(150);

/// What the broker's log shows after SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The reload was logged and no ACL error after it: the files are in force.
    InForce,
    /// No reload line within a few seconds: nothing is known.
    NotConfirmed,
    /// Restarted, for a new `ca.crt`: whether it serves is for the caller
    /// to wait for.
    Restarted,
}

/// The broker whose ACL a reload would load: for the messages and hints.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// The server dir on the host, holding the permissions.acl it loads.
    pub server_dir: &'a Path,
}

/// Why SIGHUP must not be sent now, if it must not: permissions.acl is
/// missing or has a line Mosquitto refuses.
pub fn acl_problem(acl_file: &Path) -> Result<Option<String>, BrokerError> {
    let Some(bytes) = files::read_optional(acl_file)? else {
        return Ok(Some(format!("{} does not exist", acl_file.display())));
    };
    let refusal = acl::parse(&bytes, acl_file)
        .map(|doc| acl::refusal(&doc, acl_file))
        .unwrap_or_else(Some);
    Ok(refusal.map(|e| e.to_string()))
}

/// Refuses, before anything is signalled, a reload of `target` with an ACL
/// Mosquitto would refuse.
pub fn check_acl(target: Target<'_>) -> Result<(), BrokerError> {
    let acl_file = target.server_dir.join(super::config::ACL_FILE);
    match acl_problem(&acl_file)? {
        None => Ok(()),
        Some(problem) => Err(BrokerError::ReloadWithheld {
            name: target.name.to_string(),
            problem,
            acl_file,
            server_dir: target.server_dir.to_path_buf(),
        }),
    }
}

/// After staging: SIGHUP, or a restart when `ca.crt` changed. Mosquitto
/// reloads its certificate and key on SIGHUP but reads `cafile` only at
/// start, so after a new CA a reload would keep verifying clients against
/// the old one. A restart drops the connected clients (they reconnect), so
/// it is done only then. The ACL is checked first either way: a restart with
/// a file Mosquitto refuses would leave no broker at all.
pub async fn apply_staged(
    engine: &Engine,
    target: Target<'_>,
    ca_changed: bool,
) -> Result<Reloaded, BrokerError> {
    if !ca_changed {
        return reload(engine, target).await;
    }
    check_acl(target)?;
    engine.restart(target.id).await?;
    Ok(Reloaded::Restarted)
}

/// Checks the ACL, sends SIGHUP and reads the log: [`Reloaded`], or
/// [`BrokerError::ReloadWithheld`] (nothing sent), or
/// [`BrokerError::RunningOpen`] when the broker failed to load the ACL anyway
/// (a file changed between the check and the signal).
pub async fn reload(engine: &Engine, target: Target<'_>) -> Result<Reloaded, BrokerError> {
    check_acl(target)?;
    // The engine's `since` has whole seconds: count what is already there.
    let since = Timestamp::now().0 - 1;
    let reloads = |lines: &[String]| lines.iter().filter(|l| l.contains(RELOAD_LINE)).count();
    let before = reloads(&engine.log_lines_since(target.id, None, Some(since)).await?);
    engine.signal(target.id, "SIGHUP").await?;
    let started = std::time::Instant::now();
    while started.elapsed() < CONFIRM_TIMEOUT {
        if reloads(&engine.log_lines_since(target.id, None, Some(since)).await?) > before {
            tokio::time::sleep(ACL_ERRORS_GRACE).await;
            let lines = engine.log_lines_since(target.id, None, Some(since)).await?;
            return match failed_open(&lines) {
                None => Ok(Reloaded::InForce),
                Some(lines) => Err(running_open(target, lines)),
            };
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(Reloaded::NotConfirmed)
}

/// The error for a broker whose log shows a failed ACL load after the last good one.
pub fn running_open(target: Target<'_>, lines: Vec<String>) -> BrokerError {
    BrokerError::RunningOpen {
        name: target.name.to_string(),
        lines,
        acl_file: target.server_dir.join(super::config::ACL_FILE),
        server_dir: PathBuf::from(target.server_dir),
    }
}
