//! The subscriber-table entry lifecycle, in one place: **claim** (by lock), **attach**
//! (publish a cursor the writer cannot overrun), **hold** / **release** (in-place reads
//! under `Block`), **evict** (the writer gives up on a stalled reader), **reap** (the
//! writer frees the entry of a dead owner) and **detach**.
//!
//! ```text
//!            claim (lock)        attach            hold (CAS)
//!   Free ───────────────► owned ───────► Active ◄──────────────► Holding
//!    ▲                                     │ evict (writer CAS)      (release: store)
//!    │ detach / reap (store Free)          ▼
//!    └──────────────────────────────── Evicted
//! ```
//!
//! Ownership of an entry is a lock, never a word in shared memory: an OFD lock on byte
//! `1 + i` of the segment file in a process ([`crate::lock`]), a model lock under loom.
//! The kernel drops a dead owner's lock, which is how the writer (or the next claimer)
//! knows the entry's owner is dead, whatever PID it had. The `state` word says what the
//! owner is doing; it carries the attach generation so that a CAS aimed at one owner can
//! never hit the next (see [`crate::layout::entry_word`]).
//!
//! Whoever frees a dead owner's entry holds the entry's lock while doing so, so a reaper
//! and a new claimer never both act on one dead owner: one takes the lock first, and the
//! other finds the entry either live (locked) or already free. Either takes back the
//! sleeper count the owner left behind if it died asleep ([`uncount_dead_sleeper`]),
//! also from an entry already free: a process's async reactor may be announced in the
//! entry of a subscriber that has detached, under the claim (lock) the process holds
//! until the reactor withdraws (`crate::reactor`).

use crate::layout::{
    entry_gates, entry_kind, entry_with_kind, entry_word, EntryKind, Overflow, ENTRY_FREE,
    ROLE_MONITOR, ROLE_SUBSCRIBER,
};
use crate::memory::SegmentMemory;
use crate::sync::{fence, mutant_or, Ordering};

/// How a reader takes part in the topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Role {
    /// An ordinary subscriber: under `Block` the publisher waits for it, and it reads in
    /// place.
    #[default]
    Subscriber,
    /// A monitor (for diagnostic tools): never gates the publisher, whatever the topic's
    /// policy; reads every message by verified copy, and what the publisher laps is lost
    /// and counted exactly, as under `Overwrite`. Cannot freeze a `Block` pipeline, even
    /// when it is stopped.
    Monitor,
}

/// Who owns which table entry: the segment file's OFD locks in a process, a table of
/// model locks under loom. `try_lock_dead` succeeds only if nobody (alive) owns entry `i`.
pub(crate) trait EntryLocks {
    /// Takes entry `i`'s lock if no live owner holds it.
    fn try_lock_dead(&self, i: usize) -> bool;
    /// Releases entry `i`'s lock taken with `try_lock_dead`.
    fn unlock(&self, i: usize);
}

/// A subscriber's own entry: which one, the `Active` word of this attach, and whether it
/// says `Holding` now. Only the owner writes through it.
pub(crate) struct OwnEntry {
    /// Table index (we hold its lock for our whole life).
    pub(crate) index: usize,
    /// Our `Active` word (the attach generation is in it).
    active_word: u32,
    /// The topic has a stall timeout: in-place reads are marked `Holding`.
    evictable: bool,
    /// Whether our entry says `Holding` now.
    holding: bool,
    /// A monitor: attached non-gating, reads by copy; its cursor is informational.
    monitor: bool,
}

impl OwnEntry {
    /// Attaches through entry `index`, which the caller has exclusively claimed, starting
    /// at the cursor `pick` makes of the writer's cursor; returns the entry and the first
    /// sequence to read.
    ///
    /// Under `Block` this is a Dekker handshake with [`refresh_limit`]'s rescan: we store a
    /// tentative cursor, SeqCst fence, read the writer's published `gate_limit`; the writer
    /// stores `gate_limit`, SeqCst fence, re-scans the table. Either the writer sees our
    /// entry, or we see the limit and start past everything it may still overwrite without
    /// looking again.
    ///
    /// A [`Role::Monitor`] needs none of this: it attaches in the non-gating `Evicted`
    /// state (with [`ROLE_MONITOR`] for `inspect`) and the writer never looks at its cursor.
    pub(crate) fn attach(
        mem: &SegmentMemory,
        index: usize,
        role: Role,
        pick: impl Fn(u64) -> u64,
    ) -> (OwnEntry, Box<[u64]>) {
        let g = mem.geometry();
        let n = g.slot_count;
        let lanes = g.max_publishers as usize;
        let e = mem.entry(index);
        // Acquire: pairs with the Release cursor store in `Writer::commit`.
        let tentative: Box<[u64]> = (0..lanes)
            .map(|l| pick(mem.lane(l).publisher.write_cursor.load(Ordering::Acquire)))
            .collect();
        // A predecessor that died asleep left its sleeper count behind: take it back (we
        // own the entry now, so nobody else touches its flag).
        uncount_dead_sleeper(mem, index);
        for (l, &t) in tentative.iter().enumerate() {
            let c = mem.cursor(index, l);
            // Relaxed: published by the Release store of the Active word just below.
            c.cursor.store(t, Ordering::Relaxed);
            c.lost.store(0, Ordering::Relaxed);
        }
        e.pid.store(std::process::id(), Ordering::Relaxed);
        // Relaxed: only we write it while we own the entry; published by the store below.
        let generation = e.generation.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let active_word = entry_word(generation, EntryKind::Active);
        // The negative control attaches a monitor as a gating subscriber: the loom model
        // `monitor_on_a_block_topic_never_gates_and_counts_every_lap` must deadlock.
        if role == Role::Monitor && !cfg!(ringcast_loom_mutant_monitor) {
            // Relaxed: for `inspect` only; published by the Release store below.
            e.role.store(ROLE_MONITOR, Ordering::Relaxed);
            // Release: an observer that sees the word sees the cursors and role. Pairs with
            // the Acquire state loads of `inspect`; writers skip this word (not gating).
            e.state.store(
                entry_word(generation, EntryKind::Evicted),
                Ordering::Release,
            );
            let own = OwnEntry {
                index,
                active_word,
                evictable: false,
                holding: false,
                monitor: true,
            };
            return (own, tentative);
        }
        // Relaxed: published by the Release store of the Active word just below.
        e.role.store(ROLE_SUBSCRIBER, Ordering::Relaxed);
        // Release: a writer that sees the Active word sees the tentative cursors. Pairs
        // with the Acquire state load in `slowest_cursor`.
        e.state.store(active_word, Ordering::Release);
        // SeqCst: the attach half of the Dekker handshake with every lane's
        // `refresh_limit` (one fence serves all lanes: each lane's writer fences too).
        fence(mutant_or(Ordering::SeqCst, Ordering::Relaxed));
        let mut next = tentative;
        for (l, start) in next.iter_mut().enumerate() {
            let lane = &mem.lane(l).publisher;
            // Acquire: as above; a later cursor only moves the start forward.
            *start = pick(lane.write_cursor.load(Ordering::Acquire)).max(*start);
            if g.overflow == Overflow::Block {
                // Relaxed: ordered by the fence above (see `refresh_limit`).
                let limit = lane.gate_limit.load(Ordering::Relaxed);
                // The lane's writer may overwrite anything below `limit + 1 - n` without
                // rescanning.
                *start = (*start).max(limit.saturating_add(1).saturating_sub(n));
            }
            // Release: as for every cursor store, pairs with the Acquire cursor load in
            // `slowest_cursor`.
            mem.cursor(index, l).cursor.store(*start, Ordering::Release);
            if g.overflow == Overflow::Block {
                // The lane's writer may have gated on our tentative cursor and gone to
                // sleep; moving the cursor forward is a release like any other and must
                // wake it. (Found by the loom model
                // `block_attach_and_detach_race_with_publishing`: without this, writer and
                // newcomer each wait for the other.)
                crate::protocol::wake::after_release(mem, l);
            }
        }
        let own = OwnEntry {
            index,
            active_word,
            evictable: g.overflow == Overflow::Block && g.evicts_stalled(),
            holding: false,
            monitor: false,
        };
        (own, next)
    }

    /// `Block`: marks the in-place read of the slot at our cursor (`Active` → `Holding`),
    /// unless the writer evicted us first. Free on topics without a stall timeout.
    #[inline]
    pub(crate) fn hold(&mut self, mem: &SegmentMemory) -> bool {
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
        // the slot's contents are ordered by the Acquire stamp load in `Reader::poll`, and
        // a lost race tells us only to stop.
        match mem.entry(self.index).state.compare_exchange(
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

    /// Publishes `cursor` in lane `lane` (everything below it is released) and ends a
    /// hold.
    #[inline]
    pub(crate) fn release(&mut self, mem: &SegmentMemory, lane: usize, cursor: u64) {
        // Release: our reads of the slot happen before the writer's overwrite. Pairs with
        // the Acquire cursor load in `slowest_cursor`.
        mem.cursor(self.index, lane)
            .cursor
            .store(cursor, mutant_or(Ordering::Release, Ordering::Relaxed));
        self.end_hold(mem);
    }

    /// Ends a hold (`Holding` → `Active`) without publishing a cursor: alone, a deferred
    /// release (the writer keeps gating on the cursor last stored, below this slot).
    #[inline]
    pub(crate) fn end_hold(&mut self, mem: &SegmentMemory) {
        if self.holding {
            self.holding = false;
            // Release: the slot reads are done before a writer that sees Active (and
            // evicts us by CAS, with Acquire) overwrites anything. While we hold, only we
            // write this word (the writer's CAS expects Active), so a plain store is exact.
            mem.entry(self.index)
                .state
                .store(self.active_word, Ordering::Release);
        }
    }

    /// Whether the writer evicted us.
    pub(crate) fn is_evicted(&self, mem: &SegmentMemory) -> bool {
        // Relaxed: a status check; `hold` is what enforces the exclusion.
        let word = mem.entry(self.index).state.load(Ordering::Relaxed);
        self.evictable && entry_kind(word) == EntryKind::Evicted
    }

    /// Publishes our position and loss count for `inspect` (Relaxed: informational; under
    /// `Block` the cursor moves only in `release`).
    pub(crate) fn publish_position(&self, mem: &SegmentMemory, lane: usize, next: u64, lost: u64) {
        let c = mem.cursor(self.index, lane);
        if self.monitor || mem.geometry().overflow == Overflow::Overwrite {
            c.cursor.store(next, Ordering::Relaxed);
        }
        c.lost.store(lost, Ordering::Relaxed);
    }

    /// Leaves the table: the writer stops gating on this entry. (The caller then drops the
    /// entry's lock, and never uses this entry again.)
    pub(crate) fn detach(&self, mem: &SegmentMemory) {
        // Release: everything we read happens before the writer reuses the slots we held.
        mem.entry(self.index)
            .state
            .store(ENTRY_FREE, Ordering::Release);
        if !self.monitor && mem.geometry().overflow == Overflow::Block {
            for l in 0..mem.geometry().max_publishers as usize {
                crate::protocol::wake::after_release(mem, l);
            }
        }
    }
}

/// The smallest cursor in lane `lane` of any gating entry, capped at `cap`. (The lane
/// writer's rescan.)
pub(crate) fn slowest_cursor(mem: &SegmentMemory, lane: usize, cap: u64) -> u64 {
    let mut min = cap;
    for i in 0..mem.geometry().max_subscribers as usize {
        let e = mem.entry(i);
        // Acquire: pairs with the Release store of the Active word in `OwnEntry::attach`,
        // so the cursor we load next is at least the attach's tentative one.
        if entry_gates(e.state.load(Ordering::Acquire)) {
            // Acquire: pairs with the Release cursor store in `OwnEntry::release`: the
            // reader's in-place reads of older slots happen before we overwrite them.
            min = min.min(mem.cursor(i, lane).cursor.load(Ordering::Acquire));
        }
    }
    min
}

/// Calls `f(entry, state word, cursor)` for each gating entry whose cursor in lane `lane`
/// is a whole ring behind `next` (it keeps `next` from being claimed).
pub(crate) fn for_each_blocker(
    mem: &SegmentMemory,
    lane: usize,
    next: u64,
    mut f: impl FnMut(usize, u32, u64),
) {
    let slots = mem.geometry().slot_count;
    for i in 0..mem.geometry().max_subscribers as usize {
        let e = mem.entry(i);
        // Acquire: as in `slowest_cursor`.
        let word = e.state.load(Ordering::Acquire);
        if !entry_gates(word) {
            continue;
        }
        // Acquire: as in `slowest_cursor`.
        let cursor = mem.cursor(i, lane).cursor.load(Ordering::Acquire);
        if cursor.saturating_add(slots) <= next {
            f(i, word, cursor);
        }
    }
}

/// Evicts the owner of `entry` if its state is still exactly `seen` and `Active` (not
/// reading in place). Returns whether it was evicted.
pub(crate) fn evict(mem: &SegmentMemory, entry: usize, seen: u32) -> bool {
    if !mem.geometry().evicts_stalled() || entry_kind(seen) != EntryKind::Active {
        return false;
    }
    let evicted = entry_with_kind(seen, EntryKind::Evicted);
    // Acquire on success: pairs with the Release store of the Active word in
    // `OwnEntry::release` (and attach): the reader's in-place reads happen before any
    // overwrite we do after giving up on it. Relaxed on failure: we learn only that it is
    // holding, released, left or was replaced, and do nothing.
    mem.entry(entry)
        .state
        .compare_exchange(seen, evicted, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

/// What `reap_dead` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Entries of dead owners freed.
    pub freed: usize,
    /// Of those, owners that died counted asleep (their count was taken back).
    pub asleep: usize,
}

/// The writer's reaper: frees the entries of owners that died without detaching, so a
/// `Block` ring never stalls on the dead, taking back the sleeper count of any that died
/// asleep. Holds each entry's lock while it frees it, so a new subscriber cannot claim it
/// half-way (and never both of us un-count one death).
pub(crate) fn reap_dead(mem: &SegmentMemory, locks: &impl EntryLocks) -> Reaped {
    let mut reaped = Reaped::default();
    for i in 0..mem.geometry().max_subscribers as usize {
        let e = mem.entry(i);
        // Relaxed (both): only a hint that skips free entries nobody is announced asleep
        // in; the lock below decides. (A free entry can carry a sleep: a process's async
        // reactor may still be announced in the entry of a subscriber that detached, its
        // claim on the entry held until it withdraws; if the process dies first, the
        // count is left behind in a free entry whose lock is free.)
        if entry_kind(e.state.load(Ordering::Relaxed)) == EntryKind::Free
            && e.asleep.load(Ordering::Relaxed) == 0
        {
            continue;
        }
        // The negative control frees without the lock: the loom model
        // `a_dead_sleeper_is_reaped_once_and_the_entrys_new_owner_is_never_disturbed` must catch the double count.
        let locked = locks.try_lock_dead(i);
        if !locked && !cfg!(ringcast_loom_mutant) {
            continue;
        }
        if uncount_dead_sleeper(mem, i) {
            reaped.asleep += 1;
        }
        // Relaxed: the owner is dead; whoever claims the entry next does so through its
        // lock, which orders this store before its claim.
        e.state.store(ENTRY_FREE, Ordering::Relaxed);
        if locked {
            locks.unlock(i);
        }
        reaped.freed += 1;
    }
    reaped
}

/// Takes back the sleeper count of table entry `entry`, whose owner died while counted.
/// Call only while holding the entry's lock after its owner's death (nobody else writes
/// the entry then). Returns whether there was a count to take back.
pub(crate) fn uncount_dead_sleeper(mem: &SegmentMemory, entry: usize) -> bool {
    let e = mem.entry(entry);
    // Relaxed: the owner is dead and its last stores are ordered before our lock.
    if e.asleep.swap(0, Ordering::Relaxed) == 0 {
        return false;
    }
    // Relaxed: as in `wait::subscriber_sleep`; the flag said this count is the dead
    // owner's.
    mem.header()
        .sub_wake
        .sleepers
        .fetch_sub(1, Ordering::Relaxed);
    true
}

/// Live subscribers in the table now (gating entries; a snapshot).
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn count_attached(mem: &SegmentMemory) -> usize {
    (0..mem.geometry().max_subscribers as usize)
        // Relaxed: a snapshot count; nothing is published through it.
        .filter(|&i| entry_gates(mem.entry(i).state.load(Ordering::Relaxed)))
        .count()
}

/// The model's stand-ins for the kernel's entry locks (loom builds).
#[cfg(loom)]
impl EntryLocks for SegmentMemory {
    fn try_lock_dead(&self, i: usize) -> bool {
        self.model_lock(i)
    }
    fn unlock(&self, i: usize) {
        self.model_unlock(i)
    }
}
