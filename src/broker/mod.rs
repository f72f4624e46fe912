//! The managed Mosquitto broker: its files, and its container.
//!
//! `server up` must get a secure broker running the first time and every
//! time, and say exactly why when it cannot. So the lifecycle is: validate
//! the identity, reach the engine, refuse a container we did not create,
//! make sure the image is there, render the config and stage the
//! certificates ([`config`], [`stage`]), then create, start, recreate or
//! reload the container only as far as needed, and wait until a real mTLS
//! CONNECT gets a CONNACK. A container that dies on the way is explained
//! from its log ([`diagnose`]).
//!
//! A container is ours when it carries [`LABEL_MANAGED_BY`]; it records the
//! server dir and a hash of everything it was created from, so a second
//! `server up` with the same inputs changes nothing, and one with other
//! inputs recreates it.

pub mod config;
pub mod diagnose;
pub mod docker;
mod down;
pub mod drift;
mod error;
mod host_mosquitto;
mod image;
mod image_archive;
mod image_error;
mod image_policy;
mod preflight;
pub mod ready;
pub mod record;
mod reload;
mod run_as;
mod running;
mod server_dir;
pub mod sighup;
pub mod stage;
mod start;
mod status;
mod up;
mod wait;
pub mod watch;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::identity::CertDir;
use crate::output::{Output, shell_word};

pub use config::ServerDir;
pub use down::{DownOptions, DownReport, down};
pub use error::BrokerError;
pub use image::{ImageOptions, ImageReport, LOCAL_REPOSITORY, local_image, parse_tag};
pub use image_error::ImageError;
pub use image_policy::{ImageChoice, ImageRequest};
pub use preflight::preflight;
pub use reload::{Applied, ReloadOptions, ReloadReport, reload, reload_after_acl_edit};
pub use run_as::RunAs;
pub use server_dir::{FileChange, check_trust};
pub use status::{StatusReport, logs, status};
pub use up::{Action, UpOptions, UpReport, up};

/// What every server command works with.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub cert_dir: &'a CertDir,
    pub server_dir: &'a Path,
    pub output: &'a Output,
}

/// The managed broker's folder when `--server-dir` / `WOTT_MQTT_SERVER_DIR` is unset.
pub const DEFAULT_SERVER_DIR: &str = "/opt/wott/mosquitto";

impl Context<'_> {
    /// A wott-mqtt command to print as a next step, e.g. `server reload`:
    /// with `sudo` unless this is root, and with the cert dir and server dir
    /// when they are not the defaults, so that it acts on this same broker
    /// exactly as printed.
    pub fn command(&self, rest: &str) -> String {
        let mut line = format!("{}wott-mqtt", crate::output::sudo());
        let flags = [
            (
                "--cert-dir",
                self.cert_dir.path(),
                crate::identity::DEFAULT_CERT_DIR,
            ),
            ("--server-dir", self.server_dir, DEFAULT_SERVER_DIR),
        ];
        for (flag, path, default) in flags {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            if path != Path::new(default) {
                line.push_str(&format!(
                    " {flag} {}",
                    shell_word(&path.display().to_string())
                ));
            }
        }
        line.push(' ');
        line.push_str(rest);
        line
    }
}

/// The port Mosquitto listens on inside the container; `--port` maps a host port to it.
pub const CONTAINER_PORT: u16 = 8883;
pub const DEFAULT_IMAGE: &str = "eclipse-mosquitto:2";
pub const DEFAULT_NAME: &str = "wott-mosquitto";
pub const DEFAULT_PORT: u16 = 8883;

/// Marks containers wott-mqtt created; the value is `wott-mqtt`.
pub const LABEL_MANAGED_BY: &str = "org.wott-mqtt.managed-by";
/// The absolute server dir the container mounts.
pub const LABEL_SERVER_DIR: &str = "org.wott-mqtt.server-dir";
/// SHA-256 of everything the container was created from ([`ContainerSpec::config_hash`]).
pub const LABEL_CONFIG_HASH: &str = "org.wott-mqtt.config-hash";
const MANAGED_BY: &str = "wott-mqtt";

/// Bump when the container's shape changes in a way the other inputs do not
/// show. 2: the hardened container (no capabilities, no new privileges, a
/// read-only root filesystem, limits, uid 1883 from the start).
const SPEC_VERSION: u32 = 2;

/// The memory and process limits of the broker's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Bytes of memory (`--memory`).
    pub memory: i64,
    /// Processes and threads (`--pids-limit`).
    pub pids: i64,
}

impl Default for Limits {
    /// Mosquitto is one process of a few threads; 1,000 connected clients
    /// take tens of megabytes.
    fn default() -> Self {
        Limits {
            memory: 256 * 1024 * 1024,
            pids: 64,
        }
    }
}

/// What the broker's container is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Host address to publish on (`--bind`).
    pub bind: IpAddr,
    /// Host port (`--port`), published to [`CONTAINER_PORT`].
    pub port: u16,
    /// Who Mosquitto runs as; [`RunAs::for_invoker`] unless told otherwise.
    pub run_as: RunAs,
    pub limits: Limits,
}

impl ContainerSpec {
    /// A hash of the spec, the image it resolves to now, the absolute server
    /// dir and the rendered `mosquitto.conf`: a change in any needs a new
    /// container.
    pub fn config_hash(&self, image_id: &str, server_dir: &Path, conf: &[u8]) -> String {
        let text = format!(
            "spec-version={SPEC_VERSION}\nimage={}\nimage-id={image_id}\nbind={}\nport={}\n\
             server-dir={}\nmosquitto.conf-sha256={}\nuser={}\nmemory={}\npids={}\n",
            self.image,
            self.bind,
            self.port,
            server_dir.display(),
            hex(ring::digest::digest(&ring::digest::SHA256, conf).as_ref()),
            self.run_as.container_user(),
            self.limits.memory,
            self.limits.pids,
        );
        hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())
    }

    fn labels(&self, server_dir: &Path, hash: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
            (
                LABEL_SERVER_DIR.to_string(),
                server_dir.display().to_string(),
            ),
            (LABEL_CONFIG_HASH.to_string(), hash.to_string()),
        ])
    }

    /// The server dir, read-only at /mosquitto/config; `certs/` read-only at
    /// /mosquitto/certs; `data/` at /mosquitto/data and `log/` at
    /// /mosquitto/log, the only places Mosquitto writes (the container's own
    /// filesystem is read-only). Directories only: a single-file mount keeps
    /// showing the old file after an atomic rename.
    fn mounts(&self, server_dir: &ServerDir) -> Vec<docker::BindMount> {
        let mount = |source: PathBuf, target: &str, read_only| docker::BindMount {
            source: source.display().to_string(),
            target: target.to_string(),
            read_only,
        };
        vec![
            mount(server_dir.path().to_path_buf(), config::CONFIG_DIR, true),
            mount(server_dir.certs_dir(), config::CERTS_DIR, true),
            mount(server_dir.data_dir(), config::DATA_DIR, false),
            mount(server_dir.log_dir(), config::LOG_DIR, false),
        ]
    }

    /// The folders of the server dir Mosquitto writes to, which its user must own.
    fn writable_dirs(&self) -> [&'static str; 2] {
        [config::DATA_SUBDIR, config::LOG_SUBDIR]
    }
}

impl docker::Container {
    /// Whether wott-mqtt created this container.
    pub fn is_managed(&self) -> bool {
        self.label(LABEL_MANAGED_BY) == Some(MANAGED_BY)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: DEFAULT_NAME.into(),
            image: DEFAULT_IMAGE.into(),
            bind: IpAddr::from([0, 0, 0, 0]),
            port: DEFAULT_PORT,
            run_as: RunAs::Image,
            limits: Limits::default(),
        }
    }

    #[test]
    fn the_hash_changes_with_every_input_and_only_then() {
        let dir = Path::new("/opt/wott/mosquitto");
        let base = spec().config_hash("sha256:a", dir, b"conf");
        assert_eq!(base, spec().config_hash("sha256:a", dir, b"conf"));
        assert_eq!(base.len(), 64);
        let others = [
            spec().config_hash("sha256:b", dir, b"conf"),
            spec().config_hash("sha256:a", Path::new("/srv/mq"), b"conf"),
            spec().config_hash("sha256:a", dir, b"conf2"),
            ContainerSpec {
                port: 8884,
                ..spec()
            }
            .config_hash("sha256:a", dir, b"conf"),
            ContainerSpec {
                bind: IpAddr::from([127, 0, 0, 1]),
                ..spec()
            }
            .config_hash("sha256:a", dir, b"conf"),
            ContainerSpec {
                image: "eclipse-mosquitto:2.0.18".into(),
                ..spec()
            }
            .config_hash("sha256:a", dir, b"conf"),
            ContainerSpec {
                run_as: RunAs::User {
                    uid: 1000,
                    gid: 1000,
                },
                ..spec()
            }
            .config_hash("sha256:a", dir, b"conf"),
        ];
        for other in others {
            assert_ne!(base, other);
        }
        let user = |uid, gid| {
            ContainerSpec {
                run_as: RunAs::User { uid, gid },
                ..spec()
            }
            .config_hash("sha256:a", dir, b"conf")
        };
        assert_ne!(user(1000, 1000), user(1001, 1000));
        assert_ne!(user(1000, 1000), user(1000, 1001));
    }

    #[test]
    fn containers_of_earlier_releases_are_recreated_hardened() {
        // The hash of a root-run container from before the hardening: an
        // upgrade must recreate it (capabilities and limits are fixed at
        // creation).
        let text = "spec-version=1\nimage=eclipse-mosquitto:2\nimage-id=sha256:a\nbind=0.0.0.0\n\
                    port=8883\nserver-dir=/opt/wott/mosquitto\nmosquitto.conf-sha256=";
        let conf = hex(ring::digest::digest(&ring::digest::SHA256, b"conf").as_ref());
        let old = hex(ring::digest::digest(
            &ring::digest::SHA256,
            format!("{text}{conf}\n").as_bytes(),
        )
        .as_ref());
        let now = spec().config_hash("sha256:a", Path::new("/opt/wott/mosquitto"), b"conf");
        assert_ne!(now, old);
        let limited = ContainerSpec {
            limits: Limits {
                memory: 512 << 20,
                pids: 64,
            },
            ..spec()
        };
        assert_ne!(
            limited.config_hash("sha256:a", Path::new("/opt/wott/mosquitto"), b"conf"),
            now
        );
    }

    #[test]
    fn a_user_broker_gets_its_own_log_folder() {
        let dir = ServerDir::new("/srv/mq");
        let targets = |spec: &ContainerSpec| -> Vec<String> {
            spec.mounts(&dir).into_iter().map(|m| m.target).collect()
        };
        assert_eq!(
            targets(&spec()),
            [
                "/mosquitto/config",
                "/mosquitto/certs",
                "/mosquitto/data",
                "/mosquitto/log"
            ]
        );
        let user = ContainerSpec {
            run_as: RunAs::User { uid: 7, gid: 7 },
            ..spec()
        };
        assert_eq!(
            targets(&user),
            [
                "/mosquitto/config",
                "/mosquitto/certs",
                "/mosquitto/data",
                "/mosquitto/log"
            ]
        );
        assert_eq!(user.writable_dirs().len(), 2);
    }
}
