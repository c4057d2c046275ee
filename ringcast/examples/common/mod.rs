//! Helpers shared by the examples: a cross-process clock, a small latency histogram, and
//! re-executing the example binary in another role.
#![allow(dead_code)]

pub mod sensors;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Nanoseconds on CLOCK_MONOTONIC: one clock for every process on the machine, so a
/// timestamp taken by the publisher can be compared with one taken by a subscriber.
pub fn monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64,
        // CLOCK_MONOTONIC cannot fail on Linux; 0 makes any latency absurd, not a crash.
        Err(_) => 0,
    }
}

/// A log-linear latency histogram: 1/64 relative precision, fixed size, no allocation
/// after construction.
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
}

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; (64 * SUB) as usize],
            total: 0,
            sum: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros() - SUB_BITS + 1;
        (exp as u64 * SUB + ((v >> (exp - 1)) & (SUB - 1))) as usize
    }

    fn value(i: usize) -> u64 {
        let (exp, sub) = (i as u64 / SUB, i as u64 % SUB);
        if exp == 0 {
            sub
        } else {
            (SUB | sub) << (exp - 1)
        }
    }

    /// Records one latency in nanoseconds.
    pub fn record(&mut self, ns: u64) {
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
        self.sum += ns as u128;
    }

    /// Mean in nanoseconds (0 when empty).
    pub fn mean(&self) -> u64 {
        (self.sum / self.total.max(1) as u128) as u64
    }

    /// The `q` quantile (0..=1) in nanoseconds, to 1/64 (0 when empty).
    pub fn quantile(&self, q: f64) -> u64 {
        let rank = ((self.total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i);
            }
        }
        0
    }
}

/// Starts this example's own binary again with `args` (the first is the role). Its
/// standard output is piped (for its `RESULT` line); standard error is shared.
pub fn spawn_role(args: &[String]) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
}

/// Waits for `child` at most until `deadline` (killing it then) and returns its `RESULT`
/// line, or why there is none.
pub fn result_of(mut child: Child, deadline: Instant) -> Result<String, String> {
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("timed out".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("wait failed: {e}")),
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    if !status.success() {
        return Err(format!("exited with {status}"));
    }
    out.lines()
        .find_map(|l| l.strip_prefix("RESULT ").map(str::to_owned))
        .ok_or_else(|| "printed no RESULT line".into())
}

/// `key=value` from a RESULT line, as a number (0 if missing).
pub fn field(result: &str, key: &str) -> u64 {
    result
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or(0)
}

/// Nanoseconds as microseconds with one decimal.
pub fn us(ns: u64) -> String {
    format!("{:.1} us", ns as f64 / 1000.0)
}

/// Bytes as megabytes (10^6) with one decimal.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
