//! The key and value arguments of the client's operations: owned or
//! borrowed bytes and text, and key ranges.

use std::borrow::Cow;
use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

use bytes::{Bytes, BytesMut};

/// A key or a value as the client's operations take it: owned data
/// (`Bytes`, `Vec<u8>`, `String`, …) is taken without a copy, borrowed
/// data (`&str`, `&[u8]`, `&String`, `&Vec<u8>`, byte arrays, …) is copied
/// once, as `etcd-client` and `foundationdb` take `impl Into<Vec<u8>>` and
/// `impl AsRef<[u8]>`.
///
/// `Bytes` itself only converts from `&'static` data; this trait is what
/// lets a key built at run time be passed by reference:
///
/// ```
/// use meridian_client::IntoBytes;
///
/// let name = String::from("alice");
/// let key = format!("acct/{name}");
/// assert_eq!(key.as_str().into_bytes(), &b"acct/alice"[..]);
/// assert_eq!((&key).into_bytes(), IntoBytes::into_bytes(key.clone()));
/// assert_eq!(b"acct/bob".into_bytes(), (&b"acct/bob"[..]).into_bytes());
/// ```
pub trait IntoBytes {
    /// The bytes: the same allocation for owned data, a copy of borrowed.
    /// (`String` has an inherent `into_bytes` answering a `Vec<u8>`: call
    /// this one as `IntoBytes::into_bytes(s)` on a `String`.)
    fn into_bytes(self) -> Bytes;
}

impl IntoBytes for Bytes {
    fn into_bytes(self) -> Bytes {
        self
    }
}

impl IntoBytes for &Bytes {
    /// A reference-counted clone, no copy.
    fn into_bytes(self) -> Bytes {
        self.clone()
    }
}

impl IntoBytes for BytesMut {
    fn into_bytes(self) -> Bytes {
        self.freeze()
    }
}

impl IntoBytes for Vec<u8> {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoBytes for Box<[u8]> {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoBytes for String {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoBytes for &str {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl IntoBytes for &[u8] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl IntoBytes for &String {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl IntoBytes for &Vec<u8> {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl<const N: usize> IntoBytes for [u8; N] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(&self)
    }
}

impl<const N: usize> IntoBytes for &[u8; N] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl IntoBytes for Cow<'_, [u8]> {
    fn into_bytes(self) -> Bytes {
        match self {
            Cow::Borrowed(b) => Bytes::copy_from_slice(b),
            Cow::Owned(v) => Bytes::from(v),
        }
    }
}

impl IntoBytes for Cow<'_, str> {
    fn into_bytes(self) -> Bytes {
        match self {
            Cow::Borrowed(s) => Bytes::copy_from_slice(s.as_bytes()),
            Cow::Owned(s) => Bytes::from(s),
        }
    }
}

/// A range of keys for [`crate::Txn::scan`]: `start..end`, `start..`,
/// `..end`, `..`, and the inclusive `start..=end` and `..=end`, with ends
/// of any [`IntoBytes`] type. An empty or missing start is the first key
/// (past the system keyspace); a missing end is past the last key.
pub trait KeyRange {
    /// The range as `[start, end)`; `None`: no upper bound.
    fn into_bounds(self) -> (Bytes, Option<Bytes>);
}

/// The first key after `key`: `key` followed by a zero byte.
fn successor(key: Bytes) -> Bytes {
    let mut next = BytesMut::with_capacity(key.len() + 1);
    next.extend_from_slice(&key);
    next.extend_from_slice(&[0]);
    next.freeze()
}

impl<K: IntoBytes> KeyRange for Range<K> {
    fn into_bounds(self) -> (Bytes, Option<Bytes>) {
        (self.start.into_bytes(), Some(self.end.into_bytes()))
    }
}

impl<K: IntoBytes> KeyRange for RangeInclusive<K> {
    fn into_bounds(self) -> (Bytes, Option<Bytes>) {
        let (start, end) = self.into_inner();
        (start.into_bytes(), Some(successor(end.into_bytes())))
    }
}

impl<K: IntoBytes> KeyRange for RangeFrom<K> {
    fn into_bounds(self) -> (Bytes, Option<Bytes>) {
        (self.start.into_bytes(), None)
    }
}

impl<K: IntoBytes> KeyRange for RangeTo<K> {
    fn into_bounds(self) -> (Bytes, Option<Bytes>) {
        (Bytes::new(), Some(self.end.into_bytes()))
    }
}

impl<K: IntoBytes> KeyRange for RangeToInclusive<K> {
    fn into_bounds(self) -> (Bytes, Option<Bytes>) {
        (Bytes::new(), Some(successor(self.end.into_bytes())))
    }
}

impl KeyRange for RangeFull {
    fn into_bounds(self) -> (Bytes, Option<Bytes>) {
        (Bytes::new(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_and_owned_keys_give_the_same_bytes() {
        let s = String::from("k1");
        let v = b"k1".to_vec();
        let want = Bytes::from_static(b"k1");
        assert_eq!(s.as_str().into_bytes(), want);
        assert_eq!((&s).into_bytes(), want);
        assert_eq!(IntoBytes::into_bytes(s.clone()), want);
        assert_eq!(v.as_slice().into_bytes(), want);
        assert_eq!((&v).into_bytes(), want);
        assert_eq!(v.clone().into_bytes(), want);
        assert_eq!(*b"k1".into_bytes(), *want);
        assert_eq!([b'k', b'1'].into_bytes(), want);
        assert_eq!((&want).into_bytes(), want);
        assert_eq!(Cow::Borrowed("k1").into_bytes(), want);
    }

    #[test]
    fn key_ranges_are_half_open_with_an_inclusive_end_moved_past_its_key() {
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert_eq!(("a".."b").into_bounds(), (b("a"), Some(b("b"))));
        assert_eq!(("a"..="b").into_bounds(), (b("a"), Some(b("b\0"))));
        assert_eq!(("a"..).into_bounds(), (b("a"), None));
        assert_eq!((.."b").into_bounds(), (b(""), Some(b("b"))));
        assert_eq!((..="b").into_bounds(), (b(""), Some(b("b\0"))));
        assert_eq!((..).into_bounds(), (b(""), None));
    }
}
