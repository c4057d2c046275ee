//! Flow control across the bridge: a `Block` topic whose importing subscriber has stopped
//! reading holds back only its own source (by credits), never the other topics on the
//! same Zenoh link; when it reads again, every message arrives once, in order.

mod harness;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::*;
use ringcast::*;

/// Messages on the stuck topic: far more than its rings, the importer's backlog and the
/// link's buffers hold (an importer that waited in Zenoh's callback, as before credits,
/// stalled the whole link once TCP's buffers were full: then the free topic stopped).
const STUCK: u64 = 300_000;
/// Messages on the free topic while the other is stuck.
const FREE: u64 = 20_000;

/// Sends `bytes`, failing the test (never hanging it) if the topic stays full for
/// [`WAIT`]: a held link must show as a failure, not as a CI run that never ends.
fn send_within(p: &mut Publisher, bytes: &[u8], what: &str) {
    let mut loan = p
        .loan_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{what}: no room for {WAIT:?}"));
    loan.write_at(0, bytes);
    loan.commit(bytes.len());
}

fn block_source(pair: &Pair, topic: &str) -> Publisher {
    let config = PublisherConfig::default()
        .prefix(pair.a.as_str())
        .overflow(Overflow::Block)
        .slots(16)
        .slot_size(64);
    Publisher::create(topic, config).expect("source topic")
}

#[test]
fn a_stuck_block_importer_holds_only_its_own_topic() {
    let mut pair = Pair::new("flow");
    pair.topics(&["stuck", "free"]);
    let mut stuck = block_source(&pair, "stuck");
    let mut free = block_source(&pair, "free");
    let _a = pair.bridge_a(&["--export", "stuck", "--export", "free"]);
    let _b = pair.bridge_b(&["--import", "stuck", "--import", "free"]);
    // A subscriber of the imported "stuck" that does not read yet: its ring fills, then
    // the importer's backlog, then the exporter stops reading the source, whose sender
    // then waits.
    let mut stuck_sub = attach(&pair.b, "stuck");
    let mut free_sub = attach(&pair.b, "free");
    stuck
        .wait_for_subscribers(1, WAIT)
        .expect("A's bridge attaches");
    free.wait_for_subscribers(1, WAIT)
        .expect("A's bridge attaches");
    let sent = Arc::new(AtomicBool::new(false));
    let done = sent.clone();
    let sender = std::thread::spawn(move || {
        for i in 0..STUCK {
            send_within(&mut stuck, &i.to_le_bytes(), "the stuck topic");
        }
        // Relaxed: read after the join, which orders it.
        done.store(true, Ordering::Relaxed);
        stuck
    });
    // Let the stuck topic fill everything between its sender and its reader.
    std::thread::sleep(Duration::from_millis(500));

    // The other topic on the same link flows, every message in order.
    let reader = std::thread::spawn(move || {
        for i in 0..FREE {
            let m = free_sub
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("free topic, message {i}: {e}"));
            assert_eq!(&*m, &i.to_le_bytes()[..], "free topic, message {i}");
        }
        free_sub
    });
    for i in 0..FREE {
        send_within(
            &mut free,
            &i.to_le_bytes(),
            &format!("free topic, message {i}"),
        );
    }
    let _free_sub = reader.join().expect("the free topic's reader");
    assert!(
        !sent.load(Ordering::Relaxed),
        "the stuck topic's sender finished while its reader was stopped"
    );

    // The stuck reader reads again: every message, once, in order.
    for i in 0..STUCK {
        let m = stuck_sub
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("stuck topic, message {i}: {e}"));
        assert_eq!(&*m, &i.to_le_bytes()[..], "stuck topic, message {i}");
    }
    let stuck = sender.join().expect("the stuck topic's sender");
    assert!(sent.load(Ordering::Relaxed));
    assert_eq!(stuck_sub.lost(), 0);
    drop(stuck);
    let end = stuck_sub.recv_timeout(WAIT).map(|m| m.seq());
    assert!(
        matches!(end, Err(RecvTimeoutError::Disconnected)),
        "expected the end, got {end:?}"
    );
}

/// Messages (single or batched) and SYNCs a test peer received on a data key.
#[derive(Default)]
struct Heard {
    messages: u64,
    /// The last SYNC's sequence and incarnation.
    sync: Option<(u64, u64)>,
}

/// What an exporter sends a peer that imports its `Block` topic: nothing before the peer
/// declares its importing token, only a SYNC until the peer credits it, then exactly the
/// credit's window, and more only when the credit moves. This is the rule that keeps a
/// stuck importer from ever holding the link: a compliant exporter never sends more than
/// an importer's backlog takes.
#[test]
fn an_exporter_sends_only_within_each_importers_credit() {
    use ringcast_bridge::announce::Keys;
    use ringcast_bridge::credit::Credit;
    use ringcast_bridge::wire::{Put, SYNC};
    use std::sync::Mutex;
    use zenoh::Wait;

    let mut pair = Pair::new("credit");
    pair.topics(&["held"]);
    let mut src = block_source(&pair, "held");
    let exporter = pair.bridge_a(&["--export", "held"]);
    let zid = zid_of(&exporter);
    let peer = hostile_peer(&pair.endpoint);
    let me = peer.zid().to_string();
    linked_to(&peer, &zid);
    let keys = Keys::new(&pair.domain);
    let heard = Arc::new(Mutex::new(Heard::default()));
    let h = heard.clone();
    let _data = peer
        .declare_subscriber(keys.data("held", &zid))
        .callback(move |s| {
            let att = s.attachment().map(|a| a.to_bytes());
            let put = Put::decode(att.as_deref(), s.payload().len()).expect("a well-formed put");
            let mut h = h.lock().unwrap();
            if put.stamp.flags & SYNC != 0 {
                h.sync = Some((put.stamp.seq, put.stamp.creation_id));
            } else {
                h.messages += put.batch.len().max(1) as u64;
            }
        })
        .wait()
        .unwrap();
    // The source sends all the time (it blocks while the exporter does not read).
    let stop = Arc::new(AtomicBool::new(false));
    let halt = stop.clone();
    let sender = std::thread::spawn(move || {
        let mut i = 0u64;
        // Relaxed: a flag polled between sends; the join orders the rest.
        while !halt.load(Ordering::Relaxed) {
            if let Ok(mut loan) = src.loan_timeout(Duration::from_millis(20)) {
                loan.write_at(0, &i.to_le_bytes());
                loan.commit(8);
                i += 1;
            }
        }
        src
    });
    let settle = || std::thread::sleep(Duration::from_millis(400));
    let messages = || heard.lock().unwrap().messages;

    // A data subscriber alone is not an importer: the source is not read.
    settle();
    assert_eq!(messages(), 0, "sent to a peer that imports nothing");
    assert!(heard.lock().unwrap().sync.is_none());

    // The importing token: the exporter attaches and says where it reads, but sends no
    // message before the credit.
    let token = peer
        .liveliness()
        .declare_token(keys.importing("held", &zid, &me))
        .wait()
        .unwrap();
    eventually("the SYNC", || heard.lock().unwrap().sync.is_some());
    settle();
    assert_eq!(messages(), 0, "sent before the importer credited");
    let (start, creation_id) = heard.lock().unwrap().sync.expect("checked above");

    // A credit of 10 from `start`: exactly 10 messages, then nothing more.
    let credit = |consumed: u64| {
        let c = Credit {
            creation_id,
            window: 10,
            consumed: vec![consumed],
        };
        peer.put(keys.credit("held", &zid, &me), c.encode())
            .wait()
            .unwrap();
    };
    credit(start);
    eventually("the credited messages", || messages() >= 10);
    settle();
    assert_eq!(messages(), 10, "past the window");
    // The credit moves by 25: 25 more.
    credit(start + 25);
    eventually("the next credited messages", || messages() >= 35);
    settle();
    assert_eq!(messages(), 35, "past the moved window");

    // The token goes: its credit no longer limits the exporter, which stays attached
    // while the peer's data subscriber matches, and reads on.
    drop(token);
    eventually("the exporter reads on", || messages() > 35);
    stop.store(true, Ordering::Relaxed);
    let mut src = sender.join().expect("the sender");
    assert_eq!(src.subscriber_count(), 1, "the exporter stays attached");
    // The peer leaves altogether: the exporter lets go of the source.
    drop(_data);
    drop(peer);
    eventually("the exporter detaches", || src.subscriber_count() == 0);
}

/// A source that publishes and closes, and its exporting bridge stopped right after: the
/// importer still gets every message and the END (a session closed with puts queued in
/// Zenoh loses them; the stopping exporter waits, bounded, until its importers closed).
#[test]
fn an_exporter_stopped_as_its_source_closes_still_delivers_everything() {
    const N: u64 = 100_000;
    let mut pair = Pair::new("flowend");
    pair.topics(&["last"]);
    let mut src = block_source(&pair, "last");
    let mut a = pair.bridge_a(&["--export", "last"]);
    let _b = pair.bridge_b(&["--import", "last"]);
    let mut sub = attach(&pair.b, "last");
    src.wait_for_subscribers(1, WAIT)
        .expect("A's bridge attaches");
    let reader = std::thread::spawn(move || {
        for i in 0..N {
            let m = sub
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("message {i}: {e}"));
            assert_eq!(&*m, &i.to_le_bytes()[..], "message {i}");
            // A reader a little slower than the link: the exporter runs a window ahead,
            // and much of it is still in Zenoh's queues when the exporter stops.
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(2) {
                std::hint::spin_loop();
            }
        }
        let end = sub.recv_timeout(WAIT).map(|m| m.seq());
        assert!(
            matches!(end, Err(RecvTimeoutError::Disconnected)),
            "expected the end, got {end:?}"
        );
        sub.lost()
    });
    for i in 0..N {
        send_within(&mut src, &i.to_le_bytes(), "the source");
    }
    drop(src);
    let status = a.interrupt();
    assert!(status.success(), "{status:?}\n{}", a.log());
    assert_eq!(reader.join().expect("the reader"), 0, "lost");
}

/// The same with the importing bridge frozen while the source sends and closes and the
/// exporter stops: what the exporter put waits in Zenoh's queues, and the exporter must
/// not close its session before the importer (thawed) applied it.
#[test]
fn an_exporter_stopped_while_its_importer_is_frozen_still_delivers_everything() {
    const N: u64 = 900;
    const SIZE: usize = 4096;
    let mut pair = Pair::new("flowfrz");
    pair.topics(&["late"]);
    let config = PublisherConfig::default()
        .prefix(pair.a.as_str())
        .overflow(Overflow::Block)
        .slots(16)
        .slot_size(SIZE as u64);
    let mut src = Publisher::create("late", config).expect("source topic");
    let mut a = pair.bridge_a(&["--export", "late"]);
    let b = pair.bridge_b(&["--import", "late"]);
    let mut sub = attach(&pair.b, "late");
    src.wait_for_subscribers(1, WAIT)
        .expect("A's bridge attaches");
    // One message through, so the importer's credit (a window of 1024 such messages)
    // has reached the exporter.
    let body = |i: u64| -> Vec<u8> { (0..SIZE).map(|j| pattern(i, j)).collect() };
    send_within(&mut src, &body(0), "the first message");
    let m = sub.recv_timeout(WAIT).expect("the first message");
    assert_eq!(&*m, &body(0)[..]);
    drop(m);
    freeze(&b);
    for i in 1..N {
        send_within(&mut src, &body(i), "the source");
    }
    drop(src);
    let stopper = std::thread::spawn(move || {
        let status = a.interrupt();
        (status, a.log())
    });
    std::thread::sleep(Duration::from_millis(300));
    thaw(&b);
    for i in 1..N {
        let m = sub
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert_eq!(&*m, &body(i)[..], "message {i}");
    }
    let end = sub.recv_timeout(WAIT).map(|m| m.seq());
    assert!(
        matches!(end, Err(RecvTimeoutError::Disconnected)),
        "expected the end, got {end:?}"
    );
    assert_eq!(sub.lost(), 0);
    let (status, log) = stopper.join().expect("the stopper");
    assert!(status.success(), "{status:?}\n{log}");
}

/// A source re-created by the same exporter: the importer adopts the new incarnation
/// under the same importing token, so the exporter never sees it leave (a token that went
/// and came back let the exporter run ahead of the importer's credit meanwhile). Watched
/// by a Zenoh peer of the test's subscribed to the importing tokens.
#[test]
fn an_importer_keeps_its_token_across_a_re_created_source() {
    use zenoh::sample::SampleKind;
    use zenoh::Wait;
    let mut pair = Pair::new("keeptok");
    let topic = "again";
    pair.topics(&[topic]);
    let a = pair.bridge_a(&["--export", topic]);
    let _b = pair.bridge_b(&["--import", topic]);
    let cfg = PublisherConfig::default()
        .prefix(pair.a.as_str())
        .overflow(Overflow::Block)
        .slots(64)
        .slot_size(64);
    let mut src = Publisher::create(topic, cfg.clone()).unwrap();
    let mut sub = attach(&pair.b, topic);
    src.wait_for_subscribers(1, WAIT)
        .expect("the exporter attaches");
    let watcher = hostile_peer(&pair.endpoint);
    linked_to(&watcher, &zid_of(&a));
    let seen: Arc<std::sync::Mutex<Vec<SampleKind>>> = Arc::default();
    let log = seen.clone();
    let key = format!("ringcast/{}/@import/{topic}/**", pair.domain);
    let _tokens = watcher
        .liveliness()
        .declare_subscriber(key)
        .history(true)
        .callback(move |s| log.lock().unwrap().push(s.kind()))
        .wait()
        .unwrap();
    eventually("the importing token is seen", || {
        seen.lock().unwrap().contains(&SampleKind::Put)
    });
    for i in 0..10u64 {
        src.send(&i.to_le_bytes()).unwrap();
        assert_eq!(sub.recv_timeout(WAIT).unwrap().bytes(), i.to_le_bytes());
    }
    // The source goes and comes back at once, under the same exporter.
    let old_import = sub.geometry().creation_id;
    drop(src);
    let mut src = Publisher::create(topic, cfg).unwrap();
    assert!(matches!(
        sub.recv_timeout(WAIT),
        Err(RecvTimeoutError::Disconnected)
    ));
    drop(sub);
    src.wait_for_subscribers(1, WAIT)
        .expect("the exporter attaches to the new source");
    // The new import (not the closed one, whose name may linger for a moment).
    let mut sub = attach(&pair.b, topic);
    let t = Instant::now();
    while sub.geometry().creation_id == old_import {
        assert!(t.elapsed() < WAIT, "the import was not re-created");
        std::thread::sleep(Duration::from_millis(10));
        sub = attach(&pair.b, topic);
    }
    for i in 0..10u64 {
        src.send(&i.to_le_bytes()).unwrap();
        assert_eq!(sub.recv_timeout(WAIT).unwrap().bytes(), i.to_le_bytes());
    }
    std::thread::sleep(Duration::from_millis(300));
    let kinds = seen.lock().unwrap().clone();
    assert!(
        !kinds.contains(&SampleKind::Delete),
        "the importing token went away and came back: {kinds:?}"
    );
}
