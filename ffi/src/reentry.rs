//! Refusing re-entry: while a handle runs a caller's callback (the
//! `ringcast_subscriber_drain` callback), a call on that handle, or on the wait set it is
//! in, from inside the callback would alias the state the running call is using (or free
//! it: a destroy). Such calls return `RINGCAST_ERR_REENTRANT` and do nothing.
//!
//! Handles are used by one thread at a time (the ABI's contract), so the running handles
//! are a per-thread list, checked by address before any reference to the handle is made.

use std::cell::RefCell;

use crate::error::Failure;
use crate::status::ringcast_status::RINGCAST_ERR_REENTRANT;

thread_local! {
    /// Addresses of the handles (subscribers, wait sets) this thread is running a
    /// callback for, innermost last.
    static RUNNING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// `Err(RINGCAST_ERR_REENTRANT)` if this thread is inside a callback run by the handle at
/// `p`.
pub(crate) fn refuse<T>(p: *const T, what: &str) -> Result<(), Failure> {
    let running = RUNNING.with(|r| r.borrow().contains(&(p as usize)));
    if running {
        return Err(Failure::new(
            RINGCAST_ERR_REENTRANT,
            format!("called on a {what} from inside a callback it is running: return first"),
        ));
    }
    Ok(())
}

/// Marks handles as running a callback until dropped.
pub(crate) struct Running {
    count: usize,
}

impl Running {
    /// Marks every non-NULL address in `handles`.
    pub(crate) fn mark(handles: &[*const ()]) -> Running {
        let mut count = 0;
        RUNNING.with(|r| {
            let mut r = r.borrow_mut();
            for &h in handles.iter().filter(|h| !h.is_null()) {
                r.push(h as usize);
                count += 1;
            }
        });
        Running { count }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with(|r| {
            let mut r = r.borrow_mut();
            let keep = r.len().saturating_sub(self.count);
            r.truncate(keep);
        });
    }
}
