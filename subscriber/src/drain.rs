//! Draining what is ready in one call: the batched consumer.
//!
//! [`Subscriber::drain`] hands every message that is ready now (up to a bound) to a
//! closure, without waiting. Under `Block` the slots it reads go back to the publisher
//! once per run (one cursor store and one wake-up check for the run, as with
//! [`SubscriberOptions::release_batch`](crate::SubscriberOptions::release_batch)), and
//! all of them before `drain` returns: nothing is held back after the call. Inside the
//! closure, a wait that may block (a `send` into a full `Block` topic, a `recv`) first
//! hands the run's slots back ([`ringcast_core::handback`]), so the closure holds only the
//! message it was given, as a `recv` loop does: two nodes that drain and relay into each
//! other's topics cannot deadlock on released slots.

use std::ops::ControlFlow;

use crate::{Sample, Subscriber, TryRecvError};

/// What one [`Subscriber::drain`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drained {
    /// Messages handed to the closure.
    pub delivered: usize,
    /// Why it stopped before finding the ring empty or reaching its bound: the error the
    /// next `try_recv` would have returned (`Lagged` and `Corrupt` are reported here once,
    /// as `try_recv` reports them; `Disconnected` and `Evicted` will be reported again).
    /// `None` when it stopped because nothing more was ready, at the bound, or because
    /// the closure asked to (see `broke`).
    pub stopped: Option<TryRecvError>,
    /// The closure of [`Subscriber::drain_while`] returned `Break`: the messages after
    /// the one it broke on are left for the next receive.
    pub broke: bool,
}

impl Subscriber {
    /// Receives every message ready now, up to `max`, handing each to `f` in order, and
    /// returns how many it delivered and why it stopped. Never waits (call
    /// [`recv`](Self::recv) first to wait for the first one). Under `Block` the slots read
    /// are handed back once per run of consecutive messages and completely before the
    /// call returns.
    ///
    /// If `f` waits (publishes with a call that waits for room, receives with a wait), the
    /// run's slots are handed back before it does: `f` holds only the message it is given.
    ///
    /// ```
    /// # use ringcast_publisher::{Publisher, PublisherConfig};
    /// # use ringcast_subscriber::{Subscriber, SubscriberOptions};
    /// # let prefix = format!("rcdoc{}drain", std::process::id());
    /// # let mut publisher = Publisher::create("ticks", PublisherConfig::default().prefix(&prefix))?;
    /// # let mut sub = Subscriber::attach("ticks", SubscriberOptions::default().prefix(&prefix))?;
    /// # for b in 1..=3u8 { publisher.send(&[b])?; }
    /// let mut sum = 0u64;
    /// let drained = sub.drain(1024, |m| sum += m[0] as u64);
    /// assert_eq!((drained.delivered, sum), (3, 6));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(Sample<'_>)) -> Drained {
        self.drain_while(max, |sample| {
            f(sample);
            ControlFlow::Continue(())
        })
    }

    /// [`drain`](Self::drain) with a way out: when `f` returns `ControlFlow::Break`, the
    /// drain stops after that message (which counts as delivered) and leaves every later
    /// one for the next receive. A panic in `f` leaves them too (the run's slots are
    /// handed back by the next receive on this subscriber, or when it is dropped).
    ///
    /// ```
    /// # use std::ops::ControlFlow;
    /// # use ringcast_publisher::{Publisher, PublisherConfig};
    /// # use ringcast_subscriber::{Subscriber, SubscriberOptions};
    /// # let prefix = format!("rcdoc{}drainwhile", std::process::id());
    /// # let cfg = PublisherConfig::default().prefix(&prefix).overflow(ringcast_publisher::Overflow::Block);
    /// # let mut publisher = Publisher::create("orders", cfg)?;
    /// let mut sub = Subscriber::attach("orders", SubscriberOptions::default().prefix(&prefix))?;
    /// # for m in [b"new", b"cxl", b"new"] { publisher.send(m)?; }
    /// // Stop at the first cancel; what follows it stays for the next receive.
    /// let d = sub.drain_while(100, |m| {
    ///     if &*m == b"cxl" { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    /// });
    /// assert_eq!((d.delivered, d.broke), (2, true));
    /// assert_eq!(sub.try_recv()?.seq(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drain_while(
        &mut self,
        max: usize,
        mut f: impl FnMut(Sample<'_>) -> ControlFlow<()>,
    ) -> Drained {
        let mut delivered = 0;
        let mut stopped = None;
        let mut broke = false;
        while delivered < max {
            match self.fetch() {
                Ok(got) => {
                    delivered += 1;
                    if f(self.sample_with(got, true)).is_break() {
                        broke = true;
                        break;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            }
        }
        // At the bound with more waiting, or if `f` kept a run open: hand it all back.
        self.end.reader().end_run();
        Drained {
            delivered,
            stopped,
            broke,
        }
    }
}
