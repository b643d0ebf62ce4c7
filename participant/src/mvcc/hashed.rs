//! The hashed B-tree layout: a hash index for point access plus a B-tree of
//! keys for order.

use std::collections::BTreeSet;
use std::collections::hash_map::Entry;
use std::ops::Bound;

use bytes::Bytes;
use meridian_truetime::Timestamp;

use super::key::StoreKey;
use super::versions::Versions;
use super::{GcStats, MvccLayout, VersionVisitor, sealed};
use crate::fxhash::FxHashMap;

/// [`MvccLayout`] on a hash map `key → versions` for point access and a
/// `BTreeSet` of the same keys for ordered scans.
///
/// A point read or a write of a new version of an existing key is one hash
/// probe: a couple of cache misses instead of one per level of a tree,
/// which is what a read of a random key among millions costs. Inserting a
/// new key or dropping one also updates the ordered set; a scan walks the
/// set and probes the hash map per key, so scans cost more than in
/// [`BTreeLayout`](super::BTreeLayout). Memory: each key is stored twice
/// (inline up to 38 bytes). The default layout of
/// [`MvccStore`](super::MvccStore).
#[derive(Debug, Default)]
pub struct HashedBTreeLayout {
    versions: FxHashMap<StoreKey, Versions>,
    order: BTreeSet<StoreKey>,
}

impl sealed::Sealed for HashedBTreeLayout {}

impl MvccLayout for HashedBTreeLayout {
    fn insert(&mut self, key: Bytes, ts: Timestamp, value: Option<Bytes>) -> Result<bool, Bytes> {
        if let Some(versions) = self.versions.get_mut(&key[..]) {
            return versions.insert(ts, value).map_err(|()| key);
        }
        let key = StoreKey::from(key);
        match self.versions.entry(key.clone()) {
            Entry::Vacant(e) => {
                e.insert(Versions::One((ts, value)));
            }
            Entry::Occupied(_) => unreachable!("looked up above"),
        }
        let added = self.order.insert(key);
        debug_assert!(added, "key order out of sync with the hash index");
        Ok(true)
    }

    fn get(&self, key: &[u8], ts: Timestamp) -> Option<(Timestamp, Option<Bytes>)> {
        self.versions.get(key)?.at(ts).cloned()
    }

    fn latest_ts(&self, key: &[u8]) -> Option<Timestamp> {
        self.versions.get(key).map(Versions::latest_ts)
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        ts: Timestamp,
        limit: usize,
        out: &mut Vec<(Bytes, Timestamp, Bytes)>,
    ) {
        for key in self.order.range::<[u8], _>((start, end)) {
            if out.len() >= limit {
                break;
            }
            let versions = &self.versions[key.as_slice()];
            if let Some((version_ts, Some(value))) = versions.at(ts) {
                out.push((key.to_bytes(), *version_ts, value.clone()));
            }
        }
    }

    fn gc(&mut self, horizon: Timestamp) -> GcStats {
        let mut stats = GcStats::default();
        let mut emptied_keys = Vec::new();
        self.versions.retain(|key, versions| {
            let (removed, emptied) = versions.gc(horizon);
            stats.versions_removed += removed;
            if emptied {
                emptied_keys.push(key.clone());
            }
            !emptied
        });
        stats.keys_removed = emptied_keys.len();
        for key in emptied_keys {
            let removed = self.order.remove(&key);
            debug_assert!(removed, "key order out of sync with the hash index");
        }
        debug_assert_eq!(self.order.len(), self.versions.len());
        stats
    }

    fn for_each_version(&self, f: &mut VersionVisitor<'_>) {
        for key in &self.order {
            for (ts, value) in self.versions[key.as_slice()].as_slice() {
                f(key.as_slice(), *ts, value.as_ref());
            }
        }
    }
}
