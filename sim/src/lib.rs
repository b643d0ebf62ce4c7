//! Deterministic whole-cluster simulator (DESIGN.md §8; in the spirit of
//! FoundationDB's simulation and TigerBeetle's VOPR).
//!
//! One thread runs the real cores on virtual time. Every source of
//! nondeterminism — message delay, drop, duplication, reordering,
//! partitions, crashes with loss of unsynced writes, disk latency, clock
//! offsets and drift within ε, election jitter, client choices — is drawn
//! from one seeded RNG, so a seed replays a run exactly.
//!
//! Two layers are simulated, each under the same fault mix:
//! - **paxos**: one Multi-Paxos group (`meridian-paxos`) with membership
//!   churn and compaction; checks Paxos safety slot by slot.
//! - **txn**: one participant group of three [`meridian_txn::GroupReplica`]s
//!   with concurrent clients doing bank transfers, blind register writes,
//!   strong read-only balance sums and snapshot reads; checks the Paxos
//!   rules, commit wait, deadlock freedom and safe time during the run and
//!   strict serializability of the whole history at the end.
//!
//! Invariants are checked after every event (see [`check`] and
//! [`history`]); a run that breaks one stops with a [`Violation`] naming the
//! rule and the virtual time, and the swarm prints the one-line command
//! that replays the seed. A panic inside a core (a failed assertion) is a
//! violation too.
#![deny(missing_docs)]

pub mod check;
pub mod history;
mod paxos_sim;
mod txn_sim;
mod world;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

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
pub use world::Faults;

/// A simulated layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// One Paxos group alone.
    Paxos,
    /// One participant group with transactional clients.
    Txn,
}

impl Layer {
    /// Both layers, in the order a swarm runs them.
    pub const ALL: [Layer; 2] = [Layer::Paxos, Layer::Txn];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Paxos => "paxos",
            Layer::Txn => "txn",
        }
    }

    /// Looks a layer up by its command-line name.
    pub fn from_name(name: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// A deliberate bug for the cores to carry, to prove the checkers catch it
/// (DESIGN.md §8). Production builds never contain them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlantedBug {
    /// A bug of the Paxos core.
    Paxos(meridian_paxos::PlantedBug),
    /// A bug of the transaction layer.
    Txn(meridian_txn::PlantedBug),
    /// A bug of the lock table.
    LockTable(meridian_participant::PlantedBug),
    /// Not a code bug but a broken assumption: every replica's clock errs
    /// by more than the ε it reports (DESIGN.md §2), so TrueTime's one
    /// promise fails. Leases and commit wait rest on it; the checkers must
    /// notice.
    ClockBoundBroken,
}

impl PlantedBug {
    /// Every planted bug, with its command-line name.
    pub const ALL: [(&'static str, PlantedBug); 8] = [
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
    ];

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

    /// The layers whose runs carry this bug: a Paxos bug lives under both,
    /// a transaction-layer bug only under the transaction layer.
    pub fn layers(self) -> &'static [Layer] {
        match self {
            PlantedBug::Paxos(_) | PlantedBug::ClockBoundBroken => &Layer::ALL,
            PlantedBug::Txn(_) | PlantedBug::LockTable(_) => &[Layer::Txn],
        }
    }

    pub(crate) fn paxos(self) -> Option<meridian_paxos::PlantedBug> {
        match self {
            PlantedBug::Paxos(b) => Some(b),
            _ => None,
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
    /// Virtual time with faults (default 6 s).
    pub fault_phase_nanos: Option<u64>,
    /// Print every event (for replaying a failure).
    pub trace: bool,
    /// A deliberate bug for the cores to carry.
    pub planted_bug: Option<PlantedBug>,
    /// Skip the checks that look inside the cores (commit wait at the
    /// moment of a reply, waits-for cycles, core invariants): only what
    /// clients saw, and the log, can fail the run. Proves the history
    /// checker catches a bug on its own.
    pub black_box: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: 0,
            layer: Layer::Txn,
            fault_phase_nanos: None,
            trace: false,
            planted_bug: None,
            black_box: false,
        }
    }
}

/// Counters from a passing run.
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
    /// Events processed.
    pub events: u64,
    /// Virtual time simulated, ns.
    pub virtual_nanos: u64,
    /// A hash of the time and kind of every event processed: two runs of
    /// one seed must agree on it exactly.
    pub digest: u64,
}

impl std::fmt::Display for RunStats {
    /// The counters that describe what a run did, as `name=value` pairs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commits={} aborts={} unknown={} reads={} elections={} crashes={}",
            self.commits, self.aborts, self.unknown, self.reads, self.elections, self.crashes
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
        self.events += o.events;
        self.virtual_nanos += o.virtual_nanos;
        self.digest ^= o.digest;
    }
}

/// Runs one seed of one layer; `Ok` with counters if every invariant held.
/// A panic in a core is reported as a violation of rule
/// [`check::rules::CORE_ASSERTION`].
pub fn run_seed(opts: &RunOptions) -> Result<RunStats, Violation> {
    set_now(0);
    let run = || match opts.layer {
        Layer::Paxos => paxos_sim::run_seed(opts),
        Layer::Txn => txn_sim::run_seed(opts),
    };
    match catch_unwind(AssertUnwindSafe(run)) {
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

/// The result of a swarm: how many seeds ran and which failed.
#[derive(Debug, Default)]
pub struct SwarmReport {
    /// Seeds run (each over every selected layer).
    pub seeds: u64,
    /// Failing runs: seed, layer and what they broke.
    pub failures: Vec<(u64, Layer, Violation)>,
    /// Counters summed over the passing runs.
    pub stats: RunStats,
}

/// Runs seeds `start .. start + seeds`, each over `layers` (the seed and
/// layer fields of `opts` are overwritten; layers that cannot carry the
/// planted bug are skipped). `on_run` is called after each run, for
/// progress.
pub fn swarm(
    start: u64,
    seeds: u64,
    layers: &[Layer],
    opts: &RunOptions,
    mut on_run: impl FnMut(u64, Layer, &Result<RunStats, Violation>),
) -> SwarmReport {
    let mut report = SwarmReport::default();
    let layers: Vec<Layer> = layers
        .iter()
        .copied()
        .filter(|l| opts.planted_bug.is_none_or(|b| b.layers().contains(l)))
        .collect();
    for seed in start..start + seeds {
        report.seeds += 1;
        for &layer in &layers {
            let o = RunOptions {
                seed,
                layer,
                ..opts.clone()
            };
            let r = run_seed(&o);
            on_run(seed, layer, &r);
            match r {
                Ok(s) => report.stats.add(&s),
                Err(v) => report.failures.push((seed, layer, v)),
            }
        }
    }
    report
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
        cmd.push_str(&format!(" --fault-phase-ms {}", ns / 1_000_000));
    }
    cmd
}
