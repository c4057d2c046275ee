//! The `ringcast` tool on topics that several publishers share (`pub --max-publishers N`),
//! with real processes: `pub` creates or joins (a mismatch fails naming the field), `sub`
//! prints every publisher's lines and exits 0 after the last one; `inspect`, `list` and
//! `top` show the lanes (and nothing more for an exclusive topic); `hz` counts every lane;
//! `record` keeps each publisher's identity and `play` republishes each through its own
//! publisher; a SIGKILLed `pub` leaves the other going and `sub` printing it to the end.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, ChildStdin, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::*;

use ringcast::{
    Overflow, Publisher, PublisherConfig, PublisherId, RecvTimeoutError, Start, Subscriber,
    SubscriberOptions,
};

/// What this suite runs under its prefix (`rclanes<tag><pid>`) besides `ringcast` itself.
impl Prefix {
    /// `ringcast pub` with its standard input ours to write.
    fn pub_process(&self, args: &[&str]) -> (Child, ChildStdin) {
        let mut child = self
            .cmd(&[&["pub"][..], args].concat())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pub");
        let stdin = child.stdin.take().unwrap();
        (child, stdin)
    }
    /// `ringcast sub` with each line it prints sent to the receiver as it comes.
    fn sub_process(&self, args: &[&str]) -> (Child, Receiver<String>) {
        let mut child = self
            .cmd(&[&["sub"][..], args].concat())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sub");
        let out = child.stdout.take().unwrap();
        let rx = lines_of(out);
        (child, rx)
    }
    fn shared(&self, max: u64) -> PublisherConfig {
        PublisherConfig::default()
            .prefix(&self.0)
            .slots(64)
            .slot_size(256)
            .overflow(Overflow::Block)
            .max_publishers(max)
    }
    fn sub_opts(&self) -> SubscriberOptions {
        SubscriberOptions::default()
            .prefix(&self.0)
            .start(Start::Oldest)
    }
    fn live_lanes(&self, topic: &str) -> usize {
        ringcast::inspect::inspect(&self.0, topic)
            .map(|i| i.lanes.iter().filter(|l| l.alive).count())
            .unwrap_or(0)
    }
    fn subscribers(&self, topic: &str) -> usize {
        ringcast::inspect::inspect(&self.0, topic)
            .map(|i| i.subscribers.iter().filter(|s| s.alive).count())
            .unwrap_or(0)
    }
}

/// Every line `rx` gets until `sub` ends, then `sub`'s exit.
fn collect(sub: Child, rx: Receiver<String>) -> (Vec<String>, Output) {
    let out = finish(sub, LONG);
    (rx.iter().collect(), out)
}

/// The numbers of the lines `<tag> <n>` among `lines`, in the order printed.
fn numbers(lines: &[String], tag: &str) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(tag)?.strip_prefix(' ')?.parse().ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn two_pubs_share_a_topic_and_sub_prints_both_then_exits_zero() {
    let p = Prefix::new("lanes", "two");
    let n = 500u64;
    let (text_sub, text_rx) = p.sub_process(&["two", "--timeout", "60"]);
    let (json_sub, json_rx) = p.sub_process(&["two", "--timeout", "60", "--json"]);
    let args = ["two", "--max-publishers", "4", "--wait-subscribers", "2"];
    let (mut a, mut a_in) = p.pub_process(&args);
    wait_until("the first pub to create the topic", || {
        p.live_lanes("two") == 1
    });
    let (mut b, mut b_in) = p.pub_process(&args);
    // Both in before either ends: a topic whose only publisher left is over.
    wait_until("the second pub to join", || p.live_lanes("two") == 2);
    for i in 0..n {
        writeln!(a_in, "a {i}").unwrap();
        writeln!(b_in, "b {i}").unwrap();
    }
    drop((a_in, b_in));
    for (name, child) in [("a", &mut a), ("b", &mut b)] {
        assert_eq!(child.wait().unwrap().code(), Some(0), "pub {name}");
    }
    let (lines, out) = collect(text_sub, text_rx);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        numbers(&lines, "a"),
        (0..n).collect::<Vec<_>>(),
        "a's lines"
    );
    assert_eq!(
        numbers(&lines, "b"),
        (0..n).collect::<Vec<_>>(),
        "b's lines"
    );
    assert_eq!(lines.len() as u64, 2 * n);

    // --json says whose each message is: two publishers, each with its lines in order
    // and its lane's sequence.
    let (lines, out) = collect(json_sub, json_rx);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut by_publisher: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for l in &lines {
        let field = |name: &str| {
            let start = l.find(&format!("\"{name}\":")).expect(name) + name.len() + 3;
            let rest = &l[start..];
            rest[..rest.find([',', '}']).unwrap()]
                .trim_matches('"')
                .to_owned()
        };
        by_publisher
            .entry(field("publisher"))
            .or_default()
            .push((field("seq").parse().unwrap(), field("data_hex")));
    }
    assert_eq!(
        by_publisher.len(),
        2,
        "two publishers: {:?}",
        by_publisher.keys()
    );
    let mut tags = Vec::new();
    for (who, got) in &by_publisher {
        assert!(
            who.split('/').count() == 2,
            "publisher {who:?} is LANE/WRITER"
        );
        let tag = if got[0].1 == hex(b"a 0") { "a" } else { "b" };
        tags.push(tag);
        for (i, (seq, data)) in got.iter().enumerate() {
            assert_eq!(*seq, i as u64, "{who}: its lane's sequence");
            assert_eq!(
                *data,
                hex(format!("{tag} {i}").as_bytes()),
                "{who}: line {i}"
            );
        }
    }
    tags.sort();
    assert_eq!(tags, ["a", "b"]);
}

#[test]
fn a_pub_that_does_not_match_the_shared_topic_fails_naming_the_field() {
    let p = Prefix::new("lanes", "mis");
    let (mut first, first_in) = p.pub_process(&["mis", "--max-publishers", "2", "--slots", "16"]);
    wait_until("the topic", || p.live_lanes("mis") == 1);
    for (args, says) in [
        (&["--max-publishers", "2", "--slots", "32"][..], "slots"),
        (&["--slots", "16"][..], "max publishers"),
        (
            &["--max-publishers", "3", "--slots", "16"][..],
            "max publishers",
        ),
        (
            &[
                "--max-publishers",
                "2",
                "--slots",
                "16",
                "--overflow",
                "overwrite",
            ][..],
            "overflow policy",
        ),
    ] {
        let out = p.run(&[&["pub", "mis"][..], args].concat());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(says) && err.contains("\"mis\"") && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    // A second one that matches joins; a third finds every lane taken.
    let (mut second, second_in) = p.pub_process(&["mis", "--max-publishers", "2", "--slots", "16"]);
    wait_until("the second pub to join", || p.live_lanes("mis") == 2);
    let out = p.run(&["pub", "mis", "--max-publishers", "2", "--slots", "16"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already has its 2 publishers"),
        "{}",
        stderr(&out)
    );
    drop((first_in, second_in));
    assert_eq!(first.wait().unwrap().code(), Some(0));
    assert_eq!(second.wait().unwrap().code(), Some(0));
    // Out of range: usage.
    for n in ["0", "65", "many"] {
        let out = p.run(&["pub", "range", "--max-publishers", n]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "--max-publishers {n}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn inspect_list_and_top_show_a_shared_topics_lanes_and_not_an_exclusive_ones() {
    let p = Prefix::new("lanes", "show");
    let mut a = Publisher::create("tf", p.shared(3)).unwrap();
    let mut b = Publisher::create("tf", p.shared(3)).unwrap();
    for _ in 0..5 {
        a.send(b"from a").unwrap();
    }
    for _ in 0..7 {
        b.send(b"from b").unwrap();
    }
    let mut plain = Publisher::create("plain", p.shared(1)).unwrap();
    plain.send(b"x").unwrap();
    let pid = std::process::id();

    let text = String::from_utf8(p.run(&["inspect", "tf"]).stdout).unwrap();
    assert!(text.contains("write cursor   12\n"), "{text}");
    assert!(
        text.contains("publishers     2 live of 3 (lanes taken: 2)"),
        "{text}"
    );
    for (id, published) in [(a.id(), 5), (b.id(), 7)] {
        let line = format!(
            "  lane {:>4}  pid {pid:>7}  live   publisher {id}  published {published}",
            id.lane
        );
        assert!(text.contains(&line), "no {line:?} in {text}");
    }
    let json = String::from_utf8(p.run(&["inspect", "tf", "--json"]).stdout).unwrap();
    assert!(json.contains(r#""max_publishers":3,"#), "{json}");
    let lane = |id: PublisherId, state: &str, published: u64| {
        format!(
            r#"{{"lane":{},"state":"{state}","alive":{},"left":false,"pid":{},"writer":{},"write_cursor":{published}}}"#,
            id.lane,
            state == "live",
            if state == "free" { 0 } else { pid },
            id.writer
        )
    };
    assert!(json.contains(&lane(a.id(), "live", 5)), "{json}");
    assert!(json.contains(&lane(b.id(), "live", 7)), "{json}");
    let free = PublisherId { lane: 2, writer: 0 };
    assert!(json.contains(&lane(free, "free", 0)), "{json}");
    let list = String::from_utf8(p.run(&["list"]).stdout).unwrap();
    assert!(
        list.contains("tf\tlive\t0 subscribers\t12 published\t2 of 3 publishers live\n"),
        "{list}"
    );
    assert!(
        list.contains("plain\tlive\t0 subscribers\t1 published\n"),
        "{list}"
    );
    let top =
        String::from_utf8(p.run(&["top", "--count", "2", "--interval", "0.2"]).stdout).unwrap();
    for id in [a.id(), b.id()] {
        let who = format!("  pub {id} pid {pid}");
        assert_eq!(
            top.lines()
                .filter(|l| l.starts_with(&who) && l.contains(" live "))
                .count(),
            2,
            "a row for lane {} in each snapshot: {top}",
            id.lane
        );
    }
    assert!(
        !top.contains("  pub 2/"),
        "a lane nobody took is not shown: {top}"
    );

    // An exclusive topic looks as it always did.
    let text = String::from_utf8(p.run(&["inspect", "plain"]).stdout).unwrap();
    assert!(
        !text.contains("publishers ") && !text.contains("lane"),
        "{text}"
    );
    assert_eq!(
        top.matches("  pub ").count(),
        4,
        "lane rows of tf only: {top}"
    );

    // A publisher gone: its lane says so, and the count.
    drop(b);
    let text = String::from_utf8(p.run(&["inspect", "tf"]).stdout).unwrap();
    assert!(
        text.contains("publishers     1 live of 3 (lanes taken: 2)"),
        "{text}"
    );
    assert!(text.contains("  left   publisher"), "{text}");
    drop(a);
}

#[test]
fn hz_counts_every_publisher_of_a_shared_topic() {
    let p = Prefix::new("lanes", "hz");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeders: Vec<_> = (0..2)
        .map(|_| {
            let mut publisher =
                Publisher::create("beat", p.shared(2).overflow(Overflow::Overwrite)).unwrap();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let period = Duration::from_millis(10);
                let mut next = Instant::now();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    publisher.send(&[7u8; 100]).unwrap();
                    next += period;
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
            })
        })
        .collect();
    let out = p.run(&["hz", "beat", "--duration", "2.5"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in feeders {
        f.join().unwrap();
    }
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let rate: f64 = text
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("average rate: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {text}"));
    assert!(
        (rate - 200.0).abs() <= 20.0,
        "hz said {rate} msg/s for two publishers of 100: {text}"
    );
}

/// One lane row of `top`'s output: `pub ID pid P STATE MSG/S BANDWIDTH PUBLISHED`, the
/// bandwidth as `<number> <unit>/s`.
struct LaneRow {
    state: String,
    rate: f64,
    bandwidth: f64,
    bandwidth_unit: String,
    published: u64,
}

/// The row of publisher `id` (pid `pid`) in the last snapshot of `top`'s output.
fn lane_row(top: &str, id: PublisherId, pid: u32) -> LaneRow {
    let last = top
        .rsplit("TOPIC ")
        .next()
        .unwrap_or_else(|| panic!("no snapshot in {top}"));
    let who = format!("  pub {id} pid {pid} ");
    let line = last
        .lines()
        .find(|l| l.starts_with(&who))
        .unwrap_or_else(|| panic!("no row for publisher {id} in the last snapshot: {top}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    let [_, _, _, _, state, rate, bw, unit, published] = f[..] else {
        panic!("unexpected lane row {line:?}");
    };
    let parse = |s: &str| -> f64 { s.parse().unwrap_or_else(|_| panic!("{s:?} in {line:?}")) };
    LaneRow {
        state: state.to_owned(),
        rate: parse(rate),
        bandwidth: parse(bw),
        bandwidth_unit: unit.to_owned(),
        published: parse(published) as u64,
    }
}

/// `top` shows each publisher's own rate, bandwidth and count under a shared topic: of
/// three publishers, one sends 10 messages of 100 bytes for every 1 of 200 bytes another
/// sends, the third none.
#[test]
fn top_shows_each_publishers_rate_and_bandwidth_on_a_shared_topic() {
    let p = Prefix::new("lanes", "top");
    let config = p.shared(3).overflow(Overflow::Overwrite);
    let mut fast = Publisher::create("mix", config.clone()).unwrap();
    let mut slow = Publisher::create("mix", config.clone()).unwrap();
    let idle = Publisher::create("mix", config).unwrap();
    let (fast_id, slow_id, idle_id) = (fast.id(), slow.id(), idle.id());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for _ in 0..10 {
                    fast.send(&[1u8; 100]).unwrap();
                }
                slow.send(&[2u8; 200]).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    wait_until("the slow publisher's second message", || {
        ringcast::inspect::inspect(&p.0, "mix")
            .is_ok_and(|i| i.lanes[slow_id.lane as usize].write_cursor >= 2)
    });
    let out = p.run(&["top", "--count", "3", "--interval", "0.3"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let top = String::from_utf8(out.stdout).unwrap();
    let pid = std::process::id();

    let (f, s, i) = (
        lane_row(&top, fast_id, pid),
        lane_row(&top, slow_id, pid),
        lane_row(&top, idle_id, pid),
    );
    for row in [&f, &s, &i] {
        assert_eq!(row.state, "live", "{top}");
    }
    for row in [&f, &s] {
        assert!(
            row.rate > 0.0 && row.bandwidth > 0.0 && row.bandwidth_unit.ends_with("B/s"),
            "a sending publisher's row has a rate and a bandwidth: {top}"
        );
    }
    // The fast lane publishes its 10 before the slow lane's 1, and the snapshot reads it
    // first: it is ahead whatever the timing.
    assert!(
        f.published > s.published && s.published >= 2,
        "fast {} slow {}: {top}",
        f.published,
        s.published
    );
    assert_eq!(
        (i.rate, i.bandwidth, i.bandwidth_unit.as_str(), i.published),
        (0.0, 0.0, "B/s", 0),
        "the idle publisher's row: {top}"
    );
}

fn payload(tag: u8, i: u64) -> Vec<u8> {
    let len = (i % 100) as usize + 2;
    let mut v: Vec<u8> = (0..len)
        .map(|b| (i as u8).wrapping_mul(31) ^ b as u8)
        .collect();
    v[0] = tag;
    v
}

/// The messages a subscriber of a replay got, by publisher: (tag, index) of each payload
/// (checked whole against [`payload`]), in the order received.
fn replayed(sub: &mut Subscriber) -> BTreeMap<PublisherId, Vec<Vec<u8>>> {
    let mut got: BTreeMap<PublisherId, Vec<Vec<u8>>> = BTreeMap::new();
    loop {
        match sub.recv_timeout(LONG) {
            Ok(m) => got.entry(m.publisher()).or_default().push(m.to_vec()),
            Err(RecvTimeoutError::Disconnected) => break got,
            Err(e) => panic!("replay: {e}"),
        }
    }
}

#[test]
fn record_keeps_each_publisher_and_play_republishes_each_through_its_own() {
    let p = Prefix::new("lanes", "rec");
    let file = std::env::temp_dir().join(format!("ringcast-lanes-{}.mcap", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let n = 2000u64;
    let mut a = Publisher::create("shared", p.shared(3)).unwrap();
    let mut b = Publisher::create("shared", p.shared(3)).unwrap();
    let (a_id, b_id) = (a.id(), b.id());
    let recorder = p
        .cmd(&["record", "shared", "-o", file.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the recorder to attach", || a.subscriber_count() >= 1);
    for i in 0..n {
        a.send(&payload(b'a', i)).unwrap();
        if i % 2 == 0 {
            b.send(&payload(b'b', i / 2)).unwrap();
        }
    }
    drop((a, b));
    let out = finish(recorder, LONG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // One channel per publisher, named by the topic, the publisher in its metadata, the
    // lane's sequence in each message.
    let buf = std::fs::read(&file).unwrap();
    let mut channels: BTreeMap<String, Vec<(u32, Vec<u8>)>> = BTreeMap::new();
    for m in mcap::MessageStream::new(&buf).unwrap() {
        let m = m.unwrap();
        if m.channel.topic != "shared" {
            continue;
        }
        assert_eq!(m.channel.metadata["ringcast.max_publishers"], "3");
        let who = m.channel.metadata["ringcast.publisher"].clone();
        channels
            .entry(who)
            .or_default()
            .push((m.sequence, m.data.to_vec()));
    }
    let keys: Vec<_> = channels.keys().cloned().collect();
    let mut want = vec![a_id.to_string(), b_id.to_string()];
    want.sort();
    assert_eq!(keys, want);
    for (id, tag, count) in [(a_id, b'a', n), (b_id, b'b', n / 2)] {
        let got = &channels[&id.to_string()];
        assert_eq!(got.len() as u64, count, "{id}'s messages");
        for (i, (seq, data)) in got.iter().enumerate() {
            assert_eq!(*seq as u64, i as u64, "{id}: its lane's sequence");
            assert_eq!(data, &payload(tag, i as u64), "{id}: message {i}");
        }
    }

    // The replay: a shared topic again, two distinct publishers, each with its messages.
    let player = p
        .cmd(&[
            "play",
            file.to_str().unwrap(),
            "--rate",
            "0",
            "--wait-subscribers",
            "1",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sub = Subscriber::attach_wait("shared", p.sub_opts(), LONG).unwrap();
    assert_eq!(sub.geometry().max_publishers, 3);
    let got = replayed(&mut sub);
    let out = finish(player, LONG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        got.len(),
        2,
        "two publishers in the replay: {:?}",
        got.keys()
    );
    let mut tags: Vec<u8> = got.values().map(|m| m[0][0]).collect();
    tags.sort();
    assert_eq!(tags, b"ab");
    for messages in got.values() {
        let (tag, count) = if messages[0][0] == b'a' {
            (b'a', n)
        } else {
            (b'b', n / 2)
        };
        let want: Vec<_> = (0..count).map(|i| payload(tag, i)).collect();
        assert!(*messages == want, "the replay of {}", tag as char);
    }
    let _ = std::fs::remove_file(&file);
}

/// Channel metadata of a raw `Block` topic admitting `max` publishers, as `record` writes
/// it, with the publisher `who`.
fn metadata(max: u64, who: &str) -> BTreeMap<String, String> {
    [
        ("ringcast.slots", "64".to_owned()),
        ("ringcast.slot_size", "256".to_owned()),
        ("ringcast.overflow", "block".to_owned()),
        ("ringcast.alignment", "16".to_owned()),
        ("ringcast.max_subscribers", "64".to_owned()),
        ("ringcast.stall_timeout_ns", "0".to_owned()),
        ("ringcast.type.name", String::new()),
        ("ringcast.type.name_hash", "0".to_owned()),
        ("ringcast.type.size", "0".to_owned()),
        ("ringcast.type.align", "0".to_owned()),
        ("ringcast.type.schema_version", "0".to_owned()),
        ("ringcast.layout_version", "4".to_owned()),
        ("ringcast.max_publishers", max.to_string()),
        ("ringcast.publisher", who.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A recording of topic `t` admitting `max` publishers, with `messages`: (publisher, tag,
/// index) in file order.
fn write_recording(path: &std::path::Path, max: u64, messages: &[(&str, u8, u64)]) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut w = mcap::WriteOptions::new()
        .profile("ringcast")
        .create(file)
        .unwrap();
    let mut channels = BTreeMap::new();
    for (i, &(who, tag, seq)) in messages.iter().enumerate() {
        let ch = *channels.entry(who).or_insert_with(|| {
            w.add_channel(0, "t", "ringcast.raw", &metadata(max, who))
                .unwrap()
        });
        let header = mcap::records::MessageHeader {
            channel_id: ch,
            sequence: seq as u32,
            log_time: 1_000 + i as u64,
            publish_time: 1_000 + i as u64,
        };
        w.write_to_known_channel(&header, &payload(tag, seq))
            .unwrap();
    }
    w.finish().unwrap();
}

/// A publisher that left and another that took its lane are two publishers in the replay
/// too (the finished one leaves so that the new one finds a lane, the topic never ending
/// meanwhile); a file with more publishers at once than its topic admits still plays
/// everything, sharing publishers.
#[test]
fn play_gives_a_lane_taken_over_to_a_new_publisher_and_never_ends_the_topic_meanwhile() {
    let p = Prefix::new("lanes", "take");
    let file = std::env::temp_dir().join(format!("ringcast-take-{}.mcap", std::process::id()));
    // Lane 0's first publisher (0/1) sends 3, lane 1's (1/1) 6, then lane 0's second (0/2)
    // 3 after the first's last: never more than 2 at once.
    let mut messages = Vec::new();
    for i in 0..3 {
        messages.push(("0/1", b'a', i));
        messages.push(("1/1", b'b', i));
    }
    for i in 0..3 {
        messages.push(("0/2", b'c', i));
        messages.push(("1/1", b'b', 3 + i));
    }
    for (max, expect_publishers) in [(2u64, 3usize), (1, 1)] {
        write_recording(&file, max, &messages);
        let player = p
            .cmd(&[
                "play",
                file.to_str().unwrap(),
                "--rate",
                "0",
                "--wait-subscribers",
                "1",
            ])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut sub = Subscriber::attach_wait("t", p.sub_opts(), LONG).unwrap();
        let got = replayed(&mut sub);
        let out = finish(player, LONG);
        assert_eq!(out.status.code(), Some(0), "max {max}: {}", stderr(&out));
        assert_eq!(got.len(), expect_publishers, "max {max}: {:?}", got.keys());
        // Each recorded publisher's messages, in order, whichever replay publisher took them.
        let all: Vec<Vec<u8>> = got.values().flatten().cloned().collect();
        for (tag, count) in [(b'a', 3), (b'b', 6), (b'c', 3)] {
            let mine: Vec<_> = all.iter().filter(|m| m[0] == tag).cloned().collect();
            let want: Vec<_> = (0..count).map(|i| payload(tag, i)).collect();
            assert_eq!(mine, want, "max {max}: publisher {}", tag as char);
        }
        if max == 2 {
            // a's and c's are two publishers of the same lane, b's on the other.
            for m in got.values() {
                let tags: std::collections::BTreeSet<u8> = m.iter().map(|m| m[0]).collect();
                assert_eq!(tags.len(), 1, "one recorded publisher per replay publisher");
            }
        }
        let _ = ringcast::inspect::remove(&p.0, "t");
    }
    let _ = std::fs::remove_file(&file);
}

/// Two `pub` processes feed a shared topic and a `sub` prints it; one `pub` is SIGKILLed
/// mid-stream: the other goes on, `sub` prints every line the survivor sent (and the killed
/// one's up to where it died, in order, none twice), and exits 0 once the survivor ends.
#[test]
fn a_sigkilled_pub_of_a_shared_topic_leaves_the_other_going_and_sub_printing_it_all() {
    let p = Prefix::new("lanes", "kill");
    let (sub, rx) = p.sub_process(&["k", "--timeout", "60"]);
    let args = [
        "k",
        "--max-publishers",
        "2",
        "--wait-subscribers",
        "1",
        "--slots",
        "8",
    ];
    let (mut victim, mut victim_in) = p.pub_process(&args);
    wait_until("the first pub", || p.live_lanes("k") == 1);
    let (mut survivor, mut survivor_in) = p.pub_process(&args);
    wait_until("the second pub", || p.live_lanes("k") == 2);
    wait_until("sub to attach", || p.subscribers("k") == 1);
    // The victim is fed without end until it dies (its pipe then breaks).
    let feeder = std::thread::spawn(move || {
        for i in 0u64.. {
            if writeln!(victim_in, "victim {i}").is_err() {
                return i;
            }
            if i % 16 == 0 && victim_in.flush().is_err() {
                return i;
            }
            if i % 64 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        unreachable!()
    });
    let n = 3000u64;
    let mut seen = Vec::new();
    for i in 0..n / 2 {
        writeln!(survivor_in, "survivor {i}").unwrap();
    }
    survivor_in.flush().unwrap();
    // Mid-stream: sub has printed some of each.
    while numbers(&seen, "victim").len() < 200 || numbers(&seen, "survivor").len() < 10 {
        seen.push(rx.recv_timeout(LONG).expect("sub printing"));
    }
    kill(victim.id(), libc::SIGKILL);
    assert_eq!(victim.wait().unwrap().code(), None, "killed");
    let fed = feeder.join().unwrap();
    for i in n / 2..n {
        writeln!(survivor_in, "survivor {i}").unwrap();
    }
    drop(survivor_in);
    let status = survivor.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "the survivor went on and ended well"
    );
    let (rest, out) = collect(sub, rx);
    seen.extend(rest);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        numbers(&seen, "survivor"),
        (0..n).collect::<Vec<_>>(),
        "every line of the survivor, in order"
    );
    let victims = numbers(&seen, "victim");
    assert_eq!(
        victims,
        (0..victims.len() as u64).collect::<Vec<_>>(),
        "the victim's lines up to its death, in order, none twice"
    );
    assert!(victims.len() as u64 <= fed);
    assert!(
        stderr(&out).is_empty(),
        "nothing lost under Block: {}",
        stderr(&out)
    );
}

/// `play --loop` of a shared topic keeps its publishers from pass to pass: the replay has
/// as many as the recording, not a new set per pass.
#[test]
fn play_loop_of_a_shared_topic_keeps_its_publishers() {
    let p = Prefix::new("lanes", "loop");
    let file = std::env::temp_dir().join(format!("ringcast-loop-{}.mcap", std::process::id()));
    let messages: Vec<_> = (0..4)
        .flat_map(|i| [("0/1", b'a', i), ("1/1", b'b', i)])
        .collect();
    write_recording(&file, 2, &messages);
    let player = p
        .cmd(&[
            "play",
            file.to_str().unwrap(),
            "--rate",
            "0",
            "--loop",
            "--wait-subscribers",
            "1",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sub = Subscriber::attach_wait("t", p.sub_opts(), LONG).unwrap();
    let mut got: BTreeMap<PublisherId, Vec<Vec<u8>>> = BTreeMap::new();
    // Three passes of each (a subscriber may take up to LANE_QUANTUM from one publisher
    // in a row, so not necessarily the first 3 x 8 messages).
    let passes = |got: &BTreeMap<PublisherId, Vec<Vec<u8>>>, tag: u8| {
        got.values().flatten().filter(|m| m[0] == tag).count()
    };
    while passes(&got, b'a') < 12 || passes(&got, b'b') < 12 {
        let m = sub.recv_timeout(LONG).expect("a replayed message");
        got.entry(m.publisher()).or_default().push(m.to_vec());
    }
    kill(player.id(), libc::SIGINT);
    let out = finish(player, LONG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        got.len(),
        2,
        "two publishers over three passes: {:?}",
        got.keys()
    );
    for m in got.values() {
        let tag = m[0][0];
        let want: Vec<_> = (0..m.len() as u64).map(|i| payload(tag, i % 4)).collect();
        assert_eq!(
            *m, want,
            "publisher {}: pass after pass in order",
            tag as char
        );
    }
    let _ = std::fs::remove_file(&file);
}
