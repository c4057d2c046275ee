//! Async loans: [`Publisher::loan_async`] and [`TypedPublisher::send_async`] wait for room
//! in a full `Block` ring on the process's reactor (`ringcast_core::reactor`), without
//! blocking the thread. Runtime-agnostic (std `Waker`s only).
//!
//! **Cancel safety.** Dropping a pending future publishes nothing and loses nothing; a
//! slot it may have claimed is the one the next loan gets.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use rkyv::Serialize;

use crate::{Loan, Publisher, SlotSerializer, TypedPublisher, TypedSendError};

/// Resolves once the next slot is claimed.
struct Room<'a> {
    publisher: &'a mut Publisher,
    armed: bool,
}

impl Future for Room<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.publisher.poll_room(cx.waker()).is_ready() {
            self.disarm();
            return Poll::Ready(());
        }
        self.armed = true;
        Poll::Pending
    }
}

impl Room<'_> {
    fn disarm(&mut self) {
        if std::mem::take(&mut self.armed) {
            if let Some(r) = &self.publisher.reactor {
                r.disarm();
            }
        }
    }
}

impl Drop for Room<'_> {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl Publisher {
    /// Poll-style wait for room, for event loops that are not Rust futures (Python's
    /// asyncio, a C or C++ reactor): `Poll::Ready` once the next slot is claimed (the next
    /// loan, e.g. [`try_loan`](Self::try_loan), gets it), else `Poll::Pending` after arming
    /// the process's reactor to wake `waker` once there may be room (or a liveness slice
    /// passed: poll again then, which reaps dead subscribers as a loan does).
    /// [`loan_async`](Self::loan_async) waits through it; [`disarm`](Self::disarm)
    /// withdraws the arm.
    pub fn poll_room(&mut self, waker: &std::task::Waker) -> Poll<()> {
        if self.claim_now() {
            return Poll::Ready(());
        }
        self.pay_owed_wakes();
        let next = self.next_seq();
        self.registration().arm([next], waker);
        Poll::Pending
    }

    /// Withdraws an arm left by [`poll_room`](Self::poll_room) (its waker will not be
    /// woken).
    pub fn disarm(&mut self) {
        if let Some(r) = &self.reactor {
            r.disarm();
        }
    }

    /// Loans the next slot, waiting for room under `Block` without blocking the thread
    /// (dead subscribers are reaped, and stalled ones evicted with a stall timeout, as for
    /// [`loan`](Self::loan)). Under `Overwrite` it is ready at once. Cancel-safe.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ringcast_publisher::{Publisher, PublisherConfig};
    /// # let config = PublisherConfig::default().prefix(format!("rcdoc{}loanasync", std::process::id()));
    /// let mut p = Publisher::create("frames", config)?;
    /// let mut loan = p.loan_async().await;
    /// loan.write_at(0, b"frame");
    /// assert_eq!(loan.commit(5), 0); // the topic's first message
    /// # Ok(()) }
    /// ```
    pub async fn loan_async(&mut self) -> Loan<'_> {
        Room {
            publisher: self,
            armed: false,
        }
        .await;
        self.loan_claimed()
    }

    /// Copies `bytes` into the next slot and commits it, waiting for room without blocking
    /// the thread. Cancel-safe.
    pub async fn send_async(&mut self, bytes: &[u8]) -> Result<u64, crate::SendError> {
        self.check_len(bytes.len())?;
        let mut loan = self.loan_async().await;
        loan.write_at(0, bytes);
        Ok(loan.commit(bytes.len()))
    }
}

impl<T> TypedPublisher<T>
where
    T: for<'a> Serialize<SlotSerializer<'a>>,
{
    /// Archives `value` into the next slot and commits it, waiting for room without
    /// blocking the thread. Cancel-safe.
    pub async fn send_async(&mut self, value: &T) -> Result<u64, TypedSendError> {
        Room {
            publisher: &mut self.raw,
            armed: false,
        }
        .await;
        // The slot is claimed: the send below does not wait.
        self.try_send(value)
    }
}
