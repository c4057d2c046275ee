//! Typed messages (rkyv) and large payloads:
//! - several message shapes (plain structs, enums, nested structs, strings and vectors)
//!   round-trip between a publisher process and a subscriber process, under both policies;
//! - random and mutated bytes committed on a typed topic give `Invalid`, never a crash, and
//!   the stream goes on after them;
//! - attaching with another type or schema version is a `TypeMismatch` naming both;
//! - send errors (too large, out of scratch) publish nothing;
//! - multi-megabyte frames go through the raw loan between processes and are read in place
//!   under `Block`, and a multi-megabyte typed message is validated in place.

mod common;

use std::cell::RefCell;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use ringcast::*;
use rkyv::{Archive, Deserialize, Serialize};

const CHILD: &str = "child_process_entry";
const WAIT: Duration = Duration::from_secs(20);

// ---- message shapes -------------------------------------------------------------------

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(compare(PartialEq), derive(Debug))]
struct Plain {
    id: u64,
    x: f64,
    y: f32,
    flags: u16,
    ok: bool,
    wide: u128,
    letter: char,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(compare(PartialEq), derive(Debug))]
enum Command {
    Stop,
    Move { dx: i32, dy: i32 },
    Say(String),
    Batch(Vec<u16>),
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(compare(PartialEq), derive(Debug))]
struct Pose {
    x: f64,
    y: f64,
    theta: f32,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(compare(PartialEq), derive(Debug))]
struct Stamp {
    seq: u64,
    nanos: u64,
    frame: [u8; 8],
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(compare(PartialEq), derive(Debug))]
struct Nested {
    stamp: Stamp,
    pose: Pose,
    covariance: [f64; 9],
    parent: Option<Box<Pose>>,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(compare(PartialEq), derive(Debug))]
struct Record {
    name: String,
    tags: Vec<String>,
    samples: Vec<f32>,
    poses: Vec<Pose>,
    note: Option<String>,
    command: Command,
}

fn plain(i: u64) -> Plain {
    Plain {
        id: i,
        x: i as f64 * 0.5,
        y: -(i as f32),
        flags: (i * 7) as u16,
        ok: i.is_multiple_of(2),
        wide: (i as u128) << 100 | 0xdead_beef,
        letter: char::from_u32(0x3b1 + (i % 20) as u32).unwrap_or('?'),
    }
}

fn command(i: u64) -> Command {
    match i % 4 {
        0 => Command::Stop,
        1 => Command::Move {
            dx: i as i32,
            dy: -(i as i32) * 3,
        },
        2 => Command::Say(format!("message number {i} says hello, ünïcödé included")),
        _ => Command::Batch((0..(i % 50) as u16).collect()),
    }
}

fn pose(i: u64) -> Pose {
    Pose {
        x: i as f64,
        y: i as f64 * 2.0,
        theta: (i % 360) as f32,
    }
}

fn nested(i: u64) -> Nested {
    Nested {
        stamp: Stamp {
            seq: i,
            nanos: i * 1_000_003,
            frame: *b"base_lnk",
        },
        pose: pose(i),
        covariance: std::array::from_fn(|k| (k as u64 * i) as f64),
        parent: (!i.is_multiple_of(3)).then(|| Box::new(pose(i + 1))),
    }
}

fn record(i: u64) -> Record {
    Record {
        name: format!("record-{i}"),
        tags: (0..i % 6).map(|t| format!("tag{t}-{i}")).collect(),
        samples: (0..i % 40).map(|k| k as f32 / 3.0).collect(),
        poses: (0..i % 5).map(pose).collect(),
        note: (i % 2 == 1).then(|| "x".repeat((i % 30) as usize)),
        command: command(i),
    }
}

// ---- child processes ------------------------------------------------------------------

/// Entry point of the child processes (runs only when re-executed with a role).
#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn child_process_entry() {
    match std::env::var(ROLE).as_deref() {
        Ok("typed_pub") => typed_publisher_child(),
        Ok("typed_sub") => typed_subscriber_child(),
        Ok("frame_pub") => frame_publisher_child(),
        Ok("frame_sub") => frame_subscriber_child(),
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

fn typed_config() -> PublisherConfig {
    let prefix: String = env("PREFIX");
    PublisherConfig::default()
        .prefix(prefix)
        .slots(env("SLOTS"))
        .slot_size(1024)
        .overflow(overflow_of(&env::<String>("OVERFLOW")))
}

fn typed_publisher_child() {
    let topic: String = env("TOPIC");
    let count: u64 = env("COUNT");
    let mut a = TypedPublisher::<Plain>::create(&format!("{topic}.a"), typed_config()).unwrap();
    let mut b = TypedPublisher::<Command>::create(&format!("{topic}.b"), typed_config()).unwrap();
    let mut c = TypedPublisher::<Nested>::create(&format!("{topic}.c"), typed_config()).unwrap();
    let mut d = TypedPublisher::<Record>::create(&format!("{topic}.d"), typed_config()).unwrap();
    a.wait_for_subscribers(1, WAIT).unwrap();
    b.wait_for_subscribers(1, WAIT).unwrap();
    c.wait_for_subscribers(1, WAIT).unwrap();
    d.wait_for_subscribers(1, WAIT).unwrap();
    // Interleaved, in the order the subscriber reads them (so `Block` never deadlocks).
    for i in 0..count {
        assert_eq!(a.send(&plain(i)).unwrap(), i);
        assert_eq!(b.send(&command(i)).unwrap(), i);
        assert_eq!(c.send(&nested(i)).unwrap(), i);
        assert_eq!(d.send(&record(i)).unwrap(), i);
    }
    println!("RESULT published={count}");
}

/// Per topic: next expected sequence, received, lost, finished.
#[derive(Default)]
struct Progress {
    expected: u64,
    received: u64,
    lost: u64,
    done: bool,
}

/// Receives one message (or one lag report, or the end) from `sub` and checks it against
/// `make(seq)`, both on the archive in place and deserialized.
fn step<T>(sub: &mut TypedSubscriber<T>, p: &mut Progress, count: u64, make: fn(u64) -> T)
where
    T: Archive + PartialEq + std::fmt::Debug,
    rkyv::Archived<T>: for<'a> rkyv::bytecheck::CheckBytes<SlotValidator<'a>>
        + PartialEq<T>
        + Deserialize<T, rkyv::api::low::LowDeserializer<rkyv::rancor::Error>>,
{
    if p.done {
        return;
    }
    let fail = |msg: String| -> ! {
        eprintln!("typed subscriber {}: {msg}", std::process::id());
        std::process::exit(1)
    };
    match sub.recv_timeout(WAIT) {
        Ok(sample) => {
            if sample.seq() != p.expected {
                fail(format!("got seq {} expecting {}", sample.seq(), p.expected));
            }
            let want = make(sample.seq());
            if *sample != want {
                fail(format!(
                    "seq {}: archive differs from {want:?}",
                    sample.seq()
                ));
            }
            match sample.deserialize() {
                Ok(v) if v == want => {}
                other => fail(format!("seq {}: deserialized {other:?}", sample.seq())),
            }
            p.expected += 1;
            p.received += 1;
        }
        Err(TypedRecvError::Recv(RecvTimeoutError::Lagged(n))) => {
            p.expected += n;
            p.lost += n;
        }
        Err(TypedRecvError::Recv(RecvTimeoutError::Disconnected)) => p.done = true,
        Err(e) => fail(format!("receive failed: {e}")),
    }
    if p.expected >= count {
        p.done = true;
    }
}

fn typed_subscriber_child() {
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    let count: u64 = env("COUNT");
    let opts = SubscriberOptions::default().prefix(&prefix);
    let name = |s: &str| format!("{topic}.{s}");
    let mut a = TypedSubscriber::<Plain>::attach_wait(&name("a"), opts.clone(), WAIT).unwrap();
    let mut b = TypedSubscriber::<Command>::attach_wait(&name("b"), opts.clone(), WAIT).unwrap();
    let mut c = TypedSubscriber::<Nested>::attach_wait(&name("c"), opts.clone(), WAIT).unwrap();
    let mut d = TypedSubscriber::<Record>::attach_wait(&name("d"), opts, WAIT).unwrap();
    let mut p: [Progress; 4] = Default::default();
    while p.iter().any(|p| !p.done) {
        step(&mut a, &mut p[0], count, plain);
        step(&mut b, &mut p[1], count, command);
        step(&mut c, &mut p[2], count, nested);
        step(&mut d, &mut p[3], count, record);
    }
    for (i, p) in p.iter().enumerate() {
        if p.expected != count {
            eprintln!("topic {i}: ended at {}, published {count}", p.expected);
            std::process::exit(1);
        }
    }
    let received: u64 = p.iter().map(|p| p.received).sum();
    let lost: u64 = p.iter().map(|p| p.lost).sum();
    println!("RESULT received={received} lost={lost}");
}

/// Runs the typed publisher and subscriber processes; returns (received, lost) summed
/// over the four topics.
fn run_typed(overflow: &str, slots: u64, count: u64) -> (u64, u64) {
    let (prefix, topic) = (prefix("typed"), topic("ty"));
    let _cleanup: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .map(|s| Cleanup(prefix.clone(), format!("{topic}.{s}")))
        .collect();
    let env = vec![
        ("PREFIX", prefix.clone()),
        ("TOPIC", topic.clone()),
        ("OVERFLOW", overflow.to_owned()),
        ("SLOTS", slots.to_string()),
        ("COUNT", count.to_string()),
    ];
    let sub = spawn(CHILD, "typed_sub", &env);
    let publisher = spawn(CHILD, "typed_pub", &env);
    let limit = Duration::from_secs(60);
    let (code, result) = finish(publisher, limit);
    assert_eq!(code, Some(0), "publisher failed: {result:?}");
    let (code, result) = finish(sub, limit);
    assert_eq!(code, Some(0), "subscriber failed: {result:?}");
    let result = result.expect("subscriber printed its RESULT");
    (field(&result, "received"), field(&result, "lost"))
}

#[test]
fn message_shapes_round_trip_across_processes_in_place_under_block() {
    let count = 400;
    assert_eq!(run_typed("block", 8, count), (4 * count, 0));
}

#[test]
fn message_shapes_round_trip_across_processes_from_verified_copies_under_overwrite() {
    let count = 400;
    let (received, lost) = run_typed("overwrite", 64, count);
    assert_eq!(received + lost, 4 * count);
    assert!(received > 0);
}

// ---- corrupt payloads -----------------------------------------------------------------

/// What one fuzz case commits into a slot of a `Record` topic.
#[derive(Clone, Debug)]
enum Payload {
    /// Random bytes of a random length.
    Random(Vec<u8>),
    /// A valid archive of `record(i)` with some bytes overwritten.
    Mutated {
        i: u64,
        edits: Vec<(usize, u8)>,
        truncate: usize,
    },
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600).prop_map(Payload::Random),
        (
            0u64..64,
            prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            0usize..4,
        )
            .prop_map(|(i, edits, truncate)| Payload::Mutated { i, edits, truncate }),
    ]
}

/// The bytes of `p`: what a buggy or hostile publisher might commit.
fn payload_bytes(p: &Payload) -> Vec<u8> {
    match p {
        Payload::Random(bytes) => bytes.clone(),
        Payload::Mutated { i, edits, truncate } => {
            let mut bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&record(*i))
                .expect("serialize")
                .to_vec();
            for &(pos, val) in edits {
                let n = bytes.len();
                bytes[pos % n] ^= val | 1;
            }
            // Dropping leading bytes moves the root's view of everything before it.
            bytes.drain(..(*truncate * 4).min(bytes.len()));
            bytes
        }
    }
}

/// Commits `bytes` as one message with a valid stamp through the raw loan.
fn commit_raw(publisher: &mut Publisher, bytes: &[u8]) -> u64 {
    let mut loan = publisher.loan();
    loan[..bytes.len()].copy_from_slice(bytes);
    loan.commit(bytes.len())
}

fn fuzz_typed_topic(overflow: Overflow) {
    let (prefix, topic) = (prefix("fuzz"), topic("fz"));
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    // A raw publisher that claims to carry `Record`: the typed subscriber attaches, and
    // everything that follows depends on validation alone.
    let publisher = Publisher::create(
        &topic,
        PublisherConfig::default()
            .prefix(&prefix)
            .slots(4)
            .slot_size(1024)
            .overflow(overflow)
            .type_info(type_info_of::<Record>(0)),
    )
    .expect("create");
    let sub =
        TypedSubscriber::<Record>::attach(&topic, SubscriberOptions::default().prefix(&prefix))
            .expect("attach");
    let state = RefCell::new((publisher, sub, 0u64, 0u64));
    let mut runner = TestRunner::new(Config {
        cases: 600,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&payload(), |p| {
            let mut guard = state.borrow_mut();
            let (publisher, sub, valid, invalid) = &mut *guard;
            let bytes = payload_bytes(&p);
            let seq = commit_raw(publisher, &bytes);
            match sub.try_recv() {
                Ok(sample) => {
                    prop_assert_eq!(sample.seq(), seq);
                    // Whatever passed validation must be usable all the way down.
                    let value = sample.deserialize();
                    prop_assert!(value.is_ok(), "validated but not deserializable");
                    let _ = format!("{:?}", &*sample);
                    *valid += 1;
                }
                Err(TypedRecvError::Invalid { seq: bad, .. }) => {
                    prop_assert_eq!(bad, seq);
                    *invalid += 1;
                }
                Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{overflow:?}: {e}"));
    let (mut publisher, mut sub, valid, invalid) = state.into_inner();
    assert!(invalid > 100, "{overflow:?}: only {invalid} invalid of 600");
    assert!(valid < 600, "{overflow:?}: {valid} valid");
    // After all that garbage, a good message is received as usual.
    let good = rkyv::to_bytes::<rkyv::rancor::Error>(&record(7)).expect("serialize");
    let seq = commit_raw(&mut publisher, &good);
    let sample = sub.try_recv().expect("the stream goes on");
    assert_eq!(sample.seq(), seq);
    assert_eq!(*sample, record(7));
}

#[test]
fn corrupt_typed_payloads_give_validation_errors_never_a_crash_under_block() {
    fuzz_typed_topic(Overflow::Block);
}

#[test]
fn corrupt_typed_payloads_give_validation_errors_never_a_crash_under_overwrite() {
    fuzz_typed_topic(Overflow::Overwrite);
}

#[test]
fn unchecked_mode_still_refuses_a_message_too_short_for_the_root() {
    let (prefix, topic) = (prefix("unck"), topic("un"));
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let cfg = PublisherConfig::default()
        .prefix(&prefix)
        .overflow(Overflow::Block);
    let mut raw = Publisher::create(&topic, cfg.type_info(type_info_of::<Plain>(0))).unwrap();
    let mut sub =
        TypedSubscriber::<Plain>::attach(&topic, SubscriberOptions::default().prefix(&prefix))
            .unwrap();
    // SAFETY: the only messages on this topic are the two below: a short one that the
    // root check refuses before any access, and a valid archive of `Plain`.
    unsafe { sub.skip_validation() };
    assert!(!sub.validates());
    commit_raw(&mut raw, &[1, 2, 3]);
    assert!(matches!(
        sub.try_recv(),
        Err(TypedRecvError::Invalid { seq: 0, .. })
    ));
    let good = rkyv::to_bytes::<rkyv::rancor::Error>(&plain(3)).unwrap();
    commit_raw(&mut raw, &good);
    assert_eq!(*sub.try_recv().unwrap(), plain(3));
    sub.validate_again();
    assert!(sub.validates());
}

// ---- type fingerprints ----------------------------------------------------------------

#[test]
fn attaching_with_another_type_or_schema_version_is_a_type_mismatch_naming_both() {
    let (prefix, topic) = (prefix("mism"), topic("mm"));
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let opts = || SubscriberOptions::default().prefix(&prefix);
    let _publisher = TypedPublisher::<Plain>::create_versioned(
        &topic,
        PublisherConfig::default().prefix(&prefix),
        3,
    )
    .expect("create");

    let mismatch = |r: Result<(), AttachError>| match r {
        Err(e @ AttachError::TypeMismatch { .. }) => e.to_string(),
        other => panic!("expected TypeMismatch, got {other:?}"),
    };
    let other_type =
        mismatch(TypedSubscriber::<Pose>::attach_versioned(&topic, opts(), 3).map(drop));
    assert!(
        other_type.contains("Plain") && other_type.contains("Pose"),
        "{other_type}"
    );
    let other_version =
        mismatch(TypedSubscriber::<Plain>::attach_versioned(&topic, opts(), 2).map(drop));
    assert!(
        other_version.contains("schema v3") && other_version.contains("schema v2"),
        "{other_version}"
    );
    mismatch(TypedSubscriber::<Plain>::attach(&topic, opts()).map(drop));
    let sub = TypedSubscriber::<Plain>::attach_versioned(&topic, opts(), 3).expect("same type");
    assert!(sub.validates());
    // A raw subscriber asks for no type and may read a typed topic's bytes.
    Subscriber::attach(&topic, opts()).expect("raw subscriber");

    // And a typed subscriber refuses a raw topic.
    let raw_topic = topic.clone() + "-raw";
    let _cleanup_raw = Cleanup(prefix.clone(), raw_topic.clone());
    let _raw = Publisher::create(&raw_topic, PublisherConfig::default().prefix(&prefix)).unwrap();
    let on_raw = mismatch(TypedSubscriber::<Plain>::attach(&raw_topic, opts()).map(drop));
    assert!(on_raw.contains("raw bytes"), "{on_raw}");
}

#[test]
fn publisher_and_subscriber_fingerprints_agree() {
    let publisher_side = ringcast::type_info_of::<Record>(9);
    assert_eq!(
        publisher_side,
        ringcast_subscriber::type_info_of::<Record>(9)
    );
    assert_eq!(
        publisher_side.size as usize,
        std::mem::size_of::<ArchivedRecord>()
    );
    assert_ne!(publisher_side, ringcast::type_info_of::<Nested>(9));
}

// ---- send errors ----------------------------------------------------------------------

#[test]
fn send_errors_publish_nothing_and_the_next_send_takes_the_same_sequence() {
    let (prefix, topic) = (prefix("serr"), topic("se"));
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let mut publisher = TypedPublisher::<Record>::create(
        &topic,
        PublisherConfig::default().prefix(&prefix).slot_size(1024),
    )
    .expect("create");
    let mut sub =
        TypedSubscriber::<Record>::attach(&topic, SubscriberOptions::default().prefix(&prefix))
            .expect("attach");
    let mut huge = record(1);
    huge.name = "n".repeat(2000);
    assert!(matches!(
        publisher.send(&huge),
        Err(TypedSendError::TooLarge { capacity: 1024 })
    ));
    // Forty strings need more scratch than none at all.
    let mut many = record(2);
    many.tags = (0..40).map(|t| t.to_string()).collect();
    let mut publisher = publisher.with_scratch_space(0);
    assert!(matches!(
        publisher.send(&many),
        Err(TypedSendError::Serialize(_))
    ));
    let mut publisher = publisher.with_scratch_space(4096);
    assert_eq!(publisher.send(&many).expect("fits now"), 0);
    let got = sub.try_recv().expect("received");
    assert_eq!(got.seq(), 0);
    assert_eq!(*got, many);
}

// ---- large payloads -------------------------------------------------------------------

const FRAME: usize = 8 << 20;

fn frame_publisher_child() {
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    let count: u64 = env("COUNT");
    let mut publisher = Publisher::create(
        &topic,
        PublisherConfig::default()
            .prefix(prefix)
            .slots(4)
            .slot_size(FRAME as u64)
            .overflow(Overflow::Block),
    )
    .expect("create");
    publisher.wait_for_subscribers(1, WAIT).expect("subscriber");
    for seq in 0..count {
        // The frame is produced straight into shared memory: no buffer, no copy.
        let mut loan = publisher.loan();
        fill(seq, &mut loan[..FRAME]);
        loan.commit(FRAME);
    }
    println!("RESULT published={count}");
}

fn frame_subscriber_child() {
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    let mut sub =
        Subscriber::attach_wait(&topic, SubscriberOptions::default().prefix(&prefix), WAIT)
            .expect("attach");
    let mut want = vec![0u8; FRAME];
    let mut received = 0u64;
    loop {
        match sub.recv_timeout(WAIT) {
            Ok(frame) => {
                fill(frame.seq(), &mut want);
                // In place: the slice points into the shared ring, aligned for rkyv.
                let in_place = (frame.as_ptr() as usize).is_multiple_of(16);
                if frame.len() != FRAME || *frame != want[..] || !in_place {
                    eprintln!("frame {} is wrong", frame.seq());
                    std::process::exit(1);
                }
                received += 1;
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(e) => {
                eprintln!("receive failed: {e}");
                std::process::exit(1);
            }
        }
    }
    println!("RESULT received={received}");
}

#[test]
fn multi_megabyte_frames_are_written_through_the_loan_and_read_in_place_under_block() {
    let (prefix, topic) = (prefix("frame"), topic("fr"));
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let count = 24u64;
    let env = vec![
        ("PREFIX", prefix.clone()),
        ("TOPIC", topic.clone()),
        ("COUNT", count.to_string()),
    ];
    let sub = spawn(CHILD, "frame_sub", &env);
    let publisher = spawn(CHILD, "frame_pub", &env);
    let limit = Duration::from_secs(60);
    let (code, result) = finish(publisher, limit);
    assert_eq!(code, Some(0), "publisher failed: {result:?}");
    let (code, result) = finish(sub, limit);
    assert_eq!(code, Some(0), "subscriber failed");
    assert_eq!(field(&result.expect("RESULT"), "received"), count);
}

#[derive(Archive, Serialize, Deserialize, Debug, PartialEq)]
#[rkyv(compare(PartialEq), derive(Debug))]
struct Blob {
    id: u64,
    data: Vec<u8>,
}

#[test]
fn a_multi_megabyte_typed_message_is_validated_and_read_in_place() {
    let (prefix, topic) = (prefix("blob"), topic("bl"));
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let mut publisher = TypedPublisher::<Blob>::create(
        &topic,
        PublisherConfig::default()
            .prefix(&prefix)
            .slots(2)
            .slot_size(3 << 20)
            .overflow(Overflow::Block),
    )
    .expect("create");
    let mut sub =
        TypedSubscriber::<Blob>::attach(&topic, SubscriberOptions::default().prefix(&prefix))
            .expect("attach");
    for id in 0..4u64 {
        let blob = Blob {
            id,
            data: (0..(2 << 20) + id as usize)
                .map(|k| (k as u64 ^ id) as u8)
                .collect(),
        };
        publisher.send(&blob).expect("send");
        let got = sub.try_recv().expect("receive");
        assert_eq!(got.id, id);
        assert!(*got == blob);
    }
}
