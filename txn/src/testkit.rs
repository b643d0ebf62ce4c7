//! A fault-free driver for a few [`GroupReplica`]s in one process, for
//! protocol-rule tests and benchmarks: one shared clock reading, an
//! in-order message queue, storage that syncs at once, replies collected by
//! request id. Isolation of replicas is the only fault. The deterministic
//! simulator (`meridian-sim`) is the driver with faults.

use std::collections::{HashMap, VecDeque};

use meridian_paxos::{Entry, MemStorage, Message, NodeId, Recovered, Storage};
use meridian_truetime::{Timestamp, TtInterval};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::api::{Reply, Request, RequestId};
use crate::config::Config;
use crate::replica::{GroupReplica, Input, Output};

/// Most message deliveries in one [`LocalCluster::run`] before it is taken
/// for a livelock.
const MAX_DELIVERIES_PER_RUN: usize = 1_000_000;

/// Step by which [`LocalCluster::run_for`] advances the clock.
const RUN_STEP_NANOS: u64 = 1_000_000;

/// A group of replicas driven in memory. Replica `i` has node id `i + 1`.
pub struct LocalCluster {
    replicas: Vec<GroupReplica>,
    storages: Vec<MemStorage>,
    now: TtInterval,
    queue: VecDeque<Message>,
    isolated: Vec<NodeId>,
    replies: HashMap<RequestId, Vec<Reply>>,
    next_request: RequestId,
    applied: Vec<Vec<Entry>>,
    /// Per replica: its clock's offset from the shared reading, within ε.
    offsets: Vec<i64>,
    /// Keep applied entries for [`LocalCluster::applied`] (off for benches).
    keep_applied: bool,
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("replicas", &self.replicas)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl LocalCluster {
    /// `n` replicas of group 1 at time `start` with clock uncertainty
    /// `eps` nanoseconds; `configure` adjusts each replica's config (the
    /// Paxos timing defaults are the production ones).
    pub fn new(n: u64, start: Timestamp, eps: u64, configure: impl Fn(&mut Config)) -> Self {
        let voters: Vec<NodeId> = (1..=n).collect();
        let now = TtInterval::around(start, eps);
        let mut c = LocalCluster {
            replicas: Vec::new(),
            storages: (0..n).map(|_| MemStorage::new()).collect(),
            now,
            queue: VecDeque::new(),
            isolated: Vec::new(),
            replies: HashMap::new(),
            next_request: 1,
            applied: vec![Vec::new(); n as usize],
            offsets: vec![0; n as usize],
            keep_applied: true,
        };
        for id in 1..=n {
            let mut cfg = Config::new(1, meridian_paxos::Config::new(id, voters.clone()));
            configure(&mut cfg);
            let r = GroupReplica::new(
                cfg,
                Recovered::default(),
                Box::new(SmallRng::seed_from_u64(id)),
            );
            c.replicas.push(r);
        }
        for i in 0..n as usize {
            let mut out = Vec::new();
            c.replicas[i].start(now, &mut out);
            c.process(i, out);
        }
        c
    }

    /// The shared clock reading.
    pub fn now(&self) -> TtInterval {
        self.now
    }

    /// Moves the clock forward by `nanos`, keeping ε. Nothing is ticked.
    pub fn advance(&mut self, nanos: u64) {
        self.now = TtInterval {
            earliest: self.now.earliest.saturating_add(nanos),
            latest: self.now.latest.saturating_add(nanos),
        };
    }

    /// Skews replica `id`'s clock by `nanos` from the shared reading. The
    /// skew must stay within ε, as TrueTime promises: the interval still
    /// contains true time.
    pub fn set_offset(&mut self, id: NodeId, nanos: i64) {
        assert!(
            nanos.unsigned_abs() <= self.now.epsilon_nanos(),
            "an offset beyond ε breaks TrueTime's guarantee"
        );
        self.offsets[(id - 1) as usize] = nanos;
    }

    /// Replica `id`'s clock reading.
    pub fn now_at(&self, id: NodeId) -> TtInterval {
        let off = self.offsets[(id - 1) as usize];
        let shift = |t: Timestamp| {
            if off >= 0 {
                t.saturating_add(off.unsigned_abs())
            } else {
                t.saturating_sub(off.unsigned_abs())
            }
        };
        TtInterval {
            earliest: shift(self.now.earliest),
            latest: shift(self.now.latest),
        }
    }

    /// Replica `id`.
    pub fn replica(&self, id: NodeId) -> &GroupReplica {
        &self.replicas[(id - 1) as usize]
    }

    /// Entries replica `id` has applied so far.
    pub fn applied(&self, id: NodeId) -> &[Entry] {
        &self.applied[(id - 1) as usize]
    }

    /// The replica that leads and serves (term started, lease held), if any.
    pub fn serving_leader(&self) -> Option<NodeId> {
        self.replicas
            .iter()
            .find(|r| r.paxos().term_started() && r.paxos().has_lease(self.now_at(r.paxos().id())))
            .map(|r| r.paxos().id())
    }

    /// Drops every message to or from `id` until [`heal`](Self::heal).
    pub fn isolate(&mut self, id: NodeId) {
        self.isolated.push(id);
    }

    /// Ends all isolation.
    pub fn heal(&mut self) {
        self.isolated.clear();
    }

    /// Delivers queued messages until none are left.
    pub fn run(&mut self) {
        let mut n = 0;
        while let Some(m) = self.queue.pop_front() {
            n += 1;
            assert!(n < MAX_DELIVERIES_PER_RUN, "cluster did not quiesce");
            let i = (m.to - 1) as usize;
            if i < self.replicas.len() {
                self.step(i, Input::Message(m));
            }
        }
    }

    /// Ticks replica `id` once, then delivers until quiet.
    pub fn tick(&mut self, id: NodeId) {
        self.step((id - 1) as usize, Input::Tick);
        self.run();
    }

    /// Ticks every replica once, then delivers until quiet.
    pub fn tick_all(&mut self) {
        for i in 0..self.replicas.len() {
            self.step(i, Input::Tick);
        }
        self.run();
    }

    /// Advances the clock by `nanos` in 1 ms steps, ticking everyone at each.
    pub fn run_for(&mut self, nanos: u64) {
        let mut t = 0;
        while t < nanos {
            self.advance(RUN_STEP_NANOS);
            self.tick_all();
            t += RUN_STEP_NANOS;
        }
    }

    /// Makes `id` campaign at once (advancing to its election deadline) and
    /// runs until it serves: its term started and its lease valid (waiting
    /// out any earlier lease). Panics if it does not within 10 s.
    pub fn elect(&mut self, id: NodeId) {
        let deadline = self.replica(id).paxos().next_deadline();
        let mid = self.now.midpoint();
        if deadline > mid {
            self.advance(deadline.nanos_since(mid));
        }
        self.tick(id);
        for _ in 0..10_000 {
            if self.serving_leader() == Some(id) {
                return;
            }
            self.run_for(RUN_STEP_NANOS);
        }
        panic!("replica {id} did not become a serving leader");
    }

    /// Submits `request` to replica `node`; its reply is collected.
    pub fn submit(&mut self, node: NodeId, request: Request) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        self.step((node - 1) as usize, Input::Request { id, request });
        self.run();
        id
    }

    /// For benchmarks: stops keeping applied entries, so long runs stay in
    /// bounded memory ([`applied`](Self::applied) stays empty), and stops
    /// checking every replica's invariants after each step.
    pub fn count_only(&mut self) {
        self.keep_applied = false;
        self.applied.iter_mut().for_each(Vec::clear);
    }

    /// Removes and returns the first reply to request `id`, if one arrived.
    pub fn take_reply(&mut self, id: RequestId) -> Option<Reply> {
        let mut replies = self.replies.remove(&id)?;
        (!replies.is_empty()).then(|| replies.swap_remove(0))
    }

    /// The first reply to request `id`, if one arrived.
    pub fn reply(&self, id: RequestId) -> Option<&Reply> {
        self.replies.get(&id).and_then(|r| r.first())
    }

    /// Every reply to request `id` (a request gets exactly one).
    pub fn replies(&self, id: RequestId) -> &[Reply] {
        self.replies.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Submits `request` to `node` and runs (up to 5 s of clock) until it
    /// is answered. Panics if it is not.
    pub fn call(&mut self, node: NodeId, request: Request) -> Reply {
        let id = self.submit(node, request);
        for _ in 0..5_000 {
            if let Some(r) = self.reply(id) {
                return r.clone();
            }
            self.run_for(RUN_STEP_NANOS);
        }
        panic!("request {id} to replica {node} was never answered");
    }

    /// Submits `request` to `node` and returns the answer it gives without
    /// any time passing. Panics if it needs time to answer.
    pub fn call_now(&mut self, node: NodeId, request: Request) -> Reply {
        let id = self.submit(node, request);
        self.reply(id)
            .cloned()
            .unwrap_or_else(|| panic!("request {id} to replica {node} was not answered at once"))
    }

    fn step(&mut self, i: usize, input: Input) {
        let mut out = Vec::new();
        let now = self.now_at(i as NodeId + 1);
        self.replicas[i].step(now, input, &mut out);
        self.process(i, out);
    }

    fn process(&mut self, i: usize, out: Vec<Output>) {
        let mut persisted = None;
        for o in out {
            match o {
                Output::Send(m) => {
                    if !self.isolated.contains(&m.from) && !self.isolated.contains(&m.to) {
                        self.queue.push_back(m);
                    }
                }
                Output::Persist(req) => {
                    let s = &mut self.storages[i];
                    s.write(&req).expect("memory storage cannot fail");
                    s.sync().expect("memory storage cannot fail");
                    persisted = Some(req.seq);
                }
                Output::Reply { id, reply } => self.replies.entry(id).or_default().push(reply),
                Output::Applied(entries) => {
                    if self.keep_applied {
                        self.applied[i].extend(entries);
                    }
                }
                Output::SnapshotRestored { .. } | Output::RoleChanged { .. } => {}
            }
        }
        if self.keep_applied {
            self.replicas[i].assert_invariants();
        }
        if let Some(seq) = persisted {
            self.step(i, Input::Persisted { seq });
        }
    }
}
