//! The replicated state machine of one participant group (docs/design.md §4;
//! Spanner §4.1.3 and §4.2).
//!
//! [`GroupState`] applies the group's chosen Paxos entries, in slot order,
//! at every replica: one-phase commits write their versions into the MVCC
//! store at the entry's Paxos write timestamp; prepare records join the set
//! of prepared transactions; decisions apply or drop them; closed
//! timestamps only advance time. It is deterministic — every replica that
//! applies the same entries holds the same state — and it is what a
//! snapshot carries.
//!
//! # Safe time (Spanner §4.1.3)
//!
//! Every replica tracks `t_safe = min(t_paxos_safe, t_tm_safe)` and serves a
//! read at `t` only if `t ≤ t_safe`:
//!
//! - `t_paxos_safe` is the Paxos write timestamp of the highest applied
//!   entry. Paxos write timestamps rise with the slot, across leaders too
//!   (Spanner §4.1.2), so no write still to be applied here can have a
//!   timestamp at or below it. Closed timestamps
//!   ([`Command::CloseTimestamp`]) move it forward when there are no
//!   writes.
//! - `t_tm_safe` is one less than the smallest prepare timestamp among
//!   prepared transactions (unbounded when none is prepared): a prepared
//!   transaction may still commit at any timestamp at or above its prepare
//!   timestamp.
//!
//! A read at `t ≤ t_safe` therefore sees exactly the transactions committed
//! at or before `t`, and no later apply changes that answer.
//!
//! Reads of particular keys use a finer bound (Spanner §4.2.4's refinement):
//! a prepared transaction can only change the keys it writes, so
//! [`GroupState::t_safe_for_key`] and [`GroupState::t_safe_for_range`] hold a
//! read back only behind prepared transactions writing what it reads, and
//! [`GroupState::read`] and [`GroupState::scan`] check those. One slow
//! two-phase commit does not stall every read of its group.
//!
//! # Two-phase commit records
//!
//! Applying is idempotent and order-proof: a prepare record that arrives
//! after its transaction was decided (at a participant) or committed (at
//! the coordinator), a duplicate, or one whose Paxos timestamp is past its
//! deadline is void and changes nothing; a decision for a transaction not
//! prepared here is remembered until its deadline, so a prepare record that
//! follows it is void too. No record can bring a decided transaction back,
//! write below a later commit, or stop the replica.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;

use bytes::Bytes;
use meridian_paxos::{Entry, Payload, Slot};
use meridian_truetime::Timestamp;

use crate::codec::{DecodeError, Reader, Writer};
use crate::command::{
    Command, Decision, Write, decode_decision, decode_ranges, encode_decision, encode_ranges,
};
use crate::descriptor::RangeDescriptor;
use crate::fxhash::FxHashMap;
use crate::mvcc::{MvccError, MvccStore};
use crate::types::{Priority, TxnId};

/// The snapshot format this build writes and reads.
/// Version 3 added the prepared transactions' scanned ranges; version 4
/// the range descriptor and the transactions moved to a child at a split.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 4;

/// Default time a commit record is remembered (by transaction id) after it
/// applied: long enough for any client to retry a commit whose answer it
/// lost, and be told the truth.
pub const DEFAULT_COMMIT_RECORD_RETENTION_NANOS: u64 = 10 * 60 * 1_000_000_000;

/// Smallest encodings, for bounding counts read from a snapshot.
const MIN_RECENT_BYTES: usize = 16 + 8 + 8;
const MIN_PREPARED_BYTES: usize = 16 + 8 + 8 + 8 + 8 + 4 + 4 + 4;
const MIN_DECIDED_BYTES: usize = 16 + 1 + 8;
const MIN_COORDINATED_BYTES: usize = 16 + 8 + 4;
const MIN_VERSION_BYTES: usize = 4 + 8 + 1;
const MIN_MOVED_BYTES: usize = 16 + 8 + 8;
const MIN_DESCRIPTOR_BYTES: usize = 8 + 4 + 1 + 8;

/// What applying one entry did, for the transaction layer above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Nothing a transaction waits for: a no-op, a configuration, a closed
    /// timestamp, or a decision for a transaction not prepared here.
    Nothing,
    /// `txn` committed at `ts`; its writes are visible to reads at `≥ ts`.
    Committed {
        /// The transaction.
        txn: TxnId,
        /// Its commit timestamp.
        ts: Timestamp,
    },
    /// `txn` is prepared at `prepare_ts`.
    Prepared {
        /// The transaction.
        txn: TxnId,
        /// Its prepare timestamp.
        prepare_ts: Timestamp,
    },
    /// Prepared `txn` was aborted; its writes were dropped.
    Aborted {
        /// The transaction.
        txn: TxnId,
    },
    /// A prepare record for `txn` changed nothing: it came after the
    /// transaction's deadline, after its decision, or after its commit. The
    /// participant must not vote yes on it.
    PrepareVoid {
        /// The transaction.
        txn: TxnId,
    },
    /// A commit record (one-phase, or a coordinator's) writes a key outside
    /// the group's range at its slot: a split moved the key away before
    /// the record applied. The record is void here, at every replica: the
    /// transaction did not commit (a correct leader never proposes one:
    /// docs/design.md §9).
    CommitVoid {
        /// The transaction.
        txn: TxnId,
    },
    /// The range split (docs/design.md §9): this group now serves `left`,
    /// the new group `right.group` serves `right`. The child's initial
    /// state waits in [`GroupState::take_split_off`].
    Split {
        /// The range this group keeps.
        left: RangeDescriptor,
        /// The range the child serves.
        right: RangeDescriptor,
    },
    /// A split record that changed nothing: its generation is not the next
    /// one, or its key does not lie strictly inside the range.
    SplitVoid {
        /// The child it named.
        child: u64,
    },
}

/// An entry that cannot be applied. Every replica applies the same chosen
/// log, so this is a bug or corruption, never a transient condition: the
/// replica must stop rather than diverge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The record does not decode.
    #[error("entry at slot {slot} does not decode: {source}")]
    Decode {
        /// The entry's slot.
        slot: Slot,
        /// Why.
        source: DecodeError,
    },
    /// The MVCC store refused a write.
    #[error("entry at slot {slot}: {source}")]
    Mvcc {
        /// The entry's slot.
        slot: Slot,
        /// Why.
        source: MvccError,
    },
    /// Entries must be applied in slot order without gaps.
    #[error("entry at slot {got} applied after slot {applied}")]
    OutOfOrder {
        /// The last slot applied.
        applied: Slot,
        /// The slot offered.
        got: Slot,
    },
    /// A command's Paxos write timestamp did not rise (Spanner §4.1.2).
    #[error("entry at slot {slot} has timestamp {ts}, not above t_paxos_safe {paxos_safe}")]
    TimestampNotRising {
        /// The entry's slot.
        slot: Slot,
        /// Its timestamp.
        ts: Timestamp,
        /// The highest timestamp applied before.
        paxos_safe: Timestamp,
    },
    /// A decision commits below the transaction's prepare timestamp
    /// (Spanner §4.2.1: `s ≥` every prepare timestamp).
    #[error("txn {txn} commits at {commit_ts}, below its prepare timestamp {prepare_ts}")]
    CommitBelowPrepare {
        /// The transaction.
        txn: TxnId,
        /// The decided commit timestamp.
        commit_ts: Timestamp,
        /// Its prepare timestamp here.
        prepare_ts: Timestamp,
    },
}

/// Why a read cannot be served (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// `read_ts > t_safe`: transactions at or before `read_ts` may still be
    /// applied here. Wait, or read elsewhere.
    #[error("read at {read_ts} is not yet safe here (t_safe {t_safe})")]
    NotYetSafe {
        /// The timestamp asked for.
        read_ts: Timestamp,
        /// This replica's safe time.
        t_safe: Timestamp,
    },
    /// The store refused: below the GC horizon, or a scan limit too large.
    #[error(transparent)]
    Mvcc(#[from] MvccError),
}

/// A transaction prepared at this group and not yet decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedTxn {
    /// Its prepare timestamp (the prepare record's Paxos write timestamp).
    pub prepare_ts: Timestamp,
    /// Its coordinator group.
    pub coordinator: u64,
    /// Its wound-wait priority, for rebuilding its locks.
    pub priority: Priority,
    /// Its prepare deadline (see [`Command::Prepare`]).
    pub deadline: Timestamp,
    /// The writes it will apply if it commits.
    pub writes: Vec<Write>,
    /// The keys it read here, locked shared until the outcome.
    pub reads: Vec<Bytes>,
    /// The ranges `[start, end)` it scanned here (`end` `None`: no upper
    /// bound), range-locked shared until the outcome.
    pub ranges: Vec<(Bytes, Option<Bytes>)>,
}

/// A two-phase commit this group coordinated and decided to commit, kept
/// until every other participant has acknowledged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatedTxn {
    /// The commit timestamp `s`.
    pub commit_ts: Timestamp,
    /// The other participant groups.
    pub participants: Vec<u64>,
}

/// A prepared transaction whose keys (some or all) moved to a child group
/// at a split: decisions that reach this group for it are forwarded to the
/// child, and acknowledged to the coordinator only once the child has
/// applied them (docs/design.md §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MovedTxn {
    /// The child group that holds its moved keys.
    pub child: u64,
    /// Its coordinator group.
    pub coordinator: u64,
}

/// The replicated state of one participant group. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct GroupState {
    store: MvccStore,
    /// The range this group serves (docs/design.md §9).
    descriptor: RangeDescriptor,
    /// Prepared transactions moved (in part or whole) to a child group at
    /// a split, until the child acknowledges their decision.
    moved: BTreeMap<TxnId, MovedTxn>,
    /// The ranges split off this group, in the order they were (each with
    /// its child group and the generation of the split).
    children: Vec<RangeDescriptor>,
    /// The child's initial state after a split applied, until the
    /// transaction layer takes it. Not replicated as such: every replica
    /// computes it when it applies the split.
    split_off: Option<Box<GroupState>>,
    /// Slot of the last entry applied.
    applied_slot: Slot,
    /// Spanner §4.1.3: the Paxos write timestamp of the highest applied
    /// entry.
    paxos_safe: Timestamp,
    /// Spanner §4.2.2 `LastTS()`: the timestamp of the last commit applied.
    last_commit_ts: Timestamp,
    prepared: BTreeMap<TxnId, PreparedTxn>,
    /// `(prepare_ts, txn)` of every prepared transaction, for `t_tm_safe`.
    prepared_by_ts: BTreeSet<(Timestamp, TxnId)>,
    /// Every key a prepared transaction writes, with `(prepare_ts, txn)`
    /// of each such transaction, for the per-key and per-range `t_tm_safe`.
    prepared_writes: BTreeMap<Bytes, BTreeSet<(Timestamp, TxnId)>>,
    /// Participant-side decisions remembered until their deadline, so that
    /// a prepare record arriving late finds its transaction decided.
    decided: FxHashMap<TxnId, (Decision, Timestamp)>,
    /// `(deadline, txn)` of `decided`, for pruning.
    decided_by_deadline: BTreeSet<(Timestamp, TxnId)>,
    /// Commits this group coordinated, until every participant acknowledged.
    coordinated: BTreeMap<TxnId, CoordinatedTxn>,
    /// Commits applied recently: txn → commit timestamp.
    recent_commits: FxHashMap<TxnId, Timestamp>,
    /// `(entry ts, txn)` in apply order, for pruning `recent_commits`.
    recent_order: VecDeque<(Timestamp, TxnId)>,
    /// The largest transaction origin whose commit record was pruned (0:
    /// none yet). Origins of one group grow with its terms, so a
    /// transaction of an origin at or below it may have committed without
    /// a record left to say so.
    pruned_origin: u64,
    commit_retention_nanos: u64,
}

impl Default for GroupState {
    fn default() -> Self {
        GroupState::new(DEFAULT_COMMIT_RECORD_RETENTION_NANOS)
    }
}

impl GroupState {
    /// An empty group state that remembers commit records for
    /// `commit_retention_nanos` of Paxos time after they apply.
    pub fn new(commit_retention_nanos: u64) -> GroupState {
        GroupState {
            store: MvccStore::new(),
            descriptor: RangeDescriptor::whole(0),
            moved: BTreeMap::new(),
            children: Vec::new(),
            split_off: None,
            applied_slot: 0,
            paxos_safe: Timestamp::ZERO,
            last_commit_ts: Timestamp::ZERO,
            prepared: BTreeMap::new(),
            prepared_by_ts: BTreeSet::new(),
            prepared_writes: BTreeMap::new(),
            decided: FxHashMap::default(),
            decided_by_deadline: BTreeSet::new(),
            coordinated: BTreeMap::new(),
            recent_commits: FxHashMap::default(),
            recent_order: VecDeque::new(),
            pruned_origin: 0,
            commit_retention_nanos,
        }
    }

    /// This state with the range `descriptor` (the bootstrap descriptor of
    /// a group created by the cluster's configuration). A snapshot carries
    /// its own.
    pub fn with_descriptor(mut self, descriptor: RangeDescriptor) -> GroupState {
        self.descriptor = descriptor;
        self
    }

    /// The range this group serves, as of the last applied entry
    /// (docs/design.md §9).
    pub fn descriptor(&self) -> &RangeDescriptor {
        &self.descriptor
    }

    /// The prepared transactions moved to a child at a split whose
    /// decisions this group still forwards.
    pub fn moved(&self) -> impl Iterator<Item = (&TxnId, &MovedTxn)> {
        self.moved.iter()
    }

    /// The ranges split off this group, oldest first, as each child got
    /// it (its group, start, end and generation at the split).
    pub fn children(&self) -> &[RangeDescriptor] {
        &self.children
    }

    /// Where `txn` moved at a split, if it did and is still forwarded.
    pub fn moved_txn(&self, txn: TxnId) -> Option<MovedTxn> {
        self.moved.get(&txn).copied()
    }

    /// The child's initial state of the split applied last, once: the
    /// transaction layer builds the child's seed from it.
    pub fn take_split_off(&mut self) -> Option<GroupState> {
        self.split_off.take().map(|b| *b)
    }

    /// Forgets every prepared transaction (a planted bug's helper: a split
    /// that leaves the child's prepared transactions behind).
    #[cfg(feature = "planted-bugs")]
    #[doc(hidden)]
    pub fn drop_prepared(&mut self) {
        self.prepared.clear();
        self.prepared_by_ts.clear();
        self.prepared_writes.clear();
    }

    /// Whether every write of `writes` lies in the range.
    fn writes_inside(&self, writes: &[Write]) -> bool {
        writes.iter().all(|w| self.descriptor.contains(&w.key))
    }

    /// Applies the chosen entry `e`, the one after the last applied.
    ///
    /// An error means the replica cannot continue (see [`ApplyError`]); the
    /// state is unchanged by a failed apply except that nothing after the
    /// failing write was applied.
    pub fn apply(&mut self, e: &Entry) -> Result<Applied, ApplyError> {
        if e.slot != self.applied_slot + 1 {
            return Err(ApplyError::OutOfOrder {
                applied: self.applied_slot,
                got: e.slot,
            });
        }
        let Payload::Command(data) = &e.payload else {
            self.applied_slot = e.slot;
            return Ok(Applied::Nothing);
        };
        let cmd = Command::decode(data).map_err(|source| ApplyError::Decode {
            slot: e.slot,
            source,
        })?;
        if e.ts <= self.paxos_safe {
            return Err(ApplyError::TimestampNotRising {
                slot: e.slot,
                ts: e.ts,
                paxos_safe: self.paxos_safe,
            });
        }
        let applied = match cmd {
            Command::Commit { txn, .. } | Command::CoordinatorCommit { txn, .. }
                if !self.recent_commits.contains_key(&txn)
                    && !self.coordinated.contains_key(&txn)
                    && !match &cmd {
                        Command::Commit { writes, .. }
                        | Command::CoordinatorCommit { writes, .. } => self.writes_inside(writes),
                        _ => true,
                    } =>
            {
                Applied::CommitVoid { txn }
            }
            Command::Commit { txn, writes } => {
                self.write_all(e.slot, e.ts, writes)?;
                self.record_commit(txn, e.ts, e.ts);
                Applied::Committed { txn, ts: e.ts }
            }
            Command::CloseTimestamp => Applied::Nothing,
            Command::Prepare {
                txn,
                coordinator,
                priority,
                deadline,
                writes,
                reads,
                ranges,
            } => {
                if self.prepared.contains_key(&txn) {
                    // A duplicate: the first record stands.
                    Applied::Nothing
                } else if e.ts > deadline
                    || self.decided.contains_key(&txn)
                    || self.recent_commits.contains_key(&txn)
                    || !self.writes_inside(&writes)
                    || !reads.iter().all(|k| self.descriptor.contains(k))
                    || !ranges
                        .iter()
                        .all(|(s, e)| self.descriptor.contains_span(s, e.as_deref()))
                {
                    // (Or it names a key a split moved away before it
                    // applied: void at every replica, and never voted yes
                    // by a correct leader.)
                    // Too late, or already decided: the decision stands.
                    Applied::PrepareVoid { txn }
                } else {
                    for w in &writes {
                        self.prepared_writes
                            .entry(w.key.clone())
                            .or_default()
                            .insert((e.ts, txn));
                    }
                    self.prepared.insert(
                        txn,
                        PreparedTxn {
                            prepare_ts: e.ts,
                            coordinator,
                            priority,
                            deadline,
                            writes,
                            reads,
                            ranges,
                        },
                    );
                    self.prepared_by_ts.insert((e.ts, txn));
                    Applied::Prepared {
                        txn,
                        prepare_ts: e.ts,
                    }
                }
            }
            Command::Decide {
                txn,
                decision,
                deadline,
            } => self.decide(e, txn, decision, deadline)?,
            Command::CoordinatorCommit { txn, .. }
                if self.coordinated.contains_key(&txn)
                    || self.recent_commits.contains_key(&txn) =>
            {
                // A duplicate: the transaction committed once.
                Applied::Nothing
            }
            Command::CoordinatorCommit {
                txn,
                writes,
                participants,
            } => {
                self.write_all(e.slot, e.ts, writes)?;
                self.record_commit(txn, e.ts, e.ts);
                self.coordinated.insert(
                    txn,
                    CoordinatedTxn {
                        commit_ts: e.ts,
                        participants,
                    },
                );
                Applied::Committed { txn, ts: e.ts }
            }
            Command::Forget { txns } => {
                for txn in txns {
                    self.coordinated.remove(&txn);
                    self.moved.remove(&txn);
                }
                Applied::Nothing
            }
            Command::Split {
                key,
                child,
                generation,
            } => match self.descriptor.split_at(&key, child) {
                Some((left, right)) if generation == left.generation => {
                    self.split(e, &left, &right)?;
                    Applied::Split { left, right }
                }
                _ => Applied::SplitVoid { child },
            },
        };
        self.prune_decided(e.ts);
        self.paxos_safe = e.ts;
        self.applied_slot = e.slot;
        Ok(applied)
    }

    /// Applies a participant's decision record `e` for `txn`.
    fn decide(
        &mut self,
        e: &Entry,
        txn: TxnId,
        decision: Decision,
        deadline: Timestamp,
    ) -> Result<Applied, ApplyError> {
        let Some(p) = self.prepared.get(&txn) else {
            // Not prepared here (yet, or any more): remember the decision
            // until no prepare record can be valid, so a late one is void.
            if deadline >= e.ts && !self.decided.contains_key(&txn) {
                self.decided.insert(txn, (decision, deadline));
                self.decided_by_deadline.insert((deadline, txn));
            }
            return Ok(Applied::Nothing);
        };
        if let Decision::Commit(ts) = decision {
            if ts < p.prepare_ts {
                return Err(ApplyError::CommitBelowPrepare {
                    txn,
                    commit_ts: ts,
                    prepare_ts: p.prepare_ts,
                });
            }
        }
        let p = self.prepared.remove(&txn).expect("looked up above");
        let removed = self.prepared_by_ts.remove(&(p.prepare_ts, txn));
        assert!(removed, "prepared index out of sync for txn {txn}");
        for w in &p.writes {
            let on_key = self
                .prepared_writes
                .get_mut(&w.key)
                .expect("a prepared write is indexed");
            on_key.remove(&(p.prepare_ts, txn));
            if on_key.is_empty() {
                self.prepared_writes.remove(&w.key);
            }
        }
        if p.deadline >= e.ts {
            self.decided.insert(txn, (decision, p.deadline));
            self.decided_by_deadline.insert((p.deadline, txn));
        }
        Ok(match decision {
            Decision::Commit(ts) => {
                self.write_all(e.slot, ts, p.writes)?;
                self.record_commit(txn, ts, e.ts);
                Applied::Committed { txn, ts }
            }
            Decision::Abort => Applied::Aborted { txn },
        })
    }

    /// Applies a split (docs/design.md §9): this state keeps `left`, and the
    /// child's initial state, holding `right`, waits in `split_off`. The
    /// child gets every version of its keys (the whole history above the
    /// GC horizon and the newest at or below it, with the horizon), the
    /// prepared transactions' parts on its keys, the commit records and
    /// decisions (by transaction id: they answer late records and
    /// queries), and the entry's slot and timestamp as its own applied
    /// slot and `t_paxos_safe`. Coordinator records stay here.
    fn split(
        &mut self,
        e: &Entry,
        left: &RangeDescriptor,
        right: &RangeDescriptor,
    ) -> Result<(), ApplyError> {
        let horizon = self.store.gc_horizon();
        let mut keep = Vec::new();
        let mut moved = Vec::new();
        self.store.for_each_version(|key, ts, value| {
            let v = (Bytes::copy_from_slice(key), ts, value.cloned());
            if right.contains(key) {
                moved.push(v);
            } else {
                keep.push(v);
            }
        });
        let load = |versions| {
            MvccStore::load(horizon, versions).map_err(|source| ApplyError::Mvcc {
                slot: e.slot,
                source,
            })
        };
        let mut child = GroupState::new(self.commit_retention_nanos).with_descriptor(right.clone());
        child.store = load(moved)?;
        self.store = load(keep)?;
        child.applied_slot = e.slot;
        child.paxos_safe = e.ts;
        child.last_commit_ts = self.last_commit_ts;
        child.decided = self.decided.clone();
        child.decided_by_deadline = self.decided_by_deadline.clone();
        child.recent_commits = self.recent_commits.clone();
        child.recent_order = self.recent_order.clone();

        let prepared = std::mem::take(&mut self.prepared);
        self.prepared_by_ts.clear();
        self.prepared_writes.clear();
        for (txn, p) in prepared {
            let (mine, theirs) = split_prepared(&p, right);
            if let Some(theirs) = theirs {
                child.insert_prepared(txn, theirs);
                self.moved.insert(
                    txn,
                    MovedTxn {
                        child: right.group,
                        coordinator: p.coordinator,
                    },
                );
            }
            if let Some(mine) = mine {
                self.insert_prepared(txn, mine);
            }
        }
        self.descriptor = left.clone();
        self.children.push(right.clone());
        self.split_off = Some(Box::new(child));
        Ok(())
    }

    /// Adds a prepared transaction and its indexes.
    fn insert_prepared(&mut self, txn: TxnId, p: PreparedTxn) {
        for w in &p.writes {
            self.prepared_writes
                .entry(w.key.clone())
                .or_default()
                .insert((p.prepare_ts, txn));
        }
        self.prepared_by_ts.insert((p.prepare_ts, txn));
        self.prepared.insert(txn, p);
    }

    /// Forgets decisions whose deadline is below `now` (a Paxos write
    /// timestamp): every prepare record still to come is void by its own
    /// deadline.
    fn prune_decided(&mut self, now: Timestamp) {
        while let Some(&(deadline, txn)) = self.decided_by_deadline.first() {
            if deadline >= now {
                break;
            }
            self.decided_by_deadline.pop_first();
            self.decided.remove(&txn);
        }
    }

    fn write_all(
        &mut self,
        slot: Slot,
        ts: Timestamp,
        writes: Vec<Write>,
    ) -> Result<(), ApplyError> {
        for w in writes {
            self.store
                .write(w.key, ts, w.value)
                .map_err(|source| ApplyError::Mvcc { slot, source })?;
        }
        Ok(())
    }

    fn record_commit(&mut self, txn: TxnId, ts: Timestamp, entry_ts: Timestamp) {
        self.last_commit_ts = self.last_commit_ts.max(ts);
        self.recent_commits.insert(txn, ts);
        self.recent_order.push_back((entry_ts, txn));
        let cutoff = entry_ts.saturating_sub(self.commit_retention_nanos);
        while let Some(&(t, old)) = self.recent_order.front() {
            if t >= cutoff {
                break;
            }
            self.recent_order.pop_front();
            self.recent_commits.remove(&old);
            self.pruned_origin = self.pruned_origin.max(old.origin);
        }
    }

    /// The slot of the last entry applied.
    pub fn applied_slot(&self) -> Slot {
        self.applied_slot
    }

    /// Spanner §4.1.3 `t_paxos_safe`: the Paxos write timestamp of the
    /// highest applied entry.
    pub fn t_paxos_safe(&self) -> Timestamp {
        self.paxos_safe
    }

    /// Raises `t_paxos_safe` to `ts` without an entry: the leader knows
    /// that no entry it has not applied carries a timestamp at or below
    /// `ts` (every entry up to the slot at which it raised its timestamp
    /// floor to `ts` has applied, and every later one is above it). Only
    /// the leader that raised the floor may call this.
    pub fn close_at(&mut self, ts: Timestamp) {
        self.paxos_safe = self.paxos_safe.max(ts);
    }

    /// Spanner §4.1.3 `t_tm_safe`: one less than the smallest prepare
    /// timestamp of a prepared transaction, or [`Timestamp::MAX`] if none.
    pub fn t_tm_safe(&self) -> Timestamp {
        self.prepared_by_ts
            .first()
            .map_or(Timestamp::MAX, |(ts, _)| ts.prev())
    }

    /// Spanner §4.1.3: `t_safe = min(t_paxos_safe, t_tm_safe)`. A read at
    /// `t ≤ t_safe` is final here.
    pub fn t_safe(&self) -> Timestamp {
        self.t_paxos_safe().min(self.t_tm_safe())
    }

    /// `t_safe` for reads of `key` alone: held back only by prepared
    /// transactions that write `key` (Spanner §4.2.4's finer `t_tm_safe`).
    pub fn t_safe_for_key(&self, key: &[u8]) -> Timestamp {
        self.t_safe_for_key_closed(key, Timestamp::ZERO)
    }

    /// [`t_safe_for_key`](Self::t_safe_for_key) where the leader knows more
    /// than the log says: no entry it has not applied writes `key` at or
    /// below `closed` (every entry in its log when it remembered a read of
    /// `key` at `closed` in its timestamp cache has applied, and every
    /// later write of `key` gets a timestamp above it; docs/transactions.md,
    /// the timestamp cache). Prepared transactions on `key` still hold it
    /// back.
    pub fn t_safe_for_key_closed(&self, key: &[u8], closed: Timestamp) -> Timestamp {
        let tm = self
            .prepared_writes
            .get(key)
            .and_then(BTreeSet::first)
            .map_or(Timestamp::MAX, |(ts, _)| ts.prev());
        self.paxos_safe.max(closed).min(tm)
    }

    /// `t_safe` for a scan of the keys within `(start, end)`: held back only
    /// by prepared transactions writing a key in that range.
    pub fn t_safe_for_range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Timestamp {
        self.t_safe_for_range_closed(start, end, Timestamp::ZERO)
    }

    /// [`t_safe_for_range`](Self::t_safe_for_range) where the leader knows
    /// that no entry it has not applied writes a key of the range at or
    /// below `closed` (see [`t_safe_for_key_closed`](Self::t_safe_for_key_closed)).
    pub fn t_safe_for_range_closed(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        closed: Timestamp,
    ) -> Timestamp {
        let paxos_safe = self.paxos_safe.max(closed);
        let empty = match (start, end) {
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e))
            | (Bound::Excluded(s), Bound::Included(e)) => s >= e,
            _ => false,
        };
        if self.prepared_writes.is_empty() || empty {
            // (An empty or inverted range reads nothing; `BTreeMap::range`
            // would panic on an inverted one.)
            return paxos_safe;
        }
        let tm = self
            .prepared_writes
            .range::<[u8], _>((start, end))
            .filter_map(|(_, on_key)| on_key.first())
            .map(|(ts, _)| ts.prev())
            .min()
            .unwrap_or(Timestamp::MAX);
        paxos_safe.min(tm)
    }

    /// Spanner §4.2.2 `LastTS()`: the timestamp of the last commit applied.
    pub fn last_commit_ts(&self) -> Timestamp {
        self.last_commit_ts
    }

    /// Whether any transaction is prepared and undecided here.
    pub fn has_prepared(&self) -> bool {
        !self.prepared.is_empty()
    }

    /// The prepared, undecided transactions.
    pub fn prepared(&self) -> impl Iterator<Item = (&TxnId, &PreparedTxn)> {
        self.prepared.iter()
    }

    /// The prepared, undecided transaction `txn`, if it is one here.
    pub fn prepared_txn(&self, txn: TxnId) -> Option<&PreparedTxn> {
        self.prepared.get(&txn)
    }

    /// A participant-side decision for `txn` logged here, remembered until
    /// its prepare deadline.
    pub fn decided(&self, txn: TxnId) -> Option<Decision> {
        self.decided.get(&txn).map(|(d, _)| *d)
    }

    /// Commits this group coordinated that some participant has not yet
    /// acknowledged (presumed abort: a transaction this group coordinated
    /// and that is neither here nor in the commit records did not commit).
    pub fn coordinated(&self) -> impl Iterator<Item = (&TxnId, &CoordinatedTxn)> {
        self.coordinated.iter()
    }

    /// The coordinator decision for `txn`, while kept.
    pub fn coordinated_txn(&self, txn: TxnId) -> Option<&CoordinatedTxn> {
        self.coordinated.get(&txn)
    }

    /// The commit timestamp of `txn`, if it committed here recently (within
    /// the commit-record retention).
    pub fn committed(&self, txn: TxnId) -> Option<Timestamp> {
        self.recent_commits.get(&txn).copied()
    }

    /// Whether `txn` may have committed with its record since pruned: its
    /// origin is at or below that of a pruned record. Then "no record"
    /// does not mean "did not commit". Relies on the origins of one group
    /// growing with its leadership terms.
    pub fn may_have_forgotten(&self, txn: TxnId) -> bool {
        self.pruned_origin > 0 && txn.origin <= self.pruned_origin
    }

    /// Reads `key` at snapshot `at` (Spanner §4.1.3): `(version ts, value)`
    /// of the newest version `≤ at`, or `None`. Fails if `at > t_safe` or
    /// `at` is below the GC horizon.
    pub fn read(&self, key: &[u8], at: Timestamp) -> Result<Option<(Timestamp, Bytes)>, ReadError> {
        self.read_closed(key, at, Timestamp::ZERO)
    }

    /// [`read`](Self::read) at the leader that knows `key` closed at
    /// `closed` ([`t_safe_for_key_closed`](Self::t_safe_for_key_closed)).
    pub fn read_closed(
        &self,
        key: &[u8],
        at: Timestamp,
        closed: Timestamp,
    ) -> Result<Option<(Timestamp, Bytes)>, ReadError> {
        check_safe(at, self.t_safe_for_key_closed(key, closed))?;
        Ok(self.store.read(key, at)?)
    }

    /// Scans `[start, end)`-style bounds at snapshot `at`: at most `limit`
    /// rows `(key, version ts, value)` in key order. Fails as
    /// [`read`](Self::read) does, or if `limit` exceeds
    /// [`crate::mvcc::MAX_SCAN_ROWS`].
    pub fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        at: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Bytes, Timestamp, Bytes)>, ReadError> {
        self.scan_closed(start, end, at, limit, Timestamp::ZERO)
    }

    /// [`scan`](Self::scan) at the leader that knows the range closed at
    /// `closed` ([`t_safe_for_range_closed`](Self::t_safe_for_range_closed)).
    pub fn scan_closed(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        at: Timestamp,
        limit: usize,
        closed: Timestamp,
    ) -> Result<Vec<(Bytes, Timestamp, Bytes)>, ReadError> {
        check_safe(at, self.t_safe_for_range_closed(start, end, closed))?;
        Ok(self.store.scan((start, end), at, limit)?)
    }

    /// The timestamp of the newest version of `key`, tombstones included,
    /// or `None` if it has none (see [`MvccStore::latest_version_ts`]).
    pub fn latest_version(&self, key: &[u8]) -> Option<Timestamp> {
        self.store.latest_version_ts(key)
    }

    /// The newest applied version of `key`, tombstones included, as
    /// `(version ts, value)`: what an OCC read records (docs/design.md §5.4).
    pub fn read_latest_version(&self, key: &[u8]) -> Option<(Timestamp, Option<Bytes>)> {
        self.store
            .read_version(key, Timestamp::MAX)
            .expect("no horizon is above Timestamp::MAX")
    }

    /// The newest applied version of `key`. For reads in read-write
    /// transactions at the leader, under a lock that keeps every
    /// conflicting commit out until it has applied (Spanner §4.2.1).
    pub fn read_latest(&self, key: &[u8]) -> Option<(Timestamp, Bytes)> {
        self.store
            .read(key, Timestamp::MAX)
            .expect("no horizon is above Timestamp::MAX")
    }

    /// The newest applied live versions of the keys in `[start, end)`
    /// (`end` `None`: no upper bound), at most `limit` rows `(key, version
    /// ts, value)` in key order; deleted keys are skipped. For scans in
    /// read-write transactions at the leader: under a shared range lock
    /// every conflicting commit holds its exclusive lock until it has
    /// applied (Spanner §4.2.1), and an optimistic scan records the
    /// versions for validation (docs/design.md §5.4). Fails only if `limit`
    /// exceeds [`crate::mvcc::MAX_SCAN_ROWS`].
    pub fn scan_latest(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Bytes, Timestamp, Bytes)>, MvccError> {
        let hi = end.map_or(Bound::Unbounded, Bound::Excluded);
        if end.is_some_and(|e| e <= start) {
            // An empty or inverted range holds nothing.
            return Ok(Vec::new());
        }
        self.store
            .scan((Bound::Included(start), hi), Timestamp::MAX, limit)
    }

    /// Garbage-collects versions below `horizon`, clamped to `t_safe` (a
    /// read at or below `t_safe` may be served, and writes to come are all
    /// above it). Returns the horizon in force afterwards.
    pub fn gc(&mut self, horizon: Timestamp) -> Timestamp {
        self.store.gc(horizon.min(self.t_safe()));
        self.store.gc_horizon()
    }

    /// The GC horizon: reads below it fail.
    pub fn gc_horizon(&self) -> Timestamp {
        self.store.gc_horizon()
    }

    /// Bytes of the newest version of every key of the group that is not
    /// a delete: Σ (key length + value length), the range's size for
    /// `status` and for the size-based split policy. Exact at every applied
    /// slot (see [`MvccStore::live_bytes`]); a restored snapshot recounts.
    pub fn range_bytes(&self) -> u64 {
        self.store.live_bytes()
    }

    /// The key that halves [`GroupState::range_bytes`], where a size-based
    /// split puts its right half (see [`MvccStore::size_midpoint`]).
    pub fn size_midpoint(&self) -> Option<Bytes> {
        self.store.size_midpoint()
    }

    /// Versions stored, tombstones included.
    pub fn version_count(&self) -> usize {
        self.store.version_count()
    }

    /// The state as snapshot data (for [`meridian_paxos::Replica::compact`]).
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::with_capacity(64 + self.store.version_count() * 48);
        w.u8(SNAPSHOT_FORMAT_VERSION);
        w.u64(self.applied_slot);
        w.ts(self.paxos_safe);
        w.ts(self.last_commit_ts);
        w.ts(self.store.gc_horizon());
        w.u64(self.pruned_origin);
        encode_descriptor(&mut w, &self.descriptor);
        w.len(self.moved.len());
        for (txn, m) in &self.moved {
            w.txn(*txn);
            w.u64(m.child);
            w.u64(m.coordinator);
        }
        w.len(self.children.len());
        for d in &self.children {
            encode_descriptor(&mut w, d);
        }
        w.len(self.recent_order.len());
        for (entry_ts, txn) in &self.recent_order {
            w.txn(*txn);
            w.ts(self.recent_commits[txn]);
            w.ts(*entry_ts);
        }
        w.len(self.prepared.len());
        for (txn, p) in &self.prepared {
            w.txn(*txn);
            w.ts(p.prepare_ts);
            w.u64(p.coordinator);
            w.ts(p.priority.0);
            w.ts(p.deadline);
            w.len(p.writes.len());
            for write in &p.writes {
                w.bytes(&write.key);
                w.opt_bytes(write.value.as_ref());
            }
            w.len(p.reads.len());
            for key in &p.reads {
                w.bytes(key);
            }
            encode_ranges(&mut w, &p.ranges);
        }
        w.len(self.decided_by_deadline.len());
        for (deadline, txn) in &self.decided_by_deadline {
            w.txn(*txn);
            encode_decision(&mut w, self.decided[txn].0);
            w.ts(*deadline);
        }
        w.len(self.coordinated.len());
        for (txn, c) in &self.coordinated {
            w.txn(*txn);
            w.ts(c.commit_ts);
            w.len(c.participants.len());
            for g in &c.participants {
                w.u64(*g);
            }
        }
        w.len(self.store.version_count());
        self.store.for_each_version(|key, ts, value| {
            w.bytes(key);
            w.ts(ts);
            w.opt_bytes(value);
        });
        w.finish()
    }

    /// Rebuilds a state from [`encode`](Self::encode)'s output.
    pub fn decode(data: &Bytes, commit_retention_nanos: u64) -> Result<GroupState, DecodeError> {
        let mut r = Reader::new(data);
        let version = r.u8("snapshot format version")?;
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(DecodeError::Version(version));
        }
        let mut s = GroupState::new(commit_retention_nanos);
        s.applied_slot = r.u64("applied slot")?;
        s.paxos_safe = r.ts("t_paxos_safe")?;
        s.last_commit_ts = r.ts("last commit ts")?;
        let horizon = r.ts("gc horizon")?;
        s.pruned_origin = r.u64("pruned origin")?;
        s.descriptor = decode_descriptor(&mut r)?;
        for _ in 0..r.len("moved count", MIN_MOVED_BYTES)? {
            let txn = r.txn()?;
            let child = r.u64("moved to")?;
            let coordinator = r.u64("coordinator")?;
            s.moved.insert(txn, MovedTxn { child, coordinator });
        }
        for _ in 0..r.len("child count", MIN_DESCRIPTOR_BYTES)? {
            s.children.push(decode_descriptor(&mut r)?);
        }
        for _ in 0..r.len("recent commit count", MIN_RECENT_BYTES)? {
            let txn = r.txn()?;
            let ts = r.ts("commit ts")?;
            let entry_ts = r.ts("entry ts")?;
            s.recent_commits.insert(txn, ts);
            s.recent_order.push_back((entry_ts, txn));
        }
        for _ in 0..r.len("prepared count", MIN_PREPARED_BYTES)? {
            let txn = r.txn()?;
            let prepare_ts = r.ts("prepare ts")?;
            let coordinator = r.u64("coordinator")?;
            let priority = Priority::new(r.ts("priority")?);
            let deadline = r.ts("deadline")?;
            let n = r.len("prepared write count", 5)?;
            let mut writes = Vec::with_capacity(n);
            for _ in 0..n {
                writes.push(Write {
                    key: r.bytes("key")?,
                    value: r.opt_bytes("value")?,
                });
            }
            let n = r.len("prepared read count", 4)?;
            let mut reads = Vec::with_capacity(n);
            for _ in 0..n {
                reads.push(r.bytes("read key")?);
            }
            let ranges = decode_ranges(&mut r)?;
            s.prepared_by_ts.insert((prepare_ts, txn));
            for w in &writes {
                s.prepared_writes
                    .entry(w.key.clone())
                    .or_default()
                    .insert((prepare_ts, txn));
            }
            s.prepared.insert(
                txn,
                PreparedTxn {
                    prepare_ts,
                    coordinator,
                    priority,
                    deadline,
                    writes,
                    reads,
                    ranges,
                },
            );
        }
        for _ in 0..r.len("decided count", MIN_DECIDED_BYTES)? {
            let txn = r.txn()?;
            let decision = decode_decision(&mut r)?;
            let deadline = r.ts("deadline")?;
            s.decided.insert(txn, (decision, deadline));
            s.decided_by_deadline.insert((deadline, txn));
        }
        for _ in 0..r.len("coordinated count", MIN_COORDINATED_BYTES)? {
            let txn = r.txn()?;
            let commit_ts = r.ts("commit ts")?;
            let n = r.len("participant count", 8)?;
            let mut participants = Vec::with_capacity(n);
            for _ in 0..n {
                participants.push(r.u64("participant")?);
            }
            s.coordinated.insert(
                txn,
                CoordinatedTxn {
                    commit_ts,
                    participants,
                },
            );
        }
        let n = r.len("version count", MIN_VERSION_BYTES)?;
        let mut versions = Vec::with_capacity(n);
        for _ in 0..n {
            versions.push((r.bytes("key")?, r.ts("version ts")?, r.opt_bytes("value")?));
        }
        r.finish()?;
        s.store = MvccStore::load(horizon, versions)
            .map_err(|_| DecodeError::Invalid("snapshot: two values for one key and timestamp"))?;
        Ok(s)
    }
}

/// The parts of prepared transaction `p` outside and inside `right` (the
/// child's range at a split): writes and reads by key, scanned ranges cut
/// at the split key. `None` for a part that names nothing.
fn split_prepared(
    p: &PreparedTxn,
    right: &RangeDescriptor,
) -> (Option<PreparedTxn>, Option<PreparedTxn>) {
    let part = |inside: bool| {
        let writes: Vec<Write> = p
            .writes
            .iter()
            .filter(|w| right.contains(&w.key) == inside)
            .cloned()
            .collect();
        let reads: Vec<Bytes> = p
            .reads
            .iter()
            .filter(|k| right.contains(k) == inside)
            .cloned()
            .collect();
        let ranges: Vec<(Bytes, Option<Bytes>)> = p
            .ranges
            .iter()
            .filter_map(|(s, e)| {
                let (s, e) = if inside {
                    // [max(s, key), e)
                    (s.clone().max(right.start.clone()), e.clone())
                } else {
                    // [s, min(e, key))
                    let cut = match e {
                        Some(e) if e <= &right.start => e.clone(),
                        _ => right.start.clone(),
                    };
                    (s.clone(), Some(cut))
                };
                let empty = e.as_ref().is_some_and(|e| e <= &s);
                (!empty).then_some((s, e))
            })
            .collect();
        (!writes.is_empty() || !reads.is_empty() || !ranges.is_empty()).then(|| PreparedTxn {
            writes,
            reads,
            ranges,
            ..p.clone()
        })
    };
    (part(false), part(true))
}

/// A range descriptor: group, start, optional end, generation.
fn encode_descriptor(w: &mut Writer, d: &RangeDescriptor) {
    w.u64(d.group);
    w.bytes(&d.start);
    w.opt_bytes(d.end.as_ref());
    w.u64(d.generation);
}

/// Reads what [`encode_descriptor`] wrote.
fn decode_descriptor(r: &mut Reader<'_>) -> Result<RangeDescriptor, DecodeError> {
    Ok(RangeDescriptor {
        group: r.u64("descriptor group")?,
        start: r.bytes("descriptor start")?,
        end: r.opt_bytes("descriptor end")?,
        generation: r.u64("descriptor generation")?,
    })
}

/// A read at `at` where the safe time is `t_safe`.
fn check_safe(at: Timestamp, t_safe: Timestamp) -> Result<(), ReadError> {
    if at > t_safe {
        return Err(ReadError::NotYetSafe {
            read_ts: at,
            t_safe,
        });
    }
    Ok(())
}

#[cfg(test)]
mod split_tests;
#[cfg(test)]
mod tests;
