//! The leader's transaction table for one leadership term: active
//! read-write transactions, their locks, and the requests waiting on them
//! (Spanner §4.2.1).
//!
//! The table lives exactly as long as one term (one ballot). When the
//! replica stops leading, or leads again at a higher ballot, the table is
//! dropped: the locks of unprepared transactions die with it and those
//! transactions abort, retryably (docs/design.md §4). Transaction ids carry the
//! term that issued them, so a request for a transaction of an ended term
//! is recognised and refused, never mistaken for a new transaction.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use meridian_participant::fxhash::FxHashMap;
use meridian_participant::occ::{self, ReadVersion, ScanVersions};
use meridian_participant::{
    Acquire, GroupState, LockError, LockLimits, LockMode, LockTable, Priority, TxnId, Write,
};
use meridian_paxos::Ballot;
use meridian_truetime::Timestamp;

use crate::api::{
    AbortReason, CcMode, GroupId, GroupMessage, InvalidRequest, MAX_TXN_OPERATIONS, Participant,
    RequestId, Response, TxnError, Vote,
};
use crate::replica::Output;

/// Most ended (aborted) transactions of this term remembered, so a late
/// request for one gets its real abort reason.
pub(crate) const MAX_REMEMBERED_ENDED: usize = 65_536;

/// What a transaction is doing.
#[derive(Debug)]
pub(crate) enum Op {
    /// Nothing in progress; counts towards the inactivity timeout.
    Idle,
    /// A read request taking shared locks key by key.
    Reading {
        targets: Vec<RequestId>,
        keys: Vec<Bytes>,
        values: Vec<Option<Bytes>>,
    },
    /// A scan request taking (or waiting for) its shared range lock.
    Scanning {
        targets: Vec<RequestId>,
        start: Bytes,
        end: Option<Bytes>,
        limit: usize,
    },
    /// A commit request (or, at a participant, a prepare) taking
    /// exclusive locks on its writes.
    Locking {
        targets: Vec<RequestId>,
        writes: Vec<Write>,
        /// The first write whose exclusive lock is not yet held.
        next: usize,
        /// Spanner §4.1.2 start rule: the commit timestamp must exceed
        /// `TT.now().latest` at the request's arrival.
        min_ts: Timestamp,
        /// What to do once every lock is held.
        kind: CommitKind,
    },
    /// Every lock held and the commit record proposed: it can no longer be
    /// wounded or aborted; the replica's commit tracker has the rest.
    Committing,
}

/// An active read-write transaction.
#[derive(Debug)]
pub(crate) struct ActiveTxn {
    pub(crate) priority: Priority,
    /// Locking or optimistic (docs/design.md §5.4).
    pub(crate) mode: CcMode,
    /// An optimistic transaction's reads here and the versions they saw,
    /// validated at commit or prepare (empty for a locking one).
    pub(crate) reads: Vec<ReadVersion>,
    /// An optimistic transaction's scans here and the rows they saw,
    /// validated with its reads (empty for a locking one).
    pub(crate) scans: Vec<ScanVersions>,
    /// Local time of the last request.
    pub(crate) last_active: Timestamp,
    /// Keys read and written so far, against `MAX_TXN_OPERATIONS`.
    pub(crate) ops: usize,
    pub(crate) op: Op,
}

impl ActiveTxn {
    /// Every write lock is held: the transaction, which was locking, is
    /// now committing; what its commit (or prepare) record needs.
    fn start_committing(&mut self, txn: TxnId, mode: CcMode) -> ReadyToCommit {
        let Op::Locking {
            targets,
            writes,
            min_ts,
            kind,
            ..
        } = std::mem::replace(&mut self.op, Op::Committing)
        else {
            unreachable!("txn {txn} commits from the locking state only")
        };
        ReadyToCommit {
            txn,
            priority: self.priority,
            mode,
            targets,
            writes,
            min_ts,
            kind,
        }
    }
}

/// How a transaction of this term that is no longer active ended.
#[derive(Clone, Copy, Debug)]
enum Ended {
    Aborted(AbortReason),
    /// A transaction without writes, committed without a log record.
    Committed(Timestamp),
}

/// What a transaction does once its write locks are held here.
#[derive(Clone, Debug)]
pub(crate) enum CommitKind {
    /// A single-group transaction: log its commit record.
    OnePhase,
    /// This group coordinates two-phase commit over itself and these.
    Coordinator { participants: Vec<Participant> },
    /// This group is a participant: log a prepare record and vote.
    Participant {
        coordinator: GroupId,
        deadline: Timestamp,
    },
}

/// A transaction whose locks are all held and whose commit (or prepare)
/// record should now be proposed.
#[derive(Debug)]
pub(crate) struct ReadyToCommit {
    pub(crate) txn: TxnId,
    pub(crate) priority: Priority,
    pub(crate) mode: CcMode,
    pub(crate) targets: Vec<RequestId>,
    pub(crate) writes: Vec<Write>,
    pub(crate) min_ts: Timestamp,
    pub(crate) kind: CommitKind,
}

/// The leader's table for one term.
#[derive(Debug)]
pub(crate) struct Leader {
    /// The group led.
    group: GroupId,
    pub(crate) ballot: Ballot,
    /// The origin of every transaction id this term issues.
    pub(crate) origin: u64,
    next_seq: u64,
    /// Sequence numbers of ids this term reserved (at a `Begin`) that no
    /// request has begun yet, oldest first. An id leaves on its first
    /// request, so it is begun at most once (docs/design.md §5.1).
    unbegun: BTreeSet<u64>,
    pub(crate) locks: LockTable,
    /// Whether the group state has applied an entry of this term's ballot,
    /// and so every entry of earlier terms (they apply in slot order, after
    /// their commit wait, later than Paxos hands them over).
    pub(crate) term_applied: bool,
    /// Ordered, so sweeps (expiry, step-down) run in the same order in
    /// every run of a seed.
    pub(crate) txns: BTreeMap<TxnId, ActiveTxn>,
    ended: FxHashMap<TxnId, Ended>,
    ended_order: VecDeque<TxnId>,
    /// Prepared transactions an older one waits for, whose coordinators
    /// the replica is to ask to abort them (cross-group wound-wait).
    pub(crate) remote_wounds: Vec<TxnId>,
    max_active: usize,
    /// A deliberate bug of this layer (simulator only).
    #[cfg(feature = "planted-bugs")]
    pub(crate) planted_bug: Option<crate::PlantedBug>,
}

/// The origin of the transaction ids a leader of `group` at `ballot`
/// issues: `round << 44 | node << 32 | group`, unique to the pair (group
/// ids are bounded to 32 bits and node ids to 12 by [`crate::Config`],
/// rounds to 20 here) and, within one group, ordered as the ballots are,
/// so later terms have larger origins.
pub(crate) fn origin(group: u64, ballot: Ballot) -> u64 {
    assert!(
        ballot.round <= crate::config::MAX_ORIGIN_ROUND,
        "ballot round {} exceeds the {} a transaction id holds",
        ballot.round,
        crate::config::MAX_ORIGIN_ROUND
    );
    debug_assert!(group <= crate::MAX_GROUP_ID && ballot.node <= crate::MAX_NODE_ID);
    (ballot.round << (crate::config::ORIGIN_GROUP_BITS + crate::config::ORIGIN_NODE_BITS))
        | (ballot.node << crate::config::ORIGIN_GROUP_BITS)
        | group
}

/// The home group of `txn`: the group whose leader issued it (the low
/// [`crate::config::ORIGIN_GROUP_BITS`] bits of its [`origin`]).
pub(crate) fn home_group(txn: TxnId) -> GroupId {
    txn.origin & crate::MAX_GROUP_ID
}

impl Leader {
    pub(crate) fn new(group: u64, ballot: Ballot, limits: LockLimits, max_active: usize) -> Leader {
        Leader {
            group,
            ballot,
            origin: origin(group, ballot),
            next_seq: 1,
            unbegun: BTreeSet::new(),
            locks: LockTable::new(limits),
            term_applied: false,
            txns: BTreeMap::new(),
            ended: FxHashMap::default(),
            ended_order: VecDeque::new(),
            remote_wounds: Vec::new(),
            max_active,
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
        }
    }

    #[cfg(feature = "planted-bugs")]
    fn bug(&self, b: crate::PlantedBug) -> bool {
        self.planted_bug == Some(b)
    }

    #[cfg(not(feature = "planted-bugs"))]
    #[inline(always)]
    fn bug(&self, _b: crate::BugStub) -> bool {
        false
    }

    /// Begins a transaction (Spanner §4.2.1: its priority is its first
    /// start timestamp, `TT.now().latest` here unless a retry brings one),
    /// and reserves up to `reserve` further ids for its client's later
    /// transactions (at most [`crate::MAX_RESERVE_PER_BEGIN`]).
    pub(crate) fn begin(
        &mut self,
        priority: Option<Priority>,
        mode: CcMode,
        now_latest: Timestamp,
        local: Timestamp,
        reserve: u32,
    ) -> Result<Response, TxnError> {
        if self.txns.len() >= self.max_active {
            return Err(TxnError::Overloaded);
        }
        let txn = TxnId::new(self.origin, self.next_seq);
        let reserved = reserve.min(crate::MAX_RESERVE_PER_BEGIN);
        self.next_seq += 1;
        for _ in 0..reserved {
            if self.unbegun.len() >= crate::MAX_UNBEGUN_RESERVED {
                self.unbegun.pop_first();
            }
            self.unbegun.insert(self.next_seq);
            self.next_seq += 1;
        }
        let priority = priority.unwrap_or(Priority::new(now_latest));
        self.txns.insert(
            txn,
            ActiveTxn {
                priority,
                mode,
                reads: Vec::new(),
                scans: Vec::new(),
                last_active: local,
                ops: 0,
                op: Op::Idle,
            },
        );
        Ok(Response::Begun {
            txn,
            priority,
            reserved,
        })
    }

    /// Takes `txn` out of the reserved ids not yet begun: whether it was
    /// one (an id reserved by this term whose first request this is). A
    /// reserved id is begun at most once, so one that ended is never
    /// begun again, however late a copy of its first request arrives.
    pub(crate) fn take_reserved(&mut self, txn: TxnId) -> bool {
        txn.origin == self.origin && self.unbegun.remove(&txn.seq)
    }

    /// A transaction begun at another group joins this one (its first
    /// request here), with the priority and mode it began with.
    pub(crate) fn join(
        &mut self,
        txn: TxnId,
        priority: Priority,
        mode: CcMode,
        local: Timestamp,
    ) -> Result<(), TxnError> {
        if self.txns.len() >= self.max_active {
            return Err(TxnError::Overloaded);
        }
        self.txns.insert(
            txn,
            ActiveTxn {
                priority,
                mode,
                reads: Vec::new(),
                scans: Vec::new(),
                last_active: local,
                ops: 0,
                op: Op::Idle,
            },
        );
        Ok(())
    }

    /// Why a transaction the table does not hold is gone. `term` is the
    /// term the transaction's requests here met (a home group's is the
    /// transaction's origin).
    pub(crate) fn missing(&self, txn: TxnId, term: u64) -> TxnError {
        let reason = if term == self.origin {
            match self.ended.get(&txn) {
                Some(Ended::Aborted(reason)) => *reason,
                Some(Ended::Committed(_)) | None => AbortReason::Unknown,
            }
        } else {
            AbortReason::LeaderChanged
        };
        TxnError::Aborted { txn, reason }
    }

    /// Rebuilds the locks of a transaction prepared in the log, at the
    /// start of a term (docs/design.md §5.1: failover keeps prepared
    /// transactions' locks). Its prepare record holds its writes
    /// (exclusive), reads (shared) and scanned ranges (shared range locks).
    pub(crate) fn rebuild_prepared(
        &mut self,
        txn: TxnId,
        priority: Priority,
        writes: &[Write],
        reads: &[Bytes],
        ranges: &[(Bytes, Option<Bytes>)],
        local: Timestamp,
    ) {
        self.txns.insert(
            txn,
            ActiveTxn {
                priority,
                // Prepared: it holds its locks whichever mode it ran in.
                mode: CcMode::Locking,
                reads: Vec::new(),
                scans: Vec::new(),
                last_active: local,
                ops: 0,
                op: Op::Committing,
            },
        );
        let wanted = writes
            .iter()
            .map(|w| (&w.key, LockMode::Exclusive))
            .chain(reads.iter().map(|k| (k, LockMode::Shared)));
        for (key, mode) in wanted {
            let got = self.locks.acquire(txn, priority, key, mode);
            // Prepared transactions' locks never conflicted: each held them
            // all at once under the leader that prepared it.
            assert!(
                matches!(got, Ok(Acquire::Granted)),
                "rebuilding prepared txn {txn}'s lock on {key:?}: {got:?}"
            );
        }
        for (start, end) in ranges {
            let got = self.locks.acquire_range(txn, priority, start, end.as_ref());
            assert!(
                matches!(got, Ok(Acquire::Granted)),
                "rebuilding prepared txn {txn}'s range lock on [{start:?}, {end:?}): {got:?}"
            );
        }
        match self.locks.mark_prepared(txn) {
            // Nothing to lock (it scanned only an empty range here):
            // nothing to protect.
            Ok(()) | Err(LockError::UnknownTxn { .. }) => {}
            Err(e) => panic!("rebuilt txn {txn} cannot be marked prepared: {e}"),
        }
    }

    /// Aborts `txn` (if active and not committing): releases its locks,
    /// fails its in-flight request, and queues the transactions its locks
    /// now go to. Returns whether it was aborted.
    pub(crate) fn abort(
        &mut self,
        txn: TxnId,
        reason: AbortReason,
        resume: &mut VecDeque<TxnId>,
        out: &mut Vec<Output>,
    ) -> bool {
        match self.txns.get(&txn) {
            Some(t) if !matches!(t.op, Op::Committing) => {}
            _ => return false,
        }
        let t = self.txns.remove(&txn).expect("checked above");
        if let Op::Locking {
            kind: CommitKind::Participant { coordinator, .. },
            ..
        } = &t.op
        {
            self.vote_no(txn, *coordinator, reason, out);
        }
        if let Op::Reading { targets, .. }
        | Op::Scanning { targets, .. }
        | Op::Locking { targets, .. } = t.op
        {
            reply_all(&targets, &Err(TxnError::Aborted { txn, reason }), out);
        }
        self.release(txn, resume);
        self.remember(txn, Ended::Aborted(reason));
        true
    }

    /// Tells `coordinator` that `txn` cannot prepare here.
    pub(crate) fn vote_no(
        &self,
        txn: TxnId,
        coordinator: GroupId,
        reason: AbortReason,
        out: &mut Vec<Output>,
    ) {
        out.push(Output::ToGroup {
            group: coordinator,
            msg: GroupMessage::Vote {
                txn,
                from: self.group,
                vote: Vote::No(reason),
            },
        });
    }

    /// Ends `txn`, which did not commit, whatever it was doing (its
    /// requests are answered by the caller): releases its locks and
    /// remembers why.
    pub(crate) fn end(&mut self, txn: TxnId, reason: AbortReason, resume: &mut VecDeque<TxnId>) {
        if self.txns.remove(&txn).is_some() {
            self.release(txn, resume);
            self.remember(txn, Ended::Aborted(reason));
        }
    }

    /// Whether this term issued `txn` (its origin is this term's and its
    /// sequence number was handed out).
    pub(crate) fn issued(&self, txn: TxnId) -> bool {
        txn.origin == self.origin && txn.seq < self.next_seq
    }

    /// Whether this term remembers how `txn` ended.
    pub(crate) fn remembers(&self, txn: TxnId) -> bool {
        self.ended.contains_key(&txn)
    }

    /// Whether `txn` is remembered as aborted in this term.
    pub(crate) fn aborted_here(&self, txn: TxnId) -> bool {
        matches!(self.ended.get(&txn), Some(Ended::Aborted(_)))
    }

    /// Releases every lock of `txn` and queues whoever they go to.
    pub(crate) fn release(&mut self, txn: TxnId, resume: &mut VecDeque<TxnId>) {
        for g in self.locks.release_all(txn) {
            resume.push_back(g.txn);
        }
    }

    /// Forgets a transaction that finished (committed), releasing its locks.
    pub(crate) fn finish(&mut self, txn: TxnId, resume: &mut VecDeque<TxnId>) {
        if self.txns.remove(&txn).is_some() {
            self.release(txn, resume);
        }
    }

    /// Remembers that `txn`, which had no writes, committed at `ts`.
    pub(crate) fn record_committed(&mut self, txn: TxnId, ts: Timestamp) {
        self.remember(txn, Ended::Committed(ts));
    }

    /// When `txn` committed, if it was a transaction of this term without
    /// writes (others are in the group state's commit records).
    pub(crate) fn committed_at(&self, txn: TxnId) -> Option<Timestamp> {
        match self.ended.get(&txn) {
            Some(Ended::Committed(ts)) => Some(*ts),
            _ => None,
        }
    }

    fn remember(&mut self, txn: TxnId, how: Ended) {
        if self.ended_order.len() >= MAX_REMEMBERED_ENDED {
            if let Some(old) = self.ended_order.pop_front() {
                self.ended.remove(&old);
            }
        }
        self.ended.insert(txn, how);
        self.ended_order.push_back(txn);
    }

    /// Drives `txn`'s in-flight request as far as its locks allow: takes
    /// the next locks, reads under them, answers a finished read, and
    /// reports a commit whose locks are all held in `ready`.
    pub(crate) fn drive(
        &mut self,
        txn: TxnId,
        local: Timestamp,
        state: &GroupState,
        resume: &mut VecDeque<TxnId>,
        ready: &mut Vec<ReadyToCommit>,
        out: &mut Vec<Output>,
    ) {
        loop {
            let Some(t) = self.txns.get_mut(&txn) else {
                return;
            };
            let priority = t.priority;
            let (key, mode) = match &mut t.op {
                Op::Idle | Op::Committing => return,
                Op::Reading {
                    targets,
                    keys,
                    values,
                } => {
                    if values.len() == keys.len() {
                        let values = std::mem::take(values);
                        let targets = std::mem::take(targets);
                        // The keys count against the limit once read; the
                        // inactivity clock starts when the answer leaves.
                        t.ops += keys.len();
                        t.last_active = local;
                        t.op = Op::Idle;
                        let term = self.origin;
                        reply_all(&targets, &Ok(Response::Read { values, term }), out);
                        return;
                    }
                    (keys[values.len()].clone(), LockMode::Shared)
                }
                Op::Scanning { .. } => {
                    self.drive_scan(txn, local, state, resume, out);
                    return;
                }
                Op::Locking { .. } if t.mode == CcMode::Optimistic => {
                    self.lock_optimistic(txn, state, resume, ready, out);
                    return;
                }
                Op::Locking { writes, next, .. } => {
                    if *next == writes.len() {
                        ready.push(t.start_committing(txn, CcMode::Locking));
                        return;
                    }
                    (writes[*next].key.clone(), LockMode::Exclusive)
                }
            };
            let got = self.locks.acquire(txn, priority, &key, mode);
            let Some(granted) = self.settle(txn, local, got, resume, out) else {
                return;
            };
            if !granted {
                self.wound_prepared_holders(txn, priority, &key, mode);
                return;
            }
            match self.txns.get_mut(&txn).map(|t| &mut t.op) {
                Some(Op::Reading { values, .. }) => {
                    // Spanner §4.2.1: under the shared lock the newest
                    // applied version is the one to read; every
                    // conflicting commit holds its exclusive lock until
                    // it has applied.
                    values.push(state.read_latest(&key).map(|(_, v)| v));
                }
                Some(Op::Locking { next, .. }) => *next += 1,
                _ => unreachable!("only reading and locking txns take locks"),
            }
        }
    }

    /// A locking scan: takes the shared range lock on the whole requested
    /// range under wound-wait (as a read takes its key locks; resumed here
    /// when the lock is granted), then reads the newest applied rows in it.
    /// The range lock is held until the outcome (strict two-phase locking):
    /// no other transaction can write inside the range, a key there now or
    /// a new one, until this one ends (no phantoms).
    fn drive_scan(
        &mut self,
        txn: TxnId,
        local: Timestamp,
        state: &GroupState,
        resume: &mut VecDeque<TxnId>,
        out: &mut Vec<Output>,
    ) {
        let t = self.txns.get(&txn).expect("caller checked");
        let Op::Scanning { start, end, .. } = &t.op else {
            unreachable!("caller checked")
        };
        let (start, end, priority) = (start.clone(), end.clone(), t.priority);
        if !self.bug(crate::replica::bug::SCAN_WITHOUT_RANGE_LOCK) {
            let got = self
                .locks
                .acquire_range(txn, priority, &start, end.as_ref());
            let Some(granted) = self.settle(txn, local, got, resume, out) else {
                return;
            };
            if !granted {
                self.wound_prepared_in_range(txn, priority, &start, end.as_ref());
                return;
            }
        }
        let origin = self.origin;
        let t = self.txns.get_mut(&txn).expect("wounds spare the requester");
        let Op::Scanning { targets, limit, .. } = std::mem::replace(&mut t.op, Op::Idle) else {
            unreachable!("checked above")
        };
        // Spanner §4.2.1: under the range lock the newest applied versions
        // are the ones to read; every conflicting commit holds its
        // exclusive lock until it has applied.
        let rows = state
            .scan_latest(&start, end.as_deref(), limit)
            .expect("the limit was checked at the request");
        t.last_active = local;
        let reply = match count_rows(t, rows.len()) {
            Ok(()) => Ok(Response::Rows {
                rows: rows.into_iter().map(|(k, _, v)| (k, v)).collect(),
                term: origin,
            }),
            Err(e) => Err(e),
        };
        reply_all(&targets, &reply, out);
    }

    /// An optimistic scan (docs/design.md §5.4): no lock; the newest
    /// applied rows of the range, recorded with their versions for
    /// validation at commit.
    pub(crate) fn scan_optimistic(
        &mut self,
        txn: TxnId,
        start: Bytes,
        end: Option<Bytes>,
        limit: usize,
        state: &GroupState,
        local: Timestamp,
    ) -> Result<Response, TxnError> {
        let t = self.txns.get_mut(&txn).expect("caller checked");
        let rows = state
            .scan_latest(&start, end.as_deref(), limit)
            .expect("the limit was checked at the request");
        t.last_active = local;
        count_rows(t, rows.len())?;
        t.scans.push(ScanVersions {
            start,
            end,
            limit,
            rows: rows.iter().map(|(k, ts, _)| (k.clone(), *ts)).collect(),
        });
        Ok(Response::Rows {
            rows: rows.into_iter().map(|(k, _, v)| (k, v)).collect(),
            term: self.origin,
        })
    }

    /// An optimistic read (docs/design.md §5.4): no lock; the newest
    /// applied version of each key, tombstones included, recorded with
    /// the transaction for validation at commit.
    pub(crate) fn read_optimistic(
        &mut self,
        txn: TxnId,
        keys: Vec<Bytes>,
        state: &GroupState,
        local: Timestamp,
    ) -> Response {
        let t = self.txns.get_mut(&txn).expect("caller checked");
        let mut values = Vec::with_capacity(keys.len());
        t.ops += keys.len();
        t.last_active = local;
        for key in keys {
            let version = state.read_latest_version(&key);
            let seen = version.as_ref().map(|(ts, _)| *ts);
            values.push(version.and_then(|(_, v)| v));
            t.reads.push(ReadVersion { key, seen });
        }
        Response::Read {
            values,
            term: self.origin,
        }
    }

    /// FaRM's lock and validate phases for an optimistic transaction whose
    /// commit (or prepare) is in `Locking` (docs/design.md §5.4), all in
    /// this one step: try-lock every write exclusively without waiting,
    /// validate the recorded reads, and hold every validated read key
    /// shared until the outcome; then the same for its scans, whose ranges
    /// are try-locked shared and whose rows are re-checked
    /// ([`Leader::validate_scans`]). Any failure aborts it (`Conflict`, a no
    /// vote at a participant); success reports it in `ready`, where it is
    /// marked prepared before anything else can run. It never queues, so
    /// it never waits and never wounds.
    fn lock_optimistic(
        &mut self,
        txn: TxnId,
        state: &GroupState,
        resume: &mut VecDeque<TxnId>,
        ready: &mut Vec<ReadyToCommit>,
        out: &mut Vec<Output>,
    ) {
        let t = self.txns.get(&txn).expect("caller checked");
        let Op::Locking { writes, .. } = &t.op else {
            unreachable!("caller checked")
        };
        let priority = t.priority;
        let mut ok = true;
        for w in writes {
            match self
                .locks
                .try_acquire(txn, priority, &w.key, LockMode::Exclusive)
            {
                Ok(true) => {}
                Ok(false) => {
                    ok = false;
                    break;
                }
                // It held nothing before this step, so nothing can have
                // wounded or prepared it.
                Err(e) => panic!("lock table refused optimistic txn {txn}: {e}"),
            }
        }
        let skip_validation = self.bug(crate::replica::bug::SKIP_OCC_VALIDATION);
        ok = ok && (skip_validation || occ::validate(state, &self.locks, txn, &t.reads).is_ok());
        if ok {
            for r in &t.reads {
                match self
                    .locks
                    .try_acquire(txn, priority, &r.key, LockMode::Shared)
                {
                    Ok(true) => {}
                    Ok(false) => {
                        ok = false;
                        break;
                    }
                    Err(e) => panic!("lock table refused optimistic txn {txn}: {e}"),
                }
            }
        }
        ok = ok && self.validate_scans(txn, state, !skip_validation);
        if !ok {
            self.abort(txn, AbortReason::Conflict, resume, out);
            return;
        }
        let t = self.txns.get_mut(&txn).expect("checked above");
        ready.push(t.start_committing(txn, CcMode::Optimistic));
    }

    /// Validates a single-group optimistic transaction without writes at
    /// its commit: it commits only if every read and scan is still
    /// current. The read keys and scanned ranges are then held shared until
    /// its commit wait ends (the caller releases them), as a locking
    /// transaction's would be, so no write of what it read can take a
    /// timestamp below its own.
    pub(crate) fn validate_read_only(&mut self, txn: TxnId, state: &GroupState) -> bool {
        let Some(t) = self.txns.get(&txn) else {
            return false;
        };
        let valid = self.bug(crate::replica::bug::SKIP_OCC_VALIDATION)
            || occ::validate(state, &self.locks, txn, &t.reads).is_ok();
        if !valid {
            return false;
        }
        let (priority, keys): (Priority, Vec<Bytes>) =
            (t.priority, t.reads.iter().map(|r| r.key.clone()).collect());
        keys.iter().all(|key| {
            matches!(
                self.locks.try_acquire(txn, priority, key, LockMode::Shared),
                Ok(true)
            )
        }) && self.validate_scans(
            txn,
            state,
            !self.bug(crate::replica::bug::SKIP_OCC_VALIDATION),
        )
    }

    /// Validates an optimistic transaction's scans and holds their ranges
    /// (docs/design.md §5.4): each range is try-locked shared, which fails
    /// while another transaction holds or queued an exclusive lock inside
    /// it (a write about to apply), and its first `limit` rows must still be
    /// the `(key, version)` pairs the scan returned (no row changed or
    /// deleted, no key inserted; not checked with `check_rows` false, the
    /// planted bug that skips validation). The ranges stay locked until the
    /// outcome; on failure the caller releases what was taken.
    fn validate_scans(&mut self, txn: TxnId, state: &GroupState, check_rows: bool) -> bool {
        let Some(t) = self.txns.get(&txn) else {
            return false;
        };
        let priority = t.priority;
        t.scans.iter().all(|scan| {
            match self
                .locks
                .try_acquire_range(txn, priority, &scan.start, scan.end.as_ref())
            {
                Ok(true) => !check_rows || occ::validate_scan(state, scan).is_ok(),
                Ok(false) => false,
                Err(e) => panic!("lock table refused optimistic txn {txn}'s range: {e}"),
            }
        })
    }

    /// Wound-wait across groups (Spanner §4.2.1): `txn` waits for `key`;
    /// the younger holders in its way that are prepared cannot be wounded
    /// here (they may already have voted yes), so they are queued in
    /// `remote_wounds` for the replica to ask their coordinators to abort
    /// them while they are still collecting votes. A decided one finishes
    /// on its own.
    fn wound_prepared_holders(
        &mut self,
        txn: TxnId,
        priority: Priority,
        key: &Bytes,
        mode: LockMode,
    ) {
        // A range lock (a scan's, always shared) is in the way of an
        // exclusive request as a key lock is.
        let mut in_the_way: Vec<TxnId> = self
            .locks
            .holders(key)
            .into_iter()
            .filter(|(_, held)| held.conflicts_with(mode))
            .map(|(holder, _)| holder)
            .collect();
        if mode == LockMode::Exclusive {
            in_the_way.extend(self.locks.range_holders(key));
        }
        self.wound_prepared_younger(txn, priority, in_the_way);
    }

    /// [`wound_prepared_holders`](Self::wound_prepared_holders) for a scan
    /// waiting for its range lock: the keys held exclusively inside the
    /// range are in its way.
    fn wound_prepared_in_range(
        &mut self,
        txn: TxnId,
        priority: Priority,
        start: &Bytes,
        end: Option<&Bytes>,
    ) {
        let in_the_way = self.locks.exclusive_holders_in(start, end.map(|e| &e[..]));
        self.wound_prepared_younger(txn, priority, in_the_way);
    }

    /// Queues for a remote wound every transaction of `holders` that is
    /// prepared here and younger than `txn`.
    fn wound_prepared_younger(&mut self, txn: TxnId, priority: Priority, holders: Vec<TxnId>) {
        for holder in holders {
            if holder == txn || !self.locks.is_prepared(holder) {
                continue;
            }
            let younger = self
                .txns
                .get(&holder)
                .is_some_and(|h| priority.is_older(txn, h.priority, holder));
            if younger && !self.remote_wounds.contains(&holder) {
                self.remote_wounds.push(holder);
            }
        }
    }

    /// Acts on the outcome of `txn`'s lock request: aborts the younger
    /// transactions it wounded (those in the way, or the younger last
    /// waiter of a full queue it displaced) and fails the request on an
    /// error. Returns whether the lock is held, or `None` if the request
    /// failed.
    fn settle(
        &mut self,
        txn: TxnId,
        local: Timestamp,
        got: Result<Acquire, LockError>,
        resume: &mut VecDeque<TxnId>,
        out: &mut Vec<Output>,
    ) -> Option<bool> {
        let (granted, wounded) = match got {
            Ok(Acquire::Granted) => (true, Vec::new()),
            Ok(Acquire::GrantedWounding { wounded }) => (true, wounded),
            Ok(Acquire::Waiting { wounded }) => (false, wounded),
            Err(e) => {
                self.fail_request(txn, local, e, resume, out);
                return None;
            }
        };
        for victim in wounded {
            self.abort(victim, AbortReason::Wounded, resume, out);
        }
        Some(granted)
    }

    /// A lock request failed: the request fails; the transaction lives on
    /// (holding what it holds) unless the failure ends it.
    fn fail_request(
        &mut self,
        txn: TxnId,
        local: Timestamp,
        e: LockError,
        resume: &mut VecDeque<TxnId>,
        out: &mut Vec<Output>,
    ) {
        if let Some(ActiveTxn {
            op:
                Op::Locking {
                    kind: CommitKind::Participant { .. },
                    ..
                },
            ..
        }) = self.txns.get(&txn)
        {
            // A prepare that cannot take its locks cannot wait for a retry:
            // the participant votes no.
            self.abort(txn, AbortReason::Overloaded, resume, out);
            return;
        }
        let err = match e {
            LockError::QueueFull { key, .. } => TxnError::LockQueueFull { key },
            LockError::TooManyWaiters { .. } => TxnError::Overloaded,
            LockError::Wounded { .. } => {
                self.abort(txn, AbortReason::Wounded, resume, out);
                return;
            }
            // The rest are broken preconditions of this table's own use.
            other => panic!("lock table refused txn {txn}: {other}"),
        };
        if let Some(t) = self.txns.get_mut(&txn) {
            t.last_active = local;
            if let Op::Reading { targets, .. }
            | Op::Scanning { targets, .. }
            | Op::Locking { targets, .. } = std::mem::replace(&mut t.op, Op::Idle)
            {
                reply_all(&targets, &Err(err), out);
            }
        }
    }

    /// Aborts idle transactions whose last request is older than
    /// `timeout` (docs/design.md §5.1).
    pub(crate) fn expire_inactive(
        &mut self,
        local: Timestamp,
        timeout: u64,
        resume: &mut VecDeque<TxnId>,
        out: &mut Vec<Output>,
    ) {
        let expired: Vec<TxnId> = self
            .txns
            .iter()
            .filter(|(_, t)| matches!(t.op, Op::Idle) && local.nanos_since(t.last_active) > timeout)
            .map(|(id, _)| *id)
            .collect();
        for txn in expired {
            self.abort(txn, AbortReason::Inactive, resume, out);
        }
    }

    /// The term ends: every in-flight request of an unprepared transaction
    /// fails with `LeaderChanged`.
    pub(crate) fn step_down(self, out: &mut Vec<Output>) {
        for (txn, t) in self.txns {
            if let Op::Reading { targets, .. }
            | Op::Scanning { targets, .. }
            | Op::Locking { targets, .. } = t.op
            {
                reply_all(
                    &targets,
                    &Err(TxnError::Aborted {
                        txn,
                        reason: AbortReason::LeaderChanged,
                    }),
                    out,
                );
            }
        }
    }

    /// Checks the table against the lock table; panics on the first broken
    /// rule.
    pub(crate) fn assert_invariants(&self) {
        self.locks.assert_invariants();
        for txn in self.locks.txns() {
            assert!(
                self.txns.contains_key(&txn),
                "txn {txn} is in the lock table but has ended (no lock may outlive its txn)"
            );
        }
        let waiters: std::collections::BTreeSet<TxnId> =
            self.locks.waits_for().iter().map(|e| e.waiter).collect();
        for (txn, t) in &self.txns {
            let waiting = waiters.contains(txn);
            assert!(
                !(waiting && t.mode == CcMode::Optimistic),
                "optimistic txn {txn} waits for a lock"
            );
            match &t.op {
                Op::Committing => assert!(
                    self.locks.is_prepared(*txn) || self.locks.locks_held_by(*txn).is_empty(),
                    "committing txn {txn} is not marked prepared in the lock table"
                ),
                Op::Idle => assert!(!waiting, "idle txn {txn} waits for a lock"),
                Op::Reading { .. } | Op::Scanning { .. } | Op::Locking { .. } => {}
            }
        }
    }
}

/// Counts a scan of `rows` rows, one operation plus one per row, against
/// [`MAX_TXN_OPERATIONS`]; a scan over the limit counts nothing.
fn count_rows(t: &mut ActiveTxn, rows: usize) -> Result<(), TxnError> {
    let count = t.ops + 1 + rows;
    if count > MAX_TXN_OPERATIONS {
        return Err(InvalidRequest::TooManyOperations {
            count,
            max: MAX_TXN_OPERATIONS,
        }
        .into());
    }
    t.ops = count;
    Ok(())
}

/// Sends `reply` to every request in `targets`.
pub(crate) fn reply_all(
    targets: &[RequestId],
    reply: &Result<Response, TxnError>,
    out: &mut Vec<Output>,
) {
    for id in targets {
        out.push(Output::Reply {
            id: *id,
            reply: reply.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Group ids are 32 bits wide and never reused: the origin keeps a
    /// whole group id, its node and its round apart, and orders the terms
    /// of one group as their ballots.
    #[test]
    fn txn_origin_holds_a_32_bit_group_and_orders_terms_as_ballots() {
        let group = crate::MAX_GROUP_ID;
        let node = crate::MAX_NODE_ID;
        let o = origin(group, Ballot::new(crate::MAX_ORIGIN_ROUND, node));
        assert_eq!(home_group(TxnId::new(o, 1)), group);
        assert_eq!(o, u64::MAX, "the fields fill the 64 bits exactly");
        let g = 0x1_0002;
        let later = [
            Ballot::new(1, 1),
            Ballot::new(1, 2),
            Ballot::new(2, 1),
            Ballot::new(3, node),
            Ballot::new(4, 1),
        ];
        for w in later.windows(2) {
            assert!(origin(g, w[0]) < origin(g, w[1]), "{:?} < {:?}", w[0], w[1]);
            assert_eq!(home_group(TxnId::new(origin(g, w[1]), 1)), g);
        }
        // Distinct groups at one ballot never share an origin.
        assert_ne!(origin(1, later[0]), origin(0x1_0001, later[0]));
    }

    #[test]
    #[should_panic(expected = "exceeds")]
    fn txn_origin_refuses_a_round_beyond_its_20_bits() {
        let _ = origin(1, Ballot::new(crate::MAX_ORIGIN_ROUND + 1, 1));
    }
}
