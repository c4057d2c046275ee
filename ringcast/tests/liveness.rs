//! Waiting and liveness across real processes: futex wake-ups for many rounds, SIGKILL of
//! the publisher (asleep subscribers, and mid-write), SIGKILL of a subscriber that a
//! `Block` publisher waits on (idle, or holding a sample in place), re-creating a topic
//! after its publisher was killed, and timeouts that return within their bound.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ringcast::*;

const CHILD: &str = "liveness_child_entry";
const LONG: Duration = Duration::from_secs(30);

/// Entry point of the child processes (runs only when re-executed with a role).
#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn liveness_child_entry() {
    match std::env::var(ROLE).as_deref() {
        Ok("pub") => publisher_child(),
        Ok("sub") => subscriber_child(),
        Ok("stall") => stalled_subscriber_child(),
        _ => {}
    }
}

fn pconfig(prefix: &str) -> PublisherConfig {
    let overflow = if env::<String>("OVERFLOW") == "block" {
        Overflow::Block
    } else {
        Overflow::Overwrite
    };
    PublisherConfig::default()
        .prefix(prefix)
        .slots(env("SLOTS"))
        .slot_size(64)
        .overflow(overflow)
}

/// Publishes COUNT messages (every PACE_MS ms if set) after SUBS subscribers attached,
/// says "PUBLISHED", then either exits (HANG=0), or hangs, first loaning a slot and
/// half-writing it if HANG=loan.
fn publisher_child() {
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    let (count, subs, pace_ms): (u64, usize, u64) = (env("COUNT"), env("SUBS"), env("PACE_MS"));
    let mut p = Publisher::create(&topic, pconfig(&prefix)).expect("create");
    println!("CREATED");
    p.wait_for_subscribers(subs, LONG).expect("subscribers");
    for seq in 0..count {
        let len = len_for(seq, 64);
        let mut loan = p.loan();
        fill(seq, &mut loan[..len]);
        loan.commit(len);
        if pace_ms > 0 {
            std::thread::sleep(Duration::from_millis(pace_ms));
        }
    }
    println!("PUBLISHED");
    match env::<String>("HANG").as_str() {
        "loan" => {
            let mut loan = p.loan();
            // Half a message: a stamp says "busy", the payload is garbage.
            loan[..32].fill(0xEE);
            println!("LOANED");
            std::thread::sleep(Duration::from_secs(600));
        }
        "idle" => std::thread::sleep(Duration::from_secs(600)),
        _ => println!("RESULT published={count}"),
    }
}

/// Receives until Disconnected with the futex-only wait strategy, verifying every message.
fn subscriber_child() {
    let mut sub = attach_parked_child(LONG);
    let (mut next, mut lost) = (0u64, 0u64);
    loop {
        match sub.recv() {
            Ok(m) => {
                assert_eq!(m.seq(), next, "out of order");
                check(m.seq(), 64, &m).expect("intact payload");
                next += 1;
            }
            Err(RecvError::Lagged(n)) => {
                next += n;
                lost += n;
            }
            Err(RecvError::Disconnected) => break,
            Err(e) => panic!("recv: {e}"),
        }
    }
    let waits = ringcast_core::futex::wait_calls();
    println!("RESULT received={} lost={lost} waits={waits}", next - lost);
}

/// Attaches, optionally takes one sample and holds it in place (HOLD=1), says so, and
/// never reads again.
fn stalled_subscriber_child() {
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    let mut sub =
        Subscriber::attach_wait(&topic, SubscriberOptions::default().prefix(&prefix), LONG)
            .expect("attach");
    println!("ATTACHED");
    if env::<u32>("HOLD") == 1 {
        let sample = sub.recv().expect("first message");
        println!("HOLDING {}", sample.seq());
        std::thread::sleep(Duration::from_secs(600));
        drop(sample);
    }
    std::thread::sleep(Duration::from_secs(600));
}

fn names(tag: &str) -> Names {
    Names::new("live", tag)
}

fn env_of(n: &Names, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("PREFIX", n.prefix.clone()),
        ("TOPIC", n.topic.clone()),
        ("OVERFLOW", "overwrite".to_owned()),
        ("SLOTS", "256".to_owned()),
        ("COUNT", "100".to_owned()),
        ("SUBS", "1".to_owned()),
        ("PACE_MS", "0".to_owned()),
        ("HANG", "0".to_owned()),
        ("HOLD", "0".to_owned()),
    ];
    for (k, v) in extra {
        let slot = env.iter_mut().find(|(key, _)| key == k).expect("known key");
        slot.1 = v.to_string();
    }
    env
}

#[test]
fn sleeping_subscribers_are_woken_for_every_message_over_many_rounds() {
    let n = names("wake");
    let env = env_of(&n, &[("COUNT", "200"), ("SUBS", "2"), ("PACE_MS", "2")]);
    let subs = [
        spawn_talking(CHILD, "sub", &env),
        spawn_talking(CHILD, "sub", &env),
    ];
    let publisher = spawn_talking(CHILD, "pub", &env);
    let (code, _) = publisher.finish(LONG);
    assert_eq!(code, Some(0));
    for sub in subs {
        let (code, result) = sub.finish(LONG);
        assert_eq!(code, Some(0));
        let r = result.expect("RESULT");
        assert_eq!(field(&r, "received"), 200);
        // Paced 2 ms apart with a futex-only strategy: it slept between messages.
        assert!(field(&r, "waits") >= 50, "subscriber rarely slept: {r}");
    }
}

fn killed_publisher(hang: &str) {
    let n = names("pubkill");
    let env = env_of(&n, &[("COUNT", "100"), ("SUBS", "2"), ("HANG", hang)]);
    let subs = [
        spawn_talking(CHILD, "sub", &env),
        spawn_talking(CHILD, "sub", &env),
    ];
    let publisher = spawn_talking(CHILD, "pub", &env);
    publisher.expect(
        if hang == "loan" {
            "LOANED"
        } else {
            "PUBLISHED"
        },
        LONG,
    );
    // Let the subscribers drain and fall asleep in the futex.
    std::thread::sleep(Duration::from_millis(200));
    let killed_at = Instant::now();
    publisher.kill();
    for sub in subs {
        let (code, result) = sub.finish(LONG);
        assert_eq!(code, Some(0), "subscriber failed");
        let r = result.expect("RESULT");
        // Everything committed before the kill, nothing of the half-written slot.
        assert_eq!(field(&r, "received"), 100, "{r}");
        assert_eq!(field(&r, "lost"), 0, "{r}");
    }
    // The bound is one liveness slice (50 ms); leave room for a loaded machine.
    assert!(killed_at.elapsed() < Duration::from_secs(10));
    // The dead publisher's topic can be re-created at once.
    let mut p = Publisher::create(&n.topic, PublisherConfig::default().prefix(&n.prefix))
        .expect("reclaim the topic of a killed publisher");
    let mut s = Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
        .expect("attach to the new incarnation");
    p.send(b"again").expect("send");
    assert_eq!(&*s.try_recv().expect("receive"), b"again");
}

#[test]
fn killing_the_publisher_disconnects_sleeping_subscribers_after_draining() {
    killed_publisher("idle");
}

#[test]
fn a_publisher_killed_mid_write_never_exposes_the_half_written_message() {
    killed_publisher("loan");
}

fn killed_subscriber_unblocks_publisher(hold: &str) {
    let n = names("subkill");
    let env = env_of(
        &n,
        &[
            ("OVERFLOW", "block"),
            ("SLOTS", "4"),
            ("COUNT", "60"),
            ("SUBS", "2"),
            ("HOLD", hold),
        ],
    );
    let stalled = spawn_talking(CHILD, "stall", &env);
    let reader = spawn_talking(CHILD, "sub", &env);
    let publisher = spawn_talking(CHILD, "pub", &env);
    if hold == "1" {
        stalled.expect("HOLDING", LONG);
    } else {
        stalled.expect("ATTACHED", LONG);
    }
    // The ring is 4 slots: the publisher is now stuck behind the stalled subscriber.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        publisher.lines.try_iter().all(|l| l != "PUBLISHED"),
        "publisher did not wait for the stalled Block subscriber"
    );
    stalled.kill();
    let (code, _) = publisher.finish(LONG);
    assert_eq!(
        code,
        Some(0),
        "publisher did not continue after the subscriber died"
    );
    let (code, result) = reader.finish(LONG);
    assert_eq!(code, Some(0));
    assert_eq!(field(&result.expect("RESULT"), "received"), 60);
}

#[test]
fn killing_a_subscriber_a_block_publisher_waits_on_lets_it_continue() {
    killed_subscriber_unblocks_publisher("0");
}

#[test]
fn killing_a_subscriber_holding_a_sample_in_place_lets_the_publisher_continue() {
    killed_subscriber_unblocks_publisher("1");
}

#[test]
fn a_live_publisher_cannot_be_taken_over() {
    let n = names("live");
    let env = env_of(&n, &[("SUBS", "0"), ("HANG", "idle")]);
    let publisher = spawn_talking(CHILD, "pub", &env);
    publisher.expect("PUBLISHED", LONG);
    match Publisher::create(&n.topic, PublisherConfig::default().prefix(&n.prefix)) {
        Err(CreateError::AlreadyPublished { topic, .. }) => assert_eq!(topic, n.topic),
        Err(e) => panic!("expected AlreadyPublished, got {e}"),
        Ok(_) => panic!("took over a live publisher's topic"),
    }
    publisher.kill();
}

#[test]
fn timeouts_return_within_their_bound() {
    let n = names("timeout");
    let bound = Duration::from_millis(100);
    let margin = Duration::from_secs(2);
    let within = |t: Instant| {
        let e = t.elapsed();
        assert!(e >= bound && e < bound + margin, "took {e:?}");
    };

    let t = Instant::now();
    let err = Subscriber::attach_wait(
        &n.topic,
        SubscriberOptions::default().prefix(&n.prefix),
        bound,
    );
    assert!(matches!(err, Err(AttachError::NotFound { .. })));
    within(t);

    let mut p = Publisher::create(
        &n.topic,
        PublisherConfig::default()
            .prefix(&n.prefix)
            .slots(2)
            .overflow(Overflow::Block),
    )
    .expect("create");
    let mut s = Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
        .expect("attach");
    let t = Instant::now();
    assert_eq!(
        s.recv_timeout(bound).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    within(t);

    p.send(b"1").expect("send");
    p.send(b"2").expect("send");
    let t = Instant::now();
    assert!(
        p.loan_timeout(bound).is_err(),
        "ring of 2 with an idle subscriber is full"
    );
    within(t);
    assert_eq!(&*s.recv().expect("recv"), b"1");
    assert!(p.loan_timeout(bound).is_ok(), "a release made room");
}
