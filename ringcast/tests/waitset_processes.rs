//! The wait set across processes: one waiter on 8 topics fed by 8 publisher processes in
//! random bursts with random pauses (so the waiter sleeps often), and a member whose
//! publisher is SIGKILLed while the waiter sleeps.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ringcast::*;
use ringcast_core::futex;

const CHILD: &str = "waitset_processes_child_entry";
const LONG: Duration = Duration::from_secs(30);

/// Entry point of the child processes (runs only when re-executed with a role).
#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn waitset_processes_child_entry() {
    match std::env::var(ROLE).as_deref() {
        Ok("bursts") => burst_publisher(),
        Ok("steady") => steady_publisher_child(),
        _ => {}
    }
}

fn config(prefix: &str) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(prefix)
        .slots(16)
        .slot_size(64)
        .overflow(Overflow::Block)
}

/// Publishes COUNT messages (payload: the sequence number) in bursts of 1-8 with pauses of
/// 0-1.5 ms drawn from SEED, once one subscriber is attached; then closes.
fn burst_publisher() {
    let (prefix, topic, count, mut rng): (String, String, u64, u64) =
        (env("PREFIX"), env("TOPIC"), env("COUNT"), env("SEED"));
    let mut p = Publisher::create(&topic, config(&prefix)).expect("create");
    p.wait_for_subscribers(1, LONG).expect("subscriber");
    let mut seq = 0;
    while seq < count {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        for _ in 0..(1 + rng % 8) {
            if seq == count {
                break;
            }
            p.send(&seq.to_le_bytes()).expect("send");
            seq += 1;
        }
        std::thread::sleep(Duration::from_micros((rng >> 8) % 1500));
    }
    println!("RESULT sent={seq} wakes={}", futex::wake_calls());
}

/// Attaches to every topic (waiting for its publisher) and puts the subscribers in a
/// parked wait set.
fn set_of(prefix: &str, topics: &[String]) -> (WaitSet, Vec<Key<Subscriber>>) {
    let mut set = WaitSet::new().strategy(WaitStrategy::Park);
    let keys = topics
        .iter()
        .map(|t| {
            let opts = SubscriberOptions::default().prefix(prefix);
            let sub = Subscriber::attach_wait(t, opts, LONG).expect("attach");
            set.add(sub).expect("add")
        })
        .collect();
    (set, keys)
}

/// Drains every ready member: checks order and payload, counts, and removes a member at
/// its end. Returns the indices of members that ended.
fn drain(set: &mut WaitSet, keys: &[Key<Subscriber>], next: &mut [u64]) -> Vec<usize> {
    let mut ended = Vec::new();
    for (i, &k) in keys.iter().enumerate() {
        let Some(sub) = set.ready_mut(k) else {
            continue;
        };
        loop {
            match sub.try_recv() {
                Ok(s) => {
                    assert_eq!(s.seq(), next[i], "topic {i}: lost, duplicated or reordered");
                    assert_eq!(&*s, &s.seq().to_le_bytes(), "topic {i}: payload");
                    next[i] += 1;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    ended.push(i);
                    break;
                }
                Err(e) => panic!("topic {i}: {e}"),
            }
        }
    }
    for &i in &ended {
        set.remove(keys[i]).expect("member");
    }
    ended
}

#[test]
fn one_waiter_on_8_topics_fed_by_8_processes_in_bursts_gets_every_message_once_in_order() {
    const COUNT: u64 = 2000;
    let prefix = prefix("wsp");
    let topics: Vec<String> = (0..8).map(|_| topic("burst")).collect();
    let _cleanup: Vec<Cleanup> = topics
        .iter()
        .map(|t| Cleanup(prefix.clone(), t.clone()))
        .collect();
    let children: Vec<_> = topics
        .iter()
        .enumerate()
        .map(|(i, t)| {
            spawn(
                CHILD,
                "bursts",
                &[
                    ("PREFIX", prefix.clone()),
                    ("TOPIC", t.clone()),
                    ("COUNT", COUNT.to_string()),
                    (
                        "SEED",
                        (0x2545_f491_4f6c_dd1d_u64 ^ ((i as u64 + 1) * 0x9e37)).to_string(),
                    ),
                ],
            )
        })
        .collect();
    let (mut set, keys) = set_of(&prefix, &topics);
    let sleeps_before = futex::wait_calls();
    let mut next = vec![0u64; 8];
    let mut open = 8;
    let deadline = Instant::now() + Duration::from_secs(120);
    while open > 0 {
        assert!(Instant::now() < deadline, "stuck at {next:?}");
        set.wait_timeout(Duration::from_secs(10)).expect("wait");
        open -= drain(&mut set, &keys, &mut next).len();
    }
    let sleeps = futex::wait_calls() - sleeps_before;
    assert_eq!(next, vec![COUNT; 8]);
    let mut wakes = 0;
    for child in children {
        let (code, result) = finish(child, Duration::from_secs(30));
        assert_eq!(code, Some(0), "publisher process failed");
        let r = result.expect("RESULT");
        assert_eq!(field(&r, "sent"), COUNT);
        wakes += field(&r, "wakes");
    }
    // The waiter slept often (this is a wake-up test, not a spinning one), and the
    // publishers woke it only when it had announced a sleep: never more than once per
    // message, far fewer when it was awake.
    assert!(sleeps >= 1000, "only {sleeps} sleep/wake rounds");
    assert!(wakes <= 8 * COUNT, "{wakes} wake calls");
    eprintln!(
        "{sleeps} sleeps, {wakes} wake calls for {} messages",
        8 * COUNT
    );
}

#[test]
fn a_member_whose_publisher_is_killed_reports_disconnected_within_the_bound_the_others_go_on() {
    const COUNT: u64 = 150;
    let prefix = prefix("wsk");
    let topics: Vec<String> = (0..3).map(|_| topic("kill")).collect();
    let _cleanup: Vec<Cleanup> = topics
        .iter()
        .map(|t| Cleanup(prefix.clone(), t.clone()))
        .collect();
    let children: Vec<Talking> = topics
        .iter()
        .map(|t| {
            spawn_talking(
                CHILD,
                "steady",
                &[
                    ("PREFIX", prefix.clone()),
                    ("TOPIC", t.clone()),
                    ("COUNT", COUNT.to_string()),
                ],
            )
        })
        .collect();
    let (mut set, keys) = set_of(&prefix, &topics);
    for c in &children {
        c.expect("READY", LONG);
    }
    let mut next = vec![0u64; 3];
    // Let some messages flow, then kill the middle publisher while the waiter sleeps
    // between its 5 ms messages.
    while next.iter().any(|&n| n < 20) {
        set.wait_timeout(Duration::from_secs(10)).unwrap();
        assert!(drain(&mut set, &keys, &mut next).is_empty());
    }
    let mut children = children.into_iter();
    let (first, victim, last) = (
        children.next().unwrap(),
        children.next().unwrap(),
        children.next().unwrap(),
    );
    let killed_at = Instant::now();
    victim.kill();
    let mut noticed = None;
    let mut open = 3;
    let deadline = Instant::now() + Duration::from_secs(60);
    while open > 0 {
        assert!(Instant::now() < deadline, "stuck at {next:?}");
        set.wait_timeout(Duration::from_secs(10)).unwrap();
        for i in drain(&mut set, &keys, &mut next) {
            open -= 1;
            if i == 1 {
                noticed = Some(killed_at.elapsed());
            }
        }
    }
    let noticed = noticed.expect("the killed member ended");
    let bound = 2 * LIVENESS_SLICE + Duration::from_millis(900);
    assert!(
        noticed <= bound,
        "Disconnected after {noticed:?} (bound {bound:?})"
    );
    assert_eq!((next[0], next[2]), (COUNT, COUNT), "the others stopped");
    assert!(next[1] >= 20 && next[1] < COUNT);
    for c in [first, last] {
        let (code, _) = c.finish(Duration::from_secs(30));
        assert_eq!(code, Some(0));
    }
}
