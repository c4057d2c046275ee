//! `ringcast_subscriber`: attach, receive (in place under `Block`), release.

use std::ffi::{c_char, c_void};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use ringcast::{Key, Member, RecvTimeoutError, Sample, SleepTarget, Subscriber};

use crate::boxed;
use crate::config::{ringcast_subscriber_options, subscriber_options};
use crate::error::{guard, str_arg, timeout_arg, Failure};
use crate::status::ringcast_status::{self, *};
use crate::waitset::ringcast_waitset;

/// A subscriber of one topic (opaque). Used by one thread at a time.
pub struct ringcast_subscriber {
    pub(crate) place: Place,
}

/// Where the subscriber's state lives: in the handle, or in the wait set it was added to
/// (which owns its members, as a Rust `WaitSet` does).
pub(crate) enum Place {
    Own(Reading),
    /// Only while `ringcast_waitset_add` moves the state into the set.
    Moving,
    InSet {
        set: NonNull<ringcast_waitset>,
        key: Key<Reading>,
    },
}

/// A subscriber and the sample it holds, if any.
pub(crate) struct Reading {
    /// The held sample. It borrows `*sub` (a heap allocation that never moves) and is
    /// declared first, so it is dropped (released) before the subscriber.
    held: Option<Sample<'static>>,
    sub: NonNull<Subscriber>,
    /// Lag reported but not yet given to C in a sample's `lost` (a receive that lags and
    /// then times out, or ends, keeps it for the next sample).
    pending_lost: u64,
    /// Every message lost to lapping since attach.
    lost_total: u64,
}

// SAFETY: `Subscriber` is `Send`; the held sample borrows only that subscriber, and both
// move together.
unsafe impl Send for Reading {}

impl Drop for Reading {
    fn drop(&mut self) {
        self.held = None;
        // SAFETY: `sub` came from `Box::leak` in `Reading::new` and is freed only here;
        // the sample that borrowed it was dropped above.
        drop(unsafe { Box::from_raw(self.sub.as_ptr()) });
    }
}

/// A received message: `len` bytes at `data`, valid until `ringcast_sample_release` (under
/// `Block` they are the slot itself, in shared memory; under `Overwrite`, the subscriber's
/// own verified copy).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringcast_sample {
    /// The payload (read-only).
    pub data: *const c_void,
    /// Its length.
    pub len: usize,
    /// The message's sequence number (0 for the topic's first).
    pub seq: u64,
    /// `Overwrite`: messages lost (overwritten unread) just before this one; 0 under `Block`.
    pub lost: u64,
}

impl Reading {
    fn new(sub: Subscriber) -> Reading {
        Reading {
            held: None,
            sub: NonNull::from(Box::leak(Box::new(sub))),
            pending_lost: 0,
            lost_total: 0,
        }
    }

    /// The subscriber, when no sample borrows it.
    fn subscriber(&mut self) -> Result<&mut Subscriber, Failure> {
        if self.held.is_some() {
            return Err(Failure::new(
                RINGCAST_ERR_SAMPLE_OUTSTANDING,
                "a sample is held: release it first",
            ));
        }
        // SAFETY: the allocation lives as long as `self`, no sample borrows it (checked),
        // and `&mut self` makes this the only reference.
        Ok(unsafe { self.sub.as_mut() })
    }

    pub(crate) fn holds_sample(&self) -> bool {
        self.held.is_some()
    }

    /// Receives the next message and holds it; lag reports are folded into its `lost`.
    fn recv(&mut self, timeout: Option<Duration>) -> Result<ringcast_sample, Failure> {
        let sub: *mut Subscriber = self.subscriber()?;
        // A clock read only for a bounded wait (not for C's "try" polls).
        let deadline = timeout
            .filter(|t| !t.is_zero())
            .and_then(|t| Instant::now().checked_add(t));
        loop {
            // SAFETY: no sample borrows the subscriber (checked above, and a lag report
            // borrows nothing); a sample taken here is kept in `held`, which the accessors
            // check before handing out another reference, and is dropped before the
            // subscriber (field order).
            let sub: &'static mut Subscriber = unsafe { &mut *sub };
            let r = match (timeout, deadline) {
                (Some(Duration::ZERO), _) => sub.try_recv().map_err(RecvTimeoutError::from),
                (Some(_), Some(d)) => sub.recv_timeout(d.saturating_duration_since(Instant::now())),
                _ => sub.recv().map_err(RecvTimeoutError::from),
            };
            match r {
                Ok(sample) => {
                    let out = ringcast_sample {
                        data: sample.as_ptr().cast(),
                        len: sample.len(),
                        seq: sample.seq(),
                        lost: std::mem::take(&mut self.pending_lost),
                    };
                    self.held = Some(sample);
                    return Ok(out);
                }
                Err(RecvTimeoutError::Lagged(n)) => {
                    self.pending_lost += n;
                    self.lost_total += n;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn release(&mut self, sample: &ringcast_sample) -> Result<(), Failure> {
        match &self.held {
            Some(h) if h.seq() == sample.seq && h.as_ptr() == sample.data.cast() => {
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

// SAFETY: the target is the subscriber's own (its reader's table entry and mapping), and
// the subscriber lives as long as the `Reading`. While a sample borrows the subscriber,
// the set's calls below do not touch it.
unsafe impl Member for Reading {
    fn sleep_target(&self) -> SleepTarget {
        // Only called when the member joins a set, which refuses a reading holding a
        // sample; the shared borrow does not overlap a sample's.
        debug_assert!(self.held.is_none());
        // SAFETY: no sample borrows the subscriber (see above); a shared read.
        unsafe { self.sub.as_ref() }.sleep_target()
    }
    fn is_ready(&mut self) -> bool {
        // A reading that holds a sample is not ready: it must release first.
        self.subscriber().is_ok_and(|s| s.is_ready())
    }
    fn check_liveness(&mut self) {
        if let Ok(s) = self.subscriber() {
            s.check_liveness();
        }
    }
    fn refusal(&mut self) -> Option<ringcast::Refusal> {
        self.subscriber().ok().and_then(|s| s.refusal())
    }
}

impl ringcast_subscriber {
    /// The subscriber's state, wherever it lives.
    pub(crate) fn reading(&mut self) -> &mut Reading {
        match &mut self.place {
            Place::Own(r) => r,
            Place::InSet { set, key } => {
                // SAFETY: a set keeps a pointer to each member handle and, when destroyed,
                // moves every member back into its handle first; so a handle `InSet` names
                // a live set. The set and its members are used by one thread (the
                // documented contract), so no other reference to the set is in use.
                let set = unsafe { set.as_mut() };
                set.member(*key)
            }
            Place::Moving => unreachable!("a subscriber handle is never left moving"),
        }
    }
}

/// # Safety
/// `s` is NULL or a live handle, used by this thread only.
pub(crate) unsafe fn handle<'a>(
    s: *mut ringcast_subscriber,
) -> Result<&'a mut ringcast_subscriber, Failure> {
    // SAFETY: NULL or a live handle, by the caller's contract.
    unsafe { s.as_mut() }.ok_or_else(|| Failure::null("subscriber"))
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
            place: Place::Own(Reading::new(sub)),
        };
        // SAFETY: `out` was checked by `clear`.
        unsafe { boxed::give(out, value) };
        Ok(RINGCAST_OK)
    })
}

/// Receives the next message into `*out` and holds it until `ringcast_sample_release`.
/// `timeout_ns < 0` waits for ever, `0` does not wait, `> 0` waits at most that long.
/// Returns `RINGCAST_OK`, `RINGCAST_TIMEOUT`, `RINGCAST_DISCONNECTED` (the publisher is gone
/// and everything was received), `RINGCAST_EVICTED`, `RINGCAST_CORRUPT` (a message was
/// skipped), or `RINGCAST_ERR_SAMPLE_OUTSTANDING` (one sample at a time).
///
/// # Safety
/// `s` is a live handle (or NULL); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_subscriber_recv(
    s: *mut ringcast_subscriber,
    timeout_ns: i64,
    out: *mut ringcast_sample,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let reading = unsafe { handle(s) }?.reading();
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let sample = reading.recv(timeout_arg(timeout_ns))?;
        // SAFETY: non-NULL (checked) and writable, by the caller's contract.
        unsafe { out.write(sample) };
        Ok(RINGCAST_OK)
    })
}

/// Releases the held sample `*sample` (under `Block`, frees its slot for the publisher)
/// and clears `*sample`. `RINGCAST_ERR_NOT_HELD` if it is not the held one (e.g. released
/// twice).
///
/// # Safety
/// `s` is a live handle (or NULL); `sample` is NULL or readable and writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_sample_release(
    s: *mut ringcast_subscriber,
    sample: *mut ringcast_sample,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let reading = unsafe { handle(s) }?.reading();
        // SAFETY: NULL or readable and writable, by the caller's contract.
        let sample = unsafe { sample.as_mut() }.ok_or_else(|| Failure::null("sample"))?;
        reading.release(sample)?;
        *sample = ringcast_sample {
            data: std::ptr::null(),
            len: 0,
            seq: 0,
            lost: 0,
        };
        Ok(RINGCAST_OK)
    })
}

/// What `ringcast_subscriber_drain` calls with each message and the caller's `ctx`. The
/// sample is valid only during the call (it is released right after); do not release it.
type DrainFn = unsafe extern "C" fn(sample: *const ringcast_sample, ctx: *mut c_void);

impl Reading {
    /// Hands every message ready now (up to `max`) to `f`, releasing slots once per run;
    /// lags are folded into the next sample's `lost`, as in `recv`. Returns how many were
    /// delivered and what stopped it (a status other than OK for the end, an eviction or a
    /// corrupt slot).
    fn drain(
        &mut self,
        max: usize,
        f: DrainFn,
        ctx: *mut c_void,
    ) -> Result<(usize, Option<Failure>), Failure> {
        let mut pending_lost = self.pending_lost;
        let sub = self.subscriber()?;
        let (mut delivered, mut lagged) = (0usize, 0u64);
        let stopped = loop {
            let d = sub.drain(max - delivered, |sample| {
                let out = ringcast_sample {
                    data: sample.as_ptr().cast(),
                    len: sample.len(),
                    seq: sample.seq(),
                    lost: std::mem::take(&mut pending_lost),
                };
                // SAFETY: `f` is the caller's callback, called as its contract says: with a
                // sample valid for the call (it is dropped, released, after it returns).
                unsafe { f(&out, ctx) };
            });
            delivered += d.delivered;
            match d.stopped {
                // Folded into the next sample's `lost`; drain on unless at the bound.
                Some(ringcast::TryRecvError::Lagged(n)) => {
                    pending_lost += n;
                    lagged += n;
                    if delivered == max {
                        break None;
                    }
                }
                Some(e) => break Some(Failure::from(RecvTimeoutError::from(e))),
                None => break None,
            }
        };
        self.pending_lost = pending_lost;
        self.lost_total += lagged;
        Ok((delivered, stopped))
    }
}

/// Hands every message ready now, up to `max`, to `callback(sample, ctx)` in order, without
/// waiting, and stores how many in `*count`. Under `Block` the slots go back to the
/// publisher once per run of consecutive messages, all of them before this returns (one
/// cursor store and one wake-up check per run instead of per message). Returns
/// `RINGCAST_OK` when nothing more was ready (or `max` was reached), else what stopped it
/// after `*count` messages: `RINGCAST_DISCONNECTED`, `RINGCAST_EVICTED`, `RINGCAST_CORRUPT`.
/// `RINGCAST_ERR_SAMPLE_OUTSTANDING` if a sample of `ringcast_subscriber_recv` is held.
/// `callback` must not publish into this same topic with a call that waits for room.
///
/// # Safety
/// `s` is a live handle (or NULL); `callback` is NULL or a function safe to call with a
/// valid sample and `ctx`; `count` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_subscriber_drain(
    s: *mut ringcast_subscriber,
    max: usize,
    callback: Option<unsafe extern "C" fn(sample: *const ringcast_sample, ctx: *mut c_void)>,
    ctx: *mut c_void,
    count: *mut usize,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let reading = unsafe { handle(s) }?.reading();
        let callback = callback.ok_or_else(|| Failure::null("callback"))?;
        if count.is_null() {
            return Err(Failure::null("count"));
        }
        // SAFETY: writable, by the caller's contract (cleared first, so an error leaves 0).
        unsafe { count.write(0) };
        let (delivered, stopped) = reading.drain(max, callback, ctx)?;
        // SAFETY: as above.
        unsafe { count.write(delivered) };
        match stopped {
            Some(f) => Err(f),
            None => Ok(RINGCAST_OK),
        }
    })
}

/// `*out` = messages this subscriber has lost in all (`Overwrite` laps): the sum of the
/// `lost` of every sample received so far, plus any loss the next sample will report.
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
        let reading = unsafe { handle(s) }?.reading();
        // SAFETY: NULL or writable, by the caller's contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
        *out = reading.lost_total;
        Ok(RINGCAST_OK)
    })
}

/// Detaches and frees the handle (removing it from its wait set, if any). NULL is a
/// no-op. A held sample is released first, and the call returns `RINGCAST_ABANDONED` to
/// say so. The handle is freed whatever the call returns.
///
/// # Safety
/// `s` is NULL or a live handle, not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn ringcast_subscriber_destroy(
    s: *mut ringcast_subscriber,
) -> ringcast_status {
    guard(|| {
        // SAFETY: NULL or a live handle, not used again, by the caller's contract.
        let Some(mut h) = (unsafe { boxed::take(s) }) else {
            return Ok(RINGCAST_OK);
        };
        if let Place::InSet { mut set, .. } = h.place {
            // SAFETY: a handle `InSet` names a live set (see `reading`).
            unsafe { set.as_mut() }.take_back(&mut h);
        }
        let had_sample = h.reading().holds_sample();
        drop(h);
        Ok(if had_sample {
            RINGCAST_ABANDONED
        } else {
            RINGCAST_OK
        })
    })
}
