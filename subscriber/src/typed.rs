//! Typed receiving: [`TypedSubscriber`] hands out `&Archived<T>` that rkyv's bytecheck
//! has validated, read in place under `Block` and from the subscriber's own verified copy
//! under `Overwrite`.
//!
//! A typed subscriber attaches with the fingerprint of `T` (see [`type_info_of`]), so a
//! topic carrying another type, or the same type under another schema version, is refused
//! with `AttachError::TypeMismatch`. The fingerprint is a promise from a cooperating
//! publisher, not a proof: every message is still validated with bytecheck before it is
//! handed out, so bytes from a buggy or hostile publisher give
//! [`TypedRecvError::Invalid`], never undefined behaviour. Validation uses rkyv 0.8's
//! low-level validator (`rkyv::api::low::access`), which allocates nothing; it does not
//! support shared pointers (`Rc`, `Arc`), which the typed publisher cannot send either.
//!
//! Where the bytes live is the raw [`Subscriber`]'s business, as `docs/design.md` describes it: under
//! `Overwrite` a message is copied out of the slot with atomic loads into this subscriber's
//! own aligned buffer and the slot's stamp re-checked *before* validation, so the archive
//! that was validated cannot change afterwards. Under `Block` the message is validated and
//! read in place, and the slot stays held (the publisher cannot reuse it) until the
//! [`TypedSample`] drops. That last guarantee rests on the publisher following the ring
//! protocol: a process that maps the ring writable and rewrites a held slot behind the
//! protocol's back can change an archive after validation. Use `Overwrite` (which always
//! validates a private copy) where the publisher itself is not trusted to follow it.
//!
//! For trusted pipelines, [`TypedSubscriber::skip_validation`] turns the check off (an
//! `unsafe` call: the caller vouches for the publisher).

use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ops::Deref;
use std::time::Duration;

use ringcast_core::waitset::sealed::MemberImpl;
use ringcast_core::waitset::{Refusal, SleepTarget};
use ringcast_core::{AttachError, Overflow, TypeInfo};
use rkyv::api::low::{access, LowDeserializer, LowValidator};
use rkyv::api::{access_pos_unchecked, root_position};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor::{self, Source};
use rkyv::{Archive, Archived, Deserialize};

use crate::{RecvError, RecvTimeoutError, Sample, Subscriber, SubscriberOptions, TryRecvError};

/// The validator every typed message is checked with: rkyv's low-level, allocation-free
/// bytecheck context. `T` can be received when `Archived<T>: for<'a>
/// CheckBytes<SlotValidator<'a>>`, which `#[derive(Archive)]` provides (rkyv's `bytecheck`
/// feature, on by default, derives it).
pub type SlotValidator<'a> = LowValidator<'a, rancor::Error>;

/// The fingerprint of `T` as a message type: its name, the size and alignment of its
/// archived form, and `schema_version`. Identical to the typed publisher's.
///
/// ```
/// # use ringcast_subscriber::type_info_of;
/// let info = type_info_of::<u32>(1);
/// assert_eq!((info.size, info.align, info.schema_version), (4, 4, 1));
/// ```
pub fn type_info_of<T: Archive>(schema_version: u64) -> TypeInfo {
    TypeInfo::of_stored::<T, Archived<T>>(schema_version)
}

/// Why a typed receive returned no message: what the raw receive reports (`E` is
/// [`TryRecvError`], [`RecvError`] or [`RecvTimeoutError`]), or a message that failed
/// validation.
///
/// ```
/// use ringcast_subscriber::{RecvError, SubscriberOptions, TypedRecvError, TypedSubscriber};
/// # use ringcast_publisher::{PublisherConfig, TypedPublisher};
/// # let prefix = format!("rcdoc{}recverror", std::process::id());
/// # let mut publisher = TypedPublisher::<u64>::create("counter", PublisherConfig::default().prefix(&prefix))?;
/// # let opts = SubscriberOptions::default().prefix(&prefix);
///
/// let mut sub = TypedSubscriber::<u64>::attach("counter", opts)?;
/// # for n in 1..=3u64 { publisher.send(&n)?; }
/// # drop(publisher);
/// // Here the publisher sends 1, 2, 3 and closes the topic.
/// let mut got = Vec::new();
/// loop {
///     match sub.recv() {
///         Ok(n) => got.push(n.to_native()),
///         Err(TypedRecvError::Recv(RecvError::Lagged(n))) => eprintln!("lost {n}"),
///         Err(TypedRecvError::Recv(RecvError::Disconnected)) => break,
///         Err(e @ TypedRecvError::Invalid { .. }) => eprintln!("skipped: {e}"),
///         Err(e) => return Err(e.into()),
///     }
/// }
/// assert_eq!(got, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum TypedRecvError<E> {
    /// The raw receive returned no message (nothing yet, lagged, disconnected, ...).
    #[error(transparent)]
    Recv(#[from] E),
    /// Message `seq` is not a valid archive of the topic's type: the publisher is buggy
    /// or hostile. The message has been consumed (and, under `Block`, its slot released);
    /// the next receive moves on.
    #[error("message {seq} is not a valid {type_name}: {source}")]
    Invalid {
        /// The message's sequence number.
        seq: u64,
        /// The type it was checked as.
        type_name: &'static str,
        /// What bytecheck found wrong.
        #[source]
        source: rancor::Error,
    },
}

/// One subscriber of a typed topic: receives `&Archived<T>`, validated by default.
/// `Send`, not `Sync`.
///
/// ```
/// use ringcast_subscriber::{SubscriberOptions, TypedSubscriber};
/// # use ringcast_publisher::{PublisherConfig, TypedPublisher};
/// # let prefix = format!("rcdoc{}typedsub", std::process::id());
/// # let opts = SubscriberOptions::default().prefix(&prefix);
///
/// #[derive(rkyv::Archive, rkyv::Serialize)]
/// struct Pose {
///     x: f64,
///     y: f64,
///     frame: String,
/// }
///
/// # let mut publisher = TypedPublisher::<Pose>::create("pose", PublisherConfig::default().prefix(&prefix))?;
/// let mut sub = TypedSubscriber::<Pose>::attach("pose", opts)?;
/// # publisher.send(&Pose { x: 1.0, y: 2.0, frame: "map".into() })?;
/// let pose = sub.recv()?;
/// println!("#{}: ({}, {}) in {}", pose.seq(), pose.x, pose.y, pose.frame);
/// assert_eq!((pose.x.to_native(), pose.y.to_native(), pose.frame.as_str()), (1.0, 2.0, "map"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TypedSubscriber<T> {
    pub(crate) raw: Subscriber,
    /// Whether messages are checked with bytecheck (true unless `skip_validation`).
    pub(crate) validate: bool,
    _type: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for TypedSubscriber<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedSubscriber")
            .field("type", &std::any::type_name::<T>())
            .field("validate", &self.validate)
            .field("raw", &self.raw)
            .finish()
    }
}

impl<T> TypedSubscriber<T>
where
    T: Archive,
    Archived<T>: for<'a> CheckBytes<SlotValidator<'a>>,
{
    /// Attaches to a topic of `T` with schema version 0. Fails with `TypeMismatch` if the
    /// topic carries anything else, and at once if it does not exist (see
    /// [`attach_wait`](Self::attach_wait)). `opts`' expected type is replaced by `T`'s.
    pub fn attach(topic: &str, opts: SubscriberOptions) -> Result<Self, AttachError> {
        Self::attach_versioned(topic, opts, 0)
    }

    /// Like [`attach`](Self::attach), for schema version `schema_version`.
    ///
    /// ```
    /// # use ringcast_publisher::{PublisherConfig, TypedPublisher};
    /// # use ringcast_subscriber::{AttachError, SubscriberOptions, TypedSubscriber};
    /// # let prefix = format!("rcdoc{}attachver", std::process::id());
    /// # let config = PublisherConfig::default().prefix(&prefix);
    /// # let publisher = TypedPublisher::<(u32, f64)>::create_versioned("odometry", config, 2)?;
    /// # let opts = SubscriberOptions::default().prefix(&prefix);
    /// // "odometry" carries (u32, f64) under schema version 2.
    /// let sub = TypedSubscriber::<(u32, f64)>::attach_versioned("odometry", opts.clone(), 2)?;
    /// // Another version of the same type is refused.
    /// let old = TypedSubscriber::<(u32, f64)>::attach_versioned("odometry", opts, 1);
    /// assert!(matches!(old, Err(AttachError::TypeMismatch { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attach_versioned(
        topic: &str,
        opts: SubscriberOptions,
        schema_version: u64,
    ) -> Result<Self, AttachError> {
        let opts = opts.expect_type(type_info_of::<T>(schema_version));
        Self::wrap(Subscriber::attach(topic, opts)?)
    }

    /// Attaches to a topic of `T` (schema version 0), waiting up to `timeout` for a live
    /// publisher to create it.
    pub fn attach_wait(
        topic: &str,
        opts: SubscriberOptions,
        timeout: Duration,
    ) -> Result<Self, AttachError> {
        Self::attach_wait_versioned(topic, opts, 0, timeout)
    }

    /// Like [`attach_wait`](Self::attach_wait), for schema version `schema_version`.
    pub fn attach_wait_versioned(
        topic: &str,
        opts: SubscriberOptions,
        schema_version: u64,
        timeout: Duration,
    ) -> Result<Self, AttachError> {
        let opts = opts.expect_type(type_info_of::<T>(schema_version));
        Self::wrap(Subscriber::attach_wait(topic, opts, timeout)?)
    }

    fn wrap(raw: Subscriber) -> Result<Self, AttachError> {
        // The fingerprint matched, but the geometry is the segment's own word: in-place
        // access needs payloads aligned for the archived root (and rkyv for 16).
        let need = align_of::<Archived<T>>().max(16);
        let have = raw.payload_alignment();
        if have < need {
            return Err(AttachError::Geometry {
                topic: raw.topic().to_owned(),
                what: format!(
                    "payload alignment {have} is below the {need} bytes that {} needs",
                    std::any::type_name::<T>()
                ),
            });
        }
        Ok(TypedSubscriber {
            raw,
            validate: true,
            _type: PhantomData,
        })
    }

    /// Receives the next message if there is one, without waiting.
    #[inline]
    pub fn try_recv(&mut self) -> Result<TypedSample<'_, T>, TypedRecvError<TryRecvError>> {
        let validate = self.validate;
        TypedSample::check(self.raw.try_recv()?, validate)
    }

    /// Receives the next message, waiting as long as it takes; see [`Subscriber::recv`].
    pub fn recv(&mut self) -> Result<TypedSample<'_, T>, TypedRecvError<RecvError>> {
        let validate = self.validate;
        TypedSample::check(self.raw.recv()?, validate)
    }

    /// Receives the next message, waiting at most `timeout`.
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<TypedSample<'_, T>, TypedRecvError<RecvTimeoutError>> {
        let validate = self.validate;
        TypedSample::check(self.raw.recv_timeout(timeout)?, validate)
    }

    /// Stops validating messages: each is then only checked to be long enough and aligned
    /// for the archived root, and handed out as is. Saves the validation pass (a walk over
    /// the archive, proportional to its size) on every message.
    ///
    /// ```
    /// # use ringcast_publisher::{PublisherConfig, TypedPublisher};
    /// # use ringcast_subscriber::{SubscriberOptions, TypedSubscriber};
    /// # let prefix = format!("rcdoc{}skipvalid", std::process::id());
    /// # let mut publisher = TypedPublisher::<u64>::create("counter", PublisherConfig::default().prefix(&prefix))?;
    /// # let opts = SubscriberOptions::default().prefix(&prefix);
    /// let mut sub = TypedSubscriber::<u64>::attach("counter", opts)?;
    /// // SAFETY: "counter" is published only by our own TypedPublisher<u64>, built from the
    /// // same source, and no other process can write the segment (mode 0600, one user).
    /// unsafe { sub.skip_validation() };
    /// assert!(!sub.validates());
    /// # publisher.send(&42)?;
    /// assert_eq!(sub.recv()?.to_native(), 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Safety
    /// From now on, until [`validate_again`](Self::validate_again), every message
    /// committed on the topic must be a valid rkyv archive of `T`, as written by a
    /// `TypedPublisher<T>` built from the same definition of `T`, whose slots are aligned
    /// for every archived object inside it. No process may write a slot this subscriber
    /// holds (under `Block`) other than through the ring protocol. An invalid archive is
    /// undefined behaviour in this process.
    pub unsafe fn skip_validation(&mut self) {
        self.validate = false;
    }

    /// Turns validation back on (the default).
    pub fn validate_again(&mut self) {
        self.validate = true;
    }
}

impl<T> TypedSubscriber<T> {
    /// Whether messages are validated (true unless [`skip_validation`] was called).
    ///
    /// [`skip_validation`]: TypedSubscriber::skip_validation
    pub fn validates(&self) -> bool {
        self.validate
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        self.raw.topic()
    }

    /// The topic's overflow policy.
    pub fn overflow(&self) -> Overflow {
        self.raw.overflow()
    }

    /// Sequence number of the next message this subscriber will receive.
    pub fn next_seq(&self) -> u64 {
        self.raw.next_seq()
    }

    /// Messages lost to lapping since attach (`Overwrite`). Messages that failed
    /// validation are not counted here: each was reported as `Invalid`.
    pub fn lost(&self) -> u64 {
        self.raw.lost()
    }

    /// Whether a receive would return at once, without consuming anything.
    pub fn has_news(&self) -> bool {
        self.raw.has_news()
    }

    /// See [`Subscriber::origin`].
    pub fn origin(&self) -> Option<String> {
        self.raw.origin()
    }

    /// See [`Subscriber::upstream_lost`].
    pub fn upstream_lost(&self) -> u64 {
        self.raw.upstream_lost()
    }

    /// Whether the publisher is still alive (a system call: not for the hot path).
    pub fn publisher_alive(&self) -> bool {
        self.raw.publisher_alive()
    }
}

/// A received typed message: derefs to `Archived<T>`. Under `Block` it is read in place
/// in shared memory and the slot is released when the sample drops; under `Overwrite` it
/// lives in the subscriber's own verified copy.
pub struct TypedSample<'a, T: Archive> {
    /// Points into `sample`'s payload. Valid only while `sample` lives, so it is only ever
    /// handed out re-borrowed from `&self`.
    archived: &'a Archived<T>,
    sample: Sample<'a>,
}

impl<'a, T> TypedSample<'a, T>
where
    T: Archive,
    Archived<T>: for<'v> CheckBytes<SlotValidator<'v>>,
{
    /// Validates (or, trusted, only bounds-checks) the archive in `sample`.
    #[inline]
    pub(crate) fn check<E>(sample: Sample<'a>, validate: bool) -> Result<Self, TypedRecvError<E>> {
        let bytes = sample.payload();
        let invalid = |source| TypedRecvError::Invalid {
            seq: sample.seq(),
            type_name: std::any::type_name::<T>(),
            source,
        };
        let archived = if validate {
            access::<Archived<T>, rancor::Error>(bytes).map_err(invalid)?
        } else {
            let pos = root_position::<Archived<T>>(bytes.len());
            let root = bytes.as_ptr().wrapping_add(pos);
            if bytes.len() < size_of::<Archived<T>>()
                || !(root as usize).is_multiple_of(align_of::<Archived<T>>())
            {
                return Err(invalid(rancor::Error::new(RootOutOfPlace {
                    len: bytes.len(),
                    size: size_of::<Archived<T>>(),
                    align: align_of::<Archived<T>>(),
                })));
            }
            // SAFETY: `skip_validation`'s caller vouched that every committed message is a
            // valid archive of `T` with its root at the end; the root is in bounds and
            // aligned (checked above).
            unsafe { access_pos_unchecked::<Archived<T>>(bytes, pos) }
        };
        Ok(TypedSample { archived, sample })
    }
}

impl<T: Archive> TypedSample<'_, T> {
    /// The message's sequence number (0 for the topic's first message).
    pub fn seq(&self) -> u64 {
        self.sample.seq()
    }

    /// The archive's bytes, root object last.
    pub fn bytes(&self) -> &[u8] {
        self.sample.bytes()
    }

    /// Deserializes the archive into an owned `T` (allocating as `T` needs).
    ///
    /// ```
    /// # use ringcast_publisher::{PublisherConfig, TypedPublisher};
    /// # use ringcast_subscriber::{SubscriberOptions, TypedSubscriber};
    /// # let prefix = format!("rcdoc{}deserialize", std::process::id());
    /// # let mut publisher =
    /// #     TypedPublisher::<Vec<String>>::create("names", PublisherConfig::default().prefix(&prefix))?;
    /// # let opts = SubscriberOptions::default().prefix(&prefix);
    /// let mut sub = TypedSubscriber::<Vec<String>>::attach("names", opts)?;
    /// # publisher.send(&vec!["ada".to_owned(), "alan".to_owned()])?;
    /// let names: Vec<String> = sub.recv()?.deserialize()?;
    /// assert_eq!(names, ["ada", "alan"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deserialize(&self) -> Result<T, rancor::Error>
    where
        Archived<T>: Deserialize<T, LowDeserializer<rancor::Error>>,
    {
        rkyv::api::low::deserialize::<T, rancor::Error>(self.archived)
    }
}

impl<T: Archive> Deref for TypedSample<'_, T> {
    type Target = Archived<T>;
    #[inline]
    fn deref(&self) -> &Archived<T> {
        self.archived
    }
}

impl<T: Archive> std::fmt::Debug for TypedSample<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedSample")
            .field("type", &std::any::type_name::<T>())
            .field("seq", &self.seq())
            .field("len", &self.bytes().len())
            .finish()
    }
}

/// A trusted (unvalidated) message whose root cannot be where rkyv looks for it.
#[derive(Debug)]
struct RootOutOfPlace {
    len: usize,
    size: usize,
    align: usize,
}

impl std::fmt::Display for RootOutOfPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a {}-byte message cannot end in a {}-byte root aligned to {}",
            self.len, self.size, self.align
        )
    }
}

impl std::error::Error for RootOutOfPlace {}

// SAFETY: delegates to the raw subscriber this one owns for its whole life.
unsafe impl<T: 'static> MemberImpl for TypedSubscriber<T> {
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
