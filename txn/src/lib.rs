//! Sans-IO transaction protocol (DESIGN.md §5): read-write transactions
//! under two-phase locking with wound-wait, one-phase commit with Spanner's
//! commit timestamp rules and commit wait, lock-free read-only transactions
//! and snapshot reads at any replica bounded by safe time.
//!
//! The crate's centre is [`GroupReplica`]: one replica of one participant
//! group as a driver sees it. It owns the group's Paxos replica
//! (`meridian-paxos`), its replicated state machine
//! ([`meridian_participant::GroupState`]) and, while it leads, the lock
//! table and transaction table of the current term. The driver feeds it
//! [`Input`]s — Paxos messages, storage completions, ticks, client
//! [`Request`]s — each with the current TrueTime reading, and carries out
//! its [`Output`]s: messages to send, records to persist, replies. The node
//! runtime and the deterministic simulator drive the same code.
//!
//! Built so far: single-group transactions (one-phase commit). The
//! two-phase-commit coordinator, OCC validation and cross-group read-only
//! transactions build on this.
#![deny(missing_docs)]

pub mod api;
mod config;
mod leader;
mod replica;
pub mod testkit;

pub use api::{
    AbortReason, InvalidRequest, ReadAt, ReadOp, ReadResult, Reply, Request, RequestId, Response,
    TxnError,
};
pub use config::*;
pub use replica::{GroupReplica, Input, Output};

/// Deliberate bugs of this layer the simulator must catch (DESIGN.md §8).
#[cfg(feature = "planted-bugs")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlantedBug {
    /// Entries apply, and commits are acknowledged, as soon as they are
    /// chosen, without waiting for `TT.after(s)`.
    SkipCommitWait,
    /// Lock-free reads are served at once, from whatever the replica has
    /// applied, without waiting for `t_safe` to reach the read timestamp.
    ReadWithoutSafeTime,
    /// The leader serves locking reads and lease-based strong reads without
    /// checking that it holds its lease.
    ReadWithoutLease,
}

/// Stands in for [`PlantedBug`] when the feature is off: every bug check
/// is a constant `false`.
#[cfg(not(feature = "planted-bugs"))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct BugStub;
