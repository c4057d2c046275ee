//! Many publishers per topic (`PublisherConfig::max_publishers`): each publisher writes
//! its own lane; a subscriber attached once receives every lane's messages, each
//! publisher's in its order, never twice, never torn, with the publisher named; joining
//! needs the same configuration and a free lane; no lane starves another; a publisher
//! that leaves (or dies) leaves its lane to be drained and taken again; the last one to
//! leave ends the topic. Real processes where processes matter, SIGKILL mid-burst.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use ringcast::*;

const CHILD: &str = "lanes_child_entry";
const LONG: Duration = Duration::from_secs(30);
const CAP: usize = 64;

/// Entry point of the child processes (runs only when re-executed with a role).
#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn lanes_child_entry() {
    match std::env::var(ROLE).as_deref() {
        Ok("publisher") => publisher_child(),
        Ok("subscriber") => {
            let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
            let _sub = Subscriber::attach(&topic, SubscriberOptions::default().prefix(&prefix))
                .expect("attach");
            println!("ATTACHED");
            // Reads nothing: holds both lanes back until it is killed.
            std::thread::sleep(LONG);
        }
        _ => {}
    }
}

/// Joins (or creates) the shared topic PREFIX/TOPIC with POLICY, says "JOINED <lane>",
/// publishes COUNT self-checking messages (a 1 ms pause every PAUSE_EVERY, if set), says
/// "DONE" and leaves.
fn publisher_child() {
    let (prefix, topic, count): (String, String, u64) = (env("PREFIX"), env("TOPIC"), env("COUNT"));
    let block = std::env::var("POLICY").as_deref() == Ok("block");
    let pause_every: u64 = std::env::var("PAUSE_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut p = Publisher::create(&topic, config(&prefix, block)).expect("join");
    println!("JOINED {}", p.lane());
    for seq in 0..count {
        publish(&mut p, seq);
        if pause_every != 0 && seq % pause_every == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    println!("DONE");
    if std::env::var("HOLD").is_ok() {
        // Stay in the topic until killed.
        std::thread::sleep(LONG);
    }
}

fn config(prefix: &str, block: bool) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(prefix)
        .slots(64)
        .slot_size(CAP as u64)
        .max_publishers(4)
        .overflow(if block {
            Overflow::Block
        } else {
            Overflow::Overwrite
        })
}

fn publish(p: &mut Publisher, seq: u64) {
    let len = len_for(seq, CAP);
    let mut loan = p.loan();
    fill(seq, &mut loan[..len]);
    loan.commit(len);
}

/// Per publisher: the next sequence expected (every one before it received and checked,
/// or counted lost), and per lane what was lost.
#[derive(Default, Debug)]
struct Books {
    next: BTreeMap<PublisherId, u64>,
    lost: u64,
    lost_in: BTreeMap<u32, u64>,
    /// The sequence expected next in each lane (whoever writes it).
    lane_next: BTreeMap<u32, u64>,
}

impl Books {
    fn take(&mut self, s: &Sample<'_>) {
        let id = s.publisher();
        let lane_next = self.lane_next.entry(id.lane).or_insert(s.seq());
        assert_eq!(
            s.seq(),
            *lane_next,
            "lane {}: out of order or twice",
            id.lane
        );
        *lane_next += 1;
        let next = self.next.entry(id).or_insert(s.seq());
        assert_eq!(s.seq(), *next, "publisher {id}: out of order or twice");
        check(s.seq(), CAP, s).unwrap_or_else(|e| panic!("publisher {}: {e}", s.publisher()));
        *next += 1;
    }

    /// Lane `lane` lost `n`: its next expected sequence moves on by `n`.
    fn lag(&mut self, lane: u32, n: u64) {
        assert!(n > 0);
        self.lost += n;
        *self.lost_in.entry(lane).or_default() += n;
        if let Some(next) = self.lane_next.get_mut(&lane) {
            *next += n;
        }
        for (id, next) in self.next.iter_mut() {
            if id.lane == lane {
                *next += n;
            }
        }
    }
}

/// Receives until the topic ends (every publisher gone and everything read).
fn read_to_end(sub: &mut Subscriber) -> Books {
    let mut books = Books::default();
    loop {
        let lag = match sub.recv_timeout(LONG) {
            Ok(s) => {
                books.take(&s);
                continue;
            }
            Err(RecvTimeoutError::Lagged(n)) => n,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("subscriber: {e}"),
        };
        books.lag(sub.lagged_lane(), lag);
    }
    for (&lane, &lost) in &books.lost_in {
        assert_eq!(sub.lost_in(lane), Some(lost), "lane {lane}'s losses");
    }
    books
}

#[test]
fn two_publishers_in_one_process_reach_one_subscriber_each_in_order() {
    for block in [true, false] {
        let n = Names::new("lanes", "two");
        let a = Publisher::create(&n.topic, config(&n.prefix, block)).expect("create");
        let b = Publisher::create(&n.topic, config(&n.prefix, block)).expect("join");
        assert_ne!(a.lane(), b.lane());
        assert_ne!(a.id(), b.id());
        let mut sub = Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
            .expect("attach");
        let ids = (a.id(), b.id());
        let producers: Vec<_> = [a, b]
            .into_iter()
            .map(|mut p| {
                std::thread::spawn(move || {
                    for seq in 0..5_000 {
                        publish(&mut p, seq);
                    }
                })
            })
            .collect();
        let reader = std::thread::spawn(move || read_to_end(&mut sub));
        for p in producers {
            p.join().unwrap();
        }
        let books = reader.join().unwrap();
        if block {
            assert_eq!(books.lost, 0);
            assert_eq!(books.next.get(&ids.0), Some(&5_000));
            assert_eq!(books.next.get(&ids.1), Some(&5_000));
        } else {
            // Overwrite: what a lane lost is counted; what arrived is in order (checked).
            let received: u64 = books.next.values().sum();
            assert!(received <= 10_000);
        }
        assert!(books.next.keys().all(|id| *id == ids.0 || *id == ids.1));
    }
}

#[test]
fn joining_needs_the_same_configuration_and_a_free_lane() {
    let n = Names::new("lanes", "join");
    let cfg = config(&n.prefix, true);
    let _a = Publisher::create(&n.topic, cfg.clone()).expect("create");
    let e = Publisher::create(&n.topic, cfg.clone().slots(128)).unwrap_err();
    assert!(
        matches!(&e, CreateError::Mismatch { field: "slots", .. }),
        "{e}"
    );
    let e = Publisher::create(&n.topic, cfg.clone().overflow(Overflow::Overwrite)).unwrap_err();
    assert!(
        matches!(
            &e,
            CreateError::Mismatch {
                field: "overflow policy",
                ..
            }
        ),
        "{e}"
    );
    let e = Publisher::create(&n.topic, cfg.clone().max_publishers(2)).unwrap_err();
    assert!(
        matches!(
            &e,
            CreateError::Mismatch {
                field: "max publishers",
                ..
            }
        ),
        "{e}"
    );
    let _b = Publisher::create(&n.topic, cfg.clone()).expect("second");
    let _c = Publisher::create(&n.topic, cfg.clone()).expect("third");
    let _d = Publisher::create(&n.topic, cfg.clone()).expect("fourth");
    let e = Publisher::create(&n.topic, cfg.clone()).unwrap_err();
    assert!(
        matches!(e, CreateError::PublishersFull { max: 4, .. }),
        "{e}"
    );
    // An exclusive topic is still exclusive.
    let x = Names::new("lanes", "excl");
    let _only = Publisher::create(&x.topic, config(&x.prefix, true).max_publishers(1)).unwrap();
    let e = Publisher::create(&x.topic, config(&x.prefix, true).max_publishers(1)).unwrap_err();
    assert!(matches!(e, CreateError::AlreadyPublished { .. }), "{e}");
    // Asking for another number of publishers than a live topic admits names it.
    let e = Publisher::create(&x.topic, config(&x.prefix, true)).unwrap_err();
    assert!(
        matches!(
            &e,
            CreateError::Mismatch {
                field: "max publishers",
                ..
            }
        ),
        "{e}"
    );
    let e = Publisher::create(&n.topic, cfg.clone().max_publishers(1)).unwrap_err();
    assert!(
        matches!(
            &e,
            CreateError::Mismatch {
                field: "max publishers",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_busy_publisher_cannot_starve_another() {
    let n = Names::new("lanes", "fair");
    let cfg = config(&n.prefix, true).slots(4096);
    let mut busy = Publisher::create(&n.topic, cfg.clone()).expect("create");
    let mut quiet = Publisher::create(&n.topic, cfg).expect("join");
    let mut sub = Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
        .expect("attach");
    for seq in 0..4000 {
        publish(&mut busy, seq);
    }
    for seq in 0..10 {
        publish(&mut quiet, seq);
    }
    // All of it is waiting now: the quiet publisher's messages come within a quantum of
    // the busy one's each, never after the 4000.
    let mut order = Vec::new();
    for _ in 0..(10 * (ringcast::LANE_QUANTUM as usize + 1)) {
        let s = sub.try_recv().expect("waiting");
        order.push(s.publisher() == quiet.id());
    }
    let quiet_seen = order.iter().filter(|&&q| q).count();
    assert_eq!(
        quiet_seen, 10,
        "the quiet publisher's 10 within 10 quanta: {order:?}"
    );
}

#[test]
fn a_sleeping_subscriber_is_woken_by_a_publisher_that_joins_later() {
    let n = Names::new("lanes", "late");
    let cfg = config(&n.prefix, true);
    let _first = Publisher::create(&n.topic, cfg.clone()).expect("create");
    let opts = SubscriberOptions::default()
        .prefix(&n.prefix)
        .wait_strategy(WaitStrategy::Park);
    let mut sub = Subscriber::attach(&n.topic, opts).expect("attach");
    let waiter = std::thread::spawn(move || {
        let s = sub
            .recv_timeout(LONG)
            .expect("woken by the newcomer's message");
        (s.publisher(), s.seq())
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut late = Publisher::create(&n.topic, cfg).expect("join");
    publish(&mut late, 0);
    assert_eq!(waiter.join().unwrap(), (late.id(), 0));
}

#[test]
fn a_left_lane_is_drained_and_taken_again_and_the_last_publisher_ends_the_topic() {
    let n = Names::new("lanes", "leave");
    let cfg = config(&n.prefix, true);
    let mut a = Publisher::create(&n.topic, cfg.clone()).expect("create");
    let mut b = Publisher::create(&n.topic, cfg.clone()).expect("join");
    let mut sub = Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
        .expect("attach");
    for seq in 0..10 {
        publish(&mut a, seq);
    }
    let (a_id, a_lane) = (a.id(), a.lane());
    drop(a);
    // The topic lives on with b; a's messages are all there.
    for seq in 0..3 {
        publish(&mut b, seq);
    }
    let mut books = Books::default();
    for _ in 0..13 {
        books.take(&sub.try_recv().expect("a's and b's"));
    }
    assert_eq!(books.next.get(&a_id), Some(&10));
    // A newcomer takes a's lane: its sequence continues there, under a new id.
    let mut c = Publisher::create(&n.topic, cfg).expect("join again");
    assert_eq!(c.lane(), a_lane);
    assert_ne!(c.id(), a_id);
    publish(&mut c, 10);
    let s = sub.try_recv().expect("c's first");
    assert_eq!((s.publisher(), s.seq()), (c.id(), 10));
    drop(s);
    drop(c);
    assert!(sub.publisher_alive(), "b still publishes");
    drop(b);
    assert_eq!(
        sub.recv_timeout(LONG).unwrap_err(),
        RecvTimeoutError::Disconnected
    );
    // The name is free: a new topic can be created.
    let _new = Publisher::create(&n.topic, config(&n.prefix, true)).expect("a new topic");
}

#[test]
fn a_subscriber_sees_which_lanes_live_and_which_have_news() {
    let n = Names::new("lanes", "query");
    let cfg = config(&n.prefix, true);
    let mut a = Publisher::create(&n.topic, cfg.clone()).expect("create");
    let b = Publisher::create(&n.topic, cfg.clone()).expect("join");
    let mut sub = Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
        .expect("attach");
    let (al, bl) = (a.lane() as u32, b.lane() as u32);
    assert_eq!(sub.lane_publisher(al), Some(a.id()));
    assert_eq!(sub.lane_publisher(bl), Some(b.id()));
    // Lanes nobody took, and lanes the topic does not have.
    assert_eq!(sub.lane_publisher(3), None);
    assert_eq!(sub.lane_publisher(4), None);
    assert_eq!(sub.lane_publisher(u32::MAX), None);
    assert!(!sub.has_news_in(al) && !sub.has_news_in(bl) && !sub.has_news_in(9));
    assert_eq!(sub.next_seq_in(al), Some(0));
    assert_eq!(sub.next_seq_in(4), None);
    publish(&mut a, 0);
    assert!(sub.has_news_in(al) && !sub.has_news_in(bl));
    // b leaves: its lane has no live publisher, a's still has.
    let b_id = b.id();
    drop(b);
    assert_eq!(sub.lane_publisher(bl), None);
    assert_eq!(sub.lane_publisher(al), Some(a.id()));
    assert_eq!(sub.try_recv().expect("a's").seq(), 0);
    assert_eq!(sub.next_seq_in(al), Some(1));
    assert!(!sub.has_news_in(al));
    // A newcomer takes b's lane over under a new id.
    let c = Publisher::create(&n.topic, cfg).expect("join again");
    assert_eq!(c.lane() as u32, bl);
    assert_eq!(sub.lane_publisher(bl), Some(c.id()));
    assert_ne!(c.id(), b_id);
    // A publisher of a local topic has no origin.
    assert_eq!(c.origin(), None);
}

#[test]
fn a_publisher_that_joins_an_imported_topic_has_its_origin() {
    let n = Names::new("lanes", "origin");
    let first = Publisher::create(
        &n.topic,
        config(&n.prefix, true).imported_from("host-a:rc (bridge 1)"),
    )
    .expect("create");
    // Joining with another origin, or none, joins the topic with the topic's.
    let joined = Publisher::create(&n.topic, config(&n.prefix, true)).expect("join");
    assert_eq!(first.origin().as_deref(), Some("host-a:rc (bridge 1)"));
    assert_eq!(joined.origin(), first.origin());
}

#[test]
fn inspect_shows_every_lane_and_its_publisher() {
    let n = Names::new("lanes", "inspect");
    let cfg = config(&n.prefix, true);
    let mut a = Publisher::create(&n.topic, cfg.clone()).expect("create");
    let mut b = Publisher::create(&n.topic, cfg).expect("join");
    publish(&mut a, 0);
    publish(&mut b, 0);
    publish(&mut b, 1);
    let info = ringcast::inspect::inspect(&n.prefix, &n.topic).expect("inspect");
    assert_eq!(info.lanes.len(), 4);
    assert_eq!(info.write_cursor, 3);
    let live: Vec<(usize, u64)> = info
        .lanes
        .iter()
        .filter(|l| l.write_cursor > 0)
        .map(|l| (l.lane, l.write_cursor))
        .collect();
    assert_eq!(live, [(a.lane(), 1), (b.lane(), 2)]);
    assert!(info
        .lanes
        .iter()
        .all(|l| l.pid == std::process::id() || l.pid == 0));
}

/// Publishers in three processes share a topic; one is SIGKILLed mid-burst. The others go
/// on; the subscriber gets every message of the survivors, a gap-free prefix of the
/// victim's (it may have died mid-write: that message never appears), and the end when
/// the last leaves. Under `Overwrite`, per publisher, what arrived is in order and
/// received + lost balances exactly with what each published (the victim: as far as it
/// got).
#[test]
fn sigkill_of_one_publisher_mid_burst_leaves_the_others_and_the_books_exact() {
    for block in [true, false] {
        let n = Names::new("lanes", "kill");
        // The subscriber attaches first so it sees every lane from its first message.
        let _creator = Publisher::create(&n.topic, config(&n.prefix, block)).expect("create");
        let mut sub = Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
            .expect("attach");
        let spawn_pub = |count: u64, pause: u64| {
            spawn_talking(
                CHILD,
                "publisher",
                &[
                    ("PREFIX", n.prefix.clone()),
                    ("TOPIC", n.topic.clone()),
                    ("COUNT", count.to_string()),
                    ("PAUSE_EVERY", pause.to_string()),
                    (
                        "POLICY",
                        if block { "block" } else { "overwrite" }.to_owned(),
                    ),
                ],
            )
        };
        // The victim joins first: the survivor (which may finish at once under
        // `Overwrite`) must not leave its lane before the victim joined, or the victim
        // would take that lane over and continue its sequence (correct, but not what the
        // books here expect).
        let victim = spawn_pub(1_000_000, 100);
        victim.expect("JOINED", LONG);
        let survivor = spawn_pub(20_000, 0);
        survivor.expect("JOINED", LONG);
        drop(_creator);
        let reader = std::thread::spawn(move || read_to_end(&mut sub));
        std::thread::sleep(Duration::from_millis(150));
        victim.kill();
        let (code, _) = survivor.finish(LONG);
        assert_eq!(code, Some(0), "the survivor finished");
        let books = reader.join().unwrap();
        // Two publishers reached the subscriber (the creator published nothing).
        assert_eq!(books.next.len(), 2, "{books:?}");
        let counts: Vec<u64> = books.next.values().copied().collect();
        if block {
            assert_eq!(books.lost, 0);
            assert!(
                counts.contains(&20_000),
                "the survivor's 20000 all arrived: {counts:?}"
            );
        }
        assert!(counts.iter().all(|&c| c > 0));
    }
}

/// Every publisher of a shared topic is killed: subscribers see the end, and a new
/// publisher starts a new topic (it does not join the dead one).
#[test]
fn a_topic_whose_publishers_all_died_ends_and_is_created_anew() {
    let n = Names::new("lanes", "alldead");
    let _creator = Publisher::create(&n.topic, config(&n.prefix, true)).expect("create");
    let mut sub = Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
        .expect("attach");
    let child = spawn_talking(
        CHILD,
        "publisher",
        &[
            ("PREFIX", n.prefix.clone()),
            ("TOPIC", n.topic.clone()),
            ("COUNT", "5".to_owned()),
            ("PAUSE_EVERY", "0".to_owned()),
            ("POLICY", "block".to_owned()),
            ("HOLD", "1".to_owned()),
        ],
    );
    child.expect("DONE", LONG);
    // The creator leaves cleanly before the child: the child is then the last, and dies.
    drop(_creator);
    child.kill();
    let books = read_to_end(&mut sub);
    assert_eq!(books.next.values().copied().collect::<Vec<_>>(), [5]);
    let fresh = Publisher::create(&n.topic, config(&n.prefix, true)).expect("reclaim");
    assert_eq!(fresh.lane(), 0, "a new topic, not a join of the dead one");
}

/// A subscriber of a shared topic is one member of a wait set, one async receiver and one
/// drain: each is woken by, and gets, the messages of every lane.
#[test]
fn a_shared_topic_works_in_a_wait_set_async_and_drain() {
    let n = Names::new("lanes", "members");
    let cfg = config(&n.prefix, true);
    let mut a = Publisher::create(&n.topic, cfg.clone()).expect("create");
    let opts = SubscriberOptions::default()
        .prefix(&n.prefix)
        .wait_strategy(WaitStrategy::Park);
    let in_set = Subscriber::attach(&n.topic, opts.clone()).expect("attach");
    let mut in_async = Subscriber::attach(&n.topic, opts.clone()).expect("attach");
    let mut drained = Subscriber::attach(&n.topic, opts).expect("attach");
    let set_thread = std::thread::spawn(move || {
        let mut set = WaitSet::new();
        let k = set.add(in_set).expect("add");
        let mut got = Vec::new();
        while got.len() < 2 {
            set.wait_timeout(LONG).expect("wait");
            let m = set.get_mut(k).expect("member");
            while let Ok(s) = m.try_recv() {
                got.push(s.publisher());
            }
        }
        got
    });
    let async_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut got = Vec::new();
            while got.len() < 2 {
                got.push(in_async.recv_async().await.expect("message").publisher());
            }
            got
        })
    });
    std::thread::sleep(Duration::from_millis(100));
    // The second lane's publisher joins while all three wait.
    let mut b = Publisher::create(&n.topic, cfg).expect("join");
    publish(&mut b, 0);
    publish(&mut a, 0);
    let want = |got: Vec<PublisherId>| {
        let mut got = got;
        got.sort();
        let mut ids = vec![a.id(), b.id()];
        ids.sort();
        assert_eq!(got, ids);
    };
    want(set_thread.join().unwrap());
    want(async_thread.join().unwrap());
    let mut got = Vec::new();
    let d = drained.drain(16, |s| got.push(s.publisher()));
    assert_eq!(d.delivered, 2, "{d:?}");
    want(got);
}

/// A typed topic shared by two publishers: one type for all, checked at join.
#[test]
fn a_typed_topic_is_shared_by_publishers_of_its_type_only() {
    let n = Names::new("lanes", "typed");
    let cfg = PublisherConfig::default()
        .prefix(&n.prefix)
        .max_publishers(2)
        .overflow(Overflow::Block);
    let mut a = TypedPublisher::<u64>::create(&n.topic, cfg.clone()).expect("create");
    let mut b = TypedPublisher::<u64>::create(&n.topic, cfg.clone()).expect("join");
    let e = TypedPublisher::<u32>::create(&n.topic, cfg).unwrap_err();
    assert!(format!("{e}").contains("message type"), "{e}");
    let mut sub =
        TypedSubscriber::<u64>::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
            .expect("attach");
    a.send(&7).unwrap();
    b.send(&8).unwrap();
    let mut got: Vec<u64> = (0..2)
        .map(|_| u64::from(*sub.try_recv().expect("message")))
        .collect();
    got.sort();
    assert_eq!(got, [7, 8]);
}

/// Publishers killed at random moments, many inside their join: the topic, its live
/// publisher and its subscriber never notice; the killed ones' lanes become free again.
#[test]
fn publishers_killed_inside_their_join_leave_the_topic_whole() {
    let n = Names::new("lanes", "joinkill");
    let mut main = Publisher::create(&n.topic, config(&n.prefix, false)).expect("create");
    let mut sub = Subscriber::attach(&n.topic, SubscriberOptions::default().prefix(&n.prefix))
        .expect("attach");
    for round in 0..24u64 {
        let mut child = spawn(
            CHILD,
            "publisher",
            &[
                ("PREFIX", n.prefix.clone()),
                ("TOPIC", n.topic.clone()),
                ("COUNT", "1000000".to_owned()),
                ("PAUSE_EVERY", "0".to_owned()),
                ("POLICY", "overwrite".to_owned()),
            ],
        );
        // 0..11 ms: before, inside and after the join.
        std::thread::sleep(Duration::from_micros(round * 450));
        let _ = child.kill();
        let _ = child.wait();
        publish(&mut main, round);
    }
    // Every lane but ours is free again: three joins succeed.
    let others: Vec<Publisher> = (0..3)
        .map(|_| Publisher::create(&n.topic, config(&n.prefix, false)).expect("a free lane"))
        .collect();
    assert_eq!(others.len(), 3);
    // The subscriber got the main publisher's 24, in order (other lanes may have given
    // some of their messages before their publishers died).
    let mut mine = Vec::new();
    loop {
        match sub.try_recv() {
            Ok(s) if s.publisher() == main.id() => mine.push(s.seq()),
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => break,
            Err(e) => panic!("subscriber: {e}"),
        }
    }
    assert_eq!(mine, (0..24).collect::<Vec<_>>());
    let gc = ringcast::inspect::gc(&n.prefix).expect("gc");
    assert!(
        ringcast::inspect::inspect(&n.prefix, &n.topic).is_ok(),
        "gc left the live topic: {gc:?}"
    );
}

/// A subscriber that dies holding both lanes of a `Block` topic back is reaped, and both
/// publishers go on.
#[test]
fn a_dead_subscriber_is_reaped_for_every_lane() {
    let n = Names::new("lanes", "deadsub");
    let cfg = config(&n.prefix, true).slots(4);
    let mut a = Publisher::create(&n.topic, cfg.clone()).expect("create");
    let mut b = Publisher::create(&n.topic, cfg).expect("join");
    let child = spawn_talking(
        CHILD,
        "subscriber",
        &[("PREFIX", n.prefix.clone()), ("TOPIC", n.topic.clone())],
    );
    child.expect("ATTACHED", LONG);
    for seq in 0..4 {
        publish(&mut a, seq);
        publish(&mut b, seq);
    }
    assert!(
        a.try_loan().is_err(),
        "the stopped subscriber holds lane a back"
    );
    child.kill();
    // Each lane's publisher reaps the dead entry when it waits for room.
    for seq in 4..100 {
        publish(&mut a, seq);
        publish(&mut b, seq);
    }
    assert_eq!(a.subscriber_count(), 0);
}

/// `join_only` takes the topic's own configuration, and never creates: nothing there, an
/// exclusive topic, a file that is not a segment, or a topic whose publishers all left
/// are each `NothingToJoin`.
#[test]
fn join_only_adopts_the_topics_configuration_and_never_creates() {
    let names = Names::new("lanes", "joinonly");
    let join = PublisherConfig::default().prefix(&names.prefix).join_only();
    let nothing = |r: Result<Publisher, ringcast::CreateError>| {
        matches!(r, Err(ringcast::CreateError::NothingToJoin { .. }))
    };
    assert!(nothing(Publisher::create(&names.topic, join.clone())));
    assert!(
        !ringcast::name::list_topics(&names.prefix)
            .unwrap()
            .contains(&names.topic),
        "created nothing"
    );
    // A shared topic: the joiner gets its slots, size and policy, whatever it asked.
    let first = PublisherConfig::default()
        .prefix(&names.prefix)
        .slots(8)
        .slot_size(256)
        .overflow(Overflow::Block)
        .max_publishers(3);
    let a = Publisher::create(&names.topic, first).unwrap();
    let b = Publisher::create(&names.topic, join.clone().slots(64).slot_size(64)).unwrap();
    assert_eq!(
        (
            b.geometry().slot_count,
            b.capacity(),
            b.overflow(),
            b.lane()
        ),
        (8, 256, Overflow::Block, 1)
    );
    drop((a, b));
    // Everyone left: the topic ended, and join_only does not start a new one.
    assert!(nothing(Publisher::create(&names.topic, join.clone())));
    // An exclusive topic admits no joiner.
    let solo = Publisher::create(
        &names.topic,
        PublisherConfig::default().prefix(&names.prefix),
    )
    .unwrap();
    assert!(nothing(Publisher::create(&names.topic, join.clone())));
    drop(solo);
    // A file that is not a segment.
    let path = format!("/dev/shm/{}.{}", names.prefix, names.topic);
    std::fs::write(&path, b"not a segment").unwrap();
    assert!(nothing(Publisher::create(&names.topic, join)));
    std::fs::remove_file(&path).unwrap();
}
