//! loom models of lanes (many publishers per topic): a subscriber sleeping on the one
//! subscriber futex is woken by a lane that a publisher joins after it attached (no lost
//! wake-up, no missed lane), reads that lane in place while the lane's publisher gates on
//! it (no write to a held slot), and keeps its place when the publisher leaves and
//! another takes the lane over (the sequence continues, the writer id changes). The
//! negative control (`--cfg ringcast_loom_mutant_lanes`) re-checks only the reader's
//! current lane before sleeping, and must lose the wake-up.
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use ringcast_core::geometry::SegmentConfig;
use ringcast_core::memory::SegmentMemory;
use ringcast_core::ring::{Poll, Start};
use ringcast_core::Overflow;
use ringcast_loom_tests::model::*;

#[test]
fn a_sleeping_subscriber_gets_a_joined_lane_and_its_takeover() {
    loom::model(|| {
        let mem = Arc::new(SegmentMemory::model_with(SegmentConfig {
            slots: 2,
            max_subscribers: 1,
            max_publishers: 2,
            overflow: Overflow::Block,
            ..Default::default()
        }));
        let mut r = attach(&mem, 0, Start::Latest);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            // Joins lane 1 after the subscriber attached, publishes two, leaves.
            let mut w = ringcast_core::model::join_lane(wmem.clone(), 1).expect("lane 1 free");
            let first = w.generation();
            for _ in 0..2 {
                publish_lane(&mut w, &wmem);
            }
            ringcast_core::model::leave_lane(w);
            // Another publisher takes the lane over: one more, in the slot of message 0.
            let mut w = ringcast_core::model::join_lane(wmem.clone(), 1).expect("lane 1 left");
            assert_ne!(w.generation(), first);
            publish_lane(&mut w, &wmem);
            ringcast_core::model::leave_lane(w);
        });
        let mut writers = Vec::new();
        let mut got = 0u64;
        while got < 3 {
            match r.poll() {
                Poll::Ready { seq, .. } => {
                    assert_eq!(r.lane(), 1, "only lane 1 publishes");
                    assert_eq!(seq, got, "in order, never twice");
                    let mut words = [0u64; 2];
                    mem.model_read_in_place_lane(1, seq, &mut words);
                    assert!(intact(seq, &words), "torn message {seq}: {words:?}");
                    writers.push(r.writer_id());
                    r.release(seq);
                    got += 1;
                }
                Poll::Empty => {
                    r.sleep(None);
                }
                p => panic!("unexpected {p:?}"),
            }
        }
        publisher.join().unwrap();
        assert_eq!(writers[0], writers[1], "one publisher wrote the first two");
        assert_ne!(writers[1], writers[2], "the takeover has a new id");
    });
}
