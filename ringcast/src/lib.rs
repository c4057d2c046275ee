//! ringcast: zero-copy shared-memory publish/subscribe for Linux.
//!
//! One [`Publisher`] per topic writes messages into a lock-free ring in a named POSIX
//! shared-memory segment; any number of [`Subscriber`]s in other processes attach by topic
//! name and read them in place (`Block`) or from a verified copy (`Overwrite`), sleeping on
//! a shared futex when there is nothing to read.
//!
//! ```
//! use ringcast::{Publisher, PublisherConfig, Subscriber, SubscriberOptions, Overflow};
//! # let prefix = format!("rcdoc{}quotes", std::process::id());
//! # let config = PublisherConfig::default().prefix(&prefix);
//! # let opts = SubscriberOptions::default().prefix(&prefix);
//!
//! // Process A creates the topic.
//! let mut publisher = Publisher::create("quotes", config.overflow(Overflow::Block))?;
//!
//! // Process B (here the same process) attaches, and receives what A sends from then on.
//! let mut sub = Subscriber::attach("quotes", opts)?;
//! publisher.send(b"EURUSD 1.0842")?;
//! let sample = sub.recv()?;
//! assert_eq!(&*sample, b"EURUSD 1.0842");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Typed messages are archived with rkyv straight into the slot by a [`TypedPublisher`]
//! and handed out as validated `&Archived<T>` by a [`TypedSubscriber`]:
//!
//! ```
//! use ringcast::{PublisherConfig, SubscriberOptions, TypedPublisher, TypedSubscriber};
//! # let prefix = format!("rcdoc{}typedquotes", std::process::id());
//! # let config = PublisherConfig::default().prefix(&prefix);
//! # let opts = SubscriberOptions::default().prefix(&prefix);
//!
//! #[derive(ringcast::rkyv::Archive, ringcast::rkyv::Serialize)]
//! #[rkyv(crate = ringcast::rkyv)]
//! struct Quote {
//!     symbol: u32,
//!     bid: f64,
//!     ask: f64,
//! }
//!
//! // Process A
//! let mut publisher = TypedPublisher::<Quote>::create("quotes", config)?;
//!
//! // Process B (here the same process)
//! let mut sub = TypedSubscriber::<Quote>::attach("quotes", opts)?;
//! publisher.send(&Quote { symbol: 7, bid: 1.0841, ask: 1.0843 })?;
//! let quote = sub.recv()?;
//! assert_eq!(quote.symbol, 7);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # One loop, many topics
//!
//! A [`WaitSet`] owns subscribers of any topics (raw and typed) and `Block` publishers,
//! and sleeps until one of them is ready, a deadline passes, or a [`Notifier`] rings:
//!
//! ```
//! use std::time::Duration;
//! use ringcast::{Subscriber, SubscriberOptions, TryRecvError, TypedSubscriber, WaitSet};
//! # use ringcast::{Publisher, PublisherConfig, TypedPublisher};
//! # let prefix = format!("rcdoc{}waitset", std::process::id());
//! # let config = PublisherConfig::default().prefix(&prefix);
//! # let opts = SubscriberOptions::default().prefix(&prefix);
//! # let mut imu_publisher = Publisher::create("imu", config.clone())?;
//! # let mut odom_publisher = TypedPublisher::<u64>::create("odom", config)?;
//!
//! let mut set = WaitSet::new();
//! let imu = set.add(Subscriber::attach("imu", opts.clone())?)?;
//! let odom = set.add(TypedSubscriber::<u64>::attach("odom", opts)?)?;
//! let stop = set.notifier(); // give it to whoever may stop the loop
//!
//! // The publishers (here a thread of this process) send three messages each, then close.
//! let publishers = std::thread::spawn(move || {
//!     for tick in 0..3u64 {
//!         imu_publisher.send(&[0; 24]).unwrap();
//!         odom_publisher.send(&tick).unwrap();
//!     }
//! });
//!
//! let (mut imu_bytes, mut ticks) = (0, Vec::new());
//! loop {
//!     let woke = set.wait_timeout(Duration::from_millis(100))?;
//!     if woke.notified() {
//!         break;
//!     }
//!     if let Some(imu) = set.ready_mut(imu) {
//!         while let Ok(sample) = imu.try_recv() {
//!             println!("imu #{}: {} bytes", sample.seq(), sample.len());
//!             imu_bytes += sample.len();
//!         }
//!     }
//!     if let Some(odom) = set.ready_mut(odom) {
//!         match odom.try_recv() {
//!             Ok(pose) => ticks.push(pose.to_native()),
//!             Err(ringcast::TypedRecvError::Recv(TryRecvError::Disconnected)) => break,
//!             Err(_) => {}
//!         }
//!     }
//! }
//! publishers.join().unwrap();
//! // Each imu message went out before an odom tick, so all were read before odom closed.
//! assert_eq!((imu_bytes, ticks), (3 * 24, vec![0, 1, 2]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The set owns its members, so nothing borrows across the loop and the same handle cannot
//! be added twice:
//!
//! ```compile_fail,E0382
//! # use ringcast::{Subscriber, SubscriberOptions, WaitSet};
//! let mut set = WaitSet::new();
//! let sub = Subscriber::attach("imu", SubscriberOptions::default()).unwrap();
//! let a = set.add(sub);
//! let b = set.add(sub); // moved into the set above
//! ```
//!
//! # What is public
//!
//! This crate's API is the contract. The protocol's internals (the ring's writer and
//! reader, the segment memory, the sleep handshake) are not reachable from safe code
//! through it, so nothing a user writes without `unsafe` can break the ring's invariants:
//!
//! ```compile_fail
//! // The core crate is not re-exported.
//! use ringcast::core::ring::Writer;
//! ```
//!
//! Wait-set membership is sealed: only ringcast's own handles are members, so no user
//! type can make a wait set sleep on memory it does not own.
//!
//! ```compile_fail
//! struct Mine;
//! impl ringcast::Member for Mine {}
//! ```
//!
//! Under `Overwrite` a loan is the publisher's private staging buffer (copied into the
//! slot with atomic word stores at commit), so a write through it can never race a reader
//! reading the slot, in this process or another.
//!
//! Read-only views of topics for tools are: [`inspect`] (snapshots, `gc`) and [`name`]
//! (topic-name rules).

pub use ringcast_core::clock::LIVENESS_SLICE;
/// Handles inherited across `fork()`: which process made a handle (for bindings that
/// refuse calls on a parent's handle in a child; every handle has `is_inherited`).
pub use ringcast_core::fork;
/// Whether /dev/shm can back a topic with huge pages here (`Err`: why not and what to
/// change), as [`PublisherConfig::huge_pages`] will find at creation.
pub use ringcast_core::residency::huge_pages_offered;
/// On a topic with several publishers, the most messages a subscriber takes from one
/// publisher in a row while others have messages waiting.
pub use ringcast_core::ring::QUANTUM as LANE_QUANTUM;
pub use ringcast_core::waitset::{
    AddError, Key, Member, Notifier, Refusal, WaitError, WaitSet, Wakeup, MAX_MEMBERS, POLL_NAP,
};
pub use ringcast_core::{
    AttachError, ConfigError, CreateError, Full, NameError, Overflow, PublisherId, Start, TypeInfo,
    WaitStrategy,
};

/// Read-only snapshots of topics (`ringcast inspect`, `list`) and garbage collection of
/// dead ones (`ringcast gc`).
pub mod inspect {
    pub use ringcast_core::geometry::MAX_PUBLISHERS;
    pub use ringcast_core::inspect::{
        gc, inspect, remove, GcOutcome, LaneInfo, SubscriberInfo, TopicInfo,
    };
    pub use ringcast_core::layout::LAYOUT_VERSION;
    pub use ringcast_core::Geometry;
}

/// Topic names: the rules, the default prefix, and listing the topics under a prefix.
pub mod name {
    pub use ringcast_core::name::{
        list_topics, validate_prefix, validate_topic, DEFAULT_PREFIX, MAX_TOPIC_LEN, SHM_DIR,
    };
}
pub use ringcast_publisher::{
    type_info_of, SlotSerializer, TypedPublisher, TypedSendError, DEFAULT_SCRATCH_BYTES,
};
pub use ringcast_publisher::{Loan, Publisher, PublisherConfig, SendError};
pub use ringcast_subscriber::{
    Drained, Kept, OwnedSample, RecvError, RecvTimeoutError, Retained, Sample, SampleStream,
    Subscriber, SubscriberOptions, TryRecvError,
};
pub use ringcast_subscriber::{SlotValidator, TypedRecvError, TypedSample, TypedSubscriber};
/// Request and response between processes: a [`Server`] per service, any number of
/// [`Client`]s (see [`ringcast_service`] for how it is built, and an example).
pub mod service {
    pub use ringcast_service::wire::{
        parse_topic, validate_service, ServiceTopic, HEADER, MAX_SERVICE_LEN,
    };
    pub use ringcast_service::*;
}
pub use ringcast_service::{
    CallError, CallId, Client, ClientOptions, ConnectError, Request, RespondError, Responder,
    Response, ResponseLoan, ServeError, Server, ServerConfig, ServerRecvError, TypedCallError,
    TypedClient, TypedRequest, TypedRespondError, TypedResponse, TypedServer, TypedServerRecvError,
};
/// The rkyv that typed topics use: derive message types with it
/// (`#[rkyv(crate = ringcast::rkyv)]` when you do not depend on rkyv yourself).
pub use rkyv;
