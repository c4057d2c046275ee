//! loom models of the sleep/wake handshakes (no lost wake-up, in either direction) and of
//! the publisher closing while a subscriber sleeps. A lost wake-up leaves a thread parked
//! in the modelled futex forever, which loom reports as a deadlock.
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use ringcast_core::memory::SegmentMemory;
use ringcast_core::ring::{Poll, Start};

use ringcast_core::Overflow;
use ringcast_loom_tests::model::*;

/// `n` publishes into a ring of two, to a subscriber that sleeps whenever it finds none;
/// `held`: their wakes coalesced into one payment at the end (`hold_wakes` / `pay_wakes`).
fn publishes_reach_a_sleeper(n: u64, held: bool) {
    loom::model(move || {
        let mem = Arc::new(SegmentMemory::model(2, Overflow::Block, 1));
        let mut r = attach(&mem, 0, Start::Latest);
        let mut w = writer(&mem);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            if held {
                w.hold_wakes();
            }
            for _ in 0..n {
                publish(&mut w, &wmem);
            }
            if held {
                w.pay_wakes();
            }
            w
        });
        receive_until(&mut r, &mem, n);
        publisher.join().unwrap();
    });
}

/// A subscriber that decides to sleep is always woken by a later publish.
#[test]
fn a_sleeping_subscriber_is_always_woken_by_a_publish() {
    publishes_reach_a_sleeper(1, false);
}

/// A publisher blocked on a full ring is always woken by a release; the subscriber sleeps
/// too when the ring is empty.
#[test]
fn a_publisher_sleeping_on_a_full_ring_is_always_woken_by_a_release() {
    loom::model(|| {
        let mem = Arc::new(SegmentMemory::model(2, Overflow::Block, 1));
        let mut r = attach(&mem, 0, Start::Latest);
        let mut w = writer(&mem);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            for _ in 0..3 {
                loop {
                    match try_publish(&mut w, &wmem) {
                        Ok(_) => break,
                        Err(_) => {
                            w.sleep_for_room(None);
                        }
                    }
                }
            }
        });
        receive_until(&mut r, &mem, 3);
        publisher.join().unwrap();
    });
}

/// The publisher closes while a subscriber sleeps: the subscriber drains what was
/// published and ends in `Closed`, never in a hang.
#[test]
fn close_racing_a_sleeping_subscriber_ends_in_closed_after_draining() {
    loom::model(|| {
        let mem = Arc::new(SegmentMemory::model(2, Overflow::Overwrite, 1));
        let mut r = attach(&mem, 0, Start::Latest);
        let mut w = writer(&mem);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            try_publish(&mut w, &wmem).unwrap();
            w.close();
        });
        let mut received = 0;
        loop {
            match r.poll() {
                Poll::Ready { .. } => {
                    assert!(matches!(recv_copy(&mut r), Got::Message(0)));
                    received += 1;
                }
                Poll::Closed => break,
                Poll::Empty => {
                    r.sleep(None);
                }
                p => panic!("unexpected {p:?}"),
            }
        }
        assert_eq!(received, 1, "closed before draining");
        publisher.join().unwrap();
    });
}

/// Commits with their wake coalesced (`hold_wakes` ... `pay_wakes`, what
/// `Publisher::coalesce_wakes` does) never leave a subscriber asleep on a message: a run
/// of three into a ring of two, so the publisher also sleeps for room in the middle of the
/// run (paying what it owes first). The build with `--cfg ringcast_loom_mutant_coalesce`,
/// whose payment forgets the wake, must fail this model (a deadlock).
#[test]
fn a_coalesced_run_of_commits_wakes_a_sleeping_subscriber() {
    publishes_reach_a_sleeper(3, true);
}

/// Two publishes to a subscriber that sleeps before each: the second commit may come
/// while the subscriber woken by the first has not run yet (no wake call then: its
/// announcement is answered), and the subscriber's next sleep must still be woken. The
/// build with `--cfg ringcast_loom_mutant_unanswered`, whose announcement does not raise
/// `unanswered`, must fail this model (a deadlock).
#[test]
fn a_subscriber_woken_and_asleep_again_is_woken_by_the_next_publish() {
    publishes_reach_a_sleeper(2, false);
}
