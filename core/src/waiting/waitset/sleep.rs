//! The multi-topic sleep: the announce / fence / re-check handshake of a single `recv`
//! (see [`crate::protocol::wake`]), run on every member of a wait set at once, then one
//! `futex_waitv` over every distinct futex word.
//!
//! For each member, in order: read its futex word (the value the sleep will expect), then
//! announce (a subscriber counts itself in `sub_wake.sleepers` and raises its entry's
//! `asleep` flag; a `Block` publisher raises `pub_wake.waiting`). Then **one** SeqCst fence,
//! then the re-check of every member, and only if none is ready the sleep. Each member's
//! publisher (or releasing subscriber) runs its side of the handshake unchanged: commit,
//! SeqCst fence, read the announcement, bump and wake only if someone is announced. In the
//! single total order of SeqCst fences our fence is either before theirs (their read of
//! the announcement sees it, so they bump the word after we read it: our sleep fails with
//! EAGAIN or is woken) or after theirs (our re-check sees their commit). One fence serves
//! every member because every announcement precedes it and every re-check follows it in
//! program order. The word is read with Acquire, as a single sleep reads it: a waker clears
//! the announcement flag (`unanswered`, `waiting`) before its Release bump, and the
//! argument in `protocol/wake.rs` needs the read that gives the expected value to see that
//! clear ordered before this sleep's announcement.
//!
//! Two members of the same topic share its futex word: the word is waited on once, with
//! its value read before *any* announcement (every distinct word is read first, then every
//! member announces), so the argument above holds for all of them.
//!
//! The list keeps its distinct words in a map from the word's address, so adding or
//! removing a target is O(1) (amortized) whatever the list's size, and a sleep is O(n).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::futex::{self, WaitWord, WakeAny, MAX_WAIT_WORDS};
use crate::memory::SegmentMemory;
use crate::protocol::wake;
use crate::ring::{Reader, Writer};
use crate::sync::{fence, mutant_or, AtomicU32, Ordering};

/// What a target sleeps on.
enum Side {
    /// A subscriber, owner of table entry `entry`, sleeping for news.
    Subscriber {
        mem: Arc<SegmentMemory>,
        entry: usize,
    },
    /// A `Block` publisher of lane `lane`, sleeping for room.
    Publisher {
        mem: Arc<SegmentMemory>,
        lane: usize,
    },
    /// A process-local bell (a wait set's notifier, the reactor's doorbell).
    Bell(Arc<Bell>),
}

/// What one member of a wait set sleeps on: a topic's memory and the side it waits on, or
/// a [`Bell`]. Made by the owned ends ([`Reader::sleep_target`](crate::ring::Reader::sleep_target),
/// [`Writer::sleep_target`](crate::ring::Writer::sleep_target)) and by [`Bell::target`];
/// using one needs the `unsafe` of [`SleepList::sleep`], whose caller keeps the owner
/// alive.
pub struct SleepTarget {
    side: Side,
}

impl Writer {
    /// What a wait set sleeps on for this writer: its lane's publisher futex (`Block`).
    pub fn sleep_target(&self) -> SleepTarget {
        SleepTarget::publisher(self.memory().clone(), self.lane())
    }
}

impl Reader {
    /// What a wait set sleeps on for this reader: the topic's subscriber futex, announced
    /// in this reader's table entry. The target must not be slept on after this reader is
    /// gone ([`SleepList::sleep`] is `unsafe` for that).
    pub fn sleep_target(&self) -> SleepTarget {
        SleepTarget::subscriber(self.memory().clone(), self.entry_index())
    }
}

impl SleepTarget {
    pub(crate) fn subscriber(mem: Arc<SegmentMemory>, entry: usize) -> SleepTarget {
        SleepTarget {
            side: Side::Subscriber { mem, entry },
        }
    }

    pub(crate) fn publisher(mem: Arc<SegmentMemory>, lane: usize) -> SleepTarget {
        SleepTarget {
            side: Side::Publisher { mem, lane },
        }
    }

    /// Another handle on the same target.
    pub(crate) fn duplicate(&self) -> SleepTarget {
        let side = match &self.side {
            Side::Subscriber { mem, entry } => Side::Subscriber {
                mem: mem.clone(),
                entry: *entry,
            },
            Side::Publisher { mem, lane } => Side::Publisher {
                mem: mem.clone(),
                lane: *lane,
            },
            Side::Bell(bell) => Side::Bell(bell.clone()),
        };
        SleepTarget { side }
    }

    /// The topic's memory (none for a bell).
    pub(crate) fn memory(&self) -> Option<&Arc<SegmentMemory>> {
        match &self.side {
            Side::Subscriber { mem, .. } | Side::Publisher { mem, .. } => Some(mem),
            Side::Bell(_) => None,
        }
    }

    /// Whether this target is a publisher's.
    pub(crate) fn is_publisher(&self) -> bool {
        matches!(self.side, Side::Publisher { .. })
    }

    /// A publisher target's lane (`None` for a subscriber or a bell).
    pub(crate) fn lane(&self) -> Option<usize> {
        match self.side {
            Side::Publisher { lane, .. } => Some(lane),
            _ => None,
        }
    }

    /// The futex word this target's wakers ring.
    fn word(&self) -> &AtomicU32 {
        match &self.side {
            Side::Subscriber { mem, .. } => &mem.header().sub_wake.futex,
            Side::Publisher { mem, lane } => &mem.lane(*lane).pub_wake.futex,
            Side::Bell(bell) => &bell.word,
        }
    }

    /// The address of [`word`](Self::word): equal for targets that share it.
    fn word_addr(&self) -> usize {
        std::ptr::from_ref(self.word()) as usize
    }

    /// Reads the word, then announces; returns the value read.
    fn announce(&self) -> u32 {
        match &self.side {
            Side::Subscriber { mem, entry } => wake::announce_sleep(mem, *entry),
            Side::Publisher { mem, lane } => wake::announce_publisher_sleep(mem, *lane),
            Side::Bell(bell) => bell.announce(),
        }
    }

    fn withdraw(&self) {
        match &self.side {
            Side::Subscriber { mem, entry } => wake::withdraw_sleep(mem, *entry),
            Side::Publisher { mem, lane } => wake::withdraw_publisher_sleep(mem, *lane),
            Side::Bell(bell) => bell.withdraw(),
        }
    }
}

/// A process-local futex word with the same handshake as a topic's: [`ring`](Bell::ring)
/// bumps the count, fences, and makes the wake system call only if a waiter announced
/// itself. Rings are never lost: a waiter compares [`count`](Bell::count) with the count it
/// last handled.
#[derive(Debug)]
pub struct Bell {
    word: AtomicU32,
    sleepers: AtomicU32,
}

impl Default for Bell {
    fn default() -> Self {
        Bell::new()
    }
}

impl Bell {
    /// A bell nobody has rung.
    pub fn new() -> Bell {
        Bell {
            word: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
        }
    }

    /// Rings: every waiter that sees the new count, or sleeps on it, wakes.
    pub fn ring(&self) {
        // Release: a waiter whose Acquire `count` sees this ring also sees what the ringer
        // wrote before ringing (e.g. a registration).
        self.word.fetch_add(1, Ordering::Release);
        // SeqCst: the ringer's half of the handshake; pairs with the waiter's fence in
        // `SleepList::sleep`, as `wake::after_commit` does for a topic.
        fence(mutant_or(Ordering::SeqCst, Ordering::Release));
        // Relaxed: ordered by the fence above.
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            futex::wake_all(&self.word);
        }
    }

    /// Times rung (wrapping).
    pub fn count(&self) -> u32 {
        // Acquire: pairs with the Release in `ring`.
        self.word.load(Ordering::Acquire)
    }

    /// The bell as a sleep target, for a [`SleepList`].
    pub fn target(self: &Arc<Bell>) -> SleepTarget {
        SleepTarget {
            side: Side::Bell(self.clone()),
        }
    }

    fn announce(&self) -> u32 {
        // Relaxed: read before the announcement, as in `wake::announce_sleep`.
        let seen = self.word.load(Ordering::Relaxed);
        // Relaxed: ordered before the re-check by the waiter's fence.
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        seen
    }

    fn withdraw(&self) {
        // Relaxed: a stale count only costs a ringer one spare wake call.
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for SleepTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = match &self.side {
            Side::Subscriber { entry, .. } => format!("subscriber entry {entry}"),
            Side::Publisher { .. } => "publisher".to_owned(),
            Side::Bell(_) => "bell".to_owned(),
        };
        f.debug_struct("SleepTarget").field("side", &side).finish()
    }
}

/// One distinct futex word of a [`SleepList`].
#[derive(Debug)]
struct Word {
    /// A handle on a target with this word (keeps the word's memory alive).
    holder: SleepTarget,
    /// Targets in the list with this word.
    count: usize,
}

/// The sleep targets of a wait set, and their distinct futex words.
#[derive(Debug, Default)]
pub struct SleepList {
    targets: Vec<SleepTarget>,
    /// Each distinct futex word of the targets once (the words a sleep waits on).
    distinct: Vec<Word>,
    /// A word's address to its index in `distinct`.
    index: HashMap<usize, usize>,
    /// A bell waited on besides the targets (a wait set's notifier).
    bell: Option<SleepTarget>,
    /// Reused allocation for the words of one sleep (always empty between sleeps).
    words: Vec<WaitWord<'static>>,
    #[cfg(not(loom))]
    shards: super::shard::Shards,
}

impl SleepList {
    /// An empty list.
    pub fn new() -> SleepList {
        SleepList::default()
    }

    /// Adds a target at the end. O(1) amortized.
    pub fn push(&mut self, target: SleepTarget) {
        let next = self.distinct.len();
        let k = *self.index.entry(target.word_addr()).or_insert(next);
        if k == next {
            self.distinct.push(Word {
                holder: target.duplicate(),
                count: 1,
            });
        } else {
            self.distinct[k].count += 1;
        }
        self.targets.push(target);
    }

    /// Removes every target (and the bell), keeping the allocation.
    pub fn clear(&mut self) {
        self.targets.clear();
        self.distinct.clear();
        self.index.clear();
        self.bell = None;
    }

    /// Removes target `i`, moving the last one into its place (as `Vec::swap_remove`).
    /// O(1).
    pub fn swap_remove(&mut self, i: usize) -> SleepTarget {
        let t = self.targets.swap_remove(i);
        let addr = t.word_addr();
        let k = self.index[&addr];
        self.distinct[k].count -= 1;
        if self.distinct[k].count == 0 {
            self.index.remove(&addr);
            self.distinct.swap_remove(k);
            if let Some(moved) = self.distinct.get(k) {
                self.index.insert(moved.holder.word_addr(), k);
            }
        }
        t
    }

    /// Also sleeps on `bell` (replacing any earlier one).
    pub fn set_bell(&mut self, bell: SleepTarget) {
        self.bell = Some(bell);
    }

    /// How many targets (the bell not counted).
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Distinct futex words among the targets.
    pub fn distinct_words(&self) -> usize {
        self.distinct.len()
    }

    /// One announced sleep on every target of at most `timeout`: read every distinct word,
    /// announce all, one SeqCst fence, `recheck`, and only if it finds nothing ready,
    /// `futex_waitv` on every distinct word. Returns `Changed` when `recheck` found
    /// something. More than [`MAX_WAIT_WORDS`] words are split over helper threads (see
    /// `shard`). The caller loops and re-checks, whatever the result.
    ///
    /// # Safety
    /// The owner of every target (the reader that owns its table entry, or the writer)
    /// is alive for the whole call: the sleep writes the entry's `asleep` flag, which must
    /// not be done to an entry that another subscriber may have claimed since.
    pub unsafe fn sleep(
        &mut self,
        timeout: Option<Duration>,
        recheck: impl FnOnce() -> bool,
    ) -> WakeAny {
        // Covariance: the empty `'static` vector serves as one of any shorter lifetime.
        let mut words: Vec<WaitWord<'_>> = std::mem::take(&mut self.words);
        // Every word's expected value is read before any announcement (of its topic or
        // another): the value the sleep compares is never newer than an announcement.
        for t in self.distinct.iter().map(|w| &w.holder).chain(&self.bell) {
            let word = t.word();
            words.push(WaitWord {
                word,
                // Acquire: read before the announcements below (program order), as in
                // `wake::announce_sleep`, and for the same reason: pairs with the Release
                // bump of `wake::wake_all_subscribers` / `wake_publisher`, so a clear of the
                // announcement flag made before a bump we read is ordered before our
                // announcement. The fence below orders the announcements before the re-check.
                expected: word.load(Ordering::Acquire),
            });
        }
        for t in self.targets.iter().chain(&self.bell) {
            // The value it read is not needed: its word's was read above.
            let _ = t.announce();
        }
        // SeqCst: the waiter's half of every member's handshake at once; pairs with the
        // fence in `wake::after_commit` (subscriber targets) or `wake::after_release`
        // (publisher targets) of each topic. Every announcement above precedes it, every
        // re-check below follows it.
        fence(mutant_or(Ordering::SeqCst, Ordering::Relaxed));
        let r = if recheck() {
            WakeAny::Changed
        } else if words.len() <= MAX_WAIT_WORDS {
            futex::wait_any(&words, timeout)
        } else {
            sleep_sharded(
                #[cfg(not(loom))]
                &mut self.shards,
                &words,
                timeout,
            )
        };
        for t in self.targets.iter().chain(&self.bell) {
            t.withdraw();
        }
        words.clear();
        // Back to `'static` without a reallocation: an empty vector's buffer is reused by
        // the in-place collect.
        self.words = words.into_iter().map(|_| unreachable!()).collect();
        r
    }
}

#[cfg(not(loom))]
fn sleep_sharded(
    shards: &mut super::shard::Shards,
    words: &[WaitWord<'_>],
    timeout: Option<Duration>,
) -> WakeAny {
    shards.wait_any(words, timeout)
}

/// The models never have more words than one call takes.
#[cfg(loom)]
fn sleep_sharded(_words: &[WaitWord<'_>], _timeout: Option<Duration>) -> WakeAny {
    WakeAny::Failed(libc::EINVAL)
}
