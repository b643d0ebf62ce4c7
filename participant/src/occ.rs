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
//!
//! A scan is recorded the same way ([`ScanVersions`]): its bounds, its
//! limit and the `(key, version)` of every row it returned.
//! [`validate_scan`] re-runs it against the newest applied versions; any
//! other set of rows in the first `limit` (a row changed or deleted, a key
//! inserted — a phantom) fails. The leader checks the lock table for the
//! range by try-locking it shared ([`LockTable::try_acquire_range`], which
//! fails while another transaction holds or queued an exclusive lock inside
//! it) and holds it until the outcome.

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

/// One scan of an OCC transaction: what it asked and the rows it saw.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScanVersions {
    /// First key of the range.
    pub start: Bytes,
    /// Bound after the range (`None`: no upper bound).
    pub end: Option<Bytes>,
    /// Most rows asked for.
    pub limit: usize,
    /// The rows returned, in key order: each key and the timestamp of its
    /// newest version then.
    pub rows: Vec<(Bytes, Timestamp)>,
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
    /// A scan's rows are not the ones it returned: a row changed or was
    /// deleted, or a key was inserted into the range (a phantom).
    #[error("the rows of the scan from {start:?} changed since it ran")]
    ScanChanged {
        /// The scan's first key.
        start: Bytes,
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

/// Re-runs `scan` against the newest applied versions: `Ok` if its first
/// `limit` rows are exactly the `(key, version)` pairs it returned. Locks
/// are not checked here: the caller try-locks the range shared, which
/// fails while another transaction holds (or queued) an exclusive lock
/// inside it.
pub fn validate_scan(state: &GroupState, scan: &ScanVersions) -> Result<(), Conflict> {
    let now = state
        .scan_latest(&scan.start, scan.end.as_deref(), scan.limit)
        .map_err(|_| Conflict::ScanChanged {
            start: scan.start.clone(),
        })?;
    let same = now.len() == scan.rows.len()
        && now
            .iter()
            .zip(&scan.rows)
            .all(|((k, ts, _), (seen_k, seen_ts))| k == seen_k && ts == seen_ts);
    if same {
        Ok(())
    } else {
        Err(Conflict::ScanChanged {
            start: scan.start.clone(),
        })
    }
}

#[cfg(test)]
mod tests;
