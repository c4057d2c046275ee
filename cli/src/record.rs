//! `ringcast record` and `ringcast play`: topics to and from MCAP files (the `mcap` crate).
//!
//! A recording has one channel per topic (message encoding `ringcast.raw` or
//! `ringcast.rkyv`, the topic's geometry, policy and type fingerprint in the channel
//! metadata, see [`crate::meta`]), a loss channel `<topic>/ringcast.lost` per topic with
//! one JSON record per `Lagged` report, and a closing metadata record `ringcast.recording`
//! with each topic's received and lost counts. Log and publish time are the receive time
//! (ns since the Unix epoch); the MCAP sequence is the low 32 bits of ringcast's sequence.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError as ChanTimeout, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mcap::records::MessageHeader;
use mcap::{Compression, WriteOptions};
use ringcast::inspect::Geometry;
use ringcast::{Publisher, RecvTimeoutError, Start, Subscriber, SubscriberOptions};

use crate::cli::{CompressionArg, PlayArgs, RecordArgs};
use crate::{meta, signal, Failure};

/// What a topic's receiving thread tells the writer.
enum Event {
    Attached {
        topic: usize,
        geometry: Geometry,
    },
    Message {
        topic: usize,
        seq: u64,
        time: u64,
        data: Vec<u8>,
    },
    Lost {
        topic: usize,
        lost: u64,
        next_seq: u64,
        time: u64,
    },
    Done {
        topic: usize,
        why: Option<String>,
    },
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Receives one topic until it ends or `stop`, sending everything to the writer.
fn receive(
    prefix: String,
    topic: String,
    idx: usize,
    start: Start,
    stop: Arc<AtomicBool>,
    tx: SyncSender<Event>,
) {
    let opts = SubscriberOptions::default().prefix(&prefix).start(start);
    let end = |why: Option<String>| {
        let _ = tx.send(Event::Done { topic: idx, why });
    };
    // Relaxed: a stop flag; the channel orders everything else.
    let stopping = || stop.load(Ordering::Relaxed);
    let mut sub = loop {
        if stopping() {
            return end(None);
        }
        match Subscriber::attach_wait(&topic, opts.clone(), Duration::from_millis(100)) {
            Ok(s) => break s,
            Err(
                ringcast::AttachError::NotFound { .. } | ringcast::AttachError::NotReady { .. },
            )
            | Err(ringcast::AttachError::Closed { .. }) => continue,
            Err(e) => return end(Some(e.to_string())),
        }
    };
    let geometry = match ringcast::inspect::inspect(&prefix, &topic) {
        Ok(info) => info.geometry,
        Err(e) => return end(Some(e.to_string())),
    };
    if tx
        .send(Event::Attached {
            topic: idx,
            geometry,
        })
        .is_err()
    {
        return;
    }
    while !stopping() {
        let got = match sub.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => Ok((m.seq(), m.to_vec())),
            Err(e) => Err(e),
        };
        let event = match got {
            Ok((seq, data)) => Event::Message {
                topic: idx,
                seq,
                time: now_ns(),
                data,
            },
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Lagged(n)) => Event::Lost {
                topic: idx,
                lost: n,
                next_seq: sub.next_seq(),
                time: now_ns(),
            },
            Err(RecvTimeoutError::Disconnected) => return end(None),
            Err(e) => return end(Some(e.to_string())),
        };
        if tx.send(event).is_err() {
            return;
        }
    }
    end(None)
}

/// One recorded topic, as the writer sees it.
#[derive(Default)]
struct Track {
    channel: Option<u16>,
    loss_channel: Option<u16>,
    received: u64,
    lost: u64,
    done: bool,
}

pub fn record(prefix: &str, a: RecordArgs) -> Result<(), Failure> {
    signal::catch_stop_signals();
    let path = a.output.display().to_string();
    let file =
        std::fs::File::create(&a.output).map_err(|e| Failure(format!("creating {path}: {e}")))?;
    let compression = match a.compression {
        CompressionArg::Zstd => Some(Compression::Zstd),
        CompressionArg::Lz4 => Some(Compression::Lz4),
        CompressionArg::None => None,
    };
    let mcap_err = |e: mcap::McapError| Failure(format!("writing {path}: {e}"));
    let mut out = WriteOptions::new()
        .compression(compression)
        .profile("ringcast")
        .library(concat!("ringcast-cli ", env!("CARGO_PKG_VERSION")))
        .create(BufWriter::new(file))
        .map_err(mcap_err)?;

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = sync_channel(4096);
    let start = if a.from_oldest {
        Start::Oldest
    } else {
        Start::Latest
    };
    let threads: Vec<_> = a
        .topics
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (p, t, s, tx) = (prefix.to_owned(), t.clone(), stop.clone(), tx.clone());
            std::thread::spawn(move || receive(p, t, i, start, s, tx))
        })
        .collect();
    drop(tx);

    let mut tracks: Vec<Track> = a.topics.iter().map(|_| Track::default()).collect();
    let (started, mut total, mut last_progress) = (Instant::now(), 0u64, Instant::now());
    let progress = std::io::stderr().is_terminal();
    let mut failure = None;
    loop {
        let finished = a.count.is_some_and(|c| total >= c)
            || a.duration.is_some_and(|d| started.elapsed() >= d)
            || signal::stopped()
            || tracks.iter().all(|t| t.done);
        if finished {
            break;
        }
        let event = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(e) => e,
            Err(ChanTimeout::Timeout) => continue,
            Err(ChanTimeout::Disconnected) => break,
        };
        match event {
            Event::Attached { topic, geometry } => {
                let name = &a.topics[topic];
                let md = meta::to_metadata(&geometry);
                let t = &mut tracks[topic];
                t.channel = Some(
                    out.add_channel(0, name, meta::encoding(&geometry), &md)
                        .map_err(mcap_err)?,
                );
                t.loss_channel = Some(
                    out.add_channel(
                        0,
                        &format!("{name}{}", meta::LOSS_SUFFIX),
                        meta::LOSS_ENCODING,
                        &BTreeMap::new(),
                    )
                    .map_err(mcap_err)?,
                );
            }
            Event::Message {
                topic,
                seq,
                time,
                data,
            } => {
                let t = &mut tracks[topic];
                let Some(channel_id) = t.channel else {
                    continue;
                };
                let header = MessageHeader {
                    channel_id,
                    sequence: seq as u32,
                    log_time: time,
                    publish_time: time,
                };
                out.write_to_known_channel(&header, &data)
                    .map_err(mcap_err)?;
                t.received += 1;
                total += 1;
            }
            Event::Lost {
                topic,
                lost,
                next_seq,
                time,
            } => {
                let t = &mut tracks[topic];
                t.lost += lost;
                eprintln!(
                    "ringcast: topic {:?}: lost {lost} messages (recorder lagged)",
                    a.topics[topic]
                );
                if let Some(channel_id) = t.loss_channel {
                    let json = format!("{{\"lost\":{lost},\"next_seq\":{next_seq}}}");
                    let header = MessageHeader {
                        channel_id,
                        sequence: 0,
                        log_time: time,
                        publish_time: time,
                    };
                    out.write_to_known_channel(&header, json.as_bytes())
                        .map_err(mcap_err)?;
                }
            }
            Event::Done { topic, why } => {
                tracks[topic].done = true;
                if let Some(why) = why {
                    failure = Some(format!("topic {:?}: {why}", a.topics[topic]));
                }
            }
        }
        if progress && last_progress.elapsed() >= Duration::from_millis(250) {
            last_progress = Instant::now();
            let lost: u64 = tracks.iter().map(|t| t.lost).sum();
            eprint!(
                "\rrecording {path}: {total} messages, {lost} lost, {:.1} s ",
                started.elapsed().as_secs_f64()
            );
        }
    }
    // Relaxed: the threads poll it; joining them orders the rest.
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    for t in threads {
        let _ = t.join();
    }
    let summary: BTreeMap<String, String> = a
        .topics
        .iter()
        .zip(&tracks)
        .flat_map(|(name, t)| {
            [
                (format!("{name}.received"), t.received.to_string()),
                (format!("{name}.lost"), t.lost.to_string()),
            ]
        })
        .collect();
    out.write_metadata(&mcap::records::Metadata {
        name: "ringcast.recording".to_owned(),
        metadata: summary,
    })
    .map_err(mcap_err)?;
    out.finish().map_err(mcap_err)?;
    let mut file = out.into_inner();
    file.flush()
        .map_err(|e| Failure(format!("writing {path}: {e}")))?;
    if progress {
        eprintln!();
    }
    match failure {
        Some(f) => Err(Failure(f)),
        None => Ok(()),
    }
}

/// A recording's channels that `play` can re-create, by channel id.
struct Plan {
    publishers: HashMap<u16, usize>,
    topics: Vec<(String, Publisher)>,
}

/// Checks that `buf` is a complete MCAP file (or, with `allow_truncated`, that its
/// complete part is readable) and returns how many messages it holds.
fn check_file(path: &str, buf: &[u8], allow_truncated: bool) -> Result<u64, Failure> {
    if !buf.starts_with(mcap::MAGIC) {
        let what = if buf.is_empty() {
            "an empty file"
        } else {
            "not an MCAP file"
        };
        return Err(Failure(format!(
            "{path}: {what} (no MCAP magic at the start)"
        )));
    }
    let opts = mcap::read::Options::IgnoreEndMagic.into();
    let stream = mcap::MessageStream::new_with_options(buf, opts)
        .map_err(|e| Failure(format!("{path}: {e}")))?;
    let (mut messages, mut broken) = (0u64, None);
    for m in stream {
        match m {
            Ok(_) => messages += 1,
            Err(e) => {
                broken = Some(e.to_string());
                break;
            }
        }
    }
    let complete =
        broken.is_none() && buf.len() >= 2 * mcap::MAGIC.len() && buf.ends_with(mcap::MAGIC);
    if !complete && !allow_truncated {
        let how = broken.map_or(String::from("it has no end"), |e| format!("then: {e}"));
        return Err(Failure(format!(
            "{path}: the file is truncated ({messages} complete messages are readable; {how}); \
             --allow-truncated plays those"
        )));
    }
    Ok(messages)
}

fn plan(prefix: &str, path: &str, buf: &[u8], only: &[String]) -> Result<Plan, Failure> {
    let opts = mcap::read::Options::IgnoreEndMagic.into();
    let stream = mcap::MessageStream::new_with_options(buf, opts)
        .map_err(|e| Failure(format!("{path}: {e}")))?;
    let mut plan = Plan {
        publishers: HashMap::new(),
        topics: Vec::new(),
    };
    for m in stream.map_while(Result::ok) {
        let ch = &m.channel;
        if plan.publishers.contains_key(&ch.id)
            || !(ch.message_encoding == meta::RAW_ENCODING
                || ch.message_encoding == meta::RKYV_ENCODING)
            || (!only.is_empty() && !only.contains(&ch.topic))
        {
            continue;
        }
        let cfg = meta::to_config(&ch.metadata)
            .map_err(|e| Failure(format!("{path}: channel {:?}: {e}", ch.topic)))?
            .prefix(prefix);
        let publisher = Publisher::create(&ch.topic, cfg)?;
        plan.publishers.insert(ch.id, plan.topics.len());
        plan.topics.push((ch.topic.clone(), publisher));
    }
    if let Some(missing) = only
        .iter()
        .find(|t| !plan.topics.iter().any(|(n, _)| n == *t))
    {
        return Err(Failure(format!("{path}: no recorded topic {missing:?}")));
    }
    Ok(plan)
}

/// Sleeps until `at`, in short naps so that a stop signal is noticed; false if stopped.
fn sleep_until(at: Instant) -> bool {
    loop {
        if signal::stopped() {
            return false;
        }
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

pub fn play(prefix: &str, a: PlayArgs) -> Result<(), Failure> {
    signal::catch_stop_signals();
    let path = a.file.display().to_string();
    let buf = std::fs::read(&a.file).map_err(|e| Failure(format!("reading {path}: {e}")))?;
    check_file(&path, &buf, a.allow_truncated)?;
    let mut plan = plan(prefix, &path, &buf, &a.topics)?;
    if let Some(n) = a.wait_subscribers {
        for (topic, p) in &mut plan.topics {
            while p
                .wait_for_subscribers(n, Duration::from_millis(100))
                .is_err()
            {
                if signal::stopped() {
                    return Err(Failure(format!(
                        "topic {topic:?}: interrupted waiting for subscribers"
                    )));
                }
            }
        }
    }
    loop {
        let opts = mcap::read::Options::IgnoreEndMagic.into();
        let stream = mcap::MessageStream::new_with_options(&buf, opts)
            .map_err(|e| Failure(format!("{path}: {e}")))?;
        let (start, mut first) = (Instant::now(), None);
        for m in stream.map_while(Result::ok) {
            let Some(&i) = plan.publishers.get(&m.channel.id) else {
                continue;
            };
            if a.rate > 0.0 {
                let t0 = *first.get_or_insert(m.log_time);
                let offset = m.log_time.saturating_sub(t0) as f64 / a.rate;
                let at = start + Duration::from_nanos(offset.min(u64::MAX as f64) as u64);
                if !sleep_until(at) {
                    return Ok(());
                }
            }
            let (topic, p) = &mut plan.topics[i];
            loop {
                if signal::stopped() {
                    return Ok(());
                }
                match p.loan_timeout(Duration::from_millis(100)) {
                    Ok(mut loan) if m.data.len() <= loan.len() => {
                        loan.write_at(0, &m.data);
                        loan.commit(m.data.len());
                        break;
                    }
                    Ok(_) => {
                        return Err(Failure(format!(
                        "topic {topic:?}: a recorded message of {} bytes does not fit the topic",
                        m.data.len()
                    )))
                    }
                    Err(ringcast::Full) => {}
                }
            }
        }
        if !a.repeat || signal::stopped() {
            return Ok(());
        }
    }
}
