//! Bridges over mutual TLS (`tls/` endpoints with `--tls-ca`, `--tls-cert`, `--tls-key`):
//! a topic crosses intact, and peers that cannot show a certificate from the bridges' CA
//! (none at all, or one from another CA) cannot join the network, so nothing they send,
//! not even an END under the exporting bridge's own id, reaches the importer.
//! Certificates are made by the test (rcgen).

mod harness;

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::*;
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use ringcast::*;
use ringcast_bridge::announce::Keys;
use ringcast_bridge::wire::{Stamp, END};
use zenoh::Wait;

/// PEM files of a CA and of one certificate it signed (for 127.0.0.1 and localhost,
/// good for both ends of a link).
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path, name: &str) -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let write = |file: &str, pem: String| {
        let p = dir.join(format!("{name}-{file}"));
        std::fs::write(&p, pem).unwrap();
        p
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        cert: write("cert.pem", leaf_cert.pem()),
        key: write("key.pem", leaf_key.serialize_pem()),
    }
}

fn tls_args(p: &Pki) -> Vec<String> {
    [
        "--tls-ca",
        p.ca.to_str().unwrap(),
        "--tls-cert",
        p.cert.to_str().unwrap(),
        "--tls-key",
        p.key.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A Zenoh peer of the test's, dialling `endpoint` with whatever TLS files it has.
fn peer(endpoint: &str, ca: &Path, client: Option<&Pki>) -> zenoh::Session {
    let mut c = zenoh::Config::default();
    let mut set = |k: &str, v: String| c.insert_json5(k, &v).unwrap();
    set("mode", "\"peer\"".into());
    set("connect/endpoints", format!("[\"{endpoint}\"]"));
    set("connect/exit_on_failure", "false".into());
    set("scouting/multicast/enabled", "false".into());
    set(
        "transport/link/tls/root_ca_certificate",
        format!("{:?}", ca.display().to_string()),
    );
    if let Some(p) = client {
        // Zenoh presents a client certificate only with mTLS on.
        set("transport/link/tls/enable_mtls", "true".into());
        set(
            "transport/link/tls/connect_certificate",
            format!("{:?}", p.cert.display().to_string()),
        );
        set(
            "transport/link/tls/connect_private_key",
            format!("{:?}", p.key.display().to_string()),
        );
    }
    zenoh::open(c).wait().expect("test session")
}

/// Two bridges linked over mutual TLS (A listens and exports `topic`, B dials and
/// imports it), a 64-slot `Block` source on A and a subscriber on B, the exporter
/// attached. The certificates are in `dir`.
struct Linked {
    dir: PathBuf,
    good: Pki,
    pair: Pair,
    a: Proc,
    b: Proc,
    src: Publisher,
    sub: Subscriber,
}

fn linked(tag: &str, topic: &str) -> Linked {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = pki(&dir, "good");
    let mut pair = Pair::new(tag);
    pair.endpoint = format!("tls/127.0.0.1:{}", free_port());
    pair.topics(&[topic]);
    let roles = |role: &str| {
        let mut r = vec![role.to_owned(), topic.to_owned()];
        r.extend(tls_args(&good));
        r
    };
    let a = pair.bridge_a(
        &roles("--export")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let b = pair.bridge_b(
        &roles("--import")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let mut src = Publisher::create(
        topic,
        PublisherConfig::default()
            .prefix(pair.a.as_str())
            .overflow(Overflow::Block)
            .slots(64)
            .slot_size(64),
    )
    .unwrap();
    let sub = attach(&pair.b, topic);
    src.wait_for_subscribers(1, WAIT)
        .expect("the exporter attaches");
    Linked {
        dir,
        good,
        pair,
        a,
        b,
        src,
        sub,
    }
}

#[test]
fn bridges_over_mutual_tls_carry_a_topic_and_keep_uncertified_peers_out() {
    let Linked {
        dir,
        good,
        pair,
        a,
        b,
        mut src,
        mut sub,
    } = linked("tls", "secure");
    let topic = "secure";
    let rogue = pki(&dir, "rogue");
    // Each listens only where it was told: the listener on its TLS port, the dialling
    // bridge nowhere (Zenoh's default would add plain TCP on every interface, a way in
    // for a peer without a certificate).
    let port: u16 = pair.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    eventually("the TLS listener", || listening_ports(a.pid()) == [port]);
    assert_eq!(listening_ports(b.pid()), Vec::<u16>::new());

    let mut next = 0u64;
    let mut send_and_check = |src: &mut Publisher, sub: &mut Subscriber, n: u64| {
        for _ in 0..n {
            src.send(&next.to_le_bytes()).unwrap();
            let m = sub
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("message {next}: {e}"));
            assert_eq!(m.bytes(), next.to_le_bytes());
            next += 1;
        }
    };
    send_and_check(&mut src, &mut sub, 500);

    // The exporting bridge's id, which an attacker on the network would learn.
    let zid = zid_of(&a);
    let keys = Keys::new(&pair.domain);
    let end = Stamp {
        seq: 0,
        publish_ns: 0,
        creation_id: 0,
        flags: END,
        lane: None,
    };
    // No certificate at all, and one from another CA: neither can join.
    for client in [None, Some(&rogue)] {
        let intruder = peer(&pair.endpoint, &good.ca, client);
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            intruder.info().peers_zid().wait().next().is_none(),
            "an uncertified peer joined ({})",
            if client.is_some() {
                "another CA"
            } else {
                "no certificate"
            }
        );
        for _ in 0..10 {
            intruder
                .put(keys.data(topic, &zid), b"forged".to_vec())
                .attachment(&end.encode()[..])
                .wait()
                .unwrap();
        }
        intruder.close().wait().unwrap();
    }
    // The topic goes on, whole, and ends only with its source.
    send_and_check(&mut src, &mut sub, 100);
    assert_eq!(sub.upstream_lost(), 0);
    drop(src);
    assert!(matches!(
        sub.recv_timeout(WAIT),
        Err(RecvTimeoutError::Disconnected)
    ));
    // A peer with the right certificate does join (the control for the check above; one
    // that joins while a topic flows is the next test's).
    let member = peer(&pair.endpoint, &good.ca, Some(&good));
    eventually("the certified peer joins", || {
        member.info().peers_zid().wait().next().is_some()
    });
    member.close().wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A certified third peer that joins the link and leaves while a topic flows makes the
/// exporter's Zenoh drop the importer's token and data subscription for a few
/// milliseconds and declare them again (docs/bridge.md): the topic must go on (a `Block`
/// export holds its source meanwhile), and what was put in that window is lost and
/// counted, never silently. Ten joins here (about 2 s); `RINGCAST_TLS_JOINS=N` runs N (by
/// hand, 2026-12-07: 7 messages lost in flight in 540 joins, and no stall).
#[test]
fn a_certified_peer_joining_and_leaving_mid_stream_loses_nothing_uncounted() {
    let Linked {
        dir,
        good,
        pair,
        // Bound, not `..`: the bridges must live to the end of the test.
        a: _a,
        b: _b,
        mut src,
        mut sub,
    } = linked("tlsj", "joined");
    // Sends without waiting for each message (one lost in flight must not stop the
    // test): takes what has arrived after every send, checking the order.
    let (mut sent, mut got, mut last) = (0u64, 0u64, None::<u64>);
    let mut pump = |src: &mut Publisher, sub: &mut Subscriber, n: u64, wait: Duration| {
        for _ in 0..n {
            src.send(&sent.to_le_bytes()).unwrap();
            sent += 1;
            while let Ok(m) = sub.recv_timeout(wait) {
                let v = u64::from_le_bytes(m.bytes().try_into().unwrap());
                assert!(last.is_none_or(|l| v > l), "{v} after {last:?}");
                last = Some(v);
                got += 1;
                if v + 1 == sent {
                    break;
                }
            }
        }
        (sent, got)
    };
    pump(&mut src, &mut sub, 200, WAIT);
    let joins: usize = std::env::var("RINGCAST_TLS_JOINS").map_or(10, |v| v.parse().unwrap());
    for _ in 0..joins {
        let member = peer(&pair.endpoint, &good.ca, Some(&good));
        pump(&mut src, &mut sub, 50, Duration::from_millis(20));
        eventually("the certified peer joins", || {
            member.info().peers_zid().wait().next().is_some()
        });
        pump(&mut src, &mut sub, 50, Duration::from_millis(20));
        member.close().wait().unwrap();
        pump(&mut src, &mut sub, 100, Duration::from_millis(20));
    }
    // The topic goes on: the last message sent arrives.
    std::thread::sleep(Duration::from_millis(500));
    let (sent, got) = pump(&mut src, &mut sub, 1, WAIT);
    eprintln!(
        "{sent} sent, {got} received, {} counted lost",
        sub.upstream_lost()
    );
    assert_eq!(last, Some(sent - 1), "the last message arrives");
    assert_eq!(
        got + sub.upstream_lost(),
        sent,
        "every message arrived or was counted lost"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
