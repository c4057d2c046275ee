//! Services: `ringcast_server` (create, receive requests in place, respond) and
//! `ringcast_client` (connect, call, send / receive streams), over `ringcast::service`.
//!
//! A server holds at most one received request at a time (its bytes in place in the
//! client's lane, as a subscriber holds one sample); answering it (`_respond`, `_end`)
//! or `ringcast_request_release` lets it go. A request can be answered at any time later
//! from its `ringcast_request` (its client and id), after its bytes were released. A
//! client holds at most one response at a time, until `ringcast_response_release`.
//!
//! Both join wait sets (`ringcast_waitset_add_server` / `_add_client`, in `waitset`):
//! the set then owns the `Server` / `Client` ([`MemberPlace`]) and the handle reaches it
//! there, as a subscriber's does.

use std::ffi::{c_char, c_int, c_void};
use std::mem::MaybeUninit;
use std::time::Duration;

use ringcast::fork::Lineage;
use ringcast::service::{
    CallError, CallId, Client, ClientOptions, ConnectError, RespondError, Responder, ServeError,
    Server, ServerConfig, ServerRecvError,
};
use ringcast::PublisherId;

use crate::boxed;
use crate::config::{id_list, read_versioned, wait_arg, RINGCAST_WAIT_SPIN_THEN_PARK};
use crate::error::{guard, str_arg, timeout_arg, Failure};
use crate::reentry;
use crate::status::ringcast_status::{self, *};
use crate::subscriber::ringcast_sample;
use crate::waitset::MemberPlace;

/// How to serve. Fill it with `ringcast_server_config_init` (every number 0: the
/// library's default), then set fields.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringcast_server_config {
    /// `sizeof(ringcast_server_config)`, set by `_init`: the struct's version.
    pub struct_size: u32,
    /// How the server waits for requests: `RINGCAST_WAIT_*`.
    pub wait: u32,
    /// Segment name prefix (NULL: the default, "ringcast"); clients use the same. Copied
    /// during the call.
    pub prefix: *const c_char,
    /// Clients connected at once (0: the default, 16).
    pub max_clients: u64,
    /// Requests each client may have queued, and in flight: a power of two (0: 16).
    pub queue: u64,
    /// Largest request payload in bytes (0: 4096).
    pub max_request: u64,
    /// Responses each client's ring holds unread: a power of two, at least `queue`
    /// (0: 16).
    pub response_slots: u64,
    /// Largest response payload in bytes (0: 4096).
    pub max_response: u64,
    /// Permission bits of the service's topics (`_init`: 0o600, and 0 means that too:
    /// only the server's user may call). Callers of other users need read and write
    /// bits (0o660: the file's group, 0o666: every local user); at least 0o600, at most
    /// 0o666, else `RINGCAST_ERR_CONFIG`. Such clients must also trust the server's
    /// user (`ringcast_client_options.trust_users`).
    pub mode: u32,
}

/// How a client connects. Fill it with `ringcast_client_options_init`, then set fields.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringcast_client_options {
    /// `sizeof(ringcast_client_options)`, set by `_init`: the struct's version.
    pub struct_size: u32,
    /// How the client waits for responses: `RINGCAST_WAIT_*`.
    pub wait: u32,
    /// Segment name prefix (NULL: the default, "ringcast"): the server's. Copied during
    /// the call.
    pub prefix: *const c_char,
    /// How long connecting waits for a live server to answer the greeting (0: the default,
    /// 5 s); then `RINGCAST_TIMEOUT`.
    pub handshake_timeout_ns: u64,
    /// Requests this client may have in flight (0: the server's queue, also the most).
    pub max_in_flight: u64,
    /// User ids whose services (their topics' owner) to use besides this process's own
    /// user and root, who alone are trusted by default (another user's service is
    /// `RINGCAST_ERR_UNTRUSTED`); `trust_users_len` of them (NULL with 0: none). Copied
    /// during the call. As `ringcast_subscriber_options.trust_users`.
    pub trust_users: *const u32,
    /// How many ids `trust_users` points to.
    pub trust_users_len: usize,
    /// Group ids whose services (the topics' file group) to use, likewise.
    pub trust_groups: *const u32,
    /// How many ids `trust_groups` points to.
    pub trust_groups_len: usize,
    /// Non-zero: use services of any owner.
    pub trust_any_owner: u32,
}

/// `sizeof(ringcast_server_config)` in the headers this library accepts, oldest first:
/// before `mode` (56), then this one.
const SERVER_CONFIG_SIZES: [usize; 2] = [56, size_of::<ringcast_server_config>()];
const _: () = assert!(size_of::<ringcast_server_config>() == 64);
/// `sizeof(ringcast_client_options)` in the headers this library accepts, oldest first:
/// before the `trust_*` fields (32), then this one.
const CLIENT_OPTIONS_SIZES: [usize; 2] = [32, size_of::<ringcast_client_options>()];
const _: () = assert!(size_of::<ringcast_client_options>() == 72);

/// A request a server received: `len` bytes at `data` (in place in the client's lane),
/// valid until the request is answered to its end (`ringcast_request_respond`,
/// `ringcast_request_end`) or released (`ringcast_request_release`). `client_lane`,
/// `client_writer` and `id` name it: the struct can be kept (copied) to answer it later,
/// after its bytes were released.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ringcast_request {
    /// The payload (read-only); NULL once released.
    pub data: *const c_void,
    /// Its length.
    pub len: usize,
    /// The request's id at its client (the `seq` of the client's responses to it).
    pub id: u64,
    /// The lane of the server's request topic its client sends on.
    pub client_lane: u32,
    /// Its client's id in that lane.
    pub client_writer: u32,
}

/// The server of a service (opaque). Used by one thread at a time.
pub struct ringcast_server {
    /// The server, in the handle or in the wait set it was added to.
    pub(crate) server: MemberPlace<Server>,
    /// The request handed to C (its client, id and data pointer), kept in the server
    /// (`Request::keep`) until answered to its end or released.
    pub(crate) held: Option<(PublisherId, u64, *const c_void)>,
    /// A request a wait set received (kept in the server) to learn that the server is
    /// ready, not handed to C yet: the next `ringcast_server_recv` returns it.
    pub(crate) ready: Option<ringcast_request>,
    /// The process that made it (a `fork()` child refuses to use it).
    lineage: Lineage,
}

/// The client of a service (opaque). Used by one thread at a time.
pub struct ringcast_client {
    /// The client, in the handle or in the wait set it was added to.
    pub(crate) client: MemberPlace<Client>,
    /// The response handed to C (its call and data pointer), kept in the client
    /// (`Response::keep`) until `ringcast_response_release`.
    pub(crate) held: Option<(u64, *const c_void)>,
    /// The process that made it (a `fork()` child refuses to use it).
    lineage: Lineage,
}

/// Fills `cfg` with the defaults (and its `struct_size`).
///
/// # Safety
/// `cfg` is NULL or writable for one `ringcast_server_config`.
#[no_mangle]
pub unsafe extern "C" fn ringcast_server_config_init(
    cfg: *mut ringcast_server_config,
) -> ringcast_status {
    guard(|| {
        if cfg.is_null() {
            return Err(Failure::null("cfg"));
        }
        let value = ringcast_server_config {
            struct_size: size_of::<ringcast_server_config>() as u32,
            wait: RINGCAST_WAIT_SPIN_THEN_PARK,
            prefix: std::ptr::null(),
            max_clients: 0,
            queue: 0,
            max_request: 0,
            response_slots: 0,
            max_response: 0,
            mode: 0o600,
        };
        // SAFETY: non-NULL and writable for one struct, by the caller's contract; `write`
        // does not read the (possibly uninitialised) old value.
        unsafe { cfg.write(value) };
        Ok(RINGCAST_OK)
    })
}

/// Fills `opts` with the defaults (and its `struct_size`).
///
/// # Safety
/// `opts` is NULL or writable for one `ringcast_client_options`.
#[no_mangle]
pub unsafe extern "C" fn ringcast_client_options_init(
    opts: *mut ringcast_client_options,
) -> ringcast_status {
    guard(|| {
        if opts.is_null() {
            return Err(Failure::null("opts"));
        }
        let value = ringcast_client_options {
            struct_size: size_of::<ringcast_client_options>() as u32,
            wait: RINGCAST_WAIT_SPIN_THEN_PARK,
            prefix: std::ptr::null(),
            handshake_timeout_ns: 0,
            max_in_flight: 0,
            trust_users: std::ptr::null(),
            trust_users_len: 0,
            trust_groups: std::ptr::null(),
            trust_groups_len: 0,
            trust_any_owner: 0,
        };
        // SAFETY: as in `ringcast_server_config_init`.
        unsafe { opts.write(value) };
        Ok(RINGCAST_OK)
    })
}

/// The Rust config of a C one (NULL: the defaults).
///
/// # Safety
/// `cfg` is NULL or a readable `ringcast_server_config` whose `prefix` is NULL or
/// NUL-terminated.
unsafe fn server_config(cfg: *const ringcast_server_config) -> Result<ServerConfig, Failure> {
    let mut out = ServerConfig::default();
    if cfg.is_null() {
        return Ok(out);
    }
    let mut defaults = MaybeUninit::uninit();
    // SAFETY: writable for one struct.
    unsafe { ringcast_server_config_init(defaults.as_mut_ptr()) };
    // SAFETY: `_init` filled it; `cfg` is readable for its own `struct_size`, by the
    // caller's contract.
    let c = unsafe { read_versioned(cfg, defaults.assume_init(), &SERVER_CONFIG_SIZES, "cfg") }?;
    if c.mode != 0 {
        out = out.mode(c.mode);
    }
    out = out.wait_strategy(wait_arg(c.wait)?);
    if c.max_clients != 0 {
        out = out.max_clients(c.max_clients);
    }
    if c.queue != 0 {
        out = out.queue(c.queue);
    }
    if c.max_request != 0 {
        out = out.max_request(c.max_request);
    }
    if c.response_slots != 0 {
        out = out.response_slots(c.response_slots);
    }
    if c.max_response != 0 {
        out = out.max_response(c.max_response);
    }
    if !c.prefix.is_null() {
        // SAFETY: a NUL-terminated string, by the caller's contract.
        out = out.prefix(unsafe { str_arg(c.prefix, "cfg.prefix") }?);
    }
    Ok(out)
}

/// The Rust options of C ones (NULL: the defaults), with the wait for a server.
///
/// # Safety
/// As for [`server_config`], for a `ringcast_client_options` whose `trust_users` and
/// `trust_groups` are NULL or readable for their lengths.
unsafe fn client_options(
    opts: *const ringcast_client_options,
    wait: Duration,
) -> Result<ClientOptions, Failure> {
    let mut out = ClientOptions::default().wait(wait);
    if opts.is_null() {
        return Ok(out);
    }
    let mut defaults = MaybeUninit::uninit();
    // SAFETY: writable for one struct.
    unsafe { ringcast_client_options_init(defaults.as_mut_ptr()) };
    // SAFETY: as in `server_config`.
    let o = unsafe { read_versioned(opts, defaults.assume_init(), &CLIENT_OPTIONS_SIZES, "opts") }?;
    // SAFETY: readable for the given lengths, by the caller's contract.
    for uid in unsafe { id_list(o.trust_users, o.trust_users_len, "opts.trust_users") }? {
        out = out.trust_user(*uid);
    }
    // SAFETY: as above.
    for gid in unsafe { id_list(o.trust_groups, o.trust_groups_len, "opts.trust_groups") }? {
        out = out.trust_group(*gid);
    }
    if o.trust_any_owner != 0 {
        out = out.trust_any_owner();
    }
    out = out.wait_strategy(wait_arg(o.wait)?);
    if o.handshake_timeout_ns != 0 {
        out = out.handshake_timeout(Duration::from_nanos(o.handshake_timeout_ns));
    }
    if o.max_in_flight != 0 {
        let n = usize::try_from(o.max_in_flight).unwrap_or(usize::MAX);
        out = out.max_in_flight(n);
    }
    if !o.prefix.is_null() {
        // SAFETY: a NUL-terminated string, by the caller's contract.
        out = out.prefix(unsafe { str_arg(o.prefix, "opts.prefix") }?);
    }
    Ok(out)
}

impl From<ServeError> for Failure {
    fn from(e: ServeError) -> Failure {
        let msg = e.to_string();
        match e {
            ServeError::Name { .. } => Failure::new(RINGCAST_ERR_NAME, msg),
            ServeError::AlreadyServed { .. } => Failure::new(RINGCAST_ERR_ALREADY_SERVED, msg),
            ServeError::Config { .. } => Failure::new(RINGCAST_ERR_CONFIG, msg),
            ServeError::Create { source, .. } => Failure {
                message: msg,
                ..Failure::from(source)
            },
            ServeError::Attach { source, .. } => Failure {
                message: msg,
                ..Failure::from(source)
            },
            _ => Failure::new(RINGCAST_ERR_IO, msg),
        }
    }
}

impl From<ConnectError> for Failure {
    fn from(e: ConnectError) -> Failure {
        let msg = e.to_string();
        match e {
            ConnectError::Name { .. } => Failure::new(RINGCAST_ERR_NAME, msg),
            ConnectError::NoServer { .. } | ConnectError::ServerGone { .. } => {
                Failure::new(RINGCAST_ERR_NO_SERVER, msg)
            }
            ConnectError::Malformed { .. } => Failure::new(RINGCAST_ERR_NOT_A_SEGMENT, msg),
            ConnectError::TooManyClients { .. } => Failure::new(RINGCAST_ERR_TOO_MANY_CLIENTS, msg),
            ConnectError::Timeout { .. } => Failure::outcome(RINGCAST_TIMEOUT),
            ConnectError::UntrustedOwner { .. } => Failure::new(RINGCAST_ERR_UNTRUSTED, msg),
            ConnectError::PermissionDenied { .. } => Failure::new(RINGCAST_ERR_PERMISSION, msg),
            ConnectError::Create { source, .. } => Failure {
                message: msg,
                ..Failure::from(source)
            },
            ConnectError::Attach { source, .. } => Failure {
                message: msg,
                ..Failure::from(source)
            },
            _ => Failure::new(RINGCAST_ERR_IO, msg),
        }
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        let msg = e.to_string();
        match e {
            CallError::Disconnected => Failure::outcome(RINGCAST_DISCONNECTED),
            CallError::Timeout => Failure::outcome(RINGCAST_TIMEOUT),
            CallError::Full => Failure::outcome(RINGCAST_FULL),
            CallError::TooManyInFlight { .. } => Failure::new(RINGCAST_ERR_TOO_MANY_IN_FLIGHT, msg),
            CallError::TooLarge { .. } => Failure::new(RINGCAST_ERR_TOO_LARGE, msg),
            CallError::NoResponse => Failure::new(RINGCAST_ERR_NO_RESPONSE, msg),
            CallError::UnknownCall => Failure::new(RINGCAST_ERR_UNKNOWN_CALL, msg),
            CallError::Failed { .. } => Failure::new(RINGCAST_ERR_CALL_FAILED, msg),
            _ => Failure::new(RINGCAST_ERR_IO, msg),
        }
    }
}

impl From<RespondError> for Failure {
    fn from(e: RespondError) -> Failure {
        let msg = e.to_string();
        match e {
            RespondError::ClientGone => Failure::new(RINGCAST_ERR_CLIENT_GONE, msg),
            RespondError::ClientFull => Failure::new(RINGCAST_ERR_CLIENT_FULL, msg),
            RespondError::TooLarge { .. } => Failure::new(RINGCAST_ERR_TOO_LARGE, msg),
            RespondError::LoanPending { .. } => Failure::new(RINGCAST_ERR_LOAN_OUTSTANDING, msg),
            _ => Failure::new(RINGCAST_ERR_IO, msg),
        }
    }
}

/// A C buffer argument: NULL only with length 0.
///
/// # Safety
/// `data` is NULL or readable for `len` bytes.
unsafe fn bytes_arg<'a>(data: *const c_void, len: usize) -> Result<&'a [u8], Failure> {
    match (data.is_null(), len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(Failure::null("data")),
        (false, _) if len > isize::MAX as usize => Err(Failure::new(
            RINGCAST_ERR_INVALID_ARGUMENT,
            format!("len is {len}: larger than any buffer"),
        )),
        // SAFETY: non-NULL and readable for `len` bytes, by the caller's contract.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }),
    }
}

impl boxed::Inheritable for ringcast_server {
    fn inherited(&self) -> bool {
        self.lineage.inherited()
    }
}

impl boxed::Inheritable for ringcast_client {
    fn inherited(&self) -> bool {
        self.lineage.inherited()
    }
}

/// # Safety
/// `s` is NULL or a live handle, used by this thread only.
pub(crate) unsafe fn server<'a>(
    s: *mut ringcast_server,
) -> Result<&'a mut ringcast_server, Failure> {
    // SAFETY: the caller's contract.
    unsafe { boxed::own(s, "server") }
}

/// # Safety
/// `c` is NULL or a live handle, used by this thread only.
pub(crate) unsafe fn client<'a>(
    c: *mut ringcast_client,
) -> Result<&'a mut ringcast_client, Failure> {
    // SAFETY: the caller's contract.
    unsafe { boxed::own(c, "client") }
}

/// Starts serving `service` with `cfg` (NULL: the defaults) and stores the server in
/// `*out`. `RINGCAST_ERR_ALREADY_SERVED` if a live server has the name (a dead one's
/// topics are reclaimed), `RINGCAST_ERR_NAME`, `RINGCAST_ERR_CONFIG`.
///
/// # Safety
/// `service` is NULL or NUL-terminated; `cfg` is NULL or a readable config (see its
/// `_init`); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_server_create(
    service: *const c_char,
    cfg: *const ringcast_server_config,
    out: *mut *mut ringcast_server,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        unsafe { boxed::clear(out) }?;
        // SAFETY: by the caller's contract.
        let service = unsafe { str_arg(service, "service") }?;
        // SAFETY: by the caller's contract.
        let cfg = unsafe { server_config(cfg) }?;
        let server = Server::create(service, cfg)?;
        let value = ringcast_server {
            server: MemberPlace::Own(server),
            held: None,
            ready: None,
            lineage: Lineage::current(),
        };
        // SAFETY: `out` was checked by `clear`.
        unsafe { boxed::give(out, value) };
        Ok(RINGCAST_OK)
    })
}

/// Receives the next request into `*req` and holds it (its bytes in place) until it is
/// answered to its end or released. `timeout_ns < 0` waits for ever, `0` does not wait,
/// `> 0` waits at most that long (`RINGCAST_TIMEOUT`). Greetings of new clients are
/// handled on the way: a server must receive for clients to connect.
/// `RINGCAST_ERR_SAMPLE_OUTSTANDING` if a request is held (answer or release it first);
/// `RINGCAST_ERR_CLOSED` if the request topic was closed under the server (only a hostile
/// peer does that: create the server again). A request a wait set's wait received to
/// report the server ready (`ringcast_waitset_wait_members`) is returned first, at once.
///
/// # Safety
/// `s` is a live handle (or NULL); `req` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_server_recv(
    s: *mut ringcast_server,
    timeout_ns: i64,
    req: *mut ringcast_request,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { server(s) }?;
        if req.is_null() {
            return Err(Failure::null("req"));
        }
        if h.held.is_some() {
            return Err(Failure::new(
                RINGCAST_ERR_SAMPLE_OUTSTANDING,
                "a request is held: answer it (ringcast_request_respond / _end) or release it \
                 (ringcast_request_release) first",
            ));
        }
        let server = h.server.get()?;
        let value = match h.ready.take() {
            // Received by a wait set, to learn the server was ready.
            Some(value) => value,
            None => receive(server, timeout_arg(timeout_ns))?,
        };
        let to = PublisherId {
            lane: value.client_lane,
            writer: value.client_writer,
        };
        h.held = Some((to, value.id, value.data));
        // SAFETY: non-NULL (checked) and writable, by the caller's contract.
        unsafe { req.write(value) };
        Ok(RINGCAST_OK)
    })
}

/// Receives the next request (`timeout`: `None` waits for ever) and keeps it in the
/// server; `RINGCAST_TIMEOUT` as a failure if there is none.
pub(crate) fn receive(
    server: &mut Server,
    timeout: Option<Duration>,
) -> Result<ringcast_request, Failure> {
    let got = match timeout {
        Some(Duration::ZERO) => server.try_recv(),
        Some(t) => server.recv_timeout(t),
        None => server.recv(),
    }
    .map(ringcast::Request::keep);
    let to = match got {
        Ok(to) => to,
        Err(ServerRecvError::Empty) => return Err(Failure::outcome(RINGCAST_TIMEOUT)),
        Err(e) => return Err(Failure::new(RINGCAST_ERR_CLOSED, e.to_string())),
    };
    let bytes = server.kept_request().unwrap_or_default();
    Ok(ringcast_request {
        data: bytes.as_ptr().cast(),
        len: bytes.len(),
        id: to.id(),
        client_lane: to.client().lane,
        client_writer: to.client().writer,
    })
}

/// What a respond call sends.
enum Answer {
    Last,
    Part,
    End,
    Fail,
}

impl ringcast_server {
    /// Whether `req` names the held request.
    fn holds(&self, req: &ringcast_request) -> bool {
        self.held.is_some_and(|(client, id, _)| {
            client.lane == req.client_lane && client.writer == req.client_writer && id == req.id
        })
    }

    /// Releases the held request (if `req` is it) and clears `req`'s bytes.
    fn release(&mut self, req: &mut ringcast_request) -> Result<(), Failure> {
        if self.holds(req) {
            self.server.get()?.release_request();
            self.held = None;
            req.data = std::ptr::null();
            req.len = 0;
        }
        Ok(())
    }

    /// Sends `answer` to `req`; a last response or an end releases it if held.
    fn answer(
        &mut self,
        req: &mut ringcast_request,
        answer: Answer,
        payload: &[u8],
    ) -> Result<(), Failure> {
        let to = responder_of(req);
        match answer {
            Answer::Part => return Ok(self.server.get()?.respond_part(&to, payload)?),
            Answer::Last => self.server.get()?.respond(to, payload)?,
            Answer::End => self.server.get()?.end(to)?,
            Answer::Fail => self.server.get()?.fail(to)?,
        }
        self.release(req)
    }
}

/// The body of the respond calls.
///
/// # Safety
/// `s` is a live handle (or NULL); `req` is NULL or readable and writable; `data` is
/// NULL or readable for `len` bytes.
unsafe fn respond(
    s: *mut ringcast_server,
    req: *mut ringcast_request,
    answer: Answer,
    data: *const c_void,
    len: usize,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { server(s) }?;
        // SAFETY: NULL or readable and writable, by the caller's contract.
        let req = unsafe { req.as_mut() }.ok_or_else(|| Failure::null("req"))?;
        // SAFETY: by the caller's contract.
        let payload = unsafe { bytes_arg(data, len) }?;
        h.answer(req, answer, payload)?;
        Ok(RINGCAST_OK)
    })
}

/// Answers `*req` with its last (or only) response, `len` bytes at `data` (copied),
/// never waiting; a held request is then released (`req->data` cleared). Works for a
/// request received earlier and released since (from a copy of its struct).
/// `RINGCAST_ERR_CLIENT_GONE` (the client died or left), `RINGCAST_ERR_CLIENT_FULL` (its
/// response ring is full: try again later), `RINGCAST_ERR_TOO_LARGE`
/// (`len > max_response`); after an error the request stays held.
///
/// # Safety
/// `s` is a live handle (or NULL); `req` is NULL or a readable and writable request this
/// server received; `data` is NULL or readable for `len` bytes (NULL only with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn ringcast_request_respond(
    s: *mut ringcast_server,
    req: *mut ringcast_request,
    data: *const c_void,
    len: usize,
) -> ringcast_status {
    // SAFETY: the caller's contract.
    unsafe { respond(s, req, Answer::Last, data, len) }
}

/// Sends one response of `*req`'s stream (`len` bytes at `data`, copied), with more to
/// come; the request stays held. Errors as `ringcast_request_respond`.
///
/// # Safety
/// As for [`ringcast_request_respond`].
#[no_mangle]
pub unsafe extern "C" fn ringcast_request_respond_part(
    s: *mut ringcast_server,
    req: *mut ringcast_request,
    data: *const c_void,
    len: usize,
) -> ringcast_status {
    // SAFETY: the caller's contract.
    unsafe { respond(s, req, Answer::Part, data, len) }
}

/// Loans the next slot of `*req`'s client's response ring for a response written in
/// place (zero copy): `*data` = where to write its payload, `*capacity` = how many bytes
/// (the service's largest response). Never waits. Send it with
/// `ringcast_request_commit`; until then no other response reaches that client
/// (`RINGCAST_ERR_LOAN_OUTSTANDING` for another request of it), and a second loan for the
/// same request returns the same bytes. Works for a held request and for a copy of a
/// released one's struct. `RINGCAST_ERR_CLIENT_GONE`, `RINGCAST_ERR_CLIENT_FULL`.
///
/// # Safety
/// `s` is a live handle (or NULL); `req` is NULL or a readable request this server
/// received; `data` and `capacity` are NULL or writable. The loaned bytes are valid for
/// writes of `*capacity` bytes until the commit or the server's destruction.
#[no_mangle]
pub unsafe extern "C" fn ringcast_request_loan(
    s: *mut ringcast_server,
    req: *const ringcast_request,
    data: *mut *mut c_void,
    capacity: *mut usize,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { server(s) }?;
        // SAFETY: NULL or readable, by the caller's contract.
        let req = unsafe { req.as_ref() }.ok_or_else(|| Failure::null("req"))?;
        if data.is_null() || capacity.is_null() {
            return Err(Failure::null(if data.is_null() {
                "data"
            } else {
                "capacity"
            }));
        }
        let to = responder_of(req);
        // The Rust loan is dropped at the end of this call; its slot stays claimed.
        let mut loan = h.server.get()?.loan_response(&to)?;
        let (ptr, cap) = (loan.as_mut_ptr(), loan.len());
        // SAFETY: both non-NULL (checked) and writable, by the caller's contract.
        unsafe {
            data.write(ptr.cast());
            capacity.write(cap);
        }
        Ok(RINGCAST_OK)
    })
}

/// Sends the first `len` bytes of `*req`'s loaned response (`ringcast_request_loan`):
/// the last of its stream if `last` is non-zero (a held request is then released), else
/// one with more to come. `RINGCAST_ERR_NOT_HELD` if no response of `*req` is loaned,
/// `RINGCAST_ERR_TOO_LARGE` if `len` is over the capacity (the loan stays).
///
/// # Safety
/// `s` is a live handle (or NULL); `req` is NULL or a readable and writable request this
/// server received.
#[no_mangle]
pub unsafe extern "C" fn ringcast_request_commit(
    s: *mut ringcast_server,
    req: *mut ringcast_request,
    len: usize,
    last: c_int,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { server(s) }?;
        // SAFETY: NULL or readable and writable, by the caller's contract.
        let req = unsafe { req.as_mut() }.ok_or_else(|| Failure::null("req"))?;
        let to = responder_of(req);
        let loan = h.server.get()?.pending_response_loan(&to).ok_or_else(|| {
            Failure::new(
                RINGCAST_ERR_NOT_HELD,
                "no response of this request is loaned: ringcast_request_loan first",
            )
        })?;
        loan.commit(len, last != 0)?;
        if last != 0 {
            h.release(req)?;
        }
        Ok(RINGCAST_OK)
    })
}

/// The responder a request struct names.
fn responder_of(req: &ringcast_request) -> Responder {
    let client = PublisherId {
        lane: req.client_lane,
        writer: req.client_writer,
    };
    Responder::from_parts(client, req.id)
}

/// Ends `*req`'s stream with no further response (a client waiting in
/// `ringcast_client_call` gets `RINGCAST_ERR_NO_RESPONSE`, one in `ringcast_client_recv`
/// `RINGCAST_ENDED`); a held request is then released. Errors as
/// `ringcast_request_respond`.
///
/// # Safety
/// `s` is a live handle (or NULL); `req` is NULL or a readable and writable request this
/// server received.
#[no_mangle]
pub unsafe extern "C" fn ringcast_request_end(
    s: *mut ringcast_server,
    req: *mut ringcast_request,
) -> ringcast_status {
    // SAFETY: the caller's contract.
    unsafe { respond(s, req, Answer::End, std::ptr::null(), 0) }
}

/// Gives up on `*req`: its stream ends without an answer, and its client gets
/// `RINGCAST_ERR_CALL_FAILED` at once (from `ringcast_client_call` or
/// `ringcast_client_recv`) instead of waiting for its timeout; a held request is then
/// released. Errors as `ringcast_request_respond`.
///
/// # Safety
/// `s` is a live handle (or NULL); `req` is NULL or a readable and writable request this
/// server received.
#[no_mangle]
pub unsafe extern "C" fn ringcast_request_fail(
    s: *mut ringcast_server,
    req: *mut ringcast_request,
) -> ringcast_status {
    // SAFETY: the caller's contract.
    unsafe { respond(s, req, Answer::Fail, std::ptr::null(), 0) }
}

/// Releases the held request `*req` without answering it (clears `req->data` and
/// `req->len`): its slot goes back to its client, and the server can receive the next.
/// The struct still names the request, so it can be answered later. Unlike the Rust
/// API, a request released unanswered is not ended: answer it, or its client waits until
/// its timeout. `RINGCAST_ERR_NOT_HELD` if `*req` is not the held request.
///
/// # Safety
/// `s` is a live handle (or NULL); `req` is NULL or readable and writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_request_release(
    s: *mut ringcast_server,
    req: *mut ringcast_request,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { server(s) }?;
        // SAFETY: NULL or readable and writable, by the caller's contract.
        let req = unsafe { req.as_mut() }.ok_or_else(|| Failure::null("req"))?;
        if !h.holds(req) {
            return Err(Failure::new(
                RINGCAST_ERR_NOT_HELD,
                "this request is not the one this server holds (released or answered already?)",
            ));
        }
        h.release(req)?;
        Ok(RINGCAST_OK)
    })
}

/// `*out` = clients connected to the server now.
///
/// # Safety
/// `s` is a live handle (or NULL); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_server_clients(
    s: *mut ringcast_server,
    out: *mut usize,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { server(s) }?;
        // SAFETY: NULL or writable, by the caller's contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
        *out = h.server.get()?.stats().clients;
        Ok(RINGCAST_OK)
    })
}

/// Stops serving and frees the handle (taking it out of its wait set, if any): clients'
/// pending and later calls end with `RINGCAST_DISCONNECTED`. NULL is a no-op. A held
/// request is released first, and the call returns `RINGCAST_ABANDONED` to say so.
/// `RINGCAST_ERR_REENTRANT` (nothing done) from inside a callback its wait set runs.
///
/// # Safety
/// `s` is NULL or a live handle, not used again after this call (unless it returned
/// `RINGCAST_ERR_REENTRANT`).
#[no_mangle]
pub unsafe extern "C" fn ringcast_server_destroy(s: *mut ringcast_server) -> ringcast_status {
    guard(|| {
        if s.is_null() {
            return Ok(RINGCAST_OK);
        }
        // Check before taking ownership: a refused call must leave the handle as it was.
        // SAFETY: a live handle, by the caller's contract.
        let set = unsafe { boxed::any(s, "server") }?.server.set_ptr();
        reentry::refuse(set, "wait set")?;
        // SAFETY: a live handle (or NULL), not used again, by the caller's contract.
        let Some(mut h) = (unsafe { boxed::take(s) }) else {
            return Ok(RINGCAST_OK);
        };
        let me: *const ringcast_server = &*h;
        if let MemberPlace::InSet { mut set, .. } = h.server {
            // SAFETY: a handle `InSet` names a live set (see `MemberPlace::get`), used by
            // this thread and not running a callback (checked above).
            unsafe { set.as_mut() }.take_back_member(&mut h.server, me.cast());
        }
        let held = h.held.is_some();
        drop(h);
        Ok(if held {
            RINGCAST_ABANDONED
        } else {
            RINGCAST_OK
        })
    })
}

/// Connects to the server of `service` with `opts` (NULL: the defaults) and stores the
/// client in `*out`. `wait_ns`: how long to wait for a live server (`0`: not at all,
/// `< 0`: for ever); then `RINGCAST_ERR_NO_SERVER`. `RINGCAST_TIMEOUT` if the server did
/// not answer the greeting within `opts->handshake_timeout_ns` (it is not receiving);
/// `RINGCAST_ERR_TOO_MANY_CLIENTS`; `RINGCAST_ERR_NAME`.
///
/// # Safety
/// `service` is NULL or NUL-terminated; `opts` is NULL or readable options (see their
/// `_init`); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_client_connect(
    service: *const c_char,
    opts: *const ringcast_client_options,
    wait_ns: i64,
    out: *mut *mut ringcast_client,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        unsafe { boxed::clear(out) }?;
        // SAFETY: by the caller's contract.
        let service = unsafe { str_arg(service, "service") }?;
        let wait = timeout_arg(wait_ns).unwrap_or(Duration::MAX);
        // SAFETY: by the caller's contract.
        let opts = unsafe { client_options(opts, wait) }?;
        let client = Client::connect(service, opts)?;
        let value = ringcast_client {
            client: MemberPlace::Own(client),
            held: None,
            lineage: Lineage::current(),
        };
        // SAFETY: `out` was checked by `clear`.
        unsafe { boxed::give(out, value) };
        Ok(RINGCAST_OK)
    })
}

impl ringcast_client {
    fn no_response_held(&self) -> Result<(), Failure> {
        if self.held.is_some() {
            return Err(Failure::new(
                RINGCAST_ERR_SAMPLE_OUTSTANDING,
                "a response is held: release it (ringcast_response_release) first",
            ));
        }
        Ok(())
    }

    /// Holds the response just kept and describes it as a sample.
    fn hold(&mut self, call: CallId) -> Result<ringcast_sample, Failure> {
        let bytes = self.client.get()?.kept_response().unwrap_or_default();
        let data: *const c_void = bytes.as_ptr().cast();
        let len = bytes.len();
        self.held = Some((call.get(), data));
        Ok(ringcast_sample {
            data,
            len,
            seq: call.get(),
            lost: 0,
            lane: 0,
            writer: 0,
        })
    }
}

/// Writes a whole sample to `out`.
///
/// # Safety
/// `out` is non-NULL and writable for one `ringcast_sample`.
unsafe fn put(out: *mut ringcast_sample, sample: ringcast_sample) {
    // SAFETY: by the caller's contract.
    unsafe { out.write(sample) };
}

/// Clears a whole sample (the caller's, on an outcome without a response).
///
/// # Safety
/// As for [`put`].
unsafe fn clear_sample(out: *mut ringcast_sample) {
    let empty = ringcast_sample {
        data: std::ptr::null(),
        len: 0,
        seq: 0,
        lost: 0,
        lane: 0,
        writer: 0,
    };
    // SAFETY: by the caller's contract.
    unsafe { put(out, empty) };
}

/// Sends a request (`len` bytes at `data`, copied) and receives its first response into
/// `*response`, waiting at most `timeout_ns` in all (`< 0`: for ever); the response is
/// held (in place in the client's response ring) until `ringcast_response_release`, and
/// `response->seq` is the call's id. Any further responses to the call are dropped. For
/// services that answer each request with one response. Returns `RINGCAST_OK`,
/// `RINGCAST_TIMEOUT` (the call is abandoned), `RINGCAST_DISCONNECTED` (the server is
/// gone: connect again), `RINGCAST_FULL` (`timeout_ns` 0 and the server's queue is
/// full), `RINGCAST_ERR_NO_RESPONSE` (the server ended the request with none),
/// `RINGCAST_ERR_CALL_FAILED` (the server gave up on it), `RINGCAST_ERR_TOO_LARGE`,
/// `RINGCAST_ERR_TOO_MANY_IN_FLIGHT`, `RINGCAST_ERR_SAMPLE_OUTSTANDING` (a response is
/// held).
///
/// # Safety
/// `c` is a live handle (or NULL); `data` is NULL or readable for `len` bytes (NULL only
/// with `len` 0); `response` is NULL or writable for one `ringcast_sample` of this
/// header.
#[no_mangle]
pub unsafe extern "C" fn ringcast_client_call(
    c: *mut ringcast_client,
    data: *const c_void,
    len: usize,
    timeout_ns: i64,
    response: *mut ringcast_sample,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { client(c) }?;
        if response.is_null() {
            return Err(Failure::null("response"));
        }
        h.no_response_held()?;
        // SAFETY: by the caller's contract.
        unsafe { clear_sample(response) };
        // SAFETY: by the caller's contract.
        let payload = unsafe { bytes_arg(data, len) }?;
        let timeout = timeout_arg(timeout_ns).unwrap_or(Duration::MAX);
        let call = h.client.get()?.call(payload, timeout)?.keep();
        let sample = h.hold(call)?;
        // SAFETY: non-NULL (checked) and writable, by the caller's contract.
        unsafe { put(response, sample) };
        Ok(RINGCAST_OK)
    })
}

/// Sends a request (`len` bytes at `data`, copied), waiting up to `timeout_ns` for room
/// in the server's queue (`0`: `RINGCAST_FULL` if there is none now), and stores its
/// call id in `*call`: receive its responses with `ringcast_client_recv`.
/// `RINGCAST_DISCONNECTED`, `RINGCAST_TIMEOUT`, `RINGCAST_ERR_TOO_LARGE`,
/// `RINGCAST_ERR_TOO_MANY_IN_FLIGHT`.
///
/// # Safety
/// `c` is a live handle (or NULL); `data` is NULL or readable for `len` bytes; `call` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_client_send(
    c: *mut ringcast_client,
    data: *const c_void,
    len: usize,
    timeout_ns: i64,
    call: *mut u64,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { client(c) }?;
        // SAFETY: NULL or writable, by the caller's contract.
        let call = unsafe { call.as_mut() }.ok_or_else(|| Failure::null("call"))?;
        *call = 0;
        // SAFETY: by the caller's contract.
        let payload = unsafe { bytes_arg(data, len) }?;
        let timeout = timeout_arg(timeout_ns).unwrap_or(Duration::MAX);
        *call = h.client.get()?.send(payload, timeout)?.get();
        Ok(RINGCAST_OK)
    })
}

/// Receives the next response to call `call` (from `ringcast_client_send`) into
/// `*response`, held until `ringcast_response_release`; waits at most `timeout_ns`
/// (`< 0`: for ever, `0`: not at all). Returns `RINGCAST_OK`, `RINGCAST_ENDED` (the
/// call's stream ended: the server's last response was received before, or it ended the
/// stream with none), `RINGCAST_TIMEOUT` (the call stays in flight),
/// `RINGCAST_DISCONNECTED`, `RINGCAST_ERR_CALL_FAILED` (the server gave up on the call:
/// it is over), `RINGCAST_ERR_UNKNOWN_CALL`, `RINGCAST_ERR_SAMPLE_OUTSTANDING`. Responses
/// to other calls that arrive first are kept (copied) for them.
///
/// # Safety
/// `c` is a live handle (or NULL); `response` is NULL or writable for one
/// `ringcast_sample` of this header.
#[no_mangle]
pub unsafe extern "C" fn ringcast_client_recv(
    c: *mut ringcast_client,
    call: u64,
    timeout_ns: i64,
    response: *mut ringcast_sample,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { client(c) }?;
        if response.is_null() {
            return Err(Failure::null("response"));
        }
        h.no_response_held()?;
        // SAFETY: by the caller's contract.
        unsafe { clear_sample(response) };
        let timeout = timeout_arg(timeout_ns).unwrap_or(Duration::MAX);
        // A number C made up is no `CallId`: only ids this client sent are.
        let Some(id) = h.client.get()?.call_id(call) else {
            return Err(CallError::UnknownCall.into());
        };
        let Some(r) = h.client.get()?.recv(id, timeout)? else {
            return Err(Failure::outcome(RINGCAST_ENDED));
        };
        let id = r.keep();
        let sample = h.hold(id)?;
        // SAFETY: non-NULL (checked) and writable, by the caller's contract.
        unsafe { put(response, sample) };
        Ok(RINGCAST_OK)
    })
}

/// Releases the held response `*response` (its slot goes back to the server's ring) and
/// clears its `data`, `len` and `seq`. `RINGCAST_ERR_NOT_HELD` if it is not the held one
/// (e.g. released twice).
///
/// # Safety
/// `c` is a live handle (or NULL); `response` is NULL or readable and writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_response_release(
    c: *mut ringcast_client,
    response: *mut ringcast_sample,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { client(c) }?;
        // SAFETY: NULL or readable and writable, by the caller's contract.
        let r = unsafe { response.as_mut() }.ok_or_else(|| Failure::null("response"))?;
        match h.held {
            Some((call, data)) if call == r.seq && data == r.data => {
                h.client.get()?.release_response();
                h.held = None;
                r.data = std::ptr::null();
                r.len = 0;
                r.seq = 0;
                Ok(RINGCAST_OK)
            }
            _ => Err(Failure::new(
                RINGCAST_ERR_NOT_HELD,
                "this response is not the one this client holds (released twice?)",
            )),
        }
    })
}

/// `*out` = the largest request payload the server takes.
///
/// # Safety
/// `c` is a live handle (or NULL); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ringcast_client_max_request(
    c: *mut ringcast_client,
    out: *mut usize,
) -> ringcast_status {
    guard(|| {
        // SAFETY: by the caller's contract.
        let h = unsafe { client(c) }?;
        // SAFETY: NULL or writable, by the caller's contract.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
        *out = h.client.get()?.max_request();
        Ok(RINGCAST_OK)
    })
}

/// Disconnects and frees the handle (taking it out of its wait set, if any; the server
/// reclaims what it held for this client). NULL is a no-op. A held response is released
/// first, and the call returns `RINGCAST_ABANDONED` to say so. `RINGCAST_ERR_REENTRANT`
/// (nothing done) from inside a callback its wait set runs.
///
/// # Safety
/// `c` is NULL or a live handle, not used again after this call (unless it returned
/// `RINGCAST_ERR_REENTRANT`).
#[no_mangle]
pub unsafe extern "C" fn ringcast_client_destroy(c: *mut ringcast_client) -> ringcast_status {
    guard(|| {
        if c.is_null() {
            return Ok(RINGCAST_OK);
        }
        // Check before taking ownership: a refused call must leave the handle as it was.
        // SAFETY: a live handle, by the caller's contract.
        let set = unsafe { boxed::any(c, "client") }?.client.set_ptr();
        reentry::refuse(set, "wait set")?;
        // SAFETY: a live handle (or NULL), not used again, by the caller's contract.
        let Some(mut h) = (unsafe { boxed::take(c) }) else {
            return Ok(RINGCAST_OK);
        };
        let me: *const ringcast_client = &*h;
        if let MemberPlace::InSet { mut set, .. } = h.client {
            // SAFETY: a handle `InSet` names a live set (see `MemberPlace::get`), used by
            // this thread and not running a callback (checked above).
            unsafe { set.as_mut() }.take_back_member(&mut h.client, me.cast());
        }
        let held = h.held.is_some();
        drop(h);
        Ok(if held {
            RINGCAST_ABANDONED
        } else {
            RINGCAST_OK
        })
    })
}
