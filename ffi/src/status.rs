//! The status every entry point returns.

/// What a call did. `RINGCAST_OK` (0) is success; positive values are outcomes the caller
/// acts on (nothing arrived, the topic ended); negative values are errors, described by
/// `ringcast_last_error()` on the calling thread.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ringcast_status {
    /// Success.
    RINGCAST_OK = 0,
    /// Nothing happened within the timeout (a timeout of 0: nothing is ready now).
    RINGCAST_TIMEOUT = 1,
    /// The publisher is gone and every message it published was received.
    RINGCAST_DISCONNECTED = 2,
    /// This subscriber stalled a `Block` publisher past the topic's stall timeout and was
    /// evicted; destroy it and attach again.
    RINGCAST_EVICTED = 3,
    /// `Block`: the ring is full (a loan or send that does not wait).
    RINGCAST_FULL = 4,
    /// A message was skipped because its publisher wrote a length past the slot (a broken
    /// or hostile publisher); receive again for the next one.
    RINGCAST_CORRUPT = 5,
    /// A wait set's notifier rang (members may be ready too: see the ready count).
    RINGCAST_NOTIFIED = 6,
    /// The handle was destroyed, and the loan it had outstanding aborted (or the sample it
    /// held released): nothing is left to free.
    RINGCAST_ABANDONED = 7,
    /// A service call's stream ended: the server sent its last response (or ended it
    /// with none), or the call is not in flight. No response was received.
    RINGCAST_ENDED = 8,
    /// A required pointer argument is NULL.
    RINGCAST_ERR_NULL = -1,
    /// An argument is invalid: not UTF-8, an unknown enum value, an out-of-range number.
    RINGCAST_ERR_INVALID_ARGUMENT = -2,
    /// A config or options struct's `struct_size` is not one this library knows: build
    /// against the header of this library, and fill the struct with its `_init` function.
    RINGCAST_ERR_VERSION = -3,
    /// The topic name (or prefix) is not valid.
    RINGCAST_ERR_NAME = -4,
    /// The topic configuration is not valid (slots, slot size, stall timeout...).
    RINGCAST_ERR_CONFIG = -5,
    /// The message is larger than a slot.
    RINGCAST_ERR_TOO_LARGE = -6,
    /// A live publisher already owns the topic.
    RINGCAST_ERR_EXISTS = -7,
    /// No such topic (within the wait, if one was given).
    RINGCAST_ERR_NOT_FOUND = -8,
    /// The process may not create or open the segment.
    RINGCAST_ERR_PERMISSION = -9,
    /// The name is taken by something that is not a (compatible, well-formed) ringcast
    /// segment: another kind of file, another layout version, corrupt geometry.
    RINGCAST_ERR_NOT_A_SEGMENT = -10,
    /// The topic carries another message type than the one expected.
    RINGCAST_ERR_TYPE_MISMATCH = -11,
    /// A resource ran out: /dev/shm space, memory, the topic's subscriber table, a limit.
    RINGCAST_ERR_RESOURCE = -12,
    /// The topic is closed (its publisher is gone).
    RINGCAST_ERR_CLOSED = -13,
    /// The publisher has a loan outstanding: commit or abort it first.
    RINGCAST_ERR_LOAN_OUTSTANDING = -14,
    /// The subscriber holds a sample: release it first.
    RINGCAST_ERR_SAMPLE_OUTSTANDING = -15,
    /// The loan or sample passed is not the one outstanding (e.g. released twice).
    RINGCAST_ERR_NOT_HELD = -16,
    /// The subscriber is in another wait set, or not in this one.
    RINGCAST_ERR_WAITSET = -17,
    /// The topic is still being initialised by its publisher; attach again (or with a wait).
    RINGCAST_ERR_NOT_READY = -18,
    /// Another system error.
    RINGCAST_ERR_IO = -19,
    /// A bug inside ringcast (a Rust panic, caught at the boundary). Please report it.
    RINGCAST_ERR_PANIC = -20,
    /// Called from inside a callback that this handle (or the wait set it is in) is
    /// running, such as the `ringcast_subscriber_drain` callback: return from the callback
    /// first. Nothing was done.
    RINGCAST_ERR_REENTRANT = -21,
    /// The topic's segment belongs to a user this subscriber does not trust (by default
    /// only its own user and root): add that user to `trust_users` (or its group to
    /// `trust_groups`) if its publisher is genuine.
    RINGCAST_ERR_UNTRUSTED = -22,
    /// The topic admits several publishers and exists with another configuration (slots,
    /// slot size, policy, alignment, max subscribers, max publishers, stall timeout or
    /// message type): a publisher joins only with the topic's own. The message names the
    /// field and both values.
    RINGCAST_ERR_MISMATCH = -23,
    /// The topic admits several publishers and all of them are live: wait for one to
    /// leave, or create the topic with a larger `max_publishers`.
    RINGCAST_ERR_PUBLISHERS_FULL = -24,
    /// No live server serves the service (within the wait, if one was given): start it,
    /// or connect with a wait.
    RINGCAST_ERR_NO_SERVER = -25,
    /// A live server already serves the service: stop it, or use another name.
    RINGCAST_ERR_ALREADY_SERVED = -26,
    /// The server has all the clients it admits connected (`max_clients`).
    RINGCAST_ERR_TOO_MANY_CLIENTS = -27,
    /// The client a response is for is gone (it died or disconnected): nobody to answer.
    RINGCAST_ERR_CLIENT_GONE = -28,
    /// The client's response ring is full (it is not reading): nothing was sent; try
    /// again later. The server never waits for one client.
    RINGCAST_ERR_CLIENT_FULL = -29,
    /// `ringcast_client_call`: the server ended the request with no response.
    RINGCAST_ERR_NO_RESPONSE = -30,
    /// The client has its most requests in flight: receive their responses first.
    RINGCAST_ERR_TOO_MANY_IN_FLIGHT = -31,
    /// The call id is not one this client sent.
    RINGCAST_ERR_UNKNOWN_CALL = -32,
    /// The handle was made by the process this one was `fork()`ed from: it belongs to
    /// that process, and using it here would disturb that process's topic or service.
    /// Destroy it (which leaves the parent's topic untouched) and make a new one here.
    RINGCAST_ERR_INHERITED = -33,
    /// The server gave up on the call (`ringcast_request_fail`; a bridge's import fails a
    /// call its remote side did not answer in time): the call is over, with no answer.
    RINGCAST_ERR_CALL_FAILED = -34,
}

impl ringcast_status {
    /// Every status, for `ringcast_status_str` and the tests.
    pub const ALL: [ringcast_status; 43] = [
        Self::RINGCAST_OK,
        Self::RINGCAST_TIMEOUT,
        Self::RINGCAST_DISCONNECTED,
        Self::RINGCAST_EVICTED,
        Self::RINGCAST_FULL,
        Self::RINGCAST_CORRUPT,
        Self::RINGCAST_NOTIFIED,
        Self::RINGCAST_ABANDONED,
        Self::RINGCAST_ENDED,
        Self::RINGCAST_ERR_NULL,
        Self::RINGCAST_ERR_INVALID_ARGUMENT,
        Self::RINGCAST_ERR_VERSION,
        Self::RINGCAST_ERR_NAME,
        Self::RINGCAST_ERR_CONFIG,
        Self::RINGCAST_ERR_TOO_LARGE,
        Self::RINGCAST_ERR_EXISTS,
        Self::RINGCAST_ERR_NOT_FOUND,
        Self::RINGCAST_ERR_PERMISSION,
        Self::RINGCAST_ERR_NOT_A_SEGMENT,
        Self::RINGCAST_ERR_TYPE_MISMATCH,
        Self::RINGCAST_ERR_RESOURCE,
        Self::RINGCAST_ERR_CLOSED,
        Self::RINGCAST_ERR_LOAN_OUTSTANDING,
        Self::RINGCAST_ERR_SAMPLE_OUTSTANDING,
        Self::RINGCAST_ERR_NOT_HELD,
        Self::RINGCAST_ERR_WAITSET,
        Self::RINGCAST_ERR_NOT_READY,
        Self::RINGCAST_ERR_IO,
        Self::RINGCAST_ERR_PANIC,
        Self::RINGCAST_ERR_REENTRANT,
        Self::RINGCAST_ERR_UNTRUSTED,
        Self::RINGCAST_ERR_MISMATCH,
        Self::RINGCAST_ERR_PUBLISHERS_FULL,
        Self::RINGCAST_ERR_NO_SERVER,
        Self::RINGCAST_ERR_ALREADY_SERVED,
        Self::RINGCAST_ERR_TOO_MANY_CLIENTS,
        Self::RINGCAST_ERR_CLIENT_GONE,
        Self::RINGCAST_ERR_CLIENT_FULL,
        Self::RINGCAST_ERR_NO_RESPONSE,
        Self::RINGCAST_ERR_TOO_MANY_IN_FLIGHT,
        Self::RINGCAST_ERR_UNKNOWN_CALL,
        Self::RINGCAST_ERR_INHERITED,
        Self::RINGCAST_ERR_CALL_FAILED,
    ];

    /// A short description (static, NUL-terminated).
    pub(crate) fn describe(self) -> &'static std::ffi::CStr {
        use ringcast_status::*;
        match self {
            RINGCAST_OK => c"ok",
            RINGCAST_TIMEOUT => c"timed out: nothing happened within the timeout",
            RINGCAST_DISCONNECTED => {
                c"disconnected: the publisher is gone and everything it published was received"
            }
            RINGCAST_EVICTED => {
                c"evicted for stalling the publisher past its stall timeout; attach again"
            }
            RINGCAST_FULL => c"the ring is full: the slowest subscriber holds the oldest slot",
            RINGCAST_CORRUPT => c"a corrupt message was skipped; receive again",
            RINGCAST_NOTIFIED => c"the wait set's notifier rang",
            RINGCAST_ABANDONED => {
                c"destroyed; the outstanding loan was aborted or the held sample released"
            }
            RINGCAST_ERR_NULL => c"a required pointer argument is NULL",
            RINGCAST_ERR_INVALID_ARGUMENT => c"invalid argument",
            RINGCAST_ERR_VERSION => {
                c"unknown struct_size: fill config and options structs with their _init function"
            }
            RINGCAST_ERR_NAME => c"invalid topic name or prefix",
            RINGCAST_ERR_CONFIG => c"invalid topic configuration",
            RINGCAST_ERR_TOO_LARGE => c"the message is larger than a slot",
            RINGCAST_ERR_EXISTS => c"the topic already has a live publisher",
            RINGCAST_ERR_NOT_FOUND => c"no such topic",
            RINGCAST_ERR_PERMISSION => c"permission denied",
            RINGCAST_ERR_NOT_A_SEGMENT => c"not a compatible ringcast segment",
            RINGCAST_ERR_TYPE_MISMATCH => c"the topic carries another message type",
            RINGCAST_ERR_RESOURCE => c"out of a resource (shm space, memory, subscriber table)",
            RINGCAST_ERR_CLOSED => c"the topic is closed",
            RINGCAST_ERR_LOAN_OUTSTANDING => c"a loan is outstanding: commit or abort it first",
            RINGCAST_ERR_SAMPLE_OUTSTANDING => c"a sample is held: release it first",
            RINGCAST_ERR_NOT_HELD => c"that loan or sample is not the one outstanding",
            RINGCAST_ERR_WAITSET => c"the subscriber is in another wait set, or not in this one",
            RINGCAST_ERR_NOT_READY => c"the topic is still being initialised; try again",
            RINGCAST_ERR_IO => c"system error",
            RINGCAST_ERR_PANIC => c"internal error in ringcast (a caught panic); please report it",
            RINGCAST_ERR_UNTRUSTED => {
                c"the topic belongs to a user this subscriber does not trust (see trust_users)"
            }
            RINGCAST_ERR_REENTRANT => {
                c"called from inside a callback of the same handle or wait set: return first"
            }
            RINGCAST_ERR_MISMATCH => {
                c"the topic exists with another configuration: join it with the topic's own"
            }
            RINGCAST_ERR_PUBLISHERS_FULL => c"the topic already has all the publishers it admits",
            RINGCAST_ENDED => c"the call's stream ended: no more responses",
            RINGCAST_ERR_NO_SERVER => c"the service has no live server",
            RINGCAST_ERR_ALREADY_SERVED => c"the service already has a live server",
            RINGCAST_ERR_TOO_MANY_CLIENTS => c"the service already has all the clients it admits",
            RINGCAST_ERR_CLIENT_GONE => c"the client is gone",
            RINGCAST_ERR_CLIENT_FULL => {
                c"the client's response ring is full (it is not reading); try again later"
            }
            RINGCAST_ERR_NO_RESPONSE => c"the server ended the request without a response",
            RINGCAST_ERR_TOO_MANY_IN_FLIGHT => {
                c"the client has its most requests in flight: receive their responses first"
            }
            RINGCAST_ERR_UNKNOWN_CALL => c"not a call of this client",
            RINGCAST_ERR_INHERITED => {
                c"the handle was inherited across fork(): destroy it and make a new one"
            }
            RINGCAST_ERR_CALL_FAILED => c"the server gave up on the call: no answer",
        }
    }
}
