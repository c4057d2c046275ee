//! `ringcast.Server`, `ringcast.Request`, `ringcast.Client`, `ringcast.Response`:
//! services (request and response), read in place through the buffer protocol.
//!
//! As a subscriber holds one sample, a server holds one request's bytes (kept in the
//! server, `Request::keep`) and a client one response's (`Response::keep`): the next
//! receive releases them itself, unless a buffer view of them is alive (then it raises
//! `Busy`). A `Request` stays answerable after its bytes are released: it names its client
//! and id. A `Request` garbage-collected neither answered to its end nor ended is ended
//! (as a Rust `Request` dropped), so its client never waits for it in vain.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use ringcast::service::{
    CallError, ClientOptions, ConnectError, RespondError, Responder, ServeError, ServerConfig,
    ServerRecvError,
};
use ringcast::PublisherId;

use crate::errors;
use crate::keep::{Keep, Ticket};
use crate::publisher::View;
use crate::subscriber::{in_flight, py_waker};
use crate::view;
use crate::wait::{blocking, holder, timeout_arg};

/// The Python side of the request or response a handle keeps.
struct Held {
    /// Which receive this is (matches the Python object of that receive).
    token: u64,
    /// Buffer views of it alive now.
    exports: usize,
}

/// A live server and which request Python holds.
struct ServerState {
    server: ringcast::Server,
    held: Option<Held>,
}

// SAFETY: `ringcast::Server` is `Send` but not `Sync` (its publishers are used by one
// thread at a time): a `ServerState` is reached only through `&mut Server` (a `PyRefMut`,
// exclusive across threads), never shared.
unsafe impl Sync for ServerState {}

/// A live client and which response Python holds.
struct ClientState {
    client: ringcast::Client,
    held: Option<Held>,
}

// SAFETY: as for `ServerState`: reached only through `&mut Client`.
unsafe impl Sync for ClientState {}

fn serve_error(e: ServeError) -> PyErr {
    let msg = e.to_string();
    match e {
        ServeError::Name { .. } => errors::InvalidName::new_err(msg),
        ServeError::AlreadyServed { .. } => errors::AlreadyServed::new_err(msg),
        ServeError::Config { .. } => errors::InvalidConfig::new_err(msg),
        ServeError::Create { source, .. } => errors::create(source),
        ServeError::Attach { source, .. } => errors::attach(source),
        _ => errors::Error::new_err(msg),
    }
}

fn connect_error(e: ConnectError) -> PyErr {
    let msg = e.to_string();
    match e {
        ConnectError::Name { .. } => errors::InvalidName::new_err(msg),
        ConnectError::NoServer { .. } | ConnectError::ServerGone { .. } => {
            errors::NoServer::new_err(msg)
        }
        ConnectError::Malformed { .. } => errors::NotASegment::new_err(msg),
        ConnectError::TooManyClients { .. } => errors::TooManyClients::new_err(msg),
        ConnectError::Timeout { .. } => errors::Timeout::new_err(msg),
        ConnectError::Create { source, .. } => errors::create(source),
        ConnectError::Attach { source, .. } => errors::attach(source),
        ConnectError::UntrustedOwner { owner, .. } => {
            let err = errors::UntrustedOwner::new_err(msg);
            // Setting an attribute on a fresh exception instance cannot fail but for memory.
            Python::attach(|py| {
                let _ = err.value(py).setattr("uid", owner.uid);
            });
            err
        }
        ConnectError::PermissionDenied { .. } => errors::PermissionDenied::new_err(msg),
        _ => errors::Error::new_err(msg),
    }
}

fn call_error(e: CallError) -> PyErr {
    let msg = e.to_string();
    match e {
        CallError::Disconnected => errors::Disconnected::new_err(msg),
        CallError::Timeout => errors::Timeout::new_err(msg),
        CallError::Full => errors::Full::new_err(msg),
        CallError::TooManyInFlight { .. } => errors::TooManyInFlight::new_err(msg),
        CallError::TooLarge { .. } => errors::TooLarge::new_err(msg),
        CallError::NoResponse => errors::NoResponse::new_err(msg),
        CallError::UnknownCall => PyValueError::new_err(msg),
        CallError::Failed { .. } => errors::CallFailed::new_err(msg),
        _ => errors::Error::new_err(msg),
    }
}

fn respond_error(e: RespondError) -> PyErr {
    let msg = e.to_string();
    match e {
        RespondError::ClientGone => errors::ClientGone::new_err(msg),
        RespondError::ClientFull => errors::ClientFull::new_err(msg),
        RespondError::TooLarge { .. } => errors::TooLarge::new_err(msg),
        _ => errors::Error::new_err(msg),
    }
}

/// The server of a service.
///
/// `Server(service, prefix=None, max_clients=None, queue=None, max_request=None,
/// response_slots=None, max_response=None, mode=None)` starts serving (`AlreadyServed` if
/// a live server has the name). `mode` is the permission bits of the service's topics
/// (default 0o600: only this user may call; 0o660 or 0o666 let the file's group or every
/// local user call, who must also trust this user: `Client(trust_users=[uid])`). Receive requests with `recv(timeout=None)`, `try_recv()`, or by
/// iterating (for ever, until `close()`); answer each `Request` with `respond(data)`, or
/// a stream with `respond_part(data)`... `end()`. Clients connect only while the server
/// receives (it answers their greeting then). One thread uses a server at a time;
/// blocking calls release the GIL. `close()` (or garbage collection) ends the service:
/// clients' calls raise `Disconnected`.
#[pyclass(module = "ringcast", subclass)]
pub struct Server {
    /// The fork generation it was made in (see `crate::fork`).
    epoch: ringcast::fork::Lineage,
    /// `None` once closed.
    state: Option<ServerState>,
    /// Its `Request` objects alive, and after a close the request ring's mapping their
    /// pointers may point into (see `crate::keep`).
    keep: Keep,
    service: String,
    next_token: u64,
}

impl Server {
    /// The state, unless closed, or inherited across `fork()` (then forgotten, never
    /// dropped: see `crate::fork`).
    fn live_state(&mut self) -> Option<&mut ServerState> {
        let _ = crate::fork::inherited(self.epoch, &mut self.state, "");
        self.state.as_mut()
    }

    fn state(&mut self) -> PyResult<&mut ServerState> {
        let service = &self.service;
        if let Some(e) = crate::fork::inherited(self.epoch, &mut self.state, "this server") {
            return Err(e);
        }
        self.state
            .as_mut()
            .ok_or_else(|| errors::Closed::new_err(format!("server of {service} is closed")))
    }

    /// Releases the held request's bytes unless they are still viewed.
    fn release_held(&mut self) -> PyResult<()> {
        let state = self.state()?;
        if let Some(h) = &state.held {
            if h.exports > 0 {
                return Err(errors::busy(format!(
                    "the previous request is still viewed by {} buffer(s) (numpy arrays, \
                     memoryviews): delete them, or copy the data, before receiving again",
                    h.exports
                )));
            }
        }
        state.held = None;
        state.server.release_request();
        Ok(())
    }

    /// Receives once (`timeout` `Some(0)`: no wait) and holds the request.
    fn receive(slf: &Bound<'_, Self>, timeout: Option<Duration>) -> PyResult<Option<Request>> {
        let py = slf.py();
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the server is in use by another thread"))?;
        this.release_held()?;
        let server = &mut this.state()?.server;
        let got = if timeout == Some(Duration::ZERO) {
            Some(server.try_recv().map(ringcast::Request::keep))
        } else {
            blocking(py, holder(slf), timeout, |slice| {
                match server.recv_timeout(slice).map(ringcast::Request::keep) {
                    Err(ServerRecvError::Empty) => None,
                    r => Some(r),
                }
            })?
        };
        let to = match got {
            None | Some(Err(ServerRecvError::Empty)) => return Ok(None),
            Some(Err(e)) => return Err(errors::Closed::new_err(e.to_string())),
            Some(Ok(to)) => to,
        };
        Ok(Some(this.hold(slf, to)?))
    }

    /// Holds the request just kept (answered through `to`).
    fn hold(&mut self, slf: &Bound<'_, Self>, to: Responder) -> PyResult<Request> {
        let len = self.state()?.server.kept_request().map_or(0, <[u8]>::len);
        self.next_token += 1;
        let token = self.next_token;
        self.state()?.held = Some(Held { token, exports: 0 });
        Ok(Request {
            _ticket: self.keep.ticket(),
            server: slf.clone().unbind(),
            token,
            client: to.client(),
            id: to.id(),
            len,
            done: AtomicBool::new(false),
        })
    }
}

#[pymethods]
impl Server {
    #[new]
    #[pyo3(signature = (service, prefix=None, max_clients=None, queue=None, max_request=None, response_slots=None, max_response=None, mode=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        service: String,
        prefix: Option<String>,
        max_clients: Option<u64>,
        queue: Option<u64>,
        max_request: Option<u64>,
        response_slots: Option<u64>,
        max_response: Option<u64>,
        mode: Option<u32>,
    ) -> PyResult<Self> {
        let mut cfg = ServerConfig::default();
        if let Some(m) = mode {
            cfg = cfg.mode(m);
        }
        if let Some(p) = prefix {
            cfg = cfg.prefix(p);
        }
        if let Some(n) = max_clients {
            cfg = cfg.max_clients(n);
        }
        if let Some(n) = queue {
            cfg = cfg.queue(n);
        }
        if let Some(n) = max_request {
            cfg = cfg.max_request(n);
        }
        if let Some(n) = response_slots {
            cfg = cfg.response_slots(n);
        }
        if let Some(n) = max_response {
            cfg = cfg.max_response(n);
        }
        let server = ringcast::Server::create(&service, cfg).map_err(serve_error)?;
        Ok(Server {
            epoch: crate::fork::epoch(),
            state: Some(ServerState { server, held: None }),
            keep: Keep::default(),
            service,
            next_token: 0,
        })
    }

    /// The next request, waiting at most `timeout` seconds (`None`: for ever; then
    /// `Timeout`). The previous request's bytes are released (`Busy` while a view of them
    /// is alive); it stays answerable. Releases the GIL while it waits; Ctrl-C interrupts.
    #[pyo3(signature = (timeout=None))]
    fn recv(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Request> {
        Self::receive(slf, timeout_arg(timeout)?)?
            .ok_or_else(|| errors::Timeout::new_err("no request within the timeout"))
    }

    /// The next request if there is one now, else `None`.
    fn try_recv(slf: &Bound<'_, Self>) -> PyResult<Option<Request>> {
        Self::receive(slf, Some(Duration::ZERO))
    }

    /// For `recv_async` (in the package): the next request, or `None` after arming the
    /// process's reactor to call `wake()` (from its thread) once one may be there (or a
    /// liveness slice passed). Greetings of new clients are answered on the way. The
    /// previous request's bytes are released first (`Busy` while a view of them is alive).
    fn _poll_recv(slf: &Bound<'_, Self>, wake: Py<PyAny>) -> PyResult<Option<Request>> {
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the server is in use by another thread"))?;
        this.release_held()?;
        let waker = py_waker(wake);
        let to = match this.state()?.server.poll_recv(&waker) {
            Poll::Pending => return Ok(None),
            Poll::Ready(Err(e)) => return Err(errors::Closed::new_err(e.to_string())),
            Poll::Ready(Ok(request)) => request.keep(),
        };
        Ok(Some(this.hold(slf, to)?))
    }

    /// For `WaitSet` (in the package): whether a receive would not wait (a request, or a
    /// client's greeting, which `try_recv` answers and returns `None` for), else `False`
    /// after arming the reactor to call `wake()` once it may.
    fn _poll_ready(slf: &Bound<'_, Self>, wake: Py<PyAny>) -> PyResult<bool> {
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the server is in use by another thread"))?;
        let state = this.state()?;
        if state.held.is_some() {
            return Err(errors::busy(
                "release the held request (answer it, release() it, or leave its with \
                 block) before waiting for the next one",
            ));
        }
        Ok(state.server.poll_ready(&py_waker(wake)).is_ready())
    }

    /// Withdraws an arm left by `_poll_recv` / `_poll_ready`. Never raises (as the
    /// client's).
    fn _disarm(slf: &Bound<'_, Self>) {
        if let Ok(mut this) = slf.try_borrow_mut() {
            if let Some(state) = this.live_state() {
                state.server.disarm();
            }
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next request, waiting for ever; the iteration ends when the server is closed.
    fn __next__(slf: &Bound<'_, Self>) -> PyResult<Option<Request>> {
        if slf.borrow().state.is_none() {
            return Ok(None);
        }
        Self::receive(slf, None)
    }

    /// The service's name.
    #[getter]
    fn service(&self) -> &str {
        &self.service
    }

    /// Clients connected now.
    #[getter]
    fn clients(&mut self) -> PyResult<usize> {
        Ok(self.state()?.server.stats().clients)
    }

    /// Stops serving: clients' pending and later calls raise `Disconnected`, every later
    /// call on this server raises `Closed`, and a new server may take the name. A view of
    /// the held request (or an array over it) stays readable while its `Request` lives,
    /// though its client may write that slot again. Closing twice does nothing.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        crate::wait::close(slf, |this| {
            // Inherited across fork(): forgotten, never closed (see `crate::fork`).
            let _ = this.live_state();
            if let Some(state) = this.state.take() {
                // While a `Request` object lives, its bytes' memory stays mapped: a view of
                // them may be alive, and so may a foreign array over them that let its view go
                // (`numpy.ndarray(buffer=request)` keeps the object, not the view).
                this.keep.hold(state.server.close_retaining());
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
            "<ringcast.Server service={:?}{}>",
            self.service,
            if self.state.is_none() { " closed" } else { "" }
        )
    }
}

/// A request a `Server` received. Supports the buffer protocol, read-only: the bytes are
/// the request itself, in place in its client's lane (zero copy), until the server's
/// next receive or `release()`. Answer it with `respond(data)` (the last or only
/// response), or a stream with `respond_part(data)` calls and `end()`; it stays
/// answerable after its bytes are released (answer later: keep the object). Garbage
/// collected neither answered to its end nor ended, it is ended (its client's `call`
/// raises `NoResponse`).
#[pyclass(module = "ringcast", frozen)]
pub struct Request {
    /// Counted in its server's `keep` while it lives (its memory stays mapped).
    _ticket: Ticket,
    server: Py<Server>,
    token: u64,
    client: PublisherId,
    id: u64,
    len: usize,
    /// Answered to its end (or ended).
    done: AtomicBool,
}

impl Request {
    /// The held bytes of this request, if they are still held.
    fn with_held<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Held, &[u8]) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut server = self
            .server
            .bind(py)
            .try_borrow_mut()
            .map_err(|_| PyBufferError::new_err("the server is in use by another thread"))?;
        let Some(state) = server.live_state() else {
            return Err(errors::Closed::new_err("the request's server is closed"));
        };
        match (state.held.as_mut(), state.server.kept_request()) {
            (Some(h), Some(bytes)) if h.token == self.token => f(h, bytes),
            _ => Err(PyBufferError::new_err(
                "the request's bytes were released (by the server's next receive or \
                 release()); it can still be answered",
            )),
        }
    }

    /// Sends `payload` as `kind` of answer; a last one or an end releases the bytes when
    /// nothing views them.
    /// Sends a response (`data`: a part, or the last if `last`), an end (`None`), or a
    /// failure (`None` and `fail`).
    fn answer(
        &self,
        py: Python<'_>,
        data: Option<&Bound<'_, PyAny>>,
        last: bool,
        fail: bool,
    ) -> PyResult<()> {
        if self.done.load(Ordering::Relaxed) {
            return Err(PyValueError::new_err(
                "the request was answered to its end already",
            ));
        }
        let view = data.map(View::of).transpose()?;
        let payload = view.as_ref().map_or(&[][..], View::bytes);
        let mut server = self
            .server
            .bind(py)
            .try_borrow_mut()
            .map_err(|_| errors::busy("the server is in use by another thread"))?;
        let state = server.state()?;
        let to = Responder::from_parts(self.client, self.id);
        let r = match (data.is_some(), last) {
            (true, false) => state.server.respond_part(&to, payload),
            (true, true) => state.server.respond(to, payload),
            (false, _) if fail => state.server.fail(to),
            (false, _) => state.server.end(to),
        };
        r.map_err(respond_error)?;
        if last {
            self.done.store(true, Ordering::Relaxed);
            if state
                .held
                .as_ref()
                .is_some_and(|h| h.token == self.token && h.exports == 0)
            {
                state.held = None;
                state.server.release_request();
            }
        }
        Ok(())
    }
}

#[pymethods]
impl Request {
    /// Answers with `data` (any contiguous bytes-like object; copied) as the last or only
    /// response. Never waits: `ClientFull` if the client's ring is full (try again later),
    /// `ClientGone` if it is gone, `TooLarge`.
    fn respond(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.answer(py, Some(data), true, false)
    }

    /// Sends `data` as one response of a stream, with more to come.
    fn respond_part(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        self.answer(py, Some(data), false, false)
    }

    /// Ends the stream with no further response.
    fn end(&self, py: Python<'_>) -> PyResult<()> {
        self.answer(py, None, true, false)
    }

    /// Gives up on the request: its stream ends without an answer, and its caller gets
    /// `CallFailed` at once instead of waiting for its timeout.
    fn fail(&self, py: Python<'_>) -> PyResult<()> {
        self.answer(py, None, true, true)
    }

    /// Releases the bytes now (the request stays answerable). Raises `BufferError` while a
    /// view of them is alive; releasing twice does nothing.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let Ok(mut server) = self.server.bind(py).try_borrow_mut() else {
            return Err(PyBufferError::new_err(
                "the server is in use by another thread",
            ));
        };
        let Some(state) = server.live_state() else {
            return Ok(());
        };
        match &state.held {
            Some(h) if h.token == self.token && h.exports > 0 => Err(PyBufferError::new_err(
                format!("the request still has {} view(s) alive", h.exports),
            )),
            Some(h) if h.token == self.token => {
                state.held = None;
                state.server.release_request();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The request's id at its client (unique among its requests in flight).
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// The client that sent it: `(lane, writer)` of the lane it sends on.
    #[getter]
    fn client(&self) -> (u32, u32) {
        (self.client.lane, self.client.writer)
    }

    /// Whether it was answered to its end (or ended).
    #[getter]
    fn answered(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    /// Whether its bytes were released.
    #[getter]
    fn released(&self, py: Python<'_>) -> bool {
        self.with_held(py, |_, _| Ok(())).is_err()
    }

    fn __len__(&self) -> usize {
        self.len
    }

    /// A copy of the bytes.
    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.with_held(py, |_, bytes| Ok(PyBytes::new(py, bytes)))
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Leaving a `with` block releases the bytes.
    #[pyo3(signature = (*args))]
    fn __exit__(&self, py: Python<'_>, args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        let r = self.release(py);
        if !in_flight(args) {
            r?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<ringcast.Request id={} len={} client={}{}>",
            self.id,
            self.len,
            self.client,
            if self.answered() { " answered" } else { "" }
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
        // SAFETY: Python's `view`; a held request is never released with views alive, and
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

impl view::HeldBytes for Request {
    const WHAT: &'static str = "a request";
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

impl Drop for Request {
    fn drop(&mut self) {
        Python::attach(|py| {
            if let Ok(mut server) = self.server.bind(py).try_borrow_mut() {
                if let Some(state) = server.live_state() {
                    if !self.done.load(Ordering::Relaxed) {
                        // As a Rust `Request` dropped: a full client is told at a later
                        // sweep, a gone one nothing.
                        state
                            .server
                            .end_when_room(Responder::from_parts(self.client, self.id));
                    }
                    if state
                        .held
                        .as_ref()
                        .is_some_and(|h| h.token == self.token && h.exports == 0)
                    {
                        state.held = None;
                        state.server.release_request();
                    }
                }
            }
        });
    }
}

/// A client of a service.
///
/// `Client(service, wait=None, prefix=None, handshake_timeout=None, max_in_flight=None,
/// trust_users=None, trust_groups=None, trust_any_owner=False)` connects: `wait` is how
/// many seconds to wait for a live server (`None`: not at all; then `NoServer`);
/// `handshake_timeout` how long the server may take to answer the greeting (default 5 s;
/// then `Timeout`); `trust_users` / `trust_groups` (lists of ids) / `trust_any_owner`
/// use services of other users too (by default only this process's user and root are
/// trusted: another user's service raises `UntrustedOwner`, with its `uid`; a server
/// whose mode does not admit this user raises `PermissionDenied`). `call(data, timeout=None)` sends a request and
/// returns its first `Response`; `send(data)` returns a call id whose responses (a stream)
/// `recv(call)` returns one by one (`None` once the stream ended). One thread uses a
/// client at a time; blocking calls release the GIL. `close()` disconnects.
#[pyclass(module = "ringcast", subclass)]
pub struct Client {
    /// The fork generation it was made in (see `crate::fork`).
    epoch: ringcast::fork::Lineage,
    state: Option<ClientState>,
    /// Its `Response` objects alive, and after a close the response ring's mapping (and a
    /// kept copy) their pointers may point into (see `crate::keep`).
    keep: Keep,
    service: String,
    next_token: u64,
}

/// What a receive got: a kept response (its call and whether it is the last), or the end
/// of the call's stream.
type Got = Option<(u64, bool)>;

impl Client {
    /// The state, unless closed, or inherited across `fork()` (then forgotten, never
    /// dropped: see `crate::fork`).
    fn live_state(&mut self) -> Option<&mut ClientState> {
        let _ = crate::fork::inherited(self.epoch, &mut self.state, "");
        self.state.as_mut()
    }

    fn state(&mut self) -> PyResult<&mut ClientState> {
        let service = &self.service;
        if let Some(e) = crate::fork::inherited(self.epoch, &mut self.state, "this client") {
            return Err(e);
        }
        self.state
            .as_mut()
            .ok_or_else(|| errors::Closed::new_err(format!("client of {service} is closed")))
    }

    fn release_held(&mut self) -> PyResult<()> {
        let state = self.state()?;
        if let Some(h) = &state.held {
            if h.exports > 0 {
                return Err(errors::busy(format!(
                    "the previous response is still viewed by {} buffer(s) (numpy arrays, \
                     memoryviews): delete them, or copy the data, before receiving again",
                    h.exports
                )));
            }
        }
        state.held = None;
        state.client.release_response();
        Ok(())
    }

    /// Holds the response just kept.
    fn hold(&mut self, slf: &Bound<'_, Self>, call: u64, last: bool) -> PyResult<Response> {
        let len = self.state()?.client.kept_response().map_or(0, <[u8]>::len);
        self.next_token += 1;
        let token = self.next_token;
        self.state()?.held = Some(Held { token, exports: 0 });
        Ok(Response {
            _ticket: self.keep.ticket(),
            client: slf.clone().unbind(),
            token,
            call,
            last,
            len,
        })
    }

    /// Sends `payload` (waiting for room up to `deadline`), without the GIL.
    fn send_until(
        py: Python<'_>,
        holder: Option<usize>,
        client: &mut ringcast::Client,
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> PyResult<u64> {
        if timeout == Some(Duration::ZERO) {
            return client
                .try_send(payload)
                .map(|c| c.get())
                .map_err(call_error);
        }
        let sent = blocking(py, holder, timeout, |slice| {
            // A zero slice (the deadline): one last try.
            match client.send(payload, slice.max(Duration::from_micros(1))) {
                Err(CallError::Timeout) => None,
                r => Some(r),
            }
        })?;
        match sent {
            None => Err(call_error(CallError::Timeout)),
            Some(r) => r.map(|c| c.get()).map_err(call_error),
        }
    }

    /// Receives the next response to `call` (kept), waiting up to `timeout`, without the
    /// GIL.
    fn recv_until(
        py: Python<'_>,
        holder: Option<usize>,
        client: &mut ringcast::Client,
        call: u64,
        timeout: Option<Duration>,
    ) -> PyResult<Result<Got, CallError>> {
        let id = client
            .call_id(call)
            .ok_or_else(|| call_error(CallError::UnknownCall))?;
        let mut step = |slice: Duration| match client.recv(id, slice) {
            Err(CallError::Timeout) => None,
            Ok(Some(r)) => {
                let last = r.is_last();
                Some(Ok(Some((r.keep().get(), last))))
            }
            Ok(None) => Some(Ok(None)),
            Err(e) => Some(Err(e)),
        };
        if timeout == Some(Duration::ZERO) {
            return Ok(step(Duration::ZERO).unwrap_or(Err(CallError::Timeout)));
        }
        Ok(blocking(py, holder, timeout, step)?.unwrap_or(Err(CallError::Timeout)))
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (service, wait=None, prefix=None, handshake_timeout=None, max_in_flight=None, trust_users=None, trust_groups=None, trust_any_owner=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        service: String,
        wait: Option<f64>,
        prefix: Option<String>,
        handshake_timeout: Option<f64>,
        max_in_flight: Option<usize>,
        trust_users: Option<Vec<u32>>,
        trust_groups: Option<Vec<u32>>,
        trust_any_owner: bool,
    ) -> PyResult<Self> {
        let mut opts = ClientOptions::default();
        for uid in trust_users.unwrap_or_default() {
            opts = opts.trust_user(uid);
        }
        for gid in trust_groups.unwrap_or_default() {
            opts = opts.trust_group(gid);
        }
        if trust_any_owner {
            opts = opts.trust_any_owner();
        }
        if let Some(p) = prefix {
            opts = opts.prefix(p);
        }
        if let Some(t) = timeout_arg(handshake_timeout)? {
            opts = opts.handshake_timeout(t);
        }
        if let Some(n) = max_in_flight {
            opts = opts.max_in_flight(n);
        }
        // Waiting for a server in slices, with the GIL released and Ctrl-C honoured.
        let wait = timeout_arg(wait)?.unwrap_or(Duration::ZERO);
        let deadline = Instant::now().checked_add(wait);
        let connected = blocking(
            py,
            None,
            Some(wait),
            |slice| match ringcast::Client::connect(&service, opts.clone().wait(slice)) {
                Err(ConnectError::NoServer { .. })
                    if deadline.is_none_or(|d| Instant::now() < d) =>
                {
                    None
                }
                r => Some(r),
            },
        )?;
        let client = match connected {
            Some(r) => r,
            None => ringcast::Client::connect(&service, opts),
        }
        .map_err(connect_error)?;
        Ok(Client {
            epoch: crate::fork::epoch(),
            state: Some(ClientState { client, held: None }),
            keep: Keep::default(),
            service,
            next_token: 0,
        })
    }

    /// Sends `data` (any contiguous bytes-like object; copied) as a request and returns its
    /// first `Response`, waiting at most `timeout` seconds in all (`None`: for ever); any
    /// further responses to it are dropped. Raises `Timeout`, `Disconnected` (the server is
    /// gone: connect again), `NoResponse` (the server ended the request with none),
    /// `TooLarge`, `TooManyInFlight`, `Busy` (a view of the previous response is alive).
    #[pyo3(signature = (data, timeout=None))]
    fn call(
        slf: &Bound<'_, Self>,
        data: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Response> {
        let py = slf.py();
        let timeout = timeout_arg(timeout)?;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let payload = View::of(data)?.bytes().to_vec();
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the client is in use by another thread"))?;
        this.release_held()?;
        let client = &mut this.state()?.client;
        let call = Self::send_until(py, holder(slf), client, &payload, timeout)?;
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let got = Self::recv_until(py, holder(slf), client, call, left);
        // A call wants its first response only.
        if let Some(id) = client.call_id(call) {
            client.cancel(id);
        }
        match got? {
            Ok(Some((call, last))) => this.hold(slf, call, last),
            Ok(None) => Err(call_error(CallError::NoResponse)),
            Err(e) => Err(call_error(e)),
        }
    }

    /// Sends `data` as a request and returns its call id (an int): receive its responses
    /// with `recv(call)`. Waits for room in the server's queue at most `timeout` seconds
    /// (`0`: not at all, then `Full`).
    #[pyo3(signature = (data, timeout=None))]
    fn send(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<u64> {
        let py = slf.py();
        let timeout = timeout_arg(timeout)?;
        let payload = View::of(data)?.bytes().to_vec();
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the client is in use by another thread"))?;
        let client = &mut this.state()?.client;
        Self::send_until(py, holder(slf), client, &payload, timeout)
    }

    /// The next response to `call` (from `send`), waiting at most `timeout` seconds; `None`
    /// once its stream has ended. Raises `Timeout` (the call stays in flight),
    /// `Disconnected`, `ValueError` for a call this client did not send.
    #[pyo3(signature = (call, timeout=None))]
    fn recv(slf: &Bound<'_, Self>, call: u64, timeout: Option<f64>) -> PyResult<Option<Response>> {
        let py = slf.py();
        let timeout = timeout_arg(timeout)?;
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the client is in use by another thread"))?;
        this.release_held()?;
        let client = &mut this.state()?.client;
        match Self::recv_until(py, holder(slf), client, call, timeout)? {
            Ok(Some((call, last))) => Ok(Some(this.hold(slf, call, last)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(call_error(e)),
        }
    }

    /// For `call_async` / `recv_async` (in the package): the next response to `call`,
    /// `None` once its stream has ended (as `recv`), or `False` after arming the process's
    /// reactor to call `wake()` (from its thread) once one may be there (or a liveness
    /// slice passed: a dead server raises `Disconnected`). Never raises `Timeout`. The
    /// previous response is released first (`Busy` while a view of it is alive).
    fn _poll_recv<'py>(
        slf: &Bound<'py, Self>,
        call: u64,
        wake: Py<PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the client is in use by another thread"))?;
        let waker = py_waker(wake);
        let pending = || Ok(pyo3::types::PyBool::new(py, false).to_owned().into_any());
        if this.state()?.held.is_some() {
            // Another wait's response is held: release it only for a poll that may return
            // one (the shared waker wakes every wait on the client, also for news that is
            // not theirs, and once per liveness slice).
            let client = &mut this.state()?.client;
            let id = client
                .call_id(call)
                .ok_or_else(|| call_error(CallError::UnknownCall))?;
            if !client.has_set_aside(id) && client.poll_ready(&waker).is_pending() {
                return pending();
            }
        }
        this.release_held()?;
        let client = &mut this.state()?.client;
        let id = client
            .call_id(call)
            .ok_or_else(|| call_error(CallError::UnknownCall))?;
        let got = match client.poll_recv(id, &waker) {
            Poll::Pending => return pending(),
            Poll::Ready(Err(e)) => return Err(call_error(e)),
            Poll::Ready(Ok(None)) => None,
            Poll::Ready(Ok(Some(r))) => {
                let last = r.is_last();
                Some((r.keep().get(), last))
            }
        };
        match got {
            None => Ok(py.None().into_bound(py)),
            Some((call, last)) => Ok(Bound::new(py, this.hold(slf, call, last)?)?.into_any()),
        }
    }

    /// For `call_async` (in the package): sends `data` as a request and returns its call
    /// id if the server's queue has room, else `None` after arming the process's reactor
    /// to call `wake()` (from its thread) once there may be room (or a liveness slice
    /// passed: a dead server raises `Disconnected`). Errors as `send`, never `Full`.
    fn _poll_send(
        slf: &Bound<'_, Self>,
        data: &Bound<'_, PyAny>,
        wake: Py<PyAny>,
    ) -> PyResult<Option<u64>> {
        // A copy taken before the client is borrowed: `data` may be one of its own
        // responses, whose buffer export looks at the client.
        let payload = View::of(data)?.bytes().to_vec();
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the client is in use by another thread"))?;
        let client = &mut this.state()?.client;
        match client.poll_send(&payload, &py_waker(wake)) {
            Poll::Pending => Ok(None),
            Poll::Ready(sent) => sent.map(|c| Some(c.get())).map_err(call_error),
        }
    }

    /// Whether a response to `call` (or its end) was set aside while the client received
    /// for another call: its next receive returns at once.
    fn _has_set_aside(slf: &Bound<'_, Self>, call: u64) -> PyResult<bool> {
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the client is in use by another thread"))?;
        let client = &this.state()?.client;
        Ok(client
            .call_id(call)
            .is_some_and(|id| client.has_set_aside(id)))
    }

    /// For `WaitSet` (in the package): whether a receive would not wait (a response there
    /// or set aside, or the server gone), else `False` after arming the reactor to call
    /// `wake()` once it may.
    fn _poll_ready(slf: &Bound<'_, Self>, wake: Py<PyAny>) -> PyResult<bool> {
        let mut this = slf
            .try_borrow_mut()
            .map_err(|_| errors::busy("the client is in use by another thread"))?;
        let state = this.state()?;
        if state.held.is_some() {
            return Err(errors::busy(
                "release the held response before waiting for the next one",
            ));
        }
        Ok(state.client.poll_ready(&py_waker(wake)).is_ready())
    }

    /// Withdraws an arm left by `_poll_recv` / `_poll_ready` / `_poll_send`. Never raises:
    /// a closed client has nothing armed, and one in use by another thread's blocking
    /// call is left to that call (its waker is only rung, never relied on).
    fn _disarm(slf: &Bound<'_, Self>) {
        if let Ok(mut this) = slf.try_borrow_mut() {
            if let Some(state) = this.live_state() {
                state.client.disarm();
            }
        }
    }

    /// Stops waiting for `call`: its later responses are dropped.
    fn cancel(&mut self, call: u64) -> PyResult<()> {
        let client = &mut self.state()?.client;
        if let Some(id) = client.call_id(call) {
            client.cancel(id);
        }
        Ok(())
    }

    /// Requests in flight.
    #[getter]
    fn in_flight(&mut self) -> PyResult<usize> {
        Ok(self.state()?.client.in_flight())
    }

    /// The largest request the server takes, in bytes.
    #[getter]
    fn max_request(&mut self) -> PyResult<usize> {
        Ok(self.state()?.client.max_request())
    }

    /// The service's name.
    #[getter]
    fn service(&self) -> &str {
        &self.service
    }

    /// Disconnects (the server reclaims what it held for this client); every later call
    /// raises `Closed`. Closing twice does nothing.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        crate::wait::close(slf, |this| {
            // Inherited across fork(): forgotten, never closed (see `crate::fork`).
            let _ = this.live_state();
            if let Some(state) = this.state.take() {
                // While a `Response` object lives, its bytes' memory stays mapped (see
                // `Server.close`).
                this.keep.hold(state.client.close_retaining());
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
            "<ringcast.Client service={:?}{}>",
            self.service,
            if self.state.is_none() { " closed" } else { "" }
        )
    }
}

/// A response. Supports the buffer protocol, read-only: the bytes are read in place in
/// the client's response ring (zero copy), or a copy for a response that arrived while
/// the client waited for another call's. Valid until released: `release()`, the end of a
/// `with` block, the client's next receive or call, or garbage collection, none of which
/// happens while a view is alive.
#[pyclass(module = "ringcast", frozen)]
pub struct Response {
    /// Counted in its client's `keep` while it lives (its memory stays mapped).
    _ticket: Ticket,
    client: Py<Client>,
    token: u64,
    call: u64,
    last: bool,
    len: usize,
}

impl Response {
    fn with_held<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Held, &[u8]) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut client = self
            .client
            .bind(py)
            .try_borrow_mut()
            .map_err(|_| PyBufferError::new_err("the client is in use by another thread"))?;
        let Some(state) = client.live_state() else {
            return Err(errors::Closed::new_err("the response's client is closed"));
        };
        match (state.held.as_mut(), state.client.kept_response()) {
            (Some(h), Some(bytes)) if h.token == self.token => f(h, bytes),
            _ => Err(PyBufferError::new_err(
                "the response was released (a client holds one response at a time)",
            )),
        }
    }
}

#[pymethods]
impl Response {
    /// The call it answers (the id `send` returned).
    #[getter]
    fn call(&self) -> u64 {
        self.call
    }

    /// Whether it is the last response of its call's stream.
    #[getter]
    fn last(&self) -> bool {
        self.last
    }

    /// Whether it was released.
    #[getter]
    fn released(&self, py: Python<'_>) -> bool {
        self.with_held(py, |_, _| Ok(())).is_err()
    }

    fn __len__(&self) -> usize {
        self.len
    }

    /// A copy of the bytes.
    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.with_held(py, |_, bytes| Ok(PyBytes::new(py, bytes)))
    }

    /// Releases the response now. Raises `BufferError` while a view of it is alive;
    /// releasing twice does nothing.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let Ok(mut client) = self.client.bind(py).try_borrow_mut() else {
            return Err(PyBufferError::new_err(
                "the client is in use by another thread",
            ));
        };
        let Some(state) = client.live_state() else {
            return Ok(());
        };
        match &state.held {
            Some(h) if h.token == self.token && h.exports > 0 => Err(PyBufferError::new_err(
                format!("the response still has {} view(s) alive", h.exports),
            )),
            Some(h) if h.token == self.token => {
                state.held = None;
                state.client.release_response();
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
            "<ringcast.Response call={} len={}{}{}>",
            self.call,
            self.len,
            if self.last { " last" } else { "" },
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
        // SAFETY: Python's `view`; a held response is never released with views alive, and
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

impl view::HeldBytes for Response {
    const WHAT: &'static str = "a response";
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

impl Drop for Response {
    fn drop(&mut self) {
        Python::attach(|py| {
            if let Ok(mut client) = self.client.bind(py).try_borrow_mut() {
                if let Some(state) = client.live_state() {
                    if state
                        .held
                        .as_ref()
                        .is_some_and(|h| h.token == self.token && h.exports == 0)
                    {
                        state.held = None;
                        state.client.release_response();
                    }
                }
            }
        });
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A copy inherited across fork() is forgotten, not dropped: its drop would act on
        // the parent's topic (see `crate::fork`).
        let _ = self.live_state();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // A copy inherited across fork() is forgotten, not dropped: its drop would act on
        // the parent's topic (see `crate::fork`).
        let _ = self.live_state();
    }
}
