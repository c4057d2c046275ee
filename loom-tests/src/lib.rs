//! loom model checks of ringcast's synchronization code.
//!
//! The models live in `tests/` and compile only under `RUSTFLAGS="--cfg loom"`; they drive
//! the very `ringcast-core` code that ships, through its `cfg(loom)` sync shim.
