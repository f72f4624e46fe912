//! Process exit codes.
//!
//! Scripts and provisioning tools branch on these, so they are a stable,
//! documented contract (docs/exit-codes.md); a test keeps the two in step.

use serde::Serialize;

/// Why the process ended. The numeric values never change once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "u8")]
#[repr(u8)]
pub enum ExitCode {
    /// Everything requested succeeded (for `acl check`: the access is allowed).
    Success = 0,
    /// An error not covered below (for `acl check`: the access is denied).
    Failure = 1,
    /// The command line was wrong, or a wizard answer is missing without a terminal.
    Usage = 2,
    /// The local identity is unusable: cert, key or CA missing, unreadable, mismatched, expired.
    Identity = 3,
    /// The server name does not resolve.
    Resolve = 4,
    /// The TCP connection failed: refused, unreachable or timed out.
    Connect = 5,
    /// The TLS handshake failed: a side rejected the other's certificate, or the port is not TLS.
    Tls = 6,
    /// The broker refused the MQTT CONNECT.
    MqttRefused = 7,
    /// Subscribed, but the requested message never arrived (ACL or publisher problem).
    NoMessage = 8,
    /// The ACL file does not exist.
    AclMissing = 9,
    /// The ACL file cannot be read: permission, not a regular file, a broken link, too large.
    AclUnreadable = 10,
    /// Mosquitto would refuse the ACL file, so no rule in it can be trusted (`acl check`, `acl list`).
    AclRefused = 11,
    /// `server status`: the broker runs and serves older files than those on
    /// disk (a renewed certificate or an edited permissions.acl not reloaded).
    Drift = 12,
    /// `doctor`: at least one check failed (with `--strict`, or warned).
    DoctorFailed = 13,
    /// Interrupted by Ctrl-C (SIGINT), as shells report it.
    Interrupted = 130,
}

impl ExitCode {
    /// Every code, in numeric order.
    pub const ALL: [ExitCode; 15] = [
        ExitCode::Success,
        ExitCode::Failure,
        ExitCode::Usage,
        ExitCode::Identity,
        ExitCode::Resolve,
        ExitCode::Connect,
        ExitCode::Tls,
        ExitCode::MqttRefused,
        ExitCode::NoMessage,
        ExitCode::AclMissing,
        ExitCode::AclUnreadable,
        ExitCode::AclRefused,
        ExitCode::Drift,
        ExitCode::DoctorFailed,
        ExitCode::Interrupted,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn is_success(self) -> bool {
        self == ExitCode::Success
    }
}

impl From<ExitCode> for u8 {
    fn from(code: ExitCode) -> u8 {
        code.code()
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCode;

    #[test]
    fn values_are_the_documented_contract() {
        let codes: Vec<u8> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 130]);
    }

    #[test]
    fn docs_table_matches_the_enum() {
        let doc = include_str!("../docs/exit-codes.md");
        for code in ExitCode::ALL {
            let row = format!("| {} | `{:?}` |", code.code(), code);
            assert!(
                doc.contains(&row),
                "docs/exit-codes.md lacks the row {row:?}"
            );
        }
    }
}
