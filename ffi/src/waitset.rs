//! `ringcast_waitset`: one thread waits on many subscribers, servers and clients at once
//! (futex_waitv), and a thread-safe notifier wakes it.

use std::ptr::NonNull;
use std::time::Instant;

use ringcast::fork::Lineage;
use ringcast::service::{Client, Server};
use ringcast::{Key, Member, Notifier, Subscriber, WaitError, WaitSet, Wakeup, MAX_MEMBERS};

use crate::boxed;
use crate::error::{guard, timeout_arg, Failure};
use crate::reentry;
use crate::service::{self, ringcast_client, ringcast_server};
use crate::status::ringcast_status::{self, *};
use crate::subscriber::{handle, ringcast_subscriber, Place};

/// A set of subscribers, servers and clients one thread waits on (opaque). The set owns
/// its members' state while they are in it; their handles stay valid and are used as
/// before (receive, release, respond, call), by the set's thread.
pub struct ringcast_waitset {
    set: WaitSet,
    /// The handles of the members and their keys, so destroying the set can give each its
    /// state back.
    members: Vec<Entry>,
    /// Where the next wait starts reporting ready members, so that members ready past a
    /// short `ready` array are reported by the next wait (round robin).
    cursor: usize,
    /// Per member (in `members` order): whether the last wait found it ready (reused).
    ready: Vec<bool>,
    /// The process that made it (a `fork()` child refuses to use it: its members are
    /// the parent's).
    lineage: Lineage,
}

/// Wakes a wait set's waiter from any thread (opaque; thread-safe).
pub struct ringcast_notifier {
    notifier: Notifier,
}

/// What kind of handle a `ringcast_member` is.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ringcast_member_kind {
    /// A `ringcast_subscriber`.
    RINGCAST_MEMBER_SUBSCRIBER = 1,
    /// A `ringcast_server`.
    RINGCAST_MEMBER_SERVER = 2,
    /// A `ringcast_client`.
    RINGCAST_MEMBER_CLIENT = 3,
}

/// A ready member of a wait set, as `ringcast_waitset_wait_members` reports it: the
/// pointer of its `kind` is the member's handle, the other two are NULL.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringcast_member {
    /// Which of the pointers is set.
    pub kind: ringcast_member_kind,
    /// The subscriber, for `RINGCAST_MEMBER_SUBSCRIBER` (else NULL).
    pub subscriber: *mut ringcast_subscriber,
    /// The server, for `RINGCAST_MEMBER_SERVER` (else NULL).
    pub server: *mut ringcast_server,
    /// The client, for `RINGCAST_MEMBER_CLIENT` (else NULL).
    pub client: *mut ringcast_client,
}

/// A member of a set: its handle and its key.
#[derive(Clone, Copy)]
enum Entry {
    Subscriber(NonNull<ringcast_subscriber>, Key<Subscriber>),
    Server(NonNull<ringcast_server>, Key<Server>),
    Client(NonNull<ringcast_client>, Key<Client>),
}

impl Entry {
    /// The handle's address.
    fn handle(&self) -> *const () {
        match self {
            Entry::Subscriber(p, _) => p.as_ptr().cast_const().cast(),
            Entry::Server(p, _) => p.as_ptr().cast_const().cast(),
            Entry::Client(p, _) => p.as_ptr().cast_const().cast(),
        }
    }

    /// The member as C sees it.
    fn to_c(self) -> ringcast_member {
        let mut m = ringcast_member {
            kind: ringcast_member_kind::RINGCAST_MEMBER_SUBSCRIBER,
            subscriber: std::ptr::null_mut(),
            server: std::ptr::null_mut(),
            client: std::ptr::null_mut(),
        };
        match self {
            Entry::Subscriber(p, _) => m.subscriber = p.as_ptr(),
            Entry::Server(p, _) => {
                m.kind = ringcast_member_kind::RINGCAST_MEMBER_SERVER;
                m.server = p.as_ptr();
            }
            Entry::Client(p, _) => {
                m.kind = ringcast_member_kind::RINGCAST_MEMBER_CLIENT;
                m.client = p.as_ptr();
            }
        }
        m
    }
}

/// Where a server or client lives: in its handle, or in the wait set it was added to
/// (which owns its members, as for subscribers: see `subscriber::Place`).
pub(crate) enum MemberPlace<T> {
    Own(T),
    /// Only while `ringcast_waitset_add_server` / `_add_client` moves it into the set.
    Moving,
    InSet {
        set: NonNull<ringcast_waitset>,
        key: Key<T>,
    },
}

impl<T: Member> MemberPlace<T> {
    /// The member, wherever it lives. `RINGCAST_ERR_REENTRANT` from inside a callback its
    /// set runs.
    pub(crate) fn get(&mut self) -> Result<&mut T, Failure> {
        match self {
            MemberPlace::Own(m) => Ok(m),
            MemberPlace::InSet { set, key } => {
                reentry::refuse(set.as_ptr(), "wait set")?;
                // SAFETY: a set keeps a pointer to each member handle and, when destroyed,
                // moves every member back into its handle first (and destroying a member
                // takes it out first); so a handle `InSet` names a live set. The set and
                // its members are used by one thread (the documented contract), and the
                // set is not running a callback (checked), so no other reference to it is
                // in use.
                let set = unsafe { set.as_mut() };
                Ok(set
                    .set
                    .get_mut(*key)
                    .expect("a handle in a set has a key of that set"))
            }
            MemberPlace::Moving => unreachable!("a handle is never left moving"),
        }
    }

    /// The set this member is in (NULL: none).
    pub(crate) fn set_ptr(&self) -> *const ringcast_waitset {
        match self {
            MemberPlace::InSet { set, .. } => set.as_ptr(),
            _ => std::ptr::null(),
        }
    }
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
        self.members.retain(|e| e.handle() != ptr.cast());
    }

    /// Moves the server or client at `place` (of the handle at `handle`) out of this set
    /// back into its handle.
    pub(crate) fn take_back_member<T: Member>(
        &mut self,
        place: &mut MemberPlace<T>,
        handle: *const (),
    ) {
        let MemberPlace::InSet { key, .. } = *place else {
            return;
        };
        let member = self
            .set
            .remove(key)
            .expect("a handle in a set has a key of that set");
        *place = MemberPlace::Own(member);
        self.members.retain(|e| e.handle() != handle);
    }
}

impl Drop for ringcast_waitset {
    fn drop(&mut self) {
        for entry in std::mem::take(&mut self.members) {
            match entry {
                Entry::Subscriber(m, key) => {
                    // SAFETY: a member handle is live while it is in the set (destroying
                    // a member takes it out first), and used by this thread.
                    let h = unsafe { &mut *m.as_ptr() };
                    if let Some(sub) = self.set.remove(key) {
                        h.place = Place::Own(sub);
                    }
                }
                Entry::Server(m, key) => {
                    // SAFETY: as for a subscriber.
                    let h = unsafe { &mut *m.as_ptr() };
                    if let Some(server) = self.set.remove(key) {
                        h.server = MemberPlace::Own(server);
                    }
                }
                Entry::Client(m, key) => {
                    // SAFETY: as for a subscriber.
                    let h = unsafe { &mut *m.as_ptr() };
                    if let Some(client) = self.set.remove(key) {
                        h.client = MemberPlace::Own(client);
                    }
                }
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
    unsafe { boxed::own(ws, "waitset") }
}

impl boxed::Inheritable for ringcast_waitset {
    fn inherited(&self) -> bool {
        self.lineage.inherited()
    }
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
            ready: Vec::new(),
            lineage: Lineage::current(),
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
                set.members.push(Entry::Subscriber(s, key));
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
/// ever (`RINGCAST_ERR_WAITSET`). A set with servers or clients in it is refused
/// (`RINGCAST_ERR_WAITSET`, nothing done): wait on it with
/// `ringcast_waitset_wait_members`, which reports every kind of member.
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
        if ws
            .members
            .iter()
            .any(|e| !matches!(e, Entry::Subscriber(..)))
        {
            return Err(Failure::new(
                RINGCAST_ERR_WAITSET,
                "the set has servers or clients: wait with ringcast_waitset_wait_members",
            ));
        }
        let (status, n) = ws.wait_ready(timeout_ns, ready_cap, |n, entry| {
            if let Entry::Subscriber(member, _) = entry {
                // SAFETY: `n < ready_cap` (`wait_ready` reports at most `ready_cap`) and
                // `ready` is writable for `ready_cap` pointers.
                unsafe { ready.add(n).write(member.as_ptr()) };
            }
        })?;
        *ready_len = n;
        Ok(status)
    })
}

/// Waits as `ringcast_waitset_wait` does, on a set of any members (subscribers, servers,
/// clients), and writes up to `ready_cap` ready members to `ready` (each with its kind and
/// handle), their number to `*ready_len`; round robin as `ringcast_waitset_wait`. Returns
/// `RINGCAST_OK`, `RINGCAST_NOTIFIED`, or `RINGCAST_TIMEOUT`.
///
/// Ready means a receive with a zero timeout would not return `RINGCAST_TIMEOUT`: for a
/// subscriber, as in `ringcast_waitset_wait`; for a server, a request is there (the wait
/// receives it to know, and the next `ringcast_server_recv` returns it at once) or its
/// request topic was closed (`RINGCAST_ERR_CLOSED`); greetings of new clients are handled
/// on the way and wake no one. For a client, a response is there, or its server is gone
/// (found within a liveness slice of its death: `ringcast_client_recv` of a call in flight
/// then returns `RINGCAST_DISCONNECTED`; a client whose server is gone stays ready:
/// destroy it, or remove it from the set). A response nobody waits for (to a call a
/// timed-out `ringcast_client_call` abandoned, or a later part of a stream `call` took
/// the first of) is dropped by the wait and never makes a client ready.
///
/// Every member must have released its sample, request or response
/// (`RINGCAST_ERR_SAMPLE_OUTSTANDING`); an empty set without a notifier cannot wait for
/// ever (`RINGCAST_ERR_WAITSET`).
///
/// # Safety
/// `ws` is a live handle (or NULL); `ready` is NULL or writable for `ready_cap` members;
/// `ready_len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_waitset_wait_members(
    ws: *mut ringcast_waitset,
    timeout_ns: i64,
    ready: *mut ringcast_member,
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
        let (status, n) = ws.wait_ready(timeout_ns, ready_cap, |n, entry| {
            // SAFETY: `n < ready_cap` (`wait_ready` reports at most `ready_cap`) and
            // `ready` is writable for `ready_cap` members.
            unsafe { ready.add(n).write(entry.to_c()) };
        })?;
        *ready_len = n;
        Ok(status)
    })
}

impl ringcast_waitset {
    /// The wait of `ringcast_waitset_wait` and `_wait_members`: waits, then calls
    /// `report(n, member)` for the `n`th ready member reported, at most `cap` of them,
    /// round robin. Returns the status and how many were reported.
    fn wait_ready(
        &mut self,
        timeout_ns: i64,
        cap: usize,
        mut report: impl FnMut(usize, Entry),
    ) -> Result<(ringcast_status, usize), Failure> {
        for entry in &self.members {
            let held = match *entry {
                Entry::Subscriber(_, k) => {
                    self.set.get_mut(k).is_some_and(|s| s.kept_info().is_some())
                }
                // SAFETY: a member handle is live while it is in the set, and used by this
                // thread; only its own fields are read.
                Entry::Server(p, _) => unsafe { (*p.as_ptr()).held.is_some() },
                // SAFETY: as for a server.
                Entry::Client(p, _) => unsafe { (*p.as_ptr()).held.is_some() },
            };
            if held {
                return Err(Failure::new(
                    RINGCAST_ERR_SAMPLE_OUTSTANDING,
                    "a member holds a sample, request or response: release it before waiting",
                ));
            }
        }
        let deadline = timeout_arg(timeout_ns).and_then(|t| Instant::now().checked_add(t));
        let (wake, any) = loop {
            let pending = self.members.iter().any(|e| match *e {
                // SAFETY: as above.
                Entry::Server(p, _) => unsafe { (*p.as_ptr()).ready.is_some() },
                _ => false,
            });
            let wake = if pending {
                // A server has a request the last wait received: report it now, with any
                // other member ready now.
                self.set.wait_timeout(std::time::Duration::ZERO)
            } else {
                self.set.wait_deadline(deadline)
            }
            .map_err(|e: WaitError| Failure::new(RINGCAST_ERR_WAITSET, e.to_string()))?;
            let (any, spurious) = self.settle();
            if any || !spurious || wake.notified() || wake.timed_out() {
                break (wake, any);
            }
            // Only greetings woke a server: nothing to report, wait on.
        };
        let mut n = 0;
        let len = self.members.len();
        for j in 0..len {
            if n == cap {
                // Start after the last one reported next time.
                self.cursor = (self.cursor + j) % len;
                break;
            }
            let at = (self.cursor + j) % len;
            if self.ready[at] {
                report(n, self.members[at]);
                n += 1;
            }
        }
        let status = status_of(&wake, any);
        Ok((status, n))
    }

    /// Finds which members are ready after a wait (into `self.ready`): a server the wait
    /// found ready receives its request here (kept for its next `ringcast_server_recv`),
    /// to tell a request from greetings only. Returns whether any member is ready, and
    /// whether a server was found ready with no request (greetings).
    fn settle(&mut self) -> (bool, bool) {
        self.ready.clear();
        let (mut any, mut spurious) = (false, false);
        for at in 0..self.members.len() {
            let ready = match self.members[at] {
                Entry::Subscriber(_, k) => self.set.is_ready(k),
                Entry::Client(_, k) => self.set.is_ready(k),
                Entry::Server(p, k) => {
                    // SAFETY: a member handle is live while it is in the set, and used by
                    // this thread; its `ready` field is not borrowed elsewhere (the
                    // server's state lives in this set, borrowed below separately).
                    let h = unsafe { &mut *p.as_ptr() };
                    if h.ready.is_some() {
                        true
                    } else if self.set.is_ready(k) {
                        let server = self.set.get_mut(k).expect("a member's key is of its set");
                        match service::receive(server, Some(std::time::Duration::ZERO)) {
                            Ok(request) => {
                                h.ready = Some(request);
                                true
                            }
                            Err(f) if f.status == RINGCAST_TIMEOUT => {
                                spurious = true;
                                false
                            }
                            // Closed: a receive reports it.
                            Err(_) => true,
                        }
                    } else {
                        false
                    }
                }
            };
            any |= ready;
            self.ready.push(ready);
        }
        (any, spurious)
    }
}

/// The status of a wait that woke with `wake` and found members ready (`any`) or not.
fn status_of(wake: &Wakeup, any: bool) -> ringcast_status {
    if wake.notified() {
        RINGCAST_NOTIFIED
    } else if wake.timed_out() && !any {
        RINGCAST_TIMEOUT
    } else {
        RINGCAST_OK
    }
}

/// Adds the server or client at `place` to `set` (whose C pointer is `ws`); `entry` makes
/// its member entry from its key.
fn add_member<T: Member>(
    ws: *mut ringcast_waitset,
    set: &mut ringcast_waitset,
    place: &mut MemberPlace<T>,
    what: &str,
    entry: impl FnOnce(Key<T>) -> Entry,
) -> Result<ringcast_status, Failure> {
    let member = match place {
        MemberPlace::Own(_) => match std::mem::replace(place, MemberPlace::Moving) {
            MemberPlace::Own(m) => m,
            _ => unreachable!("matched above"),
        },
        _ => {
            return Err(Failure::new(
                RINGCAST_ERR_WAITSET,
                format!("the {what} is already in a wait set"),
            ))
        }
    };
    match set.set.add(member) {
        Ok(key) => {
            let Some(ws) = NonNull::new(ws) else {
                unreachable!("checked non-NULL")
            };
            *place = MemberPlace::InSet { set: ws, key };
            set.members.push(entry(key));
            Ok(RINGCAST_OK)
        }
        Err(e) => {
            let status = match e.refusal {
                ringcast::Refusal::Full { .. } => RINGCAST_ERR_RESOURCE,
                _ => RINGCAST_ERR_CLOSED,
            };
            let message = format!("the {what} cannot join the wait set: {}", e.refusal);
            *place = MemberPlace::Own(e.into_member());
            Err(Failure::new(status, message))
        }
    }
}

/// Adds server `s` to the set: it is ready when a request waits (see
/// `ringcast_waitset_wait_members`). Its handle stays valid and usable by the set's
/// thread. Refused: `RINGCAST_ERR_WAITSET` (already in a set),
/// `RINGCAST_ERR_SAMPLE_OUTSTANDING` (it holds a request: answer or release it first),
/// `RINGCAST_ERR_CLOSED` (its request topic was closed), `RINGCAST_ERR_RESOURCE` (the set
/// is full).
///
/// # Safety
/// `ws` and `s` are live handles (or NULL), used by this thread.
#[no_mangle]
pub unsafe extern "C" fn ringcast_waitset_add_server(
    ws: *mut ringcast_waitset,
    s: *mut ringcast_server,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let set = unsafe { set_handle(ws) }?;
        // SAFETY: by the caller's contract.
        let h = unsafe { service::server(s) }?;
        if h.held.is_some() && matches!(h.server, MemberPlace::Own(_)) {
            return Err(Failure::new(
                RINGCAST_ERR_SAMPLE_OUTSTANDING,
                "answer or release the held request before adding the server to a wait set",
            ));
        }
        let Some(handle) = NonNull::new(s) else {
            unreachable!("checked non-NULL")
        };
        add_member(ws, set, &mut h.server, "server", |k| {
            Entry::Server(handle, k)
        })
    })
}

/// Takes server `s` out of the set (`RINGCAST_ERR_WAITSET` if it is not in it). A request
/// a wait received for it stays for its next `ringcast_server_recv`.
///
/// # Safety
/// As for [`ringcast_waitset_add_server`].
#[no_mangle]
pub unsafe extern "C" fn ringcast_waitset_remove_server(
    ws: *mut ringcast_waitset,
    s: *mut ringcast_server,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let set = unsafe { set_handle(ws) }?;
        // SAFETY: by the caller's contract.
        let h = unsafe { service::server(s) }?;
        remove_member(set, &mut h.server, s.cast_const().cast(), "server")
    })
}

/// Adds client `c` to the set: it is ready when a response waits or its server is gone
/// (see `ringcast_waitset_wait_members`). Its handle stays valid and usable by the set's
/// thread. Refused: `RINGCAST_ERR_WAITSET` (already in a set),
/// `RINGCAST_ERR_SAMPLE_OUTSTANDING` (it holds a response: release it first),
/// `RINGCAST_ERR_CLOSED` (its server is gone and every response was received),
/// `RINGCAST_ERR_RESOURCE` (the set is full).
///
/// # Safety
/// `ws` and `c` are live handles (or NULL), used by this thread.
#[no_mangle]
pub unsafe extern "C" fn ringcast_waitset_add_client(
    ws: *mut ringcast_waitset,
    c: *mut ringcast_client,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let set = unsafe { set_handle(ws) }?;
        // SAFETY: by the caller's contract.
        let h = unsafe { service::client(c) }?;
        if h.held.is_some() && matches!(h.client, MemberPlace::Own(_)) {
            return Err(Failure::new(
                RINGCAST_ERR_SAMPLE_OUTSTANDING,
                "release the held response before adding the client to a wait set",
            ));
        }
        let Some(handle) = NonNull::new(c) else {
            unreachable!("checked non-NULL")
        };
        add_member(ws, set, &mut h.client, "client", |k| {
            Entry::Client(handle, k)
        })
    })
}

/// Takes client `c` out of the set (`RINGCAST_ERR_WAITSET` if it is not in it).
///
/// # Safety
/// As for [`ringcast_waitset_add_client`].
#[no_mangle]
pub unsafe extern "C" fn ringcast_waitset_remove_client(
    ws: *mut ringcast_waitset,
    c: *mut ringcast_client,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let set = unsafe { set_handle(ws) }?;
        // SAFETY: by the caller's contract.
        let h = unsafe { service::client(c) }?;
        remove_member(set, &mut h.client, c.cast_const().cast(), "client")
    })
}

/// Takes a server or client (`what`, whose handle is `handle`) back from `set`, which it
/// must be in.
fn remove_member<T: Member>(
    set: &mut ringcast_waitset,
    place: &mut MemberPlace<T>,
    handle: *const (),
    what: &str,
) -> Result<ringcast_status, Failure> {
    if !std::ptr::eq(place.set_ptr(), &*set) {
        return Err(Failure::new(
            RINGCAST_ERR_WAITSET,
            format!("the {what} is not in this wait set"),
        ));
    }
    set.take_back_member(place, handle);
    Ok(RINGCAST_OK)
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
