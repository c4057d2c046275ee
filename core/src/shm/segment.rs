//! Creating, reclaiming, opening and validating segments in `/dev/shm`.
//!
//! **Create** builds the whole segment as an *unnamed* file (`O_TMPFILE` in the shm
//! directory, mode 0600 unless asked otherwise, memory reserved with `posix_fallocate` so a
//! full /dev/shm fails here and not later with SIGBUS), takes the publisher lock, writes the
//! magic/version word last, and only then gives it the topic's name with `linkat(2)`, which
//! fails if the name exists. So nobody ever sees a half-made segment under a topic name,
//! creation is exclusive, and a creator that dies at any instant leaves nothing behind: the
//! kernel frees an unnamed file with its last descriptor.
//!
//! **Removing a name that may not be ours** (reclaiming a dead publisher's topic, `gc`) is
//! done only under the file's *remover lock* (an OFD lock on [`lock::REMOVER_BYTE`]), after
//! checking, under that lock, that its publisher lock is free and that the name still means
//! this file. Every party that unlinks a name it did not create follows that rule, so the
//! check and the unlink cannot be split by a reclaimer giving the name to a new, live file.
//!
//! **Open** refuses anything that is not a regular file (`O_NOFOLLOW | O_NONBLOCK`, then
//! `fstat`: a FIFO, socket, directory or symlink named like a segment never hangs or
//! confuses us), reads the fixed header with `pread` (never through a mapping, so a short or
//! hostile file cannot fault us), validates magic, version, every geometry field and the
//! file size, checks the message type, and only then maps: the header read-write, the ring
//! read-only for subscribers.

use std::fs::File;
use std::io;
use std::mem::offset_of;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memmap2::MmapOptions;

use crate::trust::{Owner, Trust};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::shm_unlink;
use nix::sys::stat::Mode;

use crate::error::{AttachError, CreateError};
use crate::geometry::{Geometry, SegmentConfig, HEADER_BYTES};
use crate::layout::{Header, Identity, Overflow, TypeInfo, MAGIC, MAGIC_VERSION};
use crate::lock;
use crate::memory::SegmentMemory;
use crate::name::{shm_name, shm_path, validate_prefix, validate_topic, SHM_DIR};
use crate::sync::Ordering;

/// How an open segment is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Subscribe: header read-write, ring read-only.
    Subscribe,
    /// Look only (`ringcast inspect`, `gc`): everything read-only.
    Inspect,
    /// Join as another publisher of a topic that several share: everything read-write.
    Publish,
}

/// What a subscriber accepts from a segment before mapping anything: whose it is (see
/// [`crate::trust`]), and how large (a hostile header over a sparse file can claim up to
/// the format's limits, 1 GiB slots and a 1 TiB segment). The defaults are the caller's
/// own user and root, and those limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachLimits {
    /// Largest slot payload accepted, in bytes.
    pub max_slot_bytes: u64,
    /// Largest whole segment accepted, in bytes.
    pub max_segment_bytes: u64,
    /// Whose segments are accepted.
    pub trust: Trust,
}

impl Default for AttachLimits {
    fn default() -> Self {
        AttachLimits {
            max_slot_bytes: crate::geometry::MAX_SLOT_BYTES,
            max_segment_bytes: crate::geometry::MAX_TOTAL_BYTES,
            trust: Trust::default(),
        }
    }
}

/// Where and how to create a topic.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Segment name prefix (default `ringcast`).
    pub prefix: String,
    /// Ring geometry, policy and type.
    pub config: SegmentConfig,
    /// Permission bits of the segment file (default 0o600).
    pub mode: u32,
    /// Prefault and/or lock the publisher's mapping.
    pub memory: crate::residency::MemoryOptions,
    /// Where the topic's messages come from when it re-publishes another one (a bridge's
    /// import): at most [`ORIGIN_BYTES`](crate::layout::ORIGIN_BYTES) bytes, no control
    /// characters. `None` for a local topic.
    pub origin: Option<String>,
    /// Join a live topic that admits several publishers, with the configuration it has
    /// (`config` is ignored); never create one: [`CreateError::NothingToJoin`] if there is
    /// no such topic or none of its publishers is alive.
    pub join_only: bool,
    /// Whose shared topics this publisher joins (see [`crate::trust`]): by default its own
    /// user's and root's. A topic another user holds is refused as
    /// [`CreateError::AlreadyPublished`] naming that user, as when creating it.
    pub trust: Trust,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            prefix: crate::name::DEFAULT_PREFIX.to_owned(),
            config: SegmentConfig::default(),
            mode: 0o600,
            memory: Default::default(),
            origin: None,
            join_only: false,
            trust: Trust::default(),
        }
    }
}

/// A segment this process has open: its mapping, its file (which carries our locks) and
/// its name. Crate-private in all but name: users reach segments through
/// [`crate::endpoint`] and [`crate::inspect`].
pub(crate) struct Segment {
    memory: Arc<SegmentMemory>,
    file: File,
    topic: String,
    shm_name: String,
}

pub use crate::residency::page_size;

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// Why an existing segment file could not be opened.
#[derive(Debug)]
pub(crate) enum OpenFail {
    /// Nothing has the name.
    Missing,
    /// No permission.
    Denied,
    /// The name is taken by something that is not a regular file.
    NotRegular(&'static str),
    /// Any other error.
    Io(io::Error),
}

/// Opens the existing file behind shared-memory object `name` without following a
/// symlink and without blocking (a FIFO would block a plain open for ever), and makes
/// sure it is a regular file.
pub(crate) fn open_existing(name: &str, write: bool) -> Result<File, OpenFail> {
    let mut flags = OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    flags |= if write {
        OFlag::O_RDWR
    } else {
        OFlag::O_RDONLY
    };
    let fd = match nix::fcntl::open(&shm_path(name), flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(OpenFail::Missing),
        Err(Errno::EACCES | Errno::EPERM) => return Err(OpenFail::Denied),
        Err(Errno::ELOOP) => return Err(OpenFail::NotRegular("symbolic link")),
        Err(Errno::EISDIR) => return Err(OpenFail::NotRegular("directory")),
        Err(Errno::ENXIO | Errno::ENODEV) => return Err(OpenFail::NotRegular("socket or device")),
        Err(e) => return Err(OpenFail::Io(e.into())),
    };
    // SAFETY: `open` just returned this descriptor, and nothing else owns it.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let kind = file.metadata().map_err(OpenFail::Io)?.file_type();
    if !kind.is_file() {
        return Err(OpenFail::NotRegular(file_kind(&kind)));
    }
    Ok(file)
}

fn file_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_symlink() {
        "symbolic link"
    } else if kind.is_block_device() || kind.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

/// A new, unnamed file in the shm directory (`O_TMPFILE`): if we die before it is linked
/// under a name, the kernel frees it with our descriptors.
fn create_unnamed(mode: u32) -> nix::Result<File> {
    let fd = nix::fcntl::open(
        SHM_DIR,
        OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )?;
    // SAFETY: `open` just returned this descriptor, and nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Gives the unnamed `file` the shared-memory name `name`; fails with EEXIST if the name
/// exists. Through `/proc/self/fd` (no privilege needed), or `AT_EMPTY_PATH` where /proc
/// is not mounted (needs CAP_DAC_READ_SEARCH).
fn link_unnamed(file: &File, name: &str) -> nix::Result<()> {
    let dest = shm_path(name);
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    match nix::unistd::linkat(
        None,
        std::path::Path::new(&proc_path),
        None,
        dest.as_path(),
        nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
    ) {
        Err(Errno::ENOENT) if std::fs::metadata("/proc/self/fd").is_err() => nix::unistd::linkat(
            Some(file.as_raw_fd()),
            std::path::Path::new(""),
            None,
            dest.as_path(),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        ),
        r => r,
    }
}

/// What [`remove_if_dead`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    /// The publisher was dead and the name meant this file: it is unlinked.
    Removed,
    /// A live process holds the publisher lock: left alone.
    Alive,
    /// The name no longer means this file (removed or replaced meanwhile): left alone.
    Moved,
}

/// Unlinks `name` if it still means `file` and `file`'s publisher is dead, deciding and
/// unlinking under `file`'s remover lock (see the module docs). `file` must be open for
/// writing (write locks need it).
///
/// Under the remover lock it also *takes* the dead publisher's lock (rather than only
/// testing it) and holds it until after the unlink: ringcast builds from before the remover
/// lock serialize their reclaims on that byte, so they cannot replace the name in the gap
/// either.
pub(crate) fn remove_if_dead(file: &File, name: &str) -> io::Result<Removal> {
    let _remover = lock::RemoverLock::take(file.as_fd())?;
    // Every lane's publisher must be dead: take each lane's lock (lane 0's is the
    // publisher lock) and hold them until after the unlink.
    let lanes = lanes_of(file);
    let mut taken = 0;
    while taken < lanes {
        if !lock::try_lock(file.as_fd(), lock::lane_byte(taken))? {
            for l in 0..taken {
                let _ = lock::unlock(file.as_fd(), lock::lane_byte(l));
            }
            return Ok(Removal::Alive);
        }
        taken += 1;
    }
    let removal = if !names_file(name, file) {
        Ok(Removal::Moved)
    } else {
        match shm_unlink(name) {
            Ok(()) => Ok(Removal::Removed),
            Err(Errno::ENOENT) => Ok(Removal::Moved),
            Err(e) => Err(e.into()),
        }
    };
    for l in 0..lanes {
        let _ = lock::unlock(file.as_fd(), lock::lane_byte(l));
    }
    removal
}

/// The lane count a segment file's header states (read with `pread`), clamped to
/// `1 ..= MAX_PUBLISHERS`: a corrupt count never makes us check fewer than one lane nor
/// loop for ever.
fn lanes_of(file: &File) -> usize {
    let mut raw = [0u8; 8];
    let n = match file.read_at(&mut raw, offset_of!(Identity, max_publishers) as u64) {
        Ok(8) => u64::from_ne_bytes(raw),
        _ => 1,
    };
    n.clamp(1, crate::geometry::MAX_PUBLISHERS) as usize
}

/// Whether `file` starts with ringcast's magic number (any layout version), read with
/// `pread`.
pub(crate) fn has_magic(file: &File) -> bool {
    let mut magic = [0u8; 8];
    matches!(file.read_at(&mut magic, 0), Ok(8))
        && (u64::from_ne_bytes(magic) >> 32) as u32 == MAGIC
}

/// Whether shared-memory object `name` is (still) the file `file` (same device and inode).
fn names_file(name: &str, file: &File) -> bool {
    match (std::fs::symlink_metadata(shm_path(name)), file.metadata()) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

impl Segment {
    /// Creates the segment of `topic`, or reclaims it if its publisher is dead, or (for a
    /// topic that several publishers share) joins it; returns the segment and the lane
    /// this publisher writes (whose lock it holds).
    pub(crate) fn create(
        topic: &str,
        opts: &CreateOptions,
    ) -> Result<(Segment, usize), CreateError> {
        let t = || topic.to_owned();
        validate_topic(topic).map_err(|source| CreateError::Name { topic: t(), source })?;
        validate_prefix(&opts.prefix).map_err(|source| CreateError::Name {
            topic: opts.prefix.clone(),
            source,
        })?;
        if opts.mode & !0o666 != 0 || opts.mode & 0o600 != 0o600 {
            return Err(CreateError::Config {
                topic: t(),
                source: crate::error::ConfigError::Mode(opts.mode),
            });
        }
        if opts.join_only {
            return Self::join_existing(topic, opts);
        }
        let g = Geometry::compute(&opts.config, page_size(), random_u64())
            .map_err(|source| CreateError::Config { topic: t(), source })?;
        let shared = g.max_publishers > 1;
        if shared {
            if let Some(joined) = Self::join(topic, opts)? {
                return Ok(joined);
            }
        }
        let origin = opts.origin.clone().unwrap_or_default();
        let bad_origin = opts.origin.as_ref().is_some_and(|o| o.is_empty())
            || origin.len() > crate::layout::ORIGIN_BYTES
            || origin.chars().any(char::is_control);
        if bad_origin {
            return Err(CreateError::Config {
                topic: t(),
                source: crate::error::ConfigError::Origin(origin),
            });
        }
        let io_err = |op: &'static str| {
            move |e: Errno| match e {
                Errno::EACCES | Errno::EPERM => CreateError::PermissionDenied {
                    topic: t(),
                    holder: None,
                },
                Errno::ENOSPC => CreateError::NoSpace {
                    topic: t(),
                    bytes: g.total_size,
                },
                e => CreateError::Io {
                    topic: t(),
                    op,
                    source: e.into(),
                },
            }
        };

        if opts.memory.huge_pages {
            crate::residency::huge_pages_offered(SHM_DIR)
                .map_err(|reason| CreateError::HugePagesUnavailable { topic: t(), reason })?;
        }
        // 1. Build it as an unnamed file: nothing to clean up if we die before step 2.
        let file = create_unnamed(opts.mode).map_err(io_err("open(O_TMPFILE) in /dev/shm"))?;
        // The umask may have narrowed the mode; set exactly what was asked.
        nix::sys::stat::fchmod(file.as_raw_fd(), Mode::from_bits_truncate(opts.mode))
            .map_err(io_err("fchmod"))?;
        // Huge pages: no fallocate, which allocates without the mapping's MADV_HUGEPAGE
        // (small pages on a `huge=advise` mount); the prefault that huge pages imply
        // reserves the memory instead, through the advised mapping.
        let reserved = !opts.memory.huge_pages
            && match nix::fcntl::posix_fallocate(file.as_raw_fd(), 0, g.total_size as i64) {
                Ok(()) => true,
                // Filesystems without fallocate: plain ftruncate below.
                Err(Errno::EOPNOTSUPP | Errno::EINVAL) => false,
                Err(e) => return Err(io_err("posix_fallocate")(e)),
            };
        if !reserved {
            file.set_len(g.total_size).map_err(|e| CreateError::Io {
                topic: t(),
                op: "ftruncate",
                source: e,
            })?;
        }
        if !lock::try_lock(file.as_fd(), lock::PUBLISHER_BYTE).map_err(|e| CreateError::Io {
            topic: t(),
            op: "fcntl(F_OFD_SETLK)",
            source: e,
        })? {
            return Err(CreateError::AlreadyPublished {
                topic: t(),
                holder: Owner::of_file(&file),
            });
        }
        let map = MmapOptions::new()
            .len(g.total_size as usize)
            .map_raw(&file)
            .map_err(|e| CreateError::Io {
                topic: t(),
                op: "mmap",
                source: e,
            })?;
        let base = map.as_mut_ptr();
        // SAFETY: `map` is our live mapping of `total_size` bytes, and no other process
        // can reach it yet (the file has no name, and we hold its only descriptor).
        unsafe { crate::residency::apply(base, g.total_size as usize, true, opts.memory) }
            .map_err(|(op, source)| match source.raw_os_error() {
                // A prefault that found the tmpfs full (EFAULT: the fault's SIGBUS).
                Some(libc::EFAULT | libc::ENOMEM) if op == crate::residency::PREFAULT_OP => {
                    CreateError::NoSpace {
                        topic: t(),
                        bytes: g.total_size,
                    }
                }
                _ if op == crate::residency::HUGE_POPULATE_OP => {
                    CreateError::HugePagesUnavailable {
                        topic: t(),
                        reason: crate::residency::NO_POPULATE_REASON.to_owned(),
                    }
                }
                _ => CreateError::Memory {
                    topic: t(),
                    op,
                    bytes: g.total_size,
                    source,
                },
            })?;
        // SAFETY: the mapping is total_size >= header_size > size_of::<Header>() bytes,
        // page-aligned (so aligned for Header), freshly zeroed, and not yet visible to any
        // other process (the file has no name yet, and we hold its only descriptor).
        unsafe {
            std::ptr::write(
                base as *mut Header,
                g.new_header(std::process::id() as u64, &origin),
            )
        };
        // SAFETY: as above, the ring starts header_size bytes in, inside the mapping.
        let ring = unsafe { base.add(g.header_size as usize) };
        // SAFETY: base/ring point into `map`, which the memory keeps; the geometry is ours;
        // the header is initialized and the table and slots are zero (valid "free"/"empty").
        let memory = Arc::new(unsafe { SegmentMemory::from_maps(g, base, ring, vec![map]) });
        // Relaxed, all of them: nobody else can see the file yet (the link below orders
        // these stores before any attach, as for the header).
        for l in 0..g.max_publishers as usize {
            // Nothing is written yet and no subscriber exists: a lane's publisher may
            // fill its ring once before it has to look at the table.
            let lane = memory.lane(l);
            lane.publisher
                .gate_limit
                .store(g.slot_count - 1, Ordering::Relaxed);
        }

        // Release: no atomic load pairs with it (attachers `pread` the header, and only
        // after `linkat` below has named the file: the system calls order it). Release
        // keeps "complete once set" true for anything that ever loads it from a mapping,
        // at no cost (a plain store on x86).
        memory
            .header()
            .identity
            .magic_version
            .store(MAGIC_VERSION, Ordering::Release);

        // 2. Give it the topic's name, reclaiming a dead predecessor.
        let name = shm_name(&opts.prefix, topic);
        let mut tries = 0;
        loop {
            tries += 1;
            match link_unnamed(&file, &name) {
                Ok(()) => break,
                Err(Errno::EEXIST) if tries < 16 => {
                    if shared {
                        // Another publisher created it meanwhile: join it instead.
                        if let Some(joined) = Self::join(topic, opts)? {
                            return Ok(joined);
                        }
                    }
                    Self::reclaim_dead(topic, &name, g.max_publishers)?
                }
                Err(e) => return Err(io_err("linkat")(e)),
            }
        }
        tracing::info!(topic, slots = g.slot_count, slot_size = g.slot_capacity, overflow = ?g.overflow, "created topic");
        let segment = Segment {
            memory,
            file,
            topic: topic.to_owned(),
            shm_name: name,
        };
        // We are lane 0's first publisher (its lock is the publisher lock taken above).
        Ok((segment, 0))
    }

    /// Joins `topic` as another publisher if it exists, admits several publishers, has a
    /// live one, matches `opts` and has a free lane: returns the segment and the lane
    /// taken (its lock held). `Ok(None)` if there is nothing to join (no
    /// such topic, or no live publisher: the caller creates or reclaims it). Joining and
    /// leaving are serialized by the segment's remover lock, which is also what a last
    /// publisher holds while it closes and unlinks the topic, so a join never lands in a
    /// topic that is ending.
    pub(crate) fn join(
        topic: &str,
        opts: &CreateOptions,
    ) -> Result<Option<(Segment, usize)>, CreateError> {
        let t = || topic.to_owned();
        let Some(segment) = Self::open_to_join(topic, opts)? else {
            return Ok(None);
        };
        let g = *segment.memory.geometry();
        let existing = g.config();
        if existing.max_publishers == 1 {
            // An exclusive topic: create's reclaim says who holds it (or takes it if dead).
            return Ok(None);
        }
        if let Some((field, found, want)) = mismatch(&existing, &opts.config) {
            return Err(CreateError::Mismatch {
                topic: t(),
                field,
                existing: found,
                requested: want,
            });
        }
        let io = |op| {
            move |e| CreateError::Io {
                topic: t(),
                op,
                source: e,
            }
        };
        let taken = {
            let _membership = lock::RemoverLock::take(segment.file.as_fd()).map_err(io("lock"))?;
            // Acquire: pairs with the Release close of the last publisher (under this
            // lock).
            let closed = segment
                .memory
                .header()
                .sub_wake
                .state
                .load(Ordering::Acquire)
                == crate::layout::PUB_CLOSED;
            if closed || !segment.any_lane_alive() || !names_file(&segment.shm_name, &segment.file)
            {
                return Ok(None);
            }
            let mut taken = None;
            for l in 0..g.max_publishers as usize {
                if lock::try_lock(segment.file.as_fd(), lock::lane_byte(l)).map_err(io("lock"))? {
                    taken = Some(l);
                    break;
                }
            }
            taken
        };
        match taken {
            Some(l) => {
                tracing::info!(topic, lane = l, "joined topic as another publisher");
                Ok(Some((segment, l)))
            }
            None => Err(CreateError::PublishersFull {
                topic: t(),
                max: g.max_publishers,
            }),
        }
    }

    /// Opens `topic` to join it as a publisher: `Ok(None)` if there is no such segment, or
    /// it is not one of ours (another layout, corrupt: create's reclaim decides, and it
    /// refuses what is not a dead ringcast segment); another owner's segment is named.
    fn open_to_join(topic: &str, opts: &CreateOptions) -> Result<Option<Segment>, CreateError> {
        match Segment::open(
            &opts.prefix,
            topic,
            Access::Publish,
            None,
            Duration::from_millis(250),
            &AttachLimits {
                trust: opts.trust.clone(),
                ..AttachLimits::default()
            },
        ) {
            Ok(s) => Ok(Some(s)),
            Err(AttachError::UntrustedOwner { owner, .. }) => Err(CreateError::AlreadyPublished {
                topic: topic.to_owned(),
                holder: owner,
            }),
            Err(AttachError::PermissionDenied { .. }) => Err(CreateError::PermissionDenied {
                topic: topic.to_owned(),
                holder: Owner::of_path(&shm_path(&shm_name(&opts.prefix, topic))),
            }),
            Err(_) => Ok(None),
        }
    }

    /// Joins `topic` with the configuration it has (see [`CreateOptions::join_only`]).
    fn join_existing(topic: &str, opts: &CreateOptions) -> Result<(Segment, usize), CreateError> {
        let nothing = || CreateError::NothingToJoin {
            topic: topic.to_owned(),
        };
        let existing = match Self::open_to_join(topic, opts)? {
            Some(segment) => segment.memory.geometry().config(),
            None => return Err(nothing()),
        };
        if existing.max_publishers == 1 {
            return Err(nothing());
        }
        // The configuration read above, checked again by `join` against the segment it
        // opens (a topic re-created in between with another one is a `Mismatch`).
        let adopted = CreateOptions {
            config: existing,
            join_only: false,
            ..opts.clone()
        };
        Self::join(topic, &adopted)?.ok_or_else(nothing)
    }

    /// Whether another open file description holds some lane's lock.
    fn any_lane_alive(&self) -> bool {
        (0..self.memory.geometry().max_publishers as usize).any(|l| self.lane_alive(l))
    }

    /// Leaves lane `lane` (ours): marks it left and gives up its lock, and if no other
    /// publisher is left, runs `close` (which closes the topic) and removes the name, all
    /// under the remover lock (see [`join`](Self::join)).
    pub(crate) fn leave(&self, lane: usize, close: impl FnOnce()) {
        let membership = lock::RemoverLock::take(self.file.as_fd());
        // Relaxed: informational (inspect); the lock release below orders it anyway.
        self.memory
            .lane(lane)
            .owner
            .state
            .store(crate::layout::LANE_LEFT, Ordering::Relaxed);
        let _ = lock::unlock(self.file.as_fd(), lock::lane_byte(lane));
        // Without the membership lock (a hostile holder) we close as if we were last: a
        // subscriber that sees the topic closed while others still publish is told so by
        // its liveness check, never handed a wrong message.
        if membership.is_err() || !self.any_lane_alive() {
            close();
            self.unlink();
        }
        drop(membership);
    }

    /// The name exists: if it is a ringcast segment whose publisher is dead, unlink it
    /// (under its remover lock, see the module docs) so that our link can take the name.
    fn reclaim_dead(topic: &str, name: &str, requested_lanes: u64) -> Result<(), CreateError> {
        let t = || topic.to_owned();
        let io = |op| {
            move |e| CreateError::Io {
                topic: t(),
                op,
                source: e,
            }
        };
        let old = match open_existing(name, true) {
            Ok(f) => f,
            Err(OpenFail::Missing) => return Ok(()), // gone meanwhile: retry the link
            Err(OpenFail::Denied) => {
                return Err(CreateError::PermissionDenied {
                    topic: t(),
                    holder: Owner::of_path(&shm_path(name)),
                })
            }
            Err(OpenFail::NotRegular(_)) => return Err(CreateError::NotASegment { topic: t() }),
            Err(OpenFail::Io(e)) => return Err(io("open")(e)),
        };
        if !has_magic(&old) {
            return Err(CreateError::NotASegment { topic: t() });
        }
        let lanes = lanes_of(&old) as u64;
        match remove_if_dead(&old, name) {
            // A live topic that admits another number of publishers than asked for: say
            // what differs (a publisher of a shared topic joins before it gets here).
            Ok(Removal::Alive) if lanes != requested_lanes => Err(CreateError::Mismatch {
                topic: t(),
                field: "max publishers",
                existing: lanes.to_string(),
                requested: requested_lanes.to_string(),
            }),
            Ok(Removal::Alive) => Err(CreateError::AlreadyPublished {
                topic: t(),
                holder: Owner::of_file(&old),
            }),
            Ok(Removal::Removed) => {
                tracing::info!(topic, "reclaimed the segment of a dead publisher");
                Ok(())
            }
            Ok(Removal::Moved) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                Err(CreateError::PermissionDenied {
                    topic: t(),
                    holder: Some(Owner::of_file(&old)),
                })
            }
            Err(e) => Err(io("remove the dead segment")(e)),
        }
    }

    /// Opens the segment of `topic` under `prefix`, validating it; `expected` is the message
    /// type the caller wants (`None` accepts any). A segment still being initialized is
    /// waited for up to `init_wait`.
    pub(crate) fn open(
        prefix: &str,
        topic: &str,
        access: Access,
        expected: Option<&TypeInfo>,
        init_wait: Duration,
        limits: &AttachLimits,
    ) -> Result<Segment, AttachError> {
        let t = || topic.to_owned();
        validate_topic(topic).map_err(|source| AttachError::Name { topic: t(), source })?;
        validate_prefix(prefix).map_err(|source| AttachError::Name {
            topic: prefix.to_owned(),
            source,
        })?;
        let name = shm_name(prefix, topic);
        let file = open_existing(&name, access != Access::Inspect).map_err(|e| match e {
            OpenFail::Missing => AttachError::NotFound { topic: t() },
            OpenFail::Denied => AttachError::PermissionDenied { topic: t() },
            OpenFail::NotRegular(kind) => AttachError::NotRegularFile { topic: t(), kind },
            OpenFail::Io(source) => AttachError::Io {
                topic: t(),
                op: "open",
                source,
            },
        })?;
        let io = |op| {
            move |e| AttachError::Io {
                topic: t(),
                op,
                source: e,
            }
        };
        // Whose it is, asked of the descriptor we will map (not of the name, which may be
        // replaced meanwhile).
        let meta = file.metadata().map_err(io("fstat"))?;
        if !limits.trust.trusts(meta.uid(), meta.gid()) {
            return Err(AttachError::UntrustedOwner {
                topic: t(),
                owner: Owner::of_uid(meta.uid()),
            });
        }

        // Read the fixed header, waiting (bounded) while the magic is not yet there.
        let started = Instant::now();
        let mut raw = [0u8; HEADER_BYTES as usize];
        let file_size = loop {
            let size = file.metadata().map_err(io("fstat"))?.len();
            let n = file.read_at(&mut raw, 0).map_err(io("pread"))?;
            let magic = if n >= 8 { word(&raw, 0) } else { 0 };
            if magic != 0 {
                if (magic >> 32) as u32 != MAGIC {
                    return Err(AttachError::NotASegment { topic: t() });
                }
                if magic != MAGIC_VERSION {
                    return Err(AttachError::Version {
                        topic: t(),
                        found: magic as u32,
                        expected: crate::layout::LAYOUT_VERSION,
                    });
                }
                if (n as u64) < HEADER_BYTES {
                    return Err(AttachError::TooSmall {
                        topic: t(),
                        actual: size,
                        needed: HEADER_BYTES,
                    });
                }
                break size;
            }
            if started.elapsed() >= init_wait {
                return Err(AttachError::NotReady {
                    topic: t(),
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        };

        let g = parse_geometry(&raw).map_err(|what| AttachError::Geometry { topic: t(), what })?;
        if g.total_size > file_size || g.header_size > file_size {
            return Err(AttachError::TooSmall {
                topic: t(),
                actual: file_size,
                needed: g.total_size.max(g.header_size),
            });
        }
        g.validate(file_size, page_size())
            .map_err(|what| AttachError::Geometry { topic: t(), what })?;
        for (what, size, limit) in [
            ("slot size", g.slot_capacity, limits.max_slot_bytes),
            ("segment size", g.total_size, limits.max_segment_bytes),
        ] {
            if size > limit {
                return Err(AttachError::OverLimit {
                    topic: t(),
                    what,
                    size,
                    limit,
                });
            }
        }
        if let Some(want) = expected {
            if *want != g.type_info {
                return Err(AttachError::TypeMismatch {
                    topic: t(),
                    expected: Box::new(*want),
                    found: Box::new(g.type_info),
                });
            }
        }

        let header_len = g.header_size as usize;
        let ring_len = (g.total_size - g.header_size) as usize;
        let map_err = |e| AttachError::Io {
            topic: t(),
            op: "mmap",
            source: e,
        };
        let (hmap, rmap) = match access {
            Access::Subscribe => (
                MmapOptions::new().len(header_len).map_raw(&file),
                MmapOptions::new()
                    .offset(g.header_size)
                    .len(ring_len)
                    .map_raw_read_only(&file),
            ),
            Access::Inspect => (
                MmapOptions::new().len(header_len).map_raw_read_only(&file),
                MmapOptions::new()
                    .offset(g.header_size)
                    .len(ring_len)
                    .map_raw_read_only(&file),
            ),
            Access::Publish => (
                MmapOptions::new().len(header_len).map_raw(&file),
                MmapOptions::new()
                    .offset(g.header_size)
                    .len(ring_len)
                    .map_raw(&file),
            ),
        };
        let (hmap, rmap) = (hmap.map_err(map_err)?, rmap.map_err(map_err)?);
        let (base, ring) = (hmap.as_mut_ptr(), rmap.as_mut_ptr());
        // SAFETY: `base` maps the first header_size bytes and `ring` the rest, both kept
        // alive by the memory; the geometry was validated against the file above. With
        // `Inspect` the header is read-only: inspect code only loads from it.
        let memory = unsafe { SegmentMemory::from_maps(g, base, ring, vec![hmap, rmap]) };
        Ok(Segment {
            memory: Arc::new(memory),
            file,
            topic: t(),
            shm_name: name,
        })
    }

    /// The mapped memory.
    #[inline]
    pub(crate) fn memory(&self) -> &Arc<SegmentMemory> {
        &self.memory
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Whether some live process holds this segment's publisher lock. (In the publisher's
    /// own process, with its own descriptor, this answers `false`: use it from elsewhere.)
    ///
    /// On a topic that several publishers share, "some lane's lock is held"; a topic that
    /// looks dead is looked at again under the remover lock, which joiners hold while
    /// they join, so "dead" is final: a publisher arriving later starts a new topic.
    pub fn publisher_alive(&self) -> bool {
        // An error here (it cannot happen on a valid descriptor) counts as alive: we never
        // declare a publisher dead without the kernel saying so.
        if self.any_lane_alive() {
            return true;
        }
        if self.memory.geometry().max_publishers == 1 {
            return false;
        }
        match lock::RemoverLock::take(self.file.as_fd()) {
            Ok(_membership) => self.any_lane_alive(),
            Err(_) => true,
        }
    }

    /// Whether a live process (other than this descriptor) holds lane `l`'s lock.
    pub fn lane_alive(&self, l: usize) -> bool {
        lock::is_locked(self.file.as_fd(), lock::lane_byte(l)).unwrap_or(true)
    }

    /// Whether a live process owns subscriber table entry `i`.
    pub fn entry_alive(&self, i: usize) -> bool {
        lock::is_locked(self.file.as_fd(), lock::entry_byte(i)).unwrap_or(true)
    }

    /// Takes table entry `i`'s lock if no live owner holds it (a failed check counts as
    /// "held": we never treat an entry as dead without the kernel saying so).
    pub(crate) fn try_lock_entry(&self, i: usize) -> bool {
        lock::try_lock(self.file.as_fd(), lock::entry_byte(i)).unwrap_or(false)
    }

    /// Releases entry `i`'s lock taken with [`try_lock_entry`](Self::try_lock_entry).
    pub(crate) fn unlock_entry(&self, i: usize) {
        let _ = lock::unlock(self.file.as_fd(), lock::entry_byte(i));
    }

    /// Claims a free subscriber table entry by taking its lock; `None` if all are taken.
    pub(crate) fn claim_entry(&self) -> io::Result<Option<usize>> {
        for i in 0..self.memory.geometry().max_subscribers as usize {
            if lock::try_lock(self.file.as_fd(), lock::entry_byte(i))? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// Removes the topic's name if it still names this segment. Attached subscribers keep
    /// their mappings; new ones can no longer find it.
    ///
    /// Only the topic's last publisher calls this, leaving, under the remover lock, which
    /// every reclaimer and `gc` also takes: none can replace the name between the check
    /// and the unlink.
    pub(crate) fn unlink(&self) {
        if names_file(&self.shm_name, &self.file) {
            let _ = shm_unlink(self.shm_name.as_str());
        }
    }
}

fn word(raw: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&raw[off..off + 8]);
    u64::from_ne_bytes(b)
}

/// Decodes the identity block of a header read with `pread`.
fn parse_geometry(raw: &[u8]) -> Result<Geometry, String> {
    let f = |off: usize| word(raw, off);
    let ti = offset_of!(Identity, type_info);
    let mut name = [0u8; crate::layout::TYPE_NAME_BYTES];
    let name_off = ti + offset_of!(TypeInfo, name);
    name.copy_from_slice(&raw[name_off..name_off + crate::layout::TYPE_NAME_BYTES]);
    let type_info = TypeInfo {
        size: f(ti + offset_of!(TypeInfo, size)),
        align: f(ti + offset_of!(TypeInfo, align)),
        schema_version: f(ti + offset_of!(TypeInfo, schema_version)),
        name_hash: f(ti + offset_of!(TypeInfo, name_hash)),
        name_len: f(ti + offset_of!(TypeInfo, name_len)),
        name,
    };
    let overflow_word = f(offset_of!(Identity, overflow));
    let max_publishers = f(offset_of!(Identity, max_publishers));
    let overflow = Overflow::from_word(overflow_word)
        .ok_or_else(|| format!("unknown overflow policy {overflow_word}"))?;
    Ok(Geometry {
        header_size: f(offset_of!(Identity, header_size)),
        total_size: f(offset_of!(Identity, total_size)),
        slot_count: f(offset_of!(Identity, slot_count)),
        slot_capacity: f(offset_of!(Identity, slot_capacity)),
        slot_stride: f(offset_of!(Identity, slot_stride)),
        payload_offset: f(offset_of!(Identity, payload_offset)),
        alignment: f(offset_of!(Identity, alignment)),
        max_subscribers: f(offset_of!(Identity, max_subscribers)),
        table_offset: f(offset_of!(Identity, table_offset)),
        overflow,
        creation_id: f(offset_of!(Identity, creation_id)),
        type_info,
        stall_timeout_ns: f(offset_of!(Identity, stall_timeout_ns)),
        max_publishers,
        lane_table_offset: HEADER_BYTES,
        // Derived, like the offsets `validate` recomputes; saturating for a hostile count
        // (which `validate` then refuses).
        entry_stride: (crate::layout::ENTRY_BYTES as u64)
            .saturating_add(max_publishers.saturating_mul(crate::layout::LANE_CURSOR_BYTES as u64))
            .div_ceil(crate::layout::LINE as u64)
            .saturating_mul(crate::layout::LINE as u64),
    })
}

/// The first field in which `existing` differs from `requested`, described.
fn mismatch(
    existing: &SegmentConfig,
    requested: &SegmentConfig,
) -> Option<(&'static str, String, String)> {
    let fields: [(&'static str, String, String); 8] = [
        (
            "max publishers",
            existing.max_publishers.to_string(),
            requested.max_publishers.to_string(),
        ),
        (
            "overflow policy",
            format!("{:?}", existing.overflow),
            format!("{:?}", requested.overflow),
        ),
        (
            "slots",
            existing.slots.to_string(),
            requested.slots.to_string(),
        ),
        // Capacities are rounded to 8 bytes at creation: compare what the ring holds.
        (
            "slot size",
            existing.slot_size.to_string(),
            requested
                .slot_size
                .div_ceil(8)
                .saturating_mul(8)
                .to_string(),
        ),
        (
            "alignment",
            existing.alignment.to_string(),
            requested.alignment.to_string(),
        ),
        (
            "max subscribers",
            existing.max_subscribers.to_string(),
            requested.max_subscribers.to_string(),
        ),
        (
            "message type",
            existing.type_info.to_string(),
            requested.type_info.to_string(),
        ),
        (
            "stall timeout",
            format!("{:?}", existing.stall_timeout),
            format!("{:?}", requested.stall_timeout),
        ),
    ];
    fields.into_iter().find(|(_, a, b)| a != b)
}

/// Removes the segment file of `topic` outright (tests and `gc`); `Ok(false)` if absent.
pub fn remove(prefix: &str, topic: &str) -> io::Result<bool> {
    match shm_unlink(shm_name(prefix, topic).as_str()) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
