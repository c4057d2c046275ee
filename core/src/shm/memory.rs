//! The memory a segment lives in, behind one accessor API.
//!
//! In a normal build this is a shared mapping of the segment file (one read-write mapping
//! for a publisher; for a subscriber, the header read-write and the ring read-only). Under
//! loom it is an ordinary allocation of loom atomics shared by the threads that stand in for
//! processes, with each slot's payload modelled as a few atomic words plus a loom
//! `UnsafeCell` that lets loom prove `Block`'s "no write while a reader holds the slot".
//!
//! Only payload access differs between the two; headers, stamps and cursors are the same
//! `crate::sync` atomics either way, reached through the same methods.

use crate::geometry::Geometry;
use crate::layout::{Header, Lane, LaneCursor, SlotHeader, SubscriberEntry, ENTRY_BYTES};
#[cfg(not(loom))]
use crate::sync::{AtomicU64, Ordering};

/// A mapped (or, under loom, modelled) segment.
pub struct SegmentMemory {
    geometry: Geometry,
    header: *const Header,
    /// Lane 0's lines; lane `l`'s are `l` lanes further.
    lanes: *const Lane,
    /// First byte of entry 0; entry `i` is `i * entry_stride` bytes further.
    table: *const u8,
    /// First byte of lane 0's slot 0 (lane `l`'s ring is `l * lane_bytes` further).
    /// Read-only memory in a subscriber: never written through here except by publishers.
    ring: *mut u8,
    #[cfg(not(loom))]
    _maps: Vec<memmap2::MmapRaw>,
    #[cfg(loom)]
    model: model::Backing,
}

// SAFETY: the raw pointers point into a mapping (or model allocation) owned by `self` and
// alive as long as it is; all shared state behind them is accessed through atomics or under
// the ring protocol's exclusion rules, so sharing the handle between threads adds no race.
unsafe impl Send for SegmentMemory {}
// SAFETY: as for `Send`: `&SegmentMemory` only hands out `&` to atomics and raw pointers.
unsafe impl Sync for SegmentMemory {}

#[cfg(not(loom))]
impl SegmentMemory {
    /// Prefaults and/or locks every mapping of this memory, for a handle that attached to
    /// it. Read access only (other processes may be writing it meanwhile). On error, the
    /// call that failed and why.
    pub fn keep_resident(
        &self,
        opts: crate::residency::MemoryOptions,
    ) -> Result<(), (&'static str, std::io::Error)> {
        for m in &self._maps {
            // SAFETY: each map is one live mapping of ours (kept by `self`); with
            // `writable` false nothing is written.
            unsafe { crate::residency::apply(m.as_mut_ptr(), m.len(), false, opts) }?;
        }
        Ok(())
    }
}

impl SegmentMemory {
    /// Wraps mappings of a validated segment.
    ///
    /// # Safety
    /// - `base` points to the start of a mapping of the segment's first `header_size` bytes,
    ///   readable and writable, that `maps` keeps alive;
    /// - `ring` points to a mapping of the next `total_size - header_size` bytes, readable
    ///   (and writable if this handle will publish), kept alive by `maps`;
    /// - the segment's geometry was validated against the file (`geometry`), and the
    ///   header and table were initialized by a ringcast creator (zero is a valid state).
    #[cfg(not(loom))]
    pub(crate) unsafe fn from_maps(
        geometry: Geometry,
        base: *mut u8,
        ring: *mut u8,
        maps: Vec<memmap2::MmapRaw>,
    ) -> Self {
        SegmentMemory {
            geometry,
            header: base as *const Header,
            // SAFETY: lane_table_offset + lanes * LANE_BYTES = table_offset <= header_size
            // (validated geometry), so the offset stays inside the header mapping.
            lanes: unsafe { base.add(geometry.lane_table_offset as usize) } as *const Lane,
            // SAFETY: table_offset + entries * entry_stride <= header_size (validated
            // geometry), so the offset stays inside the header mapping.
            table: unsafe { base.add(geometry.table_offset as usize) },
            ring,
            _maps: maps,
        }
    }

    /// The validated geometry.
    #[inline]
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Where an imported topic comes from (see [`crate::layout::ImportLine`]); `None` for a
    /// local topic. Read from the mapping: written before the segment had a name, never
    /// after. A length over the field's size (a corrupt header) is clamped, and bytes that
    /// are not UTF-8 are shown replaced.
    pub fn origin(&self) -> Option<String> {
        let line = &self.header().import;
        let len = (line.origin_len.min(crate::layout::ORIGIN_BYTES as u64)) as usize;
        (len > 0).then(|| String::from_utf8_lossy(&line.origin[..len]).into_owned())
    }

    /// Messages the source of an imported topic published that never reached it (0 for a
    /// local topic). Relaxed: a statistic; after receiving a message it counts at least the
    /// gaps before that message (the publisher stores it before that message's Release
    /// commit, which the receive's Acquire stamp load synchronized with).
    pub fn upstream_lost(&self) -> u64 {
        self.header()
            .import
            .upstream_lost
            .load(crate::sync::Ordering::Relaxed)
    }

    /// The control header. Crate-private: a `&Header` hands out atomics that safe code
    /// must not be able to store into (a subscriber's view is partly read-only, and the
    /// protocol's invariants live in these words).
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: `header` points to a live, initialized `Header` for the life of `self`
        // (constructor contract); every field other processes write is atomic.
        unsafe { &*self.header }
    }

    /// Lane `l`'s control lines (crate-private, as [`header`](Self::header)).
    #[inline]
    pub(crate) fn lane(&self, l: usize) -> &Lane {
        assert!((l as u64) < self.geometry.max_publishers);
        #[cfg(not(loom))]
        {
            // SAFETY: l < max_publishers, and the lane table holds that many lanes inside
            // the header mapping (validated geometry); all fields are atomics.
            unsafe { &*self.lanes.add(l) }
        }
        #[cfg(loom)]
        {
            let _ = self.lanes;
            &self.model.lanes[l]
        }
    }

    /// Subscriber table entry `i` (crate-private, as [`header`](Self::header)).
    #[inline]
    pub(crate) fn entry(&self, i: usize) -> &SubscriberEntry {
        assert!((i as u64) < self.geometry.max_subscribers);
        #[cfg(not(loom))]
        {
            // SAFETY: i < max_subscribers, and the table holds that many entries of
            // `entry_stride` bytes (a multiple of 128) inside the mapping (validated
            // geometry); all fields are atomics.
            unsafe {
                &*(self.table.add(i * self.geometry.entry_stride as usize)
                    as *const SubscriberEntry)
            }
        }
        #[cfg(loom)]
        {
            let _ = self.table;
            &self.model.entries[i]
        }
    }

    /// Entry `i`'s cursor in lane `l` (crate-private, as [`header`](Self::header)).
    #[inline]
    pub(crate) fn cursor(&self, i: usize, l: usize) -> &LaneCursor {
        assert!((i as u64) < self.geometry.max_subscribers);
        assert!((l as u64) < self.geometry.max_publishers);
        #[cfg(not(loom))]
        {
            // SAFETY: i and l are in range, and the entry's stride holds ENTRY_BYTES plus
            // one LaneCursor per lane (validated geometry), 8-aligned; all atomics.
            unsafe {
                &*(self
                    .table
                    .add(i * self.geometry.entry_stride as usize + ENTRY_BYTES + l * 16)
                    as *const LaneCursor)
            }
        }
        #[cfg(loom)]
        {
            &self.model.cursors[i * self.geometry.max_publishers as usize + l]
        }
    }

    #[cfg(not(loom))]
    #[inline]
    fn slot_base(&self, lane: usize, seq: u64) -> *mut u8 {
        debug_assert!((lane as u64) < self.geometry.max_publishers);
        let idx = seq & self.geometry.mask();
        // Lane 0 (every topic with one publisher) costs no multiplication.
        let lane_start = if lane == 0 {
            0
        } else {
            lane as u64 * self.geometry.lane_bytes()
        };
        let at = lane_start + idx * self.geometry.slot_stride;
        // SAFETY: lane < max_publishers (every caller got `lane` from a writer or reader
        // built for this geometry, or checked it) and idx < slot_count, and max_publishers
        // lanes of slot_count * stride bytes follow `ring` (validated geometry), so the
        // result stays inside the ring mapping.
        unsafe { self.ring.add(at as usize) }
    }

    /// The header of the slot of lane `lane` that holds `seq` (crate-private, as
    /// [`header`](Self::header); read-only memory in a subscriber).
    #[inline]
    pub(crate) fn slot(&self, lane: usize, seq: u64) -> &SlotHeader {
        #[cfg(not(loom))]
        {
            // SAFETY: each slot starts with a `SlotHeader` at a 128-aligned offset inside
            // the ring mapping; its fields are atomics.
            unsafe { &*(self.slot_base(lane, seq) as *const SlotHeader) }
        }
        #[cfg(loom)]
        {
            let _ = self.ring;
            &self.model.slot(&self.geometry, lane, seq).header
        }
    }

    /// A raw pointer to the whole payload of the slot of `seq`, derived from the mapping's
    /// base pointer with no reference in between, so that it stays valid alongside the
    /// atomic stores of [`store_payload`](Self::store_payload) (which derive from the same
    /// base). Computing it is safe; dereferencing it is for the topic's writer, on a slot it
    /// has claimed, with no other reference to the payload alive.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn payload_ptr(&self, lane: usize, seq: u64) -> *mut [u8] {
        // SAFETY: payload_offset + capacity <= stride (validated geometry), so the offset
        // stays inside the slot of the ring mapping.
        let start = unsafe {
            self.slot_base(lane, seq)
                .add(self.geometry.payload_offset as usize)
        };
        std::ptr::slice_from_raw_parts_mut(start, self.geometry.slot_capacity as usize)
    }

    /// The first `len` committed payload bytes of `seq` in lane `lane`, read in place.
    ///
    /// # Safety
    /// The topic is `Block`, `len <= slot_capacity`, and the caller's subscriber entry
    /// keeps `seq` unreleased (cursor <= seq) for as long as the slice lives, so the
    /// publisher cannot write the slot meanwhile.
    #[cfg(not(loom))]
    #[inline]
    pub unsafe fn payload(&self, lane: usize, seq: u64, len: usize) -> &[u8] {
        debug_assert!(len as u64 <= self.geometry.slot_capacity);
        assert!((lane as u64) < self.geometry.max_publishers);
        // SAFETY: in bounds as for `payload_ptr`; immutability for the slice's life is the
        // caller's obligation.
        unsafe {
            std::slice::from_raw_parts(
                self.slot_base(lane, seq)
                    .add(self.geometry.payload_offset as usize),
                len,
            )
        }
    }

    /// Copies the first `len` payload bytes of `seq` in lane `lane` into `dst` with per-word atomic loads,
    /// so that a concurrent overwrite by the publisher is a detectable race (the caller
    /// re-checks the stamp afterwards), never undefined behaviour.
    #[inline]
    pub fn copy_out(&self, lane: usize, seq: u64, len: usize, dst: &mut [u64]) {
        let words = len.div_ceil(8);
        assert!(words <= dst.len() && len as u64 <= self.geometry.slot_capacity);
        assert!((lane as u64) < self.geometry.max_publishers);
        #[cfg(not(loom))]
        {
            // SAFETY: payload_offset + capacity <= stride (validated geometry) and
            // len <= capacity, so `words` u64 reads stay inside the slot; the payload is
            // 16-aligned, so each word is aligned.
            let src = unsafe {
                self.slot_base(lane, seq)
                    .add(self.geometry.payload_offset as usize)
            } as *mut u64;
            for (i, d) in dst[..words].iter_mut().enumerate() {
                // SAFETY: `src.add(i)` is in bounds and 8-aligned (above) and lives as long
                // as `self`. The ring may be mapped read-only here: a shared reference to an
                // atomic there is sound as long as we only make `Relaxed` loads of register
                // width (std's "atomic accesses to read-only memory"), which is all we do.
                // The publisher writes these words with atomic stores in its own copying
                // paths; a race with it is by design (the stamp re-check discards the copy).
                let word = unsafe { &*(src.add(i) as *const AtomicU64) };
                // Relaxed: ordered by the Acquire fence in `Reader::read_copy` before its
                // stamp re-check.
                *d = word.load(Ordering::Relaxed);
            }
        }
        #[cfg(loom)]
        self.model.copy_out(&self.geometry, lane, seq, words, dst);
    }

    /// Stores `bytes` at byte `offset` of the payload of `seq` with word-wise atomic
    /// (`Relaxed`) stores, the words the readers' [`copy_out`](Self::copy_out) loads: the
    /// partial words at either edge are merged with what the slot holds. Under `Overwrite`
    /// a reader may be copying this slot right now; with atomic stores on both sides that
    /// is a race the stamp re-check detects, never a data race in Rust's memory model.
    ///
    /// # Safety
    /// The caller is the topic's writer, has claimed `seq` (nobody else stores into this
    /// payload), mapped the ring writable, and holds no reference to this payload.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) unsafe fn store_payload(&self, lane: usize, seq: u64, offset: usize, bytes: &[u8]) {
        let cap = self.geometry.slot_capacity as usize;
        assert!(offset <= cap && bytes.len() <= cap - offset);
        if bytes.is_empty() {
            return;
        }
        // SAFETY: payload_offset + capacity <= stride (validated geometry), rounded up to
        // whole words still inside the stride (both are multiples of 8), so every word we
        // touch lies in this slot; the payload is 16-aligned.
        let base = unsafe {
            self.slot_base(lane, seq)
                .add(self.geometry.payload_offset as usize)
        } as *mut u64;
        let (first, last) = (offset / 8, (offset + bytes.len() - 1) / 8);
        for w in first..=last {
            // SAFETY: word `w` is inside the slot (above) and aligned; writable and ours
            // alone to store into (caller's obligations); readers only load it atomically.
            let word = unsafe { AtomicU64::from_ptr(base.add(w)) };
            let (lo, hi) = (w * 8, w * 8 + 8);
            let (from, to) = (offset.max(lo), (offset + bytes.len()).min(hi));
            let value = if from == lo && to == hi {
                u64::from_ne_bytes(bytes[lo - offset..hi - offset].try_into().unwrap())
            } else {
                // An edge word: keep the bytes outside the range (only we store here, so
                // the load sees our own last store). Relaxed: as the store below.
                let mut b = word.load(Ordering::Relaxed).to_ne_bytes();
                b[from - lo..to - lo].copy_from_slice(&bytes[from - offset..to - offset]);
                u64::from_ne_bytes(b)
            };
            // Relaxed: published by the commit's Release stamp store; a reader that races
            // it discards its copy after its own fence and stamp re-check.
            word.store(value, Ordering::Relaxed);
        }
    }
}

#[cfg(loom)]
impl SegmentMemory {
    /// Loom flavour of the publisher's atomic copy-in: exclusive access to the slot (loom
    /// checks it against in-place readers), then `Relaxed` word stores of whole words.
    ///
    /// # Safety
    /// As for the std flavour: the caller is the writer and has claimed `seq`.
    pub(crate) unsafe fn store_payload(&self, lane: usize, seq: u64, offset: usize, bytes: &[u8]) {
        assert!(
            offset % 8 == 0 && bytes.len() % 8 == 0,
            "model payloads are whole words"
        );
        let words: Vec<u64> = bytes
            .chunks(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        self.model_write_at(lane, seq, offset / 8, &words);
    }
}

#[cfg(loom)]
pub use model::PAYLOAD_WORDS as MODEL_PAYLOAD_WORDS;

#[cfg(loom)]
mod model {
    //! The loom stand-in for a mapping.
    use super::*;
    use crate::layout::*;
    use crate::sync::{AtomicU32, AtomicU64, Ordering};
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::AtomicBool;

    /// Payload words per modelled slot.
    pub const PAYLOAD_WORDS: usize = 2;

    pub(super) struct Slot {
        pub(super) header: SlotHeader,
        words: [AtomicU64; PAYLOAD_WORDS],
        /// Tracks exclusive (publisher write) versus shared (in-place `Block` read) access.
        cell: UnsafeCell<()>,
    }

    pub(super) struct Backing {
        _header: Box<Header>,
        pub(super) lanes: Box<[Lane]>,
        pub(super) entries: Box<[SubscriberEntry]>,
        /// Entry `i`'s cursor in lane `l` at `i * lanes + l`.
        pub(super) cursors: Box<[LaneCursor]>,
        /// Lane `l`'s slot `k` at `l * slot_count + k`.
        pub(super) slots: Box<[Slot]>,
        /// Stand-ins for the entries' OFD locks: `true` while someone owns entry `i`.
        pub(super) locks: Box<[AtomicBool]>,
        /// Stand-ins for the lanes' OFD locks: `true` while a publisher owns lane `l`.
        pub(super) lane_locks: Box<[AtomicBool]>,
    }

    impl Backing {
        pub(super) fn slot(&self, g: &Geometry, lane: usize, seq: u64) -> &Slot {
            assert!((lane as u64) < g.max_publishers);
            &self.slots[lane * g.slot_count as usize + (seq & g.mask()) as usize]
        }

        pub(super) fn copy_out(
            &self,
            g: &Geometry,
            lane: usize,
            seq: u64,
            words: usize,
            dst: &mut [u64],
        ) {
            let slot = self.slot(g, lane, seq);
            for (d, w) in dst[..words].iter_mut().zip(&slot.words) {
                // Relaxed: as in the std flavour, ordered by `read_copy`'s Acquire fence.
                *d = w.load(Ordering::Relaxed);
            }
        }
    }

    fn zero_entry() -> SubscriberEntry {
        SubscriberEntry {
            state: AtomicU32::new(ENTRY_FREE),
            pid: AtomicU32::new(0),
            generation: AtomicU64::new(0),
            asleep: AtomicU32::new(0),
            role: AtomicU32::new(0),
            reserved: 0,
        }
    }

    fn zero_lane(slot_count: u64) -> Lane {
        Lane {
            publisher: PublisherLine {
                write_cursor: AtomicU64::new(0),
                gate_limit: AtomicU64::new(slot_count - 1),
            },
            pub_wake: PublisherWakeLine {
                futex: AtomicU32::new(0),
                waiting: AtomicU32::new(0),
            },
            owner: LaneOwner {
                generation: AtomicU64::new(0),
                pid: AtomicU32::new(0),
                state: AtomicU32::new(LANE_IDLE),
            },
        }
    }

    impl SegmentMemory {
        /// A fresh, zeroed model segment with `slots` slots of [`PAYLOAD_WORDS`] words.
        pub fn model(slots: u64, overflow: Overflow, max_subscribers: u64) -> Self {
            Self::model_with(crate::geometry::SegmentConfig {
                slots,
                max_subscribers,
                overflow,
                ..Default::default()
            })
        }

        /// A model segment for `cfg` (its slot size is replaced by [`PAYLOAD_WORDS`] words),
        /// e.g. a `Block` topic with a stall timeout.
        pub fn model_with(cfg: crate::geometry::SegmentConfig) -> Self {
            let (slots, max_subscribers, lanes) =
                (cfg.slots, cfg.max_subscribers, cfg.max_publishers);
            let cfg = crate::geometry::SegmentConfig {
                slot_size: (PAYLOAD_WORDS * 8) as u64,
                ..cfg
            };
            let geometry = Geometry::compute(&cfg, 4096, 1).expect("valid model geometry");
            let header = Box::new(geometry.new_header(0, ""));
            header
                .identity
                .magic_version
                .store(MAGIC_VERSION, Ordering::Release);
            let entries: Box<[SubscriberEntry]> =
                (0..max_subscribers).map(|_| zero_entry()).collect();
            let cursors: Box<[LaneCursor]> = (0..max_subscribers * lanes)
                .map(|_| LaneCursor {
                    cursor: AtomicU64::new(0),
                    lost: AtomicU64::new(0),
                })
                .collect();
            let lane_vec: Box<[Lane]> = (0..lanes).map(|_| zero_lane(slots)).collect();
            let slot_vec: Box<[Slot]> = (0..slots * lanes)
                .map(|_| Slot {
                    header: SlotHeader {
                        stamp: AtomicU64::new(0),
                        len: AtomicU64::new(0),
                    },
                    words: std::array::from_fn(|_| AtomicU64::new(0)),
                    cell: UnsafeCell::new(()),
                })
                .collect();
            SegmentMemory {
                geometry,
                header: &*header as *const Header,
                lanes: std::ptr::null(),
                table: std::ptr::null(),
                ring: std::ptr::null_mut(),
                model: Backing {
                    _header: header,
                    lanes: lane_vec,
                    entries,
                    cursors,
                    slots: slot_vec,
                    locks: (0..max_subscribers)
                        .map(|_| AtomicBool::new(false))
                        .collect(),
                    lane_locks: (0..lanes).map(|_| AtomicBool::new(false)).collect(),
                },
            }
        }

        /// Model of the publisher filling a claimed slot: exclusive access (loom checks it
        /// against in-place readers), then Relaxed word stores (published by the commit's
        /// Release stamp store, or raced by `Overwrite` readers who re-check the stamp).
        pub fn model_write(&self, seq: u64, words: &[u64]) {
            self.model_write_at(0, seq, 0, words)
        }

        /// [`model_write`](Self::model_write) into lane `lane`.
        pub fn model_write_lane(&self, lane: usize, seq: u64, words: &[u64]) {
            self.model_write_at(lane, seq, 0, words)
        }

        pub(crate) fn model_write_at(&self, lane: usize, seq: u64, first: usize, words: &[u64]) {
            let slot = self.model.slot(&self.geometry, lane, seq);
            slot.cell.with_mut(|_| {
                for (w, v) in slot.words[first..].iter().zip(words) {
                    // Relaxed: published by the commit's Release stamp store.
                    w.store(*v, Ordering::Relaxed);
                }
            });
        }

        /// Takes model lock `i` (a claim of entry `i`) if it is free.
        pub fn model_lock(&self, i: usize) -> bool {
            // Acquire on success: pairs with the Release in `model_unlock`, as the kernel's
            // lock orders a dead owner's last stores before the next holder.
            self.model.locks[i]
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        }

        /// Releases model lock `i` (a detach, or the kernel dropping a dead owner's lock).
        pub fn model_unlock(&self, i: usize) {
            // Release: see `model_lock`.
            self.model.locks[i].store(false, Ordering::Release);
        }

        /// Takes model lane lock `l` (a publisher taking lane `l`) if it is free.
        pub fn model_lock_lane(&self, l: usize) -> bool {
            // Acquire on success: pairs with the Release in `model_unlock_lane`, as the
            // kernel's lock orders a leaving writer's last stores before the next one.
            self.model.lane_locks[l]
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        }

        /// Releases model lane lock `l` (a publisher leaving, or dying).
        pub fn model_unlock_lane(&self, l: usize) {
            // Release: see `model_lock_lane`.
            self.model.lane_locks[l].store(false, Ordering::Release);
        }

        /// Model of a `Block` subscriber reading `seq` in place while it holds the sample:
        /// shared access, which loom proves never overlaps a publisher write.
        pub fn model_read_in_place(&self, seq: u64, dst: &mut [u64]) {
            self.model_read_in_place_lane(0, seq, dst)
        }

        /// [`model_read_in_place`](Self::model_read_in_place) in lane `lane`.
        pub fn model_read_in_place_lane(&self, lane: usize, seq: u64, dst: &mut [u64]) {
            let slot = self.model.slot(&self.geometry, lane, seq);
            slot.cell.with(|_| {
                for (d, w) in dst.iter_mut().zip(&slot.words) {
                    // Relaxed: the stamp's Acquire load already made the payload visible.
                    *d = w.load(Ordering::Relaxed);
                }
            });
        }
    }
}
