//! The [`Subscriber`] handle and its [`Sample`].

use std::ops::Deref;
use std::time::{Duration, Instant};

use ringcast_core::clock::{deadline_after, LivenessClock};
use ringcast_core::endpoint::SubscriberEnd;
use ringcast_core::futex::Wake;
use ringcast_core::reactor::Registration;
use ringcast_core::residency::MemoryOptions;
use ringcast_core::ring::{Poll, PublisherId, Reader};
use ringcast_core::wait::{self, Stop, Waitable};
use ringcast_core::waitset::sealed::MemberImpl;
use ringcast_core::waitset::{Refusal, SleepTarget};
use ringcast_core::{AttachError, Geometry, Overflow, WaitStrategy};

use crate::buffer::AlignedBuf;
use crate::{RecvError, RecvTimeoutError, SubscriberOptions, TryRecvError};

/// One subscriber of one topic. Receives every message in publish order, never the same
/// one twice, never a torn one. `Send`, not `Sync`.
pub struct Subscriber {
    /// The async reactor's registration (after the first `recv_async`). It shares the
    /// end's claim on its table entry, which the reactor sleeps in (see
    /// `ringcast_core::reactor`), and is dropped with the subscriber.
    pub(crate) reactor: Option<Registration>,
    pub(crate) end: SubscriberEnd,
    pub(crate) buf: AlignedBuf,
    /// The message kept by [`try_recv_kept`](Self::try_recv_kept) and its kin (held in
    /// place under `Block`, in `buf` under `Overwrite`); every fetch releases it first.
    pub(crate) kept: Option<Got>,
    wait: WaitStrategy,
    /// The policy this handle reads by: the topic's, or `Overwrite` for a monitor.
    reads_by: Overflow,
    /// Attached as a monitor.
    monitor: bool,
    /// Rate-limits the publisher liveness check (a system call) to once per
    /// [`LIVENESS_SLICE`](ringcast_core::clock::LIVENESS_SLICE) across all calls of this
    /// handle: blocking, timeout loops of any length and `try_recv` pollers alike.
    liveness: LivenessClock,
    /// The liveness check found the publisher dead: drain, then `Disconnected`.
    publisher_gone: bool,
    /// The lane of the last `Lagged` report.
    lag_lane: u32,
}

/// A received message that is ready to use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Got {
    /// `Block`: in place in shared memory, held until the sample drops; else
    /// (`Overwrite`, a monitor) a verified copy in our buffer.
    pub(crate) in_place: bool,
    /// Its sequence in its lane.
    pub(crate) seq: u64,
    /// Its payload length.
    pub(crate) len: usize,
    /// Who wrote it.
    pub(crate) from: PublisherId,
}

impl Subscriber {
    /// Attaches to `topic`. Fails at once if it does not exist; see
    /// [`attach_wait`](Self::attach_wait) to wait for it.
    pub fn attach(topic: &str, opts: SubscriberOptions) -> Result<Subscriber, AttachError> {
        let memory = opts.memory;
        let sub = Subscriber::attach_mapped(topic, opts)?;
        sub.keep_resident(memory)?;
        Ok(sub)
    }

    /// [`attach`](Self::attach) without `opts.memory`: nothing prefaulted or locked yet.
    fn attach_mapped(topic: &str, opts: SubscriberOptions) -> Result<Subscriber, AttachError> {
        let mut end = SubscriberEnd::attach(
            &opts.prefix,
            topic,
            opts.type_info.as_ref(),
            opts.init_wait,
            &opts.limits,
            opts.start,
            opts.role,
        )?;
        if let Some(batch) = opts.release_batch {
            end.reader().set_release_batch(batch);
        }
        let g = *end.geometry();
        // The policy we read by: the topic's, or `Overwrite` for a monitor.
        let reads_by = end.reader_ref().reads_by();
        // Only `Overwrite` copies messages out; `Block` reads them in place.
        let copy_bytes = match reads_by {
            Overflow::Overwrite => g.slot_capacity as usize,
            Overflow::Block => 0,
        };
        let buf = AlignedBuf::new(copy_bytes, g.alignment as usize).ok_or_else(|| {
            AttachError::OutOfMemory {
                topic: topic.to_owned(),
                bytes: copy_bytes as u64,
            }
        })?;
        tracing::debug!(
            topic,
            entry = end.reader_ref().entry_index(),
            start = end.reader_ref().next_seq(),
            "attached"
        );
        Ok(Subscriber {
            reactor: None,
            end,
            buf,
            kept: None,
            wait: opts.wait,
            reads_by,
            monitor: opts.role == ringcast_core::Role::Monitor,
            liveness: LivenessClock::default(),
            publisher_gone: false,
            lag_lane: 0,
        })
    }

    /// Prefaults and/or locks this subscriber's mappings as `memory` asks.
    fn keep_resident(&self, memory: MemoryOptions) -> Result<(), AttachError> {
        if memory == MemoryOptions::default() {
            return Ok(());
        }
        self.end
            .memory()
            .keep_resident(memory)
            .map_err(|(op, source)| AttachError::Memory {
                topic: self.topic().to_owned(),
                op,
                bytes: self.geometry().total_size,
                source,
            })
    }

    /// Attaches to `topic`, waiting up to `timeout` for a live publisher to create it
    /// (`Duration::MAX`: for ever). A segment left by a dead publisher counts as "not
    /// there yet". The memory options (prefault, lock) apply only to the segment it
    /// finally attaches to, never to a dead one it retries past.
    pub fn attach_wait(
        topic: &str,
        opts: SubscriberOptions,
        timeout: Duration,
    ) -> Result<Subscriber, AttachError> {
        let deadline = deadline_after(timeout);
        let mut pause = Duration::from_micros(100);
        loop {
            let err = match Subscriber::attach_mapped(topic, opts.clone()) {
                Ok(sub) if sub.publisher_alive() => {
                    sub.keep_resident(opts.memory)?;
                    return Ok(sub);
                }
                Ok(_) => AttachError::Closed {
                    topic: topic.to_owned(),
                },
                Err(e @ (AttachError::NotFound { .. } | AttachError::NotReady { .. })) => e,
                Err(e) => return Err(e),
            };
            let left = deadline.map_or(pause, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(err);
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Whether this subscriber was made in the process this one was `fork()`ed from. Such a
    /// copy belongs to that process: dropping it here leaves the parent's table entry untouched (so a child
    /// may drop what it inherited), but receiving through it from the child would move the parent's cursor; make a new one in
    /// the child instead. The Python and C bindings refuse every call on it.
    #[inline]
    pub fn is_inherited(&self) -> bool {
        self.end.inherited()
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        self.end.topic()
    }

    /// The topic's overflow policy.
    pub fn overflow(&self) -> Overflow {
        self.end.geometry().overflow
    }

    /// Whether this handle attached as a monitor ([`SubscriberOptions::monitor`]).
    pub fn is_monitor(&self) -> bool {
        self.monitor
    }

    /// Sequence number of the next message this subscriber will receive.
    pub fn next_seq(&self) -> u64 {
        self.end.reader_ref().next_seq()
    }

    /// Sequence number of the next message this subscriber will receive from lane `lane`
    /// (`None` if the topic has no such lane).
    pub fn next_seq_in(&self, lane: u32) -> Option<u64> {
        let reader = self.end.reader_ref();
        ((lane as usize) < reader.lanes()).then(|| reader.next_seq_in(lane as usize))
    }

    /// Messages lost to lapping since attach (`Overwrite`), all publishers together.
    pub fn lost(&self) -> u64 {
        self.end.reader_ref().lost()
    }

    /// On a topic with several publishers: the lane (see [`PublisherId::lane`]) that the
    /// last `Lagged(n)` this subscriber reported came from; its `n` messages were that
    /// lane's. 0 on a topic with one publisher.
    pub fn lagged_lane(&self) -> u32 {
        self.lag_lane
    }

    /// Messages of lane `lane` lost to lapping since attach (`None` if the topic has no
    /// such lane).
    pub fn lost_in(&self, lane: u32) -> Option<u64> {
        let reader = self.end.reader_ref();
        ((lane as usize) < reader.lanes()).then(|| reader.lost_in(lane as usize))
    }

    /// The publisher that writes lane `lane` now, if a live one does (see
    /// [`PublisherId`]); `None` if the lane's publisher left or died, nobody has taken the
    /// lane yet, or the topic has no such lane. A system call (the lane's lock): not for
    /// the hot path. A publisher that takes the lane over has a new id, so comparing ids
    /// tells a takeover from the same publisher. Together with
    /// [`has_news_in`](Self::has_news_in) it tells when a lane's publisher is gone and
    /// all it published has been received (what a bridge needs to end the lane remotely).
    pub fn lane_publisher(&self, lane: u32) -> Option<PublisherId> {
        let reader = self.end.reader_ref();
        let l = lane as usize;
        if l >= reader.lanes() {
            return None;
        }
        // The id first, then the lock: an id read before a takeover that the lock then
        // sees as alive is the old publisher's; the caller compares it with the ids of
        // the messages it received, which always name their writer.
        let writer = reader.lane_writer(l);
        self.end
            .lane_alive(l)
            .then_some(PublisherId { lane, writer })
    }

    /// Whether a receive would find something in lane `lane`: a message (or a lag) not
    /// received yet, or the end of the topic. Consumes nothing; `false` for a lane the
    /// topic does not have.
    pub fn has_news_in(&self, lane: u32) -> bool {
        let reader = self.end.reader_ref();
        (lane as usize) < reader.lanes() && reader.has_news_in(lane as usize)
    }

    /// The topic's geometry, policy and message type.
    pub fn geometry(&self) -> &Geometry {
        self.end.geometry()
    }

    /// Where the topic is imported from, if a bridge re-publishes it here; `None` for a
    /// local topic.
    pub fn origin(&self) -> Option<String> {
        self.end.memory().origin()
    }

    /// Messages the source of an imported topic published that never reached it (0 for a
    /// local topic): the imported equivalent of [`RecvError::Lagged`](crate::RecvError::Lagged).
    /// It counts since the topic was created, not since attach; after a message has been
    /// received it includes every gap before that message. A load from shared memory,
    /// no system call.
    pub fn upstream_lost(&self) -> u64 {
        self.end.memory().upstream_lost()
    }

    /// Whether a receive would return at once (a message, a lag report, or the end),
    /// without consuming anything.
    pub fn has_news(&self) -> bool {
        self.end.reader_ref().has_news() || self.publisher_gone
    }

    /// Arms the reactor to wake `waker` when any lane has news for this subscriber.
    pub(crate) fn arm_reactor(&mut self, waker: &std::task::Waker) {
        let end = &self.end;
        let reg = self
            .reactor
            .get_or_insert_with(|| Registration::for_subscriber(end));
        let reader = end.reader_ref();
        reg.arm((0..reader.lanes()).map(|l| reader.next_seq_in(l)), waker);
    }

    /// Payload alignment of the topic's slots (and of this subscriber's copy buffer).
    pub(crate) fn payload_alignment(&self) -> usize {
        self.end.geometry().alignment as usize
    }

    /// Whether the publisher is still alive (a system call: not for the hot path).
    pub fn publisher_alive(&self) -> bool {
        self.end.publisher_alive() && !self.end.reader_ref().is_closed()
    }

    /// Whether the topic was closed by its publisher (on a shared topic, by the last one
    /// to leave) when it left. After [`RecvError::Disconnected`](crate::RecvError), `false`
    /// tells a publisher that died (killed, crashed) from one that ended the topic: what
    /// it published was received either way.
    pub fn closed_by_publisher(&self) -> bool {
        self.end.reader_ref().is_closed()
    }

    /// Whether publisher `id` (as [`Sample::publisher`] names it) is alive and still
    /// writes its lane: `false` once it died or left, even if another publisher has taken
    /// its lane since (a system call: not for the hot path).
    pub fn publisher_live(&self, id: PublisherId) -> bool {
        self.lane_publisher(id.lane) == Some(id)
    }

    /// Receives the next message if there is one, without waiting. A poller learns that
    /// the publisher crashed within one liveness slice (50 ms) plus its own polling period
    /// (the check is a system call, run at most once per slice of this handle's clock).
    #[inline]
    pub fn try_recv(&mut self) -> Result<Sample<'_>, TryRecvError> {
        let got = self.fetch()?;
        Ok(self.sample(got))
    }

    /// Receives the next message, waiting as long as it takes (spin, then futex sleep).
    /// Returns `Disconnected` once the publisher is gone and everything was received;
    /// a crashed publisher is noticed within two `wait::LIVENESS_SLICE`s (100 ms).
    pub fn recv(&mut self) -> Result<Sample<'_>, RecvError> {
        match self.recv_until(None) {
            Ok(got) => Ok(self.sample(got)),
            Err(RecvTimeoutError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(RecvTimeoutError::Evicted) => Err(RecvError::Evicted),
            Err(RecvTimeoutError::Corrupt { seq, len }) => Err(RecvError::Corrupt { seq, len }),
            // Without a deadline the wait cannot time out.
            Err(RecvTimeoutError::Disconnected | RecvTimeoutError::Timeout) => {
                Err(RecvError::Disconnected)
            }
        }
    }

    /// Receives the next message, waiting at most `timeout` (`Duration::MAX`: for ever).
    /// A loop of short timeouts learns of a crashed publisher as fast as one long `recv`:
    /// the liveness clock belongs to the handle, not to the call.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Sample<'_>, RecvTimeoutError> {
        let got = self.recv_until(deadline_after(timeout))?;
        Ok(self.sample(got))
    }

    pub(crate) fn recv_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Got, RecvTimeoutError> {
        loop {
            match self.fetch() {
                Ok(got) => return Ok(got),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Lagged(n)) => return Err(RecvTimeoutError::Lagged(n)),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Evicted) => return Err(RecvTimeoutError::Evicted),
                Err(TryRecvError::Corrupt { seq, len }) => {
                    return Err(RecvTimeoutError::Corrupt { seq, len })
                }
            }
            let mut news = NewsWait { end: &self.end };
            match wait::wait_until(self.wait, deadline, &mut self.liveness, &mut news) {
                Ok(()) => {}
                Err(Stop::TimedOut) => return Err(RecvTimeoutError::Timeout),
                // Drain: the next fetch returns what is left, then Disconnected.
                Err(Stop::Dead) => self.publisher_gone = true,
            }
        }
    }

    /// One non-blocking step: the next message, consumed (copied) or held (in place).
    #[inline]
    pub(crate) fn fetch(&mut self) -> Result<Got, TryRecvError> {
        if self.kept.is_some() {
            self.release_kept();
        }
        match self.end.reader().poll() {
            Poll::Ready { seq, len } => {
                let reader = self.end.reader_ref();
                let from = PublisherId {
                    lane: reader.lane() as u32,
                    writer: reader.writer_id(),
                };
                let got = |in_place, len| Got {
                    in_place,
                    seq,
                    len,
                    from,
                };
                match self.reads_by {
                    // `hold` is free unless the topic has a stall timeout; then it marks
                    // the in-place read so the publisher cannot evict us mid-read.
                    Overflow::Block if self.end.reader().hold(seq) => Ok(got(true, len)),
                    Overflow::Block => Err(self.evicted()),
                    Overflow::Overwrite => {
                        match self.end.reader().read_copy(seq, len, self.buf.words_mut()) {
                            Ok(len) => Ok(got(false, len)),
                            Err(Poll::Lagged(n)) => Err(self.lagged(n)),
                            Err(_) => Err(TryRecvError::Empty),
                        }
                    }
                }
            }
            Poll::Empty => self.empty(),
            Poll::Lagged(n) => Err(self.lagged(n)),
            Poll::Closed => Err(TryRecvError::Disconnected),
            Poll::Overrun => Err(self.evicted()),
            Poll::Corrupt { len } => {
                let (lane, seq) = (
                    self.end.reader_ref().lane(),
                    self.end.reader_ref().next_seq(),
                );
                self.end.reader().release_at(lane, seq);
                Err(TryRecvError::Corrupt { seq, len })
            }
        }
    }

    #[cold]
    fn evicted(&self) -> TryRecvError {
        tracing::debug!(
            topic = self.topic(),
            next = self.end.reader_ref().next_seq(),
            "evicted by the publisher's stall timeout"
        );
        TryRecvError::Evicted
    }

    #[cold]
    fn lagged(&mut self, n: u64) -> TryRecvError {
        self.lag_lane = self.end.reader_ref().lane() as u32;
        tracing::debug!(
            topic = self.topic(),
            lost = n,
            total_lost = self.end.reader_ref().lost(),
            "subscriber lagged"
        );
        TryRecvError::Lagged(n)
    }

    /// Whether a receive would complete at once (a message, a lag report, the end),
    /// without receiving; runs the handle's liveness check when its slice is due.
    pub(crate) fn ready_now(&mut self) -> bool {
        if self.has_news() || self.publisher_gone {
            return true;
        }
        if self.liveness.due() && !self.end.publisher_alive() {
            self.publisher_gone = true;
            return true;
        }
        false
    }

    #[cold]
    fn empty(&mut self) -> Result<Got, TryRecvError> {
        if self.publisher_gone {
            return Err(TryRecvError::Disconnected);
        }
        if self.liveness.due() && !self.end.publisher_alive() {
            // Everything the dead publisher committed is in the ring: one more look
            // decides between "drain" and "disconnected".
            self.publisher_gone = true;
            return self.fetch();
        }
        Err(TryRecvError::Empty)
    }

    pub(crate) fn sample(&mut self, got: Got) -> Sample<'_> {
        self.sample_with(got, false)
    }

    /// A sample whose release is part of a run (`Subscriber::drain`) when `in_run`.
    pub(crate) fn sample_with(&mut self, got: Got, in_run: bool) -> Sample<'_> {
        // SAFETY: `got` was just fetched: held in place (Block) until the sample drops, or
        // copied into `buf`, which the next fetch (needing `&mut self`, so not while the
        // sample lives) overwrites.
        let data: *const [u8] = unsafe { self.bytes_of(got) };
        Sample {
            // SAFETY: the bytes live in the mapping (owned through an `Arc` by the end) or
            // in `buf`; the sample borrows the subscriber mutably for its whole life.
            data: unsafe { &*data },
            seq: got.seq,
            from: got.from,
            hold: got.in_place.then(|| self.end.reader()),
            in_run,
        }
    }

    /// The bytes of message `got`.
    ///
    /// # Safety
    /// `got` is the message this subscriber holds now (fetched and neither released nor
    /// followed by another fetch), and the caller keeps it held while the bytes are used.
    pub(crate) unsafe fn bytes_of(&self, got: Got) -> &[u8] {
        if !got.in_place {
            return self.buf.bytes(got.len);
        }
        // SAFETY: the topic is `Block`, `len` was checked against the capacity by `poll`,
        // our cursor in the message's lane stays at `seq` (unreleased) while the caller
        // holds it, and `hold` succeeded (our entry says Holding, which a publisher's
        // eviction CAS cannot override), so no publisher writes this slot meanwhile.
        unsafe {
            self.end
                .memory()
                .payload(got.from.lane as usize, got.seq, got.len)
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        tracing::debug!(
            topic = self.topic(),
            entry = self.end.reader_ref().entry_index(),
            next = self.end.reader_ref().next_seq(),
            lost = self.end.reader_ref().lost(),
            "detached"
        );
    }
}

/// A subscriber waiting for news.
struct NewsWait<'a> {
    end: &'a SubscriberEnd,
}

impl Waitable for NewsWait<'_> {
    fn ready(&mut self) -> bool {
        self.end.reader_ref().has_news()
    }
    fn alive(&mut self) -> bool {
        self.end.publisher_alive()
    }
    fn sleep(&mut self, timeout: Duration) -> Wake {
        self.end.reader_ref().sleep(Some(timeout))
    }
}

/// A received message. Derefs to its payload bytes. Under `Block` the bytes are read in
/// place in shared memory and the slot is released when the sample is dropped; under
/// `Overwrite` they are the subscriber's own verified copy. A `Block` sample leaked with
/// `std::mem::forget` is never released: its slot stays held, and the next receive hands
/// out the same message again (memory-safe, but a redelivery).
pub struct Sample<'a> {
    data: &'a [u8],
    seq: u64,
    from: PublisherId,
    hold: Option<&'a mut Reader>,
    /// Released as part of a drained run (see `Subscriber::drain`).
    in_run: bool,
}

impl<'a> Sample<'a> {
    /// The message's sequence number in its publisher's lane (0 for the lane's first
    /// message; on a topic with one publisher, simply the topic's sequence).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Which publisher wrote it: its lane and its id there (always lane 0 on a topic with
    /// one publisher).
    pub fn publisher(&self) -> PublisherId {
        self.from
    }

    /// The payload.
    pub fn bytes(&self) -> &[u8] {
        self.data
    }

    /// The payload with the sample's own lifetime, for guards that wrap a sample (the
    /// typed one). Such a guard must hand out only borrows of itself, never `&'a`, because
    /// under `Block` the bytes stay immutable only until the sample drops.
    pub(crate) fn payload(&self) -> &'a [u8] {
        self.data
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("topic", &self.topic())
            .field("overflow", &self.overflow())
            .field("monitor", &self.is_monitor())
            .field("next_seq", &self.next_seq())
            .field("lost", &self.lost())
            .field("publisher_gone", &self.publisher_gone)
            .finish_non_exhaustive()
    }
}

impl Deref for Sample<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data
    }
}

impl std::fmt::Debug for Sample<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sample")
            .field("seq", &self.seq)
            .field("len", &self.data.len())
            .finish()
    }
}

impl Drop for Sample<'_> {
    fn drop(&mut self) {
        if let Some(reader) = self.hold.take() {
            let lane = self.from.lane as usize;
            if self.in_run {
                reader.release_in_run(lane, self.seq);
            } else {
                reader.release_at(lane, self.seq);
            }
        }
    }
}

// SAFETY: the target is this subscriber's own reader's (its table entry and mapping), and
// the reader lives as long as the subscriber.
unsafe impl MemberImpl for Subscriber {
    fn sleep_target(&self) -> SleepTarget {
        self.end.reader_ref().sleep_target()
    }
    #[inline]
    fn is_ready(&mut self) -> bool {
        let reader = self.end.reader_ref();
        reader.has_news() || self.publisher_gone
    }
    fn check_liveness(&mut self) {
        if !self.publisher_gone && !self.end.publisher_alive() {
            self.publisher_gone = true;
        }
    }
    fn refusal(&mut self) -> Option<Refusal> {
        let reader = self.end.reader_ref();
        (reader.is_closed() && !reader.has_message()).then_some(Refusal::Closed)
    }
}
