//! Waiting strategies: how a thread passes the time until a handle is ready ([`wait_until`]:
//! spin, then sleep through the handshake of [`crate::protocol::wake`], with deadlines and
//! rate-limited liveness checks), and what a waiter must answer ([`Waitable`]).

use std::time::{Duration, Instant};

use crate::clock::LivenessClock;
use crate::futex::Wake;
use crate::sync::spin_hint;

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
