//! The operating system, wrapped: shared futex wait and wake, OFD locks (liveness),
//! residency (prefault, `mlock`, huge pages), the monotonic liveness clock, and file
//! ownership (who is trusted). Nothing here knows the segment format.

pub mod clock;
pub mod futex;
#[cfg(not(loom))]
pub mod lock;
#[cfg(not(loom))]
pub mod residency;
pub mod trust;
