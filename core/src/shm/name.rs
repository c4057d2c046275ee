//! Topic names and where their segments live.
//!
//! A topic name is 1 to 200 characters of `[A-Za-z0-9._-]` with no leading dot, so it can
//! never be a path, a hidden file, or `.`/`..`. The segment of topic `t` under prefix `p`
//! is the POSIX shared-memory object `/p.t` (the file `/dev/shm/p.t` on Linux).

/// The prefix used when none is given: segments are `/dev/shm/ringcast.<topic>`.
pub const DEFAULT_PREFIX: &str = "ringcast";
/// Longest topic name.
pub const MAX_TOPIC_LEN: usize = 200;
/// Where Linux keeps POSIX shared-memory objects.
pub const SHM_DIR: &str = "/dev/shm";

/// Checks a topic name against the rules above.
///
/// ```
/// use ringcast_core::name::validate_topic;
/// assert!(validate_topic("imu.left-1").is_ok());
/// assert!(validate_topic("../etc/passwd").is_err());
/// ```
pub fn validate_topic(topic: &str) -> Result<(), NameError> {
    validate(topic, NameKind::Topic)
}

/// Checks a segment prefix: 1 to 32 characters of `[A-Za-z0-9_-]`. No dot: the segment
/// of topic `t` under prefix `p` is `/dev/shm/p.t`, so a dotted prefix would share names
/// with another (`a.b` + `c` and `a` + `b.c`), and its topics would be listed, collected
/// and called under both.
///
/// ```
/// use ringcast_core::name::validate_prefix;
/// assert!(validate_prefix("robot-7").is_ok());
/// assert!(validate_prefix("robot.7").is_err());
/// ```
pub fn validate_prefix(prefix: &str) -> Result<(), NameError> {
    validate(prefix, NameKind::Prefix)
}

#[derive(Clone, Copy, PartialEq)]
enum NameKind {
    Topic,
    Prefix,
}

fn validate(s: &str, kind: NameKind) -> Result<(), NameError> {
    let max = match kind {
        NameKind::Topic => MAX_TOPIC_LEN,
        NameKind::Prefix => 32,
    };
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > max {
        return Err(NameError::TooLong { len: s.len(), max });
    }
    if s.starts_with('.') {
        return Err(NameError::LeadingDot);
    }
    if let Some((pos, ch)) = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(NameError::BadChar { ch, pos });
    }
    if kind == NameKind::Prefix {
        if let Some(pos) = s.find('.') {
            return Err(NameError::DotInPrefix { pos });
        }
    }
    Ok(())
}

/// The POSIX shared-memory object name (`/prefix.topic`) of a validated topic.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn shm_name(prefix: &str, topic: &str) -> String {
    format!("/{prefix}.{topic}")
}

/// The file behind a shared-memory object name.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn shm_path(shm_name: &str) -> std::path::PathBuf {
    std::path::Path::new(SHM_DIR).join(shm_name.trim_start_matches('/'))
}

/// Lists the topics that have a segment under `prefix`, sorted. Unreadable directory
/// entries are skipped; names that are not valid topics are ignored.
pub fn list_topics(prefix: &str) -> std::io::Result<Vec<String>> {
    let lead = format!("{prefix}.");
    let mut topics: Vec<String> = std::fs::read_dir(SHM_DIR)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|f| f.strip_prefix(&lead).map(str::to_owned))
        .filter(|t| validate_topic(t).is_ok())
        .collect();
    topics.sort();
    Ok(topics)
}

/// File names (in [`SHM_DIR`]) of creation temporaries that ringcast builds before
/// `O_TMPFILE` creation left under `prefix` (`<prefix>..new.<pid>.<random>`). Today's
/// creation never names a file before it is complete; `gc` removes these leftovers.
pub fn list_legacy_temporaries(prefix: &str) -> std::io::Result<Vec<String>> {
    let lead = format!("{prefix}..new.");
    let mut names: Vec<String> = std::fs::read_dir(SHM_DIR)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|f| f.starts_with(&lead) && !f.contains('/'))
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_path_like_and_out_of_alphabet_names() {
        assert_eq!(validate_topic(""), Err(NameError::Empty));
        assert_eq!(validate_topic(".hidden"), Err(NameError::LeadingDot));
        assert_eq!(validate_topic(".."), Err(NameError::LeadingDot));
        assert!(matches!(validate_topic("../x"), Err(NameError::LeadingDot)));
        assert!(matches!(
            validate_topic("a/b"),
            Err(NameError::BadChar { ch: '/', pos: 1 })
        ));
        assert!(matches!(
            validate_topic("/"),
            Err(NameError::BadChar { ch: '/', pos: 0 })
        ));
        assert!(matches!(
            validate_topic("caf\u{e9}"),
            Err(NameError::BadChar { pos: 3, .. })
        ));
        assert!(matches!(
            validate_topic(&"x".repeat(201)),
            Err(NameError::TooLong { len: 201, max: 200 })
        ));
        assert!(validate_topic(&"x".repeat(200)).is_ok());
        assert!(validate_topic("A-z_0.9").is_ok());
    }

    #[test]
    fn a_prefix_holds_no_dot() {
        assert!(validate_prefix("rc-1_x").is_ok());
        assert_eq!(
            validate_prefix("p.sub"),
            Err(NameError::DotInPrefix { pos: 1 })
        );
        assert_eq!(validate_prefix(".p"), Err(NameError::LeadingDot));
        assert!(matches!(
            validate_prefix(&"p".repeat(33)),
            Err(NameError::TooLong { len: 33, max: 32 })
        ));
    }
}

/// Why a topic name (or a prefix, or a service name) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty: give one")]
    Empty,
    /// The name is longer than allowed.
    #[error("the name is {len} bytes long; the limit is {max}: use a shorter name")]
    TooLong {
        /// Length given.
        len: usize,
        /// Longest allowed.
        max: usize,
    },
    /// The name starts with a dot.
    #[error("the name starts with '.'; names may not be hidden files or '..': drop the dot")]
    LeadingDot,
    /// The name holds a character outside `[A-Za-z0-9._-]`.
    #[error("the name has {ch:?} at byte {pos}; only [A-Za-z0-9._-] are allowed")]
    BadChar {
        /// The offending character.
        ch: char,
        /// Its byte offset.
        pos: usize,
    },
    /// A prefix holds a dot, which separates prefix and topic in a segment's name.
    #[error("the prefix has '.' at byte {pos}; a dot separates prefix and topic in /dev/shm, so a dotted prefix would share names with another: use '-' or '_'")]
    DotInPrefix {
        /// Its byte offset.
        pos: usize,
    },
}
