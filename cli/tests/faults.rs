//! The `ringcast` tool under faults, with real processes: a `sub` whose output nobody reads
//! never pins a `Block` publisher past its stall timeout; a SIGKILLed or SIGHUPed `record`
//! leaves a file `play` reads; `play` refuses hostile, truncated or oversized recordings
//! with a clear error, never a panic or a hang; `top --interval 0` does not spin; text from
//! segments is escaped before it reaches a terminal; `sub` tells a publisher that died
//! (exit 1) from one that closed the topic, and reports an imported topic's upstream
//! losses.

mod common;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ringcast::{Overflow, Publisher, PublisherConfig, Start, Subscriber, SubscriberOptions};

/// The topic settings this suite's tests share, under its prefix (`rcfault<tag><pid>`).
impl Prefix {
    fn config(&self) -> PublisherConfig {
        PublisherConfig::default()
            .prefix(&self.0)
            .slots(64)
            .slot_size(256)
            .overflow(Overflow::Block)
    }
    fn sub_opts(&self) -> SubscriberOptions {
        SubscriberOptions::default()
            .prefix(&self.0)
            .start(Start::Oldest)
    }
}

/// A file under the temporary directory, removed at the end.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!("ringcast-fault-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        TempFile(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Waits for `child` to exit within `limit` (killing it otherwise) and returns its output.
/// `sub` writing into a pipe nobody reads: once the pipe is full `sub` blocks in write(2).
/// It must not hold a `Block` slot while it does, so the publisher's stall timeout evicts it
/// and the publisher goes on; before the fix the held slot pinned the publisher for good.
#[test]
fn a_sub_whose_output_nobody_reads_never_pins_a_block_publisher() {
    let p = Prefix::new("fault", "pin");
    let stall = Duration::from_millis(200);
    let mut publisher = Publisher::create(
        "pinned",
        p.config().slots(4).slot_size(4096).stall_timeout(stall),
    )
    .unwrap();
    let mut sub = p
        .cmd(&["sub", "pinned", "--raw"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep the read end open and never read it: sub's writes block once the pipe is full.
    let unread = sub.stdout.take().unwrap();
    wait_until("sub to attach", || publisher.subscriber_count() >= 1);
    // 400 messages of 4000 bytes: 1.6 MB, far more than a pipe (64 KiB) and sub's buffer.
    let message = [b'x'; 4000];
    for i in 0..400 {
        let started = Instant::now();
        // Evicted after `stall` (plus two watch periods); 20 s is only for a very slow box.
        let mut loan = match publisher.loan_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(ringcast::Full) => {
                kill(sub.id(), libc::SIGKILL);
                let _ = sub.wait();
                panic!(
                    "message {i}: the publisher was pinned for {:?} by a sub blocked on its \
                     output (stall timeout {stall:?})",
                    started.elapsed()
                );
            }
        };
        loan.write_at(0, &message);
        loan.commit(message.len());
    }
    // The sub was evicted (or kept up): either way it is no longer holding the ring.
    drop(unread);
    let out = finish(sub, LONG);
    let err = stderr(&out);
    // Its stdout is closed now: it ends quietly on the broken pipe or reports the eviction.
    assert!(
        out.status.code() == Some(0) || err.contains("evicted"),
        "{:?}: {err}",
        out.status
    );
}

/// Diagnostic tools attached as monitors cannot freeze a `Block` pipeline, even one without
/// a stall timeout: `hz` (a monitor by default) and `sub --monitor` writing into a pipe
/// nobody reads are stopped with SIGSTOP, and a 4-slot publisher goes on publishing; `hz
/// --gating` is an ordinary subscriber, and stopping it does hold the publisher (the
/// control that shows the test can fail).
#[test]
fn stopped_monitoring_tools_never_hold_a_block_publisher() {
    let p = Prefix::new("fault", "mon");
    let run = |args: &[&str], topic: &str, gating: bool| {
        let mut publisher = Publisher::create(topic, p.config().slots(4).slot_size(4096)).unwrap();
        let mut tool = p
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Never read: `sub` blocks in write(2) once the pipe is full.
        let unread = tool.stdout.take().unwrap();
        wait_until("the tool to attach", || {
            ringcast::inspect::inspect(&p.0, topic)
                .is_ok_and(|i| i.subscribers.iter().any(|s| s.alive && s.monitor != gating))
        });
        kill(tool.id(), libc::SIGSTOP);
        let message = [b'x'; 4000];
        let mut held = None;
        for i in 0..400 {
            // A monitor never gates: no wait at all; 20 s only for a very slow box.
            let limit = if gating {
                Duration::from_millis(300)
            } else {
                Duration::from_secs(20)
            };
            match publisher.loan_timeout(limit) {
                Ok(mut loan) => {
                    loan.write_at(0, &message);
                    loan.commit(message.len());
                }
                Err(ringcast::Full) => {
                    held = Some(i);
                    break;
                }
            }
        }
        kill(tool.id(), libc::SIGKILL);
        let _ = tool.wait();
        drop(unread);
        held
    };
    assert_eq!(
        run(&["hz", "viahz"], "viahz", false),
        None,
        "hz held the publisher"
    );
    assert_eq!(
        run(&["sub", "viasub", "--raw", "--monitor"], "viasub", false),
        None,
        "sub --monitor held the publisher"
    );
    assert_eq!(
        run(&["hz", "gated", "--gating"], "gated", true),
        Some(4),
        "a stopped ordinary subscriber holds a Block publisher after the ring's 4 slots"
    );
}

fn payload(i: u64) -> Vec<u8> {
    let len = (i % 200) as usize + 1;
    (0..len)
        .map(|b| (i as u8).wrapping_mul(31) ^ b as u8)
        .collect()
}

/// The cursor of the topic's first live subscriber (the recorder), 0 if none.
fn reader_cursor(p: &Prefix, topic: &str) -> u64 {
    ringcast::inspect::inspect(&p.0, topic)
        .map(|i| i.subscribers.iter().map(|s| s.cursor).max().unwrap_or(0))
        .unwrap_or(0)
}

/// Channel metadata as `ringcast record` writes it, for a raw `Block` topic of `slots` x
/// `slot_size`.
fn metadata(slots: u64, slot_size: u64) -> std::collections::BTreeMap<String, String> {
    [
        ("ringcast.slots", slots.to_string()),
        ("ringcast.slot_size", slot_size.to_string()),
        ("ringcast.overflow", "block".to_owned()),
        ("ringcast.alignment", "16".to_owned()),
        ("ringcast.max_subscribers", "64".to_owned()),
        ("ringcast.stall_timeout_ns", "0".to_owned()),
        ("ringcast.type.name", String::new()),
        ("ringcast.type.name_hash", "0".to_owned()),
        ("ringcast.type.size", "0".to_owned()),
        ("ringcast.type.align", "0".to_owned()),
        ("ringcast.type.schema_version", "0".to_owned()),
        (
            "ringcast.layout_version",
            ringcast::inspect::LAYOUT_VERSION.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Writes a recording with one raw topic of `slots` x `slot_size` and `messages` from
/// `make(i)`, as `ringcast record` would.
fn write_recording(
    path: &std::path::Path,
    topic: &str,
    slots: u64,
    slot_size: u64,
    messages: u64,
    compression: Option<mcap::Compression>,
    make: impl Fn(u64) -> Vec<u8>,
) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut w = mcap::WriteOptions::new()
        .compression(compression)
        .profile("ringcast")
        .create(file)
        .unwrap();
    let ch = w
        .add_channel(0, topic, "ringcast.raw", &metadata(slots, slot_size))
        .unwrap();
    for i in 0..messages {
        let header = mcap::records::MessageHeader {
            channel_id: ch,
            sequence: i as u32,
            log_time: 1_000 + i,
            publish_time: 1_000 + i,
        };
        w.write_to_known_channel(&header, &make(i)).unwrap();
    }
    w.finish().unwrap();
}

/// Plays `file` as fast as possible into a subscriber of `topic` attached before the
/// first message, returning what it received and play's output.
fn play_into_subscriber(
    p: &Prefix,
    topic: &str,
    file: &str,
    extra: &[&str],
) -> (Vec<Vec<u8>>, Output) {
    let mut args = vec!["play", file, "--rate", "0", "--wait-subscribers", "1"];
    args.extend_from_slice(extra);
    let player = p
        .cmd(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    if let Ok(mut sub) = Subscriber::attach_wait(topic, p.sub_opts(), Duration::from_secs(20)) {
        loop {
            match sub.recv_timeout(LONG) {
                Ok(m) => got.push(m.to_vec()),
                Err(ringcast::RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("replayed {topic}: {e}"),
            }
        }
    }
    (got, finish(player, LONG))
}

/// A recorder of a slow topic killed with SIGKILL: every chunk closed before the kill is in
/// the file, and chunks close about once a second, so all but about the last second of a
/// three-second recording plays back. Before the fix the whole recording was one open
/// chunk, and nothing of it was readable.
#[test]
fn a_recorder_killed_with_sigkill_loses_at_most_about_a_second() {
    let p = Prefix::new("fault", "kill");
    let file = TempFile::new("kill.mcap");
    let mut publisher = Publisher::create("slow", p.config()).unwrap();
    let recorder = p
        .cmd(&["record", "slow", "-o", file.path()])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the recorder to attach", || {
        publisher.subscriber_count() >= 1
    });
    // One message per 100 ms for 3 s.
    let n = 30u64;
    let started = Instant::now();
    for i in 0..n {
        publisher.send(&payload(i)).unwrap();
        std::thread::sleep(
            (started + Duration::from_millis(100 * (i + 1)))
                .saturating_duration_since(Instant::now()),
        );
    }
    wait_until("the recorder to receive everything", || {
        reader_cursor(&p, "slow") >= n
    });
    kill(recorder.id(), libc::SIGKILL);
    let out = finish(recorder, LONG);
    assert_eq!(out.status.code(), None, "killed by a signal");
    drop(publisher);
    let _ = ringcast::inspect::remove(&p.0, "slow");

    // Without --allow-truncated: refused, saying how much is readable.
    let refused = p.run(&["play", file.path(), "--rate", "0"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("truncated"),
        "{}",
        stderr(&refused)
    );
    // With it: everything but about the last second, in order, and the cut reported.
    let (got, out) = play_into_subscriber(&p, "slow", file.path(), &["--allow-truncated"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, &payload(i as u64), "recovered message {i}");
    }
    // 1 s is 10 messages; 5 more of slack for a slow machine.
    assert!(
        got.len() as u64 >= n - 15,
        "recovered {} of {n} messages after SIGKILL",
        got.len()
    );
    assert!(
        stderr(&out).contains("truncated"),
        "the cut is reported: {}",
        stderr(&out)
    );
}

/// SIGHUP (the terminal went away) finishes a recording as cleanly as SIGINT: the file has
/// its summary and closing metadata. Before the fix SIGHUP killed the recorder.
#[test]
fn sighup_ends_a_recording_cleanly() {
    let p = Prefix::new("fault", "hup");
    let file = TempFile::new("hup.mcap");
    let mut publisher = Publisher::create("hup", p.config()).unwrap();
    let recorder = p
        .cmd(&["record", "hup", "-o", file.path()])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the recorder to attach", || {
        publisher.subscriber_count() >= 1
    });
    for i in 0..5 {
        publisher.send(&payload(i)).unwrap();
    }
    wait_until("the recorder to receive everything", || {
        reader_cursor(&p, "hup") >= 5
    });
    kill(recorder.id(), libc::SIGHUP);
    let out = finish(recorder, LONG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let buf = std::fs::read(&file.0).unwrap();
    assert!(buf.ends_with(mcap::MAGIC), "the file was not finished");
    let summary = mcap::Summary::read(&buf).unwrap().expect("a summary");
    assert!(summary
        .metadata_indexes
        .iter()
        .any(|m| m.name == "ringcast.recording"));
    let got: Vec<Vec<u8>> = mcap::MessageStream::new(&buf)
        .unwrap()
        .map(|m| m.unwrap())
        .filter(|m| m.channel.topic == "hup")
        .map(|m| m.data.to_vec())
        .collect();
    assert_eq!(got, (0..5).map(payload).collect::<Vec<_>>());
}

/// A recording whose metadata asks for a huge segment is refused before anything is
/// created, with the topic, the size and the flag named; the limit is configurable.
#[test]
fn play_refuses_a_recording_that_asks_for_too_much_shared_memory() {
    let p = Prefix::new("fault", "huge");
    let file = TempFile::new("huge.mcap");
    // 2^20 slots of 64 KiB: 64 GiB of shared memory, under the core's own 1 TiB cap.
    write_recording(&file.0, "huge", 1 << 20, 1 << 16, 1, None, |_| vec![1]);
    let out = p.run(&["play", file.path(), "--rate", "0"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("\"huge\"") && err.contains("--max-segment-size") && err.contains("bytes"),
        "{err}"
    );
    assert!(!std::path::Path::new(&format!("/dev/shm/{}.huge", p.0)).exists());
    // 1024 slots of 4 KiB (about 4.3 MB): over a 1 MB limit, under a 100 MB one.
    let small = TempFile::new("small.mcap");
    write_recording(&small.0, "small", 1024, 4096, 3, None, payload);
    let out = p.run(&[
        "play",
        small.path(),
        "--rate",
        "0",
        "--max-segment-size",
        "1000000",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--max-segment-size"),
        "{}",
        stderr(&out)
    );
    let (got, out) = play_into_subscriber(
        &p,
        "small",
        small.path(),
        &["--max-segment-size", "100000000"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(got, (0..3).map(payload).collect::<Vec<_>>());
}

/// `record t t` records the topic once: every message once, and the file plays back.
/// Before the fix two receivers wrote each message twice into the one channel.
#[test]
fn recording_the_same_topic_twice_gives_a_playable_file() {
    let p = Prefix::new("fault", "dup");
    let file = TempFile::new("dup.mcap");
    let mut publisher = Publisher::create("dup", p.config()).unwrap();
    let recorder = p
        .cmd(&["record", "dup", "dup", "-o", file.path()])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the recorder to attach", || {
        publisher.subscriber_count() >= 1
    });
    // Give a second receiver, if there were one, time to attach too.
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..20 {
        publisher.send(&payload(i)).unwrap();
    }
    // The recording ends with its publisher, after everything it published.
    drop(publisher);
    let out = finish(recorder, LONG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let _ = ringcast::inspect::remove(&p.0, "dup");
    let buf = std::fs::read(&file.0).unwrap();
    let got: Vec<Vec<u8>> = mcap::MessageStream::new(&buf)
        .unwrap()
        .map(|m| m.unwrap())
        .filter(|m| m.channel.topic == "dup")
        .map(|m| m.data.to_vec())
        .collect();
    assert_eq!(got, (0..20).map(payload).collect::<Vec<_>>());
    let (played, out) = play_into_subscriber(&p, "dup", file.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(played, got);
}

/// Garbage, cut and bit-flipped recordings: `play` ends with exit 0 or 1 and one line,
/// never a panic (an internal error) or a hang.
#[test]
fn play_survives_hostile_truncated_and_corrupt_files() {
    let p = Prefix::new("fault", "hostile");
    let good = TempFile::new("hostile-good.mcap");
    write_recording(
        &good.0,
        "h",
        64,
        256,
        50,
        Some(mcap::Compression::Zstd),
        payload,
    );
    let bytes = std::fs::read(&good.0).unwrap();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for k in 1..30 {
        let cut = bytes.len() * k / 30;
        cases.push((format!("cut at {cut}"), bytes[..cut].to_vec()));
    }
    for k in 0..30 {
        let at = 8 + (bytes.len() - 16) * k / 30;
        let mut b = bytes.clone();
        b[at] ^= 0xff;
        cases.push((format!("flip at {at}"), b));
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut garbage = mcap::MAGIC.to_vec();
    for _ in 0..4000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        garbage.push((seed >> 56) as u8);
    }
    cases.push(("garbage".into(), garbage));
    // A chunk record claiming every length at its maximum, and a channel record of 2^63.
    let mut huge_chunk = mcap::MAGIC.to_vec();
    huge_chunk.push(0x06);
    huge_chunk.extend_from_slice(&u64::MAX.to_le_bytes());
    huge_chunk.extend_from_slice(&[0xff; 64]);
    cases.push(("huge chunk".into(), huge_chunk));
    let mut huge_record = mcap::MAGIC.to_vec();
    huge_record.push(0x04);
    huge_record.extend_from_slice(&(1u64 << 63).to_le_bytes());
    huge_record.extend_from_slice(&[0; 64]);
    cases.push(("huge record".into(), huge_record));
    let f = TempFile::new("hostile.mcap");
    for (name, content) in cases {
        std::fs::write(&f.0, &content).unwrap();
        for extra in [&[][..], &["--allow-truncated"][..]] {
            let mut args = vec!["play", f.path(), "--rate", "0"];
            args.extend_from_slice(extra);
            let out = p.run(&args);
            let err = stderr(&out);
            assert!(
                matches!(out.status.code(), Some(0) | Some(1)),
                "{name} {extra:?}: {:?} {err}",
                out.status
            );
            assert!(
                !err.contains("internal error") && !err.contains("panicked"),
                "{name} {extra:?}: {err}"
            );
            if out.status.code() == Some(1) {
                assert_eq!(err.lines().count(), 1, "{name} {extra:?}: {err}");
            }
        }
    }
}

/// `play` reads a recording as it goes: a 60 MB file plays in a fraction of that memory.
/// Before the fix it read the whole file first.
#[test]
fn play_streams_a_large_recording_in_bounded_memory() {
    let p = Prefix::new("fault", "big");
    let file = TempFile::new("big.mcap");
    let size = 60_000usize;
    write_recording(&file.0, "big", 4, 65536, 1000, None, |i| {
        vec![i as u8; size]
    });
    assert!(std::fs::metadata(&file.0).unwrap().len() > 59_000_000);
    // Reaped below by wait4(2), which also gives its peak memory (`Child::wait` cannot).
    #[allow(clippy::zombie_processes)]
    let child = p
        .cmd(&["play", file.path(), "--rate", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // SAFETY: zeroed rusage and status are valid out-parameters for wait4 on our child.
    let (status, usage) = unsafe {
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut usage), pid);
        (status, usage)
    };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let max_rss_mb = usage.ru_maxrss / 1024;
    assert!(
        max_rss_mb < 30,
        "play of a 60 MB file peaked at {max_rss_mb} MB"
    );
}

/// `top --interval 0` would redraw in a busy loop: refused as bad usage.
#[test]
fn top_refuses_an_interval_that_would_spin() {
    let p = Prefix::new("fault", "spin");
    for interval in ["0", "0.000001"] {
        let out = p.run(&["top", "--interval", interval, "--count", "3"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "--interval {interval}: {err}");
        assert!(err.contains("at least"), "{err}");
    }
    let out = p.run(&["top", "--interval", "0.01", "--count", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Text a segment's writer chose (an import origin, a type name) reaches the terminal with
/// its control characters escaped: no escape sequences, no forged lines. The API refuses
/// such text, so the segment is rewritten behind its back, as a hostile process could.
#[test]
fn text_from_a_segment_is_escaped_before_it_is_printed() {
    let p = Prefix::new("fault", "esc");
    let _publisher = Publisher::create(
        "esc",
        p.config()
            .imported_from("host-ORIGINMARKER")
            .type_info(ringcast::TypeInfo::new("Ty-TYPEMARKER", 8, 8, 1)),
    )
    .unwrap();
    let path = format!("/dev/shm/{}.esc", p.0);
    let mut seg = std::fs::read(&path).unwrap();
    for (marker, evil) in [
        (&b"ORIGINMARKER"[..], &b"\x1b]0;xy\x07\n\x1b[2J"[..]),
        (b"TYPEMARKER", b"\x1b[31m\r\nfoo"),
    ] {
        assert_eq!(marker.len(), evil.len());
        let at = seg
            .windows(marker.len())
            .position(|w| w == marker)
            .expect("marker in the segment");
        seg[at..at + marker.len()].copy_from_slice(evil);
    }
    {
        use std::io::{Seek, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.write_all(&seg).unwrap();
    }
    for args in [
        &["list"][..],
        &["inspect", "esc"],
        &["inspect", "esc", "--json"],
        &["top", "--count", "1"],
    ] {
        let out = p.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            // Newlines and list's tab separators are the tools' own.
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{args:?} printed a control character: {text:?}"
        );
        assert!(
            !text.contains("\n\u{1b}") && !text.contains("\nfo"),
            "{args:?} printed a forged line: {text:?}"
        );
    }
    let listed = String::from_utf8_lossy(&p.run(&["list"]).stdout).into_owned();
    assert!(listed.contains("host-\\u{1b}]0;xy"), "{listed:?}");
    let shown = String::from_utf8_lossy(&p.run(&["inspect", "esc"]).stdout).into_owned();
    assert!(shown.contains("Ty-\\u{1b}[31m"), "{shown:?}");
}

/// `sub` tells a publisher that died from one that closed the topic: both ends print
/// everything published, but only a clean close exits 0.
#[test]
fn sub_exits_1_naming_a_publisher_that_died_and_0_for_one_that_closed() {
    let p = Prefix::new("fault", "died");
    for killed in [true, false] {
        let topic = if killed { "died" } else { "closed" };
        let sub = p
            .cmd(&["sub", topic, "--timeout", "30"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut publisher = p
            .cmd(&["pub", topic, "--wait-subscribers", "1"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = publisher.stdin.take().unwrap();
        use std::io::Write as _;
        stdin.write_all(b"one\ntwo\n").unwrap();
        stdin.flush().unwrap();
        // Both lines are out once the topic says two were published.
        let deadline = Instant::now() + Duration::from_secs(20);
        while ringcast::inspect::inspect(&p.0, topic).map_or(0, |i| i.write_cursor) < 2 {
            assert!(Instant::now() < deadline, "pub never published");
            std::thread::sleep(Duration::from_millis(5));
        }
        if killed {
            kill(publisher.id(), libc::SIGKILL);
        }
        drop(stdin);
        let _ = publisher.wait();
        let out = finish(sub, Duration::from_secs(30));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
        if killed {
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            assert!(
                stderr(&out).contains("its publisher died without closing the topic, after 2"),
                "{}",
                stderr(&out)
            );
        } else {
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        }
        let _ = ringcast::inspect::remove(&p.0, topic);
    }
}

/// `sub` of an imported topic reports the losses its bridge counted upstream, as they come.
#[test]
fn sub_reports_losses_upstream_of_an_imported_topic() {
    let p = Prefix::new("fault", "upstream");
    let mut publisher =
        Publisher::create("imp", p.config().imported_from("host-a:lab (bridge 1)")).unwrap();
    let sub = p
        .cmd(&["sub", "imp", "--count", "3", "--timeout", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    publisher
        .wait_for_subscribers(1, Duration::from_secs(30))
        .unwrap();
    publisher.send(b"m0").unwrap();
    publisher.count_upstream_loss(3);
    publisher.send(b"m1").unwrap();
    publisher.send(b"m2").unwrap();
    let out = finish(sub, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "m0\nm1\nm2\n");
    assert!(
        stderr(&out).contains("lost 3 messages upstream") && stderr(&out).lines().count() == 1,
        "{}",
        stderr(&out)
    );
}
