//! The [`Publisher`] handle and its [`Loan`].

use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use ringcast_core::clock::{deadline_after, LivenessClock};
use ringcast_core::endpoint::{PublisherEnd, Retained};
use ringcast_core::futex::Wake;
use ringcast_core::reactor::Registration;
use ringcast_core::ring::Writer;
use ringcast_core::stall::{StallWatch, Verdict};
use ringcast_core::wait::{self, Stop, Waitable};
use ringcast_core::waitset::sealed::MemberImpl;
use ringcast_core::waitset::{Refusal, SleepTarget};
use ringcast_core::{CreateError, Full, Geometry, Overflow, WaitStrategy};

use crate::PublisherConfig;

/// Why a message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The message is larger than a slot. Create the topic with a larger `slot_size`.
    #[error("message of {len} bytes does not fit a {capacity}-byte slot")]
    TooLarge {
        /// The message length.
        len: usize,
        /// The slot capacity.
        capacity: usize,
    },
    /// `Block` only: the ring is full relative to the slowest subscriber (try variants and
    /// timeouts only).
    #[error("the ring is full: the slowest subscriber has not released the oldest slot")]
    Full,
}

/// The one publisher of a topic. Creating it creates the topic; dropping it closes the
/// topic (subscribers drain what was published, then see `Disconnected`) and removes its
/// name. `Send`, not `Sync`: one thread publishes at a time.
pub struct Publisher {
    /// The async reactor's registration (after the first wait in `loan_async`), dropped
    /// with the publisher.
    pub(crate) reactor: Option<Registration>,
    end: PublisherEnd,
    wait: WaitStrategy,
    /// `Block` with a stall timeout: who keeps us waiting, and for how long.
    stall: Option<StallWatch>,
    /// Rate-limits the search for dead subscribers (a system call per entry in use), both
    /// on a full ring and after commits that had to wake someone: the handle's clock, so a
    /// `try_loan` loop or short `loan_timeout`s reap as a long wait does.
    liveness: LivenessClock,
    /// `Overwrite` only: one slot's worth of private memory a [`Loan`] is written in, copied
    /// into the slot with atomic word stores at commit (a lapped subscriber may be copying
    /// the slot meanwhile: plain stores racing its atomic loads would be a data race).
    /// `None` under `Block`, where a loan is the slot itself.
    staging: Option<Box<[u8]>>,
    _not_sync: PhantomData<Cell<()>>,
}

impl Publisher {
    /// Creates `topic`. Fails with `AlreadyPublished` if a live publisher has it; a topic
    /// whose publisher died is reclaimed.
    pub fn create(topic: &str, config: PublisherConfig) -> Result<Publisher, CreateError> {
        let end = PublisherEnd::create(topic, &config.options)?;
        let staging = match end.geometry().overflow {
            Overflow::Overwrite => {
                let bytes = end.geometry().slot_capacity as usize;
                let mut staging = Vec::new();
                staging
                    .try_reserve_exact(bytes)
                    .map_err(|_| CreateError::OutOfMemory {
                        topic: topic.to_owned(),
                        bytes: bytes as u64,
                    })?;
                staging.resize(bytes, 0);
                Some(staging.into_boxed_slice())
            }
            Overflow::Block => None,
        };
        Ok(Publisher {
            reactor: None,
            stall: StallWatch::new(end.geometry()),
            liveness: LivenessClock::default(),
            end,
            wait: config.wait,
            staging,
            _not_sync: PhantomData,
        })
    }

    /// The loan of a slot claimed by an earlier loan that was dropped without a commit
    /// (its bytes as that loan left them); `None` if no slot is claimed. For code that
    /// cannot keep a [`Loan`] borrow across calls (the Python and C bindings): take a loan,
    /// write through its pointer, drop it, and commit later through this.
    pub fn pending_loan(&mut self) -> Option<Loan<'_>> {
        self.end
            .writer_ref()
            .is_claimed()
            .then(|| self.loan_claimed())
    }

    /// Closes the topic now, as dropping the publisher does (subscribers drain it, then see
    /// the end; the name is removed), but keeps the mapping and the loan's staging memory
    /// allocated until the returned [`Retained`] is dropped: for a foreign pointer into a
    /// loan that may outlive the handle (a Python buffer view). Writes through such a
    /// pointer after the close reach no subscriber.
    pub fn close_retaining(mut self) -> Retained {
        let staging = self.staging.take();
        let memory = self.end.memory().clone();
        drop(self);
        Retained::new(memory, staging.map(|b| Box::new(b) as Box<dyn Send + Sync>))
    }

    /// Leaves as if this process had died, for a relay whose source died (a bridge's
    /// import): subscribers get what was published, then find the publisher dead, not
    /// the topic closed (`Subscriber::closed_by_publisher` is `false` after
    /// `Disconnected`), and the name stays until `gc` or a new publisher reclaims it. A
    /// loan not committed is dropped.
    pub fn abandon(mut self) {
        self.abandon_on_drop();
    }

    /// [`abandon`](Self::abandon) when this publisher is dropped (for one that still has
    /// messages to publish first).
    pub fn abandon_on_drop(&mut self) {
        self.end.abandon_on_drop();
    }

    /// The lane this publisher writes (0 on a topic with one publisher; see
    /// [`PublisherConfig::max_publishers`](crate::PublisherConfig::max_publishers)).
    pub fn lane(&self) -> usize {
        self.end.lane()
    }

    /// This publisher's id: its lane and its id there, as subscribers see it in
    /// `Sample::publisher`.
    pub fn id(&self) -> ringcast_core::PublisherId {
        ringcast_core::PublisherId {
            lane: self.end.lane() as u32,
            writer: self.end.writer_id(),
        }
    }

    /// Whether this publisher was made in the process this one was `fork()`ed from. Such a
    /// copy belongs to that process: dropping it here leaves the parent's topic untouched (so a child
    /// may drop what it inherited), but publishing through it from the child would make two writers of one lane; make a new one in
    /// the child instead. The Python and C bindings refuse every call on it.
    #[inline]
    pub fn is_inherited(&self) -> bool {
        self.end.inherited()
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        self.end.topic()
    }

    /// Most payload bytes one message may have.
    pub fn capacity(&self) -> usize {
        self.end.geometry().slot_capacity as usize
    }

    /// The topic's overflow policy.
    pub fn overflow(&self) -> Overflow {
        self.end.geometry().overflow
    }

    /// Sequence number the next committed message will get (= messages published).
    pub fn next_seq(&self) -> u64 {
        self.end.writer_ref().next_seq()
    }

    /// The topic's geometry, policy and message type.
    pub fn geometry(&self) -> &Geometry {
        self.end.geometry()
    }

    /// Where the topic is imported from (see [`PublisherConfig::imported_from`]); `None`
    /// for a local topic. A publisher that joined a shared topic gets the topic's
    /// origin, whatever its own configuration said: a bridge checks it to learn whether
    /// it joined its own import or a local topic.
    ///
    /// [`PublisherConfig::imported_from`]: crate::PublisherConfig::imported_from
    pub fn origin(&self) -> Option<String> {
        self.end.memory().origin()
    }

    /// For a topic that re-publishes another (see [`PublisherConfig::imported_from`]):
    /// adds `n` to the messages its source published that never arrived here. Call it
    /// *before* sending the first message after the gap: a subscriber that has received
    /// that message then sees the count in `Subscriber::upstream_lost`.
    pub fn count_upstream_loss(&self, n: u64) {
        self.end.count_upstream_loss(n);
    }

    /// Loans the next slot, waiting for room under `Block` (spin, then futex; a dead
    /// subscriber is evicted instead of waited for, and so is a live one that stalls us
    /// past the topic's stall timeout, if it has one). Never waits under `Overwrite`.
    pub fn loan(&mut self) -> Loan<'_> {
        match self.wait_room(None) {
            Ok(()) => self.loan_claimed(),
            // No deadline and `alive` never reports death: only readiness ends the wait.
            Err(_) => unreachable!("an unbounded loan wait only ends when there is room"),
        }
    }

    /// After a commit that made a wake system call: at most once per liveness slice, free
    /// the entries of dead subscribers, taking back the sleeper count of any that died
    /// asleep (a killed sleeper costs one wake call, its unanswered announcement, and its
    /// count stays in `inspect` until some reap frees its entry). Runs only after a wake
    /// call (we are making system calls anyway then).
    #[cold]
    fn after_waking_commit(&mut self) {
        if self.liveness.due() {
            self.reap_dead_subscribers();
        }
    }

    /// Loans the next slot if there is room now. On a full ring it also frees the entries
    /// of dead subscribers (at most once per liveness slice of this handle, so a `try_loan`
    /// loop gets past a subscriber that died within the slice plus its own period), and,
    /// with a stall timeout, runs the stall watch and may evict a stalled subscriber.
    pub fn try_loan(&mut self) -> Result<Loan<'_>, Full> {
        if self.end.writer().take_woke() {
            self.after_waking_commit();
        }
        if self.end.writer().try_claim().is_err() && !self.make_room() {
            return Err(Full);
        }
        Ok(self.loan_claimed())
    }

    /// The ring is full: reap dead subscribers if this handle's liveness clock is due, run
    /// the stall watch, and try the claim again if either freed an entry.
    #[cold]
    fn make_room(&mut self) -> bool {
        let mut freed = self.liveness.due() && self.reap_dead_subscribers() > 0;
        freed |= self.check_stalls();
        freed && self.end.writer().try_claim().is_ok()
    }

    /// Runs the stall watch (if the topic has one) on a full ring; returns whether a
    /// subscriber was evicted.
    #[cold]
    fn check_stalls(&mut self) -> bool {
        let Some(watch) = self.stall.as_mut() else {
            return false;
        };
        let topic = self.end.topic().to_owned();
        let topic = topic.as_str();
        let timeout = watch.timeout();
        watch.on_full(self.end.writer(), Instant::now(), |v| match v {
            Verdict::Evicted { entry, cursor } => {
                tracing::warn!(
                    topic,
                    entry,
                    cursor,
                    ?timeout,
                    "evicted a stalled subscriber"
                )
            }
            Verdict::PinnedInPlace { entry, cursor } => tracing::warn!(
                topic,
                entry,
                cursor,
                ?timeout,
                "a subscriber holds a sample in place past the stall timeout; its slot stays pinned"
            ),
        })
    }

    /// Loans the next slot, waiting at most `timeout` for room (`Duration::MAX`: for ever).
    /// Dead subscribers are reaped on this handle's clock, so a loop of timeouts shorter
    /// than the liveness slice gets past them as a long wait does.
    pub fn loan_timeout(&mut self, timeout: Duration) -> Result<Loan<'_>, Full> {
        self.wait_room(deadline_after(timeout)).map_err(|_| Full)?;
        Ok(self.loan_claimed())
    }

    /// Claims the next slot if there is room now (reaping and stall checks as for
    /// `try_loan`); the next loan takes it.
    pub(crate) fn claim_now(&mut self) -> bool {
        if self.end.writer().take_woke() {
            self.after_waking_commit();
        }
        self.end.writer().try_claim().is_ok() || self.make_room()
    }

    /// Pays a wake that commits inside [`coalesce_wakes`](Self::coalesce_wakes) owe, before
    /// a wait for room: a subscriber may sleep on those messages, and only its reads make
    /// room.
    pub(crate) fn pay_owed_wakes(&mut self) {
        self.end.writer().pay_owed();
    }

    /// The reactor registration of this publisher, made on first use.
    pub(crate) fn registration(&mut self) -> &Registration {
        let end = &self.end;
        self.reactor
            .get_or_insert_with(|| Registration::for_writer(end.writer_ref()))
    }

    #[inline]
    pub(crate) fn loan_claimed(&mut self) -> Loan<'_> {
        let writer = self.end.writer();
        let (data, staged) = match self.staging.as_deref_mut() {
            Some(staging) => (staging as *mut [u8], true),
            None => (writer.claimed_payload_ptr(), false),
        };
        Loan {
            seq: writer.next_seq(),
            data,
            staged,
            writer,
        }
    }

    fn wait_room(&mut self, deadline: Option<Instant>) -> Result<(), Stop> {
        if self.end.writer().take_woke() {
            self.after_waking_commit();
        }
        // `make_room` starts (or continues) the stall watch's clock now, not a slice into
        // the wait.
        if self.end.writer().try_claim().is_ok() || self.make_room() {
            return Ok(());
        }
        self.pay_owed_wakes();
        let strategy = self.wait;
        let mut liveness = self.liveness.clone();
        let r = wait::wait_until(
            strategy,
            deadline,
            &mut liveness,
            &mut RoomWait { publisher: self },
        );
        self.liveness = liveness;
        r
    }

    /// Runs `f`, whose commits (through `send`, `loan`, `try_loan`, ...) wake sleeping
    /// subscribers once, when `f` returns (or unwinds), instead of at each commit. For a
    /// run of messages published back to back (a batch that arrived together, a backlog):
    /// a subscriber that sleeps when the run starts is woken once for all of it, and while
    /// it has not run yet the commits make no wake system call each. The first message of
    /// the run may reach a sleeping subscriber later than it would alone (at the run's
    /// end), so keep `f` to the run: it must not wait for anything but room in this topic
    /// (a wait for room pays the owed wake first, so that is safe). A call inside another
    /// ends the outer one's coalescing at its own end.
    ///
    /// ```
    /// use ringcast_publisher::{Publisher, PublisherConfig};
    /// # let config = PublisherConfig::default().prefix(format!("rcdoc{}coalesce", std::process::id()));
    /// let mut p = Publisher::create("quotes", config)?;
    /// let quotes: [&[u8]; 3] = [b"bid 101", b"ask 102", b"bid 100"];
    /// let last = p.coalesce_wakes(|p| {
    ///     let mut last = 0;
    ///     for q in quotes {
    ///         last = p.send(q)?;
    ///     }
    ///     Ok::<u64, ringcast_publisher::SendError>(last)
    /// })?;
    /// assert_eq!(last, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn coalesce_wakes<R>(&mut self, f: impl FnOnce(&mut Publisher) -> R) -> R {
        /// Pays the owed wake when the run ends, by return or by unwinding.
        struct Pay<'a>(&'a mut Publisher);
        impl Drop for Pay<'_> {
            fn drop(&mut self) {
                self.0.end.writer().pay_wakes();
            }
        }
        self.end.writer().hold_wakes();
        let run = Pay(self);
        f(&mut *run.0)
    }

    /// Copies `bytes` into the next slot and commits it; waits for room under `Block`.
    /// Returns the message's sequence number.
    pub fn send(&mut self, bytes: &[u8]) -> Result<u64, SendError> {
        self.check_len(bytes.len())?;
        Ok(self.loan().commit_bytes(bytes))
    }

    /// Like [`send`](Self::send) but fails with `Full` instead of waiting.
    pub fn try_send(&mut self, bytes: &[u8]) -> Result<u64, SendError> {
        self.check_len(bytes.len())?;
        let loan = self.try_loan().map_err(|Full| SendError::Full)?;
        Ok(loan.commit_bytes(bytes))
    }

    pub(crate) fn check_len(&self, len: usize) -> Result<(), SendError> {
        let capacity = self.capacity();
        if len > capacity {
            return Err(SendError::TooLarge { len, capacity });
        }
        Ok(())
    }

    /// Subscribers attached and alive now. Entries of dead subscribers are reclaimed on
    /// the way (a syscall per entry in use: not for the hot path).
    pub fn subscriber_count(&mut self) -> usize {
        self.end.subscriber_count()
    }

    /// Waits until at least `n` subscribers are attached, or `timeout` passes (then
    /// returns the count reached as the error). `Duration::MAX` waits for ever.
    pub fn wait_for_subscribers(&mut self, n: usize, timeout: Duration) -> Result<(), usize> {
        let deadline = deadline_after(timeout);
        loop {
            let have = self.subscriber_count();
            if have >= n {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(have);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Frees the table entries of subscribers that died without detaching, so a `Block`
    /// ring never stalls on the dead (liveness by the kernel's OFD locks, see
    /// `ringcast_core::lock`).
    /// Returns how many entries were freed.
    fn reap_dead_subscribers(&mut self) -> usize {
        let reaped = self.end.reap_dead_subscribers();
        if reaped.freed > 0 {
            tracing::info!(
                topic = self.end.topic(),
                freed = reaped.freed,
                died_asleep = reaped.asleep,
                "freed the entries of dead subscribers"
            );
        }
        reaped.freed
    }
}

/// The publisher waiting for room in a full `Block` ring.
struct RoomWait<'a> {
    publisher: &'a mut Publisher,
}

impl Waitable for RoomWait<'_> {
    fn ready(&mut self) -> bool {
        let p = &mut *self.publisher;
        // The stall watch rate-limits itself (once per watch period).
        p.end.writer().try_claim().is_ok()
            || (p.stall.is_some() && p.check_stalls() && p.end.writer().try_claim().is_ok())
    }
    fn alive(&mut self) -> bool {
        // Whom we wait for is a set of subscribers; dead ones are reclaimed (and stalled
        // ones evicted, with a stall timeout), so from our side the wait never "dies".
        // `wait_until` calls this once per slice of the handle's liveness clock.
        self.publisher.reap_dead_subscribers();
        true
    }
    fn nap(&self) -> Duration {
        match &self.publisher.stall {
            Some(watch) => watch.period(),
            None => wait::LIVENESS_SLICE,
        }
    }
    fn sleep(&mut self, timeout: Duration) -> Wake {
        self.publisher.end.writer().sleep_for_room(Some(timeout))
    }
}

// SAFETY: the target is this publisher's own writer's (its mapping), which lives as long
// as the publisher.
unsafe impl MemberImpl for Publisher {
    fn sleep_target(&self) -> SleepTarget {
        self.end.writer_ref().sleep_target()
    }
    /// Whether a loan would get a slot now. (It claims the slot: the next loan takes it.)
    #[inline]
    fn is_ready(&mut self) -> bool {
        RoomWait { publisher: self }.ready()
    }
    fn check_liveness(&mut self) {
        self.reap_dead_subscribers();
    }
    fn refusal(&mut self) -> Option<Refusal> {
        (self.overflow() == Overflow::Overwrite).then_some(Refusal::NeverWaits)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // Dropping the end closes the topic and removes its name.
        tracing::info!(
            topic = self.end.topic(),
            published = self.end.writer_ref().next_seq(),
            "closed topic"
        );
    }
}

/// A slot loaned for writing in place. Write the payload through `DerefMut<Target =
/// [u8]>` (the whole slot capacity is writable) or [`write_at`](Loan::write_at), then
/// [`commit`](Loan::commit) the length. Dropping a loan without committing publishes
/// nothing; the next loan gets the same slot (with the bytes as this one left them).
///
/// Under `Overflow::Block` the loan *is* the slot in shared memory (zero copy: nobody
/// else may look at a claimed slot). Under `Overflow::Overwrite` a lapped subscriber may
/// be copying the very slot while it is written, so the loan is the publisher's private
/// staging buffer and `commit` copies the committed bytes into the slot with atomic word
/// stores: no write made through a loan can race a reader, in this process or another.
/// (`Overwrite` subscribers copy every message out anyway; `send` copies once, straight
/// into the slot.)
pub struct Loan<'a> {
    /// The claimed slot's payload (`Block`: a raw pointer derived from the mapping with no
    /// `&mut` in between) or the staging buffer (`Overwrite`).
    data: *mut [u8],
    /// `data` is the staging buffer, to be copied into the slot at commit.
    staged: bool,
    pub(crate) writer: &'a mut Writer,
    seq: u64,
}

impl Loan<'_> {
    /// The sequence number this message will have.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The loan's bytes as a raw pointer, valid for writes of `len()` bytes until the
    /// loan is committed or its publisher dropped, made without forming a reference (for a
    /// foreign language that writes them itself, such as the C ABI). The slot itself under
    /// `Block`, the staging buffer under `Overwrite` (see the type's docs).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.data.cast()
    }

    /// Copies `bytes` into the loan at byte `offset`.
    ///
    /// # Panics
    /// If the range passes the end of the slot.
    #[inline]
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        self[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    /// Publishes the first `len` bytes of the loan and returns the sequence number.
    ///
    /// # Panics
    /// If `len` is larger than the slot (`len > self.len()`), like an out-of-range index.
    pub fn commit(self, len: usize) -> u64 {
        assert!(
            len <= self.data.len(),
            "commit of {len} bytes into a {}-byte slot",
            self.data.len()
        );
        if self.staged {
            // SAFETY: `data` is the staging buffer the loan borrows exclusively (through
            // `&mut Publisher`); nothing else refers to it.
            let staged = unsafe { &(&*self.data)[..len] };
            self.writer.store_claimed(0, staged);
        }
        self.writer.commit(len)
    }

    /// Copies `bytes` (checked to fit) straight into the slot and commits them: the one
    /// copy of `send`, atomic words under `Overwrite`.
    #[inline]
    pub(crate) fn commit_bytes(mut self, bytes: &[u8]) -> u64 {
        if self.staged {
            self.writer.store_claimed(0, bytes);
            self.writer.commit(bytes.len())
        } else {
            self.write_at(0, bytes);
            self.commit(bytes.len())
        }
    }
}

impl Deref for Loan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `data` is the claimed slot's payload, inside a mapping the writer keeps
        // alive (through an `Arc`) for the loan's whole life and valid for reads and
        // writes (`claimed_payload_ptr`), or the staging buffer; the loan borrows the
        // publisher mutably, so no other `Loan` or reference to these bytes exists, and no
        // subscriber looks at a claimed `Block` slot.
        unsafe { &*self.data }
    }
}

impl DerefMut for Loan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference. Under
        // `Overwrite` these are private staging bytes that no reader ever sees.
        unsafe { &mut *self.data }
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.topic())
            .field("overflow", &self.overflow())
            .field("next_seq", &self.next_seq())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loan")
            .field("seq", &self.seq)
            .field("capacity", &self.data.len())
            .field("staged", &self.staged)
            .finish()
    }
}
