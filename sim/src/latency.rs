//! A latency model of two-phase commit (docs/latency.md), for comparison
//! with Spanner's Table 4 (Corbett et al., OSDI 2012, "Two-phase commit
//! scalability").
//!
//! No faults, and every cost fixed: each message (replica ↔ replica,
//! replica ↔ client, group ↔ group) arrives [`LatencyModel::one_way_nanos`]
//! after it is sent, each `Persist` completes [`LatencyModel::fsync_nanos`]
//! after it is issued, and every node's TrueTime interval is true time
//! ± [`LatencyModel::epsilon_nanos`] (or, with [`ClockKind::Sawtooth`], the
//! simulated sawtooth of `meridian-truetime` with a mean ε of 3.5 ms). The
//! real [`GroupReplica`]s run with the production timing defaults, three
//! per group, with leaders elected before the first transaction.
//!
//! One client runs read-write transactions one after another. Each writes
//! one fresh key in each of N groups: `Begin` at the home group's leader
//! (the coordinator, one of the N), then `Commit` there with the other
//! N − 1 groups as [`Participant`]s (none for N = 1: one-phase commit). A
//! transaction's latency is from sending `Begin` to receiving `Committed`.
//! Fresh keys keep a transaction from waiting for the locks its
//! predecessor still holds at a participant until the decision applies
//! there.

use bytes::Bytes;
use meridian_paxos::{MemStorage, NodeId, Recovered, Storage};
use meridian_truetime::{
    ClockModel, SimulatedTrueTime, Timestamp, TrueTime, TtInterval, VirtualClock,
};
use meridian_txn::{
    CcMode, GroupId, GroupReplica, Input, Output, Participant, Reply, Request, RequestId, Response,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use meridian_participant::{TxnId, Write};

use crate::world::{EPOCH, EventQueue, MS};

/// Participant counts of Spanner's Table 4, and the default sweep.
pub const TABLE_4_PARTICIPANTS: [usize; 8] = [1, 2, 5, 10, 25, 50, 100, 200];

/// Spanner's Table 4 (OSDI 2012): per participant count, mean latency and
/// its standard deviation, 99th-percentile latency and its standard
/// deviation, in ms, over 10 runs.
pub const SPANNER_TABLE_4: [(usize, f64, f64, f64, f64); 8] = [
    (1, 17.0, 1.4, 75.0, 34.9),
    (2, 24.5, 2.5, 87.6, 35.9),
    (5, 31.5, 6.2, 104.5, 52.2),
    (10, 30.0, 3.7, 95.6, 25.4),
    (25, 35.5, 5.6, 100.4, 42.7),
    (50, 42.7, 4.1, 93.7, 22.9),
    (100, 71.4, 7.6, 131.2, 17.6),
    (200, 150.5, 11.0, 320.3, 35.1),
];

/// Most participant groups a modelled transaction may span: it writes one
/// key in each, and a transaction has at most
/// [`meridian_txn::api::MAX_TXN_OPERATIONS`] operations.
pub const MAX_PARTICIPANTS: usize = meridian_txn::api::MAX_TXN_OPERATIONS;

/// Replicas per group.
const REPLICAS: u64 = 3;
/// Leaders must serve within this much virtual time from the start.
const ELECTION_BOUND: u64 = 30_000 * MS;
/// After every group has a serving leader, the model idles this long
/// before the first transaction (the first closes and heartbeats settle).
const SETTLE: u64 = 200 * MS;
/// A transaction must be answered within this much virtual time.
const ANSWER_BOUND: u64 = 5_000 * MS;
/// Shortest timer the model arms: a deadline already due is ticked this
/// soon, not at once, so a replica cannot spin.
const MIN_TICK: u64 = 10_000;

/// How every node's clock errs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClockKind {
    /// Every node reads true time ± ε exactly (no offset, no drift).
    #[default]
    Fixed,
    /// `SimulatedTrueTime` with base ε 1 ms, 200 ppm drift and a 25 s sync
    /// period (ε saws from 1 to 6 ms, 3.5 ms on average), each node with its
    /// own sync phase and offsets inside its ε.
    Sawtooth,
}

/// The fixed costs of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyModel {
    /// One-way delay of every message, ns.
    pub one_way_nanos: u64,
    /// Time from a `Persist` to its completion, ns.
    pub fsync_nanos: u64,
    /// Clock uncertainty ε of [`ClockKind::Fixed`], ns.
    pub epsilon_nanos: u64,
    /// How clocks err.
    pub clock: ClockKind,
    /// Seeds the replicas' election timers and the sawtooth clocks.
    pub seed: u64,
}

impl Default for LatencyModel {
    /// 1 ms one way, 0.2 ms fsync, ε = 3.5 ms (Spanner's average), fixed
    /// clocks.
    fn default() -> Self {
        LatencyModel {
            one_way_nanos: MS,
            fsync_nanos: MS / 5,
            epsilon_nanos: 3 * MS + MS / 2,
            clock: ClockKind::Fixed,
            seed: 0,
        }
    }
}

/// The sawtooth of [`ClockKind::Sawtooth`]: mean ε 3.5 ms.
pub const SAWTOOTH: ClockModel = ClockModel {
    base_epsilon_nanos: MS,
    max_drift_ppm: 200,
    sync_period_nanos: 25_000 * MS,
};

impl LatencyModel {
    /// The latency of a transaction over `participants` groups if every
    /// step costs exactly what the model says and nothing else does:
    ///
    /// `Begin` is a round trip, 2d. `Commit` reaches the coordinator (d),
    /// which fixes the start rule's bound `TT.now().latest` then; commit
    /// wait ends `2ε` later (at `TT.after(s)`, `s` being that bound when no
    /// prepare timestamp is above it). With participants, the prepares
    /// reach them (d), each logs its prepare record in one Paxos round
    /// (2d + f: accepts out, a follower's fsync, its ack back; the
    /// leader's own fsync overlaps) and votes (d); then the coordinator
    /// logs the commit record in one more round (2d + f). The record
    /// applies, and the client is answered, once both the rounds and the
    /// commit wait are over: they run side by side. The answer takes d.
    pub fn lower_bound_nanos(&self, participants: usize) -> u64 {
        let c = self.costs(participants);
        2 * c.d + c.d + (c.prepare + c.round).max(2 * c.eps) + c.d
    }

    /// [`lower_bound_nanos`](Self::lower_bound_nanos) if the commit
    /// timestamp were read from the clock only after the prepare round
    /// (commit wait following the prepares instead of running beside
    /// them): what Meridian did before, and what the measured two-phase
    /// latency must stay below.
    pub fn sequential_bound_nanos(&self, participants: usize) -> u64 {
        let c = self.costs(participants);
        2 * c.d + c.d + c.prepare + c.round.max(2 * c.eps) + c.d
    }

    /// The model's costs along the critical path with `participants`
    /// groups.
    fn costs(&self, participants: usize) -> PathCosts {
        let d = self.one_way_nanos;
        let eps = match self.clock {
            ClockKind::Fixed => self.epsilon_nanos,
            ClockKind::Sawtooth => (SAWTOOTH.base_epsilon_nanos + SAWTOOTH.max_epsilon_nanos()) / 2,
        };
        let round = 2 * d + self.fsync_nanos;
        let prepare = if participants > 1 { d + round + d } else { 0 };
        PathCosts {
            d,
            eps,
            round,
            prepare,
        }
    }
}

/// The costs of [`LatencyModel`]'s bounds, in ns.
struct PathCosts {
    /// One-way delay.
    d: u64,
    /// ε (the sawtooth's mean).
    eps: u64,
    /// One Paxos round: accepts out, a follower's fsync, its ack back.
    round: u64,
    /// The prepare round of two-phase commit, prepares out to votes back
    /// (0 for one phase).
    prepare: u64,
}

/// What one transaction of a run took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnTiming {
    /// The transaction.
    pub txn: TxnId,
    /// True time the client sent `Begin`.
    pub begin_sent: Timestamp,
    /// True time the client sent `Commit`.
    pub commit_sent: Timestamp,
    /// True time the client received `Committed`.
    pub answered: Timestamp,
    /// The commit timestamp.
    pub commit_ts: Timestamp,
}

impl TxnTiming {
    /// From `Begin` sent to `Committed` received, ns.
    pub fn latency_nanos(&self) -> u64 {
        self.answered.nanos_since(self.begin_sent)
    }

    /// From `Commit` sent to `Committed` received, ns.
    pub fn commit_nanos(&self) -> u64 {
        self.answered.nanos_since(self.commit_sent)
    }
}

/// The transactions of one run over `participants` groups.
#[derive(Clone, Debug)]
pub struct LatencyRun {
    /// Groups each transaction wrote to.
    pub participants: usize,
    /// Each transaction, in order.
    pub txns: Vec<TxnTiming>,
    /// Events the run handled.
    pub events: u64,
}

impl LatencyRun {
    fn stat(&self, f: impl Fn(&TxnTiming) -> u64, p: Option<f64>) -> f64 {
        let mut xs: Vec<u64> = self.txns.iter().map(f).collect();
        if xs.is_empty() {
            return 0.0;
        }
        let nanos = match p {
            None => xs.iter().sum::<u64>() as f64 / xs.len() as f64,
            Some(p) => {
                xs.sort_unstable();
                // Nearest rank.
                let rank = ((p * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
                xs[rank - 1] as f64
            }
        };
        nanos / MS as f64
    }

    /// Mean transaction latency, ms.
    pub fn mean_ms(&self) -> f64 {
        self.stat(TxnTiming::latency_nanos, None)
    }

    /// 99th-percentile transaction latency (nearest rank), ms.
    pub fn p99_ms(&self) -> f64 {
        self.stat(TxnTiming::latency_nanos, Some(0.99))
    }

    /// Mean latency of the `Commit` request alone, ms.
    pub fn commit_mean_ms(&self) -> f64 {
        self.stat(TxnTiming::commit_nanos, None)
    }
}

/// A node's clock.
enum Clock {
    Fixed(u64),
    Sawtooth(SimulatedTrueTime),
}

impl Clock {
    fn read(&self, now: Timestamp) -> TtInterval {
        match self {
            Clock::Fixed(eps) => TtInterval::around(now, *eps),
            Clock::Sawtooth(tt) => tt.now(),
        }
    }
}

struct Node {
    replica: GroupReplica,
    storage: MemStorage,
    clock: Clock,
    /// When the one live timer fires.
    tick_at: Option<Timestamp>,
}

enum Event {
    /// An input for node `node` (index).
    Input { node: usize, input: Input },
    /// Node `node`'s timer set for `at`; void unless it is the live one.
    Tick { node: usize, at: Timestamp },
    /// Node `node`'s writes through `seq` are durable.
    Synced { node: usize, seq: u64 },
    /// The client receives an answer.
    Answer { id: RequestId, reply: Reply },
}

/// Where the client is in its current transaction.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Begin {
        sent: Timestamp,
    },
    Commit {
        txn: TxnId,
        begin: Timestamp,
        sent: Timestamp,
    },
}

struct Model {
    cfg: LatencyModel,
    queue: EventQueue<Event>,
    nodes: Vec<Node>,
    groups: u64,
    /// The serving leader of each group, once elected (index by group − 1).
    leaders: Vec<NodeId>,
    events: u64,
    next_request: RequestId,
    /// The client's request in flight and what it is.
    waiting: Option<(RequestId, Phase)>,
    done: Vec<TxnTiming>,
}

/// Runs `txns` transactions over `participants` groups under `cfg`.
/// Errors if a leader is not elected in time, a request is refused or a
/// transaction is not answered in time: with no faults every transaction
/// must commit.
pub fn run(cfg: &LatencyModel, participants: usize, txns: usize) -> Result<LatencyRun, String> {
    if participants == 0 || participants > MAX_PARTICIPANTS {
        return Err(format!(
            "participants must be 1 to {MAX_PARTICIPANTS}, not {participants}"
        ));
    }
    let mut m = Model::new(cfg, participants as u64);
    m.elect()?;
    m.run_for(SETTLE)?;
    for t in 0..txns {
        m.transaction(t)?;
    }
    Ok(LatencyRun {
        participants,
        txns: m.done,
        events: m.events,
    })
}

impl Model {
    fn new(cfg: &LatencyModel, groups: u64) -> Model {
        let clock = VirtualClock::new(Timestamp(EPOCH));
        let mut rng = SmallRng::seed_from_u64(cfg.seed);
        let mut nodes = Vec::new();
        for group in 1..=groups {
            let voters: Vec<NodeId> = (1..=REPLICAS).map(|k| (group - 1) * REPLICAS + k).collect();
            for &id in &voters {
                let paxos = meridian_paxos::Config::new(id, voters.clone());
                let config = meridian_txn::Config::new(group, paxos);
                let replica = GroupReplica::new(
                    config,
                    Recovered::default(),
                    Box::new(SmallRng::seed_from_u64(rng.random())),
                );
                let clock = match cfg.clock {
                    ClockKind::Fixed => Clock::Fixed(cfg.epsilon_nanos),
                    ClockKind::Sawtooth => {
                        let phase = rng.random_range(0..SAWTOOTH.sync_period_nanos);
                        Clock::Sawtooth(
                            SimulatedTrueTime::new(clock.clone(), SAWTOOTH, rng.random())
                                .with_phase(phase),
                        )
                    }
                };
                nodes.push(Node {
                    replica,
                    storage: MemStorage::new(),
                    clock,
                    tick_at: None,
                });
            }
        }
        let mut m = Model {
            cfg: *cfg,
            queue: EventQueue::new(clock),
            nodes,
            groups,
            leaders: Vec::new(),
            events: 0,
            next_request: 1,
            waiting: None,
            done: Vec::new(),
        };
        for i in 0..m.nodes.len() {
            let now = m.local(i);
            let mut out = Vec::new();
            m.nodes[i].replica.start(now, &mut out);
            m.process(i, out);
        }
        m
    }

    fn local(&self, i: usize) -> TtInterval {
        self.nodes[i].clock.read(self.queue.now())
    }

    fn index(id: NodeId) -> usize {
        (id - 1) as usize
    }

    /// The replica of `group` that leads and serves (term started, lease
    /// held), if any.
    fn serving_leader(&self, group: GroupId) -> Option<NodeId> {
        ((group - 1) * REPLICAS + 1..=group * REPLICAS).find(|&id| {
            let i = Model::index(id);
            let p = self.nodes[i].replica.paxos();
            p.term_started() && p.has_lease(self.local(i))
        })
    }

    /// Runs until every group has a serving leader.
    fn elect(&mut self) -> Result<(), String> {
        let end = self.queue.now().saturating_add(ELECTION_BOUND);
        while self.queue.now() < end {
            let leaders: Vec<Option<NodeId>> =
                (1..=self.groups).map(|g| self.serving_leader(g)).collect();
            if leaders.iter().all(Option::is_some) {
                self.leaders = leaders.into_iter().flatten().collect();
                return Ok(());
            }
            self.run_for(10 * MS)?;
        }
        Err(format!(
            "not every one of {} groups elected a serving leader within {} ms",
            self.groups,
            ELECTION_BOUND / MS
        ))
    }

    /// Handles every event due in the next `nanos`.
    fn run_for(&mut self, nanos: u64) -> Result<(), String> {
        let end = self.queue.now().saturating_add(nanos);
        while let Some(ev) = self.queue.pop_until(end) {
            self.handle(ev)?;
        }
        self.queue.advance_to(end);
        Ok(())
    }

    /// Runs transaction number `t` to its answer.
    fn transaction(&mut self, t: usize) -> Result<(), String> {
        let begin = self.queue.now();
        self.request(
            Request::Begin {
                priority: None,
                mode: CcMode::Locking,
                reserve: 0,
            },
            Phase::Begin { sent: begin },
        );
        let before = self.done.len();
        let end = begin.saturating_add(ANSWER_BOUND);
        while self.done.len() == before {
            let Some(ev) = self.queue.pop_until(end) else {
                return Err(format!(
                    "transaction {t} over {} groups was not answered within {} ms",
                    self.groups,
                    ANSWER_BOUND / MS
                ));
            };
            self.handle(ev)?;
        }
        Ok(())
    }

    /// Sends `request` from the client to the home group's leader.
    fn request(&mut self, request: Request, phase: Phase) {
        let id = self.next_request;
        self.next_request += 1;
        self.waiting = Some((id, phase));
        let node = Model::index(self.leaders[0]);
        self.queue.schedule(
            self.cfg.one_way_nanos,
            Event::Input {
                node,
                input: Input::Request { id, request },
            },
        );
    }

    /// The key transaction `t` writes in `group`.
    fn key(t: usize, group: GroupId) -> Bytes {
        Bytes::from(format!("g{group:05}/t{t:06}"))
    }

    fn answer(&mut self, id: RequestId, reply: Reply) -> Result<(), String> {
        let Some((want, phase)) = self.waiting else {
            return Ok(());
        };
        if id != want {
            return Ok(());
        }
        let now = self.queue.now();
        match (phase, reply) {
            (Phase::Begin { sent }, Ok(Response::Begun { txn, .. })) => {
                let t = self.done.len();
                let put = |g| Write::put(Model::key(t, g), Bytes::from_static(b"v"));
                let participants = (2..=self.groups)
                    .map(|g| Participant {
                        group: g,
                        term: None,
                        writes: vec![put(g)],
                    })
                    .collect();
                let commit = Request::Commit {
                    txn,
                    writes: vec![put(1)],
                    participants,
                };
                self.request(
                    commit,
                    Phase::Commit {
                        txn,
                        begin: sent,
                        sent: now,
                    },
                );
                Ok(())
            }
            (Phase::Commit { txn, begin, sent }, Ok(Response::Committed { commit_ts })) => {
                self.waiting = None;
                self.done.push(TxnTiming {
                    txn,
                    begin_sent: begin,
                    commit_sent: sent,
                    answered: now,
                    commit_ts,
                });
                Ok(())
            }
            (phase, reply) => Err(format!(
                "with no faults, {phase:?} over {} groups was answered {reply:?}",
                self.groups
            )),
        }
    }

    fn handle(&mut self, ev: Event) -> Result<(), String> {
        self.events += 1;
        match ev {
            Event::Input { node, input } => self.step(node, input),
            Event::Tick { node, at } => {
                if self.nodes[node].tick_at == Some(at) {
                    self.nodes[node].tick_at = None;
                    self.step(node, Input::Tick);
                }
            }
            Event::Synced { node, seq } => {
                self.nodes[node]
                    .storage
                    .sync()
                    .expect("memory storage cannot fail");
                self.step(node, Input::Persisted { seq });
            }
            Event::Answer { id, reply } => return self.answer(id, reply),
        }
        Ok(())
    }

    fn step(&mut self, i: usize, input: Input) {
        let now = self.local(i);
        let mut out = Vec::new();
        self.nodes[i].replica.step(now, input, &mut out);
        self.process(i, out);
    }

    /// Carries out a replica's outputs, then arms its timer.
    fn process(&mut self, i: usize, out: Vec<Output>) {
        let d = self.cfg.one_way_nanos;
        for o in out {
            match o {
                // The model runs no splits.
                Output::SplitChild(_) => {}
                Output::Send(m) => {
                    let node = Model::index(m.to);
                    let input = Input::Message(m);
                    self.queue.schedule(d, Event::Input { node, input });
                }
                Output::ToGroup { group, msg } => {
                    if (1..=self.groups).contains(&group) {
                        for id in (group - 1) * REPLICAS + 1..=group * REPLICAS {
                            let node = Model::index(id);
                            let input = Input::FromGroup(msg.clone());
                            self.queue.schedule(d, Event::Input { node, input });
                        }
                    }
                }
                Output::Persist(req) => {
                    self.nodes[i]
                        .storage
                        .write(&req)
                        .expect("memory storage cannot fail");
                    let ev = Event::Synced {
                        node: i,
                        seq: req.seq,
                    };
                    self.queue.schedule(self.cfg.fsync_nanos, ev);
                }
                Output::Reply { id, reply } => {
                    self.queue.schedule(d, Event::Answer { id, reply });
                }
                Output::Applied(_)
                | Output::SnapshotRestored { .. }
                | Output::RoleChanged { .. } => {}
            }
        }
        let local = self.local(i);
        let wait = self.nodes[i]
            .replica
            .next_deadline()
            .nanos_since(local.midpoint())
            .max(MIN_TICK);
        let at = self.queue.now().saturating_add(wait);
        let node = &mut self.nodes[i];
        if node.tick_at.is_none_or(|t| t > at) {
            node.tick_at = Some(at);
            self.queue.schedule(wait, Event::Tick { node: i, at });
        }
    }
}
