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
use crate::keep::{Keep, Ticket};
use crate::subscriber::overflow_name;
use crate::wait::{blocking, holder, timeout_arg, type_info, TypeSpec};

/// The Python side of the slot the publisher has claimed (`Publisher::pending_loan`).
struct HeldLoan {
    /// The loan's bytes (the slot under `block`, the publisher's staging buffer under
    /// `overwrite`): valid while the claim stands and the publisher (or what a close
    /// retained) lives.
    data: NonNull<u8>,
    token: u64,
    exports: usize,
}

// SAFETY: `data` points into memory owned by the publisher in the same `Publisher`
// object (or what its `keep` retained at a close), reached only through `&mut Publisher`.
unsafe impl Send for HeldLoan {}
// SAFETY: as for `Send`; `&HeldLoan` gives only the address.
unsafe impl Sync for HeldLoan {}

/// A live publisher and which of its claims Python holds.
struct State {
    publisher: ringcast::Publisher,
    loan: Option<HeldLoan>,
}

// SAFETY: `ringcast::Publisher` is `Send` but not `Sync` (one thread publishes at a time):
// a `State` is reached only through `&mut Publisher` (a `PyRefMut`, exclusive across
// threads), never shared.
unsafe impl Sync for State {}

/// A publisher of a topic; creating the first creates the topic, closing the last (or
/// garbage collection) closes it.
///
/// `Publisher(topic, slots=64, slot_size=4096, overflow="block", prefix=None,
/// max_subscribers=None, stall_timeout=None, message_type=None, prefault=False,
/// lock_memory=False, huge_pages=False, mode=0o600, max_publishers=1)`;
/// `max_publishers` is how many publishers the topic admits at once (1: this one's alone,
/// a second raises `AlreadyExists`): with more, a later `Publisher` of the same topic
/// with the same configuration joins it in a lane of its own (`Mismatch` names a
/// difference, `PublishersFull` says every lane is live), subscribers get every
/// publisher's messages (`Sample.publisher` says whose, each publisher's in its order),
/// and the topic lives until its last publisher closes; `mode` is the segment's permission
/// bits (0o600: only this user may attach); prefault / lock_memory / huge_pages fault the segment in at
/// creation, `mlock` it, and back it with huge pages (refused with `ResourceExhausted`
/// saying what to change where /dev/shm cannot give them); `message_type`
/// `(name, size, align, schema_version)` declares what the messages are, so subscribers
/// that expect another type are refused (`TypeMismatch`). `send(data)` copies any bytes-like object
/// in; `loan()` gives a writable buffer of the next slot to fill in place, then
/// `commit(length)`. Blocking calls release the GIL; Ctrl-C interrupts them.
#[pyclass(module = "ringcast")]
pub struct Publisher {
    /// The fork generation it was made in (see `crate::fork`).
    epoch: ringcast::fork::Lineage,
    /// `None` once closed.
    state: Option<State>,
    /// Its `Loan` objects alive, and after a close the mapping and staging buffer their
    /// pointers may point into (see `crate::keep`).
    keep: Keep,
    topic: String,
    capacity: usize,
    overflow: Overflow,
    /// `(lane, writer)`: who this publisher is to subscribers.
    id: (u32, u32),
    next_token: u64,
}

impl Publisher {
    /// The state, unless closed, or inherited across `fork()` (then forgotten, never
    /// dropped: see `crate::fork`).
    fn live_state(&mut self) -> Option<&mut State> {
        let _ = crate::fork::inherited(self.epoch, &mut self.state, "");
        self.state.as_mut()
    }

    fn state(&mut self) -> PyResult<&mut State> {
        let topic = &self.topic;
        if let Some(e) = crate::fork::inherited(self.epoch, &mut self.state, "this publisher") {
            return Err(e);
        }
        self.state
            .as_mut()
            .ok_or_else(|| errors::Closed::new_err(format!("publisher of {topic} is closed")))
    }

    /// The publisher, when Python holds no loan of it.
    fn idle(&mut self) -> PyResult<&mut ringcast::Publisher> {
        let state = self.state()?;
        if state.loan.is_some() {
            return Err(errors::busy(
                "a loan is outstanding: commit or abort it first",
            ));
        }
        Ok(&mut state.publisher)
    }

    /// Claims the next slot, waiting for room without the GIL up to `timeout`; `false`
    /// if there was none in time.
    fn claim(
        &mut self,
        py: Python<'_>,
        holder: Option<usize>,
        timeout: Option<Duration>,
    ) -> PyResult<bool> {
        let publisher = self.idle()?;
        let claimed = if timeout == Some(Duration::ZERO) {
            publisher.try_loan().is_ok()
        } else {
            // The loan is dropped uncommitted: its slot stays claimed for `pending_loan`.
            blocking(py, holder, timeout, |slice| {
                publisher.loan_timeout(slice).ok().map(drop)
            })?
            .is_some()
        };
        Ok(claimed)
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
pub(crate) struct View(ffi::Py_buffer);

impl View {
    pub(crate) fn of(obj: &Bound<'_, PyAny>) -> PyResult<View> {
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

    /// The bytes' address and length, without forming a reference.
    fn raw(&self) -> (*const u8, usize) {
        if self.0.len <= 0 || self.0.buf.is_null() {
            return (std::ptr::NonNull::dangling().as_ptr(), 0);
        }
        (self.0.buf.cast::<u8>(), self.0.len as usize)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
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
    #[pyo3(signature = (topic, slots=64, slot_size=4096, overflow="block", prefix=None, max_subscribers=None, stall_timeout=None, message_type=None, prefault=false, lock_memory=false, huge_pages=false, mode=0o600, max_publishers=1))]
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
        mode: u32,
        max_publishers: u64,
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
            .huge_pages(huge_pages)
            .mode(mode)
            .max_publishers(max_publishers);
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
        let id = publisher.id();
        Ok(Publisher {
            epoch: crate::fork::epoch(),
            capacity: publisher.capacity(),
            id: (id.lane, id.writer),
            state: Some(State {
                publisher,
                loan: None,
            }),
            keep: Keep::default(),
            topic,
            overflow,
            next_token: 0,
        })
    }

    /// Copies `data` (any contiguous bytes-like object) into the next slot and publishes
    /// it; returns its sequence number. Under `Block` waits for room, at most `timeout`
    /// seconds (`None`: for ever; then `Timeout`; `0`: not at all, then `Full`).
    /// `TooLarge` if it exceeds the slot.
    #[pyo3(signature = (data, timeout=None))]
    fn send(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<u64> {
        let py = slf.py();
        let timeout = timeout_arg(timeout)?;
        let view = View::of(data)?;
        let len = view.bytes().len();
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the publisher is in use by another thread"))?;
        if len > this.capacity {
            return Err(errors::TooLarge::new_err(format!(
                "message of {len} bytes does not fit a {}-byte slot",
                this.capacity
            )));
        }
        // Wait for room without the GIL; copy with it (another Python thread may write a
        // bytearray source, but not while we hold the GIL).
        if !this.claim(py, holder(slf), timeout)? {
            return Err(no_room(timeout));
        }
        // The slot is claimed: this takes it at once, copying straight into it.
        this.idle()?
            .try_send(view.bytes())
            .map_err(|e| errors::Full::new_err(e.to_string()))
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
        if !this.claim(py, holder(slf), timeout)? {
            return Err(no_room(timeout));
        }
        this.next_token += 1;
        let token = this.next_token;
        let state = this.state()?;
        let mut loan = state.publisher.pending_loan().expect("claimed just above");
        let (seq, capacity) = (loan.seq(), loan.len());
        let data = NonNull::new(loan.as_mut_ptr()).expect("a loan's bytes are never at NULL");
        state.loan = Some(HeldLoan {
            data,
            token,
            exports: 0,
        });
        Ok(Loan {
            _ticket: this.keep.ticket(),
            publisher: slf.clone().unbind(),
            token,
            seq,
            capacity,
        })
    }

    /// Waits until at least `n` subscribers are attached, at most `timeout` seconds
    /// (`None`: for ever); returns whether they are.
    #[pyo3(signature = (n, timeout=None))]
    fn wait_for_subscribers(
        slf: &Bound<'_, Self>,
        n: usize,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let timeout = timeout_arg(timeout)?;
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the publisher is in use by another thread"))?;
        let p = this.idle()?;
        let done = blocking(slf.py(), holder(slf), timeout, |slice| {
            p.wait_for_subscribers(n, slice).ok()
        })?;
        Ok(done.is_some())
    }

    /// Subscribers attached and alive now.
    fn subscriber_count(&mut self) -> PyResult<usize> {
        Ok(self.state()?.publisher.subscriber_count())
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

    /// The lane this publisher writes: 0 on a topic with one publisher, else which of the
    /// topic's `max_publishers` lanes it took.
    #[getter]
    fn lane(&self) -> u32 {
        self.id.0
    }

    /// `(lane, writer)`: this publisher as subscribers see it in `Sample.publisher` (a
    /// publisher that takes over a lane another left has a new `writer` there).
    #[getter]
    fn id(&self) -> (u32, u32) {
        self.id
    }

    /// `"block"` or `"overwrite"`.
    #[getter]
    fn overflow(&self) -> &'static str {
        overflow_name(self.overflow)
    }

    /// Leaves the topic now and aborts an outstanding loan; every later call raises
    /// `Closed`. The last publisher to leave closes the topic (subscribers drain it, then
    /// see `Disconnected`; the name is free again); before that, subscribers drain this
    /// publisher's lane and the others go on. A
    /// view of that loan still alive keeps its memory mapped, but writes to it reach
    /// nobody. Closing twice does nothing.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        crate::wait::close(slf, |this| {
            // Inherited across fork(): forgotten, never closed (see `crate::fork`).
            let _ = this.live_state();
            if let Some(state) = this.state.take() {
                this.keep.hold(state.publisher.close_retaining());
            }
        })
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*args))]
    fn __exit__(slf: &Bound<'_, Self>, args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        let _ = args;
        Self::close(slf)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<ringcast.Publisher topic={:?} slot_size={} overflow={} id={:?}{}>",
            self.topic,
            self.capacity,
            overflow_name(self.overflow),
            self.id,
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
    /// Counted in its publisher's `keep` while it lives (its memory stays mapped).
    _ticket: Ticket,
    publisher: Py<Publisher>,
    token: u64,
    seq: u64,
    capacity: usize,
}

impl Loan {
    /// Runs `f` on the publisher's state if this loan is still the held one.
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
        match p.live_state() {
            Some(s) if s.loan.as_ref().is_some_and(|l| l.token == self.token) => f(s),
            Some(_) => Err(PyBufferError::new_err(format!(
                "loan {} was committed or aborted already",
                self.seq
            ))),
            None => Err(errors::Closed::new_err(format!(
                "loan {}: its publisher is closed",
                self.seq
            ))),
        }
    }

    /// Ends Python's hold on the loan (no views may be alive) and runs `f` on the
    /// publisher, whose claim still stands.
    fn finish<R>(
        &self,
        py: Python<'_>,
        what: &str,
        f: impl FnOnce(&mut ringcast::Publisher) -> R,
    ) -> PyResult<R> {
        self.with_held(py, |s| {
            let exports = s.loan.as_ref().map_or(0, |l| l.exports);
            if exports > 0 {
                return Err(PyBufferError::new_err(format!(
                    "cannot {what} loan {}: {exports} view(s) of it are alive",
                    self.seq
                )));
            }
            s.loan = None;
            Ok(f(&mut s.publisher))
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
        let (src, len) = view.raw();
        if offset
            .checked_add(len)
            .is_none_or(|end| end > self.capacity)
        {
            return Err(errors::TooLarge::new_err(format!(
                "{len} bytes at offset {offset} pass the end of a {}-byte slot",
                self.capacity
            )));
        }
        self.with_held(py, |s| {
            let l = s.loan.as_ref().expect("checked by with_held");
            // SAFETY: `offset + len <= capacity` (checked), and the loan's bytes are ours
            // to write while it is held; `ptr::copy` is a memmove, so a source inside the
            // slot itself (a view of this loan) is copied correctly, and no reference to
            // either side is formed.
            unsafe { std::ptr::copy(src, l.data.as_ptr().add(offset), len) };
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
        self.finish(py, "commit", |p| {
            p.pending_loan()
                .expect("a held loan's slot stays claimed")
                .commit(length)
        })
    }

    /// Abandons the loan: nothing is published (the next loan reuses the slot).
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        self.finish(py, "abort", |_| ())
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*args))]
    fn __exit__(&self, py: Python<'_>, args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        // Committed already (or closed): nothing to do; else abort.
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
            Ok(l.data.as_ptr())
        })?;
        // SAFETY: `view` is Python's to fill; the loan stays held (so valid and ours to
        // write) while the export count is non-zero, a close keeps its memory in the
        // publisher's `keep` while this `Loan` (its ticket) lives, and the view keeps
        // `slf` alive.
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
        // An uncommitted loan nobody can reach any more is aborted. (Its count in the
        // publisher's `keep` goes with its ticket.)
        Python::attach(|py| {
            let _ = self.abort(py);
        });
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // A copy inherited across fork() is forgotten, not dropped: its drop would act on
        // the parent's topic (see `crate::fork`).
        let _ = self.live_state();
    }
}
