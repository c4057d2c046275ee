//! Export: one thread carries every exported local topic to the network.
//!
//! For each incarnation of a local topic (a live publisher, not itself an import) the
//! export declares the Zenoh publisher and the liveliness token that announces the topic,
//! then, while a remote importer holds its importing token for the topic (see
//! [`credit`](crate::credit)), attaches as one more subscriber, says where it starts (a
//! SYNC stamp, at attach and at each new importer's token) and puts every
//! message with its sequence number; a `Block` source is read only within every
//! importer's credit. A message alone in the ring when it is read goes at once, in a put of its own;
//! when more wait behind it, the export takes them too, without waiting for any, and puts
//! them all in one batch (bounded by bytes and count; see [`wire`](crate::wire)), which is
//! what carries small messages at a high rate. Each message is copied once, from its slot
//! into the put's buffer, and every slot is released before the put. Under `Block`,
//! Zenoh's blocking congestion control then carries the importer's backpressure back to
//! the source publisher, and the source's stall rules bound it (the bridge is a subscriber
//! like any other, and Zenoh closes a link blocked past its `wait_before_close`). Under
//! `Overwrite` puts may be dropped under congestion, and the bridge itself may be lapped;
//! the importer counts both as gaps in the sequence numbers. When the source closes, an
//! END stamp tells the importer how many messages there were, so a loss at the very end is
//! counted too.
//!
//! A shared topic (lanes) goes the same way, each put naming its lane and writer (a batch
//! is one lane's): the export SYNCs each lane with a live publisher, and puts a LEAVE for
//! a lane whose writer is gone (`Subscriber::lane_publisher`) once it has forwarded all
//! of that writer's messages (`Subscriber::has_news_in`), before the topic's END.
//!
//! The thread: every attached topic's subscriber is a member of one [`WaitSet`]; the loop
//! sleeps until a member is ready, a topic's timer is due (looking for an absent topic,
//! checking an idle one, a SYNC), or a Zenoh callback (an importer's token or credit)
//! rings its notifier. A ready topic
//! gets at most [`PUTS_IN_A_ROW`](topic) puts before the others are served, so a busy
//! topic cannot starve the rest. Nothing here is per topic but memory: a topic that is
//! absent costs a failed `open` now and then, an announced one a look at its segment
//! twice a second, an attached idle one nothing (a shared one a look at its lanes every
//! 20 ms).

mod out;
mod topic;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ringcast::{Notifier, WaitSet, WaitStrategy};
use zenoh::query::{ConsolidationMode, QueryTarget};
use zenoh::sample::{Locality, SampleKind};
use zenoh::Wait;

use crate::credit::Credit;
use crate::stats::{bump, Counters};
use crate::Shared;
use topic::{Ctx, Export};

/// Longest sleep of the loop (a stopping bridge rings it at once).
const SLICE: Duration = Duration::from_secs(1);
/// How often the loop's wait set checks that the sources' publishers live (a system call
/// per attached topic): a dead source is noticed within two periods, and a thousand
/// topics cost a fifth of what the default 50 ms would.
const LIVENESS: Duration = Duration::from_millis(250);
/// Timers due within this of each other are served in one wake-up.
const GRAIN: Duration = Duration::from_millis(20);
/// How often the loop asks Zenoh for every live importing token of ours: a token the
/// subscriber reported gone while it lives (seen once, when a third peer that had
/// relayed it left) is found again within this.
const RECOUNT: Duration = Duration::from_secs(2);
/// At most this long, a stopping bridge goes on forwarding what the rings hold.
const DRAIN: Duration = Duration::from_secs(1);
/// At most this long, a stopping bridge waits for its importers to have applied what it
/// put (see [`barrier`]).
const BARRIER: Duration = Duration::from_secs(2);

/// What Zenoh's callbacks tell the export loop, by topic index.
enum Event {
    /// An importer (its zid) credits the topic.
    Credit(usize, String, Credit),
    /// An importer (its zid) of the topic declared its token.
    Present(usize, String),
    /// An importer (its zid) of the topic is gone.
    Gone(usize, String),
}

/// Rings the export loop from Zenoh's callbacks.
#[derive(Clone)]
struct Wake {
    tx: mpsc::Sender<Event>,
    notifier: Notifier,
}

impl Wake {
    fn send(&self, e: Event) {
        // The loop is gone only when the bridge stops: nothing to tell then.
        let _ = self.tx.send(e);
        self.notifier.notify();
    }
}

/// The export thread: carries `topics` until the bridge stops.
pub(crate) fn run(shared: Arc<Shared>, topics: Vec<(String, Arc<Counters>)>) {
    let mut set = WaitSet::new()
        .strategy(WaitStrategy::Park)
        .liveness_period(LIVENESS);
    let (tx, events) = mpsc::channel();
    let wake = Wake {
        tx,
        notifier: set.notifier(),
    };
    shared.ring_on_stop(set.notifier());
    let flow = match flow_control(&shared, &topics, &wake) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cannot hear importers; not exporting");
            return;
        }
    };
    let now = Instant::now();
    let mut exports: Vec<Export> = topics
        .into_iter()
        .map(|(t, c)| Export::new(t, c, now))
        .collect();
    // Each topic's next due time; an entry that no longer equals its topic's `due` is
    // stale and skipped.
    let mut recount = Instant::now() + RECOUNT;
    let mut timers: BinaryHeap<Reverse<(Instant, usize)>> = exports
        .iter()
        .enumerate()
        .map(|(i, e)| Reverse((e.due, i)))
        .collect();
    while !shared.stopping() {
        let now = Instant::now();
        if now >= recount {
            recount = now + RECOUNT;
            recount_importers(&shared, &flow.2, &wake);
            for (i, e) in exports.iter_mut().enumerate() {
                let mut ctx = ctx(&shared, &mut set);
                step(e, &mut timers, i, false, |e| {
                    e.let_go_if_unheard(&mut ctx, now)
                });
            }
        }
        while let Some(&Reverse((due, i))) = timers.peek() {
            if due > now {
                break;
            }
            timers.pop();
            if exports[i].due == due {
                let mut ctx = ctx(&shared, &mut set);
                step(&mut exports[i], &mut timers, i, true, |e| {
                    e.on_timer(&mut ctx, now)
                });
            }
        }
        while let Ok(ev) = events.try_recv() {
            let i = match &ev {
                Event::Credit(i, ..) | Event::Present(i, _) | Event::Gone(i, _) => *i,
            };
            let mut ctx = ctx(&shared, &mut set);
            step(&mut exports[i], &mut timers, i, false, |e| match ev {
                Event::Credit(_, zid, c) => e.on_credit(&mut ctx, &zid, c),
                Event::Present(_, zid) => e.on_present(&mut ctx, &zid, now),
                Event::Gone(_, zid) => e.on_gone(&mut ctx, &zid, now),
            });
        }
        for (i, e) in exports.iter_mut().enumerate() {
            if e.member().is_some_and(|k| set.is_ready(k)) {
                let mut ctx = ctx(&shared, &mut set);
                step(e, &mut timers, i, false, |e| e.serve(&mut ctx, now));
            }
        }
        // Timers are served in batches at most every `GRAIN`: a thousand topics' SYNCs a
        // second would otherwise wake the loop (and re-arm every member) a thousand times.
        let next = timers
            .peek()
            .map_or(now + SLICE, |r| r.0 .0.max(now + GRAIN).min(now + SLICE))
            .min(recount);
        // The set always has its notifier: a wait never refuses.
        let _ = set.wait_deadline(Some(next));
    }
    // Stopping: forward what is already in the rings (bounded), then go; dropping the
    // exports withdraws their announcements.
    let until = Instant::now() + DRAIN;
    for e in &mut exports {
        e.drain(&mut ctx(&shared, &mut set), until);
    }
    barrier(&shared);
}

/// Waits (at most [`BARRIER`]) until every importer has applied what we put: Zenoh drops
/// what its queues still hold when the session closes, which lost a stream's last
/// messages and its END when a bridge stopped right after its source closed. The query
/// travels behind the puts on each link, and an importer answers it only after it
/// applied them (see `import::run`).
fn barrier(shared: &Shared) {
    let replies = shared
        .session
        .get(shared.keys.all_barriers())
        .target(QueryTarget::All)
        .consolidation(ConsolidationMode::None)
        .allowed_destination(Locality::Remote)
        .timeout(BARRIER)
        .wait();
    match replies {
        // Every answer, until the query ends (all answered, or the timeout).
        Ok(r) => while r.recv().is_ok() {},
        Err(e) => tracing::warn!(error = %e, "cannot ask importers for a barrier"),
    }
}

/// Zenoh subscribers that feed the loop importers' credits and departures (see
/// [`crate::credit`]; they live as long as the loop), and the topics' indexes by name.
type Flow = (
    zenoh::pubsub::Subscriber<()>,
    zenoh::pubsub::Subscriber<()>,
    Arc<HashMap<String, usize>>,
);

/// Asks Zenoh for every live importing token of ours; each comes back as a `Present`
/// (one already known changes nothing).
fn recount_importers(shared: &Arc<Shared>, index: &Arc<HashMap<String, usize>>, wake: &Wake) {
    let (s, idx, w) = (shared.clone(), index.clone(), wake.clone());
    let asked = shared
        .session
        .liveliness()
        .get(shared.keys.importers_of(&shared.zid))
        .callback(move |reply| {
            let Ok(sample) = reply.result() else {
                return;
            };
            let key = sample.key_expr().as_str();
            if let Some((topic, importer)) = s.keys.parse_flow(key, &s.zid) {
                if let Some(&i) = idx.get(topic) {
                    w.send(Event::Present(i, importer.to_owned()));
                }
            }
        })
        .wait();
    if let Err(e) = asked {
        tracing::debug!(error = %e, "cannot ask for the importers' tokens");
    }
}

fn flow_control(
    shared: &Arc<Shared>,
    topics: &[(String, Arc<Counters>)],
    wake: &Wake,
) -> zenoh::Result<Flow> {
    let index: Arc<HashMap<String, usize>> = Arc::new(
        topics
            .iter()
            .enumerate()
            .map(|(i, (t, _))| (t.clone(), i))
            .collect(),
    );
    let stats: Arc<Vec<Arc<Counters>>> = Arc::new(topics.iter().map(|t| t.1.clone()).collect());
    let (s, idx, w) = (shared.clone(), index.clone(), wake.clone());
    let credits = shared
        .session
        .declare_subscriber(shared.keys.credits_to(&shared.zid))
        .allowed_origin(Locality::Remote)
        .callback(move |sample| {
            let key = sample.key_expr().as_str();
            let Some((topic, importer)) = s.keys.parse_flow(key, &s.zid) else {
                return;
            };
            let Some(&i) = idx.get(topic) else {
                return;
            };
            match Credit::decode(&sample.payload().to_bytes()) {
                Some(c) => w.send(Event::Credit(i, importer.to_owned(), c)),
                None => bump(&stats[i].refused, 1),
            }
        })
        .wait()?;
    let (s, w, idx) = (shared.clone(), wake.clone(), index.clone());
    let importers = shared
        .session
        .liveliness()
        .declare_subscriber(shared.keys.importers_of(&shared.zid))
        .history(true)
        .callback(move |sample| {
            let key = sample.key_expr().as_str();
            let Some((topic, importer)) = s.keys.parse_flow(key, &s.zid) else {
                return;
            };
            let Some(&i) = idx.get(topic) else {
                return;
            };
            let importer = importer.to_owned();
            w.send(match sample.kind() {
                SampleKind::Put => Event::Present(i, importer),
                SampleKind::Delete => Event::Gone(i, importer),
            });
        })
        .wait()?;
    Ok((credits, importers, index))
}

fn ctx<'a>(shared: &'a Shared, set: &'a mut WaitSet) -> Ctx<'a> {
    Ctx { shared, set }
}

/// Runs one step of topic `i` and schedules its timer if the step moved it (or its
/// entry was just `popped`).
fn step(
    e: &mut Export,
    timers: &mut BinaryHeap<Reverse<(Instant, usize)>>,
    i: usize,
    popped: bool,
    f: impl FnOnce(&mut Export),
) {
    let before = e.due;
    f(e);
    if popped || e.due != before {
        timers.push(Reverse((e.due, i)));
    }
}
