//! Interleaved measurement: the suite's ratios come from short rounds that alternate
//! every transport compared at one payload, so a machine that changes speed mid-run (these
//! shared guests switch between a fast and a slow mode) moves a transport and its
//! references together.
//!
//! The ping-pong and throughput measurements are grouped by (scenario, payload); the
//! payload-independent floors join every ping-pong group. Each group runs `rounds` rounds;
//! a round measures every member once, for `measure / rounds` after a short warm-up, in an
//! order rotated by one each round. A row's figures come from all its rounds merged (the
//! histograms added, the rates summed); its ratios are the **median of the per-round
//! ratios** (each round's p50 over the reference's p50 in that same round, or bytes/s over
//! bytes/s), with the smallest and largest per-round ratio as the spread. A latency ratio
//! below 1.0 against `floor` is physically impossible (it is one cache line bounced
//! between the same two CPUs) and is flagged as a bad run.
//!
//! Fan-out rows are measured one after another, as before (one publisher and up to eight
//! subscriber processes at once do not interleave with anything).

use std::time::{Duration, Instant};

use crate::harness::Cpus;
use crate::report::{self, Measured};
use crate::scenario::throughput::{Rate, MEMCPY};
use crate::scenario::{Scenario, Timing};
use crate::suite::{self, Measurement, Raw};
use crate::transport::ringcast_many::VS_TOPICS;
use crate::transport::rpc;
use crate::transport::{
    BASELINES, BRIDGE, FLOOR, FUTEX_FLOOR, RINGCAST, RINGCAST_FUTEX, SLEEPING, ZENOH,
};

/// Rounds of a full run.
pub const FULL_ROUNDS: usize = 8;

/// Rounds of `--quick`.
pub const QUICK_ROUNDS: usize = 2;

/// Longest warm-up of one member in one round (it faults pages in and wakes the CPUs; the
/// full warm-up is for a single long measurement).
const ROUND_WARMUP: Duration = Duration::from_millis(100);

/// Rows that are also compared with `ringcast-futex` (the single-topic sleep they extend).
const VS_FUTEX_ROW: &[&str] = &[
    "ringcast-waitset",
    "ringcast-waitset-paced",
    "ringcast-async",
];

/// What a ratio compares with.
const BEST_BASELINE: &str = "best baseline";

/// One interleaved ratio: a row against one reference, over the rounds both ran in.
#[derive(Clone, Debug)]
pub struct Ratio {
    /// The row's label (`scenario/transport/payload[/Nsub]`).
    pub label: String,
    /// What it is compared with: a transport name or "best baseline".
    pub reference: &'static str,
    /// Lower is better (latency) or higher is better (throughput).
    pub latency: bool,
    /// Median of the per-round ratios.
    pub median: f64,
    /// Smallest per-round ratio.
    pub min: f64,
    /// Largest per-round ratio.
    pub max: f64,
    /// Rounds in which both were measured.
    pub rounds: usize,
}

impl Ratio {
    /// A latency ratio below 1.0 against the cache-line floor: physically impossible, so
    /// the run cannot be trusted. (The futex floor is no such bound: a receiver that does
    /// not fall asleep in time beats it.)
    pub fn below_floor(&self) -> bool {
        self.latency && self.reference == FLOOR && self.median < 1.0
    }
}

/// One comparison group: measurements (indices into the plan) at one scenario and payload.
struct Group {
    scenario: Scenario,
    payload: usize,
    members: Vec<usize>,
}

/// The groups of `plan`'s point-to-point measurements, in plan order.
fn groups(plan: &[Measurement]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    let independent =
        |m: &Measurement| matches!(m.target, suite::Target::Link(t) if t.fixed_payload().is_some());
    for (i, m) in plan.iter().enumerate() {
        if m.scenario == Scenario::Fanout || independent(m) {
            continue;
        }
        match out
            .iter_mut()
            .find(|g| g.scenario == m.scenario && g.payload == m.payload)
        {
            Some(g) => g.members.push(i),
            None => out.push(Group {
                scenario: m.scenario,
                payload: m.payload,
                members: vec![i],
            }),
        }
    }
    // The floors join every group of their scenario (first, so the table reads from the
    // reference down), or make a group of their own if they are all the filter kept.
    for (i, m) in plan.iter().enumerate().filter(|(_, m)| independent(m)) {
        let mut joined = false;
        for g in out.iter_mut().filter(|g| g.scenario == m.scenario) {
            g.members.insert(0, i);
            joined = true;
        }
        if !joined {
            out.push(Group {
                scenario: m.scenario,
                payload: m.payload,
                members: vec![i],
            });
        }
    }
    out
}

/// A measurement's rounds merged.
enum Merged {
    Latency(hdrhistogram::Histogram<u64>),
    Throughput(Rate),
}

impl Merged {
    fn add(slot: &mut Option<Merged>, raw: Raw) {
        match (slot.as_mut(), raw) {
            (None, Raw::Latency(h)) => *slot = Some(Merged::Latency(h)),
            (None, Raw::Throughput(r)) => *slot = Some(Merged::Throughput(r)),
            (Some(Merged::Latency(m)), Raw::Latency(h)) => {
                // Same bounds and precision every round: adding cannot fail.
                let _ = m.add(&h);
            }
            (Some(Merged::Throughput(m)), Raw::Throughput(r)) => {
                m.messages += r.messages;
                m.elapsed += r.elapsed;
                m.lost += r.lost;
            }
            _ => {}
        }
    }

    fn into_raw(self) -> Raw {
        match self {
            Merged::Latency(h) => Raw::Latency(h),
            Merged::Throughput(r) => Raw::Throughput(r),
        }
    }
}

/// The figure a round is compared on: one-way p50 in ns, or bytes per second.
fn figure(raw: &Raw, payload: usize) -> f64 {
    match raw {
        Raw::Latency(h) => h.value_at_quantile(0.5) as f64 / 2.0,
        Raw::Throughput(r) => r.per_second() * payload as f64,
    }
}

/// Rows compared with `ringcast-spin`: topics that several publishers may share (the
/// `mpsc` rows in throughput only: their ping-pong publishers wait asleep).
const VS_SPIN_ROW: &[(Option<Scenario>, &str)] = &[
    (None, "ringcast-shared"),
    (Some(Scenario::Throughput), "ringcast-mpsc-2"),
    (Some(Scenario::Throughput), "ringcast-mpsc-4"),
];

/// The references measurement `m` is compared with.
fn references(m: &Measurement) -> Vec<&'static str> {
    let t = m.transport();
    let mut out = Vec::new();
    match m.scenario {
        Scenario::PingPong => {
            if t != FLOOR && t != FUTEX_FLOOR {
                out.push(FLOOR);
            }
            if SLEEPING.contains(&t) {
                out.push(FUTEX_FLOOR);
            }
            if VS_FUTEX_ROW.contains(&t) {
                out.push(RINGCAST_FUTEX);
            }
        }
        // Completed calls are not one-way messages: no memcpy or baseline ratio.
        Scenario::Throughput if t != MEMCPY && !rpc::CALL_RATES.contains(&t) => out.push(MEMCPY),
        _ => {}
    }
    if VS_SPIN_ROW
        .iter()
        .any(|&(s, name)| name == t && s.is_none_or(|s| s == m.scenario))
    {
        out.push("ringcast-spin");
    }
    // Lanes against the same publishers on a topic each in one wait set.
    out.extend(
        VS_TOPICS
            .iter()
            .filter(|&&(s, lanes, _)| s == m.scenario && lanes == t)
            .map(|&(_, _, topics)| topics),
    );
    // The service rows against raw topics, a Unix socket, or fewer clients.
    out.extend(
        rpc::VS
            .iter()
            .filter(|&&(s, row, _)| s == m.scenario && row == t)
            .map(|&(_, _, reference)| reference),
    );
    if (t.starts_with(RINGCAST) && !rpc::CALL_RATES.contains(&t)) || t == "iceoryx2" {
        out.push(BEST_BASELINE);
    }
    if t == BRIDGE {
        out.extend([ZENOH, "tcp"]);
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `plan` (interleaved where it can be) and returns its rows, in plan order, and the
/// interleaved ratios.
pub fn run(
    plan: &[Measurement],
    timing: &Timing,
    cpus: Cpus,
    rounds: usize,
) -> (Vec<Measured>, Vec<Ratio>) {
    let rounds = rounds.max(1);
    let round = Timing {
        warmup: timing.warmup.min(ROUND_WARMUP),
        measure: timing.measure / rounds as u32,
    };
    let mut merged: Vec<Option<Merged>> = plan.iter().map(|_| None).collect();
    let mut failures: Vec<Option<String>> = vec![None; plan.len()];
    let mut ratios = Vec::new();
    let groups = groups(plan);
    for (gi, g) in groups.iter().enumerate() {
        // figures[round][member] for this group.
        let mut figures: Vec<Vec<Option<f64>>> = Vec::with_capacity(rounds);
        for r in 0..rounds {
            let started = Instant::now();
            let mut this_round = vec![None; g.members.len()];
            let mut line = Vec::new();
            for k in 0..g.members.len() {
                let pos = (k + r) % g.members.len();
                let i = g.members[pos];
                let m = &plan[i];
                match suite::measure_raw(m, &round, cpus) {
                    Ok(raw) => {
                        let f = figure(&raw, g.payload);
                        this_round[pos] = Some(f);
                        line.push(format!("{} {}", short(m), fmt_figure(g.scenario, f)));
                        Merged::add(&mut merged[i], raw);
                    }
                    Err(e) => {
                        line.push(format!("{} skipped ({e})", short(m)));
                        failures[i] = Some(e.to_string());
                    }
                }
            }
            eprintln!(
                "[group {}/{} round {}/{}] {} {}: {} ({:.1} s)",
                gi + 1,
                groups.len(),
                r + 1,
                rounds,
                g.scenario.name(),
                report::fmt_bytes(g.payload),
                line.join(", "),
                started.elapsed().as_secs_f64()
            );
            figures.push(this_round);
        }
        ratios.extend(group_ratios(plan, g, &figures));
    }

    let mut results = Vec::with_capacity(plan.len());
    for (i, m) in plan.iter().enumerate() {
        if m.scenario == Scenario::Fanout {
            eprint!("[fanout] {} x{} ... ", m.transport(), m.subscribers);
            match suite::measure(m, timing, cpus) {
                Ok(r) => {
                    eprintln!("{}", report::summary(&r.row));
                    results.push(r);
                }
                Err(e) => eprintln!("skipped: {e}"),
            }
            continue;
        }
        match merged[i].take() {
            Some(mg) => results.push(mg.into_raw().into_measured(m)),
            None => eprintln!(
                "{}: skipped: {}",
                m.label(),
                failures[i].as_deref().unwrap_or("not measured")
            ),
        }
    }
    for r in ratios.iter().filter(|r| r.below_floor()) {
        eprintln!(
            "ringcast-bench: BAD RUN: {} is {:.2}x {} (below a physical floor): do not quote it",
            r.label, r.median, r.reference
        );
    }
    (results, ratios)
}

/// The per-round ratios of every member of `g` against each of its references.
fn group_ratios(plan: &[Measurement], g: &Group, figures: &[Vec<Option<f64>>]) -> Vec<Ratio> {
    let latency = g.scenario == Scenario::PingPong;
    let pos_of = |name: &str| g.members.iter().position(|&i| plan[i].transport() == name);
    let baselines: Vec<usize> = (0..g.members.len())
        .filter(|&p| BASELINES.contains(&plan[g.members[p]].transport()))
        .collect();
    let mut out = Vec::new();
    for (p, &i) in g.members.iter().enumerate() {
        let m = &plan[i];
        for reference in references(m) {
            let per_round: Vec<f64> = figures
                .iter()
                .filter_map(|round| {
                    let own = round[p]?;
                    let other = if reference == BEST_BASELINE {
                        let best = baselines.iter().filter_map(|&b| round[b]);
                        if latency {
                            best.reduce(f64::min)?
                        } else {
                            best.reduce(f64::max)?
                        }
                    } else {
                        round[pos_of(reference)?]?
                    };
                    (other > 0.0).then(|| own / other)
                })
                .collect();
            if per_round.is_empty() {
                continue;
            }
            let mut sorted = per_round.clone();
            let med = median(&mut sorted);
            out.push(Ratio {
                label: m.label(),
                reference,
                latency,
                median: med,
                min: sorted[0],
                max: sorted[sorted.len() - 1],
                rounds: per_round.len(),
            });
        }
    }
    out
}

/// A member's name in a progress line: its transport, with its set size when the
/// transport is measured at several.
fn short(m: &Measurement) -> String {
    match m.target {
        suite::Target::Link(t) if t.set_sizes().len() > 1 => {
            format!("{}/{}", t.name(), m.subscribers)
        }
        _ => m.transport().to_owned(),
    }
}

/// Three significant digits, whatever the size (0.0035x, 1.66x, 475x).
fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 10.0 {
        format!("{r:.1}x")
    } else if r >= 1.0 {
        format!("{r:.2}x")
    } else {
        let digits = (2 - r.log10().floor() as i32).clamp(2, 9) as usize;
        format!("{r:.digits$}x")
    }
}

fn fmt_figure(scenario: Scenario, f: f64) -> String {
    if scenario == Scenario::PingPong {
        report::fmt_ns(f)
    } else {
        report::fmt_bytes_per_s(f)
    }
}

/// The Markdown table of the interleaved ratios.
pub fn markdown(ratios: &[Ratio]) -> String {
    use std::fmt::Write as _;
    if ratios.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n### Interleaved ratios\n\n\
         | row | vs | median | min | max | rounds |\n|---|---|---:|---:|---:|---:|\n",
    );
    for r in ratios {
        let flag = if r.below_floor() { " **bad run**" } else { "" };
        let _ = writeln!(
            out,
            "| {} | {} | {}{} | {} | {} | {} |",
            r.label,
            r.reference,
            fmt_ratio(r.median),
            flag,
            fmt_ratio(r.min),
            fmt_ratio(r.max),
            r.rounds
        );
    }
    out.push_str(
        "\nEach ratio is the median over rounds of (this row's figure / the reference's figure \
         in the same round); min and max are the extreme rounds. Latency rows compare p50 \
         (lower is better), throughput rows bytes/s (higher is better). References: `floor` \
         (a cache line bounced between the two CPUs: no transport can beat it, so a ratio \
         below 1.0 marks a bad run), `futex-floor` (one futex sleep and wake per message, for \
         rows whose receivers may sleep: a receiver that does not fall asleep in time beats \
         it), `ringcast-futex` (for the wait-set and async rows), `ringcast-spin` (for the \
         shared-topic rows and `ringcast-rpc`), `uds-stream` (for `ringcast-rpc`: a \
         request/response over a Unix socket), `ringcast-rpc-1` (for `ringcast-rpc-4`: calls \
         per second with four clients against one), `ringcast-topics-N` (for the rows with N publishers on one \
         shared topic: the same publishers on a topic each, in one wait set), `memcpy` \
         (throughput), and the best kernel baseline of that round.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{Config, Target};
    use crate::transport;

    fn member(name: &str, payload: usize) -> Measurement {
        Measurement {
            scenario: Scenario::PingPong,
            target: Target::Link(transport::by_name(name).expect("a transport")),
            payload,
            subscribers: 1,
        }
    }

    #[test]
    fn every_ping_pong_group_has_the_floors_and_one_payload() {
        let cfg = Config {
            payloads: vec![64, 1024],
            timing: Timing::QUICK,
            filter: vec!["pingpong/".into()],
        };
        let plan = suite::plan(&cfg);
        let groups = groups(&plan);
        // 64 B, 1 KiB, and the 4 KiB of `ringcast-rpc` and its references.
        assert_eq!(groups.len(), 3);
        for g in &groups {
            let names: Vec<_> = g.members.iter().map(|&i| plan[i].transport()).collect();
            assert!(
                names.contains(&FLOOR) && names.contains(&FUTEX_FLOOR),
                "{names:?}"
            );
            assert!(g
                .members
                .iter()
                .all(|&i| plan[i].payload == g.payload || plan[i].payload_independent()));
        }
    }

    #[test]
    fn ratios_are_medians_of_per_round_ratios_and_a_floor_beaten_is_flagged() {
        let plan = vec![
            member(FLOOR, 64),
            member("ringcast-spin", 64),
            member("pipe", 64),
        ];
        let g = Group {
            scenario: Scenario::PingPong,
            payload: 64,
            members: vec![0, 1, 2],
        };
        // The machine halves its speed in round 2: the figures double, the ratios hold.
        let rounds = vec![
            vec![Some(100.0), Some(150.0), Some(1000.0)],
            vec![Some(200.0), Some(260.0), Some(1600.0)],
            vec![Some(100.0), Some(140.0), None],
        ];
        let ratios = group_ratios(&plan, &g, &rounds);
        let spin_floor = ratios
            .iter()
            .find(|r| r.label == "pingpong/ringcast-spin/64" && r.reference == FLOOR)
            .unwrap();
        assert_eq!(spin_floor.rounds, 3);
        assert!((spin_floor.median - 1.4).abs() < 1e-9, "{spin_floor:?}");
        assert!((spin_floor.min - 1.3).abs() < 1e-9 && (spin_floor.max - 1.5).abs() < 1e-9);
        assert!(!spin_floor.below_floor());
        let spin_best = ratios
            .iter()
            .find(|r| r.label == "pingpong/ringcast-spin/64" && r.reference == BEST_BASELINE)
            .unwrap();
        assert_eq!(
            spin_best.rounds, 2,
            "a round without a baseline has no ratio"
        );
        assert!((spin_best.median - (0.15 + 260.0 / 1600.0) / 2.0).abs() < 1e-9);

        let beaten = vec![vec![Some(100.0), Some(90.0), Some(1000.0)]];
        let ratios = group_ratios(&plan, &g, &beaten);
        assert!(ratios
            .iter()
            .any(|r| r.reference == FLOOR && r.below_floor()));
    }

    #[test]
    fn service_rows_are_compared_with_raw_topics_a_socket_and_fewer_clients() {
        let refs = references(&member("ringcast-rpc", 4096));
        for r in ["ringcast-spin", "uds-stream", FLOOR, BEST_BASELINE] {
            assert!(refs.contains(&r), "{refs:?} lacks {r}");
        }
        let mut four = member("ringcast-rpc-4", 64);
        four.scenario = Scenario::Throughput;
        assert_eq!(references(&four), ["ringcast-rpc-1"]);
    }

    #[test]
    fn ratios_print_with_three_significant_digits() {
        assert_eq!(fmt_ratio(475.2), "475x");
        assert_eq!(fmt_ratio(12.34), "12.3x");
        assert_eq!(fmt_ratio(1.666), "1.67x");
        assert_eq!(fmt_ratio(0.8951), "0.895x");
        assert_eq!(fmt_ratio(0.004537), "0.00454x");
    }
}
