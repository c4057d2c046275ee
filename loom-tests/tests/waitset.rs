//! loom models of the wait set's multi-topic sleep (`waitset::SleepList::sleep`, the code
//! that ships): one waiter on two topics, a publisher on each, must never miss a publish
//! on either, nor a close racing its sleep. The modelled futex's `wait_any` checks every
//! word and sleeps under one bucket lock, as the kernel's `futex_waitv` does. A lost
//! wake-up leaves the waiter parked for ever, which loom reports as a deadlock; the
//! negative control drops the re-check and must be caught that way.
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use ringcast_core::memory::SegmentMemory;
use ringcast_core::ring::{Poll, Reader, Start};
use ringcast_core::waitset::{Bell, SleepList};
use ringcast_core::Overflow;
use ringcast_loom_tests::model::*;

/// Two topics with one reader each.
fn two_topics(overflow: Overflow) -> ([Arc<SegmentMemory>; 2], [Reader; 2]) {
    let mems = [
        Arc::new(SegmentMemory::model(2, overflow, 1)),
        Arc::new(SegmentMemory::model(2, overflow, 1)),
    ];
    let readers = [
        attach(&mems[0], 0, Start::Latest),
        attach(&mems[1], 0, Start::Latest),
    ];
    (mems, readers)
}

/// The waiter: receives in place on both topics until each has delivered `want` messages
/// (or, for `want = None`, has closed), sleeping on the topics it still waits for whenever
/// none has news (a finished topic leaves the set, as a user removes a member that
/// reported the end). `recheck` decides whether the sleep re-checks (the negative control
/// says no).
fn wait_on_both(
    readers: &mut [Reader; 2],
    mems: &[Arc<SegmentMemory>; 2],
    want: [Option<u64>; 2],
    recheck: bool,
) {
    let mut got = [0u64; 2];
    let mut closed = [false; 2];
    loop {
        let mut progress = false;
        for i in 0..2 {
            if closed[i] || want[i].is_some_and(|w| got[i] == w) {
                continue;
            }
            match readers[i].poll() {
                Poll::Ready { .. } => {
                    assert!(matches!(
                        recv_in_place(&mut readers[i], &mems[i]),
                        Got::Message(s) if s == got[i]
                    ));
                    got[i] += 1;
                    progress = true;
                }
                Poll::Closed => {
                    assert!(want[i].is_none(), "topic {i} closed early");
                    closed[i] = true;
                    progress = true;
                }
                Poll::Empty => {}
                p => panic!("unexpected {p:?}"),
            }
        }
        let done = (0..2).all(|i| match want[i] {
            Some(w) => got[i] == w,
            None => closed[i],
        });
        if done {
            return;
        }
        if !progress {
            let waiting: Vec<&Reader> = (0..2)
                .filter(|&i| !closed[i] && want[i].is_none_or(|w| got[i] < w))
                .map(|i| &readers[i])
                .collect();
            let mut list = SleepList::new();
            for r in &waiting {
                list.push(r.sleep_target());
            }
            // SAFETY: the readers (the owners of the targets' entries) outlive the call.
            unsafe { list.sleep(None, || recheck && waiting.iter().any(|r| r.has_news())) };
        }
    }
}

/// A publisher thread per topic, each publishing one message.
fn one_publish_on_each(
    mems: &[Arc<SegmentMemory>; 2],
) -> Vec<thread::JoinHandle<ringcast_core::ring::Writer>> {
    mems.iter()
        .map(|mem| {
            let mem = mem.clone();
            let mut w = writer(&mem);
            thread::spawn(move || {
                publish(&mut w, &mem);
                w
            })
        })
        .collect()
}

/// A publish on either topic always wakes a waiter that decided to sleep on both.
#[test]
fn a_waiter_on_two_topics_never_misses_a_publish_on_either() {
    check_with_bound(2, || {
        let (mems, mut readers) = two_topics(Overflow::Block);
        let publishers = one_publish_on_each(&mems);
        wait_on_both(&mut readers, &mems, [Some(1), Some(1)], true);
        for p in publishers {
            p.join().unwrap();
        }
    });
}

/// One topic closes while the waiter sleeps, the other publishes: the waiter sees the
/// close (after draining) and the message, never a hang.
#[test]
fn a_close_racing_the_wait_is_seen_and_the_other_topic_still_delivers() {
    check_with_bound(2, || {
        let (mems, mut readers) = two_topics(Overflow::Block);
        let closer = {
            let mem = mems[0].clone();
            let w = writer(&mem);
            thread::spawn(move || w.close())
        };
        let publisher = {
            let mem = mems[1].clone();
            let mut w = writer(&mem);
            thread::spawn(move || {
                publish(&mut w, &mem);
                w
            })
        };
        wait_on_both(&mut readers, &mems, [None, Some(1)], true);
        closer.join().unwrap();
        publisher.join().unwrap();
    });
}

/// Negative control: the same model with the sleep's re-check dropped must be caught (a
/// publish between the waiter's look and its announcement is then lost: loom reports the
/// parked waiter as a deadlock). loom aborts the process when a deadlocked model unwinds,
/// so the mutant model runs in a child process of this test binary.
#[test]
fn negative_control_a_sleep_without_its_recheck_loses_a_wake_up() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mutant_sleep_without_recheck",
            "--ignored",
            "--nocapture",
        ])
        .output()
        .expect("run the mutant model");
    let text = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "the mutant model passed: the model cannot see a dropped re-check"
    );
    assert!(
        text.contains("deadlock"),
        "the mutant failed, but not with a lost wake-up:\n{text}"
    );
}

/// The mutant model the negative control runs (fails by design).
#[test]
#[ignore = "run by negative_control_a_sleep_without_its_recheck_loses_a_wake_up"]
fn mutant_sleep_without_recheck() {
    check_with_bound(2, || {
        let (mems, mut readers) = two_topics(Overflow::Block);
        let publishers = one_publish_on_each(&mems);
        wait_on_both(&mut readers, &mems, [Some(1), Some(1)], false);
        for p in publishers {
            p.join().unwrap();
        }
    });
}

/// A wait set's notifier (a `Bell`): a ring from another thread always wakes the waiter,
/// and a ring the waiter already saw does not wake it twice.
#[test]
fn a_ring_of_the_notifier_always_wakes_the_waiter() {
    loom::model(|| {
        let bell = Arc::new(Bell::new());
        let handled = bell.count();
        let ringer = {
            let bell = bell.clone();
            thread::spawn(move || bell.ring())
        };
        let mut list = SleepList::new();
        list.set_bell(bell.target());
        while bell.count() == handled {
            // SAFETY: the list has no topic targets; the bell is kept alive by the list.
            unsafe { list.sleep(None, || bell.count() != handled) };
        }
        ringer.join().unwrap();
    });
}
