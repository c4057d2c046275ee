//! `ringcast_subscriber`: attach, receive (in place under `Block`), release.

use std::ffi::{c_char, c_int, c_void};
use std::ops::ControlFlow;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

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
    /// Lag reported but not yet given to C in a sample's `lost` (a receive that lags and
    /// then times out, or ends, keeps it for the next sample).
    pending_lost: u64,
    /// Every message lost to lapping since attach.
    lost_total: u64,
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
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringcast_sample {
    /// The payload (read-only).
    pub data: *const c_void,
    /// Its length.
    pub len: usize,
    /// The message's sequence number (0 for the topic's first).
    pub seq: u64,
    /// `Overwrite` (or a monitor): messages lost (overwritten unread) just before this
    /// one; 0 for an ordinary subscriber of a `Block` topic.
    pub lost: u64,
}

impl ringcast_subscriber {
    /// The subscriber, wherever it lives.
    pub(crate) fn subscriber(&mut self) -> Result<&mut Subscriber, Failure> {
        match &mut self.place {
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
                    return Ok(ringcast_sample {
                        data,
                        len: kept.len,
                        seq: kept.seq,
                        lost: std::mem::take(&mut self.pending_lost),
                    });
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
        match self.held {
            Some((seq, data)) if seq == sample.seq && data == sample.data => {
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
    // SAFETY: NULL or a live handle, by the caller's contract; not in use by a call that
    // runs a callback (checked), so this is the only reference.
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
            place: Place::Own(sub),
            held: None,
            pending_lost: 0,
            lost_total: 0,
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
        let h = unsafe { handle(s) }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let sample = h.recv(timeout_arg(timeout_ns))?;
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
        let h = unsafe { handle(s) }?;
        // SAFETY: NULL or readable and writable, by the caller's contract.
        let sample = unsafe { sample.as_mut() }.ok_or_else(|| Failure::null("sample"))?;
        h.release(sample)?;
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
        let mut pending_lost = self.pending_lost;
        let set = self.set_ptr();
        let sub = self.subscriber()?;
        // From here until the callbacks are done, calls on this handle or its set refuse.
        let _running = Running::mark(&[me.cast(), set.cast()]);
        let (mut delivered, mut lagged) = (0usize, 0u64);
        let stopped = loop {
            let d = sub.drain_while(max - delivered, |sample| {
                let out = ringcast_sample {
                    data: sample.as_ptr().cast(),
                    len: sample.len(),
                    seq: sample.seq(),
                    lost: std::mem::take(&mut pending_lost),
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
        let h = unsafe { handle(s) }?;
        // SAFETY: NULL or writable, by the caller's contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
        *out = h.lost_total;
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
        let set = unsafe { handle(s) }?.set_ptr();
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
