//! Shared futex wait and wake: three functions, in the shape of `atomic-wait`, but with
//! *shared* futexes (the word lives in a `MAP_SHARED` segment that other processes map at
//! other addresses, so the kernel must key it by file and offset, not by address space) and
//! with every errno handled.
//!
//! [`wait`] may return spuriously; every caller loops and re-checks its condition. Under
//! loom the futex is modelled by one "hash bucket" mutex and condition variable: the value
//! check and the sleep are atomic with respect to wakes, as in the kernel.

use std::time::Duration;

use crate::sync::AtomicU32;
#[cfg(not(loom))]
use crate::sync::Ordering;

/// Why [`wait`] returned. Callers treat all of them alike: re-check, maybe wait again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Woken by [`wake_one`]/[`wake_all`] (or spuriously).
    Woken,
    /// The word no longer held `expected` when the kernel looked (EAGAIN).
    Changed,
    /// The timeout passed.
    TimedOut,
    /// A signal interrupted the sleep (EINTR).
    Interrupted,
    /// The futex call failed with another errno (e.g. ENOSYS under a seccomp filter); the
    /// caller falls back to sleeping for a short while.
    Failed(i32),
}

#[cfg(not(loom))]
static WAKE_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
#[cfg(not(loom))]
static WAIT_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many wait system calls this process has made (a diagnostic and test hook).
pub fn wait_calls() -> u64 {
    #[cfg(not(loom))]
    return WAIT_CALLS.load(Ordering::Relaxed);
    #[cfg(loom)]
    return 0;
}

/// How many wake system calls this process has made. A diagnostic and test hook: the
/// publisher's fast path must leave it unchanged when nobody sleeps.
pub fn wake_calls() -> u64 {
    #[cfg(not(loom))]
    return WAKE_CALLS.load(Ordering::Relaxed);
    #[cfg(loom)]
    return 0;
}

/// Sleeps while `*word == expected`, at most `timeout` (forever if `None`).
#[cfg(not(loom))]
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Wake {
    WAIT_CALLS.fetch_add(1, Ordering::Relaxed);
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, 4-byte aligned u32 for the duration of the call; the
    // timespec pointer is null or points to a local that outlives the call. FUTEX_WAIT
    // (without FUTEX_PRIVATE_FLAG) only reads the word. The timeout is relative.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if r == 0 {
        return Wake::Woken;
    }
    match std::io::Error::last_os_error().raw_os_error().unwrap_or(0) {
        libc::EAGAIN => Wake::Changed,
        libc::ETIMEDOUT => Wake::TimedOut,
        libc::EINTR => Wake::Interrupted,
        e => Wake::Failed(e),
    }
}

#[cfg(not(loom))]
fn wake(word: &AtomicU32, n: i32) -> usize {
    WAKE_CALLS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: `word` is a live aligned u32; FUTEX_WAKE does not access memory through the
    // pointer beyond using it as a key.
    let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n) };
    // FUTEX_WAKE fails only with EFAULT/EINVAL for a bad address, which a live `&AtomicU32`
    // rules out; report no one woken rather than panic.
    r.max(0) as usize
}

/// Wakes at most one sleeper on `word`; returns how many were woken.
#[cfg(not(loom))]
pub fn wake_one(word: &AtomicU32) -> usize {
    wake(word, 1)
}

/// Wakes every sleeper on `word`; returns how many were woken.
#[cfg(not(loom))]
pub fn wake_all(word: &AtomicU32) -> usize {
    wake(word, i32::MAX)
}

#[cfg(loom)]
mod model {
    use super::*;
    use crate::sync::Ordering;
    use loom::sync::{Condvar, Mutex};

    loom::lazy_static! {
        /// The model kernel's one futex hash bucket.
        static ref BUCKET: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    /// Model of FUTEX_WAIT: the value check and the sleep are atomic with respect to a
    /// wake, because both hold the bucket lock. A timed wait is modelled as one that may
    /// return at once: loom explores both the woken and the timed-out outcome.
    pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Wake {
        let guard = BUCKET.0.lock().unwrap();
        // SeqCst: the kernel's check is a full barrier (and the value is compared under
        // the bucket lock, which orders it against wakes).
        if word.load(Ordering::SeqCst) != expected {
            return Wake::Changed;
        }
        if timeout.is_some() {
            drop(guard);
            return Wake::TimedOut;
        }
        drop(BUCKET.1.wait(guard).unwrap());
        Wake::Woken
    }

    /// Model of FUTEX_WAKE for one sleeper (may wake more: callers tolerate spurious wakes).
    pub fn wake_one(_word: &AtomicU32) -> usize {
        wake_all(_word)
    }

    /// Model of FUTEX_WAKE for all sleepers.
    pub fn wake_all(_word: &AtomicU32) -> usize {
        let _guard = BUCKET.0.lock().unwrap();
        BUCKET.1.notify_all();
        1
    }
}

#[cfg(loom)]
pub use model::{wait, wake_all, wake_one};
