//! Async receive: [`Subscriber::recv_async`], [`TypedSubscriber::recv_async`] and the
//! [`SampleStream`] of owned samples, on the process's reactor
//! (`ringcast_core::reactor`): runtime-agnostic (std `Waker`s only), no thread and no
//! timer per subscriber.
//!
//! **Cancel safety.** A message is consumed only in the poll that returns it, so dropping
//! a pending `recv_async` future (a `select!` that took another branch, a timeout) loses
//! nothing: the next receive gets the message the dropped one would have.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use rkyv::bytecheck::CheckBytes;
use rkyv::{Archive, Archived};

use crate::subscriber::Got;
use crate::typed::{SlotValidator, TypedSample};
use crate::{RecvError, Sample, Subscriber, TryRecvError, TypedRecvError, TypedSubscriber};

/// What a waiting receive makes of a non-blocking one's error: `None` for "wait".
fn waiting_error(e: TryRecvError) -> Option<RecvError> {
    {
        match e {
            TryRecvError::Empty => None,
            TryRecvError::Lagged(n) => Some(RecvError::Lagged(n)),
            TryRecvError::Disconnected => Some(RecvError::Disconnected),
            TryRecvError::Evicted => Some(RecvError::Evicted),
            TryRecvError::Corrupt { seq, len } => Some(RecvError::Corrupt { seq, len }),
        }
    }
}

/// Resolves with the next fetched message (or the error a `recv` would give).
struct Fetch<'a> {
    sub: &'a mut Subscriber,
    armed: bool,
}

impl Fetch<'_> {
    fn poll_fetch(&mut self, cx: &mut Context<'_>) -> Poll<Result<Got, RecvError>> {
        let r = match self.sub.fetch() {
            Ok(got) => Ok(got),
            Err(e) => match waiting_error(e) {
                Some(e) => Err(e),
                None => {
                    self.sub.arm_reactor(cx.waker());
                    self.armed = true;
                    return Poll::Pending;
                }
            },
        };
        self.disarm();
        Poll::Ready(r)
    }

    fn disarm(&mut self) {
        if std::mem::take(&mut self.armed) {
            if let Some(r) = &self.sub.reactor {
                r.disarm();
            }
        }
    }
}

impl Future for Fetch<'_> {
    type Output = Result<Got, RecvError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_fetch(cx)
    }
}

impl Drop for Fetch<'_> {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl Subscriber {
    /// Receives the next message without blocking the thread: the future resolves when a
    /// message (or the end, or a lag report) is there. Cancel-safe (see the [module
    /// docs](crate::future)). A crashed publisher is noticed within the liveness bound,
    /// as for [`recv`](Self::recv).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ringcast_subscriber::{Subscriber, SubscriberOptions};
    /// # use ringcast_publisher::{Publisher, PublisherConfig};
    /// # let prefix = format!("rcdoc{}recvasync", std::process::id());
    /// # let mut publisher = Publisher::create("imu", PublisherConfig::default().prefix(&prefix))?;
    /// # let opts = SubscriberOptions::default().prefix(&prefix);
    /// let mut sub = Subscriber::attach("imu", opts)?;
    /// # let publisher = std::thread::spawn(move || {
    /// #     for len in 1..=3 { publisher.send(&vec![0u8; len]).unwrap(); }
    /// # });
    /// // Here another thread sends three messages (1, 2 and 3 bytes) and closes the topic.
    /// let mut total = 0;
    /// while let Ok(sample) = sub.recv_async().await {
    ///     println!("#{}: {} bytes", sample.seq(), sample.len());
    ///     total += sample.len();
    /// }
    /// assert_eq!(total, 6);
    /// # publisher.join().unwrap();
    /// # Ok(()) }
    /// ```
    pub async fn recv_async(&mut self) -> Result<Sample<'_>, RecvError> {
        let got = Fetch {
            sub: self,
            armed: false,
        }
        .await?;
        Ok(self.sample(got))
    }

    /// Poll-style receive for event loops that are not Rust futures (Python's asyncio, a
    /// C or C++ reactor): the next message if one is there, else `Poll::Pending` after
    /// arming the process's reactor to wake `waker` once one may be (or the topic ends, or
    /// a liveness slice passes: poll again then). Cancel-safe like
    /// [`recv_async`](Self::recv_async): a pending poll consumes nothing, and
    /// [`disarm`](Self::disarm) withdraws the arm.
    ///
    /// ```
    /// use std::task::{Poll, Waker};
    /// use ringcast_subscriber::{Subscriber, SubscriberOptions};
    /// # use ringcast_publisher::{Publisher, PublisherConfig};
    /// # let prefix = format!("rcdoc{}pollrecv", std::process::id());
    /// # let mut publisher = Publisher::create("imu", PublisherConfig::default().prefix(&prefix))?;
    /// # let opts = SubscriberOptions::default().prefix(&prefix);
    /// let mut sub = Subscriber::attach("imu", opts)?;
    /// // Nothing yet: the reactor is armed to wake the waker once there may be news.
    /// assert!(sub.poll_recv(Waker::noop()).is_pending());
    /// publisher.send(b"hello")?;
    /// // A real loop passes its own waker and polls again when it is woken.
    /// let Poll::Ready(r) = sub.poll_recv(Waker::noop()) else { unreachable!("sent above") };
    /// assert_eq!(&*r?, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_recv(&mut self, waker: &Waker) -> Poll<Result<Sample<'_>, RecvError>> {
        match self.poll_fetch(waker) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => Poll::Ready(r.map(|got| self.sample(got))),
        }
    }

    /// One fetch for an event loop; `Pending` leaves the reactor armed for `waker`.
    pub(crate) fn poll_fetch(&mut self, waker: &Waker) -> Poll<Result<Got, RecvError>> {
        let mut cx = Context::from_waker(waker);
        let mut fetch = Fetch {
            sub: &mut *self,
            armed: false,
        };
        let p = fetch.poll_fetch(&mut cx);
        // Pending: the arm stays for the waker (the fetch must not withdraw it).
        fetch.armed = false;
        p
    }

    /// Readiness without receiving, for event loops and wait sets in other languages:
    /// `Poll::Ready` if a receive would complete at once (a message, a lag report, the
    /// end), else `Poll::Pending` after arming the reactor as
    /// [`poll_recv`](Self::poll_recv) does.
    pub fn poll_ready(&mut self, waker: &Waker) -> Poll<()> {
        if self.ready_now() {
            return Poll::Ready(());
        }
        self.arm_reactor(waker);
        Poll::Pending
    }

    /// Withdraws an arm left by [`poll_recv`](Self::poll_recv) or
    /// [`poll_ready`](Self::poll_ready) (its waker will not be woken).
    pub fn disarm(&mut self) {
        if let Some(r) = &self.reactor {
            r.disarm();
        }
    }

    /// The messages as a [`Stream`] of owned copies ([`OwnedSample`]); it ends when the
    /// publisher is gone and everything was received. Lag reports and evictions are
    /// items (`Err`). For zero copy, use [`recv_async`](Self::recv_async).
    pub fn stream(&mut self) -> SampleStream<'_> {
        SampleStream {
            fetch: Fetch {
                sub: self,
                armed: false,
            },
            done: false,
        }
    }
}

impl<T> TypedSubscriber<T>
where
    T: Archive,
    Archived<T>: for<'a> CheckBytes<SlotValidator<'a>>,
{
    /// Receives and validates the next message without blocking the thread. Cancel-safe.
    pub async fn recv_async(&mut self) -> Result<TypedSample<'_, T>, TypedRecvError<RecvError>> {
        let validate = self.validate;
        let sample = self.raw.recv_async().await?;
        TypedSample::check(sample, validate)
    }
}

/// A message copied out of the ring, for [`SampleStream`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedSample {
    /// Its sequence number.
    pub seq: u64,
    /// Its payload.
    pub data: Vec<u8>,
}

/// The [`Stream`] of [`Subscriber::stream`].
pub struct SampleStream<'a> {
    fetch: Fetch<'a>,
    done: bool,
}

impl std::fmt::Debug for SampleStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Stream for SampleStream<'_> {
    type Item = Result<OwnedSample, RecvError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.fetch.poll_fetch(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(got)) => {
                let sample = self.fetch.sub.sample(got);
                let owned = OwnedSample {
                    seq: sample.seq(),
                    data: sample.to_vec(),
                };
                Poll::Ready(Some(Ok(owned)))
            }
            Poll::Ready(Err(RecvError::Disconnected)) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
        }
    }
}
