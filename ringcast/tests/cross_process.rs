//! Cross-process tests: a publisher process and several subscriber processes move
//! self-checking messages (0 bytes up to the slot size) through the ring under both
//! policies; every message must arrive once, in order, byte-exact, or be counted lost
//! (`Overwrite` only). Also the stress shapes: a flat-out `Overwrite` publisher against
//! slow verifiers (no torn message may ever be handed out), and `Block` subscribers that
//! hold samples in place and re-verify them after a pause (no slot may be overwritten
//! while held).

mod common;

use std::time::Duration;

use common::*;
use ringcast::*;

const CHILD: &str = "child_process_entry";

/// Entry point of the child processes (runs only when re-executed with a role).
#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn child_process_entry() {
    match std::env::var(ROLE).as_deref() {
        Ok("pub") => publisher_child(),
        Ok("sub") => subscriber_child(),
        _ => {}
    }
}

fn overflow_of(s: &str) -> Overflow {
    if s == "block" {
        Overflow::Block
    } else {
        Overflow::Overwrite
    }
}

fn publisher_child() {
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    let overflow = overflow_of(&env::<String>("OVERFLOW"));
    let (slots, size, count, subs): (u64, usize, u64, usize) =
        (env("SLOTS"), env("SIZE"), env("COUNT"), env("SUBS"));
    let mut publisher = Publisher::create(
        &topic,
        PublisherConfig::default()
            .prefix(&prefix)
            .slots(slots)
            .slot_size(size as u64)
            .overflow(overflow),
    )
    .expect("create topic");
    let cap = publisher.capacity();
    publisher
        .wait_for_subscribers(subs, Duration::from_secs(20))
        .expect("subscribers attach");
    for seq in 0..count {
        let len = len_for(seq, cap.min(size));
        let mut loan = publisher.loan();
        assert_eq!(loan.seq(), seq);
        fill(seq, &mut loan[..len]);
        loan.commit(len);
    }
    println!("RESULT published={count}");
}

fn subscriber_child() {
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    let (count, size): (u64, usize) = (env("COUNT"), env("SIZE"));
    let slow_every: u64 = env("SLOW_EVERY");
    let hold_us: u64 = env("HOLD_US");
    let mut sub = Subscriber::attach_wait(
        &topic,
        SubscriberOptions::default().prefix(&prefix),
        Duration::from_secs(20),
    )
    .expect("attach");
    let (mut expected, mut received, mut lost) = (0u64, 0u64, 0u64);
    let fail = |msg: String| -> ! {
        eprintln!("subscriber {}: {msg}", std::process::id());
        std::process::exit(1)
    };
    loop {
        match sub.recv_timeout(Duration::from_secs(30)) {
            Ok(sample) => {
                if sample.seq() != expected {
                    fail(format!("got seq {} expecting {expected}", sample.seq()));
                }
                check(sample.seq(), size, &sample).unwrap_or_else(|e| fail(e));
                if hold_us > 0 && sample.seq() % 16 == 0 {
                    // Hold the in-place sample; the publisher must not touch it meanwhile.
                    std::thread::sleep(Duration::from_micros(hold_us));
                    check(sample.seq(), size, &sample)
                        .unwrap_or_else(|e| fail(format!("changed while held: {e}")));
                }
                expected += 1;
                received += 1;
                if slow_every > 0 && received % slow_every == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Err(RecvTimeoutError::Lagged(n)) => {
                expected += n;
                lost += n;
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(e) => fail(format!("receive failed: {e}")),
        }
    }
    if expected != count {
        fail(format!("ended at {expected}, published {count}"));
    }
    println!("RESULT received={received} lost={lost}");
}

struct Run {
    overflow: &'static str,
    slots: u64,
    size: usize,
    count: u64,
    /// Per subscriber: (sleep 1 ms every N messages (0 = never), hold µs (0 = never)).
    subs: Vec<(u64, u64)>,
}

/// Runs one publisher and the subscribers, returns each subscriber's (received, lost).
fn run(r: Run) -> Vec<(u64, u64)> {
    let (prefix, topic) = (prefix("xp"), topic("xp"));
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let base = vec![
        ("PREFIX", prefix.clone()),
        ("TOPIC", topic.clone()),
        ("OVERFLOW", r.overflow.to_owned()),
        ("SLOTS", r.slots.to_string()),
        ("SIZE", r.size.to_string()),
        ("COUNT", r.count.to_string()),
        ("SUBS", r.subs.len().to_string()),
    ];
    let subs: Vec<_> = r
        .subs
        .iter()
        .map(|(slow, hold)| {
            let mut env = base.clone();
            env.push(("SLOW_EVERY", slow.to_string()));
            env.push(("HOLD_US", hold.to_string()));
            spawn(CHILD, "sub", &env)
        })
        .collect();
    let publisher = spawn(CHILD, "pub", &base);
    let limit = Duration::from_secs(120);
    let (code, result) = finish(publisher, limit);
    assert_eq!(code, Some(0), "publisher failed: {result:?}");
    subs.into_iter()
        .map(|child| {
            let (code, result) = finish(child, limit);
            assert_eq!(code, Some(0), "a subscriber failed");
            let result = result.expect("subscriber printed its RESULT");
            (field(&result, "received"), field(&result, "lost"))
        })
        .collect()
}

#[test]
fn block_delivers_every_message_to_every_subscriber_in_order() {
    let count = 5_000;
    let got = run(Run {
        overflow: "block",
        slots: 8,
        size: 200,
        count,
        subs: vec![(0, 0), (0, 0), (50, 0)],
    });
    for (received, lost) in got {
        assert_eq!((received, lost), (count, 0));
    }
}

#[test]
fn overwrite_delivers_in_order_and_counts_every_loss_exactly() {
    let count = 5_000;
    let got = run(Run {
        overflow: "overwrite",
        slots: 16,
        size: 300,
        count,
        subs: vec![(0, 0), (0, 0), (10, 0)],
    });
    for &(received, lost) in &got {
        assert_eq!(received + lost, count);
    }
    // Sleeping 1 ms every 10 messages against a flat-out publisher: it must lap.
    assert!(got[2].1 > 0, "slow subscriber was never lapped: {got:?}");
}

#[test]
fn overwrite_never_hands_out_a_torn_message_under_stress() {
    let count = 300_000;
    let got = run(Run {
        overflow: "overwrite",
        slots: 4,
        size: 4096,
        count,
        subs: vec![(0, 0), (1000, 0)],
    });
    for (received, lost) in got {
        assert_eq!(received + lost, count);
    }
}

#[test]
fn block_never_overwrites_a_slot_while_a_subscriber_holds_it() {
    let count = 3_000;
    let got = run(Run {
        overflow: "block",
        slots: 4,
        size: 512,
        count,
        subs: vec![(0, 300), (0, 0)],
    });
    for (received, lost) in got {
        assert_eq!((received, lost), (count, 0));
    }
}
