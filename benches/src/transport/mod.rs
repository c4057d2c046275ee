//! Transports: the ways two processes exchange a message, each behind one trait.
//!
//! A [`Transport`] is set up by the parent process ([`Transport::open`]): it
//! creates every kernel object (pipe, socket pair, memfd, message queue) while
//! both ends are still in one process, keeps one [`Endpoint`] and hands the
//! other end to the child as inherited file descriptors plus string arguments
//! ([`Link`]). The re-executed child rebuilds its end with
//! [`Transport::attach`]. Because nothing is ever opened by name in the child,
//! there is nothing to unlink if either process dies: the memfd has no name,
//! and message queues are unlinked right after `mq_open`.
//!
//! The ringcast rows ([`ringcast`]) are the exception: they open named topics
//! in /dev/shm, under the private prefix [`ringcast::PREFIX`], which the
//! library's publisher removes on every ordinary exit and the suite's start
//! garbage-collects after a killed run. So is the optional `iceoryx2` row
//! (cargo feature `iceoryx2`, off by default, module `iox2`): its services live in
//! iceoryx2's own shared memory, whose leftovers iceoryx2 cleans up itself.
//!
//! The service rows ([`rpc`]: `ringcast-rpc`, `ringcast-rpc-1`, `ringcast-rpc-4`) carry
//! each message as a call to a ringcast `Server` and its response, under the same prefix.
//!
//! Every message starts with an 8-byte tag ([`Tag`]) that tells data from
//! warm-up traffic and the end of a run, so every scenario stops in-band.
//!
//! Adding a transport means one module implementing [`Transport`] and
//! [`Endpoint`], and one line in [`all`].

mod floor;
mod futex;
#[cfg(feature = "iceoryx2")]
mod iox2;
mod mqueue;
mod net;
mod pipe;
pub mod ringcast;
pub mod ringcast_many;
mod ringcast_waiting;
pub mod rpc;
mod shm;
mod socket;
mod stream;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::error::{BenchError, Result};
use crate::scenario::{fanout, pingpong, throughput, Scenario, Timing};

/// How long any blocking receive or send waits for the peer before it gives up.
/// A measurement never legitimately waits this long for one message.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// Name of the physical-limit transport: the reference of the "vs floor" column.
pub const FLOOR: &str = "floor";

/// Name of the sleeping floor: the "vs floor" reference of [`RINGCAST_FUTEX`].
pub const FUTEX_FLOOR: &str = "futex-floor";

/// What every ringcast row's transport name starts with.
pub const RINGCAST: &str = "ringcast";

/// Name of the ringcast row whose receivers sleep on the futex.
pub const RINGCAST_FUTEX: &str = "ringcast-futex";

/// The rows whose receivers sleep on a futex (so may be compared with `futex-floor`).
pub const SLEEPING: &[&str] = &[
    RINGCAST_FUTEX,
    "ringcast-waitset",
    "ringcast-waitset-paced",
    "ringcast-async",
];

/// The row measured through two bridges, and what it is compared with.
pub const BRIDGE: &str = "bridge";
/// Zenoh alone: the `bridge` row's reference.
pub const ZENOH: &str = "zenoh";

/// The kernel IPC baselines: the reference set of the "vs best baseline" column.
pub const BASELINES: &[&str] = &["pipe", "uds-stream", "uds-dgram", "tcp", "mqueue"];

/// Every transport of the suite, in the order rows are measured and printed.
const ALL: &[&dyn Transport] = &[
    &floor::Floor,
    &futex::FutexFloor,
    &pipe::Pipe,
    &socket::UdsStream,
    &socket::UdsDgram,
    &socket::Tcp,
    &mqueue::Mqueue,
    &ringcast::SPIN,
    &ringcast::FUTEX,
    &ringcast::OVERWRITE,
    &ringcast::SHARED,
    &ringcast_many::MPSC_1,
    &ringcast_many::MPSC_2,
    &ringcast_many::MPSC_4,
    &ringcast_many::TOPICS_1,
    &ringcast_many::TOPICS_2,
    &ringcast_many::TOPICS_4,
    &ringcast_waiting::WAITSET,
    &ringcast_waiting::WAITSET_PACED,
    &ringcast_waiting::ASYNC,
    &rpc::PINGPONG,
    &rpc::THROUGHPUT_1,
    &rpc::THROUGHPUT_4,
    &net::ZENOH,
    &net::BRIDGE,
    #[cfg(feature = "iceoryx2")]
    &iox2::ICEORYX2,
];

/// Every transport of the suite, in the order rows are measured and printed.
pub fn all() -> &'static [&'static dyn Transport] {
    ALL
}

/// Looks a transport up by its row name.
pub fn by_name(name: &str) -> Option<&'static dyn Transport> {
    all().iter().copied().find(|t| t.name() == name)
}

/// What one measurement asks of a transport.
#[derive(Clone, Copy, Debug)]
pub struct LinkSpec {
    /// The scenario about to run over the link.
    pub scenario: Scenario,
    /// Exact size of every message, in bytes (at least [`Tag::LEN`]).
    pub payload: usize,
    /// Receiving processes: 1, except in [`Scenario::Fanout`].
    pub subscribers: usize,
}

/// The parent's end of a freshly opened link, and what the child needs for its end.
pub struct Link {
    /// The parent's endpoint.
    pub local: Box<dyn Endpoint>,
    /// Descriptors the child inherits under the same numbers. The parent drops
    /// them right after spawning, so that only the child holds the far end.
    pub child_fds: Vec<OwnedFd>,
    /// Transport-specific arguments for [`Transport::attach`] in the child.
    pub child_args: Vec<String>,
}

/// A way to move messages between two processes.
pub trait Transport: Sync {
    /// The name used in rows, on the command line and in `--filter`.
    fn name(&self) -> &'static str;

    /// Whether the scenario means anything for this transport. By default the
    /// two point-to-point scenarios; fan-out needs a transport that can publish
    /// one message to several processes.
    fn supports(&self, scenario: Scenario) -> bool {
        matches!(scenario, Scenario::PingPong | Scenario::Throughput)
    }

    /// `Some(n)` when the transport moves exactly `n` bytes whatever payload is
    /// asked for (the floors): it is then measured once, with payload `n`.
    fn fixed_payload(&self) -> Option<usize> {
        None
    }

    /// `Some(sizes)` when the transport is measured only at those of the run's payloads
    /// (`None`, the default: at every payload of the run).
    fn payloads(&self) -> Option<&'static [usize]> {
        None
    }

    /// The sizes of the receiver's wait set this transport is measured with (one row
    /// each, its `subscribers` column); `[1]` for a transport without one.
    fn set_sizes(&self) -> &'static [usize] {
        &[1]
    }

    /// Whether a waiting side busy-spins, and so needs a CPU of its own.
    fn spins(&self) -> bool {
        false
    }

    /// Parent side: creates the link. An error skips the row (its message says why).
    fn open(&self, spec: &LinkSpec) -> Result<Link>;

    /// Child side: rebuilds the far end from the arguments `open` produced.
    fn attach(&self, spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>>;
}

/// One end of a link. `send` delivers exactly one whole message to the peer's
/// `recv`; `recv` returns only once a whole message of `msg.len()` bytes has
/// arrived (streams loop over partial reads) and is in `msg`.
///
/// The one exception is a zero-copy transport ([`ringcast`]): its payload is
/// produced and consumed in place in shared memory, so `send` writes only the
/// message's header (the bytes the scenarios read: the tag, and in fan-out the
/// send time) and publishes `msg.len()` bytes, and `recv` checks the length and
/// fills in only the header of `msg`. The scenarios read nothing else.
pub trait Endpoint {
    /// Sends one message.
    fn send(&mut self, msg: &[u8]) -> Result<()>;

    /// Ping-pong only: a pause the initiator takes between round trips, outside the
    /// timed interval, so that the responder is surely asleep when the next ping comes
    /// (`None`, the default: back to back).
    fn pace(&self) -> Option<std::time::Duration> {
        None
    }

    /// Receives one message of exactly `msg.len()` bytes.
    fn recv(&mut self, msg: &mut [u8]) -> Result<()>;

    // The scenario loops are provided methods so that they are instantiated per
    // endpoint type: only the entry call is dynamic, every per-message
    // `send`/`recv` inside the timed loop is a static call.

    /// Ping-pong initiator (parent): returns the round-trip histogram in ns.
    fn ping(&mut self, payload: usize, timing: &Timing) -> Result<hdrhistogram::Histogram<u64>> {
        pingpong::initiator(self, payload, timing)
    }

    /// Ping-pong responder (child): echoes every message until told to stop.
    fn pong(&mut self, payload: usize) -> Result<()> {
        pingpong::responder(self, payload)
    }

    /// Throughput producer (child): sends back to back for the timed phases.
    fn produce(&mut self, payload: usize, timing: &Timing) -> Result<()> {
        throughput::producer(self, payload, timing)
    }

    /// Throughput consumer (parent): counts data messages until the end tag.
    fn consume(&mut self, payload: usize) -> Result<throughput::Rate> {
        throughput::consumer(self, payload)
    }

    /// Fan-out publisher (parent): paced then back-to-back messages to every
    /// subscriber process.
    fn fan_out(&mut self, payload: usize, timing: &Timing) -> Result<()> {
        fanout::publisher(self, payload, timing)
    }

    /// Fan-out subscriber (child): what one subscriber measured.
    fn fan_in(&mut self, payload: usize) -> Result<fanout::Received> {
        fanout::subscriber(self, payload)
    }

    /// Messages this end has lost so far without receiving them: 0 for every
    /// transport but a lossy one (`ringcast-overwrite`, whose lapped subscriber
    /// skips what was overwritten). Lost messages are never counted as received.
    fn lost(&self) -> u64 {
        0
    }
}

/// The tag in the first 8 bytes (little-endian) of every message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// A measured message.
    Data = 0,
    /// A warm-up message, not counted.
    Warmup = 1,
    /// The last message of a run; the receiver stops.
    Stop = 2,
    /// A measured message of fan-out's back-to-back phase (its paced phase
    /// uses [`Tag::Data`]).
    Bulk = 3,
}

impl Tag {
    /// Size of the tag, and so the smallest payload.
    pub const LEN: usize = 8;

    /// Writes the tag into the first bytes of `msg` (`msg.len() >= LEN`).
    pub fn write(self, msg: &mut [u8]) {
        msg[..Self::LEN].copy_from_slice(&(self as u64).to_le_bytes());
    }

    /// Reads the tag of a received message.
    pub fn read(msg: &[u8]) -> Result<Self> {
        let mut raw = [0u8; Self::LEN];
        raw.copy_from_slice(&msg[..Self::LEN]);
        match u64::from_le_bytes(raw) {
            0 => Ok(Self::Data),
            1 => Ok(Self::Warmup),
            2 => Ok(Self::Stop),
            3 => Ok(Self::Bulk),
            other => Err(BenchError::Protocol(format!("unknown message tag {other}"))),
        }
    }
}

/// Formats a descriptor for the child's argument list.
fn fd_arg(fd: &OwnedFd) -> String {
    fd.as_raw_fd().to_string()
}

/// Takes ownership, in the child, of a descriptor the parent passed as `args[index]`.
///
/// Each index must be taken at most once: the returned `OwnedFd` closes it.
fn take_fd(args: &[String], index: usize) -> Result<OwnedFd> {
    let text = args
        .get(index)
        .ok_or_else(|| BenchError::Protocol(format!("missing descriptor argument #{index}")))?;
    let fd: RawFd = text
        .parse()
        .map_err(|_| BenchError::Protocol(format!("bad descriptor argument {text:?}")))?;
    if fd < 3 {
        return Err(BenchError::Protocol(format!(
            "descriptor {fd} is a standard stream"
        )));
    }
    // SAFETY: F_GETFD only inspects the descriptor table; an invalid number
    // yields EBADF and no side effect.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(BenchError::last_os(format!("inherited descriptor {fd}")));
    }
    // SAFETY: `fd` is open (checked above) and was inherited from the parent for
    // this process's end of the link; nothing else in this process owns it, and
    // each argument index is taken once by the transport's `attach`.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
