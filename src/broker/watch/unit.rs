//! The systemd service that runs `server watch`: its text, and its
//! installation.
//!
//! The unit runs the same binary with the same cert dir, server dir and
//! broker as the invocation that printed it, and the environment that
//! changes what it does (`DOCKER_HOST`, the edit lock's timeout). It starts
//! after Docker, restarts always, and is hardened as far as watch still
//! works: it needs root (staging chowns to uid 1883), the Docker socket,
//! and writes only the server dir, so `ProtectSystem`, `ProtectHome` and
//! `PrivateTmp` are set unless one of its paths lies where they would hide
//! it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::broker::server_dir::absolute;
use crate::broker::{BrokerError, Context};
use crate::files::{self, UpdateOptions};

/// Where `--install` writes the unit.
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// The environment variables that change what watch does, carried into the unit.
const CARRIED_ENV: [&str; 2] = ["DOCKER_HOST", "WOTT_MQTT_LOCK_TIMEOUT"];

/// What the unit runs.
#[derive(Debug, Clone)]
pub struct UnitSpec {
    /// The broker's container name: the unit is named after it.
    pub container: String,
    /// The absolute path of this binary.
    pub exe: PathBuf,
    pub cert_dir: PathBuf,
    pub server_dir: PathBuf,
    /// `--name`, when the invocation had one.
    pub name: Option<String>,
    /// `--recheck`, when not the default.
    pub recheck_secs: Option<u64>,
}

impl UnitSpec {
    /// The unit for a watch of this context's broker (`container`, which
    /// `name` names when the watch is given `--name`), run by this binary.
    pub fn for_broker(
        ctx: &Context<'_>,
        container: &str,
        name: Option<&str>,
        recheck_secs: Option<u64>,
    ) -> Result<UnitSpec, BrokerError> {
        let exe = std::env::current_exe().map_err(|e| BrokerError::Watch {
            path: "/proc/self/exe".into(),
            reason: e.to_string(),
        })?;
        Ok(UnitSpec {
            container: container.to_string(),
            exe,
            cert_dir: absolute(ctx.cert_dir.path())?,
            server_dir: absolute(ctx.server_dir)?,
            name: name.map(str::to_string),
            recheck_secs,
        })
    }

    /// `wott-mqtt-watch-<container>.service`.
    pub fn unit_name(&self) -> String {
        unit_name_for(&self.container)
    }

    pub fn unit_path(&self) -> PathBuf {
        Path::new(UNIT_DIR).join(self.unit_name())
    }

    /// The unit file.
    pub fn render(&self) -> String {
        let mut exec = vec![
            self.exe.clone().into_os_string(),
            "--cert-dir".into(),
            self.cert_dir.clone().into_os_string(),
            "--server-dir".into(),
            self.server_dir.clone().into_os_string(),
            "server".into(),
            "watch".into(),
        ];
        if let Some(name) = &self.name {
            exec.extend(["--name".into(), OsString::from(name)]);
        }
        if let Some(secs) = self.recheck_secs {
            exec.extend(["--recheck".into(), secs.to_string().into()]);
        }
        let exec: Vec<String> = exec
            .iter()
            .map(|w| systemd_word(&w.to_string_lossy()))
            .collect();
        let mut text = format!(
            "# Written by wott-mqtt (`wott-mqtt server watch --print-unit`).\n\
             [Unit]\n\
             Description=wott-mqtt: keep the Mosquitto broker {} serving the WoTT agent's certificate\n\
             After=docker.service network-online.target\n\
             Wants=docker.service\n\
             \n\
             [Service]\n\
             Type=exec\n\
             ExecStart={}\n",
            self.container,
            exec.join(" ")
        );
        for key in CARRIED_ENV {
            if let Some(value) = std::env::var_os(key).filter(|v| !v.is_empty()) {
                let pair = format!("{key}={}", value.to_string_lossy());
                text.push_str(&format!("Environment={}\n", systemd_word(&pair)));
            }
        }
        text.push_str("Restart=always\nRestartSec=5\n");
        text.push_str(&self.hardening());
        text.push_str("\n[Install]\nWantedBy=multi-user.target\n");
        text
    }

    /// The sandboxing that leaves watch working: never a setting that would
    /// hide or freeze one of its paths.
    fn hardening(&self) -> String {
        let paths = [&self.exe, &self.cert_dir, &self.server_dir];
        let under = |roots: &[&str]| {
            paths
                .iter()
                .any(|p| roots.iter().any(|root| p.starts_with(root)))
        };
        let mut text = String::from(
            "NoNewPrivileges=yes\nPrivateDevices=yes\nProtectKernelTunables=yes\n\
             ProtectKernelModules=yes\nProtectControlGroups=yes\nRestrictSUIDSGID=yes\n\
             LockPersonality=yes\nRestrictRealtime=yes\n",
        );
        // Watch writes the server dir (the staged certificates) and nothing else.
        if !self.server_dir.starts_with("/usr")
            && !self.server_dir.starts_with("/etc")
            && !self.server_dir.starts_with("/boot")
        {
            text.push_str("ProtectSystem=full\n");
        }
        if !under(&["/home", "/root", "/run/user"]) {
            text.push_str("ProtectHome=yes\n");
        }
        if !under(&["/tmp", "/var/tmp"]) {
            text.push_str("PrivateTmp=yes\n");
        }
        text
    }
}

/// One word of a systemd command line or assignment: as it is when plain,
/// else double-quoted with `\` and `"` escaped. `%` (specifiers) and `$`
/// (variable expansion) are doubled either way.
fn systemd_word(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@+,%$".contains(&b));
    if plain {
        escaped
    } else {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// What `--install` or `--uninstall` did.
#[derive(Debug, Clone, Serialize)]
pub struct UnitReport {
    pub changed: bool,
    pub dry_run: bool,
    pub unit: String,
    pub path: PathBuf,
    /// `installed`, `updated`, `unchanged`, `removed` or `absent`.
    pub action: &'static str,
    /// The `systemctl` commands run (or, in a dry run, to be run).
    pub commands: Vec<String>,
}

/// The unit that watches the broker `container`: `wott-mqtt-watch-<container>.service`.
pub fn unit_name_for(container: &str) -> String {
    format!("wott-mqtt-watch-{container}.service")
}

/// Whether something keeps the broker `container` current: its unit is
/// installed and enabled (`systemctl is-enabled`), or a `wott-mqtt server
/// watch` process runs (under another supervisor, or by hand).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Keeper {
    Unit { unit: String, enabled: bool },
    Process { pid: u32 },
    Nothing { unit: String },
}

pub fn keeper(container: &str, server_dir: &Path) -> Keeper {
    let server_dir = absolute(server_dir).unwrap_or_else(|_| server_dir.to_path_buf());
    let unit = unit_name_for(container);
    let installed = Path::new(UNIT_DIR).join(&unit).is_file();
    if installed {
        let enabled = systemd_running()
            && Command::new("systemctl")
                .args(["is-enabled", "--quiet", &unit])
                .status()
                .is_ok_and(|s| s.success());
        if enabled {
            return Keeper::Unit { unit, enabled };
        }
        if let Some(pid) = watch_process(&server_dir) {
            return Keeper::Process { pid };
        }
        return Keeper::Unit { unit, enabled };
    }
    match watch_process(&server_dir) {
        Some(pid) => Keeper::Process { pid },
        None => Keeper::Nothing { unit },
    }
}

/// A running `wott-mqtt … server watch` process for the server dir
/// `server_dir` (absolute), from /proc: its `--server-dir`, else its
/// `WOTT_MQTT_SERVER_DIR`, else the default.
fn watch_process(server_dir: &Path) -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let exe = Path::new(std::ffi::OsStr::from_bytes(args.first()?));
            let ours = exe
                .file_name()
                .is_some_and(|n| n.as_bytes().starts_with(b"wott-mqtt"));
            let watching = args
                .windows(2)
                .any(|w| w[0] == b"server" && w[1] == b"watch");
            if pid == me || !ours || !watching {
                return None;
            }
            let flag = args.iter().enumerate().find_map(|(i, a)| {
                if *a == b"--server-dir" {
                    args.get(i + 1).map(|v| v.to_vec())
                } else {
                    a.strip_prefix(b"--server-dir=").map(<[u8]>::to_vec)
                }
            });
            let env = || {
                let environ = std::fs::read(entry.path().join("environ")).ok()?;
                environ
                    .split(|&b| b == 0)
                    .find_map(|v| v.strip_prefix(b"WOTT_MQTT_SERVER_DIR=").map(<[u8]>::to_vec))
                    .filter(|v| !v.is_empty())
            };
            let dir = flag
                .or_else(env)
                .unwrap_or_else(|| crate::broker::DEFAULT_SERVER_DIR.as_bytes().to_vec());
            let dir = Path::new(std::ffi::OsStr::from_bytes(&dir));
            let dir = if dir.is_absolute() {
                dir.to_path_buf()
            } else {
                let cwd = std::fs::read_link(entry.path().join("cwd")).ok()?;
                cwd.join(dir)
            };
            let same = absolute(&dir).is_ok_and(|d| d == server_dir);
            same.then_some(pid)
        })
}

/// Whether systemd manages this machine (what `sd_booted()` tests).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn require_systemd(unit: &str) -> Result<(), BrokerError> {
    if systemd_running() {
        Ok(())
    } else {
        Err(BrokerError::NoSystemd {
            unit: unit.to_string(),
        })
    }
}

/// Writes the unit, reloads systemd and enables and starts the service.
pub fn install(spec: &UnitSpec, dry_run: bool) -> Result<UnitReport, BrokerError> {
    let unit = spec.unit_name();
    require_systemd(&unit)?;
    let path = spec.unit_path();
    let text = spec.render();
    let edit = files::update::<files::FileError>(
        &path,
        UpdateOptions {
            dry_run,
            new_mode: 0o644,
        },
        |_| Ok(text.clone().into_bytes()),
    )?;
    let action = match (&edit.before, edit.changed()) {
        (None, _) => "installed",
        (Some(_), true) => "updated",
        (Some(_), false) => "unchanged",
    };
    let mut commands = vec![vec!["daemon-reload".to_string()]];
    commands.push(vec!["enable".into(), "--now".into(), unit.clone()]);
    if edit.changed() && edit.before.is_some() {
        commands.push(vec!["restart".into(), unit.clone()]);
    }
    let commands = run_all(&commands, dry_run)?;
    Ok(UnitReport {
        changed: edit.changed(),
        dry_run,
        unit,
        path,
        action,
        commands,
    })
}

/// Stops and disables the service, removes the unit and reloads systemd.
pub fn uninstall(spec: &UnitSpec, dry_run: bool) -> Result<UnitReport, BrokerError> {
    let unit = spec.unit_name();
    require_systemd(&unit)?;
    let path = spec.unit_path();
    let present = std::fs::symlink_metadata(&path).is_ok();
    let mut commands = Vec::new();
    if present {
        commands.push(vec!["disable".into(), "--now".into(), unit.clone()]);
    }
    let mut ran = run_all(&commands, dry_run)?;
    if present && !dry_run {
        std::fs::remove_file(&path).map_err(|e| BrokerError::UnitFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    if present {
        ran.extend(run_all(&[vec!["daemon-reload".to_string()]], dry_run)?);
    }
    Ok(UnitReport {
        changed: present,
        dry_run,
        unit,
        path,
        action: if present { "removed" } else { "absent" },
        commands: ran,
    })
}

/// Runs `systemctl` with each argument list (none in a dry run); returns
/// them as command lines.
fn run_all(commands: &[Vec<String>], dry_run: bool) -> Result<Vec<String>, BrokerError> {
    let mut lines = Vec::new();
    for args in commands {
        let line = format!("systemctl {}", args.join(" "));
        if !dry_run {
            let out = Command::new("systemctl").args(args).output().map_err(|e| {
                BrokerError::Systemctl {
                    command: line.clone(),
                    output: e.to_string(),
                }
            })?;
            if !out.status.success() {
                return Err(BrokerError::Systemctl {
                    command: line,
                    output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
        }
        lines.push(line);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(server_dir: &str) -> UnitSpec {
        UnitSpec {
            container: "wott-mosquitto".into(),
            exe: "/usr/local/bin/wott-mqtt".into(),
            cert_dir: "/opt/wott/certs".into(),
            server_dir: server_dir.into(),
            name: None,
            recheck_secs: None,
        }
    }

    #[test]
    fn the_unit_runs_watch_with_the_same_dirs_and_is_hardened() {
        let text = spec("/opt/wott/mosquitto").render();
        assert!(text.contains(
            "ExecStart=/usr/local/bin/wott-mqtt --cert-dir /opt/wott/certs \
             --server-dir /opt/wott/mosquitto server watch\n"
        ));
        for line in [
            "After=docker.service",
            "Wants=docker.service",
            "Restart=always",
            "NoNewPrivileges=yes",
            "ProtectSystem=full",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "WantedBy=multi-user.target",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        assert_eq!(
            spec("/opt/wott/mosquitto").unit_name(),
            "wott-mqtt-watch-wott-mosquitto.service"
        );
    }

    #[test]
    fn hardening_never_hides_a_path_watch_needs() {
        let home = spec("/home/pi/broker").render();
        assert!(!home.contains("ProtectHome"), "{home}");
        let tmp = spec("/tmp/broker").render();
        assert!(!tmp.contains("PrivateTmp"), "{tmp}");
        let etc = spec("/etc/mosquitto-wott").render();
        assert!(!etc.contains("ProtectSystem"), "{etc}");
    }

    #[test]
    fn words_are_quoted_for_systemd() {
        assert_eq!(systemd_word("/opt/wott/certs"), "/opt/wott/certs");
        assert_eq!(systemd_word("/my dir"), "\"/my dir\"");
        assert_eq!(systemd_word("100%"), "100%%");
        assert_eq!(systemd_word("a\"b"), "\"a\\\"b\"");
        assert_eq!(systemd_word("$HOME"), "$$HOME");
    }
}
