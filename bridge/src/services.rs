//! Services across the bridge, over Zenoh's own request and response (a queryable and
//! `get`).
//!
//! Export (one thread per service): while a live local server has the service's name
//! plate (and this bridge does not serve the name itself as an import), the bridge
//! connects a [`Client`] to it, declares a queryable on
//! `ringcast/<domain>/<service>/@call/<zid>` and announces the service with a liveliness
//! token carrying its limits and its request and response types' fingerprints
//! ([`ServiceAnnouncement`]; raw bytes for an untyped server). Each query's payload is sent as a
//! request (as many in flight as the client may have; further queries wait in Zenoh's
//! queue), and each response is a reply to the query; the query ends (its last `Query`
//! handle is dropped) with the stream; a call still unanswered after this bridge's call
//! timeout is cancelled and answered with an error reply. When the server goes (the client sees
//! `Disconnected`, or the plate is dead), the token is withdrawn first, then every pending
//! query is answered with the error reply [`GONE`].
//!
//! Import (one thread per service): on an announcement from another bridge, the bridge
//! creates a local [`Server`] with the announced limits and types
//! ([`ServerConfig::types`]: a typed client of the remote types connects to it, one of
//! other types is refused with `TypeMismatch`; archives pass through as bytes, each typed
//! client validates its responses), unless a live local server has
//! the name (never shadowed: refused, counted, logged, retried every second). Each request
//! is deferred and sent as a `get` on the exporting bridge's key with the call timeout;
//! replies arrive on Zenoh's threads and reach this thread over a channel, so calls never
//! wait for each other. Mapping, exact: each reply's attachment (one byte, [`PART`],
//! [`LAST`] or [`END`]) says which of the remote server's `respond_part`, `respond` or
//! `end` it is, and the importer does the same locally, so a one-response call is a local
//! `respond`, a stream keeps its order and its end, and zero responses make
//! `Client::call` return `NoResponse`. The error reply [`GONE`], the withdrawal of the
//! token (the exporting bridge stopped, died, or its server went), or a query that
//! completes with neither the stream's end nor an error (the exporting bridge's link
//! went), drops the local server: local clients get `CallError::Disconnected`. Any other
//! error reply (the call timed out, the remote side refused it) drops that call
//! unanswered, counted as lost: its caller's own timeout ends it with `Timeout` (an empty
//! end would read as the server's own `end`, a success with no response). A reply with no valid kind, or after
//! the stream's end, is dropped and counted.
//!
//! Nothing remote is trusted: a malformed announcement is refused and counted; a reply
//! larger than the local server's largest response is dropped and counted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast::service::wire::{anchor_topic, request_topic};
use ringcast::service::{
    CallError, CallId, Client, ClientOptions, ConnectError, RespondError, Responder, ServeError,
    Server, ServerConfig, ServerRecvError,
};
use ringcast::{PublisherId, WaitStrategy};
use zenoh::query::{ConsolidationMode, Query, Reply};
use zenoh::sample::{Locality, SampleKind};
use zenoh::Wait;

use crate::announce::ServiceAnnouncement;
use crate::stats::{bump, Counters};
use crate::Shared;

/// The error reply an exporting bridge gives to every pending query when its local server
/// is gone: the importer drops its local server.
pub const GONE: &[u8] = b"ringcast: service gone";
/// A reply's attachment, one byte: a response with more to come, the last response, or
/// the end of the stream with no payload (the server's `respond_part`, `respond`, `end`).
pub const PART: u8 = b'P';
/// See [`PART`].
pub const LAST: u8 = b'L';
/// See [`PART`].
pub const END: u8 = b'E';
/// How long a thread waits for one thing before it looks at the stop flag and the clock.
const SLICE: Duration = Duration::from_millis(50);
/// How long a thread with calls in flight waits for one event.
const POLL: Duration = Duration::from_millis(2);
/// Pause between looks for a local server that is absent.
const LOOK_AGAIN: Duration = Duration::from_millis(50);
/// How often an import refused for now (a live local server has the name) is retried.
const RETRY: Duration = Duration::from_secs(1);
/// Most calls an import has in flight over Zenoh at once (past it requests wait in the
/// local server's queue).
const MAX_CALLS: usize = 1024;
/// Most replies of one call held while its local client does not read (past it they are
/// dropped and counted).
const MAX_HELD: usize = 1024;
/// Most announcing bridges of one service kept at once; most refused keys remembered.
const MAX_KNOWN: usize = 64;

fn plate_live(prefix: &str, service: &str) -> bool {
    ringcast::inspect::inspect(prefix, &anchor_topic(service))
        .is_ok_and(|p| p.publisher_alive && !p.closed)
}

/// Whether a live server of `service` is a proxy of a remote one (any bridge's import,
/// marked by `ServerConfig::imported_from`).
fn plate_imported(prefix: &str, service: &str) -> bool {
    ringcast::inspect::inspect(prefix, &anchor_topic(service))
        .is_ok_and(|p| p.publisher_alive && !p.closed && p.origin.is_some())
}

fn imported_here(shared: &Shared, service: &str) -> bool {
    shared
        .imported_services
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(service)
}

/// Exports `service`: see the module docs.
pub(crate) fn export(shared: Arc<Shared>, service: String, stats: Arc<Counters>) {
    let mut said_imported = false;
    while !shared.stopping() {
        if imported_here(&shared, &service) || plate_imported(&shared.prefix, &service) {
            // Never echo: a service served as an import (by this bridge or another one on
            // this host) goes back nowhere.
            if !said_imported {
                tracing::info!(service, "not exporting a service that is itself imported");
                said_imported = true;
            }
            std::thread::sleep(LOOK_AGAIN * 5);
            continue;
        }
        said_imported = false;
        if !plate_live(&shared.prefix, &service) {
            std::thread::sleep(LOOK_AGAIN);
            continue;
        }
        let opts = ClientOptions::default()
            .prefix(shared.prefix.as_str())
            .wait_strategy(WaitStrategy::Park);
        let client = match Client::connect(&service, opts) {
            Ok(c) => c,
            Err(ConnectError::NoServer { .. }) => {
                std::thread::sleep(LOOK_AGAIN);
                continue;
            }
            Err(e) => {
                tracing::warn!(service, error = %e, "cannot connect to the local server; trying again");
                std::thread::sleep(LOOK_AGAIN * 10);
                continue;
            }
        };
        // The importer inserts the name before it creates its server: looking again after
        // connecting closes the race with it.
        if imported_here(&shared, &service) || plate_imported(&shared.prefix, &service) {
            continue;
        }
        if let Err(e) = serve(&shared, &service, client, &stats) {
            tracing::warn!(service, error = %e, "export failed; trying again");
            std::thread::sleep(LOOK_AGAIN * 5);
        }
        stats.set_active(false);
    }
}

/// Answers the network's calls through `client` until the server goes or we stop.
fn serve(
    shared: &Shared,
    service: &str,
    mut client: Client,
    stats: &Counters,
) -> zenoh::Result<()> {
    let Ok(requests) = ringcast::inspect::inspect(&shared.prefix, &request_topic(service)) else {
        return Ok(());
    };
    let a = ServiceAnnouncement {
        max_request: client.max_request() as u64,
        max_response: client.max_response() as u64,
        queue: requests.geometry.slot_count,
        max_clients: requests.geometry.max_publishers.saturating_sub(1).max(1),
        request_type: client.request_type(),
        response_type: client.response_type(),
        host: shared.host.clone(),
        prefix: shared.prefix.clone(),
    };
    let session = &shared.session;
    let queryable = session
        .declare_queryable(shared.keys.calls(service, &shared.zid))
        .allowed_origin(Locality::Remote)
        .wait()?;
    let token = session
        .liveliness()
        .declare_token(shared.keys.service_token(service, &shared.zid, &a))
        .wait()?;
    tracing::info!(
        service,
        request = %a.request_type,
        response = %a.response_type,
        "exporting the service"
    );
    stats.set_active(true);
    let max = client.max_in_flight().max(1);
    // Calls in flight: their query and when it came (a call past this bridge's call
    // timeout is cancelled: a server that never answers cannot hold the client's slots).
    let mut pending: HashMap<CallId, (Query, Instant)> = HashMap::new();
    // A query whose request found the server's queue full: sent first, later.
    let mut waiting: Option<(Query, Vec<u8>)> = None;
    let mut looked = Instant::now();
    let gone = 'serve: loop {
        if shared.stopping() {
            break false;
        }
        if imported_here(shared, service) {
            break false;
        }
        // New calls, while there is room.
        loop {
            if waiting.is_none() {
                if pending.len() >= max {
                    break;
                }
                let next = if pending.is_empty() {
                    queryable.recv_timeout(SLICE)
                } else {
                    queryable.try_recv()
                };
                match next {
                    Ok(Some(q)) => {
                        let payload = q.payload().map(|p| p.to_bytes().into_owned());
                        waiting = Some((q, payload.unwrap_or_default()));
                    }
                    _ => break,
                }
            }
            let Some((q, payload)) = waiting.take() else {
                break;
            };
            match client.try_send(&payload) {
                Ok(call) => {
                    bump(&stats.puts, 1);
                    pending.insert(call, (q, Instant::now()));
                }
                Err(CallError::Full | CallError::TooManyInFlight { .. }) => {
                    waiting = Some((q, payload));
                    break;
                }
                Err(CallError::Disconnected) => {
                    waiting = Some((q, payload));
                    break 'serve true;
                }
                Err(e) => {
                    bump(&stats.refused, 1);
                    let _ = q
                        .reply_err(format!("ringcast: request refused: {e}"))
                        .wait();
                }
            }
        }
        if looked.elapsed() >= SLICE && !pending.is_empty() {
            looked = Instant::now();
            let late: Vec<CallId> = pending
                .iter()
                .filter(|(_, (_, t))| t.elapsed() >= shared.call_timeout)
                .map(|(c, _)| *c)
                .collect();
            for call in late {
                client.cancel(call);
                if let Some((q, _)) = pending.remove(&call) {
                    bump(&stats.lost, 1);
                    let _ = q.reply_err("ringcast: the call timed out").wait();
                }
            }
        }
        if pending.is_empty() {
            // Idle: is the server still there?
            if looked.elapsed() >= SLICE {
                looked = Instant::now();
                if !plate_live(&shared.prefix, service) {
                    break true;
                }
            }
            if waiting.is_some() {
                std::thread::sleep(POLL);
            }
            continue;
        }
        match client.recv_any(POLL) {
            Ok((call, Some(r))) => {
                let last = r.is_last();
                if let Some((q, _)) = pending.get(&call) {
                    bump(&stats.messages, 1);
                    bump(&stats.bytes, r.bytes().len() as u64);
                    let kind = if last { LAST } else { PART };
                    reply(service, q, r.bytes().to_vec(), kind);
                }
                drop(r);
                if last {
                    pending.remove(&call);
                }
            }
            Ok((call, None)) => {
                if let Some((q, _)) = pending.remove(&call) {
                    reply(service, &q, Vec::new(), END);
                }
            }
            Err(CallError::Timeout) => {}
            Err(CallError::Disconnected) => break true,
            // The local server gave up on it: so does the importer's, for its caller.
            Err(CallError::Failed { call }) => {
                if let Some((q, _)) = pending.remove(&call) {
                    let _ = q
                        .reply_err("ringcast: the server gave up on the call")
                        .wait();
                }
            }
            Err(e) => tracing::debug!(service, error = %e, "receiving a response"),
        }
    };
    // Withdraw first, then answer what is pending: the importer drops its local server.
    let _ = token.undeclare().wait();
    if gone {
        tracing::info!(service, "the local server is gone; no longer exporting it");
    }
    let queued = std::iter::from_fn(|| queryable.try_recv().ok().flatten());
    let left: Vec<Query> = pending
        .into_values()
        .map(|(q, _)| q)
        .chain(waiting.map(|(q, _)| q))
        .chain(queued)
        .collect();
    for q in left {
        bump(&stats.lost, 1);
        let _ = q.reply_err(GONE).wait();
    }
    let _ = queryable.undeclare().wait();
    Ok(())
}

/// Replies to `q` with `payload`, its kind in the attachment.
fn reply(service: &str, q: &Query, payload: Vec<u8>, kind: u8) {
    let sent = q
        .reply(q.key_expr().clone(), payload)
        .attachment(vec![kind])
        .wait();
    if let Err(e) = sent {
        tracing::debug!(service, error = %e, "a reply was not sent");
    }
}

/// What reaches an import's thread.
enum Event {
    /// An announcement appeared (`Put`) or went (`Delete`).
    Token(SampleKind, String),
    /// A reply to call `id` of local server incarnation `generation`: a response and its
    /// kind (the attachment's byte, if it is one byte), or an error payload.
    Reply {
        generation: u64,
        id: u64,
        reply: Result<(Vec<u8>, Option<u8>), Vec<u8>>,
    },
    /// The query of that call completed.
    Done { generation: u64, id: u64 },
}

/// Sends [`Event::Done`] when Zenoh drops a query's callback (the query completed).
struct DoneGuard {
    events: Sender<Event>,
    generation: u64,
    id: u64,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.events.send(Event::Done {
            generation: self.generation,
            id: self.id,
        });
    }
}

/// A local request forwarded as a query.
struct Call {
    client: PublisherId,
    request: u64,
    /// Responses not passed on yet (the local client's ring was full), and whether each
    /// is the last.
    held: VecDeque<(Vec<u8>, bool)>,
    /// The stream's end arrived (a last response, or an END reply).
    ended: bool,
    /// An error reply arrived (a timeout, a refusal, the server gave up), or its query
    /// could not be sent: the call is failed (its caller gets `CallError::Failed`).
    failed: bool,
    /// The query completed.
    done: bool,
}

impl Call {
    fn to(&self) -> Responder {
        Responder::from_parts(self.client, self.request)
    }
}

/// The local server of an adopted announcement.
struct Local {
    server: Server,
    /// The announcement's token key.
    key: String,
    /// Where its calls go.
    calls_key: String,
    generation: u64,
    calls: HashMap<u64, Call>,
}

struct Importer {
    shared: Arc<Shared>,
    service: String,
    stats: Arc<Counters>,
    events: Sender<Event>,
    /// Announcements of other bridges: token key and record.
    known: Vec<(String, String, ServiceAnnouncement)>,
    refused: HashSet<String>,
    local: Option<Local>,
    generation: u64,
    next_id: u64,
    last_try: Option<Instant>,
    /// A live local server had the name at the last try (logged and counted once).
    shadow_refused: bool,
}

/// Imports `service`: see the module docs.
pub(crate) fn import(shared: Arc<Shared>, service: String, stats: Arc<Counters>) {
    let (tx, rx) = mpsc::channel();
    let on_token = tx.clone();
    let tokens = shared
        .session
        .liveliness()
        .declare_subscriber(shared.keys.service_tokens_of(&service))
        .history(true)
        .callback(move |s| {
            let _ = on_token.send(Event::Token(s.kind(), s.key_expr().as_str().to_owned()));
        })
        .wait();
    let tokens = match tokens {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(service, error = %e, "cannot subscribe; not importing");
            return;
        }
    };
    let mut imp = Importer {
        shared,
        service,
        stats,
        events: tx,
        known: Vec::new(),
        refused: HashSet::new(),
        local: None,
        generation: 0,
        next_id: 0,
        last_try: None,
        shadow_refused: false,
    };
    imp.run(&rx);
    let _ = tokens.undeclare().wait();
    imp.close("the bridge is stopping");
}

impl Importer {
    fn run(&mut self, events: &Receiver<Event>) {
        while !self.shared.stopping() {
            let wait = if self.local.is_some() { POLL } else { SLICE };
            match events.recv_timeout(wait) {
                Ok(ev) => self.handle(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while let Ok(ev) = events.try_recv() {
                self.handle(ev);
            }
            if self.local.is_none()
                && !self.known.is_empty()
                && self.last_try.is_none_or(|t| t.elapsed() >= RETRY)
            {
                self.adopt();
            }
            self.take_requests();
            self.flush_all();
        }
    }

    fn refuse(&mut self, key: &str, why: &dyn std::fmt::Display) {
        if self.refused.len() < MAX_KNOWN * 16 && self.refused.insert(key.to_owned()) {
            bump(&self.stats.refused, 1);
            tracing::warn!(service = self.service, error = %why, "refusing a remote service announcement");
        }
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Token(SampleKind::Put, key) => {
                let (zid, a) = match self.shared.keys.parse_service_token(&self.service, &key) {
                    Ok((z, a)) => (z.to_owned(), a),
                    Err(e) => return self.refuse(&key, &e),
                };
                if zid == self.shared.zid || self.known.iter().any(|k| k.0 == key) {
                    return;
                }
                if self.known.len() >= MAX_KNOWN {
                    let why = format!("more than {MAX_KNOWN} bridges announce this service");
                    return self.refuse(&key, &why);
                }
                self.known.push((key, zid, a));
            }
            Event::Token(SampleKind::Delete, key) => {
                self.known.retain(|k| k.0 != key);
                if self.local.as_ref().is_some_and(|l| l.key == key) {
                    self.close("the exporting bridge withdrew it");
                }
            }
            Event::Reply {
                generation,
                id,
                reply,
            } => {
                let Some(l) = self.local.as_mut().filter(|l| l.generation == generation) else {
                    return;
                };
                let Some(call) = l.calls.get_mut(&id) else {
                    return;
                };
                match reply {
                    // Nothing after the stream's end is taken.
                    Ok(_) if call.ended => bump(&self.stats.refused, 1),
                    Ok((_, Some(END))) => call.ended = true,
                    Ok((bytes, Some(k @ (PART | LAST)))) if call.held.len() < MAX_HELD => {
                        call.ended = k == LAST;
                        call.held.push_back((bytes, k == LAST));
                    }
                    // Too many held, or no kind: dropped, counted.
                    Ok(_) => bump(&self.stats.refused, 1),
                    Err(e) if e == GONE => {
                        // The remote server went: so does ours (its clients get
                        // `Disconnected`), until it is announced again.
                        bump(&self.stats.lost, 1);
                        let key = l.key.clone();
                        self.known.retain(|k| k.0 != key);
                        self.close("the remote server is gone");
                    }
                    Err(e) => {
                        bump(&self.stats.lost, 1);
                        call.failed = true;
                        tracing::debug!(
                            service = self.service,
                            error = %String::from_utf8_lossy(&e),
                            "a call ended with an error"
                        );
                    }
                }
            }
            Event::Done { generation, id } => {
                if let Some(call) = self
                    .local
                    .as_mut()
                    .filter(|l| l.generation == generation)
                    .and_then(|l| l.calls.get_mut(&id))
                {
                    call.done = true;
                }
            }
        }
    }

    /// Serves the first known announcement locally, unless a live local server has the
    /// name.
    fn adopt(&mut self) {
        self.last_try = Some(Instant::now());
        let Some((key, zid, a)) = self.known.first().cloned() else {
            return;
        };
        let service = self.service.clone();
        let shadow = |imp: &mut Importer| {
            if !imp.shadow_refused {
                imp.shadow_refused = true;
                bump(&imp.stats.refused, 1);
                tracing::warn!(
                    service,
                    "a live local server has this name: not importing the remote one over it"
                );
            }
        };
        if plate_live(&self.shared.prefix, &service) {
            return shadow(self);
        }
        self.set_imported(true);
        let cfg = ServerConfig::default()
            .prefix(self.shared.prefix.as_str())
            .max_request(a.max_request)
            .max_response(a.max_response)
            .queue(a.queue)
            .response_slots(a.queue.max(16))
            .max_clients(a.max_clients)
            .types(a.request_type, a.response_type)
            .imported_from(crate::announce::origin(&a.host, &a.prefix, &zid))
            .wait_strategy(WaitStrategy::Park);
        match Server::create(&service, cfg) {
            Ok(server) => {
                self.generation += 1;
                self.shadow_refused = false;
                tracing::info!(
                    service,
                    from = a.host,
                    prefix = a.prefix,
                    request = %a.request_type,
                    response = %a.response_type,
                    "importing the service"
                );
                self.local = Some(Local {
                    server,
                    key,
                    calls_key: self.shared.keys.calls(&service, &zid),
                    generation: self.generation,
                    calls: HashMap::new(),
                });
                self.stats.set_active(true);
            }
            Err(ServeError::AlreadyServed { .. }) => {
                self.set_imported(false);
                shadow(self);
            }
            Err(e) => {
                self.set_imported(false);
                self.refuse(&key, &e);
            }
        }
    }

    fn set_imported(&self, on: bool) {
        let mut set = self
            .shared
            .imported_services
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if on {
            set.insert(self.service.clone());
        } else {
            set.remove(&self.service);
        }
    }

    /// Drops the local server (its clients get `Disconnected`); replies still on their
    /// way are ignored.
    fn close(&mut self, why: &str) {
        if let Some(l) = self.local.take() {
            tracing::info!(service = self.service, why, "no longer serving the import");
            drop(l);
            self.set_imported(false);
            self.stats.set_active(false);
            self.generation += 1;
        }
    }

    /// Forwards the local requests waiting, each as a query.
    fn take_requests(&mut self) {
        let Some(l) = self.local.as_mut() else {
            return;
        };
        let mut closed = false;
        for _ in 0..64 {
            if l.calls.len() >= MAX_CALLS {
                break;
            }
            let (payload, to) = match l.server.try_recv() {
                Ok(req) => (req.bytes().to_vec(), req.defer()),
                Err(ServerRecvError::Empty) => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            };
            self.next_id += 1;
            let id = self.next_id;
            let guard = DoneGuard {
                events: self.events.clone(),
                generation: l.generation,
                id,
            };
            let events = self.events.clone();
            let generation = l.generation;
            l.calls.insert(
                id,
                Call {
                    client: to.client(),
                    request: to.id(),
                    held: VecDeque::new(),
                    ended: false,
                    failed: false,
                    done: false,
                },
            );
            bump(&self.stats.puts, 1);
            let sent = self
                .shared
                .session
                .get(l.calls_key.as_str())
                .payload(payload)
                .consolidation(ConsolidationMode::None)
                .allowed_destination(Locality::Remote)
                .timeout(self.shared.call_timeout)
                .callback(move |reply: Reply| {
                    let _ = &guard;
                    let reply = match reply.result() {
                        Ok(s) => {
                            let kind = s.attachment().and_then(|a| match &a.to_bytes()[..] {
                                [k] => Some(*k),
                                _ => None,
                            });
                            Ok((s.payload().to_bytes().into_owned(), kind))
                        }
                        Err(e) => Err(e.payload().to_bytes().into_owned()),
                    };
                    let _ = events.send(Event::Reply {
                        generation,
                        id,
                        reply,
                    });
                })
                .wait();
            if let Err(e) = sent {
                // The callback (and its guard) is dropped: this call fails alone, not as
                // a query that completed without its end, which would close the whole
                // service.
                if let Some(call) = l.calls.get_mut(&id) {
                    call.failed = true;
                }
                bump(&self.stats.lost, 1);
                tracing::warn!(service = self.service, error = %e, "a query was not sent");
            }
        }
        if closed {
            self.close("the local request topic was closed under it");
        }
    }

    /// Passes on the replies that can go now, and ends the calls whose query completed.
    fn flush_all(&mut self) {
        let Some(l) = self.local.as_mut() else {
            return;
        };
        let stats = &self.stats;
        let mut broken = false;
        l.calls
            .retain(|_, call| match flush(&mut l.server, call, stats) {
                Flush::Pending => true,
                Flush::Over => false,
                Flush::Broken => {
                    broken = true;
                    false
                }
            });
        if broken {
            // A query completed without its stream's end and without an error: the
            // exporting bridge's link went (its withdrawal follows).
            bump(&self.stats.lost, 1);
            self.close("the exporting bridge is unreachable");
        }
    }
}

/// Where a call stands after a flush.
enum Flush {
    /// More to come, or responses wait for room.
    Pending,
    /// Its stream ended (or its client is gone).
    Over,
    /// Its query completed without the stream's end or an error reply.
    Broken,
}

/// Passes on what it can of `call`.
fn flush(server: &mut Server, call: &mut Call, stats: &Counters) -> Flush {
    while let Some((front, last)) = call.held.front() {
        let len = front.len() as u64;
        let sent = if *last {
            server.respond(call.to(), front)
        } else {
            server.respond_part(&call.to(), front)
        };
        match sent {
            Ok(()) => {
                let last = *last;
                call.held.pop_front();
                bump(&stats.messages, 1);
                bump(&stats.bytes, len);
                if last {
                    return Flush::Over;
                }
            }
            // The local client is not reading: try again later.
            Err(RespondError::ClientFull) => return Flush::Pending,
            Err(RespondError::ClientGone) => return Flush::Over,
            Err(_) => {
                // Larger than the local server's largest response: dropped, counted (a
                // dropped last response ends the stream empty below).
                bump(&stats.refused, 1);
                call.held.pop_front();
            }
        }
    }
    if call.failed {
        // Given up (the call timed out, the remote side refused it or its server gave up):
        // failed, so that its caller learns it at once (`CallError::Failed`). Not an
        // empty end, which would read as the server's own `end` (a `call` printing
        // nothing and succeeding).
        return match server.fail(call.to()) {
            Err(RespondError::ClientFull) => Flush::Pending,
            _ => Flush::Over,
        };
    }
    if call.ended {
        return match server.end(call.to()) {
            Err(RespondError::ClientFull) => Flush::Pending,
            _ => Flush::Over,
        };
    }
    if call.done {
        return Flush::Broken;
    }
    Flush::Pending
}
