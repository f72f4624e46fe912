//! `server`'s arguments: the broker's lifecycle. Every setting of
//! `server up` is an `Option`: a flag left out keeps what the server dir's
//! record says (`broker::record`), else the default shown in the help.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::ImageArgs;
use crate::broker;

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Start the broker, or bring it in line with this device's identity
    ///
    /// Renders mosquitto.conf (and a first permissions.acl) into the server
    /// dir, stages copies of the certificates the broker can read, pulls the
    /// image if needed, creates or reuses the container, and waits until a
    /// real mTLS CONNECT gets a CONNACK. Safe to re-run: when nothing changed,
    /// nothing is touched.
    ///
    /// The settings it was given are recorded in <server-dir>/broker.json: the
    /// other commands find this broker without --name, and a later `server up`
    /// keeps every setting no flag names.
    Up(ServerUpArgs),
    /// Stop and remove the broker's container; the server dir stays unless --purge
    Down(ServerDownArgs),
    /// The container's state, and the certificate the broker serves, read over TLS
    Status(ServerStatusArgs),
    /// Print the broker's log
    Logs(ServerLogsArgs),
    /// Stage the certificates again and make the broker reload them (SIGHUP)
    ///
    /// Run it after the agent renews the certificate; the broker also
    /// re-reads permissions.acl.
    Reload(ServerReloadArgs),
    /// Build a local Mosquitto image from this machine's Mosquitto, for engines that cannot pull
    ///
    /// It has the layout of eclipse-mosquitto:2 and holds this machine's mosquitto with
    /// every library it links; it is built again only when one of them changed. server
    /// up, setup server and demo use it by themselves when nothing can be pulled.
    Image(ServerImageArgs),
}

/// The container to act on.
#[derive(Debug, Args)]
pub struct ContainerName {
    /// The broker's container name [default: the server dir's broker, as `server up` recorded it; else wott-mosquitto]
    #[arg(long, value_name = "NAME", value_parser = parse_container_name)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServerUpArgs {
    #[command(flatten)]
    pub container: ContainerName,

    #[command(flatten)]
    pub image: ImageArgs,

    /// The host address to publish the broker on [default: as recorded; else 0.0.0.0]
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<IpAddr>,

    /// The host port to publish the broker on (clients' MQTT_PORT) [default: as recorded; else 8883]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    #[command(flatten)]
    pub run: UpRunArgs,
}

/// How `server up` (and `setup server`) goes about it.
#[derive(Debug, Args)]
pub struct UpRunArgs {
    /// The container's memory limit, in bytes or with k, M or G (at least 6M) [default: as recorded; else 256M]
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub memory: Option<i64>,

    /// The most processes and threads the container may run [default: as recorded; else 64]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(8..=100_000))]
    pub pids_limit: Option<i64>,

    /// Remove a container of that name that wott-mqtt did not create
    #[arg(long)]
    pub replace: bool,

    /// Print what would change (diffs and container actions) and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Seconds to wait for the broker to accept an mTLS CONNECT
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct ServerImageArgs {
    /// The image's tag [default: wott-mqtt/mosquitto:<version>-local]
    #[arg(long, value_name = "TAG", value_parser = parse_tag)]
    pub tag: Option<String>,

    /// The Mosquitto binary to build from [default: mosquitto on PATH, then in the sbin folders]
    #[arg(long, env = "WOTT_MQTT_MOSQUITTO", value_name = "PATH")]
    pub mosquitto: Option<PathBuf>,

    /// Say what would be built and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ServerDownArgs {
    #[command(flatten)]
    pub container: ContainerName,

    /// Also remove the server dir: mosquitto.conf, permissions.acl, staged certificates, data
    #[arg(long)]
    pub purge: bool,

    /// Print what would be removed and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ServerStatusArgs {
    #[command(flatten)]
    pub container: ContainerName,

    /// Seconds to wait for the broker's TLS handshake
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct ServerLogsArgs {
    #[command(flatten)]
    pub container: ContainerName,

    /// Keep printing new lines until interrupted
    #[arg(short, long)]
    pub follow: bool,

    /// Print only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ServerReloadArgs {
    #[command(flatten)]
    pub container: ContainerName,

    /// Print what would be staged and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Seconds to wait for the broker to serve the staged certificate
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub(crate) fn parse_container_name(value: &str) -> Result<String, String> {
    let mut chars = value.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(value.to_string())
    } else {
        Err("a container name starts with a letter or digit and holds only letters, digits, `_`, `.` and `-`".into())
    }
}

/// `256M`, `1G`, `512k` or plain bytes; Docker refuses less than 6 MiB.
fn parse_memory(value: &str) -> Result<i64, String> {
    let (number, unit) = match value.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&value[..at], c.to_ascii_lowercase()),
        _ => (value, 'b'),
    };
    let factor: i64 = match unit {
        'b' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return Err("a size such as 256M or 1G (units k, M, G)".into()),
    };
    let bytes = number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or("a size such as 256M or 1G (units k, M, G)")?;
    if bytes < 6 << 20 {
        return Err("at least 6M: Docker refuses a smaller memory limit".into());
    }
    Ok(bytes)
}

/// A tag for `server image`, checked as the engine would.
fn parse_tag(value: &str) -> Result<String, String> {
    broker::parse_tag(value).map_err(|e| match e {
        broker::ImageError::InvalidTag { reason, .. } => {
            format!("{reason}; e.g. wott-mqtt/mosquitto:2.0.11-local")
        }
        other => other.to_string(),
    })
}
