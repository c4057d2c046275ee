//! Handles inherited across `fork()`: a child process gets a copy of every handle object
//! its parent had. The core leaves the parent's topic alone when such a copy is dropped
//! ([`ringcast::fork`]); here an inherited handle is also inert for calls: each raises
//! `Closed`, and its state is forgotten (never dropped, so no destructor of the binding
//! runs on the parent's behalf either).

use pyo3::PyErr;
use ringcast::fork::Lineage;

use crate::errors;

/// The lineage of a handle being made now.
pub fn epoch() -> Lineage {
    Lineage::current()
}

/// If a handle of lineage `epoch` was inherited, forgets its `state` (never dropped in
/// this process) and returns the error its calls raise.
pub fn inherited<T>(epoch: Lineage, state: &mut Option<T>, what: &str) -> Option<PyErr> {
    if !epoch.inherited() {
        return None;
    }
    if let Some(s) = state.take() {
        std::mem::forget(s);
    }
    Some(errors::Closed::new_err(format!(
        "{what} was inherited across fork(): it belongs to the parent process; make a new one in this process"
    )))
}
