//! `ringcast_waitset`: one thread waits on many subscribers at once (futex_waitv), and a
//! thread-safe notifier wakes it.

use std::ptr::NonNull;

use ringcast::{Key, Notifier, Subscriber, WaitError, WaitSet, MAX_MEMBERS};

use crate::boxed;
use crate::error::{guard, timeout_arg, Failure};
use crate::reentry;
use crate::status::ringcast_status::{self, *};
use crate::subscriber::{handle, ringcast_subscriber, Place};

/// A set of subscribers one thread waits on (opaque). The set owns its members' state
/// while they are in it; their handles stay valid and are used as before (receive,
/// release), by the set's thread.
pub struct ringcast_waitset {
    set: WaitSet,
    /// The handles of the members and their keys, so destroying the set can give each its
    /// state back.
    members: Vec<(NonNull<ringcast_subscriber>, Key<Subscriber>)>,
    /// Where the next wait starts reporting ready members, so that members ready past a
    /// short `ready` array are reported by the next wait (round robin).
    cursor: usize,
}

/// Wakes a wait set's waiter from any thread (opaque; thread-safe).
pub struct ringcast_notifier {
    notifier: Notifier,
}

impl ringcast_waitset {
    /// A member's subscriber.
    pub(crate) fn member(&mut self, key: Key<Subscriber>) -> &mut Subscriber {
        self.set
            .get_mut(key)
            .expect("a handle in a set has a key of that set")
    }

    /// Moves `h`'s state out of this set back into `h`.
    pub(crate) fn take_back(&mut self, h: &mut ringcast_subscriber) {
        let Place::InSet { key, .. } = h.place else {
            return;
        };
        let sub = self
            .set
            .remove(key)
            .expect("a handle in a set has a key of that set");
        h.place = Place::Own(sub);
        let ptr: *const ringcast_subscriber = h;
        self.members.retain(|(m, _)| !std::ptr::eq(m.as_ptr(), ptr));
    }
}

impl Drop for ringcast_waitset {
    fn drop(&mut self) {
        for (m, key) in std::mem::take(&mut self.members) {
            // SAFETY: a member handle is live while it is in the set (destroying a
            // subscriber takes it out first), and used by this thread.
            let h = unsafe { &mut *m.as_ptr() };
            if let Some(sub) = self.set.remove(key) {
                h.place = Place::Own(sub);
            }
        }
    }
}

/// # Safety
/// `ws` is NULL or a live handle, used by this thread only.
unsafe fn set_handle<'a>(ws: *mut ringcast_waitset) -> Result<&'a mut ringcast_waitset, Failure> {
    reentry::refuse(ws, "wait set")?;
    // SAFETY: NULL or a live handle, by the caller's contract; not in use by a call that
    // runs a callback (checked), so this is the only reference.
    unsafe { ws.as_mut() }.ok_or_else(|| Failure::null("waitset"))
}

/// Creates an empty wait set of at most `capacity` members (0: the most, 65536).
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_waitset_create(
    capacity: usize,
    out: *mut *mut ringcast_waitset,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        unsafe { boxed::clear(out) }?;
        let capacity = if capacity == 0 { MAX_MEMBERS } else { capacity };
        let ws = ringcast_waitset {
            set: WaitSet::with_capacity(capacity),
            members: Vec::new(),
            cursor: 0,
        };
        // SAFETY: `out` was checked by `clear`.
        unsafe { boxed::give(out, ws) };
        Ok(RINGCAST_OK)
    })
}

/// Adds subscriber `s` to the set. Refused: `RINGCAST_ERR_WAITSET` (already in a set),
/// `RINGCAST_ERR_SAMPLE_OUTSTANDING` (release first), `RINGCAST_ERR_CLOSED` (its topic is
/// closed and drained), `RINGCAST_ERR_RESOURCE` (the set is full).
///
/// # Safety
/// `ws` and `s` are live handles (or NULL), used by this thread.
#[no_mangle]
pub unsafe extern "C" fn ringcast_waitset_add(
    ws: *mut ringcast_waitset,
    s: *mut ringcast_subscriber,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let set = unsafe { set_handle(ws) }?;
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(s) }?;
        let held = h.holds_sample();
        let sub = match &h.place {
            Place::Own(_) if held => {
                return Err(Failure::new(
                    RINGCAST_ERR_SAMPLE_OUTSTANDING,
                    "release the held sample before adding the subscriber to a wait set",
                ))
            }
            Place::Own(_) => match std::mem::replace(&mut h.place, Place::Moving) {
                Place::Own(s) => s,
                _ => unreachable!("matched above"),
            },
            _ => {
                return Err(Failure::new(
                    RINGCAST_ERR_WAITSET,
                    "the subscriber is already in a wait set",
                ))
            }
        };
        match set.set.add(sub) {
            Ok(key) => {
                // The pointers C gave us (checked non-NULL above), not ones derived from
                // the references of this call, which end with it.
                let (ws, s) = (NonNull::new(ws), NonNull::new(s));
                let (Some(ws), Some(s)) = (ws, s) else {
                    unreachable!("checked non-NULL")
                };
                h.place = Place::InSet { set: ws, key };
                set.members.push((s, key));
                Ok(RINGCAST_OK)
            }
            Err(e) => {
                let status = match e.refusal {
                    ringcast::Refusal::Full { .. } => RINGCAST_ERR_RESOURCE,
                    _ => RINGCAST_ERR_CLOSED,
                };
                let message = e.to_string();
                h.place = Place::Own(e.into_member());
                Err(Failure::new(status, message))
            }
        }
    })
}

/// Takes subscriber `s` out of the set (`RINGCAST_ERR_WAITSET` if it is not in it).
///
/// # Safety
/// As for [`ringcast_waitset_add`].
#[no_mangle]
pub unsafe extern "C" fn ringcast_waitset_remove(
    ws: *mut ringcast_waitset,
    s: *mut ringcast_subscriber,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let set = unsafe { set_handle(ws) }?;
        // SAFETY: by the caller's contract.
        let h = unsafe { handle(s) }?;
        match h.place {
            Place::InSet { set: owner, .. } if std::ptr::eq(owner.as_ptr(), &*set) => {
                set.take_back(h);
                Ok(RINGCAST_OK)
            }
            _ => Err(Failure::new(
                RINGCAST_ERR_WAITSET,
                "the subscriber is not in this wait set",
            )),
        }
    })
}

/// Waits until a member can be received from without waiting (a message, its topic's end,
/// an eviction), the notifier rings, or `timeout_ns` passes (`< 0`: no timeout). Writes up
/// to `ready_cap` ready members to `ready` and their number to `*ready_len`; when more are
/// ready, the next wait starts reporting after the last one reported (round robin), so
/// none is starved. Returns `RINGCAST_OK`,
/// `RINGCAST_NOTIFIED`, or `RINGCAST_TIMEOUT`. Every member must have released its sample
/// (`RINGCAST_ERR_SAMPLE_OUTSTANDING`); an empty set without a notifier cannot wait for
/// ever (`RINGCAST_ERR_WAITSET`).
///
/// # Safety
/// `ws` is a live handle (or NULL); `ready` is NULL or writable for `ready_cap` pointers;
/// `ready_len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_waitset_wait(
    ws: *mut ringcast_waitset,
    timeout_ns: i64,
    ready: *mut *mut ringcast_subscriber,
    ready_cap: usize,
    ready_len: *mut usize,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let ws = unsafe { set_handle(ws) }?;
        if ready.is_null() && ready_cap > 0 {
            return Err(Failure::null("ready (with a non-zero ready_cap)"));
        }
        // SAFETY: NULL or writable, by the caller's contract.
        let ready_len = unsafe { ready_len.as_mut() }.ok_or_else(|| Failure::null("ready_len"))?;
        *ready_len = 0;
        let (set, members) = (&mut ws.set, &ws.members);
        if members
            .iter()
            .any(|(_, k)| set.get_mut(*k).is_some_and(|s| s.kept_info().is_some()))
        {
            return Err(Failure::new(
                RINGCAST_ERR_SAMPLE_OUTSTANDING,
                "a member holds a sample: release it before waiting",
            ));
        }
        let wake = match timeout_arg(timeout_ns) {
            None => ws.set.wait(),
            Some(t) => ws.set.wait_timeout(t),
        }
        .map_err(|e: WaitError| Failure::new(RINGCAST_ERR_WAITSET, e.to_string()))?;
        let mut n = 0;
        let len = ws.members.len();
        for j in 0..len {
            if n == ready_cap {
                // Start after the last one reported next time.
                ws.cursor = (ws.cursor + j) % len;
                break;
            }
            let at = (ws.cursor + j) % len;
            let (member, key) = ws.members[at];
            if ws.set.is_ready(key) {
                // SAFETY: `n < ready_cap` and `ready` is writable for `ready_cap` pointers.
                unsafe { ready.add(n).write(member.as_ptr()) };
                n += 1;
            }
        }
        *ready_len = n;
        Ok(if wake.notified() {
            RINGCAST_NOTIFIED
        } else if wake.timed_out() {
            RINGCAST_TIMEOUT
        } else {
            RINGCAST_OK
        })
    })
}

/// Creates a notifier for the set: `ringcast_notifier_notify` from any thread wakes the
/// set's waiter with `RINGCAST_NOTIFIED`. Destroy it with `ringcast_notifier_destroy` (it
/// may outlive the set; ringing it then does nothing).
///
/// # Safety
/// `ws` is a live handle (or NULL); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_waitset_notifier(
    ws: *mut ringcast_waitset,
    out: *mut *mut ringcast_notifier,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        unsafe { boxed::clear(out) }?;
        // SAFETY: by the caller's contract.
        let ws = unsafe { set_handle(ws) }?;
        let n = ringcast_notifier {
            notifier: ws.set.notifier(),
        };
        // SAFETY: `out` was checked by `clear`.
        unsafe { boxed::give(out, n) };
        Ok(RINGCAST_OK)
    })
}

/// Wakes the set's waiter (or its next wait). Any thread; no system call if it is awake.
///
/// # Safety
/// `n` is NULL or a live notifier.
#[no_mangle]
pub unsafe extern "C" fn ringcast_notifier_notify(n: *const ringcast_notifier) -> ringcast_status {
    guard(|| {
        // SAFETY: NULL or live, by the caller's contract; `Notifier` is `Sync`.
        let n = unsafe { n.as_ref() }.ok_or_else(|| Failure::null("notifier"))?;
        n.notifier.notify();
        Ok(RINGCAST_OK)
    })
}

/// Frees a notifier. NULL is a no-op.
///
/// # Safety
/// `n` is NULL or a live notifier, not used again (by any thread) after this call.
#[no_mangle]
pub unsafe extern "C" fn ringcast_notifier_destroy(n: *mut ringcast_notifier) -> ringcast_status {
    guard(|| {
        // SAFETY: NULL or a live notifier, not used again, by the caller's contract.
        drop(unsafe { boxed::take(n) });
        Ok(RINGCAST_OK)
    })
}

/// Frees the set; its members' handles stay valid (with their state back in them). NULL
/// is a no-op. `RINGCAST_ERR_REENTRANT` (nothing done) from inside a callback that a
/// member of the set is running.
///
/// # Safety
/// `ws` is NULL or a live handle, not used again after this call (unless it returned
/// `RINGCAST_ERR_REENTRANT`).
#[no_mangle]
pub unsafe extern "C" fn ringcast_waitset_destroy(ws: *mut ringcast_waitset) -> ringcast_status {
    guard(|| {
        reentry::refuse(ws, "wait set")?;
        // SAFETY: NULL or a live handle, not used again, by the caller's contract.
        drop(unsafe { boxed::take(ws) });
        Ok(RINGCAST_OK)
    })
}
