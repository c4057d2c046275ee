//! Bad input: wrong command lines and endpoints, and a hostile peer that announces
//! malformed, impossible or clashing topics and sends malformed messages. Always a clear
//! error or a skipped topic; never a panic, a hang or a corrupted local topic.

mod harness;

use std::process::Command;
use std::time::Duration;

use harness::*;
use ringcast::*;
use ringcast_bridge::announce::{Announcement, Keys};
use ringcast_bridge::wire::Stamp;
use zenoh::Wait;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("running ringcast-bridge");
    let code = out.status.code().expect("an exit code, not a signal");
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_command_lines_exit_2_with_a_message() {
    for (args, says) in [
        (&["--export", "../etc"][..], "invalid topic"),
        (&["--import", ""][..], "invalid topic"),
        (&["--domain", "a/b"][..], "invalid domain"),
        (&["--prefix", "bad prefix"][..], "invalid prefix"),
        (&["--connect", "udp/127.0.0.1:7447"][..], "not built in"),
        (&["--listen", "tcp/127.0.0.1"][..], "bad endpoint"),
        (&["--connect", "nonsense"][..], "bad endpoint"),
        (&["--connect", "tcp/127.0.0.1:70000"][..], "bad endpoint"),
        (&["--no-such-flag"][..], "unexpected argument"),
    ] {
        let (code, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let (code, _) = run(&["--help"]);
    assert_eq!(code, 0);
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_listen_address_in_use_is_a_runtime_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp/{}", taken.local_addr().unwrap());
    let (code, err) = run(&["--listen", &ep, "--export", "t"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("zenoh could not open a session"), "{err}");
}

#[test]
fn an_unreachable_endpoint_is_retried_quietly_and_sigint_still_stops_the_bridge() {
    let pair = Pair::new("unr");
    let mut b = pair.bridge_b(&["--import", "t"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        ringcast::inspect::inspect(&pair.b, "t").is_err(),
        "nothing was imported"
    );
    let status = b.interrupt();
    assert!(status.success(), "{status:?}\n{}", b.log());
}

fn announcement(slots: u64, cap: u64) -> Announcement {
    Announcement {
        slot_count: slots,
        slot_capacity: cap,
        alignment: 16,
        max_subscribers: 8,
        overflow: Overflow::Block,
        stall_timeout_ns: 0,
        creation_id: 42,
        max_publishers: 1,
        type_info: TypeInfo::RAW,
        host: "evil".into(),
        prefix: "peer".into(),
    }
}

fn stamp(seq: u64, flags: u64) -> Vec<u8> {
    Stamp {
        seq,
        publish_ns: 0,
        creation_id: 42,
        lane: None,
        flags,
    }
    .encode()
}

#[test]
fn a_hostile_peer_cannot_crash_a_bridge_or_touch_a_local_topic() {
    let mut pair = Pair::new("evil");
    let names = ["hex", "geom", "huge", "clash", "align", "good"];
    pair.topics(&names);
    let mut roles = Vec::new();
    for n in names {
        roles.extend(["--import", n]);
    }
    // Host A's bridge is the victim here; it listens, the hostile peer connects.
    let mut victim = pair.bridge_a(&roles);
    // A live local topic the peer will try to import over, with a type of its own.
    let local_type = TypeInfo::new("local::Thing", 8, 8, 1);
    let mut local = Publisher::create(
        "clash",
        PublisherConfig::default()
            .prefix(pair.a.as_str())
            .slots(16)
            .type_info(local_type),
    )
    .unwrap();
    let mut local_sub = Subscriber::attach(
        "clash",
        SubscriberOptions::default()
            .prefix(pair.a.as_str())
            .expect_type(local_type),
    )
    .unwrap();

    let peer = hostile_peer(&pair.endpoint);
    let keys = Keys::new(&pair.domain);
    let token = |topic: &str, record: &str| {
        let key = format!("ringcast/{}/@topic/{topic}/badzid/{record}", pair.domain);
        peer.liveliness().declare_token(key).wait().unwrap()
    };
    let _t = [
        // Not hex; a record with an impossible geometry; a ring over the size limit;
        // a valid one clashing with the live local topic; an alignment the publisher
        // refuses; and, as the control, a good one.
        token("hex", "zz-not-hex"),
        token("geom", &announcement(3, 64).encode()),
        token("huge", &announcement(1 << 24, 1 << 30).encode()),
        token("clash", &announcement(16, 64).encode()),
        token(
            "align",
            &Announcement {
                alignment: 1 << 20,
                ..announcement(16, 64)
            }
            .encode(),
        ),
        token("good", &announcement(16, 64).encode()),
    ];
    let mut good = attach(&pair.a, "good");
    assert!(good.origin().is_some_and(|o| o.contains("evil")));

    // Messages: no attachment, a bad one, one larger than the slot, then good ones.
    let put = |payload: Vec<u8>, att: Option<&[u8]>| {
        let b = peer.put(keys.data("good", "badzid"), payload);
        match att {
            Some(a) => b.attachment(a).wait(),
            None => b.wait(),
        }
        .unwrap()
    };
    put(b"no stamp".to_vec(), None);
    put(b"short stamp".to_vec(), Some(&[1, 2, 3]));
    put(vec![7u8; 65], Some(&stamp(0, 0)));
    // A forged last-possible sequence: refused, and no loss counted for it.
    put(b"forged".to_vec(), Some(&stamp(u64::MAX, 0)));
    put(b"one".to_vec(), Some(&stamp(1, 0)));
    put(b"two".to_vec(), Some(&stamp(2, 0)));
    for want in [&b"one"[..], b"two"] {
        let m = good.recv_timeout(WAIT).expect("a good message");
        assert_eq!(m.bytes(), want);
    }
    assert!(matches!(good.try_recv(), Err(TryRecvError::Empty)));
    // The oversized message 0 was refused, not counted as lost upstream.
    assert_eq!(good.upstream_lost(), 0);

    // Nothing was created for the bad announcements.
    for t in ["hex", "geom", "huge", "align"] {
        assert!(
            matches!(
                ringcast::inspect::inspect(&pair.a, t),
                Err(AttachError::NotFound { .. })
            ),
            "{t} exists"
        );
    }
    // The local topic is untouched: same type, its own publisher, not marked imported.
    let info = ringcast::inspect::inspect(&pair.a, "clash").unwrap();
    assert_eq!(info.geometry.type_info, local_type);
    assert!(info.origin.is_none());
    local.send(&5u64.to_le_bytes()).unwrap();
    assert_eq!(
        local_sub.recv_timeout(WAIT).unwrap().bytes(),
        5u64.to_le_bytes()
    );

    // The peer goes away: its good import closes; the bridge is still well.
    drop(_t);
    peer.close().wait().unwrap();
    match good.recv_timeout(WAIT) {
        Err(RecvTimeoutError::Disconnected) => {}
        other => panic!("expected Disconnected, got {:?}", other.map(|s| s.seq())),
    }
    let status = victim.interrupt();
    let log = victim.log();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    for refused in [
        "not lower-case hex",
        "impossible slot count",
        "over this bridge's limit",
    ] {
        assert!(log.contains(refused), "no {refused:?} in\n{log}");
    }
    assert!(log.contains("a local publisher has this topic"), "{log}");
    assert!(log.contains("Import good: 2 messages"), "{log}");
}
