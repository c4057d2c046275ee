//! Two nodes relay messages into each other's `Block` topic, each reading its input with
//! `drain` (or with batched release) and forwarding every message with a blocking send
//! from inside the loop. The slots of a run used to go back only when the run ended, so
//! each node waited for room the other held back and neither ran again: every blocking
//! wait now hands back the deferred releases of its process first
//! (`ringcast_core::handback`), and the relay completes.

mod common;

use std::time::Duration;

use common::{env, spawn_talking, Cleanup, ROLE};
use ringcast::{Overflow, Publisher, PublisherConfig, Subscriber, SubscriberOptions};

/// Slots per ring: small, so the rings fill.
const SLOTS: u64 = 4;
/// Messages each node injects (together more than one ring, fewer than two: the
/// per-message loop cannot deadlock with this many in flight, deferred runs could).
const INJECT: u64 = 3;
/// Forwards per message (even: a message ends at the node that did not inject it).
const HOPS: u64 = 400;

/// Messages a node receives in all: its own come back HOPS / 2 times, the peer's
/// HOPS / 2 times plus their last arrival.
fn expected_receipts() -> u64 {
    INJECT * (HOPS / 2) + INJECT * (HOPS / 2 + 1)
}

fn node(mode: &str) {
    let (prefix, mine, theirs): (String, String, String) =
        (env("PREFIX"), env("MINE"), env("THEIRS"));
    let config = PublisherConfig::default()
        .prefix(&prefix)
        .slots(SLOTS)
        .slot_size(16)
        .overflow(Overflow::Block);
    let mut out = Publisher::create(&mine, config).expect("create");
    let mut opts = SubscriberOptions::default()
        .prefix(&prefix)
        .start(ringcast::Start::Oldest);
    if mode == "batch" {
        opts = opts.release_batch(SLOTS);
    }
    let mut input =
        Subscriber::attach_wait(&theirs, opts, Duration::from_secs(30)).expect("attach");
    out.wait_for_subscribers(1, Duration::from_secs(30))
        .expect("peer");
    println!("READY");
    for i in 0..INJECT {
        out.send(&[HOPS.to_le_bytes(), i.to_le_bytes()].concat())
            .expect("inject");
    }
    let mut received = 0u64;
    let forward = |m: &[u8], out: &mut Publisher| {
        let hops = u64::from_le_bytes(m[..8].try_into().unwrap());
        if hops > 0 {
            let next = [(hops - 1).to_le_bytes(), m[8..16].try_into().unwrap()].concat();
            out.send(&next).expect("forward"); // waits for room
        }
    };
    while received < expected_receipts() {
        let m = input.recv().expect("recv");
        forward(&m, &mut out);
        drop(m);
        received += 1;
        if mode == "drain" {
            let d = input.drain(usize::MAX, |m| forward(&m, &mut out));
            received += d.delivered as u64;
            // The peer may finish, and close its topic, right after its last message:
            // the end is then reported by the same drain that delivered that message.
            assert!(
                d.stopped.is_none() || received == expected_receipts(),
                "drain stopped by {:?} after {received} messages",
                d.stopped
            );
        }
    }
    println!("RESULT received={received}");
}

#[test]
#[ignore = "child process of the relay tests"]
fn relay_node() {
    let role: String = env(ROLE);
    node(&role);
}

fn relay(mode: &str) {
    let prefix = common::prefix("relay");
    let (x, y) = (common::topic("relay-x"), common::topic("relay-y"));
    let _cleanup = [
        Cleanup(prefix.clone(), x.clone()),
        Cleanup(prefix.clone(), y.clone()),
    ];
    let a = spawn_talking(
        "relay_node",
        mode,
        &[
            ("PREFIX", prefix.clone()),
            ("MINE", x.clone()),
            ("THEIRS", y.clone()),
        ],
    );
    let b = spawn_talking(
        "relay_node",
        mode,
        &[("PREFIX", prefix.clone()), ("MINE", y), ("THEIRS", x)],
    );
    a.expect("READY", Duration::from_secs(30));
    b.expect("READY", Duration::from_secs(30));
    let (code_a, result_a) = a.finish(Duration::from_secs(60));
    let (code_b, result_b) = b.finish(Duration::from_secs(60));
    assert_eq!(
        (code_a, code_b),
        (Some(0), Some(0)),
        "the relay did not complete (a node killed after 60 s is a deadlock): {result_a:?} {result_b:?}"
    );
    let want = format!("received={}", expected_receipts());
    assert_eq!(result_a.as_deref(), Some(want.as_str()));
    assert_eq!(result_b.as_deref(), Some(want.as_str()));
}

#[test]
fn two_nodes_that_drain_and_relay_into_each_other_never_deadlock() {
    relay("drain");
}

#[test]
fn two_nodes_with_batched_release_relaying_into_each_other_never_deadlock() {
    relay("batch");
}

#[test]
fn two_nodes_that_receive_one_at_a_time_relay_as_before() {
    relay("recv");
}
