//! The unseeded hasher the cores' hash maps use: `rustc-hash`'s FxHasher,
//! re-exported so the crates share one name and one version of it.
//!
//! A few cycles per word instead of SipHash's rounds, for the lock table
//! and the MVCC store's hash index, which sit on the hot path of every
//! transactional read and every applied write; SipHash would be a visible
//! share of the lock table's 150 ns budget.
//!
//! It has no per-map random seed, so a map's iteration order depends only on
//! what was inserted: the transaction layer uses it too, so that one seed
//! replays one run exactly in the simulator (std's `RandomState` would not).
//! `Cargo.lock` pins the crate's version, so a replay also hashes the same
//! across builds.
//!
//! Not resistant to hash flooding: a client that may write could choose
//! keys that collide. Meridian's clients are authenticated (mutual TLS,
//! docs/design.md §6); if that ever is not enough, seed the state from the
//! driver's RNG (the cores take randomness as an input).
//!
//! `rustc-hash` 2 mixes each word with a multiply and rotates the result
//! before the map takes the bucket from the low bits, so keys differing
//! only in their last bytes (`user…01`, `user…02`) do not pile into a few
//! buckets, as they would with FxHash 1's plain multiply (the tests below
//! check it).

pub use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet, FxHasher};

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash + ?Sized>(t: &T) -> u64 {
        FxBuildHasher.hash_one(t)
    }

    #[test]
    fn keys_differing_in_last_byte_spread_over_low_bits() {
        // The bucket index of a 1024-bucket table is the low 10 bits.
        let buckets: HashSet<u64> = (0..1024u32)
            .map(|i| hash(format!("user{i:012}").as_bytes()) & 1023)
            .collect();
        assert!(
            buckets.len() > 500,
            "only {} distinct buckets",
            buckets.len()
        );
    }

    #[test]
    fn equal_inputs_hash_equal_and_bytes_hash_like_slices() {
        let b = bytes::Bytes::from_static(b"some key 17");
        assert_eq!(hash(&b), hash(&b"some key 17"[..]));
        assert_ne!(hash(&b"a"[..]), hash(&b"b"[..]));
        assert_ne!(hash(&1u64), hash(&2u64));
    }

    #[test]
    fn unseeded_so_every_map_iterates_alike() {
        // Two maps built from the same inserts iterate in the same order:
        // no per-map random state, unlike std's `RandomState`.
        let build = || {
            let mut m = FxHashMap::default();
            for i in 0..1000u64 {
                m.insert(format!("user{i:08}"), i);
            }
            m.into_iter().collect::<Vec<_>>()
        };
        assert_eq!(build(), build());
    }
}
