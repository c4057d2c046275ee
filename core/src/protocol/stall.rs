//! The stall-timeout policy of a `Block` publisher: which live subscriber has kept it
//! waiting too long, and evicting it.
//!
//! A subscriber *stalls* the publisher when its cursor is a whole ring behind (so the next
//! message cannot be claimed) and neither its cursor nor its table state changes for the
//! topic's stall timeout, counted from the first time the publisher, finding the ring
//! full, saw it that way. It is then evicted with [`Writer::evict`] unless it is reading a
//! message in place at that moment: a sample held in place pins its slot for as long as
//! it is held, by design (taking it back would change bytes under a live reference).
//!
//! The watch only runs while the publisher finds the ring full, at most once per
//! [`StallWatch::period`], and costs the publishing fast path nothing.

use std::time::{Duration, Instant};

use crate::clock::LIVENESS_SLICE;
use crate::geometry::Geometry;
use crate::layout::{entry_kind, EntryKind};
use crate::ring::Writer;

/// What the watch did with one blocking subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Evicted: the publisher no longer waits for it.
    Evicted {
        /// Its table entry.
        entry: usize,
        /// The cursor it was stuck at.
        cursor: u64,
    },
    /// Past the timeout but reading in place: it pins its slot until it releases it.
    /// Reported once per stall.
    PinnedInPlace {
        /// Its table entry.
        entry: usize,
        /// The cursor (the sequence it holds).
        cursor: u64,
    },
}

/// One blocking subscriber as first seen.
#[derive(Clone, Copy)]
struct Blocked {
    word: u32,
    cursor: u64,
    since: Instant,
    /// Seen in the latest look (entries not seen are forgotten).
    current: bool,
    reported: bool,
}

/// Tracks blocking subscribers across the publisher's looks at a full ring.
pub struct StallWatch {
    timeout: Duration,
    period: Duration,
    /// Per table entry; allocated once at creation so the watch never allocates.
    seen: Box<[Option<Blocked>]>,
    last_look: Option<Instant>,
}

impl StallWatch {
    /// The watch for a topic, or `None` if its geometry has no stall timeout.
    pub fn new(geometry: &Geometry) -> Option<StallWatch> {
        if !geometry.evicts_stalled() {
            return None;
        }
        let timeout = Duration::from_nanos(geometry.stall_timeout_ns);
        Some(StallWatch {
            timeout,
            period: (timeout / 4).min(LIVENESS_SLICE),
            seen: vec![None; geometry.max_subscribers as usize].into_boxed_slice(),
            last_look: None,
        })
    }

    /// The stall timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How often the watch looks while the ring stays full (a quarter of the timeout, at
    /// most [`LIVENESS_SLICE`]): a stalled subscriber is evicted no sooner than `timeout`
    /// and, scheduling aside, within `timeout + 2 * period` of the publisher first finding
    /// the ring full because of it (one period for the first look, one between looks).
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Called when the publisher finds the ring full at `now`. Looks at the blocking
    /// subscribers (at most once per [`period`](Self::period)), evicts those stalled for the
    /// timeout, and reports each verdict to `report`. Returns whether anyone was evicted
    /// (then the next claim may succeed).
    pub fn on_full(
        &mut self,
        writer: &mut Writer,
        now: Instant,
        mut report: impl FnMut(Verdict),
    ) -> bool {
        if self
            .last_look
            .is_some_and(|t| now.duration_since(t) < self.period)
        {
            return false;
        }
        self.last_look = Some(now);
        for b in self.seen.iter_mut().flatten() {
            b.current = false;
        }
        writer.for_each_blocker(|i, word, cursor| {
            let slot = &mut self.seen[i];
            match slot {
                Some(b) if b.word == word && b.cursor == cursor => b.current = true,
                _ => {
                    *slot = Some(Blocked {
                        word,
                        cursor,
                        since: now,
                        current: true,
                        reported: false,
                    })
                }
            }
        });
        let mut evicted = false;
        for (i, slot) in self.seen.iter_mut().enumerate() {
            let Some(b) = slot else { continue };
            if !b.current {
                *slot = None;
                continue;
            }
            if now.duration_since(b.since) < self.timeout {
                continue;
            }
            if entry_kind(b.word) == EntryKind::Holding {
                if !b.reported {
                    b.reported = true;
                    report(Verdict::PinnedInPlace {
                        entry: i,
                        cursor: b.cursor,
                    });
                }
                continue;
            }
            if writer.evict(i, b.word) {
                report(Verdict::Evicted {
                    entry: i,
                    cursor: b.cursor,
                });
                evicted = true;
            }
            // Evicted, or its state moved on since we looked: either way a new episode.
            *slot = None;
        }
        evicted
    }
}
