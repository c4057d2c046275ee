//! A thousand topics through one pair of bridges: a fixed number of threads whatever the
//! number of topics, every topic discovered and flowing, in order, and every import ending
//! when its source does. (How fast, and at what idle cost, is the bench suite's
//! `bridge-scale` row, not a timed assertion here.)

mod harness;

use harness::*;
use ringcast::*;

const TOPICS: usize = 1000;
/// Threads a bridge may add beyond Zenoh's own for its topics: the export and import
/// threads and the wait set's helpers (one per 128 members). A thread per topic would be
/// over a thousand.
const MOST_THREADS: usize = 80;

fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the bridge's tasks")
        .count()
}

#[test]
fn a_thousand_topics_cross_a_bridge_pair_on_a_fixed_number_of_threads() {
    let mut pair = Pair::new("scale");
    let names: Vec<String> = (0..TOPICS).map(|i| format!("s{i}")).collect();
    pair.topics(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let mut pubs: Vec<Publisher> = names
        .iter()
        .map(|t| {
            let config = PublisherConfig::default()
                .prefix(pair.a.as_str())
                .overflow(Overflow::Block)
                .slots(8)
                .slot_size(64);
            Publisher::create(t, config).expect("source topic")
        })
        .collect();
    let roles = |flag: &'static str| -> Vec<&str> {
        names.iter().flat_map(|t| [flag, t.as_str()]).collect()
    };
    let a = pair.bridge_a(&roles("--export"));
    let b = pair.bridge_b(&roles("--import"));

    // Every topic appears on B, and A's bridge attaches to every source once B listens.
    let mut subs: Vec<Subscriber> = names.iter().map(|t| attach(&pair.b, t)).collect();
    for p in &mut pubs {
        p.wait_for_subscribers(1, WAIT)
            .expect("the exporting bridge attaches");
    }
    let (ta, tb) = (threads(a.pid()), threads(b.pid()));
    assert!(
        ta < MOST_THREADS && tb < MOST_THREADS,
        "threads: exporting bridge {ta}, importing bridge {tb} (at most {MOST_THREADS})"
    );

    // Three rounds over every topic: each message arrives once, in its topic's order.
    for round in 0..3u8 {
        for (i, p) in pubs.iter_mut().enumerate() {
            p.send(&message(i, round)).expect("send");
        }
    }
    for (i, s) in subs.iter_mut().enumerate() {
        for round in 0..3u8 {
            let m = s
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("topic {i}, message {round}: {e}"));
            assert_eq!(&*m, &message(i, round)[..], "topic {i}, message {round}");
        }
    }
    // Half the sources close: exactly their imports end, the others still flow.
    let survivors: Vec<Publisher> = pubs
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| (i % 2 == 1).then_some(p))
        .collect();
    for (i, s) in subs.iter_mut().enumerate().filter(|(i, _)| i % 2 == 0) {
        match s.recv_timeout(WAIT) {
            Err(RecvTimeoutError::Disconnected) => {}
            other => panic!(
                "topic {i}: expected its end, got {:?}",
                other.map(|m| m.seq())
            ),
        }
    }
    for (k, mut p) in survivors.into_iter().enumerate() {
        let i = 2 * k + 1;
        p.send(&message(i, 3)).expect("send");
        let m = subs[i].recv_timeout(WAIT).expect("a survivor's message");
        assert_eq!(&*m, &message(i, 3)[..], "topic {i} after the others closed");
    }
}

fn message(topic: usize, round: u8) -> Vec<u8> {
    let mut m = (topic as u32).to_le_bytes().to_vec();
    m.push(round);
    m
}
