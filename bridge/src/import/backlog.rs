//! `Block` imports without holding Zenoh's link: a lane's backlog and the pump.
//!
//! A message of a `Block` topic whose local ring is full is not waited for in Zenoh's
//! callback (which would hold every topic on the link): it is copied into its lane's
//! *backlog*, and the publisher is armed (`Publisher::poll_room`) to ring the [`Pump`]
//! when there is room; the import thread then publishes the backlog in order. The
//! exporter is kept within the backlog's bound by credits (see [`crate::credit`]); a
//! backlog at its bound (an exporter ahead of its credit) makes the callback wait for
//! room as before credits, so nothing is ever dropped for it. A lane whose publisher
//! leaves (its source writer's LEAVE, a takeover, the topic's END) publishes its backlog
//! to the end first, waiting for room in the callback as before credits, so local
//! subscribers get every message, in order, before they see the lane or the topic end.
//! The import thread itself never waits (it serves every topic): what it applies (a
//! replay of early messages, a close after a withdrawal) may grow a backlog past its
//! window, and a publisher that leaves there is *retired*, published to the end by the
//! pump; the topic adopts no new source until that is done.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ringcast::Publisher;

use super::parts::Chunks;

/// Bytes of backlog a `Block` lane may hold (its window is this over its slot size,
/// within [`MIN_WINDOW`, `MAX_WINDOW`]).
const BACKLOG_BYTES: u64 = 4 << 20;
const MIN_WINDOW: u64 = 16;
const MAX_WINDOW: u64 = 8192;

/// The window (messages past the last published one) a `Block` lane of `slot_capacity`
/// bytes takes: what its backlog holds.
pub(super) fn window(slot_capacity: u64) -> u64 {
    (BACKLOG_BYTES / slot_capacity.max(1)).clamp(MIN_WINDOW, MAX_WINDOW)
}

/// Messages of one lane that found its ring full, oldest first, with their sequences.
/// Their bytes follow each other in one buffer (no allocation per message once it has
/// grown to the lane's window).
#[derive(Default)]
pub(super) struct Backlog {
    /// Per message, oldest first: its sequence and length.
    msgs: VecDeque<(u64, usize)>,
    /// The messages' bytes, the oldest's from `head` on.
    bytes: Vec<u8>,
    head: usize,
    /// The pump's waker is armed (`Publisher::poll_room`) and has not fired yet: the ring
    /// was full, so nothing is tried until it fires (an arm rings the reactor's thread,
    /// and a claim on a full ring rescans the subscriber table: per message, either cost
    /// more than the message).
    armed: bool,
}

/// What a publish did, for the counters.
#[derive(Default)]
pub(super) struct Published {
    pub messages: u64,
    pub bytes: u64,
}

impl Backlog {
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// The sequence of the oldest message waiting, if any.
    pub fn first_seq(&self) -> Option<u64> {
        self.msgs.front().map(|m| m.0)
    }

    /// Re-publishes message `seq` (`len` bytes, next in `bytes`) into `p`, a `Block`
    /// lane's publisher: at once when nothing waits before it and the ring has room,
    /// else behind the backlog (arming `waker` for the pump). A backlog of `window`
    /// messages makes this wait for room (checking `stopping` every `slice`). `Break`
    /// when stopping.
    #[allow(clippy::too_many_arguments)]
    pub fn publish(
        &mut self,
        p: &mut Publisher,
        seq: u64,
        bytes: &mut Chunks<'_>,
        len: usize,
        window: u64,
        waker: &Waker,
        (stopping, slice): (&dyn Fn() -> bool, Duration),
        done: &mut Published,
    ) -> ControlFlow<()> {
        if !self.msgs.is_empty() {
            self.pump(p, waker, done);
        }
        if self.msgs.is_empty() && p.try_loan().is_ok() {
            // The loan dropped by `is_ok` keeps its claim; this one takes it.
            let mut loan = p.loan();
            bytes.copy(len, |at, chunk| loan.write_at(at, chunk));
            loan.commit(len);
            done.messages += 1;
            done.bytes += len as u64;
            return ControlFlow::Continue(());
        }
        while self.msgs.len() as u64 >= window {
            // Ahead of the credit (or a peer that sends none): wait for room, as an
            // import did before credits.
            loop {
                match p.loan_timeout(slice) {
                    Ok(_) => break,
                    Err(_) if stopping() => return ControlFlow::Break(()),
                    Err(_) => {}
                }
            }
            self.publish_first(p, done);
        }
        if self.head > 0 && self.head >= self.bytes.len() / 2 {
            // Most of the buffer was published: move the rest to its start (each byte
            // moves at most once per time the buffer's size is published).
            self.bytes.drain(..self.head);
            self.head = 0;
        }
        let at = self.bytes.len();
        self.bytes.resize(at + len, 0);
        let copy = &mut self.bytes[at..];
        bytes.copy(len, |off, chunk| {
            copy[off..off + chunk.len()].copy_from_slice(chunk)
        });
        self.msgs.push_back((seq, len));
        self.pump(p, waker, done);
        ControlFlow::Continue(())
    }

    /// Publishes the whole backlog, waiting for room (checking `stopping` every
    /// `slice`). `Break` when stopping.
    pub fn flush(
        &mut self,
        p: &mut Publisher,
        (stopping, slice): (&dyn Fn() -> bool, Duration),
        done: &mut Published,
    ) -> ControlFlow<()> {
        while !self.msgs.is_empty() {
            loop {
                match p.loan_timeout(slice) {
                    Ok(_) => break,
                    Err(_) if stopping() => return ControlFlow::Break(()),
                    Err(_) => {}
                }
            }
            self.publish_first(p, done);
        }
        ControlFlow::Continue(())
    }

    /// Publishes the backlog while the ring has room; when it has none, arms `waker` to
    /// be woken when it may. Does nothing while armed (until [`fired`](Self::fired)).
    /// The run wakes local subscribers once (`coalesce_wakes`), not once per message: a
    /// subscriber woken by the first commit has not run yet when the next ones come, and
    /// each would otherwise make a wake system call.
    pub fn pump(&mut self, p: &mut Publisher, waker: &Waker, done: &mut Published) {
        if self.msgs.is_empty() || self.armed {
            return;
        }
        p.coalesce_wakes(|p| {
            while !self.msgs.is_empty() {
                match p.poll_room(waker) {
                    Poll::Ready(()) => self.publish_first(p, done),
                    Poll::Pending => {
                        self.armed = true;
                        return;
                    }
                }
            }
        })
    }

    /// The pump was rung (or its clock ticked): the arm fired, or may have; the next
    /// [`pump`](Self::pump) that finds no room arms again.
    pub fn fired(&mut self) {
        self.armed = false;
    }

    /// Publishes the oldest message; a slot is claimed (the next loan gets it at once).
    fn publish_first(&mut self, p: &mut Publisher, done: &mut Published) {
        if let Some((_, len)) = self.msgs.pop_front() {
            let mut loan = p.loan();
            loan.write_at(0, &self.bytes[self.head..self.head + len]);
            loan.commit(len);
            self.head += len;
            if self.msgs.is_empty() {
                self.bytes.clear();
                self.head = 0;
            }
            done.messages += 1;
            done.bytes += len as u64;
        }
    }
}

/// A lane's publisher that left with a backlog: published to the end by the pump, then
/// dropped.
pub(super) struct Retired {
    pub publisher: Publisher,
    pub backlog: Backlog,
}

/// Where wakers ring the import thread: the topics with work for it.
#[derive(Default)]
pub(super) struct Pump {
    ready: Mutex<Vec<usize>>,
    bell: Condvar,
}

impl Pump {
    /// Topic `topic` has work for the import thread.
    pub fn ring(&self, topic: usize) {
        let mut r = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        if !r.contains(&topic) {
            r.push(topic);
        }
        self.bell.notify_one();
    }

    /// The topics rung since the last call, waiting until one rings or `until`.
    pub fn wait(&self, until: Instant) -> Vec<usize> {
        let mut r = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        while r.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            r = match self.bell.wait_timeout(r, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        std::mem::take(&mut *r)
    }

    /// A waker that rings `topic`, and the flag it raises each time (read by the topic's
    /// callbacks: their backlogs' arms may have fired).
    pub fn waker(self: &Arc<Pump>, topic: usize) -> (Waker, Arc<AtomicBool>) {
        let rang = Arc::new(AtomicBool::new(false));
        let waker = Waker::from(Arc::new(TopicWaker {
            pump: self.clone(),
            topic,
            rang: rang.clone(),
        }));
        (waker, rang)
    }
}

struct TopicWaker {
    pump: Arc<Pump>,
    topic: usize,
    rang: Arc<AtomicBool>,
}

impl TopicWaker {
    fn ring(&self) {
        // Relaxed: a hint for the callbacks; the pump's ring (under its mutex) is what
        // makes the import thread publish the backlog.
        self.rang.store(true, Ordering::Relaxed);
        self.pump.ring(self.topic);
    }
}

impl Wake for TopicWaker {
    fn wake(self: Arc<Self>) {
        TopicWaker::ring(&self);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        TopicWaker::ring(self);
    }
}
