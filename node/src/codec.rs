//! The node's binary encoding of the cores' types: what the write-ahead log
//! stores ([`Entry`], [`HardState`], [`Snapshot`]) and what the peer
//! transport sends ([`Message`], [`GroupMessage`]).
//!
//! Explicit and little-endian: integers are fixed-width, byte strings and
//! lists carry a `u32` length (snapshot data a `u64` one), enums a one-byte
//! tag, options a presence byte. A message starts with
//! [`MESSAGE_FORMAT_VERSION`]. Decoding checks every length against the
//! bytes left before it allocates or slices, so bad input of any kind gives
//! a [`DecodeError`], never a panic.

use bytes::{BufMut, Bytes, BytesMut};
use meridian_participant::{Decision, Priority, TxnId, Write};
use meridian_paxos::{Ballot, Body, Entry, HardState, Membership, Message, Payload, Snapshot};
use meridian_truetime::Timestamp;
use meridian_txn::{AbortReason, CcMode, GroupMessage, Vote};

/// The first byte of every encoded [`Message`] and [`GroupMessage`]; a peer
/// refuses a version it does not know.
pub const MESSAGE_FORMAT_VERSION: u8 = 1;

/// Body tag of [`Body::TakeOver`]. Hand-over added it and
/// [`PREPARE_HAND_OVER_TAG`] without a new format version: every other
/// message encodes as before, and a peer that predates them refuses only
/// these (its leader-stickiness then holds, and leadership moves by
/// election as it did).
const TAKE_OVER_TAG: u8 = 5;
/// Body tag of a [`Body::Prepare`] with `hand_over` set (tag 0 is one
/// without); the layout is the same.
const PREPARE_HAND_OVER_TAG: u8 = 6;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("truncated {what} at offset {offset}: needed {needed} more bytes")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Where the field started.
        offset: usize,
        /// Bytes missing.
        needed: usize,
    },
    /// The first byte names a format this build does not know.
    #[error("unknown format version {0}")]
    Version(u8),
    /// A tag byte names no known variant.
    #[error("unknown {what} tag {tag} at offset {offset}")]
    Tag {
        /// What the tag selects.
        what: &'static str,
        /// The tag read.
        tag: u8,
        /// Where the tag is.
        offset: usize,
    },
    /// The fields decode but break a rule of the type.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// Bytes were left over after a complete value.
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
}

// ---------------------------------------------------------------- writing

/// Appends a length or count as `u32`. Every length the cores produce is
/// bounded far below 4 GiB (values ≤ 256 KiB, ≤ 1000 operations per
/// transaction); a larger one is a bug upstream, not bad input.
fn put_len(buf: &mut BytesMut, n: usize) {
    let n = u32::try_from(n).expect("lengths and counts are bounded far below 4 GiB");
    buf.put_u32_le(n);
}

fn put_bool(buf: &mut BytesMut, b: bool) {
    buf.put_u8(u8::from(b));
}

fn put_ts(buf: &mut BytesMut, t: Timestamp) {
    buf.put_u64_le(t.as_nanos());
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    put_len(buf, b.len());
    buf.put_slice(b);
}

fn put_ballot(buf: &mut BytesMut, b: Ballot) {
    buf.put_u64_le(b.round);
    buf.put_u64_le(b.node);
}

fn put_membership(buf: &mut BytesMut, m: &Membership) {
    buf.put_u64_le(m.epoch);
    put_len(buf, m.voters.len());
    for v in &m.voters {
        buf.put_u64_le(*v);
    }
}

fn put_payload(buf: &mut BytesMut, p: &Payload) {
    match p {
        Payload::Noop => buf.put_u8(0),
        Payload::Command(c) => {
            buf.put_u8(1);
            put_bytes(buf, c);
        }
        Payload::Config(m) => {
            buf.put_u8(2);
            put_membership(buf, m);
        }
    }
}

/// Appends one [`Entry`].
pub fn encode_entry(e: &Entry, buf: &mut BytesMut) {
    buf.put_u64_le(e.slot);
    put_ballot(buf, e.ballot);
    put_ts(buf, e.ts);
    put_payload(buf, &e.payload);
}

/// Appends a list of entries: a count, then each [`Entry`].
pub fn encode_entries(entries: &[Entry], buf: &mut BytesMut) {
    put_len(buf, entries.len());
    for e in entries {
        encode_entry(e, buf);
    }
}

/// Appends a [`HardState`].
pub fn encode_hard_state(hs: &HardState, buf: &mut BytesMut) {
    put_ballot(buf, hs.promised);
}

/// Appends a [`Snapshot`], its data with a `u64` length (a snapshot holds a
/// whole group's state and may exceed 4 GiB).
pub fn encode_snapshot(s: &Snapshot, buf: &mut BytesMut) {
    buf.put_u64_le(s.last_slot);
    put_ballot(buf, s.last_ballot);
    put_ts(buf, s.last_ts);
    put_membership(buf, &s.membership);
    buf.put_u64_le(s.data.len() as u64);
    buf.put_slice(&s.data);
}

/// Appends a Paxos [`Message`], starting with [`MESSAGE_FORMAT_VERSION`].
pub fn encode_message(m: &Message, buf: &mut BytesMut) {
    buf.put_u8(MESSAGE_FORMAT_VERSION);
    buf.put_u64_le(m.cluster_id);
    buf.put_u64_le(m.epoch);
    buf.put_u64_le(m.from);
    buf.put_u64_le(m.to);
    put_ballot(buf, m.ballot);
    match &m.body {
        Body::Prepare {
            last_slot,
            last_ballot,
            pre_vote,
            hand_over,
        } => {
            // A hand-over's prepare has a tag of its own, so that every
            // other prepare keeps the bytes it had before hand-overs.
            buf.put_u8(if *hand_over { PREPARE_HAND_OVER_TAG } else { 0 });
            buf.put_u64_le(*last_slot);
            put_ballot(buf, *last_ballot);
            put_bool(buf, *pre_vote);
        }
        Body::Promise {
            granted,
            pre_vote,
            lease_until,
        } => {
            buf.put_u8(1);
            put_bool(buf, *granted);
            put_bool(buf, *pre_vote);
            put_ts(buf, *lease_until);
        }
        Body::Accept {
            prev_slot,
            prev_ballot,
            entries,
            commit,
            lease_start,
        } => {
            buf.put_u8(2);
            buf.put_u64_le(*prev_slot);
            put_ballot(buf, *prev_ballot);
            encode_entries(entries, buf);
            buf.put_u64_le(*commit);
            put_ts(buf, *lease_start);
        }
        Body::Accepted {
            ok,
            upto,
            lease_start,
        } => {
            buf.put_u8(3);
            put_bool(buf, *ok);
            buf.put_u64_le(*upto);
            put_ts(buf, *lease_start);
        }
        Body::InstallSnapshot {
            snapshot,
            lease_start,
        } => {
            buf.put_u8(4);
            encode_snapshot(snapshot, buf);
            put_ts(buf, *lease_start);
        }
        Body::TakeOver { last_slot } => {
            buf.put_u8(TAKE_OVER_TAG);
            buf.put_u64_le(*last_slot);
        }
    }
}

fn put_txn(buf: &mut BytesMut, t: TxnId) {
    buf.put_u64_le(t.origin);
    buf.put_u64_le(t.seq);
}

fn put_abort_reason(buf: &mut BytesMut, r: AbortReason) {
    buf.put_u8(match r {
        AbortReason::Wounded => 0,
        AbortReason::LeaderChanged => 1,
        AbortReason::Inactive => 2,
        AbortReason::ClientAbort => 3,
        AbortReason::Overloaded => 4,
        AbortReason::Unknown => 5,
        AbortReason::Conflict => 6,
    });
}

/// Appends a two-phase-commit [`GroupMessage`], starting with
/// [`MESSAGE_FORMAT_VERSION`].
pub fn encode_group_message(m: &GroupMessage, buf: &mut BytesMut) {
    buf.put_u8(MESSAGE_FORMAT_VERSION);
    match m {
        GroupMessage::Prepare {
            txn,
            coordinator,
            priority,
            term,
            mode,
            deadline,
            writes,
        } => {
            buf.put_u8(0);
            put_txn(buf, *txn);
            buf.put_u64_le(*coordinator);
            put_ts(buf, priority.0);
            match term {
                None => buf.put_u8(0),
                Some(t) => {
                    buf.put_u8(1);
                    buf.put_u64_le(*t);
                }
            }
            buf.put_u8(match mode {
                CcMode::Locking => 0,
                CcMode::Optimistic => 1,
            });
            put_ts(buf, *deadline);
            put_len(buf, writes.len());
            for w in writes {
                put_bytes(buf, &w.key);
                match &w.value {
                    None => buf.put_u8(0),
                    Some(v) => {
                        buf.put_u8(1);
                        put_bytes(buf, v);
                    }
                }
            }
        }
        GroupMessage::Vote { txn, from, vote } => {
            buf.put_u8(1);
            put_txn(buf, *txn);
            buf.put_u64_le(*from);
            match vote {
                Vote::Yes(ts) => {
                    buf.put_u8(0);
                    put_ts(buf, *ts);
                }
                Vote::No(reason) => {
                    buf.put_u8(1);
                    put_abort_reason(buf, *reason);
                }
            }
        }
        GroupMessage::Decide {
            txn,
            coordinator,
            decision,
            deadline,
        } => {
            buf.put_u8(2);
            put_txn(buf, *txn);
            buf.put_u64_le(*coordinator);
            match decision {
                Decision::Commit(s) => {
                    buf.put_u8(0);
                    put_ts(buf, *s);
                }
                Decision::Abort => buf.put_u8(1),
            }
            put_ts(buf, *deadline);
        }
        GroupMessage::Ack { txn, from } => {
            buf.put_u8(3);
            put_txn(buf, *txn);
            buf.put_u64_le(*from);
        }
        GroupMessage::Wound { txn } => {
            buf.put_u8(4);
            put_txn(buf, *txn);
        }
        GroupMessage::Query {
            txn,
            from,
            deadline,
        } => {
            buf.put_u8(5);
            put_txn(buf, *txn);
            buf.put_u64_le(*from);
            put_ts(buf, *deadline);
        }
    }
}

// ---------------------------------------------------------------- reading

/// Reads fields from a byte slice; every read is bounds-checked.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(src: &'a [u8]) -> Reader<'a> {
        Reader { src, pos: 0 }
    }

    fn rest(&self) -> usize {
        self.src.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest() < n {
            return Err(DecodeError::Truncated {
                what,
                offset: self.pos,
                needed: n - self.rest(),
            });
        }
        let s = &self.src[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let mut a = [0u8; 2];
        a.copy_from_slice(self.take(2, what)?);
        Ok(u16::from_le_bytes(a))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(a))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(a))
    }

    /// A tag byte, with its offset for the error if it names nothing.
    fn tag(&mut self, what: &'static str) -> Result<(u8, usize), DecodeError> {
        let at = self.pos;
        Ok((self.u8(what)?, at))
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.tag(what)? {
            (0, _) => Ok(false),
            (1, _) => Ok(true),
            (tag, offset) => Err(DecodeError::Tag { what, tag, offset }),
        }
    }

    fn ts(&mut self, what: &'static str) -> Result<Timestamp, DecodeError> {
        self.u64(what).map(Timestamp::from_nanos)
    }

    /// A count of items, checked against the bytes left (each item takes at
    /// least `min_item` bytes), so a corrupt count cannot make the caller
    /// allocate without bound.
    pub(crate) fn count(
        &mut self,
        what: &'static str,
        min_item: usize,
    ) -> Result<usize, DecodeError> {
        let n = self.u32(what)? as usize;
        let need = n.saturating_mul(min_item.max(1));
        if need > self.rest() {
            return Err(DecodeError::Truncated {
                what,
                offset: self.pos,
                needed: need - self.rest(),
            });
        }
        Ok(n)
    }

    fn bytes(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u32(what)? as usize;
        Ok(Bytes::copy_from_slice(self.take(len, what)?))
    }

    fn ballot(&mut self) -> Result<Ballot, DecodeError> {
        Ok(Ballot::new(
            self.u64("ballot round")?,
            self.u64("ballot node")?,
        ))
    }

    fn membership(&mut self) -> Result<Membership, DecodeError> {
        let epoch = self.u64("membership epoch")?;
        let n = self.count("voters", 8)?;
        let mut voters = Vec::with_capacity(n);
        for _ in 0..n {
            voters.push(self.u64("voter")?);
        }
        // `Membership::new` keeps voters sorted and unique; a decoded one
        // must already be, or equality and quorum counts would be off.
        if voters.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DecodeError::Invalid(
                "membership voters not sorted and unique",
            ));
        }
        Ok(Membership { epoch, voters })
    }

    fn payload(&mut self) -> Result<Payload, DecodeError> {
        match self.tag("payload")? {
            (0, _) => Ok(Payload::Noop),
            (1, _) => Ok(Payload::Command(self.bytes("command")?)),
            (2, _) => Ok(Payload::Config(self.membership()?)),
            (tag, offset) => Err(DecodeError::Tag {
                what: "payload",
                tag,
                offset,
            }),
        }
    }

    pub(crate) fn entry(&mut self) -> Result<Entry, DecodeError> {
        Ok(Entry {
            slot: self.u64("entry slot")?,
            ballot: self.ballot()?,
            ts: self.ts("entry ts")?,
            payload: self.payload()?,
        })
    }

    pub(crate) fn entries(&mut self) -> Result<Vec<Entry>, DecodeError> {
        // slot, ballot, ts and a payload tag at least.
        let n = self.count("entries", 8 + 16 + 8 + 1)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(self.entry()?);
        }
        Ok(entries)
    }

    pub(crate) fn hard_state(&mut self) -> Result<HardState, DecodeError> {
        Ok(HardState {
            promised: self.ballot()?,
        })
    }

    pub(crate) fn snapshot(&mut self) -> Result<Snapshot, DecodeError> {
        let last_slot = self.u64("snapshot last_slot")?;
        let last_ballot = self.ballot()?;
        let last_ts = self.ts("snapshot last_ts")?;
        let membership = self.membership()?;
        let len = self.u64("snapshot data")?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Invalid("snapshot length"))?;
        let data = Bytes::copy_from_slice(self.take(len, "snapshot data")?);
        Ok(Snapshot {
            last_slot,
            last_ballot,
            last_ts,
            membership,
            data,
        })
    }

    fn version(&mut self) -> Result<(), DecodeError> {
        match self.u8("format version")? {
            MESSAGE_FORMAT_VERSION => Ok(()),
            v => Err(DecodeError::Version(v)),
        }
    }

    fn message(&mut self) -> Result<Message, DecodeError> {
        self.version()?;
        let cluster_id = self.u64("cluster id")?;
        let epoch = self.u64("epoch")?;
        let from = self.u64("from")?;
        let to = self.u64("to")?;
        let ballot = self.ballot()?;
        let body = match self.tag("message body")? {
            (tag @ (0 | PREPARE_HAND_OVER_TAG), _) => Body::Prepare {
                last_slot: self.u64("last_slot")?,
                last_ballot: self.ballot()?,
                pre_vote: self.bool("pre_vote")?,
                hand_over: tag == PREPARE_HAND_OVER_TAG,
            },
            (1, _) => Body::Promise {
                granted: self.bool("granted")?,
                pre_vote: self.bool("pre_vote")?,
                lease_until: self.ts("lease_until")?,
            },
            (2, _) => Body::Accept {
                prev_slot: self.u64("prev_slot")?,
                prev_ballot: self.ballot()?,
                entries: self.entries()?,
                commit: self.u64("commit")?,
                lease_start: self.ts("lease_start")?,
            },
            (3, _) => Body::Accepted {
                ok: self.bool("ok")?,
                upto: self.u64("upto")?,
                lease_start: self.ts("lease_start")?,
            },
            (4, _) => Body::InstallSnapshot {
                snapshot: self.snapshot()?,
                lease_start: self.ts("lease_start")?,
            },
            (TAKE_OVER_TAG, _) => Body::TakeOver {
                last_slot: self.u64("last_slot")?,
            },
            (tag, offset) => {
                return Err(DecodeError::Tag {
                    what: "message body",
                    tag,
                    offset,
                });
            }
        };
        Ok(Message {
            cluster_id,
            epoch,
            from,
            to,
            ballot,
            body,
        })
    }

    fn txn(&mut self) -> Result<TxnId, DecodeError> {
        Ok(TxnId::new(self.u64("txn origin")?, self.u64("txn seq")?))
    }

    fn abort_reason(&mut self) -> Result<AbortReason, DecodeError> {
        Ok(match self.tag("abort reason")? {
            (0, _) => AbortReason::Wounded,
            (1, _) => AbortReason::LeaderChanged,
            (2, _) => AbortReason::Inactive,
            (3, _) => AbortReason::ClientAbort,
            (4, _) => AbortReason::Overloaded,
            (5, _) => AbortReason::Unknown,
            (6, _) => AbortReason::Conflict,
            (tag, offset) => {
                return Err(DecodeError::Tag {
                    what: "abort reason",
                    tag,
                    offset,
                });
            }
        })
    }

    fn write(&mut self) -> Result<Write, DecodeError> {
        let key = self.bytes("write key")?;
        let value = match self.tag("write value")? {
            (0, _) => None,
            (1, _) => Some(self.bytes("write value")?),
            (tag, offset) => {
                return Err(DecodeError::Tag {
                    what: "write value",
                    tag,
                    offset,
                });
            }
        };
        Ok(Write { key, value })
    }

    fn group_message(&mut self) -> Result<GroupMessage, DecodeError> {
        self.version()?;
        Ok(match self.tag("group message")? {
            (0, _) => {
                let txn = self.txn()?;
                let coordinator = self.u64("coordinator")?;
                let priority = Priority::new(self.ts("priority")?);
                let term = match self.tag("term")? {
                    (0, _) => None,
                    (1, _) => Some(self.u64("term")?),
                    (tag, offset) => {
                        return Err(DecodeError::Tag {
                            what: "term",
                            tag,
                            offset,
                        });
                    }
                };
                let mode = match self.tag("cc mode")? {
                    (0, _) => CcMode::Locking,
                    (1, _) => CcMode::Optimistic,
                    (tag, offset) => {
                        return Err(DecodeError::Tag {
                            what: "cc mode",
                            tag,
                            offset,
                        });
                    }
                };
                let deadline = self.ts("deadline")?;
                // a key length and a value tag at least.
                let n = self.count("writes", 4 + 1)?;
                let mut writes = Vec::with_capacity(n);
                for _ in 0..n {
                    writes.push(self.write()?);
                }
                GroupMessage::Prepare {
                    txn,
                    coordinator,
                    priority,
                    term,
                    mode,
                    deadline,
                    writes,
                }
            }
            (1, _) => {
                let txn = self.txn()?;
                let from = self.u64("from")?;
                let vote = match self.tag("vote")? {
                    (0, _) => Vote::Yes(self.ts("prepare ts")?),
                    (1, _) => Vote::No(self.abort_reason()?),
                    (tag, offset) => {
                        return Err(DecodeError::Tag {
                            what: "vote",
                            tag,
                            offset,
                        });
                    }
                };
                GroupMessage::Vote { txn, from, vote }
            }
            (2, _) => {
                let txn = self.txn()?;
                let coordinator = self.u64("coordinator")?;
                let decision = match self.tag("decision")? {
                    (0, _) => Decision::Commit(self.ts("commit ts")?),
                    (1, _) => Decision::Abort,
                    (tag, offset) => {
                        return Err(DecodeError::Tag {
                            what: "decision",
                            tag,
                            offset,
                        });
                    }
                };
                GroupMessage::Decide {
                    txn,
                    coordinator,
                    decision,
                    deadline: self.ts("deadline")?,
                }
            }
            (3, _) => GroupMessage::Ack {
                txn: self.txn()?,
                from: self.u64("from")?,
            },
            (4, _) => GroupMessage::Wound { txn: self.txn()? },
            (5, _) => GroupMessage::Query {
                txn: self.txn()?,
                from: self.u64("from")?,
                deadline: self.ts("deadline")?,
            },
            (tag, offset) => {
                return Err(DecodeError::Tag {
                    what: "group message",
                    tag,
                    offset,
                });
            }
        })
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.rest() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Decodes exactly one value with `read`; leftover bytes are an error.
fn decode_whole<'a, T>(
    src: &'a [u8],
    read: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::new(src);
    let v = read(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// Decodes one [`Entry`] written by [`encode_entry`].
pub fn decode_entry(src: &[u8]) -> Result<Entry, DecodeError> {
    decode_whole(src, |r| r.entry())
}

/// Decodes a list written by [`encode_entries`].
pub fn decode_entries(src: &[u8]) -> Result<Vec<Entry>, DecodeError> {
    decode_whole(src, |r| r.entries())
}

/// Decodes a [`HardState`] written by [`encode_hard_state`].
pub fn decode_hard_state(src: &[u8]) -> Result<HardState, DecodeError> {
    decode_whole(src, |r| r.hard_state())
}

/// Decodes a [`Snapshot`] written by [`encode_snapshot`].
pub fn decode_snapshot(src: &[u8]) -> Result<Snapshot, DecodeError> {
    decode_whole(src, |r| r.snapshot())
}

/// Decodes a [`Message`] written by [`encode_message`].
pub fn decode_message(src: &[u8]) -> Result<Message, DecodeError> {
    decode_whole(src, |r| r.message())
}

/// Decodes a [`GroupMessage`] written by [`encode_group_message`].
pub fn decode_group_message(src: &[u8]) -> Result<GroupMessage, DecodeError> {
    decode_whole(src, |r| r.group_message())
}

#[cfg(test)]
pub(crate) mod strategies {
    //! proptest strategies for the encoded types, shared with the storage
    //! tests.

    use super::*;
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;

    pub(crate) fn ts() -> impl Strategy<Value = Timestamp> {
        any::<u64>().prop_map(Timestamp::from_nanos)
    }

    pub(crate) fn ballot() -> impl Strategy<Value = Ballot> {
        (any::<u64>(), any::<u64>()).prop_map(|(r, n)| Ballot::new(r, n))
    }

    pub(crate) fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
        vec(any::<u8>(), 0..max).prop_map(Bytes::from)
    }

    pub(crate) fn membership() -> impl Strategy<Value = Membership> {
        (any::<u64>(), vec(any::<u64>(), 0..6)).prop_map(|(e, v)| Membership::new(e, v))
    }

    pub(crate) fn payload() -> impl Strategy<Value = Payload> {
        prop_oneof![
            Just(Payload::Noop),
            bytes(64).prop_map(Payload::Command),
            membership().prop_map(Payload::Config),
        ]
    }

    pub(crate) fn entry() -> impl Strategy<Value = Entry> {
        (any::<u64>(), ballot(), ts(), payload()).prop_map(|(slot, ballot, ts, payload)| Entry {
            slot,
            ballot,
            ts,
            payload,
        })
    }

    pub(crate) fn hard_state() -> impl Strategy<Value = HardState> {
        ballot().prop_map(|promised| HardState { promised })
    }

    pub(crate) fn snapshot() -> impl Strategy<Value = Snapshot> {
        (any::<u64>(), ballot(), ts(), membership(), bytes(256)).prop_map(
            |(last_slot, last_ballot, last_ts, membership, data)| Snapshot {
                last_slot,
                last_ballot,
                last_ts,
                membership,
                data,
            },
        )
    }

    fn body() -> impl Strategy<Value = Body> {
        prop_oneof![
            (any::<u64>(), ballot(), any::<bool>(), any::<bool>()).prop_map(
                |(last_slot, last_ballot, pre_vote, hand_over)| {
                    Body::Prepare {
                        last_slot,
                        last_ballot,
                        pre_vote,
                        hand_over,
                    }
                }
            ),
            any::<u64>().prop_map(|last_slot| Body::TakeOver { last_slot }),
            (any::<bool>(), any::<bool>(), ts()).prop_map(|(granted, pre_vote, lease_until)| {
                Body::Promise {
                    granted,
                    pre_vote,
                    lease_until,
                }
            }),
            (
                any::<u64>(),
                ballot(),
                vec(entry(), 0..5),
                any::<u64>(),
                ts()
            )
                .prop_map(|(prev_slot, prev_ballot, entries, commit, lease_start)| {
                    Body::Accept {
                        prev_slot,
                        prev_ballot,
                        entries,
                        commit,
                        lease_start,
                    }
                }),
            (any::<bool>(), any::<u64>(), ts()).prop_map(|(ok, upto, lease_start)| {
                Body::Accepted {
                    ok,
                    upto,
                    lease_start,
                }
            }),
            (snapshot(), ts()).prop_map(|(snapshot, lease_start)| Body::InstallSnapshot {
                snapshot,
                lease_start,
            }),
        ]
    }

    pub(crate) fn message() -> impl Strategy<Value = Message> {
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            ballot(),
            body(),
        )
            .prop_map(|(cluster_id, epoch, from, to, ballot, body)| Message {
                cluster_id,
                epoch,
                from,
                to,
                ballot,
                body,
            })
    }

    fn txn() -> impl Strategy<Value = TxnId> {
        (any::<u64>(), any::<u64>()).prop_map(|(o, s)| TxnId::new(o, s))
    }

    fn abort_reason() -> impl Strategy<Value = AbortReason> {
        prop_oneof![
            Just(AbortReason::Wounded),
            Just(AbortReason::LeaderChanged),
            Just(AbortReason::Inactive),
            Just(AbortReason::ClientAbort),
            Just(AbortReason::Overloaded),
            Just(AbortReason::Unknown),
            Just(AbortReason::Conflict),
        ]
    }

    fn write() -> impl Strategy<Value = Write> {
        (bytes(16), option::of(bytes(32))).prop_map(|(key, value)| Write { key, value })
    }

    pub(crate) fn group_message() -> impl Strategy<Value = GroupMessage> {
        let mode = prop_oneof![Just(CcMode::Locking), Just(CcMode::Optimistic)];
        let vote = prop_oneof![ts().prop_map(Vote::Yes), abort_reason().prop_map(Vote::No)];
        let decision = prop_oneof![ts().prop_map(Decision::Commit), Just(Decision::Abort)];
        prop_oneof![
            (
                txn(),
                any::<u64>(),
                ts(),
                option::of(any::<u64>()),
                mode,
                ts(),
                vec(write(), 0..4)
            )
                .prop_map(|(txn, coordinator, p, term, mode, deadline, writes)| {
                    GroupMessage::Prepare {
                        txn,
                        coordinator,
                        priority: Priority::new(p),
                        term,
                        mode,
                        deadline,
                        writes,
                    }
                }),
            (txn(), any::<u64>(), vote).prop_map(|(txn, from, vote)| GroupMessage::Vote {
                txn,
                from,
                vote
            }),
            (txn(), any::<u64>(), decision, ts()).prop_map(
                |(txn, coordinator, decision, deadline)| GroupMessage::Decide {
                    txn,
                    coordinator,
                    decision,
                    deadline,
                }
            ),
            (txn(), any::<u64>()).prop_map(|(txn, from)| GroupMessage::Ack { txn, from }),
            txn().prop_map(|txn| GroupMessage::Wound { txn }),
            (txn(), any::<u64>(), ts()).prop_map(|(txn, from, deadline)| GroupMessage::Query {
                txn,
                from,
                deadline,
            }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::strategies::*;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn encoded<T>(v: &T, enc: fn(&T, &mut BytesMut)) -> Vec<u8> {
        let mut buf = BytesMut::new();
        enc(v, &mut buf);
        buf.to_vec()
    }

    proptest! {
        #[test]
        fn entry_round_trips(e in entry()) {
            prop_assert_eq!(decode_entry(&encoded(&e, encode_entry))?, e);
        }

        #[test]
        fn entries_round_trip(es in vec(entry(), 0..8)) {
            let mut buf = BytesMut::new();
            encode_entries(&es, &mut buf);
            prop_assert_eq!(decode_entries(&buf)?, es);
        }

        #[test]
        fn hard_state_round_trips(hs in hard_state()) {
            prop_assert_eq!(decode_hard_state(&encoded(&hs, encode_hard_state))?, hs);
        }

        #[test]
        fn snapshot_round_trips(s in snapshot()) {
            prop_assert_eq!(decode_snapshot(&encoded(&s, encode_snapshot))?, s);
        }

        #[test]
        fn message_round_trips(m in message()) {
            prop_assert_eq!(decode_message(&encoded(&m, encode_message))?, m);
        }

        #[test]
        fn group_message_round_trips(m in group_message()) {
            prop_assert_eq!(decode_group_message(&encoded(&m, encode_group_message))?, m);
        }

        #[test]
        fn every_strict_prefix_of_a_message_is_an_error(m in message(), g in group_message()) {
            let bytes = encoded(&m, encode_message);
            for cut in 0..bytes.len() {
                prop_assert!(decode_message(&bytes[..cut]).is_err());
            }
            let bytes = encoded(&g, encode_group_message);
            for cut in 0..bytes.len() {
                prop_assert!(decode_group_message(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
            let _ = decode_message(&bytes);
            let _ = decode_group_message(&bytes);
            let _ = decode_entry(&bytes);
            let _ = decode_entries(&bytes);
            let _ = decode_snapshot(&bytes);
            let _ = decode_hard_state(&bytes);
        }

        #[test]
        fn flipped_bytes_never_panic(m in message(), at in any::<usize>(), bit in 0u8..8) {
            let mut bytes = encoded(&m, encode_message);
            let i = at % bytes.len();
            bytes[i] ^= 1 << bit;
            let _ = decode_message(&bytes);
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut buf = BytesMut::new();
        encode_hard_state(&HardState::default(), &mut buf);
        buf.put_u8(0);
        assert_eq!(decode_hard_state(&buf), Err(DecodeError::Trailing(1)));
    }

    #[test]
    fn a_huge_count_is_refused_before_allocating() {
        let mut buf = BytesMut::new();
        buf.put_u32_le(u32::MAX);
        assert!(matches!(
            decode_entries(&buf),
            Err(DecodeError::Truncated {
                what: "entries",
                ..
            })
        ));
    }

    #[test]
    fn an_unknown_version_is_refused() {
        assert_eq!(decode_message(&[9]), Err(DecodeError::Version(9)));
        assert_eq!(decode_group_message(&[0]), Err(DecodeError::Version(0)));
    }

    #[test]
    fn unsorted_voters_are_invalid() {
        let mut buf = BytesMut::new();
        encode_entry(
            &Entry {
                slot: 1,
                ballot: Ballot::ZERO,
                ts: Timestamp::ZERO,
                payload: Payload::Config(Membership {
                    epoch: 1,
                    voters: vec![3, 2],
                }),
            },
            &mut buf,
        );
        assert!(matches!(decode_entry(&buf), Err(DecodeError::Invalid(_))));
    }
}
