//! Batched release under `Block` (opt-in): a subscriber that releases a slot while more
//! messages wait hands the slots back in runs (one cursor store per run), and a subscriber
//! that has caught up never holds a released slot back. Without the option every release
//! is handed back at once, so one thread may read one message and then publish into the
//! same full ring. Observed from the publisher's side: how many loans it gets before
//! `Full`.

mod common;

use common::*;
use ringcast::*;

/// An 8-slot `Block` topic and one subscriber with `batch` (None: the default).
fn topic_with(tag: &str, batch: Option<u64>) -> (Cleanup, Publisher, Subscriber) {
    let (prefix, topic) = (prefix(tag), topic(tag));
    let cleanup = Cleanup(prefix.clone(), topic.clone());
    let publisher = Publisher::create(
        &topic,
        PublisherConfig::default()
            .prefix(&prefix)
            .slots(8)
            .slot_size(64)
            .overflow(Overflow::Block),
    )
    .expect("create");
    let opts = SubscriberOptions::default().prefix(&prefix);
    let opts = match batch {
        Some(b) => opts.release_batch(b),
        None => opts,
    };
    let subscriber = Subscriber::attach(&topic, opts).expect("attach");
    (cleanup, publisher, subscriber)
}

/// Loans the publisher gets (each committed) before `Full`.
fn room(p: &mut Publisher) -> u64 {
    let mut n = 0;
    while let Ok(loan) = p.try_loan() {
        loan.commit(8);
        n += 1;
    }
    n
}

fn receive(s: &mut Subscriber, count: u64) {
    for _ in 0..count {
        drop(s.try_recv().expect("a message"));
    }
}

#[test]
fn releases_while_more_wait_are_handed_back_as_one_run() {
    let (_c, mut p, mut s) = topic_with("batchrun", Some(2));
    assert_eq!(room(&mut p), 8);
    receive(&mut s, 1);
    assert_eq!(room(&mut p), 0, "one release of a run of two is deferred");
    receive(&mut s, 1);
    assert_eq!(room(&mut p), 2, "the run of two is handed back at once");
    receive(&mut s, 3);
    assert_eq!(room(&mut p), 2, "a third of a run stays deferred");
}

#[test]
fn a_subscriber_that_catches_up_holds_nothing_back() {
    let (_c, mut p, mut s) = topic_with("batchcaught", Some(8));
    for _ in 0..3 {
        p.send(&[1; 8]).expect("send");
    }
    receive(&mut s, 3);
    assert_eq!(
        room(&mut p),
        8,
        "nothing waited after the third: the whole run was handed back"
    );
    assert_eq!(s.try_recv().map(|m| m.seq()), Ok(3));
}

#[test]
fn by_default_every_release_is_handed_back_at_once() {
    let (_c, mut p, mut s) = topic_with("batchdefault", None);
    assert_eq!(room(&mut p), 8);
    // One thread: read one message of a full ring, then publish with a blocking send
    // (it would wait for ever on a slot this thread's own subscriber held back).
    receive(&mut s, 1);
    p.send(&[9; 8]).expect("room for one");
    assert_eq!(room(&mut p), 0);
}

#[test]
fn a_batch_of_one_releases_every_slot_at_once() {
    let (_c, mut p, mut s) = topic_with("batchone", Some(1));
    assert_eq!(room(&mut p), 8);
    for _ in 0..5 {
        receive(&mut s, 1);
        assert_eq!(room(&mut p), 1);
    }
}

#[test]
fn a_run_never_exceeds_the_ring_whatever_is_asked() {
    // A batch larger than the ring is clamped to it: the publisher, a ring ahead, gets
    // its room back when the subscriber has read the whole ring.
    let (_c, mut p, mut s) = topic_with("batchclamp", Some(u64::MAX));
    assert_eq!(room(&mut p), 8);
    receive(&mut s, 7);
    assert_eq!(room(&mut p), 0, "seven of a run of eight deferred");
    receive(&mut s, 1);
    assert_eq!(room(&mut p), 8);
}

#[test]
fn drain_hands_a_run_back_once_and_completely_before_it_returns() {
    let (_c, mut p, mut s) = topic_with("drainrun", None);
    assert_eq!(room(&mut p), 8);
    let mut seen = Vec::new();
    let drained = s.drain(usize::MAX, |m| {
        seen.push(m.seq());
        drop(m);
        // Inside the run the released slots are still deferred (the ring was full).
        if seen.len() < 8 {
            assert!(p.try_loan().is_err(), "a slot came back mid-run");
        }
    });
    assert_eq!(seen, (0..8).collect::<Vec<_>>());
    assert_eq!(drained.delivered, 8);
    assert_eq!(drained.stopped, None);
    assert_eq!(room(&mut p), 8, "everything is back after the call");
}

#[test]
fn drain_stops_at_its_bound_and_still_hands_everything_back() {
    let (_c, mut p, mut s) = topic_with("drainmax", None);
    assert_eq!(room(&mut p), 8);
    let drained = s.drain(3, |_| {});
    assert_eq!((drained.delivered, drained.stopped), (3, None));
    assert_eq!(room(&mut p), 3);
    assert_eq!(s.try_recv().map(|m| m.seq()), Ok(3));
}

#[test]
fn drain_reports_a_lag_once_and_the_end_of_the_topic() {
    let (prefix, topic) = (prefix("drainlag"), topic("drainlag"));
    let _c = Cleanup(prefix.clone(), topic.clone());
    let mut p = Publisher::create(
        &topic,
        PublisherConfig::default()
            .prefix(&prefix)
            .slots(8)
            .slot_size(64)
            .overflow(Overflow::Overwrite),
    )
    .expect("create");
    let mut s =
        Subscriber::attach(&topic, SubscriberOptions::default().prefix(&prefix)).expect("attach");
    for i in 0..20u64 {
        p.send(&i.to_le_bytes()).expect("send");
    }
    let lagged = s.drain(usize::MAX, |_| {});
    assert_eq!(lagged.delivered, 0);
    assert_eq!(lagged.stopped, Some(TryRecvError::Lagged(12)));
    let mut got = Vec::new();
    let rest = s.drain(usize::MAX, |m| {
        got.push(u64::from_le_bytes(m[..8].try_into().unwrap()))
    });
    assert_eq!((rest.delivered, rest.stopped), (8, None));
    assert_eq!(got, (12..20).collect::<Vec<_>>());
    drop(p);
    let end = s.drain(usize::MAX, |_| {});
    assert_eq!(
        (end.delivered, end.stopped),
        (0, Some(TryRecvError::Disconnected))
    );
}
