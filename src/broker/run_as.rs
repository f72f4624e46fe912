//! Who Mosquitto runs as in the container, and so who owns what it reads
//! and writes.
//!
//! Started as root (the image's default), Mosquitto 2 drops to its
//! `mosquitto` user, uid 1883, *before* loading its certificates. That is
//! the tutorial's pitfall, and why `sudo wott-mqtt server up` stages copies
//! owned by uid 1883 ([`RunAs::Image`]). The container is started as
//! 1883:1883 directly, so Mosquitto never runs as root and needs no
//! capability at all (the container has none). Changing a file's owner to
//! 1883 needs root.
//!
//! A user who is not root but may use the container engine (the `docker`
//! group) gets [`RunAs::User`] instead: the container is created with
//! `User uid:gid` of that user. Mosquitto that does not start as root never
//! changes user, so it reads the copies that user owns, and writes its
//! persistence and log into folders of the server dir that user owns and
//! that are mounted over `/mosquitto/data` and `/mosquitto/log` (the image's
//! own are uid 1883's). No step needs root. `wott-mqtt demo` runs this way.
//!
//! The choice is part of the container's configuration hash, so switching
//! between the two recreates the container.

use serde::Serialize;

use super::stage::MOSQUITTO_UID;

/// Who Mosquitto runs as, and owns the staged certificates and its folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RunAs {
    /// The image's default: started as root, Mosquitto drops to uid 1883.
    Image,
    /// `User uid:gid` in the container: Mosquitto never runs as root.
    User { uid: u32, gid: u32 },
}

impl RunAs {
    /// [`RunAs::Image`] for root, else the invoking user: the choice that
    /// works without asking for more privileges than the user has.
    pub fn for_invoker() -> RunAs {
        match invoker() {
            (0, _) => RunAs::Image,
            (uid, gid) => RunAs::User { uid, gid },
        }
    }

    /// Who owns the staged certificates and Mosquitto's folders.
    pub fn owner(self) -> (u32, u32) {
        match self {
            RunAs::Image => (MOSQUITTO_UID, MOSQUITTO_UID),
            RunAs::User { uid, gid } => (uid, gid),
        }
    }

    /// The mode and owner of the staged certificates' folder. Staged by
    /// root for the image's user: root's, readable by group 1883 only, so
    /// that uid 1883 reads the copies but cannot create, rename or link
    /// anything in it. For a user broker: that user's own, 0700.
    pub fn certs_dir(self) -> (u32, (u32, u32)) {
        match self {
            RunAs::Image => (0o750, (0, MOSQUITTO_UID)),
            RunAs::User { uid, gid } => (0o700, (uid, gid)),
        }
    }

    /// The container's `User`: `uid:gid`. For the image's user too, so
    /// that Mosquitto never runs as root in the container (it needs no
    /// capability to drop privileges then, and gets none).
    pub fn container_user(self) -> String {
        let (uid, gid) = self.owner();
        format!("{uid}:{gid}")
    }

    /// From an existing container's `User`: `1883:1883` (or empty, as
    /// containers of earlier releases have it) is the image's user, other
    /// `uid:gid` numbers a user (what [`RunAs::container_user`] wrote);
    /// anything else (a name, a uid alone) is `None`: its owner is unknown.
    pub fn from_container_user(user: &str) -> Option<RunAs> {
        let user = user.trim();
        if user.is_empty() {
            return Some(RunAs::Image);
        }
        let (uid, gid) = user.split_once(':')?;
        let (uid, gid) = (uid.parse().ok()?, gid.parse().ok()?);
        if (uid, gid) == (MOSQUITTO_UID, MOSQUITTO_UID) {
            return Some(RunAs::Image);
        }
        Some(RunAs::User { uid, gid })
    }
}

/// This process's effective uid and gid.
pub(crate) fn invoker() -> (u32, u32) {
    (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_keeps_the_images_user_and_others_run_as_themselves() {
        assert_eq!(RunAs::Image.owner(), (1883, 1883));
        assert_eq!(RunAs::Image.container_user(), "1883:1883");
        let user = RunAs::User {
            uid: 1000,
            gid: 100,
        };
        assert_eq!(user.owner(), (1000, 100));
        assert_eq!(user.container_user(), "1000:100");
        match RunAs::for_invoker() {
            RunAs::Image => assert_eq!(invoker().0, 0),
            RunAs::User { uid, gid } => assert_eq!((uid, gid), invoker()),
        }
    }

    #[test]
    fn a_containers_user_reads_back() {
        assert_eq!(RunAs::from_container_user(""), Some(RunAs::Image));
        assert_eq!(RunAs::from_container_user("1883:1883"), Some(RunAs::Image));
        assert_eq!(
            RunAs::from_container_user("1000:100"),
            Some(RunAs::User {
                uid: 1000,
                gid: 100
            })
        );
        assert_eq!(RunAs::from_container_user("1000"), None);
        assert_eq!(RunAs::from_container_user("mosquitto"), None);
    }
}
