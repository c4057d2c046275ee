//! Segment geometry: computed from a configuration at creation, recomputed and compared at
//! attach. Every size is checked arithmetic; nothing here trusts shared memory.

use std::time::Duration;

use crate::layout::{
    Header, Identity, ImportLine, Overflow, SubscriberWakeLine, TypeInfo, ENTRY_BYTES, LANE_BYTES,
    LANE_CURSOR_BYTES, LINE, ORIGIN_BYTES, PUB_OPEN, SLOT_HEADER_BYTES,
};
use crate::sync::{AtomicU32, AtomicU64};

/// Bytes of the fixed header before the lane table (`size_of::<Header>()` in a normal
/// build; a constant here so that loom builds, whose atomics are larger, agree).
pub const HEADER_BYTES: u64 = 512;
/// Most publishers (lanes) a topic may admit at once.
pub const MAX_PUBLISHERS: u64 = 64;
/// Largest segment we agree to create or map.
pub const MAX_TOTAL_BYTES: u64 = 1 << 40;
/// The largest slot payload a topic may have (1 GiB).
pub const MAX_SLOT_BYTES: u64 = 1 << 30;

/// What a publisher asks for. Defaults: 256 slots of 1 KiB, `Overwrite`, 64 subscribers,
/// 16-byte payload alignment, raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentConfig {
    /// Slots in the ring: a power of two, 2 ..= 2^24.
    pub slots: u64,
    /// Most payload bytes per message, 1 ..= 1 GiB.
    pub slot_size: u64,
    /// Payload alignment: a power of two, 16 ..= 4096.
    pub alignment: u64,
    /// Subscriber table entries, 1 ..= 4096.
    pub max_subscribers: u64,
    /// Overflow policy.
    pub overflow: Overflow,
    /// What the messages are.
    pub type_info: TypeInfo,
    /// `Block` only: how long a live subscriber may keep the publisher waiting before it is
    /// evicted (1 ms ..= 1 day); `None` (the default) never evicts a live subscriber.
    pub stall_timeout: Option<Duration>,
    /// Publishers the topic admits at once, each writing its own lane: 1 (the default, an
    /// exclusive topic) ..= [`MAX_PUBLISHERS`].
    pub max_publishers: u64,
}

/// Most slots in a ring (a power of two; at least 2).
pub const MAX_SLOTS: u64 = 1 << 24;
/// Smallest and largest payload alignment (powers of two).
pub const ALIGNMENT_RANGE: std::ops::RangeInclusive<u64> = 16..=4096;
/// Most subscriber-table entries.
pub const MAX_SUBSCRIBERS: u64 = 4096;

/// Shortest and longest stall timeout accepted.
pub const STALL_TIMEOUT_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(86_400);

impl Default for SegmentConfig {
    fn default() -> Self {
        SegmentConfig {
            slots: 256,
            slot_size: 1024,
            alignment: 16,
            max_subscribers: 64,
            overflow: Overflow::Overwrite,
            type_info: TypeInfo::RAW,
            stall_timeout: None,
            max_publishers: 1,
        }
    }
}

/// A validated geometry: the process-local copy every handle works from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes before slot 0; a multiple of the page size.
    pub header_size: u64,
    /// Bytes of the segment.
    pub total_size: u64,
    /// Slots, a power of two.
    pub slot_count: u64,
    /// Payload bytes per slot.
    pub slot_capacity: u64,
    /// Bytes from slot to slot.
    pub slot_stride: u64,
    /// Payload offset inside a slot.
    pub payload_offset: u64,
    /// Payload alignment.
    pub alignment: u64,
    /// Subscriber table entries.
    pub max_subscribers: u64,
    /// Offset of the subscriber table.
    pub table_offset: u64,
    /// Overflow policy.
    pub overflow: Overflow,
    /// Random id of this incarnation of the topic.
    pub creation_id: u64,
    /// Message type.
    pub type_info: TypeInfo,
    /// Stall timeout in nanoseconds; 0 = live subscribers are never evicted.
    pub stall_timeout_ns: u64,
    /// Lanes: publishers the topic admits at once.
    pub max_publishers: u64,
    /// Offset of the lane table (`HEADER_BYTES`).
    pub lane_table_offset: u64,
    /// Bytes of one subscriber entry with its lane cursors: a multiple of [`LINE`].
    pub entry_stride: u64,
}

fn round_up(x: u64, to: u64) -> Option<u64> {
    debug_assert!(to.is_power_of_two());
    Some(x.checked_add(to - 1)? & !(to - 1))
}

impl Geometry {
    /// Computes the geometry for `cfg` on a machine with pages of `page` bytes.
    pub fn compute(cfg: &SegmentConfig, page: u64, creation_id: u64) -> Result<Self, ConfigError> {
        if !(2..=MAX_SLOTS).contains(&cfg.slots) || !cfg.slots.is_power_of_two() {
            return Err(ConfigError::SlotCount(cfg.slots));
        }
        if !(1..=MAX_SLOT_BYTES).contains(&cfg.slot_size) {
            return Err(ConfigError::SlotSize(cfg.slot_size));
        }
        if !ALIGNMENT_RANGE.contains(&cfg.alignment) || !cfg.alignment.is_power_of_two() {
            return Err(ConfigError::Alignment(cfg.alignment));
        }
        if !(1..=MAX_SUBSCRIBERS).contains(&cfg.max_subscribers) {
            return Err(ConfigError::MaxSubscribers(cfg.max_subscribers));
        }
        if !(1..=MAX_PUBLISHERS).contains(&cfg.max_publishers) {
            return Err(ConfigError::MaxPublishers(cfg.max_publishers));
        }
        let stall_timeout_ns = match cfg.stall_timeout {
            None => 0,
            Some(_) if cfg.overflow == Overflow::Overwrite => {
                return Err(ConfigError::StallTimeoutWithoutBlock)
            }
            Some(d) if !STALL_TIMEOUT_RANGE.contains(&d) => {
                return Err(ConfigError::StallTimeout(d))
            }
            Some(d) => d.as_nanos() as u64,
        };
        let too_large = || ConfigError::TooLarge {
            slots: cfg.slots,
            stride: 0,
        };
        let payload_offset = cfg.alignment.max(SLOT_HEADER_BYTES as u64);
        // Payload words are copied 8 bytes at a time, so capacity rounds up to 8.
        let capacity = round_up(cfg.slot_size, 8).ok_or_else(too_large)?;
        let stride = round_up(payload_offset + capacity, cfg.alignment.max(LINE as u64))
            .ok_or_else(too_large)?;
        let lanes = cfg.max_publishers;
        let lane_table_offset = HEADER_BYTES;
        let table_offset = lane_table_offset + LANE_BYTES as u64 * lanes;
        let entry_stride = round_up(
            ENTRY_BYTES as u64 + LANE_CURSOR_BYTES as u64 * lanes,
            LINE as u64,
        )
        .ok_or_else(too_large)?;
        let header_size = round_up(
            table_offset + entry_stride * cfg.max_subscribers,
            page.max(4096),
        )
        .ok_or_else(too_large)?;
        let total = stride
            .checked_mul(cfg.slots)
            .and_then(|r| r.checked_mul(lanes))
            .and_then(|r| r.checked_add(header_size))
            .filter(|&t| t <= MAX_TOTAL_BYTES)
            .ok_or(ConfigError::TooLarge {
                slots: cfg.slots,
                stride,
            })?;
        Ok(Geometry {
            header_size,
            total_size: total,
            slot_count: cfg.slots,
            slot_capacity: capacity,
            slot_stride: stride,
            payload_offset,
            alignment: cfg.alignment,
            max_subscribers: cfg.max_subscribers,
            table_offset,
            overflow: cfg.overflow,
            creation_id,
            type_info: cfg.type_info,
            stall_timeout_ns,
            max_publishers: lanes,
            lane_table_offset,
            entry_stride,
        })
    }

    /// Checks a geometry read from a segment: it must be exactly what [`Geometry::compute`]
    /// gives for its own slot count, capacity, alignment and table size, and fit the file.
    /// Returns a description of the first thing wrong.
    pub fn validate(&self, file_size: u64, page: u64) -> Result<(), String> {
        let cfg = SegmentConfig {
            slots: self.slot_count,
            slot_size: self.slot_capacity,
            alignment: self.alignment,
            max_subscribers: self.max_subscribers,
            overflow: self.overflow,
            type_info: self.type_info,
            stall_timeout: (self.stall_timeout_ns != 0)
                .then(|| Duration::from_nanos(self.stall_timeout_ns)),
            max_publishers: self.max_publishers,
        };
        let expect = Geometry::compute(&cfg, page, self.creation_id).map_err(|e| e.to_string())?;
        let fields = [
            ("header size", self.header_size, expect.header_size),
            ("total size", self.total_size, expect.total_size),
            ("slot capacity", self.slot_capacity, expect.slot_capacity),
            ("slot stride", self.slot_stride, expect.slot_stride),
            ("payload offset", self.payload_offset, expect.payload_offset),
            ("table offset", self.table_offset, expect.table_offset),
            (
                "lane table offset",
                self.lane_table_offset,
                expect.lane_table_offset,
            ),
            ("entry stride", self.entry_stride, expect.entry_stride),
        ];
        for (what, found, want) in fields {
            if found != want {
                return Err(format!("{what} is {found}, the geometry implies {want}"));
            }
        }
        if self.total_size != file_size {
            return Err(format!(
                "header says {} bytes, the file has {file_size}",
                self.total_size
            ));
        }
        Ok(())
    }

    /// Whether the publisher may evict live subscribers that stall it (then in-place reads
    /// are marked in the subscriber table; see [`crate::layout::EntryKind::Holding`]).
    #[inline]
    pub fn evicts_stalled(&self) -> bool {
        self.stall_timeout_ns != 0
    }

    /// Bytes of one lane's ring (`slot_count * slot_stride`).
    #[inline]
    pub fn lane_bytes(&self) -> u64 {
        self.slot_count * self.slot_stride
    }

    /// The configuration this geometry was computed from (creation id and page aside).
    pub fn config(&self) -> SegmentConfig {
        SegmentConfig {
            slots: self.slot_count,
            slot_size: self.slot_capacity,
            alignment: self.alignment,
            max_subscribers: self.max_subscribers,
            overflow: self.overflow,
            type_info: self.type_info,
            stall_timeout: (self.stall_timeout_ns != 0)
                .then(|| Duration::from_nanos(self.stall_timeout_ns)),
            max_publishers: self.max_publishers,
        }
    }

    /// `slot_count - 1`: a sequence's slot index is `seq & mask`.
    #[inline]
    pub fn mask(&self) -> u64 {
        self.slot_count - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_rejects_bad_configs_and_overflow() {
        let ok = SegmentConfig::default();
        let g = Geometry::compute(&ok, 4096, 1).unwrap();
        assert_eq!(g.slot_stride, 1152);
        assert_eq!(g.header_size % 4096, 0);
        assert_eq!(g.total_size, g.header_size + 256 * 1152);
        g.validate(g.total_size, 4096).unwrap();
        assert!(g.validate(g.total_size - 1, 4096).is_err());

        let bad = |f: fn(&mut SegmentConfig)| {
            let mut c = SegmentConfig::default();
            f(&mut c);
            Geometry::compute(&c, 4096, 1).unwrap_err()
        };
        assert_eq!(bad(|c| c.slots = 3), ConfigError::SlotCount(3));
        assert_eq!(bad(|c| c.slots = 1), ConfigError::SlotCount(1));
        assert_eq!(bad(|c| c.slot_size = 0), ConfigError::SlotSize(0));
        assert_eq!(bad(|c| c.alignment = 24), ConfigError::Alignment(24));
        assert_eq!(
            bad(|c| c.max_subscribers = 0),
            ConfigError::MaxSubscribers(0)
        );
        assert!(matches!(
            bad(|c| {
                c.slots = 1 << 24;
                c.slot_size = 1 << 30;
            }),
            ConfigError::TooLarge { .. }
        ));
    }
}

/// Why a publisher configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `slots` must be a power of two between 2 and 2^24.
    #[error("slot count {0} is not a power of two in 2..={max}: pick one such as 64 or 1024", max = MAX_SLOTS)]
    SlotCount(u64),
    /// `slot_size` must be between 1 byte and 1 GiB.
    #[error("slot size {0} is not in 1..={max} bytes: size a slot for the largest message", max = MAX_SLOT_BYTES)]
    SlotSize(u64),
    /// `alignment` must be a power of two between 16 and 4096.
    #[error("payload alignment {0} is not a power of two in {lo}..={hi}: use 16 unless the message type needs more", lo = ALIGNMENT_RANGE.start(), hi = ALIGNMENT_RANGE.end())]
    Alignment(u64),
    /// `max_publishers` must be between 1 and [`MAX_PUBLISHERS`].
    #[error("max publishers {0} is not in 1..={max}: 1 for a topic with one publisher, more for a topic that several share", max = MAX_PUBLISHERS)]
    MaxPublishers(u64),
    /// `max_subscribers` must be between 1 and 4096.
    #[error("max subscribers {0} is not in 1..={max}: size the table for the subscribers you expect", max = MAX_SUBSCRIBERS)]
    MaxSubscribers(u64),
    /// The whole segment would exceed the addressable limit (1 TiB).
    #[error("the segment would be larger than {max} bytes ({slots} slots of {stride} bytes): use fewer or smaller slots", max = MAX_TOTAL_BYTES)]
    TooLarge {
        /// Slots asked for.
        slots: u64,
        /// Bytes per slot including its header.
        stride: u64,
    },
    /// A stall timeout only makes sense under `Overflow::Block` (an `Overwrite` publisher
    /// never waits for anyone).
    #[error("a stall timeout needs Overflow::Block; an Overwrite publisher never waits")]
    StallTimeoutWithoutBlock,
    /// The stall timeout is outside 1 ms ..= 1 day.
    #[error("stall timeout {0:?} is not in {lo:?}..={hi:?}", lo = STALL_TIMEOUT_RANGE.start(), hi = STALL_TIMEOUT_RANGE.end())]
    StallTimeout(std::time::Duration),
    /// The mode asks for bits other than read/write permissions, or leaves out the owner's
    /// read and write (without them only root could open the topic: no subscriber of its
    /// own user, no `gc`).
    #[error(
        "mode {0:o} must include 600 and have read and write bits only, such as 600, 640 or 666"
    )]
    Mode(u32),
    /// An imported topic's origin is empty, longer than 112 bytes or has control
    /// characters.
    #[error("origin {0:?} is empty, longer than {max} bytes or has control characters", max = crate::layout::ORIGIN_BYTES)]
    Origin(String),
}

impl Geometry {
    /// A header for this geometry, with the magic/version word still 0 (the creator stores it last).
    /// `origin` is empty for a local topic and at most [`ORIGIN_BYTES`] long (checked by
    /// the creator).
    pub(crate) fn new_header(&self, creator_pid: u64, origin: &str) -> Header {
        let g = self;
        Header {
            identity: Identity {
                magic_version: AtomicU64::new(0),
                header_size: g.header_size,
                total_size: g.total_size,
                slot_count: g.slot_count,
                slot_capacity: g.slot_capacity,
                slot_stride: g.slot_stride,
                payload_offset: g.payload_offset,
                alignment: g.alignment,
                max_subscribers: g.max_subscribers,
                table_offset: g.table_offset,
                overflow: g.overflow.to_word(),
                creation_id: g.creation_id,
                creator_pid,
                type_info: g.type_info,
                stall_timeout_ns: g.stall_timeout_ns,
                max_publishers: g.max_publishers,
            },
            sub_wake: SubscriberWakeLine {
                futex: AtomicU32::new(0),
                sleepers: AtomicU32::new(0),
                state: AtomicU32::new(PUB_OPEN),
                unanswered: AtomicU32::new(0),
            },
            import: ImportLine {
                upstream_lost: AtomicU64::new(0),
                origin_len: origin.len() as u64,
                origin: {
                    let mut bytes = [0u8; ORIGIN_BYTES];
                    bytes[..origin.len()].copy_from_slice(origin.as_bytes());
                    bytes
                },
            },
        }
    }
}
