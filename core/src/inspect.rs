//! Read-only views of topics for tools: `ringcast list`, `inspect` and `gc`.

use std::time::Duration;

use crate::error::AttachError;
use crate::geometry::Geometry;
use crate::layout::{entry_kind, EntryKind, PUB_CLOSED};
use crate::segment::{self, Access, Segment};
use crate::sync::Ordering;

/// A snapshot of one topic.
#[derive(Clone, Debug)]
pub struct TopicInfo {
    /// The topic name.
    pub topic: String,
    /// Its validated geometry.
    pub geometry: Geometry,
    /// Whether a live process holds the publisher lock.
    pub publisher_alive: bool,
    /// Whether the publisher closed the topic.
    pub closed: bool,
    /// PID of the process that created the segment (informational; may be reused).
    pub creator_pid: u64,
    /// Messages published so far.
    pub write_cursor: u64,
    /// Subscribers in the table.
    pub subscribers: Vec<SubscriberInfo>,
}

/// One subscriber table entry in use.
#[derive(Clone, Debug)]
pub struct SubscriberInfo {
    /// Table index.
    pub entry: usize,
    /// PID of the owner when it attached (informational).
    pub pid: u32,
    /// Next sequence it has not consumed (or, under `Block`, released).
    pub cursor: u64,
    /// Messages between its cursor and the publisher's.
    pub lag: u64,
    /// Messages it lost to lapping.
    pub lost: u64,
    /// Whether a live process holds the entry's lock.
    pub alive: bool,
    /// Whether the publisher evicted it for stalling (it no longer gates the publisher).
    pub evicted: bool,
}

/// Takes a snapshot of `topic` under `prefix` without attaching as a subscriber.
pub fn inspect(prefix: &str, topic: &str) -> Result<TopicInfo, AttachError> {
    let seg = Segment::open(
        prefix,
        topic,
        Access::Inspect,
        None,
        Duration::from_millis(250),
    )?;
    let mem = seg.memory();
    let g = *mem.geometry();
    let hdr = mem.header();
    // Acquire/Relaxed below: a snapshot for humans; each value is individually coherent.
    let write_cursor = hdr.publisher.write_cursor.load(Ordering::Acquire);
    let subscribers = (0..g.max_subscribers as usize)
        .filter_map(|i| {
            let e = mem.entry(i);
            let alive = seg.entry_alive(i);
            let kind = entry_kind(e.state.load(Ordering::Acquire));
            if kind == EntryKind::Free && !alive {
                return None;
            }
            let cursor = e.cursor.load(Ordering::Relaxed);
            Some(SubscriberInfo {
                entry: i,
                pid: e.pid.load(Ordering::Relaxed),
                cursor,
                lag: write_cursor.saturating_sub(cursor),
                lost: e.lost.load(Ordering::Relaxed),
                alive,
                evicted: kind == EntryKind::Evicted,
            })
        })
        .collect();
    Ok(TopicInfo {
        topic: topic.to_owned(),
        geometry: g,
        publisher_alive: seg.publisher_alive(),
        closed: hdr.sub_wake.state.load(Ordering::Acquire) == PUB_CLOSED,
        creator_pid: hdr.identity.creator_pid,
        write_cursor,
        subscribers,
    })
}

/// What `gc` did with one topic.
#[derive(Debug)]
pub enum GcOutcome {
    /// Its publisher was dead; the segment was removed.
    Removed,
    /// Its publisher is alive; left alone.
    Alive,
    /// It could not be opened as a ringcast segment; left alone.
    Skipped(AttachError),
}

/// Removes the segments under `prefix` whose publisher is dead (and only those). Returns
/// what happened to each topic found.
pub fn gc(prefix: &str) -> std::io::Result<Vec<(String, GcOutcome)>> {
    let mut out = Vec::new();
    for topic in crate::name::list_topics(prefix)? {
        let outcome = match Segment::open(prefix, &topic, Access::Inspect, None, Duration::ZERO) {
            Ok(seg) if seg.publisher_alive() => GcOutcome::Alive,
            Ok(seg) => {
                // Unlink only if the name still means this dead segment (a new publisher
                // may have reclaimed the topic since we opened it).
                seg.unlink();
                tracing::info!(topic, "gc removed the segment of a dead publisher");
                GcOutcome::Removed
            }
            Err(e) => GcOutcome::Skipped(e),
        };
        out.push((topic, outcome));
    }
    Ok(out)
}

/// Removes the segment of `topic` whatever its state (tests and explicit cleanup).
pub fn remove(prefix: &str, topic: &str) -> std::io::Result<bool> {
    segment::remove(prefix, topic)
}
