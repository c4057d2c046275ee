//! Typed services: requests and responses archived with rkyv straight into their slots
//! and handed out validated, as typed topics do ([`TypedServer`], [`TypedClient`]).
//!
//! ```
//! use std::time::Duration;
//! use ringcast_service::{ClientOptions, ServerConfig, TypedClient, TypedServer};
//! # let prefix = format!("rcdoc{}typedsvc", std::process::id());
//!
//! #[derive(rkyv::Archive, rkyv::Serialize)]
//! struct Goal { x: f32, y: f32 }
//! #[derive(rkyv::Archive, rkyv::Serialize)]
//! struct Plan { steps: Vec<(f32, f32)> }
//!
//! let mut server = TypedServer::<Goal, Plan>::create("planner", ServerConfig::default().prefix(&prefix))?;
//! let serving = std::thread::spawn(move || {
//!     let request = server.recv_timeout(Duration::from_secs(5)).unwrap();
//!     let (x, y) = (request.x.to_native(), request.y.to_native());
//!     request.respond(&Plan { steps: vec![(x / 2.0, y / 2.0), (x, y)] }).unwrap();
//! });
//! let opts = ClientOptions::default().prefix(&prefix).wait(Duration::from_secs(1));
//! let mut client = TypedClient::<Goal, Plan>::connect("planner", opts)?;
//! let plan = client.call(&Goal { x: 4.0, y: 2.0 }, Duration::from_secs(5))?;
//! assert_eq!(plan.steps.len(), 2);
//! assert_eq!(plan.steps[1].0.to_native(), 4.0);
//! # drop(plan);
//! # serving.join().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::time::Duration;

use ringcast_core::TypeInfo;
use ringcast_publisher::{
    serialize_into, type_info_of, SlotSerializer, TypedSendError, DEFAULT_SCRATCH_BYTES,
};
use ringcast_subscriber::SlotValidator;
use rkyv::api::low::access;
use rkyv::api::{access_pos_unchecked, root_position};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::{Archive, Archived, Serialize};

use crate::client::{CallId, Client, Patience, Response};
use crate::error::{CallError, ConnectError, RespondError, ServeError, ServerRecvError};
use crate::server::{Failed, Request, Responder, Server};
use crate::{wire, ClientOptions, ServerConfig};

/// Why a typed call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TypedCallError {
    /// The call failed as an untyped one would.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The request could not be archived (too large for the server's requests, or a
    /// serializer error). Nothing was sent.
    #[error("the request could not be archived: {0}")]
    Serialize(TypedSendError),
    /// A response is not a valid archive of the response type: the server is buggy or
    /// hostile. The response was consumed.
    #[error("a response to call {} is not a valid {type_name}: {source}", call.get())]
    Invalid {
        /// The call it answered.
        call: CallId,
        /// The type it was checked as.
        type_name: &'static str,
        /// What bytecheck found wrong.
        #[source]
        source: rancor::Error,
    },
}

/// Why a typed server's receive returned no request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TypedServerRecvError {
    /// As for an untyped server.
    #[error(transparent)]
    Recv(#[from] ServerRecvError),
    /// A request is not a valid archive of the request type (a buggy or hostile client):
    /// it was ended with no response (its client sees none) and released.
    #[error("a request of client {client} is not a valid {type_name}: {source}")]
    Invalid {
        /// Its client.
        client: ringcast_core::PublisherId,
        /// The type it was checked as.
        type_name: &'static str,
        /// What bytecheck found wrong.
        #[source]
        source: rancor::Error,
    },
}

/// Why a typed response was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TypedRespondError {
    /// As for an untyped response.
    #[error(transparent)]
    Respond(#[from] RespondError),
    /// The response could not be archived (too large for the service's responses, or a
    /// serializer error). Nothing was sent.
    #[error("the response could not be archived: {0}")]
    Serialize(TypedSendError),
}

impl From<Failed<TypedSendError>> for TypedRespondError {
    fn from(f: Failed<TypedSendError>) -> Self {
        match f {
            Failed::Respond(e) => TypedRespondError::Respond(e),
            Failed::Write(e) => TypedRespondError::Serialize(e),
        }
    }
}

fn scratch() -> Box<[MaybeUninit<u8>]> {
    vec![MaybeUninit::uninit(); DEFAULT_SCRATCH_BYTES].into_boxed_slice()
}

/// Where the archive's root is in `bytes`, once it validated as an `Archived<T>`.
fn validate<T: Archive>(bytes: &[u8]) -> Result<usize, rancor::Error>
where
    Archived<T>: for<'a> CheckBytes<SlotValidator<'a>>,
{
    access::<Archived<T>, rancor::Error>(bytes)?;
    Ok(root_position::<Archived<T>>(bytes.len()))
}

/// The types' fingerprints, and an alignment that fits both archives.
fn types<Req: Archive, Resp: Archive>(schema_version: u64) -> ((TypeInfo, TypeInfo), u64) {
    let align = std::mem::align_of::<Archived<Req>>().max(std::mem::align_of::<Archived<Resp>>());
    (
        (
            type_info_of::<Req>(schema_version),
            type_info_of::<Resp>(schema_version),
        ),
        (align as u64).max(16),
    )
}

/// The server of a typed service: requests are `Req`, validated and read in place
/// (`&Archived<Req>`), responses `Resp`, archived straight into the client's ring.
pub struct TypedServer<Req, Resp> {
    raw: Server,
    scratch: Box<[MaybeUninit<u8>]>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> TypedServer<Req, Resp>
where
    Req: Archive,
    Archived<Req>: for<'a> CheckBytes<SlotValidator<'a>>,
    Resp: Archive + for<'a> Serialize<SlotSerializer<'a>>,
{
    /// Serves `service` with request type `Req` and response type `Resp` (schema version
    /// 0); a client with other types is refused at connect.
    pub fn create(service: &str, cfg: ServerConfig) -> Result<Self, ServeError> {
        Self::create_versioned(service, cfg, 0)
    }

    /// [`create`](Self::create) with a schema version both types' fingerprints carry.
    pub fn create_versioned(
        service: &str,
        mut cfg: ServerConfig,
        schema_version: u64,
    ) -> Result<Self, ServeError> {
        (cfg.types, cfg.alignment) = types::<Req, Resp>(schema_version);
        Ok(TypedServer {
            raw: Server::create(service, cfg)?,
            scratch: scratch(),
            _types: PhantomData,
        })
    }

    /// The next request, waiting at most `timeout` (`Duration::MAX`: for ever).
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<TypedRequest<'_, Req, Resp>, TypedServerRecvError> {
        let request = self.raw.recv_timeout(timeout)?;
        TypedRequest::check(request, &mut self.scratch)
    }

    /// The next request if there is one, without waiting.
    pub fn try_recv(&mut self) -> Result<TypedRequest<'_, Req, Resp>, TypedServerRecvError> {
        let request = self.raw.try_recv()?;
        TypedRequest::check(request, &mut self.scratch)
    }

    /// Answers a deferred request with its last (or only) response.
    pub fn respond(&mut self, to: Responder, value: &Resp) -> Result<(), TypedRespondError> {
        let scratch = &mut self.scratch;
        let sent = self.raw.send_with(to.client(), to.id(), wire::LAST, |buf| {
            serialize_into(buf, scratch, value)
        });
        Ok(sent?)
    }

    /// The untyped server (its statistics, deferred ends, wait-set membership).
    pub fn raw(&mut self) -> &mut Server {
        &mut self.raw
    }
}

impl<Req, Resp> std::fmt::Debug for TypedServer<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedServer")
            .field("raw", &self.raw)
            .finish()
    }
}

/// A validated request, read in place until dropped or answered. Derefs to
/// `Archived<Req>`. Dropped unanswered, it ends its stream (as an untyped request does).
pub struct TypedRequest<'a, Req, Resp> {
    request: Request<'a>,
    /// Where the validated archive's root is in the request's payload.
    root: usize,
    scratch: &'a mut [MaybeUninit<u8>],
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<'a, Req, Resp> TypedRequest<'a, Req, Resp>
where
    Req: Archive,
    Archived<Req>: for<'v> CheckBytes<SlotValidator<'v>>,
    Resp: Archive + for<'v> Serialize<SlotSerializer<'v>>,
{
    fn check(
        request: Request<'a>,
        scratch: &'a mut [MaybeUninit<u8>],
    ) -> Result<Self, TypedServerRecvError> {
        match validate::<Req>(request.bytes()) {
            Ok(root) => Ok(TypedRequest {
                request,
                root,
                scratch,
                _types: PhantomData,
            }),
            Err(source) => Err(TypedServerRecvError::Invalid {
                client: request.client(),
                type_name: std::any::type_name::<Req>(),
                source,
            }),
        }
    }

    /// Answers with `value` as the last (or only) response, and releases the request.
    pub fn respond(mut self, value: &Resp) -> Result<(), TypedRespondError> {
        self.send(wire::LAST, value)?;
        self.request.ended = true;
        Ok(())
    }

    /// Sends `value` as one response of a stream, with more to come.
    pub fn respond_part(&mut self, value: &Resp) -> Result<(), TypedRespondError> {
        self.send(wire::PART, value)
    }

    /// Ends the stream with no further response, and releases the request.
    pub fn end(self) -> Result<(), RespondError> {
        self.request.end()
    }

    /// Releases the request and returns who to answer later
    /// ([`TypedServer::respond`]).
    pub fn defer(self) -> Responder {
        self.request.defer()
    }

    /// The client that sent it.
    pub fn client(&self) -> ringcast_core::PublisherId {
        self.request.client()
    }

    /// The archive's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.request.bytes()
    }

    fn send(&mut self, kind: u32, value: &Resp) -> Result<(), TypedRespondError> {
        let scratch = &mut *self.scratch;
        let (client, id) = (self.request.client, self.request.id);
        let sent = self
            .request
            .server
            .send_with(client, id, kind, |buf| serialize_into(buf, scratch, value));
        Ok(sent?)
    }
}

impl<Req: Archive, Resp> Deref for TypedRequest<'_, Req, Resp> {
    type Target = Archived<Req>;
    fn deref(&self) -> &Archived<Req> {
        // SAFETY: these very bytes validated as an `Archived<Req>` rooted at `root` when
        // the request was received (`check`), and they stay the kept message, held in
        // place under `Block`, until the request is dropped: the same promise a typed
        // sample relies on.
        unsafe { access_pos_unchecked::<Archived<Req>>(self.request.bytes(), self.root) }
    }
}

impl<Req, Resp> std::fmt::Debug for TypedRequest<'_, Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedRequest")
            .field("request", &self.request)
            .finish()
    }
}

/// A client of a typed service: sends `Req` archived straight into the server's queue
/// and receives validated `Resp` archives.
pub struct TypedClient<Req, Resp> {
    raw: Client,
    scratch: Box<[MaybeUninit<u8>]>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> TypedClient<Req, Resp>
where
    Req: Archive + for<'a> Serialize<SlotSerializer<'a>>,
    Resp: Archive,
    Archived<Resp>: for<'a> CheckBytes<SlotValidator<'a>>,
{
    /// Connects to a typed server of `service` whose types are `Req` and `Resp` (schema
    /// version 0): [`ConnectError::TypeMismatch`] or an attach `TypeMismatch` otherwise.
    pub fn connect(service: &str, opts: ClientOptions) -> Result<Self, ConnectError> {
        Self::connect_versioned(service, opts, 0)
    }

    /// [`connect`](Self::connect) with the server's schema version.
    pub fn connect_versioned(
        service: &str,
        mut opts: ClientOptions,
        schema_version: u64,
    ) -> Result<Self, ConnectError> {
        opts.types = Some(types::<Req, Resp>(schema_version).0);
        Ok(TypedClient {
            raw: Client::connect(service, opts)?,
            scratch: scratch(),
            _types: PhantomData,
        })
    }

    /// Archives `value` into the server's queue (waiting up to `timeout` for room).
    pub fn send(&mut self, value: &Req, timeout: Duration) -> Result<CallId, TypedCallError> {
        self.send_within(value, &mut Patience::new(timeout))
    }

    fn send_within(&mut self, value: &Req, wait: &mut Patience) -> Result<CallId, TypedCallError> {
        let mut loan = self.raw.loan_within(wait)?;
        let len = serialize_into(&mut loan, &mut self.scratch, value)
            .map_err(TypedCallError::Serialize)?;
        Ok(loan.commit(len))
    }

    /// Sends `value` and returns its first response, waiting at most `timeout` in all.
    pub fn call(
        &mut self,
        value: &Req,
        timeout: Duration,
    ) -> Result<TypedResponse<'_, Resp>, TypedCallError> {
        let mut wait = Patience::new(timeout);
        let call = self.send_within(value, &mut wait)?;
        let response = self.raw.call_response(call, &mut wait)?;
        TypedResponse::check(response)
    }

    /// The next response to `call` (`Ok(None)` once its stream ended).
    pub fn recv(
        &mut self,
        call: CallId,
        timeout: Duration,
    ) -> Result<Option<TypedResponse<'_, Resp>>, TypedCallError> {
        match self.raw.recv(call, timeout)? {
            Some(response) => Ok(Some(TypedResponse::check(response)?)),
            None => Ok(None),
        }
    }

    /// The untyped client (in flight, cancel, wait-set membership).
    pub fn raw(&mut self) -> &mut Client {
        &mut self.raw
    }
}

impl<Req, Resp> std::fmt::Debug for TypedClient<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedClient")
            .field("raw", &self.raw)
            .finish()
    }
}

/// A validated response. Derefs to `Archived<Resp>`.
pub struct TypedResponse<'a, Resp> {
    response: Response<'a>,
    root: usize,
    _type: PhantomData<fn() -> Resp>,
}

impl<'a, Resp> TypedResponse<'a, Resp>
where
    Resp: Archive,
    Archived<Resp>: for<'v> CheckBytes<SlotValidator<'v>>,
{
    fn check(response: Response<'a>) -> Result<Self, TypedCallError> {
        match validate::<Resp>(response.bytes()) {
            Ok(root) => Ok(TypedResponse {
                response,
                root,
                _type: PhantomData,
            }),
            Err(source) => Err(TypedCallError::Invalid {
                call: response.call(),
                type_name: std::any::type_name::<Resp>(),
                source,
            }),
        }
    }
}

impl<Resp> TypedResponse<'_, Resp> {
    /// Whether it is the last response of its call's stream.
    pub fn is_last(&self) -> bool {
        self.response.is_last()
    }
    /// The call it answers.
    pub fn call(&self) -> CallId {
        self.response.call()
    }
    /// The archive's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.response.bytes()
    }
}

impl<Resp: Archive> Deref for TypedResponse<'_, Resp> {
    type Target = Archived<Resp>;
    fn deref(&self) -> &Archived<Resp> {
        // SAFETY: these bytes validated as an `Archived<Resp>` rooted at `root` (`check`);
        // they are the kept message held in place, or the response's own aligned copy,
        // unchanged until the response is dropped.
        unsafe { access_pos_unchecked::<Archived<Resp>>(self.response.bytes(), self.root) }
    }
}

impl<Resp> std::fmt::Debug for TypedResponse<'_, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedResponse")
            .field("response", &self.response)
            .finish()
    }
}
