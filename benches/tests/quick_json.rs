//! Runs the real binary in `--quick` mode on one transport and checks the JSON
//! rows against the benchmark contract (README) (for `pipe`, and for `ringcast-spin`
//! with its loan-path note), and the usage exit code.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ringcast-bench");

const FIELDS: [&str; 10] = [
    "scenario",
    "transport",
    "payload_bytes",
    "subscribers",
    "p50_ns",
    "p99_ns",
    "p999_ns",
    "max_ns",
    "msgs_per_s",
    "bytes_per_s",
];

/// A scratch path unique to this test process, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(format!("ringcast-bench-{}-{name}", std::process::id())))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn number(row: &Value, field: &str) -> f64 {
    row[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} should be a number in {row}"))
}

#[test]
fn quick_pipe_run_writes_contract_rows_and_plots() {
    let json = Scratch::new("rows.json");
    let plots = Scratch::new("plots");
    let out = Command::new(BIN)
        .args(["--quick", "--filter", "pipe", "--json"])
        .arg(&json.0)
        .arg("--plots")
        .arg(&plots.0)
        .output()
        .expect("run ringcast-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}, stderr:\n{stderr}",
        out.status
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("| vs floor | vs best baseline |"),
        "table:\n{table}"
    );

    let text = std::fs::read_to_string(&json.0).expect("read the JSON file");
    let rows: Vec<Value> = serde_json::from_str(&text).expect("JSON array of rows");
    let expected: BTreeSet<&str> = FIELDS.into_iter().collect();
    let mut scenarios = BTreeSet::new();
    for row in &rows {
        let keys: BTreeSet<&str> = row
            .as_object()
            .expect("row is an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, expected, "field set of {row}");
        assert_eq!(row["transport"], "pipe");
        assert_eq!(row["subscribers"], 1);
        assert!(row["payload_bytes"].as_u64().is_some_and(|p| p >= 8));
        let scenario = row["scenario"].as_str().expect("scenario is a string");
        scenarios.insert(scenario.to_owned());
        match scenario {
            "pingpong" => {
                let [p50, p99, p999, max] =
                    ["p50_ns", "p99_ns", "p999_ns", "max_ns"].map(|f| number(row, f));
                assert!(
                    0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
                    "{row}"
                );
                assert!(
                    row["msgs_per_s"].is_null() && row["bytes_per_s"].is_null(),
                    "{row}"
                );
            }
            "throughput" => {
                let (msgs, bytes) = (number(row, "msgs_per_s"), number(row, "bytes_per_s"));
                assert!(msgs > 0.0 && bytes > 0.0, "{row}");
                let payload = row["payload_bytes"].as_f64().expect("payload");
                assert!((bytes - msgs * payload).abs() <= 1e-6 * bytes, "{row}");
                assert!(row["p50_ns"].is_null() && row["max_ns"].is_null(), "{row}");
            }
            other => panic!("unexpected scenario {other}"),
        }
    }
    let both: BTreeSet<String> = ["pingpong".into(), "throughput".into()].into();
    assert_eq!(scenarios, both, "rows:\n{text}\nstderr:\n{stderr}");

    for chart in ["latency_cdf_64B.svg", "throughput_by_payload.svg"] {
        let svg = std::fs::read_to_string(plots.0.join(chart)).expect("chart written");
        assert!(svg.contains("<svg") && svg.contains("pipe"), "{chart}");
    }
}

#[test]
fn quick_ringcast_spin_run_writes_both_scenarios_and_the_loan_path_note() {
    let json = Scratch::new("ringcast.json");
    let out = Command::new(BIN)
        .args(["--quick", "--filter", "ringcast-spin", "--json"])
        .arg(&json.0)
        .output()
        .expect("run ringcast-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}, stderr:\n{stderr}",
        out.status
    );
    if stderr.contains("needs two CPUs") {
        // A one-CPU machine skips spinning rows by design: nothing to check.
        return;
    }
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("ringcast latency rows use the loan path"),
        "table:\n{table}"
    );
    let text = std::fs::read_to_string(&json.0).expect("read the JSON file");
    let rows: Vec<Value> = serde_json::from_str(&text).expect("JSON array of rows");
    let mut seen = BTreeSet::new();
    for row in &rows {
        assert_eq!(
            row.as_object().map(|o| o.len()),
            Some(FIELDS.len()),
            "{row}"
        );
        assert_eq!(row["transport"], "ringcast-spin");
        assert_eq!(row["subscribers"], 1);
        let figure = match row["scenario"].as_str() {
            Some("pingpong") => "p50_ns",
            Some("throughput") => "msgs_per_s",
            other => panic!("unexpected scenario {other:?}"),
        };
        assert!(number(row, figure) > 0.0, "{row}");
        seen.insert((
            row["scenario"].to_string(),
            row["payload_bytes"].to_string(),
        ));
    }
    // Both quick payloads in both scenarios, and ping-pong at 4 KiB (a reference of
    // `ringcast-rpc`).
    assert_eq!(seen.len(), 5, "rows:\n{text}\nstderr:\n{stderr}");
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let out = Command::new(BIN)
        .arg("--no-such-option")
        .output()
        .expect("run ringcast-bench");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Usage: ringcast-bench") && err.contains("--help"),
        "{err}"
    );
}
