//! The stall timeout of a `Block` topic: a live subscriber that stops reading is evicted
//! after the timeout (never before), told `Evicted`, and no longer gates the publisher; a
//! subscriber reading a sample in place is never evicted while it holds it; a stopped
//! process (SIGSTOP) is handled like any stalled subscriber; bad settings are refused.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, raise, Signal};
use nix::unistd::Pid;
use ringcast::*;

const CHILD: &str = "stall_child_entry";
const LONG: Duration = Duration::from_secs(30);

/// Entry point of the child processes (runs only when re-executed with a role).
#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn stall_child_entry() {
    if std::env::var(ROLE).as_deref() == Ok("sub") {
        subscriber_child()
    }
}

/// Receives in a loop; after STOP_AFTER messages (if non-zero) it stops itself with
/// SIGSTOP between two samples (so it holds nothing), and carries on when continued.
/// Prints how many messages it received in order and whether it was evicted.
fn subscriber_child() {
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    let stop_after: u64 = env("STOP_AFTER");
    let mut sub =
        Subscriber::attach_wait(&topic, SubscriberOptions::default().prefix(&prefix), LONG)
            .expect("attach");
    println!("ATTACHED");
    let mut next = 0u64;
    let evicted = loop {
        if stop_after != 0 && next == stop_after {
            println!("STOPPING");
            // raise: to this very thread, so it stops before it returns (a process-directed
            // kill may be taken by another thread while this one reads on for a while).
            raise(Signal::SIGSTOP).expect("stop myself");
        }
        match sub.recv() {
            Ok(m) => {
                assert_eq!(m.seq(), next, "out of order");
                check(m.seq(), 64, &m).expect("intact payload");
                next += 1;
            }
            Err(RecvError::Evicted) => break true,
            Err(RecvError::Disconnected) => break false,
            Err(e) => panic!("recv: {e}"),
        }
    };
    println!("RESULT received={next} evicted={}", evicted as u8);
}

fn names(tag: &str) -> Names {
    Names::new("stall", tag)
}

fn block_config(n: &Names, slots: u64, stall: Duration) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(&n.prefix)
        .slots(slots)
        .slot_size(64)
        .overflow(Overflow::Block)
        .stall_timeout(stall)
}

fn publish(p: &mut Publisher, seq: u64) {
    let len = len_for(seq, 64);
    let mut loan = p.loan();
    fill(seq, &mut loan[..len]);
    loan.commit(len);
}

#[test]
fn a_subscriber_that_stops_reading_is_evicted_after_the_timeout_and_told_so() {
    let n = names("idle");
    let stall = Duration::from_millis(40);
    let mut p = Publisher::create(&n.topic, block_config(&n, 4, stall)).expect("create");
    let opts = SubscriberOptions::default().prefix(&n.prefix);
    let mut idle = Subscriber::attach(&n.topic, opts.clone()).expect("attach idle");
    let fast = Subscriber::attach(&n.topic, opts).expect("attach fast");
    // The fast subscriber reads everything on its own thread and is never evicted.
    let reader = std::thread::spawn(move || {
        let mut fast = fast;
        let mut next = 0u64;
        loop {
            match fast.recv() {
                Ok(m) => {
                    assert_eq!(m.seq(), next);
                    check(m.seq(), 64, &m).expect("intact");
                    next += 1;
                }
                Err(RecvError::Disconnected) => return next,
                Err(e) => panic!("fast subscriber: {e}"),
            }
        }
    });
    let started = Instant::now();
    for seq in 0..100 {
        publish(&mut p, seq);
    }
    // The idle subscriber blocked the publisher at message 4; it may only have been
    // evicted after the whole timeout (a correctness bound, not a speed one).
    assert!(
        started.elapsed() >= stall,
        "evicted after {:?}, before the stall timeout {stall:?}",
        started.elapsed()
    );
    let info = ringcast::inspect::inspect(&n.prefix, &n.topic).expect("inspect");
    let evicted: Vec<bool> = info.subscribers.iter().map(|s| s.evicted).collect();
    assert_eq!(evicted, [true, false], "{info:?}");
    assert_eq!(info.geometry.stall_timeout_ns, stall.as_nanos() as u64);

    // Told on its next call, every time, never handed a message that was overwritten.
    assert_eq!(idle.try_recv().unwrap_err(), TryRecvError::Evicted);
    assert_eq!(idle.try_recv().unwrap_err(), TryRecvError::Evicted);
    assert_eq!(
        idle.recv_timeout(Duration::from_millis(10)).unwrap_err(),
        RecvTimeoutError::Evicted
    );
    drop(idle);
    drop(p);
    assert_eq!(reader.join().expect("fast subscriber"), 100);
}

#[test]
fn a_subscriber_holding_a_sample_in_place_is_never_evicted() {
    let n = names("hold");
    let stall = Duration::from_millis(5);
    let mut p = Publisher::create(&n.topic, block_config(&n, 2, stall)).expect("create");
    let mut s = Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
        .expect("attach");
    publish(&mut p, 0);
    publish(&mut p, 1);
    {
        let held = s.recv().expect("message 0");
        assert_eq!(held.seq(), 0);
        // The ring is full and its oldest slot is held in place: waiting many times the
        // stall timeout must not evict the holder (that would rewrite bytes it reads).
        assert!(p.loan_timeout(Duration::from_millis(200)).is_err());
        assert!(p.try_loan().is_err());
        check(0, 64, &held).expect("held sample unchanged");
    }
    // Released: room again, and the subscriber carries on in order.
    publish(&mut p, 2);
    for seq in 1..3 {
        let m = s.recv().expect("in order after the hold");
        assert_eq!(m.seq(), seq);
        check(seq, 64, &m).expect("intact");
    }
    let info = ringcast::inspect::inspect(&n.prefix, &n.topic).expect("inspect");
    assert!(!info.subscribers[0].evicted);
}

#[test]
fn a_stopped_subscriber_process_is_evicted_and_learns_it_when_continued() {
    let n = names("sigstop");
    let env = vec![
        ("PREFIX", n.prefix.clone()),
        ("TOPIC", n.topic.clone()),
        ("STOP_AFTER", "20".to_owned()),
    ];
    let stopped = spawn_talking(CHILD, "sub", &env);
    let env_running = vec![
        ("PREFIX", n.prefix.clone()),
        ("TOPIC", n.topic.clone()),
        ("STOP_AFTER", "0".to_owned()),
    ];
    let running = spawn_talking(CHILD, "sub", &env_running);
    let mut p = Publisher::create(&n.topic, block_config(&n, 8, Duration::from_millis(50)))
        .expect("create");
    p.wait_for_subscribers(2, LONG).expect("two subscribers");
    stopped.expect("ATTACHED", LONG);
    running.expect("ATTACHED", LONG);
    // 2000 messages through 8 slots: impossible unless the stopped process is evicted.
    for seq in 0..2000 {
        publish(&mut p, seq);
    }
    stopped.expect("STOPPING", LONG);
    wait_until_stopped(stopped.child.id());
    drop(p);
    kill(Pid::from_raw(stopped.child.id() as i32), Signal::SIGCONT).expect("continue");
    let (code, result) = stopped.finish(LONG);
    assert_eq!(code, Some(0));
    let r = result.expect("RESULT");
    assert_eq!(field(&r, "evicted"), 1, "{r}");
    assert_eq!(field(&r, "received"), 20, "{r}");
    let (code, result) = running.finish(LONG);
    assert_eq!(code, Some(0));
    let r = result.expect("RESULT");
    assert_eq!(
        (field(&r, "received"), field(&r, "evicted")),
        (2000, 0),
        "{r}"
    );
}

/// Waits until process `pid` is in the stopped state (`T` in /proc/PID/stat).
fn wait_until_stopped(pid: u32) {
    let deadline = Instant::now() + LONG;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
        // The state follows the parenthesised command name.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        if state == Some("T") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "child {pid} never stopped: {stat}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn stall_timeouts_out_of_range_or_without_block_are_refused() {
    let n = names("badcfg");
    let cases = [
        (
            PublisherConfig::default().stall_timeout(Duration::from_millis(10)),
            ConfigError::StallTimeoutWithoutBlock,
        ),
        (
            PublisherConfig::default()
                .overflow(Overflow::Block)
                .stall_timeout(Duration::from_micros(10)),
            ConfigError::StallTimeout(Duration::from_micros(10)),
        ),
        (
            PublisherConfig::default()
                .overflow(Overflow::Block)
                .stall_timeout(Duration::from_secs(100_000)),
            ConfigError::StallTimeout(Duration::from_secs(100_000)),
        ),
    ];
    for (cfg, want) in cases {
        match Publisher::create(&n.topic, cfg.prefix(&n.prefix)) {
            Err(CreateError::Config { source, .. }) => assert_eq!(source, want),
            Err(e) => panic!("expected {want:?}, got {e}"),
            Ok(_) => panic!("accepted a bad stall timeout ({want:?})"),
        }
    }
}
