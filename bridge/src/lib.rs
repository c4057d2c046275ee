//! `ringcast-bridge`: carries ringcast topics between machines over Zenoh.
//!
//! A bridge *exports* local topics (it attaches to each as one more subscriber and puts
//! every message under `ringcast/<domain>/<topic>`, stamped with its sequence number,
//! export time and the source's incarnation) and *imports* remote ones (it becomes the
//! local publisher of a topic with the source's geometry, overflow policy and type
//! fingerprint, so typed subscribers keep their checks; of a shared topic, one local
//! publisher per remote one, each on a lane of its own). Topics are announced by Zenoh
//! liveliness tokens whose keys carry their description ([`announce`]); a bridge that
//! dies takes its tokens with it, and its imports elsewhere close.
//!
//! Semantics: `Block` topics travel with Zenoh's blocking congestion control, so a slow
//! importer slows the source (bounded by the source's stall timeout and Zenoh's
//! `wait_before_close`); `Overwrite` topics may drop under congestion, and every loss is
//! counted at the importer from the sequence numbers (the topic's `upstream_lost`, shown by
//! `ringcast list` / `inspect`, and [`TopicReport::lost`]). An imported topic is marked as
//! such in its segment and never exported back; Zenoh locality filters keep a bridge from
//! hearing itself.
//!
//! Services (request and response) travel too, over Zenoh's queryables and `get`
//! ([`BridgeConfig::export_service`], [`BridgeConfig::import_service`]): a remote server
//! appears as a local `ringcast::Server` run by the importing bridge, with the same
//! streams, the same liveness and the same request and response type fingerprints, so
//! typed clients keep their checks (see the `services` module's docs and docs/bridge.md).
//!
//! ```
//! use std::time::Duration;
//! use ringcast::{Overflow, Publisher, PublisherConfig};
//! use ringcast::{RecvTimeoutError, Subscriber, SubscriberOptions};
//! use ringcast_bridge::{Bridge, BridgeConfig};
//! # let id = std::process::id();
//! # let (host_a, host_b) = (format!("rcdoc{id}bridgea"), format!("rcdoc{id}bridgeb"));
//! # let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
//! # let endpoint = format!("tcp/127.0.0.1:{port}");
//! # let config = BridgeConfig::default().domain(format!("rcdoc{id}"));
//! # let wait = Duration::from_secs(30);
//! // Two "machines" in one process: the shm prefixes `host_a` and `host_b`, linked over
//! // loopback. A's bridge listens and exports "imu"; B's connects and imports it.
//! let source = PublisherConfig::default().prefix(&host_a).overflow(Overflow::Block);
//! let mut imu = Publisher::create("imu", source)?;
//! let a = Bridge::start(config.clone().prefix(&host_a).listen(&endpoint).export("imu"))?;
//! let b = Bridge::start(config.prefix(&host_b).connect(&endpoint).import("imu"))?;
//!
//! // The topic appears on B when A's announcement arrives; A's bridge attaches to the
//! // source (as one more subscriber) once B's has subscribed to it over Zenoh.
//! let opts = SubscriberOptions::default().prefix(&host_b);
//! let mut sub = Subscriber::attach_wait("imu", opts, wait)?;
//! imu.wait_for_subscribers(1, wait).expect("A's bridge attaches");
//! imu.send(b"hello")?;
//! assert_eq!(&*sub.recv_timeout(wait)?, b"hello");
//!
//! for t in a.reports().into_iter().chain(b.reports()) {
//!     println!("{} {:?}: {} messages, {} lost", t.topic, t.direction, t.messages, t.lost);
//! }
//! a.stop();
//! b.stop(); // B's import closes: its subscribers get `Disconnected`
//! assert!(matches!(sub.recv_timeout(wait), Err(RecvTimeoutError::Disconnected)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod announce;
mod config;
pub mod credit;
mod export;
mod import;
mod services;
mod stats;
pub mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use zenoh::Wait;

pub use config::{
    BridgeConfig, TlsFiles, DEFAULT_CALL_TIMEOUT, DEFAULT_DOMAIN, DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_IMPORT_BYTES, MAX_BATCH_BYTES,
};
pub use stats::{Direction, TopicReport};

use announce::Keys;
use stats::Counters;

/// Why a bridge could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// A topic, prefix or domain name breaks the naming rules.
    #[error("invalid {what} {name:?}: {source}")]
    Name {
        /// `topic`, `prefix` or `domain`.
        what: &'static str,
        /// The name given.
        name: String,
        /// Which rule it breaks.
        source: ringcast::NameError,
    },
    /// An endpoint is not `tcp/HOST:PORT` (or `tls/HOST:PORT` with TLS files given).
    #[error("bad endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The endpoint given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Zenoh refused (a listen address in use, say).
    #[error("zenoh could not {op}: {message}")]
    Zenoh {
        /// What we asked of it.
        op: &'static str,
        /// Its message.
        message: String,
    },
    /// A setting is not one the bridge can work with (a call timeout of 0, a mode without
    /// the owner's read and write).
    #[error("{what}: {reason}")]
    Setting {
        /// Which setting.
        what: &'static str,
        /// What is wrong with it, and what would do.
        reason: String,
    },
    /// A setting is over its limit.
    #[error("{what} {value} is over the limit of {max}")]
    Limit {
        /// Which setting.
        what: &'static str,
        /// The value given.
        value: u64,
        /// The largest accepted.
        max: u64,
    },
    /// A topic to export or import is one of a service's own topics: services travel
    /// whole (`export_service` / `import_service`), never topic by topic.
    #[error("{topic:?} is a topic of the service {service:?}: carry the service instead (--export-service / --import-service {service})")]
    ServiceTopic {
        /// The topic given.
        topic: String,
        /// The service it belongs to.
        service: String,
    },
    /// A worker thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    /// A TLS file cannot be read.
    #[error("cannot read the TLS {what} {path:?}: {source}")]
    Tls {
        /// Which file: root CA, certificate or private key.
        what: &'static str,
        /// Its path.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What the worker threads share.
pub(crate) struct Shared {
    pub session: zenoh::Session,
    pub zid: String,
    pub keys: Keys,
    pub prefix: String,
    pub host: String,
    pub max_import_bytes: u64,
    pub import_mode: u32,
    pub max_batch_bytes: usize,
    /// An imported service's call bound (the Zenoh query's timeout).
    pub call_timeout: std::time::Duration,
    /// Services this bridge serves locally as imports: never exported back.
    pub imported_services: std::sync::Mutex<std::collections::HashSet<String>>,
    stop: AtomicBool,
    /// Rung when the bridge stops, after `stop` is set: workers that sleep long register
    /// theirs, and look at the flag when woken.
    stop_bells: std::sync::Mutex<Vec<ringcast::Notifier>>,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        // Relaxed: a flag the workers poll; nothing is published through it (they are
        // joined before anything they touched is torn down).
        self.stop.load(Ordering::Relaxed)
    }

    /// Rings `bell` when the bridge stops.
    pub fn ring_on_stop(&self, bell: ringcast::Notifier) {
        self.stop_bells
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(bell);
    }
}

/// A running bridge over one Zenoh session: one thread carries every exported topic, one
/// keeps the clock of every imported topic (their messages are applied in Zenoh's
/// callbacks), and each service has a thread. Dropping it stops it (as
/// [`stop`](Self::stop)).
pub struct Bridge {
    shared: Arc<Shared>,
    counters: Vec<Arc<Counters>>,
    workers: Vec<JoinHandle<()>>,
}

impl Bridge {
    /// Checks `config`, opens the Zenoh session (listening and connecting as asked;
    /// endpoints that do not answer yet are retried in the background) and starts the
    /// exports and imports.
    pub fn start(mut config: BridgeConfig) -> Result<Bridge, BridgeError> {
        config.validate()?;
        let zconfig = config.zenoh()?;
        let session = zenoh::open(zconfig)
            .wait()
            .map_err(|e| BridgeError::Zenoh {
                op: "open a session",
                message: e.to_string(),
            })?;
        let shared = Arc::new(Shared {
            zid: session.zid().to_string(),
            session,
            keys: Keys::new(&config.domain),
            prefix: config.prefix.clone(),
            host: host_name(),
            max_import_bytes: config.max_import_bytes,
            import_mode: config.import_mode,
            max_batch_bytes: config.max_batch_bytes as usize,
            call_timeout: config.call_timeout,
            imported_services: Default::default(),
            stop: AtomicBool::new(false),
            stop_bells: Default::default(),
        });
        let mut bridge = Bridge {
            shared,
            counters: Vec::new(),
            workers: Vec::new(),
        };
        // One thread carries every exported topic, one keeps the clock of every imported
        // one (their messages are applied in Zenoh's callbacks); a service has a thread
        // of its own.
        let mut exports = Vec::new();
        for topic in &config.exports {
            let c = Arc::new(Counters::new(topic, Direction::Export));
            bridge.counters.push(c.clone());
            exports.push((topic.clone(), c));
        }
        let mut imports = Vec::new();
        for topic in &config.imports {
            let c = Arc::new(Counters::new(topic, Direction::Import));
            bridge.counters.push(c.clone());
            imports.push((topic.clone(), c));
        }
        if !exports.is_empty() {
            let shared = bridge.shared.clone();
            bridge.spawn("export".into(), move || export::run(shared, exports))?;
        }
        if !imports.is_empty() {
            let shared = bridge.shared.clone();
            bridge.spawn("import".into(), move || import::run(shared, imports))?;
        }
        let services = (config.service_exports.iter())
            .map(|s| (s, Direction::ServiceExport))
            .chain((config.service_imports.iter()).map(|s| (s, Direction::ServiceImport)));
        for (service, direction) in services {
            let counters = Arc::new(Counters::new(service, direction));
            let (shared, c, s) = (bridge.shared.clone(), counters.clone(), service.clone());
            bridge.counters.push(counters);
            let name = match direction {
                Direction::ServiceExport => format!("sexport {service}"),
                _ => format!("simport {service}"),
            };
            bridge.spawn(name, move || match direction {
                Direction::ServiceExport => services::export(shared, s, c),
                _ => services::import(shared, s, c),
            })?;
        }
        Ok(bridge)
    }

    fn spawn(
        &mut self,
        name: String,
        work: impl FnOnce() + Send + 'static,
    ) -> Result<(), BridgeError> {
        let handle = std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(work)
            .map_err(BridgeError::Thread)?;
        self.workers.push(handle);
        Ok(())
    }

    /// This bridge's Zenoh id.
    pub fn zid(&self) -> &str {
        &self.shared.zid
    }

    /// The counters of every exported and imported topic, then service, in configuration
    /// order.
    pub fn reports(&self) -> Vec<TopicReport> {
        self.counters.iter().map(|c| c.report()).collect()
    }

    /// Stops every worker (imported topics close: their local subscribers get
    /// `Disconnected`), withdraws the announcements and closes the session; returns the
    /// final [`reports`](Self::reports), read once every worker has ended (a count read
    /// before may still miss a message a worker was counting).
    pub fn stop(mut self) -> Vec<TopicReport> {
        self.shutdown();
        self.reports()
    }

    fn shutdown(&mut self) {
        // Relaxed: see `Shared::stopping`; the joins below order everything after it.
        self.shared.stop.store(true, Ordering::Relaxed);
        // The ring is the bell's release: a worker it wakes sees the flag set above.
        for bell in self
            .shared
            .stop_bells
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            bell.notify();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let _ = self.shared.session.close().wait();
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if !self.workers.is_empty() || !self.shared.stopping() {
            self.shutdown();
        }
    }
}

/// This machine's name, for announcements (`ringcast list` on the importing side).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}
