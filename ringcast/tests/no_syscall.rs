//! The hot path makes no system call when nobody sleeps, and exactly the wake calls needed
//! when someone does. Alone in its own test binary, because the futex call counters are
//! per process.

use std::time::Duration;

use ringcast::core::futex;
use ringcast::*;

#[test]
fn publishing_without_sleepers_makes_no_futex_call_and_a_sleeper_is_woken() {
    let prefix = format!("rcnosys{}", std::process::id());
    let topic = "nosys";
    let mut p = Publisher::create(topic, PublisherConfig::default().prefix(&prefix).slots(64))
        .expect("create");
    let mut s =
        Subscriber::attach(topic, SubscriberOptions::default().prefix(&prefix)).expect("attach");

    let before = futex::wake_calls();
    for i in 0..10_000u32 {
        p.send(&i.to_le_bytes()).expect("send");
        if i % 32 == 0 {
            while s.try_recv().is_ok() {}
        }
    }
    assert_eq!(
        futex::wake_calls(),
        before,
        "a publish without sleepers made a wake call"
    );

    // Now a subscriber thread that really sleeps: the publisher must wake it.
    while s.try_recv().is_ok() {}
    let sleeper = std::thread::spawn(move || {
        let mut s = s;
        let waits = futex::wait_calls();
        let got = s
            .recv()
            .map(|m| m.to_vec())
            .expect("woken with the message");
        (got, futex::wait_calls() - waits)
    });
    std::thread::sleep(Duration::from_millis(100));
    p.send(b"wake up").expect("send");
    let (got, waits) = sleeper.join().expect("sleeper thread");
    assert_eq!(got, b"wake up");
    assert!(waits >= 1, "the subscriber never slept");
    assert!(
        futex::wake_calls() > before,
        "the sleeper was not woken by a wake call"
    );
}
