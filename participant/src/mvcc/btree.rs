//! The B-tree layout: `BTreeMap<key, versions of that key>`.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Bound;

use bytes::Bytes;
use meridian_truetime::Timestamp;

use super::key::StoreKey;
use super::versions::Versions;
use super::{GcStats, MvccLayout, VersionVisitor, sealed};

/// [`MvccLayout`] on `BTreeMap<key, versions>`.
///
/// A key of up to 38 bytes is stored inline in the tree node and its versions
/// sit in one array sorted by timestamp (a single version inline), so a point
/// read is one tree descent that compares keys without chasing pointers, and
/// the common write (a newer version) is a push. A scan walks the tree's
/// leaves in order: the fastest scans of the three layouts, but a random
/// point read misses the cache at every level of the tree.
#[derive(Debug, Default)]
pub struct BTreeLayout {
    map: BTreeMap<StoreKey, Versions>,
}

impl sealed::Sealed for BTreeLayout {}

impl MvccLayout for BTreeLayout {
    fn insert(&mut self, key: Bytes, ts: Timestamp, value: Option<Bytes>) -> Result<bool, Bytes> {
        match self.map.entry(StoreKey::from(key)) {
            Entry::Vacant(e) => {
                e.insert(Versions::One((ts, value)));
                Ok(true)
            }
            Entry::Occupied(mut e) => e
                .get_mut()
                .insert(ts, value)
                .map_err(|()| e.key().to_bytes()),
        }
    }

    fn get(&self, key: &[u8], ts: Timestamp) -> Option<(Timestamp, Option<Bytes>)> {
        self.map.get(key)?.at(ts).cloned()
    }

    fn latest_ts(&self, key: &[u8]) -> Option<Timestamp> {
        self.map.get(key).map(Versions::latest_ts)
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        ts: Timestamp,
        limit: usize,
        out: &mut Vec<(Bytes, Timestamp, Bytes)>,
    ) {
        for (key, versions) in self.map.range::<[u8], _>((start, end)) {
            if out.len() >= limit {
                break;
            }
            if let Some((version_ts, Some(value))) = versions.at(ts) {
                out.push((key.to_bytes(), *version_ts, value.clone()));
            }
        }
    }

    fn gc(&mut self, horizon: Timestamp) -> GcStats {
        let mut stats = GcStats::default();
        self.map.retain(|_, versions| {
            let (removed, emptied) = versions.gc(horizon);
            stats.versions_removed += removed;
            stats.keys_removed += usize::from(emptied);
            !emptied
        });
        stats
    }

    fn for_each_version(&self, f: &mut VersionVisitor<'_>) {
        for (key, versions) in &self.map {
            for (ts, value) in versions.as_slice() {
                f(key.as_slice(), *ts, value.as_ref());
            }
        }
    }
}
