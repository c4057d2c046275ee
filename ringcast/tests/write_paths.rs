//! The copy-in paths: `Loan::write_at` (atomic word stores under `Overwrite`, a plain copy
//! under `Block`) writes exactly the bytes asked at any offset, merging partial words with
//! what the slot already holds, and `send` goes through it.

mod common;

use common::*;
use ringcast::*;

fn round_trip(overflow: Overflow) {
    let n = Names::new("wpath", "writeat");
    let mut p = Publisher::create(
        &n.topic,
        PublisherConfig::default()
            .prefix(&n.prefix)
            .slots(4)
            .slot_size(40)
            .overflow(overflow),
    )
    .unwrap();
    let mut sub =
        Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix)).unwrap();
    // Pieces at odd offsets and lengths, out of order, overlapping word boundaries.
    let mut want = [0u8; 37];
    let pieces: [(usize, &[u8]); 5] = [
        (3, b"hello"),
        (0, b"abc"),
        (8, b"0123456789abcdefg"),
        (25, b"XY"),
        (27, b"0987654321"),
    ];
    let mut loan = p.loan();
    loan.write_at(0, &[0u8; 40]);
    for (at, bytes) in pieces {
        loan.write_at(at, bytes);
        want[at..at + bytes.len()].copy_from_slice(bytes);
    }
    loan.commit(want.len());
    assert_eq!(&*sub.try_recv().expect("the message"), &want[..]);
    // `send` of every length from 0 to the slot size.
    for len in 0..=40usize {
        let bytes: Vec<u8> = (0..len as u8)
            .map(|b| b.wrapping_mul(37) ^ len as u8)
            .collect();
        p.send(&bytes).unwrap();
        assert_eq!(&*sub.try_recv().expect("sent"), &bytes[..], "len {len}");
    }
}

#[test]
fn write_at_and_send_write_exact_bytes_under_overwrite() {
    round_trip(Overflow::Overwrite);
}

#[test]
fn write_at_and_send_write_exact_bytes_under_block() {
    round_trip(Overflow::Block);
}

/// The address ranges this process maps of the topic's segment file (found by inode: the
/// publisher mapped it before it had a name).
fn mapped_ranges(n: &Names) -> Vec<(usize, usize)> {
    use std::os::unix::fs::MetadataExt;
    let path = format!("/dev/shm/{}.{}", n.prefix, n.topic);
    let inode = std::fs::metadata(&path).unwrap().ino().to_string();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some(inode.as_str()))
        .map(|l| {
            let (lo, hi) = l
                .split_whitespace()
                .next()
                .unwrap()
                .split_once('-')
                .unwrap();
            (
                usize::from_str_radix(lo, 16).unwrap(),
                usize::from_str_radix(hi, 16).unwrap(),
            )
        })
        .collect()
}

/// Under `Overwrite` a lapped subscriber in this very process may be copying the slot
/// with atomic loads while the publisher writes it: a loan is therefore the publisher's
/// private staging memory (outside the shared mapping), published with atomic stores at
/// commit, and an uncommitted write reaches nobody. Under `Block` it is the slot itself.
#[test]
fn an_overwrite_loan_is_private_staging_and_a_block_loan_is_the_slot() {
    for overflow in [Overflow::Overwrite, Overflow::Block] {
        let n = Names::new("wpath", "staging");
        let cfg = PublisherConfig::default()
            .prefix(&n.prefix)
            .slots(4)
            .slot_size(64)
            .overflow(overflow);
        let mut p = Publisher::create(&n.topic, cfg).unwrap();
        let mut sub =
            Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix)).unwrap();
        let ranges = mapped_ranges(&n);
        assert!(!ranges.is_empty(), "the segment is not mapped");
        let at = {
            let mut loan = p.loan();
            loan[..5].copy_from_slice(b"first");
            loan.as_mut_ptr() as usize
        }; // the loan goes uncommitted: nothing published
        let in_segment = ranges.iter().any(|&(lo, hi)| lo <= at && at < hi);
        assert_eq!(
            in_segment,
            overflow == Overflow::Block,
            "{overflow:?}: the loan's bytes are {} the shared mapping",
            if in_segment { "inside" } else { "outside" }
        );
        assert!(matches!(sub.try_recv(), Err(TryRecvError::Empty)));
        let mut loan = p.pending_loan().expect("the slot stays claimed");
        assert_eq!(&loan[..5], b"first", "the claimed loan keeps its bytes");
        loan[5..8].copy_from_slice(b"!!!");
        loan.commit(8);
        assert_eq!(&*sub.try_recv().unwrap(), b"first!!!");
        assert!(p.pending_loan().is_none());
    }
}
