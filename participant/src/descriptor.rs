//! The range descriptor of a participant group (docs/design.md §9): which
//! keys the group serves, and a generation that rises with every change of
//! its range.
//!
//! The descriptor is replicated state ([`crate::GroupState::descriptor`]):
//! every replica applies the same splits at the same slots, so every
//! replica of one group agrees on it at each slot. A replica refuses a key
//! outside its applied descriptor; that alone keeps a stale directory or
//! client cache from having a key served by two groups, or by none.

use bytes::Bytes;

/// The first generation of a group created by the cluster's bootstrap
/// (its node configuration). Every split raises the parent's generation by
/// one and gives the child the parent's new generation.
pub const INITIAL_GENERATION: u64 = 1;

/// The key range `[start, end)` a group serves (`end` `None`: no upper
/// bound), with the generation of the range's last change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RangeDescriptor {
    /// The group that serves the range.
    pub group: u64,
    /// The first key of the range (empty: from the first key there is).
    pub start: Bytes,
    /// The bound after the last key of the range, if any.
    pub end: Option<Bytes>,
    /// Rises with every change of the range (splits).
    pub generation: u64,
}

impl RangeDescriptor {
    /// The whole key space, served by `group`, at the initial generation.
    pub fn whole(group: u64) -> RangeDescriptor {
        RangeDescriptor {
            group,
            start: Bytes::new(),
            end: None,
            generation: INITIAL_GENERATION,
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= &self.start[..] && self.end.as_ref().is_none_or(|e| key < &e[..])
    }

    /// Whether every key of the span `[start, end)` (`end` `None`: no upper
    /// bound) lies in the range. An empty span (`end ≤ start`) holds no key
    /// and lies in every range.
    pub fn contains_span(&self, start: &[u8], end: Option<&[u8]>) -> bool {
        if end.is_some_and(|e| e <= start) {
            return true;
        }
        if start < &self.start[..] {
            return false;
        }
        match (&self.end, end) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => theirs <= &mine[..],
        }
    }

    /// Whether `key` is a valid split key: strictly inside the range, not
    /// at its start (both halves non-empty in key space).
    pub fn can_split_at(&self, key: &[u8]) -> bool {
        key > &self.start[..] && self.contains(key)
    }

    /// The two halves of a split at `key` into `[start, key)`, kept by this
    /// group, and `[key, end)`, served by `child`; both at the next
    /// generation. `None` unless [`can_split_at`](Self::can_split_at).
    pub fn split_at(&self, key: &Bytes, child: u64) -> Option<(RangeDescriptor, RangeDescriptor)> {
        if !self.can_split_at(key) {
            return None;
        }
        let generation = self.generation + 1;
        let left = RangeDescriptor {
            group: self.group,
            start: self.start.clone(),
            end: Some(key.clone()),
            generation,
        };
        let right = RangeDescriptor {
            group: child,
            start: key.clone(),
            end: self.end.clone(),
            generation,
        };
        Some((left, right))
    }
}

impl std::fmt::Display for RangeDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "group {} [{:?}, ", self.group, self.start)?;
        match &self.end {
            Some(e) => write!(f, "{e:?})")?,
            None => write!(f, "∞)")?,
        }
        write!(f, " gen {}", self.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(start: &'static [u8], end: Option<&'static [u8]>) -> RangeDescriptor {
        RangeDescriptor {
            group: 1,
            start: Bytes::from_static(start),
            end: end.map(Bytes::from_static),
            generation: 1,
        }
    }

    #[test]
    fn a_range_holds_its_start_and_not_its_end() {
        let r = d(b"b", Some(b"d"));
        assert!(!r.contains(b"a"));
        assert!(r.contains(b"b"));
        assert!(r.contains(b"c\xff"));
        assert!(!r.contains(b"d"));
        assert!(d(b"", None).contains(b""));
        assert!(r.contains_span(b"b", Some(b"d")));
        assert!(!r.contains_span(b"b", None));
        assert!(!r.contains_span(b"a", Some(b"c")));
        assert!(r.contains_span(b"z", Some(b"a")), "an empty span");
        assert!(d(b"", None).contains_span(b"", None));
    }

    #[test]
    fn a_split_key_must_lie_strictly_inside() {
        let r = d(b"b", Some(b"d"));
        assert!(r.split_at(&Bytes::from_static(b"b"), 2).is_none());
        assert!(r.split_at(&Bytes::from_static(b"d"), 2).is_none());
        assert!(r.split_at(&Bytes::from_static(b"a"), 2).is_none());
        let (l, rr) = r.split_at(&Bytes::from_static(b"c"), 2).unwrap();
        assert_eq!((l.end.as_deref(), l.generation), (Some(&b"c"[..]), 2));
        assert_eq!(
            (rr.group, &rr.start[..], rr.end.as_deref()),
            (2, &b"c"[..], Some(&b"d"[..]))
        );
    }
}
