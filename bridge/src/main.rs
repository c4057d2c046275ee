//! `ringcast-bridge`: carries ringcast topics between machines over Zenoh.
//!
//! Exit codes as for `ringcast`: 0 after SIGINT/SIGTERM, 1 a runtime error (one line),
//! 2 bad usage (clap's message, or a bad name or endpoint). Never a panic (101).
//! Log lines go to standard error; `RUST_LOG` sets their level (default `info` for the
//! bridge, `warn` for Zenoh).

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use ringcast_bridge::{Bridge, BridgeConfig, BridgeError};

/// Carries ringcast topics and services to and from other machines over Zenoh (peer to
/// peer, TCP).
///
/// Example, two hosts:
///   host-a$ ringcast-bridge --listen tcp/0.0.0.0:7447 --export imu
///   host-b$ ringcast-bridge --connect tcp/host-a:7447 --import imu
#[derive(Parser, Debug)]
#[command(name = "ringcast-bridge", version, about, long_about = None)]
struct Args {
    /// Shared-memory prefix of the local topics.
    #[arg(long, env = "RINGCAST_PREFIX", default_value = ringcast::name::DEFAULT_PREFIX)]
    prefix: String,
    /// Bridges see each other's topics only within one domain.
    #[arg(long, default_value = ringcast_bridge::DEFAULT_DOMAIN)]
    domain: String,
    /// Endpoint to listen on, like tcp/0.0.0.0:7447 (repeatable).
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// Endpoint of another bridge to connect to (repeatable; retried until it answers).
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// Local topic to carry to the other bridges; waits for it to appear (repeatable).
    #[arg(long, value_name = "TOPIC")]
    export: Vec<String>,
    /// Remote topic to re-publish here once it is seen (repeatable).
    #[arg(long, value_name = "TOPIC")]
    import: Vec<String>,
    /// Local service (request and response) to offer to the other bridges; waits for its
    /// server to appear (repeatable).
    #[arg(long, value_name = "SERVICE")]
    export_service: Vec<String>,
    /// Remote service to serve here once it is seen, unless a local server has the name
    /// (repeatable).
    #[arg(long, value_name = "SERVICE")]
    import_service: Vec<String>,
    /// How long a call of an imported service may take, in milliseconds, from the
    /// request to the end of its responses; then the call fails (`CallError::Failed`).
    #[arg(long, value_name = "MS", default_value_t = ringcast_bridge::DEFAULT_CALL_TIMEOUT.as_millis() as u64)]
    call_timeout_ms: u64,
    /// Find other bridges by UDP multicast scouting too.
    #[arg(long)]
    multicast_scouting: bool,
    /// Largest ring, in bytes, an import agrees to create for a remote topic.
    #[arg(long, value_name = "BYTES", default_value_t = ringcast_bridge::DEFAULT_MAX_IMPORT_BYTES)]
    max_import_bytes: u64,
    /// Permission bits (octal) of the topics an import creates: 600 lets only this
    /// bridge's user attach; e.g. 640 with a shared group lets that group's users (who
    /// must also trust this user: `--trust-user`).
    #[arg(long, value_name = "OCTAL", default_value = "600", value_parser = octal_mode)]
    mode: u32,
    /// Most message bytes an export packs into one Zenoh put when several messages wait
    /// (a message alone goes at once; 0: every message alone). An import's ring holds
    /// one such batch of full-size messages: more slots than the source's for small
    /// messages (at most 8 times as many), within --max-import-bytes.
    #[arg(long, value_name = "BYTES", default_value_t = ringcast_bridge::DEFAULT_MAX_BATCH_BYTES)]
    max_batch_bytes: u32,
    /// PEM file of the CA that signs every bridge's certificate: with --tls-cert and
    /// --tls-key, tls/HOST:PORT endpoints use mutual TLS (only holders of a certificate
    /// from this CA can connect, either way).
    #[arg(long, value_name = "FILE", requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<std::path::PathBuf>,
    /// PEM file of this bridge's certificate (chain).
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM file of this bridge's private key.
    #[arg(long, value_name = "FILE", requires_all = ["tls_ca", "tls_cert"])]
    tls_key: Option<std::path::PathBuf>,
}

fn octal_mode(s: &str) -> Result<u32, String> {
    match u32::from_str_radix(s.trim_start_matches("0o"), 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "{s:?} is not a permission mode: give octal digits, like 600 or 640"
        )),
    }
}

/// Blocks SIGINT and SIGTERM in this thread, so that every thread started after it
/// (the bridge's, Zenoh's) inherits the mask and the signals wait for [`SigSet::wait`].
fn block_stop_signals() -> Result<SigSet, BridgeError> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    // Failing here is failing to set up the threads' signal mask.
    set.thread_block()
        .map_err(|e| BridgeError::Thread(std::io::Error::from(e)))?;
    Ok(set)
}

fn run(a: Args) -> Result<(), BridgeError> {
    let mut cfg = BridgeConfig::default()
        .prefix(a.prefix)
        .domain(a.domain)
        .multicast_scouting(a.multicast_scouting)
        .max_import_bytes(a.max_import_bytes)
        .import_mode(a.mode)
        .max_batch_bytes(a.max_batch_bytes)
        .call_timeout(std::time::Duration::from_millis(a.call_timeout_ms));
    if let (Some(root_ca), Some(certificate), Some(private_key)) = (a.tls_ca, a.tls_cert, a.tls_key)
    {
        cfg = cfg.tls(ringcast_bridge::TlsFiles {
            root_ca,
            certificate,
            private_key,
        });
    }
    for e in a.listen {
        cfg = cfg.listen(e);
    }
    for e in a.connect {
        cfg = cfg.connect(e);
    }
    for t in a.export {
        cfg = cfg.export(t);
    }
    for t in a.import {
        cfg = cfg.import(t);
    }
    for s in a.export_service {
        cfg = cfg.export_service(s);
    }
    for s in a.import_service {
        cfg = cfg.import_service(s);
    }
    let signals = block_stop_signals()?;
    raise_descriptor_limit();
    let bridge = Bridge::start(cfg)?;
    tracing::info!(zid = bridge.zid(), "bridge running");
    match signals.wait() {
        Ok(sig) => tracing::info!(signal = ?sig, "stopping"),
        Err(e) => tracing::warn!(error = %e, "sigwait failed; stopping"),
    }
    let reports = bridge.stop();
    for t in reports {
        let _ = writeln!(
            std::io::stderr(),
            "ringcast-bridge: {:?} {}: {} messages, {} bytes, {} lost, {} refused, {} puts",
            t.direction,
            t.topic,
            t.messages,
            t.bytes,
            t.lost,
            t.refused,
            t.puts
        );
        if !t.lost_by_lane.is_empty() {
            let lanes: Vec<String> = t.lost_by_lane.iter().map(u64::to_string).collect();
            let _ = writeln!(
                std::io::stderr(),
                "ringcast-bridge: {:?} {} lost by lane: {}",
                t.direction,
                t.topic,
                lanes.join(" ")
            );
        }
    }
    Ok(())
}

/// Lifts the soft limit on open descriptors to the hard one: an exported topic holds one
/// (its source's segment) while someone remote listens, an imported one one per local
/// publisher, and a bridge of a thousand topics would otherwise meet the common soft
/// limit of 1024. Where it cannot be lifted the bridge runs with what it has (a topic
/// that cannot open its segment is reported and tried again).
fn raise_descriptor_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!(soft, hard, error = %e, "cannot raise the descriptor limit");
            }
        }
    }
}

/// Log lines to standard error (standard output stays free), coloured only on a terminal.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,ringcast_bridge=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn main() -> ExitCode {
    // Usage errors exit 2 and `--help` / `--version` exit 0, both through clap.
    let args = Args::parse();
    init_logging();
    match std::panic::catch_unwind(|| run(args)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            let _ = writeln!(std::io::stderr(), "ringcast-bridge: {e}");
            let usage = matches!(
                e,
                BridgeError::Name { .. }
                    | BridgeError::Endpoint { .. }
                    | BridgeError::Limit { .. }
                    | BridgeError::Setting { .. }
                    | BridgeError::ServiceTopic { .. }
            );
            ExitCode::from(if usage { 2 } else { 1 })
        }
        Err(_) => {
            let _ = writeln!(
                std::io::stderr(),
                "ringcast-bridge: internal error (a bug: please report it)"
            );
            ExitCode::from(1)
        }
    }
}
