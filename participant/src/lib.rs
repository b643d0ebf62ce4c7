//! Sans-IO participant group state machine (DESIGN.md §4): the MVCC store,
//! the wound-wait lock table, prepared transactions, safe time and closed
//! timestamps. It applies committed Paxos entries and does no I/O.
//!
//! Built so far:
//! - [`mvcc`]: the multi-version store, key → versions by commit timestamp,
//!   with garbage collection below a horizon (Spanner §1, §2.1, §4.1).
//! - [`locks`]: the leader's lock table, shared/exclusive locks with
//!   wound-wait deadlock avoidance and fair FIFO wait queues (Spanner
//!   §4.2.1).
//! - [`types`]: [`TxnId`] and the wound-wait [`Priority`].
//!
//! Both are pure data structures: no clock, no randomness, no I/O. Every
//! timestamp is an argument.
#![deny(missing_docs)]

mod fxhash;
pub mod locks;
pub mod mvcc;
pub mod types;

pub use locks::{Acquire, Grant, LockError, LockLimits, LockMode, LockTable, WaitsFor};
pub use mvcc::{GcStats, MvccError, MvccStore};
pub use types::{Priority, TxnId};
