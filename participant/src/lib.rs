//! Sans-IO participant group state machine (docs/design.md §4): the MVCC store,
//! the wound-wait lock table, prepared transactions, safe time and closed
//! timestamps. It applies committed Paxos entries and does no I/O.
//!
//! - [`mvcc`]: the multi-version store, key → versions by commit timestamp,
//!   with garbage collection below a horizon (Spanner §1, §2.1, §4.1).
//! - [`locks`]: the leader's lock table, shared/exclusive locks with
//!   wound-wait deadlock avoidance and fair FIFO wait queues (Spanner
//!   §4.2.1).
//! - [`command`]: the records a group logs through Paxos (one-phase
//!   commits, closed timestamps, prepares, decisions).
//! - [`state`]: [`GroupState`], the replicated state machine that applies
//!   chosen entries at every replica and computes safe time (Spanner
//!   §4.1.3); its encoding is the group's Paxos snapshot.
//! - [`descriptor`]: [`RangeDescriptor`], the key range a group serves,
//!   replicated in its state and changed by splits (docs/design.md §9).
//! - [`tscache`]: the leader's timestamp cache, the read timestamps it
//!   served by key and range, which later writes of them must exceed.
//! - [`types`]: [`TxnId`] and the wound-wait [`Priority`]; [`fxhash`]: the
//!   unseeded hasher the cores' maps use.
//!
//! All are pure data structures: no clock, no randomness, no I/O. Every
//! timestamp is an argument. The transaction layer (`meridian-txn`) drives
//! them, with the Paxos replica, as one group replica.
//!
//! # Examples
//!
//! The MVCC store keeps versions by commit timestamp; a read at `t` sees
//! the newest version at or below `t`, and garbage collection makes reads
//! below its horizon fail instead of answering wrongly:
//!
//! ```
//! use bytes::Bytes;
//! use meridian_participant::{MvccError, MvccStore};
//! use meridian_truetime::Timestamp;
//!
//! let mut store: MvccStore = MvccStore::new(); // the default, hashed B-tree layout
//! let key = Bytes::from_static(b"acct/1");
//! let (v100, v70) = (Bytes::from_static(b"100"), Bytes::from_static(b"70"));
//! store.write(key.clone(), Timestamp(10), Some(v100.clone())).unwrap();
//! store.write(key.clone(), Timestamp(20), Some(v70.clone())).unwrap();
//!
//! assert_eq!(store.read(&key, Timestamp(9)).unwrap(), None);
//! assert_eq!(store.read(&key, Timestamp(15)).unwrap(), Some((Timestamp(10), v100.clone())));
//! assert_eq!(store.read(&key, Timestamp(20)).unwrap(), Some((Timestamp(20), v70)));
//!
//! store.gc(Timestamp(15)); // keeps the newest version at or below 15
//! assert_eq!(store.read(&key, Timestamp(15)).unwrap(), Some((Timestamp(10), v100)));
//! assert!(matches!(
//!     store.read(&key, Timestamp(12)),
//!     Err(MvccError::BelowGcHorizon { .. })
//! ));
//! ```
//!
//! The lock table's wound-wait rule (Spanner §4.2.1): an older requester
//! wounds a younger holder, which the caller aborts; a younger requester
//! waits:
//!
//! ```
//! use bytes::Bytes;
//! use meridian_participant::{Acquire, LockLimits, LockMode, LockTable, Priority, TxnId};
//! use meridian_truetime::Timestamp;
//!
//! let mut locks = LockTable::new(LockLimits::default());
//! let key = Bytes::from_static(b"acct/1");
//! // Priority is the time a transaction first started: smaller is older.
//! let (old, old_prio) = (TxnId::local(1), Priority::new(Timestamp(100)));
//! let (young, young_prio) = (TxnId::local(2), Priority::new(Timestamp(200)));
//! let (younger, younger_prio) = (TxnId::local(3), Priority::new(Timestamp(300)));
//!
//! let held = locks.acquire(young, young_prio, &key, LockMode::Exclusive);
//! assert_eq!(held, Ok(Acquire::Granted));
//!
//! // The older reader wounds the younger writer and waits for its abort.
//! let wait = locks.acquire(old, old_prio, &key, LockMode::Shared);
//! assert_eq!(wait, Ok(Acquire::Waiting { wounded: vec![young] }));
//! let grants = locks.release_all(young); // the caller aborts the victim
//! assert_eq!(grants.len(), 1);
//! assert_eq!((grants[0].txn, grants[0].mode), (old, LockMode::Shared));
//!
//! // A younger writer waits for the older reader, wounding no one.
//! let wait = locks.acquire(younger, younger_prio, &key, LockMode::Exclusive);
//! assert_eq!(wait, Ok(Acquire::Waiting { wounded: vec![] }));
//! let edges = locks.waits_for();
//! assert_eq!((edges[0].waiter, edges[0].blocker), (younger, old));
//! ```
#![deny(missing_docs)]

mod codec;
pub mod command;
pub mod descriptor;
pub mod fxhash;
pub mod locks;
pub mod mvcc;
pub mod occ;
pub mod state;
pub mod tscache;
pub mod types;

/// Deliberate bugs the simulator must catch (docs/design.md §8).
#[cfg(feature = "planted-bugs")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlantedBug {
    /// Wound-wait without the wound: an older requester waits for a younger
    /// holder instead of wounding it, so deadlocks can form.
    NoWound,
}

pub use codec::DecodeError;
pub use command::{Command, Decision, Write};
pub use descriptor::{INITIAL_GENERATION, RangeDescriptor};
pub use locks::{Acquire, Grant, LockError, LockLimits, LockMode, LockSpan, LockTable, WaitsFor};
pub use mvcc::{GcStats, MvccError, MvccStore};
pub use occ::{Conflict, ReadVersion, ScanVersions};
pub use state::{
    Applied, ApplyError, CoordinatedTxn, GroupState, MovedTxn, PreparedTxn, ReadError,
};
pub use tscache::TimestampCache;
pub use types::{Priority, TxnId};
