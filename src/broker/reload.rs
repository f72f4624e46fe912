//! `server reload`, and the reload after an ACL edit: re-stage the
//! certificates, SIGHUP, and wait until the broker shows it took them.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::Context;
use super::config::{self, ServerDir};
use super::docker::Engine;
use super::down::is_managed_dir;
use super::ready::Served;
use super::record;
use super::running::{check_mounts, running_managed, spec_of};
use super::server_dir::{absolute, trust};
use super::sighup::{self, Reloaded, Target};
use super::stage::{self, Staged};
use super::wait::wait_ready;
use super::{BrokerError, LABEL_MANAGED_BY, LABEL_SERVER_DIR, MANAGED_BY};
use crate::identity::Identity;
use crate::output::sanitize;

/// `server reload`'s choices.
#[derive(Debug, Clone)]
pub struct ReloadOptions {
    /// `None`: the server dir's broker ([`record::broker_name`]).
    pub name: Option<String>,
    pub dry_run: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// Whether the staged certificates changed.
    pub changed: bool,
    pub dry_run: bool,
    pub container: String,
    pub certificates: Staged,
    /// Whether SIGHUP was sent (or, with `restarted`, the broker restarted).
    pub signalled: bool,
    /// Whether the broker was restarted instead, because `ca.crt` changed.
    pub restarted: bool,
    /// Whether the broker's log showed the reload, with no ACL error after it.
    pub in_force: bool,
    /// The certificate the broker serves after the reload.
    pub served: Option<Served>,
}

/// `server reload`: stage the certificates again, SIGHUP, and wait until the
/// broker serves the staged certificate.
pub async fn reload(ctx: &Context<'_>, opts: &ReloadOptions) -> Result<ReloadReport, BrokerError> {
    let identity = Identity::load(ctx.cert_dir)?;
    for warning in &identity.warnings {
        ctx.output.warn(&sanitize(&warning.message));
    }
    let engine = Engine::connect().await?;
    let server_dir = ServerDir::new(absolute(ctx.server_dir)?);
    let name = record::broker_name(&engine, server_dir.path(), opts.name.as_deref()).await?;
    let container = running_managed(&engine, &name).await?;
    check_mounts(&container, &server_dir)?;
    let spec = spec_of(&container)?;
    let target = Target {
        id: &container.id,
        name: &name,
        server_dir: server_dir.path(),
    };
    // Before anything changes: a reload with a broken ACL would open the
    // broker, and root stages into this folder.
    sighup::check_acl(target)?;
    trust(server_dir.path(), true)?;
    let staged = stage::stage(&identity, server_dir.path(), spec.run_as, opts.dry_run)?;
    let mut report = ReloadReport {
        changed: staged.is_changed(),
        dry_run: opts.dry_run,
        container: name.clone(),
        certificates: staged,
        signalled: false,
        restarted: false,
        in_force: false,
        served: None,
    };
    if opts.dry_run {
        return Ok(report);
    }
    if report.certificates.ca_changed {
        ctx.output.note(&format!(
            "ca.crt changed: Mosquitto reads its CA only at start, so {name} restarts \
             (connected clients reconnect)"
        ));
    }
    let reloaded = sighup::apply_staged(&engine, target, report.certificates.ca_changed).await?;
    report.restarted = reloaded == Reloaded::Restarted;
    report.in_force = reloaded != Reloaded::NotConfirmed;
    if !report.in_force {
        ctx.output.warn(&format!(
            "{} did not log \"Reloading config.\" within 3 s after SIGHUP: whether it took the files is not known",
            name
        ));
    }
    report.signalled = true;
    let ready = wait_ready(
        &engine,
        &container.id,
        &name,
        &identity,
        &spec,
        opts.timeout,
        Some(&report.certificates.fingerprint_sha256),
    )
    .await?;
    report.served = Some(ready.served);
    Ok(report)
}

/// A broker that re-read permissions.acl after an edit.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub container: String,
    /// Whether its log showed the reload, with no ACL error after it.
    pub in_force: bool,
}

/// After `acl allow` / `acl revoke`: reloads each running managed broker
/// whose server dir holds `acl_file` (never with an ACL Mosquitto would
/// refuse: see [`sighup`]), so the change applies now. When the file is not a
/// managed server dir's permissions.acl, it returns at once, without a
/// runtime or an engine connection, so ACL edits elsewhere stay fast.
pub fn reload_after_acl_edit(acl_file: &Path) -> Result<Vec<Applied>, BrokerError> {
    let Some(dir) = acl_file.parent() else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let server_dir = ServerDir::new(dir);
    if acl_file.file_name() != Some(std::ffi::OsStr::new(config::ACL_FILE))
        || !is_managed_dir(&server_dir)
    {
        return Ok(Vec::new());
    }
    let dir = absolute(dir)?;
    crate::runtime::block_on(async {
        let engine = Engine::connect().await?;
        let dir = dir.display().to_string();
        let brokers = engine
            .running_with_labels(&[(LABEL_MANAGED_BY, MANAGED_BY), (LABEL_SERVER_DIR, &dir)])
            .await?;
        let mut reloaded = Vec::new();
        for (id, name) in brokers {
            let target = Target {
                id: &id,
                name: &name,
                server_dir: Path::new(&dir),
            };
            let in_force = sighup::reload(&engine, target).await? == Reloaded::InForce;
            reloaded.push(Applied {
                container: name,
                in_force,
            });
        }
        Ok(reloaded)
    })?
}
