//! The error every command returns, and how each domain error explains itself.
//!
//! Each domain (identity, files, names, acl, hosts, …) has its own `thiserror`
//! enum carrying the facts: which file, which line, which value. They all
//! implement [`Diagnose`], which adds the fix (`hint`) and the exit code. The
//! binary prints any [`Error`] in one place (`output::Output::error`) as
//! `error: …` plus `hint: …`.

use crate::exit_code::ExitCode;

/// What a domain error adds to its message: the fix, and the exit code.
pub trait Diagnose: std::error::Error {
    /// One line that tells the user what to do about it.
    fn hint(&self) -> Option<String> {
        None
    }

    fn exit_code(&self) -> ExitCode {
        ExitCode::Failure
    }
}

/// Any error a command can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error(transparent)]
    Name(#[from] crate::names::NameError),
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error(transparent)]
    Hosts(#[from] crate::hosts::HostsError),
    #[error(transparent)]
    Check(#[from] crate::check::CheckError),
    #[error(transparent)]
    Acl(#[from] crate::acl::AclError),
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    /// The command line is inconsistent in a way clap cannot express.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// The async runtime (network commands only) could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
    /// The user pressed Ctrl-C.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    fn diagnosis(&self) -> Option<&dyn Diagnose> {
        match self {
            Error::Identity(e) => Some(e),
            Error::Name(e) => Some(e),
            Error::File(e) => Some(e),
            Error::Pki(e) => Some(e),
            Error::Acl(e) => Some(e),
            Error::Hosts(e) => Some(e),
            Error::Check(e) => Some(e),
            Error::Broker(e) => Some(e),
            Error::Demo(e) => Some(e),
            Error::Usage { .. } | Error::Runtime(_) | Error::Interrupted => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } => hint.clone(),
            other => other.diagnosis().and_then(Diagnose::hint),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage { .. } => ExitCode::Usage,
            Error::Interrupted => ExitCode::Interrupted,
            other => other
                .diagnosis()
                .map_or(ExitCode::Failure, Diagnose::exit_code),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
