//! Flow control of `Block` topics across a bridge: credits.
//!
//! Zenoh carries every topic between two bridges on one link, and Zenoh's callbacks for
//! that link run one after another. An importer that waited for room in a full local
//! ring inside its callback therefore held the whole link: one stuck `Block` subscriber
//! slowed every topic. Instead an importer never waits there for a bridge that sends
//! credits: a message that finds its lane's ring full is queued (per lane, bounded), and
//! the importer tells the exporter, per lane, up to which sequence it has published
//! locally (*consumed*) and how many messages past that it takes (*window*). The exporter
//! reads a `Block` source only while every importer whose token is live has room:
//! `next_seq_in(lane) < consumed[lane] + window` for each lane. A stuck importer holds
//! only its own topic, at the exporter, where the source's `Block` and stall rules apply
//! exactly as to a slow local subscriber; the other topics on the link go on.
//!
//! Wire: a put on `ringcast/<domain>/@credit/<topic>/<exporter zid>/<importer zid>`, no
//! attachment, payload little-endian:
//!
//! ```text
//! 0   creation_id   the source incarnation the credit is for
//! 8   window        messages past `consumed` the importer takes (1..=MAX_WINDOW)
//! 16  lanes         lanes that follow (1..=64: the topic's)
//! 24  consumed      u64 per lane: the sequence the lane's next local publish has
//! ```
//!
//! An importer holds a liveliness token
//! `ringcast/<domain>/@import/<topic>/<exporter zid>/<importer zid>` while it imports from
//! that exporter (every topic, `Block` or not): the exporter attaches to its source only
//! while such a token is live, so nothing is sent to a bridge that does not import the
//! topic. At a new token the exporter puts a SYNC (where it reads); the importer sends a
//! credit when it learns where a lane starts (that SYNC, or a lane's first message), then
//! whenever a lane's `consumed` has moved a quarter window past the last one it sent, and
//! every second while anything moved. For a `Block` topic every live token limits the
//! exporter: by its credit for the incarnation, and to **nothing** until that credit
//! arrives, so an exporter never runs ahead of an importer it has not heard from (a lane
//! the importer has not heard of yet, `consumed` `u64::MAX`, takes a window from where
//! the exporter first told of it). A withdrawn token (the importer stopped, died or
//! adopted another source) drops its credit. A message that still finds an importer's
//! queue full (an exporter from before version 5 records, or a peer that ignores
//! credits) makes the callback wait for room, as before credits: nothing is ever dropped
//! for it.

use std::collections::{HashMap, HashSet};

/// Bytes of a credit's fixed words.
const HEAD: usize = 24;
/// Largest window an importer states (and an exporter accepts).
pub const MAX_WINDOW: u64 = 1 << 20;
/// Most lanes a credit names (a topic's most).
const MAX_LANES: u64 = 64;
/// Most importers an exporter keeps credits and tokens of per topic (the excess is refused
/// and counted). A full book makes room for the credit of an importer whose token is live
/// by dropping one whose token is not (a peer's made-up importers cannot keep a real one's
/// credit out); tokens are bounded the same way, so 64 live tokens that never credit
/// (a peer's, on a network that lets it in) hold a `Block` topic.
pub const MAX_IMPORTERS: usize = 64;

/// One importer's credit for one source incarnation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credit {
    /// The source incarnation.
    pub creation_id: u64,
    /// Messages past `consumed` the importer takes.
    pub window: u64,
    /// Per lane, the sequence of the lane's next local publish.
    pub consumed: Vec<u64>,
}

impl Credit {
    /// The put's payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD + 8 * self.consumed.len());
        for w in [self.creation_id, self.window, self.consumed.len() as u64] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        for c in &self.consumed {
            out.extend_from_slice(&c.to_le_bytes());
        }
        out
    }

    /// Reads a credit; `None` unless the bytes are exactly one well-formed credit.
    pub fn decode(b: &[u8]) -> Option<Credit> {
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(
                b.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        let (creation_id, window, lanes) = (word(0)?, word(1)?, word(2)?);
        if !(1..=MAX_WINDOW).contains(&window) || !(1..=MAX_LANES).contains(&lanes) {
            return None;
        }
        if b.len() != HEAD + 8 * lanes as usize {
            return None;
        }
        let consumed = (0..lanes as usize)
            .map(|l| word(3 + l))
            .collect::<Option<Vec<u64>>>()?;
        Some(Credit {
            creation_id,
            window,
            consumed,
        })
    }

    /// How many more messages of lane `lane` may be read when its next is `next` and the
    /// importers were first told of it at `start` (a SYNC or its first message). A lane
    /// the importer has not heard of yet (`consumed` is `u64::MAX`: the SYNC or message
    /// that names it is on its way) takes a window from `start`; a lane this credit does
    /// not name limits nothing.
    fn room(&self, lane: usize, next: u64, start: u64) -> u64 {
        match self.consumed.get(lane) {
            Some(&u64::MAX) => start.saturating_add(self.window).saturating_sub(next),
            Some(&c) => c.saturating_add(self.window).saturating_sub(next),
            None => u64::MAX,
        }
    }
}

/// What an exporter knows of one topic's importers' credits. Only the credit of an
/// importer whose token is live limits anything: one that left (or a peer that never
/// declared a token) cannot hold the source.
#[derive(Default)]
pub struct Book {
    credits: HashMap<String, Credit>,
    present: HashSet<String>,
}

impl Book {
    /// Importer `zid` sent `credit` (a newer one replaces the older; a credit of another
    /// incarnation is kept too, and limits nothing until that incarnation is read).
    /// Refused (`false`) past [`MAX_IMPORTERS`], unless `zid`'s token is live and the
    /// credit of one whose token is not can make room.
    pub fn credit(&mut self, zid: &str, credit: Credit) -> bool {
        if !self.credits.contains_key(zid) && self.credits.len() >= MAX_IMPORTERS {
            if !self.present.contains(zid) {
                return false;
            }
            let absent = self.credits.keys().find(|z| !self.present.contains(*z));
            let Some(absent) = absent.cloned() else {
                return false;
            };
            self.credits.remove(&absent);
        }
        self.credits.insert(zid.to_owned(), credit);
        true
    }

    /// Whether importer `zid`'s token is known to be live.
    pub fn is_present(&self, zid: &str) -> bool {
        self.present.contains(zid)
    }

    /// Importer `zid`'s token appeared. Refused (`false`) past [`MAX_IMPORTERS`].
    pub fn present(&mut self, zid: &str) -> bool {
        if !self.present.contains(zid) && self.present.len() >= MAX_IMPORTERS {
            return false;
        }
        self.present.insert(zid.to_owned());
        true
    }

    /// Importer `zid` is gone (its token was withdrawn): its credit no longer limits
    /// anything.
    pub fn gone(&mut self, zid: &str) {
        self.credits.remove(zid);
        self.present.remove(zid);
    }

    /// Whether an importer's token is live: someone imports the topic from us.
    pub fn any_present(&self) -> bool {
        !self.present.is_empty()
    }

    /// How many messages may be read now from incarnation `creation_id`, whose lanes'
    /// next sequences and first told sequences `lane(l)` gives as `(next, start)`. Every
    /// importer whose token is live limits it: by its credit for this incarnation, or to
    /// nothing (0) until that credit arrives, so an exporter never runs ahead of an
    /// importer it has not heard from (`u64::MAX`: no importer is present).
    pub fn room(&self, creation_id: u64, lanes: usize, lane: impl Fn(usize) -> (u64, u64)) -> u64 {
        self.present
            .iter()
            .map(|z| match self.credits.get(z) {
                Some(c) if c.creation_id == creation_id => (0..lanes)
                    .map(|l| {
                        let (next, start) = lane(l);
                        c.room(l, next, start)
                    })
                    .min()
                    .unwrap_or(u64::MAX),
                _ => 0,
            })
            .min()
            .unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credit(consumed: Vec<u64>, window: u64) -> Credit {
        Credit {
            creation_id: 7,
            window,
            consumed,
        }
    }

    #[test]
    fn a_credit_reads_back_and_nothing_malformed_does() {
        let c = credit(vec![3, 9], 16);
        let b = c.encode();
        assert_eq!(Credit::decode(&b), Some(c));
        assert_eq!(Credit::decode(&b[..b.len() - 1]), None, "short");
        assert_eq!(
            Credit::decode(&[b.clone(), vec![0]].concat()),
            None,
            "trailing"
        );
        let mut zero_window = b.clone();
        zero_window[8..16].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(Credit::decode(&zero_window), None);
        let mut huge_window = b.clone();
        huge_window[8..16].copy_from_slice(&(MAX_WINDOW + 1).to_le_bytes());
        assert_eq!(Credit::decode(&huge_window), None);
        let mut no_lanes = b.clone();
        no_lanes[16..24].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(Credit::decode(&no_lanes), None);
        let mut lying_lanes = b;
        lying_lanes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Credit::decode(&lying_lanes), None);
        assert_eq!(Credit::decode(&[]), None);
    }

    #[test]
    fn the_book_allows_what_the_tightest_importer_has_room_for() {
        let mut book = Book::default();
        let at = |next: u64| move |_| (next, 0);
        assert_eq!(book.room(7, 2, at(100)), u64::MAX, "nobody imports");
        assert!(!book.any_present());
        assert!(book.credit("a", credit(vec![100, 50], 10)));
        assert!(book.credit("b", credit(vec![95, 60], 10)));
        assert_eq!(
            book.room(7, 2, at(500)),
            u64::MAX,
            "credits without a token"
        );
        assert!(book.present("a") && book.present("b"));
        assert!(book.any_present());
        // Lane 0 next 100: a has 10, b 5; lane 1 next 55: a 5, b 15.
        let next = |l: usize| ([100, 55][l], 0);
        assert_eq!(book.room(7, 2, next), 5);
        // At the limit: no room; past it (a peer that ran ahead): none either.
        assert_eq!(book.room(7, 2, at(105)), 0);
        assert_eq!(book.room(7, 2, at(500)), 0);
        // A present importer without a credit for this incarnation holds it until it
        // credits: another incarnation's credits, or none at all.
        assert_eq!(book.room(8, 2, next), 0);
        assert!(book.present("c"));
        assert_eq!(book.room(7, 2, next), 0, "c has not credited yet");
        assert!(book.credit("c", credit(vec![100, u64::MAX], 10)));
        // c has not heard of lane 1 yet: a window from where it was first told (50).
        assert_eq!(book.room(7, 2, |l| ([100, 55][l], 50)), 5);
        assert_eq!(book.room(7, 2, |l| ([100, 58][l], 50)), 2);
        book.gone("c");
        book.gone("b");
        assert_eq!(book.room(7, 2, next), 5, "a's lane 1");
        book.gone("a");
        assert!(!book.any_present());
        assert_eq!(book.room(7, 2, next), u64::MAX);
        for i in 0..MAX_IMPORTERS {
            assert!(book.credit(&format!("z{i}"), credit(vec![0], 1)));
            assert!(book.present(&format!("z{i}")));
        }
        assert!(!book.credit("one-more", credit(vec![0], 1)), "bounded");
        assert!(!book.present("one-more"), "bounded");
        assert!(
            book.credit("z0", credit(vec![1], 1)),
            "an old one is updated"
        );
    }

    #[test]
    fn made_up_importers_cannot_keep_a_present_importers_credit_out() {
        let mut book = Book::default();
        // A peer's credits for importers that hold no token fill the book.
        for i in 0..MAX_IMPORTERS {
            assert!(book.credit(&format!("fake{i}"), credit(vec![0], 1)));
        }
        assert!(
            !book.credit("late", credit(vec![0], 1)),
            "no token: refused"
        );
        // A real importer (its token is live) gets in, and its credit limits the export.
        assert!(book.present("real"));
        assert_eq!(book.room(7, 1, |_| (100, 0)), 0, "not credited yet");
        assert!(book.credit("real", credit(vec![100], 10)));
        assert_eq!(book.room(7, 1, |_| (100, 0)), 10);
        // A departed importer's place goes to a new one.
        let mut full = Book::default();
        for i in 0..MAX_IMPORTERS {
            let z = format!("live{i}");
            assert!(full.present(&z) && full.credit(&z, credit(vec![0], 1)));
        }
        full.gone("live0");
        assert!(full.present("new"));
        assert!(
            full.credit("new", credit(vec![0], 1)),
            "the departed one's place"
        );
        // Full of live importers with credits: a newcomer's token and credit are refused.
        assert!(!full.present("extra"));
        assert!(!full.credit("extra", credit(vec![0], 1)));
    }
}
