//! ringcast-core: the shared-memory segment, the lock-free SPMC ring protocol, futex
//! wake-ups and liveness that the `ringcast` publisher and subscriber are built on.
//!
//! | module | holds |
//! |---|---|
//! | [`sync`](crate) (private) | the std/loom switch every atomic goes through |
//! | [`layout`] | the `repr(C)` header, subscriber table and slot headers |
//! | [`geometry`] | sizes computed at creation and re-validated at attach |
//! | [`stamp`] | slot stamps: which sequence a slot holds, busy or committed |
//! | [`ring`] | the protocol: [`ring::Writer`] and [`ring::Reader`] |
//! | `entry` (private) | the subscriber-entry lifecycle: claim, attach, hold, release, evict, reap, detach |
//! | [`endpoint`] | the owned, safe ends of a topic: the only way to a `Writer` or `Reader` |
//! | [`wait`] | the announce / re-check / sleep handshake and wait strategies |
//! | [`stall`] | the stall-timeout eviction policy of a `Block` publisher |
//! | [`clock`] | the per-handle liveness clock and saturating deadlines |
//! | [`futex`] | shared futex wait and wake |
//! | [`segment`] | create / reclaim / open / validate in `/dev/shm` |
//! | [`lock`] | liveness through OFD locks |
//! | [`inspect`] | read-only snapshots and garbage collection for tools |
//! | [`name`] | topic names |
//! | [`error`] | typed errors |
//!
//! Users normally depend on the `ringcast` facade crate instead of this one.

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod clock;
mod entry;
pub mod error;
pub mod futex;
pub mod geometry;
pub mod layout;
pub mod memory;
pub mod name;
pub mod ring;
pub mod stall;
pub mod stamp;
mod sync;
pub mod wait;

#[cfg(not(loom))]
pub mod endpoint;
#[cfg(not(loom))]
pub mod inspect;
#[cfg(not(loom))]
pub mod lock;
#[cfg(not(loom))]
pub mod segment;

pub use entry::Reaped;

pub use error::{AttachError, ConfigError, CreateError, NameError};
pub use geometry::{Geometry, SegmentConfig};
pub use layout::{Overflow, TypeInfo};
pub use ring::{Full, Poll, Reader, Start, Writer};
pub use wait::WaitStrategy;
