//! The multi-version store of a participant group (docs/design.md §4; Spanner
//! §1, §2.1 and §4.1).
//!
//! A Spanner tablet "implements a bag of the following mappings:
//! `(key:string, timestamp:int64) → string`" (§2.1): every committed write
//! adds a *version* of its key at the transaction's commit timestamp, and a
//! read at timestamp `t` sees, for each key, the newest version with
//! timestamp `≤ t`. That is what lets read-only
//! transactions and snapshot reads run lock-free at any replica (Spanner
//! §4.1.3, §4.2.2): a read at `t ≤ t_safe` sees exactly the transactions
//! committed at or before `t`, whatever is being applied meanwhile.
//!
//! [`MvccStore`] is that bag. It is a pure data structure: the group's state
//! machine calls [`MvccStore::write`] as it applies committed Paxos entries,
//! and serves reads from it. It does not know about locks, safe time or
//! Paxos; it takes every timestamp as an argument.
//!
//! # Rules
//!
//! - **Versions.** A key has any number of versions, kept sorted by
//!   timestamp whatever order they are written in (within a group commits
//!   apply in timestamp order, but the store does not rely on it). A
//!   version's value is `Some(bytes)` or `None`, a *tombstone* recording a
//!   delete: a read that finds a tombstone returns "no value".
//! - **One version per timestamp.** Writing the same `(key, ts, value)`
//!   again is an idempotent no-op (re-applying a log entry is harmless).
//!   Writing a *different* value at an existing `(key, ts)` is
//!   [`MvccError::ConflictingVersion`]: two transactions cannot commit the
//!   same key at the same timestamp, so it indicates a bug upstream, and
//!   silently overwriting history that a snapshot read may already have
//!   observed would break it.
//! - **Garbage collection.** In Spanner "old versions of data are subject
//!   to configurable garbage-collection policies" (§1). [`MvccStore::gc`]
//!   takes a *horizon* `h` and drops every version that no read at a
//!   timestamp `≥ h` can see: per key it keeps the newest
//!   version `≤ h` (and everything newer), drops the older ones, and drops
//!   the kept one too when it is a tombstone (reads at `≥ h` see "no value"
//!   either way). The horizon only moves forward. Afterwards a read or scan
//!   at `t < h` fails with [`MvccError::BelowGcHorizon`], never with a
//!   silently wrong answer, and a write at `ts ≤ h` fails with
//!   [`MvccError::WriteAtOrBelowGcHorizon`] (it would rewrite a snapshot
//!   that reads at `h` may already have seen). The caller keeps the horizon
//!   below `t_safe` and below the read timestamp of every live transaction.
//!
//! # Layouts
//!
//! The store is generic over its physical layout ([`MvccLayout`]). The
//! design (docs/design.md §4) left the choice between a crossbeam skip list
//! and a `BTreeMap` per key to measurement, and the measurement
//! (`benches/mvcc.rs`, numbers and command in `BENCHMARKS.md`) added a
//! third:
//!
//! - [`SkipListLayout`]: one `crossbeam_skiplist::SkipMap` entry per version,
//!   keyed by `(key, Reverse(ts))`, as LevelDB/Badger memtables do.
//! - [`BTreeLayout`]: `BTreeMap<key, versions>`, the versions of a key in one
//!   small sorted array (a single version inline).
//! - [`HashedBTreeLayout`] (the default): the versions of each key in a hash
//!   map, plus a `BTreeSet` of the keys for ordered scans.
//!
//! All three store keys of up to 38 bytes inline, so comparing keys during
//! a search chases no pointer (without that, a B-tree read at 1M keys took
//! ~2 µs: one cache miss per key comparison).
//!
//! Median of `cargo bench -p meridian-participant --bench mvcc`, 1M keys of
//! 16 bytes, 100-byte values, on the 2-core AMD EPYC development VM:
//!
//! | operation                               | hashed B-tree | B-tree  | skip list |
//! |-----------------------------------------|---------------|---------|-----------|
//! | point read, uniform random key          | 110 ns        | 717 ns  | 2.48 µs   |
//! | point read, zipfian (θ = 0.99) key      | 63 ns         | 391 ns  | 1.70 µs   |
//! | write a new version of an existing key  | 543 ns        | 1.15 µs | 3.90 µs   |
//! | scan 100 rows                           | 22.9 µs       | 10.6 µs | 28.2 µs   |
//!
//! A random point read in a tree among a million keys costs a cache miss
//! per level (about seven for std's B-tree, twenty-odd for a skip list); a
//! hash probe costs about two. The hashed B-tree pays in scans, which probe
//! the hash map per row, and in memory (each key stored twice). Point reads
//! and writes are the participant's hot path (every transactional read,
//! every applied commit) and the target was 300 ns per point read, so it is
//! the default. The skip list's strength, lock-free readers concurrent with a
//! writer, is unused by the single-threaded (sans-IO) state machine.

mod btree;
mod hashed;
mod key;
mod skiplist;
#[cfg(test)]
mod tests;
mod versions;

use std::ops::{Bound, RangeBounds};

use bytes::Bytes;
use meridian_truetime::Timestamp;

pub use btree::BTreeLayout;
pub use hashed::HashedBTreeLayout;
pub use skiplist::SkipListLayout;

/// Most rows one [`MvccStore::scan`] may return. Bounds the work and the
/// reply size of one call; a caller wanting more continues from the last key
/// returned (docs/design.md §6: message sizes are bounded).
pub const MAX_SCAN_ROWS: usize = 10_000;

/// Keys [`MvccStore::size_midpoint`] reads per page of its scan.
pub const MIDPOINT_SCAN_PAGE: usize = 1_024;

/// Errors from the MVCC store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MvccError {
    /// A read or scan asked for a snapshot older than the GC horizon: the
    /// versions it would need may have been garbage collected (docs/design.md §5.3,
    /// Spanner §1). Not retryable at the same timestamp.
    #[error(
        "read at {read_ts} is below the GC horizon {horizon}: versions older than the horizon \
         have been garbage collected; read at or after the horizon"
    )]
    BelowGcHorizon {
        /// The timestamp the read asked for.
        read_ts: Timestamp,
        /// The store's GC horizon.
        horizon: Timestamp,
    },
    /// A write at or below the GC horizon: it would change what reads at the
    /// horizon, which are allowed, already saw.
    #[error(
        "write at {write_ts} is at or below the GC horizon {horizon}; commit timestamps must be \
         above the horizon"
    )]
    WriteAtOrBelowGcHorizon {
        /// The timestamp of the rejected write.
        write_ts: Timestamp,
        /// The store's GC horizon.
        horizon: Timestamp,
    },
    /// A different value already exists for this key at this timestamp. Two
    /// transactions never commit one key at one timestamp, so this is a bug
    /// upstream; the existing version is kept.
    #[error("key {key:?} already has a different version at {ts}")]
    ConflictingVersion {
        /// The key written.
        key: Bytes,
        /// The timestamp written.
        ts: Timestamp,
    },
    /// A scan asked for more rows than [`MAX_SCAN_ROWS`].
    #[error("scan limit {limit} exceeds the maximum of {max} rows per scan")]
    ScanLimitTooLarge {
        /// The limit asked for.
        limit: usize,
        /// [`MAX_SCAN_ROWS`].
        max: usize,
    },
}

/// What one [`MvccStore::gc`] call removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Versions (including tombstones) removed.
    pub versions_removed: usize,
    /// Keys left without any version, and so removed entirely.
    pub keys_removed: usize,
}

mod sealed {
    /// Keeps [`super::MvccLayout`] implementable only in this crate: the
    /// store's correctness rests on each layout's exact contract.
    pub trait Sealed {}
}

/// A callback over stored versions: `(key, ts, value)`, `None` = tombstone.
pub type VersionVisitor<'a> = dyn FnMut(&[u8], Timestamp, Option<&Bytes>) + 'a;

/// A physical layout for [`MvccStore`]: the raw versioned map without the
/// horizon checks. Implemented by [`HashedBTreeLayout`], [`BTreeLayout`] and
/// [`SkipListLayout`]; sealed.
pub trait MvccLayout: sealed::Sealed + Default {
    /// Adds version `ts` of `key` and returns `Ok(true)`. If a version at
    /// exactly `ts` exists, leaves it in place and returns `Ok(false)` if it
    /// has the same value, else `Err(key)`.
    fn insert(&mut self, key: Bytes, ts: Timestamp, value: Option<Bytes>) -> Result<bool, Bytes>;

    /// The newest version of `key` with timestamp `≤ ts`, tombstones
    /// included.
    fn get(&self, key: &[u8], ts: Timestamp) -> Option<(Timestamp, Option<Bytes>)>;

    /// The timestamp of the newest version of `key`, tombstones included.
    fn latest_ts(&self, key: &[u8]) -> Option<Timestamp>;

    /// Appends to `out`, in key order, `(key, version ts, value)` for each key
    /// in `[start, end]` whose newest version `≤ ts` is not a tombstone,
    /// until `out` holds `limit` rows. The range is not empty or inverted.
    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        ts: Timestamp,
        limit: usize,
        out: &mut Vec<(Bytes, Timestamp, Bytes)>,
    );

    /// Drops every version that no read at `≥ horizon` can see (see the
    /// module documentation).
    fn gc(&mut self, horizon: Timestamp) -> GcStats;

    /// Calls `f(key, ts, value)` for every version, tombstones included,
    /// keys in ascending order (a key's versions in any order).
    fn for_each_version(&self, f: &mut VersionVisitor<'_>);
}

/// The MVCC store of one participant group: key → versions by commit
/// timestamp (Spanner §2.1), with garbage collection below a horizon.
///
/// See the [module documentation](self) for the rules. `L` is the physical
/// layout; the default, [`HashedBTreeLayout`], has the fastest point reads
/// and writes measured (see the [module documentation](self)).
#[derive(Debug, Default)]
pub struct MvccStore<L: MvccLayout = HashedBTreeLayout> {
    layout: L,
    horizon: Timestamp,
    versions: usize,
    /// Σ over keys whose newest version is not a tombstone of key length +
    /// value length: see [`MvccStore::live_bytes`].
    live_bytes: u64,
}

/// An [`MvccStore`] on the B-tree layout.
pub type BTreeMvccStore = MvccStore<BTreeLayout>;

/// An [`MvccStore`] on the skip-list layout (kept for comparison).
pub type SkipListMvccStore = MvccStore<SkipListLayout>;

/// An [`MvccStore`] on the hashed B-tree layout (the default).
pub type HashedBTreeMvccStore = MvccStore<HashedBTreeLayout>;

impl MvccStore<HashedBTreeLayout> {
    /// An empty store on the default layout with GC horizon
    /// [`Timestamp::ZERO`].
    pub fn new() -> Self {
        Self::default()
    }
}

impl<L: MvccLayout> MvccStore<L> {
    /// An empty store on layout `L` with GC horizon [`Timestamp::ZERO`].
    pub fn with_layout() -> Self {
        Self::default()
    }

    /// Applies a committed write of `key` at commit timestamp `ts`
    /// (Spanner §4.1.2: writes are applied at the commit timestamp).
    /// `value == None` writes a delete tombstone.
    ///
    /// Versions may arrive in any timestamp order. Errors: `ts ≤` the GC
    /// horizon ([`MvccError::WriteAtOrBelowGcHorizon`]), or a different value
    /// already at `(key, ts)` ([`MvccError::ConflictingVersion`]); writing
    /// the same value again is a no-op.
    pub fn write(
        &mut self,
        key: Bytes,
        ts: Timestamp,
        value: Option<Bytes>,
    ) -> Result<(), MvccError> {
        if ts <= self.horizon {
            return Err(MvccError::WriteAtOrBelowGcHorizon {
                write_ts: ts,
                horizon: self.horizon,
            });
        }
        // The newest version before this write: the write replaces it as
        // the newest only if it is newer (versions arrive in any order).
        let newest = self.layout.get(&key, Timestamp::MAX);
        let key_len = key.len();
        let new_bytes = live_size(&key, value.as_ref());
        match self.layout.insert(key, ts, value) {
            Ok(added) => {
                self.versions += usize::from(added);
                match newest {
                    Some((newest_ts, _)) if newest_ts >= ts => {}
                    Some((_, old)) => {
                        let old_bytes = old.map_or(0, |v| (key_len + v.len()) as u64);
                        self.replace_live_bytes(old_bytes, new_bytes);
                    }
                    None => self.replace_live_bytes(0, new_bytes),
                }
                Ok(())
            }
            Err(key) => Err(MvccError::ConflictingVersion { key, ts }),
        }
    }

    /// Bytes of the newest version of every key that is not a tombstone:
    /// Σ (key length + value length). What the store holds once GC has
    /// dropped every older version, for range sizes in `status` and the
    /// size-based split policy. Kept exact through writes, deletes, GC (which
    /// never drops a newest live version) and [`MvccStore::load`].
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Recounts [`MvccStore::live_bytes`] from the versions stored, in
    /// time linear in their number.
    pub fn recount_live_bytes(&self) -> u64 {
        let mut newest: Option<(Bytes, Timestamp, u64)> = None;
        let mut total = 0u64;
        self.layout.for_each_version(&mut |key, ts, value| {
            let size = live_size(key, value);
            match &mut newest {
                Some((k, t, s)) if k.as_ref() == key => {
                    if ts > *t {
                        *t = ts;
                        *s = size;
                    }
                }
                _ => {
                    if let Some((_, _, s)) = newest.take() {
                        total += s;
                    }
                    newest = Some((Bytes::copy_from_slice(key), ts, size));
                }
            }
        });
        total + newest.map_or(0, |(_, _, s)| s)
    }

    /// The first key at which the newest live versions before it reach
    /// half of [`MvccStore::live_bytes`]: the key that halves the store's
    /// size, where a size-based split puts its right half (docs/design.md
    /// §9, "Automatic splits"). `None` for an empty store. Scans the keys
    /// in pages of [`MIDPOINT_SCAN_PAGE`], in time linear in the keys
    /// before the midpoint: the driver asks only for a range over its
    /// split size, once per check.
    pub fn size_midpoint(&self) -> Option<Bytes> {
        let half = self.live_bytes.div_ceil(2);
        let mut before = 0u64;
        let mut from: Bound<Bytes> = Bound::Unbounded;
        loop {
            let mut page = Vec::new();
            let start = match &from {
                Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
                _ => Bound::Unbounded,
            };
            self.layout.scan(
                start,
                Bound::Unbounded,
                Timestamp::MAX,
                MIDPOINT_SCAN_PAGE,
                &mut page,
            );
            let full = page.len() >= MIDPOINT_SCAN_PAGE;
            for (key, _, value) in &page {
                if before >= half && before > 0 {
                    return Some(key.clone());
                }
                before += live_size(key, Some(value));
            }
            match page.pop() {
                Some((last, _, _)) if full => from = Bound::Excluded(last),
                // The midpoint lies at or after the last key: the last
                // key itself carries the half (a store of one key, or one
                // huge value at the end).
                Some((last, _, _)) => return Some(last),
                None => return None,
            }
        }
    }

    fn replace_live_bytes(&mut self, old: u64, new: u64) {
        assert!(
            old <= self.live_bytes,
            "a newest version of {old} bytes replaced, but the store counts {} live bytes",
            self.live_bytes
        );
        self.live_bytes = self.live_bytes - old + new;
    }

    /// Reads `key` at snapshot `ts`: the newest version with timestamp `≤ ts`
    /// as `(version ts, value)`, or `None` if there is none or it is a
    /// tombstone. Fails with [`MvccError::BelowGcHorizon`] if `ts` is below
    /// the GC horizon.
    pub fn read(&self, key: &[u8], ts: Timestamp) -> Result<Option<(Timestamp, Bytes)>, MvccError> {
        self.check_read_ts(ts)?;
        Ok(match self.layout.get(key, ts) {
            Some((version_ts, Some(value))) => Some((version_ts, value)),
            Some((_, None)) | None => None,
        })
    }

    /// Like [`read`](Self::read), but reports a tombstone as
    /// `Some((ts, None))` rather than `None`. For FaRM-style OCC (docs/design.md
    /// §5.4), which records the version a read saw, deletes included.
    pub fn read_version(
        &self,
        key: &[u8],
        ts: Timestamp,
    ) -> Result<Option<(Timestamp, Option<Bytes>)>, MvccError> {
        self.check_read_ts(ts)?;
        Ok(self.layout.get(key, ts))
    }

    /// Scans `range` at snapshot `ts`: in key order, `(key, version ts,
    /// value)` of each key whose newest version `≤ ts` is not a tombstone, at
    /// most `limit` rows (itself at most [`MAX_SCAN_ROWS`]).
    ///
    /// `range` is `..` or a pair of bounds over byte strings, e.g.
    /// `(Bound::Included(&b"a"[..]), Bound::Excluded(&b"c"[..]))`; an empty
    /// or inverted range returns no rows. Fails with
    /// [`MvccError::BelowGcHorizon`] if `ts` is below the GC horizon.
    pub fn scan<R: RangeBounds<[u8]>>(
        &self,
        range: R,
        ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Bytes, Timestamp, Bytes)>, MvccError> {
        self.check_read_ts(ts)?;
        if limit > MAX_SCAN_ROWS {
            return Err(MvccError::ScanLimitTooLarge {
                limit,
                max: MAX_SCAN_ROWS,
            });
        }
        let (start, end) = (range.start_bound(), range.end_bound());
        let mut out = Vec::new();
        if limit > 0 && !range_is_empty(start, end) {
            self.layout.scan(start, end, ts, limit, &mut out);
        }
        debug_assert!(out.len() <= limit);
        debug_assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "scan out of order");
        Ok(out)
    }

    /// The timestamp of the newest version of `key` (tombstones included), or
    /// `None` if the key has no version. For OCC validation (docs/design.md §5.4,
    /// FaRM's validate phase): a key whose latest version is newer than the
    /// one a transaction read has been overwritten since.
    ///
    /// GC may drop a key whose newest version is an old tombstone, after
    /// which this returns `None`; validation must treat "read a tombstone,
    /// now nothing" as a conflict (the safe direction).
    pub fn latest_version_ts(&self, key: &[u8]) -> Option<Timestamp> {
        self.layout.latest_ts(key)
    }

    /// Garbage-collects below `horizon` (Spanner §1's version GC): drops
    /// every version no read at `≥ horizon` can see and raises the horizon.
    /// A horizon at or below the current one does nothing.
    ///
    /// Reads at `≥ horizon` return exactly what they returned before. Runs in
    /// time linear in the number of versions.
    pub fn gc(&mut self, horizon: Timestamp) -> GcStats {
        if horizon <= self.horizon {
            return GcStats::default();
        }
        self.horizon = horizon;
        let stats = self.layout.gc(horizon);
        assert!(
            stats.versions_removed <= self.versions,
            "GC removed {} versions but the store held {}",
            stats.versions_removed,
            self.versions
        );
        self.versions -= stats.versions_removed;
        stats
    }

    /// Calls `f(key, ts, value)` for every stored version, tombstones
    /// (`None`) included, keys in ascending order. For snapshots of the
    /// group's state ([`MvccStore::load`] rebuilds a store from them).
    pub fn for_each_version(&self, mut f: impl FnMut(&[u8], Timestamp, Option<&Bytes>)) {
        self.layout.for_each_version(&mut f);
    }

    /// A store holding exactly `versions` with GC horizon `horizon`: the
    /// inverse of [`for_each_version`](Self::for_each_version) and
    /// [`gc_horizon`](Self::gc_horizon). Versions at or below the horizon
    /// are allowed here (GC keeps one per key). Fails with
    /// [`MvccError::ConflictingVersion`] if two different values share a
    /// `(key, ts)`.
    pub fn load(
        horizon: Timestamp,
        versions: impl IntoIterator<Item = (Bytes, Timestamp, Option<Bytes>)>,
    ) -> Result<Self, MvccError> {
        let mut store = Self::default();
        for (key, ts, value) in versions {
            match store.layout.insert(key, ts, value) {
                Ok(added) => store.versions += usize::from(added),
                Err(key) => return Err(MvccError::ConflictingVersion { key, ts }),
            }
        }
        store.horizon = horizon;
        store.live_bytes = store.recount_live_bytes();
        Ok(store)
    }

    /// The GC horizon: reads below it fail, writes at or below it fail.
    pub fn gc_horizon(&self) -> Timestamp {
        self.horizon
    }

    /// The number of versions stored, tombstones included.
    pub fn version_count(&self) -> usize {
        self.versions
    }

    fn check_read_ts(&self, read_ts: Timestamp) -> Result<(), MvccError> {
        if read_ts < self.horizon {
            return Err(MvccError::BelowGcHorizon {
                read_ts,
                horizon: self.horizon,
            });
        }
        Ok(())
    }
}

/// The live size of a version of `key` with `value`: key + value length,
/// 0 for a tombstone.
fn live_size(key: &[u8], value: Option<&Bytes>) -> u64 {
    value.map_or(0, |v| (key.len() + v.len()) as u64)
}

/// Whether no byte string lies in `(start, end)`. Std's `BTreeMap::range`
/// panics on inverted ranges, so the store checks first.
fn range_is_empty(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    match (start, end) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e)) => s >= e,
    }
}
