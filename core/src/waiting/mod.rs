//! Waiting, built on the protocol's handshake: strategies and the deadline / liveness loop
//! for one handle ([`wait`]), many handles at once ([`waitset`]), and the async reactor
//! ([`reactor`]).

#[cfg(not(loom))]
pub mod reactor;
pub mod wait;
pub mod waitset;
