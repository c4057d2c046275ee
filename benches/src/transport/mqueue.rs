//! `mqueue`: POSIX message queues, one per direction, one message per payload.
//!
//! The parent creates each queue with `O_EXCL` under a unique name and unlinks
//! it immediately: the queue then lives exactly as long as a descriptor does,
//! and no exit path of either process can leave one behind. On Linux a message
//! queue descriptor is a file descriptor (`mq_close` is `close`), so the child
//! inherits its ends like any other descriptor and they are owned as `OwnedFd`.
//!
//! Kernel limits apply: `msgsize_max` caps the payload (unless the process has
//! `CAP_SYS_RESOURCE`), and `RLIMIT_MSGQUEUE` caps the bytes of all queues of
//! the user. A payload over either is a skipped row, with the limit named.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sys::resource::{getrlimit, setrlimit, Resource};

use super::{fd_arg, take_fd, Endpoint, Link, LinkSpec, Transport, PEER_TIMEOUT};
use crate::error::{BenchError, Result};
use crate::scenario::Scenario;

/// Queue depth for the throughput direction (Linux's default `msg_max`).
const THROUGHPUT_DEPTH: libc::c_long = 10;

/// The `mqueue` transport.
pub struct Mqueue;

impl Transport for Mqueue {
    fn name(&self) -> &'static str {
        "mqueue"
    }

    fn open(&self, spec: &LinkSpec) -> Result<Link> {
        raise_soft_rlimit();
        // Ping-pong never has more than one message in flight per direction; a
        // producer wants a queue to fill.
        let up_depth = match spec.scenario {
            Scenario::PingPong => 1,
            Scenario::Throughput | Scenario::Fanout => THROUGHPUT_DEPTH,
        };
        let down = create_queue("parent->child", spec.payload, 1)?;
        let up = create_queue("child->parent", spec.payload, up_depth)?;
        Ok(Link {
            local: Box::new(MqEnd::new(up.try_clone_fd()?, down.try_clone_fd()?)),
            child_args: vec![fd_arg(&down.0), fd_arg(&up.0)],
            child_fds: vec![down.0, up.0],
        })
    }

    fn attach(&self, spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        let rx = Queue(take_fd(args, 0)?);
        let tx = Queue(take_fd(args, 1)?);
        for q in [&rx, &tx] {
            let size = q.msgsize()?;
            if size != spec.payload as libc::c_long {
                return Err(BenchError::Protocol(format!(
                    "inherited queue has msgsize {size}, expected {}",
                    spec.payload
                )));
            }
        }
        Ok(Box::new(MqEnd::new(rx.0, tx.0)))
    }
}

/// An open, already unlinked queue.
struct Queue(OwnedFd);

impl Queue {
    fn try_clone_fd(&self) -> Result<OwnedFd> {
        self.0
            .try_clone()
            .map_err(|e| BenchError::sys("dup(mq descriptor)", e))
    }

    fn msgsize(&self) -> Result<libc::c_long> {
        // SAFETY: an all-zero mq_attr is a valid value of this plain C struct.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        // SAFETY: the descriptor is open for the lifetime of `self`, and `attr`
        // is a writable mq_attr.
        if unsafe { libc::mq_getattr(self.0.as_raw_fd(), &mut attr) } != 0 {
            return Err(BenchError::last_os("mq_getattr"));
        }
        Ok(attr.mq_msgsize)
    }
}

/// Creates a queue of `depth` messages of `payload` bytes, then unlinks its name.
fn create_queue(dir: &str, payload: usize, depth: libc::c_long) -> Result<Queue> {
    static SERIAL: AtomicU32 = AtomicU32::new(0);
    // Relaxed: only uniqueness matters, and the process is single-threaded here.
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    let name = CString::new(format!("/ringcast-bench.{}.{serial}", std::process::id()))
        .map_err(|_| BenchError::Protocol("queue name contains NUL".into()))?;
    // SAFETY: an all-zero mq_attr is a valid value of this plain C struct.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = depth;
    attr.mq_msgsize = payload as libc::c_long;
    let mode: libc::mode_t = 0o600;
    // SAFETY: `name` is a NUL-terminated string and `attr` an initialized
    // mq_attr, both alive across the call; the variadic mode and attribute
    // arguments are those mq_open reads when O_CREAT is given.
    let mqd = unsafe {
        libc::mq_open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            mode,
            &attr as *const libc::mq_attr,
        )
    };
    if mqd == -1 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EINVAL) => BenchError::Unsupported(format!(
                "mqueue: a {payload}-byte message exceeds the queue limits \
                 (msgsize_max {}, msg_max {}; raising them needs CAP_SYS_RESOURCE \
                 or /proc/sys/fs/mqueue/*): {err}",
                proc_limit("msgsize_max"),
                proc_limit("msg_max"),
            )),
            Some(libc::EMFILE) | Some(libc::ENOMEM) | Some(libc::ENOSPC) => {
                BenchError::Unsupported(format!(
                    "mqueue: no room for a queue of {depth} x {payload} bytes \
                     (RLIMIT_MSGQUEUE, queues_max or descriptors: {err})"
                ))
            }
            _ => BenchError::sys(format!("mq_open ({dir})"), err),
        });
    }
    // SAFETY: on Linux a message queue descriptor is a file descriptor; mq_open
    // just returned it, so this process owns it and nothing else does.
    let queue = Queue(unsafe { OwnedFd::from_raw_fd(mqd) });
    // SAFETY: `name` is a NUL-terminated string alive across the call.
    if unsafe { libc::mq_unlink(name.as_ptr()) } != 0 {
        // The descriptor is still closed by `queue`'s drop.
        return Err(BenchError::last_os(format!("mq_unlink ({dir})")));
    }
    Ok(queue)
}

/// A limit from /proc/sys/fs/mqueue, for error messages.
fn proc_limit(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{name}"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Lifts the soft `RLIMIT_MSGQUEUE` to the hard limit (no privilege needed), so
/// that larger payloads fit where the administrator allows them.
fn raise_soft_rlimit() {
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_MSGQUEUE) {
        if soft < hard {
            // Best effort: on failure the queue creation reports the limit.
            let _ = setrlimit(Resource::RLIMIT_MSGQUEUE, hard, hard);
        }
    }
}

/// One side: receives on one queue, sends on the other.
struct MqEnd {
    rx: OwnedFd,
    tx: OwnedFd,
}

impl MqEnd {
    fn new(rx: OwnedFd, tx: OwnedFd) -> Self {
        Self { rx, tx }
    }
}

/// `CLOCK_REALTIME` now plus [`PEER_TIMEOUT`]: the absolute deadline that
/// `mq_timedsend`/`mq_timedreceive` take.
fn deadline() -> Result<libc::timespec> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 {
        return Err(BenchError::last_os("clock_gettime(CLOCK_REALTIME)"));
    }
    ts.tv_sec += PEER_TIMEOUT.as_secs() as libc::time_t;
    Ok(ts)
}

fn timeout_error() -> BenchError {
    BenchError::Timeout {
        what: "the peer on a message queue",
        secs: PEER_TIMEOUT.as_secs(),
    }
}

impl Endpoint for MqEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        loop {
            let ts = deadline()?;
            // SAFETY: `msg` is readable for `msg.len()` bytes and `ts` is a valid
            // timespec; the descriptor is open for the lifetime of `self`.
            let rc = unsafe {
                libc::mq_timedsend(self.tx.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0, &ts)
            };
            if rc == 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ETIMEDOUT) => return Err(timeout_error()),
                _ => return Err(BenchError::sys("mq_timedsend", err)),
            }
        }
    }

    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        loop {
            let ts = deadline()?;
            let mut prio: libc::c_uint = 0;
            // SAFETY: `msg` is writable for `msg.len()` bytes (the queue's
            // msgsize, checked at attach), `prio` and `ts` are valid; the
            // descriptor is open for the lifetime of `self`.
            let n = unsafe {
                libc::mq_timedreceive(
                    self.rx.as_raw_fd(),
                    msg.as_mut_ptr().cast(),
                    msg.len(),
                    &mut prio,
                    &ts,
                )
            };
            if n >= 0 {
                if n as usize != msg.len() {
                    return Err(BenchError::Protocol(format!(
                        "received a {n}-byte message, expected {}",
                        msg.len()
                    )));
                }
                return Ok(());
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ETIMEDOUT) => return Err(timeout_error()),
                _ => return Err(BenchError::sys("mq_timedreceive", err)),
            }
        }
    }
}
