//! Time for the waiting and liveness code: a per-handle liveness clock and deadlines that
//! saturate.
//!
//! A liveness check (is the publisher, or a subscriber we wait for, still alive?) is a
//! system call (`fcntl(F_OFD_GETLK)`), so it is rate-limited to once per slice. The clock
//! that rate-limits it belongs to the *handle* (the `Publisher`, the `Subscriber`), not to
//! one call: a `try_recv` poller at any rate, a loop of `recv_timeout`s shorter than the
//! slice, or one long blocking call all run the check once the handle's slice has passed,
//! so each learns of a dead peer within the same bound (see [`LIVENESS_SLICE`]).
//!
//! The clock reads `CLOCK_MONOTONIC_COARSE` (a vDSO read of the kernel's tick counter,
//! about 4 ns here, against about 25 ns for `Instant::now()`), so an empty `try_recv`
//! looks at it on every call. (Reading it only every so many calls would be cheaper, but
//! no count of calls says how much time passed: a poller that spins, then backs off to one
//! call a second, would go minutes without a check.) Its resolution is one kernel tick (1 to 10 ms),
//! which only widens the slice by that much.

use std::time::{Duration, Instant};

/// Longest single futex sleep, and the period of liveness checks: a dead peer is noticed
/// at most two slices (100 ms) after it died by a blocking call, and at most one slice plus
/// the caller's own period between calls by a polling loop.
pub const LIVENESS_SLICE: Duration = Duration::from_millis(50);

/// Nanoseconds of `CLOCK_MONOTONIC_COARSE`.
#[inline]
fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE exists on every
    // Linux since 2.6.32, and clock_gettime writes nothing else.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if r != 0 {
        // Cannot happen with a valid clock id; fall back to the precise clock's origin-free
        // reading so that the caller still makes progress.
        return fallback_ns();
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

#[cold]
fn fallback_ns() -> u64 {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A rate limiter for a handle's liveness checks: [`due`](Self::due) says yes at most once
/// per period, counted from the last yes (or from the clock's creation).
#[derive(Clone, Debug)]
pub struct LivenessClock {
    /// Coarse-clock nanoseconds of the last check (or of creation).
    last_ns: u64,
    period_ns: u64,
}

impl LivenessClock {
    /// A clock that is due once every `period` (at least 1 ms), first one period from now.
    pub fn new(period: Duration) -> Self {
        LivenessClock {
            last_ns: coarse_now_ns(),
            period_ns: period.as_nanos().clamp(1_000_000, u64::MAX as u128) as u64,
        }
    }

    /// The period.
    pub fn period(&self) -> Duration {
        Duration::from_nanos(self.period_ns)
    }

    /// Whether a check is due now; if it is, the clock starts a new period (the caller runs
    /// the check). Costs one coarse clock read (no system call).
    #[inline]
    pub fn due(&mut self) -> bool {
        let now = coarse_now_ns();
        if now.saturating_sub(self.last_ns) >= self.period_ns {
            self.last_ns = now;
            return true;
        }
        false
    }
}

impl Default for LivenessClock {
    /// A clock with the [`LIVENESS_SLICE`] period.
    fn default() -> Self {
        LivenessClock::new(LIVENESS_SLICE)
    }
}

/// The deadline `timeout` from now, or `None` (no deadline) if it cannot be represented:
/// `Duration::MAX` means "wait for ever", never an overflow panic.
///
/// ```
/// use ringcast_core::clock::deadline_after;
/// use std::time::Duration;
/// assert!(deadline_after(Duration::MAX).is_none());
/// assert!(deadline_after(Duration::from_millis(5)).is_some());
/// ```
pub fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_clock_is_due_once_per_period_and_not_before() {
        let mut c = LivenessClock::new(Duration::from_millis(20));
        assert!(!c.due(), "due at once after creation");
        std::thread::sleep(Duration::from_millis(35));
        assert!(c.due(), "not due after more than a period");
        assert!(!c.due(), "due twice in one period");
    }

    #[test]
    fn huge_timeouts_mean_no_deadline() {
        assert!(deadline_after(Duration::MAX).is_none());
        assert!(deadline_after(Duration::from_secs(u64::MAX)).is_none());
        assert!(deadline_after(Duration::ZERO).is_some());
    }
}
