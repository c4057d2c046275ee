//! loom model checks of ringcast's synchronization code.
//!
//! The models live in `tests/` and compile only under `RUSTFLAGS="--cfg loom"`; they drive
//! the very `ringcast-core` code that ships (`ring::Writer`, `ring::Reader`, the sleep and
//! wake handshakes in `wait`) through its `cfg(loom)` sync shim. Threads stand in for
//! processes, and the segment is a loom model allocation (`SegmentMemory::model`) whose
//! slot payloads are two atomic words plus a loom `UnsafeCell` that catches any write to a
//! slot while a `Block` reader holds it.
//!
//! This file holds the small vocabulary the models share: how the publisher writes a
//! self-checking message, and how a subscriber checks one.

/// The shared model vocabulary (loom builds only).
#[cfg(loom)]
pub mod model {
    use std::sync::Arc;

    use ringcast_core::memory::SegmentMemory;
    use ringcast_core::ring::{Full, Poll, Reader, Start, Writer};

    /// Runs a model with the preemption bound capped at `cap` (or lower, if the
    /// `LOOM_MAX_PREEMPTIONS` environment asks for less). For the three-thread models whose
    /// state space at bound 2 takes more than a CI run can spend.
    pub fn check_with_bound<F: Fn() + Sync + Send + 'static>(cap: usize, f: F) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(b.preemption_bound.map_or(cap, |p| p.min(cap)));
        b.check(f);
    }

    /// Claims entry `entry` (its model lock) and attaches a reader through it, as a
    /// subscriber process does with its OFD lock.
    pub fn attach(mem: &Arc<SegmentMemory>, entry: usize, start: Start) -> Reader {
        assert!(mem.model_lock(entry), "entry {entry} is taken");
        // SAFETY: we just took the entry's model lock; the reader keeps it until it is
        // dropped (the model never reuses it while the reader lives) or `die`s.
        unsafe { ringcast_core::model::reader(mem.clone(), entry, start) }
    }

    /// Claims entry `entry` and attaches a monitor (a non-gating reader) through it.
    pub fn attach_monitor(mem: &Arc<SegmentMemory>, entry: usize, start: Start) -> Reader {
        assert!(mem.model_lock(entry), "entry {entry} is taken");
        // SAFETY: as in `attach`.
        unsafe { ringcast_core::model::monitor(mem.clone(), entry, start) }
    }

    /// The one writer of a model segment.
    pub fn writer(mem: &Arc<SegmentMemory>) -> Writer {
        // SAFETY: each model builds exactly one writer per segment.
        unsafe { ringcast_core::model::writer(mem.clone()) }
    }

    /// Payload of message `seq`: two words that must agree, so a torn copy is visible.
    pub fn words(seq: u64) -> [u64; 2] {
        [seq, !seq]
    }

    /// Whether a copied payload is the intact message `seq`.
    pub fn intact(seq: u64, got: &[u64; 2]) -> bool {
        *got == words(seq)
    }

    /// Publishes one message if the ring has room (`Block` may say `Full`).
    pub fn try_publish(w: &mut Writer, mem: &SegmentMemory) -> Result<u64, Full> {
        let seq = w.try_claim()?;
        mem.model_write(seq, &words(seq));
        Ok(w.commit(16))
    }

    /// Publishes one message into the writer's lane, sleeping for room as [`publish`]
    /// does.
    pub fn publish_lane(w: &mut Writer, mem: &SegmentMemory) -> u64 {
        loop {
            if let Ok(seq) = w.try_claim() {
                mem.model_write_lane(w.lane(), seq, &words(seq));
                return w.commit(16);
            }
            w.sleep_for_room(None);
        }
    }

    /// Publishes one message, sleeping on the publisher's futex (the shipped handshake)
    /// while the ring is full. (Spinning would make loom's path explode.)
    pub fn publish(w: &mut Writer, mem: &SegmentMemory) -> u64 {
        loop {
            match try_publish(w, mem) {
                Ok(seq) => return seq,
                Err(Full) => {
                    w.sleep_for_room(None);
                }
            }
        }
    }

    /// Receives `Block` messages in place until `count` arrived, sleeping on the
    /// subscribers' futex (the shipped handshake) whenever the ring is empty.
    pub fn receive_until(r: &mut Reader, mem: &SegmentMemory, count: u64) {
        let mut next = r.next_seq();
        while next < count {
            match recv_in_place(r, mem) {
                Got::Message(seq) => {
                    assert_eq!(seq, next, "out of order or duplicate");
                    next += 1;
                }
                Got::Empty => {
                    r.sleep(None);
                }
                g => panic!("unexpected {g:?}"),
            }
        }
    }

    /// What one `Overwrite` receive attempt produced.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Got {
        /// An intact message.
        Message(u64),
        /// Lost this many.
        Lagged(u64),
        /// Nothing yet.
        Empty,
        /// Publisher closed and everything was read.
        Closed,
    }

    /// One `Overwrite` receive: poll, copy out, verify. Panics on a torn message.
    pub fn recv_copy(r: &mut Reader) -> Got {
        match r.poll() {
            Poll::Ready { seq, len } => {
                let mut buf = [0u64; 2];
                match r.read_copy(seq, len, &mut buf) {
                    Ok(_) => {
                        assert!(intact(seq, &buf), "torn message {seq}: {buf:?}");
                        Got::Message(seq)
                    }
                    Err(Poll::Lagged(n)) => Got::Lagged(n),
                    Err(p) => panic!("read_copy returned {p:?}"),
                }
            }
            Poll::Lagged(n) => Got::Lagged(n),
            Poll::Empty => Got::Empty,
            Poll::Closed => Got::Closed,
            p => panic!("unexpected poll {p:?}"),
        }
    }

    /// One `Block` receive: poll, read in place, verify, release. The in-place read goes
    /// through the slot's loom `UnsafeCell`, so loom reports any publisher write to the
    /// slot that is not ordered after our release (loom checks causality, not timing).
    pub fn recv_in_place(r: &mut Reader, mem: &SegmentMemory) -> Got {
        match r.poll() {
            Poll::Ready { seq, .. } => {
                let mut got = [0u64; 2];
                mem.model_read_in_place(seq, &mut got);
                assert!(intact(seq, &got), "torn message {seq}: {got:?}");
                r.release(seq);
                Got::Message(seq)
            }
            Poll::Empty => Got::Empty,
            Poll::Closed => Got::Closed,
            p => panic!("unexpected poll under Block: {p:?}"),
        }
    }
}
