//! The leader's timestamp cache (CockroachDB's `tscache`): the highest
//! timestamp at which each key, and each scanned range, was read lock-free
//! by a snapshot read this leader served. A later write of a key must take
//! a timestamp above every read of it (docs/transactions.md, "Reads at a
//! timestamp"), so the leader asks the cache for a write's floor instead of
//! raising the whole group's timestamp floor at every read: a read pushes
//! only writes of what it read.
//!
//! Memory is bounded ([`TimestampCache::new`]'s limits). An entry evicted
//! to make room raises the cache's low-water mark to its timestamp, and the
//! low-water mark is a floor for every key: what the cache forgot is still
//! answered conservatively, never below a read it served.
//!
//! The cache lives at one leader for one term, and needs no carrying over:
//! every read it remembers was at a timestamp inside that leader's lease,
//! and every later leader's timestamps lie above that lease
//! (Spanner §4.1.1 disjointness; docs/paxos.md).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use meridian_truetime::Timestamp;

/// Default most keys a leader's timestamp cache remembers one by one.
pub const DEFAULT_TS_CACHE_KEYS: usize = 65_536;

/// Default most scanned ranges a leader's timestamp cache remembers one by
/// one (a write is checked against each: keep it small).
pub const DEFAULT_TS_CACHE_RANGES: usize = 256;

/// Read timestamps by key and by range, bounded, with a low-water mark.
#[derive(Clone, Debug)]
pub struct TimestampCache {
    keys: BTreeMap<Bytes, Timestamp>,
    /// The same entries by timestamp, for eviction of the oldest.
    by_ts: BTreeSet<(Timestamp, Bytes)>,
    /// `(start, end, ts)`: reads of every key in `[start, end)` (`end`
    /// `None`: unbounded) at `ts`.
    ranges: Vec<(Bytes, Option<Bytes>, Timestamp)>,
    /// A floor for every key: the highest timestamp evicted.
    low_water: Timestamp,
    max_keys: usize,
    max_ranges: usize,
}

impl TimestampCache {
    /// An empty cache remembering at most `max_keys` keys and `max_ranges`
    /// ranges (each at least 1), with no floor.
    pub fn new(max_keys: usize, max_ranges: usize) -> TimestampCache {
        assert!(
            max_keys > 0 && max_ranges > 0,
            "a cache must hold something"
        );
        TimestampCache {
            keys: BTreeMap::new(),
            by_ts: BTreeSet::new(),
            ranges: Vec::new(),
            low_water: Timestamp::ZERO,
            max_keys,
            max_ranges,
        }
    }

    /// Remembers a read of `key` at `ts`.
    pub fn record_key(&mut self, key: &Bytes, ts: Timestamp) {
        if ts <= self.low_water {
            return;
        }
        match self.keys.get_mut(key) {
            Some(old) if *old >= ts => return,
            Some(old) => {
                self.by_ts.remove(&(*old, key.clone()));
                *old = ts;
            }
            None => {
                self.keys.insert(key.clone(), ts);
            }
        }
        self.by_ts.insert((ts, key.clone()));
        while self.keys.len() > self.max_keys {
            let (t, k) = self.by_ts.pop_first().expect("one entry per key");
            self.keys.remove(&k);
            self.low_water = self.low_water.max(t);
        }
    }

    /// Remembers a read of every key in `[start, end)` (`end` `None`: no
    /// upper bound) at `ts`: a scan, which also covers keys not written yet.
    pub fn record_range(&mut self, start: &Bytes, end: Option<&Bytes>, ts: Timestamp) {
        if ts <= self.low_water {
            return;
        }
        if let Some(r) = self
            .ranges
            .iter_mut()
            .find(|(s, e, _)| s == start && e.as_ref() == end)
        {
            r.2 = r.2.max(ts);
            return;
        }
        self.ranges.push((start.clone(), end.cloned(), ts));
        if self.ranges.len() > self.max_ranges {
            let oldest = (0..self.ranges.len())
                .min_by_key(|&i| self.ranges[i].2)
                .expect("not empty");
            let (_, _, t) = self.ranges.swap_remove(oldest);
            self.low_water = self.low_water.max(t);
        }
    }

    /// The highest timestamp at which `key` may have been read: a write of
    /// `key` must take a timestamp above it.
    pub fn max_read(&self, key: &[u8]) -> Timestamp {
        let ranged = self
            .ranges
            .iter()
            .filter(|(s, e, _)| &s[..] <= key && e.as_ref().is_none_or(|e| key < &e[..]))
            .map(|(_, _, t)| *t)
            .max()
            .unwrap_or(Timestamp::ZERO);
        self.keys
            .get(key)
            .copied()
            .unwrap_or(Timestamp::ZERO)
            .max(ranged)
            .max(self.low_water)
    }

    /// Forgets every entry at or below `ts`, without raising the low-water
    /// mark: for a `ts` every later write exceeds anyway (the highest
    /// timestamp in the leader's log, since Paxos write timestamps rise).
    pub fn forget_through(&mut self, ts: Timestamp) {
        while let Some((t, k)) = self.by_ts.first().cloned() {
            if t > ts {
                break;
            }
            self.by_ts.pop_first();
            self.keys.remove(&k);
        }
        self.ranges.retain(|(_, _, t)| *t > ts);
    }

    /// The highest timestamp of any read remembered (or the low-water
    /// mark): a floor for every write of any key.
    pub fn max_recorded(&self) -> Timestamp {
        let keys = self.by_ts.last().map_or(Timestamp::ZERO, |(t, _)| *t);
        let ranges = self
            .ranges
            .iter()
            .map(|(_, _, t)| *t)
            .max()
            .unwrap_or(Timestamp::ZERO);
        keys.max(ranges).max(self.low_water)
    }

    /// Raises the low-water mark to `ts`: every write of any key must
    /// exceed it (a group created by a split starts from its parent
    /// leader's reads, docs/design.md §9).
    pub fn raise_low_water(&mut self, ts: Timestamp) {
        self.low_water = self.low_water.max(ts);
    }

    /// The floor for keys the cache no longer remembers one by one.
    pub fn low_water(&self) -> Timestamp {
        self.low_water
    }

    /// Keys and ranges remembered one by one.
    pub fn len(&self) -> usize {
        self.keys.len() + self.ranges.len()
    }

    /// Whether nothing is remembered one by one.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn a_write_is_pushed_only_by_reads_of_its_key_or_range() {
        let mut c = TimestampCache::new(8, 8);
        c.record_key(&b("a"), Timestamp(50));
        c.record_range(&b("m"), Some(&b("p")), Timestamp(70));
        assert_eq!(c.max_read(b"a"), Timestamp(50));
        assert_eq!(c.max_read(b"b"), Timestamp::ZERO);
        assert_eq!(c.max_read(b"n"), Timestamp(70));
        assert_eq!(c.max_read(b"p"), Timestamp::ZERO);
        c.record_key(&b("a"), Timestamp(40));
        assert_eq!(c.max_read(b"a"), Timestamp(50), "never lowered");
    }

    #[test]
    fn an_evicted_read_raises_the_low_water_mark_for_every_key() {
        let mut c = TimestampCache::new(2, 1);
        c.record_key(&b("a"), Timestamp(10));
        c.record_key(&b("b"), Timestamp(30));
        c.record_key(&b("c"), Timestamp(20));
        assert_eq!(c.low_water(), Timestamp(10));
        assert_eq!(c.max_read(b"a"), Timestamp(10));
        assert_eq!(c.max_read(b"zzz"), Timestamp(10));
        assert_eq!(c.max_read(b"b"), Timestamp(30));
        c.record_range(&b("x"), None, Timestamp(40));
        c.record_range(&b("a"), Some(&b("b")), Timestamp(45));
        assert_eq!(c.max_read(b"x"), Timestamp(40), "the evicted range's floor");
        assert_eq!(c.max_read(b"y"), Timestamp(40));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn forgetting_what_the_log_covers_keeps_the_low_water_mark() {
        let mut c = TimestampCache::new(4, 4);
        c.record_key(&b("a"), Timestamp(10));
        c.record_key(&b("b"), Timestamp(30));
        c.record_range(&b("a"), None, Timestamp(15));
        c.forget_through(Timestamp(20));
        assert_eq!(c.max_read(b"a"), Timestamp::ZERO);
        assert_eq!(c.max_read(b"b"), Timestamp(30));
        assert_eq!(c.low_water(), Timestamp::ZERO);
    }
}
