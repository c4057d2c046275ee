//! The publishing side of ringcast: create a topic, loan a slot, write in place, commit.
//!
//! ```no_run
//! use ringcast_publisher::{Publisher, PublisherConfig};
//!
//! let mut publisher = Publisher::create("imu", PublisherConfig::default().slot_size(256))?;
//! // Zero copy: write straight into the shared-memory slot, then commit the length.
//! let mut loan = publisher.loan();
//! loan[..5].copy_from_slice(b"hello");
//! loan.commit(5);
//! // Or copy a byte slice in one call.
//! publisher.send(b"world")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod publisher;

pub use config::PublisherConfig;
pub use publisher::{Loan, Publisher, SendError};
pub use ringcast_core::{CreateError, Full, Overflow, WaitStrategy};
