//! The command line, and nothing else: clap definitions with their help text.
//!
//! These structs are turned into typed values (`config::Config`, `DeviceId`,
//! `TopicFilter`, …) once, in `commands`; nothing past that sees clap.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::NonEmptyStringValueParser;
use clap::{ArgAction, Args, Parser, Subcommand};

mod doctor;
mod server;
mod setup;

pub use doctor::DoctorArgs;
pub(crate) use server::parse_container_name;
pub use server::{ServerCommand, ServerLogsArgs, ServerWatchArgs, UpRunArgs};
pub use setup::{SetupArgs, SetupClientArgs, SetupRole, SetupServerArgs};

/// `0.1.0 (abc123def456)`: the crate version and the git commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("WOTT_MQTT_GIT_COMMIT"),
    ")"
);

const ABOUT: &str = "Secure MQTT between devices with WoTT certificates";

const LONG_ABOUT: &str = "\
Secure MQTT between devices with WoTT certificates.

wott-mqtt automates the tutorial \"secure a Mosquitto server and a Paho client with WoTT\": \
it reads the WoTT agent's device identity, and every command is safe to re-run.";

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 error (acl check: denied), 2 usage, 3 local identity, \
4 name resolution, 5 TCP connect, 6 TLS, 7 MQTT refused, 8 no message, \
9 no ACL file, 10 ACL file unreadable, 11 ACL file refused, 12 broker serves old files \
(server status), 13 a doctor check failed. See docs/exit-codes.md.";

#[derive(Debug, Parser)]
#[command(
    name = "wott-mqtt",
    version = VERSION,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, before or after the command name.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Folder holding the agent's client.crt, client.key and ca.crt
    /// [default: $CONFIG_PATH/certs, else /opt/wott/certs]
    #[arg(long, global = true, env = "CERT_PATH", value_name = "DIR")]
    pub cert_dir: Option<OsString>,

    /// The managed broker's folder: mosquitto.conf, permissions.acl and staged certificates
    /// [default: /opt/wott/mosquitto]
    #[arg(long, global = true, env = "WOTT_MQTT_SERVER_DIR", value_name = "DIR")]
    pub server_dir: Option<OsString>,

    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// Print only results and errors: no warnings or progress
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Say more about each step (repeat for more detail)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// When to colour the output; `auto` also honours NO_COLOR
    #[arg(long, global = true, value_enum, default_value_t, value_name = "WHEN")]
    pub color: ColorArg,

    /// Accept device IDs that are not shaped as WoTT's (32 lower-case hex
    /// characters and .d.wott.local), for devices of your own CA
    #[arg(
        long,
        global = true,
        env = crate::names::ANY_ID_ENV,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub any_id: bool,
}

/// `--color`: when to use ANSI colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorArg {
    /// Colour when writing to a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print this device's ID: the CN of the agent's client.crt
    ///
    /// Plain output is the ID alone, like `wott-agent whoami`, and needs read
    /// access to client.crt only. --long (or --json) also reads client.key and
    /// ca.crt and reports the identity's health.
    #[command(display_order = 3)]
    Whoami(WhoamiArgs),
    /// Map server device IDs to their IPs in /etc/hosts, safely
    ///
    /// Edits keep every other byte of the file as it was, are atomic and
    /// locked, and never duplicate a name. Lines wott-mqtt writes end with
    /// `# wott-mqtt`.
    #[command(subcommand)]
    #[command(display_order = 6)]
    Hosts(HostsCommand),

    /// Probe the broker as this device, stage by stage, and name the cause of a failure
    ///
    /// Stages: identity (client.crt, client.key, ca.crt), resolve, tcp, tls (the
    /// server's certificate), connect (CONNACK), subscribe (SUBACK), and with
    /// --wait or --roundtrip a message. It stops at the first failure and says
    /// why and what to do. Mosquitto grants every SUBSCRIBE under acl_file, so
    /// only a delivered message proves access.
    ///
    /// Exit codes: 0 passed, 3 local identity, 4 resolve, 5 TCP, 6 TLS,
    /// 7 MQTT CONNECT refused, 8 no message (ACL or publisher). See docs/check.md.
    #[command(display_order = 4)]
    #[command(mut_arg("hosts_file", |a| a.help(READ_ONLY_HOSTS_FILE)))]
    Check(CheckArgs),

    /// Grant, revoke and check access in Mosquitto's permissions.acl
    ///
    /// Edits keep every other line byte for byte and are written atomically
    /// under a lock. `acl check` answers with Mosquitto 2.x's exact rules and
    /// names the line that decides.
    #[command(display_order = 5)]
    Acl(AclArgs),

    /// Walk through the tutorial as a wizard, for the server role or the client role
    ///
    /// Every question has a flag, so `setup client --server ID --ip IP --yes`
    /// runs without a terminal (CI, Ansible). Without a terminal, missing
    /// answers are an error listing the flags to pass; nothing is changed.
    #[command(display_order = 2)]
    Setup(SetupArgs),

    /// Print a shell completion script, e.g. `wott-mqtt completions bash > /etc/bash_completion.d/wott-mqtt`
    #[command(display_order = 9)]
    Completions(CompletionsArgs),

    /// Print the man page (roff), or write one page per command with --dir
    #[command(display_order = 10)]
    Man(ManArgs),

    /// Run the Mosquitto broker in a container: up, down, status, logs, reload
    ///
    /// The broker presents this device's WoTT certificate and admits clients
    /// whose certificate the WoTT CA signed, with their device ID as MQTT
    /// username. Its files live in --server-dir.
    #[command(subcommand)]
    #[command(display_order = 7)]
    Server(ServerCommand),

    /// Run the whole tutorial on this machine: two devices, a broker, a grant, a passing check
    ///
    /// A throwaway CA stands in for WoTT and issues a server and a client
    /// identity; the client is granted wott/temperature; Mosquitto runs in a
    /// container on a free 127.0.0.1 port; the client connects, subscribes,
    /// publishes and receives its own message. Needs Docker, not root: a
    /// member of the docker group can run it. Everything is removed
    /// afterwards (also on failure or Ctrl-C) unless --keep.
    #[command(display_order = 1)]
    Demo(DemoArgs),

    /// Run every check that applies to this device, each with its fix; --bundle packs a support file
    ///
    /// Finds the roles this device has (an identity; a server dir and its
    /// broker; hosts entries for *.d.wott.local, or --server) and checks
    /// each: the identity, the broker and its files, the ACL, the client's
    /// hosts entry and the staged probe. Changes nothing. Exit 13 when a
    /// check fails (--strict: also on a warning). --bundle FILE writes one
    /// tar.gz (mode 0600) for support, with no key material, and exits 0
    /// once it is written. Run it with sudo: it reads client.key. See
    /// docs/doctor.md.
    #[command(display_order = 8)]
    #[command(mut_arg("hosts_file", |a| a.help(READ_ONLY_HOSTS_FILE)))]
    Doctor(DoctorArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub image: ImageArgs,

    /// Leave the broker running and the files in place, and print how to remove them
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write wott-mqtt.1 and a page per subcommand (wott-mqtt-check.1, …) into DIR
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `--image`, or the image policy and what it builds from.
#[derive(Debug, Clone, Default, Args)]
pub struct ImageArgs {
    /// The Mosquitto 2 image to run [default: eclipse-mosquitto:2; offline, one built here]
    #[arg(long, env = "WOTT_MQTT_IMAGE", value_name = "IMAGE", value_parser = parse_image)]
    pub image: Option<String>,

    /// The Mosquitto binary a local image is built from [default: on PATH, then /usr/sbin]
    #[arg(long, env = "WOTT_MQTT_MOSQUITTO", value_name = "PATH")]
    pub mosquitto: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum HostsCommand {
    /// Map a server's device ID to its IP (idempotent; replaces a stale IP)
    Add(HostsAddArgs),
    /// Remove the line wott-mqtt wrote for a server
    Remove(HostsRemoveArgs),
    /// Show the lines wott-mqtt manages and any other *.d.wott.local entries
    #[command(mut_arg("hosts_file", |a| a.help(READ_ONLY_HOSTS_FILE)))]
    List(HostsListArgs),
    /// Compare what the system resolver returns for a name with the hosts file
    #[command(mut_arg("hosts_file", |a| a.help(READ_ONLY_HOSTS_FILE)))]
    Check(HostsCheckArgs),
}

/// `--hosts-file` of the commands that only read it (`check`, `hosts list|check`).
const READ_ONLY_HOSTS_FILE: &str =
    "The hosts file to read; it is never written [default: /etc/hosts]";

/// `--hosts-file`, for every command that reads or edits the hosts file.
#[derive(Debug, Clone, Default, Args)]
pub struct HostsFileArgs {
    /// The hosts file to read and edit [default: /etc/hosts]
    #[arg(long, global = true, env = "WOTT_MQTT_HOSTS_FILE", value_name = "FILE")]
    pub hosts_file: Option<OsString>,
}

impl HostsFileArgs {
    /// The file to use: `--hosts-file`, else `WOTT_MQTT_HOSTS_FILE`, else
    /// /etc/hosts. Empty values count as unset.
    pub fn path(&self) -> PathBuf {
        self.hosts_file
            .clone()
            .filter(|p| !p.is_empty())
            .map_or_else(
                || PathBuf::from(crate::hosts::DEFAULT_HOSTS_FILE),
                PathBuf::from,
            )
    }
}

#[derive(Debug, Args)]
pub struct HostsAddArgs {
    /// The server's device ID, e.g. 4853b630822946019393b16c5b710b9e.d.wott.local
    #[arg(value_name = "SERVER_ID")]
    pub server_id: OsString,
    /// The server's IPv4 or IPv6 address
    #[arg(value_name = "IP")]
    pub ip: OsString,
    /// Print the change as a unified diff and write nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub file: HostsFileArgs,
}

#[derive(Debug, Args)]
pub struct HostsRemoveArgs {
    /// The server's device ID
    #[arg(value_name = "SERVER_ID")]
    pub server_id: OsString,
    /// Print the change as a unified diff and write nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub file: HostsFileArgs,
}

#[derive(Debug, Args)]
pub struct HostsListArgs {
    #[command(flatten)]
    pub file: HostsFileArgs,
}

#[derive(Debug, Args)]
pub struct HostsCheckArgs {
    /// The name to resolve, e.g. the server's device ID
    #[arg(value_name = "SERVER_ID")]
    pub server_id: OsString,
    #[command(flatten)]
    pub file: HostsFileArgs,
}

/// An image reference: no whitespace or control characters (empty counts as unset).
pub(crate) fn parse_image(value: &str) -> Result<String, String> {
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("an image reference such as eclipse-mosquitto:2, without spaces".into())
    } else {
        Ok(value.to_string())
    }
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Show the certificate's details and check client.key and ca.crt against it
    #[arg(short, long)]
    pub long: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The server's device ID, which its certificate must carry (or an IP address)
    #[arg(long, env = "MQTT_SERVER", value_name = "SERVER_ID", value_parser = NonEmptyStringValueParser::new())]
    pub server: Option<String>,

    /// The broker's TLS port
    #[arg(long, env = "MQTT_PORT", default_value_t = 8883)]
    pub port: u16,

    /// The topic to subscribe to (a filter; with --roundtrip, a topic name)
    #[arg(long, env = "MQTT_TOPIC", default_value = "wott/temperature")]
    pub topic: String,

    /// Dial this address but verify the certificate against --server, like curl --resolve
    #[arg(long, value_name = "IP")]
    pub connect_to: Option<OsString>,

    /// Publish a probe message to --topic and wait for it to come back. It is
    /// a real message: every subscriber of --topic receives it too (its payload
    /// says what it is: `wott-mqtt check probe NONCE from DEVICE_ID at TIME`)
    #[arg(long)]
    pub roundtrip: bool,

    /// Wait up to SECS for a message on --topic, e.g. a retained one (--roundtrip: 5 s by default)
    #[arg(long, value_name = "SECS")]
    pub wait: Option<f64>,

    /// Give up after SECS, for the whole probe [default: 10, plus the message wait]
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// QoS of the subscription and of the --roundtrip probe
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,

    /// MQTT client ID [default: wott-check-<random>]; never reuse a device's own
    #[arg(long, value_name = "ID", value_parser = NonEmptyStringValueParser::new())]
    pub client_id: Option<String>,

    #[command(flatten)]
    pub file: HostsFileArgs,
}

#[derive(Debug, Args)]
pub struct AclArgs {
    /// The ACL file [default: SERVER_DIR/permissions.acl, see --server-dir]
    #[arg(
        long = "acl-file",
        visible_alias = "file",
        global = true,
        env = "WOTT_MQTT_ACL_FILE",
        value_name = "FILE"
    )]
    pub file: Option<OsString>,

    #[command(subcommand)]
    pub command: AclCommand,
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Show the rules per user, in the order Mosquitto tries them
    List(AclListArgs),
    /// Grant a device access to a topic filter (adds or updates one line)
    ///
    /// A device without a `user` block gets one at the end of the file; a
    /// known device gets the line in its block; an existing grant for the
    /// same filter is updated in place. Running it twice changes nothing.
    Allow(AclAllowArgs),
    /// Remove a device's grant on a topic filter, or all of its grants
    ///
    /// `deny` rules are kept: revoking never gives access back.
    Revoke(AclRevokeArgs),
    /// Make many devices' grants exactly the listed ones, in one write
    ///
    /// GRANTS is a JSON array of {"device": ID, "topic": FILTER, "access":
    /// read|write|readwrite} objects, or one `<device-id> <topic-filter>
    /// <access>` per line (`#` comments and blank lines allowed); the format
    /// is told from the content. Each listed device gets exactly these grants:
    /// missing lines are added to its block, its other grant lines are
    /// revoked. Devices not listed are untouched unless --exclusive. `deny`
    /// and `pattern` lines, comments and anonymous rules are never touched.
    /// Every entry is checked first: one bad entry and nothing is written.
    /// One lock, one write, at most one broker reload; running it again
    /// changes nothing.
    Apply(AclApplyArgs),
    /// List the lines Mosquitto would refuse, and rules that probably do not
    /// mean what they say
    Validate,
    /// May this device read or write this topic? Exit 0 allowed, 1 denied
    ///
    /// TOPIC is a topic name as published (no wildcards): Mosquitto grants
    /// every SUBSCRIBE and checks each delivered message's topic instead.
    /// Errors never exit 1: 2 usage, 3 `self` without a client.crt, 9 no
    /// ACL file, 10 ACL file unreadable, 11 an ACL file Mosquitto would refuse.
    Check(AclCheckArgs),
}

/// `--access`: which access to grant or check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AccessArg {
    Read,
    Write,
    #[default]
    Readwrite,
}

#[derive(Debug, Args)]
pub struct AclListArgs {
    /// Show only this device's rules (and the patterns, which apply to everyone)
    #[arg(value_name = "DEVICE_ID|self")]
    pub device: Option<String>,
}

#[derive(Debug, Args)]
pub struct AclAllowArgs {
    /// The device: its ID (certificate CN), or `self` for this device
    #[arg(value_name = "DEVICE_ID|self")]
    pub device: String,

    /// The topic filter, e.g. wott/temperature or wott/#
    pub topic: String,

    #[arg(long, value_enum, default_value_t, value_name = "ACCESS")]
    pub access: AccessArg,

    /// Print the change as a unified diff and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Do not make a running broker managed by `wott-mqtt server` reload the
    /// file (apply it later with `wott-mqtt server reload`)
    #[arg(long)]
    pub no_reload: bool,
}

#[derive(Debug, Args)]
pub struct AclRevokeArgs {
    /// The device: its ID (certificate CN), or `self` for this device
    #[arg(value_name = "DEVICE_ID|self")]
    pub device: String,

    /// Only the grant on this topic filter [default: all of the device's grants]
    pub topic: Option<String>,

    /// Print the change as a unified diff and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Do not make a running broker managed by `wott-mqtt server` reload the
    /// file (apply it later with `wott-mqtt server reload`)
    #[arg(long)]
    pub no_reload: bool,
}

#[derive(Debug, Args)]
pub struct AclApplyArgs {
    /// The desired grants: a file, or `-` (or nothing) for stdin
    #[arg(value_name = "GRANTS|-")]
    pub grants: Option<PathBuf>,

    /// Also remove the grants of every device GRANTS does not list
    #[arg(long)]
    pub exclusive: bool,

    /// Print the change as a unified diff and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Do not make a running broker managed by `wott-mqtt server` reload the
    /// file (apply it later with `wott-mqtt server reload`)
    #[arg(long)]
    pub no_reload: bool,
}

#[derive(Debug, Args)]
pub struct AclCheckArgs {
    /// The device: its ID (certificate CN, the MQTT username), or `self`
    #[arg(value_name = "DEVICE_ID|self")]
    pub device: String,

    /// A topic name as published, e.g. wott/temperature
    pub topic: String,

    /// Which access to check; readwrite checks both
    #[arg(long, value_enum, default_value_t, value_name = "ACCESS")]
    pub access: AccessArg,

    /// The MQTT client ID the device connects with, for `pattern` lines using %c
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
