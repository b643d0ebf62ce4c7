//! One simulated participant group (three [`GroupReplica`]s) with
//! concurrent clients under faults. Read-write transactions: bank
//! transfers, audits (locking reads, no writes), blind register writes and
//! deletes, and a duty roster whose transactions read several keys and
//! write at most one (the write-skew workload: a roster that must always
//! keep someone on duty). Lock-free: strong read-only transactions and
//! snapshot reads at exact and bounded-stale timestamps, as point reads or
//! as scans of every key range under concurrent writes.
//!
//! Each seed draws its own clocks (see [`ClockPlan`]), record retention
//! (short enough that pruned commit records are queried), crowd size (some
//! seeds run enough clients against small lock queues to reach
//! `Overloaded`) and adversarial schedules: election timers in lockstep
//! (concurrent campaigns in one round) and crashes of a leader right after
//! it is elected (between persisting its no-op and counting it).
//!
//! The cluster layer runs several groups on 5–9 physical nodes, each
//! hosting replicas of several groups (a node's crash, pause, partition or
//! clock fault hits them all), routes keys by range through the clients'
//! cached range tables, and splits ranges online ([`splits`]).
//!
//! Clients talk to replicas over the same faulty network the replicas use
//! among themselves (drops, duplicates, delays; partitions cut only links
//! between replicas). Everything they see goes into a [`History`], checked
//! at the end against the commit log the replicas applied.

use std::collections::BTreeSet;

use bytes::Bytes;
use meridian_participant::{Command, Priority, TxnId, Write};
use meridian_paxos::{Message, NodeId, Payload, Role, Storage};
use meridian_truetime::{
    ClockModel, SimulatedTrueTime, Timestamp, TrueTime, TtInterval, VirtualClock,
};
use meridian_txn::{
    CcMode, GroupId, GroupMessage, GroupReplica, Guest, Input, Output, Participant, ReadAt, ReadOp,
    ReadResult, Reply, Request, RequestId, Response, Term, TxnError, TxnStatus,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::check::{ChosenLog, Violation, rules};
use crate::history::{
    Bank, CommitLog, History, Model, Outcome, ReadRecord, Roster, ScanRecord, TxnRecord,
};
use crate::lists;
use crate::ranges::{self, RangeTable};
use crate::trace::{self, Party, TraceKind, Tracer};
use crate::windows::{Aim, EDGE_PER_MILLE, Windows};
use crate::world::{
    Adversary, CLIENT_QUIET, CLOCK_MODEL, ClockPlan, DEFAULT_FAULT_PHASE, EPOCH,
    ElectionsAfterHeal, EventQueue, FAULT_TICK, Faults, HAND_OVER_QUIET, HandOvers, Host,
    LIVENESS_BOUND, MS, Network, check_one_lease, count_event, downtime, paxos_config,
};
use crate::{Cc, Layer, PlantedBug, RunOptions, RunOutcome, RunStats};

mod future_reads;
mod splits;

/// Replicas per group.
const NODES: u64 = 3;
/// Replicas per group of a cluster seed with membership churn: five, of
/// which voters come and go (never fewer than three).
const CHURN_NODES: u64 = 5;
/// Per fault tick of a churning cluster seed: probability that one
/// group's leader proposes a membership change.
const CHURN_PROBABILITY: f64 = 0.05;
/// Participant groups of a churning cluster seed, each on nodes of its own
/// (drawn per seed; the txn layer runs one).
const CLUSTER_GROUPS: (u64, u64) = (3, 4);
/// Physical nodes of a placed cluster seed (every cluster seed without
/// membership churn), drawn per seed: each hosts replicas of several
/// groups, [`NODES`] replicas per group (`cluster init --replicas 3`).
const CLUSTER_NODES: (u64, u64) = (5, 9);
/// Participant groups of a placed cluster seed (drawn per seed): enough
/// initial ranges for a cut inside the accounts, the roster and the
/// registers.
const PLACED_GROUPS: (u64, u64) = (4, 5);
/// Two-phase commit in simulation: resends (and participants' outcome
/// queries) this often, and votes due this long after the coordinator
/// starts.
const RESEND_INTERVAL: u64 = 50 * MS;
const PREPARE_TIMEOUT: u64 = 1_000 * MS;
/// Each account's starting balance.
const INITIAL_BALANCE: i64 = 100;
/// Registers written blindly (unique values, for the history checker).
const REGISTERS: usize = 4;
/// A client gives up on a request it has no answer to after one of these
/// (drawn per seed: impatient clients retry elsewhere sooner, patient ones
/// are still waiting when a paused replica wakes up).
const REQUEST_TIMEOUTS: [u64; 3] = [200 * MS, 500 * MS, 1_000 * MS];
/// Attempts of one logical transaction before the client gives up (more
/// than [`OLDEST_COMMITS_WITHIN`], so starvation shows before giving up).
const MAX_ATTEMPTS: u32 = 12;
/// Fairness (wound-wait keeps a transaction's priority across retries, so
/// the oldest one is never wounded): once faults have healed, the oldest
/// live transaction commits within this many attempts.
const OLDEST_COMMITS_WITHIN: u32 = 10;
/// Liveness: once faults have healed, every client commits a transaction
/// within this much virtual time.
const CLIENT_COMMIT_BOUND: u64 = 5_000 * MS;
/// Probability that a blind register write is a delete (then re-inserted
/// by a later write).
const DELETE_PROBABILITY: f64 = 0.25;
/// Clients of a crowded seed, enough to fill small lock queues.
const CROWD_CLIENTS: (usize, usize) = (12, 24);
/// Commit-record retentions drawn per seed: all but the last are shorter
/// than a run, so retried commits meet pruned records.
const COMMIT_RECORD_RETENTIONS: [u64; 4] = [400 * MS, 1_500 * MS, 4_000 * MS, 60_000 * MS];

/// Per fault tick, the probability of pausing a replica, drawn per seed;
/// most pauses hit a leader ([`LEADER_PAUSE_SHARE`]), which may then serve what piled up before
/// it learns it was deposed (how reads without a lease show).
const PAUSE_PROBABILITIES: [f64; 4] = [0.0, 0.02, 0.05, 0.1];
/// The share of pauses aimed at a group's leader.
const LEADER_PAUSE_SHARE: f64 = 0.7;
/// Tries to learn a commit's outcome before it is recorded as unknown.
const MAX_COMMIT_TRIES: u32 = 6;
/// `TxnStatus` queries after a commit's outcome was unknown (docs/design.md
/// §5.5), before the client gives up; `InProgress` answers are asked
/// again after a pause.
const MAX_STATUS_TRIES: u32 = 12;
/// Tries of one lock-free read.
const MAX_READ_TRIES: u32 = 5;
/// Clock excursions (docs/design.md §2): per seed, the probability per
/// fault tick that a replica's clock starts running away from true time
/// (half of them aimed at a leader). Drawn from a stream of its own, so
/// seeds without excursions run as before.
const EXCURSION_PROBABILITIES: [f64; 4] = [0.0, 0.0, 0.02, 0.05];
/// How fast a runaway clock's error grows: this percentage of the time
/// elapsed since it began (far beyond any drift a real oscillator shows,
/// so a run sees the clock leave its bound within milliseconds).
const EXCURSION_RATE_PERCENT: u64 = 20;
/// The largest error an excursion reaches (well beyond every ε a clock
/// plan reports) and how long it lasts before the clock resyncs.
const EXCURSION_MAX: (u64, u64) = (30 * MS, 300 * MS);
const EXCURSION_LENGTH: (u64, u64) = (300 * MS, 1_500 * MS);
/// Period of the driver's clock check (a real node measures its offset
/// from its peers on heartbeats).
const CLOCK_CHECK_INTERVAL: u64 = 2 * MS;
/// What a runaway clock's error can grow by between two checks: the
/// check reports a clock unhealthy once its error comes this close to its
/// ε, so it is told before its interval stops holding true time (the
/// premise the protocol's safety rests on).
const CLOCK_CHECK_GUARD: u64 = CLOCK_CHECK_INTERVAL * EXCURSION_RATE_PERCENT / 100;
/// Client ids start here, clear of replica ids.
const CLIENT_BASE: NodeId = 100;
/// The group's configuration in simulation: short timers, so a run sees
/// closes, expiries, GC and compaction many times.
const CLOSE_INTERVAL: u64 = 20 * MS;
const READ_WAIT: u64 = 300 * MS;
const INACTIVITY_TIMEOUT: u64 = 600 * MS;
const GC_RETENTION: u64 = 1_500 * MS;
const GC_INTERVAL: u64 = 200 * MS;
const COMPACT_EVERY: u64 = 50;
/// A live replica answers every request within this (lock waits end by
/// wound-wait or the inactivity timeout, read waits by their bound).
const ANSWER_BOUND: u64 = 2_000 * MS;
/// Once acknowledged, a commit is applied in every group it writes to
/// within this (decisions are resent every [`RESEND_INTERVAL`]).
const DECISION_BOUND: u64 = 1_000 * MS;
/// Virtual time a run goes on after the heal: long enough for the liveness
/// bounds, and for clients to fall quiet.
const AFTER_HEAL: u64 = max(LIVENESS_BOUND, CLIENT_COMMIT_BOUND + CLIENT_QUIET);

const fn max(a: u64, b: u64) -> u64 {
    if a > b { a } else { b }
}

#[derive(Clone, Debug)]
enum Packet {
    /// A Paxos message between two replicas of `group` (addressed by node).
    Peer { group: GroupId, m: Message },
    /// A two-phase-commit message between group leaders: one copy per
    /// replica of the addressed group (`from` and `to` are replica ids).
    Group {
        from: NodeId,
        to: NodeId,
        msg: GroupMessage,
        /// When it was sent (ns since the start).
        sent: u64,
    },
    Request {
        client: usize,
        node: NodeId,
        id: RequestId,
        request: Request,
    },
    Reply {
        client: usize,
        /// The replica that answered (for the trace).
        node: NodeId,
        id: RequestId,
        reply: Reply,
    },
}

#[derive(Debug)]
enum Event {
    Deliver(Packet),
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
    /// A crash aimed at a moment (a new leader's first milliseconds, a
    /// two-phase-commit window); void if the node restarted since.
    Crash {
        node: usize,
        generation: u64,
        /// The moment aimed at, for the trace.
        why: &'static str,
    },
    /// A hand-over aimed at a moment (a new leader's first milliseconds);
    /// void if the node restarted since.
    HandOver {
        node: usize,
        generation: u64,
        to: Option<NodeId>,
    },
    /// A client's timer (timeout or end of a pause); stale unless `wake`
    /// matches the client's.
    Client {
        client: usize,
        wake: u64,
    },
    Fault,
    Heal,
    /// A pause aimed at a moment (the parent leader just after a split's
    /// application has reached its followers): node `node`'s replicas
    /// stop for `length`; void if it restarted since.
    Pause {
        node: usize,
        generation: u64,
        length: u64,
    },
    /// The cut of group `group`'s traffic to and from node `node` ends.
    Mend {
        group: GroupId,
        node: NodeId,
    },
    /// The driver checks node `node`'s clock against its bound.
    ClockCheck {
        node: usize,
    },
}

/// A clock running away from true time (docs/design.md §2): from `start`
/// its error grows by [`EXCURSION_RATE_PERCENT`] of the time elapsed, up
/// to `max`, ahead of true time or behind it, while it reports the ε of
/// its model; at `end` it resyncs.
#[derive(Clone, Copy, Debug)]
struct Excursion {
    start: Timestamp,
    end: Timestamp,
    max: u64,
    ahead: bool,
}

impl Excursion {
    /// The error at true time `t` (zero outside the excursion).
    fn error_at(&self, t: Timestamp) -> u64 {
        if t < self.start || t >= self.end {
            return 0;
        }
        (t.nanos_since(self.start) * EXCURSION_RATE_PERCENT / 100).min(self.max)
    }

    fn active_at(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// One replica: of group `group`, on physical node `machine` (whose id,
/// `id`, is its Paxos id). Clients and two-phase-commit packets name a
/// replica by its replica id, its index plus one.
struct Node {
    id: NodeId,
    /// The participant group this replica belongs to.
    group: GroupId,
    /// The physical node hosting it (index into [`Sim::machines`]).
    machine: usize,
    tt: SimulatedTrueTime,
    replica: Option<GroupReplica>,
    host: Host,
    /// Safe time seen last in this incarnation.
    last_t_safe: Timestamp,
    applied_slot: u64,
    /// A process pause (stop-the-world GC, VM migration): until then the
    /// node handles nothing, and afterwards everything that arrived in
    /// between becomes ready at once.
    paused_until: Option<Timestamp>,
    /// The order in which what piled up during a pause is handled.
    resume: Resume,
    /// A clock excursion under way, if any.
    excursion: Option<Excursion>,
    /// Whether the driver's clock check last found the clock out of bound
    /// (and, unless `clock-unmonitored`, told the replica so).
    clock_flagged: bool,
    /// Window `clocks-at-epsilon-edge`: the clock sits at the edge of its
    /// ε, ahead of true time (`true`) or behind it.
    edge: Option<bool>,
    /// A replica a split created: the parent group's id. It exists on its
    /// node once its parent replica there applied the split; after a crash
    /// that left it nothing durable it waits for the parent's replay to
    /// emit the seed again.
    parent: Option<GroupId>,
}

/// Node `n`'s clock reading at true time `t`: its model's, or during an
/// excursion true time plus the excursion's error inside the ε its model
/// reports (so once the error passes ε, the interval misses true time).
fn reading(n: &Node, t: Timestamp) -> TtInterval {
    let model = n.tt.now();
    match n.excursion {
        Some(x) if x.active_at(t) => {
            let err = x.error_at(t);
            let local = if x.ahead {
                t.saturating_add(err)
            } else {
                t.saturating_sub(err)
            };
            TtInterval::around(local, model.epsilon_nanos())
        }
        _ => match n.edge {
            // Inside its ε, at the edge (a broken bound stays broken).
            Some(ahead) if !n.tt.bound_broken() => {
                let eps = model.epsilon_nanos();
                let err = eps * EDGE_PER_MILLE / 1_000;
                let local = if ahead {
                    t.saturating_add(err)
                } else {
                    t.saturating_sub(err)
                };
                TtInterval::around(local, eps)
            }
            _ => model,
        },
    }
}

/// How a paused node works through what piled up: the runtime may poll
/// its sockets and timers in any order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resume {
    /// Everything in a random order.
    Shuffled,
    /// Client requests before peer messages and timers.
    ClientsFirst,
    /// Peer messages and timers before client requests.
    PeersFirst,
}

#[derive(Clone, Debug)]
enum TxnKind {
    /// Reads two accounts and moves `amount` between them.
    Transfer { from: usize, to: usize, amount: i64 },
    /// Reads two accounts under locks and commits without writes.
    Audit { from: usize, to: usize },
    /// Scans one range — the accounts (`range` 0), the registers (1) or
    /// the roster (2) — inside a read-write transaction, at most `limit`
    /// rows, and commits without writes: its scan must show the state just
    /// below its commit timestamp, phantoms excluded.
    ScanAudit { range: usize, limit: usize },
    /// Writes (or deletes) registers without reading.
    Blind { writes: Vec<Write> },
    /// Reads the whole roster; takes `who` off duty (writes `off`) only if
    /// someone else stays on. Reads several keys, writes at most one.
    GoOff { who: usize },
    /// Reads `who`'s roster entry; puts them on duty (deletes `off`).
    GoOn { who: usize },
    /// [`TxnKind::GoOff`] by a scan of the roster: the off-duty entries are
    /// its rows, so going on duty (a delete) and off (an insert) change
    /// which rows it holds. Without phantom protection two of them take
    /// the last two on duty off.
    GoOffScan { who: usize },
    /// Elle's list-append: reads the lists in `read` and `append`, appends
    /// a number of its own to each list in `append`.
    Append {
        read: Vec<usize>,
        append: Vec<usize>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Begin,
    Read,
    Commit,
    /// The commit's outcome is unknown: asking the home group's leader
    /// with `TxnStatus` (docs/design.md §5.5).
    Status,
}

#[derive(Debug)]
struct TxnTask {
    kind: TxnKind,
    priority: Option<Priority>,
    attempts: u32,
    /// This attempt's entry in the history.
    record: usize,
    stage: Stage,
    /// The home group (of its first key): it begins and coordinates there.
    home: GroupId,
    /// Locking or optimistic.
    mode: CcMode,
    /// The leader the attempt began at.
    node: NodeId,
    /// Its reads, by group (indices into its read keys), home first, and
    /// how many groups have answered (key reads first, then scans).
    plan: Vec<(GroupId, Vec<usize>)>,
    /// Its scans, one request per (group, scan index), after the key reads;
    /// a scan goes to every group (home first), each returning its rows.
    scan_plan: Vec<ScanPart>,
    step: usize,
    /// The values read so far (one per read key).
    values: Vec<Option<Bytes>>,
    /// The rows scanned so far, merged over the groups (one list per scan).
    scan_rows: Vec<Vec<(Bytes, Bytes)>>,
    /// The term each group it read at answered with.
    terms: Vec<(GroupId, Term)>,
    txn: Option<TxnId>,
    /// Its id is a reserved one its home group has not begun yet: the
    /// first read there, a guest's, begins it.
    joining: bool,
    commit_tries: u32,
    status_tries: u32,
    writes: Vec<Write>,
    /// Attempts aborted after the heal while this was the oldest live
    /// transaction.
    oldest_aborts: u32,
}

/// One group's part of a scan: the group (as the client's range cache
/// has it), the scan's index among the attempt's scans, and the part of
/// the scanned span that group serves.
#[derive(Clone, Debug)]
struct ScanPart {
    group: GroupId,
    scan: usize,
    start: Bytes,
    end: Option<Bytes>,
}

#[derive(Debug)]
struct ReadTask {
    at: ReadAt,
    /// Whether it was asked as a strong read (a read across groups runs at
    /// `TT.now().latest` at the client: Spanner §4.2.2).
    strong: bool,
    reads: Vec<ReadOp>,
    /// The reads per group (indices into `reads`, with the part each
    /// group is asked: a scan goes to every group its span overlaps), and
    /// how many groups have answered.
    parts: Vec<(GroupId, Vec<(usize, ReadOp)>)>,
    step: usize,
    results: Vec<Option<ReadResult>>,
    read_ts: Timestamp,
    invoked: Timestamp,
    tries: u32,
    /// Sent to the group's leader as the client knows it (a read aimed
    /// ahead of the clock, which only a leader serves at once).
    to_leader: bool,
}

#[derive(Debug)]
enum Task {
    Idle,
    Txn(TxnTask),
    Read(ReadTask),
}

struct Client {
    tt: SimulatedTrueTime,
    /// The leader hint per group (index `group - 1`), a replica id.
    leaders: Vec<NodeId>,
    /// Its cache of the range table: which group serves which keys.
    ranges: RangeTable,
    task: Task,
    /// Requests (and the replica each went to) whose answers the current
    /// step accepts.
    pending: Vec<(RequestId, NodeId)>,
    /// Generation of the client's live timer.
    wake: u64,
    /// The live timer ends a pause (not a request's timeout).
    paused: bool,
    /// Counter for unique register values.
    writes: u64,
    /// Transaction ids reserved for this client, per group (index
    /// `group - 1`): docs/design.md §5.1.
    spares: Vec<Option<Spares>>,
}

/// Ids a group's leader reserved for a client at a `Begin`.
#[derive(Clone, Copy, Debug)]
struct Spares {
    /// The reserving leader: only it begins them.
    node: NodeId,
    origin: u64,
    /// The next sequence number, and the end of the range.
    next: u64,
    end: u64,
    /// The reserving `Begin`'s priority, and when it was answered: a
    /// spare's priority is that plus the time since, as in the client
    /// library.
    priority: Priority,
    at: Timestamp,
}

/// How many ids client `c`'s first-attempt `Begin`s reserve when it holds
/// none for the group: some clients never reserve, so both ways of
/// beginning run side by side.
fn reserve_for(c: usize) -> u32 {
    (c % 3) as u32
}

struct Sim {
    rng: SmallRng,
    faults: Faults,
    /// Per fault tick: probability of pausing a node.
    pause: f64,
    /// How long clients wait for an answer.
    request_timeout: u64,
    /// Clock excursions: their own random stream, and their probability
    /// per fault tick.
    clock_rng: SmallRng,
    excursion_probability: f64,
    /// Leader hand-overs: their own random stream and probability.
    hand_overs: HandOvers,
    /// Whether a client whose commit times out asks `TxnStatus` at once
    /// (the commit may still be in flight) rather than sending it again.
    status_on_timeout: bool,
    nodes: Vec<Node>,
    clients: Vec<Client>,
    queue: EventQueue<Event>,
    net: Network,
    /// Participant groups (ids `1..=groups`).
    groups: u64,
    /// Whether the groups' voters come and go (each group then has
    /// [`CHURN_NODES`] replicas on nodes of its own).
    churn: bool,
    /// The replicas (indices into `nodes`) each physical node hosts.
    machines: Vec<Vec<usize>>,
    /// The replicas (indices into `nodes`) of each group (index
    /// `group - 1`).
    members: Vec<Vec<usize>>,
    /// Which group serves which keys: the truth clients' caches follow
    /// (the range directory), changed when a split first applies.
    ranges: RangeTable,
    /// Per group (index `group - 1`): the range its replicas boot with
    /// (the bootstrap descriptor, or a child's from its seed).
    initial: Vec<Option<meridian_participant::RangeDescriptor>>,
    /// Splits of this seed ([`splits`]).
    splits: splits::Splits,
    /// Per group (index `group - 1`): the chosen log, the sim's own replay
    /// of its two-phase records, the leader hint, the highest timestamp
    /// assigned, elections after the heal.
    chosen: Vec<ChosenLog>,
    replay: Vec<GroupReplay>,
    log: CommitLog,
    history: History,
    bank: Bank,
    stats: RunStats,
    next_request: RequestId,
    leader_hint: Vec<Option<NodeId>>,
    max_assigned_ts: Vec<Timestamp>,
    faults_on: bool,
    heal_at: Timestamp,
    clients_stop: Timestamp,
    tracer: Tracer,
    planted_bug: Option<PlantedBug>,
    black_box: bool,
    /// How clients' transactions control concurrency.
    cc: Cc,
    /// Requests delivered and not yet answered: replica, when the last copy
    /// arrived, copies delivered.
    outstanding: std::collections::HashMap<RequestId, (usize, Timestamp, u32)>,
    roster: Roster,
    /// This seed's bounds on the leader's lock queues.
    lock_limits: meridian_participant::LockLimits,
    /// This seed's commit-record retention.
    commit_record_retention: u64,
    adversary: Adversary,
    elections_after_heal: Vec<ElectionsAfterHeal>,
    /// A violation found where it cannot be returned at once.
    deferred: Option<Violation>,
    /// Whether clients read at future timestamps on this seed, and how the
    /// replicas bound them ([`future_reads`]).
    future_reads: future_reads::FutureReads,
    /// The two-phase-commit fault windows this seed opened.
    windows: Windows,
}

/// Runs one seed of the transaction layer: its counters, and the first
/// invariant it broke, if any.
pub(crate) fn run_seed(opts: &RunOptions) -> RunOutcome {
    let mut rng = SmallRng::seed_from_u64(opts.seed);
    let faults = Faults::draw(&mut rng);
    let accounts = rng.random_range(3..=8);
    let crowd = rng.random_bool(0.2);
    let n_clients = if crowd {
        rng.random_range(CROWD_CLIENTS.0..=CROWD_CLIENTS.1)
    } else {
        rng.random_range(3..=6)
    };
    let lock_limits = if crowd {
        meridian_participant::LockLimits {
            max_waiters_per_key: rng.random_range(1..=3),
            max_total_waiters: rng.random_range(3..=12),
        }
    } else {
        meridian_participant::LockLimits::default()
    };
    let roster = Roster::new(rng.random_range(2..=4));
    let commit_record_retention =
        COMMIT_RECORD_RETENTIONS[rng.random_range(0..COMMIT_RECORD_RETENTIONS.len())];
    let adversary = Adversary::draw(&mut rng);
    let pause = PAUSE_PROBABILITIES[rng.random_range(0..PAUSE_PROBABILITIES.len())];
    let request_timeout = REQUEST_TIMEOUTS[rng.random_range(0..REQUEST_TIMEOUTS.len())];
    // Clock uncertainty varies by seed, up to Spanner's: offsets between
    // nodes up to twice the base ε, so commit wait matters.
    let base = ClockModel {
        base_epsilon_nanos: [MS, 2 * MS, 5 * MS][rng.random_range(0..3)],
        ..CLOCK_MODEL
    };
    let broken_clocks = opts.planted_bug == Some(PlantedBug::ClockBoundBroken);
    let clocks = ClockPlan::draw(&mut rng, base, opts.seed, broken_clocks);
    let clock = VirtualClock::new(Timestamp(EPOCH));
    let mut clock_rng = SmallRng::seed_from_u64(opts.seed ^ 0x00c1_0c4e_c5c0_u64.rotate_left(40));
    let excursion_probability =
        EXCURSION_PROBABILITIES[clock_rng.random_range(0..EXCURSION_PROBABILITIES.len())];
    let fault_phase = opts.fault_phase_nanos.unwrap_or(DEFAULT_FAULT_PHASE);
    let groups = match opts.layer {
        Layer::Cluster => rng.random_range(CLUSTER_GROUPS.0..=CLUSTER_GROUPS.1),
        _ => 1,
    };
    // Membership churn only where the groups' replicas are all the
    // simulator runs for them: in the cluster layer.
    let churn = opts.layer == Layer::Cluster && faults.membership;
    let bank = Bank::new(accounts, INITIAL_BALANCE);
    // Placement and ranges draw from a stream of their own, so the txn
    // layer's draws are the same as before placement existed.
    let mut place_rng = SmallRng::seed_from_u64(opts.seed ^ 0x0091_ace5_u64.rotate_left(45));
    let (groups, placement, machine_count) = if opts.layer != Layer::Cluster || churn {
        // Each group on nodes of its own: the txn layer's one group, and
        // the churning seeds, whose voters come and go.
        let per_group = if churn { CHURN_NODES } else { NODES };
        let placement = (0..groups)
            .map(|g| ((g * per_group) as usize..((g + 1) * per_group) as usize).collect())
            .collect::<Vec<Vec<usize>>>();
        (groups, placement, groups * per_group)
    } else {
        let machines = place_rng.random_range(CLUSTER_NODES.0..=CLUSTER_NODES.1);
        let groups = place_rng.random_range(PLACED_GROUPS.0..=PLACED_GROUPS.1);
        (groups, ranges::place(groups, NODES, machines), machines)
    };
    let registers: Vec<Bytes> = (0..REGISTERS)
        .map(|r| Bytes::from(format!("reg/{r}")))
        .collect();
    let universe: Vec<Bytes> = bank
        .accounts
        .iter()
        .chain(&roster.keys)
        .chain(&registers)
        .cloned()
        .chain((0..lists::LISTS).map(lists::key))
        .collect();
    let range_table = if groups == 1 {
        RangeTable::single(1)
    } else {
        let cuts = ranges::initial_cuts(&mut place_rng, groups, &bank, &roster, &registers);
        assert_eq!(cuts.len() as u64 + 1, groups, "one range per group");
        RangeTable::with_cuts(&cuts)
    };
    let mut windows = Windows::draw(
        opts.seed,
        opts.layer == Layer::Cluster,
        machine_count as usize,
    );
    let commit_record_retention = windows.commit_record_retention(commit_record_retention);
    let splits = splits::Splits::draw(
        opts.seed,
        opts.layer == Layer::Cluster && !churn,
        groups,
        universe,
    );
    let commit_record_retention = splits.commit_record_retention(commit_record_retention);
    let mut faults = faults;
    let pause = windows.calm(&mut faults, pause);
    let mut machines: Vec<Vec<usize>> = vec![Vec::new(); machine_count as usize];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups as usize];
    let mut nodes: Vec<Node> = Vec::new();
    for (g, hosts) in placement.iter().enumerate() {
        for &m in hosts {
            let i = nodes.len();
            machines[m].push(i);
            members[g].push(i);
            nodes.push(Node {
                id: m as NodeId + 1,
                group: g as GroupId + 1,
                machine: m,
                // Replicas on one node read one clock.
                tt: clocks.node(&clock, m as u64, true),
                replica: None,
                host: Host::default(),
                last_t_safe: Timestamp::ZERO,
                applied_slot: 0,
                paused_until: None,
                resume: Resume::Shuffled,
                excursion: None,
                clock_flagged: false,
                edge: windows.edge(m),
                parent: None,
            });
        }
    }
    let clients = (0..n_clients)
        .map(|i| Client {
            tt: clocks.node(&clock, CLIENT_BASE + i as u64, false),
            leaders: members
                .iter()
                .map(|m| m[i % m.len()] as NodeId + 1)
                .collect(),
            ranges: range_table.clone(),
            task: Task::Idle,
            pending: Vec::new(),
            wake: 0,
            paused: true,
            writes: 0,
            spares: vec![None; groups as usize],
        })
        .collect();
    let mut sim = Sim {
        rng,
        faults,
        pause,
        request_timeout,
        // From the seed, not the RNG: the draws that follow are unchanged.
        status_on_timeout: opts.seed % 2 == 1,
        clock_rng,
        excursion_probability,
        hand_overs: HandOvers::draw(opts.seed),
        nodes,
        clients,
        queue: EventQueue::new(clock),
        net: Network::default(),
        groups,
        churn,
        machines,
        members,
        initial: (1..=groups)
            .map(|g| {
                let (start, end) = range_table.range_of(g).unwrap_or_default();
                Some(meridian_participant::RangeDescriptor {
                    group: g,
                    start,
                    end,
                    generation: meridian_participant::INITIAL_GENERATION,
                })
            })
            .collect(),
        splits,
        chosen: (0..groups).map(|_| ChosenLog::default()).collect(),
        replay: (1..=groups)
            .map(|g| GroupReplay {
                range: range_table.range_of(g).unwrap_or_default(),
                generation: meridian_participant::INITIAL_GENERATION,
                ..GroupReplay::default()
            })
            .collect(),
        ranges: range_table,
        log: CommitLog::default(),
        history: History::default(),
        bank,
        stats: RunStats::default(),
        next_request: 1,
        leader_hint: vec![None; groups as usize],
        max_assigned_ts: vec![Timestamp::ZERO; groups as usize],
        faults_on: true,
        heal_at: Timestamp(EPOCH + fault_phase),
        clients_stop: Timestamp(EPOCH + fault_phase + AFTER_HEAL - CLIENT_QUIET),
        tracer: Tracer::new(opts.trace.clone()),
        planted_bug: opts.planted_bug,
        black_box: opts.black_box,
        cc: opts.cc,
        outstanding: std::collections::HashMap::new(),
        roster,
        lock_limits,
        commit_record_retention,
        adversary,
        elections_after_heal: (0..groups).map(|_| ElectionsAfterHeal::default()).collect(),
        deferred: None,
        future_reads: future_reads::FutureReads::draw(opts.seed),
        windows,
    };
    sim.tracer.header(|| {
        let queues = if crowd {
            format!(
                "; lock queues of at most {} per key, {} in all",
                lock_limits.max_waiters_per_key, lock_limits.max_total_waiters
            )
        } else {
            String::new()
        };
        let per_group = sim.members[0].len();
        let placed = if opts.layer == Layer::Cluster && !churn {
            format!(" on {} nodes", sim.machines.len())
        } else {
            String::new()
        };
        let layout = if groups > 1 {
            format!("\n  {}", sim.layout())
        } else {
            String::new()
        };
        format!(
            "seed {} layer {}: {}{per_group} replicas{placed}{}, {n_clients} clients{}, {accounts} accounts, \
             roster of {}; faults until {}, run ends {}{layout}\n{}{}\n  {}\n  \
             request timeout {} ms; commit records kept {} ms{queues}\n  \
             two-phase windows: {}{}",
            opts.seed,
            opts.layer.name(),
            if groups > 1 {
                format!("{groups} groups of ")
            } else {
                String::new()
            },
            if churn { " (membership churn)" } else { "" },
            if crowd { " (crowded)" } else { "" },
            sim.roster.keys.len(),
            trace::since(fault_phase),
            trace::since(fault_phase + AFTER_HEAL),
            trace::faults(&sim.faults, false, Some(pause)),
            trace::hand_overs(&sim.hand_overs),
            trace::schedule(clocks.profile, &sim.adversary),
            request_timeout / MS,
            commit_record_retention / MS,
            sim.windows.describe(),
            if sim.splits.on() {
                format!("\n  splits: {}", sim.splits.describe())
            } else {
                String::new()
            },
        )
    });
    let result = crate::guarded(|| sim.run(n_clients, fault_phase));
    // The counters of a failing run too, up to the violation.
    sim.stats.commits = sim.log.commits.len() as u64;
    sim.stats.virtual_nanos = sim.queue.at();
    sim.stats.windows = sim.windows.counts();
    sim.stats.window_faults = sim.windows.fired();
    RunOutcome {
        stats: sim.stats,
        violation: result.err(),
    }
}

impl Sim {
    /// Boots the replicas, starts the clients and runs until the end,
    /// checking as it goes.
    fn run(&mut self, n_clients: usize, fault_phase: u64) -> Result<(), Violation> {
        for i in 0..self.nodes.len() {
            self.boot(i)?;
        }
        for c in 0..n_clients {
            self.pause(c, false);
        }
        self.queue.schedule(FAULT_TICK, Event::Fault);
        self.queue.schedule(fault_phase, Event::Heal);
        let end = Timestamp(EPOCH + fault_phase + AFTER_HEAL);
        while let Some(ev) = self.queue.pop_until(end) {
            if let Err(e) = count_event(&mut self.stats, self.queue.at(), event_code(&ev)) {
                return Err(self.violation(rules::LIVENESS, e));
            }
            self.handle(ev)?;
            if let Some(v) = self.deferred.take() {
                return Err(v);
            }
            self.check_leases()?;
        }
        self.stats.virtual_nanos = self.queue.at();
        self.check_end()
    }

    fn now(&self) -> Timestamp {
        self.queue.now()
    }

    fn violation(&self, rule: &'static str, detail: String) -> Violation {
        Violation {
            rule,
            at_nanos: self.queue.at(),
            detail,
        }
    }

    fn trace(&self, kind: TraceKind, parties: &[Party], what: impl FnOnce() -> String) {
        self.tracer.line(self.queue.at(), kind, parties, None, what);
    }

    /// A trace line about a transaction (kept by a `txn=` filter).
    fn trace_txn(
        &self,
        kind: TraceKind,
        parties: &[Party],
        txn: Option<TxnId>,
        what: impl FnOnce() -> String,
    ) {
        self.tracer.line(self.queue.at(), kind, parties, txn, what);
    }

    /// The transaction client `c` is working on, if it has one.
    fn client_txn(&self, c: usize) -> Option<TxnId> {
        match &self.clients[c].task {
            Task::Txn(t) => t.txn,
            _ => None,
        }
    }

    /// Traces a packet put on the network, and what the network did to it.
    fn trace_packet(&self, kind: TraceKind, p: &Packet, copies: Option<usize>) {
        if !self.tracer.on() {
            return;
        }
        let fate = copies.map_or("", trace::fate);
        match p {
            Packet::Peer { group, m } => {
                let parties = [Party::Node(m.from), Party::Node(m.to)];
                let tag = if self.placed() {
                    format!("g{group} ")
                } else {
                    String::new()
                };
                self.trace(kind, &parties, || {
                    format!("{tag}{}{fate}", trace::message(m))
                });
            }
            Packet::Group { from, to, msg, .. } => {
                let parties = [
                    Party::Node(self.node_id(*from)),
                    Party::Node(self.node_id(*to)),
                ];
                let (from, to) = (self.who(*from), self.who(*to));
                self.trace_txn(kind, &parties, Some(trace::group_message_txn(msg)), || {
                    format!("{from}→{to} {}{fate}", trace::group_message(msg))
                });
            }
            Packet::Request {
                client,
                node,
                id,
                request,
            } => {
                let parties = [Party::Client(*client), Party::Node(self.node_id(*node))];
                let txn = trace::request_txn(request).or_else(|| self.client_txn(*client));
                let node = self.who(*node);
                self.trace_txn(kind, &parties, txn, || {
                    format!(
                        "c{client}→{node} req {id} {}{fate}",
                        trace::request(request)
                    )
                });
            }
            Packet::Reply {
                client,
                node,
                id,
                reply,
            } => {
                let parties = [Party::Node(self.node_id(*node)), Party::Client(*client)];
                let node = self.who(*node);
                let waited = self.clients[*client].pending.iter().any(|(r, _)| r == id);
                let stale = if kind == TraceKind::Deliver && !waited {
                    " (no longer awaited)"
                } else {
                    ""
                };
                let txn = trace::reply_txn(reply).or_else(|| self.client_txn(*client));
                self.trace_txn(kind, &parties, txn, || {
                    format!(
                        "{node}→c{client} req {id} {}{stale}{fate}",
                        trace::reply(reply)
                    )
                });
            }
        }
    }

    fn config(&self, i: usize) -> meridian_txn::Config {
        let (id, group) = (self.nodes[i].id, self.nodes[i].group);
        let paxos_bug = self.planted_bug.and_then(PlantedBug::paxos);
        let voters = self.group_nodes(group);
        let mut c = meridian_txn::Config::new(group, paxos_config(id, voters, paxos_bug));
        if let Some(d) = self.initial.get((group - 1) as usize).cloned().flatten() {
            c.descriptor = d;
        }
        c.resend_interval_nanos = RESEND_INTERVAL;
        c.prepare_timeout_nanos = PREPARE_TIMEOUT;
        c.close_interval_nanos = CLOSE_INTERVAL;
        c.read_wait_nanos = READ_WAIT;
        c.inactivity_timeout_nanos = INACTIVITY_TIMEOUT;
        c.gc_retention_nanos = GC_RETENTION;
        c.gc_interval_nanos = GC_INTERVAL;
        c.commit_record_retention_nanos = self.commit_record_retention;
        c.lock_limits = self.lock_limits;
        self.future_reads.configure(&mut c);
        self.splits.configure(&mut c);
        self.adversary.configure(&mut c.paxos);
        c.compact_every = if self.faults.compaction {
            COMPACT_EVERY
        } else {
            u64::MAX / 2
        };
        c.planted_bug = match self.planted_bug {
            Some(PlantedBug::Txn(b)) => Some(b),
            _ => None,
        };
        c.lock_table_bug = match self.planted_bug {
            Some(PlantedBug::LockTable(b)) => Some(b),
            _ => None,
        };
        c
    }

    fn boot(&mut self, i: usize) -> Result<(), Violation> {
        let state = self.nodes[i]
            .host
            .storage
            .load()
            .expect("memory storage cannot fail");
        if self.nodes[i].parent.is_some() && state.snapshot.is_none() {
            // A child that crashed before its initial state was durable
            // (so it never spoke), or a blank child whose snapshot had not
            // arrived: its parent replica's replay (or recovery from a
            // snapshot) emits the seed again.
            return Ok(());
        }
        let cfg = self.config(i);
        let rng = SmallRng::seed_from_u64(self.rng.random());
        let mut r = GroupReplica::new(cfg, state, Box::new(rng));
        let now = self.clock(i);
        let mut out = Vec::new();
        r.start(now, &mut out);
        if self.nodes[i].clock_flagged && self.planted_bug != Some(PlantedBug::ClockUnmonitored) {
            // A restarted replica starts healthy: its driver, whose clock
            // check still fails, says otherwise at once.
            let reason = self.clock_reason(i);
            r.step(now, Input::ClockHealth { ok: false, reason }, &mut out);
        }
        let node = &mut self.nodes[i];
        node.host.boot(r.paxos().last_assigned_ts());
        node.replica = Some(r);
        node.last_t_safe = Timestamp::ZERO;
        node.applied_slot = 0;
        self.process(i, out)
    }

    /// The replica (index) of replica id `rid`.
    fn index(&self, rid: NodeId) -> Option<usize> {
        (rid as usize)
            .checked_sub(1)
            .filter(|&i| i < self.nodes.len())
    }

    /// The replica (index) of `group` on the node with Paxos id `id`.
    fn replica_at(&self, group: GroupId, id: NodeId) -> Option<usize> {
        self.members
            .get((group - 1) as usize)?
            .iter()
            .copied()
            .find(|&i| self.nodes[i].id == id)
    }

    /// The Paxos ids (node ids) of `group`'s replicas.
    fn group_nodes(&self, group: GroupId) -> Vec<NodeId> {
        self.members[(group - 1) as usize]
            .iter()
            .map(|&i| self.nodes[i].id)
            .collect()
    }

    /// Whether nodes host replicas of several groups (a placed cluster
    /// seed), so the trace names a replica by node and group.
    fn placed(&self) -> bool {
        self.machines.len() != self.nodes.len()
    }

    /// The node id (Paxos id) of the replica with replica id `rid`.
    fn node_id(&self, rid: NodeId) -> NodeId {
        self.index(rid).map_or(rid, |i| self.nodes[i].id)
    }

    /// How the trace names replica `rid`: `n3` where a node hosts one
    /// replica, else `n3/g2` (group 2's replica on node 3).
    fn who(&self, rid: NodeId) -> String {
        match self.index(rid) {
            Some(i) if self.placed() => format!("n{}/g{}", self.nodes[i].id, self.nodes[i].group),
            Some(i) => format!("n{}", self.nodes[i].id),
            None => format!("n{rid}"),
        }
    }

    /// The replica ids of `group`'s replicas.
    fn group_replicas(&self, group: GroupId) -> Vec<NodeId> {
        self.members[(group - 1) as usize]
            .iter()
            .map(|&i| i as NodeId + 1)
            .collect()
    }

    /// The group of the replica with replica id `rid`.
    fn group_of_node(&self, rid: NodeId) -> GroupId {
        self.index(rid).map_or(1, |i| self.nodes[i].group)
    }

    /// The group that serves `key` now (the truth, not a client's cache).
    fn group_of(&self, key: &[u8]) -> GroupId {
        self.ranges.group_of(key)
    }

    /// The placement and the ranges, for the trace's header.
    fn layout(&self) -> String {
        let nodes: Vec<String> = self
            .machines
            .iter()
            .enumerate()
            .map(|(m, rs)| {
                let groups: Vec<String> = rs
                    .iter()
                    .map(|&i| format!("g{}", self.nodes[i].group))
                    .collect();
                format!("n{} {}", m + 1, groups.join(","))
            })
            .collect();
        let ranges: Vec<String> = self
            .ranges
            .groups()
            .map(|g| {
                let (start, end) = self.ranges.range_of(g).unwrap_or_default();
                format!(
                    "g{g} [{}, {})",
                    String::from_utf8_lossy(&start),
                    end.map_or("∞".into(), |e| String::from_utf8_lossy(&e).into_owned())
                )
            })
            .collect();
        format!("nodes: {}; ranges: {}", nodes.join("; "), ranges.join(" "))
    }

    /// The replicas on replica `i`'s node (itself included).
    fn cohosted(&self, i: usize) -> Vec<usize> {
        self.machines[self.nodes[i].machine].clone()
    }

    /// The replica an event is for, if any.
    fn target(&self, ev: &Event) -> Option<usize> {
        match ev {
            Event::Deliver(Packet::Peer { group, m }) => self.replica_at(*group, m.to),
            Event::Deliver(Packet::Group { to, .. }) => self.index(*to),
            Event::Deliver(Packet::Request { node, .. }) => self.index(*node),
            Event::Tick { node, .. }
            | Event::Sync { node, .. }
            | Event::Crash { node, .. }
            | Event::HandOver { node, .. }
            | Event::Pause { node, .. } => Some(*node),
            _ => None,
        }
    }

    fn handle(&mut self, ev: Event) -> Result<(), Violation> {
        if let Some(i) = self.target(&ev) {
            if let Some(until) = self.nodes[i].paused_until {
                if self.now() < until {
                    // Everything that arrives during a pause is handled
                    // when it ends, in the order the pause drew.
                    let client = matches!(ev, Event::Deliver(Packet::Request { .. }));
                    let jitter = match (self.nodes[i].resume, client) {
                        (Resume::Shuffled, _) => self.rng.random_range(0..2 * MS),
                        (Resume::ClientsFirst, true) | (Resume::PeersFirst, false) => {
                            self.rng.random_range(0..MS)
                        }
                        _ => self.rng.random_range(MS..2 * MS),
                    };
                    let d = until.nanos_since(self.now()) + jitter;
                    self.queue.schedule(d, ev);
                    return Ok(());
                }
                self.nodes[i].paused_until = None;
            }
        }
        if let Event::Deliver(p) = &ev {
            self.trace_packet(TraceKind::Deliver, p, None);
        }
        match ev {
            Event::Deliver(Packet::Peer { group, m }) => {
                let Some(i) = self.replica_at(group, m.to) else {
                    return Ok(());
                };
                self.step(i, Input::Message(m))
            }
            Event::Deliver(Packet::Group { to, msg, sent, .. }) => {
                let Some(i) = self.index(to) else {
                    return Ok(());
                };
                let group = self.nodes[i].group;
                if self.windows.void(&msg, group, sent) {
                    self.trace(TraceKind::Fault, &[Party::Node(to)], || {
                        format!(
                            "n{to} loses {} (sent before its group's leader was failed \
                             in a two-phase-commit window)",
                            trace::group_message(&msg)
                        )
                    });
                    return Ok(());
                }
                let leads = self.nodes[i]
                    .replica
                    .as_ref()
                    .is_some_and(|r| r.paxos().role() == Role::Leader);
                if self.faults_on && leads {
                    let may = self.may_fail(i);
                    let undecided = match &msg {
                        GroupMessage::Decide { txn, .. } => self.nodes[i]
                            .replica
                            .as_ref()
                            .map(|r| r.state())
                            .is_some_and(|s| {
                                s.prepared_txn(*txn).is_some_and(|p| !p.writes.is_empty())
                                    && s.decided(*txn).is_none()
                            }),
                        _ => false,
                    };
                    let at = self.queue.at();
                    if let Some(aim) = self.windows.on_deliver(to, group, &msg, may, undecided, at)
                    {
                        self.aim(i, aim, "in a two-phase-commit window (after a delivery)");
                    } else if let Some(aim) = self.split_decide_aim(i, &msg, may, undecided) {
                        self.aim(
                            i,
                            aim,
                            "as a moved transaction's decision reaches the child's leader",
                        );
                    }
                }
                self.step(i, Input::FromGroup(msg))
            }
            Event::Deliver(Packet::Request {
                node, id, request, ..
            }) => {
                let Some(i) = self.index(node) else {
                    return Ok(());
                };
                if self.nodes[i].replica.is_some() {
                    let at = self.now();
                    let o = self.outstanding.entry(id).or_insert((i, at, 0));
                    *o = (i, at, o.2 + 1);
                }
                self.step(i, Input::Request { id, request })
            }
            Event::Deliver(Packet::Reply {
                client, id, reply, ..
            }) => {
                self.on_reply(client, id, reply);
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
            Event::Crash {
                node,
                generation,
                why,
            } => {
                if self.nodes[node].host.generation == generation {
                    let id = self.nodes[node].id;
                    self.trace(TraceKind::Fault, &[Party::Node(id)], || {
                        format!("crash n{id} {why}")
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
                    return Ok(());
                }
                let id = self.nodes[node].id;
                if self.nodes[node].parent.is_none() {
                    self.trace(TraceKind::Fault, &[Party::Node(id)], || {
                        format!("restart n{id}")
                    });
                }
                self.boot(node)
            }
            Event::Client { client, wake } => {
                if self.clients[client].wake == wake {
                    self.on_timer(client);
                }
                Ok(())
            }
            Event::Fault => {
                if self.faults_on {
                    self.inject_fault();
                    self.queue.schedule(FAULT_TICK, Event::Fault);
                }
                Ok(())
            }
            Event::ClockCheck { node } => self.check_clock(node),
            Event::Mend { group, node } => {
                self.net
                    .timed_cuts
                    .retain(|&(g, a, b)| g != group || (a != node && b != node));
                Ok(())
            }
            Event::Pause {
                node,
                generation,
                length,
            } => {
                if self.nodes[node].host.generation == generation && self.faults_on {
                    self.pause_node(node, length, "after a split reached its followers");
                }
                Ok(())
            }
            Event::Heal => {
                self.trace(TraceKind::Fault, &[], || {
                    "heal: faults and pauses stop, partitions mend, crashed replicas restart".into()
                });
                self.faults_on = false;
                self.net.blocked.clear();
                self.net.group_cuts.clear();
                self.net.timed_cuts.clear();
                // Every fault ends here, pauses and clock excursions included
                // (the clock checks that follow find the clocks back).
                let now = self.now();
                for n in &mut self.nodes {
                    n.paused_until = None;
                    if let Some(x) = n.excursion.as_mut() {
                        x.end = x.end.min(now);
                    }
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

    fn step(&mut self, i: usize, input: Input) -> Result<(), Violation> {
        let now = self.clock(i);
        let Some(r) = self.nodes[i].replica.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        r.step(now, input, &mut out);
        self.process(i, out)
    }

    fn process(&mut self, i: usize, out: Vec<Output>) -> Result<(), Violation> {
        let at = self.queue.at();
        let id = self.nodes[i].id;
        // How clients and two-phase-commit packets name this replica.
        let rid = i as NodeId + 1;
        for o in out {
            match o {
                Output::SplitChild(seed) => self.split_child(i, *seed)?,
                Output::Send(m) => {
                    let group = self.nodes[i].group;
                    self.send(Packet::Peer { group, m })
                }
                Output::ToGroup { group, msg } => {
                    if (1..=self.groups).contains(&group) {
                        if self.faults_on {
                            if let GroupMessage::Vote { txn, from, .. } = &msg {
                                let keys = self.prepared_keys(i, *txn);
                                self.windows.note_prepared(*txn, *from, keys);
                            }
                            let may = self.may_fail(i);
                            if let Some(aim) = self.windows.on_send(rid, group, &msg, at, may) {
                                self.aim(i, aim, "in a two-phase-commit window (after sending)");
                            }
                        }
                        for to in self.group_replicas(group) {
                            self.send(Packet::Group {
                                from: i as NodeId + 1,
                                to,
                                msg: msg.clone(),
                                sent: at,
                            });
                        }
                    }
                }
                Output::Persist(req) => {
                    let host = &mut self.nodes[i].host;
                    if let Some(d) = host.persist(&req, &mut self.rng, &self.faults) {
                        let generation = host.generation;
                        self.queue.schedule(
                            d,
                            Event::Sync {
                                node: i,
                                generation,
                            },
                        );
                    }
                }
                Output::Reply { id: req, reply } => {
                    // Exactly one answer per request delivered.
                    match self.outstanding.get_mut(&req) {
                        Some(o) if o.0 == i && o.2 > 0 => {
                            o.2 -= 1;
                            if o.2 == 0 {
                                self.outstanding.remove(&req);
                            }
                        }
                        _ => {
                            return Err(self.violation(
                                rules::ONE_REPLY,
                                format!("node {id} answered request {req} more often than asked"),
                            ));
                        }
                    }
                    // Spanner §4.1.2: no client learns of a commit at s
                    // before s has passed in true time.
                    if let Ok(Response::Committed { commit_ts }) = &reply {
                        if !self.black_box && self.now() <= *commit_ts {
                            return Err(self.violation(
                                rules::COMMIT_WAIT,
                                format!(
                                    "node {id} acknowledged a commit at {} at true time {}",
                                    commit_ts.0,
                                    self.now().0
                                ),
                            ));
                        }
                    }
                    self.send_reply(rid, req, reply);
                }
                Output::Applied(entries) => {
                    let g = self.nodes[i].group;
                    for e in &entries {
                        self.chosen[(g - 1) as usize].observe(id, e, at)?;
                        let last = self.nodes[i].applied_slot;
                        if e.slot != last + 1 {
                            return Err(self.violation(
                                rules::APPLIED_PREFIX,
                                format!("node {id} applied slot {} after {last}", e.slot),
                            ));
                        }
                        self.nodes[i].applied_slot = e.slot;
                        let replay = &mut self.replay[(g - 1) as usize];
                        if let Some(split) = replay.apply(g, e, &mut self.log, at)? {
                            self.split_applied(g, split);
                        }
                    }
                }
                Output::SnapshotRestored { last_slot } => {
                    self.nodes[i].applied_slot = last_slot;
                }
                Output::RoleChanged { role, leader } => {
                    self.trace(TraceKind::Role, &[Party::Node(id)], || {
                        trace::role(id, role, leader)
                    });
                    if role == Role::Leader {
                        self.stats.elections += 1;
                        let g = (self.nodes[i].group - 1) as usize;
                        self.leader_hint[g] = Some(rid);
                        if !self.faults_on {
                            let round = self.nodes[i]
                                .replica
                                .as_ref()
                                .map_or(0, |r| r.paxos().promised().round);
                            if let Err(e) = self.elections_after_heal[g].record(id, round) {
                                return Err(self.violation(rules::ELECTIONS_AFTER_HEAL, e));
                            }
                        } else {
                            let generation = self.nodes[i].host.generation;
                            if let Some(d) = self.adversary.new_leader_crash(&mut self.rng) {
                                self.queue.schedule(
                                    d,
                                    Event::Crash {
                                        node: i,
                                        generation,
                                        why: "just after its election",
                                    },
                                );
                            }
                            let others: Vec<NodeId> = self.group_nodes(self.nodes[i].group);
                            if let Some((d, to)) = self.hand_overs.after_election(&others) {
                                self.queue.schedule(
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

    /// Per-replica checks after each of its steps, and its next timer.
    fn after_step(&mut self, i: usize) -> Result<(), Violation> {
        let now_local = self.clock(i);
        let node_id = self.nodes[i].id;
        let Some(r) = self.nodes[i].replica.as_ref() else {
            return Ok(());
        };
        if !self.black_box {
            r.assert_invariants();
        }
        let (leading, ts) = (
            r.paxos().role() == Role::Leader,
            r.paxos().last_assigned_ts(),
        );
        let t_safe = r.t_safe();
        let waits = r.waits_for();
        // Transactions prepared here that others wait for (a window).
        let waited_on: Option<TxnId> = (self.faults_on && leading)
            .then(|| {
                waits
                    .iter()
                    .map(|w| w.blocker)
                    .find(|b| r.state().prepared_txn(*b).is_some())
            })
            .flatten();
        let deadline = r.next_deadline();
        // Spanner §4.1.2: timestamps rise across leaders, in true-time order.
        let g = (self.nodes[i].group - 1) as usize;
        if let Err(e) =
            self.nodes[i]
                .host
                .check_assigned(node_id, leading, ts, &mut self.max_assigned_ts[g])
        {
            return Err(self.violation(rules::TS_MONOTONIC, e));
        }
        // Spanner §4.1.3: safe time never falls.
        if t_safe < self.nodes[i].last_t_safe {
            return Err(self.violation(
                rules::T_SAFE_MONOTONE,
                format!(
                    "node {node_id}: t_safe fell from {} to {}",
                    self.nodes[i].last_t_safe.0, t_safe.0
                ),
            ));
        }
        self.nodes[i].last_t_safe = t_safe;
        // Wound-wait: no cycle in the waits-for graph.
        if let (false, Some(cycle)) = (self.black_box, find_cycle(&waits)) {
            return Err(self.violation(
                rules::NO_DEADLOCK,
                format!(
                    "node {node_id}: transactions {} wait for each other",
                    cycle
                        .iter()
                        .map(TxnId::to_string)
                        .collect::<Vec<_>>()
                        .join(" → ")
                ),
            ));
        }
        if let Some(txn) = waited_on {
            let may = self.may_fail(i);
            let group = self.nodes[i].group;
            let keys = self.prepared_keys(i, txn);
            self.windows.note_prepared(txn, group, keys);
            let at = self.queue.at();
            if let Some(aim) = self.windows.on_wait_for_prepared(txn, group, at, may) {
                self.aim(
                    i,
                    aim,
                    "in a two-phase-commit window (others wait on its prepared keys)",
                );
            }
        }
        let wait = deadline.nanos_since(now_local.midpoint()).max(MS / 10);
        let now = self.now();
        let host = &mut self.nodes[i].host;
        if let Some(at) = host.arm(now, wait) {
            let generation = host.generation;
            self.queue.schedule(
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

    /// Spanner §4.1.1: at no true time do two replicas of a group hold a
    /// lease; and, across the groups a split made, no key has two
    /// leaseholders that may serve it: leaders of different groups holding
    /// leases, their terms started, serve disjoint ranges (their applied
    /// descriptors).
    fn check_leases(&self) -> Result<(), Violation> {
        let t = self.now();
        let holders: Vec<&Node> = self
            .nodes
            .iter()
            .filter(|n| {
                n.replica
                    .as_ref()
                    .is_some_and(|r| r.paxos().has_lease(reading(n, t)))
            })
            .collect();
        for g in 1..=self.groups {
            let ids: Vec<NodeId> = holders
                .iter()
                .filter(|n| n.group == g)
                .map(|n| n.id)
                .collect();
            check_one_lease(&ids).map_err(|e| self.violation(rules::LEASE_DISJOINT, e))?;
        }
        {
            // A leader whose term has not started (its no-op not yet
            // applied, so neither are the splits before it) serves nothing:
            // its applied range may be stale.
            let ranges: Vec<(&Node, &meridian_participant::RangeDescriptor)> = holders
                .iter()
                .filter_map(|n| n.replica.as_ref().map(|r| (*n, r)))
                .filter(|(_, r)| r.paxos().term_started())
                .map(|(n, r)| (n, r.state().descriptor()))
                .collect();
            for (a, (na, da)) in ranges.iter().enumerate() {
                for (nb, db) in &ranges[a + 1..] {
                    if na.group != nb.group && ranges_overlap(da, db) {
                        return Err(self.violation(
                            rules::LEASE_DISJOINT,
                            format!(
                                "n{}/g{} ({da}) and n{}/g{} ({db}) both hold a lease over \
                                 common keys",
                                na.id, na.group, nb.id, nb.group
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------
    // Network
    // ------------------------------------------------------------------

    fn send(&mut self, p: Packet) {
        // The network joins nodes: a replica's messages leave from its
        // node (its Paxos id), and partitions cut links between nodes.
        let node_of = |rid: NodeId| self.index(rid).map_or(0, |i| self.nodes[i].id);
        let (from, to) = match &p {
            Packet::Peer { m, .. } => (m.from, m.to),
            Packet::Group { from, to, .. } => (node_of(*from), node_of(*to)),
            Packet::Request { client, node, .. } => (CLIENT_BASE + *client as u64, node_of(*node)),
            Packet::Reply { client, .. } => (0, CLIENT_BASE + *client as u64),
        };
        let mut delays = self
            .net
            .deliveries(&mut self.rng, &self.faults, self.faults_on, from, to);
        if let Packet::Peer { group, m } = &p {
            if self.net.group_cuts.contains(&(*group, m.from, m.to))
                || self.net.timed_cuts.contains(&(*group, m.from, m.to))
            {
                delays.clear();
            }
        }
        if let (true, Packet::Group { from, to, msg, .. }) = (self.faults_on, &p) {
            let group = self.group_of_node(*to);
            let at = self.queue.at();
            delays = self.windows.copies(*from, group, msg, at, delays);
        }
        self.trace_packet(TraceKind::Send, &p, Some(delays.len()));
        for d in delays {
            self.queue.schedule(d, Event::Deliver(p.clone()));
        }
    }

    fn send_reply(&mut self, node: NodeId, id: RequestId, reply: Reply) {
        // Request ids are global; the client is found by its pending list.
        let Some(client) = self
            .clients
            .iter()
            .position(|c| c.pending.iter().any(|(r, _)| *r == id))
        else {
            // An answer nobody waits for any more.
            let txn = trace::reply_txn(&reply);
            self.trace_txn(TraceKind::Send, &[Party::Node(node)], txn, || {
                format!(
                    "n{node} answers req {id}, which no client awaits any more (not sent): {}",
                    trace::reply(&reply)
                )
            });
            return;
        };
        self.send(Packet::Reply {
            client,
            node,
            id,
            reply,
        });
    }

    fn inject_fault(&mut self) {
        if self.churn && self.rng.random_bool(CHURN_PROBABILITY) {
            self.change_membership();
        }
        if self.clock_rng.random_bool(self.excursion_probability) {
            self.start_excursion();
        }
        // Partitions cut links between physical nodes (ids = Paxos ids):
        // every replica a node hosts is cut off with it.
        let ids: Vec<NodeId> = (1..=self.machines.len() as NodeId).collect();
        // Faults aimed at a leader aim at one group's (at its node).
        let aimed = self.rng.random_range(0..self.groups) as usize;
        let leader_replica = self.leader_hint[aimed].and_then(|l| self.index(l));
        let leader = leader_replica.map(|l| self.nodes[l].id);
        if let Some((kind, v)) = self
            .net
            .maybe_partition(&mut self.rng, &self.faults, &ids, leader)
        {
            let mut parties = vec![Party::Node(v)];
            parties.extend(leader.map(Party::Node));
            self.trace(TraceKind::Fault, &parties, || {
                trace::partition(kind, v, leader)
            });
        }
        if self.rng.random_bool(self.pause) {
            let i = match leader_replica {
                Some(l) if self.rng.random_bool(LEADER_PAUSE_SHARE) => l,
                _ => self.rng.random_range(0..self.nodes.len()),
            };
            // A paused node's clock check would run only after what piled
            // up: pauses and clock excursions do not overlap.
            let hosted = self.cohosted(i);
            if hosted.iter().all(|&j| {
                let n = &self.nodes[j];
                n.paused_until.is_none()
                    && n.replica.is_some()
                    && n.excursion.is_none()
                    && !n.clock_flagged
            }) {
                let d = self.rng.random_range(300 * MS..1_500 * MS);
                let resume = [Resume::Shuffled, Resume::ClientsFirst, Resume::PeersFirst]
                    [self.rng.random_range(0..3)];
                // A process pause stops every replica the node hosts.
                for j in hosted {
                    self.nodes[j].paused_until = Some(self.now().saturating_add(d));
                    self.nodes[j].resume = resume;
                }
                let id = self.nodes[i].id;
                self.trace(TraceKind::Fault, &[Party::Node(id)], || {
                    let order = match resume {
                        Resume::Shuffled => "in random order",
                        Resume::ClientsFirst => "client requests first",
                        Resume::PeersFirst => "peer messages first",
                    };
                    format!(
                        "pause n{id} for {} ms (then handles what piled up {order})",
                        d / MS
                    )
                });
            }
        }
        if self.rng.random_bool(self.faults.power_loss) {
            self.trace(TraceKind::Fault, &[], || "power loss: every replica".into());
            for i in 0..self.nodes.len() {
                self.crash(i);
            }
        } else if self.rng.random_bool(self.faults.crash) {
            let i = self.rng.random_range(0..self.nodes.len());
            self.crash(i);
        }
        if let Err(v) = self.maybe_hand_over() {
            self.deferred.get_or_insert(v);
        }
        self.maybe_split();
    }

    /// The leader-hand-over fault: one group's leader is asked to pass its
    /// leadership on, as a draining node's would be (docs/design.md §3).
    fn maybe_hand_over(&mut self) -> Result<(), Violation> {
        let g = self.hand_overs.pick(self.groups);
        let others: Vec<NodeId> = self.group_nodes(g);
        let Some(to) = self.hand_overs.next(&others) else {
            return Ok(());
        };
        let Some(l) = self.leader_hint[(g - 1) as usize].and_then(|l| self.index(l)) else {
            return Ok(());
        };
        self.hand_over(l, to)
    }

    /// Asks node `l` to hand over to `to`, if it leads, is not paused and
    /// the heal is not near.
    fn hand_over(&mut self, l: usize, to: Option<NodeId>) -> Result<(), Violation> {
        if !self.faults_on || self.now().saturating_add(HAND_OVER_QUIET) >= self.heal_at {
            return Ok(());
        }
        let node = &self.nodes[l];
        let leads = node.paused_until.is_none()
            && node
                .replica
                .as_ref()
                .is_some_and(|r| r.paxos().role() == Role::Leader);
        if !leads {
            return Ok(());
        }
        let leader = node.id;
        let mut parties = vec![Party::Node(leader)];
        parties.extend(to.map(Party::Node));
        self.trace(TraceKind::Fault, &parties, || trace::hand_over(leader, to));
        self.step(l, Input::HandOver { to })
    }

    /// Whether a two-phase-commit window may fail replica `i` now: faults
    /// are on, the heal is not near (a failure then would elect a leader
    /// after it), and every replica of its group is up and running (the
    /// failure leaves a quorum).
    fn may_fail(&self, i: usize) -> bool {
        let g = self.nodes[i].group;
        self.faults_on
            && self.now().saturating_add(HAND_OVER_QUIET) < self.heal_at
            && self
                .nodes
                .iter()
                .filter(|n| n.group == g)
                .all(|n| n.replica.is_some() && n.paused_until.is_none())
    }

    /// The keys `txn` holds prepared at replica `i`: what it writes and
    /// what it read there.
    fn prepared_keys(&self, i: usize, txn: TxnId) -> Vec<Bytes> {
        self.nodes[i]
            .replica
            .as_ref()
            .and_then(|r| r.state().prepared_txn(txn))
            .map(|p| {
                p.writes
                    .iter()
                    .map(|w| w.key.clone())
                    .chain(p.reads.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Schedules the failure a two-phase-commit window aims at replica `i`.
    fn aim(&mut self, i: usize, aim: Aim, why: &'static str) {
        let generation = self.nodes[i].host.generation;
        match aim {
            Aim::Crash(d) => self.queue.schedule(
                d,
                Event::Crash {
                    node: i,
                    generation,
                    why,
                },
            ),
            Aim::HandOver(d) => self.queue.schedule(
                d,
                Event::HandOver {
                    node: i,
                    generation,
                    to: None,
                },
            ),
            Aim::IsolateAndCrash(d) => {
                let id = self.nodes[i].id;
                let group = self.nodes[i].group;
                let placed = self.placed();
                for peer in self.group_nodes(group) {
                    if peer == id {
                        continue;
                    }
                    if placed {
                        // Only the group's own traffic: the node's other
                        // replicas, and the coordinator it acknowledges
                        // to, still hear it.
                        self.net.group_cuts.insert((group, id, peer));
                        self.net.group_cuts.insert((group, peer, id));
                    } else {
                        self.net.blocked.insert((id, peer));
                        self.net.blocked.insert((peer, id));
                    }
                }
                self.trace(TraceKind::Fault, &[Party::Node(id)], || {
                    format!("n{id} cut off from its group {why}")
                });
                self.queue.schedule(
                    d,
                    Event::Crash {
                        node: i,
                        generation,
                        why,
                    },
                );
            }
        }
    }

    /// One group's leader proposes adding or removing a voter (never below
    /// three voters).
    fn change_membership(&mut self) {
        let g = self.rng.random_range(1..=self.groups);
        let Some(l) = self.leader_hint[(g - 1) as usize].and_then(|l| self.index(l)) else {
            return;
        };
        let members: Vec<NodeId> = self.group_nodes(g);
        let target = members[self.rng.random_range(0..members.len())];
        let now = self.clock(l);
        let leader = self.nodes[l].id;
        let Some(r) = self.nodes[l].replica.as_mut() else {
            return;
        };
        let voters = r.paxos().membership().voters.clone();
        let change = if voters.contains(&target) {
            if voters.len() <= 3 {
                return;
            }
            meridian_paxos::MembershipChange::RemoveVoter(target)
        } else {
            meridian_paxos::MembershipChange::AddVoter(target)
        };
        let mut out = Vec::new();
        if r.propose_membership(now, change, &mut out).is_ok() {
            self.trace(
                TraceKind::Fault,
                &[Party::Node(leader), Party::Node(target)],
                || format!("membership: n{leader} proposes {change:?} in group {g}"),
            );
        }
        if let Err(v) = self.process(l, out) {
            self.deferred.get_or_insert(v);
        }
    }

    /// Node `i`'s clock reading now (see [`reading`]).
    fn clock(&self, i: usize) -> TtInterval {
        reading(&self.nodes[i], self.now())
    }

    /// A replica's clock starts running away from true time (docs/design.md
    /// §2); the driver's clock check watches it from now on.
    fn start_excursion(&mut self) {
        let aimed = self.clock_rng.random_range(0..self.groups) as usize;
        let leader = self.leader_hint[aimed].and_then(|l| self.index(l));
        let i = match leader {
            Some(l) if self.clock_rng.random_bool(0.5) => l,
            _ => self.clock_rng.random_range(0..self.nodes.len()),
        };
        let max = self
            .clock_rng
            .random_range(EXCURSION_MAX.0..=EXCURSION_MAX.1);
        let length = self
            .clock_rng
            .random_range(EXCURSION_LENGTH.0..=EXCURSION_LENGTH.1);
        let ahead = self.clock_rng.random_bool(0.5);
        let hosted = self.cohosted(i);
        if hosted.iter().any(|&j| {
            let n = &self.nodes[j];
            n.excursion.is_some() || n.clock_flagged || n.paused_until.is_some()
        }) {
            return;
        }
        let now = self.now();
        // The node's clock: every replica it hosts reads it.
        for &j in &hosted {
            self.nodes[j].excursion = Some(Excursion {
                start: now,
                end: now.saturating_add(length),
                max,
                ahead,
            });
        }
        let id = self.nodes[i].id;
        self.trace(TraceKind::Fault, &[Party::Node(id)], || {
            format!(
                "n{id}'s clock runs {} true time for {} ms (by up to {} ms)",
                if ahead { "ahead of" } else { "behind" },
                length / MS,
                max / MS
            )
        });
        // Fails only on a violation, which the next event reports.
        for j in hosted {
            if let Err(v) = self.check_clock(j) {
                self.deferred.get_or_insert(v);
            }
        }
    }

    /// What the clock check of node `i` measured, for the replica's error.
    fn clock_reason(&self, i: usize) -> String {
        let now = self.now();
        let n = &self.nodes[i];
        let err = n.excursion.map_or(0, |x| x.error_at(now));
        let ahead = n.excursion.is_some_and(|x| x.ahead);
        format!(
            "clock {} true time by {}.{:03} ms; ε {}.{:03} ms",
            if ahead { "ahead of" } else { "behind" },
            err / MS,
            err % MS / 1_000,
            n.tt.model().base_epsilon_nanos / MS,
            n.tt.model().base_epsilon_nanos % MS / 1_000
        )
    }

    /// The driver's clock check (docs/design.md §2), every
    /// [`CLOCK_CHECK_INTERVAL`] while an excursion lasts: a clock whose
    /// error is within [`CLOCK_CHECK_GUARD`] of the smallest ε it reports
    /// is unhealthy, and stays so until the excursion ends. The replica is
    /// told each change (unless `clock-unmonitored`). The check knows the
    /// true error, as a node comparing against its peers estimates it; a
    /// clock's error grows by at most the guard between two checks, so the
    /// replica is told before its interval stops holding true time.
    fn check_clock(&mut self, i: usize) -> Result<(), Violation> {
        let now = self.now();
        let Some(x) = self.nodes[i].excursion else {
            return Ok(());
        };
        let over = !x.active_at(now);
        let base = self.nodes[i].tt.model().base_epsilon_nanos;
        let bad =
            !over && (self.nodes[i].clock_flagged || x.error_at(now) + CLOCK_CHECK_GUARD > base);
        if over {
            self.nodes[i].excursion = None;
        }
        if bad != self.nodes[i].clock_flagged {
            self.nodes[i].clock_flagged = bad;
            let id = self.nodes[i].id;
            let reason = if bad {
                self.clock_reason(i)
            } else {
                String::new()
            };
            self.trace(TraceKind::Fault, &[Party::Node(id)], || {
                if bad {
                    format!("n{id}'s clock check fails: {reason}")
                } else {
                    format!("n{id}'s clock is back in bound")
                }
            });
            if self.planted_bug != Some(PlantedBug::ClockUnmonitored) {
                self.step(i, Input::ClockHealth { ok: !bad, reason })?;
            }
        }
        if self.nodes[i].excursion.is_some() {
            self.queue
                .schedule(CLOCK_CHECK_INTERVAL, Event::ClockCheck { node: i });
        }
        Ok(())
    }

    /// Crashes replica `i`'s node: every replica it hosts goes down, each
    /// keeping a random prefix of its unsynced writes, and comes back
    /// after one downtime.
    fn crash(&mut self, i: usize) {
        if self.nodes[i].replica.is_none() {
            return;
        }
        self.stats.crashes += 1;
        let mut kept = Vec::new();
        let mut down_now = Vec::new();
        for j in self.cohosted(i) {
            if self.nodes[j].replica.is_none() {
                continue;
            }
            let keep = self.nodes[j].host.crash(&mut self.rng);
            self.nodes[j].replica = None;
            self.nodes[j].paused_until = None;
            // A crashed replica owes nothing.
            self.outstanding.retain(|_, o| o.0 != j);
            kept.push((self.nodes[j].group, keep));
            down_now.push(j);
        }
        let down = downtime(&mut self.rng);
        for j in down_now {
            self.queue.schedule(down, Event::Restart { node: j });
        }
        let id = self.nodes[i].id;
        let single = self.machines[self.nodes[i].machine].len() == 1;
        self.trace(TraceKind::Fault, &[Party::Node(id)], || {
            if single {
                format!("crash n{id} (kept {} unsynced writes)", kept[0].1)
            } else {
                let each: Vec<String> = kept.iter().map(|(g, k)| format!("g{g} {k}")).collect();
                format!(
                    "crash n{id} with its replicas (kept unsynced writes: {})",
                    each.join(", ")
                )
            }
        });
    }

    // ------------------------------------------------------------------
    // Clients
    // ------------------------------------------------------------------

    fn client_timer(&mut self, c: usize, delay: u64) {
        let cl = &mut self.clients[c];
        cl.wake += 1;
        let wake = cl.wake;
        self.queue
            .schedule(delay, Event::Client { client: c, wake });
    }

    /// Pauses the client for a short random time; answers to its pending
    /// requests still count if `keep`.
    fn pause(&mut self, c: usize, keep: bool) {
        let d = self.rng.random_range(MS..20 * MS);
        let cl = &mut self.clients[c];
        cl.paused = true;
        if !keep {
            cl.pending.clear();
        }
        self.client_timer(c, d);
    }

    /// The replica id of a random replica of `group`.
    fn random_node(&mut self, group: GroupId) -> NodeId {
        let members = &self.members[(group - 1) as usize];
        members[self.rng.random_range(0..members.len())] as NodeId + 1
    }

    /// Sends `request` to `node` and arms the timeout. With `keep`, answers
    /// to the client's earlier pending requests are still accepted.
    fn request(&mut self, c: usize, node: NodeId, request: Request, keep: bool) {
        let id = self.next_request;
        self.next_request += 1;
        let cl = &mut self.clients[c];
        cl.paused = false;
        if !keep {
            cl.pending.clear();
        }
        cl.pending.push((id, node));
        self.send(Packet::Request {
            client: c,
            node,
            id,
            request,
        });
        self.client_timer(c, self.request_timeout);
    }

    /// Sends `request` without waiting for an answer.
    fn fire(&mut self, c: usize, node: NodeId, request: Request) {
        let id = self.next_request;
        self.next_request += 1;
        self.send(Packet::Request {
            client: c,
            node,
            id,
            request,
        });
    }

    /// A client timer fired: a timeout, or the end of a pause.
    fn on_timer(&mut self, c: usize) {
        let paused = std::mem::replace(&mut self.clients[c].paused, false);
        let task = std::mem::replace(&mut self.clients[c].task, Task::Idle);
        match (task, paused) {
            (Task::Idle, _) => self.next_task(c),
            (Task::Txn(t), true) => self.txn_resume(c, t),
            (Task::Txn(t), false) => self.txn_timeout(c, t),
            (Task::Read(r), true) => self.send_read(c, r),
            (Task::Read(r), false) => self.retry_read(c, r),
        }
    }

    fn next_task(&mut self, c: usize) {
        self.clients[c].pending.clear();
        if self.now() >= self.clients_stop {
            return;
        }
        let at = self.queue.at();
        if let Some(kind) = self
            .splits
            .chase(at)
            .and_then(|key| self.write_of(c, &key))
            .or_else(|| self.chase())
        {
            self.new_attempt(c, kind, None, 0, 0);
            self.begin(c);
            return;
        }
        if let Some((at, reads)) = self.aimed_read(self.clients[c].tt.now().latest) {
            self.start_read_at_leader(c, at, reads);
            return;
        }
        let roll = self.rng.random_range(0..100);
        if roll < 12 {
            let who = self.rng.random_range(0..self.roster.keys.len());
            let kind = match self.rng.random_range(0..4) {
                0 => TxnKind::GoOff { who },
                1 => TxnKind::GoOffScan { who },
                _ => TxnKind::GoOn { who },
            };
            self.new_attempt(c, kind, None, 0, 0);
            self.begin(c);
        } else if roll < 50 {
            let n = self.bank.accounts.len();
            let from = self.rng.random_range(0..n);
            let to = (from + self.rng.random_range(1..n)) % n;
            let kind = if roll < 43 {
                let amount = self.rng.random_range(1..=20);
                TxnKind::Transfer { from, to, amount }
            } else if roll < 47 {
                TxnKind::Audit { from, to }
            } else {
                // The accounts half the time; sometimes with a limit that
                // truncates the scan.
                let range = [0, 0, 1, 2][self.rng.random_range(0..4)];
                let limit = if self.rng.random_bool(0.3) {
                    self.rng.random_range(1..n)
                } else {
                    100
                };
                TxnKind::ScanAudit { range, limit }
            };
            self.new_attempt(c, kind, None, 0, 0);
            self.begin(c);
        } else if roll < 58 {
            let n = self.rng.random_range(1..=2);
            let mut writes = Vec::new();
            for _ in 0..n {
                let r = self.rng.random_range(0..REGISTERS);
                let key = Bytes::from(format!("reg/{r}"));
                if self.rng.random_bool(DELETE_PROBABILITY) {
                    writes.push(Write::delete(key));
                    continue;
                }
                let cl = &mut self.clients[c];
                cl.writes += 1;
                writes.push(Write::put(key, Bytes::from(format!("c{c}.{}", cl.writes))));
            }
            self.new_attempt(c, TxnKind::Blind { writes }, None, 0, 0);
            self.begin(c);
        } else if roll < 70 {
            let kind = self.list_append();
            self.new_attempt(c, kind, None, 0, 0);
            self.begin(c);
        } else if roll < 85 {
            let reads = self.some_reads();
            self.start_read(c, ReadAt::Strong, reads);
        } else {
            let now = self.clients[c].tt.now();
            let at = if let Some(at) = self.future_read_at(now.latest) {
                at
            } else if self.rng.random_bool(0.5) {
                let back = self.rng.random_range(0..1_500 * MS);
                ReadAt::Exact(now.latest.saturating_sub(back))
            } else {
                ReadAt::MaxStaleness(self.rng.random_range(0..1_000 * MS))
            };
            let reads = self.some_reads();
            self.start_read(c, at, reads);
        }
    }

    /// A two-phase-commit window's bias (see `Windows::chase`): a
    /// transaction on a key prepared across a failover, if the window
    /// picks one that a transaction kind reads (an account or a roster
    /// entry).
    fn chase(&mut self) -> Option<TxnKind> {
        if !self.faults_on {
            return None;
        }
        let key = self.windows.chase(self.queue.at())?;
        let n = self.bank.accounts.len();
        if let Some(a) = self.bank.accounts.iter().position(|k| *k == key) {
            let other = (a + self.rng.random_range(1..n)) % n;
            return Some(match self.rng.random_range(0..4) {
                0 => TxnKind::Audit { from: a, to: other },
                1 => TxnKind::ScanAudit {
                    range: 0,
                    limit: 100,
                },
                _ => TxnKind::Transfer {
                    from: a,
                    to: other,
                    amount: self.rng.random_range(1..=20),
                },
            });
        }
        let who = self.roster.keys.iter().position(|k| *k == key)?;
        Some(match self.rng.random_range(0..3) {
            0 => TxnKind::GoOff { who },
            1 => TxnKind::GoOffScan { who },
            _ => TxnKind::GoOn { who },
        })
    }

    /// What a lock-free read reads: every key one by one, or a scan of
    /// every range (accounts, registers, roster) in one snapshot.
    fn some_reads(&mut self) -> Vec<ReadOp> {
        if self.rng.random_bool(0.5) {
            return self.all_gets();
        }
        let scan = |start: &'static [u8], end: &'static [u8]| ReadOp::Scan {
            start: Bytes::from_static(start),
            end: Some(Bytes::from_static(end)),
            limit: 100,
        };
        vec![
            scan(Bank::PREFIX, b"acct0"),
            scan(b"reg/", b"reg0"),
            scan(Roster::PREFIX, b"duty0"),
        ]
    }

    /// A list-append transaction: reads one to three lists, appends to one
    /// or two of them (a read-only list transaction sometimes).
    fn list_append(&mut self) -> TxnKind {
        let mut lists: Vec<usize> = (0..lists::LISTS).collect();
        let n = self.rng.random_range(1..=3);
        for i in 0..n {
            let j = self.rng.random_range(i..lists.len());
            lists.swap(i, j);
        }
        lists.truncate(n);
        let appends = self.rng.random_range(0..=2.min(n));
        let append = lists[..appends].to_vec();
        lists.sort_unstable();
        TxnKind::Append {
            read: lists,
            append,
        }
    }

    fn all_gets(&self) -> Vec<ReadOp> {
        self.bank
            .accounts
            .iter()
            .cloned()
            .chain((0..REGISTERS).map(|r| Bytes::from(format!("reg/{r}"))))
            .chain(self.roster.keys.iter().cloned())
            .map(ReadOp::Get)
            .collect()
    }

    /// Makes a new attempt of a transaction the client's task, in its
    /// Begin stage with nothing sent.
    fn new_attempt(
        &mut self,
        c: usize,
        kind: TxnKind,
        priority: Option<Priority>,
        attempts: u32,
        oldest_aborts: u32,
    ) {
        let record = self.history.txns.len();
        self.history.txns.push(TxnRecord {
            client: c,
            txn: None,
            invoked: self.now(),
            completed: None,
            outcome: Outcome::Aborted,
            reads: Vec::new(),
            reads_invoked: Timestamp::ZERO,
            scans: Vec::new(),
            writes: Vec::new(),
            optimistic: false,
            status: None,
        });
        let home = self.home_of(c, &kind);
        let node = self.clients[c].leaders[(home - 1) as usize];
        let mode = match self.cc {
            Cc::TwoPl => CcMode::Locking,
            Cc::Occ => CcMode::Optimistic,
            Cc::Mixed if self.rng.random_bool(0.5) => CcMode::Optimistic,
            Cc::Mixed => CcMode::Locking,
        };
        self.history.txns[record].optimistic = mode == CcMode::Optimistic;
        self.clients[c].task = Task::Txn(TxnTask {
            kind,
            priority,
            attempts: attempts + 1,
            record,
            stage: Stage::Begin,
            home,
            mode,
            node,
            plan: Vec::new(),
            step: 0,
            values: Vec::new(),
            scan_rows: Vec::new(),
            scan_plan: Vec::new(),
            terms: Vec::new(),
            txn: None,
            joining: false,
            commit_tries: 0,
            status_tries: 0,
            writes: Vec::new(),
            oldest_aborts,
        });
    }

    /// The group a transaction of `kind` begins at: its first key's.
    fn home_of(&self, c: usize, kind: &TxnKind) -> GroupId {
        let first = match kind {
            TxnKind::Blind { writes } => writes.first().map(|w| w.key.clone()),
            _ => self
                .read_keys(kind)
                .into_iter()
                .next()
                .or_else(|| self.scans(kind).first().map(|s| s.0.clone())),
        };
        first.map_or(1, |k| self.route(c, &k))
    }

    /// The group client `c`'s range cache routes `key` to.
    fn route(&self, c: usize, key: &[u8]) -> GroupId {
        self.clients[c].ranges.group_of(key)
    }

    /// Sends the current attempt's Begin to the client's leader hint for
    /// its home group; or, if the client holds an id reserved there and
    /// the attempt reads there first, takes it and sends that read, which
    /// begins it (docs/design.md §5.1).
    fn begin(&mut self, c: usize) {
        let Task::Txn(t) = &self.clients[c].task else {
            unreachable!("begin without a transaction")
        };
        let reads = !self.read_keys(&t.kind).is_empty() || !self.scans(&t.kind).is_empty();
        let home = t.home;
        let now = self.now();
        let slot = (home - 1) as usize;
        if let Some(sp) = self.clients[c].spares[slot].filter(|_| reads) {
            let txn = TxnId::new(sp.origin, sp.next);
            let next = Spares {
                next: sp.next + 1,
                ..sp
            };
            self.clients[c].spares[slot] = (next.next < next.end).then_some(next);
            let Task::Txn(mut t) = std::mem::replace(&mut self.clients[c].task, Task::Idle) else {
                unreachable!("checked above")
            };
            t.node = sp.node;
            t.joining = true;
            // A retry keeps its first attempt's priority.
            let start = sp.priority.0.saturating_add(now.nanos_since(sp.at));
            let priority = *t.priority.get_or_insert(Priority::new(start));
            self.history.txns[t.record].invoked = now;
            self.trace_txn(TraceKind::Client, &[Party::Client(c)], Some(txn), || {
                format!("c{c} begins txn {txn} with its first read (a reserved id)")
            });
            self.begun(c, t, txn, priority);
            return;
        }
        let node = self.clients[c].leaders[slot];
        let first_attempt = t.priority.is_none();
        let Task::Txn(t) = &mut self.clients[c].task else {
            unreachable!("checked above")
        };
        t.node = node;
        let (priority, record, mode) = (t.priority, t.record, t.mode);
        self.history.txns[record].invoked = now;
        // Only a first attempt reserves: a retry's priority is old.
        let reserve = if first_attempt && self.clients[c].spares[slot].is_none() {
            reserve_for(c)
        } else {
            0
        };
        let begin = Request::Begin {
            priority,
            mode,
            reserve,
        };
        self.request(c, node, begin, false);
    }

    /// The attempt has its id (a `Begin` answered, or a reserved id taken):
    /// start its reads, or commit at once if it reads nothing.
    fn begun(&mut self, c: usize, mut t: TxnTask, txn: TxnId, priority: Priority) {
        t.txn = Some(txn);
        t.priority = Some(priority);
        self.history.txns[t.record].txn = Some(txn);
        let keys = self.read_keys(&t.kind);
        let scans = self.scans(&t.kind);
        if keys.is_empty() && scans.is_empty() {
            t.writes = self.decide_writes(&t.kind, t.record, &[], &[]);
            self.history.txns[t.record].writes = t.writes.clone();
            t.stage = Stage::Commit;
            self.send_commit(c, t, false);
        } else {
            t.stage = Stage::Read;
            let mut plan: Vec<(GroupId, Vec<usize>)> = Vec::new();
            for (i, k) in keys.iter().enumerate() {
                let g = self.route(c, k);
                match plan.iter_mut().find(|(pg, _)| *pg == g) {
                    Some((_, idx)) => idx.push(i),
                    None => plan.push((g, vec![i])),
                }
            }
            // Each scan at every group its span overlaps, in key order,
            // each asked for its part.
            let mut scan_plan = Vec::new();
            for (i, (start, end, _)) in scans.iter().enumerate() {
                for (group, start, end) in self.clients[c].ranges.spans(start, end.as_ref()) {
                    scan_plan.push(ScanPart {
                        group,
                        scan: i,
                        start,
                        end,
                    });
                }
            }
            let first = plan
                .first()
                .map(|(g, _)| *g)
                .or_else(|| scan_plan.first().map(|p| p.group))
                .unwrap_or(t.home);
            assert_eq!(first, t.home, "the first read is at home");
            t.plan = plan;
            t.scan_plan = scan_plan;
            t.step = 0;
            t.values = vec![None; keys.len()];
            t.scan_rows = vec![Vec::new(); scans.len()];
            let now = self.now();
            self.history.txns[t.record].reads_invoked = now;
            self.send_txn_read(c, t);
        }
    }

    /// Sends the read of the attempt's next group: at its home group as
    /// itself, elsewhere as a guest.
    fn send_txn_read(&mut self, c: usize, t: TxnTask) {
        let group = step_group(&t);
        let (node, guest) = if group == t.home && t.joining {
            let guest = Guest {
                priority: t.priority.expect("begun"),
                term: None,
                mode: t.mode,
            };
            (t.node, Some(guest))
        } else if group == t.home {
            (t.node, None)
        } else {
            let guest = Guest {
                priority: t.priority.expect("begun"),
                // The term an earlier request there met, if any.
                term: t.terms.iter().find(|(g, _)| *g == group).map(|(_, t)| *t),
                mode: t.mode,
            };
            (self.clients[c].leaders[(group - 1) as usize], Some(guest))
        };
        let txn = t.txn.expect("begun");
        let request = if t.step < t.plan.len() {
            let all = self.read_keys(&t.kind);
            let keys = t.plan[t.step].1.iter().map(|&i| all[i].clone()).collect();
            Request::Read { txn, keys, guest }
        } else {
            let part = t.scan_plan[t.step - t.plan.len()].clone();
            let (_, _, limit) = self.scans(&t.kind)[part.scan].clone();
            let (start, end) = (part.start, part.end);
            Request::Scan {
                txn,
                start,
                end,
                limit,
                guest,
            }
        };
        self.clients[c].task = Task::Txn(t);
        self.request(c, node, request, false);
    }

    /// Ends the attempt as aborted and retries the transaction (same
    /// priority) after a pause, unless it has had its attempts.
    fn retry_txn(&mut self, c: usize, mut t: TxnTask) {
        let now = self.now();
        let rec = &mut self.history.txns[t.record];
        rec.outcome = Outcome::Aborted;
        rec.completed = Some(now);
        self.stats.aborts += 1;
        // Wound-wait's promise: optimistic transactions make none.
        if !self.faults_on && t.mode == CcMode::Locking && self.is_oldest(c, t.priority) {
            t.oldest_aborts += 1;
            if t.oldest_aborts >= OLDEST_COMMITS_WITHIN && self.deferred.is_none() {
                self.deferred = Some(self.violation(
                    rules::OLDEST_COMMITS,
                    format!(
                        "client {c}'s transaction (priority {:?}) was the oldest live one and \
                         aborted {} times after the heal",
                        t.priority.map(|p| p.0.0),
                        t.oldest_aborts
                    ),
                ));
            }
        }
        if let Some(txn) = t.txn {
            // Best effort: free its locks now rather than at the timeout,
            // at home and wherever it read, and where a read went
            // unanswered: a read waiting for a lock is never taken for
            // inactive, and would hold its place in the queue for good.
            self.fire(c, t.node, Request::Abort { txn });
            let mut groups: Vec<GroupId> = t.terms.iter().map(|(g, _)| *g).collect();
            if t.stage == Stage::Read && t.step < t.plan.len() + t.scan_plan.len() {
                groups.push(step_group(&t));
            }
            groups.sort_unstable();
            groups.dedup();
            for g in groups.into_iter().filter(|g| *g != t.home) {
                let node = self.clients[c].leaders[(g - 1) as usize];
                self.fire(c, node, Request::Abort { txn });
            }
        }
        if t.attempts < MAX_ATTEMPTS {
            self.new_attempt(c, t.kind, t.priority, t.attempts, t.oldest_aborts);
        }
        self.pause(c, false);
    }

    /// Whether client `c`'s transaction of `priority` is older than every
    /// other client's live transaction.
    fn is_oldest(&self, c: usize, priority: Option<Priority>) -> bool {
        let Some(p) = priority else { return false };
        self.clients
            .iter()
            .enumerate()
            .all(|(o, cl)| match &cl.task {
                Task::Txn(t) if o != c => t.priority.is_none_or(|q| p < q),
                _ => true,
            })
    }

    /// The keys a transaction of `kind` reads under locks.
    fn read_keys(&self, kind: &TxnKind) -> Vec<Bytes> {
        match kind {
            TxnKind::Transfer { from, to, .. } | TxnKind::Audit { from, to } => vec![
                self.bank.accounts[*from].clone(),
                self.bank.accounts[*to].clone(),
            ],
            TxnKind::Blind { .. } => Vec::new(),
            TxnKind::GoOff { .. } => self.roster.keys.clone(),
            TxnKind::GoOn { who } => vec![self.roster.keys[*who].clone()],
            TxnKind::Append { read, .. } => read.iter().map(|&i| lists::key(i)).collect(),
            TxnKind::ScanAudit { .. } | TxnKind::GoOffScan { .. } => Vec::new(),
        }
    }

    /// The ranges a transaction of `kind` scans: `(start, end, limit)`.
    fn scans(&self, kind: &TxnKind) -> Vec<(Bytes, Option<Bytes>, usize)> {
        let range = |start: &'static [u8], end: &'static [u8], limit| {
            (
                Bytes::from_static(start),
                Some(Bytes::from_static(end)),
                limit,
            )
        };
        match kind {
            TxnKind::ScanAudit { range: 0, limit } => vec![range(Bank::PREFIX, b"acct0", *limit)],
            TxnKind::ScanAudit { range: 1, limit } => vec![range(b"reg/", b"reg0", *limit)],
            TxnKind::ScanAudit { limit, .. } => vec![range(Roster::PREFIX, b"duty0", *limit)],
            TxnKind::GoOffScan { .. } => vec![range(Roster::PREFIX, b"duty0", 100)],
            _ => Vec::new(),
        }
    }

    /// What a transaction of `kind` writes, having read `values` (of
    /// [`Self::read_keys`], in order).
    fn decide_writes(
        &self,
        kind: &TxnKind,
        record: usize,
        values: &[Option<Bytes>],
        scan_rows: &[Vec<(Bytes, Bytes)>],
    ) -> Vec<Write> {
        let accounts = &self.bank.accounts;
        match kind {
            TxnKind::ScanAudit { .. } => Vec::new(),
            TxnKind::GoOffScan { who } => {
                // The rows are the entries that exist: off duty, or (never
                // written by this workload) some other value.
                let off = |k: &Bytes| {
                    scan_rows[0]
                        .iter()
                        .any(|(rk, v)| rk == k && !Roster::on_duty(Some(v)))
                };
                let on = self.roster.keys.iter().filter(|k| !off(k)).count();
                let key = &self.roster.keys[*who];
                if !off(key) && on >= 2 {
                    vec![Write::put(key.clone(), Bytes::from_static(Roster::OFF))]
                } else {
                    Vec::new()
                }
            }
            TxnKind::Transfer { from, to, amount } => {
                let bf = self.bank.balance(values[0].as_ref());
                let bt = self.bank.balance(values[1].as_ref());
                vec![
                    Write::put(accounts[*from].clone(), Bank::encode(bf - amount)),
                    Write::put(accounts[*to].clone(), Bank::encode(bt + amount)),
                ]
            }
            TxnKind::Audit { .. } => Vec::new(),
            TxnKind::Blind { writes } => writes.clone(),
            TxnKind::GoOff { who } => {
                let on = values
                    .iter()
                    .filter(|v| Roster::on_duty(v.as_ref()))
                    .count();
                if Roster::on_duty(values[*who].as_ref()) && on >= 2 {
                    vec![Write::put(
                        self.roster.keys[*who].clone(),
                        Bytes::from_static(Roster::OFF),
                    )]
                } else {
                    Vec::new()
                }
            }
            TxnKind::Append { append, .. } => {
                lists::appends(record, &self.read_keys(kind), values, append)
            }
            TxnKind::GoOn { who } => {
                if Roster::on_duty(values[0].as_ref()) {
                    Vec::new()
                } else {
                    vec![Write::delete(self.roster.keys[*who].clone())]
                }
            }
        }
    }

    fn txn_resume(&mut self, c: usize, t: TxnTask) {
        let stage = t.stage;
        self.clients[c].task = Task::Txn(t);
        match stage {
            Stage::Begin => self.begin(c),
            Stage::Commit => {
                let Task::Txn(t) = std::mem::replace(&mut self.clients[c].task, Task::Idle) else {
                    unreachable!("set above")
                };
                self.send_commit(c, t, true);
            }
            Stage::Status => {
                let Task::Txn(t) = std::mem::replace(&mut self.clients[c].task, Task::Idle) else {
                    unreachable!("set above")
                };
                self.ask_status(c, t);
            }
            Stage::Read => {
                // Ask the group whose read was refused again (its leader
                // was not ready, or its queues full).
                let Task::Txn(t) = std::mem::replace(&mut self.clients[c].task, Task::Idle) else {
                    unreachable!("set above")
                };
                self.send_txn_read(c, t);
            }
        }
    }

    fn txn_timeout(&mut self, c: usize, t: TxnTask) {
        match t.stage {
            Stage::Begin => {
                // No answer: try another replica.
                let home = t.home;
                self.clients[c].leaders[(home - 1) as usize] = self.random_node(home);
                self.clients[c].task = Task::Txn(t);
                self.begin(c);
            }
            // No commit was sent: the attempt can be dropped safely.
            Stage::Read => {
                let g = step_group(&t);
                if g == t.home {
                    self.clients[c].spares[(t.home - 1) as usize] = None;
                } else if self.splits.on() {
                    // The guest replica may be gone (a child replica not
                    // yet recreated): ask another next time.
                    self.clients[c].leaders[(g - 1) as usize] = self.random_node(g);
                }
                self.retry_txn(c, t)
            }
            Stage::Commit if self.status_on_timeout => {
                // Ask what became of it rather than sending it again (its
                // commit may still be in flight).
                let home = t.home;
                self.clients[c].leaders[(home - 1) as usize] = self.random_node(home);
                self.ask_status(c, t);
            }
            Stage::Commit => {
                let home = t.home;
                self.clients[c].leaders[(home - 1) as usize] = self.random_node(home);
                self.send_commit(c, t, true);
            }
            Stage::Status => {
                let home = t.home;
                self.clients[c].leaders[(home - 1) as usize] = self.random_node(home);
                self.ask_status(c, t);
            }
        }
    }

    /// The commit's outcome is unknown: ask the home group's leader what
    /// became of the transaction (docs/design.md §5.5), up to
    /// [`MAX_STATUS_TRIES`] times; answers to the earlier commit tries
    /// still count.
    fn ask_status(&mut self, c: usize, mut t: TxnTask) {
        if t.status_tries >= MAX_STATUS_TRIES {
            self.history.txns[t.record].outcome = Outcome::Unknown;
            self.stats.unknown += 1;
            self.clients[c].task = Task::Idle;
            self.pause(c, false);
            return;
        }
        t.status_tries += 1;
        t.stage = Stage::Status;
        self.history.txns[t.record].outcome = Outcome::Unknown;
        let node = self.clients[c].leaders[(t.home - 1) as usize];
        let txn = t.txn.expect("a committing attempt has an id");
        self.clients[c].task = Task::Txn(t);
        self.request(c, node, Request::TxnStatus { txn }, true);
    }

    fn send_commit(&mut self, c: usize, mut t: TxnTask, keep: bool) {
        if t.commit_tries >= MAX_COMMIT_TRIES {
            // The outcome could not be learned by asking again: ask what
            // became of it.
            self.ask_status(c, t);
            return;
        }
        t.commit_tries += 1;
        // From the first commit sent until an answer, the outcome is
        // unknown: the commit may be in the log although no one said so.
        self.history.txns[t.record].outcome = Outcome::Unknown;
        let node = if t.commit_tries == 1 {
            t.node
        } else {
            self.clients[c].leaders[(t.home - 1) as usize]
        };
        // The writes by group; every other group it read or writes at is a
        // participant, with the term its reads there met.
        let mut by_group: std::collections::BTreeMap<GroupId, Vec<Write>> = Default::default();
        self.splits.note_written(t.writes.iter().map(|w| &w.key));
        for w in &t.writes {
            by_group
                .entry(self.route(c, &w.key))
                .or_default()
                .push(w.clone());
        }
        let writes = by_group.remove(&t.home).unwrap_or_default();
        let mut groups: BTreeSet<GroupId> = by_group.keys().copied().collect();
        groups.extend(t.terms.iter().map(|(g, _)| *g));
        groups.remove(&t.home);
        let participants = groups
            .into_iter()
            .map(|group| Participant {
                group,
                term: t
                    .terms
                    .iter()
                    .find(|(g, _)| *g == group)
                    .map(|(_, term)| *term),
                writes: by_group.remove(&group).unwrap_or_default(),
            })
            .collect();
        let request = Request::Commit {
            txn: t.txn.expect("a committing attempt has an id"),
            writes,
            participants,
        };
        self.clients[c].task = Task::Txn(t);
        self.request(c, node, request, keep);
    }

    fn on_reply(&mut self, c: usize, id: RequestId, reply: Reply) {
        let Some(&(_, node)) = self.clients[c].pending.iter().find(|(r, _)| *r == id) else {
            return;
        };
        if let Err(TxnError::NotLeader { leader }) = &reply {
            let g = self.group_of_node(node);
            // The hint names a node: the group's replica there.
            let hint = leader
                .and_then(|l| self.replica_at(g, l))
                .map(|i| i as NodeId + 1)
                .unwrap_or_else(|| self.random_node(g));
            self.clients[c].leaders[(g - 1) as usize] = hint;
        }
        let task = std::mem::replace(&mut self.clients[c].task, Task::Idle);
        match task {
            Task::Idle => {}
            Task::Txn(t) => self.txn_reply(c, t, reply),
            Task::Read(r) => self.read_reply(c, node, r, reply),
        }
    }

    fn finish_task(&mut self, c: usize) {
        self.clients[c].task = Task::Idle;
        self.pause(c, false);
    }

    fn txn_reply(&mut self, c: usize, mut t: TxnTask, reply: Reply) {
        if t.stage == Stage::Read && reply.is_err() && step_group(&t) == t.home {
            // Refused at home: its leader may have changed, and would
            // refuse the other reserved ids too.
            self.clients[c].spares[(t.home - 1) as usize] = None;
        }
        if let Err(TxnError::OutsideRange { .. }) = &reply {
            // A split moved keys the client's cache routed here: refresh
            // the cache from the directory and retry the transaction.
            self.refresh_ranges(c);
            let sent_before = t.commit_tries > 1 || t.stage == Stage::Status;
            if !(matches!(t.stage, Stage::Commit | Stage::Status) && sent_before) {
                // Refused before anything was proposed: nothing committed.
                self.retry_txn(c, t);
            } else {
                // An earlier try of the commit may still apply.
                self.history.txns[t.record].outcome = Outcome::Unknown;
                self.stats.unknown += 1;
                self.finish_task(c);
            }
            return;
        }
        match (t.stage, reply) {
            (
                Stage::Begin,
                Ok(Response::Begun {
                    txn,
                    priority,
                    reserved,
                }),
            ) => {
                if reserved > 0 {
                    self.clients[c].spares[(t.home - 1) as usize] = Some(Spares {
                        node: t.node,
                        origin: txn.origin,
                        next: txn.seq + 1,
                        end: txn.seq + 1 + u64::from(reserved),
                        priority,
                        at: self.now(),
                    });
                }
                self.begun(c, t, txn, priority);
            }
            (Stage::Begin, _) => {
                // Nothing begun: try again (at the hinted leader).
                self.clients[c].task = Task::Txn(t);
                self.pause(c, false);
            }
            (Stage::Read, Ok(Response::Read { values, term })) => {
                let (group, idx) = t.plan[t.step].clone();
                assert_eq!(idx.len(), values.len(), "one value per key read");
                for (i, v) in idx.into_iter().zip(values) {
                    t.values[i] = v;
                }
                if !t.terms.iter().any(|(g, _)| *g == group) {
                    t.terms.push((group, term));
                }
                if group == t.home {
                    t.joining = false;
                }
                t.step += 1;
                self.next_txn_read(c, t);
            }
            (Stage::Read, Ok(Response::Rows { rows, term })) => {
                let (group, i) = {
                    let p = &t.scan_plan[t.step - t.plan.len()];
                    (p.group, p.scan)
                };
                // Each group returns its first `limit` rows: together they
                // hold the first `limit` rows of the range.
                let (_, _, limit) = self.scans(&t.kind)[i].clone();
                let merged = &mut t.scan_rows[i];
                merged.extend(rows);
                merged.sort();
                merged.truncate(limit);
                if !t.terms.iter().any(|(g, _)| *g == group) {
                    t.terms.push((group, term));
                }
                if group == t.home {
                    t.joining = false;
                }
                t.step += 1;
                self.next_txn_read(c, t);
            }
            // A guest group's refusal that says nothing of the transaction:
            // ask again after a pause (a guest group electing a leader must
            // not cost the attempt). At home the transaction lives only at
            // the leader it began at: a refusal there ends the attempt.
            (Stage::Read, Err(e))
                if step_group(&t) != t.home
                    && e.is_retryable()
                    && !matches!(e, TxnError::Aborted { .. }) =>
            {
                self.clients[c].task = Task::Txn(t);
                self.pause(c, false);
            }
            // No commit was sent: dropping the attempt is safe.
            (Stage::Read, _) => self.retry_txn(c, t),
            (Stage::Status, Ok(Response::TxnStatus(status))) => {
                let txn = t.txn;
                self.trace_txn(TraceKind::Client, &[Party::Client(c)], txn, || {
                    format!(
                        "c{c} asked what became of txn {}: {status:?}",
                        txn.map_or("?".into(), |t| t.to_string()),
                    )
                });
                match status {
                    TxnStatus::Committed(commit_ts) => {
                        let now = self.now();
                        let rec = &mut self.history.txns[t.record];
                        rec.status = Some(Outcome::Committed(commit_ts));
                        rec.outcome = Outcome::Committed(commit_ts);
                        rec.completed = Some(now);
                        self.finish_task(c);
                    }
                    TxnStatus::Aborted => {
                        // Final: a new attempt may run.
                        self.history.txns[t.record].status = Some(Outcome::Aborted);
                        self.retry_txn(c, t);
                    }
                    TxnStatus::InProgress => {
                        self.clients[c].task = Task::Txn(t);
                        self.pause(c, true);
                    }
                    TxnStatus::Unknown => {
                        self.history.txns[t.record].outcome = Outcome::Unknown;
                        self.stats.unknown += 1;
                        self.finish_task(c);
                    }
                }
            }
            // A late answer to one of its commit tries.
            (Stage::Commit | Stage::Status, Ok(Response::Committed { commit_ts })) => {
                let now = self.now();
                let rec = &mut self.history.txns[t.record];
                rec.outcome = Outcome::Committed(commit_ts);
                rec.completed = Some(now);
                self.finish_task(c);
            }
            (Stage::Commit | Stage::Status, Err(TxnError::Aborted { .. })) => self.retry_txn(c, t),
            (Stage::Commit | Stage::Status, Err(e)) if e.is_retryable() => {
                // Ask again (at the hinted leader) after a pause; answers to
                // the earlier tries still count.
                self.clients[c].task = Task::Txn(t);
                self.pause(c, true);
            }
            (Stage::Commit, Err(TxnError::OutcomeUnknown { .. } | TxnError::TxnBusy { .. })) => {
                // Not definitive: ask what became of it.
                self.ask_status(c, t);
            }
            (Stage::Commit | Stage::Status, other) => {
                // Not definitive: the outcome stays unknown.
                let txn = t.txn;
                self.trace_txn(TraceKind::Client, &[Party::Client(c)], txn, || {
                    format!(
                        "c{c} gives up learning the outcome of txn {}: {}",
                        txn.map_or("?".into(), |t| t.to_string()),
                        trace::reply(&other)
                    )
                });
                self.history.txns[t.record].outcome = Outcome::Unknown;
                self.stats.unknown += 1;
                self.finish_task(c);
            }
        }
    }

    /// Sends the attempt's next read or scan, or, with every one answered,
    /// records what it saw and commits.
    fn next_txn_read(&mut self, c: usize, mut t: TxnTask) {
        if t.step < t.plan.len() + t.scan_plan.len() {
            self.send_txn_read(c, t);
            return;
        }
        let keys = self.read_keys(&t.kind);
        let values = std::mem::take(&mut t.values);
        let scan_rows = std::mem::take(&mut t.scan_rows);
        t.writes = self.decide_writes(&t.kind, t.record, &values, &scan_rows);
        let scans = self
            .scans(&t.kind)
            .into_iter()
            .zip(scan_rows)
            .map(|((start, end, limit), rows)| ScanRecord {
                start,
                end,
                limit,
                rows,
            })
            .collect();
        let rec = &mut self.history.txns[t.record];
        rec.reads = keys.into_iter().zip(values).collect();
        rec.scans = scans;
        rec.writes = t.writes.clone();
        t.stage = Stage::Commit;
        self.send_commit(c, t, false);
    }

    fn start_read(&mut self, c: usize, at: ReadAt, reads: Vec<ReadOp>) {
        self.start_read_to(c, at, reads, false);
    }

    /// As [`Sim::start_read`], to the leader of the group as the client
    /// knows it.
    fn start_read_at_leader(&mut self, c: usize, at: ReadAt, reads: Vec<ReadOp>) {
        self.start_read_to(c, at, reads, true);
    }

    fn start_read_to(&mut self, c: usize, at: ReadAt, reads: Vec<ReadOp>, to_leader: bool) {
        let parts = self.read_parts(c, &reads);
        let strong = at == ReadAt::Strong;
        let at = if parts.len() == 1 {
            at
        } else {
            // Across groups, one timestamp for every group: Spanner §4.2.2
            // reads at s_read = TT.now().latest without negotiating; a
            // bounded-stale read at that much before it.
            let now = self.clients[c].tt.now().latest;
            match at {
                ReadAt::Strong => ReadAt::Exact(now),
                ReadAt::MaxStaleness(n) => ReadAt::Exact(now.saturating_sub(n)),
                exact => exact,
            }
        };
        let r = ReadTask {
            at,
            strong,
            results: vec![None; reads.len()],
            reads,
            parts,
            step: 0,
            read_ts: Timestamp::ZERO,
            invoked: self.now(),
            tries: 0,
            to_leader,
        };
        self.send_read(c, r);
    }

    /// Which groups each read goes to, as client `c`'s range cache has
    /// it: a get to its key's, a scan to every group its span overlaps,
    /// each asked for its part (and returning the rows it holds).
    fn read_parts(&self, c: usize, reads: &[ReadOp]) -> Vec<(GroupId, Vec<(usize, ReadOp)>)> {
        let mut parts: Vec<(GroupId, Vec<(usize, ReadOp)>)> = Vec::new();
        for (i, op) in reads.iter().enumerate() {
            let ops: Vec<(GroupId, ReadOp)> = match op {
                ReadOp::Get(k) => vec![(self.route(c, k), op.clone())],
                ReadOp::Scan { start, end, limit } => self.clients[c]
                    .ranges
                    .spans(start, end.as_ref())
                    .into_iter()
                    .map(|(g, start, end)| {
                        let limit = *limit;
                        (g, ReadOp::Scan { start, end, limit })
                    })
                    .collect(),
            };
            for (g, op) in ops {
                match parts.iter_mut().find(|(pg, _)| *pg == g) {
                    Some((_, idx)) => idx.push((i, op)),
                    None => parts.push((g, vec![(i, op)])),
                }
            }
        }
        parts
    }

    fn send_read(&mut self, c: usize, mut r: ReadTask) {
        r.tries += 1;
        let group = r.parts[r.step].0;
        let node = if r.to_leader || self.rng.random_bool(0.5) {
            self.clients[c].leaders[(group - 1) as usize]
        } else {
            self.random_node(group)
        };
        let request = Request::ReadOnly {
            at: r.at,
            reads: r.parts[r.step].1.iter().map(|(_, op)| op.clone()).collect(),
        };
        self.clients[c].task = Task::Read(r);
        self.request(c, node, request, false);
    }

    fn retry_read(&mut self, c: usize, r: ReadTask) {
        if r.tries < MAX_READ_TRIES {
            self.clients[c].task = Task::Read(r);
        }
        self.pause(c, false);
    }

    fn read_reply(&mut self, c: usize, node: NodeId, mut r: ReadTask, reply: Reply) {
        match reply {
            Ok(Response::ReadOnly { read_ts, results }) => {
                // A read served ahead of the clock by the group's leader
                // (only a leader serves one at once): its keys are split
                // keys for a while (see `splits`).
                if r.to_leader && read_ts > self.now() {
                    let keys: Vec<Bytes> = r.parts[r.step]
                        .1
                        .iter()
                        .filter_map(|(_, op)| match op {
                            ReadOp::Get(k) => Some(k.clone()),
                            ReadOp::Scan { .. } => None,
                        })
                        .collect();
                    let at = self.queue.at();
                    self.splits.note_read_ahead(r.parts[r.step].0, &keys, at);
                }
                let idx: Vec<usize> = r.parts[r.step].1.iter().map(|(i, _)| *i).collect();
                assert_eq!(idx.len(), results.len(), "one result per read");
                for (i, res) in idx.into_iter().zip(results) {
                    let merged = match (r.results[i].take(), res) {
                        (None, res) => res,
                        (Some(ReadResult::Rows(mut a)), ReadResult::Rows(b)) => {
                            // A scan across groups: each group's rows, in
                            // key order, at most `limit` in all.
                            a.extend(b);
                            a.sort();
                            if let ReadOp::Scan { limit, .. } = &r.reads[i] {
                                a.truncate(*limit);
                            }
                            ReadResult::Rows(a)
                        }
                        (Some(a), b) => panic!("read {:?} answered {a:?} and {b:?}", r.reads[i]),
                    };
                    r.results[i] = Some(merged);
                }
                r.read_ts = read_ts;
                r.step += 1;
                if r.step < r.parts.len() {
                    r.tries = 0;
                    self.send_read(c, r);
                    return;
                }
                let mut rec = ReadRecord {
                    client: c,
                    node,
                    strong: r.strong,
                    invoked: r.invoked,
                    completed: self.now(),
                    read_ts: r.read_ts,
                    gets: Vec::new(),
                    scans: Vec::new(),
                };
                for (op, res) in r.reads.iter().zip(r.results) {
                    match (op, res.expect("every read answered")) {
                        (ReadOp::Get(k), ReadResult::Value(v)) => rec.gets.push((k.clone(), v)),
                        (ReadOp::Scan { start, end, limit }, ReadResult::Rows(rows)) => {
                            rec.scans.push(ScanRecord {
                                start: start.clone(),
                                end: end.clone(),
                                limit: *limit,
                                rows,
                            })
                        }
                        (op, res) => panic!("read {op:?} answered with {res:?}"),
                    }
                }
                self.history.reads.push(rec);
                self.stats.reads += 1;
                self.finish_task(c);
            }
            Err(TxnError::OutsideRange { .. }) => {
                // Refresh the range cache and plan the read again (its
                // tries still count).
                self.refresh_ranges(c);
                let at = if r.strong { ReadAt::Strong } else { r.at };
                let tries = r.tries;
                self.start_read(c, at, r.reads);
                if let Task::Read(r) = &mut self.clients[c].task {
                    r.tries = tries;
                }
            }
            Err(TxnError::BelowGcHorizon { .. })
            | Err(TxnError::ReadTimestampTooFarAhead { .. })
            | Err(TxnError::Invalid(_)) => self.finish_task(c),
            Err(_) => self.retry_read(c, r),
            Ok(other) => panic!("client {c}: a read answered with {other:?}"),
        }
    }

    // ------------------------------------------------------------------
    // End of run
    // ------------------------------------------------------------------

    fn check_end(&mut self) -> Result<(), Violation> {
        self.stats.commits = self.log.commits.len() as u64;
        // Atomic commitment, eventually: a transaction that committed in
        // one group is applied in every group it writes to within a bound;
        // only those committed just before the end may still be on their
        // way there.
        let mut pending = std::collections::HashSet::new();
        let settled_before = self.now().saturating_sub(DECISION_BOUND);
        for t in &self.history.txns {
            let Some(txn) = t.txn else { continue };
            let Some((ts, applied)) = self.log.commits.get(&txn) else {
                continue;
            };
            let ts = *ts;
            // Every key it writes was applied by some group: the one that
            // serves it now or, if it committed before a split moved the
            // key, the group that served it then.
            let missing = t
                .writes
                .iter()
                .find(|w| !applied.iter().any(|a| a.key == w.key))
                .map(|w| self.group_of(&w.key));
            if let Some(g) = missing {
                if ts < settled_before {
                    return Err(self.violation(
                        rules::ATOMIC_COMMIT,
                        format!(
                            "txn {txn} committed at {} in some groups, yet group {g} never applied it",
                            ts.0
                        ),
                    ));
                }
                pending.insert(txn);
            }
        }
        crate::history::check_with_pending(&self.history, &self.log, &self.bank, &pending)
            .and_then(|()| self.roster.check(&self.history, &self.log))
            .map_err(|mut v| {
                v.at_nanos = self.queue.at();
                v
            })?;
        match lists::check(&self.history, self.now()) {
            Ok(judged) => self.stats.elle_judged += u64::from(judged),
            Err(e) => return Err(self.violation(rules::ELLE_LIST_APPEND, e)),
        }
        // Every replica converged on the committed state, at a timestamp
        // all of them can serve; the state includes what the pending
        // transactions' decisions will write.
        let mut full = self.log.clone();
        for t in &self.history.txns {
            if let Some(txn) = t.txn.filter(|txn| pending.contains(txn)) {
                let ts = self.log.commits[&txn].0;
                full.commits.insert(txn, (ts, t.writes.clone()));
            }
        }
        let model = Model::new(&full);
        // Replicas a group has removed from its voters stop following it;
        // the checks below are about the voters.
        let voters = self.current_voters();
        let t = self
            .nodes
            .iter()
            .filter(|n| voters.contains(&(n.group, n.id)))
            .filter_map(|n| n.replica.as_ref())
            .map(GroupReplica::t_safe)
            .min()
            .unwrap_or(Timestamp::ZERO);
        // Every request a live replica received long enough ago was
        // answered: no wait lasts that long once faults have stopped.
        let cutoff = self.now().saturating_sub(ANSWER_BOUND);
        let mut forgotten: Vec<(RequestId, usize)> = self
            .outstanding
            .iter()
            .filter(|(_, o)| o.1 < cutoff)
            .map(|(id, o)| (*id, o.0 + 1))
            .collect();
        forgotten.sort_unstable();
        if let Some((id, node)) = forgotten.first() {
            return Err(self.violation(
                rules::ONE_REPLY,
                format!(
                    "node {node} never answered request {id} ({} unanswered)",
                    forgotten.len()
                ),
            ));
        }
        // The bank holds its total in the final state too.
        let total: i64 = self
            .bank
            .accounts
            .iter()
            .map(|a| self.bank.balance(model.get(a, Timestamp::MAX).as_ref()))
            .sum();
        if total != self.bank.total() {
            return Err(self.violation(
                rules::BANK_TOTAL,
                format!(
                    "the final balances sum to {total}, not {}",
                    self.bank.total()
                ),
            ));
        }
        let keys: BTreeSet<Bytes> = model.keys().cloned().collect();
        for n in self
            .nodes
            .iter()
            .filter(|n| voters.contains(&(n.group, n.id)))
        {
            let Some(r) = n.replica.as_ref() else {
                continue;
            };
            // The keys its applied range holds (a replica that has not
            // applied a split still holds the moved keys' history below it).
            let d = r.state().descriptor();
            for k in keys.iter().filter(|k| d.contains(k)) {
                let got = r
                    .state()
                    .read(k, t)
                    .map(|v| v.map(|(_, v)| v))
                    .map_err(|e| self.violation(rules::CONVERGE, format!("node {}: {e}", n.id)))?;
                if got != model.get(k, t) {
                    return Err(self.violation(
                        rules::CONVERGE,
                        format!(
                            "node {} holds {:?} for {} at {}, the log says {:?}",
                            n.id,
                            got,
                            String::from_utf8_lossy(k),
                            t.0,
                            model.get(k, t)
                        ),
                    ));
                }
            }
        }
        // Routing: every key is served by some group's replicas at the end
        // (splits hand every key on; none is left without a group).
        for k in &keys {
            let served = self.nodes.iter().any(|n| {
                voters.contains(&(n.group, n.id))
                    && n.replica
                        .as_ref()
                        .is_some_and(|r| r.state().descriptor().contains(k))
            });
            if !served {
                return Err(self.violation(
                    rules::CONVERGE,
                    format!(
                        "no live replica's range holds key {} at the end",
                        String::from_utf8_lossy(k)
                    ),
                ));
            }
        }
        // Liveness: after the heal, transactions commit and safe time moves.
        let committed_after_heal = self
            .history
            .txns
            .iter()
            .any(|t| t.invoked > self.heal_at && matches!(t.outcome, Outcome::Committed(_)));
        if !committed_after_heal {
            return Err(self.violation(
                rules::TXN_LIVENESS,
                format!(
                    "no transaction started after the heal committed within {} ms",
                    LIVENESS_BOUND / MS
                ),
            ));
        }
        if t <= self.heal_at {
            return Err(self.violation(
                rules::TXN_LIVENESS,
                format!("a replica's t_safe {} did not pass the heal", t.0),
            ));
        }
        self.check_safe_time_lag(&voters)?;
        // Liveness, per client: each commits something soon after the heal.
        let deadline = self.heal_at.saturating_add(CLIENT_COMMIT_BOUND);
        for c in 0..self.clients.len() {
            let committed = self.history.txns.iter().any(|t| {
                t.client == c
                    && matches!(t.outcome, Outcome::Committed(_))
                    && t.completed
                        .is_some_and(|d| d > self.heal_at && d <= deadline)
            });
            if !committed {
                return Err(self.violation(
                    rules::CLIENT_LIVENESS,
                    format!(
                        "client {c} committed nothing within {} ms of the heal",
                        CLIENT_COMMIT_BOUND / MS
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The simulator's own replay of one group's log: the writes each
/// committed transaction applied there. Written from Spanner §4.2.1's rules
/// for prepare and decision records, independently of the participant's
/// state machine: a prepare counts unless it is past its deadline, its
/// transaction is already decided or prepared here; a commit decision
/// applies the prepared writes at the coordinator's timestamp.
///
/// A split (docs/design.md §9) ends the group's range at its key: from then
/// on an entry writing outside the range is void, as at the replicas, and
/// the prepared transactions' writes at or above the key move to the
/// child's replay, which starts at the split's slot.
#[derive(Debug, Default)]
struct GroupReplay {
    /// The last slot replayed (from whichever replica applied it first).
    applied: u64,
    prepared: std::collections::HashMap<TxnId, Vec<Write>>,
    decided: std::collections::HashSet<TxnId>,
    /// The range in force: `[start, end)`, and its generation.
    range: (Bytes, Option<Bytes>),
    generation: u64,
}

/// A split as the simulator's replay of the parent's log saw it apply.
#[derive(Debug)]
struct SplitReplay {
    key: Bytes,
    child: GroupId,
    /// The split entry's slot: the child's log continues after it.
    slot: u64,
    generation: u64,
    /// The child's range.
    range: (Bytes, Option<Bytes>),
    /// Prepared transactions' writes that moved to the child.
    moved: Vec<(TxnId, Vec<Write>)>,
}

impl GroupReplay {
    /// Whether every write falls inside the range in force.
    fn inside(&self, writes: &[Write]) -> bool {
        writes
            .iter()
            .all(|w| w.key >= self.range.0 && self.range.1.as_ref().is_none_or(|e| w.key < *e))
    }

    fn apply(
        &mut self,
        group: GroupId,
        e: &meridian_paxos::Entry,
        log: &mut CommitLog,
        at: u64,
    ) -> Result<Option<SplitReplay>, Violation> {
        if e.slot <= self.applied {
            return Ok(None);
        }
        if e.slot != self.applied + 1 {
            return Err(Violation {
                rule: rules::APPLIED_PREFIX,
                at_nanos: at,
                detail: format!(
                    "group {group}: slot {} applied before any replica applied {}",
                    e.slot,
                    self.applied + 1
                ),
            });
        }
        self.applied = e.slot;
        let Payload::Command(data) = &e.payload else {
            return Ok(None);
        };
        let Ok(cmd) = Command::decode(data) else {
            return Ok(None);
        };
        match cmd {
            // Void where a write left the range (the replicas' rule).
            Command::Commit { writes, .. }
            | Command::CoordinatorCommit { writes, .. }
            | Command::Prepare { writes, .. }
                if !self.inside(&writes) => {}
            Command::Split {
                key,
                child,
                generation,
            } => {
                // Void unless newer than the range and strictly inside it.
                let inside = key > self.range.0 && self.range.1.as_ref().is_none_or(|e| key < *e);
                if generation <= self.generation || !inside {
                    return Ok(None);
                }
                self.generation = generation;
                let mut moved = Vec::new();
                for (txn, writes) in self.prepared.iter_mut() {
                    let (right, left): (Vec<Write>, Vec<Write>) =
                        writes.drain(..).partition(|w| w.key >= key);
                    *writes = left;
                    if !right.is_empty() {
                        moved.push((*txn, right));
                    }
                }
                self.prepared.retain(|_, w| !w.is_empty());
                moved.sort_by_key(|(t, _)| *t);
                let range = (key.clone(), self.range.1.take());
                self.range.1 = Some(key.clone());
                return Ok(Some(SplitReplay {
                    key,
                    child,
                    slot: e.slot,
                    generation,
                    range,
                    moved,
                }));
            }
            Command::Commit { txn, writes } => log.record(txn, group, e.ts, writes, at)?,
            Command::CoordinatorCommit { txn, writes, .. } if !log.has(txn, group) => {
                log.record(txn, group, e.ts, writes, at)?
            }
            Command::Prepare {
                txn,
                deadline,
                writes,
                ..
            } if e.ts <= deadline
                && !self.decided.contains(&txn)
                && !self.prepared.contains_key(&txn)
                && !log.has(txn, group) =>
            {
                self.prepared.insert(txn, writes);
            }
            Command::Decide { txn, decision, .. } => {
                self.decided.insert(txn);
                if let (Some(writes), meridian_participant::Decision::Commit(ts)) =
                    (self.prepared.remove(&txn), decision)
                {
                    log.record(txn, group, ts, writes, at)?;
                }
            }
            _ => {}
        }
        Ok(None)
    }
}

impl Sim {
    /// Makes room for group `g` in every per-group table (a child's id is
    /// allocated when its split is asked for; it may never exist).
    fn ensure_group(&mut self, g: GroupId) {
        while self.groups < g {
            self.groups += 1;
            self.members.push(Vec::new());
            self.chosen.push(ChosenLog::default());
            self.replay.push(GroupReplay::default());
            self.leader_hint.push(None);
            self.max_assigned_ts.push(Timestamp::ZERO);
            self.elections_after_heal
                .push(ElectionsAfterHeal::default());
            self.initial.push(None);
            for cl in &mut self.clients {
                cl.leaders.push(0);
                cl.spares.push(None);
            }
        }
    }

    /// The simulator's replay of group `parent`'s log applied a split: the
    /// child's replay starts at the split's slot with the prepared writes
    /// that moved, and the directory routes the right half to the child.
    fn split_applied(&mut self, parent: GroupId, sp: SplitReplay) {
        self.ensure_group(sp.child);
        let ci = (sp.child - 1) as usize;
        self.replay[ci] = GroupReplay {
            applied: sp.slot,
            prepared: sp.moved.into_iter().collect(),
            decided: Default::default(),
            range: sp.range.clone(),
            generation: sp.generation,
        };
        self.initial[ci] = Some(meridian_participant::RangeDescriptor {
            group: sp.child,
            start: sp.range.0,
            end: sp.range.1,
            generation: sp.generation,
        });
        self.ranges.split(sp.key.clone(), sp.child);
        // Spanner §4.1.2 across the split: the child continues the
        // parent's history of its keys, so its leaders' Paxos timestamps
        // rise above every one the parent assigned before (rule
        // `split-child-safe-time-from-zero`: the child's timestamp floor is
        // the parent leader's).
        self.max_assigned_ts[ci] = self.max_assigned_ts[(parent - 1) as usize];
        self.stats.splits += 1;
        self.trace(TraceKind::Fault, &[], || {
            format!(
                "split applied: g{parent} keeps keys below {}, g{} serves the rest",
                String::from_utf8_lossy(&sp.key),
                sp.child
            )
        });
    }

    /// Replica `i` of a parent group applied a split and emitted `seed`:
    /// the child's replica on the same node is created from it, unless the
    /// node has it already (recovered from its own records, or live).
    fn split_child(&mut self, i: usize, seed: meridian_txn::ChildSeed) -> Result<(), Violation> {
        let child = seed.group;
        self.ensure_group(child);
        let m = self.nodes[i].machine;
        let existing = self.members[(child - 1) as usize]
            .iter()
            .copied()
            .find(|&j| self.nodes[j].machine == m);
        let j = match existing {
            Some(j) if self.nodes[j].replica.is_some() => return Ok(()),
            Some(j) => {
                let durable = self.nodes[j]
                    .host
                    .storage
                    .load()
                    .expect("memory storage cannot fail")
                    .snapshot
                    .is_some();
                if durable {
                    // Its own records win over the seed replayed.
                    return self.boot(j);
                }
                j
            }
            None => {
                let j = self.nodes.len();
                let p = &self.nodes[i];
                let node = Node {
                    id: p.id,
                    group: child,
                    machine: m,
                    tt: p.tt.clone(),
                    replica: None,
                    host: Host::default(),
                    last_t_safe: Timestamp::ZERO,
                    applied_slot: 0,
                    paused_until: p.paused_until,
                    resume: p.resume,
                    excursion: p.excursion,
                    clock_flagged: p.clock_flagged,
                    edge: p.edge,
                    parent: Some(seed.parent),
                };
                self.nodes.push(node);
                self.machines[m].push(j);
                self.members[(child - 1) as usize].push(j);
                for cl in &mut self.clients {
                    if cl.leaders[(child - 1) as usize] == 0 {
                        cl.leaders[(child - 1) as usize] = j as NodeId + 1;
                    }
                }
                if self.nodes[i].excursion.is_some() {
                    self.queue
                        .schedule(CLOCK_CHECK_INTERVAL, Event::ClockCheck { node: j });
                }
                j
            }
        };
        if self.initial[(child - 1) as usize].is_none() {
            self.initial[(child - 1) as usize] = Some(seed.descriptor.clone());
        }
        let id = self.nodes[j].id;
        let slot = seed.snapshot.last_slot;
        self.trace(TraceKind::Role, &[Party::Node(id)], || {
            format!(
                "n{id} creates its replica of g{child} (split from g{}, at slot {slot}): {}",
                seed.parent, seed.descriptor
            )
        });
        // A blank seed (the parent learnt the split from a snapshot) makes
        // an empty replica outside the voters, caught up by the child's
        // leader: it has no initial state to make durable first.
        let blank = seed.is_blank();
        let rng = SmallRng::seed_from_u64(self.rng.random());
        let mut r = GroupReplica::from_split(self.config(j), seed, Box::new(rng));
        let now = self.clock(j);
        let mut out = Vec::new();
        r.start(now, &mut out);
        if self.nodes[j].clock_flagged && self.planted_bug != Some(PlantedBug::ClockUnmonitored) {
            let reason = self.clock_reason(j);
            r.step(now, Input::ClockHealth { ok: false, reason }, &mut out);
        }
        let node = &mut self.nodes[j];
        node.host.boot(r.paxos().last_assigned_ts());
        if !blank {
            // As the node's driver does (docs/design.md §9, "Split
            // children"): the child's initial state is written and synced
            // in the step that applied the split, before the child says
            // anything and before anything the parent persists afterwards
            // on this machine. Synced later, a crash could keep the
            // parent's snapshot past the split (which recovery does not
            // replay, so it emits no seed) and lose the child (cluster
            // seed 542).
            let first = Output::take_persists(&mut out);
            for req in &first {
                node.host
                    .storage
                    .write(req)
                    .expect("memory storage cannot fail");
            }
            node.host
                .storage
                .sync()
                .expect("memory storage cannot fail");
            if let Some(seq) = first.iter().map(|q| q.seq).max() {
                r.step(now, Input::Persisted { seq }, &mut out);
            }
        }
        node.replica = Some(r);
        node.last_t_safe = Timestamp::ZERO;
        node.applied_slot = slot;
        self.process(j, out)?;
        self.after_split_applied(i, j);
        Ok(())
    }

    /// Client `c` refreshes its range cache from the directory.
    fn refresh_ranges(&mut self, c: usize) {
        if self.clients[c].ranges != self.ranges {
            self.clients[c].ranges = self.ranges.clone();
            self.trace(TraceKind::Client, &[Party::Client(c)], || {
                format!("c{c} refreshes its range cache")
            });
        }
    }

    /// Every group's voters, as its most advanced live replica knows them.
    fn current_voters(&self) -> BTreeSet<(GroupId, NodeId)> {
        let mut voters = BTreeSet::new();
        for g in 1..=self.groups {
            let newest = self
                .nodes
                .iter()
                .filter(|n| n.group == g)
                .filter_map(|n| n.replica.as_ref())
                .max_by_key(|r| r.paxos().applied());
            if let Some(r) = newest {
                voters.extend(r.paxos().membership().voters.iter().map(|&v| (g, v)));
            }
        }
        voters
    }
}

/// Whether two ranges share a key.
fn ranges_overlap(
    a: &meridian_participant::RangeDescriptor,
    b: &meridian_participant::RangeDescriptor,
) -> bool {
    let below = |end: &Option<Bytes>, start: &Bytes| end.as_ref().is_some_and(|e| e <= start);
    !below(&a.end, &b.start) && !below(&b.end, &a.start)
}

/// A cycle in the waits-for graph, if there is one.
/// The group the attempt's current read or scan goes to.
fn step_group(t: &TxnTask) -> GroupId {
    match t.plan.get(t.step) {
        Some((g, _)) => *g,
        None => t.scan_plan[t.step - t.plan.len()].group,
    }
}

fn find_cycle(edges: &[meridian_participant::WaitsFor]) -> Option<Vec<TxnId>> {
    use std::collections::HashMap;
    if edges.is_empty() {
        return None;
    }
    let mut adj: HashMap<TxnId, Vec<TxnId>> = HashMap::new();
    for e in edges {
        adj.entry(e.waiter).or_default().push(e.blocker);
    }
    // Iterative DFS with colours: 1 = on the stack, 2 = done.
    let mut colour: HashMap<TxnId, u8> = HashMap::new();
    let mut starts: Vec<TxnId> = adj.keys().copied().collect();
    starts.sort();
    for s in starts {
        if colour.contains_key(&s) {
            continue;
        }
        let mut stack: Vec<(TxnId, usize)> = vec![(s, 0)];
        colour.insert(s, 1);
        while let Some((v, i)) = stack.last().copied() {
            let next = adj.get(&v).and_then(|n| n.get(i)).copied();
            match next {
                Some(w) => {
                    stack.last_mut().expect("non-empty").1 += 1;
                    match colour.get(&w) {
                        Some(1) => {
                            let from = stack.iter().position(|(x, _)| *x == w).expect("on stack");
                            return Some(stack[from..].iter().map(|(x, _)| *x).collect());
                        }
                        Some(_) => {}
                        None => {
                            colour.insert(w, 1);
                            stack.push((w, 0));
                        }
                    }
                }
                None => {
                    colour.insert(v, 2);
                    stack.pop();
                }
            }
        }
    }
    None
}

/// A code for an event's kind and target, for the run digest.
fn event_code(ev: &Event) -> u64 {
    match ev {
        Event::Deliver(Packet::Peer { group, m }) => 100 + m.to * 10 + m.from + (group << 12),
        Event::Deliver(Packet::Group { from, to, .. }) => 150 + to * 10 + from,
        Event::Deliver(Packet::Request { node, id, .. }) => 200 + node + (id << 8),
        Event::Deliver(Packet::Reply { client, id, .. }) => 300 + *client as u64 + (id << 8),
        Event::Tick { node, .. } => 400 + *node as u64,
        Event::Sync { node, .. } => 500 + *node as u64,
        Event::Restart { node } => 600 + *node as u64,
        Event::Crash { node, .. } => 650 + *node as u64,
        Event::HandOver { node, .. } => 680 + *node as u64,
        Event::Client { client, wake } => 700 + *client as u64 + (wake << 8),
        Event::Fault => 800,
        Event::Heal => 900,
        Event::ClockCheck { node } => 950 + *node as u64,
        Event::Pause { node, .. } => 980 + *node as u64,
        Event::Mend { group, node } => 990 + node + (group << 12),
    }
}
