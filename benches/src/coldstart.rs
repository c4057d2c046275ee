//! `--cold-start`: the first messages on a freshly created topic, with and without the
//! memory options (issue 17 item 4).
//!
//! Each trial creates a fresh pair of `Block` topics (1024 slots of 4 KiB, so every one of
//! the first 1000 messages lands on a page neither process has touched), starts the echo
//! child, and times [`FIRST`] round trips straight away, with no warm-up, then
//! [`STEADY`] more once the ring has wrapped (every slot used once). The variants alternate within each trial
//! (order rotated per trial), so a machine that changes speed moves them together; the
//! report gives merged one-way percentiles per variant and the median over trials of each
//! variant's first-1000 mean against `plain`'s mean in the same trial.
//!
//! Variants: `plain`; `prefault` (both sides fault the segment in at create / attach);
//! `prefault+mlock` (and lock it); `huge` (the publisher's segments on transparent huge
//! pages, prefaulted; subscribers prefault). `huge` runs only where /dev/shm offers huge
//! pages (else it is reported as unavailable with the reason): run the suite in a private
//! mount namespace whose /dev/shm is a `huge=advise` tmpfs to measure it (README).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringcast::{
    Overflow, Publisher, PublisherConfig, Start, Subscriber, SubscriberOptions, WaitStrategy,
};

use crate::error::{BenchError, Result};
use crate::harness::{self, Child, Cpus};
use crate::transport::ringcast::{topic, unique_base, PREFIX};

/// Round trips timed from the first message on.
pub const FIRST: usize = 1000;
/// Round trips after the ring has wrapped once (every slot was used), timed as the steady
/// state; those between [`FIRST`] and the wrap are not counted.
pub const STEADY: usize = 20_000;
const SLOTS: u64 = 1024;
const SLOT: u64 = 4096;
/// Trials of a full run (each creates fresh topics for every variant).
pub const TRIALS: usize = 20;
const CHILD_DEADLINE: Duration = Duration::from_secs(60);
const PEER: Duration = Duration::from_secs(10);

/// How the segments of one trial are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// No memory options.
    Plain,
    /// Prefault on both sides.
    Prefault,
    /// Prefault and mlock on both sides.
    Locked,
    /// The publishers' segments on huge pages; subscribers prefault.
    Huge,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::Plain,
        Variant::Prefault,
        Variant::Locked,
        Variant::Huge,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Prefault => "prefault",
            Variant::Locked => "prefault+mlock",
            Variant::Huge => "huge",
        }
    }

    fn parse(s: &str) -> Option<Variant> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }

    fn publisher(self) -> PublisherConfig {
        let c = PublisherConfig::default()
            .prefix(PREFIX)
            .slots(SLOTS)
            .slot_size(SLOT)
            .overflow(Overflow::Block)
            .wait_strategy(WaitStrategy::BusySpin);
        match self {
            Variant::Plain => c,
            Variant::Prefault => c.prefault(true),
            Variant::Locked => c.prefault(true).lock_memory(true),
            Variant::Huge => c.huge_pages(true),
        }
    }

    fn subscriber(self) -> SubscriberOptions {
        let o = SubscriberOptions::default()
            .prefix(PREFIX)
            .start(Start::Oldest)
            .wait_strategy(WaitStrategy::BusySpin);
        match self {
            Variant::Plain => o,
            Variant::Prefault | Variant::Huge => o.prefault(true),
            Variant::Locked => o.prefault(true).lock_memory(true),
        }
    }
}

fn create(name: &str, v: Variant) -> Result<Publisher> {
    Publisher::create(name, v.publisher())
        .map_err(|e| BenchError::Ringcast(format!("create {name}: {e}")))
}

fn attach(name: &str, v: Variant) -> Result<Subscriber> {
    Subscriber::attach_wait(name, v.subscriber(), PEER)
        .map_err(|e| BenchError::Ringcast(format!("attach {name}: {e}")))
}

/// One message: the loan path, as in the ping-pong rows (8 bytes written in place).
fn send(p: &mut Publisher, word: u64) {
    let mut loan = p.loan();
    loan[..8].copy_from_slice(&word.to_le_bytes());
    loan.commit(64);
}

fn recv(s: &mut Subscriber) -> Result<u64> {
    let m = s
        .recv()
        .map_err(|e| BenchError::Ringcast(format!("receive: {e}")))?;
    Ok(u64::from_le_bytes(m[..8].try_into().expect("8 bytes")))
}

/// The echo child: `cold VARIANT BASE CPU`.
pub fn child_main(args: &[String]) -> Result<()> {
    let bad = || BenchError::Protocol("cold-start child arguments".into());
    let [variant, base, cpu] = args else {
        return Err(bad());
    };
    let v = Variant::parse(variant).ok_or_else(bad)?;
    harness::pin_to(cpu.parse().map_err(|_| bad())?)?;
    let mut down = attach(&topic(base, "down"), v)?;
    let mut up = create(&topic(base, "up"), v)?;
    harness::report_ready()?;
    up.wait_for_subscribers(1, PEER)
        .map_err(|_| BenchError::Timeout {
            what: "the parent to attach",
            secs: PEER.as_secs(),
        })?;
    loop {
        let w = recv(&mut down)?;
        send(&mut up, w);
        if w == u64::MAX {
            return Ok(());
        }
    }
}

/// One trial of one variant: one-way latencies (ns) of the first and the steady messages.
fn trial(
    v: Variant,
    cpus: Cpus,
    first: &mut Histogram<u64>,
    steady: &mut Histogram<u64>,
) -> Result<f64> {
    let base = unique_base();
    let mut down = create(&topic(&base, "down"), v)?;
    let args = [
        "cold".to_owned(),
        v.name().to_owned(),
        base.clone(),
        cpus.child.to_string(),
    ];
    let mut child = Child::spawn(&args, &[], CHILD_DEADLINE)?;
    child.wait_ready(PEER)?;
    let mut up = attach(&topic(&base, "up"), v)?;
    down.wait_for_subscribers(1, PEER)
        .map_err(|_| BenchError::Timeout {
            what: "the child to attach",
            secs: PEER.as_secs(),
        })?;
    let mut sum = 0u64;
    for i in 0..SLOTS + STEADY as u64 {
        let t0 = Instant::now();
        send(&mut down, i);
        let back = recv(&mut up)?;
        let one_way = (t0.elapsed().as_nanos() / 2) as u64;
        if back != i {
            return Err(BenchError::Protocol(format!("echo {back} for {i}")));
        }
        if (i as usize) < FIRST {
            first.saturating_record(one_way);
            sum += one_way;
        } else if i >= SLOTS {
            steady.saturating_record(one_way);
        }
    }
    send(&mut down, u64::MAX);
    child.finish(PEER)?;
    Ok(sum as f64 / FIRST as f64)
}

/// Runs `trials` trials of every variant and prints the report (Markdown) on stdout.
pub fn run(cpus: Cpus, trials: usize) -> Result<()> {
    let mut variants: Vec<Variant> = Variant::ALL.to_vec();
    if let Err(why) = ringcast::huge_pages_offered("/dev/shm") {
        println!("`huge`: not measured: {why}\n");
        variants.retain(|&v| v != Variant::Huge);
    }
    let hist = || Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
    let mut first: Vec<_> = variants.iter().map(|_| hist()).collect();
    let mut steady: Vec<_> = variants.iter().map(|_| hist()).collect();
    let mut ratios: Vec<Vec<f64>> = variants.iter().map(|_| Vec::new()).collect();
    for t in 0..trials {
        let mut means = vec![0.0; variants.len()];
        for k in 0..variants.len() {
            let i = (k + t) % variants.len();
            means[i] = trial(variants[i], cpus, &mut first[i], &mut steady[i])?;
        }
        for i in 0..variants.len() {
            ratios[i].push(means[i] / means[0]);
        }
        eprintln!(
            "ringcast-bench: cold start trial {} of {trials} done",
            t + 1
        );
    }
    println!(
        "Cold start: {trials} trials, fresh `Block` topics of {SLOTS} x {} KiB slots per trial and variant, one-way = round trip / 2.\n",
        SLOT / 1024
    );
    println!("| variant | first {FIRST}: p50 | p99 | p99.9 | max | mean vs `plain` (median, min..max of trials) | after: p50 | p99.9 | max |");
    println!("|---|---:|---:|---:|---:|---|---:|---:|---:|");
    let us = |ns: u64| format!("{:.2} µs", ns as f64 / 1000.0);
    for (i, v) in variants.iter().enumerate() {
        let (f, s) = (&first[i], &steady[i]);
        let r = &mut ratios[i];
        r.sort_by(f64::total_cmp);
        println!(
            "| `{}` | {} | {} | {} | {} | {:.2}x ({:.2}..{:.2}) | {} | {} | {} |",
            v.name(),
            us(f.value_at_quantile(0.5)),
            us(f.value_at_quantile(0.99)),
            us(f.value_at_quantile(0.999)),
            us(f.max()),
            r[r.len() / 2],
            r[0],
            r[r.len() - 1],
            us(s.value_at_quantile(0.5)),
            us(s.value_at_quantile(0.999)),
            us(s.max()),
        );
    }
    Ok(())
}
