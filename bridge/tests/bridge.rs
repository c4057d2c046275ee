//! Messages through two bridges: raw and typed topics under both policies, in order and
//! byte-exact; losses counted exactly; no echo.

mod harness;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness::*;
use ringcast::*;
use rkyv::{Archive, Deserialize, Serialize};

const N: u64 = 100_000;
const CAP: usize = 1024;

fn source(pair: &Pair, topic: &str, overflow: Overflow, slots: u64) -> Publisher {
    Publisher::create(
        topic,
        PublisherConfig::default()
            .prefix(pair.a.as_str())
            .overflow(overflow)
            .slots(slots)
            .slot_size(CAP as u64),
    )
    .expect("source topic")
}

/// Sends message `i` of the all-sizes stream.
fn send_patterned(p: &mut Publisher, i: u64) {
    let len = len_of(i, CAP);
    let mut loan = p.loan();
    let bytes: Vec<u8> = (0..len).map(|j| pattern(i, j)).collect();
    loan.write_at(0, &bytes);
    loan.commit(len);
}

/// Receives the all-sizes stream `0..n` on `sub`, byte-exact and in order, then the end;
/// returns how many messages were skipped on the way (`Overwrite` may drop a few: each
/// one received is matched to the first index at or after the expected one with its
/// length and bytes, which is exact while fewer than `CAP + 1` in a row are lost).
fn expect_stream(sub: &mut Subscriber, n: u64, progress: &AtomicU64, lossy: bool) -> u64 {
    let (mut next, mut skipped) = (0u64, 0u64);
    while next < n {
        let s = match sub.recv_timeout(WAIT) {
            Ok(s) => s,
            Err(RecvTimeoutError::Lagged(_)) if lossy => continue,
            Err(RecvTimeoutError::Disconnected) if lossy => break,
            Err(e) => panic!("message {next}: {e}"),
        };
        let b = s.bytes();
        let matches = |i: u64| {
            b.len() == len_of(i, CAP) && b.iter().enumerate().all(|(j, &x)| x == pattern(i, j))
        };
        let i = match lossy {
            false => next,
            true => (next..n)
                .take(CAP + 1)
                .find(|&i| matches(i))
                .unwrap_or(next),
        };
        assert!(
            matches(i),
            "message {i}: length {} or bytes differ",
            b.len()
        );
        skipped += i - next;
        next = i + 1;
        drop(s);
        // Relaxed: a pacing hint for the sender, nothing is published through it.
        progress.store(next, Ordering::Relaxed);
    }
    match sub.recv_timeout(WAIT) {
        Err(RecvTimeoutError::Disconnected) => {}
        Err(RecvTimeoutError::Lagged(_)) if lossy => {}
        other => panic!(
            "expected the end after {n} messages, got {:?}",
            other.map(|s| s.seq())
        ),
    }
    skipped + (n - next)
}

/// One raw topic across the pair: every message, in order, byte-exact; under `Block`
/// nothing lost, under `Overwrite` (paced by `window`, so losses are rare) every loss
/// counted as lapped or upstream.
fn raw_stream(tag: &str, overflow: Overflow, window: Option<u64>) {
    let mut pair = Pair::new(tag);
    let topic = "stream";
    pair.topics(&[topic]);
    let _a = pair.bridge_a(&["--export", topic]);
    let _b = pair.bridge_b(&["--import", topic]);
    let mut src = source(&pair, topic, overflow, 4096);
    let mut sub = attach(&pair.b, topic);
    // The import re-creates the source's geometry, policy and type, marked as imported.
    let g = *sub.geometry();
    assert_eq!(
        (g.slot_count, g.slot_capacity, g.overflow),
        (4096, CAP as u64, overflow)
    );
    let origin = sub.origin().expect("an imported topic names its origin");
    assert!(origin.contains(&pair.a), "origin {origin:?}");
    src.wait_for_subscribers(1, WAIT)
        .expect("the exporter attaches");
    let progress = Arc::new(AtomicU64::new(0));
    let seen = progress.clone();
    let lossy = overflow == Overflow::Overwrite;
    let rx = std::thread::spawn(move || {
        let skipped = expect_stream(&mut sub, N, &seen, lossy);
        (skipped, sub.lost(), sub.upstream_lost())
    });
    for i in 0..N {
        if let Some(w) = window {
            // Relaxed: see `expect_stream`. A receiver that gave up ends the pacing.
            while i >= progress.load(Ordering::Relaxed) + w && !rx.is_finished() {
                std::thread::yield_now();
            }
        }
        send_patterned(&mut src, i);
    }
    drop(src);
    let (skipped, lapped, upstream) = rx.join().expect("receiver");
    eprintln!("skipped {skipped}: lapped {lapped}, lost upstream {upstream}");
    assert_eq!(
        skipped,
        lapped + upstream,
        "every skipped message is counted"
    );
    if !lossy {
        assert_eq!(skipped, 0, "a Block topic loses nothing");
    }
}

#[test]
fn block_raw_topic_carries_every_size_in_order_byte_exact() {
    raw_stream("blk", Overflow::Block, None);
}

#[test]
fn overwrite_raw_topic_carries_every_size_in_order_when_paced() {
    // Paced well inside both rings: only Zenoh's congestion drops can lose messages.
    raw_stream("ovw", Overflow::Overwrite, Some(256));
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(compare(PartialEq), derive(Debug))]
struct Pose {
    seq: u64,
    xyz: [f64; 3],
    frame: String,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[rkyv(compare(PartialEq), derive(Debug))]
struct Other {
    seq: u64,
}

fn pose(i: u64) -> Pose {
    Pose {
        seq: i,
        xyz: [i as f64, -(i as f64), 0.5],
        frame: format!("frame-{}", i % 97),
    }
}

fn typed_stream(tag: &str, overflow: Overflow) {
    const M: u64 = 20_000;
    let mut pair = Pair::new(tag);
    let topic = "pose";
    pair.topics(&[topic]);
    let _a = pair.bridge_a(&["--export", topic]);
    let _b = pair.bridge_b(&["--import", topic]);
    let cfg = PublisherConfig::default()
        .prefix(pair.a.as_str())
        .overflow(overflow)
        .slots(4096)
        .slot_size(256);
    let mut src = TypedPublisher::<Pose>::create(topic, cfg).expect("typed source");
    let opts = || SubscriberOptions::default().prefix(pair.b.as_str());
    let mut sub = TypedSubscriber::<Pose>::attach_wait(topic, opts(), WAIT).expect("typed import");
    // The fingerprint travelled: a subscriber of another type is refused by name.
    match TypedSubscriber::<Other>::attach(topic, opts()) {
        Err(AttachError::TypeMismatch { .. }) => {}
        other => panic!("expected a type mismatch, got {:?}", other.err()),
    }
    // Wait for the exporter through a raw view of the source's subscriber count.
    let progress = Arc::new(AtomicU64::new(0));
    let seen = progress.clone();
    let rx = std::thread::spawn(move || {
        let (mut next, mut skipped) = (0u64, 0u64);
        loop {
            match sub.recv_timeout(WAIT) {
                Ok(s) => {
                    let p = s.deserialize().expect("valid");
                    assert!(p.seq >= next, "pose {} after {next}: out of order", p.seq);
                    assert_eq!(p, pose(p.seq));
                    skipped += p.seq - next;
                    next = p.seq + 1;
                    // Relaxed: a pacing hint.
                    seen.store(next, Ordering::Relaxed);
                }
                Err(TypedRecvError::Recv(RecvTimeoutError::Lagged(_))) => {}
                Err(TypedRecvError::Recv(RecvTimeoutError::Disconnected)) => break,
                Err(e) => panic!("pose {next}: {e}"),
            }
        }
        (skipped + (M - next), sub.lost(), sub.upstream_lost())
    });
    eventually("the exporter to attach", || {
        ringcast::inspect::inspect(&pair.a, topic).is_ok_and(|i| !i.subscribers.is_empty())
    });
    for i in 0..M {
        // Relaxed: see above. Paced under both policies; a receiver that gave up ends it.
        while i >= progress.load(Ordering::Relaxed) + 256 && !rx.is_finished() {
            std::thread::yield_now();
        }
        src.send(&pose(i)).expect("send");
    }
    drop(src);
    let (skipped, lapped, upstream) = rx.join().expect("receiver");
    eprintln!("skipped {skipped}: lapped {lapped}, lost upstream {upstream}");
    assert_eq!(skipped, lapped + upstream, "every skipped pose is counted");
    if overflow == Overflow::Block {
        assert_eq!(skipped, 0, "a Block topic loses nothing");
    }
}

#[test]
fn typed_block_topic_keeps_its_type_check_across_the_bridge() {
    typed_stream("tyb", Overflow::Block);
}

#[test]
fn typed_overwrite_topic_keeps_its_type_check_across_the_bridge() {
    typed_stream("tyo", Overflow::Overwrite);
}

#[test]
fn overwrite_losses_are_counted_exactly() {
    // A tight 8-slot source the exporter cannot keep up with, and a slow local subscriber
    // on a small imported ring: losses on both sides of the link.
    let mut pair = Pair::new("loss");
    let topic = "lossy";
    pair.topics(&[topic]);
    let _a = pair.bridge_a(&["--export", topic]);
    let _b = pair.bridge_b(&["--import", topic]);
    let mut src = source(&pair, topic, Overflow::Overwrite, 8);
    let mut sub = attach(&pair.b, topic);
    src.wait_for_subscribers(1, WAIT)
        .expect("the exporter attaches");
    let rx = std::thread::spawn(move || {
        let (mut got, mut lagged, mut prev, mut gaps) = (0u64, 0u64, -1i64, 0u64);
        loop {
            match sub.recv_timeout(WAIT) {
                Ok(s) => {
                    let i = u64::from_le_bytes(s.bytes()[..8].try_into().unwrap()) as i64;
                    assert!(i > prev, "out of order: {i} after {prev}");
                    gaps += (i - prev - 1) as u64;
                    prev = i;
                    got += 1;
                    if got % 64 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                Err(RecvTimeoutError::Lagged(n)) => lagged += n,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("{e}"),
            }
        }
        gaps += (N as i64 - prev - 1) as u64;
        (got, lagged, gaps, sub.upstream_lost())
    });
    for i in 0..N {
        let mut payload = [0u8; 16];
        payload[..8].copy_from_slice(&i.to_le_bytes());
        src.send(&payload).unwrap();
    }
    drop(src);
    let (got, lagged, gaps, upstream) = rx.join().expect("receiver");
    eprintln!("received {got}, lapped locally {lagged}, lost upstream {upstream}");
    assert!(
        upstream > 0,
        "an 8-slot source sent flat out must outrun the exporter"
    );
    assert_eq!(
        got + lagged + upstream,
        N,
        "every message is received or counted"
    );
    assert_eq!(gaps, lagged + upstream, "the counts are where the gaps are");
}

#[test]
fn no_echo_when_both_bridges_export_and_import_the_same_names() {
    let mut pair = Pair::new("echo");
    let (t1, t2) = ("left", "right");
    pair.topics(&[t1, t2]);
    let both = [
        "--export", t1, "--import", t1, "--export", t2, "--import", t2,
    ];
    let mut a = pair.bridge_a(&both);
    let mut b = pair.bridge_b(&both);
    // t1 lives on A, t2 on B: each is imported on the other side, never back.
    let mut p1 = source(&pair, t1, Overflow::Block, 64);
    let mut p2 = Publisher::create(
        t2,
        PublisherConfig::default()
            .prefix(pair.b.as_str())
            .overflow(Overflow::Block)
            .slots(64),
    )
    .unwrap();
    let mut s1 = attach(&pair.b, t1);
    let mut s2 = attach(&pair.a, t2);
    p1.wait_for_subscribers(1, WAIT).unwrap();
    eventually("the exporter of t2", || p2.subscriber_count() == 1);
    for i in 0..1000u64 {
        p1.send(&i.to_le_bytes()).unwrap();
        p2.send(&i.to_le_bytes()).unwrap();
    }
    for (s, name) in [(&mut s1, t1), (&mut s2, t2)] {
        for i in 0..1000u64 {
            let m = s
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("{name} {i}: {e}"));
            assert_eq!(m.bytes(), i.to_le_bytes());
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    // Each source has exactly one subscriber (its exporter): nobody imported it back.
    assert_eq!(p1.subscriber_count(), 1);
    assert_eq!(p2.subscriber_count(), 1);
    for (s, name) in [(&mut s1, t1), (&mut s2, t2)] {
        assert!(
            matches!(s.try_recv(), Err(TryRecvError::Empty)),
            "{name}: a message came twice"
        );
        assert!(s.origin().is_some(), "{name} is marked as imported");
    }
    for (bridge, host) in [(&mut a, "A"), (&mut b, "B")] {
        let status = bridge.interrupt();
        assert!(
            status.success(),
            "bridge {host}: {status:?}\n{}",
            bridge.log()
        );
        assert!(
            bridge
                .log()
                .contains("not exporting a topic that is itself imported"),
            "bridge {host} log:\n{}",
            bridge.log()
        );
    }
}

#[test]
fn imports_get_the_mode_asked_for() {
    use std::os::unix::fs::PermissionsExt;
    for (mode, want) in [(None, 0o600), (Some("640"), 0o640)] {
        let mut pair = Pair::new("mode");
        let topic = "moded";
        pair.topics(&[topic]);
        let _a = pair.bridge_a(&["--export", topic]);
        let mut roles = vec!["--import", topic];
        if let Some(m) = mode {
            roles.extend(["--mode", m]);
        }
        let _b = pair.bridge_b(&roles);
        let _src = source(&pair, topic, Overflow::Block, 64);
        let _sub = attach(&pair.b, topic);
        let path = format!("/dev/shm/{}.{topic}", pair.b);
        let got = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, want, "mode of {path} with --mode {mode:?}");
    }
}

/// A small-message source on host A (8-byte payloads in 64-byte slots).
fn small_source(pair: &Pair, topic: &str, overflow: Overflow, slots: u64) -> Publisher {
    Publisher::create(
        topic,
        PublisherConfig::default()
            .prefix(pair.a.as_str())
            .overflow(overflow)
            .slots(slots)
            .slot_size(64),
    )
    .expect("source topic")
}

#[test]
fn an_import_ring_holds_one_batch_within_the_import_limit() {
    // 64 B slots, 64 of them at the source. Default batches (32 KiB): 512 slots at the
    // import; 1 KiB batches: the source's 64; a limit of 40 KiB: what fits (128 slots
    // of 208 counted bytes each); and the messages all arrive through each.
    let cases: [(&[&str], u64); 3] = [
        (&[], 512),
        (&["--max-batch-bytes", "1024"], 64),
        (&["--max-import-bytes", "40960"], 128),
    ];
    for (i, (flags, want)) in cases.into_iter().enumerate() {
        let mut pair = Pair::new(&format!("isl{i}"));
        let topic = "sized";
        pair.topics(&[topic]);
        let _a = pair.bridge_a(&["--export", topic]);
        let mut roles = vec!["--import", topic];
        roles.extend(flags);
        let _b = pair.bridge_b(&roles);
        let mut src = small_source(&pair, topic, Overflow::Block, 64);
        let mut sub = attach(&pair.b, topic);
        let got = ringcast::inspect::inspect(&pair.b, topic)
            .expect("the import")
            .geometry
            .slot_count;
        assert_eq!(got, want, "import slots with {flags:?}");
        // The exporter attaches to the source once an importer is there: what is sent
        // before that goes to nobody.
        src.wait_for_subscribers(1, WAIT)
            .expect("the exporter attaches");
        for m in 0..1000u64 {
            src.send(&m.to_le_bytes()).unwrap();
        }
        for m in 0..1000u64 {
            let s = sub
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("message {m} with {flags:?}: {e}"));
            assert_eq!(s.bytes(), m.to_le_bytes(), "with {flags:?}");
        }
    }
}

/// Stops both bridges (SIGINT) and returns their logs, A's then B's.
#[test]
fn a_burst_of_small_messages_goes_in_batches_each_once_and_in_order() {
    // The exporting bridge is frozen while a burst goes into its ring, so that all of it
    // waits when it resumes: it must go in batches. More follow flat out.
    const BURST: u64 = 4000;
    const M: u64 = 50_000;
    let mut pair = Pair::new("bat");
    let topic = "burst";
    pair.topics(&[topic]);
    let mut a = pair.bridge_a(&["--export", topic]);
    let mut b = pair.bridge_b(&["--import", topic]);
    let mut src = small_source(&pair, topic, Overflow::Block, 4096);
    let mut sub = attach(&pair.b, topic);
    src.wait_for_subscribers(1, WAIT)
        .expect("the exporter attaches");
    freeze(&a);
    for i in 0..BURST {
        // Fewer than the ring's slots: never waits for the frozen exporter.
        src.send(&i.to_le_bytes()).unwrap();
    }
    thaw(&a);
    let rx = std::thread::spawn(move || {
        for i in 0..M {
            let m = sub
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("message {i}: {e}"));
            assert_eq!(m.bytes(), i.to_le_bytes(), "message {i}");
        }
        match sub.recv_timeout(WAIT) {
            Err(RecvTimeoutError::Disconnected) => {}
            other => panic!("expected the end, got {:?}", other.map(|s| s.seq())),
        }
        (sub.lost(), sub.upstream_lost())
    });
    for i in BURST..M {
        src.send(&i.to_le_bytes()).unwrap();
    }
    drop(src);
    assert_eq!(rx.join().expect("receiver"), (0, 0), "nothing lost");
    let (log_a, log_b) = stop_both(&mut a, &mut b);
    let (out, inn) = (
        counts(&log_a, "Export", topic),
        counts(&log_b, "Import", topic),
    );
    eprintln!("export {out:?}\nimport {inn:?}");
    assert_eq!((out.messages, out.bytes, out.lost), (M, 8 * M, 0));
    assert_eq!(
        (inn.messages, inn.bytes, inn.lost, inn.refused),
        (M, 8 * M, 0, 0)
    );
    // The burst alone saves thousands of puts (at most 1024 messages in one).
    assert!(
        out.messages - out.puts >= BURST / 2,
        "the burst was not batched: {out:?}"
    );
    assert_eq!(inn.puts, out.puts, "every put arrived and was applied");
}

#[test]
fn overwrite_batches_count_every_loss_exactly_with_a_slow_importing_subscriber() {
    // The exporter is frozen while a burst laps it (losses upstream, inside and between
    // batches), and the importing host's subscriber reads nothing until the import has
    // closed, so it is lapped too (local losses): every message is received or counted,
    // each exactly once, where it was lost.
    const SLOTS: u64 = 1024;
    const BURST: u64 = 3000;
    let mut pair = Pair::new("obat");
    let topic = "lapped";
    pair.topics(&[topic]);
    let mut a = pair.bridge_a(&["--export", topic]);
    let mut b = pair.bridge_b(&["--import", topic]);
    let mut src = small_source(&pair, topic, Overflow::Overwrite, SLOTS);
    let mut sub = attach(&pair.b, topic);
    src.wait_for_subscribers(1, WAIT)
        .expect("the exporter attaches");
    let imported = || ringcast::inspect::inspect(&pair.b, topic).map_or(0, |i| i.write_cursor);
    freeze(&a);
    for i in 0..BURST {
        src.send(&i.to_le_bytes()).unwrap();
    }
    thaw(&a);
    // Go on until the import has re-published more than its ring holds (the subscriber,
    // which reads nothing yet, is lapped), then a little more.
    let mut n = BURST;
    let t = std::time::Instant::now();
    while imported() <= SLOTS + 64 {
        assert!(t.elapsed() < WAIT, "the import stalls at {}", imported());
        for _ in 0..64 {
            src.send(&n.to_le_bytes()).unwrap();
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..5000 {
        src.send(&n.to_le_bytes()).unwrap();
        n += 1;
    }
    drop(src);
    eventually("the import to close", || {
        !matches!(
            ringcast::inspect::inspect(&pair.b, topic),
            Ok(i) if i.publisher_alive && !i.closed
        )
    });
    let (mut got, mut lagged, mut prev, mut gaps) = (0u64, 0u64, -1i64, 0u64);
    loop {
        match sub.recv_timeout(WAIT) {
            Ok(s) => {
                let i = u64::from_le_bytes(s.bytes().try_into().unwrap()) as i64;
                assert!(i > prev, "out of order: {i} after {prev}");
                gaps += (i - prev - 1) as u64;
                prev = i;
                got += 1;
            }
            Err(RecvTimeoutError::Lagged(k)) => lagged += k,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    gaps += (n as i64 - prev - 1) as u64;
    let upstream = sub.upstream_lost();
    let (log_a, log_b) = stop_both(&mut a, &mut b);
    let (out, inn) = (
        counts(&log_a, "Export", topic),
        counts(&log_b, "Import", topic),
    );
    eprintln!("sent {n}: received {got}, lapped locally {lagged}, lost upstream {upstream}");
    eprintln!("export {out:?}\nimport {inn:?}");
    assert_eq!(
        got + lagged + upstream,
        n,
        "every message is received or counted"
    );
    assert_eq!(gaps, lagged + upstream, "the counts are where the gaps are");
    assert!(lagged > 0, "the subscriber that read nothing was lapped");
    assert!(out.lost > 0, "the frozen exporter was lapped");
    assert!(
        upstream >= out.lost,
        "the exporter's losses are counted upstream"
    );
    assert_eq!(inn.lost, upstream, "the import counts what the topic shows");
    assert_eq!(
        inn.messages,
        got + lagged,
        "what the import published was received or lapped"
    );
    assert!(out.puts < out.messages, "nothing was batched: {out:?}");
}

#[test]
fn a_message_alone_goes_alone_and_at_once() {
    // Ping-pong through both bridges, one message in flight: each must go at once (an
    // exporter that waited to fill a batch would never answer) and in a put of its own.
    const ROUNDS: u64 = 500;
    let mut pair = Pair::new("pp");
    let (ping, pong) = ("ping", "pong");
    pair.topics(&[ping, pong]);
    let mut a = pair.bridge_a(&["--export", ping, "--import", pong]);
    let mut b = pair.bridge_b(&["--import", ping, "--export", pong]);
    let mut ping_src = small_source(&pair, ping, Overflow::Block, 64);
    let mut pong_src = Publisher::create(
        pong,
        PublisherConfig::default()
            .prefix(pair.b.as_str())
            .overflow(Overflow::Block)
            .slots(64)
            .slot_size(64),
    )
    .unwrap();
    let mut ping_sub = attach(&pair.b, ping);
    let mut pong_sub = attach(&pair.a, pong);
    ping_src.wait_for_subscribers(1, WAIT).expect("A exports");
    pong_src.wait_for_subscribers(1, WAIT).expect("B exports");
    let echo = std::thread::spawn(move || {
        for i in 0..ROUNDS {
            let m = ping_sub
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("ping {i}: {e}"));
            assert_eq!(m.bytes(), i.to_le_bytes());
            drop(m);
            pong_src.send(&i.to_le_bytes()).unwrap();
        }
    });
    for i in 0..ROUNDS {
        ping_src.send(&i.to_le_bytes()).unwrap();
        let m = pong_sub
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("pong {i}: {e}"));
        assert_eq!(m.bytes(), i.to_le_bytes());
    }
    echo.join().expect("echo");
    let (log_a, log_b) = stop_both(&mut a, &mut b);
    for (log, topic) in [(&log_a, ping), (&log_b, pong)] {
        let c = counts(log, "Export", topic);
        assert_eq!(
            (c.messages, c.puts),
            (ROUNDS, ROUNDS),
            "{topic}: one put per message"
        );
    }
}

#[test]
fn settings_the_bridge_cannot_work_with_are_bad_usage() {
    for (args, says) in [
        (&["--call-timeout-ms", "0"][..], "call timeout: 0 ms"),
        (&["--mode", "0"], "mode: 0 must include 600"),
        (&["--mode", "400"], "mode: 400 must include 600"),
        (&["--mode", "700"], "mode: 700 must include 600"),
    ] {
        let out = std::process::Command::new(BIN)
            .args(["--prefix", "rcbadsetting"])
            .args(args)
            .output()
            .expect("running the bridge");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}
