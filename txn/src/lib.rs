//! Sans-IO transaction protocol (docs/design.md §5): read-write transactions
//! under two-phase locking with wound-wait or under optimistic validation,
//! one- and two-phase commit with Spanner's commit timestamp rules and
//! commit wait, lock-free read-only transactions and snapshot reads at any
//! replica bounded by safe time.
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
//! Built so far: one-phase commit within a group, two-phase commit across
//! groups ([`coordinator`]), and, per transaction ([`CcMode`]), either
//! wound-wait locking or FaRM-style optimistic concurrency control (reads
//! without locks, validated at commit). Cross-group read-only transactions
//! build on this.
//!
//! # Example
//!
//! [`testkit::LocalCluster`] drives three real replicas of one group in
//! memory. A read-write transaction begins at the leader, reads under a
//! shared lock and commits in one Paxos round; the answer arrives only after
//! commit wait, and a snapshot read at the commit timestamp at a follower
//! sees the write:
//!
//! ```
//! use bytes::Bytes;
//! use meridian_participant::Write;
//! use meridian_truetime::Timestamp;
//! use meridian_txn::testkit::LocalCluster;
//! use meridian_txn::{CcMode, ReadAt, ReadOp, ReadResult, Request, Response};
//!
//! let t0 = Timestamp::from_nanos(1_767_225_600_000_000_000);
//! let mut c = LocalCluster::new(3, t0, 1_000_000, |_| {}); // ε = 1 ms
//! c.elect(1); // replica 1 leads, holds its lease and has started its term
//!
//! let begin = Request::Begin { priority: None, mode: CcMode::Locking, reserve: 0 };
//! let Ok(Response::Begun { txn, .. }) = c.call(1, begin) else {
//!     panic!("the leader begins transactions");
//! };
//! let key = Bytes::from_static(b"acct/1");
//! let read = c.call(1, Request::Read { txn, keys: vec![key.clone()], guest: None });
//! assert_eq!(read, Ok(Response::Read { values: vec![None], term: txn.origin }));
//!
//! let value = Bytes::from_static(b"100");
//! let writes = vec![Write::put(key.clone(), value.clone())];
//! let commit = Request::Commit { txn, writes, participants: vec![] };
//! let Ok(Response::Committed { commit_ts }) = c.call(1, commit) else {
//!     panic!("a lone transaction commits");
//! };
//! assert!(c.now().after(commit_ts)); // commit wait: s had surely passed
//!
//! let reads = vec![ReadOp::Get(key)];
//! let snapshot = c.call(2, Request::ReadOnly { at: ReadAt::Exact(commit_ts), reads });
//! assert_eq!(
//!     snapshot,
//!     Ok(Response::ReadOnly {
//!         read_ts: commit_ts,
//!         results: vec![ReadResult::Value(Some(value))],
//!     })
//! );
//! ```
#![deny(missing_docs)]

pub mod api;
mod config;
pub mod coordinator;
mod leader;
pub(crate) mod replica;
pub mod testkit;

pub use api::{
    AbortReason, CcMode, GroupId, GroupMessage, Guest, InvalidRequest, Participant, ReadAt, ReadOp,
    ReadResult, Reply, Request, RequestId, Response, Term, TxnError, TxnStatus, Vote,
};
pub use config::*;
pub use replica::{ChildSeed, GroupReplica, Input, Output};

/// Deliberate bugs of this layer the simulator must catch (docs/design.md §8).
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
    /// Optimistic commits and prepares skip `occ::validate`: a transaction
    /// commits on reads another transaction overwrote since (lost updates,
    /// write skew; breaks serializability).
    SkipOccValidation,
    /// The coordinator proposes its commit record at its own floor
    /// (`TT.now().latest` at the commit's arrival, plus one), ignoring the
    /// prepare timestamps: `s` may fall below a participant's prepare
    /// timestamp, so the participant is told to commit below what it
    /// promised (its group state refuses such a decision on apply, which
    /// the replica treats as fatal).
    CommitTsBelowPrepare,
    /// A new coordinator leader does not resume the commit decisions kept in
    /// its group state, and answers a participant's query from memory
    /// alone: no in-memory decision means abort, whatever the log holds
    /// (presumed abort without consulting the log). A participant of a
    /// committed transaction whose decision was lost is told to abort:
    /// atomicity breaks.
    CoordinatorForgetsDecision,
    /// A new participant leader does not rebuild the locks of transactions
    /// prepared in its log: another transaction can read or overwrite a
    /// prepared transaction's keys before its outcome.
    NoLockRebuildAfterFailover,
    /// A participant (and the coordinator's own group) releases its shared
    /// locks when it marks a cross-group transaction prepared, not at the
    /// outcome, and leaves them out of the prepare record: a writer can
    /// overwrite what the transaction read before it commits (write skew).
    ReleaseReadLocksAtPrepare,
    /// Scans of locking transactions take no range lock: they read the
    /// newest applied rows and hold nothing, so another transaction can
    /// insert into, change or delete from a scanned range before the
    /// scanner commits (phantoms, write skew).
    ScanWithoutRangeLock,
    /// [`Request::TxnStatus`] presumes abort too early: a transaction whose
    /// commit record is proposed but not yet applied (in flight in Paxos)
    /// is answered `Aborted`, and may then commit.
    TxnStatusPresumesAbort,
    /// The leader's timestamp cache is skipped for writes: a write of a
    /// key takes no timestamp above the lock-free reads of it the leader
    /// served, so a later write can land at or below a timestamp already
    /// read (snapshot reads that are not repeatable, and not the state at
    /// their timestamp).
    ReadTsNotRemembered,
    /// A participant acknowledges a two-phase-commit decision to the
    /// coordinator as soon as it arrives, before its own decision record is
    /// chosen and durable. Once every participant has acknowledged, the
    /// coordinator forgets the transaction; if the participant's leader
    /// then changes before the decision is applied, its successor finds the
    /// transaction prepared, asks, and is told to abort a commit
    /// (presumed abort): atomicity breaks.
    DecisionAckBeforeDurable,
    /// A `Prepare` that arrives after the transaction was aborted at the
    /// participant (wounded, timed out, told to abort) begins it again and
    /// prepares it, without the reads and locks it lost: the participant
    /// votes yes for writes computed from reads others may have
    /// overwritten since.
    PrepareRevivesAborted,
    /// At a split, the child's timestamps start from zero instead of the
    /// parent leader's floor (its highest assigned timestamp and the reads
    /// it served, in its timestamp cache) and the split's timestamp: a
    /// write at the child can land at or below a timestamp the parent
    /// already served a read of that key at, and a prepare (whose
    /// timestamp reads no clock) below the child's own history
    /// (docs/design.md §9, rule `split-child-safe-time-from-zero`).
    SplitChildSafeTimeFromZero,
    /// At a split, the right half's prepared transactions are not moved to
    /// the child: their decisions find nothing there, and committed writes
    /// are lost (rule `split-drops-prepared`).
    SplitDropsPrepared,
    /// A decision that reaches the parent for a transaction moved to the
    /// child at a split is acknowledged at once, not forwarded and
    /// acknowledged after the child applied it: the coordinator forgets the
    /// decision, and the child, asking, is told to abort a commit (rule
    /// `split-ack-before-child-decides`).
    SplitAckBeforeChildDecides,
    /// Lock-free reads are served whatever the replica's range: a replica
    /// that applied a split answers reads of the keys it gave away from
    /// what is left (nothing), and a key is served by two groups (rule
    /// `stale-descriptor-served`).
    StaleDescriptorServed,
}

/// Stands in for [`PlantedBug`] when the feature is off: every bug check
/// is a constant `false`.
#[cfg(not(feature = "planted-bugs"))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct BugStub;
