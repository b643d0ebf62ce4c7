//! What every simulated cluster shares: virtual time and its event queue,
//! the seeded fault mix, a network that drops, duplicates, delays and
//! partitions, and the protocol timing used in simulation.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use meridian_paxos::{MemStorage, NodeId, Storage};
use meridian_truetime::{ClockModel, SimulatedTrueTime, Timestamp, VirtualClock};
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;

/// Virtual time at which every run starts (2026-01-01T00:00:00Z), so
/// timestamps look like real ones.
pub(crate) const EPOCH: u64 = 1_767_225_600_000_000_000;
/// One millisecond in nanoseconds.
pub(crate) const MS: u64 = 1_000_000;

/// Protocol timing used in simulation: short, so a run sees many elections.
pub(crate) const HEARTBEAT: u64 = 20 * MS;
/// Lower bound of the election timeout.
pub(crate) const ELECTION_MIN: u64 = 150 * MS;
/// Upper bound of the election timeout.
pub(crate) const ELECTION_MAX: u64 = 300 * MS;
/// Longer than an election, so a deposed leader's lease outlives the
/// election of its successor (the window `lease-overlap` needs).
pub(crate) const LEASE: u64 = 400 * MS;
/// Virtual time with faults injected.
pub(crate) const DEFAULT_FAULT_PHASE: u64 = 6_000 * MS;
/// After faults stop, the cluster must make progress within this: waiting
/// out a lease, a few election rounds and catch-up.
pub(crate) const LIVENESS_BOUND: u64 = LEASE + 6 * ELECTION_MAX + 1_000 * MS;
/// Clients stop this long before the end so followers learn the last
/// commits (the commit index travels with the next heartbeat).
pub(crate) const CLIENT_QUIET: u64 = 500 * MS;
/// Interval between fault decisions.
pub(crate) const FAULT_TICK: u64 = 40 * MS;
/// A hard bound on events per run, so a livelock cannot hang the swarm.
pub(crate) const MAX_EVENTS: u64 = 5_000_000;
/// Message delay once faults have healed.
pub(crate) const HEALED_DELAY: (u64, u64) = (MS / 2, 2 * MS);
/// How late a straggling message arrives (see [`Faults::straggle`]).
pub(crate) const STRAGGLE_DELAY: (u64, u64) = (100 * MS, 900 * MS);
/// Probability per fault tick that standing partitions heal on their own.
const PARTITION_HEAL: f64 = 0.15;

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
    /// Membership changes happen in this run (Paxos layer only).
    pub membership: bool,
    /// Log compaction (and so snapshot installs) happens in this run.
    pub compaction: bool,
    /// Probability a message straggles: arrives `STRAGGLE_DELAY` late,
    /// long after its sender may have been deposed (delayed accepts from
    /// old leaders, late promises and votes).
    pub straggle: f64,
}

impl Faults {
    pub(crate) fn draw(rng: &mut SmallRng) -> Faults {
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
            straggle: [0.0, 0.003, 0.02][rng.random_range(0..3)],
        }
    }
}

/// Per fault tick: probability that a group's leader is told to hand its
/// leadership over (a node draining before a shutdown), one drawn per seed.
const HAND_OVER_PROBABILITIES: [f64; 3] = [0.0, 0.04, 0.12];
/// Per seed: probability that a new leader is asked to hand over within
/// [`HAND_OVER_AFTER_ELECTION_WITHIN`] of its election, while it may still
/// be waiting out its predecessor's lease (a deposed leader's, cut off
/// and still serving): the window where the lease wait matters most.
const HAND_OVERS_AFTER_ELECTION: [f64; 3] = [0.0, 0.0, 0.25];
/// How soon after its election a new leader may be asked to hand over.
pub(crate) const HAND_OVER_AFTER_ELECTION_WITHIN: u64 = 40 * MS;
/// No hand-over starts this close to the heal: one still in progress then
/// would elect a leader after the heal, which the liveness rule counts.
pub(crate) const HAND_OVER_QUIET: u64 = 2 * ELECTION_MAX;

/// The leader hand-over fault (docs/design.md §3): how often a leader is
/// asked to hand over, and to whom. Drawn from its own stream of the seed,
/// as clock excursions are, so the draws of the other faults are the
/// same as without it.
#[derive(Debug)]
pub(crate) struct HandOvers {
    rng: SmallRng,
    /// Per fault tick.
    pub(crate) probability: f64,
    /// Per election (faults on).
    pub(crate) after_election: f64,
}

impl HandOvers {
    pub(crate) fn draw(seed: u64) -> HandOvers {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x4a2d_0fe2_u64.rotate_left(24));
        let probability =
            HAND_OVER_PROBABILITIES[rng.random_range(0..HAND_OVER_PROBABILITIES.len())];
        let after_election =
            HAND_OVERS_AFTER_ELECTION[rng.random_range(0..HAND_OVERS_AFTER_ELECTION.len())];
        HandOvers {
            rng,
            probability,
            after_election,
        }
    }

    /// A replica just became leader (faults on): the delay after which to
    /// ask it to hand over, and the target to name, if it is to be asked.
    pub(crate) fn after_election(&mut self, others: &[NodeId]) -> Option<(u64, Option<NodeId>)> {
        if self.after_election == 0.0 || !self.rng.random_bool(self.after_election) {
            return None;
        }
        let delay = self.rng.random_range(0..=HAND_OVER_AFTER_ELECTION_WITHIN);
        let to = if others.is_empty() || self.rng.random_bool(0.5) {
            None
        } else {
            Some(others[self.rng.random_range(0..others.len())])
        };
        Some((delay, to))
    }

    /// A group in `1..=groups`, for a hand-over aimed at one of several.
    pub(crate) fn pick(&mut self, groups: u64) -> u64 {
        self.rng.random_range(1..=groups)
    }

    /// Whether a leader hands over at this fault tick and, if so, the
    /// target it names: `None` to let it choose (half the time), else one
    /// of `others` (the other replicas, voters or not: a target that is no
    /// voter is ignored by the leader).
    pub(crate) fn next(&mut self, others: &[NodeId]) -> Option<Option<NodeId>> {
        if self.probability == 0.0 || !self.rng.random_bool(self.probability) {
            return None;
        }
        if others.is_empty() || self.rng.random_bool(0.5) {
            return Some(None);
        }
        Some(Some(others[self.rng.random_range(0..others.len())]))
    }
}

/// The clock error model of the calm seeds: offsets and drift stay inside
/// ε (1 ms base, 200 ppm, 10 s sync period, so ε saws from 1 to 3 ms).
pub(crate) const CLOCK_MODEL: ClockModel = ClockModel {
    base_epsilon_nanos: MS,
    max_drift_ppm: 200,
    sync_period_nanos: 10_000 * MS,
};

/// Largest base ε of a [`ClockProfile::Wide`] seed: a real fraction (15 %)
/// of the lease, so lease and commit-wait arithmetic off by an ε shows.
pub(crate) const WIDE_EPSILON_MAX: u64 = 60 * MS;

/// Base ε of a [`ClockProfile::Mixed`] node.
const MIXED_EPSILONS: [u64; 4] = [MS / 5, MS, 3 * MS, 8 * MS];
/// Sync periods of a [`ClockProfile::Mixed`] node.
const MIXED_PERIODS: [u64; 3] = [700 * MS, 3_000 * MS, 10_000 * MS];
/// Sync periods of a [`ClockProfile::Wide`] node.
const WIDE_PERIODS: [u64; 2] = [700 * MS, 3_000 * MS];
/// Drift bounds of mixed and wide nodes (wide ones never 0).
const DRIFTS_PPM: [u64; 4] = [0, 50, 200, 500];

/// The largest ε a model drawn from these choices can report.
fn worst(epsilons: &[u64], drifts: &[u64], periods: &[u64]) -> u64 {
    let max = |xs: &[u64]| xs.iter().copied().max().unwrap_or(0);
    ClockModel {
        base_epsilon_nanos: max(epsilons),
        max_drift_ppm: max(drifts),
        sync_period_nanos: max(periods),
    }
    .max_epsilon_nanos()
}

/// How the clocks of one run's nodes err, drawn per seed. Real clocks
/// resynchronise at different moments and have different ε; a bug that
/// mixes up `earliest` and `latest` is invisible while every node has the
/// same ε at every instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClockProfile {
    /// Every node follows the same model and resyncs at the same instants.
    InStep,
    /// The same model, each node with its own sync phase.
    Staggered,
    /// Each node its own base ε (0.2–8 ms), drift, sync period and phase.
    Mixed,
    /// Each node a base ε of 10–60 ms (a fraction of the lease), its own
    /// drift, period and phase.
    Wide,
}

/// The clocks of one run: the profile and, per node, its model and phase.
#[derive(Clone, Debug)]
pub(crate) struct ClockPlan {
    /// The profile drawn.
    pub(crate) profile: ClockProfile,
    base: ClockModel,
    seed: u64,
    broken: bool,
}

impl ClockPlan {
    /// Draws the profile of run `seed`; `base` is the model of in-step and
    /// staggered seeds. With `broken`, replicas' clocks err beyond their ε.
    pub(crate) fn draw(rng: &mut SmallRng, base: ClockModel, seed: u64, broken: bool) -> ClockPlan {
        let profile = match rng.random_range(0..6) {
            0 => ClockProfile::InStep,
            1 | 2 => ClockProfile::Staggered,
            3 | 4 => ClockProfile::Mixed,
            _ => ClockProfile::Wide,
        };
        ClockPlan {
            profile,
            base,
            seed,
            broken,
        }
    }

    /// The largest ε any node of this plan reports.
    pub(crate) fn max_epsilon_nanos(&self) -> u64 {
        match self.profile {
            ClockProfile::InStep | ClockProfile::Staggered => self.base.max_epsilon_nanos(),
            ClockProfile::Mixed => worst(&MIXED_EPSILONS, &DRIFTS_PPM, &MIXED_PERIODS),
            ClockProfile::Wide => worst(&[WIDE_EPSILON_MAX], &DRIFTS_PPM, &WIDE_PERIODS),
        }
    }

    /// Clock of node `i` (replica or client) over `clock`. Its model and
    /// phase are a pure function of (seed, i), so they do not depend on
    /// the order nodes are built in. `replica` clocks break the bound when
    /// the plan says so; clients' never do.
    pub(crate) fn node(&self, clock: &VirtualClock, i: u64, replica: bool) -> SimulatedTrueTime {
        let mut h = SmallRng::seed_from_u64(self.seed.rotate_left(29) ^ (i + 1));
        let pick = |h: &mut SmallRng, xs: &[u64]| xs[h.random_range(0..xs.len())];
        let model = match self.profile {
            ClockProfile::InStep | ClockProfile::Staggered => self.base,
            ClockProfile::Mixed => ClockModel {
                base_epsilon_nanos: pick(&mut h, &MIXED_EPSILONS),
                max_drift_ppm: pick(&mut h, &DRIFTS_PPM),
                sync_period_nanos: pick(&mut h, &MIXED_PERIODS),
            },
            ClockProfile::Wide => ClockModel {
                base_epsilon_nanos: h.random_range(10 * MS..=WIDE_EPSILON_MAX),
                max_drift_ppm: pick(&mut h, &DRIFTS_PPM[1..]),
                sync_period_nanos: pick(&mut h, &WIDE_PERIODS),
            },
        };
        debug_assert!(model.max_epsilon_nanos() <= self.max_epsilon_nanos());
        let phase = match self.profile {
            ClockProfile::InStep => 0,
            _ => h.random_range(0..model.sync_period_nanos),
        };
        let tt = SimulatedTrueTime::new(clock.clone(), model, self.seed.rotate_left(17) ^ (i + 1))
            .with_phase(phase);
        tt.set_bound_broken(self.broken && replica);
        tt
    }
}

/// Election timeout spread of a lockstep seed: every replica's timer
/// nearly equal, so followers of a dead leader campaign at once, in the
/// same round.
pub(crate) const LOCKSTEP_ELECTION_SPREAD: u64 = 5 * MS;
/// Per seed: probability that a replica is crashed right after it becomes
/// leader (within [`NEW_LEADER_CRASH_WITHIN`]).
const NEW_LEADER_CRASHES: [f64; 3] = [0.0, 0.0, 0.2];
/// How soon after its election a new leader may be crashed: between
/// persisting its no-op and counting it.
pub(crate) const NEW_LEADER_CRASH_WITHIN: u64 = 3 * MS;
/// Liveness: leaders a group may elect after faults have healed, counting
/// from the heal (or from the last crash after it): one if the heal left
/// it without a leader, and one more for the rare case the first is
/// deposed by a candidate with a more up-to-date log that campaigned in
/// the same moment. Same-round duels no longer add one (a candidate yields
/// to a leader of its own round, `docs/paxos.md`); the long run
/// `at_most_one_election_after_the_heal_on_nearly_every_paxos_seed`
/// (`sim/tests/swarm.rs`, `--ignored`) checks that one suffices on at
/// least 99.9 % of 20,000 seeds. A stale or disruptive node causes more.
pub(crate) const MAX_ELECTIONS_AFTER_HEAL: usize = 2;

/// Schedules aimed at protocol corners, drawn per seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Adversary {
    /// Election timers nearly equal on every replica (concurrent
    /// campaigns in one round).
    pub(crate) lockstep: bool,
    /// Probability of crashing a replica just after it becomes leader.
    pub(crate) crash_new_leader: f64,
}

impl Adversary {
    pub(crate) fn draw(rng: &mut SmallRng) -> Adversary {
        Adversary {
            lockstep: rng.random_bool(0.15),
            crash_new_leader: NEW_LEADER_CRASHES[rng.random_range(0..NEW_LEADER_CRASHES.len())],
        }
    }

    /// Applies the timer schedule to a replica's Paxos configuration.
    pub(crate) fn configure(&self, c: &mut meridian_paxos::Config) {
        if self.lockstep {
            c.election_max_nanos = c.election_min_nanos + LOCKSTEP_ELECTION_SPREAD;
        }
    }

    /// A replica just became leader (faults on): the delay after which to
    /// crash it, if it is to be crashed.
    pub(crate) fn new_leader_crash(&self, rng: &mut SmallRng) -> Option<u64> {
        rng.random_bool(self.crash_new_leader)
            .then(|| rng.random_range(0..=NEW_LEADER_CRASH_WITHIN))
    }
}

/// The leaderships a group's replicas won after the heal, by ballot
/// `(round, node)`: two candidates that both win one round are two
/// elections.
#[derive(Debug, Default)]
pub(crate) struct ElectionsAfterHeal(BTreeSet<(u64, NodeId)>);

impl ElectionsAfterHeal {
    /// Node `id` won `round` after the heal; an error once more than
    /// [`MAX_ELECTIONS_AFTER_HEAL`] leaders were elected.
    pub(crate) fn record(&mut self, id: NodeId, round: u64) -> Result<(), String> {
        if self.0.insert((round, id)) && self.0.len() > MAX_ELECTIONS_AFTER_HEAL {
            let won: Vec<String> = self.0.iter().map(|(r, n)| format!("b{r}.{n}")).collect();
            return Err(format!(
                "node {id} won round {round}, the group's election number {} since the heal \
                 (ballots {})",
                self.0.len(),
                won.join(", ")
            ));
        }
        Ok(())
    }

    /// A replica crashed after the heal: elections count afresh from here
    /// (its group may need a new leader).
    pub(crate) fn crashed(&mut self) {
        self.0.clear();
    }

    /// Elections counted so far.
    pub(crate) fn count(&self) -> u64 {
        self.0.len() as u64
    }
}

/// The Paxos configuration of replica `id` in simulation.
pub(crate) fn paxos_config(
    id: NodeId,
    voters: Vec<NodeId>,
    bug: Option<meridian_paxos::PlantedBug>,
) -> meridian_paxos::Config {
    let mut c = meridian_paxos::Config::new(id, voters);
    c.heartbeat_nanos = HEARTBEAT;
    c.election_min_nanos = ELECTION_MIN;
    c.election_max_nanos = ELECTION_MAX;
    c.lease_nanos = LEASE;
    c.max_batch_entries = 16;
    c.max_inflight = 8;
    c.max_pending = 1_000;
    c.planted_bug = bug;
    c
}

/// Virtual time and the events scheduled on it, run in (time, insertion)
/// order.
pub(crate) struct EventQueue<E> {
    clock: VirtualClock,
    heap: BinaryHeap<Reverse<(Timestamp, u64, usize)>>,
    events: Vec<Option<E>>,
    free: Vec<usize>,
    seq: u64,
}

impl<E> EventQueue<E> {
    pub(crate) fn new(clock: VirtualClock) -> EventQueue<E> {
        EventQueue {
            clock,
            heap: BinaryHeap::new(),
            events: Vec::new(),
            free: Vec::new(),
            seq: 0,
        }
    }

    /// True time now.
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Nanoseconds since the run began.
    pub(crate) fn at(&self) -> u64 {
        self.now().0 - EPOCH
    }

    /// Runs `ev` `delay` nanoseconds from now.
    pub(crate) fn schedule(&mut self, delay: u64, ev: E) {
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
        self.heap.push(Reverse((t, self.seq, idx)));
    }

    /// Moves the clock to `t` (if later) with nothing run: for a driver
    /// that runs until a time, not until an event.
    pub(crate) fn advance_to(&mut self, t: Timestamp) {
        if t > self.now() {
            self.clock.set(t);
        }
    }

    /// The next event due at or before `end`, with the clock moved to it;
    /// `None` (and the event kept) if the next one is due later.
    pub(crate) fn pop_until(&mut self, end: Timestamp) -> Option<E> {
        let &Reverse((t, _, idx)) = self.heap.peek()?;
        if t > end {
            // Not due yet: it stays queued for a later call.
            return None;
        }
        self.heap.pop();
        let ev = self.events[idx].take().expect("event present");
        self.free.push(idx);
        self.clock.set(t);
        Some(ev)
    }
}

/// The simulated network's faults: which links are cut, and what happens
/// to each message sent.
#[derive(Debug, Default)]
pub(crate) struct Network {
    /// Cut links, `(from, to)`.
    pub(crate) blocked: BTreeSet<(NodeId, NodeId)>,
    /// Links cut for one group's Paxos messages only, `(group, from, to)`:
    /// a replica cut off from its own group while its node still talks
    /// to the rest of the cluster (the cluster layer's way to keep one
    /// replica's proposals from being chosen on a node hosting several).
    pub(crate) group_cuts: BTreeSet<(u64, NodeId, NodeId)>,
    /// Group cuts that last their set time (a split's child leader cut off
    /// from its group, mended by its own event or the heal): the random
    /// partition ticks that mend the others leave them.
    pub(crate) timed_cuts: BTreeSet<(u64, NodeId, NodeId)>,
}

impl Network {
    /// The delays of the copies of a message `from → to` that arrive: none
    /// if it is dropped or the link is cut, two if it is duplicated.
    pub(crate) fn deliveries(
        &self,
        rng: &mut SmallRng,
        faults: &Faults,
        faults_on: bool,
        from: NodeId,
        to: NodeId,
    ) -> Vec<u64> {
        if self.blocked.contains(&(from, to)) {
            return Vec::new();
        }
        if faults_on && rng.random_bool(faults.drop) {
            return Vec::new();
        }
        let copies = if faults_on && rng.random_bool(faults.duplicate) {
            2
        } else {
            1
        };
        let (lo, hi) = if !faults_on {
            HEALED_DELAY
        } else if rng.random_bool(faults.straggle) {
            STRAGGLE_DELAY
        } else {
            (faults.delay_min, faults.delay_max)
        };
        (0..copies).map(|_| rng.random_range(lo..=hi)).collect()
    }

    /// One fault tick's partition decision among `ids`: standing
    /// partitions may heal, then with probability `faults.partition` a new
    /// one isolates the leader (both ways), a random node (both ways),
    /// makes a random node unheard (one way), or cuts the link between the
    /// leader and one follower. Returns `(kind, victim)` of a new
    /// partition.
    pub(crate) fn maybe_partition(
        &mut self,
        rng: &mut SmallRng,
        faults: &Faults,
        ids: &[NodeId],
        leader: Option<NodeId>,
    ) -> Option<(u32, NodeId)> {
        if (!self.blocked.is_empty() || !self.group_cuts.is_empty())
            && rng.random_bool(PARTITION_HEAL)
        {
            self.blocked.clear();
            self.group_cuts.clear();
        }
        if !rng.random_bool(faults.partition) {
            return None;
        }
        let kind = rng.random_range(0..4);
        if let (3, Some(l)) = (kind, leader) {
            // Cut one link of the leader's, both ways: with another
            // follower down or cut off, the last member of its quorum.
            let others: Vec<NodeId> = ids.iter().copied().filter(|&i| i != l).collect();
            if others.is_empty() {
                return None;
            }
            let f = others[rng.random_range(0..others.len())];
            self.blocked.insert((l, f));
            self.blocked.insert((f, l));
            return Some((kind, f));
        }
        let victim = match (kind, leader) {
            (0, Some(l)) => l,
            _ => ids[rng.random_range(0..ids.len())],
        };
        for &other in ids {
            if other == victim {
                continue;
            }
            self.blocked.insert((victim, other));
            if kind != 2 {
                self.blocked.insert((other, victim));
            }
        }
        Some((kind, victim))
    }
}

/// Counts an event about to be handled at `at` (ns since the run began)
/// with kind-and-target `code`: into the run's digest and event count, and
/// as the virtual time a panic would be reported at. Errors once the run
/// exceeds [`MAX_EVENTS`] (a livelock cannot hang the swarm).
pub(crate) fn count_event(stats: &mut crate::RunStats, at: u64, code: u64) -> Result<(), String> {
    stats.events += 1;
    stats.digest = digest(stats.digest, at, code);
    crate::set_now(at);
    if stats.events > MAX_EVENTS {
        return Err("event budget exhausted (livelock?)".into());
    }
    Ok(())
}

/// Folds an event (its time and a code for its kind and target) into a
/// run's digest.
pub(crate) fn digest(state: u64, at: u64, code: u64) -> u64 {
    let mut x = state ^ at.rotate_left(21) ^ code.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^ (x >> 29)
}

/// How long a crashed node stays down.
pub(crate) fn downtime(rng: &mut SmallRng) -> u64 {
    rng.random_range(10 * MS..600 * MS)
}

/// Disk sync latency for one sync.
pub(crate) fn sync_delay(rng: &mut SmallRng, faults: &Faults) -> u64 {
    rng.random_range(MS / 20..=faults.disk_max)
}

/// The simulated machine under one replica: its disk, and the bookkeeping
/// that makes timers and syncs scheduled before a crash (or superseded by
/// a later timer) harmless.
#[derive(Debug, Default)]
pub(crate) struct Host {
    /// The disk; survives crashes, losing unsynced writes.
    pub(crate) storage: MemStorage,
    /// Bumped at every crash: events of an earlier incarnation are void.
    pub(crate) generation: u64,
    written_seq: u64,
    sync_scheduled: bool,
    /// When the one live timer fires.
    tick_at: Option<Timestamp>,
    /// The Paxos write timestamp this replica had assigned or seen at its
    /// last step.
    last_ts_seen: Timestamp,
}

impl Host {
    /// A fresh incarnation after a (re)start: no sync or timer pending.
    pub(crate) fn boot(&mut self, assigned_ts: Timestamp) {
        self.written_seq = 0;
        self.sync_scheduled = false;
        self.tick_at = None;
        self.last_ts_seen = assigned_ts;
    }

    /// Writes a persistence request. Returns the delay after which a sync
    /// must run, if none is scheduled yet (one sync covers every write
    /// before it: group commit).
    pub(crate) fn persist(
        &mut self,
        req: &meridian_paxos::PersistRequest,
        rng: &mut SmallRng,
        faults: &Faults,
    ) -> Option<u64> {
        self.storage.write(req).expect("memory storage cannot fail");
        self.written_seq = req.seq;
        if self.sync_scheduled {
            return None;
        }
        self.sync_scheduled = true;
        Some(sync_delay(rng, faults))
    }

    /// A sync event of incarnation `generation` runs: the highest durable
    /// sequence number to report, or `None` if the event is void.
    pub(crate) fn sync(&mut self, generation: u64) -> Option<u64> {
        if generation != self.generation {
            return None;
        }
        self.sync_scheduled = false;
        self.storage.sync().expect("memory storage cannot fail");
        Some(self.written_seq)
    }

    /// A timer event of incarnation `generation` set for `at` fires:
    /// whether it is the live one.
    pub(crate) fn tick(&mut self, generation: u64, at: Timestamp) -> bool {
        if generation != self.generation || self.tick_at != Some(at) {
            return false;
        }
        self.tick_at = None;
        true
    }

    /// After a step: the replica wants a tick `wait` from `now` (true
    /// time). Returns the time to schedule a timer for, unless an earlier
    /// one is live.
    pub(crate) fn arm(&mut self, now: Timestamp, wait: u64) -> Option<Timestamp> {
        let when = now.saturating_add(wait);
        if self.tick_at.is_some_and(|t| t <= when) {
            return None;
        }
        self.tick_at = Some(when);
        Some(when)
    }

    /// A crash: keeps a random prefix of the unsynced writes (as a disk
    /// whose cache was partly flushed would) and voids pending events.
    /// Returns how many writes were kept.
    pub(crate) fn crash(&mut self, rng: &mut SmallRng) -> usize {
        let keep = rng.random_range(0..=self.storage.unsynced_len());
        self.storage.crash(keep);
        self.generation += 1;
        keep
    }

    /// Spanner §4.1.2: a leader's newly assigned Paxos write timestamp must
    /// exceed every timestamp assigned before it in true time, by any
    /// leader (`max_assigned` across the group).
    pub(crate) fn check_assigned(
        &mut self,
        node: NodeId,
        leading: bool,
        ts: Timestamp,
        max_assigned: &mut Timestamp,
    ) -> Result<(), String> {
        let fresh = leading && ts > self.last_ts_seen;
        self.last_ts_seen = ts;
        if !fresh {
            return Ok(());
        }
        if ts <= *max_assigned {
            return Err(format!(
                "node {node} assigned ts {} not above {} assigned earlier",
                ts.0, max_assigned.0
            ));
        }
        *max_assigned = ts;
        Ok(())
    }
}

/// Spanner §4.1.1: at most one replica holds a lease at any true time.
/// `holders` are the replicas that believe they hold one now.
pub(crate) fn check_one_lease(holders: &[NodeId]) -> Result<(), String> {
    if holders.len() > 1 {
        return Err(format!("nodes {holders:?} all hold a lease"));
    }
    Ok(())
}
