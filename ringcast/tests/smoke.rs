//! Smoke test: one publisher, one subscriber, both policies, in one process.
use ringcast::*;

#[test]
fn smoke_both_policies() {
    for overflow in [Overflow::Overwrite, Overflow::Block] {
        let prefix = format!("rcsmoke{}", std::process::id());
        let topic = format!("t{overflow:?}");
        let mut p = Publisher::create(
            &topic,
            PublisherConfig::default()
                .prefix(&prefix)
                .slots(4)
                .slot_size(64)
                .overflow(overflow),
        )
        .unwrap();
        let mut s =
            Subscriber::attach(&topic, SubscriberOptions::default().prefix(&prefix)).unwrap();
        assert_eq!(s.try_recv().unwrap_err(), TryRecvError::Empty);
        for i in 0..3u8 {
            p.send(&[i; 10]).unwrap();
        }
        for i in 0..3u8 {
            let m = s.try_recv().unwrap();
            assert_eq!(&*m, &[i; 10]);
            assert_eq!(m.seq(), i as u64);
        }
        drop(p);
        assert_eq!(s.recv().unwrap_err(), RecvError::Disconnected);
    }
}
