//! One simulated Paxos group under faults.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use bytes::Bytes;
use meridian_paxos::{
    Config, Input, MemStorage, MembershipChange, Message, NodeId, Output, Replica, Role, Storage,
};
use meridian_truetime::{ClockModel, SimulatedTrueTime, Timestamp, TrueTime, VirtualClock};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::check::{ChosenLog, StateMachine, Violation, rules};

/// Virtual time at which every run starts (2026-01-01T00:00:00Z), so
/// timestamps look like real ones.
const EPOCH: u64 = 1_767_225_600_000_000_000;
const MS: u64 = 1_000_000;

/// Protocol timing used in simulation: short, so a run sees many elections.
const HEARTBEAT: u64 = 20 * MS;
const ELECTION_MIN: u64 = 150 * MS;
const ELECTION_MAX: u64 = 300 * MS;
/// Longer than an election, so a deposed leader's lease outlives the
/// election of its successor (the window `lease-overlap` needs).
const LEASE: u64 = 400 * MS;
/// Virtual time with faults injected.
const DEFAULT_FAULT_PHASE: u64 = 6_000 * MS;
/// After faults stop, a command must be applied everywhere within this:
/// waiting out a lease, a few election rounds and catch-up.
const LIVENESS_BOUND: u64 = LEASE + 6 * ELECTION_MAX + 1_000 * MS;
/// Clients stop this long before the end so followers learn the last
/// commits (the commit index travels with the next heartbeat).
const CLIENT_QUIET: u64 = 500 * MS;
/// Interval between fault decisions.
const FAULT_TICK: u64 = 40 * MS;
/// Compact the log when this many slots are applied past the snapshot.
const COMPACT_EVERY: u64 = 40;
/// A hard bound on events per run, so a livelock cannot hang the swarm.
const MAX_EVENTS: u64 = 5_000_000;

/// Fault mix of one run, drawn from its seed (swarm testing: each seed
/// stresses a different combination).
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Probability a message is dropped.
    pub drop: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Lower bound of message delay, ns.
    pub delay_min: u64,
    /// Upper bound of message delay, ns (wide ranges reorder).
    pub delay_max: u64,
    /// Upper bound of disk sync latency, ns.
    pub disk_max: u64,
    /// Per fault tick: probability of a crash.
    pub crash: f64,
    /// Per fault tick: probability of a partition.
    pub partition: f64,
    /// Per fault tick: probability that every node loses power at once
    /// (each keeping a random prefix of its unsynced writes).
    pub power_loss: f64,
    /// Membership changes happen in this run.
    pub membership: bool,
    /// Log compaction (and so snapshot installs) happens in this run.
    pub compaction: bool,
}

impl Faults {
    fn draw(rng: &mut SmallRng) -> Faults {
        let delay_min = rng.random_range(MS / 10..2 * MS);
        Faults {
            drop: [0.0, 0.01, 0.05, 0.15][rng.random_range(0..4)],
            duplicate: [0.0, 0.02, 0.1][rng.random_range(0..3)],
            delay_min,
            delay_max: delay_min + [MS, 5 * MS, 30 * MS][rng.random_range(0..3)],
            disk_max: [MS / 5, 2 * MS, 10 * MS, 30 * MS][rng.random_range(0..4)],
            crash: [0.0, 0.02, 0.06][rng.random_range(0..3)],
            partition: [0.0, 0.04, 0.1][rng.random_range(0..3)],
            power_loss: [0.0, 0.01, 0.03][rng.random_range(0..3)],
            membership: rng.random_bool(0.3),
            compaction: rng.random_bool(0.7),
        }
    }
}

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The seed; everything else follows from it.
    pub seed: u64,
    /// Virtual time with faults (default 6 s).
    pub fault_phase_nanos: Option<u64>,
    /// Print every event (for replaying a failure).
    pub trace: bool,
    /// A deliberate bug for the replicas to carry.
    pub planted_bug: Option<meridian_paxos::PlantedBug>,
}

/// Counters from a passing run.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    /// Commands committed (applied somewhere).
    pub commits: u64,
    /// Times a replica became leader.
    pub elections: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time simulated, ns.
    pub virtual_nanos: u64,
}

#[derive(Debug)]
enum Event {
    Deliver(Message),
    Tick { node: usize, generation: u64 },
    Sync { node: usize, generation: u64 },
    Restart { node: usize },
    Client,
    Fault,
    Heal,
}

struct Node {
    id: NodeId,
    tt: SimulatedTrueTime,
    replica: Option<Replica>,
    storage: MemStorage,
    sm: StateMachine,
    generation: u64,
    written_seq: u64,
    sync_scheduled: bool,
    tick_at: Option<Timestamp>,
    last_ts_seen: Timestamp,
}

struct Sim {
    clock: VirtualClock,
    rng: SmallRng,
    faults: Faults,
    nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<(Timestamp, u64, usize)>>,
    events: Vec<Option<Event>>,
    free: Vec<usize>,
    seq: u64,
    blocked: BTreeSet<(NodeId, NodeId)>,
    chosen: ChosenLog,
    stats: RunStats,
    next_cmd: u64,
    leader_hint: Option<NodeId>,
    max_assigned_ts: Timestamp,
    faults_on: bool,
    clients_stop: Timestamp,
    /// First command id proposed after the heal.
    first_post_heal_cmd: Option<u64>,
    trace: bool,
    planted_bug: Option<meridian_paxos::PlantedBug>,
}

/// Runs one seed; `Ok` with counters if every invariant held.
pub fn run_seed(opts: &RunOptions) -> Result<RunStats, Violation> {
    let mut rng = SmallRng::seed_from_u64(opts.seed);
    let faults = Faults::draw(&mut rng);
    let clock = VirtualClock::new(Timestamp(EPOCH));
    let model = ClockModel {
        base_epsilon_nanos: MS,
        max_drift_ppm: 200,
        sync_period_nanos: 10_000 * MS,
    };
    let n_nodes = if faults.membership { 5 } else { 3 };
    let fault_phase = opts.fault_phase_nanos.unwrap_or(DEFAULT_FAULT_PHASE);
    let mut sim = Sim {
        nodes: (0..n_nodes)
            .map(|i| Node {
                id: i as NodeId + 1,
                tt: SimulatedTrueTime::new(
                    clock.clone(),
                    model,
                    opts.seed.rotate_left(17) ^ (i as u64 + 1),
                ),
                replica: None,
                storage: MemStorage::new(),
                sm: StateMachine::default(),
                generation: 0,
                written_seq: 0,
                sync_scheduled: false,
                tick_at: None,
                last_ts_seen: Timestamp::ZERO,
            })
            .collect(),
        clock,
        rng,
        faults,
        queue: BinaryHeap::new(),
        events: Vec::new(),
        free: Vec::new(),
        seq: 0,
        blocked: BTreeSet::new(),
        chosen: ChosenLog::default(),
        stats: RunStats::default(),
        next_cmd: 1,
        leader_hint: None,
        max_assigned_ts: Timestamp::ZERO,
        faults_on: true,
        clients_stop: Timestamp(EPOCH + fault_phase + LIVENESS_BOUND - CLIENT_QUIET),
        first_post_heal_cmd: None,
        trace: opts.trace,
        planted_bug: opts.planted_bug,
    };
    if sim.trace {
        eprintln!("seed {} faults {:?}", opts.seed, sim.faults);
    }
    for i in 0..n_nodes {
        sim.boot(i)?;
    }
    sim.schedule(MS, Event::Client);
    sim.schedule(FAULT_TICK, Event::Fault);
    sim.schedule(fault_phase, Event::Heal);
    let end = Timestamp(EPOCH + fault_phase + LIVENESS_BOUND);
    while let Some(Reverse((t, _, idx))) = sim.queue.pop() {
        if t > end {
            break;
        }
        let ev = sim.events[idx].take().expect("event present");
        sim.free.push(idx);
        sim.clock.set(t);
        sim.stats.events += 1;
        if sim.stats.events > MAX_EVENTS {
            return Err(sim.violation(rules::LIVENESS, "event budget exhausted (livelock?)".into()));
        }
        sim.handle(ev)?;
        sim.check_step()?;
    }
    sim.stats.virtual_nanos = sim.now().0 - EPOCH;
    sim.check_end()?;
    Ok(sim.stats)
}

impl Sim {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn at(&self) -> u64 {
        self.now().0 - EPOCH
    }

    fn violation(&self, rule: &'static str, detail: String) -> Violation {
        Violation {
            rule,
            at_nanos: self.at(),
            detail,
        }
    }

    fn schedule(&mut self, delay: u64, ev: Event) {
        let t = self.now().saturating_add(delay);
        self.seq += 1;
        let idx = match self.free.pop() {
            Some(i) => {
                self.events[i] = Some(ev);
                i
            }
            None => {
                self.events.push(Some(ev));
                self.events.len() - 1
            }
        };
        self.queue.push(Reverse((t, self.seq, idx)));
    }

    fn config(&self, i: usize) -> Config {
        let id = self.nodes[i].id;
        let voters = if id <= 3 { vec![1, 2, 3] } else { vec![] };
        let mut c = Config::new(id, voters);
        c.heartbeat_nanos = HEARTBEAT;
        c.election_min_nanos = ELECTION_MIN;
        c.election_max_nanos = ELECTION_MAX;
        c.lease_nanos = LEASE;
        c.max_batch_entries = 16;
        c.max_inflight = 8;
        c.max_pending = 1_000;
        c.planted_bug = self.planted_bug;
        c
    }

    fn boot(&mut self, i: usize) -> Result<(), Violation> {
        let state = self.nodes[i]
            .storage
            .load()
            .expect("memory storage cannot fail");
        let rng = SmallRng::seed_from_u64(self.rng.random());
        let mut r = Replica::new(self.config(i), state, Box::new(rng));
        let now = self.nodes[i].tt.now();
        let mut out = Vec::new();
        r.start(now, &mut out);
        let node = &mut self.nodes[i];
        node.replica = Some(r);
        node.sm = StateMachine::default();
        node.written_seq = 0;
        node.sync_scheduled = false;
        node.tick_at = None;
        node.last_ts_seen = node
            .replica
            .as_ref()
            .map_or(Timestamp::ZERO, Replica::last_assigned_ts);
        self.process(i, out)
    }

    fn handle(&mut self, ev: Event) -> Result<(), Violation> {
        match ev {
            Event::Deliver(m) => {
                let Some(i) = self.index(m.to) else {
                    return Ok(());
                };
                if self.trace {
                    eprintln!("{:>12} deliver {:?}", self.at(), m);
                }
                self.step(i, Input::Message(m))
            }
            Event::Tick { node, generation } => {
                if self.nodes[node].generation != generation {
                    return Ok(());
                }
                self.nodes[node].tick_at = None;
                self.step(node, Input::Tick)
            }
            Event::Sync { node, generation } => {
                let n = &mut self.nodes[node];
                if n.generation != generation {
                    return Ok(());
                }
                n.sync_scheduled = false;
                n.storage.sync().expect("memory storage cannot fail");
                let seq = n.written_seq;
                self.step(node, Input::Persisted { seq })
            }
            Event::Restart { node } => {
                if self.nodes[node].replica.is_some() {
                    return Ok(()); // already restarted when faults healed
                }
                if self.trace {
                    eprintln!("{:>12} restart node {}", self.at(), self.nodes[node].id);
                }
                self.boot(node)
            }
            Event::Client => {
                if self.now() >= self.clients_stop {
                    return Ok(());
                }
                self.client()?;
                let gap = self.rng.random_range(MS..8 * MS);
                self.schedule(gap, Event::Client);
                Ok(())
            }
            Event::Fault => {
                if self.faults_on {
                    self.inject_fault()?;
                    self.schedule(FAULT_TICK, Event::Fault);
                }
                Ok(())
            }
            Event::Heal => {
                if self.trace {
                    eprintln!("{:>12} heal", self.at());
                }
                self.faults_on = false;
                self.blocked.clear();
                for i in 0..self.nodes.len() {
                    if self.nodes[i].replica.is_none() {
                        self.nodes[i].generation += 1;
                        self.boot(i)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn index(&self, id: NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    fn step(&mut self, i: usize, input: Input) -> Result<(), Violation> {
        let now = self.nodes[i].tt.now();
        let Some(r) = self.nodes[i].replica.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        r.step(now, input, &mut out);
        self.process(i, out)
    }

    fn process(&mut self, i: usize, out: Vec<Output>) -> Result<(), Violation> {
        let at = self.at();
        let id = self.nodes[i].id;
        for o in out {
            match o {
                Output::Send(m) => self.send(m),
                Output::Persist(req) => {
                    let n = &mut self.nodes[i];
                    n.storage.write(&req).expect("memory storage cannot fail");
                    n.written_seq = req.seq;
                    if !n.sync_scheduled {
                        n.sync_scheduled = true;
                        let g = n.generation;
                        let d = self.rng.random_range(MS / 20..=self.faults.disk_max);
                        self.schedule(
                            d,
                            Event::Sync {
                                node: i,
                                generation: g,
                            },
                        );
                    }
                }
                Output::Apply(entries) => {
                    for e in &entries {
                        self.chosen.observe(id, e, at)?;
                        self.nodes[i].sm.apply(id, e, at)?;
                    }
                }
                Output::RestoreSnapshot(s) => {
                    let sm = StateMachine::decode(&s.data);
                    if sm.last_slot != s.last_slot {
                        return Err(self.violation(
                            rules::APPLIED_PREFIX,
                            format!(
                                "node {id}: snapshot at {} holds state at {}",
                                s.last_slot, sm.last_slot
                            ),
                        ));
                    }
                    sm.check_restored(id, &self.chosen, at)?;
                    self.nodes[i].sm = sm;
                }
                Output::Proposed { .. } | Output::Dropped(_) => {}
                Output::RoleChanged { role, leader } => {
                    if self.trace {
                        eprintln!("{at:>12} node {id} is {role:?} (leader {leader:?})");
                    }
                    if role == Role::Leader {
                        self.stats.elections += 1;
                        self.leader_hint = Some(id);
                    }
                }
            }
        }
        self.after_step(i)
    }

    fn after_step(&mut self, i: usize) -> Result<(), Violation> {
        let now_local = self.nodes[i].tt.now();
        let Some(r) = self.nodes[i].replica.as_ref() else {
            return Ok(());
        };
        // Timestamps rise across leaders, in true-time order of assignment.
        let ts = r.last_assigned_ts();
        if r.role() == Role::Leader && ts > self.nodes[i].last_ts_seen {
            if ts <= self.max_assigned_ts {
                return Err(self.violation(
                    rules::TS_MONOTONIC,
                    format!(
                        "node {} assigned ts {} not above {} assigned earlier",
                        self.nodes[i].id, ts.0, self.max_assigned_ts.0
                    ),
                ));
            }
            self.max_assigned_ts = ts;
        }
        self.nodes[i].last_ts_seen = ts;
        let r = self.nodes[i].replica.as_ref().expect("checked above");
        // Compaction.
        if self.faults.compaction && r.applied() >= r.first_slot() + COMPACT_EVERY {
            let data = Bytes::from(self.nodes[i].sm.encode());
            let upto = self.nodes[i].sm.last_slot;
            let r = self.nodes[i].replica.as_mut().expect("checked above");
            let mut out = Vec::new();
            r.compact(upto, data, &mut out);
            return self.process(i, out);
        }
        // Timer.
        let r = self.nodes[i].replica.as_ref().expect("checked above");
        let wait = r
            .next_deadline()
            .nanos_since(now_local.midpoint())
            .max(MS / 10);
        let when = self.now().saturating_add(wait);
        let node = &mut self.nodes[i];
        if node.tick_at.is_none_or(|t| when < t) {
            node.tick_at = Some(when);
            let g = node.generation;
            self.schedule(
                wait,
                Event::Tick {
                    node: i,
                    generation: g,
                },
            );
        }
        Ok(())
    }

    fn send(&mut self, m: Message) {
        if self.trace {
            eprintln!("{:>12} send {:?}", self.at(), m);
        }
        if self.blocked.contains(&(m.from, m.to)) {
            return;
        }
        if self.faults_on && self.rng.random_bool(self.faults.drop) {
            return;
        }
        let copies = if self.faults_on && self.rng.random_bool(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (lo, hi) = if self.faults_on {
                (self.faults.delay_min, self.faults.delay_max)
            } else {
                (MS / 2, 2 * MS)
            };
            let d = self.rng.random_range(lo..=hi);
            self.schedule(d, Event::Deliver(m.clone()));
        }
    }

    fn client(&mut self) -> Result<(), Violation> {
        let target = match self.leader_hint.and_then(|l| self.index(l)) {
            Some(i) if self.rng.random_bool(0.9) => i,
            _ => self.rng.random_range(0..self.nodes.len()),
        };
        let now = self.nodes[target].tt.now();
        let Some(r) = self.nodes[target].replica.as_mut() else {
            return Ok(());
        };
        let id = self.next_cmd;
        let mut out = Vec::new();
        match r.propose(now, Bytes::copy_from_slice(&id.to_le_bytes()), &mut out) {
            Ok(_) => {
                self.next_cmd += 1;
                if !self.faults_on && self.first_post_heal_cmd.is_none() {
                    self.first_post_heal_cmd = Some(id);
                }
            }
            Err(meridian_paxos::ProposeError::NotLeader { leader }) => {
                self.leader_hint = leader;
            }
            Err(_) => {}
        }
        self.process(target, out)
    }

    fn inject_fault(&mut self) -> Result<(), Violation> {
        let n = self.nodes.len();
        // Partitions heal on their own after a while.
        if !self.blocked.is_empty() && self.rng.random_bool(0.15) {
            self.blocked.clear();
        }
        if self.rng.random_bool(self.faults.partition) {
            let kind = self.rng.random_range(0..3);
            let victim = match (kind, self.leader_hint.and_then(|l| self.index(l))) {
                (0, Some(l)) => l, // isolate the leader
                _ => self.rng.random_range(0..n),
            };
            let v = self.nodes[victim].id;
            for other in self.nodes.iter().map(|x| x.id).collect::<Vec<_>>() {
                if other == v {
                    continue;
                }
                match kind {
                    2 => {
                        // one-way: the victim cannot be heard
                        self.blocked.insert((v, other));
                    }
                    _ => {
                        self.blocked.insert((v, other));
                        self.blocked.insert((other, v));
                    }
                }
            }
            if self.trace {
                eprintln!("{:>12} partition kind {kind} around node {v}", self.at());
            }
        }
        if self.rng.random_bool(self.faults.power_loss) {
            if self.trace {
                eprintln!("{:>12} power loss", self.at());
            }
            for i in 0..n {
                self.crash(i);
            }
        } else if self.rng.random_bool(self.faults.crash) {
            let i = self.rng.random_range(0..n);
            self.crash(i);
        }
        if self.faults.membership && self.rng.random_bool(0.05) {
            self.change_membership()?;
        }
        Ok(())
    }

    /// Crashes node `i` (if up): it keeps a random prefix of its unsynced
    /// writes and restarts after a random downtime.
    fn crash(&mut self, i: usize) {
        if self.nodes[i].replica.is_none() {
            return;
        }
        let node = &mut self.nodes[i];
        let keep = self.rng.random_range(0..=node.storage.unsynced_len());
        node.storage.crash(keep);
        node.replica = None;
        node.generation += 1;
        self.stats.crashes += 1;
        if self.trace {
            let id = self.nodes[i].id;
            eprintln!(
                "{:>12} crash node {id} (kept {keep} unsynced writes)",
                self.at()
            );
        }
        let down = self.rng.random_range(10 * MS..600 * MS);
        self.schedule(down, Event::Restart { node: i });
    }

    fn change_membership(&mut self) -> Result<(), Violation> {
        let Some(l) = self.leader_hint.and_then(|l| self.index(l)) else {
            return Ok(());
        };
        let now = self.nodes[l].tt.now();
        let all: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        let pick = self.rng.random_range(0..all.len());
        let Some(r) = self.nodes[l].replica.as_mut() else {
            return Ok(());
        };
        let voters = r.membership().voters.clone();
        let target = all[pick];
        let change = if voters.contains(&target) {
            if voters.len() <= 3 {
                return Ok(());
            }
            MembershipChange::RemoveVoter(target)
        } else {
            MembershipChange::AddVoter(target)
        };
        let mut out = Vec::new();
        if r.propose_membership(now, change, &mut out).is_ok() && self.trace {
            eprintln!("{:>12} membership {change:?}", self.at());
        }
        self.process(l, out)
    }

    /// Invariants checked after every event.
    fn check_step(&mut self) -> Result<(), Violation> {
        // Lease disjointness, at this instant of true time.
        let holders: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|n| n.replica.as_ref().is_some_and(|r| r.has_lease(n.tt.now())))
            .map(|n| n.id)
            .collect();
        if holders.len() > 1 {
            return Err(self.violation(
                rules::LEASE_DISJOINT,
                format!("nodes {holders:?} all hold a lease"),
            ));
        }
        Ok(())
    }

    /// Checks at the end of a run.
    fn check_end(&mut self) -> Result<(), Violation> {
        self.stats.commits = self.chosen.acked.len() as u64;
        let Some(marker) = self.first_post_heal_cmd else {
            return Err(self.violation(
                rules::LIVENESS,
                format!(
                    "no proposal accepted within {} ms of healing",
                    LIVENESS_BOUND / MS
                ),
            ));
        };
        let voters: Vec<NodeId> = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .max_by_key(|r| r.applied())
            .map(|r| r.membership().voters.clone())
            .unwrap_or_default();
        // The latest command proposed after healing that committed: it must
        // exist, and every voter must have applied it.
        let Some((_, &marker_slot)) = self
            .chosen
            .acked
            .iter()
            .filter(|(id, _)| **id >= marker)
            .max_by_key(|(id, _)| **id)
        else {
            return Err(self.violation(
                rules::LIVENESS,
                format!(
                    "no command proposed after healing committed within {} ms",
                    LIVENESS_BOUND / MS
                ),
            ));
        };
        for n in &self.nodes {
            if !voters.contains(&n.id) {
                continue;
            }
            if n.sm.last_slot < marker_slot {
                return Err(self.violation(
                    rules::LIVENESS,
                    format!(
                        "node {} applied only up to slot {} after healing; marker at {marker_slot}",
                        n.id, n.sm.last_slot
                    ),
                ));
            }
            let have: BTreeSet<u64> = n.sm.commands.iter().map(|(_, id)| *id).collect();
            for (id, slot) in &self.chosen.acked {
                if *slot <= n.sm.last_slot && !have.contains(id) {
                    return Err(self.violation(
                        rules::ACKED_NOT_LOST,
                        format!("node {} lacks command {id} committed at slot {slot}", n.id),
                    ));
                }
            }
        }
        Ok(())
    }
}
