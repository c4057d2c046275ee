//! Command-line parsing, declared with clap (`--help`, `--version`, short usage errors).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::harness::CHILD_COMMAND;

/// Measures one-way latency (ping-pong between two processes pinned to different CPUs)
/// and throughput of ringcast, the physical floors and kernel IPC transports, and
/// ringcast's fan-out to 1, 2, 4 and 8 subscriber processes.
#[derive(Parser, Debug)]
#[command(
    name = "ringcast-bench",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Short phases and payloads 64 B and 64 KiB (a smoke run).
    #[arg(long)]
    quick: bool,
    /// Write the rows as a JSON array to FILE.
    #[arg(long, value_name = "FILE", value_parser = non_empty)]
    json: Option<String>,
    /// Write SVG charts (latency CDF at 64 B, throughput by payload) into DIR.
    #[arg(long, value_name = "DIR", value_parser = non_empty)]
    plots: Option<String>,
    /// Run only measurements whose label scenario/transport/payload contains SUBSTR (e.g.
    /// pipe, pingpong/tcp, /65536, ringcast, fanout/ringcast-futex/64/8sub); repeat it to
    /// keep those matching any of them.
    #[arg(long, value_name = "SUBSTR", value_parser = non_empty)]
    filter: Vec<String>,
    /// Interleaved rounds per comparison group (default 8, or 2 with --quick): each round
    /// measures every transport at one payload once, and ratios are per-round medians.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    rounds: Option<u32>,
    /// Instead of the suite: the first 1000 messages on fresh topics, with and without
    /// prefault, mlock and huge pages (interleaved trials; --rounds sets their number).
    #[arg(long)]
    cold_start: bool,
    /// Instead of the suite: N topics (default 1000) through two ringcast-bridge
    /// processes on loopback: time until all flow, idle CPU, threads and memory per topic
    /// (against a 10-topic trial in each round; --rounds sets the rounds).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "1000",
          value_parser = clap::value_parser!(u32).range(11..=100_000))]
    bridge_scale: Option<u32>,
    #[command(subcommand)]
    child: Option<Hidden>,
}

/// The re-executed measuring processes' entry point.
#[derive(Subcommand, Debug)]
enum Hidden {
    #[command(name = CHILD_COMMAND, hide = true)]
    Child {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn non_empty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("needs a non-empty value".into())
    } else {
        Ok(s.to_owned())
    }
}

/// Options of a benchmark run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `--quick`.
    pub quick: bool,
    /// `--json FILE`.
    pub json: Option<PathBuf>,
    /// `--plots DIR`.
    pub plots: Option<PathBuf>,
    /// `--filter SUBSTR`, each one given (none: everything).
    pub filter: Vec<String>,
    /// `--rounds N`.
    pub rounds: Option<u32>,
    /// `--cold-start`.
    pub cold_start: bool,
    /// `--bridge-scale [N]`: the number of topics.
    pub bridge_scale: Option<u32>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the suite.
    Run(Options),
    /// The hidden child subcommand, with its arguments.
    Child(Vec<String>),
}

/// Parses the arguments after the program name. `Err` is clap's error, which prints the
/// message (and exits 2 for bad usage, 0 for `--help` / `--version`).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, clap::Error> {
    let argv = std::iter::once(OsString::from("ringcast-bench")).chain(args);
    let cli = Cli::try_parse_from(argv)?;
    Ok(match cli.child {
        Some(Hidden::Child { args }) => Command::Child(args),
        None => Command::Run(Options {
            quick: cli.quick,
            json: cli.json.map(PathBuf::from),
            plots: cli.plots.map(PathBuf::from),
            filter: cli.filter,
            rounds: cli.rounds,
            cold_start: cli.cold_start,
            bridge_scale: cli.bridge_scale,
        }),
    })
}

/// The help text.
#[cfg(test)]
fn usage() -> String {
    <Cli as clap::CommandFactory>::command()
        .render_help()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, clap::Error> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn options_take_separate_or_inline_values() {
        let expected = Options {
            quick: true,
            json: Some("out.json".into()),
            plots: Some("plots".into()),
            filter: vec!["pipe".into(), "tcp".into()],
            rounds: Some(3),
            cold_start: false,
            bridge_scale: None,
        };
        let separate = run(&[
            "--quick", "--json", "out.json", "--plots", "plots", "--filter", "pipe", "--rounds",
            "3", "--filter", "tcp",
        ]);
        assert_eq!(separate.unwrap(), Command::Run(expected.clone()));
        let inline = run(&[
            "--json=out.json",
            "--quick",
            "--plots=plots",
            "--filter=pipe",
            "--rounds=3",
            "--filter=tcp",
        ]);
        assert_eq!(inline.unwrap(), Command::Run(expected));
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(run(&["--json"]).is_err());
        assert!(run(&["--frobnicate"]).is_err());
        assert!(run(&["--quick=yes"]).is_err());
        assert!(run(&["--filter", ""]).is_err());
        assert!(run(&["--rounds", "0"]).is_err());
    }

    #[test]
    fn help_names_every_option() {
        let help = usage();
        for opt in [
            "--quick",
            "--json",
            "--plots",
            "--filter",
            "--rounds",
            "--version",
        ] {
            assert!(help.contains(opt), "{opt} missing from {help}");
        }
        assert!(!help.contains(CHILD_COMMAND));
    }

    #[test]
    fn child_subcommand_only_in_first_position() {
        assert_eq!(
            run(&["__child", "a", "--b"]).unwrap(),
            Command::Child(vec!["a".into(), "--b".into()])
        );
        assert!(run(&["--quick", "__child"]).is_err());
    }
}
