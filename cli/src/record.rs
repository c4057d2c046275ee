//! `ringcast record`: topics into MCAP files (the `mcap` crate); `play` (in
//! [`crate::play`]) reads them back.
//!
//! A recording has one channel per topic and publisher (message encoding `ringcast.raw` or
//! `ringcast.rkyv`, the topic's geometry, policy, type fingerprint and publishers admitted
//! in the channel metadata, and the publisher's id, see [`crate::meta`]; a topic that sent
//! nothing gets one channel without an id), a loss channel `<topic>/ringcast.lost` per
//! topic with one JSON record per `Lagged` report (`"lane"` too on a shared topic), and a
//! closing metadata record `ringcast.recording` with each topic's received and lost counts.
//! Log and publish time are the receive time (ns since the Unix epoch); the MCAP sequence
//! is the low 32 bits of the message's sequence in its publisher's lane.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError as ChanTimeout, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mcap::records::MessageHeader;
use mcap::{Compression, WriteOptions};
use ringcast::inspect::Geometry;
use ringcast::{PublisherId, RecvTimeoutError, Start, Subscriber, SubscriberOptions};

use crate::cli::{CompressionArg, RecordArgs};
use crate::{meta, signal, Failure};

/// What a topic's receiving thread tells the writer.
enum Event {
    Attached {
        topic: usize,
        geometry: Box<Geometry>,
    },
    Message {
        topic: usize,
        seq: u64,
        from: PublisherId,
        time: u64,
        data: Vec<u8>,
    },
    Lost {
        topic: usize,
        lost: u64,
        lane: u32,
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

/// Receives one topic with `opts` until it ends or `stop`, sending everything to the
/// writer.
fn receive(
    prefix: String,
    opts: SubscriberOptions,
    topic: String,
    idx: usize,
    stop: Arc<AtomicBool>,
    tx: SyncSender<Event>,
) {
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
            geometry: Box::new(geometry),
        })
        .is_err()
    {
        return;
    }
    while !stopping() {
        let got = match sub.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => Ok((m.seq(), m.publisher(), m.to_vec())),
            Err(e) => Err(e),
        };
        let event = match got {
            Ok((seq, from, data)) => Event::Message {
                topic: idx,
                seq,
                from,
                time: now_ns(),
                data,
            },
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Lagged(n)) => Event::Lost {
                topic: idx,
                lost: n,
                lane: sub.lagged_lane(),
                // After a `Lagged`, the reader is at the lane that lagged.
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
    /// The topic's description (channel metadata) and message encoding, once attached.
    described: Option<(BTreeMap<String, String>, &'static str)>,
    /// Whether several publishers may share it.
    shared: bool,
    /// The channel of each publisher that sent something.
    channels: HashMap<PublisherId, u16>,
    loss_channel: Option<u16>,
    received: u64,
    lost: u64,
    done: bool,
}

/// Uncompressed message bytes after which the open chunk is closed (and the file flushed),
/// whatever `--chunk-interval` says.
pub(crate) const CHUNK_BYTES: u64 = mcap::WriteOptions::DEFAULT_CHUNK_SIZE;

/// A line on standard error that cannot fail: after SIGHUP the terminal may be gone, and a
/// failed `eprintln!` (a panic) would leave the recording unfinished.
pub(crate) fn note(args: std::fmt::Arguments) {
    let _ = std::io::stderr().write_fmt(args);
}

pub fn record(prefix: &str, mut a: RecordArgs) -> Result<(), Failure> {
    signal::catch_stop_signals();
    // A topic named twice is recorded once: two receivers would write every message twice
    // into the one channel the file has for it.
    let mut seen = std::collections::HashSet::new();
    a.topics.retain(|t| {
        let first = seen.insert(t.clone());
        if !first {
            note(format_args!(
                "ringcast: topic {t:?} is named more than once; recording it once\n"
            ));
        }
        first
    });
    let path = a.output.display().to_string();
    let file =
        std::fs::File::create(&a.output).map_err(|e| Failure(format!("creating {path}: {e}")))?;
    // The same open file, to sync to disk after each chunk: what a power loss leaves is
    // every chunk closed before it, not only what the kernel happened to write back.
    let disk = file
        .try_clone()
        .map_err(|e| Failure(format!("duplicating the descriptor of {path}: {e}")))?;
    let compression = match a.compression {
        CompressionArg::Zstd => Some(Compression::Zstd),
        CompressionArg::Lz4 => Some(Compression::Lz4),
        CompressionArg::None => None,
    };
    let mcap_err = |e: mcap::McapError| Failure(format!("writing {path}: {}", mcap_cause(&e)));
    // Chunks are closed here, on size or on time, each followed by a flush to the file and
    // a sync to disk: what a recorder killed outright (or a power loss) leaves is every
    // closed chunk, readable (see `play`).
    let mut out = WriteOptions::new()
        .chunk_size(None)
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
    let mut opts = a
        .trust
        .apply(SubscriberOptions::default().prefix(prefix).start(start));
    if a.monitor {
        opts = opts.monitor();
    }
    let threads: Vec<_> = a
        .topics
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (p, o, t) = (prefix.to_owned(), opts.clone(), t.clone());
            let (s, tx) = (stop.clone(), tx.clone());
            std::thread::spawn(move || receive(p, o, t, i, s, tx))
        })
        .collect();
    drop(tx);

    let mut tracks: Vec<Track> = a.topics.iter().map(|_| Track::default()).collect();
    let (started, mut total, mut last_progress) = (Instant::now(), 0u64, Instant::now());
    let progress = std::io::stderr().is_terminal();
    let mut failure = None;
    // When the open chunk got its first record, and the message bytes in it.
    let (mut chunk_opened, mut chunk_bytes): (Option<Instant>, u64) = (None, 0);
    let flush_err = |e: mcap::McapError| Failure(format!("writing {path}: {}", mcap_cause(&e)));
    let mut draining = false;
    loop {
        if chunk_opened.is_some_and(|t| t.elapsed() >= a.chunk_interval)
            || chunk_bytes >= CHUNK_BYTES
        {
            out.flush().map_err(flush_err)?;
            disk.sync_data()
                .map_err(|e| Failure(format!("syncing {path} to disk: {e}")))?;
            (chunk_opened, chunk_bytes) = (None, 0);
        }
        let finished = a.count.is_some_and(|c| total >= c)
            || a.duration.is_some_and(|d| started.elapsed() >= d)
            || signal::stopped()
            || tracks.iter().all(|t| t.done);
        if finished && !draining {
            // Stop the receivers and write what they already took from the rings (those
            // messages were released, no publisher keeps them): the loop ends when the last
            // receiver is gone.
            // Relaxed: the threads poll it; the channel orders the rest.
            stop.store(true, Ordering::Relaxed);
            draining = true;
        }
        let wait = match chunk_opened {
            Some(t) => a.chunk_interval.saturating_sub(t.elapsed()),
            None => Duration::from_millis(100),
        };
        let event = match rx.recv_timeout(wait.min(Duration::from_millis(100))) {
            Ok(e) => e,
            Err(ChanTimeout::Timeout) => continue,
            Err(ChanTimeout::Disconnected) => break,
        };
        if !matches!(event, Event::Done { .. }) {
            chunk_opened.get_or_insert_with(Instant::now);
        }
        match event {
            Event::Attached { topic, geometry } => {
                let name = &a.topics[topic];
                let t = &mut tracks[topic];
                // A channel per publisher, added at its first message.
                t.described = Some((meta::to_metadata(&geometry), meta::encoding(&geometry)));
                t.shared = geometry.max_publishers > 1;
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
                from,
                time,
                data,
            } => {
                let t = &mut tracks[topic];
                let Some((md, encoding)) = &t.described else {
                    continue;
                };
                if a.count.is_some_and(|c| total >= c) {
                    continue;
                }
                let channel_id = match t.channels.get(&from) {
                    Some(&c) => c,
                    None => {
                        let md = meta::with_publisher(md, from);
                        let c = out
                            .add_channel(0, &a.topics[topic], encoding, &md)
                            .map_err(mcap_err)?;
                        t.channels.insert(from, c);
                        c
                    }
                };
                let header = MessageHeader {
                    channel_id,
                    sequence: seq as u32,
                    log_time: time,
                    publish_time: time,
                };
                out.write_to_known_channel(&header, &data)
                    .map_err(mcap_err)?;
                chunk_bytes += data.len() as u64;
                t.received += 1;
                total += 1;
            }
            Event::Lost {
                topic,
                lost,
                lane,
                next_seq,
                time,
            } => {
                let t = &mut tracks[topic];
                t.lost += lost;
                let of_lane = match t.shared {
                    true => format!(" of lane {lane}"),
                    false => String::new(),
                };
                note(format_args!(
                    "ringcast: topic {:?}: lost {lost} messages{of_lane} (recorder lagged)\n",
                    a.topics[topic]
                ));
                if let Some(channel_id) = t.loss_channel {
                    let json = match t.shared {
                        true => {
                            format!("{{\"lost\":{lost},\"lane\":{lane},\"next_seq\":{next_seq}}}")
                        }
                        false => format!("{{\"lost\":{lost},\"next_seq\":{next_seq}}}"),
                    };
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
            note(format_args!(
                "\rrecording {path}: {total} messages, {lost} lost, {:.1} s ",
                started.elapsed().as_secs_f64()
            ));
        }
    }
    // Relaxed: the threads poll it; joining them orders the rest.
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    for t in threads {
        let _ = t.join();
    }
    // A topic that sent nothing still gets its channel, without a publisher: `play`
    // re-creates it.
    for (name, t) in a.topics.iter().zip(&tracks) {
        if let (Some((md, encoding)), true) = (&t.described, t.channels.is_empty()) {
            out.add_channel(0, name, encoding, md).map_err(mcap_err)?;
        }
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
        note(format_args!("\n"));
    }
    match failure {
        Some(f) => Err(Failure(f)),
        None => Ok(()),
    }
}

/// What went wrong under an MCAP error: the operating system's error when there is one
/// (`No space left on device`), not only the library's wrapper around it.
fn mcap_cause(e: &mcap::McapError) -> String {
    match e {
        mcap::McapError::Io(io) => io.to_string(),
        e => e.to_string(),
    }
}
