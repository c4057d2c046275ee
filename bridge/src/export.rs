//! Export: one thread per local topic, carrying its messages to the network.
//!
//! For each incarnation of the local topic (a live publisher, not itself an import):
//! declare the Zenoh publisher and the liveliness token that announces the topic, then,
//! while a remote subscriber matches, attach as one more subscriber, say where it starts
//! (a SYNC stamp, repeated every second for importers that join later) and put every
//! message with its sequence number. A message alone in the ring when it is read goes at
//! once, in a put of its own; when more wait behind it, the export takes them too, without
//! waiting for any, and puts them all in one batch (bounded by bytes and count; see
//! [`wire`](crate::wire)), which is what carries small messages at a high rate. Each
//! message is copied once, from its slot into the put's buffer, and every slot is released
//! before the put. Under `Block`, Zenoh's blocking congestion control
//! then carries the importer's backpressure back to the source publisher, and the source's
//! stall rules bound it (the bridge is a subscriber like any other, and Zenoh closes a
//! link blocked past its `wait_before_close`). Under `Overwrite` puts may be dropped
//! under congestion, and the bridge itself may be lapped; the importer counts both as
//! gaps in the sequence numbers. When the source closes, an END stamp tells the importer
//! how many messages there were, so a loss at the very end is counted too.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast::{
    AttachError, Overflow, RecvTimeoutError, Start, Subscriber, SubscriberOptions, TryRecvError,
    WaitStrategy,
};
use zenoh::bytes::ZBytes;
use zenoh::qos::CongestionControl;
use zenoh::sample::Locality;
use zenoh::Wait;

use crate::announce::Announcement;
use crate::stats::{bump, Counters};
use crate::wire::{now_ns, BatchIndex, Stamp, END, MAX_BATCH, SYNC};
use crate::Shared;

/// How often an export asks whether a remote subscriber still matches.
const MATCH_CHECK: Duration = Duration::from_millis(10);
/// How often an attached export repeats its SYNC stamp.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How long one receive waits before the thread looks at the stop flag.
const SLICE: Duration = Duration::from_millis(50);
/// At most this long, a stopping bridge goes on forwarding until the ring is empty.
const DRAIN: Duration = Duration::from_secs(1);
/// Pause between looks for a local topic that is absent, dead or imported.
const LOOK_AGAIN: Duration = Duration::from_millis(50);
/// The exporter's `release_batch` (clamped to the source's ring).
const EXPORT_RELEASE_BATCH: u64 = 16;

pub(crate) fn run(shared: Arc<Shared>, topic: String, stats: Arc<Counters>) {
    let mut said_imported = false;
    let mut said_shared = false;
    while !shared.stopping() {
        let info = match ringcast::inspect::inspect(&shared.prefix, &topic) {
            Ok(i) if i.publisher_alive && !i.closed => i,
            _ => {
                std::thread::sleep(LOOK_AGAIN);
                continue;
            }
        };
        if let Some(origin) = &info.origin {
            // Never echo: an imported topic goes back nowhere.
            if !said_imported {
                tracing::info!(
                    topic,
                    origin,
                    "not exporting a topic that is itself imported"
                );
                said_imported = true;
            }
            std::thread::sleep(LOOK_AGAIN * 5);
            continue;
        }
        said_imported = false;
        if info.geometry.max_publishers > 1 {
            // Each publisher of a shared topic numbers its own messages; the wire carries
            // one sequence per topic. Exporting it would make the importer count the
            // other publishers' messages as gaps and duplicates: refuse it, and say so.
            if !said_shared {
                tracing::warn!(
                    topic,
                    max_publishers = info.geometry.max_publishers,
                    "not exporting a topic that several publishers share: the bridge \
                     carries topics with one publisher only"
                );
                said_shared = true;
            }
            std::thread::sleep(LOOK_AGAIN * 5);
            continue;
        }
        said_shared = false;
        let a = Announcement::of(&info.geometry, &shared.host, &shared.prefix);
        if let Err(e) = export_incarnation(&shared, &topic, &a, &stats) {
            tracing::warn!(topic, error = %e, "export failed; trying again");
            std::thread::sleep(LOOK_AGAIN * 5);
        }
        stats.set_active(false);
    }
}

/// Carries one incarnation of the topic until it closes, is re-created, or we stop.
fn export_incarnation(
    shared: &Shared,
    topic: &str,
    a: &Announcement,
    stats: &Counters,
) -> zenoh::Result<()> {
    let session = &shared.session;
    let key = shared.keys.data(topic, &shared.zid);
    let congestion = match a.overflow {
        Overflow::Block => CongestionControl::Block,
        Overflow::Overwrite => CongestionControl::Drop,
    };
    let publisher = session
        .declare_publisher(key.clone())
        .congestion_control(congestion)
        .allowed_destination(Locality::Remote)
        .wait()?;
    let _token = session
        .liveliness()
        .declare_token(shared.keys.token(topic, &shared.zid, a))
        .wait()?;
    tracing::info!(topic, announcement = %a, "exporting");
    let matching = || -> zenoh::Result<bool> { Ok(publisher.matching_status().wait()?.matching()) };
    loop {
        // Read the source only while someone remote listens: a `Block` source is held by
        // nobody else's absence, and an `Overwrite` one costs nothing.
        while !matching()? {
            if shared.stopping() || !source_is(shared, topic, a.creation_id) {
                return Ok(());
            }
            std::thread::sleep(MATCH_CHECK);
        }
        // Sleep at once when the ring is empty: the bridge shares its CPU with the
        // source's process and Zenoh's threads, and spinning would take it from them.
        // Release in runs: a source publisher that sleeps for room is woken once per run,
        // not once per forwarded message (the exporter never publishes into this topic,
        // which is what the option forbids).
        let opts = SubscriberOptions::default()
            .prefix(shared.prefix.as_str())
            .start(Start::Latest)
            .wait_strategy(WaitStrategy::Park)
            .release_batch(EXPORT_RELEASE_BATCH);
        let mut sub = match Subscriber::attach(topic, opts) {
            Ok(s) if s.geometry().creation_id == a.creation_id && s.origin().is_none() => s,
            // Gone or re-created since we looked: announce the new one.
            Ok(_) | Err(AttachError::NotFound { .. }) => return Ok(()),
            // Denied, a full table, no memory: say so, and the caller pauses before
            // trying again (never a loop of announcements).
            Err(e) => return Err(e.into()),
        };
        control(shared, &key, a.creation_id, sub.next_seq(), SYNC)?;
        stats.set_active(true);
        let (mut checked, mut synced) = (Instant::now(), Instant::now());
        let mut drain_until = None;
        // At most one message read from the ring but not put yet (it did not fit the last
        // batch), the start of the next put.
        let mut carry = None;
        let out = Out {
            publisher: &publisher,
            creation_id: a.creation_id,
            max_bytes: shared.max_batch_bytes,
            stats,
            topic,
        };
        loop {
            // Stopping: forward what is already in the ring (bounded), then go.
            if shared.stopping() && drain_until.is_none() {
                drain_until = Some(Instant::now() + DRAIN);
            }
            if drain_until.is_some_and(|t| Instant::now() >= t) {
                if let Some((seq, payload)) = carry.take() {
                    out.alone(seq, payload)?;
                }
                return Ok(());
            }
            let wait = if drain_until.is_some() {
                Duration::ZERO
            } else {
                SLICE
            };
            let mut closed = false;
            // A message taken from the ring that did not fit the last batch goes first.
            let first = match carry.take() {
                Some(c) => Some(c),
                None => match sub.recv_timeout(wait) {
                    // Copy it out and release the slot before anything else: the slot is
                    // never held while a put blocks, so the source's stall timeout (which
                    // spares a subscriber holding a slot) applies.
                    Ok(sample) => Some((sample.seq(), sample.bytes().to_vec())),
                    Err(RecvTimeoutError::Lagged(n)) => {
                        bump(&stats.lost, n);
                        None
                    }
                    Err(RecvTimeoutError::Timeout) if drain_until.is_some() => return Ok(()),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        closed = true;
                        None
                    }
                    // Evicted for stalling the source (a slow link under a stall timeout):
                    // attach again; what we missed shows as a gap at the importer.
                    Err(RecvTimeoutError::Evicted) => {
                        tracing::warn!(topic, "evicted by the source publisher for stalling it");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(topic, error = %e, "skipping a corrupt message");
                        bump(&stats.lost, 1);
                        None
                    }
                },
            };
            if let Some((seq, payload)) = first {
                out.forward(&mut sub, seq, payload, &mut carry)?;
            }
            if closed {
                return end_of_source(shared, &key, a.creation_id, sub.next_seq(), topic);
            }
            if checked.elapsed() >= MATCH_CHECK {
                // A carried message goes before any SYNC (which says we read past it) and
                // before we detach.
                if let Some((seq, payload)) = carry.take() {
                    out.alone(seq, payload)?;
                }
                checked = Instant::now();
                if !matching()? {
                    tracing::info!(topic, "no remote subscriber; detaching from the source");
                    break;
                }
                // Now and then say where we read, for importers that joined since.
                if synced.elapsed() >= SYNC_EVERY {
                    synced = checked;
                    control(shared, &key, a.creation_id, sub.next_seq(), SYNC)?;
                }
            }
        }
        stats.set_active(false);
    }
}

/// Where an attached export puts its messages.
struct Out<'a> {
    publisher: &'a zenoh::pubsub::Publisher<'a>,
    creation_id: u64,
    max_bytes: usize,
    stats: &'a Counters,
    topic: &'a str,
}

impl Out<'_> {
    /// Puts the message `seq` just taken from the ring (its bytes in `payload`): alone if
    /// nothing else waits in the ring or it is large, else in a batch with the messages
    /// that wait behind it, read without waiting, up to `max_bytes` and
    /// [`MAX_BATCH`](crate::wire::MAX_BATCH) messages. Never waits to fill a batch. Each
    /// message is copied once, from its slot into the put's buffer, and every slot is
    /// released before the put (which may block). A message that does not fit is copied
    /// out into `carry`, the start of the next put.
    fn forward(
        &self,
        sub: &mut Subscriber,
        seq: u64,
        mut payload: Vec<u8>,
        carry: &mut Option<(u64, Vec<u8>)>,
    ) -> zenoh::Result<()> {
        if payload.len() >= self.max_bytes || !sub.has_news() {
            return self.alone(seq, payload);
        }
        let mut index = BatchIndex::new();
        index.push(seq, payload.len());
        payload.reserve(self.max_bytes - payload.len());
        let max = self.max_bytes;
        let drained = sub.drain_while(MAX_BATCH - 1, |m| {
            let bytes = m.bytes();
            if payload.len() + bytes.len() > max {
                let mut next = Vec::with_capacity(max.max(bytes.len()));
                next.extend_from_slice(bytes);
                *carry = Some((m.seq(), next));
                return ControlFlow::Break(());
            }
            payload.extend_from_slice(bytes);
            index.push(m.seq(), bytes.len());
            if payload.len() < max {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        });
        // `Disconnected` and `Evicted` are reported again by the next receive.
        match drained.stopped {
            Some(TryRecvError::Lagged(n)) => bump(&self.stats.lost, n),
            Some(e @ TryRecvError::Corrupt { .. }) => {
                tracing::warn!(topic = self.topic, error = %e, "skipping a corrupt message");
                bump(&self.stats.lost, 1);
            }
            _ => {}
        }
        match index.count() {
            1 => self.alone(seq, payload),
            count => {
                let attachment = index.finish(now_ns(), self.creation_id);
                self.put(payload, attachment, count)
            }
        }
    }

    /// Puts message `seq` alone (a single message's stamp).
    fn alone(&self, seq: u64, payload: Vec<u8>) -> zenoh::Result<()> {
        let stamp = Stamp {
            seq,
            publish_ns: now_ns(),
            creation_id: self.creation_id,
            flags: 0,
        };
        self.put(payload, stamp.encode().to_vec(), 1)
    }

    fn put(&self, payload: Vec<u8>, attachment: Vec<u8>, messages: usize) -> zenoh::Result<()> {
        let len = payload.len() as u64;
        // Both buffers are handed over, not copied again.
        self.publisher
            .put(ZBytes::from(payload))
            .attachment(ZBytes::from(attachment))
            .wait()?;
        bump(&self.stats.messages, messages as u64);
        bump(&self.stats.bytes, len);
        bump(&self.stats.puts, 1);
        Ok(())
    }
}

/// Tells the importers that the source closed after `published` messages. Reliably,
/// even for an `Overwrite` topic: it is the importer's last count.
fn end_of_source(
    shared: &Shared,
    key: &str,
    creation_id: u64,
    published: u64,
    topic: &str,
) -> zenoh::Result<()> {
    control(shared, key, creation_id, published, END)?;
    tracing::info!(topic, published, "source closed");
    Ok(())
}

/// Puts a control stamp (`END` or `SYNC`, no payload), reliably.
fn control(
    shared: &Shared,
    key: &str,
    creation_id: u64,
    seq: u64,
    flags: u64,
) -> zenoh::Result<()> {
    let stamp = Stamp {
        seq,
        publish_ns: now_ns(),
        creation_id,
        flags,
    };
    shared
        .session
        .put(key, Vec::<u8>::new())
        .attachment(&stamp.encode()[..])
        .congestion_control(CongestionControl::Block)
        .allowed_destination(Locality::Remote)
        .wait()
}

/// Whether `topic` is still the live incarnation `creation_id`.
fn source_is(shared: &Shared, topic: &str, creation_id: u64) -> bool {
    matches!(
        ringcast::inspect::inspect(&shared.prefix, topic),
        Ok(i) if i.publisher_alive && !i.closed && i.geometry.creation_id == creation_id
    )
}
