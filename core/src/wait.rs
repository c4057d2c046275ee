//! Sleeping and waking: the announce / re-check / sleep handshake on shared futex words.
//!
//! **Subscribers** sleep on `sub_wake.futex`. A subscriber reads the futex word, announces
//! itself in `sub_wake.sleepers`, issues a SeqCst fence, re-checks its slot, and only then
//! sleeps (expecting the word it read). The publisher, after each commit, issues a SeqCst
//! fence and reads `sleepers`; only if it is non-zero does it bump the futex word and make
//! the wake system call. With the two fences in the single total order S, either the
//! subscriber's re-check sees the commit, or the publisher sees the announcement; in the
//! second case the subscriber's read of the futex word cannot have seen the bump (C++20
//! [atomics.order] p4-5), so its FUTEX_WAIT either fails with EAGAIN or is woken. No lost
//! wake-up; and with no sleepers a publish costs a fence and one load, no system call.
//!
//! **The publisher** (`Block`, ring full) sleeps on `pub_wake.futex` with the same
//! handshake against subscribers' releases (`pub_wake.waiting` is the announcement).
//!
//! The loom models in `ringcast-loom-tests` check both handshakes, and a mutant build
//! (`--cfg ringcast_loom_mutant`) that drops the fences is expected to fail them.

use std::time::{Duration, Instant};

use crate::clock::LivenessClock;
use crate::futex::{self, Wake};
use crate::memory::SegmentMemory;
use crate::sync::{fence, mutant_or, spin_hint, Ordering};

/// How a waiting subscriber (or a `Block` publisher facing a full ring) passes the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Spin forever (`pause` only, never giving the CPU away): lowest latency, burns a
    /// core. Only for a core you reserved.
    BusySpin,
    /// Spin `spins` rounds (a `pause` each), then sleep on the futex. `spins: 0` sleeps at
    /// once.
    SpinThenPark {
        /// Spin rounds before sleeping.
        spins: u32,
    },
    /// Sleep on the futex at once (same as `SpinThenPark { spins: 0 }`).
    Park,
}

impl Default for WaitStrategy {
    /// Spin about 10-50 µs, then sleep.
    fn default() -> Self {
        WaitStrategy::SpinThenPark { spins: 4096 }
    }
}

impl WaitStrategy {
    fn spins(self) -> Option<u32> {
        match self {
            WaitStrategy::BusySpin => None,
            WaitStrategy::SpinThenPark { spins } => Some(spins),
            WaitStrategy::Park => Some(0),
        }
    }
}

pub use crate::clock::LIVENESS_SLICE;

/// Something a thread can wait for: the three questions [`wait_until`] asks.
pub trait Waitable {
    /// Is the thing we wait for there? (May make progress, e.g. claim a slot.)
    fn ready(&mut self) -> bool;
    /// Is the other side still alive? Called at most once per period of the caller's
    /// [`LivenessClock`].
    fn alive(&mut self) -> bool;
    /// One announced futex sleep of at most `timeout` (see `subscriber_sleep`).
    fn sleep(&mut self, timeout: Duration) -> Wake;
    /// The longest single sleep: [`LIVENESS_SLICE`] unless the waiter runs a policy of its
    /// own between sleeps, in `ready` (a `Block` publisher's stall watch).
    fn nap(&self) -> Duration {
        LIVENESS_SLICE
    }
}

/// Spins, then sleeps, until `w.ready()`, the deadline passes, or `w.alive()` says no.
///
/// Spinning is pure `pause` (no `sched_yield`, no system call); every 4096 rounds it looks
/// at the clocks. `w.alive()`, usually a system call, runs only when the handle's
/// `liveness` clock is due, so it runs at most once per period *across calls*: a loop of
/// short waits checks as often as one long wait. No single sleep is longer than the
/// period, so a dead peer is noticed within two periods of dying (one until the check is
/// due, one sleep), and a live one costs nothing per message.
pub fn wait_until<W: Waitable>(
    strategy: WaitStrategy,
    deadline: Option<Instant>,
    liveness: &mut LivenessClock,
    w: &mut W,
) -> Result<(), Stop> {
    // This thread may hold deferred releases (a drain, batched release) that whoever we
    // wait for needs: hand them back first.
    crate::handback::hand_back();
    let slice = liveness.period().min(w.nap());
    // Runs the deadline and (rate-limited) liveness checks.
    let mut checks = |w: &mut W| -> Result<(), Stop> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Stop::TimedOut);
        }
        if liveness.due() && !w.alive() {
            return Err(Stop::Dead);
        }
        Ok(())
    };
    let mut spun: u32 = 0;
    loop {
        if w.ready() {
            return Ok(());
        }
        if strategy.spins().is_some_and(|limit| spun >= limit) {
            break;
        }
        spun = spun.wrapping_add(1);
        spin_hint();
        if spun.is_multiple_of(4096) {
            checks(w)?;
        }
    }
    loop {
        if w.ready() {
            return Ok(());
        }
        checks(w)?;
        let nap = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(slice),
            None => slice,
        };
        if let Wake::Failed(_) = w.sleep(nap) {
            // No futex (seccomp, exotic kernel): degrade to a short nap, stay correct.
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Why [`wait_until`] gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The deadline passed.
    TimedOut,
    /// The liveness check failed.
    Dead,
}

/// Publisher, after a commit: wake subscribers if any announced sleep. Returns whether
/// it made the wake system call.
#[inline]
pub(crate) fn after_commit(mem: &SegmentMemory) -> bool {
    // SeqCst: the publisher half of the subscriber sleep handshake (module docs): orders
    // the commit's stamp store before the `sleepers` load in the single total order.
    fence(mutant_or(Ordering::SeqCst, Ordering::Release));
    // Relaxed: ordered by the fence above.
    if mem.header().sub_wake.sleepers.load(Ordering::Relaxed) != 0 {
        wake_all_subscribers(mem);
        return true;
    }
    false
}

/// Bumps the subscribers' futex word and wakes them all.
#[cold]
pub(crate) fn wake_all_subscribers(mem: &SegmentMemory) {
    let w = &mem.header().sub_wake;
    // Relaxed: the handshake's ordering comes from the fences; the kernel compares the
    // word under its own lock.
    w.futex.fetch_add(1, Ordering::Relaxed);
    futex::wake_all(&w.futex);
}

/// Subscriber, after releasing a `Block` slot: wake the publisher if it waits for room.
#[inline]
pub(crate) fn after_release(mem: &SegmentMemory) {
    // SeqCst: the subscriber half of the publisher sleep handshake: orders the cursor
    // store before the `waiting` load.
    fence(mutant_or(Ordering::SeqCst, Ordering::Release));
    let w = &mem.header().pub_wake;
    // Relaxed: ordered by the fence above.
    if w.waiting.load(Ordering::Relaxed) != 0 {
        wake_publisher(mem);
    }
}

#[cold]
fn wake_publisher(mem: &SegmentMemory) {
    let w = &mem.header().pub_wake;
    // Relaxed: as in `wake_all_subscribers`.
    w.futex.fetch_add(1, Ordering::Relaxed);
    futex::wake_one(&w.futex);
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
    // Relaxed: must be read before the announcement below (program order and the fence
    // give the handshake; see the module docs).
    let seen = w.futex.load(Ordering::Relaxed);
    // Relaxed: ordered before the re-check by the caller's fence.
    w.sleepers.fetch_add(1, Ordering::Relaxed);
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

/// One announced publisher sleep of at most `timeout` (`Block`, ring full).
pub(crate) fn publisher_sleep(
    mem: &SegmentMemory,
    timeout: Option<Duration>,
    ready: impl FnOnce() -> bool,
) -> Wake {
    let seen = announce_publisher_sleep(mem);
    // SeqCst: pairs with the fence in `after_release`.
    fence(mutant_or(Ordering::SeqCst, Ordering::Relaxed));
    let r = if ready() {
        Wake::Changed
    } else {
        futex::wait(&mem.header().pub_wake.futex, seen, timeout)
    };
    withdraw_publisher_sleep(mem);
    r
}

/// The first half of [`publisher_sleep`]: reads the futex word (returned: what the sleep
/// will expect), then raises `waiting`.
pub(crate) fn announce_publisher_sleep(mem: &SegmentMemory) -> u32 {
    let w = &mem.header().pub_wake;
    // Relaxed: as in `announce_sleep`.
    let seen = w.futex.load(Ordering::Relaxed);
    // Relaxed: ordered before the re-check by the caller's fence.
    w.waiting.store(1, Ordering::Relaxed);
    seen
}

/// The second half of [`publisher_sleep`].
pub(crate) fn withdraw_publisher_sleep(mem: &SegmentMemory) {
    // Relaxed: a stale 1 only costs a subscriber one spare wake call.
    mem.header().pub_wake.waiting.store(0, Ordering::Relaxed);
}
