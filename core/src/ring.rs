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
//! **Attach under Block** is a Dekker handshake between the attaching reader and the
//! writer's rescan: the reader stores a tentative cursor, SeqCst fence, reads the writer's
//! published `gate_limit`; the writer stores `gate_limit`, SeqCst fence, re-scans the table.
//! Either the writer sees the reader's entry, or the reader sees the limit and starts past
//! everything the writer may still overwrite without looking again.
//!
//! **Eviction under Block** (topics with a stall timeout only) is a race between two CASes
//! on the reader's entry `state`: the reader turns `Active` into `Holding` before it reads
//! a slot in place (and back on release); the writer turns `Active` into `Evicted` when it
//! gives up on a stalled reader. Exactly one wins, so the writer never evicts a reader that
//! is reading in place, and an evicted reader never starts an in-place read again. The
//! state word carries the attach generation, so an eviction aimed at one owner cannot hit
//! the next one.

use std::sync::Arc;

use crate::layout::{
    entry_gates, entry_kind, entry_with_kind, entry_word, EntryKind, Overflow, ENTRY_FREE,
    PUB_CLOSED,
};
use crate::memory::SegmentMemory;
use crate::stamp::{busy, committed};
use crate::sync::{fence, mutant_or, Ordering};

/// The ring is full relative to the slowest live `Block` subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// The publisher's side of the ring. There is exactly one per topic; it is `Send` but not
/// `Sync` (every method takes `&mut self`).
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
    pub fn new(mem: Arc<SegmentMemory>) -> Self {
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

    /// Sequence of the next message to commit (= messages committed so far).
    #[inline]
    pub fn next_seq(&self) -> u64 {
        self.next
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
        // below it. Pairs with Acquire loads in attach and lag recovery.
        hdr.publisher.write_cursor.store(s + 1, Ordering::Release);
        if crate::wait::after_commit(&self.mem) {
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
        self.claimed || self.overflow == Overflow::Overwrite || self.refresh_limit()
    }

    /// Rescans the subscriber table for the slowest active cursor and republishes
    /// `gate_limit`. Returns whether `next` may now be written.
    #[cold]
    fn refresh_limit(&mut self) -> bool {
        let s = self.next;
        let hdr = self.mem.header();
        loop {
            let min = self.slowest_cursor(s);
            let limit = min + self.slots - 1;
            // Relaxed: ordered before the rescan by the SeqCst fence below; the attaching
            // reader reads it after its own SeqCst fence.
            hdr.publisher.gate_limit.store(limit, Ordering::Relaxed);
            // SeqCst: the Dekker handshake with `Reader::attach` (see the module docs):
            // either the rescan below sees the attaching entry, or the attacher sees
            // `gate_limit`.
            fence(mutant_or(Ordering::SeqCst, Ordering::Relaxed));
            if self.slowest_cursor(s) >= min {
                self.limit = limit;
                return s <= limit;
            }
            // A subscriber attached behind `min` while we scanned: include it.
        }
    }

    /// The smallest cursor of any gating entry, capped at `cap`.
    fn slowest_cursor(&self, cap: u64) -> u64 {
        let g = self.mem.geometry();
        let mut min = cap;
        for i in 0..g.max_subscribers as usize {
            let e = self.mem.entry(i);
            // Acquire: pairs with the Release store of the Active word in attach, so the
            // cursor we load next is at least the attach's tentative one.
            if entry_gates(e.state.load(Ordering::Acquire)) {
                // Acquire: pairs with the Release cursor store in `Reader::release`: the
                // reader's in-place reads of older slots happen before we overwrite them.
                min = min.min(e.cursor.load(Ordering::Acquire));
            }
        }
        min
    }

    /// `Block`: calls `f(entry, state word, cursor)` for each gating entry that keeps the
    /// next sequence from being claimed now (its cursor is a whole ring behind). Cold: the
    /// publisher's stall watch runs it only while it waits for room.
    pub fn for_each_blocker(&self, mut f: impl FnMut(usize, u32, u64)) {
        let next = self.next;
        for i in 0..self.mem.geometry().max_subscribers as usize {
            let e = self.mem.entry(i);
            // Acquire: as in `slowest_cursor`.
            let word = e.state.load(Ordering::Acquire);
            if !entry_gates(word) {
                continue;
            }
            // Acquire: as in `slowest_cursor`.
            let cursor = e.cursor.load(Ordering::Acquire);
            if cursor.saturating_add(self.slots) <= next {
                f(i, word, cursor);
            }
        }
    }

    /// `Block` with a stall timeout: evicts the subscriber of `entry` if its state is still
    /// exactly `seen` and it is `Active`, not reading in place. Returns whether it was
    /// evicted; the next claim no longer gates on it. (The state word does not carry the
    /// cursor: a reader that released a message and went back to `Active` in the instant
    /// between the caller's look and this CAS is evicted too. That costs it a re-attach,
    /// never safety: it is not reading in place, and `hold` will refuse it.)
    pub fn evict(&mut self, entry: usize, seen: u32) -> bool {
        if !self.mem.geometry().evicts_stalled() || entry_kind(seen) != EntryKind::Active {
            return false;
        }
        let evicted = entry_with_kind(seen, EntryKind::Evicted);
        // Acquire on success: pairs with the Release store of the Active word in
        // `Reader::release` (and attach): the reader's in-place reads happen before any
        // overwrite we do after giving up on it. Relaxed on failure: we learn only that it
        // is holding, released, left or was replaced, and do nothing.
        self.mem
            .entry(entry)
            .state
            .compare_exchange(seen, evicted, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
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
        crate::wait::wake_all_subscribers(&self.mem);
    }
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
    entry: usize,
    /// Next sequence to read.
    next: u64,
    /// Messages lost to lapping so far.
    lost: u64,
    slots: u64,
    capacity: u64,
    overflow: Overflow,
    /// Our entry's `Active` word (the attach generation is in it).
    active_word: u32,
    /// The topic has a stall timeout: in-place reads are marked `Holding`.
    evictable: bool,
    /// Whether our entry says `Holding` now.
    holding: bool,
}

impl Reader {
    /// Starts reading through table entry `entry`, which the caller has exclusively
    /// claimed (an OFD lock in a process; a CAS under loom).
    pub fn attach(mem: Arc<SegmentMemory>, entry: usize, start: Start) -> Self {
        let g = *mem.geometry();
        let n = g.slot_count;
        let hdr = mem.header();
        let e = mem.entry(entry);
        let pick = |w: u64| match start {
            Start::Latest => w,
            Start::Oldest => w.saturating_sub(n),
        };
        // Acquire: pairs with the Release cursor store in `Writer::commit`.
        let tentative = pick(hdr.publisher.write_cursor.load(Ordering::Acquire));
        // A predecessor that died asleep left its sleeper count behind: take it back (we
        // own the entry now, so nobody else touches its flag).
        crate::wait::uncount_dead_sleeper(&mem, entry);
        // Relaxed: published by the Release store of ACTIVE just below.
        e.cursor.store(tentative, Ordering::Relaxed);
        e.lost.store(0, Ordering::Relaxed);
        e.pid.store(std::process::id(), Ordering::Relaxed);
        // Relaxed: only we write it while we own the entry; published by the store below.
        let generation = e.generation.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let active_word = entry_word(generation, EntryKind::Active);
        // Release: a writer that sees the Active word sees the tentative cursor. Pairs with
        // the Acquire state load in `Writer::slowest_cursor`.
        e.state.store(active_word, Ordering::Release);
        // SeqCst: the attach half of the Dekker handshake with `Writer::refresh_limit`.
        fence(mutant_or(Ordering::SeqCst, Ordering::Relaxed));
        // Acquire: as above; a later cursor only moves the start forward.
        let mut next = pick(hdr.publisher.write_cursor.load(Ordering::Acquire)).max(tentative);
        if g.overflow == Overflow::Block {
            // Relaxed: ordered by the fence above (see `Writer::refresh_limit`).
            let limit = hdr.publisher.gate_limit.load(Ordering::Relaxed);
            // The writer may overwrite anything below `limit + 1 - n` without rescanning.
            next = next.max(limit.saturating_add(1).saturating_sub(n));
        }
        // Release: as for every cursor store, pairs with the writer's Acquire rescan.
        e.cursor.store(next, Ordering::Release);
        if g.overflow == Overflow::Block {
            // The writer may have gated on our tentative cursor and gone to sleep; moving
            // the cursor forward is a release like any other and must wake it. (Found by
            // the loom model `block_attach_and_detach_race_with_publishing`: without this,
            // writer and newcomer each wait for the other.)
            crate::wait::after_release(&mem);
        }
        Reader {
            mem,
            entry,
            next,
            lost: 0,
            slots: n,
            capacity: g.slot_capacity,
            overflow: g.overflow,
            active_word,
            evictable: g.overflow == Overflow::Block && g.evicts_stalled(),
            holding: false,
        }
    }

    /// The segment memory.
    #[inline]
    pub fn memory(&self) -> &Arc<SegmentMemory> {
        &self.mem
    }

    /// The table entry this reader owns.
    #[inline]
    pub fn entry_index(&self) -> usize {
        self.entry
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
        let s = self.next;
        // Acquire: as in `poll`.
        self.mem.slot(s).stamp.load(Ordering::Acquire) >= committed(s) || self.is_closed()
    }

    /// Looks at the slot of the next sequence without consuming it.
    #[inline]
    pub fn poll(&mut self) -> Poll {
        let s = self.next;
        let slot = self.mem.slot(s);
        // Acquire: pairs with the Release stamp store in `Writer::commit`: the payload
        // and length of `s` are visible once we see committed(s).
        let stamp = slot
            .stamp
            .load(mutant_or(Ordering::Acquire, Ordering::Relaxed));
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
            // Acquire: as in `poll`.
            let stamp = self.mem.slot(s).stamp.load(Ordering::Acquire);
            if stamp == committed(s) {
                return self.ready(s);
            }
            if stamp > committed(s) {
                return self.poll_slow(stamp);
            }
            return Poll::Closed;
        }
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
        // begun, `target` is gone. Acquire: as in `poll`.
        if target < w && self.mem.slot(target).stamp.load(Ordering::Acquire) != committed(target) {
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
        if !self.evictable || self.holding {
            return true;
        }
        // The negative control drops the claim and reads in place unmarked: the loom model
        // `stall_eviction_never_hits_a_slot_read_in_place` must catch the overwrite.
        if cfg!(ringcast_loom_mutant) {
            return true;
        }
        let holding = entry_with_kind(self.active_word, EntryKind::Holding);
        // Relaxed both ways: this CAS and the writer's eviction CAS are ordered by the
        // entry's modification order, which is all the exclusion needs (one of them wins);
        // the slot's contents are ordered by the Acquire stamp load in `poll`, and a lost
        // race tells us only to stop.
        match self.mem.entry(self.entry).state.compare_exchange(
            self.active_word,
            holding,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => {
                self.holding = true;
                true
            }
            Err(_) => false,
        }
    }

    /// Whether the writer evicted this reader (a stall timeout ran out while it was not
    /// reading in place).
    pub fn is_evicted(&self) -> bool {
        // Relaxed: a status check; `hold` is what enforces the exclusion.
        let word = self.mem.entry(self.entry).state.load(Ordering::Relaxed);
        self.evictable && entry_kind(word) == EntryKind::Evicted
    }

    /// Releases message `seq` (read in place after a `Ready` poll) and moves on. Under
    /// `Block` this lets the writer reuse the slot and wakes it if it sleeps.
    #[inline]
    pub fn release(&mut self, seq: u64) {
        debug_assert_eq!(seq, self.next);
        self.next = seq.wrapping_add(1);
        let e = self.mem.entry(self.entry);
        // Release: our reads of the slot happen before the writer's overwrite. Pairs with
        // the Acquire cursor load in `Writer::slowest_cursor`.
        e.cursor
            .store(self.next, mutant_or(Ordering::Release, Ordering::Relaxed));
        if self.holding {
            self.holding = false;
            // Release: the slot reads are done before a writer that sees Active (and
            // evicts us by CAS, with Acquire) overwrites anything. While we hold, only we
            // write this word (the writer's CAS expects Active), so a plain store is exact.
            e.state.store(self.active_word, Ordering::Release);
        }
        if self.overflow == Overflow::Block {
            crate::wait::after_release(&self.mem);
        }
    }

    fn publish_position(&self) {
        let e = self.mem.entry(self.entry);
        // Relaxed: informational (inspect); under Block cursors move only in `release`.
        if self.overflow == Overflow::Overwrite {
            e.cursor.store(self.next, Ordering::Relaxed);
        }
        e.lost.store(self.lost, Ordering::Relaxed);
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
        self.publish_position();
        let e = self.mem.entry(self.entry);
        // Release: everything we read happens before the writer reuses the slots we held.
        e.state.store(ENTRY_FREE, Ordering::Release);
        if self.overflow == Overflow::Block {
            crate::wait::after_release(&self.mem);
        }
    }
}
