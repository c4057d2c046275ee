//! Deferred releases, handed back before any thread of the process blocks.
//!
//! A `Block` reader may defer the cursor store of slots it has released while more
//! messages wait (batched release, and every `Subscriber::drain`): the run goes back to the
//! writer in one store when it ends. If the thread holding such a run blocks before the run
//! ends (a relay: it waits for room in another topic whose reader, in turn, waits for room
//! in ours), the two wait for each other for ever. So every wait that may block (a
//! receive, a loan, a wait set, the async reactor) first calls [`hand_back`], which stores
//! every deferred cursor of the process: a thread then holds at most the message it is
//! reading, exactly as with per-message release.
//!
//! A reader that defers publishes *which* cursor may be handed back in its `Deferral`
//! (Release store, after the reads it covers); [`hand_back`] reads it (Acquire) and raises
//! the entry's cursor to it with a Release compare-and-swap, only while the cursor is below
//! it (so a hand-back that races the owner's own, larger store never moves the cursor
//! back, and one with nothing to hand back writes nothing). The chain owner
//! reads → Release `upto` → Acquire `upto` → Release cursor → the writer's Acquire cursor
//! load orders every read of the run before the writer reuses its slots, whichever thread
//! hands it back. The deferral's `alive` lock keeps a hand-back from touching the entry
//! after its reader has left the table (the entry may then belong to someone else).
//!
//! The loom model `block_deferred_run_handed_back_by_another_thread` checks this with the
//! shipped code; the build with `--cfg ringcast_loom_mutant_handback` hands back one slot
//! too many and must fail it (CI checks that it does). A `Relaxed` `upto` load is *not*
//! caught by that model (tried): in it the registration lock and the sleep handshake's
//! SeqCst fences order the reads before the writer's reuse anyway, so the Acquire rests
//! on the argument above.

use std::sync::Arc;

use crate::memory::SegmentMemory;
use crate::sync::{AtomicU64, Ordering};

/// Slots a hand-back releases beyond the deferred cursor: none, or one in the negative
/// control build of its loom model (which must then see the writer overwrite the slot the
/// reader is reading).
#[cfg(not(ringcast_loom_mutant_handback))]
const OVER_RELEASE: u64 = 0;
#[cfg(ringcast_loom_mutant_handback)]
const OVER_RELEASE: u64 = 1;

#[cfg(not(loom))]
use std::sync::{atomic::AtomicUsize, Mutex};

#[cfg(loom)]
use loom::sync::{atomic::AtomicUsize, Mutex};

/// One reader's deferred releases, shared with whichever thread hands them back.
pub(crate) struct Deferral {
    mem: Arc<SegmentMemory>,
    /// The reader's table entry.
    entry: usize,
    /// The lane whose releases it defers (a reader has one deferral per lane).
    lane: usize,
    /// A cursor the owner has released everything below (0: none yet). Written only by
    /// the owner (Release), read by [`hand_back`] (Acquire).
    upto: AtomicU64,
    /// Whether the owner still holds its table entry; set false (under the lock) before it
    /// detaches, so a hand-back holding the lock never writes a freed entry.
    alive: Mutex<bool>,
}

/// Every live deferral of the process.
struct Registry {
    /// `list.len()`, readable without the lock: a blocking wait with nothing registered
    /// skips the lock.
    count: AtomicUsize,
    list: Mutex<Vec<Arc<Deferral>>>,
}

#[cfg(not(loom))]
static REGISTRY: Registry = Registry {
    count: AtomicUsize::new(0),
    list: Mutex::new(Vec::new()),
};

#[cfg(loom)]
loom::lazy_static! {
    static ref REGISTRY: Registry = Registry {
        count: AtomicUsize::new(0),
        list: Mutex::new(Vec::new()),
    };
}

/// The lock's data even if a panicking holder poisoned it (the data is a flag and a list
/// that every holder leaves consistent).
fn lock<T>(m: &Mutex<T>) -> impl std::ops::DerefMut<Target = T> + '_ {
    #[cfg(not(loom))]
    return m.lock().unwrap_or_else(|p| p.into_inner());
    #[cfg(loom)]
    return m.lock().unwrap();
}

impl Deferral {
    /// Registers a deferral for the reader of entry `entry`, in lane `lane`.
    pub(crate) fn register(mem: Arc<SegmentMemory>, entry: usize, lane: usize) -> Arc<Deferral> {
        let d = Arc::new(Deferral {
            mem,
            entry,
            lane,
            upto: AtomicU64::new(0),
            alive: Mutex::new(true),
        });
        let mut list = lock(&REGISTRY.list);
        list.push(d.clone());
        // Relaxed: a hint for `hand_back`'s fast path; the list under its lock is the truth.
        REGISTRY.count.store(list.len(), Ordering::Relaxed);
        d
    }

    /// The owner has released everything below `cursor` (its reads of those slots are
    /// done).
    #[inline]
    pub(crate) fn released_below(&self, cursor: u64) {
        // Release: the owner's in-place reads of the slots below `cursor` happen before a
        // hand-back that reads this. Pairs with the Acquire load in `hand_back`.
        self.upto.store(cursor, Ordering::Release);
    }

    /// The owner leaves its table entry: no hand-back touches it from now on.
    pub(crate) fn retire(self: &Arc<Self>) {
        *lock(&self.alive) = false;
        let mut list = lock(&REGISTRY.list);
        list.retain(|d| !Arc::ptr_eq(d, self));
        // Relaxed: as in `register`.
        REGISTRY.count.store(list.len(), Ordering::Relaxed);
    }

    /// Stores the deferred cursor into the entry (if it is ahead) and wakes the writer.
    fn hand_back(&self) {
        let alive = lock(&self.alive);
        if !*alive {
            return;
        }
        // Acquire: pairs with the Release store in `released_below`.
        let upto = self.upto.load(Ordering::Acquire);
        // Nothing deferred yet (0) stays nothing; the negative control over-releases.
        let upto = if upto == 0 { 0 } else { upto + OVER_RELEASE };
        let cursor = &self.mem.cursor(self.entry, self.lane).cursor;
        // Relaxed: only decides whether to try; the CAS below is what publishes.
        let mut seen = cursor.load(Ordering::Relaxed);
        let mut raised = false;
        while seen < upto {
            // Release: the owner's reads (acquired above) happen before the writer's reuse
            // of the slots. Pairs with the Acquire cursor load in `slowest_cursor`. A CAS,
            // so a hand-back racing the owner's own larger store never lowers the cursor.
            match cursor.compare_exchange_weak(seen, upto, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => {
                    raised = true;
                    break;
                }
                Err(now) => seen = now,
            }
        }
        if raised {
            crate::protocol::wake::after_release(&self.mem, self.lane);
        }
        drop(alive);
    }
}

/// Hands back every deferred release of the process (see the module docs). Called by every
/// wait that may block, before it waits; a load when nothing is deferred anywhere.
pub fn hand_back() {
    // Relaxed: a deferral registered by this thread is seen in program order (the relay
    // case); one of another thread's that this misses is that thread's to hand back.
    if REGISTRY.count.load(Ordering::Relaxed) == 0 {
        return;
    }
    let list = lock(&REGISTRY.list);
    for d in list.iter() {
        d.hand_back();
    }
}
