//! Where a 64 B hop's time goes above the cache-line floor, by construction: ping-pong
//! between two threads pinned to two CPUs, over five transports that each add one part
//! of what a ringcast hop does, run interleaved in short rounds.
//!
//! - `floor`: one cache line both sides write (the suite's `floor` row, in threads).
//! - `two-lines`: one line per direction, each written by one side only (what two
//!   topics are: the echo writes another line than the one it read).
//! - `ring`: one ring per direction with ringcast's slot layout (64 slots, a 128-byte
//!   stride, a busy then a committed stamp, the length, an 8-byte payload head, the
//!   writer's cursor) and a reader that stores its cursor per message; the writer reads
//!   the reader's cursor only when it reaches its cached limit. No fences.
//! - `ring+fences`: `ring` plus the two wake handshakes' halves on the hot path: a
//!   SeqCst fence and a load of a flag after each commit and after each release.
//! - `ringcast`: the library itself (`Block`, 64 slots of 64 B, busy-spinning
//!   subscriber, loan / commit / recv / drop), the loop of the suite's `ringcast-spin`.
//!
//! ```sh
//! cargo run --release -p ringcast-bench --example hop_parts -- [rounds] [round trips] [only]
//! ```
//!
//! `only` (a transport's name) runs that transport alone, for a profiler; `solo` runs a
//! 64 B loan / commit / recv / drop loop in one thread, `rpc-solo` a 64 B call (send,
//! try_recv, respond, recv) in one thread, each printing nanoseconds per message.
//!
//! Prints, per transport, the median over rounds of the one-way p50 and p99 (half a
//! round trip, timed with `Instant` around each round trip), and the median of the
//! per-round ratios of the p50 to the floor's in the same round.

use std::hint::spin_loop;
use std::sync::atomic::{compiler_fence, fence, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ringcast::{Overflow, Publisher, PublisherConfig, Subscriber, SubscriberOptions, WaitStrategy};

const SLOTS: u64 = 64;

/// One spinning cache line: a sequence word and an 8-byte payload.
#[repr(C, align(64))]
#[derive(Default)]
struct Line {
    seq: AtomicU64,
    word: AtomicU64,
}

/// A slot as ringcast lays out a 64 B slot: stamp, length, payload, in a 128-byte stride.
#[repr(C, align(128))]
#[derive(Default)]
struct Slot {
    stamp: AtomicU64,
    len: AtomicU64,
    payload: [AtomicU64; 8],
}

#[repr(C, align(64))]
#[derive(Default)]
struct Padded(AtomicU64);

/// One direction of the `ring` transports.
struct Ring {
    slots: Vec<Slot>,
    write_cursor: Padded,
    read_cursor: Padded,
    /// The wake flags the fenced variant reads (never set: nobody sleeps).
    sub_flag: Padded,
    pub_flag: Padded,
}

impl Ring {
    fn new() -> Self {
        Ring {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            write_cursor: Padded::default(),
            read_cursor: Padded::default(),
            sub_flag: Padded::default(),
            pub_flag: Padded::default(),
        }
    }
}

/// With `FENCES`, one side's half of a wake handshake as ringcast runs it after a commit
/// or a release: a SeqCst fence, then a look at the other side's sleep flag.
#[inline(always)]
fn handshake<const FENCES: bool>(flag: &Padded) {
    if FENCES {
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above, as in ringcast.
        if flag.0.load(Ordering::Relaxed) != 0 {
            unreachable!("nobody sleeps here");
        }
    }
}

/// The writer's local state of a `Ring`.
#[derive(Default)]
struct RingTx {
    next: u64,
    limit: u64,
}

impl RingTx {
    #[inline(always)]
    fn send<const FENCES: bool>(&mut self, ring: &Ring, v: u64) {
        let s = self.next;
        while s > self.limit {
            // Acquire: pairs with the reader's Release cursor store.
            self.limit = ring.read_cursor.0.load(Ordering::Acquire) + SLOTS - 1;
            spin_loop();
        }
        let slot = &ring.slots[(s % SLOTS) as usize];
        // Relaxed, then a compiler-only Release fence: as ringcast's seqlock busy stamp.
        slot.stamp.store(2 * s + 1, Ordering::Relaxed);
        compiler_fence(Ordering::Release);
        // Relaxed, both: published by the Release stamp store below.
        slot.payload[0].store(v, Ordering::Relaxed);
        slot.len.store(64, Ordering::Relaxed);
        // Release: publishes payload and length to the reader's Acquire stamp load.
        slot.stamp.store(2 * s + 2, Ordering::Release);
        // Release: as ringcast's cursor store.
        ring.write_cursor.0.store(s + 1, Ordering::Release);
        handshake::<FENCES>(&ring.sub_flag);
        self.next = s + 1;
    }
}

/// The reader's local state of a `Ring`.
#[derive(Default)]
struct RingRx {
    next: u64,
}

impl RingRx {
    #[inline(always)]
    fn recv<const FENCES: bool>(&mut self, ring: &Ring) -> u64 {
        let s = self.next;
        let slot = &ring.slots[(s % SLOTS) as usize];
        // Acquire: pairs with the writer's Release stamp store.
        while slot.stamp.load(Ordering::Acquire) != 2 * s + 2 {
            spin_loop();
        }
        // Relaxed, both: ordered after the Acquire stamp load above.
        let v = slot.payload[0].load(Ordering::Relaxed);
        let _len = slot.len.load(Ordering::Relaxed);
        // Release: the slot's reads happen before the writer reuses it.
        ring.read_cursor.0.store(s + 1, Ordering::Release);
        handshake::<FENCES>(&ring.pub_flag);
        self.next = s + 1;
        v
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Floor,
    TwoLines,
    Ring,
    RingFences,
    Ringcast,
}

const KINDS: [Kind; 5] = [
    Kind::Floor,
    Kind::TwoLines,
    Kind::Ring,
    Kind::RingFences,
    Kind::Ringcast,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Floor => "floor",
            Kind::TwoLines => "two-lines",
            Kind::Ring => "ring",
            Kind::RingFences => "ring+fences",
            Kind::Ringcast => "ringcast",
        }
    }
}

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it, and
    // sched_setaffinity reads `size_of` bytes of it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(rc, 0, "sched_setaffinity(CPU {cpu})");
    }
}

fn run<P, Q>(mut ping: P, mut pong: Q, trips: usize) -> (f64, f64)
where
    P: FnMut(u64) -> u64 + Send + 'static,
    Q: FnMut() + Send + 'static,
{
    let warm = trips / 10;
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    let echo = std::thread::spawn(move || {
        pin(1);
        b.wait();
        for _ in 0..warm + trips {
            pong();
        }
    });
    pin(0);
    barrier.wait();
    let mut ns = Vec::with_capacity(trips);
    for i in 0..warm + trips {
        let t = Instant::now();
        let back = ping(i as u64);
        let dt = t.elapsed();
        assert_eq!(back, i as u64);
        if i >= warm {
            ns.push(dt.as_nanos() as u64);
        }
    }
    echo.join().expect("echo thread");
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q) as usize] as f64 / 2.0;
    (at(0.5), at(0.99))
}

fn floor(trips: usize) -> (f64, f64) {
    let line = Arc::new(Line::default());
    let l2 = line.clone();
    let mut k = 0u64;
    let mut j = 0u64;
    run(
        move |v| {
            // Relaxed: published by the Release `seq` store below.
            line.word.store(v, Ordering::Relaxed);
            k += 2;
            // Release / Acquire: the `seq` store and the peer's load pair, as the suite's
            // `floor` (each side's `word` write is visible once the other sees `seq`).
            line.seq.store(k - 1, Ordering::Release);
            while line.seq.load(Ordering::Acquire) != k {
                spin_loop();
            }
            // Relaxed: ordered after the Acquire `seq` load above.
            line.word.load(Ordering::Relaxed)
        },
        move || {
            j += 2;
            // Acquire: pairs with the pinger's Release `seq` store.
            while l2.seq.load(Ordering::Acquire) != j - 1 {
                spin_loop();
            }
            // Relaxed, both: after the Acquire load above, before the Release store below.
            let v = l2.word.load(Ordering::Relaxed);
            l2.word.store(v, Ordering::Relaxed);
            // Release: publishes the echoed `word` to the pinger's Acquire load.
            l2.seq.store(j, Ordering::Release);
        },
        trips,
    )
}

fn two_lines(trips: usize) -> (f64, f64) {
    let lines = Arc::new([Line::default(), Line::default()]);
    let l2 = lines.clone();
    let (mut k, mut j) = (0u64, 0u64);
    fn send(l: &Line, seq: u64, v: u64) {
        // Relaxed: published by the Release `seq` store below.
        l.word.store(v, Ordering::Relaxed);
        // Release: pairs with the Acquire load in `recv`.
        l.seq.store(seq, Ordering::Release);
    }
    fn recv(l: &Line, seq: u64) -> u64 {
        // Acquire: pairs with the Release store in `send`.
        while l.seq.load(Ordering::Acquire) != seq {
            spin_loop();
        }
        // Relaxed: ordered after the Acquire load above.
        l.word.load(Ordering::Relaxed)
    }
    run(
        move |v| {
            k += 1;
            send(&lines[0], k, v);
            recv(&lines[1], k)
        },
        move || {
            j += 1;
            let v = recv(&l2[0], j);
            send(&l2[1], j, v);
        },
        trips,
    )
}

fn rings<const FENCES: bool>(trips: usize) -> (f64, f64) {
    let rings = Arc::new([Ring::new(), Ring::new()]);
    let r2 = rings.clone();
    let (mut tx0, mut rx1) = (
        RingTx {
            limit: SLOTS - 1,
            ..Default::default()
        },
        RingRx::default(),
    );
    let (mut rx0, mut tx1) = (
        RingRx::default(),
        RingTx {
            limit: SLOTS - 1,
            ..Default::default()
        },
    );
    run(
        move |v| {
            tx0.send::<FENCES>(&rings[0], v);
            rx1.recv::<FENCES>(&rings[1])
        },
        move || {
            let v = rx0.recv::<FENCES>(&r2[0]);
            tx1.send::<FENCES>(&r2[1], v);
        },
        trips,
    )
}

fn ringcast(trips: usize, round: usize) -> (f64, f64) {
    let cfg = || {
        PublisherConfig::default()
            .slots(SLOTS)
            .slot_size(64)
            .overflow(Overflow::Block)
    };
    let opts = || SubscriberOptions::default().wait_strategy(WaitStrategy::BusySpin);
    let stem = format!("hop_parts.{}.{round}", std::process::id());
    let (ping_t, pong_t) = (format!("{stem}.ping"), format!("{stem}.pong"));
    let mut ping_pub = Publisher::create(&ping_t, cfg()).expect("create ping");
    let mut pong_pub = Publisher::create(&pong_t, cfg()).expect("create pong");
    let mut ping_sub = Subscriber::attach(&ping_t, opts()).expect("attach ping");
    let mut pong_sub = Subscriber::attach(&pong_t, opts()).expect("attach pong");
    let send = |p: &mut Publisher, v: u64| {
        let mut loan = p.loan();
        loan[..8].copy_from_slice(&v.to_le_bytes());
        loan.commit(64);
    };
    let recv = |s: &mut Subscriber| -> u64 {
        let sample = s.recv().expect("recv");
        u64::from_le_bytes(sample[..8].try_into().expect("8 bytes"))
    };
    run(
        move |v| {
            send(&mut ping_pub, v);
            recv(&mut pong_sub)
        },
        move || {
            let v = recv(&mut ping_sub);
            send(&mut pong_pub, v);
        },
        trips,
    )
}

/// `solo`: the library's loan / commit / recv / drop in one thread, `trips` times (for
/// an instruction count under callgrind: the work of one hop without the waiting).
fn solo(trips: usize) {
    let cfg = PublisherConfig::default()
        .slots(SLOTS)
        .slot_size(64)
        .overflow(Overflow::Block);
    let topic = format!("hop_parts.{}.solo", std::process::id());
    let mut publisher = Publisher::create(&topic, cfg).expect("create");
    let opts = SubscriberOptions::default().wait_strategy(WaitStrategy::BusySpin);
    let mut sub = Subscriber::attach(&topic, opts).expect("attach");
    let t = Instant::now();
    for v in 0..trips as u64 {
        let mut loan = publisher.loan();
        loan[..8].copy_from_slice(&v.to_le_bytes());
        loan.commit(64);
        let sample = sub.recv().expect("recv");
        assert_eq!(sample[..8], v.to_le_bytes());
    }
    let per = t.elapsed().as_nanos() as f64 / trips as f64;
    println!("solo: {per:.1} ns per loan / commit / recv / drop");
}

/// The service path in one thread: `Client::send`, `Server::try_recv` (request copied
/// out, answer deferred), `Server::respond`, `Client::recv` (response copied out), the
/// loop of the suite's `ringcast-rpc` row without its cross-core transfers. For a profiler.
fn rpc_solo(trips: usize) {
    use ringcast::{Client, ClientOptions, Server, ServerConfig};
    let service = format!("hop_parts.{}.rpc", std::process::id());
    let cfg = ServerConfig::default()
        .max_clients(1)
        .max_request(64)
        .max_response(64)
        .wait_strategy(WaitStrategy::BusySpin);
    let mut server = Server::create(&service, cfg).expect("serve");
    // The client's connect waits for the server's welcome: connect on another thread
    // while this one serves the hello.
    let connecting = std::thread::spawn({
        let service = service.clone();
        move || {
            let opts = ClientOptions::default().wait_strategy(WaitStrategy::BusySpin);
            Client::connect(&service, opts).expect("connect")
        }
    });
    while !connecting.is_finished() {
        let _ = server.recv_timeout(Duration::from_millis(1));
    }
    let mut client = connecting.join().expect("connect thread");
    let timeout = Duration::from_secs(1);
    let mut msg = [0u8; 64];
    let t = Instant::now();
    for v in 0..trips as u64 {
        msg[..8].copy_from_slice(&v.to_le_bytes());
        let call = client.send(&msg, timeout).expect("send");
        let request = server.try_recv().expect("request");
        msg.copy_from_slice(&request);
        let to = request.defer();
        server.respond(to, &msg).expect("respond");
        let response = client
            .recv(call, timeout)
            .expect("recv")
            .expect("a response");
        msg.copy_from_slice(&response);
    }
    let per = t.elapsed().as_nanos() as f64 / trips as f64;
    assert_eq!(msg[..8], (trips as u64 - 1).to_le_bytes());
    println!("rpc-solo: {per:.1} ns per send / try_recv / respond / recv");
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(10, |a| a.parse().expect("rounds"));
    let trips: usize = args
        .next()
        .map_or(50_000, |a| a.parse().expect("round trips"));
    let only = args.next();
    if only.as_deref() == Some("solo") {
        return solo(trips);
    }
    if only.as_deref() == Some("rpc-solo") {
        return rpc_solo(trips);
    }
    let mut p50 = vec![Vec::new(); KINDS.len()];
    let mut p99 = vec![Vec::new(); KINDS.len()];
    let mut ratio = vec![Vec::new(); KINDS.len()];
    for round in 0..rounds {
        let mut this = [(0.0, 0.0); KINDS.len()];
        // Rotate the order each round so no transport always runs first.
        for i in 0..KINDS.len() {
            let k = (i + round) % KINDS.len();
            if only.as_deref().is_some_and(|o| o != KINDS[k].name()) {
                continue;
            }
            this[k] = match KINDS[k] {
                Kind::Floor => floor(trips),
                Kind::TwoLines => two_lines(trips),
                Kind::Ring => rings::<false>(trips),
                Kind::RingFences => rings::<true>(trips),
                Kind::Ringcast => ringcast(trips, round),
            };
            std::thread::sleep(Duration::from_millis(5));
        }
        for k in 0..KINDS.len() {
            p50[k].push(this[k].0);
            p99[k].push(this[k].1);
            ratio[k].push(this[k].0 / this[0].0);
        }
    }
    println!("{rounds} rounds of {trips} round trips, one-way ns (median over rounds)");
    println!(
        "{:<12} {:>8} {:>8} {:>22}",
        "transport", "p50", "p99", "p50 / floor (range)"
    );
    for k in 0..KINDS.len() {
        if p50[k].iter().all(|&v| v == 0.0) {
            continue;
        }
        let (lo, hi) = ratio[k]
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &r| (a.min(r), b.max(r)));
        println!(
            "{:<12} {:>8.1} {:>8.1} {:>8.3} ({:.2}..{:.2})",
            KINDS[k].name(),
            median(&mut p50[k]),
            median(&mut p99[k]),
            median(&mut ratio[k]),
            lo,
            hi
        );
    }
}
