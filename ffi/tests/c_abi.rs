//! The C ABI from real C and C++ programs, built with the system compiler against the
//! library this test links: the header compiles as C99 and C++17 with -Werror; every
//! entry point with bad arguments (under ASan/UBSan where the compiler has them);
//! round trips C -> Rust and Rust -> C++ under both policies, 0 B to the slot size; exact
//! lag counts; a C subscriber SIGKILLed holding a `Block` sample; C publishers sharing a
//! topic (two handles in one process and another process) read by a C++ subscriber that
//! checks each publisher's order; the two examples. Services: a C server and a C client
//! in two processes, the service entry points with bad arguments, the C++ wrapper, a C
//! client whose server is SIGKILLed mid-call, and one C wait set holding a subscriber, a
//! server and a client.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ringcast::{
    Overflow, Publisher, PublisherConfig, RecvTimeoutError, Start, Subscriber, SubscriberOptions,
};

const LONG: Duration = Duration::from_secs(30);

/// The directory holding `libringcast_ffi.so` built with this test: `deps/`, where cargo
/// puts the library it builds for the tests (the copy one level up is only refreshed by
/// `cargo build`, and may be stale).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir");
    let found = [deps, deps.parent().expect("profile dir")]
        .into_iter()
        .find(|d| d.join("libringcast_ffi.so").exists())
        .expect("libringcast_ffi.so next to the test binary")
        .to_path_buf();
    found
}

fn ffi_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a compiler; panics with its output if it fails.
fn compile(compiler: &str, args: &[&str]) {
    let out = Command::new(compiler)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        out.status.success(),
        "{compiler} {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the C compiler can build and run a program with ASan and UBSan.
fn sanitizers_work(dir: &Path) -> bool {
    let src = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let built = Command::new("cc")
        .args(["-fsanitize=address,undefined", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    built && Command::new(&exe).status().is_ok_and(|s| s.success())
}

/// The programs, built once per test process.
struct Programs {
    dir: PathBuf,
    sanitized: bool,
}

impl Programs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A command running program `name` against the library it was linked with: cargo's
    /// LD_LIBRARY_PATH (which outranks the program's RUNPATH) may name a stale copy.
    fn command(&self, name: &str) -> Command {
        let mut c = Command::new(self.path(name));
        c.env_remove("LD_LIBRARY_PATH");
        c
    }
}

fn programs() -> &'static Programs {
    static BUILT: OnceLock<Programs> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_abi");
        std::fs::create_dir_all(&dir).unwrap();
        let lib = lib_dir();
        let include = ffi_dir().join("include");
        let (inc, tests, examples) = (
            format!("-I{}", include.display()),
            format!("-I{}", ffi_dir().join("tests/c").display()),
            format!("-I{}", ffi_dir().join("examples").display()),
        );
        let link = [
            format!("-L{}", lib.display()),
            "-lringcast_ffi".to_owned(),
            format!("-Wl,-rpath,{}", lib.display()),
        ];
        let sanitized = sanitizers_work(&dir);
        let build = |compiler: &str, std: &str, src: &str, out: &str, extra: &[&str]| {
            let src = ffi_dir().join(src);
            let out = dir.join(out);
            let mut args = vec![
                std, "-O1", "-g", "-Wall", "-Wextra", "-Werror", &inc, &tests, &examples,
            ];
            args.extend_from_slice(extra);
            let (src, out) = (src.display().to_string(), out.display().to_string());
            args.extend(["-o", &out, &src]);
            args.extend(link.iter().map(String::as_str));
            compile(compiler, &args);
        };
        let asan: &[&str] = if sanitized {
            &[
                "-fsanitize=address,undefined",
                "-fno-omit-frame-pointer",
                "-fno-sanitize-recover=all",
            ]
        } else {
            &[]
        };
        build("cc", "-std=c99", "tests/c/api_checks.c", "api_checks", asan);
        build("cc", "-std=c99", "tests/c/peer_pub.c", "peer_pub", &[]);
        build("cc", "-std=c99", "tests/c/lanes_pub.c", "lanes_pub", &[]);
        build(
            "c++",
            "-std=c++17",
            "tests/c/lanes_sub.cpp",
            "lanes_sub",
            &[],
        );
        build(
            "cc",
            "-std=c99",
            "tests/c/trust_check.c",
            "trust_check",
            asan,
        );
        build(
            "cc",
            "-std=c99",
            "tests/c/holder.c",
            "holder",
            &["-D_POSIX_C_SOURCE=200809L"],
        );
        build("c++", "-std=c++17", "tests/c/peer_sub.cpp", "peer_sub", &[]);
        build(
            "c++",
            "-std=c++17",
            "tests/c/drain_stop.cpp",
            "drain_stop",
            asan,
        );
        build(
            "c++",
            "-std=c++17",
            "tests/c/waitset.cpp",
            "waitset",
            &["-pthread"],
        );
        build(
            "c++",
            "-std=c++17",
            "examples/md_publisher.cpp",
            "md_publisher",
            &[],
        );
        build(
            "cc",
            "-std=c99",
            "examples/c_subscriber.c",
            "c_subscriber",
            &[],
        );
        build("cc", "-std=c99", "tests/c/svc_server.c", "svc_server", &[]);
        build("cc", "-std=c99", "tests/c/svc_client.c", "svc_client", &[]);
        let mut threaded = asan.to_vec();
        threaded.push("-pthread");
        build(
            "cc",
            "-std=c99",
            "tests/c/svc_checks.c",
            "svc_checks",
            &threaded,
        );
        build(
            "cc",
            "-std=c99",
            "tests/c/svc_trust.c",
            "svc_trust",
            &threaded,
        );
        build(
            "cc",
            "-std=c99",
            "tests/c/svc_waitset.c",
            "svc_waitset",
            &threaded,
        );
        build(
            "cc",
            "-std=c99",
            "tests/c/fork_checks.c",
            "fork_checks",
            &threaded,
        );
        build(
            "c++",
            "-std=c++17",
            "tests/c/svc_cpp.cpp",
            "svc_cpp",
            &["-pthread"],
        );
        Programs { dir, sanitized }
    })
}

fn prefix(tag: &str) -> String {
    format!("rcffi{tag}{}", std::process::id())
}

/// Removes a topic's segment when dropped.
struct Cleanup(String, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = ringcast::inspect::remove(&self.0, &self.1);
    }
}

/// Waits up to `limit` for `child` to exit (killing it after); its code and stdout.
fn finish(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut o, &mut out);
    }
    (status.code(), out)
}

/// `key=value` from a "RESULT ..." line.
fn field(out: &str, key: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or_else(|| panic!("no RESULT line in {out:?}"));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .parse()
        .unwrap()
}

/// Reads `child`'s stdout until a line starting with `what`; returns the reader.
fn expect_line(child: &mut Child, what: &str) -> BufReader<std::process::ChildStdout> {
    let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "the child ended before printing {what:?}");
        if line.starts_with(what) {
            return reader;
        }
    }
}

/// The payload pattern of tests/c/pattern.h.
fn pattern_len(seq: u64, slot: usize) -> usize {
    (seq % (slot as u64 + 1)) as usize
}

fn pattern(seq: u64, slot: usize) -> Vec<u8> {
    (0..pattern_len(seq, slot))
        .map(|i| (seq.wrapping_mul(31).wrapping_add(i as u64) & 0xff) as u8)
        .collect()
}

#[test]
fn the_header_compiles_as_c99_and_as_cpp17_with_warnings_as_errors() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_abi_header");
    std::fs::create_dir_all(&dir).unwrap();
    let inc = format!("-I{}", ffi_dir().join("include").display());
    let c = dir.join("h.c");
    std::fs::write(
        &c,
        "#include \"ringcast.h\"\nint main(void) { return RINGCAST_OK; }\n",
    )
    .unwrap();
    let cpp = dir.join("h.cpp");
    std::fs::write(
        &cpp,
        "#include \"ringcast.hpp\"\n#include \"ringcast.h\"\nint main() { return RINGCAST_OK; }\n",
    )
    .unwrap();
    for std in ["-std=c99", "-std=c11"] {
        compile(
            "cc",
            &[
                std,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                &inc,
                "-fsyntax-only",
                &c.display().to_string(),
            ],
        );
    }
    compile(
        "c++",
        &[
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            &inc,
            "-fsyntax-only",
            &cpp.display().to_string(),
        ],
    );
}

#[test]
fn every_entry_point_with_bad_arguments_gives_a_status_never_a_crash() {
    let p = programs();
    let prefix = prefix("api");
    let topic = "api-checks".to_owned();
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let _cleanup2 = Cleanup(prefix.clone(), format!("{topic}-2"));
    let _cleanup3 = Cleanup(prefix.clone(), format!("{topic}-lanes"));
    let child = p
        .command("api_checks")
        .args([&prefix, &topic])
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out) = finish(child, LONG);
    assert_eq!(code, Some(0), "api_checks failed:\n{out}");
    assert_eq!(field(&out, "failed"), 0);
    assert!(field(&out, "checks") >= 100, "{out}");
    eprintln!(
        "api_checks: sanitizers {}",
        if p.sanitized { "on" } else { "unavailable" }
    );
}

/// A Rust subscriber of a topic a C process publishes; returns (received, lost).
fn rust_reads_c(policy: &str, slots: &str, slot: usize, count: u64) -> (u64, u64) {
    let prefix = prefix(&format!("c2r{policy}"));
    let topic = format!("c2r-{policy}");
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let child = programs()
        .command("peer_pub")
        .args([
            &prefix,
            &topic,
            policy,
            slots,
            &slot.to_string(),
            &count.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let opts = SubscriberOptions::default()
        .prefix(&prefix)
        .start(Start::Oldest);
    let mut sub = Subscriber::attach_wait(&topic, opts, LONG).expect("attach to the C topic");
    let (mut received, mut lost, mut next) = (0u64, 0u64, 0u64);
    loop {
        match sub.recv_timeout(LONG) {
            Ok(s) => {
                assert_eq!(s.seq(), next, "out of order");
                assert_eq!(&*s, &pattern(s.seq(), slot)[..], "payload of {}", s.seq());
                next += 1;
                received += 1;
            }
            Err(RecvTimeoutError::Lagged(n)) => {
                lost += n;
                next += n;
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let (code, out) = finish(child, LONG);
    assert_eq!(code, Some(0), "peer_pub failed: {out}");
    assert_eq!(field(&out, "sent"), count);
    (received, lost)
}

#[test]
fn a_c_publisher_to_a_rust_subscriber_under_both_policies_0_bytes_to_the_slot_size() {
    let (received, lost) = rust_reads_c("block", "8", 300, 3000);
    assert_eq!((received, lost), (3000, 0), "Block loses nothing");
    let (received, lost) = rust_reads_c("overwrite", "64", 300, 3000);
    assert_eq!(
        received + lost,
        3000,
        "Overwrite: every message received or counted lost"
    );
}

/// A C++ subscriber of a topic this process publishes; returns its RESULT line's
/// (received, lost, bad).
fn cpp_reads_rust(
    overflow: Overflow,
    slots: u64,
    slot: usize,
    count: u64,
    go: bool,
) -> (u64, u64, u64) {
    let tag = if overflow == Overflow::Block {
        "b"
    } else {
        "o"
    };
    let prefix = prefix(&format!("r2c{tag}{}", u8::from(go)));
    let topic = "r2c".to_owned();
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let config = PublisherConfig::default()
        .prefix(&prefix)
        .slots(slots)
        .slot_size(slot as u64)
        .overflow(overflow);
    let mut p = Publisher::create(&topic, config).unwrap();
    let mut args = vec![prefix.clone(), topic.clone(), slot.to_string()];
    if go {
        args.push("go".into());
    }
    let mut child = programs()
        .command("peer_sub")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = expect_line(&mut child, "ATTACHED");
    p.wait_for_subscribers(1, LONG).unwrap();
    for seq in 0..count {
        assert_eq!(p.send(&pattern(seq, slot)).unwrap(), seq);
    }
    drop(p);
    if go {
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }
    let mut out = String::new();
    for line in reader.lines() {
        out.push_str(&line.unwrap());
        out.push('\n');
    }
    let (code, _) = finish(child, LONG);
    assert_eq!(code, Some(0), "peer_sub failed: {out}");
    (
        field(&out, "received"),
        field(&out, "lost"),
        field(&out, "bad"),
    )
}

#[test]
fn a_rust_publisher_to_a_cpp_subscriber_under_both_policies_0_bytes_to_the_slot_size() {
    assert_eq!(
        cpp_reads_rust(Overflow::Block, 8, 300, 3000, false),
        (3000, 0, 0)
    );
    let (received, lost, bad) = cpp_reads_rust(Overflow::Overwrite, 64, 300, 3000, false);
    assert_eq!((received + lost, bad), (3000, 0));
    assert!(received > 0, "nothing received");
}

#[test]
fn a_lapped_cpp_subscriber_reports_the_exact_loss() {
    // 100 messages into 8 slots before the subscriber reads a single one.
    let (received, lost, bad) = cpp_reads_rust(Overflow::Overwrite, 8, 64, 100, true);
    assert_eq!(bad, 0, "order or payload or loss total wrong");
    assert!((1..=8).contains(&received), "received {received}");
    assert_eq!(lost, 100 - received, "lost is exact");
}

/// Three C publishers share a topic a Rust publisher created (and leaves once they have
/// joined): two handles in one process and one in another. A C++ subscriber checks each
/// publisher's order and payloads and its lane's losses; returns its RESULT line's
/// (publishers, received, lost, bad) and its PUB lines.
fn cpp_reads_c_lanes(policy: &str, slots: u64, count: u64) -> ((u64, u64, u64, u64), String) {
    const SLOT: usize = 300;
    let prefix = prefix(&format!("lanes{policy}"));
    let topic = "lanes".to_owned();
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let overflow = if policy == "block" {
        Overflow::Block
    } else {
        Overflow::Overwrite
    };
    let config = PublisherConfig::default()
        .prefix(&prefix)
        .slots(slots)
        .slot_size(SLOT as u64)
        .overflow(overflow)
        .max_publishers(4);
    // Keeps the topic alive until every C publisher has joined.
    let creator = Publisher::create(&topic, config).unwrap();
    let mut sub = programs()
        .command("lanes_sub")
        .args([&prefix, &topic, &SLOT.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let sub_out = expect_line(&mut sub, "ATTACHED");
    let spawn_pub = |handles: &str| {
        let mut child = programs()
            .command("lanes_pub")
            .args([
                prefix.as_str(),
                &topic,
                policy,
                &slots.to_string(),
                &SLOT.to_string(),
                "4",
                &count.to_string(),
                handles,
                "gate",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = expect_line(&mut child, "READY");
        (child, out)
    };
    // Both processes join before either publishes: one that finished and left before
    // the other joined would hand its lane over, and the joiner continues that lane's
    // sequence, so a loss across the handover could not be told apart per publisher.
    let (mut two, two_out) = spawn_pub("2");
    let (mut one, one_out) = spawn_pub("1");
    drop(creator);
    for child in [&mut two, &mut one] {
        let mut gate = child.stdin.take().unwrap();
        gate.write_all(b"go\n").unwrap();
    }
    for (child, out) in [(two, two_out), (one, one_out)] {
        let rest: String = out.lines().map(|l| l.unwrap() + "\n").collect();
        let (code, _) = finish(child, LONG);
        assert_eq!(code, Some(0), "lanes_pub failed: {rest}");
        assert_eq!(field(&rest, "sent"), count);
    }
    let out: String = sub_out.lines().map(|l| l.unwrap() + "\n").collect();
    let (code, _) = finish(sub, LONG);
    assert_eq!(code, Some(0), "lanes_sub failed: {out}");
    (
        (
            field(&out, "publishers"),
            field(&out, "received"),
            field(&out, "lost"),
            field(&out, "bad"),
        ),
        out,
    )
}

#[test]
fn c_publishers_sharing_a_topic_reach_a_cpp_subscriber_each_in_order() {
    const COUNT: u64 = 3000;
    let ((publishers, received, lost, bad), out) = cpp_reads_c_lanes("block", 8, COUNT);
    assert_eq!(
        (publishers, received, lost, bad),
        (3, 3 * COUNT, 0, 0),
        "{out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("PUB") && l.contains(&format!("received={COUNT} lost=0")))
            .count(),
        3,
        "every publisher's messages, all of them: {out}"
    );
    // Overwrite: per publisher, what arrived is in order (checked by lanes_sub) and what
    // did not is counted, exactly, against its lane.
    let ((publishers, received, lost, bad), out) = cpp_reads_c_lanes("overwrite", 64, COUNT);
    assert_eq!(
        (publishers, received + lost, bad),
        (3, 3 * COUNT, 0),
        "{out}"
    );
    for line in out.lines().filter(|l| l.starts_with("PUB")) {
        let n = |key: &str| -> u64 {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(n("received") > 0, "{line}");
        assert_eq!(n("received") + n("lost"), COUNT, "{line}");
    }
}

#[test]
fn a_c_subscriber_killed_holding_a_block_sample_does_not_stop_the_publisher() {
    let prefix = prefix("hold");
    let topic = "hold".to_owned();
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let config = PublisherConfig::default()
        .prefix(&prefix)
        .slots(4)
        .slot_size(64)
        .overflow(Overflow::Block);
    let mut p = Publisher::create(&topic, config).unwrap();
    let mut child = programs()
        .command("holder")
        .args([&prefix, &topic])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    p.wait_for_subscribers(1, LONG).unwrap();
    p.send(b"pinned").unwrap();
    let _reader = expect_line(&mut child, "HELD seq=0");
    // The ring fills behind the held slot: the publisher must wait.
    for _ in 0..3 {
        p.send(b"x").unwrap();
    }
    assert!(p.try_loan().is_err(), "the held sample pins the ring");
    let killed = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    for i in 0..20u64 {
        let mut loan = p.loan_timeout(Duration::from_secs(10)).unwrap_or_else(|_| {
            panic!("message {i}: the publisher is stuck behind a dead subscriber")
        });
        loan.write_at(0, b"after");
        loan.commit(5);
    }
    eprintln!("publisher went on {:?} after the kill", killed.elapsed());
    assert_eq!(p.subscriber_count(), 0);
}

#[test]
fn a_cpp_wait_set_on_two_topics_gets_everything_and_its_notifier_rings() {
    const COUNT: u64 = 2000;
    let prefix = prefix("ws");
    let names = ["ws-a".to_owned(), "ws-b".to_owned()];
    let _cleanup: Vec<Cleanup> = names
        .iter()
        .map(|t| Cleanup(prefix.clone(), t.clone()))
        .collect();
    let config = PublisherConfig::default()
        .prefix(&prefix)
        .slots(16)
        .slot_size(64)
        .overflow(Overflow::Block);
    let mut pubs: Vec<Publisher> = names
        .iter()
        .map(|t| Publisher::create(t, config.clone()).unwrap())
        .collect();
    let mut child = programs()
        .command("waitset")
        .args([&prefix, &names[0], &names[1]])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = expect_line(&mut child, "ATTACHED");
    for p in pubs.iter_mut() {
        p.wait_for_subscribers(1, LONG).unwrap();
    }
    for seq in 0..COUNT {
        // Bursts and pauses, so the waiter sleeps in the set often.
        let p = &mut pubs[(seq % 2) as usize];
        p.send(&seq.to_le_bytes()).unwrap();
        if seq % 50 == 0 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    drop(pubs);
    let out: String = reader.lines().map(|l| l.unwrap() + "\n").collect();
    let (code, _) = finish(child, LONG);
    assert_eq!(code, Some(0), "waitset failed: {out}");
    assert_eq!(
        (field(&out, "a"), field(&out, "b"), field(&out, "bad")),
        (COUNT / 2, COUNT / 2, 0)
    );
    assert!(
        field(&out, "notified") >= 1,
        "the notifier never woke the set"
    );
}

#[test]
fn cpp_drain_stops_on_false_or_an_exception_and_refuses_reentry() {
    let prefix = prefix("drain");
    let topic = "drain-stop";
    let _cleanup = [
        Cleanup(prefix.clone(), topic.to_owned()),
        Cleanup(prefix.clone(), format!("{topic}-out")),
    ];
    let child = programs()
        .command("drain_stop")
        .args([&prefix, topic])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out) = finish(child, LONG);
    assert_eq!(code, Some(0), "drain_stop failed:\n{out}");
    assert!(out.contains("failed=0"), "{out}");
}

#[test]
fn a_c_subscriber_refuses_another_users_topic_unless_it_trusts_that_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to give the segment to another user");
        return;
    }
    const OTHER: u32 = 65534;
    let prefix = prefix("trust");
    let topic = "trusted";
    let _cleanup = Cleanup(prefix.clone(), topic.to_owned());
    let mut publisher = Publisher::create(
        topic,
        PublisherConfig::default()
            .prefix(&prefix)
            .overflow(Overflow::Overwrite),
    )
    .unwrap();
    publisher.send(b"squat!").unwrap();
    // The segment now belongs to another user, as if that user had created it.
    nix::unistd::chown(
        format!("/dev/shm/{prefix}.{topic}").as_str(),
        Some(nix::unistd::Uid::from_raw(OTHER)),
        Some(nix::unistd::Gid::from_raw(OTHER)),
    )
    .unwrap();
    let child = programs()
        .command("trust_check")
        .args([prefix.as_str(), topic, &OTHER.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out) = finish(child, LONG);
    assert_eq!(code, Some(0), "trust_check failed:\n{out}");
    assert_eq!(field(&out, "failed"), 0);
}

#[test]
fn the_cpp_market_data_publisher_feeds_the_c_subscriber_example() {
    let p = programs();
    let prefix = prefix("md");
    let topic = "quotes".to_owned();
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let publisher = p
        .command("md_publisher")
        .args([&topic, "20000", &prefix])
        .spawn()
        .unwrap();
    let subscriber = p
        .command("c_subscriber")
        .args([&topic, &prefix])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out) = finish(subscriber, LONG);
    assert_eq!(code, Some(0), "c_subscriber failed: {out}");
    assert_eq!(field(&out, "received"), 20000);
    assert_eq!(field(&out, "lost"), 0);
    assert_eq!(field(&out, "out_of_order"), 0);
    let (code, _) = finish(publisher, LONG);
    assert_eq!(code, Some(0));
}

/// Removes every topic under `prefix` when dropped (a service has several).
struct PrefixCleanup(String);

impl Drop for PrefixCleanup {
    fn drop(&mut self) {
        for t in ringcast::name::list_topics(&self.0).unwrap_or_default() {
            let _ = ringcast::inspect::remove(&self.0, &t);
        }
    }
}

/// A hang bound for a dead server to be noticed, not a speed claim (liveness is two
/// 50 ms slices plus a wait's period).
const BOUND: Duration = Duration::from_secs(5);

#[test]
fn a_c_server_and_a_c_client_in_two_processes_call_stream_defer_and_end() {
    let p = programs();
    let prefix = prefix("svc");
    let _cleanup = PrefixCleanup(prefix.clone());
    let mut server = p
        .command("svc_server")
        .args([&prefix, "c-echo"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let _reader = expect_line(&mut server, "SERVING");
    let client = p
        .command("svc_client")
        .args([&prefix, "c-echo", "basic"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out) = finish(client, LONG);
    assert_eq!(code, Some(0), "svc_client failed:\n{out}");
    assert_eq!(field(&out, "failed"), 0);
    assert!(field(&out, "checks") >= 30, "{out}");
    let (code, _) = finish(server, LONG);
    assert_eq!(code, Some(0), "svc_server failed");
}

#[test]
fn every_service_entry_point_with_bad_arguments_gives_a_status_never_a_crash() {
    let p = programs();
    let prefix = prefix("svcapi");
    let _cleanup = PrefixCleanup(prefix.clone());
    let child = p
        .command("svc_checks")
        .args([&prefix, "svc-checks"])
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out) = finish(child, LONG);
    assert_eq!(code, Some(0), "svc_checks failed:\n{out}");
    assert_eq!(field(&out, "failed"), 0);
    assert!(field(&out, "checks") >= 130, "{out}");
}

#[test]
fn a_fork_child_is_refused_the_parents_handles_and_destroying_them_leaves_the_parents_topic_whole()
{
    let p = programs();
    let prefix = prefix("fork");
    let _cleanup = PrefixCleanup(prefix.clone());
    let child = p
        .command("fork_checks")
        .arg(&prefix)
        // The child forgets what it inherited (never frees the parent's state): a leak
        // there by design.
        .env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out) = finish(child, LONG);
    assert_eq!(code, Some(0), "fork_checks failed:\n{out}");
    assert_eq!(field(&out, "failed"), 0);
    assert!(field(&out, "checks") >= 37, "{out}");
}

#[test]
fn a_c_server_takes_a_mode_and_a_c_client_trusts_whom_it_is_told() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to give the name plate to another user");
        return;
    }
    let prefix = prefix("svctrust");
    let _cleanup = PrefixCleanup(prefix.clone());
    let child = programs()
        .command("svc_trust")
        .args([&prefix, "svc-trust", "65534"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out) = finish(child, LONG);
    assert_eq!(code, Some(0), "svc_trust failed:\n{out}");
    assert_eq!(field(&out, "failed"), 0);
    assert!(field(&out, "checks") >= 20, "{out}");
}

#[test]
fn the_cpp_service_wrapper_calls_streams_defers_and_ends_dropped_requests() {
    let p = programs();
    let prefix = prefix("svccpp");
    let _cleanup = PrefixCleanup(prefix.clone());
    let child = p
        .command("svc_cpp")
        .args([&prefix, "cpp-svc"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out) = finish(child, LONG);
    assert_eq!(code, Some(0), "svc_cpp failed:\n{out}");
    assert_eq!(field(&out, "failed"), 0);
    assert!(field(&out, "checks") >= 20, "{out}");
}

#[test]
fn a_server_sigkilled_while_a_c_client_calls_ends_the_call_disconnected_within_a_bound() {
    let p = programs();
    let prefix = prefix("svckill");
    let _cleanup = PrefixCleanup(prefix.clone());
    let mut server = p
        .command("svc_server")
        .args([&prefix, "doomed"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server_out = expect_line(&mut server, "SERVING");
    let mut client = p
        .command("svc_client")
        .args([&prefix, "doomed", "hang"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client_out = expect_line(&mut client, "CALLING");
    // The server has the request (and will never answer it).
    let mut line = String::new();
    loop {
        line.clear();
        assert!(server_out.read_line(&mut line).unwrap() > 0, "server ended");
        if line.starts_with("HANGING") {
            break;
        }
    }
    let killed = Instant::now();
    server.kill().unwrap();
    server.wait().unwrap();
    line.clear();
    client_out.read_line(&mut line).unwrap();
    let after = killed.elapsed();
    assert!(line.starts_with("RESULT"), "client said {line:?}");
    assert_eq!(field(&line, "status"), 2, "RINGCAST_DISCONNECTED: {line}");
    assert!(after < BOUND, "the call ended {after:?} after the kill");
    let (code, _) = finish(client, LONG);
    assert_eq!(code, Some(0), "svc_client failed its checks after the kill");
    eprintln!("call ended {after:?} after the kill");
}

#[test]
fn one_c_wait_set_reports_a_subscriber_a_server_and_a_client_and_a_dead_server() {
    let p = programs();
    let prefix = prefix("svcws");
    let _cleanup = PrefixCleanup(prefix.clone());
    let mut server = p
        .command("svc_server")
        .args([&prefix, "ws-remote"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server_out = expect_line(&mut server, "SERVING");
    let mut waiter = p
        .command("svc_waitset")
        .args([&prefix, "ws-local", "ws-remote", "ws-topic"])
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut waiter_out = expect_line(&mut waiter, "HANG_SENT");
    // The server has the "hang" request (and will never answer it).
    let mut line = String::new();
    loop {
        line.clear();
        assert!(server_out.read_line(&mut line).unwrap() > 0, "server ended");
        if line.starts_with("HANGING") {
            break;
        }
    }
    let killed = Instant::now();
    server.kill().unwrap();
    server.wait().unwrap();
    line.clear();
    waiter_out.read_line(&mut line).unwrap();
    let after = killed.elapsed();
    assert!(
        line.starts_with("CLIENT_READY"),
        "svc_waitset said {line:?}"
    );
    assert!(
        after < BOUND,
        "the client was ready {after:?} after the kill"
    );
    let rest: String = waiter_out.lines().map(|l| l.unwrap() + "\n").collect();
    let (code, _) = finish(waiter, LONG);
    assert_eq!(code, Some(0), "svc_waitset failed:\n{line}{rest}");
    assert_eq!(field(&rest, "failed"), 0, "{rest}");
    assert!(field(&rest, "checks") >= 60, "{rest}");
    eprintln!("client ready {after:?} after the kill");
}
