//! The `ringcast` tool under faults, with real processes: a `sub` whose output nobody reads
//! never pins a `Block` publisher past its stall timeout; a SIGKILLed or SIGHUPed `record`
//! leaves a file `play` reads; `play` refuses hostile, truncated or oversized recordings
//! with a clear error, never a panic or a hang; `top --interval 0` does not spin; text from
//! segments is escaped before it reaches a terminal.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ringcast::{Overflow, Publisher, PublisherConfig, Start, Subscriber, SubscriberOptions};

const BIN: &str = env!("CARGO_BIN_EXE_ringcast");
const LONG: Duration = Duration::from_secs(60);

/// A private prefix per test, with everything under it removed at the end.
struct Prefix(String);

impl Prefix {
    fn new(tag: &str) -> Prefix {
        Prefix(format!("rcfault{tag}{}", std::process::id()))
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).env("RINGCAST_PREFIX", &self.0);
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        let child = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ringcast");
        finish(child, LONG)
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
fn finish(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("child output"),
        Err(_) => {
            kill(pid, libc::SIGKILL);
            panic!("ringcast (pid {pid}) did not exit within {limit:?}");
        }
    }
}

fn kill(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a child of this test.
    unsafe { libc::kill(pid as i32, sig) };
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `sub` writing into a pipe nobody reads: once the pipe is full `sub` blocks in write(2).
/// It must not hold a `Block` slot while it does, so the publisher's stall timeout evicts it
/// and the publisher goes on; before the fix the held slot pinned the publisher for good.
#[test]
fn a_sub_whose_output_nobody_reads_never_pins_a_block_publisher() {
    let p = Prefix::new("pin");
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
