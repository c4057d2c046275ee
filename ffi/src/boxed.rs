//! Handles across the boundary: an out-parameter cleared before the work, a new handle
//! given to C, a handle taken back to be freed.

use crate::error::Failure;

/// Checks `out` and sets `*out = NULL`, so C never sees a stale handle after a failure.
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn clear<T>(out: *mut *mut T) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null("out"));
    }
    // SAFETY: non-NULL and writable, by the caller's contract.
    unsafe { out.write(std::ptr::null_mut()) };
    Ok(())
}

/// Moves `value` to the heap and gives C the pointer in `*out`.
///
/// # Safety
/// `out` is writable (checked by [`clear`] earlier in the same call).
pub(crate) unsafe fn give<T>(out: *mut *mut T, value: T) {
    // SAFETY: writable, by the caller's contract.
    unsafe { out.write(Box::into_raw(Box::new(value))) };
}

/// Takes back a handle C gives up (`None` for NULL).
///
/// # Safety
/// `p` is NULL or a live handle from [`give`], not used again.
pub(crate) unsafe fn take<T>(p: *mut T) -> Option<Box<T>> {
    // SAFETY: from `Box::into_raw` in `give`, given back for good.
    (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
}

/// A handle that knows whether a `fork()` child inherited it from its parent.
pub(crate) trait Inheritable {
    /// Made by the process this one was forked from.
    fn inherited(&self) -> bool;
}

/// The live handle `p` (named `what` in errors), even one inherited across `fork()`:
/// for destroying it.
///
/// # Safety
/// `p` is NULL or a live handle, used by this thread only.
pub(crate) unsafe fn any<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: NULL or a live handle, by the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| Failure::null(what))
}

/// The live handle `p`, refused with `RINGCAST_ERR_INHERITED` if a `fork()` child
/// inherited it (every call but destroy).
///
/// # Safety
/// As [`any`].
pub(crate) unsafe fn own<'a, T: Inheritable>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: by the caller's contract.
    let h = unsafe { any(p, what) }?;
    if h.inherited() {
        return Err(Failure::inherited(what));
    }
    Ok(h)
}
