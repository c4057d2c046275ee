//! `futex-floor`: the same shared line as `floor`, but the waiting side always
//! sleeps in `FUTEX_WAIT` and the sender always calls `FUTEX_WAKE`.
//!
//! This is the floor for any transport whose idle receiver sleeps: one store,
//! one wake system call, one scheduler wake-up of a sleeping process on another
//! CPU. The futex is *shared* (no `FUTEX_PRIVATE_FLAG`): the two processes map
//! the same memfd page, and the kernel keys the futex by page and offset.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::floor::LineEnd;
use super::shm::SharedLine;
use super::{fd_arg, take_fd, Endpoint, Link, LinkSpec, Tag, Transport, PEER_TIMEOUT};
use crate::error::{BenchError, Result};
use crate::scenario::Scenario;

/// The `futex-floor` transport.
pub struct FutexFloor;

impl Transport for FutexFloor {
    fn name(&self) -> &'static str {
        super::FUTEX_FLOOR
    }

    fn supports(&self, scenario: Scenario) -> bool {
        scenario == Scenario::PingPong
    }

    fn fixed_payload(&self) -> Option<usize> {
        Some(Tag::LEN)
    }

    fn open(&self, _spec: &LinkSpec) -> Result<Link> {
        let (shm, fd) = SharedLine::create()?;
        Ok(Link {
            local: Box::new(FutexEnd(LineEnd::new(shm))),
            child_args: vec![fd_arg(&fd)],
            child_fds: vec![fd],
        })
    }

    fn attach(&self, _spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        let shm = SharedLine::attach(take_fd(args, 0)?)?;
        Ok(Box::new(FutexEnd(LineEnd::new(shm))))
    }
}

/// One side: a [`LineEnd`] that sleeps instead of spinning.
struct FutexEnd(LineEnd);

impl Endpoint for FutexEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.0.publish(msg)?;
        // Always wake: this is the raw floor, with no "someone sleeps" flag to
        // spare the system call. The kernel orders the wake after the store.
        futex_wake_one(&self.0.line().seq)
    }

    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        loop {
            // Acquire inside `arrived` (see `LineEnd::arrived`).
            if self.0.arrived() {
                return self.0.take(msg);
            }
            // Relaxed: only the value to sleep on; FUTEX_WAIT re-checks it
            // atomically in the kernel, so a store in between makes it return.
            let seen = self.0.line().seq.load(Ordering::Relaxed);
            if seen == self.0.expected() {
                continue;
            }
            if !futex_wait(&self.0.line().seq, seen, PEER_TIMEOUT)? {
                return Err(BenchError::Timeout {
                    what: "a futex wake-up from the peer",
                    secs: PEER_TIMEOUT.as_secs(),
                });
            }
        }
    }
}

/// Sleeps while `*word == expected`, at most `timeout`. Returns `Ok(false)` on
/// timeout, `Ok(true)` on a wake-up, a changed value, or a signal (spurious
/// wake-ups are possible: callers loop and re-check).
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) -> Result<bool> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a live, aligned 32-bit atomic in a MAP_SHARED mapping
    // owned by the caller's `SharedLine`; FUTEX_WAIT only reads it, and `ts`
    // outlives the call. The unused uaddr2/val3 arguments are null/0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(true),
        Some(libc::ETIMEDOUT) => Ok(false),
        _ => Err(BenchError::sys("futex(FUTEX_WAIT)", err)),
    }
}

/// Wakes at most one process sleeping on `word`.
fn futex_wake_one(word: &AtomicU32) -> Result<()> {
    // SAFETY: `word` is a live, aligned 32-bit atomic in a shared mapping;
    // FUTEX_WAKE does not access memory through the pointer beyond keying it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            1i32,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if rc < 0 {
        return Err(BenchError::last_os("futex(FUTEX_WAKE)"));
    }
    Ok(())
}
