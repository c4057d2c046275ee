//! The reactor's registry: every registration of the process (its sleep target, its
//! share of a subscriber's entry claim, its arm and waker), the list of the armed ones,
//! and what the current pass holds of them. Plain bookkeeping under one lock, O(1) per
//! operation.

use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use crate::endpoint::EntryClaim;
use crate::memory::SegmentMemory;
use crate::ring::{news_at, room_at};
use crate::waitset::SleepTarget;

/// The registrations of the process, and what the current pass holds of them.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) entries: Vec<Option<Entry>>,
    pub(super) free: Vec<usize>,
    /// Ids of the armed entries, in no order (each entry knows its position).
    pub(super) armed: Vec<usize>,
    /// A pass is under way: from its snapshot until it has let go of everything it held
    /// (its sleep targets, the entries dropped during it).
    pub(super) passing: bool,
    /// Entries the current pass sleeps on (its snapshot's length).
    pub(super) pass_len: usize,
    /// Of those, entries whose registration was dropped since the pass began.
    pub(super) dropped_in_pass: usize,
}

impl Registry {
    pub(super) fn entry(&mut self, id: usize) -> &mut Entry {
        self.entries[id].as_mut().expect("registered")
    }

    /// Marks entry `id` armed since `now` (kept if it already was).
    pub(super) fn arm(&mut self, id: usize, now: Instant) {
        let pos = self.armed.len();
        let e = self.entry(id);
        if e.armed_at.is_none() {
            e.armed_at = Some(now);
            e.armed_pos = pos;
            self.armed.push(id);
        }
    }

    /// Withdraws entry `id`'s arm, if any; returns its waker.
    pub(super) fn disarm(&mut self, id: usize) -> Option<Waker> {
        let e = self.entry(id);
        let waker = e.waker.take();
        if e.armed_at.take().is_some() {
            let pos = e.armed_pos;
            self.armed.swap_remove(pos);
            if let Some(&moved) = self.armed.get(pos) {
                self.entry(moved).armed_pos = pos;
            }
        }
        waker
    }

    /// Counts a drop of an entry the current pass sleeps on; returns whether it cuts the
    /// pass short: exactly once per pass, when the dropped entries reach half of it, so
    /// every pass ended this way was paid for by at least half as many drops as it
    /// costs.
    pub(super) fn note_drop_in_pass(&mut self) -> bool {
        self.dropped_in_pass += 1;
        let (dropped, of) = (self.dropped_in_pass, self.pass_len);
        2 * (dropped - 1) < of && 2 * dropped >= of
    }

    /// Frees entry `id`'s place for a new registration; returns the entry.
    pub(super) fn remove(&mut self, id: usize) -> Option<Entry> {
        let e = self.entries[id].take();
        if e.is_some() {
            self.free.push(id);
        }
        e
    }
}

/// One registration.
pub(super) struct Entry {
    pub(super) target: SleepTarget,
    /// A subscriber's share of the claim on its table entry, in which a pass announces
    /// the reactor's sleep (`None` for a publisher): dropped only after the last pass
    /// that sleeps on this entry has withdrawn from it.
    _claim: Option<EntryClaim>,
    /// The sequences the handle waits for: to read, one per lane (a subscriber), or to
    /// write (a publisher, one). Sized at registration; arming only overwrites it.
    pub(super) next: Box<[u64]>,
    pub(super) waker: Option<Waker>,
    pub(super) armed_at: Option<Instant>,
    /// Position in `Registry::armed` while armed.
    pub(super) armed_pos: usize,
    /// The reactor's current pass sleeps on this entry.
    pub(super) in_use: bool,
    /// Its registration was dropped while the current pass sleeps on it: the pass frees
    /// it when it ends.
    pub(super) dropped: bool,
}

impl Entry {
    /// A registered entry, not armed.
    pub(super) fn new(target: SleepTarget, claim: Option<EntryClaim>) -> Entry {
        let lanes = match (target.is_publisher(), target.memory()) {
            (false, Some(mem)) => mem.geometry().max_publishers as usize,
            _ => 1,
        };
        Entry {
            target,
            _claim: claim,
            next: vec![0; lanes].into_boxed_slice(),
            waker: None,
            armed_at: None,
            armed_pos: 0,
            in_use: false,
            dropped: false,
        }
    }

    pub(super) fn ready(&self) -> bool {
        let mem: &SegmentMemory = self.target.memory().expect("a topic target");
        match self.target.lane() {
            Some(lane) => room_at(mem, lane, self.next[0]),
            None => self
                .next
                .iter()
                .enumerate()
                .any(|(l, &next)| news_at(mem, l, next)),
        }
    }
}

pub(super) fn lock(m: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    // The registry holds plain values that every critical section leaves consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waitset::Bell;
    use std::sync::Arc;
    use std::time::Duration;

    fn entry(target: SleepTarget) -> Option<Entry> {
        Some(Entry::new(target, None))
    }

    /// Every armed entry is in `armed` exactly once, at the position it records.
    fn check(reg: &Registry) {
        for (pos, &id) in reg.armed.iter().enumerate() {
            let e = reg.entries[id].as_ref().expect("armed and registered");
            assert!(e.armed_at.is_some(), "entry {id} listed but not armed");
            assert_eq!(e.armed_pos, pos, "entry {id} at the wrong position");
        }
        let armed = reg
            .entries
            .iter()
            .flatten()
            .filter(|e| e.armed_at.is_some());
        assert_eq!(armed.count(), reg.armed.len());
    }

    #[test]
    fn a_pass_is_cut_short_once_when_half_of_it_is_dropped() {
        for of in 1..200 {
            let mut reg = Registry {
                pass_len: of,
                ..Registry::default()
            };
            let cuts: Vec<usize> = (1..=of).filter(|_| reg.note_drop_in_pass()).collect();
            assert_eq!(cuts, [of.div_ceil(2)], "a pass of {of}");
        }
    }

    #[test]
    fn ten_thousand_registrations_arm_and_disarm_in_any_order_with_exact_bookkeeping() {
        const N: usize = 10_000;
        let start = Instant::now();
        let bell = Arc::new(Bell::new());
        let mut reg = Registry {
            entries: (0..N).map(|_| entry(bell.target())).collect(),
            ..Registry::default()
        };
        let now = Instant::now();
        for id in 0..N {
            reg.arm(id, now);
            reg.arm(id, now); // twice: still listed once
        }
        check(&reg);
        assert_eq!(reg.armed.len(), N);
        // Disarm in a scattered order (a stride coprime with N), re-arm some, twice.
        let mut id = 0;
        for k in 0..N {
            id = (id + 7919) % N;
            assert!(reg.disarm(id).is_none(), "no waker was set");
            if k % 3 == 0 {
                reg.arm(id, now);
            }
            if k % 1000 == 0 {
                check(&reg);
            }
        }
        check(&reg);
        assert_eq!(reg.armed.len(), N.div_ceil(3));
        for id in 0..N {
            reg.disarm(id);
        }
        assert!(reg.armed.is_empty());
        // O(1) per operation: milliseconds; the bound only catches a quadratic regression.
        assert!(start.elapsed() < Duration::from_secs(60));
    }
}
