//! loom models of the ring protocol: publish/receive with wrap-around under both policies,
//! exact lag accounting, `Block` gating (no write to a held slot, no deadlock), and
//! subscribers attaching and detaching while the publisher runs.
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use ringcast_core::memory::SegmentMemory;
use ringcast_core::ring::{Poll, Reader, Start};
use ringcast_core::Overflow;
use ringcast_loom_tests::model::*;

/// Messages published per model: more than the 2 slots, so the ring wraps.
const MESSAGES: u64 = 3;

fn segment(overflow: Overflow) -> Arc<SegmentMemory> {
    Arc::new(SegmentMemory::model(2, overflow, 2))
}

/// Overwrite, one publisher, two subscribers, 2 slots, 3 messages: each subscriber sees an
/// in-order, duplicate-free sequence of intact messages, and every sequence it passed is
/// either received or counted lost, exactly.
#[test]
fn overwrite_publish_receive_in_order_intact_and_exactly_counted() {
    loom::model(|| {
        let mem = segment(Overflow::Overwrite);
        let readers: Vec<Reader> = (0..2).map(|i| attach(&mem, i, Start::Latest)).collect();
        let mut w = writer(&mem);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            for _ in 0..MESSAGES {
                try_publish(&mut w, &wmem).expect("Overwrite never blocks");
            }
            w
        });
        let subs: Vec<_> = readers
            .into_iter()
            .map(|mut r| {
                thread::spawn(move || {
                    let (mut next, mut received, mut lost) = (0u64, 0u64, 0u64);
                    // One attempt racing the publisher (more explodes the model).
                    for _ in 0..1 {
                        match recv_copy(&mut r) {
                            Got::Message(seq) => {
                                assert_eq!(seq, next, "out of order or duplicate");
                                next += 1;
                                received += 1;
                            }
                            Got::Lagged(n) => {
                                next += n;
                                lost += n;
                            }
                            Got::Empty => thread::yield_now(),
                            Got::Closed => unreachable!("not closed"),
                        }
                    }
                    assert_eq!(r.next_seq(), next);
                    (r, next, received, lost)
                })
            })
            .collect();
        let w = publisher.join().unwrap();
        for s in subs {
            let (mut r, mut next, mut received, mut lost) = s.join().unwrap();
            // The publisher is done: drain, and the books must balance exactly.
            loop {
                match recv_copy(&mut r) {
                    Got::Message(seq) => {
                        assert_eq!(seq, next);
                        next += 1;
                        received += 1;
                    }
                    Got::Lagged(n) => {
                        next += n;
                        lost += n;
                    }
                    Got::Empty => break,
                    Got::Closed => unreachable!(),
                }
            }
            assert_eq!(received + lost, w.next_seq());
            assert_eq!(lost, r.lost());
            // Once caught up, at most a ring's worth can have been lost... and only if lapped.
            assert!(received >= 1, "the newest message is always still there");
        }
    });
}

/// Overwrite lapping with an idle reader: the lag count is exact and the resumed position
/// holds an intact message.
#[test]
fn overwrite_lapped_reader_resumes_at_oldest_intact_with_exact_count() {
    loom::model(|| {
        let mem = segment(Overflow::Overwrite);
        let mut r = attach(&mem, 0, Start::Latest);
        let mut w = writer(&mem);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            for _ in 0..4 {
                try_publish(&mut w, &wmem).expect("never blocks");
            }
        });
        // Race one receive against the publisher, then finish after it.
        let first = recv_copy(&mut r);
        publisher.join().unwrap();
        let mut seen = vec![first];
        loop {
            match recv_copy(&mut r) {
                Got::Empty => break,
                g => seen.push(g),
            }
        }
        let (mut next, mut total) = (0u64, 0u64);
        for g in &seen {
            match *g {
                Got::Message(seq) => {
                    assert_eq!(seq, next);
                    next += 1;
                    total += 1;
                }
                Got::Lagged(n) => {
                    assert!(n > 0);
                    next += n;
                    total += n;
                }
                Got::Empty => {}
                Got::Closed => unreachable!(),
            }
        }
        assert_eq!(total, 4, "every message received or counted lost: {seen:?}");
        // With the publisher idle, the resumed position is the oldest intact message:
        // the last two (the ring's size) are always received.
        assert!(
            seen.ends_with(&[Got::Message(2), Got::Message(3)]),
            "{seen:?}"
        );
    });
}

/// Block, one publisher and one monitor, 2 slots, 3 messages: the monitor never gates the
/// publisher (it receives until it has seen one message or lap, sleeping on the shipped
/// handshake when the ring is empty, then waits for the publisher to finish: a monitor
/// that gated would deadlock here), every copy it returns is intact and in order, and with
/// its laps counted its books balance exactly. The negative control
/// (`--cfg ringcast_loom_mutant_monitor`) attaches the monitor as a gating subscriber.
#[test]
fn monitor_on_a_block_topic_never_gates_and_counts_every_lap() {
    loom::model(|| {
        let mem = segment(Overflow::Block);
        let mut m = attach_monitor(&mem, 0, Start::Latest);
        let mut w = writer(&mem);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            for _ in 0..MESSAGES {
                publish(&mut w, &wmem);
            }
            w
        });
        let (mut next, mut received, mut lost) = (0u64, 0u64, 0u64);
        let mut count = |g: Got, next: &mut u64| match g {
            Got::Message(seq) => {
                assert_eq!(seq, *next, "out of order or duplicate");
                *next += 1;
                received += 1;
                true
            }
            Got::Lagged(n) => {
                assert!(n > 0);
                *next += n;
                lost += n;
                true
            }
            Got::Empty => false,
            Got::Closed => unreachable!("not closed"),
        };
        while next == 0 {
            let g = recv_copy(&mut m);
            if !count(g, &mut next) {
                m.sleep(None);
            }
        }
        let w = publisher.join().unwrap();
        while count(recv_copy(&mut m), &mut next) {}
        assert_eq!(next, w.next_seq());
        assert_eq!(received + lost, MESSAGES);
        assert_eq!(lost, m.lost());
    });
}

/// Block, one publisher, one subscriber reading in place, 2 slots, 3 messages, at the full
/// preemption bound: every message in order, loom's cell tracking proves the publisher never
/// writes a slot the subscriber holds, and neither side deadlocks (both sleep on futexes).
#[test]
fn block_in_place_reader_gets_everything_and_its_held_slot_is_never_written() {
    loom::model(|| {
        let mem = segment(Overflow::Block);
        let mut r = attach(&mem, 0, Start::Latest);
        let mut w = writer(&mem);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            for _ in 0..MESSAGES {
                publish(&mut w, &wmem);
            }
        });
        receive_until(&mut r, &mem, MESSAGES);
        publisher.join().unwrap();
    });
}

/// The same with two subscribers (three threads). Its state space at preemption bound 2
/// takes longer than CI can spend (over 5 minutes on 2 cores), so it runs at bound 1.
#[test]
fn block_in_place_readers_get_everything_and_held_slots_are_never_written() {
    check_with_bound(1, || {
        let mem = segment(Overflow::Block);
        let readers: Vec<Reader> = (0..2).map(|i| attach(&mem, i, Start::Latest)).collect();
        let mut w = writer(&mem);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            for _ in 0..MESSAGES {
                publish(&mut w, &wmem);
            }
        });
        let subs: Vec<_> = readers
            .into_iter()
            .map(|mut r| {
                let mem = mem.clone();
                thread::spawn(move || receive_until(&mut r, &mem, MESSAGES))
            })
            .collect();
        publisher.join().unwrap();
        for s in subs {
            s.join().unwrap();
        }
    });
}

/// Block with batched release over the whole ring (2 slots, batch 2), 4 messages: the
/// reader defers a release while the next message is committed and stores one cursor for
/// the run. Loom's cell tracking proves the publisher never writes a slot before the
/// in-place read of it is released (the run's one Release cursor store orders them all),
/// and neither side deadlocks although releases are deferred while the publisher sleeps
/// for room. The mutant build (a Relaxed cursor store, a release without its fence) must
/// fail this model; CI checks that it does.
#[test]
fn block_batched_release_frees_a_run_only_after_its_reads() {
    loom::model(|| {
        let mem = segment(Overflow::Block);
        let mut r = attach(&mem, 0, Start::Latest);
        r.set_release_batch(u64::MAX);
        assert_eq!(r.release_batch(), 2, "clamped to the ring");
        let mut w = writer(&mem);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            for _ in 0..MESSAGES + 1 {
                publish(&mut w, &wmem);
            }
        });
        receive_until(&mut r, &mem, MESSAGES + 1);
        publisher.join().unwrap();
    });
}

/// Block with batched release over the whole ring, and a third thread that hands the
/// process's deferred runs back (as any thread does before it blocks,
/// `ringcast_core::handback`) while the reader reads in place and the publisher waits for
/// room: loom's cell tracking proves the publisher never writes a slot before the read of
/// it is done, whichever thread handed the slot back, and nobody deadlocks. The build with
/// `--cfg ringcast_loom_mutant_handback` (a hand-back that releases one slot beyond the
/// deferred cursor) must fail this model; CI checks that it does.
/// Messages of the hand-back model: enough for a second deferred run after the first one
/// registered the reader (registration takes a lock, which would order the first run's
/// reads before any hand-back by itself).
const HANDED_BACK_MESSAGES: u64 = 5;

#[test]
fn block_deferred_run_handed_back_by_another_thread() {
    check_with_bound(2, || {
        let mem = segment(Overflow::Block);
        let mut r = attach(&mem, 0, Start::Latest);
        r.set_release_batch(u64::MAX);
        let mut w = writer(&mem);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            for _ in 0..HANDED_BACK_MESSAGES {
                publish(&mut w, &wmem);
            }
        });
        let helper = thread::spawn(ringcast_core::handback::hand_back);
        receive_until(&mut r, &mem, HANDED_BACK_MESSAGES);
        helper.join().unwrap();
        publisher.join().unwrap();
    });
}

/// Block: a subscriber attaches (replaying from the oldest message) while the publisher
/// writes, and another detaches meanwhile. The newcomer starts at a message the publisher
/// will not overwrite and reads everything from there in order and intact; the detached
/// one stops gating the publisher (no deadlock).
#[test]
fn block_attach_and_detach_race_with_publishing() {
    loom::model(|| {
        let mem = segment(Overflow::Block);
        let leaving = attach(&mem, 0, Start::Latest);
        let mut w = writer(&mem);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            for _ in 0..MESSAGES {
                publish(&mut w, &wmem);
            }
        });
        let leaver = thread::spawn(move || leaving.detach());
        let amem = mem.clone();
        let joiner = thread::spawn(move || {
            let mut r = attach(&amem, 1, Start::Oldest);
            receive_until(&mut r, &amem, MESSAGES);
        });
        publisher.join().unwrap();
        leaver.join().unwrap();
        joiner.join().unwrap();
    });
}

/// Block with a stall timeout: the publisher gives up on its only subscriber as soon as
/// the ring is full (the policy's clock is not the protocol; any moment is a possible
/// timeout), racing the subscriber's in-place reads. Loom's cell tracking proves the
/// publisher never writes a slot the subscriber is reading in place (the `Holding` CAS
/// excludes the eviction CAS); the subscriber either receives every message in order or
/// learns it was evicted and never reads in place after that; nobody deadlocks.
#[test]
fn stall_eviction_never_hits_a_slot_read_in_place() {
    loom::model(|| {
        let mem = Arc::new(SegmentMemory::model_with(ringcast_core::SegmentConfig {
            slots: 2,
            max_subscribers: 1,
            overflow: Overflow::Block,
            stall_timeout: Some(std::time::Duration::from_millis(1)),
            ..Default::default()
        }));
        let mut r = attach(&mem, 0, Start::Latest);
        let mut w = writer(&mem);
        let wmem = mem.clone();
        let publisher = thread::spawn(move || {
            let mut evicted = false;
            for _ in 0..MESSAGES {
                loop {
                    if try_publish(&mut w, &wmem).is_ok() {
                        break;
                    }
                    // Full: evict the blocker if it is not reading in place, else sleep
                    // until it releases (the shipped handshake).
                    let mut blockers = Vec::new();
                    w.for_each_blocker(|i, word, _| blockers.push((i, word)));
                    for (i, word) in blockers {
                        evicted |= w.evict(i, word);
                    }
                    if !w.has_room() {
                        w.sleep_for_room(None);
                    }
                }
            }
            evicted
        });
        let mut next = 0;
        let mut told_evicted = false;
        while next < MESSAGES {
            match r.poll() {
                Poll::Ready { seq, .. } => {
                    assert_eq!(seq, next, "out of order or duplicate");
                    if !r.hold(seq) {
                        told_evicted = true;
                        break;
                    }
                    let mut got = [0u64; 2];
                    mem.model_read_in_place(seq, &mut got);
                    assert!(intact(seq, &got), "torn message {seq}: {got:?}");
                    r.release(seq);
                    next += 1;
                }
                Poll::Empty => {
                    r.sleep(None);
                }
                Poll::Overrun => {
                    told_evicted = true;
                    break;
                }
                p => panic!("unexpected poll {p:?}"),
            }
        }
        let evicted = publisher.join().unwrap();
        assert_eq!(told_evicted, evicted, "eviction and its report disagree");
        assert_eq!(r.is_evicted(), evicted);
    });
}
