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
//! reactor's current pass no longer uses it.

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
}

#[derive(Default)]
struct Registry {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
}

struct Entry {
    target: SleepTarget,
    /// The sequence the handle waits for (to read, or to write).
    next: u64,
    waker: Option<Waker>,
    armed_at: Option<Instant>,
    /// The reactor's current pass sleeps on this entry.
    in_use: bool,
}

impl Entry {
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

/// The process's reactor, started on first use.
fn reactor() -> &'static Arc<Shared> {
    REACTOR.get_or_init(|| {
        let shared = Arc::new(Shared {
            bell: Arc::new(Bell::new()),
            registry: Mutex::new(Registry::default()),
            pass_done: Condvar::new(),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("ringcast-reactor".into())
            .spawn(move || run(&s))
            .expect("cannot start the ringcast reactor thread");
        shared
    })
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
fn run(shared: &Shared) {
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
            for (i, e) in reg.entries.iter_mut().enumerate() {
                if let Some(e) = e.as_mut().filter(|e| e.armed_at.is_some()) {
                    e.in_use = true;
                    list.push(e.target.duplicate());
                    snapshot.push(i);
                }
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
                    e.armed_at = None;
                    wake.extend(e.waker.take());
                }
            }
        }
        shared.pass_done.notify_all();
        for w in wake.drain(..) {
            w.wake();
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
        let entry = Entry {
            target,
            next: 0,
            waker: None,
            armed_at: None,
            in_use: false,
        };
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
            let e = reg.entries[self.id].as_mut().expect("registered");
            e.next = next;
            match &mut e.waker {
                Some(w) if w.will_wake(waker) => {}
                w => *w = Some(waker.clone()),
            }
            e.armed_at.get_or_insert_with(Instant::now);
        }
        shared.bell.ring();
    }

    /// Withdraws a pending arm (the future completed or was dropped).
    pub fn disarm(&self) {
        let mut reg = lock(&reactor().registry);
        if let Some(e) = reg.entries[self.id].as_mut() {
            e.armed_at = None;
            e.waker = None;
        }
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
        if let Some(e) = reg.entries[self.id].as_mut() {
            e.armed_at = None;
            e.waker = None;
        }
        // Wake the reactor so a pass that sleeps on us ends soon, then wait for it.
        shared.bell.ring();
        while reg.entries[self.id].as_ref().is_some_and(|e| e.in_use) {
            reg = shared
                .pass_done
                .wait_timeout(reg, Duration::from_millis(10))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        reg.entries[self.id] = None;
        reg.free.push(self.id);
    }
}
