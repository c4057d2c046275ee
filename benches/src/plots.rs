//! `--plots DIR`: SVG charts drawn with `plotters`' pure-Rust SVG backend.
//!
//! * `latency_cdf_64B.svg`: one-way latency CDF of every transport at 64 B
//!   (plus the payload-independent floors), log-scaled latency axis.
//! * `throughput_by_payload.svg`: bytes/s against payload size per transport,
//!   both axes log-scaled, with `memcpy` as the single-core reference.
//!
//! Text is emitted as SVG `<text>` and laid out with plotters' built-in width
//! estimate, so no font library is needed at build or run time.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::error::{BenchError, Result};
use crate::report::{fmt_bytes, fmt_ns, Measured};
use crate::scenario::Scenario;

/// Bytes in a MiB, the throughput chart's unit.
const MIB: f64 = (1u64 << 20) as f64;

/// Payload of the latency CDF chart.
const CDF_PAYLOAD: u64 = 64;

/// Writes both charts into `dir` (created if missing). A chart with no data
/// (e.g. filtered out) is skipped with a note on stderr.
pub fn write_all(dir: &Path, results: &[Measured]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| BenchError::Report(format!("create {}: {e}", dir.display())))?;
    let mut written = Vec::new();
    let charts: [(&str, ChartFn); 2] = [
        ("latency_cdf_64B.svg", latency_cdf),
        ("throughput_by_payload.svg", throughput_by_payload),
    ];
    for (file, draw) in charts {
        let path = dir.join(file);
        match draw(&path, results) {
            Ok(true) => written.push(path),
            Ok(false) => eprintln!("plots: no data for {file}; not written"),
            Err(e) => return Err(BenchError::Report(format!("{}: {e}", path.display()))),
        }
    }
    Ok(written)
}

/// Draws one chart; `Ok(false)` when there is nothing to draw.
type ChartFn = fn(&Path, &[Measured]) -> std::result::Result<bool, Box<dyn Error>>;

fn latency_cdf(path: &Path, results: &[Measured]) -> std::result::Result<bool, Box<dyn Error>> {
    let series: Vec<(String, &[(f64, f64)])> = results
        .iter()
        .filter(|m| m.row.scenario == Scenario::PingPong.name())
        .filter(|m| m.row.payload_bytes == CDF_PAYLOAD || m.payload_independent)
        .filter_map(|m| {
            let label = if m.payload_independent {
                format!("{} (any payload)", m.row.transport)
            } else {
                m.row.transport.clone()
            };
            m.cdf.as_deref().map(|c| (label, c))
        })
        .collect();
    let xs = series.iter().flat_map(|(_, c)| c.iter().map(|p| p.0));
    let Some((lo, hi)) = bounds(xs) else {
        return Ok(false);
    };

    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("ping-pong one-way latency CDF, 64 B", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((lo / 1.2..hi * 1.2).log_scale(), 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_desc("one-way latency (log scale)")
        .y_desc("fraction of messages at or below")
        .x_label_formatter(&|v| fmt_ns(*v))
        .draw()?;
    for (i, (label, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(true)
}

fn throughput_by_payload(
    path: &Path,
    results: &[Measured],
) -> std::result::Result<bool, Box<dyn Error>> {
    let mut by_transport: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for m in results
        .iter()
        .filter(|m| m.row.scenario == Scenario::Throughput.name())
    {
        if let Some(b) = m.row.bytes_per_s.filter(|b| *b > 0.0) {
            by_transport
                .entry(m.row.transport.as_str())
                .or_default()
                .push((m.row.payload_bytes as f64, b / MIB));
        }
    }
    let xs = by_transport.values().flatten().map(|p| p.0);
    let ys = by_transport.values().flatten().map(|p| p.1);
    let (Some((x_lo, x_hi)), Some((y_lo, y_hi))) = (bounds(xs), bounds(ys)) else {
        return Ok(false);
    };
    // Ticks at the measured payloads (powers of two), not at powers of ten.
    let mut payloads: Vec<f64> = by_transport.values().flatten().map(|p| p.0).collect();
    payloads.sort_by(f64::total_cmp);
    payloads.dedup();

    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "throughput by payload, one producer to one consumer",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (x_lo / 1.5..x_hi * 1.5)
                .log_scale()
                .with_key_points(payloads),
            (y_lo / 2.0..y_hi * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("payload (log scale)")
        .y_desc("MiB per second (log scale)")
        .x_label_formatter(&|v| fmt_bytes(v.round() as usize))
        .y_label_formatter(&|v| {
            if *v >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .draw()?;
    for (i, (transport, points)) in by_transport.iter_mut().enumerate() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(*transport)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(true)
}

/// Lowest and highest positive value, if any.
fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}
