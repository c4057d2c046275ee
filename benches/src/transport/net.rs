//! The network rows: `zenoh` (Zenoh pub/sub alone, peer to peer over TCP on loopback)
//! and `bridge` (ringcast topics carried by two `ringcast-bridge`s over the same kind of
//! Zenoh link).
//!
//! Both rows move whole payloads the same way, so `bridge / zenoh` is the cost of the
//! bridge itself: on each side one more hop through a ringcast ring and the bridge's
//! thread. `zenoh`: each process opens a session (the parent listens, the child
//! connects), a publisher with blocking congestion control per direction, and a
//! subscriber whose callback feeds a channel; `send` puts the message, `recv` copies the
//! payload out. `bridge`: each process embeds a bridge ([`ringcast_bridge::Bridge`],
//! which runs its export and import threads in the process, pinned with it) with its
//! own shm prefix standing for its host; `send` publishes the message on a local `Block`
//! topic the bridge exports, `recv` copies it out of the local topic the bridge imports.
//! Zenoh runs with its defaults in both rows (adaptive batching, no `express`).
//!
//! A link's endpoint is a free loopback port picked by the parent (bound, then
//! released) and handed to the child with the topic base name; the domain is that base
//! name, so concurrent links never see each other.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use ringcast::{
    Overflow, Publisher, PublisherConfig, RecvTimeoutError, Start, Subscriber, SubscriberOptions,
    WaitStrategy,
};
use ringcast_bridge::{Bridge, BridgeConfig};
use zenoh::handlers::FifoChannelHandler;
use zenoh::qos::CongestionControl;
use zenoh::sample::Sample;
use zenoh::Wait;

use super::ringcast::{slots_for, topic, unique_base, PREFIX};
use super::{Endpoint, Link, LinkSpec, Transport, PEER_TIMEOUT};
use crate::error::{BenchError, Result};
use crate::scenario::Scenario;

/// Shm prefix of the child's "host" in the `bridge` row (the parent's is [`PREFIX`]).
pub const PEER_PREFIX: &str = "rcbenchb";

/// The `zenoh` row.
pub struct ZenohRow;
/// The `bridge` row.
pub struct BridgeRow;

/// `zenoh`: Zenoh pub/sub alone.
pub const ZENOH: ZenohRow = ZenohRow;
/// `bridge`: ringcast topics through two embedded bridges.
pub const BRIDGE: BridgeRow = BridgeRow;

fn zerr(what: &str) -> impl Fn(zenoh::Error) -> BenchError + '_ {
    move |e| BenchError::Protocol(format!("zenoh: {what}: {e}"))
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| BenchError::sys("bind 127.0.0.1:0", e))?;
    Ok(l.local_addr()
        .map_err(|e| BenchError::sys("getsockname", e))?
        .port())
}

/// The (parent, child) direction names of a scenario: what each side publishes and
/// subscribes to (`None`: nothing).
fn directions(scenario: Scenario, parent: bool) -> (Option<&'static str>, Option<&'static str>) {
    match (scenario, parent) {
        (Scenario::PingPong, true) => (Some("down"), Some("up")),
        (Scenario::PingPong, false) => (Some("up"), Some("down")),
        (_, true) => (None, Some("data")),
        (_, false) => (Some("data"), None),
    }
}

fn args_of(args: &[String]) -> Result<(&str, u16)> {
    match args {
        [base, port] => Ok((
            base,
            port.parse()
                .map_err(|_| BenchError::Protocol(format!("bad port argument {port:?}")))?,
        )),
        _ => Err(BenchError::Protocol(
            "expected a topic base and a port".into(),
        )),
    }
}

// ---- zenoh alone ------------------------------------------------------------------

fn session(listen: Option<u16>, connect: Option<u16>) -> Result<zenoh::Session> {
    let mut c = zenoh::Config::default();
    let mut set = |k: &str, v: String| c.insert_json5(k, &v).map_err(zerr("config"));
    set("mode", "\"peer\"".into())?;
    set("scouting/multicast/enabled", "false".into())?;
    if let Some(p) = listen {
        set("listen/endpoints", format!("[\"tcp/127.0.0.1:{p}\"]"))?;
    }
    if let Some(p) = connect {
        set("connect/endpoints", format!("[\"tcp/127.0.0.1:{p}\"]"))?;
    }
    zenoh::open(c).wait().map_err(zerr("open"))
}

struct ZenohEnd {
    // Field order is drop order: the entities before their session.
    publisher: Option<zenoh::pubsub::Publisher<'static>>,
    subscriber: Option<zenoh::pubsub::Subscriber<FifoChannelHandler<Sample>>>,
    matched: bool,
    _session: zenoh::Session,
}

impl ZenohEnd {
    fn new(s: zenoh::Session, base: &str, spec: &LinkSpec, parent: bool) -> Result<ZenohEnd> {
        let (tx, rx) = directions(spec.scenario, parent);
        let key = |d: &str| format!("rcbench/{base}/{d}");
        let publisher = tx
            .map(|d| {
                s.declare_publisher(key(d))
                    .congestion_control(CongestionControl::Block)
                    .wait()
                    .map_err(zerr("declare publisher"))
            })
            .transpose()?;
        let subscriber = rx
            .map(|d| {
                s.declare_subscriber(key(d))
                    .wait()
                    .map_err(zerr("declare subscriber"))
            })
            .transpose()?;
        Ok(ZenohEnd {
            publisher,
            subscriber,
            matched: false,
            _session: s,
        })
    }
}

impl Endpoint for ZenohEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let p = self
            .publisher
            .as_ref()
            .ok_or_else(|| BenchError::Protocol("this zenoh end only receives".into()))?;
        if !self.matched {
            // The first put waits until the peer's subscriber is known here.
            let t = Instant::now();
            while !p
                .matching_status()
                .wait()
                .map_err(zerr("matching"))?
                .matching()
            {
                if t.elapsed() > PEER_TIMEOUT {
                    return Err(BenchError::Timeout {
                        what: "the peer's zenoh subscriber",
                        secs: PEER_TIMEOUT.as_secs(),
                    });
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            self.matched = true;
        }
        p.put(msg).wait().map_err(zerr("put"))
    }

    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        let s = self
            .subscriber
            .as_ref()
            .ok_or_else(|| BenchError::Protocol("this zenoh end only sends".into()))?;
        let sample = s
            .recv_timeout(PEER_TIMEOUT)
            .map_err(zerr("receive"))?
            .ok_or(BenchError::Timeout {
                what: "a zenoh message",
                secs: PEER_TIMEOUT.as_secs(),
            })?;
        copy_out(sample.payload().slices(), msg)
    }
}

/// Copies a message made of `chunks` into `msg`, which must be exactly its size.
fn copy_out<'a>(chunks: impl Iterator<Item = &'a [u8]>, msg: &mut [u8]) -> Result<()> {
    let mut at = 0;
    for c in chunks {
        let end = at + c.len();
        if end > msg.len() {
            return Err(BenchError::Protocol(
                "a message longer than expected".into(),
            ));
        }
        msg[at..end].copy_from_slice(c);
        at = end;
    }
    if at != msg.len() {
        return Err(BenchError::Protocol(format!(
            "a {at}-byte message, {} expected",
            msg.len()
        )));
    }
    Ok(())
}

impl Transport for ZenohRow {
    fn name(&self) -> &'static str {
        "zenoh"
    }

    fn open(&self, spec: &LinkSpec) -> Result<Link> {
        let (base, port) = (unique_base(), free_port()?);
        let end = ZenohEnd::new(session(Some(port), None)?, &base, spec, true)?;
        Ok(Link {
            local: Box::new(end),
            child_fds: Vec::new(),
            child_args: vec![base, port.to_string()],
        })
    }

    fn attach(&self, spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        let (base, port) = args_of(args)?;
        Ok(Box::new(ZenohEnd::new(
            session(None, Some(port))?,
            base,
            spec,
            false,
        )?))
    }
}

// ---- through two bridges ------------------------------------------------------------

struct BridgeEnd {
    // Field order is drop order: our topics close before the bridge stops.
    tx: Option<Publisher>,
    rx: Option<Rx>,
    peer_ready: bool,
    /// Throughput: the consumer (parent) writes one byte here once its subscriber is
    /// attached to the import, and the producer (child) reads it before its first send.
    /// An import drains its source whether or not anyone local reads it (as a local
    /// `Block` topic without subscribers does), so without this the first messages
    /// could go by before the consumer is there.
    ready: Option<Ready>,
    _bridge: Bridge,
}

/// The throughput start handshake's end held by one side.
enum Ready {
    /// The consumer's: written once its subscriber is attached.
    Signal(std::fs::File),
    /// The producer's: read before the first send.
    Await(std::fs::File),
}

enum Rx {
    Lazy(String, SubscriberOptions),
    Attached(Subscriber),
}

fn bridge_end(
    spec: &LinkSpec,
    base: &str,
    port: u16,
    parent: bool,
    ready: Option<Ready>,
) -> Result<BridgeEnd> {
    let prefix = if parent { PREFIX } else { PEER_PREFIX };
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let (tx, rx) = directions(spec.scenario, parent);
    let mut cfg = BridgeConfig::default().prefix(prefix).domain(base);
    cfg = if parent {
        cfg.listen(endpoint)
    } else {
        cfg.connect(endpoint)
    };
    if let Some(d) = tx {
        cfg = cfg.export(topic(base, d));
    }
    if let Some(d) = rx {
        cfg = cfg.import(topic(base, d));
    }
    let bridge = Bridge::start(cfg).map_err(|e| BenchError::Protocol(format!("bridge: {e}")))?;
    let publisher = tx
        .map(|d| {
            let t = topic(base, d);
            Publisher::create(
                &t,
                PublisherConfig::default()
                    .prefix(prefix)
                    .slots(slots_for(spec.payload))
                    .slot_size(spec.payload as u64)
                    .overflow(Overflow::Block)
                    .wait_strategy(WaitStrategy::Park),
            )
            .map_err(|e| BenchError::Ringcast(format!("create {t}: {e}")))
        })
        .transpose()?;
    let options = SubscriberOptions::default()
        .prefix(prefix)
        .start(Start::Oldest)
        .wait_strategy(WaitStrategy::Park);
    let rx = rx.map(|d| Rx::Lazy(topic(base, d), options));
    Ok(BridgeEnd {
        tx: publisher,
        rx,
        peer_ready: false,
        ready,
        _bridge: bridge,
    })
}

impl BridgeEnd {
    #[cold]
    fn attach_rx(&mut self) -> Result<&mut Subscriber> {
        if let Some(Rx::Lazy(t, o)) = &self.rx {
            let s = Subscriber::attach_wait(t, o.clone(), PEER_TIMEOUT)
                .map_err(|e| BenchError::Ringcast(format!("attach the import {t}: {e}")))?;
            self.rx = Some(Rx::Attached(s));
            if let Some(Ready::Signal(mut w)) = self.ready.take() {
                w.write_all(b"r")
                    .map_err(|e| BenchError::sys("write the ready byte", e))?;
            }
        }
        match &mut self.rx {
            Some(Rx::Attached(s)) => Ok(s),
            _ => Err(BenchError::Protocol("this bridge end only sends".into())),
        }
    }
}

impl Endpoint for BridgeEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let p = self
            .tx
            .as_mut()
            .ok_or_else(|| BenchError::Protocol("this bridge end only receives".into()))?;
        if !self.peer_ready {
            // The bridge attaches once the far side imports (see the bridge's docs).
            p.wait_for_subscribers(1, PEER_TIMEOUT)
                .map_err(|_| BenchError::Timeout {
                    what: "the bridge to export the topic",
                    secs: PEER_TIMEOUT.as_secs(),
                })?;
            if let Some(Ready::Await(mut r)) = self.ready.take() {
                let mut byte = [0u8; 1];
                r.read_exact(&mut byte)
                    .map_err(|e| BenchError::sys("read the consumer's ready byte", e))?;
            }
            self.peer_ready = true;
        }
        p.send(msg)
            .map(|_| ())
            .map_err(|e| BenchError::Ringcast(format!("send: {e}")))
    }

    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        let sub = match &mut self.rx {
            Some(Rx::Attached(s)) => s,
            _ => self.attach_rx()?,
        };
        match sub.recv_timeout(PEER_TIMEOUT) {
            Ok(s) => copy_out(std::iter::once(s.bytes()), msg),
            Err(RecvTimeoutError::Timeout) => Err(BenchError::Timeout {
                what: "a message through the bridges",
                secs: PEER_TIMEOUT.as_secs(),
            }),
            Err(e) => Err(BenchError::Ringcast(format!("receive the import: {e}"))),
        }
    }
}

impl Transport for BridgeRow {
    fn name(&self) -> &'static str {
        "bridge"
    }

    fn open(&self, spec: &LinkSpec) -> Result<Link> {
        let (base, port) = (unique_base(), free_port()?);
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| BenchError::nix("pipe2 (bridge ready byte)", e))?;
        let end = bridge_end(spec, &base, port, true, Some(Ready::Signal(w.into())))?;
        Ok(Link {
            local: Box::new(end),
            child_args: vec![base, port.to_string(), super::fd_arg(&r)],
            child_fds: vec![r],
        })
    }

    fn attach(&self, spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        let (base, port) = args_of(&args[..args.len().min(2)])?;
        let ready = super::take_fd(args, 2)?;
        let ready =
            matches!(spec.scenario, Scenario::Throughput).then(|| Ready::Await(ready.into()));
        let mut end = bridge_end(spec, base, port, false, ready)?;
        // Ready only once the parent's topic is imported here, so that the first ping
        // finds us attached (an import re-creates the topic: nothing to attach to before).
        if matches!(spec.scenario, Scenario::PingPong) {
            end.attach_rx()?;
        }
        Ok(Box::new(end))
    }
}
