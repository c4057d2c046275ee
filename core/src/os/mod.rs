//! The operating system, wrapped: shared futex wait and wake, OFD locks (liveness),
//! residency (prefault, `mlock`, huge pages), the monotonic liveness clock, file
//! ownership (who is trusted) and the fork count (inherited handles). Nothing here knows
//! the segment format.

pub mod clock;
#[cfg(not(loom))]
pub mod fork;
pub mod futex;
#[cfg(not(loom))]
pub mod lock;
#[cfg(not(loom))]
pub mod residency;
pub mod trust;
