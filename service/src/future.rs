//! The async forms: [`Server::recv_async`], [`Client::recv_async`] and
//! [`Client::call_async`]. They wait through the process's reactor as subscribers'
//! `recv_async` does (no thread per handle), and are cancel-safe: a future dropped before
//! it completes has consumed nothing (a response that arrived for another call is kept for
//! it, as in the blocking forms) and leaves no reactor arm behind; a `call_async` dropped
//! after its request went out abandons that call, as a timed-out `call` does (its answer
//! is dropped on arrival and it no longer counts as in flight).

use std::future::poll_fn;
use std::task::{Poll, Waker};

use ringcast_core::PublisherId;
use ringcast_subscriber::RecvTimeoutError;

use crate::client::{CallId, Client, Response};
use crate::error::{CallError, ServerRecvError};
use crate::server::{Request, Server};

impl Server {
    /// The next request, waiting without blocking the thread.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ringcast_service::{Client, ClientOptions, Server, ServerConfig};
    /// # let prefix = format!("rcdoc{}asrv", std::process::id());
    /// let mut server = Server::create("echo", ServerConfig::default().prefix(&prefix))?;
    /// # let opts = ClientOptions::default().prefix(&prefix).wait(Duration::from_secs(1));
    /// # let client = std::thread::spawn(move || {
    /// #     let mut c = Client::connect("echo", opts).unwrap();
    /// #     assert_eq!(&c.call(b"hi", Duration::from_secs(5)).unwrap()[..], b"hi");
    /// # });
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// rt.block_on(async {
    ///     let request = server.recv_async().await.unwrap();
    ///     let echo = request.to_vec();
    ///     request.respond(&echo).unwrap();
    /// });
    /// # client.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn recv_async(&mut self) -> Result<Request<'_>, ServerRecvError> {
        let mut pending = Pending::new(self);
        let (client, id) = poll_fn(|cx| pending.get().poll_request(cx.waker())).await?;
        Ok(Request {
            client,
            id,
            ended: false,
            kept: false,
            server: pending.done(),
        })
    }

    /// Poll-style receive for event loops that are not Rust futures (Python's asyncio, a
    /// C or C++ reactor): the next request if one is there, else `Poll::Pending` after
    /// arming the process's reactor to wake `waker` once one may be (and once per
    /// liveness slice, when the server looks for clients that are gone: poll again then).
    /// Greetings of new clients are answered on the way, as [`try_recv`](Self::try_recv)
    /// does. Cancel-safe like [`recv_async`](Self::recv_async) (which polls through the
    /// same path): a pending poll consumes no request, and [`disarm`](Self::disarm)
    /// withdraws the arm.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use std::task::{Poll, Waker};
    /// # use ringcast_service::{Client, ClientOptions, Server, ServerConfig};
    /// # let prefix = format!("rcdoc{}spoll", std::process::id());
    /// let mut server = Server::create("polled", ServerConfig::default().prefix(&prefix))?;
    /// // Nothing yet: the reactor is armed to wake the waker once there may be news.
    /// assert!(server.poll_recv(Waker::noop()).is_pending());
    /// # let opts = ClientOptions::default().prefix(&prefix).wait(Duration::from_secs(1));
    /// # let t = std::thread::spawn(move || {
    /// #     let mut c = Client::connect("polled", opts).unwrap();
    /// #     assert_eq!(&c.call(b"hi", Duration::from_secs(5)).unwrap()[..], b"hi");
    /// # });
    /// // A real loop waits for its waker; here, poll until the client's call is there.
    /// let request = loop {
    ///     if let Poll::Ready(r) = server.poll_recv(Waker::noop()) {
    ///         break r?;
    ///     }
    ///     std::thread::sleep(Duration::from_millis(1));
    /// };
    /// let echo = request.to_vec();
    /// request.respond(&echo)?;
    /// server.disarm();
    /// # t.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_recv(&mut self, waker: &Waker) -> Poll<Result<Request<'_>, ServerRecvError>> {
        match self.poll_request(waker) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok((client, id))) => Poll::Ready(Ok(Request {
                client,
                id,
                ended: false,
                kept: false,
                server: self,
            })),
        }
    }

    /// Readiness without receiving, for wait sets and event loops in other languages:
    /// `Poll::Ready` if a receive would not wait (a request, or a client's greeting or a
    /// stray message, which a receive handles on the way and returns nothing for), else
    /// `Poll::Pending` after arming the reactor as [`poll_recv`](Self::poll_recv) does.
    pub fn poll_ready(&mut self, waker: &Waker) -> Poll<()> {
        self.sweep_if_due();
        self.requests_mut().poll_ready(waker)
    }

    /// Withdraws an arm left by [`poll_recv`](Self::poll_recv) or
    /// [`poll_ready`](Self::poll_ready) (its waker will not be woken).
    pub fn disarm(&mut self) {
        self.requests_mut().disarm();
    }

    /// One receive for an event loop: a call of a connected client (kept), or `Pending`
    /// with the reactor armed for `waker` (it also wakes once per liveness slice, when
    /// the server looks for clients that are gone).
    fn poll_request(&mut self, waker: &Waker) -> Poll<Result<(PublisherId, u64), ServerRecvError>> {
        loop {
            self.sweep_if_due();
            match self.requests_mut().poll_recv_kept(waker) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(kept)) => {
                    if let Some(call) = self.classify_kept(kept.publisher) {
                        return Poll::Ready(Ok(call));
                    }
                }
                Poll::Ready(Err(ringcast_subscriber::RecvError::Corrupt { .. })) => {
                    self.count_malformed()
                }
                Poll::Ready(Err(_)) => return Poll::Ready(Err(ServerRecvError::Closed)),
            }
        }
    }
}

/// What a poll for one call's response found.
enum Found {
    /// Set aside earlier.
    Stashed(crate::client::Stashed),
    /// The kept message: call, last, kind.
    InPlace(u64, bool, u32),
    /// The call's stream has ended.
    Ended,
}

impl Client {
    /// The next response to `call` ([`recv`](Client::recv) without blocking the thread):
    /// `Ok(None)` once its stream has ended. Wrap it in your runtime's timeout; the server's
    /// death ends it with [`CallError::Disconnected`].
    pub async fn recv_async(&mut self, call: CallId) -> Result<Option<Response<'_>>, CallError> {
        let mut pending = Pending::new(self);
        let found = poll_fn(|cx| pending.get().poll_call(call, cx.waker())).await?;
        pending.done().found(found)
    }

    /// Poll-style [`recv_async`](Self::recv_async) for event loops that are not Rust
    /// futures (Python's asyncio, a C or C++ reactor): the next response to `call`
    /// (`Ok(None)` once its stream has ended; errors as [`recv`](Self::recv) gives them,
    /// never `Timeout`), else `Poll::Pending` after arming the process's reactor to wake
    /// `waker` once one may be there (and once per liveness slice, so that a dead server
    /// is seen: poll again then). A response to another call that arrives first is set
    /// aside for it ([`has_set_aside`](Self::has_set_aside)). Cancel-safe: a pending poll
    /// consumes nothing, and [`disarm`](Self::disarm) withdraws the arm.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use std::task::{Poll, Waker};
    /// # use ringcast_service::{Client, ClientOptions, Server, ServerConfig};
    /// # let prefix = format!("rcdoc{}cpoll", std::process::id());
    /// # let mut server = Server::create("cpolled", ServerConfig::default().prefix(&prefix))?;
    /// # let serving = std::thread::spawn(move || {
    /// #     let r = server.recv_timeout(Duration::from_secs(5)).unwrap();
    /// #     let echo = r.to_vec();
    /// #     r.respond(&echo).unwrap();
    /// #     server
    /// # });
    /// # let opts = ClientOptions::default().prefix(&prefix).wait(Duration::from_secs(1));
    /// let mut client = Client::connect("cpolled", opts)?;
    /// let call = client.send(b"ping", Duration::from_secs(5))?;
    /// // A real loop waits for its waker; here, poll until the response is there.
    /// let response = loop {
    ///     if let Poll::Ready(r) = client.poll_recv(call, Waker::noop()) {
    ///         break r?.expect("one response");
    ///     }
    ///     std::thread::sleep(Duration::from_millis(1));
    /// };
    /// assert_eq!(&response[..], b"ping");
    /// # drop(response);
    /// # client.disarm();
    /// # let _server = serving.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_recv(
        &mut self,
        call: CallId,
        waker: &Waker,
    ) -> Poll<Result<Option<Response<'_>>, CallError>> {
        match self.poll_call(call, waker) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(found)) => Poll::Ready(self.found(found)),
        }
    }

    /// Poll-style send for event loops that are not Rust futures: sends `payload` as a
    /// request if the server's queue has room (or it was claimed by an earlier poll),
    /// else `Poll::Pending` after arming the process's reactor to wake `waker` once there
    /// may be room (and once per liveness slice: a dead server then gives
    /// [`CallError::Disconnected`]). Errors as [`try_send`](Self::try_send), never
    /// `Full`. [`call_async`](Self::call_async) sends through it; a pending poll sends
    /// nothing, and [`disarm`](Self::disarm) withdraws the arm.
    pub fn poll_send(&mut self, payload: &[u8], waker: &Waker) -> Poll<Result<CallId, CallError>> {
        match self.try_send(payload) {
            Err(CallError::Full) => {}
            sent => return Poll::Ready(sent),
        }
        match self.requests_mut().poll_room(waker) {
            Poll::Pending => Poll::Pending,
            // The slot is claimed: this send gets it.
            Poll::Ready(()) => Poll::Ready(self.try_send(payload)),
        }
    }

    /// Readiness without receiving, for wait sets and event loops in other languages:
    /// `Poll::Ready` if a receive would not wait (a response there or set aside, or the
    /// server gone), else `Poll::Pending` after arming the reactor as
    /// [`poll_recv`](Self::poll_recv) does.
    pub fn poll_ready(&mut self, waker: &Waker) -> Poll<()> {
        // Strays at the head of the ring are dropped first (they must not say ready).
        if self.settle_strays() {
            return Poll::Ready(());
        }
        self.responses_mut().poll_ready(waker)
    }

    /// Withdraws an arm left by [`poll_recv`](Self::poll_recv),
    /// [`poll_ready`](Self::poll_ready) or [`poll_send`](Self::poll_send) (its waker will
    /// not be woken).
    pub fn disarm(&mut self) {
        self.responses_mut().disarm();
        self.requests_mut().disarm();
    }

    /// What a finished poll found, as a response (`None`: the end of the stream).
    fn found(&mut self, found: Found) -> Result<Option<Response<'_>>, CallError> {
        match found {
            Found::Stashed(s) => self.stashed(s),
            Found::InPlace(id, last, kind) => self.in_place(id, last, kind),
            Found::Ended => Ok(None),
        }
    }

    /// Sends a request (waiting, without blocking the thread, for room in the server's
    /// queue) and returns its first response, as [`call`](Client::call) does.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ringcast_service::{Client, ClientOptions, Server, ServerConfig};
    /// # let prefix = format!("rcdoc{}acall", std::process::id());
    /// # let mut server = Server::create("echo", ServerConfig::default().prefix(&prefix))?;
    /// # let opts = ClientOptions::default().prefix(&prefix).wait(Duration::from_secs(1));
    /// # let serving = std::thread::spawn(move || {
    /// #     for _ in 0..2 {
    /// #         if let Ok(r) = server.recv_timeout(Duration::from_secs(5)) {
    /// #             let echo = r.to_vec();
    /// #             r.respond(&echo).unwrap();
    /// #         }
    /// #     }
    /// # });
    /// let mut client = Client::connect("echo", opts)?;
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// rt.block_on(async {
    ///     let response = client.call_async(b"ping").await.unwrap();
    ///     assert_eq!(&response[..], b"ping");
    /// });
    /// # drop(client);
    /// # serving.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn call_async(&mut self, payload: &[u8]) -> Result<Response<'_>, CallError> {
        let mut pending = Pending::new(self);
        let call = poll_fn(|cx| pending.get().poll_send(payload, cx.waker())).await?;
        // Dropped from here on, the future abandons its call (as a timed-out `call`).
        pending.abandon = Some(call);
        let found = poll_fn(|cx| pending.get().poll_call(call, cx.waker())).await;
        let this = pending.done();
        // A first response ends the call (later ones are dropped on arrival).
        this.forget(call);
        match found? {
            Found::Stashed(s) => this.stashed(s)?.ok_or(CallError::NoResponse),
            Found::InPlace(id, last, kind) => {
                this.in_place(id, last, kind)?.ok_or(CallError::NoResponse)
            }
            Found::Ended => Err(CallError::NoResponse),
        }
    }

    /// One poll for `call`'s next response: set aside earlier, the kept message, the end,
    /// or `Pending` with the reactor armed for `waker`.
    fn poll_call(&mut self, call: CallId, waker: &Waker) -> Poll<Result<Found, CallError>> {
        self.release_response();
        if let Some(s) = self.take_stashed(call) {
            return Poll::Ready(s.map(Found::Stashed));
        }
        loop {
            match self.call_state(call) {
                Err(e) => return Poll::Ready(Err(e)),
                Ok(false) => return Poll::Ready(Ok(Found::Ended)),
                Ok(true) => {}
            }
            let next = self.next_message_with(|responses| match responses.poll_recv_kept(waker) {
                Poll::Pending => None,
                Poll::Ready(r) => Some(r.map_err(RecvTimeoutError::from)),
            });
            match next {
                None => return Poll::Pending,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                Some(Ok((id, last, kind))) if id == call.get() => {
                    return Poll::Ready(Ok(Found::InPlace(id, last, kind)))
                }
                Some(Ok((id, last, kind))) => self.stash_kept(id, last, kind),
            }
        }
    }
}

/// A handle whose async receive is pending: what a future dropped before it completes
/// must undo.
trait Withdraw {
    /// Withdraws the reactor arm of the last poll, and abandons `call` if given.
    fn withdraw(&mut self, call: Option<CallId>);
}

impl Withdraw for Server {
    fn withdraw(&mut self, _: Option<CallId>) {
        self.disarm();
    }
}

impl Withdraw for Client {
    fn withdraw(&mut self, call: Option<CallId>) {
        self.disarm();
        if let Some(call) = call {
            self.cancel(call);
        }
    }
}

/// The handle of an async method until it completes: dropped before [`done`](Self::done)
/// (the future was cancelled), it withdraws the arm (no stale waker stays registered) and
/// abandons [`abandon`](Self::abandon)'s call, which then no longer counts as in flight.
struct Pending<'a, T: Withdraw> {
    handle: Option<&'a mut T>,
    abandon: Option<CallId>,
}

impl<'a, T: Withdraw> Pending<'a, T> {
    fn new(handle: &'a mut T) -> Self {
        Pending {
            handle: Some(handle),
            abandon: None,
        }
    }

    fn get(&mut self) -> &mut T {
        self.handle.as_deref_mut().expect("pending until done")
    }

    /// The method completed: nothing to undo.
    fn done(mut self) -> &'a mut T {
        self.handle.take().expect("done once")
    }
}

impl<T: Withdraw> Drop for Pending<'_, T> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.withdraw(self.abandon);
        }
    }
}
