//! The suite: which measurements run, running each one, and the child's side.
//!
//! [`plan`] lists every (scenario, transport, payload) the transports support,
//! filtered by `--filter`; [`run`] measures them in order, printing one
//! progress line per measurement on stderr. A failing measurement is skipped
//! with its reason; the others go on.

use std::time::{Duration, Instant};

use crate::error::{BenchError, Result};
use crate::harness::{self, Child, Cpus};
use crate::report::{self, Measured};
use crate::scenario::throughput::{self, MEMCPY};
use crate::scenario::{Scenario, Timing};
use crate::transport::{self, Link, LinkSpec, Transport};

/// Payloads of the full suite, in bytes.
pub const FULL_PAYLOADS: &[usize] = &[8, 64, 1024, 64 * 1024, 1024 * 1024];

/// Payloads of `--quick` (64 B is the latency CDF's payload).
pub const QUICK_PAYLOADS: &[usize] = &[64, 64 * 1024];

/// How long a child may take to start and attach.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a child may take to exit after its last message.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Extra time past its phases after which a child is killed by the watchdog.
const WATCHDOG_GRACE: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Payload sizes in bytes.
    pub payloads: Vec<usize>,
    /// Phase lengths.
    pub timing: Timing,
    /// Only measurements whose label contains this substring.
    pub filter: Option<String>,
}

/// What a measurement runs on.
#[derive(Clone, Copy)]
pub enum Target {
    /// Two processes connected by a transport.
    Link(&'static dyn Transport),
    /// The in-process `memcpy` reference (throughput only).
    Memcpy,
}

/// One planned measurement.
#[derive(Clone, Copy)]
pub struct Measurement {
    /// The scenario.
    pub scenario: Scenario,
    /// The transport or reference.
    pub target: Target,
    /// Message size in bytes.
    pub payload: usize,
}

impl Measurement {
    /// The transport name of the row.
    pub fn transport(&self) -> &'static str {
        match self.target {
            Target::Link(t) => t.name(),
            Target::Memcpy => MEMCPY,
        }
    }

    /// `scenario/transport/payload`, what `--filter` matches.
    pub fn label(&self) -> String {
        format!(
            "{}/{}/{}",
            self.scenario.name(),
            self.transport(),
            self.payload
        )
    }

    /// Whether the transport moves the same bytes whatever the payload.
    fn payload_independent(&self) -> bool {
        matches!(self.target, Target::Link(t) if t.fixed_payload().is_some())
    }
}

/// Every measurement of the configuration, in run order.
pub fn plan(cfg: &Config) -> Vec<Measurement> {
    let mut out = Vec::new();
    for scenario in Scenario::ALL {
        for &t in transport::all() {
            if !t.supports(scenario) {
                continue;
            }
            let payloads = match t.fixed_payload() {
                Some(n) => vec![n],
                None => cfg.payloads.clone(),
            };
            for payload in payloads {
                out.push(Measurement {
                    scenario,
                    target: Target::Link(t),
                    payload,
                });
            }
        }
        if scenario == Scenario::Throughput {
            for &payload in &cfg.payloads {
                out.push(Measurement {
                    scenario,
                    target: Target::Memcpy,
                    payload,
                });
            }
        }
    }
    if let Some(f) = &cfg.filter {
        out.retain(|m| m.label().contains(f.as_str()));
    }
    out
}

/// Runs every measurement of `plan`, reporting progress on stderr.
pub fn run(plan: &[Measurement], timing: &Timing, cpus: Cpus) -> Vec<Measured> {
    let mut results = Vec::with_capacity(plan.len());
    for (i, m) in plan.iter().enumerate() {
        eprint!(
            "[{:>2}/{}] {:<10} {:<12} {:>7} ... ",
            i + 1,
            plan.len(),
            m.scenario.name(),
            m.transport(),
            report::fmt_bytes(m.payload)
        );
        let started = Instant::now();
        match measure(m, timing, cpus) {
            Ok(r) => {
                eprintln!(
                    "{} ({:.1} s)",
                    report::summary(&r.row),
                    started.elapsed().as_secs_f64()
                );
                results.push(r);
            }
            Err(e) => eprintln!("skipped: {e}"),
        }
    }
    results
}

fn measure(m: &Measurement, timing: &Timing, cpus: Cpus) -> Result<Measured> {
    let mut measured = match m.target {
        Target::Memcpy => {
            let rate = throughput::memcpy(m.payload, timing);
            Measured::throughput(m.scenario, MEMCPY, m.payload, &rate)
        }
        Target::Link(t) => measure_link(t, m, timing, cpus)?,
    };
    measured.payload_independent = m.payload_independent();
    Ok(measured)
}

/// Opens the link, starts the child on the other CPU, runs the parent's role.
fn measure_link(
    t: &dyn Transport,
    m: &Measurement,
    timing: &Timing,
    cpus: Cpus,
) -> Result<Measured> {
    if t.spins() && !cpus.distinct() {
        return Err(BenchError::Unsupported(
            "a spinning transport needs two CPUs; only one is allowed".into(),
        ));
    }
    let spec = LinkSpec {
        scenario: m.scenario,
        payload: m.payload,
    };
    let Link {
        mut local,
        child_fds,
        child_args,
    } = t.open(&spec)?;
    let mut args = vec![
        m.scenario.name().to_owned(),
        t.name().to_owned(),
        m.payload.to_string(),
        cpus.child.to_string(),
        timing.warmup.as_millis().to_string(),
        timing.measure.as_millis().to_string(),
    ];
    args.extend(child_args);
    let deadline = timing.warmup + timing.measure + WATCHDOG_GRACE;
    let mut child = Child::spawn(&args, &child_fds, deadline)?;
    // Only the child holds its end from now on, so its exit is seen as EOF.
    drop(child_fds);

    let outcome = child
        .wait_ready(READY_TIMEOUT)
        .and_then(|()| match m.scenario {
            Scenario::PingPong => local
                .ping(m.payload, timing)
                .map(|h| Measured::latency(m.scenario, t.name(), m.payload, &h)),
            Scenario::Throughput => local
                .consume(m.payload)
                .map(|r| Measured::throughput(m.scenario, t.name(), m.payload, &r)),
        });
    // Close the parent's end before waiting: a child blocked on it gets EOF.
    drop(local);
    match outcome {
        Ok(measured) => child.finish(EXIT_TIMEOUT).map(|()| measured),
        Err(e) => Err(child.fail(e)),
    }
}

/// Entry point of the `__child` subcommand: `scenario transport payload cpu
/// warmup_ms measure_ms [transport arguments...]`.
pub fn child_main(args: &[String]) -> Result<()> {
    let bad = |what: &str| BenchError::Protocol(format!("child arguments: bad {what}"));
    let [scenario, name, payload, cpu, warmup, measure, rest @ ..] = args else {
        return Err(bad("count"));
    };
    let scenario = Scenario::parse(scenario).ok_or_else(|| bad("scenario"))?;
    let t = transport::by_name(name).ok_or_else(|| bad("transport"))?;
    let payload: usize = payload.parse().map_err(|_| bad("payload"))?;
    let cpu: usize = cpu.parse().map_err(|_| bad("cpu"))?;
    let ms = |s: &String| {
        s.parse()
            .map(Duration::from_millis)
            .map_err(|_| bad("duration"))
    };
    let timing = Timing {
        warmup: ms(warmup)?,
        measure: ms(measure)?,
    };

    harness::pin_to(cpu)?;
    let mut end = t.attach(&LinkSpec { scenario, payload }, rest)?;
    harness::report_ready()?;
    match scenario {
        Scenario::PingPong => end.pong(payload),
        Scenario::Throughput => end.produce(payload, &timing),
    }
}
