//! Process plumbing: CPU pinning and the measured child process.
//!
//! Every two-process measurement re-executes this binary
//! (`std::env::current_exe()`) with the hidden `__child` subcommand rather
//! than forking, so the child starts from a clean, single-threaded image (a
//! fan-out measurement starts one such child per subscriber). The
//! child inherits exactly the descriptors of its end of the link: they are
//! created close-on-exec and only the child's copies have the flag cleared,
//! between fork and exec.
//!
//! A [`Child`] is always reaped: on success by [`Child::finish`], on failure
//! by [`Child::fail`], on any other path by its `Drop`, which kills it first.
//! Three nets keep a run from hanging: the child dies with the parent
//! (`PR_SET_PDEATHSIG`), a watchdog thread kills a child that outlives its
//! measurement's deadline, and every blocking transport call has its own
//! timeout or sees end-of-file (ringcast: `Disconnected`) once the peer is gone.
//!
//! A child talks back on its stdout: a ready line once its end is attached
//! ([`report_ready`]), and for fan-out its measurements ([`report`]).

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{ChildStderr, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use crate::error::{BenchError, Result};

/// The hidden subcommand that runs the far end of a measurement.
pub const CHILD_COMMAND: &str = "__child";

/// The line a child prints on stdout once its end of the link is ready.
const READY_LINE: &[u8] = b"ready\n";

/// The two CPUs a measurement runs on.
#[derive(Clone, Copy, Debug)]
pub struct Cpus {
    /// CPU of the parent (initiator, consumer).
    pub parent: usize,
    /// CPU of the child (responder, producer).
    pub child: usize,
}

impl Cpus {
    /// Whether parent and child have a CPU each (spinning transports need it).
    pub fn distinct(&self) -> bool {
        self.parent != self.child
    }

    /// Picks the first two CPUs this process may run on (the same one twice
    /// when only one is allowed).
    pub fn choose() -> Result<Self> {
        let set = sched_getaffinity(Pid::from_raw(0))
            .map_err(|e| BenchError::nix("sched_getaffinity", e))?;
        let allowed: Vec<usize> = (0..CpuSet::count())
            .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
            .take(2)
            .collect();
        match allowed[..] {
            [parent, child] => Ok(Self { parent, child }),
            [only] => Ok(Self {
                parent: only,
                child: only,
            }),
            _ => Err(BenchError::Unsupported(
                "no CPU in the affinity mask".into(),
            )),
        }
    }
}

/// Pins the calling process (all its future threads) to one CPU.
pub fn pin_to(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)
        .map_err(|e| BenchError::nix(format!("CPU {cpu} in a cpu set"), e))?;
    sched_setaffinity(Pid::from_raw(0), &set)
        .map_err(|e| BenchError::nix(format!("sched_setaffinity(CPU {cpu})"), e))
}

/// Kills a child that is still running when its deadline passes.
struct Watchdog {
    /// Dropping the sender disarms the watchdog.
    disarm: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Watchdog {
    fn arm(pid: u32, deadline: Duration) -> Result<Self> {
        let (disarm, disarmed) = mpsc::channel::<()>();
        let pid = libc::pid_t::try_from(pid)
            .map_err(|_| BenchError::Child(format!("pid {pid} out of range")))?;
        let thread = thread::Builder::new()
            .name("child-watchdog".into())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(deadline) {
                    eprintln!("ringcast-bench: child {pid} overran its deadline; killing it");
                    // SAFETY: kill has no memory effects. The child cannot have been
                    // reaped (so its pid cannot have been reused): reaping happens
                    // only after `disarm`, which joins this thread first.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            })
            .map_err(|e| BenchError::sys("spawn watchdog thread", e))?;
        Ok(Self { disarm, thread })
    }

    fn disarm(self) {
        drop(self.disarm);
        // A panic in the watchdog thread cannot happen short of eprintln! failing;
        // either way the child is reaped by the caller next.
        let _ = self.thread.join();
    }
}

/// A running child process of the suite, reaped on every path.
pub struct Child {
    process: std::process::Child,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    watchdog: Option<Watchdog>,
    reaped: bool,
}

impl Child {
    /// Starts `current_exe() __child args...`, with `inherit` kept open in the
    /// child under the same numbers, and a watchdog that kills it after `deadline`.
    pub fn spawn(args: &[String], inherit: &[OwnedFd], deadline: Duration) -> Result<Self> {
        let exe = std::env::current_exe().map_err(|e| BenchError::sys("current_exe", e))?;
        let fds: Vec<RawFd> = inherit.iter().map(AsRawFd::as_raw_fd).collect();
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        let mut cmd = Command::new(exe);
        cmd.arg(CHILD_COMMAND)
            .args(args.iter().map(OsString::from))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let hook = move || -> io::Result<()> {
            for &fd in &fds {
                // SAFETY: runs in the forked child before exec; fcntl is
                // async-signal-safe, and `fd` is open (owned by the parent's
                // `inherit`, alive across the spawn call).
                if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            // SAFETY: prctl and getppid are async-signal-safe and touch no memory.
            unsafe {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before the prctl took effect.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
            }
            Ok(())
        };
        // SAFETY: the hook only makes async-signal-safe calls, does not
        // allocate, and touches only its captured `fds` and `parent`.
        unsafe { cmd.pre_exec(hook) };
        let mut process = cmd
            .spawn()
            .map_err(|e| BenchError::sys("spawn child process", e))?;
        let stdout = process.stdout.take();
        let stderr = process.stderr.take();
        let mut child = Self {
            process,
            stdout,
            stderr,
            watchdog: None,
            reaped: false,
        };
        child.watchdog = Some(Watchdog::arm(child.process.id(), deadline)?);
        Ok(child)
    }

    /// Waits until the child reports its end of the link ready.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let stdout = self
            .stdout
            .as_mut()
            .ok_or_else(|| BenchError::Child("stdout not captured".into()))?;
        let deadline = Instant::now() + timeout;
        let mut got = Vec::with_capacity(READY_LINE.len());
        while got.len() < READY_LINE.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if !poll_readable(stdout.as_raw_fd(), left)? {
                return Err(BenchError::Timeout {
                    what: "the child to get ready",
                    secs: timeout.as_secs(),
                });
            }
            let mut byte = [0u8; 1];
            match stdout.read(&mut byte) {
                Ok(0) => return Err(BenchError::Child("exited before it was ready".into())),
                Ok(_) => got.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(BenchError::sys("read child stdout", e)),
            }
        }
        if got != READY_LINE {
            return Err(BenchError::Child(format!(
                "said {:?} instead of ready",
                String::from_utf8_lossy(&got)
            )));
        }
        Ok(())
    }

    /// Reads what the child prints on stdout after its ready line, up to its
    /// end-of-file (the child exits, or closes stdout), at most `timeout` in all.
    pub fn read_report(&mut self, timeout: Duration) -> Result<String> {
        let stdout = self
            .stdout
            .as_mut()
            .ok_or_else(|| BenchError::Child("stdout not captured".into()))?;
        let deadline = Instant::now() + timeout;
        let mut text = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if !poll_readable(stdout.as_raw_fd(), left)? {
                return Err(BenchError::Timeout {
                    what: "the child's report",
                    secs: timeout.as_secs(),
                });
            }
            match stdout.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => text.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(BenchError::sys("read child stdout", e)),
            }
        }
        String::from_utf8(text).map_err(|_| BenchError::Child("report is not UTF-8".into()))
    }

    /// Waits for a normal exit; a non-zero status becomes an error carrying
    /// the child's own message.
    pub fn finish(mut self, timeout: Duration) -> Result<()> {
        let status = self.reap(timeout)?;
        if status.success() {
            Ok(())
        } else {
            Err(BenchError::Child(self.explain(status)))
        }
    }

    /// The parent's side failed with `err`: reap the child (it usually failed
    /// first, or will on end-of-file) and fold its message into the error.
    pub fn fail(mut self, err: BenchError) -> BenchError {
        match self.reap(Duration::from_secs(2)) {
            Ok(status) if !status.success() => {
                BenchError::Child(format!("{} (parent: {err})", self.explain(status)))
            }
            _ => err,
        }
    }

    /// Waits up to `timeout` for the child to exit, then kills it; reaps it.
    fn reap(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        if let Some(w) = self.watchdog.take() {
            w.disarm();
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.process.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(1)),
                Ok(None) => {
                    self.kill_and_wait();
                    return Err(BenchError::Timeout {
                        what: "the child to exit",
                        secs: timeout.as_secs(),
                    });
                }
                Err(e) => {
                    self.kill_and_wait();
                    return Err(BenchError::sys("waitpid(child)", e));
                }
            }
        }
    }

    fn kill_and_wait(&mut self) {
        if self.reaped {
            return;
        }
        // Errors: the child already exited (kill) or was reaped; nothing left to do.
        let _ = self.process.kill();
        let _ = self.process.wait();
        self.reaped = true;
    }

    /// The child's last stderr line, or its exit status.
    fn explain(&mut self, status: std::process::ExitStatus) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.stderr.take() {
            // The child has exited, so this reads to end-of-file promptly.
            let _ = err.read_to_string(&mut text);
        }
        match text.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(line) => line.trim().to_owned(),
            None => format!("exited with {status}"),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(w) = self.watchdog.take() {
            w.disarm();
        }
        self.kill_and_wait();
    }
}

/// Waits until `fd` is readable (or at end-of-file). `Ok(false)` on timeout.
fn poll_readable(fd: RawFd, timeout: Duration) -> Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    loop {
        // SAFETY: `pfd` is one valid pollfd, and the count passed is 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        match rc {
            0 => return Ok(false),
            n if n > 0 => return Ok(true),
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(BenchError::sys("poll(child stdout)", err));
                }
            }
        }
    }
}

/// Child side: tells the parent this end of the link is ready.
pub fn report_ready() -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(READY_LINE)
        .and_then(|()| out.flush())
        .map_err(|e| BenchError::sys("write ready line", e))
}

/// Child side: prints its report for the parent ([`Child::read_report`]).
pub fn report(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| BenchError::sys("write report", e))
}
