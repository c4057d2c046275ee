//! Shared topics (several publishers, one lane each) through two bridges: each remote
//! publisher becomes a local publisher of its own (distinct `Sample::publisher()`), its
//! messages in order; losses counted per lane; a publisher that leaves or is killed ends
//! its lane while the others flow on; the last one ends the topic; no echo when both
//! hosts publish the same shared name (the importer refuses to write into a local topic).

mod harness;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;
use ringcast::*;

const ROLE: &str = "RINGCAST_BRIDGE_LANES_CHILD";

fn shared(prefix: &str, overflow: Overflow, slots: u64) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(prefix)
        .overflow(overflow)
        .slots(slots)
        .slot_size(64)
        .max_publishers(3)
}

/// A message: the publisher's tag and its index.
fn msg(tag: u8, i: u64) -> [u8; 9] {
    let mut b = [tag; 9];
    b[1..].copy_from_slice(&i.to_le_bytes());
    b
}

fn parse(b: &[u8]) -> (u8, u64) {
    assert_eq!(b.len(), 9, "a 9-byte message");
    (
        b[0],
        u64::from_le_bytes(b[1..].try_into().expect("8 bytes")),
    )
}

/// What a subscriber received, per local publisher id: the tag and every index, in order.
#[derive(Default)]
struct Books {
    by_id: BTreeMap<PublisherId, (u8, Vec<u64>)>,
}

impl Books {
    fn take(&mut self, s: &Sample<'_>) {
        let (tag, i) = parse(s.bytes());
        let e = self.by_id.entry(s.publisher()).or_insert((tag, Vec::new()));
        assert_eq!(e.0, tag, "one local publisher carries one remote publisher");
        e.1.push(i);
    }

    fn id_of(&self, tag: u8) -> PublisherId {
        let ids: Vec<_> = self.by_id.iter().filter(|(_, v)| v.0 == tag).collect();
        assert_eq!(ids.len(), 1, "publisher {tag} has one local id: {:?}", ids);
        *ids[0].0
    }

    fn of(&self, tag: u8) -> Vec<u64> {
        self.by_id
            .values()
            .filter(|v| v.0 == tag)
            .flat_map(|v| v.1.iter().copied())
            .collect()
    }
}

/// The per-lane losses a stopped bridge printed for `topic` (empty if none).
fn lost_by_lane(log: &str, direction: &str, topic: &str) -> Vec<u64> {
    let head = format!("ringcast-bridge: {direction} {topic} lost by lane: ");
    log.lines()
        .find_map(|l| l.strip_prefix(head.as_str()))
        .map(|rest| {
            rest.split(' ')
                .map(|n| n.parse().expect("a count"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn two_remote_publishers_arrive_as_two_local_ones_each_in_order_and_end_one_by_one() {
    const N: u64 = 5_000;
    let mut pair = Pair::new("lanes");
    pair.topics(&["shared"]);
    let cfg = shared(&pair.a, Overflow::Block, 64);
    let mut p1 = Publisher::create("shared", cfg.clone()).expect("source");
    let mut p2 = Publisher::create("shared", cfg).expect("second publisher");
    let mut a = pair.bridge_a(&["--export", "shared"]);
    let mut b = pair.bridge_b(&["--import", "shared"]);
    // The local topic appears when the exporter attaches and says which lanes live.
    let mut sub = attach(&pair.b, "shared");
    p1.wait_for_subscribers(1, WAIT)
        .expect("A's bridge attaches");
    assert_eq!(sub.geometry().max_publishers, 3, "the source's lanes");
    assert!(sub.origin().is_some(), "marked imported");
    // Read while they send: a `Block` topic holds its publishers to what its rings and
    // the bridge's credit window take in.
    let reader = std::thread::spawn(move || {
        let mut books = Books::default();
        for k in 0..2 * N {
            let s = sub
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("message {k}: {e}"));
            books.take(&s);
        }
        (sub, books)
    });
    let t2 = std::thread::spawn(move || {
        for i in 0..N {
            p2.send(&msg(2, i)).unwrap();
        }
        p2
    });
    for i in 0..N {
        p1.send(&msg(1, i)).unwrap();
    }
    let mut p2 = t2.join().expect("p2's sender");
    let (mut sub, books) = reader.join().expect("the reader");
    // Each publisher's messages, all of them, in order, under an id of its own.
    assert_eq!(books.of(1), (0..N).collect::<Vec<_>>());
    assert_eq!(books.of(2), (0..N).collect::<Vec<_>>());
    let (id1, id2) = (books.id_of(1), books.id_of(2));
    assert_ne!(id1.lane, id2.lane);
    assert!(matches!(sub.try_recv(), Err(TryRecvError::Empty)));
    assert_eq!(sub.upstream_lost(), 0);

    // p1 leaves: its local lane ends, p2's messages go on.
    drop(p1);
    eventually("p1's local lane to end", || {
        sub.lane_publisher(id1.lane).is_none()
    });
    assert_eq!(sub.lane_publisher(id2.lane), Some(id2));
    for i in N..N + 100 {
        p2.send(&msg(2, i)).unwrap();
        let s = sub.recv_timeout(WAIT).expect("p2 flows on");
        assert_eq!((s.publisher(), parse(s.bytes())), (id2, (2, i)));
    }
    // The last one leaves: the local topic ends.
    drop(p2);
    match sub.recv_timeout(WAIT) {
        Err(RecvTimeoutError::Disconnected) => {}
        other => panic!("expected Disconnected, got {:?}", other.map(|s| s.seq())),
    }
    let (log_a, log_b) = stop_both(&mut a, &mut b);
    let (e, i) = (
        counts(&log_a, "Export", "shared"),
        counts(&log_b, "Import", "shared"),
    );
    assert_eq!((e.messages, i.messages), (2 * N + 100, 2 * N + 100));
    assert_eq!((e.lost, i.lost, i.refused), (0, 0, 0));
    assert!(
        !log_a.contains("not exporting"),
        "the shared topic was exported:\n{log_a}"
    );
}

#[test]
fn an_overwrite_shared_topic_counts_what_each_lane_lost() {
    const BURST: u64 = 1_000;
    const FEW: u64 = 10;
    let mut pair = Pair::new("lanelost");
    pair.topics(&["lossy"]);
    let cfg = shared(&pair.a, Overflow::Overwrite, 16);
    let mut p1 = Publisher::create("lossy", cfg.clone()).expect("source");
    let mut p2 = Publisher::create("lossy", cfg).expect("second publisher");
    let mut a = pair.bridge_a(&["--export", "lossy"]);
    let mut b = pair.bridge_b(&["--import", "lossy"]);
    let mut sub = attach(&pair.b, "lossy");
    p1.wait_for_subscribers(1, WAIT)
        .expect("A's bridge attaches");
    // Let the exporter's SYNCs (it reads each lane from 0) reach the importer.
    std::thread::sleep(Duration::from_millis(300));
    // With the exporter frozen, p1 laps it by far (a 16-slot ring); p2's few fit.
    freeze(&a);
    for i in 0..BURST {
        p1.send(&msg(1, i)).unwrap();
    }
    for i in 0..FEW {
        p2.send(&msg(2, i)).unwrap();
    }
    thaw(&a);
    let (l1, l2) = (p1.lane(), p2.lane());
    let mut books = Books::default();
    let mut lagged = 0;
    let deadline = Instant::now() + WAIT;
    // What arrives: p1's newest and all of p2's.
    while books.of(2).len() < FEW as usize || books.of(1).last() != Some(&(BURST - 1)) {
        assert!(Instant::now() < deadline, "the burst never arrived");
        match sub.recv_timeout(Duration::from_millis(100)) {
            Ok(s) => books.take(&s),
            Err(RecvTimeoutError::Lagged(n)) => lagged += n,
            Err(RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    drop((p1, p2));
    match sub.recv_timeout(WAIT) {
        Err(RecvTimeoutError::Disconnected) => {}
        other => panic!("expected Disconnected, got {:?}", other.map(|s| s.seq())),
    }
    let got1 = books.of(1);
    assert!(got1.windows(2).all(|w| w[0] < w[1]), "p1 in order");
    assert_eq!(books.of(2), (0..FEW).collect::<Vec<_>>(), "p2 lost nothing");
    let upstream = sub.upstream_lost();
    let (log_a, log_b) = stop_both(&mut a, &mut b);
    let lanes = lost_by_lane(&log_b, "Import", "lossy");
    let lane_lost = |l: usize| lanes.get(l).copied().unwrap_or(0);
    // Every message of p1 was received, lapped here, or counted lost in p1's lane.
    assert!(
        lane_lost(l1) > 0,
        "p1 lapped the exporter: {lanes:?}\n{log_b}"
    );
    assert_eq!(
        got1.len() as u64 + lagged + lane_lost(l1),
        BURST,
        "{lanes:?}"
    );
    assert_eq!(lane_lost(l2), 0, "{lanes:?}");
    // The topic's `upstream_lost` is the lanes' sum, as the importer's count.
    assert_eq!(upstream, lanes.iter().sum::<u64>());
    assert_eq!(counts(&log_b, "Import", "lossy").lost, upstream);
    let export_lanes = lost_by_lane(&log_a, "Export", "lossy");
    assert_eq!(
        export_lanes.get(l1).copied().unwrap_or(0),
        lane_lost(l1),
        "the exporter was lapped in p1's lane, and only there: {export_lanes:?}"
    );
}

/// A publisher of the shared topic `killed` in its own process: publishes its index
/// every millisecond until killed.
#[test]
#[ignore = "a child process of the lane-kill test"]
fn lane_child() {
    let Ok(prefix) = std::env::var(ROLE) else {
        return;
    };
    let mut p = Publisher::create("killed", shared(&prefix, Overflow::Block, 64)).expect("join");
    for i in 0u64.. {
        p.send(&msg(9, i)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn spawn_lane_child(prefix: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lane_child", "--ignored", "--nocapture"])
        .env(ROLE, prefix)
        .stdout(Stdio::null())
        .spawn()
        .expect("lane child")
}

#[test]
fn a_remote_publisher_killed_mid_burst_ends_its_lane_and_the_others_flow_on() {
    let mut pair = Pair::new("lanekill");
    pair.topics(&["killed"]);
    let mut keeper =
        Publisher::create("killed", shared(&pair.a, Overflow::Block, 64)).expect("source");
    let mut a = pair.bridge_a(&["--export", "killed"]);
    let mut b = pair.bridge_b(&["--import", "killed"]);
    let mut child = spawn_lane_child(&pair.a);
    let mut sub = attach(&pair.b, "killed");
    keeper
        .wait_for_subscribers(1, WAIT)
        .expect("A's bridge attaches");
    // Both publishers' messages arrive, each in order.
    let mut books = Books::default();
    let mut i = 0;
    while books.of(9).len() < 200 {
        keeper.send(&msg(1, i)).unwrap();
        i += 1;
        while let Ok(s) = sub.recv_timeout(Duration::from_millis(1)) {
            books.take(&s);
        }
    }
    let killed = books.id_of(9);
    child.kill().unwrap();
    child.wait().unwrap();
    // The killed publisher's lane ends here; the keeper goes on, nothing out of order.
    let t = Instant::now();
    while sub.lane_publisher(killed.lane).is_some() {
        assert!(t.elapsed() < WAIT, "the killed lane never ended");
        keeper.send(&msg(1, i)).unwrap();
        i += 1;
        while let Ok(s) = sub.recv_timeout(Duration::from_millis(1)) {
            books.take(&s);
        }
    }
    eprintln!("killed lane ended after {:?}", t.elapsed());
    for _ in 0..100 {
        keeper.send(&msg(1, i)).unwrap();
        i += 1;
    }
    loop {
        let s = sub.recv_timeout(WAIT).expect("the keeper flows on");
        books.take(&s);
        if parse(s.bytes()) == (1, i - 1) {
            break;
        }
    }
    assert_eq!(books.of(1), (0..i).collect::<Vec<_>>());
    // The child may have published before the exporter attached: from there on, all.
    let nine = books.of(9);
    let first = nine[0];
    assert_eq!(nine, (first..first + nine.len() as u64).collect::<Vec<_>>());
    assert!(sub.publisher_alive(), "the keeper still publishes");
    drop(keeper);
    match sub.recv_timeout(WAIT) {
        Err(RecvTimeoutError::Disconnected) => {}
        other => panic!("expected Disconnected, got {:?}", other.map(|s| s.seq())),
    }
    let (_, log_b) = stop_both(&mut a, &mut b);
    assert_eq!(counts(&log_b, "Import", "killed").refused, 0);
}

#[test]
fn no_echo_when_both_hosts_publish_a_shared_topic() {
    let mut pair = Pair::new("laneecho");
    pair.topics(&["both"]);
    // Local publishers on both hosts before the bridges start.
    let mut pa = Publisher::create("both", shared(&pair.a, Overflow::Block, 256)).unwrap();
    let mut pb = Publisher::create("both", shared(&pair.b, Overflow::Block, 256)).unwrap();
    let mut sa = attach(&pair.a, "both");
    let mut sb = attach(&pair.b, "both");
    let roles = ["--export", "both", "--import", "both"];
    let mut a = pair.bridge_a(&roles);
    let mut b = pair.bridge_b(&roles);
    // Each importer refuses to write into the other's local topic ...
    eventually("both importers refuse", || {
        a.log().contains("a local publisher has this topic")
            && b.log().contains("a local publisher has this topic")
    });
    // ... so it declares no importing token, and neither exporter reads its source
    // (nothing crosses the link for a topic nobody imports).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!((pa.subscriber_count(), pb.subscriber_count()), (1, 1));
    for i in 0..100 {
        pa.send(&msg(1, i)).unwrap();
        pb.send(&msg(2, i)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    for (s, tag, own) in [(&mut sa, 1, pa.id()), (&mut sb, 2, pb.id())] {
        for i in 0..100 {
            let m = s.recv_timeout(WAIT).expect("a local message");
            assert_eq!((m.publisher(), parse(m.bytes())), (own, (tag, i)));
        }
        assert!(
            matches!(s.try_recv(), Err(TryRecvError::Empty)),
            "a remote or echoed message"
        );
        assert!(s.origin().is_none(), "still a local topic");
    }
    let (log_a, log_b) = stop_both(&mut a, &mut b);
    for log in [&log_a, &log_b] {
        let c = counts(log, "Import", "both");
        assert_eq!(c.messages, 0, "nothing imported into a local topic:\n{log}");
        assert!(c.refused > 0, "{log}");
        assert_eq!(counts(log, "Export", "both").messages, 0, "{log}");
    }
}

/// A second importer that appears while the export of a shared `Block` topic is parked,
/// and one lane's publisher has left with messages the exporter has not read: the SYNC
/// for the newcomer names that lane, so the newcomer credits it and the topic flows on
/// to the end (without it the newcomer never heard of the lane, its credit held the lane
/// at the window from where it was first told, and the first importer stalled).
#[test]
fn a_new_importer_while_parked_hears_of_a_lane_whose_writer_left() {
    let mut pair = Pair::new("lanepark");
    let topic = "parked";
    pair.topics(&[topic]);
    let c_prefix = format!("{}c", pair.b);
    let cfg = shared(&pair.a, Overflow::Block, 64);
    let mut p1 = Publisher::create(topic, cfg.clone()).expect("source");
    // Keeps the topic open after p1 leaves; never sends.
    let p2 = Publisher::create(topic, cfg).expect("second publisher");
    let _a = pair.bridge_a(&["--export", topic]);
    let _b = pair.bridge_b(&["--import", topic]);
    // B's subscriber reads nothing yet: B's ring and backlog fill and its credit parks
    // the export, and then p1's ring fills.
    let mut sub_b = attach(&pair.b, topic);
    p1.wait_for_subscribers(1, WAIT)
        .expect("A's bridge attaches");
    let mut sent = 0u64;
    let mut full_since: Option<Instant> = None;
    let t = Instant::now();
    loop {
        match p1.try_send(&msg(1, sent)) {
            Ok(_) => {
                sent += 1;
                full_since = None;
            }
            Err(SendError::Full) => {
                let since = *full_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(500) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("send: {e}"),
        }
        assert!(t.elapsed() < WAIT, "the export never parked ({sent} sent)");
    }
    // p1 leaves with a ring of messages the exporter has not read.
    drop(p1);
    let c_args: Vec<String> = [
        "--prefix",
        c_prefix.as_str(),
        "--domain",
        pair.domain.as_str(),
        "--connect",
        pair.endpoint.as_str(),
        "--import",
        topic,
    ]
    .map(str::to_owned)
    .to_vec();
    let mut c = Proc::spawn(&c_args);
    let sub_c = attach(&c_prefix, topic);
    // Let C's token and first credit reach the exporter before B drains.
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..sent {
        let m = sub_b
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("message {i} of {sent}: {e}"));
        assert_eq!(parse(m.bytes()), (1, i));
    }
    assert_eq!(sub_b.upstream_lost(), 0);
    drop(p2);
    // C's bridge first: its import would outlive a removal made while it runs.
    drop(sub_c);
    c.kill();
    let _ = ringcast::inspect::remove(&c_prefix, topic);
    assert!(
        ringcast::name::list_topics(&c_prefix).unwrap().is_empty(),
        "C's import left behind"
    );
}
