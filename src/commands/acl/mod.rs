//! `acl list | allow | revoke | apply | validate | check`: the ACL file from the
//! command line. Arguments become a `DeviceId`, `TopicFilter` or `TopicName`
//! here, before anything reads or writes the file; the work is done by `acl`.

mod apply;
mod check;
mod grant;
mod rules;

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;

use serde::Serialize;

use super::Config;
use crate::acl::edit::{self, AllowAction};
use crate::acl::eval::Refused;
use crate::acl::lint::{self, Finding, Severity};
use crate::acl::{
    self, Access, AclError, Client, Document, Kind, Need, Reason, Rules, Section, eval,
};
use crate::broker;
use crate::cli::{
    AccessArg, AclAllowArgs, AclArgs, AclCheckArgs, AclCommand, AclListArgs, AclRevokeArgs,
};
use crate::error::Error;
use crate::exit_code::ExitCode;
use crate::files::{self, FileError};
use crate::identity;
use crate::names::{DeviceId, TopicFilter, TopicName};
use crate::output::{Human, Outcome, Paint, excerpt, sanitize};

pub fn run(config: &Config, args: AclArgs) -> Result<Outcome, Error> {
    let file = args
        .file
        .filter(|f| !f.as_os_str().is_empty())
        .unwrap_or_else(|| config.server_dir.join(acl::FILE_NAME));
    match args.command {
        AclCommand::List(a) => rules::list(config, &file, &a),
        AclCommand::Allow(a) => grant::allow(config, &file, &a),
        AclCommand::Revoke(a) => grant::revoke(config, &file, &a),
        AclCommand::Apply(a) => apply::apply(config, &file, &a),
        AclCommand::Validate => rules::validate(&file),
        AclCommand::Check(a) => check::check(config, &file, &a),
    }
}

/// `DEVICE_ID` or `self` (this device's ID, from the agent's client.crt).
fn device(config: &Config, value: &str) -> Result<DeviceId, Error> {
    if value == "self" {
        let cert = identity::device_id(&config.cert_dir)?;
        return Ok(DeviceId::new(cert.device_id())?);
    }
    Ok(DeviceId::new(value)?)
}

fn read(file: &Path) -> Result<Vec<u8>, Error> {
    files::read_optional(file)?.ok_or_else(|| {
        AclError::NotFound {
            path: file.to_path_buf(),
        }
        .into()
    })
}

/// The ACL file, for reading as a stream.
fn open(file: &Path) -> Result<File, Error> {
    match files::open_optional(file)? {
        Some(handle) => Ok(handle),
        None => Err(AclError::NotFound {
            path: file.to_path_buf(),
        }
        .into()),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn location(file: &Path, line: usize) -> String {
    format!("{}:{line}", file.display())
}

/// A line of the file, for reports.
#[derive(Debug, Serialize)]
struct LineRef {
    line: usize,
    /// `file:line`.
    location: String,
    text: String,
}

impl LineRef {
    fn noted(file: &Path, noted: edit::Noted) -> Self {
        LineRef {
            line: noted.line,
            location: location(file, noted.line),
            text: noted.text,
        }
    }
}

/// Called once after `allow`, `revoke` or `apply` has changed the file. Mosquitto
/// reads its ACL only at start and on SIGHUP, so a running broker that
/// `wott-mqtt server` manages from this file's folder is reloaded here
/// (unless `--no-reload`); returns the containers reloaded. Otherwise the
/// user is told how to apply the change.
fn applied(config: &Config, file: &Path, reload: bool) -> Vec<String> {
    if reload {
        match broker::reload_after_acl_edit(file) {
            Ok(reloaded) if !reloaded.is_empty() => return reloaded,
            Ok(_) => {}
            Err(e) => {
                config.output.warn(&sanitize(&format!(
                    "{} changed, but the broker could not be reloaded: {e}; \
                     apply it with `sudo wott-mqtt server reload`",
                    file.display()
                )));
                return Vec::new();
            }
        }
    }
    config.output.note(&format!(
        "note: Mosquitto reads {} only when it starts and on SIGHUP; reload the broker to apply this \
         (`wott-mqtt server reload` for the broker `wott-mqtt server up` runs, \
         `systemctl reload mosquitto`, or `docker kill --signal HUP <container>`)",
        file.display()
    ));
    Vec::new()
}

/// `reloaded: the broker in NAME (SIGHUP)` lines.
fn reloaded_lines(s: &mut String, p: Paint, reloaded: &[String]) {
    for name in reloaded {
        let _ = writeln!(
            s,
            "{} the broker in {} (SIGHUP): the change is in force",
            p.good("reloaded:"),
            sanitize(name)
        );
    }
}

/// Says so when the file has lines Mosquitto refuses: the edit keeps them.
fn warn_if_refused(config: &Config, file: &Path, refused: Option<&Refused>) {
    if let Some(refused) = refused {
        config.output.warn(&sanitize(&format!(
            "Mosquitto would refuse {}: {}; run `wott-mqtt acl validate` for details",
            location(file, refused.line + 1),
            refused.message
        )));
    }
}

// ---------------------------------------------------------------- allow
