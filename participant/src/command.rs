//! The records a participant group logs through Paxos (docs/design.md §4, §5.1).
//!
//! Each is the payload of one Paxos command entry. The entry's Paxos write
//! timestamp (Spanner §4.1.2) carries the record's time: for a one-phase
//! [`Command::Commit`] it *is* the commit timestamp; for a
//! [`Command::Prepare`] it is the prepare timestamp; for a
//! [`Command::CloseTimestamp`] it is the timestamp being closed. Only a
//! two-phase [`Command::Decide`] names its commit timestamp explicitly: the
//! coordinator chose it, and the participant logs the decision later, at a
//! Paxos timestamp of its own.
//!
//! Encoding: a format version byte, a tag byte, then the fields (see
//! `codec`). Decoding never panics; a record that fails to decode is a
//! typed [`DecodeError`].

use bytes::Bytes;
use meridian_truetime::Timestamp;

use crate::codec::{DecodeError, Reader, Writer};
use crate::types::TxnId;

/// The record format this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

const TAG_COMMIT: u8 = 1;
const TAG_CLOSE: u8 = 2;
const TAG_PREPARE: u8 = 3;
const TAG_DECIDE: u8 = 4;

/// Smallest encoding of one [`Write`]: key length, presence byte.
const MIN_WRITE_BYTES: usize = 4 + 1;

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
    /// holds its write locks and promises to commit if told; its prepare
    /// timestamp is this entry's Paxos write timestamp.
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// Its writes at this participant.
        writes: Vec<Write>,
        /// The coordinator group, asked for the outcome after a failover
        /// (presumed abort).
        coordinator: u64,
    },
    /// The outcome of a prepared transaction.
    Decide {
        /// The transaction.
        txn: TxnId,
        /// Commit at a timestamp, or abort.
        decision: Decision,
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
                writes,
                coordinator,
            } => {
                w.u8(TAG_PREPARE);
                w.txn(*txn);
                w.u64(*coordinator);
                encode_writes(&mut w, writes);
            }
            Command::Decide { txn, decision } => {
                w.u8(TAG_DECIDE);
                w.txn(*txn);
                match decision {
                    Decision::Commit(ts) => {
                        w.u8(1);
                        w.ts(*ts);
                    }
                    Decision::Abort => w.u8(0),
                }
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
                writes: decode_writes(&mut r)?,
            },
            TAG_DECIDE => {
                let txn = r.txn()?;
                let decision = match r.u8("decision")? {
                    0 => Decision::Abort,
                    1 => Decision::Commit(r.ts("commit ts")?),
                    tag => {
                        return Err(DecodeError::Tag {
                            what: "decision",
                            tag,
                        });
                    }
                };
                Command::Decide { txn, decision }
            }
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
        let writes = match self {
            Command::Commit { writes, .. } | Command::Prepare { writes, .. } => writes
                .iter()
                .map(|w| 9 + w.key.len() + w.value.as_ref().map_or(0, Bytes::len))
                .sum(),
            _ => 0,
        };
        2 + 16 + 8 + 4 + writes
    }
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
            (txn.clone(), writes(), any::<u64>()).prop_map(|(txn, writes, coordinator)| {
                Command::Prepare {
                    txn,
                    writes,
                    coordinator,
                }
            }),
            (txn, proptest::option::of(any::<u64>())).prop_map(|(txn, ts)| Command::Decide {
                txn,
                decision: ts.map_or(Decision::Abort, |t| Decision::Commit(Timestamp(t))),
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
