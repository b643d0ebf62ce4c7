//! FaRM-style optimistic validation (docs/design.md §5.4; Dragojević et al.,
//! SOSP 2015, §4 "validate").
//!
//! An OCC transaction reads without locks and records, for every key, the
//! version it saw ([`ReadVersion`]): the timestamp of the newest version
//! then, tombstones included, or none if the key had no version. At
//! prepare, after its writes are try-locked, the participant leader checks
//! each recorded read against the present with [`validate`]: the read is
//! still current if no other transaction holds the key exclusively (one
//! that does is about to write it) and its newest version is still the one
//! seen. A transaction whose reads all validate could have read them at its
//! commit timestamp; one that fails aborts, retryably.
//!
//! The leader then holds the validated keys shared until the outcome, so no
//! writer slips in between validation and commit.

use bytes::Bytes;
use meridian_truetime::Timestamp;

use crate::locks::LockTable;
use crate::state::GroupState;
use crate::types::TxnId;

/// One read of an OCC transaction: the key and the version it saw.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReadVersion {
    /// The key read.
    pub key: Bytes,
    /// The newest version's timestamp when read (a tombstone's included),
    /// or `None` if the key had no version.
    pub seen: Option<Timestamp>,
}

/// Why a read no longer validates.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// Another transaction holds the key exclusively: it is about to write.
    #[error("key {key:?} is locked for writing by txn {holder}")]
    Locked {
        /// The key.
        key: Bytes,
        /// The exclusive holder.
        holder: TxnId,
    },
    /// The key's newest version is not the one read.
    #[error("key {key:?} changed since it was read (saw {seen:?}, now {latest:?})")]
    Changed {
        /// The key.
        key: Bytes,
        /// The version read.
        seen: Option<Timestamp>,
        /// The newest version now.
        latest: Option<Timestamp>,
    },
}

/// Checks `txn`'s recorded reads against the applied state and the lock
/// table of the leader: `Ok` if every read is still current, else the
/// first conflict. Reads of keys `txn` itself holds exclusively (its own
/// writes, try-locked before validation) validate on their version alone.
///
/// A version GC dropped (a key whose newest version was an old tombstone)
/// reads as "none now": a conflict if a tombstone was seen, the safe
/// direction.
pub fn validate(
    state: &GroupState,
    locks: &LockTable,
    txn: TxnId,
    reads: &[ReadVersion],
) -> Result<(), Conflict> {
    for r in reads {
        if let Some(holder) = locks.exclusive_holder_other_than(&r.key, txn) {
            return Err(Conflict::Locked {
                key: r.key.clone(),
                holder,
            });
        }
        let latest = state.latest_version(&r.key);
        if latest != r.seen {
            return Err(Conflict::Changed {
                key: r.key.clone(),
                seen: r.seen,
                latest,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
