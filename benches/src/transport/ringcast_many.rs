//! The rows with several publishers into one subscriber: on one shared topic (lanes, the
//! `ringcast-mpsc-N` rows) against the hand-made alternative, the same publishers each on
//! an exclusive topic of its own with the subscriber waiting on all of them in one
//! [`WaitSet`] (the `ringcast-topics-N` rows). Both kinds run in the same interleaved
//! rounds and `ringcast-mpsc-N` is reported as a ratio to `ringcast-topics-N` (in
//! throughput, `ringcast-shared` is the one-publisher lanes row, against
//! `ringcast-topics-1`).
//!
//! | row | publishers | topics | scenarios |
//! |---|---|---|---|
//! | `ringcast-mpsc-1` | 1 | one topic admitting 4 publishers | pingpong |
//! | `ringcast-mpsc-2`, `-4` | 2, 4 | one topic admitting 4 publishers, a lane each | pingpong, throughput |
//! | `ringcast-topics-1`, `-2`, `-4` | 1, 2, 4 | one exclusive topic each, all in the subscriber's `WaitSet` | pingpong, throughput |
//!
//! Options, the same for both kinds: `Block`, slots and slot size as every ringcast row
//! ([`slots_for`]), subscribers with `Start::Oldest` and `release_batch(16)`. The one
//! subscriber busy-spins ([`WaitStrategy::BusySpin`]; the wait set with that strategy): it
//! has a CPU of its own. The publishers are threads of one process, which is pinned to
//! the other CPU like every process of the suite, so they share that CPU: on a 2-core
//! machine these rows measure what lanes cost against a wait set, and their fairness, not
//! a parallel speed-up.
//!
//! * **Throughput** (child: the publishers; parent: the subscriber): every publisher
//!   thread runs the throughput producer (warm-up, back-to-back data, then its own stop
//!   message), writing every payload byte into its loan; a `Block` publisher facing a full
//!   ring busy-spins. The subscriber counts data messages from all publishers, from the
//!   first data message to the last publisher's stop (it ends once every publisher has
//!   sent its stop), so the figure is messages delivered by all publishers together.
//! * **Ping-pong** (parent: the publishers, each the initiator of its own ping-pong;
//!   child: the subscriber): each publisher thread sends a message (header only, the
//!   loan path) and waits for its reply on a reply topic of its own (an exclusive topic per
//!   publisher), then sends the next. The subscriber answers every message on the reply
//!   topic of its sender: on the shared topic it finds the sender by
//!   [`Sample::publisher`](ringcast::Sample::publisher)'s lane, in the wait set by the
//!   member it came from. The publishers wait for their replies with
//!   [`WaitStrategy::Park`] (they share a CPU, and a spinning one would hold it from the
//!   others): a publisher sleeps on the futex unless the reply is there by the time it has
//!   announced its sleep, so a round trip may include a futex wake-up. The row's figure is the
//!   round trip of one publisher's message, every publisher's round trips merged into one
//!   histogram (reported halved, as one-way, like every ping-pong row).
//!
//! The hand-made wait set serves a member until it is empty or has given
//! [`ringcast::LANE_QUANTUM`] messages in a row, then the next member with messages,
//! which is what a subscriber of a shared topic does with its lanes.
//!
//! These rows are measured at [`MANY_PAYLOAD`] only.

use hdrhistogram::Histogram;
use ringcast::{
    Key, Overflow, Publisher, PublisherConfig, RecvError, Start, Subscriber, SubscriberOptions,
    TryRecvError, WaitSet, WaitStrategy, LANE_QUANTUM,
};

use super::ringcast::{slots_for, topic, unique_base, PREFIX, RELEASE_BATCH};
use super::{Endpoint, Link, LinkSpec, Tag, Transport, PEER_TIMEOUT};
use crate::error::{BenchError, Result};
use crate::scenario::{pingpong, throughput, Scenario, Timing};

/// The one payload of these rows, in bytes.
pub const MANY_PAYLOAD: usize = 64;

/// Publishers a shared topic admits (as `ringcast-shared`), whatever the row's count.
const LANES: u64 = 4;

/// Each lanes row and the hand-made alternative it is compared with, by scenario
/// (`ringcast-shared` is the one-publisher lanes row in throughput; in ping-pong it is a
/// spinning round trip, which `ringcast-mpsc-1` is not).
pub const VS_TOPICS: &[(Scenario, &str, &str)] = &[
    (Scenario::Throughput, "ringcast-shared", "ringcast-topics-1"),
    (Scenario::Throughput, "ringcast-mpsc-2", "ringcast-topics-2"),
    (Scenario::Throughput, "ringcast-mpsc-4", "ringcast-topics-4"),
    (Scenario::PingPong, "ringcast-mpsc-1", "ringcast-topics-1"),
    (Scenario::PingPong, "ringcast-mpsc-2", "ringcast-topics-2"),
    (Scenario::PingPong, "ringcast-mpsc-4", "ringcast-topics-4"),
];

/// How the publishers reach the subscriber.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fan {
    /// One shared topic, a lane per publisher.
    Lanes,
    /// An exclusive topic per publisher, all in the subscriber's wait set.
    Topics,
}

/// One row.
pub struct Many {
    name: &'static str,
    fan: Fan,
    publishers: usize,
    scenarios: &'static [Scenario],
}

const BOTH: &[Scenario] = &[Scenario::PingPong, Scenario::Throughput];

/// `ringcast-mpsc-1`: one publisher on a shared topic (ping-pong; in throughput that
/// row is `ringcast-shared`).
pub const MPSC_1: Many = Many {
    name: "ringcast-mpsc-1",
    fan: Fan::Lanes,
    publishers: 1,
    scenarios: &[Scenario::PingPong],
};

/// `ringcast-mpsc-2`: two publishers of one topic into one subscriber.
pub const MPSC_2: Many = Many {
    name: "ringcast-mpsc-2",
    fan: Fan::Lanes,
    publishers: 2,
    scenarios: BOTH,
};

/// `ringcast-mpsc-4`: four publishers of one topic into one subscriber.
pub const MPSC_4: Many = Many {
    name: "ringcast-mpsc-4",
    fan: Fan::Lanes,
    publishers: 4,
    scenarios: BOTH,
};

/// `ringcast-topics-1`: one publisher on its own topic, the subscriber in a wait set.
pub const TOPICS_1: Many = Many {
    name: "ringcast-topics-1",
    fan: Fan::Topics,
    publishers: 1,
    scenarios: BOTH,
};

/// `ringcast-topics-2`: two publishers on a topic each, one subscriber's wait set.
pub const TOPICS_2: Many = Many {
    name: "ringcast-topics-2",
    fan: Fan::Topics,
    publishers: 2,
    scenarios: BOTH,
};

/// `ringcast-topics-4`: four publishers on a topic each, one subscriber's wait set.
pub const TOPICS_4: Many = Many {
    name: "ringcast-topics-4",
    fan: Fan::Topics,
    publishers: 4,
    scenarios: BOTH,
};

fn ringcast_err(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Ringcast(format!("{what}: {e}"))
}

fn options(wait: WaitStrategy) -> SubscriberOptions {
    SubscriberOptions::default()
        .prefix(PREFIX)
        .start(Start::Oldest)
        .wait_strategy(wait)
        .release_batch(RELEASE_BATCH)
}

fn config(payload: usize, lanes: u64) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(PREFIX)
        .slots(slots_for(payload))
        .slot_size(payload as u64)
        .overflow(Overflow::Block)
        .wait_strategy(WaitStrategy::BusySpin)
        .max_publishers(lanes)
}

fn attach(name: &str, wait: WaitStrategy) -> Result<Subscriber> {
    Subscriber::attach_wait(name, options(wait), PEER_TIMEOUT)
        .map_err(|e| ringcast_err(&format!("attach {name}"), e))
}

/// How many leading bytes of a message a send writes and a receive reads: the tag in
/// ping-pong (the loan path), every byte in throughput (as `ringcast-spin`).
fn touched(scenario: Scenario) -> usize {
    match scenario {
        Scenario::Throughput => usize::MAX,
        Scenario::PingPong | Scenario::Fanout => Tag::LEN,
    }
}

fn reply_topic(base: &str, i: usize) -> String {
    topic(base, &format!("rep-{i}"))
}

impl Many {
    /// The topic publisher `i` sends on: the shared one, or its own.
    fn topic(&self, base: &str, direction: &str, i: usize) -> String {
        match self.fan {
            Fan::Lanes => topic(base, direction),
            Fan::Topics => topic(base, &format!("{direction}-{i}")),
        }
    }

    /// The row's publishers of `direction`, publisher `i` on lane `i` of a shared topic
    /// (the first free lane of a fresh topic) or on topic `i`.
    fn publishers(&self, base: &str, direction: &str, spec: &LinkSpec) -> Result<Vec<Out>> {
        let lanes = match self.fan {
            Fan::Lanes => LANES,
            Fan::Topics => 1,
        };
        (0..self.publishers)
            .map(|i| {
                let name = self.topic(base, direction, i);
                let p = Publisher::create(&name, config(spec.payload, lanes))
                    .map_err(|e| ringcast_err(&format!("create {name}"), e))?;
                if self.fan == Fan::Lanes && p.id().lane as usize != i {
                    return Err(BenchError::Protocol(format!(
                        "publisher {i} of {name} took lane {}",
                        p.id().lane
                    )));
                }
                Ok(Out::new(p, touched(spec.scenario)))
            })
            .collect()
    }

    /// The subscriber's side: every publisher's topic of `direction`.
    fn inbox(&self, base: &str, direction: &str) -> Inbox {
        let topics = match self.fan {
            Fan::Lanes => vec![topic(base, direction)],
            Fan::Topics => (0..self.publishers)
                .map(|i| self.topic(base, direction, i))
                .collect(),
        };
        Inbox::Lazy {
            fan: self.fan,
            topics,
            publishers: self.publishers,
        }
    }
}

impl Transport for Many {
    fn name(&self) -> &'static str {
        self.name
    }

    fn supports(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }

    fn payloads(&self) -> Option<&'static [usize]> {
        Some(&[MANY_PAYLOAD])
    }

    fn spins(&self) -> bool {
        true
    }

    fn open(&self, spec: &LinkSpec) -> Result<Link> {
        if spec.payload < Tag::LEN {
            return Err(BenchError::Unsupported(format!(
                "{} needs at least {} bytes per message",
                self.name,
                Tag::LEN
            )));
        }
        let base = unique_base();
        let local: Box<dyn Endpoint> = match spec.scenario {
            Scenario::PingPong => {
                let clients = self
                    .publishers(&base, "req", spec)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, out)| Client {
                        out,
                        reply: Reply::Lazy(reply_topic(&base, i)),
                    })
                    .collect();
                Box::new(Clients { clients })
            }
            Scenario::Throughput => Box::new(Receiver {
                inbox: self.inbox(&base, "data"),
                head: touched(spec.scenario),
                replies: Vec::new(),
                last: 0,
            }),
            Scenario::Fanout => {
                return Err(BenchError::Unsupported(format!(
                    "{} has no fan-out",
                    self.name
                )))
            }
        };
        Ok(Link {
            local,
            child_fds: Vec::new(),
            child_args: vec![base],
        })
    }

    fn attach(&self, spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        let base = args
            .first()
            .ok_or_else(|| BenchError::Protocol("missing topic argument".into()))?;
        match spec.scenario {
            Scenario::PingPong => {
                let replies = (0..self.publishers)
                    .map(|i| {
                        let name = reply_topic(base, i);
                        Publisher::create(&name, config(spec.payload, 1))
                            .map(|p| Out::new(p, touched(spec.scenario)))
                            .map_err(|e| ringcast_err(&format!("create {name}"), e))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut inbox = self.inbox(base, "req");
                inbox.attach()?;
                Ok(Box::new(Receiver {
                    inbox,
                    head: touched(spec.scenario),
                    replies,
                    last: 0,
                }))
            }
            Scenario::Throughput => Ok(Box::new(Producers {
                outs: self.publishers(base, "data", spec)?,
            })),
            Scenario::Fanout => Err(BenchError::Unsupported(format!(
                "{} has no fan-out",
                self.name
            ))),
        }
    }
}

/// One publisher: its first send waits for the subscriber.
struct Out {
    publisher: Publisher,
    peer_ready: bool,
    /// Leading bytes of each message written (see [`touched`]).
    head: usize,
}

impl Out {
    fn new(publisher: Publisher, head: usize) -> Out {
        Out {
            publisher,
            peer_ready: false,
            head,
        }
    }

    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        if !self.peer_ready {
            self.publisher
                .wait_for_subscribers(1, PEER_TIMEOUT)
                .map_err(|_| BenchError::Timeout {
                    what: "the peer's ringcast subscriber to attach",
                    secs: PEER_TIMEOUT.as_secs(),
                })?;
            self.peer_ready = true;
        }
        let head = self.head.min(msg.len());
        let mut loan = self.publisher.loan();
        if msg.len() > loan.len() {
            // Dropping the loan uncommitted publishes nothing.
            return Err(BenchError::Protocol(format!(
                "a {}-byte message does not fit a {}-byte slot",
                msg.len(),
                loan.len()
            )));
        }
        loan[..head].copy_from_slice(&msg[..head]);
        loan.commit(msg.len());
        Ok(())
    }
}

/// A receive on `topic` failed.
#[cold]
fn recv_failed(topic: &str, e: RecvError) -> BenchError {
    match e {
        RecvError::Disconnected => {
            BenchError::Protocol(format!("the publishers of {topic} closed it or died"))
        }
        e => ringcast_err(&format!("receive on {topic}"), e),
    }
}

/// Copies the first `head` bytes of a received message into `msg`.
fn got(sample: &[u8], msg: &mut [u8], head: usize) -> Result<()> {
    if sample.len() != msg.len() {
        return Err(BenchError::Protocol(format!(
            "received a {}-byte message, expected {}",
            sample.len(),
            msg.len()
        )));
    }
    let head = head.min(msg.len());
    msg[..head].copy_from_slice(&sample[..head]);
    Ok(())
}

/// The one subscriber's view of every publisher.
enum Inbox {
    /// Attach on the first receive.
    Lazy {
        fan: Fan,
        topics: Vec<String>,
        publishers: usize,
    },
    /// The shared topic: the source of a message is its lane.
    Lanes {
        sub: Subscriber,
        /// Publishers that have not sent their stop message yet.
        open: usize,
    },
    /// A topic per publisher in one wait set: the source is the member's index.
    Topics {
        set: WaitSet,
        /// Member `i`, until its publisher's stop message (then it leaves the set).
        keys: Vec<Option<Key<Subscriber>>>,
        /// The member being served, and how many messages it gave in a row.
        current: usize,
        served: usize,
        open: usize,
    },
}

impl Inbox {
    #[cold]
    fn attach(&mut self) -> Result<()> {
        let Inbox::Lazy {
            fan,
            topics,
            publishers,
        } = self
        else {
            return Ok(());
        };
        let open = *publishers;
        *self = match fan {
            Fan::Lanes => Inbox::Lanes {
                sub: attach(&topics[0], WaitStrategy::BusySpin)?,
                open,
            },
            Fan::Topics => {
                let mut set = WaitSet::new().strategy(WaitStrategy::BusySpin);
                let mut keys = Vec::with_capacity(topics.len());
                for name in topics.iter() {
                    let sub = attach(name, WaitStrategy::BusySpin)?;
                    let key = set
                        .add(sub)
                        .map_err(|e| ringcast_err("wait set", e.refusal))?;
                    keys.push(Some(key));
                }
                Inbox::Topics {
                    set,
                    keys,
                    current: 0,
                    served: 0,
                    open,
                }
            }
        };
        Ok(())
    }

    /// Receives the next message from any publisher into `msg` (its first `head` bytes)
    /// and returns its source. A publisher's stop message is returned only when it is the
    /// last publisher's; the others are taken in here (that publisher is done).
    #[inline]
    fn recv(&mut self, msg: &mut [u8], head: usize) -> Result<usize> {
        if matches!(self, Inbox::Lazy { .. }) {
            self.attach()?;
        }
        loop {
            let source = self.next(msg, head)?;
            if Tag::read(msg)? != Tag::Stop {
                return Ok(source);
            }
            let last = match self {
                Inbox::Lazy { .. } => true,
                Inbox::Lanes { open, .. } => {
                    *open -= 1;
                    *open == 0
                }
                Inbox::Topics {
                    set, keys, open, ..
                } => {
                    if let Some(key) = keys.get_mut(source).and_then(Option::take) {
                        set.remove(key);
                    }
                    *open -= 1;
                    *open == 0
                }
            };
            if last {
                return Ok(source);
            }
        }
    }

    #[inline]
    fn next(&mut self, msg: &mut [u8], head: usize) -> Result<usize> {
        match self {
            Inbox::Lazy { .. } => Err(BenchError::Protocol("not attached".into())),
            Inbox::Lanes { sub, .. } => {
                let err = match sub.recv() {
                    Ok(sample) => {
                        got(&sample, msg, head)?;
                        return Ok(sample.publisher().lane as usize);
                    }
                    Err(e) => e,
                };
                Err(recv_failed(sub.topic(), err))
            }
            Inbox::Topics {
                set,
                keys,
                current,
                served,
                ..
            } => loop {
                // One pass over the members from the current one; then wait.
                for _ in 0..keys.len() {
                    if *served < LANE_QUANTUM as usize {
                        if let Some(sub) = keys[*current].and_then(|k| set.get_mut(k)) {
                            let err = match sub.try_recv() {
                                Ok(sample) => {
                                    got(&sample, msg, head)?;
                                    *served += 1;
                                    return Ok(*current);
                                }
                                Err(TryRecvError::Empty) => None,
                                Err(e) => Some(e),
                            };
                            if let Some(e) = err {
                                return Err(ringcast_err(
                                    &format!("receive on {}", sub.topic()),
                                    e,
                                ));
                            }
                        }
                    }
                    *current = (*current + 1) % keys.len();
                    *served = 0;
                }
                let woke = set
                    .wait_timeout(PEER_TIMEOUT)
                    .map_err(|e| ringcast_err("wait for a message from any publisher", e))?;
                if woke.timed_out() {
                    return Err(BenchError::Timeout {
                        what: "a message from any publisher",
                        secs: PEER_TIMEOUT.as_secs(),
                    });
                }
            },
        }
    }
}

/// The subscriber's end: the throughput consumer (no replies), or the ping-pong
/// responder answering each message on its sender's reply topic.
struct Receiver {
    inbox: Inbox,
    head: usize,
    /// Ping-pong: reply publisher `i` answers source `i`.
    replies: Vec<Out>,
    /// The source of the last message received.
    last: usize,
}

impl Endpoint for Receiver {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let n = self.replies.len();
        match self.replies.get_mut(self.last) {
            Some(out) => out.send(msg),
            None => Err(BenchError::Protocol(format!(
                "no reply topic for publisher {} ({n} reply topics)",
                self.last
            ))),
        }
    }

    #[inline]
    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        self.last = self.inbox.recv(msg, self.head)?;
        Ok(())
    }
}

/// The throughput publishers (child): a thread each.
struct Producers {
    outs: Vec<Out>,
}

/// One throughput publisher, as an endpoint the producer loop drives.
struct Producer<'a>(&'a mut Out);

impl Endpoint for Producer<'_> {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.0.send(msg)
    }

    fn recv(&mut self, _msg: &mut [u8]) -> Result<()> {
        Err(BenchError::Protocol(
            "a throughput publisher only sends".into(),
        ))
    }
}

/// Runs `work` on every item on a thread of its own and returns their results in order.
pub(super) fn on_threads<T: Send, R: Send>(
    items: &mut [T],
    work: impl Fn(&mut T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = items
            .iter_mut()
            .map(|item| s.spawn(move || work(item)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| BenchError::Protocol("a thread panicked".into()))?
            })
            .collect()
    })
}

impl Endpoint for Producers {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        match self.outs.first_mut() {
            Some(out) => out.send(msg),
            None => Err(BenchError::Protocol("no publisher".into())),
        }
    }

    fn recv(&mut self, _msg: &mut [u8]) -> Result<()> {
        Err(BenchError::Protocol("the publishers only send".into()))
    }

    fn produce(&mut self, payload: usize, timing: &Timing) -> Result<()> {
        on_threads(&mut self.outs, |out| {
            throughput::producer(&mut Producer(out), payload, timing)
        })
        .map(drop)
    }
}

/// A reply subscriber: attached on the first receive (the child creates the topic).
enum Reply {
    Lazy(String),
    Attached(Subscriber),
}

/// One ping-pong publisher (parent): sends on its lane or topic, waits for the reply on
/// its own reply topic, asleep.
struct Client {
    out: Out,
    reply: Reply,
}

impl Endpoint for Client {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.out.send(msg)
    }

    #[inline]
    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        if let Reply::Lazy(name) = &self.reply {
            self.reply = Reply::Attached(attach(name, WaitStrategy::Park)?);
        }
        let Reply::Attached(sub) = &mut self.reply else {
            return Err(BenchError::Protocol("reply topic not attached".into()));
        };
        let err = match sub.recv() {
            Ok(sample) => return got(&sample, msg, Tag::LEN),
            Err(e) => e,
        };
        Err(recv_failed(sub.topic(), err))
    }
}

/// The ping-pong publishers (parent): a thread each, each its own initiator.
struct Clients {
    clients: Vec<Client>,
}

impl Endpoint for Clients {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        match self.clients.first_mut() {
            Some(c) => c.send(msg),
            None => Err(BenchError::Protocol("no publisher".into())),
        }
    }

    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        match self.clients.first_mut() {
            Some(c) => c.recv(msg),
            None => Err(BenchError::Protocol("no publisher".into())),
        }
    }

    /// Every publisher's round trips, merged.
    fn ping(&mut self, payload: usize, timing: &Timing) -> Result<Histogram<u64>> {
        let hists = on_threads(&mut self.clients, |c| {
            pingpong::initiator(c, payload, timing)
        })?;
        let mut hists = hists.into_iter();
        let mut merged = hists
            .next()
            .ok_or_else(|| BenchError::Protocol("no publisher".into()))?;
        for h in hists {
            merged
                .add(&h)
                .map_err(|e| BenchError::Protocol(format!("merge histograms: {e}")))?;
        }
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport;

    #[test]
    fn every_lanes_row_has_its_alternative_in_the_same_scenario() {
        for &(scenario, lanes, topics) in VS_TOPICS {
            for name in [lanes, topics] {
                let t = transport::by_name(name).unwrap_or_else(|| panic!("{name} is no row"));
                assert!(t.supports(scenario), "{name} has no {}", scenario.name());
            }
        }
    }
}
