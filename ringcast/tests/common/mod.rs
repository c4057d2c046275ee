//! Shared helpers for the integration tests: unique names, child processes, payloads.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The env var that tells a re-executed test binary which role to play.
pub const ROLE: &str = "RINGCAST_TEST_ROLE";

/// A private prefix per test process, so test binaries can run side by side.
pub fn prefix(tag: &str) -> String {
    format!("rc{tag}{}", std::process::id())
}

/// A unique topic name within this process.
pub fn topic(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{tag}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Removes a topic's segment when dropped, whatever happened.
pub struct Cleanup(pub String, pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = ringcast::inspect::remove(&self.0, &self.1);
    }
}

/// A private prefix and a unique topic for one test, removed when dropped.
pub struct Names {
    pub prefix: String,
    pub topic: String,
    _cleanup: Cleanup,
}

impl Names {
    /// Names under the prefix for `suite`, with a topic made from `tag`.
    pub fn new(suite: &str, tag: &str) -> Names {
        let (prefix, topic) = (prefix(suite), topic(tag));
        Names {
            _cleanup: Cleanup(prefix.clone(), topic.clone()),
            prefix,
            topic,
        }
    }
}

/// In a child: attaches to the topic named by the PREFIX and TOPIC env vars (waiting up to
/// `limit` for it) with the futex-only wait strategy, and says "ATTACHED".
pub fn attach_parked_child(limit: Duration) -> ringcast::Subscriber {
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    let sub = ringcast::Subscriber::attach_wait(
        &topic,
        ringcast::SubscriberOptions::default()
            .prefix(&prefix)
            .wait_strategy(ringcast::WaitStrategy::Park),
        limit,
    )
    .expect("attach");
    println!("ATTACHED");
    sub
}

/// In a child: creates the `Block` topic named by PREFIX and TOPIC (16 slots of 64 B),
/// waits for one subscriber, says "READY", then publishes its sequence number every 5 ms,
/// COUNT times, and closes (unless it is killed first).
pub fn steady_publisher_child() {
    let (prefix, topic, count): (String, String, u64) = (env("PREFIX"), env("TOPIC"), env("COUNT"));
    let config = ringcast::PublisherConfig::default()
        .prefix(&prefix)
        .slots(16)
        .slot_size(64)
        .overflow(ringcast::Overflow::Block);
    let mut p = ringcast::Publisher::create(&topic, config).expect("create");
    p.wait_for_subscribers(1, Duration::from_secs(30))
        .expect("subscriber");
    println!("READY");
    for seq in 0..count {
        p.send(&seq.to_le_bytes()).expect("send");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Re-executes this test binary to run `#[ignore]`d test `entry` as a child process with
/// `role` and the given environment.
pub fn spawn(entry: &str, role: &str, env: &[(&str, String)]) -> Child {
    Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--exact",
            entry,
            "--nocapture",
            "--ignored",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child test process")
}

/// A child whose stdout lines arrive on a channel as it prints them.
pub struct Talking {
    pub child: Child,
    pub lines: std::sync::mpsc::Receiver<String>,
}

/// Like [`spawn`], but streams the child's stdout lines.
pub fn spawn_talking(entry: &str, role: &str, env: &[(&str, String)]) -> Talking {
    use std::io::BufRead;
    let mut child = spawn(entry, role, env);
    let out = child.stdout.take().expect("piped stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            // The harness prints "test NAME ... " without a newline before our output.
            let line = match line.split_once("RESULT ") {
                Some((_, r)) => format!("RESULT {r}"),
                None => line.rsplit(" ... ").next().unwrap_or(&line).to_owned(),
            };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Talking { child, lines }
}

impl Talking {
    /// Waits up to `limit` for a line starting with `what`; returns it.
    pub fn expect(&self, what: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(what) => return l,
                Ok(_) => {}
                Err(_) => panic!("child never printed {what:?}"),
            }
        }
    }

    /// SIGKILLs the child and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `limit` for the child to exit; returns its code and RESULT line.
    pub fn finish(mut self, limit: Duration) -> (Option<i32>, Option<String>) {
        let deadline = Instant::now() + limit;
        let code = loop {
            match self.child.try_wait().expect("wait for child") {
                Some(status) => break status.code(),
                None if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        // The reader thread ends (and drops its sender) at the child's end of output.
        let mut result = None;
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            if let Some(r) = l.strip_prefix("RESULT ") {
                result = Some(r.to_owned());
            }
        }
        (code, result)
    }
}

/// Waits for a child at most `limit`, killing it if it overruns. Returns its exit code
/// (None if killed by a signal) and the `RESULT ...` line it printed, if any.
pub fn finish(mut child: Child, limit: Duration) -> (Option<i32>, Option<String>) {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait().expect("wait for child") {
            Some(_) => break,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                break;
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let out = child.wait_with_output().expect("collect child output");
    let text = String::from_utf8_lossy(&out.stdout);
    let result = text
        .lines()
        // The harness prints "test NAME ... " without a newline before our own output.
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r.to_owned()));
    (out.status.code(), result)
}

/// Reads `key=value` from a RESULT line.
pub fn field(result: &str, key: &str) -> u64 {
    result
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {result:?}"))
}

/// An env var of the child's, parsed.
pub fn env<T: std::str::FromStr>(key: &str) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("child needs env {key}"))
}

/// The length of message `seq` for a slot of `cap` bytes: covers 0 and `cap` early, then
/// spreads over the whole range.
pub fn len_for(seq: u64, cap: usize) -> usize {
    match seq {
        0 => 0,
        1 => cap,
        _ => (seq.wrapping_mul(7919) % (cap as u64 + 1)) as usize,
    }
}

/// Fills `out` with the self-checking payload of `seq`: the sequence number (as far as it
/// fits) followed by a pattern derived from it.
pub fn fill(seq: u64, out: &mut [u8]) {
    let tag = seq.to_le_bytes();
    for (i, b) in out.iter_mut().enumerate() {
        *b = if i < 8 {
            tag[i]
        } else {
            (seq as u8).wrapping_mul(31) ^ (i as u8).wrapping_mul(7) ^ (i >> 8) as u8
        };
    }
}

/// Checks a payload against [`fill`] for `seq`; returns a description of the first
/// mismatch.
pub fn check(seq: u64, cap: usize, got: &[u8]) -> Result<(), String> {
    let want_len = len_for(seq, cap);
    if got.len() != want_len {
        return Err(format!("seq {seq}: length {} != {want_len}", got.len()));
    }
    let mut want = vec![0u8; want_len];
    fill(seq, &mut want);
    match got.iter().zip(&want).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(format!("seq {seq}: byte {i} is {} not {}", got[i], want[i])),
    }
}
