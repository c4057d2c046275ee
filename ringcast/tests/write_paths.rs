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
