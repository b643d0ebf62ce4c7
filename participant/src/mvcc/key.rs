//! The in-store key representation shared by both layouts.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use bytes::Bytes;

/// Keys up to this many bytes are stored inside the index node itself.
///
/// A point read compares the probe against a few dozen stored keys on its
/// way down the index; if each stored key's bytes sat behind a pointer, each
/// comparison would be a cache miss, and a read at 1M keys took ~2 µs. 38
/// bytes fit YCSB's keys (`user` + up to 19 digits) and typical
/// table/row-id keys, and make [`StoreKey`] exactly 40 bytes.
pub(crate) const INLINE_KEY_LEN: usize = 38;

/// A key: inline if short, else a shared `Bytes`. Ordered, compared and
/// borrowed as its byte string, so maps keyed by it are searched by `&[u8]`.
#[derive(Clone)]
pub(crate) enum StoreKey {
    Inline { len: u8, buf: [u8; INLINE_KEY_LEN] },
    Heap(Bytes),
}

impl StoreKey {
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            StoreKey::Inline { len, buf } => &buf[..usize::from(*len)],
            StoreKey::Heap(b) => b,
        }
    }

    /// The key as `Bytes` (copies an inline key).
    pub(crate) fn to_bytes(&self) -> Bytes {
        match self {
            StoreKey::Inline { .. } => Bytes::copy_from_slice(self.as_slice()),
            StoreKey::Heap(b) => b.clone(),
        }
    }
}

impl From<Bytes> for StoreKey {
    #[inline]
    fn from(key: Bytes) -> Self {
        if key.len() <= INLINE_KEY_LEN {
            let mut buf = [0; INLINE_KEY_LEN];
            buf[..key.len()].copy_from_slice(&key);
            StoreKey::Inline {
                len: key.len() as u8,
                buf,
            }
        } else {
            StoreKey::Heap(key)
        }
    }
}

impl Borrow<[u8]> for StoreKey {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Hashes like its byte string, as `Borrow<[u8]>` requires.
impl Hash for StoreKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialEq for StoreKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for StoreKey {}

impl PartialOrd for StoreKey {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Byte-string order, as `Borrow<[u8]>` requires.
impl Ord for StoreKey {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Bytes::copy_from_slice(self.as_slice()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_key_is_40_bytes_and_orders_like_its_bytes() {
        assert_eq!(std::mem::size_of::<StoreKey>(), 40);
        let long = vec![b'z'; INLINE_KEY_LEN + 1];
        let keys: Vec<StoreKey> = [&b""[..], b"a", b"a\0", b"ab", &long, b"b"]
            .iter()
            .map(|k| StoreKey::from(Bytes::copy_from_slice(k)))
            .collect();
        assert!(matches!(keys[4], StoreKey::Heap(_)));
        assert!(matches!(keys[3], StoreKey::Inline { .. }));
        for (i, a) in keys.iter().enumerate() {
            assert_eq!(a.to_bytes(), a.as_slice());
            for b in &keys[i..] {
                assert_eq!(a.cmp(b), a.as_slice().cmp(b.as_slice()));
            }
        }
    }
}
