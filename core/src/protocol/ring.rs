//! The single-producer / multi-consumer ring protocol.
//!
//! One [`Writer`] (the publisher) and any number of [`Reader`]s (subscribers, usually in
//! other processes) share a ring of `N = slot_count` slots. Message `seq` lives in slot
//! `seq mod N`; each slot carries a stamp ([`crate::stamp`]) saying which sequence it holds.
//!
//! **Publishing** is a seqlock write per slot (Boehm, "Can seqlocks get along with
//! programming language memory models?", MSPC 2012): stamp `busy(seq)`, Release fence,
//! payload, then stamp `committed(seq)` with Release. Readers load the stamp with Acquire.
//!
//! **Overwrite**: the writer never waits. A reader copies the payload out with atomic word
//! loads, issues an Acquire fence and re-reads the stamp; if the stamp moved, the copy raced
//! an overwrite and is discarded. A reader that finds a stamp above the one it wants was
//! lapped: it counts exactly the sequences it skips and resumes at the oldest intact one.
//!
//! **Block**: each reader publishes, in its subscriber-table entry, a `cursor`: the next
//! sequence it has not released. The writer may write `seq` only if every active cursor is
//! `> seq - N`. It caches that bound as `limit` (the LMAX Disruptor's cached gating
//! sequence) and rescans the table only when it reaches the limit, so the fast path is a
//! compare. Readers read in place; releasing stores `cursor = seq + 1` with Release.
//!
//! **Batched release** (`Block`, opt-in with [`Reader::set_release_batch`]): a reader
//! that releases a slot while the next message is already committed defers the cursor
//! store, up to `release_batch` slots, and publishes one cursor for the whole run when the
//! run ends (the next slot is empty) or reaches the bound. A deferred cursor is behind the
//! true one, which is always safe for the writer (it gates on less than it could); one
//! Release store orders every in-place read of the run before the writer's reuse of those
//! slots, and one wake handshake covers the run. A reader that keeps reading never holds
//! the writer back for long: a writer that waits for room on it is a whole ring ahead of
//! the published cursor, so the reader meets either the bound (at most the ring) or an
//! empty slot before it runs out of messages, and publishes. A reader that *stops*
//! mid-run keeps up to `release_batch - 1` released slots from the writer until its next
//! receive, or until any thread of its process starts a blocking wait: every such wait
//! first hands back every deferred run of the process ([`crate::handback`]), so a thread
//! that waits to publish (into this ring or another) holds at most the message it reads.
//!
//! **Attach under Block** is a Dekker handshake between the attaching reader and the
//! writer's rescan, and **eviction under Block** (topics with a stall timeout only) a race
//! between two CASes on the reader's entry `state`; both live with the rest of the entry
//! lifecycle in `crate::entry`. `docs/design.md` walks through the whole protocol.
//!
//! Reader-side loads of the slot ring go through `load_ro`: a subscriber maps the ring
//! read-only, where Rust promises only `Relaxed` loads.

use std::sync::Arc;

pub use crate::entry::Role;
use crate::entry::{self, OwnEntry};
use crate::futex::Wake;
use crate::handback::Deferral;
use crate::layout::{Overflow, PUB_CLOSED};
use crate::memory::SegmentMemory;
use crate::stamp::{busy, committed};
use crate::sync::{fence, load_acquire_ro, load_ro, mutant_or, Ordering};

/// Rounds of [`Writer::refresh_limit`]'s rescan beyond one per table entry (an honest
/// attach makes at most one more round necessary).
const RESCANS: u32 = 64;

/// The ring is full relative to the slowest live `Block` subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// The publisher's side of the ring. There is exactly one per topic, built only by the
/// code that created the topic (so safe code cannot make a second one). Its mutating
/// methods take `&mut self`; it is `Sync` in the auto-trait sense, which is harmless
/// because a `&Writer` can only read and close.
pub struct Writer {
    mem: Arc<SegmentMemory>,
    /// Sequence of the next message to commit; mirrors `write_cursor` in shared memory,
    /// which only this writer stores.
    next: u64,
    /// `Block`: the highest sequence we may write without rescanning the table. Invariant:
    /// `limit <= min(active cursors) + N - 1` as of the last rescan.
    limit: u64,
    /// Whether `next` is claimed (stamped busy) and not yet committed.
    claimed: bool,
    /// A commit made the wake system call since [`take_woke`](Self::take_woke) last ran.
    woke: bool,
    slots: u64,
    overflow: Overflow,
}

impl Writer {
    /// The writer of a segment this process created (or reclaimed) and owns.
    ///
    /// # Safety
    /// `mem` is a segment whose publisher lock this process holds (it created it), mapped
    /// writable, and no other `Writer` for it exists or will exist while this one lives.
    pub(crate) unsafe fn new(mem: Arc<SegmentMemory>) -> Self {
        let g = *mem.geometry();
        let hdr = mem.header();
        // Relaxed: only this writer ever stores these; a fresh segment has them at 0 / N-1.
        let next = hdr.publisher.write_cursor.load(Ordering::Relaxed);
        let limit = hdr.publisher.gate_limit.load(Ordering::Relaxed);
        Writer {
            mem,
            next,
            limit,
            claimed: false,
            woke: false,
            slots: g.slot_count,
            overflow: g.overflow,
        }
    }

    /// The segment memory.
    #[inline]
    pub fn memory(&self) -> &Arc<SegmentMemory> {
        &self.mem
    }

    /// A raw pointer to the claimed slot's payload (the loan's view of it): valid for
    /// reads and writes until the next commit or claim, and alongside
    /// [`store_claimed`](Self::store_claimed), which stores through the same base pointer.
    /// Dereferencing it is the caller's business (no other reference to the payload may
    /// live meanwhile).
    ///
    /// # Panics
    /// If nothing is claimed.
    #[cfg(not(loom))]
    #[inline]
    pub fn claimed_payload_ptr(&mut self) -> *mut [u8] {
        assert!(self.claimed, "no claimed slot");
        self.mem.payload_ptr(self.next)
    }

    /// Stores `bytes` at byte `offset` of the claimed slot with word-wise atomic stores (the
    /// library's own copying path under `Overwrite`, where a reader may be copying the same
    /// slot with atomic loads at that moment: a race the stamp re-check detects, never a
    /// data race).
    ///
    /// # Panics
    /// If nothing is claimed or the range passes the slot's end.
    #[inline]
    pub fn store_claimed(&mut self, offset: usize, bytes: &[u8]) {
        assert!(self.claimed, "no claimed slot");
        // SAFETY: we are the only writer (constructor contract) and `next` is claimed; the
        // ring is mapped writable for us; `&mut self` excludes a live `claimed_payload`
        // slice. The range is checked inside.
        unsafe { self.mem.store_payload(self.next, offset, bytes) }
    }

    /// Sequence of the next message to commit (= messages committed so far).
    #[inline]
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Whether the next sequence is claimed (a claim not yet committed).
    #[inline]
    pub fn is_claimed(&self) -> bool {
        self.claimed
    }

    /// The topic's overflow policy.
    #[inline]
    pub fn overflow(&self) -> Overflow {
        self.overflow
    }

    /// Claims the slot of the next sequence for writing and returns that sequence. Under
    /// `Block` this fails with [`Full`] while the slowest active subscriber still holds the
    /// slot; under `Overwrite` it always succeeds. Claiming twice without a commit returns
    /// the same sequence.
    #[inline]
    pub fn try_claim(&mut self) -> Result<u64, Full> {
        let s = self.next;
        if self.claimed {
            return Ok(s);
        }
        if self.overflow == Overflow::Block && s > self.limit && !self.refresh_limit() {
            return Err(Full);
        }
        let slot = self.mem.slot(s);
        debug_assert!(slot.stamp.load(Ordering::Relaxed) < busy(s));
        // Relaxed: ordered before the payload writes by the Release fence below.
        slot.stamp.store(busy(s), Ordering::Relaxed);
        // Seqlock writer fence: a reader whose copy observed any payload byte of `s` also
        // observes busy(s) or later on its re-check. Pairs with the Acquire fence in
        // `Reader::read_copy`.
        fence(mutant_or(Ordering::Release, Ordering::Relaxed));
        self.claimed = true;
        Ok(s)
    }

    /// Commits the claimed sequence with `len` payload bytes and returns it; wakes sleeping
    /// subscribers if there are any.
    ///
    /// # Panics
    /// If nothing is claimed, or `len` exceeds the slot capacity (callers check first).
    #[inline]
    pub fn commit(&mut self, len: usize) -> u64 {
        assert!(self.claimed, "commit without a claimed slot");
        assert!(len as u64 <= self.mem.geometry().slot_capacity);
        let s = self.next;
        let slot = self.mem.slot(s);
        // Relaxed: published by the Release stamp store below.
        slot.len.store(len as u64, Ordering::Relaxed);
        // Release: publishes the payload and length. Pairs with the Acquire stamp load in
        // `Reader::poll`.
        slot.stamp.store(committed(s), Ordering::Release);
        self.next = s + 1;
        self.claimed = false;
        let hdr = self.mem.header();
        // Release: a reader that sees the cursor also sees the stamps of all sequences
        // below it. Pairs with the Acquire loads in `OwnEntry::attach` and `Reader::recover_lag`.
        hdr.publisher.write_cursor.store(s + 1, Ordering::Release);
        if crate::protocol::wake::after_commit(&self.mem) {
            self.woke = true;
        }
        s
    }

    /// Whether a commit since the last call made a wake system call (someone was counted
    /// asleep). The publisher uses it to look for subscribers that died asleep, whose
    /// count would otherwise cost a wake call per message.
    #[inline]
    pub fn take_woke(&mut self) -> bool {
        std::mem::take(&mut self.woke)
    }

    /// Whether the next sequence could be claimed now (a fresh rescan under `Block`).
    /// Used as the re-check of the publisher's sleep handshake.
    pub fn has_room(&mut self) -> bool {
        self.claimed
            || self.overflow == Overflow::Overwrite
            || self.next <= self.limit
            || self.refresh_limit()
    }

    /// Rescans the subscriber table for the slowest active cursor and republishes
    /// `gate_limit`. Returns whether `next` may now be written.
    ///
    /// The rescan repeats while subscribers attach behind the minimum it found; it gives
    /// up (reporting no room, which is always safe: nothing is written) after
    /// [`RESCANS`] rounds plus one per table entry, so a process scribbling cursors in the
    /// table cannot keep even a `try_claim` spinning here for ever. On giving up, `limit`
    /// drops below `next`, so nothing more is written before a rescan confirms a limit:
    /// an attacher may have read one of the unconfirmed, lower `gate_limit`s published
    /// meanwhile and started behind the old limit.
    #[cold]
    fn refresh_limit(&mut self) -> bool {
        let s = self.next;
        let hdr = self.mem.header();
        let rounds = RESCANS + self.mem.geometry().max_subscribers as u32;
        for _ in 0..rounds {
            let min = self.slowest_cursor(s);
            let limit = min.saturating_add(self.slots - 1);
            // Relaxed: ordered before the rescan by the SeqCst fence below; the attaching
            // reader reads it after its own SeqCst fence.
            hdr.publisher.gate_limit.store(limit, Ordering::Relaxed);
            // SeqCst: the Dekker handshake with `OwnEntry::attach` (see `crate::entry`):
            // either the rescan below sees the attaching entry, or the attacher sees
            // `gate_limit`.
            fence(mutant_or(Ordering::SeqCst, Ordering::Relaxed));
            if self.slowest_cursor(s) >= min {
                self.limit = limit;
                return s <= limit;
            }
            // A subscriber attached behind `min` while we scanned: include it.
        }
        self.limit = self.limit.min(s.saturating_sub(1));
        false
    }

    /// The smallest cursor of any gating entry, capped at `cap`.
    fn slowest_cursor(&self, cap: u64) -> u64 {
        entry::slowest_cursor(&self.mem, cap)
    }

    /// `Block`: calls `f(entry, state word, cursor)` for each gating entry that keeps the
    /// next sequence from being claimed now (its cursor is a whole ring behind). Cold: the
    /// publisher's stall watch runs it only while it waits for room.
    pub fn for_each_blocker(&self, f: impl FnMut(usize, u32, u64)) {
        entry::for_each_blocker(&self.mem, self.next, f)
    }

    /// `Block` with a stall timeout: evicts the subscriber of `entry` if its state is still
    /// exactly `seen` and it is `Active`, not reading in place. Returns whether it was
    /// evicted; the next claim no longer gates on it. (The state word does not carry the
    /// cursor: a reader that released a message and went back to `Active` in the instant
    /// between the caller's look and this CAS is evicted too. That costs it a re-attach,
    /// never safety: it is not reading in place, and `hold` will refuse it.)
    pub fn evict(&mut self, entry: usize, seen: u32) -> bool {
        entry::evict(&self.mem, entry, seen)
    }

    /// `Block`: one announced sleep until a subscriber releases a slot (or `timeout`
    /// passes, or a spurious wake). The caller loops and re-checks.
    pub fn sleep_for_room(&mut self, timeout: Option<std::time::Duration>) -> Wake {
        let mem = self.mem.clone();
        crate::protocol::wake::publisher_sleep(&mem, timeout, || self.has_room())
    }

    /// Marks the topic closed and wakes every sleeper. Readers drain what was committed,
    /// then see [`Poll::Closed`]. Idempotent.
    pub fn close(&self) {
        let hdr = self.mem.header();
        // Release: every commit before the close is visible to a reader that sees CLOSED.
        // Pairs with the Acquire load in `Reader::poll_slow`.
        hdr.sub_wake.state.store(PUB_CLOSED, Ordering::Release);
        // SeqCst: the close is a publish like any other for the sleep handshake. Without
        // this fence a subscriber's Relaxed read of the futex word may already see the bump
        // below while its re-check still sees OPEN; it then sleeps expecting the bumped
        // value and misses the only wake. (Found by the loom model
        // `close_racing_a_sleeping_subscriber_ends_in_closed_after_draining`.)
        fence(mutant_or(Ordering::SeqCst, Ordering::Release));
        crate::protocol::wake::wake_all_subscribers(&self.mem);
    }
}

/// Whether a reader whose next sequence is `next` has news: the slot holds (or has moved
/// past) `next`, or the topic is closed. The re-check of every subscriber sleep.
#[inline]
pub(crate) fn news_at(mem: &SegmentMemory, next: u64) -> bool {
    // Acquire (read-only mapping): as in `Reader::poll`.
    load_acquire_ro(&mem.slot(next).stamp) >= committed(next)
        // Acquire: see `Reader::poll_slow`.
        || mem.header().sub_wake.state.load(Ordering::Acquire) == PUB_CLOSED
}

/// `Block`: whether the writer could claim `next` after a rescan (the slowest gating
/// cursor is less than a ring behind). A read-only look for a waiter that is not the
/// writer (the async reactor); the writer's own claim decides.
pub(crate) fn room_at(mem: &SegmentMemory, next: u64) -> bool {
    let slots = mem.geometry().slot_count;
    next < entry::slowest_cursor(mem, next).saturating_add(slots)
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

/// A subscriber's side of the ring: its own cursor and its entry in the table.
pub struct Reader {
    mem: Arc<SegmentMemory>,
    /// Next sequence to read.
    next: u64,
    /// Messages lost to lapping so far.
    lost: u64,
    slots: u64,
    capacity: u64,
    /// The policy this reader reads by: the topic's, or `Overwrite` for a monitor.
    overflow: Overflow,
    /// Our table entry, held for the reader's whole life.
    own: OwnEntry,
    /// `Block`: the cursor last stored in our entry (everything below it is released to
    /// the writer); `published <= next`, and `next - published` releases are deferred.
    published: u64,
    /// `Block`: most releases deferred before the cursor is stored (1: every release
    /// stores it).
    batch: u64,
    /// Where a deferred run can be handed back by a thread about to block
    /// ([`crate::handback`]); made at the first deferral.
    deferral: Option<Arc<Deferral>>,
}

impl Reader {
    /// Starts reading through table entry `entry` in `role`.
    ///
    /// # Safety
    /// The caller has exclusively claimed `entry` (holds its OFD lock in a process; its
    /// model lock under loom) and keeps it claimed for the reader's whole life; `mem` is a
    /// validated segment.
    pub(crate) unsafe fn attach(
        mem: Arc<SegmentMemory>,
        entry: usize,
        start: Start,
        role: Role,
    ) -> Self {
        let g = *mem.geometry();
        let n = g.slot_count;
        let (own, next) = OwnEntry::attach(&mem, entry, role, |w| match start {
            Start::Latest => w,
            Start::Oldest => w.saturating_sub(n),
        });
        Reader {
            mem,
            next,
            lost: 0,
            slots: n,
            capacity: g.slot_capacity,
            overflow: match role {
                Role::Subscriber => g.overflow,
                Role::Monitor => Overflow::Overwrite,
            },
            own,
            published: next,
            batch: 1,
            deferral: None,
        }
    }

    /// `Block`: the most releases this reader defers before it stores its cursor (see the
    /// module docs); 1 (every release stored at once) unless set.
    #[inline]
    pub fn release_batch(&self) -> u64 {
        self.batch
    }

    /// Sets [`release_batch`](Self::release_batch), clamped to `1 ..= slot count`
    /// (1 stores the cursor on every release). A larger batch costs fewer cursor stores
    /// and publisher wake-ups per message; while this reader is behind, the writer may
    /// see up to `batch - 1` of its released slots as still held.
    pub fn set_release_batch(&mut self, batch: u64) {
        self.batch = batch.clamp(1, self.slots);
    }

    /// The segment memory.
    #[inline]
    pub fn memory(&self) -> &Arc<SegmentMemory> {
        &self.mem
    }

    /// The policy this reader reads by: the topic's for a [`Role::Subscriber`],
    /// `Overwrite` (copies, laps counted) for a [`Role::Monitor`].
    #[inline]
    pub fn reads_by(&self) -> Overflow {
        self.overflow
    }

    /// The table entry this reader owns.
    #[inline]
    pub fn entry_index(&self) -> usize {
        self.own.index
    }

    /// Next sequence this reader will deliver.
    #[inline]
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Messages lost to lapping since attach.
    #[inline]
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Whether [`poll`](Self::poll) would return something other than `Empty`: the next
    /// slot holds (or has moved past) our sequence, or the topic is closed. Does not
    /// consume anything; used as the re-check before sleeping.
    #[inline]
    pub fn has_news(&self) -> bool {
        news_at(&self.mem, self.next)
    }

    /// Looks at the slot of the next sequence without consuming it.
    #[inline]
    pub fn poll(&mut self) -> Poll {
        let s = self.next;
        let slot = self.mem.slot(s);
        // Acquire (read-only mapping): pairs with the Release stamp store in
        // `Writer::commit`: the payload and length of `s` are visible once we see
        // committed(s).
        let stamp = load_ro(&slot.stamp, mutant_or(Ordering::Acquire, Ordering::Relaxed));
        if stamp == committed(s) {
            return self.ready(s);
        }
        self.poll_slow(stamp)
    }

    #[inline]
    fn ready(&self, s: u64) -> Poll {
        // Relaxed: made visible by the Acquire stamp load that preceded this.
        let len = self.mem.slot(s).len.load(Ordering::Relaxed);
        if len > self.capacity {
            return Poll::Corrupt { len };
        }
        Poll::Ready {
            seq: s,
            len: len as usize,
        }
    }

    #[cold]
    fn poll_slow(&mut self, stamp: u64) -> Poll {
        let s = self.next;
        if stamp > committed(s) {
            return match self.overflow {
                Overflow::Overwrite => self.recover_lag(),
                Overflow::Block => Poll::Overrun,
            };
        }
        // Acquire: pairs with the Release store in `Writer::close`: after seeing CLOSED,
        // every commit is visible, so one more look at the stamp is final.
        if self.mem.header().sub_wake.state.load(Ordering::Acquire) == PUB_CLOSED {
            // Acquire (read-only mapping): as in `poll`.
            let stamp = load_acquire_ro(&self.mem.slot(s).stamp);
            if stamp == committed(s) {
                return self.ready(s);
            }
            if stamp > committed(s) {
                return self.poll_slow(stamp);
            }
            return Poll::Closed;
        }
        // A reader that finds its next slot empty holds nothing back. Normally nothing is
        // deferred here (a release is deferred only while the next slot is committed, and
        // under `Block` it stays so until we release it); a run left open, by a drain
        // whose closure panicked, is handed back now.
        self.end_run();
        Poll::Empty
    }

    /// Lapped: skip to the oldest intact sequence, counting exactly what is skipped.
    #[cold]
    fn recover_lag(&mut self) -> Poll {
        let hdr = self.mem.header();
        // Acquire: pairs with the Release in `Writer::commit`.
        let w = hdr.publisher.write_cursor.load(Ordering::Acquire);
        let mut target = w.saturating_sub(self.slots);
        // Slot `target` is where the writer's next message `w` goes; if that write has
        // begun, `target` is gone. Acquire (read-only mapping): as in `poll`.
        if target < w && load_acquire_ro(&self.mem.slot(target).stamp) != committed(target) {
            target += 1;
        }
        // We saw a stamp above committed(next): `next` itself is gone whatever `w` says.
        let target = target.max(self.next.saturating_add(1));
        let skipped = target - self.next;
        self.next = target;
        self.lost = self.lost.saturating_add(skipped);
        self.publish_position();
        Poll::Lagged(skipped)
    }

    /// Copies message `seq` (from a `Ready` poll) into `dst` and checks it was not
    /// overwritten meanwhile. On success the message is consumed and its length returned;
    /// on a race the reader recovers as from a lap and returns the `Lagged` poll.
    #[inline]
    pub fn read_copy(&mut self, seq: u64, len: usize, dst: &mut [u64]) -> Result<usize, Poll> {
        debug_assert_eq!(seq, self.next);
        self.mem.copy_out(seq, len, dst);
        // Seqlock reader fence: if the copy saw any byte of a later write, the stamp load
        // below sees that write's busy stamp. Pairs with the Release fence in
        // `Writer::try_claim`.
        fence(mutant_or(Ordering::Acquire, Ordering::Relaxed));
        // Relaxed: ordered by the fence above.
        if self.mem.slot(seq).stamp.load(Ordering::Relaxed) == committed(seq) {
            self.next = seq.wrapping_add(1);
            // Overwrite readers publish their position only for `inspect`; a Relaxed store
            // to our own line per message is cheap.
            if self.next & 63 == 0 {
                self.publish_position();
            }
            return Ok(len);
        }
        Err(self.recover_lag())
    }

    /// `Block`: claims message `seq` (from a `Ready` poll) for reading in place. Returns
    /// `false` if the writer evicted this reader for stalling: it must not read in place
    /// (the slot may be rewritten at any time) and should report `Evicted`. Free (no
    /// atomic operation) on topics without a stall timeout.
    #[inline]
    pub fn hold(&mut self, seq: u64) -> bool {
        debug_assert_eq!(seq, self.next);
        self.own.hold(&self.mem)
    }

    /// Whether the writer evicted this reader (a stall timeout ran out while it was not
    /// reading in place).
    pub fn is_evicted(&self) -> bool {
        self.own.is_evicted(&self.mem)
    }

    /// Releases message `seq` (read in place after a `Ready` poll) and moves on. Under
    /// `Block` this lets the writer reuse the slot and wakes it if it sleeps, at once if
    /// no further message waits, else with the rest of the run (batched release, module
    /// docs).
    #[inline]
    pub fn release(&mut self, seq: u64) {
        self.release_bounded(seq, self.batch)
    }

    /// [`release`](Self::release) as part of a run the caller is draining: deferred while
    /// more messages wait, up to the whole ring, whatever `release_batch` says. The
    /// caller ends the run with [`end_run`](Self::end_run).
    #[inline]
    pub fn release_in_run(&mut self, seq: u64) {
        self.release_bounded(seq, self.slots)
    }

    /// `Block`: hands back every deferred release now (a no-op if none is deferred).
    pub fn end_run(&mut self) {
        if self.overflow == Overflow::Block && self.published != self.next {
            self.publish_release();
        }
    }

    #[inline]
    fn release_bounded(&mut self, seq: u64, batch: u64) {
        debug_assert_eq!(seq, self.next);
        self.next = seq.wrapping_add(1);
        if self.overflow == Overflow::Overwrite {
            self.own.release(&self.mem, self.next);
            return;
        }
        // Defer while the run goes on (the next message is committed) and the bound is
        // not reached; `has_message` also pulls the next slot's line in early.
        if self.next - self.published < batch && self.has_message() {
            self.own.end_hold(&self.mem);
            let (mem, entry) = (&self.mem, self.own.index);
            self.deferral
                .get_or_insert_with(|| Deferral::register(mem.clone(), entry))
                .released_below(self.next);
        } else {
            self.publish_release();
        }
    }

    /// `Block`: stores the cursor `next` (releasing the deferred run) and wakes the writer
    /// if it waits for room.
    #[inline]
    fn publish_release(&mut self) {
        self.published = self.next;
        self.own.release(&self.mem, self.next);
        crate::protocol::wake::after_release(&self.mem);
    }

    fn publish_position(&self) {
        self.own.publish_position(&self.mem, self.next, self.lost);
    }

    /// One announced sleep until there is news (a message, a lap, the close) or `timeout`
    /// passes (or a spurious wake). The caller loops and re-checks.
    pub fn sleep(&self, timeout: Option<std::time::Duration>) -> Wake {
        crate::protocol::wake::subscriber_sleep(&self.mem, self.entry_index(), timeout, || {
            self.has_news()
        })
    }

    /// Whether a message (or a lap) waits in the next slot; unlike
    /// [`has_news`](Self::has_news), not counting the close.
    #[inline]
    pub fn has_message(&self) -> bool {
        let s = self.next;
        // Acquire (read-only mapping): as in `poll`.
        load_acquire_ro(&self.mem.slot(s).stamp) >= committed(s)
    }

    /// Leaves the table: the writer stops gating on this entry.
    pub fn detach(self) {
        drop(self)
    }

    /// Whether the publisher has closed the topic.
    pub fn is_closed(&self) -> bool {
        // Acquire: see `poll_slow`.
        self.mem.header().sub_wake.state.load(Ordering::Acquire) == PUB_CLOSED
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(d) = &self.deferral {
            // Before the entry is freed: no hand-back may write it after that.
            d.retire();
        }
        self.publish_position();
        self.own.detach(&self.mem);
    }
}
