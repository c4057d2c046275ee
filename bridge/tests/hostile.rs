//! A hostile Zenoh peer on the bridges' network learns what the announcements say (the
//! exporting bridge's id, the topic's creation id) and forges messages, SYNCs and ENDs
//! for the topic under any other sender id (and under the shared key that older builds
//! used): the importer applies none of it. The genuine stream arrives whole, in order,
//! with no loss counted, and the imported topic ends only when its real source does.
//! (A peer that forges under the adopted bridge's own id is kept out only by an
//! authenticated transport: see `tls.rs`.)

mod harness;

use std::time::Duration;

use harness::*;
use ringcast::*;
use ringcast_bridge::announce::Keys;
use ringcast_bridge::wire::{Stamp, END, SYNC};
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
