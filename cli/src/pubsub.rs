//! `ringcast pub` and `ringcast sub`.

use std::io::Write;
use std::time::{Duration, Instant};

use ringcast::{
    CreateError, Publisher, PublisherConfig, PublisherId, RecvTimeoutError, Start, Subscriber,
    SubscriberOptions,
};

use crate::cli::{Format, FromArg, PubArgs, SubArgs};
use crate::Failure;

pub fn publish(prefix: &str, a: PubArgs) -> Result<(), Failure> {
    let mut cfg = PublisherConfig::default()
        .prefix(prefix)
        .overflow(a.overflow.into())
        .mode(a.mode);
    if let Some(n) = a.slots {
        cfg = cfg.slots(n);
    }
    if let Some(b) = a.slot_size {
        cfg = cfg.slot_size(b);
    }
    if let Some(ms) = a.stall_timeout_ms {
        cfg = cfg.stall_timeout(Duration::from_millis(ms));
    }
    if let Some(n) = a.max_publishers {
        cfg = cfg.max_publishers(n);
    }
    let publisher = match Publisher::create(&a.topic, cfg) {
        Ok(p) => p,
        Err(CreateError::Mismatch {
            field: "max publishers",
            existing,
            ..
        }) if a.max_publishers.is_none() => {
            return Err(Failure(format!(
                "topic {:?} exists with max publishers {existing}, this publisher asks for 1: \
                 pass --max-publishers {existing} (and the topic's configuration) to join it",
                a.topic
            )))
        }
        Err(e) => return Err(e.into()),
    };
    run_publisher(&a.topic, publisher, a.wait_subscribers)
}

fn run_publisher(
    topic: &str,
    mut publisher: Publisher,
    wait_subs: Option<usize>,
) -> Result<(), Failure> {
    if let Some(n) = wait_subs {
        while publisher
            .wait_for_subscribers(n, Duration::from_secs(3600))
            .is_err()
        {}
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let capacity = publisher.capacity();
    let mut number = 0u64;
    loop {
        // Held only up to the slot size: an endless line is read past, not kept.
        let read = crate::tools::read_line(&mut input, capacity)
            .map_err(|e| Failure(format!("topic {topic:?}: reading standard input: {e}")))?;
        let Some(line) = read else {
            return Ok(());
        };
        number += 1;
        let line = line.map_err(|len| {
            Failure(format!(
                "topic {topic:?}: line {number}: {len} bytes do not fit a {capacity}-byte slot"
            ))
        })?;
        publisher
            .send(&line)
            .map_err(|e| Failure(format!("topic {topic:?}: line {number}: {e}")))?;
    }
}

pub fn subscribe(prefix: &str, a: SubArgs) -> Result<(), Failure> {
    let start = match a.from {
        FromArg::Latest => Start::Latest,
        FromArg::Oldest => Start::Oldest,
    };
    // A timeout too large to represent means no deadline (never an overflow panic).
    let deadline = a.timeout.and_then(|t| Instant::now().checked_add(t));
    let mut opts = a
        .trust
        .apply(SubscriberOptions::default().prefix(prefix).start(start));
    if a.monitor {
        opts = opts.monitor();
    }
    run_subscriber(&a.topic, opts, a.count, deadline, a.format)
}

fn run_subscriber(
    topic: &str,
    opts: SubscriberOptions,
    count: Option<u64>,
    deadline: Option<Instant>,
    format: Format,
) -> Result<(), Failure> {
    let remaining = |d: Option<Instant>| match d {
        Some(d) => d.saturating_duration_since(Instant::now()),
        None => Duration::from_secs(u32::MAX as u64),
    };
    let mut sub = Subscriber::attach_wait(topic, opts, remaining(deadline))?;
    // A shared topic's messages say whose they are (`--json`), and so do its losses.
    let shared = sub.geometry().max_publishers > 1;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    // Each message is copied here and its slot released before anything is written: a
    // write can block (a full pipe, a pager, a stopped reader), and a `Block` sample held
    // across it would pin the publisher even past its stall timeout, since a stall timeout
    // never takes back a slot read in place. Reused, so no allocation per message.
    let mut copy: Vec<u8> = Vec::new();
    // An imported topic's losses before its bridge (counted since the topic was created):
    // reported as they grow, as a lag is.
    let mut upstream = sub.upstream_lost();
    while count.is_none_or(|c| printed < c) {
        // Flush before we might sleep, not per line.
        if !sub.has_news() && flush(&mut out)? {
            return Ok(());
        }
        let got = match sub.recv_timeout(remaining(deadline)) {
            Ok(sample) => {
                copy.clear();
                copy.extend_from_slice(&sample);
                Ok((sample.seq(), sample.publisher()))
            }
            Err(e) => Err(e),
        };
        match got {
            Ok((seq, from)) => {
                let now = sub.upstream_lost();
                if now > upstream {
                    let _ = writeln!(
                        std::io::stderr(),
                        "ringcast: topic {topic:?}: lost {} messages upstream (before the bridge that imports it)",
                        now - upstream
                    );
                    upstream = now;
                }
                let from = shared.then_some(from);
                if write_message(&mut out, seq, from, &copy, format)? {
                    return Ok(());
                }
                printed += 1;
            }
            Err(RecvTimeoutError::Lagged(n)) if shared => {
                let lane = sub.lagged_lane();
                // Never a panic for a closed standard error.
                let _ = writeln!(
                    std::io::stderr(),
                    "ringcast: topic {topic:?}: lost {n} messages of lane {lane} (subscriber lagged)"
                );
            }
            Err(RecvTimeoutError::Lagged(n)) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "ringcast: topic {topic:?}: lost {n} messages (subscriber lagged)"
                );
            }
            Err(RecvTimeoutError::Disconnected) if sub.closed_by_publisher() => break,
            Err(RecvTimeoutError::Disconnected) => {
                let _ = flush(&mut out);
                return Err(Failure(format!(
                    "topic {topic:?}: its publisher died without closing the topic, after \
                     {printed} messages (every message it published was printed)"
                )));
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = flush(&mut out);
                return Err(Failure(format!(
                    "topic {topic:?}: timed out after {printed} messages"
                )));
            }
            Err(e @ RecvTimeoutError::Corrupt { .. }) => {
                let _ = writeln!(std::io::stderr(), "ringcast: topic {topic:?}: {e}");
            }
            Err(e @ RecvTimeoutError::Evicted) => {
                return Err(Failure(format!("topic {topic:?}: {e}")))
            }
        }
    }
    flush(&mut out)?;
    Ok(())
}

/// Writes one message in `format` (a line of its bytes by default). `from` is its
/// publisher on a shared topic (`None` on an exclusive one), which `--json` shows as
/// `"publisher":"lane/writer"`. `Ok(true)` if the reader went away (broken pipe), which
/// ends `sub` quietly, as `head` users expect.
fn write_message(
    out: &mut impl Write,
    seq: u64,
    from: Option<PublisherId>,
    bytes: &[u8],
    format: Format,
) -> Result<bool, Failure> {
    let written = if format.raw {
        out.write_all(bytes)
    } else if format.hex {
        write_hex(out, bytes).and_then(|()| out.write_all(b"\n"))
    } else if format.json {
        match from {
            Some(from) => write!(out, "{{\"seq\":{seq},\"publisher\":\"{from}\","),
            None => write!(out, "{{\"seq\":{seq},"),
        }
        .and_then(|()| write!(out, "\"len\":{},\"data_hex\":\"", bytes.len()))
        .and_then(|()| write_hex(out, bytes))
        .and_then(|()| out.write_all(b"\"}\n"))
    } else {
        out.write_all(bytes).and_then(|()| out.write_all(b"\n"))
    };
    crate::tools::reader_gone(written)
}

fn write_hex(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    for b in bytes {
        write!(out, "{b:02x}")?;
    }
    Ok(())
}

fn flush(out: &mut impl Write) -> Result<bool, Failure> {
    crate::tools::reader_gone(out.flush())
}
