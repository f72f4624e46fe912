//! The local image as a `docker save` archive, built in memory.
//!
//! One layer with the `eclipse-mosquitto:2` layout: `/usr/sbin/mosquitto`,
//! the loader and the libraries at the paths the host's loader found them,
//! `/etc/passwd` and `/etc/group` with the `mosquitto` user and group 1883,
//! and `/mosquitto/{config,data,log}` owned by 1883. The image's
//! configuration has the official image's `CMD`, exposed port and volumes,
//! and labels saying what it was built from.
//!
//! The archive is a pure function of its inputs: every entry has the
//! binary's modification time, fixed owners and modes, and a fixed order,
//! and JSON keys are sorted. So the same Mosquitto always gives the same
//! image ID, and two builds racing for one tag agree.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::json;

use super::host_mosquitto::HostMosquitto;
use super::stage::MOSQUITTO_UID;

/// The official image's command.
pub const CMD: [&str; 3] = [
    "/usr/sbin/mosquitto",
    "-c",
    "/mosquitto/config/mosquitto.conf",
];
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
                      mosquitto:x:1883:1883:mosquitto:/var/empty:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nmosquitto:x:1883:\n";
const NSSWITCH: &str = "passwd: files\ngroup: files\nhosts: files\n";
const DEFAULT_CONF: &str = "# The local image's own configuration sets nothing: Mosquitto's defaults.\n\
                            # wott-mqtt mounts its rendered mosquitto.conf over /mosquitto/config.\n";

/// One file of the layer.
#[derive(Debug)]
pub struct Entry<'a> {
    pub path: PathBuf,
    pub bytes: &'a [u8],
    pub mode: u32,
    pub uid: u64,
    /// Where it came from on the host, for files copied from it.
    pub source: Option<&'a Path>,
}

/// The archive and what the engine will call it.
#[derive(Debug)]
pub struct Archive {
    pub bytes: Vec<u8>,
    /// `sha256:` of the image configuration: the image ID.
    pub id: String,
}

/// The layer's regular files, in order.
pub fn entries(host: &HostMosquitto) -> Vec<Entry<'_>> {
    let etc = |path: &str, text: &'static str| Entry {
        path: PathBuf::from(path),
        bytes: text.as_bytes(),
        mode: 0o644,
        uid: 0,
        source: None,
    };
    let mut entries = vec![
        etc("/etc/passwd", PASSWD),
        etc("/etc/group", GROUP),
        etc("/etc/nsswitch.conf", NSSWITCH),
        Entry {
            uid: u64::from(MOSQUITTO_UID),
            ..etc("/mosquitto/config/mosquitto.conf", DEFAULT_CONF)
        },
    ];
    for file in std::iter::once(&host.binary).chain(&host.libraries) {
        entries.push(Entry {
            path: file.target.clone(),
            bytes: &file.bytes,
            mode: 0o755,
            uid: 0,
            source: Some(&file.source),
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries
}

/// The image's environment: `PATH`, and `LD_LIBRARY_PATH` with the folders
/// the host's loader found the libraries in (the image has no ld.so.cache).
pub fn env(host: &HostMosquitto) -> Vec<String> {
    let mut dirs: Vec<String> = Vec::new();
    for lib in host.libraries.iter().skip(1) {
        if let Some(dir) = lib.target.parent().map(|d| d.display().to_string())
            && !dirs.contains(&dir)
        {
            dirs.push(dir);
        }
    }
    let mut env = vec![PATH_ENV.to_string()];
    if !dirs.is_empty() {
        env.push(format!("LD_LIBRARY_PATH={}", dirs.join(":")));
    }
    env
}

/// The whole `docker save` archive, tagged `tag`.
pub fn archive(
    host: &HostMosquitto,
    tag: &str,
    labels: &BTreeMap<String, String>,
) -> std::io::Result<Archive> {
    let layer = layer(host)?;
    let diff_id = format!("sha256:{}", sha256(&layer));
    let created = time::OffsetDateTime::from_unix_timestamp(i64::try_from(host.mtime).unwrap_or(0))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into());
    let config = json!({
        "architecture": host.architecture,
        "os": "linux",
        "created": created,
        "author": "wott-mqtt server image",
        "config": {
            "Env": env(host),
            "Cmd": CMD,
            "ExposedPorts": {"1883/tcp": {}},
            "Volumes": {"/mosquitto/data": {}, "/mosquitto/log": {}},
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{
            "created": created,
            "created_by": format!(
                "wott-mqtt server image: {} (Mosquitto {}) and {} libraries",
                host.binary.source.display(),
                host.version,
                host.libraries.len()
            ),
        }],
    });
    let config = serde_json::to_vec(&config).map_err(std::io::Error::other)?;
    let config_hex = sha256(&config);
    let layer_dir = sha256(layer.as_slice());
    let manifest = json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [tag],
        "Layers": [format!("{layer_dir}/layer.tar")],
    }]);
    let manifest = serde_json::to_vec(&manifest).map_err(std::io::Error::other)?;
    let mut tar = tar::Builder::new(Vec::with_capacity(layer.len() + 16 * 1024));
    let mtime = host.mtime;
    append(
        &mut tar,
        Path::new("manifest.json"),
        &manifest,
        0o644,
        0,
        mtime,
    )?;
    append(
        &mut tar,
        Path::new(&format!("{config_hex}.json")),
        &config,
        0o644,
        0,
        mtime,
    )?;
    append_dir(&mut tar, Path::new(&layer_dir), 0o755, 0, mtime)?;
    append(
        &mut tar,
        &Path::new(&layer_dir).join("layer.tar"),
        &layer,
        0o644,
        0,
        mtime,
    )?;
    Ok(Archive {
        bytes: tar.into_inner()?,
        id: format!("sha256:{config_hex}"),
    })
}

/// The one layer: folders first (each before what it holds), then files.
fn layer(host: &HostMosquitto) -> std::io::Result<Vec<u8>> {
    let entries = entries(host);
    let mosquitto = u64::from(MOSQUITTO_UID);
    let mut dirs: BTreeMap<PathBuf, (u32, u64)> = BTreeMap::from([
        (PathBuf::from("tmp"), (0o1777, 0)),
        (PathBuf::from("mosquitto"), (0o755, mosquitto)),
        (PathBuf::from("mosquitto/config"), (0o755, mosquitto)),
        (PathBuf::from("mosquitto/data"), (0o755, mosquitto)),
        (PathBuf::from("mosquitto/log"), (0o755, mosquitto)),
    ]);
    for entry in &entries {
        let mut dir = relative(&entry.path);
        while dir.pop() && !dir.as_os_str().is_empty() {
            dirs.entry(dir.clone()).or_insert((0o755, 0));
        }
    }
    let mut tar = tar::Builder::new(Vec::new());
    for (dir, (mode, uid)) in &dirs {
        append_dir(&mut tar, dir, *mode, *uid, host.mtime)?;
    }
    for entry in &entries {
        append(
            &mut tar,
            &relative(&entry.path),
            entry.bytes,
            entry.mode,
            entry.uid,
            host.mtime,
        )?;
    }
    tar.into_inner()
}

/// `/usr/sbin/mosquitto` → `usr/sbin/mosquitto`, without `.` or `..`.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect()
}

fn header(kind: tar::EntryType, size: u64, mode: u32, uid: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(uid);
    header.set_gid(uid);
    header.set_mtime(mtime);
    header
}

fn append(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &Path,
    bytes: &[u8],
    mode: u32,
    uid: u64,
    mtime: u64,
) -> std::io::Result<()> {
    let mut header = header(
        tar::EntryType::Regular,
        bytes.len() as u64,
        mode,
        uid,
        mtime,
    );
    tar.append_data(&mut header, path, bytes)
}

fn append_dir(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &Path,
    mode: u32,
    uid: u64,
    mtime: u64,
) -> std::io::Result<()> {
    let mut header = header(tar::EntryType::Directory, 0, mode, uid, mtime);
    tar.append_data(&mut header, path, std::io::empty())
}

fn sha256(bytes: &[u8]) -> String {
    super::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::host_mosquitto::{HostFile, Version};

    fn host() -> HostMosquitto {
        let file = |path: &str, bytes: &[u8]| HostFile {
            source: PathBuf::from(path),
            target: PathBuf::from(path),
            bytes: bytes.to_vec(),
            sha256: sha256(bytes),
        };
        HostMosquitto {
            binary: HostFile {
                target: PathBuf::from("/usr/sbin/mosquitto"),
                ..file("/opt/bin/mosquitto", b"\x7fELF broker")
            },
            version: Version(2, 0, 11),
            package: None,
            architecture: "amd64",
            libraries: vec![
                file("/lib64/ld-linux-x86-64.so.2", b"loader"),
                file("/lib/x86_64-linux-gnu/libc.so.6", b"libc"),
                file("/opt/lib/libssl.so.3", b"ssl"),
            ],
            mtime: 1_700_000_000,
        }
    }

    fn listing(bytes: &[u8]) -> Vec<(String, u64, u32)> {
        let mut archive = tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_same_inputs_give_the_same_archive_and_id() {
        let labels = BTreeMap::from([("a".to_string(), "b".to_string())]);
        let one = archive(&host(), "x/y:1", &labels).unwrap();
        let two = archive(&host(), "x/y:1", &labels).unwrap();
        assert_eq!(one.id, two.id);
        assert_eq!(one.bytes, two.bytes);
        let other = BTreeMap::from([("a".to_string(), "c".to_string())]);
        assert_ne!(archive(&host(), "x/y:1", &other).unwrap().id, one.id);
    }

    #[test]
    fn the_layer_has_the_official_layout() {
        let layer = layer(&host()).unwrap();
        let entries = listing(&layer);
        let find = |path: &str| {
            entries
                .iter()
                .find(|(p, ..)| p.trim_end_matches('/') == path)
        };
        for dir in ["mosquitto/config", "mosquitto/data", "mosquitto/log"] {
            assert_eq!(find(dir).map(|e| e.1), Some(1883), "{dir}");
        }
        assert_eq!(find("tmp").map(|e| e.2), Some(0o1777));
        assert!(find("usr/sbin/mosquitto").is_some());
        assert!(find("opt/bin/mosquitto").is_none());
        assert!(find("lib64/ld-linux-x86-64.so.2").is_some());
        let position = |path: &str| {
            entries
                .iter()
                .position(|(p, ..)| p.trim_end_matches('/') == path)
        };
        assert!(position("opt/lib") < position("opt/lib/libssl.so.3"));
        assert_eq!(
            env(&host()),
            [
                PATH_ENV.to_string(),
                "LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/opt/lib".to_string()
            ]
        );
    }
}
