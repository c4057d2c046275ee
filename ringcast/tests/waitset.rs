//! The wait set in one process: members of many topics, the notifier, a `Block` publisher
//! waiting for room, more topics than one `futex_waitv` takes, a spinning set that costs
//! its publishers no system call, the polling fallback, and every refusal.

mod common;

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use ringcast::*;
use ringcast_core::futex;

const CHILD: &str = "waitset_child_entry";

/// Entry point of the child processes (runs only when re-executed with a role).
#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn waitset_child_entry() {
    let role = std::env::var(ROLE);
    if role.as_deref() == Ok("spin") {
        spinning_set_child();
    }
    if role.as_deref() == Ok("polling") {
        let set = WaitSet::new();
        assert!(
            set.is_polling(),
            "RINGCAST_NO_FUTEX_WAITV=1 did not force polling"
        );
        drop(set);
        let got = topics_through_one_set("poll", 3, 200, Duration::from_micros(300));
        println!("RESULT received={got}");
    }
}

fn config(prefix: &str) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(prefix)
        .slots(8)
        .slot_size(64)
        .overflow(Overflow::Block)
}

fn options(prefix: &str) -> SubscriberOptions {
    SubscriberOptions::default()
        .prefix(prefix)
        .wait_strategy(WaitStrategy::Park)
}

/// `n` topics, one publisher thread writing `per_topic` messages to them in a random
/// order with `pause` between some, one waiter thread with a parked wait set. Returns how
/// many messages the waiter received (each checked: once, in order, per topic).
fn topics_through_one_set(tag: &str, n: usize, per_topic: u64, pause: Duration) -> u64 {
    let prefix = prefix(tag);
    let names: Vec<String> = (0..n).map(|_| topic(tag)).collect();
    let _cleanup: Vec<Cleanup> = names
        .iter()
        .map(|t| Cleanup(prefix.clone(), t.clone()))
        .collect();
    let mut pubs: Vec<Publisher> = names
        .iter()
        .map(|t| Publisher::create(t, config(&prefix)).expect("create"))
        .collect();
    let mut set = WaitSet::new().strategy(WaitStrategy::Park);
    let keys: Vec<Key<Subscriber>> = names
        .iter()
        .map(|t| {
            set.add(Subscriber::attach(t, options(&prefix)).expect("attach"))
                .expect("add")
        })
        .collect();
    let waiter = std::thread::spawn(move || {
        let mut next = vec![0u64; keys.len()];
        let mut open = keys.len();
        let deadline = Instant::now() + Duration::from_secs(60);
        while open > 0 {
            assert!(Instant::now() < deadline, "waiter stuck: next {next:?}");
            set.wait_timeout(Duration::from_secs(5)).expect("wait");
            for (i, &k) in keys.iter().enumerate() {
                let Some(sub) = set.ready_mut(k) else {
                    continue;
                };
                let mut ended = false;
                while !ended {
                    match sub.try_recv() {
                        Ok(s) => {
                            assert_eq!(s.seq(), next[i], "topic {i}: out of order");
                            assert_eq!(&*s, &s.seq().to_le_bytes(), "topic {i}: payload");
                            next[i] += 1;
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => ended = true,
                        Err(e) => panic!("topic {i}: {e}"),
                    }
                }
                if ended {
                    set.remove(k).expect("member");
                    open -= 1;
                }
            }
        }
        next.iter().sum::<u64>()
    });
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut sent = vec![0u64; n];
    let mut left: Vec<usize> = (0..n).collect();
    while !left.is_empty() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let j = (rng as usize) % left.len();
        let i = left[j];
        pubs[i].send(&sent[i].to_le_bytes()).expect("send");
        sent[i] += 1;
        if sent[i] == per_topic {
            left.swap_remove(j);
        }
        if rng.is_multiple_of(4) {
            std::thread::sleep(pause);
        }
    }
    drop(pubs);
    let got = waiter.join().expect("waiter");
    assert_eq!(got, per_topic * n as u64);
    got
}

#[test]
fn one_waiter_gets_every_message_of_many_topics_once_and_in_order() {
    topics_through_one_set("many", 6, 500, Duration::from_micros(200));
}

/// 130 topics: more futex words than one `futex_waitv` takes, so the set shards them
/// over a helper thread.
#[test]
fn a_set_of_130_topics_past_the_futex_waitv_limit_misses_nothing() {
    topics_through_one_set("wide", 130, 8, Duration::from_micros(500));
}

/// The wake-up of a topic in the second shard comes through the helper thread, not the
/// set's liveness re-scan (which runs once per 50 ms slice): the median latency of 20
/// wake-ups is far below that slice. (A functional check with a wide margin: working, it is
/// tens of microseconds; through the re-scan alone it would be about 25 ms.)
#[test]
fn a_topic_in_the_second_shard_wakes_the_waiter_through_its_own_word() {
    let prefix = prefix("shard");
    let names: Vec<String> = (0..140).map(|_| topic("shard")).collect();
    let _cleanup: Vec<Cleanup> = names
        .iter()
        .map(|t| Cleanup(prefix.clone(), t.clone()))
        .collect();
    let mut pubs: Vec<Publisher> = names
        .iter()
        .map(|t| Publisher::create(t, config(&prefix)).expect("create"))
        .collect();
    let mut set = WaitSet::new().strategy(WaitStrategy::Park);
    let keys: Vec<Key<Subscriber>> = names
        .iter()
        .map(|t| {
            set.add(Subscriber::attach(t, options(&prefix)).unwrap())
                .unwrap()
        })
        .collect();
    let last = *keys.last().unwrap();
    let (tx, rx) = mpsc::channel::<Instant>();
    let waiter = std::thread::spawn(move || {
        let mut latencies = Vec::new();
        while latencies.len() < 20 {
            set.wait_timeout(Duration::from_secs(10)).expect("wait");
            if let Some(sub) = set.ready_mut(last) {
                let _ = sub.try_recv().expect("message");
                let sent: Instant = rx.recv().unwrap();
                latencies.push(sent.elapsed());
            }
        }
        latencies.sort();
        latencies[10]
    });
    for i in 0..20u64 {
        std::thread::sleep(Duration::from_millis(5));
        tx.send(Instant::now()).unwrap();
        pubs.last_mut().unwrap().send(&i.to_le_bytes()).unwrap();
    }
    let median = waiter.join().unwrap();
    assert!(
        median < Duration::from_millis(10),
        "median wake-up {median:?}: the shard's word did not wake the waiter"
    );
    drop(pubs);
}

#[test]
fn a_notifier_wakes_the_waiter_from_another_thread_and_a_ring_before_the_wait_is_kept() {
    let mut set = WaitSet::new();
    let n = set.notifier();
    n.notify();
    let woke = set.wait_timeout(Duration::from_secs(5)).unwrap();
    assert!(woke.notified() && !woke.timed_out());
    // Handled: the next wait times out.
    assert!(set
        .wait_timeout(Duration::from_millis(20))
        .unwrap()
        .timed_out());
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        n.notify();
    });
    let started = Instant::now();
    assert!(set.wait().unwrap().notified());
    assert!(started.elapsed() >= Duration::from_millis(20));
    t.join().unwrap();
}

#[test]
fn a_block_publisher_in_the_set_is_ready_when_a_subscriber_releases() {
    let n = Names::new("pubm", "room");
    let mut p = Publisher::create(&n.topic, config(&n.prefix).slots(2)).unwrap();
    let mut sub = Subscriber::attach(&n.topic, options(&n.prefix)).unwrap();
    p.send(b"a").unwrap();
    p.send(b"b").unwrap();
    assert!(p.try_loan().is_err(), "ring should be full");
    let mut set = WaitSet::new().strategy(WaitStrategy::Park);
    let pk = set.add(p).unwrap();
    assert!(set
        .wait_timeout(Duration::from_millis(20))
        .unwrap()
        .timed_out());
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        drop(sub.recv().unwrap());
        sub
    });
    let woke = set.wait_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(woke.ready(), 1);
    let p = set.ready_mut(pk).expect("publisher ready");
    assert!(p.try_send(b"c").is_ok());
    let _sub = reader.join().unwrap();
}

/// The futex call counters are per process: this runs in a child of its own.
#[test]
fn a_spinning_set_costs_its_publishers_no_futex_call() {
    let (code, result) = finish(spawn(CHILD, "spin", &[]), Duration::from_secs(60));
    assert_eq!(code, Some(0));
    assert_eq!(field(&result.expect("RESULT"), "received"), 4000);
}

fn spinning_set_child() {
    let prefix = prefix("spin");
    let names: Vec<String> = (0..4).map(|_| topic("spin")).collect();
    let _cleanup: Vec<Cleanup> = names
        .iter()
        .map(|t| Cleanup(prefix.clone(), t.clone()))
        .collect();
    let pubs: Vec<Publisher> = names
        .iter()
        .map(|t| Publisher::create(t, config(&prefix).slots(1024)).unwrap())
        .collect();
    let mut set = WaitSet::new().strategy(WaitStrategy::BusySpin);
    let keys: Vec<Key<Subscriber>> = names
        .iter()
        .map(|t| {
            set.add(Subscriber::attach(t, options(&prefix)).unwrap())
                .unwrap()
        })
        .collect();
    let (wakes, waits) = (futex::wake_calls(), futex::wait_calls());
    let publisher = std::thread::spawn(move || {
        let mut pubs = pubs;
        for i in 0..1000u64 {
            for p in &mut pubs {
                p.send(&i.to_le_bytes()).unwrap();
            }
        }
        pubs
    });
    let mut got: HashMap<usize, u64> = HashMap::new();
    while got.values().sum::<u64>() < 4000 {
        set.wait().unwrap();
        for (i, &k) in keys.iter().enumerate() {
            if let Some(s) = set.ready_mut(k) {
                while let Ok(m) = s.try_recv() {
                    let e = got.entry(i).or_default();
                    assert_eq!(m.seq(), *e);
                    *e += 1;
                }
            }
        }
    }
    let pubs = publisher.join().unwrap();
    assert_eq!(futex::wake_calls(), wakes, "a publish made a wake call");
    assert_eq!(futex::wait_calls(), waits, "the spinning set slept");
    drop(pubs);
    println!("RESULT received={}", got.values().sum::<u64>());
}

#[test]
fn without_futex_waitv_the_set_polls_and_still_misses_nothing() {
    let child = spawn(
        CHILD,
        "polling",
        &[("RINGCAST_NO_FUTEX_WAITV", "1".to_owned())],
    );
    let (code, result) = finish(child, Duration::from_secs(60));
    assert_eq!(code, Some(0));
    assert_eq!(field(&result.expect("RESULT"), "received"), 600);
}

#[test]
fn refusals_are_typed_and_give_the_member_back() {
    let n = Names::new("refuse", "closed");
    let p = Publisher::create(&n.topic, config(&n.prefix)).unwrap();
    let sub = Subscriber::attach(&n.topic, options(&n.prefix)).unwrap();
    drop(p);
    let mut set = WaitSet::with_capacity(1);
    let e = set.add(sub).unwrap_err();
    assert_eq!(e.refusal, Refusal::Closed);
    assert!(e.to_string().contains("closed"), "{e}");
    let sub = e.into_member();
    assert_eq!(sub.topic(), n.topic);

    // A closed topic with messages left is still worth waiting on.
    let m = Names::new("refuse", "drain");
    let mut p = Publisher::create(&m.topic, config(&m.prefix)).unwrap();
    let sub = Subscriber::attach(&m.topic, options(&m.prefix)).unwrap();
    p.send(b"last").unwrap();
    drop(p);
    let k = set.add(sub).expect("undrained closed topic is accepted");

    // Full.
    let o = Names::new("refuse", "full");
    let _p2 = Publisher::create(&o.topic, config(&o.prefix)).unwrap();
    let sub2 = Subscriber::attach(&o.topic, options(&o.prefix)).unwrap();
    let e = set.add(sub2).unwrap_err();
    assert_eq!(e.refusal, Refusal::Full { capacity: 1 });

    // An Overwrite publisher never waits.
    let q = Names::new("refuse", "ovw");
    let ovw = Publisher::create(&q.topic, config(&q.prefix).overflow(Overflow::Overwrite)).unwrap();
    let mut big = WaitSet::new();
    assert_eq!(big.add(ovw).unwrap_err().refusal, Refusal::NeverWaits);

    // Keys: of another set, of a removed member.
    assert!(big.get_mut(k).is_none(), "a key of another set");
    assert!(set.wait().unwrap().ready() == 1);
    {
        let s = set.ready_mut(k).unwrap();
        assert_eq!(&*s.try_recv().unwrap(), b"last");
        assert_eq!(s.try_recv().unwrap_err(), TryRecvError::Disconnected);
    }
    let back = set.remove(k).expect("member");
    assert_eq!(back.topic(), m.topic);
    assert!(
        set.get_mut(k).is_none() && set.remove(k).is_none(),
        "a removed key"
    );

    // Nothing to wait for.
    assert_eq!(set.wait().unwrap_err(), WaitError::NothingToWaitFor);
    assert!(set
        .wait_timeout(Duration::from_millis(5))
        .unwrap()
        .timed_out());
}

#[test]
fn typed_members_and_removal_in_the_middle_keep_the_others_working() {
    let prefix = prefix("typed");
    let names: Vec<String> = (0..3).map(|_| topic("typed")).collect();
    let _cleanup: Vec<Cleanup> = names
        .iter()
        .map(|t| Cleanup(prefix.clone(), t.clone()))
        .collect();
    let mut pubs: Vec<TypedPublisher<u64>> = names
        .iter()
        .map(|t| TypedPublisher::<u64>::create(t, config(&prefix)).unwrap())
        .collect();
    let mut set = WaitSet::new().strategy(WaitStrategy::Park);
    let keys: Vec<Key<TypedSubscriber<u64>>> = names
        .iter()
        .map(|t| {
            set.add(TypedSubscriber::<u64>::attach(t, options(&prefix)).unwrap())
                .unwrap()
        })
        .collect();
    // Remove the middle member; the last one moves into its place.
    let middle = set.remove(keys[1]).expect("middle");
    drop(middle);
    for (i, p) in pubs.iter_mut().enumerate() {
        p.send(&(i as u64 * 10)).unwrap();
    }
    let woke = set.wait_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(woke.ready(), 2);
    for (i, &k) in keys.iter().enumerate() {
        if i == 1 {
            assert!(!set.is_ready(k) && set.get_mut(k).is_none());
            continue;
        }
        let s = set.ready_mut(k).expect("ready");
        assert_eq!(*s.try_recv().unwrap(), i as u64 * 10);
    }
    // Later messages still wake the set through the moved member.
    pubs[2].send(&99).unwrap();
    assert!(set.wait_timeout(Duration::from_secs(5)).unwrap().ready() == 1);
    assert_eq!(*set.ready_mut(keys[2]).unwrap().try_recv().unwrap(), 99);
}

/// A set of idle topics (live publishers that never publish) is never ready: the wait
/// sleeps until its deadline, across a liveness check.
#[test]
fn idle_topics_never_make_the_set_ready() {
    let prefix = prefix("idle");
    let names: Vec<String> = (0..8).map(|_| topic("idle")).collect();
    let _cleanup: Vec<Cleanup> = names
        .iter()
        .map(|t| Cleanup(prefix.clone(), t.clone()))
        .collect();
    let _pubs: Vec<Publisher> = names
        .iter()
        .map(|t| Publisher::create(t, config(&prefix)).unwrap())
        .collect();
    let mut set = WaitSet::new().strategy(WaitStrategy::Park);
    for t in &names {
        let opts = options(&prefix).start(Start::Oldest);
        set.add(Subscriber::attach(t, opts).unwrap()).unwrap();
    }
    let started = Instant::now();
    let woke = set.wait_timeout(Duration::from_millis(120)).unwrap();
    assert!(woke.timed_out(), "{woke:?}");
    assert!(started.elapsed() >= Duration::from_millis(100));
}

/// An empty set waits out its timeout (nothing to sleep on) and keeps futex_waitv for the
/// members added afterwards (an empty word list is not "futex_waitv is missing").
#[test]
fn an_empty_set_waits_out_its_timeout_and_still_sleeps_on_futex_words_afterwards() {
    let mut set = WaitSet::new().strategy(WaitStrategy::Park);
    let polling_before = set.is_polling();
    let started = Instant::now();
    let w = set.wait_timeout(Duration::from_millis(20)).unwrap();
    assert!(w.timed_out());
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert_eq!(
        set.is_polling(),
        polling_before,
        "an empty wait switched the set to polling"
    );
}
