//! async_node: the `multi_topic` node as tokio tasks, one per topic, on a two-worker
//! runtime; every task awaits `recv_async` and the process's one reactor thread wakes them.
//!
//! ```text
//! cargo run --release --example async_node
//! ```
//!
//! Four publisher processes (30 Hz camera, 100 Hz lidar, 1 kHz IMU, 50 Hz odometry, two
//! seconds each); each task checks that its topic's messages arrive once and in order and
//! ends when the publisher is gone. Prints one line per topic; exits non-zero on a failed
//! check.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use common::sensors::{self, TOPICS};
use ringcast::{RecvError, Subscriber, SubscriberOptions};

fn main() -> ExitCode {
    sensors::run("async_node", |prefix| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(node(prefix))
    })
}

/// The node: one task per topic.
async fn node(prefix: &str) -> Result<Vec<u64>, String> {
    let mut tasks = Vec::new();
    for (topic, _, _) in TOPICS {
        let opts = SubscriberOptions::default().prefix(prefix);
        let mut sub = Subscriber::attach_wait(topic, opts, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        tasks.push(tokio::spawn(async move {
            let mut next = 0u64;
            loop {
                match sub.recv_async().await {
                    Ok(sample) => {
                        let seq = u64::from_le_bytes(sample[..8].try_into().unwrap());
                        if sample.seq() != next || seq != next {
                            return Err(format!("{topic}: got #{seq}, expected #{next}"));
                        }
                        next += 1;
                    }
                    Err(RecvError::Disconnected) => return Ok(next),
                    Err(e) => return Err(format!("{topic}: {e}")),
                }
            }
        }));
    }
    let mut received = Vec::new();
    for t in tasks {
        received.push(t.await.map_err(|e| e.to_string())??);
    }
    Ok(received)
}
