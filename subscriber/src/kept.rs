//! A sample kept inside its subscriber: the owned, borrow-free way to hold one message,
//! for code that cannot keep a [`Sample`](crate::Sample) borrow alive across calls (the
//! Python and C bindings, an event loop that stores its state in a struct).
//!
//! [`Subscriber::try_recv_kept`] (and its waiting and async forms) receives the next
//! message and keeps it in the subscriber instead of lending it out; the bytes are
//! [`Subscriber::kept`] until [`Subscriber::release_kept`] or the next receive of any kind,
//! which releases it first. The borrow checker sees every access: `kept()` borrows the
//! subscriber, so no receive can release the bytes while they are looked at.
//!
//! ```
//! # use ringcast_publisher::{Publisher, PublisherConfig};
//! # use ringcast_subscriber::{Subscriber, SubscriberOptions};
//! # let prefix = format!("rcdoc{}kept", std::process::id());
//! # let mut publisher = Publisher::create("kept", PublisherConfig::default().prefix(&prefix))?;
//! let mut sub = Subscriber::attach("kept", SubscriberOptions::default().prefix(&prefix))?;
//! # publisher.send(b"hello")?;
//! let kept = sub.try_recv_kept()?;          // no borrow: `sub` may be stored anywhere
//! assert_eq!(sub.kept(), Some(&b"hello"[..]));
//! assert_eq!(kept.seq, 0);
//! sub.release_kept();                       // or let the next receive do it
//! assert_eq!(sub.kept(), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use ringcast_core::clock::deadline_after;
use ringcast_core::endpoint::Retained;

use crate::buffer::AlignedBuf;
use crate::subscriber::Got;
use crate::{RecvError, RecvTimeoutError, Subscriber, TryRecvError};
use ringcast_core::PublisherId;

/// Which message a subscriber keeps (see [`Subscriber::try_recv_kept`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Kept {
    /// The message's sequence number.
    pub seq: u64,
    /// Its payload length.
    pub len: usize,
    /// Which publisher wrote it.
    pub publisher: PublisherId,
}

impl Kept {
    fn of(got: Got) -> Kept {
        Kept {
            seq: got.seq,
            len: got.len,
            publisher: got.from,
        }
    }
}

impl Subscriber {
    /// Receives the next message if there is one, without waiting, and keeps it in the
    /// subscriber (see the [module docs](crate::kept)): [`kept`](Self::kept) gives its
    /// bytes until [`release_kept`](Self::release_kept) or the next receive.
    pub fn try_recv_kept(&mut self) -> Result<Kept, TryRecvError> {
        let got = self.fetch()?;
        Ok(self.keep(got))
    }

    /// [`try_recv_kept`](Self::try_recv_kept), waiting at most `timeout` (`Duration::MAX`:
    /// for ever) as [`recv_timeout`](Self::recv_timeout) does.
    pub fn recv_kept_timeout(&mut self, timeout: Duration) -> Result<Kept, RecvTimeoutError> {
        let got = self.recv_until(deadline_after(timeout))?;
        Ok(self.keep(got))
    }

    /// [`recv_kept_timeout`](Self::recv_kept_timeout) until `deadline` (`None`: for
    /// ever): for callers that already read the clock (no second read).
    pub fn recv_kept_until(&mut self, deadline: Option<Instant>) -> Result<Kept, RecvTimeoutError> {
        let got = self.recv_until(deadline)?;
        Ok(self.keep(got))
    }

    /// [`try_recv_kept`](Self::try_recv_kept) for an event loop: `Poll::Pending` after
    /// arming the process's reactor to wake `waker` once a receive may complete, as
    /// [`poll_recv`](Self::poll_recv) does.
    pub fn poll_recv_kept(&mut self, waker: &Waker) -> Poll<Result<Kept, RecvError>> {
        match self.poll_fetch(waker) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => Poll::Ready(r.map(|got| self.keep(got))),
        }
    }

    /// The bytes of the kept message, if one is kept.
    pub fn kept(&self) -> Option<&[u8]> {
        let got = self.kept?;
        // SAFETY: a kept `InPlace` message is held exactly as a live `Sample` would be (our
        // cursor stays at its sequence until `release_kept`, which needs `&mut self` and so
        // cannot run while the returned borrow of `self` lives).
        Some(unsafe { self.bytes_of(got) })
    }

    /// The kept message, if one is kept.
    pub fn kept_info(&self) -> Option<Kept> {
        self.kept.map(Kept::of)
    }

    /// Releases the kept message (under `Block`, hands its slot back to the publisher) and
    /// returns which it was; `None` if none was kept.
    pub fn release_kept(&mut self) -> Option<Kept> {
        let got = self.kept.take()?;
        if got.in_place {
            self.end
                .reader()
                .release_at(got.from.lane as usize, got.seq);
        }
        Some(Kept::of(got))
    }

    /// Keeps this topic's mapping (and `buffer`, if given) allocated until the returned
    /// [`Retained`] is dropped, whatever happens to this subscriber meanwhile: for a
    /// handle built on this subscriber that closes while a foreign pointer into a message
    /// read in place may outlive it (a service's server or client under a Python array).
    pub fn retain(&self, buffer: Option<Box<dyn Send + Sync>>) -> Retained {
        Retained::new(self.end.memory().clone(), buffer)
    }

    /// Detaches now (a `Block` publisher stops waiting for this subscriber, as when it is
    /// dropped) but keeps the topic's mapping and this subscriber's copy buffer allocated
    /// until the returned `Retained` is dropped: for a foreign pointer into a kept
    /// message that may outlive the handle (a Python buffer view). Under `Block` the
    /// publisher may reuse the slot such a pointer shows as soon as this returns.
    pub fn detach_retaining(mut self) -> Retained {
        self.kept = None;
        let buffer = std::mem::replace(&mut self.buf, AlignedBuf::empty());
        let memory = self.end.memory().clone();
        drop(self);
        Retained::new(memory, Some(Box::new(buffer)))
    }

    fn keep(&mut self, got: Got) -> Kept {
        debug_assert!(self.kept.is_none(), "fetch releases a kept message first");
        self.kept = Some(got);
        Kept::of(got)
    }
}
