//! A task's `Waker::wake` that panics (a buggy executor) must not take the process's
//! reactor thread down with it: the panic is contained, and every other task (and the
//! panicking one's next arm) keeps being woken.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use common::*;
use ringcast::*;

fn config(prefix: &str) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(prefix)
        .slots(8)
        .slot_size(64)
        .overflow(Overflow::Block)
}

/// Counts its wakes, then panics.
struct PanickingWaker(AtomicUsize);

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("this waker panics on purpose (ringcast test)");
    }
}

/// Waits (generously) until `w` has been woken more than `before` times.
fn wait_for_wakes(w: &PanickingWaker, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.0.load(Ordering::SeqCst) <= before {
        assert!(
            Instant::now() < deadline,
            "the reactor never woke the panicking waker"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_waker_that_panics_does_not_stop_the_reactor_waking_other_tasks() {
    let bad = Names::new("pwaker", "bad");
    let good = Names::new("pwaker", "good");
    let mut bad_pub = Publisher::create(&bad.topic, config(&bad.prefix)).unwrap();
    let mut bad_sub =
        Subscriber::attach(&bad.topic, SubscriberOptions::default().prefix(&bad.prefix)).unwrap();
    let good_pub = Publisher::create(&good.topic, config(&good.prefix)).unwrap();
    let mut good_sub = Subscriber::attach(
        &good.topic,
        SubscriberOptions::default().prefix(&good.prefix),
    )
    .unwrap();

    // The reactor wakes the panicking waker (its wake panics on the reactor thread).
    let panicking = Arc::new(PanickingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(panicking.clone());
    assert!(bad_sub.poll_ready(&waker).is_pending());
    bad_pub.send(b"boom").unwrap();
    wait_for_wakes(&panicking, 0);

    // Another task, on another topic, is still woken: its message is published only after
    // it is pending on the reactor.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sender = std::thread::spawn(move || {
        let mut p = good_pub;
        std::thread::sleep(Duration::from_millis(200));
        p.send(b"after the panic").unwrap();
        p
    });
    // The deadline is checked first: a recv that only completes because the deadline's
    // poll found the message (nobody woke it) counts as never woken.
    let got = rt.block_on(async {
        tokio::select! {
            biased;
            () = tokio::time::sleep(Duration::from_secs(20)) => Err(()),
            r = good_sub.recv_async() => Ok(r.map(|s| s.to_vec())),
        }
    });
    let _good_pub = sender.join().unwrap();
    match got {
        Ok(Ok(bytes)) => assert_eq!(bytes, b"after the panic"),
        Ok(Err(e)) => panic!("recv_async failed: {e}"),
        Err(_) => panic!("recv_async never completed: the reactor died with the waker"),
    }

    // And the panicking waker itself is woken again on its next arm (still panicking).
    let woken = panicking.0.load(Ordering::SeqCst);
    assert!(matches!(
        bad_sub.poll_recv(&waker),
        std::task::Poll::Ready(Ok(_))
    ));
    assert!(bad_sub.poll_ready(&waker).is_pending());
    bad_pub.send(b"boom again").unwrap();
    wait_for_wakes(&panicking, woken);
}
