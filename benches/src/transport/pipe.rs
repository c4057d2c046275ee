//! `pipe`: two anonymous pipes, one per direction, in their default
//! configuration (64 KiB of kernel buffer each).

use std::fs::File;
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use super::stream::StreamEnd;
use super::{fd_arg, take_fd, Endpoint, Link, LinkSpec, Transport};
use crate::error::{BenchError, Result};

/// The `pipe` transport.
pub struct Pipe;

impl Transport for Pipe {
    fn name(&self) -> &'static str {
        "pipe"
    }

    fn open(&self, _spec: &LinkSpec) -> Result<Link> {
        let (down_rx, down_tx) = pipe("parent->child")?;
        let (up_rx, up_tx) = pipe("child->parent")?;
        Ok(Link {
            local: Box::new(StreamEnd::new(
                File::from(up_rx),
                File::from(down_tx),
                "pipe",
            )),
            child_args: vec![fd_arg(&down_rx), fd_arg(&up_tx)],
            child_fds: vec![down_rx, up_tx],
        })
    }

    fn attach(&self, _spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        let rx = File::from(take_fd(args, 0)?);
        let tx = File::from(take_fd(args, 1)?);
        Ok(Box::new(StreamEnd::new(rx, tx, "pipe")))
    }
}

/// Creates a close-on-exec pipe: (read end, write end).
fn pipe(what: &str) -> Result<(OwnedFd, OwnedFd)> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| BenchError::nix(format!("pipe2 ({what})"), e))
}
