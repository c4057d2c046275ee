//! Request and response between processes over ringcast's shared-memory rings: a
//! [`Server`] per service name, any number of [`Client`]s, in any processes.
//!
//! A client sends a request (copied with [`Client::send`] or written in place through
//! [`Client::loan`]) and receives, through the [`CallId`] it got back, the server's
//! responses to that request: none, one, or a stream that the server ends. The server
//! receives requests in place ([`Request`]) and answers each; a response reaches only the
//! client that asked. How it is built: each client sends on its own lane of the service's
//! request topic (a single-writer ring: no client can delay or corrupt another's
//! requests), and the server publishes to each client on a response topic of its own
//! (a slow client fills only its own ring, and the server never waits for it: a full ring
//! is [`RespondError::ClientFull`]). Liveness is the topics': a dead server ends every
//! pending call with [`CallError::Disconnected`]; a dead client's lane dies, and the
//! server drops its link and response topic within a liveness slice.
//!
//! Both handles are [`WaitSet`](ringcast_core::waitset::WaitSet) members: a server is
//! ready when a request (or a greeting) waits, a client when a response does.
//!
//! ```
//! use std::time::Duration;
//! use ringcast_service::{Client, ClientOptions, Server, ServerConfig};
//! # let prefix = format!("rcdoc{}svc", std::process::id());
//! let mut server = Server::create("clock", ServerConfig::default().prefix(&prefix))?;
//! let answer = std::thread::spawn(move || {
//!     // A stream: three responses, then the end.
//!     let mut request = server.recv_timeout(Duration::from_secs(5)).unwrap();
//!     for tick in 0..3u8 {
//!         request.respond_part(&[tick]).unwrap();
//!     }
//!     request.end().unwrap();
//! });
//! let opts = ClientOptions::default().prefix(&prefix).wait(Duration::from_secs(1));
//! let mut client = Client::connect("clock", opts)?;
//! let call = client.send(b"ticks", Duration::from_secs(1))?;
//! let mut got = Vec::new();
//! while let Some(response) = client.recv(call, Duration::from_secs(5))? {
//!     got.push(response[0]);
//! }
//! assert_eq!(got, [0, 1, 2]);
//! # answer.join().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod config;
mod error;
mod future;
mod server;
mod typed;
pub mod wire;

pub use client::{CallId, Client, RequestLoan, Response};
pub use config::{ClientOptions, ServerConfig};
pub use error::{CallError, ConnectError, RespondError, ServeError, ServerRecvError};
pub use server::{Request, Responder, ResponseLoan, Server, ServerStats};
pub use typed::{
    TypedCallError, TypedClient, TypedRequest, TypedRespondError, TypedResponse, TypedServer,
    TypedServerRecvError,
};
