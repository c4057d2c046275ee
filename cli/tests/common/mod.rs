//! What the CLI's process tests share: a private prefix per test (its topics removed at the
//! end), running the `ringcast` binary with it, and waiting for children.
#![allow(dead_code)]

pub mod service;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ringcast");
pub const LONG: Duration = Duration::from_secs(60);

/// A private prefix per test, with everything under it removed at the end.
pub struct Prefix(pub String);

impl Prefix {
    /// `rc<suite><tag><pid>`.
    pub fn new(suite: &str, tag: &str) -> Prefix {
        Prefix(format!("rc{suite}{tag}{}", std::process::id()))
    }
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).env("RINGCAST_PREFIX", &self.0);
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        let child = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ringcast");
        finish(child, LONG)
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        for t in ringcast::name::list_topics(&self.0).unwrap_or_default() {
            let _ = ringcast::inspect::remove(&self.0, &t);
        }
    }
}

/// Waits for `child` to exit within `limit` (killing it otherwise) and returns its output.
pub fn finish(child: Child, limit: Duration) -> Output {
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

pub fn kill(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a child of this test.
    unsafe { libc::kill(pid as i32, sig) };
}

pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A pipe whose reader is already closed, as a child's standard output: its first write
/// fails with a broken pipe (`ringcast list | head -1` after `head` left).
pub fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two descriptors it is given.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the read end is ours and closed once.
    unsafe { libc::close(fds[0]) };
    // SAFETY: the write end is ours, and the `Stdio` takes it over.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(fds[1]) }
}

/// Each line read from `out` (a child's standard output), sent to the receiver as it
/// comes, by a thread of its own; the receiver disconnects at the end of the output.
pub fn lines_of(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
