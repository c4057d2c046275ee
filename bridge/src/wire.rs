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

/// Bytes of a stamp (the whole attachment of a single message, SYNC or END).
pub const LEN: usize = 32;
/// Flag: the source topic closed; `seq` holds its final message count and the payload is
/// empty. Sent reliably, so the importer can count a loss at the very end too.
pub const END: u64 = 1;
/// Flag: the exporter (re-)attached to the source and reads from `seq` on; the payload
/// is empty. Sent reliably, before the first message it forwards.
pub const SYNC: u64 = 2;
/// Flag: a batch; the attachment goes on with the index (see the module's docs).
pub const BATCH: u64 = 4;
/// Bytes of a batch's index header (count, reserved) after the stamp.
pub const INDEX_HEADER: usize = 8;
/// Bytes of one index entry (seq, len).
pub const ENTRY: usize = 12;
/// Most messages in one batch: an exporter sends no more, an importer refuses more.
pub const MAX_BATCH: usize = 1024;

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
    /// [`END`], [`SYNC`], [`BATCH`] or 0.
    pub flags: u64,
}

impl Stamp {
    /// The 32 bytes.
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut [u8; LEN]) {
        for (i, w) in [self.seq, self.publish_ns, self.creation_id, self.flags]
            .into_iter()
            .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
    }

    /// Parses a single message's attachment (or a SYNC or END); `None` unless it is
    /// exactly 32 bytes with known flags, and not a batch's.
    pub fn decode(bytes: &[u8]) -> Option<Stamp> {
        let s = Stamp::decode_any(bytes)?;
        (s.flags & BATCH == 0).then_some(s)
    }

    /// The stamp of any put, a batch's too.
    fn decode_any(bytes: &[u8]) -> Option<Stamp> {
        let bytes: &[u8; LEN] = bytes.try_into().ok()?;
        let s = Stamp {
            seq: u64_at(bytes, 0),
            publish_ns: u64_at(bytes, 8),
            creation_id: u64_at(bytes, 16),
            flags: u64_at(bytes, 24),
        };
        let known = s.flags & !(END | SYNC | BATCH) == 0;
        let one = [0, END, SYNC, BATCH].contains(&s.flags);
        (known && one).then_some(s)
    }

    /// Whether this marks the end of the source.
    pub fn is_end(&self) -> bool {
        self.flags & END != 0
    }

    /// Whether this says where the exporter starts reading.
    pub fn is_sync(&self) -> bool {
        self.flags & SYNC != 0
    }

    /// Whether this is a batch's stamp.
    pub fn is_batch(&self) -> bool {
        self.flags & BATCH != 0
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
}

impl Put {
    /// Checks a put's attachment against its payload's length; nothing of a malformed
    /// put is applied.
    pub fn decode(attachment: Option<&[u8]>, payload_len: usize) -> Result<Put, WireError> {
        let att = attachment.ok_or(WireError::Missing)?;
        let stamp =
            Stamp::decode_any(att.get(..LEN).ok_or(WireError::Stamp)?).ok_or(WireError::Stamp)?;
        if !stamp.is_batch() {
            return match att.len() {
                LEN => Ok(Put {
                    stamp,
                    batch: Vec::new(),
                }),
                _ => Err(WireError::Stamp),
            };
        }
        let index = &att[LEN..];
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

    /// Messages this put carries (0 for a SYNC or an END).
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
}

impl Default for BatchIndex {
    fn default() -> Self {
        BatchIndex::new()
    }
}

impl BatchIndex {
    /// An empty index.
    pub fn new() -> BatchIndex {
        BatchIndex {
            bytes: vec![0; LEN + INDEX_HEADER],
            count: 0,
            first: 0,
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
        };
        let mut head = [0u8; LEN];
        stamp.write(&mut head);
        self.bytes[..LEN].copy_from_slice(&head);
        self.bytes[LEN..LEN + 4].copy_from_slice(&(self.count as u32).to_le_bytes());
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
            let mut ix = BatchIndex::new();
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
            }
            .encode()
            .to_vec();
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
}
