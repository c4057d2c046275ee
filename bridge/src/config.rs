//! What a bridge is asked to do, checked before anything starts.

use std::str::FromStr;

use ringcast::name::{validate_prefix, validate_topic, DEFAULT_PREFIX};

use crate::BridgeError;

/// The domain used when none is given: keys are `ringcast/default/<topic>`.
pub const DEFAULT_DOMAIN: &str = "default";
/// The largest segment an import creates unless told otherwise (4 GiB): an announcement
/// is remote input, and a ring over this is refused rather than allocated.
pub const DEFAULT_MAX_IMPORT_BYTES: u64 = 4 << 30;
/// The most message bytes an export packs into one Zenoh put by default (32 KiB: with a
/// full index, a batch of small messages still fits one 64 KiB Zenoh transport batch).
pub const DEFAULT_MAX_BATCH_BYTES: u32 = 32 << 10;
/// How long an imported service's call may take, end to end, unless told otherwise
/// (30 s): past it the Zenoh query times out and the local request's stream is ended.
pub const DEFAULT_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The largest batch bound accepted (16 MiB).
pub const MAX_BATCH_BYTES: u32 = 16 << 20;

/// How to run a bridge. Chainable setters; [`Bridge::start`](crate::Bridge::start)
/// checks everything.
///
/// ```
/// use ringcast_bridge::BridgeConfig;
/// let cfg = BridgeConfig::default()
///     .prefix("robot")
///     .domain("lab")
///     .listen("tcp/127.0.0.1:7447")
///     .export("imu")
///     .import("cmd_vel");
/// assert_eq!(cfg.exports(), ["imu"]);
/// ```
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    pub(crate) prefix: String,
    pub(crate) domain: String,
    pub(crate) listen: Vec<String>,
    pub(crate) connect: Vec<String>,
    pub(crate) exports: Vec<String>,
    pub(crate) imports: Vec<String>,
    pub(crate) service_exports: Vec<String>,
    pub(crate) service_imports: Vec<String>,
    pub(crate) call_timeout: std::time::Duration,
    pub(crate) multicast_scouting: bool,
    pub(crate) max_import_bytes: u64,
    pub(crate) import_mode: u32,
    pub(crate) max_batch_bytes: u32,
    pub(crate) tls: Option<TlsFiles>,
}

/// Mutual TLS for `tls/HOST:PORT` endpoints: every bridge presents `certificate` (with
/// `private_key`), and accepts a peer only if the peer's certificate chains to
/// `root_ca`, in both directions, so only holders of a certificate from that CA can join
/// the bridges' network at all. A connecting bridge also checks that the listener's
/// certificate names the host it dialled. PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signs every bridge's certificate.
    pub root_ca: std::path::PathBuf,
    /// This bridge's certificate (chain), presented on both listening and connecting.
    pub certificate: std::path::PathBuf,
    /// Its private key.
    pub private_key: std::path::PathBuf,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            prefix: DEFAULT_PREFIX.to_owned(),
            domain: DEFAULT_DOMAIN.to_owned(),
            listen: Vec::new(),
            connect: Vec::new(),
            exports: Vec::new(),
            imports: Vec::new(),
            service_exports: Vec::new(),
            service_imports: Vec::new(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            multicast_scouting: false,
            max_import_bytes: DEFAULT_MAX_IMPORT_BYTES,
            import_mode: 0o600,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            tls: None,
        }
    }
}

impl BridgeConfig {
    /// The shm prefix of the local topics (exported and imported).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// The domain: bridges see each other's topics only within one domain.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = domain.into();
        self
    }
    /// A Zenoh endpoint to listen on, like `tcp/0.0.0.0:7447` (repeatable). A bridge
    /// given none listens nowhere (it only dials its `connect` endpoints).
    pub fn listen(mut self, endpoint: impl Into<String>) -> Self {
        self.listen.push(endpoint.into());
        self
    }
    /// A Zenoh endpoint to connect to (repeatable; retried in the background until it
    /// answers).
    pub fn connect(mut self, endpoint: impl Into<String>) -> Self {
        self.connect.push(endpoint.into());
        self
    }
    /// A local topic to carry to the other bridges (repeatable).
    pub fn export(mut self, topic: impl Into<String>) -> Self {
        self.exports.push(topic.into());
        self
    }
    /// A remote topic to re-publish locally (repeatable).
    pub fn import(mut self, topic: impl Into<String>) -> Self {
        self.imports.push(topic.into());
        self
    }
    /// A local service (request and response) to offer to the other bridges
    /// (repeatable): its calls are answered by the local server, through a client of the
    /// bridge's.
    pub fn export_service(mut self, service: impl Into<String>) -> Self {
        self.service_exports.push(service.into());
        self
    }
    /// A remote service to serve locally (repeatable): a local server of that name
    /// forwards each request to the remote one and its responses back.
    pub fn import_service(mut self, service: impl Into<String>) -> Self {
        self.service_imports.push(service.into());
        self
    }
    /// How long an imported service's call may take, from the request to the end of its
    /// stream (default [`DEFAULT_CALL_TIMEOUT`]); then the call fails (its caller gets
    /// `CallError::Failed`).
    pub fn call_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.call_timeout = timeout;
        self
    }
    /// Whether to find peers by UDP multicast scouting (off by default: bridges connect
    /// where they are told).
    pub fn multicast_scouting(mut self, on: bool) -> Self {
        self.multicast_scouting = on;
        self
    }
    /// The largest ring (in bytes) an import agrees to create for a remote topic.
    pub fn max_import_bytes(mut self, bytes: u64) -> Self {
        self.max_import_bytes = bytes;
        self
    }
    /// Permission bits of the segments an import creates (default 0o600: only the
    /// bridge's user may attach; widen it, e.g. 0o640 with a shared group, for local
    /// subscribers of other users, who must also trust the bridge's user).
    pub fn import_mode(mut self, mode: u32) -> Self {
        self.import_mode = mode;
        self
    }
    /// The most message bytes an export packs into one Zenoh put (default
    /// [`DEFAULT_MAX_BATCH_BYTES`], at most [`MAX_BATCH_BYTES`]). When several messages
    /// wait in an exported ring, the export carries them in one put (a batch, with each
    /// message's sequence number: see [`wire`](crate::wire)) up to this many bytes and
    /// [`wire::MAX_BATCH`](crate::wire::MAX_BATCH) messages; a message alone in the ring,
    /// or this large or larger, goes alone at once. 0 sends every message alone. An
    /// import re-creates a topic with enough slots for one such batch of full-size
    /// messages if the source's ring has fewer (at most 8 times the source's; see
    /// [`Announcement::import_slots`](crate::announce::Announcement::import_slots)),
    /// within the import limit.
    pub fn max_batch_bytes(mut self, bytes: u32) -> Self {
        self.max_batch_bytes = bytes;
        self
    }
    /// Mutual TLS for `tls/` endpoints (see [`TlsFiles`]); needed for any `tls/`
    /// endpoint.
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }
    /// The topics to export.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }
    /// The topics to import.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// The services to export.
    pub fn service_exports(&self) -> &[String] {
        &self.service_exports
    }
    /// The services to import.
    pub fn service_imports(&self) -> &[String] {
        &self.service_imports
    }

    /// Checks every name and endpoint; topics named twice are kept once. A service's own
    /// topics (`S..service`, `S..requests`, `S..responses.*`) are refused as topics: a
    /// service travels whole, with `export_service` / `import_service`.
    pub(crate) fn validate(&mut self) -> Result<(), BridgeError> {
        validate_prefix(&self.prefix).map_err(|source| BridgeError::Name {
            what: "prefix",
            name: self.prefix.clone(),
            source,
        })?;
        validate_prefix(&self.domain).map_err(|source| BridgeError::Name {
            what: "domain",
            name: self.domain.clone(),
            source,
        })?;
        for list in [&mut self.exports, &mut self.imports] {
            for t in list.iter() {
                validate_topic(t).map_err(|source| BridgeError::Name {
                    what: "topic",
                    name: t.clone(),
                    source,
                })?;
            }
            for t in list.iter() {
                if let Some(part) = ringcast::service::parse_topic(t) {
                    let service = match part {
                        ringcast::service::ServiceTopic::Anchor(s)
                        | ringcast::service::ServiceTopic::Requests(s)
                        | ringcast::service::ServiceTopic::Responses(s) => s,
                        _ => t.as_str(),
                    };
                    return Err(BridgeError::ServiceTopic {
                        topic: t.clone(),
                        service: service.to_owned(),
                    });
                }
            }
            let mut seen = std::collections::HashSet::new();
            list.retain(|t| seen.insert(t.clone()));
        }
        for list in [&mut self.service_exports, &mut self.service_imports] {
            for s in list.iter() {
                ringcast::service::validate_service(s).map_err(|source| BridgeError::Name {
                    what: "service",
                    name: s.clone(),
                    source,
                })?;
            }
            let mut seen = std::collections::HashSet::new();
            list.retain(|t| seen.insert(t.clone()));
        }
        if self.call_timeout.is_zero() {
            return Err(BridgeError::Setting {
                what: "call timeout",
                reason: "0 ms would fail every call: give at least 1".to_owned(),
            });
        }
        if self.import_mode & !0o666 != 0 || self.import_mode & 0o600 != 0o600 {
            return Err(BridgeError::Setting {
                what: "mode",
                reason: format!(
                    "{:o} must include 600 and have read and write bits only, such as 600 or 640",
                    self.import_mode
                ),
            });
        }
        for e in self.listen.iter().chain(&self.connect) {
            check_endpoint(e, self.tls.is_some())?;
        }
        if self.max_batch_bytes > MAX_BATCH_BYTES {
            return Err(BridgeError::Limit {
                what: "max batch bytes",
                value: u64::from(self.max_batch_bytes),
                max: u64::from(MAX_BATCH_BYTES),
            });
        }
        if let Some(t) = &self.tls {
            for (what, path) in [
                ("root CA", &t.root_ca),
                ("certificate", &t.certificate),
                ("private key", &t.private_key),
            ] {
                std::fs::File::open(path).map_err(|e| BridgeError::Tls {
                    what,
                    path: path.clone(),
                    source: e,
                })?;
            }
        }
        Ok(())
    }

    /// The Zenoh configuration: peer mode, the given endpoints, multicast scouting only
    /// when asked.
    pub(crate) fn zenoh(&self) -> Result<zenoh::Config, BridgeError> {
        let mut c = zenoh::Config::default();
        let list = |v: &[String]| {
            let quoted: Vec<String> = v.iter().map(|e| format!("{e:?}")).collect();
            format!("[{}]", quoted.join(","))
        };
        let mut set = |key: &str, value: String| {
            c.insert_json5(key, &value).map_err(|e| BridgeError::Zenoh {
                op: "configure",
                message: format!("{key} = {value}: {e}"),
            })
        };
        set("mode", "\"peer\"".into())?;
        // Only what was asked: with no `--listen`, no listener at all (Zenoh's peer default
        // listens on plain TCP on every interface, which would let a peer without a
        // certificate in past a bridge that dials out over TLS).
        set("listen/endpoints", list(&self.listen))?;
        set("connect/endpoints", list(&self.connect))?;
        // Dial a lost or absent endpoint again after 0.1 s, doubling up to 1 s (Zenoh's
        // default starts at 1 s and grows to 4 s): a link back after a drop is found within
        // a second, inside the 2 s an export holds a `Block` source for its importer.
        set(
            "connect/retry",
            "{period_init_ms: 100, period_max_ms: 1000, period_increase_factor: 2}".into(),
        )?;
        set(
            "scouting/multicast/enabled",
            self.multicast_scouting.to_string(),
        )?;
        if let Some(t) = &self.tls {
            let path = |p: &std::path::Path| format!("{:?}", p.display().to_string());
            set("transport/link/tls/root_ca_certificate", path(&t.root_ca))?;
            set(
                "transport/link/tls/listen_certificate",
                path(&t.certificate),
            )?;
            set(
                "transport/link/tls/listen_private_key",
                path(&t.private_key),
            )?;
            set(
                "transport/link/tls/connect_certificate",
                path(&t.certificate),
            )?;
            set(
                "transport/link/tls/connect_private_key",
                path(&t.private_key),
            )?;
            set("transport/link/tls/enable_mtls", "true".into())?;
            set("transport/link/tls/verify_name_on_connect", "true".into())?;
        }
        Ok(c)
    }
}

/// An endpoint this build can use: Zenoh's syntax, `tcp/`, or `tls/` when TLS files are
/// given (and the `tls` feature is built in).
fn check_endpoint(e: &str, tls: bool) -> Result<(), BridgeError> {
    let bad = |reason: String| BridgeError::Endpoint {
        endpoint: e.to_owned(),
        reason,
    };
    let ep = zenoh::config::EndPoint::from_str(e).map_err(|err| bad(err.to_string()))?;
    let proto = ep.protocol();
    match proto.as_str() {
        "tcp" => {}
        "tls" if !cfg!(feature = "tls") => {
            return Err(bad("TLS is not built in (build with the `tls` feature)".into()))
        }
        "tls" if !tls => {
            return Err(bad(
                "a tls/ endpoint needs the CA, certificate and key (--tls-ca, --tls-cert, --tls-key)"
                    .into(),
            ))
        }
        "tls" => {}
        other => {
            return Err(bad(format!(
                "protocol {other:?} is not built in (this bridge speaks tcp/HOST:PORT and tls/HOST:PORT)"
            )))
        }
    }
    let addr = ep.address();
    let (host, port) = addr
        .as_str()
        .rsplit_once(':')
        .ok_or_else(|| bad("no :PORT".into()))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad(
            "expected tcp/HOST:PORT or tls/HOST:PORT with a port in 0..=65535".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_and_endpoints_are_typed_errors() {
        let ok = || BridgeConfig::default().listen("tcp/127.0.0.1:7447");
        assert!(ok().validate().is_ok());
        assert!(ok().connect("tcp/[::1]:7447").validate().is_ok());
        for bad in [
            "udp/127.0.0.1:7447",
            "tcp/127.0.0.1",
            "tcp/127.0.0.1:99999",
            "127.0.0.1:7447",
            "",
            "tcp/:7447",
        ] {
            assert!(
                matches!(
                    ok().connect(bad).validate(),
                    Err(BridgeError::Endpoint { .. })
                ),
                "{bad:?}"
            );
        }
        // tls/ needs the TLS files, and they must be readable.
        assert!(matches!(
            ok().connect("tls/127.0.0.1:7447").validate(),
            Err(BridgeError::Endpoint { .. })
        ));
        let missing = TlsFiles {
            root_ca: "/nonexistent/ca.pem".into(),
            certificate: "/nonexistent/cert.pem".into(),
            private_key: "/nonexistent/key.pem".into(),
        };
        assert!(matches!(
            ok().connect("tls/127.0.0.1:7447").tls(missing).validate(),
            Err(BridgeError::Tls {
                what: "root CA",
                ..
            })
        ));
        assert!(matches!(
            ok().export("../x").validate(),
            Err(BridgeError::Name { what: "topic", .. })
        ));
        assert!(matches!(
            ok().max_batch_bytes(MAX_BATCH_BYTES + 1).validate(),
            Err(BridgeError::Limit { .. })
        ));
        assert!(ok().max_batch_bytes(MAX_BATCH_BYTES).validate().is_ok());
        assert!(ok().max_batch_bytes(0).validate().is_ok());
        for internal in [
            "clock..service",
            "clock..requests",
            "clock..responses.00000000000000ff",
        ] {
            assert!(
                matches!(
                    ok().export(internal).validate(),
                    Err(BridgeError::ServiceTopic { ref service, .. }) if service == "clock"
                ),
                "{internal}"
            );
            assert!(matches!(
                ok().import(internal).validate(),
                Err(BridgeError::ServiceTopic { .. })
            ));
        }
        assert!(ok().export_service("clock").validate().is_ok());
        assert!(matches!(
            ok().import_service("../x").validate(),
            Err(BridgeError::Name {
                what: "service",
                ..
            })
        ));
        assert!(matches!(
            ok().domain("a/b").validate(),
            Err(BridgeError::Name { what: "domain", .. })
        ));
        let mut twice = ok().export("a").export("a").import("b").import("b");
        twice.validate().unwrap();
        assert_eq!(
            (twice.exports(), twice.imports()),
            (&["a".to_owned()][..], &["b".to_owned()][..])
        );
    }
}
