//! A directory held by a handle, for files created and replaced in it by
//! name without ever following a link.
//!
//! The broker's server dir and its `certs/` hold copies of the device's
//! private key owned by another user (uid 1883). Resolving a path and then
//! writing to it lets whoever can plant a link in between choose the file
//! root writes, chowns and fills with the key (the review replayed it with
//! `authorized_keys` and `/etc/passwd`). So here every step goes through the
//! directory's handle: the directory is opened with `O_DIRECTORY |
//! O_NOFOLLOW`, a new file is created relative to it with `O_CREAT | O_EXCL
//! | O_NOFOLLOW`, its owner and mode are set on the open file, and it is
//! renamed over the old name inside the same directory, which replaces a
//! link instead of following it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// An open directory; see the module.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a name in a [`Dir`] holds.
#[derive(Debug)]
pub enum Entry {
    Missing,
    /// A regular file: its bytes, mode (permission bits) and owner.
    File {
        bytes: Vec<u8>,
        mode: u32,
        owner: (u32, u32),
    },
    /// Anything else: a link, a directory, a device, a FIFO.
    Other(&'static str),
}

/// The most a file read through a [`Dir`] may hold: certificates and keys
/// are a few kilobytes.
const MAX_FILE: u64 = 1 << 20;

fn kind(stat: &Stat) -> &'static str {
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "not a regular file",
    }
}

fn not_a(path: &Path, what: &str, is: &str) -> io::Error {
    io::Error::other(format!("{} is {is}, not {what}", path.display()))
}

impl Dir {
    /// Opens `path`, which must be a directory and not a link.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(CWD, path, flags, Mode::empty()) {
            Ok(fd) => Ok(Dir {
                fd,
                path: path.to_path_buf(),
            }),
            Err(Errno::LOOP | Errno::NOTDIR) => {
                let stat = rustix::fs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW)?;
                Err(not_a(path, "a directory", kind(&stat)))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's own mode and owner.
    pub fn attributes(&self) -> io::Result<(u32, (u32, u32))> {
        let stat = rustix::fs::fstat(&self.fd)?;
        Ok((stat.st_mode & 0o7777, (stat.st_uid, stat.st_gid)))
    }

    /// Gives the directory this mode and owner, through its handle; whether
    /// anything changed.
    pub fn set_attributes(&self, mode: u32, owner: (u32, u32)) -> io::Result<bool> {
        set_attributes(&self.fd, mode, owner)
    }

    /// What `name` is (`a regular file`, `a symbolic link`, …), without
    /// following it; `None` when there is nothing by that name.
    pub fn kind_of(&self, name: &str) -> io::Result<Option<&'static str>> {
        Ok(self.stat(name)?.map(|stat| kind(&stat)))
    }

    /// What `name` is, without following it.
    fn stat(&self, name: &str) -> io::Result<Option<Stat>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(stat)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The subdirectory `name`, created with this mode and owner when it is
    /// missing (unless `dry_run`: then `None`), or given them. A link or
    /// anything else in its place is an error. Also returns whether anything
    /// changed (or would).
    pub fn subdir(
        &self,
        name: &str,
        mode: u32,
        owner: (u32, u32),
        dry_run: bool,
    ) -> io::Result<(Option<Dir>, bool)> {
        let path = self.path.join(name);
        let created = match self.stat(name)? {
            None if dry_run => return Ok((None, true)),
            None => {
                rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700))?;
                true
            }
            Some(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Directory => false,
            Some(stat) => return Err(not_a(&path, "a directory", kind(&stat))),
        };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty())?;
        let dir = Dir { fd, path };
        let changed = if dry_run {
            let (have_mode, have_owner) = dir.attributes()?;
            (have_mode, have_owner) != (mode, owner)
        } else {
            dir.set_attributes(mode, owner)?
        };
        Ok((Some(dir), created || changed))
    }

    /// What `name` holds, read without following a link and without
    /// blocking on a FIFO.
    pub fn read(&self, name: &str) -> io::Result<Entry> {
        let Some(stat) = self.stat(name)? else {
            return Ok(Entry::Missing);
        };
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Ok(Entry::Other(kind(&stat)));
        }
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // Replaced by a link since the look.
            Err(Errno::LOOP) => return Ok(Entry::Other("a symbolic link")),
            Err(e) => return Err(e.into()),
        };
        let stat = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Ok(Entry::Other(kind(&stat)));
        }
        let mut bytes = Vec::new();
        File::from(fd).take(MAX_FILE + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(io::Error::other(format!(
                "{} is larger than {MAX_FILE} bytes",
                self.path.join(name).display()
            )));
        }
        Ok(Entry::File {
            bytes,
            mode: stat.st_mode & 0o7777,
            owner: (stat.st_uid, stat.st_gid),
        })
    }

    /// Makes `name` hold exactly `bytes`, with this mode and owner:
    /// written to a new file beside it and renamed over it, so a link in
    /// its place is replaced, never followed.
    pub fn replace(
        &self,
        name: &str,
        bytes: &[u8],
        mode: u32,
        owner: (u32, u32),
    ) -> io::Result<()> {
        let temp = format!(".{name}.wott-mqtt.{}.tmp", std::process::id());
        // A temp file of a killed run (ours: the same pid is unlikely, but a
        // leftover must not make O_EXCL fail forever).
        let _ = rustix::fs::unlinkat(&self.fd, temp.as_str(), AtFlags::empty());
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, temp.as_str(), flags, Mode::from_raw_mode(0o600))?;
        let result = (|| {
            set_attributes(&fd, mode, owner)?;
            let mut file = File::from(fd);
            file.write_all(bytes)?;
            file.sync_all()?;
            rustix::fs::renameat(&self.fd, temp.as_str(), &self.fd, name)?;
            rustix::fs::fsync(&self.fd)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&self.fd, temp.as_str(), AtFlags::empty());
        }
        result
    }
}

/// Owner first (a chown clears set-id bits), then mode, on the open handle.
fn set_attributes(fd: impl AsFd, mode: u32, owner: (u32, u32)) -> io::Result<bool> {
    let stat = rustix::fs::fstat(&fd)?;
    let mut changed = false;
    if (stat.st_uid, stat.st_gid) != owner {
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(owner.0)),
            Some(rustix::fs::Gid::from_raw(owner.1)),
        )?;
        changed = true;
    }
    if stat.st_mode & 0o7777 != mode || changed {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        changed |= stat.st_mode & 0o7777 != mode;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn me() -> (u32, u32) {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    }

    #[test]
    fn a_planted_link_is_replaced_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let certs = tmp.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        symlink(&victim, certs.join("client.key")).unwrap();
        let dir = Dir::open(&certs).unwrap();
        assert!(matches!(
            dir.read("client.key").unwrap(),
            Entry::Other("a symbolic link")
        ));
        dir.replace("client.key", b"key", 0o600, me()).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(matches!(
            dir.read("client.key").unwrap(),
            Entry::File { ref bytes, mode: 0o600, .. } if bytes == b"key"
        ));
    }

    #[test]
    fn a_linked_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
        let err = Dir::open(&tmp.path().join("link")).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        let parent = Dir::open(tmp.path()).unwrap();
        let err = parent.subdir("link", 0o700, me(), false).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        let (sub, changed) = parent.subdir("new", 0o750, me(), false).unwrap();
        assert!(changed);
        assert_eq!(sub.unwrap().attributes().unwrap(), (0o750, me()));
        assert!(!parent.subdir("new", 0o750, me(), false).unwrap().1);
    }
}
