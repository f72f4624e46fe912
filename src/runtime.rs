//! The async runtime, for the commands that talk to a broker or to the
//! container engine. It is built on demand, current-thread, so `whoami`,
//! `acl` and `hosts` start without one.

use std::future::Future;

use crate::error::Error;

/// Runs `future` to completion on a fresh current-thread runtime.
pub fn block_on<F: Future>(future: F) -> Result<F::Output, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(e.to_string()))?;
    Ok(runtime.block_on(future))
}
