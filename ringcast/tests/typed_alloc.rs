//! The typed hot path makes no heap allocation per message for a fixed-size type: the
//! publisher serializes straight into the slot with scratch space it allocated at
//! creation, and the subscriber validates in place (or in its own preallocated copy) with
//! rkyv's allocation-free validator. Alone in its own test binary, because it swaps in a
//! counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use ringcast::*;
use rkyv::{Archive, Serialize};

/// Counts allocations made by threads that have switched counting on.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Const-initialized and without a destructor: reading it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        // Relaxed: a plain event counter, read after the counted section on this thread.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting has no
// effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's own obligations.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's own obligations.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's own obligations.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's own obligations.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[derive(Archive, Serialize, Clone, Copy)]
enum Side {
    Bid,
    Ask,
}

/// A fixed-size message: no heap fields anywhere.
#[derive(Archive, Serialize, Clone, Copy)]
struct Tick {
    symbol: u32,
    price: i64,
    size: u32,
    side: Side,
    exchange_ns: u64,
    publish_ns: u64,
    levels: [u32; 4],
}

fn tick(i: u64) -> Tick {
    Tick {
        symbol: (i % 64) as u32,
        price: 1_000_000 + i as i64,
        size: (i % 500) as u32,
        side: if i.is_multiple_of(2) {
            Side::Bid
        } else {
            Side::Ask
        },
        exchange_ns: i * 3,
        publish_ns: i * 5,
        levels: [i as u32; 4],
    }
}

fn run(overflow: Overflow) {
    let prefix = format!("rcalloc{}", std::process::id());
    let topic = format!("alloc-{overflow:?}");
    let mut publisher = TypedPublisher::<Tick>::create(
        &topic,
        PublisherConfig::default()
            .prefix(&prefix)
            .slots(64)
            .slot_size(128)
            .overflow(overflow),
    )
    .expect("create");
    let mut sub =
        TypedSubscriber::<Tick>::attach(&topic, SubscriberOptions::default().prefix(&prefix))
            .expect("attach");
    let mut checksum = 0u64;
    let mut round = |i: u64| {
        publisher.send(&tick(i)).expect("send");
        let got = if i.is_multiple_of(2) {
            sub.try_recv().expect("try_recv")
        } else {
            sub.recv().expect("recv")
        };
        assert_eq!(got.seq(), i);
        assert_eq!(got.price.to_native(), 1_000_000 + i as i64);
        assert!(matches!(
            (&got.side, i % 2),
            (ArchivedSide::Bid, 0) | (ArchivedSide::Ask, 1)
        ));
        checksum = checksum.wrapping_add(got.publish_ns.to_native());
    };
    // Warm up: first touches of the ring pages and any lazy initialization.
    for i in 0..256 {
        round(i);
    }
    let n = allocations_in(|| {
        for i in 256..20_256 {
            round(i);
        }
    });
    assert_eq!(n, 0, "{overflow:?}: {n} allocations on the typed hot path");
    assert!(checksum > 0);
}

#[test]
fn typed_send_and_validated_receive_allocate_nothing_per_message_for_a_fixed_size_type() {
    // The counter itself works.
    assert_eq!(
        allocations_in(|| drop(std::hint::black_box(vec![1u8; 10]))),
        1
    );
    run(Overflow::Overwrite);
    run(Overflow::Block);
}
