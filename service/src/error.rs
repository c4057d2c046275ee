//! What can go wrong, one enum per kind of call.

use crate::CallId;
use ringcast_core::trust::Owner;
use ringcast_core::{AttachError, CreateError, NameError};

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The service name is not valid.
    #[error("invalid service name {service:?}: {source}")]
    Name {
        /// The name.
        service: String,
        /// What is wrong with it.
        source: NameError,
    },
    /// A live server already serves this name.
    #[error("service {service:?} already has a live server, a process of {holder}: stop it, or use another name")]
    AlreadyServed {
        /// The service.
        service: String,
        /// The user whose process serves it.
        holder: Owner,
    },
    /// The configuration is not valid (slots not a power of two, sizes out of range).
    #[error("service {service:?}: {reason}")]
    Config {
        /// The service.
        service: String,
        /// What to change.
        reason: String,
    },
    /// One of the service's topics could not be created.
    #[error("service {service:?}: {source}")]
    Create {
        /// The service.
        service: String,
        /// The topic's error.
        source: CreateError,
    },
    /// The server could not attach to its own request topic.
    #[error("service {service:?}: {source}")]
    Attach {
        /// The service.
        service: String,
        /// The topic's error.
        source: AttachError,
    },
}

/// Why a client could not connect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The service name is not valid.
    #[error("invalid service name {service:?}: {source}")]
    Name {
        /// The name.
        service: String,
        /// What is wrong with it.
        source: NameError,
    },
    /// No live server serves this name (within the wait asked for).
    #[error("service {service:?} has no live server: start it, or connect with a wait")]
    NoServer {
        /// The service.
        service: String,
    },
    /// The server has its most clients connected.
    #[error("service {service:?} already has its {max} clients: wait for one to leave, or start the server with more (max_clients)")]
    TooManyClients {
        /// The service.
        service: String,
        /// Clients it admits.
        max: u64,
    },
    /// The server did not answer the greeting within the handshake timeout (it is not
    /// receiving).
    #[error("service {service:?}: the server did not answer within the handshake timeout; is it receiving?")]
    Timeout {
        /// The service.
        service: String,
    },
    /// A typed client's request or response type is not the server's.
    #[error(
        "service {service:?} takes {found}, this client sends {expected}: use the server's types"
    )]
    TypeMismatch {
        /// The service.
        service: String,
        /// The type this client asked for.
        expected: String,
        /// The server's type.
        found: String,
    },
    /// One of the service's topics (its name plate, request topic or this client's
    /// response topic) belongs to a user this client does not trust: by default only its
    /// own user and root (anyone who may create files in /dev/shm could otherwise stand
    /// in for the server). If that user's server is genuine, trust it:
    /// `ClientOptions::trust_user(uid)` (or a group, or any owner).
    #[error("service {service:?}: topic {topic:?} belongs to {owner}, whom this client does not trust (only its own user and root by default): trust that user explicitly if its server is genuine")]
    UntrustedOwner {
        /// The service.
        service: String,
        /// The topic refused.
        topic: String,
        /// Its owner.
        owner: Owner,
    },
    /// The server's topics do not let this user in (their mode: 0o600 by default, only
    /// the server's user).
    #[error("service {service:?}: permission denied on topic {topic:?}{}: run as the server's user, or have the server started with a mode that admits this user (ServerConfig::mode)", owner.as_ref().map(|o| format!(" of {o}")).unwrap_or_default())]
    PermissionDenied {
        /// The service.
        service: String,
        /// The topic this client may not open.
        topic: String,
        /// Its owner, if it could be looked at.
        owner: Option<Owner>,
    },
    /// The server died (or stopped) while this client greeted it.
    #[error(
        "service {service:?}: the server is gone (it stopped during the handshake): start it again"
    )]
    ServerGone {
        /// The service.
        service: String,
    },
    /// The service's topics are not what a server of this build makes (another build's,
    /// or a hostile process's).
    #[error("service {service:?} is not a service this client can use: {what}")]
    Malformed {
        /// The service.
        service: String,
        /// What is wrong.
        what: String,
    },
    /// Joining the request topic failed.
    #[error("service {service:?}: {source}")]
    Create {
        /// The service.
        service: String,
        /// The topic's error.
        source: CreateError,
    },
    /// Attaching to the response topic failed.
    #[error("service {service:?}: {source}")]
    Attach {
        /// The service.
        service: String,
        /// The topic's error.
        source: AttachError,
    },
}

/// Why a request could not be sent or a response not received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The server is gone (it died or stopped) and every response it sent was received:
    /// connect again.
    #[error("the server is gone; connect again")]
    Disconnected,
    /// Nothing within the timeout. The call stays in flight: wait again or cancel it.
    #[error("no response within the timeout")]
    Timeout,
    /// `try_send` only: the server's queue for this client is full.
    #[error("the server's queue for this client is full: the server is behind")]
    Full,
    /// This client already has its most requests in flight: receive or cancel one.
    #[error("{max} requests already in flight: receive their responses or cancel one")]
    TooManyInFlight {
        /// The bound.
        max: usize,
    },
    /// The request is larger than the server accepts.
    #[error("request of {len} bytes is larger than the server's {max}")]
    TooLarge {
        /// The request's length.
        len: usize,
        /// The largest the server takes.
        max: usize,
    },
    /// `call` only: the server ended the request's stream with no response.
    #[error("the server ended the request without a response")]
    NoResponse,
    /// The call id is not one this client sent.
    #[error("not a call of this client")]
    UnknownCall,
    /// The server gave up on the call (`Request::fail`): its stream ended without an
    /// answer. A bridge's import fails a call its remote side did not answer in time or
    /// refused. The call is over; sending it again may succeed.
    #[error("the server gave up on call {}", call.get())]
    Failed {
        /// The call that failed (for `recv_any`).
        call: CallId,
    },
}

/// Why a server's receive returned no request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerRecvError {
    /// `try_recv`: no request now; `recv_timeout`: none within the timeout.
    #[error("no request")]
    Empty,
    /// The server's request topic was closed under it (only a hostile peer can do
    /// that): start the server again.
    #[error("the request topic was closed under the server; start it again")]
    Closed,
}

/// Why a response was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RespondError {
    /// The client that asked is gone (it died or disconnected): nobody to answer.
    #[error("the client is gone")]
    ClientGone,
    /// The client's response ring is full: it is not reading. Nothing was sent; try
    /// again later (the server never waits for one client).
    #[error("the client's response ring is full; it is not reading")]
    ClientFull,
    /// A response to another request of this client is loaned and not committed yet: the
    /// client's ring has one slot in writing at a time. Commit (or drop and re-loan) it
    /// first.
    #[error("a response to request {pending} of this client is loaned and not committed; commit it first")]
    LoanPending {
        /// The request whose response is loaned.
        pending: u64,
    },
    /// The response is larger than the service's largest.
    #[error("response of {len} bytes is larger than the service's {max}")]
    TooLarge {
        /// The response's length.
        len: usize,
        /// The largest the service takes.
        max: usize,
    },
}
