//! `ringcast pub` and `ringcast sub`.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use ringcast::{
    Overflow, Publisher, PublisherConfig, RecvTimeoutError, Start, Subscriber, SubscriberOptions,
};

use crate::args::{Args, UsageError};
use crate::Failure;

type Outcome = Result<Result<(), Failure>, UsageError>;

pub fn publish(args: &mut Args, prefix: &str) -> Outcome {
    let slots: Option<u64> = args.parsed("--slots")?;
    let slot_size: Option<u64> = args.parsed("--slot-size")?;
    let overflow = match args.value("--overflow")?.as_deref() {
        None | Some("block") => Overflow::Block,
        Some("overwrite") => Overflow::Overwrite,
        Some(o) => {
            return Err(UsageError(format!(
                "--overflow: {o:?} is not block|overwrite"
            )))
        }
    };
    let wait_subs: Option<usize> = args.parsed("--wait-subscribers")?;
    let stall_ms: Option<u64> = args.parsed("--stall-timeout-ms")?;
    let mode = match args.value("--mode")? {
        None => 0o600,
        Some(m) => u32::from_str_radix(&m, 8)
            .map_err(|_| UsageError(format!("--mode: {m:?} is not octal")))?,
    };
    let topic = crate::args::topic(args)?;
    std::mem::replace(args, Args::new(vec![])).finish()?;

    let mut cfg = PublisherConfig::default()
        .prefix(prefix)
        .overflow(overflow)
        .mode(mode);
    if let Some(n) = slots {
        cfg = cfg.slots(n);
    }
    if let Some(b) = slot_size {
        cfg = cfg.slot_size(b);
    }
    if let Some(ms) = stall_ms {
        cfg = cfg.stall_timeout(Duration::from_millis(ms));
    }
    Ok(run_publisher(&topic, cfg, wait_subs))
}

fn run_publisher(
    topic: &str,
    cfg: PublisherConfig,
    wait_subs: Option<usize>,
) -> Result<(), Failure> {
    let mut publisher = Publisher::create(topic, cfg)?;
    if let Some(n) = wait_subs {
        while publisher
            .wait_for_subscribers(n, Duration::from_secs(3600))
            .is_err()
        {}
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| Failure(format!("topic {topic:?}: reading standard input: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        publisher
            .send(&line)
            .map_err(|e| Failure(format!("topic {topic:?}: line {number}: {e}")))?;
    }
}

pub fn subscribe(args: &mut Args, prefix: &str) -> Outcome {
    let count: Option<u64> = args.parsed("--count")?;
    let start = match args.value("--from")?.as_deref() {
        None | Some("latest") => Start::Latest,
        Some("oldest") => Start::Oldest,
        Some(o) => return Err(UsageError(format!("--from: {o:?} is not latest|oldest"))),
    };
    let timeout: Option<f64> = args.parsed("--timeout")?;
    if timeout.is_some_and(|t| !(t >= 0.0 && t.is_finite())) {
        return Err(UsageError(
            "--timeout must be a non-negative number of seconds".into(),
        ));
    }
    let topic = crate::args::topic(args)?;
    std::mem::replace(args, Args::new(vec![])).finish()?;
    // A timeout too large to represent means no deadline (never an overflow panic).
    let deadline = timeout
        .and_then(|t| Duration::try_from_secs_f64(t).ok())
        .and_then(|t| Instant::now().checked_add(t));
    let opts = SubscriberOptions::default().prefix(prefix).start(start);
    Ok(run_subscriber(&topic, opts, count, deadline))
}

fn run_subscriber(
    topic: &str,
    opts: SubscriberOptions,
    count: Option<u64>,
    deadline: Option<Instant>,
) -> Result<(), Failure> {
    let remaining = |d: Option<Instant>| match d {
        Some(d) => d.saturating_duration_since(Instant::now()),
        None => Duration::from_secs(u32::MAX as u64),
    };
    let mut sub = Subscriber::attach_wait(topic, opts, remaining(deadline))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    while count.is_none_or(|c| printed < c) {
        // Flush before we might sleep, not per line.
        if !sub.has_news() && flush(&mut out)? {
            return Ok(());
        }
        let got = sub.recv_timeout(remaining(deadline));
        match got {
            Ok(sample) => {
                if write_line(&mut out, &sample)? {
                    return Ok(());
                }
                printed += 1;
            }
            Err(RecvTimeoutError::Lagged(n)) => {
                eprintln!("ringcast: topic {topic:?}: lost {n} messages (subscriber lagged)");
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = flush(&mut out);
                return Err(Failure(format!(
                    "topic {topic:?}: timed out after {printed} messages"
                )));
            }
            Err(e @ RecvTimeoutError::Corrupt { .. }) => {
                eprintln!("ringcast: topic {topic:?}: {e}");
            }
            Err(e @ RecvTimeoutError::Evicted) => {
                return Err(Failure(format!("topic {topic:?}: {e}")))
            }
        }
    }
    flush(&mut out)?;
    Ok(())
}

/// Writes one message and a newline. `Ok(true)` if the reader went away (broken pipe),
/// which ends `sub` quietly, as `head` users expect.
fn write_line(out: &mut impl Write, bytes: &[u8]) -> Result<bool, Failure> {
    match out.write_all(bytes).and_then(|()| out.write_all(b"\n")) {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(Failure(format!("writing standard output: {e}"))),
    }
}

fn flush(out: &mut impl Write) -> Result<bool, Failure> {
    match out.flush() {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(Failure(format!("writing standard output: {e}"))),
    }
}
