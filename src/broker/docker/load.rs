//! Images the engine is given rather than pulls: `docker load` of an
//! archive built here, and the labels that say what a local image was
//! built from.

use std::collections::HashMap;

use bollard::errors::Error as DockerError;
use bollard::query_parameters::{ImportImageOptionsBuilder, RemoveImageOptionsBuilder};
use futures_util::StreamExt;

use super::{Engine, reason, status};
use crate::broker::{BrokerError, ImageError};

/// A local image: its ID and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    pub id: String,
    pub labels: HashMap<String, String>,
}

impl Engine {
    /// The image `image` refers to, with its labels; `None` when it is not here.
    pub async fn image(&self, image: &str) -> Result<Option<LocalImage>, BrokerError> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(Some(LocalImage {
                id: i.id.unwrap_or_default(),
                labels: i.config.and_then(|c| c.labels).unwrap_or_default(),
            })),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(self.fail(&format!("inspect the image {image}"), e)),
        }
    }

    /// Loads a `docker save` archive that tags `tag`. The engine tags the
    /// image only once it has stored all of it, so a refusal leaves the tag
    /// as it was.
    pub async fn load(&self, tag: &str, archive: Vec<u8>) -> Result<(), BrokerError> {
        let options = ImportImageOptionsBuilder::default().quiet(true).build();
        let mut stream =
            self.docker
                .import_image(options, bollard::body_full(archive.into()), None);
        let refused = |reason: String| {
            BrokerError::Image(ImageError::ImportRefused {
                tag: tag.to_string(),
                reason,
            })
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(_) => {}
                Err(DockerError::DockerStreamError { error }) => return Err(refused(error)),
                Err(DockerError::DockerResponseServerError { message, .. }) => {
                    return Err(refused(message));
                }
                Err(e) if super::is_connection_lost(&e) => {
                    return Err(self.fail(&format!("load the image {tag}"), e));
                }
                Err(e) => return Err(refused(reason(&e))),
            }
        }
        Ok(())
    }

    /// Removes an image nothing uses any more (no tag, no container); an
    /// image still in use stays, and that is no error.
    pub async fn remove_unused_image(&self, id: &str) -> bool {
        let options = RemoveImageOptionsBuilder::default().build();
        self.docker
            .remove_image(id, Some(options), None)
            .await
            .is_ok()
    }
}
