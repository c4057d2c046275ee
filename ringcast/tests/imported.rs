//! Imported topics (what a bridge creates): the origin travels in the segment, bad
//! origins are refused, a subscriber that received a message sees every upstream loss
//! counted before it, and an abandoned publisher (a relay whose source died) reads as a
//! dead one, not a closed one, and its name is reclaimed.

mod common;

use common::*;
use ringcast::*;

#[test]
fn origin_and_upstream_losses_reach_subscribers() {
    let n = Names::new("imp", "origin");
    let mut p = Publisher::create(
        &n.topic,
        PublisherConfig::default()
            .prefix(n.prefix.as_str())
            .overflow(Overflow::Block)
            .imported_from("host-a:rc (bridge 1)"),
    )
    .unwrap();
    let mut s = Subscriber::attach(
        &n.topic,
        SubscriberOptions::default().prefix(n.prefix.as_str()),
    )
    .unwrap();
    assert_eq!(s.origin().as_deref(), Some("host-a:rc (bridge 1)"));
    assert_eq!(s.upstream_lost(), 0);
    let mut total = 0;
    for (i, gap) in [0u64, 3, 0, 10, 1].into_iter().enumerate() {
        if gap > 0 {
            p.count_upstream_loss(gap);
            total += gap;
        }
        p.send(&(i as u64).to_le_bytes()).unwrap();
        let m = s.recv().unwrap();
        assert_eq!(m.bytes(), (i as u64).to_le_bytes());
        drop(m);
        assert_eq!(s.upstream_lost(), total, "after message {i}");
    }
    let g = *p.geometry();
    assert_eq!(*s.geometry(), g);
    let info = ringcast::inspect::inspect(&n.prefix, &n.topic).unwrap();
    assert_eq!(
        (info.origin.as_deref(), info.upstream_lost),
        (Some("host-a:rc (bridge 1)"), 14)
    );
}

#[test]
fn a_local_topic_has_no_origin() {
    let n = Names::new("imp", "local");
    let _p = Publisher::create(
        &n.topic,
        PublisherConfig::default().prefix(n.prefix.as_str()),
    )
    .unwrap();
    let s = Subscriber::attach(
        &n.topic,
        SubscriberOptions::default().prefix(n.prefix.as_str()),
    )
    .unwrap();
    assert_eq!((s.origin(), s.upstream_lost()), (None, 0));
}

#[test]
fn bad_origins_are_refused_with_a_typed_error() {
    let n = Names::new("imp", "bad");
    for origin in [
        "x".repeat(113),
        "line\nbreak".to_owned(),
        "tab\there".to_owned(),
        String::new(),
    ] {
        match Publisher::create(
            &n.topic,
            PublisherConfig::default()
                .prefix(n.prefix.as_str())
                .imported_from(origin.clone()),
        ) {
            Err(CreateError::Config {
                source: ConfigError::Origin(o),
                ..
            }) => assert_eq!(o, origin),
            other => panic!("{origin:?}: {:?}", other.err()),
        }
    }
    // 112 bytes of UTF-8 is the limit, and fits.
    let ok = "é".repeat(56);
    let _p = Publisher::create(
        &n.topic,
        PublisherConfig::default()
            .prefix(n.prefix.as_str())
            .imported_from(ok.clone()),
    )
    .unwrap();
    let s = Subscriber::attach(
        &n.topic,
        SubscriberOptions::default().prefix(n.prefix.as_str()),
    )
    .unwrap();
    assert_eq!(s.origin(), Some(ok));
}

#[test]
fn an_abandoned_publisher_reads_as_a_dead_one_and_its_name_is_reclaimed() {
    let n = Names::new("imp", "abandon");
    let cfg = PublisherConfig::default()
        .prefix(n.prefix.as_str())
        .overflow(Overflow::Block);
    let opts = SubscriberOptions::default().prefix(n.prefix.as_str());
    for abandon in [true, false] {
        let mut p = Publisher::create(&n.topic, cfg.clone()).unwrap();
        let mut s = Subscriber::attach(&n.topic, opts.clone()).unwrap();
        p.send(b"last").unwrap();
        if abandon {
            p.abandon();
        } else {
            drop(p);
        }
        // What was published arrives, then the end: closed, or not (a dead publisher's).
        assert_eq!(&s.recv().unwrap()[..], b"last");
        assert!(matches!(s.recv(), Err(RecvError::Disconnected)));
        assert_eq!(s.closed_by_publisher(), !abandon);
        drop(s);
        // An abandoned topic's name stays (as a crashed publisher's) until reclaimed.
        let exists = std::path::Path::new(&format!("/dev/shm/{}.{}", n.prefix, n.topic)).exists();
        assert_eq!(exists, abandon);
    }
    // A new publisher reclaims the dead one's name.
    let p = Publisher::create(&n.topic, cfg.clone()).unwrap();
    p.abandon();
    let _again = Publisher::create(&n.topic, cfg).expect("the dead name is reclaimed");
}
