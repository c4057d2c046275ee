//! Whose segments a process attaches to, and who holds a name it could not take.
//!
//! A segment in `/dev/shm` belongs to the user whose process created it. Anyone allowed to
//! create files there can create one under any topic's name, before or instead of the
//! real publisher; a subscriber that attached to it would read that user's bytes as the
//! topic's. So attach checks the segment file's owner (`fstat` of the opened descriptor,
//! so the check is about the very file that is then mapped) against a [`Trust`]: by
//! default the caller's effective user and root, and whatever users or groups the caller
//! adds; anything else is `AttachError::UntrustedOwner`, naming the owner. A publisher
//! that cannot take a name is told who holds it ([`Owner`]).

use std::fmt;

/// Whose segments to attach to. The default trusts the process's effective user and root
/// only; add users or groups, or any owner, explicitly.
///
/// ```
/// use ringcast_core::trust::Trust;
/// let trust = Trust::default().user(1001).group(2000);
/// assert!(trust.trusts(1001, 0) && trust.trusts(4242, 2000) && trust.trusts(0, 0));
/// assert!(!trust.trusts(4242, 4242));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trust {
    users: Vec<u32>,
    groups: Vec<u32>,
    any_owner: bool,
}

impl Trust {
    /// Also trusts segments owned by user `uid`.
    pub fn user(mut self, uid: u32) -> Self {
        self.users.push(uid);
        self
    }

    /// Also trusts segments whose file group is `gid`.
    pub fn group(mut self, gid: u32) -> Self {
        self.groups.push(gid);
        self
    }

    /// Trusts segments of any owner (the behaviour of builds before the owner check: any
    /// local user who may create files in /dev/shm can then stand in for the topic).
    pub fn any_owner(mut self) -> Self {
        self.any_owner = true;
        self
    }

    /// Whether a segment owned by `uid`, with file group `gid`, is trusted.
    pub fn trusts(&self, uid: u32, gid: u32) -> bool {
        self.any_owner
            || uid == nix::unistd::geteuid().as_raw()
            || uid == 0
            || self.users.contains(&uid)
            || self.groups.contains(&gid)
    }
}

/// The user who owns a segment file: a uid and, where the system knows it, the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The owner's user id.
    pub uid: u32,
    /// The user's name, if the user database has one.
    pub name: Option<String>,
}

impl Owner {
    /// The owner with uid `uid`, named from the user database if it can be.
    pub fn of_uid(uid: u32) -> Owner {
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| escape(&u.name));
        Owner { uid, name }
    }

    /// The owner of an open file (uid `u32::MAX` if `fstat` fails, which it does not on a
    /// descriptor we hold).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn of_file(file: &std::fs::File) -> Owner {
        use std::os::unix::fs::MetadataExt;
        Owner::of_uid(file.metadata().map_or(u32::MAX, |m| m.uid()))
    }

    /// The owner of what `path` names (not following a symlink), if it can be looked at.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn of_path(path: &std::path::Path) -> Option<Owner> {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path)
            .ok()
            .map(|m| Owner::of_uid(m.uid()))
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "user {name} (uid {})", self.uid),
            None => write!(f, "uid {}", self.uid),
        }
    }
}

/// A user name with control characters escaped (it is printed to terminals).
fn escape(name: &str) -> String {
    name.chars()
        .flat_map(char::escape_debug)
        .collect::<String>()
}
