//! Deterministic whole-cluster simulator (docs/design.md §8; in the spirit of
//! FoundationDB's simulation and TigerBeetle's VOPR).
//!
//! One thread runs the real cores on virtual time. Every source of
//! nondeterminism — message delay, drop, duplication, reordering,
//! partitions, crashes with loss of unsynced writes, disk latency, clock
//! offsets and drift within ε, election jitter, client choices — is drawn
//! from one seeded RNG, so a seed replays a run exactly.
//!
//! Three layers are simulated, each under the same fault mix:
//! - **paxos**: one Multi-Paxos group (`meridian-paxos`) with membership
//!   churn and compaction; checks Paxos safety slot by slot.
//! - **txn**: one participant group of three [`meridian_txn::GroupReplica`]s
//!   with concurrent clients doing bank transfers, blind register writes,
//!   strong read-only balance sums and snapshot reads; checks the Paxos
//!   rules, commit wait, deadlock freedom and safe time during the run and
//!   strict serializability of the whole history at the end.
//! - **cluster**: several groups on 5–9 physical nodes (three replicas of
//!   each), keys routed by range, transactions across groups by two-phase
//!   commit, and ranges that split online under the same faults.
//!
//! Invariants are checked after every event (see [`check`] and
//! [`history`]); a run that breaks one stops with a [`Violation`] naming the
//! rule and the virtual time (and the counters up to there, see
//! [`RunOutcome`]), and the swarm prints the one-line command that replays
//! the seed. A panic inside a core (a failed assertion) is a violation too.
//! [`trace`] renders a run event by event. [`latency`] is not a test: a
//! fault-free run with fixed delays that measures two-phase commit's
//! latency beside Spanner's Table 4 (docs/latency.md).
//! [`elle`] hands an Elle list-append history (what clients appended and
//! read, and when) to the external isolation checker `adya` for a verdict on
//! strict serializability.
#![deny(missing_docs)]

pub mod check;
pub mod elle;
pub mod history;
pub mod latency;
mod lists;
mod paxos_sim;
mod ranges;
pub mod trace;
mod txn_sim;
pub mod windows;
mod world;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

thread_local! {
    /// Where and why the last panic on this thread happened, recorded by
    /// the hook [`quiet_panics`] installs.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Virtual time of the event being handled (nanoseconds since the run
    /// began), for reporting a panic.
    static NOW: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Records the virtual time of the event being handled.
pub(crate) fn set_now(at: u64) {
    NOW.with(|n| n.set(at));
}

/// Makes panics silent and records their message and location for
/// [`run_seed`] to report as a violation: a swarm then prints one line per
/// failing seed, not a backtrace. For the `meridian-sim` binary.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a core panicked".into());
        let at = info
            .location()
            .map(|l| format!(" (at {}:{})", l.file(), l.line()))
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
    }));
}

pub use check::Violation;
pub use trace::{TraceFilter, TraceKind};
pub use world::Faults;

/// Nanoseconds in a millisecond, for scaling command-line values.
pub const NANOS_PER_MS: u64 = 1_000_000;

/// Virtual milliseconds of faults before the heal, unless a run says
/// otherwise ([`RunOptions::fault_phase_nanos`]).
pub const DEFAULT_FAULT_PHASE_MS: u64 = 6_000;
const _: () = assert!(DEFAULT_FAULT_PHASE_MS * NANOS_PER_MS == world::DEFAULT_FAULT_PHASE);

/// The longest fault phase a run accepts, in virtual milliseconds (five
/// minutes): a run is bounded by an event budget, and a longer fault phase
/// would exhaust it and fail as a livelock that is not one.
pub const MAX_FAULT_PHASE_MS: u64 = 300_000;

/// A simulated layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Layer {
    /// One Paxos group alone.
    Paxos,
    /// One participant group with transactional clients.
    Txn,
    /// Several participant groups with clients whose transactions span
    /// them (two-phase commit).
    Cluster,
}

impl Layer {
    /// Every layer, in the order a swarm runs them.
    pub const ALL: [Layer; 3] = [Layer::Paxos, Layer::Txn, Layer::Cluster];

    /// The layers that run transactions.
    pub const TRANSACTIONAL: [Layer; 2] = [Layer::Txn, Layer::Cluster];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Paxos => "paxos",
            Layer::Txn => "txn",
            Layer::Cluster => "cluster",
        }
    }

    /// Looks a layer up by its command-line name.
    pub fn from_name(name: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Whether [`RunOptions::black_box`] changes anything here: only the
    /// transaction layer has white-box checks to turn off (commit wait at
    /// a reply, waits-for cycles, the replicas' own invariants).
    pub fn has_white_box_checks(self) -> bool {
        self != Layer::Paxos
    }
}

/// A deliberate bug for the cores to carry, to prove the checkers catch it
/// (docs/design.md §8). Production builds never contain them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlantedBug {
    /// A bug of the Paxos core.
    Paxos(meridian_paxos::PlantedBug),
    /// A bug of the transaction layer.
    Txn(meridian_txn::PlantedBug),
    /// A bug of the lock table.
    LockTable(meridian_participant::PlantedBug),
    /// Not a code bug but a broken assumption: every replica's clock errs
    /// by more than the ε it reports (docs/design.md §2), so TrueTime's one
    /// promise fails. Leases and commit wait rest on it; the checkers must
    /// notice.
    ClockBoundBroken,
    /// Not a code bug but a missing driver duty: replicas' clocks still run
    /// out of bound on some seeds (the clock-excursion fault), but the
    /// driver never reports it (`Input::ClockHealth`), so they keep leading
    /// and serving on a clock outside its ε (docs/design.md §2).
    ClockUnmonitored,
}

impl PlantedBug {
    /// Every planted bug, with its command-line name.
    pub const ALL: [(&'static str, PlantedBug); 28] = [
        (
            "lease-overlap",
            PlantedBug::Paxos(meridian_paxos::PlantedBug::LeaseOverlap),
        ),
        (
            "ack-before-persist",
            PlantedBug::Paxos(meridian_paxos::PlantedBug::AckBeforePersist),
        ),
        (
            "forget-promise",
            PlantedBug::Paxos(meridian_paxos::PlantedBug::ForgetPromise),
        ),
        (
            "hand-over-skips-lease-wait",
            PlantedBug::Paxos(meridian_paxos::PlantedBug::HandOverSkipsLeaseWait),
        ),
        (
            "same-round-ballot",
            PlantedBug::Paxos(meridian_paxos::PlantedBug::SameRoundBallot),
        ),
        (
            "lease-vote-from-earliest",
            PlantedBug::Paxos(meridian_paxos::PlantedBug::LeaseVoteFromEarliest),
        ),
        (
            "count-old-ballot",
            PlantedBug::Paxos(meridian_paxos::PlantedBug::CountOldBallot),
        ),
        (
            "skip-commit-wait",
            PlantedBug::Txn(meridian_txn::PlantedBug::SkipCommitWait),
        ),
        (
            "read-without-safe-time",
            PlantedBug::Txn(meridian_txn::PlantedBug::ReadWithoutSafeTime),
        ),
        (
            "read-without-lease",
            PlantedBug::Txn(meridian_txn::PlantedBug::ReadWithoutLease),
        ),
        (
            "no-wound",
            PlantedBug::LockTable(meridian_participant::PlantedBug::NoWound),
        ),
        ("clock-bound-broken", PlantedBug::ClockBoundBroken),
        (
            "skip-occ-validation",
            PlantedBug::Txn(meridian_txn::PlantedBug::SkipOccValidation),
        ),
        (
            "commit-ts-below-prepare",
            PlantedBug::Txn(meridian_txn::PlantedBug::CommitTsBelowPrepare),
        ),
        (
            "coordinator-forgets-decision",
            PlantedBug::Txn(meridian_txn::PlantedBug::CoordinatorForgetsDecision),
        ),
        (
            "no-lock-rebuild-after-failover",
            PlantedBug::Txn(meridian_txn::PlantedBug::NoLockRebuildAfterFailover),
        ),
        (
            "release-read-locks-at-prepare",
            PlantedBug::Txn(meridian_txn::PlantedBug::ReleaseReadLocksAtPrepare),
        ),
        (
            "scan-without-range-lock",
            PlantedBug::Txn(meridian_txn::PlantedBug::ScanWithoutRangeLock),
        ),
        (
            "txn-status-presumes-abort",
            PlantedBug::Txn(meridian_txn::PlantedBug::TxnStatusPresumesAbort),
        ),
        ("clock-unmonitored", PlantedBug::ClockUnmonitored),
        (
            "read-ts-not-remembered",
            PlantedBug::Txn(meridian_txn::PlantedBug::ReadTsNotRemembered),
        ),
        (
            "decision-ack-before-durable",
            PlantedBug::Txn(meridian_txn::PlantedBug::DecisionAckBeforeDurable),
        ),
        (
            "prepare-revives-aborted",
            PlantedBug::Txn(meridian_txn::PlantedBug::PrepareRevivesAborted),
        ),
        (
            "split-child-lease-overlap",
            PlantedBug::Paxos(meridian_paxos::PlantedBug::SplitChildLeaseOverlap),
        ),
        (
            "split-child-safe-time-from-zero",
            PlantedBug::Txn(meridian_txn::PlantedBug::SplitChildSafeTimeFromZero),
        ),
        (
            "split-drops-prepared",
            PlantedBug::Txn(meridian_txn::PlantedBug::SplitDropsPrepared),
        ),
        (
            "split-ack-before-child-decides",
            PlantedBug::Txn(meridian_txn::PlantedBug::SplitAckBeforeChildDecides),
        ),
        (
            "stale-descriptor-served",
            PlantedBug::Txn(meridian_txn::PlantedBug::StaleDescriptorServed),
        ),
    ];

    /// Every planted bug, in the order of [`PlantedBug::ALL`].
    pub const VARIANTS: [PlantedBug; 28] = {
        let mut v = [PlantedBug::ClockBoundBroken; 28];
        let mut i = 0;
        while i < PlantedBug::ALL.len() {
            v[i] = PlantedBug::ALL[i].1;
            i += 1;
        }
        v
    };

    /// What the bug does, in a few words (for `--help`).
    pub fn description(self) -> &'static str {
        use meridian_participant::PlantedBug as L;
        use meridian_paxos::PlantedBug as P;
        use meridian_txn::PlantedBug as T;
        match self {
            PlantedBug::Paxos(P::LeaseOverlap) => "a new leader skips waiting out the old lease",
            PlantedBug::Paxos(P::AckBeforePersist) => "acceptors acknowledge before fsync",
            PlantedBug::Paxos(P::ForgetPromise) => "the promised ballot is never persisted",
            PlantedBug::Paxos(P::HandOverSkipsLeaseWait) => {
                "a replica taking over from a leader handing over skips waiting out its lease"
            }
            PlantedBug::Paxos(P::SameRoundBallot) => {
                "acceptors compare ballots by round alone: two leaders in one round"
            }
            PlantedBug::Paxos(P::LeaseVoteFromEarliest) => {
                "a lease vote runs from TT.now().earliest, up to 2ε short"
            }
            PlantedBug::Paxos(P::CountOldBallot) => {
                "a leader counts an older ballot's entry chosen (Raft Figure 8)"
            }
            PlantedBug::Txn(T::SkipCommitWait) => "commits are acknowledged as soon as chosen",
            PlantedBug::Txn(T::ReadWithoutSafeTime) => {
                "lock-free reads are served without waiting for t_safe"
            }
            PlantedBug::Txn(T::ReadWithoutLease) => {
                "a leader serves reads without checking its lease"
            }
            PlantedBug::LockTable(L::NoWound) => {
                "an older requester waits for a younger holder instead of wounding it"
            }
            PlantedBug::ClockBoundBroken => "every replica's clock errs beyond the ε it reports",
            PlantedBug::ClockUnmonitored => {
                "a replica's clock runs out of bound and its driver never reports it"
            }
            PlantedBug::Txn(T::SkipOccValidation) => {
                "optimistic commits and prepares skip validating their reads"
            }
            PlantedBug::Txn(T::CommitTsBelowPrepare) => {
                "a coordinator's commit timestamp ignores the prepare timestamps"
            }
            PlantedBug::Txn(T::CoordinatorForgetsDecision) => {
                "a new coordinator leader neither resends logged decisions nor consults them"
            }
            PlantedBug::Txn(T::NoLockRebuildAfterFailover) => {
                "a new participant leader does not rebuild prepared transactions' locks"
            }
            PlantedBug::Txn(T::ReleaseReadLocksAtPrepare) => {
                "participants release read locks at prepare instead of at the outcome"
            }
            PlantedBug::Txn(T::ScanWithoutRangeLock) => {
                "scans in locking transactions take no range lock"
            }
            PlantedBug::Txn(T::TxnStatusPresumesAbort) => {
                "a status query answers aborted while the commit is in flight"
            }
            PlantedBug::Txn(T::ReadTsNotRemembered) => {
                "writes skip the leader's timestamp cache: a write lands at or below a served read"
            }
            PlantedBug::Txn(T::DecisionAckBeforeDurable) => {
                "a participant acknowledges a decision before its decision record is durable"
            }
            PlantedBug::Paxos(P::SplitChildLeaseOverlap) => {
                "a split's child replicas claim no lease grant: another candidate need not wait out the parent's lease"
            }
            PlantedBug::Txn(T::SplitChildSafeTimeFromZero) => {
                "a split's child starts with its timestamp floor and closed timestamp at zero"
            }
            PlantedBug::Txn(T::SplitDropsPrepared) => {
                "a split leaves the right half's prepared transactions behind"
            }
            PlantedBug::Txn(T::SplitAckBeforeChildDecides) => {
                "the parent acknowledges a moved transaction's decision before the child applies it"
            }
            PlantedBug::Txn(T::StaleDescriptorServed) => {
                "lock-free reads skip the range check: a replica serves keys a split moved away"
            }
            PlantedBug::Txn(T::PrepareRevivesAborted) => {
                "a prepare arriving after the transaction aborted at a participant prepares it again"
            }
        }
    }

    /// Looks a bug up by its command-line name.
    pub fn from_name(name: &str) -> Option<PlantedBug> {
        PlantedBug::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        PlantedBug::ALL
            .iter()
            .find(|(_, b)| *b == self)
            .map_or("?", |(n, _)| n)
    }

    /// The layers where this bug acts: a Paxos bug (and a broken clock
    /// bound) under both, since the transaction layer runs Paxos too; a
    /// transaction-layer or lock-table bug only under the transaction
    /// layer.
    pub fn layers(self) -> &'static [Layer] {
        use meridian_txn::PlantedBug as T;
        match self {
            // Splits run only in the cluster layer.
            PlantedBug::Paxos(meridian_paxos::PlantedBug::SplitChildLeaseOverlap)
            | PlantedBug::Txn(
                T::SplitChildSafeTimeFromZero
                | T::SplitDropsPrepared
                | T::SplitAckBeforeChildDecides
                | T::StaleDescriptorServed,
            ) => &[Layer::Cluster],
            PlantedBug::Paxos(_) | PlantedBug::ClockBoundBroken => &Layer::ALL,
            // Two-phase commit runs only across groups.
            PlantedBug::Txn(
                T::CommitTsBelowPrepare
                | T::CoordinatorForgetsDecision
                | T::NoLockRebuildAfterFailover
                | T::ReleaseReadLocksAtPrepare
                | T::DecisionAckBeforeDurable
                | T::PrepareRevivesAborted,
            ) => &[Layer::Cluster],
            PlantedBug::Txn(_) | PlantedBug::LockTable(_) | PlantedBug::ClockUnmonitored => {
                &Layer::TRANSACTIONAL
            }
        }
    }

    pub(crate) fn paxos(self) -> Option<meridian_paxos::PlantedBug> {
        match self {
            PlantedBug::Paxos(b) => Some(b),
            _ => None,
        }
    }
}

impl clap::ValueEnum for PlantedBug {
    fn value_variants<'a>() -> &'a [Self] {
        &PlantedBug::VARIANTS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let layers = match self.layers() {
            [Layer::Txn, Layer::Cluster] => "txn and cluster layers",
            [Layer::Cluster] => "cluster layer",
            _ => "every layer",
        };
        Some(
            clap::builder::PossibleValue::new(self.name())
                .help(format!("{} ({layers})", self.description())),
        )
    }
}

/// How the simulated clients' read-write transactions control concurrency
/// (docs/design.md §5.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Cc {
    /// Every transaction locks (wound-wait two-phase locking).
    #[value(name = "2pl")]
    TwoPl,
    /// Every transaction is optimistic (FaRM-style validation).
    Occ,
    /// Each transaction picks one at random.
    #[default]
    Mixed,
}

impl Cc {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Cc::TwoPl => "2pl",
            Cc::Occ => "occ",
            Cc::Mixed => "mixed",
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The seed; everything else follows from it.
    pub seed: u64,
    /// The layer simulated.
    pub layer: Layer,
    /// Virtual time with faults, ns (default [`DEFAULT_FAULT_PHASE_MS`]).
    pub fault_phase_nanos: Option<u64>,
    /// Print a trace of the run on stdout (for replaying a failure): the
    /// lines the filter keeps; `None` for no trace.
    pub trace: Option<TraceFilter>,
    /// A deliberate bug for the cores to carry.
    pub planted_bug: Option<PlantedBug>,
    /// Skip the checks that look inside the cores (commit wait at the
    /// moment of a reply, waits-for cycles, core invariants): only what
    /// clients saw, and the log, can fail the run. Proves the history
    /// checker catches a bug on its own.
    pub black_box: bool,
    /// Concurrency control of the transaction layers' clients.
    pub cc: Cc,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: 0,
            layer: Layer::Txn,
            fault_phase_nanos: None,
            trace: None,
            planted_bug: None,
            black_box: false,
            cc: Cc::Mixed,
        }
    }
}

/// Counters of a run (of a failing one, up to the violation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Paxos layer: commands committed. Transaction layer: transactions
    /// committed (acknowledged or found in the log).
    pub commits: u64,
    /// Transactions that aborted (each attempt counts).
    pub aborts: u64,
    /// Commits whose outcome the client could not learn.
    pub unknown: u64,
    /// Lock-free reads (read-only transactions and snapshot reads) answered.
    pub reads: u64,
    /// Times a replica became leader.
    pub elections: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Paxos layer: leaders elected after the heal (after the last crash
    /// that followed it, if any); summed over runs in a swarm.
    pub elections_after_heal: u64,
    /// Transaction layer: runs whose list-append history the external
    /// Elle-style checker judged (runs with too few list transactions
    /// committed are not judged).
    pub elle_judged: u64,
    /// Cluster layer: range splits applied (by the first replica of the
    /// parent to apply each).
    pub splits: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time simulated, ns.
    pub virtual_nanos: u64,
    /// A hash of the time and kind of every event processed: two runs of
    /// one seed must agree on it exactly.
    pub digest: u64,
    /// Per two-phase-commit fault window (in the order of
    /// [`windows::Window::ALL`]): the runs that opened it.
    pub windows: [u64; windows::WINDOW_COUNT],
    /// Per two-phase-commit fault window: the faults it aimed (messages
    /// lost, delayed or sent late, replicas failed at its moment).
    pub window_faults: [u64; windows::WINDOW_COUNT],
}

impl std::fmt::Display for RunStats {
    /// The counters that describe what a run did, as `name=value` pairs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commits={} aborts={} unknown={} reads={} elections={} crashes={} elle_judged={} \
             splits={}",
            self.commits,
            self.aborts,
            self.unknown,
            self.reads,
            self.elections,
            self.crashes,
            self.elle_judged,
            self.splits
        )
    }
}

impl RunStats {
    fn add(&mut self, o: &RunStats) {
        self.commits += o.commits;
        self.aborts += o.aborts;
        self.unknown += o.unknown;
        self.reads += o.reads;
        self.elections += o.elections;
        self.crashes += o.crashes;
        self.elections_after_heal += o.elections_after_heal;
        self.elle_judged += o.elle_judged;
        self.splits += o.splits;
        self.events += o.events;
        self.virtual_nanos += o.virtual_nanos;
        self.digest ^= o.digest;
        for (w, n) in self.windows.iter_mut().zip(o.windows) {
            *w += n;
        }
        for (w, n) in self.window_faults.iter_mut().zip(o.window_faults) {
            *w += n;
        }
    }

    /// The two-phase-commit windows opened, as `name=runs/faults` (the
    /// runs that opened it, the faults it aimed in them; only windows
    /// opened at least once), or `-` if none.
    pub fn windows_opened(&self) -> String {
        let v: Vec<String> = windows::Window::ALL
            .into_iter()
            .zip(self.windows.into_iter().zip(self.window_faults))
            .filter(|(_, (n, _))| *n > 0)
            .map(|(w, (n, f))| format!("{}={n}/{f}", w.name()))
            .collect();
        if v.is_empty() {
            "-".into()
        } else {
            v.join(" ")
        }
    }
}

/// What one run did: its counters and, if it broke an invariant, which
/// one. A failing run's counters stop at the violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// Counters over the run (up to the violation, if one).
    pub stats: RunStats,
    /// The invariant the run broke, if any.
    pub violation: Option<Violation>,
}

impl RunOutcome {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violation.is_none()
    }

    /// `Ok` with the counters if every invariant held, else the violation.
    pub fn into_result(self) -> Result<RunStats, Violation> {
        match self.violation {
            None => Ok(self.stats),
            Some(v) => Err(v),
        }
    }
}

/// Runs `f`, reporting a panic in it (a failed assertion in a core) as a
/// violation of rule [`check::rules::CORE_ASSERTION`] at the virtual time
/// of the event being handled.
pub(crate) fn guarded(f: impl FnOnce() -> Result<(), Violation>) -> Result<(), Violation> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let detail = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a core panicked".into());
            Err(Violation {
                rule: check::rules::CORE_ASSERTION,
                at_nanos: NOW.with(|n| n.get()),
                detail,
            })
        }
    }
}

/// Runs one seed of one layer: its counters, and the first invariant it
/// broke if any. A panic in a core is reported as a violation of rule
/// [`check::rules::CORE_ASSERTION`].
pub fn run_seed(opts: &RunOptions) -> RunOutcome {
    set_now(0);
    match opts.layer {
        Layer::Paxos => paxos_sim::run_seed(opts),
        Layer::Txn | Layer::Cluster => txn_sim::run_seed(opts),
    }
}

/// The result of a swarm: how many seeds ran, which runs failed, and the
/// counters of all of them.
#[derive(Debug, Default)]
pub struct SwarmReport {
    /// Seeds run (each over every selected layer).
    pub seeds: u64,
    /// Runs (seed × layer).
    pub runs: u64,
    /// Failing runs, in the order they ran: seed, layer and what they
    /// broke.
    pub failures: Vec<(u64, Layer, Violation)>,
    /// Counters summed over every run, failing runs up to their violation.
    pub stats: RunStats,
}

impl SwarmReport {
    /// Distinct failing seeds: a seed fails if any of its layers does.
    pub fn failed_seeds(&self) -> u64 {
        let mut seeds: Vec<u64> = self.failures.iter().map(|(s, _, _)| *s).collect();
        seeds.dedup();
        seeds.len() as u64
    }

    /// How many failing runs broke each rule, most frequent first.
    pub fn rules(&self) -> Vec<(&'static str, u64)> {
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        for (_, _, v) in &self.failures {
            *counts.entry(v.rule).or_default() += 1;
        }
        let mut v: Vec<_> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
}

/// Runs seeds `start .. start + seeds`, each over `layers` (the seed and
/// layer fields of `opts` are overwritten), on `jobs` threads (1: on the
/// caller's). `on_run` is called after each run, on the caller's thread and
/// in seed order whatever the number of threads, so the report and
/// whatever `on_run` prints are those of a serial run; it stops the swarm
/// by returning [`ControlFlow::Break`] (runs already under way on other
/// threads finish and are discarded).
///
/// # Panics
///
/// If `start + seeds` overflows, if `jobs` is 0, if a layer cannot carry
/// the planted bug (see [`PlantedBug::layers`]), or if `opts.black_box` is
/// set for a layer without white-box checks: such a swarm would run
/// nothing or nothing different, and the caller must refuse it.
pub fn swarm(
    start: u64,
    seeds: u64,
    layers: &[Layer],
    opts: &RunOptions,
    jobs: usize,
    mut on_run: impl FnMut(u64, Layer, &RunOutcome) -> ControlFlow<()>,
) -> SwarmReport {
    let end = start.checked_add(seeds).expect("start + seeds overflows");
    assert!(jobs >= 1, "a swarm needs at least one thread");
    for &l in layers {
        assert!(
            opts.planted_bug.is_none_or(|b| b.layers().contains(&l)),
            "the planted bug does not act in layer {}",
            l.name()
        );
        assert!(
            !opts.black_box || l.has_white_box_checks(),
            "layer {} has no white-box checks to turn off",
            l.name()
        );
    }
    let mut report = SwarmReport::default();
    // Folds one run into the report, in seed order; false to stop.
    let mut record = |seed: u64, layer: Layer, r: RunOutcome, report: &mut SwarmReport| {
        report.runs += 1;
        report.stats.add(&r.stats);
        let flow = on_run(seed, layer, &r);
        if let Some(v) = r.violation {
            report.failures.push((seed, layer, v));
        }
        flow.is_continue()
    };
    let jobs = u64::try_from(jobs).unwrap_or(u64::MAX).min(seeds);
    if jobs <= 1 {
        for seed in start..end {
            report.seeds += 1;
            for &layer in layers {
                let r = run_seed(&RunOptions {
                    seed,
                    layer,
                    ..opts.clone()
                });
                if !record(seed, layer, r, &mut report) {
                    return report;
                }
            }
        }
        return report;
    }
    // Each worker claims the next seed, runs all its layers and sends
    // them; this thread puts them back in seed order and stops the
    // workers when `on_run` says so.
    let next = AtomicU64::new(start);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(u64, Vec<(Layer, RunOutcome)>)>();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    let runs: Vec<(Layer, RunOutcome)> = layers
                        .iter()
                        .map(|&layer| {
                            let r = run_seed(&RunOptions {
                                seed,
                                layer,
                                ..opts.clone()
                            });
                            (layer, r)
                        })
                        .collect();
                    if tx.send((seed, runs)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<u64, Vec<(Layer, RunOutcome)>> = BTreeMap::new();
        let mut due = start;
        'outer: for (seed, runs) in rx.iter() {
            pending.insert(seed, runs);
            while let Some(runs) = pending.remove(&due) {
                report.seeds += 1;
                for (layer, r) in runs {
                    if !record(due, layer, r, &mut report) {
                        stop.store(true, Ordering::Relaxed);
                        break 'outer;
                    }
                }
                due += 1;
            }
        }
    });
    report
}

/// Threads a swarm runs on unless told otherwise: every core available.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The command that replays one run alone.
pub fn replay_command(opts: &RunOptions) -> String {
    let mut cmd = format!(
        "cargo run --release -p meridian-sim -- run --seed {} --layer {}",
        opts.seed,
        opts.layer.name()
    );
    if let Some(b) = opts.planted_bug {
        cmd.push_str(&format!(" --planted-bug {}", b.name()));
    }
    if let Some(ns) = opts.fault_phase_nanos {
        if ns != world::DEFAULT_FAULT_PHASE {
            cmd.push_str(&format!(" --fault-phase-ms {}", ns / NANOS_PER_MS));
        }
    }
    if opts.black_box {
        cmd.push_str(" --black-box");
    }
    if opts.cc != Cc::Mixed && opts.layer != Layer::Paxos {
        cmd.push_str(&format!(" --cc {}", opts.cc.name()));
    }
    cmd
}
