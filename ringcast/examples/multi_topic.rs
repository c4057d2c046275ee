//! multi_topic: one thread reads four topics (camera, lidar, imu, odometry) fed by four
//! publisher processes at different rates, through one `WaitSet`.
//!
//! ```text
//! cargo run --release --example multi_topic
//! ```
//!
//! The example re-executes itself as four publishers (30 Hz camera, 100 Hz lidar, 1 kHz
//! IMU, 50 Hz odometry, each for two seconds, then they close their topics). The node loop
//! in `node()` waits on all four at once, drains whichever are ready, checks that every
//! message of every topic arrives exactly once and in order, and removes a topic from the
//! set when its publisher is gone. Prints one line per topic; exits non-zero if a check
//! fails.

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::sensors::{publisher, TOPICS};
use common::{field, result_of, spawn_role};
use ringcast::{Key, Subscriber, SubscriberOptions, TryRecvError, WaitSet};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        None => parent(),
        Some("publisher") if args.len() == 3 => publisher(&args[1], &args[2]),
        _ => Err("usage: multi_topic [publisher PREFIX TOPIC]".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("multi_topic {}: {e}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

fn parent() -> Result<(), String> {
    let prefix = format!("rcexmt{}", std::process::id());
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

/// The node: one thread, one wait set, four topics.
fn node(prefix: &str) -> Result<Vec<u64>, String> {
    let mut set = WaitSet::new();
    let mut keys: Vec<Key<Subscriber>> = Vec::new();
    for (topic, _, _) in TOPICS {
        let opts = SubscriberOptions::default().prefix(prefix);
        let sub = Subscriber::attach_wait(topic, opts, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        keys.push(set.add(sub).map_err(|e| e.to_string())?);
    }
    let mut next = [0u64; TOPICS.len()];
    let mut open = TOPICS.len();
    while open > 0 {
        let woke = set
            .wait_timeout(Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        if woke.timed_out() {
            return Err(format!("nothing for 5 s; received so far {next:?}"));
        }
        for (i, &key) in keys.iter().enumerate() {
            let Some(sub) = set.ready_mut(key) else {
                continue;
            };
            let ended = loop {
                match sub.try_recv() {
                    Ok(sample) => {
                        let seq = u64::from_le_bytes(sample[..8].try_into().unwrap());
                        if sample.seq() != next[i] || seq != next[i] {
                            return Err(format!(
                                "{}: got #{seq}, expected #{}",
                                TOPICS[i].0, next[i]
                            ));
                        }
                        next[i] += 1;
                    }
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                    Err(e) => return Err(format!("{}: {e}", TOPICS[i].0)),
                }
            };
            if ended {
                set.remove(key);
                open -= 1;
            }
        }
    }
    Ok(next.to_vec())
}
