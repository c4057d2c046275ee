//! The ringcast rows: `ringcast-spin`, `ringcast-futex` and `ringcast-overwrite`.
//!
//! | row | policy | subscribers wait by | scenarios |
//! |---|---|---|---|
//! | `ringcast-spin` | `Block` | [`WaitStrategy::BusySpin`] | pingpong, throughput |
//! | `ringcast-futex` | `Block` | [`WaitStrategy::Park`]: a futex sleep between messages | pingpong, throughput, fanout |
//! | `ringcast-overwrite` | `Overwrite` | [`WaitStrategy::BusySpin`] | throughput |
//! | `ringcast-shared` | `Block`, a topic that admits 4 publishers, one publishing | [`WaitStrategy::BusySpin`] | pingpong, throughput |
//!
//! `ringcast-shared` is compared with `ringcast-spin` (interleaved): what a shared topic
//! costs with one publisher. The rows with several publishers (`ringcast-mpsc-N`) and
//! their hand-made alternative (`ringcast-topics-N`) are in [`super::ringcast_many`].
//!
//! A `Block` publisher facing a full ring waits the same way as the row's
//! subscribers (an `Overwrite` publisher never waits).
//!
//! # The loan path: payloads are produced and consumed in place
//!
//! The scenarios hand `send` a whole message buffer, but ringcast's point is
//! that a publisher writes its message straight into a loaned slot of shared
//! memory and a `Block` subscriber reads it there. So these rows measure a
//! zero-copy application: in ping-pong and fan-out, `send` loans a slot, writes
//! only the header the scenarios read (the 8-byte [`Tag`]; in fan-out also the
//! 8-byte send time) and commits `msg.len()` bytes, leaving the rest of the slot
//! as it is (the application's payload, "produced in place"); `recv` under
//! `Block` checks the length and reads the header in place, without copying the
//! payload. Throughput rows are the exception: there the sender writes every
//! payload byte into the loan and the receiver reads every byte out of the slot
//! (one pass each, as an application producing and consuming data would), so
//! bytes/s means bytes moved and compares fairly with memcpy. The
//! kernel baselines necessarily copy every payload byte twice (into the kernel
//! and out of it), so their figures include touching the payload and these do
//! not: a ringcast row shows the cost of moving a message, which the loan path
//! makes independent of its size. `ringcast-overwrite` is the exception on the
//! receiving side: under `Overwrite` the library hands out a verified copy (the
//! whole payload copied out with atomic word loads, then the slot's stamp
//! re-checked), so its rows include one copy per delivered message, and a
//! lapped subscriber's losses are counted apart ([`Endpoint::lost`]), never as
//! delivered. The report prints a note saying this under the table.
//!
//! # Topics and start-up
//!
//! Topics are one-directional, so a link is one topic per direction: `down`
//! (parent to child), `up` (child to parent), or `data` (throughput: child to
//! parent), `fan` (fan-out: parent to every child). Names are
//! `<parent pid>-<counter>.<direction>` under the private segment prefix
//! [`PREFIX`], so concurrent runs never collide. Each process creates the
//! topics it publishes (a publisher's liveness lock belongs to its process):
//! the parent in [`Transport::open`], the child in [`Transport::attach`] before
//! it reports ready. The child attaches its subscriber eagerly, the parent
//! lazily on its first receive (the child's topics exist once it is ready);
//! both attach with [`Start::Oldest`], so nothing committed before the attach is
//! missed, and every publisher's first send waits until its subscribers are
//! attached (`wait_for_subscribers`). A publisher removes its segment when it
//! is dropped; a killed run's leftovers are removed by the suite's start-up
//! garbage collection ([`collect_garbage`]).
//!
//! The hot path uses the untimed calls (`loan`, `recv`): a deadline would cost
//! a clock read per message. Nothing can hang for all that: a `Block` loan
//! evicts a dead subscriber instead of waiting for it, a receive returns
//! `Disconnected` once the publisher is gone (closed or dead), and the harness
//! kills a child that overruns its deadline.

use std::sync::atomic::{AtomicU32, Ordering};

use ringcast::{
    Overflow, Publisher, PublisherConfig, RecvError, Start, Subscriber, SubscriberOptions,
    WaitStrategy,
};

use super::{Endpoint, Link, LinkSpec, Tag, Transport, PEER_TIMEOUT};
use crate::error::{BenchError, Result};
use crate::scenario::{fanout, Scenario};

/// Segment-name prefix of every benchmark topic: `/dev/shm/rcbench.<topic>`.
pub const PREFIX: &str = "rcbench";

/// Bytes of ring a link aims at: the slot count is this divided by the slot
/// size, clamped to [`MIN_SLOTS`] ..= [`MAX_SLOTS`] (64 slots up to 64 KiB
/// payloads, 8 slots of 1 MiB).
const RING_BYTES: u64 = 4 << 20;
/// Fewest slots in a ring.
const MIN_SLOTS: u64 = 8;
/// Most slots in a ring.
const MAX_SLOTS: u64 = 64;

/// One ringcast row: a policy and a wait strategy.
pub struct Ringcast {
    name: &'static str,
    overflow: Overflow,
    wait: WaitStrategy,
    scenarios: &'static [Scenario],
    /// Publishers the row's topics admit (`max_publishers`).
    lanes: u64,
}

/// `ringcast-spin`: `Block`, busy-spinning subscribers.
pub const SPIN: Ringcast = Ringcast {
    name: "ringcast-spin",
    overflow: Overflow::Block,
    wait: WaitStrategy::BusySpin,
    scenarios: &[Scenario::PingPong, Scenario::Throughput],
    lanes: 1,
};

/// `ringcast-futex`: `Block`, subscribers that sleep on the futex between messages.
/// Fan-out uses it: with more processes than CPUs, spinning subscribers would
/// take the CPU from the ones with work to do.
pub const FUTEX: Ringcast = Ringcast {
    name: super::RINGCAST_FUTEX,
    overflow: Overflow::Block,
    wait: WaitStrategy::Park,
    scenarios: &[Scenario::PingPong, Scenario::Throughput, Scenario::Fanout],
    lanes: 1,
};

/// `ringcast-overwrite`: `Overwrite`, busy-spinning subscribers that receive
/// verified copies (throughput only: a ping-pong has one message in flight and
/// never laps anybody, so it would repeat `ringcast-spin` plus a copy).
pub const OVERWRITE: Ringcast = Ringcast {
    name: "ringcast-overwrite",
    overflow: Overflow::Overwrite,
    wait: WaitStrategy::BusySpin,
    scenarios: &[Scenario::Throughput],
    lanes: 1,
};

/// `ringcast-shared`: `ringcast-spin` on topics that admit 4 publishers, one publishing.
pub const SHARED: Ringcast = Ringcast {
    name: "ringcast-shared",
    overflow: Overflow::Block,
    wait: WaitStrategy::BusySpin,
    scenarios: &[Scenario::PingPong, Scenario::Throughput],
    lanes: 4,
};

/// Removes the segments of earlier runs under [`PREFIX`] whose publisher is
/// dead (a killed run); live ones (a concurrent run) are left alone. Returns
/// how many were removed.
pub fn collect_garbage() -> Result<usize> {
    let mut removed = 0;
    // The `bridge` row's child stands for another host with a prefix of its own.
    for prefix in [PREFIX, super::net::PEER_PREFIX] {
        let outcomes = ringcast::inspect::gc(prefix)
            .map_err(|e| BenchError::sys(format!("garbage-collect /dev/shm/{prefix}.*"), e))?;
        removed += outcomes
            .iter()
            .filter(|(_, o)| matches!(o, ringcast::inspect::GcOutcome::Removed))
            .count();
    }
    Ok(removed)
}

/// A topic base name unique to this process and link: `<pid>-<counter>`.
pub(crate) fn unique_base() -> String {
    /// Links opened by this process so far.
    static LINKS: AtomicU32 = AtomicU32::new(0);
    // Relaxed: only uniqueness matters, which the atomic increment gives alone.
    let n = LINKS.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

pub(crate) fn topic(base: &str, direction: &str) -> String {
    format!("{base}.{direction}")
}

/// The subscribers' `release_batch`: a quarter of the largest ring the rows use.
pub(super) const RELEASE_BATCH: u64 = 16;

/// Slots for a payload: about [`RING_BYTES`] of ring, a power of two.
pub(super) fn slots_for(payload: usize) -> u64 {
    let fit = RING_BYTES / (payload as u64).max(1);
    // The largest power of two not above `fit` (fit >= 1 since payloads are <= 1 GiB).
    let pow2 = 1u64 << (63 - fit.max(1).leading_zeros());
    pow2.clamp(MIN_SLOTS, MAX_SLOTS)
}

impl Ringcast {
    /// The header the scenario reads: the smallest message it can use.
    fn header_len(scenario: Scenario) -> usize {
        match scenario {
            Scenario::Fanout => fanout::HEADER_LEN,
            Scenario::PingPong | Scenario::Throughput => Tag::LEN,
        }
    }

    /// How many leading bytes of each message a send writes and a receive reads. Latency
    /// rows touch only the header (the loan path: the payload is produced in place);
    /// throughput rows write and read every payload byte, so their bytes/s are bytes
    /// really moved and compare fairly with memcpy and the kernel's copies.
    fn touched_len(scenario: Scenario) -> usize {
        match scenario {
            Scenario::Throughput => usize::MAX,
            Scenario::PingPong | Scenario::Fanout => Self::header_len(scenario),
        }
    }

    /// Creates `topic` with one slot of exactly `payload` bytes per message;
    /// its first send will wait for `subscribers` subscribers.
    fn publish(&self, topic: &str, payload: usize, subscribers: usize) -> Result<Tx> {
        let config = self.config(payload);
        let publisher = Publisher::create(topic, config)
            .map_err(|e| BenchError::Ringcast(format!("create {topic}: {e}")))?;
        Ok(Tx {
            publisher,
            subscribers,
            peer_ready: false,
        })
    }

    fn config(&self, payload: usize) -> PublisherConfig {
        PublisherConfig::default()
            .prefix(PREFIX)
            .slots(slots_for(payload))
            .slot_size(payload as u64)
            .overflow(self.overflow)
            .wait_strategy(self.wait)
            .max_publishers(self.lanes)
    }

    /// Subscribers release in runs of up to [`RELEASE_BATCH`] slots (the opt-in a user who
    /// wants small-message throughput would take).
    fn options(&self) -> SubscriberOptions {
        SubscriberOptions::default()
            .prefix(PREFIX)
            .start(Start::Oldest)
            .wait_strategy(self.wait)
            .release_batch(RELEASE_BATCH)
    }

    fn end(&self, scenario: Scenario, tx: Option<Tx>, rx: Rx) -> Box<dyn Endpoint> {
        Box::new(RingcastEnd {
            tx,
            rx,
            header: Self::touched_len(scenario),
            lost: 0,
        })
    }
}

impl Transport for Ringcast {
    fn name(&self) -> &'static str {
        self.name
    }

    fn supports(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }

    fn spins(&self) -> bool {
        self.wait == WaitStrategy::BusySpin
    }

    fn open(&self, spec: &LinkSpec) -> Result<Link> {
        let header = Self::header_len(spec.scenario);
        if spec.payload < header {
            return Err(BenchError::Unsupported(format!(
                "{} needs at least {header} bytes per message in {}",
                self.name,
                spec.scenario.name()
            )));
        }
        let base = unique_base();
        let lazy = |direction| Rx::Lazy {
            topic: topic(&base, direction),
            options: self.options(),
        };
        let (tx, rx) = match spec.scenario {
            Scenario::PingPong => (
                Some(self.publish(&topic(&base, "down"), spec.payload, 1)?),
                lazy("up"),
            ),
            Scenario::Throughput => (None, lazy("data")),
            Scenario::Fanout => (
                Some(self.publish(&topic(&base, "fan"), spec.payload, spec.subscribers)?),
                Rx::None,
            ),
        };
        Ok(Link {
            local: self.end(spec.scenario, tx, rx),
            child_fds: Vec::new(),
            child_args: vec![base],
        })
    }

    fn attach(&self, spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        let base = args
            .first()
            .ok_or_else(|| BenchError::Protocol("missing topic argument".into()))?;
        let subscribe = |direction| -> Result<Rx> {
            let topic = topic(base, direction);
            Subscriber::attach_wait(&topic, self.options(), PEER_TIMEOUT)
                .map(Rx::Attached)
                .map_err(|e| BenchError::Ringcast(format!("attach {topic}: {e}")))
        };
        let (tx, rx) = match spec.scenario {
            Scenario::PingPong => (
                Some(self.publish(&topic(base, "up"), spec.payload, 1)?),
                subscribe("down")?,
            ),
            Scenario::Throughput => (
                Some(self.publish(&topic(base, "data"), spec.payload, 1)?),
                Rx::None,
            ),
            Scenario::Fanout => (None, subscribe("fan")?),
        };
        Ok(self.end(spec.scenario, tx, rx))
    }
}

/// The publishing half of an end.
struct Tx {
    publisher: Publisher,
    /// Subscribers the first send waits for.
    subscribers: usize,
    /// Whether they have been seen attached.
    peer_ready: bool,
}

impl Tx {
    #[cold]
    fn wait_for_peer(&mut self) -> Result<()> {
        self.publisher
            .wait_for_subscribers(self.subscribers, PEER_TIMEOUT)
            .map_err(|_| BenchError::Timeout {
                what: "the peer's ringcast subscribers to attach",
                secs: PEER_TIMEOUT.as_secs(),
            })?;
        self.peer_ready = true;
        Ok(())
    }
}

/// The subscribing half of an end.
enum Rx {
    /// This end only sends.
    None,
    /// Attach on the first receive.
    Lazy {
        topic: String,
        options: SubscriberOptions,
    },
    /// Attached.
    Attached(Subscriber),
}

/// One end of a ringcast link.
struct RingcastEnd {
    tx: Option<Tx>,
    rx: Rx,
    /// Bytes at the start of each message that `send` writes and `recv` reads:
    /// what the scenario looks at (see the module docs).
    header: usize,
    /// Messages lost to lapping (`Overwrite`) so far.
    lost: u64,
}

impl RingcastEnd {
    #[cold]
    fn attach_rx(&mut self) -> Result<()> {
        let sub = match &self.rx {
            Rx::None => return Err(BenchError::Protocol("this ringcast end only sends".into())),
            Rx::Attached(_) => return Ok(()),
            Rx::Lazy { topic, options } => {
                Subscriber::attach_wait(topic, options.clone(), PEER_TIMEOUT)
                    .map_err(|e| BenchError::Ringcast(format!("attach {topic}: {e}")))?
            }
        };
        self.rx = Rx::Attached(sub);
        Ok(())
    }
}

impl Endpoint for RingcastEnd {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(BenchError::Protocol(
                "this ringcast end only receives".into(),
            ));
        };
        if !tx.peer_ready {
            tx.wait_for_peer()?;
        }
        let head = self.header.min(msg.len());
        let mut loan = tx.publisher.loan();
        if msg.len() > loan.len() {
            // Dropping the loan uncommitted publishes nothing.
            return Err(BenchError::Protocol(format!(
                "a {}-byte message does not fit a {}-byte slot",
                msg.len(),
                loan.len()
            )));
        }
        // The loan path: only the header is written (the payload is produced in place),
        // except in throughput rows, whose header is the whole message.
        loan[..head].copy_from_slice(&msg[..head]);
        loan.commit(msg.len());
        Ok(())
    }

    #[inline]
    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        if !matches!(self.rx, Rx::Attached(_)) {
            self.attach_rx()?;
        }
        let Rx::Attached(sub) = &mut self.rx else {
            return Err(BenchError::Protocol(
                "ringcast subscriber not attached".into(),
            ));
        };
        let head = self.header.min(msg.len());
        loop {
            let err = match sub.recv() {
                Ok(sample) => {
                    if sample.len() != msg.len() {
                        return Err(BenchError::Protocol(format!(
                            "received a {}-byte message, expected {}",
                            sample.len(),
                            msg.len()
                        )));
                    }
                    // In place under `Block` (the slot is ours until `sample` drops
                    // and releases it); a verified copy under `Overwrite`.
                    msg[..head].copy_from_slice(&sample[..head]);
                    return Ok(());
                }
                Err(e) => e,
            };
            match err {
                // Lapped: those messages are gone; the next receive gets the oldest
                // intact one.
                RecvError::Lagged(n) => self.lost += n,
                RecvError::Disconnected => {
                    return Err(BenchError::Protocol(format!(
                        "the publisher of {} closed it or died",
                        sub.topic()
                    )))
                }
                e => {
                    return Err(BenchError::Ringcast(format!(
                        "receive on {}: {e}",
                        sub.topic()
                    )))
                }
            }
        }
    }

    fn lost(&self) -> u64 {
        self.lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_hold_about_four_mib_within_8_to_64_slots() {
        assert_eq!(slots_for(8), 64);
        assert_eq!(slots_for(64), 64);
        assert_eq!(slots_for(64 * 1024), 64);
        assert_eq!(slots_for(100 * 1024), 32);
        assert_eq!(slots_for(1 << 20), 8);
    }
}
