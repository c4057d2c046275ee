//! Handles inherited across `fork()`: a child process gets a copy of every handle object
//! its parent had, and dropping or closing one of those copies would act on the parent's
//! topic (the last publisher's close unlinks it, a subscriber's detach frees the parent's
//! table entry, a server's close ends the service). Each handle remembers the fork
//! generation it was made in; a handle of an earlier generation is inert in the child:
//! every call raises `Closed`, and its state is forgotten, never dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use pyo3::PyErr;

use crate::errors;

/// Forks this process has gone through (counted in the child).
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked() {
    // Relaxed: the child's only thread runs this before `fork` returns, and reads the
    // count later itself; nothing else is published through it.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// The fork generation of this process, for a handle being made now.
pub fn epoch() -> u64 {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a child handler that only increments an atomic (async-signal
        // safe, as a handler run between fork and return must be).
        unsafe { libc::pthread_atfork(None, None, Some(forked)) };
    });
    // Relaxed: see `forked`.
    FORKS.load(Ordering::Relaxed)
}

/// If a handle of generation `epoch` was inherited, forgets its `state` (never dropped in
/// this process) and returns the error its calls raise.
pub fn inherited<T>(epoch: u64, state: &mut Option<T>, what: &str) -> Option<PyErr> {
    // Relaxed: see `forked`.
    if FORKS.load(Ordering::Relaxed) == epoch {
        return None;
    }
    if let Some(s) = state.take() {
        std::mem::forget(s);
    }
    Some(errors::Closed::new_err(format!(
        "{what} was inherited across fork(): it belongs to the parent process; make a new one in this process"
    )))
}
