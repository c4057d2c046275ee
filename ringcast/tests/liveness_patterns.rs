//! The liveness bound holds for every calling pattern, not only for one long blocking
//! call: the clock that rate-limits the (system-call) liveness check belongs to the
//! handle. Each case kills a real peer process with SIGKILL and measures how long the
//! survivor takes to notice, whatever way it calls:
//!
//! - a `Block` publisher stuck behind a dead subscriber, calling `loan`, a `try_loan` loop,
//!   or `loan_timeout` loops of 1, 20, 45 and 200 ms;
//! - a subscriber (raw and typed) of a dead publisher, calling `recv`, `try_recv` at 10 Hz
//!   and flat out, or `recv_timeout` loops of 1, 5, 20, 45 and 60 ms: it gets everything
//!   that was published, then `Disconnected`.
//!
//! The documented bound is two liveness slices (100 ms) plus the caller's own period
//! between calls; the tests allow a generous margin on top (these machines are shared),
//! but before the clock moved to the handle several patterns never noticed at all.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ringcast::*;

const CHILD: &str = "patterns_child_entry";
const LONG: Duration = Duration::from_secs(30);
/// Messages the killed publisher published before dying.
const PUBLISHED: u64 = 10;
/// Slots of the `Block` topic the dead subscriber blocks.
const SLOTS: u64 = 4;

/// Entry point of the child processes (runs only when re-executed with a role).
#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn patterns_child_entry() {
    match std::env::var(ROLE).as_deref() {
        Ok("pub") => publisher_child(),
        Ok("sub") => idle_subscriber_child(),
        _ => {}
    }
}

/// Publishes PUBLISHED messages (raw, or typed `u64`s if TYPED=1) once one subscriber is
/// attached, says so, and idles until killed.
fn publisher_child() {
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    let cfg = PublisherConfig::default()
        .prefix(&prefix)
        .slots(64)
        .slot_size(64)
        .overflow(Overflow::Block);
    if env::<u32>("TYPED") == 1 {
        let mut p = TypedPublisher::<u64>::create(&topic, cfg).expect("create");
        p.wait_for_subscribers(1, LONG).expect("subscriber");
        for i in 0..PUBLISHED {
            p.send(&i).expect("send");
        }
        println!("PUBLISHED");
        std::thread::sleep(Duration::from_secs(600));
    } else {
        let mut p = Publisher::create(&topic, cfg).expect("create");
        p.wait_for_subscribers(1, LONG).expect("subscriber");
        for i in 0..PUBLISHED {
            p.send(&i.to_le_bytes()).expect("send");
        }
        println!("PUBLISHED");
        std::thread::sleep(Duration::from_secs(600));
    }
}

/// Attaches and never reads, until killed.
fn idle_subscriber_child() {
    let _sub = attach_parked_child(LONG);
    std::thread::sleep(Duration::from_secs(600));
}

/// How the survivor calls. Each step is one call; `period` is the caller's own pause
/// between calls (0 for back-to-back).
#[derive(Clone, Copy, Debug)]
enum Pattern {
    Blocking,
    TryLoop { period: Duration },
    TimeoutLoop { timeout: Duration },
}

use Pattern::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the bound allows for a pattern: two slices, plus the caller's own period, plus a
/// margin for a loaded machine.
fn allowance(p: Pattern) -> Duration {
    let own = match p {
        Blocking => Duration::ZERO,
        TryLoop { period } => period,
        TimeoutLoop { timeout } => timeout,
    };
    2 * ringcast::LIVENESS_SLICE + own + Duration::from_millis(900)
}

// ---- a Block publisher and a dead subscriber ----

/// Fills the ring against an idle subscriber process, kills it, and returns how long the
/// publisher took, calling in `pattern`, to publish one more message.
fn publisher_gets_past_dead_subscriber(pattern: Pattern) -> Duration {
    let n = Names::new("pat", "deadsub");
    let mut p = Publisher::create(
        &n.topic,
        PublisherConfig::default()
            .prefix(&n.prefix)
            .slots(SLOTS)
            .slot_size(64)
            .overflow(Overflow::Block)
            .wait_strategy(WaitStrategy::Park),
    )
    .expect("create");
    let sub = spawn_talking(
        CHILD,
        "sub",
        &[("PREFIX", n.prefix.clone()), ("TOPIC", n.topic.clone())],
    );
    sub.expect("ATTACHED", LONG);
    for i in 0..SLOTS {
        p.send(&i.to_le_bytes()).expect("room for a ring");
    }
    assert!(p.try_loan().is_err(), "the idle subscriber must gate");
    sub.kill();
    let killed = Instant::now();
    let give_up = killed + Duration::from_secs(10);
    loop {
        let got = match pattern {
            Blocking => Some(p.loan()),
            TryLoop { period } => p.try_loan().ok().or_else(|| {
                std::thread::sleep(period);
                None
            }),
            TimeoutLoop { timeout } => p.loan_timeout(timeout).ok(),
        };
        if let Some(loan) = got {
            loan.commit(0);
            return killed.elapsed();
        }
        assert!(
            Instant::now() < give_up,
            "{pattern:?}: still blocked by a dead subscriber after 10 s"
        );
    }
}

fn check_publisher(pattern: Pattern) {
    let took = publisher_gets_past_dead_subscriber(pattern);
    assert!(
        took <= allowance(pattern),
        "{pattern:?}: took {took:?} to get past a dead subscriber"
    );
}

#[test]
fn a_blocking_loan_gets_past_a_killed_subscriber() {
    check_publisher(Blocking);
}

#[test]
fn a_try_loan_loop_gets_past_a_killed_subscriber() {
    check_publisher(TryLoop { period: ms(0) });
    check_publisher(TryLoop { period: ms(1) });
}

#[test]
fn loan_timeout_loops_of_any_length_get_past_a_killed_subscriber() {
    for t in [1, 20, 45, 200] {
        check_publisher(TimeoutLoop { timeout: ms(t) });
    }
}

// ---- a subscriber and a dead publisher ----

/// Either kind of subscriber, as the test drives it.
enum AnySub {
    Raw(Subscriber),
    Typed(TypedSubscriber<u64>),
}

/// One receive step's outcome.
enum Step {
    Got(u64),
    Nothing,
    Gone,
}

impl AnySub {
    fn step(&mut self, pattern: Pattern) -> Step {
        match self {
            AnySub::Raw(s) => {
                let r = match pattern {
                    Blocking => s.recv().map_err(|e| matches!(e, RecvError::Disconnected)),
                    TryLoop { .. } => s
                        .try_recv()
                        .map_err(|e| matches!(e, TryRecvError::Disconnected)),
                    TimeoutLoop { timeout } => s
                        .recv_timeout(timeout)
                        .map_err(|e| matches!(e, RecvTimeoutError::Disconnected)),
                };
                match r {
                    Ok(m) => Step::Got(u64::from_le_bytes(m[..8].try_into().unwrap())),
                    Err(true) => Step::Gone,
                    Err(false) => Step::Nothing,
                }
            }
            AnySub::Typed(s) => {
                let r =
                    match pattern {
                        Blocking => s.recv().map(|v| v.to_native()).map_err(|e| {
                            matches!(e, TypedRecvError::Recv(RecvError::Disconnected))
                        }),
                        TryLoop { .. } => s.try_recv().map(|v| v.to_native()).map_err(|e| {
                            matches!(e, TypedRecvError::Recv(TryRecvError::Disconnected))
                        }),
                        TimeoutLoop { timeout } => {
                            s.recv_timeout(timeout).map(|v| v.to_native()).map_err(|e| {
                                matches!(e, TypedRecvError::Recv(RecvTimeoutError::Disconnected))
                            })
                        }
                    };
                match r {
                    Ok(v) => Step::Got(v),
                    Err(true) => Step::Gone,
                    Err(false) => Step::Nothing,
                }
            }
        }
    }
}

/// Receives everything a publisher process published, kills it, and returns how long the
/// subscriber took, calling in `pattern`, to report `Disconnected`.
fn subscriber_notices_dead_publisher(pattern: Pattern, typed: bool) -> Duration {
    let n = Names::new("pat", "deadpub");
    let child = spawn_talking(
        CHILD,
        "pub",
        &[
            ("PREFIX", n.prefix.clone()),
            ("TOPIC", n.topic.clone()),
            ("TYPED", u32::from(typed).to_string()),
        ],
    );
    let opts = SubscriberOptions::default()
        .prefix(&n.prefix)
        .start(Start::Oldest)
        .wait_strategy(WaitStrategy::Park);
    let mut sub = if typed {
        AnySub::Typed(TypedSubscriber::attach_wait(&n.topic, opts, LONG).expect("attach"))
    } else {
        AnySub::Raw(Subscriber::attach_wait(&n.topic, opts, LONG).expect("attach"))
    };
    child.expect("PUBLISHED", LONG);
    let mut next = 0;
    while next < PUBLISHED {
        match sub.step(Blocking) {
            Step::Got(v) => {
                assert_eq!(v, next, "in order");
                next += 1;
            }
            _ => panic!("publisher gone before its messages were read"),
        }
    }
    child.kill();
    let killed = Instant::now();
    let give_up = killed + Duration::from_secs(10);
    loop {
        match sub.step(pattern) {
            Step::Gone => return killed.elapsed(),
            Step::Got(v) => panic!("{pattern:?}: message {v} after all were read"),
            Step::Nothing => {}
        }
        assert!(
            Instant::now() < give_up,
            "{pattern:?} (typed: {typed}): no Disconnected 10 s after the publisher was killed"
        );
        if let TryLoop { period } = pattern {
            std::thread::sleep(period);
        }
    }
}

fn check_subscriber(pattern: Pattern) {
    for typed in [false, true] {
        let took = subscriber_notices_dead_publisher(pattern, typed);
        assert!(
            took <= allowance(pattern),
            "{pattern:?} (typed: {typed}): took {took:?} to notice a dead publisher"
        );
    }
}

#[test]
fn a_blocking_recv_notices_a_killed_publisher() {
    check_subscriber(Blocking);
}

#[test]
fn a_try_recv_poller_at_10_hz_notices_a_killed_publisher() {
    check_subscriber(TryLoop { period: ms(100) });
}

#[test]
fn a_flat_out_try_recv_poller_notices_a_killed_publisher() {
    check_subscriber(TryLoop { period: ms(0) });
}

#[test]
fn recv_timeout_loops_of_any_length_notice_a_killed_publisher() {
    for t in [1, 5, 20, 45, 60] {
        check_subscriber(TimeoutLoop { timeout: ms(t) });
    }
}

// ---- timeouts too large to represent ----

#[test]
fn duration_max_is_no_deadline_never_a_panic() {
    let n = Names::new("pat", "durmax");
    let mut p = Publisher::create(
        &n.topic,
        PublisherConfig::default()
            .prefix(&n.prefix)
            .slots(2)
            .overflow(Overflow::Block),
    )
    .expect("create");
    p.wait_for_subscribers(0, Duration::MAX)
        .expect("zero subscribers");
    let mut sub = Subscriber::attach_wait(
        &n.topic,
        SubscriberOptions::default().prefix(&n.prefix),
        Duration::MAX,
    )
    .expect("attach");
    p.wait_for_subscribers(1, Duration::MAX)
        .expect("one subscriber");
    p.loan_timeout(Duration::MAX).expect("room").commit(1);
    assert_eq!(sub.recv_timeout(Duration::MAX).expect("message").seq(), 0);
    let mut typed = TypedPublisher::<u64>::create(
        &format!("{}.t", n.topic),
        PublisherConfig::default().prefix(&n.prefix),
    )
    .expect("typed create");
    let _cleanup = Cleanup(n.prefix.clone(), format!("{}.t", n.topic));
    let mut tsub = TypedSubscriber::<u64>::attach_wait(
        &format!("{}.t", n.topic),
        SubscriberOptions::default().prefix(&n.prefix),
        Duration::MAX,
    )
    .expect("typed attach");
    typed.send_timeout(&7, Duration::MAX).expect("typed send");
    assert_eq!(
        tsub.recv_timeout(Duration::MAX).expect("typed").to_native(),
        7
    );
}
