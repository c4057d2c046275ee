//! `ringcast_subscriber`: attach, receive (in place under `Block`), release.

use std::ffi::{c_char, c_int, c_void};
use std::ops::ControlFlow;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use ringcast::fork::Lineage;
use ringcast::{Key, RecvTimeoutError, Subscriber};

use crate::boxed;
use crate::config::{ringcast_subscriber_options, subscriber_options};
use crate::error::{guard, str_arg, timeout_arg, Failure};
use crate::reentry::{self, Running};
use crate::status::ringcast_status::{self, *};
use crate::waitset::ringcast_waitset;

/// A subscriber of one topic (opaque). Used by one thread at a time.
pub struct ringcast_subscriber {
    pub(crate) place: Place,
    /// The sample handed to C (its sequence and data pointer), kept in the subscriber
    /// (`Subscriber::try_recv_kept`) until `ringcast_sample_release`.
    held: Option<(u64, *const c_void)>,
    /// Per lane: lag reported but not yet given to C in a sample's `lost` (a receive that
    /// lags and then times out, ends, or gets another lane's message keeps it for that
    /// lane's next sample). Grown on demand, to at most the topic's lanes.
    pending_lost: Vec<u64>,
    /// Every message lost to lapping since attach.
    lost_total: u64,
    /// The process that attached it (a `fork()` child refuses to use it).
    lineage: Lineage,
}

/// Where the subscriber lives: in the handle, or in the wait set it was added to (which
/// owns its members, as a Rust `WaitSet` does). (Not boxed: the handle itself is one heap
/// allocation, and the subscriber moves into the set and back whole.)
#[allow(clippy::large_enum_variant)]
pub(crate) enum Place {
    Own(Subscriber),
    /// Only while `ringcast_waitset_add` moves the subscriber into the set.
    Moving,
    InSet {
        set: NonNull<ringcast_waitset>,
        key: Key<Subscriber>,
    },
}

/// A received message: `len` bytes at `data`, valid until `ringcast_sample_release` (under
/// `Block` they are the slot itself, in shared memory; under `Overwrite`, the subscriber's
/// own verified copy).
///
/// The library writes samples into the caller's memory, so the struct grows in a way old
/// callers cannot be overrun by: `lane` and `writer` were added after `lost`, and
/// `ringcast_subscriber_recv` (the symbol) still writes only the fields before `lane`, as
/// the headers before them had it; `ringcast_subscriber_recv_sized` writes the size the
/// caller names, and this header's `ringcast_subscriber_recv(s, t, out)` is a macro that
/// calls it with `sizeof(ringcast_sample)`, so code built against it gets every field.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringcast_sample {
    /// The payload (read-only).
    pub data: *const c_void,
    /// Its length.
    pub len: usize,
    /// The message's sequence number in its publisher's lane (0 for the lane's first; on a
    /// topic with one publisher, simply the topic's sequence).
    pub seq: u64,
    /// `Overwrite` (or a monitor): messages of this sample's lane lost (overwritten
    /// unread) just before this one, so `seq` is the lane's previous `seq` + 1 + `lost`; 0
    /// for an ordinary subscriber of a `Block` topic.
    pub lost: u64,
    /// The lane of the publisher that wrote it (0 on a topic with one publisher; see
    /// `ringcast_publisher_lane`). No order holds across lanes.
    pub lane: u32,
    /// That publisher's id in its lane (see `ringcast_publisher_writer`): `(lane, writer)`
    /// names the publisher, even across a lane taken over by a newcomer.
    pub writer: u32,
}

/// `sizeof(ringcast_sample)` of the headers before `lane` and `writer`.
const SAMPLE_SIZE_BEFORE_LANES: usize = std::mem::offset_of!(ringcast_sample, lane);
/// `sizeof(ringcast_sample)` in the headers this library writes for, oldest first.
const SAMPLE_SIZES: [usize; 2] = [SAMPLE_SIZE_BEFORE_LANES, size_of::<ringcast_sample>()];
// No padding anywhere (the library copies a prefix of the bytes), on 64-bit Linux 32 and 40.
const _: () = assert!(
    size_of::<ringcast_sample>() == SAMPLE_SIZE_BEFORE_LANES + 8
        && SAMPLE_SIZE_BEFORE_LANES == 2 * size_of::<usize>() + 16
);

/// Writes the first `size` bytes of `sample` to `out`.
///
/// # Safety
/// `out` is non-NULL and writable for `size` bytes; `size` is one of `SAMPLE_SIZES`.
unsafe fn write_sample(out: *mut ringcast_sample, sample: &ringcast_sample, size: usize) {
    debug_assert!(SAMPLE_SIZES.contains(&size));
    // SAFETY: `sample` is readable for its whole size, at least `size`; `out` is writable
    // for `size` bytes by the caller's contract, and not `sample` (a local of ours); the
    // struct has no padding, so every byte copied is initialised.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (sample as *const ringcast_sample).cast::<u8>(),
            out.cast::<u8>(),
            size,
        );
    }
}

/// The pending loss of lane `lane`.
fn pending(v: &mut Vec<u64>, lane: u32) -> &mut u64 {
    let lane = lane as usize;
    if v.len() <= lane {
        v.resize(lane + 1, 0);
    }
    &mut v[lane]
}

impl ringcast_subscriber {
    /// The subscriber, wherever it lives.
    pub(crate) fn subscriber(&mut self) -> Result<&mut Subscriber, Failure> {
        Self::subscriber_in(&mut self.place)
    }

    /// The subscriber of `place` (borrowing only that field of the handle).
    fn subscriber_in(place: &mut Place) -> Result<&mut Subscriber, Failure> {
        match place {
            Place::Own(s) => Ok(s),
            Place::InSet { set, key } => {
                reentry::refuse(set.as_ptr(), "wait set")?;
                // SAFETY: a set keeps a pointer to each member handle and, when destroyed,
                // moves every member back into its handle first; so a handle `InSet` names
                // a live set. The set and its members are used by one thread (the
                // documented contract), and the set is not running a callback (checked),
                // so no other reference to it is in use.
                let set = unsafe { set.as_mut() };
                Ok(set.member(*key))
            }
            Place::Moving => unreachable!("a subscriber handle is never left moving"),
        }
    }

    /// The set this handle is in, if any.
    fn set_ptr(&self) -> *const ringcast_waitset {
        match &self.place {
            Place::InSet { set, .. } => set.as_ptr(),
            _ => std::ptr::null(),
        }
    }

    pub(crate) fn holds_sample(&self) -> bool {
        self.held.is_some()
    }

    fn no_sample_held(&self) -> Result<(), Failure> {
        if self.held.is_some() {
            return Err(Failure::new(
                RINGCAST_ERR_SAMPLE_OUTSTANDING,
                "a sample is held: release it first",
            ));
        }
        Ok(())
    }

    /// Receives the next message and holds it; lag reports are folded into its `lost`.
    fn recv(&mut self, timeout: Option<Duration>) -> Result<ringcast_sample, Failure> {
        self.no_sample_held()?;
        // A clock read only for a bounded wait (not for C's "try" polls).
        let deadline = timeout
            .filter(|t| !t.is_zero())
            .and_then(|t| Instant::now().checked_add(t));
        loop {
            let sub = self.subscriber()?;
            let r = match (timeout, deadline) {
                (Some(Duration::ZERO), _) => sub.try_recv_kept().map_err(RecvTimeoutError::from),
                (Some(_), Some(d)) => {
                    sub.recv_kept_timeout(d.saturating_duration_since(Instant::now()))
                }
                _ => sub.recv_kept_timeout(Duration::MAX),
            };
            match r {
                Ok(kept) => {
                    let data = sub.kept().expect("just kept").as_ptr().cast();
                    self.held = Some((kept.seq, data));
                    let from = kept.publisher;
                    return Ok(ringcast_sample {
                        data,
                        len: kept.len,
                        seq: kept.seq,
                        lost: std::mem::take(pending(&mut self.pending_lost, from.lane)),
                        lane: from.lane,
                        writer: from.writer,
                    });
                }
                Err(RecvTimeoutError::Lagged(n)) => {
                    let lane = sub.lagged_lane();
                    *pending(&mut self.pending_lost, lane) += n;
                    self.lost_total += n;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Releases the held sample, if `(seq, data)` are its.
    fn release(&mut self, seq: u64, data: *const c_void) -> Result<(), Failure> {
        match self.held {
            Some((held_seq, held_data)) if held_seq == seq && held_data == data => {
                self.subscriber()?.release_kept();
                self.held = None;
                Ok(())
            }
            Some(_) => Err(Failure::new(
                RINGCAST_ERR_NOT_HELD,
                "this sample is not the one this subscriber holds",
            )),
            None => Err(Failure::new(
                RINGCAST_ERR_NOT_HELD,
                "this subscriber holds no sample (released twice?)",
            )),
        }
    }
}

/// # Safety
/// `s` is NULL or a live handle, used by this thread only.
pub(crate) unsafe fn handle<'a>(
    s: *mut ringcast_subscriber,
) -> Result<&'a mut ringcast_subscriber, Failure> {
    reentry::refuse(s, "subscriber")?;
    // SAFETY: the caller's contract; not in use by a call that runs a callback (checked),
    // so this is the only reference.
    unsafe { boxed::own(s, "subscriber") }
}

impl boxed::Inheritable for ringcast_subscriber {
    fn inherited(&self) -> bool {
        self.lineage.inherited()
    }
}

/// [`handle`], also for a handle inherited across `fork()` (to destroy it).
///
/// # Safety
/// As [`handle`].
unsafe fn handle_even_inherited<'a>(
    s: *mut ringcast_subscriber,
) -> Result<&'a mut ringcast_subscriber, Failure> {
    reentry::refuse(s, "subscriber")?;
    // SAFETY: as in `handle`.
    unsafe { boxed::any(s, "subscriber") }
}

/// Attaches to `topic` with `opts` (NULL: the defaults) and stores the subscriber in
/// `*out`. `wait_ns`: how long to wait for a live publisher to create the topic (`0`: not
/// at all, `< 0`: for ever); then `RINGCAST_ERR_NOT_FOUND`, or `RINGCAST_ERR_CLOSED` if
/// only a dead publisher's segment is there.
///
/// # Safety
/// `topic` is NULL or NUL-terminated; `opts` is NULL or readable options (see their
/// `_init`); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_subscriber_attach(
    topic: *const c_char,
    opts: *const ringcast_subscriber_options,
    wait_ns: i64,
    out: *mut *mut ringcast_subscriber,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        unsafe { boxed::clear(out) }?;
        // SAFETY: by the caller's contract.
        let topic = unsafe { str_arg(topic, "topic") }?;
        // SAFETY: by the caller's contract.
        let opts = unsafe { subscriber_options(opts) }?;
        let wait = timeout_arg(wait_ns).unwrap_or(Duration::MAX);
        let sub = Subscriber::attach_wait(topic, opts, wait)?;
        let value = ringcast_subscriber {
            place: Place::Own(sub),
            held: None,
            pending_lost: Vec::new(),
            lost_total: 0,
            lineage: Lineage::current(),
        };
        // SAFETY: `out` was checked by `clear`.
        unsafe { boxed::give(out, value) };
        Ok(RINGCAST_OK)
    })
}

/// Receives the next message into `*out` and holds it until `ringcast_sample_release`.
/// `timeout_ns < 0` waits for ever, `0` does not wait, `> 0` waits at most that long.
/// Returns `RINGCAST_OK`, `RINGCAST_TIMEOUT`, `RINGCAST_DISCONNECTED` (every publisher is
/// gone and everything was received), `RINGCAST_EVICTED`, `RINGCAST_CORRUPT` (a message
/// was skipped), or `RINGCAST_ERR_SAMPLE_OUTSTANDING` (one sample at a time). `sample_size`
/// is `sizeof(ringcast_sample)` in the caller's header (this header's, or the smaller one
/// of the headers before `lane`, which gets the fields before `lane`); any other size is
/// `RINGCAST_ERR_VERSION`, and nothing is received. Exactly `sample_size` bytes are
/// written. `ringcast_subscriber_recv(s, timeout_ns, out)` calls this with this header's
/// size.
///
/// # Safety
/// `s` is a live handle (or NULL); `out` is NULL or writable for `sample_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn ringcast_subscriber_recv_sized(
    s: *mut ringcast_subscriber,
    timeout_ns: i64,
    out: *mut ringcast_sample,
    sample_size: usize,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(s) }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        if !SAMPLE_SIZES.contains(&sample_size) {
            return Err(Failure::new(
                RINGCAST_ERR_VERSION,
                format!(
                    "sample_size is {sample_size}: pass sizeof(ringcast_sample) of this \
                     library's header (it writes samples of {SAMPLE_SIZES:?} bytes)"
                ),
            ));
        }
        let sample = h.recv(timeout_arg(timeout_ns))?;
        // SAFETY: non-NULL (checked) and writable for `sample_size` bytes, by the caller's
        // contract; `sample_size` is one of `SAMPLE_SIZES` (checked).
        unsafe { write_sample(out, &sample, sample_size) };
        Ok(RINGCAST_OK)
    })
}

/// The receive of the headers before `ringcast_sample` had `lane` and `writer`: as
/// [`ringcast_subscriber_recv_sized`] with the size of that older sample, so programs
/// built against those headers are never written past the end of their struct. Code
/// built against this header calls `ringcast_subscriber_recv_sized` through the macro of
/// this name (defined at the end of the header); this symbol is what older builds and
/// hand-written FFI declarations reach.
///
/// # Safety
/// `s` is a live handle (or NULL); `out` is NULL or writable for the fields before `lane`.
#[no_mangle]
pub unsafe extern "C" fn ringcast_subscriber_recv(
    s: *mut ringcast_subscriber,
    timeout_ns: i64,
    out: *mut ringcast_sample,
) -> ringcast_status {
    // SAFETY: the caller's contract, with the size it is writable for.
    unsafe { ringcast_subscriber_recv_sized(s, timeout_ns, out, SAMPLE_SIZE_BEFORE_LANES) }
}

/// Releases the held sample `*sample` (under `Block`, frees its slot for the publisher)
/// and clears its `data`, `len`, `seq` and `lost` (`lane` and `writer` are left as they
/// are: a caller built against a header before them has no room for them).
/// `RINGCAST_ERR_NOT_HELD` if it is not the held one (e.g. released twice).
///
/// # Safety
/// `s` is a live handle (or NULL); `sample` is NULL or readable and writable for the
/// fields before `lane`.
#[no_mangle]
pub unsafe extern "C" fn ringcast_sample_release(
    s: *mut ringcast_subscriber,
    sample: *mut ringcast_sample,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(s) }?;
        if sample.is_null() {
            return Err(Failure::null("sample"));
        }
        // Field by field through raw pointers: the caller's struct may end before `lane`,
        // so no reference to a whole `ringcast_sample` is made.
        // SAFETY: non-NULL (checked) and readable for the fields before `lane`, by the
        // caller's contract; `seq` and `data` are among them, so the projections stay in
        // the caller's object.
        let (seq, data) = unsafe {
            (
                (&raw const (*sample).seq).read(),
                (&raw const (*sample).data).read(),
            )
        };
        h.release(seq, data)?;
        // SAFETY: as above, writable too.
        unsafe {
            (&raw mut (*sample).data).write(std::ptr::null());
            (&raw mut (*sample).len).write(0);
            (&raw mut (*sample).seq).write(0);
            (&raw mut (*sample).lost).write(0);
        }
        Ok(RINGCAST_OK)
    })
}

/// What `ringcast_subscriber_drain` calls with each message and the caller's `ctx`. The
/// sample is valid only during the call (it is released right after); do not release it.
/// Return 0 to go on, anything else to stop the drain after this message (the ones after
/// it stay for the next receive).
type DrainFn = unsafe extern "C" fn(sample: *const ringcast_sample, ctx: *mut c_void) -> c_int;

impl ringcast_subscriber {
    /// Hands every message ready now (up to `max`) to `f`, releasing slots once per run;
    /// lags are folded into the next sample's `lost`, as in `recv`. Returns how many were
    /// delivered and what stopped it (a status other than OK for the end, an eviction or a
    /// corrupt slot).
    fn drain(
        &mut self,
        me: *const ringcast_subscriber,
        max: usize,
        f: DrainFn,
        ctx: *mut c_void,
    ) -> Result<(usize, Option<Failure>), Failure> {
        self.no_sample_held()?;
        let set = self.set_ptr();
        let sub = Self::subscriber_in(&mut self.place)?;
        let pending_lost = &mut self.pending_lost;
        // From here until the callbacks are done, calls on this handle or its set refuse.
        let _running = Running::mark(&[me.cast(), set.cast()]);
        let (mut delivered, mut lagged) = (0usize, 0u64);
        let stopped = loop {
            let d = sub.drain_while(max - delivered, |sample| {
                let from = sample.publisher();
                let out = ringcast_sample {
                    data: sample.as_ptr().cast(),
                    len: sample.len(),
                    seq: sample.seq(),
                    lost: std::mem::take(pending(pending_lost, from.lane)),
                    lane: from.lane,
                    writer: from.writer,
                };
                // SAFETY: `f` is the caller's callback, called as its contract says: with a
                // sample valid for the call (it is dropped, released, after it returns).
                match unsafe { f(&out, ctx) } {
                    0 => ControlFlow::Continue(()),
                    _ => ControlFlow::Break(()),
                }
            });
            delivered += d.delivered;
            if d.broke {
                break None;
            }
            match d.stopped {
                // Folded into the next sample's `lost`; drain on unless at the bound.
                Some(ringcast::TryRecvError::Lagged(n)) => {
                    *pending(pending_lost, sub.lagged_lane()) += n;
                    lagged += n;
                    if delivered == max {
                        break None;
                    }
                }
                Some(e) => break Some(Failure::from(RecvTimeoutError::from(e))),
                None => break None,
            }
        };
        self.lost_total += lagged;
        Ok((delivered, stopped))
    }
}

/// Hands every message ready now, up to `max`, to `callback(sample, ctx)` in order, without
/// waiting, and stores how many in `*count`. The callback returns 0 to go on, or non-zero
/// to stop after that message: the messages after it stay for the next receive. Under
/// `Block` the slots go back to the publisher once per run of consecutive messages, all
/// of them before this returns (one cursor store and one wake-up check per run instead of
/// per message). Returns `RINGCAST_OK` when nothing more was ready, `max` was reached or
/// the callback stopped it, else what stopped it after `*count` messages:
/// `RINGCAST_DISCONNECTED`, `RINGCAST_EVICTED`, `RINGCAST_CORRUPT`.
/// `RINGCAST_ERR_SAMPLE_OUTSTANDING` if a sample of `ringcast_subscriber_recv` is held.
/// Inside the callback, every call on this subscriber or on the wait set it is in returns
/// `RINGCAST_ERR_REENTRANT` (and does nothing); publishing into another topic is fine. If
/// the callback waits for room in another `Block` topic, the slots this drain has read so
/// far are handed back first.
///
/// # Safety
/// `s` is a live handle (or NULL); `callback` is NULL or a function safe to call with a
/// valid sample and `ctx`; `count` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_subscriber_drain(
    s: *mut ringcast_subscriber,
    max: usize,
    callback: Option<
        unsafe extern "C" fn(sample: *const ringcast_sample, ctx: *mut c_void) -> c_int,
    >,
    ctx: *mut c_void,
    count: *mut usize,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(s) }?;
        let callback = callback.ok_or_else(|| Failure::null("callback"))?;
        if count.is_null() {
            return Err(Failure::null("count"));
        }
        // SAFETY: writable, by the caller's contract (cleared first, so an error leaves 0).
        unsafe { count.write(0) };
        let (delivered, stopped) = h.drain(s, max, callback, ctx)?;
        // SAFETY: as above.
        unsafe { count.write(delivered) };
        match stopped {
            Some(f) => Err(f),
            None => Ok(RINGCAST_OK),
        }
    })
}

/// `*out` = messages this subscriber has lost in all (`Overwrite` laps), every lane
/// together: the sum of the `lost` of every sample received so far, plus any loss later
/// samples of their lanes will report.
///
/// # Safety
/// `s` is a live handle (or NULL); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_subscriber_lost(
    s: *mut ringcast_subscriber,
    out: *mut u64,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(s) }?;
        // SAFETY: NULL or writable, by the caller's contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
        *out = h.lost_total;
        Ok(RINGCAST_OK)
    })
}

/// `*out` = messages of lane `lane` (see `ringcast_sample.lane`) this subscriber has lost
/// (`Overwrite` laps): the `lost` of that lane's samples received so far, plus any loss its
/// next sample will report. `RINGCAST_ERR_INVALID_ARGUMENT` if the topic has no such lane
/// (it has `max_publishers` of them).
///
/// # Safety
/// `s` is a live handle (or NULL); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_subscriber_lost_in(
    s: *mut ringcast_subscriber,
    lane: u32,
    out: *mut u64,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(s) }?;
        // SAFETY: NULL or writable, by the caller's contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
        *out = h.subscriber()?.lost_in(lane).ok_or_else(|| {
            Failure::new(
                RINGCAST_ERR_INVALID_ARGUMENT,
                format!("lane is {lane}: the topic has no such lane"),
            )
        })?;
        Ok(RINGCAST_OK)
    })
}

/// `*out` = 1 if the topic was closed by its publisher (on a shared topic, by the last to
/// leave), else 0. After `RINGCAST_DISCONNECTED`, 0 tells a publisher that died (killed,
/// crashed) from one that ended the topic; everything it published was received either
/// way.
///
/// # Safety
/// `s` is a live handle (or NULL); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_subscriber_closed_by_publisher(
    s: *mut ringcast_subscriber,
    out: *mut c_int,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(s) }?;
        // SAFETY: NULL or writable, by the caller's contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
        *out = c_int::from(h.subscriber()?.closed_by_publisher());
        Ok(RINGCAST_OK)
    })
}

/// Detaches and frees the handle (removing it from its wait set, if any). NULL is a
/// no-op. A held sample is released first, and the call returns `RINGCAST_ABANDONED` to
/// say so. The handle is freed whatever the call returns, except
/// `RINGCAST_ERR_REENTRANT` (called from inside a callback of this subscriber or its wait
/// set): then nothing is done.
///
/// # Safety
/// `s` is NULL or a live handle, not used again after this call (unless it returned
/// `RINGCAST_ERR_REENTRANT`).
#[no_mangle]
pub unsafe extern "C" fn ringcast_subscriber_destroy(
    s: *mut ringcast_subscriber,
) -> ringcast_status {
    guard(|| {
        if s.is_null() {
            return Ok(RINGCAST_OK);
        }
        // Check before taking ownership: a refused call must leave the handle as it was.
        // SAFETY: a live handle, by the caller's contract.
        let set = unsafe { handle_even_inherited(s) }?.set_ptr();
        reentry::refuse(set, "wait set")?;
        // SAFETY: a live handle, not used again, by the caller's contract.
        let Some(mut h) = (unsafe { boxed::take(s) }) else {
            return Ok(RINGCAST_OK);
        };
        if let Place::InSet { mut set, .. } = h.place {
            // SAFETY: a handle `InSet` names a live set (see `subscriber`), not running a
            // callback (checked above).
            unsafe { set.as_mut() }.take_back(&mut h);
        }
        let had_sample = h.holds_sample();
        drop(h);
        Ok(if had_sample {
            RINGCAST_ABANDONED
        } else {
            RINGCAST_OK
        })
    })
}
