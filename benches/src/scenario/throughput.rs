//! Throughput: one producer process sending back to back, one consumer process
//! counting, and the single-core `memcpy` reference.
//!
//! The producer sends warm-up messages, then data messages for the measured
//! phase, then one stop message; it looks at the clock once every
//! [`SENDS_PER_CLOCK_CHECK`] sends, so that a ~20 ns clock read does not cap a
//! transport that moves a message in a few nanoseconds (a phase overruns by at
//! most that many messages). The consumer starts its clock at the first data
//! message and stops it at the stop message: it measures what actually
//! crossed, whatever the kernel buffered in between. A lossy transport's
//! consumer (`ringcast-overwrite`) counts only what it received; what it lost
//! while its clock ran is reported beside the rate, never counted in it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use super::Timing;
use crate::error::{BenchError, Result};
use crate::transport::{Endpoint, Tag};

/// Transport name of the in-process copy reference rows.
pub const MEMCPY: &str = "memcpy";

/// Sends between two looks at the clock in [`producer`].
pub const SENDS_PER_CLOCK_CHECK: u32 = 16;

/// Messages that crossed in a measured interval.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Messages counted.
    pub messages: u64,
    /// How long they took.
    pub elapsed: Duration,
    /// Messages the consumer lost (sent but never received) while its clock
    /// ran: always 0 but for a lossy transport.
    pub lost: u64,
}

impl Rate {
    /// Messages per second.
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Sends warm-up, then data, then the stop message.
pub fn producer<E: Endpoint + ?Sized>(end: &mut E, payload: usize, timing: &Timing) -> Result<()> {
    let mut msg = vec![0u8; payload];
    for (tag, phase) in [(Tag::Warmup, timing.warmup), (Tag::Data, timing.measure)] {
        tag.write(&mut msg);
        let phase_end = Instant::now() + phase;
        'phase: loop {
            for _ in 0..SENDS_PER_CLOCK_CHECK {
                end.send(&msg)?;
            }
            if Instant::now() >= phase_end {
                break 'phase;
            }
        }
    }
    Tag::Stop.write(&mut msg);
    end.send(&msg)
}

/// Receives until the stop message; counts and times the data messages.
pub fn consumer<E: Endpoint + ?Sized>(end: &mut E, payload: usize) -> Result<Rate> {
    let mut msg = vec![0u8; payload];
    let mut first = None;
    let mut lost_before = 0;
    let mut messages = 0u64;
    loop {
        end.recv(&mut msg)?;
        match Tag::read(&msg)? {
            Tag::Warmup => {}
            Tag::Data => {
                if first.is_none() {
                    first = Some(Instant::now());
                    lost_before = end.lost();
                }
                messages += 1;
            }
            Tag::Stop => break,
            Tag::Bulk => return Err(BenchError::Protocol("fan-out message in throughput".into())),
        }
    }
    let elapsed = first.map(|f| f.elapsed());
    let Some(elapsed) = elapsed else {
        return Err(BenchError::Protocol(match end.lost() {
            0 => "no data message arrived".into(),
            n => format!("no data message was received ({n} messages lost to lapping)"),
        }));
    };
    Ok(Rate {
        messages,
        elapsed,
        lost: end.lost() - lost_before,
    })
}

/// Copies a `payload`-byte buffer into another, repeatedly, on this core.
pub fn memcpy(payload: usize, timing: &Timing) -> Rate {
    let src = vec![0xa5u8; payload];
    let mut dst = vec![0u8; payload];
    // Copies between two clock reads: about 64 KiB of work, at least one copy.
    let batch = (64 * 1024 / payload.max(1)).max(1) as u64;
    let mut run = |phase: Duration| {
        let start = Instant::now();
        let mut messages = 0u64;
        loop {
            for _ in 0..batch {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            }
            messages += batch;
            let elapsed = start.elapsed();
            if elapsed >= phase {
                return Rate {
                    messages,
                    elapsed,
                    lost: 0,
                };
            }
        }
    };
    run(timing.warmup);
    run(timing.measure)
}
