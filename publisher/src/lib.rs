//! The publishing side of ringcast: create a topic, loan a slot, write in place, commit.
//!
//! ```
//! use ringcast_publisher::{Publisher, PublisherConfig};
//! # let prefix = format!("rcdoc{}publib", std::process::id());
//! # let config = PublisherConfig::default().prefix(&prefix);
//!
//! let mut publisher = Publisher::create("imu", config.slot_size(256))?;
//! // Zero copy: write straight into the shared-memory slot, then commit the length.
//! let mut loan = publisher.loan();
//! loan[..5].copy_from_slice(b"hello");
//! loan.commit(5);
//! // Or copy a byte slice in one call.
//! publisher.send(b"world")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Typed messages: [`TypedPublisher`] archives values with rkyv straight into the slot
//! (see the [`typed`] module).

mod config;
pub mod future;
mod publisher;
pub mod typed;

pub use config::PublisherConfig;
pub use publisher::{Loan, Publisher, SendError};
pub use ringcast_core::{CreateError, Full, Overflow, TypeInfo, WaitStrategy};
/// The rkyv this crate serializes with; derive your message types with it.
pub use rkyv;
pub use typed::{
    serialize_into, type_info_of, SlotSerializer, SlotWriter, TypedPublisher, TypedSendError,
    DEFAULT_SCRATCH_BYTES,
};
