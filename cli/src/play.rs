//! `ringcast play`: re-creates the topics of an MCAP recording made by `ringcast record`
//! and republishes it with its timing.
//!
//! The file is read twice, streamed (memory of about one chunk): a first pass finds its
//! channels, its complete messages and where each channel's messages start and end; the
//! second republishes. Each recorded topic is created with its geometry, policy, type
//! fingerprint and the publishers it admits (see [`crate::meta`]). Each recorded publisher
//! of a shared topic (one per channel id, see `meta::PUBLISHER_KEY`) is republished
//! through a publisher of its own, which joins the topic at its first message; once its
//! last message is out it stays until its lane is needed by a later recorded publisher
//! (never leaving the topic without a publisher, which would end it). Subscribers of the
//! replay thus see as many distinct publishers as the recording had, each with its
//! messages in order, and the messages of all of them in the recorded order.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};
use std::time::{Duration, Instant};

use mcap::records::{op, Record};
use mcap::sans_io::linear_reader::{LinearReadEvent, LinearReader, LinearReaderOptions};
use ringcast::inspect::Geometry;
use ringcast::{Publisher, PublisherConfig};

use crate::cli::PlayArgs;
use crate::record::{note, CHUNK_BYTES};
use crate::{meta, signal, Failure};

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
                    if opcode == op::CHANNEL && !channel_lengths_fit(body) {
                        return Err("a channel record's lengths run past its end".to_owned());
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

/// Whether every length inside a channel record's `body` (its topic, its message
/// encoding, its metadata map and each key and value in it) stays within the record. The
/// `mcap` crate reserves a string's claimed length before reading it, so a corrupt length
/// (one flipped byte) would ask for up to 4 GiB: such a record is refused first.
fn channel_lengths_fit(body: &[u8]) -> bool {
    /// The `u32` length at `at`, and where what it measures starts, if both fit.
    fn measured(body: &[u8], at: usize) -> Option<(usize, usize)> {
        let word = body.get(at..at.checked_add(4)?)?;
        let len = u32::from_le_bytes(word.try_into().ok()?) as usize;
        let start = at + 4;
        (start.checked_add(len)? <= body.len()).then_some((len, start))
    }
    let walk = || -> Option<()> {
        // id, schema id (u16 each), then the topic and the encoding.
        let (len, start) = measured(body, 4)?;
        let (len, start) = measured(body, start + len)?;
        let (map_len, map_start) = measured(body, start + len)?;
        let map_end = map_start + map_len;
        let mut at = map_start;
        while at < map_end {
            let (k, after_key) = measured(&body[..map_end], at)?;
            let (v, after_value) = measured(&body[..map_end], after_key + k)?;
            at = after_value + v;
        }
        Some(())
    };
    walk().is_some()
}

/// What a first pass over a recording found.
struct Scan {
    channels: BTreeMap<u16, mcap::records::Channel>,
    /// Messages readable from the start, in order.
    messages: u64,
    /// Each channel's first and last message: their indices among `messages`.
    spans: HashMap<u16, (u64, u64)>,
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
        spans: HashMap::new(),
    };
    let mut data = Vec::new();
    let broken = loop {
        match reader.next(&mut data) {
            Ok(None) => break None,
            Ok(Some(Item::Message { channel, .. })) => {
                let i = scan.messages;
                scan.spans
                    .entry(channel)
                    .and_modify(|(_, last)| *last = i)
                    .or_insert((i, i));
                scan.messages += 1;
            }
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

/// A publisher of the recording: the messages of one (topic, publisher id) in the file.
struct Recorded {
    /// Indices of its first and last message in the file (`u64::MAX, 0`: none).
    first: u64,
    last: u64,
    /// The replay publisher (an index into its topic's `replayers`) serving it now.
    replay: Option<usize>,
}

/// A publisher of the replay.
struct Replayer {
    publisher: Publisher,
    /// The recorded publisher it republishes now; `None` once that one's last message is
    /// out (its lane may then be given to another).
    serves: Option<usize>,
}

/// One topic the replay re-creates.
struct Topic {
    name: String,
    cfg: PublisherConfig,
    /// Publishers the topic admits at once (1: exclusive).
    max_publishers: u64,
    /// Its recorded publishers.
    recorded: Vec<Recorded>,
    /// Its replay publishers, at indices that never change (`None`: one that left).
    replayers: Vec<Option<Replayer>>,
}

impl Topic {
    fn live(&self) -> usize {
        self.replayers.iter().filter(|p| p.is_some()).count()
    }

    /// A new publisher of the topic (the first creates it, the others join it) at index
    /// `at` of `replayers` (or a new one).
    fn join(&mut self, path: &str, at: Option<usize>) -> Result<usize, Failure> {
        let topic = &self.name;
        let publisher = Publisher::create(topic, self.cfg.clone())
            .map_err(|e| Failure(format!("{path}: re-creating topic {topic:?}: {e}")))?;
        let replayer = Some(Replayer {
            publisher,
            serves: None,
        });
        Ok(match at {
            Some(k) => {
                self.replayers[k] = replayer;
                k
            }
            None => {
                self.replayers.push(replayer);
                self.replayers.len() - 1
            }
        })
    }

    /// The replay publisher of recorded publisher `r`: a new one at `r`'s first message.
    fn replayer_for(&mut self, path: &str, r: usize) -> Result<&mut Publisher, Failure> {
        let k = match self.recorded[r].replay {
            Some(k) => k,
            None => {
                let live = self.live();
                let idle = self
                    .replayers
                    .iter()
                    .position(|p| p.as_ref().is_some_and(|p| p.serves.is_none()));
                let k = if (live as u64) < self.max_publishers {
                    let free = self.replayers.iter().position(Option::is_none);
                    self.join(path, free)?
                } else if let (Some(k), true) = (idle, live > 1) {
                    // Every lane is taken: one whose recorded publisher is done leaves (the
                    // others keep the topic alive) and a new publisher takes a lane.
                    self.replayers[k] = None;
                    self.join(path, Some(k))?
                } else {
                    // An exclusive topic's one publisher (its leaving would end the topic),
                    // or more recorded publishers at once than the topic admits (a file
                    // `record` does not write): share one.
                    match idle.or_else(|| self.replayers.iter().position(Option::is_some)) {
                        Some(k) => k,
                        None => self.join(path, None)?,
                    }
                };
                if let Some(p) = &mut self.replayers[k] {
                    p.serves.get_or_insert(r);
                }
                self.recorded[r].replay = Some(k);
                k
            }
        };
        match &mut self.replayers[k] {
            Some(p) => Ok(&mut p.publisher),
            // Never: a slot is emptied only to be filled again at once by `join` (whose
            // failure ends `play`).
            None => Err(Failure(format!(
                "{path}: topic {:?}: internal error: a replay publisher is missing",
                self.name
            ))),
        }
    }

    /// Recorded publisher `r`'s message `i` is out: after its last, its replay publisher is
    /// free to leave for another.
    fn sent(&mut self, r: usize, i: u64) {
        if i < self.recorded[r].last {
            return;
        }
        if let Some(k) = self.recorded[r].replay.take() {
            if let Some(p) = &mut self.replayers[k] {
                if p.serves == Some(r) {
                    p.serves = None;
                }
            }
        }
    }

    /// A new pass over the file (`--loop`): every recorded publisher starts again. The
    /// publishers already there serve the ones that start first, so a looped replay keeps
    /// its publishers (an exclusive topic its one): as at their first messages, since
    /// every later one starts after them.
    fn restart(&mut self) {
        for r in &mut self.recorded {
            r.replay = None;
        }
        for p in self.replayers.iter_mut().flatten() {
            p.serves = None;
        }
        let mut order: Vec<usize> = (0..self.recorded.len())
            .filter(|&r| self.recorded[r].first != u64::MAX)
            .collect();
        order.sort_by_key(|&r| self.recorded[r].first);
        let live = self
            .replayers
            .iter_mut()
            .enumerate()
            .filter_map(|(k, p)| Some((k, p.as_mut()?)));
        for (&r, (k, p)) in order.iter().zip(live) {
            p.serves = Some(r);
            self.recorded[r].replay = Some(k);
        }
    }

    /// A live publisher of the topic (to wait for subscribers on).
    fn any(&mut self) -> Option<&mut Publisher> {
        self.replayers
            .iter_mut()
            .flatten()
            .next()
            .map(|p| &mut p.publisher)
    }
}

/// The recorded topics `play` re-creates.
struct Plan {
    /// By channel id: its topic (an index into `topics`) and recorded publisher.
    channels: HashMap<u16, (usize, usize)>,
    topics: Vec<Topic>,
}

/// The topics `play` will re-create, checked before any is created: each channel's metadata
/// must describe a valid topic, the channels of one topic must describe it alike (they
/// differ only in the publisher), and all topics together must fit `max_shm`. Each topic
/// is then created by the publisher of its first recorded message.
fn plan(
    prefix: &str,
    path: &str,
    scan: &Scan,
    only: &[String],
    max_shm: u64,
) -> Result<Plan, Failure> {
    let mut plan = Plan {
        channels: HashMap::new(),
        topics: Vec::new(),
    };
    // Per topic: the channel that described it first, and its recorded publishers' keys.
    let mut described: Vec<(u16, &BTreeMap<String, String>)> = Vec::new();
    let mut keys: Vec<Vec<Option<&str>>> = Vec::new();
    let mut total = 0u64;
    for ch in scan.channels.values() {
        if !(ch.message_encoding == meta::RAW_ENCODING
            || ch.message_encoding == meta::RKYV_ENCODING)
            || (!only.is_empty() && !only.contains(&ch.topic))
        {
            continue;
        }
        let t = match plan.topics.iter().position(|t| t.name == ch.topic) {
            Some(t) => {
                let (first, metadata) = described[t];
                if meta::topic_part(metadata) != meta::topic_part(&ch.metadata) {
                    return Err(Failure(format!(
                        "{path}: topic {:?} is recorded on channels {first} and {} with \
                         different geometry or types; it cannot be re-created as one topic",
                        ch.topic, ch.id
                    )));
                }
                t
            }
            None => {
                let bad = |e: String| Failure(format!("{path}: channel {:?}: {e}", ch.topic));
                let max_publishers = meta::max_publishers(&ch.metadata).map_err(bad)?;
                let cfg = meta::to_config(&ch.metadata).map_err(bad)?.prefix(prefix);
                let geometry = Geometry::compute(cfg.segment(), page_size(), 0)
                    .map_err(|e| bad(e.to_string()))?;
                total = total.saturating_add(geometry.total_size);
                if total > max_shm {
                    return Err(Failure(format!(
                        "{path}: topic {:?} needs a shared-memory segment of {} bytes ({} \
                         slots of {} bytes{}), which brings the recording to {total} bytes, \
                         over the limit of {max_shm} bytes; if the file is trusted, pass \
                         --max-segment-size {total} (or more)",
                        ch.topic,
                        geometry.total_size,
                        geometry.slot_count,
                        geometry.slot_capacity,
                        match max_publishers {
                            1 => String::new(),
                            n => format!(" for each of {n} publishers"),
                        }
                    )));
                }
                plan.topics.push(Topic {
                    name: ch.topic.clone(),
                    cfg,
                    max_publishers,
                    recorded: Vec::new(),
                    replayers: Vec::new(),
                });
                described.push((ch.id, &ch.metadata));
                keys.push(Vec::new());
                plan.topics.len() - 1
            }
        };
        // Channels without a publisher (an older recording) are all one publisher.
        let key = meta::publisher(&ch.metadata);
        let topic = &mut plan.topics[t];
        let r = match keys[t].iter().position(|k| *k == key) {
            Some(r) => r,
            None => {
                keys[t].push(key);
                topic.recorded.push(Recorded {
                    first: u64::MAX,
                    last: 0,
                    replay: None,
                });
                topic.recorded.len() - 1
            }
        };
        if let Some(&(first, last)) = scan.spans.get(&ch.id) {
            let rec = &mut topic.recorded[r];
            (rec.first, rec.last) = (rec.first.min(first), rec.last.max(last));
        }
        plan.channels.insert(ch.id, (t, r));
    }
    if let Some(missing) = only
        .iter()
        .find(|t| !plan.topics.iter().any(|p| p.name == **t))
    {
        return Err(Failure(format!("{path}: no recorded topic {missing:?}")));
    }
    for topic in &mut plan.topics {
        // Every topic has a recorded publisher (each channel is one or joins one).
        if let Some(r) = (0..topic.recorded.len()).min_by_key(|&r| topic.recorded[r].first) {
            topic.replayer_for(path, r)?;
            // One that sent nothing frees its publisher at once.
            if topic.recorded[r].first == u64::MAX {
                topic.sent(r, u64::MAX);
            }
        }
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
        for topic in &mut plan.topics {
            let name = topic.name.clone();
            let Some(p) = topic.any() else { continue };
            while p
                .wait_for_subscribers(n, Duration::from_millis(100))
                .is_err()
            {
                if signal::stopped() {
                    return Err(Failure(format!(
                        "topic {name:?}: interrupted waiting for subscribers"
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
        for i in 0..scan.messages {
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
            let Some(&(t, r)) = plan.channels.get(&channel) else {
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
            let topic = &mut plan.topics[t];
            let p = topic.replayer_for(&path, r)?;
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
                            "topic {:?}: a recorded message of {} bytes does not fit the topic",
                            topic.name,
                            data.len()
                        )))
                    }
                    Err(ringcast::Full) => {}
                }
            }
            topic.sent(r, i);
        }
        if !a.repeat || signal::stopped() {
            return Ok(());
        }
        for topic in &mut plan.topics {
            topic.restart();
        }
    }
}
