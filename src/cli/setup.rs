//! `setup`'s arguments: the role, and the broker's flags that go before or
//! after it (`setup --image IMG server`, `setup server --port 8884`).

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{HostsFileArgs, UpRunArgs, parse_container_name, parse_image};

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(subcommand)]
    pub role: Option<SetupRole>,

    /// Take the defaults for unanswered questions that have one, and do not ask for confirmation
    #[arg(short, long, global = true)]
    pub yes: bool,

    #[command(flatten)]
    pub file: HostsFileArgs,

    #[command(flatten)]
    pub broker: SetupBrokerArgs,
}

/// The broker's flags, before or after the role.
#[derive(Debug, Clone, Default, Args)]
pub struct SetupBrokerArgs {
    /// The broker's container name (server role) [default: wott-mosquitto]
    #[arg(long, global = true, value_name = "NAME", value_parser = parse_container_name)]
    pub name: Option<String>,

    /// The Mosquitto 2 image to run (server role) [default: see `server up --help`]
    #[arg(long, global = true, env = "WOTT_MQTT_IMAGE", value_name = "IMAGE", value_parser = parse_image)]
    pub image: Option<String>,

    /// The Mosquitto binary a local image is built from (server role) [default: on PATH, /usr/sbin]
    #[arg(long, global = true, env = "WOTT_MQTT_MOSQUITTO", value_name = "PATH")]
    pub mosquitto: Option<PathBuf>,

    /// The host address to publish the broker on (server role) [default: 0.0.0.0]
    #[arg(long, global = true, value_name = "ADDR")]
    pub bind: Option<IpAddr>,

    /// The broker's port: the server publishes it, a client connects to it [default: 8883]
    #[arg(long, global = true, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum SetupRole {
    /// This device is the broker: grant client devices, start Mosquitto, print what clients run
    Server(SetupServerArgs),
    /// This device is a client: write the hosts entry for the server, then check the connection
    Client(SetupClientArgs),
}

#[derive(Debug, Args)]
pub struct SetupServerArgs {
    /// Grant a client device (repeatable): ID, ID:TOPIC or ID:TOPIC:ACCESS
    /// (TOPIC defaults to wott/temperature, ACCESS to read)
    #[arg(long = "allow", value_name = "ID[:TOPIC[:ACCESS]]")]
    pub allow: Vec<String>,

    /// Do not install the systemd service that applies the agent's renewals (`server watch`)
    #[arg(long)]
    pub no_watch: bool,

    #[command(flatten)]
    pub run: UpRunArgs,
}

#[derive(Debug, Default, Args)]
pub struct SetupClientArgs {
    /// The server's device ID (`wott-mqtt whoami` on the server prints it)
    #[arg(long, value_name = "SERVER_ID")]
    pub server: Option<String>,

    /// The server's IP address
    #[arg(long, value_name = "IP")]
    pub ip: Option<OsString>,

    /// The topic to subscribe to [default: wott/temperature]
    #[arg(long)]
    pub topic: Option<String>,

    /// Also publish a probe and wait for it: proves read and write access. Every
    /// subscriber of the topic receives the probe too (`wott-mqtt check probe …`)
    #[arg(long)]
    pub roundtrip: bool,

    /// Print the hosts file's diff and the check it would run; write nothing and contact nothing
    #[arg(long)]
    pub dry_run: bool,
}
