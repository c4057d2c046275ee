//! Waiting on many topics at once: the [`WaitSet`].
//!
//! A wait set owns its members (subscribers of any topics, raw or typed, and `Block`
//! publishers waiting for room) and hands out a typed [`Key`] for each; [`WaitSet::wait`]
//! sleeps until at least one member is ready (a receive would return at once, or a loan
//! would get a slot), the deadline passes, or a [`Notifier`] rings. Members are then used
//! through [`WaitSet::ready_mut`] / [`WaitSet::get_mut`] without a wait. Owning the
//! members is what keeps it simple and sound: nothing borrows across the loop, and no
//! member can be dropped (freeing its table entry) while the set sleeps on it.
//!
//! The sleep is the single-topic handshake run on every member at once (`sleep`), then one
//! `futex_waitv` (Linux 5.16+) over every distinct futex word; more than 128 words are
//! split over helper threads (`shard`). Where `futex_waitv` is missing (ENOSYS, a seccomp
//! filter) or the environment sets `RINGCAST_NO_FUTEX_WAITV=1`, the set polls its
//! members every [`POLL_NAP`] instead: still correct, with that much added latency.

mod notifier;
#[cfg(not(loom))]
mod shard;
mod sleep;

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::{deadline_after, LivenessClock};
use crate::futex::WakeAny;
use crate::sync::spin_hint;
use crate::wait::WaitStrategy;

pub use notifier::Notifier;
pub use sleep::{Bell, SleepList, SleepTarget};

/// How often a wait set polls its members where `futex_waitv` is unavailable.
pub const POLL_NAP: Duration = Duration::from_micros(500);

/// Most members one wait set takes (a sanity bound; [`WaitSet::with_capacity`] sets a
/// lower one).
pub const MAX_MEMBERS: usize = 1 << 16;

/// Something a [`WaitSet`] can wait for: a subscriber (raw or typed) or a `Block`
/// publisher (raw or typed). Sealed: only ringcast's own handles are members (each
/// implements the hidden [`sealed::MemberImpl`], whose contract is about shared memory it
/// owns), so no user type can hand a wait set a sleep target it does not own.
///
/// ```compile_fail
/// struct Mine;
/// impl ringcast_core::waitset::Member for Mine {}
/// ```
pub trait Member: sealed::MemberImpl {}

impl<T: sealed::MemberImpl> Member for T {}

/// The wait set's view of a member, implemented by ringcast's handles only.
#[doc(hidden)]
pub mod sealed {
    use super::{Refusal, SleepTarget};

    /// What a [`WaitSet`](super::WaitSet) asks of a member.
    ///
    /// # Safety
    /// [`sleep_target`](MemberImpl::sleep_target) names memory and (for a subscriber) a
    /// table entry that this member owns and keeps for as long as it lives: the wait set
    /// announces sleeps in that entry while it owns the member. Implemented by ringcast's
    /// handles only; not for implementing outside ringcast.
    pub unsafe trait MemberImpl: Send + 'static {
        /// What the member sleeps on. Called once, when it joins a set.
        fn sleep_target(&self) -> SleepTarget;
        /// Whether the member's operation would complete at once: a receive returns a
        /// message, a lag report or the end; a loan gets a slot. Cheap: no system call.
        fn is_ready(&mut self) -> bool;
        /// The member's liveness check (a system call): a subscriber learns that its
        /// publisher died (and becomes ready, to report the end), a publisher frees the
        /// entries of dead subscribers. The set runs it once per
        /// [`LIVENESS_SLICE`](crate::clock::LIVENESS_SLICE) while it waits.
        fn check_liveness(&mut self);
        /// Why the member can never become ready, if that is so (asked when it is added).
        fn refusal(&mut self) -> Option<Refusal>;
    }
}

/// Why a member was refused; see [`AddError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The member's topic is closed and everything on it was received: it would only ever
    /// report the end.
    Closed,
    /// An `Overwrite` publisher: it never waits, so there is nothing to wait for.
    NeverWaits,
    /// The set already has its capacity of members.
    Full {
        /// The capacity.
        capacity: usize,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Closed => write!(
                f,
                "its topic is closed and everything on it was received; drop it instead"
            ),
            Refusal::NeverWaits => write!(
                f,
                "an Overwrite publisher never waits for room; publish without waiting"
            ),
            Refusal::Full { capacity } => write!(
                f,
                "the wait set is full ({capacity} members); remove one or make a larger set"
            ),
        }
    }
}

/// A member the set did not take, and why; [`into_member`](AddError::into_member) gives
/// it back.
pub struct AddError<M> {
    /// Why.
    pub refusal: Refusal,
    member: M,
}

impl<M> AddError<M> {
    /// The member that was not added.
    pub fn into_member(self) -> M {
        self.member
    }
}

impl<M> std::fmt::Debug for AddError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddError")
            .field("refusal", &self.refusal)
            .finish_non_exhaustive()
    }
}

impl<M> std::fmt::Display for AddError<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not added to the wait set: {}", self.refusal)
    }
}

impl<M> std::error::Error for AddError<M> {}

/// Why a wait could not even begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The set has no members and no notifier, and the wait has no deadline: it would
    /// never end.
    #[error("the wait set has no members and no notifier: the wait would never end")]
    NothingToWaitFor,
}

/// What ended a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wakeup {
    ready: usize,
    notified: bool,
}

impl Wakeup {
    /// How many members are ready.
    pub fn ready(&self) -> usize {
        self.ready
    }
    /// Whether a [`Notifier`] rang (since the previous wait).
    pub fn notified(&self) -> bool {
        self.notified
    }
    /// Whether the deadline passed with nothing ready and no ring.
    pub fn timed_out(&self) -> bool {
        self.ready == 0 && !self.notified
    }
}

/// A member's handle in its set: typed, so [`WaitSet::get_mut`] gives back the member's
/// own type. A key of a removed member, or of another set, finds nothing.
pub struct Key<M> {
    set: u32,
    slot: u32,
    generation: u32,
    _member: PhantomData<fn() -> M>,
}

impl<M> Clone for Key<M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Key<M> {}
impl<M> PartialEq for Key<M> {
    fn eq(&self, o: &Self) -> bool {
        (self.set, self.slot, self.generation) == (o.set, o.slot, o.generation)
    }
}
impl<M> Eq for Key<M> {}
impl<M> std::fmt::Debug for Key<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({}.{}.{})", self.set, self.slot, self.generation)
    }
}

/// A member behind a trait object, still downcastable to its own type.
trait AnyMember: Member {
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<M: Member> AnyMember for M {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

struct Slot {
    generation: u32,
    /// The member and its position in `order` (and in the sleep list).
    member: Option<(Box<dyn AnyMember>, usize)>,
    ready: bool,
}

/// Sleeps until any of many topics has news. See the [module docs](self).
///
/// ```
/// # // The facade re-exports this type with working members; see `ringcast::WaitSet`.
/// use ringcast_core::waitset::WaitSet;
/// let mut set = WaitSet::new();
/// let stop = set.notifier();
/// let ringer = std::thread::spawn(move || stop.notify());
/// assert!(set.wait()?.notified());
/// # ringer.join().unwrap();
/// # Ok::<(), ringcast_core::waitset::WaitError>(())
/// ```
pub struct WaitSet {
    id: u32,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Slot index of each sleep-list target (same positions).
    order: Vec<u32>,
    list: SleepList,
    bell: Option<Arc<Bell>>,
    /// The bell count the last wait reported.
    bell_handled: u32,
    capacity: usize,
    strategy: WaitStrategy,
    liveness: LivenessClock,
    polling: bool,
}

impl Default for WaitSet {
    fn default() -> Self {
        WaitSet::new()
    }
}

impl std::fmt::Debug for WaitSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitSet")
            .field("members", &self.len())
            .field("distinct_words", &self.list.distinct_words())
            .field("polling", &self.polling)
            .finish()
    }
}

fn next_set_id() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    // Relaxed: a unique number, nothing is published through it.
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Whether the environment forces polling (`RINGCAST_NO_FUTEX_WAITV=1`).
pub(crate) fn polling_forced() -> bool {
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| std::env::var_os("RINGCAST_NO_FUTEX_WAITV").is_some_and(|v| v == "1"))
}

impl WaitSet {
    /// An empty set that takes up to [`MAX_MEMBERS`] members and waits with the default
    /// strategy (spin briefly, then sleep).
    pub fn new() -> WaitSet {
        WaitSet::with_capacity(MAX_MEMBERS)
    }

    /// An empty set that takes at most `capacity` members (at most [`MAX_MEMBERS`]).
    pub fn with_capacity(capacity: usize) -> WaitSet {
        WaitSet {
            id: next_set_id(),
            slots: Vec::new(),
            free: Vec::new(),
            order: Vec::new(),
            list: SleepList::new(),
            bell: None,
            bell_handled: 0,
            capacity: capacity.min(MAX_MEMBERS),
            strategy: WaitStrategy::default(),
            liveness: LivenessClock::default(),
            polling: polling_forced(),
        }
    }

    /// How the set passes the time before it sleeps (as a subscriber's
    /// [`WaitStrategy`]; `BusySpin` never sleeps).
    pub fn strategy(mut self, strategy: WaitStrategy) -> WaitSet {
        self.strategy = strategy;
        self
    }

    /// How often a waiting set asks its members whether their peers died (default
    /// [`LIVENESS_SLICE`](crate::clock::LIVENESS_SLICE), 50 ms; at least 1 ms). Each
    /// check is a system call per member, and a sleeping set wakes for it: a set of
    /// thousands of members that can learn of a dead peer later spends less by checking
    /// less often. A dead peer is then noticed within two periods.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringcast_core::waitset::WaitSet;
    /// let set = WaitSet::new().liveness_period(Duration::from_millis(250));
    /// # drop(set);
    /// ```
    pub fn liveness_period(mut self, period: Duration) -> WaitSet {
        self.liveness = LivenessClock::new(period);
        self
    }

    /// Members in the set.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether this set polls (no `futex_waitv` here) instead of sleeping on futexes.
    pub fn is_polling(&self) -> bool {
        self.polling
    }

    /// Adds `member`; its key gives it back. Refused (and returned in the error) if the
    /// set is full, if it is a subscriber whose topic is closed and drained, or an
    /// `Overwrite` publisher. (The set owns its members, so the same handle cannot be
    /// added twice; two subscribers of one topic are two members.)
    pub fn add<M: Member>(&mut self, mut member: M) -> Result<Key<M>, AddError<M>> {
        let refusal = if self.len() >= self.capacity {
            Some(Refusal::Full {
                capacity: self.capacity,
            })
        } else {
            member.refusal()
        };
        if let Some(refusal) = refusal {
            return Err(AddError { refusal, member });
        }
        let target = member.sleep_target();
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    member: None,
                    ready: false,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let pos = self.order.len();
        self.order.push(slot);
        self.list.push(target);
        let s = &mut self.slots[slot as usize];
        s.member = Some((Box::new(member), pos));
        s.ready = false;
        Ok(Key {
            set: self.id,
            slot,
            generation: s.generation,
            _member: PhantomData,
        })
    }

    /// Takes member `key` out of the set and gives it back (`None` if it is not here).
    pub fn remove<M: Member>(&mut self, key: Key<M>) -> Option<M> {
        self.slot_of(key)?;
        let s = &mut self.slots[key.slot as usize];
        let (member, pos) = s.member.take()?;
        s.generation = s.generation.wrapping_add(1);
        s.ready = false;
        self.free.push(key.slot);
        self.order.swap_remove(pos);
        self.list.swap_remove(pos);
        if let Some(&moved) = self.order.get(pos) {
            if let Some((_, p)) = &mut self.slots[moved as usize].member {
                *p = pos;
            }
        }
        let member = member.into_any().downcast::<M>().ok()?;
        Some(*member)
    }

    /// Member `key`, ready or not (`None` if it is not in this set).
    pub fn get_mut<M: Member>(&mut self, key: Key<M>) -> Option<&mut M> {
        let slot = self.slot_of(key)?;
        let (member, _) = self.slots[slot].member.as_mut()?;
        member.as_any_mut().downcast_mut::<M>()
    }

    /// Member `key` if the last wait found it ready.
    pub fn ready_mut<M: Member>(&mut self, key: Key<M>) -> Option<&mut M> {
        let slot = self.slot_of(key)?;
        if !self.slots[slot].ready {
            return None;
        }
        self.get_mut(key)
    }

    /// Whether the last wait found member `key` ready.
    pub fn is_ready<M: Member>(&self, key: Key<M>) -> bool {
        self.slot_of(key).is_some_and(|s| self.slots[s].ready)
    }

    fn slot_of<M>(&self, key: Key<M>) -> Option<usize> {
        let s = self.slots.get(key.slot as usize)?;
        (key.set == self.id && s.generation == key.generation && s.member.is_some())
            .then_some(key.slot as usize)
    }

    /// A handle any thread can use to wake this set's waiter ([`Wakeup::notified`]).
    pub fn notifier(&mut self) -> Notifier {
        let bell = match &self.bell {
            Some(b) => b.clone(),
            None => {
                let b = Arc::new(Bell::new());
                self.bell_handled = b.count();
                self.list.set_bell(b.target());
                self.bell = Some(b.clone());
                b
            }
        };
        Notifier::new(bell)
    }

    /// Waits until a member is ready or a notifier rings.
    pub fn wait(&mut self) -> Result<Wakeup, WaitError> {
        self.wait_deadline(None)
    }

    /// Waits at most `timeout` (`Duration::MAX`: for ever); [`Wakeup::timed_out`] says
    /// whether it passed.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Wakeup, WaitError> {
        self.wait_deadline(deadline_after(timeout))
    }

    /// Waits until `deadline` at most (`None`: no deadline).
    pub fn wait_deadline(&mut self, deadline: Option<Instant>) -> Result<Wakeup, WaitError> {
        if deadline.is_none() && self.is_empty() && self.bell.is_none() {
            return Err(WaitError::NothingToWaitFor);
        }
        // Deferred releases this thread holds may be what a member waits for.
        crate::handback::hand_back();
        let mut spun: u32 = 0;
        let spins = match self.strategy {
            WaitStrategy::BusySpin => u32::MAX,
            WaitStrategy::SpinThenPark { spins } => spins,
            WaitStrategy::Park => 0,
        };
        loop {
            let woke = self.scan();
            if woke.ready > 0 || woke.notified {
                return Ok(woke);
            }
            let spinning = spun < spins;
            if !spinning || spun.is_multiple_of(4096) {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(woke);
                }
                if self.liveness.due() {
                    self.check_liveness();
                    continue;
                }
            }
            if spinning {
                spun += 1;
                spin_hint();
                continue;
            }
            let nap = match deadline {
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(self.liveness.period()),
                None => self.liveness.period(),
            };
            self.sleep(nap);
        }
    }

    /// One sleep of at most `nap` on every member (or one poll nap).
    fn sleep(&mut self, nap: Duration) {
        if self.list.is_empty() && self.bell.is_none() {
            // Nothing to sleep on (an empty set waiting out its deadline); futex_waitv
            // refuses an empty list, which must not read as "futex_waitv is missing".
            std::thread::sleep(nap);
            return;
        }
        if self.polling {
            std::thread::sleep(nap.min(POLL_NAP));
            return;
        }
        let WaitSet {
            slots,
            order,
            list,
            bell,
            bell_handled,
            ..
        } = self;
        let recheck = || {
            scan_members(slots, order) > 0
                || bell.as_ref().is_some_and(|b| b.count() != *bell_handled)
        };
        // SAFETY: the set owns every member whose target is in the list (and the bell), and
        // none can leave the set during this call (`&mut self`).
        let r = unsafe { list.sleep(Some(nap), recheck) };
        if let WakeAny::Unsupported | WakeAny::Failed(_) = r {
            tracing::warn!(
                result = ?r,
                "futex_waitv is not available: this wait set polls its members every {POLL_NAP:?}"
            );
            self.polling = true;
        }
    }

    /// Re-checks every member (and the bell); records who is ready.
    fn scan(&mut self) -> Wakeup {
        let ready = scan_members(&mut self.slots, &self.order);
        let mut notified = false;
        if let Some(bell) = &self.bell {
            let count = bell.count();
            if count != self.bell_handled {
                self.bell_handled = count;
                notified = true;
            }
        }
        Wakeup { ready, notified }
    }

    fn check_liveness(&mut self) {
        for &slot in &self.order {
            if let Some((m, _)) = &mut self.slots[slot as usize].member {
                m.check_liveness();
            }
        }
    }
}

/// Asks every member whether it is ready; returns how many are.
fn scan_members(slots: &mut [Slot], order: &[u32]) -> usize {
    let mut n = 0;
    for &slot in order {
        let s = &mut slots[slot as usize];
        if let Some((m, _)) = &mut s.member {
            s.ready = m.is_ready();
            n += usize::from(s.ready);
        }
    }
    n
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A member that sleeps on its own bell (a distinct futex word each) and is ready once
    /// the bell has rung.
    struct Rung {
        bell: Arc<Bell>,
        seen: u32,
    }

    impl Rung {
        fn new() -> Rung {
            let bell = Arc::new(Bell::new());
            Rung {
                seen: bell.count(),
                bell,
            }
        }
    }

    // SAFETY: the target names only the member's own bell, which it keeps alive.
    unsafe impl super::sealed::MemberImpl for Rung {
        fn sleep_target(&self) -> SleepTarget {
            self.bell.target()
        }
        fn is_ready(&mut self) -> bool {
            self.bell.count() != self.seen
        }
        fn check_liveness(&mut self) {}
        fn refusal(&mut self) -> Option<Refusal> {
            None
        }
    }

    /// Fails as soon as `bound` has passed since `start` (so a quadratic build fails in
    /// bounded time instead of running for hours).
    fn within(start: Instant, bound: Duration, what: &str) {
        assert!(
            start.elapsed() < bound,
            "{what}: still not done after {bound:?}: not linear"
        );
    }

    /// Adds `n` members (each its own futex word), removes every other one (from the
    /// middle of the list), adds those back, waits once, and drops the set; checks the
    /// set's bookkeeping along the way. Returns how long it took.
    fn churn(n: usize, bound: Duration) -> Duration {
        let start = Instant::now();
        let mut set = WaitSet::new();
        let mut keys: Vec<Key<Rung>> = Vec::with_capacity(n);
        for i in 0..n {
            keys.push(set.add(Rung::new()).expect("room"));
            if i % 256 == 0 {
                within(start, bound, "adding");
            }
        }
        assert_eq!((set.len(), set.list.distinct_words()), (n, n));
        let mut removed = Vec::with_capacity(n / 2);
        for (i, key) in keys.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            removed.push(set.remove(*key).expect("a member"));
            if i % 256 == 0 {
                within(start, bound, "removing");
            }
        }
        assert_eq!(set.len(), n - removed.len());
        assert_eq!(set.list.distinct_words(), set.len());
        assert!(set.remove(keys[0]).is_none(), "removed twice");
        for (i, m) in removed.into_iter().enumerate() {
            keys[2 * i] = set.add(m).expect("room");
            if i % 256 == 0 {
                within(start, bound, "adding back");
            }
        }
        assert_eq!((set.len(), set.list.distinct_words()), (n, n));
        // One ring, deep in the list: exactly that member is ready.
        let key = keys[n / 2 + 1];
        set.get_mut(key).expect("a member").bell.ring();
        let woke = set.wait_timeout(Duration::ZERO).expect("members");
        assert_eq!(woke.ready(), 1);
        assert!(set.is_ready(key));
        drop(set);
        within(start, bound, "dropping");
        start.elapsed()
    }

    #[test]
    fn ten_thousand_members_add_remove_and_drop_within_a_generous_bound() {
        // Linear work is a few milliseconds; the quadratic lists took hours here.
        churn(10_000, Duration::from_secs(60));
    }

    #[test]
    fn members_sharing_a_word_wait_on_it_once_until_the_last_leaves() {
        let bell = Arc::new(Bell::new());
        let mut list = SleepList::new();
        list.push(bell.target());
        list.push(Arc::new(Bell::new()).target());
        list.push(bell.target());
        assert_eq!((list.len(), list.distinct_words()), (3, 2));
        // The first holder of the shared word leaves; the word stays for the other.
        list.swap_remove(0);
        assert_eq!((list.len(), list.distinct_words()), (2, 2));
        list.swap_remove(0); // the shared word's last target (moved into place 0)
        assert_eq!((list.len(), list.distinct_words()), (1, 1));
        list.swap_remove(0);
        assert_eq!((list.len(), list.distinct_words()), (0, 0));
        list.push(bell.target());
        assert_eq!(list.distinct_words(), 1);
    }
}
