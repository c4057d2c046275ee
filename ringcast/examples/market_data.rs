//! market_data: a feed of typed ticks, published as fast as possible under `Overwrite` to
//! two subscriber processes, one fast and one deliberately slow.
//!
//! ```text
//! cargo run --release --example market_data
//! ```
//!
//! The example re-executes itself as three processes: a publisher that archives ticks
//! with rkyv straight into the ring for two seconds, and two subscribers that validate
//! every tick they get and check each field against the tick's sequence number. The
//! publisher never waits for anyone, so the slow subscriber is lapped; it is told exactly
//! how many ticks it lost, and `received + lost == published` is checked for both. One-way
//! latency is the subscriber's CLOCK_MONOTONIC minus the publish time inside the tick.
//! Prints one summary line; exits non-zero if any check fails.

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{field, mb, monotonic_ns, result_of, spawn_role, us, Histogram};
use ringcast::{
    Overflow, PublisherConfig, RecvError, SubscriberOptions, TypedPublisher, TypedRecvError,
    TypedSubscriber,
};
use rkyv::{Archive, Serialize};

const TOPIC: &str = "ticks";
const PUBLISH_FOR: Duration = Duration::from_secs(2);
const SYMBOLS: u64 = 512;

/// Which side of the book a tick is on.
#[derive(Archive, Serialize, Clone, Copy, PartialEq)]
#[rkyv(compare(PartialEq))]
enum Side {
    Bid,
    Ask,
}

/// One market-data tick: fixed size, archived in place, no heap fields.
#[derive(Archive, Serialize)]
struct Tick {
    /// The publisher's sequence number for this tick.
    seq: u64,
    symbol: u32,
    /// Price in millionths.
    price: i64,
    size: u32,
    side: Side,
    /// When the tick was made (CLOCK_MONOTONIC ns).
    exchange_ns: u64,
    /// When it was handed to ringcast (CLOCK_MONOTONIC ns).
    publish_ns: u64,
}

/// The deterministic content of tick `seq`, so subscribers can check every field.
fn expected(seq: u64) -> (u32, i64, u32, Side) {
    let symbol = (seq % SYMBOLS) as u32;
    let price = 100_000_000 + symbol as i64 * 10_000 + (seq % 1000) as i64;
    let side = if seq.is_multiple_of(2) {
        Side::Bid
    } else {
        Side::Ask
    };
    (symbol, price, 1 + (seq % 997) as u32, side)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        None => parent(),
        Some("publisher") if args.len() == 2 => publisher(&args[1]),
        Some("subscriber") if args.len() == 3 => subscriber(&args[1], args[2] == "slow"),
        _ => Err("usage: market_data [publisher PREFIX | subscriber PREFIX fast|slow]".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("market_data {}: {e}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

fn parent() -> Result<(), String> {
    let prefix = format!("rcexmd{}", std::process::id());
    let role = |r: &[&str]| {
        let args: Vec<String> = r.iter().map(|s| s.to_string()).collect();
        spawn_role(&args).map_err(|e| format!("cannot start {}: {e}", r[0]))
    };
    let fast = role(&["subscriber", &prefix, "fast"])?;
    let slow = role(&["subscriber", &prefix, "slow"])?;
    let publisher = role(&["publisher", &prefix])?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let results = [
        result_of(publisher, deadline),
        result_of(fast, deadline),
        result_of(slow, deadline),
    ];
    // The publisher unlinks the topic when it ends; this covers the case where it died.
    let _ = ringcast::inspect::remove(&prefix, TOPIC);
    let [p, f, s] = results;
    let (p, f, s) = (
        p.map_err(|e| format!("publisher: {e}"))?,
        f.map_err(|e| format!("fast subscriber: {e}"))?,
        s.map_err(|e| format!("slow subscriber: {e}"))?,
    );
    let published = field(&p, "published");
    for (name, r) in [("fast", &f), ("slow", &s)] {
        let (received, lost) = (field(r, "received"), field(r, "lost"));
        if received + lost != published {
            return Err(format!(
                "{name} subscriber: received {received} + lost {lost} != published {published}"
            ));
        }
    }
    let secs = field(&p, "elapsed_us") as f64 / 1e6;
    let side = |r: &str| {
        format!(
            "received {} ({}), lost {}, latency mean {} p99 {}",
            field(r, "received"),
            mb(field(r, "bytes")),
            field(r, "lost"),
            us(field(r, "mean_ns")),
            us(field(r, "p99_ns")),
        )
    };
    println!(
        "market_data: {published} ticks ({}) in {secs:.2} s ({:.1} M/s) under Overwrite; \
         fast: {}; slow: {} (lag reported exactly: received + lost = published)",
        mb(field(&p, "bytes")),
        published as f64 / secs.max(1e-9) / 1e6,
        side(&f),
        side(&s),
    );
    Ok(())
}

fn publisher(prefix: &str) -> Result<(), String> {
    let config = PublisherConfig::default()
        .prefix(prefix)
        .slots(1024)
        .slot_size(64)
        .overflow(Overflow::Overwrite);
    let mut feed = TypedPublisher::<Tick>::create(TOPIC, config).map_err(|e| e.to_string())?;
    feed.wait_for_subscribers(2, Duration::from_secs(10))
        .map_err(|n| format!("only {n} of 2 subscribers attached"))?;
    let start = Instant::now();
    let (mut seq, mut bytes) = (0u64, 0u64);
    // Look at the clock once per batch; publish flat out in between.
    while start.elapsed() < PUBLISH_FOR {
        for _ in 0..1024 {
            let (symbol, price, size, side) = expected(seq);
            let exchange_ns = monotonic_ns();
            let tick = Tick {
                seq,
                symbol,
                price,
                size,
                side,
                exchange_ns,
                publish_ns: monotonic_ns(),
            };
            feed.send(&tick).map_err(|e| e.to_string())?;
            bytes += std::mem::size_of::<ArchivedTick>() as u64;
            seq += 1;
        }
    }
    let elapsed = start.elapsed();
    println!(
        "RESULT published={seq} bytes={bytes} elapsed_us={}",
        elapsed.as_micros()
    );
    Ok(())
}

fn subscriber(prefix: &str, slow: bool) -> Result<(), String> {
    let opts = SubscriberOptions::default().prefix(prefix);
    let mut feed = TypedSubscriber::<Tick>::attach_wait(TOPIC, opts, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let mut latency = Histogram::new();
    let (mut expected_seq, mut received, mut lost, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    loop {
        match feed.recv() {
            Ok(tick) => {
                let now = monotonic_ns();
                let seq = tick.seq.to_native();
                let (symbol, price, size, side) = expected(seq);
                let ok = seq == expected_seq
                    && tick.seq() == seq
                    && tick.symbol == symbol
                    && tick.price == price
                    && tick.size == size
                    && tick.side == side
                    && tick.exchange_ns.to_native() <= tick.publish_ns.to_native();
                if !ok {
                    return Err(format!("tick {seq} (expected {expected_seq}) is wrong"));
                }
                latency.record(now.saturating_sub(tick.publish_ns.to_native()));
                bytes += tick.bytes().len() as u64;
                received += 1;
                expected_seq += 1;
                if slow && received % 1000 == 0 {
                    // A consumer that does real work: it falls behind and gets lapped.
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Err(TypedRecvError::Recv(RecvError::Lagged(n))) => {
                lost += n;
                expected_seq += n;
            }
            Err(TypedRecvError::Recv(RecvError::Disconnected)) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    if feed.lost() != lost {
        return Err(format!(
            "lag reports add up to {lost}, the subscriber counted {}",
            feed.lost()
        ));
    }
    println!(
        "RESULT received={received} lost={lost} bytes={bytes} mean_ns={} p99_ns={}",
        latency.mean(),
        latency.quantile(0.99)
    );
    Ok(())
}
