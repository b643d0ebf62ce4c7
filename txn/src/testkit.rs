//! A fault-free driver for a few [`GroupReplica`]s in one process, for
//! protocol-rule tests and benchmarks: one shared clock reading, an
//! in-order message queue, storage that syncs at once, replies collected by
//! request id. Isolation of nodes is the only fault. The deterministic
//! simulator (`meridian-sim`) is the driver with faults.
//!
//! A cluster has one or more participant groups (ids `1..=groups`) of the
//! same `n` nodes: node `k` hosts replica `k` of every group, so isolating
//! a node cuts off its replica in every group. Methods without a group
//! address group 1.
//!
//! Splits (docs/design.md §9) create groups as they apply: a replica's
//! [`Output::SplitChild`] creates the child's replica on the same node
//! (the child's id must be the next unused one), and a re-emitted seed for
//! a child the node already has is ignored, as a node driver does.

use std::collections::{HashMap, VecDeque};

use meridian_paxos::{Entry, MemStorage, Message, NodeId, Recovered, Storage};
use meridian_truetime::{Timestamp, TtInterval};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::api::{GroupId, GroupMessage, Reply, Request, RequestId};
use crate::config::Config;
use crate::replica::{GroupReplica, Input, Output};

/// Most message deliveries in one [`LocalCluster::run`] before it is taken
/// for a livelock.
const MAX_DELIVERIES_PER_RUN: usize = 1_000_000;

/// Step by which [`LocalCluster::run_for`] advances the clock.
const RUN_STEP_NANOS: u64 = 1_000_000;

/// A message in flight.
#[derive(Debug)]
enum Envelope {
    /// A Paxos message inside `group`.
    Paxos(GroupId, Message),
    /// A two-phase-commit message from node `from`, to every replica of
    /// `group`.
    Group {
        from: NodeId,
        group: GroupId,
        msg: GroupMessage,
    },
}

/// Groups of replicas driven in memory. Replica `k` of each group has node
/// id `k`.
pub struct LocalCluster {
    /// Replicas of group `g`, node `k` at `(g - 1) * n + (k - 1)`; `None`
    /// for a group created by a split that has not applied at that node.
    replicas: Vec<Option<GroupReplica>>,
    /// Nodes per group.
    n: usize,
    storages: Vec<MemStorage>,
    now: TtInterval,
    queue: VecDeque<Envelope>,
    isolated: Vec<NodeId>,
    /// Replicas cut off alone: `(group, node)`.
    isolated_replicas: Vec<(GroupId, NodeId)>,
    replies: HashMap<RequestId, Vec<Reply>>,
    next_request: RequestId,
    applied: Vec<Vec<Entry>>,
    /// Per replica: its clock's offset from the shared reading, within ε.
    offsets: Vec<i64>,
    /// Keep applied entries for [`LocalCluster::applied`] (off for benches).
    keep_applied: bool,
    /// Two-phase-commit messages for which this is true are dropped.
    group_filter: Option<GroupFilter>,
}

/// Says which two-phase-commit messages a [`LocalCluster`] drops.
pub type GroupFilter = Box<dyn Fn(GroupId, &GroupMessage) -> bool>;

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
        LocalCluster::with_groups(1, n, start, eps, configure)
    }

    /// `groups` groups (ids `1..=groups`) of `n` replicas each, as
    /// [`new`](Self::new).
    pub fn with_groups(
        groups: u64,
        n: u64,
        start: Timestamp,
        eps: u64,
        configure: impl Fn(&mut Config),
    ) -> Self {
        assert!(groups >= 1 && n >= 1, "a cluster needs a group and a node");
        let voters: Vec<NodeId> = (1..=n).collect();
        let now = TtInterval::around(start, eps);
        let total = (groups * n) as usize;
        let mut c = LocalCluster {
            replicas: Vec::new(),
            n: n as usize,
            storages: (0..total).map(|_| MemStorage::new()).collect(),
            now,
            queue: VecDeque::new(),
            isolated: Vec::new(),
            isolated_replicas: Vec::new(),
            replies: HashMap::new(),
            next_request: 1,
            applied: vec![Vec::new(); total],
            offsets: vec![0; n as usize],
            keep_applied: true,
            group_filter: None,
        };
        for group in 1..=groups {
            for id in 1..=n {
                let mut cfg = Config::new(group, meridian_paxos::Config::new(id, voters.clone()));
                configure(&mut cfg);
                let r = GroupReplica::new(
                    cfg,
                    Recovered::default(),
                    Box::new(SmallRng::seed_from_u64(group << 16 | id)),
                );
                c.replicas.push(Some(r));
            }
        }
        for i in 0..total {
            let mut out = Vec::new();
            let now = c.now_at(c.node_of(i));
            c.replicas[i]
                .as_mut()
                .expect("created above")
                .start(now, &mut out);
            c.process(i, out);
        }
        c
    }

    fn index(&self, group: GroupId, id: NodeId) -> usize {
        let (g, k) = ((group - 1) as usize, (id - 1) as usize);
        assert!(
            k < self.n && g * self.n < self.replicas.len(),
            "no replica {group}/{id}"
        );
        g * self.n + k
    }

    fn node_of(&self, i: usize) -> NodeId {
        (i % self.n) as NodeId + 1
    }

    fn group_of(&self, i: usize) -> GroupId {
        (i / self.n) as GroupId + 1
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

    /// Replica `id` of group 1.
    pub fn replica(&self, id: NodeId) -> &GroupReplica {
        self.replica_in(1, id)
    }

    /// Replica `id` of `group`.
    pub fn replica_in(&self, group: GroupId, id: NodeId) -> &GroupReplica {
        self.replicas[self.index(group, id)]
            .as_ref()
            .unwrap_or_else(|| panic!("no replica {group}/{id} (yet)"))
    }

    /// Whether node `id` hosts a replica of `group` (a group created by a
    /// split appears at a node when the split applies there).
    pub fn has_replica(&self, group: GroupId, id: NodeId) -> bool {
        (group as usize) * self.n <= self.replicas.len()
            && group >= 1
            && self.replicas[self.index(group, id)].is_some()
    }

    /// The number of groups (ids `1..=groups`), those created by splits
    /// included.
    pub fn groups(&self) -> GroupId {
        (self.replicas.len() / self.n) as GroupId
    }

    /// Restarts replica `id` of `group` from what its storage holds (a
    /// crash and recovery with nothing lost: storage here syncs at once),
    /// then runs until quiet. With `lose_children`, the node's replicas of
    /// groups split from this one lose everything first (a crash before a
    /// child's first state was durable): replaying the log creates them
    /// again.
    pub fn restart_in(&mut self, group: GroupId, id: NodeId, lose_children: bool) {
        let i = self.index(group, id);
        if lose_children {
            for g in group + 1..=self.groups() {
                let j = self.index(g, id);
                let is_child = self.replicas[j]
                    .as_ref()
                    .is_some_and(|r| r.parent_group() == Some(group));
                if is_child {
                    self.replicas[j] = None;
                    self.storages[j] = MemStorage::new();
                }
            }
        }
        let cfg = self.replica_in(group, id).config().clone();
        let recovered = self.storages[i].load().expect("memory storage cannot fail");
        let mut r = GroupReplica::new(
            cfg,
            recovered,
            Box::new(SmallRng::seed_from_u64(group << 16 | id | 1 << 40)),
        );
        let mut out = Vec::new();
        r.start(self.now_at(id), &mut out);
        self.replicas[i] = Some(r);
        self.process(i, out);
        self.run();
    }

    /// Creates the child replica `seed` describes on the node of replica
    /// `i`, unless that node has it already.
    fn create_child(&mut self, i: usize, seed: crate::ChildSeed) {
        let node = self.node_of(i);
        let groups = self.groups();
        assert!(
            seed.group <= groups + 1 && seed.group >= 1,
            "the test driver hands out child ids in order"
        );
        if seed.group == groups + 1 {
            for _ in 0..self.n {
                self.replicas.push(None);
                self.storages.push(MemStorage::new());
                self.applied.push(Vec::new());
            }
        }
        let j = self.index(seed.group, node);
        if self.replicas[j].is_some() {
            return; // a re-emitted seed: the node has the child
        }
        let mut cfg = self.replicas[i]
            .as_ref()
            .expect("the parent emitted the seed")
            .config()
            .clone();
        cfg.group = seed.group;
        cfg.descriptor = seed.descriptor.clone();
        let rng = Box::new(SmallRng::seed_from_u64(seed.group << 16 | node));
        let mut r = GroupReplica::from_split(cfg, seed, rng);
        let mut out = Vec::new();
        r.start(self.now_at(node), &mut out);
        self.replicas[j] = Some(r);
        self.process(j, out);
    }

    /// Entries replica `id` of group 1 has applied so far.
    pub fn applied(&self, id: NodeId) -> &[Entry] {
        self.applied_in(1, id)
    }

    /// Entries replica `id` of `group` has applied so far.
    pub fn applied_in(&self, group: GroupId, id: NodeId) -> &[Entry] {
        &self.applied[self.index(group, id)]
    }

    /// The replica of group 1 that leads and serves, if any.
    pub fn serving_leader(&self) -> Option<NodeId> {
        self.serving_leader_in(1)
    }

    /// The replica of `group` that leads and serves (term started, lease
    /// held), if any.
    pub fn serving_leader_in(&self, group: GroupId) -> Option<NodeId> {
        (1..=self.n as NodeId)
            .filter(|id| self.has_replica(group, *id))
            .map(|id| self.replica_in(group, id))
            .find(|r| r.paxos().term_started() && r.paxos().has_lease(self.now_at(r.paxos().id())))
            .map(|r| r.paxos().id())
    }

    /// Drops every message to or from `id` until [`heal`](Self::heal).
    pub fn isolate(&mut self, id: NodeId) {
        self.isolated.push(id);
    }

    /// Drops every message to or from replica `id` of `group` (only that
    /// replica: the node's replicas of other groups are unaffected) until
    /// [`heal`](Self::heal).
    pub fn isolate_in(&mut self, group: GroupId, id: NodeId) {
        self.isolated_replicas.push((group, id));
    }

    /// Ends all isolation.
    pub fn heal(&mut self) {
        self.isolated.clear();
        self.isolated_replicas.clear();
    }

    fn cut_off(&self, group: GroupId, id: NodeId) -> bool {
        self.isolated.contains(&id) || self.isolated_replicas.contains(&(group, id))
    }

    /// Runs until every group has a serving leader (elected as their
    /// timers fire). Panics if one does not within 10 s.
    pub fn await_leaders(&mut self) {
        let groups = self.groups();
        for _ in 0..10_000 {
            if (1..=groups).all(|g| self.serving_leader_in(g).is_some()) {
                return;
            }
            self.run_for(RUN_STEP_NANOS);
        }
        panic!("not every group elected a serving leader");
    }

    /// Drops every two-phase-commit message to a group for which `filter`
    /// (given the group addressed and the message) is true, until
    /// [`deliver_all_group_messages`](Self::deliver_all_group_messages).
    pub fn drop_group_messages(
        &mut self,
        filter: impl Fn(GroupId, &GroupMessage) -> bool + 'static,
    ) {
        self.group_filter = Some(Box::new(filter));
    }

    /// Ends [`drop_group_messages`](Self::drop_group_messages).
    pub fn deliver_all_group_messages(&mut self) {
        self.group_filter = None;
    }

    /// Delivers `msg` to every replica of `group` as if node `from` sent
    /// it, then runs until quiet.
    pub fn send_to_group(&mut self, from: NodeId, group: GroupId, msg: GroupMessage) {
        self.queue.push_back(Envelope::Group { from, group, msg });
        self.run();
    }

    /// Delivers queued messages until none are left.
    pub fn run(&mut self) {
        let mut n = 0;
        while let Some(env) = self.queue.pop_front() {
            n += 1;
            assert!(n < MAX_DELIVERIES_PER_RUN, "cluster did not quiesce");
            match env {
                Envelope::Paxos(group, m) => {
                    if (m.to as usize) <= self.n && m.to >= 1 {
                        let i = self.index(group, m.to);
                        self.step(i, Input::Message(m));
                    }
                }
                Envelope::Group { from, group, msg } => {
                    if (group as usize) * self.n > self.replicas.len() || group == 0 {
                        continue;
                    }
                    for id in 1..=self.n as NodeId {
                        if !self.isolated.contains(&from) && !self.cut_off(group, id) {
                            let i = self.index(group, id);
                            self.step(i, Input::FromGroup(msg.clone()));
                        }
                    }
                }
            }
        }
    }

    /// Ticks replica `id` of group 1 once, then delivers until quiet.
    pub fn tick(&mut self, id: NodeId) {
        self.tick_in(1, id);
    }

    /// Ticks replica `id` of `group` once, then delivers until quiet.
    pub fn tick_in(&mut self, group: GroupId, id: NodeId) {
        let i = self.index(group, id);
        self.step(i, Input::Tick);
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
        self.elect_in(1, id);
    }

    /// [`elect`](Self::elect) for replica `id` of `group`.
    pub fn elect_in(&mut self, group: GroupId, id: NodeId) {
        let deadline = self.replica_in(group, id).paxos().next_deadline();
        let mid = self.now.midpoint();
        if deadline > mid {
            self.advance(deadline.nanos_since(mid));
        }
        self.tick_in(group, id);
        for _ in 0..10_000 {
            if self.serving_leader_in(group) == Some(id) {
                return;
            }
            self.run_for(RUN_STEP_NANOS);
        }
        panic!("replica {id} of group {group} did not become a serving leader");
    }

    /// Has replica `id` of `group`, its leader, propose a change of the
    /// group's voters, then runs until quiet.
    pub fn propose_membership_in(
        &mut self,
        group: GroupId,
        id: NodeId,
        change: meridian_paxos::MembershipChange,
    ) -> Result<(), meridian_paxos::ProposeError> {
        let i = self.index(group, id);
        let mut out = Vec::new();
        let now = self.now_at(id);
        let result = self.replicas[i]
            .as_mut()
            .expect("the replica exists")
            .propose_membership(now, change, &mut out);
        self.process(i, out);
        self.run();
        result
    }

    /// Tells replica `id` of group 1 whether its clock is within its bound
    /// ([`Input::ClockHealth`], as the node's clock monitor would), then
    /// delivers until quiet.
    pub fn set_clock_health(&mut self, id: NodeId, ok: bool) {
        let i = self.index(1, id);
        let reason = if ok {
            String::new()
        } else {
            "offset from a quorum of peers beyond ε".to_string()
        };
        self.step(i, Input::ClockHealth { ok, reason });
        self.run();
    }

    /// Asks replica `id` of group 1 to hand its leadership over
    /// ([`Input::HandOver`], as a draining node would), then delivers
    /// until quiet.
    pub fn hand_over(&mut self, id: NodeId, to: Option<NodeId>) {
        let i = self.index(1, id);
        self.step(i, Input::HandOver { to });
        self.run();
    }

    /// Submits `request` to replica `node` of group 1; its reply is
    /// collected.
    pub fn submit(&mut self, node: NodeId, request: Request) -> RequestId {
        self.submit_in(1, node, request)
    }

    /// Submits `request` to replica `node` of `group`.
    pub fn submit_in(&mut self, group: GroupId, node: NodeId, request: Request) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        let i = self.index(group, node);
        self.step(i, Input::Request { id, request });
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

    /// Submits `request` to `node` of group 1 and runs (up to 5 s of
    /// clock) until it is answered. Panics if it is not.
    pub fn call(&mut self, node: NodeId, request: Request) -> Reply {
        self.call_in(1, node, request)
    }

    /// [`call`](Self::call) at replica `node` of `group`.
    pub fn call_in(&mut self, group: GroupId, node: NodeId, request: Request) -> Reply {
        let id = self.submit_in(group, node, request);
        for _ in 0..5_000 {
            if let Some(r) = self.reply(id) {
                return r.clone();
            }
            self.run_for(RUN_STEP_NANOS);
        }
        panic!("request {id} to replica {group}/{node} was never answered");
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
        let now = self.now_at(self.node_of(i));
        let Some(r) = self.replicas[i].as_mut() else {
            return; // a child not created at this node (yet)
        };
        r.step(now, input, &mut out);
        self.process(i, out);
    }

    fn process(&mut self, i: usize, out: Vec<Output>) {
        let mut persisted = None;
        for o in out {
            match o {
                Output::Send(m) => {
                    let g = self.group_of(i);
                    if !self.cut_off(g, m.from) && !self.cut_off(g, m.to) {
                        self.queue.push_back(Envelope::Paxos(g, m));
                    }
                }
                Output::ToGroup { group, msg } => {
                    let from = (self.group_of(i), self.node_of(i));
                    if !self.isolated_replicas.contains(&from)
                        && !self.group_filter.as_ref().is_some_and(|f| f(group, &msg))
                    {
                        self.queue.push_back(Envelope::Group {
                            from: self.node_of(i),
                            group,
                            msg,
                        });
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
                Output::SplitChild(seed) => self.create_child(i, *seed),
            }
        }
        if self.keep_applied {
            if let Some(r) = &self.replicas[i] {
                r.assert_invariants();
            }
        }
        if let Some(seq) = persisted {
            self.step(i, Input::Persisted { seq });
        }
    }
}
