//! Fan-out: one publisher process, N subscriber processes; one-way latency to
//! each subscriber, and messages delivered per second in total.
//!
//! The publisher (the parent) runs three phases, then sends the stop message:
//! 1. warm-up: paced messages ([`PACE`] apart), not counted;
//! 2. latency: paced messages tagged [`Tag::Data`], each carrying in bytes
//!    8..16 the `CLOCK_MONOTONIC` time read just before it was sent; every
//!    subscriber records `its own clock on receipt - that time` into an HDR
//!    histogram;
//! 3. bulk: back-to-back messages tagged [`Tag::Bulk`], for the measured phase's
//!    length; every subscriber counts them from the first to the stop message.
//!
//! **The clock.** A one-way time without a round trip needs a clock that every
//! process reads alike. `CLOCK_MONOTONIC` is one clock for the whole machine
//! (the kernel keeps its clock source consistent across CPUs), so a reading in
//! the publisher and one in a subscriber can be subtracted: this holds on one
//! machine only, which is all this suite measures. Each figure includes one
//! clock read at each end (~20 ns each through the vDSO). A negative difference
//! would mean the clocks disagree; such samples are counted and reported, never
//! recorded.
//!
//! **The pace.** Paced messages keep the latency phase free of queueing: [`PACE`]
//! is well above the time all subscribers need to wake and take a message (they
//! share one CPU, so up to N wake-ups in turn), so each sample is the
//! transport's latency to that subscriber, not time spent behind earlier
//! messages. The bulk phase is the opposite: a full ring, every subscriber
//! draining it as fast as it can, and the publisher held back (`Block`) by the
//! slowest one.
//!
//! Each subscriber reports to the parent as text on its stdout ([`Received::write`],
//! [`Received::parse`]); the parent merges the histograms, so a row's
//! percentiles are over every (subscriber, message) pair, and sums the
//! subscribers' delivered rates.

use std::fmt::Write as _;
use std::hint::spin_loop;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::throughput::{Rate, SENDS_PER_CLOCK_CHECK};
use super::Timing;
use crate::error::{BenchError, Result};
use crate::transport::{Endpoint, Tag};

/// Bytes of a fan-out message the scenario reads: the tag, then the send time
/// (`CLOCK_MONOTONIC` nanoseconds, little-endian).
pub const HEADER_LEN: usize = Tag::LEN + 8;

/// The interval between two paced messages.
pub const PACE: Duration = Duration::from_micros(200);

/// Highest one-way time the histogram holds, in ns (longer ones saturate).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// What one subscriber measured.
#[derive(Debug)]
pub struct Received {
    /// One-way times of the paced data messages, in ns.
    pub latency: Histogram<u64>,
    /// Bulk messages received, from the first one to the stop message.
    pub bulk: Rate,
    /// Data messages whose receipt time read earlier than their send time.
    pub negative: u64,
}

impl Received {
    /// The report a subscriber prints on its stdout: `bulk <messages>
    /// <elapsed ns>`, `negative <count>`, one `h <ns> <count>` line per
    /// histogram bucket in use, then `end`.
    pub fn write(&self) -> String {
        let mut out = format!(
            "bulk {} {}\nnegative {}\n",
            self.bulk.messages,
            self.bulk.elapsed.as_nanos(),
            self.negative
        );
        for v in self.latency.iter_recorded() {
            // The bucket's highest equivalent value re-records into the same bucket.
            let _ = writeln!(out, "h {} {}", v.value_iterated_to(), v.count_at_value());
        }
        out.push_str("end\n");
        out
    }

    /// Parses [`write`](Self::write)'s text (from a child's stdout).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |line: &str| BenchError::Protocol(format!("fan-out report line {line:?}"));
        let mut latency = new_histogram()?;
        let mut bulk = None;
        let mut negative = 0;
        let mut complete = false;
        for line in text.lines() {
            let mut words = line.split_ascii_whitespace();
            let key = words.next();
            let mut number = || -> Result<u64> {
                words
                    .next()
                    .and_then(|w| w.parse().ok())
                    .ok_or_else(|| bad(line))
            };
            match key {
                Some("bulk") => {
                    let messages = number()?;
                    let elapsed = Duration::from_nanos(number()?);
                    bulk = Some(Rate {
                        messages,
                        elapsed,
                        lost: 0,
                    });
                }
                Some("negative") => negative = number()?,
                Some("h") => {
                    let (value, count) = (number()?, number()?);
                    latency.record_n(value, count).map_err(|_| bad(line))?;
                }
                Some("end") => complete = true,
                _ => return Err(bad(line)),
            }
        }
        match bulk {
            Some(bulk) if complete => Ok(Self {
                latency,
                bulk,
                negative,
            }),
            _ => Err(BenchError::Protocol(
                "fan-out report incomplete (no bulk or end line)".into(),
            )),
        }
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NS, 3)
        .map_err(|e| BenchError::Protocol(format!("histogram: {e}")))
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock all processes of the machine share.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call;
    // CLOCK_MONOTONIC always exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

fn write_time(msg: &mut [u8], ns: u64) {
    msg[Tag::LEN..HEADER_LEN].copy_from_slice(&ns.to_le_bytes());
}

fn read_time(msg: &[u8]) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&msg[Tag::LEN..HEADER_LEN]);
    u64::from_le_bytes(raw)
}

fn check_payload(payload: usize) -> Result<()> {
    if payload < HEADER_LEN {
        return Err(BenchError::Unsupported(format!(
            "fan-out needs at least {HEADER_LEN} bytes per message, not {payload}"
        )));
    }
    Ok(())
}

/// The publisher: paced warm-up, paced data, back-to-back bulk, stop.
pub fn publisher<E: Endpoint + ?Sized>(end: &mut E, payload: usize, timing: &Timing) -> Result<()> {
    check_payload(payload)?;
    let mut msg = vec![0u8; payload];
    for (tag, phase) in [(Tag::Warmup, timing.warmup), (Tag::Data, timing.measure)] {
        tag.write(&mut msg);
        let phase_end = Instant::now() + phase;
        let mut next = Instant::now();
        loop {
            write_time(&mut msg, monotonic_ns());
            end.send(&msg)?;
            next += PACE;
            if next >= phase_end {
                break;
            }
            // Spin, not sleep: the publisher has its CPU to itself, and a sleep's
            // timer slack would make the pace uneven.
            while Instant::now() < next {
                spin_loop();
            }
        }
    }
    Tag::Bulk.write(&mut msg);
    write_time(&mut msg, 0);
    let phase_end = Instant::now() + timing.measure;
    'bulk: loop {
        for _ in 0..SENDS_PER_CLOCK_CHECK {
            end.send(&msg)?;
        }
        if Instant::now() >= phase_end {
            break 'bulk;
        }
    }
    Tag::Stop.write(&mut msg);
    end.send(&msg)
}

/// A subscriber: records paced data messages, counts bulk ones, until stop.
pub fn subscriber<E: Endpoint + ?Sized>(end: &mut E, payload: usize) -> Result<Received> {
    check_payload(payload)?;
    let mut msg = vec![0u8; payload];
    let mut latency = new_histogram()?;
    let mut negative = 0;
    let mut first_bulk = None;
    let mut bulk = 0u64;
    loop {
        end.recv(&mut msg)?;
        match Tag::read(&msg)? {
            Tag::Warmup => {}
            Tag::Data => {
                let now = monotonic_ns();
                match now.checked_sub(read_time(&msg)) {
                    Some(ns) => latency.saturating_record(ns.max(1)),
                    None => negative += 1,
                }
            }
            Tag::Bulk => {
                if first_bulk.is_none() {
                    first_bulk = Some(Instant::now());
                }
                bulk += 1;
            }
            Tag::Stop => break,
        }
    }
    let first = first_bulk.ok_or_else(|| BenchError::Protocol("no bulk message arrived".into()))?;
    if latency.is_empty() {
        return Err(BenchError::Protocol("no paced data message arrived".into()));
    }
    Ok(Received {
        latency,
        bulk: Rate {
            messages: bulk,
            elapsed: first.elapsed(),
            lost: 0,
        },
        negative,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_text_round_trips() {
        let mut latency = new_histogram().unwrap();
        for ns in [150, 2_000, 2_001, 35_000, 35_000, 1_000_000] {
            latency.record(ns).unwrap();
        }
        let sent = Received {
            latency,
            bulk: Rate {
                messages: 1234,
                elapsed: Duration::from_nanos(987_654_321),
                lost: 0,
            },
            negative: 2,
        };
        let got = Received::parse(&sent.write()).unwrap();
        assert_eq!(got.bulk.messages, 1234);
        assert_eq!(got.bulk.elapsed, Duration::from_nanos(987_654_321));
        assert_eq!(got.negative, 2);
        assert_eq!(got.latency.len(), sent.latency.len());
        for q in [0.0, 0.5, 0.9, 1.0] {
            assert_eq!(
                got.latency.value_at_quantile(q),
                sent.latency.value_at_quantile(q)
            );
        }
    }

    #[test]
    fn truncated_report_is_an_error() {
        assert!(Received::parse("bulk 1 2\nnegative 0\nh 5 1\n").is_err());
        assert!(Received::parse("bulk 1\nend\n").is_err());
        assert!(Received::parse("hello\n").is_err());
    }
}
