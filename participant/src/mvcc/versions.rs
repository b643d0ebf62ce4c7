//! The versions of one key, shared by the layouts that keep them per key.

use bytes::Bytes;
use meridian_truetime::Timestamp;

/// One version: commit timestamp and value (`None` = tombstone).
pub(crate) type Version = (Timestamp, Option<Bytes>);

/// The versions of one key, sorted by ascending timestamp. Most keys have a
/// single version (every key right after GC), kept inline in the map's own
/// memory so a read of it costs no extra pointer chase.
#[derive(Debug)]
pub(crate) enum Versions {
    One(Version),
    /// At least two versions.
    Many(Vec<Version>),
}

impl Versions {
    pub(crate) fn as_slice(&self) -> &[Version] {
        match self {
            Versions::One(v) => std::slice::from_ref(v),
            Versions::Many(vs) => vs,
        }
    }

    /// The newest version `≤ ts`.
    #[inline]
    pub(crate) fn at(&self, ts: Timestamp) -> Option<&Version> {
        let versions = self.as_slice();
        // Reads are mostly at recent timestamps: try the newest first.
        match versions.last() {
            Some(last) if last.0 <= ts => Some(last),
            _ => {
                let idx = versions.partition_point(|v| v.0 <= ts);
                idx.checked_sub(1).map(|i| &versions[i])
            }
        }
    }

    pub(crate) fn latest_ts(&self) -> Timestamp {
        self.as_slice().last().expect("a key has a version").0
    }

    /// Adds a version: `Ok(true)`. If one exists at `ts`: `Ok(false)` if it
    /// has the same value, else `Err(())`.
    pub(crate) fn insert(&mut self, ts: Timestamp, value: Option<Bytes>) -> Result<bool, ()> {
        if let Versions::One(only) = self {
            if only.0 == ts {
                return if only.1 == value { Ok(false) } else { Err(()) };
            }
            let only = std::mem::replace(only, (ts, None));
            *self = Versions::Many(vec![only]);
        }
        let Versions::Many(versions) = self else {
            unreachable!("converted above")
        };
        match versions.last() {
            Some(last) if last.0 < ts => versions.push((ts, value)),
            _ => match versions.binary_search_by_key(&ts, |v| v.0) {
                Ok(i) if versions[i].1 == value => return Ok(false),
                Ok(_) => return Err(()),
                Err(i) => versions.insert(i, (ts, value)),
            },
        }
        debug_assert!(versions.windows(2).all(|w| w[0].0 < w[1].0));
        Ok(true)
    }

    /// Drops the versions no read at `≥ horizon` can see. Returns how many,
    /// and whether none is left (then the list must be dropped).
    pub(crate) fn gc(&mut self, horizon: Timestamp) -> (usize, bool) {
        match self {
            Versions::One((ts, value)) => {
                let drop = *ts <= horizon && value.is_none();
                (usize::from(drop), drop)
            }
            Versions::Many(versions) => {
                let before = versions.len();
                // The newest version ≤ horizon is what reads at the horizon
                // see; everything older is invisible to reads ≥ horizon. A
                // visible tombstone reads like no version at all: drop it too.
                let visible = versions.partition_point(|v| v.0 <= horizon);
                if visible > 0 {
                    let keep_from = if versions[visible - 1].1.is_none() {
                        visible
                    } else {
                        visible - 1
                    };
                    versions.drain(..keep_from);
                }
                let removed = before - versions.len();
                let emptied = versions.is_empty();
                if versions.len() == 1 {
                    let only = versions.pop().expect("one version");
                    *self = Versions::One(only);
                }
                (removed, emptied)
            }
        }
    }
}
