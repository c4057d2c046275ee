//! The config and options structs: plain C structs with a leading `struct_size` so they
//! can grow, filled with defaults by their `_init` functions.

use std::ffi::c_char;
use std::mem::MaybeUninit;
use std::time::Duration;

use ringcast::{Overflow, PublisherConfig, Start, SubscriberOptions, WaitStrategy};

use crate::error::{guard, str_arg, Failure};
use crate::status::ringcast_status::{self, *};

/// `overflow`: the publisher waits for the slowest subscriber (no message lost).
pub const RINGCAST_OVERFLOW_BLOCK: u32 = 0;
/// `overflow`: the publisher never waits; a subscriber a whole ring behind loses messages
/// (counted in `ringcast_sample.lost`).
pub const RINGCAST_OVERFLOW_OVERWRITE: u32 = 1;

/// `wait`: spin briefly, then sleep on a futex (the default).
pub const RINGCAST_WAIT_SPIN_THEN_PARK: u32 = 0;
/// `wait`: sleep on a futex at once (least CPU).
pub const RINGCAST_WAIT_PARK: u32 = 1;
/// `wait`: spin, never sleep (lowest latency; a core per waiter).
pub const RINGCAST_WAIT_BUSY_SPIN: u32 = 2;

/// `start`: receive messages published after attaching.
pub const RINGCAST_START_LATEST: u32 = 0;
/// `start`: receive from the oldest message still in the ring.
pub const RINGCAST_START_OLDEST: u32 = 1;

/// `memory` flag: fault every page of the mapping in at create / attach.
pub const RINGCAST_MEMORY_PREFAULT: u32 = 1;
/// `memory` flag: `mlock` the mapping (needs `RLIMIT_MEMLOCK` room or `CAP_IPC_LOCK`; else
/// `RINGCAST_ERR_RESOURCE`).
pub const RINGCAST_MEMORY_LOCK: u32 = 2;
/// `memory` flag, publishers only: back the segment with huge pages (implies prefault);
/// `RINGCAST_ERR_RESOURCE`, saying what to change, where /dev/shm cannot give them.
pub const RINGCAST_MEMORY_HUGE_PAGES: u32 = 4;

/// How to create a topic. Fill it with `ringcast_publisher_config_init`, then set fields.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringcast_publisher_config {
    /// `sizeof(ringcast_publisher_config)`, set by `_init`: the struct's version.
    pub struct_size: u32,
    /// `RINGCAST_OVERFLOW_BLOCK` or `RINGCAST_OVERFLOW_OVERWRITE` (default).
    pub overflow: u32,
    /// Slots in the ring: a power of two, 2 ..= 2^24 (default 256).
    pub slots: u64,
    /// Most payload bytes per message, 1 ..= 1 GiB (default 1024).
    pub slot_size: u64,
    /// Most subscribers at once, 1 ..= 4096 (default 64).
    pub max_subscribers: u64,
    /// `Block` only: evict a live subscriber that stalls the publisher longer than this
    /// (1 ms ..= 1 day); 0 (default) never evicts a live one.
    pub stall_timeout_ns: u64,
    /// Permission bits of the segment (default 0600): read and write bits only, including
    /// 0600 (else `RINGCAST_ERR_CONFIG`).
    pub mode: u32,
    /// How a `Block` publisher waits for room: `RINGCAST_WAIT_*`.
    pub wait: u32,
    /// Segment name prefix (NULL: the default, "ringcast"); copied during the call.
    pub prefix: *const c_char,
    /// `RINGCAST_MEMORY_*` flags, or-ed (default 0: none).
    pub memory: u32,
    /// Publishers the topic admits at once, 1 ..= 64 (default 1: this publisher's alone;
    /// a second gets `RINGCAST_ERR_EXISTS`). With `n > 1` each publisher writes its own
    /// lane, and a later `ringcast_publisher_create` of the same topic with the same
    /// configuration joins it while fewer than `n` are live (`RINGCAST_ERR_MISMATCH`
    /// names a difference, `RINGCAST_ERR_PUBLISHERS_FULL` says every lane is taken).
    /// Subscribers get every publisher's messages, each publisher's in its order
    /// (`ringcast_sample.lane` and `.writer` say whose); the last publisher to leave
    /// closes the topic. Each lane has the topic's `slots`, so memory grows with `n`.
    /// (Added after `memory`: a struct of the earlier size is read with 1 here.)
    pub max_publishers: u64,
}

/// How to attach. Fill it with `ringcast_subscriber_options_init`, then set fields.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringcast_subscriber_options {
    /// `sizeof(ringcast_subscriber_options)`, set by `_init`: the struct's version.
    pub struct_size: u32,
    /// `RINGCAST_START_LATEST` (default) or `RINGCAST_START_OLDEST`.
    pub start: u32,
    /// How receives wait: `RINGCAST_WAIT_*`.
    pub wait: u32,
    /// `RINGCAST_MEMORY_PREFAULT` and / or `RINGCAST_MEMORY_LOCK` (default 0: none).
    pub memory: u32,
    /// Refuse topics whose slots hold more than this many bytes (0: the format's 1 GiB).
    pub max_slot_size: u64,
    /// Segment name prefix (NULL: the default, "ringcast"); copied during the call.
    pub prefix: *const c_char,
    /// `Block`: hand released slots back in runs of up to this many while more messages
    /// wait (clamped to the ring; 0, the default, or 1: every slot at once). Any blocking
    /// call of the process hands such deferred slots back before it waits.
    pub release_batch: u64,
    /// User ids whose topics to attach to besides this process's own user and root, who
    /// alone are trusted by default (another user's segment is `RINGCAST_ERR_UNTRUSTED`);
    /// `trust_users_len` of them (NULL with 0: none). Copied during the call.
    pub trust_users: *const u32,
    /// How many ids `trust_users` points to.
    pub trust_users_len: usize,
    /// Group ids whose topics (the segment file's group) to attach to, likewise.
    pub trust_groups: *const u32,
    /// How many ids `trust_groups` points to.
    pub trust_groups_len: usize,
    /// Non-zero: attach to topics of any owner (as builds before the owner check did).
    pub trust_any_owner: u32,
    /// Non-zero: attach as a monitor (for diagnostic tools): never hold the publisher
    /// back, whatever the topic's policy; every message is a verified copy, and what the
    /// publisher laps is lost and reported (`lost` of the next sample). Does not count as
    /// a subscriber. (In what was the struct's tail padding: `_init` zeroes it, so the
    /// struct's size did not change.)
    pub monitor: u32,
}

/// Fills `cfg` with the defaults (and its `struct_size`).
///
/// # Safety
/// `cfg` is NULL or points to writable memory for one `ringcast_publisher_config`.
#[no_mangle]
pub unsafe extern "C" fn ringcast_publisher_config_init(
    cfg: *mut ringcast_publisher_config,
) -> ringcast_status {
    guard(|| {
        if cfg.is_null() {
            return Err(Failure::null("cfg"));
        }
        let d = PublisherConfig::default();
        let seg = d.segment();
        let value = ringcast_publisher_config {
            struct_size: size_of::<ringcast_publisher_config>() as u32,
            overflow: match seg.overflow {
                Overflow::Block => RINGCAST_OVERFLOW_BLOCK,
                _ => RINGCAST_OVERFLOW_OVERWRITE,
            },
            slots: seg.slots,
            slot_size: seg.slot_size,
            max_subscribers: seg.max_subscribers,
            stall_timeout_ns: 0,
            mode: 0o600,
            wait: RINGCAST_WAIT_SPIN_THEN_PARK,
            prefix: std::ptr::null(),
            memory: 0,
            max_publishers: seg.max_publishers,
        };
        // SAFETY: non-NULL and writable for one struct, by the caller's contract; `write`
        // does not read the (possibly uninitialised) old value.
        unsafe { cfg.write(value) };
        Ok(RINGCAST_OK)
    })
}

/// Fills `opts` with the defaults (and its `struct_size`).
///
/// # Safety
/// `opts` is NULL or points to writable memory for one `ringcast_subscriber_options`.
#[no_mangle]
pub unsafe extern "C" fn ringcast_subscriber_options_init(
    opts: *mut ringcast_subscriber_options,
) -> ringcast_status {
    guard(|| {
        if opts.is_null() {
            return Err(Failure::null("opts"));
        }
        let value = ringcast_subscriber_options {
            struct_size: size_of::<ringcast_subscriber_options>() as u32,
            start: RINGCAST_START_LATEST,
            wait: RINGCAST_WAIT_SPIN_THEN_PARK,
            memory: 0,
            max_slot_size: 0,
            prefix: std::ptr::null(),
            release_batch: 0,
            trust_users: std::ptr::null(),
            trust_users_len: 0,
            trust_groups: std::ptr::null(),
            trust_groups_len: 0,
            trust_any_owner: 0,
            monitor: 0,
        };
        // SAFETY: as in `ringcast_publisher_config_init`.
        unsafe { opts.write(value) };
        Ok(RINGCAST_OK)
    })
}

/// `sizeof(ringcast_publisher_config)` in the headers this library accepts, oldest first:
/// before `memory` (56), before `max_publishers` (64), then this one.
const PUBLISHER_CONFIG_SIZES: [usize; 3] = [56, 64, size_of::<ringcast_publisher_config>()];
const _: () = assert!(size_of::<ringcast_publisher_config>() == 72);
/// `sizeof(ringcast_subscriber_options)` in the headers this library accepts, oldest
/// first: before `release_batch` (32; `memory` was then a `reserved` field documented as
/// 0), before the `trust_*` fields (40), then this one.
const SUBSCRIBER_OPTIONS_SIZES: [usize; 3] = [32, 40, size_of::<ringcast_subscriber_options>()];
// `monitor` went into the tail padding: the size (and so the accepted versions) stayed.
const _: () = assert!(size_of::<ringcast_subscriber_options>() == 80);

/// Reads a versioned struct: the caller's `struct_size` bytes of it over `defaults`, if
/// that size is one a header of this library ever had.
///
/// # Safety
/// `p` is non-NULL and readable for its leading `u32` `struct_size` and for that many
/// bytes; `T` is one of the config structs (plain old data, `struct_size` first).
pub(crate) unsafe fn read_versioned<T: Copy>(
    p: *const T,
    defaults: T,
    sizes: &[usize],
    what: &str,
) -> Result<T, Failure> {
    // SAFETY: readable for its first field, which every version has.
    let got = unsafe { p.cast::<u32>().read_unaligned() } as usize;
    if !sizes.contains(&got) {
        let want = size_of::<T>();
        return Err(Failure::new(
            RINGCAST_ERR_VERSION,
            format!(
                "{what}.struct_size is {got}, this library's is {want} (it also accepts \
                 {sizes:?}): fill the struct with its _init function"
            ),
        ));
    }
    let mut out = defaults;
    // SAFETY: `got <= size_of::<T>()` (every accepted size is), the caller's struct is
    // readable for `got` bytes, and every prefix of these structs is whole fields of plain
    // integers and pointers, which any bytes make valid.
    unsafe {
        std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&raw mut out).cast::<u8>(), got);
    }
    Ok(out)
}

/// The `(prefault, lock, huge pages)` of a `memory` field; `allowed` are the flags the
/// side may use.
fn memory_arg(memory: u32, allowed: u32, what: &str) -> Result<(bool, bool, bool), Failure> {
    if memory & !allowed != 0 {
        return Err(Failure::new(
            RINGCAST_ERR_INVALID_ARGUMENT,
            format!(
                "{what}.memory is {memory:#x}: use RINGCAST_MEMORY_* flags ({allowed:#x} here)"
            ),
        ));
    }
    Ok((
        memory & RINGCAST_MEMORY_PREFAULT != 0,
        memory & RINGCAST_MEMORY_LOCK != 0,
        memory & RINGCAST_MEMORY_HUGE_PAGES != 0,
    ))
}

pub(crate) fn wait_arg(wait: u32) -> Result<WaitStrategy, Failure> {
    match wait {
        RINGCAST_WAIT_SPIN_THEN_PARK => Ok(WaitStrategy::default()),
        RINGCAST_WAIT_PARK => Ok(WaitStrategy::Park),
        RINGCAST_WAIT_BUSY_SPIN => Ok(WaitStrategy::BusySpin),
        other => Err(Failure::new(
            RINGCAST_ERR_INVALID_ARGUMENT,
            format!("wait is {other}: use one of RINGCAST_WAIT_*"),
        )),
    }
}

/// The Rust config of a C one (NULL: the defaults).
///
/// # Safety
/// `cfg` is NULL or points to a readable `ringcast_publisher_config` whose `prefix` is
/// NULL or a NUL-terminated string.
pub(crate) unsafe fn publisher_config(
    cfg: *const ringcast_publisher_config,
) -> Result<PublisherConfig, Failure> {
    let mut out = PublisherConfig::default();
    if cfg.is_null() {
        return Ok(out);
    }
    let mut defaults = MaybeUninit::uninit();
    // SAFETY: writable for one struct.
    unsafe { ringcast_publisher_config_init(defaults.as_mut_ptr()) };
    // SAFETY: `_init` filled it; `cfg` is readable for its own `struct_size`, by the
    // caller's contract.
    let c = unsafe { read_versioned(cfg, defaults.assume_init(), &PUBLISHER_CONFIG_SIZES, "cfg") }?;
    out = out
        .overflow(match c.overflow {
            RINGCAST_OVERFLOW_BLOCK => Overflow::Block,
            RINGCAST_OVERFLOW_OVERWRITE => Overflow::Overwrite,
            other => {
                return Err(Failure::new(
                    RINGCAST_ERR_INVALID_ARGUMENT,
                    format!("cfg.overflow is {other}: use RINGCAST_OVERFLOW_BLOCK or _OVERWRITE"),
                ))
            }
        })
        .slots(c.slots)
        .slot_size(c.slot_size)
        .max_subscribers(c.max_subscribers)
        .max_publishers(c.max_publishers)
        .mode(c.mode)
        .wait_strategy(wait_arg(c.wait)?);
    let all = RINGCAST_MEMORY_PREFAULT | RINGCAST_MEMORY_LOCK | RINGCAST_MEMORY_HUGE_PAGES;
    let (prefault, lock, huge) = memory_arg(c.memory, all, "cfg")?;
    out = out.prefault(prefault).lock_memory(lock).huge_pages(huge);
    if c.stall_timeout_ns != 0 {
        out = out.stall_timeout(Duration::from_nanos(c.stall_timeout_ns));
    }
    if !c.prefix.is_null() {
        // SAFETY: a NUL-terminated string, by the caller's contract.
        out = out.prefix(unsafe { str_arg(c.prefix, "cfg.prefix") }?);
    }
    Ok(out)
}

/// A C array of ids (NULL only with length 0).
///
/// # Safety
/// `p` is NULL or readable for `len` ids.
pub(crate) unsafe fn id_list<'a>(
    p: *const u32,
    len: usize,
    what: &str,
) -> Result<&'a [u32], Failure> {
    match (p.is_null(), len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(Failure::null(what)),
        // SAFETY: readable for `len` ids, by the caller's contract.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(p, len) }),
    }
}

/// The Rust options of C ones (NULL: the defaults).
///
/// # Safety
/// As for [`publisher_config`], for a `ringcast_subscriber_options`.
pub(crate) unsafe fn subscriber_options(
    opts: *const ringcast_subscriber_options,
) -> Result<SubscriberOptions, Failure> {
    let mut out = SubscriberOptions::default();
    if opts.is_null() {
        return Ok(out);
    }
    let mut defaults = MaybeUninit::uninit();
    // SAFETY: writable for one struct.
    unsafe { ringcast_subscriber_options_init(defaults.as_mut_ptr()) };
    // SAFETY: as in `publisher_config`.
    let o = unsafe {
        read_versioned(
            opts,
            defaults.assume_init(),
            &SUBSCRIBER_OPTIONS_SIZES,
            "opts",
        )
    }?;
    out = out
        .start(match o.start {
            RINGCAST_START_LATEST => Start::Latest,
            RINGCAST_START_OLDEST => Start::Oldest,
            other => {
                return Err(Failure::new(
                    RINGCAST_ERR_INVALID_ARGUMENT,
                    format!("opts.start is {other}: use RINGCAST_START_LATEST or _OLDEST"),
                ))
            }
        })
        .wait_strategy(wait_arg(o.wait)?);
    let (prefault, lock, _) = memory_arg(
        o.memory,
        RINGCAST_MEMORY_PREFAULT | RINGCAST_MEMORY_LOCK,
        "opts",
    )?;
    out = out.prefault(prefault).lock_memory(lock);
    if o.release_batch != 0 {
        out = out.release_batch(o.release_batch);
    }
    if o.max_slot_size != 0 {
        out = out.max_slot_size(o.max_slot_size);
    }
    // SAFETY: readable for the given lengths, by the caller's contract.
    for uid in unsafe { id_list(o.trust_users, o.trust_users_len, "opts.trust_users") }? {
        out = out.trust_user(*uid);
    }
    // SAFETY: as above.
    for gid in unsafe { id_list(o.trust_groups, o.trust_groups_len, "opts.trust_groups") }? {
        out = out.trust_group(*gid);
    }
    if o.trust_any_owner != 0 {
        out = out.trust_any_owner();
    }
    if o.monitor != 0 {
        out = out.monitor();
    }
    if !o.prefix.is_null() {
        // SAFETY: a NUL-terminated string, by the caller's contract.
        out = out.prefix(unsafe { str_arg(o.prefix, "opts.prefix") }?);
    }
    Ok(out)
}
