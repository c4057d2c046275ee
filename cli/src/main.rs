//! `ringcast`: the command-line tool for ringcast topics.
//!
//! Exit codes: 0 success, 1 a runtime error (one line naming the topic and the cause),
//! 2 bad usage (clap's message, pointing at `--help`). Never a panic (101). The segment
//! prefix comes from `--prefix` or `RINGCAST_PREFIX`.

mod cli;
mod meta;
mod play;
mod pubsub;
mod rate;
mod record;
mod service;
mod signal;
mod svcview;
mod tools;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// A runtime failure: printed as one line, exit code 1.
pub struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let prefix = cli.prefix;
    match cli.command {
        Command::Pub(a) => pubsub::publish(&prefix, a),
        Command::Sub(a) => pubsub::subscribe(&prefix, a),
        Command::List => tools::list(&prefix),
        Command::Inspect(a) => tools::inspect(&prefix, a),
        Command::Gc => tools::gc(&prefix),
        Command::Record(a) => record::record(&prefix, a),
        Command::Play(a) => play::play(&prefix, a),
        Command::Hz(a) => rate::hz(&prefix, a),
        Command::Top(a) => rate::top(&prefix, a),
        Command::Call(a) => service::call(&prefix, a),
        Command::Serve(a) => service::serve(&prefix, a),
        Command::Completions { shell } => {
            cli::completions(shell);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    // Usage errors exit 2 and `--help` / `--version` exit 0, both through clap.
    let cli = Cli::parse();
    // Contract: never a panic exit (101). A panic here is a bug; report it as a runtime
    // error rather than break callers' exit-code handling.
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        // Never `eprintln!` here: with standard error gone (a closed terminal after SIGHUP)
        // it would panic, and exit 101.
        Ok(Err(Failure(msg))) => {
            let _ = writeln!(std::io::stderr(), "ringcast: {msg}");
            ExitCode::from(1)
        }
        Err(_) => {
            let _ = writeln!(
                std::io::stderr(),
                "ringcast: internal error (a bug: please report it)"
            );
            ExitCode::from(1)
        }
    }
}
