//! Every check doctor has: its stable code, its role, what it looks at.
//! docs/doctor.md lists the same (a unit test keeps them in step).

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Failure,
}

/// Which part of the tutorial a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Identity,
    Server,
    Acl,
    Client,
}

impl Role {
    pub fn title(self) -> &'static str {
        match self {
            Role::Identity => "Identity",
            Role::Server => "Server",
            Role::Acl => "ACL",
            Role::Client => "Client",
        }
    }
}

/// A check doctor can run: its stable code and what it looks at.
#[derive(Debug, Clone, Copy)]
pub struct CheckInfo {
    pub code: &'static str,
    pub role: Role,
    /// What it looks at: docs/doctor.md's table says the same.
    #[cfg_attr(not(test), allow(dead_code))]
    pub summary: &'static str,
}

const fn info(code: &'static str, role: Role, summary: &'static str) -> CheckInfo {
    CheckInfo {
        code,
        role,
        summary,
    }
}

/// Every check, in the order doctor runs them. docs/doctor.md lists the
/// same codes (a unit test keeps them in step); a code never changes meaning.
pub const CHECKS: &[CheckInfo] = &[
    info(
        "identity.files",
        Role::Identity,
        "client.crt, client.key and ca.crt are there and load",
    ),
    info(
        "identity.device-id",
        Role::Identity,
        "the certificate's CN is a WoTT device ID",
    ),
    info(
        "identity.expiry",
        Role::Identity,
        "the certificate is valid now and for more than 3 days",
    ),
    info(
        "identity.key-match",
        Role::Identity,
        "client.key belongs to client.crt",
    ),
    info("identity.chain", Role::Identity, "ca.crt signed client.crt"),
    info(
        "identity.key-quality",
        Role::Identity,
        "the key's algorithm and size",
    ),
    info(
        "identity.cn-in-san",
        Role::Identity,
        "the CN is among the certificate's DNS names",
    ),
    info(
        "identity.key-mode",
        Role::Identity,
        "other users cannot read client.key",
    ),
    info(
        "server.dir-trust",
        Role::Server,
        "the server dir and the folders above it are root's and not writable by others",
    ),
    info(
        "server.conf-edited",
        Role::Server,
        "mosquitto.conf is what `server up` renders",
    ),
    info(
        "server.settings",
        Role::Server,
        "the settings that make the broker secure are in mosquitto.conf",
    ),
    info(
        "server.staged",
        Role::Server,
        "the staged copies are the agent's, with the right owner and modes",
    ),
    info(
        "server.ca-expiry",
        Role::Server,
        "the CA certificate the broker trusts is valid for more than 30 days",
    ),
    info(
        "server.engine",
        Role::Server,
        "the container engine answers",
    ),
    info(
        "server.running",
        Role::Server,
        "the broker's container runs and answers an mTLS CONNECT",
    ),
    info(
        "server.open-acl",
        Role::Server,
        "the broker enforces its ACL (its last ACL load did not fail)",
    ),
    info(
        "server.cert-drift",
        Role::Server,
        "the broker serves the agent's current certificate",
    ),
    info(
        "server.acl-drift",
        Role::Server,
        "the broker loaded permissions.acl after its last change",
    ),
    info(
        "server.config-current",
        Role::Server,
        "the container was created from the current image and configuration",
    ),
    info(
        "server.bind",
        Role::Server,
        "who can reach the broker's port",
    ),
    info(
        "server.restart-policy",
        Role::Server,
        "the engine restarts the broker after a crash or a reboot",
    ),
    info(
        "server.hardening",
        Role::Server,
        "the container has no capabilities, no new privileges and a read-only root",
    ),
    info(
        "server.watcher",
        Role::Server,
        "something applies renewals and ACL edits (`server watch`)",
    ),
    info(
        "acl.file",
        Role::Acl,
        "permissions.acl exists and can be read",
    ),
    info(
        "acl.refused",
        Role::Acl,
        "Mosquitto accepts every line of permissions.acl",
    ),
    info(
        "acl.lint",
        Role::Acl,
        "no rule means something else than it seems (`acl validate`'s warnings)",
    ),
    info("acl.duplicate", Role::Acl, "no rule repeats another"),
    info(
        "acl.broad-grant",
        Role::Acl,
        "no grant reaches every topic, or writes to $SYS",
    ),
    info(
        "acl.shadowed",
        Role::Acl,
        "no grant is already given by a wider grant of the same device",
    ),
    info(
        "acl.device-id",
        Role::Acl,
        "every `user` is a WoTT device ID",
    ),
    info(
        "client.hosts-missing",
        Role::Client,
        "the server's ID resolves (a hosts entry)",
    ),
    info(
        "client.hosts-duplicate",
        Role::Client,
        "one hosts line maps the server's ID",
    ),
    info(
        "client.hosts-stale",
        Role::Client,
        "the hosts entry points at the server's current address",
    ),
    info(
        "client.probe",
        Role::Client,
        "`check`'s staged probe passes up to SUBACK",
    ),
];

/// The check `code`; a code not in [`CHECKS`] is a bug.
pub(super) fn check_info(code: &str) -> CheckInfo {
    CHECKS
        .iter()
        .copied()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("doctor check {code} is not in CHECKS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_grouped_by_role() {
        for (i, a) in CHECKS.iter().enumerate() {
            assert!(
                a.code
                    .starts_with(&format!("{}.", format!("{:?}", a.role).to_lowercase())),
                "{} is not under its role",
                a.code
            );
            for b in &CHECKS[i + 1..] {
                assert_ne!(a.code, b.code);
                assert!(a.role <= b.role, "{} after {}", a.code, b.code);
            }
        }
    }

    #[test]
    fn docs_list_every_check_and_nothing_else() {
        let doc = include_str!("../../docs/doctor.md");
        for check in CHECKS {
            let row = format!("| `{}` | {} |", check.code, check.summary);
            assert!(doc.contains(&row), "docs/doctor.md lacks the row {row:?}");
        }
        let section = doc
            .split("\n## ")
            .find(|s| s.starts_with("The checks"))
            .expect("docs/doctor.md has a section \"The checks\"");
        let documented: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter(|code| code.contains('.') && !code.contains(' '))
            .collect();
        for code in documented {
            assert!(
                CHECKS.iter().any(|c| c.code == code),
                "docs/doctor.md lists {code}, which doctor does not have"
            );
        }
    }
}
