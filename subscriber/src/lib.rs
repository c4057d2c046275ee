//! The subscribing side of ringcast: attach to a topic by name and receive its messages.
//!
//! ```no_run
//! use ringcast_subscriber::{Subscriber, SubscriberOptions, RecvError};
//!
//! let mut sub = Subscriber::attach("imu", SubscriberOptions::default())?;
//! loop {
//!     match sub.recv() {
//!         Ok(sample) => println!("#{}: {} bytes", sample.seq(), sample.len()),
//!         Err(RecvError::Lagged(n)) => eprintln!("lost {n} messages"),
//!         Err(RecvError::Disconnected) => break,
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod buffer;
mod errors;
mod options;
mod subscriber;

pub use errors::{RecvError, RecvTimeoutError, TryRecvError};
pub use options::SubscriberOptions;
pub use ringcast_core::{AttachError, Overflow, Start, WaitStrategy};
pub use subscriber::{Sample, Subscriber};
