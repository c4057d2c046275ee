//! The one error type of the benchmark suite.
//!
//! Almost every error ends a single measurement, not the run: the suite prints
//! the reason on stderr, skips that row and goes on. Only command-line misuse
//! and failing to write the requested reports end the process.

use std::io;

/// Why a measurement, the child process, or the report failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A system call failed; `op` names it and what it was for.
    #[error("{op}: {source}")]
    Sys {
        /// The operation, e.g. "mq_open (queue parent->child)".
        op: String,
        /// The OS error.
        source: io::Error,
    },
    /// The transport cannot carry this measurement here (a payload above a
    /// kernel limit, a scenario it has no meaning for, too few CPUs).
    #[error("{0}")]
    Unsupported(String),
    /// The peer process sent nothing within the safety deadline.
    #[error("timed out after {secs} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// The deadline, in seconds.
        secs: u64,
    },
    /// A ringcast call failed (create a topic, attach, receive); carries the
    /// library's own message, which names the topic and the cause.
    #[error("ringcast: {0}")]
    Ringcast(String),
    /// An iceoryx2 call failed (the optional `iceoryx2` row); carries what was
    /// being done and the library's own message.
    #[cfg(feature = "iceoryx2")]
    #[error("iceoryx2: {0}")]
    Iceoryx2(String),
    /// The peer closed its end, or broke the message protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The child process failed; carries its own explanation when it gave one.
    #[error("child process: {0}")]
    Child(String),
    /// Writing a report (JSON, SVG) failed.
    #[error("report: {0}")]
    Report(String),
}

impl BenchError {
    /// Wraps an `io::Error` from the operation `op`.
    pub fn sys(op: impl Into<String>, source: io::Error) -> Self {
        Self::Sys {
            op: op.into(),
            source,
        }
    }

    /// Wraps the current `errno` (read right after a failed libc call).
    pub fn last_os(op: impl Into<String>) -> Self {
        Self::sys(op, io::Error::last_os_error())
    }

    /// Wraps a `nix` errno.
    pub fn nix(op: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Self::sys(op, io::Error::from(errno))
    }
}

/// The suite's result type.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
