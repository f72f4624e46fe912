//! A `permissions.acl` in a temp folder, and `wott-mqtt acl … --file` on it:
//! the fixture of the `acl` tests.

use std::fs;
use std::path::PathBuf;

use super::{Run, wott};

/// A temp dir with a permissions.acl in it.
pub struct Acl {
    pub dir: tempfile::TempDir,
}

impl Acl {
    pub fn new(content: impl AsRef<[u8]>) -> Self {
        let acl = Acl::empty();
        fs::write(acl.path(), content).unwrap();
        acl
    }

    pub fn empty() -> Self {
        Acl {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("permissions.acl")
    }

    pub fn bytes(&self) -> Vec<u8> {
        fs::read(self.path()).unwrap()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.bytes()).unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        wott()
            .arg("acl")
            .args(args)
            .arg("--file")
            .arg(self.path())
            .run()
    }
}
