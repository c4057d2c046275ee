//! `ringcast`: the command-line tool. `list`, `inspect`, `pub`, `sub`, `gc`.
//!
//! Exit codes: 0 success, 1 a runtime error (one line naming the topic and the cause),
//! 2 bad usage. The segment prefix comes from `--prefix` or `RINGCAST_PREFIX`.

mod args;
mod pubsub;
mod tools;

use std::process::ExitCode;

use args::{Args, UsageError};

const USAGE: &str = "\
usage: ringcast <command> [options]

commands:
  pub TOPIC [--slots N] [--slot-size B] [--overflow block|overwrite]
            [--wait-subscribers N] [--mode OCTAL] [--stall-timeout-ms MS]
      publish each line of standard input as one message; exit at end of input
      (default overflow: block, so every attached subscriber gets every line;
      with --stall-timeout-ms a subscriber that stalls the publisher that long
      is evicted instead of waited for)
  sub TOPIC [--count N] [--from latest|oldest] [--timeout SECS]
      wait for the topic, print each message as one line; exit 0 after N messages
      or when the publisher is gone, non-zero at the timeout
  list                      topics under the prefix, with publisher state
  inspect TOPIC [--json]    geometry, liveness, cursors and each subscriber's lag
  gc                        remove segments whose publisher is dead

common options:
  --prefix P                segment prefix (default: $RINGCAST_PREFIX or 'ringcast')
  -h, --help                this text
";

/// A runtime failure: printed as one line, exit code 1.
pub struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

fn run(argv: Vec<String>) -> Result<Result<(), Failure>, UsageError> {
    let mut args = Args::new(argv);
    if args.flag("-h") || args.flag("--help") {
        print!("{USAGE}");
        return Ok(Ok(()));
    }
    let prefix = args
        .value("--prefix")?
        .or_else(|| std::env::var("RINGCAST_PREFIX").ok())
        .unwrap_or_else(|| ringcast::name::DEFAULT_PREFIX.to_owned());
    let command = args.positional("command")?;
    match command.as_str() {
        "pub" => pubsub::publish(&mut args, &prefix),
        "sub" => pubsub::subscribe(&mut args, &prefix),
        "list" => tools::list(&mut args, &prefix),
        "inspect" => tools::inspect(&mut args, &prefix),
        "gc" => tools::gc(&mut args, &prefix),
        other => Err(UsageError(format!("unknown command {other:?}"))),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Contract: never a panic exit (101). A panic here is a bug; report it as a runtime
    // error rather than break callers' exit-code handling.
    let outcome = std::panic::catch_unwind(|| run(argv));
    match outcome {
        Ok(Ok(Ok(()))) => ExitCode::SUCCESS,
        Ok(Ok(Err(Failure(msg)))) => {
            eprintln!("ringcast: {msg}");
            ExitCode::from(1)
        }
        Ok(Err(UsageError(msg))) => {
            eprintln!("ringcast: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(_) => {
            eprintln!("ringcast: internal error (a bug: please report it)");
            ExitCode::from(1)
        }
    }
}
