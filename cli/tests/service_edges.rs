//! `ringcast call` and `ringcast serve` at their edges, as a user found them: a line too
//! long for the server, a program that exits right after answering, a server that takes
//! empty requests only, a server of another build or one that dies during the greeting,
//! closed output pipes, dotted prefixes, and `serve` killed with SIGKILL.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Answers each line `l` with `re:l`.
const ECHO: &str = r#"while read -r l; do echo "re:$l"; done"#;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_line_too_long_ends_call_after_the_answers_to_the_lines_before_it() {
    let p = Prefix::new("edge", "long");
    let _serve = p.serve("long", &["--max-request", "64"], ECHO);
    let long = "x".repeat(65);
    for _ in 0..5 {
        let out = p.call_all("long", &[], &format!("a\nb\nc\n{long}\nd\n"));
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(text(&out.stdout), "re:a\nre:b\nre:c\n");
        let err = stderr(&out);
        assert!(
            err.contains("line 4") && err.contains("65 bytes") && err.contains("64"),
            "{err}"
        );
    }
}

#[test]
fn call_holds_at_most_a_request_of_an_endless_line() {
    let p = Prefix::new("edge", "endless");
    let _serve = p.serve("endless", &["--max-request", "64"], ECHO);
    // 64 MiB without a newline, written in chunks (this process never holds it whole, so
    // its children do not start out with its pages): refused by its length, never held.
    let mut child = p.spawn_call("endless", &[]);
    let writer = endless_line(child.stdin.take().unwrap(), b"");
    let out = finish(child, LONG);
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("67108864 bytes"), "{}", stderr(&out));
    assert_children_stayed_small();
}

#[test]
fn answers_printed_just_before_the_program_exits_are_delivered() {
    let p = Prefix::new("edge", "exits");
    for round in 0..4 {
        let service = format!("exits{round}");
        let serve = p.serve(
            &service,
            &[],
            r#"for i in 1 2 3; do read -r a; echo "R$a"; done"#,
        );
        let out = p.call_all(&service, &[], "1\n2\n3\n4\n5\n");
        assert_eq!(text(&out.stdout), "R1\nR2\nR3\n", "{}", stderr(&out));
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("line 4 unanswered"),
            "{}",
            stderr(&out)
        );
        assert_eq!(serve.finish(LONG).status.code(), Some(1));
    }
}

#[test]
fn a_server_of_empty_requests_greets_its_clients() {
    let p = Prefix::new("edge", "empty");
    let _serve = p.serve(
        "empty",
        &["--max-request", "0"],
        r#"while read -r l; do echo "ok"; done"#,
    );
    let out = p.call_all("empty", &[], "\n\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(text(&out.stdout), "ok\nok\n");
    let out = p.call_all("empty", &[], "\nnot empty\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "ok\n");
    assert!(!stderr(&out).contains("internal error"), "{}", stderr(&out));
}

#[test]
fn a_server_of_another_layout_version_is_named_at_once() {
    let p = Prefix::new("edge", "version");
    let _serve = p.serve("version", &[], ECHO);
    // The name plate as another build would make it: the header's first word is the
    // magic (high half) and the layout version (low half, little-endian: byte 0 first).
    let plate = format!("/dev/shm/{}.version..service", p.0);
    let mut bytes = std::fs::read(&plate).unwrap();
    assert_eq!(bytes[0] as u32, ringcast::inspect::LAYOUT_VERSION);
    bytes[0] = bytes[0].wrapping_add(1);
    std::fs::write(&plate, &bytes).unwrap();
    let t = Instant::now();
    let out = p.call_all("version", &["--wait", "5"], "a\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("layout version"), "{}", stderr(&out));
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "waited {:?}",
        t.elapsed()
    );
}

#[test]
fn a_server_that_stops_or_dies_during_the_greeting_is_told_within_the_timeout() {
    let p = Prefix::new("edge", "greet");
    let mut serve = p.serve("greet", &[], ECHO);
    serve.kill(libc::SIGSTOP);
    // Stopped: the greeting waits as long as a response would (--timeout), not 5 s.
    let t = Instant::now();
    let out = p.call_all("greet", &["--timeout", "1"], "a\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("did not answer"), "{}", stderr(&out));
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "waited {:?}",
        t.elapsed()
    );
    // Killed during the greeting: told it is gone, at once.
    let pid = serve.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        kill(pid, libc::SIGKILL);
    });
    let t = Instant::now();
    let out = p.call_all("greet", &["--timeout", "30"], "a\n");
    killer.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the server is gone"),
        "{}",
        stderr(&out)
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "waited {:?}",
        t.elapsed()
    );
}

#[test]
fn list_and_inspect_end_quietly_when_their_reader_is_gone() {
    let p = Prefix::new("edge", "pipe");
    let _serve = p.serve("pipe", &[], ECHO);
    for args in [
        &["list"][..],
        &["inspect", "pipe"][..],
        &["inspect", "--json", "pipe"][..],
        &["inspect", "pipe..requests"][..],
    ] {
        let child = p
            .cmd(args)
            .stdin(std::process::Stdio::null())
            .stdout(closed_pipe())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = finish(child, LONG);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_prefix_with_a_dot_is_refused() {
    let p = Prefix::new("edge", "dot");
    for args in [
        &["--prefix", "a.b", "list"][..],
        &["--prefix", "a.b", "serve", "svc", "--", "cat"][..],
        &["--prefix", "a.b", "call", "svc"][..],
    ] {
        let out = p.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("'.'"), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn the_program_of_a_sigkilled_serve_is_terminated() {
    let p = Prefix::new("edge", "orphan");
    let (mut serve, cmd_pid) = p.serve_cat("orphan");
    serve.kill(libc::SIGKILL);
    // Ended (a zombie, or reaped by whoever adopted it), not `cat` still running.
    wait_until("the program's end", || {
        std::fs::read_to_string(format!("/proc/{cmd_pid}/stat")).map_or(true, |s| {
            let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next();
            state == Some("Z") || !s.contains("(cat)")
        })
    });
}

#[test]
fn pub_holds_at_most_a_slot_of_an_endless_line() {
    let p = Prefix::new("edge", "pubendless");
    let mut sub = p
        .cmd(&["sub", "endless", "--count", "1", "--timeout", "30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut publisher = p
        .cmd(&[
            "pub",
            "endless",
            "--slot-size",
            "64",
            "--wait-subscribers",
            "1",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let writer = endless_line(publisher.stdin.take().unwrap(), b"first\n");
    let out = finish(publisher, LONG);
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 2: 67108864 bytes do not fit a 64-byte slot"),
        "{}",
        stderr(&out)
    );
    let got = lines_of(sub.stdout.take().unwrap());
    assert_eq!(got.recv_timeout(LONG).unwrap(), "first");
    let _ = sub.wait();
    assert_children_stayed_small();
}

/// Writes `first`, then 64 MiB without a newline, into `stdin` (in chunks: this process
/// never holds it whole, so its children do not start out with its pages).
fn endless_line(
    mut stdin: std::process::ChildStdin,
    first: &'static [u8],
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::Write as _;
        let _ = stdin.write_all(first);
        let chunk = vec![b'y'; 64 << 10];
        for _ in 0..1024 {
            if stdin.write_all(&chunk).is_err() {
                return;
            }
        }
    })
}

/// The largest resident set of any child this test process waited for stayed under
/// 48 MiB (a tool holding a 64 MiB line would pass it; ringcast processes are a few MiB).
fn assert_children_stayed_small() {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let max_rss_kib = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru.ru_maxrss
    };
    assert!(max_rss_kib < 48 << 10, "a child grew to {max_rss_kib} KiB");
}
