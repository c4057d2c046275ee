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
//! (`@topic` and `@from` are verbatim chunks: no wildcard on the message keys can match a
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

/// Version of the announcement record.
const VERSION: u64 = 1;
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
    #[error("announcement version {0} is not supported (this build reads {VERSION})")]
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
            VERSION,
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
        bytes.extend_from_slice(&t.name[..t.name_len.min(t.name.len() as u64) as usize]);
        for text in [&self.host, &self.prefix] {
            bytes.push(text.len() as u8);
            bytes.extend_from_slice(text.as_bytes());
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses a hex record.
    pub fn decode(hex: &str) -> Result<Announcement, AnnounceError> {
        let bytes = unhex(hex)?;
        let mut r = Reader(&bytes);
        let mut words = [0u64; WORDS];
        for w in &mut words {
            *w = r.word()?;
        }
        let [version, slot_count, slot_capacity, alignment, max_subscribers, overflow, stall_timeout_ns, creation_id, size, align, schema_version, name_hash, name_len] =
            words;
        if version != VERSION {
            return Err(AnnounceError::Version(version));
        }
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

    /// Bytes the source's segment would take: slots x (payload rounded up + header),
    /// saturating (an importer refuses what is over its limit before creating anything).
    pub fn ring_bytes(&self) -> u64 {
        let per_slot = self
            .slot_capacity
            .saturating_add(self.alignment.max(16))
            .saturating_add(128);
        self.slot_count.saturating_mul(per_slot)
    }

    /// A publisher configuration that re-creates the topic under `prefix`, marked as
    /// imported from `origin`.
    pub fn config(&self, prefix: &str, origin: &str) -> PublisherConfig {
        let mut cfg = PublisherConfig::default()
            .prefix(prefix)
            .slots(self.slot_count)
            .slot_size(self.slot_capacity)
            .alignment(self.alignment)
            .max_subscribers(self.max_subscribers)
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

fn unhex(hex: &str) -> Result<Vec<u8>, AnnounceError> {
    // The longest record: the words, a full type name, two full texts with their lengths.
    const MAX: usize = 2 * (WORDS * 8 + 96 + 2 * (MAX_TEXT + 1));
    if !hex.len().is_multiple_of(2) || hex.len() > MAX {
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

    /// What an importer of `topic` subscribes to for messages (every exporter's).
    pub fn data_of(&self, topic: &str) -> String {
        format!("{ROOT}/{}/{topic}/@from/*", self.domain)
    }

    /// The exporting bridge's zid of a message key of `topic`, if the key has that shape.
    pub fn data_sender<'k>(&self, topic: &str, key: &'k str) -> Option<&'k str> {
        let head = format!("{ROOT}/{}/{topic}/@from/", self.domain);
        key.strip_prefix(head.as_str())
            .filter(|z| !z.is_empty() && !z.contains('/'))
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
            "{} slots x {} bytes, {:?}, {} (from {}:{})",
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
        assert_eq!(Announcement::decode(&raw.encode()), Ok(raw));
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
            let mut b = unhex(&hex).unwrap();
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
        let mut words = unhex(&sample().encode()).unwrap();
        words[0] = 9;
        let h: String = words.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(Announcement::decode(&h), Err(AnnounceError::Version(9)));
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
        assert_eq!(keys.data_of("imu"), "ringcast/lab/imu/@from/*");
        assert_eq!(
            keys.data_sender("imu", &keys.data("imu", "abc123")),
            Some("abc123")
        );
        for foreign in [
            "ringcast/lab/imu",
            "ringcast/lab/imu/@from/",
            "ringcast/lab/imu/@from/a/b",
            "ringcast/other/imu/@from/abc123",
            "ringcast/lab/imu2/@from/abc123",
        ] {
            assert_eq!(keys.data_sender("imu", foreign), None, "{foreign}");
        }
    }
}
