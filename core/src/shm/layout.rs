//! The segment layout: a page-aligned control header, the lane table, a subscriber table,
//! then one slot ring per lane.
//!
//! ```text
//! offset 0              Header (repr C): identity + geometry lines, the subscribers' wake
//!                       line, the import line
//! lane_table_offset     [Lane; max_publishers]: per lane, its writer's cursor line, its
//!                       writer's wake line, its owner line
//! table_offset          max_subscribers entries of `entry_stride` bytes: SubscriberEntry,
//!                       then one LaneCursor (cursor, lost) per lane
//! header_size (page)    lane 0: slot 0 | slot 1 | ... | slot N-1   (each `slot_stride` bytes)
//!                       lane 1: ...
//!                       slot = SlotHeader (stamp, len) .. payload at `payload_offset`
//! ```
//!
//! A topic has one lane per publisher it admits (`max_publishers`, 1 for an exclusive
//! topic): each lane is a single-writer ring of its own, written by whichever publisher
//! holds the lane's lock, and every subscriber has a cursor in every lane.
//!
//! Subscribers map `[0, header_size)` read-write (they write only their own table entry and
//! the wake words) and the ring read-only. Everything in shared memory is an offset or an
//! integer, never a pointer. Fields written by different processes sit on their own
//! 128-byte line (two 64-byte lines, because x86's adjacent-line prefetcher pairs them), and
//! the layout below is pinned by compile-time assertions, because two different binaries
//! (say, the `ringcast` tool and a user's program) must agree on it byte for byte. We use
//! explicit `#[repr(C, align(128))]` structs rather than `crossbeam_utils::CachePadded`
//! here: `CachePadded<T>` is `repr(Rust)`, so where it puts `T` is not a cross-binary
//! promise.

use crate::sync::{AtomicU32, AtomicU64};

/// High half of the magic/version word: ASCII "RCST".
pub const MAGIC: u32 = u32::from_be_bytes(*b"RCST");
/// The layout version this build reads and writes. Bump on any change to this file.
pub const LAYOUT_VERSION: u32 = 5;
/// The magic/version word of a finished segment: magic in the high half, version in the low.
pub const MAGIC_VERSION: u64 = ((MAGIC as u64) << 32) | LAYOUT_VERSION as u64;

/// Bytes of a cache-line group; see the module docs for why 128.
pub const LINE: usize = 128;
/// Bytes of a slot's header (stamp and length) before any padding to the payload.
pub const SLOT_HEADER_BYTES: usize = 16;
/// Bytes of a [`SubscriberEntry`] before its lane cursors.
pub const ENTRY_BYTES: usize = 32;
/// Bytes of one [`LaneCursor`].
pub const LANE_CURSOR_BYTES: usize = 16;
/// Bytes of one [`Lane`] in the lane table.
pub const LANE_BYTES: usize = 3 * LINE;
/// Longest type name kept in the type fingerprint; longer names are truncated (the hash
/// still covers the whole name).
pub const TYPE_NAME_BYTES: usize = 96;

/// `SubscriberEntry::state`: the entry is unused.
pub const ENTRY_FREE: u32 = 0;

/// What a subscriber entry's `state` word says. An in-use word is `generation << 2 | kind`
/// (see [`entry_word`]): carrying the low 30 bits of the attach generation makes the
/// publisher's eviction CAS fail on an entry that changed owner since it looked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// Unused ([`ENTRY_FREE`]).
    Free,
    /// A live subscriber owns the entry (and holds its OFD lock) and gates a `Block`
    /// publisher with its cursor.
    Active,
    /// Like `Active`, and the subscriber is reading the slot at its cursor in place (only
    /// on topics with a stall timeout). The publisher never evicts a holding subscriber.
    Holding,
    /// Not gating: the publisher evicted the subscriber for stalling (it must not read in
    /// place again), or the entry is a monitor's (`SubscriberEntry::role` is
    /// [`ROLE_MONITOR`]), which never gates. The owner frees the entry when it detaches.
    Evicted,
}

/// `SubscriberEntry::role`: an ordinary subscriber (gates a `Block` publisher).
pub const ROLE_SUBSCRIBER: u32 = 0;
/// `SubscriberEntry::role`: a monitor, attached in the non-gating `Evicted` state from the
/// start; it reads by verified copy and loses what the publisher laps, whatever the
/// topic's policy.
pub const ROLE_MONITOR: u32 = 1;

const KIND_ACTIVE: u32 = 1;
const KIND_HOLDING: u32 = 2;
const KIND_EVICTED: u32 = 3;

/// The state word for an in-use entry of attach `generation` in `kind` (never
/// [`EntryKind::Free`]).
pub const fn entry_word(generation: u64, kind: EntryKind) -> u32 {
    let k = match kind {
        EntryKind::Free => panic!("a free entry's word is ENTRY_FREE"),
        EntryKind::Active => KIND_ACTIVE,
        EntryKind::Holding => KIND_HOLDING,
        EntryKind::Evicted => KIND_EVICTED,
    };
    ((generation as u32) << 2) | k
}

/// `word` (an in-use state word) with its kind replaced by `kind`, same generation.
pub const fn entry_with_kind(word: u32, kind: EntryKind) -> u32 {
    (word & !3) | (entry_word(0, kind) & 3)
}

/// Decodes a state word.
pub const fn entry_kind(word: u32) -> EntryKind {
    match word & 3 {
        KIND_ACTIVE => EntryKind::Active,
        KIND_HOLDING => EntryKind::Holding,
        KIND_EVICTED => EntryKind::Evicted,
        // Kind bits 0 with generation bits set cannot be written by ringcast; a corrupt
        // word is treated as free (it gates nothing, and claiming goes by OFD lock).
        _ => EntryKind::Free,
    }
}

/// Whether a `Block` publisher must respect the cursor of an entry in this state.
pub const fn entry_gates(word: u32) -> bool {
    matches!(entry_kind(word), EntryKind::Active | EntryKind::Holding)
}

/// `SubscriberWakeLine::state`: the topic is open (a publisher may still write).
pub const PUB_OPEN: u32 = 0;
/// `SubscriberWakeLine::state`: the last publisher closed the topic; nothing more will be
/// written to any lane.
pub const PUB_CLOSED: u32 = 1;

/// `LaneOwner::state`: no publisher ever took the lane.
pub const LANE_IDLE: u32 = 0;
/// `LaneOwner::state`: a publisher took the lane (it may have died since: its lock says).
pub const LANE_TAKEN: u32 = 1;
/// `LaneOwner::state`: the lane's last publisher left it cleanly.
pub const LANE_LEFT: u32 = 2;

/// The low half of a slot's `len` word: the payload length. The high half names the
/// writer that committed it (the low 32 bits of its lane generation).
pub const LEN_MASK: u64 = 0xFFFF_FFFF;

/// What happens when the ring is full relative to a slow subscriber. Fixed at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// The publisher never waits; a subscriber that falls a whole ring behind loses the
    /// oldest messages and is told exactly how many (`Lagged(n)`).
    Overwrite,
    /// The publisher never overwrites a slot that a live subscriber has not released; a
    /// loan waits, or `try_loan` reports `Full`.
    Block,
}

impl Overflow {
    pub(crate) const fn to_word(self) -> u64 {
        match self {
            Overflow::Overwrite => 0,
            Overflow::Block => 1,
        }
    }
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) const fn from_word(w: u64) -> Option<Self> {
        match w {
            0 => Some(Overflow::Overwrite),
            1 => Some(Overflow::Block),
            _ => None,
        }
    }
}

/// Identity of the message type carried by a topic. All zero for a raw-bytes topic.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TypeInfo {
    /// `size_of` of the archived type; 0 for raw bytes.
    pub size: u64,
    /// `align_of` of the archived type; 0 for raw bytes.
    pub align: u64,
    /// A schema version the user bumps when the type changes meaning but not shape.
    pub schema_version: u64,
    /// FNV-1a hash of the full type name.
    pub name_hash: u64,
    /// Bytes of `name` in use.
    pub name_len: u64,
    /// The type name, UTF-8, truncated to [`TYPE_NAME_BYTES`].
    pub name: [u8; TYPE_NAME_BYTES],
}

impl TypeInfo {
    /// The fingerprint of a raw-bytes topic.
    pub const RAW: TypeInfo = TypeInfo {
        size: 0,
        align: 0,
        schema_version: 0,
        name_hash: 0,
        name_len: 0,
        name: [0; TYPE_NAME_BYTES],
    };

    /// Builds a fingerprint from a type name, its size and alignment, and a schema version.
    pub fn new(name: &str, size: usize, align: usize, schema_version: u64) -> Self {
        let mut info = TypeInfo {
            size: size as u64,
            align: align as u64,
            schema_version,
            name_hash: fnv1a(name.as_bytes()),
            name_len: 0,
            name: [0; TYPE_NAME_BYTES],
        };
        // Truncate on a char boundary so `name()` always decodes.
        let mut n = name.len().min(TYPE_NAME_BYTES);
        while !name.is_char_boundary(n) {
            n -= 1;
        }
        info.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        info.name_len = n as u64;
        info
    }

    /// The fingerprint of messages of type `T` stored as `A` (for rkyv, `A` is
    /// `Archived<T>`): `T`'s name with `A`'s size and alignment. The typed publisher and
    /// subscriber both build their fingerprints here, so they always agree.
    ///
    /// ```
    /// # use ringcast_core::TypeInfo;
    /// let info = TypeInfo::of_stored::<u64, [u8; 8]>(1);
    /// assert_eq!((info.name(), info.size, info.align), ("u64", 8, 1));
    /// ```
    pub fn of_stored<T: ?Sized, A>(schema_version: u64) -> Self {
        TypeInfo::new(
            std::any::type_name::<T>(),
            std::mem::size_of::<A>(),
            std::mem::align_of::<A>(),
            schema_version,
        )
    }

    /// Whether this is the fingerprint of a raw-bytes topic.
    pub fn is_raw(&self) -> bool {
        *self == TypeInfo::RAW
    }

    /// The (possibly truncated) type name; `"<raw bytes>"` for raw topics, and
    /// `"<invalid>"` if the stored bytes are not UTF-8.
    pub fn name(&self) -> &str {
        if self.is_raw() {
            return "<raw bytes>";
        }
        let len = (self.name_len as usize).min(TYPE_NAME_BYTES);
        std::str::from_utf8(&self.name[..len]).unwrap_or("<invalid>")
    }
}

impl std::fmt::Debug for TypeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_raw() {
            return f.write_str("raw bytes");
        }
        write!(
            f,
            "{} (size {}, align {}, schema v{})",
            self.name(),
            self.size,
            self.align,
            self.schema_version
        )
    }
}

impl std::fmt::Display for TypeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// FNV-1a, 64-bit: tiny, deterministic across builds and processes (unlike `DefaultHasher`).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Identity and geometry: written once by the creator before the segment is given its name,
/// never written again. Attachers read it with `pread` into a local copy and validate it;
/// the ring code only ever uses that validated copy ([`crate::Geometry`]).
#[repr(C)]
pub struct Identity {
    /// [`MAGIC_VERSION`] once the segment is complete; 0 while it is being initialized.
    /// Written last. No atomic load pairs with it: attachers read the header with
    /// `pread`, and the segment gets its name (`linkat`) only after this store, so whoever
    /// can open it reads a complete header (the system calls order it).
    pub magic_version: AtomicU64,
    /// Bytes from the start of the segment to slot 0; a multiple of the page size.
    pub header_size: u64,
    /// Bytes of the whole segment; must equal the file's size.
    pub total_size: u64,
    /// Slots in the ring: a power of two, at least 2.
    pub slot_count: u64,
    /// Most payload bytes one slot holds.
    pub slot_capacity: u64,
    /// Bytes from one slot to the next: a multiple of [`LINE`] and of `alignment`.
    pub slot_stride: u64,
    /// Offset of the payload inside a slot: `max(alignment, SLOT_HEADER_BYTES)`.
    pub payload_offset: u64,
    /// Alignment of every payload: a power of two, 16 ..= 4096.
    pub alignment: u64,
    /// Entries in the subscriber table.
    pub max_subscribers: u64,
    /// Offset of the subscriber table: `size_of::<Header>()`.
    pub table_offset: u64,
    /// `Overflow::to_word` of the topic's policy.
    pub overflow: u64,
    /// Random at creation: tells a re-created topic from its predecessor.
    pub creation_id: u64,
    /// PID of the creating publisher, for humans only (liveness uses locks, not PIDs).
    pub creator_pid: u64,
    /// What the messages are.
    pub type_info: TypeInfo,
    /// `Block` only: nanoseconds a live subscriber may keep the publisher waiting before it
    /// is evicted; 0 = never (pure backpressure). Subscribers of a topic with a stall
    /// timeout mark in-place reads in their entry so that eviction never hits a held slot.
    pub stall_timeout_ns: u64,
    /// Lanes (publishers the topic admits at once): 1 ..= `MAX_PUBLISHERS`.
    pub max_publishers: u64,
}

/// The publisher's cursor line: written by the publisher on every commit.
#[repr(C, align(128))]
pub struct PublisherLine {
    /// Sequence of the next message to be committed (= messages committed so far).
    /// Written only by the publisher, with Release after the slot's stamp.
    pub write_cursor: AtomicU64,
    /// `Block` only: the highest sequence the publisher may write before it must rescan
    /// the subscriber table. Written by the publisher in `Writer::refresh_limit`; read by
    /// attaching subscribers to pick a start the publisher cannot overwrite.
    pub gate_limit: AtomicU64,
}

/// The subscribers' wake line: written by the publisher only when someone sleeps or on
/// close, and by subscribers only when they go to sleep or wake up.
#[repr(C, align(128))]
pub struct SubscriberWakeLine {
    /// Futex word subscribers sleep on; the publisher bumps it before waking them.
    pub futex: AtomicU32,
    /// Subscribers announced as (about to be) asleep on `futex`.
    pub sleepers: AtomicU32,
    /// [`PUB_OPEN`] or [`PUB_CLOSED`]; written by the publisher (Release) when it closes.
    pub state: AtomicU32,
    /// 1 once a subscriber announced a sleep that no wake answered yet; a publisher clears
    /// it when it wakes. After a commit a publisher wakes only when it is 1: a subscriber
    /// woken and not yet running costs no wake call per further commit (see
    /// `protocol/wake.rs`).
    pub unanswered: AtomicU32,
}

/// The publisher's wake line (`Block` only): the publisher sleeps here when the ring is full.
#[repr(C, align(128))]
pub struct PublisherWakeLine {
    /// Futex word the publisher sleeps on; a releasing subscriber bumps it before waking.
    pub futex: AtomicU32,
    /// 1 while the publisher is (about to be) asleep on `futex` and no release has woken it
    /// yet (a waking subscriber clears it before its bump), else 0.
    pub waiting: AtomicU32,
}

/// Who writes a lane: written by the publisher that takes the lane (holding the lane's
/// lock and the topic's membership lock), for `inspect` and for the publisher id of the
/// lane's messages.
#[repr(C, align(128))]
pub struct LaneOwner {
    /// Bumped by each publisher that takes the lane; the low 32 bits name it in the `len`
    /// word of every slot it commits.
    pub generation: AtomicU64,
    /// PID of the lane's publisher, for humans only.
    pub pid: AtomicU32,
    /// [`LANE_IDLE`], [`LANE_TAKEN`] or [`LANE_LEFT`].
    pub state: AtomicU32,
}

/// One lane: a single-writer ring's control lines. The slots are in the ring area.
#[repr(C, align(128))]
pub struct Lane {
    /// Written by the lane's publisher per message.
    pub publisher: PublisherLine,
    /// Written around the lane publisher's sleeps.
    pub pub_wake: PublisherWakeLine,
    /// Written when a publisher takes or leaves the lane.
    pub owner: LaneOwner,
}

/// Bytes of an imported topic's origin description ([`ImportLine::origin`]).
pub const ORIGIN_BYTES: usize = 112;

/// Where an imported topic comes from, and what it lost on the way. A topic re-published
/// from elsewhere (by `ringcast-bridge`) names its source here; `upstream_lost` counts the
/// messages the source published that never reached this topic (the gaps the importer saw
/// in the source's sequence numbers). Both are zero for a local topic.
#[repr(C, align(128))]
pub struct ImportLine {
    /// Messages lost upstream. Written only by the publisher, Relaxed, *before* it
    /// commits the first message after a gap: that commit's Release stamp store orders
    /// it, so a subscriber that received a message and then loads this (any ordering)
    /// counts at least every gap before that message.
    pub upstream_lost: AtomicU64,
    /// Bytes of `origin` in use (0: a local topic). Written once, before the segment has
    /// a name, like the identity; readers clamp it to [`ORIGIN_BYTES`].
    pub origin_len: u64,
    /// UTF-8 description of the source, for humans (`ringcast list`, `inspect`).
    pub origin: [u8; ORIGIN_BYTES],
}

/// The control header at offset 0 of every segment.
#[repr(C, align(128))]
pub struct Header {
    /// Written once at creation.
    pub identity: Identity,
    /// Written around subscriber sleeps (by every lane's publisher when it wakes them).
    pub sub_wake: SubscriberWakeLine,
    /// Written at creation (origin) and by the publisher after an upstream gap.
    pub import: ImportLine,
}

/// One subscriber's entry in the table: written only by the subscriber that owns it
/// (except `state`, which the publishers' eviction and reaping change). Followed by one
/// [`LaneCursor`] per lane; the whole entry is `entry_stride` bytes (a multiple of
/// [`LINE`]).
#[repr(C)]
pub struct SubscriberEntry {
    /// [`ENTRY_FREE`] or an [`entry_word`]. A subscriber stores its `Active` word (Release)
    /// after its cursors, and only while it holds the entry's OFD lock; a lane's publisher
    /// moves `Active` to `Evicted` by CAS (stall timeout) and frees entries of dead owners.
    pub state: AtomicU32,
    /// PID of the owner, for humans only.
    pub pid: AtomicU32,
    /// Bumped each time the entry is claimed, so observers can tell owners apart.
    pub generation: AtomicU64,
    /// 1 while the owner is counted in `SubscriberWakeLine::sleepers`, else 0. The owner
    /// sets it just after incrementing the count and clears it just before decrementing,
    /// so 1 always means "counted": whoever frees the entry of a dead owner that died
    /// asleep takes its count back (and a death between the two steps can only leave one
    /// spare count, never remove a live sleeper's).
    pub asleep: AtomicU32,
    /// [`ROLE_SUBSCRIBER`] or [`ROLE_MONITOR`], stored by the owner before its state word
    /// (for `inspect`; gating is decided by the state word alone).
    pub role: AtomicU32,
    /// Zero.
    pub reserved: u64,
}

/// A subscriber's position in one lane (after its [`SubscriberEntry`], one per lane).
#[repr(C)]
pub struct LaneCursor {
    /// The next sequence of the lane this subscriber has not yet released. Under `Block`
    /// the lane's publisher never writes sequence `s` while `s >= cursor + slot_count`.
    /// Written only by the owner, with Release (pairs with the Acquire cursor load in the
    /// publisher's rescan, `entry::slowest_cursor`).
    pub cursor: AtomicU64,
    /// Messages of the lane this subscriber has lost to lapping, for `inspect`.
    pub lost: AtomicU64,
}

/// The header of one slot in the ring.
#[repr(C)]
pub struct SlotHeader {
    /// Which sequence the slot holds and whether a write is in progress; see
    /// [`crate::stamp`]. Written only by the publisher.
    pub stamp: AtomicU64,
    /// Payload bytes of the committed message (low half, [`LEN_MASK`]) and the low 32 bits
    /// of the committing publisher's lane generation (high half). Written by the publisher
    /// before the committing stamp store; readers must bound-check the length (a hostile
    /// publisher may lie).
    pub len: AtomicU64,
}

// The layout is a contract between binaries: pin it. (Under loom the atomics are loom's
// bookkeeping types, and the layout is not shared with anyone.)
#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(offset_of!(Identity, magic_version) == 0);
    assert!(offset_of!(Identity, type_info) == 104);
    assert!(size_of::<TypeInfo>() == 136);
    assert!(offset_of!(Identity, stall_timeout_ns) == 240);
    assert!(offset_of!(Identity, max_publishers) == 248);
    assert!(size_of::<Identity>() == 256);
    assert!(offset_of!(Header, sub_wake) == 256);
    assert!(offset_of!(Header, import) == 384);
    assert!(size_of::<ImportLine>() == LINE);
    assert!(size_of::<Header>() == 512);
    assert!(align_of::<Header>() == LINE);
    assert!(size_of::<Lane>() == 3 * LINE);
    assert!(offset_of!(Lane, pub_wake) == LINE);
    assert!(offset_of!(Lane, owner) == 2 * LINE);
    assert!(size_of::<SubscriberEntry>() == ENTRY_BYTES);
    assert!(offset_of!(SubscriberEntry, role) == 20);
    assert!(size_of::<LaneCursor>() == LANE_CURSOR_BYTES);
    assert!(size_of::<SlotHeader>() == SLOT_HEADER_BYTES);
};
