//! The wake handshake of the protocol: announce / re-check / sleep on shared futex words,
//! and the writer's and readers' halves after a commit or release.
//!
//! **Subscribers** sleep on `sub_wake.futex`. A subscriber reads the futex word, announces
//! itself (counts itself in `sub_wake.sleepers` and sets `sub_wake.unanswered`), issues a
//! SeqCst fence, re-checks its slot, and only then sleeps (expecting the word it read).
//! The publisher, after each commit, issues a SeqCst fence and reads `unanswered`; only if
//! it is set does it clear it, bump the futex word and make the wake system call. With the
//! two fences in the single total order S, either the subscriber's re-check sees the
//! commit, or the publisher's read sees the announcement or a later store to
//! `unanswered`. If it sees the announcement, the subscriber's read of the futex word
//! cannot have seen the bump that follows (C++20 [atomics.order] p4-5), so its FUTEX_WAIT
//! either fails with EAGAIN or is woken. A later store of 1 (another sleeper's) leaves the
//! flag raised, so the publisher wakes all the same. A later store of 0 is a clear by some
//! publisher, made after the announcement in `unanswered`'s order; that publisher bumps and
//! wakes next, and the subscriber's read cannot have seen that bump either: the clear is
//! sequenced before the bump (Release), so a read (Acquire) of the bump or of any later
//! bump (they are RMWs, in its release sequence) would order the clear before the
//! announcement.
//! So the subscriber is woken, or does not sleep. No lost wake-up; with no sleepers a
//! publish costs a fence and one load, no system call; and a subscriber woken but not yet
//! running costs no further wake call, however many commits come before it runs (the
//! count in `sleepers` stays up until then: a check of it made one call per commit).
//!
//! **A lane's publisher** (`Block`, ring full) sleeps on its lane's `pub_wake.futex` with
//! the same handshake against subscribers' releases in that lane (`pub_wake.waiting` is
//! the announcement, and a waking subscriber clears it before its Release bump, as
//! `unanswered` above: a publisher woken and not yet running costs one wake call, not
//! one per release). Every lane's publisher wakes the subscribers through the one
//! `sub_wake` line, so a subscriber sleeps on one futex however many lanes there are.
//!
//! The loom models in `ringcast-loom-tests` check both handshakes, and a mutant build
//! (`--cfg ringcast_loom_mutant`) that drops the fences is expected to fail them.

use std::time::Duration;

use crate::futex::{self, Wake};
use crate::memory::SegmentMemory;
use crate::sync::{fence, mutant_or, Ordering};

/// Publisher, after a commit: wake subscribers if any announced sleep. Returns whether
/// it made the wake system call.
#[inline]
pub(crate) fn after_commit(mem: &SegmentMemory) -> bool {
    // SeqCst: the publisher half of the subscriber sleep handshake (module docs): orders
    // the commit's stamp store before the `unanswered` load in the single total order.
    fence(mutant_or(Ordering::SeqCst, Ordering::Release));
    // Relaxed: ordered by the fence above.
    if mem.header().sub_wake.unanswered.load(Ordering::Relaxed) != 0 {
        wake_all_subscribers(mem);
        return true;
    }
    false
}

/// Bumps the subscribers' futex word and wakes them all. (A publisher killed between the
/// clear and the bump leaves its sleepers to their liveness slice: every sleep is bounded
/// by it, and the flag cannot be cleared after the bump instead, which could erase a newer
/// announcement.)
#[cold]
pub(crate) fn wake_all_subscribers(mem: &SegmentMemory) {
    let w = &mem.header().sub_wake;
    // Relaxed: ordered before the bump by its Release (the argument in the module docs).
    w.unanswered.store(0, Ordering::Relaxed);
    // Release: a sleeper whose read of the word (Acquire, `announce_sleep`) sees this bump
    // or a later one also sees the clear above before its announcement, so the clear never
    // erases an announcement this bump does not answer. The kernel compares the word under
    // its own lock.
    w.futex.fetch_add(1, Ordering::Release);
    futex::wake_all(&w.futex);
}

/// Subscriber, after releasing a `Block` slot: wake the publisher if it waits for room.
#[inline]
pub(crate) fn after_release(mem: &SegmentMemory, lane: usize) {
    // SeqCst: the subscriber half of the publisher sleep handshake: orders the cursor
    // store before the `waiting` load.
    fence(mutant_or(Ordering::SeqCst, Ordering::Release));
    let w = &mem.lane(lane).pub_wake;
    // Relaxed: ordered by the fence above.
    if w.waiting.load(Ordering::Relaxed) != 0 {
        wake_publisher(mem, lane);
    }
}

#[cold]
fn wake_publisher(mem: &SegmentMemory, lane: usize) {
    let w = &mem.lane(lane).pub_wake;
    // Relaxed: ordered before the bump by its Release, as in `wake_all_subscribers`.
    w.waiting.store(0, Ordering::Relaxed);
    // Release: pairs with the Acquire read in `announce_publisher_sleep`, as in
    // `wake_all_subscribers`.
    w.futex.fetch_add(1, Ordering::Release);
    // All: the announcement is cleared for every sleeper on the word, and there can be two
    // (the publisher's thread in a wait for room and a reactor armed for the same handle,
    // as the bridge's backlog does); one left asleep would hear of no later release.
    futex::wake_all(&w.futex);
}

/// One announced sleep of the subscriber owning table entry `entry`, of at most
/// `timeout`: read the futex word, announce, fence, re-check with `ready`, sleep only if
/// still not ready. The entry's `asleep` flag mirrors the announcement so that a
/// subscriber killed in its sleep can be un-counted by whoever frees its entry
/// (`entry::uncount_dead_sleeper`).
pub(crate) fn subscriber_sleep(
    mem: &SegmentMemory,
    entry: usize,
    timeout: Option<Duration>,
    ready: impl FnOnce() -> bool,
) -> Wake {
    let w = &mem.header().sub_wake;
    let seen = announce_sleep(mem, entry);
    // SeqCst: the subscriber half of the handshake; pairs with the fence in `after_commit`.
    fence(mutant_or(Ordering::SeqCst, Ordering::Relaxed));
    let r = if ready() {
        Wake::Changed
    } else {
        futex::wait(&w.futex, seen, timeout)
    };
    withdraw_sleep(mem, entry);
    r
}

/// The first half of [`subscriber_sleep`]: reads the futex word (returned: what the sleep
/// will expect), counts us in `sleepers`, then sets our entry's `asleep` flag (in that
/// order: the flag never claims a count that is not there).
pub(crate) fn announce_sleep(mem: &SegmentMemory, entry: usize) -> u32 {
    let w = &mem.header().sub_wake;
    // Acquire: pairs with the Release bump in `wake_all_subscribers` (a clear made before
    // the bump we read is ordered before our announcement; see the module docs).
    let seen = w.futex.load(Ordering::Acquire);
    // Relaxed: ordered before the re-check by the caller's fence.
    w.sleepers.fetch_add(1, Ordering::Relaxed);
    // Relaxed: ordered before the re-check by the caller's fence; a publisher that sees it
    // wakes (the mutant build `--cfg ringcast_loom_mutant_unanswered` leaves it out, and
    // the wake models must see a subscriber sleep for ever).
    #[cfg(not(ringcast_loom_mutant_unanswered))]
    w.unanswered.store(1, Ordering::Relaxed);
    // Relaxed: read only by whoever frees the entry after we died, under the entry's lock,
    // which orders it (a system call on both sides; a model lock under loom).
    mem.entry(entry).asleep.store(1, Ordering::Relaxed);
    seen
}

/// The second half of [`subscriber_sleep`]: takes back what [`announce_sleep`] counted,
/// flag first (so the flag never claims a count that is already gone).
pub(crate) fn withdraw_sleep(mem: &SegmentMemory, entry: usize) {
    // Relaxed: as for the store of 1 in `announce_sleep`.
    mem.entry(entry).asleep.store(0, Ordering::Relaxed);
    // Relaxed: a stale non-zero count only costs the publisher one spare wake call.
    mem.header()
        .sub_wake
        .sleepers
        .fetch_sub(1, Ordering::Relaxed);
}

/// One announced sleep of lane `lane`'s publisher of at most `timeout` (`Block`, ring
/// full).
pub(crate) fn publisher_sleep(
    mem: &SegmentMemory,
    lane: usize,
    timeout: Option<Duration>,
    ready: impl FnOnce() -> bool,
) -> Wake {
    let seen = announce_publisher_sleep(mem, lane);
    // SeqCst: pairs with the fence in `after_release`.
    fence(mutant_or(Ordering::SeqCst, Ordering::Relaxed));
    let r = if ready() {
        Wake::Changed
    } else {
        futex::wait(&mem.lane(lane).pub_wake.futex, seen, timeout)
    };
    withdraw_publisher_sleep(mem, lane);
    r
}

/// The first half of [`publisher_sleep`]: reads the futex word (returned: what the sleep
/// will expect), then raises `waiting`.
pub(crate) fn announce_publisher_sleep(mem: &SegmentMemory, lane: usize) -> u32 {
    let w = &mem.lane(lane).pub_wake;
    // Acquire: as in `announce_sleep` (pairs with the Release bump in `wake_publisher`).
    let seen = w.futex.load(Ordering::Acquire);
    // Relaxed: ordered before the re-check by the caller's fence.
    w.waiting.store(1, Ordering::Relaxed);
    seen
}

/// The second half of [`publisher_sleep`].
pub(crate) fn withdraw_publisher_sleep(mem: &SegmentMemory, lane: usize) {
    // Relaxed: a stale 1 only costs a subscriber one spare wake call.
    mem.lane(lane).pub_wake.waiting.store(0, Ordering::Relaxed);
}
