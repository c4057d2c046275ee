//! The import's small parts: reading a payload's messages across Zenoh's slices, the
//! origin text of an imported topic, and a bounded memory of values seen.

use std::collections::{HashSet, VecDeque};

use zenoh::bytes::ZBytesSliceIterator;

use crate::announce::Announcement;

/// Most values a [`Remembered`] keeps.
pub(super) const MAX_REMEMBERED: usize = 1024;

/// Reads a payload's messages in order across its slices (one slice, unless Zenoh
/// reassembled the put from fragments). Lengths were checked against the payload's by
/// [`Put::decode`]; past its end it yields nothing rather than fail.
pub(super) struct Chunks<'a> {
    rest: ZBytesSliceIterator<'a>,
    cur: &'a [u8],
}

impl<'a> Chunks<'a> {
    pub(super) fn new(rest: ZBytesSliceIterator<'a>) -> Chunks<'a> {
        Chunks { rest, cur: &[] }
    }

    fn fill(&mut self) {
        while self.cur.is_empty() {
            match self.rest.next() {
                Some(s) => self.cur = s,
                None => return,
            }
        }
    }

    /// The next `len` bytes as one slice, if they lie in one (else nothing is taken).
    pub(super) fn contiguous(&mut self, len: usize) -> Option<&'a [u8]> {
        self.fill();
        if self.cur.len() < len {
            return None;
        }
        let (head, tail) = self.cur.split_at(len);
        self.cur = tail;
        Some(head)
    }

    /// Hands the next `len` bytes to `f`, piece by piece, each with its offset.
    pub(super) fn copy(&mut self, len: usize, mut f: impl FnMut(usize, &[u8])) {
        let mut at = 0;
        while at < len {
            self.fill();
            if self.cur.is_empty() {
                return;
            }
            let n = (len - at).min(self.cur.len());
            let (head, tail) = self.cur.split_at(n);
            f(at, head);
            self.cur = tail;
            at += n;
        }
    }

    pub(super) fn skip(&mut self, len: usize) {
        self.copy(len, |_, _| {});
    }
}

/// What `ringcast list` shows as the imported topic's origin: the exporting host and
/// prefix, and the bridge's Zenoh id (cut to fit the segment's field).
pub(super) fn origin(a: &Announcement, zid: &str) -> String {
    crate::announce::origin(&a.host, &a.prefix, zid)
}

/// A set that remembers at most [`MAX_REMEMBERED`] values, forgetting the oldest.
pub(super) struct Remembered<T> {
    set: HashSet<T>,
    order: VecDeque<T>,
}

impl<T> Default for Remembered<T> {
    fn default() -> Self {
        Remembered {
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Remembered<T> {
    /// Remembers `v`; `true` if it was new.
    pub(super) fn insert(&mut self, v: T) -> bool {
        if !self.set.insert(v.clone()) {
            return false;
        }
        self.order.push_back(v);
        if self.order.len() > MAX_REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    pub(super) fn contains<Q>(&self, v: &Q) -> bool
    where
        T: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.set.contains(v)
    }
}
