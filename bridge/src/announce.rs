//! What an exporting bridge tells the network about a topic, and the key expressions it
//! uses.
//!
//! An exported topic is announced by a Zenoh liveliness token whose key carries the whole
//! description, so that appearing, changing and disappearing are one atomic event each:
//!
//! ```text
//! ringcast/<domain>/@topic/<topic>/<bridge zid>/<announcement, hex>   liveliness token
//! ringcast/<domain>/<topic>/@from/<bridge zid>                        the messages
//! ```
//!
//! A service (request and response) exported by a bridge has a token and a queryable:
//!
//! ```text
//! ringcast/<domain>/@service/<service>/<bridge zid>/<record, hex>  liveliness token
//! ringcast/<domain>/<service>/@call/<bridge zid>                    queryable (the calls)
//! ```
//!
//! Its record ([`ServiceAnnouncement`]: version 3 for an untyped service, version 4 for a
//! typed one, which adds the request and response types' fingerprints) lives under
//! `@service`, which no topic importer subscribes to; were it read as a topic record, it
//! would be refused (shorter than a topic record's fixed words, and of an unknown
//! version). A bridge that reads only version 3 refuses a typed service's record (counted
//! and logged as any refused announcement); an untyped service's record is unchanged, so
//! such bridges still import untyped services from this build.
//!
//! (`@topic`, `@service`, `@from` and `@call` are verbatim chunks: no wildcard on the message keys can match a
//! token.) Each exporting bridge publishes a topic's messages under its own id, and an
//! importer takes them only from the bridge whose announcement it adopted: another peer's
//! messages, ENDs and SYNCs for the topic, under any other id, are never applied to it.
//! (Key expressions are not authenticated: a peer that writes under the adopted bridge's
//! own id is kept out only by an authenticated transport, TLS with client certificates.)
//! The announcement is a versioned little-endian record, hex-encoded: geometry, policy,
//! stall timeout, creation id and the message type's fingerprint, then the exporting
//! host's name and shm prefix (for the importer's `origin`). [`Announcement::decode`]
//! trusts nothing: every length is checked, and the geometry is checked again when the
//! importer creates the topic.

use std::fmt;
use std::time::Duration;

use ringcast::inspect::Geometry;
use ringcast::{Overflow, PublisherConfig, TypeInfo};

/// What an import is marked with (`imported_from`) for `ringcast list` and `inspect`:
/// where the source is (`host:prefix (bridge ZID)`), cut to the 112 bytes an origin may
/// hold, without control characters (the announcer's text is not trusted).
pub(crate) fn origin(host: &str, prefix: &str, zid: &str) -> String {
    let mut s = format!("{host}:{prefix} (bridge {zid})");
    let mut end = s.len().min(112);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.retain(|c| !c.is_control());
    s
}

/// Bytes of a fingerprint's name (`TypeInfo::name`).
const TYPE_NAME_BYTES: usize = TypeInfo::RAW.name.len();

/// Version of the announcement record of a topic with one publisher from bridges before
/// [`VERSION_SERVED`] (read, never written).
const VERSION: u64 = 1;
/// Version of the record of a shared topic from bridges before [`VERSION_SERVED`]:
/// [`WORDS`] words, then `max_publishers` (read, never written).
const VERSION_LANES: u64 = 2;
/// Version of every topic record this build writes: [`WORDS`] words, then
/// `max_publishers` (1 for a topic with one publisher). Its exporter serves only
/// importers that declare an importing token and (for `Block`) credit it (see
/// [`crate::credit`]); a bridge from before that would adopt the topic and wait for
/// messages that never come, so it refuses the record by its version instead, and says
/// so.
const VERSION_SERVED: u64 = 5;
/// Version of an untyped service's record ([`ServiceAnnouncement`]): a topic importer, of
/// this build or an older one, refuses it.
const VERSION_SERVICE: u64 = 3;
/// Version of a typed service's record: [`SERVICE_WORDS`] words, then the request and
/// the response type (each [`TYPE_WORDS`] words and the name's bytes), then the texts. A
/// bridge that reads only [`VERSION_SERVICE`] refuses it.
const VERSION_TYPED_SERVICE: u64 = 4;
/// Words of a type's fingerprint in a record: size, align, schema version, name hash,
/// name length (the name's bytes follow).
const TYPE_WORDS: usize = 5;
/// The largest alignment a type may claim (a segment's payload alignment is at most this).
const MAX_TYPE_ALIGN: u64 = 4096;
/// Words of a service's record before its texts: version, max request, max response,
/// queue, max clients.
const SERVICE_WORDS: usize = 5;
/// The largest request or response a service record may ask an importer to carry.
pub const MAX_SERVICE_PAYLOAD: u64 = 64 << 20;
/// The longest queue (requests in flight per client) a service record may ask for.
pub const MAX_SERVICE_QUEUE: u64 = 1 << 16;
/// Fixed words before the variable part: version, slot count, slot size, alignment,
/// max subscribers, overflow, stall timeout, creation id, and the type's size, align,
/// schema version, name hash, name length.
const WORDS: usize = 13;
/// Longest host name or prefix carried.
const MAX_TEXT: usize = 64;

/// The root of every key ringcast puts on the network.
pub const ROOT: &str = "ringcast";

/// A topic as its exporter describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// Slots in the source ring.
    pub slot_count: u64,
    /// Most payload bytes per message.
    pub slot_capacity: u64,
    /// Payload alignment.
    pub alignment: u64,
    /// Subscriber table entries.
    pub max_subscribers: u64,
    /// Overflow policy.
    pub overflow: Overflow,
    /// `Block` stall timeout in nanoseconds (0: none).
    pub stall_timeout_ns: u64,
    /// The source topic's incarnation: every message carries it.
    pub creation_id: u64,
    /// Publishers the topic admits at once (its lanes): 1, or
    /// `2..=`[`MAX_PUBLISHERS`](ringcast::inspect::MAX_PUBLISHERS) for a shared topic.
    pub max_publishers: u64,
    /// The message type's fingerprint.
    pub type_info: TypeInfo,
    /// The exporting host's name.
    pub host: String,
    /// The exporting bridge's shm prefix.
    pub prefix: String,
}

/// Why an announcement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceError {
    /// The key does not have the `ringcast/<domain>/@topic/<topic>/<zid>/<hex>` shape.
    #[error("not a ringcast announcement key: {0:?}")]
    Key(String),
    /// The record is not hex, or is too short or too long.
    #[error("announcement record is malformed: {0}")]
    Malformed(&'static str),
    /// The record has a version this build does not know.
    #[error("announcement version {0} is not supported (this build reads {VERSION}, {VERSION_LANES} and {VERSION_SERVED})")]
    Version(u64),
    /// A field has an impossible value.
    #[error("announcement has an impossible {field}: {value}")]
    Field {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
}

impl Announcement {
    /// The announcement of a local topic of geometry `g` on this host.
    pub fn of(g: &Geometry, host: &str, prefix: &str) -> Announcement {
        Announcement {
            slot_count: g.slot_count,
            slot_capacity: g.slot_capacity,
            alignment: g.alignment,
            max_subscribers: g.max_subscribers,
            overflow: g.overflow,
            stall_timeout_ns: g.stall_timeout_ns,
            creation_id: g.creation_id,
            max_publishers: g.max_publishers,
            type_info: g.type_info,
            host: truncate(host),
            prefix: truncate(prefix),
        }
    }

    /// The hex record (one key chunk).
    pub fn encode(&self) -> String {
        let t = &self.type_info;
        let overflow = match self.overflow {
            Overflow::Overwrite => 0,
            Overflow::Block => 1,
        };
        let words: [u64; WORDS] = [
            VERSION_SERVED,
            self.slot_count,
            self.slot_capacity,
            self.alignment,
            self.max_subscribers,
            overflow,
            self.stall_timeout_ns,
            self.creation_id,
            t.size,
            t.align,
            t.schema_version,
            t.name_hash,
            t.name_len,
        ];
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes.extend_from_slice(&self.max_publishers.to_le_bytes());
        bytes.extend_from_slice(&t.name[..t.name_len.min(t.name.len() as u64) as usize]);
        for text in [&self.host, &self.prefix] {
            bytes.push(text.len() as u8);
            bytes.extend_from_slice(text.as_bytes());
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses a hex record.
    pub fn decode(hex: &str) -> Result<Announcement, AnnounceError> {
        let bytes = unhex(hex, MAX_TOPIC_RECORD)?;
        let mut r = Reader(&bytes);
        let mut words = [0u64; WORDS];
        for w in &mut words {
            *w = r.word()?;
        }
        let [version, slot_count, slot_capacity, alignment, max_subscribers, overflow, stall_timeout_ns, creation_id, size, align, schema_version, name_hash, name_len] =
            words;
        let max_publishers = match version {
            VERSION => 1,
            VERSION_LANES => match r.word()? {
                n @ 2..=ringcast::inspect::MAX_PUBLISHERS => n,
                n => return Err(field("publisher count of a shared topic", n)),
            },
            VERSION_SERVED => match r.word()? {
                n @ 1..=ringcast::inspect::MAX_PUBLISHERS => n,
                n => return Err(field("publisher count", n)),
            },
            v => return Err(AnnounceError::Version(v)),
        };
        let overflow = match overflow {
            0 => Overflow::Overwrite,
            1 => Overflow::Block,
            v => return Err(field("overflow policy", v)),
        };
        let mut type_info = TypeInfo::RAW;
        if name_len > type_info.name.len() as u64 {
            return Err(field("type name length", name_len));
        }
        let name = r.take(name_len as usize)?;
        type_info.name[..name.len()].copy_from_slice(name);
        type_info.size = size;
        type_info.align = align;
        type_info.schema_version = schema_version;
        type_info.name_hash = name_hash;
        type_info.name_len = name_len;
        let host = r.text()?;
        let prefix = r.text()?;
        if !r.0.is_empty() {
            return Err(AnnounceError::Malformed("trailing bytes"));
        }
        let a = Announcement {
            slot_count,
            slot_capacity,
            alignment,
            max_subscribers,
            overflow,
            stall_timeout_ns,
            creation_id,
            max_publishers,
            type_info,
            host,
            prefix,
        };
        a.check()?;
        Ok(a)
    }

    /// The coarse checks a record must pass before anyone builds a config from it (the
    /// exact geometry rules are the publisher's, applied at creation).
    fn check(&self) -> Result<(), AnnounceError> {
        if !self.slot_count.is_power_of_two() || self.slot_count < 2 {
            return Err(field("slot count", self.slot_count));
        }
        if self.slot_capacity == 0 {
            return Err(field("slot size", self.slot_capacity));
        }
        if !self.alignment.is_power_of_two() {
            return Err(field("alignment", self.alignment));
        }
        if self.max_subscribers == 0 {
            return Err(field("subscriber table size", 0));
        }
        if self.overflow == Overflow::Overwrite && self.stall_timeout_ns != 0 {
            return Err(field(
                "stall timeout for an Overwrite topic",
                self.stall_timeout_ns,
            ));
        }
        Ok(())
    }

    /// Bytes the source's segment would take: lanes x slots x (payload rounded up +
    /// header), saturating (an importer refuses what is over its limit before creating anything).
    pub fn ring_bytes(&self) -> u64 {
        self.ring_bytes_with(self.slot_count)
    }

    /// [`ring_bytes`](Self::ring_bytes) with `slots` slots per lane.
    fn ring_bytes_with(&self, slots: u64) -> u64 {
        let per_slot = self
            .slot_capacity
            .saturating_add(self.alignment.max(16))
            .saturating_add(128);
        slots
            .saturating_mul(per_slot)
            .saturating_mul(self.max_publishers)
    }

    /// Slots of the ring an importer re-creates the topic with: the source's, or enough
    /// for one batch of `batch_bytes` of full-size messages (at most
    /// [`MAX_BATCH`](crate::wire::MAX_BATCH)) if that is more, but at most 8 times the
    /// source's (a topic its owner sized small stays small: many small topics keep their
    /// memory) and within `max_bytes` ([`ring_bytes`](Self::ring_bytes) at that count). A
    /// Zenoh put delivers a whole batch at once: a ring that holds it takes the batch
    /// straight from the network callback, where a smaller one would leave the rest to
    /// the import's backlog and a hand-off per ring of room.
    ///
    /// ```
    /// use ringcast::{Overflow, TypeInfo};
    /// use ringcast_bridge::announce::Announcement;
    ///
    /// let a = Announcement {
    ///     slot_count: 64,
    ///     slot_capacity: 64,
    ///     alignment: 8,
    ///     max_subscribers: 8,
    ///     overflow: Overflow::Block,
    ///     stall_timeout_ns: 0,
    ///     creation_id: 1,
    ///     max_publishers: 1,
    ///     type_info: TypeInfo::RAW,
    ///     host: "robot".into(),
    ///     prefix: "rc".into(),
    /// };
    /// // 64 B messages from a 64-slot ring, 32 KiB batches: a 512-slot import, or as
    /// // much of it as a 40 KiB limit allows.
    /// assert_eq!(a.import_slots(32 << 10, u64::MAX), 512);
    /// assert_eq!(a.import_slots(32 << 10, 40 << 10), 128);
    /// // A batch that fits the source's ring already: the source's count.
    /// assert_eq!(a.import_slots(1 << 10, u64::MAX), 64);
    /// // An 8-slot source grows to 64 slots at most.
    /// let small = Announcement { slot_count: 8, ..a };
    /// assert_eq!(small.import_slots(32 << 10, u64::MAX), 64);
    /// ```
    pub fn import_slots(&self, batch_bytes: u64, max_bytes: u64) -> u64 {
        let batch = (batch_bytes / self.slot_capacity.max(1)).min(crate::wire::MAX_BATCH as u64);
        let grown = batch
            .next_power_of_two()
            .min(self.slot_count.saturating_mul(8));
        let mut slots = self.slot_count.max(grown);
        // Halve back towards the source's count while over the limit (the source's own
        // size is checked against the limit before an import is created).
        while slots > self.slot_count && self.ring_bytes_with(slots) > max_bytes {
            slots /= 2;
        }
        slots
    }

    /// A publisher configuration that re-creates the topic under `prefix` with `slots`
    /// slots per lane (see [`import_slots`](Self::import_slots)), marked as imported
    /// from `origin`.
    pub fn config(&self, prefix: &str, origin: &str, slots: u64) -> PublisherConfig {
        let mut cfg = PublisherConfig::default()
            .prefix(prefix)
            .slots(slots)
            .slot_size(self.slot_capacity)
            .alignment(self.alignment)
            .max_subscribers(self.max_subscribers)
            .max_publishers(self.max_publishers)
            .overflow(self.overflow)
            .type_info(self.type_info)
            .imported_from(origin)
            // A full ring: sleep at once (see the exporter's subscriber).
            .wait_strategy(ringcast::WaitStrategy::Park);
        if self.stall_timeout_ns > 0 {
            cfg = cfg.stall_timeout(Duration::from_nanos(self.stall_timeout_ns));
        }
        cfg
    }
}

/// A service as its exporting bridge describes it: the limits the importer's local
/// server takes, and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAnnouncement {
    /// Largest request payload the server takes.
    pub max_request: u64,
    /// Largest response payload it sends.
    pub max_response: u64,
    /// Requests each client may have queued (a power of two).
    pub queue: u64,
    /// Clients it admits at once.
    pub max_clients: u64,
    /// The request type's fingerprint ([`TypeInfo::RAW`] for an untyped service).
    pub request_type: TypeInfo,
    /// The response type's fingerprint ([`TypeInfo::RAW`] for an untyped service).
    pub response_type: TypeInfo,
    /// The exporting host's name.
    pub host: String,
    /// The exporting bridge's shm prefix.
    pub prefix: String,
}

impl ServiceAnnouncement {
    /// Whether the service is typed (either type is not raw): its record is version 4.
    pub fn is_typed(&self) -> bool {
        !(self.request_type.is_raw() && self.response_type.is_raw())
    }

    /// The hex record (one key chunk): version 3 for an untyped service (what bridges
    /// before typed services read), version 4 with both types otherwise.
    pub fn encode(&self) -> String {
        let typed = self.is_typed();
        let words: [u64; SERVICE_WORDS] = [
            if typed {
                VERSION_TYPED_SERVICE
            } else {
                VERSION_SERVICE
            },
            self.max_request,
            self.max_response,
            self.queue,
            self.max_clients,
        ];
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        if typed {
            for t in [&self.request_type, &self.response_type] {
                let words = [t.size, t.align, t.schema_version, t.name_hash, t.name_len];
                bytes.extend(words.iter().flat_map(|w| w.to_le_bytes()));
                bytes.extend_from_slice(&t.name[..t.name_len.min(t.name.len() as u64) as usize]);
            }
        }
        for t in [&self.host, &self.prefix] {
            let t = truncate(t);
            bytes.push(t.len() as u8);
            bytes.extend_from_slice(t.as_bytes());
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses a hex record, trusting nothing: a type's fingerprint must be raw (all
    /// zero) or have a name (UTF-8, no control characters) whose hash it carries (unless
    /// the name was truncated) and a power-of-two alignment up to 4096.
    pub fn decode(hex: &str) -> Result<ServiceAnnouncement, AnnounceError> {
        let bytes = unhex(hex, MAX_SERVICE_RECORD)?;
        let mut r = Reader(&bytes);
        let mut words = [0u64; SERVICE_WORDS];
        for w in &mut words {
            *w = r.word()?;
        }
        let [version, max_request, max_response, queue, max_clients] = words;
        let (request_type, response_type) = match version {
            VERSION_SERVICE => (TypeInfo::RAW, TypeInfo::RAW),
            VERSION_TYPED_SERVICE => (r.type_info()?, r.type_info()?),
            v => return Err(AnnounceError::Version(v)),
        };
        let host = r.text()?;
        let prefix = r.text()?;
        if !r.0.is_empty() {
            return Err(AnnounceError::Malformed("trailing bytes"));
        }
        if max_request > MAX_SERVICE_PAYLOAD {
            return Err(field("max request", max_request));
        }
        if max_response > MAX_SERVICE_PAYLOAD {
            return Err(field("max response", max_response));
        }
        if !queue.is_power_of_two() || queue > MAX_SERVICE_QUEUE {
            return Err(field("queue", queue));
        }
        if max_clients == 0 || max_clients >= ringcast::inspect::MAX_PUBLISHERS {
            return Err(field("max clients", max_clients));
        }
        Ok(ServiceAnnouncement {
            max_request,
            max_response,
            queue,
            max_clients,
            request_type,
            response_type,
            host,
            prefix,
        })
    }
}

fn field(field: &'static str, value: u64) -> AnnounceError {
    AnnounceError::Field { field, value }
}

fn truncate(s: &str) -> String {
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The longest topic record, in bytes: the words, the lane word, a full type name, two
/// full texts with their lengths.
const MAX_TOPIC_RECORD: usize = (WORDS + 1) * 8 + TYPE_NAME_BYTES + 2 * (MAX_TEXT + 1);
/// The longest service record, in bytes: the words, two types with full names, two full
/// texts with their lengths.
const MAX_SERVICE_RECORD: usize =
    SERVICE_WORDS * 8 + 2 * (TYPE_WORDS * 8 + TYPE_NAME_BYTES) + 2 * (MAX_TEXT + 1);

/// FNV-1a, as the fingerprints' name hash (`TypeInfo::new`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn unhex(hex: &str, max_bytes: usize) -> Result<Vec<u8>, AnnounceError> {
    if !hex.len().is_multiple_of(2) || hex.len() > 2 * max_bytes {
        return Err(AnnounceError::Malformed("bad hex length"));
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(AnnounceError::Malformed("not lower-case hex")),
    };
    hex.as_bytes()
        .chunks(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AnnounceError> {
        if self.0.len() < n {
            return Err(AnnounceError::Malformed("record too short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn word(&mut self) -> Result<u64, AnnounceError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A type's fingerprint in a service record (see [`ServiceAnnouncement::decode`]).
    fn type_info(&mut self) -> Result<TypeInfo, AnnounceError> {
        let mut words = [0u64; TYPE_WORDS];
        for w in &mut words {
            *w = self.word()?;
        }
        let [size, align, schema_version, name_hash, name_len] = words;
        if name_len > TYPE_NAME_BYTES as u64 {
            return Err(field("type name length", name_len));
        }
        let name = self.take(name_len as usize)?;
        let t = TypeInfo {
            size,
            align,
            schema_version,
            name_hash,
            name_len,
            name: {
                let mut n = [0; TYPE_NAME_BYTES];
                n[..name.len()].copy_from_slice(name);
                n
            },
        };
        if t.is_raw() {
            return Ok(t);
        }
        if name.is_empty() {
            return Err(field("type name length", 0));
        }
        let name = std::str::from_utf8(name)
            .map_err(|_| AnnounceError::Malformed("type name is not UTF-8"))?;
        if name.chars().any(char::is_control) {
            return Err(AnnounceError::Malformed("type name has control characters"));
        }
        // A name shorter than the longest cut of a truncated one is whole: its hash is
        // known (a longer one may have been cut, and its hash is of the full name).
        if name.len() < TYPE_NAME_BYTES - 3 && fnv1a(name.as_bytes()) != name_hash {
            return Err(field("type name hash", name_hash));
        }
        if !align.is_power_of_two() || align > MAX_TYPE_ALIGN {
            return Err(field("type alignment", align));
        }
        Ok(t)
    }

    fn text(&mut self) -> Result<String, AnnounceError> {
        let n = self.take(1)?[0] as usize;
        if n > MAX_TEXT {
            return Err(field("text length", n as u64));
        }
        let b = self.take(n)?;
        let s = String::from_utf8(b.to_vec())
            .map_err(|_| AnnounceError::Malformed("text is not UTF-8"))?;
        // Host names and prefixes go to logs and `ringcast list`: no control characters
        // (a terminal escape sequence from a peer is refused, never printed).
        if s.chars().any(char::is_control) {
            return Err(AnnounceError::Malformed("text has control characters"));
        }
        Ok(s)
    }
}

/// The keys of one domain.
#[derive(Clone, Debug)]
pub struct Keys {
    domain: String,
}

impl Keys {
    /// Keys under `ringcast/<domain>`.
    pub fn new(domain: &str) -> Keys {
        Keys {
            domain: domain.to_owned(),
        }
    }

    /// Where bridge `zid`'s messages of `topic` travel.
    pub fn data(&self, topic: &str, zid: &str) -> String {
        format!("{ROOT}/{}/{topic}/@from/{zid}", self.domain)
    }

    /// What follows `ringcast/<domain>/` in `key`, if it starts so.
    fn in_domain<'k>(&self, key: &'k str) -> Option<&'k str> {
        let rest = key.strip_prefix(ROOT)?.strip_prefix('/')?;
        rest.strip_prefix(self.domain.as_str())?.strip_prefix('/')
    }

    /// What an importer subscribes to for every topic's messages (one subscription for
    /// all its topics: see `import`).
    pub fn all_data(&self) -> String {
        format!("{ROOT}/{}/*/@from/*", self.domain)
    }

    /// The topic and sending bridge of a message key, if the key has that shape.
    pub fn data_topic<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str)> {
        let rest = self.in_domain(key)?;
        let (topic, zid) = rest.split_once("/@from/")?;
        let whole = !topic.is_empty() && !topic.contains('/') && !zid.is_empty();
        (whole && !zid.contains('/')).then_some((topic, zid))
    }

    /// What an importer subscribes to for every topic's announcements.
    pub fn all_tokens(&self) -> String {
        format!("{ROOT}/{}/@topic/*/*/*", self.domain)
    }

    /// The topic a token key announces, if the key has that shape (its zid and record
    /// are checked by [`parse_token`](Self::parse_token)).
    pub fn token_topic<'k>(&self, key: &'k str) -> Option<&'k str> {
        let rest = self.in_domain(key)?.strip_prefix("@topic/")?;
        rest.split_once('/')
            .map(|(t, _)| t)
            .filter(|t| !t.is_empty())
    }

    /// The liveliness token announcing `topic` from bridge `zid`.
    pub fn token(&self, topic: &str, zid: &str, a: &Announcement) -> String {
        format!("{ROOT}/{}/@topic/{topic}/{zid}/{}", self.domain, a.encode())
    }

    /// What an importer of `topic` subscribes to for announcements.
    pub fn tokens_of(&self, topic: &str) -> String {
        format!("{ROOT}/{}/@topic/{topic}/*/*", self.domain)
    }

    /// Splits a token key of `topic` into the announcing bridge's zid and its record.
    pub fn parse_token<'k>(&self, topic: &str, key: &'k str) -> Result<Source<'k>, AnnounceError> {
        let head = format!("{ROOT}/{}/@topic/{topic}/", self.domain);
        let rest = key
            .strip_prefix(head.as_str())
            .ok_or_else(|| AnnounceError::Key(key.to_owned()))?;
        let (zid, record) = rest
            .split_once('/')
            .filter(|(z, r)| !z.is_empty() && !r.contains('/'))
            .ok_or_else(|| AnnounceError::Key(key.to_owned()))?;
        Ok(Source {
            zid,
            announcement: Announcement::decode(record)?,
        })
    }
}

/// Flow control keys ([`crate::credit`]): an importer's credits for an exporter, and the
/// liveliness token it holds while it imports from it.
impl Keys {
    /// Where importer `importer` sends its credits for `topic` to exporter `exporter`.
    pub fn credit(&self, topic: &str, exporter: &str, importer: &str) -> String {
        format!(
            "{ROOT}/{}/@credit/{topic}/{exporter}/{importer}",
            self.domain
        )
    }

    /// The token importer `importer` holds while it imports `topic` from `exporter`.
    pub fn importing(&self, topic: &str, exporter: &str, importer: &str) -> String {
        format!(
            "{ROOT}/{}/@import/{topic}/{exporter}/{importer}",
            self.domain
        )
    }

    /// What exporter `exporter` subscribes to: every credit sent to it.
    pub fn credits_to(&self, exporter: &str) -> String {
        format!("{ROOT}/{}/@credit/*/{exporter}/*", self.domain)
    }

    /// What exporter `exporter` watches: the tokens of everyone importing from it.
    pub fn importers_of(&self, exporter: &str) -> String {
        format!("{ROOT}/{}/@import/*/{exporter}/*", self.domain)
    }

    /// The queryable importer `importer` answers at once: a reply means every put sent to
    /// it before the query was applied (see `export::run`).
    pub fn barrier(&self, importer: &str) -> String {
        format!("{ROOT}/{}/@barrier/{importer}", self.domain)
    }

    /// What a stopping exporter queries: every importer's barrier.
    pub fn all_barriers(&self) -> String {
        format!("{ROOT}/{}/@barrier/*", self.domain)
    }

    /// The topic and importer of a credit or importer-token key sent to `exporter`.
    pub fn parse_flow<'k>(&self, key: &'k str, exporter: &str) -> Option<(&'k str, &'k str)> {
        let rest = self.in_domain(key)?;
        let rest = rest
            .strip_prefix("@credit/")
            .or_else(|| rest.strip_prefix("@import/"))?;
        let mut parts = rest.split('/');
        let (topic, to, importer) = (parts.next()?, parts.next()?, parts.next()?);
        let whole = parts.next().is_none() && !topic.is_empty() && !importer.is_empty();
        (whole && to == exporter).then_some((topic, importer))
    }
}

impl Keys {
    /// Where bridge `zid` answers the calls of `service` (its queryable).
    pub fn calls(&self, service: &str, zid: &str) -> String {
        format!("{ROOT}/{}/{service}/@call/{zid}", self.domain)
    }

    /// The liveliness token announcing `service` from bridge `zid`.
    pub fn service_token(&self, service: &str, zid: &str, a: &ServiceAnnouncement) -> String {
        format!(
            "{ROOT}/{}/@service/{service}/{zid}/{}",
            self.domain,
            a.encode()
        )
    }

    /// What an importer of `service` subscribes to for announcements.
    pub fn service_tokens_of(&self, service: &str) -> String {
        format!("{ROOT}/{}/@service/{service}/*/*", self.domain)
    }

    /// Splits a service token key into the announcing bridge's zid and its record.
    pub fn parse_service_token<'k>(
        &self,
        service: &str,
        key: &'k str,
    ) -> Result<(&'k str, ServiceAnnouncement), AnnounceError> {
        let head = format!("{ROOT}/{}/@service/{service}/", self.domain);
        let (zid, record) = key
            .strip_prefix(head.as_str())
            .and_then(|rest| rest.split_once('/'))
            .filter(|(z, r)| !z.is_empty() && !r.contains('/'))
            .ok_or_else(|| AnnounceError::Key(key.to_owned()))?;
        Ok((zid, ServiceAnnouncement::decode(record)?))
    }
}

/// A parsed announcement token: who announced what.
#[derive(Debug)]
pub struct Source<'k> {
    /// The announcing bridge's Zenoh id.
    pub zid: &'k str,
    /// What it announced.
    pub announcement: Announcement,
}

impl fmt::Display for Announcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{} slots x {} bytes, {:?}, {} (from {}:{})",
            match self.max_publishers {
                1 => String::new(),
                n => format!("{n} lanes x "),
            },
            self.slot_count,
            self.slot_capacity,
            self.overflow,
            self.type_info,
            self.host,
            self.prefix
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Announcement {
        Announcement {
            slot_count: 64,
            slot_capacity: 4096,
            alignment: 64,
            max_subscribers: 8,
            overflow: Overflow::Block,
            stall_timeout_ns: 5_000_000,
            creation_id: 0xdead_beef_0123_4567,
            max_publishers: 1,
            type_info: TypeInfo::new("robot::Pose", 48, 8, 3),
            host: "host-a".into(),
            prefix: "rc".into(),
        }
    }

    #[test]
    fn a_record_round_trips() {
        let a = sample();
        assert_eq!(Announcement::decode(&a.encode()), Ok(a.clone()));
        let raw = Announcement {
            type_info: TypeInfo::RAW,
            overflow: Overflow::Overwrite,
            stall_timeout_ns: 0,
            ..a
        };
        assert_eq!(Announcement::decode(&raw.encode()), Ok(raw.clone()));
        // Every topic record is version 5 and carries its publisher count, which bridges
        // from before importing tokens refuse by the version.
        let shared = Announcement {
            max_publishers: 4,
            ..raw.clone()
        };
        assert_eq!(unhex(&raw.encode(), MAX_SERVICE_RECORD).unwrap()[0], 5);
        assert_eq!(unhex(&shared.encode(), MAX_SERVICE_RECORD).unwrap()[0], 5);
        assert_eq!(Announcement::decode(&shared.encode()), Ok(shared.clone()));
        assert_eq!(shared.ring_bytes(), 4 * raw.ring_bytes());
        for n in [0u64, 65, u64::MAX] {
            let mut bytes = unhex(&shared.encode(), MAX_SERVICE_RECORD).unwrap();
            bytes[WORDS * 8..WORDS * 8 + 8].copy_from_slice(&n.to_le_bytes());
            let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert!(
                matches!(Announcement::decode(&h), Err(AnnounceError::Field { .. })),
                "{n}"
            );
        }
        // Older bridges' records still read: version 1 (one publisher, no lane word) and
        // version 2 (a shared topic's lane word, never 1).
        let mut v1 = unhex(&raw.encode(), MAX_SERVICE_RECORD).unwrap();
        v1[0] = 1;
        v1.drain(WORDS * 8..WORDS * 8 + 8);
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(Announcement::decode(&hex(&v1)), Ok(raw.clone()));
        let mut v2 = unhex(&shared.encode(), MAX_SERVICE_RECORD).unwrap();
        v2[0] = 2;
        assert_eq!(Announcement::decode(&hex(&v2)), Ok(shared.clone()));
        let mut v2_one = unhex(&raw.encode(), MAX_SERVICE_RECORD).unwrap();
        v2_one[0] = 2;
        assert!(
            Announcement::decode(&hex(&v2_one)).is_err(),
            "a v2 record names 2+"
        );
        // Version 5 cut inside its publisher word is short.
        let v5 = unhex(&raw.encode(), MAX_SERVICE_RECORD).unwrap();
        assert!(Announcement::decode(&hex(&v5[..WORDS * 8 + 4])).is_err());
    }

    #[test]
    fn text_with_control_characters_is_refused() {
        for host in ["\x1b]0;owned\x07", "a\nb", "tab\there"] {
            let a = Announcement {
                host: host.into(),
                ..sample()
            };
            assert_eq!(
                Announcement::decode(&a.encode()),
                Err(AnnounceError::Malformed("text has control characters")),
                "{host:?}"
            );
        }
    }

    #[test]
    fn every_truncation_and_corruption_is_a_typed_error() {
        let hex = sample().encode();
        for cut in (0..hex.len()).step_by(2) {
            assert!(Announcement::decode(&hex[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Announcement::decode(&format!("{hex}00")).is_err());
        assert!(Announcement::decode(&hex.to_uppercase()).is_err());
        assert!(Announcement::decode("zz").is_err());
        // Flip every byte in turn: never a panic; a changed fixed word is caught or parsed.
        for i in 0..hex.len() / 2 {
            let mut b = unhex(&hex, MAX_SERVICE_RECORD).unwrap();
            b[i] ^= 0xff;
            let h: String = b.iter().map(|b| format!("{b:02x}")).collect();
            let _ = Announcement::decode(&h);
        }
    }

    #[test]
    fn impossible_fields_are_refused() {
        let bad = [
            Announcement {
                slot_count: 3,
                ..sample()
            },
            Announcement {
                slot_capacity: 0,
                ..sample()
            },
            Announcement {
                alignment: 48,
                ..sample()
            },
            Announcement {
                overflow: Overflow::Overwrite,
                ..sample()
            },
        ];
        for a in bad {
            assert!(
                matches!(
                    Announcement::decode(&a.encode()),
                    Err(AnnounceError::Field { .. })
                ),
                "{a}"
            );
        }
        let mut words = unhex(&sample().encode(), MAX_SERVICE_RECORD).unwrap();
        words[0] = 9;
        let h: String = words.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(Announcement::decode(&h), Err(AnnounceError::Version(9)));
    }

    fn service() -> ServiceAnnouncement {
        ServiceAnnouncement {
            max_request: 4096,
            max_response: 65536,
            queue: 16,
            max_clients: 16,
            request_type: TypeInfo::RAW,
            response_type: TypeInfo::RAW,
            host: "host-a".into(),
            prefix: "rc".into(),
        }
    }

    fn typed_service() -> ServiceAnnouncement {
        ServiceAnnouncement {
            request_type: TypeInfo::new("planner::Goal", 8, 4, 2),
            response_type: TypeInfo::new("planner::Plan", 16, 8, 2),
            ..service()
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_name_hash_is_the_fingerprints() {
        for name in ["", "a", "planner::Goal", "alloc::vec::Vec<u8>", "ü"] {
            assert_eq!(
                fnv1a(name.as_bytes()),
                TypeInfo::new(name, 1, 1, 0).name_hash
            );
        }
    }

    #[test]
    fn a_typed_service_record_is_version_4_and_round_trips() {
        let s = typed_service();
        assert!(s.is_typed() && !service().is_typed());
        let bytes = unhex(&s.encode(), MAX_SERVICE_RECORD).unwrap();
        assert_eq!(bytes[0], 4);
        assert_eq!(ServiceAnnouncement::decode(&s.encode()), Ok(s.clone()));
        // An untyped service keeps version 3 (older bridges import it).
        assert_eq!(
            unhex(&service().encode(), MAX_SERVICE_RECORD).unwrap()[0],
            3
        );
        // One typed side is enough; the other stays raw.
        let half = ServiceAnnouncement {
            response_type: TypeInfo::RAW,
            ..s.clone()
        };
        assert_eq!(
            ServiceAnnouncement::decode(&half.encode()),
            Ok(half.clone())
        );
        // The longest record (full names, full texts) fits; a name cut on its last bytes
        // carries the full name's hash and is taken.
        let long = "x".repeat(200);
        let full = ServiceAnnouncement {
            request_type: TypeInfo::new(&long, 8, 8, 0),
            response_type: TypeInfo::new(&format!("y{long}"), 8, 8, 0),
            host: "h".repeat(MAX_TEXT),
            prefix: "p".repeat(MAX_TEXT),
            ..s.clone()
        };
        assert_eq!(full.encode().len(), 2 * MAX_SERVICE_RECORD);
        assert_eq!(ServiceAnnouncement::decode(&full.encode()), Ok(full));
        // What a bridge reading only version 3 does with it: refuses it by its version.
        let mut v3 = bytes.clone();
        v3[0] = 3;
        assert!(ServiceAnnouncement::decode(&hex(&v3)).is_err());
        // A topic reader refuses it too (longer than a topic's fixed words: by version).
        assert_eq!(
            Announcement::decode(&s.encode()),
            Err(AnnounceError::Version(VERSION_TYPED_SERVICE))
        );
        // Every truncation is refused; every flipped byte is refused or parsed, never a
        // panic.
        let h = s.encode();
        for cut in (0..h.len()).step_by(2) {
            assert!(
                ServiceAnnouncement::decode(&h[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = ServiceAnnouncement::decode(&hex(&b));
        }
    }

    #[test]
    fn garbage_type_fields_are_refused() {
        let goal = TypeInfo::new("planner::Goal", 8, 4, 2);
        let with = |t: TypeInfo| ServiceAnnouncement {
            request_type: t,
            ..typed_service()
        };
        let mut control = TypeInfo::new("a\x1b]0;owned\x07", 8, 4, 0);
        control.name_hash = fnv1a(control.name().as_bytes());
        let mut invalid_utf8 = goal;
        invalid_utf8.name[0] = 0xff;
        let bad = [
            ("alignment 3", TypeInfo { align: 3, ..goal }),
            (
                "alignment 8192",
                TypeInfo {
                    align: 8192,
                    ..goal
                },
            ),
            ("alignment 0", TypeInfo { align: 0, ..goal }),
            (
                "wrong hash",
                TypeInfo {
                    name_hash: 1,
                    ..goal
                },
            ),
            (
                "no name",
                TypeInfo {
                    name_len: 0,
                    ..goal
                },
            ),
            ("control characters", control),
            ("not UTF-8", invalid_utf8),
        ];
        for (why, t) in bad {
            let got = ServiceAnnouncement::decode(&with(t).encode());
            assert!(
                matches!(
                    got,
                    Err(AnnounceError::Field { .. } | AnnounceError::Malformed(_))
                ),
                "{why}: {got:?}"
            );
        }
        // A name length past the name's bytes: the encoder writes the word as is.
        let long = TypeInfo {
            name_len: 97,
            ..goal
        };
        assert_eq!(
            ServiceAnnouncement::decode(&with(long).encode()),
            Err(field("type name length", 97))
        );
        // A record that claims more name bytes than it has is short.
        let mut b = unhex(&typed_service().encode(), MAX_SERVICE_RECORD).unwrap();
        let name_len_at = SERVICE_WORDS * 8 + (TYPE_WORDS - 1) * 8;
        b[name_len_at] = 90;
        assert!(ServiceAnnouncement::decode(&hex(&b)).is_err());
    }

    #[test]
    fn a_service_record_round_trips_and_a_topic_reader_refuses_it() {
        let s = service();
        assert_eq!(ServiceAnnouncement::decode(&s.encode()), Ok(s.clone()));
        // A bridge that reads topic records only (any version so far) refuses it cleanly:
        // shorter than a topic's fixed words, or (padded to them) by its version.
        assert_eq!(
            Announcement::decode(&s.encode()),
            Err(AnnounceError::Malformed("record too short"))
        );
        let padded = format!("{}{}", s.encode(), "00".repeat(8 * WORDS));
        assert_eq!(
            Announcement::decode(&padded),
            Err(AnnounceError::Version(VERSION_SERVICE))
        );
        // And a service reader refuses a topic record.
        assert_eq!(
            ServiceAnnouncement::decode(&sample().encode()),
            Err(AnnounceError::Version(VERSION_SERVED))
        );
        for bad in [
            ServiceAnnouncement {
                queue: 3,
                ..service()
            },
            ServiceAnnouncement {
                max_clients: 0,
                ..service()
            },
            ServiceAnnouncement {
                max_response: MAX_SERVICE_PAYLOAD + 1,
                ..service()
            },
        ] {
            assert!(matches!(
                ServiceAnnouncement::decode(&bad.encode()),
                Err(AnnounceError::Field { .. })
            ));
        }
        let hex = s.encode();
        assert!(ServiceAnnouncement::decode(&hex[..hex.len() - 2]).is_err());
        assert!(ServiceAnnouncement::decode(&format!("{hex}00")).is_err());
        let keys = Keys::new("lab");
        let key = keys.service_token("clock", "abc", &s);
        assert_eq!(
            keys.parse_service_token("clock", &key),
            Ok(("abc", s.clone()))
        );
        assert!(keys.parse_service_token("clock2", &key).is_err());
        assert!(keys.parse_token("clock", &key).is_err());
        assert_eq!(keys.calls("clock", "abc"), "ringcast/lab/clock/@call/abc");
    }

    #[test]
    fn token_keys_parse_back_and_foreign_keys_are_refused() {
        let keys = Keys::new("lab");
        let a = sample();
        let key = keys.token("imu", "abc123", &a);
        let s = keys.parse_token("imu", &key).unwrap();
        assert_eq!((s.zid, s.announcement), ("abc123", a));
        assert!(keys.parse_token("cam", &key).is_err());
        assert!(keys
            .parse_token("imu", "ringcast/lab/@topic/imu/abc")
            .is_err());
        assert!(keys.parse_token("imu", &format!("{key}/extra")).is_err());
        assert_eq!(keys.data("imu", "abc123"), "ringcast/lab/imu/@from/abc123");
        assert_eq!(keys.all_data(), "ringcast/lab/*/@from/*");
        assert_eq!(
            keys.data_topic(&keys.data("imu", "abc123")),
            Some(("imu", "abc123"))
        );
        for foreign in [
            "ringcast/lab/imu",
            "ringcast/lab/imu/@from/",
            "ringcast/lab/imu/@from/a/b",
            "ringcast/other/imu/@from/abc123",
            "ringcast/lab//@from/abc123",
        ] {
            assert_eq!(keys.data_topic(foreign), None, "{foreign}");
        }
    }
}
