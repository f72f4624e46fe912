//! The async runtime, for the commands that talk to a broker or to the
//! container engine. It is built on demand, current-thread, so `whoami`,
//! `acl` and `hosts` start without one.

use std::future::Future;

use crate::diagnose::Diagnose;

/// The async runtime could not start (the system refused a thread, a timer
/// or an event queue).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the async runtime: {0}")]
pub struct RuntimeError(String);

impl Diagnose for RuntimeError {}

/// Runs `future` to completion on a fresh current-thread runtime.
pub fn block_on<F: Future>(future: F) -> Result<F::Output, RuntimeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RuntimeError(e.to_string()))?;
    Ok(runtime.block_on(future))
}

/// Runs `future` on a fresh current-thread runtime, cancelled by Ctrl-C
/// (SIGINT): `Ok(None)` when interrupted. Every command that waits on the
/// network or the engine ends this one way on Ctrl-C.
pub fn block_on_interruptible<F: Future>(future: F) -> Result<Option<F::Output>, RuntimeError> {
    block_on(async {
        tokio::select! {
            output = future => Some(output),
            _ = tokio::signal::ctrl_c() => None,
        }
    })
}

/// Runs `future` on a fresh current-thread runtime until it ends or the
/// process gets SIGTERM or SIGINT: `Ok(None)` when stopped. For the one
/// command a supervisor runs and stops (`server watch`): being stopped is
/// how it ends, not an interruption.
pub fn block_on_until_stopped<F: Future>(future: F) -> Result<Option<F::Output>, RuntimeError> {
    use tokio::signal::unix::{SignalKind, signal};
    block_on(async {
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| RuntimeError(format!("cannot handle SIGTERM: {e}")))?;
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| RuntimeError(format!("cannot handle SIGINT: {e}")))?;
        Ok(tokio::select! {
            output = future => Some(output),
            _ = term.recv() => None,
            _ = int.recv() => None,
        })
    })?
}

/// From now on, Ctrl-C (SIGINT) no longer kills the process: a prompt that
/// reads it returns an interruption, and [`block_on_interruptible`] ends
/// its future. For the wizard, whose prompts read keys in raw mode and
/// raise SIGINT themselves on Ctrl-C. The handler stays for the rest of the
/// process, as tokio's signal handling does.
pub fn catch_interrupts() -> Result<(), RuntimeError> {
    block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map(drop)
    })?
    .map_err(|e| RuntimeError(format!("cannot handle Ctrl-C: {e}")))
}
