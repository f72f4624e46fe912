//! The error every command returns: any domain's error, or one of the few
//! that belong to no domain (a usage error, Ctrl-C).
//!
//! This module sits above the domains and is the only one that knows them
//! all; the domains return their own errors and never this one. Each wrapped
//! error explains itself through [`Diagnose`], and [`Error`] passes that on,
//! so `output` prints any of them the same way. The tutorial's flows
//! (`tutorial::demo`, `tutorial::setup`) sit above this module: their own
//! errors come in through [`Error::Flow`].

use crate::diagnose::Diagnose;
use crate::exit_code::ExitCode;

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
    Pki(#[from] crate::identity::pki::PkiError),
    #[error(transparent)]
    Hosts(#[from] crate::hosts::HostsError),
    #[error(transparent)]
    Check(#[from] crate::check::CheckError),
    #[error(transparent)]
    Acl(#[from] crate::acl::AclError),
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Bundle(#[from] crate::doctor::bundle::BundleError),
    /// An error of a layer above this one (a tutorial flow's own).
    #[error("{0}")]
    Flow(Box<dyn Diagnose + Send + Sync>),
    /// The command line is inconsistent in a way clap cannot express.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
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
            Error::Runtime(e) => Some(e),
            Error::Bundle(e) => Some(e),
            Error::Flow(e) => Some(e.as_ref()),
            Error::Usage { .. } | Error::Interrupted => None,
        }
    }
}

impl Diagnose for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } => hint.clone(),
            other => other.diagnosis().and_then(Diagnose::hint),
        }
    }

    fn details(&self) -> Vec<String> {
        self.diagnosis().map(Diagnose::details).unwrap_or_default()
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage { .. } => ExitCode::Usage,
            Error::Interrupted => ExitCode::Interrupted,
            other => other
                .diagnosis()
                .map_or(ExitCode::Failure, Diagnose::exit_code),
        }
    }
}
