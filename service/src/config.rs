//! How a server is set up ([`ServerConfig`]) and how a client connects
//! ([`ClientOptions`]).

use std::time::Duration;

use ringcast_core::name::DEFAULT_PREFIX;
use ringcast_core::trust::Trust;
use ringcast_core::{TypeInfo, WaitStrategy};

/// A server's limits: how many clients, how many requests each may have queued, and how
/// large requests and responses may be. Clients take these from the server's topics.
///
/// ```
/// use ringcast_service::ServerConfig;
/// let cfg = ServerConfig::default().max_clients(4).max_request(256).max_response(64 * 1024);
/// # let _ = cfg;
/// ```
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub(crate) prefix: String,
    pub(crate) max_clients: u64,
    pub(crate) queue: u64,
    pub(crate) max_request: u64,
    pub(crate) response_slots: u64,
    pub(crate) max_response: u64,
    pub(crate) wait: WaitStrategy,
    /// The request and response types (raw bytes unless a typed server sets them).
    pub(crate) types: (TypeInfo, TypeInfo),
    /// Payload alignment of both directions' slots (16: the header keeps it).
    pub(crate) alignment: u64,
    /// Permission bits of the service's topics.
    pub(crate) mode: u32,
    /// Where the service really runs, for a proxy of a remote one (a bridge's import).
    pub(crate) origin: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            prefix: DEFAULT_PREFIX.to_owned(),
            max_clients: 16,
            queue: 16,
            max_request: 4096,
            response_slots: 16,
            max_response: 4096,
            wait: WaitStrategy::default(),
            types: (TypeInfo::RAW, TypeInfo::RAW),
            alignment: 16,
            mode: 0o600,
            origin: None,
        }
    }
}

impl ServerConfig {
    /// Segment name prefix (default `ringcast`); clients must use the same.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Clients connected at once (default 16); one more is refused with
    /// `ConnectError::TooManyClients`.
    pub fn max_clients(mut self, n: u64) -> Self {
        self.max_clients = n;
        self
    }
    /// Requests each client may have queued for the server (a power of two, default 16):
    /// also the most it may have in flight. A full queue makes `try_send` return `Full`.
    pub fn queue(mut self, n: u64) -> Self {
        self.queue = n;
        self
    }
    /// Largest request payload in bytes (default 4096).
    pub fn max_request(mut self, bytes: u64) -> Self {
        self.max_request = bytes;
        self
    }
    /// Responses each client's ring holds unread (a power of two, default 16, at least
    /// [`queue`](Self::queue): one final response per request in flight always fits).
    pub fn response_slots(mut self, n: u64) -> Self {
        self.response_slots = n;
        self
    }
    /// Largest response payload in bytes (default 4096).
    pub fn max_response(mut self, bytes: u64) -> Self {
        self.max_response = bytes;
        self
    }
    /// How the server waits for requests (default: spin briefly, then sleep on a futex).
    pub fn wait_strategy(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }
    /// Permission bits of the service's topics (default 0o600: only the server's own user
    /// can call it). A client joins the request topic and attaches to its response
    /// topic, and both open the segment for reading and writing (a joiner takes a lane's
    /// lock and writes its lane; a subscriber writes its cursor in the entry table): users
    /// allowed to call need read and write bits, e.g. 0o660 for the file's group (the
    /// server's group) or 0o666 for every local user. Whoever those bits admit may also
    /// attach to another client's response topic and read its responses, as with any
    /// topic of that mode. The name plate gets the read bits only (a client just looks
    /// at it). Must include 0o600 and nothing above 0o666. Clients of another user must
    /// also trust the server's user ([`ClientOptions::trust_user`]).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
    /// Marks the server as a proxy of a service that runs elsewhere (what a bridge's
    /// import does): `origin` says where, for `ringcast list` and `inspect`, with the
    /// rules of a topic's origin (`PublisherConfig::imported_from`: 1 to 112 bytes
    /// without control characters, else creation fails with
    /// [`ServeError::Config`](crate::ServeError)). A bridge never exports a service so
    /// marked, so nothing is echoed back to where it came from.
    pub fn imported_from(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }
}

/// How a client connects.
///
/// ```
/// use std::time::Duration;
/// use ringcast_service::ClientOptions;
/// let opts = ClientOptions::default().wait(Duration::from_secs(2)).max_in_flight(4);
/// # let _ = opts;
/// ```
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub(crate) prefix: String,
    pub(crate) wait: Duration,
    pub(crate) handshake: Duration,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) strategy: WaitStrategy,
    /// The request and response types a typed client expects (`None`: any).
    pub(crate) types: Option<(TypeInfo, TypeInfo)>,
    /// Whose service topics the client uses.
    pub(crate) trust: Trust,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            prefix: DEFAULT_PREFIX.to_owned(),
            wait: Duration::ZERO,
            handshake: Duration::from_secs(5),
            max_in_flight: None,
            strategy: WaitStrategy::default(),
            types: None,
            trust: Trust::default(),
        }
    }
}

impl ClientOptions {
    /// Segment name prefix (default `ringcast`): the server's.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// How long `connect` waits for a server to appear (default 0: fail at once with
    /// `ConnectError::NoServer` when there is none).
    pub fn wait(mut self, timeout: Duration) -> Self {
        self.wait = timeout;
        self
    }
    /// How long `connect` waits for a live server to answer its greeting (default 5 s; a
    /// server answers it in its next receive).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake = timeout;
        self
    }
    /// Requests this client may have in flight (default and most: the server's queue).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n);
        self
    }
    /// How the client waits for responses (default: spin briefly, then sleep on a futex).
    pub fn wait_strategy(mut self, wait: WaitStrategy) -> Self {
        self.strategy = wait;
        self
    }
    /// Also use services whose topics belong to user `uid`. By default a client trusts
    /// only its own effective user and root: a name plate, request topic or response
    /// topic of anyone else is refused with `ConnectError::UntrustedOwner`, naming the
    /// owner, because any local user who may create files in /dev/shm could otherwise
    /// stand in for the server and read the requests (as for
    /// `SubscriberOptions::trust_user`). The server must also admit this user
    /// ([`ServerConfig::mode`]).
    ///
    /// ```
    /// # use ringcast_service::ClientOptions;
    /// let opts = ClientOptions::default().trust_user(1001).trust_group(2000);
    /// # let _ = opts;
    /// ```
    pub fn trust_user(mut self, uid: u32) -> Self {
        self.trust = self.trust.user(uid);
        self
    }
    /// Also use services whose topics' file group is `gid` (see
    /// [`trust_user`](Self::trust_user)).
    pub fn trust_group(mut self, gid: u32) -> Self {
        self.trust = self.trust.group(gid);
        self
    }
    /// Use services of any owner: for machines where every local user is trusted with
    /// every topic (see [`trust_user`](Self::trust_user)).
    pub fn trust_any_owner(mut self) -> Self {
        self.trust = self.trust.any_owner();
        self
    }
}

impl ServerConfig {
    /// Gives an untyped [`Server`](crate::Server) the request and response fingerprints
    /// of a typed service, as [`TypedServer`](crate::TypedServer) does for its own types:
    /// typed clients of those types then connect to it, and clients of other types are
    /// refused (`ConnectError::TypeMismatch`). The payload alignment becomes the larger
    /// of 16 and both types' alignments (what a typed server of those types takes).
    ///
    /// For bridges and tools that forward archives they do not decode: the server reads
    /// and sends raw bytes, which pass through unchanged, and each typed client validates
    /// the responses it receives as it would from a local typed server. The server itself
    /// checks nothing against the types.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringcast_service::{ClientOptions, ConnectError, Server, ServerConfig, TypedClient};
    /// # let prefix = format!("rcdoc{}rawtypes", std::process::id());
    ///
    /// #[derive(rkyv::Archive, rkyv::Serialize)]
    /// struct Point { x: f32, y: f32 }
    ///
    /// // A raw server that echoes archives of `Point` it never decodes.
    /// let point = ringcast_publisher::type_info_of::<Point>(0);
    /// let cfg = ServerConfig::default().prefix(&prefix).types(point, point);
    /// let mut server = Server::create("mirror", cfg)?;
    /// let serving = std::thread::spawn(move || {
    ///     let request = server.recv_timeout(Duration::from_secs(5)).unwrap();
    ///     let bytes = request.bytes().to_vec();
    ///     request.respond(&bytes).unwrap();
    /// });
    /// let opts = ClientOptions::default().prefix(&prefix).wait(Duration::from_secs(1));
    /// // A typed client of other types is refused...
    /// assert!(matches!(
    ///     TypedClient::<u32, u32>::connect("mirror", opts.clone()),
    ///     Err(ConnectError::TypeMismatch { .. })
    /// ));
    /// // ...and one of `Point` gets its archive back, validated.
    /// let mut client = TypedClient::<Point, Point>::connect("mirror", opts)?;
    /// let echoed = client.call(&Point { x: 1.5, y: -2.0 }, Duration::from_secs(5))?;
    /// assert_eq!((echoed.x.to_native(), echoed.y.to_native()), (1.5, -2.0));
    /// # drop(echoed);
    /// # serving.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn types(mut self, request: TypeInfo, response: TypeInfo) -> Self {
        self.types = (request, response);
        self.alignment = [request.align, response.align]
            .into_iter()
            .fold(16, u64::max);
        self
    }
}
