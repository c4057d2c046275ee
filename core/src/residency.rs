//! Keeping a segment's memory resident: fault every page in up front (so the first
//! messages after creation take no page faults) and lock it (so it is never swapped or
//! reclaimed). Both are per-process: each side asks for its own mapping.

use std::io;

/// What to do with a mapping's memory when it is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryOptions {
    /// Fault every page in now (`MADV_POPULATE_WRITE`/`_READ`, Linux 5.14+; older kernels
    /// touch each page instead).
    pub prefault: bool,
    /// `mlock` the mapping: needs `RLIMIT_MEMLOCK` room (`ulimit -l`) or `CAP_IPC_LOCK`.
    pub lock: bool,
}

/// `madvise` advice numbers (not yet in every libc release).
const MADV_POPULATE_READ: libc::c_int = 22;
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// Applies `opts` to the `len` bytes at `base`; `writable` says how the range is mapped.
/// On error, the step that failed (`"madvise(MADV_POPULATE_*)"` or `"mlock"`) and why.
///
/// # Safety
/// `base .. base + len` is one mapping of this process, alive for the call. If
/// `writable` and the kernel lacks `MADV_POPULATE_WRITE`, nobody else may write the
/// range during the call (each page is read and written back).
pub(crate) unsafe fn apply(
    base: *mut u8,
    len: usize,
    writable: bool,
    opts: MemoryOptions,
) -> Result<(), (&'static str, io::Error)> {
    if opts.prefault {
        let advice = if writable {
            MADV_POPULATE_WRITE
        } else {
            MADV_POPULATE_READ
        };
        // SAFETY: the range is one live mapping of ours (the caller's contract); the
        // advice only faults pages in.
        let r = unsafe { libc::madvise(base.cast(), len, advice) };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(("madvise(MADV_POPULATE_*)", e));
            }
            // Before Linux 5.14: touch one byte per page.
            let page = crate::segment::page_size() as usize;
            for off in (0..len).step_by(page) {
                // SAFETY: `off < len`, inside the mapping; volatile so the access stays.
                unsafe {
                    let p = base.add(off);
                    let v = std::ptr::read_volatile(p);
                    if writable {
                        // Nobody else writes the range meanwhile (the caller's contract).
                        std::ptr::write_volatile(p, v);
                    }
                }
            }
        }
    }
    if opts.lock {
        // SAFETY: as above; mlock only pins the pages.
        if unsafe { libc::mlock(base.cast(), len) } != 0 {
            return Err(("mlock", io::Error::last_os_error()));
        }
    }
    Ok(())
}
