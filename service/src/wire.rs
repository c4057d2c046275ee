//! What a service puts in front of every message, and the names of its topics.
//!
//! A service `S` is three kinds of topic under the caller's prefix:
//! - `S..service`: the server's name plate, an exclusive topic with no messages; a live
//!   publisher on it means a server serves `S` (one at a time: it is exclusive).
//! - `S..requests`: the requests, a topic with one lane per client (plus one the server
//!   holds so that the topic outlives its clients), read by the server alone.
//! - `S..responses.<nonce>`: one per connected client, published by the server and read
//!   by that client alone; the client picks the random nonce when it connects.
//!
//! Every request and response starts with a [`HEADER`]-byte header: the request id (u64,
//! little-endian), the kind (u32) and the tag `rcs1`. The payload follows, so it keeps the
//! slot's alignment up to 16 bytes.

use ringcast_core::name::{validate_topic, MAX_TOPIC_LEN};
use ringcast_core::NameError;

/// Bytes in front of every request and response payload.
pub const HEADER: usize = 16;

/// The tag that ends every header (a version: a message without it is dropped).
const TAG: [u8; 4] = *b"rcs1";

/// Payload bytes of a greeting (the client's nonce): every request slot holds them.
pub(crate) const HELLO_BYTES: usize = 8;

/// Request kinds.
pub(crate) const HELLO: u32 = 1;
pub(crate) const CALL: u32 = 2;

/// Response kinds: one of a stream with more to come, the last one, the end of the
/// stream with no payload, or the end of a stream the server gave up on (no payload; the
/// call fails with `CallError::Failed`).
pub(crate) const PART: u32 = 1;
pub(crate) const LAST: u32 = 2;
pub(crate) const END: u32 = 3;
pub(crate) const FAIL: u32 = 4;

const ANCHOR: &str = "..service";
const REQUESTS: &str = "..requests";
const RESPONSES: &str = "..responses.";

/// The longest service name: a topic name short enough for its longest derived topic
/// (`S..responses.` and 16 hex digits).
pub const MAX_SERVICE_LEN: usize = MAX_TOPIC_LEN - RESPONSES.len() - 16;

/// Checks a service name: a topic name (`[A-Za-z0-9._-]`, no leading dot) of at most
/// [`MAX_SERVICE_LEN`] bytes.
pub fn validate_service(service: &str) -> Result<(), NameError> {
    // The length first: a name too long for a topic is told the service's limit.
    if service.len() > MAX_SERVICE_LEN {
        return Err(NameError::TooLong {
            len: service.len(),
            max: MAX_SERVICE_LEN,
        });
    }
    validate_topic(service)
}

/// The server's name plate topic of `service`.
pub fn anchor_topic(service: &str) -> String {
    format!("{service}{ANCHOR}")
}

/// The request topic of `service`.
pub fn request_topic(service: &str) -> String {
    format!("{service}{REQUESTS}")
}

/// The response topic of the client of `service` that connected with `nonce`.
pub fn response_topic(service: &str, nonce: u64) -> String {
    format!("{service}{RESPONSES}{nonce:016x}")
}

/// Which part of which service a topic name is, if it is one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceTopic<'a> {
    /// The name plate of the service.
    Anchor(&'a str),
    /// The request topic of the service.
    Requests(&'a str),
    /// The response topic of one client of the service.
    Responses(&'a str),
}

/// Parses a topic name made by [`anchor_topic`], [`request_topic`] or
/// [`response_topic`] (for `ringcast list`).
pub fn parse_topic(topic: &str) -> Option<ServiceTopic<'_>> {
    if let Some(s) = topic.strip_suffix(ANCHOR) {
        return Some(ServiceTopic::Anchor(s));
    }
    if let Some(s) = topic.strip_suffix(REQUESTS) {
        return Some(ServiceTopic::Requests(s));
    }
    let (s, nonce) = topic.rsplit_once(RESPONSES)?;
    (nonce.len() == 16 && nonce.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(ServiceTopic::Responses(s))
}

/// The user who owns `topic`'s segment (uid `u32::MAX` if it cannot be looked at).
pub(crate) fn owner_of(prefix: &str, topic: &str) -> ringcast_core::trust::Owner {
    use std::os::unix::fs::MetadataExt;
    let path = std::path::Path::new(ringcast_core::name::SHM_DIR).join(format!("{prefix}.{topic}"));
    ringcast_core::trust::Owner::of_uid(
        std::fs::symlink_metadata(path).map_or(u32::MAX, |m| m.uid()),
    )
}

/// The owner and file group of `topic`'s segment, if it can be looked at (not following
/// a symlink).
pub(crate) fn ids_of(prefix: &str, topic: &str) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let path = std::path::Path::new(ringcast_core::name::SHM_DIR).join(format!("{prefix}.{topic}"));
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.uid(), m.gid()))
}

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub id: u64,
    pub kind: u32,
}

/// Writes a header for request or response `id` of `kind` into `buf[..HEADER]`.
pub(crate) fn encode(buf: &mut [u8], id: u64, kind: u32) {
    buf[..8].copy_from_slice(&id.to_le_bytes());
    buf[8..12].copy_from_slice(&kind.to_le_bytes());
    buf[12..HEADER].copy_from_slice(&TAG);
}

/// Reads the header of `msg`: `None` if it is too short or not tagged (a message no
/// ringcast service wrote).
pub(crate) fn decode(msg: &[u8]) -> Option<Header> {
    if msg.len() < HEADER || msg[12..HEADER] != TAG {
        return None;
    }
    Some(Header {
        id: u64::from_le_bytes(msg[..8].try_into().ok()?),
        kind: u32::from_le_bytes(msg[8..12].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_foreign_bytes_are_refused() {
        let mut buf = [0u8; 32];
        encode(&mut buf, 0xdead_beef_0102, LAST);
        assert_eq!(
            decode(&buf),
            Some(Header {
                id: 0xdead_beef_0102,
                kind: LAST
            })
        );
        assert_eq!(decode(&buf[..HEADER - 1]), None);
        buf[15] = b'2';
        assert_eq!(decode(&buf), None);
        assert_eq!(decode(&[]), None);
    }

    #[test]
    fn names_parse_back_and_long_names_are_refused() {
        assert_eq!(
            parse_topic(&anchor_topic("a.b")),
            Some(ServiceTopic::Anchor("a.b"))
        );
        assert_eq!(
            parse_topic(&request_topic("a")),
            Some(ServiceTopic::Requests("a"))
        );
        let r = response_topic("svc", 0xabc);
        assert_eq!(parse_topic(&r), Some(ServiceTopic::Responses("svc")));
        assert_eq!(parse_topic("svc..responses.xyz"), None);
        assert_eq!(parse_topic("plain.topic"), None);
        let longest = "s".repeat(MAX_SERVICE_LEN);
        assert!(validate_service(&longest).is_ok());
        assert!(validate_topic(&response_topic(&longest, u64::MAX)).is_ok());
        assert!(matches!(
            validate_service(&"s".repeat(MAX_SERVICE_LEN + 1)),
            Err(NameError::TooLong { .. })
        ));
        // Longer than a topic may be: still the service's limit.
        assert!(matches!(
            validate_service(&"s".repeat(MAX_TOPIC_LEN + 1)),
            Err(NameError::TooLong {
                max: MAX_SERVICE_LEN,
                ..
            })
        ));
        assert!(matches!(
            validate_service("a/b"),
            Err(NameError::BadChar { .. })
        ));
    }
}
