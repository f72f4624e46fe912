//! The files the broker reads, rendered from the templates built into the binary.
//!
//! `mosquitto.conf` is ours: it is rendered on every `server up`, so a new
//! release can fix it, and the container is recreated when it changes.
//! `permissions.acl` is the user's: it is written once from its template and
//! never again (`acl allow` / `acl revoke` edit it).
//!
//! Paths in the rendered config are the ones *inside* the container, where
//! the server dir is mounted at [`CONFIG_DIR`] and its `certs/` at [`CERTS_DIR`].

use std::path::{Path, PathBuf};

use super::CONTAINER_PORT;

const MOSQUITTO_CONF_TEMPLATE: &str = include_str!("../../templates/mosquitto.conf");
const PERMISSIONS_ACL_TEMPLATE: &str = include_str!("../../templates/permissions.acl");

/// Where the server dir is mounted in the container (read-only).
pub const CONFIG_DIR: &str = "/mosquitto/config";
/// Where the staged certificates are mounted in the container (read-only).
pub const CERTS_DIR: &str = "/mosquitto/certs";
/// Mosquitto's persistence folder in the container; `<server-dir>/data` on the host.
pub const DATA_DIR: &str = "/mosquitto/data";
/// Mosquitto's log folder in the container; `<server-dir>/log` on the host
/// when it runs as a user (see [`super::RunAs`]).
pub const LOG_DIR: &str = "/mosquitto/log";

pub const CONF_FILE: &str = "mosquitto.conf";
pub const ACL_FILE: &str = "permissions.acl";
pub const CERTS_SUBDIR: &str = "certs";
pub const DATA_SUBDIR: &str = "data";
pub const LOG_SUBDIR: &str = "log";

/// The first line of a rendered `mosquitto.conf`: how `server down --purge`
/// knows a folder is one wott-mqtt made.
pub const MANAGED_MARKER: &str = "# Managed by wott-mqtt";

/// The managed broker's folder on the host and the paths inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDir(PathBuf);

impl ServerDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ServerDir(path.into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn conf_path(&self) -> PathBuf {
        self.0.join(CONF_FILE)
    }

    pub fn acl_path(&self) -> PathBuf {
        self.0.join(ACL_FILE)
    }

    pub fn certs_dir(&self) -> PathBuf {
        self.0.join(CERTS_SUBDIR)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.0.join(DATA_SUBDIR)
    }

    pub fn log_dir(&self) -> PathBuf {
        self.0.join(LOG_SUBDIR)
    }
}

/// `mosquitto.conf` as the container needs it.
pub fn mosquitto_conf() -> String {
    render(
        MOSQUITTO_CONF_TEMPLATE,
        &[
            ("listener_port", &CONTAINER_PORT.to_string()),
            ("certs_dir", CERTS_DIR),
            ("config_dir", CONFIG_DIR),
        ],
    )
}

/// The `permissions.acl` a new server dir starts with: comments only, so
/// every client is denied until `acl allow` grants it a topic.
pub fn initial_acl() -> &'static str {
    PERMISSIONS_ACL_TEMPLATE
}

/// Replaces each `{{name}}` with its value. The templates are ours and the
/// tests render them, so an unknown placeholder is a bug caught there.
fn render(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |text, (name, value)| {
            text.replace(&format!("{{{{{name}}}}}"), value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_has_every_setting_the_tutorial_needs() {
        let conf = mosquitto_conf();
        assert!(!conf.contains("{{"), "unrendered placeholder:\n{conf}");
        assert!(conf.starts_with(MANAGED_MARKER));
        let lines: Vec<&str> = conf.lines().collect();
        for expected in [
            "listener 8883",
            "cafile /mosquitto/certs/ca.crt",
            "certfile /mosquitto/certs/client.crt",
            "keyfile /mosquitto/certs/client.key",
            "tls_version tlsv1.2",
            "require_certificate true",
            "use_identity_as_username true",
            "acl_file /mosquitto/config/permissions.acl",
            "persistence_location /mosquitto/data/",
            "log_dest file /mosquitto/log/mosquitto.log",
            "log_dest stderr",
            "set_tcp_nodelay true",
        ] {
            assert!(lines.contains(&expected), "missing {expected:?}:\n{conf}");
        }
        assert!(
            !lines.iter().any(|l| l.starts_with("port ")),
            "`port` is deprecated in Mosquitto 2"
        );
    }

    #[test]
    fn the_initial_acl_grants_nothing() {
        let rules: Vec<&str> = initial_acl()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(rules.is_empty(), "{rules:?}");
    }
}
