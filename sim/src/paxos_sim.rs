//! One simulated Paxos group under faults: the Paxos layer alone, with
//! membership churn and compaction, checked slot by slot.

use std::collections::BTreeSet;

use bytes::Bytes;
use meridian_paxos::{Input, MembershipChange, Message, NodeId, Output, Replica, Role, Storage};
use meridian_truetime::{SimulatedTrueTime, Timestamp, TrueTime, TtInterval, VirtualClock};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::check::{ChosenLog, StateMachine, Violation, rules};
use crate::trace::{self, Party, TraceKind, Tracer};
use crate::windows::EDGE_PER_MILLE;
use crate::world::{
    Adversary, CLIENT_QUIET, CLOCK_MODEL, ClockPlan, DEFAULT_FAULT_PHASE, ELECTION_MAX,
    ELECTION_MIN, EPOCH, ElectionsAfterHeal, EventQueue, FAULT_TICK, Faults, HAND_OVER_QUIET,
    HEARTBEAT, HandOvers, Host, LEASE, LIVENESS_BOUND, LOCKSTEP_ELECTION_SPREAD, MS, Network,
    WIDE_EPSILON_MAX, check_one_lease, count_event, downtime, paxos_config,
};
use crate::{RunOptions, RunOutcome, RunStats};

/// Compact the log when this many slots are applied past the snapshot.
const COMPACT_EVERY: u64 = 40;

/// Per seed: probability per fault tick that the leader's process pauses
/// (a stop-the-world pause): it comes back still believing in its lease.
const LEADER_PAUSES: [f64; 3] = [0.0, 0.05, 0.1];
/// How long a paused leader stands still: at least its lease, so the
/// others elect a successor while it still believes it holds one.
const LEADER_PAUSE: (u64, u64) = (LEASE, LEASE + ELECTION_MAX);
/// Before it pauses, the leader goes quiet (no proposals reach it) and
/// its messages to one follower are lost for this long: that follower's
/// log stays current but its last lease vote is older than the others'
/// (a new leader then waits out the others' votes, not only its own).
const PRE_PAUSE: (u64, u64) = (30 * MS, 90 * MS);
/// Per seed: probability per fault tick that the edge pause starts: the
/// clocks are set at opposite edges of their ε (the leader's narrow, the
/// follower that will campaign ahead of true time, every other replica
/// behind it with a wide ε), the leader's last rounds reach every
/// follower but the campaigner, and the leader pauses. The campaigner's
/// own lease vote is then older than the others', and the others' votes,
/// timed on clocks that lag, end early in true time: a vote timed from
/// `earliest` instead of `latest` lets it win inside the old lease.
const EDGE_PAUSES: [f64; 3] = [0.0, 0.04, 0.08];
/// The ε of the paused leader's clock in an edge pause.
const EDGE_NARROW_EPSILON: u64 = MS;
/// The ε of the lagging followers' clocks in an edge pause: wide, so that
/// 2ε outlasts a message's delay.
const EDGE_WIDE_EPSILON: (u64, u64) = (40 * MS, WIDE_EPSILON_MAX);
/// How long after the campaigner is cut off the edge pause reads its
/// election deadline: by then what the leader sent it before the cut has
/// most often arrived.
const EDGE_SETTLE: u64 = 10 * MS;
/// The leader pauses this long before the campaigner's election timer
/// runs out: the others' leader stickiness (a minimum election timeout
/// since the leader's last message reached them, sent at the pause at the
/// latest) is over when its pre-vote reaches them, unless their link was
/// slower than its by more than the 5 ms margin; their own timers run out
/// no sooner than that, most often later.
const EDGE_CAMPAIGN_AFTER_PAUSE: u64 = ELECTION_MIN + 5 * MS;
/// The least time between the cut and the pause: a heartbeat and twice
/// the leader's ε, so that the campaigner's own lease vote is older than
/// the lease the others extend.
const EDGE_MIN_QUIET: u64 = HEARTBEAT + 2 * EDGE_NARROW_EPSILON + 2 * MS;
/// Per seed: probability per fault tick of a duel: the leader crashes and
/// the followers, whose election timers run in lockstep on these seeds,
/// campaign in one round.
const DUELS: [f64; 3] = [0.0, 0.0, 0.25];
/// Per seed: probability per fault tick that the Figure-8 schedule starts
/// (Raft §5.4.2): a leader writes entries no one else sees and crashes; a
/// successor writes its no-op in the same slot and crashes; the first
/// returns, wins, replicates its old entries to a quorum and crashes
/// before its own no-op is there; the second returns and wins.
const FIGURE_EIGHTS: [f64; 3] = [0.0, 0.2, 0.3];
/// How long the first leader of a Figure-8 schedule writes unheard.
const FIGURE_EIGHT_MUTE: (u64, u64) = (80 * MS, 200 * MS);
/// How soon the second leader crashes (after its no-op is durable).
const FIGURE_EIGHT_SECOND_CRASH: (u64, u64) = (10 * MS, 40 * MS);
/// A step of the Figure-8 schedule that did not happen within this is
/// given up (the crashed replicas restart).
const FIGURE_EIGHT_STEP_TIMEOUT: u64 = 4 * ELECTION_MAX + LEASE;
/// How long a replica crashed by the Figure-8 schedule stays down unless
/// the schedule restarts it.
const FIGURE_EIGHT_DOWN: u64 = 4 * ELECTION_MAX + LEASE;

/// The Paxos layer's windows on the protocol's corners, drawn per seed
/// from their own stream (so the other draws stay as they were): paused
/// leaders that return (lease votes), duels (same-round ballots) and the
/// Figure-8 schedule (commitment of old-ballot entries).
#[derive(Debug)]
struct Windows {
    rng: SmallRng,
    /// Per fault tick: pause the leader.
    pause: f64,
    /// Per fault tick: crash the leader under lockstep election timers.
    duel: f64,
    /// Per fault tick: start the Figure-8 schedule.
    figure_eight: f64,
    /// The edge pause's own stream (so the other windows draw as before).
    edge_rng: SmallRng,
    /// Per fault tick: start the edge pause.
    edge_pause: f64,
}

/// A replica's clock pinned at an edge of its ε by the edge pause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EdgeClock {
    /// Ahead of true time (else behind it).
    ahead: bool,
    /// The ε it reports, if not its model's.
    epsilon: Option<u64>,
}

impl Windows {
    fn draw(seed: u64) -> Windows {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_f18e_u64.rotate_left(40));
        let mut pick = |xs: &[f64; 3]| xs[rng.random_range(0..xs.len())];
        let (pause, duel, figure_eight) =
            (pick(&LEADER_PAUSES), pick(&DUELS), pick(&FIGURE_EIGHTS));
        let mut edge_rng = SmallRng::seed_from_u64(seed ^ 0x0ed9_e5a1_u64.rotate_left(36));
        let edge_pause = EDGE_PAUSES[edge_rng.random_range(0..EDGE_PAUSES.len())];
        Windows {
            rng,
            pause,
            duel,
            figure_eight,
            edge_rng,
            edge_pause,
        }
    }

    /// The windows, in words, for the trace header.
    fn describe(&self) -> String {
        let pct = |p: f64| format!("{}%", (p * 100.0).round());
        format!(
            "paxos windows per fault tick: leader pause {}, duel {}, figure-8 {}, edge pause {}",
            pct(self.pause),
            pct(self.duel),
            pct(self.figure_eight),
            pct(self.edge_pause)
        )
    }
}

/// Where the Figure-8 schedule stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FigureEight {
    Idle,
    /// The first leader writes unheard (slots after `from`) until the
    /// next `Script` event.
    Muted {
        first: usize,
        from: u64,
    },
    /// The first leader is down; waiting for a successor to win.
    AwaitSecond {
        first: usize,
        from: u64,
        since: Timestamp,
    },
    /// The successor crashes at the next `Script` event.
    SecondWon {
        first: usize,
        from: u64,
        second: usize,
    },
    /// The first leader restarted; waiting for it to win again.
    AwaitReturn {
        first: usize,
        from: u64,
        second: usize,
        since: Timestamp,
    },
    /// The first leader leads again, its new no-op at `noop`; it crashes
    /// as soon as a follower acknowledges some of the entries written
    /// unheard but not the no-op, and the second returns.
    Returned {
        first: usize,
        from: u64,
        noop: u64,
        second: usize,
    },
}

#[derive(Debug)]
enum Event {
    Deliver(Message),
    /// A node's timer; only the latest one scheduled (`at == tick_at`)
    /// acts, so superseded timers cannot pile up.
    Tick {
        node: usize,
        generation: u64,
        at: Timestamp,
    },
    Sync {
        node: usize,
        generation: u64,
    },
    Restart {
        node: usize,
    },
    /// A crash aimed at a moment (a new leader's first milliseconds); void
    /// if the node restarted since.
    Crash {
        node: usize,
        generation: u64,
    },
    /// A hand-over aimed at a moment (a new leader's first milliseconds);
    /// void if the node restarted since.
    HandOver {
        node: usize,
        generation: u64,
        to: Option<NodeId>,
    },
    /// A quiet leader pauses for `nanos`; its link to `follower` mends.
    Pause {
        node: usize,
        follower: NodeId,
        nanos: u64,
    },
    /// A paused replica resumes: what arrived meanwhile is handled.
    Resume {
        node: usize,
    },
    /// The next step of the Figure-8 schedule.
    Script,
    /// The edge pause reads the campaigner's election deadline and times
    /// the leader's pause by it.
    EdgeStep {
        leader: usize,
        campaigner: usize,
    },
    Client,
    Fault,
    Heal,
}

struct Node {
    id: NodeId,
    tt: SimulatedTrueTime,
    replica: Option<Replica>,
    host: Host,
    sm: StateMachine,
    /// A process pause in progress: events for this node wait until then.
    paused_until: Option<Timestamp>,
    /// The edge pause pins this clock at an edge of its ε (until the heal).
    edge: Option<EdgeClock>,
}

struct Sim {
    rng: SmallRng,
    faults: Faults,
    nodes: Vec<Node>,
    queue: EventQueue<Event>,
    net: Network,
    chosen: ChosenLog,
    stats: RunStats,
    next_cmd: u64,
    leader_hint: Option<NodeId>,
    max_assigned_ts: Timestamp,
    faults_on: bool,
    heal_at: Timestamp,
    hand_overs: HandOvers,
    clients_stop: Timestamp,
    /// First command id proposed after the heal.
    first_post_heal_cmd: Option<u64>,
    tracer: Tracer,
    planted_bug: Option<meridian_paxos::PlantedBug>,
    adversary: Adversary,
    elections_after_heal: ElectionsAfterHeal,
    windows: Windows,
    figure_eight: FigureEight,
    /// Clients propose nothing until then (a leader about to pause).
    clients_quiet_until: Timestamp,
    /// The edge pause runs undisturbed until then: no background faults,
    /// a calm network.
    edge_calm_until: Timestamp,
}

/// Runs one seed of the Paxos layer: its counters, and the first invariant
/// it broke, if any.
pub(crate) fn run_seed(opts: &RunOptions) -> RunOutcome {
    let mut rng = SmallRng::seed_from_u64(opts.seed);
    let faults = Faults::draw(&mut rng);
    let clock = VirtualClock::new(Timestamp(EPOCH));
    let n_nodes = if faults.membership { 5 } else { 3 };
    let broken_clocks = opts.planted_bug == Some(crate::PlantedBug::ClockBoundBroken);
    let fault_phase = opts.fault_phase_nanos.unwrap_or(DEFAULT_FAULT_PHASE);
    let clocks = ClockPlan::draw(&mut rng, CLOCK_MODEL, opts.seed, broken_clocks);
    let adversary = Adversary::draw(&mut rng);
    let windows = Windows::draw(opts.seed);
    let mut sim = Sim {
        nodes: (0..n_nodes)
            .map(|i| Node {
                id: i as NodeId + 1,
                tt: clocks.node(&clock, i as u64, true),
                replica: None,
                host: Host::default(),
                sm: StateMachine::default(),
                paused_until: None,
                edge: None,
            })
            .collect(),
        queue: EventQueue::new(clock),
        rng,
        faults,
        net: Network::default(),
        chosen: ChosenLog::default(),
        stats: RunStats::default(),
        next_cmd: 1,
        leader_hint: None,
        max_assigned_ts: Timestamp::ZERO,
        faults_on: true,
        heal_at: Timestamp(EPOCH + fault_phase),
        hand_overs: HandOvers::draw(opts.seed),
        clients_stop: Timestamp(EPOCH + fault_phase + LIVENESS_BOUND - CLIENT_QUIET),
        first_post_heal_cmd: None,
        tracer: Tracer::new(opts.trace.clone()),
        planted_bug: opts.planted_bug.and_then(|b| b.paxos()),
        adversary,
        elections_after_heal: ElectionsAfterHeal::default(),
        windows,
        figure_eight: FigureEight::Idle,
        clients_quiet_until: Timestamp::ZERO,
        edge_calm_until: Timestamp::ZERO,
    };
    sim.tracer.header(|| {
        format!(
            "seed {} layer paxos: {n_nodes} replicas; faults until {}, run ends {}\n{}{}\n  {}\n  {}",
            opts.seed,
            trace::since(fault_phase),
            trace::since(fault_phase + LIVENESS_BOUND),
            trace::faults(&sim.faults, true, None),
            trace::hand_overs(&sim.hand_overs),
            trace::schedule(clocks.profile, &sim.adversary),
            sim.windows.describe(),
        )
    });
    let result = crate::guarded(|| sim.run(fault_phase));
    // The counters of a failing run too, up to the violation.
    sim.stats.commits = sim.chosen.acked.len() as u64;
    sim.stats.virtual_nanos = sim.at();
    sim.stats.elections_after_heal = sim.elections_after_heal.count();
    RunOutcome {
        stats: sim.stats,
        violation: result.err(),
    }
}

impl Sim {
    /// Boots the replicas and runs until the end, checking as it goes.
    fn run(&mut self, fault_phase: u64) -> Result<(), Violation> {
        for i in 0..self.nodes.len() {
            self.boot(i)?;
        }
        self.schedule(MS, Event::Client);
        self.schedule(FAULT_TICK, Event::Fault);
        self.schedule(fault_phase, Event::Heal);
        let end = Timestamp(EPOCH + fault_phase + LIVENESS_BOUND);
        while let Some(ev) = self.queue.pop_until(end) {
            if let Err(e) = count_event(&mut self.stats, self.queue.at(), event_code(&ev)) {
                return Err(self.violation(rules::LIVENESS, e));
            }
            self.handle(ev)?;
            self.check_step()?;
        }
        self.stats.virtual_nanos = self.now().0 - EPOCH;
        self.check_end()
    }

    fn now(&self) -> Timestamp {
        self.queue.now()
    }

    fn at(&self) -> u64 {
        self.queue.at()
    }

    /// Node `i`'s clock reading now: its model's, or, pinned by the edge
    /// pause, true time plus an error at the edge of the ε it reports (a
    /// broken bound stays broken).
    fn reading(&self, i: usize) -> TtInterval {
        let n = &self.nodes[i];
        let model = n.tt.now();
        match n.edge {
            Some(e) if !n.tt.bound_broken() => {
                let eps = e.epsilon.unwrap_or(model.epsilon_nanos());
                let err = eps * EDGE_PER_MILLE / 1_000;
                let t = self.now();
                let local = if e.ahead {
                    t.saturating_add(err)
                } else {
                    t.saturating_sub(err)
                };
                TtInterval::around(local, eps)
            }
            _ => model,
        }
    }

    fn trace(&self, kind: TraceKind, parties: &[Party], text: impl FnOnce() -> String) {
        self.tracer.line(self.at(), kind, parties, None, text);
    }

    fn violation(&self, rule: &'static str, detail: String) -> Violation {
        Violation {
            rule,
            at_nanos: self.at(),
            detail,
        }
    }

    fn schedule(&mut self, delay: u64, ev: Event) {
        self.queue.schedule(delay, ev);
    }

    fn config(&self, i: usize) -> meridian_paxos::Config {
        let id = self.nodes[i].id;
        let voters = if id <= 3 { vec![1, 2, 3] } else { vec![] };
        let mut c = paxos_config(id, voters, self.planted_bug);
        self.adversary.configure(&mut c);
        if self.windows.duel > 0.0 {
            c.election_max_nanos = c.election_min_nanos + LOCKSTEP_ELECTION_SPREAD;
        }
        c
    }

    fn boot(&mut self, i: usize) -> Result<(), Violation> {
        let state = self.nodes[i]
            .host
            .storage
            .load()
            .expect("memory storage cannot fail");
        let rng = SmallRng::seed_from_u64(self.rng.random());
        let mut r = Replica::new(self.config(i), state, Box::new(rng));
        let now = self.reading(i);
        let mut out = Vec::new();
        r.start(now, &mut out);
        let node = &mut self.nodes[i];
        node.host.boot(r.last_assigned_ts());
        node.replica = Some(r);
        node.sm = StateMachine::default();
        self.process(i, out)
    }

    /// The replica an event is handled by, if it waits out a pause.
    fn target(&self, ev: &Event) -> Option<usize> {
        match ev {
            Event::Deliver(m) => self.index(m.to),
            Event::Tick { node, .. } | Event::Sync { node, .. } | Event::HandOver { node, .. } => {
                Some(*node)
            }
            _ => None,
        }
    }

    fn handle(&mut self, ev: Event) -> Result<(), Violation> {
        if let Some(i) = self.target(&ev) {
            if let Some(until) = self.nodes[i].paused_until {
                if self.now() < until {
                    // Handled when the pause ends, in arrival order.
                    let wait = until.nanos_since(self.now());
                    self.schedule(wait, ev);
                    return Ok(());
                }
            }
        }
        match ev {
            Event::Pause {
                node,
                follower,
                nanos,
            } => {
                let id = self.nodes[node].id;
                self.net.blocked.remove(&(id, follower));
                if self.nodes[node].replica.is_some() && self.faults_on {
                    self.trace(TraceKind::Fault, &[Party::Node(id)], || {
                        format!("pause n{id} for {} ms", nanos / MS)
                    });
                    self.nodes[node].paused_until = Some(self.now().saturating_add(nanos));
                    self.schedule(nanos, Event::Resume { node });
                }
                Ok(())
            }
            Event::Resume { node } => {
                if self.nodes[node]
                    .paused_until
                    .is_some_and(|u| u <= self.now())
                {
                    self.nodes[node].paused_until = None;
                    let id = self.nodes[node].id;
                    self.trace(TraceKind::Fault, &[Party::Node(id)], || {
                        format!("n{id} resumes after its pause")
                    });
                }
                Ok(())
            }
            Event::Script => self.figure_eight_step(),
            Event::EdgeStep { leader, campaigner } => {
                self.edge_step(leader, campaigner);
                Ok(())
            }
            Event::Deliver(m) => {
                let Some(i) = self.index(m.to) else {
                    return Ok(());
                };
                let parties = [Party::Node(m.from), Party::Node(m.to)];
                self.trace(TraceKind::Deliver, &parties, || trace::message(&m));
                let acked = match m.body {
                    meridian_paxos::Body::Accepted { ok: true, upto, .. } => Some(upto),
                    _ => None,
                };
                let FigureEight::Returned {
                    first,
                    from,
                    noop,
                    second,
                } = self.figure_eight
                else {
                    return self.step(i, Input::Message(m));
                };
                match acked {
                    Some(upto) if i == first && upto > from && upto < noop => {
                        // The acknowledgement is handled; whatever the
                        // leader sends in answer is lost with it.
                        self.mute(first, true);
                        self.step(i, Input::Message(m))?;
                        self.mute(first, false);
                        let down = downtime(&mut self.rng);
                        self.crash_for(first, down, "figure 8");
                        self.restart_now(second)?;
                        self.figure_eight = FigureEight::Idle;
                    }
                    Some(upto) if i == first && upto >= noop => {
                        // The no-op got there first: the window closed.
                        self.step(i, Input::Message(m))?;
                        self.restart_now(second)?;
                        self.figure_eight = FigureEight::Idle;
                    }
                    _ => self.step(i, Input::Message(m))?,
                }
                Ok(())
            }
            Event::Tick {
                node,
                generation,
                at,
            } => {
                if !self.nodes[node].host.tick(generation, at) {
                    return Ok(());
                }
                self.step(node, Input::Tick)
            }
            Event::Sync { node, generation } => match self.nodes[node].host.sync(generation) {
                Some(seq) => self.step(node, Input::Persisted { seq }),
                None => Ok(()),
            },
            Event::Crash { node, generation } => {
                if self.nodes[node].host.generation == generation {
                    let id = self.nodes[node].id;
                    self.trace(TraceKind::Fault, &[Party::Node(id)], || {
                        format!("crash n{id} just after its election")
                    });
                    self.crash(node);
                }
                Ok(())
            }
            Event::HandOver {
                node,
                generation,
                to,
            } => {
                if self.nodes[node].host.generation != generation {
                    return Ok(());
                }
                self.hand_over(node, to)
            }
            Event::Restart { node } => {
                if self.nodes[node].replica.is_some() {
                    return Ok(()); // already restarted when faults healed
                }
                let id = self.nodes[node].id;
                self.trace(TraceKind::Fault, &[Party::Node(id)], || {
                    format!("restart n{id}")
                });
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
                self.trace(TraceKind::Fault, &[], || {
                    "heal: faults stop, partitions mend, crashed replicas restart".into()
                });
                self.faults_on = false;
                self.net.blocked.clear();
                self.figure_eight = FigureEight::Idle;
                for n in &mut self.nodes {
                    n.paused_until = None;
                    n.edge = None;
                }
                for i in 0..self.nodes.len() {
                    if self.nodes[i].replica.is_none() {
                        self.nodes[i].host.generation += 1;
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
        let now = self.reading(i);
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
                    let host = &mut self.nodes[i].host;
                    if let Some(d) = host.persist(&req, &mut self.rng, &self.faults) {
                        let generation = host.generation;
                        self.schedule(
                            d,
                            Event::Sync {
                                node: i,
                                generation,
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
                    self.trace(TraceKind::Role, &[Party::Node(id)], || {
                        trace::role(id, role, leader)
                    });
                    if role == Role::Leader {
                        self.stats.elections += 1;
                        self.leader_hint = Some(id);
                        if !self.faults_on {
                            let round = self.nodes[i]
                                .replica
                                .as_ref()
                                .map_or(0, |r| r.promised().round);
                            if let Err(e) = self.elections_after_heal.record(id, round) {
                                return Err(self.violation(rules::ELECTIONS_AFTER_HEAL, e));
                            }
                        } else {
                            let generation = self.nodes[i].host.generation;
                            let scripted = self.figure_eight != FigureEight::Idle;
                            self.figure_eight_on_leader(i);
                            if scripted {
                                continue;
                            }
                            if let Some(d) = self.adversary.new_leader_crash(&mut self.rng) {
                                self.schedule(
                                    d,
                                    Event::Crash {
                                        node: i,
                                        generation,
                                    },
                                );
                            }
                            let others: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
                            if let Some((d, to)) = self.hand_overs.after_election(&others) {
                                self.schedule(
                                    d,
                                    Event::HandOver {
                                        node: i,
                                        generation,
                                        to,
                                    },
                                );
                            }
                        }
                    }
                }
            }
        }
        self.after_step(i)
    }

    fn after_step(&mut self, i: usize) -> Result<(), Violation> {
        let now_local = self.reading(i);
        let Some(r) = self.nodes[i].replica.as_ref() else {
            return Ok(());
        };
        // Timestamps rise across leaders, in true-time order of assignment.
        let (leading, ts) = (r.role() == Role::Leader, r.last_assigned_ts());
        let id = self.nodes[i].id;
        if let Err(e) =
            self.nodes[i]
                .host
                .check_assigned(id, leading, ts, &mut self.max_assigned_ts)
        {
            return Err(self.violation(rules::TS_MONOTONIC, e));
        }
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
        let now = self.now();
        let host = &mut self.nodes[i].host;
        if let Some(at) = host.arm(now, wait) {
            let generation = host.generation;
            self.schedule(
                wait,
                Event::Tick {
                    node: i,
                    generation,
                    at,
                },
            );
        }
        Ok(())
    }

    fn send(&mut self, m: Message) {
        // The Figure-8 schedule and the edge pause run on a calm network:
        // their cuts, crashes and pauses are the only faults.
        let faults_on = self.faults_on
            && self.figure_eight == FigureEight::Idle
            && self.now() >= self.edge_calm_until;
        let delays = self
            .net
            .deliveries(&mut self.rng, &self.faults, faults_on, m.from, m.to);
        let parties = [Party::Node(m.from), Party::Node(m.to)];
        self.trace(TraceKind::Send, &parties, || {
            format!("{}{}", trace::message(&m), trace::fate(delays.len()))
        });
        for d in delays {
            self.schedule(d, Event::Deliver(m.clone()));
        }
    }

    fn client(&mut self) -> Result<(), Violation> {
        let target = match self.leader_hint.and_then(|l| self.index(l)) {
            Some(i) if self.rng.random_bool(0.9) => i,
            _ => self.rng.random_range(0..self.nodes.len()),
        };
        if self.nodes[target].paused_until.is_some() || self.now() < self.clients_quiet_until {
            return Ok(()); // a paused process answers nothing
        }
        let now = self.reading(target);
        let Some(r) = self.nodes[target].replica.as_mut() else {
            return Ok(());
        };
        let id = self.next_cmd;
        let mut out = Vec::new();
        let result = r.propose(now, Bytes::copy_from_slice(&id.to_le_bytes()), &mut out);
        let node = self.nodes[target].id;
        self.trace(TraceKind::Client, &[Party::Node(node)], || match &result {
            Ok(_) => format!("propose command {id} at n{node}: queued"),
            Err(meridian_paxos::ProposeError::NotLeader { leader: Some(l) }) => {
                format!("propose command {id} at n{node}: not the leader (try n{l})")
            }
            Err(meridian_paxos::ProposeError::NotLeader { leader: None }) => {
                format!("propose command {id} at n{node}: not the leader (no known leader)")
            }
            Err(e) => format!("propose command {id} at n{node}: refused, {e}"),
        });
        match result {
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
        if self.figure_eight != FigureEight::Idle || self.now() < self.edge_calm_until {
            // The Figure-8 schedule and the edge pause run undisturbed.
            return Ok(());
        }
        let n = self.nodes.len();
        let ids: Vec<NodeId> = self.nodes.iter().map(|x| x.id).collect();
        let leader = self.leader_hint.filter(|l| ids.contains(l));
        let cut = self
            .net
            .maybe_partition(&mut self.rng, &self.faults, &ids, leader);
        if let Some((kind, v)) = cut {
            let mut parties = vec![Party::Node(v)];
            parties.extend(leader.map(Party::Node));
            self.trace(TraceKind::Fault, &parties, || {
                trace::partition(kind, v, leader)
            });
        }
        if self.rng.random_bool(self.faults.power_loss) {
            self.trace(TraceKind::Fault, &[], || "power loss: every replica".into());
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
        self.maybe_hand_over()?;
        self.open_windows()
    }

    /// The Paxos layer's windows (see [`Windows`]), at a fault tick.
    fn open_windows(&mut self) -> Result<(), Violation> {
        let leader = self.leader_hint.and_then(|l| self.index(l)).filter(|&l| {
            self.nodes[l].paused_until.is_none()
                && self.nodes[l]
                    .replica
                    .as_ref()
                    .is_some_and(|r| r.role() == Role::Leader)
        });
        let quiet_until = self.heal_at.0.saturating_sub(HAND_OVER_QUIET);
        if self.windows.pause > 0.0 && self.windows.rng.random_bool(self.windows.pause) {
            let d = self
                .windows
                .rng
                .random_range(LEADER_PAUSE.0..=LEADER_PAUSE.1);
            let w = self.windows.rng.random_range(PRE_PAUSE.0..=PRE_PAUSE.1);
            let others: Vec<NodeId> = leader
                .map(|l| self.nodes[l].id)
                .map(|id| {
                    self.nodes
                        .iter()
                        .map(|n| n.id)
                        .filter(|&o| o != id)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(l) = leader.filter(|_| self.now().0 + w + d < quiet_until) {
                let id = self.nodes[l].id;
                let follower = others[self.windows.rng.random_range(0..others.len())];
                self.trace(
                    TraceKind::Fault,
                    &[Party::Node(id), Party::Node(follower)],
                    || {
                        format!(
                            "leader n{id} goes quiet, unheard by n{follower}, and pauses in {} ms",
                            w / MS
                        )
                    },
                );
                self.clients_quiet_until = self.now().saturating_add(w);
                self.net.blocked.insert((id, follower));
                self.schedule(
                    w,
                    Event::Pause {
                        node: l,
                        follower,
                        nanos: d,
                    },
                );
            }
        }
        if self.windows.edge_pause > 0.0
            && self.windows.edge_rng.random_bool(self.windows.edge_pause)
        {
            self.edge_pause(leader, quiet_until);
        }
        if self.windows.duel > 0.0
            && self.windows.rng.random_bool(self.windows.duel)
            && leader.is_some()
            && self.now().0 + 2 * LEASE < quiet_until
        {
            // Every replica restarts at the same instant, so their
            // election timers (in lockstep on these seeds) run out
            // together and several campaign in one round.
            self.trace(TraceKind::Fault, &[], || {
                "duel: every replica crashes and restarts at once".into()
            });
            let down = downtime(&mut self.rng);
            for i in 0..self.nodes.len() {
                self.crash_for(i, down, "duel");
            }
        }
        if self.windows.figure_eight > 0.0
            && self.figure_eight == FigureEight::Idle
            && self.windows.rng.random_bool(self.windows.figure_eight)
        {
            let d = self
                .windows
                .rng
                .random_range(FIGURE_EIGHT_MUTE.0..=FIGURE_EIGHT_MUTE.1);
            let budget = d + 2 * FIGURE_EIGHT_STEP_TIMEOUT;
            let leasing = |l: &usize| {
                let n = &self.nodes[*l];
                n.replica
                    .as_ref()
                    .is_some_and(|r| r.has_lease(self.reading(*l)))
            };
            let three = self.nodes.len() == 3
                && self.nodes.iter().all(|n| n.replica.is_some())
                && self.net.blocked.is_empty();
            if let Some(l) = leader
                .filter(leasing)
                .filter(|_| three && self.now().0 + budget < quiet_until)
            {
                let id = self.nodes[l].id;
                self.trace(TraceKind::Fault, &[Party::Node(id)], || {
                    format!(
                        "figure 8: n{id} (the leader) writes unheard for {} ms",
                        d / MS
                    )
                });
                self.mute(l, true);
                let from = self.nodes[l].replica.as_ref().map_or(0, |r| r.last_slot());
                self.figure_eight = FigureEight::Muted { first: l, from };
                self.schedule(d, Event::Script);
            }
        }
        Ok(())
    }

    /// The edge pause (see [`EDGE_PAUSES`]) under leader `leader`, if it
    /// leads at least two other voters, every replica is up, the network
    /// whole, no other pause or Figure-8 schedule under way, and the heal
    /// (`quiet_until`) far enough. The campaigner is the follower whose
    /// election timer runs out last; the leader's link to it is cut now,
    /// and the pause timed at [`Event::EdgeStep`].
    fn edge_pause(&mut self, leader: Option<usize>, quiet_until: u64) {
        let Some(l) = leader else {
            return;
        };
        let budget = EDGE_SETTLE + ELECTION_MAX + LEADER_PAUSE.1;
        let calm = self.figure_eight == FigureEight::Idle
            && self.now() >= self.clients_quiet_until
            && self.now() >= self.edge_calm_until
            && self.net.blocked.is_empty()
            && self
                .nodes
                .iter()
                .all(|n| n.replica.is_some() && n.paused_until.is_none())
            && self.now().0 + budget < quiet_until;
        let id = self.nodes[l].id;
        let voters: Vec<NodeId> = self.nodes[l]
            .replica
            .as_ref()
            .map(|r| r.membership().voters.clone())
            .unwrap_or_default();
        let followers: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| i != l && voters.contains(&self.nodes[i].id))
            .collect();
        if !calm || followers.len() < 2 {
            return;
        }
        let remaining = |i: usize| {
            self.nodes[i].replica.as_ref().map_or(0, |r| {
                r.next_deadline().nanos_since(self.reading(i).midpoint())
            })
        };
        // The campaigner's log must be as long as the others' (else they
        // refuse it their votes).
        let last = |i: usize| self.nodes[i].replica.as_ref().map_or(0, |r| r.last_slot());
        let longest = followers.iter().map(|&i| last(i)).max().unwrap_or(0);
        let Some(a) = followers
            .iter()
            .copied()
            .filter(|&i| last(i) == longest)
            .max_by_key(|&i| remaining(i))
        else {
            return;
        };
        let campaigner = self.nodes[a].id;
        for i in 0..self.nodes.len() {
            self.nodes[i].edge = Some(if i == l {
                EdgeClock {
                    ahead: false,
                    epsilon: Some(EDGE_NARROW_EPSILON),
                }
            } else if i == a {
                EdgeClock {
                    ahead: true,
                    epsilon: Some(EDGE_NARROW_EPSILON),
                }
            } else {
                let eps = self
                    .windows
                    .edge_rng
                    .random_range(EDGE_WIDE_EPSILON.0..=EDGE_WIDE_EPSILON.1);
                EdgeClock {
                    ahead: false,
                    epsilon: Some(eps),
                }
            });
        }
        self.trace(
            TraceKind::Fault,
            &[Party::Node(id), Party::Node(campaigner)],
            || {
                format!(
                    "edge pause: clocks at the edges of their ε (n{id} narrow, n{campaigner} \
                     ahead, the others behind with a wide ε); leader n{id} goes quiet, \
                     unheard by n{campaigner}"
                )
            },
        );
        self.clients_quiet_until = self.now().saturating_add(budget);
        self.edge_calm_until = self.now().saturating_add(budget);
        self.net.blocked.insert((id, campaigner));
        self.schedule(
            EDGE_SETTLE,
            Event::EdgeStep {
                leader: l,
                campaigner: a,
            },
        );
    }

    /// [`Event::EdgeStep`]: the leader `l` pauses now, or after a while,
    /// so that `a`'s election timer runs out
    /// [`EDGE_CAMPAIGN_AFTER_PAUSE`] after it; if `a`'s timer is too
    /// near, or either is no longer where the window left it, the window
    /// closes.
    fn edge_step(&mut self, l: usize, a: usize) {
        let (id, campaigner) = (self.nodes[l].id, self.nodes[a].id);
        let leads = self.nodes[l]
            .replica
            .as_ref()
            .is_some_and(|r| r.role() == Role::Leader);
        let remaining = self.nodes[a]
            .replica
            .as_ref()
            .filter(|r| r.role() == Role::Follower && r.leader() == Some(id))
            .map(|r| r.next_deadline().nanos_since(self.reading(a).midpoint()));
        let last = |i: usize| self.nodes[i].replica.as_ref().map_or(0, |r| r.last_slot());
        let longest = (0..self.nodes.len())
            .filter(|&i| i != l)
            .all(|i| last(i) <= last(a));
        let wait = remaining
            .filter(|_| leads && longest && self.faults_on)
            .and_then(|r| r.checked_sub(EDGE_CAMPAIGN_AFTER_PAUSE))
            .filter(|w| w + EDGE_SETTLE >= EDGE_MIN_QUIET);
        let Some(w) = wait else {
            self.trace(TraceKind::Fault, &[Party::Node(id)], || {
                format!(
                    "edge pause: closed, n{campaigner}'s election timer too near or its log short"
                )
            });
            self.net.blocked.remove(&(id, campaigner));
            self.clients_quiet_until = self.now();
            self.edge_calm_until = self.now();
            return;
        };
        let d = self
            .windows
            .edge_rng
            .random_range(LEADER_PAUSE.0..=LEADER_PAUSE.1);
        self.clients_quiet_until = self.now().saturating_add(w);
        self.edge_calm_until = self.now().saturating_add(w + d);
        self.schedule(
            w,
            Event::Pause {
                node: l,
                follower: campaigner,
                nanos: d,
            },
        );
    }

    /// Cuts (or restores) every link out of node `i`.
    fn mute(&mut self, i: usize, on: bool) {
        let id = self.nodes[i].id;
        for o in self.nodes.iter().map(|n| n.id).filter(|&o| o != id) {
            if on {
                self.net.blocked.insert((id, o));
            } else {
                self.net.blocked.remove(&(id, o));
            }
        }
    }

    /// Crashes node `i` for `down` (the windows' own crashes, traced with
    /// the window's name `why`).
    fn crash_for(&mut self, i: usize, down: u64, why: &'static str) {
        if self.nodes[i].replica.is_none() {
            return;
        }
        let keep = self.nodes[i].host.crash(&mut self.rng);
        self.nodes[i].replica = None;
        self.nodes[i].paused_until = None;
        self.stats.crashes += 1;
        let id = self.nodes[i].id;
        self.trace(TraceKind::Fault, &[Party::Node(id)], || {
            format!("{why}: crash n{id} (kept {keep} unsynced writes)")
        });
        self.schedule(down, Event::Restart { node: i });
    }

    /// Restarts node `i` now if it is down (the Figure-8 schedule).
    fn restart_now(&mut self, i: usize) -> Result<(), Violation> {
        if self.nodes[i].replica.is_some() {
            return Ok(());
        }
        let id = self.nodes[i].id;
        self.trace(TraceKind::Fault, &[Party::Node(id)], || {
            format!("figure 8: restart n{id}")
        });
        self.boot(i)
    }

    /// A `Script` event: the next step of the Figure-8 schedule.
    fn figure_eight_step(&mut self) -> Result<(), Violation> {
        if !self.faults_on {
            return Ok(());
        }
        match self.figure_eight {
            FigureEight::Muted { first, from } => {
                self.mute(first, false);
                self.crash_for(first, FIGURE_EIGHT_DOWN, "figure 8");
                self.figure_eight = FigureEight::AwaitSecond {
                    first,
                    from,
                    since: self.now(),
                };
                self.schedule(FIGURE_EIGHT_STEP_TIMEOUT, Event::Script);
            }
            FigureEight::SecondWon {
                first,
                from,
                second,
            } => {
                self.mute(second, false);
                self.crash_for(second, FIGURE_EIGHT_DOWN, "figure 8");
                self.restart_now(first)?;
                self.figure_eight = FigureEight::AwaitReturn {
                    first,
                    from,
                    second,
                    since: self.now(),
                };
                self.schedule(FIGURE_EIGHT_STEP_TIMEOUT, Event::Script);
            }
            FigureEight::Returned { second, .. } => {
                // No acknowledgement came in time: give up.
                self.restart_now(second)?;
                self.figure_eight = FigureEight::Idle;
            }
            FigureEight::AwaitSecond { first, since, .. }
                if self.now().nanos_since(since) >= FIGURE_EIGHT_STEP_TIMEOUT =>
            {
                self.restart_now(first)?;
                self.figure_eight = FigureEight::Idle;
            }
            FigureEight::AwaitReturn {
                first,
                second,
                since,
                ..
            } if self.now().nanos_since(since) >= FIGURE_EIGHT_STEP_TIMEOUT => {
                self.restart_now(first)?;
                self.restart_now(second)?;
                self.figure_eight = FigureEight::Idle;
            }
            _ => {}
        }
        Ok(())
    }

    /// Node `i` just won an election (faults on): the Figure-8 schedule
    /// may be waiting for it.
    fn figure_eight_on_leader(&mut self, i: usize) {
        if let FigureEight::Muted { first, from } = self.figure_eight {
            if i != first {
                // Elected before the first leader's crash: crash it now.
                self.mute(first, false);
                self.crash_for(first, FIGURE_EIGHT_DOWN, "figure 8");
                self.figure_eight = FigureEight::AwaitSecond {
                    first,
                    from,
                    since: self.now(),
                };
            }
        }
        match self.figure_eight {
            FigureEight::AwaitSecond { first, from, .. } if i != first => {
                // Its no-op is written to its own disk only.
                self.mute(i, true);
                let d = self
                    .windows
                    .rng
                    .random_range(FIGURE_EIGHT_SECOND_CRASH.0..=FIGURE_EIGHT_SECOND_CRASH.1);
                self.figure_eight = FigureEight::SecondWon {
                    first,
                    from,
                    second: i,
                };
                self.schedule(d, Event::Script);
            }
            FigureEight::AwaitReturn {
                first,
                from,
                second,
                ..
            } if i == first => {
                let noop = self.nodes[i].replica.as_ref().map_or(0, |r| r.last_slot());
                self.figure_eight = FigureEight::Returned {
                    first,
                    from,
                    noop,
                    second,
                };
                self.schedule(FIGURE_EIGHT_STEP_TIMEOUT, Event::Script);
            }
            _ => {}
        }
    }

    /// The leader-hand-over fault: the leader is asked to pass its
    /// leadership on, as a draining node's would be (docs/design.md §3).
    fn maybe_hand_over(&mut self) -> Result<(), Violation> {
        let others: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        let Some(to) = self.hand_overs.next(&others) else {
            return Ok(());
        };
        let Some(l) = self.leader_hint.and_then(|l| self.index(l)) else {
            return Ok(());
        };
        self.hand_over(l, to)
    }

    /// Asks node `l` to hand over to `to`, if it leads and the heal is not
    /// near.
    fn hand_over(&mut self, l: usize, to: Option<NodeId>) -> Result<(), Violation> {
        if !self.faults_on
            || self.now().saturating_add(HAND_OVER_QUIET) >= self.heal_at
            || self.nodes[l].paused_until.is_some()
        {
            return Ok(());
        }
        let leads = self.nodes[l]
            .replica
            .as_ref()
            .is_some_and(|r| r.role() == Role::Leader);
        if !leads {
            return Ok(());
        }
        let leader = self.nodes[l].id;
        let mut parties = vec![Party::Node(leader)];
        parties.extend(to.map(Party::Node));
        self.trace(TraceKind::Fault, &parties, || trace::hand_over(leader, to));
        self.step(l, Input::HandOver { to })
    }

    /// Crashes node `i` (if up): it keeps a random prefix of its unsynced
    /// writes and restarts after a random downtime.
    fn crash(&mut self, i: usize) {
        if self.nodes[i].replica.is_none() {
            return;
        }
        let keep = self.nodes[i].host.crash(&mut self.rng);
        self.nodes[i].replica = None;
        self.nodes[i].paused_until = None;
        self.stats.crashes += 1;
        if !self.faults_on {
            self.elections_after_heal.crashed();
        }
        let id = self.nodes[i].id;
        self.trace(TraceKind::Fault, &[Party::Node(id)], || {
            format!("crash n{id} (kept {keep} unsynced writes)")
        });
        let down = downtime(&mut self.rng);
        self.schedule(down, Event::Restart { node: i });
    }

    fn change_membership(&mut self) -> Result<(), Violation> {
        let Some(l) = self.leader_hint.and_then(|l| self.index(l)) else {
            return Ok(());
        };
        if self.nodes[l].paused_until.is_some() {
            return Ok(());
        }
        let now = self.reading(l);
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
        if r.propose_membership(now, change, &mut out).is_ok() {
            let (what, target) = match change {
                MembershipChange::AddVoter(t) => ("add", t),
                MembershipChange::RemoveVoter(t) => ("remove", t),
            };
            let leader = self.nodes[l].id;
            self.trace(
                TraceKind::Fault,
                &[Party::Node(leader), Party::Node(target)],
                || format!("membership: n{leader} proposes to {what} voter n{target}"),
            );
        }
        self.process(l, out)
    }

    /// Invariants checked after every event.
    fn check_step(&mut self) -> Result<(), Violation> {
        // Lease disjointness, at this instant of true time.
        let holders: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i]
                    .replica
                    .as_ref()
                    .is_some_and(|r| r.has_lease(self.reading(i)))
            })
            .map(|i| self.nodes[i].id)
            .collect();
        check_one_lease(&holders).map_err(|e| self.violation(rules::LEASE_DISJOINT, e))
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

/// A code for an event's kind and target, for the run digest.
fn event_code(ev: &Event) -> u64 {
    match ev {
        Event::Deliver(m) => 100 + m.to * 10 + m.from,
        Event::Tick { node, .. } => 400 + *node as u64,
        Event::Sync { node, .. } => 500 + *node as u64,
        Event::Restart { node } => 600 + *node as u64,
        Event::Crash { node, .. } => 650 + *node as u64,
        Event::HandOver { node, .. } => 680 + *node as u64,
        Event::Pause { node, .. } => 670 + *node as u64,
        Event::Resume { node } => 690 + *node as u64,
        Event::Script => 695,
        Event::EdgeStep { .. } => 696,
        Event::Client => 700,
        Event::Fault => 800,
        Event::Heal => 900,
    }
}
