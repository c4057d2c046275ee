//! A subscriber's side of the ring: one table entry, and a position in every lane.
//!
//! Each lane is read exactly as a topic with one writer is: the reader's `next` and `lost`
//! per lane, the same stamp checks, copies, in-place holds and (batched) releases of the
//! lane's cursor. With more than one lane, [`Reader::poll`] serves the lane it is on until
//! that lane is empty or has given [`QUANTUM`] messages in a row, then moves on to the next
//! lane with news: no lane waits for more than `QUANTUM` messages of each other lane.
//! Everything that acts on a message (`read_copy`, `hold`, `release`) acts on the lane of
//! the last poll, [`Reader::lane`].

use std::sync::Arc;

use crate::entry::{OwnEntry, Role};
use crate::futex::Wake;
use crate::handback::Deferral;
use crate::layout::{Overflow, LEN_MASK, PUB_CLOSED};
use crate::memory::SegmentMemory;
use crate::protocol::terms::{news_at, Poll, Start};
use crate::stamp::committed;
use crate::sync::{fence, load_acquire_ro, load_ro, mutant_or, Ordering};

/// Messages a reader takes from one lane in a row while other lanes have news.
pub const QUANTUM: u32 = 32;

/// The reader's position in one lane.
struct LanePos {
    /// Next sequence to read.
    next: u64,
    /// Messages of this lane lost to lapping so far.
    lost: u64,
    /// `Block`: the cursor last stored in our entry for this lane (everything below it is
    /// released to the lane's writer); `published <= next`, and `next - published`
    /// releases are deferred.
    published: u64,
    /// Where a deferred run can be handed back by a thread about to block
    /// ([`crate::handback`]); made at the first deferral.
    deferral: Option<Arc<Deferral>>,
    /// The publisher id (high half of the `len` word) of the last message found ready.
    writer: u32,
}

/// A subscriber's side of the ring: its entry in the table and its position in each lane.
pub struct Reader {
    mem: Arc<SegmentMemory>,
    lanes: Box<[LanePos]>,
    /// The lane of the last poll: where `read_copy`, `hold` and `release` act.
    at: usize,
    /// Messages consumed from lane `at` in a row (the fairness quantum).
    served: u32,
    /// The negative control's wrong answer to [`lane`](Self::lane).
    #[cfg(ringcast_loom_mutant_service)]
    mutant_reported: usize,
    slots: u64,
    capacity: u64,
    /// The policy this reader reads by: the topic's, or `Overwrite` for a monitor.
    overflow: Overflow,
    /// Our table entry, held for the reader's whole life.
    own: OwnEntry,
    /// `Block`: most releases deferred per lane before the cursor is stored (1: every
    /// release stores it).
    batch: u64,
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
        let (own, starts) = OwnEntry::attach(&mem, entry, role, |w| match start {
            Start::Latest => w,
            Start::Oldest => w.saturating_sub(n),
        });
        let lanes = starts
            .iter()
            .map(|&next| LanePos {
                next,
                lost: 0,
                published: next,
                deferral: None,
                writer: 0,
            })
            .collect();
        Reader {
            mem,
            lanes,
            at: 0,
            served: 0,
            #[cfg(ringcast_loom_mutant_service)]
            mutant_reported: 0,
            slots: n,
            capacity: g.slot_capacity,
            overflow: match role {
                Role::Subscriber => g.overflow,
                Role::Monitor => Overflow::Overwrite,
            },
            own,
            batch: 1,
        }
    }

    /// `Block`: the most releases this reader defers before it stores its cursor (see the
    /// module docs of [`crate::ring`]); 1 (every release stored at once) unless set.
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

    /// The policy this reader reads by: the topic's for a [`Role::Subscriber`],
    /// `Overwrite` (copies, laps counted) for a [`Role::Monitor`].
    #[inline]
    pub fn reads_by(&self) -> Overflow {
        self.overflow
    }

    /// The segment memory.
    #[inline]
    pub fn memory(&self) -> &Arc<SegmentMemory> {
        &self.mem
    }

    /// The table entry this reader owns.
    #[inline]
    pub fn entry_index(&self) -> usize {
        self.own.index
    }

    /// The lane of the last poll (0 on a topic with one publisher).
    #[inline]
    pub fn lane(&self) -> usize {
        // The negative control reports the lane a poll started from, not the lane whose
        // message it found: the loom model of services (`loom-tests/tests/service.rs`)
        // must misroute a response.
        #[cfg(ringcast_loom_mutant_service)]
        return self.mutant_reported;
        #[cfg(not(ringcast_loom_mutant_service))]
        self.at
    }

    /// The publisher id of the message the last `Ready` poll found: the low 32 bits of
    /// the generation of the lane's publisher that wrote it (with [`lane`](Self::lane), it
    /// names the publisher; a lane taken over by a new publisher gets a new id).
    #[inline]
    pub fn writer_id(&self) -> u32 {
        self.lanes[self.at].writer
    }

    /// Next sequence this reader will deliver from the lane of the last poll.
    #[inline]
    pub fn next_seq(&self) -> u64 {
        self.lanes[self.at].next
    }

    /// Next sequence this reader will deliver from lane `lane`.
    #[inline]
    pub fn next_seq_in(&self, lane: usize) -> u64 {
        self.lanes[lane].next
    }

    /// Lanes (publishers the topic admits).
    #[inline]
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Messages lost to lapping since attach, all lanes.
    #[inline]
    pub fn lost(&self) -> u64 {
        self.lanes.iter().fold(0, |a, p| a.saturating_add(p.lost))
    }

    /// Messages of lane `lane` lost to lapping since attach.
    #[inline]
    pub fn lost_in(&self, lane: usize) -> u64 {
        self.lanes[lane].lost
    }

    /// Whether [`poll`](Self::poll) would return something other than `Empty`: the next
    /// slot of some lane holds (or has moved past) our sequence, or the topic is closed.
    /// Does not consume anything; used as the re-check before sleeping.
    #[inline]
    pub fn has_news(&self) -> bool {
        // The negative control looks only at the current lane: the loom model
        // `a_sleeping_subscriber_gets_a_joined_lane_and_its_takeover` must lose a wake-up.
        if cfg!(ringcast_loom_mutant_lanes) {
            return news_at(&self.mem, self.at, self.lanes[self.at].next);
        }
        self.lanes
            .iter()
            .enumerate()
            .any(|(l, p)| news_at(&self.mem, l, p.next))
    }

    /// Whether lane `lane` has news for this reader: its next slot holds (or has moved
    /// past) our sequence there, or the topic is closed. Consumes nothing.
    #[inline]
    pub fn has_news_in(&self, lane: usize) -> bool {
        news_at(&self.mem, lane, self.lanes[lane].next)
    }

    /// The id of the publisher that took lane `lane` last (the low 32 bits of the lane's
    /// generation; 0 if nobody has): whether it still lives is the segment's lock's to
    /// say. Acquire (read-only mapping): pairs with nothing in particular; a snapshot.
    #[inline]
    pub fn lane_writer(&self, lane: usize) -> u32 {
        load_acquire_ro(&self.mem.lane(lane).owner.generation) as u32
    }

    /// Looks at the next message without consuming it: in the current lane, or (with
    /// several lanes) the next lane with news, as the module docs say.
    #[inline]
    pub fn poll(&mut self) -> Poll {
        if self.lanes.len() == 1 {
            return self.poll_lane(0);
        }
        self.poll_lanes()
    }

    // Not cold: a server's request topic and every shared topic poll here. No `%`: a
    // division per lane polled costs more than the poll itself.
    fn poll_lanes(&mut self) -> Poll {
        let n = self.lanes.len();
        if self.served >= QUANTUM {
            self.served = 0;
            self.at = if self.at + 1 == n { 0 } else { self.at + 1 };
        }
        let first = self.at;
        let mut closed = 0;
        let mut l = first;
        for _ in 0..n {
            let polled = self.poll_lane(l);
            let this = l;
            l = if l + 1 == n { 0 } else { l + 1 };
            match polled {
                Poll::Empty => {}
                Poll::Closed => closed += 1,
                found => {
                    if this != first {
                        self.served = 0;
                    }
                    #[cfg(ringcast_loom_mutant_service)]
                    {
                        self.mutant_reported = first;
                    }
                    return found;
                }
            }
        }
        self.at = first;
        if closed == n {
            Poll::Closed
        } else {
            Poll::Empty
        }
    }

    /// Polls lane `l` and makes it the current lane.
    #[inline]
    fn poll_lane(&mut self, l: usize) -> Poll {
        self.at = l;
        let s = self.lanes[l].next;
        let slot = self.mem.slot(l, s);
        // Acquire (read-only mapping): pairs with the Release stamp store in
        // `Writer::commit`: the payload and length of `s` are visible once we see
        // committed(s).
        let stamp = load_ro(&slot.stamp, mutant_or(Ordering::Acquire, Ordering::Relaxed));
        if stamp == committed(s) {
            return self.ready(l, s);
        }
        self.poll_slow(stamp)
    }

    #[inline]
    fn ready(&mut self, l: usize, s: u64) -> Poll {
        // Relaxed: made visible by the Acquire stamp load that preceded this.
        let word = self.mem.slot(l, s).len.load(Ordering::Relaxed);
        let len = word & LEN_MASK;
        if len > self.capacity {
            return Poll::Corrupt { len };
        }
        self.lanes[l].writer = (word >> 32) as u32;
        Poll::Ready {
            seq: s,
            len: len as usize,
        }
    }

    #[cold]
    fn poll_slow(&mut self, stamp: u64) -> Poll {
        let (l, s) = (self.at, self.lanes[self.at].next);
        if stamp > committed(s) {
            return match self.overflow {
                Overflow::Overwrite => self.recover_lag(),
                Overflow::Block => Poll::Overrun,
            };
        }
        // Acquire: pairs with the Release store in `Writer::close`: after seeing CLOSED,
        // every commit is visible, so one more look at the stamp is final.
        if self.mem.header().sub_wake.state.load(Ordering::Acquire) == PUB_CLOSED {
            // Acquire (read-only mapping): as in `poll_lane`.
            let stamp = load_acquire_ro(&self.mem.slot(l, s).stamp);
            if stamp == committed(s) {
                return self.ready(l, s);
            }
            if stamp > committed(s) {
                return self.poll_slow(stamp);
            }
            return Poll::Closed;
        }
        // A reader that finds its next slot empty holds nothing back in this lane.
        // Normally nothing is deferred here (a release is deferred only while the next
        // slot is committed, and under `Block` it stays so until we release it); a run
        // left open, by a drain whose closure panicked, is handed back now.
        self.end_run_in(l);
        Poll::Empty
    }

    /// Lapped in the current lane: skip to the oldest intact sequence, counting exactly
    /// what is skipped.
    #[cold]
    fn recover_lag(&mut self) -> Poll {
        let l = self.at;
        let line = &self.mem.lane(l).publisher;
        // Acquire: pairs with the Release in `Writer::commit`.
        let w = line.write_cursor.load(Ordering::Acquire);
        let mut target = w.saturating_sub(self.slots);
        // Slot `target` is where the writer's next message `w` goes; if that write has
        // begun, `target` is gone. Acquire (read-only mapping): as in `poll_lane`.
        if target < w && load_acquire_ro(&self.mem.slot(l, target).stamp) != committed(target) {
            target += 1;
        }
        let pos = &mut self.lanes[l];
        // We saw a stamp above committed(next): `next` itself is gone whatever `w` says.
        let target = target.max(pos.next.saturating_add(1));
        let skipped = target - pos.next;
        pos.next = target;
        pos.lost = pos.lost.saturating_add(skipped);
        self.publish_position(l);
        Poll::Lagged(skipped)
    }

    /// Copies message `seq` (from a `Ready` poll) into `dst` and checks it was not
    /// overwritten meanwhile. On success the message is consumed and its length returned;
    /// on a race the reader recovers as from a lap and returns the `Lagged` poll.
    #[inline]
    pub fn read_copy(&mut self, seq: u64, len: usize, dst: &mut [u64]) -> Result<usize, Poll> {
        let l = self.at;
        debug_assert_eq!(seq, self.lanes[l].next);
        self.mem.copy_out(l, seq, len, dst);
        // Seqlock reader fence: if the copy saw any byte of a later write, the stamp load
        // below sees that write's busy stamp. Pairs with the Release fence in
        // `Writer::try_claim`.
        fence(mutant_or(Ordering::Acquire, Ordering::Relaxed));
        // Relaxed: ordered by the fence above.
        if self.mem.slot(l, seq).stamp.load(Ordering::Relaxed) == committed(seq) {
            let next = seq.wrapping_add(1);
            self.lanes[l].next = next;
            self.served = self.served.wrapping_add(1);
            // Overwrite readers publish their position only for `inspect`; a Relaxed store
            // to our own line per 64 messages is cheap.
            if next & 63 == 0 {
                self.publish_position(l);
            }
            return Ok(len);
        }
        Err(self.recover_lag())
    }

    /// `Block`: claims message `seq` (from a `Ready` poll) for reading in place. Returns
    /// `false` if a writer evicted this reader for stalling: it must not read in place
    /// (the slot may be rewritten at any time) and should report `Evicted`. Free (no
    /// atomic operation) on topics without a stall timeout.
    #[inline]
    pub fn hold(&mut self, seq: u64) -> bool {
        debug_assert_eq!(seq, self.lanes[self.at].next);
        self.own.hold(&self.mem)
    }

    /// Whether a writer evicted this reader (a stall timeout ran out while it was not
    /// reading in place).
    pub fn is_evicted(&self) -> bool {
        self.own.is_evicted(&self.mem)
    }

    /// Releases message `seq` of the lane of the last poll (read in place after a `Ready`
    /// poll) and moves on; see [`release_at`](Self::release_at).
    #[inline]
    pub fn release(&mut self, seq: u64) {
        self.release_bounded(self.at, seq, self.batch)
    }

    /// Releases message `seq` of lane `lane` (read in place after a `Ready` poll of that
    /// lane, and not yet released) and moves on in that lane. Under `Block` this lets the
    /// lane's writer reuse the slot and wakes it if it sleeps, at once if no further
    /// message waits in the lane, else with the rest of the run (batched release,
    /// [`crate::ring`]). A holder that polls again before it releases (a wait set asking
    /// for readiness) names the lane it holds.
    #[inline]
    pub fn release_at(&mut self, lane: usize, seq: u64) {
        self.release_bounded(lane, seq, self.batch)
    }

    /// [`release_at`](Self::release_at) as part of a run the caller is draining: deferred
    /// while more messages wait in the lane, up to the whole ring, whatever
    /// `release_batch` says. The caller ends the run with [`end_run`](Self::end_run).
    #[inline]
    pub fn release_in_run(&mut self, lane: usize, seq: u64) {
        self.release_bounded(lane, seq, self.slots)
    }

    /// `Block`: hands back every deferred release, in every lane, now (a no-op if none is
    /// deferred).
    pub fn end_run(&mut self) {
        for l in 0..self.lanes.len() {
            self.end_run_in(l);
        }
    }

    fn end_run_in(&mut self, l: usize) {
        if self.overflow == Overflow::Block && self.lanes[l].published != self.lanes[l].next {
            self.publish_release(l);
        }
    }

    #[inline]
    fn release_bounded(&mut self, l: usize, seq: u64, batch: u64) {
        // One lane (every topic with one publisher): a constant lane from here on.
        let l = if self.lanes.len() == 1 { 0 } else { l };
        // A release of anything but the lane's next message would move its cursor to a
        // place the protocol never allows: refuse it loudly (a caller bug, never input).
        assert_eq!(seq, self.lanes[l].next, "release of a message not held");
        let next = seq.wrapping_add(1);
        self.lanes[l].next = next;
        self.served = self.served.wrapping_add(1);
        if self.overflow == Overflow::Overwrite {
            self.own.release(&self.mem, l, next);
            return;
        }
        // Defer while the run goes on (the next message is committed) and the bound is
        // not reached; `has_message` also pulls the next slot's line in early.
        if next - self.lanes[l].published < batch && self.has_message_in(l) {
            self.own.end_hold(&self.mem);
            let (mem, entry) = (&self.mem, self.own.index);
            self.lanes[l]
                .deferral
                .get_or_insert_with(|| Deferral::register(mem.clone(), entry, l))
                .released_below(next);
        } else {
            self.publish_release(l);
        }
    }

    /// `Block`: stores lane `l`'s cursor `next` (releasing the deferred run) and wakes the
    /// lane's writer if it waits for room.
    #[inline]
    fn publish_release(&mut self, l: usize) {
        let next = self.lanes[l].next;
        self.lanes[l].published = next;
        self.own.release(&self.mem, l, next);
        crate::protocol::wake::after_release(&self.mem, l);
    }

    fn publish_position(&self, l: usize) {
        let p = &self.lanes[l];
        self.own.publish_position(&self.mem, l, p.next, p.lost);
    }

    /// One announced sleep until there is news in some lane (a message, a lap, the close)
    /// or `timeout` passes (or a spurious wake). The caller loops and re-checks.
    pub fn sleep(&self, timeout: Option<std::time::Duration>) -> Wake {
        crate::protocol::wake::subscriber_sleep(&self.mem, self.entry_index(), timeout, || {
            self.has_news()
        })
    }

    /// Whether a message (or a lap) waits in the next slot of the current lane; unlike
    /// [`has_news`](Self::has_news), not counting the close or other lanes.
    #[inline]
    pub fn has_message(&self) -> bool {
        self.has_message_in(self.at)
    }

    #[inline]
    fn has_message_in(&self, l: usize) -> bool {
        let s = self.lanes[l].next;
        // Acquire (read-only mapping): as in `poll_lane`.
        load_acquire_ro(&self.mem.slot(l, s).stamp) >= committed(s)
    }

    /// Leaves the table: the writers stop gating on this entry.
    pub fn detach(self) {
        drop(self)
    }

    /// Whether the topic's last publisher has closed it.
    pub fn is_closed(&self) -> bool {
        // Acquire: see `poll_slow`.
        self.mem.header().sub_wake.state.load(Ordering::Acquire) == PUB_CLOSED
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        for l in 0..self.lanes.len() {
            if let Some(d) = &self.lanes[l].deferral {
                // Before the entry is freed: no hand-back may write it after that.
                d.retire();
            }
            self.publish_position(l);
        }
        self.own.detach(&self.mem);
    }
}
