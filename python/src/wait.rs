//! Blocking without the GIL, and waking for Ctrl-C: a blocking call runs in slices of at
//! most [`SIGNAL_SLICE`] with the GIL released, and checks for signals between them.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

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
/// `Ok(None)`), or a signal handler raises (its exception, e.g. `KeyboardInterrupt`).
pub fn blocking<T: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut step: impl FnMut(Duration) -> Option<T> + Send,
) -> PyResult<Option<T>> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
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
