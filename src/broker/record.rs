//! The broker of a server dir, remembered.
//!
//! A server dir has one broker. `server up` records the settings it was
//! given in `<server-dir>/broker.json` (name, image, bind address, port,
//! limits, and the user it runs as), so that every later command finds the same broker without
//! `--name`, and a later `server up` without flags keeps the settings and
//! changes only what a flag names: `wott-mqtt -q server up` from a timer
//! can no longer replace a broker started with `--name`/`--port`/`--image`
//! by one with the defaults.
//!
//! The order is always: a flag (or its environment variable), else the
//! record, else the managed container that mounts the server dir (brokers
//! started before the record existed carry the server dir in a label), else
//! the default. The image is recorded as asked for: `--image` names one,
//! and without it the image policy chooses each time (so a local image is
//! rebuilt when this machine's Mosquitto changes). An empty flag counts as
//! unset, as everywhere; `"image": null` in the record goes back to the
//! policy.
//!
//! The record is root's (or the invoking user's) like the server dir, read
//! without following a link, and refused when another user may have
//! written it: it decides which container a command stops or signals.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::ServerDir;
use super::docker::{Container, Engine};
use super::image::LOCAL_REPOSITORY;
use super::image_policy::ImageRequest;
use super::run_as::invoker;
use super::running::spec_of;
use super::server_dir::{FileChange, absolute, server_dir_error, trust};
use super::{
    BrokerError, ContainerSpec, DEFAULT_NAME, DEFAULT_PORT, LABEL_MANAGED_BY, LABEL_SERVER_DIR,
    Limits, MANAGED_BY, RunAs,
};
use crate::files::dir::{Dir, Entry};
use crate::files::unified_diff;

/// The record's file name in the server dir.
pub const RECORD_FILE: &str = "broker.json";

/// What `server up` was given: the broker of the server dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The container's name.
    pub name: String,
    /// The image `--image` named; `None`: the image policy chooses.
    pub image: Option<String>,
    /// The Mosquitto binary a local image is built from (`--mosquitto`).
    pub mosquitto: Option<PathBuf>,
    pub bind: IpAddr,
    pub port: u16,
    /// The container's `User` (`uid:gid`), as [`RunAs::container_user`]
    /// writes it. Not kept: who runs `server up` decides it (root: the
    /// image's uid 1883; a user of the `docker` group: that user), as the
    /// server dir's owner must be the one who runs it anyway.
    pub user: String,
    /// Bytes of memory.
    pub memory: i64,
    pub pids_limit: i64,
}

impl Default for Settings {
    /// `server up` with no flags, run by this user.
    fn default() -> Self {
        let limits = Limits::default();
        Settings {
            name: DEFAULT_NAME.to_string(),
            image: None,
            mosquitto: None,
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: DEFAULT_PORT,
            user: RunAs::for_invoker().container_user(),
            memory: limits.memory,
            pids_limit: limits.pids,
        }
    }
}

impl Settings {
    /// The container these settings make (the image as asked for; the
    /// policy may choose another).
    pub fn spec(&self) -> ContainerSpec {
        ContainerSpec {
            name: self.name.clone(),
            image: self.image_request().reference().to_string(),
            bind: self.bind,
            port: self.port,
            run_as: self.run_as(),
            limits: Limits {
                memory: self.memory,
                pids: self.pids_limit,
            },
        }
    }

    pub fn image_request(&self) -> ImageRequest {
        match &self.image {
            Some(image) => ImageRequest::Given(image.clone()),
            None => ImageRequest::Default {
                mosquitto: self.mosquitto.clone(),
            },
        }
    }

    /// Who Mosquitto runs as; a user the record cannot name is this user.
    pub fn run_as(&self) -> RunAs {
        RunAs::from_container_user(&self.user).unwrap_or_else(RunAs::for_invoker)
    }

    /// The record's bytes: pretty JSON and a final newline, for people who
    /// read it and for the diff of a dry run.
    fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("settings serialize");
        bytes.push(b'\n');
        bytes
    }
}

/// The flags a command was given: `None` where it was not.
#[derive(Debug, Clone, Default)]
pub struct Requested {
    pub name: Option<String>,
    /// Empty counts as unset.
    pub image: Option<String>,
    pub mosquitto: Option<PathBuf>,
    pub bind: Option<IpAddr>,
    pub port: Option<u16>,
    pub memory: Option<i64>,
    pub pids_limit: Option<i64>,
}

/// The settings a `server up` runs with, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    pub settings: Settings,
    /// The settings taken from the record, by flag name (`port`, `image`, …).
    pub kept: Vec<&'static str>,
    /// The broker the record named before, when a flag renames it: it is
    /// removed, so that the server dir keeps one broker.
    pub renamed_from: Option<String>,
}

impl Requested {
    /// The image as a request already decided it (for a broker without a
    /// record: `demo`'s).
    pub fn with_image(self, request: &ImageRequest) -> Requested {
        let (image, mosquitto) = match request {
            ImageRequest::Given(image) => (Some(image.clone()), None),
            ImageRequest::Default { mosquitto } => (None, mosquitto.clone()),
        };
        Requested {
            image,
            mosquitto: mosquitto.or(self.mosquitto),
            ..self
        }
    }

    /// Each setting from its flag, else from `recorded`, else the default.
    pub fn over(self, recorded: Option<&Settings>) -> Resolved {
        let defaults = Settings::default();
        let base = recorded.unwrap_or(&defaults);
        let mut kept = Vec::new();
        let mut pick = |flag: &'static str, given: bool| {
            if !given && recorded.is_some() {
                kept.push(flag);
            }
        };
        pick("name", self.name.is_some());
        let image = self.image.filter(|i| !i.is_empty());
        pick("image", image.is_some());
        pick("bind", self.bind.is_some());
        pick("port", self.port.is_some());
        pick("memory", self.memory.is_some());
        pick("pids-limit", self.pids_limit.is_some());
        let image = image.or_else(|| base.image.clone());
        let settings = Settings {
            name: self.name.unwrap_or_else(|| base.name.clone()),
            mosquitto: self.mosquitto.or_else(|| base.mosquitto.clone()),
            image,
            bind: self.bind.unwrap_or(base.bind),
            port: self.port.unwrap_or(base.port),
            user: defaults.user.clone(),
            memory: self.memory.unwrap_or(base.memory),
            pids_limit: self.pids_limit.unwrap_or(base.pids_limit),
        };
        let renamed_from = recorded
            .filter(|r| r.name != settings.name)
            .map(|r| r.name.clone());
        Resolved {
            settings,
            kept,
            renamed_from,
        }
    }
}

/// The server dir's record, if there is one.
pub fn read(server_dir: &Path) -> Result<Option<Settings>, BrokerError> {
    let dir = match Dir::open(server_dir) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(server_dir_error(server_dir, &e)),
    };
    let path = server_dir.join(RECORD_FILE);
    let bytes = match dir.read(RECORD_FILE) {
        Ok(Entry::Missing) => return Ok(None),
        Ok(Entry::File { bytes, mode, owner }) => {
            if let Err(e) = trusted(&path, mode, owner.0) {
                // The folder's own refusal first, when it is the cause.
                trust(server_dir, true)?;
                return Err(e);
            }
            bytes
        }
        Ok(Entry::Other(what)) => return Err(untrusted(&path, 0, 0, &format!("it is {what}"))),
        Err(e) => return Err(server_dir_error(&path, &e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| BrokerError::BadRecord {
            path,
            reason: e.to_string(),
        })
}

fn trusted(path: &Path, mode: u32, uid: u32) -> Result<(), BrokerError> {
    let me = invoker().0;
    if uid != 0 && uid != me {
        return Err(untrusted(path, uid, mode, "it belongs to another user"));
    }
    if mode & 0o022 != 0 {
        return Err(untrusted(path, uid, mode, "other users may write to it"));
    }
    Ok(())
}

fn untrusted(path: &Path, uid: u32, mode: u32, reason: &str) -> BrokerError {
    BrokerError::UntrustedServerDir {
        path: path.to_path_buf(),
        uid,
        mode,
        reason: reason.to_string(),
    }
}

/// Records `settings` in the server dir (0644, the invoking user's, never
/// through a link), or in a dry run only says what would change.
pub(crate) fn write(
    dir: &ServerDir,
    settings: &Settings,
    dry_run: bool,
) -> Result<FileChange, BrokerError> {
    let path = dir.path().join(RECORD_FILE);
    let after = settings.to_bytes();
    let handle = match Dir::open(dir.path()) {
        Ok(handle) => Some(handle),
        Err(e) if dry_run && e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(server_dir_error(dir.path(), &e)),
    };
    let before = match handle.as_ref().map(|h| h.read(RECORD_FILE)) {
        None | Some(Ok(Entry::Missing)) => None,
        Some(Ok(Entry::File { bytes, .. })) => Some(bytes),
        // A link or a folder in its place is replaced, never followed.
        Some(Ok(Entry::Other(_))) => Some(Vec::new()),
        Some(Err(e)) => return Err(server_dir_error(&path, &e)),
    };
    let changed = before.as_deref() != Some(after.as_slice());
    if changed
        && !dry_run
        && let Some(handle) = &handle
    {
        handle
            .replace(RECORD_FILE, &after, 0o644, invoker())
            .map_err(|e| server_dir_error(&path, &e))?;
    }
    Ok(FileChange {
        change: match (&before, changed) {
            (None, _) => "created",
            (Some(_), true) => "updated",
            (Some(_), false) => "unchanged",
        },
        diff: (dry_run && changed).then(|| {
            unified_diff(
                &path.display().to_string(),
                before.as_deref().unwrap_or_default(),
                &after,
            )
        }),
        path,
    })
}

/// The container a command acts on: `--name`, else the record's, else the
/// managed container that mounts the server dir (one started before the
/// record existed), else the default.
pub async fn broker_name(
    engine: &Engine,
    server_dir: &Path,
    flag: Option<&str>,
) -> Result<String, BrokerError> {
    if let Some(name) = flag {
        return Ok(name.to_string());
    }
    if let Some(settings) = read(server_dir)? {
        return Ok(settings.name);
    }
    Ok(mounting(engine, server_dir)
        .await?
        .map_or_else(|| DEFAULT_NAME.to_string(), |c| c.name))
}

/// The server dir's settings: its record, else those of the managed
/// container that mounts it (started before the record existed, so that a
/// bare `server up` keeps that broker as it is too), else none. Without an
/// engine to ask, the record alone.
pub async fn recall(server_dir: &Path) -> Result<Option<Settings>, BrokerError> {
    let server_dir = absolute(server_dir)?;
    if let Some(settings) = read(&server_dir)? {
        return Ok(Some(settings));
    }
    let Ok(engine) = Engine::connect().await else {
        return Ok(None);
    };
    let Some(container) = mounting(&engine, &server_dir).await? else {
        return Ok(None);
    };
    Ok(spec_of(&container).ok().map(|spec| Settings {
        name: spec.name,
        // The local image is the policy's choice: let it choose again.
        image: (!spec.image.starts_with(LOCAL_REPOSITORY)).then_some(spec.image),
        mosquitto: None,
        bind: spec.bind,
        port: spec.port,
        user: spec.run_as.container_user(),
        memory: spec.limits.memory,
        pids_limit: spec.limits.pids,
    }))
}

/// The one managed container that mounts `server_dir`, in any state.
async fn mounting(engine: &Engine, server_dir: &Path) -> Result<Option<Container>, BrokerError> {
    let dir = server_dir.display().to_string();
    let found = engine
        .with_labels(&[(LABEL_MANAGED_BY, MANAGED_BY), (LABEL_SERVER_DIR, &dir)])
        .await?;
    match found.as_slice() {
        [(id, _)] => engine.container(id).await,
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> Settings {
        Settings {
            name: "edge-broker".into(),
            image: Some("registry.local/mosquitto:2.0.18".into()),
            port: 8884,
            ..Settings::default()
        }
    }

    #[test]
    fn without_a_record_the_flags_and_defaults_decide() {
        let resolved = Requested {
            port: Some(9000),
            ..Requested::default()
        }
        .over(None);
        assert_eq!(resolved.settings.port, 9000);
        assert_eq!(resolved.settings.name, DEFAULT_NAME);
        assert!(resolved.kept.is_empty());
        assert_eq!(resolved.renamed_from, None);
    }

    #[test]
    fn a_record_keeps_what_no_flag_names() {
        let resolved = Requested {
            memory: Some(512 << 20),
            ..Requested::default()
        }
        .over(Some(&recorded()));
        assert_eq!(resolved.settings.name, "edge-broker");
        assert_eq!(resolved.settings.port, 8884);
        assert_eq!(
            resolved.settings.image.as_deref(),
            Some("registry.local/mosquitto:2.0.18")
        );
        assert_eq!(resolved.settings.memory, 512 << 20);
        assert_eq!(
            resolved.kept,
            ["name", "image", "bind", "port", "pids-limit"]
        );
    }

    #[test]
    fn an_empty_image_counts_as_unset_and_a_new_name_renames() {
        let resolved = Requested {
            image: Some(String::new()),
            name: Some("other".into()),
            ..Requested::default()
        }
        .over(Some(&recorded()));
        assert_eq!(resolved.settings.image, recorded().image);
        assert!(resolved.kept.contains(&"image"));
        assert_eq!(resolved.renamed_from.as_deref(), Some("edge-broker"));
        let null: Settings = serde_json::from_str(r#"{"image": null}"#).unwrap();
        assert_eq!(null.image, None);
    }

    #[test]
    fn a_record_reads_back_and_missing_fields_take_the_defaults() {
        let bytes = recorded().to_bytes();
        assert_eq!(
            serde_json::from_slice::<Settings>(&bytes).unwrap(),
            recorded()
        );
        let partial: Settings = serde_json::from_str(r#"{"name": "x"}"#).unwrap();
        assert_eq!(partial.port, DEFAULT_PORT);
    }
}
