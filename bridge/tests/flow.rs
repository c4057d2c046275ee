//! Flow control across the bridge: a `Block` topic whose importing subscriber has stopped
//! reading holds back only its own source (by credits), never the other topics on the
//! same Zenoh link; when it reads again, every message arrives once, in order.

mod harness;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness::*;
use ringcast::*;

/// Messages on the stuck topic: far more than its rings, the importer's backlog and the
/// link's buffers hold (an importer that waited in Zenoh's callback, as before credits,
/// stalled the whole link once TCP's buffers were full: then the free topic stopped).
const STUCK: u64 = 300_000;
/// Messages on the free topic while the other is stuck.
const FREE: u64 = 20_000;

fn block_source(pair: &Pair, topic: &str) -> Publisher {
    let config = PublisherConfig::default()
        .prefix(pair.a.as_str())
        .overflow(Overflow::Block)
        .slots(16)
        .slot_size(64);
    Publisher::create(topic, config).expect("source topic")
}

#[test]
fn a_stuck_block_importer_holds_only_its_own_topic() {
    let mut pair = Pair::new("flow");
    pair.topics(&["stuck", "free"]);
    let mut stuck = block_source(&pair, "stuck");
    let mut free = block_source(&pair, "free");
    let _a = pair.bridge_a(&["--export", "stuck", "--export", "free"]);
    let _b = pair.bridge_b(&["--import", "stuck", "--import", "free"]);
    // A subscriber of the imported "stuck" that does not read yet: its ring fills, then
    // the importer's backlog, then the exporter stops reading the source, whose sender
    // then waits.
    let mut stuck_sub = attach(&pair.b, "stuck");
    let mut free_sub = attach(&pair.b, "free");
    stuck
        .wait_for_subscribers(1, WAIT)
        .expect("A's bridge attaches");
    free.wait_for_subscribers(1, WAIT)
        .expect("A's bridge attaches");
    let sent = Arc::new(AtomicBool::new(false));
    let done = sent.clone();
    let sender = std::thread::spawn(move || {
        for i in 0..STUCK {
            stuck
                .send(&i.to_le_bytes())
                .expect("send on the stuck topic");
        }
        // Relaxed: read after the join, which orders it.
        done.store(true, Ordering::Relaxed);
        stuck
    });
    // Let the stuck topic fill everything between its sender and its reader.
    std::thread::sleep(Duration::from_millis(500));

    // The other topic on the same link flows, every message in order.
    let reader = std::thread::spawn(move || {
        for i in 0..FREE {
            let m = free_sub
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("free topic, message {i}: {e}"));
            assert_eq!(&*m, &i.to_le_bytes()[..], "free topic, message {i}");
        }
        free_sub
    });
    for i in 0..FREE {
        free.send(&i.to_le_bytes()).expect("send on the free topic");
    }
    let _free_sub = reader.join().expect("the free topic's reader");
    assert!(
        !sent.load(Ordering::Relaxed),
        "the stuck topic's sender finished while its reader was stopped"
    );

    // The stuck reader reads again: every message, once, in order.
    for i in 0..STUCK {
        let m = stuck_sub
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("stuck topic, message {i}: {e}"));
        assert_eq!(&*m, &i.to_le_bytes()[..], "stuck topic, message {i}");
    }
    let stuck = sender.join().expect("the stuck topic's sender");
    assert!(sent.load(Ordering::Relaxed));
    assert_eq!(stuck_sub.lost(), 0);
    drop(stuck);
    let end = stuck_sub.recv_timeout(WAIT).map(|m| m.seq());
    assert!(
        matches!(end, Err(RecvTimeoutError::Disconnected)),
        "expected the end, got {end:?}"
    );
}
