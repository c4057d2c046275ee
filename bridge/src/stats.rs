//! Per-topic counters a bridge keeps, readable while it runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Which way a topic goes through this bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A local topic carried to the network.
    Export,
    /// A remote topic re-published here.
    Import,
    /// A local service offered to the network (its report counts calls and responses).
    ServiceExport,
    /// A remote service served here.
    ServiceImport,
}

/// Live counters of one topic. All Relaxed: independent statistics, no message is
/// published through them.
#[derive(Debug)]
pub(crate) struct Counters {
    pub topic: String,
    pub direction: Direction,
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    pub puts: AtomicU64,
    pub lost: AtomicU64,
    pub refused: AtomicU64,
    pub active: AtomicBool,
    /// `lost` by source lane, for a shared topic (grown to the highest lane that lost).
    lane_lost: Mutex<Vec<u64>>,
}

impl Counters {
    pub fn new(topic: &str, direction: Direction) -> Counters {
        Counters {
            topic: topic.to_owned(),
            direction,
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            active: AtomicBool::new(false),
            lane_lost: Mutex::new(Vec::new()),
        }
    }

    /// Counts `n` messages lost, in source lane `lane` of a shared topic (`None`: a topic
    /// with one publisher). `lane` is below `MAX_PUBLISHERS` (the wire checks it).
    pub fn lose(&self, lane: Option<u32>, n: u64) {
        bump(&self.lost, n);
        if let Some(l) = lane {
            let mut v = self.lane_lost.lock().unwrap_or_else(|e| e.into_inner());
            let l = (l as usize).min(ringcast::inspect::MAX_PUBLISHERS as usize - 1);
            if v.len() <= l {
                v.resize(l + 1, 0);
            }
            v[l] = v[l].saturating_add(n);
        }
    }

    pub fn set_active(&self, on: bool) {
        self.active.store(on, Ordering::Relaxed);
    }

    pub fn report(&self) -> TopicReport {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TopicReport {
            topic: self.topic.clone(),
            direction: self.direction,
            messages: get(&self.messages),
            bytes: get(&self.bytes),
            puts: get(&self.puts),
            lost: get(&self.lost),
            refused: get(&self.refused),
            active: self.active.load(Ordering::Relaxed),
            lost_by_lane: self
                .lane_lost
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// Adds `n` to one of the counters.
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// A snapshot of one topic's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicReport {
    /// The topic.
    pub topic: String,
    /// Export or import.
    pub direction: Direction,
    /// Messages carried (put on the network, or re-published here). A service: responses
    /// carried.
    pub messages: u64,
    /// Payload bytes carried.
    pub bytes: u64,
    /// Zenoh puts that carried them (sent, or received and applied; SYNC and END stamps
    /// not counted): fewer than `messages` when several went in one batch. A service:
    /// calls carried (Zenoh queries answered, or sent).
    pub puts: u64,
    /// Export: messages the bridge lost by lagging behind the local publisher (an
    /// `Overwrite` topic). Import: messages of the source that never arrived (gaps in its
    /// sequence numbers), also in the topic's `upstream_lost`. A service: calls that
    /// ended with an error (the remote server gone, the call timed out, the request
    /// refused remotely).
    pub lost: u64,
    /// Import: announcements refused (malformed, over the size limit, clashing with a
    /// local topic) and messages refused (malformed attachment, larger than the slot). A
    /// service: announcements refused (malformed, or a live local server has the name),
    /// requests and responses refused (too large).
    pub refused: u64,
    /// Whether the topic is being carried now (exported: attached to the local topic;
    /// imported: the local topic exists).
    pub active: bool,
    /// A shared topic: `lost` by source lane (index: the lane at the exporting host; empty
    /// until a loss, and only as long as the highest lane that lost). The local topic's
    /// `upstream_lost` is one count for all lanes.
    pub lost_by_lane: Vec<u64>,
}
