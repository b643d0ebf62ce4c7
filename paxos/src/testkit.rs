//! An in-memory, fault-free driver for a group of replicas, for tests,
//! examples and benchmarks. (The deterministic simulator with faults lives
//! in `meridian-sim`.)
//!
//! All replicas share one clock reading, set by the caller; storage
//! completions are reported immediately unless [`LocalGroup::hold_persists`]
//! is used; messages go through a FIFO queue that [`LocalGroup::run`] drains,
//! dropping those to or from isolated replicas.

use std::collections::VecDeque;

use bytes::Bytes;
use meridian_truetime::{Timestamp, TtInterval};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::{Config, Entry, Input, Message, NodeId, Output, ProposeError, Recovered, Replica};

/// Bound on messages [`LocalGroup::run`] delivers before it gives up: a
/// fault-free group quiesces long before this.
pub const MAX_DELIVERIES_PER_RUN: usize = 10_000_000;

/// A group of replicas wired together in memory.
pub struct LocalGroup {
    replicas: Vec<Replica>,
    now: TtInterval,
    queue: VecDeque<Message>,
    applied: Vec<Vec<Entry>>,
    isolated: Vec<NodeId>,
    hold_persists: bool,
    held: Vec<(usize, u64)>,
    /// Keep what grows with each command (applied entries, proposal
    /// events) for tests, or only count applied entries (benchmarks).
    keep_applied: bool,
    applied_count: Vec<u64>,
    compact_every: Option<u64>,
    record: bool,
    sent: Vec<Message>,
    restored: Vec<u64>,
    proposal_events: Vec<(NodeId, Output)>,
}

impl LocalGroup {
    /// A group of `n` replicas (ids `1..=n`) at time `t0` with uncertainty
    /// `eps_nanos`; `configure` adjusts each replica's config.
    pub fn new(
        n: u64,
        t0: Timestamp,
        eps_nanos: u64,
        configure: impl Fn(&mut Config),
    ) -> LocalGroup {
        LocalGroup::with_learners(n, 0, t0, eps_nanos, configure)
    }

    /// Like [`LocalGroup::new`] plus `learners` replicas (ids after the
    /// voters) that start with no membership and join only when added.
    pub fn with_learners(
        voters_n: u64,
        learners: u64,
        t0: Timestamp,
        eps_nanos: u64,
        configure: impl Fn(&mut Config),
    ) -> LocalGroup {
        let n = voters_n + learners;
        let voters: Vec<NodeId> = (1..=voters_n).collect();
        let now = TtInterval::around(t0, eps_nanos);
        let mut replicas = Vec::new();
        let mut out = Vec::new();
        for id in 1..=n {
            let initial = if id <= voters_n {
                voters.clone()
            } else {
                Vec::new()
            };
            let mut cfg = Config::new(id, initial);
            configure(&mut cfg);
            let mut r = Replica::new(
                cfg,
                Recovered::default(),
                Box::new(SmallRng::seed_from_u64(id)),
            );
            r.start(now, &mut out);
            replicas.push(r);
        }
        LocalGroup {
            applied: vec![Vec::new(); replicas.len()],
            applied_count: vec![0; replicas.len()],
            replicas,
            now,
            queue: VecDeque::new(),
            isolated: Vec::new(),
            hold_persists: false,
            held: Vec::new(),
            keep_applied: true,
            compact_every: None,
            record: false,
            sent: Vec::new(),
            restored: vec![0; n as usize],
            proposal_events: Vec::new(),
        }
    }

    /// For benchmarks: stop keeping anything that grows with each command
    /// (only count applied entries), so long runs stay in bounded memory and
    /// measure the replicas, not the driver's bookkeeping.
    /// [`applied`](Self::applied) and
    /// [`take_proposal_events`](Self::take_proposal_events) stay empty.
    pub fn count_only(&mut self) {
        self.keep_applied = false;
        self.applied.iter_mut().for_each(Vec::clear);
        self.proposal_events.clear();
    }

    /// Compact each replica's log (with an empty snapshot) whenever `n`
    /// applied entries have accumulated, so long benchmarks run in bounded
    /// memory.
    pub fn compact_every(&mut self, n: u64) {
        self.compact_every = Some(n.max(1));
    }

    /// Record every message sent, for [`Self::take_sent`].
    pub fn record_messages(&mut self, on: bool) {
        self.record = on;
    }

    /// Messages sent since the last call (when recording).
    pub fn take_sent(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.sent)
    }

    /// The [`Output::Proposed`] and [`Output::Dropped`] outputs since the
    /// last call, with the replica that emitted each (none are kept after
    /// [`Self::count_only`]).
    pub fn take_proposal_events(&mut self) -> Vec<(NodeId, Output)> {
        std::mem::take(&mut self.proposal_events)
    }

    /// How many snapshots replica `id` was told to restore.
    pub fn snapshots_restored(&self, id: NodeId) -> u64 {
        self.restored[(id - 1) as usize]
    }

    /// Delivers `m` directly to its addressee (bypassing isolation).
    pub fn deliver(&mut self, m: Message) {
        let i = (m.to - 1) as usize;
        self.step(i, Input::Message(m));
    }

    /// Compacts replica `id`'s log up to what it applied.
    pub fn compact(&mut self, id: NodeId) {
        self.call(id, |r, _, out| r.compact(r.applied(), Bytes::new(), out));
    }

    /// Proposes a membership change at replica `id`.
    pub fn propose_membership(
        &mut self,
        id: NodeId,
        change: crate::MembershipChange,
    ) -> Result<crate::ProposalId, ProposeError> {
        self.call(id, |r, now, out| r.propose_membership(now, change, out))
    }

    /// Ticks every replica once and delivers until quiet.
    pub fn tick_all(&mut self) {
        for i in 0..self.replicas.len() {
            self.step(i, Input::Tick);
        }
        self.run();
    }

    /// The shared clock reading.
    pub fn now(&self) -> TtInterval {
        self.now
    }

    /// Moves the clock forward by `nanos`, keeping ε.
    pub fn advance(&mut self, nanos: u64) {
        self.now = TtInterval {
            earliest: self.now.earliest.saturating_add(nanos),
            latest: self.now.latest.saturating_add(nanos),
        };
    }

    /// Replica `id`.
    pub fn replica(&self, id: NodeId) -> &Replica {
        &self.replicas[(id - 1) as usize]
    }

    /// Entries replica `id` applied so far (empty after [`Self::count_only`]).
    pub fn applied(&self, id: NodeId) -> &[Entry] {
        &self.applied[(id - 1) as usize]
    }

    /// How many entries replica `id` applied.
    pub fn applied_count(&self, id: NodeId) -> u64 {
        self.applied_count[(id - 1) as usize]
    }

    /// Drops every message to or from `id` until [`Self::heal`].
    pub fn isolate(&mut self, id: NodeId) {
        self.isolated.push(id);
    }

    /// Ends all isolation.
    pub fn heal(&mut self) {
        self.isolated.clear();
    }

    /// Withholds storage completions until [`Self::release_persists`].
    pub fn hold_persists(&mut self, hold: bool) {
        self.hold_persists = hold;
    }

    /// Reports every withheld storage completion.
    pub fn release_persists(&mut self) {
        for (i, seq) in std::mem::take(&mut self.held) {
            self.step(i, Input::Persisted { seq });
        }
    }

    /// Tells replica `id` whether its clock is within its bound
    /// ([`Input::ClockHealth`]), then delivers until quiet.
    pub fn set_clock_health(&mut self, id: NodeId, ok: bool) {
        self.step((id - 1) as usize, Input::ClockHealth { ok });
        self.run();
    }

    /// Asks replica `id` to hand its leadership over ([`Input::HandOver`]),
    /// then delivers until quiet.
    pub fn hand_over(&mut self, id: NodeId, to: Option<NodeId>) {
        self.step((id - 1) as usize, Input::HandOver { to });
        self.run();
    }

    /// Ticks replica `id` once.
    pub fn tick(&mut self, id: NodeId) {
        self.step((id - 1) as usize, Input::Tick);
    }

    /// Advances time to replica `id`'s election deadline and ticks it alone,
    /// then delivers messages until quiet: `id` campaigns and (if it can
    /// reach a quorum) wins.
    pub fn elect(&mut self, id: NodeId) {
        let deadline = self.replica(id).next_deadline();
        let mid = self.now.midpoint();
        if deadline > mid {
            self.advance(deadline.nanos_since(mid));
        }
        self.tick(id);
        self.run();
    }

    /// Proposes `cmd` at replica `id`.
    pub fn propose(&mut self, id: NodeId, cmd: Bytes) -> Result<crate::ProposalId, ProposeError> {
        self.call(id, |r, now, out| r.propose(now, cmd, out))
    }

    /// Proposes `cmd` at replica `id` with [`Replica::propose_above`].
    pub fn propose_above(
        &mut self,
        id: NodeId,
        cmd: Bytes,
        min_ts: Timestamp,
    ) -> Result<crate::ProposalId, ProposeError> {
        self.call(id, |r, now, out| r.propose_above(now, cmd, min_ts, out))
    }

    /// Raises replica `id`'s timestamp floor ([`Replica::raise_ts_floor`]).
    pub fn raise_ts_floor(&mut self, id: NodeId, ts: Timestamp) -> Option<crate::Slot> {
        self.call(id, |r, now, _| r.raise_ts_floor(now, ts))
    }

    /// Proposes a batch at replica `id`.
    pub fn propose_batch(
        &mut self,
        id: NodeId,
        cmds: impl IntoIterator<Item = Bytes>,
    ) -> Result<std::ops::Range<crate::ProposalId>, ProposeError> {
        self.call(id, |r, now, out| r.propose_batch(now, cmds, out))
    }

    /// Calls `f` on replica `id` at the current time and handles what it
    /// outputs.
    fn call<T>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut Replica, TtInterval, &mut Vec<Output>) -> T,
    ) -> T {
        let i = (id - 1) as usize;
        let mut out = Vec::new();
        let result = f(&mut self.replicas[i], self.now, &mut out);
        self.process(i, out);
        result
    }

    /// Delivers queued messages until none are left.
    pub fn run(&mut self) {
        let mut n = 0;
        while let Some(m) = self.queue.pop_front() {
            n += 1;
            assert!(n < MAX_DELIVERIES_PER_RUN, "group did not quiesce");
            let i = (m.to - 1) as usize;
            if i < self.replicas.len() {
                self.step(i, Input::Message(m));
            }
        }
    }

    /// Messages waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn step(&mut self, i: usize, input: Input) {
        let mut out = Vec::new();
        self.replicas[i].step(self.now, input, &mut out);
        self.process(i, out);
    }

    fn process(&mut self, i: usize, out: Vec<Output>) {
        let mut persisted = None;
        for o in out {
            match o {
                Output::Send(m) => {
                    if self.record {
                        self.sent.push(m.clone());
                    }
                    if !self.isolated.contains(&m.from) && !self.isolated.contains(&m.to) {
                        self.queue.push_back(m);
                    }
                }
                Output::Persist(req) => persisted = Some(req.seq),
                Output::Apply(entries) => {
                    self.applied_count[i] += entries.len() as u64;
                    if self.keep_applied {
                        self.applied[i].extend(entries);
                    }
                }
                Output::RestoreSnapshot(_) => self.restored[i] += 1,
                Output::Proposed { .. } | Output::Dropped(_) => {
                    if self.keep_applied {
                        self.proposal_events.push((i as NodeId + 1, o));
                    }
                }
                Output::RoleChanged { .. } => {}
            }
        }
        if let Some(n) = self.compact_every {
            let r = &mut self.replicas[i];
            if r.applied() >= r.first_slot() + n {
                let mut more = Vec::new();
                let upto = r.applied();
                r.compact(upto, Bytes::new(), &mut more);
                self.process(i, more);
            }
        }
        if let Some(seq) = persisted {
            if self.hold_persists {
                self.held.push((i, seq));
            } else {
                self.step(i, Input::Persisted { seq });
            }
        }
    }
}
