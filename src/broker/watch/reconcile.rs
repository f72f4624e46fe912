//! One look at the broker and the files, and the repair when they differ.
//!
//! The order is the order of refusals: a broker to keep current (running,
//! ours); a complete, consistent identity from the agent (the key matches
//! the certificate, `ca.crt` signs it, it is valid now: what
//! `Identity::load` demands) with the device ID the broker serves now; a
//! permissions.acl Mosquitto accepts. Only then, when the broker serves
//! another certificate than the agent's, or an ACL older than the file, or
//! runs without its ACL after a failed load, it is reloaded exactly as
//! `server reload` does (stage, SIGHUP, wait until it serves the staged
//! certificate). Anything short of that leaves the broker on its last good
//! state and says why, once for as long as it lasts.

use std::path::PathBuf;
use std::time::Duration;

use super::event::{CertId, Event};
use crate::broker::diagnose::failed_open;
use crate::broker::docker::{Container, Engine};
use crate::broker::drift::{self, Stale};
use crate::broker::ready::{self, Served};
use crate::broker::running::spec_of;
use crate::broker::wait::probe_address;
use crate::broker::{BrokerError, Context, ReloadOptions, config, record, sighup};
use crate::diagnose::Diagnose;
use crate::identity::{self, CertInfo, Identity, IdentityError};

/// How many of the broker's last log lines tell its last load.
const LOG_TAIL: u64 = 5000;

/// What the loop does after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing until a file or the engine says something changed.
    Idle,
    /// Look again after a while: something may settle by itself.
    RetryIn(Duration),
    /// The engine stopped answering.
    EngineLost,
}

/// The passes of one `server watch`, and what it last said.
pub struct Reconciler<'a> {
    ctx: &'a Context<'a>,
    server_dir: PathBuf,
    name: Option<String>,
    timeout: Duration,
    /// The condition said last, so that one that lasts is said once.
    said: Option<Event>,
}

impl<'a> Reconciler<'a> {
    pub fn new(
        ctx: &'a Context<'a>,
        server_dir: PathBuf,
        name: Option<String>,
        timeout: Duration,
    ) -> Self {
        Reconciler {
            ctx,
            server_dir,
            name,
            timeout,
            said: None,
        }
    }

    /// Says `event` unless it is what was said last.
    pub fn condition(&mut self, event: Event, emit: &mut dyn FnMut(Event)) {
        if self.said.as_ref() != Some(&event) {
            emit(event.clone());
            self.said = Some(event);
        }
    }

    /// Forgets what was said, so that the next condition is said again
    /// (after an event that changes the picture, such as a restart).
    pub fn forget(&mut self) {
        self.said = None;
    }

    /// One look, and the repair if one is due.
    pub async fn pass(&mut self, engine: &Engine, emit: &mut dyn FnMut(Event)) -> Next {
        match self.look(engine, emit).await {
            Ok(next) => next,
            Err(e) if is_engine_gone(&e) => Next::EngineLost,
            Err(e) => {
                let event = Event::ApplyFailed {
                    reason: e.to_string(),
                    hint: e.hint(),
                };
                self.condition(event, emit);
                Next::RetryIn(Duration::from_secs(30))
            }
        }
    }

    async fn look(
        &mut self,
        engine: &Engine,
        emit: &mut dyn FnMut(Event),
    ) -> Result<Next, BrokerError> {
        let name = record::broker_name(engine, &self.server_dir, self.name.as_deref()).await?;
        let Some(container) = self.running(engine, &name, emit).await? else {
            return Ok(Next::Idle);
        };
        let Some(identity) = self.identity(&container.name, emit) else {
            return Ok(Next::RetryIn(Duration::from_secs(10)));
        };
        let acl_file = self.server_dir.join(config::ACL_FILE);
        if let Some(problem) = sighup::acl_problem(&acl_file)? {
            let hint = format!(
                "the broker keeps the rules it loaded last; fix the file (`wott-mqtt acl validate --acl-file {}` \
                 names every line Mosquitto refuses): watch reloads it as soon as Mosquitto would accept it",
                crate::output::shell_word(&acl_file.display().to_string())
            );
            self.condition(Event::AclRefused { problem, hint }, emit);
            return Ok(Next::Idle);
        }
        let spec = spec_of(&container)?;
        let served = match ready::probe(
            &identity,
            probe_address(spec.bind),
            spec.port,
            ready::ATTEMPT_TIMEOUT,
        )
        .await
        {
            Ok(served) => served,
            Err(failure) => {
                let reason = format!("it does not answer an mTLS CONNECT: {}", failure.message());
                self.condition(
                    Event::BrokerMissing {
                        container: name,
                        reason,
                    },
                    emit,
                );
                return Ok(Next::RetryIn(Duration::from_secs(10)));
            }
        };
        let stale = self.stale(engine, &container, &served, &identity).await?;
        if stale.is_empty() {
            let certificate = cert_id(&identity.cert.info);
            self.condition(
                Event::Current {
                    container: name,
                    certificate,
                },
                emit,
            );
            return Ok(Next::Idle);
        }
        self.apply(name, &served, &identity, &stale, emit).await?;
        Ok(Next::Idle)
    }

    /// The running container of that name, or `None` after saying why not.
    async fn running(
        &mut self,
        engine: &Engine,
        name: &str,
        emit: &mut dyn FnMut(Event),
    ) -> Result<Option<Container>, BrokerError> {
        let reason = match engine.container(name).await? {
            None => "there is no such container; `wott-mqtt server up` starts it".to_string(),
            Some(c) if !c.is_managed() => "wott-mqtt did not create it".to_string(),
            Some(c) if !c.running || c.restarting => format!("it is {}", c.state),
            Some(c) => return Ok(Some(c)),
        };
        let container = name.to_string();
        self.condition(Event::BrokerMissing { container, reason }, emit);
        Ok(None)
    }

    /// The agent's identity when it is complete, consistent, valid now and
    /// names the device the broker serves; else `None` after saying why.
    fn identity(&mut self, container: &str, emit: &mut dyn FnMut(Event)) -> Option<Identity> {
        let identity = match Identity::load(self.ctx.cert_dir) {
            Ok(identity) => identity,
            Err(e @ (IdentityError::Expired { .. } | IdentityError::NotYetValid { .. })) => {
                let hint = format!(
                    "the broker keeps serving its current certificate; {}",
                    e.hint().unwrap_or_default()
                );
                self.condition(
                    Event::RenewalRefused {
                        reason: e.to_string(),
                        hint,
                    },
                    emit,
                );
                return None;
            }
            Err(e) => {
                let reason = format!("{e}; the broker keeps serving its current certificate");
                self.condition(Event::Waiting { reason }, emit);
                return None;
            }
        };
        let staged = self
            .server_dir
            .join(config::CERTS_SUBDIR)
            .join(identity::CLIENT_CRT);
        let serving = identity::load_certificate(&staged)
            .ok()
            .and_then(|c| c.info.common_name);
        match serving {
            Some(serving) if serving != identity.device_id() => {
                let reason = format!(
                    "the agent's certificate names the device {}, but {container} serves {serving}: \
                     every client verifies the server's device ID and would refuse it",
                    identity.device_id()
                );
                let hint = format!(
                    "if this device was enrolled again on purpose, apply it with `{}` and map the new ID on each client \
                     (`wott-mqtt hosts add {} <server IP>`)",
                    self.ctx.command("server reload"),
                    identity.device_id()
                );
                self.condition(Event::RenewalRefused { reason, hint }, emit);
                None
            }
            _ => Some(identity),
        }
    }

    /// What the broker serves that is older than the files.
    async fn stale(
        &self,
        engine: &Engine,
        container: &Container,
        served: &Served,
        identity: &Identity,
    ) -> Result<Vec<Found>, BrokerError> {
        let info = &identity.cert.info;
        let log = engine.timed_log_lines(&container.id, LOG_TAIL).await?;
        let lines: Vec<String> = log.iter().map(|(_, line)| line.clone()).collect();
        let loaded = drift::last_load(&log, container.started_at);
        let acl_file = self.server_dir.join(config::ACL_FILE);
        let mut stale: Vec<Found> =
            drift::certificate(served, (&info.fingerprint_sha256, info.not_after))
                .into_iter()
                .chain(drift::acl(&acl_file, loaded))
                .map(|d| match d.what {
                    Stale::Certificate => Found::Certificate,
                    Stale::Acl => Found::Acl,
                })
                .collect();
        if failed_open(&lines).is_some() {
            stale.push(Found::Open);
        }
        Ok(stale)
    }

    /// `server reload`, and what it did, said.
    async fn apply(
        &mut self,
        name: String,
        served: &Served,
        identity: &Identity,
        stale: &[Found],
        emit: &mut dyn FnMut(Event),
    ) -> Result<(), BrokerError> {
        let options = ReloadOptions {
            name: Some(name.clone()),
            dry_run: false,
            timeout: self.timeout,
        };
        crate::broker::reload(self.ctx, &options).await?;
        let new = cert_id(&identity.cert.info);
        if stale.contains(&Found::Certificate) {
            let old = Some(CertId {
                serial: served.serial.clone(),
                fingerprint_sha256: served.fingerprint_sha256.clone(),
                not_after: served.not_after,
            });
            emit(Event::Renewed {
                container: name.clone(),
                old,
                new: new.clone(),
            });
        }
        if stale.contains(&Found::Open) {
            emit(Event::AclRestored {
                container: name.clone(),
            });
        } else if stale.contains(&Found::Acl) {
            emit(Event::AclReloaded {
                container: name.clone(),
            });
        }
        self.said = Some(Event::Current {
            container: name,
            certificate: new,
        });
        Ok(())
    }
}

/// Why the broker needs a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// It serves another certificate than the agent's.
    Certificate,
    /// permissions.acl changed after its last load.
    Acl,
    /// Its last ACL load failed: it enforces no ACL at all.
    Open,
}

fn cert_id(info: &CertInfo) -> CertId {
    CertId {
        serial: info.serial.clone(),
        fingerprint_sha256: info.fingerprint_sha256.clone(),
        not_after: info.not_after,
    }
}

/// Errors that mean the engine went away, not that this pass failed.
fn is_engine_gone(e: &BrokerError) -> bool {
    matches!(
        e,
        BrokerError::EngineLost { .. } | BrokerError::EngineUnreachable { .. }
    )
}
