//! The four sensor publishers of the `multi_topic` and `async_node` examples.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ringcast::{Overflow, Publisher, PublisherConfig};

use super::{field, result_of, spawn_role};

/// The whole example `example`: run plainly, it starts one publisher process per sensor,
/// runs `node` (which returns how many messages it received of each topic, in [`TOPICS`]
/// order) and checks that every published message arrived; re-executed as
/// `publisher PREFIX TOPIC`, it is that sensor.
pub fn run(example: &str, node: impl FnOnce(&str) -> Result<Vec<u64>, String>) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        None => parent(example, node),
        Some("publisher") if args.len() == 3 => publisher(&args[1], &args[2]),
        _ => Err(format!("usage: {example} [publisher PREFIX TOPIC]")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{example} {}: {e}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

fn parent(
    example: &str,
    node: impl FnOnce(&str) -> Result<Vec<u64>, String>,
) -> Result<(), String> {
    let prefix = format!("rcex{}{}", example.replace('_', ""), std::process::id());
    let children = TOPICS
        .iter()
        .map(|(topic, _, _)| {
            let args = ["publisher", prefix.as_str(), topic].map(String::from);
            spawn_role(&args).map_err(|e| format!("cannot start the {topic} publisher: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let received = node(&prefix)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    for (child, ((topic, _, _), got)) in children.into_iter().zip(TOPICS.iter().zip(received)) {
        let result = result_of(child, deadline).map_err(|e| format!("{topic} publisher: {e}"))?;
        let sent = field(&result, "sent");
        println!("{topic:>9}: {got:>5} received of {sent:>5} published");
        if got != sent {
            return Err(format!("{topic}: received {got} of {sent}"));
        }
    }
    Ok(())
}

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
