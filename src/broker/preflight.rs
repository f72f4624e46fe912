//! The refusals `server up` makes before it changes anything, on their own,
//! so that the wizard can make them before its first question: a container
//! of that name wott-mqtt did not create, no image to be had, a host port
//! something else holds.

use std::io;
use std::net::TcpListener;
use std::path::Path;

use serde::Serialize;

use super::docker::{Container, Engine};
use super::image_policy::{self, ImageChoice};
use super::server_dir::absolute;
use super::{BrokerError, ContainerSpec, Context, LABEL_SERVER_DIR, UpOptions};

/// What the checks found.
#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    pub engine: String,
    pub image: ImageChoice,
}

/// Engine, name, image (pulled or built as the policy says, unless a dry
/// run), port: the first refusal is the error.
pub async fn preflight(ctx: &Context<'_>, opts: &UpOptions) -> Result<Preflight, BrokerError> {
    let engine = Engine::connect().await?;
    existing(&engine, &opts.spec, opts.replace).await?;
    let server_dir = absolute(ctx.server_dir)?;
    let renamed = renamed(&engine, opts.settings.renamed_from.as_deref(), &server_dir).await?;
    let image = image_policy::choose(&engine, &opts.image, ctx.output, opts.dry_run).await?;
    port_free(&engine, &opts.spec, renamed.as_ref()).await?;
    Ok(Preflight {
        engine: engine.endpoint().to_string(),
        image,
    })
}

/// The container of that name, refusing one wott-mqtt did not create
/// (unless `replace`).
pub(super) async fn existing(
    engine: &Engine,
    spec: &ContainerSpec,
    replace: bool,
) -> Result<Option<Container>, BrokerError> {
    let existing = engine.container(&spec.name).await?;
    if let Some(c) = &existing
        && !c.is_managed()
        && !replace
    {
        return Err(BrokerError::NameClash {
            name: spec.name.clone(),
            image: c.image.clone(),
            state: c.state.to_string(),
        });
    }
    Ok(existing)
}

/// The server dir's broker under the name its record gives, when a flag
/// renames it: it goes, so that the server dir keeps one broker. Only a
/// container wott-mqtt made that mounts this server dir.
pub(super) async fn renamed(
    engine: &Engine,
    recorded_name: Option<&str>,
    server_dir: &Path,
) -> Result<Option<Container>, BrokerError> {
    let Some(name) = recorded_name else {
        return Ok(None);
    };
    Ok(engine
        .container(name)
        .await?
        .filter(|c| c.is_managed() && c.label(LABEL_SERVER_DIR).map(Path::new) == Some(server_dir)))
}

/// Refuses a host port that another container publishes, or that something
/// on this host listens on, unless it is the broker's own container (or
/// the one it renames, which goes first).
pub(super) async fn port_free(
    engine: &Engine,
    spec: &ContainerSpec,
    renamed: Option<&Container>,
) -> Result<(), BrokerError> {
    let publishers = engine.publishers_of(spec.port).await?;
    let is_ours = |n: &String| *n == spec.name || renamed.is_some_and(|c| c.name == *n);
    let ours = publishers.iter().any(is_ours);
    if let Some(other) = publishers.iter().find(|n| !is_ours(n)) {
        return Err(BrokerError::PortBusy {
            bind: spec.bind,
            port: spec.port,
            holder: Some(format!("the container {other}")),
        });
    }
    match TcpListener::bind((spec.bind, spec.port)) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse && !ours => Err(BrokerError::PortBusy {
            bind: spec.bind,
            port: spec.port,
            holder: None,
        }),
        // Free, ours, or not for us to bind (a low port, an address the
        // engine binds on its own): the start will tell.
        _ => Ok(()),
    }
}
