//! Keeping a segment's memory resident: fault every page in up front (so the first
//! messages after creation take no page faults), lock it (so it is never swapped or
//! reclaimed), and place it on huge pages where /dev/shm offers them (fewer TLB misses,
//! 512 times fewer faults). Prefault and lock are per-process: each side asks for its own
//! mapping; huge pages are the publisher's choice at creation (a subscriber's mapping of a
//! huge-page segment is huge-aligned and PMD-mapped by the kernel without asking).

use std::io;

/// What to do with a mapping's memory when it is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryOptions {
    /// Fault every page in now (`MADV_POPULATE_WRITE`/`_READ`, Linux 5.14+; older kernels
    /// touch each page instead).
    pub prefault: bool,
    /// `mlock` the mapping: needs `RLIMIT_MEMLOCK` room (`ulimit -l`) or `CAP_IPC_LOCK`.
    pub lock: bool,
    /// Publisher only: back the segment with transparent huge pages (`MADV_HUGEPAGE`,
    /// then a prefault that allocates them). Refused with [`huge_pages_offered`]'s reason
    /// where /dev/shm cannot give them, and on kernels without `MADV_POPULATE_WRITE`
    /// (before 5.14), where reserving them would mean touching pages that may SIGBUS.
    pub huge_pages: bool,
}

/// Where transparent huge pages for shared memory are switched for the whole system.
const SHMEM_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";

/// Whether a file in `dir` (a tmpfs mount point, /dev/shm for segments) can be backed by
/// transparent huge pages: the system setting `SHMEM_ENABLED` is not `deny` and the
/// mount offers them (`huge=always`, `within_size` or `advise`), or the setting is
/// `force`. `Err` says why not and what would change it.
///
/// ```
/// // On most systems /dev/shm is mounted without `huge=`: then this explains how to ask.
/// if let Err(why) = ringcast_core::residency::huge_pages_offered("/dev/shm") {
///     assert!(!why.is_empty());
/// }
/// ```
pub fn huge_pages_offered(dir: &str) -> Result<(), String> {
    let system = std::fs::read_to_string(SHMEM_ENABLED).map_err(|_| {
        format!("this kernel has no transparent huge pages for shared memory ({SHMEM_ENABLED} is missing)")
    })?;
    match bracketed(&system) {
        Some("deny") => {
            return Err(format!(
                "{SHMEM_ENABLED} says deny: shared memory never gets huge pages"
            ))
        }
        Some("force") => return Ok(()),
        _ => {}
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    match mount_huge_option(&mounts, dir) {
        None => Err(format!("{dir} is not a tmpfs mount point this process can see")),
        Some(Some("always" | "within_size" | "advise")) => Ok(()),
        Some(huge) => Err(format!(
            "{dir} is mounted with huge={}: remount it with huge=within_size (or advise) to offer huge pages, e.g. `mount -o remount,huge=within_size {dir}`",
            huge.unwrap_or("never")
        )),
    }
}

/// The word in `[brackets]` of a sysfs choice list (`always [never] deny`).
fn bracketed(list: &str) -> Option<&str> {
    let start = list.find('[')? + 1;
    let len = list[start..].find(']')?;
    Some(&list[start..start + len])
}

/// For the last tmpfs mounted on `dir` in `mountinfo`: `Some(its huge= value, if any)`;
/// `None` if `dir` is not a tmpfs mount point.
fn mount_huge_option<'a>(mountinfo: &'a str, dir: &str) -> Option<Option<&'a str>> {
    let mut found = None;
    for line in mountinfo.lines() {
        // Fields: id parent major:minor root mount-point options [optional...] - fstype
        // source super-options (proc(5)).
        let mut halves = line.splitn(2, " - ");
        let (head, tail) = (halves.next()?, halves.next().unwrap_or(""));
        if head.split(' ').nth(4) != Some(dir) {
            continue;
        }
        let mut tail = tail.split(' ');
        let fstype = tail.next();
        let superopts = tail.nth(1).unwrap_or("");
        // Each later mount on the same point hides the earlier ones.
        found = (fstype == Some("tmpfs"))
            .then(|| superopts.split(',').find_map(|o| o.strip_prefix("huge=")));
    }
    found
}

/// `madvise` advice numbers (not yet in every libc release).
const MADV_POPULATE_READ: libc::c_int = 22;
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// The step [`apply`] names when the prefault fails.
pub(crate) const PREFAULT_OP: &str = "madvise(MADV_POPULATE_*)";

/// The step [`apply`] names when huge pages are asked for on a kernel without
/// `MADV_POPULATE_WRITE`; [`NO_POPULATE_REASON`] says why that is refused.
pub(crate) const HUGE_POPULATE_OP: &str = "madvise(MADV_POPULATE_WRITE) for huge pages";

/// Why huge pages are refused on a kernel without `MADV_POPULATE_WRITE`.
pub(crate) const NO_POPULATE_REASON: &str =
    "this kernel has no MADV_POPULATE_WRITE (Linux 5.14+): \
    huge pages could only be reserved by touching every page, and a touch the tmpfs cannot back \
    (out of huge pages or of room) is a SIGBUS, not an error; create the topic without huge pages";

/// The environment variable that makes `apply` act as on a kernel without
/// `MADV_POPULATE_READ`/`_WRITE` (before Linux 5.14): the advice is not made and reads as
/// `EINVAL`, so the fallback path runs. A test hook; `1` turns it on.
pub const NO_POPULATE_ENV: &str = "RINGCAST_TEST_NO_MADV_POPULATE";

/// Whether [`NO_POPULATE_ENV`] is set to `1` (read once).
fn populate_disabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os(NO_POPULATE_ENV).is_some_and(|v| v == "1"))
}

/// Applies `opts` to the `len` bytes at `base`; `writable` says how the range is mapped.
/// On error, the step that failed ([`PREFAULT_OP`], [`HUGE_POPULATE_OP`],
/// `"madvise(MADV_HUGEPAGE)"` or `"mlock"`) and why. Huge pages need
/// `MADV_POPULATE_WRITE`: without it they are refused ([`HUGE_POPULATE_OP`]), never
/// reserved by touching (a page the tmpfs cannot back would be a SIGBUS).
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
    if opts.huge_pages {
        // SAFETY: as below; the advice only marks the range eligible for huge pages.
        if unsafe { libc::madvise(base.cast(), len, libc::MADV_HUGEPAGE) } != 0 {
            return Err(("madvise(MADV_HUGEPAGE)", io::Error::last_os_error()));
        }
    }
    if opts.prefault || opts.huge_pages {
        let advice = if writable {
            MADV_POPULATE_WRITE
        } else {
            MADV_POPULATE_READ
        };
        let r = if populate_disabled() {
            Err(io::Error::from_raw_os_error(libc::EINVAL))
        // SAFETY: the range is one live mapping of ours (the caller's contract); the
        // advice only faults pages in.
        } else if unsafe { libc::madvise(base.cast(), len, advice) } != 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        };
        if let Err(e) = r {
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err((PREFAULT_OP, e));
            }
            if opts.huge_pages {
                // Touching cannot reserve huge pages safely: a page the tmpfs cannot
                // allocate (out of huge pages or of room; the file is only ftruncate'd) is
                // a SIGBUS, here or at a later write, never an error. Refuse instead.
                return Err((HUGE_POPULATE_OP, e));
            }
            // Before Linux 5.14: touch one byte per page.
            let page = page_size() as usize;
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

/// The system page size.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
30 22 0:26 / /dev/shm rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=65536k
31 22 0:27 / /dev/shm rw,relatime - tmpfs none rw,size=1024k,huge=within_size
40 22 0:30 / /mnt/x rw - ext4 /dev/sda1 rw
";

    #[test]
    fn the_last_mount_on_a_point_decides() {
        assert_eq!(
            mount_huge_option(INFO, "/dev/shm"),
            Some(Some("within_size"))
        );
        let first_only: String = INFO.lines().take(2).map(|l| format!("{l}\n")).collect();
        assert_eq!(mount_huge_option(&first_only, "/dev/shm"), Some(None));
        assert_eq!(mount_huge_option(INFO, "/mnt/x"), None, "not a tmpfs");
        assert_eq!(mount_huge_option(INFO, "/nowhere"), None);
    }

    #[test]
    fn the_bracketed_choice_is_the_setting() {
        assert_eq!(
            bracketed("always within_size advise [never] deny force\n"),
            Some("never")
        );
        assert_eq!(bracketed("no brackets"), None);
    }
}
