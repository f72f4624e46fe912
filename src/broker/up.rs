//! `server up`: the steps in an order that changes nothing until every
//! refusal has had its chance: the identity, the engine, a container we did
//! not create, the image; then the files, the certificates, the container,
//! and the wait for a CONNACK.

use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::config::{self, ServerDir};
use super::docker::{Container, CreateRequest, Engine};
use super::image_policy::{self, ImageChoice, ImageRequest, ImageSource};
use super::preflight;
use super::record::{self, Resolved};
use super::server_dir::{FileChange, absolute, check_broker_can_read, write_files};
use super::sighup::{self, Reloaded, Target};
use super::stage::{self, Staged};
use super::start::{Made, answers, start};
use super::wait::{Ready, wait_ready};
use super::{BrokerError, CONTAINER_PORT, ContainerSpec, Context, LABEL_CONFIG_HASH};
use crate::identity::Identity;
use crate::output::{Output, sanitize};

/// `server up`'s choices.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// `spec.image` is the request's reference; the policy may choose another.
    pub spec: ContainerSpec,
    pub image: ImageRequest,
    /// The settings as asked for, which the server dir's record keeps.
    pub settings: Resolved,
    /// Remove a container of that name that wott-mqtt did not create.
    pub replace: bool,
    pub dry_run: bool,
    /// How long to wait for the first CONNACK.
    pub timeout: Duration,
}

impl UpOptions {
    /// The options that run the broker with `settings`.
    pub fn new(settings: Resolved, replace: bool, dry_run: bool, timeout: Duration) -> UpOptions {
        UpOptions {
            spec: settings.settings.spec(),
            image: settings.settings.image_request(),
            settings,
            replace,
            dry_run,
            timeout,
        }
    }
}

/// What `server up` did to the container (or would do, in a dry run).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Pull {
        image: String,
    },
    /// The local image, built from this machine's Mosquitto.
    Build {
        image: String,
    },
    /// The old container, removed before creating the new one.
    Remove {
        id: String,
        reason: String,
    },
    Create {
        name: String,
    },
    Start {
        name: String,
    },
    Restart {
        name: String,
        reason: String,
    },
    /// SIGHUP: Mosquitto re-reads its certificates and permissions.acl.
    Reload {
        name: String,
        reason: String,
    },
}

/// The command a client device runs next.
#[derive(Debug, Clone, Serialize)]
pub struct NextStep {
    pub command: String,
    /// The address in that command, if one could be found.
    pub host_ip: Option<IpAddr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub changed: bool,
    pub dry_run: bool,
    pub container: String,
    pub container_id: Option<String>,
    pub image: ImageChoice,
    pub bind: IpAddr,
    pub port: u16,
    pub server_id: String,
    pub server_dir: PathBuf,
    pub engine: String,
    /// The settings kept from the server dir's record, by flag name.
    pub kept: Vec<&'static str>,
    pub files: Vec<FileChange>,
    pub certificates: Staged,
    pub actions: Vec<Action>,
    pub ready: Option<Ready>,
    pub next_step: NextStep,
    /// After a reload: the fingerprint the broker must serve to be ready.
    #[serde(skip)]
    expect_served: Option<String>,
}

/// `server up`: refusals first (identity, engine, a container we did not
/// create, a server dir the broker cannot read), then the image, the files
/// and certificates, the least change to the container, and the wait for a
/// CONNACK.
pub async fn up(ctx: &Context<'_>, opts: &UpOptions) -> Result<UpReport, BrokerError> {
    let clock = Lap::start(ctx.output);
    let identity = Identity::load(ctx.cert_dir)?;
    for warning in &identity.warnings {
        ctx.output.warn(&sanitize(&warning.message));
    }
    clock.lap("identity loaded");
    let engine = Engine::connect().await?;
    ctx.output
        .debug(1, &format!("container engine: {}", engine.endpoint()));
    clock.lap("engine answered");
    let mut run = Up {
        ctx,
        opts,
        spec: &opts.spec,
        engine,
        identity,
        server_dir: ServerDir::new(absolute(ctx.server_dir)?),
        actions: Vec::new(),
        image: None,
        renamed: None,
        clock,
    };
    let existing = run.existing().await?;
    run.renamed = preflight::renamed(
        &run.engine,
        opts.settings.renamed_from.as_deref(),
        run.server_dir.path(),
    )
    .await?;
    check_broker_can_read(&run.server_dir, run.spec.run_as)?;
    preflight::port_free(&run.engine, run.spec, run.renamed.as_ref()).await?;
    let image = run.image().await?;
    let image_id = image.id.clone();
    // From here on, the spec with the image the policy chose.
    let chosen = ContainerSpec {
        image: image.reference.clone(),
        ..opts.spec.clone()
    };
    run.spec = &chosen;
    run.image = Some(image);
    run.clock.lap("container and image inspected");
    let mut files = write_files(&run.server_dir, run.spec, opts.dry_run)?;
    files.push(record::write(
        &run.server_dir,
        &opts.settings.settings,
        opts.dry_run,
    )?);
    let staged = stage::stage(
        &run.identity,
        run.server_dir.path(),
        run.spec.run_as,
        opts.dry_run,
    )?;
    run.clock.lap("files written, certificates staged");
    let conf = config::mosquitto_conf();
    let hash = image_id.as_deref().map(|id| {
        run.spec
            .config_hash(id, run.server_dir.path(), conf.as_bytes())
    });
    let step = run
        .confirm(
            decide(existing, hash.as_deref(), staged.is_changed()),
            &staged,
        )
        .await;
    let todo = run.prepare(step, &staged).await?;
    let mut report = run.report(files, staged, &todo);
    if opts.dry_run {
        return Ok(report);
    }
    let id = run.carry_out(todo, hash.as_deref(), &mut report).await?;
    if report.changed {
        ctx.output
            .note("waiting for the broker to accept an mTLS CONNECT");
    }
    let ready = wait_ready(
        &run.engine,
        &id,
        &run.spec.name,
        &run.identity,
        run.spec,
        opts.timeout,
        report.expect_served.as_deref(),
    )
    .await?;
    run.clock
        .lap(&format!("CONNACK (attempt {})", ready.attempts));
    report.ready = Some(ready);
    Ok(report)
}

/// Timings for `-vv`.
struct Lap<'a> {
    output: &'a Output,
    started: Instant,
}

impl<'a> Lap<'a> {
    fn start(output: &'a Output) -> Self {
        Lap {
            output,
            started: Instant::now(),
        }
    }

    fn lap(&self, what: &str) {
        self.output.debug(
            2,
            &format!(
                "{:7.1} ms  {what}",
                self.started.elapsed().as_secs_f64() * 1000.0
            ),
        );
    }
}

/// One `server up` under way: what it works with, and the container
/// actions decided so far.
struct Up<'a> {
    ctx: &'a Context<'a>,
    opts: &'a UpOptions,
    spec: &'a ContainerSpec,
    engine: Engine,
    identity: Identity,
    server_dir: ServerDir,
    actions: Vec<Action>,
    /// The image step's choice.
    image: Option<ImageChoice>,
    /// The server dir's broker under its old name, which goes first.
    renamed: Option<Container>,
    clock: Lap<'a>,
}

impl Up<'_> {
    /// The container of that name, refusing one wott-mqtt did not create
    /// (unless `--replace`).
    async fn existing(&self) -> Result<Option<Container>, BrokerError> {
        preflight::existing(&self.engine, self.spec, self.opts.replace).await
    }

    /// The image the policy chooses: here, pulled, or built from this
    /// machine's Mosquitto (in a dry run, nothing is pulled or built).
    async fn image(&mut self) -> Result<ImageChoice, BrokerError> {
        let output = self.ctx.output;
        let choice =
            image_policy::choose(&self.engine, &self.opts.image, output, self.opts.dry_run).await?;
        let image = choice.reference.clone();
        match choice.source {
            ImageSource::Pulled | ImageSource::Missing => self.actions.push(Action::Pull { image }),
            ImageSource::Built => self.actions.push(Action::Build { image }),
            ImageSource::Present => {}
        }
        Ok(choice)
    }

    /// The decided step, checked against a broker that may be restarting:
    /// one caught between two runs of a restart that answers needs no
    /// repair; one that restarted and does not answer may crash-loop.
    async fn confirm(&self, step: Step, staged: &Staged) -> Step {
        if self.opts.dry_run {
            return step;
        }
        match step {
            Step::Restart(c) if c.restarting && answers(&self.identity, self.spec).await => {
                if staged.is_changed() {
                    Step::Reload(c)
                } else {
                    Step::Keep(c)
                }
            }
            Step::Reload(c) | Step::Keep(c)
                if c.restart_count > 0 && !answers(&self.identity, self.spec).await =>
            {
                Step::Restart(c)
            }
            step => step,
        }
    }

    /// Records the step's actions and, outside a dry run, removes or stops
    /// what must go first.
    async fn prepare(&mut self, step: Step, staged: &Staged) -> Result<Todo, BrokerError> {
        let name = self.spec.name.clone();
        let dry_run = self.opts.dry_run;
        if let Some(old) = self.renamed.take() {
            self.actions.push(Action::Remove {
                id: short(&old.id),
                reason: format!(
                    "the server dir's broker is now named {name}, not {}",
                    old.name
                ),
            });
            if !dry_run {
                self.ctx
                    .output
                    .note(&format!("removing the server dir's broker {}", old.name));
                self.engine.stop(&old.id).await?;
                self.engine.remove(&old.id).await?;
            }
        }
        Ok(match step {
            Step::Create => {
                self.actions.push(Action::Create { name });
                Todo::Create
            }
            Step::Replace(old) | Step::Recreate(old) => {
                let reason = if old.is_managed() {
                    "its configuration changed".to_string()
                } else {
                    format!(
                        "--replace: wott-mqtt did not create it (image {})",
                        old.image
                    )
                };
                self.actions.push(Action::Remove {
                    id: short(&old.id),
                    reason,
                });
                self.actions.push(Action::Create { name: name.clone() });
                if !dry_run {
                    self.ctx
                        .output
                        .note(&format!("removing the old container {name}"));
                    self.engine.stop(&old.id).await?;
                    self.engine.remove(&old.id).await?;
                }
                Todo::Create
            }
            Step::Start(c) => {
                self.actions.push(Action::Start { name });
                Todo::Start(c.id)
            }
            Step::Restart(c) => {
                self.actions.push(Action::Restart {
                    name,
                    reason: if c.restarting {
                        "it kept restarting".to_string()
                    } else {
                        "it restarted and does not answer".to_string()
                    },
                });
                if !dry_run {
                    self.engine.stop(&c.id).await?;
                }
                Todo::Start(c.id)
            }
            Step::Reload(c) if staged.ca_changed => {
                self.actions.push(Action::Restart {
                    name,
                    reason: "ca.crt changed, and Mosquitto reads its CA only at start".into(),
                });
                Todo::Reload(c.id, staged.fingerprint_sha256.clone(), true)
            }
            Step::Reload(c) => {
                self.actions.push(Action::Reload {
                    name,
                    reason: "the certificates changed".into(),
                });
                Todo::Reload(c.id, staged.fingerprint_sha256.clone(), false)
            }
            Step::Keep(c) => Todo::Nothing(c.id),
        })
    }

    fn report(&mut self, files: Vec<FileChange>, staged: Staged, todo: &Todo) -> UpReport {
        let actions = std::mem::take(&mut self.actions);
        let changed =
            !actions.is_empty() || staged.is_changed() || files.iter().any(|f| f.is_changed());
        UpReport {
            changed,
            dry_run: self.opts.dry_run,
            container: self.spec.name.clone(),
            container_id: todo.existing_id().map(short),
            image: self.image.clone().unwrap_or_else(|| ImageChoice {
                reference: self.spec.image.clone(),
                source: ImageSource::Present,
                id: None,
            }),
            bind: self.spec.bind,
            port: self.spec.port,
            server_id: self.identity.device_id().to_string(),
            server_dir: self.server_dir.path().to_path_buf(),
            engine: self.engine.endpoint().to_string(),
            kept: self.opts.settings.kept.clone(),
            files,
            certificates: staged,
            actions,
            ready: None,
            next_step: next_step(self.identity.device_id(), self.spec.bind),
            expect_served: match todo {
                Todo::Reload(_, fingerprint, _) => Some(fingerprint.clone()),
                _ => None,
            },
        }
    }

    /// Creates, starts or reloads the container; returns its ID.
    async fn carry_out(
        &self,
        todo: Todo,
        hash: Option<&str>,
        report: &mut UpReport,
    ) -> Result<String, BrokerError> {
        let (out, spec, name) = (self.ctx.output, self.spec, &self.spec.name);
        Ok(match todo {
            Todo::Create => {
                out.note(&format!(
                    "creating the container {name} from {}",
                    spec.image
                ));
                let id = self
                    .engine
                    .create(&CreateRequest {
                        name,
                        image: &spec.image,
                        bind: spec.bind,
                        port: spec.port,
                        container_port: CONTAINER_PORT,
                        mounts: spec.mounts(&self.server_dir),
                        user: spec.run_as.container_user(),
                        limits: spec.limits,
                        labels: spec.labels(self.server_dir.path(), hash.unwrap_or_default()),
                    })
                    .await?;
                self.clock.lap("container created");
                start(&self.engine, &id, spec, Made::Now).await?;
                self.clock.lap("container started");
                report.container_id = Some(short(&id));
                id
            }
            Todo::Start(id) => {
                out.note(&format!("starting the container {name}"));
                start(&self.engine, &id, spec, Made::Before).await?;
                id
            }
            Todo::Reload(id, _, ca_changed) => {
                out.note(&if ca_changed {
                    format!("ca.crt changed: restarting the broker in {name} (Mosquitto reads its CA only at start)")
                } else {
                    format!("the certificates changed: reloading the broker in {name}")
                });
                let target = Target {
                    id: &id,
                    name,
                    server_dir: self.server_dir.path(),
                };
                if sighup::apply_staged(&self.engine, target, ca_changed).await?
                    == Reloaded::NotConfirmed
                {
                    out.warn(&format!(
                        "{name} did not log \"Reloading config.\" within 3 s after SIGHUP"
                    ));
                }
                id
            }
            Todo::Nothing(id) => id,
        })
    }
}

/// What is left to do once the plan is made (and the old container gone).
enum Todo {
    Create,
    Start(String),
    /// SIGHUP (a restart when the bool says ca.crt changed), then wait
    /// until the broker serves the certificate with this fingerprint.
    Reload(String, String, bool),
    Nothing(String),
}

impl Todo {
    fn existing_id(&self) -> Option<&str> {
        match self {
            Todo::Create => None,
            Todo::Start(id) | Todo::Reload(id, _, _) | Todo::Nothing(id) => Some(id),
        }
    }
}

enum Step {
    Create,
    Replace(Container),
    Recreate(Container),
    Start(Container),
    Restart(Container),
    Reload(Container),
    Keep(Container),
}

/// The least that brings the container in line: `hash` is `None` when the
/// image is yet to be pulled (a dry run), which means a new container.
fn decide(existing: Option<Container>, hash: Option<&str>, certs_changed: bool) -> Step {
    match existing {
        None => Step::Create,
        Some(c) if !c.is_managed() => Step::Replace(c),
        Some(c) if hash.is_none() || c.label(LABEL_CONFIG_HASH) != hash => Step::Recreate(c),
        Some(c) if c.restarting => Step::Restart(c),
        Some(c) if !c.running => Step::Start(c),
        Some(c) if certs_changed => Step::Reload(c),
        Some(c) => Step::Keep(c),
    }
}

/// `wott-mqtt hosts add <server-id> <ip>` with this host's address as
/// clients see it: the bound address, or the one the default route uses;
/// with `--any-id` when this server's ID is not WoTT-shaped (its own CA).
fn next_step(server_id: &str, bind: IpAddr) -> NextStep {
    let host_ip = if bind.is_unspecified() {
        outbound_address(bind.is_ipv6())
    } else {
        Some(bind)
    };
    NextStep {
        command: format!(
            "wott-mqtt hosts add{} {server_id} {}",
            crate::names::any_id_flag(server_id),
            host_ip.map_or_else(|| "<this host's IP>".to_string(), |ip| ip.to_string())
        ),
        host_ip,
    }
}

/// The local address of the default route (no packet is sent: connecting a
/// UDP socket only picks the route).
fn outbound_address(v6: bool) -> Option<IpAddr> {
    let (local, remote) = if v6 {
        ("[::]:0", "[2001:db8::1]:9")
    } else {
        ("0.0.0.0:0", "192.0.2.1:9")
    };
    let socket = UdpSocket::bind(local).ok()?;
    socket.connect(remote).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

pub(super) fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::broker::docker::container::State;
    use crate::broker::{LABEL_MANAGED_BY, MANAGED_BY};

    fn container(managed: bool, hash: &str, state: &str) -> Container {
        let mut labels = HashMap::from([(LABEL_CONFIG_HASH.to_string(), hash.to_string())]);
        if managed {
            labels.insert(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string());
        }
        Container {
            id: "abc".into(),
            name: "wott-mosquitto".into(),
            image: "eclipse-mosquitto:2".into(),
            image_id: "sha256:1".into(),
            user: String::new(),
            labels,
            state: match state {
                "running" => State::Running,
                "restarting" => State::Restarting,
                _ => State::Exited,
            },
            running: state == "running" || state == "restarting",
            restarting: state == "restarting",
            exit_code: None,
            oom_killed: false,
            error: None,
            started_at: None,
            restart_count: 0,
            ports: Vec::new(),
            memory: 0,
            pids_limit: 0,
            hardened: true,
            restart_policy: "unless-stopped".into(),
        }
    }

    fn step(existing: Option<Container>, hash: Option<&str>, certs: bool) -> &'static str {
        match decide(existing, hash, certs) {
            Step::Create => "create",
            Step::Replace(_) => "replace",
            Step::Recreate(_) => "recreate",
            Step::Start(_) => "start",
            Step::Restart(_) => "restart",
            Step::Reload(_) => "reload",
            Step::Keep(_) => "keep",
        }
    }

    #[test]
    fn the_least_change_that_brings_the_container_in_line() {
        let c = |managed, hash, state| Some(container(managed, hash, state));
        assert_eq!(step(None, Some("h"), false), "create");
        assert_eq!(step(c(false, "h", "running"), Some("h"), false), "replace");
        assert_eq!(
            step(c(true, "old", "running"), Some("h"), false),
            "recreate"
        );
        assert_eq!(step(c(true, "h", "running"), None, false), "recreate");
        assert_eq!(
            step(c(true, "h", "restarting"), Some("h"), false),
            "restart"
        );
        assert_eq!(step(c(true, "h", "exited"), Some("h"), true), "start");
        assert_eq!(step(c(true, "h", "running"), Some("h"), true), "reload");
        assert_eq!(step(c(true, "h", "running"), Some("h"), false), "keep");
    }

    #[test]
    fn clients_are_told_the_bound_address() {
        let id = "4853b630822946019393b16c5b710b9e.d.wott.local";
        let step = next_step(id, IpAddr::from([192, 168, 1, 20]));
        assert_eq!(
            step.command,
            format!("wott-mqtt hosts add {id} 192.168.1.20")
        );
        // An ID of one's own CA would be refused without --any-id.
        let own = next_step("broker.example.com", IpAddr::from([192, 168, 1, 20]));
        assert_eq!(
            own.command,
            "wott-mqtt hosts add --any-id broker.example.com 192.168.1.20"
        );
        let any = next_step(id, IpAddr::from([0, 0, 0, 0]));
        match any.host_ip {
            Some(ip) => {
                assert!(!ip.is_unspecified() && !ip.is_loopback());
                assert!(any.command.ends_with(&ip.to_string()));
            }
            None => assert!(any.command.ends_with("<this host's IP>")),
        }
    }
}
