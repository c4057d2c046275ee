//! The writer of one lane: claim, write, commit, gate on the slowest subscriber of the
//! lane (`Block`), sleep for room, close. See [`crate::ring`] for the protocol.

use std::sync::Arc;

use crate::entry;
use crate::futex::Wake;
use crate::layout::{Overflow, LANE_TAKEN, PUB_CLOSED};
use crate::memory::SegmentMemory;
use crate::protocol::terms::Full;
use crate::stamp::{busy, committed};
use crate::sync::{fence, mutant_or, Ordering};

/// The wake handshake that [`Writer::pay_wakes`] owes (the mutant build
/// `--cfg ringcast_loom_mutant_coalesce` forgets it, and the coalesced-wake model must see
/// a subscriber sleep for ever).
#[cfg(not(ringcast_loom_mutant_coalesce))]
#[inline]
fn pay(mem: &SegmentMemory) -> bool {
    crate::protocol::wake::after_commit(mem)
}

#[cfg(ringcast_loom_mutant_coalesce)]
fn pay(_: &SegmentMemory) -> bool {
    false
}

/// Rounds of [`Writer::refresh_limit`]'s rescan beyond one per table entry (an honest
/// attach makes at most one more round necessary).
const RESCANS: u32 = 64;

/// A publisher's side of one lane of the ring. There is exactly one per lane, built only
/// by the code that took the lane (so safe code cannot make a second one). Its mutating
/// methods take `&mut self`; it is `Sync` in the auto-trait sense, which is harmless
/// because a `&Writer` can only read and close.
pub struct Writer {
    mem: Arc<SegmentMemory>,
    /// The lane this writer owns.
    lane: usize,
    /// The topic has one lane (then `lane` is 0).
    one_lane: bool,
    /// The lane generation it took the lane with.
    generation: u64,
    /// The high half of every `len` word it commits: the low 32 bits of its lane
    /// generation (the publisher id readers see).
    tag: u64,
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
    /// Commits do not wake sleeping subscribers; they owe it (see
    /// [`hold_wakes`](Self::hold_wakes)).
    holding: bool,
    /// A commit made while holding has not run the wake handshake yet.
    owed: bool,
    slots: u64,
    overflow: Overflow,
}

impl Writer {
    /// Takes lane `lane` for a new publisher and returns its writer: a new lane
    /// generation (the publisher id its messages carry), our pid, `LANE_TAKEN`, the wake
    /// line's stale announcement of a dead predecessor cleared, and the lane's cursor
    /// moved past a commit that a predecessor which died between its committing stamp
    /// store and its cursor store left behind (readers may already hold that message).
    /// A lane taken over continues its sequence, so subscribers' cursors stay valid.
    ///
    /// # Safety
    /// `mem` is a segment mapped writable whose lane `lane` this process owns (it holds
    /// the lane's lock), and no other `Writer` for that lane exists or will exist while
    /// this one lives.
    pub(crate) unsafe fn take_lane(mem: Arc<SegmentMemory>, lane: usize) -> Self {
        let line = mem.lane(lane);
        // Relaxed, all: the lane's lock orders a predecessor's stores before ours, and a
        // successor's after ours; readers of the owner line only print it.
        let generation = line
            .owner
            .generation
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        line.owner.pid.store(std::process::id(), Ordering::Relaxed);
        line.owner.state.store(LANE_TAKEN, Ordering::Relaxed);
        line.pub_wake.waiting.store(0, Ordering::Relaxed);
        let mut next = line.publisher.write_cursor.load(Ordering::Relaxed);
        // At most one honest step; bounded by the ring for a hostile lane.
        for _ in 0..mem.geometry().slot_count {
            if mem.slot(lane, next).stamp.load(Ordering::Relaxed) != committed(next) {
                break;
            }
            next = next.wrapping_add(1);
        }
        // Release: as the commit's cursor store (pairs with the Acquire loads of attach
        // and lag recovery).
        line.publisher.write_cursor.store(next, Ordering::Release);
        // SAFETY: passed on from our caller.
        unsafe { Writer::new(mem, lane, generation) }
    }

    /// The writer of lane `lane`, with publisher id `generation`.
    ///
    /// # Safety
    /// As for [`take_lane`](Self::take_lane), which is the only caller, after taking the
    /// owner line.
    unsafe fn new(mem: Arc<SegmentMemory>, lane: usize, generation: u64) -> Self {
        let g = *mem.geometry();
        let line = &mem.lane(lane).publisher;
        // Relaxed: only the lane's writer ever stores these, and the lane's lock orders a
        // previous writer's stores before ours; a fresh lane has them at 0 / N-1. A lane
        // taken over continues its sequence, so subscribers' cursors stay valid.
        let next = line.write_cursor.load(Ordering::Relaxed);
        let limit = line.gate_limit.load(Ordering::Relaxed);
        Writer {
            one_lane: g.max_publishers == 1,
            mem,
            lane,
            generation,
            tag: (generation & crate::layout::LEN_MASK) << 32,
            next,
            limit,
            claimed: false,
            woke: false,
            holding: false,
            owed: false,
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
        self.mem.payload_ptr(self.lane, self.next)
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
        unsafe { self.mem.store_payload(self.lane, self.next, offset, bytes) }
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

    /// The lane this writer owns.
    #[inline]
    pub fn lane(&self) -> usize {
        self.lane
    }

    /// [`lane`](Self::lane), as a constant 0 on a topic with one lane (so the hot path
    /// of an exclusive topic computes no lane offsets).
    #[inline(always)]
    fn ix(&self) -> usize {
        if self.one_lane {
            0
        } else {
            self.lane
        }
    }

    /// The lane generation this writer took the lane with (its low 32 bits are the
    /// publisher id readers see).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
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
        let slot = self.mem.slot(self.ix(), s);
        // A lane taken over from a writer that died mid-write may still say busy(s).
        debug_assert!(slot.stamp.load(Ordering::Relaxed) <= busy(s));
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
        let slot = self.mem.slot(self.ix(), s);
        // Relaxed: published by the Release stamp store below.
        slot.len.store(len as u64 | self.tag, Ordering::Relaxed);
        // Release: publishes the payload and length. Pairs with the Acquire stamp load in
        // `Reader::poll`.
        slot.stamp.store(committed(s), Ordering::Release);
        self.next = s + 1;
        self.claimed = false;
        // Release: a reader that sees the cursor also sees the stamps of all sequences
        // below it. Pairs with the Acquire loads in `OwnEntry::attach` and `Reader::recover_lag`.
        self.mem
            .lane(self.ix())
            .publisher
            .write_cursor
            .store(s + 1, Ordering::Release);
        if self.holding {
            self.owed = true;
        } else if crate::protocol::wake::after_commit(&self.mem) {
            self.woke = true;
        }
        s
    }

    /// From now on, commits do not run the wake handshake: they owe it, and
    /// [`pay_wakes`](Self::pay_wakes) runs it once for all of them. A run of commits then
    /// costs one wake system call, not one per commit while a woken subscriber has not
    /// withdrawn its announcement yet. Until paid, a subscriber asleep before the run may
    /// sleep on past its messages, so the caller pays before it waits for anything (this
    /// writer's own [`sleep_for_room`](Self::sleep_for_room) pays first) and at the end of
    /// the run.
    #[inline]
    pub fn hold_wakes(&mut self) {
        self.holding = true;
    }

    /// Ends [`hold_wakes`](Self::hold_wakes) and runs the wake handshake once if a commit
    /// owes it. Correct for the whole run: every commit's stamp store is sequenced before
    /// this fence, so a subscriber whose re-check comes after it in the total order sees
    /// each of them, and one whose re-check comes before has announced its sleep and is
    /// woken (the argument of `wake.rs` with the run's last commit standing for all).
    #[inline]
    pub fn pay_wakes(&mut self) {
        self.holding = false;
        self.pay_owed();
    }

    /// Runs the wake handshake a held commit owes, and goes on holding: what a writer
    /// that holds wakes does before it waits for room.
    #[inline]
    pub fn pay_owed(&mut self) {
        if std::mem::take(&mut self.owed) && pay(&self.mem) {
            self.woke = true;
        }
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
        let line = &self.mem.lane(self.lane).publisher;
        let rounds = RESCANS + self.mem.geometry().max_subscribers as u32;
        for _ in 0..rounds {
            let min = self.slowest_cursor(s);
            let limit = min.saturating_add(self.slots - 1);
            // Relaxed: ordered before the rescan by the SeqCst fence below; the attaching
            // reader reads it after its own SeqCst fence.
            line.gate_limit.store(limit, Ordering::Relaxed);
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

    /// The smallest cursor in our lane of any gating entry, capped at `cap`.
    fn slowest_cursor(&self, cap: u64) -> u64 {
        entry::slowest_cursor(&self.mem, self.lane, cap)
    }

    /// `Block`: calls `f(entry, state word, cursor)` for each gating entry that keeps the
    /// next sequence from being claimed now (its cursor is a whole ring behind). Cold: the
    /// publisher's stall watch runs it only while it waits for room.
    pub fn for_each_blocker(&self, f: impl FnMut(usize, u32, u64)) {
        entry::for_each_blocker(&self.mem, self.lane, self.next, f)
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
        // A subscriber may sleep on messages whose wake is owed, and only its reads make
        // room: pay first.
        self.pay_owed();
        let mem = self.mem.clone();
        let lane = self.lane;
        crate::protocol::wake::publisher_sleep(&mem, lane, timeout, || self.has_room())
    }

    /// Marks the topic closed (every lane: only the topic's last publisher does this) and
    /// wakes every sleeper. Readers drain what was committed, then see [`Poll::Closed`](crate::ring::Poll::Closed).
    /// Idempotent.
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
