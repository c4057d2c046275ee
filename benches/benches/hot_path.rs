//! Criterion micro-benchmarks of ringcast's hot path, in one process.
//!
//! * `loan_commit/overwrite_no_subscriber`: loan a 64-byte `Overwrite` slot,
//!   write an 8-byte tag, commit: the publisher's whole per-message cost
//!   (stamp busy, payload, stamp committed, cursor, the SeqCst fence and the
//!   look at the sleeper count).
//! * `loan_commit/overwrite_one_subscriber`: the same while one subscriber
//!   thread busy-polls the topic with `try_recv` (verified copies, lapped at
//!   will): adds the cache-line traffic a live reader causes.
//! * `try_recv/empty`: a subscriber polling a topic with nothing new (the cost
//!   a spinning subscriber pays per look; one liveness system call every 1024
//!   empty polls is amortized in it).
//! * `publish_then_try_recv/block_in_place` and `.../overwrite_copy`: publish
//!   one 64-byte message and receive it in the same thread: the in-place
//!   `Block` sample (held, then released) against the `Overwrite` verified copy.
//! * `typed_send_then_recv/{block,overwrite}`: a small typed struct (a market-data
//!   tick) archived with rkyv straight into the slot, then received and validated with
//!   bytecheck (in place under `Block`, on the copy under `Overwrite`).
//!
//! * `publish_vs_subscribers/{overwrite_idle,block_drained}/N`, N = 1, 8, 64, 512: the
//!   publish cost with N subscribers attached. `overwrite_idle`: none of them reads (an
//!   `Overwrite` publisher never looks at them). `block_drained`: all of them read, in
//!   this thread, after every 32 publishes (untimed); the publisher scans the table only
//!   when it reaches its cached limit, so the scan is amortized over the messages it
//!   allows.
//!
//! Segments live under the private prefix `rcbench`, named after this
//! process, and are removed when each publisher drops. Measurement is kept
//! short (0.5 s warm-up, 1.5 s measured per benchmark); run with
//! `cargo bench -p ringcast-bench --bench hot_path`.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use criterion::{criterion_main, Criterion};
use ringcast::{
    Overflow, Publisher, PublisherConfig, Start, Subscriber, SubscriberOptions, TryRecvError,
    TypedPublisher, TypedSubscriber,
};

/// The small typed message of the typed micro-benchmark: a market-data tick.
#[derive(ringcast::rkyv::Archive, ringcast::rkyv::Serialize)]
#[rkyv(crate = ringcast::rkyv)]
struct Tick {
    symbol: u32,
    side: u8,
    size: u32,
    price: i64,
    sent_ns: u64,
}

/// Segment prefix shared with the benchmark suite.
const PREFIX: &str = "rcbench";

/// Message size of every micro-benchmark.
const PAYLOAD: usize = 64;

/// Bytes written into each loan (the suite's tag).
const TAG: [u8; 8] = 7u64.to_le_bytes();

fn topic(name: &str) -> String {
    format!("hot-{}-{name}", std::process::id())
}

/// A publisher of 64 slots of [`PAYLOAD`] bytes, or `None` (with the reason on
/// stderr) when this machine cannot create one: the benchmark is then skipped.
fn publisher(name: &str, overflow: Overflow) -> Option<Publisher> {
    let config = PublisherConfig::default()
        .prefix(PREFIX)
        .slots(64)
        .slot_size(PAYLOAD as u64)
        .overflow(overflow);
    match Publisher::create(&topic(name), config) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("hot_path: skipping {name}: {e}");
            None
        }
    }
}

fn subscriber(name: &str) -> Option<Subscriber> {
    let options = SubscriberOptions::default()
        .prefix(PREFIX)
        .start(Start::Oldest);
    match Subscriber::attach(&topic(name), options) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("hot_path: skipping {name}: {e}");
            None
        }
    }
}

/// One message on the loan path: the tag written in place, 64 bytes committed.
#[inline]
fn publish(p: &mut Publisher) -> u64 {
    let mut loan = p.loan();
    loan[..TAG.len()].copy_from_slice(&TAG);
    loan.commit(PAYLOAD)
}

fn loan_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("loan_commit");

    if let Some(mut p) = publisher("lc-alone", Overflow::Overwrite) {
        group.bench_function("overwrite_no_subscriber", |b| {
            b.iter(|| black_box(publish(&mut p)))
        });
    }

    let name = "lc-one";
    if let Some(mut p) = publisher(name, Overflow::Overwrite) {
        if let Some(mut sub) = subscriber(name) {
            let stop = Arc::new(AtomicBool::new(false));
            let reader = {
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let mut received = 0u64;
                    // Relaxed: a stop request, ordered with nothing else.
                    while !stop.load(Ordering::Relaxed) {
                        match sub.try_recv() {
                            Ok(sample) => received += u64::from(sample[0]),
                            Err(TryRecvError::Empty | TryRecvError::Lagged(_)) => {
                                std::hint::spin_loop()
                            }
                            Err(_) => break,
                        }
                    }
                    received
                })
            };
            group.bench_function("overwrite_one_subscriber", |b| {
                b.iter(|| black_box(publish(&mut p)))
            });
            // Relaxed: see the load above.
            stop.store(true, Ordering::Relaxed);
            // The reader only polls; a panic in it would be a library bug worth seeing.
            black_box(reader.join().expect("reader thread"));
        }
    }
    group.finish();
}

fn try_recv(c: &mut Criterion) {
    let name = "tr-empty";
    if let (Some(_p), Some(mut sub)) = (publisher(name, Overflow::Block), subscriber(name)) {
        c.bench_function("try_recv/empty", |b| {
            b.iter(|| black_box(sub.try_recv().is_err()))
        });
    }
}

fn publish_then_try_recv(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish_then_try_recv");
    for (label, overflow) in [
        ("block_in_place", Overflow::Block),
        ("overwrite_copy", Overflow::Overwrite),
    ] {
        let name = format!("ptr-{label}");
        let (Some(mut p), Some(mut sub)) = (publisher(&name, overflow), subscriber(&name)) else {
            continue;
        };
        group.bench_function(label, |b| {
            b.iter(|| {
                publish(&mut p);
                match sub.try_recv() {
                    Ok(sample) => black_box(sample[0]),
                    Err(e) => panic!("the message just published is not there: {e}"),
                }
            })
        });
    }
    group.finish();
}

fn typed_send_then_recv(c: &mut Criterion) {
    let mut group = c.benchmark_group("typed_send_then_recv");
    for (label, overflow) in [
        ("block", Overflow::Block),
        ("overwrite", Overflow::Overwrite),
    ] {
        let name = topic(&format!("typed-{label}"));
        let config = PublisherConfig::default()
            .prefix(PREFIX)
            .slots(64)
            .slot_size(PAYLOAD as u64)
            .overflow(overflow);
        let mut p = match TypedPublisher::<Tick>::create(&name, config) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("hot_path: skipping typed {label}: {e}");
                continue;
            }
        };
        let options = SubscriberOptions::default().prefix(PREFIX);
        let mut sub = match TypedSubscriber::<Tick>::attach(&name, options) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("hot_path: skipping typed {label}: {e}");
                continue;
            }
        };
        let mut i = 0u64;
        group.bench_function(label, |b| {
            b.iter(|| {
                i += 1;
                let tick = Tick {
                    symbol: 7,
                    side: 1,
                    size: 100,
                    price: 1_084_200 + i as i64,
                    sent_ns: i,
                };
                if let Err(e) = p.send(&tick) {
                    panic!("typed send failed: {e}");
                }
                match sub.try_recv() {
                    Ok(t) => black_box(t.price.to_native()),
                    Err(e) => panic!("the tick just published is not there: {e}"),
                }
            })
        });
    }
    group.finish();
}

/// A publisher for `n` subscribers and the `n` subscribers, or `None` (skipped).
fn topic_with_subscribers(
    name: &str,
    overflow: Overflow,
    n: usize,
) -> Option<(Publisher, Vec<Subscriber>)> {
    let config = PublisherConfig::default()
        .prefix(PREFIX)
        .slots(64)
        .slot_size(PAYLOAD as u64)
        .overflow(overflow)
        .max_subscribers(n as u64);
    let p = match Publisher::create(&topic(name), config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("hot_path: skipping {name}: {e}");
            return None;
        }
    };
    let subs = (0..n)
        .map(|_| subscriber(name))
        .collect::<Option<Vec<_>>>()?;
    Some((p, subs))
}

fn publish_vs_subscribers(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish_vs_subscribers");
    for n in [1usize, 8, 64, 512] {
        let name = format!("pvs-idle-{n}");
        if let Some((mut p, subs)) = topic_with_subscribers(&name, Overflow::Overwrite, n) {
            group.bench_function(format!("overwrite_idle/{n}"), |b| {
                b.iter(|| black_box(publish(&mut p)))
            });
            drop(subs);
        }
        let name = format!("pvs-block-{n}");
        if let Some((mut p, mut subs)) = topic_with_subscribers(&name, Overflow::Block, n) {
            const BURST: u64 = 32;
            group.bench_function(format!("block_drained/{n}"), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        let burst = BURST.min(iters - done);
                        let start = std::time::Instant::now();
                        for _ in 0..burst {
                            black_box(publish(&mut p));
                        }
                        timed += start.elapsed();
                        done += burst;
                        for s in subs.iter_mut() {
                            while let Ok(sample) = s.try_recv() {
                                black_box(sample[0]);
                            }
                        }
                    }
                    timed
                })
            });
        }
    }
    group.finish();
}

/// The group lives in a private module: `criterion_group!` defines an
/// undocumented `pub fn`, which `missing_docs` would flag at the crate root.
mod group {
    use criterion::criterion_group;

    use super::*;

    criterion_group! {
        name = hot_path;
        config = Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_millis(1500));
        targets = loan_commit, try_recv, publish_then_try_recv, typed_send_then_recv,
            publish_vs_subscribers
    }
}
criterion_main!(group::hot_path);
