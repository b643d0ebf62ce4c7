//! [`GroupReplica`]: one replica of one participant group, as the driver
//! sees it — the Paxos replica, the replicated [`GroupState`], and, while
//! it leads, the transaction table.

use std::collections::{BTreeMap, VecDeque};

use meridian_participant::fxhash::{FxHashMap, FxHashSet};
use meridian_participant::{
    Applied, Command, Decision, GroupState, LockError, LockMode, Priority, ReadError,
    TimestampCache, TxnId, WaitsFor, Write,
};
use meridian_paxos::{
    Entry, Message, NodeId, PersistRequest, ProposalId, Recovered, Replica, Role, Slot, Snapshot,
};
use meridian_truetime::{Timestamp, TtInterval};
use rand::RngCore;

use crate::api::{
    AbortReason, CcMode, GroupId, GroupMessage, Guest, Participant, ReadAt, ReadOp, ReadResult,
    Reply, Request, RequestId, Response, TxnError, TxnStatus, Vote, check_key,
    check_operation_count, check_reads, check_scan, check_write,
};
use crate::config::Config;
use crate::coordinator::{Action, Coordinator};
use crate::leader::{ActiveTxn, CommitKind, Leader, Op, ReadyToCommit, reply_all};

mod split;
pub use split::ChildSeed;

/// What drives a group replica.
#[derive(Clone, Debug)]
pub enum Input {
    /// Time passed: check timers (deliver at or soon after
    /// [`GroupReplica::next_deadline`]).
    Tick,
    /// A Paxos message from a peer replica of the group.
    Message(Message),
    /// Every [`PersistRequest`] with `seq` at most this is durable.
    Persisted {
        /// Highest durable sequence number.
        seq: u64,
    },
    /// A client request; answered by exactly one [`Output::Reply`] with the
    /// same `id` while this replica lives.
    Request {
        /// Chosen by the driver, echoed in the reply.
        id: RequestId,
        /// The request.
        request: Request,
    },
    /// A two-phase-commit message from another group's leader.
    FromGroup(GroupMessage),
    /// The driver's verdict on this node's clock (docs/design.md §2): `ok`
    /// while its measured offset from its peers is within the ε bound,
    /// not `ok` once it is outside (`reason` says what was measured). While
    /// unhealthy the replica neither leads nor serves: it steps down,
    /// campaigns for nothing, promises nothing, applies nothing (commit
    /// wait is judged on its own clock) and answers every request
    /// [`TxnError::ClockUnhealthy`]. See [`GroupReplica`].
    ClockHealth {
        /// Whether the clock is within its bound.
        ok: bool,
        /// What the driver measured (for the error clients see).
        reason: String,
    },
    /// Hand the group's leadership to another voter, for a node that is
    /// shutting down: see [`meridian_paxos::Input::HandOver`] (ignored
    /// unless this replica leads). While it is in progress the leader
    /// proposes nothing, so a commit that needs a record aborts
    /// ([`AbortReason::LeaderChanged`]) and the client retries at the
    /// target; reads under the lease are still served. When the leader
    /// steps down its transaction table goes, as at any change of leader.
    HandOver {
        /// The voter to hand over to; `None` lets the leader choose.
        to: Option<NodeId>,
    },
}

/// What a group replica asks of its driver.
#[derive(Clone, Debug)]
pub enum Output {
    /// Send a Paxos message to a peer (best effort).
    Send(Message),
    /// Write, sync, then report [`Input::Persisted`] (see
    /// [`meridian_paxos::Storage`]).
    Persist(PersistRequest),
    /// Deliver `msg` to the leader of `group` (best effort; see
    /// [`GroupMessage`]).
    ToGroup {
        /// The group addressed.
        group: GroupId,
        /// The message.
        msg: GroupMessage,
    },
    /// The answer to the request `id`.
    Reply {
        /// The request answered.
        id: RequestId,
        /// The answer.
        reply: Reply,
    },
    /// Entries this replica just applied to its state, in slot order. For
    /// observers (metrics, the simulator's checkers); a driver may ignore
    /// it.
    Applied(Vec<Entry>),
    /// The state was replaced by a snapshot covering slots up to
    /// `last_slot`. For observers.
    SnapshotRestored {
        /// The last slot the snapshot covers.
        last_slot: Slot,
    },
    /// The Paxos role or known leader changed. For observers.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The leader now followed, if known.
        leader: Option<NodeId>,
    },
    /// This replica applied a split of its group's range (docs/design.md
    /// §9): the driver creates the child replica on this node with
    /// [`GroupReplica::from_split`] and makes the child's first
    /// [`Output::Persist`] durable before the child answers anything. A
    /// replica replaying its log after a restart emits it again; a driver
    /// that already has the child (recovered from its own records)
    /// ignores it.
    SplitChild(Box<ChildSeed>),
}

impl Output {
    /// Moves the [`Output::Persist`] requests out of `out`, in order,
    /// leaving the other outputs in theirs: for a driver that must make a
    /// replica's first state durable before anything else of it goes out
    /// (a split's child, docs/design.md §9).
    pub fn take_persists(out: &mut Vec<Output>) -> Vec<PersistRequest> {
        let mut persists = Vec::new();
        let mut rest = Vec::with_capacity(out.len());
        for o in out.drain(..) {
            match o {
                Output::Persist(req) => persists.push(req),
                o => rest.push(o),
            }
        }
        *out = rest;
        persists
    }
}

/// How a pending commit turned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolution {
    /// Committed at this timestamp.
    Committed(Timestamp),
    /// Certainly not committed: never in a log, or its slot holds another
    /// entry, or no commit record covers it.
    NotCommitted,
    /// Cannot be told: its commit record may have been pruned.
    Unknown,
}

/// A commit record proposed by this replica, until its slot applies.
#[derive(Debug)]
struct PendingCommit {
    targets: Vec<RequestId>,
    /// The slot and Paxos write timestamp, once the entry is in the log.
    placed: Option<(Slot, Timestamp)>,
}

/// A prepare record proposed by this replica, until its slot is chosen.
#[derive(Debug)]
struct PendingPrepare {
    coordinator: GroupId,
    deadline: Timestamp,
    /// The slot and Paxos write timestamp, once the entry is in the log.
    placed: Option<(Slot, Timestamp)>,
}

/// A transaction this replica coordinates, until its commit record is
/// proposed or it aborts.
#[derive(Debug)]
struct CoordMeta {
    targets: Vec<RequestId>,
    priority: Priority,
    mode: CcMode,
    /// `TT.now().latest` when two-phase commit began, plus one: the
    /// coordinator's own floor for the commit timestamp, before any
    /// prepare timestamp raises it.
    floor: Timestamp,
    /// Its writes at this group.
    writes: Vec<Write>,
    participants: Vec<Participant>,
}

/// The timestamp a lock-free read waits for.
#[derive(Clone, Copy, Debug)]
enum ReadTarget {
    /// Exactly this timestamp.
    At(Timestamp),
    /// The newest safe timestamp, once it is at least `floor`.
    Newest { floor: Timestamp },
}

/// A lock-free read waiting for safe time.
#[derive(Debug)]
struct ReadWait {
    id: RequestId,
    reads: Vec<ReadOp>,
    target: ReadTarget,
    /// Local time after which it fails with `NotYetSafe`.
    deadline: Timestamp,
    /// Local time from which its timestamp is within L of
    /// `TT.now().latest` (docs/transactions.md, "Reads at a timestamp");
    /// until then it only waits: no timestamp is remembered, no close is
    /// proposed for it.
    admit_at: Timestamp,
    /// Whether it has been admitted (its timestamp came within L).
    admitted: bool,
    /// At the leader: its keys and ranges are in the timestamp cache at its
    /// timestamp, so every later write of them lies above it, and it may
    /// be served once every entry in the log up to this slot has applied.
    closed_after: Option<Slot>,
}

impl ReadWait {
    /// The timestamp it reads at, or its floor.
    fn read_ts(&self) -> Timestamp {
        target_ts(self.target)
    }
}

/// One replica of a participant group: Paxos, the replicated group state,
/// and (while leading) the transaction table. A sans-IO state machine: the
/// driver feeds [`Input`]s with the current TrueTime reading and carries
/// out the [`Output`]s.
///
/// # Rules it keeps (docs/design.md §4, §5; Spanner §4)
///
/// - **Read-write transactions** run at the leader while it holds its lease
///   and has applied every entry of earlier leaders
///   ([`meridian_paxos::Replica::term_started`]). Reads take shared locks
///   and read the newest applied version; commit takes exclusive locks on
///   the writes under wound-wait, marks the transaction prepared in the
///   lock table (it can no longer be wounded), and proposes one commit
///   record. Its commit timestamp is the entry's Paxos write timestamp:
///   above every timestamp assigned before, above `TT.now().latest` at the
///   commit's arrival, inside the lease.
/// - **Commit wait.** No replica applies an entry before `TT.after` of its
///   timestamp on its own clock; so no data committed at `s` is visible
///   anywhere, and no client is told of the commit, before `s` has passed
///   in true time (Spanner §4.1.2: "before allowing any coordinator
///   replica to apply the commit record, the coordinator leader waits until
///   TT.after(s)"). The wait overlaps the Paxos round. The leader answers
///   the client and releases the locks when the commit applies.
/// - **Safe time.** Reads at a timestamp are served by any replica once
///   `t_safe` reaches it, waiting at most `read_wait_nanos`. An idle
///   leader closes timestamps through Paxos every `close_interval_nanos`.
/// - **Failover.** A new term gets a fresh, empty transaction table; the
///   previous term's unprepared transactions are aborted
///   ([`AbortReason::LeaderChanged`]).
pub struct GroupReplica {
    cfg: Config,
    paxos: Replica,
    state: GroupState,
    /// Chosen entries waiting for `TT.after(ts)` before they apply.
    unapplied: VecDeque<Entry>,
    leader: Option<Leader>,
    commits: FxHashMap<TxnId, PendingCommit>,
    by_proposal: FxHashMap<ProposalId, TxnId>,
    /// Commits placed in the log, by slot. A slot can hold several: a
    /// proposal whose entry was overwritten (by a later leader, or a
    /// snapshot install) may still be chosen elsewhere, so it stays here
    /// until its slot applies, beside this replica's later proposal there.
    by_slot: BTreeMap<Slot, Vec<TxnId>>,
    /// Replies owed once `TT.after(ts)`: `(ts, request, answer)`.
    commit_waits: Vec<(Timestamp, RequestId, Reply)>,
    /// Transactions without writes committed at `ts` that keep their locks
    /// until `TT.after(ts)`: `(ts, txn)`.
    no_write_holds: Vec<(Timestamp, TxnId)>,
    read_waits: Vec<ReadWait>,
    /// The idle leader's proposed closed timestamp not yet in the log.
    close_proposal: Option<ProposalId>,
    /// A closed timestamp proposed for a waiting read
    /// ([`GroupReplica::close_for_read`]), not yet in the log. Apart from
    /// `close_proposal`: a read's close that waits (for its timestamp, or
    /// for the lease) never holds back the idle closes that advance every
    /// replica's safe time.
    read_close: Option<ProposalId>,
    /// The leader's timestamp cache for its current term: the timestamps
    /// of the lock-free reads it served, by key and range, that every
    /// later write of them must exceed (docs/transactions.md). Empty, and
    /// replaced, at every change of term.
    ts_cache: TimestampCache,
    /// Local time at which an idle leader next closes a timestamp.
    next_close_at: Timestamp,
    next_gc_at: Timestamp,
    next_expiry_at: Timestamp,
    /// ε of the last reading, for converting `TT.after(t)` into a local
    /// deadline.
    epsilon: u64,
    /// Transactions whose lock waits may have ended.
    resume: VecDeque<TxnId>,
    ready: Vec<ReadyToCommit>,
    /// The two-phase commits this replica coordinates in its current term.
    coord: Coordinator,
    coord_meta: FxHashMap<TxnId, CoordMeta>,
    /// Prepare records this replica proposed, until chosen (or lost).
    prepares: FxHashMap<TxnId, PendingPrepare>,
    prepare_proposals: FxHashMap<ProposalId, TxnId>,
    prepare_slots: BTreeMap<Slot, Vec<TxnId>>,
    /// Decisions proposed this term and not yet applied.
    deciding: FxHashSet<TxnId>,
    /// Local time at which a leader next asks coordinators about its
    /// prepared transactions.
    next_query_at: Timestamp,
    /// Why this node's clock is outside its bound, while the driver says
    /// so ([`Input::ClockHealth`]); `None` while it is healthy.
    clock_unhealthy: Option<String>,
    /// A split this leader proposed, until it applies (docs/design.md §9).
    split_flight: Option<split::SplitFlight>,
    /// Moved transactions whose decision the child acknowledged, this term.
    child_acks: FxHashSet<TxnId>,
    /// A replica created by a split: the parent leader's timestamp floor
    /// (its timestamp cache), below which no write of this group lands.
    inherited_floor: Timestamp,
    /// Created by a split ([`GroupReplica::from_split`]).
    from_split: bool,
    /// The parent group, for a replica created by a split.
    parent: Option<GroupId>,
    /// [`start`](Self::start) has run: a snapshot restored from now on
    /// was installed by the leader.
    started: bool,
}

impl std::fmt::Debug for GroupReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupReplica")
            .field("group", &self.cfg.group)
            .field("paxos", &self.paxos)
            .field("t_safe", &self.state.t_safe())
            .field("leading", &self.leader.is_some())
            .finish_non_exhaustive()
    }
}

impl GroupReplica {
    /// A replica recovered from `state` (`Recovered::default()` for a new
    /// one); `rng` feeds Paxos election jitter. Call
    /// [`start`](Self::start) next.
    pub fn new(cfg: Config, state: Recovered, rng: Box<dyn RngCore + Send>) -> GroupReplica {
        cfg.validate();
        let paxos = Replica::new(cfg.paxos.clone(), state, rng);
        GroupReplica::with_paxos(cfg, paxos)
    }

    fn with_paxos(cfg: Config, paxos: Replica) -> GroupReplica {
        GroupReplica {
            state: GroupState::new(cfg.commit_record_retention_nanos)
                .with_descriptor(cfg.descriptor.clone()),
            paxos,
            unapplied: VecDeque::new(),
            leader: None,
            commits: FxHashMap::default(),
            by_proposal: FxHashMap::default(),
            by_slot: BTreeMap::new(),
            commit_waits: Vec::new(),
            no_write_holds: Vec::new(),
            read_waits: Vec::new(),
            close_proposal: None,
            read_close: None,
            ts_cache: TimestampCache::new(cfg.ts_cache_keys, cfg.ts_cache_ranges),
            next_close_at: Timestamp::ZERO,
            next_gc_at: Timestamp::ZERO,
            next_expiry_at: Timestamp::ZERO,
            epsilon: 0,
            resume: VecDeque::new(),
            ready: Vec::new(),
            coord: Coordinator::new(cfg.prepare_timeout_nanos, cfg.resend_interval_nanos),
            coord_meta: FxHashMap::default(),
            prepares: FxHashMap::default(),
            prepare_proposals: FxHashMap::default(),
            prepare_slots: BTreeMap::new(),
            deciding: FxHashSet::default(),
            next_query_at: Timestamp::ZERO,
            clock_unhealthy: None,
            split_flight: None,
            child_acks: FxHashSet::default(),
            inherited_floor: Timestamp::ZERO,
            from_split: false,
            parent: None,
            started: false,
            cfg,
        }
    }

    /// Starts the replica (restores a recovered snapshot, arms timers).
    pub fn start(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        let local = now.midpoint();
        self.next_gc_at = local.saturating_add(self.cfg.gc_interval_nanos);
        let mut pout = Vec::new();
        self.paxos.start(now, &mut pout);
        self.absorb(pout, out);
        if self.from_split {
            // A child led by the parent leader that proposed the split
            // (docs/design.md §9): its term started with the parent's, at
            // the split's slot, so it serves at once, with the moved
            // prepared transactions' locks rebuilt.
            self.sync_leadership(now, out);
            if self.paxos.term_started() {
                if let Some(l) = self.leader.as_mut() {
                    l.term_applied = true;
                }
                self.start_term(now, out);
            }
        }
        self.started = true;
        self.finish(now, out);
    }

    /// Feeds one input; outputs are appended to `out`.
    pub fn step(&mut self, now: TtInterval, input: Input, out: &mut Vec<Output>) {
        self.epsilon = now.epsilon_nanos();
        let paxos_input = match input {
            Input::Tick => meridian_paxos::Input::Tick,
            Input::Message(m) => meridian_paxos::Input::Message(m),
            Input::Persisted { seq } => meridian_paxos::Input::Persisted { seq },
            Input::Request { id, request } => {
                // Leadership changes only in Paxos steps, and every step
                // ends in `finish`, so the term's table is already current.
                self.handle_request(now, id, request, out);
                self.finish(now, out);
                return;
            }
            Input::FromGroup(msg) => {
                self.handle_group_message(now, msg, out);
                self.finish(now, out);
                return;
            }
            Input::ClockHealth { ok, reason } => {
                self.set_clock_health(ok, reason, out);
                meridian_paxos::Input::ClockHealth { ok }
            }
            Input::HandOver { to } => meridian_paxos::Input::HandOver { to },
        };
        let mut pout = Vec::new();
        self.paxos.step(now, paxos_input, &mut pout);
        self.absorb(pout, out);
        self.finish(now, out);
    }

    /// docs/design.md §2: a node whose clock is outside its ε bound must
    /// not lead or serve. Going unhealthy, the Paxos replica steps down
    /// (the term's table goes with it, as at any failover) and lock-free
    /// reads waiting for safe time fail with [`TxnError::ClockUnhealthy`]:
    /// whether `t_safe` covers them was judged on this clock. Replies owed
    /// after a commit wait (`TT.after(s)`) and commits whose slots have
    /// not applied wait until the clock is back: nothing applies while it
    /// is out of bound, since commit wait is judged on it.
    fn set_clock_health(&mut self, ok: bool, reason: String, out: &mut Vec<Output>) {
        if ok {
            self.clock_unhealthy = None;
            return;
        }
        let reason = if reason.is_empty() {
            "clock offset from peers beyond the bound".to_string()
        } else {
            reason
        };
        for w in std::mem::take(&mut self.read_waits) {
            let reply = Err(TxnError::ClockUnhealthy {
                reason: reason.clone(),
            });
            out.push(Output::Reply { id: w.id, reply });
        }
        self.clock_unhealthy = Some(reason);
    }

    /// Proposes a one-at-a-time change of the group's voters (an operator's
    /// request, at the leader): see
    /// [`meridian_paxos::Replica::propose_membership`]. Transactions are
    /// unaffected; a leader that removes itself steps down once the change
    /// is chosen, and its unprepared transactions abort as at any failover.
    pub fn propose_membership(
        &mut self,
        now: TtInterval,
        change: meridian_paxos::MembershipChange,
        out: &mut Vec<Output>,
    ) -> Result<(), meridian_paxos::ProposeError> {
        self.epsilon = now.epsilon_nanos();
        let mut pout = Vec::new();
        let result = self.paxos.propose_membership(now, change, &mut pout);
        self.absorb(pout, out);
        self.finish(now, out);
        result.map(|_| ())
    }

    // ------------------------------------------------------------------
    // Queries
    // ------------------------------------------------------------------

    /// The Paxos replica (role, leader, lease, log positions).
    pub fn paxos(&self) -> &Replica {
        &self.paxos
    }

    /// This replica's configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The group this replica's group split from, if it was created by a
    /// split ([`GroupReplica::from_split`]) and has not restarted since.
    pub fn parent_group(&self) -> Option<GroupId> {
        self.parent
    }

    /// The replicated group state (safe time, reads, version counts).
    pub fn state(&self) -> &GroupState {
        &self.state
    }

    /// This replica's safe time (Spanner §4.1.3).
    pub fn t_safe(&self) -> Timestamp {
        self.state.t_safe()
    }

    /// Whether the driver last reported this node's clock within its bound
    /// ([`Input::ClockHealth`]; a new or restarted replica starts healthy).
    pub fn clock_healthy(&self) -> bool {
        self.clock_unhealthy.is_none()
    }

    /// Whether this replica holds a transaction table (it leads a term).
    pub fn is_leading(&self) -> bool {
        self.leader.is_some()
    }

    /// Transactions active at this leader (0 if not leading).
    pub fn active_txns(&self) -> usize {
        self.leader.as_ref().map_or(0, |l| l.txns.len())
    }

    /// The waits-for graph of the leader's lock table (docs/design.md §4: who
    /// waits for whom); empty if not leading.
    pub fn waits_for(&self) -> Vec<WaitsFor> {
        self.leader
            .as_ref()
            .map(|l| l.locks.waits_for())
            .unwrap_or_default()
    }

    /// Chosen entries waiting for their commit wait before they apply.
    pub fn unapplied_len(&self) -> usize {
        self.unapplied.len()
    }

    /// The local time at which the replica next needs an [`Input::Tick`].
    pub fn next_deadline(&self) -> Timestamp {
        let after = |ts: Timestamp| ts.saturating_add(self.epsilon + 1);
        let mut d = self.paxos.next_deadline().min(self.next_gc_at);
        if self.leader.is_some() {
            d = d
                .min(self.next_close_at)
                .min(self.next_expiry_at)
                .min(self.next_query_at);
        }
        if self.clock_unhealthy.is_some() {
            // Nothing waits for TT.after on a clock out of bound.
            return d;
        }
        if let Some(e) = self.unapplied.front() {
            d = d.min(after(e.ts));
        }
        for (ts, _, _) in &self.commit_waits {
            d = d.min(after(*ts));
        }
        for (ts, _) in &self.no_write_holds {
            d = d.min(after(*ts));
        }
        for w in &self.read_waits {
            d = d.min(w.deadline);
            if !w.admitted {
                d = d.min(w.admit_at);
            }
        }
        d
    }

    /// Checks the replica's invariants; panics on the first broken one.
    /// For tests and the simulator: no lock outlives its transaction, the
    /// lock table is consistent and wound-wait holds, pending work refers
    /// to slots not yet applied.
    pub fn assert_invariants(&self) {
        if let Some(l) = &self.leader {
            l.assert_invariants();
        }
        if let Some(e) = self.unapplied.front() {
            assert_eq!(
                e.slot,
                self.state.applied_slot() + 1,
                "unapplied entries must follow the applied state"
            );
        }
        for (slot, txns) in &self.by_slot {
            assert!(
                *slot > self.state.applied_slot(),
                "commits {txns:?} at applied slot {slot} left unresolved"
            );
        }
        assert_eq!(
            self.by_proposal.len() + self.by_slot.values().map(Vec::len).sum::<usize>(),
            self.commits.len(),
            "pending commits out of sync"
        );
        assert_eq!(
            self.prepare_proposals.len() + self.prepare_slots.values().map(Vec::len).sum::<usize>(),
            self.prepares.len(),
            "pending prepares out of sync"
        );
        for (slot, txns) in &self.prepare_slots {
            assert!(
                *slot > self.paxos.applied(),
                "prepares {txns:?} at chosen slot {slot} never voted"
            );
        }
    }

    #[cfg(feature = "planted-bugs")]
    fn bug(&self, b: crate::PlantedBug) -> bool {
        self.cfg.planted_bug == Some(b)
    }

    #[cfg(not(feature = "planted-bugs"))]
    #[inline(always)]
    fn bug(&self, _b: crate::BugStub) -> bool {
        false
    }

    // ------------------------------------------------------------------
    // Paxos outputs
    // ------------------------------------------------------------------

    fn absorb(&mut self, pout: Vec<meridian_paxos::Output>, out: &mut Vec<Output>) {
        use meridian_paxos::Output as P;
        for o in pout {
            match o {
                P::Send(m) => out.push(Output::Send(m)),
                P::Persist(r) => out.push(Output::Persist(r)),
                P::Apply(entries) => {
                    for e in &entries {
                        self.on_chosen(e, out);
                    }
                    self.unapplied.extend(entries);
                }
                P::RestoreSnapshot(s) => self.restore(s, out),
                P::Proposed { id, slot, ts } => {
                    if self.split_placed(id, Some(slot), out) {
                    } else if self.close_proposal == Some(id) {
                        self.close_proposal = None;
                    } else if self.read_close == Some(id) {
                        self.read_close = None;
                    } else if let Some(txn) = self.prepare_proposals.remove(&id) {
                        let pp = self
                            .prepares
                            .get_mut(&txn)
                            .expect("every prepare proposal is pending");
                        pp.placed = Some((slot, ts));
                        self.prepare_slots.entry(slot).or_default().push(txn);
                    } else if let Some(txn) = self.by_proposal.remove(&id) {
                        let pc = self
                            .commits
                            .get_mut(&txn)
                            .expect("every proposal has a pending commit");
                        pc.placed = Some((slot, ts));
                        self.by_slot.entry(slot).or_default().push(txn);
                    }
                }
                P::Dropped(ids) => {
                    for id in ids {
                        if self.split_placed(id, None, out) {
                        } else if self.close_proposal == Some(id) {
                            self.close_proposal = None;
                        } else if self.read_close == Some(id) {
                            self.read_close = None;
                        } else if let Some(txn) = self.prepare_proposals.remove(&id) {
                            self.prepare_lost(txn, AbortReason::LeaderChanged, out);
                        } else if let Some(txn) = self.by_proposal.remove(&id) {
                            // Never in any log: certainly not committed.
                            self.resolve(txn, Resolution::NotCommitted, out);
                        }
                    }
                }
                P::RoleChanged { role, leader } => out.push(Output::RoleChanged { role, leader }),
            }
        }
    }

    /// Replaces the state with a snapshot's (a lagging follower catching up,
    /// or a restart).
    fn restore(&mut self, snap: Snapshot, out: &mut Vec<Output>) {
        let state = GroupState::decode(&snap.data, self.cfg.commit_record_retention_nanos)
            .unwrap_or_else(|e| {
                panic!(
                    "replica {}: snapshot at slot {} does not decode: {e}",
                    self.paxos.id(),
                    snap.last_slot
                )
            });
        assert_eq!(
            state.applied_slot(),
            snap.last_slot,
            "snapshot data describes another slot"
        );
        let before = self.state.children().to_vec();
        self.state = state;
        if self.started {
            // A snapshot installed by the leader (not this replica's own,
            // recovered at start: it applied the splits it covers, and
            // their children are the node's own records).
            self.children_from_snapshot(&before, out);
        }
        self.unapplied.retain(|e| e.slot > snap.last_slot);
        let covered: Vec<Slot> = self
            .by_slot
            .range(..=snap.last_slot)
            .map(|(s, _)| *s)
            .collect();
        for slot in covered {
            for txn in self.by_slot.remove(&slot).unwrap_or_default() {
                let how = match self.state.committed(txn) {
                    Some(ts) => Resolution::Committed(ts),
                    None if self.state.may_have_forgotten(txn) => Resolution::Unknown,
                    None => Resolution::NotCommitted,
                };
                self.resolve(txn, how, out);
            }
        }
        let covered: Vec<Slot> = self
            .prepare_slots
            .range(..=snap.last_slot)
            .map(|(s, _)| *s)
            .collect();
        for slot in covered {
            for txn in self.prepare_slots.remove(&slot).unwrap_or_default() {
                match self.state.prepared_txn(txn).map(|p| p.prepare_ts) {
                    Some(ts) => self.prepare_chosen(txn, ts, out),
                    None => self.prepare_lost(txn, AbortReason::LeaderChanged, out),
                }
            }
        }
        out.push(Output::SnapshotRestored {
            last_slot: snap.last_slot,
        });
    }

    /// Votes on this replica's prepare records as they are chosen: a
    /// participant's vote waits for its prepare record to be durable in
    /// its group, not for that record's commit wait (docs/design.md §5.1:
    /// waits must not stack).
    fn on_chosen(&mut self, e: &Entry, out: &mut Vec<Output>) {
        let Some(txns) = self.prepare_slots.remove(&e.slot) else {
            return;
        };
        let logged = match &e.payload {
            meridian_paxos::Payload::Command(data) => match Command::decode(data) {
                // A record behind a split that takes its keys away is void
                // when it applies: never voted yes (docs/design.md §9).
                Ok(Command::Prepare {
                    txn,
                    writes,
                    reads,
                    ranges,
                    ..
                }) if !self.prepare_behind_split(e.slot, &writes, &reads, &ranges) => Some(txn),
                _ => None,
            },
            _ => None,
        };
        for txn in txns {
            if logged == Some(txn) {
                self.prepare_chosen(txn, e.ts, out);
            } else {
                // Another entry took the slot: this prepare was never chosen.
                self.prepare_lost(txn, AbortReason::LeaderChanged, out);
            }
        }
    }

    /// `txn`'s prepare record is chosen at `ts`: vote yes, unless it is
    /// past the deadline (then it is void and the vote is no).
    fn prepare_chosen(&mut self, txn: TxnId, ts: Timestamp, out: &mut Vec<Output>) {
        let Some(pp) = self.prepares.remove(&txn) else {
            return;
        };
        let vote = if ts <= pp.deadline {
            Vote::Yes(ts)
        } else {
            Vote::No(AbortReason::Inactive)
        };
        self.send_vote(txn, pp.coordinator, vote, out);
    }

    /// `txn`'s prepare record will never be chosen: vote no.
    fn prepare_lost(&mut self, txn: TxnId, reason: AbortReason, out: &mut Vec<Output>) {
        if let Some(pp) = self.prepares.remove(&txn) {
            if let Some((slot, _)) = pp.placed {
                if let Some(v) = self.prepare_slots.get_mut(&slot) {
                    v.retain(|t| *t != txn);
                    if v.is_empty() {
                        self.prepare_slots.remove(&slot);
                    }
                }
            }
            self.send_vote(txn, pp.coordinator, Vote::No(reason), out);
        }
    }

    fn send_vote(&self, txn: TxnId, coordinator: GroupId, vote: Vote, out: &mut Vec<Output>) {
        out.push(Output::ToGroup {
            group: coordinator,
            msg: GroupMessage::Vote {
                txn,
                from: self.cfg.group,
                vote,
            },
        });
    }

    /// Answers a pending commit as it turned out, and ends the transaction
    /// at this leader.
    fn resolve(&mut self, txn: TxnId, how: Resolution, out: &mut Vec<Output>) {
        let Some(pc) = self.commits.remove(&txn) else {
            return;
        };
        if let (Resolution::Committed(commit_ts), Some((slot, placed_ts))) = (how, pc.placed) {
            // A one-phase commit's timestamp is its entry's Paxos write
            // timestamp (Spanner §4.1.2).
            assert_eq!(
                commit_ts, placed_ts,
                "txn {txn} committed at {commit_ts:?} but its entry at slot {slot} has {placed_ts:?}"
            );
        }
        let reason = AbortReason::LeaderChanged;
        let reply = match how {
            Resolution::Committed(commit_ts) => Ok(Response::Committed { commit_ts }),
            Resolution::NotCommitted => Err(TxnError::Aborted { txn, reason }),
            Resolution::Unknown => Err(TxnError::OutcomeUnknown { txn }),
        };
        reply_all(&pc.targets, &reply, out);
        if let Some(l) = self.leader.as_mut() {
            match how {
                Resolution::Committed(_) => l.finish(txn, &mut self.resume),
                Resolution::NotCommitted => l.end(txn, reason, &mut self.resume),
                Resolution::Unknown => l.finish(txn, &mut self.resume),
            }
        }
    }

    // ------------------------------------------------------------------
    // End of every input
    // ------------------------------------------------------------------

    fn finish(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        self.sync_leadership(now, out);
        self.timers(now, out);
        self.release_no_write_holds(now);
        loop {
            let applied = self.apply_ready(now, out);
            let drove = self.drain(now, out);
            if !applied && !drove {
                break;
            }
            self.sync_leadership(now, out);
        }
        self.finish_commit_waits(now, out);
        self.finish_read_waits(now, out);
        self.abandon_pending_if_removed(out);
        self.maybe_compact(out);
    }

    /// A replica removed from its group's voters no longer hears of slots
    /// past those it knows: commits it proposed whose slots it has not
    /// learned can no longer be told apart, so their clients are told the
    /// outcome is unknown (never success or failure; docs/design.md §5.5).
    fn abandon_pending_if_removed(&mut self, out: &mut Vec<Output>) {
        if self.by_slot.is_empty()
            || self.paxos.role() == Role::Leader
            || self.paxos.membership().voters.contains(&self.paxos.id())
        {
            return;
        }
        let known = self.paxos.applied();
        let unknown: Vec<Slot> = self.by_slot.range(known + 1..).map(|(s, _)| *s).collect();
        for slot in unknown {
            for txn in self.by_slot.remove(&slot).unwrap_or_default() {
                self.resolve(txn, Resolution::Unknown, out);
            }
        }
    }

    /// Creates or drops the transaction table as leadership comes and goes.
    fn sync_leadership(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        let leading = (self.paxos.role() == Role::Leader).then(|| self.paxos.promised());
        if leading == self.leader.as_ref().map(|l| l.ballot) {
            return;
        }
        if let Some(old) = self.leader.take() {
            old.step_down(out);
            self.split_term_ended(out);
            self.child_acks.clear();
            self.resume.clear();
            for r in std::mem::take(&mut self.ready) {
                let reason = AbortReason::LeaderChanged;
                let reply = Err(TxnError::Aborted { txn: r.txn, reason });
                reply_all(&r.targets, &reply, out);
            }
            // Undecided two-phase commits die with the term: nothing of
            // theirs is in the log, so their participants, asking the next
            // leader, hear "abort" (presumed abort).
            let mut metas: Vec<_> = self.coord_meta.drain().collect();
            metas.sort_by_key(|(txn, _)| *txn);
            for (txn, m) in metas {
                let reason = AbortReason::LeaderChanged;
                reply_all(&m.targets, &Err(TxnError::Aborted { txn, reason }), out);
            }
            self.coord = Coordinator::new(
                self.cfg.prepare_timeout_nanos,
                self.cfg.resend_interval_nanos,
            );
            self.deciding.clear();
            // The timestamp cache goes with the term: a read it closed
            // waits for ordinary safe time from now on.
            for w in &mut self.read_waits {
                w.closed_after = None;
            }
        }
        // Every read the old cache remembered lay inside a lease of an
        // earlier term, below every timestamp a later term assigns
        // (docs/paxos.md): each term starts with an empty cache.
        self.ts_cache = TimestampCache::new(self.cfg.ts_cache_keys, self.cfg.ts_cache_ranges);
        // A child of a split: what its parent's leader served (its
        // timestamp cache) is a floor for every write here (rule
        // `split-child-safe-time-from-zero`).
        self.ts_cache.raise_low_water(self.inherited_floor);
        if let Some(ballot) = leading {
            #[allow(unused_mut)]
            let mut l = Leader::new(
                self.cfg.group,
                ballot,
                self.cfg.lock_limits,
                self.cfg.max_active_txns,
            );
            #[cfg(feature = "planted-bugs")]
            {
                l.locks.plant_bug(self.cfg.lock_table_bug);
                l.planted_bug = self.cfg.planted_bug;
            }
            self.leader = Some(l);
            let local = now.midpoint();
            self.next_close_at = local.saturating_add(self.cfg.close_interval_nanos);
            self.next_expiry_at = local.saturating_add(self.expiry_period());
            self.next_query_at = local.saturating_add(self.cfg.resend_interval_nanos);
        }
    }

    /// The term has applied every earlier term's entries: rebuild the locks
    /// of the transactions prepared in the log, and resume sending the
    /// commit decisions this group coordinated and has not seen
    /// acknowledged (docs/design.md §5.1, failover).
    fn start_term(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        let local = now.midpoint();
        let rebuild = !self.bug(bug::NO_LOCK_REBUILD_AFTER_FAILOVER);
        let resume = !self.bug(bug::COORDINATOR_FORGETS_DECISION);
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        for (txn, p) in self.state.prepared().filter(|_| rebuild) {
            l.rebuild_prepared(*txn, p.priority, &p.writes, &p.reads, &p.ranges, local);
        }
        if !resume {
            return;
        }
        let decided: Vec<_> = self
            .state
            .coordinated()
            .map(|(txn, c)| {
                // The prepare deadline only guards late prepare records;
                // the decision is a commit, which none of them can undo.
                (*txn, c.commit_ts, c.participants.clone(), c.commit_ts)
            })
            .collect();
        let mut actions = Vec::new();
        self.coord.resume_decided(now, decided, &mut actions);
        self.run_actions(now, actions, out);
    }

    fn expiry_period(&self) -> u64 {
        (self.cfg.inactivity_timeout_nanos / 4).max(1)
    }

    fn timers(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        let local = now.midpoint();
        if local >= self.next_gc_at {
            self.next_gc_at = local.saturating_add(self.cfg.gc_interval_nanos);
            let horizon = self
                .state
                .t_safe()
                .saturating_sub(self.cfg.gc_retention_nanos);
            self.state.gc(horizon);
        }
        if self.leader.is_some() && local >= self.next_query_at {
            self.next_query_at = local.saturating_add(self.cfg.resend_interval_nanos);
            self.two_phase_timers(now, out);
        }
        let expiry_period = self.expiry_period();
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        if local >= self.next_expiry_at {
            self.next_expiry_at = local.saturating_add(expiry_period);
            l.expire_inactive(
                local,
                self.cfg.inactivity_timeout_nanos,
                &mut self.resume,
                out,
            );
        }
        // Spanner §4.1.3: an idle leader advances safe time by proposing a
        // closed timestamp (a Paxos write without data).
        if local < self.next_close_at {
            return;
        }
        let interval = self.cfg.close_interval_nanos;
        if self.close_proposal.is_some() {
            // The last one still waits for the lease: look again later.
            self.next_close_at = local.saturating_add(interval);
            return;
        }
        if !self.paxos.term_started() || !self.paxos.has_lease(now) {
            self.next_close_at = local.saturating_add((interval / 4).max(1));
            return;
        }
        let mut pout = Vec::new();
        if let Ok(id) = self
            .paxos
            .propose(now, Command::CloseTimestamp.encode(), &mut pout)
        {
            self.close_proposal = Some(id);
        }
        self.next_close_at = local.saturating_add(interval);
        self.absorb(pout, out);
    }

    /// Two-phase commit's timers, every resend interval at a leader: the
    /// coordinator's resends and deadline aborts, and a participant's
    /// questions about transactions prepared for longer than the interval
    /// (presumed abort: the coordinator's log decides).
    fn two_phase_timers(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        let mut actions = Vec::new();
        self.coord.tick(now, &mut actions);
        self.run_actions(now, actions, out);
        if self.serving(now, true).is_err() {
            return;
        }
        let asked_before = now.earliest.saturating_sub(self.cfg.resend_interval_nanos);
        for (txn, p) in self.state.prepared() {
            if p.prepare_ts < asked_before {
                out.push(Output::ToGroup {
                    group: p.coordinator,
                    msg: GroupMessage::Query {
                        txn: *txn,
                        from: self.cfg.group,
                        deadline: p.deadline,
                    },
                });
            }
        }
    }

    /// Applies chosen entries whose timestamps have passed (commit wait).
    fn apply_ready(&mut self, now: TtInterval, out: &mut Vec<Output>) -> bool {
        if self.clock_unhealthy.is_some() {
            // Commit wait is judged on this clock: nothing applies while it
            // is out of bound (docs/design.md §2).
            return false;
        }
        let skip_wait = self.bug(bug::SKIP_COMMIT_WAIT);
        let mut applied = Vec::new();
        while let Some(e) = self.unapplied.front() {
            // Spanner §4.1.2 commit wait: nothing committed at ts becomes
            // visible (or is acknowledged) before TT.after(ts).
            if e.ts > Timestamp::ZERO && !now.after(e.ts) && !skip_wait {
                break;
            }
            let e = self.unapplied.pop_front().expect("front exists");
            let effect = self
                .state
                .apply(&e)
                .unwrap_or_else(|err| panic!("replica {}: cannot apply: {err}", self.paxos.id()));
            if let Applied::Split { right, .. } = &effect {
                self.on_split_applied(now, &e, right, out);
            }
            let mut started = false;
            if let Some(l) = self.leader.as_mut() {
                started = !l.term_applied && e.ballot == l.ballot;
                l.term_applied |= started;
            }
            self.on_applied(now, e.slot, effect, out);
            self.split_slot_applied(e.slot, out);
            if started {
                self.start_term(now, out);
            }
            applied.push(e);
        }
        if applied.is_empty() {
            return false;
        }
        out.push(Output::Applied(applied));
        true
    }

    fn on_applied(&mut self, now: TtInterval, slot: Slot, effect: Applied, out: &mut Vec<Output>) {
        match effect {
            Applied::Committed { txn, ts } if self.coord.is_committing(txn) => {
                let mut actions = Vec::new();
                self.coord.on_commit_applied(txn, ts, &mut actions);
                self.run_actions(now, actions, out);
            }
            Applied::CommitVoid { txn } if self.coord.is_committing(txn) => {
                // Its writes left the range at a split before it applied:
                // nothing committed (docs/design.md §9).
                let mut actions = Vec::new();
                let reason = AbortReason::LeaderChanged;
                self.coord.on_commit_not_proposed(txn, reason, &mut actions);
                self.run_actions(now, actions, out);
            }
            Applied::Aborted { txn } | Applied::PrepareVoid { txn } => {
                // A participant's prepared (or preparing) transaction ends:
                // its locks go.
                self.deciding.remove(&txn);
                if let Some(l) = self.leader.as_mut() {
                    l.finish(txn, &mut self.resume);
                }
            }
            _ => {}
        }
        if let Applied::Committed { txn, .. } = effect {
            self.deciding.remove(&txn);
        }
        let mut mine = false;
        for txn in self.by_slot.remove(&slot).unwrap_or_default() {
            let how = match effect {
                Applied::Committed { txn: t, ts } if t == txn => {
                    mine = true;
                    Resolution::Committed(ts)
                }
                // Another entry took the slot: this one was never chosen.
                _ => Resolution::NotCommitted,
            };
            self.resolve(txn, how, out);
        }
        if let (false, Applied::Committed { txn, .. }) = (mine, effect) {
            // A commit proposed by an earlier term's leader, or by another
            // replica: its locks (if any here) go.
            if let Some(l) = self.leader.as_mut() {
                l.finish(txn, &mut self.resume);
            }
        }
    }

    /// Resumes transactions whose locks were granted and proposes the
    /// commits that became ready. Returns whether anything happened.
    fn drain(&mut self, now: TtInterval, out: &mut Vec<Output>) -> bool {
        let mut any = false;
        loop {
            while let Some(txn) = self.resume.pop_front() {
                any = true;
                if let Some(l) = self.leader.as_mut() {
                    let local = now.midpoint();
                    l.drive(
                        txn,
                        local,
                        &self.state,
                        &mut self.resume,
                        &mut self.ready,
                        out,
                    );
                }
            }
            let wounds = self
                .leader
                .as_mut()
                .map(|l| std::mem::take(&mut l.remote_wounds))
                .unwrap_or_default();
            for victim in wounds {
                self.wound_prepared(now, victim, out);
            }
            if self.ready.is_empty() && self.resume.is_empty() {
                return any;
            }
            for r in std::mem::take(&mut self.ready) {
                self.propose_commit(now, r, out);
            }
        }
    }

    /// Every lock is held: mark the transaction prepared (no longer
    /// woundable) and propose its commit record (docs/design.md §5.1) — or,
    /// at a participant, its prepare record; or, at a coordinator, start
    /// two-phase commit.
    fn propose_commit(&mut self, now: TtInterval, r: ReadyToCommit, out: &mut Vec<Output>) {
        let ReadyToCommit {
            txn,
            priority,
            mode,
            targets,
            writes,
            min_ts,
            kind,
        } = r;
        if writes.iter().any(|w| self.check_serves(&w.key).is_err())
            || matches!(kind, CommitKind::OnePhase) && self.holds_right_of_split(txn)
        {
            // A split took the key away (or is about to) while the
            // transaction waited for its locks: its record would be void
            // (docs/design.md §9). Or it read there, and its commit record
            // would apply after the split with reads the child does not
            // protect.
            self.abandon(txn, &targets, &kind, AbortReason::LeaderChanged, out);
            return;
        }
        let release_reads =
            self.bug(bug::RELEASE_READ_LOCKS_AT_PREPARE) && !matches!(kind, CommitKind::OnePhase);
        let Some(l) = self.leader.as_mut() else {
            self.abandon(txn, &targets, &kind, AbortReason::LeaderChanged, out);
            return;
        };
        match l.locks.mark_prepared(txn) {
            // Nothing locked here (a coordinator that neither read nor
            // writes at its own group): nothing to protect.
            Ok(()) | Err(LockError::UnknownTxn { .. }) => {}
            Err(e) => {
                assert!(
                    matches!(e, LockError::Wounded { .. }),
                    "txn {txn} holds its locks yet cannot be marked prepared: {e}"
                );
                self.abandon(txn, &targets, &kind, AbortReason::Wounded, out);
                return;
            }
        }
        if release_reads {
            // Read locks let go at prepare, not at the outcome: a writer
            // can overwrite what this transaction read before it commits.
            for (key, held) in l.locks.locks_held_by(txn) {
                if held == LockMode::Shared {
                    for g in l.locks.release(txn, &key) {
                        self.resume.push_back(g.txn);
                    }
                }
            }
        }
        let cmd = match &kind {
            CommitKind::OnePhase => Command::Commit {
                txn,
                writes: writes.clone(),
            },
            CommitKind::Participant {
                coordinator,
                deadline,
            } => {
                if now.after(*deadline) {
                    // The record would be void: the coordinator has given up.
                    self.abandon(txn, &targets, &kind, AbortReason::Inactive, out);
                    return;
                }
                // Spanner §4.2.1: the prepare record holds what a new
                // leader needs to rebuild the locks, reads included.
                let reads = l
                    .locks
                    .locks_held_by(txn)
                    .into_iter()
                    .filter(|(_, mode)| *mode == LockMode::Shared)
                    .map(|(key, _)| key)
                    .collect();
                Command::Prepare {
                    txn,
                    coordinator: *coordinator,
                    priority,
                    deadline: *deadline,
                    writes: writes.clone(),
                    reads,
                    // And the scanned ranges: a new leader must keep
                    // inserts out of them until the outcome.
                    ranges: l.locks.ranges_held_by(txn),
                }
            }
            CommitKind::Coordinator { participants } => {
                let groups = participants.iter().map(|p| p.group).collect();
                self.coord_meta.insert(
                    txn,
                    CoordMeta {
                        targets,
                        priority,
                        mode,
                        floor: now.latest.next(),
                        writes,
                        participants: participants.clone(),
                    },
                );
                let mut actions = Vec::new();
                self.coord.begin(now, txn, groups, &mut actions);
                self.run_actions(now, actions, out);
                return;
            }
        };
        let mut pout = Vec::new();
        // Above every lock-free read of what it writes that this leader
        // served (the timestamp cache): those reads stay repeatable.
        let min_ts = min_ts.max(self.write_floor(&writes));
        // Spanner §4.2.1: a prepare timestamp need only exceed those
        // assigned before it; a one-phase commit's must reach
        // TT.now().latest.
        let proposed = match kind {
            CommitKind::Participant { .. } => {
                self.paxos
                    .propose_above(now, cmd.encode(), min_ts, &mut pout)
            }
            _ => self
                .paxos
                .propose_at_least(now, cmd.encode(), min_ts, &mut pout),
        };
        match proposed {
            Ok(id) => {
                if let CommitKind::Participant {
                    coordinator,
                    deadline,
                } = kind
                {
                    self.prepares.insert(
                        txn,
                        PendingPrepare {
                            coordinator,
                            deadline,
                            placed: None,
                        },
                    );
                    self.prepare_proposals.insert(id, txn);
                } else {
                    self.commits.insert(
                        txn,
                        PendingCommit {
                            targets,
                            placed: None,
                        },
                    );
                    self.by_proposal.insert(id, txn);
                }
                // A commit advances safe time as a close would.
                self.next_close_at = now.midpoint().saturating_add(self.cfg.close_interval_nanos);
            }
            Err(e) => self.abandon(txn, &targets, &kind, propose_error_reason(&e), out),
        }
        self.absorb(pout, out);
    }

    /// A commit (or prepare) that could not be proposed: abort it.
    fn abandon(
        &mut self,
        txn: TxnId,
        targets: &[RequestId],
        kind: &CommitKind,
        reason: AbortReason,
        out: &mut Vec<Output>,
    ) {
        if let Some(l) = self.leader.as_mut() {
            l.end(txn, reason, &mut self.resume);
        }
        if let CommitKind::Participant { coordinator, .. } = kind {
            self.send_vote(txn, *coordinator, Vote::No(reason), out);
        }
        reply_all(targets, &Err(TxnError::Aborted { txn, reason }), out);
    }

    /// Carries out the coordinator's actions (and those they lead to).
    fn run_actions(&mut self, now: TtInterval, actions: Vec<Action>, out: &mut Vec<Output>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(a) = queue.pop_front() {
            match a {
                Action::SendPrepare {
                    group,
                    txn,
                    deadline,
                } => {
                    let Some(m) = self.coord_meta.get(&txn) else {
                        continue;
                    };
                    let part = m
                        .participants
                        .iter()
                        .find(|p| p.group == group)
                        .expect("the coordinator prepares only its participants");
                    out.push(Output::ToGroup {
                        group,
                        msg: GroupMessage::Prepare {
                            txn,
                            coordinator: self.cfg.group,
                            priority: m.priority,
                            term: part.term,
                            mode: m.mode,
                            deadline,
                            writes: part.writes.clone(),
                        },
                    });
                }
                Action::ProposeCommit {
                    txn,
                    min_ts,
                    participants,
                } if self.holds_right_of_split(txn) => {
                    // Its reads in the right half of the split in flight
                    // are protected by this leader's locks alone: its
                    // commit record, behind the split, must not apply
                    // (docs/design.md §9). Nothing is decided yet.
                    let _ = (min_ts, participants);
                    let mut more = Vec::new();
                    self.coord
                        .on_commit_not_proposed(txn, AbortReason::LeaderChanged, &mut more);
                    queue.extend(more);
                }
                Action::ProposeCommit {
                    txn,
                    min_ts,
                    participants,
                } => {
                    let m = self
                        .coord_meta
                        .remove(&txn)
                        .expect("a committing txn has its coordination data");
                    let cmd = Command::CoordinatorCommit {
                        txn,
                        writes: m.writes.clone(),
                        participants,
                    };
                    // With the bug, the prepare timestamps are ignored: `s`
                    // may fall below a participant's prepare timestamp.
                    let min_ts = if self.bug(bug::COMMIT_TS_BELOW_PREPARE) {
                        m.floor
                    } else {
                        min_ts
                    };
                    // The coordinator's own writes, above every read of
                    // them it served (the participants' prepare
                    // timestamps, in `min_ts`, cover theirs).
                    let min_ts = min_ts.max(self.write_floor(&m.writes));
                    // `min_ts` holds the start rule's bound (TT.now().latest
                    // as the commit arrived) and every prepare timestamp:
                    // the clock need not be read again, so commit wait
                    // runs alongside the prepare and commit rounds.
                    let mut pout = Vec::new();
                    match self
                        .paxos
                        .propose_above(now, cmd.encode(), min_ts, &mut pout)
                    {
                        Ok(id) => {
                            self.commits.insert(
                                txn,
                                PendingCommit {
                                    targets: m.targets,
                                    placed: None,
                                },
                            );
                            self.by_proposal.insert(id, txn);
                        }
                        Err(e) => {
                            self.coord_meta.insert(txn, m);
                            let mut more = Vec::new();
                            self.coord.on_commit_not_proposed(
                                txn,
                                propose_error_reason(&e),
                                &mut more,
                            );
                            queue.extend(more);
                        }
                    }
                    self.absorb(pout, out);
                }
                Action::SendDecision {
                    group,
                    txn,
                    decision,
                    deadline,
                } => out.push(Output::ToGroup {
                    group,
                    msg: GroupMessage::Decide {
                        txn,
                        coordinator: self.cfg.group,
                        decision,
                        deadline,
                    },
                }),
                Action::ProposeForget { txns } => {
                    // Best effort: a decision not forgotten is resent by the
                    // next leader and acknowledged again.
                    let mut pout = Vec::new();
                    let _ = self
                        .paxos
                        .propose(now, Command::Forget { txns }.encode(), &mut pout);
                    self.absorb(pout, out);
                }
                // The pending commit's slot answers the client when it
                // applies (resolve), as for one-phase commits.
                Action::Committed { .. } => {}
                Action::Aborted { txn, reason } => {
                    if let Some(m) = self.coord_meta.remove(&txn) {
                        reply_all(&m.targets, &Err(TxnError::Aborted { txn, reason }), out);
                    }
                    if let Some(l) = self.leader.as_mut() {
                        l.end(txn, reason, &mut self.resume);
                    }
                }
            }
        }
    }

    /// Releases the locks of transactions without writes whose commit
    /// wait is over.
    fn release_no_write_holds(&mut self, now: TtInterval) {
        let skip_wait = self.bug(bug::SKIP_COMMIT_WAIT);
        let mut i = 0;
        while i < self.no_write_holds.len() {
            if skip_wait || now.after(self.no_write_holds[i].0) {
                let (_, txn) = self.no_write_holds.swap_remove(i);
                if let Some(l) = self.leader.as_mut() {
                    l.finish(txn, &mut self.resume);
                }
            } else {
                i += 1;
            }
        }
    }

    fn finish_commit_waits(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        if self.clock_unhealthy.is_some() {
            return; // answered once TT.after can be trusted again
        }
        let skip_wait = self.bug(bug::SKIP_COMMIT_WAIT);
        let mut i = 0;
        while i < self.commit_waits.len() {
            if skip_wait || now.after(self.commit_waits[i].0) {
                let (_, id, reply) = self.commit_waits.swap_remove(i);
                out.push(Output::Reply { id, reply });
            } else {
                i += 1;
            }
        }
    }

    fn finish_read_waits(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        let local = now.midpoint();
        let mut i = 0;
        while i < self.read_waits.len() {
            if !self.read_waits[i].admitted && local >= self.read_waits[i].admit_at {
                // Its timestamp came within L of the clock.
                let mut w = self.read_waits.swap_remove(i);
                self.admit_read(now, &mut w);
                let close = w.closed_after.is_none();
                let ts = w.read_ts();
                self.read_waits.push(w);
                if close
                    && matches!(
                        self.read_waits.last().map(|w| w.target),
                        Some(ReadTarget::At(_))
                    )
                {
                    self.close_for_read(now, ts, out);
                }
                // Looked at again below, in its new place.
                continue;
            }
            if self.try_serve_read(&self.read_waits[i], out) {
                self.read_waits.swap_remove(i);
            } else if local >= self.read_waits[i].deadline {
                let w = self.read_waits.swap_remove(i);
                out.push(Output::Reply {
                    id: w.id,
                    reply: Err(TxnError::NotYetSafe {
                        read_ts: w.read_ts(),
                        t_safe: safe_time_for(&self.state, &w.reads, Timestamp::ZERO),
                    }),
                });
            } else {
                i += 1;
            }
        }
    }

    /// Snapshots the state into the Paxos log once enough entries have
    /// applied since the last snapshot: at least `compact_every`, and at
    /// least as many as the state holds versions, so that writing a
    /// snapshot (linear in the state) costs O(1) per applied entry
    /// however large the state grows.
    fn maybe_compact(&mut self, out: &mut Vec<Output>) {
        let applied = self.state.applied_slot();
        let since = applied.saturating_sub(self.paxos.first_slot().saturating_sub(1));
        let due = self
            .cfg
            .compact_every
            .max(self.state.version_count() as u64);
        if since < due {
            return;
        }
        let mut pout = Vec::new();
        self.paxos.compact(applied, self.state.encode(), &mut pout);
        self.absorb(pout, out);
    }

    // ------------------------------------------------------------------
    // Requests
    // ------------------------------------------------------------------

    fn handle_request(
        &mut self,
        now: TtInterval,
        id: RequestId,
        req: Request,
        out: &mut Vec<Output>,
    ) {
        if let Some(reason) = &self.clock_unhealthy {
            // docs/design.md §2: a node whose clock is out of bound serves
            // nothing, lock-free reads included (their timestamps and safe
            // time are judged on this clock).
            let reason = reason.clone();
            let reply = Err(TxnError::ClockUnhealthy { reason });
            out.push(Output::Reply { id, reply });
            return;
        }
        let reply = match req {
            Request::Begin {
                priority,
                mode,
                reserve,
            } => self.serving(now, true).and_then(|_| {
                let l = self.leader.as_mut().expect("serving checked");
                l.begin(priority, mode, now.latest, now.midpoint(), reserve)
            }),
            Request::Read { txn, keys, guest } => {
                match self.start_read(now, id, txn, keys, guest) {
                    Ok(None) => return,
                    Ok(Some(answer)) => Ok(answer),
                    Err(e) => Err(e),
                }
            }
            Request::Scan {
                txn,
                start,
                end,
                limit,
                guest,
            } => match self.start_scan(now, id, txn, start, end, limit, guest) {
                Ok(None) => return,
                Ok(Some(answer)) => Ok(answer),
                Err(e) => Err(e),
            },
            Request::Commit {
                txn,
                writes,
                participants,
            } => match self.start_commit(now, id, txn, writes, participants) {
                Ok(()) => return,
                Err(e) => Err(e),
            },
            Request::Abort { txn } => self.abort_request(now, txn, out),
            Request::Heartbeat { txn } => self.heartbeat(now, txn),
            Request::ReadOnly { at, reads } => {
                self.start_read_only(now, id, at, reads, out);
                return;
            }
            Request::TxnStatus { txn } => match self.txn_status(now, id, txn) {
                Ok(None) => return,
                Ok(Some(status)) => Ok(Response::TxnStatus(status)),
                Err(e) => Err(e),
            },
            Request::Split { key, child } => match self.start_split(now, id, key, child, out) {
                Ok(()) => return,
                Err(e) => Err(e),
            },
        };
        out.push(Output::Reply { id, reply });
    }

    /// Whether this replica may serve read-write requests now: it leads,
    /// has applied every earlier term's entries and (unless `lease` is
    /// false) holds its lease.
    fn serving(&self, now: TtInterval, lease: bool) -> Result<(), TxnError> {
        if let Some(reason) = &self.clock_unhealthy {
            let reason = reason.clone();
            return Err(TxnError::ClockUnhealthy { reason });
        }
        if self.paxos.role() != Role::Leader || self.leader.is_none() {
            return Err(TxnError::NotLeader {
                leader: self.paxos.leader(),
            });
        }
        let lease_ok = !lease || self.paxos.has_lease(now) || self.bug(bug::READ_WITHOUT_LEASE);
        let term_applied = self.leader.as_ref().is_some_and(|l| l.term_applied);
        if !self.paxos.term_started() || !term_applied || !lease_ok {
            return Err(TxnError::LeaderNotReady);
        }
        Ok(())
    }

    /// The active transaction `txn` at its home group, or why there is
    /// none.
    fn active(&mut self, txn: TxnId) -> Result<&mut ActiveTxn, TxnError> {
        self.active_for(txn, None, Timestamp::ZERO)
    }

    /// The active transaction `txn` as a request from it finds it: at its
    /// home group (`guest` is `None`) it began in the term named by its id;
    /// elsewhere in the term its first request here met, and a first
    /// request joins it. A term other than the current one means its locks
    /// here are gone (docs/design.md §5.1).
    fn active_for(
        &mut self,
        txn: TxnId,
        guest: Option<Guest>,
        local: Timestamp,
    ) -> Result<&mut ActiveTxn, TxnError> {
        let l = self.leader.as_mut().expect("serving checked");
        let term = match guest {
            None => Some(txn.origin),
            Some(g) => g.term,
        };
        match (term, guest) {
            (Some(term), _) if term != l.origin || !l.txns.contains_key(&txn) => {
                return Err(l.missing(txn, term));
            }
            (None, Some(g)) if !l.txns.contains_key(&txn) => {
                if l.remembers(txn) {
                    return Err(l.missing(txn, l.origin));
                }
                // At its home group a transaction is begun by the leader
                // that issued its id: by `Begin`, or by this first request
                // for an id that leader reserved (docs/design.md §5.1).
                if crate::leader::home_group(txn) == self.cfg.group {
                    if txn.origin != l.origin {
                        return Err(l.missing(txn, txn.origin));
                    }
                    if !l.take_reserved(txn) {
                        return Err(l.missing(txn, l.origin));
                    }
                }
                l.join(txn, g.priority, g.mode, local)?;
            }
            _ => {}
        }
        Ok(l.txns.get_mut(&txn).expect("checked above"))
    }

    fn start_read(
        &mut self,
        now: TtInterval,
        id: RequestId,
        txn: TxnId,
        keys: Vec<bytes::Bytes>,
        guest: Option<Guest>,
    ) -> Result<Option<Response>, TxnError> {
        if keys.is_empty() {
            return Err(crate::api::InvalidRequest::Empty.into());
        }
        for k in &keys {
            check_key(k)?;
        }
        self.serving(now, true)?;
        for k in &keys {
            self.check_serves(k)?;
        }
        let local = now.midpoint();
        let t = self.active_for(txn, guest, local)?;
        if t.mode == CcMode::Optimistic {
            // Lock-free (docs/design.md §5.4): answered at once, under the
            // same serving rules as a locking read.
            if !matches!(t.op, Op::Idle) {
                return Err(TxnError::TxnBusy { txn });
            }
            check_operation_count(t.ops + keys.len())?;
            let l = self.leader.as_mut().expect("serving checked");
            return Ok(Some(l.read_optimistic(txn, keys, &self.state, local)));
        }
        match &mut t.op {
            Op::Idle => {}
            Op::Reading {
                targets, keys: k, ..
            } if *k == keys => {
                // A duplicate of the read in progress: answer both.
                targets.push(id);
                return Ok(None);
            }
            _ => return Err(TxnError::TxnBusy { txn }),
        }
        check_operation_count(t.ops + keys.len())?;
        t.last_active = local;
        t.op = Op::Reading {
            targets: vec![id],
            values: Vec::with_capacity(keys.len()),
            keys,
        };
        self.resume.push_back(txn);
        Ok(None)
    }

    /// A scan in a read-write transaction: a locking one queues for its
    /// range lock (resumed by [`Leader::drive`]); an optimistic one is
    /// answered at once and recorded for validation.
    #[allow(clippy::too_many_arguments)]
    fn start_scan(
        &mut self,
        now: TtInterval,
        id: RequestId,
        txn: TxnId,
        start: bytes::Bytes,
        end: Option<bytes::Bytes>,
        limit: usize,
        guest: Option<Guest>,
    ) -> Result<Option<Response>, TxnError> {
        check_scan(&start, end.as_ref(), limit)?;
        self.serving(now, true)?;
        self.check_serves_span(&start, end.as_deref())?;
        let local = now.midpoint();
        let t = self.active_for(txn, guest, local)?;
        if t.mode == CcMode::Optimistic {
            if !matches!(t.op, Op::Idle) {
                return Err(TxnError::TxnBusy { txn });
            }
            check_operation_count(t.ops + 1)?;
            let l = self.leader.as_mut().expect("serving checked");
            return l
                .scan_optimistic(txn, start, end, limit, &self.state, local)
                .map(Some);
        }
        match &mut t.op {
            Op::Idle => {}
            Op::Scanning {
                targets,
                start: s,
                end: e,
                limit: n,
            } if *s == start && *e == end && *n == limit => {
                // A duplicate of the scan in progress: answer both.
                targets.push(id);
                return Ok(None);
            }
            _ => return Err(TxnError::TxnBusy { txn }),
        }
        check_operation_count(t.ops + 1)?;
        t.last_active = local;
        t.op = Op::Scanning {
            targets: vec![id],
            start,
            end,
            limit,
        };
        self.resume.push_back(txn);
        Ok(None)
    }

    fn start_commit(
        &mut self,
        now: TtInterval,
        id: RequestId,
        txn: TxnId,
        writes: Vec<Write>,
        participants: Vec<Participant>,
    ) -> Result<(), TxnError> {
        for w in writes
            .iter()
            .chain(participants.iter().flat_map(|p| &p.writes))
        {
            check_write(w)?;
        }
        let mut groups = std::collections::BTreeSet::new();
        for p in &participants {
            if p.group > crate::MAX_GROUP_ID || p.group == self.cfg.group || !groups.insert(p.group)
            {
                return Err(crate::api::InvalidRequest::BadParticipant { group: p.group }.into());
            }
        }
        self.serving(now, true)?;
        for w in &writes {
            self.check_serves(&w.key)?;
        }
        // A commit this replica proposed, or coordinates, and is still
        // waiting on (a client retrying after a lost answer): answer both.
        if let Some(pc) = self.commits.get_mut(&txn) {
            pc.targets.push(id);
            return Ok(());
        }
        if let Some(m) = self.coord_meta.get_mut(&txn) {
            m.targets.push(id);
            return Ok(());
        }
        let l = self.leader.as_mut().expect("serving checked");
        if let Some(commit_ts) = l.committed_at(txn) {
            // A transaction without writes, committed (and perhaps still in
            // its commit wait): the answer was lost.
            self.commit_waits
                .push((commit_ts, id, Ok(Response::Committed { commit_ts })));
            return Ok(());
        }
        let Some(t) = l.txns.get_mut(&txn) else {
            // Committed already (the answer was lost)? The log knows.
            if let Some(commit_ts) = self.state.committed(txn).or(l.committed_at(txn)) {
                self.commit_waits
                    .push((commit_ts, id, Ok(Response::Committed { commit_ts })));
                return Ok(());
            }
            if !l.remembers(txn) && self.state.may_have_forgotten(txn) {
                return Err(TxnError::OutcomeUnknown { txn });
            }
            return Err(l.missing(txn, txn.origin));
        };
        match &mut t.op {
            Op::Idle => {}
            Op::Locking { targets, .. } => {
                targets.push(id);
                return Ok(());
            }
            _ => return Err(TxnError::TxnBusy { txn }),
        }
        let writes = dedupe_writes(writes);
        let participants: Vec<Participant> = participants
            .into_iter()
            .map(|p| Participant {
                writes: dedupe_writes(p.writes),
                ..p
            })
            .collect();
        // A commit is the last request: its writes are checked, not added,
        // so a retried commit counts them once.
        let remote: usize = participants.iter().map(|p| p.writes.len()).sum();
        check_operation_count(t.ops + writes.len() + remote)?;
        t.last_active = now.midpoint();
        let mode = t.mode;
        if writes.is_empty() && participants.is_empty() {
            // An optimistic transaction's reads took no locks: they must
            // still be current now, at the commit (docs/design.md §5.4).
            if mode == CcMode::Optimistic && !l.validate_read_only(txn, &self.state) {
                let reason = AbortReason::Conflict;
                l.end(txn, reason, &mut self.resume);
                return Err(TxnError::Aborted { txn, reason });
            }
            // Nothing to log. Its reads, under locks it still holds, are
            // the state at any timestamp from the highest in the leader's
            // log on (every entry in flight above t_paxos_safe writes only
            // keys other transactions hold exclusively) for as long as it
            // holds them. Its commit timestamp also obeys the start rule,
            // above TT.now().latest at the request (inside the lease, which
            // is valid at latest): otherwise a transaction that finished
            // in another group before this one began could have a later
            // timestamp (external consistency across groups). It keeps its
            // locks until TT.after(s), so every later write of what it read
            // gets a later timestamp, and is answered then (commit wait).
            let commit_ts = self
                .state
                .t_paxos_safe()
                .max(self.paxos.last_assigned_ts())
                .max(now.latest.next());
            // Nothing is logged at s, so the leader remembers its reads
            // at s in the timestamp cache instead: every later write of
            // what it read (its shared keys and ranges) takes a timestamp
            // above s (a prepare timestamp reads no clock, and could
            // otherwise fall below s once these locks are let go). Writes
            // of other keys are not pushed. s must lie inside the lease,
            // below every later term's timestamps.
            if commit_ts > self.paxos.last_assigned_ts() {
                let inside = match self.paxos.lease_status(now) {
                    meridian_paxos::LeaseStatus::Valid { end } => commit_ts < end,
                    _ => false,
                };
                if !inside {
                    return Err(TxnError::LeaderNotReady);
                }
                for (key, mode) in l.locks.locks_held_by(txn) {
                    if mode == LockMode::Shared {
                        self.ts_cache.record_key(&key, commit_ts);
                    }
                }
                for (start, end) in l.locks.ranges_held_by(txn) {
                    self.ts_cache.record_range(&start, end.as_ref(), commit_ts);
                }
            }
            l.txns.get_mut(&txn).expect("active").op = Op::Committing;
            // Not woundable while it waits (it has committed); a
            // transaction without locks has nothing to mark.
            let _ = l.locks.mark_prepared(txn);
            l.record_committed(txn, commit_ts);
            self.no_write_holds.push((commit_ts, txn));
            self.commit_waits
                .push((commit_ts, id, Ok(Response::Committed { commit_ts })));
            return Ok(());
        }
        let kind = if participants.is_empty() {
            CommitKind::OnePhase
        } else {
            CommitKind::Coordinator { participants }
        };
        t.op = Op::Locking {
            targets: vec![id],
            writes,
            next: 0,
            // Spanner §4.1.2 start rule: s > TT.now().latest at arrival.
            min_ts: now.latest.next(),
            kind,
        };
        self.resume.push_back(txn);
        Ok(())
    }

    fn abort_request(&mut self, now: TtInterval, txn: TxnId, out: &mut Vec<Output>) -> Reply {
        // Only a leader that has applied every earlier term's entries, and
        // holds the lease (so no later term is committing), knows that a
        // transaction it does not hold did not commit.
        self.serving(now, true)?;
        if self.commits.contains_key(&txn) || self.state.committed(txn).is_some() {
            return Err(TxnError::TooLateToAbort { txn });
        }
        let l = self.leader.as_mut().expect("checked above");
        let committing = l.txns.get(&txn).map(|t| matches!(t.op, Op::Committing));
        match committing {
            Some(true) => Err(TxnError::TooLateToAbort { txn }),
            Some(false) => {
                l.abort(txn, AbortReason::ClientAbort, &mut self.resume, out);
                Ok(Response::Aborted)
            }
            None if l.committed_at(txn).is_some() => Err(TxnError::TooLateToAbort { txn }),
            // A reserved id no request has begun: retired, so a first read
            // still in flight can no longer begin it and take locks
            // (docs/design.md §5.1), as a status query retires it.
            None if l.take_reserved(txn) => Ok(Response::Aborted),
            None if !l.remembers(txn) && self.state.may_have_forgotten(txn) => {
                Err(TxnError::OutcomeUnknown { txn })
            }
            None => Ok(Response::Aborted),
        }
    }

    // ------------------------------------------------------------------
    // Two-phase commit between groups
    // ------------------------------------------------------------------

    fn handle_group_message(&mut self, now: TtInterval, msg: GroupMessage, out: &mut Vec<Output>) {
        // Only a serving leader acts; the sender resends.
        if self.serving(now, true).is_err() {
            return;
        }
        let mut actions = Vec::new();
        match msg {
            GroupMessage::Prepare {
                txn,
                coordinator,
                priority,
                term,
                mode,
                deadline,
                writes,
            } => {
                let guest = Guest {
                    priority,
                    term,
                    mode,
                };
                self.on_prepare(now, txn, coordinator, guest, deadline, writes, out)
            }
            GroupMessage::Vote { txn, from, vote } => {
                self.coord.on_vote(txn, from, vote, &mut actions)
            }
            GroupMessage::Ack { txn, from } => {
                if !self.child_ack(txn, from) {
                    self.coord.on_ack(txn, from, &mut actions)
                }
            }
            GroupMessage::Wound { txn } => {
                self.coord.wound(txn, &mut actions);
            }
            GroupMessage::Decide {
                txn,
                coordinator,
                decision,
                deadline,
            } => self.on_decide(now, txn, coordinator, decision, deadline, out),
            GroupMessage::Query {
                txn,
                from,
                deadline,
            } => self.on_query(txn, from, deadline, out),
        }
        self.run_actions(now, actions, out);
    }

    /// An older transaction waits for `victim`, prepared here: abort it
    /// through its coordinator if that is still collecting votes — this
    /// replica's own coordinator, or another group's (docs/design.md §5.1,
    /// wound-wait across groups). A transaction whose outcome is decided,
    /// or a one-phase commit, finishes on its own.
    fn wound_prepared(&mut self, now: TtInterval, victim: TxnId, out: &mut Vec<Output>) {
        if self.coord.contains(victim) {
            let mut actions = Vec::new();
            self.coord.wound(victim, &mut actions);
            self.run_actions(now, actions, out);
            return;
        }
        let coordinator = self
            .state
            .prepared_txn(victim)
            .map(|p| p.coordinator)
            .or_else(|| self.prepares.get(&victim).map(|p| p.coordinator));
        if let Some(group) = coordinator {
            out.push(Output::ToGroup {
                group,
                msg: GroupMessage::Wound { txn: victim },
            });
        }
    }

    /// A participant is asked to prepare `txn`: take its write locks (its
    /// read locks are held since its reads), then log a prepare record and
    /// vote once it is chosen (Spanner §4.2.1).
    #[allow(clippy::too_many_arguments)]
    fn on_prepare(
        &mut self,
        now: TtInterval,
        txn: TxnId,
        coordinator: GroupId,
        guest: Guest,
        deadline: Timestamp,
        writes: Vec<Write>,
        out: &mut Vec<Output>,
    ) {
        if let Some(p) = self.state.prepared_txn(txn) {
            // Prepared already (a resend, or a new leader after failover).
            let vote = Vote::Yes(p.prepare_ts);
            self.send_vote(txn, coordinator, vote, out);
            return;
        }
        if self.state.decided(txn).is_some() {
            // Decided before it prepared here: only an abort can be.
            self.send_vote(txn, coordinator, Vote::No(AbortReason::Unknown), out);
            return;
        }
        if self.prepares.contains_key(&txn) {
            return; // its vote goes out when the record is chosen
        }
        if self.state.moved_txn(txn).is_some() {
            // Prepared here before a split moved it: its vote stands.
            return;
        }
        if writes.iter().any(|w| self.check_serves(&w.key).is_err()) {
            // Not this group's keys (any more): docs/design.md §9.
            let vote = Vote::No(AbortReason::LeaderChanged);
            self.send_vote(txn, coordinator, vote, out);
            return;
        }
        let local = now.midpoint();
        if self.bug(bug::PREPARE_REVIVES_ABORTED) {
            // The bug: a transaction aborted here begins afresh, without
            // the reads (and locks) it had.
            let l = self.leader.as_mut().expect("serving checked");
            if !l.txns.contains_key(&txn) && l.aborted_here(txn) {
                let _ = l.join(txn, guest.priority, guest.mode, local);
            }
        }
        let t = match self.active_for(txn, Some(guest), local) {
            Ok(t) => t,
            Err(TxnError::Aborted { reason, .. }) => {
                self.send_vote(txn, coordinator, Vote::No(reason), out);
                return;
            }
            Err(_) => {
                self.send_vote(txn, coordinator, Vote::No(AbortReason::Overloaded), out);
                return;
            }
        };
        if !matches!(t.op, Op::Idle) {
            return; // preparing already, or a read still in flight
        }
        t.last_active = local;
        t.op = Op::Locking {
            targets: Vec::new(),
            writes: dedupe_writes(writes),
            next: 0,
            min_ts: Timestamp::ZERO,
            kind: CommitKind::Participant {
                coordinator,
                deadline,
            },
        };
        self.resume.push_back(txn);
    }

    /// A participant learns the outcome of `txn`: log it (once), and
    /// acknowledge once it is logged, or if it changes nothing here.
    fn on_decide(
        &mut self,
        now: TtInterval,
        txn: TxnId,
        coordinator: GroupId,
        decision: Decision,
        deadline: Timestamp,
        out: &mut Vec<Output>,
    ) {
        if self.forward_decision(txn, coordinator, decision, deadline, out) {
            return;
        }
        let l = self.leader.as_mut().expect("serving checked");
        let affected = self.state.prepared_txn(txn).is_some()
            || self.prepares.contains_key(&txn)
            || l.txns.contains_key(&txn);
        if self.state.decided(txn).is_some() || !affected {
            out.push(Output::ToGroup {
                group: coordinator,
                msg: GroupMessage::Ack {
                    txn,
                    from: self.cfg.group,
                },
            });
            return;
        }
        if decision == Decision::Abort {
            // Unprepared here: release its locks now (a prepared one keeps
            // them until the record applies).
            l.abort(txn, AbortReason::Unknown, &mut self.resume, out);
        }
        if self.bug(bug::DECISION_ACK_BEFORE_DURABLE) {
            // The bug: acknowledged before the record below is chosen.
            out.push(Output::ToGroup {
                group: coordinator,
                msg: GroupMessage::Ack {
                    txn,
                    from: self.cfg.group,
                },
            });
        }
        if !self.deciding.insert(txn) {
            return;
        }
        let cmd = Command::Decide {
            txn,
            decision,
            deadline,
        };
        let mut pout = Vec::new();
        if self.paxos.propose(now, cmd.encode(), &mut pout).is_err() {
            self.deciding.remove(&txn);
        }
        self.absorb(pout, out);
    }

    /// A prepared participant asks the coordinator about `txn`. Answered
    /// once decided; presumed abort: a serving leader that has applied
    /// every earlier term's entries, and neither coordinates `txn` now nor
    /// has its commit record, knows it did not commit.
    fn on_query(&mut self, txn: TxnId, from: GroupId, deadline: Timestamp, out: &mut Vec<Output>) {
        // With the bug, only the in-memory coordinator is consulted, not
        // the logged decisions: a decision kept across a failover is lost.
        let log = !self.bug(bug::COORDINATOR_FORGETS_DECISION);
        let decision = if let Some(d) = self.coord.decision(txn) {
            d
        } else if let Some(c) = self.state.coordinated_txn(txn).filter(|_| log) {
            Decision::Commit(c.commit_ts)
        } else if let Some(ts) = self.state.committed(txn).filter(|_| log) {
            Decision::Commit(ts)
        } else if self.coord.contains(txn)
            || self.coord_meta.contains_key(&txn)
            || self.commits.contains_key(&txn)
            || self
                .leader
                .as_ref()
                .is_some_and(|l| l.txns.contains_key(&txn))
        {
            return; // still deciding
        } else {
            Decision::Abort
        };
        out.push(Output::ToGroup {
            group: from,
            msg: GroupMessage::Decide {
                txn,
                coordinator: self.cfg.group,
                decision,
                deadline,
            },
        });
    }

    /// docs/design.md §5.5: what became of `txn`, for a client whose
    /// commit's outcome is unknown. Only the home group's serving leader
    /// answers: it has applied every entry of earlier terms (its term has
    /// started) and holds its lease (no later term can be committing), so
    ///
    /// - a commit record it has applied — the transaction's own, or, for a
    ///   cross-group transaction, its coordinator's decision — means
    ///   `Committed` (no-write commits, logged nowhere, are remembered by
    ///   the term that ran them and answered after their commit wait);
    /// - a transaction of its own term still active, committing (its
    ///   record proposed, perhaps chosen, not yet applied) or collecting
    ///   votes is `InProgress`, as is an id it cannot judge (a later
    ///   term's, or one it has not issued);
    /// - an id this term reserved that no request has begun is `Aborted`,
    ///   and can no longer be begun;
    /// - a record that may have been pruned is `Unknown`;
    /// - anything else is `Aborted`, for good: an earlier term's commit
    ///   record not applied by now was never chosen and never will be
    ///   (this leader's promise quorum refuses the older ballots), and a
    ///   transaction of this term that is no longer active ended without
    ///   a commit record in flight.
    fn txn_status(
        &mut self,
        now: TtInterval,
        id: RequestId,
        txn: TxnId,
    ) -> Result<Option<TxnStatus>, TxnError> {
        let home = crate::leader::home_group(txn);
        if home != self.cfg.group {
            return Err(crate::api::InvalidRequest::NotHomeGroup { home }.into());
        }
        self.serving(now, true)?;
        if let Some(c) = self.state.coordinated_txn(txn) {
            return Ok(Some(TxnStatus::Committed(c.commit_ts)));
        }
        if let Some(ts) = self.state.committed(txn) {
            return Ok(Some(TxnStatus::Committed(ts)));
        }
        let presume = self.bug(bug::TXN_STATUS_PRESUMES_ABORT);
        let l = self.leader.as_ref().expect("serving checked");
        if let Some(ts) = l.committed_at(txn) {
            // Without writes: committed at `ts`, told only after TT.after(ts).
            let reply = Ok(Response::TxnStatus(TxnStatus::Committed(ts)));
            self.commit_waits.push((ts, id, reply));
            return Ok(None);
        }
        let committing = self.commits.contains_key(&txn) || self.coord.is_committing(txn);
        let active = match l.txns.get(&txn) {
            // With the bug, a transaction whose commit is in flight is
            // taken for ended.
            Some(t) => !(presume && matches!(t.op, Op::Committing)),
            None => false,
        };
        let undecided = self.coord_meta.contains_key(&txn)
            || (self.coord.contains(txn) && self.coord.decision(txn).is_none());
        let later = txn.origin > l.origin || (txn.origin == l.origin && !l.issued(txn));
        if active || (committing && !presume) || undecided || later {
            return Ok(Some(TxnStatus::InProgress));
        }
        // A reserved id not begun yet: taken, it never will be.
        let l = self.leader.as_mut().expect("serving checked");
        if l.take_reserved(txn) {
            return Ok(Some(TxnStatus::Aborted));
        }
        if !l.remembers(txn) && self.state.may_have_forgotten(txn) {
            return Ok(Some(TxnStatus::Unknown));
        }
        Ok(Some(TxnStatus::Aborted))
    }

    fn heartbeat(&mut self, now: TtInterval, txn: TxnId) -> Reply {
        self.serving(now, true)?;
        let t = self.active(txn)?;
        t.last_active = now.midpoint();
        Ok(Response::Alive)
    }

    fn start_read_only(
        &mut self,
        now: TtInterval,
        id: RequestId,
        at: ReadAt,
        reads: Vec<ReadOp>,
        out: &mut Vec<Output>,
    ) {
        if let Err(e) = check_reads(&reads) {
            out.push(Output::Reply {
                id,
                reply: Err(e.into()),
            });
            return;
        }
        if let Err(e) = self.check_serves_reads(&reads) {
            out.push(Output::Reply { id, reply: Err(e) });
            return;
        }
        let target = match at {
            // Spanner §4.2.2: a leader with its lease and nothing prepared
            // reads at LastTS; anyone else at TT.now().latest.
            //
            // Here LastTS is the highest timestamp in the leader's log, not
            // the last one it applied: while it holds the lease no other
            // replica assigns timestamps, but another replica may already
            // have applied one of its entries (its clock passed the entry's
            // timestamp first, or a successor waiting out the lease
            // committed it), and a read here must not miss what a read
            // there saw. With nothing in flight this is t_paxos_safe and
            // the read is served at once; otherwise it waits for the
            // leader's in-flight entries to apply.
            ReadAt::Strong => {
                if self.serving(now, true).is_ok() && !self.state.has_prepared() {
                    ReadTarget::At(self.paxos.last_assigned_ts())
                } else {
                    ReadTarget::At(now.latest)
                }
            }
            ReadAt::Exact(t) => ReadTarget::At(t),
            ReadAt::MaxStaleness(nanos) => ReadTarget::Newest {
                floor: now.latest.saturating_sub(nanos),
            },
        };
        // docs/design.md §5.3: an exact timestamp below the cluster's birth
        // is refused, not answered "no value" as if the keys had been
        // deleted then. (A bounded-staleness read is served at the newest
        // safe time, which is past the birth.)
        if let (ReadAt::Exact(t), Some(birth)) = (at, self.cfg.birth) {
            if t < birth {
                let reply = Err(TxnError::ReadBelowClusterBirth { read_ts: t, birth });
                out.push(Output::Reply { id, reply });
                return;
            }
        }
        // docs/transactions.md, "Reads at a timestamp": a timestamp the
        // client chose is served as it comes within L of TT.now().latest,
        // waits until it is within L up to M, and is refused past M.
        let local = now.midpoint();
        let lead = match (at, target) {
            (ReadAt::Exact(_), ReadTarget::At(t)) => t.nanos_since(now.latest),
            _ => 0,
        };
        if lead > self.cfg.max_read_lead_nanos {
            let reply = Err(TxnError::ReadTimestampTooFarAhead {
                read_ts: target_ts(target),
                now_latest: now.latest,
                max_lead_nanos: self.cfg.max_read_lead_nanos,
            });
            out.push(Output::Reply { id, reply });
            return;
        }
        let early = lead.saturating_sub(self.cfg.read_lead_nanos);
        let mut w = ReadWait {
            id,
            reads,
            target,
            // The wait for the clock comes on top of the wait for safe time.
            deadline: local
                .saturating_add(early)
                .saturating_add(self.cfg.read_wait_nanos),
            admit_at: local.saturating_add(early),
            admitted: false,
            closed_after: None,
        };
        if early == 0 {
            self.admit_read(now, &mut w);
            if self.try_serve_read(&w, out) {
                return;
            }
        }
        if !self.paxos.membership().contains(self.paxos.id()) {
            // Not (or no longer) one of the group's voters: nothing new
            // reaches this replica, so its safe time will not move; the
            // read is better served elsewhere at once.
            let read_ts = w.read_ts();
            let t_safe = safe_time_for(&self.state, &w.reads, Timestamp::ZERO);
            out.push(Output::Reply {
                id,
                reply: Err(TxnError::NotYetSafe { read_ts, t_safe }),
            });
            return;
        }
        if self.read_waits.len() >= self.cfg.max_waiting_reads {
            out.push(Output::Reply {
                id,
                reply: Err(TxnError::Overloaded),
            });
            return;
        }
        let close = w.admitted && w.closed_after.is_none();
        let ts = w.read_ts();
        self.read_waits.push(w);
        if close {
            if let ReadTarget::At(_) = target {
                self.close_for_read(now, ts, out);
            }
        }
    }

    /// Admits a read whose timestamp is within L of `TT.now().latest`. At
    /// a serving leader, a read at `t` beyond the log (a read across
    /// groups at `TT.now().latest`, a strong read while something is
    /// prepared, a snapshot read at a chosen timestamp) is closed for the
    /// keys and ranges it reads, without a Paxos round and without pushing
    /// any other write: its reads go into the timestamp cache at `t`, so
    /// every write of them proposed from now on takes a timestamp above
    /// `t` ([`GroupReplica::write_floor`]), and `t` is closed for them once
    /// every entry already in the log has applied. Only for a `t` inside
    /// the lease (every later term's timestamps lie above it, docs/paxos.md)
    /// and with no write of this leader still waiting for its place in the
    /// log (its timestamp, chosen when it is placed, could fall at or
    /// below `t`); otherwise the read waits for safe time, and the caller
    /// proposes a close for it.
    fn admit_read(&mut self, now: TtInterval, w: &mut ReadWait) {
        w.admitted = true;
        let ReadTarget::At(t) = w.target else {
            return;
        };
        if t <= self.state.t_paxos_safe() || self.serving(now, true).is_err() {
            return;
        }
        let last_ts = self.paxos.last_assigned_ts();
        if t > last_ts {
            let inside = match self.paxos.lease_status(now) {
                meridian_paxos::LeaseStatus::Valid { end } => t < end,
                _ => false,
            };
            let unplaced = !self.by_proposal.is_empty() || !self.prepare_proposals.is_empty();
            if !inside || unplaced {
                return;
            }
            self.ts_cache.forget_through(last_ts);
            for r in &w.reads {
                match r {
                    ReadOp::Get(key) => self.ts_cache.record_key(key, t),
                    ReadOp::Scan { start, end, .. } => {
                        self.ts_cache.record_range(start, end.as_ref(), t)
                    }
                }
            }
        }
        // Every later entry lies above `t` (above the log's highest
        // timestamp, or, for writes of these keys, above the cache).
        w.closed_after = Some(self.paxos.last_slot());
    }

    /// The floor the timestamp cache sets for a record writing `writes`:
    /// one above the latest lock-free read of any of their keys this
    /// leader served (docs/transactions.md).
    fn write_floor(&self, writes: &[Write]) -> Timestamp {
        if self.bug(bug::READ_TS_NOT_REMEMBERED) {
            return Timestamp::ZERO;
        }
        writes
            .iter()
            .map(|w| self.ts_cache.max_read(&w.key))
            .max()
            .map_or(Timestamp::ZERO, Timestamp::next)
    }

    /// Spanner §4.1.3's closed timestamp, on demand: a leader asked to
    /// read at `ts` beyond every timestamp in its log (a read across
    /// groups at `TT.now().latest`, or a strong read while something is
    /// prepared) proposes a closed timestamp at `ts` at once instead of at
    /// its next idle close, so the read waits one Paxos round rather than
    /// up to a close interval. An entry already in the log at or above
    /// `ts` (a write, or an earlier close) raises `t_paxos_safe` there when
    /// it applies, and does as well.
    ///
    /// Only for admitted reads (within L of the clock), and tracked apart
    /// from the idle close: a read's close that must wait never holds back
    /// the closes that advance every replica's safe time.
    fn close_for_read(&mut self, now: TtInterval, ts: Timestamp, out: &mut Vec<Output>) {
        if self.read_close.is_some()
            || self.paxos.last_assigned_ts() >= ts
            || self.serving(now, true).is_err()
        {
            return;
        }
        let mut pout = Vec::new();
        if let Ok(id) =
            self.paxos
                .propose_at_least(now, Command::CloseTimestamp.encode(), ts, &mut pout)
        {
            self.read_close = Some(id);
        }
        self.absorb(pout, out);
    }

    /// Serves `w` if its timestamp is safe (or answers it with an error
    /// that waiting cannot fix). Returns whether it was answered.
    fn try_serve_read(&self, w: &ReadWait, out: &mut Vec<Output>) -> bool {
        // Spanner §4.2.4's finer t_TM_safe: a prepared transaction holds
        // back only reads of the keys it writes.
        if !w.admitted {
            return false;
        }
        if let Err(e) = self.check_serves_reads(&w.reads) {
            // A split applied while it waited (docs/design.md §9).
            out.push(Output::Reply {
                id: w.id,
                reply: Err(e),
            });
            return true;
        }
        let closed = match (w.closed_after, w.target) {
            (Some(slot), ReadTarget::At(t)) if self.state.applied_slot() >= slot => t,
            _ => Timestamp::ZERO,
        };
        let t_safe = safe_time_for(&self.state, &w.reads, closed);
        let ignore_safe_time = self.bug(bug::READ_WITHOUT_SAFE_TIME);
        let read_ts = match w.target {
            ReadTarget::At(t) => t,
            ReadTarget::Newest { floor } if t_safe >= floor => t_safe,
            ReadTarget::Newest { floor } => floor,
        };
        let horizon = self.state.gc_horizon();
        if read_ts < horizon {
            out.push(Output::Reply {
                id: w.id,
                reply: Err(TxnError::BelowGcHorizon { read_ts, horizon }),
            });
            return true;
        }
        if read_ts > t_safe && !ignore_safe_time {
            return false;
        }
        // With the planted bug the replica answers from whatever it has
        // applied, as of t_safe, claiming read_ts.
        let at = read_ts.min(t_safe);
        let reply = serve_reads(&self.state, &w.reads, at, closed)
            .map(|results| Response::ReadOnly { read_ts, results });
        out.push(Output::Reply { id: w.id, reply });
        true
    }
}

/// Why a transaction whose record could not be proposed aborts.
fn propose_error_reason(e: &meridian_paxos::ProposeError) -> AbortReason {
    match e {
        meridian_paxos::ProposeError::QueueFull(_) => AbortReason::Overloaded,
        _ => AbortReason::LeaderChanged,
    }
}

/// The safe time of the keys and ranges `reads` touch: the group's
/// `t_paxos_safe`, held below only by transactions prepared on those keys.
/// `closed`: a timestamp the leader knows closed for these reads (see
/// [`GroupReplica::admit_read`]), or zero.
fn safe_time_for(state: &GroupState, reads: &[ReadOp], closed: Timestamp) -> Timestamp {
    use std::ops::Bound;
    reads
        .iter()
        .map(|r| match r {
            ReadOp::Get(key) => state.t_safe_for_key_closed(key, closed),
            ReadOp::Scan { start, end, .. } => state.t_safe_for_range_closed(
                Bound::Included(&start[..]),
                end.as_ref()
                    .map_or(Bound::Unbounded, |e| Bound::Excluded(&e[..])),
                closed,
            ),
        })
        .min()
        .unwrap_or_else(|| state.t_safe())
}

/// The timestamp a read target names (its floor, for the newest).
fn target_ts(target: ReadTarget) -> Timestamp {
    match target {
        ReadTarget::At(t) => t,
        ReadTarget::Newest { floor } => floor,
    }
}

/// Reads `reads` at `at` (which is safe, given `closed`).
fn serve_reads(
    state: &GroupState,
    reads: &[ReadOp],
    at: Timestamp,
    closed: Timestamp,
) -> Result<Vec<ReadResult>, TxnError> {
    use std::ops::Bound;
    let map = |e: ReadError| match e {
        ReadError::NotYetSafe { read_ts, t_safe } => TxnError::NotYetSafe { read_ts, t_safe },
        ReadError::Mvcc(meridian_participant::MvccError::BelowGcHorizon { read_ts, horizon }) => {
            TxnError::BelowGcHorizon { read_ts, horizon }
        }
        ReadError::Mvcc(meridian_participant::MvccError::ScanLimitTooLarge { limit, max }) => {
            crate::api::InvalidRequest::ScanLimitTooLarge { limit, max }.into()
        }
        ReadError::Mvcc(other) => panic!("read refused by the store: {other}"),
    };
    reads
        .iter()
        .map(|r| match r {
            ReadOp::Get(key) => state
                .read_closed(key, at, closed)
                .map(|v| ReadResult::Value(v.map(|(_, v)| v)))
                .map_err(map),
            ReadOp::Scan { start, end, limit } => {
                let lo = Bound::Included(&start[..]);
                let hi = end
                    .as_ref()
                    .map_or(Bound::Unbounded, |e| Bound::Excluded(&e[..]));
                state
                    .scan_closed(lo, hi, at, *limit, closed)
                    .map(|rows| {
                        ReadResult::Rows(rows.into_iter().map(|(k, _, v)| (k, v)).collect())
                    })
                    .map_err(map)
            }
        })
        .collect()
}

/// The writes with one per key (the last one given wins), sorted by key.
fn dedupe_writes(writes: Vec<Write>) -> Vec<Write> {
    let mut by_key: BTreeMap<bytes::Bytes, Write> = BTreeMap::new();
    for w in writes {
        by_key.insert(w.key.clone(), w);
    }
    by_key.into_values().collect()
}

/// Names for the planted bugs, usable whether or not the feature is on.
#[cfg(feature = "planted-bugs")]
pub(crate) mod bug {
    use crate::PlantedBug;
    pub(crate) const SKIP_COMMIT_WAIT: PlantedBug = PlantedBug::SkipCommitWait;
    pub(crate) const READ_WITHOUT_SAFE_TIME: PlantedBug = PlantedBug::ReadWithoutSafeTime;
    pub(crate) const READ_WITHOUT_LEASE: PlantedBug = PlantedBug::ReadWithoutLease;
    pub(crate) const SKIP_OCC_VALIDATION: PlantedBug = PlantedBug::SkipOccValidation;
    pub(crate) const COMMIT_TS_BELOW_PREPARE: PlantedBug = PlantedBug::CommitTsBelowPrepare;
    pub(crate) const COORDINATOR_FORGETS_DECISION: PlantedBug =
        PlantedBug::CoordinatorForgetsDecision;
    pub(crate) const NO_LOCK_REBUILD_AFTER_FAILOVER: PlantedBug =
        PlantedBug::NoLockRebuildAfterFailover;
    pub(crate) const RELEASE_READ_LOCKS_AT_PREPARE: PlantedBug =
        PlantedBug::ReleaseReadLocksAtPrepare;
    pub(crate) const SCAN_WITHOUT_RANGE_LOCK: PlantedBug = PlantedBug::ScanWithoutRangeLock;
    pub(crate) const TXN_STATUS_PRESUMES_ABORT: PlantedBug = PlantedBug::TxnStatusPresumesAbort;
    pub(crate) const READ_TS_NOT_REMEMBERED: PlantedBug = PlantedBug::ReadTsNotRemembered;
    pub(crate) const DECISION_ACK_BEFORE_DURABLE: PlantedBug = PlantedBug::DecisionAckBeforeDurable;
    pub(crate) const PREPARE_REVIVES_ABORTED: PlantedBug = PlantedBug::PrepareRevivesAborted;
    pub(crate) const SPLIT_CHILD_SAFE_TIME_FROM_ZERO: PlantedBug =
        PlantedBug::SplitChildSafeTimeFromZero;
    pub(crate) const SPLIT_DROPS_PREPARED: PlantedBug = PlantedBug::SplitDropsPrepared;
    pub(crate) const SPLIT_ACK_BEFORE_CHILD_DECIDES: PlantedBug =
        PlantedBug::SplitAckBeforeChildDecides;
    pub(crate) const STALE_DESCRIPTOR_SERVED: PlantedBug = PlantedBug::StaleDescriptorServed;
}

#[cfg(not(feature = "planted-bugs"))]
pub(crate) mod bug {
    use crate::BugStub;
    pub(crate) const SKIP_COMMIT_WAIT: BugStub = BugStub;
    pub(crate) const READ_WITHOUT_SAFE_TIME: BugStub = BugStub;
    pub(crate) const READ_WITHOUT_LEASE: BugStub = BugStub;
    pub(crate) const SKIP_OCC_VALIDATION: BugStub = BugStub;
    pub(crate) const COMMIT_TS_BELOW_PREPARE: BugStub = BugStub;
    pub(crate) const COORDINATOR_FORGETS_DECISION: BugStub = BugStub;
    pub(crate) const NO_LOCK_REBUILD_AFTER_FAILOVER: BugStub = BugStub;
    pub(crate) const RELEASE_READ_LOCKS_AT_PREPARE: BugStub = BugStub;
    pub(crate) const SCAN_WITHOUT_RANGE_LOCK: BugStub = BugStub;
    pub(crate) const TXN_STATUS_PRESUMES_ABORT: BugStub = BugStub;
    pub(crate) const READ_TS_NOT_REMEMBERED: BugStub = BugStub;
    pub(crate) const DECISION_ACK_BEFORE_DURABLE: BugStub = BugStub;
    pub(crate) const PREPARE_REVIVES_ABORTED: BugStub = BugStub;
    pub(crate) const SPLIT_CHILD_SAFE_TIME_FROM_ZERO: BugStub = BugStub;
    pub(crate) const SPLIT_ACK_BEFORE_CHILD_DECIDES: BugStub = BugStub;
    pub(crate) const STALE_DESCRIPTOR_SERVED: BugStub = BugStub;
}
