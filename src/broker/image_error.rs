//! Why the local Mosquitto image cannot be built, or no image can be had at
//! all, and what to do about it.

use std::path::PathBuf;

use super::host_mosquitto::Version;
use crate::diagnose::Diagnose;
use crate::output::sudo;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("there is no Mosquitto on this machine to build an image from{}", searched_list(searched, *explicit))]
    NoMosquitto {
        searched: Vec<PathBuf>,
        /// The path came from `--mosquitto` or `WOTT_MQTT_MOSQUITTO`.
        explicit: bool,
    },
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("refusing to copy {} into an image: {reason}", path.display())]
    Untrusted {
        path: PathBuf,
        reason: String,
        /// The file or folder whose owner or mode is wrong.
        culprit: PathBuf,
    },
    #[error("{} cannot be the Mosquitto binary: {reason}", path.display())]
    NotElf { path: PathBuf, reason: String },
    #[error("{} does not say it is Mosquitto (`-h` printed: {said:?})", path.display())]
    NotMosquitto { path: PathBuf, said: String },
    #[error("{} is Mosquitto {version}; wott-mqtt renders a configuration for Mosquitto 2.0 or later", path.display())]
    TooOld { path: PathBuf, version: Version },
    #[error("the loader {} cannot resolve the libraries of {}: {reason}", loader.display(), binary.display())]
    Loader {
        binary: PathBuf,
        loader: PathBuf,
        reason: String,
    },
    #[error("{} links {library}, which is not installed on this machine", binary.display())]
    LibraryMissing { binary: PathBuf, library: String },
    #[error("{tag:?} is not a valid image reference: {reason}")]
    InvalidTag { tag: String, reason: String },
    #[error("the tag {tag} already names an image that wott-mqtt did not build")]
    ForeignTag { tag: String },
    #[error("the container engine refused the image {tag}: {reason}")]
    ImportRefused { tag: String, reason: String },
    #[error(
        "the image {image} is not on this machine, no registry answered ({pull_reason}), \
         and no local image can be built: {build}"
    )]
    NoImage {
        image: String,
        pull_reason: String,
        build: Box<ImageError>,
    },
}

fn searched_list(searched: &[PathBuf], explicit: bool) -> String {
    let paths: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
    match (explicit, paths.is_empty()) {
        (_, true) => String::new(),
        (true, false) => format!(": {} is not a file", paths.join(", ")),
        (false, false) => format!(" (looked for {})", paths.join(", ")),
    }
}

/// The other way out when nothing can be pulled: the official image from a file.
fn docker_load() -> String {
    "load the official image from a file: on a machine that can pull, \
     `docker pull eclipse-mosquitto:2 && docker save eclipse-mosquitto:2 -o mosquitto.tar`, \
     then here `docker load -i mosquitto.tar`"
        .to_string()
}

impl Diagnose for ImageError {
    fn hint(&self) -> Option<String> {
        let sudo = sudo();
        Some(match self {
            ImageError::NoMosquitto { explicit: true, .. } => {
                "check the path given with --mosquitto (or WOTT_MQTT_MOSQUITTO), or leave it out \
                 to use the mosquitto on PATH or in /usr/sbin"
                    .into()
            }
            ImageError::NoMosquitto { .. } => format!(
                "install Mosquitto (`{sudo}apt-get install mosquitto`) and run the command again, \
                 or {}",
                docker_load()
            ),
            ImageError::Unreadable { .. } => {
                "point --mosquitto at a binary you can read, or run the command as root".into()
            }
            ImageError::Untrusted { culprit: path, .. } => format!(
                "make it root's and writable by root only (`{sudo}chown root: {p} && {sudo}chmod go-w {p}`), \
                 or point --mosquitto at another binary",
                p = path.display()
            ),
            ImageError::NotElf { .. } | ImageError::NotMosquitto { .. } => {
                "point --mosquitto (or WOTT_MQTT_MOSQUITTO) at the Mosquitto broker binary \
                 (Debian's is /usr/sbin/mosquitto)"
                    .into()
            }
            ImageError::TooOld { .. } => format!(
                "install Mosquitto 2 (Debian 11 and later ship it: `{sudo}apt-get install mosquitto`), \
                 or {}",
                docker_load()
            ),
            ImageError::Loader { .. } | ImageError::LibraryMissing { .. } => format!(
                "this Mosquitto cannot start here either: reinstall it with its libraries \
                 (`{sudo}apt-get install --reinstall mosquitto`), or {}",
                docker_load()
            ),
            ImageError::InvalidTag { .. } => {
                "use a reference such as wott-mqtt/mosquitto:2.0.11-local: lower-case name parts \
                 separated by `/`, then `:` and a tag"
                    .into()
            }
            ImageError::ForeignTag { tag } => format!(
                "choose another name with --tag, or remove that image first (`docker rmi {tag}`)"
            ),
            ImageError::ImportRefused { .. } => {
                "nothing was tagged; check the engine's free space (`docker system df`, \
                 `df -h /var/lib/docker`) and its log (`journalctl -u docker`), then run the \
                 command again"
                    .into()
            }
            ImageError::NoImage { build, .. } => {
                let hint = build.hint().unwrap_or_default();
                if hint.contains("docker load") {
                    hint
                } else {
                    format!("{hint}; or {}", docker_load())
                }
            }
        })
    }
}
