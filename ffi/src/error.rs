//! Errors across the boundary: the thread's last error message, the guard every entry
//! point runs in (no panic reaches C), and the mapping of Rust errors to statuses.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use ringcast::{AttachError, CreateError, RecvTimeoutError, SendError};

use crate::status::ringcast_status::{self, *};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// A failed call: its status and what to tell the person reading `ringcast_last_error`.
pub(crate) struct Failure {
    pub status: ringcast_status,
    pub message: String,
}

impl Failure {
    /// The error of any call but destroy on a handle a `fork()` child inherited.
    pub fn inherited(what: &str) -> Failure {
        Failure::new(
            RINGCAST_ERR_INHERITED,
            format!(
                "this {what} was made by the parent process (inherited across fork()): \
                 destroy it here, which leaves the parent's untouched, and make a new one"
            ),
        )
    }

    pub fn new(status: ringcast_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub fn null(what: &str) -> Failure {
        Failure::new(RINGCAST_ERR_NULL, format!("{what} is NULL"))
    }

    /// A positive outcome (a timeout, the end of a topic): no message, no allocation, and
    /// the thread's last error is left as it was.
    pub fn outcome(status: ringcast_status) -> Failure {
        Failure {
            status,
            message: String::new(),
        }
    }
}

/// What an entry point's body returns: a status to return as is (OK or an outcome), or
/// a failure to record.
pub(crate) type Outcome = Result<ringcast_status, Failure>;

fn set_last_error(message: &str) {
    // Interior NULs cannot be shown; cut there.
    let message = message.split('\0').next().unwrap_or_default();
    let c = CString::new(message).unwrap_or_default();
    // `try_with`: during thread exit (a C++ thread_local destructor calling us) the
    // thread-local may be gone; the message is then dropped, never a panic.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = c);
}

/// Runs an entry point's body: records an error's message (positive outcomes leave the
/// last error alone), and turns a panic into `RINGCAST_ERR_PANIC` instead of letting it
/// unwind into C.
pub(crate) fn guard(body: impl FnOnce() -> Outcome) -> ringcast_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => status,
        Ok(Err(f)) => {
            if (f.status as i32) < 0 {
                set_last_error(&f.message);
            }
            f.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!("internal error in ringcast: {what}"));
            RINGCAST_ERR_PANIC
        }
    }
}

/// A NUL-terminated string argument as UTF-8.
///
/// # Safety
/// `s` is NULL or points to a NUL-terminated string.
pub(crate) unsafe fn str_arg<'a>(s: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if s.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated, by the caller's contract.
    let c = unsafe { CStr::from_ptr(s) };
    c.to_str().map_err(|_| {
        Failure::new(
            RINGCAST_ERR_INVALID_ARGUMENT,
            format!("{what} is not valid UTF-8"),
        )
    })
}

/// A C timeout in nanoseconds: `< 0` for ever (`None`), else the duration.
pub(crate) fn timeout_arg(ns: i64) -> Option<std::time::Duration> {
    u64::try_from(ns).ok().map(std::time::Duration::from_nanos)
}

impl From<CreateError> for Failure {
    fn from(e: CreateError) -> Failure {
        let status = match &e {
            CreateError::Name { .. } => RINGCAST_ERR_NAME,
            CreateError::Config { .. } => RINGCAST_ERR_CONFIG,
            CreateError::AlreadyPublished { .. } => RINGCAST_ERR_EXISTS,
            CreateError::Mismatch { .. } => RINGCAST_ERR_MISMATCH,
            CreateError::PublishersFull { .. } => RINGCAST_ERR_PUBLISHERS_FULL,
            CreateError::NotASegment { .. } => RINGCAST_ERR_NOT_A_SEGMENT,
            CreateError::NoSpace { .. }
            | CreateError::OutOfMemory { .. }
            | CreateError::Memory { .. }
            | CreateError::HugePagesUnavailable { .. } => RINGCAST_ERR_RESOURCE,
            CreateError::PermissionDenied { .. } => RINGCAST_ERR_PERMISSION,
            _ => RINGCAST_ERR_IO,
        };
        Failure::new(status, e.to_string())
    }
}

impl From<AttachError> for Failure {
    fn from(e: AttachError) -> Failure {
        let status = match &e {
            AttachError::Name { .. } => RINGCAST_ERR_NAME,
            AttachError::NotFound { .. } => RINGCAST_ERR_NOT_FOUND,
            AttachError::PermissionDenied { .. } => RINGCAST_ERR_PERMISSION,
            AttachError::UntrustedOwner { .. } => RINGCAST_ERR_UNTRUSTED,
            AttachError::NotRegularFile { .. }
            | AttachError::NotASegment { .. }
            | AttachError::Version { .. }
            | AttachError::TooSmall { .. }
            | AttachError::Geometry { .. } => RINGCAST_ERR_NOT_A_SEGMENT,
            AttachError::NotReady { .. } => RINGCAST_ERR_NOT_READY,
            AttachError::TypeMismatch { .. } => RINGCAST_ERR_TYPE_MISMATCH,
            AttachError::OverLimit { .. }
            | AttachError::Memory { .. }
            | AttachError::OutOfMemory { .. }
            | AttachError::TableFull { .. } => RINGCAST_ERR_RESOURCE,
            AttachError::Closed { .. } => RINGCAST_ERR_CLOSED,
            _ => RINGCAST_ERR_IO,
        };
        Failure::new(status, e.to_string())
    }
}

impl From<SendError> for Failure {
    fn from(e: SendError) -> Failure {
        match e {
            SendError::TooLarge { .. } => Failure::new(RINGCAST_ERR_TOO_LARGE, e.to_string()),
            SendError::Full => Failure::outcome(RINGCAST_FULL),
        }
    }
}

impl From<RecvTimeoutError> for Failure {
    fn from(e: RecvTimeoutError) -> Failure {
        Failure::outcome(match e {
            RecvTimeoutError::Timeout => RINGCAST_TIMEOUT,
            RecvTimeoutError::Disconnected => RINGCAST_DISCONNECTED,
            RecvTimeoutError::Evicted => RINGCAST_EVICTED,
            RecvTimeoutError::Corrupt { .. } => RINGCAST_CORRUPT,
            // Folded into the next sample's `lost` by the caller; never reaches here.
            RecvTimeoutError::Lagged(_) => RINGCAST_ERR_PANIC,
        })
    }
}

/// The calling thread's last error message: what the most recent call on this thread
/// that returned an error (a negative status) went wrong with, and what to do. Empty if
/// none did. Outcomes (positive statuses) leave it alone. The string stays valid until
/// the next error on this thread; copy it to keep it.
#[no_mangle]
pub extern "C" fn ringcast_last_error() -> *const c_char {
    // The thread-local string lives as long as the thread; it is replaced (not mutated in
    // place) only by a later error on this same thread. During thread exit it may be gone:
    // then the empty static string.
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// A static description of a status (any `int32_t`; unknown values get "unknown status").
#[no_mangle]
pub extern "C" fn ringcast_status_str(status: i32) -> *const c_char {
    ringcast_status::ALL
        .iter()
        .find(|s| **s as i32 == status)
        .map_or(c"unknown status", |s| s.describe())
        .as_ptr()
}

/// This library's version ("MAJOR.MINOR.PATCH"), static.
#[no_mangle]
pub extern "C" fn ringcast_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("the version has a NUL"),
        };
    VERSION.as_ptr()
}
