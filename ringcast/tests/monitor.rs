//! Monitors (`SubscriberOptions::monitor`): a reader that never holds a publisher back.
//! On a `Block` topic a monitor that stops reading (idle, SIGSTOPped in another process)
//! does not slow the publisher at all, while ordinary subscribers keep their guarantees;
//! what it receives is intact and in order, and what the publisher laps is counted
//! exactly; it sleeps and is woken like any subscriber (blocking, wait set, async); it does
//! not count as a subscriber for `wait_for_subscribers`; `inspect` shows it as a monitor;
//! a dead monitor's entry is reclaimed.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ringcast::*;

const CHILD: &str = "monitor_child_entry";
const LONG: Duration = Duration::from_secs(30);

/// Entry point of the child processes (runs only when re-executed with a role).
#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn monitor_child_entry() {
    if std::env::var(ROLE).as_deref() == Ok("monitor") {
        let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
        let opts = SubscriberOptions::default().prefix(&prefix).monitor();
        let mut m = Subscriber::attach_wait(&topic, opts, LONG).expect("attach");
        println!("ATTACHED");
        // Reads one message, then waits to be stopped or killed.
        let _ = m.recv_timeout(LONG);
        println!("READ");
        std::thread::sleep(LONG);
    }
}

fn block(n: &Names, slots: u64) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(&n.prefix)
        .slots(slots)
        .slot_size(64)
        .overflow(Overflow::Block)
}

fn publish(p: &mut Publisher, seq: u64) {
    let len = len_for(seq, 64);
    let mut loan = p.loan();
    fill(seq, &mut loan[..len]);
    loan.commit(len);
}

/// Receives from `m` until the publisher is gone, checking order and payloads; returns
/// (received, lost).
fn read_all(m: &mut Subscriber) -> (u64, u64) {
    let (mut next, mut received, mut lost) = (0u64, 0u64, 0u64);
    loop {
        match m.recv_timeout(LONG) {
            Ok(s) => {
                assert_eq!(s.seq(), next, "out of order or duplicate");
                check(s.seq(), 64, &s).expect("intact payload");
                next += 1;
                received += 1;
            }
            Err(RecvTimeoutError::Lagged(k)) => {
                assert!(k > 0);
                next += k;
                lost += k;
            }
            Err(RecvTimeoutError::Disconnected) => return (received, lost),
            Err(e) => panic!("monitor: {e}"),
        }
    }
}

#[test]
fn an_idle_monitor_never_holds_a_block_publisher_and_counts_what_it_missed() {
    let n = Names::new("monitor", "idle");
    let mut p = Publisher::create(&n.topic, block(&n, 4)).expect("create");
    let opts = SubscriberOptions::default().prefix(&n.prefix);
    let mut m = Subscriber::attach(&n.topic, opts.clone().monitor()).expect("monitor");
    assert!(m.is_monitor());
    assert_eq!(
        m.overflow(),
        Overflow::Block,
        "the topic's policy, not the monitor's"
    );
    // An ordinary subscriber that reads everything on its own thread: the publisher waits
    // for it, and only for it.
    let sub = Subscriber::attach(&n.topic, opts).expect("subscriber");
    let reader = std::thread::spawn(move || {
        let mut sub = sub;
        let mut next = 0u64;
        loop {
            match sub.recv() {
                Ok(s) => {
                    assert_eq!(s.seq(), next);
                    check(s.seq(), 64, &s).expect("intact");
                    next += 1;
                }
                Err(RecvError::Disconnected) => return next,
                Err(e) => panic!("subscriber: {e}"),
            }
        }
    });
    assert_eq!(p.subscriber_count(), 1, "a monitor is not a subscriber");
    let info = ringcast::inspect::inspect(&n.prefix, &n.topic).expect("inspect");
    let monitors: Vec<bool> = info.subscribers.iter().map(|s| s.monitor).collect();
    assert_eq!(monitors, [true, false], "{info:?}");
    assert!(info.subscribers.iter().all(|s| !s.evicted));
    // 1000 messages into 4 slots while the monitor reads nothing: a gating monitor would
    // hold the publisher at message 4 for ever (the test would hang).
    for seq in 0..1000 {
        publish(&mut p, seq);
    }
    drop(p);
    assert_eq!(reader.join().expect("subscriber"), 1000);
    let (received, lost) = read_all(&mut m);
    assert_eq!(
        received + lost,
        1000,
        "every message received or counted lost"
    );
    assert_eq!(lost, m.lost());
    assert!(
        (1..=4).contains(&received),
        "at most a ring's worth was left: {received}"
    );
}

#[test]
fn a_monitor_racing_a_block_publisher_gets_intact_messages_in_order_with_exact_losses() {
    let n = Names::new("monitor", "race");
    // No ordinary subscriber: the publisher never waits, and laps the monitor often.
    let mut p = Publisher::create(&n.topic, block(&n, 8)).expect("create");
    let opts = SubscriberOptions::default().prefix(&n.prefix).monitor();
    let mut m = Subscriber::attach(&n.topic, opts).expect("monitor");
    let reader = std::thread::spawn(move || {
        let r = read_all(&mut m);
        assert_eq!(r.1, m.lost());
        r
    });
    for seq in 0..200_000 {
        publish(&mut p, seq);
    }
    drop(p);
    let (received, lost) = reader.join().expect("monitor");
    assert_eq!(received + lost, 200_000);
}

#[test]
fn a_sleeping_monitor_is_woken_by_a_publish_blocking_in_a_wait_set_and_async() {
    let n = Names::new("monitor", "wake");
    let mut p = Publisher::create(&n.topic, block(&n, 4)).expect("create");
    let opts = SubscriberOptions::default()
        .prefix(&n.prefix)
        .monitor()
        .wait_strategy(WaitStrategy::Park);
    let blocking = Subscriber::attach(&n.topic, opts.clone()).expect("monitor");
    let waiting = std::thread::spawn(move || {
        let mut m = blocking;
        m.recv_timeout(LONG)
            .map(|s| s.seq())
            .expect("woken by the publish")
    });
    let in_set = Subscriber::attach(&n.topic, opts.clone()).expect("monitor");
    let set_thread = std::thread::spawn(move || {
        let mut set = WaitSet::new();
        let k = set.add(in_set).expect("add");
        let woke = set.wait_timeout(LONG).expect("wait");
        assert_eq!(woke.ready(), 1, "woken by the publish");
        let m = set.get_mut(k).expect("member");
        m.try_recv().map(|s| s.seq()).expect("ready")
    });
    let mut a = Subscriber::attach(&n.topic, opts).expect("monitor");
    let async_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async { a.recv_async().await.map(|s| s.seq()) })
            .expect("woken by the publish")
    });
    // Let all three go to sleep first (a sleep announced in time is not required for the
    // test to pass, only for it to test the wake-up).
    std::thread::sleep(Duration::from_millis(200));
    publish(&mut p, 0);
    assert_eq!(waiting.join().unwrap(), 0);
    assert_eq!(set_thread.join().unwrap(), 0);
    assert_eq!(async_thread.join().unwrap(), 0);
}

#[test]
fn a_monitor_does_not_count_for_wait_for_subscribers() {
    let n = Names::new("monitor", "count");
    let mut p = Publisher::create(&n.topic, block(&n, 4)).expect("create");
    let _m = Subscriber::attach(
        &n.topic,
        SubscriberOptions::default().prefix(&n.prefix).monitor(),
    )
    .expect("monitor");
    assert_eq!(p.wait_for_subscribers(1, Duration::from_millis(50)), Err(0));
    let _s = Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
        .expect("subscriber");
    assert_eq!(p.wait_for_subscribers(1, Duration::from_millis(50)), Ok(()));
}

/// A monitor in another process, stopped with SIGSTOP, then killed: the publisher never
/// waits for it, and its entry is reclaimed after its death.
#[test]
fn a_stopped_then_killed_monitor_process_never_holds_the_publisher() {
    let n = Names::new("monitor", "proc");
    let mut p = Publisher::create(&n.topic, block(&n, 4)).expect("create");
    let child = spawn_talking(
        CHILD,
        "monitor",
        &[("PREFIX", n.prefix.clone()), ("TOPIC", n.topic.clone())],
    );
    child.expect("ATTACHED", LONG);
    publish(&mut p, 0);
    child.expect("READ", LONG);
    let pid = Pid::from_raw(child.child.id() as i32);
    kill(pid, Signal::SIGSTOP).expect("stop the monitor");
    for seq in 1..1000 {
        publish(&mut p, seq);
    }
    child.kill();
    // The dead monitor's entry is freed by the next reap (`subscriber_count` reaps); the
    // topic goes on.
    assert_eq!(p.subscriber_count(), 0);
    let info = ringcast::inspect::inspect(&n.prefix, &n.topic).expect("inspect");
    assert!(info.subscribers.is_empty(), "{info:?}");
    publish(&mut p, 1000);
}
