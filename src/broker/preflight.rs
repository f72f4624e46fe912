//! The refusals `server up` makes before it changes anything, on their own,
//! so that the wizard can make them before its first question: a container
//! of that name wott-mqtt did not create, no image to be had, a host port
//! something else holds.

use std::io;
use std::net::TcpListener;

use serde::Serialize;

use super::docker::{Container, Engine};
use super::image_policy::{self, ImageChoice};
use super::{BrokerError, ContainerSpec, Context, UpOptions};

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
    let image = image_policy::choose(&engine, &opts.image, ctx.output, opts.dry_run).await?;
    port_free(&engine, &opts.spec).await?;
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

/// Refuses a host port that another container publishes, or that something
/// on this host listens on, unless it is the broker's own container.
pub(super) async fn port_free(engine: &Engine, spec: &ContainerSpec) -> Result<(), BrokerError> {
    let publishers = engine.publishers_of(spec.port).await?;
    let ours = publishers.contains(&spec.name);
    if let Some(other) = publishers.iter().find(|n| **n != spec.name) {
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
