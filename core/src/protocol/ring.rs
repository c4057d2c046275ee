//! The single-producer / multi-consumer ring protocol.
//!
//! One [`Writer`] (the publisher) and any number of [`Reader`]s (subscribers, usually in
//! other processes) share a ring of `N = slot_count` slots. Message `seq` lives in slot
//! `seq mod N`; each slot carries a stamp ([`crate::stamp`]) saying which sequence it holds.
//!
//! **Lanes**: a topic that admits several publishers has one such ring per publisher (a
//! *lane*), each with exactly one writer at a time and this very protocol; a reader has a
//! cursor in every lane and sleeps on the one subscriber futex that every lane's writer
//! wakes. A publisher that takes over a lane another one left continues its sequence.
//!
//! **Publishing** is a seqlock write per slot (Boehm, "Can seqlocks get along with
//! programming language memory models?", MSPC 2012): stamp `busy(seq)`, Release fence,
//! payload, then stamp `committed(seq)` with Release. Readers load the stamp with Acquire.
//!
//! **Overwrite**: the writer never waits. A reader copies the payload out with atomic word
//! loads, issues an Acquire fence and re-reads the stamp; if the stamp moved, the copy raced
//! an overwrite and is discarded. A reader that finds a stamp above the one it wants was
//! lapped: it counts exactly the sequences it skips and resumes at the oldest intact one.
//!
//! **Block**: each reader publishes, in its subscriber-table entry, a `cursor`: the next
//! sequence it has not released. The writer may write `seq` only if every active cursor is
//! `> seq - N`. It caches that bound as `limit` (the LMAX Disruptor's cached gating
//! sequence) and rescans the table only when it reaches the limit, so the fast path is a
//! compare. Readers read in place; releasing stores `cursor = seq + 1` with Release.
//!
//! **Batched release** (`Block`, opt-in with [`Reader::set_release_batch`]): a reader
//! that releases a slot while the next message is already committed defers the cursor
//! store, up to `release_batch` slots, and publishes one cursor for the whole run when the
//! run ends (the next slot is empty) or reaches the bound. A deferred cursor is behind the
//! true one, which is always safe for the writer (it gates on less than it could); one
//! Release store orders every in-place read of the run before the writer's reuse of those
//! slots, and one wake handshake covers the run. A reader that keeps reading never holds
//! the writer back for long: a writer that waits for room on it is a whole ring ahead of
//! the published cursor, so the reader meets either the bound (at most the ring) or an
//! empty slot before it runs out of messages, and publishes. A reader that *stops*
//! mid-run keeps up to `release_batch - 1` released slots from the writer until its next
//! receive, or until any thread of its process starts a blocking wait: every such wait
//! first hands back every deferred run of the process ([`crate::handback`]), so a thread
//! that waits to publish (into this ring or another) holds at most the message it reads.
//!
//! **Attach under Block** is a Dekker handshake between the attaching reader and the
//! writer's rescan, and **eviction under Block** (topics with a stall timeout only) a race
//! between two CASes on the reader's entry `state`; both live with the rest of the entry
//! lifecycle in `crate::entry`. `docs/design.md` walks through the whole protocol.
//!
//! Reader-side loads of the slot ring go through `load_ro`: a subscriber maps the ring
//! read-only, where Rust promises only `Relaxed` loads.

pub use crate::entry::Role;
pub use crate::protocol::reader::{Reader, QUANTUM};
pub(crate) use crate::protocol::terms::{news_at, room_at};
pub use crate::protocol::terms::{Full, Poll, PublisherId, Start};
pub use crate::protocol::writer::Writer;
