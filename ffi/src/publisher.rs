//! `ringcast_publisher`: create, send, loan / commit / abort, wait for subscribers.

use std::ffi::{c_char, c_void};
use std::time::Duration;

use ringcast::{Full, Publisher};

use crate::boxed;
use crate::config::{publisher_config, ringcast_publisher_config};
use crate::error::{guard, str_arg, timeout_arg, Failure};
use crate::status::ringcast_status::{self, *};

/// A publisher of a topic (opaque): its only one, or one of several if the topic admits
/// several (`max_publishers`). Used by one thread at a time.
pub struct ringcast_publisher {
    publisher: Publisher,
    /// The loan handed to C (its sequence and data pointer, compared, never dereferenced
    /// here): its slot stays claimed in the publisher (`Publisher::pending_loan`) until
    /// commit or abort.
    loan: Option<(u64, *mut c_void)>,
    /// The slot size.
    capacity: usize,
}

impl ringcast_publisher {
    /// The publisher, when no loan is outstanding.
    fn publisher(&mut self) -> Result<&mut Publisher, Failure> {
        if self.loan.is_some() {
            return Err(Failure::new(
                RINGCAST_ERR_LOAN_OUTSTANDING,
                "a loan is outstanding: commit or abort it first",
            ));
        }
        Ok(&mut self.publisher)
    }

    /// Checks that `loan` describes the outstanding loan.
    fn outstanding(&self, loan: &ringcast_loan) -> Result<(), Failure> {
        match self.loan {
            Some((seq, data)) if seq == loan.seq && data == loan.data => Ok(()),
            Some(_) => Err(Failure::new(
                RINGCAST_ERR_NOT_HELD,
                "this loan is not the one outstanding on this publisher",
            )),
            None => Err(Failure::new(
                RINGCAST_ERR_NOT_HELD,
                "no loan is outstanding on this publisher (committed or aborted already?)",
            )),
        }
    }
}

/// A loaned slot: write up to `capacity` bytes at `data`, then commit (or abort) it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringcast_loan {
    /// The slot's payload, writable for `capacity` bytes until commit or abort.
    pub data: *mut c_void,
    /// The slot size.
    pub capacity: usize,
    /// The sequence number the message will have.
    pub seq: u64,
}

/// # Safety
/// `p` is NULL or a live handle from `ringcast_publisher_create`, used by this thread only.
unsafe fn handle<'a>(p: *mut ringcast_publisher) -> Result<&'a mut ringcast_publisher, Failure> {
    // SAFETY: the caller's contract.
    unsafe { boxed::own(p, "publisher") }
}

impl boxed::Inheritable for ringcast_publisher {
    fn inherited(&self) -> bool {
        self.publisher.is_inherited()
    }
}

/// The getters' body: `*out = f(publisher)`, NULLs refused.
///
/// # Safety
/// `p` is a live handle (or NULL); `out` is NULL or writable.
unsafe fn get<T>(
    p: *mut ringcast_publisher,
    out: *mut T,
    f: impl FnOnce(&mut ringcast_publisher) -> Result<T, Failure>,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(p) }?;
        // SAFETY: NULL or writable, by the caller's contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
        *out = f(h)?;
        Ok(RINGCAST_OK)
    })
}

/// Creates `topic` with `cfg` (NULL: the defaults) and stores its publisher in `*out`. If
/// the topic exists, admits several publishers (`max_publishers > 1`) and has a live one,
/// this publisher joins it in a lane of its own (`cfg` must then be the topic's
/// configuration). Failures: `RINGCAST_ERR_NAME`, `_CONFIG`, `_EXISTS` (a live publisher
/// has the topic to itself), `_MISMATCH` (a shared topic with another configuration),
/// `_PUBLISHERS_FULL` (a shared topic with all its publishers live), `_NOT_A_SEGMENT`,
/// `_PERMISSION`, `_RESOURCE`, `_VERSION`, `_INVALID_ARGUMENT`.
///
/// # Safety
/// `topic` is NULL or NUL-terminated; `cfg` is NULL or a readable config (see its
/// `_init`); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_publisher_create(
    topic: *const c_char,
    cfg: *const ringcast_publisher_config,
    out: *mut *mut ringcast_publisher,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        unsafe { boxed::clear(out) }?;
        // SAFETY: by the caller's contract.
        let topic = unsafe { str_arg(topic, "topic") }?;
        // SAFETY: by the caller's contract.
        let config = unsafe { publisher_config(cfg) }?;
        let publisher = Publisher::create(topic, config)?;
        let value = ringcast_publisher {
            loan: None,
            capacity: publisher.capacity(),
            publisher,
        };
        // SAFETY: `out` was checked by `clear`.
        unsafe { boxed::give(out, value) };
        Ok(RINGCAST_OK)
    })
}

/// Copies `len` bytes at `data` into the next slot and publishes them; under `Block`,
/// waits for room. `*seq_out` (if not NULL) gets the message's sequence number.
/// `RINGCAST_ERR_TOO_LARGE` if `len` exceeds the slot size.
///
/// # Safety
/// `p` is a live handle (or NULL); `data` is readable for `len` bytes (NULL only with
/// `len == 0`); `seq_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_publisher_send(
    p: *mut ringcast_publisher,
    data: *const c_void,
    len: usize,
    seq_out: *mut u64,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(p) }?;
        // Before forming the slice: the caller's buffer may be exactly a slot long.
        if len > h.capacity {
            let capacity = h.capacity;
            return Err(Failure::new(
                RINGCAST_ERR_TOO_LARGE,
                format!("message of {len} bytes does not fit a {capacity}-byte slot"),
            ));
        }
        let publisher = h.publisher()?;
        let bytes: &[u8] = match (data.is_null(), len) {
            (true, 0) => &[],
            (true, _) => return Err(Failure::null("data (with a non-zero len)")),
            // SAFETY: readable for `len` bytes, by the caller's contract.
            (false, _) => unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) },
        };
        let seq = publisher.send(bytes)?;
        // SAFETY: NULL or writable, by the caller's contract.
        if let Some(out) = unsafe { seq_out.as_mut() } {
            *out = seq;
        }
        Ok(RINGCAST_OK)
    })
}

/// Loans the next slot for an in-place write. `timeout_ns < 0` waits for room for ever
/// (`Block`), `0` does not wait (`RINGCAST_FULL`), `> 0` waits at most that long
/// (`RINGCAST_TIMEOUT`); `*out` is cleared unless a loan is given. `Overwrite` never
/// waits. One loan at a time per publisher (`RINGCAST_ERR_LOAN_OUTSTANDING`). Under
/// `Block` the loan is the slot itself; under `Overwrite` (where a lapped subscriber may
/// be copying the slot) it is the publisher's private staging buffer, copied into the
/// slot with atomic word stores at commit.
///
/// # Safety
/// `p` is a live handle (or NULL); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_publisher_loan(
    p: *mut ringcast_publisher,
    timeout_ns: i64,
    out: *mut ringcast_loan,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(p) }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let capacity = h.capacity;
        let publisher = h.publisher()?;
        // SAFETY: non-NULL (checked) and writable; not the outstanding loan's struct (there
        // is none, checked above), so clearing it loses nothing.
        unsafe { out.write(cleared()) };
        // The Rust loan is dropped at the end of this call; its slot stays claimed.
        let mut loan = match timeout_arg(timeout_ns) {
            None => publisher.loan(),
            Some(Duration::ZERO) => publisher
                .try_loan()
                .map_err(|Full| Failure::outcome(RINGCAST_FULL))?,
            Some(t) => publisher
                .loan_timeout(t)
                .map_err(|Full| Failure::outcome(RINGCAST_TIMEOUT))?,
        };
        let value = ringcast_loan {
            data: loan.as_mut_ptr().cast(),
            capacity,
            seq: loan.seq(),
        };
        h.loan = Some((value.seq, value.data));
        // SAFETY: non-NULL (checked) and writable, by the caller's contract.
        unsafe { out.write(value) };
        Ok(RINGCAST_OK)
    })
}

/// Publishes the first `len` bytes of the outstanding loan `*loan` (then clears `*loan`).
/// `RINGCAST_ERR_TOO_LARGE` if `len > loan->capacity` (the loan stays outstanding);
/// `RINGCAST_ERR_NOT_HELD` if `*loan` is not the outstanding loan (e.g. committed twice).
///
/// # Safety
/// `p` is a live handle (or NULL); `loan` is NULL or a readable and writable loan;
/// `seq_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_loan_commit(
    p: *mut ringcast_publisher,
    loan: *mut ringcast_loan,
    len: usize,
    seq_out: *mut u64,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(p) }?;
        // SAFETY: NULL or readable and writable, by the caller's contract.
        let loan = unsafe { loan.as_mut() }.ok_or_else(|| Failure::null("loan"))?;
        h.outstanding(loan)?;
        let capacity = h.capacity;
        if len > capacity {
            return Err(Failure::new(
                RINGCAST_ERR_TOO_LARGE,
                format!("commit of {len} bytes into a {capacity}-byte slot"),
            ));
        }
        h.loan = None;
        let seq = h
            .publisher
            .pending_loan()
            .expect("an outstanding loan's slot stays claimed")
            .commit(len);
        *loan = cleared();
        // SAFETY: NULL or writable, by the caller's contract.
        if let Some(out) = unsafe { seq_out.as_mut() } {
            *out = seq;
        }
        Ok(RINGCAST_OK)
    })
}

/// Abandons the outstanding loan `*loan` (nothing is published; the next loan reuses the
/// slot) and clears `*loan`. `RINGCAST_ERR_NOT_HELD` if it is not the outstanding one.
///
/// # Safety
/// As for [`ringcast_loan_commit`].
#[no_mangle]
pub unsafe extern "C" fn ringcast_loan_abort(
    p: *mut ringcast_publisher,
    loan: *mut ringcast_loan,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(p) }?;
        // SAFETY: NULL or readable and writable, by the caller's contract.
        let loan = unsafe { loan.as_mut() }.ok_or_else(|| Failure::null("loan"))?;
        h.outstanding(loan)?;
        h.loan = None;
        *loan = cleared();
        Ok(RINGCAST_OK)
    })
}

fn cleared() -> ringcast_loan {
    ringcast_loan {
        data: std::ptr::null_mut(),
        capacity: 0,
        seq: 0,
    }
}

/// `*out` = the slot size (the largest message) of the publisher's topic.
///
/// # Safety
/// `p` is a live handle (or NULL); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_publisher_slot_size(
    p: *mut ringcast_publisher,
    out: *mut usize,
) -> ringcast_status {
    // SAFETY: passed on from the caller's contract.
    unsafe { get(p, out, |h| Ok(h.capacity)) }
}

/// `*out` = the lane this publisher writes: 0 on a topic with one publisher, else which of
/// the topic's `max_publishers` lanes it took. Subscribers see it in `ringcast_sample.lane`.
///
/// # Safety
/// `p` is a live handle (or NULL); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_publisher_lane(
    p: *mut ringcast_publisher,
    out: *mut u32,
) -> ringcast_status {
    // SAFETY: passed on from the caller's contract.
    unsafe { get(p, out, |h| Ok(h.publisher.id().lane)) }
}

/// `*out` = this publisher's id in its lane, as subscribers see it in
/// `ringcast_sample.writer`: a publisher that takes over a lane another one left has a new
/// id there, so (lane, writer) names one publisher.
///
/// # Safety
/// `p` is a live handle (or NULL); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_publisher_writer(
    p: *mut ringcast_publisher,
    out: *mut u32,
) -> ringcast_status {
    // SAFETY: passed on from the caller's contract.
    unsafe { get(p, out, |h| Ok(h.publisher.id().writer)) }
}

/// `*out` = subscribers attached and alive now (refused while a loan is outstanding).
///
/// # Safety
/// `p` is a live handle (or NULL); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_publisher_subscriber_count(
    p: *mut ringcast_publisher,
    out: *mut usize,
) -> ringcast_status {
    // SAFETY: passed on from the caller's contract.
    unsafe { get(p, out, |h| Ok(h.publisher()?.subscriber_count())) }
}

/// Waits until at least `n` subscribers are attached: `timeout_ns < 0` for ever, else at
/// most that long (`RINGCAST_TIMEOUT`). Refused while a loan is outstanding.
///
/// # Safety
/// `p` is a live handle (or NULL).
#[no_mangle]
pub unsafe extern "C" fn ringcast_publisher_wait_subscribers(
    p: *mut ringcast_publisher,
    n: usize,
    timeout_ns: i64,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let publisher = unsafe { handle(p) }?.publisher()?;
        let timeout = timeout_arg(timeout_ns).unwrap_or(Duration::MAX);
        publisher
            .wait_for_subscribers(n, timeout)
            .map_err(|_| Failure::outcome(RINGCAST_TIMEOUT))?;
        Ok(RINGCAST_OK)
    })
}

/// Leaves the topic and frees the handle: the topic closes (subscribers drain it, then see
/// `RINGCAST_DISCONNECTED`) when this was its last publisher; otherwise it lives on with
/// the others, and subscribers drain this publisher's lane. NULL is a no-op. An
/// outstanding loan is aborted first, and the call returns `RINGCAST_ABANDONED` to say so.
/// The handle is freed whatever the call returns.
///
/// # Safety
/// `p` is NULL or a live handle, not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn ringcast_publisher_destroy(p: *mut ringcast_publisher) -> ringcast_status {
    guard(|| {
        // SAFETY: NULL or a live handle, not used again, by the caller's contract.
        let Some(h) = (unsafe { boxed::take(p) }) else {
            return Ok(RINGCAST_OK);
        };
        let had_loan = h.loan.is_some();
        drop(h);
        Ok(if had_loan {
            RINGCAST_ABANDONED
        } else {
            RINGCAST_OK
        })
    })
}
