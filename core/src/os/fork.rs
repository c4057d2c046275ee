//! Handles inherited across `fork()`. A child process gets a copy of every handle its
//! parent had, and of the parent's open file descriptions, so a copy dropped in the child
//! would act on the parent's topic: a publisher's leave releases the parent's lane lock
//! (shared through the file description) and, if it looks last, closes the topic and
//! unlinks its name; a subscriber's detach frees the parent's live table entry, after
//! which a `Block` publisher may overwrite the slots the parent is still reading.
//!
//! Every end records the [`Lineage`] it was made in; an end whose lineage is not the
//! process's own was inherited and is inert when dropped (its process-local memory may be
//! leaked, the shared state is never touched). The count of forks is kept by a
//! `pthread_atfork` child handler, registered once, before the first end is made.
//!
//! ```
//! let made = ringcast_core::fork::Lineage::current();
//! assert!(!made.inherited()); // in the process that made it
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

/// Forks this process (and its ancestors since the handler was registered) went through.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked() {
    // Relaxed: the child's only thread runs this inside `fork`, before any handle can be
    // looked at; no other data is published through the count.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// The process an end was made in, as the number of forks between the handler's
/// registration and its making.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lineage(u64);

impl Lineage {
    /// The lineage of an end made now (registers the fork handler on first use).
    pub fn current() -> Lineage {
        static REGISTER: Once = Once::new();
        REGISTER.call_once(|| {
            // SAFETY: registers a child handler that only increments an atomic, which is
            // async-signal-safe as code run between fork and its return must be. A
            // failure (ENOMEM) leaves the count at 0: ends are then never seen as
            // inherited, as before this guard existed.
            unsafe { libc::pthread_atfork(None, None, Some(forked)) };
        });
        // Relaxed: see `forked`.
        Lineage(FORKS.load(Ordering::Relaxed))
    }

    /// Whether this process is a child forked after the end was made (one relaxed load).
    #[inline]
    pub fn inherited(self) -> bool {
        // Relaxed: see `forked`.
        FORKS.load(Ordering::Relaxed) != self.0
    }
}
