//! loom model of the subscriber-entry lifecycle's reaper: a subscriber killed while it
//! sleeps leaves its sleeper count and its `Active` entry behind; the publisher's reaper
//! (which frees dead owners' entries when the ring is full) and a new subscriber claiming
//! the same entry race to clean up. The count must be taken back exactly once (never left
//! behind, which costs a wake call per publish for ever; never twice, which would wrap the
//! count and un-count a live sleeper), and the dead subscriber must stop gating the
//! publisher. The reaper, the attach and the sleep announcement are the shipped code; the
//! kernel's OFD locks are model locks. (The count itself is taken back with a swap of the
//! entry's `asleep` flag, so two cleaners could not double it; what the entry lock protects
//! is the new owner: a reaper that freed an entry without its lock frees a *live*
//! subscriber's entry, and the publisher then runs over the slots it reads in place. The
//! negative control does exactly that and this model catches it: the new owner finds its
//! slot overrun.)
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use ringcast_core::memory::SegmentMemory;
use ringcast_core::model;
use ringcast_core::ring::Start;
use ringcast_core::Overflow;
use ringcast_loom_tests::model::*;

#[test]
fn a_dead_sleeper_is_reaped_once_and_the_entrys_new_owner_is_never_disturbed() {
    loom::model(|| {
        let mem = Arc::new(SegmentMemory::model(2, Overflow::Block, 1));
        // A subscriber attaches, announces a sleep, and is killed in it.
        model::die_asleep(attach(&mem, 0, Start::Latest));
        assert_eq!(model::sleepers(&mem), 1);
        let mut w = writer(&mem);
        let wmem = mem.clone();
        // The publisher fills the ring; the dead subscriber gates the third message until
        // the reaper frees its entry (or the new claimer replaces it).
        let publisher = thread::spawn(move || {
            for _ in 0..3 {
                while try_publish(&mut w, &wmem).is_err() {
                    model::reap(&wmem);
                    if try_publish(&mut w, &wmem).is_ok() {
                        break;
                    }
                    w.sleep_for_room(None);
                }
            }
            w.close();
            w.next_seq()
        });
        // Meanwhile a new subscriber claims the same entry if its lock is free (a real
        // claim would try the next entry otherwise), reads what it finds in place (loom
        // reports any write to a slot it holds), then leaves.
        if mem.model_lock(0) {
            // SAFETY: we hold the entry's model lock until after the reader is dropped.
            let mut r = unsafe { model::reader(mem.clone(), 0, Start::Oldest) };
            loop {
                match recv_in_place(&mut r, &mem) {
                    Got::Message(_) => {}
                    Got::Empty => {
                        r.sleep(None);
                    }
                    Got::Closed => break,
                    g => panic!("unexpected {g:?}"),
                }
            }
            drop(r);
            mem.model_unlock(0);
        }
        assert_eq!(publisher.join().unwrap(), 3);
        assert_eq!(
            model::sleepers(&mem),
            0,
            "the dead sleeper's count was not taken back exactly once"
        );
    });
}
