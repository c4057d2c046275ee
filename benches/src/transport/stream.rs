//! The endpoint shared by the byte-stream transports (`pipe`, `uds-stream`, `tcp`).
//!
//! A stream has no message boundaries: `send` writes the whole message (looping
//! over partial writes) and `recv` reads exactly `msg.len()` bytes (looping over
//! partial reads), both through `write_all`/`read_exact`, which also retry on
//! `EINTR`.

use std::io::{self, Read, Write};

use super::{Endpoint, PEER_TIMEOUT};
use crate::error::{BenchError, Result};

/// A byte stream split into its reading and writing halves.
pub struct StreamEnd<R, W> {
    rx: R,
    tx: W,
    /// The transport's name, for error messages.
    what: &'static str,
}

impl<R: Read, W: Write> StreamEnd<R, W> {
    /// Wraps the two halves (they may be the same socket, cloned).
    pub fn new(rx: R, tx: W, what: &'static str) -> Self {
        Self { rx, tx, what }
    }

    fn error(&self, op: &'static str, err: io::Error) -> BenchError {
        match err.kind() {
            io::ErrorKind::UnexpectedEof => {
                BenchError::Protocol(format!("{}: peer closed its end during {op}", self.what))
            }
            // SO_RCVTIMEO / SO_SNDTIMEO expired (sockets only).
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => BenchError::Timeout {
                what: "the peer on a stream",
                secs: PEER_TIMEOUT.as_secs(),
            },
            _ => BenchError::sys(format!("{} {op}", self.what), err),
        }
    }
}

impl<R: Read, W: Write> Endpoint for StreamEnd<R, W> {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.tx.write_all(msg).map_err(|e| self.error("write", e))
    }

    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        self.rx.read_exact(msg).map_err(|e| self.error("read", e))
    }
}
