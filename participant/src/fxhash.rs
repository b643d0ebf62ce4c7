//! A small, fast, non-cryptographic hasher for the participant's hash maps.
//!
//! In the spirit of rustc's FxHash (`rustc-hash`): a few cycles per 8-byte
//! word and no per-map random seed, for the lock table and the MVCC store's
//! hash index, which sit on the hot path of every transactional read and
//! every applied write; SipHash would be a visible share of the lock
//! table's 150 ns budget.
//!
//! It has no per-map random seed, so a map's iteration order depends only on
//! what was inserted: the transaction layer uses it too, so that one seed
//! replays one run exactly in the simulator (std's `RandomState` would not).
//!
//! Not resistant to hash flooding: a client that may write could choose
//! keys that collide. Meridian's clients are authenticated (mutual TLS,
//! docs/design.md §6); if that ever is not enough, seed the state from the
//! driver's RNG (the cores take randomness as an input).
//!
//! Each word is mixed with a *folded* multiply (the 128-bit product's halves
//! xored, as in `rustc-hash` 2 and wyhash) rather than FxHash 1's plain
//! 64-bit multiply: std's `HashMap` picks the bucket from the low bits, and
//! a plain multiply only carries entropy upwards, so keys differing only in
//! their last bytes (`user…01`, `user…02`) would share their low bits and
//! pile into a few buckets. The folded product's low half depends on every
//! input bit.

use std::hash::{BuildHasherDefault, Hasher};

/// Multiplier from `rustc-hash` 2.0 (an odd constant with good bit spread).
const MULTIPLIER: u64 = 0xf135_7aea_2e62_a9c5;

/// Initial state, so that a leading zero word still changes the state.
const SEED: u64 = 0x243f_6a88_85a3_08d3;

/// The two halves of the 128-bit product `a * b`, xored.
#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// FxHash state.
#[derive(Clone, Copy, Debug)]
pub struct FxHasher {
    hash: u64,
}

impl Default for FxHasher {
    #[inline]
    fn default() -> Self {
        FxHasher { hash: SEED }
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = folded_multiply(self.hash ^ word, MULTIPLIER);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, mut bytes: &[u8]) {
        while let Some((word, rest)) = bytes.split_first_chunk::<8>() {
            self.add(u64::from_le_bytes(*word));
            bytes = rest;
        }
        if let Some((word, rest)) = bytes.split_first_chunk::<4>() {
            self.add(u64::from(u32::from_le_bytes(*word)));
            bytes = rest;
        }
        if let Some((word, rest)) = bytes.split_first_chunk::<2>() {
            self.add(u64::from(u16::from_le_bytes(*word)));
            bytes = rest;
        }
        if let Some(&byte) = bytes.first() {
            self.add(u64::from(byte));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// `BuildHasher` for `HashMap<K, V, FxBuildHasher>`.
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// A `HashMap` using [`FxHasher`].
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash + ?Sized>(t: &T) -> u64 {
        FxBuildHasher::default().hash_one(t)
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
}
