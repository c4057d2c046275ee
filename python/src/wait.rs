//! Blocking without the GIL, and waking for Ctrl-C or a close: a blocking call runs in
//! slices of at most [`SIGNAL_SLICE`] with the GIL released, and checks between them for
//! signals and for a `close()` of its handle from another thread ([`close`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pyclass::boolean_struct::False;
use pyo3::PyClass;

use crate::errors;

/// The handles (their Python objects' addresses) whose `close()` was called while
/// another thread's call held them: that call ends with `Closed` at its next look.
static CLOSE_ASKED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// How long `close()` waits for another thread's call on the handle to let go of it.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

fn close_asked(holder: usize) -> bool {
    CLOSE_ASKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&holder)
}

/// The key of a handle's blocking calls (see [`blocking`]).
pub fn holder<T>(slf: &Bound<'_, T>) -> Option<usize> {
    Some(slf.as_ptr() as usize)
}

/// A handle's `close()`, from any thread: runs `close` on the handle at once if no other
/// thread's call holds it; else asks that call to end (it raises `Closed` within about
/// [`SIGNAL_SLICE`]) and runs `close` once it has, waiting at most [`CLOSE_WAIT`] without
/// the GIL (then `Busy`: a call that never looks, which no blocking call is).
pub fn close<T: PyClass<Frozen = False>>(
    slf: &Bound<'_, T>,
    close: impl Fn(&mut T),
) -> PyResult<()> {
    if let Ok(mut this) = slf.try_borrow_mut() {
        close(&mut this);
        return Ok(());
    }
    let key = slf.as_ptr() as usize;
    CLOSE_ASKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(key);
    /// Takes the request back however the wait ends.
    struct Unask(usize);
    impl Drop for Unask {
        fn drop(&mut self) {
            let mut asked = CLOSE_ASKED.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = asked.iter().position(|&k| k == self.0) {
                asked.swap_remove(i);
            }
        }
    }
    let _unask = Unask(key);
    let py = slf.py();
    let deadline = Instant::now() + CLOSE_WAIT;
    loop {
        py.detach(|| std::thread::sleep(Duration::from_millis(1)));
        if let Ok(mut this) = slf.try_borrow_mut() {
            close(&mut this);
            return Ok(());
        }
        py.check_signals()?;
        if Instant::now() >= deadline {
            return Err(errors::busy(format!(
                "close: the handle is still in use by another thread after {CLOSE_WAIT:?}"
            )));
        }
    }
}

/// Longest stretch a blocking call spends without looking at signals: a Ctrl-C raises
/// `KeyboardInterrupt` within about this long.
pub const SIGNAL_SLICE: Duration = Duration::from_millis(50);

/// A timeout in seconds from Python: `None` waits for ever; negative or NaN is an error.
pub fn timeout_arg(t: Option<f64>) -> PyResult<Option<Duration>> {
    match t {
        None => Ok(None),
        // Longer than a Duration holds (or infinite): for ever.
        Some(s) if s >= 0.0 => Ok(Duration::try_from_secs_f64(s).ok()),
        Some(s) => Err(PyValueError::new_err(format!(
            "timeout must be None or a number of seconds >= 0, not {s}"
        ))),
    }
}

/// A message type from Python: `(name, size, align, schema_version)`, the fingerprint a
/// typed topic carries (Rust's typed topics use the archived type's name, size and
/// alignment).
pub type TypeSpec = (String, usize, usize, u64);

/// The fingerprint of a [`TypeSpec`].
pub fn type_info(spec: &TypeSpec) -> ringcast::TypeInfo {
    ringcast::TypeInfo::new(&spec.0, spec.1, spec.2, spec.3)
}

/// Calls `step` with the GIL released, in slices of at most [`SIGNAL_SLICE`] (the
/// argument is the slice's length), until it returns `Some`, `timeout` passes (then
/// `Ok(None)`), a signal handler raises (its exception, e.g. `KeyboardInterrupt`), or
/// another thread closes the handle `holder` (see [`holder`]; `Closed`).
pub fn blocking<T: Send>(
    py: Python<'_>,
    holder: Option<usize>,
    timeout: Option<Duration>,
    mut step: impl FnMut(Duration) -> Option<T> + Send,
) -> PyResult<Option<T>> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        if holder.is_some_and(close_asked) {
            return Err(errors::Closed::new_err(
                "closed by another thread while this call waited",
            ));
        }
        let slice = match deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(SIGNAL_SLICE),
            None => SIGNAL_SLICE,
        };
        if let Some(v) = py.detach(|| step(slice)) {
            return Ok(Some(v));
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}
