//! Deterministic whole-cluster simulator (DESIGN.md §8; in the spirit of
//! FoundationDB's simulation and TigerBeetle's VOPR).
//!
//! One thread runs N replicas of the real `meridian-paxos` core on virtual
//! time. Every source of nondeterminism — message delay, drop, duplication,
//! reordering, partitions, crashes with loss of unsynced writes, disk
//! latency, clock offsets and drift within ε, election jitter — is drawn from
//! one seeded RNG, so a seed replays a run exactly.
//!
//! Invariants are checked after every event (see [`check`]); a run that
//! breaks one stops with a [`Violation`] naming the rule and the virtual
//! time, and the swarm prints the one-line command that replays the seed.
#![deny(missing_docs)]

pub mod check;
mod paxos_sim;

pub use check::Violation;
pub use paxos_sim::{Faults, RunOptions, RunStats, run_seed};

pub use meridian_paxos::PlantedBug;

/// The result of a swarm: how many seeds ran and which failed.
#[derive(Debug, Default)]
pub struct SwarmReport {
    /// Seeds run.
    pub seeds: u64,
    /// Failing seeds and what they broke.
    pub failures: Vec<(u64, Violation)>,
    /// Commands committed over all seeds.
    pub commits: u64,
    /// Leader elections over all seeds.
    pub elections: u64,
    /// Crashes injected over all seeds.
    pub crashes: u64,
}

/// Runs seeds `start .. start + seeds` with `opts` (the seed field of
/// `opts` is overwritten). `on_seed` is called after each seed, for progress.
pub fn swarm(
    start: u64,
    seeds: u64,
    opts: &RunOptions,
    mut on_seed: impl FnMut(u64, &Result<RunStats, Violation>),
) -> SwarmReport {
    let mut report = SwarmReport::default();
    for seed in start..start + seeds {
        let mut o = opts.clone();
        o.seed = seed;
        let r = run_seed(&o);
        on_seed(seed, &r);
        report.seeds += 1;
        match r {
            Ok(s) => {
                report.commits += s.commits;
                report.elections += s.elections;
                report.crashes += s.crashes;
            }
            Err(v) => report.failures.push((seed, v)),
        }
    }
    report
}

/// The command that replays one seed alone.
pub fn replay_command(seed: u64, opts: &RunOptions) -> String {
    let mut cmd = format!("cargo run --release -p meridian-sim -- run --seed {seed}");
    if let Some(b) = opts.planted_bug {
        let name = PlantedBug::ALL
            .iter()
            .find(|(_, x)| *x == b)
            .map_or("?", |(n, _)| n);
        cmd.push_str(&format!(" --planted-bug {name}"));
    }
    if let Some(ns) = opts.fault_phase_nanos {
        cmd.push_str(&format!(" --fault-phase-ms {}", ns / 1_000_000));
    }
    cmd
}
