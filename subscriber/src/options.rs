//! Subscriber options: a plain struct with chainable setters.

use std::time::Duration;

use ringcast_core::residency::MemoryOptions;
use ringcast_core::segment::AttachLimits;
use ringcast_core::{Role, Start, TypeInfo, WaitStrategy};

/// How to attach. Default: prefix `ringcast`, start at the latest message, spin briefly
/// then sleep, any message type.
///
/// ```
/// use ringcast_subscriber::{Start, SubscriberOptions, WaitStrategy};
/// let opts = SubscriberOptions::default()
///     .start(Start::Oldest)
///     .wait_strategy(WaitStrategy::Park);
/// ```
#[derive(Clone, Debug)]
pub struct SubscriberOptions {
    pub(crate) prefix: String,
    pub(crate) start: Start,
    pub(crate) wait: WaitStrategy,
    pub(crate) type_info: Option<TypeInfo>,
    pub(crate) init_wait: Duration,
    pub(crate) limits: AttachLimits,
    pub(crate) memory: MemoryOptions,
    pub(crate) release_batch: Option<u64>,
    pub(crate) role: Role,
}

impl Default for SubscriberOptions {
    fn default() -> Self {
        SubscriberOptions {
            prefix: ringcast_core::name::DEFAULT_PREFIX.to_owned(),
            start: Start::Latest,
            wait: WaitStrategy::default(),
            type_info: None,
            init_wait: Duration::from_millis(250),
            limits: AttachLimits::default(),
            memory: MemoryOptions::default(),
            release_batch: None,
            role: Role::Subscriber,
        }
    }
}

impl SubscriberOptions {
    /// Segment name prefix; must match the publisher's.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Start with the next message (`Latest`) or the oldest still in the ring (`Oldest`).
    pub fn start(mut self, start: Start) -> Self {
        self.start = start;
        self
    }
    /// How blocking receives wait.
    pub fn wait_strategy(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }
    /// Require this message type (typed subscribers set it); `TypeMismatch` otherwise.
    pub fn expect_type(mut self, info: TypeInfo) -> Self {
        self.type_info = Some(info);
        self
    }
    /// How long to wait for a segment that is still being initialized.
    pub fn init_wait(mut self, d: Duration) -> Self {
        self.init_wait = d;
        self
    }
    /// Refuse topics whose slots hold more than `bytes` (`AttachError::OverLimit`), before
    /// mapping anything or allocating the copy buffer (default: the format's 1 GiB).
    /// A hostile header over a sparse file costs nothing to write and can claim the most.
    pub fn max_slot_size(mut self, bytes: u64) -> Self {
        self.limits.max_slot_bytes = bytes;
        self
    }
    /// Also attach to topics whose segment belongs to user `uid`. By default only the
    /// caller's own effective user and root are trusted: a segment of anyone else is
    /// refused with `AttachError::UntrustedOwner`, because any local user who may create
    /// files in /dev/shm could otherwise stand in for the topic.
    ///
    /// ```
    /// # use ringcast_subscriber::SubscriberOptions;
    /// let opts = SubscriberOptions::default().trust_user(1001).trust_group(2000);
    /// ```
    pub fn trust_user(mut self, uid: u32) -> Self {
        self.limits.trust = self.limits.trust.user(uid);
        self
    }
    /// Also attach to topics whose segment file's group is `gid` (see
    /// [`trust_user`](Self::trust_user)).
    pub fn trust_group(mut self, gid: u32) -> Self {
        self.limits.trust = self.limits.trust.group(gid);
        self
    }
    /// Attach to topics of any owner: the behaviour before the owner check, for machines
    /// where every local user is trusted with every topic.
    pub fn trust_any_owner(mut self) -> Self {
        self.limits.trust = self.limits.trust.any_owner();
        self
    }
    /// Whose topics to attach to, all at once (replaces what
    /// [`trust_user`](Self::trust_user) and the others added).
    pub fn trust(mut self, trust: ringcast_core::trust::Trust) -> Self {
        self.limits.trust = trust;
        self
    }
    /// Fault every page of the mapped segment in at attach (default off), so the first
    /// receives take no page faults.
    pub fn prefault(mut self, on: bool) -> Self {
        self.memory.prefault = on;
        self
    }
    /// `mlock` the mapped segment at attach (default off). Needs room under
    /// `RLIMIT_MEMLOCK` or `CAP_IPC_LOCK`; else attaching fails with `AttachError::Memory`.
    pub fn lock_memory(mut self, on: bool) -> Self {
        self.memory.lock = on;
        self
    }
    /// `Block`: release slots to the publisher in runs of up to `slots` (clamped to
    /// `1 ..= slot count`; default 1, every slot at once). While more messages wait, a
    /// released slot is handed back with the rest of its run: one cursor store and one
    /// wake-up check per run instead of per message, which lifts small-message throughput
    /// (about 1.3x at 64 B here) and wakes a sleeping publisher once per run. A run ends
    /// early when nothing more waits, so a subscriber that has caught up never holds a
    /// released slot back.
    ///
    /// The price: a subscriber that stops reading mid-backlog keeps up to `slots - 1`
    /// released slots from the publisher until its next receive, or until any thread of
    /// its process starts a wait that may block (a send waiting for room, a receive, a
    /// wait set), which hands every deferred slot of the process back first
    /// ([`ringcast_core::handback`]): a thread that publishes into the same topic, or
    /// relays into a peer that relays back, never waits for slots it holds itself. On a
    /// topic with a stall timeout the stall watch sees the run's cursor, which moves once
    /// per run.
    ///
    /// ```
    /// use ringcast_subscriber::SubscriberOptions;
    /// let opts = SubscriberOptions::default().release_batch(16);
    /// ```
    pub fn release_batch(mut self, slots: u64) -> Self {
        self.release_batch = Some(slots);
        self
    }
    /// Attach as a monitor (for diagnostic tools): this subscriber never holds the
    /// publisher back, whatever the topic's policy, so a stopped or slow monitor cannot
    /// freeze a `Block` pipeline. It reads every message by a verified copy into its own
    /// buffer, and when the publisher laps it, it loses messages and says exactly how
    /// many (`Lagged(n)`, as under `Overwrite`). It does not count for a publisher's
    /// `wait_for_subscribers` / `subscriber_count`; `inspect` shows it as a monitor.
    ///
    /// ```
    /// # use ringcast_publisher::{Overflow, Publisher, PublisherConfig};
    /// use ringcast_subscriber::{Subscriber, SubscriberOptions};
    /// # let prefix = format!("rcdoc-mon-{}", std::process::id());
    /// let cfg = PublisherConfig::default().prefix(&prefix).slots(4).overflow(Overflow::Block);
    /// let mut publisher = Publisher::create("imu", cfg)?;
    /// let mut monitor = Subscriber::attach("imu", SubscriberOptions::default().prefix(&prefix).monitor())?;
    /// // Nobody gates the publisher: ten sends into four slots never wait.
    /// for i in 0..10u8 {
    ///     publisher.send(&[i])?;
    /// }
    /// assert_eq!(publisher.subscriber_count(), 0);
    /// // The monitor lost the six that were overwritten, and says so.
    /// assert!(monitor.try_recv().is_err());
    /// assert_eq!(&monitor.try_recv()?[..], &[6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn monitor(mut self) -> Self {
        self.role = Role::Monitor;
        self
    }
    /// Refuse topics whose whole segment is larger than `bytes` (`AttachError::OverLimit`),
    /// before mapping anything (default: the format's 1 TiB).
    pub fn max_segment_size(mut self, bytes: u64) -> Self {
        self.limits.max_segment_bytes = bytes;
        self
    }
}
