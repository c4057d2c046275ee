//! Services (request and response): correlation, streams, bounds, liveness across
//! processes (a server or a client SIGKILLed mid-call), hostile clients, wait sets.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use ringcast::service::{ServiceTopic, HEADER};
use ringcast::{
    CallError, Client, ClientOptions, ConnectError, Overflow, Publisher, PublisherConfig,
    RespondError, ServeError, Server, ServerConfig, ServerRecvError, WaitSet,
};

const CHILD: &str = "services_child_entry";
const LONG: Duration = Duration::from_secs(30);
/// A hang bound, not a speed claim: liveness is two 50 ms slices plus a wait's period.
const BOUND: Duration = Duration::from_secs(3);

/// A private prefix and a unique service name; every topic of the service is removed when
/// dropped.
struct Svc {
    prefix: String,
    name: String,
}

impl Svc {
    fn new(tag: &str) -> Svc {
        Svc {
            prefix: prefix("svc"),
            name: topic(tag),
        }
    }
    fn server(&self) -> ServerConfig {
        ServerConfig::default().prefix(&self.prefix)
    }
    fn client(&self) -> ClientOptions {
        ClientOptions::default()
            .prefix(&self.prefix)
            .wait(Duration::from_secs(5))
    }
    /// The service's topics that exist now.
    fn topics(&self) -> Vec<String> {
        ringcast::name::list_topics(&self.prefix)
            .unwrap_or_default()
            .into_iter()
            .filter(|t| match ringcast::service::parse_topic(t) {
                Some(
                    ServiceTopic::Anchor(s)
                    | ServiceTopic::Requests(s)
                    | ServiceTopic::Responses(s),
                ) => s == self.name,
                _ => false,
            })
            .collect()
    }
    fn response_topics(&self) -> usize {
        self.topics()
            .iter()
            .filter(|t| {
                matches!(
                    ringcast::service::parse_topic(t),
                    Some(ServiceTopic::Responses(_))
                )
            })
            .count()
    }
}

impl Drop for Svc {
    fn drop(&mut self) {
        for t in self.topics() {
            let _ = ringcast::inspect::remove(&self.prefix, &t);
        }
    }
}

/// Connects a client while `server` receives (a client's greeting is answered in the
/// server's receive).
fn connect(server: &mut Server, svc: &Svc, opts: ClientOptions) -> Result<Client, ConnectError> {
    let name = svc.name.clone();
    let t = std::thread::spawn(move || Client::connect(&name, opts));
    let deadline = Instant::now() + LONG;
    while !t.is_finished() {
        assert!(Instant::now() < deadline, "connect hangs");
        match server.recv_timeout(Duration::from_millis(5)) {
            Err(ServerRecvError::Empty) => {}
            Ok(r) => panic!("unexpected request {r:?}"),
            Err(e) => panic!("server: {e}"),
        }
    }
    t.join().expect("connect thread")
}

/// Runs an echo server on a thread until `stop` requests were answered: each request is
/// answered with its own bytes.
fn echo_server(mut server: Server, stop: usize) -> std::thread::JoinHandle<Server> {
    std::thread::spawn(move || {
        let mut answered = 0;
        while answered < stop {
            match server.recv_timeout(LONG) {
                Ok(req) => {
                    let data = req.to_vec();
                    req.respond(&data).expect("respond");
                    answered += 1;
                }
                Err(e) => panic!("echo server: {e}"),
            }
        }
        server
    })
}

#[test]
fn a_call_gets_its_answer_a_stream_its_parts_and_an_unanswered_request_ends() {
    let svc = Svc::new("basic");
    let mut server = Server::create(&svc.name, svc.server()).expect("serve");
    let mut client = connect(&mut server, &svc, svc.client()).expect("connect");
    let answer = std::thread::spawn(move || {
        // 1: one response. 2: three parts and an end. 3: an end alone. 4: dropped.
        let r = server.recv_timeout(LONG).unwrap();
        let mut doubled = r.to_vec();
        doubled.extend_from_slice(&r);
        r.respond(&doubled).unwrap();
        let mut r = server.recv_timeout(LONG).unwrap();
        for i in 0..3u8 {
            r.respond_part(&[i; 100]).unwrap();
        }
        r.end().unwrap();
        server.recv_timeout(LONG).unwrap().end().unwrap();
        drop(server.recv_timeout(LONG).unwrap());
        server
    });
    let r = client.call(b"ab", LONG).expect("call");
    assert_eq!((&r[..], r.is_last()), (&b"abab"[..], true));
    drop(r);
    let call = client.send(b"stream", LONG).unwrap();
    let mut parts = Vec::new();
    while let Some(r) = client.recv(call, LONG).unwrap() {
        assert!(!r.is_last());
        parts.push(r.to_vec());
    }
    assert_eq!(parts, vec![vec![0; 100], vec![1; 100], vec![2; 100]]);
    assert_eq!(client.recv(call, LONG).unwrap().map(|r| r.to_vec()), None);
    assert_eq!(
        client.call(b"nothing", LONG).unwrap_err(),
        CallError::NoResponse
    );
    assert_eq!(
        client.call(b"dropped", LONG).unwrap_err(),
        CallError::NoResponse
    );
    assert_eq!(client.in_flight(), 0);
    let server = answer.join().unwrap();
    assert_eq!(server.stats().clients, 1);
    assert_eq!(server.stats().malformed, 0);
}

#[test]
fn requests_in_flight_are_answered_in_any_order_and_each_reaches_its_call() {
    let svc = Svc::new("order");
    let mut server =
        Server::create(&svc.name, svc.server().queue(8).response_slots(8)).expect("serve");
    let mut client = connect(&mut server, &svc, svc.client()).expect("connect");
    let calls: Vec<_> = (0..8u8)
        .map(|i| client.send(&[i], LONG).expect("send"))
        .collect();
    assert_eq!(
        client.send(b"9th", LONG).unwrap_err(),
        CallError::TooManyInFlight { max: 8 }
    );
    // The server takes all eight, then answers them last first.
    let mut held = Vec::new();
    for _ in 0..8 {
        let r = server.recv_timeout(LONG).unwrap();
        let tag = r[0];
        held.push((r.defer(), tag));
    }
    for (to, tag) in held.into_iter().rev() {
        server.respond(to, &[tag, tag]).unwrap();
    }
    // The client asks for them first first: seven are set aside on the way.
    for (i, call) in calls.iter().enumerate() {
        let r = client.recv(*call, LONG).unwrap().expect("a response");
        assert_eq!((&r[..], r.call()), (&[i as u8, i as u8][..], *call));
    }
    assert_eq!(client.in_flight(), 0);
    assert_eq!(
        client
            .recv(calls[0], Duration::ZERO)
            .unwrap()
            .map(|r| r.to_vec()),
        None
    );
}

#[test]
fn kept_requests_and_responses_stay_readable_until_released_or_the_next_receive() {
    let svc = Svc::new("kept");
    let mut server =
        Server::create(&svc.name, svc.server().queue(4).response_slots(4)).expect("serve");
    let mut client = connect(&mut server, &svc, svc.client()).expect("connect");
    let a = client.send(b"first", LONG).unwrap();
    let b = client.send(b"second", LONG).unwrap();
    // The server keeps the first request: readable in place, answerable later.
    let to_a = server.recv_timeout(LONG).unwrap().keep();
    assert_eq!(server.kept_request(), Some(&b"first"[..]));
    assert_eq!(to_a.id(), a.get());
    // The next receive releases it; the second is kept in its place.
    let to_b = server.recv_timeout(LONG).unwrap().keep();
    assert_eq!(server.kept_request(), Some(&b"second"[..]));
    server.release_request();
    assert_eq!(server.kept_request(), None);
    // Keeping does not end the stream: the client still waits for both.
    assert_eq!(client.in_flight(), 2);
    // Answered in reverse, the first through a responder rebuilt from its parts.
    server.respond(to_b, b"B").unwrap();
    let rebuilt = ringcast::Responder::from_parts(to_a.client(), to_a.id());
    assert_eq!(rebuilt, to_a);
    server.respond_part(&rebuilt, b"A1").unwrap();
    server.respond(rebuilt, b"A2").unwrap();
    // The client keeps a response that was set aside (a copy) and one read in place.
    let r = client.recv(a, LONG).unwrap().expect("A1");
    assert!(!r.is_last());
    assert_eq!(r.keep(), a);
    assert_eq!(client.kept_response(), Some(&b"A1"[..]));
    // The next receive releases the kept one.
    let r = client.recv(a, LONG).unwrap().expect("A2");
    assert_eq!(&r[..], b"A2");
    drop(r);
    assert_eq!(client.kept_response(), None);
    let r = client
        .recv(b, LONG)
        .unwrap()
        .expect("B (set aside: a copy)");
    r.keep();
    assert_eq!(client.kept_response(), Some(&b"B"[..]));
    client.release_response();
    assert_eq!(client.kept_response(), None);
    assert_eq!(client.in_flight(), 0);
    // A responder naming no connected client is a typed outcome, not a panic.
    let stray = ringcast::Responder::from_parts(
        ringcast::PublisherId {
            lane: 60,
            writer: 9,
        },
        1,
    );
    assert_eq!(server.respond(stray, b"x"), Err(RespondError::ClientGone));
}

#[test]
fn responses_reach_only_the_client_that_asked() {
    let svc = Svc::new("route");
    let mut server = Server::create(&svc.name, svc.server()).expect("serve");
    const CLIENTS: usize = 3;
    const CALLS: usize = 300;
    let clients: Vec<Client> = (0..CLIENTS)
        .map(|_| connect(&mut server, &svc, svc.client()).expect("connect"))
        .collect();
    let echo = echo_server(server, CLIENTS * CALLS);
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, mut client)| {
            std::thread::spawn(move || {
                for i in 0..CALLS {
                    let mut msg = vec![c as u8; 8];
                    msg.extend_from_slice(&(i as u64).to_le_bytes());
                    let r = client.call(&msg, LONG).expect("call");
                    assert_eq!(&r[..], &msg[..], "client {c} got another's response");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client");
    }
    let server = echo.join().expect("server");
    assert_eq!(server.stats().unknown_client, 0);
}

#[test]
fn a_full_queue_is_full_for_try_send_and_a_slow_client_holds_back_nobody() {
    let svc = Svc::new("slow");
    let mut server =
        Server::create(&svc.name, svc.server().queue(4).response_slots(4)).expect("serve");
    let mut slow = connect(&mut server, &svc, svc.client()).expect("slow");
    let mut quick = connect(&mut server, &svc, svc.client()).expect("quick");
    // Four requests cancelled unread: the queue is full, though none is in flight.
    for _ in 0..4 {
        let call = slow.try_send(b"x").unwrap();
        slow.cancel(call);
    }
    assert_eq!(slow.try_send(b"x").unwrap_err(), CallError::Full);
    assert_eq!(
        slow.send(b"x", Duration::from_millis(50)).unwrap_err(),
        CallError::Timeout
    );
    // The server streams to the slow client, which never reads: its ring fills, and the
    // server is told so at once; the quick client is answered meanwhile.
    let mut r = server.recv_timeout(LONG).unwrap();
    assert_eq!(r.client(), r.client());
    let mut sent = 0;
    let full = loop {
        match r.respond_part(b"part") {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent <= 4, "a 4-slot ring took more than 4");
    };
    assert_eq!((sent, full), (4, RespondError::ClientFull));
    let _ = r.defer();
    let q = quick.send(b"hi", LONG).unwrap();
    // The slow client's three other requests come first (fair lanes interleave).
    let mut seen = 0;
    loop {
        let r = server.recv_timeout(LONG).unwrap();
        seen += 1;
        if &r[..] == b"hi" {
            r.respond(b"there").unwrap();
            break;
        }
        let _ = r.defer();
        assert!(seen < 5);
    }
    assert_eq!(&quick.recv(q, LONG).unwrap().unwrap()[..], b"there");
    // Cancelled calls' responses are dropped on arrival.
    assert!(slow.recv_any(Duration::from_millis(20)).is_err());
}

#[test]
fn bad_names_configs_and_limits_are_typed_errors() {
    let svc = Svc::new("bad");
    for name in [
        "",
        ".x",
        "a/b",
        &"n".repeat(ringcast::service::MAX_SERVICE_LEN + 1),
    ] {
        assert!(matches!(
            Server::create(name, svc.server()),
            Err(ServeError::Name { .. })
        ));
        assert!(matches!(
            Client::connect(name, svc.client()),
            Err(ConnectError::Name { .. })
        ));
    }
    assert!(matches!(
        Server::create(&svc.name, svc.server().queue(16).response_slots(8)),
        Err(ServeError::Config { .. })
    ));
    assert!(matches!(
        Server::create(&svc.name, svc.server().queue(3)),
        Err(ServeError::Config { .. })
    ));
    assert!(matches!(
        Server::create(&svc.name, svc.server().max_clients(0)),
        Err(ServeError::Config { .. })
    ));
    // No server: at once without a wait, after it with one.
    let t = Instant::now();
    assert!(matches!(
        Client::connect(&svc.name, svc.client().wait(Duration::ZERO)),
        Err(ConnectError::NoServer { .. })
    ));
    assert!(matches!(
        Client::connect(&svc.name, svc.client().wait(Duration::from_millis(100))),
        Err(ConnectError::NoServer { .. })
    ));
    assert!(t.elapsed() >= Duration::from_millis(100));
    let mut server = Server::create(&svc.name, svc.server().max_clients(1)).expect("serve");
    assert!(matches!(
        Server::create(&svc.name, svc.server()),
        Err(ServeError::AlreadyServed { .. })
    ));
    let mut client = connect(&mut server, &svc, svc.client()).expect("first");
    assert!(matches!(
        connect(&mut server, &svc, svc.client()),
        Err(ConnectError::TooManyClients { max: 1, .. })
    ));
    let big = vec![0u8; 4097];
    assert_eq!(
        client.send(&big, LONG).unwrap_err(),
        CallError::TooLarge {
            len: 4097,
            max: 4096
        }
    );
    // A server that never receives: the greeting is never answered.
    drop(client);
    let opts = svc.client().handshake_timeout(Duration::from_millis(200));
    std::thread::sleep(Duration::from_millis(150));
    assert!(matches!(
        Client::connect(&svc.name, opts),
        Err(ConnectError::Timeout { .. })
    ));
}

#[test]
fn a_stopped_server_ends_pending_calls_and_a_new_one_takes_the_name() {
    let svc = Svc::new("restart");
    let mut server = Server::create(&svc.name, svc.server()).expect("serve");
    let mut client = connect(&mut server, &svc, svc.client()).expect("connect");
    let call = client.send(b"never answered", LONG).unwrap();
    let _held = server.recv_timeout(LONG).unwrap().defer();
    drop(server);
    let t = Instant::now();
    assert_eq!(
        client.recv(call, LONG).unwrap_err(),
        CallError::Disconnected
    );
    assert!(t.elapsed() < BOUND, "took {:?}", t.elapsed());
    assert_eq!(
        client.send(b"again", LONG).unwrap_err(),
        CallError::Disconnected
    );
    let mut server = Server::create(&svc.name, svc.server()).expect("a new server");
    let mut client = connect(&mut server, &svc, svc.client()).expect("reconnect");
    let echo = echo_server(server, 1);
    assert_eq!(&client.call(b"x", LONG).unwrap()[..], b"x");
    echo.join().unwrap();
}

#[test]
fn a_hostile_client_that_floods_or_scribbles_does_not_disturb_the_others() {
    let svc = Svc::new("hostile");
    let mut server =
        Server::create(&svc.name, svc.server().queue(8).response_slots(8)).expect("serve");
    let mut good = connect(&mut server, &svc, svc.client()).expect("connect");
    // A same-user process that joins the request topic with a raw publisher.
    let join = PublisherConfig::default().prefix(&svc.prefix).join_only();
    let mut hostile = Publisher::create(&format!("{}..requests", svc.name), join).expect("join");
    hostile.send(b"short").unwrap();
    hostile.send(&[0xff; 64]).unwrap();
    let mut forged = [0u8; HEADER + 4];
    forged[..8].copy_from_slice(&1u64.to_le_bytes());
    forged[8..12].copy_from_slice(&2u32.to_le_bytes()); // a call, never greeted
    forged[12..16].copy_from_slice(b"rcs1");
    hostile.send(&forged).unwrap();
    forged[8..12].copy_from_slice(&77u32.to_le_bytes()); // an unknown kind
    hostile.send(&forged).unwrap();
    // None of them is handed out; each is counted.
    assert_eq!(
        server.recv_timeout(Duration::from_millis(100)).unwrap_err(),
        ServerRecvError::Empty
    );
    let call = good.send(b"mine", LONG).unwrap();
    let r = server.recv_timeout(LONG).unwrap();
    assert_eq!(&r[..], b"mine");
    r.respond(b"ok").unwrap();
    assert_eq!(&good.recv(call, LONG).unwrap().unwrap()[..], b"ok");
    let stats = server.stats();
    assert_eq!((stats.malformed, stats.unknown_client), (3, 1));
    // Flooding: the hostile lane full, the good client still answered.
    while hostile.try_send(&forged).is_ok() {}
    let echo = echo_server(server, 20);
    for i in 0..20u8 {
        assert_eq!(&good.call(&[i], LONG).unwrap()[..], &[i]);
    }
    echo.join().unwrap();
}

#[test]
fn server_and_client_are_wait_set_members() {
    let svc = Svc::new("waitset");
    let mut server = Server::create(&svc.name, svc.server()).expect("serve");
    let client = connect(&mut server, &svc, svc.client()).expect("connect");
    let mut set = WaitSet::new();
    let s = set.add(server).expect("server joins");
    let c = set.add(client).expect("client joins");
    let call = set.get_mut(c).unwrap().send(b"ping", LONG).unwrap();
    let deadline = Instant::now() + LONG;
    let mut answered = false;
    while !answered {
        assert!(Instant::now() < deadline);
        set.wait_timeout(LONG).unwrap();
        if let Some(server) = set.ready_mut(s) {
            if let Ok(r) = server.try_recv() {
                r.respond(b"pong").unwrap();
            }
        }
        if let Some(client) = set.ready_mut(c) {
            if let Ok(Some(r)) = client.recv(call, Duration::ZERO) {
                assert_eq!(&r[..], b"pong");
                answered = true;
            }
        }
    }
}

/// A response nobody waits for (a timed-out `call`'s, later parts of a stream whose
/// first part `call` took) never makes a client in a wait set ready: the wait drops it,
/// so a loop waiting on the client does not spin; a response a call in flight waits for
/// still does, and is received from where the wait set it aside.
#[test]
fn a_response_nobody_waits_for_never_makes_a_client_ready() {
    let svc = Svc::new("strays");
    let mut server = Server::create(&svc.name, svc.server()).expect("serve");
    let mut client = connect(&mut server, &svc, svc.client()).expect("connect");
    // A call that times out before its answer; the answer comes later.
    assert!(matches!(
        client.call(b"late", Duration::from_millis(1)),
        Err(CallError::Timeout)
    ));
    let late = server.recv_timeout(LONG).unwrap();
    late.respond(b"too late").unwrap();
    // A stream whose first part `call` takes; the two later parts are strays.
    let t = std::thread::spawn(move || {
        let first = client.call(b"stream", LONG).unwrap().to_vec();
        (client, first)
    });
    let mut req = server.recv_timeout(LONG).unwrap();
    req.respond_part(b"part 1").unwrap();
    let (client, first) = t.join().unwrap();
    assert_eq!(first, b"part 1");
    req.respond_part(b"part 2").unwrap();
    req.respond(b"part 3").unwrap();
    let mut set = WaitSet::new();
    let c = set.add(client).expect("client joins");
    for _ in 0..3 {
        let woke = set.wait_timeout(Duration::from_millis(50)).unwrap();
        assert!(
            woke.timed_out() && !set.is_ready(c),
            "a stray made the client ready"
        );
    }
    assert_eq!(set.get_mut(c).unwrap().in_flight(), 0);
    // A response a call waits for still wakes it.
    let call = set.get_mut(c).unwrap().send(b"now", LONG).unwrap();
    let req = server.recv_timeout(LONG).unwrap();
    req.respond(b"answer").unwrap();
    let woke = set.wait_timeout(LONG).unwrap();
    assert!(!woke.timed_out() && set.is_ready(c));
    let client = set.ready_mut(c).unwrap();
    assert_eq!(
        &client.recv(call, Duration::ZERO).unwrap().unwrap()[..],
        b"answer"
    );
}

/// A `call_async` dropped while it waits abandons its call (nothing left in flight, its
/// late answer dropped, never a ready client), whether it waited for room in a full
/// queue or for its response; a dropped `Server::recv_async` consumes no request.
#[test]
fn dropped_async_calls_abandon_their_call_and_consume_nothing() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
        let mut f = std::pin::pin!(f);
        f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }
    let svc = Svc::new("dropasync");
    let mut server = Server::create(&svc.name, svc.server().queue(2)).expect("serve");
    let mut client = connect(&mut server, &svc, svc.client()).expect("connect");
    // Waiting for its response.
    assert!(poll_once(client.call_async(b"one")).is_pending());
    assert_eq!(client.in_flight(), 0, "the dropped call is abandoned");
    // Waiting for room: the queue holds the abandoned call and one more.
    let queued = client.send(b"two", LONG).unwrap();
    client.cancel(queued);
    assert!(poll_once(client.call_async(b"three")).is_pending());
    assert_eq!(client.in_flight(), 0);
    // A dropped receive of the server consumes no request.
    assert!(matches!(
        poll_once(server.recv_async()),
        Poll::Ready(Ok(_)) | Poll::Pending
    ));
    let mut answered = Vec::new();
    while let Ok(r) = server.recv_timeout(Duration::from_millis(100)) {
        answered.push(r.to_vec());
        let data = r.to_vec();
        r.respond(&data).unwrap();
    }
    assert!(!answered.is_empty(), "the server got the requests");
    // The late answers are strays: a wait set does not see the client ready.
    let mut set = WaitSet::new();
    let c = set.add(client).expect("client joins");
    let woke = set.wait_timeout(Duration::from_millis(50)).unwrap();
    assert!(woke.timed_out() && !set.is_ready(c));
    let client = set.get_mut(c).unwrap();
    let call = client.send(b"after", LONG).unwrap();
    let r = server.recv_timeout(LONG).unwrap();
    assert_eq!(&r[..], b"after");
    r.respond(b"answer").unwrap();
    let answer = client.recv(call, LONG).unwrap().unwrap();
    assert_eq!(&answer[..], b"answer");
}

/// An idle server waiting in a wait set still reclaims a client that went away: its
/// response topic is removed within a few liveness slices, with no request to receive.
#[test]
fn an_idle_server_in_a_wait_set_reclaims_gone_clients() {
    let svc = Svc::new("idlesweep");
    let mut server = Server::create(&svc.name, svc.server()).expect("serve");
    let client = connect(&mut server, &svc, svc.client()).expect("connect");
    assert_eq!(svc.response_topics(), 1);
    drop(client);
    let mut set = WaitSet::new();
    let s = set.add(server).expect("server joins");
    let t = Instant::now();
    while svc.response_topics() != 0 {
        assert!(t.elapsed() < BOUND, "the gone client's topic stays");
        let _ = set.wait_timeout(Duration::from_millis(20)).unwrap();
    }
    assert_eq!(set.get_mut(s).unwrap().stats().clients, 0);
}

/// Entry point of the child processes (runs only when re-executed with a role).
#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn services_child_entry() {
    let (prefix, service): (String, String) = (env("PREFIX"), env("SERVICE"));
    match std::env::var(ROLE).as_deref() {
        Ok("server") => {
            // Answers ANSWER requests (echo), then holds the rest unanswered until killed.
            let answer: usize = env("ANSWER");
            let mut server =
                Server::create(&service, ServerConfig::default().prefix(&prefix)).expect("serve");
            println!("SERVING");
            let mut answered = 0;
            let mut held = Vec::new();
            loop {
                match server.recv_timeout(LONG) {
                    Ok(r) if answered < answer => {
                        let data = r.to_vec();
                        r.respond(&data).unwrap();
                        answered += 1;
                    }
                    Ok(r) => {
                        held.push(r.defer());
                        println!("HELD {}", held.len());
                    }
                    Err(_) => return,
                }
            }
        }
        Ok("user_server") => {
            // As user AS_UID: serves with MODE (4 slots each way, so both rings wrap),
            // echoing every request, until killed.
            become_user(env("AS_UID"));
            let cfg = ServerConfig::default()
                .prefix(&prefix)
                .queue(4)
                .response_slots(4)
                .mode(env("MODE"));
            let mut server = Server::create(&service, cfg).expect("serve");
            println!("SERVING");
            loop {
                match server.recv_timeout(LONG) {
                    Ok(r) => {
                        let data = r.to_vec();
                        if let Err(e) = r.respond(&data) {
                            println!("RESPOND_ERR {e}");
                        }
                    }
                    // Nothing for LONG: the test is gone (it kills us otherwise).
                    Err(e) => {
                        println!("RECV_ERR {e}");
                        return;
                    }
                }
            }
        }
        Ok("user_client") => {
            // As user AS_UID, trusting user TRUST (none if empty): connects and makes
            // CALLS calls, one at a time and in bursts of 4 in flight.
            become_user(env("AS_UID"));
            let mut opts = ClientOptions::default()
                .prefix(&prefix)
                .wait(Duration::from_secs(2));
            if let Ok(uid) = std::env::var("TRUST").unwrap_or_default().parse() {
                opts = opts.trust_user(uid);
            }
            let t = Instant::now();
            let mut client = match Client::connect(&service, opts) {
                Ok(c) => c,
                Err(e) => {
                    let ms = t.elapsed().as_millis();
                    match &e {
                        ConnectError::UntrustedOwner { topic, owner, .. } => {
                            println!(
                                "RESULT untrusted uid={} ms={ms} topic={topic} text={e}",
                                owner.uid
                            )
                        }
                        ConnectError::PermissionDenied { topic, owner, .. } => println!(
                            "RESULT denied uid={} ms={ms} topic={topic} text={e}",
                            owner.as_ref().map_or(u32::MAX, |o| o.uid)
                        ),
                        e => println!("RESULT other ms={ms} text={e}"),
                    }
                    return;
                }
            };
            let calls: u64 = env("CALLS");
            for i in 0..calls {
                let want = i.to_le_bytes();
                let got = client.call(&want, LONG).expect("call").to_vec();
                assert_eq!(got, want, "call {i}");
            }
            for burst in 0..calls / 4 {
                let ids: Vec<_> = (0..4u64)
                    .map(|i| {
                        client
                            .send(&(burst * 4 + i).to_le_bytes(), LONG)
                            .expect("send")
                    })
                    .collect();
                for (i, id) in ids.into_iter().enumerate() {
                    let got = client.recv(id, LONG).expect("recv").expect("a response");
                    assert_eq!(&got[..], &(burst * 4 + i as u64).to_le_bytes());
                }
            }
            println!("RESULT ok calls={calls} bursts={}", calls / 4);
        }
        Ok("plate_squatter") => {
            // As user AS_UID: holds the service's name plate (readable by all) until killed.
            become_user(env("AS_UID"));
            let cfg = PublisherConfig::default()
                .prefix(&prefix)
                .slots(2)
                .slot_size(64)
                .overflow(Overflow::Overwrite)
                .mode(0o644);
            let _plate = Publisher::create(&ringcast::service::wire::anchor_topic(&service), cfg)
                .expect("squat the plate");
            println!("READY");
            std::thread::sleep(LONG);
        }
        Ok("client") => {
            // Connects, sends IN_FLIGHT requests, says so, and waits to be killed.
            let n: usize = env("IN_FLIGHT");
            let opts = ClientOptions::default()
                .prefix(&prefix)
                .wait(Duration::from_secs(10));
            let mut client = Client::connect(&service, opts).expect("connect");
            for i in 0..n {
                client.send(&[i as u8], LONG).expect("send");
            }
            println!("SENT");
            std::thread::sleep(LONG);
        }
        _ => {}
    }
}

#[test]
fn a_server_sigkilled_with_calls_in_flight_ends_every_call_within_the_bound() {
    let svc = Svc::new("killsrv");
    let env = [
        ("PREFIX", svc.prefix.clone()),
        ("SERVICE", svc.name.clone()),
        ("ANSWER", "5".to_owned()),
    ];
    let server = spawn_talking(CHILD, "server", &env);
    server.expect("SERVING", LONG);
    let mut clients: Vec<Client> = (0..3)
        .map(|_| Client::connect(&svc.name, svc.client()).expect("connect"))
        .collect();
    for i in 0..5u8 {
        assert_eq!(&clients[0].call(&[i], LONG).unwrap()[..], &[i]);
    }
    let mut calls = Vec::new();
    for (c, client) in clients.iter_mut().enumerate() {
        for i in 0..4u8 {
            calls.push((c, client.send(&[i], LONG).unwrap()));
        }
    }
    server.expect("HELD 12", LONG);
    server.kill();
    let t = Instant::now();
    for (c, call) in calls {
        assert_eq!(
            clients[c].recv(call, LONG).unwrap_err(),
            CallError::Disconnected
        );
    }
    assert!(
        t.elapsed() < BOUND,
        "callers returned after {:?}",
        t.elapsed()
    );
    // The dead server's topics are gone once the last client lets go (gc takes the rest).
    drop(clients);
    let _ = ringcast::inspect::gc(&svc.prefix);
    assert_eq!(svc.topics(), Vec::<String>::new());
}

#[test]
fn a_client_sigkilled_mid_call_is_reclaimed_and_the_server_goes_on() {
    let svc = Svc::new("killcli");
    let mut server = Server::create(&svc.name, svc.server()).expect("serve");
    let env = [
        ("PREFIX", svc.prefix.clone()),
        ("SERVICE", svc.name.clone()),
        ("IN_FLIGHT", "3".to_owned()),
    ];
    let child = spawn_talking(CHILD, "client", &env);
    let mut held = Vec::new();
    let deadline = Instant::now() + LONG;
    while held.len() < 3 {
        assert!(Instant::now() < deadline, "the child's requests never came");
        if let Ok(r) = server.recv_timeout(Duration::from_millis(10)) {
            held.push(r.defer());
        }
    }
    child.expect("SENT", LONG);
    let mut good = connect(&mut server, &svc, svc.client()).expect("connect");
    assert_eq!((server.stats().clients, svc.response_topics()), (2, 2));
    child.kill();
    // Within the bound the server has dropped the dead client and its response topic.
    let t = Instant::now();
    while server.stats().clients != 1 {
        assert!(t.elapsed() < BOUND, "the dead client is still linked");
        let _ = server.recv_timeout(Duration::from_millis(10));
    }
    assert_eq!(svc.response_topics(), 1);
    for to in held {
        assert_eq!(server.respond(to, b"late"), Err(RespondError::ClientGone));
    }
    let echo = echo_server(server, 1);
    assert_eq!(&good.call(b"alive", LONG).unwrap()[..], b"alive");
    echo.join().unwrap();
}

#[test]
fn many_clients_connect_and_leave_while_calls_go_on() {
    let svc = Svc::new("churn");
    let server = Server::create(&svc.name, svc.server().max_clients(4)).expect("serve");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let srv = std::thread::spawn(move || {
        let mut server = server;
        let mut answered: HashMap<u32, usize> = HashMap::new();
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(r) = server.recv_timeout(Duration::from_millis(10)) {
                *answered.entry(r.client().lane).or_default() += 1;
                let data = r.to_vec();
                let _ = r.respond(&data);
            }
        }
        server
    });
    for round in 0..20u8 {
        let mut client = Client::connect(&svc.name, svc.client()).expect("connect");
        for i in 0..10u8 {
            assert_eq!(&client.call(&[round, i], LONG).unwrap()[..], &[round, i]);
        }
    }
    // Every departed client is reclaimed: no response topic is left behind.
    let t = Instant::now();
    while svc.response_topics() != 0 {
        assert!(
            t.elapsed() < BOUND,
            "{} response topics left",
            svc.response_topics()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let server = srv.join().unwrap();
    assert_eq!(server.stats().clients, 0);
    let _ = Overflow::Block;
}

/// Twenty streamed calls and one `call_async`, all awaited.
async fn async_calls(c: &mut Client, tag: u8) {
    for i in 0..20u8 {
        let call = c.send(&[tag, i], LONG).unwrap();
        let first = c.recv_async(call).await.unwrap().unwrap().to_vec();
        assert_eq!(first, [tag, i]);
        let last = c.recv_async(call).await.unwrap().unwrap();
        assert!(last.is_last());
        assert_eq!(&last[..], [0xee]);
        drop(last);
        assert!(c.recv_async(call).await.unwrap().is_none());
    }
    let r = c.call_async(&[tag]).await.unwrap();
    assert_eq!(&r[..], [tag]);
}

#[test]
fn async_server_and_clients_on_one_runtime_thread() {
    let svc = Svc::new("async");
    let mut server = Server::create(&svc.name, svc.server()).expect("serve");
    let mut a = connect(&mut server, &svc, svc.client()).expect("a");
    let mut b = connect(&mut server, &svc, svc.client()).expect("b");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The server answers 42 calls: the streamed ones (two bytes) with two parts, the
        // `call_async` ones (one byte) with one. Everything runs on this one thread.
        let serve = async {
            for _ in 0..42 {
                let mut r = server.recv_async().await.expect("request");
                let data = r.to_vec();
                if data.len() == 2 {
                    r.respond_part(&data).unwrap();
                    r.respond(&[0xee]).unwrap();
                } else {
                    r.respond(&data).unwrap();
                }
            }
        };
        tokio::join!(serve, async_calls(&mut a, b'a'), async_calls(&mut b, b'b'));
    });
    assert_eq!((a.in_flight(), b.in_flight()), (0, 0));
}

#[test]
fn call_async_and_poll_send_wait_for_room_in_a_full_queue() {
    let svc = Svc::new("room");
    let mut server =
        Server::create(&svc.name, svc.server().queue(2).response_slots(2)).expect("serve");
    let mut c = connect(&mut server, &svc, svc.client()).expect("connect");
    // Two calls abandoned at once: their requests fill the queue (the server reads none).
    for _ in 0..2 {
        let call = c.try_send(b"old").unwrap();
        c.cancel(call);
    }
    assert!(matches!(c.try_send(b"x"), Err(CallError::Full)));
    // Poll-style: pending while full, having sent nothing.
    assert!(c.poll_send(b"x", std::task::Waker::noop()).is_pending());
    assert_eq!(c.in_flight(), 0);
    c.disarm();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The call is polled first (and finds the queue full), then the server reads.
        let call = async { c.call_async(b"new").await.unwrap().to_vec() };
        let serve = async {
            for want in [&b"old"[..], b"old", b"new"] {
                let r = server.recv_async().await.expect("request");
                assert_eq!(&r[..], want);
                let data = r.to_vec();
                r.respond(&data).unwrap();
            }
        };
        let (got, ()) = tokio::join!(call, serve);
        assert_eq!(got, b"new");
    });
    assert_eq!(c.in_flight(), 0);
}

#[derive(ringcast::rkyv::Archive, ringcast::rkyv::Serialize, Debug, PartialEq)]
#[rkyv(crate = ringcast::rkyv)]
struct Goal {
    id: u64,
    name: String,
}

#[derive(ringcast::rkyv::Archive, ringcast::rkyv::Serialize, Debug, PartialEq)]
#[rkyv(crate = ringcast::rkyv)]
struct Plan {
    goal: u64,
    steps: Vec<u32>,
}

#[test]
fn typed_services_archive_in_place_validate_and_refuse_other_types() {
    use ringcast::{TypedClient, TypedRespondError, TypedServer, TypedServerRecvError};
    let svc = Svc::new("typed");
    let server = TypedServer::<Goal, Plan>::create(&svc.name, svc.server().max_response(256))
        .expect("serve");
    // Greetings are answered by any receive; a typed server's is the raw one's.
    let mut server = server;
    let name = svc.name.clone();
    let opts = svc.client();
    let t = std::thread::spawn(move || TypedClient::<Goal, Plan>::connect(&name, opts));
    while !t.is_finished() {
        let _ = server.raw().recv_timeout(Duration::from_millis(5));
    }
    let mut client = t.join().unwrap().expect("typed connect");
    // Other types are refused at connect, either way round.
    let name = svc.name.clone();
    let opts = svc.client();
    let wrong = std::thread::spawn(move || TypedClient::<u64, Plan>::connect(&name, opts));
    let err = loop {
        let _ = server.raw().recv_timeout(Duration::from_millis(5));
        if wrong.is_finished() {
            break wrong.join().unwrap().unwrap_err();
        }
    };
    assert!(matches!(err, ConnectError::TypeMismatch { .. }), "{err}");
    // Two calls, answered last first: the first is read from its aligned copy.
    let a = client
        .send(
            &Goal {
                id: 1,
                name: "dock".into(),
            },
            LONG,
        )
        .unwrap();
    let b = client
        .send(
            &Goal {
                id: 2,
                name: "charge".into(),
            },
            LONG,
        )
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..2 {
        let r = server.recv_timeout(LONG).unwrap();
        assert_eq!(r.name.len(), if r.id == 1 { 4 } else { 6 });
        held.push((r.id.to_native(), r.defer()));
    }
    for (id, to) in held.into_iter().rev() {
        let plan = Plan {
            goal: id,
            steps: (0..id as u32 * 3).collect(),
        };
        server.respond(to, &plan).unwrap();
    }
    let pa = client.recv(a, LONG).unwrap().unwrap();
    assert_eq!((pa.goal.to_native(), pa.steps.len()), (1, 3));
    drop(pa);
    let pb = client.recv(b, LONG).unwrap().unwrap();
    assert_eq!((pb.goal.to_native(), pb.steps.len()), (2, 6));
    drop(pb);
    // A response too large for the service's 256 bytes is refused; nothing is sent.
    let c = client
        .send(
            &Goal {
                id: 3,
                name: "far".into(),
            },
            LONG,
        )
        .unwrap();
    let r = server.recv_timeout(LONG).unwrap();
    let huge = Plan {
        goal: 3,
        steps: vec![7; 1000],
    };
    assert!(matches!(
        r.respond(&huge),
        Err(TypedRespondError::Serialize(
            ringcast::TypedSendError::TooLarge { .. }
        ))
    ));
    assert!(
        client.recv(c, LONG).unwrap().is_none(),
        "the dropped request ended"
    );
    // A raw client of the typed service sends bytes that are no Goal: the server says
    // so, and the raw caller gets no response.
    let name = svc.name.clone();
    let opts = svc.client();
    let raw = std::thread::spawn(move || {
        let mut raw = Client::connect(&name, opts).unwrap();
        raw.call(&[0xff; 3], LONG).unwrap_err()
    });
    let invalid = loop {
        match server.recv_timeout(Duration::from_millis(5)) {
            Err(TypedServerRecvError::Invalid { type_name, .. }) => break type_name,
            Err(TypedServerRecvError::Recv(ServerRecvError::Empty)) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(invalid.contains("Goal"));
    assert_eq!(raw.join().unwrap(), CallError::NoResponse);
    // And a typed call in one go.
    let echo = std::thread::spawn(move || {
        let r = server.recv_timeout(LONG).unwrap();
        let plan = Plan {
            goal: r.id.to_native(),
            steps: vec![r.name.len() as u32],
        };
        r.respond(&plan).unwrap();
    });
    let plan = client
        .call(
            &Goal {
                id: 9,
                name: "home".into(),
            },
            LONG,
        )
        .unwrap();
    assert_eq!((plan.goal.to_native(), plan.steps[0].to_native()), (9, 4));
    drop(plan);
    echo.join().unwrap();
}

/// The server's user in the cross-user tests (`nobody`) and the caller's (no name needed).
const USER_A: u32 = 65534;
const USER_B: u32 = 54321;

/// In a child: become user `uid` (group `uid` too), for good.
fn become_user(uid: u32) {
    nix::unistd::setgroups(&[]).expect("setgroups");
    nix::unistd::setgid(nix::unistd::Gid::from_raw(uid)).expect("setgid");
    nix::unistd::setuid(nix::unistd::Uid::from_raw(uid)).expect("setuid");
}

/// Whether this process may run children as other users (root), else why the tests skip.
fn can_switch_user() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("skipped: needs root to run a child as another user".into());
    }
    Ok(())
}

/// Runs a client child as `USER_B` (trusting `trust`, if any) that makes `calls` calls;
/// returns its RESULT line.
fn user_client(svc: &Svc, trust: Option<u32>, calls: u64) -> String {
    let env = [
        ("PREFIX", svc.prefix.clone()),
        ("SERVICE", svc.name.clone()),
        ("AS_UID", USER_B.to_string()),
        ("TRUST", trust.map(|u| u.to_string()).unwrap_or_default()),
        ("CALLS", calls.to_string()),
    ];
    let (code, result) = spawn_talking(CHILD, "user_client", &env).finish(LONG);
    let result = result.unwrap_or_else(|| panic!("client child gave no result (exit {code:?})"));
    assert_eq!(code, Some(0), "client child: {result}");
    result
}

/// A child killed when dropped (also when an assertion fails first).
struct Killed(Option<Talking>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.kill();
        }
    }
}

impl Killed {
    fn kill(self) {
        drop(self);
    }
}

/// A server child as `USER_A` with `mode`.
fn user_server(svc: &Svc, mode: u32) -> Killed {
    let env = [
        ("PREFIX", svc.prefix.clone()),
        ("SERVICE", svc.name.clone()),
        ("AS_UID", USER_A.to_string()),
        ("MODE", mode.to_string()),
    ];
    let server = Killed(Some(spawn_talking(CHILD, "user_server", &env)));
    server.0.as_ref().expect("child").expect("SERVING", LONG);
    server
}

#[test]
fn a_server_of_one_user_with_a_wide_mode_serves_a_client_of_another_that_trusts_it() {
    if let Err(why) = can_switch_user() {
        eprintln!("{why}");
        return;
    }
    let svc = Svc::new("xuser");
    let server = user_server(&svc, 0o666);
    // Requests and responses both ways, each ring (4 slots) wrapping many times: the
    // client of the other user writes its request lane and its cursor in its response
    // topic (Block: the server could not answer a fifth call otherwise).
    let result = user_client(&svc, Some(USER_A), 40);
    assert_eq!(result, "ok calls=40 bursts=10");
    // The same client without trusting the server's user refuses it, naming the owner:
    // at once, although it would wait 2 s for a server.
    let result = user_client(&svc, None, 1);
    assert!(result.starts_with("untrusted uid=65534 "), "{result}");
    assert!(
        result.contains(&format!("topic={}..service", svc.name)),
        "{result}"
    );
    assert!(result.contains("uid 65534"), "{result}");
    // And the server, which refused nothing and answered all, is still serving.
    let result = user_client(&svc, Some(USER_A), 4);
    assert_eq!(result, "ok calls=4 bursts=1");
    server.kill();
}

#[test]
fn a_server_with_the_default_mode_refuses_a_client_of_another_user() {
    if let Err(why) = can_switch_user() {
        eprintln!("{why}");
        return;
    }
    let svc = Svc::new("xuserdeny");
    let server = user_server(&svc, 0o600);
    let result = user_client(&svc, Some(USER_A), 1);
    assert!(result.starts_with("denied uid=65534 "), "{result}");
    assert!(result.contains("permission denied"), "{result}");
    // No wait for a server it cannot use (the client would wait 2 s for one).
    let ms = result
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("ms="))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("ms");
    assert!(ms < 1000, "{result}");
    server.kill();
    // Readable but not writable: the plate is seen, the request topic is not joinable.
    let server = user_server(&svc, 0o644);
    let result = user_client(&svc, Some(USER_A), 1);
    assert!(result.starts_with("denied uid=65534 "), "{result}");
    assert!(
        result.contains(&format!("topic={}..requests", svc.name)),
        "{result}"
    );
    server.kill();
}

#[test]
fn a_name_plate_another_user_squats_is_refused_naming_its_owner() {
    if let Err(why) = can_switch_user() {
        eprintln!("{why}");
        return;
    }
    let svc = Svc::new("xusersquat");
    let env = [
        ("PREFIX", svc.prefix.clone()),
        ("SERVICE", svc.name.clone()),
        ("AS_UID", USER_B.to_string()),
    ];
    let squatter = Killed(Some(spawn_talking(CHILD, "plate_squatter", &env)));
    squatter.0.as_ref().expect("child").expect("READY", LONG);
    // This process's user (root here, trusted by everyone) is user A.
    let t = Instant::now();
    match Client::connect(&svc.name, svc.client()) {
        Err(ConnectError::UntrustedOwner { topic, owner, .. }) => {
            assert_eq!(owner.uid, USER_B);
            assert_eq!(topic, ringcast::service::wire::anchor_topic(&svc.name));
        }
        Err(e) => panic!("expected UntrustedOwner, got {e}"),
        Ok(_) => panic!("connected to a squatted name plate"),
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // Trusted explicitly, the plate is looked at (and, with no request topic behind it,
    // there is no server to connect to).
    let opts = svc
        .client()
        .wait(Duration::from_millis(100))
        .trust_user(USER_B);
    assert!(matches!(
        Client::connect(&svc.name, opts),
        Err(ConnectError::NoServer { .. })
    ));
    squatter.kill();
}

#[test]
fn a_request_topic_of_an_untrusted_user_behind_a_trusted_plate_is_refused() {
    if let Err(why) = can_switch_user() {
        eprintln!("{why}");
        return;
    }
    let svc = Svc::new("xuserreq");
    let mut server = Server::create(&svc.name, svc.server()).expect("serve");
    // The request topic now belongs to another user, as if it had taken the name: the
    // check is on the descriptor a joiner maps, not only on the plate.
    let requests = format!(
        "/dev/shm/{}.{}",
        svc.prefix,
        ringcast::service::wire::request_topic(&svc.name)
    );
    nix::unistd::chown(
        requests.as_str(),
        Some(nix::unistd::Uid::from_raw(USER_B)),
        Some(nix::unistd::Gid::from_raw(USER_B)),
    )
    .unwrap();
    match connect(&mut server, &svc, svc.client()) {
        Err(ConnectError::UntrustedOwner { topic, owner, .. }) => {
            assert_eq!(owner.uid, USER_B);
            assert_eq!(topic, ringcast::service::wire::request_topic(&svc.name));
        }
        Err(e) => panic!("expected UntrustedOwner, got {e}"),
        Ok(_) => panic!("joined another user's request topic"),
    }
    let client = connect(&mut server, &svc, svc.client().trust_user(USER_B)).expect("trusted");
    assert_eq!(server.stats().clients, 1);
    drop(client);
}

#[test]
fn a_request_the_server_gives_up_on_fails_its_call_at_once_however_it_is_received() {
    let svc = Svc::new("fail");
    let mut server = Server::create(&svc.name, svc.server()).expect("serve");
    let mut client = connect(&mut server, &svc, svc.client()).expect("connect");
    // 1: failed after a part. 2: failed deferred, while 3 is answered (so 2's failure is
    // set aside while the client waits for 3). 4 (`call`) and 5 (`recv_any`): failed.
    let first = client.send(b"one", LONG).unwrap();
    let second = client.send(b"two", LONG).unwrap();
    let third = client.send(b"three", LONG).unwrap();
    let mut r = server.recv_timeout(LONG).unwrap();
    r.respond_part(b"part").unwrap();
    r.fail().unwrap();
    let deferred = server.recv_timeout(LONG).unwrap().defer();
    server.fail(deferred).unwrap();
    server.recv_timeout(LONG).unwrap().respond(b"3").unwrap();
    assert_eq!(&client.recv(third, LONG).unwrap().unwrap()[..], b"3");
    assert_eq!(&client.recv(first, LONG).unwrap().unwrap()[..], b"part");
    assert_eq!(
        client.recv(first, LONG).map(|r| r.is_some()),
        Err(CallError::Failed { call: first })
    );
    assert_eq!(client.recv(first, LONG).map(|r| r.is_some()), Ok(false));
    assert_eq!(
        client.recv(second, LONG).map(|r| r.is_some()),
        Err(CallError::Failed { call: second })
    );
    let answer = std::thread::spawn(move || {
        for _ in 0..2 {
            server.recv_timeout(LONG).unwrap().fail().unwrap();
        }
        server
    });
    assert!(matches!(
        client.call(b"four", LONG).map(|r| r.len()),
        Err(CallError::Failed { .. })
    ));
    let fifth = client.send(b"five", LONG).unwrap();
    assert_eq!(
        client.recv_any(LONG).map(|(c, r)| (c, r.is_some())),
        Err(CallError::Failed { call: fifth })
    );
    assert_eq!(client.in_flight(), 0);
    let server = answer.join().unwrap();
    assert_eq!(server.stats().malformed, 0);
}

#[test]
fn the_end_of_a_request_dropped_while_its_client_is_full_arrives_once_it_reads() {
    let svc = Svc::new("owed");
    let mut server =
        Server::create(&svc.name, svc.server().queue(2).response_slots(2)).expect("serve");
    let mut client = connect(&mut server, &svc, svc.client()).expect("connect");
    let call = client.send(b"parts", LONG).unwrap();
    let mut req = server.recv_timeout(LONG).unwrap();
    req.respond_part(b"1").unwrap();
    req.respond_part(b"2").unwrap();
    assert_eq!(req.respond_part(b"3"), Err(RespondError::ClientFull));
    drop(req); // its end does not fit now
    let serving = std::thread::spawn(move || {
        // The server goes on receiving (nothing comes): its sweeps send the owed end.
        let _ = server.recv_timeout(Duration::from_secs(2));
        server
    });
    let t = Instant::now();
    assert_eq!(&client.recv(call, LONG).unwrap().unwrap()[..], b"1");
    assert_eq!(&client.recv(call, LONG).unwrap().unwrap()[..], b"2");
    assert!(client.recv(call, LONG).unwrap().is_none(), "the end");
    assert!(t.elapsed() < BOUND, "the end came after {:?}", t.elapsed());
    drop(serving.join().unwrap());
}

#[test]
fn sizes_no_topic_can_have_are_refused_when_the_server_is_created() {
    let svc = Svc::new("sizes");
    for cfg in [
        svc.server().max_response(u64::MAX - 10),
        svc.server().max_request(u64::MAX - 10),
        svc.server().max_response(1 << 30),
        svc.server().max_request(1 << 30),
    ] {
        assert!(
            matches!(
                Server::create(&svc.name, cfg),
                Err(ServeError::Config { .. })
            ),
            "accepted"
        );
    }
    assert!(svc.topics().is_empty(), "{:?}", svc.topics());
}

#[test]
fn a_call_id_of_another_client_is_unknown_here() {
    let svc = Svc::new("ids");
    let mut server = Server::create(&svc.name, svc.server()).expect("serve");
    let mut a = connect(&mut server, &svc, svc.client()).expect("connect a");
    let mut b = connect(&mut server, &svc, svc.client()).expect("connect b");
    let call = a.send(b"x", LONG).unwrap();
    let mine = b.send(b"y", LONG).unwrap();
    assert_ne!(call, mine);
    assert_eq!(
        b.recv(call, Duration::ZERO).map(|r| r.is_some()),
        Err(CallError::UnknownCall)
    );
    assert_eq!(b.call_id(call.get()), None);
    assert_eq!(b.call_id(mine.get()), Some(mine));
}
