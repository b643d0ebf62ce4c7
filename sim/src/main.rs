//! `meridian-sim`: runs deterministic simulation seeds (docs/design.md §8).
//!
//! `meridian-sim swarm` runs many seeds (each over every layer unless one
//! is named) and prints a summary; with `--planted-bug NAME` it reports on
//! how many seeds the checkers caught the bug. `meridian-sim run --seed S
//! --layer L` replays one run, optionally with `--trace`.
//! `meridian-sim latency` times two-phase commit under a fixed, fault-free
//! cost model beside Spanner's Table 4 (docs/latency.md).
//!
//! The command line is strict: a value that is zero where that means
//! nothing, an overflowing range, or a combination that would run nothing
//! (or nothing different) is refused with exit code 2, never run as a
//! no-op.

use std::io::Write as _;
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::Instant;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};
use meridian_sim::latency::{self, ClockKind, LatencyModel, SPANNER_TABLE_4};
use meridian_sim::trace::since;
use meridian_sim::windows::Window;
use meridian_sim::{
    Cc, DEFAULT_FAULT_PHASE_MS, Layer, MAX_FAULT_PHASE_MS, NANOS_PER_MS, PlantedBug, RunOptions,
    SwarmReport, TraceFilter, Violation, default_jobs, quiet_panics, replay_command, run_seed,
    swarm,
};

/// Failing runs shown in full by a planted-bug swarm; the rest are counted
/// in the summary.
const PLANTED_FAILURES_SHOWN: usize = 3;

#[derive(Parser)]
#[command(
    name = "meridian-sim",
    version,
    about = "Deterministic simulation of Meridian clusters: seeded faults, invariant checks, \
             planted bugs",
    after_help = "Exit codes: 0 success, 1 a run failed (or a planted bug was not caught), \
                  2 bad arguments."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run many seeds and summarise them.
    ///
    /// Prints `seeds=N failures=F commits=… layers=… elapsed=…` (F counts
    /// failing seeds) and, per failing run, the violation and the command
    /// that replays it; exits 1 if any run failed. With `--planted-bug`,
    /// shows the first few failures and ends with `planted NAME: caught on
    /// K/N seeds`; exits 0 if K ≥ 1, 1 if the checkers never caught it.
    Swarm(SwarmArgs),
    /// Run (replay) one seed of one layer.
    ///
    /// Prints `seed=S layer=L ok …` or `… FAIL …` with the run's counters
    /// and digest (identical on every replay); exits 1 on a failure. With
    /// `--planted-bug`, also `planted NAME: caught on K/1 seeds`, exiting 0
    /// if caught.
    Run(RunArgs),
    /// Measure two-phase commit's latency under a fixed, fault-free model.
    ///
    /// One client runs `--txns` read-write transactions one after another,
    /// each writing one key in each of N groups (N = 1: one-phase commit),
    /// with every message taking 1 ms one way, every fsync 0.2 ms and every
    /// clock ε = 3.5 ms; prints mean and p99 latency per N beside Spanner's
    /// Table 4 (OSDI 2012) and the model's lower bound. See docs/latency.md.
    Latency(LatencyArgs),
}

#[derive(Args)]
struct LatencyArgs {
    /// Transactions per participant count (at least 1).
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = at_least_one)]
    txns: u64,
    /// Participant counts, comma-separated (each 1 to 1000).
    #[arg(long, value_name = "N,...", value_delimiter = ',',
          default_value = "1,2,5,10,25,50,100,200", value_parser = participants)]
    participants: Vec<usize>,
    /// Clock model: `fixed` (true time ± 3.5 ms at every node) or
    /// `sawtooth` (simulated TrueTime, ε from 1 to 6 ms, mean 3.5 ms).
    #[arg(long, value_enum, default_value_t = ClockKind::Fixed)]
    clock: ClockKind,
    /// Seeds election timers (and sawtooth clocks).
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct SwarmArgs {
    /// How many seeds to run (at least 1).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = at_least_one)]
    seeds: u64,
    /// The first seed.
    #[arg(long, value_name = "S", default_value_t = 0)]
    start: u64,
    /// Simulate only this layer [default: both, or those where the planted
    /// bug acts, or txn with --black-box].
    #[arg(long, value_enum)]
    layer: Option<Layer>,
    #[command(flatten)]
    common: Common,
    /// Stop at the first failing run.
    #[arg(long)]
    fail_fast: bool,
    /// Threads to run seeds on (at least 1) [default: every core
    /// available]. The output is the same for any number (seed order),
    /// apart from the elapsed time.
    #[arg(long, value_name = "N", value_parser = at_least_one_thread)]
    jobs: Option<usize>,
}

#[derive(Args)]
struct RunArgs {
    /// The seed.
    #[arg(long, value_name = "S")]
    seed: u64,
    /// The layer.
    #[arg(long, value_enum, default_value_t = Layer::Txn)]
    layer: Layer,
    #[command(flatten)]
    common: Common,
    /// Print the run on stdout, one line per message sent or delivered,
    /// client action, fault and role change, at virtual time since the
    /// start (`+4.743229s`).
    #[arg(long)]
    trace: bool,
    /// Print only the trace lines that match (implies --trace). Terms
    /// `node=2`, `client=0`, `kind=send|deliver|client|fault|role`,
    /// `txn=<id>`, separated by commas or given in several flags: all
    /// keys must match, the values of one key are alternatives.
    #[arg(long, value_name = "FILTER")]
    trace_filter: Vec<TraceFilter>,
}

#[derive(Args)]
struct Common {
    /// Plant a deliberate bug, to check that the checkers catch it.
    #[arg(long, value_enum, value_name = "NAME")]
    planted_bug: Option<PlantedBug>,
    /// Turn off the white-box checks of the transaction layers (commit wait at a
    /// reply, waits-for cycles, replica invariants): only what clients saw,
    /// and the log, can fail a run.
    #[arg(long)]
    black_box: bool,
    /// Concurrency control of the transaction layers' clients [default:
    /// mixed]: `2pl` (wound-wait locking), `occ` (optimistic validation)
    /// or `mixed` (each transaction picks one).
    #[arg(long, value_enum, value_name = "CC")]
    cc: Option<Cc>,
    /// Virtual milliseconds of faults before the heal (1 to 300000).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_FAULT_PHASE_MS,
          value_parser = fault_phase_ms)]
    fault_phase_ms: u64,
}

fn at_least_one(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn at_least_one_thread(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn participants(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=latency::MAX_PARTICIPANTS).contains(&n) => Ok(n),
        Ok(_) => Err(format!(
            "must be 1 to {} (one write per group, at most that many per transaction)",
            latency::MAX_PARTICIPANTS
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn fault_phase_ms(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) if n > MAX_FAULT_PHASE_MS => Err(format!(
            "must be at most {MAX_FAULT_PHASE_MS} (5 virtual minutes; longer runs exhaust \
             the per-run event budget)"
        )),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Refuses the arguments of subcommand `sub`: prints `msg` as clap does,
/// with the subcommand's usage, and exits 2.
fn refuse(sub: &str, msg: String) -> ! {
    let mut cli = Cli::command();
    cli.build();
    let cmd = cli
        .find_subcommand_mut(sub)
        .expect("a subcommand of meridian-sim");
    cmd.error(ErrorKind::ArgumentConflict, msg).exit()
}

/// Prints a line on stdout; a closed stdout (`| head`) is not an error.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_panics();
    match cli.cmd {
        Cmd::Swarm(a) => swarm_cmd(a),
        Cmd::Run(a) => run_cmd(a),
        Cmd::Latency(a) => latency_cmd(a),
    }
}

/// The options shared by both commands, checked against `layers`.
fn options(sub: &str, c: &Common, layers: &[Layer]) -> RunOptions {
    if let Some(b) = c.planted_bug {
        if let Some(l) = layers.iter().find(|l| !b.layers().contains(l)) {
            refuse(
                sub,
                format!(
                    "--planted-bug {} acts only in the {} layers; --layer {} would run without it",
                    b.name(),
                    names(b.layers()),
                    l.name()
                ),
            );
        }
    }
    if c.black_box {
        if let Some(l) = layers.iter().find(|l| !l.has_white_box_checks()) {
            refuse(
                sub,
                format!(
                    "--black-box turns off the white-box checks of the transaction layers; the {} \
                 layer has none, so --layer {} --black-box would check exactly what it checks without",
                    l.name(),
                    l.name()
                ),
            );
        }
    }
    let nanos = c
        .fault_phase_ms
        .checked_mul(NANOS_PER_MS)
        .unwrap_or_else(|| {
            refuse(
                sub,
                format!("--fault-phase-ms {} overflows", c.fault_phase_ms),
            )
        });
    if let Some(cc) = c.cc {
        if layers == [Layer::Paxos] {
            refuse(
                sub,
                format!(
                    "--cc {} sets how transactions control concurrency; the paxos layer runs none",
                    cc.name()
                ),
            );
        }
    }
    RunOptions {
        fault_phase_nanos: Some(nanos),
        planted_bug: c.planted_bug,
        black_box: c.black_box,
        cc: c.cc.unwrap_or_default(),
        ..RunOptions::default()
    }
}

fn names(layers: &[Layer]) -> String {
    layers
        .iter()
        .map(|l| l.name())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// A violation in one line: the rule, when, and what was seen.
fn describe(v: &Violation) -> String {
    format!("{}, at {}: {}", v.rule, since(v.at_nanos), v.detail)
}

fn swarm_cmd(a: SwarmArgs) -> ExitCode {
    let c = &a.common;
    let layers: Vec<Layer> = match a.layer {
        Some(l) => vec![l],
        None => Layer::ALL
            .into_iter()
            .filter(|l| c.planted_bug.is_none_or(|b| b.layers().contains(l)))
            .filter(|l| !c.black_box || l.has_white_box_checks())
            .collect(),
    };
    if layers.is_empty() {
        refuse(
            "swarm",
            "no layer can run this combination of --planted-bug and --black-box".into(),
        );
    }
    let opts = options("swarm", c, &layers);
    let Some(end) = a.start.checked_add(a.seeds) else {
        refuse(
            "swarm",
            format!(
                "--start {} --seeds {} would run past the last seed, {}",
                a.start,
                a.seeds,
                u64::MAX
            ),
        );
    };
    let planted = opts.planted_bug.is_some();
    let began = Instant::now();
    let mut shown = 0usize;
    let mut failed_seeds = 0u64;
    let mut last_failed = None;
    let last_layer = *layers.last().expect("at least one layer");
    let jobs = a.jobs.unwrap_or_else(default_jobs);
    let report = swarm(a.start, a.seeds, &layers, &opts, jobs, |seed, layer, r| {
        if let Some(v) = &r.violation {
            if last_failed != Some(seed) {
                failed_seeds += 1;
                last_failed = Some(seed);
            }
            if !planted || shown < PLANTED_FAILURES_SHOWN {
                shown += 1;
                out!("FAIL seed {seed} layer {}: {}", layer.name(), describe(v));
                let o = RunOptions {
                    seed,
                    layer,
                    ..opts.clone()
                };
                out!("  replay: {}", replay_command(&o));
            }
            if a.fail_fast {
                return ControlFlow::Break(());
            }
        }
        let done = seed - a.start + 1;
        if layer == last_layer && done % 100 == 0 && seed + 1 != end {
            eprintln!(
                "... {done}/{} seeds, {failed_seeds} failed, {:.1}s",
                a.seeds,
                began.elapsed().as_secs_f64()
            );
        }
        ControlFlow::Continue(())
    });
    let hidden = report.failures.len() - shown;
    if hidden > 0 {
        out!("... {hidden} more failing runs not shown");
    }
    out!(
        "seeds={} failures={} {} layers={} elapsed={:.1}s",
        report.seeds,
        report.failed_seeds(),
        report.stats,
        layers
            .iter()
            .map(|l| l.name())
            .collect::<Vec<_>>()
            .join(","),
        began.elapsed().as_secs_f64()
    );
    if layers.contains(&Layer::Cluster) {
        out!(
            "windows opened (cluster runs/faults aimed): {}",
            report.stats.windows_opened()
        );
    }
    match opts.planted_bug {
        Some(b) => planted_summary(b, &report),
        None if report.failures.is_empty() => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}

/// The last line of a planted-bug run: on how many seeds the checkers
/// caught it, the first of them, and which rules fired (counting runs).
/// Exits 0 if it was caught at all.
fn planted_summary(b: PlantedBug, report: &SwarmReport) -> ExitCode {
    let caught = report.failed_seeds();
    let mut line = format!(
        "planted {}: caught on {caught}/{} seeds",
        b.name(),
        report.seeds
    );
    match report.failures.first() {
        Some((seed, _, _)) => {
            let rules: Vec<String> = report
                .rules()
                .into_iter()
                .map(|(rule, n)| format!("{rule} ({n} run{})", if n == 1 { "" } else { "s" }))
                .collect();
            line.push_str(&format!("; first seed {seed}; rules: {}", rules.join("; ")));
        }
        None => line.push_str("; the checkers missed it"),
    }
    out!("{line}");
    if caught > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_cmd(a: RunArgs) -> ExitCode {
    let mut opts = options("run", &a.common, &[a.layer]);
    opts.seed = a.seed;
    opts.layer = a.layer;
    if a.trace || !a.trace_filter.is_empty() {
        opts.trace = Some(
            a.trace_filter
                .into_iter()
                .fold(TraceFilter::default(), TraceFilter::merge),
        );
    }
    let r = run_seed(&opts);
    let s = &r.stats;
    let verdict = if r.passed() { "ok" } else { "FAIL" };
    // The two-phase-commit windows the seed opened (cluster layer only).
    let windows = if a.layer == Layer::Cluster {
        let names: Vec<&str> = Window::ALL
            .into_iter()
            .zip(s.windows)
            .filter(|(_, n)| *n > 0)
            .map(|(w, _)| w.name())
            .collect();
        format!(
            " windows={}",
            if names.is_empty() {
                "-".into()
            } else {
                names.join(",")
            }
        )
    } else {
        String::new()
    };
    out!(
        "seed={} layer={} {verdict} {s}{windows} events={} virtual={}ms digest={:016x}",
        a.seed,
        a.layer.name(),
        s.events,
        s.virtual_nanos / NANOS_PER_MS,
        s.digest
    );
    if let Some(v) = &r.violation {
        out!("  {}", describe(v));
    }
    match opts.planted_bug {
        Some(b) => {
            let report = SwarmReport {
                seeds: 1,
                runs: 1,
                stats: r.stats.clone(),
                failures: r
                    .violation
                    .into_iter()
                    .map(|v| (a.seed, a.layer, v))
                    .collect(),
            };
            planted_summary(b, &report)
        }
        None if r.violation.is_none() => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}

fn latency_cmd(a: LatencyArgs) -> ExitCode {
    let model = LatencyModel {
        clock: a.clock,
        seed: a.seed,
        ..LatencyModel::default()
    };
    let clock = match a.clock {
        ClockKind::Fixed => format!("ε {} ms at every node", ms(model.epsilon_nanos)),
        ClockKind::Sawtooth => "sawtooth ε 1–6 ms (mean 3.5 ms)".into(),
    };
    out!(
        "latency model: one-way {} ms, fsync {} ms, {clock}, 3 replicas per group, no faults; \
         {} sequential transactions per row from one client, seed {}",
        ms(model.one_way_nanos),
        ms(model.fsync_nanos),
        a.txns,
        a.seed
    );
    out!(
        "{:<13}{:>14}{:>9}{:>13}{:>9}{:>16}{:>16}",
        "participants",
        "meridian mean",
        "p99",
        "commit mean",
        "bound",
        "spanner mean",
        "p99"
    );
    let began = Instant::now();
    for &n in &a.participants {
        let run = match latency::run(&model, n, a.txns as usize) {
            Ok(run) => run,
            Err(e) => {
                out!("{n:<13}FAIL: {e}");
                return ExitCode::FAILURE;
            }
        };
        let spanner = SPANNER_TABLE_4.iter().find(|row| row.0 == n).map_or_else(
            || (String::from("-"), String::from("-")),
            |&(_, mean, mean_sd, p99, p99_sd)| {
                (
                    format!("{mean:.1} ±{mean_sd:.1}"),
                    format!("{p99:.1} ±{p99_sd:.1}"),
                )
            },
        );
        out!(
            "{n:<13}{:>14.2}{:>9.2}{:>13.2}{:>9.2}{:>16}{:>16}",
            run.mean_ms(),
            run.p99_ms(),
            run.commit_mean_ms(),
            ms(model.lower_bound_nanos(n)),
            spanner.0,
            spanner.1
        );
    }
    out!(
        "ms; meridian: Begin sent to Committed received (commit mean: the Commit request alone); \
         bound: the model's costs alone; spanner: Table 4, OSDI 2012, mean ±sd over 10 runs; \
         elapsed {:.1}s",
        began.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// Nanoseconds as milliseconds.
fn ms(nanos: u64) -> f64 {
    nanos as f64 / NANOS_PER_MS as f64
}
