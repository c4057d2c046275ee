//! The words a lane's writer and its readers exchange ([`Start`], [`Poll`], [`Full`],
//! [`PublisherId`]) and the read-only looks at a lane that waiters use before sleeping
//! (`news_at`, `room_at`). See [`crate::ring`] for the protocol.

use crate::entry;
use crate::layout::PUB_CLOSED;
use crate::memory::SegmentMemory;
use crate::stamp::committed;
use crate::sync::{load_acquire_ro, Ordering};

/// Which publisher wrote a message: the lane it writes and its id there (the low 32 bits
/// of the lane's generation when it took the lane; a publisher that takes a lane another
/// left gets a new id). On a topic with one publisher, lane 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PublisherId {
    /// The lane.
    pub lane: u32,
    /// The publisher's id in the lane.
    pub writer: u32,
}

impl std::fmt::Display for PublisherId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.lane, self.writer)
    }
}

/// The ring is full relative to the slowest live `Block` subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// Whether a reader whose next sequence in lane `lane` is `next` has news there: the slot
/// holds (or has moved past) `next`, or the topic is closed. The re-check of every
/// subscriber sleep.
#[inline]
pub(crate) fn news_at(mem: &SegmentMemory, lane: usize, next: u64) -> bool {
    // Acquire (read-only mapping): as in `Reader::poll`.
    load_acquire_ro(&mem.slot(lane, next).stamp) >= committed(next)
        // Acquire: see `Reader::poll_slow`.
        || mem.header().sub_wake.state.load(Ordering::Acquire) == PUB_CLOSED
}

/// `Block`: whether lane `lane`'s writer could claim `next` after a rescan (the slowest
/// gating cursor is less than a ring behind). A read-only look for a waiter that is not
/// the writer (the async reactor); the writer's own claim decides.
pub(crate) fn room_at(mem: &SegmentMemory, lane: usize, next: u64) -> bool {
    let slots = mem.geometry().slot_count;
    next < entry::slowest_cursor(mem, lane, next).saturating_add(slots)
}

/// Where a new subscriber starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Start {
    /// With the next message published after attaching.
    #[default]
    Latest,
    /// With the oldest message still in the ring (replay).
    Oldest,
}

/// What a reader found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Message `seq` with `len` payload bytes is committed in its slot.
    Ready {
        /// Its sequence.
        seq: u64,
        /// Its length (already checked against the slot capacity).
        len: usize,
    },
    /// Nothing new yet.
    Empty,
    /// `Overwrite`: the reader was lapped and skipped exactly this many messages; it now
    /// points at the oldest intact one.
    Lagged(u64),
    /// The publisher closed the topic and everything committed has been read.
    Closed,
    /// `Block`: the slot moved on although this reader had not released it: the reader
    /// was evicted and may no longer read in place.
    Overrun,
    /// The committed length is larger than the slot: the publisher is broken or hostile.
    Corrupt {
        /// The length it claimed.
        len: u64,
    },
}
