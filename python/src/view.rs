//! The buffer protocol of the objects that lend bytes held in a handle (a `Sample`, a
//! service `Request` or `Response`): one read-only export path, with the handle counting
//! the views alive so that nothing releases the bytes under them.

use std::ffi::c_int;

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;

/// An object whose held bytes Python may view: it counts exports while they live.
pub(crate) trait HeldBytes {
    /// What it is, for the error of a writable request ("a sample").
    const WHAT: &'static str;
    /// Counts one more export and returns the held bytes (an error if none are held).
    fn export(&self, py: Python<'_>) -> PyResult<(*const u8, usize)>;
    /// Counts one export less.
    fn unexport(&self, py: Python<'_>);
}

/// `__getbuffer__` for a [`HeldBytes`] object: a read-only view of its held bytes.
///
/// # Safety
/// `view` is Python's to fill (called from `__getbuffer__`), and `T::export`'s bytes stay
/// valid while the export count it raised is non-zero: the implementor never releases held
/// bytes with views alive (and keeps the mapping retained past a close while the object
/// lives). The view keeps `slf`, so the handle behind it, alive.
pub(crate) unsafe fn get_buffer<
    T: HeldBytes + pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync,
>(
    slf: &Bound<'_, T>,
    view: *mut ffi::Py_buffer,
    flags: c_int,
) -> PyResult<()> {
    if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
        return Err(PyBufferError::new_err(format!("{} is read-only", T::WHAT)));
    }
    let py = slf.py();
    let this = slf.get();
    let (ptr, len) = this.export(py)?;
    // SAFETY: the caller's contract: `view` is Python's to fill and the bytes stay valid
    // while the export counted above lives.
    let r = unsafe {
        ffi::PyBuffer_FillInfo(
            view,
            slf.as_ptr(),
            ptr.cast_mut().cast(),
            len as ffi::Py_ssize_t,
            1,
            flags,
        )
    };
    if r == -1 {
        this.unexport(py);
        return Err(PyErr::fetch(py));
    }
    Ok(())
}

/// `__releasebuffer__` for a [`HeldBytes`] object: a view ended.
pub(crate) fn release_buffer<
    T: HeldBytes + pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync,
>(
    slf: &Bound<'_, T>,
) {
    slf.get().unexport(slf.py());
}
