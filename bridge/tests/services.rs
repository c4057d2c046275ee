//! Services across the bridge: calls, streams, empty streams and concurrent clients go
//! through two bridges on loopback; a dead remote server or a killed exporting bridge
//! ends local calls with `Disconnected` within a bound; a live local server is never
//! shadowed; an imported service is not exported back; a service's own topics are
//! refused as topics. A typed service imports typed: typed clients of its types call it
//! (calls and streams), clients of other types are refused at connect, and announcements
//! with garbage types are refused and counted.

mod harness;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use harness::*;
use ringcast::{
    CallError, Client, ClientOptions, ConnectError, Server, ServerConfig, TypedClient, TypedServer,
};

/// A hang bound, not a speed claim: the kernel resets a killed bridge's connection at
/// once, and a dropped server reaches its clients within a liveness slice.
const BOUND: Duration = Duration::from_secs(5);
const SLICE: Duration = Duration::from_millis(50);

/// Removes every segment under both prefixes of the pair (private to the test).
struct Clean<'a>(&'a Pair);

impl Drop for Clean<'_> {
    fn drop(&mut self) {
        for p in [&self.0.a, &self.0.b] {
            for t in ringcast::name::list_topics(p).unwrap_or_default() {
                let _ = ringcast::inspect::remove(p, &t);
            }
        }
    }
}

/// A server of `name` under `prefix` in a thread, until `stop`: `echo:X` is answered
/// `X`; `stream` with 0, 1, 2 then the end; `none` with the end alone; `fail` by giving
/// up on it; `hold` never (deferred and kept until the server is dropped).
fn server(prefix: &str, name: &str, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let mut server = Server::create(name, ServerConfig::default().prefix(prefix)).expect("server");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut req) = server.recv_timeout(SLICE) else {
                continue;
            };
            let body = req.bytes().to_vec();
            match &body[..] {
                b"stream" => {
                    for i in 0..3u8 {
                        req.respond_part(&[i]).unwrap();
                    }
                    req.end().unwrap();
                }
                b"none" => req.end().unwrap(),
                b"fail" => req.fail().unwrap(),
                b"hold" => held.push(req.defer()),
                b => {
                    let rest = b.strip_prefix(b"echo:").expect("a known request").to_vec();
                    req.respond(&rest).unwrap();
                }
            }
        }
        drop(held);
    })
}

fn connect(prefix: &str, name: &str) -> Client {
    let opts = ClientOptions::default().prefix(prefix).wait(WAIT);
    Client::connect(name, opts).unwrap_or_else(|e| panic!("connecting to {prefix}.{name}: {e}"))
}

/// A client on B of the service served on A, once A's bridge exports it and B's imports
/// it; the first call answers.
fn imported_client(pair: &Pair, name: &str) -> Client {
    let mut c = connect(&pair.b, name);
    let r = c.call(b"echo:first", WAIT).expect("the first call");
    assert_eq!(r.bytes(), b"first");
    drop(r);
    c
}

/// Waits for `call`'s stream to end in `Disconnected`; returns how long after `since`.
fn until_disconnected(c: &mut Client, call: ringcast::CallId, since: Instant) -> Duration {
    match c.recv(call, WAIT) {
        Err(CallError::Disconnected) => since.elapsed(),
        Err(CallError::Timeout) => panic!("no Disconnected within {WAIT:?}"),
        other => panic!(
            "expected Disconnected, got {:?}",
            other.map(|r| r.is_some())
        ),
    }
}

#[test]
fn calls_streams_and_empty_streams_go_through_and_clients_get_their_own_answers() {
    let pair = Pair::new("svc");
    let _clean = Clean(&pair);
    let name = "clock";
    let stop = Arc::new(AtomicBool::new(false));
    let srv = server(&pair.a, name, stop.clone());
    let mut a = pair.bridge_a(&["--export-service", name]);
    let mut b = pair.bridge_b(&["--import-service", name]);
    let mut c = imported_client(&pair, name);

    // A stream of three, in order, then its end.
    let call = c.send(b"stream", WAIT).unwrap();
    let mut got = Vec::new();
    while let Some(r) = c.recv(call, WAIT).expect("a stream response") {
        got.push(r.bytes().to_vec());
    }
    assert_eq!(got, [[0u8], [1], [2]]);
    // No response at all: the stream ends empty.
    assert_eq!(c.call(b"none", WAIT).err(), Some(CallError::NoResponse));
    let call = c.send(b"none", WAIT).unwrap();
    assert!(c.recv(call, WAIT).unwrap().is_none());

    // Three clients, each with several calls in flight, each gets its own answers.
    let clients: Vec<_> = (0..3)
        .map(|k| {
            let prefix = pair.b.clone();
            std::thread::spawn(move || {
                let mut c = connect(&prefix, name);
                let calls: Vec<_> = (0..5)
                    .map(|i| {
                        let body = format!("echo:{k}-{i}");
                        (i, c.send(body.as_bytes(), WAIT).unwrap())
                    })
                    .collect();
                for (i, call) in calls {
                    let r = c.recv(call, WAIT).unwrap().expect("an answer");
                    assert_eq!(r.bytes(), format!("{k}-{i}").as_bytes());
                    assert!(r.is_last());
                }
            })
        })
        .collect();
    for t in clients {
        t.join().expect("a client thread");
    }
    drop(c);
    let (log_a, log_b) = stop_both(&mut a, &mut b);
    stop.store(true, Ordering::Relaxed);
    srv.join().unwrap();
    // first + stream + 2 none + 15 echoes
    let calls = 1 + 1 + 2 + 15;
    let ex = counts(&log_a, "ServiceExport", name);
    let im = counts(&log_b, "ServiceImport", name);
    assert_eq!((ex.puts, im.puts), (calls, calls), "{log_a}\n{log_b}");
    assert_eq!((ex.messages, im.messages), (1 + 3 + 15, 1 + 3 + 15));
    assert_eq!((ex.lost, im.lost, im.refused), (0, 0, 0));
}

#[test]
fn the_remote_server_going_ends_local_calls_with_disconnected() {
    let pair = Pair::new("svcgone");
    let _clean = Clean(&pair);
    let name = "gone";
    let stop = Arc::new(AtomicBool::new(false));
    let srv = server(&pair.a, name, stop.clone());
    let _a = pair.bridge_a(&["--export-service", name]);
    let _b = pair.bridge_b(&["--import-service", name]);
    let mut c = imported_client(&pair, name);
    let call = c.send(b"hold", WAIT).unwrap();
    // Let the request reach the server before it goes.
    assert!(matches!(
        c.recv(call, Duration::from_millis(500)),
        Err(CallError::Timeout)
    ));
    let since = Instant::now();
    stop.store(true, Ordering::Relaxed);
    srv.join().unwrap(); // the server is dropped with the request unanswered
    let took = until_disconnected(&mut c, call, since);
    eprintln!("remote server gone: Disconnected after {took:?}");
    assert!(took < BOUND, "Disconnected after {took:?}");
    assert_eq!(c.call(b"echo:x", WAIT).err(), Some(CallError::Disconnected));
}

#[test]
fn killing_the_exporting_bridge_ends_local_calls_with_disconnected() {
    let pair = Pair::new("svckill");
    let _clean = Clean(&pair);
    let name = "killed";
    let stop = Arc::new(AtomicBool::new(false));
    let srv = server(&pair.a, name, stop.clone());
    let mut a = pair.bridge_a(&["--export-service", name]);
    let _b = pair.bridge_b(&["--import-service", name]);
    let mut c = imported_client(&pair, name);
    let call = c.send(b"hold", WAIT).unwrap();
    assert!(matches!(
        c.recv(call, Duration::from_millis(500)),
        Err(CallError::Timeout)
    ));
    let since = Instant::now();
    a.kill();
    let took = until_disconnected(&mut c, call, since);
    eprintln!("exporting bridge killed: Disconnected after {took:?}");
    assert!(took < BOUND, "Disconnected after {took:?}");
    stop.store(true, Ordering::Relaxed);
    srv.join().unwrap();
}

#[test]
fn a_live_local_server_is_not_shadowed_and_an_import_is_not_exported_back() {
    let pair = Pair::new("svcshadow");
    let _clean = Clean(&pair);
    let (shadowed, echoed) = ("shadowed", "echoed");
    let stop = Arc::new(AtomicBool::new(false));
    let remote = server(&pair.a, shadowed, stop.clone());
    let remote2 = server(&pair.a, echoed, stop.clone());
    // B has its own server of `shadowed`: it answers `echo:X` with `X`, and says so.
    let mut local = Server::create(shadowed, ServerConfig::default().prefix(&pair.b)).unwrap();
    let stop_local = stop.clone();
    let local = std::thread::spawn(move || {
        while !stop_local.load(Ordering::Relaxed) {
            if let Ok(req) = local.recv_timeout(SLICE) {
                req.respond(b"local").unwrap();
            }
        }
    });
    // Both bridges export and import both services (the symmetric configuration).
    let roles = [
        "--export-service",
        shadowed,
        "--import-service",
        shadowed,
        "--export-service",
        echoed,
        "--import-service",
        echoed,
    ];
    let mut a = pair.bridge_a(&roles);
    let mut b = pair.bridge_b(&roles);
    // `echoed` is imported on B (the call goes to A's server), marked with where it
    // runs...
    let mut c = imported_client(&pair, echoed);
    drop(c.call(b"echo:x", WAIT).unwrap());
    let plate = ringcast::inspect::inspect(&pair.b, &ringcast::service::wire::anchor_topic(echoed))
        .unwrap();
    assert!(
        plate.origin.as_deref().is_some_and(|o| o.contains(&pair.a)),
        "{:?}",
        plate.origin
    );
    // ...which a second bridge of host B, exporting it, does not echo back either.
    let mut b2 = pair.bridge_b(&["--export-service", echoed]);
    eventually("B's second bridge to skip the import", || {
        b2.log()
            .contains("not exporting a service that is itself imported")
    });
    assert!(b2.interrupt().success(), "{}", b2.log());
    assert_eq!(counts(&b2.log(), "ServiceExport", echoed).puts, 0);
    // ...and `shadowed` is refused there: B's own server answers.
    eventually("B refuses to shadow its local server", || {
        b.log().contains("a live local server has this name")
    });
    let mut c2 = connect(&pair.b, shadowed);
    assert_eq!(c2.call(b"echo:x", WAIT).unwrap().bytes(), b"local");
    drop((c, c2));
    // Give an echo the time it would take, then look.
    std::thread::sleep(Duration::from_secs(1));
    let (log_a, log_b) = stop_both(&mut a, &mut b);
    stop.store(true, Ordering::Relaxed);
    for t in [remote, remote2, local] {
        t.join().unwrap();
    }
    assert!(
        counts(&log_b, "ServiceImport", shadowed).refused >= 1,
        "{log_b}"
    );
    assert_eq!(counts(&log_b, "ServiceImport", echoed).refused, 0);
    // B never exported what it imported, and A never imported its own service back.
    assert!(
        log_b.contains("not exporting a service that is itself imported"),
        "{log_b}"
    );
    assert_eq!(counts(&log_b, "ServiceExport", echoed).puts, 0, "{log_b}");
    assert_eq!(counts(&log_a, "ServiceImport", echoed).puts, 0, "{log_a}");
    assert!(!log_a.contains("importing the service"), "{log_a}");
}

#[test]
fn a_services_own_topics_are_refused_as_topics() {
    for (flag, topic) in [
        ("--export", "clock..service"),
        ("--export", "clock..requests"),
        ("--import", "clock..responses.0123456789abcdef"),
    ] {
        let out = std::process::Command::new(BIN)
            .args(["--prefix", "rcsvcrefused", flag, topic])
            .output()
            .expect("running the bridge");
        assert_eq!(out.status.code(), Some(2), "{flag} {topic}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is a topic of the service \"clock\""),
            "{flag} {topic}: {err}"
        );
    }
}

type Got = Vec<Result<(Vec<u8>, Option<Vec<u8>>), Vec<u8>>>;

/// Every reply to a query on `key` with `payload`: responses with their attachment, or
/// error payloads.
fn query(peer: &zenoh::Session, key: &str, payload: Vec<u8>) -> Got {
    use zenoh::Wait;
    let replies = peer
        .get(key)
        .payload(payload)
        .consolidation(zenoh::query::ConsolidationMode::None)
        .timeout(Duration::from_secs(5))
        .wait()
        .expect("a query");
    let mut got = Vec::new();
    while let Ok(r) = replies.recv() {
        got.push(match r.result() {
            Ok(s) => Ok((
                s.payload().to_bytes().into_owned(),
                s.attachment().map(|a| a.to_bytes().into_owned()),
            )),
            Err(e) => Err(e.payload().to_bytes().into_owned()),
        });
    }
    got
}

#[test]
fn hostile_queries_announcements_and_replies_are_dropped_and_counted() {
    use ringcast_bridge::announce::ServiceAnnouncement;
    use zenoh::Wait;
    let pair = Pair::new("svchostile");
    let _clean = Clean(&pair);
    let stop = Arc::new(AtomicBool::new(false));
    let srv = server(&pair.a, "hx", stop.clone());
    let mut victim = pair.bridge_a(&["--export-service", "hx", "--import-service", "hy"]);
    let peer = hostile_peer(&pair.endpoint);
    let zid = zid_of(&victim);
    linked_to(&peer, &zid);
    let d = &pair.domain;

    // Exporting side: a request larger than the server takes is refused with an error
    // reply; the export goes on.
    let calls = format!("ringcast/{d}/hx/@call/{zid}");
    let good = || query(&peer, &calls, b"echo:ok".to_vec());
    eventually("the export answers", || {
        good() == [Ok((b"ok".to_vec(), Some(b"L".to_vec())))]
    });
    let big = query(&peer, &calls, vec![b'e'; 5000]);
    assert!(matches!(&big[..], [Err(_)]), "{big:?}");
    assert_eq!(good(), [Ok((b"ok".to_vec(), Some(b"L".to_vec())))]);

    // Importing side: a malformed announcement is refused; a valid one is served, and a
    // reply without a kind is dropped: the query then ends without the stream's end, so
    // the local call ends with `Disconnected` (never a hang, never a panic).
    let pz = peer.zid().to_string();
    let bad = peer
        .liveliness()
        .declare_token(format!("ringcast/{d}/@service/hy/{pz}/zz"))
        .wait()
        .unwrap();
    let a = ServiceAnnouncement {
        max_request: 64,
        max_response: 64,
        queue: 4,
        max_clients: 2,
        request_type: ringcast::TypeInfo::RAW,
        response_type: ringcast::TypeInfo::RAW,
        host: "evil".into(),
        prefix: "x".into(),
    };
    let _q = peer
        .declare_queryable(format!("ringcast/{d}/hy/@call/{pz}"))
        .callback(|q| {
            let _ = q.reply(q.key_expr().clone(), b"no kind".to_vec()).wait();
        })
        .wait()
        .unwrap();
    let token = peer
        .liveliness()
        .declare_token(format!("ringcast/{d}/@service/hy/{pz}/{}", a.encode()))
        .wait()
        .unwrap();
    let mut c = connect(&pair.a, "hy");
    assert_eq!(c.call(b"x", WAIT).err(), Some(CallError::Disconnected));
    drop((bad, token, c));
    let status = victim.interrupt();
    assert!(status.success(), "{}", victim.log());
    let log = victim.log();
    stop.store(true, Ordering::Relaxed);
    srv.join().unwrap();
    assert!(counts(&log, "ServiceExport", "hx").refused >= 1, "{log}");
    assert!(counts(&log, "ServiceImport", "hy").refused >= 2, "{log}");
}

#[test]
fn a_call_past_the_call_timeout_or_given_up_fails_at_once_and_the_service_goes_on() {
    let pair = Pair::new("svctimeout");
    let _clean = Clean(&pair);
    let name = "slow";
    let stop = Arc::new(AtomicBool::new(false));
    let srv = server(&pair.a, name, stop.clone());
    let _a = pair.bridge_a(&["--export-service", name, "--call-timeout-ms", "300"]);
    let _b = pair.bridge_b(&["--import-service", name, "--call-timeout-ms", "300"]);
    let mut c = imported_client(&pair, name);
    // Never answered remotely: each query times out, and the importer fails the local
    // call (an empty end would look like the server's `end`), so its caller learns it at
    // once instead of at its own timeout. More of them than the exporting bridge's client
    // may have in flight (16): the exporter cancels its late calls, or the last calls
    // below would find no room.
    for _ in 0..2 {
        let calls: Vec<_> = (0..10).map(|_| c.send(b"hold", WAIT).unwrap()).collect();
        for call in calls {
            let t = Instant::now();
            assert_eq!(
                c.recv(call, WAIT).map(|r| r.is_some()),
                Err(CallError::Failed { call })
            );
            assert!(t.elapsed() < BOUND, "failed after {:?}", t.elapsed());
            // Over: no more responses, no second failure.
            assert_eq!(c.recv(call, WAIT).map(|r| r.is_some()), Ok(false));
        }
    }
    // A whole `call` fails too (not `NoResponse`, not its own 30 s timeout).
    let t = Instant::now();
    assert!(matches!(
        c.call(b"hold", WAIT).map(|r| r.len()),
        Err(CallError::Failed { .. })
    ));
    assert!(t.elapsed() < BOUND, "failed after {:?}", t.elapsed());
    // The remote server giving up reaches the caller the same way, at once.
    let call = c.send(b"fail", WAIT).unwrap();
    assert_eq!(
        c.recv(call, WAIT).map(|r| r.is_some()),
        Err(CallError::Failed { call })
    );
    let r = c.call(b"echo:still", WAIT).expect("the service goes on");
    assert_eq!(r.bytes(), b"still");
    drop(r);
    stop.store(true, Ordering::Relaxed);
    srv.join().unwrap();
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

/// A typed server of `name` under `prefix` in a thread, until `stop`: goal 0 is answered
/// with a stream of three plans (steps `[0]`, `[1]`, `[2]`) then the end; goal `n` with
/// one plan of steps `0..n` and the goal's name's length.
fn typed_server(prefix: &str, name: &str, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let cfg = ServerConfig::default().prefix(prefix).max_response(1024);
    let mut server = TypedServer::<Goal, Plan>::create(name, cfg).expect("typed server");
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut req) = server.recv_timeout(SLICE) else {
                continue;
            };
            let id = req.id.to_native();
            if id == 0 {
                for i in 0..3 {
                    let plan = Plan {
                        goal: 0,
                        steps: vec![i],
                    };
                    req.respond_part(&plan).unwrap();
                }
                req.end().unwrap();
            } else {
                let plan = Plan {
                    goal: id,
                    steps: (0..id as u32).chain([req.name.len() as u32]).collect(),
                };
                req.respond(&plan).unwrap();
            }
        }
    })
}

fn goal(id: u64, name: &str) -> Goal {
    Goal {
        id,
        name: name.into(),
    }
}

#[test]
fn a_typed_service_imports_typed_and_other_types_are_refused_at_connect() {
    let pair = Pair::new("svctyped");
    let _clean = Clean(&pair);
    let name = "planner";
    let stop = Arc::new(AtomicBool::new(false));
    let srv = typed_server(&pair.a, name, stop.clone());
    let mut a = pair.bridge_a(&["--export-service", name]);
    let mut b = pair.bridge_b(&["--import-service", name]);
    let opts = ClientOptions::default().prefix(&pair.b).wait(WAIT);
    let mut c = TypedClient::<Goal, Plan>::connect(name, opts.clone())
        .unwrap_or_else(|e| panic!("a typed client of the import: {e}"));

    // Several calls, one at a time.
    for id in 1..=4u64 {
        let plan = c.call(&goal(id, "dock"), WAIT).expect("a typed call");
        assert_eq!(plan.goal.to_native(), id);
        let steps: Vec<u32> = plan.steps.iter().map(|s| s.to_native()).collect();
        let want: Vec<u32> = (0..id as u32).chain([4]).collect();
        assert_eq!(steps, want);
        assert!(plan.is_last());
    }
    // Several in flight, answered each to its own call.
    let calls: Vec<_> = (5..=8u64)
        .map(|id| (id, c.send(&goal(id, "charge"), WAIT).unwrap()))
        .collect();
    for (id, call) in calls {
        let plan = c.recv(call, WAIT).unwrap().expect("an answer");
        assert_eq!(
            (plan.goal.to_native(), plan.steps.len()),
            (id, id as usize + 1)
        );
    }
    // A stream of three, in order, then its end.
    let call = c.send(&goal(0, "tour"), WAIT).unwrap();
    let mut got = Vec::new();
    while let Some(plan) = c.recv(call, WAIT).expect("a stream response") {
        got.push(
            plan.steps
                .iter()
                .map(|s| s.to_native())
                .collect::<Vec<u32>>(),
        );
    }
    assert_eq!(got, [[0], [1], [2]]);

    // Other types are refused at connect, either way round.
    let wrong_request = TypedClient::<u64, Plan>::connect(name, opts.clone());
    assert!(
        matches!(wrong_request, Err(ConnectError::TypeMismatch { .. })),
        "{:?}",
        wrong_request.err()
    );
    let wrong_response = TypedClient::<Goal, u64>::connect(name, opts.clone()).err();
    assert!(
        matches!(
            wrong_response,
            Some(ConnectError::Attach {
                source: ringcast::AttachError::TypeMismatch { .. },
                ..
            })
        ),
        "{wrong_response:?}"
    );
    // A raw client still connects and learns the remote types; its bytes pass through.
    let mut raw = connect(&pair.b, name);
    assert_eq!(raw.request_type(), ringcast::type_info_of::<Goal>(0));
    assert_eq!(raw.response_type(), ringcast::type_info_of::<Plan>(0));
    let archive =
        ringcast::rkyv::to_bytes::<ringcast::rkyv::rancor::Error>(&goal(2, "ab")).unwrap();
    let r = raw
        .call(&archive, WAIT)
        .expect("a raw call of the typed import");
    let plan =
        ringcast::rkyv::access::<ArchivedPlan, ringcast::rkyv::rancor::Error>(r.bytes()).unwrap();
    assert_eq!(plan.goal.to_native(), 2);
    drop(r);
    drop((c, raw));

    let (log_a, log_b) = stop_both(&mut a, &mut b);
    stop.store(true, Ordering::Relaxed);
    srv.join().unwrap();
    // 4 + 4 + the stream + the raw call
    let calls = 4 + 4 + 1 + 1;
    let ex = counts(&log_a, "ServiceExport", name);
    let im = counts(&log_b, "ServiceImport", name);
    assert_eq!((ex.puts, im.puts), (calls, calls), "{log_a}\n{log_b}");
    assert_eq!((ex.lost, im.lost, im.refused), (0, 0, 0), "{log_b}");
    assert!(log_b.contains("Goal"), "the import logs its types: {log_b}");
}

#[test]
fn an_untyped_service_still_imports_raw() {
    let pair = Pair::new("svcraw");
    let _clean = Clean(&pair);
    let name = "bytes";
    let stop = Arc::new(AtomicBool::new(false));
    let srv = server(&pair.a, name, stop.clone());
    let _a = pair.bridge_a(&["--export-service", name]);
    let _b = pair.bridge_b(&["--import-service", name]);
    let mut c = imported_client(&pair, name);
    assert!(c.request_type().is_raw() && c.response_type().is_raw());
    assert_eq!(c.call(b"echo:raw", WAIT).unwrap().bytes(), b"raw");
    // A typed client is refused by the raw import, as by a raw local server.
    let opts = ClientOptions::default().prefix(&pair.b).wait(WAIT);
    let typed = TypedClient::<Goal, Plan>::connect(name, opts);
    assert!(
        matches!(typed, Err(ConnectError::TypeMismatch { .. })),
        "{:?}",
        typed.err()
    );
    drop(c);
    stop.store(true, Ordering::Relaxed);
    srv.join().unwrap();
}

#[test]
fn announcements_with_garbage_types_are_refused_and_counted() {
    use ringcast::TypeInfo;
    use ringcast_bridge::announce::ServiceAnnouncement;
    use zenoh::Wait;
    let pair = Pair::new("svcgarbage");
    let _clean = Clean(&pair);
    let name = "hz";
    let mut victim = pair.bridge_a(&["--import-service", name]);
    let peer = hostile_peer(&pair.endpoint);
    let zid = zid_of(&victim);
    linked_to(&peer, &zid);
    let d = &pair.domain;
    let pz = peer.zid().to_string();
    let good = ServiceAnnouncement {
        max_request: 256,
        max_response: 256,
        queue: 4,
        max_clients: 2,
        request_type: ringcast::type_info_of::<Goal>(0),
        response_type: ringcast::type_info_of::<Plan>(0),
        host: "evil".into(),
        prefix: "x".into(),
    };
    let goal_type = good.request_type;
    let mut control = TypeInfo::new("Goal\x1b[2J", 8, 8, 0);
    // A name hash that matches, so that only the control characters are wrong.
    control.name_hash = TypeInfo::new(control.name(), 8, 8, 0).name_hash;
    let garbage = [
        TypeInfo {
            align: 3,
            ..goal_type
        },
        TypeInfo {
            name_hash: goal_type.name_hash ^ 1,
            ..goal_type
        },
        TypeInfo {
            name_len: 200,
            ..goal_type
        },
        control,
    ];
    // Each under a key of its own (a different queue keeps them apart).
    let tokens: Vec<_> = garbage
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let a = ServiceAnnouncement {
                request_type: *t,
                queue: 1 << (i + 3),
                ..good.clone()
            };
            peer.liveliness()
                .declare_token(format!("ringcast/{d}/@service/{name}/{pz}/{}", a.encode()))
                .wait()
                .unwrap()
        })
        .collect();
    eventually("the importer refuses the four announcements", || {
        victim
            .log()
            .matches("refusing a remote service announcement")
            .count()
            >= 4
    });
    // None of them was served.
    let none = Client::connect(name, ClientOptions::default().prefix(&pair.a));
    assert!(
        matches!(none, Err(ConnectError::NoServer { .. })),
        "{:?}",
        none.err()
    );
    // A good one still is, with its types.
    let token = peer
        .liveliness()
        .declare_token(format!(
            "ringcast/{d}/@service/{name}/{pz}/{}",
            good.encode()
        ))
        .wait()
        .unwrap();
    let opts = ClientOptions::default().prefix(&pair.a).wait(WAIT);
    let c = TypedClient::<Goal, Plan>::connect(name, opts)
        .unwrap_or_else(|e| panic!("a typed client of the good announcement: {e}"));
    drop((c, token, tokens));
    let status = victim.interrupt();
    assert!(status.success(), "{}", victim.log());
    let log = victim.log();
    assert_eq!(counts(&log, "ServiceImport", name).refused, 4, "{log}");
    for why in [
        "type alignment",
        "type name hash",
        "type name length",
        "control characters",
    ] {
        assert!(log.contains(why), "{why}: {log}");
    }
}
