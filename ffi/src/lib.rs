//! The C ABI of ringcast: byte topics and services (request / response) from C, C++ and
//! any language with a C FFI.
//!
//! Built as a `cdylib` (`libringcast_ffi.so`) and a `staticlib` (`libringcast_ffi.a`);
//! the header `include/ringcast.h` is generated from this crate by cbindgen (the test
//! `header_is_current` fails when it is stale; `RINGCAST_BLESS=1` rewrites it), and
//! `include/ringcast.hpp` is a header-only C++17 wrapper over it.
//!
//! Conventions, for every entry point:
//! - it returns a [`ringcast_status`] (0 = `RINGCAST_OK`; positive: an outcome to act on,
//!   such as a timeout; negative: an error), except the few that return a string;
//! - a required pointer that is NULL gives `RINGCAST_ERR_NULL`, never a crash;
//! - no Rust panic unwinds into C: an internal bug gives `RINGCAST_ERR_PANIC`;
//! - on an error, [`ringcast_last_error`] describes it (per thread, until the next error);
//! - a handle (`ringcast_publisher`, `ringcast_subscriber`, `ringcast_waitset`) is used by
//!   one thread at a time; it may move between threads. A wait set and its members are
//!   used by the same thread.
//!
//! The safety of the C side is the caller's: handles are those this library returned and
//! not yet destroyed, data pointers are valid for the lengths given, strings are
//! NUL-terminated. Everything that can be checked (NULL, lengths, struct versions, enum
//! values, which sample or loan is outstanding) is.
#![allow(non_camel_case_types)]

mod boxed;
mod config;
mod error;
mod publisher;
mod reentry;
mod service;
mod status;
mod subscriber;
mod waitset;

pub use config::*;
pub use error::{ringcast_last_error, ringcast_status_str, ringcast_version};
pub use publisher::*;
pub use service::*;
pub use status::ringcast_status;
pub use subscriber::*;
pub use waitset::*;
