//! The optional `iceoryx2` row: ping-pong and throughput over Eclipse iceoryx2
//! publish-subscribe, for comparison with `ringcast-spin`.
//!
//! Built only with the cargo feature `iceoryx2` (off by default, never enabled
//! by CI). iceoryx2 0.10 needs Rust 1.89, above the workspace's MSRV of 1.85:
//! that is accepted for this optional feature only; the default build keeps
//! 1.85. Its build script runs bindgen, which needs libclang (Debian:
//! `libclang-dev`).
//!
//! # Set-up, as iceoryx2's own publish-subscribe benchmark does it
//!
//! Each link is two `ipc` publish-subscribe services of `[u8]` slices, one per
//! direction, named `rcbench/<parent pid>-<counter>/<direction>` like the
//! ringcast topics (`down` and `up` in ping-pong, `data` in throughput), so
//! concurrent runs never collide. Each process creates the service it
//! publishes on, with one publisher whose `initial_max_slice_len` is the
//! payload: the parent in [`Transport::open`], the child in
//! [`Transport::attach`] before it reports ready. The child opens the parent's
//! service and subscribes eagerly, the parent opens the child's lazily on its
//! first receive (it exists once the child is ready). A publisher's first send
//! waits until the peer's subscriber is registered, since a service without
//! history drops what is sent before anybody subscribed.
//!
//! Ping-pong services have no history, a one-sample subscriber buffer and safe
//! overflow: exactly iceoryx2's benchmark configuration, with one message in
//! flight. Throughput services keep safe overflow off and a
//! [`BackpressureStrategy::RetryUntilDelivered`] publisher with a deeper
//! buffer (about 4 MiB, 8 to 64 samples), so that no message is lost.
//!
//! # What a message costs
//!
//! The same contract as the ringcast rows ([`super::ringcast`]): in ping-pong
//! `send` loans a sample, writes only the 8-byte tag in place and sends
//! `msg.len()` bytes, and `recv` reads the tag in place; in throughput every
//! payload byte is written into the loan and read out of the sample. A receive
//! is a poll, so `recv` busy-spins on it (as iceoryx2's benchmark does),
//! which is why the row needs a CPU per side like `ringcast-spin`.
//!
//! Nothing can hang: a receive gives up after [`PEER_TIMEOUT`] without a
//! message (a dead peer), and the harness kills a child that overruns. iceoryx2
//! removes a dead process's leftovers itself when a later node is created.

use std::hint;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory as PubSub;

use super::{Endpoint, Link, LinkSpec, Tag, Transport, PEER_TIMEOUT};
use crate::error::{BenchError, Result};
use crate::scenario::Scenario;

/// The `iceoryx2` row.
pub struct Iceoryx2;

/// The `iceoryx2` row, as registered in [`super::all`].
pub const ICEORYX2: Iceoryx2 = Iceoryx2;

/// Service-name prefix of every benchmark service.
const PREFIX: &str = "rcbench";

/// Bytes of sample buffer a throughput subscriber aims at (as ringcast's rings).
const BUFFER_BYTES: usize = 4 << 20;
/// Fewest buffered samples of a throughput subscriber.
const MIN_BUFFER: usize = 8;
/// Most buffered samples of a throughput subscriber.
const MAX_BUFFER: usize = 64;

/// Empty polls between two looks at the receive deadline: a clock read only
/// on the slow path.
const POLLS_PER_CLOCK_CHECK: u32 = 1 << 16;

type Pub = Publisher<ipc::Service, [u8], ()>;
type Sub = Subscriber<ipc::Service, [u8], ()>;
type Factory = PubSub<ipc::Service, [u8], ()>;

fn err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> BenchError {
    BenchError::Iceoryx2(format!("{what}: {e}"))
}

/// A service base name unique to this process and link: `<pid>-<counter>`.
fn unique_base() -> String {
    /// Links opened by this process so far.
    static LINKS: AtomicU32 = AtomicU32::new(0);
    // Relaxed: only uniqueness matters, which the atomic increment gives alone.
    let n = LINKS.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

fn service_name(base: &str, direction: &str) -> Result<ServiceName> {
    let name = format!("{PREFIX}/{base}/{direction}");
    ServiceName::new(&name).map_err(|e| err(format!("service name {name:?}"), format!("{e:?}")))
}

/// Subscriber buffer of a throughput service: about [`BUFFER_BYTES`].
fn buffer_for(payload: usize) -> usize {
    (BUFFER_BYTES / payload.max(1)).clamp(MIN_BUFFER, MAX_BUFFER)
}

/// A node of this process, with iceoryx2's own logging limited to errors
/// (the suite reports failures itself).
fn node() -> Result<Node<ipc::Service>> {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| set_log_level(LogLevel::Error));
    NodeBuilder::new()
        .create::<ipc::Service>()
        .map_err(|e| err("create iceoryx2 node", e))
}

/// Creates (`create`) or opens a service with the scenario's settings; both
/// sides ask for the same, so an open always matches.
fn service(
    node: &Node<ipc::Service>,
    name: &ServiceName,
    scenario: Scenario,
    payload: usize,
    create: bool,
) -> Result<Factory> {
    let builder = node
        .service_builder(name)
        .publish_subscribe::<[u8]>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0);
    let builder = match scenario {
        Scenario::Throughput => builder
            .subscriber_max_buffer_size(buffer_for(payload))
            .enable_safe_overflow(false),
        Scenario::PingPong | Scenario::Fanout => builder
            .subscriber_max_buffer_size(1)
            .enable_safe_overflow(true),
    };
    if create {
        builder
            .create()
            .map_err(|e| err(format!("create service {name}"), e))
    } else {
        builder
            .open()
            .map_err(|e| err(format!("open service {name}"), e))
    }
}

impl Iceoryx2 {
    /// Creates the service `direction` and its one publisher.
    fn publish(
        node: &Node<ipc::Service>,
        base: &str,
        direction: &str,
        spec: &LinkSpec,
    ) -> Result<Tx> {
        let name = service_name(base, direction)?;
        let service = service(node, &name, spec.scenario, spec.payload, true)?;
        let publisher = service
            .publisher_builder()
            .initial_max_slice_len(spec.payload)
            .backpressure_strategy(match spec.scenario {
                Scenario::Throughput => BackpressureStrategy::RetryUntilDelivered,
                Scenario::PingPong | Scenario::Fanout => BackpressureStrategy::DiscardData,
            })
            .create()
            .map_err(|e| err(format!("create publisher on {name}"), e))?;
        Ok(Tx {
            publisher,
            service,
            peer_ready: false,
        })
    }

    /// Opens the peer's service `direction` and subscribes to it.
    fn subscribe(
        node: &Node<ipc::Service>,
        base: &str,
        direction: &str,
        spec: &LinkSpec,
    ) -> Result<RxPort> {
        let name = service_name(base, direction)?;
        let service = service(node, &name, spec.scenario, spec.payload, false)?;
        let subscriber = service
            .subscriber_builder()
            .create()
            .map_err(|e| err(format!("subscribe to {name}"), e))?;
        Ok(RxPort {
            subscriber,
            _service: service,
            name: name.to_string(),
        })
    }

    fn end(node: Node<ipc::Service>, spec: &LinkSpec, tx: Option<Tx>, rx: Rx) -> Box<dyn Endpoint> {
        Box::new(Iceoryx2End {
            tx,
            rx,
            spec: *spec,
            header: match spec.scenario {
                Scenario::Throughput => usize::MAX,
                Scenario::PingPong | Scenario::Fanout => Tag::LEN,
            },
            node,
        })
    }
}

impl Transport for Iceoryx2 {
    fn name(&self) -> &'static str {
        "iceoryx2"
    }

    fn spins(&self) -> bool {
        true
    }

    fn open(&self, spec: &LinkSpec) -> Result<Link> {
        if spec.payload < Tag::LEN {
            return Err(BenchError::Unsupported(format!(
                "iceoryx2 needs at least {} bytes per message",
                Tag::LEN
            )));
        }
        let node = node()?;
        let base = unique_base();
        let (tx, rx) = match spec.scenario {
            Scenario::PingPong => (
                Some(Self::publish(&node, &base, "down", spec)?),
                Rx::Lazy {
                    base: base.clone(),
                    direction: "up",
                },
            ),
            Scenario::Throughput => (
                None,
                Rx::Lazy {
                    base: base.clone(),
                    direction: "data",
                },
            ),
            Scenario::Fanout => {
                return Err(BenchError::Unsupported(
                    "the iceoryx2 row has no fan-out".into(),
                ))
            }
        };
        Ok(Link {
            local: Self::end(node, spec, tx, rx),
            child_fds: Vec::new(),
            child_args: vec![base],
        })
    }

    fn attach(&self, spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        let base = args
            .first()
            .ok_or_else(|| BenchError::Protocol("missing service argument".into()))?;
        let node = node()?;
        let (tx, rx) = match spec.scenario {
            Scenario::PingPong => (
                Some(Self::publish(&node, base, "up", spec)?),
                Rx::Attached(Self::subscribe(&node, base, "down", spec)?),
            ),
            Scenario::Throughput => (Some(Self::publish(&node, base, "data", spec)?), Rx::None),
            Scenario::Fanout => {
                return Err(BenchError::Unsupported(
                    "the iceoryx2 row has no fan-out".into(),
                ))
            }
        };
        Ok(Self::end(node, spec, tx, rx))
    }
}

/// The publishing half of an end. Fields drop in order: the port before its
/// service.
struct Tx {
    publisher: Pub,
    service: Factory,
    /// Whether the peer's subscriber has been seen registered.
    peer_ready: bool,
}

impl Tx {
    #[cold]
    fn wait_for_peer(&mut self) -> Result<()> {
        let deadline = Instant::now() + PEER_TIMEOUT;
        while self.service.dynamic_config().number_of_subscribers() == 0 {
            if Instant::now() >= deadline {
                return Err(BenchError::Timeout {
                    what: "the peer's iceoryx2 subscriber to register",
                    secs: PEER_TIMEOUT.as_secs(),
                });
            }
            thread::sleep(Duration::from_micros(100));
        }
        self.peer_ready = true;
        Ok(())
    }
}

/// A subscriber and its service (kept open while the port lives).
struct RxPort {
    subscriber: Sub,
    _service: Factory,
    name: String,
}

/// The subscribing half of an end.
enum Rx {
    /// This end only sends.
    None,
    /// Open the peer's service `<base>/<direction>` on the first receive.
    Lazy {
        base: String,
        direction: &'static str,
    },
    /// Subscribed.
    Attached(RxPort),
}

/// One end of an iceoryx2 link. Fields drop in order: ports, then the node.
struct Iceoryx2End {
    tx: Option<Tx>,
    rx: Rx,
    spec: LinkSpec,
    /// Bytes at the start of each message that `send` writes and `recv` reads
    /// (see the module docs).
    header: usize,
    node: Node<ipc::Service>,
}

impl Iceoryx2End {
    #[cold]
    fn attach_rx(&mut self) -> Result<()> {
        let port = match &self.rx {
            Rx::None => return Err(BenchError::Protocol("this iceoryx2 end only sends".into())),
            Rx::Attached(_) => return Ok(()),
            Rx::Lazy { base, direction } => {
                Iceoryx2::subscribe(&self.node, base, direction, &self.spec)?
            }
        };
        self.rx = Rx::Attached(port);
        Ok(())
    }
}

impl Endpoint for Iceoryx2End {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(BenchError::Protocol(
                "this iceoryx2 end only receives".into(),
            ));
        };
        if !tx.peer_ready {
            tx.wait_for_peer()?;
        }
        let loan = tx
            .publisher
            .loan_slice_uninit(msg.len())
            .map_err(|e| err("loan", e))?;
        let sample = if self.header >= msg.len() {
            loan.write_from_slice(msg)
        } else {
            let mut loan = loan;
            for (dst, &src) in loan.payload_mut()[..self.header].iter_mut().zip(msg) {
                *dst = MaybeUninit::new(src);
            }
            // SAFETY: the loan's bytes lie in iceoryx2's data segment, a shared
            // memory mapping whose bytes always hold initialized values (zero-filled
            // by the kernel when created, afterwards only ever written with whole
            // byte values by earlier sends); `MaybeUninit` is only the library's
            // type-level caution for arbitrary payload types. The header was just
            // written and the rest is the payload "produced in place" (module docs).
            unsafe { loan.assume_init() }
        };
        sample.send().map_err(|e| err("send", e))?;
        Ok(())
    }

    #[inline]
    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        if !matches!(self.rx, Rx::Attached(_)) {
            self.attach_rx()?;
        }
        let Rx::Attached(port) = &self.rx else {
            return Err(BenchError::Protocol(
                "iceoryx2 subscriber not attached".into(),
            ));
        };
        let head = self.header.min(msg.len());
        let mut deadline = None;
        let mut polls = 0u32;
        loop {
            let received = port
                .subscriber
                .receive()
                .map_err(|e| err(format!("receive on {}", port.name), e))?;
            if let Some(sample) = received {
                let payload = sample.payload();
                if payload.len() != msg.len() {
                    return Err(BenchError::Protocol(format!(
                        "received a {}-byte message, expected {}",
                        payload.len(),
                        msg.len()
                    )));
                }
                msg[..head].copy_from_slice(&payload[..head]);
                return Ok(());
            }
            polls += 1;
            if polls == POLLS_PER_CLOCK_CHECK {
                polls = 0;
                let now = Instant::now();
                match deadline {
                    None => deadline = Some(now + PEER_TIMEOUT),
                    Some(d) if now >= d => {
                        return Err(BenchError::Timeout {
                            what: "an iceoryx2 message from the peer",
                            secs: PEER_TIMEOUT.as_secs(),
                        })
                    }
                    Some(_) => {}
                }
            }
            hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_buffers_hold_about_four_mib_within_8_to_64_samples() {
        assert_eq!(buffer_for(64), 64);
        assert_eq!(buffer_for(64 * 1024), 64);
        assert_eq!(buffer_for(100 * 1024), 40);
        assert_eq!(buffer_for(1 << 20), 8);
    }
}
