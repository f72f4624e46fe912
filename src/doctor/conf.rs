//! The server's `mosquitto.conf` on disk: hand edits, and the settings the
//! broker's security rests on.
//!
//! `server up` renders the file and the next `up` puts it back, so a hand
//! edit is at best lost and at worst in force until then: the settings are
//! read from the file as it is, the way Mosquitto reads it (`key value`,
//! `#` comments in the first column, the last value of a key wins).

use super::Finding;
use crate::broker::config::{self, ServerDir};

/// The conf's `key value` lines, in order.
fn settings(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once([' ', '\t']) {
            Some((key, value)) => (key, value.trim()),
            None => (l, ""),
        })
        .collect()
}

fn last<'a>(settings: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    settings
        .iter()
        .rev()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
}

/// `server.conf-edited` and `server.settings`; `up` is the command that
/// renders the file again.
pub(super) fn check(dir: &ServerDir, up: &str) -> Vec<Finding> {
    let path = dir.conf_path();
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            return vec![
                Finding::failure(
                    "server.conf-edited",
                    format!("cannot read {}: {e}", path.display()),
                    "the broker reads its settings from this file; without it, it does not start",
                )
                .fix(up),
            ];
        }
    };
    let rendered = config::mosquitto_conf();
    let mut out = vec![if text == rendered {
        Finding::ok(
            "server.conf-edited",
            format!("{} is as `server up` renders it", path.display()),
        )
    } else {
        let diff = crate::files::unified_diff(
            &path.display().to_string(),
            rendered.as_bytes(),
            text.as_bytes(),
        );
        let changed: Vec<&str> = diff
            .lines()
            .filter(|l| {
                (l.starts_with('+') || l.starts_with('-'))
                    && !l.starts_with("+++")
                    && !l.starts_with("---")
            })
            .take(6)
            .collect();
        Finding::warning(
            "server.conf-edited",
            format!(
                "{} differs from what `server up` renders: {}",
                path.display(),
                changed.join(" | ")
            ),
            "the next `server up` replaces hand edits (and recreates the container); until then the broker may run with settings nobody reviewed",
        )
        .fix(up)
    }];
    out.extend(security_settings(&settings(&text), up));
    out
}

/// What must hold for the broker to admit only WoTT devices under the ACL.
fn security_settings(s: &[(&str, &str)], up: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut fail = |found: String, why: &str| {
        out.push(Finding::failure("server.settings", found, why).fix(up));
    };
    if last(s, "require_certificate") != Some("true") {
        fail(
            format!(
                "require_certificate is {}",
                shown(last(s, "require_certificate"))
            ),
            "without it the broker does not ask clients for a certificate, so devices the WoTT CA never signed may connect",
        );
    }
    if last(s, "use_identity_as_username") != Some("true") {
        fail(
            format!(
                "use_identity_as_username is {}",
                shown(last(s, "use_identity_as_username"))
            ),
            "without it a client's username is not its certificate's CN, so the ACL's `user` blocks (device IDs) never apply",
        );
    }
    if last(s, "allow_anonymous") == Some("true") {
        fail(
            "allow_anonymous is true".into(),
            "clients without a username are admitted and get the rules before the first `user` line",
        );
    }
    if last(s, "acl_file").is_none() {
        fail(
            "there is no acl_file".into(),
            "without an ACL every connected device may read and write every topic",
        );
    }
    for key in ["cafile", "certfile", "keyfile"] {
        if last(s, key).is_none() {
            fail(
                format!("there is no {key}"),
                "the listener does not speak TLS with this device's certificate, so clients cannot verify the broker and send everything in the clear",
            );
        }
    }
    let mut warn = |found: String, why: &str| {
        out.push(Finding::warning("server.settings", found, why).fix(up));
    };
    match last(s, "tls_version") {
        Some("tlsv1.2" | "tlsv1.3") => {}
        other => warn(
            format!("tls_version is {}", shown(other)),
            "below TLS 1.2 (Mosquitto's default also allows TLS 1.1) the connection relies on outdated ciphers",
        ),
    }
    let dests: Vec<&str> = s
        .iter()
        .filter(|(k, _)| *k == "log_dest")
        .map(|(_, v)| *v)
        .collect();
    if dests.contains(&"none") || last(s, "log_type") == Some("none") {
        warn(
            "logging is off (log_dest none or log_type none)".into(),
            "without the log, `server status` cannot tell a broker that enforces no ACL, nor why it stopped; support has nothing to read",
        );
    }
    if out.is_empty() {
        out.push(Finding::ok(
            "server.settings",
            "require_certificate, use_identity_as_username, acl_file, TLS 1.2+, anonymous off, logging on",
        ));
    }
    out
}

fn shown(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("`{v}`"),
        None => "not set".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendered_conf_has_every_setting() {
        let conf = config::mosquitto_conf();
        let found = security_settings(&settings(&conf), "up");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].level, super::super::Level::Ok, "{found:?}");
    }

    #[test]
    fn missing_settings_fail() {
        let found = security_settings(
            &settings("allow_anonymous true\nlog_dest none\ntls_version tlsv1.1\n"),
            "up",
        );
        let failures = found
            .iter()
            .filter(|f| f.level == super::super::Level::Failure)
            .count();
        assert_eq!(failures, 7, "{found:#?}");
        assert_eq!(found.len(), 9);
    }
}
