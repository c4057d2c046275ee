//! The exceptions: `ringcast.Error` and one subclass per thing a caller acts on.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use ringcast::{AttachError, CreateError, RecvTimeoutError};

create_exception!(
    ringcast,
    Error,
    PyException,
    "Base of every ringcast error."
);
create_exception!(
    ringcast,
    Lagged,
    Error,
    "Overwrite: a publisher lapped this subscriber; `.lost` messages of lane `.lane` (that publisher's) are gone and the next receive there resumes at the oldest one still intact."
);
create_exception!(
    ringcast,
    Disconnected,
    Error,
    "Every publisher is gone and everything they published was received."
);
create_exception!(
    ringcast,
    Timeout,
    Error,
    "Nothing arrived within the timeout."
);
create_exception!(
    ringcast,
    Evicted,
    Error,
    "This subscriber stalled a Block publisher past the topic's stall timeout and was evicted; attach again."
);
create_exception!(
    ringcast,
    Corrupt,
    Error,
    "A message whose length exceeds the slot was skipped (a broken publisher); receive again."
);
create_exception!(
    ringcast,
    NotFound,
    Error,
    "No such topic (within the wait, if one was given)."
);
create_exception!(
    ringcast,
    AlreadyExists,
    Error,
    "The topic already has a live publisher."
);
create_exception!(
    ringcast,
    InvalidName,
    Error,
    "The topic name or prefix is not valid."
);
create_exception!(
    ringcast,
    InvalidConfig,
    Error,
    "The topic configuration is not valid."
);
create_exception!(
    ringcast,
    PermissionDenied,
    Error,
    "The process may not create or open the topic's segment."
);
create_exception!(
    ringcast,
    NotASegment,
    Error,
    "The name is taken by something that is not a compatible ringcast segment."
);
create_exception!(
    ringcast,
    TypeMismatch,
    Error,
    "The topic carries another message type."
);
create_exception!(
    ringcast,
    ResourceExhausted,
    Error,
    "Out of shared memory, memory, subscriber table entries, or over a limit."
);
create_exception!(
    ringcast,
    Closed,
    Error,
    "The topic is closed (its publisher is gone)."
);
create_exception!(
    ringcast,
    TooLarge,
    Error,
    "The message is larger than a slot."
);
create_exception!(
    ringcast,
    Full,
    Error,
    "Block: the ring is full (a send or loan that does not wait)."
);
create_exception!(
    ringcast,
    Busy,
    Error,
    "The handle is in use: a loan or sample is outstanding (or still viewed), or another thread is using it."
);

create_exception!(
    ringcast,
    Mismatch,
    AlreadyExists,
    "The topic admits several publishers and exists with another configuration: a publisher joins only with the topic's own. `.field` names the difference (\"slots\", \"slot size\", \"overflow policy\", \"alignment\", \"max subscribers\", \"max publishers\", \"stall timeout\" or \"message type\"), `.existing` the topic's value and `.requested` this publisher's (as text)."
);
create_exception!(
    ringcast,
    PublishersFull,
    AlreadyExists,
    "The topic admits several publishers and all `.max` of them are live: wait for one to leave, or create the topic with more (max_publishers)."
);

create_exception!(
    ringcast,
    UntrustedOwner,
    PermissionDenied,
    "The topic's segment belongs to a user this subscriber does not trust (by default only its own user and root): pass trust_users / trust_groups if that publisher is genuine. `.uid` is the owner's user id."
);

create_exception!(
    ringcast,
    NoServer,
    NotFound,
    "The service has no live server (within the wait, if one was given): start it, or connect with a wait."
);
create_exception!(
    ringcast,
    AlreadyServed,
    AlreadyExists,
    "The service already has a live server: stop it, or use another name."
);
create_exception!(
    ringcast,
    TooManyClients,
    ResourceExhausted,
    "The service's server has all the clients it admits (max_clients) connected."
);
create_exception!(
    ringcast,
    TooManyInFlight,
    Error,
    "The client has its most requests in flight: receive their responses (or cancel one) first."
);
create_exception!(
    ringcast,
    NoResponse,
    Error,
    "The server ended the request without a response."
);
create_exception!(
    ringcast,
    CallFailed,
    Error,
    "The server gave up on the call (`Request.fail()`; a bridge's import fails a call its remote side did not answer in time): the call is over, with no answer."
);
create_exception!(
    ringcast,
    ClientGone,
    Error,
    "The client the response is for is gone (it died or disconnected): nobody to answer."
);
create_exception!(
    ringcast,
    ClientFull,
    Full,
    "The client's response ring is full (it is not reading): nothing was sent; try again later."
);

/// Adds the exceptions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for (name, ty) in [
        ("Error", py.get_type::<Error>()),
        ("Lagged", py.get_type::<Lagged>()),
        ("Disconnected", py.get_type::<Disconnected>()),
        ("Timeout", py.get_type::<Timeout>()),
        ("Evicted", py.get_type::<Evicted>()),
        ("Corrupt", py.get_type::<Corrupt>()),
        ("NotFound", py.get_type::<NotFound>()),
        ("AlreadyExists", py.get_type::<AlreadyExists>()),
        ("Mismatch", py.get_type::<Mismatch>()),
        ("PublishersFull", py.get_type::<PublishersFull>()),
        ("InvalidName", py.get_type::<InvalidName>()),
        ("InvalidConfig", py.get_type::<InvalidConfig>()),
        ("PermissionDenied", py.get_type::<PermissionDenied>()),
        ("UntrustedOwner", py.get_type::<UntrustedOwner>()),
        ("NotASegment", py.get_type::<NotASegment>()),
        ("TypeMismatch", py.get_type::<TypeMismatch>()),
        ("ResourceExhausted", py.get_type::<ResourceExhausted>()),
        ("Closed", py.get_type::<Closed>()),
        ("TooLarge", py.get_type::<TooLarge>()),
        ("Full", py.get_type::<Full>()),
        ("Busy", py.get_type::<Busy>()),
        ("NoServer", py.get_type::<NoServer>()),
        ("AlreadyServed", py.get_type::<AlreadyServed>()),
        ("TooManyClients", py.get_type::<TooManyClients>()),
        ("TooManyInFlight", py.get_type::<TooManyInFlight>()),
        ("NoResponse", py.get_type::<NoResponse>()),
        ("CallFailed", py.get_type::<CallFailed>()),
        ("ClientGone", py.get_type::<ClientGone>()),
        ("ClientFull", py.get_type::<ClientFull>()),
    ] {
        m.add(name, ty)?;
    }
    Ok(())
}

/// `Lagged` with its `.lost` and `.lane` attributes.
pub fn lagged(py: Python<'_>, lost: u64, lane: u32) -> PyErr {
    let err = Lagged::new_err(format!(
        "lagged behind: {lost} messages of lane {lane} were overwritten before this \
         subscriber read them"
    ));
    // Setting an attribute on a fresh exception instance cannot fail but for memory.
    let _ = err.value(py).setattr("lost", lost);
    let _ = err.value(py).setattr("lane", lane);
    err
}

/// A creation failure as its exception.
pub fn create(e: CreateError) -> PyErr {
    let msg = e.to_string();
    match e {
        CreateError::Mismatch {
            field,
            existing,
            requested,
            ..
        } => {
            let err = Mismatch::new_err(msg);
            // Setting attributes on a fresh exception instance cannot fail but for memory.
            Python::attach(|py| {
                let v = err.value(py);
                let _ = v.setattr("field", field);
                let _ = v.setattr("existing", existing);
                let _ = v.setattr("requested", requested);
            });
            err
        }
        CreateError::PublishersFull { max, .. } => {
            let err = PublishersFull::new_err(msg);
            // As above.
            Python::attach(|py| {
                let _ = err.value(py).setattr("max", max);
            });
            err
        }
        CreateError::Name { .. } => InvalidName::new_err(msg),
        CreateError::Config { .. } => InvalidConfig::new_err(msg),
        CreateError::AlreadyPublished { .. } => AlreadyExists::new_err(msg),
        CreateError::NotASegment { .. } => NotASegment::new_err(msg),
        CreateError::NoSpace { .. }
        | CreateError::OutOfMemory { .. }
        | CreateError::Memory { .. }
        | CreateError::HugePagesUnavailable { .. } => ResourceExhausted::new_err(msg),
        CreateError::PermissionDenied { .. } => PermissionDenied::new_err(msg),
        _ => Error::new_err(msg),
    }
}

/// An attach failure as its exception.
pub fn attach(e: AttachError) -> PyErr {
    let msg = e.to_string();
    if let AttachError::UntrustedOwner { owner, .. } = &e {
        let err = UntrustedOwner::new_err(msg);
        // Setting an attribute on a fresh exception instance cannot fail but for memory.
        Python::attach(|py| {
            let _ = err.value(py).setattr("uid", owner.uid);
        });
        return err;
    }
    match e {
        AttachError::Name { .. } => InvalidName::new_err(msg),
        AttachError::NotFound { .. } | AttachError::NotReady { .. } => NotFound::new_err(msg),
        AttachError::PermissionDenied { .. } => PermissionDenied::new_err(msg),
        AttachError::NotRegularFile { .. }
        | AttachError::NotASegment { .. }
        | AttachError::Version { .. }
        | AttachError::TooSmall { .. }
        | AttachError::Geometry { .. } => NotASegment::new_err(msg),
        AttachError::TypeMismatch { .. } => TypeMismatch::new_err(msg),
        AttachError::OverLimit { .. }
        | AttachError::OutOfMemory { .. }
        | AttachError::Memory { .. }
        | AttachError::TableFull { .. } => ResourceExhausted::new_err(msg),
        AttachError::Closed { .. } => Closed::new_err(msg),
        _ => Error::new_err(msg),
    }
}

/// A receive failure as its exception (`lane`: the lane of a `Lagged`).
pub fn recv(py: Python<'_>, e: RecvTimeoutError, lane: u32) -> PyErr {
    match e {
        RecvTimeoutError::Timeout => Timeout::new_err("no message within the timeout"),
        RecvTimeoutError::Lagged(n) => lagged(py, n, lane),
        RecvTimeoutError::Disconnected => Disconnected::new_err(e.to_string()),
        RecvTimeoutError::Evicted => Evicted::new_err(e.to_string()),
        RecvTimeoutError::Corrupt { .. } => Corrupt::new_err(e.to_string()),
    }
}

/// The handle is busy.
pub fn busy(what: impl Into<String>) -> PyErr {
    Busy::new_err(what.into())
}
