//! Tearing down many armed async receives costs the reactor linear work: 2 000 futures,
//! each awaiting `recv_async` on its own subscriber (16 topics of 125) and polled once, so
//! that the reactor sleeps on all of them, are dropped one by one. Counted by the
//! reactor's own counters (no clock): the registrations its passes slept on meanwhile
//! stay within a small multiple of 2 000 (a pass per drop re-announces everything still
//! armed: quadratic), and it makes far fewer passes than drops. Afterwards every table
//! entry is free (all 125 subscribers of each topic attach again) and nobody is counted
//! asleep. A `Block` publisher whose only subscriber is dropped while the reactor sleeps
//! in its entry is not gated by it: it counts no subscriber at once and publishes three
//! rings' worth without waiting, and the entry can be taken again. Alone in its own test
//! binary (the counters are per process), its tests one at a time.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use common::*;
use ringcast::*;
use ringcast_core::reactor;

const TOPICS: usize = 16;
const PER_TOPIC: usize = 125;
const TASKS: usize = TOPICS * PER_TOPIC;
const LONG: Duration = Duration::from_secs(30);

/// The reactor's counters are shared by the whole process: one test at a time.
static ONE: Mutex<()> = Mutex::new(());

fn config(prefix: &str) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(prefix)
        .slots(8)
        .slot_size(64)
        .max_subscribers(PER_TOPIC as u64)
        .overflow(Overflow::Block)
}

/// Waits (generously) until no table entry of `topic` is in use and nobody is counted
/// asleep on it; panics with what is left otherwise.
fn wait_all_free(prefix: &str, topic: &str) {
    let deadline = Instant::now() + LONG;
    loop {
        let info = inspect::inspect(prefix, topic).unwrap();
        if info.subscribers.is_empty() && info.sleepers == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: {} entries still in use, {} counted asleep",
            info.subscribers.len(),
            info.sleepers
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A waker that only counts.
struct Counting(AtomicUsize);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_2000_armed_receives_costs_the_reactor_linear_work_and_frees_every_entry() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let prefix = prefix("rtear");
    let names: Vec<String> = (0..TOPICS).map(|_| topic("many")).collect();
    let _cleanup: Vec<Cleanup> = names
        .iter()
        .map(|t| Cleanup(prefix.clone(), t.clone()))
        .collect();
    let mut pubs: Vec<Publisher> = names
        .iter()
        .map(|t| Publisher::create(t, config(&prefix)).unwrap())
        .collect();
    let attach_all = || -> Vec<Subscriber> {
        names
            .iter()
            .flat_map(|t| (0..PER_TOPIC).map(move |_| t))
            .map(|t| Subscriber::attach(t, SubscriberOptions::default().prefix(&prefix)).unwrap())
            .collect()
    };

    // Every task awaits a message that never comes: polled once (a minimal executor), it
    // is armed in the reactor, which sleeps on it (announced in its table entry).
    let waker = Waker::from(Arc::new(Counting(AtomicUsize::new(0))));
    let mut tasks: Vec<Pin<Box<dyn Future<Output = ()> + Send>>> = attach_all()
        .into_iter()
        .map(|mut sub| -> Pin<Box<dyn Future<Output = ()> + Send>> {
            Box::pin(async move {
                let _ = sub.recv_async().await.map(|s| s.len());
            })
        })
        .collect();
    for task in &mut tasks {
        let poll = task.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(
            poll.is_pending(),
            "nothing was published, yet a receive returned"
        );
    }

    // Drop them one by one, as a runtime being torn down does, until the reactor has let
    // go of every entry and of every sleep announced in them.
    let (passes, slept_on) = (reactor::passes(), reactor::slept_on());
    for task in tasks {
        drop(task);
    }
    for t in &names {
        wait_all_free(&prefix, t);
    }
    let passes = reactor::passes() - passes;
    let slept_on = reactor::slept_on() - slept_on;
    eprintln!(
        "dropping {TASKS} armed receives: {passes} reactor passes, {slept_on} registrations \
         slept on"
    );
    // Waiting a pass per drop re-snapshots and re-announces everything still armed each
    // time: quadratic. Cutting a pass short only once half of it is dropped costs the
    // reactor less than twice the registrations it slept on when the teardown began,
    // plus a pass or two still under way from the arms.
    assert!(
        slept_on <= 4 * TASKS as u64,
        "the reactor slept on {slept_on} registrations while {TASKS} were dropped (more \
         than a few per drop: quadratic work)"
    );
    assert!(
        passes < (TASKS / 10) as u64,
        "dropping {TASKS} armed receives cost {passes} reactor passes"
    );

    // Every entry can be taken again, and the publishers gate on nothing left behind.
    let again = attach_all();
    drop(again);
    for (p, t) in pubs.iter_mut().zip(&names) {
        assert_eq!(p.subscriber_count(), 0, "{t}");
        wait_all_free(&prefix, t);
    }
}

#[test]
fn a_block_publisher_is_not_gated_by_its_only_subscriber_dropped_while_armed() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let n = Names::new("rtear", "block");
    let mut p = Publisher::create(&n.topic, config(&n.prefix)).unwrap();
    let mut s =
        Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix)).unwrap();
    // Two messages read, so the subscriber's released cursor is not where a fresh one's is.
    p.send(b"one").unwrap();
    p.send(b"two").unwrap();
    let waker = Waker::from(Arc::new(Counting(AtomicUsize::new(0))));
    for _ in 0..2 {
        assert!(matches!(s.poll_recv(&waker), Poll::Ready(Ok(_))));
    }
    // Armed, and a pass of the reactor sleeps on it (announced in its table entry).
    assert!(s.poll_ready(&waker).is_pending());
    let deadline = Instant::now() + LONG;
    while inspect::inspect(&n.prefix, &n.topic).unwrap().sleepers == 0 {
        assert!(
            Instant::now() < deadline,
            "the reactor never slept on the subscriber"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(s);

    // At once: not counted, not gating; a whole ring and more goes without waiting.
    assert_eq!(p.subscriber_count(), 0);
    for i in 0..3 * 8u8 {
        p.try_send(&[i])
            .expect("a Block publisher without subscribers never waits");
    }
    wait_all_free(&n.prefix, &n.topic);
    // And the entry can be taken again.
    let mut s =
        Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix)).unwrap();
    p.send(b"after").unwrap();
    assert_eq!(&*s.recv().unwrap(), b"after");
}
