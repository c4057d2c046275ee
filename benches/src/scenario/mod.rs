//! The scenarios: what is measured over a link, and how long.
//!
//! * [`pingpong`]: the parent sends a message, the child echoes it back; each
//!   round trip is timed and the one-way latency is reported as half of it.
//! * [`throughput`]: the child sends back to back, the parent counts what
//!   arrives per second; plus the single-core `memcpy` reference.
//! * [`fanout`]: the parent publishes to several subscriber processes, which
//!   time each message one way against the shared monotonic clock and count
//!   what they receive (ringcast only).
//!
//! The loops are generic over the [`Endpoint`](crate::transport::Endpoint) and
//! are entered through its provided methods, so they are compiled once per
//! transport with static calls in the timed path.

pub mod fanout;
pub mod pingpong;
pub mod throughput;

use std::time::Duration;

/// A kind of measurement; its name is the `scenario` field of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// One-way latency, from round trips between two processes.
    PingPong,
    /// Messages and bytes per second from one producer to one consumer.
    Throughput,
    /// One publisher, several subscriber processes: one-way latency to each
    /// subscriber and delivered messages per second in total.
    Fanout,
}

impl Scenario {
    /// Every scenario, in the order the suite runs them.
    pub const ALL: [Scenario; 3] = [Scenario::PingPong, Scenario::Throughput, Scenario::Fanout];

    /// The row and command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::PingPong => "pingpong",
            Scenario::Throughput => "throughput",
            Scenario::Fanout => "fanout",
        }
    }

    /// Parses a row name back (used by the child process).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// How long each phase of one measurement lasts.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Traffic that is sent but not counted: faults pages in, warms caches,
    /// lets the CPUs leave idle states.
    pub warmup: Duration,
    /// The counted phase.
    pub measure: Duration,
}

impl Timing {
    /// The full suite's phases.
    pub const FULL: Timing = Timing {
        warmup: Duration::from_millis(250),
        measure: Duration::from_millis(2000),
    };

    /// `--quick` phases: a smoke run, not a result to quote.
    pub const QUICK: Timing = Timing {
        warmup: Duration::from_millis(50),
        measure: Duration::from_millis(200),
    };
}

/// Saturating conversion of a duration to whole nanoseconds.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
