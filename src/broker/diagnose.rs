//! Why a broker container stopped, read from its log.
//!
//! When Mosquitto exits it says why in a line or two, among many others and
//! often once per restart. This picks the last run's lines, finds the ones
//! that explain the exit, and names the cause so the error can give the fix.
//! The patterns are Mosquitto 2.0's own messages (seen on 2.0.11).

use serde::Serialize;

/// What made the broker exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashCause {
    /// "Unable to load server key file … Permission denied": the key is not
    /// readable by uid 1883 (the tutorial's run.sh mistake).
    KeyPermission,
    /// The CA, certificate or key file is missing or not what it should be.
    Certificates,
    /// permissions.acl cannot be opened or has a line Mosquitto rejects.
    AclFile,
    /// mosquitto.conf has a line Mosquitto rejects.
    Config,
    /// The listener's address is taken or does not exist.
    Port,
    /// Killed from outside (SIGKILL, exit code 137) with nothing wrong in its
    /// log: `docker kill`, `kill -9`, a shutdown.
    Killed,
    /// Killed by the kernel for using too much memory.
    OutOfMemory,
    /// None of the above; the quoted lines are all there is.
    Unknown,
}

impl std::fmt::Display for CrashCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CrashCause::KeyPermission => {
                "it may not read its private key (Mosquitto drops to uid 1883 before loading it)"
            }
            CrashCause::Certificates => "it cannot load its TLS certificates",
            CrashCause::AclFile => "it cannot load permissions.acl",
            CrashCause::Config => "it rejects its configuration",
            CrashCause::Port => "it cannot open its listener port",
            CrashCause::Killed => {
                "it was killed from outside (SIGKILL, exit code 137; e.g. `docker kill` or `kill -9`), with no error of its own in its log"
            }
            CrashCause::OutOfMemory => "the kernel killed it for using too much memory (OOMKilled)",
            CrashCause::Unknown => "the reason is in its log",
        })
    }
}

impl CrashCause {
    pub fn hint(self) -> String {
        match self {
            CrashCause::KeyPermission => {
                "the key the broker reads must belong to uid 1883: let wott-mqtt stage a copy \
                 (`sudo wott-mqtt server up`) instead of mounting the agent's root-only client.key"
            }
            CrashCause::Certificates => {
                "check the staged identity with `wott-mqtt whoami --long --cert-dir <server-dir>/certs`, \
                 then run `sudo wott-mqtt server up` to stage it again"
            }
            CrashCause::AclFile => {
                "check the file with `wott-mqtt acl validate`; it must be readable by uid 1883"
            }
            CrashCause::Config => {
                "wott-mqtt renders mosquitto.conf: run `sudo wott-mqtt server up` to restore it \
                 (check the image is Mosquitto 2 with --image)"
            }
            CrashCause::Port => "publish the broker on another port with --port",
            CrashCause::Killed => {
                "`sudo wott-mqtt server up` starts it again; if it keeps happening, find what kills it (`docker events`, `journalctl`)"
            }
            CrashCause::OutOfMemory => {
                "free memory on this host, then `sudo wott-mqtt server up` starts it again"
            }
            CrashCause::Unknown => {
                "see the whole log with `wott-mqtt server logs`, or check --image is a Mosquitto 2 image"
            }
        }
        .to_string()
    }
}

/// What Mosquitto logs when it handles SIGHUP; it re-reads permissions.acl
/// and its certificates in the same step.
pub const RELOAD_LINE: &str = "Reloading config.";

/// Whether the broker reads its certificates and permissions.acl right
/// after this log line: at start, and on each reload (SIGHUP).
pub fn loads_files(line: &str) -> bool {
    line.contains(RELOAD_LINE) || (line.contains("mosquitto version") && line.contains("starting"))
}

/// Whether the log shows a broker that enforces no ACL at all: Mosquitto
/// 2.0 that fails to load its ACL file on a reload logs `Error opening acl
/// file` and then allows everything, until a later reload that succeeds (it
/// logs nothing but `Reloading config.` then). Returns the error lines of the
/// failed load when the last load failed.
pub fn failed_open(log: &[String]) -> Option<Vec<String>> {
    let mut failed: Option<Vec<String>> = None;
    let mut since_reload: Vec<&String> = Vec::new();
    for line in log {
        if loads_files(line) {
            failed = None;
            since_reload.clear();
            continue;
        }
        since_reload.push(line);
        if line.contains("Error opening acl file") {
            failed = Some(
                since_reload
                    .iter()
                    .filter(|l| l.contains("Error"))
                    .map(|l| l.trim_end().to_string())
                    .collect(),
            );
        }
    }
    failed
}

/// The cause, and the lines (at most [`MAX_QUOTED`]) that show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub cause: CrashCause,
    pub lines: Vec<String>,
}

pub const MAX_QUOTED: usize = 8;

/// Reads a container log (oldest line first, possibly several runs): the
/// last run that says what went wrong. The newest run may have only just
/// started (a restart), so a run with no error line yields to the one before.
pub fn diagnose(log: &[String]) -> Diagnosis {
    let runs = runs(log);
    let run = runs
        .iter()
        .rev()
        .find(|run| run.iter().any(|l| is_telling(l)))
        .or(runs.last())
        .copied()
        .unwrap_or_default();
    let cause = classify(run);
    let mut lines: Vec<String> = run
        .iter()
        .filter(|l| is_telling(l))
        .map(|l| l.trim_end().to_string())
        .collect();
    if lines.is_empty() {
        lines = run
            .iter()
            .filter(|l| !is_noise(l))
            .map(|l| l.trim_end().to_string())
            .collect();
    }
    if lines.len() > MAX_QUOTED {
        lines.drain(..lines.len() - MAX_QUOTED);
    }
    Diagnosis { cause, lines }
}

/// [`diagnose`], with what the engine knows about how the last run ended:
/// a run killed from outside, or by the OOM killer, says nothing in its log.
pub fn diagnose_exit(log: &[String], exit_code: Option<i64>, oom_killed: bool) -> Diagnosis {
    let mut diagnosis = diagnose(log);
    if diagnosis.cause == CrashCause::Unknown {
        if oom_killed {
            diagnosis.cause = CrashCause::OutOfMemory;
        } else if exit_code == Some(137) {
            diagnosis.cause = CrashCause::Killed;
        }
    }
    diagnosis
}

/// The log cut into the broker's runs. A run that got going begins with
/// "mosquitto version … starting"; one that failed on its config prints only
/// the error, so lines after a clean "terminating" begin a run of their own.
fn runs(log: &[String]) -> Vec<&[String]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for (i, line) in log.iter().enumerate() {
        let starts_run = line.contains("mosquitto version") && line.contains("starting");
        let after_stop = i > 0 && log[i - 1].contains("terminating");
        if (starts_run || after_stop) && i > start {
            runs.push(&log[start..i]);
            start = i;
        }
    }
    if start < log.len() {
        runs.push(&log[start..]);
    }
    runs
}

fn classify(run: &[String]) -> CrashCause {
    let has = |needle: &str| run.iter().any(|l| l.contains(needle));
    if has("Unable to load server key file") && has("Permission denied") {
        CrashCause::KeyPermission
    } else if has("acl_file") || has("acl file") {
        CrashCause::AclFile
    } else if has("Unable to load")
        || has("Check cafile")
        || has("Check certfile")
        || has("Check keyfile")
        || has("Server certificate/key are inconsistent")
    {
        CrashCause::Certificates
    } else if has("Address already in use")
        || has("Cannot assign requested address")
        || has("Unable to create listener")
    {
        CrashCause::Port
    } else if has("Error found at")
        || has("Unknown configuration variable")
        || has("Error: Invalid")
        || has("Error: Unable to open config file")
        || has("Error: Empty")
        || has("Duplicate")
    {
        CrashCause::Config
    } else {
        CrashCause::Unknown
    }
}

fn is_telling(line: &str) -> bool {
    !is_noise(line)
        && (line.contains("Error")
            || line.contains("Unable")
            || line.contains("denied")
            || line.contains("Permission"))
}

/// The eclipse-mosquitto entrypoint's `chown -R /mosquitto` complains about
/// the read-only mounts on every start; that says nothing about the exit.
fn is_noise(line: &str) -> bool {
    line.starts_with("chown:") || line.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_exit_137_is_a_kill_and_oom_is_named() {
        let log = vec![
            "1: mosquitto version 2.0.11 starting".to_string(),
            "2: mosquitto version 2.0.11 running".to_string(),
        ];
        assert_eq!(
            diagnose_exit(&log, Some(137), false).cause,
            CrashCause::Killed
        );
        assert_eq!(
            diagnose_exit(&log, Some(137), true).cause,
            CrashCause::OutOfMemory
        );
        assert_eq!(
            diagnose_exit(&log, Some(1), false).cause,
            CrashCause::Unknown
        );
        let key = vec![
            "1: mosquitto version 2.0.11 starting".to_string(),
            "2: Error: Unable to load server key file \"/k\". Check keyfile.".to_string(),
            "3: OpenSSL Error[0]: error:8000000D:system library::Permission denied".to_string(),
        ];
        assert_eq!(
            diagnose_exit(&key, Some(137), false).cause,
            CrashCause::KeyPermission
        );
    }

    fn log(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn the_run_sh_key_mistake_is_named() {
        let d = diagnose(&log("1795554972: mosquitto version 2.0.11 starting\n\
             1795554972: Config loaded from /mosquitto/config/mosquitto.conf.\n\
             1795554972: Opening ipv4 listen socket on port 8883.\n\
             1795554972: Error: Unable to load server key file \"/mosquitto/certs/client.key\". Check keyfile.\n\
             1795554972: OpenSSL Error[0]: error:8000000D:system library::Permission denied\n"));
        assert_eq!(d.cause, CrashCause::KeyPermission);
        assert_eq!(d.lines.len(), 2, "{:?}", d.lines);
        assert!(d.lines[0].contains("Unable to load server key file"));
    }

    #[test]
    fn only_the_last_run_counts() {
        let d = diagnose(&log(
            "chown: /mosquitto/config/mosquitto.conf: Read-only file system\n\
             1: mosquitto version 2.0.11 starting\n\
             1: Error: Unable to load CA certificates. Check cafile \"/mosquitto/certs/ca.crt\".\n\
             2: mosquitto version 2.0.11 starting\n\
             2: Opening ipv4 listen socket on port 8883.\n\
             2: Error: Address already in use\n",
        ));
        assert_eq!(d.cause, CrashCause::Port);
        assert_eq!(d.lines, ["2: Error: Address already in use"]);
    }

    #[test]
    fn a_config_error_after_a_clean_stop_is_its_own_run() {
        let d = diagnose(&log("1: mosquitto version 2.0.11 starting\n\
             1: mosquitto version 2.0.11 running\n\
             1: mosquitto version 2.0.11 terminating\n\
             Error: Unknown configuration variable \"bogus\".\n\
             Error found at /mosquitto/config/mosquitto.conf:12.\n"));
        assert_eq!(d.cause, CrashCause::Config);
        assert_eq!(d.lines.len(), 2, "{:?}", d.lines);
    }

    #[test]
    fn a_failed_acl_reload_shows_until_a_good_one() {
        let log = |text: &str| -> Vec<String> { text.lines().map(str::to_string).collect() };
        let open = log("1: mosquitto version 2.0.11 starting\n\
             2: Reloading config.\n\
             2: Error: Invalid topic access type \"sometimes\" in acl_file \"/m/permissions.acl\".\n\
             2: Error opening acl file \"/m/permissions.acl\".\n\
             3: New connection from 10.0.0.2:5000 on port 8883.\n");
        let lines = failed_open(&open).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("sometimes"));
        let mut fixed = open.clone();
        fixed.push("4: Reloading config.".into());
        assert_eq!(failed_open(&fixed), None);
        assert_eq!(failed_open(&log("1: Reloading config.\n")), None);
        assert_eq!(failed_open(&[]), None);
    }

    #[test]
    fn acl_problems_are_told_apart_from_config_ones() {
        let d = diagnose(&log("1: mosquitto version 2.0.11 starting\n\
             1: Config loaded from /mosquitto/config/mosquitto.conf.\n\
             1: Error: Unable to open acl_file \"/mosquitto/config/permissions.acl\".\n\
             1: Error opening acl file \"/mosquitto/config/permissions.acl\".\n"));
        assert_eq!(d.cause, CrashCause::AclFile);
    }

    #[test]
    fn a_run_that_just_started_yields_to_the_one_that_failed() {
        let d = diagnose(&log("1: mosquitto version 2.0.11 starting\n\
             1: Error: Unable to load server key file \"/mosquitto/certs/client.key\". Check keyfile.\n\
             1: OpenSSL Error[0]: error:8000000D:system library::Permission denied\n\
             2: mosquitto version 2.0.11 starting\n\
             2: Config loaded from /mosquitto/config/mosquitto.conf.\n"));
        assert_eq!(d.cause, CrashCause::KeyPermission);
        assert!(d.lines[0].starts_with("1: Error"), "{:?}", d.lines);
    }

    #[test]
    fn an_unknown_exit_quotes_the_last_lines() {
        let lines: Vec<String> = (0..20).map(|i| format!("line {i}")).collect();
        let d = diagnose(&lines);
        assert_eq!(d.cause, CrashCause::Unknown);
        assert_eq!(d.lines.len(), MAX_QUOTED);
        assert_eq!(d.lines.last().map(String::as_str), Some("line 19"));
    }
}
