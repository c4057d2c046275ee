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

#[test]
fn forged_data_sync_and_end_from_other_senders_are_never_applied() {
    let mut pair = Pair::new("host");
    let topic = "victim";
    pair.topics(&[topic]);
    let _a = pair.bridge_a(&["--export", topic]);
    let _b = pair.bridge_b(&["--import", topic]);
    let mut src = Publisher::create(
        topic,
        PublisherConfig::default()
            .prefix(pair.a.as_str())
            .overflow(Overflow::Block)
            .slots(64)
            .slot_size(64),
    )
    .unwrap();
    let mut sub = attach(&pair.b, topic);
    src.wait_for_subscribers(1, WAIT)
        .expect("the exporter attaches");

    // What any peer can learn: the exporter's id and the topic's creation id.
    let peer = hostile_peer(&pair.endpoint);
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
    // It ends when its real source does, and not before.
    assert!(matches!(sub.try_recv(), Err(TryRecvError::Empty)));
    drop(src);
    match sub.recv_timeout(WAIT) {
        Err(RecvTimeoutError::Disconnected) => {}
        Err(e) => panic!("expected the end, got {e}"),
        Ok(m) => panic!("expected the end, got message {}", m.seq()),
    }
    assert_ne!(zid, "notthebridge");
    peer.close().wait().unwrap();
}
