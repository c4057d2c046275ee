//! Command-line parsing (hand-rolled: four options do not need a parser crate).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::harness::CHILD_COMMAND;

/// The usage text, printed for `--help` and, with exit code 2, for bad arguments.
pub const USAGE: &str = "\
usage: ringcast-bench [--quick] [--json FILE] [--plots DIR] [--filter SUBSTR]

Measures one-way latency (ping-pong between two processes pinned to different
CPUs) and throughput of ringcast, the physical floors and kernel IPC
transports, and ringcast's fan-out to 1, 2, 4 and 8 subscriber processes.

  --quick          short phases and payloads 64 B and 64 KiB (a smoke run)
  --json FILE      write the rows as a JSON array to FILE
  --plots DIR      write SVG charts (latency CDF at 64 B, throughput by payload)
  --filter SUBSTR  run only measurements whose label scenario/transport/payload
                   contains SUBSTR (e.g. pipe, pingpong/tcp, /65536,
                   ringcast, fanout/ringcast-futex/64/8sub)
  -h, --help       print this help
";

/// Options of a benchmark run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `--quick`.
    pub quick: bool,
    /// `--json FILE`.
    pub json: Option<PathBuf>,
    /// `--plots DIR`.
    pub plots: Option<PathBuf>,
    /// `--filter SUBSTR`.
    pub filter: Option<String>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the suite.
    Run(Options),
    /// Print the usage and exit 0.
    Help,
    /// The hidden child subcommand, with its arguments.
    Child(Vec<String>),
}

/// Parses the arguments after the program name. `Err` carries a one-line reason.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut args = args.into_iter().map(|a| {
        a.into_string()
            .map_err(|a| format!("argument is not UTF-8: {}", a.to_string_lossy()))
    });
    let mut opts = Options::default();
    let mut first = true;
    while let Some(arg) = args.next() {
        let arg = arg?;
        if first && arg == CHILD_COMMAND {
            return args.collect::<Result<_, _>>().map(Command::Child);
        }
        first = false;
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        let mut value = |opt: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().ok_or_else(|| format!("{opt} needs a value"))?,
            }
            .and_then(|v| {
                if v.is_empty() {
                    Err(format!("{opt} needs a non-empty value"))
                } else {
                    Ok(v)
                }
            })
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--quick" if inline.is_none() => opts.quick = true,
            "--json" => opts.json = Some(value("--json")?.into()),
            "--plots" => opts.plots = Some(value("--plots")?.into()),
            "--filter" => opts.filter = Some(value("--filter")?),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Command::Run(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn options_take_separate_or_inline_values() {
        let expected = Options {
            quick: true,
            json: Some("out.json".into()),
            plots: Some("plots".into()),
            filter: Some("pipe".into()),
        };
        let separate = run(&[
            "--quick", "--json", "out.json", "--plots", "plots", "--filter", "pipe",
        ]);
        assert_eq!(separate, Ok(Command::Run(expected.clone())));
        let inline = run(&[
            "--json=out.json",
            "--quick",
            "--plots=plots",
            "--filter=pipe",
        ]);
        assert_eq!(inline, Ok(Command::Run(expected)));
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(run(&["--json"]).is_err());
        assert!(run(&["--frobnicate"]).is_err());
        assert!(run(&["--quick=yes"]).is_err());
        assert!(run(&["--filter", ""]).is_err());
    }

    #[test]
    fn child_subcommand_only_in_first_position() {
        assert_eq!(
            run(&["__child", "a", "b"]),
            Ok(Command::Child(vec!["a".into(), "b".into()]))
        );
        assert!(run(&["--quick", "__child"]).is_err());
    }
}
