//! How many wake system calls a publisher makes for a sleeping subscriber: one for a
//! subscriber that was woken and has not run since, however many commits follow (the
//! `unanswered` flag), and one per run inside `Publisher::coalesce_wakes`, made when the
//! run ends. Alone in its own test binary: the futex call counter is per process.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ringcast::*;
use ringcast_core::futex;

/// Set in the child: the prefix and topic it subscribes to.
const CHILD_ENV: &str = "RINGCAST_WAKE_CALLS_CHILD";
const MESSAGES: u32 = 100;
const WAIT: Duration = Duration::from_secs(10);
/// The parent tests count the process's wake calls: one at a time.
static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn create(prefix: &str, topic: &str) -> Publisher {
    Publisher::create(
        topic,
        PublisherConfig::default()
            .prefix(prefix)
            .slots(256)
            .overflow(Overflow::Block),
    )
    .expect("create")
}

/// Waits until `n` subscribers of the topic are counted asleep.
fn wait_for_sleepers(prefix: &str, topic: &str, n: u32) {
    let t = Instant::now();
    while inspect::inspect(prefix, topic).expect("inspect").sleepers < n {
        assert!(t.elapsed() < WAIT, "the subscriber never slept");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The child's body (a test that does nothing unless the parent started it): receives
/// `MESSAGES` messages in order, sleeping when there is none, and exits 0.
#[test]
fn child_subscriber() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (prefix, topic) = spec.split_once('/').expect("prefix/topic");
    let mut s = Subscriber::attach(
        topic,
        SubscriberOptions::default()
            .prefix(prefix)
            .wait_strategy(WaitStrategy::Park),
    )
    .expect("attach");
    for i in 0..MESSAGES {
        let m = s.recv_timeout(WAIT).expect("a message");
        assert_eq!(&*m, &i.to_le_bytes(), "out of order");
    }
    std::process::exit(0);
}

fn spawn_child(prefix: &str, topic: &str) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_subscriber",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{prefix}/{topic}"))
        .spawn()
        .expect("spawn the child")
}

/// The topic's publisher and a child subscriber process counted asleep on it.
fn with_a_sleeping_child(prefix: &str, topic: &str) -> (Publisher, Child) {
    let mut p = create(prefix, topic);
    let child = spawn_child(prefix, topic);
    p.wait_for_subscribers(1, WAIT).expect("the child attaches");
    wait_for_sleepers(prefix, topic, 1);
    (p, child)
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Waits until the child is stopped (its /proc state says so).
fn wait_stopped(child: &Child) {
    let t = Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        // The state follows the command name in parentheses.
        let state = stat.rsplit(')').next().unwrap().trim_start().chars().next();
        if state == Some('T') || state == Some('t') {
            return;
        }
        assert!(t.elapsed() < WAIT, "the child did not stop");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_woken_subscriber_that_has_not_run_costs_one_wake_call_for_many_commits() {
    let _one = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let (prefix, topic) = (format!("rcwakecalls{}", std::process::id()), "stopped");
    let (mut p, mut child) = with_a_sleeping_child(&prefix, topic);
    // Frozen asleep: it cannot run between our commits, so its announcement stays.
    signal(&child, libc::SIGSTOP);
    wait_stopped(&child);
    let before = futex::wake_calls();
    for i in 0..MESSAGES {
        p.send(&i.to_le_bytes()).expect("send");
    }
    let calls = futex::wake_calls() - before;
    signal(&child, libc::SIGCONT);
    let status = child.wait().expect("wait for the child");
    assert!(status.success(), "the child did not get every message");
    assert_eq!(
        calls, 1,
        "a subscriber woken and not yet running cost a wake call per commit"
    );
    drop(p);
    let _ = inspect::remove(&prefix, topic);
}

#[test]
fn a_coalesced_run_wakes_a_sleeping_subscriber_once_at_its_end() {
    let _one = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let (prefix, topic) = (format!("rcwakecoal{}", std::process::id()), "coalesced");
    let (mut p, mut child) = with_a_sleeping_child(&prefix, topic);
    let before = futex::wake_calls();
    let inside = p.coalesce_wakes(|p| {
        for i in 0..MESSAGES {
            p.send(&i.to_le_bytes()).expect("send");
        }
        futex::wake_calls() - before
    });
    let after = futex::wake_calls() - before;
    let status = child.wait().expect("wait for the child");
    assert!(status.success(), "the child did not get every message");
    assert_eq!(inside, 0, "a commit inside the run woke the subscriber");
    assert_eq!(after, 1, "the run's end did not wake the subscriber once");
    drop(p);
    let _ = inspect::remove(&prefix, topic);
}
