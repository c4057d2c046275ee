//! ringcast: zero-copy shared-memory publish/subscribe for Linux.
//!
//! One [`Publisher`] per topic writes messages into a lock-free ring in a named POSIX
//! shared-memory segment; any number of [`Subscriber`]s in other processes attach by topic
//! name and read them in place (`Block`) or from a verified copy (`Overwrite`), sleeping on
//! a shared futex when there is nothing to read.
//!
//! ```no_run
//! use ringcast::{Publisher, PublisherConfig, Subscriber, SubscriberOptions, Overflow};
//!
//! // Process A
//! let mut publisher = Publisher::create("quotes", PublisherConfig::default().overflow(Overflow::Block))?;
//! publisher.send(b"EURUSD 1.0842")?;
//!
//! // Process B
//! let mut sub = Subscriber::attach("quotes", SubscriberOptions::default())?;
//! let sample = sub.recv()?;
//! assert_eq!(&*sample, b"EURUSD 1.0842");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use ringcast_core::{
    self as core, AttachError, ConfigError, CreateError, Full, NameError, Overflow, Start,
    TypeInfo, WaitStrategy,
};
pub use ringcast_publisher::{Loan, Publisher, PublisherConfig, SendError};
pub use ringcast_subscriber::{
    RecvError, RecvTimeoutError, Sample, Subscriber, SubscriberOptions, TryRecvError,
};
