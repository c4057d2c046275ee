//! The subscribing side of ringcast: attach to a topic by name and receive its messages.
//!
//! ```
//! use ringcast_subscriber::{Subscriber, SubscriberOptions, RecvError};
//! # use ringcast_publisher::{Publisher, PublisherConfig};
//! # let prefix = format!("rcdoc{}sublib", std::process::id());
//! # let mut publisher = Publisher::create("imu", PublisherConfig::default().prefix(&prefix))?;
//! # let opts = SubscriberOptions::default().prefix(&prefix);
//!
//! let mut sub = Subscriber::attach("imu", opts)?;
//! # for m in [b"ax", b"ay", b"az"] { publisher.send(m)?; }
//! # drop(publisher);
//! // Here the publisher sends three messages and closes the topic.
//! let mut received = 0;
//! loop {
//!     match sub.recv() {
//!         Ok(sample) => {
//!             println!("#{}: {} bytes", sample.seq(), sample.len());
//!             received += 1;
//!         }
//!         Err(RecvError::Lagged(n)) => eprintln!("lost {n} messages"),
//!         Err(RecvError::Disconnected) => break,
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! assert_eq!(received, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Typed messages: [`TypedSubscriber`] hands out validated `&Archived<T>` (see the
//! [`typed`] module).

mod buffer;
mod drain;
mod errors;
pub mod future;
pub mod kept;
mod options;
mod subscriber;
pub mod typed;

pub use drain::Drained;
pub use errors::{RecvError, RecvTimeoutError, TryRecvError};
pub use future::{OwnedSample, SampleStream};
pub use kept::Kept;
pub use options::SubscriberOptions;
pub use ringcast_core::endpoint::Retained;
pub use ringcast_core::TypeInfo;
pub use ringcast_core::{AttachError, Overflow, PublisherId, Start, WaitStrategy};
/// The rkyv this crate validates with; derive your message types with it.
pub use rkyv;
pub use subscriber::{Sample, Subscriber};
pub use typed::{type_info_of, SlotValidator, TypedRecvError, TypedSample, TypedSubscriber};
