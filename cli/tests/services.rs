//! `ringcast call` and `ringcast serve` with real processes: a shell loop served as a
//! service answers `call`'s lines in order, each `call` gets only its own answers, a dead
//! server or client never hangs the other side, CMD's end ends `serve`; `list`,
//! `inspect` and `gc` see services.

mod common;

use std::io::Write;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::*;

/// A hang bound, not a speed claim: a dead server is seen within the liveness bound.
const BOUND: Duration = Duration::from_secs(5);

/// Answers each line `l` with `re:l`; never answers `hang`; answers `slow...` after a
/// second; answers `long` with a 16-byte line.
const ECHO: &str = r#"while read -r l; do
  case "$l" in
    hang) ;;
    slow*) sleep 1; echo "re:$l" ;;
    long) echo 0123456789abcdef ;;
    *) echo "re:$l" ;;
  esac
done"#;

fn recv_line(rx: &Receiver<String>) -> String {
    rx.recv_timeout(LONG).expect("a line from call")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_shell_loop_served_answers_each_line_in_order_and_a_newline_request_gets_no_answer() {
    let p = Prefix::new("svc", "echo");
    let _serve = p.serve("echo", &["--max-response", "8"], ECHO);
    let out = p.call_all("echo", &[], "a\nb\nc\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(text(&out.stdout), "re:a\nre:b\nre:c\n");
    // Many in flight at once: still in the input's order. An empty line is a request too.
    let input: String = (0..300).map(|i| format!("{i}\n")).collect::<String>() + "\n";
    let expected: String = (0..300).map(|i| format!("re:{i}\n")).collect::<String>() + "re:\n";
    let out = p.call_all("echo", &[], &input);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(text(&out.stdout), expected);
    // A line longer than --max-response ends its request with no response (nothing
    // printed); the next line is answered by its own line.
    let out = p.call_all("echo", &[], "long\nx\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(text(&out.stdout), "re:x\n");
    // A request holding a newline (only a program can send one) ends with no response,
    // and never shifts the answers of the requests after it.
    let opts = ringcast::ClientOptions::default()
        .prefix(&p.0)
        .wait(Duration::from_secs(5));
    let mut client = ringcast::Client::connect("echo", opts).unwrap();
    assert_eq!(
        client.call(b"one\ntwo", LONG).unwrap_err(),
        ringcast::CallError::NoResponse
    );
    assert_eq!(&client.call(b"three", LONG).unwrap()[..], b"re:three");
}

#[test]
fn two_calls_at_once_each_get_their_own_answers() {
    let p = Prefix::new("svc", "two");
    let _serve = p.serve("two", &[], ECHO);
    let inputs: Vec<String> = ["x", "y"]
        .iter()
        .map(|tag| (0..200).map(|i| format!("{tag}{i}\n")).collect())
        .collect();
    std::thread::scope(|scope| {
        let calls: Vec<_> = inputs
            .iter()
            .map(|input| scope.spawn(|| p.call_all("two", &[], input)))
            .collect();
        for (call, input) in calls.into_iter().zip(&inputs) {
            let out = call.join().unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let expected: String = input.lines().map(|l| format!("re:{l}\n")).collect();
            assert_eq!(text(&out.stdout), expected);
        }
    });
}

#[test]
fn call_without_a_server_fails_naming_the_service_after_its_wait() {
    let p = Prefix::new("svc", "none");
    let out = p.call_all("nobody", &[], "a\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("\"nobody\""), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let start = Instant::now();
    let out = p.call_all("nobody", &["--wait", "0.5"], "a\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(start.elapsed() >= Duration::from_millis(500));
    assert!(stderr(&out).contains("\"nobody\""), "{}", stderr(&out));
}

#[test]
fn a_call_whose_server_is_sigkilled_exits_1_instead_of_hanging() {
    let p = Prefix::new("svc", "kill");
    let mut serve = p.serve("kill", &[], ECHO);
    let (call, mut stdin, rx) = p.call("kill", &["--timeout", "600"]);
    stdin.write_all(b"a\nhang\n").unwrap();
    drop(stdin);
    assert_eq!(recv_line(&rx), "re:a");
    // `hang` is in flight, and never answered: only the server's death ends the call.
    serve.kill(libc::SIGKILL);
    let out = call.finish(BOUND);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("\"kill\"") && err.contains("gone"), "{err}");
}

#[test]
fn serve_goes_on_serving_after_a_call_is_sigkilled_mid_request() {
    let p = Prefix::new("svc", "client");
    let mut serve = p.serve("client", &[], ECHO);
    let (mut first, mut stdin, rx) = p.call("client", &[]);
    stdin.write_all(b"a\nslow\n").unwrap();
    assert_eq!(recv_line(&rx), "re:a");
    // `slow` is with CMD now (or about to be): its answer finds its client gone.
    first.kill(libc::SIGKILL);
    drop(first);
    let out = p.call_all("client", &[], "b\nc\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(text(&out.stdout), "re:b\nre:c\n");
    assert!(serve.running());
}

#[test]
fn serve_exits_1_when_its_program_ends_and_its_callers_see_the_server_gone() {
    let p = Prefix::new("svc", "early");
    let serve = p.serve("early", &[], r#"read -r l; echo "re:$l"; exit 3"#);
    let out = p.call_all("early", &["--timeout", "600"], "a\nb\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        text(&out.stdout).starts_with("re:a\n"),
        "{}",
        text(&out.stdout)
    );
    assert!(stderr(&out).contains("\"early\""), "{}", stderr(&out));
    let out = serve.finish(LONG);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("\"early\"") && err.contains("exit status: 3"),
        "{err}"
    );
    // A program that cannot be run.
    let out = p.run(&["serve", "early", "--", "/nonexistent/program"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/program"),
        "{}",
        stderr(&out)
    );
    // Its server was taken down: nothing is left live.
    assert!(!p.service_live("early"));
}

#[test]
fn sigterm_stops_serve_with_exit_0_and_its_program_with_it() {
    let p = Prefix::new("svc", "term");
    let (mut serve, cmd_pid) = p.serve_cat("term");
    let cmd_pid = cmd_pid as i32;
    assert_eq!(text(&p.call_all("term", &[], "hi\n").stdout), "hi\n");
    serve.kill(libc::SIGTERM);
    let out = serve.finish(LONG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // `serve` reaped it: the pid is gone (or, in a rare reuse, not `cat`'s).
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(cmd_pid, 0) } == 0;
    let still_cat = exists
        && std::fs::read_to_string(format!("/proc/{cmd_pid}/comm"))
            .is_ok_and(|c| c.trim() == "cat");
    assert!(!still_cat, "the program {cmd_pid} outlived serve");
    assert!(!p.service_live("term"));
}

#[test]
fn bad_usage_exits_2() {
    let p = Prefix::new("svc", "usage");
    for args in [
        &["serve", "svc"][..],
        &["serve", "svc", "cat"],
        &["serve", "svc", "--max-clients", "0", "--", "cat"],
        &["serve", "svc", "--max-clients", "64", "--", "cat"],
        &["serve", "bad/name", "--", "cat"],
        &["call", "bad/name"],
        &["call", "svc", "--timeout", "-1"],
        &["call"],
    ] {
        let out = p.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn list_and_inspect_show_a_service_its_server_and_its_clients() {
    let p = Prefix::new("svc", "list");
    let serve = p.serve("shown", &[], ECHO);
    let (call, mut stdin, rx) = p.call("shown", &[]);
    stdin.write_all(b"a\n").unwrap();
    assert_eq!(recv_line(&rx), "re:a");
    let line = "shown\tservice\tserver live\t1 clients\t0 queued";
    let mut listed = String::new();
    wait_until("list to show the client", || {
        listed = text(&p.run(&["list"]).stdout);
        listed.lines().any(|l| l == line)
    });
    // One line for the service, none for its internal topics.
    assert!(!listed.contains("shown.."), "{listed}");
    let out = p.run(&["inspect", "shown"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!("server         live (pid {})", serve.id())),
        "{shown}"
    );
    assert!(shown.contains("clients        1 live"), "{shown}");
    assert!(
        shown.contains(&format!(
            "pid {:>7}  live   queued 0  responses 1  unread 0",
            call.id()
        )),
        "{shown}"
    );
    let json = text(&p.run(&["inspect", "--service", "shown", "--json"]).stdout);
    assert!(
        json.starts_with(r#"{"service":"shown","server":"live""#)
            && json.contains(r#""live_clients":1"#)
            && json.contains(&format!(
                r#""pid":{},"state":"live","queued":0,"responses":1"#,
                call.id()
            )),
        "{json}"
    );
    // A name that is neither a topic nor a service.
    assert_eq!(
        p.run(&["inspect", "--service", "nothing"]).status.code(),
        Some(1)
    );
    drop(stdin);
    assert_eq!(call.finish(LONG).status.code(), Some(0));
}

#[test]
fn gc_removes_the_topics_of_a_sigkilled_server() {
    let p = Prefix::new("svc", "gc");
    let mut serve = p.serve("gcd", &[], ECHO);
    assert_eq!(text(&p.call_all("gcd", &[], "a\n").stdout), "re:a\n");
    // gc leaves a live service alone.
    assert_eq!(p.run(&["gc"]).status.code(), Some(0));
    assert!(p.service_live("gcd"));
    serve.kill(libc::SIGKILL);
    drop(serve.finish(LONG));
    let listed = text(&p.run(&["list"]).stdout);
    assert!(listed.contains("gcd\tservice\tserver dead"), "{listed}");
    assert!(!p.service_topics("gcd").is_empty());
    let out = p.run(&["gc"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text(&out.stdout).contains("removed gcd..service"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(p.service_topics("gcd"), Vec::<String>::new());
}

/// `call` sends each line as soon as it is read, also while earlier calls wait for
/// their answers, and `inspect` shows each client's requests the server has not read.
#[test]
fn call_sends_lines_while_earlier_calls_wait_and_inspect_shows_them_queued() {
    use ringcast::service::{Server, ServerConfig};
    let p = Prefix::new("svc", "queued");
    let mut server = Server::create("q", ServerConfig::default().prefix(&p.0)).unwrap();
    let (mut call, mut stdin, rx) = p.call("q", &[]);
    // The greeting is read (and answered) by a receive; after it, nothing is read until
    // the client's three requests wait in its lane.
    wait_until("the client's greeting", || {
        let _ = server.try_recv();
        server.stats().clients == 1
    });
    let pid = call.id();
    let row = |queued: u64| format!("pid {pid:>7}  live   queued {queued}  responses");
    let mut shown = String::new();
    // One line at a time, each written only once the one before is queued unanswered.
    for (n, line) in [(1, "a\n"), (2, "b\n"), (3, "c\n")] {
        stdin.write_all(line.as_bytes()).unwrap();
        wait_until(&format!("inspect to show {n} queued"), || {
            assert!(call.running(), "call ended early");
            shown = text(&p.run(&["inspect", "q"]).stdout);
            shown.contains(&row(n))
        });
    }
    assert!(shown.contains("queued         3 (requests"), "{shown}");
    let json = text(&p.run(&["inspect", "--service", "q", "--json"]).stdout);
    assert!(
        json.contains(&format!(r#""pid":{pid},"state":"live","queued":3,"#)),
        "{json}"
    );
    for want in ["a", "b", "c"] {
        let req = server.recv_timeout(LONG).unwrap();
        assert_eq!(&req[..], want.as_bytes());
        req.respond(format!("re:{want}").as_bytes()).unwrap();
        assert_eq!(recv_line(&rx), format!("re:{want}"));
    }
    let shown = text(&p.run(&["inspect", "q"]).stdout);
    assert!(shown.contains(&row(0)), "{shown}");
    drop(stdin);
    assert_eq!(call.finish(LONG).status.code(), Some(0));
}

#[test]
fn serve_mode_sets_the_topics_permissions_and_call_trusts_only_whom_it_is_told() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let p = Prefix::new("svc", "mode");
    let bad = p
        .cmd(&["serve", "m", "--mode", "9", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let bad = p
        .cmd(&["serve", "m", "--mode", "700", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("mode"), "{}", stderr(&bad));
    let _serve = p.serve("m", &["--mode", "666"], ECHO);
    let mode = |suffix: &str| {
        std::fs::metadata(format!("/dev/shm/{}.m..{suffix}", p.0))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("requests"), 0o666);
    assert_eq!(mode("service"), 0o644);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped the trust half: needs root to give the name plate to another user");
        return;
    }
    // The name plate now belongs to `nobody`, as if that user had squatted it.
    let plate = format!("/dev/shm/{}.m..service", p.0);
    nix::unistd::chown(
        plate.as_str(),
        Some(nix::unistd::Uid::from_raw(65534)),
        Some(nix::unistd::Gid::from_raw(65534)),
    )
    .unwrap();
    assert_eq!(std::fs::metadata(&plate).unwrap().uid(), 65534);
    let out = p.call_all("m", &["--wait", "2"], "x\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("uid 65534"), "{}", stderr(&out));
    for trust in [
        &["--trust-user", "65534"][..],
        &["--trust-group", "65534"],
        &["--trust-any-owner"],
    ] {
        let out = p.call_all("m", trust, "x\n");
        assert_eq!(out.status.code(), Some(0), "{trust:?}: {}", stderr(&out));
        assert_eq!(text(&out.stdout), "re:x\n");
    }
}

#[test]
fn list_and_inspect_say_where_an_imported_service_runs() {
    let p = Prefix::new("svc", "origin");
    let origin = "far-host:lab (bridge 1f2e)";
    let _proxy = ringcast::Server::create(
        "far",
        ringcast::ServerConfig::default()
            .prefix(p.0.as_str())
            .imported_from(origin),
    )
    .unwrap();
    let _local = ringcast::Server::create(
        "near",
        ringcast::ServerConfig::default().prefix(p.0.as_str()),
    )
    .unwrap();
    let listed = text(&p.run(&["list"]).stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("far\tservice\tserver live")
                && l.ends_with(&format!("\timported from {origin}"))),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("near\tservice\t") && !l.contains("imported")),
        "{listed}"
    );
    let shown = text(&p.run(&["inspect", "far"]).stdout);
    assert!(
        shown.contains(&format!("imported from  {origin}\n")),
        "{shown}"
    );
    let json = text(&p.run(&["inspect", "--service", "far", "--json"]).stdout);
    assert!(json.contains(&format!(r#""origin":"{origin}""#)), "{json}");
    let json = text(&p.run(&["inspect", "--service", "near", "--json"]).stdout);
    assert!(json.contains(r#""origin":null"#), "{json}");
    // An origin a topic could not have is refused, as for a topic.
    assert!(matches!(
        ringcast::Server::create(
            "bad",
            ringcast::ServerConfig::default()
                .prefix(p.0.as_str())
                .imported_from("line\nbreak"),
        ),
        Err(ringcast::ServeError::Config { .. })
    ));
}
