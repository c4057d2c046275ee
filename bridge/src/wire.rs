//! What every bridged put carries: an attachment, little-endian, and the payload.
//!
//! A single message (and every SYNC and END) has the 32-byte *stamp*:
//!
//! ```text
//! 0   seq            the message's sequence number in the source topic
//! 8   publish_ns     CLOCK_REALTIME when the exporter took it from the ring (ringcast
//!                    slots carry no timestamp of their own)
//! 16  creation_id    the source topic's incarnation (see the announcement)
//! 24  flags          END: the source closed; `seq` is then how many it published
//!                    (with DIED: its last publisher died instead of closing it)
//!                    SYNC: the exporter attached at `seq` (no payload), so a loss
//!                    before its first message is counted too
//!                    BATCH: the put carries several messages (below)
//! ```
//!
//! and its payload is the message's bytes, unchanged. This is the format of bridges
//! before batches, kept as it was: a message that is alone in the exporter's ring when it
//! is read goes out like this, at once.
//!
//! A *batch* carries several messages in one put. Its attachment is the stamp (flags
//! exactly `BATCH`, `seq` the first message's) followed by an index:
//!
//! ```text
//! 32  count          u32: messages in the batch, 1..=MAX_BATCH
//! 36  reserved       u32: 0
//! 40  count entries of 12 bytes, one per message in order:
//!       0  seq       u64: its sequence number in the source
//!       8  len       u32: its length in bytes
//! ```
//!
//! and its payload is the messages' bytes back to back, in index order, nothing else.
//! Sequence numbers rise strictly inside a batch (a gap is a loss the exporter saw: it
//! was lapped); the first equals the stamp's. An importer checks the whole batch before
//! it applies any of it ([`Put::decode`]): an attachment whose length is not 32 or
//! `40 + 12 * count`, a count of 0 or over [`MAX_BATCH`], a reserved word not 0, lengths
//! that do not add up to the payload's, a sequence that does not rise or is `u64::MAX`,
//! or `BATCH` with `END` or `SYNC`, and the put is refused whole. An importer from before
//! batches refuses every batch (its attachment is not 32 bytes) and counts the messages
//! it carried as lost when the next single message arrives: upgrade importers first.
//!
//! A topic that several publishers share (lanes) has one sequence per lane, so each of its
//! puts says whose messages it carries: flag [`LANE`] (8) added to the stamp's, and 8
//! more bytes after the 32, making a 40-byte stamp (a batch's index then starts at 40):
//!
//! ```text
//! 32  lane           u32: the source lane
//! 36  writer         u32: the id of the lane's publisher (its generation: a publisher
//!                    that takes the lane over has a new one)
//! ```
//!
//! `seq` is then the lane's sequence (it goes on across a takeover). A batch carries
//! one lane's messages from one writer (the exporter ends a batch where the lane or the
//! writer changes). With `LANE`, the kinds are a message, `SYNC` (where the exporter reads
//! that lane from; `writer` its live publisher), `BATCH` and [`LEAVE`] (16: the lane's
//! publisher `writer` left or died after `seq` messages, all forwarded), and never
//! `END` (a shared topic's END is lane-less: all its publishers are gone); `LEAVE`
//! never comes without `LANE`. Exclusive topics never use `LANE`: their puts are the
//! bytes above, unchanged. An importer checks the lane against the topic's lanes
//! ([`Put::check_lanes`]).

/// Bytes of a stamp (the whole attachment of a single message, SYNC or END).
pub const LEN: usize = 32;
/// Bytes of a stamp with [`LANE`]: [`LEN`], then the lane and the writer (u32 each).
pub const LANE_LEN: usize = LEN + 8;
/// Flag: the source topic closed; `seq` holds its final message count and the payload is
/// empty. Sent reliably, so the importer can count a loss at the very end too.
pub const END: u64 = 1;
/// Flag: the exporter (re-)attached to the source and reads from `seq` on; the payload
/// is empty. Sent reliably, before the first message it forwards.
pub const SYNC: u64 = 2;
/// Flag: a batch; the attachment goes on with the index (see the module's docs).
pub const BATCH: u64 = 4;
/// Flag: the stamp carries a lane and a writer (a shared topic); see the module's docs.
/// Set on the wire from [`Stamp::lane`], never in [`Stamp::flags`].
pub const LANE: u64 = 8;
/// Flag (with [`LANE`] only): the lane's publisher `writer` left or died after `seq`
/// messages; the payload is empty. Sent reliably, after the lane's last message.
pub const LEAVE: u64 = 16;
/// Flag (with [`END`] only): the source did not close but died (its last publisher was
/// killed or crashed): the importer's local topic ends the same way, as a dead
/// publisher's, so its subscribers can tell (`Subscriber::closed_by_publisher`).
pub const DIED: u64 = 32;
/// Bytes of a batch's index header (count, reserved) after the stamp.
pub const INDEX_HEADER: usize = 8;
/// Bytes of one index entry (seq, len).
pub const ENTRY: usize = 12;
/// Most messages in one batch: an exporter sends no more, an importer refuses more.
pub const MAX_BATCH: usize = 1024;

/// Whose messages a put of a shared topic carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LaneTag {
    /// The source lane (`0..max_publishers`).
    pub lane: u32,
    /// The id of the lane's publisher (the low 32 bits of its generation).
    pub writer: u32,
}

/// One message's attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Sequence number in the source (for an END, the count published; for a batch, its
    /// first message's).
    pub seq: u64,
    /// Wall-clock nanoseconds at export.
    pub publish_ns: u64,
    /// The source topic's incarnation.
    pub creation_id: u64,
    /// [`END`], [`SYNC`], [`BATCH`], [`LEAVE`] or 0 (never [`LANE`]: see `lane`).
    pub flags: u64,
    /// A shared topic's lane and writer (encoded with [`LANE`]); `None` on a topic with
    /// one publisher.
    pub lane: Option<LaneTag>,
}

impl Stamp {
    /// The stamp's bytes: 32, or 40 with a lane.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.encoded_len()];
        self.write(&mut out);
        out
    }

    /// Bytes of the encoded stamp.
    pub fn encoded_len(&self) -> usize {
        match self.lane {
            None => LEN,
            Some(_) => LANE_LEN,
        }
    }

    /// Writes the stamp into `out`, which is [`encoded_len`](Self::encoded_len) bytes long.
    fn write(&self, out: &mut [u8]) {
        let flags = self.flags | self.lane.map_or(0, |_| LANE);
        for (i, w) in [self.seq, self.publish_ns, self.creation_id, flags]
            .into_iter()
            .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        if let Some(t) = self.lane {
            out[LEN..LEN + 4].copy_from_slice(&t.lane.to_le_bytes());
            out[LEN + 4..LANE_LEN].copy_from_slice(&t.writer.to_le_bytes());
        }
    }

    /// Parses a single message's attachment (or a SYNC, END or LEAVE); `None` unless it
    /// is exactly a stamp (32 bytes, or 40 with a lane) with a known kind, and not a
    /// batch's.
    pub fn decode(bytes: &[u8]) -> Option<Stamp> {
        let s = Stamp::decode_any(bytes)?;
        (s.flags & BATCH == 0 && s.encoded_len() == bytes.len()).then_some(s)
    }

    /// The stamp at the start of any put's attachment, a batch's too (the bytes after it
    /// are not looked at).
    fn decode_any(bytes: &[u8]) -> Option<Stamp> {
        let head: &[u8; LEN] = bytes.get(..LEN)?.try_into().ok()?;
        let flags = u64_at(head, 24);
        let lane = if flags & LANE != 0 {
            let tail = bytes.get(LEN..LANE_LEN)?;
            Some(LaneTag {
                lane: u32_at(tail, 0),
                writer: u32_at(tail, 4),
            })
        } else {
            None
        };
        let s = Stamp {
            seq: u64_at(head, 0),
            publish_ns: u64_at(head, 8),
            creation_id: u64_at(head, 16),
            flags: flags & !LANE,
            lane,
        };
        // Exactly one kind; END only without a lane, LEAVE only with one.
        let one = match lane {
            None => [0, END, END | DIED, SYNC, BATCH].contains(&s.flags),
            Some(_) => [0, SYNC, BATCH, LEAVE].contains(&s.flags),
        };
        one.then_some(s)
    }

    /// Whether this marks the end of the source.
    pub fn is_end(&self) -> bool {
        self.flags & END != 0
    }

    /// Whether this END says the source died instead of closing.
    pub fn is_died(&self) -> bool {
        self.flags & DIED != 0
    }

    /// Whether this says where the exporter starts reading.
    pub fn is_sync(&self) -> bool {
        self.flags & SYNC != 0
    }

    /// Whether this is a batch's stamp.
    pub fn is_batch(&self) -> bool {
        self.flags & BATCH != 0
    }

    /// Whether this says that a lane's publisher is gone.
    pub fn is_leave(&self) -> bool {
        self.flags & LEAVE != 0
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

/// One message of a batch: where it is in the source, and how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its sequence number in the source.
    pub seq: u64,
    /// Its length in bytes (its bytes follow the previous message's in the payload).
    pub len: usize,
}

/// A put as received, checked: its stamp and, for a batch, its messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Put {
    /// The stamp (a batch's: the first message's sequence, flags [`BATCH`]).
    pub stamp: Stamp,
    /// A batch's messages, in order (empty for a single message, a SYNC or an END).
    pub batch: Vec<Entry>,
}

/// Why a put was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// No attachment.
    #[error("no attachment")]
    Missing,
    /// Not a 32-byte stamp with one known flag, or a batch's index where none belongs.
    #[error("malformed stamp")]
    Stamp,
    /// The index is not a header and whole entries.
    #[error("a batch index of {0} bytes")]
    IndexLength(usize),
    /// The count is 0, over [`MAX_BATCH`], or not the number of entries.
    #[error("a batch that says {said} messages and indexes {found}")]
    Count {
        /// What the header says.
        said: u32,
        /// Entries in the index.
        found: usize,
    },
    /// The reserved word is not 0.
    #[error("a batch index with a non-zero reserved word")]
    Reserved,
    /// The lengths do not add up to the payload's.
    #[error("a batch whose lengths add up to {sum} bytes, of a {payload}-byte payload")]
    Lengths {
        /// The sum of the entries' lengths (saturated).
        sum: usize,
        /// The payload's length.
        payload: usize,
    },
    /// Entry `at`'s sequence is not above the one before it (or the first is not the
    /// stamp's), or is `u64::MAX`.
    #[error("a batch whose sequence does not rise at message {at}")]
    Order {
        /// The entry's index.
        at: usize,
    },
    /// A put of a shared topic without a lane, one with a lane the topic does not have,
    /// or a put of a topic with one publisher with a lane.
    #[error("a put for lane {lane:?} of a topic with {lanes} lane(s)")]
    Lane {
        /// The lane the put names (`None`: none).
        lane: Option<u32>,
        /// The topic's lanes (its `max_publishers`).
        lanes: u64,
    },
}

impl Put {
    /// Checks a put's attachment against its payload's length; nothing of a malformed
    /// put is applied.
    pub fn decode(attachment: Option<&[u8]>, payload_len: usize) -> Result<Put, WireError> {
        let att = attachment.ok_or(WireError::Missing)?;
        let stamp = Stamp::decode_any(att).ok_or(WireError::Stamp)?;
        let head = stamp.encoded_len();
        if !stamp.is_batch() {
            return match att.len() == head {
                true => Ok(Put {
                    stamp,
                    batch: Vec::new(),
                }),
                false => Err(WireError::Stamp),
            };
        }
        // `decode_any` read `head` bytes, so the attachment has them.
        let index = att.get(head..).ok_or(WireError::Stamp)?;
        if index.len() < INDEX_HEADER || !(index.len() - INDEX_HEADER).is_multiple_of(ENTRY) {
            return Err(WireError::IndexLength(index.len()));
        }
        let said = u32_at(index, 0);
        let found = (index.len() - INDEX_HEADER) / ENTRY;
        if said == 0 || said as usize > MAX_BATCH || said as usize != found {
            return Err(WireError::Count { said, found });
        }
        if u32_at(index, 4) != 0 {
            return Err(WireError::Reserved);
        }
        let mut batch: Vec<Entry> = Vec::with_capacity(found);
        let mut sum = 0usize;
        for (at, e) in index[INDEX_HEADER..].chunks_exact(ENTRY).enumerate() {
            let entry = Entry {
                seq: u64_at(e, 0),
                len: u32_at(e, 8) as usize,
            };
            let rises = match batch.last() {
                None => entry.seq == stamp.seq,
                Some(prev) => entry.seq > prev.seq,
            };
            if !rises || entry.seq == u64::MAX {
                return Err(WireError::Order { at });
            }
            sum = sum.saturating_add(entry.len);
            batch.push(entry);
        }
        if sum != payload_len {
            return Err(WireError::Lengths {
                sum,
                payload: payload_len,
            });
        }
        Ok(Put { stamp, batch })
    }

    /// Checks the put's lane against a topic of `lanes` lanes (its `max_publishers`): a
    /// shared topic's puts name one of its lanes, an exclusive topic's none (an END, which
    /// is about the whole topic, never does).
    pub fn check_lanes(&self, lanes: u64) -> Result<(), WireError> {
        let ok = match self.stamp.lane {
            None => lanes == 1 || self.stamp.is_end(),
            Some(t) => lanes > 1 && u64::from(t.lane) < lanes,
        };
        match ok {
            true => Ok(()),
            false => Err(WireError::Lane {
                lane: self.stamp.lane.map(|t| t.lane),
                lanes,
            }),
        }
    }

    /// Messages this put carries (0 for a SYNC, an END or a LEAVE).
    pub fn messages(&self) -> usize {
        match (self.batch.len(), self.stamp.flags) {
            (0, 0) => 1,
            (0, _) => 0,
            (n, _) => n,
        }
    }
}

/// A batch's attachment as the exporter builds it, one message at a time: room for the
/// stamp and the header first, then the entries, filled in by [`finish`](Self::finish).
#[derive(Debug)]
pub struct BatchIndex {
    bytes: Vec<u8>,
    count: usize,
    first: u64,
    lane: Option<LaneTag>,
}

impl Default for BatchIndex {
    fn default() -> Self {
        BatchIndex::new(None)
    }
}

impl BatchIndex {
    /// An empty index, for messages of `lane` (a shared topic's; `None` for a topic with
    /// one publisher).
    pub fn new(lane: Option<LaneTag>) -> BatchIndex {
        let head = match lane {
            None => LEN,
            Some(_) => LANE_LEN,
        };
        BatchIndex {
            bytes: vec![0; head + INDEX_HEADER],
            count: 0,
            first: 0,
            lane,
        }
    }

    /// Adds a message (in order; at most [`MAX_BATCH`], of at most `u32::MAX` bytes).
    pub fn push(&mut self, seq: u64, len: usize) {
        debug_assert!(self.count < MAX_BATCH && u32::try_from(len).is_ok());
        if self.count == 0 {
            self.first = seq;
        }
        self.bytes.extend_from_slice(&seq.to_le_bytes());
        self.bytes.extend_from_slice(&(len as u32).to_le_bytes());
        self.count += 1;
    }

    /// Messages indexed so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The attachment: the stamp (`BATCH`, the first message's sequence), the header and
    /// the entries.
    pub fn finish(mut self, publish_ns: u64, creation_id: u64) -> Vec<u8> {
        let stamp = Stamp {
            seq: self.first,
            publish_ns,
            creation_id,
            flags: BATCH,
            lane: self.lane,
        };
        let head = stamp.encoded_len();
        stamp.write(&mut self.bytes[..head]);
        self.bytes[head..head + 4].copy_from_slice(&(self.count as u32).to_le_bytes());
        self.bytes
    }
}

/// Wall-clock nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_bad_ones_are_refused() {
        let s = Stamp {
            seq: 7,
            publish_ns: 1 << 60,
            creation_id: u64::MAX,
            flags: END,
            lane: None,
        };
        assert_eq!(Stamp::decode(&s.encode()), Some(s));
        assert!(Stamp::decode(&s.encode()[..31]).is_none());
        let mut bad = s.encode();
        bad[24] = 8;
        assert!(Stamp::decode(&bad).is_none());
        bad[24] = 3;
        assert!(Stamp::decode(&bad).is_none());
        bad[24] = 2;
        assert!(Stamp::decode(&bad).is_some_and(|s| s.is_sync() && !s.is_end()));
        // A batch's stamp is not a single message's.
        bad[24] = 4;
        assert!(Stamp::decode(&bad).is_none());
        assert!(Stamp::decode(&[]).is_none());
    }

    /// A batch's attachment with the stamp's sequence `first` (the builder takes the
    /// first entry's), built by hand past [`MAX_BATCH`] entries.
    fn index(first: u64, entries: &[(u64, usize)]) -> Vec<u8> {
        let mut att = if entries.len() <= MAX_BATCH {
            let mut ix = BatchIndex::new(None);
            for &(seq, len) in entries {
                ix.push(seq, len);
            }
            ix.finish(5, 42)
        } else {
            let mut att = Stamp {
                seq: first,
                publish_ns: 5,
                creation_id: 42,
                flags: BATCH,
                lane: None,
            }
            .encode();
            att.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            att.extend_from_slice(&[0; 4]);
            for &(seq, len) in entries {
                att.extend_from_slice(&seq.to_le_bytes());
                att.extend_from_slice(&(len as u32).to_le_bytes());
            }
            att
        };
        att[..8].copy_from_slice(&first.to_le_bytes());
        att
    }

    #[test]
    fn batches_round_trip() {
        let att = index(10, &[(10, 3), (11, 0), (15, 64)]);
        assert_eq!(att.len(), LEN + INDEX_HEADER + 3 * ENTRY);
        let put = Put::decode(Some(&att), 67).unwrap();
        assert_eq!(put.stamp.seq, 10);
        assert_eq!(put.stamp.creation_id, 42);
        assert!(put.stamp.is_batch() && !put.stamp.is_end() && !put.stamp.is_sync());
        assert_eq!(
            put.batch,
            [
                Entry { seq: 10, len: 3 },
                Entry { seq: 11, len: 0 },
                Entry { seq: 15, len: 64 }
            ]
        );
        assert_eq!(put.messages(), 3);
        let single = Stamp {
            seq: 3,
            publish_ns: 0,
            creation_id: 1,
            flags: 0,
            lane: None,
        };
        let put = Put::decode(Some(&single.encode()), 99).unwrap();
        assert_eq!((put.stamp, put.batch.len(), put.messages()), (single, 0, 1));
        let sync = Stamp {
            flags: SYNC,
            ..single
        };
        assert_eq!(Put::decode(Some(&sync.encode()), 0).unwrap().messages(), 0);
    }

    #[test]
    fn malformed_batches_are_refused_whole() {
        let good = index(1, &[(1, 4), (2, 4)]);
        assert!(Put::decode(Some(&good), 8).is_ok());
        assert_eq!(Put::decode(None, 8), Err(WireError::Missing));
        // Lengths that overrun or fall short of the payload.
        assert!(matches!(
            Put::decode(Some(&good), 7),
            Err(WireError::Lengths { sum: 8, payload: 7 })
        ));
        assert!(matches!(
            Put::decode(Some(&good), 9),
            Err(WireError::Lengths { .. })
        ));
        // A length that would wrap a sum.
        let huge = index(1, &[(1, u32::MAX as usize), (2, u32::MAX as usize)]);
        assert!(matches!(
            Put::decode(Some(&huge), 8),
            Err(WireError::Lengths { .. })
        ));
        // Counts that lie, are zero or are over the bound.
        for said in [0u32, 1, 3, u32::MAX] {
            let mut bad = good.clone();
            bad[LEN..LEN + 4].copy_from_slice(&said.to_le_bytes());
            assert!(
                matches!(Put::decode(Some(&bad), 8), Err(WireError::Count { .. })),
                "{said}"
            );
        }
        let many: Vec<(u64, usize)> = (0..=MAX_BATCH as u64).map(|s| (s, 0)).collect();
        assert!(matches!(
            Put::decode(Some(&index(0, &many)), 0),
            Err(WireError::Count { .. })
        ));
        assert!(Put::decode(Some(&index(0, &many[..MAX_BATCH])), 0).is_ok());
        // A torn index, an index without its header, a reserved word.
        assert!(matches!(
            Put::decode(Some(&good[..good.len() - 1]), 8),
            Err(WireError::IndexLength(_))
        ));
        assert!(matches!(
            Put::decode(Some(&good[..LEN + 4]), 0),
            Err(WireError::IndexLength(4))
        ));
        let mut bad = good.clone();
        bad[LEN + 4] = 1;
        assert_eq!(Put::decode(Some(&bad), 8), Err(WireError::Reserved));
        // Sequences that go back, repeat, skip the stamp's or reach u64::MAX.
        for (first, entries) in [
            (5, vec![(5, 4), (4, 4)]),
            (5, vec![(5, 4), (5, 4)]),
            (4, vec![(5, 4), (6, 4)]),
            (u64::MAX - 1, vec![(u64::MAX - 1, 4), (u64::MAX, 4)]),
        ] {
            assert!(
                matches!(
                    Put::decode(Some(&index(first, &entries)), 8),
                    Err(WireError::Order { .. })
                ),
                "{entries:?}"
            );
        }
        // A batch's flag with END or SYNC; a batch stamp with no index; an index after a
        // single message's stamp.
        for flags in [BATCH | END, BATCH | SYNC] {
            let mut bad = good.clone();
            bad[24..32].copy_from_slice(&flags.to_le_bytes());
            assert_eq!(Put::decode(Some(&bad), 8), Err(WireError::Stamp));
        }
        assert!(matches!(
            Put::decode(Some(&good[..LEN]), 8),
            Err(WireError::IndexLength(0))
        ));
        let mut bad = good.clone();
        bad[24..32].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(Put::decode(Some(&bad), 8), Err(WireError::Stamp));
        assert_eq!(Put::decode(Some(&good[..31]), 8), Err(WireError::Stamp));
    }

    #[test]
    fn lane_stamps_and_batches_round_trip_and_are_checked() {
        let tag = LaneTag {
            lane: 3,
            writer: 0xdead_beef,
        };
        for flags in [0, SYNC, LEAVE] {
            let s = Stamp {
                seq: 9,
                publish_ns: 1,
                creation_id: 2,
                flags,
                lane: Some(tag),
            };
            let bytes = s.encode();
            assert_eq!(bytes.len(), LANE_LEN);
            assert_eq!(u64_at(&bytes, 24), flags | LANE);
            assert_eq!(Stamp::decode(&bytes), Some(s));
            let put = Put::decode(Some(&bytes), 0).unwrap();
            assert_eq!(put.stamp, s);
            assert_eq!(put.check_lanes(4), Ok(()));
            // Lane 3 of a topic of 3 lanes, or of an exclusive topic: refused.
            assert_eq!(
                put.check_lanes(3),
                Err(WireError::Lane {
                    lane: Some(3),
                    lanes: 3
                })
            );
            assert!(put.check_lanes(1).is_err());
            // Torn (the lane word cut), or a lane stamp with trailing bytes.
            for cut in [LEN, LEN + 1, LANE_LEN - 1] {
                assert_eq!(Put::decode(Some(&bytes[..cut]), 0), Err(WireError::Stamp));
                assert!(Stamp::decode(&bytes[..cut]).is_none());
            }
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(Put::decode(Some(&long), 0), Err(WireError::Stamp));
        }
        // A put without a lane is refused by a shared topic (an END excepted).
        let plain = Stamp {
            seq: 1,
            publish_ns: 0,
            creation_id: 2,
            flags: 0,
            lane: None,
        };
        let put = Put::decode(Some(&plain.encode()), 1).unwrap();
        assert_eq!(put.check_lanes(1), Ok(()));
        assert_eq!(
            put.check_lanes(2),
            Err(WireError::Lane {
                lane: None,
                lanes: 2
            })
        );
        let end = Stamp {
            flags: END,
            ..plain
        };
        assert_eq!(
            Put::decode(Some(&end.encode()), 0).unwrap().check_lanes(2),
            Ok(())
        );
        // END with a lane, LEAVE without one, LEAVE with another kind: refused.
        for (flags, lane) in [
            (END | LANE, true),
            (LEAVE, false),
            (LEAVE | SYNC | LANE, true),
            (LEAVE | BATCH | LANE, true),
            (32 | LANE, true),
        ] {
            let mut bytes = Stamp {
                lane: lane.then_some(tag),
                ..plain
            }
            .encode();
            bytes[24..32].copy_from_slice(&flags.to_le_bytes());
            assert_eq!(
                Put::decode(Some(&bytes), 0),
                Err(WireError::Stamp),
                "{flags}"
            );
        }
        // A batch of one lane: its index starts after the 40-byte stamp.
        let mut ix = BatchIndex::new(Some(tag));
        ix.push(7, 2);
        ix.push(8, 3);
        let att = ix.finish(5, 42);
        assert_eq!(att.len(), LANE_LEN + INDEX_HEADER + 2 * ENTRY);
        let put = Put::decode(Some(&att), 5).unwrap();
        assert_eq!(put.stamp.lane, Some(tag));
        assert_eq!((put.stamp.seq, put.messages()), (7, 2));
        assert_eq!(put.batch[1], Entry { seq: 8, len: 3 });
        assert_eq!(
            Put::decode(Some(&att), 6),
            Err(WireError::Lengths { sum: 5, payload: 6 })
        );
        // The same batch read as if it had no lane: the lane word is taken for the
        // index, which then does not add up.
        let mut unlaned = att.clone();
        unlaned[24..32].copy_from_slice(&BATCH.to_le_bytes());
        assert!(Put::decode(Some(&unlaned), 5).is_err());
        // Every truncation of a lane batch is refused, never read past.
        for cut in 0..att.len() {
            assert!(Put::decode(Some(&att[..cut]), 5).is_err(), "{cut}");
        }
    }
}
