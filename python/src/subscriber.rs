//! `ringcast.Subscriber` and `ringcast.Sample`: receive, and read in place through the
//! buffer protocol.
//!
//! A subscriber holds at most one sample (as in Rust, where a sample borrows its
//! subscriber). The next receive releases the previous sample itself, unless a buffer
//! view of it (a numpy array, a memoryview) is still alive: then it raises `Busy`, because
//! the view would read a slot the publisher may reuse. `release()` with views alive raises
//! `BufferError`. So a view can never outlive the slot it shows.

use std::ffi::c_int;
use std::time::Duration;

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use ringcast::{Overflow, RecvTimeoutError, Start, SubscriberOptions};

use crate::errors;
use crate::keep::{Keep, Ticket};
use crate::view;
use crate::wait::{blocking, holder, timeout_arg, type_info, TypeSpec};

/// The Python side of the message the subscriber keeps (`try_recv_kept`).
struct Held {
    /// Which receive this is (matches the Python `Sample` of that receive).
    token: u64,
    /// Buffer views of it alive now.
    exports: usize,
}

/// A live subscriber and which of its kept messages Python holds.
struct State {
    sub: ringcast::Subscriber,
    held: Option<Held>,
}

/// A subscriber of one topic, attached by name.
///
/// `Subscriber(topic, wait=None, start="latest", prefix=None, max_slot_size=None,
/// expect_type=None, prefault=False, lock_memory=False, release_batch=None)`: `wait` is
/// how many seconds to wait for a live publisher to create the topic (`None`: not at
/// all); `expect_type` `(name, size, align, schema_version)` refuses a topic of another
/// message type (`TypeMismatch`; `None`: any); `prefault` / `lock_memory` fault the
/// mapping in at attach and `mlock` it; `release_batch` (`block` topics) hands released
/// slots back in runs of up to that many while more messages wait (`None` or 1: every
/// slot at once); `trust_users` / `trust_groups` (lists of ids) / `trust_any_owner` attach
/// to topics of other owners too (by default only the process's own user and root are
/// trusted: another user's segment raises `UntrustedOwner`); `monitor=True` attaches as a
/// monitor, which never holds the publisher back (for diagnostic tools: on a `block`
/// topic it reads copies and loses, and counts in `lost`, what the publisher laps; it is
/// not counted by `subscriber_count`). Receive with
/// `recv(timeout=None)`, `try_recv()`, or by iterating (which
/// ends when every publisher is gone and everything was received; lag is skipped and
/// counted in `lost`). One thread uses a subscriber at a time; blocking calls release the
/// GIL, so other threads run meanwhile. `close()` detaches at once.
#[pyclass(module = "ringcast", subclass)]
pub struct Subscriber {
    /// The fork generation it was made in (see `crate::fork`).
    epoch: ringcast::fork::Lineage,
    /// `None` once closed.
    state: Option<State>,
    /// Its `Sample` objects alive, and after a close the mapping and copy buffer their
    /// pointers may point into (see `crate::keep`).
    keep: Keep,
    topic: String,
    overflow: Overflow,
    monitor: bool,
    next_token: u64,
    lost: u64,
    /// The lane of the last `Lagged`.
    lag_lane: u32,
}

impl Subscriber {
    /// The state, unless closed, or inherited across `fork()` (then forgotten, never
    /// dropped: see `crate::fork`).
    fn live_state(&mut self) -> Option<&mut State> {
        let _ = crate::fork::inherited(self.epoch, &mut self.state, "");
        self.state.as_mut()
    }

    fn state(&mut self) -> PyResult<&mut State> {
        let topic = &self.topic;
        if let Some(e) = crate::fork::inherited(self.epoch, &mut self.state, "this subscriber") {
            return Err(e);
        }
        self.state
            .as_mut()
            .ok_or_else(|| errors::Closed::new_err(format!("subscriber of {topic} is closed")))
    }

    /// Releases the held sample unless it is still viewed.
    fn release_held(&mut self) -> PyResult<()> {
        let state = self.state()?;
        if let Some(h) = &state.held {
            if h.exports > 0 {
                return Err(errors::busy(format!(
                    "the previous sample ({}) is still viewed by {} buffer(s) (numpy arrays, \
                     memoryviews): delete them, or copy the data, before receiving again",
                    state.sub.kept_info().map_or(0, |k| k.seq),
                    h.exports
                )));
            }
        }
        state.held = None;
        state.sub.release_kept();
        Ok(())
    }

    /// Makes the Python `Sample` of the message just kept (`slf` is `self`).
    fn hold(&mut self, slf: &Bound<'_, Self>, kept: ringcast::Kept) -> PyResult<Sample> {
        self.next_token += 1;
        let token = self.next_token;
        self.state()?.held = Some(Held { token, exports: 0 });
        Ok(Sample {
            _ticket: self.keep.ticket(),
            sub: slf.clone().unbind(),
            token,
            seq: kept.seq,
            len: kept.len,
            publisher: (kept.publisher.lane, kept.publisher.writer),
        })
    }

    /// Receives once (`timeout` `Some(0)`: no wait) and holds the sample.
    fn receive(
        slf: &Bound<'_, Self>,
        timeout: Option<Duration>,
    ) -> PyResult<Result<Sample, RecvTimeoutError>> {
        let py = slf.py();
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the subscriber is in use by another thread"))?;
        this.release_held()?;
        let sub = &mut this.state()?.sub;
        let got = if timeout == Some(Duration::ZERO) {
            Some(sub.try_recv_kept().map_err(RecvTimeoutError::from))
        } else {
            blocking(py, holder(slf), timeout, |slice| {
                match sub.recv_kept_timeout(slice) {
                    Err(RecvTimeoutError::Timeout) => None,
                    r => Some(r),
                }
            })?
        };
        let kept = match got {
            None => return Ok(Err(RecvTimeoutError::Timeout)),
            Some(Err(RecvTimeoutError::Lagged(n))) => {
                this.lag_lane = this.state()?.sub.lagged_lane();
                this.lost += n;
                return Ok(Err(RecvTimeoutError::Lagged(n)));
            }
            Some(Err(e)) => return Ok(Err(e)),
            Some(Ok(k)) => k,
        };
        Ok(Ok(this.hold(slf, kept)?))
    }

    /// A receive failure as its exception (a `Lagged` names the lane).
    fn error(slf: &Bound<'_, Self>, e: RecvTimeoutError) -> PyErr {
        let lane = slf.try_borrow().map_or(0, |s| s.lag_lane);
        errors::recv(slf.py(), e, lane)
    }
}

/// A waker that calls a Python callable (on the reactor thread, with the GIL).
struct PyWaker(Py<PyAny>);

impl std::task::Wake for PyWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        Python::attach(|py| {
            // An exception here (a closed event loop) has nobody to go to.
            let _ = self.0.call0(py);
        });
    }
}

pub(crate) fn py_waker(callback: Py<PyAny>) -> std::task::Waker {
    std::task::Waker::from(std::sync::Arc::new(PyWaker(callback)))
}

#[pymethods]
impl Subscriber {
    #[new]
    #[pyo3(signature = (topic, wait=None, start="latest", prefix=None, max_slot_size=None, expect_type=None, prefault=false, lock_memory=false, release_batch=None, trust_users=None, trust_groups=None, trust_any_owner=false, monitor=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        topic: String,
        wait: Option<f64>,
        start: &str,
        prefix: Option<String>,
        max_slot_size: Option<u64>,
        expect_type: Option<TypeSpec>,
        prefault: bool,
        lock_memory: bool,
        release_batch: Option<u64>,
        trust_users: Option<Vec<u32>>,
        trust_groups: Option<Vec<u32>>,
        trust_any_owner: bool,
        monitor: bool,
    ) -> PyResult<Self> {
        let mut opts = SubscriberOptions::default().start(match start {
            "latest" => Start::Latest,
            "oldest" => Start::Oldest,
            other => {
                return Err(PyValueError::new_err(format!(
                    "start must be \"latest\" or \"oldest\", not {other:?}"
                )))
            }
        });
        if let Some(p) = prefix {
            opts = opts.prefix(p);
        }
        if let Some(m) = max_slot_size {
            opts = opts.max_slot_size(m);
        }
        opts = opts.prefault(prefault).lock_memory(lock_memory);
        if let Some(b) = release_batch {
            opts = opts.release_batch(b);
        }
        if let Some(spec) = &expect_type {
            opts = opts.expect_type(type_info(spec));
        }
        for uid in trust_users.unwrap_or_default() {
            opts = opts.trust_user(uid);
        }
        for gid in trust_groups.unwrap_or_default() {
            opts = opts.trust_group(gid);
        }
        if trust_any_owner {
            opts = opts.trust_any_owner();
        }
        if monitor {
            opts = opts.monitor();
        }
        let sub = match timeout_arg(wait)? {
            None if wait.is_none() => ringcast::Subscriber::attach(&topic, opts),
            limit => {
                let attached =
                    blocking(
                        py,
                        None,
                        limit,
                        |slice| match ringcast::Subscriber::attach_wait(&topic, opts.clone(), slice)
                        {
                            Err(ringcast::AttachError::NotFound { .. })
                            | Err(ringcast::AttachError::NotReady { .. })
                            | Err(ringcast::AttachError::Closed { .. }) => None,
                            r => Some(r),
                        },
                    )?;
                match attached {
                    Some(r) => r,
                    None => ringcast::Subscriber::attach_wait(&topic, opts, Duration::ZERO),
                }
            }
        }
        .map_err(errors::attach)?;
        let overflow = sub.overflow();
        Ok(Subscriber {
            epoch: crate::fork::epoch(),
            state: Some(State { sub, held: None }),
            keep: Keep::default(),
            topic,
            overflow,
            monitor,
            next_token: 0,
            lost: 0,
            lag_lane: 0,
        })
    }

    /// The next message, waiting at most `timeout` seconds (`None`: for ever). Raises
    /// `Timeout`, `Lagged` (with `.lost` and `.lane`; the next receive from that lane
    /// resumes at its oldest message still intact), `Disconnected` (every publisher is gone
    /// and everything was received) or `Evicted`. Releases the GIL while it waits; Ctrl-C
    /// interrupts it.
    #[pyo3(signature = (timeout=None))]
    fn recv(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Sample> {
        let timeout = timeout_arg(timeout)?;
        Self::receive(slf, timeout)?.map_err(|e| Self::error(slf, e))
    }

    /// The next message if there is one now, else `None`; raises as `recv` otherwise.
    fn try_recv(slf: &Bound<'_, Self>) -> PyResult<Option<Sample>> {
        match Self::receive(slf, Some(Duration::ZERO))? {
            Ok(s) => Ok(Some(s)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(e) => Err(Self::error(slf, e)),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next message; the iteration ends when every publisher is gone and everything
    /// was received. Lag is skipped (counted in `lost`).
    fn __next__(slf: &Bound<'_, Self>) -> PyResult<Option<Sample>> {
        loop {
            match Self::receive(slf, None)? {
                Ok(s) => return Ok(Some(s)),
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
                Err(RecvTimeoutError::Lagged(_)) | Err(RecvTimeoutError::Corrupt { .. }) => {}
                Err(e) => return Err(Self::error(slf, e)),
            }
        }
    }

    /// For `recv_async` (in the package): the next message, or `None` after arming the
    /// process's reactor to call `wake()` (from its thread) once one may be there.
    fn _poll_recv(slf: &Bound<'_, Self>, wake: Py<PyAny>) -> PyResult<Option<Sample>> {
        let py = slf.py();
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the subscriber is in use by another thread"))?;
        this.release_held()?;
        let waker = py_waker(wake);
        let kept = match this.state()?.sub.poll_recv_kept(&waker) {
            std::task::Poll::Pending => return Ok(None),
            std::task::Poll::Ready(Err(ringcast::RecvError::Lagged(n))) => {
                this.lag_lane = this.state()?.sub.lagged_lane();
                this.lost += n;
                return Err(errors::lagged(py, n, this.lag_lane));
            }
            std::task::Poll::Ready(Err(e)) => {
                return Err(errors::recv(py, RecvTimeoutError::from(e), this.lag_lane))
            }
            std::task::Poll::Ready(Ok(k)) => k,
        };
        Ok(Some(this.hold(slf, kept)?))
    }

    /// For `WaitSet` (in the package): whether a receive would complete at once, else
    /// `False` after arming the reactor to call `wake()` once it may.
    fn _poll_ready(&mut self, wake: Py<PyAny>) -> PyResult<bool> {
        let state = self.state()?;
        if state.held.is_some() {
            // Readiness of the next message; the held sample is not touched.
            return Err(errors::busy(
                "release the held sample before waiting for the next one",
            ));
        }
        Ok(state.sub.poll_ready(&py_waker(wake)).is_ready())
    }

    /// Withdraws an arm left by `_poll_recv` / `_poll_ready`. Never raises (as the
    /// server's and the client's): a closed subscriber has nothing armed, and one in use
    /// by another thread's blocking call is left to that call; a received sample is never
    /// lost to an error here.
    fn _disarm(slf: &Bound<'_, Self>) {
        if let Ok(mut this) = slf.try_borrow_mut() {
            if let Some(state) = this.live_state() {
                state.sub.disarm();
            }
        }
    }

    /// Messages lost to lapping (`Overwrite`) since attach, every publisher's together.
    #[getter]
    fn lost(&self) -> u64 {
        self.lost
    }

    /// Whether the topic was closed by its publisher (on a shared topic, by the last to
    /// leave). After `Disconnected`, `False` tells a publisher that died (killed, crashed)
    /// from one that ended the topic; everything it published was received either way.
    #[getter]
    fn closed_by_publisher(&mut self) -> PyResult<bool> {
        Ok(self.state()?.sub.closed_by_publisher())
    }

    /// The lane of the last `Lagged` this subscriber reported (its `.lane`; 0 before any,
    /// and always on a topic with one publisher).
    #[getter]
    fn lagged_lane(&self) -> u32 {
        self.lag_lane
    }

    /// Messages of lane `lane` (a `Sample.publisher[0]`) lost to lapping since attach;
    /// `None` if the topic has no such lane (it has `max_publishers` of them).
    fn lost_in(&mut self, lane: u32) -> PyResult<Option<u64>> {
        Ok(self.state()?.sub.lost_in(lane))
    }

    /// The topic's name.
    #[getter]
    fn topic(&self) -> &str {
        &self.topic
    }

    /// `"block"` or `"overwrite"`.
    #[getter]
    fn overflow(&self) -> &'static str {
        overflow_name(self.overflow)
    }

    /// Whether this subscriber attached as a monitor (`monitor=True`).
    #[getter]
    fn monitor(&self) -> bool {
        self.monitor
    }

    /// Detaches now: the subscriber leaves the topic (a `block` publisher stops waiting
    /// for it) and every later call raises `Closed`. A view of the held sample that is
    /// still alive keeps its memory mapped, but under `block` the publisher may reuse the
    /// slot it shows: copy what you need before closing. Closing twice does nothing.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        crate::wait::close(slf, |this| {
            // Inherited across fork(): forgotten, never closed (see `crate::fork`).
            let _ = this.live_state();
            if let Some(state) = this.state.take() {
                this.keep.hold(state.sub.detach_retaining());
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
            "<ringcast.Subscriber topic={:?} overflow={}{}>",
            self.topic,
            overflow_name(self.overflow),
            if self.state.is_none() { " closed" } else { "" }
        )
    }
}

/// Whether `__exit__` was called with an exception in flight (its first argument).
pub fn in_flight(args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
    args.get_item(0).is_ok_and(|t| !t.is_none())
}

/// The policy's Python name.
pub fn overflow_name(o: Overflow) -> &'static str {
    match o {
        Overflow::Block => "block",
        _ => "overwrite",
    }
}

/// A received message. Supports the buffer protocol, read-only: under `Block` the bytes
/// are the slot itself in shared memory (zero copy: `numpy.frombuffer(sample, dtype)`
/// shares it), under `Overwrite` the subscriber's own verified copy. Valid until released:
/// `release()`, the end of a `with` block, the subscriber's next receive, or garbage
/// collection, none of which happens while a view is alive.
#[pyclass(module = "ringcast", frozen)]
pub struct Sample {
    /// Counted in its subscriber's `keep` while it lives (its memory stays mapped).
    _ticket: Ticket,
    sub: Py<Subscriber>,
    token: u64,
    seq: u64,
    len: usize,
    publisher: (u32, u32),
}

impl Sample {
    /// The held sample of this `Sample`, if it is still held.
    fn with_held<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Held, &[u8]) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut sub =
            self.sub.bind(py).try_borrow_mut().map_err(|_| {
                PyBufferError::new_err("the subscriber is in use by another thread")
            })?;
        let Some(state) = sub.live_state() else {
            return Err(errors::Closed::new_err(format!(
                "sample {}: its subscriber is closed",
                self.seq
            )));
        };
        match (state.held.as_mut(), state.sub.kept()) {
            (Some(h), Some(bytes)) if h.token == self.token => f(h, bytes),
            _ => Err(PyBufferError::new_err(format!(
                "sample {} was released (a subscriber holds one sample at a time)",
                self.seq
            ))),
        }
    }
}

#[pymethods]
impl Sample {
    /// The message's sequence number in its publisher's lane (0 for the lane's first; on
    /// a topic with one publisher, simply the topic's sequence).
    #[getter]
    fn seq(&self) -> u64 {
        self.seq
    }

    /// Which publisher wrote it: `(lane, writer)`, as its `Publisher.id` says (lane 0 on a
    /// topic with one publisher). Each publisher's messages arrive in its order; there is
    /// no order across publishers.
    #[getter]
    fn publisher(&self) -> (u32, u32) {
        self.publisher
    }

    fn __len__(&self) -> usize {
        self.len
    }

    /// Whether the sample was released (its bytes are gone).
    #[getter]
    fn released(&self, py: Python<'_>) -> bool {
        self.with_held(py, |_, _| Ok(())).is_err()
    }

    /// A copy of the bytes.
    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.with_held(py, |_, bytes| Ok(PyBytes::new(py, bytes)))
    }

    /// Releases the sample now (under `Block`, frees its slot for the publisher). Raises
    /// `BufferError` while a view of it is alive. Releasing twice does nothing.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let Ok(mut sub) = self.sub.bind(py).try_borrow_mut() else {
            return Err(PyBufferError::new_err(
                "the subscriber is in use by another thread",
            ));
        };
        let Some(state) = sub.live_state() else {
            return Ok(());
        };
        match &state.held {
            Some(h) if h.token == self.token && h.exports > 0 => Err(PyBufferError::new_err(
                format!("sample {} still has {} view(s) alive", self.seq, h.exports),
            )),
            Some(h) if h.token == self.token => {
                state.held = None;
                state.sub.release_kept();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*args))]
    fn __exit__(&self, py: Python<'_>, args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        let r = self.release(py);
        if !in_flight(args) {
            r?;
        }
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<ringcast.Sample seq={} len={} publisher={:?}{}>",
            self.seq,
            self.len,
            self.publisher,
            if self.released(py) { " released" } else { "" }
        )
    }

    /// Buffer protocol: a read-only view of the held bytes.
    ///
    /// # Safety
    /// Called by Python with a valid `view` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        // SAFETY: Python's `view`; a held sample is never released with views alive, and
        // a close keeps its memory retained while this object lives (`HeldBytes`).
        unsafe { view::get_buffer(&slf, view, flags) }
    }

    /// Buffer protocol: a view ended.
    ///
    /// # Safety
    /// Called by Python for a view this object filled.
    unsafe fn __releasebuffer__(slf: Bound<'_, Self>, _view: *mut ffi::Py_buffer) {
        view::release_buffer(&slf);
    }
}

impl view::HeldBytes for Sample {
    const WHAT: &'static str = "a sample";
    fn export(&self, py: Python<'_>) -> PyResult<(*const u8, usize)> {
        self.with_held(py, |h, bytes| {
            h.exports += 1;
            Ok((bytes.as_ptr(), bytes.len()))
        })
    }
    fn unexport(&self, py: Python<'_>) {
        let _ = self.with_held(py, |h, _| {
            h.exports = h.exports.saturating_sub(1);
            Ok(())
        });
    }
}

impl Drop for Sample {
    fn drop(&mut self) {
        // Release now if nothing else holds the subscriber; else its next receive will.
        // (Its count in the subscriber's `keep` goes with its ticket either way.)
        Python::attach(|py| {
            if let Ok(mut sub) = self.sub.bind(py).try_borrow_mut() {
                if let Some(state) = sub.live_state() {
                    if state
                        .held
                        .as_ref()
                        .is_some_and(|h| h.token == self.token && h.exports == 0)
                    {
                        state.held = None;
                        state.sub.release_kept();
                    }
                }
            }
        });
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // A copy inherited across fork() is forgotten, not dropped: its drop would act on
        // the parent's topic (see `crate::fork`).
        let _ = self.live_state();
    }
}
