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
use std::time::Duration;

use common::sensors::{self, TOPICS};
use ringcast::{Key, Subscriber, SubscriberOptions, TryRecvError, WaitSet};

fn main() -> ExitCode {
    sensors::run("multi_topic", node)
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
