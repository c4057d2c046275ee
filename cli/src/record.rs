//! `ringcast record` and `ringcast play`: topics to and from MCAP files (the `mcap` crate).
//!
//! A recording has one channel per topic (message encoding `ringcast.raw` or
//! `ringcast.rkyv`, the topic's geometry, policy and type fingerprint in the channel
//! metadata, see [`crate::meta`]), a loss channel `<topic>/ringcast.lost` per topic with
//! one JSON record per `Lagged` report, and a closing metadata record `ringcast.recording`
//! with each topic's received and lost counts. Log and publish time are the receive time
//! (ns since the Unix epoch); the MCAP sequence is the low 32 bits of ringcast's sequence.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, IsTerminal, Read, Seek, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError as ChanTimeout, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mcap::records::{op, MessageHeader, Record};
use mcap::sans_io::linear_reader::{LinearReadEvent, LinearReader, LinearReaderOptions};
use mcap::{Compression, WriteOptions};
use ringcast::inspect::Geometry;
use ringcast::{
    Publisher, PublisherConfig, RecvTimeoutError, Start, Subscriber, SubscriberOptions,
};

use crate::cli::{CompressionArg, PlayArgs, RecordArgs};
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

/// Uncompressed message bytes after which the open chunk is closed (and the file flushed),
/// whatever `--chunk-interval` says.
const CHUNK_BYTES: u64 = mcap::WriteOptions::DEFAULT_CHUNK_SIZE;

/// A line on standard error that cannot fail: after SIGHUP the terminal may be gone, and a
/// failed `eprintln!` (a panic) would leave the recording unfinished.
fn note(args: std::fmt::Arguments) {
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
    let mcap_err = |e: mcap::McapError| Failure(format!("writing {path}: {e}"));
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
    let flush_err = |e: mcap::McapError| Failure(format!("writing {path}: {e}"));
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
                if a.count.is_some_and(|c| total >= c) {
                    continue;
                }
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
                next_seq,
                time,
            } => {
                let t = &mut tracks[topic];
                t.lost += lost;
                note(format_args!(
                    "ringcast: topic {:?}: lost {lost} messages (recorder lagged)\n",
                    a.topics[topic]
                ));
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

/// A recording read record by record from its file (the `mcap` crate's sans-io reader):
/// memory stays at about one chunk whatever the file's size. Chunk CRCs are checked before
/// any of a chunk's messages is handed out, so a chunk cut short by a crash yields nothing
/// rather than part of itself.
struct RecordingReader {
    file: std::io::BufReader<std::fs::File>,
    reader: LinearReader,
    path: String,
}

/// One record of a recording that `play` cares about.
enum Item {
    Channel(mcap::records::Channel),
    /// A message, its bytes in the caller's buffer.
    Message {
        channel: u16,
        log_time: u64,
    },
}

/// How much is asked of the file at a time, whatever the reader hints (a hostile length
/// then costs what the file really holds, not what it claims).
const READ_BYTES: usize = 1 << 20;

impl RecordingReader {
    /// Opens `path`; refuses at once a file that is empty or does not start like MCAP.
    /// Records longer than `limit` are refused as the reader meets them.
    fn open(path: &std::path::Path, limit: u64) -> Result<RecordingReader, Failure> {
        let shown = path.display().to_string();
        let mut file =
            std::fs::File::open(path).map_err(|e| Failure(format!("reading {shown}: {e}")))?;
        let mut magic = [0u8; 8];
        let mut got = 0;
        while got < magic.len() {
            match file.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Failure(format!("reading {shown}: {e}"))),
            }
        }
        if got < mcap::MAGIC.len() || magic[..] != *mcap::MAGIC {
            let what = if got == 0 {
                "an empty file"
            } else {
                "not an MCAP file"
            };
            return Err(Failure(format!(
                "{shown}: {what} (no MCAP magic at the start)"
            )));
        }
        file.seek(std::io::SeekFrom::Start(0))
            .map_err(|e| Failure(format!("reading {shown}: {e}")))?;
        let options = LinearReaderOptions::default()
            .with_validate_chunk_crcs(true)
            .with_prevalidate_chunk_crcs(true)
            .with_record_length_limit(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(RecordingReader {
            file: std::io::BufReader::with_capacity(READ_BYTES, file),
            reader: LinearReader::new_with_options(options),
            path: shown,
        })
    }

    /// The next channel or message (its bytes copied into `data`); `Ok(None)` at the end of
    /// a complete file; `Err` with the reader's message where the file stops making sense
    /// (cut short, corrupt).
    fn next(&mut self, data: &mut Vec<u8>) -> Result<Option<Item>, String> {
        loop {
            let event = match self.reader.next_event() {
                None => return Ok(None),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(event)) => event,
            };
            match event {
                LinearReadEvent::ReadRequest(want) => {
                    let buf = self.reader.insert(want.clamp(1, READ_BYTES));
                    let n = loop {
                        match self.file.read(buf) {
                            Ok(n) => break n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(format!("reading {}: {e}", self.path)),
                        }
                    };
                    self.reader.notify_read(n);
                }
                LinearReadEvent::Record { data: body, opcode } => {
                    if opcode != op::CHANNEL && opcode != op::MESSAGE {
                        continue;
                    }
                    match mcap::parse_record(opcode, body).map_err(|e| e.to_string())? {
                        Record::Channel(c) => return Ok(Some(Item::Channel(c))),
                        Record::Message {
                            header,
                            data: bytes,
                        } => {
                            data.clear();
                            data.extend_from_slice(&bytes);
                            return Ok(Some(Item::Message {
                                channel: header.channel_id,
                                log_time: header.log_time,
                            }));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// What a first pass over a recording found.
struct Scan {
    channels: BTreeMap<u16, mcap::records::Channel>,
    /// Messages readable from the start, in order.
    messages: u64,
}

/// Reads the whole recording once: its channels, its readable messages, and whether it is
/// complete. A file that is cut short or corrupt is refused unless `allow_truncated`, and
/// then reported on standard error.
fn scan(path: &std::path::Path, limit: u64, allow_truncated: bool) -> Result<Scan, Failure> {
    let mut reader = RecordingReader::open(path, limit)?;
    let shown = reader.path.clone();
    let mut scan = Scan {
        channels: BTreeMap::new(),
        messages: 0,
    };
    let mut data = Vec::new();
    let broken = loop {
        match reader.next(&mut data) {
            Ok(None) => break None,
            Ok(Some(Item::Message { .. })) => scan.messages += 1,
            Ok(Some(Item::Channel(c))) => match scan.channels.get(&c.id) {
                Some(known) if *known != c => {
                    return Err(Failure(format!(
                        "{shown}: channel {} is defined twice, as topic {:?} and as {:?}: \
                         the file is corrupt or was not written by ringcast record",
                        c.id, known.topic, c.topic
                    )))
                }
                Some(_) => {}
                None => {
                    scan.channels.insert(c.id, c);
                }
            },
            Err(e) => break Some(e),
        }
    };
    if let Some(e) = broken {
        let messages = scan.messages;
        if !allow_truncated {
            return Err(Failure(format!(
                "{shown}: the file is truncated ({messages} complete messages are readable; \
                 then: {e}); --allow-truncated plays those"
            )));
        }
        note(format_args!(
            "ringcast: {shown}: the file is truncated; playing its {messages} complete \
             messages (then: {e})\n"
        ));
    }
    Ok(scan)
}

/// The page size, for the segment sizes `play` would create.
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).unwrap_or(4096).max(4096)
}

/// The recorded topics `play` will re-create, by channel id, checked before any is created:
/// each channel's metadata must describe a valid topic, a topic recorded on several
/// channels must have one description, and all of them together must fit `max_shm`.
fn plan(
    prefix: &str,
    path: &str,
    scan: &Scan,
    only: &[String],
    max_shm: u64,
) -> Result<Plan, Failure> {
    let mut plan = Plan {
        publishers: HashMap::new(),
        topics: Vec::new(),
    };
    let mut configs: Vec<(String, u16, &BTreeMap<String, String>, PublisherConfig)> = Vec::new();
    let mut total = 0u64;
    for ch in scan.channels.values() {
        if !(ch.message_encoding == meta::RAW_ENCODING
            || ch.message_encoding == meta::RKYV_ENCODING)
            || (!only.is_empty() && !only.contains(&ch.topic))
        {
            continue;
        }
        if let Some(i) = configs.iter().position(|(t, ..)| *t == ch.topic) {
            let (_, first, metadata, _) = &configs[i];
            if **metadata != ch.metadata {
                return Err(Failure(format!(
                    "{path}: topic {:?} is recorded on channels {first} and {} with different \
                     geometry or types; it cannot be re-created as one topic",
                    ch.topic, ch.id
                )));
            }
            plan.publishers.insert(ch.id, i);
            continue;
        }
        let cfg = meta::to_config(&ch.metadata)
            .map_err(|e| Failure(format!("{path}: channel {:?}: {e}", ch.topic)))?
            .prefix(prefix);
        let geometry = Geometry::compute(cfg.segment(), page_size(), 0)
            .map_err(|e| Failure(format!("{path}: channel {:?}: {e}", ch.topic)))?;
        total = total.saturating_add(geometry.total_size);
        if total > max_shm {
            return Err(Failure(format!(
                "{path}: topic {:?} needs a shared-memory segment of {} bytes ({} slots of {} \
                 bytes), which brings the recording to {total} bytes, over the limit of {max_shm} \
                 bytes; if the file is trusted, pass --max-segment-size {total} (or more)",
                ch.topic, geometry.total_size, geometry.slot_count, geometry.slot_capacity
            )));
        }
        plan.publishers.insert(ch.id, configs.len());
        configs.push((ch.topic.clone(), ch.id, &ch.metadata, cfg));
    }
    if let Some(missing) = only.iter().find(|t| !configs.iter().any(|(n, ..)| n == *t)) {
        return Err(Failure(format!("{path}: no recorded topic {missing:?}")));
    }
    for (topic, _, _, cfg) in configs {
        let publisher = Publisher::create(&topic, cfg)
            .map_err(|e| Failure(format!("{path}: re-creating topic {topic:?}: {e}")))?;
        plan.topics.push((topic, publisher));
    }
    Ok(plan)
}

/// A recording's channels that `play` re-creates, by channel id.
struct Plan {
    publishers: HashMap<u16, usize>,
    topics: Vec<(String, Publisher)>,
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

/// The longest record `play` reads: a message never exceeds its topic's slot, which the
/// segment limit bounds, and a chunk holds about one `CHUNK_BYTES` of messages more.
fn record_limit(max_shm: u64) -> u64 {
    // The core's largest slot payload (1 GiB).
    const MAX_SLOT_BYTES: u64 = 1 << 30;
    max_shm.min(MAX_SLOT_BYTES).saturating_add(4 * CHUNK_BYTES)
}

pub fn play(prefix: &str, a: PlayArgs) -> Result<(), Failure> {
    signal::catch_stop_signals();
    let path = a.file.display().to_string();
    let limit = record_limit(a.max_segment_size);
    let scan = scan(&a.file, limit, a.allow_truncated)?;
    let mut plan = plan(prefix, &path, &scan, &a.topics, a.max_segment_size)?;
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
    let mut data = Vec::new();
    loop {
        let mut reader = RecordingReader::open(&a.file, limit)?;
        let (start, mut first) = (Instant::now(), None);
        // The first pass's count: a file that changed since stops where it stopped then.
        for _ in 0..scan.messages {
            let (channel, log_time) = loop {
                match reader.next(&mut data) {
                    Ok(Some(Item::Message { channel, log_time })) => break (channel, log_time),
                    Ok(Some(Item::Channel(_))) => {}
                    Ok(None) | Err(_) => {
                        return Err(Failure(format!(
                            "{path}: the file changed while it was played"
                        )))
                    }
                }
            };
            let Some(&i) = plan.publishers.get(&channel) else {
                continue;
            };
            if a.rate > 0.0 {
                let t0 = *first.get_or_insert(log_time);
                let offset = log_time.saturating_sub(t0) as f64 / a.rate;
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
                    Ok(mut loan) if data.len() <= loan.len() => {
                        loan.write_at(0, &data);
                        loan.commit(data.len());
                        break;
                    }
                    Ok(_) => {
                        return Err(Failure(format!(
                        "topic {topic:?}: a recorded message of {} bytes does not fit the topic",
                        data.len()
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
