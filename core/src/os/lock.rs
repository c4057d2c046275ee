//! Liveness through kernel-held locks: open file description (OFD) byte-range locks.
//!
//! The publisher of lane `l` holds a write lock on [`lane_byte`]`(l)` of its segment file
//! for as long as it lives (byte 0 for lane 0, the only lane of a topic with one
//! publisher); subscriber table entry `i` is owned by whoever holds a write lock on byte
//! `1 + i`. The
//! kernel drops these locks when the owning file description is closed, including when the
//! process dies by SIGKILL, so "is anybody holding it?" (F_OFD_GETLK) is a liveness test
//! that PID reuse and PID namespaces cannot fool. OFD locks (unlike classic POSIX locks)
//! belong to the open file description, so two handles in one process, each with its own
//! `open`, exclude each other too. Locked bytes lie past nothing in particular: a lock on a
//! byte beyond the end of file is legal and costs no memory.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};

/// The byte the publisher locks.
pub const PUBLISHER_BYTE: i64 = 0;

/// Where the lane locks start (lane 0 is [`PUBLISHER_BYTE`]): past the subscriber
/// entries' bytes, before the remover byte.
pub const LANE_BYTE_BASE: i64 = 1 << 39;

/// The byte the publisher of lane `l` locks: [`PUBLISHER_BYTE`] for lane 0 (a topic with
/// one publisher locks exactly what it always did), then from [`LANE_BYTE_BASE`].
pub const fn lane_byte(l: usize) -> i64 {
    if l == 0 {
        PUBLISHER_BYTE
    } else {
        LANE_BYTE_BASE + l as i64
    }
}

/// The byte owned by subscriber table entry `i`.
pub const fn entry_byte(i: usize) -> i64 {
    1 + i as i64
}

fn range(kind: libc::c_int, byte: i64) -> libc::flock {
    // SAFETY: `flock` is a plain C struct; all-zero is a valid value we then fill in.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    fl
}

/// Tries to take the write lock on `byte` without waiting. `Ok(false)` if another open
/// file description holds a lock on it.
pub fn try_lock(fd: BorrowedFd<'_>, byte: i64) -> std::io::Result<bool> {
    let fl = range(libc::F_WRLCK, byte);
    match fcntl(fd.as_raw_fd(), FcntlArg::F_OFD_SETLK(&fl)) {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Releases our lock on `byte` (no error if we hold none).
pub fn unlock(fd: BorrowedFd<'_>, byte: i64) -> std::io::Result<()> {
    let fl = range(libc::F_UNLCK, byte);
    fcntl(fd.as_raw_fd(), FcntlArg::F_OFD_SETLK(&fl))?;
    Ok(())
}

/// Whether another open file description holds a lock on `byte`.
pub fn is_locked(fd: BorrowedFd<'_>, byte: i64) -> std::io::Result<bool> {
    let mut fl = range(libc::F_WRLCK, byte);
    fcntl(fd.as_raw_fd(), FcntlArg::F_OFD_GETLK(&mut fl))?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// The byte whose lock a process holds while it decides whether to unlink a topic name it
/// did not create (a reclaiming publisher, `gc`): far past the subscriber entries' bytes.
pub const REMOVER_BYTE: i64 = 1 << 40;

/// How long [`RemoverLock::take`] waits for another remover. Removers hold the lock for a
/// few system calls; only a hostile process could hold it longer.
const REMOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The remover lock of one segment file, released on drop (see `segment`'s module docs).
pub struct RemoverLock<'a> {
    fd: BorrowedFd<'a>,
}

impl<'a> RemoverLock<'a> {
    /// Takes the remover lock of the file behind `fd` (open for writing), waiting a
    /// bounded time for another remover; `WouldBlock` if it stays taken.
    pub fn take(fd: BorrowedFd<'a>) -> std::io::Result<Self> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_micros(50);
        while !try_lock(fd, REMOVER_BYTE)? {
            if started.elapsed() >= REMOVER_WAIT {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "another process has held the segment's remover lock for 2 s",
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(5));
        }
        Ok(RemoverLock { fd })
    }
}

impl Drop for RemoverLock<'_> {
    fn drop(&mut self) {
        let _ = unlock(self.fd, REMOVER_BYTE);
    }
}
