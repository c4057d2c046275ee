//! Results: the JSON row of the design contract, the Markdown table, and the
//! human formatting of numbers.
//!
//! The reference columns of the table are computed from transport names only,
//! so any row (the ringcast ones included) gets them:
//! * "vs floor": a latency row's p50 ÷ its floor's p50 (at the same payload if
//!   measured there, else the payload-independent floor); the floor is
//!   `futex-floor` for the ringcast rows whose receivers sleep (futex, waitset, async: so the ratio is
//!   the distance to a sleep and wake-up per message), and `floor` for every
//!   other row; a throughput row's bytes/s ÷ `memcpy` bytes/s at the same payload.
//! * "vs best baseline": p50 ÷ the lowest baseline p50, or bytes/s ÷ the highest
//!   baseline bytes/s, among [`BASELINES`] at the same scenario and payload.
//!
//! Fan-out rows (latency to each subscriber) have no fan-out floor or baseline
//! to compare with: they take the ping-pong references at the same payload.

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::{BenchError, Result};
use crate::scenario::throughput::{Rate, MEMCPY};
use crate::scenario::Scenario;
use crate::transport::rpc::CALL_RATES;
use crate::transport::{BASELINES, FLOOR, FUTEX_FLOOR, RINGCAST, SLEEPING};

/// One row of `--json`: exactly the fields of the design contract, in order;
/// `None` (null) where a figure does not apply. Latencies are one-way, in ns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `pingpong`, `throughput` or `fanout`.
    pub scenario: String,
    /// Transport name.
    pub transport: String,
    /// Message size in bytes.
    pub payload_bytes: u64,
    /// Receiving processes (1 for point-to-point rows).
    pub subscribers: u32,
    /// Median one-way latency.
    pub p50_ns: Option<f64>,
    /// 99th percentile one-way latency.
    pub p99_ns: Option<f64>,
    /// 99.9th percentile one-way latency.
    pub p999_ns: Option<f64>,
    /// Highest one-way latency seen.
    pub max_ns: Option<f64>,
    /// Messages per second.
    pub msgs_per_s: Option<f64>,
    /// Payload bytes per second.
    pub bytes_per_s: Option<f64>,
}

/// A finished measurement: its row, plus what the plots need.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The JSON/table row.
    pub row: Row,
    /// One-way latency CDF points `(ns, fraction of samples at or below)`.
    pub cdf: Option<Vec<(f64, f64)>>,
    /// The transport moves the same bytes whatever the payload (the floors).
    pub payload_independent: bool,
    /// A remark for the progress line on stderr (losses, per-subscriber figures).
    pub note: Option<String>,
}

impl Measured {
    /// A latency row from a histogram of round trips in ns (halved here).
    pub fn latency(
        scenario: Scenario,
        transport: &str,
        payload: usize,
        rtt: &Histogram<u64>,
    ) -> Self {
        Self::from_histogram(Row::empty(scenario, transport, payload), rtt, 2.0)
    }

    /// A fan-out row: one-way times of every subscriber in one histogram (ns,
    /// not halved), and the messages per second delivered to all of them.
    pub fn fanout(
        transport: &str,
        payload: usize,
        subscribers: usize,
        one_way: &Histogram<u64>,
        delivered_per_s: f64,
    ) -> Self {
        let mut row = Row::empty(Scenario::Fanout, transport, payload);
        row.subscribers = u32::try_from(subscribers).unwrap_or(u32::MAX);
        row.msgs_per_s = Some(delivered_per_s);
        row.bytes_per_s = Some(delivered_per_s * payload as f64);
        Self::from_histogram(row, one_way, 1.0)
    }

    /// Fills the latency fields of `row` from `hist`, each value divided by `div`.
    fn from_histogram(mut row: Row, hist: &Histogram<u64>, div: f64) -> Self {
        let at = |q: f64| hist.value_at_quantile(q) as f64 / div;
        let mut cdf = vec![(hist.min() as f64 / div, 0.0)];
        let grid = (1..100).map(|i| f64::from(i) / 100.0);
        let tail = [0.995, 0.999, 0.9995, 0.9999, 0.99999];
        cdf.extend(grid.chain(tail).map(|q| (at(q), q)));
        cdf.push((hist.max() as f64 / div, 1.0));
        row.p50_ns = Some(at(0.5));
        row.p99_ns = Some(at(0.99));
        row.p999_ns = Some(at(0.999));
        row.max_ns = Some(hist.max() as f64 / div);
        Self {
            row,
            cdf: Some(cdf),
            payload_independent: false,
            note: None,
        }
    }

    /// A throughput row. A consumer's losses (a lossy transport) are not in the
    /// rate; they become the row's note.
    pub fn throughput(scenario: Scenario, transport: &str, payload: usize, rate: &Rate) -> Self {
        let mut row = Row::empty(scenario, transport, payload);
        let per_s = rate.per_second();
        row.msgs_per_s = Some(per_s);
        row.bytes_per_s = Some(per_s * payload as f64);
        let note = (rate.lost > 0).then(|| {
            let published = rate.lost + rate.messages;
            format!(
                "lost {} of {published} messages to lapping while the clock ran ({:.1}%); \
                 only the {} received are counted",
                rate.lost,
                100.0 * rate.lost as f64 / published as f64,
                rate.messages
            )
        });
        Self {
            row,
            cdf: None,
            payload_independent: false,
            note,
        }
    }
}

impl Row {
    fn empty(scenario: Scenario, transport: &str, payload: usize) -> Self {
        Self {
            scenario: scenario.name().to_owned(),
            transport: transport.to_owned(),
            payload_bytes: payload as u64,
            subscribers: 1,
            p50_ns: None,
            p99_ns: None,
            p999_ns: None,
            max_ns: None,
            msgs_per_s: None,
            bytes_per_s: None,
        }
    }
}

/// Writes the rows as a JSON array.
pub fn write_json(path: &Path, results: &[Measured]) -> Result<()> {
    let rows: Vec<&Row> = results.iter().map(|m| &m.row).collect();
    let text = serde_json::to_string_pretty(&rows)
        .map_err(|e| BenchError::Report(format!("serialize rows: {e}")))?;
    std::fs::write(path, text + "\n")
        .map_err(|e| BenchError::Report(format!("write {}: {e}", path.display())))
}

/// The figure a row is compared on, and whether lower is better.
fn figure(row: &Row) -> Option<(f64, bool)> {
    row.p50_ns
        .map(|v| (v, true))
        .or(row.bytes_per_s.map(|v| (v, false)))
}

/// The scenario whose reference rows a row is compared with: its own, but
/// ping-pong for fan-out (which has no floor or baseline rows of its own).
fn reference_scenario(row: &Row) -> &str {
    if row.scenario == Scenario::Fanout.name() {
        Scenario::PingPong.name()
    } else {
        &row.scenario
    }
}

/// The floor a latency row is compared with: `futex-floor` for the rows whose
/// receivers sleep, `floor` for every other.
fn floor_of(row: &Row) -> &'static str {
    if SLEEPING.contains(&row.transport.as_str()) {
        FUTEX_FLOOR
    } else {
        FLOOR
    }
}

/// The rows whose rate is completed calls, not one-way messages: compared with neither
/// `memcpy` nor the baselines.
fn counts_calls(row: &Row) -> bool {
    CALL_RATES.contains(&row.transport.as_str())
}

/// "vs floor": the ratio of this row's figure to its floor's.
fn vs_floor(row: &Row, rows: &[&Row]) -> Option<f64> {
    if counts_calls(row) {
        return None;
    }
    let (value, latency) = figure(row)?;
    let reference = if latency {
        let scenario = reference_scenario(row);
        let floor = floor_of(row);
        let floors = || {
            rows.iter()
                .filter(move |r| r.scenario == scenario && r.transport == floor)
        };
        floors()
            .find(|r| r.payload_bytes == row.payload_bytes)
            .or_else(|| floors().next())?
            .p50_ns?
    } else {
        rows.iter()
            .find(|r| {
                r.scenario == row.scenario
                    && r.transport == MEMCPY
                    && r.payload_bytes == row.payload_bytes
            })?
            .bytes_per_s?
    };
    ratio(value, reference)
}

/// "vs best baseline": the ratio to the best baseline at the same payload.
fn vs_best_baseline(row: &Row, rows: &[&Row]) -> Option<f64> {
    if counts_calls(row) {
        return None;
    }
    let (value, latency) = figure(row)?;
    let scenario = reference_scenario(row);
    let figures = rows
        .iter()
        .filter(|r| {
            r.scenario == scenario
                && r.payload_bytes == row.payload_bytes
                && BASELINES.contains(&r.transport.as_str())
        })
        .filter_map(|r| figure(r).map(|(v, _)| v));
    let best = if latency {
        figures.fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.min(v))))
    } else {
        figures.fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.max(v))))
    }?;
    ratio(value, best)
}

fn ratio(value: f64, reference: f64) -> Option<f64> {
    (reference > 0.0).then(|| value / reference)
}

/// The Markdown table of all rows, with a legend for the ratio columns.
pub fn markdown(results: &[Measured]) -> String {
    let rows: Vec<&Row> = results.iter().map(|m| &m.row).collect();
    let mut out = String::from(
        "| scenario | transport | payload | subs | p50 | p99 | p99.9 | max | msgs/s | bytes/s | vs floor | vs best baseline |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in results {
        let r = &m.row;
        let payload = if m.payload_independent {
            format!("{} (any)", fmt_bytes(r.payload_bytes as usize))
        } else {
            fmt_bytes(r.payload_bytes as usize)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.transport,
            payload,
            r.subscribers,
            opt(r.p50_ns, fmt_ns),
            opt(r.p99_ns, fmt_ns),
            opt(r.p999_ns, fmt_ns),
            opt(r.max_ns, fmt_ns),
            opt(r.msgs_per_s, fmt_rate),
            opt(r.bytes_per_s, fmt_bytes_per_s),
            opt(vs_floor(r, &rows), fmt_ratio),
            opt(vs_best_baseline(r, &rows), fmt_ratio),
        );
    }
    out.push_str(
        "\nLatency is one-way (round trip / 2) between two processes pinned to different CPUs. \
         `floor` and `futex-floor` move one cache line whatever the payload (\"(any)\").\n\
         vs floor: latency rows, p50 / floor p50 (futex-floor p50 for the ringcast rows whose \
         receivers sleep: futex, waitset, async; lower is better); throughput rows, \
         bytes/s / memcpy bytes/s at that payload (higher is better).\n\
         vs best baseline: p50 / lowest baseline p50, or bytes/s / highest baseline bytes/s, \
         at that payload; baselines: ",
    );
    out.push_str(&BASELINES.join(", "));
    out.push_str(".\n");
    if rows.iter().any(|r| r.transport.starts_with(RINGCAST)) {
        out.push_str(
            "\nringcast latency rows use the loan path: the payload is produced and consumed in \
             place (a sender writes only the message's header into its loaned slot and commits \
             the full payload length; a `Block` receiver reads that header in place), while the \
             baselines necessarily copy it through the kernel. ringcast throughput rows write \
             every payload byte into the slot and read every byte out, so their bytes/s are bytes \
             moved. `ringcast-overwrite` receivers get a verified copy of the whole payload, and \
             count only the messages they received, not those lost to lapping. The optional \
             `iceoryx2` row (feature `iceoryx2`) is measured the same way: header-only in \
             ping-pong, every byte in throughput.\n",
        );
    }
    if rows.iter().any(|r| r.transport.starts_with("ringcast-rpc")) {
        out.push_str(
            "\nringcast-rpc rows go through the service layer (`Server`, `Client`). Ping-pong: \
             one call per round trip, the payload echoed byte for byte and copied at each end \
             (the service API takes and gives slices), unlike the loan path of the other \
             ringcast rows. Throughput (`ringcast-rpc-N`: N client threads on one CPU, each \
             with its whole queue of calls in flight, the server on the other): msgs/s are \
             completed calls per second of all clients, bytes/s calls times the payload; no \
             floor or baseline ratio.\n",
        );
    }
    if rows.iter().any(|r| r.scenario == Scenario::Fanout.name()) {
        out.push_str(
            "\nfanout: one publisher, `subs` subscriber processes sharing one CPU; latency is \
             one-way to each subscriber (CLOCK_MONOTONIC stamped in the message, one machine), \
             over paced messages, all subscribers' samples together; msgs/s is delivered \
             messages per second summed over subscribers, publishing back to back. Its ratios \
             use the ping-pong references at that payload.\n",
        );
    }
    out
}

/// The progress-line summary of a row.
pub fn summary(row: &Row) -> String {
    match (
        row.p50_ns,
        row.p99_ns,
        row.max_ns,
        row.msgs_per_s,
        row.bytes_per_s,
    ) {
        (Some(p50), Some(p99), Some(max), Some(m), _) => format!(
            "p50 {}  p99 {}  max {}  {}",
            fmt_ns(p50),
            fmt_ns(p99),
            fmt_ns(max),
            fmt_rate(m)
        ),
        (Some(p50), Some(p99), Some(max), _, _) => format!(
            "p50 {}  p99 {}  max {}",
            fmt_ns(p50),
            fmt_ns(p99),
            fmt_ns(max)
        ),
        (_, _, _, Some(m), Some(b)) => format!("{}  {}", fmt_rate(m), fmt_bytes_per_s(b)),
        _ => "no figures".into(),
    }
}

fn opt(v: Option<f64>, f: fn(f64) -> String) -> String {
    v.map_or_else(|| "–".into(), f)
}

/// Nanoseconds with a unit that keeps three significant digits.
pub fn fmt_ns(ns: f64) -> String {
    match ns {
        v if v < 100.0 => format!("{v:.1} ns"),
        v if v < 1e3 => format!("{v:.0} ns"),
        v if v < 1e6 => format!("{:.2} µs", v / 1e3),
        v if v < 1e9 => format!("{:.2} ms", v / 1e6),
        v => format!("{:.2} s", v / 1e9),
    }
}

/// A payload size: `8 B`, `1 KiB`, `64 KiB`, `1 MiB`.
pub fn fmt_bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// Messages per second: `12.3 M/s`, `456.7 k/s`, `89 /s`.
pub fn fmt_rate(per_s: f64) -> String {
    match per_s {
        v if v >= 1e6 => format!("{:.2} M/s", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k/s", v / 1e3),
        v => format!("{v:.0} /s"),
    }
}

/// Bytes per second in GiB/s, MiB/s or B/s.
pub fn fmt_bytes_per_s(b: f64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    match b {
        v if v >= GIB => format!("{:.2} GiB/s", v / GIB),
        v if v >= MIB => format!("{:.1} MiB/s", v / MIB),
        v => format!("{:.1} KiB/s", v / 1024.0),
    }
}

fn fmt_ratio(r: f64) -> String {
    match r {
        // Two significant digits below 1: 0.52×, 0.0031×.
        r if r > 0.0 && r < 1.0 => {
            let decimals = (1.0 - r.log10().floor()).clamp(2.0, 9.0) as usize;
            format!("{r:.decimals$}×")
        }
        r if r < 10.0 => format!("{r:.2}×"),
        r if r < 100.0 => format!("{r:.1}×"),
        r => format!("{r:.0}×"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency_row(transport: &str, payload: u64, p50: f64) -> Row {
        let mut r = Row::empty(Scenario::PingPong, transport, payload as usize);
        r.p50_ns = Some(p50);
        r
    }

    #[test]
    fn ringcast_rows_get_ratios_to_floor_and_best_baseline() {
        let rows = [
            latency_row("floor", 8, 50.0),
            latency_row("pipe", 64, 4000.0),
            latency_row("uds-stream", 64, 2000.0),
            latency_row("ringcast-spin", 64, 100.0),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        // The floor is payload-independent: found at 8 B for a 64 B row.
        assert_eq!(vs_floor(&rows[3], &refs), Some(2.0));
        assert_eq!(vs_best_baseline(&rows[3], &refs), Some(0.05));
        assert_eq!(vs_best_baseline(&rows[1], &refs), Some(2.0));
    }

    #[test]
    fn throughput_ratios_compare_bytes_per_second() {
        let mut memcpy = Row::empty(Scenario::Throughput, MEMCPY, 1024);
        memcpy.bytes_per_s = Some(10e9);
        let mut tcp = Row::empty(Scenario::Throughput, "tcp", 1024);
        tcp.bytes_per_s = Some(1e9);
        let refs = [&memcpy, &tcp];
        assert_eq!(vs_floor(&tcp, &refs), Some(0.1));
        assert_eq!(vs_best_baseline(&memcpy, &refs), Some(10.0));
    }

    #[test]
    fn call_rates_get_no_memcpy_or_baseline_ratio() {
        let mut memcpy = Row::empty(Scenario::Throughput, MEMCPY, 64);
        memcpy.bytes_per_s = Some(10e9);
        let mut pipe = Row::empty(Scenario::Throughput, "pipe", 64);
        pipe.bytes_per_s = Some(1e9);
        let mut calls = Row::empty(Scenario::Throughput, "ringcast-rpc-1", 64);
        calls.bytes_per_s = Some(1e8);
        let refs = [&memcpy, &pipe, &calls];
        assert_eq!(vs_floor(&calls, &refs), None);
        assert_eq!(vs_best_baseline(&calls, &refs), None);
        // A round trip is compared as any ringcast ping-pong row.
        let rows = [
            latency_row("uds-stream", 64, 2000.0),
            latency_row("ringcast-rpc", 64, 200.0),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        assert_eq!(vs_best_baseline(&rows[1], &refs), Some(0.1));
    }

    #[test]
    fn payload_sizes_format_with_binary_units() {
        assert_eq!(fmt_bytes(8), "8 B");
        assert_eq!(fmt_bytes(1024), "1 KiB");
        assert_eq!(fmt_bytes(64 * 1024), "64 KiB");
        assert_eq!(fmt_bytes(1 << 20), "1 MiB");
        assert_eq!(fmt_bytes(1000), "1000 B");
    }

    #[test]
    fn small_ratios_keep_two_significant_digits() {
        assert_eq!(fmt_ratio(0.52), "0.52×");
        assert_eq!(fmt_ratio(0.0031), "0.0031×");
        assert_eq!(fmt_ratio(1.0), "1.00×");
        assert_eq!(fmt_ratio(273.4), "273×");
    }
}
