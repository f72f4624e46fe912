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
