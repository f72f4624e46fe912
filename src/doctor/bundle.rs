//! `doctor --bundle FILE`: one tar.gz for a support ticket.
//!
//! It holds what support asks for, in one go: the tool's, the OS's and the
//! engine's versions, doctor's findings, `check --json` per server, `server
//! status --json`, the broker's last log lines, `mosquitto.conf`, the ACL
//! (unless `--no-acl`), the hosts lines for `*.d.wott.local` and summaries
//! of the certificates. Never key material: nothing is read from a key file
//! but the bytes it must not contain, every entry is scrubbed of PEM
//! blocks, `PRIVATE KEY` and any piece of the keys' PEM bodies or DER
//! before it is packed, and the entries that were scrubbed are named.
//!
//! The file is created mode 0600 through its folder's handle: written
//! beside its name and renamed over it, so a link in its place is refused,
//! never followed; a folder others may write to without the sticky bit is
//! refused too (root writes here, and another user could swap the file).

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;

use super::DoctorReport;
use crate::broker::Context;
use crate::broker::config::ServerDir;
use crate::broker::docker::Engine;
use crate::broker::record::RECORD_FILE;
use crate::diagnose::Diagnose;
use crate::files::dir::Dir;
use crate::identity::{self, CertInfo};

/// The folder every entry is under in the archive.
pub const ROOT: &str = "wott-mqtt-doctor";

/// What to pack.
#[derive(Debug, Clone)]
pub struct BundleOptions {
    pub path: PathBuf,
    /// Leave `permissions.acl` out (`--no-acl`).
    pub no_acl: bool,
    /// How many of the broker's last log lines.
    pub log_lines: u64,
    /// `wott-mqtt --version`'s text.
    pub tool_version: String,
    pub hosts_file: PathBuf,
}

/// What was packed.
#[derive(Debug, Clone, Serialize)]
pub struct BundleReport {
    pub path: PathBuf,
    pub bytes: usize,
    /// The entries, under `wott-mqtt-doctor/`.
    pub files: Vec<String>,
    /// Entries from which something that looked like key material was removed.
    pub scrubbed: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot write the bundle {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("refusing to write the bundle {}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
}

impl Diagnose for BundleError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            BundleError::Write { .. } => "give a path in a folder you may write to, e.g. --bundle ./wott-mqtt-doctor.tar.gz".into(),
            BundleError::Refused { .. } => "give a new path in a folder only you (or root) may write to, e.g. --bundle /root/wott-mqtt-doctor.tar.gz".into(),
        })
    }
}

/// One certificate, as support needs it.
#[derive(Debug, Serialize)]
struct CertSummary {
    file: String,
    subject: String,
    issuer: String,
    serial: String,
    not_before: String,
    not_after: String,
    fingerprint_sha256: String,
    dns_names: Vec<String>,
}

impl CertSummary {
    fn of(file: &Path, info: &CertInfo) -> CertSummary {
        CertSummary {
            file: file.display().to_string(),
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            serial: info.serial.clone(),
            not_before: info.not_before.to_string(),
            not_after: info.not_after.to_string(),
            fingerprint_sha256: info.fingerprint_sha256.clone(),
            dns_names: info.dns_names.clone(),
        }
    }
}

/// Packs the bundle for `report` and writes it.
pub async fn bundle(
    ctx: &Context<'_>,
    report: &DoctorReport,
    options: &BundleOptions,
) -> Result<BundleReport, BundleError> {
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let engine = Engine::connect().await;
    let engine_version = match &engine {
        Ok(engine) => engine.version().await.unwrap_or_else(|e| e.to_string()),
        Err(e) => format!("no engine: {e}"),
    };
    entries.push((
        "version.txt".into(),
        versions(&options.tool_version, &engine_version).into_bytes(),
    ));
    entries.push(("doctor.json".into(), json(report)));
    for (server, check) in &report.material.checks {
        entries.push((format!("check/{}.json", file_name(server)), json(check)));
    }
    if let Some(status) = &report.material.status {
        entries.push(("server-status.json".into(), json(status)));
    }
    if let (Ok(engine), Some(id)) = (&engine, &report.material.container_id) {
        let log = match engine.log_lines(id, options.log_lines).await {
            Ok(lines) => lines.join("\n") + "\n",
            Err(e) => format!("cannot read the broker's log: {e}\n"),
        };
        entries.push(("broker.log".into(), log.into_bytes()));
    }
    let dir = ServerDir::new(ctx.server_dir);
    let mut server_files = vec![
        (dir.conf_path(), "server/mosquitto.conf"),
        (dir.path().join(RECORD_FILE), "server/broker.json"),
    ];
    if !options.no_acl {
        server_files.push((dir.acl_path(), "server/permissions.acl"));
    }
    for (path, name) in server_files {
        if let Ok(Some(bytes)) = crate::files::read_optional(&path) {
            entries.push((name.into(), bytes));
        }
    }
    entries.push((
        "hosts.txt".into(),
        hosts_lines(&options.hosts_file).into_bytes(),
    ));
    entries.push(("certificates.json".into(), json(&certificates(ctx, report))));

    let secrets = Secrets::of(&[
        ctx.cert_dir.key_path(),
        dir.certs_dir().join(identity::CLIENT_KEY),
    ]);
    let mut scrubbed = Vec::new();
    for (name, bytes) in &mut entries {
        if secrets.scrub(bytes) {
            scrubbed.push(format!("{ROOT}/{name}"));
        }
    }
    let archive = pack(&entries).map_err(|e| BundleError::Write {
        path: options.path.clone(),
        reason: e.to_string(),
    })?;
    write(&options.path, &archive)?;
    Ok(BundleReport {
        path: options.path.clone(),
        bytes: archive.len(),
        files: entries.iter().map(|(n, _)| format!("{ROOT}/{n}")).collect(),
        scrubbed,
    })
}

fn json(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// A server ID as a file name: only `[A-Za-z0-9._-]`.
fn file_name(server: &str) -> String {
    server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn versions(tool: &str, engine: &str) -> String {
    let read =
        |path: &str| std::fs::read_to_string(path).unwrap_or_else(|e| format!("({path}: {e})\n"));
    format!(
        "wott-mqtt {tool}\nkernel: {}container engine: {engine}\n\n/etc/os-release:\n{}",
        read("/proc/sys/kernel/osrelease"),
        read("/etc/os-release")
    )
}

fn hosts_lines(path: &Path) -> String {
    match crate::hosts::list(path) {
        Ok(Some(entries)) if !entries.is_empty() => entries
            .iter()
            .map(|e| {
                format!(
                    "{} {}  # line {}{}\n",
                    e.ip,
                    e.names.join(" "),
                    e.line,
                    if e.managed {
                        ", written by wott-mqtt"
                    } else {
                        ""
                    }
                )
            })
            .collect(),
        Ok(Some(_)) => format!("{}: no *.d.wott.local lines\n", path.display()),
        Ok(None) => format!("{}: no such file\n", path.display()),
        Err(e) => format!("{e}\n"),
    }
}

/// The agent's, the staged and the served certificates, summarised.
fn certificates(ctx: &Context<'_>, report: &DoctorReport) -> serde_json::Value {
    let dir = ServerDir::new(ctx.server_dir);
    let files = [
        ctx.cert_dir.cert_path(),
        ctx.cert_dir.ca_path(),
        dir.certs_dir().join(identity::CLIENT_CRT),
        dir.certs_dir().join(identity::CA_CRT),
    ];
    let mut summaries = Vec::new();
    for file in &files {
        if let Ok(loaded) = identity::load_ca(file) {
            summaries.extend(loaded.infos.iter().map(|info| CertSummary::of(file, info)));
        }
    }
    let served = report
        .material
        .status
        .as_ref()
        .and_then(|s| s.get("served"))
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    serde_json::json!({ "files": summaries, "served_by_broker": served })
}

/// What no entry may contain: PEM bodies and DER of the private keys.
struct Secrets {
    /// Slices of each key's base64 body and DER.
    pieces: Vec<Vec<u8>>,
}

/// How long each slice of a key is.
const PIECE: usize = 16;

impl Secrets {
    /// Reads the key files only to know what to look for; a file that
    /// cannot be read (no root) is nothing to look for.
    fn of(keys: &[PathBuf]) -> Secrets {
        let mut pieces = Vec::new();
        for path in keys {
            let Ok(pem) = std::fs::read(path) else {
                continue;
            };
            let body: Vec<u8> = String::from_utf8_lossy(&pem)
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .flat_map(|l| l.trim().bytes().collect::<Vec<u8>>())
                .collect();
            pieces.extend(body.chunks_exact(PIECE).map(<[u8]>::to_vec));
            if let Ok(key) = identity::load_key(path) {
                pieces.extend(key.der.secret_der().chunks_exact(PIECE).map(<[u8]>::to_vec));
            }
        }
        Secrets { pieces }
    }

    /// Removes every PEM block, `PRIVATE KEY`, and every line holding a
    /// piece of a key; whether anything was removed.
    fn scrub(&self, bytes: &mut Vec<u8>) -> bool {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let mut out = String::with_capacity(text.len());
        let mut in_pem = false;
        let mut changed = false;
        for line in text.split_inclusive('\n') {
            if line.contains("-----BEGIN") {
                in_pem = true;
            }
            let secret = in_pem
                || line.contains("PRIVATE KEY")
                || self
                    .pieces
                    .iter()
                    .any(|p| memchr::memmem::find(line.as_bytes(), p).is_some());
            if line.contains("-----END") {
                in_pem = false;
            }
            if secret {
                changed = true;
                out.push_str("[removed by wott-mqtt doctor: it looked like key material]\n");
            } else {
                out.push_str(line);
            }
        }
        // Binary that is not text (and so was not looked at line by line).
        let binary = self
            .pieces
            .iter()
            .any(|p| memchr::memmem::find(bytes, p).is_some());
        if changed || binary {
            *bytes = if binary && !changed {
                Vec::new()
            } else {
                out.into_bytes()
            };
            return true;
        }
        false
    }
}

/// The entries as a gzip'd tar, each file mode 0600.
fn pack(entries: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let mtime = u64::try_from(identity::Timestamp::now().0).unwrap_or(0);
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(mtime);
        tar.append_data(&mut header, format!("{ROOT}/{name}"), bytes.as_slice())?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()
}

/// Writes `bytes` to `path`, mode 0600, atomically, never through a link.
fn write(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    let refuse = |reason: String| BundleError::Refused {
        path: path.to_path_buf(),
        reason,
    };
    let fail = |e: std::io::Error| BundleError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| refuse("it names no file".into()))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = Dir::open(parent).map_err(fail)?;
    let (mode, _) = dir.attributes().map_err(fail)?;
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(refuse(format!(
            "other users may write to {} (mode {mode:04o}, no sticky bit), so they could replace the file",
            parent.display()
        )));
    }
    match dir.kind_of(name).map_err(fail)? {
        None | Some("a regular file") => {}
        Some(kind) => return Err(refuse(format!("it is {kind}"))),
    }
    let me = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    dir.replace(name, bytes, 0o600, me).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_removes_pem_blocks_and_key_pieces() {
        let secrets = Secrets {
            pieces: vec![b"ABCDEFGHIJKLMNOP".to_vec()],
        };
        let mut text =
            b"a\n-----BEGIN X-----\nzzz\n-----END X-----\nb ABCDEFGHIJKLMNOPQ\nc\n".to_vec();
        assert!(secrets.scrub(&mut text));
        let text = String::from_utf8(text).unwrap();
        assert!(
            !text.contains("BEGIN") && !text.contains("zzz") && !text.contains("ABCDEFGH"),
            "{text}"
        );
        assert!(text.starts_with("a\n") && text.ends_with("c\n"), "{text}");
        let mut clean = b"nothing here\n".to_vec();
        assert!(!secrets.scrub(&mut clean));
    }
}
