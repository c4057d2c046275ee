//! Read-only views of topics for tools: `ringcast list`, `inspect` and `gc`.

use std::time::Duration;

use crate::error::AttachError;
use crate::geometry::Geometry;
use crate::layout::{entry_kind, EntryKind, PUB_CLOSED, ROLE_MONITOR};
use crate::segment::{self, Access, OpenFail, Removal, Segment};
use crate::sync::{load_acquire_ro, Ordering};

/// A snapshot of one topic.
#[derive(Clone, Debug)]
pub struct TopicInfo {
    /// The topic name.
    pub topic: String,
    /// Its validated geometry.
    pub geometry: Geometry,
    /// Whether a live process holds a publisher lock (of any lane).
    pub publisher_alive: bool,
    /// Whether the publisher closed the topic.
    pub closed: bool,
    /// PID of the process that created the segment (informational; may be reused).
    pub creator_pid: u64,
    /// Messages published so far (all lanes together).
    pub write_cursor: u64,
    /// Each lane: its publisher and what it published (one lane for a topic with one
    /// publisher).
    pub lanes: Vec<LaneInfo>,
    /// Subscribers in the table.
    pub subscribers: Vec<SubscriberInfo>,
    /// Sleeps announced on the subscribers' futex word now (a subscriber's blocking
    /// receive, a wait set or the async reactor sleeping on one of its entries): 0 when
    /// nobody sleeps, so a publish makes no wake system call.
    pub sleepers: u32,
    /// Mean payload length of the most recent messages still in the ring (up to 64 of
    /// them; `None` before the first): with the write cursor's rate, a bandwidth estimate
    /// that needs no subscriber (`ringcast top`).
    pub recent_mean_len: Option<f64>,
    /// Where the topic is imported from (a bridge re-publishes it); `None` for a local one.
    pub origin: Option<String>,
    /// Messages its source published that never reached it (imported topics only).
    pub upstream_lost: u64,
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
    /// Never set for a monitor.
    pub evicted: bool,
    /// Whether it attached as a monitor ([`Role::Monitor`](crate::ring::Role)): it never
    /// gates the publisher and loses what it is lapped by.
    pub monitor: bool,
    /// Per lane (indexed as [`TopicInfo::lanes`]): its next sequence in that lane. The
    /// sum is `cursor`; a lane's write cursor minus this is what it has not read there
    /// (for a service's server, a client's queued requests).
    pub lane_cursors: Vec<u64>,
}

/// One lane of a topic: the publisher that writes it (or wrote it last).
#[derive(Clone, Debug, PartialEq)]
pub struct LaneInfo {
    /// The lane's index.
    pub lane: usize,
    /// Whether a live process holds the lane's lock (its publisher lives).
    pub alive: bool,
    /// PID of the lane's last publisher (informational; 0 if nobody took it).
    pub pid: u32,
    /// The publisher id of its last publisher (the lane generation's low 32 bits; 0 if
    /// nobody took it).
    pub writer_id: u32,
    /// Whether that publisher left it cleanly.
    pub left: bool,
    /// Messages published into the lane so far.
    pub write_cursor: u64,
    /// Mean committed length of the lane's newest messages (up to 64 of them; `None`
    /// before its first): with the lane's write-cursor rate, its bandwidth
    /// (`ringcast top`).
    pub recent_mean_len: Option<f64>,
}

/// Takes a snapshot of `topic` under `prefix` without attaching as a subscriber.
pub fn inspect(prefix: &str, topic: &str) -> Result<TopicInfo, AttachError> {
    let seg = Segment::open(
        prefix,
        topic,
        Access::Inspect,
        None,
        Duration::from_millis(250),
        // A read-only look at whatever holds the name, whoever owns it (a squatter too).
        &segment::AttachLimits {
            trust: crate::trust::Trust::default().any_owner(),
            ..Default::default()
        },
    )?;
    let mem = seg.memory();
    let g = *mem.geometry();
    let hdr = mem.header();
    // Acquire (read-only mapping, so through `load_acquire_ro`) or Relaxed below: a
    // snapshot for humans; each value is individually coherent.
    let mut lanes: Vec<LaneInfo> = (0..g.max_publishers as usize)
        .map(|l| {
            let lane = mem.lane(l);
            LaneInfo {
                lane: l,
                alive: seg.lane_alive(l),
                pid: lane.owner.pid.load(Ordering::Relaxed),
                writer_id: lane.owner.generation.load(Ordering::Relaxed) as u32,
                left: lane.owner.state.load(Ordering::Relaxed) == crate::layout::LANE_LEFT,
                write_cursor: load_acquire_ro(&lane.publisher.write_cursor),
                recent_mean_len: None,
            }
        })
        .collect();
    let write_cursor = lanes
        .iter()
        .fold(0u64, |a, l| a.saturating_add(l.write_cursor));
    let subscribers = (0..g.max_subscribers as usize)
        .filter_map(|i| {
            let e = mem.entry(i);
            let alive = seg.entry_alive(i);
            let kind = entry_kind(load_acquire_ro(&e.state));
            if kind == EntryKind::Free && !alive {
                return None;
            }
            let (mut cursor, mut lost) = (0u64, 0u64);
            let mut lane_cursors = Vec::with_capacity(g.max_publishers as usize);
            for l in 0..g.max_publishers as usize {
                let c = mem.cursor(i, l);
                let at = c.cursor.load(Ordering::Relaxed);
                lane_cursors.push(at);
                cursor = cursor.saturating_add(at);
                lost = lost.saturating_add(c.lost.load(Ordering::Relaxed));
            }
            let monitor = e.role.load(Ordering::Relaxed) == ROLE_MONITOR;
            Some(SubscriberInfo {
                entry: i,
                pid: e.pid.load(Ordering::Relaxed),
                cursor,
                lag: write_cursor.saturating_sub(cursor),
                lost,
                alive,
                evicted: kind == EntryKind::Evicted && !monitor,
                monitor,
                lane_cursors,
            })
        })
        .collect();
    let recent_mean_len = recent_mean_len(mem, &mut lanes);
    Ok(TopicInfo {
        recent_mean_len,
        origin: mem.origin(),
        upstream_lost: mem.upstream_lost(),
        topic: topic.to_owned(),
        geometry: g,
        publisher_alive: seg.publisher_alive(),
        closed: load_acquire_ro(&hdr.sub_wake.state) == PUB_CLOSED,
        creator_pid: hdr.identity.creator_pid,
        write_cursor,
        lanes,
        subscribers,
        // Relaxed: as above, a snapshot for humans.
        sleepers: hdr.sub_wake.sleepers.load(Ordering::Relaxed),
    })
}

/// Mean committed length of up to 64 of the newest slots of each lane, per lane (into
/// each lane's `recent_mean_len`) and over all of them (returned); slots being rewritten
/// meanwhile are skipped (their stamp no longer says the sequence).
fn recent_mean_len(mem: &crate::memory::SegmentMemory, lanes: &mut [LaneInfo]) -> Option<f64> {
    let g = mem.geometry();
    let (mut sum, mut n) = (0u64, 0u64);
    for lane in lanes {
        let (mut lane_sum, mut lane_n) = (0u64, 0u64);
        let write_cursor = lane.write_cursor;
        let newest = write_cursor.min(g.slot_count).min(64);
        for seq in (write_cursor - newest)..write_cursor {
            let slot = mem.slot(lane.lane, seq);
            // Acquire (read-only mapping): pairs with the Release stamp store of the
            // commit, so the length read next is the committed one.
            if load_acquire_ro(&slot.stamp) == crate::stamp::committed(seq) {
                // Relaxed: ordered by the stamp load above; bounded like any reader's.
                let len = slot.len.load(Ordering::Relaxed) & crate::layout::LEN_MASK;
                lane_sum += len.min(g.slot_capacity);
                lane_n += 1;
            }
        }
        lane.recent_mean_len = (lane_n > 0).then(|| lane_sum as f64 / lane_n as f64);
        sum += lane_sum;
        n += lane_n;
    }
    (n > 0).then(|| sum as f64 / n as f64)
}

/// What `gc` did with one topic.
#[derive(Debug)]
#[non_exhaustive]
pub enum GcOutcome {
    /// Its publisher was dead; the segment was removed.
    Removed,
    /// Its publisher is alive; left alone.
    Alive,
    /// The name was removed or given to a new segment while gc looked; left alone.
    Changed,
    /// It could not be opened as a ringcast segment; left alone.
    Skipped(AttachError),
}

/// Removes the segments under `prefix` whose publisher is dead (and only those), and any
/// creation temporaries an older ringcast left behind (`<prefix>..new.*`, whose creator
/// is dead by the same lock test). Returns what happened to each name found.
///
/// A live topic is never removed, even one a new publisher is reclaiming at that moment:
/// gc decides and unlinks under the segment's remover lock, which a reclaimer also takes
/// (see [`crate::segment`]).
pub fn gc(prefix: &str) -> std::io::Result<Vec<(String, GcOutcome)>> {
    let mut out = Vec::new();
    for topic in crate::name::list_topics(prefix)? {
        let name = crate::name::shm_name(prefix, &topic);
        let outcome = collect(&topic, &name);
        if matches!(outcome, GcOutcome::Removed) {
            tracing::info!(topic, "gc removed the segment of a dead publisher");
        }
        out.push((topic, outcome));
    }
    for temp in crate::name::list_legacy_temporaries(prefix)? {
        let outcome = collect_temporary(&temp, &format!("/{temp}"));
        out.push((temp, outcome));
    }
    Ok(out)
}

/// How old an unlocked legacy temporary without a magic word must be before gc takes
/// its creator for dead: older builds took the publisher lock only after reserving the
/// memory, so a young one may belong to a creator that is still working.
const LEGACY_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// gc's decision for a creation temporary of an older build: like [`collect`], but one
/// that died before its magic word was written (the usual case: killed while reserving
/// memory) is removed too once it is unlocked and old enough.
fn collect_temporary(temp: &str, name: &str) -> GcOutcome {
    let Ok(file) = segment::open_existing(name, true) else {
        return collect(temp, name);
    };
    if segment::has_magic(&file) {
        return collect(temp, name);
    }
    let old = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age >= LEGACY_TEMP_AGE);
    if !old {
        return GcOutcome::Alive;
    }
    match segment::remove_if_dead(&file, name) {
        Ok(Removal::Removed) => GcOutcome::Removed,
        Ok(Removal::Alive) => GcOutcome::Alive,
        Ok(Removal::Moved) => GcOutcome::Changed,
        Err(source) => GcOutcome::Skipped(AttachError::Io {
            topic: temp.to_owned(),
            op: "remove",
            source,
        }),
    }
}

/// gc's decision for one name.
fn collect(topic: &str, name: &str) -> GcOutcome {
    let t = || topic.to_owned();
    let file = match segment::open_existing(name, true) {
        Ok(f) => f,
        Err(OpenFail::Missing) => return GcOutcome::Changed,
        Err(OpenFail::Denied) => {
            return GcOutcome::Skipped(AttachError::PermissionDenied { topic: t() })
        }
        Err(OpenFail::NotRegular(kind)) => {
            return GcOutcome::Skipped(AttachError::NotRegularFile { topic: t(), kind })
        }
        Err(OpenFail::Io(source)) => {
            return GcOutcome::Skipped(AttachError::Io {
                topic: t(),
                op: "open",
                source,
            })
        }
    };
    if !segment::has_magic(&file) {
        return GcOutcome::Skipped(AttachError::NotASegment { topic: t() });
    }
    match segment::remove_if_dead(&file, name) {
        Ok(Removal::Removed) => GcOutcome::Removed,
        Ok(Removal::Alive) => GcOutcome::Alive,
        Ok(Removal::Moved) => GcOutcome::Changed,
        Err(source) => GcOutcome::Skipped(AttachError::Io {
            topic: t(),
            op: "remove",
            source,
        }),
    }
}

/// Removes the segment of `topic` whatever its state (tests and explicit cleanup).
pub fn remove(prefix: &str, topic: &str) -> std::io::Result<bool> {
    segment::remove(prefix, topic)
}
