//! `pull` with progress: a bar on a terminal, two lines otherwise.

use std::collections::HashMap;

use bollard::errors::Error as DockerError;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;

use super::{Engine, reason, split_reference};
use crate::broker::BrokerError;
use crate::output::Output;

impl Engine {
    /// Pulls `image`, with a progress bar on a terminal.
    pub async fn pull(&self, image: &str, output: &Output) -> Result<(), BrokerError> {
        let (repository, tag) = split_reference(image);
        let mut options = CreateImageOptionsBuilder::default().from_image(repository);
        if let Some(tag) = tag {
            options = options.tag(tag);
        }
        let mut stream = self.docker.create_image(Some(options.build()), None, None);
        let progress = PullProgress::new(image, output);
        let fail = |e: DockerError| BrokerError::Pull {
            image: image.to_string(),
            reason: match e {
                DockerError::DockerResponseServerError { message, .. } => message,
                DockerError::DockerStreamError { error } => error,
                other => reason(&other),
            },
        };
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| {
                progress.abandon();
                fail(e)
            })?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                progress.abandon();
                return Err(BrokerError::Pull {
                    image: image.to_string(),
                    reason: detail,
                });
            }
            progress.update(
                info.id.as_deref(),
                info.status.as_deref(),
                info.progress_detail.as_ref().and_then(|d| d.current),
                info.progress_detail.as_ref().and_then(|d| d.total),
            );
        }
        progress.finish();
        Ok(())
    }
}

/// Pull progress: a bar on a terminal, two lines otherwise.
pub(super) struct PullProgress {
    bar: Option<indicatif::ProgressBar>,
    layers: std::cell::RefCell<HashMap<String, (u64, u64)>>,
}

impl PullProgress {
    fn new(image: &str, output: &Output) -> Self {
        if output.interactive_progress() {
            let bar = output.add_progress(indicatif::ProgressBar::no_length());
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(format!("pulling {image}"));
            PullProgress {
                bar: Some(bar),
                layers: Default::default(),
            }
        } else {
            output.note(&format!("pulling {image} …"));
            PullProgress {
                bar: None,
                layers: Default::default(),
            }
        }
    }

    fn update(
        &self,
        id: Option<&str>,
        status: Option<&str>,
        current: Option<i64>,
        total: Option<i64>,
    ) {
        let (Some(bar), Some(id)) = (&self.bar, id) else {
            return;
        };
        let mut layers = self.layers.borrow_mut();
        let entry = layers.entry(id.to_string()).or_insert((0, 0));
        match (status, current, total) {
            (Some("Downloading"), Some(c), Some(t)) if t > 0 => {
                *entry = (c.max(0) as u64, t as u64);
            }
            (Some("Download complete" | "Pull complete" | "Already exists"), _, _) => {
                entry.0 = entry.1;
            }
            _ => return,
        }
        let (done, total) = layers
            .values()
            .fold((0, 0), |(d, t), (c, l)| (d + c, t + l));
        bar.set_length(total);
        bar.set_position(done);
    }

    fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
