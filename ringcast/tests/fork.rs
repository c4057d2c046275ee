//! ringcast in a child after `fork()` without `exec`: the parent has started the async
//! reactor thread and a wait set's helper threads (a set of more than 128 topics), which
//! the child does not have. In the child, `recv_async` (on a new subscriber and on one
//! inherited from the parent) and the inherited wait set must still work, and a subscriber
//! the parent dropped while its reactor slept in the subscriber's table entry must not
//! stay claimed by the child.
//!
//! The child runs only ringcast and exits with `_exit` (never back into the test harness);
//! its exit code is the verdict. The tests take one lock so that no other test of this
//! binary runs while one forks.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use ringcast::*;

static FORKING: Mutex<()> = Mutex::new(());

fn config(prefix: &str) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(prefix)
        .slots(8)
        .slot_size(64)
        .overflow(Overflow::Block)
}

/// Forks; the child runs `child` (its `Err` or a panic is exit code 1), then `_exit`s.
/// The parent waits for the child (generously) and returns its exit code.
fn in_forked_child(child: impl FnOnce() -> Result<(), String>) -> i32 {
    // SAFETY: the child only runs `child` (ringcast, a tokio current-thread runtime and
    // threads of its own) and then `_exit`s; it never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)) {
            Ok(Ok(())) => 0,
            Ok(Err(why)) => {
                eprintln!("child: {why}");
                1
            }
            Err(_) => 1,
        };
        // SAFETY: ends the child at once, without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            assert!(
                libc::WIFEXITED(status),
                "child ended by a signal: {status:#x}"
            );
            return libc::WEXITSTATUS(status);
        }
        if Instant::now() >= deadline {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return -1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `recv_async` on `sub` on a current-thread runtime, the deadline checked first (so a
/// receive nobody woke does not pass just because the deadline's poll found the message).
fn recv_async_within(sub: &mut Subscriber, limit: Duration) -> Result<Vec<u8>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        tokio::select! {
            biased;
            () = tokio::time::sleep(limit) => Err("recv_async was never woken".to_owned()),
            r = sub.recv_async() => r.map(|s| s.to_vec()).map_err(|e| e.to_string()),
        }
    })
}

#[test]
fn recv_async_works_in_a_forked_child_of_a_process_that_runs_the_reactor() {
    let _one = FORKING.lock().unwrap_or_else(|e| e.into_inner());
    let old = Names::new("fork", "inherited");
    let new = Names::new("fork", "fresh");
    let mut p = Publisher::create(&old.topic, config(&old.prefix)).unwrap();
    let mut s =
        Subscriber::attach(&old.topic, SubscriberOptions::default().prefix(&old.prefix)).unwrap();
    // The parent runs the reactor: one message received through it.
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        p.send(b"parent").unwrap();
        p
    });
    assert_eq!(
        recv_async_within(&mut s, Duration::from_secs(20)).unwrap(),
        b"parent"
    );
    let mut p = sender.join().unwrap();
    assert!(ringcast_core::reactor::started());

    let code = in_forked_child(move || {
        // A topic made in the child.
        let mut q = Publisher::create(&new.topic, config(&new.prefix))
            .map_err(|e| format!("create: {e}"))?;
        let mut t =
            Subscriber::attach(&new.topic, SubscriberOptions::default().prefix(&new.prefix))
                .map_err(|e| format!("attach: {e}"))?;
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            q.send(b"child").map(|_| q)
        });
        let got = recv_async_within(&mut t, Duration::from_secs(20))?;
        let _q = sender.join().map_err(|_| "sender panicked")?;
        if got != b"child" {
            return Err(format!("fresh topic: got {got:?}"));
        }
        // The subscriber inherited from the parent, with its registration.
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            p.send(b"inherited").map(|_| p)
        });
        let got = recv_async_within(&mut s, Duration::from_secs(20))?;
        let _p = sender.join().map_err(|_| "sender panicked")?;
        if got != b"inherited" {
            return Err(format!("inherited topic: got {got:?}"));
        }
        Ok(())
    });
    assert_eq!(code, 0, "the child's recv_async failed (-1: it hung)");
}

#[test]
fn a_wait_set_past_128_topics_keeps_working_in_a_forked_child() {
    const TOPICS: usize = 130;
    let _one = FORKING.lock().unwrap_or_else(|e| e.into_inner());
    let prefix = prefix("forkset");
    let names: Vec<String> = (0..TOPICS).map(|_| topic("ws")).collect();
    let _cleanup: Vec<Cleanup> = names
        .iter()
        .map(|t| Cleanup(prefix.clone(), t.clone()))
        .collect();
    let mut pubs: Vec<Publisher> = names
        .iter()
        .map(|t| Publisher::create(t, config(&prefix)).unwrap())
        .collect();
    let mut set = WaitSet::new();
    let keys: Vec<_> = names
        .iter()
        .map(|t| {
            let s = Subscriber::attach(t, SubscriberOptions::default().prefix(&prefix)).unwrap();
            set.add(s).unwrap()
        })
        .collect();
    // An idle sleep past 128 words starts the helper threads in the parent.
    assert!(set
        .wait_timeout(Duration::from_millis(100))
        .unwrap()
        .timed_out());
    let comms: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .collect();
    assert!(
        comms.iter().any(|c| c.starts_with("ringcast-waitse")),
        "no helper thread in the parent: {comms:?}"
    );

    // The last topic's word is in the second shard (a helper's, in the parent).
    let last = pubs.pop().unwrap();
    let key = keys[TOPICS - 1];
    let code = in_forked_child(move || {
        let sender = std::thread::spawn(move || {
            let mut p = last;
            std::thread::sleep(Duration::from_millis(200));
            p.send(b"last").map(|_| p)
        });
        let woke = set
            .wait_timeout(Duration::from_secs(20))
            .map_err(|e| e.to_string())?;
        let _p = sender.join().map_err(|_| "sender panicked")?;
        if woke.timed_out() || !set.is_ready(key) {
            return Err(format!("the set did not see the message: {woke:?}"));
        }
        let s = set.get_mut(key).ok_or("no member")?;
        let got = s.try_recv().map_err(|e| e.to_string())?.to_vec();
        if got != b"last" {
            return Err(format!("got {got:?}"));
        }
        // Another sharded idle sleep, then the set's drop (its helpers are the child's).
        if !set
            .wait_timeout(Duration::from_millis(100))
            .map_err(|e| e.to_string())?
            .timed_out()
        {
            return Err("an idle set woke".to_owned());
        }
        drop(set);
        Ok(())
    });
    assert_eq!(code, 0, "the child's wait set failed (-1: it hung)");
}

#[test]
fn a_child_does_not_keep_a_subscriber_dropped_while_the_parents_reactor_slept_in_its_entry() {
    let _one = FORKING.lock().unwrap_or_else(|e| e.into_inner());
    let n = Names::new("fork", "dropped");
    let _p = Publisher::create(&n.topic, config(&n.prefix)).unwrap();
    let attach =
        || Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix)).unwrap();
    let (mut a, mut b, mut c) = (attach(), attach(), attach());
    for s in [&mut a, &mut b, &mut c] {
        assert!(s.poll_ready(std::task::Waker::noop()).is_pending());
    }
    // The parent's reactor sleeps in all three entries.
    let info = || ringcast::inspect::inspect(&n.prefix, &n.topic).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while info().sleepers < 3 {
        assert!(
            Instant::now() < deadline,
            "the reactor never slept on the subscribers"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // Dropped while that pass sleeps in its entry (a third of the pass: not cut short),
    // so the pass still holds the segment (its file and a mapping: the entry's claim)
    // when the process forks. The child must not inherit that hold: it has no reactor
    // thread to let go of it, and the entry would stay claimed for as long as it lives.
    drop(a);
    let code = in_forked_child(|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = info();
            if now.subscribers.len() == 2 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the dropped subscriber's entry is still held: {now:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    assert_eq!(
        code, 0,
        "the child kept the dropped subscriber's entry (-1: it hung)"
    );
    drop((b, c));
}

#[test]
fn a_child_dropping_what_it_inherited_leaves_the_parents_topic_and_service_whole() {
    let _one = FORKING.lock().unwrap_or_else(|e| e.into_inner());
    let n = Names::new("fork", "whole");
    let cfg = config(&n.prefix).slots(4).max_publishers(2);
    let p = Publisher::create(&n.topic, cfg.clone()).unwrap();
    let opts = SubscriberOptions::default().prefix(&n.prefix);
    let attach = || Subscriber::attach(&n.topic, opts.clone()).unwrap();
    let (s, slow) = (attach(), attach());
    let service = format!("{}svc", n.topic);
    let serve = || Server::create(&service, ServerConfig::default().prefix(&n.prefix));
    let server = serve().unwrap();
    assert!(!p.is_inherited() && !s.is_inherited() && !server.is_inherited());
    let mut held = Some((p, s, slow, server));

    let code = in_forked_child(|| {
        let (p, s, slow, server) = held.take().ok_or("nothing held")?;
        if !(p.is_inherited() && s.is_inherited() && slow.is_inherited()) {
            return Err("the child's copies do not say they are inherited".to_owned());
        }
        if !server.is_inherited() {
            return Err("the server does not say it is inherited".to_owned());
        }
        // Each would leave the lane (and close the topic), detach, or end the service.
        drop((p, s, slow, server));
        Ok(())
    });
    assert_eq!(code, 0, "the child failed");
    let (mut p, mut s, _slow, _server) = held.take().unwrap();
    let info = ringcast::inspect::inspect(&n.prefix, &n.topic).unwrap();
    assert_eq!(
        info.subscribers.len(),
        2,
        "the child freed an entry: {info:?}"
    );
    let second = Publisher::create(&n.topic, cfg).expect("the child closed the topic");
    assert_eq!(second.lane(), 1, "the child released the parent's lane");
    assert!(
        matches!(serve(), Err(ServeError::AlreadyServed { .. })),
        "the child ended the parent's service"
    );
    for (i, m) in [&b"one"[..], b"two", b"three", b"four"].iter().enumerate() {
        assert_eq!(p.try_send(m).unwrap(), i as u64);
    }
    // Four slots, and `slow` (whose entry the child must not have freed) read none.
    assert!(
        p.try_send(b"five").is_err(),
        "a slot was reused under `slow`"
    );
    for m in [&b"one"[..], b"two", b"three", b"four"] {
        assert_eq!(&*s.try_recv().unwrap(), m);
    }
}
