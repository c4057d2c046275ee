//! Import: one remote topic re-published locally.
//!
//! Two Zenoh subscribers, to the topic's announcements (liveliness tokens, with history)
//! and to its messages (remote origin only), act on one state under a mutex, right in
//! their callbacks (no thread hop per message); the topic's thread only keeps the clock
//! (retries, the withdrawal grace) and the stop. On an announcement it creates the local topic
//! with the source's geometry, policy and type, marked as imported; on each message (a
//! put of its own, or one of a batch, taken in order) it counts any gap in the source's
//! sequence numbers (`upstream_lost`) and republishes the payload with one copy, from
//! Zenoh's buffer into the slot; on the source's END stamp or the token's disappearance (the exporting bridge
//! stopped or died) it closes the local topic, so local subscribers drain it and get
//! `Disconnected`. Under `Block` a full local ring blocks the message callback, and with
//! it Zenoh's receive path: backpressure reaches the source.
//!
//! Nothing remote is trusted: a malformed or oversized announcement is refused (counted,
//! logged once), a message without a valid stamp or larger than the slot is dropped and
//! counted, a malformed batch is refused whole before any of it is applied (counted once,
//! logged once), and a local topic that already has a live publisher is never touched.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ringcast::{CreateError, Overflow, Publisher};
use zenoh::bytes::{ZBytes, ZBytesSliceIterator};
use zenoh::sample::{Locality, SampleKind};
use zenoh::Wait;

use crate::announce::Announcement;
use crate::stats::{bump, Counters};
use crate::wire::{Entry, Put, Stamp, WireError};
use crate::Shared;

/// How long a wait for room in the ring lasts before it looks at the stop flag, and the
/// period of the import thread's clock.
const SLICE: Duration = Duration::from_millis(50);
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
const MAX_REMEMBERED: usize = 1024;

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
    publisher: Publisher,
    /// The source sequence we expect next (`None` before the first message).
    expected: Option<u64>,
    /// Withdrawn by its bridge: when we last heard from it.
    withdrawn: Option<Instant>,
    /// Messages in a row behind `expected` (see [`RESYNC_AFTER`]).
    behind: u32,
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
    /// Per sending bridge and incarnation, the first sequence evicted from `pending`
    /// (replay counts from it); at most [`MAX_REMEMBERED`].
    evicted: HashMap<(String, u64), u64>,
    /// Incarnations whose announcement was refused: their messages are not kept.
    refused_ids: Remembered<u64>,
    last_try: Option<Instant>,
    /// A malformed put was logged (once per import).
    said_malformed: bool,
}

pub(crate) fn run(shared: Arc<Shared>, topic: String, stats: Arc<Counters>) {
    let importer = Arc::new(Mutex::new(Importer {
        shared: shared.clone(),
        topic: topic.clone(),
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
    }));
    let session = &shared.session;
    let on_token = importer.clone();
    let tokens = session
        .liveliness()
        .declare_subscriber(shared.keys.tokens_of(&topic))
        .history(true)
        .callback(move |s| {
            let key = s.key_expr().as_str().to_owned();
            let mut imp = lock(&on_token);
            match s.kind() {
                SampleKind::Put => imp.announced(key),
                SampleKind::Delete => imp.withdrawn(&key),
            }
        })
        .wait();
    let on_data = importer.clone();
    let data = session
        .declare_subscriber(shared.keys.data_of(&topic))
        .allowed_origin(Locality::Remote)
        .callback(move |s| {
            let attachment = s.attachment().map(ZBytes::to_bytes);
            let put = Put::decode(attachment.as_deref(), s.payload().len());
            let mut imp = lock(&on_data);
            let sender = imp
                .shared
                .keys
                .data_sender(&imp.topic, s.key_expr().as_str())
                .map(str::to_owned);
            // Re-published right here on Zenoh's receive path, with no thread hop: a
            // full `Block` ring blocks this callback, which is the backpressure.
            match sender {
                Some(zid) => imp.message(&zid, put, s.payload().clone()),
                None => bump(&imp.stats.refused, 1),
            }
        })
        .wait();
    let (tokens, data) = match (tokens, data) {
        (Ok(t), Ok(d)) => (t, d),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(topic, error = %e, "cannot subscribe; not importing");
            return;
        }
    };
    // This thread keeps the clock: retries and the withdrawal grace.
    while !shared.stopping() {
        std::thread::sleep(SLICE);
        lock(&importer).tick();
    }
    // A callback blocked on a full ring sees the stop within a slice and returns.
    let _ = data.undeclare().wait();
    let _ = tokens.undeclare().wait();
    lock(&importer).close("the bridge is stopping");
}

/// The importer's state, whoever holds it (a panic in a callback is a bug; the state
/// is still consistent enough to close the topic, so poisoning is ignored).
fn lock(m: &Mutex<Importer>) -> MutexGuard<'_, Importer> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Importer {
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
            self.close("the exporting bridge withdrew it");
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
        let candidates: Vec<usize> = (0..self.known.len())
            .filter(|&i| {
                let k = &self.known[i];
                !self.finished.contains(&k.a.creation_id) && !self.refused.contains(&k.key)
            })
            .collect();
        for i in candidates {
            let k = &self.known[i];
            let origin = origin(&k.a, &k.zid);
            let cfg =
                k.a.config(&self.shared.prefix, &origin)
                    .mode(self.shared.import_mode);
            match Publisher::create(&self.topic, cfg) {
                Ok(publisher) => {
                    tracing::info!(topic = self.topic, origin, announcement = %k.a, "importing");
                    self.current = Some(Current {
                        key: k.key.clone(),
                        zid: k.zid.clone(),
                        creation_id: k.a.creation_id,
                        publisher,
                        expected: None,
                        withdrawn: None,
                        behind: 0,
                    });
                    self.stats.set_active(true);
                    self.replay();
                    return;
                }
                // A local publisher has the name (a local topic, or another import), or
                // /dev/shm is full or out of descriptors for now: leave it, look again.
                Err(
                    CreateError::AlreadyPublished { .. }
                    | CreateError::NoSpace { .. }
                    | CreateError::Io { .. },
                ) => {
                    if self.refused.insert(format!("busy:{}", k.key)) {
                        bump(&self.stats.refused, 1);
                        tracing::warn!(
                            topic = self.topic,
                            "a local publisher has this topic; not importing over it"
                        );
                    }
                }
                Err(e) => {
                    let (key, id) = (k.key.clone(), k.a.creation_id);
                    self.refused_ids.insert(id);
                    self.refuse(&key, &e);
                }
            }
        }
    }

    fn close(&mut self, why: &str) {
        if let Some(c) = self.current.take() {
            let r = self.stats.report();
            tracing::info!(
                topic = self.topic,
                why,
                published = c.publisher.next_seq(),
                lost_upstream = r.lost,
                refused = r.refused,
                "closing the imported topic"
            );
            drop(c.publisher);
            self.stats.set_active(false);
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
        let evicted = self.evicted.remove(&(zid.clone(), id));
        if let (Some(first), Some(c)) = (evicted, self.current.as_mut()) {
            // Some of its first messages were evicted: count them as lost.
            c.expected = Some(first);
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
                    let first = self
                        .evicted
                        .entry((z, old.stamp.creation_id))
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
        if put.messages() > 0 {
            bump(&self.stats.puts, 1);
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
            if self.one(one, &mut bytes, e.len).is_break() {
                return;
            }
        }
    }

    /// One message (of `len` bytes, next in `bytes`), END or SYNC of the adopted source:
    /// counts the gap before it and re-publishes it with one copy. `Break` when the rest
    /// of a batch must not be applied (the source closed, or we are stopping).
    fn one(&mut self, stamp: Stamp, bytes: &mut Chunks<'_>, len: usize) -> ControlFlow<()> {
        let Some(cur) = self.current.as_mut() else {
            return ControlFlow::Break(());
        };
        if stamp.is_sync() && cur.expected.is_none() {
            // The exporter starts reading here: anything it misses from now on is a gap.
            cur.expected = Some(stamp.seq);
            return ControlFlow::Continue(());
        }
        if stamp.seq == u64::MAX {
            // No source can have sent 2^64 messages: a forged stamp, refused before it
            // can count a loss.
            bump(&self.stats.refused, 1);
            bytes.skip(len);
            return ControlFlow::Continue(());
        }
        let mut expected = cur.expected.unwrap_or(stamp.seq);
        if stamp.seq < expected {
            // A duplicate, or the source is behind a sequence someone forged ahead of it:
            // after a run of these, believe the source again.
            cur.behind += 1;
            if cur.behind < RESYNC_AFTER {
                bytes.skip(len);
                return ControlFlow::Continue(());
            }
            tracing::warn!(
                topic = self.topic,
                expected,
                got = stamp.seq,
                "the source's sequence went back for {RESYNC_AFTER} messages: following it again"
            );
            bump(&self.stats.refused, u64::from(cur.behind - 1));
            expected = stamp.seq;
        }
        cur.behind = 0;
        let gap = stamp.seq - expected;
        if gap > 0 {
            // Before the next commit: subscribers that receive it see the count.
            cur.publisher.count_upstream_loss(gap);
            bump(&self.stats.lost, gap);
        }
        if stamp.is_end() {
            let creation_id = cur.creation_id;
            self.finished.insert(creation_id);
            self.close("the source closed");
            self.adopt();
            return ControlFlow::Break(());
        }
        if stamp.is_sync() {
            // Re-attached (after an eviction or a lost match) at `seq`: the gap is counted.
            cur.expected = Some(stamp.seq);
            return ControlFlow::Continue(());
        }
        cur.expected = Some(stamp.seq + 1); // below u64::MAX: checked above
        if len > cur.publisher.capacity() {
            bump(&self.stats.refused, 1);
            bytes.skip(len);
            return ControlFlow::Continue(());
        }
        // One copy, from Zenoh's buffer into the slot. `Overwrite` never waits for room,
        // and its `send` stores straight into the slot (a loan there goes through a
        // staging buffer); under `Block` the loan is the slot, and we wait for room in
        // slices, so that stopping is never held up.
        let contiguous = match cur.publisher.overflow() {
            Overflow::Overwrite => bytes.contiguous(len),
            Overflow::Block => None,
        };
        if let Some(b) = contiguous {
            if cur.publisher.send(b).is_err() {
                bump(&self.stats.refused, 1);
                return ControlFlow::Continue(());
            }
        } else {
            if cur.publisher.try_loan().is_err() {
                // Full: wait (a dropped loan keeps its claim, and the loan below takes it).
                loop {
                    match cur.publisher.loan_timeout(SLICE) {
                        Ok(_) => break,
                        Err(_) if self.shared.stopping() => return ControlFlow::Break(()),
                        Err(_) => {}
                    }
                }
            }
            let mut loan = cur.publisher.loan();
            bytes.copy(len, |at, chunk| loan.write_at(at, chunk));
            loan.commit(len);
        }
        bump(&self.stats.messages, 1);
        bump(&self.stats.bytes, len as u64);
        ControlFlow::Continue(())
    }
}

/// What a kept put costs in memory: its payload and its index.
fn weight(put: &Put, payload: &ZBytes) -> usize {
    payload.len() + put.batch.len() * std::mem::size_of::<Entry>()
}

/// Reads a payload's messages in order across its slices (one slice, unless Zenoh
/// reassembled the put from fragments). Lengths were checked against the payload's by
/// [`Put::decode`]; past its end it yields nothing rather than fail.
struct Chunks<'a> {
    rest: ZBytesSliceIterator<'a>,
    cur: &'a [u8],
}

impl<'a> Chunks<'a> {
    fn new(rest: ZBytesSliceIterator<'a>) -> Chunks<'a> {
        Chunks { rest, cur: &[] }
    }

    fn fill(&mut self) {
        while self.cur.is_empty() {
            match self.rest.next() {
                Some(s) => self.cur = s,
                None => return,
            }
        }
    }

    /// The next `len` bytes as one slice, if they lie in one (else nothing is taken).
    fn contiguous(&mut self, len: usize) -> Option<&'a [u8]> {
        self.fill();
        if self.cur.len() < len {
            return None;
        }
        let (head, tail) = self.cur.split_at(len);
        self.cur = tail;
        Some(head)
    }

    /// Hands the next `len` bytes to `f`, piece by piece, each with its offset.
    fn copy(&mut self, len: usize, mut f: impl FnMut(usize, &[u8])) {
        let mut at = 0;
        while at < len {
            self.fill();
            if self.cur.is_empty() {
                return;
            }
            let n = (len - at).min(self.cur.len());
            let (head, tail) = self.cur.split_at(n);
            f(at, head);
            self.cur = tail;
            at += n;
        }
    }

    fn skip(&mut self, len: usize) {
        self.copy(len, |_, _| {});
    }
}

/// What `ringcast list` shows as the imported topic's origin: the exporting host and
/// prefix, and the bridge's Zenoh id (cut to fit the segment's field).
fn origin(a: &Announcement, zid: &str) -> String {
    let mut s = format!("{}:{} (bridge {})", a.host, a.prefix, zid);
    let mut end = s.len().min(112);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.retain(|c| !c.is_control());
    s
}

/// A set that remembers at most [`MAX_REMEMBERED`] values, forgetting the oldest.
struct Remembered<T> {
    set: HashSet<T>,
    order: VecDeque<T>,
}

impl<T> Default for Remembered<T> {
    fn default() -> Self {
        Remembered {
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Remembered<T> {
    /// Remembers `v`; `true` if it was new.
    fn insert(&mut self, v: T) -> bool {
        if !self.set.insert(v.clone()) {
            return false;
        }
        self.order.push_back(v);
        if self.order.len() > MAX_REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    fn contains<Q>(&self, v: &Q) -> bool
    where
        T: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.set.contains(v)
    }
}
