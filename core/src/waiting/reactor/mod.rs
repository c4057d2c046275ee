//! The async reactor: one thread per process (started on first use) that sleeps on every
//! topic an async task waits for, through the wait set's multi-topic sleep, and wakes the
//! tasks' [`Waker`]s. Runtime-agnostic: it knows nothing but `std::task`.
//!
//! A future that finds nothing to do *arms* its handle's [`Registration`] with the
//! sequence it waits for and its waker, then rings the reactor's bell. Each pass of the
//! reactor reads the bell count, takes a snapshot of the armed registrations under the
//! registry lock, and sleeps on all of them (the handshake of `waitset::SleepList`) with
//! this re-check: a subscriber's next slot holds its sequence or the topic closed; a
//! `Block` publisher's slowest subscriber is less than a ring behind; the bell rang. No
//! wake-up is lost: an arm that missed the snapshot rings the bell after it, so the
//! re-check (or the futex word) sees the ring. After the sleep, every armed registration
//! that is ready, or has waited a whole [`LIVENESS_SLICE`] (so its task runs the handle's
//! liveness check), is disarmed and its waker woken.
//!
//! A subscriber's registration holds a share of the claim on its table entry
//! (`EntryClaim`: the segment's open file, whose OFD lock claims the entry), because a
//! pass announces the reactor's sleep in that entry (its `asleep` flag and the topic's
//! sleeper count, which whoever claims the entry next takes back as a dead owner's). The
//! subscriber detaches when it drops, at once (a `Block` publisher stops gating on it and
//! no longer counts it), but nobody else can claim the entry while the registration's
//! share lives. Dropping a registration never waits: if the current pass sleeps on it, it
//! is only marked dropped (never snapshotted again), and the pass frees it, with its share
//! of the claim, when it ends. The drop cuts the pass short (rings the bell) once the
//! dropped entries are half of what the pass sleeps on, else the pass ends as it would
//! have: at the next arm, message or room on any of its topics (a publish on the dropped
//! subscriber's own topic too, as the reactor is still counted asleep there), or after a
//! liveness slice. So a dropped subscriber's table entry can be taken again by another
//! subscriber at most [`LIVENESS_SLICE`] after the drop (at once when the pass sleeps on
//! little else). A publisher's registration needs no claim: the `Block` publisher's wake
//! word is used by that one writer only (a reclaimed topic is a new segment).
//!
//! Costs: registering, arming, disarming and dropping are O(1) (a free list, and a list of
//! the armed registrations with each one's position in it), and no drop waits for the
//! reactor; a pass is O(armed), never O(registered) nor O(armed²) (the sleep list finds
//! shared futex words through a map). A pass that drops cut short sleeps on at most twice
//! as many entries as were dropped during it, so tearing down N armed registrations, in
//! any order, at any pace and from any number of threads, costs the reactor O(N) besides
//! the passes that arms, messages and liveness slices cause anyway (at most about
//! log2(N) passes are cut short by it).
//!
//! A waker whose `wake` panics (a buggy executor) does not end the reactor: the panic is
//! caught and logged, and the other wakers of the pass are still woken.
//!
//! After `fork()` the child has none of the parent's threads: the first use of the
//! reactor in the child sees that the process id changed and starts a new reactor thread
//! for the same registry (registrations inherited from the parent keep working). The
//! registry lock is held across `fork()` (`pthread_atfork`), so the child never inherits
//! it locked by a thread it does not have; and a `fork()` first lets a pass that sleeps on
//! dropped registrations end (a liveness slice or two at most, cut short by the bell), so
//! the child never inherits the pass's hold on their segments, which it could not let go
//! of (a mapping of a segment holds its file's locks as its descriptor does) and which
//! would keep their table entries claimed for as long as the child lives.

use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::Waker;
use std::time::Instant;

use crate::clock::LIVENESS_SLICE;
use crate::endpoint::{EntryClaim, SubscriberEnd};
use crate::futex::WakeAny;
use crate::ring::Writer;
use crate::waitset::{polling_forced, Bell, SleepList, SleepTarget, POLL_NAP};

mod registry;

use registry::{lock, Entry, Registry};

/// The process's reactor.
struct Shared {
    bell: Arc<Bell>,
    registry: Mutex<Registry>,
    /// Signalled when a pass that slept on dropped registrations has let go of them (a
    /// `fork()` may be waiting for it, see `settle_for_fork`).
    pass_done: Condvar,
    /// The process whose reactor thread serves this registry (0: none yet). A child after
    /// `fork()` reads its parent's id here: it has no reactor thread and starts one.
    pid: AtomicU32,
    /// Held while a reactor thread is being started.
    starting: Mutex<()>,
}

static REACTOR: OnceLock<Arc<Shared>> = OnceLock::new();

fn current_pid() -> u32 {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() as u32 }
}

/// The process's reactor, its thread started on first use (and again in a child after
/// `fork()`, which has no copy of it).
fn reactor() -> &'static Arc<Shared> {
    let shared = REACTOR.get_or_init(|| {
        install_fork_handlers();
        Arc::new(Shared {
            bell: Arc::new(Bell::new()),
            registry: Mutex::new(Registry::default()),
            pass_done: Condvar::new(),
            pid: AtomicU32::new(0),
            starting: Mutex::new(()),
        })
    });
    // Acquire: pairs with the Release store in `start_thread`: a caller that sees its own
    // process id sees the started thread's setup (none it relies on, but it is cheap).
    if shared.pid.load(AtomicOrdering::Acquire) != current_pid() {
        start_thread(shared);
    }
    shared
}

/// Starts the reactor thread of this process for `shared`, unless another caller did.
fn start_thread(shared: &'static Arc<Shared>) {
    let _starting = shared.starting.lock().unwrap_or_else(|e| e.into_inner());
    let pid = current_pid();
    // Relaxed: re-checked under `starting`, which orders it with the store below.
    if shared.pid.load(AtomicOrdering::Relaxed) == pid {
        return;
    }
    let mut gone = Vec::new();
    {
        // A child after fork: no pass of the parent's thread runs here, whatever it had
        // marked; the registrations dropped during that pass are freed now (this
        // process's copies of their claims). (On first start nothing is marked.)
        let mut reg = lock(&shared.registry);
        for id in 0..reg.entries.len() {
            let Some(e) = reg.entries[id].as_mut() else {
                continue;
            };
            e.in_use = false;
            if e.dropped {
                gone.extend(reg.remove(id));
            }
        }
        reg.passing = false;
        reg.pass_len = 0;
        reg.dropped_in_pass = 0;
    }
    // Outside the lock: releasing a claim closes a file.
    drop(gone);
    let s: &'static Shared = shared;
    std::thread::Builder::new()
        .name("ringcast-reactor".into())
        .spawn(move || run(s))
        .expect("cannot start the ringcast reactor thread");
    // Release: pairs with the Acquire load in `reactor`.
    shared.pid.store(pid, AtomicOrdering::Release);
}

thread_local! {
    /// The registry lock held by `fork_prepare` across a `fork()` of this thread.
    static FORK_GUARD: std::cell::RefCell<Option<MutexGuard<'static, Registry>>> =
        const { std::cell::RefCell::new(None) };
}

/// Holds the registry lock across every `fork()` of the process, so a child never
/// inherits it locked by a thread it does not have. Before that, lets a pass that sleeps
/// on dropped registrations end (see `settle_for_fork`).
fn install_fork_handlers() {
    extern "C" fn prepare() {
        if let Some(shared) = REACTOR.get() {
            let guard = settle_for_fork(shared, lock(&shared.registry));
            FORK_GUARD.with(|g| *g.borrow_mut() = Some(guard));
        }
    }
    extern "C" fn release() {
        FORK_GUARD.with(|g| drop(g.borrow_mut().take()));
    }
    // SAFETY: the handlers are plain functions that live for the whole program; they only
    // take and release the registry lock in the forking thread.
    let r = unsafe { libc::pthread_atfork(Some(prepare), Some(release), Some(release)) };
    if r != 0 {
        tracing::warn!(
            error = r,
            "pthread_atfork failed: a fork() racing the reactor may leave the child's registry locked"
        );
    }
}

/// Before a `fork()`: if the current pass still sleeps on registrations dropped during
/// it, rings the bell and waits (two liveness slices at most) until the pass has let go
/// of them (see the module docs). The registry lock, held from then on, keeps the next
/// pass from starting until the fork is done.
fn settle_for_fork<'a>(
    shared: &Shared,
    mut reg: MutexGuard<'a, Registry>,
) -> MutexGuard<'a, Registry> {
    // Relaxed: only whether this process runs the reactor thread (its own store, or a
    // parent's value, which never equals our id).
    if shared.pid.load(AtomicOrdering::Relaxed) != current_pid() {
        return reg;
    }
    let deadline = Instant::now() + 2 * LIVENESS_SLICE;
    while reg.passing && reg.dropped_in_pass > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        shared.bell.ring();
        reg = shared
            .pass_done
            .wait_timeout(reg, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    reg
}

/// Whether this process has started its reactor thread (a test and diagnostic hook).
pub fn started() -> bool {
    REACTOR.get().is_some()
}

/// Whether the reactor sleeps on futex words (false: it polls, see [`POLL_NAP`]); a test
/// and diagnostic hook, meaningful once the reactor has made its first pass.
pub fn is_polling() -> bool {
    POLLING.load(std::sync::atomic::Ordering::Relaxed)
}

// Relaxed: a diagnostic flag; nothing is published through it.
static POLLING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Passes the reactor has begun since the process started (a test and diagnostic hook).
#[doc(hidden)]
pub fn passes() -> u64 {
    // Relaxed: see `PASSES`.
    PASSES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Registrations the reactor's passes have slept on, summed over every pass since the
/// process started: the reactor's work (each pass is linear in it). A test and
/// diagnostic hook: a test reads what an operation cost without timing it.
#[doc(hidden)]
pub fn slept_on() -> u64 {
    // Relaxed: see `PASSES`.
    SLEPT_ON.load(std::sync::atomic::Ordering::Relaxed)
}

// Relaxed (both counters): diagnostic counts, nothing is published through them; their
// only partners are the Relaxed loads in `passes` and `slept_on`.
static PASSES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static SLEPT_ON: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The reactor thread.
fn run(shared: &'static Shared) {
    // Without futex_waitv (forced, or refused once by the kernel) every pass re-checks
    // and naps for `POLL_NAP`, as a polling wait set does.
    let mut polling = polling_forced();
    // Relaxed: see `POLLING`.
    POLLING.store(polling, std::sync::atomic::Ordering::Relaxed);
    let mut list = SleepList::new();
    let mut snapshot: Vec<usize> = Vec::new();
    let mut wake: Vec<Waker> = Vec::new();
    let mut gone: Vec<Entry> = Vec::new();
    loop {
        // Relaxed: see `PASSES`.
        PASSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let handled = shared.bell.count();
        list.clear();
        snapshot.clear();
        {
            let mut reg = lock(&shared.registry);
            let Registry { entries, armed, .. } = &mut *reg;
            for &i in armed.iter() {
                let e = entries[i].as_mut().expect("an armed entry is registered");
                e.in_use = true;
                list.push(e.target.duplicate());
                snapshot.push(i);
            }
            reg.passing = true;
            reg.pass_len = snapshot.len();
            reg.dropped_in_pass = 0;
        }
        // Relaxed: see `PASSES`.
        SLEPT_ON.fetch_add(snapshot.len() as u64, std::sync::atomic::Ordering::Relaxed);
        list.set_bell(shared.bell.target());
        let recheck = || {
            let reg = lock(&shared.registry);
            snapshot.iter().any(|i| {
                reg.entries[*i]
                    .as_ref()
                    .is_some_and(|e| !e.dropped && e.ready())
            }) || shared.bell.count() != handled
        };
        // A task that holds deferred releases (batched release) and awaits room that needs
        // them would wait for ever: hand them back before this thread sleeps for it.
        crate::handback::hand_back();
        if polling {
            if !recheck() {
                std::thread::sleep(POLL_NAP);
            }
        } else {
            // SAFETY: every snapshotted entry is marked `in_use`, and a registration
            // dropped meanwhile stays in the registry, with its share of the claim on the
            // subscriber's table entry, until this pass clears the mark below (after the
            // sleep withdrew from every target): no other subscriber can claim an entry
            // the sleep announces in. A publisher's target names only its topic's
            // `pub_wake`, which no writer but this topic's one ever uses.
            let r = unsafe { list.sleep(Some(LIVENESS_SLICE), recheck) };
            if let WakeAny::Unsupported | WakeAny::Failed(_) = r {
                tracing::warn!(
                    result = ?r,
                    "futex_waitv is not available: the ringcast reactor polls every {POLL_NAP:?}"
                );
                polling = true;
                // Relaxed: see `POLLING`.
                POLLING.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        list.clear();
        let now = Instant::now();
        let had_drops = {
            let mut reg = lock(&shared.registry);
            for &i in &snapshot {
                let Some(e) = reg.entries[i].as_mut() else {
                    continue;
                };
                e.in_use = false;
                if e.dropped {
                    gone.extend(reg.remove(i));
                    continue;
                }
                let Some(since) = e.armed_at else { continue };
                if e.ready() || now.duration_since(since) >= LIVENESS_SLICE {
                    wake.extend(reg.disarm(i));
                }
            }
            // Over, unless it still has dropped entries to let go of (outside the lock).
            reg.passing = !gone.is_empty();
            reg.dropped_in_pass > 0
        };
        if !gone.is_empty() {
            // Outside the lock: releasing a claim closes a file and unmaps a segment.
            gone.clear();
            lock(&shared.registry).passing = false;
        }
        if had_drops {
            // A fork may be waiting for this pass to let go of them.
            shared.pass_done.notify_all();
        }
        for w in wake.drain(..) {
            // A waker is foreign code: one that panics must not end the reactor (every
            // task of the process would hang). Its task was disarmed like the others; it
            // is woken again if it arms again.
            let woke = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.wake()));
            if let Err(panic) = woke {
                let what = panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(not a string)");
                tracing::error!(
                    panic = what,
                    "a task's Waker::wake panicked; the ringcast reactor carries on"
                );
            }
        }
    }
}

/// A handle's place in the reactor: armed by its futures when they must wait.
pub struct Registration {
    id: usize,
}

impl Registration {
    /// Registers `end`'s topic with the process's reactor (starting it if needed). The
    /// registration shares `end`'s claim on its table entry (see the module docs): drop
    /// it with the end, or the entry cannot be taken by another subscriber meanwhile.
    pub fn for_subscriber(end: &SubscriberEnd) -> Registration {
        Registration::new(end.reader_ref().sleep_target(), Some(end.claim()))
    }

    /// Registers `writer`'s topic (a `Block` publisher waiting for room).
    pub fn for_writer(writer: &Writer) -> Registration {
        Registration::new(writer.sleep_target(), None)
    }

    fn new(target: SleepTarget, claim: Option<EntryClaim>) -> Registration {
        let shared = reactor();
        let mut reg = lock(&shared.registry);
        let entry = Entry::new(target, claim);
        let id = match reg.free.pop() {
            Some(id) => {
                reg.entries[id] = Some(entry);
                id
            }
            None => {
                reg.entries.push(Some(entry));
                reg.entries.len() - 1
            }
        };
        Registration { id }
    }

    /// Asks the reactor to wake `waker` once sequence `next` can be read (or written, for
    /// a publisher), the topic closes, or a liveness slice passes.
    pub fn arm(&self, next: impl IntoIterator<Item = u64>, waker: &Waker) {
        let shared = reactor();
        let replaced = {
            let mut reg = lock(&shared.registry);
            let e = reg.entry(self.id);
            for (slot, n) in e.next.iter_mut().zip(next) {
                *slot = n;
            }
            let replaced = match &mut e.waker {
                Some(w) if w.will_wake(waker) => None,
                w => w.replace(waker.clone()),
            };
            reg.arm(self.id, Instant::now());
            replaced
        };
        // Dropped outside the lock, as in `disarm`: a waker's drop is foreign code (a
        // Python waker's may run a finalizer that arms or disarms again).
        drop(replaced);
        shared.bell.ring();
    }

    /// Withdraws a pending arm (the future completed or was dropped).
    pub fn disarm(&self) {
        let waker = lock(&reactor().registry).disarm(self.id);
        // Dropped outside the lock: a waker's drop is foreign code.
        drop(waker);
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let shared = reactor();
        let mut reg = lock(&shared.registry);
        let waker = reg.disarm(self.id);
        let (gone, cut_short) = if reg.entry(self.id).in_use {
            // The current pass may be announced in the subscriber's table entry: leave
            // the entry (and its share of the claim) to the pass, which frees it when it
            // ends (cut short once half of it is dropped).
            reg.entry(self.id).dropped = true;
            (None, reg.note_drop_in_pass())
        } else {
            (reg.remove(self.id), false)
        };
        drop(reg);
        if cut_short {
            shared.bell.ring();
        }
        // Outside the lock: a waker's drop is foreign code, a claim's closes a file.
        drop(gone);
        drop(waker);
    }
}
