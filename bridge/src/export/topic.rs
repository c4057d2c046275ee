//! One exported topic as a state machine the export loop drives: looking for the local
//! topic, announced (nobody remote listens), attached (its subscriber is a member of the
//! loop's wait set). Every step here is short and never waits, except a put that Zenoh's
//! blocking congestion control holds (a `Block` topic's backpressure).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast::{
    AttachError, Key, Overflow, Start, Subscriber, SubscriberOptions, TryRecvError, WaitSet,
    WaitStrategy,
};
use zenoh::liveliness::LivelinessToken;
use zenoh::qos::CongestionControl;
use zenoh::sample::Locality;
use zenoh::Wait;

use super::out::{end_of_source, source_is, Control, Lanes, Msg, Out};
use crate::announce::Announcement;
use crate::credit::{Book, Credit};
use crate::stats::{bump, Counters};
use crate::Shared;

/// First pause between looks for a local topic that is absent or dead; it doubles up to
/// [`LOOK_MAX`] while the topic stays away, and starts again when it was found.
const LOOK_FIRST: Duration = Duration::from_millis(50);
const LOOK_MAX: Duration = Duration::from_millis(400);
/// Pause between looks at a local topic that is itself imported (never exported), and
/// after a failure (Zenoh refused, the attach was denied).
const LOOK_SLOW: Duration = Duration::from_millis(250);
/// How often an announced topic that nobody remote listens to is checked for having
/// closed or been re-created (its announcement then goes, or changes).
const IDLE_CHECK: Duration = Duration::from_millis(500);
/// How often an attached shared topic looks for lanes whose publisher joined (it names
/// them in a SYNC) or left (a LEAVE).
pub(super) const LANE_CHECK: Duration = Duration::from_millis(20);
/// The timer of an attached topic with one publisher, which has nothing periodic to do:
/// its messages, its end and an eviction wake the loop through its subscriber, and a new
/// importer through its token (answered by a SYNC at once), so an idle topic costs no
/// wake-up.
pub(super) const NO_TIMER: Duration = Duration::from_secs(3600);
/// How often an export parked for want of credit repeats its SYNC, which every importer
/// answers with its credit: a credit lost or applied out of order (nothing is known to
/// lose one, but the wait would otherwise be for ever) costs at most this.
const PARKED_POKE: Duration = Duration::from_secs(1);
/// How long a `Block` export that hears no importer any more (no token, no data
/// subscriber: the link dropped, or the importing bridge is gone) holds its source, reading
/// nothing, for one to come back before it detaches: a link that Zenoh dials again within
/// it loses only what was in flight, not what the source publishes meanwhile.
pub(super) const HOLD: Duration = Duration::from_secs(2);
/// Puts one topic makes in a row before the loop serves the others (each put is one
/// message or a batch of up to `max_batch_bytes`).
const PUTS_IN_A_ROW: usize = 16;
/// The exporter's `release_batch` (clamped to the source's ring).
const EXPORT_RELEASE_BATCH: u64 = 16;

/// What the export loop lends a topic for one step.
pub(super) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub set: &'a mut WaitSet,
}

/// One exported topic.
pub(super) struct Export {
    topic: String,
    stats: Arc<Counters>,
    state: State,
    /// The pause before the next look while the topic is away.
    look_pause: Duration,
    /// An imported local topic was logged (once until it changes).
    said_imported: bool,
    /// The importers' credits (a `Block` topic's: see [`crate::credit`]).
    credits: Book,
    /// Since when an attached `Block` export has heard no importer and holds its source
    /// parked (at most [`HOLD`]); `None` otherwise.
    unheard: Option<Instant>,
    /// When the loop calls [`Export::on_timer`] next.
    pub due: Instant,
}

enum State {
    Looking,
    /// Announced; nobody remote listens, so the source is not read.
    Announced(Box<Incarnation>),
    /// Reading the source (its subscriber is in the loop's wait set) and putting it.
    Attached(Box<Incarnation>, Attachment),
}

/// One incarnation of the local topic as this bridge announces it.
struct Incarnation {
    a: Announcement,
    key: String,
    /// Matching listener attached (in the background: it lives as long as this).
    publisher: zenoh::pubsub::Publisher<'static>,
    _token: LivelinessToken,
    lanes: Lanes,
}

struct Attachment {
    member: Member,
    /// A message read from the ring but not put yet (it did not fit the last batch, or is
    /// another lane's): the start of the next put, never kept past a step.
    carry: Option<Msg>,
    /// When a parked export last asked its importers for credits (a SYNC of every lane).
    poked: Instant,
}

/// Where an attached export's subscriber is.
enum Member {
    /// In the loop's wait set, served when ready.
    Waiting(Key<Subscriber>),
    /// Out of it while an importer's credit has no room (a ready member that is not
    /// read would wake the loop for ever); back when a credit makes room.
    Parked(Box<Subscriber>),
}

/// What a step decided, applied once the state is no longer borrowed.
enum Next {
    Stay,
    /// The source closed (after its END was put), or was re-created: look again now.
    LookNow,
    /// Something failed: drop the incarnation, look again after a pause.
    Failed(String),
    /// Evicted by the source, or the remote match went: detach (and attach again at once
    /// if someone still listens).
    Detach,
}

impl Export {
    pub(super) fn new(topic: String, stats: Arc<Counters>, now: Instant) -> Export {
        Export {
            topic,
            stats,
            state: State::Looking,
            look_pause: LOOK_FIRST,
            said_imported: false,
            credits: Book::default(),
            unheard: None,
            due: now,
        }
    }

    /// The attached subscriber's key, if the loop should serve it when it is ready.
    pub(super) fn member(&self) -> Option<Key<Subscriber>> {
        match &self.state {
            State::Attached(
                _,
                Attachment {
                    member: Member::Waiting(key),
                    ..
                },
            ) => Some(*key),
            _ => None,
        }
    }

    /// The periodic work of the state the topic is in; sets [`due`](Self::due).
    pub(super) fn on_timer(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        if let Some(t) = self.unheard {
            if now < t + HOLD {
                // Holding with nobody to hear: a LEAVE or SYNC put now would reach no
                // importer, and a lane told to have left is never told again. The lanes
                // are looked at again when an importer is back (its SYNC names them all).
                self.due = t + HOLD;
                return;
            }
            // The hold is over: go on if someone is heard, else detach.
            self.let_go_if_unheard(ctx, now);
        }
        let next = match &mut self.state {
            State::Looking => return self.look(ctx, now),
            State::Announced(inc) => {
                if !source_is(ctx.shared, &self.topic, inc.a.creation_id) {
                    Next::LookNow
                } else {
                    self.due = now + IDLE_CHECK;
                    Next::Stay
                }
            }
            State::Attached(inc, att) => {
                let parked = matches!(att.member, Member::Parked(_));
                // Parked: ask every importer for its credit again, once a `PARKED_POKE`
                // (a shared topic's timer runs every 20 ms for its lanes).
                let poke = parked && now >= att.poked + PARKED_POKE;
                if poke {
                    att.poked = now;
                }
                let sub = member(ctx.set, &mut att.member);
                let ctl = control(ctx.shared, &inc.key, inc.a.creation_id);
                let mut step = || -> zenoh::Result<()> {
                    // A lane whose publisher left or died, and whose messages were all
                    // put: tell the importers it ended; a lane with a new publisher:
                    // name it (the importers join a local publisher for it); a poke:
                    // every lane.
                    inc.lanes.leave_gone(&ctl, sub, false)?;
                    inc.lanes.sync(&ctl, sub, poke)
                };
                match step() {
                    Ok(()) => {
                        self.due = now + inc.lanes.timer();
                        if parked {
                            self.due = self.due.min(att.poked + PARKED_POKE);
                        }
                        Next::Stay
                    }
                    Err(e) => Next::Failed(e.to_string()),
                }
            }
        };
        self.apply(next, ctx, now);
    }

    /// An importer may have appeared: attach when one imports the topic from us (its
    /// token is live). Only importers are served: a message put before an importer's
    /// token arrived would reach a bridge that may not take it (no credit yet) or does not
    /// import the topic at all. A token that goes does not detach the export (its credit
    /// just stops limiting it): Zenoh was seen to report a live importer's token gone when
    /// a third peer left (the TLS test), and a detached export lost what its source
    /// published until it attached again.
    fn follow_importers(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        if matches!(self.state, State::Announced(_)) && self.credits.any_present() {
            self.attach(ctx, now);
        }
    }

    /// No importer's token is live: once no remote data subscriber matches either (the
    /// importing bridge is gone, or the link dropped), an `Overwrite` export detaches at
    /// once and a `Block` one parks, holding its source for at most [`HOLD`] for an
    /// importer to come back, then detaches, so a `Block` source is not held by nobody for
    /// long. Asked at each departure, at the loop's recount and when the hold ends.
    pub(super) fn let_go_if_unheard(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        let State::Attached(inc, att) = &mut self.state else {
            return;
        };
        let heard = self.credits.any_present()
            || inc
                .publisher
                .matching_status()
                .wait()
                .map(|m| m.matching())
                .unwrap_or(false);
        if heard {
            // An importer is back, or its data subscriber never went (Zenoh lost only its
            // token): go on.
            if self.unheard.take().is_some() {
                tracing::info!(topic = self.topic, "an importer is heard again");
                self.unpark(ctx);
            }
            return;
        }
        if inc.a.overflow == Overflow::Block {
            match self.unheard {
                None => {
                    tracing::info!(
                        topic = self.topic,
                        hold = ?HOLD,
                        "no remote importer; holding the source for one to come back"
                    );
                    park(ctx.set, &mut att.member);
                    self.unheard = Some(now);
                    self.due = self.due.min(now + HOLD);
                    return;
                }
                Some(t) if now < t + HOLD => {
                    self.due = self.due.min(t + HOLD);
                    return;
                }
                Some(_) => {}
            }
        }
        self.unheard = None;
        tracing::info!(
            topic = self.topic,
            "no remote importer; detaching from the source"
        );
        self.apply(Next::Detach, ctx, now);
    }

    /// Forwards what the source has, up to [`PUTS_IN_A_ROW`] puts (what is left keeps the
    /// member ready, and the loop comes back after serving the others).
    pub(super) fn serve(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        let next = match &mut self.state {
            State::Attached(inc, att) => {
                let (topic, stats, credits) = (&self.topic, &self.stats, &self.credits);
                match forward_some(topic, stats, credits, ctx, inc, att, PUTS_IN_A_ROW) {
                    Ok(n) => {
                        if matches!(att.member, Member::Parked(_)) {
                            self.due = self.due.min(now + PARKED_POKE);
                        }
                        n
                    }
                    Err(e) => Next::Failed(e.to_string()),
                }
            }
            _ => Next::Stay,
        };
        self.apply(next, ctx, now);
    }

    /// Stopping: forwards what is already in the ring, until it is empty or `until`.
    pub(super) fn drain(&mut self, ctx: &mut Ctx<'_>, until: Instant) {
        let State::Attached(inc, att) = &mut self.state else {
            return;
        };
        // Stopping, credits no longer hold the source back: what the ring has goes now
        // (Zenoh's blocking congestion control still paces it), or it would be lost.
        let (topic, stats, credits) = (&self.topic, &self.stats, &Book::default());
        while Instant::now() < until {
            match forward_some(topic, stats, credits, ctx, inc, att, PUTS_IN_A_ROW) {
                Ok(Next::Stay) if member(ctx.set, &mut att.member).has_news() => {}
                _ => return,
            }
        }
    }

    /// Importer `zid` sent a credit: a parked export with room again goes back into the
    /// wait set.
    pub(super) fn on_credit(&mut self, ctx: &mut Ctx<'_>, zid: &str, credit: Credit) {
        tracing::debug!(topic = self.topic, importer = zid, ?credit, "credit");
        if !self.credits.credit(zid, credit) {
            bump(&self.stats.refused, 1);
        }
        self.unpark(ctx);
    }

    /// Importer `zid` declared its token: the topic is served, and (a `Block` topic) held
    /// within its credit from now on. An attached export says at once where it reads (a
    /// SYNC), so that the new importer can credit it without waiting for a parked
    /// export's repeated one.
    pub(super) fn on_present(&mut self, ctx: &mut Ctx<'_>, zid: &str, now: Instant) {
        if self.credits.is_present(zid) {
            // Heard again (Zenoh's history, or the loop's look at every token).
            return;
        }
        tracing::debug!(topic = self.topic, importer = zid, "importer present");
        if !self.credits.present(zid) {
            bump(&self.stats.refused, 1);
            return;
        }
        // A held export goes on once this importer's credit arrives (the SYNC below asks
        // for it; until then its credit is 0).
        if self.unheard.take().is_some() {
            tracing::info!(topic = self.topic, importer = zid, "an importer is back");
        }
        if let State::Attached(inc, att) = &mut self.state {
            let sub = member(ctx.set, &mut att.member);
            let ctl = control(ctx.shared, &inc.key, inc.a.creation_id);
            if let Err(e) = inc.lanes.sync(&ctl, sub, true) {
                return self.apply(Next::Failed(e.to_string()), ctx, now);
            }
        }
        self.follow_importers(ctx, now);
        // A held export whose importer's credit came before its token goes on now.
        self.unpark(ctx);
    }

    /// Importer `zid` is gone: its credit limits nothing.
    pub(super) fn on_gone(&mut self, ctx: &mut Ctx<'_>, zid: &str, now: Instant) {
        tracing::debug!(topic = self.topic, importer = zid, "importer gone");
        self.credits.gone(zid);
        // Hold (or let go) first: with nobody left, `unpark` would see unlimited room.
        self.let_go_if_unheard(ctx, now);
        self.unpark(ctx);
    }

    fn unpark(&mut self, ctx: &mut Ctx<'_>) {
        if self.unheard.is_some() {
            // Holding for an importer to come back: nobody is there to read.
            return;
        }
        let has_room = match &mut self.state {
            State::Attached(inc, att) => match &mut att.member {
                Member::Parked(sub) => room(&self.credits, inc, sub) > 0,
                Member::Waiting(_) => false,
            },
            _ => false,
        };
        if !has_room {
            return;
        }
        let State::Attached(inc, mut att) = std::mem::replace(&mut self.state, State::Looking)
        else {
            return;
        };
        let Member::Parked(sub) = att.member else {
            return;
        };
        match ctx.set.add(*sub) {
            Ok(key) => {
                att.member = Member::Waiting(key);
                self.state = State::Attached(inc, att);
            }
            Err(e) => {
                // Refused because the source closed while we were parked and everything
                // was read: serving it (still parked) puts the END the importers need
                // to close after the last message, never before.
                tracing::debug!(topic = self.topic, why = %e, "served without waiting");
                att.member = Member::Parked(Box::new(e.into_member()));
                self.state = State::Attached(inc, att);
                self.serve(ctx, Instant::now());
            }
        }
    }

    fn apply(&mut self, next: Next, ctx: &mut Ctx<'_>, now: Instant) {
        match next {
            Next::Stay => {}
            Next::LookNow => {
                self.drop_incarnation(ctx);
                self.look(ctx, now);
            }
            Next::Failed(why) => {
                tracing::warn!(
                    topic = self.topic,
                    error = why,
                    "export failed; trying again"
                );
                self.drop_incarnation(ctx);
                self.due = now + LOOK_SLOW;
            }
            Next::Detach => {
                let State::Attached(inc, att) = std::mem::replace(&mut self.state, State::Looking)
                else {
                    return;
                };
                if let Member::Waiting(key) = att.member {
                    ctx.set.remove(key);
                }
                self.stats.set_active(false);
                self.state = State::Announced(inc);
                self.due = now + IDLE_CHECK;
                self.follow_importers(ctx, now);
            }
        }
    }

    fn drop_incarnation(&mut self, ctx: &mut Ctx<'_>) {
        self.unheard = None;
        if let State::Attached(_, att) = &self.state {
            if let Member::Waiting(key) = att.member {
                ctx.set.remove(key);
            }
        }
        self.state = State::Looking;
        self.stats.set_active(false);
    }

    /// Looks for a live local topic to announce.
    fn look(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        let info = match ringcast::inspect::inspect(&ctx.shared.prefix, &self.topic) {
            Ok(i) if i.publisher_alive && !i.closed => i,
            _ => {
                self.due = now + self.look_pause;
                self.look_pause = (self.look_pause * 2).min(LOOK_MAX);
                return;
            }
        };
        self.look_pause = LOOK_FIRST;
        if let Some(origin) = &info.origin {
            // Never echo: an imported topic goes back nowhere.
            if !std::mem::replace(&mut self.said_imported, true) {
                tracing::info!(
                    topic = self.topic,
                    origin,
                    "not exporting a topic that is itself imported"
                );
            }
            self.due = now + LOOK_SLOW;
            return;
        }
        self.said_imported = false;
        let a = Announcement::of(&info.geometry, &ctx.shared.host, &ctx.shared.prefix);
        match Incarnation::declare(ctx, &self.topic, a) {
            Ok(inc) => {
                tracing::info!(topic = self.topic, announcement = %inc.a, "exporting");
                self.state = State::Announced(Box::new(inc));
                self.due = now + IDLE_CHECK;
                // Importers that hold their token already were heard of (the book outlives
                // incarnations): serve them now.
                self.follow_importers(ctx, now);
            }
            Err(e) => {
                tracing::warn!(topic = self.topic, error = %e, "export failed; trying again");
                self.due = now + LOOK_SLOW;
            }
        }
    }

    /// Someone remote listens: attach to the source as one more subscriber.
    fn attach(&mut self, ctx: &mut Ctx<'_>, now: Instant) {
        let State::Announced(mut inc) = std::mem::replace(&mut self.state, State::Looking) else {
            return;
        };
        // Sleep at once when the ring is empty: the bridge shares its CPU with the
        // source's process and Zenoh's threads. Release in runs: a source publisher that
        // sleeps for room is woken once per run, not once per forwarded message (the
        // exporter never publishes into this topic, which is what the option forbids).
        let opts = SubscriberOptions::default()
            .prefix(ctx.shared.prefix.as_str())
            .start(Start::Latest)
            .wait_strategy(WaitStrategy::Park)
            .release_batch(EXPORT_RELEASE_BATCH);
        let sub = match Subscriber::attach(&self.topic, opts) {
            Ok(s) if s.geometry().creation_id == inc.a.creation_id && s.origin().is_none() => s,
            // Gone or re-created since we looked: announce the new one.
            Ok(_) | Err(AttachError::NotFound { .. }) => return self.look(ctx, now),
            // Denied, a full table, no memory: say so, and pause before trying again
            // (never a loop of announcements).
            Err(e) => {
                self.state = State::Announced(inc);
                return self.apply(Next::Failed(e.to_string()), ctx, now);
            }
        };
        let ctl = control(ctx.shared, &inc.key, inc.a.creation_id);
        if let Err(e) = inc.lanes.sync(&ctl, &sub, true) {
            self.state = State::Announced(inc);
            return self.apply(Next::Failed(e.to_string()), ctx, now);
        }
        let key = match ctx.set.add(sub) {
            Ok(k) => k,
            Err(e) => {
                let why = format!("cannot wait on the source: {e}");
                self.state = State::Announced(inc);
                return self.apply(Next::Failed(why), ctx, now);
            }
        };
        self.stats.set_active(true);
        tracing::debug!(topic = self.topic, "attached");
        let att = Attachment {
            member: Member::Waiting(key),
            carry: None,
            poked: now,
        };
        self.due = now + inc.lanes.timer();
        self.state = State::Attached(inc, att);
        // What the ring already has is served when the loop finds the member ready.
    }
}

impl Incarnation {
    /// Declares the topic's Zenoh publisher and the liveliness token that announces it.
    fn declare(ctx: &Ctx<'_>, topic: &str, a: Announcement) -> zenoh::Result<Incarnation> {
        let session = &ctx.shared.session;
        let key = ctx.shared.keys.data(topic, &ctx.shared.zid);
        let congestion = match a.overflow {
            Overflow::Block => CongestionControl::Block,
            Overflow::Overwrite => CongestionControl::Drop,
        };
        let publisher = session
            .declare_publisher(key.clone())
            .congestion_control(congestion)
            .allowed_destination(Locality::Remote)
            .wait()?;
        let token = session
            .liveliness()
            .declare_token(ctx.shared.keys.token(topic, &ctx.shared.zid, &a))
            .wait()?;
        let lanes = Lanes::new(a.max_publishers);
        Ok(Incarnation {
            a,
            key,
            publisher,
            _token: token,
            lanes,
        })
    }
}

/// Where an incarnation's control stamps go (built from its fields, so that its lanes
/// can be borrowed beside it).
fn control<'a>(shared: &'a Shared, key: &'a str, creation_id: u64) -> Control<'a> {
    Control {
        shared,
        key,
        creation_id,
    }
}

/// Up to `puts` puts of what the ring has (a carried message first), within the
/// importers' credit; the carry is put before returning, so nothing waits outside the
/// ring between steps. Out of credit, the subscriber leaves the wait set (parked).
fn forward_some(
    topic: &str,
    stats: &Counters,
    credits: &Book,
    ctx: &mut Ctx<'_>,
    inc: &mut Incarnation,
    att: &mut Attachment,
    puts: usize,
) -> zenoh::Result<Next> {
    let out = Out {
        publisher: &inc.publisher,
        creation_id: inc.a.creation_id,
        max_bytes: ctx.shared.max_batch_bytes,
        stats,
        topic,
    };
    let mut next = Next::Stay;
    for _ in 0..puts {
        let sub = member(ctx.set, &mut att.member);
        let room = room(credits, inc, sub);
        let first = match att.carry.take() {
            Some(c) => c,
            None if room == 0 => break,
            // Copied out and released before anything else: the slot is never held
            // while a put blocks, so the source's stall timeout (which spares a
            // subscriber holding a slot) applies.
            None => match sub
                .try_recv()
                .map(|s| (s.seq(), inc.lanes.tag(s.publisher()), s.bytes().to_vec()))
            {
                Ok(m) => m,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(n)) => {
                    stats.lose(inc.lanes.lane_of(sub.lagged_lane()), n);
                    continue;
                }
                Err(TryRecvError::Disconnected) => {
                    // Every lane's publisher is gone and everything was read: end each
                    // lane the importers know of, then the topic.
                    let ctl = control(ctx.shared, &inc.key, inc.a.creation_id);
                    inc.lanes.leave_gone(&ctl, sub, true)?;
                    end_of_source(&ctl, sub, inc.lanes.is_shared(), topic)?;
                    return Ok(Next::LookNow);
                }
                // Evicted for stalling the source (a slow link under a stall timeout):
                // attach again; what we missed shows as a gap at the importer.
                Err(TryRecvError::Evicted) => {
                    tracing::warn!(topic, "evicted by the source publisher for stalling it");
                    next = Next::Detach;
                    break;
                }
                Err(e) => {
                    tracing::warn!(topic, error = %e, "skipping a corrupt message");
                    bump(&stats.lost, 1);
                    continue;
                }
            },
        };
        inc.lanes.saw(first.0, first.1);
        // The first is read: at most `room - 1` more join it.
        let more = usize::try_from(room.saturating_sub(1)).unwrap_or(usize::MAX);
        out.forward(sub, &mut inc.lanes, first, &mut att.carry, more)?;
    }
    // A carried message goes before any SYNC or LEAVE (which say we read past it) and
    // before we detach.
    if let Some(m) = att.carry.take() {
        out.alone(m)?;
    }
    if matches!(next, Next::Stay) {
        let sub = member(ctx.set, &mut att.member);
        if room(credits, inc, sub) == 0 {
            tracing::debug!(topic, next = sub.next_seq(), "out of credit: parked");
            park(ctx.set, &mut att.member);
        }
    }
    Ok(next)
}

/// How many messages the importers' credits let the export read now (`u64::MAX`: no
/// limit; an `Overwrite` topic has none).
fn room(credits: &Book, inc: &Incarnation, sub: &Subscriber) -> u64 {
    if inc.a.overflow != Overflow::Block {
        return u64::MAX;
    }
    let lanes = inc.lanes.writers.len().max(1);
    credits.room(inc.a.creation_id, lanes, |l| {
        if !inc.lanes.is_shared() {
            (sub.next_seq(), 0)
        } else if inc.lanes.writers[l].is_some() {
            (sub.next_seq_in(l as u32).unwrap_or(0), inc.lanes.starts[l])
        } else {
            // A lane the importers were not told of (no SYNC or message yet, or its
            // LEAVE): their credit for it is stale, so it limits nothing.
            (0, 0)
        }
    })
}

/// Takes the subscriber out of the wait set (no credit: it must not wake the loop).
fn park(set: &mut WaitSet, m: &mut Member) {
    if let Member::Waiting(key) = *m {
        if let Some(sub) = set.remove(key) {
            *m = Member::Parked(Box::new(sub));
        }
    }
}

/// The attached subscriber: in the wait set (the state names a key of this set; nothing
/// else removes it), or parked.
fn member<'a>(set: &'a mut WaitSet, m: &'a mut Member) -> &'a mut Subscriber {
    match m {
        Member::Waiting(key) => set
            .get_mut(*key)
            .expect("an attached export's subscriber is in the loop's wait set"),
        Member::Parked(sub) => sub,
    }
}
