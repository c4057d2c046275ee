//! Async receive and loan on the process's reactor, under tokio's multi-thread and
//! current-thread runtimes: 100 tasks on 100 topics, cancelling a pending receive loses
//! nothing, a `Block` publisher's `loan_async`, the owned-sample stream, one reactor
//! thread for all of it, a task whose publisher process is SIGKILLed, and the reactor's
//! polling fallback.

mod common;

use std::pin::Pin;
use std::time::{Duration, Instant};

use common::*;
use futures_core::Stream;
use ringcast::*;
use ringcast_core::{futex, reactor};

const CHILD: &str = "async_child_entry";

/// Entry point of the child processes (runs only when re-executed with a role).
#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn async_child_entry() {
    match std::env::var(ROLE).as_deref() {
        Ok("steady") => steady_publisher_child(),
        Ok("polling") => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let got = tasks_on_topics(rt, "poll", 10);
            println!(
                "RESULT received={got} polling={} waits={}",
                u64::from(reactor::is_polling()),
                futex::wait_calls()
            );
        }
        _ => {}
    }
}

fn config(prefix: &str) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(prefix)
        .slots(8)
        .slot_size(64)
        .overflow(Overflow::Block)
}

/// `topics` topics, one task per topic, a publisher thread writing 40 messages to each in
/// a shuffled order with pauses (so tasks wait on the reactor often). Every task gets its
/// topic's messages once and in order, then `Disconnected`. Returns the messages received.
fn tasks_on_topics(rt: tokio::runtime::Runtime, tag: &str, topics: usize) -> u64 {
    const PER: u64 = 40;
    let prefix = prefix(tag);
    let names: Vec<String> = (0..topics).map(|_| topic(tag)).collect();
    let _cleanup: Vec<Cleanup> = names
        .iter()
        .map(|t| Cleanup(prefix.clone(), t.clone()))
        .collect();
    let pubs: Vec<Publisher> = names
        .iter()
        .map(|t| Publisher::create(t, config(&prefix)).unwrap())
        .collect();
    let subs: Vec<Subscriber> = names
        .iter()
        .map(|t| Subscriber::attach(t, SubscriberOptions::default().prefix(&prefix)).unwrap())
        .collect();
    let publisher = std::thread::spawn(move || {
        let mut pubs = pubs;
        let mut rng = 0x853c_49e6_748f_ea9bu64;
        for round in 0..PER {
            for _ in 0..topics {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = (rng % topics as u64) as usize;
                let seq = pubs[i].next_seq();
                if seq <= round {
                    pubs[i].send(&seq.to_le_bytes()).unwrap();
                }
            }
            for p in pubs.iter_mut() {
                while p.next_seq() <= round {
                    let seq = p.next_seq();
                    p.send(&seq.to_le_bytes()).unwrap();
                }
            }
            std::thread::sleep(Duration::from_micros(300));
        }
    });
    let got = rt.block_on(async move {
        let tasks: Vec<_> = subs
            .into_iter()
            .map(|mut sub| {
                tokio::spawn(async move {
                    let mut next = 0u64;
                    loop {
                        match sub.recv_async().await {
                            Ok(s) => {
                                assert_eq!(s.seq(), next);
                                assert_eq!(&*s, &next.to_le_bytes());
                                next += 1;
                            }
                            Err(RecvError::Disconnected) => return next,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("a task is stuck")
                .expect("task");
        }
        total
    });
    publisher.join().unwrap();
    assert_eq!(got, topics as u64 * PER);
    got
}

#[test]
fn a_hundred_tasks_on_a_hundred_topics_on_two_tokio_workers() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    tasks_on_topics(rt, "mt", 100);
}

#[test]
fn a_hundred_tasks_on_a_hundred_topics_on_a_current_thread_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tasks_on_topics(rt, "ct", 100);
}

#[tokio::test(flavor = "current_thread")]
async fn cancelling_a_pending_recv_then_receiving_again_loses_nothing() {
    let n = Names::new("cancel", "c");
    let mut p = Publisher::create(&n.topic, config(&n.prefix)).unwrap();
    let mut sub =
        Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix)).unwrap();
    for round in 0..20u64 {
        // Nothing yet: the receive is pending on the reactor, then dropped by the timeout.
        let timed_out = tokio::time::timeout(Duration::from_millis(2), sub.recv_async())
            .await
            .is_err();
        assert!(
            timed_out,
            "round {round}: got a message that was never sent"
        );
        p.send(&round.to_le_bytes()).unwrap();
        // A select that drops the receive half-way, racing a timer that fires first.
        tokio::select! {
            biased;
            _ = std::future::ready(()) => {}
            _ = sub.recv_async() => {}
        }
        let s = tokio::time::timeout(Duration::from_secs(10), sub.recv_async())
            .await
            .expect("the message was lost")
            .unwrap();
        assert_eq!(s.seq(), round);
    }
}

#[test]
fn a_block_publisher_awaits_room_without_blocking_its_thread() {
    let n = Names::new("aloan", "l");
    let mut p = Publisher::create(&n.topic, config(&n.prefix).slots(2)).unwrap();
    let mut sub =
        Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix)).unwrap();
    p.send(b"0").unwrap();
    p.send(b"1").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        for _ in 0..4 {
            drop(sub.recv_timeout(Duration::from_secs(10)).unwrap());
        }
        sub
    });
    rt.block_on(async {
        // The ring is full: the loan waits for the reader, while this thread still runs a
        // ticking task (it is not blocked).
        let ticker = tokio::spawn(async {
            let mut ticks = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                ticks += 1;
                if ticks == 10 {
                    return ticks;
                }
            }
        });
        let mut loan = tokio::time::timeout(Duration::from_secs(10), p.loan_async())
            .await
            .expect("loan_async stuck");
        loan.write_at(0, b"2");
        assert_eq!(loan.commit(1), 2);
        assert_eq!(ticker.await.unwrap(), 10);
        let seq = tokio::time::timeout(Duration::from_secs(10), p.send_async(b"3"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seq, 3);
    });
    let _sub = reader.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_recv_async_and_the_owned_stream_end_with_the_publisher() {
    let n = Names::new("astream", "s");
    let m = Names::new("astream", "t");
    let mut raw = Publisher::create(&n.topic, config(&n.prefix)).unwrap();
    let mut typed = TypedPublisher::<u64>::create(&m.topic, config(&m.prefix)).unwrap();
    let mut sub =
        Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix)).unwrap();
    let mut tsub =
        TypedSubscriber::<u64>::attach(&m.topic, SubscriberOptions::default().prefix(&m.prefix))
            .unwrap();
    let publisher = std::thread::spawn(move || {
        for i in 0..100u64 {
            raw.send(&i.to_le_bytes()).unwrap();
            typed.send(&(i * 3)).unwrap();
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let stream_task = tokio::spawn(async move {
        let mut stream = sub.stream();
        let mut n = 0u64;
        while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await
        {
            let s = item.unwrap();
            assert_eq!((s.seq, s.data), (n, n.to_le_bytes().to_vec()));
            n += 1;
        }
        n
    });
    let mut n = 0u64;
    loop {
        match tsub.recv_async().await {
            Ok(v) => {
                assert_eq!(*v, n * 3);
                n += 1;
            }
            Err(TypedRecvError::Recv(RecvError::Disconnected)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(n, 100);
    let streamed = tokio::time::timeout(Duration::from_secs(30), stream_task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(streamed, 100);
    publisher.join().unwrap();
}

/// One reactor thread per process, however many subscribers and publishers use it.
#[test]
fn the_process_has_exactly_one_reactor_thread() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let n = Names::new("onereactor", "r");
    let _p = Publisher::create(&n.topic, config(&n.prefix)).unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let mut s =
                    Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
                        .unwrap();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_millis(20), s.recv_async()).await;
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let reactors = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == "ringcast-reacto" || comm.trim() == "ringcast-reactor")
        .count();
    assert_eq!(reactors, 1);
}

/// A task awaiting a topic whose publisher process is SIGKILLed gets `Disconnected` within
/// the liveness bound (the reactor wakes a waiting task once per liveness slice, so the
/// handle's own check runs), after every message the publisher wrote.
#[test]
fn a_task_whose_publisher_process_is_killed_gets_disconnected_within_the_bound() {
    let n = Names::new("akill", "k");
    let publisher = spawn_talking(
        CHILD,
        "steady",
        &[
            ("PREFIX", n.prefix.clone()),
            ("TOPIC", n.topic.clone()),
            ("COUNT", "100000".to_owned()),
        ],
    );
    let opts = SubscriberOptions::default().prefix(&n.prefix);
    let mut sub = Subscriber::attach_wait(&n.topic, opts, Duration::from_secs(30)).unwrap();
    publisher.expect("READY", Duration::from_secs(30));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (next, noticed) = rt.block_on(async move {
        let mut next = 0u64;
        let mut killed_at = None;
        let mut publisher = Some(publisher);
        loop {
            let r = tokio::time::timeout(Duration::from_secs(10), sub.recv_async())
                .await
                .expect("recv_async stuck");
            match r {
                Ok(s) => {
                    assert_eq!(s.seq(), next);
                    next += 1;
                    if next == 20 {
                        // Kill it while this task is parked between two 5 ms messages.
                        publisher.take().unwrap().kill();
                        killed_at = Some(Instant::now());
                    }
                }
                Err(RecvError::Disconnected) => {
                    return (next, killed_at.expect("killed").elapsed());
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    assert!(next >= 20, "{next}");
    let bound = 2 * LIVENESS_SLICE + Duration::from_millis(900);
    assert!(
        noticed <= bound,
        "Disconnected after {noticed:?} (bound {bound:?})"
    );
}

/// With `RINGCAST_NO_FUTEX_WAITV=1` the reactor polls (no futex wait in the whole process)
/// and still delivers every message of ten topics to ten tasks.
#[test]
fn without_futex_waitv_the_reactor_polls_and_still_misses_nothing() {
    let child = spawn(
        CHILD,
        "polling",
        &[("RINGCAST_NO_FUTEX_WAITV", "1".to_owned())],
    );
    let (code, result) = finish(child, Duration::from_secs(60));
    assert_eq!(code, Some(0));
    let result = result.expect("RESULT");
    assert_eq!(field(&result, "received"), 400);
    assert_eq!(field(&result, "polling"), 1, "the reactor did not poll");
    assert_eq!(field(&result, "waits"), 0, "a futex wait in polling mode");
}

/// A waker that counts its wakes, for the poll-style API other languages' loops use.
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn wait_for_wake(w: &CountingWaker, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.0.load(std::sync::atomic::Ordering::SeqCst) == before {
        assert!(
            Instant::now() < deadline,
            "the reactor never woke the waker"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `poll_ready` and `poll_recv` (the API of the Python and C event-loop bindings): pending
/// arms the reactor, a publish wakes the waker, readiness does not consume, a pending poll
/// loses nothing, `disarm` withdraws, and a closed topic becomes ready and reports the end.
#[test]
fn poll_ready_and_poll_recv_arm_the_reactor_and_consume_only_when_ready() {
    use std::task::{Poll, Waker};
    let n = Names::new("poll", "p");
    let mut p = Publisher::create(&n.topic, config(&n.prefix)).unwrap();
    let mut sub =
        Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix)).unwrap();
    let counter = std::sync::Arc::new(CountingWaker(Default::default()));
    let waker = Waker::from(counter.clone());

    assert!(sub.poll_ready(&waker).is_pending());
    p.send(b"one").unwrap();
    wait_for_wake(&counter, 0);
    assert!(sub.poll_ready(&waker).is_ready());
    assert!(
        sub.poll_ready(&waker).is_ready(),
        "readiness consumed the message"
    );
    match sub.poll_recv(&waker) {
        Poll::Ready(Ok(s)) => assert_eq!((&*s, s.seq()), (&b"one"[..], 0)),
        other => panic!("{:?}", other.map(|r| r.map(|s| s.seq()))),
    }

    let woken = counter.0.load(std::sync::atomic::Ordering::SeqCst);
    assert!(sub.poll_recv(&waker).is_pending());
    p.send(b"two").unwrap();
    wait_for_wake(&counter, woken);
    match sub.poll_recv(&waker) {
        Poll::Ready(Ok(s)) => assert_eq!(&*s, b"two"),
        other => panic!("{:?}", other.map(|r| r.map(|s| s.seq()))),
    }

    // Disarmed: a publish does not wake (the reactor is given two liveness slices).
    assert!(sub.poll_recv(&waker).is_pending());
    sub.disarm();
    let woken = counter.0.load(std::sync::atomic::Ordering::SeqCst);
    p.send(b"three").unwrap();
    std::thread::sleep(2 * LIVENESS_SLICE);
    assert_eq!(counter.0.load(std::sync::atomic::Ordering::SeqCst), woken);
    assert!(
        matches!(sub.poll_recv(&waker), Poll::Ready(Ok(_))),
        "the message waited"
    );

    assert!(sub.poll_ready(&waker).is_pending());
    drop(p);
    wait_for_wake(&counter, woken);
    assert!(sub.poll_ready(&waker).is_ready());
    assert!(matches!(
        sub.poll_recv(&waker),
        Poll::Ready(Err(RecvError::Disconnected))
    ));
}
