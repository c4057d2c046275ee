//! The two ends of a topic as owned, safe handles: [`PublisherEnd`] (the segment this
//! process created, its publisher lock and name, and the ring's [`Writer`]) and
//! [`SubscriberEnd`] (an attached segment, the claimed table entry and its lock, and a
//! [`Reader`]).
//!
//! These are the only ways to get a `Writer` or a `Reader` outside this crate, so the
//! preconditions of the ring's constructors (one writer per topic, one owner per table
//! entry) hold by construction: safe code cannot make a second writer, free a live
//! subscriber's entry, or store into a read-only mapping.

use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::time::Duration;

use crate::entry::{self, EntryLocks, Reaped};
use crate::error::{AttachError, CreateError};
use crate::fork::Lineage;
use crate::geometry::Geometry;
use crate::layout::TypeInfo;
use crate::memory::SegmentMemory;
use crate::ring::{Reader, Role, Start, Writer};
use crate::segment::{Access, AttachLimits, CreateOptions, Segment};
use crate::sync::Ordering;

/// The publishing end of a topic: one lane of it. Dropping it leaves the lane; the last
/// publisher to leave closes the topic (subscribers drain what was published, then see
/// the end) and removes its name. A copy inherited by a `fork()` child leaves nothing
/// when dropped there (see [`crate::fork`]).
pub struct PublisherEnd {
    writer: Writer,
    segment: Segment,
    lineage: Lineage,
    /// Dropped as if its process had died (see [`abandon`](Self::abandon)).
    abandoned: bool,
}

impl PublisherEnd {
    /// Creates `topic` (see `Segment::create`), or joins it if it admits several
    /// publishers and has a free lane: fails with `AlreadyPublished` if a live publisher
    /// has an exclusive topic of that name; a topic whose publishers all died is reclaimed.
    pub fn create(topic: &str, opts: &CreateOptions) -> Result<PublisherEnd, CreateError> {
        let lineage = Lineage::current();
        let (segment, lane) = Segment::create(topic, opts)?;
        // SAFETY: `Segment::create` made or joined this segment, mapped it writable and
        // holds lane `lane`'s lock through its descriptor; this is the only writer ever
        // built for that lane while the lock is held (the segment is moved into the end,
        // and no other path builds a writer from a created segment).
        let writer = unsafe { Writer::take_lane(segment.memory().clone(), lane) };
        Ok(PublisherEnd {
            writer,
            segment,
            lineage,
            abandoned: false,
        })
    }

    /// Whether this end was made by the process this one was forked from: it belongs to
    /// that process, and writing through it here would make two writers of one lane.
    #[inline]
    pub fn inherited(&self) -> bool {
        self.lineage.inherited()
    }

    /// Leaves as if this process had died: the lane is not marked left and the topic is
    /// neither closed nor unlinked; its lock goes with the descriptor, so subscribers
    /// find the lane's publisher dead (they drain what it published, then, with the
    /// last lane, `Disconnected` with the topic not closed by its publisher). The name
    /// stays until `gc` or a new publisher reclaims it, as a crashed publisher's does.
    /// Takes effect when the end is dropped.
    pub fn abandon_on_drop(&mut self) {
        self.abandoned = true;
    }

    /// The lane this publisher writes (0 on a topic with one publisher).
    #[inline]
    pub fn lane(&self) -> usize {
        self.writer.lane()
    }

    /// This publisher's id in its lane: the low 32 bits of the lane's generation when it
    /// took the lane (what subscribers see as the writer of its messages).
    #[inline]
    pub fn writer_id(&self) -> u32 {
        self.writer.generation() as u32
    }

    /// The ring's writer.
    #[inline]
    pub fn writer(&mut self) -> &mut Writer {
        &mut self.writer
    }

    /// The ring's writer, shared (read-only questions).
    #[inline]
    pub fn writer_ref(&self) -> &Writer {
        &self.writer
    }

    /// The topic name.
    #[inline]
    pub fn topic(&self) -> &str {
        self.segment.topic()
    }

    /// The topic's geometry.
    #[inline]
    pub fn geometry(&self) -> &Geometry {
        self.segment.memory().geometry()
    }

    /// The segment's memory.
    #[inline]
    pub fn memory(&self) -> &Arc<SegmentMemory> {
        self.segment.memory()
    }

    /// Frees the table entries of subscribers that died without detaching (a system call
    /// per entry in use: not for the hot path).
    pub fn reap_dead_subscribers(&self) -> Reaped {
        entry::reap_dead(self.segment.memory(), &self.segment)
    }

    /// Adds `n` to the topic's count of messages lost upstream (an importer that saw a gap
    /// in its source's sequence numbers). Call it before committing the first message
    /// after the gap, so that subscribers that receive that message see the count.
    pub fn count_upstream_loss(&self, n: u64) {
        let lost = &self.segment.memory().header().import.upstream_lost;
        // Relaxed: only the publisher writes it, and the next commit's Release stamp store
        // publishes it (see `ImportLine`). An RMW, not load + store, because `&self` may be
        // shared between threads; off the hot path (only after a gap).
        lost.fetch_add(n, Ordering::Relaxed);
    }

    /// Subscribers attached and alive now (reaps the dead first).
    pub fn subscriber_count(&self) -> usize {
        self.reap_dead_subscribers();
        entry::count_attached(self.segment.memory())
    }
}

impl Drop for PublisherEnd {
    fn drop(&mut self) {
        if self.inherited() || self.abandoned {
            // Inherited: the parent's lane; its lock is held through the file description
            // we share, and leaving would release it (and maybe close and unlink the
            // topic). Abandoned: left as a dead publisher's. Either way the fields drop:
            // our mapping and descriptor only.
            return;
        }
        let writer = &self.writer;
        self.segment.leave(writer.lane(), || writer.close());
    }
}

/// The subscribing end of a topic: an attached segment and its claimed table entry.
/// Dropping it detaches (a `Block` publisher stops waiting for it). A copy inherited by a
/// `fork()` child detaches nothing when dropped there (see [`crate::fork`]).
pub struct SubscriberEnd {
    // The reader is dropped by `drop` before the fields: it frees its table entry before
    // the segment's descriptor (and with it the entry's lock) goes away: when this end
    // drops, or when the last share of its claim ([`EntryClaim`]) does, if that is later.
    reader: ManuallyDrop<Reader>,
    segment: Arc<Segment>,
    lineage: Lineage,
}

/// A share of a subscriber's claim on its table entry: the segment's open file
/// description, whose OFD lock on the entry's byte claims it. While a share lives, no
/// other subscriber (of any process) can claim the entry, even after the end detached
/// from it; the async reactor holds one while a pass of it may announce its sleep in the
/// entry ([`crate::reactor`]).
#[derive(Clone)]
pub(crate) struct EntryClaim {
    _segment: Arc<Segment>,
}

impl SubscriberEnd {
    /// Opens and validates `topic` under `prefix` (waiting up to `init_wait` for a segment
    /// still being initialized), checks its message type against `expected` (`None`
    /// accepts any) and its size against `limits`, claims a free table entry and attaches
    /// at `start` in `role`.
    pub fn attach(
        prefix: &str,
        topic: &str,
        expected: Option<&TypeInfo>,
        init_wait: Duration,
        limits: &AttachLimits,
        start: Start,
        role: Role,
    ) -> Result<SubscriberEnd, AttachError> {
        let lineage = Lineage::current();
        let segment = Segment::open(
            prefix,
            topic,
            Access::Subscribe,
            expected,
            init_wait,
            limits,
        )?;
        let max = segment.memory().geometry().max_subscribers;
        let index = segment
            .claim_entry()
            .map_err(|e| AttachError::Io {
                topic: topic.to_owned(),
                op: "fcntl(F_OFD_SETLK)",
                source: e,
            })?
            .ok_or(AttachError::TableFull {
                topic: topic.to_owned(),
                max,
            })?;
        // SAFETY: `claim_entry` took entry `index`'s OFD lock through this segment's open
        // file description, which the end keeps until after the reader is dropped (`drop`
        // order; shares of the claim only keep it longer); the segment was validated by
        // `open`.
        let reader = unsafe { Reader::attach(segment.memory().clone(), index, start, role) };
        Ok(SubscriberEnd {
            reader: ManuallyDrop::new(reader),
            segment: Arc::new(segment),
            lineage,
        })
    }

    /// Whether this end was made by the process this one was forked from: its table
    /// entry and cursor are that process's, and reading through it here would move them.
    #[inline]
    pub fn inherited(&self) -> bool {
        self.lineage.inherited()
    }

    /// A share of this end's claim on its table entry.
    pub(crate) fn claim(&self) -> EntryClaim {
        EntryClaim {
            _segment: self.segment.clone(),
        }
    }

    /// The ring's reader.
    #[inline]
    pub fn reader(&mut self) -> &mut Reader {
        &mut self.reader
    }

    /// The ring's reader, shared.
    #[inline]
    pub fn reader_ref(&self) -> &Reader {
        &self.reader
    }

    /// The topic name.
    #[inline]
    pub fn topic(&self) -> &str {
        self.segment.topic()
    }

    /// The topic's geometry.
    #[inline]
    pub fn geometry(&self) -> &Geometry {
        self.segment.memory().geometry()
    }

    /// The segment's memory (for payload reads through the reader's rules).
    #[inline]
    pub fn memory(&self) -> &Arc<SegmentMemory> {
        self.segment.memory()
    }

    /// Whether a live process holds the publisher lock (a system call).
    pub fn publisher_alive(&self) -> bool {
        self.segment.publisher_alive()
    }

    /// Whether a live process holds lane `lane`'s lock (its publisher lives; a system
    /// call). `lane` must be below the topic's lane count.
    pub fn lane_alive(&self, lane: usize) -> bool {
        self.segment.lane_alive(lane)
    }
}

/// Memory a closed handle leaves mapped for a foreign pointer into it (a Python buffer
/// view, a C pointer): the segment's mapping and, optionally, a private buffer of the
/// handle's. It gives no access to anything: it only delays the `munmap` and the free
/// until it is dropped. The topic itself is already closed (or detached from) when it is
/// made.
pub struct Retained {
    _memory: Arc<SegmentMemory>,
    _buffer: Option<Box<dyn Send + Sync>>,
}

impl Retained {
    /// Keeps `memory` mapped, and `buffer` allocated, until dropped.
    pub fn new(memory: Arc<SegmentMemory>, buffer: Option<Box<dyn Send + Sync>>) -> Retained {
        Retained {
            _memory: memory,
            _buffer: buffer,
        }
    }
}

impl std::fmt::Debug for Retained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retained")
            .field("bytes", &self._memory.geometry().total_size)
            .finish_non_exhaustive()
    }
}

impl Drop for SubscriberEnd {
    fn drop(&mut self) {
        if self.inherited() {
            // The parent's entry: detaching would free it under the parent's reader. The
            // reader's own memory is leaked in this process (a fork child's, once).
            return;
        }
        // SAFETY: dropped once, here, and never used after (the end is being dropped).
        unsafe { ManuallyDrop::drop(&mut self.reader) };
    }
}

impl std::fmt::Debug for PublisherEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublisherEnd")
            .field("topic", &self.topic())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SubscriberEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriberEnd")
            .field("topic", &self.topic())
            .finish_non_exhaustive()
    }
}

impl EntryLocks for Segment {
    fn try_lock_dead(&self, i: usize) -> bool {
        self.try_lock_entry(i)
    }
    fn unlock(&self, i: usize) {
        self.unlock_entry(i)
    }
}
