//! The files `server watch` follows, through inotify (the `notify` crate):
//! the agent's cert dir and the server dir, each watched as a folder
//! (non-recursive), so that a file replaced by rename is seen as well as
//! one rewritten in place, as the agent does.

use std::path::{Path, PathBuf};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use crate::broker::BrokerError;
use crate::broker::config::ACL_FILE;
use crate::broker::record::RECORD_FILE;
use crate::identity::{CA_CRT, CLIENT_CRT, CLIENT_KEY};

/// Which of the followed files changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// `client.crt`, `client.key` or `ca.crt`.
    Identity,
    /// `permissions.acl`.
    Acl,
    /// `broker.json`: which broker the server dir has.
    Record,
}

/// Follows the two folders until dropped; each change of a followed file
/// is sent on `changes`.
pub struct FileWatch {
    _watcher: RecommendedWatcher,
}

impl FileWatch {
    pub fn start(
        cert_dir: &Path,
        server_dir: &Path,
        changes: UnboundedSender<Changed>,
    ) -> Result<FileWatch, BrokerError> {
        let (certs, server) = (cert_dir.to_path_buf(), server_dir.to_path_buf());
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
                }
                for path in &event.paths {
                    if let Some(change) = classify(path, &certs, &server) {
                        let _ = changes.send(change);
                    }
                }
            })
            .map_err(|e| watch_error(cert_dir, &e))?;
        for dir in [cert_dir, server_dir] {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| watch_error(dir, &e))?;
        }
        Ok(FileWatch { _watcher: watcher })
    }
}

fn classify(path: &Path, cert_dir: &Path, server_dir: &Path) -> Option<Changed> {
    let name = path.file_name()?.to_str()?;
    let parent = path.parent()?;
    if parent == cert_dir && [CLIENT_CRT, CLIENT_KEY, CA_CRT].contains(&name) {
        Some(Changed::Identity)
    } else if parent == server_dir && name == ACL_FILE {
        Some(Changed::Acl)
    } else if parent == server_dir && name == RECORD_FILE {
        Some(Changed::Record)
    } else {
        None
    }
}

fn watch_error(dir: &Path, e: &notify::Error) -> BrokerError {
    BrokerError::Watch {
        path: PathBuf::from(dir),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_followed_files_count() {
        let (certs, server) = (Path::new("/c"), Path::new("/s"));
        let c = |p: &str| classify(Path::new(p), certs, server);
        assert_eq!(c("/c/client.crt"), Some(Changed::Identity));
        assert_eq!(c("/c/ca.crt"), Some(Changed::Identity));
        assert_eq!(c("/c/combined.pem"), None);
        assert_eq!(c("/s/permissions.acl"), Some(Changed::Acl));
        assert_eq!(c("/s/.permissions.acl.tmp"), None);
        assert_eq!(c("/s/broker.json"), Some(Changed::Record));
        assert_eq!(c("/s/certs/client.crt"), None);
    }
}
