//! The [`Server`] of a service and the [`Request`]s it receives.

use std::time::{Duration, Instant};

use ringcast_core::clock::LIVENESS_SLICE;
use ringcast_core::waitset::sealed::MemberImpl;
use ringcast_core::waitset::{Refusal, SleepTarget};
use ringcast_core::{CreateError, Overflow, PublisherId, Start};
use ringcast_publisher::{Publisher, PublisherConfig};
use ringcast_subscriber::{RecvTimeoutError, Subscriber, SubscriberOptions, TryRecvError};

use crate::client::Patience;
use crate::error::{RespondError, ServeError, ServerRecvError};
use crate::wire::{self, HEADER};
use crate::ServerConfig;

/// A connected client, as the server knows it: the response topic it publishes to it.
struct Link {
    responses: Publisher,
    /// The request whose response is loaned in place and not committed yet: the ring's
    /// one claimed slot is its (see [`Server::loan_response`]).
    loaned_for: Option<u64>,
}

/// The connected clients by the lane they send on (at most one per lane, named by its
/// writer id too): an index, not a hash, on the path of every request and response.
#[derive(Default)]
struct Links(Vec<Option<(PublisherId, Link)>>);

impl Links {
    fn get_mut(&mut self, id: &PublisherId) -> Option<&mut Link> {
        match self.0.get_mut(id.lane as usize) {
            Some(Some((who, link))) if who == id => Some(link),
            _ => None,
        }
    }
    fn contains_key(&self, id: &PublisherId) -> bool {
        matches!(self.0.get(id.lane as usize), Some(Some((who, _))) if who == id)
    }
    /// Links `id`, replacing whoever had its lane before (gone: a lane has one writer).
    fn insert(&mut self, id: PublisherId, link: Link) {
        let lane = id.lane as usize;
        if self.0.len() <= lane {
            self.0.resize_with(lane + 1, || None);
        }
        self.0[lane] = Some((id, link));
    }
    fn remove(&mut self, id: &PublisherId) {
        if self.contains_key(id) {
            self.0[id.lane as usize] = None;
        }
    }
    fn retain(&mut self, mut keep: impl FnMut(&PublisherId) -> bool) {
        for slot in &mut self.0 {
            if slot.as_ref().is_some_and(|(id, _)| !keep(id)) {
                *slot = None;
            }
        }
    }
    fn len(&self) -> usize {
        self.0.iter().filter(|l| l.is_some()).count()
    }
}

/// What the server has counted that it did not hand to the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Clients connected now.
    pub clients: usize,
    /// Messages dropped because they were not service messages (too short, untagged, an
    /// unknown kind, or corrupt in the ring).
    pub malformed: u64,
    /// Requests dropped because their client never greeted, or is gone.
    pub unknown_client: u64,
    /// Greetings refused (the response topic could not be created).
    pub refused: u64,
}

/// The one server of a service: receives the requests of every client in place and
/// answers each with zero, one or several responses, which reach only the client that
/// asked. Dropping it ends the service: clients' pending and later calls end with
/// `CallError::Disconnected`.
///
/// ```
/// use std::time::Duration;
/// use ringcast_service::{Client, ClientOptions, Server, ServerConfig};
/// # let prefix = format!("rcdoc{}srv", std::process::id());
/// let mut server = Server::create("adder", ServerConfig::default().prefix(&prefix))?;
/// let t = std::thread::spawn(move || {
///     let request = server.recv_timeout(Duration::from_secs(5)).unwrap();
///     let sum: u32 = request.iter().map(|&b| b as u32).sum();
///     request.respond(&sum.to_le_bytes()).unwrap();
/// });
/// let opts = ClientOptions::default().prefix(&prefix).wait(Duration::from_secs(1));
/// let mut client = Client::connect("adder", opts)?;
/// let response = client.call(&[1, 2, 3], Duration::from_secs(5))?;
/// assert_eq!(&response[..], &6u32.to_le_bytes());
/// # drop(response);
/// # t.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Server {
    service: String,
    prefix: String,
    /// Every client's requests (one lane each), read by this server alone.
    requests: Subscriber,
    /// Connected clients by the id of the lane they send on.
    links: Links,
    /// The configuration of the response topics it creates.
    response_config: PublisherConfig,
    max_response: usize,
    /// The next time to look for clients that are gone.
    sweep_at: Instant,
    /// Receive attempts, for the search's pace while requests keep coming.
    received: u64,
    stats: ServerStats,
    /// A lane of the request topic that the server holds, so the topic outlives its
    /// clients (and a client that joins finds the server's configuration).
    _keeper: Publisher,
    /// The name plate: while it lives, no other server can serve the name. Dropped first,
    /// so a new server can start as soon as this one is going.
    anchor: Option<Publisher>,
    /// Ends of requests dropped unanswered while their client's response ring was full:
    /// sent again at each sweep until they fit (or the client is gone), so that such a
    /// client is told its stream ended instead of waiting for its timeout.
    owed_ends: Vec<(PublisherId, u64)>,
}

impl Server {
    /// Starts serving `service`. Fails with [`ServeError::AlreadyServed`] if a live server
    /// has it; a dead server's topics are reclaimed. Clients connected to a dead server
    /// must connect again (their calls ended with `Disconnected`).
    pub fn create(service: &str, cfg: ServerConfig) -> Result<Server, ServeError> {
        let s = || service.to_owned();
        wire::validate_service(service).map_err(|source| ServeError::Name {
            service: s(),
            source,
        })?;
        let config_err = |reason: String| ServeError::Config {
            service: s(),
            reason,
        };
        if cfg.max_clients == 0 || cfg.max_clients >= ringcast_core::geometry::MAX_PUBLISHERS {
            return Err(config_err(format!(
                "max_clients {} must be 1 to {}",
                cfg.max_clients,
                ringcast_core::geometry::MAX_PUBLISHERS - 1
            )));
        }
        if cfg.response_slots < cfg.queue {
            return Err(config_err(format!(
                "response_slots {} must be at least the queue ({}), so that every request in flight can be answered",
                cfg.response_slots, cfg.queue
            )));
        }
        if cfg.mode & !0o666 != 0 || cfg.mode & 0o600 != 0o600 {
            return Err(config_err(format!(
                "mode {:#o} must include 0o600 (the server's own user reads and writes its topics) and nothing above 0o666",
                cfg.mode
            )));
        }
        // The name plate is only looked at by clients (read-only): no write bits but the
        // server's.
        let plate_mode = cfg.mode & 0o644;
        let create_err = |source: CreateError| match source {
            CreateError::Config { source, .. } => config_err(source.to_string()),
            source => ServeError::Create {
                service: s(),
                source,
            },
        };
        // Every size a client may ask for must make a topic: checked here, not at the
        // first greeting (a response topic is made for each client as it connects).
        let slot = |max: u64, what: &str| {
            (HEADER as u64)
                .checked_add(max)
                .filter(|&b| b <= ringcast_core::geometry::MAX_SLOT_BYTES)
                .ok_or_else(|| {
                    config_err(format!(
                        "{what} {max} must be at most {} bytes",
                        ringcast_core::geometry::MAX_SLOT_BYTES - HEADER as u64
                    ))
                })
        };
        let request_slot = slot(cfg.max_request.max(wire::HELLO_BYTES as u64), "max_request")?;
        let response_slot = slot(cfg.max_response, "max_response")?;
        let response_config = PublisherConfig::default()
            .prefix(&cfg.prefix)
            .slots(cfg.response_slots)
            .slot_size(response_slot)
            .type_info(cfg.types.1)
            .alignment(cfg.alignment)
            .overflow(Overflow::Block)
            // The client, and room for a diagnostic tool.
            .max_subscribers(2)
            .mode(cfg.mode)
            .wait_strategy(cfg.wait);
        ringcast_core::Geometry::compute(
            response_config.segment(),
            ringcast_core::residency::page_size(),
            0,
        )
        .map_err(|e| config_err(format!("the response topics: {e}")))?;
        let request_cfg = PublisherConfig::default()
            .prefix(&cfg.prefix)
            .slots(cfg.queue)
            // A greeting (a nonce) fits whatever the largest request.
            .slot_size(request_slot)
            .overflow(Overflow::Block)
            .type_info(cfg.types.0)
            .alignment(cfg.alignment)
            .max_publishers(cfg.max_clients + 1)
            // The server, and room for a diagnostic tool (a monitor never gates).
            .max_subscribers(4)
            .mode(cfg.mode);
        let served = || {
            ringcast_core::inspect::inspect(&cfg.prefix, &wire::anchor_topic(service))
                .ok()
                .filter(|p| p.publisher_alive && !p.closed)
                .map(|_| ServeError::AlreadyServed {
                    service: s(),
                    holder: wire::owner_of(&cfg.prefix, &wire::anchor_topic(service)),
                })
        };
        if let Some(e) = served() {
            return Err(e);
        }
        // The keeper and the server's subscription first, the name plate last: a client
        // greets only once the plate is up, and then the server reads its greeting. (Two
        // servers starting at once: the plate, exclusive, picks one.)
        let keeper =
            Publisher::create(&wire::request_topic(service), request_cfg).map_err(create_err)?;
        let requests = Subscriber::attach(
            &wire::request_topic(service),
            SubscriberOptions::default()
                .prefix(&cfg.prefix)
                .start(Start::Latest)
                .wait_strategy(cfg.wait),
        )
        .map_err(|source| ServeError::Attach {
            service: s(),
            source,
        })?;
        let mut anchor_cfg = PublisherConfig::default()
            .prefix(&cfg.prefix)
            .slots(2)
            .slot_size(64)
            .overflow(Overflow::Overwrite)
            .max_subscribers(1)
            .mode(plate_mode);
        if let Some(origin) = &cfg.origin {
            anchor_cfg = anchor_cfg.imported_from(origin.as_str());
        }
        let anchor =
            Publisher::create(&wire::anchor_topic(service), anchor_cfg).map_err(|e| match e {
                CreateError::AlreadyPublished { holder, .. } => ServeError::AlreadyServed {
                    service: s(),
                    holder,
                },
                e => create_err(e),
            })?;
        tracing::info!(service, "serving");
        Ok(Server {
            service: s(),
            prefix: cfg.prefix,
            requests,
            links: Links::default(),
            response_config,
            max_response: cfg.max_response as usize,
            sweep_at: Instant::now() + LIVENESS_SLICE,
            received: 0,
            stats: ServerStats::default(),
            owed_ends: Vec::new(),
            _keeper: keeper,
            anchor: Some(anchor),
        })
    }

    /// Whether this server was made in the process this one was `fork()`ed from. Such a
    /// copy belongs to that process: dropping it here leaves the parent's service untouched (so a child
    /// may drop what it inherited), but serving through it from the child would take the parent's requests; make a new one in
    /// the child instead. The Python and C bindings refuse every call on it.
    #[inline]
    pub fn is_inherited(&self) -> bool {
        self.requests.is_inherited()
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// What the server counted: clients connected, messages it dropped.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            clients: self.links.len(),
            ..self.stats
        }
    }

    /// The next request if there is one, without waiting (greetings of new clients are
    /// handled on the way and never returned).
    pub fn try_recv(&mut self) -> Result<Request<'_>, ServerRecvError> {
        self.recv_within(Patience::new(Duration::ZERO))
    }

    /// The next request, waiting at most `timeout` (`Duration::MAX`: for ever).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Request<'_>, ServerRecvError> {
        self.recv_within(Patience::new(timeout))
    }

    /// The next request, waiting for ever.
    pub fn recv(&mut self) -> Result<Request<'_>, ServerRecvError> {
        self.recv_within(Patience::new(Duration::MAX))
    }

    /// The receive loop. A request there at once costs no clock read; the search for
    /// gone clients runs when the server would wait, and every 256 messages besides.
    fn recv_within(&mut self, mut wait: Patience) -> Result<Request<'_>, ServerRecvError> {
        loop {
            self.received = self.received.wrapping_add(1);
            if self.received.is_multiple_of(256) {
                self.sweep_if_due();
            }
            let got = match self.requests.try_recv_kept() {
                Err(TryRecvError::Empty) => {
                    // One clock read for the search and the deadline: a request that
                    // comes while the server gets ready to wait waits for it.
                    let now = Instant::now();
                    if now >= self.sweep_at {
                        self.sweep();
                        self.sweep_at = now + LIVENESS_SLICE;
                    }
                    if wait.is_zero() {
                        return Err(ServerRecvError::Empty);
                    }
                    let deadline = wait.deadline_at(now);
                    if deadline.is_some_and(|d| now >= d) {
                        return Err(ServerRecvError::Empty);
                    }
                    // Wake for the next search at the latest.
                    let search = self.sweep_at.max(now + Duration::from_micros(100));
                    self.requests
                        .recv_kept_until(Some(deadline.map_or(search, |d| d.min(search))))
                }
                got => got.map_err(RecvTimeoutError::from),
            };
            let kept = match got {
                Ok(kept) => kept,
                // The loop looks again, and says `Empty` once the wait is over.
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Corrupt { .. }) => {
                    self.stats.malformed += 1;
                    continue;
                }
                // Block topic: no lag. Closed or evicted: only a hostile peer does that.
                Err(_) => return Err(ServerRecvError::Closed),
            };
            if let Some((client, id)) = self.classify_kept(kept.publisher) {
                return Ok(Request {
                    client,
                    id,
                    ended: false,
                    kept: false,
                    server: self,
                });
            }
        }
    }

    /// Looks at the kept message from `from`: a call of a connected client is returned
    /// (and stays kept); a greeting is answered, anything else counted; both released.
    pub(crate) fn classify_kept(&mut self, from: PublisherId) -> Option<(PublisherId, u64)> {
        let header = self.requests.kept().and_then(wire::decode);
        match header {
            Some(h) if h.kind == wire::CALL => {
                if self.links.contains_key(&from) {
                    return Some((from, h.id));
                }
                self.stats.unknown_client += 1;
            }
            Some(h) if h.kind == wire::HELLO => self.greet(from),
            _ => self.stats.malformed += 1,
        }
        self.requests.release_kept();
        None
    }

    /// Sweeps for gone clients if a liveness slice has passed since the last sweep.
    pub(crate) fn sweep_if_due(&mut self) {
        let now = Instant::now();
        if now >= self.sweep_at {
            self.sweep();
            self.sweep_at = now + LIVENESS_SLICE;
        }
    }

    /// The request subscriber (for the async receive).
    pub(crate) fn requests_mut(&mut self) -> &mut Subscriber {
        &mut self.requests
    }

    /// Counts a corrupt message skipped in the ring.
    pub(crate) fn count_malformed(&mut self) {
        self.stats.malformed += 1;
    }

    /// A client greeted (the kept message): create its response topic.
    fn greet(&mut self, client: PublisherId) {
        let nonce = self
            .requests
            .kept()
            .and_then(|m| m.get(HEADER..HEADER + 8))
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
        let Some(nonce) = nonce else {
            self.stats.malformed += 1;
            return;
        };
        if self.links.contains_key(&client) {
            self.stats.refused += 1;
            return;
        }
        let topic = wire::response_topic(&self.service, nonce);
        match Publisher::create(&topic, self.response_config.clone()) {
            Ok(responses) => {
                tracing::debug!(service = %self.service, ?client, "client connected");
                self.links.insert(
                    client,
                    Link {
                        responses,
                        loaned_for: None,
                    },
                );
            }
            Err(e) => {
                tracing::warn!(service = %self.service, error = %e, "greeting refused");
                self.stats.refused += 1;
            }
        }
    }

    /// Drops the links of clients that are gone (their request lane has no live writer):
    /// their response topics close and are removed.
    fn sweep(&mut self) {
        let requests = &self.requests;
        self.links.retain(|id| requests.publisher_live(*id));
        if !self.owed_ends.is_empty() {
            let mut owed = std::mem::take(&mut self.owed_ends);
            owed.retain(|&(client, id)| {
                matches!(
                    self.send(client, id, wire::END, &[]),
                    Err(RespondError::ClientFull)
                )
            });
            self.owed_ends = owed;
        }
    }

    /// Ends a deferred request's stream now or, if its client's ring is full, at the
    /// server's later sweeps (every liveness slice while it receives) until it fits; a
    /// gone client is told nothing. What dropping an unanswered [`Request`] does.
    pub fn end_when_room(&mut self, to: Responder) {
        let (client, id) = (to.client, to.id);
        // Bounded: a client that never reads cannot grow it past this (the ends past it
        // are dropped, and those calls wait for their callers' timeouts).
        const MAX_OWED: usize = 4096;
        if let Err(RespondError::ClientFull) = self.send(client, id, wire::END, &[]) {
            if self.owed_ends.len() < MAX_OWED {
                self.owed_ends.push((client, id));
            }
        }
    }

    /// Sends a response of `kind` to request `id` of `client`, never waiting.
    fn send(
        &mut self,
        client: PublisherId,
        id: u64,
        kind: u32,
        payload: &[u8],
    ) -> Result<(), RespondError> {
        if payload.len() > self.max_response {
            return Err(RespondError::TooLarge {
                len: payload.len(),
                max: self.max_response,
            });
        }
        let written = self.send_with(client, id, kind, |buf| {
            buf[..payload.len()].copy_from_slice(payload);
            Ok::<_, std::convert::Infallible>(payload.len())
        });
        written.map_err(|failed| match failed {
            Failed::Respond(e) => e,
            Failed::Write(never) => match never {},
        })
    }

    /// Sends a response of `kind` to request `id` of `client` whose payload `write` puts
    /// into the slot itself (returning its length), never waiting. Nothing is sent if
    /// `write` fails.
    pub(crate) fn send_with<E>(
        &mut self,
        client: PublisherId,
        id: u64,
        kind: u32,
        write: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<(), Failed<E>> {
        let link = self
            .links
            .get_mut(&client)
            .ok_or(Failed::Respond(RespondError::ClientGone))?;
        if let Some(pending) = link.loaned_for {
            return Err(Failed::Respond(RespondError::LoanPending { pending }));
        }
        match link.responses.try_loan() {
            Ok(mut loan) => {
                let len = write(&mut loan[HEADER..]).map_err(Failed::Write)?;
                wire::encode(&mut loan[..HEADER], id, kind);
                loan.commit(HEADER + len);
                Ok(())
            }
            Err(_) => Err(Failed::Respond(self.full_or_gone(client))),
        }
    }

    /// Loans the next slot of `to`'s client's response ring, to write a response to that
    /// request in place (zero copy); [`ResponseLoan::commit`] sends it. Never waits:
    /// `ClientFull` / `ClientGone` as for [`respond`](Self::respond). A loan dropped
    /// without a commit keeps its slot (and its bytes) for
    /// [`pending_response_loan`](Self::pending_response_loan); until it is committed, no
    /// other response reaches that client (`LoanPending`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ringcast_service::{Client, ClientOptions, Server, ServerConfig};
    /// # let prefix = format!("rcdoc{}loanresp", std::process::id());
    /// # let mut server = Server::create("frames", ServerConfig::default().prefix(&prefix))?;
    /// # let opts = ClientOptions::default().prefix(&prefix).wait(Duration::from_secs(1));
    /// # let t = std::thread::spawn(move || {
    /// #     let mut c = Client::connect("frames", opts).unwrap();
    /// #     assert_eq!(&c.call(b"frame?", Duration::from_secs(5)).unwrap()[..], &[7u8; 64][..]);
    /// # });
    /// let to = server.recv_timeout(Duration::from_secs(5))?.defer();
    /// let mut loan = server.loan_response(&to)?;
    /// loan[..64].fill(7);                      // written straight into the client's ring
    /// loan.commit(64, true)?;
    /// # t.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn loan_response(&mut self, to: &Responder) -> Result<ResponseLoan<'_>, RespondError> {
        let max = self.max_response;
        let link = self
            .links
            .get_mut(&to.client)
            .ok_or(RespondError::ClientGone)?;
        match link.loaned_for {
            Some(pending) if pending != to.id => return Err(RespondError::LoanPending { pending }),
            _ => {}
        }
        let claimed = link.responses.try_loan().is_ok();
        if !claimed {
            return Err(self.full_or_gone(to.client));
        }
        let link = self.links.get_mut(&to.client).expect("linked above");
        link.loaned_for = Some(to.id);
        Ok(ResponseLoan {
            loan: link.responses.pending_loan().expect("claimed above"),
            loaned_for: &mut link.loaned_for,
            id: to.id,
            max,
        })
    }

    /// The loan of `to`'s response that was dropped without a commit (its bytes as they
    /// were left), if there is one.
    pub fn pending_response_loan(&mut self, to: &Responder) -> Option<ResponseLoan<'_>> {
        let max = self.max_response;
        let link = self.links.get_mut(&to.client)?;
        if link.loaned_for != Some(to.id) {
            return None;
        }
        Some(ResponseLoan {
            loan: link.responses.pending_loan()?,
            loaned_for: &mut link.loaned_for,
            id: to.id,
            max,
        })
    }

    /// A client's ring is full: is it slow, or gone (then its link is dropped)?
    fn full_or_gone(&mut self, client: PublisherId) -> RespondError {
        let live = self.requests.publisher_live(client)
            && self
                .links
                .get_mut(&client)
                .is_some_and(|l| l.responses.subscriber_count() > 0);
        if live {
            RespondError::ClientFull
        } else {
            self.links.remove(&client);
            RespondError::ClientGone
        }
    }

    /// Answers a deferred request with its last (or only) response.
    pub fn respond(&mut self, to: Responder, payload: &[u8]) -> Result<(), RespondError> {
        self.send(to.client, to.id, wire::LAST, payload)
    }

    /// Sends one response of a deferred request's stream, with more to come.
    pub fn respond_part(&mut self, to: &Responder, payload: &[u8]) -> Result<(), RespondError> {
        self.send(to.client, to.id, wire::PART, payload)
    }

    /// Ends a deferred request's stream (with no further response).
    pub fn end(&mut self, to: Responder) -> Result<(), RespondError> {
        self.send(to.client, to.id, wire::END, &[])
    }

    /// Gives up on a deferred request: its stream ends and its caller gets
    /// [`CallError::Failed`](crate::CallError::Failed) at once, instead of an answer (or
    /// of waiting for its timeout).
    pub fn fail(&mut self, to: Responder) -> Result<(), RespondError> {
        self.send(to.client, to.id, wire::FAIL, &[])
    }

    /// Stops serving, as dropping does, but keeps the request ring mapped until the
    /// returned `Retained` is dropped: for a foreign pointer into a request read in place
    /// that may outlive the server (a Python array over a request's buffer). Under
    /// `Block` its client may write that slot again once the server is gone.
    pub fn close_retaining(self) -> ringcast_core::endpoint::Retained {
        let retained = self.requests.retain(None);
        drop(self);
        retained
    }

    /// The prefix the service's topics live under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The payload of the request kept by [`Request::keep`], until
    /// [`release_request`](Self::release_request) or the server's next receive; `None` if
    /// none is kept.
    pub fn kept_request(&self) -> Option<&[u8]> {
        self.requests.kept().and_then(|m| m.get(HEADER..))
    }

    /// Releases the request kept by [`Request::keep`] (its slot goes back to its client's
    /// lane); nothing if none is kept. Answering it is a separate matter: its
    /// [`Responder`] stays valid.
    pub fn release_request(&mut self) {
        self.requests.release_kept();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The plate first: from here a new server may start (and clients stop greeting).
        self.anchor.take();
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("service", &self.service)
            .field("clients", &self.links.len())
            .finish_non_exhaustive()
    }
}

// SAFETY: the target is the server's own request subscriber's, which lives as long as the
// server (it is moved with it into the set).
unsafe impl MemberImpl for Server {
    fn sleep_target(&self) -> SleepTarget {
        self.requests.sleep_target()
    }
    fn is_ready(&mut self) -> bool {
        self.requests.is_ready()
    }
    fn check_liveness(&mut self) {
        self.requests.check_liveness();
        // An idle server in a wait set still reclaims its gone clients' topics.
        self.sweep_if_due();
    }
    fn refusal(&mut self) -> Option<Refusal> {
        self.requests.refusal()
    }
}

/// A request, read in place in the client's lane until it is dropped (or answered with
/// [`respond`](Request::respond) / [`end`](Request::end), which drop it). Derefs to the
/// payload. Dropping a request that was neither answered to its end nor
/// [deferred](Request::defer) ends its stream, so its client never waits for it in vain.
pub struct Request<'a> {
    pub(crate) server: &'a mut Server,
    pub(crate) client: PublisherId,
    pub(crate) id: u64,
    /// Its stream was ended (or handed to a [`Responder`]).
    pub(crate) ended: bool,
    /// Kept in the server ([`Request::keep`]): not released when dropped.
    pub(crate) kept: bool,
}

impl Request<'_> {
    /// The payload.
    pub fn bytes(&self) -> &[u8] {
        self.server.requests.kept().map_or(&[], |m| &m[HEADER..])
    }

    /// The client that sent it: the id of the lane it sends on.
    pub fn client(&self) -> PublisherId {
        self.client
    }

    /// The request's id at its client (unique among that client's requests in flight).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Answers with `payload` as the last (or only) response, and releases the request.
    pub fn respond(mut self, payload: &[u8]) -> Result<(), RespondError> {
        self.ended = true;
        self.server.send(self.client, self.id, wire::LAST, payload)
    }

    /// Sends `payload` as one response of a stream, with more to come.
    pub fn respond_part(&mut self, payload: &[u8]) -> Result<(), RespondError> {
        self.server.send(self.client, self.id, wire::PART, payload)
    }

    /// Ends the request's stream with no further response, and releases the request.
    pub fn end(mut self) -> Result<(), RespondError> {
        self.ended = true;
        self.server.send(self.client, self.id, wire::END, &[])
    }

    /// Gives up on the request: its stream ends, its caller gets
    /// [`CallError::Failed`](crate::CallError::Failed), and the request is released.
    pub fn fail(mut self) -> Result<(), RespondError> {
        self.ended = true;
        self.server.send(self.client, self.id, wire::FAIL, &[])
    }

    /// Releases the request and returns who to answer, for answering later through the
    /// server ([`Server::respond`], [`Server::respond_part`], [`Server::end`]). Copy what
    /// you need of the payload first. A responder dropped unanswered leaves its client to
    /// its timeout.
    pub fn defer(mut self) -> Responder {
        self.ended = true;
        Responder {
            client: self.client,
            id: self.id,
        }
    }
}

impl Request<'_> {
    /// Keeps the request in the server instead of borrowing it: for code that cannot hold
    /// the borrow across calls (the C and Python bindings). Its payload stays
    /// [`Server::kept_request`], in place, until [`Server::release_request`] or the
    /// server's next receive; the returned [`Responder`] answers it through the server, at
    /// any time. Unlike dropping a request, keeping it does not end its stream: answer it
    /// (or [`end`](Server::end) it), else its client waits until its timeout.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ringcast_service::{Client, ClientOptions, Server, ServerConfig};
    /// # let prefix = format!("rcdoc{}keep", std::process::id());
    /// let mut server = Server::create("keeper", ServerConfig::default().prefix(&prefix))?;
    /// # let opts = ClientOptions::default().prefix(&prefix).wait(Duration::from_secs(1));
    /// # let t = std::thread::spawn(move || {
    /// #     let mut c = Client::connect("keeper", opts).unwrap();
    /// #     let echo = c.call(b"hi", Duration::from_secs(5)).unwrap().to_vec();
    /// #     echo
    /// # });
    /// let to = server.recv_timeout(Duration::from_secs(5))?.keep();
    /// let echo = server.kept_request().unwrap().to_vec();
    /// server.release_request();
    /// server.respond(to, &echo)?;
    /// # assert_eq!(t.join().unwrap(), b"hi");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep(mut self) -> Responder {
        self.ended = true;
        self.kept = true;
        Responder {
            client: self.client,
            id: self.id,
        }
    }
}

impl std::ops::Deref for Request<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        if !self.ended {
            // A gone client is told nothing more; a full one at a later sweep.
            let to = Responder {
                client: self.client,
                id: self.id,
            };
            self.server.end_when_room(to);
        }
        if !self.kept {
            self.server.requests.release_kept();
        }
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("client", &self.client)
            .field("id", &self.id)
            .field("len", &self.bytes().len())
            .finish()
    }
}

/// A response being written in place in its client's response ring (see
/// [`Server::loan_response`]). Derefs to the payload bytes (as many as the service's
/// largest response).
pub struct ResponseLoan<'a> {
    loan: ringcast_publisher::Loan<'a>,
    loaned_for: &'a mut Option<u64>,
    id: u64,
    max: usize,
}

impl ResponseLoan<'_> {
    /// Sends the first `len` payload bytes as a response: the last of its request's
    /// stream if `last`, else one with more to come.
    pub fn commit(mut self, len: usize, last: bool) -> Result<(), RespondError> {
        if len > self.max {
            return Err(RespondError::TooLarge { len, max: self.max });
        }
        let kind = if last { wire::LAST } else { wire::PART };
        wire::encode(&mut self.loan[..HEADER], self.id, kind);
        self.loan.commit(HEADER + len);
        *self.loaned_for = None;
        Ok(())
    }

    /// The payload bytes as a raw pointer, valid for writes of the loan's length until it
    /// is committed or the server dropped, made without forming a reference (for a
    /// foreign language that writes them itself).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.loan.as_mut_ptr().wrapping_add(HEADER)
    }
}

impl std::ops::Deref for ResponseLoan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.loan[HEADER..HEADER + self.max]
    }
}

impl std::ops::DerefMut for ResponseLoan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.loan[HEADER..HEADER + self.max]
    }
}

impl std::fmt::Debug for ResponseLoan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseLoan")
            .field("request", &self.id)
            .field("capacity", &self.max)
            .finish()
    }
}

/// Why [`Server::send_with`] sent nothing.
pub(crate) enum Failed<E> {
    /// The client cannot take it.
    Respond(RespondError),
    /// The payload's writer failed.
    Write(E),
}

/// Who to answer for a deferred request (see [`Request::defer`]).
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "a deferred request is answered through the server with its responder"]
pub struct Responder {
    client: PublisherId,
    id: u64,
}

impl Responder {
    /// The responder of request `id` of `client` (as [`Request::client`] and
    /// [`Request::id`] gave them): for bindings that hand a responder across a boundary
    /// as its parts. A responder that names no request in flight is harmless: a client
    /// that is not connected gives [`RespondError::ClientGone`], and a client drops a
    /// response to an id it is not waiting for.
    pub fn from_parts(client: PublisherId, id: u64) -> Responder {
        Responder { client, id }
    }

    /// The client that sent the request.
    pub fn client(&self) -> PublisherId {
        self.client
    }
    /// The request's id at its client.
    pub fn id(&self) -> u64 {
        self.id
    }
}
