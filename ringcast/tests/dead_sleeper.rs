//! A subscriber SIGKILLed while asleep in the futex stays counted as a sleeper; the
//! publisher must take that count back (within a liveness slice or so of publishing), or
//! every later publish would make a wake system call for nobody. Alone in its own test
//! binary, because the futex call counter is per process.

mod common;

use std::time::Duration;

use common::*;
use ringcast::*;
use ringcast_core::futex;

const CHILD: &str = "dead_sleeper_child_entry";
const LONG: Duration = Duration::from_secs(30);

/// Entry point of the child process (runs only when re-executed with a role).
#[test]
#[ignore = "entry point for the child process spawned by the other test"]
fn dead_sleeper_child_entry() {
    if std::env::var(ROLE).as_deref() != Ok("sleeper") {
        return;
    }
    let mut sub = attach_parked_child(LONG);
    // Sleep in the futex between messages until killed.
    loop {
        match sub.recv() {
            Ok(m) => println!("GOT {}", m.seq()),
            Err(e) => panic!("recv: {e}"),
        }
    }
}

#[test]
fn a_subscriber_killed_asleep_stops_costing_wake_calls() {
    let n = Names::new("dsleep", "t");
    let mut p =
        Publisher::create(&n.topic, PublisherConfig::default().prefix(&n.prefix)).expect("create");
    let child = spawn_talking(
        CHILD,
        "sleeper",
        &[("PREFIX", n.prefix.clone()), ("TOPIC", n.topic.clone())],
    );
    child.expect("ATTACHED", LONG);
    // Let it fall asleep; then a publish must wake it (so it really is counted).
    std::thread::sleep(Duration::from_millis(100));
    let before = futex::wake_calls();
    p.send(b"0").expect("send");
    assert!(
        futex::wake_calls() > before,
        "the child was not counted asleep"
    );
    child.expect("GOT 0", LONG);
    std::thread::sleep(Duration::from_millis(100));
    child.kill();

    // A few publishes a liveness slice apart: the publisher notices the dead sleeper.
    for i in 1..4u8 {
        p.send(&[i]).expect("send");
        std::thread::sleep(Duration::from_millis(60));
    }
    let before = futex::wake_calls();
    for i in 0..1000u32 {
        p.send(&i.to_le_bytes()).expect("send");
    }
    assert_eq!(
        futex::wake_calls(),
        before,
        "publishes still make wake calls for a subscriber that died asleep"
    );
}
