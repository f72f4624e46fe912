//! The Mosquitto installed on this machine, as the source of the local image.
//!
//! Where no registry answers, `server image` (and the image policy's
//! fallback) copies this machine's broker into an image: the binary, every
//! shared library it links and the dynamic loader. Which libraries, and
//! from where, is the host's dynamic loader's own answer (`ld.so --list`,
//! run with an empty environment): it applies `RUNPATH`, `ld.so.cache`,
//! the glibc-hwcaps folders and `$ORIGIN` exactly as when Mosquitto
//! starts, which no list of search folders written here would. `--list`
//! maps the objects without running any of their code, and the loader run
//! is the binary's own interpreter only when that file belongs to root (or
//! the invoker) and nobody else may write it. `ldd` is not used: it is a
//! script that may run an arbitrary interpreter named by the binary.
//!
//! The version comes from the broker itself (`mosquitto -h`), the package
//! from dpkg's records when dpkg installed the file.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;

use super::ImageError;

/// Where Mosquitto is looked for after `PATH`: Debian puts it in /usr/sbin,
/// which is not on a user's `PATH`.
const SBIN: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];
/// How long the loader and `mosquitto -h` may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(10);
const DPKG_INFO: &str = "/var/lib/dpkg/info/mosquitto.list";
const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// `major.minor.patch`, as `mosquitto -h` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Version(pub u32, pub u32, pub u32);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One file of the host that goes into the image, read once.
#[derive(Debug, Clone)]
pub struct HostFile {
    /// Where it was read (for a library, the loader's answer).
    pub source: PathBuf,
    /// Where it goes in the image.
    pub target: PathBuf,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl HostFile {
    fn read(source: &Path, target: &Path) -> Result<HostFile, ImageError> {
        let bytes = fs::read(source).map_err(|e| ImageError::Unreadable {
            path: source.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(HostFile {
            source: source.to_path_buf(),
            target: target.to_path_buf(),
            sha256: super::hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref()),
            bytes,
        })
    }
}

/// This machine's Mosquitto: the binary, its libraries and what it is.
#[derive(Debug, Clone)]
pub struct HostMosquitto {
    pub binary: HostFile,
    pub version: Version,
    /// `mosquitto 2.0.11-1.2+deb12u2` when dpkg installed the binary.
    pub package: Option<String>,
    /// The engine's name for the binary's architecture (`amd64`, `arm64`, …).
    pub architecture: &'static str,
    /// The dynamic loader and the shared libraries, in the loader's order.
    pub libraries: Vec<HostFile>,
    /// The binary's modification time (Unix seconds): the image's date.
    pub mtime: u64,
}

impl HostMosquitto {
    /// Finds and reads Mosquitto: `explicit` (`--mosquitto`), else
    /// `mosquitto` on `PATH`, else in the sbin folders.
    pub async fn find(explicit: Option<&Path>) -> Result<HostMosquitto, ImageError> {
        let path = locate(explicit)?;
        trusted(&path)?;
        let binary = HostFile::read(&path, Path::new("/usr/sbin/mosquitto"))?;
        let elf = Elf::parse(&binary.bytes).map_err(|reason| ImageError::NotElf {
            path: path.clone(),
            reason,
        })?;
        // The libraries first: a binary whose libraries are missing cannot
        // say its version.
        let libraries = match &elf.interpreter {
            Some(loader) => libraries(&path, Path::new(loader)).await?,
            None => Vec::new(),
        };
        let version = version(&path).await?;
        if version < Version(2, 0, 0) {
            return Err(ImageError::TooOld { path, version });
        }
        let mtime = fs::metadata(&path).map_or(0, |m| m.mtime().max(0).unsigned_abs());
        Ok(HostMosquitto {
            package: package(&path),
            architecture: elf.architecture,
            binary,
            version,
            libraries,
            mtime,
        })
    }
}

/// The binary's path: the one given, or the first `mosquitto` found.
fn locate(explicit: Option<&Path>) -> Result<PathBuf, ImageError> {
    if let Some(path) = explicit {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ImageError::NoMosquitto {
                searched: vec![path],
                explicit: true,
            })
        };
    }
    let mut searched = Vec::new();
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path_dirs)
        .filter(|d| d.is_absolute())
        .chain(SBIN.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join("mosquitto");
        if searched.contains(&candidate) {
            continue;
        }
        let executable = fs::metadata(&candidate)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if executable {
            return Ok(candidate);
        }
        searched.push(candidate);
    }
    Err(ImageError::NoMosquitto {
        searched,
        explicit: false,
    })
}

/// Refuses a file another user could have replaced: it, and the folder it
/// is in, must belong to root or to the invoker, and only their owner may
/// write them (a sticky folder such as /tmp protects files of others).
fn trusted(path: &Path) -> Result<(), ImageError> {
    let untrusted = |reason: String, culprit: &Path| ImageError::Untrusted {
        path: path.to_path_buf(),
        reason,
        culprit: culprit.to_path_buf(),
    };
    let meta = fs::metadata(path).map_err(|e| ImageError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if let Some(reason) = owner_problem(&meta, false) {
        return Err(untrusted(reason, path));
    }
    let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(dir) = real.parent()
        && let Ok(dir_meta) = fs::metadata(dir)
        && let Some(reason) = owner_problem(&dir_meta, true)
    {
        return Err(untrusted(
            format!("its folder {}: {reason}", dir.display()),
            dir,
        ));
    }
    Ok(())
}

/// Why a file or folder is not safe to take from, if it is not.
fn owner_problem(meta: &fs::Metadata, is_dir: bool) -> Option<String> {
    let me = rustix::process::geteuid().as_raw();
    let mode = meta.permissions().mode() & 0o7777;
    if meta.uid() != 0 && meta.uid() != me {
        Some(format!("it belongs to uid {}", meta.uid()))
    } else if mode & 0o022 != 0 && !(is_dir && mode & 0o1000 != 0) {
        Some(format!("others may write it (mode {mode:04o})"))
    } else {
        None
    }
}

/// What the ELF header says: the architecture and the loader it names.
#[derive(Debug, PartialEq, Eq)]
struct Elf {
    architecture: &'static str,
    /// `PT_INTERP`; `None` for a static binary.
    interpreter: Option<String>,
}

impl Elf {
    fn parse(bytes: &[u8]) -> Result<Elf, String> {
        if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err("it is not an ELF executable (no ELF header)".into());
        }
        let (wide, little) = match (bytes.get(4), bytes.get(5)) {
            (Some(1), Some(1)) => (false, true),
            (Some(2), Some(1)) => (true, true),
            (Some(1), Some(2)) => (false, false),
            (Some(2), Some(2)) => (true, false),
            _ => return Err("its ELF header names no class or byte order".into()),
        };
        let read = |at: usize, len: usize| -> Result<u64, String> {
            let field = bytes
                .get(at..at + len)
                .ok_or_else(|| "its ELF header is cut short".to_string())?;
            let mut value = 0u64;
            for i in 0..len {
                let byte = if little { field[len - 1 - i] } else { field[i] };
                value = value << 8 | u64::from(byte);
            }
            Ok(value)
        };
        let kind = read(16, 2)?;
        if kind != 2 && kind != 3 {
            return Err(format!(
                "it is an ELF file of type {kind}, not an executable"
            ));
        }
        let machine = read(18, 2)?;
        let architecture = architecture(machine, wide, little)
            .ok_or_else(|| format!("its ELF machine {machine} is not one wott-mqtt can name"))?;
        let (phoff, phentsize, phnum) = if wide {
            (read(32, 8)?, read(54, 2)?, read(56, 2)?)
        } else {
            (read(28, 4)?, read(42, 2)?, read(44, 2)?)
        };
        let mut interpreter = None;
        for i in 0..phnum {
            let at = usize::try_from(phoff + i * phentsize).map_err(|e| e.to_string())?;
            if read(at, 4)? != 3 {
                continue; // not PT_INTERP
            }
            let (offset, size) = if wide {
                (read(at + 8, 8)?, read(at + 32, 8)?)
            } else {
                (read(at + 4, 4)?, read(at + 16, 4)?)
            };
            let (offset, size) = (
                usize::try_from(offset).map_err(|e| e.to_string())?,
                usize::try_from(size).map_err(|e| e.to_string())?,
            );
            let raw = bytes
                .get(offset..offset.saturating_add(size))
                .ok_or_else(|| "its loader path lies outside the file".to_string())?;
            let text = String::from_utf8_lossy(raw.split(|&b| b == 0).next().unwrap_or_default());
            interpreter = Some(text.into_owned());
        }
        Ok(Elf {
            architecture,
            interpreter,
        })
    }
}

/// The engine's name for an ELF machine.
fn architecture(machine: u64, wide: bool, little: bool) -> Option<&'static str> {
    Some(match (machine, wide, little) {
        (62, true, _) => "amd64",
        (3, false, _) => "386",
        (183, true, _) => "arm64",
        (40, false, _) => "arm",
        (243, true, _) => "riscv64",
        (21, true, true) => "ppc64le",
        (22, true, _) => "s390x",
        _ => return None,
    })
}

/// Runs `program args` with an empty environment; its stdout and stderr,
/// and whether it exited at all in time.
async fn run(program: &Path, args: &[&std::ffi::OsStr]) -> Result<(i32, String), String> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .map_err(|_| format!("it did not finish within {} s", RUN_TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok((output.status.code().unwrap_or(-1), text))
}

/// The version `mosquitto -h` prints (`mosquitto version 2.0.11`).
async fn version(path: &Path) -> Result<Version, ImageError> {
    let (_, text) =
        run(path, &["-h".as_ref()])
            .await
            .map_err(|reason| ImageError::NotMosquitto {
                path: path.to_path_buf(),
                said: reason,
            })?;
    parse_version(&text).ok_or_else(|| ImageError::NotMosquitto {
        path: path.to_path_buf(),
        said: text.lines().next().unwrap_or_default().trim().to_string(),
    })
}

fn parse_version(text: &str) -> Option<Version> {
    let rest = text.split("mosquitto version ").nth(1)?;
    let word = rest.split_whitespace().next()?;
    let mut parts = word.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some(Version(major, minor, patch))
}

/// The loader and every library, as the host's loader resolves them.
async fn libraries(binary: &Path, loader: &Path) -> Result<Vec<HostFile>, ImageError> {
    let loader_error = |reason: String| ImageError::Loader {
        binary: binary.to_path_buf(),
        loader: loader.to_path_buf(),
        reason,
    };
    if !loader.is_absolute() || !loader.is_file() {
        return Err(loader_error("there is no such file".into()));
    }
    trusted(loader)?;
    let (code, text) = run(loader, &["--list".as_ref(), binary.as_os_str()])
        .await
        .map_err(loader_error)?;
    let listed = parse_list(&text).map_err(|library| ImageError::LibraryMissing {
        binary: binary.to_path_buf(),
        library,
    })?;
    if let Some(library) = missing_library(&text).filter(|_| code != 0) {
        return Err(ImageError::LibraryMissing {
            binary: binary.to_path_buf(),
            library,
        });
    }
    if code != 0 || listed.is_empty() {
        let said = text.lines().next().unwrap_or_default().trim().to_string();
        return Err(loader_error(format!("`--list` exited with {code}: {said}")));
    }
    let mut files = vec![HostFile::read(loader, loader)?];
    for path in listed.iter().filter(|p| p.as_path() != loader) {
        files.push(HostFile::read(path, path)?);
    }
    if let Some(nss) = nss_files(&listed) {
        files.push(HostFile::read(&nss, &nss)?);
    }
    Ok(files)
}

/// The paths in `ld.so --list` output, or the first library that was not found.
fn parse_list(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut paths = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, target) = match line.split_once(" => ") {
            Some((name, target)) => (name, target),
            None => (line, line),
        };
        if target.trim() == "not found" {
            return Err(name.trim().to_string());
        }
        let path = target.rsplit_once(" (0x").map_or(target, |(p, _)| p).trim();
        if path.starts_with('/') && !paths.iter().any(|p: &PathBuf| p == Path::new(path)) {
            paths.push(PathBuf::from(path));
        }
    }
    Ok(paths)
}

/// The library a loader that stopped could not open: glibc says `error while
/// loading shared libraries: NAME: cannot open …`, musl `Error loading
/// shared library NAME: …`.
fn missing_library(text: &str) -> Option<String> {
    [
        "error while loading shared libraries: ",
        "Error loading shared library ",
    ]
    .iter()
    .find_map(|marker| text.split(marker).nth(1))
    .and_then(|rest| rest.split(':').next())
    .map(|name| name.trim().to_string())
    .filter(|name| !name.is_empty())
}

/// glibc before 2.34 reads /etc/passwd through `libnss_files.so.2`, which it
/// opens at run time; Mosquitto needs it to find its user. Newer glibc has it
/// built in, and no such file.
fn nss_files(listed: &[PathBuf]) -> Option<PathBuf> {
    let libc = listed
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "libc.so.6"))?;
    let nss = libc.with_file_name("libnss_files.so.2");
    nss.is_file().then_some(nss)
}

/// `mosquitto <version>` when dpkg's `mosquitto` package installed `path`.
fn package(path: &Path) -> Option<String> {
    let list = fs::read_to_string(DPKG_INFO).ok()?;
    let canonical = fs::canonicalize(path).ok();
    let listed = list.lines().any(|line| {
        let line = Path::new(line);
        line == path
            || canonical.as_deref() == Some(line)
            || fs::canonicalize(line).ok() == canonical
    });
    if !listed {
        return None;
    }
    let status = fs::read_to_string(DPKG_STATUS).ok()?;
    let stanza = status
        .split("\n\n")
        .find(|s| s.lines().any(|l| l == "Package: mosquitto"))?;
    let version = stanza.lines().find_map(|l| l.strip_prefix("Version: "))?;
    Some(format!("mosquitto {}", version.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_the_help_banner() {
        assert_eq!(
            parse_version("mosquitto version 2.0.11\n\nmosquitto is an MQTT broker"),
            Some(Version(2, 0, 11))
        );
        assert_eq!(
            parse_version("mosquitto version 1.6.9"),
            Some(Version(1, 6, 9))
        );
        assert_eq!(
            parse_version("mosquitto version 2.1"),
            Some(Version(2, 1, 0))
        );
        assert_eq!(parse_version("usage: ls"), None);
        assert!(Version(1, 6, 9) < Version(2, 0, 0));
    }

    #[test]
    fn the_loaders_list_gives_paths_or_the_missing_library() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f1)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f2)\n";
        assert_eq!(
            parse_list(text).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libssl.so.3"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert_eq!(
            parse_list("\tlibdlt.so.2 => not found\n").unwrap_err(),
            "libdlt.so.2"
        );
        assert_eq!(
            missing_library(
                "./u: error while loading shared libraries: libgone.so: cannot open shared object file"
            )
            .as_deref(),
            Some("libgone.so")
        );
        assert_eq!(
            missing_library("Error loading shared library libgone.so: No such file or directory")
                .as_deref(),
            Some("libgone.so")
        );
    }

    #[test]
    fn this_test_binary_is_an_elf_the_parser_reads() {
        let exe = fs::read(std::env::current_exe().unwrap()).unwrap();
        let elf = Elf::parse(&exe).unwrap();
        assert!(!elf.architecture.is_empty());
        assert!(Elf::parse(b"#!/bin/sh\necho hi\n").is_err());
        assert!(Elf::parse(b"\x7fELF\x02\x01").is_err());
    }
}
