//! `doctor`'s arguments.

use std::path::PathBuf;

use clap::Args;
use clap::builder::NonEmptyStringValueParser;

use super::HostsFileArgs;
use super::server::ContainerName;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The broker this device is a client of: its device ID [default: every *.d.wott.local name in the hosts file]
    #[arg(long, env = "MQTT_SERVER", value_name = "SERVER_ID", value_parser = NonEmptyStringValueParser::new())]
    pub server: Option<String>,

    /// The broker's TLS port, for the client probe
    #[arg(long, env = "MQTT_PORT", default_value_t = 8883)]
    pub port: u16,

    /// The topic the client probe subscribes to
    #[arg(long, env = "MQTT_TOPIC", default_value = "wott/temperature")]
    pub topic: String,

    /// Fail (exit 13) on warnings too, not only on failures
    #[arg(long)]
    pub strict: bool,

    /// Give up on each network probe after SECS
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub timeout: u64,

    /// Also write a tar.gz for support (mode 0600; no key material) to FILE
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,

    /// Leave permissions.acl out of the bundle
    #[arg(long, requires = "bundle")]
    pub no_acl: bool,

    /// How many of the broker's last log lines the bundle holds
    #[arg(long, value_name = "N", default_value_t = 500, requires = "bundle")]
    pub log_lines: u64,

    #[command(flatten)]
    pub container: ContainerName,

    #[command(flatten)]
    pub file: HostsFileArgs,
}
