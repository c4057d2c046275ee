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
