//! `floor`: two processes bouncing one cache line, both sides spinning.
//!
//! This is the physical limit of any shared-memory transport between two
//! cores: one message is one store that the other core observes, i.e. one
//! cache-line transfer each way. The line carries an 8-byte payload next to the
//! sequence word (see [`Line`]), so rows report it at payload 8 B and measure it
//! once: the floor moves one cache line whatever the payload of the rows it is
//! compared with, which is exactly what "vs floor" measures the distance to.

use std::hint::spin_loop;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::shm::{Line, SharedLine};
use super::{fd_arg, take_fd, Endpoint, Link, LinkSpec, Tag, Transport, PEER_TIMEOUT};
use crate::error::{BenchError, Result};
use crate::scenario::Scenario;

/// Spin iterations between two looks at the clock while waiting for the peer.
const SPINS_PER_CLOCK_CHECK: u32 = 1 << 16;

/// The `floor` transport.
pub struct Floor;

impl Transport for Floor {
    fn name(&self) -> &'static str {
        "floor"
    }

    fn supports(&self, scenario: Scenario) -> bool {
        // One strictly alternating line: it has no queue to fill, so a
        // throughput figure would just be 1 / round trip.
        scenario == Scenario::PingPong
    }

    fn fixed_payload(&self) -> Option<usize> {
        Some(Tag::LEN)
    }

    fn spins(&self) -> bool {
        true
    }

    fn open(&self, _spec: &LinkSpec) -> Result<Link> {
        let (shm, fd) = SharedLine::create()?;
        Ok(Link {
            local: Box::new(LineEnd::new(shm)),
            child_args: vec![fd_arg(&fd)],
            child_fds: vec![fd],
        })
    }

    fn attach(&self, _spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        let shm = SharedLine::attach(take_fd(args, 0)?)?;
        Ok(Box::new(LineEnd::new(shm)))
    }
}

/// One side of a spinning line. Also used by `futex-floor` for its send half.
pub struct LineEnd {
    shm: SharedLine,
    /// The last sequence number this side wrote or observed; the peer's next
    /// message will carry `last + 1` (wrapping).
    last: u32,
}

impl LineEnd {
    /// Wraps a mapped line; both sides start at sequence 0 (the zeroed page).
    pub fn new(shm: SharedLine) -> Self {
        Self { shm, last: 0 }
    }

    /// The shared line.
    pub fn line(&self) -> &Line {
        self.shm.line()
    }

    /// Publishes `msg` (exactly 8 bytes) as the next message.
    pub fn publish(&mut self, msg: &[u8]) -> Result<()> {
        let word = payload_word(msg)?;
        let next = self.last.wrapping_add(1);
        let line = self.shm.line();
        // Relaxed: published by the Release store of `seq` just below.
        line.word.store(word, Ordering::Relaxed);
        // SYNC POINT, Release: pairs with the Acquire load of `seq` in the peer's
        // `take`, making the `word` store above visible to it.
        line.seq.store(next, Ordering::Release);
        self.last = next;
        Ok(())
    }

    /// The sequence number the peer's next message will carry.
    pub fn expected(&self) -> u32 {
        self.last.wrapping_add(1)
    }

    /// Whether the peer's next message has arrived.
    pub fn arrived(&self) -> bool {
        // SYNC POINT, Acquire: pairs with the Release store of `seq` in the
        // peer's `publish`; once it reads `expected`, `word` holds that message.
        self.shm.line().seq.load(Ordering::Acquire) == self.expected()
    }

    /// Copies the message `arrived` announced into `msg` and advances.
    pub fn take(&mut self, msg: &mut [u8]) -> Result<()> {
        debug_assert!(self.arrived());
        check_len(msg.len())?;
        // Relaxed: ordered after the Acquire load of `seq` in `arrived`; the
        // peer does not write `word` again until this side publishes.
        let word = self.shm.line().word.load(Ordering::Relaxed);
        msg.copy_from_slice(&word.to_le_bytes());
        self.last = self.expected();
        Ok(())
    }
}

impl Endpoint for LineEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.publish(msg)
    }

    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        let mut spins = 0u32;
        let mut deadline = None;
        while !self.arrived() {
            spin_loop();
            spins += 1;
            if spins == SPINS_PER_CLOCK_CHECK {
                spins = 0;
                let now = Instant::now();
                match deadline {
                    None => deadline = Some(now + PEER_TIMEOUT),
                    Some(d) if now >= d => {
                        return Err(BenchError::Timeout {
                            what: "the peer's store to the shared line",
                            secs: PEER_TIMEOUT.as_secs(),
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        self.take(msg)
    }
}

fn check_len(len: usize) -> Result<()> {
    if len == Tag::LEN {
        Ok(())
    } else {
        Err(BenchError::Unsupported(format!(
            "a shared line carries exactly {} bytes, not {len}",
            Tag::LEN
        )))
    }
}

fn payload_word(msg: &[u8]) -> Result<u64> {
    check_len(msg.len())?;
    let mut raw = [0u8; Tag::LEN];
    raw.copy_from_slice(msg);
    Ok(u64::from_le_bytes(raw))
}
