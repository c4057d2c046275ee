//! More futex words than one `futex_waitv` takes: helper threads.
//!
//! A sleep over more than [`MAX_WAIT_WORDS`] words is split into shards. The waiting
//! thread keeps the first `MAX_WAIT_WORDS - 1` words and adds this pool's *bell*; each
//! helper thread takes up to `MAX_WAIT_WORDS - 1` more and adds the pool's *cancel* word.
//! The expected values of every word were read by the waiter before its announcements,
//! exactly as in an unsharded sleep, so a helper's `futex_waitv` returns at once if its
//! word changed since. A helper woken through one of its words rings the bell (the waiter
//! wakes); the waiter, woken by anything, bumps the cancel word (every helper returns) and
//! waits until all helpers are idle before it withdraws its announcements, so no helper
//! touches a word after the sleep ends. Helpers are started on the first sharded sleep and
//! live as long as the wait set; a set of at most `MAX_WAIT_WORDS` words never has any.
//!
//! After `fork()` a child has none of its parent's helper threads (and may have inherited
//! their round lock held): the next sharded sleep in the child sees that the process id
//! changed, abandons the parent's helpers and their shared state without touching them,
//! and starts its own.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::futex::{self, WaitWord, WakeAny, MAX_WAIT_WORDS};
use crate::sync::{AtomicU32, Ordering};

/// Words one shard waits on besides its bell or cancel word.
const PER_SHARD: usize = MAX_WAIT_WORDS - 1;

/// The helper threads of one wait set (none until a sleep needs them).
#[derive(Default)]
pub(crate) struct Shards {
    ctl: Option<Arc<Ctl>>,
    helpers: Vec<JoinHandle<()>>,
    /// The process that started `helpers` (they exist only there).
    pid: u32,
}

fn current_pid() -> u32 {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() as u32 }
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards")
            .field("helpers", &self.helpers.len())
            .finish()
    }
}

/// What the waiter and its helpers share.
struct Ctl {
    /// Rung by a helper whose words woke it.
    bell: AtomicU32,
    /// Bumped by the waiter when its sleep ends.
    cancel: AtomicU32,
    round: Mutex<Round>,
    /// Signals a new round (or shutdown) to helpers.
    start: Condvar,
    /// Signals the waiter that the last busy helper is idle.
    idle: Condvar,
}

#[derive(Default)]
struct Round {
    /// Increments per sleep; a helper runs each round once.
    number: u64,
    /// Per helper: the (address, expected value) of its words this round.
    work: Vec<Vec<(usize, u32)>>,
    /// The cancel word's value before this round began.
    cancel_seen: u32,
    /// Helpers still waiting in this round.
    busy: usize,
    /// A helper's futex call failed this round (ENOSYS, ...): its result.
    failed: Option<WakeAny>,
    shutdown: bool,
}

fn lock(m: &Mutex<Round>) -> MutexGuard<'_, Round> {
    // A helper never panics while holding the lock; if one did, the round data is still
    // consistent (plain values), so carry on.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shards {
    /// Like [`futex::wait_any`] for any number of words.
    pub(crate) fn wait_any(
        &mut self,
        words: &[WaitWord<'_>],
        timeout: Option<Duration>,
    ) -> WakeAny {
        let (mine, rest) = words.split_at(PER_SHARD.min(words.len()));
        let needed = rest.len().div_ceil(PER_SHARD);
        if let Err(e) = self.ensure_helpers(needed) {
            tracing::warn!(error = %e, "could not start a wait-set helper thread");
            return WakeAny::Failed(e.raw_os_error().unwrap_or(libc::EAGAIN));
        }
        let ctl = self.ctl.clone().expect("started above");
        // Relaxed: the bell and cancel words carry no data; the futex calls compare them.
        let bell_seen = ctl.bell.load(Ordering::Relaxed);
        {
            let mut round = lock(&ctl.round);
            round.number += 1;
            // Relaxed: as for the bell.
            round.cancel_seen = ctl.cancel.load(Ordering::Relaxed);
            round.failed = None;
            round.busy = needed;
            round.work.resize_with(self.helpers.len(), Vec::new);
            for (k, work) in round.work.iter_mut().enumerate() {
                work.clear();
                if let Some(chunk) = rest.chunks(PER_SHARD).nth(k) {
                    work.extend(chunk.iter().map(|w| (w.word.as_ptr() as usize, w.expected)));
                }
            }
            ctl.start.notify_all();
        }
        let mut list: Vec<WaitWord<'_>> = Vec::with_capacity(mine.len() + 1);
        list.extend_from_slice(mine);
        list.push(WaitWord {
            word: &ctl.bell,
            expected: bell_seen,
        });
        let r = futex::wait_any(&list, timeout);
        // Relaxed: as for the bell.
        ctl.cancel.fetch_add(1, Ordering::Relaxed);
        futex::wake_all(&ctl.cancel);
        let mut round = lock(&ctl.round);
        while round.busy > 0 {
            round = ctl.idle.wait(round).unwrap_or_else(|e| e.into_inner());
        }
        round.failed.take().unwrap_or(match r {
            WakeAny::Woken(Some(i)) if i >= mine.len() => WakeAny::Woken(None),
            r => r,
        })
    }

    /// In a child after `fork()`: forgets the parent's helpers (threads this process does
    /// not have: never joined) and their shared state (its lock may be held by one of
    /// them: never touched again).
    fn abandon_parents_helpers(&mut self) {
        if self.ctl.is_none() || self.pid == current_pid() {
            return;
        }
        for h in self.helpers.drain(..) {
            std::mem::forget(h);
        }
        std::mem::forget(self.ctl.take());
    }

    fn ensure_helpers(&mut self, n: usize) -> std::io::Result<()> {
        self.abandon_parents_helpers();
        if self.ctl.is_none() {
            self.pid = current_pid();
        }
        let ctl = self
            .ctl
            .get_or_insert_with(|| {
                Arc::new(Ctl {
                    bell: AtomicU32::new(0),
                    cancel: AtomicU32::new(0),
                    round: Mutex::new(Round::default()),
                    start: Condvar::new(),
                    idle: Condvar::new(),
                })
            })
            .clone();
        while self.helpers.len() < n {
            let k = self.helpers.len();
            let ctl = ctl.clone();
            // The helper has seen no round yet: it starts from the current number.
            let seen = lock(&ctl.round).number;
            let h = std::thread::Builder::new()
                .name(format!("ringcast-waitset-shard-{}", k + 1))
                .spawn(move || helper(&ctl, k, seen))?;
            self.helpers.push(h);
        }
        Ok(())
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        self.abandon_parents_helpers();
        let Some(ctl) = &self.ctl else { return };
        lock(&ctl.round).shutdown = true;
        ctl.start.notify_all();
        for h in self.helpers.drain(..) {
            let _ = h.join();
        }
    }
}

/// Helper `k`: each round, wait on its words and the cancel word; ring the bell if one of
/// its own words woke it.
fn helper(ctl: &Ctl, k: usize, mut seen_round: u64) {
    let mut mine: Vec<(usize, u32)> = Vec::new();
    loop {
        let cancel_seen;
        {
            let mut round = lock(&ctl.round);
            while round.number == seen_round && !round.shutdown {
                round = ctl.start.wait(round).unwrap_or_else(|e| e.into_inner());
            }
            if round.shutdown {
                return;
            }
            seen_round = round.number;
            mine.clear();
            mine.extend_from_slice(round.work.get(k).map_or(&[][..], |w| &w[..]));
            cancel_seen = round.cancel_seen;
            if mine.is_empty() {
                // Not needed this round (the set shrank); `busy` did not count us.
                continue;
            }
        }
        let mut list: Vec<WaitWord<'_>> = mine
            .iter()
            .map(|&(addr, expected)| WaitWord {
                // SAFETY: `addr` is the address of a live, aligned `AtomicU32` (a topic's
                // futex word in a mapping its member keeps alive): the waiter put it in
                // this round and does not end its sleep (nor let the set or any member
                // change) until this helper reported idle below.
                word: unsafe { &*(addr as *const AtomicU32) },
                expected,
            })
            .collect();
        list.push(WaitWord {
            word: &ctl.cancel,
            expected: cancel_seen,
        });
        let r = futex::wait_any(&list, None);
        let failed = matches!(r, WakeAny::Unsupported | WakeAny::Failed(_));
        if !matches!(r, WakeAny::Woken(Some(i)) if i == list.len() - 1) {
            // Woken by a topic word (or a change, a failure): wake the waiter.
            // Relaxed: as in `Shards::wait_any`.
            ctl.bell.fetch_add(1, Ordering::Relaxed);
            futex::wake_all(&ctl.bell);
        }
        drop(list);
        let mut round = lock(&ctl.round);
        if failed {
            round.failed = Some(r);
        }
        round.busy -= 1;
        if round.busy == 0 {
            ctl.idle.notify_all();
        }
    }
}
