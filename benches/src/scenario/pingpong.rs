//! Ping-pong: one-way latency as half a round trip between two pinned processes.
//!
//! The initiator (parent) times every round trip with one clock read per
//! iteration (each timestamp ends one round trip and starts the next), so the
//! ~20 ns of a vDSO clock read and a histogram record are inside every sample,
//! equally for every transport. Round trips go into an HDR histogram with 3
//! significant digits; [`crate::report`] halves them. A paced endpoint
//! ([`Endpoint::pace`]) pauses between round trips, outside the timed interval.

use std::time::Instant;

use hdrhistogram::Histogram;

use super::{nanos, Timing};
use crate::error::{BenchError, Result};
use crate::transport::{Endpoint, Tag};

/// Highest round trip the histogram holds, in ns (longer ones saturate).
const MAX_RTT_NS: u64 = 60_000_000_000;

/// A cap on samples, so that a very fast transport cannot run unbounded.
const MAX_SAMPLES: u64 = 100_000_000;

/// Runs warm-up then measured round trips, then tells the responder to stop.
/// Returns the histogram of round-trip times in nanoseconds.
pub fn initiator<E: Endpoint + ?Sized>(
    end: &mut E,
    payload: usize,
    timing: &Timing,
) -> Result<Histogram<u64>> {
    let mut msg = vec![0u8; payload];
    let mut reply = vec![0u8; payload];
    let mut hist = Histogram::<u64>::new_with_bounds(1, MAX_RTT_NS, 3)
        .map_err(|e| BenchError::Protocol(format!("histogram: {e}")))?;

    Tag::Warmup.write(&mut msg);
    let warm_end = Instant::now() + timing.warmup;
    loop {
        end.send(&msg)?;
        end.recv(&mut reply)?;
        expect_echo(&reply, Tag::Warmup)?;
        if Instant::now() >= warm_end {
            break;
        }
    }

    Tag::Data.write(&mut msg);
    let pace = end.pace();
    let mut prev = Instant::now();
    let stop_at = prev + timing.measure;
    loop {
        end.send(&msg)?;
        end.recv(&mut reply)?;
        let mut now = Instant::now();
        hist.saturating_record(nanos(now - prev));
        expect_echo(&reply, Tag::Data)?;
        if now >= stop_at || hist.len() >= MAX_SAMPLES {
            break;
        }
        if let Some(p) = pace {
            // Outside the timed interval: the clock restarts after the pause.
            std::thread::sleep(p);
            now = Instant::now();
        }
        prev = now;
    }

    Tag::Stop.write(&mut msg);
    end.send(&msg)?;
    Ok(hist)
}

/// Echoes every message back until the stop message arrives.
pub fn responder<E: Endpoint + ?Sized>(end: &mut E, payload: usize) -> Result<()> {
    let mut msg = vec![0u8; payload];
    loop {
        end.recv(&mut msg)?;
        if Tag::read(&msg)? == Tag::Stop {
            return Ok(());
        }
        end.send(&msg)?;
    }
}

fn expect_echo(reply: &[u8], sent: Tag) -> Result<()> {
    let got = Tag::read(reply)?;
    if got == sent {
        Ok(())
    } else {
        Err(BenchError::Protocol(format!(
            "sent {sent:?}, echo came back as {got:?}"
        )))
    }
}
