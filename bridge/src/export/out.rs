//! What an attached export puts: messages (alone or in batches), and the control stamps
//! (SYNC, LEAVE, END) that tell importers where the export reads and what ended.

use std::ops::ControlFlow;

use ringcast::{PublisherId, Subscriber, TryRecvError};
use zenoh::bytes::ZBytes;
use zenoh::qos::CongestionControl;
use zenoh::sample::Locality;
use zenoh::Wait;

use crate::stats::{bump, Counters};
use crate::wire::{now_ns, BatchIndex, LaneTag, Stamp, DIED, END, LEAVE, MAX_BATCH, SYNC};
use crate::Shared;

/// A message read from the ring and not put yet: its sequence (in its lane), its lane
/// and writer (a shared topic's) and its bytes.
pub(super) type Msg = (u64, Option<LaneTag>, Vec<u8>);

/// A shared topic's lanes as the exporter told the importers of them.
pub(super) struct Lanes {
    /// Per lane, the writer whose messages (or SYNC) were put last, until its LEAVE; empty
    /// for a topic with one publisher.
    pub(super) writers: Vec<Option<u32>>,
    /// Per lane, the sequence at which the importers were told of its writer (its SYNC
    /// or first message): an importer that has not heard of the lane yet is credited a
    /// window from there (see [`crate::credit`]).
    pub(super) starts: Vec<u64>,
}

impl Lanes {
    /// The lanes of a topic of `max_publishers` (none kept for an exclusive topic).
    pub(super) fn new(max_publishers: u64) -> Lanes {
        let n = match max_publishers {
            1 => 0,
            n => n as usize,
        };
        Lanes {
            writers: vec![None; n],
            starts: vec![0; n],
        }
    }

    pub(super) fn is_shared(&self) -> bool {
        !self.writers.is_empty()
    }

    /// How soon an attached export of these lanes looks at them again.
    pub(super) fn timer(&self) -> std::time::Duration {
        if self.is_shared() {
            super::topic::LANE_CHECK
        } else {
            super::topic::NO_TIMER
        }
    }

    /// What a put of a message from `from` carries: its lane and writer on a shared topic.
    pub(super) fn tag(&self, from: PublisherId) -> Option<LaneTag> {
        self.is_shared().then_some(LaneTag {
            lane: from.lane,
            writer: from.writer,
        })
    }

    /// The lane to count a loss in (`None` on a topic with one publisher).
    pub(super) fn lane_of(&self, lane: u32) -> Option<u32> {
        self.is_shared().then_some(lane)
    }

    /// Message `seq` of `tag` is being put: its writer is the one the importers know.
    pub(super) fn saw(&mut self, seq: u64, tag: Option<LaneTag>) {
        if let Some(t) = tag {
            self.told(t.lane as usize, t.writer, seq);
        }
    }

    /// The importers are told (at `seq`) that `writer` writes lane `l`.
    fn told(&mut self, l: usize, writer: u32, seq: u64) {
        if let Some(w) = self.writers.get_mut(l) {
            if w.is_none() {
                self.starts[l] = seq;
            }
            *w = Some(writer);
        }
    }

    /// Says where we read from (`all`: at attach and for a new importer), or names the
    /// lanes whose publisher the importers do not know yet (`!all`: the lane check). One
    /// SYNC for a topic with one publisher; for a shared one, one per lane that has a live
    /// publisher whose messages we have all read (a lane with unread messages of another
    /// writer waits for them: its SYNC would name the new writer before the old one's
    /// last messages), and with `all` one per lane whose told writer is gone but has
    /// messages we have not read (that writer's). The importer joins a local publisher for each lane it hears of, so
    /// a publisher that has sent nothing yet has its lane there too, and the local topic
    /// lives while any remote publisher does.
    pub(super) fn sync(
        &mut self,
        ctl: &Control<'_>,
        sub: &Subscriber,
        all: bool,
    ) -> zenoh::Result<()> {
        if !self.is_shared() {
            return if all {
                ctl.put(sub.next_seq(), SYNC, None)
            } else {
                Ok(())
            };
        }
        for l in 0..self.writers.len() as u32 {
            let live = sub.lane_publisher(l);
            let told = self.writers[l as usize];
            let left_unread = |w: u32| live.map(|id| id.writer) != Some(w) && sub.has_news_in(l);
            if let Some(w) = told.filter(|&w| all && left_unread(w)) {
                // A told writer that left (or was taken over) with messages we have not
                // read: name it for a new importer, which would otherwise never hear of
                // the lane (and whose credit would then hold it for good). Its LEAVE
                // follows its last message.
                let tag = LaneTag { lane: l, writer: w };
                ctl.put(sub.next_seq_in(l).unwrap_or(0), SYNC, Some(tag))?;
                continue;
            }
            let Some(id) = live else {
                continue;
            };
            let known = told == Some(id.writer);
            if (known && !all) || (!known && sub.has_news_in(l)) {
                continue;
            }
            let tag = LaneTag {
                lane: l,
                writer: id.writer,
            };
            let seq = sub.next_seq_in(l).unwrap_or(0);
            ctl.put(seq, SYNC, Some(tag))?;
            self.told(l as usize, id.writer, seq);
        }
        Ok(())
    }

    /// Puts a LEAVE for each lane whose writer the importers know but which no longer
    /// writes it (it left or died, or another took the lane over) once we have read all
    /// of the lane's messages (`all`: the topic ended, so every known lane ends).
    pub(super) fn leave_gone(
        &mut self,
        ctl: &Control<'_>,
        sub: &Subscriber,
        all: bool,
    ) -> zenoh::Result<()> {
        for l in 0..self.writers.len() as u32 {
            let Some(w) = self.writers[l as usize] else {
                continue;
            };
            let gone = all
                || (sub.lane_publisher(l).map(|id| id.writer) != Some(w) && !sub.has_news_in(l));
            if gone {
                let tag = LaneTag { lane: l, writer: w };
                ctl.put(sub.next_seq_in(l).unwrap_or(0), LEAVE, Some(tag))?;
                self.writers[l as usize] = None;
            }
        }
        Ok(())
    }
}

/// Where an attached export puts its messages.
pub(super) struct Out<'a> {
    pub(super) publisher: &'a zenoh::pubsub::Publisher<'a>,
    pub(super) creation_id: u64,
    pub(super) max_bytes: usize,
    pub(super) stats: &'a Counters,
    pub(super) topic: &'a str,
}

impl Out<'_> {
    /// Puts the message just taken from the ring: alone if nothing else waits in the ring
    /// or it is large, else in a batch with the messages that wait behind it, read
    /// without waiting, up to `max_bytes` and [`MAX_BATCH`](crate::wire::MAX_BATCH)
    /// messages, all of one lane and writer (a batch has one lane's stamp). Never waits
    /// to fill a batch. Each message is copied once, from its slot into the put's buffer,
    /// and every slot is released before the put (which may block). A message that does
    /// not fit (or is another lane's) is copied out into `carry`, the start of the next
    /// put. At most `more` messages are read after the first (the importers' credit).
    pub(super) fn forward(
        &self,
        sub: &mut Subscriber,
        lanes: &mut Lanes,
        (seq, tag, mut payload): Msg,
        carry: &mut Option<Msg>,
        more: usize,
    ) -> zenoh::Result<()> {
        if payload.len() >= self.max_bytes || more == 0 || !sub.has_news() {
            return self.alone((seq, tag, payload));
        }
        let mut index = BatchIndex::new(tag);
        index.push(seq, payload.len());
        payload.reserve(self.max_bytes - payload.len());
        let max = self.max_bytes;
        let drained = sub.drain_while((MAX_BATCH - 1).min(more), |m| {
            let bytes = m.bytes();
            let its = lanes.tag(m.publisher());
            if its != tag || payload.len() + bytes.len() > max {
                let mut next = Vec::with_capacity(max.max(bytes.len()));
                next.extend_from_slice(bytes);
                *carry = Some((m.seq(), its, next));
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
        if let Some(c) = carry {
            lanes.saw(c.0, c.1);
        }
        // `Disconnected` and `Evicted` are reported again by the next receive.
        match drained.stopped {
            Some(TryRecvError::Lagged(n)) => self.stats.lose(lanes.lane_of(sub.lagged_lane()), n),
            Some(e @ TryRecvError::Corrupt { .. }) => {
                tracing::warn!(topic = self.topic, error = %e, "skipping a corrupt message");
                bump(&self.stats.lost, 1);
            }
            _ => {}
        }
        match index.count() {
            1 => self.alone((seq, tag, payload)),
            count => {
                let attachment = index.finish(now_ns(), self.creation_id);
                self.put(payload, attachment, count)
            }
        }
    }

    /// Puts message `seq` alone (a single message's stamp).
    pub(super) fn alone(&self, (seq, lane, payload): Msg) -> zenoh::Result<()> {
        let stamp = Stamp {
            seq,
            publish_ns: now_ns(),
            creation_id: self.creation_id,
            flags: 0,
            lane,
        };
        self.put(payload, stamp.encode(), 1)
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

/// Tells the importers that the source closed: after `published` messages (a topic with
/// one publisher; a shared topic's lanes were ended by their LEAVEs, and its END says 0).
/// Reliably, even for an `Overwrite` topic: it is the importer's last count.
pub(super) fn end_of_source(
    ctl: &Control<'_>,
    sub: &Subscriber,
    shared: bool,
    topic: &str,
) -> zenoh::Result<()> {
    let published = if shared { 0 } else { sub.next_seq() };
    // A source that died (not closed) ends the imports the same way.
    let died = !sub.closed_by_publisher();
    ctl.put(published, if died { END | DIED } else { END }, None)?;
    tracing::info!(topic, published, died, "source ended");
    Ok(())
}

/// Where an export puts its control stamps.
pub(super) struct Control<'a> {
    pub(super) shared: &'a Shared,
    pub(super) key: &'a str,
    pub(super) creation_id: u64,
}

impl Control<'_> {
    /// Puts a control stamp (`END`, `SYNC` or `LEAVE`, no payload), reliably.
    fn put(&self, seq: u64, flags: u64, lane: Option<LaneTag>) -> zenoh::Result<()> {
        let stamp = Stamp {
            seq,
            publish_ns: now_ns(),
            creation_id: self.creation_id,
            flags,
            lane,
        };
        self.shared
            .session
            .put(self.key, Vec::<u8>::new())
            .attachment(stamp.encode())
            .congestion_control(CongestionControl::Block)
            .allowed_destination(Locality::Remote)
            .wait()
    }
}

/// Whether `topic` is still the live incarnation `creation_id`.
pub(super) fn source_is(shared: &Shared, topic: &str, creation_id: u64) -> bool {
    matches!(
        ringcast::inspect::inspect(&shared.prefix, topic),
        Ok(i) if i.publisher_alive && !i.closed && i.geometry.creation_id == creation_id
    )
}
