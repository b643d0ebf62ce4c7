//! The skip-list layout: one `SkipMap` entry per version, keyed by
//! `(key, Reverse(ts))`.

use std::borrow::Borrow;
use std::cmp::{Ordering, Reverse};
use std::ops::Bound;

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use meridian_truetime::Timestamp;

use super::key::StoreKey;
use super::{GcStats, MvccLayout, VersionVisitor, sealed};

/// [`MvccLayout`] on `crossbeam_skiplist::SkipMap<(Bytes, Reverse<Timestamp>),
/// Option<Bytes>>`.
///
/// Versions of one key are adjacent, newest first, so a read at `ts` is one
/// seek to `(key, Reverse(ts))`. The same layout as LevelDB's and Badger's
/// memtables; its strength, lock-free readers concurrent with a writer, is
/// unused by the single-threaded participant, and it lost every benchmark to
/// the other layouts (see the module documentation).
#[derive(Debug, Default)]
pub struct SkipListLayout {
    map: SkipMap<VersionKey, Option<Bytes>>,
}

/// A stored version key. Ordered by key ascending, then timestamp
/// descending, so the newest version of a key comes first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct VersionKey {
    key: StoreKey,
    ts: Reverse<Timestamp>,
}

/// A borrowed view of a version key, so lookups by `(&[u8], ts)` need not
/// allocate a `Bytes`. `SkipMap` looks up by `Q` where `VersionKey:
/// Borrow<Q>`; a trait object is the one `Q` that both an owned
/// `VersionKey` and a borrowed `(&[u8], Reverse<Timestamp>)` can be viewed
/// as.
trait VersionKeyView {
    fn key(&self) -> &[u8];
    fn ts(&self) -> Reverse<Timestamp>;
}

impl VersionKeyView for VersionKey {
    fn key(&self) -> &[u8] {
        self.key.as_slice()
    }
    fn ts(&self) -> Reverse<Timestamp> {
        self.ts
    }
}

impl VersionKeyView for (&[u8], Reverse<Timestamp>) {
    fn key(&self) -> &[u8] {
        self.0
    }
    fn ts(&self) -> Reverse<Timestamp> {
        self.1
    }
}

impl<'a> Borrow<dyn VersionKeyView + 'a> for VersionKey {
    fn borrow(&self) -> &(dyn VersionKeyView + 'a) {
        self
    }
}

/// Must agree with `VersionKey`'s derived `Ord` (key, then `Reverse(ts)`).
impl Ord for dyn VersionKeyView + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key()
            .cmp(other.key())
            .then_with(|| self.ts().cmp(&other.ts()))
    }
}

impl PartialOrd for dyn VersionKeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn VersionKeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for dyn VersionKeyView + '_ {}

/// Maps a bound on keys to a bound on version keys. `first` picks which
/// version of the bounding key the bound sits on: for a start bound that is
/// included, the newest (smallest) one, so all its versions are in range.
fn version_bound(
    bound: Bound<&[u8]>,
    included_ts: Timestamp,
    excluded_ts: Timestamp,
) -> Bound<(&[u8], Reverse<Timestamp>)> {
    match bound {
        Bound::Included(k) => Bound::Included((k, Reverse(included_ts))),
        Bound::Excluded(k) => Bound::Excluded((k, Reverse(excluded_ts))),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn as_view<'a>(
    bound: &'a Bound<(&'a [u8], Reverse<Timestamp>)>,
) -> Bound<&'a (dyn VersionKeyView + 'a)> {
    match bound {
        Bound::Included(v) => Bound::Included(v as &dyn VersionKeyView),
        Bound::Excluded(v) => Bound::Excluded(v as &dyn VersionKeyView),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl sealed::Sealed for SkipListLayout {}

impl MvccLayout for SkipListLayout {
    fn insert(&mut self, key: Bytes, ts: Timestamp, value: Option<Bytes>) -> Result<bool, Bytes> {
        let probe = (&key[..], Reverse(ts));
        if let Some(existing) = self.map.get(&probe as &dyn VersionKeyView) {
            return if *existing.value() == value {
                Ok(false)
            } else {
                Err(key)
            };
        }
        self.map.insert(
            VersionKey {
                key: StoreKey::from(key),
                ts: Reverse(ts),
            },
            value,
        );
        Ok(true)
    }

    fn get(&self, key: &[u8], ts: Timestamp) -> Option<(Timestamp, Option<Bytes>)> {
        let probe = (key, Reverse(ts));
        let entry = self
            .map
            .lower_bound(Bound::Included(&probe as &dyn VersionKeyView))?;
        (entry.key().key.as_slice() == key).then(|| (entry.key().ts.0, entry.value().clone()))
    }

    fn latest_ts(&self, key: &[u8]) -> Option<Timestamp> {
        let probe = (key, Reverse(Timestamp::MAX));
        let entry = self
            .map
            .lower_bound(Bound::Included(&probe as &dyn VersionKeyView))?;
        (entry.key().key.as_slice() == key).then_some(entry.key().ts.0)
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        ts: Timestamp,
        limit: usize,
        out: &mut Vec<(Bytes, Timestamp, Bytes)>,
    ) {
        // Included start: from the newest version of the key; excluded
        // start: past its oldest. Included end: through its oldest version;
        // excluded end: before its newest.
        let lo = version_bound(start, Timestamp::MAX, Timestamp::ZERO);
        let hi = version_bound(end, Timestamp::ZERO, Timestamp::MAX);
        // The key whose visible version has been found (emitted or a
        // tombstone); its older versions are skipped.
        let mut done: Option<StoreKey> = None;
        for entry in self
            .map
            .range::<dyn VersionKeyView, _>((as_view(&lo), as_view(&hi)))
        {
            if out.len() >= limit {
                break;
            }
            let vk = entry.key();
            if done.as_ref() == Some(&vk.key) || vk.ts.0 > ts {
                continue;
            }
            if let Some(value) = entry.value() {
                out.push((vk.key.to_bytes(), vk.ts.0, value.clone()));
            }
            done = Some(vk.key.clone());
        }
    }

    fn gc(&mut self, horizon: Timestamp) -> GcStats {
        let mut stats = GcStats::default();
        // Per key, walking newest to oldest: keep versions above the
        // horizon; keep the first one at or below it unless it is a
        // tombstone; remove the rest.
        let mut current: Option<StoreKey> = None;
        let mut found_visible = false;
        let mut kept_any = false;
        for entry in self.map.iter() {
            let vk = entry.key();
            if current.as_ref() != Some(&vk.key) {
                if current.is_some() && !kept_any {
                    stats.keys_removed += 1;
                }
                current = Some(vk.key.clone());
                found_visible = false;
                kept_any = false;
            }
            let keep = if vk.ts.0 > horizon {
                true
            } else if !found_visible {
                found_visible = true;
                entry.value().is_some()
            } else {
                false
            };
            if keep {
                kept_any = true;
            } else {
                let removed = entry.remove();
                debug_assert!(removed, "GC raced with another remover");
                stats.versions_removed += 1;
            }
        }
        if current.is_some() && !kept_any {
            stats.keys_removed += 1;
        }
        stats
    }

    fn for_each_version(&self, f: &mut VersionVisitor<'_>) {
        for entry in self.map.iter() {
            let vk = entry.key();
            f(vk.key.as_slice(), vk.ts.0, entry.value().as_ref());
        }
    }
}
