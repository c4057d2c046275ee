//! `--bridge-scale`: many topics through one pair of `ringcast-bridge` processes on
//! loopback (issue 28 item 2).
//!
//! Each trial creates N `Block` source topics (8 slots of 64 bytes) under one shm prefix,
//! starts an exporting bridge (listening) and an importing bridge (connecting) with every
//! topic named on their command lines, attaches a subscriber to every imported topic and
//! sends one message on each source as soon as the exporting bridge has attached to it.
//! It reports:
//! - `flowing`: from the bridges' start until every topic's message has arrived;
//! - idle CPU of each bridge over [`IDLE`] once everything flowed (utime + stime from
//!   `/proc/PID/stat`, as a share of one core);
//! - each bridge's threads and resident memory, and the memory per topic: the difference
//!   between the N-topic and the [`SMALL`]-topic trials of the same round, divided by the
//!   difference in topics;
//! - the rate (messages a second, one on each topic then each read, in rounds) of every
//!   topic but the first, with all read, and while the first topic's importing
//!   subscriber is stopped and its source keeps sending (`Block`): the ratio is what one
//!   stuck importer costs the others (issue 28: within 10 %).
//!
//! The trials alternate between [`SMALL`] and N topics (`--bridge-scale N`, 1000 when N
//! is not given) in each round, so a machine that changes speed moves both; the report gives the median over
//! rounds. The bridges are the release binary next to this one.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ringcast::{Overflow, Publisher, PublisherConfig, Subscriber, SubscriberOptions};

use crate::error::{BenchError, Result};

/// Topics of the small trial (the memory baseline).
pub const SMALL: usize = 10;
/// Rounds of a run unless `--rounds` says otherwise.
pub const ROUNDS: usize = 3;
/// How long the idle CPU is measured.
const IDLE: Duration = Duration::from_secs(5);
/// Settling time after everything flowed, before the idle measurement.
const SETTLE: Duration = Duration::from_secs(1);
/// Rounds (one message on each topic, then each read) in one rate phase.
const RATE_ROUNDS: usize = 20;
/// Rate phases on each side of the stuck one.
const RATE_PHASES: usize = 3;
/// Longest any one step may take before the trial fails.
const STEP: Duration = Duration::from_secs(60);

/// One trial's figures.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Trial {
    pub topics: usize,
    pub flowing_ms: f64,
    pub idle_cpu_export_pct: f64,
    pub idle_cpu_import_pct: f64,
    pub threads_export: usize,
    pub threads_import: usize,
    pub rss_export_kib: u64,
    pub rss_import_kib: u64,
    /// Messages a second over every topic but the first, all read (before and after
    /// the stuck phase, the median of [`RATE_PHASES`] each), and while the first topic's
    /// importing subscriber is stopped with its source sending (`Block`): the rate the
    /// others keep.
    pub rate_all_read: f64,
    pub rate_one_stuck: f64,
}

/// Runs `rounds` rounds of a small and a large trial; prints the report, returns the
/// trials.
pub fn run(topics: usize, rounds: usize) -> Result<Vec<Trial>> {
    let bin = bridge_binary()?;
    let mut trials = Vec::new();
    for round in 0..rounds {
        // Alternate which size goes first.
        let sizes = if round % 2 == 0 {
            [SMALL, topics]
        } else {
            [topics, SMALL]
        };
        for n in sizes {
            let t = trial(&bin, n, round)?;
            eprintln!(
                "bridge-scale round {round}: {n} topics flowing in {:.0} ms; idle CPU export {:.2} % import {:.2} %; threads {} / {}; RSS {} / {} KiB",
                t.flowing_ms,
                t.idle_cpu_export_pct,
                t.idle_cpu_import_pct,
                t.threads_export,
                t.threads_import,
                t.rss_export_kib,
                t.rss_import_kib
            );
            trials.push(t);
        }
    }
    report(&trials, topics);
    Ok(trials)
}

fn report(trials: &[Trial], topics: usize) {
    let large: Vec<&Trial> = trials.iter().filter(|t| t.topics == topics).collect();
    let small: Vec<&Trial> = trials.iter().filter(|t| t.topics == SMALL).collect();
    let med = |f: &dyn Fn(&Trial) -> f64| median(large.iter().map(|t| f(t)).collect());
    let per_topic = |f: &dyn Fn(&Trial) -> u64| {
        let v = large
            .iter()
            .zip(&small)
            .map(|(l, s)| (f(l) as f64 - f(s) as f64) / (l.topics - s.topics) as f64)
            .collect();
        median(v)
    };
    println!(
        "bridge-scale {topics} topics (median of {} rounds): flowing {:.0} ms; idle CPU export {:.2} %, import {:.2} % of a core; threads export {:.0}, import {:.0}; memory per topic export {:.1} KiB, import {:.1} KiB; rate of the others with one stuck {:.3}x ({:.0} msgs/s all read)",
        large.len(),
        med(&|t| t.flowing_ms),
        med(&|t| t.idle_cpu_export_pct),
        med(&|t| t.idle_cpu_import_pct),
        med(&|t| t.threads_export as f64),
        med(&|t| t.threads_import as f64),
        per_topic(&|t| t.rss_export_kib),
        per_topic(&|t| t.rss_import_kib),
        med(&|t| t.rate_one_stuck / t.rate_all_read),
        med(&|t| t.rate_all_read),
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The `ringcast-bridge` binary built with this one.
fn bridge_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| BenchError::sys("current_exe", e))?;
    let bin = exe.with_file_name("ringcast-bridge");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(BenchError::Protocol(format!(
            "{} is missing: build it (cargo build --release -p ringcast-bridge)",
            bin.display()
        )))
    }
}

/// A bridge process, interrupted and reaped on drop.
struct BridgeProc(std::process::Child);

impl BridgeProc {
    fn start(bin: &PathBuf, args: &[String]) -> Result<BridgeProc> {
        let child = Command::new(bin)
            .args(args)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| BenchError::sys("spawn ringcast-bridge", e))?;
        Ok(BridgeProc(child))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for BridgeProc {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the pid is our unreaped child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the trial's segments on every path.
struct Segments {
    prefixes: [String; 2],
    topics: Vec<String>,
}

impl Drop for Segments {
    fn drop(&mut self) {
        for p in &self.prefixes {
            for t in &self.topics {
                let _ = ringcast::inspect::remove(p, t);
            }
        }
    }
}

fn trial(bin: &PathBuf, n: usize, round: usize) -> Result<Trial> {
    let base = format!("rcscale{}r{round}n{n}", std::process::id());
    let (a, b) = (format!("{base}a"), format!("{base}b"));
    let topics: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let _segments = Segments {
        prefixes: [a.clone(), b.clone()],
        topics: topics.clone(),
    };
    let mut sources = Vec::with_capacity(n);
    for t in &topics {
        let cfg = PublisherConfig::default()
            .prefix(a.as_str())
            .overflow(Overflow::Block)
            .slots(8)
            .slot_size(64);
        sources.push(Publisher::create(t, cfg).map_err(|e| BenchError::Protocol(e.to_string()))?);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| BenchError::sys("bind 127.0.0.1:0", e))?
        .port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let args = |prefix: &str, link: &str, role: &str| -> Vec<String> {
        let mut v: Vec<String> = ["--prefix", prefix, "--domain", &base, link, &endpoint]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for t in &topics {
            v.push(role.to_owned());
            v.push(t.clone());
        }
        v
    };
    let start = Instant::now();
    let export = BridgeProc::start(bin, &args(&a, "--listen", "--export"))?;
    let import = BridgeProc::start(bin, &args(&b, "--connect", "--import"))?;
    let mut subs = Vec::with_capacity(n);
    for t in &topics {
        let opts = SubscriberOptions::default().prefix(b.as_str());
        subs.push(
            Subscriber::attach_wait(t, opts, STEP)
                .map_err(|e| BenchError::Protocol(format!("import {t}: {e}")))?,
        );
    }
    for (i, p) in sources.iter_mut().enumerate() {
        p.wait_for_subscribers(1, STEP)
            .map_err(|e| BenchError::Protocol(format!("export t{i}: {e}")))?;
        p.send(&(i as u64).to_le_bytes())
            .map_err(|e| BenchError::Protocol(e.to_string()))?;
    }
    for (i, s) in subs.iter_mut().enumerate() {
        let m = s
            .recv_timeout(STEP)
            .map_err(|e| BenchError::Protocol(format!("t{i}: {e}")))?;
        if *m != (i as u64).to_le_bytes() {
            return Err(BenchError::Protocol(format!("t{i}: wrong message")));
        }
    }
    let flowing = start.elapsed();
    let (rate_all_read, rate_one_stuck) = rates(&mut sources, &mut subs)?;
    std::thread::sleep(SETTLE);
    let (e0, i0) = (cpu_ticks(export.pid())?, cpu_ticks(import.pid())?);
    let t0 = Instant::now();
    std::thread::sleep(IDLE);
    let (e1, i1) = (cpu_ticks(export.pid())?, cpu_ticks(import.pid())?);
    let secs = t0.elapsed().as_secs_f64();
    // SAFETY: sysconf has no memory preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let pct = |d: u64| d as f64 / hz / secs * 100.0;
    Ok(Trial {
        topics: n,
        flowing_ms: flowing.as_secs_f64() * 1e3,
        idle_cpu_export_pct: pct(e1 - e0),
        idle_cpu_import_pct: pct(i1 - i0),
        threads_export: threads(export.pid())?,
        threads_import: threads(import.pid())?,
        rss_export_kib: rss_kib(export.pid())?,
        rss_import_kib: rss_kib(import.pid())?,
        rate_all_read,
        rate_one_stuck,
    })
}

/// Messages a second over topics `1..`: with every topic read, then with topic 0's
/// subscriber stopped while a thread sends on its source (held back once the rings,
/// the importer's backlog and its credit are full), then read again.
fn rates(sources: &mut Vec<Publisher>, subs: &mut [Subscriber]) -> Result<(f64, f64)> {
    let mut before = Vec::new();
    for _ in 0..RATE_PHASES {
        before.push(rate(&mut sources[1..], &mut subs[1..])?);
    }
    let mut first = sources.remove(0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let stuck = std::thread::spawn(move || {
        let mut sent = 0u64;
        // Relaxed: a stop flag; the join orders what follows.
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(mut loan) = first.loan_timeout(Duration::from_millis(20)) {
                loan.write_at(0, &sent.to_le_bytes());
                loan.commit(8);
                sent += 1;
            }
        }
        (first, sent)
    });
    // Let it fill everything between the source and the stopped subscriber.
    std::thread::sleep(Duration::from_millis(500));
    let mut during = Vec::new();
    for _ in 0..RATE_PHASES {
        during.push(rate(&mut sources[..], &mut subs[1..])?);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (first, sent) = stuck
        .join()
        .map_err(|_| BenchError::Protocol("the stuck topic's sender panicked".into()))?;
    for i in 0..sent {
        let m = subs[0]
            .recv_timeout(STEP)
            .map_err(|e| BenchError::Protocol(format!("t0 after the stuck phase: {e}")))?;
        if *m != i.to_le_bytes() {
            return Err(BenchError::Protocol(format!("t0: message {i} is wrong")));
        }
    }
    sources.insert(0, first);
    for _ in 0..RATE_PHASES {
        before.push(rate(&mut sources[1..], &mut subs[1..])?);
    }
    Ok((median(before), median(during)))
}

/// Messages a second over `sources` and their `subs`: [`RATE_ROUNDS`] rounds of one
/// message on each, then each read.
fn rate(sources: &mut [Publisher], subs: &mut [Subscriber]) -> Result<f64> {
    let t = Instant::now();
    for round in 0..RATE_ROUNDS as u64 {
        for p in sources.iter_mut() {
            p.send(&round.to_le_bytes())
                .map_err(|e| BenchError::Protocol(e.to_string()))?;
        }
        for s in subs.iter_mut() {
            s.recv_timeout(STEP)
                .map_err(|e| BenchError::Protocol(format!("rate phase: {e}")))?;
        }
    }
    Ok((RATE_ROUNDS * sources.len()) as f64 / t.elapsed().as_secs_f64())
}

fn proc_file(pid: u32, name: &str) -> Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{name}"))
        .map_err(|e| BenchError::sys("read /proc of a bridge", e))
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = proc_file(pid, "stat")?;
    // The fields after the command name (which may hold spaces) start after its ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
    match (field(11), field(12)) {
        (Some(u), Some(s)) => Ok(u + s),
        _ => Err(BenchError::Protocol(format!("unreadable /proc/{pid}/stat"))),
    }
}

fn status_field(pid: u32, key: &str) -> Result<u64> {
    let status = proc_file(pid, "status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| BenchError::Protocol(format!("no {key} in /proc/{pid}/status")))
}

fn rss_kib(pid: u32) -> Result<u64> {
    status_field(pid, "VmRSS:")
}

fn threads(pid: u32) -> Result<usize> {
    Ok(status_field(pid, "Threads:")? as usize)
}
