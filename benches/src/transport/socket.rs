//! Socket transports: `uds-stream` and `uds-dgram` (a Unix socket pair) and
//! `tcp` (a loopback connection on 127.0.0.1 with `TCP_NODELAY`).
//!
//! Both ends are created in the parent and one is inherited by the child, so
//! no socket path or port stays behind. Every socket gets `SO_RCVTIMEO` and
//! `SO_SNDTIMEO` of [`PEER_TIMEOUT`]: a datagram socket sees no end-of-file when
//! its peer dies, and the timeout turns that hang into an error. Buffer sizes
//! stay at the system defaults, as an ordinary user would have them.

use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixDatagram, UnixStream};

use super::stream::StreamEnd;
use super::{fd_arg, take_fd, Endpoint, Link, LinkSpec, Transport, PEER_TIMEOUT};
use crate::error::{BenchError, Result};

/// The `uds-stream` transport: `socketpair(AF_UNIX, SOCK_STREAM)`.
pub struct UdsStream;

impl Transport for UdsStream {
    fn name(&self) -> &'static str {
        "uds-stream"
    }

    fn open(&self, _spec: &LinkSpec) -> Result<Link> {
        let (local, far) =
            UnixStream::pair().map_err(|e| BenchError::sys("socketpair(stream)", e))?;
        for s in [&local, &far] {
            s.set_read_timeout(Some(PEER_TIMEOUT))
                .and_then(|()| s.set_write_timeout(Some(PEER_TIMEOUT)))
                .map_err(|e| BenchError::sys("setsockopt(SO_RCVTIMEO/SO_SNDTIMEO)", e))?;
        }
        let far = OwnedFd::from(far);
        Ok(Link {
            local: unix_stream_end(local)?,
            child_args: vec![fd_arg(&far)],
            child_fds: vec![far],
        })
    }

    fn attach(&self, _spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        unix_stream_end(UnixStream::from(take_fd(args, 0)?))
    }
}

fn unix_stream_end(s: UnixStream) -> Result<Box<dyn Endpoint>> {
    let rx = s
        .try_clone()
        .map_err(|e| BenchError::sys("dup(unix stream)", e))?;
    Ok(Box::new(StreamEnd::new(rx, s, "uds-stream")))
}

/// The `uds-dgram` transport: `socketpair(AF_UNIX, SOCK_DGRAM)`, one datagram
/// per message.
pub struct UdsDgram;

impl Transport for UdsDgram {
    fn name(&self) -> &'static str {
        "uds-dgram"
    }

    fn open(&self, spec: &LinkSpec) -> Result<Link> {
        let (local, far) =
            UnixDatagram::pair().map_err(|e| BenchError::sys("socketpair(dgram)", e))?;
        probe_datagram(&local, &far, spec.payload)?;
        for s in [&local, &far] {
            s.set_read_timeout(Some(PEER_TIMEOUT))
                .and_then(|()| s.set_write_timeout(Some(PEER_TIMEOUT)))
                .map_err(|e| BenchError::sys("setsockopt(SO_RCVTIMEO/SO_SNDTIMEO)", e))?;
        }
        let far = OwnedFd::from(far);
        Ok(Link {
            local: Box::new(DgramEnd(local)),
            child_args: vec![fd_arg(&far)],
            child_fds: vec![far],
        })
    }

    fn attach(&self, _spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        Ok(Box::new(DgramEnd(UnixDatagram::from(take_fd(args, 0)?))))
    }
}

/// Sends one datagram of `payload` bytes from `a` to `b` and reads it back, so
/// that a payload above the socket's limit is a clean skip, decided before any
/// child exists.
fn probe_datagram(a: &UnixDatagram, b: &UnixDatagram, payload: usize) -> Result<()> {
    let mut buf = vec![0u8; payload];
    match a.send(&buf) {
        Ok(n) if n == payload => {}
        Ok(n) => {
            return Err(BenchError::Unsupported(format!(
                "uds-dgram sent {n} of {payload} bytes in one datagram"
            )))
        }
        Err(e)
            if e.raw_os_error() == Some(libc::EMSGSIZE)
                || e.raw_os_error() == Some(libc::ENOBUFS) =>
        {
            return Err(BenchError::Unsupported(format!(
                "a {payload}-byte datagram exceeds this system's Unix datagram limit \
                 (socket send buffer, net.core.wmem_default): {e}"
            )))
        }
        Err(e) => return Err(BenchError::sys("send (datagram size probe)", e)),
    }
    b.recv(&mut buf)
        .map_err(|e| BenchError::sys("recv (datagram size probe)", e))?;
    Ok(())
}

/// One end of a Unix datagram pair.
struct DgramEnd(UnixDatagram);

impl DgramEnd {
    fn error(op: &'static str, err: io::Error) -> BenchError {
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => BenchError::Timeout {
                what: "the peer on a datagram socket",
                secs: PEER_TIMEOUT.as_secs(),
            },
            _ => BenchError::sys(op, err),
        }
    }
}

impl Endpoint for DgramEnd {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        loop {
            match self.0.send(msg) {
                Ok(n) if n == msg.len() => return Ok(()),
                Ok(n) => {
                    return Err(BenchError::Protocol(format!(
                        "datagram send took {n} of {} bytes",
                        msg.len()
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Self::error("uds-dgram send", e)),
            }
        }
    }

    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        loop {
            match self.0.recv(msg) {
                Ok(n) if n == msg.len() => return Ok(()),
                Ok(n) => {
                    return Err(BenchError::Protocol(format!(
                        "received a {n}-byte datagram, expected {}",
                        msg.len()
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Self::error("uds-dgram recv", e)),
            }
        }
    }
}

/// The `tcp` transport: a connection over 127.0.0.1 with `TCP_NODELAY`.
pub struct Tcp;

impl Transport for Tcp {
    fn name(&self) -> &'static str {
        "tcp"
    }

    fn open(&self, _spec: &LinkSpec) -> Result<Link> {
        // Loopback only, ephemeral port; the listener is closed once accepted.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| BenchError::sys("bind 127.0.0.1:0", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| BenchError::sys("getsockname", e))?;
        // The handshake completes in the kernel against the listen backlog, so
        // a blocking connect before accept does not deadlock.
        let far = TcpStream::connect(addr).map_err(|e| BenchError::sys("connect 127.0.0.1", e))?;
        let (local, _) = listener
            .accept()
            .map_err(|e| BenchError::sys("accept", e))?;
        for s in [&local, &far] {
            s.set_nodelay(true)
                .map_err(|e| BenchError::sys("setsockopt(TCP_NODELAY)", e))?;
            s.set_read_timeout(Some(PEER_TIMEOUT))
                .and_then(|()| s.set_write_timeout(Some(PEER_TIMEOUT)))
                .map_err(|e| BenchError::sys("setsockopt(SO_RCVTIMEO/SO_SNDTIMEO)", e))?;
        }
        let far = OwnedFd::from(far);
        Ok(Link {
            local: tcp_end(local)?,
            child_args: vec![fd_arg(&far)],
            child_fds: vec![far],
        })
    }

    fn attach(&self, _spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        tcp_end(TcpStream::from(take_fd(args, 0)?))
    }
}

fn tcp_end(s: TcpStream) -> Result<Box<dyn Endpoint>> {
    let rx = s
        .try_clone()
        .map_err(|e| BenchError::sys("dup(tcp stream)", e))?;
    Ok(Box::new(StreamEnd::new(rx, s, "tcp")))
}
