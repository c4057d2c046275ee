//! Typed publishing: [`TypedPublisher`] archives values with rkyv straight into the loaned
//! shared-memory slot.
//!
//! rkyv 0.8's low-level API (`rkyv::api::low::to_bytes_in_with_alloc`) serializes through
//! a caller-provided [`Writer`] and a caller-provided scratch allocator. Here the writer is
//! [`SlotWriter`], a cursor over the loaned slot itself, and the allocator is a
//! [`SubAllocator`] over scratch space that the publisher allocates once at creation. So a
//! send is: loan the slot, serialize into it, commit exactly the serialized length. There
//! is no intermediate buffer, and no heap allocation per message unless the value's own
//! `Serialize` impl makes one (rkyv's derives do not). rkyv 0.8 puts the root object at the
//! *end* of the archive, which is why the committed length must be exact: a subscriber
//! finds the root at `len - size_of::<Archived<T>>()`.
//!
//! The topic's header carries the fingerprint of `T` (type name, size and alignment of the
//! archived type, and a schema version the user bumps when the type changes meaning), so a
//! subscriber expecting another type is refused at attach with `TypeMismatch`.
//!
//! rkyv aligns every object relative to the start of the buffer, so the buffer itself must
//! be aligned for the most-aligned archived object inside it. The slot payload is aligned to
//! at least 16 bytes (rkyv's largest primitive alignment) and to at least
//! `align_of::<Archived<T>>()`; a type whose *nested* archived objects need more than that
//! must ask for it with [`PublisherConfig::alignment`]. (A subscriber never trusts this:
//! validation rejects a misaligned object.)

use std::marker::PhantomData;
use std::mem::{align_of, MaybeUninit};
use std::time::Duration;

use ringcast_core::waitset::sealed::MemberImpl;
use ringcast_core::waitset::{Refusal, SleepTarget};
use ringcast_core::{CreateError, Full, Overflow, TypeInfo};
use rkyv::api::low::{to_bytes_in_with_alloc, LowSerializer};
use rkyv::rancor::{self, Source};
use rkyv::ser::allocator::SubAllocator;
use rkyv::ser::{Positional, Writer};
use rkyv::{Archive, Archived, Serialize};

use crate::{Loan, Publisher, PublisherConfig};

/// Scratch space a [`TypedPublisher`] allocates by default, in bytes.
///
/// rkyv uses scratch space only for containers whose elements have resolvers to remember
/// while the elements are written (a `Vec<String>` needs a few words per element; a
/// `Vec<f32>` or a plain struct needs none). Raise it with
/// [`TypedPublisher::with_scratch_space`] when sends fail with an out-of-space
/// [`TypedSendError::Serialize`].
pub const DEFAULT_SCRATCH_BYTES: usize = 4096;

/// The rkyv serializer a [`TypedPublisher`] runs: it writes through a [`SlotWriter`]
/// (into the loaned slot under `Block`; into the publisher's staging buffer under
/// `Overwrite`, copied into the slot with atomic words after) and takes scratch memory from
/// a [`SubAllocator`]. A type `T` can be sent when `T: for<'a> Serialize<SlotSerializer<'a>>`,
/// which every `#[derive(Archive, Serialize)]` type without shared pointers (`Rc`, `Arc`)
/// satisfies.
pub type SlotSerializer<'a> = LowSerializer<SlotWriter<'a>, SubAllocator<'a>, rancor::Error>;

/// The fingerprint of `T` as a message type: its name, the size and alignment of its
/// archived form, and `schema_version`.
///
/// `std::any::type_name` is not promised to be stable across compiler versions: build
/// publishers and subscribers of one topic with the same toolchain, or expect a
/// `TypeMismatch` that is about the name only.
///
/// ```
/// # use ringcast_publisher::type_info_of;
/// let info = type_info_of::<u64>(3);
/// assert_eq!((info.size, info.align, info.schema_version), (8, 8, 3));
/// ```
pub fn type_info_of<T: Archive>(schema_version: u64) -> TypeInfo {
    TypeInfo::of_stored::<T, Archived<T>>(schema_version)
}

/// The payload alignment a typed topic of `T` gets when the configuration asks for
/// `configured`: at least 16 and at least the archived type's alignment.
fn typed_alignment<T: Archive>(configured: u64) -> u64 {
    configured.max(16).max(align_of::<Archived<T>>() as u64)
}

/// Why a typed message could not be sent. Nothing was published in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum TypedSendError {
    /// The archived message is larger than a slot. Create the topic with a larger
    /// `slot_size`.
    #[error("the archived message does not fit a {capacity}-byte slot")]
    TooLarge {
        /// The slot capacity in bytes.
        capacity: usize,
    },
    /// `Block` only: the ring is full relative to the slowest subscriber (`try_send` and
    /// `send_timeout` only).
    #[error("the ring is full: the slowest subscriber has not released the oldest slot")]
    Full,
    /// rkyv failed to serialize the value. With rkyv's derives the one cause is scratch
    /// space running out: give the publisher more with
    /// [`TypedPublisher::with_scratch_space`].
    #[error("serializing the message failed: {0}")]
    Serialize(#[source] rancor::Error),
}

/// The one publisher of a typed topic: sends values of `T`, archived with rkyv straight
/// into shared memory. Dropping it closes the topic, as for [`Publisher`].
/// `Send`, not `Sync`.
///
/// ```
/// use ringcast_publisher::{PublisherConfig, TypedPublisher};
/// # let config = PublisherConfig::default().prefix(format!("rcdoc{}pose", std::process::id()));
///
/// #[derive(rkyv::Archive, rkyv::Serialize)]
/// struct Pose {
///     x: f64,
///     y: f64,
///     frame: String,
/// }
///
/// let mut publisher = TypedPublisher::<Pose>::create("pose", config)?;
/// publisher.send(&Pose { x: 1.0, y: 2.0, frame: "map".into() })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TypedPublisher<T> {
    pub(crate) raw: Publisher,
    /// rkyv's scratch space, allocated once; a fresh [`SubAllocator`] hands it out per
    /// message, so nothing survives from one message to the next.
    scratch: Box<[MaybeUninit<u8>]>,
    schema_version: u64,
    _type: PhantomData<fn(&T)>,
}

impl<T> std::fmt::Debug for TypedPublisher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedPublisher")
            .field("type", &std::any::type_name::<T>())
            .field("schema_version", &self.schema_version)
            .field("raw", &self.raw)
            .finish_non_exhaustive()
    }
}

impl<T> TypedPublisher<T>
where
    T: for<'a> Serialize<SlotSerializer<'a>>,
{
    /// Creates a typed topic for `T` with schema version 0. The configuration's payload
    /// alignment is raised to what `T`'s archive needs (at least 16 bytes); its type
    /// fingerprint is replaced by `T`'s.
    pub fn create(topic: &str, config: PublisherConfig) -> Result<Self, CreateError> {
        Self::create_versioned(topic, config, 0)
    }

    /// Like [`create`](Self::create), with a schema version of your choosing. Subscribers
    /// must attach with the same version; bump it when `T` changes meaning without
    /// changing its name, size or alignment.
    ///
    /// ```
    /// # use ringcast_publisher::{PublisherConfig, TypedPublisher};
    /// # let config = PublisherConfig::default().prefix(format!("rcdoc{}odo", std::process::id()));
    /// let publisher = TypedPublisher::<(u32, f64)>::create_versioned("odometry", config, 2)?;
    /// assert_eq!(publisher.schema_version(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_versioned(
        topic: &str,
        config: PublisherConfig,
        schema_version: u64,
    ) -> Result<Self, CreateError> {
        let alignment = typed_alignment::<T>(config.segment().alignment);
        let config = config
            .alignment(alignment)
            .type_info(type_info_of::<T>(schema_version));
        let raw = Publisher::create(topic, config)?;
        Ok(TypedPublisher {
            raw,
            scratch: Box::new_uninit_slice(DEFAULT_SCRATCH_BYTES),
            schema_version,
            _type: PhantomData,
        })
    }

    /// Replaces the scratch space with `bytes` of fresh space (an allocation now, none
    /// per message). See [`DEFAULT_SCRATCH_BYTES`] for when more is needed.
    ///
    /// ```
    /// # use ringcast_publisher::{PublisherConfig, TypedPublisher};
    /// # let config = PublisherConfig::default().prefix(format!("rcdoc{}names", std::process::id()));
    /// let mut publisher =
    ///     TypedPublisher::<Vec<String>>::create("names", config)?.with_scratch_space(64 * 1024);
    /// publisher.send(&vec!["a".to_owned(); 100])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_scratch_space(mut self, bytes: usize) -> Self {
        self.scratch = Box::new_uninit_slice(bytes);
        self
    }

    /// Archives `value` into the next slot and publishes it; waits for room under `Block`.
    /// Returns the message's sequence number.
    #[inline]
    pub fn send(&mut self, value: &T) -> Result<u64, TypedSendError> {
        let loan = self.raw.loan();
        write_message(loan, &mut self.scratch, value)
    }

    /// Like [`send`](Self::send), but fails with [`TypedSendError::Full`] instead of
    /// waiting.
    pub fn try_send(&mut self, value: &T) -> Result<u64, TypedSendError> {
        let loan = self.raw.try_loan().map_err(|Full| TypedSendError::Full)?;
        write_message(loan, &mut self.scratch, value)
    }

    /// Like [`send`](Self::send), waiting at most `timeout` for room.
    pub fn send_timeout(&mut self, value: &T, timeout: Duration) -> Result<u64, TypedSendError> {
        let loan = self
            .raw
            .loan_timeout(timeout)
            .map_err(|Full| TypedSendError::Full)?;
        write_message(loan, &mut self.scratch, value)
    }
}

impl<T> TypedPublisher<T> {
    /// The topic name.
    pub fn topic(&self) -> &str {
        self.raw.topic()
    }

    /// Most bytes one archived message may have.
    pub fn capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// The topic's overflow policy.
    pub fn overflow(&self) -> Overflow {
        self.raw.overflow()
    }

    /// The schema version the topic was created with.
    pub fn schema_version(&self) -> u64 {
        self.schema_version
    }

    /// Sequence number the next message will get (= messages published).
    pub fn next_seq(&self) -> u64 {
        self.raw.next_seq()
    }

    /// Subscribers attached and alive now (system calls: not for the hot path).
    pub fn subscriber_count(&mut self) -> usize {
        self.raw.subscriber_count()
    }

    /// Waits until at least `n` subscribers are attached, or `timeout` passes (then
    /// returns the count reached as the error).
    pub fn wait_for_subscribers(&mut self, n: usize, timeout: Duration) -> Result<(), usize> {
        self.raw.wait_for_subscribers(n, timeout)
    }
}

/// Serializes `value` into `loan` (the slot under `Block`; under `Overwrite` the
/// publisher's staging buffer, which the commit copies in with atomic word stores) and
/// commits exactly the serialized bytes; on any error the loan is dropped uncommitted, so
/// nothing is published.
#[inline]
fn write_message<T>(
    mut loan: Loan<'_>,
    scratch: &mut [MaybeUninit<u8>],
    value: &T,
) -> Result<u64, TypedSendError>
where
    T: for<'a> Serialize<SlotSerializer<'a>>,
{
    let len = serialize_into(&mut loan, scratch, value)?;
    Ok(loan.commit(len))
}

/// Serializes `value` into `buf` (from its start, root object last) with `scratch` as
/// rkyv's scratch space, and returns the bytes written: the way a [`TypedPublisher`]
/// writes into its loaned slot, for code that frames its own messages around an archive
/// (a service's request behind its header). `TooLarge` if the archive outgrows `buf`.
///
/// ```
/// use std::mem::MaybeUninit;
/// # use ringcast_publisher::serialize_into;
/// #[repr(align(16))]
/// struct Buf([u8; 64]);
/// let mut buf = Buf([0; 64]);
/// let mut scratch = [MaybeUninit::uninit(); 64];
/// let len = serialize_into(&mut buf.0, &mut scratch, &7u64)?;
/// assert_eq!(len, 8);
/// # Ok::<(), ringcast_publisher::TypedSendError>(())
/// ```
#[inline]
pub fn serialize_into<T>(
    buf: &mut [u8],
    scratch: &mut [MaybeUninit<u8>],
    value: &T,
) -> Result<usize, TypedSendError>
where
    T: for<'a> Serialize<SlotSerializer<'a>>,
{
    let capacity = buf.len();
    let mut overflowed = false;
    let writer = SlotWriter {
        slot: buf,
        pos: 0,
        overflowed: &mut overflowed,
    };
    let written = to_bytes_in_with_alloc(value, writer, SubAllocator::new(scratch));
    match written.map(|writer| writer.pos) {
        Ok(len) => Ok(len),
        Err(_) if overflowed => Err(TypedSendError::TooLarge { capacity }),
        Err(e) => Err(TypedSendError::Serialize(e)),
    }
}

/// rkyv's [`Writer`] over a loaned slot (or the `Overwrite` staging buffer): a
/// bounds-checked cursor. It exists so that [`TypedSendError::TooLarge`] can be told apart
/// from other serialization failures; users never build one.
pub struct SlotWriter<'a> {
    /// The whole loaned payload area.
    slot: &'a mut [u8],
    /// Bytes written so far; `pos <= slot.len()`.
    pos: usize,
    /// Set when a write did not fit.
    overflowed: &'a mut bool,
}

impl std::fmt::Debug for SlotWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotWriter")
            .field("pos", &self.pos)
            .field("capacity", &self.slot.len())
            .finish()
    }
}

impl Positional for SlotWriter<'_> {
    #[inline]
    fn pos(&self) -> usize {
        self.pos
    }
}

impl<E: Source> Writer<E> for SlotWriter<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), E> {
        let end = self.pos.saturating_add(bytes.len());
        match self.slot.get_mut(self.pos..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.pos = end;
                Ok(())
            }
            None => {
                *self.overflowed = true;
                Err(E::new(SlotOverflow {
                    capacity: self.slot.len(),
                }))
            }
        }
    }
}

/// The archive outgrew the slot.
#[derive(Debug)]
struct SlotOverflow {
    capacity: usize,
}

impl std::fmt::Display for SlotOverflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the archive outgrew the {}-byte slot", self.capacity)
    }
}

impl std::error::Error for SlotOverflow {}

// SAFETY: delegates to the raw publisher this one owns for its whole life.
unsafe impl<T: 'static> MemberImpl for TypedPublisher<T> {
    fn sleep_target(&self) -> SleepTarget {
        self.raw.sleep_target()
    }
    #[inline]
    fn is_ready(&mut self) -> bool {
        self.raw.is_ready()
    }
    fn check_liveness(&mut self) {
        self.raw.check_liveness()
    }
    fn refusal(&mut self) -> Option<Refusal> {
        self.raw.refusal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[derive(rkyv::Archive, rkyv::Serialize)]
    struct Sample {
        id: u64,
        names: Vec<String>,
    }

    fn serialize_into(slot: &mut [u8], scratch: &mut [MaybeUninit<u8>], value: &Sample) -> bool {
        let mut overflowed = false;
        let writer = SlotWriter {
            slot,
            pos: 0,
            overflowed: &mut overflowed,
        };
        let ok = to_bytes_in_with_alloc::<_, _, rancor::Error>(
            value,
            writer,
            SubAllocator::new(scratch),
        )
        .is_ok();
        ok || !overflowed
    }

    #[test]
    fn typed_alignment_is_at_least_16_and_the_archived_alignment() {
        assert_eq!(typed_alignment::<u8>(16), 16);
        assert_eq!(typed_alignment::<u8>(64), 64);
        assert_eq!(typed_alignment::<u128>(16), 16);
        assert_eq!(typed_alignment::<u64>(0), 16);
    }

    #[test]
    fn slot_writer_flags_overflow_instead_of_writing_past_the_slot() {
        let value = Sample {
            id: 7,
            names: vec!["a fairly long name".into(); 4],
        };
        let mut scratch = [MaybeUninit::uninit(); 256];
        let mut big = [0u8; 512];
        assert!(serialize_into(&mut big, &mut scratch, &value));
        let mut small = [0u8; 32];
        // Fails, and with the overflow flag set (so it would be reported as TooLarge).
        assert!(!serialize_into(&mut small, &mut scratch, &value));
    }

    #[test]
    fn fingerprint_names_the_type_and_archived_layout() {
        let info = type_info_of::<Sample>(5);
        assert!(info.name().ends_with("Sample"), "{}", info.name());
        assert_eq!(info.size as usize, size_of::<ArchivedSample>());
        assert_eq!(info.align as usize, align_of::<ArchivedSample>());
        assert_eq!(info.schema_version, 5);
        assert_ne!(info, type_info_of::<Sample>(6));
    }
}
