//! What every error in wott-mqtt adds to its message: the fix, and the exit code.
//!
//! Each domain (identity, files, names, acl, hosts, check, broker, …) has its
//! own `thiserror` enum carrying the facts: which file, which line, which
//! value. They all implement [`Diagnose`], and one printer
//! (`output::Output::finish`) shows any of them as `error: …` plus `hint: …`
//! and turns it into the process exit code. This module is on the ground
//! floor so that every layer can implement the trait without knowing the
//! aggregate error (`crate::error::Error`), which sits above the domains.

use crate::exit_code::ExitCode;

/// What a domain error adds to its message: the fix, and the exit code.
pub trait Diagnose: std::error::Error {
    /// One line that tells the user what to do about it.
    fn hint(&self) -> Option<String> {
        None
    }

    /// Lines that spell out the message, one per item, e.g. every bad line of
    /// an input, printed under the `error:` line.
    fn details(&self) -> Vec<String> {
        Vec::new()
    }

    /// The exit code a command that ends with this error returns.
    fn exit_code(&self) -> ExitCode {
        ExitCode::Failure
    }
}
