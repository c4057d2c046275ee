//! Typed errors: one enum per operation, each variant saying what went wrong and what to do.

use crate::layout::TypeInfo;

pub use crate::geometry::ConfigError;
pub use crate::name::NameError;

/// Why creating a topic failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The topic name, or the prefix, is not valid.
    #[error("invalid topic name or prefix {topic:?}: {source}")]
    Name {
        /// The name given (the topic's, or the prefix if that is what is wrong).
        topic: String,
        /// What is wrong with it.
        source: NameError,
    },
    /// The configuration is not valid.
    #[error("invalid configuration for topic {topic:?}: {source}")]
    Config {
        /// The topic.
        topic: String,
        /// What is wrong.
        source: ConfigError,
    },
    /// A live publisher already owns the topic. Only one publisher per topic is allowed;
    /// stop the other one or pick another name. `holder` is the user whose segment has the
    /// name (another user's live segment under your topic's name is a squatter: its
    /// subscribers of your user refuse it).
    #[error("topic {topic:?} already has a live publisher, a process of {holder}: stop it or pick another name")]
    AlreadyPublished {
        /// The topic.
        topic: String,
        /// Who owns the segment that has the name.
        holder: crate::trust::Owner,
    },
    /// The topic admits several publishers, and all its lanes are taken by live ones.
    #[error("topic {topic:?} already has its {max} publishers: wait for one to leave, or create the topic with more (max_publishers)")]
    PublishersFull {
        /// The topic.
        topic: String,
        /// Publishers it admits.
        max: u64,
    },
    /// Asked to join an existing topic only: there is no live topic of that name that
    /// admits several publishers.
    #[error("topic {topic:?} has no live publishers to join (or admits only one): start the topic's first publisher, or create it")]
    NothingToJoin {
        /// The topic.
        topic: String,
    },
    /// The topic exists, admits several publishers, and was created with another
    /// configuration: a publisher joins only with the same geometry, policy and type.
    #[error("topic {topic:?} exists with {field} {existing}, this publisher asks for {requested}: use the topic's configuration to join it")]
    Mismatch {
        /// The topic.
        topic: String,
        /// What differs: "max publishers", "overflow policy", "slots", "slot size",
        /// "alignment", "max subscribers", "message type" or "stall timeout".
        field: &'static str,
        /// The topic's value.
        existing: String,
        /// This publisher's.
        requested: String,
    },
    /// Something that is not a ringcast segment already has the topic's name; we will not
    /// delete it. Remove it by hand if it is stale.
    #[error("topic {topic:?}: its name is taken by a shared-memory object that is not a ringcast segment")]
    NotASegment {
        /// The topic.
        topic: String,
    },
    /// /dev/shm has no room for the segment; free space or ask for fewer/smaller slots.
    #[error("no space in /dev/shm for topic {topic:?} ({bytes} bytes needed)")]
    NoSpace {
        /// The topic.
        topic: String,
        /// Bytes the segment needs.
        bytes: u64,
    },
    /// Memory the publisher needs beside the segment (an `Overwrite` publisher's one-slot
    /// staging buffer for loans) could not be allocated. Use a smaller slot size.
    #[error("topic {topic:?}: cannot allocate {bytes} bytes of publisher memory")]
    OutOfMemory {
        /// The topic.
        topic: String,
        /// Bytes asked for.
        bytes: u64,
    },
    /// Prefaulting or locking the segment's memory failed (see
    /// [`MemoryOptions`](crate::residency::MemoryOptions)): `mlock` needs room under
    /// `RLIMIT_MEMLOCK` (`ulimit -l`) or `CAP_IPC_LOCK`. Raise the limit, or create the
    /// topic without locking.
    #[error("topic {topic:?}: {op} of its {bytes}-byte segment failed: {source} (locking needs RLIMIT_MEMLOCK room or CAP_IPC_LOCK)")]
    Memory {
        /// The topic.
        topic: String,
        /// The call that failed.
        op: &'static str,
        /// The segment's size.
        bytes: u64,
        /// The error.
        source: std::io::Error,
    },
    /// Huge pages were asked for ([`MemoryOptions::huge_pages`](crate::residency::MemoryOptions))
    /// but /dev/shm cannot give them; `reason` says why and what would change it (usually:
    /// remount /dev/shm with `huge=within_size`). Create the topic without huge pages, or
    /// change the system.
    #[error("topic {topic:?}: huge pages are not available: {reason}")]
    HugePagesUnavailable {
        /// The topic.
        topic: String,
        /// Why not, and what to change.
        reason: String,
    },
    /// The process may not create (or reclaim) the segment: the name is held by a dead
    /// publisher's segment this user may not remove (`holder`, if known, owns it; it or
    /// root can remove it with `ringcast gc`), or /dev/shm refuses new files.
    #[error("permission denied creating topic {topic:?} in /dev/shm{}", holder.as_ref().map(|h| format!(": the name is held by {h}")).unwrap_or_default())]
    PermissionDenied {
        /// The topic.
        topic: String,
        /// Who owns what holds the name, if that is what refused us.
        holder: Option<crate::trust::Owner>,
    },
    /// Any other system error, with the call that failed.
    #[error("topic {topic:?}: {op} failed: {source}")]
    Io {
        /// The topic.
        topic: String,
        /// The system call or step that failed.
        op: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// Why attaching to a topic failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// The topic name, or the prefix, is not valid.
    #[error("invalid topic name or prefix {topic:?}: {source}")]
    Name {
        /// The name given (the topic's, or the prefix if that is what is wrong).
        topic: String,
        /// What is wrong with it.
        source: NameError,
    },
    /// No segment exists for the topic: no publisher has created it (yet). Use an
    /// `attach_wait` variant to wait for it.
    #[error("topic {topic:?} does not exist (no publisher has created it)")]
    NotFound {
        /// The topic.
        topic: String,
    },
    /// The segment exists but this process may not open it (mode 0600 by default: run as
    /// the publisher's user, or have the publisher create with a wider mode).
    #[error("permission denied opening topic {topic:?}: run as the publisher's user, or have it create the topic with a wider mode")]
    PermissionDenied {
        /// The topic.
        topic: String,
    },
    /// The segment belongs to a user this subscriber does not trust: by default only the
    /// caller's own user and root are (anyone who may create files in /dev/shm could
    /// otherwise stand in for the topic). If that user's publisher is genuine, trust it:
    /// `SubscriberOptions::trust_user(uid)` (or a group, or any owner); in the CLI
    /// `--trust-user`.
    #[error("topic {topic:?} belongs to {owner}, whom this subscriber does not trust (only its own user and root by default): trust that user explicitly if its publisher is genuine")]
    UntrustedOwner {
        /// The topic.
        topic: String,
        /// Who owns the segment.
        owner: crate::trust::Owner,
    },
    /// The topic's name is taken by something that is not a regular file (a FIFO, socket,
    /// directory, device or symbolic link): not a segment, and never followed or opened for
    /// reading. Remove it by hand if it is in the way.
    #[error("topic {topic:?}: the name in /dev/shm is a {kind}, not a segment")]
    NotRegularFile {
        /// The topic.
        topic: String,
        /// What the name is.
        kind: &'static str,
    },
    /// The file does not start with ringcast's magic number: it is not a ringcast segment.
    #[error("topic {topic:?}: the shared-memory object is not a ringcast segment")]
    NotASegment {
        /// The topic.
        topic: String,
    },
    /// The segment was made by a ringcast with another layout version.
    #[error("topic {topic:?} has layout version {found}; this build reads version {expected}: build the publisher and subscribers from one ringcast version")]
    Version {
        /// The topic.
        topic: String,
        /// Version in the segment.
        found: u32,
        /// Version this build understands.
        expected: u32,
    },
    /// The file is shorter than its header claims, or than any header.
    #[error("topic {topic:?}: segment is {actual} bytes, needs {needed}: it was truncated; remove it (ringcast gc) and re-create the topic")]
    TooSmall {
        /// The topic.
        topic: String,
        /// The file's size.
        actual: u64,
        /// Bytes required.
        needed: u64,
    },
    /// A geometry field is impossible or inconsistent with the others or the file size.
    #[error("topic {topic:?}: corrupt segment geometry: {what}")]
    Geometry {
        /// The topic.
        topic: String,
        /// Which check failed.
        what: String,
    },
    /// The file has no magic number yet after the bounded wait: a segment still being
    /// initialized (by a build that names it before writing it), or a file that is not a
    /// segment at all (`ringcast gc` leaves those; remove it by hand).
    #[error("topic {topic:?}: no ringcast header after {waited_ms} ms: a segment still being initialized, or a file that is not a segment (an empty file?)")]
    NotReady {
        /// The topic.
        topic: String,
        /// How long we waited.
        waited_ms: u64,
    },
    /// The topic carries another message type.
    #[error("topic {topic:?} carries {found}, not {expected}")]
    TypeMismatch {
        /// The topic.
        topic: String,
        /// The type the subscriber asked for.
        expected: Box<TypeInfo>,
        /// The type in the segment.
        found: Box<TypeInfo>,
    },
    /// The topic is larger than this subscriber accepts (`SubscriberOptions::max_slot_size`
    /// or `max_segment_size`). Raise the limit if the topic is trusted.
    #[error("topic {topic:?}: {what} of {size} bytes is over this subscriber's limit of {limit}")]
    OverLimit {
        /// The topic.
        topic: String,
        /// `"slot size"` or `"segment size"`.
        what: &'static str,
        /// What the segment claims.
        size: u64,
        /// The subscriber's limit.
        limit: u64,
    },
    /// Memory for the subscriber's own copy buffer (one slot, `Overwrite` topics) could not
    /// be allocated (RLIMIT_AS, or memory exhausted). Lower the topic's slot size or raise
    /// the limit.
    #[error("topic {topic:?}: cannot allocate the {bytes}-byte copy buffer")]
    OutOfMemory {
        /// The topic.
        topic: String,
        /// Bytes asked for.
        bytes: u64,
    },
    /// Every subscriber entry is taken by a live subscriber.
    #[error("topic {topic:?} has all {max} subscriber entries in use: detach a subscriber, or re-create the topic with more (max_subscribers)")]
    TableFull {
        /// The topic.
        topic: String,
        /// Table size.
        max: u64,
    },
    /// The publisher has closed the topic (or died) and it was unlinked.
    #[error("topic {topic:?} is closed")]
    Closed {
        /// The topic.
        topic: String,
    },
    /// Prefaulting or locking the mapped segment failed (`mlock` needs room under
    /// `RLIMIT_MEMLOCK` or `CAP_IPC_LOCK`). Raise the limit, or attach without locking.
    #[error("topic {topic:?}: {op} of its {bytes}-byte segment failed: {source} (locking needs RLIMIT_MEMLOCK room or CAP_IPC_LOCK)")]
    Memory {
        /// The topic.
        topic: String,
        /// The call that failed.
        op: &'static str,
        /// The segment's size.
        bytes: u64,
        /// The error.
        source: std::io::Error,
    },
    /// Any other system error, with the call that failed.
    #[error("topic {topic:?}: {op} failed: {source}")]
    Io {
        /// The topic.
        topic: String,
        /// The system call or step that failed.
        op: &'static str,
        /// The error.
        source: std::io::Error,
    },
}
