//! Which image the broker runs, one rule for `server up`, `setup server`
//! and `demo`.
//!
//! An image that was asked for (`--image`, `WOTT_MQTT_IMAGE`) is used if it
//! is here, else pulled; nothing else is put in its place. With none asked
//! for: `eclipse-mosquitto:2` if it is here; else it is pulled (a bar on a
//! terminal); and only when the pull fails because no registry answers,
//! the local image is built from this machine's Mosquitto ([`super::image`])
//! and one line says so. When that cannot be built either, one error names
//! both ways out. A pull refused for another reason (authentication, a full
//! disk) is reported as that: a local image would only hide it.

use std::path::PathBuf;

use serde::Serialize;

use super::docker::Engine;
use super::error::registry_unreachable;
use super::host_mosquitto::HostMosquitto;
use super::image::{default_tag, ensure};
use super::{BrokerError, DEFAULT_IMAGE, ImageError};
use crate::output::Output;

/// How the image was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRequest {
    /// `--image` or `WOTT_MQTT_IMAGE`: that image, here or pulled.
    Given(String),
    /// Neither: the policy above, building from `mosquitto` (`--mosquitto`)
    /// or the Mosquitto found on this machine.
    Default { mosquitto: Option<PathBuf> },
}

impl ImageRequest {
    /// The reference the policy starts from.
    pub fn reference(&self) -> &str {
        match self {
            ImageRequest::Given(image) => image,
            ImageRequest::Default { .. } => DEFAULT_IMAGE,
        }
    }
}

/// Where the image the broker runs came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageSource {
    /// It was here already.
    Present,
    Pulled,
    /// Built now from this machine's Mosquitto.
    Built,
    /// A dry run: it is not here, and would be pulled (or built, offline).
    Missing,
}

/// The image the broker runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageChoice {
    #[serde(rename = "ref")]
    pub reference: String,
    pub source: ImageSource,
    /// The image ID; `None` when it is [`ImageSource::Missing`].
    #[serde(skip)]
    pub id: Option<String>,
}

impl ImageChoice {
    /// The reference, and where it came from when it was not here already.
    pub fn describe(&self) -> String {
        let how = match self.source {
            ImageSource::Present => "",
            ImageSource::Pulled => " (pulled)",
            ImageSource::Built => " (built now from this machine's Mosquitto)",
            ImageSource::Missing => {
                " (not here: to be pulled, or built from this machine's Mosquitto where no registry answers)"
            }
        };
        format!("{}{how}", self.reference)
    }
}

/// Applies the policy; in a dry run nothing is pulled or built.
pub async fn choose(
    engine: &Engine,
    request: &ImageRequest,
    output: &Output,
    dry_run: bool,
) -> Result<ImageChoice, BrokerError> {
    let image = request.reference();
    let choice = |source, id| ImageChoice {
        reference: image.to_string(),
        source,
        id,
    };
    if let Some(id) = engine.image_id(image).await? {
        return Ok(choice(ImageSource::Present, Some(id)));
    }
    if dry_run {
        return Ok(choice(ImageSource::Missing, None));
    }
    let pull_reason = match engine.pull(image, output).await {
        Ok(()) => {
            let id = engine
                .image_id(image)
                .await?
                .ok_or_else(|| BrokerError::Pull {
                    image: image.to_string(),
                    reason: "the engine reported success, but the image is not there".into(),
                })?;
            return Ok(choice(ImageSource::Pulled, Some(id)));
        }
        Err(BrokerError::Pull { reason, .. }) if registry_unreachable(&reason) => reason,
        Err(e) => return Err(e),
    };
    let ImageRequest::Default { mosquitto } = request else {
        return Err(BrokerError::Pull {
            image: image.to_string(),
            reason: pull_reason,
        });
    };
    let no_image = |build: ImageError| ImageError::NoImage {
        image: image.to_string(),
        pull_reason: pull_reason.clone(),
        build: Box::new(build),
    };
    let host = HostMosquitto::find(mosquitto.as_deref())
        .await
        .map_err(no_image)?;
    let tag = default_tag(&host);
    let built = match ensure(engine, &host, &tag, false, output).await {
        Ok(built) => built,
        Err(BrokerError::Image(e)) => return Err(no_image(e).into()),
        Err(e) => return Err(e),
    };
    output.note(&format!(
        "no registry answered for {image}, so the broker runs {tag}, {} from this machine's Mosquitto {} ({})",
        if built.changed { "built now" } else { "built earlier" },
        host.version,
        host.binary.source.display()
    ));
    Ok(ImageChoice {
        reference: tag,
        source: if built.changed {
            ImageSource::Built
        } else {
            ImageSource::Present
        },
        id: built.id,
    })
}
