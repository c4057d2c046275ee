//! camera_frames: 4 MiB frames at 30 frames per second under `Block`, to two subscriber
//! processes that verify every frame byte for byte, in place.
//!
//! ```text
//! cargo run --release --example camera_frames
//! ```
//!
//! The example re-executes itself as three processes. The publisher "captures" each frame
//! straight into a loaned shared-memory slot (the pixels are produced there: no frame
//! buffer, no copy), stamps a small header with the frame number, a checksum and the
//! publish time, and commits. Both subscribers read each frame in place (the slot stays
//! theirs until they drop the sample), check the checksum, and compare every byte against
//! the frame regenerated locally; the second one also holds each frame for 10 ms, which
//! `Block` must survive without a single overwritten byte. Prints one summary line; exits
//! non-zero if any check fails.

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{field, mb, monotonic_ns, result_of, spawn_role, us, Histogram};
use ringcast::{Overflow, Publisher, PublisherConfig, RecvError, Subscriber, SubscriberOptions};

const TOPIC: &str = "camera";
const FPS: u64 = 30;
const FRAMES: u64 = 3 * FPS;
const WIDTH: usize = 1024;
const HEIGHT: usize = 1024;
/// RGBA pixels: 4 MiB.
const PIXELS: usize = WIDTH * HEIGHT * 4;
/// Frame header: magic, frame number, width, height, publish time, checksum.
const HEADER: usize = 64;
const MAGIC: u64 = u64::from_le_bytes(*b"RCFRAME1");

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        None => parent(),
        Some("publisher") if args.len() == 2 => publisher(&args[1], 2),
        // Another process (e.g. python/examples/camera_subscriber.py) brings the
        // subscribers.
        Some("publisher") if args.len() == 3 => match args[2].parse() {
            Ok(n) => publisher(&args[1], n),
            Err(_) => Err(format!("not a subscriber count: {}", args[2])),
        },
        Some("subscriber") if args.len() == 3 => subscriber(&args[1], args[2] == "holding"),
        _ => {
            Err("usage: camera_frames [publisher PREFIX [SUBSCRIBERS] | subscriber PREFIX quick|holding]".into())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camera_frames {}: {e}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

/// Fills `pixels` with frame `n`'s image and returns its checksum. A pseudo-random image
/// (splitmix64 per 8-byte word), so that a stale or shifted byte anywhere is caught.
fn render(n: u64, pixels: &mut [u8]) -> u64 {
    let mut sum = 0u64;
    for (k, word) in pixels.chunks_exact_mut(8).enumerate() {
        let v = splitmix(n << 32 | k as u64);
        word.copy_from_slice(&v.to_le_bytes());
        sum = checksum_step(sum, v);
    }
    sum
}

fn checksum(pixels: &[u8]) -> u64 {
    pixels.chunks_exact(8).fold(0, |sum, w| {
        checksum_step(sum, u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
    })
}

fn checksum_step(sum: u64, word: u64) -> u64 {
    (sum ^ word)
        .rotate_left(5)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn put(header: &mut [u8], word: usize, v: u64) {
    header[word * 8..word * 8 + 8].copy_from_slice(&v.to_le_bytes());
}

fn get(header: &[u8], word: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&header[word * 8..word * 8 + 8]);
    u64::from_le_bytes(b)
}

fn parent() -> Result<(), String> {
    let prefix = format!("rcexcam{}", std::process::id());
    let role = |r: &[&str]| {
        let args: Vec<String> = r.iter().map(|s| s.to_string()).collect();
        spawn_role(&args).map_err(|e| format!("cannot start {}: {e}", r[0]))
    };
    let quick = role(&["subscriber", &prefix, "quick"])?;
    let holding = role(&["subscriber", &prefix, "holding"])?;
    let publisher = role(&["publisher", &prefix])?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let results = [
        result_of(publisher, deadline),
        result_of(quick, deadline),
        result_of(holding, deadline),
    ];
    let _ = ringcast::inspect::remove(&prefix, TOPIC);
    let [p, q, h] = results;
    let (p, q, h) = (
        p.map_err(|e| format!("publisher: {e}"))?,
        q.map_err(|e| format!("quick subscriber: {e}"))?,
        h.map_err(|e| format!("holding subscriber: {e}"))?,
    );
    let published = field(&p, "published");
    for (name, r) in [("quick", &q), ("holding", &h)] {
        if field(r, "received") != published || field(r, "lost") != 0 {
            return Err(format!("{name} subscriber got {r}, published {published}"));
        }
    }
    let mut all = Histogram::new();
    let received = field(&q, "received") + field(&h, "received");
    for r in [&q, &h] {
        let lat = r.split_whitespace().find_map(|kv| kv.strip_prefix("lat="));
        for ns in lat.unwrap_or("").split(',').filter_map(|x| x.parse().ok()) {
            all.record(ns);
        }
    }
    println!(
        "camera_frames: {published} frames of {} MiB at {FPS} fps in {:.2} s under Block; \
         2 subscribers received {received} ({}), lost 0, every byte verified in place; \
         one-way latency mean {} p99 {}",
        PIXELS >> 20,
        field(&p, "elapsed_us") as f64 / 1e6,
        mb(field(&q, "bytes") + field(&h, "bytes")),
        us(all.mean()),
        us(all.quantile(0.99)),
    );
    Ok(())
}

fn publisher(prefix: &str, subscribers: usize) -> Result<(), String> {
    let config = PublisherConfig::default()
        .prefix(prefix)
        .slots(4)
        .slot_size((HEADER + PIXELS) as u64)
        .overflow(Overflow::Block);
    let mut camera = Publisher::create(TOPIC, config).map_err(|e| e.to_string())?;
    camera
        .wait_for_subscribers(subscribers, Duration::from_secs(10))
        .map_err(|n| format!("only {n} of {subscribers} subscribers attached"))?;
    let start = Instant::now();
    let period = Duration::from_nanos(1_000_000_000 / FPS);
    for n in 0..FRAMES {
        if let Some(wait) = (start + period * n as u32).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // Waits (spin, then futex) while a subscriber still holds the oldest slot.
        let mut loan = camera.loan();
        let (header, rest) = loan.split_at_mut(HEADER);
        let sum = render(n, &mut rest[..PIXELS]);
        put(header, 0, MAGIC);
        put(header, 1, n);
        put(header, 2, WIDTH as u64);
        put(header, 3, HEIGHT as u64);
        put(header, 5, sum);
        put(header, 4, monotonic_ns());
        loan.commit(HEADER + PIXELS);
    }
    println!(
        "RESULT published={FRAMES} elapsed_us={}",
        start.elapsed().as_micros()
    );
    Ok(())
}

fn subscriber(prefix: &str, holding: bool) -> Result<(), String> {
    let opts = SubscriberOptions::default().prefix(prefix);
    let mut camera =
        Subscriber::attach_wait(TOPIC, opts, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let mut want = vec![0u8; PIXELS];
    let mut latencies = Vec::with_capacity(FRAMES as usize);
    let (mut received, mut bytes) = (0u64, 0u64);
    loop {
        match camera.recv() {
            Ok(frame) => {
                let now = monotonic_ns();
                let n = frame.seq();
                if frame.len() != HEADER + PIXELS {
                    return Err(format!("frame {n} has {} bytes", frame.len()));
                }
                let (header, pixels) = frame.split_at(HEADER);
                let ok_header = get(header, 0) == MAGIC
                    && get(header, 1) == n
                    && get(header, 2) == WIDTH as u64
                    && get(header, 3) == HEIGHT as u64;
                if !ok_header || checksum(pixels) != get(header, 5) {
                    return Err(format!("frame {n}: bad header or checksum"));
                }
                latencies.push(now.saturating_sub(get(header, 4)));
                render(n, &mut want);
                if pixels != want.as_slice() {
                    return Err(format!("frame {n} differs from what was rendered"));
                }
                if holding {
                    // Processing in place: the publisher must not touch this slot meanwhile.
                    std::thread::sleep(Duration::from_millis(10));
                    if checksum(pixels) != get(header, 5) || pixels != want.as_slice() {
                        return Err(format!("frame {n} changed while it was held"));
                    }
                }
                bytes += frame.len() as u64;
                received += 1;
            }
            Err(RecvError::Disconnected) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    let lat: Vec<String> = latencies.iter().map(u64::to_string).collect();
    println!(
        "RESULT received={received} lost={} bytes={bytes} lat={}",
        camera.lost(),
        lat.join(",")
    );
    Ok(())
}
