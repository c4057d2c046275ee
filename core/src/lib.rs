//! ringcast-core: the shared-memory segment, the lock-free SPMC ring protocol, futex
//! wake-ups and liveness that the `ringcast` publisher and subscriber are built on.
//!
//! The crate is in layers, four of them folders, each using only the layers above it in this
//! list (no module imports one of a later layer, and there are no import cycles):
//!
//! | layer | module | holds |
//! |---|---|---|
//! | | `sync` (private) | the std/loom switch every atomic goes through |
//! | [`os`] | [`futex`] | shared futex wait and wake |
//! | | [`lock`] | liveness through OFD locks |
//! | | [`residency`] | prefault, `mlock`, huge pages; the page size |
//! | | [`clock`] | the per-handle liveness clock and saturating deadlines |
//! | | [`trust`] | segment owners and whom a subscriber trusts |
//! | | [`fork`] | the fork count: ends inherited by a child are inert |
//! | [`shm`] | [`layout`] | the `repr(C)` header, subscriber table and slot headers |
//! | | [`geometry`] | sizes computed at creation and re-validated at attach; a new header |
//! | | [`stamp`] | slot stamps: which sequence a slot holds, busy or committed |
//! | | [`name`] | topic names |
//! | | [`memory`] | the mapped segment's accessors (std and loom flavours) |
//! | | [`segment`] | create / reclaim / open / validate in `/dev/shm` |
//! | | [`error`] | typed errors (beside `shm`: used from here up) |
//! | [`protocol`] | [`protocol::wake`] | the announce / re-check / sleep handshake, both halves |
//! | | `entry` (private) | the subscriber-entry lifecycle: claim, attach, hold, release, evict, reap, detach |
//! | | [`handback`] | deferred releases handed back before any blocking wait |
//! | | [`protocol::terms`] | what the ends exchange: `Start`, `Poll`, `Full`, `PublisherId`; the looks before a sleep |
//! | | [`protocol::writer`] | a lane's [`ring::Writer`]: take the lane, claim, commit, gate, close |
//! | | [`protocol::reader`] | a subscriber's [`ring::Reader`]: a cursor in every lane, fair polling, copies, holds, releases |
//! | | [`ring`] | the protocol's description, and its public names |
//! | | [`stall`] | the stall-timeout eviction policy of a `Block` publisher |
//! | (ends) | [`endpoint`] | the owned, safe ends of a topic: the only way to a `Writer` or `Reader` |
//! | [`waiting`] | [`wait`] | wait strategies and the deadline / liveness loop |
//! | | [`waitset`] | waiting on many topics at once: the wait set, its sleep, its notifier |
//! | | [`reactor`] | the async reactor thread: wakes tasks' `Waker`s through the wait set's sleep |
//! | (top) | [`inspect`] | read-only snapshots and garbage collection for tools |
//!
//! Every module keeps its flat path (`ringcast_core::ring`, `ringcast_core::futex`, ...)
//! beside its place in a folder.
//!
//! Users normally depend on the `ringcast` facade crate instead of this one.
//!
//! # Sealed internals
//!
//! Nothing reachable from safe code can break the protocol's invariants: the ring's
//! [`ring::Writer`] and [`ring::Reader`] are built only by the owned ends in [`endpoint`]
//! (which establish one writer per topic and one owner per table entry), and the shared
//! words themselves (header, table, slot stamps) and the sleep handshake are
//! crate-private. `docs/design.md` in the repository describes the whole protocol.
//!
//! ```compile_fail,E0624
//! // A second writer for a topic cannot be made from safe code.
//! fn second_writer(mem: std::sync::Arc<ringcast_core::memory::SegmentMemory>) {
//!     let _ = unsafe { ringcast_core::ring::Writer::new(mem) };
//! }
//! ```
//!
//! ```compile_fail,E0624
//! // Nor can a subscriber's table entry be freed behind its back.
//! fn free_entry(mem: &ringcast_core::memory::SegmentMemory) {
//!     mem.entry(0).state.store(0, std::sync::atomic::Ordering::Relaxed);
//! }
//! ```
//!
//! ```compile_fail,E0603
//! // Nor the sleep handshake run on someone else's entry.
//! fn sleep_as(mem: &ringcast_core::memory::SegmentMemory) {
//!     ringcast_core::protocol::wake::subscriber_sleep(mem, 3, None, || false);
//! }
//! ```

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod error;
pub mod os;
pub mod protocol;
pub mod shm;
mod sync;
pub mod waiting;

#[cfg(not(loom))]
pub mod endpoint;
#[cfg(not(loom))]
pub mod inspect;

// The modules keep their flat paths (`ringcast_core::ring`, `ringcast_core::futex`, ...):
// the folders are for readers; the public paths did not change.
pub use os::{clock, futex, trust};
#[cfg(not(loom))]
pub use os::{fork, lock, residency};
pub(crate) use protocol::entry;
pub use protocol::{handback, ring, stall};
#[cfg(not(loom))]
pub use shm::segment;
pub use shm::{geometry, layout, memory, name, stamp};
#[cfg(not(loom))]
pub use waiting::reactor;
pub use waiting::{wait, waitset};

pub use entry::Reaped;

/// The loom models' door into the crate (`--cfg loom` builds only): the constructors the
/// endpoints use in a real process, with their obligations, and the model's stand-ins for
/// the kernel's locks. Not part of any API.
#[cfg(loom)]
#[doc(hidden)]
pub mod model {
    use std::sync::Arc;

    use crate::entry::{self, Reaped};
    use crate::memory::SegmentMemory;
    use crate::ring::{Reader, Role, Start, Writer};

    /// The writer of a model segment.
    ///
    /// # Safety
    /// At most one writer per model segment exists at a time.
    pub unsafe fn writer(mem: Arc<SegmentMemory>) -> Writer {
        // SAFETY: passed on to the caller; a model segment is writable.
        unsafe { Writer::take_lane(mem, 0) }
    }

    /// Takes lane `lane` (its model lock) and returns its writer, as a joining publisher
    /// does; `None` if the lane is taken.
    pub fn join_lane(mem: Arc<SegmentMemory>, lane: usize) -> Option<Writer> {
        if !mem.model_lock_lane(lane) {
            return None;
        }
        // SAFETY: we hold the lane's model lock until `leave_lane`, and build one writer.
        Some(unsafe { Writer::take_lane(mem, lane) })
    }

    /// A publisher leaving its lane (the lane's model lock is released).
    pub fn leave_lane(writer: Writer) {
        let (mem, lane) = (writer.memory().clone(), writer.lane());
        drop(writer);
        mem.model_unlock_lane(lane);
    }

    /// A reader through entry `entry`.
    ///
    /// # Safety
    /// The caller holds the entry's model lock ([`SegmentMemory::model_lock`]) for the
    /// reader's whole life (or until it "dies" with [`die`]).
    pub unsafe fn reader(mem: Arc<SegmentMemory>, entry: usize, start: Start) -> Reader {
        // SAFETY: passed on to the caller.
        unsafe { Reader::attach(mem, entry, start, Role::Subscriber) }
    }

    /// A monitor (non-gating reader) through entry `entry`.
    ///
    /// # Safety
    /// As for [`reader`].
    pub unsafe fn monitor(mem: Arc<SegmentMemory>, entry: usize, start: Start) -> Reader {
        // SAFETY: passed on to the caller.
        unsafe { Reader::attach(mem, entry, start, Role::Monitor) }
    }

    /// The writer's reaper, with the model locks standing in for OFD locks.
    pub fn reap(mem: &SegmentMemory) -> Reaped {
        entry::reap_dead(mem, mem)
    }

    /// A subscriber "killed" where it stands: it never detaches, and the kernel drops its
    /// entry lock. Whatever it announced (a sleep, a cursor) stays behind in its entry.
    pub fn die(reader: Reader) {
        let (mem, index) = (reader.memory().clone(), reader.entry_index());
        std::mem::forget(reader);
        mem.model_unlock(index);
    }

    /// A subscriber killed while it sleeps: it announces the sleep (the shipped first half
    /// of `wake::subscriber_sleep`), then dies before it wakes.
    pub fn die_asleep(reader: Reader) {
        crate::protocol::wake::announce_sleep(reader.memory(), reader.entry_index());
        die(reader)
    }

    /// Subscribers counted asleep now.
    pub fn sleepers(mem: &SegmentMemory) -> u32 {
        // Relaxed: read after the model's threads joined.
        mem.header()
            .sub_wake
            .sleepers
            .load(crate::sync::Ordering::Relaxed)
    }
}

pub use error::{AttachError, ConfigError, CreateError, NameError};
pub use geometry::{Geometry, SegmentConfig};
pub use layout::{Overflow, TypeInfo};
pub use ring::{Full, Poll, PublisherId, Reader, Role, Start, Writer};
pub use wait::WaitStrategy;
