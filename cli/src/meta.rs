//! A topic's description as MCAP channel metadata, both ways: what `record` writes and
//! what `play` needs to re-create the topic (geometry, policy, type fingerprint and the
//! publishers it admits, so typed subscribers of a replayed topic keep their checks and a
//! shared topic is shared again).
//!
//! Per-publisher identity: `record` writes one channel per (topic, publisher) that sent
//! something, all with the topic's name and description; the publisher is the channel's
//! [`PUBLISHER_KEY`] (`"LANE/WRITER"`, as `Sample::publisher` displays it), and each
//! message's MCAP sequence is the low 32 bits of its sequence in that publisher's lane. A
//! topic that sent nothing while recorded has one channel without the key (so `play`
//! still re-creates it). Recordings made before topics could be shared have one channel
//! per topic, no key and no `ringcast.max_publishers`: they play as one publisher of an
//! exclusive topic, as they always did.

use std::collections::BTreeMap;
use std::time::Duration;

use ringcast::inspect::Geometry;
use ringcast::{Overflow, PublisherConfig, TypeInfo};

/// Message encoding of a recorded raw-bytes topic.
pub const RAW_ENCODING: &str = "ringcast.raw";
/// Message encoding of a recorded typed (rkyv-archived) topic.
pub const RKYV_ENCODING: &str = "ringcast.rkyv";
/// Message encoding of a topic's loss channel (`<topic>/ringcast.lost`): one JSON object
/// per loss, `{"lost":N,"next_seq":S}`.
pub const LOSS_ENCODING: &str = "json";
/// Suffix of a topic's loss channel.
pub const LOSS_SUFFIX: &str = "/ringcast.lost";
/// Channel metadata key naming the publisher whose messages the channel holds:
/// `"LANE/WRITER"` (see [`ringcast::PublisherId`]).
pub const PUBLISHER_KEY: &str = "ringcast.publisher";
/// Channel metadata key of the publishers the topic admits at once (absent in recordings
/// made before topics could be shared: 1).
const MAX_PUBLISHERS_KEY: &str = "ringcast.max_publishers";

const KEYS: [&str; 13] = [
    "ringcast.slots",
    "ringcast.slot_size",
    "ringcast.overflow",
    "ringcast.alignment",
    "ringcast.max_subscribers",
    "ringcast.stall_timeout_ns",
    "ringcast.type.name",
    "ringcast.type.name_hash",
    "ringcast.type.size",
    "ringcast.type.align",
    "ringcast.type.schema_version",
    "ringcast.layout_version",
    MAX_PUBLISHERS_KEY,
];

/// The channel metadata for a topic of geometry `g`.
pub fn to_metadata(g: &Geometry) -> BTreeMap<String, String> {
    let t = &g.type_info;
    let overflow = match g.overflow {
        Overflow::Block => "block",
        Overflow::Overwrite => "overwrite",
    };
    let values = [
        g.slot_count.to_string(),
        g.slot_capacity.to_string(),
        overflow.to_owned(),
        g.alignment.to_string(),
        g.max_subscribers.to_string(),
        g.stall_timeout_ns.to_string(),
        t.name().to_owned(),
        t.name_hash.to_string(),
        t.size.to_string(),
        t.align.to_string(),
        t.schema_version.to_string(),
        ringcast::inspect::LAYOUT_VERSION.to_string(),
        g.max_publishers.to_string(),
    ];
    KEYS.iter()
        .zip(values)
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The metadata of the channel of publisher `from`'s messages on a topic described by
/// `topic` (from [`to_metadata`]).
pub fn with_publisher(
    topic: &BTreeMap<String, String>,
    from: ringcast::PublisherId,
) -> BTreeMap<String, String> {
    let mut m = topic.clone();
    m.insert(PUBLISHER_KEY.to_owned(), from.to_string());
    m
}

/// The recorded publisher a channel holds the messages of (its [`PUBLISHER_KEY`]), `None`
/// for a channel without one (an older recording, or a topic that sent nothing).
pub fn publisher(m: &BTreeMap<String, String>) -> Option<&str> {
    m.get(PUBLISHER_KEY).map(String::as_str)
}

/// The topic's description in a channel's metadata: all of it but the publisher, which
/// differs between the channels of one topic.
pub fn topic_part(m: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    m.iter()
        .filter(|(k, _)| *k != PUBLISHER_KEY)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The publishers a recorded topic admits at once (1 if the recording predates sharing).
pub fn max_publishers(m: &BTreeMap<String, String>) -> Result<u64, String> {
    match m.get(MAX_PUBLISHERS_KEY) {
        None => Ok(1),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{MAX_PUBLISHERS_KEY} is not a number in its channel metadata")),
    }
}

/// The message encoding for a topic of geometry `g`.
pub fn encoding(g: &Geometry) -> &'static str {
    if g.type_info.is_raw() {
        RAW_ENCODING
    } else {
        RKYV_ENCODING
    }
}

/// A publisher configuration that re-creates the recorded topic, from its channel's
/// metadata; an error names the missing or bad key.
pub fn to_config(m: &BTreeMap<String, String>) -> Result<PublisherConfig, String> {
    let get = |k: &str| {
        m.get(k)
            .ok_or_else(|| format!("no {k} in its channel metadata"))
    };
    let num = |k: &str| -> Result<u64, String> {
        get(k)?
            .parse()
            .map_err(|_| format!("{k} is not a number in its channel metadata"))
    };
    let overflow = match get("ringcast.overflow")?.as_str() {
        "block" => Overflow::Block,
        "overwrite" => Overflow::Overwrite,
        o => return Err(format!("unknown overflow policy {o:?}")),
    };
    let mut cfg = PublisherConfig::default()
        .slots(num("ringcast.slots")?)
        .slot_size(num("ringcast.slot_size")?)
        .overflow(overflow)
        .alignment(num("ringcast.alignment")?)
        .max_subscribers(num("ringcast.max_subscribers")?)
        .max_publishers(max_publishers(m)?);
    let stall = num("ringcast.stall_timeout_ns")?;
    if stall > 0 {
        cfg = cfg.stall_timeout(Duration::from_nanos(stall));
    }
    let name = get("ringcast.type.name")?;
    let (size, align) = (num("ringcast.type.size")?, num("ringcast.type.align")?);
    if size != 0 || align != 0 {
        let mut info = TypeInfo::new(
            name,
            size as usize,
            align as usize,
            num("ringcast.type.schema_version")?,
        );
        // The hash covers the whole name, which the fingerprint may have truncated.
        info.name_hash = num("ringcast.type.name_hash")?;
        cfg = cfg.type_info(info);
    }
    Ok(cfg)
}
