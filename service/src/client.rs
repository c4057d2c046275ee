//! The [`Client`] of a service, its calls and their [`Response`]s.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use ringcast_core::clock::deadline_after;
use ringcast_core::inspect::inspect;
use ringcast_core::trust::Owner;
use ringcast_core::waitset::sealed::MemberImpl;
use ringcast_core::waitset::{Refusal, SleepTarget};
use ringcast_core::{AttachError, CreateError, Start};
use ringcast_publisher::{Loan, Publisher, PublisherConfig};
use ringcast_subscriber::{RecvTimeoutError, Subscriber, SubscriberOptions, TryRecvError};

use crate::error::{CallError, ConnectError};
use crate::wire::{self, HEADER};
use crate::ClientOptions;

/// One call of a client: the handle its responses are received with
/// ([`Client::recv`]). Ids are unique per client and never reused; each client numbers
/// its own from a random base, so a `CallId` passed to another client is refused there
/// (`CallError::UnknownCall`) but for a one in 2^32 chance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(u64);

impl CallId {
    /// The request id the server sees ([`Request::id`](crate::Request::id)).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// The ids of the calls in flight: a few (at most the server's queue), so a short list
/// beats a hash set on the path of every call.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Vec<u64>);

impl InFlight {
    fn insert(&mut self, id: u64) {
        if !self.contains(&id) {
            self.0.push(id);
        }
    }
    fn contains(&self, id: &u64) -> bool {
        self.0.contains(id)
    }
    fn remove(&mut self, id: &u64) -> bool {
        match self.0.iter().position(|x| x == id) {
            Some(i) => {
                self.0.swap_remove(i);
                true
            }
            None => false,
        }
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

/// A response set aside while the caller waited for another call's.
pub(crate) struct Stashed {
    call: u64,
    last: bool,
    /// `None`: the end of the stream, no payload.
    payload: Option<AlignedCopy>,
    /// The stream ended because the server gave up on the call (`wire::FAIL`).
    failed: bool,
}

/// A copy of a payload, 16-byte aligned as a slot's payload is (so an archive in it can
/// be accessed where it could be in the ring).
pub(crate) struct AlignedCopy {
    words: Box<[u128]>,
    len: usize,
}

impl AlignedCopy {
    fn of(bytes: &[u8]) -> AlignedCopy {
        let mut words = vec![0u128; bytes.len().div_ceil(16)].into_boxed_slice();
        // SAFETY: `words` owns at least `bytes.len()` initialized bytes, and any byte
        // pattern is a valid `u128`; the two allocations do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                words.as_mut_ptr().cast::<u8>(),
                bytes.len(),
            )
        };
        AlignedCopy {
            words,
            len: bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of `words` are initialized (`of`), `u8` needs no
        // alignment, and the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

/// A client of a service: sends requests to its server and receives the responses meant
/// for it alone. Several requests may be in flight (up to the server's queue, or
/// [`ClientOptions::max_in_flight`]); their responses may come in any order, and each is
/// received through its [`CallId`]. Every wait has a timeout; a server that dies ends
/// every pending call with [`CallError::Disconnected`] within the liveness bound.
/// Dropping the client disconnects it (the server reclaims what it held).
pub struct Client {
    service: String,
    /// Our lane of the server's request topic.
    requests: Publisher,
    /// Our response topic, which the server publishes to us alone.
    responses: Subscriber,
    /// This client's first call id: its calls are numbered from a random base (the high
    /// 32 bits of its nonce), so a `CallId` of another client is very likely unknown here.
    first_id: u64,
    next_id: u64,
    in_flight: InFlight,
    max_in_flight: usize,
    /// Responses received while waiting for another call's, in arrival order.
    stash: VecDeque<Stashed>,
    /// The server is gone and everything it sent was received.
    gone: bool,
    /// Messages dropped because they were not service messages.
    malformed: u64,
    /// The payload of a response kept by [`Response::keep`] that was a copy (one kept in
    /// place is the response subscriber's kept message).
    kept_copy: Option<AlignedCopy>,
}

/// The first call id of a client whose greeting nonce is `nonce`: a random multiple of
/// 2^32 (never 0), so that ids of different clients (each counting up from its own base)
/// do not meet.
fn first_call_id(nonce: u64) -> u64 {
    (nonce & !0xFFFF_FFFF).max(1 << 32)
}

impl Client {
    /// Connects to the server of `service`: waits up to [`ClientOptions::wait`] for one to
    /// be up, takes a lane of its request topic and greets it; the server answers by
    /// creating this client's response topic, which the client attaches to.
    pub fn connect(service: &str, opts: ClientOptions) -> Result<Client, ConnectError> {
        let s = || service.to_owned();
        wire::validate_service(service).map_err(|source| ConnectError::Name {
            service: s(),
            source,
        })?;
        let no_server = || ConnectError::NoServer { service: s() };
        let deadline = deadline_after(opts.wait);
        let mut pause = Duration::from_micros(200);
        let untrusted = |topic: String, owner| ConnectError::UntrustedOwner {
            service: s(),
            topic,
            owner,
        };
        let denied = |topic: String, owner| ConnectError::PermissionDenied {
            service: s(),
            topic,
            owner,
        };
        let anchor = wire::anchor_topic(service);
        let mut requests = loop {
            // Whose plate it is, before anything else: a squatter's is refused at once,
            // and for good (as `Subscriber::attach_wait` refuses one). The request and
            // response topics are checked again on the descriptors that are mapped.
            if let Some((uid, gid)) = wire::ids_of(&opts.prefix, &anchor) {
                if !opts.trust.trusts(uid, gid) {
                    return Err(untrusted(anchor, Owner::of_uid(uid)));
                }
            }
            let up = match inspect(&opts.prefix, &anchor) {
                Ok(p) => p.publisher_alive && !p.closed,
                // Not up yet (or never): wait for it.
                Err(AttachError::NotFound { .. } | AttachError::NotReady { .. }) => false,
                Err(AttachError::PermissionDenied { .. }) => {
                    return Err(denied(
                        anchor.clone(),
                        Some(wire::owner_of(&opts.prefix, &anchor)),
                    ))
                }
                // A bad prefix, another ringcast version, a file that is no segment: no
                // wait fixes that.
                Err(source) => {
                    return Err(ConnectError::Attach {
                        service: s(),
                        source,
                    })
                }
            };
            let joined = if up {
                let join = PublisherConfig::default()
                    .prefix(&opts.prefix)
                    .join_only()
                    .wait_strategy(opts.strategy)
                    .trust(opts.trust.clone());
                match Publisher::create(&wire::request_topic(service), join) {
                    Ok(p) => Some(p),
                    Err(CreateError::NothingToJoin { .. }) => None,
                    // Joining refuses a topic of a user it does not trust as held by that
                    // user (the only `AlreadyPublished` a join-only create returns).
                    Err(CreateError::AlreadyPublished { holder, .. }) => {
                        return Err(untrusted(wire::request_topic(service), holder));
                    }
                    Err(CreateError::PermissionDenied { holder, .. }) => {
                        return Err(denied(wire::request_topic(service), holder));
                    }
                    Err(CreateError::PublishersFull { max, .. }) => {
                        return Err(ConnectError::TooManyClients {
                            service: s(),
                            // One lane is the server's.
                            max: max - 1,
                        });
                    }
                    Err(source) => {
                        return Err(ConnectError::Create {
                            service: s(),
                            source,
                        })
                    }
                }
            } else {
                None
            };
            if let Some(p) = joined {
                break p;
            }
            let left = deadline.map_or(pause, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(no_server());
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(20));
        };
        if let Some((want, _)) = opts.types {
            let found = requests.geometry().config().type_info;
            if found != want {
                return Err(ConnectError::TypeMismatch {
                    service: s(),
                    expected: want.to_string(),
                    found: found.to_string(),
                });
            }
        }
        let nonce = RandomState::new().hash_one((
            std::process::id(),
            Instant::now(),
            &requests as *const _ as usize,
        ));
        let handshake = deadline_after(opts.handshake);
        let left = |d: Option<Instant>| {
            d.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            })
        };
        let greeting = HEADER + wire::HELLO_BYTES;
        if requests.capacity() < greeting {
            // No server of this build makes such slots.
            return Err(ConnectError::Malformed {
                service: s(),
                what: format!(
                    "its request slots hold {} bytes, less than a greeting's {greeting}",
                    requests.capacity()
                ),
            });
        }
        {
            let mut hello = requests
                .loan_timeout(left(handshake))
                .map_err(|_| ConnectError::Timeout { service: s() })?;
            wire::encode(&mut hello[..HEADER], 0, wire::HELLO);
            hello[HEADER..greeting].copy_from_slice(&nonce.to_le_bytes());
            hello.commit(greeting);
        }
        // The server answers by creating our response topic; it is looked for in short
        // slices, and between them the server's liveness, so a server that dies meanwhile
        // is told at once, not at the end of the handshake timeout.
        let response_topic = wire::response_topic(service, nonce);
        let slice = Duration::from_millis(50);
        let responses = loop {
            let wait = left(handshake);
            let got = Subscriber::attach_wait(
                &response_topic,
                match opts.types {
                    Some((_, response)) => SubscriberOptions::default().expect_type(response),
                    None => SubscriberOptions::default(),
                }
                .prefix(&opts.prefix)
                .start(Start::Oldest)
                .wait_strategy(opts.strategy)
                .trust(opts.trust.clone()),
                wait.min(slice),
            );
            match got {
                Err(
                    ringcast_core::AttachError::NotFound { .. }
                    | ringcast_core::AttachError::NotReady { .. },
                ) if wait > slice => {
                    if !inspect(&opts.prefix, &anchor).is_ok_and(|p| p.publisher_alive && !p.closed)
                    {
                        return Err(ConnectError::ServerGone { service: s() });
                    }
                }
                got => break got,
            }
        }
        .map_err(|source| match source {
            ringcast_core::AttachError::UntrustedOwner { topic, owner } => untrusted(topic, owner),
            ringcast_core::AttachError::PermissionDenied { topic } => {
                let owner = wire::owner_of(&opts.prefix, &topic);
                denied(topic, Some(owner))
            }
            ringcast_core::AttachError::NotFound { .. }
            | ringcast_core::AttachError::NotReady { .. }
            | ringcast_core::AttachError::Closed { .. } => ConnectError::Timeout { service: s() },
            source => ConnectError::Attach {
                service: s(),
                source,
            },
        })?;
        let queue = requests.geometry().slot_count as usize;
        let max_in_flight = opts.max_in_flight.unwrap_or(queue).clamp(1, queue);
        tracing::debug!(service, lane = requests.lane(), "connected");
        Ok(Client {
            service: s(),
            requests,
            responses,
            first_id: first_call_id(nonce),
            next_id: first_call_id(nonce),
            in_flight: InFlight(Vec::with_capacity(max_in_flight)),
            max_in_flight,
            stash: VecDeque::new(),
            gone: false,
            malformed: 0,
            kept_copy: None,
        })
    }

    /// Disconnects, as dropping does, but keeps the response ring mapped, and the copy of
    /// a kept response that arrived while another call's was awaited, until the returned
    /// `Retained` is dropped: for a foreign pointer into the kept response that may
    /// outlive the client (a Python array over a response's buffer).
    pub fn close_retaining(mut self) -> ringcast_core::endpoint::Retained {
        let copy = self
            .kept_copy
            .take()
            .map(|c| Box::new(c) as Box<dyn Send + Sync>);
        let retained = self.responses.retain(copy);
        drop(self);
        retained
    }

    /// Whether this client was made in the process this one was `fork()`ed from. Such a
    /// copy belongs to that process: dropping it here leaves the parent's connection untouched (so a child
    /// may drop what it inherited), but calling through it from the child would mix the parent's calls and responses; make a new one in
    /// the child instead. The Python and C bindings refuse every call on it.
    #[inline]
    pub fn is_inherited(&self) -> bool {
        self.responses.is_inherited()
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The largest request payload the server takes.
    pub fn max_request(&self) -> usize {
        self.requests.geometry().slot_capacity as usize - HEADER
    }

    /// The largest response payload the server sends (its `max_response`, from the
    /// client's response topic): what a proxy of the service must be able to carry.
    pub fn max_response(&self) -> usize {
        (self.responses.geometry().slot_capacity as usize).saturating_sub(HEADER)
    }

    /// Requests this client may have in flight (its options' bound, at most the server's
    /// queue).
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// The [`CallId`] whose [`get`](CallId::get) is `id`, if this client sent such a call
    /// (in flight or not): for bindings that hand call ids across a boundary as numbers.
    pub fn call_id(&self, id: u64) -> Option<CallId> {
        (self.first_id..self.next_id)
            .contains(&id)
            .then_some(CallId(id))
    }

    /// Requests in flight (sent, their stream not yet ended or cancelled).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The payload of the response kept by [`Response::keep`], until
    /// [`release_response`](Self::release_response) or this client's next receive
    /// (`recv`, `recv_any`, `call`); `None` if none is kept.
    pub fn kept_response(&self) -> Option<&[u8]> {
        match &self.kept_copy {
            Some(c) => Some(c.bytes()),
            None => self.responses.kept().and_then(|m| m.get(HEADER..)),
        }
    }

    /// Releases the response kept by [`Response::keep`] (its slot goes back to the
    /// server); nothing if none is kept.
    pub fn release_response(&mut self) {
        self.kept_copy = None;
        self.responses.release_kept();
    }

    /// Messages on the response topic that were not service messages (dropped).
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Sends a request, waiting up to `timeout` for room in the server's queue.
    pub fn send(&mut self, payload: &[u8], timeout: Duration) -> Result<CallId, CallError> {
        self.send_within(payload, &mut Patience::new(timeout))
    }

    fn send_within(&mut self, payload: &[u8], wait: &mut Patience) -> Result<CallId, CallError> {
        let mut loan = self.loan_within(wait)?;
        loan.write(payload)?;
        Ok(loan.commit(payload.len()))
    }

    /// Sends a request if the server's queue has room now ([`CallError::Full`] if not).
    pub fn try_send(&mut self, payload: &[u8]) -> Result<CallId, CallError> {
        self.send(payload, Duration::ZERO)
    }

    /// Loans a request slot of the server's queue (waiting up to `timeout` for room), to
    /// write the request in place: zero copy.
    pub fn loan(&mut self, timeout: Duration) -> Result<RequestLoan<'_>, CallError> {
        self.loan_within(&mut Patience::new(timeout))
    }

    pub(crate) fn loan_within(
        &mut self,
        wait: &mut Patience,
    ) -> Result<RequestLoan<'_>, CallError> {
        if self.gone {
            return Err(CallError::Disconnected);
        }
        if self.in_flight.len() >= self.max_in_flight {
            return Err(CallError::TooManyInFlight {
                max: self.max_in_flight,
            });
        }
        // Room now (no clock read), else wait for it; either way the slot stays claimed
        // for `pending_loan` (a loan dropped uncommitted keeps its claim).
        let claimed = self.requests.try_loan().is_ok()
            || (!wait.is_zero() && self.requests.loan_timeout(wait.left()).is_ok());
        if !claimed {
            if !self.responses.publisher_alive() {
                self.gone = true;
                return Err(CallError::Disconnected);
            }
            return Err(if wait.is_zero() {
                CallError::Full
            } else {
                CallError::Timeout
            });
        }
        let loan = self.requests.pending_loan().expect("claimed above");
        Ok(RequestLoan {
            loan,
            id: self.next_id,
            next_id: &mut self.next_id,
            in_flight: &mut self.in_flight,
        })
    }

    /// Sends a request and returns its first response, waiting at most `timeout` in all;
    /// any further responses to it are dropped on arrival. For services that answer each
    /// request with one response.
    pub fn call(&mut self, payload: &[u8], timeout: Duration) -> Result<Response<'_>, CallError> {
        let mut wait = Patience::new(timeout);
        let call = self.send_within(payload, &mut wait)?;
        self.call_response(call, &mut wait)
    }

    /// The first response of `call` (sent with [`send`](Self::send)) as
    /// [`call`](Self::call) returns it: the call is abandoned after it or its timeout.
    pub(crate) fn call_response(
        &mut self,
        call: CallId,
        wait: &mut Patience,
    ) -> Result<Response<'_>, CallError> {
        match self.recv_until(call, wait, true) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(CallError::NoResponse),
            Err(e) => Err(e),
        }
    }

    /// The next response to `call`, waiting at most `timeout`: `Ok(None)` once its stream
    /// has ended (and for a cancelled call). Responses to other calls that arrive first are
    /// kept for them (copied out of the ring).
    pub fn recv(
        &mut self,
        call: CallId,
        timeout: Duration,
    ) -> Result<Option<Response<'_>>, CallError> {
        self.recv_until(call, &mut Patience::new(timeout), false)
    }

    /// The next response to any call, waiting at most `timeout`: the call and its
    /// response (`None`: the call's stream ended with no payload).
    pub fn recv_any(
        &mut self,
        timeout: Duration,
    ) -> Result<(CallId, Option<Response<'_>>), CallError> {
        self.release_response();
        if let Some(s) = self.stash.pop_front() {
            return Ok((CallId(s.call), self.stashed(s)?));
        }
        let (call, last, kind) = self.next_message(&mut Patience::new(timeout))?;
        Ok((CallId(call), self.in_place(call, last, kind)?))
    }

    /// Whether a response to `call` (or the end of its stream) was set aside while the
    /// client received for another call: its next receive returns at once. For event
    /// loops that wait for several calls of one client at once (a receive for one call
    /// sets aside what it finds for the others, and their waiters must then look).
    pub fn has_set_aside(&self, call: CallId) -> bool {
        self.stash.iter().any(|s| s.call == call.0)
    }

    /// For readiness (wait sets, event loops): whether a receive would find something
    /// now, a response set aside or the server gone. Responses at the head of the ring
    /// that nobody waits for (a cancelled or abandoned call's, later parts of a `call`'s
    /// stream, foreign bytes) are dropped on the way, and the first one a call in flight
    /// waits for is set aside (a copy): a stray never keeps a waiter awake. A response
    /// kept by [`Response::keep`] stays where it is (the ring's news then says ready).
    pub(crate) fn settle_strays(&mut self) -> bool {
        if !self.stash.is_empty() || self.gone {
            return true;
        }
        if self.responses.kept().is_some() {
            return self.responses.is_ready();
        }
        let next = self.next_message_with(|responses| match responses.try_recv_kept() {
            Err(TryRecvError::Empty) => None,
            got => Some(got.map_err(RecvTimeoutError::from)),
        });
        match next {
            None => false,
            Some(Ok((id, last, kind))) => {
                self.stash_kept(id, last, kind);
                true
            }
            Some(Err(_)) => true,
        }
    }

    /// The response subscriber (for the poll-style receive).
    pub(crate) fn responses_mut(&mut self) -> &mut Subscriber {
        &mut self.responses
    }

    /// The request publisher (for the poll-style send).
    pub(crate) fn requests_mut(&mut self) -> &mut Publisher {
        &mut self.requests
    }

    /// Stops waiting for `call`: its later responses are dropped on arrival, and it no
    /// longer counts as in flight.
    pub fn cancel(&mut self, call: CallId) {
        self.in_flight.remove(&call.0);
        self.stash.retain(|s| s.call != call.0);
    }

    /// The next response to `call`; `only_first`: a `call`'s, which abandons the call
    /// after its first response or its timeout.
    fn recv_until(
        &mut self,
        call: CallId,
        wait: &mut Patience,
        only_first: bool,
    ) -> Result<Option<Response<'_>>, CallError> {
        self.release_response();
        if let Some(s) = self.take_stashed(call) {
            return self.stashed(s?);
        }
        loop {
            if !self.call_state(call)? {
                return Ok(None);
            }
            let (id, last, kind) = match self.next_message(wait) {
                Ok(next) => next,
                Err(e) => {
                    if only_first {
                        self.cancel(call);
                    }
                    return Err(e);
                }
            };
            if id == call.0 {
                if only_first {
                    self.in_flight.remove(&id);
                }
                return self.in_place(id, last, kind);
            }
            self.stash_kept(id, last, kind);
        }
    }

    /// A response set aside for `call`, if there is one (an error for a call id this
    /// client never made).
    pub(crate) fn take_stashed(&mut self, call: CallId) -> Option<Result<Stashed, CallError>> {
        if !(self.first_id..self.next_id).contains(&call.0) {
            return Some(Err(CallError::UnknownCall));
        }
        let i = self.stash.iter().position(|s| s.call == call.0)?;
        Some(Ok(self.stash.remove(i).expect("found")))
    }

    /// Whether `call` may still get responses: `Ok(false)` once its stream ended (or it
    /// was cancelled), `Disconnected` once the server is gone.
    pub(crate) fn call_state(&self, call: CallId) -> Result<bool, CallError> {
        if self.gone {
            return Err(CallError::Disconnected);
        }
        Ok(self.in_flight.contains(&call.0))
    }

    /// Sets the kept message (a response to call `id`) aside for its call: a copy.
    pub(crate) fn stash_kept(&mut self, id: u64, last: bool, kind: u32) {
        let payload = matches!(kind, wire::PART | wire::LAST)
            .then(|| AlignedCopy::of(self.responses.kept().map_or(&[], |m| &m[HEADER..])));
        self.responses.release_kept();
        self.stash.push_back(Stashed {
            call: id,
            last,
            payload,
            failed: kind == wire::FAIL,
        });
    }

    /// Stops counting `call` as in flight without dropping what was set aside for it.
    pub(crate) fn forget(&mut self, call: CallId) {
        self.in_flight.remove(&call.0);
    }

    /// Receives the next response meant for a call in flight (kept in the subscriber):
    /// its call, whether it is the last, and its kind. Drops strays and foreign bytes.
    fn next_message(&mut self, wait: &mut Patience) -> Result<(u64, bool, u32), CallError> {
        self.next_message_with(|responses| {
            // A response there now costs no clock read.
            Some(match responses.try_recv_kept() {
                // One clock read for the deadline (none if the response is there).
                Err(TryRecvError::Empty) if !wait.is_zero() => {
                    responses.recv_kept_until(wait.deadline_at(Instant::now()))
                }
                got => got.map_err(RecvTimeoutError::from),
            })
        })
        .expect("a blocking receive always completes")
    }

    /// The body of [`next_message`](Self::next_message) with its receive given: `None`
    /// from `receive` (an event loop's pending poll) is passed on.
    pub(crate) fn next_message_with(
        &mut self,
        mut receive: impl FnMut(
            &mut Subscriber,
        ) -> Option<Result<ringcast_subscriber::Kept, RecvTimeoutError>>,
    ) -> Option<Result<(u64, bool, u32), CallError>> {
        loop {
            if self.gone {
                return Some(Err(CallError::Disconnected));
            }
            match receive(&mut self.responses)? {
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return Some(Err(CallError::Timeout)),
                Err(RecvTimeoutError::Corrupt { .. }) => {
                    self.malformed += 1;
                    continue;
                }
                Err(_) => {
                    // The server is gone (or closed our topic): every call ends.
                    self.gone = true;
                    self.in_flight.clear();
                    return Some(Err(CallError::Disconnected));
                }
            }
            let header = self.responses.kept().and_then(wire::decode);
            let Some(h) = header
                .filter(|h| matches!(h.kind, wire::PART | wire::LAST | wire::END | wire::FAIL))
            else {
                self.malformed += 1;
                self.responses.release_kept();
                continue;
            };
            if !self.in_flight.contains(&h.id) {
                // A cancelled call's (or a forged id): nobody waits for it.
                self.responses.release_kept();
                continue;
            }
            let last = h.kind != wire::PART;
            if last {
                self.in_flight.remove(&h.id);
            }
            return Some(Ok((h.id, last, h.kind)));
        }
    }

    /// The kept message as the response to `call`, `None` (released) for an end, or
    /// `Failed` (released) for the end of a call the server gave up on.
    pub(crate) fn in_place(
        &mut self,
        call: u64,
        last: bool,
        kind: u32,
    ) -> Result<Option<Response<'_>>, CallError> {
        match kind {
            wire::END => {
                self.responses.release_kept();
                return Ok(None);
            }
            wire::FAIL => {
                self.responses.release_kept();
                return Err(CallError::Failed { call: CallId(call) });
            }
            _ => {}
        }
        Ok(Some(Response {
            client: self,
            call: CallId(call),
            last,
            copy: None,
            kept: false,
        }))
    }

    /// A response set aside, as [`in_place`](Self::in_place) gives one.
    pub(crate) fn stashed(&mut self, s: Stashed) -> Result<Option<Response<'_>>, CallError> {
        if s.failed {
            return Err(CallError::Failed {
                call: CallId(s.call),
            });
        }
        let Some(payload) = s.payload else {
            return Ok(None);
        };
        Ok(Some(Response {
            client: self,
            call: CallId(s.call),
            last: s.last,
            copy: Some(payload),
            kept: false,
        }))
    }
}

/// How long a call may still wait, read off the clock only once it has to wait: a call
/// whose room or response is there at once costs no clock read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Patience {
    timeout: Duration,
    deadline: Option<Option<Instant>>,
}

impl Patience {
    pub(crate) fn new(timeout: Duration) -> Patience {
        Patience {
            timeout,
            deadline: None,
        }
    }

    /// Whether it never waits.
    pub(crate) fn is_zero(&self) -> bool {
        self.timeout.is_zero()
    }

    /// When it ends (`None`: never), fixed by the first call from `now` (a clock read the
    /// caller already made).
    pub(crate) fn deadline_at(&mut self, now: Instant) -> Option<Instant> {
        let timeout = self.timeout;
        *self
            .deadline
            .get_or_insert_with(|| now.checked_add(timeout))
    }

    /// What is left of it (`Duration::MAX`: for ever); the first call reads the clock.
    pub(crate) fn left(&mut self) -> Duration {
        if self.timeout.is_zero() {
            return Duration::ZERO;
        }
        let timeout = self.timeout;
        left(*self.deadline.get_or_insert_with(|| deadline_after(timeout)))
    }
}

pub(crate) fn left(deadline: Option<Instant>) -> Duration {
    deadline.map_or(Duration::MAX, |d| {
        d.saturating_duration_since(Instant::now())
    })
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("service", &self.service)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

// SAFETY: the target is the client's own response subscriber's, which lives as long as
// the client (it is moved with it into the set).
unsafe impl MemberImpl for Client {
    fn sleep_target(&self) -> SleepTarget {
        self.responses.sleep_target()
    }
    fn is_ready(&mut self) -> bool {
        self.settle_strays()
    }
    fn check_liveness(&mut self) {
        self.responses.check_liveness();
    }
    fn refusal(&mut self) -> Option<Refusal> {
        if self.stash.is_empty() {
            self.responses.refusal()
        } else {
            None
        }
    }
}

/// A request being written in place in the server's queue; [`commit`](Self::commit)
/// sends it. Derefs to the payload bytes (as many as the server takes). Dropped without
/// a commit, nothing is sent.
pub struct RequestLoan<'a> {
    loan: Loan<'a>,
    id: u64,
    next_id: &'a mut u64,
    in_flight: &'a mut InFlight,
}

impl RequestLoan<'_> {
    fn write(&mut self, payload: &[u8]) -> Result<(), CallError> {
        let max = self.len();
        if payload.len() > max {
            return Err(CallError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        self[..payload.len()].copy_from_slice(payload);
        Ok(())
    }

    /// Sends the first `len` payload bytes as the request.
    ///
    /// # Panics
    /// If `len` is larger than the loan.
    pub fn commit(mut self, len: usize) -> CallId {
        wire::encode(&mut self.loan[..HEADER], self.id, wire::CALL);
        self.loan.commit(HEADER + len);
        *self.next_id += 1;
        self.in_flight.insert(self.id);
        CallId(self.id)
    }
}

impl std::ops::Deref for RequestLoan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.loan[HEADER..]
    }
}

impl std::ops::DerefMut for RequestLoan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.loan[HEADER..]
    }
}

/// A response: read in place in the client's response ring until dropped (or a copy, for
/// one that arrived while the client waited for another call's). Derefs to the payload.
pub struct Response<'a> {
    client: &'a mut Client,
    call: CallId,
    last: bool,
    copy: Option<AlignedCopy>,
    /// Kept in the client ([`Response::keep`]): not released when dropped.
    kept: bool,
}

impl Response<'_> {
    /// The payload.
    pub fn bytes(&self) -> &[u8] {
        match &self.copy {
            Some(c) => c.bytes(),
            None => self.client.responses.kept().map_or(&[], |m| &m[HEADER..]),
        }
    }
    /// The call it answers.
    pub fn call(&self) -> CallId {
        self.call
    }
    /// Whether it is the last response of its call's stream.
    pub fn is_last(&self) -> bool {
        self.last
    }

    /// Keeps the response in the client instead of borrowing it: for code that cannot
    /// hold the borrow across calls (the C and Python bindings). Its payload stays
    /// [`Client::kept_response`] (in place, or the copy it was) until
    /// [`Client::release_response`] or the client's next receive. Returns the call it
    /// answers.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ringcast_service::{Client, ClientOptions, Server, ServerConfig};
    /// # let prefix = format!("rcdoc{}rkeep", std::process::id());
    /// # let mut server = Server::create("rkeeper", ServerConfig::default().prefix(&prefix))?;
    /// # let t = std::thread::spawn(move || {
    /// #     server.recv_timeout(Duration::from_secs(5)).unwrap().respond(b"pong").unwrap();
    /// # });
    /// # let opts = ClientOptions::default().prefix(&prefix).wait(Duration::from_secs(1));
    /// let mut client = Client::connect("rkeeper", opts)?;
    /// client.call(b"ping", Duration::from_secs(5))?.keep();
    /// assert_eq!(client.kept_response(), Some(&b"pong"[..]));
    /// client.release_response();
    /// # t.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep(mut self) -> CallId {
        self.kept = true;
        self.client.kept_copy = self.copy.take();
        self.call
    }
}

impl std::ops::Deref for Response<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

impl Drop for Response<'_> {
    fn drop(&mut self) {
        if self.copy.is_none() && !self.kept {
            self.client.responses.release_kept();
        }
    }
}

impl std::fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("call", &self.call)
            .field("last", &self.last)
            .field("len", &self.bytes().len())
            .finish()
    }
}

impl Client {
    /// The fingerprint of the server's request type, as its request topic records it
    /// ([`TypeInfo::RAW`](ringcast_core::TypeInfo::RAW) for an untyped server): what a
    /// proxy of the service (a bridge) must announce so that typed clients elsewhere
    /// connect to it as they would here.
    pub fn request_type(&self) -> ringcast_core::TypeInfo {
        self.requests.geometry().type_info
    }

    /// The fingerprint of the server's response type, as this client's response topic
    /// records it (see [`request_type`](Self::request_type)).
    pub fn response_type(&self) -> ringcast_core::TypeInfo {
        self.responses.geometry().type_info
    }
}
