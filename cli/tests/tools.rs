//! `ringcast record`, `play`, `hz`, `top` and the clap front end, driven as a user would:
//! real `ringcast` processes against publishers and subscribers in this test process, and
//! the recordings read back with the `mcap` crate's own reader.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ringcast::{
    Overflow, Publisher, PublisherConfig, Start, Subscriber, SubscriberOptions, TypedPublisher,
    TypedSubscriber,
};

const BIN: &str = env!("CARGO_BIN_EXE_ringcast");
const LONG: Duration = Duration::from_secs(60);

/// A private prefix per test, with everything under it removed at the end.
struct Prefix(String);

impl Prefix {
    fn new(tag: &str) -> Prefix {
        Prefix(format!("rctool{tag}{}", std::process::id()))
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).env("RINGCAST_PREFIX", &self.0);
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ringcast")
    }
    fn publisher(&self, topic: &str) -> Publisher {
        Publisher::create(topic, self.config()).expect("create")
    }
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

impl Drop for Prefix {
    fn drop(&mut self) {
        for t in ringcast::name::list_topics(&self.0).unwrap_or_default() {
            let _ = ringcast::inspect::remove(&self.0, &t);
        }
    }
}

fn temp_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ringcast-{}-{name}", std::process::id()))
}

/// Waits for `child` to exit within `limit` (killing it otherwise) and returns its output.
fn finish(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("child output"),
        Err(_) => {
            // SAFETY: kill(2) on the child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("ringcast (pid {pid}) did not exit within {limit:?}");
        }
    }
}

fn payload(i: u64) -> Vec<u8> {
    let len = (i % 200) as usize + 1;
    (0..len)
        .map(|b| (i as u8).wrapping_mul(31) ^ b as u8)
        .collect()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Records `n` messages of [`payload`] published on a fresh `Block` topic into `file`, with
/// `extra` arguments to `record`; the publisher is gone when this returns.
fn record_payloads(p: &Prefix, topic: &str, file: &std::path::Path, n: u64, extra: &[&str]) {
    let mut publisher = p.publisher(topic);
    let count = n.to_string();
    let mut args = vec![
        "record",
        topic,
        "-o",
        file.to_str().unwrap(),
        "--count",
        &count,
    ];
    args.extend_from_slice(extra);
    let recorder = p.cmd(&args).spawn().unwrap();
    wait_until("the recorder to attach", || {
        publisher.subscriber_count() >= 1
    });
    for i in 0..n {
        publisher.send(&payload(i)).unwrap();
    }
    assert_eq!(finish(recorder, LONG).status.code(), Some(0));
}

const N: u64 = 10_000;

#[test]
fn record_then_play_round_trips_two_topics_byte_exact_in_order() {
    let p = Prefix::new("rt");
    let file = temp_file("rt.mcap");
    let _ = std::fs::remove_file(&file);
    let mut raw = p.publisher("raw");
    let mut typed = TypedPublisher::<u64>::create("typed", p.config()).expect("typed create");
    let recorder = p
        .cmd(&["record", "raw", "typed", "-o", file.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the recorder to attach", || {
        raw.subscriber_count() >= 1 && typed.subscriber_count() >= 1
    });
    let started = Instant::now();
    for i in 0..N {
        raw.send(&payload(i)).unwrap();
        typed.send(&(i * 3)).unwrap();
    }
    let span = started.elapsed();
    drop((raw, typed));
    let out = finish(recorder, LONG);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Read back with the mcap crate's reader: channels, metadata, counts, bytes, order.
    let buf = std::fs::read(&file).unwrap();
    let summary = mcap::Summary::read(&buf)
        .unwrap()
        .expect("a summary section");
    let stats = summary.stats.expect("statistics");
    assert_eq!(stats.message_count, 2 * N);
    let (mut raw_next, mut typed_next) = (0u64, 0u64);
    for m in mcap::MessageStream::new(&buf).unwrap() {
        let m = m.unwrap();
        match m.channel.topic.as_str() {
            "raw" => {
                assert_eq!(m.channel.message_encoding, "ringcast.raw");
                assert_eq!(m.channel.metadata["ringcast.overflow"], "block");
                assert_eq!(m.channel.metadata["ringcast.slots"], "64");
                assert_eq!(
                    &m.data[..],
                    &payload(raw_next)[..],
                    "raw message {raw_next}"
                );
                assert_eq!(m.sequence as u64, raw_next);
                raw_next += 1;
            }
            "typed" => {
                assert_eq!(m.channel.message_encoding, "ringcast.rkyv");
                assert!(m.channel.metadata["ringcast.type.name"].contains("u64"));
                assert_eq!(m.data.len(), 8);
                assert_eq!(
                    u64::from_le_bytes(m.data[..8].try_into().unwrap()),
                    typed_next * 3
                );
                typed_next += 1;
            }
            other => panic!("unexpected channel {other:?}"),
        }
    }
    assert_eq!((raw_next, typed_next), (N, N));
    let has_summary_md = summary
        .metadata_indexes
        .iter()
        .any(|m| m.name == "ringcast.recording");
    assert!(has_summary_md, "no ringcast.recording metadata");

    // Play it back at the recorded speed into a raw and a typed subscriber.
    let started = Instant::now();
    let player = p
        .cmd(&["play", file.to_str().unwrap(), "--wait-subscribers", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // One thread per topic: the replay interleaves the topics as they were received, so a
    // single reader taking them in lockstep could hold one `Block` ring full while the
    // player waits on it.
    let opts = p.sub_opts();
    let raw_reader = {
        let opts = opts.clone();
        std::thread::spawn(move || {
            let mut sub = Subscriber::attach_wait("raw", opts, LONG).expect("raw replayed");
            for i in 0..N {
                let m = sub.recv_timeout(LONG).expect("raw message");
                assert_eq!(&*m, &payload(i)[..], "replayed raw message {i}");
            }
        })
    };
    let mut typed_sub = TypedSubscriber::<u64>::attach_wait("typed", opts, LONG)
        .expect("typed replayed, type checked");
    for i in 0..N {
        assert_eq!(
            typed_sub
                .recv_timeout(LONG)
                .expect("typed message")
                .to_native(),
            i * 3
        );
    }
    raw_reader.join().expect("raw reader");
    let out = finish(player, LONG);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < span + Duration::from_secs(20),
        "play took {:?} for a {span:?} recording",
        started.elapsed()
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn record_stopped_by_sigint_leaves_a_valid_file_with_what_it_received() {
    let p = Prefix::new("int");
    let file = temp_file("int.mcap");
    let _ = std::fs::remove_file(&file);
    let mut publisher = p.publisher("feed");
    let recorder = p
        .cmd(&["record", "feed", "-o", file.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the recorder to attach", || {
        publisher.subscriber_count() >= 1
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(mut loan) = publisher.loan_timeout(Duration::from_millis(10)) {
                    let bytes = payload(i);
                    loan.write_at(0, &bytes);
                    loan.commit(bytes.len());
                    i += 1;
                }
                if i.is_multiple_of(64) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            i
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(recorder.id() as i32, libc::SIGINT) };
    let out = finish(recorder, LONG);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let published = feeder.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let buf = std::fs::read(&file).unwrap();
    assert!(buf.ends_with(mcap::MAGIC), "the file was not finished");
    let mut next = None;
    let mut count = 0u64;
    for m in mcap::MessageStream::new(&buf).unwrap() {
        let m = m.unwrap();
        if m.channel.topic != "feed" {
            continue;
        }
        let seq = m.sequence as u64;
        assert_eq!(&m.data[..], &payload(seq)[..]);
        if let Some(n) = next {
            assert_eq!(seq, n, "a gap in a Block recording");
        }
        next = Some(seq + 1);
        count += 1;
    }
    assert!(
        count > 0 && count <= published,
        "recorded {count} of {published}"
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn play_refuses_truncated_foreign_and_empty_files_clearly() {
    let p = Prefix::new("bad");
    let good = temp_file("good.mcap");
    record_payloads(&p, "x", &good, 500, &["--compression", "none"]);
    let bytes = std::fs::read(&good).unwrap();
    let cases = [
        ("truncated", bytes[..bytes.len() / 2].to_vec(), "truncated"),
        (
            "foreign",
            b"this is not an mcap file at all".to_vec(),
            "not an MCAP file",
        ),
        ("empty", Vec::new(), "empty"),
    ];
    for (name, content, says) in cases {
        let f = temp_file(&format!("{name}.mcap"));
        std::fs::write(&f, content).unwrap();
        let out = p.run(&["play", f.to_str().unwrap(), "--rate", "0"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{name}: {err}"
        );
        let _ = std::fs::remove_file(&f);
    }
    // The complete part of the truncated file plays when asked.
    let f = temp_file("truncated-ok.mcap");
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let out = p.run(&[
        "play",
        f.to_str().unwrap(),
        "--rate",
        "0",
        "--allow-truncated",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&f);
    let _ = std::fs::remove_file(&good);
}

/// Stops a `paced` publisher and waits for its thread.
fn stop_paced(
    (stop, feeder): (
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        std::thread::JoinHandle<()>,
    ),
) {
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeder.join().unwrap();
}

/// Publishes on `topic` at `hz` until the returned flag is set.
fn paced(
    p: &Prefix,
    topic: &str,
    hz: u64,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    let mut publisher = Publisher::create(topic, p.config().overflow(Overflow::Overwrite)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let t = std::thread::spawn(move || {
        let period = Duration::from_nanos(1_000_000_000 / hz);
        let mut next = Instant::now();
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            publisher.send(&[7u8; 100]).unwrap();
            next += period;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    });
    (stop, t)
}

fn within_10_percent(got: f64, want: f64) -> bool {
    (got - want).abs() <= want * 0.10
}

#[test]
fn record_onto_a_full_device_names_the_system_error() {
    let p = Prefix::new("full");
    let feeder = paced(&p, "busy", 200);
    let out = p.run(&["record", "busy", "-o", "/dev/full"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    stop_paced(feeder);
}

#[test]
fn hz_ends_quietly_when_its_reader_is_gone() {
    let p = Prefix::new("hzpipe");
    let feeder = paced(&p, "beat", 200);
    let t = Instant::now();
    let child = p
        .cmd(&["hz", "beat"])
        .stdin(Stdio::null())
        .stdout(common::closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its first line (after a second) fails to be written: it ends then, not never.
    let out = common::finish(child, Duration::from_secs(20));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "ran {:?}",
        t.elapsed()
    );
    stop_paced(feeder);
}

#[test]
fn hz_and_top_report_a_known_rate_and_top_prints_snapshots_into_a_pipe() {
    let p = Prefix::new("hz");
    let (stop, feeder) = paced(&p, "beat", 200);
    let out = p.run(&["hz", "beat", "--duration", "2.5"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let rate: f64 = text
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("average rate: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {text}"));
    assert!(
        within_10_percent(rate, 200.0),
        "hz said {rate} msg/s for 200: {text}"
    );
    assert!(
        text.contains("bandwidth") && text.contains("std dev"),
        "{text}"
    );

    let out = p.run(&["top", "--count", "3", "--interval", "1"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("TOPIC").count(), 3, "three snapshots: {text}");
    let rates: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("beat "))
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect();
    assert_eq!(rates.len(), 2, "a rate from the second snapshot on: {text}");
    assert!(
        rates.iter().all(|&r| within_10_percent(r, 200.0)),
        "top said {rates:?} msg/s for 200: {text}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeder.join().unwrap();
}

#[test]
fn top_quits_on_q_under_a_pseudo_terminal() {
    let p = Prefix::new("pty");
    let _publisher = p.publisher("shown");
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty with out-pointers to two ints, no name, default settings.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty");
    let io = || {
        // SAFETY: dup of the slave fd we own; the Stdio takes ownership of the copy.
        Stdio::from(unsafe {
            <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(libc::dup(slave))
        })
    };
    let child = p
        .cmd(&["top", "--interval", "0.2"])
        .stdin(io())
        .stdout(io())
        .stderr(io())
        .spawn()
        .unwrap();
    // SAFETY: closing our copy of the slave; the child has its own.
    unsafe { libc::close(slave) };
    // SAFETY: the master fd is ours; the File owns it from here.
    let mut term = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(master) };
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&seen).contains("shown") {
        assert!(Instant::now() < deadline, "top never drew its table");
        let mut buf = [0u8; 4096];
        let n = term.read(&mut buf).unwrap_or(0);
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).contains("q quits"));
    term.write_all(b"q").unwrap();
    let out = finish(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn every_subcommand_has_help_and_bad_arguments_are_usage_errors() {
    let p = Prefix::new("help");
    let version = p.run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("ringcast "));
    for sub in [
        "pub",
        "sub",
        "echo",
        "list",
        "inspect",
        "gc",
        "record",
        "play",
        "hz",
        "top",
        "completions",
    ] {
        let out = p.run(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{sub} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: ringcast"),
            "{sub}"
        );
    }
    for args in [
        &["record", "t"][..],
        &["record", "-o", "x.mcap"],
        &["record", "../t", "-o", "x.mcap"],
        &["play"],
        &["play", "f.mcap", "--rate", "-1"],
        &["play", "f.mcap", "--rate", "fast"],
        &["hz", "t", "--window", "1"],
        &["hz"],
        &["top", "--interval", "soon"],
        &["sub", "t", "--hex", "--raw"],
        &["completions", "tcsh"],
    ] {
        let out = p.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("--help"),
            "{args:?} does not point at --help: {err}"
        );
    }
    // A file that does not exist is a runtime error, not usage.
    assert_eq!(
        p.run(&["play", "/nonexistent/f.mcap"]).status.code(),
        Some(1)
    );
    let bash = p.run(&["completions", "bash"]);
    assert_eq!(bash.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&bash.stdout).contains("ringcast"));
}

#[test]
fn sub_prints_binary_payloads_as_hex_raw_or_json() {
    let p = Prefix::new("fmt");
    for (flag, want) in [
        ("--hex", "00ff0a41\n".to_owned()),
        (
            "--json",
            "{\"seq\":0,\"len\":4,\"data_hex\":\"00ff0a41\"}\n".to_owned(),
        ),
    ] {
        let mut publisher = p.publisher("bin");
        let sub = p
            .cmd(&["sub", "bin", "--count", "1", flag])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until("sub to attach", || publisher.subscriber_count() >= 1);
        publisher.send(&[0x00, 0xff, 0x0a, 0x41]).unwrap();
        let out = finish(sub, LONG);
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{flag}");
    }
    let mut publisher = p.publisher("rawbin");
    let sub = p
        .cmd(&["echo", "rawbin", "--count", "2", "--raw"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("echo to attach", || publisher.subscriber_count() >= 1);
    publisher.send(&[1, 2, 10]).unwrap();
    publisher.send(&[0]).unwrap();
    assert_eq!(finish(sub, LONG).stdout, vec![1, 2, 10, 0]);
}

#[test]
fn play_loop_repeats_the_recording_until_interrupted() {
    let p = Prefix::new("loop");
    let file = temp_file("loop.mcap");
    record_payloads(&p, "again", &file, 5, &[]);
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
        .spawn()
        .unwrap();
    let mut sub = Subscriber::attach_wait("again", p.sub_opts(), LONG).expect("replayed topic");
    // Three passes of the five messages, in order, each pass the same.
    for n in 0..15u64 {
        let m = sub.recv_timeout(LONG).expect("a replayed message");
        assert_eq!(&*m, &payload(n % 5)[..], "message {n}");
    }
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(player.id() as i32, libc::SIGINT) };
    assert_eq!(finish(player, LONG).status.code(), Some(0));
    let _ = std::fs::remove_file(&file);
}

#[test]
fn play_refuses_a_channel_record_whose_lengths_run_past_it_under_a_memory_limit() {
    let p = Prefix::new("chanlen");
    let good = temp_file("chanlen-good.mcap");
    record_payloads(&p, "chanlen", &good, 50, &["--compression", "none"]);
    let mut bytes = std::fs::read(&good).unwrap();
    // The channel record of the summary section (the last copy of the topic's name, after
    // its length): its topic's length made 4 GiB - 16. The `mcap` crate reserved that much
    // before reading it (an abort under a memory limit).
    let mut named = 7u32.to_le_bytes().to_vec();
    named.extend_from_slice(b"chanlen");
    let at = bytes
        .windows(named.len())
        .rposition(|w| w == &named[..])
        .expect("the channel record");
    bytes[at..at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let bad = temp_file("chanlen-bad.mcap");
    std::fs::write(&bad, &bytes).unwrap();
    let mut cmd = p.cmd(&["play", bad.to_str().unwrap(), "--rate", "0"]);
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt as _;
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("a channel record's lengths run past its end") && err.lines().count() == 1,
        "{err}"
    );
    let _ = std::fs::remove_file(&good);
    let _ = std::fs::remove_file(&bad);
}
