//! loom model of a service's request and response (what `ringcast-service` builds on):
//! two clients, each on its own lane of the request topic, send one request each and
//! sleep on their own response ring; the server sleeps on the request topic, reads each
//! request in place, and answers on the response ring of the lane the reader says the
//! request came from. It checks that no wake-up is lost on any of the three futexes
//! (a lost one is a loom deadlock), that each response reaches the client that asked (a
//! misrouted response leaves the other client asleep for ever: a deadlock too), and that
//! no message is torn or written while held. The negative control
//! (`--cfg ringcast_loom_mutant_service`) makes the reader report the lane a poll started
//! from instead of the lane whose message it found, so the server misroutes.
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use ringcast_core::geometry::SegmentConfig;
use ringcast_core::memory::SegmentMemory;
use ringcast_core::ring::{Poll, Start};
use ringcast_core::Overflow;
use ringcast_loom_tests::model::*;

fn ring(publishers: u64) -> Arc<SegmentMemory> {
    Arc::new(SegmentMemory::model_with(SegmentConfig {
        slots: 2,
        max_subscribers: 1,
        max_publishers: publishers,
        overflow: Overflow::Block,
        ..Default::default()
    }))
}

#[test]
fn each_response_reaches_the_client_that_asked_and_no_wake_up_is_lost() {
    check_with_bound(2, || {
        let requests = ring(2);
        let responses = [ring(1), ring(1)];
        // The server attaches to the requests and each client to its response ring
        // before any request is sent (a client greets only once its ring exists).
        let mut server = attach(&requests, 0, Start::Oldest);
        let mut answer = [writer(&responses[0]), writer(&responses[1])];
        let clients: Vec<_> = (0..2)
            .map(|lane| {
                let (requests, mine) = (requests.clone(), responses[lane].clone());
                let mut inbox = attach(&mine, 0, Start::Oldest);
                thread::spawn(move || {
                    let mut w = ringcast_core::model::join_lane(requests.clone(), lane)
                        .expect("the lane is free");
                    publish_lane(&mut w, &requests);
                    // Its one response, on its own ring (sleeping until it comes).
                    receive_until(&mut inbox, &mine, 1);
                    ringcast_core::model::leave_lane(w);
                })
            })
            .collect();
        let mut served = 0;
        while served < 2 {
            match server.poll() {
                Poll::Ready { seq, .. } => {
                    let lane = server.lane();
                    let mut got = [0u64; 2];
                    requests.model_read_in_place_lane(lane, seq, &mut got);
                    assert!(intact(seq, &got), "torn message {seq}: {got:?}");
                    server.release(seq);
                    publish(&mut answer[lane], &responses[lane]);
                    served += 1;
                }
                Poll::Empty => {
                    server.sleep(None);
                }
                p => panic!("unexpected {p:?}"),
            }
        }
        for c in clients {
            c.join().unwrap();
        }
    });
}
