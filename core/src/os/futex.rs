//! Shared futex wait and wake: three functions (and [`wait_any`], `futex_waitv` over up to
//! 128 words, for waiting on many topics at once), in the shape of `atomic-wait`, but with
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
    // Relaxed: a diagnostic counter; nothing is published through it.
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
    // Relaxed: a diagnostic counter; nothing is published through it.
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

/// Most words one [`wait_any`] call takes (the kernel's `FUTEX_WAITV_MAX`).
pub const MAX_WAIT_WORDS: usize = 128;

/// One word of a [`wait_any`]: sleep while `*word == expected`. Every word is waited on
/// as a *shared* futex, like [`wait`], so [`wake_one`] / [`wake_all`] reach it from any
/// process (a word in private memory works too).
#[derive(Clone, Copy, Debug)]
pub struct WaitWord<'a> {
    /// The futex word.
    pub word: &'a AtomicU32,
    /// The value it must still hold for the sleep to begin.
    pub expected: u32,
}

/// Why [`wait_any`] returned. As with [`wait`], callers re-check everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeAny {
    /// Woken through word `i` (or spuriously), when the kernel says which.
    Woken(Option<usize>),
    /// Some word no longer held its expected value when the kernel looked (EAGAIN).
    Changed,
    /// The timeout passed.
    TimedOut,
    /// A signal interrupted the sleep.
    Interrupted,
    /// This kernel (or a seccomp filter) has no `futex_waitv` (ENOSYS, Linux < 5.16): the
    /// caller falls back to another way of waiting.
    Unsupported,
    /// Another errno (including more than [`MAX_WAIT_WORDS`] words: EINVAL).
    Failed(i32),
}

/// The kernel's `struct futex_waitv` (include/uapi/linux/futex.h): 24 bytes.
#[cfg(not(loom))]
#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// Sleeps until any of `words` no longer holds its expected value and is woken, or
/// `timeout` passes (`None`: no timeout): `futex_waitv(2)`, Linux 5.16+. The value checks
/// and the sleep are atomic with respect to [`wake_one`] / [`wake_all`] on any of the
/// words, exactly as for [`wait`], so the announce / fence / re-check handshake carries
/// over word by word. May return spuriously.
#[cfg(not(loom))]
pub fn wait_any(words: &[WaitWord<'_>], timeout: Option<Duration>) -> WakeAny {
    if words.len() > MAX_WAIT_WORDS {
        return WakeAny::Failed(libc::EINVAL);
    }
    // Relaxed: as in `wait`.
    WAIT_CALLS.fetch_add(1, Ordering::Relaxed);
    let mut waiters = [const {
        FutexWaitv {
            val: 0,
            uaddr: 0,
            flags: 0,
            reserved: 0,
        }
    }; MAX_WAIT_WORDS];
    for (w, word) in waiters.iter_mut().zip(words) {
        w.val = u64::from(word.expected);
        w.uaddr = word.word.as_ptr() as u64;
        // Shared (no FUTEX2_PRIVATE): keyed by file and offset, as the wakes expect.
        w.flags = libc::FUTEX2_SIZE_U32 as u32;
    }
    // futex_waitv's timeout is absolute, on the clock named by the last argument.
    let deadline = timeout.and_then(|d| {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid timespec to fill; CLOCK_MONOTONIC always exists.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        let nanos = (now.tv_nsec as u128).checked_add(d.subsec_nanos() as u128)?;
        let secs = (now.tv_sec as u64)
            .checked_add(d.as_secs())?
            .checked_add((nanos / 1_000_000_000) as u64)?;
        Some(libc::timespec {
            tv_sec: secs.min(i64::MAX as u64) as libc::time_t,
            tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
        })
    });
    let ts_ptr = deadline
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `waiters` holds `words.len()` initialized entries whose addresses are live,
    // 4-byte aligned u32s for the duration of the call (borrowed from `words`); the
    // timespec pointer is null or points to a local that outlives the call. futex_waitv
    // only reads the words.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            waiters.as_ptr(),
            words.len() as libc::c_uint,
            0 as libc::c_uint,
            ts_ptr,
            libc::CLOCK_MONOTONIC,
        )
    };
    if r >= 0 {
        return WakeAny::Woken(Some(r as usize).filter(|&i| i < words.len()));
    }
    match std::io::Error::last_os_error().raw_os_error().unwrap_or(0) {
        libc::EAGAIN => WakeAny::Changed,
        libc::ETIMEDOUT => WakeAny::TimedOut,
        libc::EINTR => WakeAny::Interrupted,
        libc::ENOSYS => WakeAny::Unsupported,
        e => WakeAny::Failed(e),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    fn word(w: &AtomicU32) -> WaitWord<'_> {
        WaitWord {
            word: w,
            expected: w.load(Ordering::Relaxed),
        }
    }

    #[test]
    fn wait_any_returns_at_once_when_a_word_already_changed() {
        let (a, b) = (AtomicU32::new(1), AtomicU32::new(2));
        let mut words = [word(&a), word(&b)];
        words[1].expected = 3;
        let r = wait_any(&words, Some(Duration::from_secs(5)));
        assert!(
            matches!(r, WakeAny::Changed | WakeAny::Unsupported),
            "{r:?}"
        );
    }

    #[test]
    fn wait_any_times_out_when_nothing_happens() {
        let a = AtomicU32::new(0);
        let started = Instant::now();
        let r = wait_any(&[word(&a)], Some(Duration::from_millis(30)));
        if r == WakeAny::Unsupported {
            return;
        }
        assert_eq!(r, WakeAny::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(25));
    }

    #[test]
    fn wait_any_is_woken_through_whichever_word_is_rung() {
        for ring in 0..3 {
            let words: Arc<[AtomicU32; 3]> = Arc::new(std::array::from_fn(|_| AtomicU32::new(0)));
            let w = words.clone();
            let waker = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                w[ring].fetch_add(1, Ordering::Relaxed);
                wake_all(&w[ring]);
            });
            let list: Vec<WaitWord<'_>> = words.iter().map(word).collect();
            let r = loop {
                match wait_any(&list, Some(Duration::from_secs(10))) {
                    WakeAny::Interrupted => continue,
                    WakeAny::Woken(Some(i)) if i != ring => continue, // spurious
                    r => break r,
                }
            };
            waker.join().unwrap();
            if r == WakeAny::Unsupported {
                return;
            }
            assert!(
                matches!(r, WakeAny::Woken(Some(i)) if i == ring) || r == WakeAny::Changed,
                "ring {ring}: {r:?}"
            );
        }
    }

    #[test]
    fn more_words_than_the_kernel_takes_is_an_error_not_a_call() {
        let a = AtomicU32::new(0);
        let words = vec![word(&a); MAX_WAIT_WORDS + 1];
        assert_eq!(wait_any(&words, None), WakeAny::Failed(libc::EINVAL));
    }
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

    /// Model of futex_waitv: all value checks and the sleep are atomic with respect to a
    /// wake of any of the words (one bucket lock). A timed wait may return at once.
    pub fn wait_any(words: &[WaitWord<'_>], timeout: Option<Duration>) -> WakeAny {
        let guard = BUCKET.0.lock().unwrap();
        for w in words {
            // SeqCst: as in `wait`.
            if w.word.load(Ordering::SeqCst) != w.expected {
                return WakeAny::Changed;
            }
        }
        if timeout.is_some() {
            drop(guard);
            return WakeAny::TimedOut;
        }
        drop(BUCKET.1.wait(guard).unwrap());
        WakeAny::Woken(None)
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
pub use model::{wait, wait_any, wake_all, wake_one};
