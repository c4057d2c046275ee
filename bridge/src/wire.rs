//! The attachment every bridged message carries: 32 bytes, little-endian.
//!
//! ```text
//! 0   seq            the message's sequence number in the source topic
//! 8   publish_ns     CLOCK_REALTIME when the exporter took it from the ring (ringcast
//!                    slots carry no timestamp of their own)
//! 16  creation_id    the source topic's incarnation (see the announcement)
//! 24  flags          END: the source closed; `seq` is then how many it published
//!                    SYNC: the exporter attached at `seq` (no payload), so a loss
//!                    before its first message is counted too
//! ```
//!
//! The payload is the message's bytes, unchanged.

/// Bytes of an attachment.
pub const LEN: usize = 32;
/// Flag: the source topic closed; `seq` holds its final message count and the payload is
/// empty. Sent reliably, so the importer can count a loss at the very end too.
pub const END: u64 = 1;
/// Flag: the exporter (re-)attached to the source and reads from `seq` on; the payload
/// is empty. Sent reliably, before the first message it forwards.
pub const SYNC: u64 = 2;

/// One message's attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Sequence number in the source (for an END, the count published).
    pub seq: u64,
    /// Wall-clock nanoseconds at export.
    pub publish_ns: u64,
    /// The source topic's incarnation.
    pub creation_id: u64,
    /// [`END`], [`SYNC`] or 0.
    pub flags: u64,
}

impl Stamp {
    /// The 32 bytes.
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        for (i, w) in [self.seq, self.publish_ns, self.creation_id, self.flags]
            .into_iter()
            .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Parses an attachment; `None` unless it is exactly 32 bytes with known flags.
    pub fn decode(bytes: &[u8]) -> Option<Stamp> {
        if bytes.len() != LEN {
            return None;
        }
        let w = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8"));
        let s = Stamp {
            seq: w(0),
            publish_ns: w(1),
            creation_id: w(2),
            flags: w(3),
        };
        (s.flags & !(END | SYNC) == 0 && s.flags != END | SYNC).then_some(s)
    }

    /// Whether this marks the end of the source.
    pub fn is_end(&self) -> bool {
        self.flags & END != 0
    }

    /// Whether this says where the exporter starts reading.
    pub fn is_sync(&self) -> bool {
        self.flags & SYNC != 0
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
        bad[24] = 4;
        assert!(Stamp::decode(&bad).is_none());
        bad[24] = 3;
        assert!(Stamp::decode(&bad).is_none());
        bad[24] = 2;
        assert!(Stamp::decode(&bad).is_some_and(|s| s.is_sync() && !s.is_end()));
        assert!(Stamp::decode(&[]).is_none());
    }
}
