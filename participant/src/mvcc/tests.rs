//! MVCC store tests: unit tests of the rules, and a property test of both
//! layouts against a naive model that keeps every write.

use std::ops::Bound;

use bytes::Bytes;
use meridian_truetime::Timestamp;
use proptest::prelude::*;

use super::*;

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n)
}

/// A range over byte strings from bounds over `&str`.
fn range<'a>(lo: Bound<&'a str>, hi: Bound<&'a str>) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (lo.map(str::as_bytes), hi.map(str::as_bytes))
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Runs a test body against every layout.
macro_rules! both_layouts {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn btree() {
                ($body)(MvccStore::<BTreeLayout>::with_layout());
            }
            #[test]
            fn skiplist() {
                ($body)(MvccStore::<SkipListLayout>::with_layout());
            }
            #[test]
            fn hashed_btree() {
                ($body)(MvccStore::<HashedBTreeLayout>::with_layout());
            }
        }
    };
}

both_layouts!(
    spanner_s4_1_read_at_t_sees_newest_version_at_or_below_t,
    |mut s: MvccStore<_>| {
        s.write(b("k"), ts(10), Some(b("v10"))).unwrap();
        s.write(b("k"), ts(20), Some(b("v20"))).unwrap();
        assert_eq!(s.read(b"k", ts(9)).unwrap(), None);
        assert_eq!(s.read(b"k", ts(10)).unwrap(), Some((ts(10), b("v10"))));
        assert_eq!(s.read(b"k", ts(19)).unwrap(), Some((ts(10), b("v10"))));
        assert_eq!(s.read(b"k", ts(20)).unwrap(), Some((ts(20), b("v20"))));
        assert_eq!(
            s.read(b"k", Timestamp::MAX).unwrap(),
            Some((ts(20), b("v20")))
        );
        assert_eq!(s.read(b"other", ts(20)).unwrap(), None);
        assert_eq!(s.latest_version_ts(b"k"), Some(ts(20)));
        assert_eq!(s.latest_version_ts(b"other"), None);
    }
);

both_layouts!(tombstone_hides_older_versions, |mut s: MvccStore<_>| {
    s.write(b("k"), ts(10), Some(b("v"))).unwrap();
    s.write(b("k"), ts(20), None).unwrap();
    assert_eq!(s.read(b"k", ts(15)).unwrap(), Some((ts(10), b("v"))));
    assert_eq!(s.read(b"k", ts(25)).unwrap(), None);
    assert_eq!(s.read_version(b"k", ts(25)).unwrap(), Some((ts(20), None)));
    assert_eq!(s.latest_version_ts(b"k"), Some(ts(20)));
});

both_layouts!(out_of_order_writes_are_kept_sorted, |mut s: MvccStore<
    _,
>| {
    s.write(b("k"), ts(30), Some(b("v30"))).unwrap();
    s.write(b("k"), ts(10), Some(b("v10"))).unwrap();
    s.write(b("k"), ts(20), Some(b("v20"))).unwrap();
    assert_eq!(s.read(b"k", ts(25)).unwrap(), Some((ts(20), b("v20"))));
    assert_eq!(s.read(b"k", ts(15)).unwrap(), Some((ts(10), b("v10"))));
    assert_eq!(s.latest_version_ts(b"k"), Some(ts(30)));
    assert_eq!(s.version_count(), 3);
});

both_layouts!(
    same_version_twice_is_idempotent_different_value_is_rejected,
    |mut s: MvccStore<_>| {
        s.write(b("k"), ts(10), Some(b("v"))).unwrap();
        s.write(b("k"), ts(10), Some(b("v"))).unwrap();
        assert_eq!(s.version_count(), 1);
        assert_eq!(
            s.write(b("k"), ts(10), Some(b("w"))),
            Err(MvccError::ConflictingVersion {
                key: b("k"),
                ts: ts(10)
            })
        );
        assert_eq!(
            s.write(b("k"), ts(10), None),
            Err(MvccError::ConflictingVersion {
                key: b("k"),
                ts: ts(10)
            })
        );
        assert_eq!(s.read(b"k", ts(10)).unwrap(), Some((ts(10), b("v"))));
    }
);

both_layouts!(
    gc_keeps_everything_reads_at_or_above_the_horizon_see,
    |mut s: MvccStore<_>| {
        s.write(b("a"), ts(10), Some(b("a10"))).unwrap();
        s.write(b("a"), ts(20), Some(b("a20"))).unwrap();
        s.write(b("a"), ts(40), Some(b("a40"))).unwrap();
        s.write(b("d"), ts(10), Some(b("d10"))).unwrap();
        s.write(b("d"), ts(20), None).unwrap();
        s.write(b("e"), ts(10), None).unwrap();
        s.write(b("e"), ts(50), Some(b("e50"))).unwrap();
        let stats = s.gc(ts(30));
        // a: a10 dropped. d: both dropped. e: tombstone dropped.
        assert_eq!(
            stats,
            GcStats {
                versions_removed: 4,
                keys_removed: 1
            }
        );
        assert_eq!(s.version_count(), 3);
        assert_eq!(s.gc_horizon(), ts(30));
        assert_eq!(s.read(b"a", ts(30)).unwrap(), Some((ts(20), b("a20"))));
        assert_eq!(s.read(b"a", ts(45)).unwrap(), Some((ts(40), b("a40"))));
        assert_eq!(s.read(b"d", ts(30)).unwrap(), None);
        assert_eq!(s.latest_version_ts(b"d"), None);
        assert_eq!(s.read(b"e", ts(30)).unwrap(), None);
        assert_eq!(s.read(b"e", ts(50)).unwrap(), Some((ts(50), b("e50"))));
        // The horizon only moves forward.
        assert_eq!(s.gc(ts(5)), GcStats::default());
        assert_eq!(s.gc_horizon(), ts(30));
    }
);

both_layouts!(
    read_below_gc_horizon_fails_with_a_clear_error,
    |mut s: MvccStore<_>| {
        s.write(b("k"), ts(10), Some(b("v"))).unwrap();
        s.gc(ts(20));
        let err = s.read(b"k", ts(19)).unwrap_err();
        assert_eq!(
            err,
            MvccError::BelowGcHorizon {
                read_ts: ts(19),
                horizon: ts(20)
            }
        );
        assert!(err.to_string().contains("below the GC horizon"), "{err}");
        assert!(matches!(
            s.scan(.., ts(19), 10),
            Err(MvccError::BelowGcHorizon { .. })
        ));
        assert!(matches!(
            s.read_version(b"k", ts(0)),
            Err(MvccError::BelowGcHorizon { .. })
        ));
        assert_eq!(s.read(b"k", ts(20)).unwrap(), Some((ts(10), b("v"))));
        assert_eq!(
            s.write(b("k"), ts(20), Some(b("late"))),
            Err(MvccError::WriteAtOrBelowGcHorizon {
                write_ts: ts(20),
                horizon: ts(20)
            })
        );
        s.write(b("k"), ts(21), Some(b("new"))).unwrap();
    }
);

both_layouts!(
    scan_returns_visible_rows_in_key_order_up_to_limit,
    |mut s: MvccStore<_>| {
        for (k, t, v) in [
            ("a", 10, Some("a10")),
            ("b", 10, Some("b10")),
            ("b", 30, Some("b30")),
            ("c", 10, Some("c10")),
            ("c", 20, None),
            ("d", 40, Some("d40")),
            ("e", 5, Some("e5")),
        ] {
            s.write(b(k), ts(t), v.map(b)).unwrap();
        }
        let rows = s.scan(.., ts(25), 100).unwrap();
        assert_eq!(
            rows,
            vec![
                (b("a"), ts(10), b("a10")),
                (b("b"), ts(10), b("b10")),
                (b("e"), ts(5), b("e5")),
            ]
        );
        let rows = s
            .scan(
                range(Bound::Included("b"), Bound::Excluded("e")),
                ts(50),
                100,
            )
            .unwrap();
        assert_eq!(
            rows,
            vec![(b("b"), ts(30), b("b30")), (b("d"), ts(40), b("d40"))]
        );
        let rows = s
            .scan(
                (Bound::Excluded(&b"a"[..]), Bound::Included(&b"d"[..])),
                ts(50),
                100,
            )
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(s.scan(.., ts(50), 2).unwrap().len(), 2);
        assert_eq!(s.scan(.., ts(50), 0).unwrap(), vec![]);
        assert_eq!(
            s.scan(
                range(Bound::Included("d"), Bound::Excluded("b")),
                ts(50),
                10
            )
            .unwrap(),
            vec![]
        );
        assert_eq!(
            s.scan(
                (Bound::Excluded(&b"b"[..]), Bound::Excluded(&b"b"[..])),
                ts(50),
                10
            )
            .unwrap(),
            vec![]
        );
        assert_eq!(
            s.scan(.., ts(50), MAX_SCAN_ROWS + 1),
            Err(MvccError::ScanLimitTooLarge {
                limit: MAX_SCAN_ROWS + 1,
                max: MAX_SCAN_ROWS
            })
        );
    }
);

#[test]
fn default_store_is_the_hashed_btree_layout() {
    let s = MvccStore::new();
    let _: &HashedBTreeMvccStore = &s;
    assert_eq!(s.gc_horizon(), Timestamp::ZERO);
    assert_eq!(s.version_count(), 0);
}

/// Operations for the model test. Keys are drawn from a small set that
/// includes prefixes of each other, an empty key and keys too long to be
/// stored inline: the edge cases of the key orderings.
#[derive(Debug, Clone)]
enum Op {
    Write {
        key: usize,
        ts: u64,
        value: Option<u8>,
    },
    Read {
        key: usize,
        ts: u64,
    },
    Scan {
        lo: Bound<usize>,
        hi: Bound<usize>,
        ts: u64,
        limit: usize,
    },
    Gc {
        horizon: u64,
    },
}

/// Short keys are stored inline, the two 40- and 41-byte ones on the heap.
const KEYS: [&[u8]; 10] = [
    b"",
    b"a",
    b"a\0",
    b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
    b"ab",
    b"b",
    b"ba",
    b"c",
    b"\xff",
];
const MAX_TS: u64 = 40;

fn bound() -> impl Strategy<Value = Bound<usize>> {
    prop_oneof![
        Just(Bound::Unbounded),
        (0..KEYS.len()).prop_map(Bound::Included),
        (0..KEYS.len()).prop_map(Bound::Excluded),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..KEYS.len(), 1..=MAX_TS, proptest::option::weighted(0.8, 0..3u8))
            .prop_map(|(key, ts, value)| Op::Write { key, ts, value }),
        4 => (0..KEYS.len(), 0..=MAX_TS + 2).prop_map(|(key, ts)| Op::Read { key, ts }),
        2 => (bound(), bound(), 0..=MAX_TS + 2, 0..6usize)
            .prop_map(|(lo, hi, ts, limit)| Op::Scan { lo, hi, ts, limit }),
        1 => (0..=MAX_TS).prop_map(|horizon| Op::Gc { horizon }),
    ]
}

/// The naive model: every accepted write, never collected.
#[derive(Default)]
struct Model {
    writes: Vec<(Bytes, Timestamp, Option<Bytes>)>,
    horizon: Timestamp,
}

impl Model {
    /// Σ key + value length of each key's newest write, if not a delete.
    fn live_bytes(&self) -> u64 {
        KEYS.iter()
            .filter_map(|k| {
                self.version(k, Timestamp::MAX)
                    .and_then(|(_, v)| v.map(|v| (k, v)))
            })
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum()
    }

    fn version(&self, key: &[u8], at: Timestamp) -> Option<(Timestamp, Option<Bytes>)> {
        self.writes
            .iter()
            .filter(|(k, t, _)| k == key && *t <= at)
            .max_by_key(|(_, t, _)| *t)
            .map(|(_, t, v)| (*t, v.clone()))
    }

    fn write(&mut self, key: Bytes, at: Timestamp, value: Option<Bytes>) -> Result<(), MvccError> {
        if at <= self.horizon {
            return Err(MvccError::WriteAtOrBelowGcHorizon {
                write_ts: at,
                horizon: self.horizon,
            });
        }
        if let Some((_, _, existing)) = self.writes.iter().find(|(k, t, _)| *k == key && *t == at) {
            return if *existing == value {
                Ok(())
            } else {
                Err(MvccError::ConflictingVersion { key, ts: at })
            };
        }
        self.writes.push((key, at, value));
        Ok(())
    }

    fn read(&self, key: &[u8], at: Timestamp) -> Result<Option<(Timestamp, Bytes)>, MvccError> {
        if at < self.horizon {
            return Err(MvccError::BelowGcHorizon {
                read_ts: at,
                horizon: self.horizon,
            });
        }
        Ok(match self.version(key, at) {
            Some((t, Some(v))) => Some((t, v)),
            _ => None,
        })
    }

    fn scan(
        &self,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        at: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Bytes, Timestamp, Bytes)>, MvccError> {
        if at < self.horizon {
            return Err(MvccError::BelowGcHorizon {
                read_ts: at,
                horizon: self.horizon,
            });
        }
        let mut keys: Vec<&Bytes> = self.writes.iter().map(|(k, _, _)| k).collect();
        keys.sort();
        keys.dedup();
        let in_range = |k: &[u8]| {
            (match lo {
                Bound::Included(l) => k >= l,
                Bound::Excluded(l) => k > l,
                Bound::Unbounded => true,
            }) && (match hi {
                Bound::Included(h) => k <= h,
                Bound::Excluded(h) => k < h,
                Bound::Unbounded => true,
            })
        };
        Ok(keys
            .into_iter()
            .filter(|k| in_range(k))
            .filter_map(|k| match self.version(k, at) {
                Some((t, Some(v))) => Some((k.clone(), t, v)),
                _ => None,
            })
            .take(limit)
            .collect())
    }
}

fn value(v: u8) -> Bytes {
    Bytes::from(vec![b'v', v])
}

fn check_against_model<L: MvccLayout>(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut store = MvccStore::<L>::with_layout();
    let mut model = Model::default();
    let key = |i: usize| Bytes::from_static(KEYS[i]);
    for op in ops {
        match op {
            Op::Write {
                key: k,
                ts: t,
                value: v,
            } => {
                let (store_before, model_before) = (store.version_count(), model.writes.len());
                let got = store.write(key(*k), ts(*t), v.map(value));
                let want = model.write(key(*k), ts(*t), v.map(value));
                prop_assert_eq!(got, want, "{:?}", op);
                prop_assert_eq!(
                    store.version_count() - store_before,
                    model.writes.len() - model_before,
                    "version count after {:?}",
                    op
                );
            }
            Op::Read { key: k, ts: t } => {
                prop_assert_eq!(
                    store.read(KEYS[*k], ts(*t)),
                    model.read(KEYS[*k], ts(*t)),
                    "{:?}",
                    op
                );
            }
            Op::Scan {
                lo,
                hi,
                ts: t,
                limit,
            } => {
                let lo = lo.map(|i| KEYS[i]);
                let hi = hi.map(|i| KEYS[i]);
                prop_assert_eq!(
                    store.scan((lo, hi), ts(*t), *limit),
                    model.scan(lo, hi, ts(*t), *limit),
                    "{:?}",
                    op
                );
            }
            Op::Gc { horizon } => {
                let before = store.version_count();
                let stats = store.gc(ts(*horizon));
                prop_assert_eq!(before - stats.versions_removed, store.version_count());
                model.horizon = model.horizon.max(ts(*horizon));
                // Every read at or above the horizon is unchanged: the model
                // never collects anything.
                for (k, &key) in KEYS.iter().enumerate() {
                    for t in model.horizon.as_nanos()..=MAX_TS + 1 {
                        prop_assert_eq!(
                            store.read(key, ts(t)),
                            model.read(key, ts(t)),
                            "read of key {} at {} after gc to {}",
                            k,
                            t,
                            horizon
                        );
                        // Tombstones at or below the horizon may be gone.
                        let want = model
                            .version(key, ts(t))
                            .filter(|(vt, v)| v.is_some() || *vt > model.horizon);
                        prop_assert_eq!(store.read_version(key, ts(t)), Ok(want));
                    }
                    if model.horizon > Timestamp::ZERO {
                        prop_assert!(store.read(key, model.horizon.prev()).is_err());
                    }
                }
            }
        }
        for &k in &KEYS {
            let latest = model
                .writes
                .iter()
                .filter(|(key, _, _)| key == k)
                .map(|(_, t, _)| *t)
                .max();
            // GC may drop a key whose newest version is a tombstone at or
            // below the horizon; otherwise the latest version is kept.
            let store_latest = store.latest_version_ts(k);
            if store_latest != latest {
                prop_assert_eq!(store_latest, None);
                let (t, v) = model.version(k, Timestamp::MAX).unwrap();
                prop_assert!(v.is_none() && t <= model.horizon);
            }
        }
        // The running count of live bytes is exact after every write,
        // delete and GC: it equals the model's and a recount.
        prop_assert_eq!(
            store.live_bytes(),
            model.live_bytes(),
            "live bytes after {:?}",
            op
        );
        prop_assert_eq!(store.live_bytes(), store.recount_live_bytes());
    }
    // A snapshot of the store (every version and the horizon) reloads into a
    // store that answers every read exactly as the original does.
    let mut versions = Vec::new();
    store.for_each_version(|k, t, v| versions.push((Bytes::copy_from_slice(k), t, v.cloned())));
    prop_assert!(
        versions.windows(2).all(|w| w[0].0 <= w[1].0),
        "keys in order"
    );
    prop_assert_eq!(versions.len(), store.version_count());
    let reloaded = MvccStore::<L>::load(store.gc_horizon(), versions).unwrap();
    prop_assert_eq!(reloaded.version_count(), store.version_count());
    prop_assert_eq!(reloaded.live_bytes(), store.live_bytes());
    for &k in &KEYS {
        for t in 0..=MAX_TS + 1 {
            prop_assert_eq!(
                reloaded.read_version(k, ts(t)),
                store.read_version(k, ts(t))
            );
        }
    }
    prop_assert_eq!(
        reloaded.scan::<(Bound<&[u8]>, Bound<&[u8]>)>(
            (Bound::Unbounded, Bound::Unbounded),
            ts(MAX_TS),
            100
        ),
        store.scan::<(Bound<&[u8]>, Bound<&[u8]>)>(
            (Bound::Unbounded, Bound::Unbounded),
            ts(MAX_TS),
            100
        )
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn btree_layout_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        check_against_model::<BTreeLayout>(&ops)?;
    }

    #[test]
    fn skiplist_layout_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        check_against_model::<SkipListLayout>(&ops)?;
    }

    #[test]
    fn hashed_btree_layout_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        check_against_model::<HashedBTreeLayout>(&ops)?;
    }
}

#[test]
fn size_midpoint_is_the_first_key_with_half_the_live_bytes_before_it_across_scan_pages() {
    let mut store = MvccStore::new();
    assert_eq!(store.size_midpoint(), None);
    // More keys than one scan page, equal sizes; a deleted key and an
    // overwritten one count only their newest live version.
    let keys = MIDPOINT_SCAN_PAGE as u64 * 3;
    for i in 0..keys {
        store
            .write(b(&format!("k{i:06}")), ts(10), Some(b("0123456789")))
            .unwrap();
    }
    store.write(b("k000000"), ts(20), None).unwrap();
    store
        .write(b("k000001"), ts(20), Some(b("0123456789")))
        .unwrap();
    let mid = store.size_midpoint().expect("a midpoint");
    let before: u64 = store
        .scan(
            (Bound::Unbounded, Bound::Excluded(mid.as_ref())),
            Timestamp::MAX,
            MAX_SCAN_ROWS,
        )
        .unwrap()
        .iter()
        .map(|(k, _, v)| (k.len() + v.len()) as u64)
        .sum();
    let total = store.live_bytes();
    assert!(before * 2 >= total, "{before} of {total} before {mid:?}");
    let row = (7 + 10) as u64;
    assert!(
        before * 2 < total + 2 * row,
        "{before} of {total} before {mid:?}"
    );
    // One key: it is its own midpoint.
    let mut one = MvccStore::new();
    one.write(b("a"), ts(1), Some(b("v"))).unwrap();
    assert_eq!(one.size_midpoint(), Some(b("a")));
}
