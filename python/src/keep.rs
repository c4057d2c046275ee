//! What a closed handle keeps mapped for its Python objects (samples, loans, requests,
//! responses) that may still point into its memory: numpy's `ndarray(buffer=obj)` keeps
//! the object and a raw pointer, not a buffer export, so a close must not unmap while any
//! such object lives. Each object holds a [`Ticket`] of its handle's [`Keep`]; the count
//! lives beside the handle, not in it, so an object dropped while another thread's call
//! holds the handle is still counted out (and the retained memory freed with the last).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ringcast::Retained;

#[derive(Default)]
struct Count {
    /// Objects alive now.
    live: usize,
    /// After a close with objects alive: their memory, freed with the last of them.
    retained: Option<Retained>,
}

/// A handle's count of the objects that may point into its memory.
#[derive(Clone, Default)]
pub struct Keep(Arc<Mutex<Count>>);

impl Keep {
    fn count(&self) -> MutexGuard<'_, Count> {
        // Nothing panics while holding it; a poisoned count is still a count.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One more object: counted until the ticket is dropped.
    pub fn ticket(&self) -> Ticket {
        self.count().live += 1;
        Ticket(self.clone())
    }

    /// A close: keeps `retained` while any object lives, else frees it now.
    pub fn hold(&self, retained: Retained) {
        let mut count = self.count();
        if count.live > 0 {
            count.retained = Some(retained);
        }
    }
}

/// An object's place in its handle's [`Keep`].
pub struct Ticket(Keep);

impl Drop for Ticket {
    fn drop(&mut self) {
        let freed = {
            let mut count = self.0.count();
            count.live = count.live.saturating_sub(1);
            if count.live == 0 {
                count.retained.take()
            } else {
                None
            }
        };
        drop(freed);
    }
}
