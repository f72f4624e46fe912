//! `server down`: stop and remove the broker's container; with `--purge`,
//! the server dir too (only one wott-mqtt made).

use std::path::PathBuf;

use serde::Serialize;

use super::BrokerError;
use super::Context;
use super::config::{self, ServerDir};
use super::docker::Engine;
use super::record;
use super::server_dir::{absolute, server_dir_error};
use super::up::short;

/// `server down`'s choices.
#[derive(Debug, Clone)]
pub struct DownOptions {
    /// `None`: the server dir's broker ([`record::broker_name`]).
    pub name: Option<String>,
    /// Remove the server dir too.
    pub purge: bool,
    pub dry_run: bool,
    /// Stop Mosquitto with SIGTERM first (up to 10 s), so that it saves its
    /// persistence; `false` removes the container at once, for a throwaway
    /// broker (`demo`), about 200 ms sooner.
    pub graceful: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    pub changed: bool,
    pub dry_run: bool,
    pub container: String,
    /// The removed container's ID, if there was one.
    pub removed: Option<String>,
    pub was_running: bool,
    pub server_dir: PathBuf,
    /// Whether the server dir was (or, in a dry run, would be) removed.
    pub purged: bool,
}

/// `server down`: stop and remove the container; with `purge`, the server dir too.
pub async fn down(ctx: &Context<'_>, opts: &DownOptions) -> Result<DownReport, BrokerError> {
    let server_dir = ServerDir::new(absolute(ctx.server_dir)?);
    let purge = opts.purge && server_dir.path().exists();
    if purge && !is_managed_dir(&server_dir) {
        return Err(BrokerError::PurgeRefused {
            dir: server_dir.path().to_path_buf(),
        });
    }
    let engine = Engine::connect().await?;
    let name = record::broker_name(&engine, server_dir.path(), opts.name.as_deref()).await?;
    let existing = engine.container(&name).await?;
    if let Some(c) = &existing
        && !c.is_managed()
    {
        return Err(BrokerError::NotManaged {
            name: name.clone(),
            image: c.image.clone(),
        });
    }
    if !opts.dry_run {
        if let Some(c) = &existing {
            ctx.output.note(&format!(
                "{} the container {}",
                if opts.graceful {
                    "stopping and removing"
                } else {
                    "removing"
                },
                name
            ));
            if opts.graceful {
                engine.stop(&c.id).await?;
            }
            engine.remove(&c.id).await?;
        }
        if purge {
            std::fs::remove_dir_all(server_dir.path())
                .map_err(|e| server_dir_error(server_dir.path(), &e))?;
        }
    }
    Ok(DownReport {
        changed: existing.is_some() || purge,
        dry_run: opts.dry_run,
        container: name,
        removed: existing.as_ref().map(|c| short(&c.id)),
        was_running: existing.as_ref().is_some_and(|c| c.running),
        server_dir: server_dir.path().to_path_buf(),
        purged: purge,
    })
}

/// Whether `dir` holds a mosquitto.conf that wott-mqtt rendered.
pub(super) fn is_managed_dir(dir: &ServerDir) -> bool {
    std::fs::read(dir.conf_path())
        .is_ok_and(|conf| conf.starts_with(config::MANAGED_MARKER.as_bytes()))
}
