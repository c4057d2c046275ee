//! `ringcast-bench`: the ringcast benchmark suite.
//!
//! Measures, between two processes pinned to different CPUs:
//! * `pingpong`: one-way latency (round trip / 2) at several payload sizes,
//!   into HDR histograms (p50, p99, p99.9, max);
//! * `throughput`: messages and bytes per second from one producer to one
//!   consumer, with a single-core `memcpy` row as the reference;
//! * `fanout`: one ringcast publisher to 1, 2, 4 and 8 subscriber processes:
//!   one-way latency to each subscriber and delivered messages per second;
//!
//! for ringcast (`ringcast-spin`, `ringcast-futex`, `ringcast-overwrite`, on
//! the zero-copy loan path: see `transport::ringcast`), the physical floors
//! (`floor`: a cache line bounced between two spinning cores; `futex-floor`:
//! the same with a futex sleep and wake per message) and the kernel IPC
//! baselines (`pipe`, `uds-stream`, `uds-dgram`, `tcp`, `mqueue`); and the service rows
//! (`ringcast-rpc`, `ringcast-rpc-1`, `ringcast-rpc-4`: calls through a ringcast `Server`
//! and `Client`, see `transport::rpc`). It prints a
//! progress line per measurement on stderr, a Markdown table on stdout, and
//! optionally JSON rows (`--json`, the row format the README's benchmark contract fixes) and SVG
//! charts (`--plots`).
//!
//! Ratios are interleaved: [`rounds`] alternates every transport compared at one payload in
//! short rounds and reports the median of the per-round ratios, with their spread.
//!
//! Layout: [`cli`] parses arguments; [`suite`] plans measurements and runs one;
//! [`rounds`] runs the plan in interleaved rounds;
//! [`harness`] pins CPUs and owns the child process (this binary re-executed
//! with the hidden `__child` subcommand); [`transport`] holds one module per
//! transport family behind the `Transport`/`Endpoint` traits; [`scenario`]
//! holds the timed loops; [`report`] and [`plots`] turn results into output.
//!
//! Exit codes: 0 success (skipped rows included), 1 a runtime failure (no CPU
//! to pin to, a report that could not be written), 2 bad usage.

mod bridgescale;
mod cli;
mod coldstart;
mod error;
mod harness;
mod plots;
mod report;
mod rounds;
mod scenario;
mod suite;
mod transport;

use std::process::ExitCode;
use std::time::Instant;

use crate::cli::{Command, Options};
use crate::error::Result;
use crate::harness::Cpus;
use crate::scenario::Timing;
use crate::suite::{Config, FULL_PAYLOADS, QUICK_PAYLOADS};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        // clap prints the help, the version or a short usage error (exit 0 or 2).
        Err(e) => e.exit(),
    };
    match command {
        Command::Child(args) => match match args.split_first() {
            Some((role, rest)) if role == "cold" => coldstart::child_main(rest),
            _ => suite::child_main(&args),
        } {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringcast-bench child: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run(opts) => match run(&opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringcast-bench: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(opts: &Options) -> Result<()> {
    if opts.cold_start {
        let cpus = Cpus::choose()?;
        harness::pin_to(cpus.parent)?;
        let trials = opts.rounds.map_or(coldstart::TRIALS, |n| n as usize);
        return coldstart::run(cpus, trials);
    }
    if let Some(topics) = opts.bridge_scale {
        let rounds = opts.rounds.map_or(bridgescale::ROUNDS, |n| n as usize);
        let trials = bridgescale::run(topics as usize, rounds)?;
        if let Some(path) = &opts.json {
            let text = serde_json::to_string_pretty(&trials)
                .map_err(|e| error::BenchError::Protocol(e.to_string()))?;
            std::fs::write(path, text).map_err(|e| error::BenchError::sys("write the JSON", e))?;
        }
        return Ok(());
    }
    let cfg = Config {
        payloads: if opts.quick {
            QUICK_PAYLOADS
        } else {
            FULL_PAYLOADS
        }
        .to_vec(),
        timing: if opts.quick {
            Timing::QUICK
        } else {
            Timing::FULL
        },
        filter: opts.filter.clone(),
    };
    let plan = suite::plan(&cfg);
    if plan.is_empty() {
        eprintln!("ringcast-bench: no measurement matches the filter");
    }
    // Segments of an earlier run that was killed (its publishers are dead).
    match transport::ringcast::collect_garbage() {
        Ok(0) => {}
        Ok(n) => eprintln!("ringcast-bench: removed {n} stale ringcast segments of a killed run"),
        Err(e) => eprintln!("ringcast-bench: warning: {e}"),
    }
    let cpus = Cpus::choose()?;
    if !cpus.distinct() {
        eprintln!(
            "ringcast-bench: warning: only CPU {} is available; both processes share it",
            cpus.parent
        );
    }
    harness::pin_to(cpus.parent)?;
    eprintln!(
        "ringcast-bench: {} measurements, parent on CPU {}, child on CPU {}",
        plan.len(),
        cpus.parent,
        cpus.child
    );

    let rounds = opts.rounds.map_or(
        if opts.quick {
            rounds::QUICK_ROUNDS
        } else {
            rounds::FULL_ROUNDS
        },
        |n| n as usize,
    );
    eprintln!("ringcast-bench: {rounds} interleaved rounds per payload group");
    let started = Instant::now();
    let (results, ratios) = rounds::run(&plan, &cfg.timing, cpus, rounds);
    eprintln!(
        "ringcast-bench: {} of {} measurements done in {:.1} s",
        results.len(),
        plan.len(),
        started.elapsed().as_secs_f64()
    );

    print!("{}", report::markdown(&results));
    print!("{}", rounds::markdown(&ratios));
    if let Some(path) = &opts.json {
        report::write_json(path, &results)?;
        eprintln!("ringcast-bench: wrote {}", path.display());
    }
    if let Some(dir) = &opts.plots {
        for path in plots::write_all(dir, &results)? {
            eprintln!("ringcast-bench: wrote {}", path.display());
        }
    }
    Ok(())
}
