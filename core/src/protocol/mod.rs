//! The protocol on the shared words: the ring's writer and readers, the subscriber-entry
//! lifecycle, the wake handshake, the hand-back of deferred releases, and the `Block`
//! publisher's stall policy. This is the code the loom models check.

pub(crate) mod entry;
pub mod handback;
pub mod reader;
pub mod ring;
pub mod stall;
pub mod terms;
pub mod wake;
pub mod writer;
