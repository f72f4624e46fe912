//! `acl list | allow | revoke | apply | validate | check`: the ACL file from the
//! command line. Arguments become a `DeviceId`, `TopicFilter` or `TopicName`
//! here, before anything reads or writes the file; the work is done by `acl`.

mod apply;
mod check;
mod grant;
mod rules;

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Config;
use crate::acl::edit::{self, AllowAction};
use crate::acl::eval::Refused;
use crate::acl::lint::{self, Finding, Severity};
use crate::acl::{
    self, Access, AclError, Client, Document, Kind, Need, Reason, Rules, Section, eval,
};
use crate::broker::{self, BrokerError};
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
    // Empty (e.g. `WOTT_MQTT_ACL_FILE=`) counts as unset, like every path option.
    let file = args
        .file
        .filter(|f| !f.is_empty())
        .map_or_else(|| config.server_dir.join(acl::FILE_NAME), PathBuf::from);
    match args.command {
        AclCommand::List(a) => rules::list(config, &file, &a),
        AclCommand::Allow(a) => grant::allow(config, &file, &a),
        AclCommand::Revoke(a) => grant::revoke(config, &file, &a),
        AclCommand::Apply(a) => apply::apply(config, &file, &a),
        AclCommand::Validate => rules::validate(config, &file),
        AclCommand::Check(a) => check::check(config, &file, &a),
    }
}

/// `DEVICE_ID` or `self` (this device's ID, from the agent's client.crt).
/// A typed ID must be WoTT-shaped unless `--any-id`; the certificate's is
/// taken as it is.
fn device(config: &Config, value: &str) -> Result<DeviceId, Error> {
    if value == "self" {
        let cert = identity::device_id(&config.cert_dir)?;
        return Ok(DeviceId::new(cert.device_id())?);
    }
    Ok(DeviceId::typed(value, config.id_policy)?)
}

/// The ACL file's bytes, for the commands that only read it.
fn read(file: &Path) -> Result<Vec<u8>, AclError> {
    files::read_optional(file)
        .map_err(AclError::Unreadable)?
        .ok_or_else(|| AclError::NotFound {
            path: file.to_path_buf(),
        })
}

/// The ACL file, for reading as a stream.
fn open(file: &Path) -> Result<File, AclError> {
    files::open_optional(file)
        .map_err(AclError::Unreadable)?
        .ok_or_else(|| AclError::NotFound {
            path: file.to_path_buf(),
        })
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
/// (unless `--no-reload`). Returns what was reloaded, and the error to end
/// with when the reload was withheld (the file has a line Mosquitto refuses,
/// which on a reload would open the broker) or the broker ended up open.
/// Otherwise the user is told how to apply the change.
fn applied(config: &Config, file: &Path, reload: bool) -> (Reloads, Option<BrokerError>) {
    if reload {
        match broker::reload_after_acl_edit(file) {
            Ok(reloaded) if !reloaded.is_empty() => return (Reloads::of(reloaded), None),
            Ok(_) => {}
            Err(e @ (BrokerError::ReloadWithheld { .. } | BrokerError::RunningOpen { .. })) => {
                return (Reloads::default(), Some(e));
            }
            Err(e) => {
                config.output.warn(&sanitize(&format!(
                    "{} changed, but the broker could not be reloaded: {e}; \
                     apply it with `sudo wott-mqtt server reload`",
                    file.display()
                )));
                return (Reloads::default(), None);
            }
        }
    }
    config.output.note(&format!(
        "note: Mosquitto reads {} only when it starts and on SIGHUP; reload the broker to apply this \
         (`wott-mqtt server reload` for the broker `wott-mqtt server up` runs, \
         `systemctl reload mosquitto`, or `docker kill --signal HUP <container>`)",
        file.display()
    ));
    (Reloads::default(), None)
}

/// The brokers an edit reloaded.
#[derive(Debug, Default, Serialize)]
struct Reloads {
    /// Every broker sent SIGHUP.
    reloaded: Vec<String>,
    /// Those whose log did not show the reload within a few seconds.
    not_confirmed: Vec<String>,
}

impl Reloads {
    fn of(applied: Vec<broker::Applied>) -> Self {
        Reloads {
            not_confirmed: applied
                .iter()
                .filter(|a| !a.in_force)
                .map(|a| a.container.clone())
                .collect(),
            reloaded: applied.into_iter().map(|a| a.container).collect(),
        }
    }

    /// `reloaded: the broker in NAME (SIGHUP)` lines.
    fn lines(&self, s: &mut String, p: Paint) {
        for name in &self.reloaded {
            if self.not_confirmed.contains(name) {
                let _ = writeln!(
                    s,
                    "{} the broker in {} (SIGHUP), but its log did not show the reload within 3 s: \
                     whether the change is in force is not known",
                    p.warn("signalled:"),
                    sanitize(name)
                );
            } else {
                let _ = writeln!(
                    s,
                    "{} the broker in {} (SIGHUP): the change is in force",
                    p.good("reloaded:"),
                    sanitize(name)
                );
            }
        }
    }
}

/// Says so when the file has lines Mosquitto refuses: the edit keeps them.
fn warn_if_refused(config: &Config, file: &Path, refused: Option<&Refused>) {
    if let Some(refused) = refused {
        let refusal = AclError::Refused {
            path: file.to_path_buf(),
            line: refused.line + 1,
            message: refused.message.clone(),
            ignores_rest: refused.code == acl::NUL_BYTE,
        };
        config.output.warn(&sanitize(&format!(
            "{refusal}; run `wott-mqtt acl validate` for details"
        )));
    }
}

// ---------------------------------------------------------------- allow
