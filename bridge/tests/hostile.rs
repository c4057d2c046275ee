//! A hostile Zenoh peer on the bridges' network learns what the announcements say (the
//! exporting bridge's id, the topic's creation id) and forges messages, SYNCs and ENDs
//! for the topic under any other sender id (and under the shared key that older builds
//! used): the importer applies none of it. The genuine stream arrives whole, in order,
//! with no loss counted, and the imported topic ends only when its real source does.
//! (A peer that forges under the adopted bridge's own id is kept out only by an
//! authenticated transport: see `tls.rs`.) A peer that is itself the adopted source and
//! sends malformed batches gets each refused whole and counted, never applied in part.

mod harness;

use std::time::Duration;

use harness::*;
use ringcast::*;
use ringcast_bridge::announce::{Announcement, Keys};
use ringcast_bridge::wire::{
    BatchIndex, LaneTag, Stamp, BATCH, END, LANE, LANE_LEN, LEAVE, LEN, MAX_BATCH, SYNC,
};
use zenoh::qos::CongestionControl;
use zenoh::Wait;

/// A topic exported by host B's bridge and imported by host A's, which listens (the
/// hostile peer dials it directly), with its source and a subscriber of the import.
struct Victim {
    pair: Pair,
    importer: Proc,
    _exporter: Proc,
    src: Publisher,
    sub: Subscriber,
}

fn victim(tag: &str, topic: &str, slots: u64) -> Victim {
    let mut pair = Pair::new(tag);
    pair.topics(&[topic]);
    let importer = pair.bridge_a(&["--import", topic]);
    let exporter = pair.bridge_b(&["--export", topic]);
    let mut src = Publisher::create(
        topic,
        PublisherConfig::default()
            .prefix(pair.b.as_str())
            .overflow(Overflow::Block)
            .slots(slots)
            .slot_size(64),
    )
    .unwrap();
    let sub = attach(&pair.a, topic);
    src.wait_for_subscribers(1, WAIT)
        .expect("the exporter attaches");
    Victim {
        pair,
        importer,
        _exporter: exporter,
        src,
        sub,
    }
}

#[test]
fn forged_data_sync_and_end_from_other_senders_are_never_applied() {
    let topic = "victim";
    let Victim {
        pair,
        importer,
        _exporter,
        mut src,
        mut sub,
    } = victim("host", topic, 64);

    // What any peer can learn: the exporter's id and the topic's creation id.
    let peer = hostile_peer(&pair.endpoint);
    linked_to(&peer, &zid_of(&importer));
    let keys = Keys::new(&pair.domain);
    let tokens = peer.liveliness().get(keys.tokens_of(topic)).wait().unwrap();
    let mut learned = None;
    while let Ok(reply) = tokens.recv_timeout(WAIT) {
        let Some(reply) = reply else { break };
        if let Ok(sample) = reply.result() {
            let key = sample.key_expr().as_str().to_owned();
            let source = keys.parse_token(topic, &key).expect("a genuine token");
            learned = Some((source.zid.to_owned(), source.announcement.creation_id));
            break;
        }
    }
    let (zid, creation_id) = learned.expect("the exporter's announcement");
    let forge = |key: &str, seq: u64, flags: u64, payload: &[u8]| {
        let stamp = Stamp {
            seq,
            publish_ns: 0,
            creation_id,
            flags,
            lane: None,
        };
        peer.put(key, payload.to_vec())
            .attachment(&stamp.encode()[..])
            .wait()
            .unwrap();
    };
    // A message half a ring ahead first, so that a forgery applied would show as loss.
    src.send(&0u64.to_le_bytes()).unwrap();
    let m = sub.recv_timeout(WAIT).expect("message 0");
    assert_eq!(m.bytes(), 0u64.to_le_bytes());
    drop(m);
    let legacy = format!("ringcast/{}/{topic}", pair.domain);
    let posing = keys.data(topic, "notthebridge");
    for key in [legacy.as_str(), posing.as_str()] {
        forge(key, u64::MAX - 1, 0, b"black hole"); // would swallow everything after it
        forge(key, 1 << 40, SYNC, b""); // would move the expected sequence
        forge(key, 1, END, b""); // would close the topic
    }
    std::thread::sleep(Duration::from_millis(300));
    // The genuine stream goes on, whole and in order, with nothing counted lost.
    for i in 1..200u64 {
        src.send(&i.to_le_bytes()).unwrap();
        let m = sub
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert_eq!(m.bytes(), i.to_le_bytes(), "message {i}");
    }
    assert_eq!(sub.upstream_lost(), 0, "a forgery was counted as a loss");
    assert_eq!(sub.lost(), 0);
    assert!(matches!(sub.try_recv(), Err(TryRecvError::Empty)));
    // The control: what this peer puts does reach the importer (so the forgeries above
    // were refused, not lost on the way): the next sequence under the exporter's own id
    // is taken, as nothing but an authenticated link can prevent.
    let probe = keys.data(topic, &zid);
    forge(&probe, 200, 0, b"probe");
    let m = sub
        .recv_timeout(WAIT)
        .expect("the probe reaches the importer");
    assert_eq!(m.bytes(), b"probe");
    drop(m);
    // It ends when its real source does, and not before.
    drop(src);
    match sub.recv_timeout(WAIT) {
        Err(RecvTimeoutError::Disconnected) => {}
        Err(e) => panic!("expected the end, got {e}"),
        Ok(m) => panic!("expected the end, got message {}", m.seq()),
    }
    assert_ne!(zid, "notthebridge");
    peer.close().wait().unwrap();
}

/// On a plain TCP link nothing stops a peer from writing under the exporting bridge's own
/// id (only mutual TLS does, see `tls.rs`). What such a forged jump ahead can do is
/// bounded: the importer follows the genuine source again after at most 64 of its
/// messages, instead of dropping everything after the jump for ever.
#[test]
fn a_forged_jump_under_the_exporters_own_id_costs_a_bounded_number_of_messages() {
    let topic = "jumped";
    let Victim {
        pair,
        importer,
        _exporter,
        mut src,
        mut sub,
    } = victim("jump", topic, 256);
    src.send(&0u64.to_le_bytes()).unwrap();
    assert_eq!(sub.recv_timeout(WAIT).unwrap().bytes(), 0u64.to_le_bytes());

    let peer = hostile_peer(&pair.endpoint);
    linked_to(&peer, &zid_of(&importer));
    let keys = Keys::new(&pair.domain);
    let tokens = peer.liveliness().get(keys.tokens_of(topic)).wait().unwrap();
    let reply = tokens
        .recv_timeout(WAIT)
        .unwrap()
        .expect("the exporter's token");
    let key = reply
        .result()
        .expect("a token")
        .key_expr()
        .as_str()
        .to_owned();
    let source = keys.parse_token(topic, &key).unwrap();
    let stamp = Stamp {
        seq: 1 << 50,
        publish_ns: 0,
        creation_id: source.announcement.creation_id,
        flags: 0,
        lane: None,
    };
    peer.put(keys.data(topic, source.zid), b"forged".to_vec())
        .attachment(&stamp.encode()[..])
        .wait()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The forged message got through (the link is not authenticated); after it, the
    // genuine stream resumes within 64 messages and then goes on in order.
    let forged = sub.recv_timeout(WAIT).expect("the forged message");
    assert_eq!(forged.bytes(), b"forged");
    drop(forged);
    for i in 1..=200u64 {
        src.send(&i.to_le_bytes()).unwrap();
    }
    let first = sub.recv_timeout(WAIT).expect("the stream resumes");
    let resumed = u64::from_le_bytes(first.bytes().try_into().unwrap());
    drop(first);
    assert!(resumed <= 65, "resumed only at message {resumed}");
    for want in resumed + 1..=200 {
        let m = sub.recv_timeout(WAIT).unwrap();
        assert_eq!(m.bytes(), want.to_le_bytes());
    }
    peer.close().wait().unwrap();
}

/// A batch's attachment (stamp's sequence `first`, creation id 42) as written by hand, so
/// that it can lie.
fn batch(first: u64, count: u32, entries: &[(u64, u32)]) -> Vec<u8> {
    let mut att = Stamp {
        seq: first,
        publish_ns: 0,
        creation_id: 42,
        lane: None,
        flags: BATCH,
    }
    .encode()
    .to_vec();
    att.extend_from_slice(&count.to_le_bytes());
    att.extend_from_slice(&[0; 4]);
    for &(seq, len) in entries {
        att.extend_from_slice(&seq.to_le_bytes());
        att.extend_from_slice(&len.to_le_bytes());
    }
    att
}

/// A well-formed batch of `msgs` from sequence `first` on: its attachment and payload.
fn good_batch(msgs: &[(u64, &[u8])]) -> (Vec<u8>, Vec<u8>) {
    let mut ix = BatchIndex::new(None);
    let mut payload = Vec::new();
    for &(seq, m) in msgs {
        ix.push(seq, m.len());
        payload.extend_from_slice(m);
    }
    (ix.finish(0, 42), payload)
}

#[test]
fn malformed_batches_are_refused_whole_and_counted() {
    // The hostile peer is the source here: it announces the topic (64-byte slots) and the
    // victim adopts it, then it sends batches that lie, between good ones.
    let mut pair = Pair::new("badbat");
    let topic = "batched";
    pair.topics(&[topic]);
    let mut victim = pair.bridge_a(&["--import", topic]);
    let peer = hostile_peer(&pair.endpoint);
    linked_to(&peer, &zid_of(&victim));
    let record = Announcement {
        slot_count: 64,
        slot_capacity: 64,
        alignment: 16,
        max_subscribers: 8,
        overflow: Overflow::Block,
        stall_timeout_ns: 0,
        creation_id: 42,
        max_publishers: 1,
        type_info: TypeInfo::RAW,
        host: "evil".into(),
        prefix: "peer".into(),
    };
    let token_key = format!(
        "ringcast/{}/@topic/{topic}/badzid/{}",
        pair.domain,
        record.encode()
    );
    let token = peer.liveliness().declare_token(token_key).wait().unwrap();
    let mut sub = attach(&pair.a, topic);
    let key = Keys::new(&pair.domain).data(topic, "badzid");
    let put = |att: Vec<u8>, payload: Vec<u8>| {
        peer.put(key.as_str(), payload)
            .attachment(att)
            .congestion_control(CongestionControl::Block)
            .wait()
            .unwrap()
    };
    let (att, payload) = good_batch(&[(1, b"a"), (2, b"bb"), (3, b"ccc")]);
    put(att, payload);

    // Each of these would be applied, at sequences far ahead, if it got through.
    let at = 1000u64;
    let with_flags = |flags: u64| {
        let mut att = batch(at, 2, &[(at, 1), (at + 1, 1)]);
        att[24..LEN].copy_from_slice(&flags.to_le_bytes());
        att
    };
    let many: Vec<(u64, u32)> = (0..=MAX_BATCH as u64).map(|i| (at + i, 0)).collect();
    let mut reserved = batch(at, 2, &[(at, 1), (at + 1, 1)]);
    reserved[LEN + 4] = 1;
    let mut trailing = Stamp {
        seq: at,
        publish_ns: 0,
        creation_id: 42,
        lane: None,
        flags: 0,
    }
    .encode()
    .to_vec();
    trailing.extend_from_slice(&[0; 8]);
    let two = vec![7u8; 2];
    let malformed: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            "lengths overrun the payload",
            batch(at, 2, &[(at, 4), (at + 1, 4)]),
            two.clone(),
        ),
        (
            "lengths fall short of it",
            batch(at, 2, &[(at, 1), (at + 1, 0)]),
            two.clone(),
        ),
        (
            "a length past any payload",
            batch(at, 2, &[(at, u32::MAX), (at + 1, 3)]),
            two.clone(),
        ),
        (
            "a count over its entries",
            batch(at, 3, &[(at, 1), (at + 1, 1)]),
            two.clone(),
        ),
        (
            "a count under its entries",
            batch(at, 1, &[(at, 1), (at + 1, 1)]),
            two.clone(),
        ),
        ("a count of zero", batch(at, 0, &[]), Vec::new()),
        (
            "a count over the bound",
            batch(at, many.len() as u32, &many),
            Vec::new(),
        ),
        (
            "a sequence going back",
            batch(at, 2, &[(at, 1), (at - 1, 1)]),
            two.clone(),
        ),
        (
            "a sequence repeated",
            batch(at, 2, &[(at, 1), (at, 1)]),
            two.clone(),
        ),
        (
            "a first entry not the stamp's",
            batch(at, 2, &[(at + 1, 1), (at + 2, 1)]),
            two.clone(),
        ),
        (
            "the last possible sequence",
            batch(u64::MAX - 1, 2, &[(u64::MAX - 1, 1), (u64::MAX, 1)]),
            two.clone(),
        ),
        (
            "a batch that ends the source",
            with_flags(BATCH | END),
            two.clone(),
        ),
        ("a batch that syncs", with_flags(BATCH | SYNC), two.clone()),
        (
            "a batch stamp without an index",
            batch(at, 0, &[])[..LEN].to_vec(),
            two.clone(),
        ),
        (
            "a torn index",
            {
                let b = batch(at, 2, &[(at, 1), (at + 1, 1)]);
                b[..b.len() - 1].to_vec()
            },
            two.clone(),
        ),
        ("a reserved word set", reserved, two.clone()),
        ("an index after a single stamp", trailing, two.clone()),
    ];
    let refused = malformed.len() as u64;
    for (what, att, payload) in malformed {
        eprintln!("sending {what}");
        put(att, payload);
    }
    // Good ones after them: a batch, a single message, a batch with a message larger than
    // the slot (only that one refused), a batch with a gap (a loss the exporter saw) and
    // one that is all behind (duplicates: dropped, not counted as loss).
    let (att, payload) = good_batch(&[(4, b"4"), (5, b"5")]);
    put(att, payload);
    let single = Stamp {
        seq: 6,
        publish_ns: 0,
        creation_id: 42,
        lane: None,
        flags: 0,
    };
    put(single.encode().to_vec(), b"6".to_vec());
    let big = [9u8; 65];
    let (att, payload) = good_batch(&[(7, &big[..]), (8, b"8")]);
    put(att, payload);
    let (att, payload) = good_batch(&[(9, b"9"), (12, b"12")]);
    put(att, payload);
    let (att, payload) = good_batch(&[(2, b"dup2"), (3, b"dup3")]);
    put(att, payload);
    let (att, payload) = good_batch(&[(13, b"13")]);
    put(att, payload);

    let want: [&[u8]; 10] = [
        b"a", b"bb", b"ccc", b"4", b"5", b"6", b"8", b"9", b"12", b"13",
    ];
    for (i, w) in want.iter().enumerate() {
        let m = sub
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert_eq!(m.bytes(), *w, "message {i}");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        matches!(sub.try_recv(), Err(TryRecvError::Empty)),
        "more arrived"
    );
    // Only the gap inside the good batch (10 and 11) is a loss.
    assert_eq!(sub.upstream_lost(), 2);
    drop(token);
    peer.close().wait().unwrap();
    match sub.recv_timeout(WAIT) {
        Err(RecvTimeoutError::Disconnected) => {}
        other => panic!("expected Disconnected, got {:?}", other.map(|s| s.seq())),
    }
    let status = victim.interrupt();
    let log = victim.log();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("refusing a malformed put"), "{log}");
    let c = counts(&log, "Import", topic);
    assert_eq!(
        (c.messages, c.lost, c.refused),
        (10, 2, refused + 1),
        "each malformed batch and the oversized message counted once"
    );
}

#[test]
fn lane_puts_that_lie_are_refused_and_counted_and_good_lanes_go_on() {
    // The hostile peer is the source of a shared topic (2 lanes): the victim adopts it;
    // the peer's lane puts lie between good ones.
    let mut pair = Pair::new("badlane");
    let topic = "laned";
    pair.topics(&[topic]);
    let mut victim = pair.bridge_a(&["--import", topic]);
    let peer = hostile_peer(&pair.endpoint);
    linked_to(&peer, &zid_of(&victim));
    let record = Announcement {
        slot_count: 64,
        slot_capacity: 64,
        alignment: 16,
        max_subscribers: 8,
        overflow: Overflow::Block,
        stall_timeout_ns: 0,
        creation_id: 42,
        max_publishers: 2,
        type_info: TypeInfo::RAW,
        host: "evil".into(),
        prefix: "peer".into(),
    };
    let token_key = format!(
        "ringcast/{}/@topic/{topic}/badzid/{}",
        pair.domain,
        record.encode()
    );
    let token = peer.liveliness().declare_token(token_key).wait().unwrap();
    let key = Keys::new(&pair.domain).data(topic, "badzid");
    let put = |att: Vec<u8>, payload: &[u8]| {
        peer.put(key.as_str(), payload.to_vec())
            .attachment(att)
            .congestion_control(CongestionControl::Block)
            .wait()
            .unwrap()
    };
    let stamp = |seq: u64, flags: u64, lane: Option<(u32, u32)>| {
        Stamp {
            seq,
            publish_ns: 0,
            creation_id: 42,
            flags,
            lane: lane.map(|(lane, writer)| LaneTag { lane, writer }),
        }
        .encode()
    };
    // The exporter's SYNC for lane 0 (writer 7): the local topic appears with its lane.
    put(stamp(0, SYNC, Some((0, 7))), b"");
    let mut sub = attach(&pair.a, topic);
    assert_eq!(sub.geometry().max_publishers, 2);

    let mut torn = stamp(50, 0, Some((0, 7)));
    torn.truncate(LANE_LEN - 4);
    let mut trailing = stamp(50, 0, Some((0, 7)));
    trailing.push(0);
    let mut end_with_lane = stamp(50, 0, Some((0, 7)));
    end_with_lane[24..LEN].copy_from_slice(&(END | LANE).to_le_bytes());
    let overrun = {
        let mut ix = BatchIndex::new(Some(LaneTag { lane: 1, writer: 9 }));
        ix.push(50, 4);
        ix.push(51, 4);
        ix.finish(0, 42)
    };
    let malformed: Vec<(&str, Vec<u8>, &[u8])> = vec![
        ("a message without a lane", stamp(50, 0, None), b"x"),
        ("a lane the topic lacks", stamp(50, 0, Some((2, 7))), b"x"),
        (
            "the last lane number",
            stamp(50, 0, Some((u32::MAX, 7))),
            b"x",
        ),
        ("an END with a lane", end_with_lane, b""),
        ("a LEAVE without a lane", stamp(50, LEAVE, None), b""),
        ("a torn lane stamp", torn, b"x"),
        ("a lane stamp with trailing bytes", trailing, b"x"),
        ("a lane batch whose lengths overrun", overrun, b"xx"),
    ];
    let refused = malformed.len() as u64;
    for (what, att, payload) in malformed {
        eprintln!("sending {what}");
        put(att, payload);
    }
    // Good ones: lane 0 (writer 7), lane 1 (writer 9, first heard of here) in a single
    // message and a batch, then lane 0 with a gap of one.
    put(stamp(1, 0, Some((0, 7))), b"a1");
    put(stamp(0, 0, Some((1, 9))), b"b0");
    let mut ix = BatchIndex::new(Some(LaneTag { lane: 1, writer: 9 }));
    ix.push(1, 2);
    ix.push(2, 2);
    put(ix.finish(0, 42), b"b1b2");
    put(stamp(3, 0, Some((0, 7))), b"a3");
    let mut by: std::collections::BTreeMap<PublisherId, Vec<Vec<u8>>> = Default::default();
    for i in 0..5 {
        let m = sub
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        by.entry(m.publisher())
            .or_default()
            .push(m.bytes().to_vec());
    }
    let got: Vec<Vec<Vec<u8>>> = by.values().cloned().collect();
    assert_eq!(by.len(), 2, "two local publishers: {by:?}");
    assert!(
        got.contains(&vec![b"a1".to_vec(), b"a3".to_vec()]),
        "{by:?}"
    );
    assert!(
        got.contains(&vec![b"b0".to_vec(), b"b1".to_vec(), b"b2".to_vec()]),
        "{by:?}"
    );
    let id_of = |first: &[u8]| {
        *by.iter()
            .find(|(_, v)| v[0] == first)
            .expect("that publisher")
            .0
    };
    let (a, b) = (id_of(b"a1"), id_of(b"b0"));
    // Writer 7 leaves after 4 messages: its local lane ends; writer 9's lives.
    put(stamp(4, LEAVE, Some((0, 7))), b"");
    eventually("lane 0's local publisher to leave", || {
        sub.lane_publisher(a.lane).is_none()
    });
    assert_eq!(sub.lane_publisher(b.lane), Some(b));
    // Writer 10 takes lane 1 over: writer 9's local publisher leaves, a new one carries it.
    put(stamp(3, 0, Some((1, 10))), b"c3");
    let m = sub.recv_timeout(WAIT).expect("the new writer's message");
    assert_eq!(m.bytes(), b"c3");
    let c = m.publisher();
    drop(m);
    assert_ne!(c, b, "a new local publisher for the new writer");
    assert_eq!(sub.lane_publisher(b.lane).filter(|&id| id == b), None);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        matches!(sub.try_recv(), Err(TryRecvError::Empty)),
        "more arrived"
    );
    // Lane 0 was synced at 0: its messages 0 and 2 never came.
    assert_eq!(sub.upstream_lost(), 2, "messages 0 and 2 of lane 0");
    drop(token);
    peer.close().wait().unwrap();
    match sub.recv_timeout(WAIT) {
        Err(RecvTimeoutError::Disconnected) => {}
        other => panic!("expected Disconnected, got {:?}", other.map(|s| s.seq())),
    }
    let status = victim.interrupt();
    let log = victim.log();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    let c = counts(&log, "Import", topic);
    assert_eq!(
        (c.messages, c.lost, c.refused),
        (6, 2, refused),
        "each lying put counted once"
    );
}
