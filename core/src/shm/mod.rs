//! The shared-memory format and the segment: the `repr(C)` layout, the geometry computed
//! at creation and re-validated at attach, slot stamps, topic names, the mapped memory
//! with its accessors (std and loom flavours) and the segment file's create / open /
//! validate / reclaim. Nothing here runs the protocol.

pub mod geometry;
pub mod layout;
pub mod memory;
pub mod name;
#[cfg(not(loom))]
pub mod segment;
pub mod stamp;
