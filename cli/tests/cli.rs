//! The `ringcast` command-line contract: `sub` started first and `pub --wait-subscribers`
//! move a file's lines in order; exit codes 0 / 1 / 2 and never a panic (101); `list`,
//! `inspect --json` and `gc` (which removes only segments whose publisher is dead).

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ringcast");

fn prefix() -> String {
    format!("rccli{}", std::process::id())
}

fn ringcast(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env("RINGCAST_PREFIX", prefix());
    c
}

fn run(args: &[&str]) -> Output {
    ringcast(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ringcast")
}

/// Removes what a test left under our prefix.
struct Cleanup(&'static str);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}.{}", prefix(), self.0));
    }
}

#[test]
fn sub_started_first_prints_the_published_file_in_order() {
    let _c = Cleanup("lines");
    let lines: Vec<String> = (0..2000)
        .map(|i| format!("line {i} {}", "x".repeat(i % 50)))
        .collect();
    let text = lines.join("\n") + "\n";
    let sub = ringcast(&["sub", "lines", "--count", "2000", "--timeout", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sub");
    // Drain the subscriber's output while the publisher runs: a full pipe would stall the
    // subscriber, and with it the Block publisher.
    let sub = std::thread::spawn(move || sub.wait_with_output().unwrap());
    let mut publisher = ringcast(&["pub", "lines", "--wait-subscribers", "1", "--slots", "8"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn pub");
    publisher
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(publisher.wait().unwrap().success(), "pub failed");
    let out = sub.join().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
}

#[test]
fn sub_exits_zero_when_the_publisher_is_gone_after_printing_everything() {
    let _c = Cleanup("gone");
    let sub = ringcast(&["sub", "gone", "--timeout", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut publisher = ringcast(&["pub", "gone", "--wait-subscribers", "1"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    publisher
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\n")
        .unwrap();
    assert!(publisher.wait().unwrap().success());
    let out = sub.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"one\ntwo\n");
}

#[test]
fn exit_codes_follow_the_contract_and_nothing_panics() {
    // 1: a runtime error, one line naming the topic and the cause.
    let t = Instant::now();
    let out = run(&["sub", "missing", "--timeout", "0.2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(t.elapsed() < Duration::from_secs(10));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing") && err.lines().count() == 1, "{err}");
    assert_eq!(run(&["inspect", "missing"]).status.code(), Some(1));
    // 2: bad usage.
    for args in [
        &[][..],
        &["frobnicate"],
        &["pub"],
        &["sub", "t", "--count"],
        &["sub", "t", "--count", "many"],
        &["sub", "t", "--from", "middle"],
        &["sub", "t", "--timeout", "-1"],
        &["pub", "t", "--overflow", "sideways"],
        &["pub", "t", "--mode", "999"],
        &["sub", "../etc"],
        &["sub", ""],
        &["inspect", "t", "extra"],
        &["list", "--bogus"],
    ] {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Odd but valid-looking input: a runtime error at worst, never 101.
    for args in [
        &["pub", "odd", "--slots", "3"][..],
        &["pub", "odd", "--slot-size", "0"],
        &["pub", "odd", "--slots", "99999999999999999999"],
        &["sub", "odd", "--timeout", "0"],
        &["pub", "odd", "--stall-timeout-ms", "0"],
        &[
            "pub",
            "odd",
            "--overflow",
            "overwrite",
            "--stall-timeout-ms",
            "5",
        ],
    ] {
        let code = run(args).status.code();
        assert!(
            matches!(code, Some(1) | Some(2)),
            "{args:?} exited {code:?}"
        );
    }
}

#[test]
fn list_inspect_and_gc_see_liveness() {
    let _c = Cleanup("tools");
    let mut publisher = ringcast(&["pub", "tools", "--slots", "16", "--stall-timeout-ms", "250"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let out = run(&["list"]);
        let text = String::from_utf8(out.stdout).unwrap();
        if text.contains("tools\tlive") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(listed.contains("tools\tlive"), "{listed}");
    let json = String::from_utf8(run(&["inspect", "tools", "--json"]).stdout).unwrap();
    assert!(
        json.contains(r#""publisher_alive":true"#)
            && json.contains(r#""slot_count":16"#)
            && json.contains(r#""stall_timeout_ns":250000000"#),
        "{json}"
    );
    // gc leaves a live topic alone.
    assert_eq!(run(&["gc"]).status.code(), Some(0));
    assert!(std::path::Path::new(&format!("/dev/shm/{}.tools", prefix())).exists());
    // Kill the publisher: the topic is dead, inspect says so, gc removes it.
    publisher.kill().unwrap();
    publisher.wait().unwrap();
    let json = String::from_utf8(run(&["inspect", "tools", "--json"]).stdout).unwrap();
    assert!(json.contains(r#""publisher_alive":false"#), "{json}");
    let out = run(&["gc"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed tools"));
    assert!(!std::path::Path::new(&format!("/dev/shm/{}.tools", prefix())).exists());
}

#[test]
fn a_fifo_named_like_a_segment_never_hangs_list_inspect_or_gc() {
    let _c = Cleanup("fifo");
    let path = format!("/dev/shm/{}.fifo", prefix());
    let c_path = std::ffi::CString::new(path.clone()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    for (args, code) in [
        (&["list"][..], 0),
        (&["inspect", "fifo"][..], 1),
        (&["inspect", "fifo", "--json"][..], 1),
        (&["gc"][..], 0),
    ] {
        let started = Instant::now();
        let mut child = ringcast(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed() > Duration::from_secs(5) {
                let _ = child.kill();
                panic!("ringcast {args:?} hangs on a FIFO");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let out = child.wait_with_output().unwrap();
        assert_eq!(status.code(), Some(code), "ringcast {args:?}: {out:?}");
        if code == 1 {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("FIFO") && err.contains("fifo"), "{err}");
        }
    }
    assert!(
        std::fs::symlink_metadata(&path).is_ok(),
        "gc removed the FIFO"
    );
}

#[test]
fn list_and_inspect_show_where_an_imported_topic_comes_from() {
    let _c = Cleanup("imported");
    let mut p = ringcast::Publisher::create(
        "imported",
        ringcast::PublisherConfig::default()
            .prefix(prefix())
            .imported_from("host-a:rc (bridge 1234)"),
    )
    .unwrap();
    p.count_upstream_loss(7);
    p.send(b"x").unwrap();
    let listed = String::from_utf8(run(&["list"]).stdout).unwrap();
    assert!(
        listed.contains("imported\tlive\t0 subscribers\t1 published\timported from host-a:rc (bridge 1234) (7 lost upstream)"),
        "{listed}"
    );
    let json = String::from_utf8(run(&["inspect", "imported", "--json"]).stdout).unwrap();
    assert!(
        json.contains(r#""origin":"host-a:rc (bridge 1234)","upstream_lost":7"#),
        "{json}"
    );
    let text = String::from_utf8(run(&["inspect", "imported"]).stdout).unwrap();
    assert!(
        text.contains("imported from  host-a:rc (bridge 1234)"),
        "{text}"
    );
    assert!(text.contains("lost upstream  7"), "{text}");
    // A local topic says nothing of the sort.
    let _l = Cleanup("local");
    let _q = ringcast::Publisher::create(
        "local",
        ringcast::PublisherConfig::default().prefix(prefix()),
    )
    .unwrap();
    let json = String::from_utf8(run(&["inspect", "local", "--json"]).stdout).unwrap();
    assert!(
        json.contains(r#""origin":null,"upstream_lost":0"#),
        "{json}"
    );
}

#[test]
fn sub_refuses_another_users_topic_unless_told_to_trust_that_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to give the segment to another user");
        return;
    }
    let _c = Cleanup("squat");
    let cfg = ringcast::PublisherConfig::default()
        .prefix(prefix())
        .overflow(ringcast::Overflow::Overwrite);
    let mut publisher = ringcast::Publisher::create("squat", cfg).unwrap();
    publisher.send(b"forged").unwrap();
    // The segment now belongs to `nobody`, as if that user had created it.
    nix::unistd::chown(
        format!("/dev/shm/{}.squat", prefix()).as_str(),
        Some(nix::unistd::Uid::from_raw(65534)),
        Some(nix::unistd::Gid::from_raw(65534)),
    )
    .unwrap();
    let args = [
        "sub",
        "squat",
        "--from",
        "oldest",
        "--count",
        "1",
        "--timeout",
        "5",
    ];
    let refused = run(&args);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains("uid 65534"),
        "the refusal names the owner: {err}"
    );
    for trust in [
        &["--trust-user", "65534"][..],
        &["--trust-group", "65534"],
        &["--trust-any-owner"],
    ] {
        let out = run(&[&args[..], trust].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{trust:?}: {err}");
        assert_eq!(out.stdout, b"forged\n");
    }
    let bad = run(&["sub", "squat", "--trust-user", "no-such-user-here"]);
    assert_eq!(bad.status.code(), Some(2));
}
