//! Model-based test: random interleavings of publish, receive, attach and detach on one
//! topic (one process, several subscribers), checked step by step against a reference
//! model of the ring: every message in order and byte-exact, `Full` exactly when a `Block`
//! subscriber's released cursor is a whole ring behind (releases batched by the model's
//! own statement of the rule), and `Lagged(n)` with exactly the model's `n`. Small rings and
//! long runs make the ring wrap around many times per case.

mod common;

use common::*;
use proptest::prelude::*;
use ringcast::*;

#[derive(Clone, Debug)]
enum Op {
    Publish,
    Recv(usize),
    Attach { oldest: bool },
    Detach(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Publish),
        5 => any::<usize>().prop_map(Op::Recv),
        1 => any::<bool>().prop_map(|oldest| Op::Attach { oldest }),
        1 => any::<usize>().prop_map(Op::Detach),
    ]
}

/// The reference: the publisher's count and each subscriber's next sequence and released
/// cursor.
struct Model {
    slots: u64,
    published: u64,
    subs: Vec<Sub>,
    /// `Block`: releases a subscriber defers at most.
    batch: u64,
}

#[derive(Clone, Copy)]
struct Sub {
    next: u64,
    /// `Block`: the cursor the publisher sees (everything below it released).
    released: u64,
}

impl Model {
    /// `Block`'s release rule: a release is deferred while the next message is already
    /// published and fewer than `batch` are deferred; otherwise the run is handed back.
    fn received(&mut self, i: usize) {
        let (published, batch) = (self.published, self.batch);
        let sub = &mut self.subs[i];
        sub.next += 1;
        if sub.next - sub.released >= batch || published == sub.next {
            sub.released = sub.next;
        }
    }
}

const CAP: usize = 48;

/// `batch`: the subscribers' `release_batch` option, or `None` for the default.
fn run_case(
    overflow: Overflow,
    slots: u64,
    batch: Option<u64>,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let (prefix, topic) = (prefix("model"), topic("m"));
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let mut publisher = Publisher::create(
        &topic,
        PublisherConfig::default()
            .prefix(&prefix)
            .slots(slots)
            .slot_size(CAP as u64)
            .overflow(overflow),
    )
    .expect("create");
    let attach = |oldest: bool| {
        let start = if oldest { Start::Oldest } else { Start::Latest };
        let opts = SubscriberOptions::default().prefix(&prefix).start(start);
        let opts = match batch {
            Some(b) => opts.release_batch(b),
            None => opts,
        };
        Subscriber::attach(&topic, opts).expect("attach")
    };
    let mut subs: Vec<Subscriber> = vec![attach(false)];
    let mut m = Model {
        slots,
        published: 0,
        subs: vec![Sub {
            next: 0,
            released: 0,
        }],
        // The documented default: 1; else clamped to the ring.
        batch: batch.map_or(1, |b| b.clamp(1, slots)),
    };
    for op in ops {
        match *op {
            Op::Publish => {
                let full = overflow == Overflow::Block
                    && m.subs.iter().any(|s| m.published - s.released >= m.slots);
                match publisher.try_loan() {
                    Ok(mut loan) => {
                        prop_assert!(!full, "loan granted over an unreleased slot");
                        let seq = loan.seq();
                        prop_assert_eq!(seq, m.published);
                        let len = len_for(seq, CAP);
                        fill(seq, &mut loan[..len]);
                        loan.commit(len);
                        m.published += 1;
                    }
                    Err(Full) => prop_assert!(full, "Full with room in the ring"),
                }
            }
            Op::Recv(i) if !subs.is_empty() => {
                let i = i % subs.len();
                let next = m.subs[i].next;
                let behind = m.published - next;
                let got = subs[i]
                    .try_recv()
                    .map(|s| (s.seq(), check(s.seq(), CAP, &s)));
                match got {
                    Ok((seq, bytes_ok)) => {
                        prop_assert!(
                            behind > 0 && behind <= m.slots,
                            "message while {behind} behind"
                        );
                        prop_assert_eq!(seq, next);
                        bytes_ok.map_err(TestCaseError::fail)?;
                        m.received(i);
                    }
                    Err(TryRecvError::Empty) => prop_assert_eq!(behind, 0),
                    Err(TryRecvError::Lagged(n)) => {
                        prop_assert_eq!(overflow, Overflow::Overwrite);
                        prop_assert!(behind > m.slots);
                        // Idle publisher: the oldest intact message is published - slots.
                        prop_assert_eq!(n, behind - m.slots);
                        m.subs[i].next += n;
                        prop_assert_eq!(subs[i].next_seq(), m.subs[i].next);
                    }
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                }
            }
            Op::Recv(_) => {}
            Op::Attach { oldest } if subs.len() < 6 => {
                let sub = attach(oldest);
                let (w, n) = (m.published, m.slots);
                let start = sub.next_seq();
                match (overflow, oldest) {
                    (_, false) => prop_assert_eq!(start, w),
                    (Overflow::Overwrite, true) => prop_assert_eq!(start, w.saturating_sub(n)),
                    // Block replays from the oldest message the publisher promises to keep.
                    (Overflow::Block, true) => {
                        prop_assert!(start >= w.saturating_sub(n) && start <= w)
                    }
                }
                subs.push(sub);
                m.subs.push(Sub {
                    next: start,
                    released: start,
                });
            }
            Op::Attach { .. } => {}
            Op::Detach(i) if !subs.is_empty() => {
                let i = i % subs.len();
                drop(subs.remove(i));
                m.subs.remove(i);
            }
            Op::Detach(_) => {}
        }
    }
    // Drain: every subscriber gets the rest, then Disconnected after the publisher closes.
    drop(publisher);
    for (sub, model) in subs.iter_mut().zip(m.subs.iter_mut()) {
        let next = &mut model.next;
        loop {
            match sub.try_recv() {
                Ok(sample) => {
                    prop_assert_eq!(sample.seq(), *next);
                    *next += 1;
                }
                Err(TryRecvError::Lagged(n)) => *next += n,
                Err(TryRecvError::Disconnected) => break,
                Err(e) => prop_assert!(false, "unexpected {e:?} while draining"),
            }
        }
        prop_assert_eq!(*next, m.published);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn overwrite_matches_the_model(slots in prop::sample::select(vec![2u64, 4, 8]),
                                   ops in prop::collection::vec(op(), 1..400)) {
        run_case(Overflow::Overwrite, slots, None, &ops)?;
    }

    #[test]
    fn block_matches_the_model(slots in prop::sample::select(vec![2u64, 4, 8, 16]),
                               batch in prop::sample::select(vec![None, Some(1), Some(3), Some(64)]),
                               ops in prop::collection::vec(op(), 1..400)) {
        run_case(Overflow::Block, slots, batch, &ops)?;
    }
}
