//! The hot path makes no system call when nobody sleeps (and exactly the wake calls needed
//! when someone does), and no heap allocation. Alone in its own test binary, because the
//! futex call counters and the counting allocator are per process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Counts allocations made while `COUNTING` is on (by any thread; the test keeps the
/// measured window single-threaded).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; the counter has no effect
// on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

use ringcast::*;
use ringcast_core::futex;

#[test]
fn publishing_without_sleepers_makes_no_futex_call_and_a_sleeper_is_woken() {
    let prefix = format!("rcnosys{}", std::process::id());
    let topic = "nosys";
    let mut p = Publisher::create(topic, PublisherConfig::default().prefix(&prefix).slots(64))
        .expect("create");
    // Both policies' receive paths: copy-out under Overwrite here; in place under Block below.
    block_receive_path_does_not_allocate(&prefix);
    let mut s =
        Subscriber::attach(topic, SubscriberOptions::default().prefix(&prefix)).expect("attach");

    let before = futex::wake_calls();
    for i in 0..10_000u32 {
        p.send(&i.to_le_bytes()).expect("send");
        if i % 32 == 0 {
            while s.try_recv().is_ok() {}
        }
    }
    assert_eq!(
        futex::wake_calls(),
        before,
        "a publish without sleepers made a wake call"
    );

    // Now a subscriber thread that really sleeps: the publisher must wake it.
    while s.try_recv().is_ok() {}
    let sleeper = std::thread::spawn(move || {
        let mut s = s;
        let waits = futex::wait_calls();
        let got = s
            .recv()
            .map(|m| m.to_vec())
            .expect("woken with the message");
        (got, futex::wait_calls() - waits)
    });
    std::thread::sleep(Duration::from_millis(100));
    p.send(b"wake up").expect("send");
    let (got, waits) = sleeper.join().expect("sleeper thread");
    assert_eq!(got, b"wake up");
    assert!(waits >= 1, "the subscriber never slept");
    assert!(
        futex::wake_calls() > before,
        "the sleeper was not woken by a wake call"
    );
}

fn block_receive_path_does_not_allocate(prefix: &str) {
    let topic = "nosys-block";
    let mut p = Publisher::create(
        topic,
        PublisherConfig::default()
            .prefix(prefix)
            .slots(64)
            .overflow(Overflow::Block),
    )
    .expect("create");
    let mut s =
        Subscriber::attach(topic, SubscriberOptions::default().prefix(prefix)).expect("attach");
    COUNTING.store(true, Ordering::SeqCst);
    for i in 0..10_000u32 {
        p.try_send(&i.to_le_bytes())
            .expect("room: we drain every message");
        let m = s.try_recv().expect("just published");
        assert_eq!(&*m, &i.to_le_bytes());
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        0,
        "the Block hot path allocated"
    );
}
