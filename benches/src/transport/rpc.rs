//! The service rows: request and response through ringcast's [`Server`] and [`Client`].
//!
//! | row | clients | scenario | payloads |
//! |---|---|---|---|
//! | `ringcast-rpc` | 1 (parent), one call per round trip | pingpong | 8 B, 64 B, 4 KiB ([`PINGPONG_PAYLOADS`]) |
//! | `ringcast-rpc-1` | 1 thread (child), pipelined | throughput | 64 B |
//! | `ringcast-rpc-4` | 4 threads (child), pipelined | throughput | 64 B |
//!
//! Every waiting side busy-spins ([`WaitStrategy::BusySpin`], as `ringcast-spin`): the
//! server's request subscriber, the clients' response subscribers and a client facing a
//! full queue. The server is created with the payload as its largest request and
//! response, the default queue (16 requests per client, also the most a client has in
//! flight) and room for the row's clients; names are `<pid>-<counter>.rpc` under the
//! suite's private prefix ([`PREFIX`]).
//!
//! * **Ping-pong** (parent: the client, the initiator; child: the server, the responder).
//!   A round trip is one call: the initiator's `send` is [`Client::send`] (the message
//!   copied into the request slot), its `recv` is [`Client::recv`] of that call, the
//!   response copied out into the buffer; the responder's `recv` copies the request out
//!   and [defers](ringcast::Request::defer) it, its `send` answers it with
//!   [`Server::respond`] (copied in). So every payload byte is copied four times per round
//!   trip, and the echo is byte for byte, tag included: the service API takes and gives
//!   slices. `ringcast-spin`, its reference, is the loan path (only the 8-byte tag is
//!   written and read), so at 4 KiB its ratio includes those copies. The client connects
//!   on its first send, once the child's server is receiving (a connect greets the
//!   server). Ratios: against `ringcast-spin` (what the request/response layer costs over
//!   two raw topics, issue 27's target: at most 1.2x its p50) and against `uds-stream`,
//!   which is a request/response over a Unix socket: its responder reads the whole
//!   message from the socket and writes it back.
//! * **Throughput** (parent: the server; child: the clients, a thread each). Every client
//!   keeps its whole queue of calls in flight: it sends until it has 16 in flight, then
//!   takes any response (copied out) and sends the next call. Each phase (warm-up, data)
//!   ends with the client receiving all its calls' responses; then it sends one stop
//!   request, which the server does not answer. The server copies every request out and
//!   answers it with the same bytes, and counts the data calls from the first to the
//!   last client's stop: since a client sends its stop only once all its data calls are
//!   answered and received, that is the number of calls completed by all clients
//!   together. The row's msgs/s are completed calls per second (bytes/s: calls times the
//!   payload, one way). As the `ringcast-mpsc-N` rows, the client threads are one
//!   process pinned to one CPU and the server has the other: on a 2-core machine the rows
//!   are bound by the one CPU the clients share (each call's send and receive), and the
//!   four clients of `ringcast-rpc-4` take turns on it (a spinning client holds it for its
//!   time slice), so `-4` against `-1` shows what serving four clients costs, not a
//!   parallel speed-up. These rows are compared with each other only (`ringcast-rpc-4`
//!   against `ringcast-rpc-1`), not with `memcpy` or the kernel baselines, which move
//!   one-way messages.

use std::time::Instant;

use ringcast::{CallId, Client, ClientOptions, Responder, Server, ServerConfig, WaitStrategy};

use super::ringcast::{topic, unique_base, PREFIX};
use super::ringcast_many::on_threads;
use super::{Endpoint, Link, LinkSpec, Tag, Transport, PEER_TIMEOUT};
use crate::error::{BenchError, Result};
use crate::scenario::throughput::Rate;
use crate::scenario::{Scenario, Timing};

/// The ping-pong row's payloads (issue 27: 64 B and 4 KiB; 8 B besides, whose request
/// and response fit the slot's first cache line with the 16-byte service header, as
/// `ringcast-spin`'s 8-byte tag does at every payload: it shows what the service layer
/// costs apart from a second line per hop). 4 KiB is not one of the suite's payloads:
/// the suite measures it for this row and its references only
/// ([`crate::suite::EXTRA_PAYLOADS`]); 8 B is measured only in full runs.
pub const PINGPONG_PAYLOADS: &[usize] = &[8, 64, 4096];

/// The throughput rows' one payload.
pub const THROUGHPUT_PAYLOAD: usize = 64;

/// The throughput rows, whose figure is completed calls (not one-way messages).
pub const CALL_RATES: &[&str] = &["ringcast-rpc-1", "ringcast-rpc-4"];

/// Each service row and what it is compared with in the same interleaved rounds.
pub const VS: &[(Scenario, &str, &str)] = &[
    (Scenario::PingPong, "ringcast-rpc", "ringcast-spin"),
    (Scenario::PingPong, "ringcast-rpc", "uds-stream"),
    (Scenario::Throughput, "ringcast-rpc-4", "ringcast-rpc-1"),
];

/// One row.
pub struct Rpc {
    name: &'static str,
    scenario: Scenario,
    clients: usize,
}

/// `ringcast-rpc`: one call per round trip.
pub const PINGPONG: Rpc = Rpc {
    name: "ringcast-rpc",
    scenario: Scenario::PingPong,
    clients: 1,
};

/// `ringcast-rpc-1`: one client keeping its queue of calls in flight.
pub const THROUGHPUT_1: Rpc = Rpc {
    name: "ringcast-rpc-1",
    scenario: Scenario::Throughput,
    clients: 1,
};

/// `ringcast-rpc-4`: four clients, each keeping its queue of calls in flight.
pub const THROUGHPUT_4: Rpc = Rpc {
    name: "ringcast-rpc-4",
    scenario: Scenario::Throughput,
    clients: 4,
};

fn rpc_err(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Ringcast(format!("{what}: {e}"))
}

/// The row's server: the payload is its largest request and response.
fn serve(service: &str, payload: usize, clients: usize) -> Result<Server> {
    let cfg = ServerConfig::default()
        .prefix(PREFIX)
        .max_clients(clients as u64)
        .max_request(payload as u64)
        .max_response(payload as u64)
        .wait_strategy(WaitStrategy::BusySpin);
    Server::create(service, cfg).map_err(|e| rpc_err(&format!("serve {service}"), e))
}

impl Transport for Rpc {
    fn name(&self) -> &'static str {
        self.name
    }

    fn supports(&self, scenario: Scenario) -> bool {
        scenario == self.scenario
    }

    fn payloads(&self) -> Option<&'static [usize]> {
        match self.scenario {
            Scenario::PingPong => Some(PINGPONG_PAYLOADS),
            _ => Some(&[THROUGHPUT_PAYLOAD]),
        }
    }

    fn spins(&self) -> bool {
        true
    }

    fn open(&self, spec: &LinkSpec) -> Result<Link> {
        if spec.payload < Tag::LEN {
            return Err(BenchError::Unsupported(format!(
                "{} needs at least {} bytes per message",
                self.name,
                Tag::LEN
            )));
        }
        let service = topic(&unique_base(), "rpc");
        let local: Box<dyn Endpoint> = match spec.scenario {
            Scenario::PingPong => Box::new(Caller::new(&service)),
            Scenario::Throughput => Box::new(ServerEnd {
                server: serve(&service, spec.payload, self.clients)?,
                pending: None,
                clients: self.clients,
            }),
            Scenario::Fanout => {
                return Err(BenchError::Unsupported(format!(
                    "{} has no fan-out",
                    self.name
                )))
            }
        };
        Ok(Link {
            local,
            child_fds: Vec::new(),
            child_args: vec![service],
        })
    }

    fn attach(&self, spec: &LinkSpec, args: &[String]) -> Result<Box<dyn Endpoint>> {
        let service = args
            .first()
            .ok_or_else(|| BenchError::Protocol("missing service argument".into()))?;
        match spec.scenario {
            Scenario::PingPong => Ok(Box::new(ServerEnd {
                server: serve(service, spec.payload, self.clients)?,
                pending: None,
                clients: self.clients,
            })),
            // The clients connect in `produce`, once the parent's server receives.
            Scenario::Throughput => Ok(Box::new(Callers {
                callers: (0..self.clients).map(|_| Caller::new(service)).collect(),
            })),
            Scenario::Fanout => Err(BenchError::Unsupported(format!(
                "{} has no fan-out",
                self.name
            ))),
        }
    }
}

/// The server's end: receives requests and answers them.
struct ServerEnd {
    server: Server,
    /// The request received last, not answered yet.
    pending: Option<Responder>,
    /// Clients whose stop requests end a throughput run.
    clients: usize,
}

/// A received request or response of the wrong size.
fn check_len(got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(BenchError::Protocol(format!(
            "received a {got}-byte message, expected {want}"
        )))
    }
}

impl Endpoint for ServerEnd {
    /// Answers the request received last with `msg`.
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let to = self
            .pending
            .take()
            .ok_or_else(|| BenchError::Protocol("no request to answer".into()))?;
        self.server
            .respond(to, msg)
            .map_err(|e| rpc_err("respond", e))
    }

    /// Receives a request: copied into `msg`, its answer deferred to `send`.
    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        let request = self
            .server
            .recv_timeout(PEER_TIMEOUT)
            .map_err(|e| rpc_err("receive a request", e))?;
        check_len(request.len(), msg.len())?;
        msg.copy_from_slice(&request);
        self.pending = Some(request.defer());
        Ok(())
    }

    /// Answers every request with its own bytes and counts the data calls, until every
    /// client has sent its stop (see the module docs).
    fn consume(&mut self, payload: usize) -> Result<Rate> {
        let mut msg = vec![0u8; payload];
        let mut first = None;
        let mut calls = 0u64;
        let mut stops = 0;
        while stops < self.clients {
            self.recv(&mut msg)?;
            match Tag::read(&msg)? {
                Tag::Warmup => self.send(&msg)?,
                Tag::Data => {
                    first.get_or_insert_with(Instant::now);
                    calls += 1;
                    self.send(&msg)?;
                }
                Tag::Stop => {
                    // Not answered: the client is not waiting for it.
                    self.pending = None;
                    stops += 1;
                }
                Tag::Bulk => return Err(BenchError::Protocol("fan-out message in rpc".into())),
            }
        }
        let first = first.ok_or_else(|| BenchError::Protocol("no data call arrived".into()))?;
        Ok(Rate {
            messages: calls,
            elapsed: first.elapsed(),
            lost: 0,
        })
    }
}

/// A client's end: connects on first use.
struct Caller {
    service: String,
    client: Option<Client>,
    /// The call whose response the next `recv` takes.
    call: Option<CallId>,
}

impl Caller {
    fn new(service: &str) -> Caller {
        Caller {
            service: service.to_owned(),
            client: None,
            call: None,
        }
    }

    fn client(&mut self) -> Result<&mut Client> {
        if self.client.is_none() {
            let opts = ClientOptions::default()
                .prefix(PREFIX)
                .wait(PEER_TIMEOUT)
                .handshake_timeout(PEER_TIMEOUT)
                .wait_strategy(WaitStrategy::BusySpin);
            let client = Client::connect(&self.service, opts)
                .map_err(|e| rpc_err(&format!("connect to {}", self.service), e))?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Takes any response, copies it into `reply` and checks it echoes `tag`.
    fn take_any(client: &mut Client, reply: &mut [u8], tag: Tag) -> Result<()> {
        let (call, response) = client
            .recv_any(PEER_TIMEOUT)
            .map_err(|e| rpc_err("receive a response", e))?;
        let response = response.ok_or_else(|| {
            BenchError::Protocol(format!("call {} ended without a response", call.get()))
        })?;
        check_len(response.len(), reply.len())?;
        reply.copy_from_slice(&response);
        drop(response);
        let got = Tag::read(reply)?;
        if got != tag {
            return Err(BenchError::Protocol(format!(
                "sent {tag:?}, the response came back as {got:?}"
            )));
        }
        Ok(())
    }

    /// Throughput: keeps the queue full of calls through both phases, then sends a stop.
    fn pipeline(&mut self, payload: usize, timing: &Timing) -> Result<()> {
        let mut msg = vec![0u8; payload];
        let mut reply = vec![0u8; payload];
        let client = self.client()?;
        let depth = client.max_in_flight();
        for (tag, phase) in [(Tag::Warmup, timing.warmup), (Tag::Data, timing.measure)] {
            tag.write(&mut msg);
            let phase_end = Instant::now() + phase;
            loop {
                // A clock read per `depth` calls, not per call.
                for _ in 0..depth {
                    while client.in_flight() < depth {
                        client
                            .send(&msg, PEER_TIMEOUT)
                            .map_err(|e| rpc_err("send a call", e))?;
                    }
                    Self::take_any(client, &mut reply, tag)?;
                }
                if Instant::now() >= phase_end {
                    break;
                }
            }
            while client.in_flight() > 0 {
                Self::take_any(client, &mut reply, tag)?;
            }
        }
        Tag::Stop.write(&mut msg);
        client
            .send(&msg, PEER_TIMEOUT)
            .map_err(|e| rpc_err("send the stop", e))?;
        Ok(())
    }
}

impl Endpoint for Caller {
    /// Calls with `msg` as the request.
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let call = self
            .client()?
            .send(msg, PEER_TIMEOUT)
            .map_err(|e| rpc_err("send a call", e))?;
        self.call = Some(call);
        Ok(())
    }

    /// Receives the response of the last call, copied into `msg`.
    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        let call = self
            .call
            .take()
            .ok_or_else(|| BenchError::Protocol("no call to take a response of".into()))?;
        let client = self.client()?;
        let response = client
            .recv(call, PEER_TIMEOUT)
            .map_err(|e| rpc_err("receive a response", e))?
            .ok_or_else(|| BenchError::Protocol("a call ended without a response".into()))?;
        check_len(response.len(), msg.len())?;
        msg.copy_from_slice(&response);
        Ok(())
    }
}

/// The throughput clients (child): a thread each.
struct Callers {
    callers: Vec<Caller>,
}

impl Endpoint for Callers {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        match self.callers.first_mut() {
            Some(c) => c.send(msg),
            None => Err(BenchError::Protocol("no client".into())),
        }
    }

    fn recv(&mut self, msg: &mut [u8]) -> Result<()> {
        match self.callers.first_mut() {
            Some(c) => c.recv(msg),
            None => Err(BenchError::Protocol("no client".into())),
        }
    }

    fn produce(&mut self, payload: usize, timing: &Timing) -> Result<()> {
        on_threads(&mut self.callers, |c| c.pipeline(payload, timing)).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::pingpong;
    use crate::suite::{self, Config};

    const SHORT: Timing = Timing {
        warmup: Duration::from_millis(2),
        measure: Duration::from_millis(10),
    };

    #[test]
    fn the_round_trip_row_runs_at_64_b_and_4_kib_with_its_references() {
        let cfg = Config {
            payloads: crate::suite::QUICK_PAYLOADS.to_vec(),
            timing: Timing::QUICK,
            filter: vec!["pingpong/".into()],
        };
        let plan = suite::plan(&cfg);
        let at = |payload| -> Vec<&str> {
            plan.iter()
                .filter(|m| m.payload == payload)
                .map(|m| m.transport())
                .collect()
        };
        assert!(at(64).contains(&"ringcast-rpc"));
        assert_eq!(
            at(4096),
            ["uds-stream", "ringcast-spin", "ringcast-rpc"],
            "4 KiB is measured for the rpc row and its references only"
        );
        assert!(!at(64 * 1024).contains(&"ringcast-rpc"));
    }

    #[test]
    fn a_round_trip_echoes_every_byte_through_a_server() {
        let service = topic(&unique_base(), "rpc");
        let mut server = ServerEnd {
            server: serve(&service, 64, 1).unwrap(),
            pending: None,
            clients: 1,
        };
        let answering = std::thread::spawn(move || -> Result<Vec<u8>> {
            let mut msg = vec![0u8; 64];
            server.recv(&mut msg)?;
            let seen = msg.clone();
            msg.reverse();
            server.send(&msg)?;
            pingpong::responder(&mut server, 64)?;
            Ok(seen)
        });
        let mut caller = Caller::new(&service);
        let mut msg: Vec<u8> = (0..64u8).collect();
        Tag::Warmup.write(&mut msg);
        caller.send(&msg).unwrap();
        let mut reply = vec![0u8; 64];
        caller.recv(&mut reply).unwrap();
        let mut reversed = msg.clone();
        reversed.reverse();
        assert_eq!(reply, reversed, "the response is what the server sent");
        let hist = caller.ping(64, &SHORT).unwrap();
        assert!(!hist.is_empty());
        assert_eq!(answering.join().unwrap().unwrap(), msg);
    }

    #[test]
    fn pipelined_clients_complete_calls_counted_by_the_server() {
        let service = topic(&unique_base(), "rpc");
        let mut server = ServerEnd {
            server: serve(&service, THROUGHPUT_PAYLOAD, 2).unwrap(),
            pending: None,
            clients: 2,
        };
        let counting = std::thread::spawn(move || server.consume(THROUGHPUT_PAYLOAD));
        let mut callers = Callers {
            callers: (0..2).map(|_| Caller::new(&service)).collect(),
        };
        callers.produce(THROUGHPUT_PAYLOAD, &SHORT).unwrap();
        for c in &callers.callers {
            assert_eq!(
                c.client.as_ref().map(Client::in_flight),
                Some(1),
                "the stop"
            );
        }
        let rate = counting.join().unwrap().unwrap();
        assert!(rate.messages > 0 && rate.lost == 0, "{rate:?}");
    }
}
