//! Receive errors: one enum per kind of call.

/// Why [`try_recv`](crate::Subscriber::try_recv) returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing new yet.
    #[error("no message yet")]
    Empty,
    /// `Overwrite`: the publisher lapped this subscriber, which lost exactly this many
    /// messages and now resumes at the oldest one still intact.
    #[error("lagged behind: {0} messages lost")]
    Lagged(u64),
    /// The publisher closed the topic or died, and everything it published was received.
    #[error("the publisher is gone and everything it published was received")]
    Disconnected,
    /// `Block` with a stall timeout: this subscriber kept the publisher waiting longer
    /// than the topic's stall timeout and was evicted; messages since its position may
    /// be gone. Drop it and attach again (a subscriber reading a sample in place is never
    /// evicted while it holds the sample).
    #[error(
        "evicted from the topic for stalling the publisher past its stall timeout; attach again"
    )]
    Evicted,
    /// The publisher committed a message whose length exceeds the slot (a broken or
    /// hostile publisher). The message is skipped.
    #[error("corrupt message {seq}: length {len} exceeds the slot")]
    Corrupt {
        /// Its sequence.
        seq: u64,
        /// The length it claimed.
        len: u64,
    },
}

/// Why [`recv`](crate::Subscriber::recv) returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// See [`TryRecvError::Lagged`].
    #[error("lagged behind: {0} messages lost")]
    Lagged(u64),
    /// See [`TryRecvError::Disconnected`].
    #[error("the publisher is gone and everything it published was received")]
    Disconnected,
    /// See [`TryRecvError::Evicted`].
    #[error(
        "evicted from the topic for stalling the publisher past its stall timeout; attach again"
    )]
    Evicted,
    /// See [`TryRecvError::Corrupt`].
    #[error("corrupt message {seq}: length {len} exceeds the slot")]
    Corrupt {
        /// Its sequence.
        seq: u64,
        /// The length it claimed.
        len: u64,
    },
}

/// Why [`recv_timeout`](crate::Subscriber::recv_timeout) returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvTimeoutError {
    /// Nothing arrived in time.
    #[error("no message within the timeout")]
    Timeout,
    /// See [`TryRecvError::Lagged`].
    #[error("lagged behind: {0} messages lost")]
    Lagged(u64),
    /// See [`TryRecvError::Disconnected`].
    #[error("the publisher is gone and everything it published was received")]
    Disconnected,
    /// See [`TryRecvError::Evicted`].
    #[error(
        "evicted from the topic for stalling the publisher past its stall timeout; attach again"
    )]
    Evicted,
    /// See [`TryRecvError::Corrupt`].
    #[error("corrupt message {seq}: length {len} exceeds the slot")]
    Corrupt {
        /// Its sequence.
        seq: u64,
        /// The length it claimed.
        len: u64,
    },
}

/// A non-blocking receive's error as a bounded one's (`Empty` is a zero-length timeout),
/// for callers that take both through one path (the C and Python bindings).
impl From<TryRecvError> for RecvTimeoutError {
    fn from(e: TryRecvError) -> Self {
        match e {
            TryRecvError::Empty => RecvTimeoutError::Timeout,
            TryRecvError::Lagged(n) => RecvTimeoutError::Lagged(n),
            TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            TryRecvError::Evicted => RecvTimeoutError::Evicted,
            TryRecvError::Corrupt { seq, len } => RecvTimeoutError::Corrupt { seq, len },
        }
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Lagged(n) => RecvTimeoutError::Lagged(n),
            RecvError::Disconnected => RecvTimeoutError::Disconnected,
            RecvError::Evicted => RecvTimeoutError::Evicted,
            RecvError::Corrupt { seq, len } => RecvTimeoutError::Corrupt { seq, len },
        }
    }
}
