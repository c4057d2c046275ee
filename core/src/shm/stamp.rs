//! Slot stamps: which sequence a slot holds, and whether a write is in progress.
//!
//! A stamp is one `u64` written only by the publisher:
//!
//! | stamp          | meaning                                        |
//! |----------------|------------------------------------------------|
//! | `0`            | never written                                  |
//! | `2*seq + 1`    | the publisher is writing `seq` (odd = busy)    |
//! | `2*seq + 2`    | the slot holds committed message `seq`         |
//!
//! A slot's stamp only grows, so for a reader waiting for `seq` a stamp below
//! `committed(seq)` means "not yet", equal means "here it is", and above means "lapped":
//! the publisher has started on `seq + k*slot_count` for some k >= 1. Sequences stay below
//! 2^62, which at a billion messages a second is 146 years. The arithmetic wraps rather
//! than panics: a hostile process can write any cursor into shared memory, and a
//! subscriber must then see garbage it can reject, never an overflow panic.

/// The stamp of a slot while the publisher writes `seq`.
#[inline(always)]
pub const fn busy(seq: u64) -> u64 {
    seq.wrapping_mul(2).wrapping_add(1)
}

/// The stamp of a slot holding committed message `seq`.
#[inline(always)]
pub const fn committed(seq: u64) -> u64 {
    seq.wrapping_mul(2).wrapping_add(2)
}

/// Whether a stamp marks a write in progress.
#[inline(always)]
pub const fn is_busy(stamp: u64) -> bool {
    stamp & 1 == 1
}
