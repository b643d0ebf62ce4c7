//! `meridian-sim`: runs deterministic simulation seeds (DESIGN.md §8).
//!
//! `meridian-sim swarm --seeds N [--start S] [--planted-bug NAME]` runs N
//! seeds and prints one summary line; `meridian-sim run --seed S` replays
//! one seed, optionally with `--trace`.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use meridian_sim::{PlantedBug, RunOptions, replay_command, run_seed, swarm};

#[derive(Parser)]
#[command(
    name = "meridian-sim",
    about = "Deterministic simulation of Meridian clusters"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run many seeds; exit non-zero if any fails.
    Swarm {
        /// How many seeds.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Plant a deliberate bug (lease-overlap, ack-before-persist,
        /// forget-promise) to check that the swarm catches it.
        #[arg(long)]
        planted_bug: Option<String>,
        /// Stop at the first failure.
        #[arg(long)]
        fail_fast: bool,
    },
    /// Run (replay) one seed.
    Run {
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// Plant a deliberate bug.
        #[arg(long)]
        planted_bug: Option<String>,
        /// Print every event.
        #[arg(long)]
        trace: bool,
        /// Virtual milliseconds of faults before healing (default 6000).
        #[arg(long)]
        fault_phase_ms: Option<u64>,
    },
}

fn parse_bug(name: Option<&str>) -> Result<Option<PlantedBug>, String> {
    match name {
        None => Ok(None),
        Some(n) => PlantedBug::from_name(n).map(Some).ok_or_else(|| {
            let names: Vec<_> = PlantedBug::ALL.iter().map(|(n, _)| *n).collect();
            format!("unknown planted bug {n:?}; known: {}", names.join(", "))
        }),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Swarm {
            seeds,
            start,
            planted_bug,
            fail_fast,
        } => {
            let bug = match parse_bug(planted_bug.as_deref()) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = RunOptions {
                planted_bug: bug,
                ..RunOptions::default()
            };
            let began = Instant::now();
            let mut failed = 0u64;
            let mut done = 0u64;
            let report = swarm(start, seeds, &opts, |seed, r| {
                done += 1;
                if let Err(v) = r {
                    failed += 1;
                    eprintln!("FAIL seed {seed}: {v}");
                    eprintln!("  replay: {}", replay_command(seed, &opts));
                    if fail_fast {
                        std::process::exit(1);
                    }
                }
                if done % 100 == 0 {
                    eprintln!(
                        "... {done}/{seeds} seeds, {failed} failed, {:.1}s",
                        began.elapsed().as_secs_f64()
                    );
                }
            });
            println!(
                "seeds={} failures={} commits={} elections={} crashes={} elapsed={:.1}s",
                report.seeds,
                report.failures.len(),
                report.commits,
                report.elections,
                report.crashes,
                began.elapsed().as_secs_f64()
            );
            if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Cmd::Run {
            seed,
            planted_bug,
            trace,
            fault_phase_ms,
        } => {
            let bug = match parse_bug(planted_bug.as_deref()) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = RunOptions {
                seed,
                trace,
                planted_bug: bug,
                fault_phase_nanos: fault_phase_ms.map(|ms| ms * 1_000_000),
            };
            match run_seed(&opts) {
                Ok(s) => {
                    println!(
                        "seed={seed} ok commits={} elections={} crashes={} events={} virtual={}ms",
                        s.commits,
                        s.elections,
                        s.crashes,
                        s.events,
                        s.virtual_nanos / 1_000_000
                    );
                    ExitCode::SUCCESS
                }
                Err(v) => {
                    println!("seed={seed} FAIL {v}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
