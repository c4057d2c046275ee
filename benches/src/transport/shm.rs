//! One shared cache line between two processes, in an anonymous memfd.
//!
//! The parent creates the memfd (no name in /dev/shm, so nothing to unlink on
//! any exit path), sizes it to one page and maps it `MAP_SHARED`; the child
//! inherits the descriptor across `exec` and maps the same page. The floors
//! ([`super::floor`], [`super::futex`]) exchange messages through [`Line`].

use std::ffi::CStr;
use std::fs::File;
use std::mem::{align_of, size_of};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64};

use memmap2::MmapRaw;
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

use crate::error::{BenchError, Result};

/// Size of the shared file: one page, of which only the first line is used.
const FILE_LEN: u64 = 4096;

/// The shared cache line. Zero bytes are its initial state.
///
/// Protocol: messages strictly alternate between the two sides. The sender
/// stores the 8-byte payload in `word`, then publishes it by storing the next
/// sequence number in `seq` (parent writes odd values, child even ones). The
/// receiver waits until `seq` holds the value it expects, then reads `word`.
#[repr(C, align(64))]
pub struct Line {
    /// Count of messages sent so far by both sides, wrapping; written by the
    /// side whose turn it is. A 32-bit word so that it can also be a futex.
    pub seq: AtomicU32,
    /// The 8-byte payload of the message `seq` announces.
    pub word: AtomicU64,
}

/// A mapping of the shared page, holding a [`Line`] at offset 0.
pub struct SharedLine {
    /// The mapping; unmapped on drop. Only accessed through `line()`.
    map: MmapRaw,
}

impl SharedLine {
    /// Parent side: creates the memfd and maps it. Returns the descriptor to
    /// hand to the child.
    pub fn create() -> Result<(Self, OwnedFd)> {
        const NAME: &CStr = c"ringcast-bench-line";
        let fd = memfd_create(NAME, MemFdCreateFlag::MFD_CLOEXEC)
            .map_err(|e| BenchError::nix("memfd_create", e))?;
        let file = File::from(fd);
        file.set_len(FILE_LEN)
            .map_err(|e| BenchError::sys("ftruncate(memfd)", e))?;
        let line = Self::map(&file)?;
        Ok((line, file.into()))
    }

    /// Child side: maps the inherited memfd, after checking its size.
    pub fn attach(fd: OwnedFd) -> Result<Self> {
        let file = File::from(fd);
        let len = file
            .metadata()
            .map_err(|e| BenchError::sys("fstat(memfd)", e))?
            .len();
        if len < FILE_LEN {
            return Err(BenchError::Protocol(format!(
                "shared file is {len} bytes, expected {FILE_LEN}"
            )));
        }
        Self::map(&file)
    }

    fn map(file: &File) -> Result<Self> {
        let map = MmapRaw::map_raw(file).map_err(|e| BenchError::sys("mmap(memfd)", e))?;
        debug_assert!(map.len() >= size_of::<Line>());
        debug_assert_eq!(map.as_ptr() as usize % align_of::<Line>(), 0);
        Ok(Self { map })
    }

    /// The shared line.
    pub fn line(&self) -> &Line {
        // SAFETY: the mapping is at least FILE_LEN >= size_of::<Line>() bytes
        // (checked at create/attach) and page-aligned, so aligned for `Line`; a
        // zero-filled or previously written `Line` is valid (two atomics, no
        // invalid bit patterns); it lives as long as `self.map`, which the
        // returned borrow cannot outlive. The other process only touches it
        // through the same atomics, and no `&mut` to the mapping ever exists.
        unsafe { &*self.map.as_ptr().cast::<Line>() }
    }
}
