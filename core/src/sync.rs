//! The one place that decides which synchronization primitives the ring code uses.
//!
//! Normally these are `std`'s atomics and fences; under `RUSTFLAGS="--cfg loom"` they are
//! loom's, so the loom models in `ringcast-loom-tests` check the very protocol code that
//! ships (the shape follows tokio's `src/loom/` switch). Nothing else in `ringcast-core`
//! names `std::sync::atomic` directly for the ring or the wake-up words.
//!
//! Payload bytes are the one thing that cannot be the same in both worlds: in a process
//! they are plain bytes in a shared mapping, and loom cannot track raw bytes. The payload
//! accessors in [`crate::memory`] therefore come in a std and a loom flavour; every stamp,
//! cursor, fence and futex word goes through this module in both.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A memory fence; `Relaxed` means no fence at all (`std` and loom both panic on a relaxed
/// fence). Only the negative control asks for `Relaxed`, through [`mutant_or`], to drop a
/// fence outright.
#[inline(always)]
pub(crate) fn fence(order: Ordering) {
    if order == Ordering::Relaxed {
        return;
    }
    #[cfg(not(loom))]
    std::sync::atomic::fence(order);
    #[cfg(loom)]
    loom::sync::atomic::fence(order);
}

/// A hint that we are in a busy-wait loop (`pause` on x86); under loom, a yield so the
/// model checker can schedule the thread we are waiting for.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// A deliberately weakened ordering for the negative control (`--cfg ringcast_loom_mutant`):
/// the loom models must fail when this is in effect. In every normal build it is `strong`.
#[inline(always)]
#[allow(unused_variables)]
pub(crate) const fn mutant_or(strong: Ordering, weak: Ordering) -> Ordering {
    #[cfg(ringcast_loom_mutant)]
    return weak;
    #[cfg(not(ringcast_loom_mutant))]
    return strong;
}

/// An atomic that can be loaded with `Relaxed` (both widths the segment uses).
pub(crate) trait RelaxedLoad {
    /// The loaded value.
    type Value;
    /// A `Relaxed` load.
    fn load_relaxed(&self) -> Self::Value;
}

impl RelaxedLoad for AtomicU64 {
    type Value = u64;
    #[inline(always)]
    fn load_relaxed(&self) -> u64 {
        // Relaxed: the only kind of load Rust allows on read-only memory; `load_ro` adds
        // the fence.
        self.load(Ordering::Relaxed)
    }
}

impl RelaxedLoad for AtomicU32 {
    type Value = u32;
    #[inline(always)]
    fn load_relaxed(&self) -> u32 {
        // Relaxed: as for `AtomicU64`.
        self.load(Ordering::Relaxed)
    }
}

/// An acquire load of a word that may live in memory this process mapped **read-only**
/// (a subscriber's view of the slot ring, `inspect`'s view of everything). Rust promises
/// only that `Relaxed` loads of at most register width work on read-only memory (an
/// `Acquire` load may be compiled as a read-modify-write on some targets); a `Relaxed` load
/// followed by an `Acquire` fence gives the same ordering (the fence synchronizes with the
/// `Release` store the load read from) and costs nothing more on x86. `order` is `Acquire`,
/// or `Relaxed` (no fence) for the negative control through [`mutant_or`].
#[inline(always)]
pub(crate) fn load_ro<A: RelaxedLoad>(atomic: &A, order: Ordering) -> A::Value {
    let v = atomic.load_relaxed();
    fence(order);
    v
}

/// [`load_ro`] with `Acquire`.
#[inline(always)]
pub(crate) fn load_acquire_ro<A: RelaxedLoad>(atomic: &A) -> A::Value {
    load_ro(atomic, Ordering::Acquire)
}
