//! `ringcast.Publisher` and `ringcast.Loan`: send a copy, or write a loaned slot in place
//! through the (writable) buffer protocol and commit it.

use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::time::Duration;

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;

use ringcast::{Overflow, PublisherConfig};

use crate::errors;
use crate::subscriber::overflow_name;
use crate::wait::{blocking, timeout_arg, type_info, SendPtr, TypeSpec};

/// The loan a publisher has outstanding.
struct HeldLoan {
    loan: ringcast::Loan<'static>,
    data: *mut u8,
    token: u64,
    exports: usize,
}

/// A live publisher and its outstanding loan.
struct State {
    /// Borrows `*publisher` (never moves); declared first, so it is dropped (aborted)
    /// first, and every path to `*publisher` checks it is `None` first.
    loan: Option<HeldLoan>,
    publisher: NonNull<ringcast::Publisher>,
}

impl Drop for State {
    fn drop(&mut self) {
        self.loan = None;
        // SAFETY: from `Box::leak` in `Publisher::new`, freed only here, after the loan.
        drop(unsafe { Box::from_raw(self.publisher.as_ptr()) });
    }
}

/// A loan crossing back from the GIL-free closure.
struct SendLoan(ringcast::Loan<'static>);

// SAFETY: the loan borrows the publisher the caller holds exclusively (`SendPtr`).
unsafe impl Send for SendLoan {}

/// The one publisher of a topic; creating it creates the topic, closing it (or garbage
/// collection) closes the topic.
///
/// `Publisher(topic, slots=64, slot_size=4096, overflow="block", prefix=None,
/// max_subscribers=None, stall_timeout=None, message_type=None, prefault=False,
/// lock_memory=False, huge_pages=False)`; the last three fault the segment in at
/// creation, `mlock` it, and back it with huge pages (refused with `ResourceExhausted`
/// saying what to change where /dev/shm cannot give them); `message_type`
/// `(name, size, align, schema_version)` declares what the messages are, so subscribers
/// that expect another type are refused (`TypeMismatch`). `send(data)` copies any bytes-like object
/// in; `loan()` gives a writable buffer of the next slot to fill in place, then
/// `commit(length)`. Blocking calls release the GIL; Ctrl-C interrupts them.
#[pyclass(module = "ringcast")]
pub struct Publisher {
    state: Option<State>,
    topic: String,
    capacity: usize,
    overflow: Overflow,
    next_token: u64,
    /// `Loan` objects of this publisher alive now. While there are any, `close` keeps the
    /// publisher (so the topic and its mapping) alive, so that a pointer a consumer kept
    /// without keeping its buffer export (numpy's `ndarray(buffer=...)`) still points at
    /// mapped memory; the last one to go closes the topic.
    live: usize,
    /// `close` was called (the publisher may still be alive, see `live`).
    closing: bool,
}

// SAFETY: `State` is only reached through `&mut Publisher` (a `PyRefMut`, exclusive
// across threads); `ringcast::Publisher` is `Send`, and the loan borrows only it.
unsafe impl Send for Publisher {}
// SAFETY: `&self` methods read plain fields only.
unsafe impl Sync for Publisher {}

impl Publisher {
    fn state(&mut self) -> PyResult<&mut State> {
        let state = if self.closing {
            None
        } else {
            self.state.as_mut()
        };
        state.ok_or_else(|| {
            errors::Closed::new_err(format!("publisher of {} is closed", self.topic))
        })
    }

    /// The publisher, when no loan borrows it.
    fn idle(&mut self) -> PyResult<SendPtr<ringcast::Publisher>> {
        let state = self.state()?;
        if state.loan.is_some() {
            return Err(errors::busy(
                "a loan is outstanding: commit or abort it first",
            ));
        }
        Ok(SendPtr(state.publisher.as_ptr()))
    }
}

/// No room in a `Block` ring: `Full` for a call that was not to wait, else `Timeout`.
fn no_room(timeout: Option<Duration>) -> PyErr {
    if timeout == Some(Duration::ZERO) {
        errors::Full::new_err("the ring is full: the slowest subscriber holds the oldest slot")
    } else {
        errors::Timeout::new_err("no room in the ring within the timeout")
    }
}

/// A contiguous read-only view of any bytes-like object, released on drop (with the GIL).
struct View(ffi::Py_buffer);

impl View {
    fn of(obj: &Bound<'_, PyAny>) -> PyResult<View> {
        let mut v = MaybeUninit::<ffi::Py_buffer>::zeroed();
        // SAFETY: `obj` is a live object; `v` is writable; PyBUF_SIMPLE asks for a
        // contiguous byte buffer (exporters that cannot give one raise BufferError).
        if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), v.as_mut_ptr(), ffi::PyBUF_SIMPLE) } == -1
        {
            return Err(PyErr::fetch(obj.py()));
        }
        // SAFETY: filled by a successful PyObject_GetBuffer.
        Ok(View(unsafe { v.assume_init() }))
    }

    fn bytes(&self) -> &[u8] {
        if self.0.len <= 0 || self.0.buf.is_null() {
            return &[];
        }
        // SAFETY: a PyBUF_SIMPLE view is `len` contiguous bytes at `buf`, valid until the
        // view is released (in `drop`, after every use of this borrow).
        unsafe { std::slice::from_raw_parts(self.0.buf.cast::<u8>(), self.0.len as usize) }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        // SAFETY: a view from PyObject_GetBuffer, released once; views are dropped by the
        // method that made them, with the GIL held.
        unsafe { ffi::PyBuffer_Release(&mut self.0) };
    }
}

#[pymethods]
impl Publisher {
    #[new]
    #[pyo3(signature = (topic, slots=64, slot_size=4096, overflow="block", prefix=None, max_subscribers=None, stall_timeout=None, message_type=None, prefault=false, lock_memory=false, huge_pages=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        topic: String,
        slots: u64,
        slot_size: u64,
        overflow: &str,
        prefix: Option<String>,
        max_subscribers: Option<u64>,
        stall_timeout: Option<f64>,
        message_type: Option<TypeSpec>,
        prefault: bool,
        lock_memory: bool,
        huge_pages: bool,
    ) -> PyResult<Self> {
        let overflow = match overflow {
            "block" => Overflow::Block,
            "overwrite" => Overflow::Overwrite,
            other => {
                return Err(PyValueError::new_err(format!(
                    "overflow must be \"block\" or \"overwrite\", not {other:?}"
                )))
            }
        };
        let mut cfg = PublisherConfig::default()
            .slots(slots)
            .slot_size(slot_size)
            .overflow(overflow)
            .prefault(prefault)
            .lock_memory(lock_memory)
            .huge_pages(huge_pages);
        if let Some(p) = prefix {
            cfg = cfg.prefix(p);
        }
        if let Some(n) = max_subscribers {
            cfg = cfg.max_subscribers(n);
        }
        if let Some(t) = timeout_arg(stall_timeout)? {
            cfg = cfg.stall_timeout(t);
        }
        if let Some(spec) = &message_type {
            cfg = cfg.type_info(type_info(spec));
        }
        let publisher = ringcast::Publisher::create(&topic, cfg).map_err(errors::create)?;
        Ok(Publisher {
            capacity: publisher.capacity(),
            state: Some(State {
                loan: None,
                publisher: NonNull::from(Box::leak(Box::new(publisher))),
            }),
            topic,
            overflow,
            next_token: 0,
            live: 0,
            closing: false,
        })
    }

    /// Copies `data` (any contiguous bytes-like object) into the next slot and publishes
    /// it; returns its sequence number. Under `Block` waits for room, at most `timeout`
    /// seconds (`None`: for ever; then `Timeout`; `0`: not at all, then `Full`).
    /// `TooLarge` if it exceeds the slot.
    #[pyo3(signature = (data, timeout=None))]
    fn send(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        let timeout = timeout_arg(timeout)?;
        let view = View::of(data)?;
        let len = view.bytes().len();
        if len > self.capacity {
            return Err(errors::TooLarge::new_err(format!(
                "message of {len} bytes does not fit a {}-byte slot",
                self.capacity
            )));
        }
        let ptr = self.idle()?;
        // Wait for room without the GIL; copy with it (another Python thread may write a
        // bytearray source, but not while we hold the GIL).
        let loan = blocking(py, timeout, |slice| {
            // SAFETY: no loan borrows the publisher (checked by `idle`) and `&mut self`
            // keeps every other thread away; the loan is committed below, before anything
            // else can reach the publisher.
            let p = unsafe { &mut *ptr.get() };
            p.loan_timeout(slice).ok().map(SendLoan)
        })?;
        let Some(SendLoan(mut loan)) = loan else {
            return Err(no_room(timeout));
        };
        loan.write_at(0, view.bytes());
        Ok(loan.commit(len))
    }

    /// Loans the next slot for an in-place write: a `Loan`, a writable buffer of
    /// `slot_size` bytes. Fill it, then `commit(length)`; leaving a `with` block without a
    /// commit aborts it. Under `Block` waits for room (at most `timeout` seconds).
    #[pyo3(signature = (timeout=None))]
    fn loan(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Loan> {
        let py = slf.py();
        let timeout = timeout_arg(timeout)?;
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the publisher is in use by another thread"))?;
        let ptr = this.idle()?;
        let got = blocking(py, timeout, |slice| {
            // SAFETY: as in `send`; the loan returned borrows the publisher and is kept in
            // `State::loan`, which every other path checks first.
            let p = unsafe { &mut *ptr.get() };
            p.loan_timeout(slice).ok().map(SendLoan)
        })?;
        let Some(SendLoan(mut loan)) = got else {
            return Err(no_room(timeout));
        };
        this.next_token += 1;
        let token = this.next_token;
        let out = Loan {
            publisher: slf.clone().unbind(),
            token,
            seq: loan.seq(),
            capacity: loan.len(),
        };
        this.live += 1;
        let data = loan.as_mut_ptr();
        this.state()?.loan = Some(HeldLoan {
            loan,
            data,
            token,
            exports: 0,
        });
        Ok(out)
    }

    /// Waits until at least `n` subscribers are attached, at most `timeout` seconds
    /// (`None`: for ever); returns whether they are.
    #[pyo3(signature = (n, timeout=None))]
    fn wait_for_subscribers(
        &mut self,
        py: Python<'_>,
        n: usize,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let timeout = timeout_arg(timeout)?;
        let ptr = self.idle()?;
        let done = blocking(py, timeout, |slice| {
            // SAFETY: as in `send`.
            let p = unsafe { &mut *ptr.get() };
            p.wait_for_subscribers(n, slice).ok()
        })?;
        Ok(done.is_some())
    }

    /// Subscribers attached and alive now.
    fn subscriber_count(&mut self) -> PyResult<usize> {
        let ptr = self.idle()?;
        // SAFETY: as in `send`.
        Ok(unsafe { &mut *ptr.get() }.subscriber_count())
    }

    /// The topic's name.
    #[getter]
    fn topic(&self) -> &str {
        &self.topic
    }

    /// The largest message, in bytes.
    #[getter]
    fn slot_size(&self) -> usize {
        self.capacity
    }

    /// `"block"` or `"overwrite"`.
    #[getter]
    fn overflow(&self) -> &'static str {
        overflow_name(self.overflow)
    }

    /// Closes the topic (subscribers drain it, then see `Disconnected`); an outstanding
    /// loan is aborted. `BufferError` while a view of the loan is alive.
    fn close(&mut self) -> PyResult<()> {
        if self
            .state
            .as_ref()
            .and_then(|s| s.loan.as_ref())
            .is_some_and(|l| l.exports > 0)
        {
            return Err(PyBufferError::new_err(
                "cannot close: a view of the loan is alive",
            ));
        }
        self.closing = true;
        if let Some(s) = self.state.as_mut() {
            s.loan = None;
        }
        if self.live == 0 {
            self.state = None;
        }
        Ok(())
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*args))]
    fn __exit__(&mut self, args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        let r = self.close();
        if !crate::subscriber::in_flight(args) {
            r?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<ringcast.Publisher topic={:?} slot_size={} overflow={}{}>",
            self.topic,
            self.capacity,
            overflow_name(self.overflow),
            if self.state.is_none() { " closed" } else { "" }
        )
    }
}

/// A loaned slot: a writable buffer (`memoryview(loan)`, `numpy.frombuffer(loan,
/// dtype)`) of `len(loan)` bytes in shared memory. `commit(length)` publishes the first
/// `length` bytes; `abort()` (or leaving a `with` block without a commit) drops it.
/// Views must be gone before either (`BufferError`), so no write can reach a slot after
/// it is published.
#[pyclass(module = "ringcast", frozen)]
pub struct Loan {
    publisher: Py<Publisher>,
    token: u64,
    seq: u64,
    capacity: usize,
}

impl Loan {
    fn with_held<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut State) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut p = self
            .publisher
            .bind(py)
            .try_borrow_mut()
            .map_err(|_| PyBufferError::new_err("the publisher is in use by another thread"))?;
        match p.state.as_mut() {
            Some(s) if s.loan.as_ref().is_some_and(|l| l.token == self.token) => f(s),
            _ => Err(PyBufferError::new_err(format!(
                "loan {} was committed or aborted already",
                self.seq
            ))),
        }
    }

    fn take(&self, py: Python<'_>, what: &str) -> PyResult<Option<HeldLoan>> {
        self.with_held(py, |s| {
            let exports = s.loan.as_ref().map_or(0, |l| l.exports);
            if exports > 0 {
                return Err(PyBufferError::new_err(format!(
                    "cannot {what} loan {}: {exports} view(s) of it are alive",
                    self.seq
                )));
            }
            Ok(s.loan.take())
        })
    }
}

#[pymethods]
impl Loan {
    /// The sequence number the message will have.
    #[getter]
    fn seq(&self) -> u64 {
        self.seq
    }

    fn __len__(&self) -> usize {
        self.capacity
    }

    /// Copies `data` into the slot at `offset` (no view needed).
    #[pyo3(signature = (data, offset=0))]
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>, offset: usize) -> PyResult<()> {
        let view = View::of(data)?;
        let bytes = view.bytes();
        if offset
            .checked_add(bytes.len())
            .is_none_or(|end| end > self.capacity)
        {
            return Err(errors::TooLarge::new_err(format!(
                "{} bytes at offset {offset} pass the end of a {}-byte slot",
                bytes.len(),
                self.capacity
            )));
        }
        self.with_held(py, |s| {
            if let Some(l) = s.loan.as_mut() {
                // A source inside the slot itself (a view of this loan) would alias the
                // write: copy it out first.
                let slot = l.data as usize..l.data as usize + self.capacity;
                let src = bytes.as_ptr() as usize;
                if slot.contains(&src) || slot.contains(&(src + bytes.len().saturating_sub(1))) {
                    let copy = bytes.to_vec();
                    l.loan.write_at(offset, &copy);
                } else {
                    l.loan.write_at(offset, bytes);
                }
            }
            Ok(())
        })
    }

    /// Publishes the first `length` bytes; returns the sequence number.
    fn commit(&self, py: Python<'_>, length: usize) -> PyResult<u64> {
        if length > self.capacity {
            return Err(errors::TooLarge::new_err(format!(
                "commit of {length} bytes into a {}-byte slot",
                self.capacity
            )));
        }
        let held = self.take(py, "commit")?;
        Ok(held.map_or(self.seq, |h| h.loan.commit(length)))
    }

    /// Abandons the loan: nothing is published (the next loan reuses the slot).
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        self.take(py, "abort").map(drop)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*args))]
    fn __exit__(&self, py: Python<'_>, args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        // Committed already: nothing to do; else abort.
        if self.with_held(py, |_| Ok(())).is_ok() {
            let r = self.abort(py);
            if !crate::subscriber::in_flight(args) {
                r?;
            }
        }
        Ok(false)
    }

    /// Buffer protocol: a writable view of the slot.
    ///
    /// # Safety
    /// Called by Python with a valid `view` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let data = this.with_held(py, |s| {
            let l = s.loan.as_mut().expect("checked by with_held");
            l.exports += 1;
            Ok(l.data)
        })?;
        // SAFETY: `view` is Python's to fill; the slot stays loaned (so valid and ours to
        // write) while the export count is non-zero, and the view keeps `slf` alive.
        let r = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                data.cast(),
                this.capacity as ffi::Py_ssize_t,
                0,
                flags,
            )
        };
        if r == -1 {
            let _ = this.with_held(py, |s| {
                if let Some(l) = s.loan.as_mut() {
                    l.exports -= 1;
                }
                Ok(())
            });
            return Err(PyErr::fetch(py));
        }
        Ok(())
    }

    /// Buffer protocol: a view ended.
    ///
    /// # Safety
    /// Called by Python for a view this object filled.
    unsafe fn __releasebuffer__(slf: Bound<'_, Self>, _view: *mut ffi::Py_buffer) {
        let _ = slf.get().with_held(slf.py(), |s| {
            if let Some(l) = s.loan.as_mut() {
                l.exports = l.exports.saturating_sub(1);
            }
            Ok(())
        });
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        // An uncommitted loan nobody can reach any more is aborted. (Contended, the count
        // stays up and the publisher's own drop closes the topic.)
        Python::attach(|py| {
            let _ = self.abort(py);
            if let Ok(mut p) = self.publisher.bind(py).try_borrow_mut() {
                p.live = p.live.saturating_sub(1);
                if p.closing && p.live == 0 {
                    p.state = None;
                }
            }
        });
    }
}
