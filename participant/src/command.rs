//! The records a participant group logs through Paxos (docs/design.md §4, §5.1).
//!
//! Each is the payload of one Paxos command entry. The entry's Paxos write
//! timestamp (Spanner §4.1.2) carries the record's time: for a one-phase
//! [`Command::Commit`] it *is* the commit timestamp; for a
//! [`Command::Prepare`] it is the prepare timestamp; for a
//! [`Command::CloseTimestamp`] it is the timestamp being closed; for a
//! coordinator's [`Command::CoordinatorCommit`] it is the two-phase commit
//! timestamp `s`. Only a participant's [`Command::Decide`] names its commit
//! timestamp explicitly: the coordinator chose it, and the participant logs
//! the decision later, at a Paxos timestamp of its own.
//!
//! Encoding: a format version byte, a tag byte, then the fields (see
//! `codec`). Decoding never panics; a record that fails to decode is a
//! typed [`DecodeError`].

use bytes::Bytes;
use meridian_truetime::Timestamp;

use crate::codec::{DecodeError, Reader, Writer};
use crate::types::{Priority, TxnId};

/// The record format this build writes and reads. Version 2 added the
/// prepare record's priority, deadline and read set, the decision's
/// deadline, and the coordinator's records; version 3 the prepare record's
/// scanned ranges.
pub const FORMAT_VERSION: u8 = 3;

const TAG_COMMIT: u8 = 1;
const TAG_CLOSE: u8 = 2;
const TAG_PREPARE: u8 = 3;
const TAG_DECIDE: u8 = 4;
const TAG_COORDINATOR_COMMIT: u8 = 5;
const TAG_FORGET: u8 = 6;
const TAG_SPLIT: u8 = 7;

/// Smallest encoding of one [`Write`]: key length, presence byte.
const MIN_WRITE_BYTES: usize = 4 + 1;
/// Smallest encoding of one read key: its length.
const MIN_KEY_BYTES: usize = 4;
/// Smallest encoding of one scanned range: its start's length, the end's
/// presence byte.
const MIN_RANGE_BYTES: usize = 4 + 1;
/// Encoding of one group id.
const GROUP_BYTES: usize = 8;
/// Encoding of one transaction id.
const TXN_BYTES: usize = 16;

/// One buffered write of a transaction: `value == None` deletes the key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Write {
    /// The key written.
    pub key: Bytes,
    /// The new value, or `None` for a delete (a tombstone version).
    pub value: Option<Bytes>,
}

impl Write {
    /// A write of `value` to `key`.
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Write {
        Write {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// A delete of `key`.
    pub fn delete(key: impl Into<Bytes>) -> Write {
        Write {
            key: key.into(),
            value: None,
        }
    }
}

/// A two-phase-commit outcome logged at a participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Commit at the coordinator's commit timestamp `s` (Spanner §4.2.1:
    /// every participant applies at the same `s`).
    Commit(Timestamp),
    /// Abort: the prepared writes are dropped.
    Abort,
}

/// A record in a participant group's Paxos log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// One-phase commit of a single-group transaction (docs/design.md §5.1): its
    /// writes apply at this entry's Paxos write timestamp, which is the
    /// commit timestamp.
    Commit {
        /// The transaction.
        txn: TxnId,
        /// Its writes, one per key.
        writes: Vec<Write>,
    },
    /// A closed timestamp (Spanner §4.1.3's MinNextTS; CockroachDB's closed
    /// timestamps): no data. Applying it advances `t_paxos_safe` to this
    /// entry's Paxos write timestamp, so an idle group still serves reads
    /// at recent timestamps.
    CloseTimestamp,
    /// Two-phase commit, participant side (Spanner §4.2.1): the transaction
    /// holds its locks here and promises to commit if told; its prepare
    /// timestamp is this entry's Paxos write timestamp. The record holds all
    /// a new leader needs to rebuild the transaction's locks after a
    /// failover: its writes (exclusive locks), the keys it read (shared
    /// locks) and the ranges it scanned (shared range locks), with its
    /// wound-wait priority.
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// The coordinator group, asked for the outcome (presumed abort).
        coordinator: u64,
        /// Its wound-wait priority (Spanner §4.2.1).
        priority: Priority,
        /// A prepare record whose Paxos write timestamp is above this is
        /// void: the coordinator gives up on votes by then, so a late or
        /// duplicated prepare can never bring a decided transaction back.
        deadline: Timestamp,
        /// Its writes at this participant.
        writes: Vec<Write>,
        /// The keys it read at this participant.
        reads: Vec<Bytes>,
        /// The ranges `[start, end)` it scanned at this participant (`end`
        /// `None`: no upper bound), held shared until the outcome so that
        /// nothing is inserted into them (no phantoms).
        ranges: Vec<(Bytes, Option<Bytes>)>,
    },
    /// The outcome of a two-phase transaction, at a participant.
    Decide {
        /// The transaction.
        txn: TxnId,
        /// Commit at a timestamp, or abort.
        decision: Decision,
        /// The transaction's prepare deadline: until then a prepare record
        /// for it may still arrive (late or duplicated) and must find the
        /// decision.
        deadline: Timestamp,
    },
    /// Two-phase commit, coordinator side (Spanner §4.2.1): every
    /// participant voted yes; the transaction commits at this entry's Paxos
    /// write timestamp `s`, above every prepare timestamp. The coordinator's
    /// own writes apply at `s`; the decision is kept until every other
    /// participant has acknowledged it ([`Command::Forget`]), never pruned by
    /// age (presumed abort: no record means abort).
    CoordinatorCommit {
        /// The transaction.
        txn: TxnId,
        /// Its writes at the coordinator's group.
        writes: Vec<Write>,
        /// The other participant groups, told the decision.
        participants: Vec<u64>,
    },
    /// Every participant acknowledged these coordinator decisions: they
    /// need not be kept any longer. Also ends the forwarding of decisions
    /// for these transactions to a child group they moved to at a split
    /// (the child acknowledged; docs/design.md §9).
    Forget {
        /// The transactions.
        txns: Vec<TxnId>,
    },
    /// Splits the group's range at `key` (docs/design.md §9): applied at
    /// slot `s` with Paxos write timestamp `ts_s`, the group keeps
    /// `[start, key)` and the new group `child` gets `[key, end)`, with the
    /// right half's data, prepared transactions and decisions; both at
    /// `generation`. Void (changes nothing) unless `generation` is one
    /// above the descriptor's at that slot and `key` lies strictly inside
    /// the range: each change is conditional on the generation it saw.
    Split {
        /// The first key of the right half.
        key: Bytes,
        /// The new group's id (never reused).
        child: u64,
        /// The generation both halves get.
        generation: u64,
    },
}

impl Command {
    /// The record's encoding, for [`meridian_paxos::Replica::propose`].
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::with_capacity(self.encoded_len_hint());
        w.u8(FORMAT_VERSION);
        match self {
            Command::Commit { txn, writes } => {
                w.u8(TAG_COMMIT);
                w.txn(*txn);
                encode_writes(&mut w, writes);
            }
            Command::CloseTimestamp => w.u8(TAG_CLOSE),
            Command::Prepare {
                txn,
                coordinator,
                priority,
                deadline,
                writes,
                reads,
                ranges,
            } => {
                w.u8(TAG_PREPARE);
                w.txn(*txn);
                w.u64(*coordinator);
                w.ts(priority.0);
                w.ts(*deadline);
                encode_writes(&mut w, writes);
                w.len(reads.len());
                for key in reads {
                    w.bytes(key);
                }
                encode_ranges(&mut w, ranges);
            }
            Command::Decide {
                txn,
                decision,
                deadline,
            } => {
                w.u8(TAG_DECIDE);
                w.txn(*txn);
                encode_decision(&mut w, *decision);
                w.ts(*deadline);
            }
            Command::CoordinatorCommit {
                txn,
                writes,
                participants,
            } => {
                w.u8(TAG_COORDINATOR_COMMIT);
                w.txn(*txn);
                encode_writes(&mut w, writes);
                w.len(participants.len());
                for g in participants {
                    w.u64(*g);
                }
            }
            Command::Forget { txns } => {
                w.u8(TAG_FORGET);
                w.len(txns.len());
                for t in txns {
                    w.txn(*t);
                }
            }
            Command::Split {
                key,
                child,
                generation,
            } => {
                w.u8(TAG_SPLIT);
                w.bytes(key);
                w.u64(*child);
                w.u64(*generation);
            }
        }
        w.finish()
    }

    /// Decodes a record written by [`Command::encode`]. Keys and values are
    /// zero-copy slices of `data`.
    pub fn decode(data: &Bytes) -> Result<Command, DecodeError> {
        let mut r = Reader::new(data);
        let version = r.u8("format version")?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::Version(version));
        }
        let cmd = match r.u8("command tag")? {
            TAG_COMMIT => Command::Commit {
                txn: r.txn()?,
                writes: decode_writes(&mut r)?,
            },
            TAG_CLOSE => Command::CloseTimestamp,
            TAG_PREPARE => Command::Prepare {
                txn: r.txn()?,
                coordinator: r.u64("coordinator")?,
                priority: Priority::new(r.ts("priority")?),
                deadline: r.ts("deadline")?,
                writes: decode_writes(&mut r)?,
                reads: {
                    let n = r.len("read count", MIN_KEY_BYTES)?;
                    let mut keys = Vec::with_capacity(n);
                    for _ in 0..n {
                        keys.push(r.bytes("read key")?);
                    }
                    keys
                },
                ranges: decode_ranges(&mut r)?,
            },
            TAG_DECIDE => {
                let txn = r.txn()?;
                let decision = decode_decision(&mut r)?;
                let deadline = r.ts("deadline")?;
                Command::Decide {
                    txn,
                    decision,
                    deadline,
                }
            }
            TAG_COORDINATOR_COMMIT => {
                let txn = r.txn()?;
                let writes = decode_writes(&mut r)?;
                let n = r.len("participant count", GROUP_BYTES)?;
                let mut participants = Vec::with_capacity(n);
                for _ in 0..n {
                    participants.push(r.u64("participant")?);
                }
                Command::CoordinatorCommit {
                    txn,
                    writes,
                    participants,
                }
            }
            TAG_FORGET => {
                let n = r.len("forgotten txn count", TXN_BYTES)?;
                let mut txns = Vec::with_capacity(n);
                for _ in 0..n {
                    txns.push(r.txn()?);
                }
                Command::Forget { txns }
            }
            TAG_SPLIT => Command::Split {
                key: r.bytes("split key")?,
                child: r.u64("child group")?,
                generation: r.u64("generation")?,
            },
            tag => {
                return Err(DecodeError::Tag {
                    what: "command",
                    tag,
                });
            }
        };
        r.finish()?;
        Ok(cmd)
    }

    fn encoded_len_hint(&self) -> usize {
        let write_bytes = |writes: &[Write]| -> usize {
            writes
                .iter()
                .map(|w| 9 + w.key.len() + w.value.as_ref().map_or(0, Bytes::len))
                .sum()
        };
        let body = match self {
            Command::Commit { writes, .. } => write_bytes(writes),
            Command::Prepare {
                writes,
                reads,
                ranges,
                ..
            } => {
                write_bytes(writes)
                    + reads.iter().map(|k| 4 + k.len()).sum::<usize>()
                    + ranges
                        .iter()
                        .map(|(s, e)| 9 + s.len() + e.as_ref().map_or(0, Bytes::len))
                        .sum::<usize>()
            }
            Command::CoordinatorCommit {
                writes,
                participants,
                ..
            } => write_bytes(writes) + GROUP_BYTES * participants.len(),
            Command::Forget { txns } => TXN_BYTES * txns.len(),
            Command::Split { key, .. } => key.len(),
            Command::CloseTimestamp | Command::Decide { .. } => 0,
        };
        2 + TXN_BYTES + 3 * 8 + 2 * 4 + body
    }
}

/// A decision: a tag byte (0 abort, 1 commit), then the commit timestamp.
pub(crate) fn encode_decision(w: &mut Writer, decision: Decision) {
    match decision {
        Decision::Commit(ts) => {
            w.u8(1);
            w.ts(ts);
        }
        Decision::Abort => w.u8(0),
    }
}

/// Reads what [`encode_decision`] wrote.
pub(crate) fn decode_decision(r: &mut Reader<'_>) -> Result<Decision, DecodeError> {
    match r.u8("decision")? {
        0 => Ok(Decision::Abort),
        1 => Ok(Decision::Commit(r.ts("commit ts")?)),
        tag => Err(DecodeError::Tag {
            what: "decision",
            tag,
        }),
    }
}

/// Scanned ranges: a count, then each range's start and optional end.
pub(crate) fn encode_ranges(w: &mut Writer, ranges: &[(Bytes, Option<Bytes>)]) {
    w.len(ranges.len());
    for (start, end) in ranges {
        w.bytes(start);
        w.opt_bytes(end.as_ref());
    }
}

/// Reads what [`encode_ranges`] wrote.
pub(crate) fn decode_ranges(
    r: &mut Reader<'_>,
) -> Result<Vec<(Bytes, Option<Bytes>)>, DecodeError> {
    let n = r.len("range count", MIN_RANGE_BYTES)?;
    let mut ranges = Vec::with_capacity(n);
    for _ in 0..n {
        ranges.push((r.bytes("range start")?, r.opt_bytes("range end")?));
    }
    Ok(ranges)
}

fn encode_writes(w: &mut Writer, writes: &[Write]) {
    w.len(writes.len());
    for write in writes {
        w.bytes(&write.key);
        w.opt_bytes(write.value.as_ref());
    }
}

fn decode_writes(r: &mut Reader<'_>) -> Result<Vec<Write>, DecodeError> {
    let n = r.len("write count", MIN_WRITE_BYTES)?;
    let mut writes = Vec::with_capacity(n);
    for _ in 0..n {
        writes.push(Write {
            key: r.bytes("key")?,
            value: r.opt_bytes("value")?,
        });
    }
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn write() -> impl Strategy<Value = Write> {
        (
            proptest::collection::vec(any::<u8>(), 1..8),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        )
            .prop_map(|(k, v)| Write {
                key: Bytes::from(k),
                value: v.map(Bytes::from),
            })
    }

    fn command() -> impl Strategy<Value = Command> {
        let txn = (any::<u64>(), any::<u64>()).prop_map(|(o, s)| TxnId::new(o, s));
        let writes = || proptest::collection::vec(write(), 0..5);
        prop_oneof![
            (txn.clone(), writes()).prop_map(|(txn, writes)| Command::Commit { txn, writes }),
            Just(Command::CloseTimestamp),
            (
                txn.clone(),
                writes(),
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..8), 0..4),
                proptest::collection::vec(
                    (
                        proptest::collection::vec(any::<u8>(), 0..8),
                        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..8))
                    ),
                    0..3
                ),
                any::<(u64, u64, u64)>()
            )
                .prop_map(|(txn, writes, reads, ranges, (coordinator, p, d))| {
                    Command::Prepare {
                        txn,
                        coordinator,
                        priority: Priority::new(Timestamp(p)),
                        deadline: Timestamp(d),
                        writes,
                        reads: reads.into_iter().map(Bytes::from).collect(),
                        ranges: ranges
                            .into_iter()
                            .map(|(s, e)| (Bytes::from(s), e.map(Bytes::from)))
                            .collect(),
                    }
                }),
            (
                txn.clone(),
                proptest::option::of(any::<u64>()),
                any::<u64>()
            )
                .prop_map(|(txn, ts, d)| Command::Decide {
                    txn,
                    decision: ts.map_or(Decision::Abort, |t| Decision::Commit(Timestamp(t))),
                    deadline: Timestamp(d),
                }),
            (
                txn.clone(),
                writes(),
                proptest::collection::vec(any::<u64>(), 0..4)
            )
                .prop_map(|(txn, writes, participants)| Command::CoordinatorCommit {
                    txn,
                    writes,
                    participants,
                }),
            proptest::collection::vec(txn, 0..4).prop_map(|txns| Command::Forget { txns }),
            (
                proptest::collection::vec(any::<u8>(), 1..8),
                any::<(u64, u64)>()
            )
                .prop_map(|(key, (child, generation))| Command::Split {
                    key: Bytes::from(key),
                    child,
                    generation,
                }),
        ]
    }

    proptest! {
        #[test]
        fn every_command_round_trips(cmd in command()) {
            prop_assert_eq!(Command::decode(&cmd.encode()), Ok(cmd));
        }

        #[test]
        fn truncated_or_extended_records_are_rejected_not_misread(
            cmd in command(),
            cut in any::<prop::sample::Index>(),
        ) {
            let full = cmd.encode();
            let cut = cut.index(full.len());
            prop_assert!(Command::decode(&full.slice(..cut)).is_err());
            let mut longer = full.to_vec();
            longer.push(0);
            prop_assert_eq!(
                Command::decode(&Bytes::from(longer)),
                Err(DecodeError::Trailing(1))
            );
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Command::decode(&Bytes::from(data));
        }
    }

    #[test]
    fn unknown_version_and_tag_are_typed_errors() {
        assert_eq!(
            Command::decode(&Bytes::from_static(&[9, 1])),
            Err(DecodeError::Version(9))
        );
        assert_eq!(
            Command::decode(&Bytes::from_static(&[FORMAT_VERSION, 77])),
            Err(DecodeError::Tag {
                what: "command",
                tag: 77
            })
        );
    }

    #[test]
    fn a_record_of_the_previous_format_is_refused_not_misread() {
        // Version 2 prepare records had no ranges: a new leader must not
        // rebuild a prepared scanner's locks without them.
        let mut data = Command::Prepare {
            txn: TxnId::local(1),
            coordinator: 2,
            priority: Priority::new(Timestamp(3)),
            deadline: Timestamp(4),
            writes: vec![],
            reads: vec![],
            ranges: vec![(Bytes::from_static(b"a"), None)],
        }
        .encode()
        .to_vec();
        data[0] = 2;
        assert_eq!(
            Command::decode(&Bytes::from(data)),
            Err(DecodeError::Version(2))
        );
    }

    #[test]
    fn a_huge_write_count_is_refused_before_allocating() {
        let mut w = Writer::default();
        w.u8(FORMAT_VERSION);
        w.u8(TAG_COMMIT);
        w.txn(TxnId::local(1));
        w.u32(u32::MAX);
        assert!(matches!(
            Command::decode(&w.finish()),
            Err(DecodeError::Truncated {
                what: "write count",
                ..
            })
        ));
    }
}
