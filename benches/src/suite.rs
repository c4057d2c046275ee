//! The suite: which measurements run, running each one, and the child's side.
//!
//! [`plan`] lists every (scenario, transport, payload, subscribers) the
//! transports support, filtered by `--filter`; [`measure`] and [`measure_raw`] run
//! one (the interleaved rounds of [`crate::rounds`] call them). A failing
//! measurement is skipped with its reason; the others go on.
//!
//! A point-to-point measurement runs one child ([`measure_link`]); a fan-out
//! measurement runs one child per subscriber, all on the child CPU, with the
//! publisher alone on the parent CPU ([`measure_fanout`]).

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::error::{BenchError, Result};
use crate::harness::{self, Child, Cpus};
use crate::report::{self, Measured};
use crate::scenario::fanout;
use crate::scenario::throughput::{self, Rate, MEMCPY};
use crate::scenario::{Scenario, Timing};
use crate::transport::{self, Link, LinkSpec, Transport};

/// Payloads of the full suite, in bytes.
pub const FULL_PAYLOADS: &[usize] = &[8, 64, 1024, 64 * 1024, 1024 * 1024];

/// Payloads of `--quick` (64 B is the latency CDF's payload).
pub const QUICK_PAYLOADS: &[usize] = &[64, 64 * 1024];

/// Payloads a few rows are measured at beyond the run's (full and quick runs alike), with
/// the rows compared with them: `ringcast-rpc` at 4 KiB (issue 27) against `ringcast-spin`
/// and `uds-stream` (the floors join every ping-pong group). Only those rows, so that the
/// payload adds one small group, not a column of every transport.
pub const EXTRA_PAYLOADS: &[(Scenario, usize, &[&str])] = &[(
    Scenario::PingPong,
    4096,
    &["uds-stream", "ringcast-spin", "ringcast-rpc"],
)];

/// Subscriber processes of the fan-out rows (full and quick runs alike).
pub const FANOUT_SUBSCRIBERS: &[usize] = &[1, 2, 4, 8];

/// Payload of the fan-out rows.
pub const FANOUT_PAYLOAD: usize = 64;

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
    pub filter: Vec<String>,
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
    /// Receiving processes (1 but in fan-out).
    pub subscribers: usize,
}

impl Measurement {
    /// The transport name of the row.
    pub fn transport(&self) -> &'static str {
        match self.target {
            Target::Link(t) => t.name(),
            Target::Memcpy => MEMCPY,
        }
    }

    /// `scenario/transport/payload` (fan-out: `.../<n>sub`), what `--filter` matches.
    pub fn label(&self) -> String {
        let mut label = format!(
            "{}/{}/{}",
            self.scenario.name(),
            self.transport(),
            self.payload
        );
        let set = matches!(self.target, Target::Link(t) if t.set_sizes().len() > 1);
        if self.scenario == Scenario::Fanout || set {
            label.push_str(&format!("/{}sub", self.subscribers));
        }
        label
    }

    /// Whether the transport moves the same bytes whatever the payload.
    pub fn payload_independent(&self) -> bool {
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
            let (payloads, subscribers) = match (scenario, t.fixed_payload()) {
                (Scenario::Fanout, _) => (vec![FANOUT_PAYLOAD], FANOUT_SUBSCRIBERS),
                (_, Some(n)) => (vec![n], t.set_sizes()),
                (_, None) => (
                    cfg.payloads
                        .iter()
                        .copied()
                        .filter(|p| t.payloads().is_none_or(|only| only.contains(p)))
                        .collect(),
                    t.set_sizes(),
                ),
            };
            for payload in payloads {
                for &n in subscribers {
                    out.push(Measurement {
                        scenario,
                        target: Target::Link(t),
                        payload,
                        subscribers: n,
                    });
                }
            }
        }
        for &(s, payload, names) in EXTRA_PAYLOADS {
            if s != scenario || cfg.payloads.contains(&payload) {
                continue;
            }
            for &t in transport::all() {
                if names.contains(&t.name()) && t.supports(scenario) {
                    out.push(Measurement {
                        scenario,
                        target: Target::Link(t),
                        payload,
                        subscribers: 1,
                    });
                }
            }
        }
        if scenario == Scenario::Throughput {
            for &payload in &cfg.payloads {
                out.push(Measurement {
                    scenario,
                    target: Target::Memcpy,
                    payload,
                    subscribers: 1,
                });
            }
        }
    }
    if !cfg.filter.is_empty() {
        out.retain(|m| cfg.filter.iter().any(|f| m.label().contains(f.as_str())));
    }
    out
}

/// One measurement, start to end: a row (fan-out included).
pub fn measure(m: &Measurement, timing: &Timing, cpus: Cpus) -> Result<Measured> {
    let mut measured = match m.target {
        Target::Link(t) if m.scenario == Scenario::Fanout => measure_fanout(t, m, timing, cpus)?,
        _ => measure_raw(m, timing, cpus)?.into_measured(m),
    };
    measured.payload_independent = m.payload_independent();
    Ok(measured)
}

/// What a point-to-point measurement gives before it becomes a row: round trips or a
/// rate, which interleaved rounds ([`crate::rounds`]) merge.
pub enum Raw {
    /// Round-trip times in ns (ping-pong).
    Latency(Histogram<u64>),
    /// Messages over time (throughput).
    Throughput(Rate),
}

impl Raw {
    /// The row of measurement `m`.
    pub fn into_measured(self, m: &Measurement) -> Measured {
        let mut measured = match self {
            Raw::Latency(h) => {
                let mut measured = Measured::latency(m.scenario, m.transport(), m.payload, &h);
                measured.row.subscribers = m.subscribers as u32;
                measured
            }
            Raw::Throughput(r) => Measured::throughput(m.scenario, m.transport(), m.payload, &r),
        };
        measured.payload_independent = m.payload_independent();
        measured
    }
}

/// One point-to-point measurement (ping-pong or throughput, or the memcpy reference).
pub fn measure_raw(m: &Measurement, timing: &Timing, cpus: Cpus) -> Result<Raw> {
    match m.target {
        Target::Memcpy => Ok(Raw::Throughput(throughput::memcpy(m.payload, timing))),
        Target::Link(t) => measure_link(t, m, timing, cpus),
    }
}

/// Opens the link, starts the child on the other CPU, runs the parent's role.
fn measure_link(t: &dyn Transport, m: &Measurement, timing: &Timing, cpus: Cpus) -> Result<Raw> {
    if t.spins() && !cpus.distinct() {
        return Err(BenchError::Unsupported(
            "a spinning transport needs two CPUs; only one is allowed".into(),
        ));
    }
    let spec = LinkSpec {
        scenario: m.scenario,
        payload: m.payload,
        subscribers: m.subscribers,
    };
    let Link {
        mut local,
        child_fds,
        child_args,
    } = t.open(&spec)?;
    let args = child_command(m, t, cpus, timing, child_args);
    let deadline = timing.warmup + timing.measure + WATCHDOG_GRACE;
    let mut child = Child::spawn(&args, &child_fds, deadline)?;
    // Only the child holds its end from now on, so its exit is seen as EOF.
    drop(child_fds);

    let outcome = child
        .wait_ready(READY_TIMEOUT)
        .and_then(|()| match m.scenario {
            Scenario::PingPong => local.ping(m.payload, timing).map(Raw::Latency),
            Scenario::Throughput => local.consume(m.payload).map(Raw::Throughput),
            Scenario::Fanout => Err(BenchError::Unsupported(
                "fan-out is not a two-process measurement".into(),
            )),
        });
    // Close the parent's end before waiting: a child blocked on it gets EOF.
    drop(local);
    match outcome {
        Ok(measured) => child.finish(EXIT_TIMEOUT).map(|()| measured),
        Err(e) => Err(child.fail(e)),
    }
}

/// The arguments of a child: `scenario transport payload subscribers cpu
/// warmup_ms measure_ms [transport arguments...]` (see [`child_main`]).
fn child_command(
    m: &Measurement,
    t: &dyn Transport,
    cpus: Cpus,
    timing: &Timing,
    transport_args: Vec<String>,
) -> Vec<String> {
    let mut args = vec![
        m.scenario.name().to_owned(),
        t.name().to_owned(),
        m.payload.to_string(),
        m.subscribers.to_string(),
        cpus.child.to_string(),
        timing.warmup.as_millis().to_string(),
        timing.measure.as_millis().to_string(),
    ];
    args.extend(transport_args);
    args
}

/// Fan-out: the parent publishes, one child per subscriber receives. All
/// children are pinned to the child CPU, so the publisher keeps a CPU of its
/// own and the subscribers share the other one (they sleep between messages:
/// see `ringcast::FUTEX`).
fn measure_fanout(
    t: &dyn Transport,
    m: &Measurement,
    timing: &Timing,
    cpus: Cpus,
) -> Result<Measured> {
    let spec = LinkSpec {
        scenario: m.scenario,
        payload: m.payload,
        subscribers: m.subscribers,
    };
    let Link {
        mut local,
        child_fds,
        child_args,
    } = t.open(&spec)?;
    let args = child_command(m, t, cpus, timing, child_args);
    let deadline = timing.warmup + timing.measure * 2 + WATCHDOG_GRACE;
    let mut children = Vec::with_capacity(m.subscribers);
    for _ in 0..m.subscribers {
        children.push(Child::spawn(&args, &child_fds, deadline)?);
    }
    drop(child_fds);
    for i in 0..children.len() {
        if let Err(e) = children[i].wait_ready(READY_TIMEOUT) {
            return Err(children.swap_remove(i).fail(e));
        }
    }
    let published = local.fan_out(m.payload, timing);
    // Closing the topic ends a subscriber still waiting, whatever happened.
    drop(local);
    if let Err(e) = published {
        return Err(match children.into_iter().next() {
            Some(child) => child.fail(e),
            None => e,
        });
    }

    let mut merged = None;
    let mut rates = Vec::with_capacity(children.len());
    let mut p50s = Vec::with_capacity(children.len());
    let mut negative = 0;
    for mut child in children {
        let received = match child
            .read_report(EXIT_TIMEOUT)
            .and_then(|text| fanout::Received::parse(&text))
        {
            Ok(r) => r,
            Err(e) => return Err(child.fail(e)),
        };
        child.finish(EXIT_TIMEOUT)?;
        p50s.push(report::fmt_ns(
            received.latency.value_at_quantile(0.5) as f64
        ));
        rates.push(received.bulk.per_second());
        negative += received.negative;
        match &mut merged {
            None => merged = Some(received.latency),
            Some(h) => h
                .add(&received.latency)
                .map_err(|e| BenchError::Protocol(format!("merge histograms: {e}")))?,
        }
    }
    let merged = merged.ok_or_else(|| BenchError::Protocol("no subscriber".into()))?;
    let total: f64 = rates.iter().sum();
    let mut measured = Measured::fanout(t.name(), m.payload, m.subscribers, &merged, total);
    let mut note = format!(
        "per subscriber: p50 {}; bulk {}",
        p50s.join(", "),
        rates
            .iter()
            .map(|r| report::fmt_rate(*r))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if negative > 0 {
        note.push_str(&format!(
            "; {negative} samples read the receive time before the send time (not recorded)"
        ));
    }
    measured.note = Some(note);
    Ok(measured)
}

/// Entry point of the `__child` subcommand: `scenario transport payload
/// subscribers cpu warmup_ms measure_ms [transport arguments...]`.
pub fn child_main(args: &[String]) -> Result<()> {
    let bad = |what: &str| BenchError::Protocol(format!("child arguments: bad {what}"));
    let [scenario, name, payload, subscribers, cpu, warmup, measure, rest @ ..] = args else {
        return Err(bad("count"));
    };
    let scenario = Scenario::parse(scenario).ok_or_else(|| bad("scenario"))?;
    let t = transport::by_name(name).ok_or_else(|| bad("transport"))?;
    let payload: usize = payload.parse().map_err(|_| bad("payload"))?;
    let subscribers: usize = subscribers.parse().map_err(|_| bad("subscribers"))?;
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
    let spec = LinkSpec {
        scenario,
        payload,
        subscribers,
    };
    let mut end = t.attach(&spec, rest)?;
    harness::report_ready()?;
    match scenario {
        Scenario::PingPong => end.pong(payload),
        Scenario::Throughput => end.produce(payload, &timing),
        Scenario::Fanout => harness::report(&end.fan_in(payload)?.write()),
    }
}
