//! The trust boundary, tried: every subscriber maps the control header (publisher line,
//! wake words and the whole subscriber table) read-write, so a buggy or hostile
//! subscriber can write garbage there. It can disturb the others (lose them messages,
//! evict or disconnect them, cost the publisher spare wake calls, hold a `Block` publisher
//! back like a slow subscriber), but it must never make anyone panic or wait past its own
//! timeout. This test scribbles random words over everything a subscriber can write while
//! a publisher and two subscribers run with timeouts, for both policies; and on a topic
//! that three publishers share, over the lane table (every lane's publisher, wake and owner
//! lines) and the subscribers' per-lane cursors, while two of its publishers publish.

mod common;

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use ringcast::*;
use ringcast_core::layout::Header;

const CALL: Duration = Duration::from_millis(30);
/// What a call with timeout `CALL` may take on a loaded machine before we call it a hang.
const HANG: Duration = Duration::from_secs(3);

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let r = f();
    assert!(
        started.elapsed() < HANG,
        "{what} took {:?} with a {CALL:?} timeout",
        started.elapsed()
    );
    r
}

/// Writes random words over `[from, len)` of the segment's header mapping until `stop`.
fn scribble(path: String, from: usize, len: usize, stop: Arc<AtomicBool>) -> u64 {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open the segment read-write, as a subscriber does");
    // SAFETY: a fresh shared mapping of the file's first `len` bytes; nothing in this
    // test holds Rust references into it (the ringcast handles have their own mappings,
    // whose words are atomics), and it is unmapped before the file closes.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED);
    let mut x = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
    let mut writes = 0;
    while !stop.load(Ordering::Relaxed) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = from + ((x >> 8) as usize % (len - from)) / 8 * 8;
        // Small values and extremes are the interesting ones for cursors and states.
        let v = match x & 7 {
            0 => 0,
            1 => u64::MAX,
            2 => x >> 60,
            3 => 1,
            _ => x,
        };
        // SAFETY: `off` is 8-aligned and inside the mapping; an atomic store, as the
        // other processes' accesses to these words are atomic too.
        unsafe { &*(base.cast::<u8>().add(off) as *const std::sync::atomic::AtomicU64) }
            .store(v, Ordering::Relaxed);
        writes += 1;
        if writes % 64 == 0 {
            std::thread::yield_now();
        }
    }
    // SAFETY: unmapping the mapping made above.
    unsafe { libc::munmap(base, len) };
    writes
}

fn subscriber_loop(prefix: String, topic: String, stop: Arc<AtomicBool>) -> u64 {
    let opts = SubscriberOptions::default()
        .prefix(&prefix)
        .start(Start::Oldest)
        .init_wait(Duration::from_millis(20));
    let mut received = 0;
    let mut sub = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(s) = sub.as_mut() else {
            // Attach may fail while the table is garbage (or the topic looks closed).
            sub = timed("attach", || Subscriber::attach(&topic, opts.clone()).ok());
            if sub.is_none() {
                std::thread::sleep(Duration::from_millis(1));
            }
            continue;
        };
        match timed("recv_timeout", || s.recv_timeout(CALL).map(|m| m.len())) {
            Ok(_) => received += 1,
            Err(RecvTimeoutError::Evicted | RecvTimeoutError::Disconnected) => sub = None,
            Err(_) => {}
        }
        let _ = timed("try_recv", || s_try(sub.as_mut()));
    }
    received
}

fn s_try(sub: Option<&mut Subscriber>) -> bool {
    sub.is_some_and(|s| s.try_recv().is_ok())
}

fn run(overflow: Overflow, publishers: usize) {
    let n = Names::new("scrib", "header");
    let mut cfg = PublisherConfig::default()
        .prefix(&n.prefix)
        .slots(8)
        .slot_size(64)
        .overflow(overflow);
    if publishers > 1 {
        cfg = cfg.max_publishers(publishers as u64 + 1);
    }
    if overflow == Overflow::Block {
        cfg = cfg.stall_timeout(Duration::from_millis(20));
    }
    let mut p = Publisher::create(&n.topic, cfg.clone()).expect("create");
    let stop = Arc::new(AtomicBool::new(false));
    // The other publishers of a shared topic: each in its lane, publishing with timeouts.
    let others: Vec<_> = (1..publishers)
        .map(|_| {
            let mut q = Publisher::create(&n.topic, cfg.clone()).expect("join");
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(loan) = timed("joined loan_timeout", || q.loan_timeout(CALL)) {
                        loan.commit(8);
                        sent += 1;
                    }
                }
                timed("joined drop", || drop(q));
                sent
            })
        })
        .collect();
    let subs: Vec<_> = (0..2)
        .map(|_| {
            let (prefix, topic, stop) = (n.prefix.clone(), n.topic.clone(), stop.clone());
            std::thread::spawn(move || subscriber_loop(prefix, topic, stop))
        })
        .collect();
    let info = ringcast::inspect::inspect(&n.prefix, &n.topic).expect("inspect");
    let header_size = info.geometry.header_size as usize;
    let scribbler = {
        let path = format!("/dev/shm/{}.{}", n.prefix, n.topic);
        let from = std::mem::offset_of!(Header, sub_wake);
        let stop = stop.clone();
        std::thread::spawn(move || scribble(path, from, header_size, stop))
    };
    let started = Instant::now();
    let mut published = 0u64;
    while started.elapsed() < Duration::from_millis(800) {
        if let Ok(mut loan) = timed("loan_timeout", || p.loan_timeout(CALL)) {
            loan.write_at(0, &published.to_le_bytes());
            loan.commit(8);
            published += 1;
        }
        if published.is_multiple_of(64) {
            let _ = timed("try_loan", || p.try_loan().map(|l| l.commit(0)));
            let _ = timed("subscriber_count", || p.subscriber_count());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let writes = scribbler.join().expect("scribbler");
    for o in others {
        o.join().expect("a joined publisher panicked");
    }
    for s in subs {
        s.join().expect("a subscriber thread panicked");
    }
    timed("drop", || drop(p));
    assert!(writes > 1000, "the scribbler barely ran ({writes} writes)");
}

#[test]
fn scribbling_the_header_under_block_never_hangs_or_panics_anyone() {
    run(Overflow::Block, 1);
}

#[test]
fn scribbling_the_lane_table_of_a_shared_topic_never_hangs_or_panics_anyone() {
    run(Overflow::Block, 2);
    run(Overflow::Overwrite, 2);
}

#[test]
fn scribbling_the_header_under_overwrite_never_hangs_or_panics_anyone() {
    run(Overflow::Overwrite, 1);
}
