//! SIGKILL of the exporting bridge, of the importing bridge and of the source publisher:
//! local subscribers see `Disconnected` within the stated bound (as a dead publisher's,
//! not a closed topic, when the source or its bridge died; closed when the source
//! closed), restarts resume, and nothing is left in /dev/shm after gc.
//!
//! The bound: a killed process's TCP connection is reset by the kernel, so Zenoh drops
//! its declarations at once; the importer then closes a withdrawn topic after 250 ms of
//! quiet (`GRACE`), and a subscriber notices a dead publisher within its liveness slice.
//! We allow [`BOUND`] for all of it on a loaded machine.

mod harness;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;
use ringcast::*;

/// The most any of these takes to reach a local subscriber.
const BOUND: Duration = Duration::from_secs(3);
const ROLE: &str = "RINGCAST_BRIDGE_TEST_ROLE";

/// Receives `n` messages whose payloads are their index from `first` on.
fn receive_run(sub: &mut Subscriber, first: u64, n: u64) {
    for i in first..first + n {
        let m = sub
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert_eq!(m.bytes(), i.to_le_bytes(), "message {i}");
    }
}

/// Drains `sub` until `Disconnected`; returns how long that took after `since`.
fn until_disconnected(sub: &mut Subscriber, since: Instant) -> Duration {
    loop {
        match sub.recv_timeout(WAIT) {
            Ok(_) | Err(RecvTimeoutError::Lagged(_)) => {}
            Err(RecvTimeoutError::Disconnected) => return since.elapsed(),
            Err(e) => panic!("expected Disconnected, got {e}"),
        }
    }
}

/// Runs `kill` and checks that `sub` drains and sees `Disconnected` within [`BOUND`].
fn disconnects_within_bound(sub: &mut Subscriber, what: &str, kill: impl FnOnce()) {
    let killed = Instant::now();
    kill();
    let took = until_disconnected(sub, killed);
    eprintln!("{what} killed: Disconnected after {took:?}");
    assert!(took < BOUND, "{what} killed: Disconnected after {took:?}");
    // Not a clean end: the local topic ends as a dead publisher's, as the source did (or
    // as the link did), so that a subscriber here can tell.
    assert!(
        !sub.closed_by_publisher(),
        "{what} killed: the import ended as if its source had closed"
    );
}

/// Attaches to the next incarnation of `topic` (not the one `old` came from).
fn attach_new(prefix: &str, topic: &str, old: &Subscriber) -> Subscriber {
    let old = old.geometry().creation_id;
    let t = Instant::now();
    loop {
        let s = attach(prefix, topic);
        if s.geometry().creation_id != old {
            return s;
        }
        assert!(t.elapsed() < WAIT, "no new incarnation of {topic}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Host A exporting a `Block` topic `t` to host B, 100 messages already through.
struct Running {
    pair: Pair,
    topic: &'static str,
    a: Proc,
    b: Proc,
    src: Publisher,
    sub: Subscriber,
}

impl Running {
    fn start(tag: &str) -> Running {
        let mut pair = Pair::new(tag);
        let topic = "t";
        pair.topics(&[topic]);
        let a = pair.bridge_a(&["--export", topic]);
        let b = pair.bridge_b(&["--import", topic]);
        let mut src = block_source(&pair.a, topic);
        let mut sub = attach(&pair.b, topic);
        src.wait_for_subscribers(1, WAIT).unwrap();
        for i in 0..100u64 {
            src.send(&i.to_le_bytes()).unwrap();
        }
        receive_run(&mut sub, 0, 100);
        Running {
            pair,
            topic,
            a,
            b,
            src,
            sub,
        }
    }
}

/// After a restart: the next incarnation of the import carries 100 more messages from
/// `first` on; then the source closes, the bridges stop cleanly, and gc leaves nothing.
fn resume_and_finish(
    pair: &Pair,
    topic: &str,
    mut src: Publisher,
    old: &Subscriber,
    first: u64,
    bridges: [&mut Proc; 2],
) {
    let mut sub = attach_new(&pair.b, topic, old);
    src.wait_for_subscribers(1, WAIT).unwrap();
    for i in first..first + 100 {
        src.send(&i.to_le_bytes()).unwrap();
    }
    receive_run(&mut sub, first, 100);
    drop(src);
    let _ = until_disconnected(&mut sub, Instant::now());
    // The source closed: so does the import (not as a dead publisher's).
    assert!(sub.closed_by_publisher(), "a clean end read as a death");
    drop(sub);
    for b in bridges {
        let status = b.interrupt();
        assert!(status.success(), "{status:?}\n{}", b.log());
    }
    nothing_left_after_gc(pair);
}

/// Runs gc under both prefixes and checks nothing is left.
fn nothing_left_after_gc(pair: &Pair) {
    for p in [&pair.a, &pair.b] {
        ringcast::inspect::gc(p).expect("gc");
    }
    assert_eq!(
        pair.leftovers(),
        Vec::<String>::new(),
        "segments left after gc"
    );
}

#[test]
fn killing_the_exporting_bridge_disconnects_the_import_and_a_restart_resumes() {
    let Running {
        pair,
        topic,
        mut a,
        mut b,
        mut src,
        mut sub,
    } = Running::start("kexp");

    disconnects_within_bound(&mut sub, "exporting bridge", || a.kill());
    // Its exporter died with it: the Block source is not held by anyone.
    eventually("the dead exporter to be reaped", || {
        src.subscriber_count() == 0
    });

    // A new exporting bridge on the same endpoint: the import is re-created.
    let mut a2 = Proc::spawn(&a.args);
    resume_and_finish(&pair, topic, src, &sub, 100, [&mut a2, &mut b]);
}

#[test]
fn killing_the_importing_bridge_disconnects_its_subscribers_and_a_restart_resumes() {
    let Running {
        pair,
        topic,
        mut a,
        mut b,
        mut src,
        mut sub,
    } = Running::start("kimp");

    disconnects_within_bound(&mut sub, "importing bridge", || b.kill());
    // Nobody remote listens: the exporter lets go of the Block source, which can fill
    // its ring many times over without waiting for anyone.
    eventually("the exporter to detach", || src.subscriber_count() == 0);
    for i in 0..640u64 {
        src.try_send(&i.to_le_bytes())
            .expect("a Block source with no subscriber never waits");
    }

    // The restarted importer reclaims the dead bridge's segment.
    let mut b2 = Proc::spawn(&b.args);
    resume_and_finish(&pair, topic, src, &sub, 1000, [&mut a, &mut b2]);
}

/// A source publisher in its own process: publishes its index every millisecond until
/// killed. Started by [`spawn_source`].
#[test]
#[ignore = "a child process of the source-kill test"]
fn source_child() {
    let Ok(prefix) = std::env::var(ROLE) else {
        return;
    };
    let mut p = block_source(&prefix, "t");
    p.wait_for_subscribers(1, WAIT).unwrap();
    println!("READY");
    for i in 0u64.. {
        p.send(&i.to_le_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn spawn_source(prefix: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "source_child", "--ignored", "--nocapture"])
        .env(ROLE, prefix)
        .stdout(Stdio::null())
        .spawn()
        .expect("source child")
}

/// Receives messages in order from wherever the stream is, at least `n` of them.
fn receive_some(sub: &mut Subscriber, n: u64) {
    let mut prev = None;
    for _ in 0..n {
        let m = sub.recv_timeout(WAIT).expect("a message");
        let i = u64::from_le_bytes(m.bytes().try_into().expect("8 bytes"));
        assert!(prev.is_none_or(|p| i == p + 1), "{i} after {prev:?}");
        prev = Some(i);
    }
}

#[test]
fn killing_the_source_publisher_disconnects_the_import_and_a_new_source_resumes() {
    let mut pair = Pair::new("ksrc");
    let topic = "t";
    pair.topics(&[topic]);
    let mut a = pair.bridge_a(&["--export", topic]);
    let mut b = pair.bridge_b(&["--import", topic]);
    let mut child = spawn_source(&pair.a);
    let mut sub = attach(&pair.b, topic);
    receive_some(&mut sub, 50);

    disconnects_within_bound(&mut sub, "source publisher", || {
        child.kill().unwrap();
        child.wait().unwrap();
    });

    // A new source process re-creates the topic (reclaiming the dead segment); the
    // bridges carry the new incarnation.
    let mut child = spawn_source(&pair.a);
    let mut sub = attach_new(&pair.b, topic, &sub);
    receive_some(&mut sub, 50);
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = until_disconnected(&mut sub, Instant::now());
    drop(sub);
    assert!(a.interrupt().success());
    assert!(b.interrupt().success());
    nothing_left_after_gc(&pair);
}
