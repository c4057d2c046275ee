//! The ringcast rows whose receiver waits through the multi-topic machinery: ping-pong
//! only, `Block`, sleeping (never spinning) receivers, compared with `ringcast-futex`.
//!
//! | row | the receiver waits by | `subscribers` column |
//! |---|---|---|
//! | `ringcast-waitset` | a [`WaitSet`] (`Park`) holding the live topic and `n - 1` idle topics of its own | set size `n`: 1, 8, 64 |
//! | `ringcast-waitset-paced` | the same, with a 200 µs pause between round trips (outside the timed interval), so every message wakes a sleeping receiver | set size `n`: 1, 64 |
//! | `ringcast-async` | `recv_async` on a tokio current-thread runtime, woken by the process's reactor | 1 |
//!
//! Both ends of the ping-pong receive this way. Sends are the same loan path as the
//! other ringcast rows (only the scenario's header is written).

use std::time::Duration;

use ringcast::{
    Key, Overflow, Publisher, PublisherConfig, RecvError, Start, Subscriber, SubscriberOptions,
    TryRecvError, WaitSet, WaitStrategy,
};

use super::ringcast::{slots_for, topic, unique_base, PREFIX};
use super::{Endpoint, Link, LinkSpec, Tag, Transport, PEER_TIMEOUT};
use crate::error::{BenchError, Result};
use crate::scenario::Scenario;

/// How the receiver waits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    WaitSet,
    Async,
}

/// One row.
pub struct Waiting {
    name: &'static str,
    mode: Mode,
    sizes: &'static [usize],
    pace: Option<Duration>,
}

/// `ringcast-waitset`.
pub const WAITSET: Waiting = Waiting {
    name: "ringcast-waitset",
    mode: Mode::WaitSet,
    sizes: &[1, 8, 64],
    pace: None,
};

/// `ringcast-waitset-paced`: back-to-back round trips let a large set's waiter see the
/// reply while it is still announcing itself on every topic (it never sleeps); a pause
/// long enough for the responder to fall asleep makes every message a wake-up through
/// the whole set.
pub const WAITSET_PACED: Waiting = Waiting {
    name: "ringcast-waitset-paced",
    mode: Mode::WaitSet,
    sizes: &[1, 64],
    pace: Some(Duration::from_micros(200)),
};

/// `ringcast-async`.
pub const ASYNC: Waiting = Waiting {
    name: "ringcast-async",
    mode: Mode::Async,
    sizes: &[1],
    pace: None,
};

fn ringcast_err(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Ringcast(format!("{what}: {e}"))
}

fn options() -> SubscriberOptions {
    SubscriberOptions::default()
        .prefix(PREFIX)
        .start(Start::Oldest)
        .wait_strategy(WaitStrategy::Park)
}

fn publish(topic: &str, payload: usize) -> Result<Publisher> {
    let config = PublisherConfig::default()
        .prefix(PREFIX)
        .slots(slots_for(payload))
        .slot_size(payload as u64)
        .overflow(Overflow::Block)
        .wait_strategy(WaitStrategy::Park);
    Publisher::create(topic, config).map_err(|e| ringcast_err(&format!("create {topic}"), e))
}

impl Waiting {
    /// One end: publishes `send`, will receive `recv` (attached now, or on the first
    /// receive if `lazy`), with `set_size - 1` idle topics of its own in its wait set.
    fn end(
        &self,
        spec: &LinkSpec,
        base: &str,
        send: &str,
        recv: &str,
        lazy: bool,
    ) -> Result<WaitingEnd> {
        let tx = publish(&topic(base, send), spec.payload)?;
        let idle_names: Vec<String> = (1..spec.subscribers)
            .map(|i| topic(base, &format!("{recv}-idle{i}")))
            .collect();
        let idle = idle_names
            .iter()
            .map(|t| publish(t, Tag::LEN))
            .collect::<Result<Vec<_>>>()?;
        let mut end = WaitingEnd {
            mode: self.mode,
            pace: self.pace,
            tx,
            peer_ready: false,
            _idle: idle,
            idle_names,
            rx: Rx::Lazy(topic(base, recv)),
        };
        if !lazy {
            end.attach_rx()?;
        }
        Ok(end)
    }
}

impl Transport for Waiting {
    fn name(&self) -> &'static str {
        self.name
    }

    fn supports(&self, scenario: Scenario) -> bool {
        scenario == Scenario::PingPong
    }

    fn set_sizes(&self) -> &'static [usize] {
        self.sizes
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
        Ok(Link {
            local: Box::new(self.end(spec, &base, "down", "up", true)?),
            child_fds: Vec::new(),
            child_args: vec![base],
        })
    }

    fn attach(&self, spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        let base = args
            .first()
            .ok_or_else(|| BenchError::Protocol("missing topic argument".into()))?;
        Ok(Box::new(self.end(spec, base, "up", "down", false)?))
    }
}

/// The receiving half.
enum Rx {
    /// Attach to this topic on the first receive.
    Lazy(String),
    /// A wait set: the live topic and the idle ones.
    Set { set: WaitSet, live: Key<Subscriber> },
    /// `recv_async` driven by a current-thread runtime.
    Async {
        sub: Subscriber,
        rt: tokio::runtime::Runtime,
    },
}

struct WaitingEnd {
    mode: Mode,
    pace: Option<Duration>,
    tx: Publisher,
    peer_ready: bool,
    /// The idle topics' publishers (kept alive, never publishing).
    _idle: Vec<Publisher>,
    idle_names: Vec<String>,
    rx: Rx,
}

impl WaitingEnd {
    #[cold]
    fn attach_rx(&mut self) -> Result<()> {
        let Rx::Lazy(name) = &self.rx else {
            return Ok(());
        };
        let sub = Subscriber::attach_wait(name, options(), PEER_TIMEOUT)
            .map_err(|e| ringcast_err(&format!("attach {name}"), e))?;
        self.rx = match self.mode {
            Mode::WaitSet => {
                let mut set = WaitSet::new().strategy(WaitStrategy::Park);
                let live = set.add(sub).map_err(|e| ringcast_err("wait set", e))?;
                for t in &self.idle_names {
                    let s = Subscriber::attach(t, options())
                        .map_err(|e| ringcast_err(&format!("attach {t}"), e))?;
                    set.add(s).map_err(|e| ringcast_err("wait set", e))?;
                }
                Rx::Set { set, live }
            }
            Mode::Async => Rx::Async {
                sub,
                rt: tokio::runtime::Builder::new_current_thread()
                    .build()
                    .map_err(|e| BenchError::sys("build a tokio runtime", e))?,
            },
        };
        Ok(())
    }
}

fn got(sample: &[u8], msg: &mut [u8]) -> Result<()> {
    if sample.len() != msg.len() {
        return Err(BenchError::Protocol(format!(
            "received a {}-byte message, expected {}",
            sample.len(),
            msg.len()
        )));
    }
    let head = Tag::LEN.min(msg.len());
    msg[..head].copy_from_slice(&sample[..head]);
    Ok(())
}

fn failed(e: impl std::fmt::Display) -> BenchError {
    BenchError::Ringcast(format!("receive: {e}"))
}

impl Endpoint for WaitingEnd {
    fn pace(&self) -> Option<Duration> {
        self.pace
    }

    fn send(&mut self, msg: &[u8]) -> Result<()> {
        if !self.peer_ready {
            self.tx
                .wait_for_subscribers(1, PEER_TIMEOUT)
                .map_err(|_| BenchError::Timeout {
                    what: "the peer's ringcast subscriber to attach",
                    secs: PEER_TIMEOUT.as_secs(),
                })?;
            self.peer_ready = true;
        }
        let head = Tag::LEN.min(msg.len());
        let mut loan = self.tx.loan();
        if msg.len() > loan.len() {
            return Err(BenchError::Protocol("message larger than the slot".into()));
        }
        loan[..head].copy_from_slice(&msg[..head]);
        loan.commit(msg.len());
        Ok(())
    }

    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        if matches!(self.rx, Rx::Lazy(_)) {
            self.attach_rx()?;
        }
        match &mut self.rx {
            Rx::Lazy(_) => Err(BenchError::Protocol("not attached".into())),
            Rx::Set { set, live } => loop {
                if let Some(sub) = set.get_mut(*live) {
                    match sub.try_recv() {
                        Ok(sample) => return got(&sample, msg),
                        Err(TryRecvError::Empty) => {}
                        Err(e) => return Err(failed(e)),
                    }
                }
                set.wait_timeout(PEER_TIMEOUT).map_err(failed)?;
            },
            Rx::Async { sub, rt } => rt.block_on(async {
                match sub.recv_async().await {
                    Ok(sample) => got(&sample, msg),
                    Err(RecvError::Disconnected) => {
                        Err(BenchError::Protocol("the publisher closed or died".into()))
                    }
                    Err(e) => Err(failed(e)),
                }
            }),
        }
    }
}
