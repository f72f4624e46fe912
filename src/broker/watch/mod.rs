//! `server watch`: a foreground process that keeps the broker serving the
//! agent's current certificate and permissions.acl, for systemd or any
//! supervisor.
//!
//! WoTT certificates live 7 days; the agent renews them with fewer than 3
//! left, by truncating and rewriting `client.crt`, then `ca.crt`, then
//! `client.key` in place (agent/__init__.py, `run()`). Mosquitto serves
//! what it loaded until SIGHUP. So watch follows the cert dir and the server
//! dir (inotify), waits until the writes settle, and then makes one pass
//! ([`reconcile`]): a consistent identity and an ACL Mosquitto accepts are
//! applied as `server reload` applies them; anything else leaves the broker
//! on its last good state and is said once. The engine's container events
//! say when the broker starts, stops or goes; a pass at start and every
//! `recheck` (hourly) repairs whatever happened while nothing was
//! watching. Nothing polls: between events the process sleeps.
//!
//! It ends only when its future is dropped (the command ends it on SIGTERM
//! or SIGINT); an engine that goes away is waited for, with backoff.

mod event;
mod files;
mod reconcile;
pub mod unit;

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

pub use event::{CertId, Event, Level};
use files::FileWatch;
use reconcile::{Next, Reconciler};

use super::docker::{ContainerEvent, Engine};
use super::server_dir::absolute;
use super::{BrokerError, Context, LABEL_SERVER_DIR};

/// `server watch`'s choices.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The broker to keep current; `None`: the server dir's.
    pub name: Option<String>,
    /// A full pass this often, whatever the files say.
    pub recheck: Duration,
    /// How long the files must stay quiet before a pass: the agent writes
    /// its three files one after another.
    pub settle: Duration,
    /// How long a reload may take to be served.
    pub timeout: Duration,
}

/// The longest wait between two attempts to reach the engine.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// After a container event, how long before the pass: a broker that just
/// started needs a moment before it listens.
const AFTER_CONTAINER_EVENT: Duration = Duration::from_secs(1);

type Events = Pin<Box<dyn Stream<Item = Result<ContainerEvent, BrokerError>>>>;

/// Watches until dropped; `emit` gets each event as it happens. Fails only
/// at the start: a server dir or cert dir that cannot be followed.
pub async fn watch(
    ctx: &Context<'_>,
    opts: &WatchOptions,
    emit: &mut dyn FnMut(Event),
) -> Result<(), BrokerError> {
    let server_dir = absolute(ctx.server_dir)?;
    let cert_dir = absolute(ctx.cert_dir.path())?;
    let (changes_tx, mut changes) = mpsc::unbounded_channel();
    let _files = FileWatch::start(&cert_dir, &server_dir, changes_tx)?;
    let container = match &opts.name {
        Some(name) => name.clone(),
        None => super::record::read(&server_dir)?
            .map_or_else(|| "the server dir's broker".to_string(), |s| s.name),
    };
    emit(Event::Watching {
        container,
        cert_dir: cert_dir.display().to_string(),
        acl_file: server_dir
            .join(super::config::ACL_FILE)
            .display()
            .to_string(),
    });
    let mut state = Loop {
        reconciler: Reconciler::new(ctx, server_dir.clone(), opts.name.clone(), opts.timeout),
        server_dir,
        backoff: Duration::from_secs(1),
        due: Some(Instant::now()),
        recheck_at: Instant::now() + opts.recheck,
    };
    let mut engine: Option<(Engine, Events)> = None;
    loop {
        let Some((connected, events)) = engine.as_mut() else {
            engine = state.connect(&mut changes, emit).await;
            continue;
        };
        let connected = connected.clone();
        let due = state.due;
        let mut lost = None;
        tokio::select! {
            Some(_) = changes.recv() => {
                while changes.try_recv().is_ok() {}
                state.due = Some(Instant::now() + opts.settle);
            }
            event = events.next() => match event {
                Some(Ok(event)) => {
                    state.container_event(event, emit);
                    state.due = Some(Instant::now() + AFTER_CONTAINER_EVENT);
                }
                Some(Err(e)) => lost = Some(e.to_string()),
                None => lost = Some("the engine closed its event stream".to_string()),
            },
            () = sleep_until(due.unwrap_or_else(far_future)), if due.is_some() => {
                state.due = None;
                match state.reconciler.pass(&connected, emit).await {
                    Next::Idle => {}
                    Next::RetryIn(after) => state.due = Some(Instant::now() + after),
                    Next::EngineLost => lost = Some("it stopped answering".to_string()),
                }
            }
            () = sleep_until(state.recheck_at) => {
                state.recheck_at = Instant::now() + opts.recheck;
                state.due = Some(Instant::now());
            }
        }
        if let Some(reason) = lost {
            engine = None;
            state.lost(&reason, emit);
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// The loop's state between wake-ups.
struct Loop<'a> {
    reconciler: Reconciler<'a>,
    server_dir: PathBuf,
    backoff: Duration,
    /// When the next pass is due, if one is.
    due: Option<Instant>,
    recheck_at: Instant,
}

impl Loop<'_> {
    /// Reaches the engine and follows its events for the server dir's
    /// containers; when it does not answer, waits (with backoff, files
    /// still followed so nothing is missed) and says so once.
    async fn connect(
        &mut self,
        changes: &mut mpsc::UnboundedReceiver<files::Changed>,
        emit: &mut dyn FnMut(Event),
    ) -> Option<(Engine, Events)> {
        match Engine::connect().await {
            Ok(engine) => {
                let dir = self.server_dir.display().to_string();
                let events: Events = Box::pin(engine.container_events((LABEL_SERVER_DIR, &dir)));
                if self.backoff > Duration::from_secs(1) {
                    emit(Event::EngineBack {
                        endpoint: engine.endpoint().to_string(),
                    });
                    self.reconciler.forget();
                }
                self.backoff = Duration::from_secs(1);
                self.due = Some(Instant::now());
                Some((engine, events))
            }
            Err(e) => {
                let reason = format!("{e}; trying again");
                self.reconciler
                    .condition(Event::EngineUnreachable { reason }, emit);
                let until = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                // The files are still followed meanwhile: a change waits for the pass.
                while let Ok(Some(_)) = tokio::time::timeout_at(until, changes.recv()).await {}
                None
            }
        }
    }

    fn lost(&mut self, reason: &str, emit: &mut dyn FnMut(Event)) {
        let reason = format!("the container engine went away ({reason}); trying again");
        self.reconciler
            .condition(Event::EngineUnreachable { reason }, emit);
        self.backoff = Duration::from_secs(2);
    }

    fn container_event(&mut self, event: ContainerEvent, emit: &mut dyn FnMut(Event)) {
        let container = event.name;
        let said = match event.action.as_str() {
            "start" => Event::BrokerStarted { container },
            "die" => Event::BrokerStopped {
                container,
                exit_code: event.exit_code,
            },
            "destroy" => Event::BrokerRemoved { container },
            _ => return,
        };
        emit(said);
        self.reconciler.forget();
    }
}
