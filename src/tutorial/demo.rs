//! `demo`: the whole tutorial on one machine, with no WoTT agent and no root.
//!
//! Newcomers judge the tool by its first command, so this one shows every
//! step of the tutorial working, in the tutorial's terms, and says what the
//! command would be on real devices. Nothing here is a second implementation
//! of a step: the identities come from [`crate::identity::pki`] (the tests' CA), the
//! grant from [`acl::file::allow`], the broker from [`broker::up`] and the
//! proof from [`check::check`], the functions the commands call.
//!
//! Everything lives in a fresh temp folder (the agent's layout:
//! `<tmp>/server/certs`, `<tmp>/client/certs`, the server dir
//! `<tmp>/server/mosquitto`) and a container with a unique name
//! ([`CONTAINER_PREFIX`]) published on a free 127.0.0.1 port. Both are
//! removed at the end, after a failure and after Ctrl-C too, unless `--keep`.
//! The engine is asked first, so without one nothing is created at all.
//!
//! Run by root, the broker runs as the image's uid 1883 like
//! `sudo wott-mqtt server up`; run by anyone else who may use the engine,
//! it runs as that user ([`RunAs`]).

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rumqttc::QoS;
use serde::Serialize;

use crate::acl::{self, Access};
use crate::broker::docker::Engine;
use crate::broker::record::Requested;
use crate::broker::{
    self, BrokerError, Context, DownOptions, ImageChoice, ImageRequest, RunAs, UpOptions,
};
use crate::check::{self, Expect, Host, Plan, Subscription, Target, Until};
use crate::diagnose::Diagnose;
use crate::error::Error;
use crate::identity::CertDir;
use crate::identity::pki::{Authority, DeviceRequest, random_device_id};
use crate::names::{DeviceId, TopicFilter, TopicName};
use crate::output::{Output, Spinner};

/// Every demo container's name starts with this; so does its temp folder's.
pub const CONTAINER_PREFIX: &str = "wott-mqtt-demo-";
/// The tutorial's topic, which the client is granted and probes.
pub const TOPIC: &str = "wott/temperature";
/// How long the broker may take to accept its first mTLS CONNECT.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the probe may wait for its own message to come back, and in all.
const MESSAGE_WAIT: Duration = Duration::from_secs(5);
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);
/// Tries with another free port when the one picked was taken meanwhile.
const PORT_TRIES: usize = 3;

/// `demo`'s choices.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// `--image`, or the image policy (`eclipse-mosquitto:2`, pulled, else built here).
    pub image: ImageRequest,
    /// Leave the container and the temp folder, and say how to remove them.
    pub keep: bool,
}

/// One step of the tutorial, as it went.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub number: u8,
    pub title: &'static str,
    pub ok: bool,
    /// Milliseconds, to 0.1 ms.
    pub ms: f64,
    /// What was done here, or the error that stopped it.
    pub detail: String,
    /// The device this happens on in the tutorial: `server` or `client`.
    pub device: &'static str,
    /// What the user runs for this step on real devices.
    pub real_world: String,
}

/// What was removed at the end, or kept.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cleanup {
    /// Whether there was a container to remove, and it was removed.
    pub container_removed: bool,
    pub workdir_removed: bool,
    /// With `--keep`: the commands that remove what was kept.
    pub commands: Vec<String>,
    /// Commands to try against what was kept.
    pub try_commands: Vec<String>,
}

/// Everything `demo` did. `--json` prints it (plus `exit_code`, `error`).
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Whether every step passed.
    pub passed: bool,
    pub interrupted: bool,
    /// The image the broker ran and where it came from; `None` until step 5.
    pub image: Option<ImageChoice>,
    pub container: String,
    pub container_id: Option<String>,
    /// The 127.0.0.1 port the broker was published on.
    pub port: u16,
    pub engine: Option<String>,
    pub server_id: Option<String>,
    pub client_id: Option<String>,
    pub run_as: RunAs,
    /// The temp folder holding both devices' files; `None` until created.
    pub workdir: Option<PathBuf>,
    pub server_dir: Option<PathBuf>,
    pub steps: Vec<Step>,
    /// The client's probe, stage by stage.
    pub check: Option<check::Report>,
    pub kept: bool,
    pub cleanup: Cleanup,
    pub elapsed_ms: u64,
}

/// What can stop the demo besides the steps' own errors.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot create the demo's temp folder in {}: {reason}", dir.display())]
    Workdir { dir: PathBuf, reason: String },
    #[error("cannot find a free port on 127.0.0.1: {0}")]
    NoPort(String),
    #[error("the demo could not remove everything it made: {reason}")]
    Cleanup {
        reason: String,
        /// What removes the rest by hand.
        commands: Vec<String>,
    },
}

impl From<DemoError> for Error {
    fn from(error: DemoError) -> Self {
        Error::Flow(Box::new(error))
    }
}

impl Diagnose for DemoError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            DemoError::Workdir { .. } => {
                "point TMPDIR at a folder you may write to, e.g. TMPDIR=$HOME/tmp".into()
            }
            DemoError::NoPort(_) => "check the loopback interface (`ip addr show lo`)".into(),
            DemoError::Cleanup { commands, .. } => {
                format!("remove it by hand: {}", commands.join("; "))
            }
        })
    }
}

/// The tutorial's steps, in its order and words.
const TITLES: [(&str, &str); 6] = [
    (
        "The server device's identity (the WoTT agent would have enrolled it)",
        "server",
    ),
    (
        "The client device's identity (enrolled by the agent too)",
        "client",
    ),
    ("The client knows the server by its device ID", "client"),
    ("Grant the client in permissions.acl", "server"),
    ("Start Mosquitto with the server's certificate", "server"),
    (
        "The client connects, subscribes, publishes, receives",
        "client",
    ),
];

fn real_world(number: u8) -> String {
    match number {
        1 | 2 => "wott-mqtt whoami".to_string(),
        3 => "sudo wott-mqtt hosts add <server-id> <server-ip>".to_string(),
        4 => format!("sudo wott-mqtt acl allow <client-id> {TOPIC}"),
        5 => "sudo wott-mqtt server up".to_string(),
        _ => "sudo wott-mqtt check --server <server-id> --roundtrip".to_string(),
    }
}

/// Runs the demo; stops early when `interrupt` completes (Ctrl-C). Cleans
/// up in every case unless `--keep`, and returns the report with the error
/// it ended with, if any.
pub async fn run(
    options: &DemoOptions,
    output: &Output,
    interrupt: impl Future<Output = ()>,
) -> (DemoReport, Option<Error>) {
    let mut demo = Demo::new(options, output);
    let result = {
        let steps = demo.steps();
        tokio::select! {
            result = steps => result,
            () = interrupt => Err(Error::Interrupted),
        }
    };
    if let Err(Error::Interrupted) = &result {
        demo.report.interrupted = true;
    }
    let error = result.err();
    let cleanup = demo.finish(error.is_some()).await;
    demo.report.passed = error.is_none();
    demo.report.elapsed_ms = demo
        .started
        .elapsed()
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX);
    (demo.report, error.or(cleanup.err()))
}

/// A step under way.
struct Begun {
    started: Instant,
    _spinner: Spinner,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Server,
    Client,
}

struct Demo<'a> {
    options: &'a DemoOptions,
    output: &'a Output,
    started: Instant,
    /// Whether a container may exist: `server up` was called.
    container_attempted: bool,
    report: DemoReport,
}

impl<'a> Demo<'a> {
    fn new(options: &'a DemoOptions, output: &'a Output) -> Self {
        let suffix = random_suffix();
        Demo {
            options,
            output,
            started: Instant::now(),
            container_attempted: false,
            report: DemoReport {
                passed: false,
                interrupted: false,
                image: None,
                container: format!("{CONTAINER_PREFIX}{suffix}"),
                container_id: None,
                port: 0,
                engine: None,
                server_id: None,
                client_id: None,
                run_as: RunAs::for_invoker(),
                workdir: None,
                server_dir: None,
                steps: Vec::new(),
                check: None,
                kept: false,
                cleanup: Cleanup::default(),
                elapsed_ms: 0,
            },
        }
    }

    fn workdir(&self) -> PathBuf {
        self.report.workdir.clone().unwrap_or_default()
    }

    fn server_certs(&self) -> PathBuf {
        self.workdir().join("server").join("certs")
    }

    fn client_certs(&self) -> PathBuf {
        self.workdir().join("client").join("certs")
    }

    fn server_dir(&self) -> PathBuf {
        self.workdir().join("server").join("mosquitto")
    }

    async fn steps(&mut self) -> Result<(), Error> {
        let engine = {
            let _spinner = self.output.spinner("Asking the container engine …");
            Engine::connect().await?
        };
        self.report.engine = Some(engine.endpoint().to_string());
        drop(engine);
        self.report.workdir = Some(create_workdir(&self.report.container)?);
        self.report.server_dir = Some(self.server_dir());
        let ca = Authority::new("wott-mqtt demo CA")?;

        let step = self.begin(1);
        let result = self.identity(&ca, Role::Server);
        self.end(step, result)?;
        let step = self.begin(2);
        let result = self.identity(&ca, Role::Client);
        self.end(step, result)?;
        let step = self.begin(3);
        let result = Ok(format!(
            "here it dials 127.0.0.1 and verifies the certificate against the server's ID \
             (check --connect-to); {} is not touched",
            crate::hosts::DEFAULT_HOSTS_FILE
        ));
        self.end(step, result)?;
        let step = self.begin(4);
        let result = self.grant();
        self.end(step, result)?;
        let step = self.begin(5);
        let result = self.start_broker().await;
        self.end(step, result)?;
        let step = self.begin(6);
        let result = self.probe().await;
        self.end(step, result)
    }

    /// Shows step `number` as under way; it stays so in the report if
    /// interrupted.
    fn begin(&mut self, number: u8) -> Begun {
        let (title, device) = TITLES[usize::from(number) - 1];
        let spinner = self
            .output
            .spinner(&format!("[{number}/{}] {title} …", TITLES.len()));
        self.report.steps.push(Step {
            number,
            title,
            ok: false,
            ms: 0.0,
            detail: "interrupted".into(),
            device,
            real_world: real_world(number),
        });
        Begun {
            started: Instant::now(),
            _spinner: spinner,
        }
    }

    /// Records how the step under way ended.
    fn end(&mut self, begun: Begun, result: Result<String, Error>) -> Result<(), Error> {
        if let Some(step) = self.report.steps.last_mut() {
            step.ms = (begun.started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
            match &result {
                Ok(detail) => {
                    step.ok = true;
                    step.detail = detail.clone();
                }
                Err(e) => step.detail = e.to_string(),
            }
        }
        result.map(|_| ())
    }

    /// A device identity in the agent's layout, from the demo's CA.
    fn identity(&mut self, ca: &Authority, role: Role) -> Result<String, Error> {
        let id = random_device_id()?;
        let dir = match role {
            Role::Server => self.server_certs(),
            Role::Client => self.client_certs(),
        };
        ca.issue(&DeviceRequest::new(&id))?.write_to(&dir)?;
        let detail = format!(
            "{id}, signed by {}, in {}",
            match role {
                Role::Server => "a throwaway CA",
                Role::Client => "the same CA",
            },
            dir.display()
        );
        match role {
            Role::Server => self.report.server_id = Some(id),
            Role::Client => self.report.client_id = Some(id),
        }
        Ok(detail)
    }

    /// `acl allow <client> wott/temperature` on the server dir's permissions.acl.
    fn grant(&mut self) -> Result<String, Error> {
        let dir = self.server_dir();
        std::fs::create_dir(&dir)
            .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| workdir_error(&dir, &e))?;
        let client = DeviceId::new(self.report.client_id.as_deref().unwrap_or_default())?;
        let file = dir.join(acl::FILE_NAME);
        let granted = acl::file::allow(
            &file,
            &client,
            &TopicFilter::new(TOPIC)?,
            Access::ReadWrite,
            false,
        )?;
        Ok(format!(
            "`user {client}` and `topic readwrite {TOPIC}` at {}:{}",
            file.display(),
            granted.result.line
        ))
    }

    /// `server up` on a free loopback port, trying another if it was taken meanwhile.
    async fn start_broker(&mut self) -> Result<String, Error> {
        let cert_dir = CertDir::new(self.server_certs());
        let server_dir = self.server_dir();
        let ctx = Context {
            cert_dir: &cert_dir,
            server_dir: &server_dir,
            output: self.output,
        };
        let mut tries = 0;
        let up = loop {
            tries += 1;
            self.report.port = free_port()?;
            let settings = Requested {
                name: Some(self.report.container.clone()),
                bind: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port: Some(self.report.port),
                ..Requested::default()
            }
            .with_image(&self.options.image)
            .over(None);
            let options = UpOptions::new(settings, false, false, READY_TIMEOUT);
            self.container_attempted = true;
            match broker::up(&ctx, &options).await {
                Err(BrokerError::PortBusy { .. }) if tries < PORT_TRIES => {}
                result => break result?,
            }
        };
        self.report.container_id = up.container_id.clone();
        self.report.image = Some(up.image.clone());
        let (uid, _) = self.report.run_as.owner();
        let user = match self.report.run_as {
            RunAs::Image => format!("uid {uid} (the image's mosquitto user)"),
            RunAs::User { .. } => format!("uid {uid} (you)"),
        };
        let ready = up
            .ready
            .as_ref()
            .map(|r| format!("; ready after {:.2} s", r.after_ms as f64 / 1000.0))
            .unwrap_or_default();
        Ok(format!(
            "container {} ({}) on 127.0.0.1:{}; Mosquitto runs as {user} and reads its own \
             copy of the server's key in {}{ready}",
            up.container,
            up.image.reference,
            up.port,
            up.certificates.dir.display()
        ))
    }

    /// `check --connect-to 127.0.0.1 --roundtrip` as the client.
    async fn probe(&mut self) -> Result<String, Error> {
        let server = Host::parse(self.report.server_id.as_deref().unwrap_or_default())?;
        let target = Target {
            server,
            port: self.report.port,
            connect_to: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            hosts_file: None,
        };
        let plan = Plan::new(
            Until::Message {
                subscription: Subscription {
                    filter: TopicFilter::new(TOPIC)?,
                    qos: QoS::AtMostOnce,
                },
                expect: Expect::Roundtrip(TopicName::new(TOPIC)?),
                within: MESSAGE_WAIT,
            },
            CHECK_TIMEOUT,
        );
        let report = check::check(&CertDir::new(self.client_certs()), &target, &plan).await;
        let failure = report.failure().cloned();
        let detail = match (&report.tls, &report.message) {
            (Some(tls), Some(message)) => format!(
                "{} with both certificates verified, CONNACK as user {}, SUBACK, and its own {}-byte \
                 message on {} came back",
                tls.protocol,
                report.device_id.as_deref().unwrap_or("?"),
                message.bytes,
                message.topic
            ),
            _ => String::new(),
        };
        self.report.check = Some(report);
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(detail),
        }
    }

    /// Removes the container and the temp folder, or with `--keep` says
    /// where they are and how to remove them.
    async fn finish(&mut self, failed: bool) -> Result<(), Error> {
        let Some(workdir) = self.report.workdir.clone() else {
            return Ok(());
        };
        let server_dir = self.server_dir();
        let remove = vec![format!(
            "wott-mqtt --server-dir {} server down --purge --name {} && rm -r {}",
            quote(&server_dir),
            self.report.container,
            quote(&workdir)
        )];
        if self.options.keep {
            self.report.kept = true;
            self.report.cleanup.commands = remove;
            if !failed {
                self.report.cleanup.try_commands = self.try_commands();
            }
            return Ok(());
        }
        let _spinner = self
            .output
            .spinner("Removing the container and the temp folder …");
        let mut problems = Vec::new();
        if self.container_attempted {
            let cert_dir = CertDir::new(self.server_certs());
            let ctx = Context {
                cert_dir: &cert_dir,
                server_dir: &server_dir,
                output: self.output,
            };
            let down = DownOptions {
                name: Some(self.report.container.clone()),
                purge: false,
                dry_run: false,
                graceful: false,
            };
            match broker::down(&ctx, &down).await {
                Ok(down) => self.report.cleanup.container_removed = down.removed.is_some(),
                Err(e) => problems.push(e.to_string()),
            }
        }
        match std::fs::remove_dir_all(&workdir) {
            Ok(()) => self.report.cleanup.workdir_removed = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.report.cleanup.workdir_removed = true;
            }
            Err(e) => problems.push(format!("{}: {e}", workdir.display())),
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DemoError::Cleanup {
                reason: problems.join("; "),
                commands: remove,
            }
            .into())
        }
    }

    /// What the user can run against a kept demo.
    fn try_commands(&self) -> Vec<String> {
        let server_dir = quote(&self.server_dir());
        vec![
            format!(
                "wott-mqtt --cert-dir {} check --server {} --connect-to 127.0.0.1 --port {} --roundtrip",
                quote(&self.client_certs()),
                self.report.server_id.as_deref().unwrap_or_default(),
                self.report.port
            ),
            format!("wott-mqtt --server-dir {server_dir} acl list"),
            format!(
                "wott-mqtt --cert-dir {} --server-dir {server_dir} server status --name {}",
                quote(&self.server_certs()),
                self.report.container
            ),
            format!(
                "wott-mqtt --server-dir {server_dir} server logs --name {}",
                self.report.container
            ),
        ]
    }
}

/// `<tmp>/wott-mqtt-demo-<suffix>`, mode 0700, new.
fn create_workdir(name: &str) -> Result<PathBuf, Error> {
    let base = std::env::temp_dir();
    let dir = base.join(name);
    let made = std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .and_then(|()| std::path::absolute(&dir));
    made.map_err(|e| {
        DemoError::Workdir {
            dir: base,
            reason: e.to_string(),
        }
        .into()
    })
}

fn workdir_error(path: &Path, e: &io::Error) -> Error {
    DemoError::Workdir {
        dir: path.to_path_buf(),
        reason: e.to_string(),
    }
    .into()
}

/// A port nothing listens on now; the engine binds it a moment later.
fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DemoError::NoPort(e.to_string()).into())
}

/// Eight random hex digits, for names no other demo uses.
fn random_suffix() -> String {
    let mut bytes = [0u8; 4];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        // Uniqueness only: the process ID and the clock will do.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        bytes = (nanos ^ std::process::id().rotate_left(16)).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A path as a shell word: as is when it is plain, else single-quoted.
fn quote(path: &Path) -> String {
    crate::output::shell_word(&path.display().to_string()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(
            quote(Path::new("/tmp/wott-mqtt-demo-1a2b")),
            "/tmp/wott-mqtt-demo-1a2b"
        );
        assert_eq!(quote(Path::new("/tmp/my dir")), "'/tmp/my dir'");
        assert_eq!(quote(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }

    #[test]
    fn names_are_unique_and_docker_safe() {
        let a = random_suffix();
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, random_suffix());
    }

    #[test]
    fn every_step_names_its_real_world_command() {
        for number in 1..=6u8 {
            assert!(
                real_world(number).starts_with("wott-mqtt ")
                    || real_world(number).starts_with("sudo wott-mqtt ")
            );
        }
        assert!(real_world(4).contains("acl allow"));
        assert!(real_world(5).contains("server up"));
    }
}
