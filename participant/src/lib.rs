//! Sans-IO participant group state machine (DESIGN.md §4): the MVCC store,
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
//! - [`types`]: [`TxnId`] and the wound-wait [`Priority`]; [`fxhash`]: the
//!   unseeded hasher the cores' maps use.
//!
//! All are pure data structures: no clock, no randomness, no I/O. Every
//! timestamp is an argument. The transaction layer (`meridian-txn`) drives
//! them, with the Paxos replica, as one group replica.
#![deny(missing_docs)]

mod codec;
pub mod command;
pub mod fxhash;
pub mod locks;
pub mod mvcc;
pub mod state;
pub mod types;

/// Deliberate bugs the simulator must catch (DESIGN.md §8).
#[cfg(feature = "planted-bugs")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlantedBug {
    /// Wound-wait without the wound: an older requester waits for a younger
    /// holder instead of wounding it, so deadlocks can form.
    NoWound,
}

pub use codec::DecodeError;
pub use command::{Command, Decision, Write};
pub use locks::{Acquire, Grant, LockError, LockLimits, LockMode, LockTable, WaitsFor};
pub use mvcc::{GcStats, MvccError, MvccStore};
pub use state::{Applied, ApplyError, GroupState, PreparedTxn, ReadError};
pub use types::{Priority, TxnId};
