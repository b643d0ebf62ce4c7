//! `meridian-sim`: runs deterministic simulation seeds (DESIGN.md §8).
//!
//! `meridian-sim swarm --seeds N [--start S] [--layer paxos|txn]
//! [--planted-bug NAME]` runs N seeds (each over both layers unless one is
//! named) and prints one summary line; `meridian-sim run --seed S --layer L`
//! replays one run, optionally with `--trace`.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use meridian_sim::{Layer, PlantedBug, RunOptions, quiet_panics, replay_command, run_seed, swarm};

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
        /// Simulate only this layer (paxos or txn); default both.
        #[arg(long)]
        layer: Option<String>,
        /// Plant a deliberate bug (lease-overlap, ack-before-persist,
        /// forget-promise, skip-commit-wait, read-without-safe-time,
        /// read-without-lease, no-wound, clock-bound-broken) to check that the
        /// swarm catches it.
        #[arg(long)]
        planted_bug: Option<String>,
        /// Stop at the first failure.
        #[arg(long)]
        fail_fast: bool,
        /// Virtual milliseconds of faults before healing (default 6000).
        #[arg(long)]
        fault_phase_ms: Option<u64>,
    },
    /// Run (replay) one seed of one layer.
    Run {
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// The layer (paxos or txn).
        #[arg(long, default_value = "txn")]
        layer: String,
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

fn parse_layer(name: &str) -> Result<Layer, String> {
    Layer::from_name(name).ok_or_else(|| format!("unknown layer {name:?}; known: paxos, txn"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_panics();
    match run(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cmd: Cmd) -> Result<ExitCode, String> {
    match cmd {
        Cmd::Swarm {
            seeds,
            start,
            layer,
            planted_bug,
            fail_fast,
            fault_phase_ms,
        } => {
            let opts = RunOptions {
                planted_bug: parse_bug(planted_bug.as_deref())?,
                fault_phase_nanos: fault_phase_ms.map(|ms| ms * 1_000_000),
                ..RunOptions::default()
            };
            let layers = match layer.as_deref() {
                Some(l) => vec![parse_layer(l)?],
                None => Layer::ALL.to_vec(),
            };
            let began = Instant::now();
            let mut failed = 0u64;
            let mut done = 0u64;
            let report = swarm(start, seeds, &layers, &opts, |seed, layer, r| {
                if let Err(v) = r {
                    failed += 1;
                    eprintln!("FAIL seed {seed} layer {}: {v}", layer.name());
                    let o = RunOptions {
                        seed,
                        layer,
                        ..opts.clone()
                    };
                    eprintln!("  replay: {}", replay_command(&o));
                    if fail_fast {
                        std::process::exit(1);
                    }
                }
                if layer == *layers.last().expect("at least one layer") {
                    done += 1;
                    if done % 100 == 0 {
                        eprintln!(
                            "... {done}/{seeds} seeds, {failed} failed, {:.1}s",
                            began.elapsed().as_secs_f64()
                        );
                    }
                }
            });
            println!(
                "seeds={} failures={} {} elapsed={:.1}s",
                report.seeds,
                report.failures.len(),
                report.stats,
                began.elapsed().as_secs_f64()
            );
            Ok(if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Run {
            seed,
            layer,
            planted_bug,
            trace,
            fault_phase_ms,
        } => {
            let opts = RunOptions {
                seed,
                layer: parse_layer(&layer)?,
                trace,
                planted_bug: parse_bug(planted_bug.as_deref())?,
                fault_phase_nanos: fault_phase_ms.map(|ms| ms * 1_000_000),
                black_box: false,
            };
            match run_seed(&opts) {
                Ok(s) => {
                    println!(
                        "seed={seed} layer={layer} ok {s} events={} virtual={}ms digest={:016x}",
                        s.events,
                        s.virtual_nanos / 1_000_000,
                        s.digest
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(v) => {
                    println!("seed={seed} layer={layer} FAIL {v}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
