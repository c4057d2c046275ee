//! Publisher configuration: a plain struct with chainable setters.

use std::time::Duration;

use ringcast_core::geometry::SegmentConfig;
use ringcast_core::segment::CreateOptions;
use ringcast_core::{Overflow, TypeInfo, WaitStrategy};

/// How to create a topic. `PublisherConfig::default()` is 256 slots of 1 KiB, `Overwrite`,
/// mode 0600, up to 64 subscribers, under the prefix `ringcast`.
///
/// ```
/// use ringcast_publisher::{Overflow, PublisherConfig};
/// let cfg = PublisherConfig::default()
///     .slots(1024)
///     .slot_size(4096)
///     .overflow(Overflow::Block)
///     .mode(0o660);
/// assert_eq!(cfg.segment().slots, 1024);
/// ```
#[derive(Clone, Debug, Default)]
pub struct PublisherConfig {
    pub(crate) options: CreateOptions,
    pub(crate) wait: WaitStrategy,
}

impl PublisherConfig {
    /// Slots in the ring (a power of two, 2 ..= 2^24).
    pub fn slots(mut self, n: u64) -> Self {
        self.options.config.slots = n;
        self
    }
    /// Most payload bytes per message (1 ..= 1 GiB).
    pub fn slot_size(mut self, bytes: u64) -> Self {
        self.options.config.slot_size = bytes;
        self
    }
    /// What happens when a subscriber falls a whole ring behind.
    pub fn overflow(mut self, policy: Overflow) -> Self {
        self.options.config.overflow = policy;
        self
    }
    /// Payload alignment (a power of two, 16 ..= 4096).
    pub fn alignment(mut self, bytes: u64) -> Self {
        self.options.config.alignment = bytes;
        self
    }
    /// Most subscribers at once (1 ..= 4096).
    pub fn max_subscribers(mut self, n: u64) -> Self {
        self.options.config.max_subscribers = n;
        self
    }
    /// Publishers the topic admits at once (default 1: the topic is this publisher's
    /// alone, and a second gets `AlreadyPublished`). With `n > 1` every publisher writes
    /// its own lane (a single-writer ring: the publish path is the same as with one
    /// publisher), and a later [`Publisher::create`](crate::Publisher::create) of the
    /// same topic with the same configuration joins while fewer than `n` are live
    /// (`CreateError::Mismatch` names a difference, `PublishersFull` says all are taken).
    /// Subscribers receive from every lane: each publisher's messages in its order, with
    /// `Sample::publisher` saying whose; no order across
    /// publishers. The last publisher to leave closes the topic. Each lane has the
    /// topic's slots, so memory grows with `n`.
    ///
    /// ```
    /// # use ringcast_publisher::{Publisher, PublisherConfig};
    /// # let prefix = format!("rcdoc{}mp", std::process::id());
    /// let cfg = PublisherConfig::default().prefix(&prefix).max_publishers(4);
    /// let mut a = Publisher::create("tf", cfg.clone())?;
    /// let mut b = Publisher::create("tf", cfg)?; // joins: a second lane
    /// assert_ne!(a.lane(), b.lane());
    /// a.send(b"from a")?;
    /// b.send(b"from b")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_publishers(mut self, n: u64) -> Self {
        self.options.config.max_publishers = n;
        self
    }

    /// Only join: [`Publisher::create`](crate::Publisher::create) takes a free lane of a
    /// live topic that admits several publishers, with the configuration that topic has
    /// (the geometry, policy and type set here are ignored), and never creates one
    /// (`CreateError::NothingToJoin` when there is nothing to join).
    ///
    /// ```
    /// # use ringcast_publisher::{Publisher, PublisherConfig};
    /// # use ringcast_core::CreateError;
    /// # let prefix = format!("rcdoc{}join", std::process::id());
    /// let join = PublisherConfig::default().prefix(&prefix).join_only();
    /// assert!(matches!(
    ///     Publisher::create("orders", join.clone()),
    ///     Err(CreateError::NothingToJoin { .. })
    /// ));
    /// let first = PublisherConfig::default().prefix(&prefix).slots(8).max_publishers(2);
    /// let _gateway = Publisher::create("orders", first)?;
    /// let strategy = Publisher::create("orders", join)?; // 8 slots, from the topic
    /// assert_eq!(strategy.geometry().slot_count, 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_only(mut self) -> Self {
        self.options.join_only = true;
        self
    }
    /// Permission bits of the segment (default 0o600: only this user may attach): read and
    /// write bits only, including 0o600 (else creation fails with
    /// [`ConfigError::Mode`](ringcast_core::ConfigError::Mode)).
    pub fn mode(mut self, mode: u32) -> Self {
        self.options.mode = mode;
        self
    }
    /// Also join shared topics whose segment belongs to user `uid` (with
    /// [`join_only`](Self::join_only) or a topic of several publishers). By default a
    /// publisher joins only its own user's and root's topics: another user's is refused
    /// with `CreateError::AlreadyPublished` naming that user, as a subscriber refuses it
    /// (`SubscriberOptions::trust_user`), because any local user who may create files in
    /// /dev/shm could otherwise stand in for the topic and read what is published to it.
    /// Joining needs write permission on the segment (its creator's [`mode`](Self::mode)).
    pub fn trust_user(mut self, uid: u32) -> Self {
        self.options.trust = self.options.trust.user(uid);
        self
    }
    /// Also join shared topics whose segment file's group is `gid` (see
    /// [`trust_user`](Self::trust_user)).
    pub fn trust_group(mut self, gid: u32) -> Self {
        self.options.trust = self.options.trust.group(gid);
        self
    }
    /// Join shared topics of any owner (see [`trust_user`](Self::trust_user)).
    pub fn trust_any_owner(mut self) -> Self {
        self.options.trust = self.options.trust.any_owner();
        self
    }
    /// Whose shared topics to join, all at once (replaces what
    /// [`trust_user`](Self::trust_user) and the others added).
    pub fn trust(mut self, trust: ringcast_core::trust::Trust) -> Self {
        self.options.trust = trust;
        self
    }
    /// Segment name prefix (default `ringcast`): segments are `/dev/shm/<prefix>.<topic>`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.options.prefix = prefix.into();
        self
    }
    /// How a `Block` publisher waits for room.
    pub fn wait_strategy(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }
    /// `Block` only: evict a live subscriber that keeps the publisher waiting for longer
    /// than `timeout` (1 ms ..= 1 day), instead of waiting for it forever. The evicted
    /// subscriber gets `Evicted` on its next receive and must attach again. A subscriber
    /// reading a sample in place is never evicted while it holds it (its slot stays
    /// pinned). Without this (the default), a live subscriber that stops reading stalls
    /// the publisher: pure backpressure.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringcast_publisher::{Overflow, PublisherConfig};
    /// let cfg = PublisherConfig::default()
    ///     .overflow(Overflow::Block)
    ///     .stall_timeout(Duration::from_millis(200));
    /// assert_eq!(cfg.segment().stall_timeout, Some(Duration::from_millis(200)));
    /// ```
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.options.config.stall_timeout = Some(timeout);
        self
    }
    /// Fault every page of the segment in at creation, so the first messages take no page
    /// faults (default off).
    pub fn prefault(mut self, on: bool) -> Self {
        self.options.memory.prefault = on;
        self
    }
    /// `mlock` the segment at creation, so its pages stay resident (default off). Needs
    /// room under `RLIMIT_MEMLOCK` or `CAP_IPC_LOCK`; else creation fails with
    /// `CreateError::Memory`.
    pub fn lock_memory(mut self, on: bool) -> Self {
        self.options.memory.lock = on;
        self
    }
    /// Back the segment with transparent huge pages (default off), so the ring costs 512
    /// times fewer page faults and TLB entries; implies [`prefault`](Self::prefault)
    /// (the prefault reserves the memory, as huge pages). Subscribers' mappings follow
    /// without asking. Where /dev/shm cannot give huge pages (mounted without `huge=`,
    /// or the system denies them) creation fails with
    /// `CreateError::HugePagesUnavailable`, whose reason says what to change. Segments
    /// under 2 MiB gain nothing.
    pub fn huge_pages(mut self, on: bool) -> Self {
        self.options.memory.huge_pages = on;
        self
    }
    /// The message type this topic carries (typed publishers set this).
    pub fn type_info(mut self, info: TypeInfo) -> Self {
        self.options.config.type_info = info;
        self
    }
    /// Marks the topic as re-published from elsewhere (what a bridge's import does):
    /// `origin` says from where, for `ringcast list` and `inspect`: 1 to 112 bytes
    /// without control characters (else creation fails with
    /// [`ConfigError::Origin`](ringcast_core::ConfigError::Origin)). A bridge never
    /// exports a topic so marked, so nothing is echoed back to where it came from.
    pub fn imported_from(mut self, origin: impl Into<String>) -> Self {
        self.options.origin = Some(origin.into());
        self
    }
    /// The segment geometry asked for.
    pub fn segment(&self) -> &SegmentConfig {
        &self.options.config
    }
}
