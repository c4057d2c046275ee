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
//! A registration belongs to one handle and is dropped before the handle's reader or
//! writer (it announces sleeps in the reader's table entry): dropping it waits until the
//! reactor's current pass no longer uses it (only if that pass sleeps on it).
//!
//! Costs: registering, arming, disarming and dropping are O(1) (a free list, and a list of
//! the armed registrations with each one's position in it); a pass is O(armed), never
//! O(registered) nor O(armed²) (the sleep list finds shared futex words through a map).
//!
//! A waker whose `wake` panics (a buggy executor) does not end the reactor: the panic is
//! caught and logged, and the other wakers of the pass are still woken.
//!
//! After `fork()` the child has none of the parent's threads: the first use of the
//! reactor in the child sees that the process id changed and starts a new reactor thread
//! for the same registry (registrations inherited from the parent keep working). The
//! registry lock is held across `fork()` (`pthread_atfork`), so the child never inherits
//! it locked by a thread it does not have.

use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::clock::LIVENESS_SLICE;
use crate::futex::WakeAny;
use crate::memory::SegmentMemory;
use crate::ring::{news_at, room_at, Reader, Writer};
use crate::waitset::{polling_forced, Bell, SleepList, SleepTarget, POLL_NAP};

/// The process's reactor.
struct Shared {
    bell: Arc<Bell>,
    registry: Mutex<Registry>,
    /// Signalled after each pass, for registrations waiting to be dropped.
    pass_done: Condvar,
    /// The process whose reactor thread serves this registry (0: none yet). A child after
    /// `fork()` reads its parent's id here: it has no reactor thread and starts one.
    pid: AtomicU32,
    /// Held while a reactor thread is being started.
    starting: Mutex<()>,
}

#[derive(Default)]
struct Registry {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    /// Ids of the armed entries, in no order (each entry knows its position).
    armed: Vec<usize>,
}

impl Registry {
    fn entry(&mut self, id: usize) -> &mut Entry {
        self.entries[id].as_mut().expect("registered")
    }

    /// Marks entry `id` armed since `now` (kept if it already was).
    fn arm(&mut self, id: usize, now: Instant) {
        let pos = self.armed.len();
        let e = self.entry(id);
        if e.armed_at.is_none() {
            e.armed_at = Some(now);
            e.armed_pos = pos;
            self.armed.push(id);
        }
    }

    /// Withdraws entry `id`'s arm, if any; returns its waker.
    fn disarm(&mut self, id: usize) -> Option<Waker> {
        let e = self.entry(id);
        let waker = e.waker.take();
        if e.armed_at.take().is_some() {
            let pos = e.armed_pos;
            self.armed.swap_remove(pos);
            if let Some(&moved) = self.armed.get(pos) {
                self.entry(moved).armed_pos = pos;
            }
        }
        waker
    }
}

struct Entry {
    target: SleepTarget,
    /// The sequence the handle waits for (to read, or to write).
    next: u64,
    waker: Option<Waker>,
    armed_at: Option<Instant>,
    /// Position in `Registry::armed` while armed.
    armed_pos: usize,
    /// The reactor's current pass sleeps on this entry.
    in_use: bool,
}

impl Entry {
    /// A registered entry, not armed.
    fn new(target: SleepTarget) -> Entry {
        Entry {
            target,
            next: 0,
            waker: None,
            armed_at: None,
            armed_pos: 0,
            in_use: false,
        }
    }

    fn ready(&self) -> bool {
        let mem: &SegmentMemory = self.target.memory().expect("a topic target");
        if self.target.is_publisher() {
            room_at(mem, self.next)
        } else {
            news_at(mem, self.next)
        }
    }
}

fn lock(m: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    // The registry holds plain values that every critical section leaves consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
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
    {
        // A child after fork: no pass of the parent's thread runs here, whatever it had
        // marked. (On first start nothing is marked.)
        let mut reg = lock(&shared.registry);
        for e in reg.entries.iter_mut().flatten() {
            e.in_use = false;
        }
    }
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
/// inherits it locked by a thread it does not have.
fn install_fork_handlers() {
    extern "C" fn prepare() {
        if let Some(shared) = REACTOR.get() {
            let guard = lock(&shared.registry);
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
    loop {
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
        }
        list.set_bell(shared.bell.target());
        let recheck = || {
            let reg = lock(&shared.registry);
            snapshot
                .iter()
                .any(|i| reg.entries[*i].as_ref().is_some_and(Entry::ready))
                || shared.bell.count() != handled
        };
        // A task that holds deferred releases (batched release) and awaits room that needs
        // them would wait for ever: hand them back before this thread sleeps for it.
        crate::handback::hand_back();
        if polling {
            if !recheck() {
                std::thread::sleep(POLL_NAP);
            }
        } else {
            // SAFETY: every snapshotted entry is marked `in_use`, and a registration's
            // drop (which precedes its reader's or writer's) waits until this pass clears
            // the mark below, so each target's owner outlives the sleep.
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
        {
            let mut reg = lock(&shared.registry);
            for &i in &snapshot {
                let Some(e) = reg.entries[i].as_mut() else {
                    continue;
                };
                e.in_use = false;
                let Some(since) = e.armed_at else { continue };
                if e.ready() || now.duration_since(since) >= LIVENESS_SLICE {
                    wake.extend(reg.disarm(i));
                }
            }
        }
        shared.pass_done.notify_all();
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
    /// Registers `reader`'s topic with the process's reactor (starting it if needed).
    ///
    /// # Safety
    /// The registration is dropped before `reader` (the reactor announces sleeps in the
    /// reader's table entry while the registration lives).
    pub unsafe fn for_reader(reader: &Reader) -> Registration {
        Registration::new(reader.sleep_target())
    }

    /// Registers `writer`'s topic (a `Block` publisher waiting for room).
    ///
    /// # Safety
    /// As for [`for_reader`](Self::for_reader), with the writer.
    pub unsafe fn for_writer(writer: &Writer) -> Registration {
        Registration::new(writer.sleep_target())
    }

    fn new(target: SleepTarget) -> Registration {
        let shared = reactor();
        let mut reg = lock(&shared.registry);
        let entry = Entry::new(target);
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
    pub fn arm(&self, next: u64, waker: &Waker) {
        let shared = reactor();
        {
            let mut reg = lock(&shared.registry);
            let e = reg.entry(self.id);
            e.next = next;
            match &mut e.waker {
                Some(w) if w.will_wake(waker) => {}
                w => *w = Some(waker.clone()),
            }
            reg.arm(self.id, Instant::now());
        }
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
        if reg.entry(self.id).in_use {
            // Wake the reactor so the pass that sleeps on us ends soon, then wait for it.
            shared.bell.ring();
        }
        while reg.entries[self.id].as_ref().is_some_and(|e| e.in_use) {
            reg = shared
                .pass_done
                .wait_timeout(reg, Duration::from_millis(10))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        reg.entries[self.id] = None;
        reg.free.push(self.id);
        drop(reg);
        drop(waker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(target: SleepTarget) -> Option<Entry> {
        Some(Entry::new(target))
    }

    /// Every armed entry is in `armed` exactly once, at the position it records.
    fn check(reg: &Registry) {
        for (pos, &id) in reg.armed.iter().enumerate() {
            let e = reg.entries[id].as_ref().expect("armed and registered");
            assert!(e.armed_at.is_some(), "entry {id} listed but not armed");
            assert_eq!(e.armed_pos, pos, "entry {id} at the wrong position");
        }
        let armed = reg
            .entries
            .iter()
            .flatten()
            .filter(|e| e.armed_at.is_some());
        assert_eq!(armed.count(), reg.armed.len());
    }

    #[test]
    fn ten_thousand_registrations_arm_and_disarm_in_any_order_with_exact_bookkeeping() {
        const N: usize = 10_000;
        let start = Instant::now();
        let bell = Arc::new(Bell::new());
        let mut reg = Registry {
            entries: (0..N).map(|_| entry(bell.target())).collect(),
            ..Registry::default()
        };
        let now = Instant::now();
        for id in 0..N {
            reg.arm(id, now);
            reg.arm(id, now); // twice: still listed once
        }
        check(&reg);
        assert_eq!(reg.armed.len(), N);
        // Disarm in a scattered order (a stride coprime with N), re-arm some, twice.
        let mut id = 0;
        for k in 0..N {
            id = (id + 7919) % N;
            assert!(reg.disarm(id).is_none(), "no waker was set");
            if k % 3 == 0 {
                reg.arm(id, now);
            }
            if k % 1000 == 0 {
                check(&reg);
            }
        }
        check(&reg);
        assert_eq!(reg.armed.len(), N.div_ceil(3));
        for id in 0..N {
            reg.disarm(id);
        }
        assert!(reg.armed.is_empty());
        // O(1) per operation: milliseconds; the bound only catches a quadratic regression.
        assert!(start.elapsed() < Duration::from_secs(60));
    }
}
