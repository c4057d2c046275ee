//! The four sensor publishers of the `multi_topic` and `async_node` examples.

use std::time::{Duration, Instant};

use ringcast::{Overflow, Publisher, PublisherConfig};

/// (topic, rate in Hz, payload bytes)
pub const TOPICS: [(&str, u64, usize); 4] = [
    ("camera", 30, 64 * 1024),
    ("lidar", 100, 16 * 1024),
    ("imu", 1000, 48),
    ("odometry", 50, 96),
];
pub const PUBLISH_FOR: Duration = Duration::from_secs(2);

/// One sensor: publishes at its rate for PUBLISH_FOR once the node attached, then closes.
pub fn publisher(prefix: &str, topic: &str) -> Result<(), String> {
    let &(_, hz, bytes) = TOPICS
        .iter()
        .find(|(t, _, _)| *t == topic)
        .ok_or_else(|| format!("unknown topic {topic}"))?;
    let config = PublisherConfig::default()
        .prefix(prefix)
        .slots(16)
        .slot_size(bytes as u64)
        .overflow(Overflow::Block);
    let mut p = Publisher::create(topic, config).map_err(|e| e.to_string())?;
    p.wait_for_subscribers(1, Duration::from_secs(10))
        .map_err(|_| "the node never attached".to_string())?;
    let period = Duration::from_nanos(1_000_000_000 / hz);
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < PUBLISH_FOR {
        let mut loan = p.loan();
        loan[..8].copy_from_slice(&seq.to_le_bytes());
        loan.commit(bytes);
        seq += 1;
        let due = start + period * seq as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    println!("RESULT sent={seq}");
    Ok(())
}
