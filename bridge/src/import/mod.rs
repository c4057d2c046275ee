//! Import: remote topics re-published locally.
//!
//! Two Zenoh subscribers for all imported topics, to their announcements (liveliness
//! tokens, with history) and to their messages (remote origin only), act on each topic's
//! state under its mutex, right in their callbacks (no thread hop per message); one
//! thread keeps the clock of every imported topic (retries, the withdrawal grace),
//! publishes `Block` backlogs, sends credits and declares tokens. On an announcement it
//! creates the local topic with the source's geometry, policy and type, marked as
//! imported, and declares its *importing token* (the exporter serves only bridges that
//! hold one, and holds a `Block` source within their credit: see [`crate::credit`]); on
//! each message (a
//! put of its own, or one of a batch, taken in order) it counts any gap in the source's
//! sequence numbers (`upstream_lost`) and republishes the payload with one copy, from
//! Zenoh's buffer into the slot; on the source's END stamp or the token's disappearance (the exporting bridge
//! stopped or died) it closes the local topic, so local subscribers drain it and get
//! `Disconnected`. Under `Block` a message that finds the local ring full waits in its
//! lane's backlog ([`backlog`]), and credits carry the backpressure to the source.
//!
//! Nothing remote is trusted: a malformed or oversized announcement is refused (counted,
//! logged once), a message without a valid stamp or larger than the slot is dropped and
//! counted, a malformed batch is refused whole before any of it is applied (counted once,
//! logged once), and a local topic that already has a live publisher is never touched.

mod backlog;
mod parts;

use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use ringcast::{CreateError, Overflow, Publisher, PublisherConfig};
use zenoh::bytes::ZBytes;
use zenoh::liveliness::LivelinessToken;
use zenoh::qos::CongestionControl;
use zenoh::sample::{Locality, SampleKind};
use zenoh::Wait;

use crate::announce::Announcement;
use crate::credit::Credit;
use crate::stats::{bump, Counters};
use crate::wire::{Entry, LaneTag, Put, Stamp, WireError};
use crate::Shared;
use backlog::{Backlog, Published, Pump, Retired};
use parts::{origin, Chunks, Remembered, MAX_REMEMBERED};

/// How long a wait for room in the ring lasts before it looks at the stop flag, and the
/// period of the import thread's clock.
const SLICE: Duration = Duration::from_millis(50);
/// How soon a rung topic whose state a callback held is served again.
const RETRY_BUSY: Duration = Duration::from_millis(1);
/// How often a refused-for-now source (a local publisher holds the name) is retried.
const RETRY: Duration = Duration::from_secs(1);
/// Puts (single messages or batches), and their bytes (payloads and batch indexes), of
/// not-yet-adopted incarnations kept until their announcement arrives (Zenoh may deliver
/// a source's first messages before its liveliness token). Past either bound the oldest
/// go, and the gap is counted on replay.
const PENDING: usize = 4096;
const PENDING_BYTES: usize = 64 << 20;
/// After its token is withdrawn, a source is closed once it has been quiet this long (or
/// at its END stamp): the withdrawal may overtake the source's last messages.
const GRACE: Duration = Duration::from_millis(250);
/// Most announcing bridges of one topic kept at once; most incarnations and keys
/// remembered as finished or refused. A peer that announces or sends more cannot grow
/// the importer past these (the excess is refused and counted; the oldest memories go).
const MAX_KNOWN: usize = 64;
/// Messages in a row from the adopted bridge whose sequence is behind the one expected
/// after which the importer takes the sequence as it comes (re-syncs): one forged jump
/// ahead, which unauthenticated links cannot rule out, then costs at most this many
/// genuine messages instead of all of them.
const RESYNC_AFTER: u32 = 64;
/// How often an importer repeats its credit while a lane moved (a lost or overtaken
/// credit, an exporter that re-attached).
const CREDIT_AGAIN: Duration = Duration::from_secs(1);
/// How long the importing token of a closed import is kept for a re-created source of the
/// same exporter (see `Importer::old_tokens`). Meanwhile the exporter serves that source
/// within our credit, so nothing before we adopt it: at most this long for everyone if we
/// never do.
const KEEP_TOKEN: Duration = Duration::from_secs(1);

/// A remote topic we know of.
struct Known {
    key: String,
    zid: String,
    a: Announcement,
}

/// The source we re-publish now.
struct Current {
    key: String,
    /// The bridge that announced it: only its messages are applied.
    zid: String,
    creation_id: u64,
    /// Per source lane (one for a topic with one publisher): its sequence and the local
    /// publisher that re-publishes it.
    lanes: Vec<Lane>,
    /// A shared topic: what a lane's local publisher joins with, and the origin it must
    /// find in the topic it joined (anything else is a local topic: never written).
    config: PublisherConfig,
    origin: String,
    /// Withdrawn by its bridge: when we last heard from it.
    withdrawn: Option<Instant>,
    /// A `Block` topic: the window its credits state (0: `Overwrite`, no credits).
    window: u64,
    /// The per-lane `consumed` of the last credit sent, and when it went.
    credited: Option<(Vec<u64>, Instant)>,
    /// The token that tells the exporter we import from it (it serves only bridges that
    /// hold one), declared by the import thread.
    importing: Option<LivelinessToken>,
}

impl Current {
    /// Per lane, the sequence of its next local publish (`u64::MAX`: not known yet; the
    /// exporter then counts a window from where it first told of the lane).
    fn consumed(&self) -> Vec<u64> {
        self.lanes
            .iter()
            .map(|l| l.backlog.first_seq().or(l.expected).unwrap_or(u64::MAX))
            .collect()
    }

    /// Whether a credit is due: none sent yet, or a lane moved a quarter window.
    fn credit_due(&self) -> bool {
        if self.window == 0 {
            return false;
        }
        let Some((sent, _)) = &self.credited else {
            return self.lanes.iter().any(|l| l.expected.is_some());
        };
        self.lanes.iter().zip(sent).any(|(l, &was)| {
            let now = l.backlog.first_seq().or(l.expected).unwrap_or(u64::MAX);
            now != was && (was == u64::MAX || now.wrapping_sub(was) >= self.window / 4)
        })
    }
}

/// One source lane (of a shared topic; the only lane of an exclusive one).
#[derive(Default)]
struct Lane {
    /// The lane's sequence we expect next (`None` before its first message or SYNC). It
    /// goes on across a takeover of the lane at the source.
    expected: Option<u64>,
    /// Messages in a row behind `expected` (see [`RESYNC_AFTER`]).
    behind: u32,
    /// A shared topic: the source publisher (writer id) that `publisher` stands for.
    writer: Option<u32>,
    /// The local publisher: created with the topic (exclusive), or joined when the lane's
    /// writer is first heard of (shared) and dropped at its LEAVE or when another writer
    /// takes the lane, so that local subscribers see each source publisher as one of
    /// their own, and see it end.
    publisher: Option<Publisher>,
    /// A writer whose local publisher could not be joined: its messages are refused.
    refused_writer: Option<u32>,
    /// Under `Block`: messages that found the ring full, for the pump.
    backlog: Backlog,
}

impl Lane {
    /// The lane's publisher leaves once its backlog is published: here, waiting for room
    /// (`wait`: in a Zenoh callback, until the bridge stops), or later by the pump
    /// (`None`: on the import thread, which never waits; into `retired`).
    fn leave(&mut self, retired: &mut Vec<Retired>, wait: Option<&Shared>, stats: &Counters) {
        let mut backlog = std::mem::take(&mut self.backlog);
        let Some(mut publisher) = self.publisher.take() else {
            return;
        };
        match wait {
            Some(shared) => flush(&mut backlog, &mut publisher, shared, stats),
            None if !backlog.is_empty() => retired.push(Retired { publisher, backlog }),
            None => {}
        }
    }
}

/// Publishes `backlog` whole into `p`, waiting for room until the bridge stops.
fn flush(backlog: &mut Backlog, p: &mut Publisher, shared: &Shared, stats: &Counters) {
    let mut done = Published::default();
    let stopping = || shared.stopping();
    let _ = backlog.flush(p, (&stopping, SLICE), &mut done);
    bump(&stats.messages, done.messages);
    bump(&stats.bytes, done.bytes);
}

struct Importer {
    shared: Arc<Shared>,
    topic: String,
    stats: Arc<Counters>,
    known: Vec<Known>,
    current: Option<Current>,
    /// Incarnations that sent END: never adopted again (the newest [`MAX_REMEMBERED`]).
    finished: Remembered<u64>,
    /// Keys refused for good (malformed, too large, not creatable): logged once.
    refused: Remembered<String>,
    /// Puts of incarnations not adopted yet (with the bridge that sent them), oldest
    /// first, and their bytes (payloads and batch indexes).
    pending: VecDeque<(String, Put, ZBytes)>,
    pending_bytes: usize,
    /// Per sending bridge, incarnation and lane, the first sequence evicted from
    /// `pending` (replay counts from it); at most [`MAX_REMEMBERED`].
    evicted: HashMap<(String, u64, u32), u64>,
    /// Incarnations whose announcement was refused: their messages are not kept.
    refused_ids: Remembered<u64>,
    last_try: Option<Instant>,
    /// A malformed put was logged (once per import).
    said_malformed: bool,
    /// This topic's place in the import thread, the waker that rings it there, and the
    /// flag the waker raises (a backlog's arm may have fired: see [`Importer::message`]).
    index: usize,
    pump: Arc<Pump>,
    waker: Waker,
    rang: Arc<AtomicBool>,
    /// Publishers that left with a backlog, published to the end by the pump.
    retired: Vec<Retired>,
    /// Tokens to undeclare from the import thread (never in a callback).
    /// With the exporter's id each was for, kept [`KEEP_TOKEN`] after the import closed: a
    /// source re-created by the same exporter and adopted meanwhile takes its token over
    /// (the key is the same), so the exporter never sees us leave, which would let it run
    /// ahead of our credit until the new token arrives.
    old_tokens: Vec<(String, LivelinessToken, Instant)>,
    /// The import thread holds the state: nothing may wait for room (see `backlog`).
    on_thread: bool,
}

/// The import thread: subscribes to every topic in `topics` (one wildcard subscriber for
/// all their announcements and one for all their messages: Zenoh matches each put
/// against every subscription of the session, so one per topic made every put cost in
/// proportion to the number of topics), then keeps their clock (retries, the
/// withdrawal grace), publishes their backlogs and sends their credits until the bridge
/// stops, and closes them. Messages are applied in Zenoh's callbacks.
pub(crate) fn run(shared: Arc<Shared>, topics: Vec<(String, Arc<Counters>)>) {
    let pump = Arc::new(Pump::default());
    let imports: Vec<Arc<Mutex<Importer>>> = topics
        .into_iter()
        .enumerate()
        .map(|(i, (topic, stats))| {
            Arc::new(Mutex::new(Importer::new(&shared, topic, stats, i, &pump)))
        })
        .collect();
    let by_topic: Arc<HashMap<String, Arc<Mutex<Importer>>>> = Arc::new(
        imports
            .iter()
            .map(|m| (lock(m).topic.clone(), m.clone()))
            .collect(),
    );
    let subscribed = subscribe(&shared, &by_topic);
    let (tokens, data) = match subscribed {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot subscribe; not importing");
            return;
        }
    };
    // A stopping exporter's barrier: Zenoh applies a link's messages in order, one
    // callback after another, so this answer goes only once every put sent before the
    // query was applied (see `export::run`).
    let barrier = shared
        .session
        .declare_queryable(shared.keys.barrier(&shared.zid))
        .allowed_origin(Locality::Remote)
        .callback(|q| {
            let _ = q.reply(q.key_expr().clone(), Vec::<u8>::new()).wait();
        })
        .wait();
    if let Err(e) = &barrier {
        tracing::warn!(error = %e, "cannot answer exporters' barriers; a stopping exporter waits for its timeout");
    }
    let mut tick = Instant::now() + SLICE;
    // Rung topics whose state a callback held: tried again after `retry` (their ring is
    // spent, and a backlog's arm fires once), which doubles from `RETRY_BUSY` while a
    // callback keeps holding one (it may be waiting for room, the fallback) and is at
    // most the tick's.
    let mut busy: Vec<usize> = Vec::new();
    let mut retry = RETRY_BUSY;
    while !shared.stopping() {
        let until = if busy.is_empty() {
            tick
        } else {
            (Instant::now() + retry).min(tick)
        };
        let mut rung = pump.wait(until);
        for i in busy.drain(..) {
            if !rung.contains(&i) {
                rung.push(i);
            }
        }
        for i in rung {
            if let Some(imp) = imports.get(i) {
                if !pump_one(&shared, imp, false) {
                    busy.push(i);
                }
            }
        }
        retry = if busy.is_empty() {
            RETRY_BUSY
        } else {
            (retry * 2).min(SLICE)
        };
        if Instant::now() >= tick {
            tick = Instant::now() + SLICE;
            for imp in &imports {
                let _ = pump_one(&shared, imp, true);
            }
        }
    }
    // A callback blocked on a full ring sees the stop within a slice and returns.
    drop(barrier);
    let _ = data.undeclare().wait();
    let _ = tokens.undeclare().wait();
    for imp in &imports {
        lock(imp).close("the bridge is stopping", false);
    }
}

/// The two subscribers of every imported topic: announcements and messages.
fn subscribe(
    shared: &Arc<Shared>,
    by_topic: &Arc<HashMap<String, Arc<Mutex<Importer>>>>,
) -> zenoh::Result<(zenoh::pubsub::Subscriber<()>, zenoh::pubsub::Subscriber<()>)> {
    let session = &shared.session;
    let (keys, map) = (shared.keys.clone(), by_topic.clone());
    let tokens = session
        .liveliness()
        .declare_subscriber(shared.keys.all_tokens())
        .history(true)
        .callback(move |s| {
            let key = s.key_expr().as_str();
            let Some(imp) = keys.token_topic(key).and_then(|t| map.get(t)) else {
                return;
            };
            let mut imp = lock(imp);
            match s.kind() {
                SampleKind::Put => imp.announced(key.to_owned()),
                SampleKind::Delete => imp.withdrawn(key),
            }
        })
        .wait()?;
    let (keys, map) = (shared.keys.clone(), by_topic.clone());
    let data = session
        .declare_subscriber(shared.keys.all_data())
        .allowed_origin(Locality::Remote)
        .callback(move |s| {
            let key = s.key_expr().as_str();
            let Some((topic, sender)) = keys.data_topic(key) else {
                return;
            };
            let Some(imp) = map.get(topic) else {
                return;
            };
            let attachment = s.attachment().map(ZBytes::to_bytes);
            let put = Put::decode(attachment.as_deref(), s.payload().len());
            let mut imp = lock(imp);
            // Re-published right here on Zenoh's receive path, with no thread hop.
            imp.message(sender, put, s.payload().clone());
            // A credit goes out at once (after the lock), so the exporter never waits for
            // the import thread; the token (and periodic credits) go from that thread.
            let credit = imp.take_credit().map(|c| (c, imp.shared.clone()));
            if imp.current.as_ref().is_some_and(|c| c.importing.is_none()) {
                imp.pump.ring(imp.index);
            }
            drop(imp);
            if let Some(((key, payload), shared)) = credit {
                send_credit(&shared, key, payload);
            }
        })
        .wait()?;
    Ok((tokens, data))
}

impl Importer {
    fn new(
        shared: &Arc<Shared>,
        topic: String,
        stats: Arc<Counters>,
        index: usize,
        pump: &Arc<Pump>,
    ) -> Importer {
        let (waker, rang) = pump.waker(index);
        Importer {
            index,
            pump: pump.clone(),
            waker,
            rang,
            retired: Vec::new(),
            old_tokens: Vec::new(),
            on_thread: false,
            shared: shared.clone(),
            topic,
            stats,
            known: Vec::new(),
            current: None,
            finished: Remembered::default(),
            refused: Remembered::default(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            evicted: HashMap::new(),
            refused_ids: Remembered::default(),
            last_try: None,
            said_malformed: false,
        }
    }
}

/// The import thread's work for one topic: publish its backlogs, send its credit, and
/// declare or undeclare its token (the credit put goes out after the lock is dropped).
/// A topic whose state a callback holds (applying a put, or waiting for room, the
/// fallback) is skipped (`false`): the thread serves every topic and never waits for one.
fn pump_one(shared: &Shared, importer: &Mutex<Importer>, tick: bool) -> bool {
    let mut imp = match importer.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return false,
    };
    imp.on_thread = true;
    if tick {
        imp.tick();
    }
    let credit = imp.pump();
    imp.on_thread = false;
    drop(imp);
    if let Some((key, payload)) = credit {
        send_credit(shared, key, payload);
    }
    true
}

/// Puts a credit (reliably: the exporter may be waiting for it).
fn send_credit(shared: &Shared, key: String, payload: Vec<u8>) {
    let sent = shared
        .session
        .put(key, payload)
        .congestion_control(CongestionControl::Block)
        .allowed_destination(Locality::Remote)
        .wait();
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cannot send a credit");
    }
}

/// The importer's state, whoever holds it (a panic in a callback is a bug; the state
/// is still consistent enough to close the topic, so poisoning is ignored).
fn lock(m: &Mutex<Importer>) -> MutexGuard<'_, Importer> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Importer {
    /// The import thread's turn: publishes the backlogs (the current lanes' and the
    /// retired publishers'), undeclares old tokens, declares the importing token of the
    /// current source, and returns the credit to send (its key and payload), if one is
    /// due.
    fn pump(&mut self) -> Option<(String, Vec<u8>)> {
        let mut done = Published::default();
        if let Some(cur) = self.current.as_mut() {
            for lane in &mut cur.lanes {
                if let Some(p) = lane.publisher.as_mut() {
                    lane.backlog.fired();
                    lane.backlog.pump(p, &self.waker, &mut done);
                }
            }
        }
        let had_retired = !self.retired.is_empty();
        self.retired.retain_mut(|r| {
            r.backlog.fired();
            r.backlog.pump(&mut r.publisher, &self.waker, &mut done);
            !r.backlog.is_empty()
        });
        bump(&self.stats.messages, done.messages);
        bump(&self.stats.bytes, done.bytes);
        let now = Instant::now();
        self.old_tokens.retain(|(_, _, until)| now < *until);
        if had_retired && self.retired.is_empty() && self.current.is_none() {
            // The last retired publisher is gone: a waiting source can be adopted.
            self.adopt();
        }
        let cur = self.current.as_mut()?;
        if cur.importing.is_none() {
            let key = self
                .shared
                .keys
                .importing(&self.topic, &cur.zid, &self.shared.zid);
            match self.shared.session.liveliness().declare_token(key).wait() {
                Ok(t) => cur.importing = Some(t),
                Err(e) => {
                    tracing::warn!(topic = self.topic, error = %e, "cannot declare the importing token")
                }
            }
        }
        self.take_credit()
    }

    /// The credit to send now (its key and payload), if one is due: a lane moved a
    /// quarter window, or it moved at all and the last credit went [`CREDIT_AGAIN`] ago.
    fn take_credit(&mut self) -> Option<(String, Vec<u8>)> {
        let cur = self.current.as_mut().filter(|c| c.window > 0)?;
        // Cheap checks first: this runs for every message a callback applies.
        let due = cur.credit_due();
        let stale = || {
            cur.credited
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() >= CREDIT_AGAIN)
        };
        if !due && !stale() {
            return None;
        }
        let consumed = cur.consumed();
        if !due
            && cur
                .credited
                .as_ref()
                .is_some_and(|(sent, _)| *sent == consumed)
        {
            return None;
        }
        let credit = Credit {
            creation_id: cur.creation_id,
            window: cur.window,
            consumed: consumed.clone(),
        };
        tracing::debug!(topic = self.topic, ?consumed, "credit sent");
        cur.credited = Some((consumed, Instant::now()));
        let key = self
            .shared
            .keys
            .credit(&self.topic, &cur.zid, &self.shared.zid);
        Some((key, credit.encode()))
    }

    /// The periodic work: retry a source we could not adopt yet, close a withdrawn one
    /// that has gone quiet.
    fn tick(&mut self) {
        if self.current.is_none()
            && !self.known.is_empty()
            && self.last_try.is_none_or(|t| t.elapsed() >= RETRY)
        {
            self.adopt();
        }
        let quiet = self.current.as_ref().and_then(|c| c.withdrawn);
        if quiet.is_some_and(|t| t.elapsed() >= GRACE) {
            self.close("the exporting bridge withdrew it without ending it", true);
            self.adopt();
        }
    }

    fn refuse(&mut self, key: &str, why: &dyn std::fmt::Display) {
        if self.refused.insert(key.to_owned()) {
            bump(&self.stats.refused, 1);
            tracing::warn!(topic = self.topic, error = %why, "refusing a remote announcement");
        }
    }

    fn announced(&mut self, key: String) {
        let source = match self.shared.keys.parse_token(&self.topic, &key) {
            Ok(s) => s,
            Err(e) => return self.refuse(&key, &e),
        };
        if let Some(c) = self.current.as_mut().filter(|c| c.key == key) {
            // Re-announced after a withdrawal (a token flap): it lives on.
            c.withdrawn = None;
        }
        if source.zid == self.shared.zid || self.known.iter().any(|k| k.key == key) {
            return;
        }
        if source.announcement.ring_bytes() > self.shared.max_import_bytes {
            let why = format!(
                "a ring of {} bytes is over this bridge's limit of {}",
                source.announcement.ring_bytes(),
                self.shared.max_import_bytes
            );
            self.refused_ids.insert(source.announcement.creation_id);
            return self.refuse(&key, &why);
        }
        if self.known.len() >= MAX_KNOWN {
            let why = format!("more than {MAX_KNOWN} bridges announce this topic");
            return self.refuse(&key, &why);
        }
        let (zid, a) = (source.zid.to_owned(), source.announcement);
        self.known.push(Known { key, zid, a });
        if self.current.is_none() {
            self.adopt();
        }
    }

    fn withdrawn(&mut self, key: &str) {
        self.known.retain(|k| k.key != key);
        if let Some(c) = self.current.as_mut().filter(|c| c.key == key) {
            c.withdrawn = Some(Instant::now());
        }
    }

    /// Creates the local topic for the first known source we can.
    fn adopt(&mut self) {
        self.last_try = Some(Instant::now());
        if !self.retired.is_empty() {
            // A closed source's last messages are still being published (the pump
            // adopts when they are): a new local topic of the name cannot be created
            // before the old one's publisher is gone.
            return;
        }
        let candidates: Vec<usize> = (0..self.known.len())
            .filter(|&i| {
                let k = &self.known[i];
                !self.finished.contains(&k.a.creation_id) && !self.refused.contains(&k.key)
            })
            .collect();
        for i in candidates {
            let k = &self.known[i];
            let origin = origin(&k.a, &k.zid);
            let slots = k.a.import_slots(
                self.shared.max_batch_bytes as u64,
                self.shared.max_import_bytes,
            );
            let cfg =
                k.a.config(&self.shared.prefix, &origin, slots)
                    .mode(self.shared.import_mode);
            let lanes = k.a.max_publishers;
            // `None`: a live local topic of that name that is not ours.
            let created = if lanes == 1 {
                Some(Publisher::create(&self.topic, cfg.clone()).map(Some))
            } else {
                // A shared topic: each source lane joins a local publisher when it is
                // heard of. A live local topic of that name that is not ours is left
                // alone (its lanes would be exported back: see `join_lane`).
                match ringcast::inspect::inspect(&self.shared.prefix, &self.topic) {
                    Ok(i)
                        if i.publisher_alive && !i.closed && i.origin.as_ref() != Some(&origin) =>
                    {
                        None
                    }
                    _ => Some(Ok(None)),
                }
            };
            match created {
                Some(Ok(publisher)) => {
                    tracing::info!(topic = self.topic, origin, announcement = %k.a, "importing");
                    let mut lanes: Vec<Lane> = (0..lanes).map(|_| Lane::default()).collect();
                    lanes[0].publisher = publisher;
                    self.current = Some(Current {
                        key: k.key.clone(),
                        zid: k.zid.clone(),
                        creation_id: k.a.creation_id,
                        lanes,
                        config: cfg,
                        origin,
                        withdrawn: None,
                        window: match k.a.overflow {
                            Overflow::Block => backlog::window(k.a.slot_capacity),
                            Overflow::Overwrite => 0,
                        },
                        credited: None,
                        importing: self
                            .old_tokens
                            .iter()
                            .position(|(z, _, _)| *z == k.zid)
                            .map(|i| self.old_tokens.swap_remove(i).1),
                    });
                    self.stats.set_active(true);
                    self.replay();
                    // The import thread declares our token: the exporter serves us then.
                    self.pump.ring(self.index);
                    return;
                }
                // A local publisher has the name (a local topic, or another import), or
                // /dev/shm is full or out of descriptors for now: leave it, look again.
                None
                | Some(Err(
                    CreateError::AlreadyPublished { .. }
                    | CreateError::NoSpace { .. }
                    | CreateError::Io { .. },
                )) => {
                    if self.refused.insert(format!("busy:{}", k.key)) {
                        bump(&self.stats.refused, 1);
                        tracing::warn!(
                            topic = self.topic,
                            "a local publisher has this topic; not importing over it"
                        );
                    }
                }
                Some(Err(e)) => {
                    let (key, id) = (k.key.clone(), k.a.creation_id);
                    self.refused_ids.insert(id);
                    self.refuse(&key, &e);
                }
            }
        }
    }

    /// The source's END arrived (`died`: it was not closed by its publisher): the
    /// incarnation is never adopted again, the import ends as the source did, and the
    /// next known source (if any) is adopted. The rest of the put is not applied.
    fn source_ended(&mut self, creation_id: u64, died: bool) -> ControlFlow<()> {
        self.finished.insert(creation_id);
        let why = if died {
            "the source died"
        } else {
            "the source closed"
        };
        self.close(why, died);
        self.adopt();
        ControlFlow::Break(())
    }

    /// Ends the imported topic: as closed (`died` false: the source closed, or this
    /// bridge stops), or as a dead publisher's (`died`: the source died, or its exporting
    /// bridge went without ending it), so that local subscribers can tell.
    fn close(&mut self, why: &str, died: bool) {
        if let Some(c) = self.current.take() {
            let r = self.stats.report();
            tracing::info!(
                topic = self.topic,
                why,
                published = c
                    .lanes
                    .iter()
                    .filter_map(|l| l.publisher.as_ref())
                    .map(Publisher::next_seq)
                    .sum::<u64>(),
                lost_upstream = r.lost,
                refused = r.refused,
                died,
                "closing the imported topic"
            );
            let mut c = c;
            let wait = (!self.on_thread).then_some(&*self.shared);
            for lane in &mut c.lanes {
                if died {
                    if let Some(p) = lane.publisher.as_mut() {
                        // Published to the end first (its backlog), then left as dead.
                        p.abandon_on_drop();
                    }
                }
                lane.leave(&mut self.retired, wait, &self.stats);
            }
            if let Some(t) = c.importing.take() {
                self.old_tokens
                    .push((c.zid.clone(), t, Instant::now() + KEEP_TOKEN));
            }
            drop(c);
            self.stats.set_active(false);
            if !self.retired.is_empty() || !self.old_tokens.is_empty() {
                self.pump.ring(self.index);
            }
        }
    }

    /// Re-publishes the pending messages of the incarnation just adopted, in order.
    fn replay(&mut self) {
        let Some((zid, id)) = self
            .current
            .as_ref()
            .map(|c| (c.zid.clone(), c.creation_id))
        else {
            return;
        };
        let (ours, others): (VecDeque<_>, VecDeque<_>) = self
            .pending
            .drain(..)
            .partition(|(z, p, _)| *z == zid && p.stamp.creation_id == id);
        self.pending = others;
        self.pending_bytes = self.pending.iter().map(|(_, p, b)| weight(p, b)).sum();
        if let Some(c) = self.current.as_mut() {
            for (l, lane) in c.lanes.iter_mut().enumerate() {
                if let Some(first) = self.evicted.remove(&(zid.clone(), id, l as u32)) {
                    // Some of its first messages were evicted: count them as lost.
                    lane.expected = Some(first);
                }
            }
        }
        for (_, put, payload) in ours {
            self.message(&zid, Ok(put), payload);
        }
    }

    /// A put (a message, a batch of them, an END or a SYNC) that bridge `zid` sent for
    /// the topic, checked by [`Put::decode`].
    fn message(&mut self, zid: &str, put: Result<Put, WireError>, payload: ZBytes) {
        let put = match put {
            Ok(put) => put,
            Err(e) => {
                bump(&self.stats.refused, 1);
                if !std::mem::replace(&mut self.said_malformed, true) {
                    tracing::warn!(topic = self.topic, error = %e, "refusing a malformed put (logged once)");
                }
                return;
            }
        };
        let stamp = put.stamp;
        let adopted = self
            .current
            .as_ref()
            .map(|c| (c.zid.as_str(), c.creation_id));
        if adopted.is_some_and(|(z, _)| z != zid) {
            // Another bridge than the source we re-publish (or a peer posing as one):
            // never applied to it. Only a sender that announced nothing is counted.
            if !self.known.iter().any(|k| k.zid == zid) {
                bump(&self.stats.refused, 1);
            }
            return;
        }
        if adopted.map(|(_, id)| id) != Some(stamp.creation_id) {
            // Not the source we re-publish: an incarnation whose announcement has not
            // arrived yet (kept, bounded), or one that ended (dropped).
            let id = stamp.creation_id;
            if !self.finished.contains(&id) && !self.refused_ids.contains(&id) {
                self.pending_bytes += weight(&put, &payload);
                self.pending.push_back((zid.to_owned(), put, payload));
                while self.pending.len() > PENDING || self.pending_bytes > PENDING_BYTES {
                    let Some((z, old, p)) = self.pending.pop_front() else {
                        break;
                    };
                    self.pending_bytes -= weight(&old, &p);
                    if self.evicted.len() >= MAX_REMEMBERED {
                        // Bounded: a loss count of some unannounced incarnation is lost.
                        self.evicted.clear();
                    }
                    // A batch's stamp has its first message's sequence.
                    let seq = old.stamp.seq;
                    let lane = old.stamp.lane.map_or(0, |t| t.lane);
                    let first = self
                        .evicted
                        .entry((z, old.stamp.creation_id, lane))
                        .or_insert(seq);
                    *first = (*first).min(seq);
                }
            }
            return;
        }
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if cur.withdrawn.is_some() {
            cur.withdrawn = Some(Instant::now());
        }
        if let Err(e) = put.check_lanes(cur.lanes.len() as u64) {
            // A lane the topic does not have, a shared topic's put without one, or an
            // exclusive topic's with one: refused whole.
            bump(&self.stats.refused, 1);
            if !std::mem::replace(&mut self.said_malformed, true) {
                tracing::warn!(topic = self.topic, error = %e, "refusing a malformed put (logged once)");
            }
            return;
        }
        if put.messages() > 0 {
            bump(&self.stats.puts, 1);
        }
        // Relaxed: a hint (see `Pump::waker`). An arm fired: the lanes' backlogs may take
        // the room there is now, here, besides the import thread's pump.
        if self.rang.swap(false, Ordering::Relaxed) {
            for lane in &mut cur.lanes {
                lane.backlog.fired();
            }
        }
        let mut bytes = Chunks::new(payload.slices());
        if put.batch.is_empty() {
            let _ = self.one(stamp, &mut bytes, payload.len());
            return;
        }
        for e in &put.batch {
            let one = Stamp {
                seq: e.seq,
                flags: 0,
                ..stamp
            };
            // A batch is one lane's (its stamp's).
            if self.one(one, &mut bytes, e.len).is_break() {
                return;
            }
        }
    }

    /// One message (of `len` bytes, next in `bytes`), END, SYNC or LEAVE of the adopted
    /// source: counts the gap before it in its lane and re-publishes it with one copy.
    /// `Break` when the rest of a batch must not be applied (the source closed, or we are
    /// stopping).
    fn one(&mut self, stamp: Stamp, bytes: &mut Chunks<'_>, len: usize) -> ControlFlow<()> {
        let Some(cur) = self.current.as_mut() else {
            return ControlFlow::Break(());
        };
        let shared_topic = cur.lanes.len() > 1;
        if stamp.is_sync() {
            // The exporter asks where we are (at attach, for a new importer, or parked
            // for want of credit): the next credit goes out whether or not it moved.
            cur.credited = None;
        }
        if stamp.is_end() && shared_topic {
            // All of a shared source's publishers are gone; each lane's tail was counted
            // at its LEAVE.
            let creation_id = cur.creation_id;
            return self.source_ended(creation_id, stamp.is_died());
        }
        // `Put::check_lanes` has checked the lane against the topic's.
        let li = stamp.lane.map_or(0, |t| t.lane as usize);
        let Some(lane) = cur.lanes.get_mut(li) else {
            bump(&self.stats.refused, 1);
            bytes.skip(len);
            return ControlFlow::Continue(());
        };
        let lost_lane = stamp.lane.map(|t| t.lane);
        if stamp.is_sync() && lane.expected.is_none() {
            // The exporter starts reading here: anything it misses from now on is a gap.
            lane.expected = Some(stamp.seq);
            if let Some(t) = stamp.lane {
                let wait = (!self.on_thread).then_some(&*self.shared);
                join_lane(
                    &self.topic,
                    cur,
                    li,
                    t,
                    &self.stats,
                    (&mut self.retired, wait),
                );
            }
            return ControlFlow::Continue(());
        }
        if stamp.seq == u64::MAX {
            // No source can have sent 2^64 messages: a forged stamp, refused before it
            // can count a loss.
            bump(&self.stats.refused, 1);
            bytes.skip(len);
            return ControlFlow::Continue(());
        }
        let mut expected = lane.expected.unwrap_or(stamp.seq);
        if stamp.seq < expected {
            // A duplicate, or the source is behind a sequence someone forged ahead of it:
            // after a run of these, believe the source again.
            lane.behind += 1;
            if lane.behind < RESYNC_AFTER {
                bytes.skip(len);
                return ControlFlow::Continue(());
            }
            tracing::warn!(
                topic = self.topic,
                lane = li,
                expected,
                got = stamp.seq,
                "the source's sequence went back for {RESYNC_AFTER} messages: following it again"
            );
            bump(&self.stats.refused, u64::from(lane.behind - 1));
            expected = stamp.seq;
        }
        lane.behind = 0;
        let gap = stamp.seq - expected;
        match stamp.lane {
            // A LEAVE ends the lane's writer: no local publisher to join for it.
            // Per message of a shared topic: returns at once unless the writer is new.
            Some(t) if !stamp.is_leave() => {
                let wait = (!self.on_thread).then_some(&*self.shared);
                join_lane(
                    &self.topic,
                    cur,
                    li,
                    t,
                    &self.stats,
                    (&mut self.retired, wait),
                );
            }
            _ => {}
        }
        if gap > 0 {
            // Before the next commit: subscribers that receive it see the count. The
            // count is the topic's (one for all lanes); any of its publishers adds to it.
            let lane_publisher = cur.lanes[li].publisher.as_ref();
            if let Some(p) =
                lane_publisher.or_else(|| cur.lanes.iter().find_map(|l| l.publisher.as_ref()))
            {
                p.count_upstream_loss(gap);
            }
            self.stats.lose(lost_lane, gap);
        }
        let lane = &mut cur.lanes[li];
        if stamp.is_end() {
            let creation_id = cur.creation_id;
            return self.source_ended(creation_id, stamp.is_died());
        }
        if stamp.is_leave() {
            // The lane's writer left or died after `seq` messages: its local publisher
            // leaves too, so local subscribers see the lane end (and the topic, with the
            // last one).
            lane.expected = Some(stamp.seq);
            if stamp.lane.map(|t| t.writer) == lane.writer {
                let wait = (!self.on_thread).then_some(&*self.shared);
                lane.leave(&mut self.retired, wait, &self.stats);
                lane.writer = None;
                tracing::info!(topic = self.topic, lane = li, "a source publisher left");
            }
            lane.refused_writer = None;
            return ControlFlow::Continue(());
        }
        if stamp.is_sync() {
            // Re-attached (after an eviction or a lost match) at `seq`: the gap is counted.
            lane.expected = Some(stamp.seq);
            return ControlFlow::Continue(());
        }
        lane.expected = Some(stamp.seq + 1); // below u64::MAX: checked above
        let Some(publisher) = lane.publisher.as_mut() else {
            // A writer whose local lane could not be joined.
            bump(&self.stats.refused, 1);
            bytes.skip(len);
            return ControlFlow::Continue(());
        };
        if len > publisher.capacity() {
            bump(&self.stats.refused, 1);
            bytes.skip(len);
            return ControlFlow::Continue(());
        }
        // One copy, from Zenoh's buffer into the slot. `Overwrite` never waits for room,
        // and its `send` stores straight into the slot (a loan there goes through a
        // staging buffer); under `Block` the loan is the slot, and we wait for room in
        // slices, so that stopping is never held up.
        if publisher.overflow() == Overflow::Block {
            // Never waits here while the lane's backlog has room: see `backlog`.
            let mut done = Published::default();
            let shared = &self.shared;
            let stopping = || shared.stopping();
            let flow = lane.backlog.publish(
                publisher,
                stamp.seq,
                bytes,
                len,
                // The import thread never waits: there the backlog may grow past it.
                if self.on_thread { u64::MAX } else { cur.window },
                &self.waker,
                (&stopping, SLICE),
                &mut done,
            );
            bump(&self.stats.messages, done.messages);
            bump(&self.stats.bytes, done.bytes);
            return flow;
        }
        match bytes.contiguous(len) {
            Some(b) => {
                if publisher.send(b).is_err() {
                    bump(&self.stats.refused, 1);
                    return ControlFlow::Continue(());
                }
            }
            None => {
                // Never waits under `Overwrite`.
                let mut loan = publisher.loan();
                bytes.copy(len, |at, chunk| loan.write_at(at, chunk));
                loan.commit(len);
            }
        }
        bump(&self.stats.messages, 1);
        bump(&self.stats.bytes, len as u64);
        ControlFlow::Continue(())
    }
}

/// A shared topic: makes lane `li`'s local publisher stand for source writer `t.writer`.
/// A new writer (the lane's first, or one that took it over at the source) replaces the
/// lane's local publisher: a new one joins the local topic (creating it if no lane of it
/// lives, marked imported from the source), then the old one leaves (local subscribers
/// see its lane end). If what it joined is not ours (a local publisher created the topic
/// since we looked), it leaves again at once and the writer's messages are refused: the
/// local publishers' lanes of such a topic would be exported back, an echo; a bridge
/// never writes into a local shared topic. A writer that could not be joined is not
/// tried again until its LEAVE or another writer.
fn join_lane(
    topic: &str,
    cur: &mut Current,
    li: usize,
    t: LaneTag,
    stats: &Counters,
    (retired, wait): (&mut Vec<Retired>, Option<&Shared>),
) {
    let lane = &mut cur.lanes[li];
    if lane.writer == Some(t.writer) || lane.refused_writer == Some(t.writer) {
        return;
    }
    // The old writer's backlog goes first: published here, waiting for room (in a
    // callback), or on the import thread (which never waits) by the pump, its publisher
    // kept until then.
    let mut backlog = std::mem::take(&mut lane.backlog);
    if let (Some(shared), Some(p)) = (wait, lane.publisher.as_mut()) {
        flush(&mut backlog, p, shared, stats);
    }
    // Join before the old one leaves: were it the topic's last live lane, its leaving
    // would end the local topic under its subscribers while the source lives on. Only
    // when every local lane is taken does the old one leave first (the others then keep
    // the topic).
    let mut old = lane.publisher.take();
    lane.writer = None;
    let made = match Publisher::create(topic, cur.config.clone()) {
        // Every local lane is taken: the old one leaves first, unless it still has a
        // backlog to publish (then the new writer waits: refused until its LEAVE).
        Err(CreateError::PublishersFull { .. }) if backlog.is_empty() => {
            old = None;
            Publisher::create(topic, cur.config.clone())
        }
        made => made,
    };
    if let Some(publisher) = old {
        if !backlog.is_empty() {
            retired.push(Retired { publisher, backlog });
        }
    }
    let why = match made {
        Ok(p) if p.origin().as_deref() == Some(cur.origin.as_str()) => {
            tracing::debug!(topic, lane = li, writer = t.writer, local = %p.id(), "a source publisher joined");
            lane.publisher = Some(p);
            lane.writer = Some(t.writer);
            return;
        }
        Ok(_) => "a local publisher shares this topic; not importing into it".to_owned(),
        Err(e) => e.to_string(),
    };
    lane.refused_writer = Some(t.writer);
    bump(&stats.refused, 1);
    tracing::warn!(
        topic,
        lane = li,
        error = why,
        "cannot re-publish a source lane"
    );
}

/// What a kept put costs in memory: its payload and its index.
fn weight(put: &Put, payload: &ZBytes) -> usize {
    payload.len() + put.batch.len() * std::mem::size_of::<Entry>()
}
