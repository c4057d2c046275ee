//! The link between two bridges drops and comes back (a TCP proxy between them cuts every
//! connection): the bridges reconnect, and an imported `Block` topic goes on, in order,
//! with every message it lost counted, or ends so that its subscribers attach again. What
//! must never happen: a subscriber left waiting on an import that nothing feeds.

mod harness;

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::*;
use ringcast::*;

/// A TCP proxy on loopback in front of `to`; [`cut`](Self::cut) shuts every connection
/// it carries, and later connections are carried again.
struct Proxy {
    port: u16,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accepted: Arc<AtomicUsize>,
    /// While set, a new connection is closed at once (the link stays down).
    refuse: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(to: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listen");
        let port = listener.local_addr().expect("proxy address").port();
        let conns = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let refuse = Arc::new(AtomicBool::new(false));
        let (c, n, s, r) = (
            conns.clone(),
            accepted.clone(),
            stop.clone(),
            refuse.clone(),
        );
        std::thread::spawn(move || {
            for down in listener.incoming() {
                // Relaxed: a flag polled once per connection; `Drop` connects to wake us.
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(down) = down else { continue };
                // Relaxed: a switch the test flips; a connection that races it either way
                // is fine.
                if r.load(Ordering::Relaxed) {
                    let _ = down.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(up) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                };
                let mut list = c.lock().unwrap();
                list.push(down.try_clone().expect("clone"));
                list.push(up.try_clone().expect("clone"));
                pipe(
                    down.try_clone().expect("clone"),
                    up.try_clone().expect("clone"),
                );
                pipe(up, down);
                // Relaxed: a count the test polls.
                n.fetch_add(1, Ordering::Relaxed);
            }
        });
        Proxy {
            port,
            conns,
            accepted,
            refuse,
            stop,
        }
    }

    fn endpoint(&self) -> String {
        format!("tcp/127.0.0.1:{}", self.port)
    }

    /// Keeps the link down (`true`: new connections are closed at once) or lets it
    /// come back.
    fn refuse(&self, refuse: bool) {
        // Relaxed: a switch the accept loop polls; nothing is published through it.
        self.refuse.store(refuse, Ordering::Relaxed);
    }

    /// Connections carried so far.
    fn accepted(&self) -> usize {
        // Relaxed: a count, polled; nothing is published through it.
        self.accepted.load(Ordering::Relaxed)
    }
}

/// Shuts every connection a proxy carries now (both bridges see the link reset).
fn cut(conns: &Mutex<Vec<TcpStream>>) {
    for c in conns.lock().unwrap().drain(..) {
        let _ = c.shutdown(Shutdown::Both);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Relaxed: the accept loop reads it after the connection made below wakes it.
        self.stop.store(true, Ordering::Relaxed);
        cut(&self.conns);
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.write_all(b"");
        }
    }
}

/// What the receiving side saw of the numbered stream.
#[derive(Debug, Default)]
struct Seen {
    /// Messages received, over every incarnation of the import.
    got: u64,
    /// The highest number received.
    last: Option<u64>,
    /// Imports that ended (Disconnected) and were attached again.
    ends: u32,
    /// Gaps in the numbers of one incarnation that `upstream_lost` did not count.
    uncounted: u64,
    /// Messages counted lost (`upstream_lost`), over every incarnation.
    lost: u64,
}

/// Sends the numbered messages `*i..until`; a send that cannot get room within the
/// bound fails the test (an export that holds its source for ever).
fn send_until(src: &mut Publisher, i: &mut u64, until: u64) {
    while *i < until {
        let mut loan = src
            .loan_timeout(WAIT)
            .unwrap_or_else(|e| panic!("message {i}: no room within {WAIT:?}: {e:?}"));
        loan[..8].copy_from_slice(&i.to_le_bytes());
        loan.commit(8);
        *i += 1;
    }
}

/// Within an import every gap is counted; with no end, every message sent was received
/// or counted lost (what a source publishes between an import's end and the next is in
/// neither: its subscribers were told, by the end).
fn check_accounting(seen: &Seen, sent: u64) {
    assert_eq!(seen.uncounted, 0, "a gap no count explains: {seen:?}");
    if seen.ends == 0 {
        assert_eq!(
            seen.got + seen.lost,
            sent,
            "not received nor counted: {seen:?}"
        );
    }
}

#[test]
fn a_link_dropped_between_messages_comes_back_and_the_topic_goes_on() {
    link_drops("lki", false);
}

#[test]
fn a_link_dropped_mid_stream_comes_back_and_the_topic_goes_on() {
    link_drops("lkf", true);
}

/// Two bridges through a proxy, a `Block` source on A and a receiver thread on B's import.
struct Link {
    pair: Pair,
    a: Proc,
    b: Proc,
    proxy: Proxy,
    src: Publisher,
    /// The receiver stops once it has this number (or a higher one).
    wanted: Arc<AtomicU64>,
    /// The highest number received so far.
    highest: Arc<AtomicU64>,
    rx: std::thread::JoinHandle<Seen>,
}

const TOPIC: &str = "t";

impl Link {
    fn start(tag: &str) -> Link {
        let mut pair = Pair::new(tag);
        pair.topics(&[TOPIC]);
        let a = pair.bridge_a(&["--export", TOPIC]);
        let proxy = Proxy::start(pair.port_a());
        let b = pair.bridge_b_via(&proxy.endpoint(), &["--import", TOPIC]);
        let mut src = block_source(&pair.a, TOPIC);
        let sub = attach(&pair.b, TOPIC);
        src.wait_for_subscribers(1, WAIT)
            .expect("the exporter attaches");
        let wanted = Arc::new(AtomicU64::new(u64::MAX));
        let highest = Arc::new(AtomicU64::new(0));
        let rx = receive(sub, pair.b.clone(), wanted.clone(), highest.clone());
        Link {
            pair,
            a,
            b,
            proxy,
            src,
            wanted,
            highest,
            rx,
        }
    }

    fn highest(&self) -> u64 {
        // Relaxed: progress, polled.
        self.highest.load(Ordering::Relaxed)
    }

    /// Waits (bounded) until message `i` has arrived.
    fn until_received(&self, i: u64, what: &str) {
        let t = Instant::now();
        while self.highest() < i {
            assert!(
                t.elapsed() < WAIT,
                "{what}: highest received {}",
                self.highest()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends the first 1000 messages, waits for them, then takes the link down (cut,
    /// and kept down until [`Proxy::refuse`] lets it back) with nothing in flight.
    /// Returns how many were sent.
    fn deliver_1000_then_go_down(&mut self) -> u64 {
        let mut i = 0;
        send_until(&mut self.src, &mut i, 1000);
        self.until_received(999, "the first 1000");
        self.proxy.refuse(true);
        cut(&self.proxy.conns);
        i
    }

    /// Streams runs of 100 (the next numbers from `*i`) until the 1000 messages from
    /// `after` on have arrived.
    fn stream_past(&mut self, i: &mut u64, after: u64) {
        let t = Instant::now();
        while self.highest() < after + 999 {
            assert!(
                t.elapsed() < WAIT,
                "the topic did not go on: highest {} of {i} sent",
                self.highest()
            );
            let next = *i + 100;
            send_until(&mut self.src, i, next);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the receiver once it has message `last`, and returns what it saw.
    fn finish(mut self, last: u64) -> Seen {
        // Relaxed: polled by the receiver between messages.
        self.wanted.store(last, Ordering::Relaxed);
        let seen = self.rx.join().expect("receiver");
        drop(self.src);
        let _ = stop_both(&mut self.a, &mut self.b);
        drop(self.pair);
        seen
    }
}

/// The receiver: every message in order, each gap counted; on an end, attach again
/// (the next import) from its oldest message.
fn receive(
    sub: Subscriber,
    prefix: String,
    wanted: Arc<AtomicU64>,
    highest: Arc<AtomicU64>,
) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let mut sub = sub;
        let mut seen = Seen::default();
        let mut base_lost = 0;
        let mut first_of_incarnation: Option<u64> = None;
        let mut got_here = 0u64;
        let mut progress = Instant::now();
        loop {
            // Relaxed: the sender's target, polled.
            if seen
                .last
                .is_some_and(|l| l >= wanted.load(Ordering::Relaxed))
            {
                seen.lost += sub.upstream_lost() - base_lost;
                return seen;
            }
            // Short waits, so that a target set after its message arrived is seen.
            let got = sub
                .recv_timeout(Duration::from_millis(50))
                .map(|m| u64::from_le_bytes(m.bytes().try_into().expect("8 bytes")));
            if got.is_ok() {
                progress = Instant::now();
            }
            match got {
                Ok(i) => {
                    assert!(seen.last.is_none_or(|l| i > l), "{i} after {:?}", seen.last);
                    let first = *first_of_incarnation.get_or_insert(i);
                    got_here += 1;
                    let gaps = (i - first + 1) - got_here;
                    let counted = sub.upstream_lost() - base_lost;
                    seen.uncounted = seen.uncounted.max(gaps.saturating_sub(counted));
                    seen.got += 1;
                    seen.last = Some(i);
                    // Relaxed: progress for the sender, polled.
                    highest.store(i, Ordering::Relaxed);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    seen.ends += 1;
                    seen.lost += sub.upstream_lost() - base_lost;
                    let old = sub.geometry().creation_id;
                    let t = Instant::now();
                    sub = loop {
                        // From the oldest: the new import may have messages before we
                        // attach.
                        let s = Subscriber::attach_wait(
                            TOPIC,
                            SubscriberOptions::default()
                                .prefix(prefix.as_str())
                                .start(Start::Oldest),
                            WAIT,
                        )
                        .expect("the new import");
                        if s.geometry().creation_id != old {
                            break s;
                        }
                        assert!(t.elapsed() < WAIT, "no new import after an end");
                        std::thread::sleep(Duration::from_millis(10));
                    };
                    base_lost = sub.upstream_lost();
                    first_of_incarnation = None;
                    got_here = 0;
                }
                Err(RecvTimeoutError::Timeout) if progress.elapsed() < WAIT => {}
                Err(e) => panic!("after {:?}: {e}", seen),
            }
        }
    })
}

/// Cuts the link once 1000 messages have arrived (`flowing`: while the source sends flat
/// out; else with nothing in flight), then streams until 1000 messages sent after the
/// bridges reconnected have arrived.
fn link_drops(tag: &str, flowing: bool) {
    let mut link = Link::start(tag);
    let mut i = 0u64;
    send_until(&mut link.src, &mut i, 1000);
    let cut_at = Instant::now();
    let mut cutter = Some({
        let h = link.highest.clone();
        let proxy_conns = link.proxy.conns.clone();
        std::thread::spawn(move || {
            // Relaxed: progress, polled.
            while h.load(Ordering::Relaxed) < 999 {
                assert!(cut_at.elapsed() < WAIT, "the first 1000 never arrived");
                std::thread::sleep(Duration::from_millis(1));
            }
            cut(&proxy_conns);
        })
    });
    if !flowing {
        if let Some(c) = cutter.take() {
            c.join().expect("cutter");
        }
    }
    // Stream (in runs of 100) until the bridges reconnect, then until 1000 messages sent
    // after that arrive: what was in flight when the link broke may be lost, but only
    // counted.
    let t = Instant::now();
    while link.proxy.accepted() < 2 {
        assert!(t.elapsed() < WAIT, "the link never came back");
        let next = i + 100;
        send_until(&mut link.src, &mut i, next);
        if !flowing {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    eprintln!("reconnected {:?} after the cut began", cut_at.elapsed());
    let after = i;
    link.stream_past(&mut i, after);
    if let Some(c) = cutter.take() {
        c.join().expect("cutter");
    }
    let seen = link.finish(i - 1);
    eprintln!("sent {i}, {seen:?}");
    check_accounting(&seen, i);
}

#[test]
fn a_block_source_is_held_while_the_link_is_down_and_loses_nothing() {
    // Nothing is in flight when the link breaks; 50 messages (fewer than the source's
    // ring holds) are published while it is down, for 300 ms, longer than an importer
    // waits for a withdrawn announcement (250 ms), so the import may also end and be
    // made again: either way all 1050 arrive and nothing is counted lost.
    let mut link = Link::start("lkh");
    let before = link.proxy.accepted();
    let mut i = link.deliver_1000_then_go_down();
    std::thread::sleep(Duration::from_millis(100));
    send_until(&mut link.src, &mut i, 1050);
    std::thread::sleep(Duration::from_millis(200));
    link.proxy.refuse(false);
    link.until_received(1049, "what was sent while the link was down");
    assert!(link.proxy.accepted() > before, "the link never came back");
    let seen = link.finish(1049);
    eprintln!("{seen:?}");
    assert_eq!((seen.got, seen.lost), (1050, 0), "{seen:?}");
}

#[test]
fn a_block_source_held_for_a_link_that_stays_down_is_let_go() {
    // The link stays down for 4 s: the export holds its source for 2 s, then detaches,
    // so a source that publishes more than its ring (64 slots) waits about that long and
    // no longer. The import ends meanwhile (its announcement is gone for more than
    // 250 ms); when the link is back the new one goes on.
    let mut link = Link::start("lkg");
    let mut i = link.deliver_1000_then_go_down();
    let t = Instant::now();
    // Time for the export to hear the importer go (what it reads before is in flight).
    std::thread::sleep(Duration::from_millis(100));
    send_until(&mut link.src, &mut i, 1200);
    let held = t.elapsed();
    eprintln!("200 messages into a 64-slot ring took {held:?}");
    assert!(held >= Duration::from_millis(1500), "not held: {held:?}");
    assert!(held < Duration::from_secs(10), "held too long: {held:?}");
    std::thread::sleep(Duration::from_secs(4).saturating_sub(t.elapsed()));
    let before = link.proxy.accepted();
    link.proxy.refuse(false);
    let t = Instant::now();
    while link.proxy.accepted() == before {
        assert!(t.elapsed() < WAIT, "the link never came back");
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = i;
    link.stream_past(&mut i, after);
    let seen = link.finish(i - 1);
    eprintln!("sent {i}, {seen:?}");
    check_accounting(&seen, i);
}
