//! The `meridian-sim` command line, driven through the binary: every
//! argument that would run nothing, overflow or contradict another is
//! refused with exit code 2 and a message saying why; the summaries say
//! what ran; a planted bug's swarm says on how many seeds it was caught;
//! traces go to stdout at times relative to the run.
//!
//! Runs here are short (`--fault-phase-ms` of a few hundred milliseconds,
//! a few seeds) so the file stays fast in the test profile.

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

fn sim() -> Command {
    Command::cargo_bin("meridian-sim").expect("the meridian-sim binary is built for tests")
}

/// Runs `args`, expects exit code 2, nothing on stdout, and `message` on
/// stderr.
fn refused(args: &[&str], message: &str) {
    sim()
        .args(args)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(contains(message));
}

fn stdout_of(args: &[&str], code: i32) -> String {
    let out = sim().args(args).assert().code(code).get_output().clone();
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn version_prints_the_package_version() {
    sim()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("meridian-sim {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_lists_layers_planted_bugs_and_defaults() {
    let out = stdout_of(&["swarm", "--help"], 0);
    for value in [
        "paxos",
        "txn",
        "[default: 100]",
        "[default: 6000]",
        "--black-box",
    ] {
        assert!(out.contains(value), "swarm --help lacks {value}:\n{out}");
    }
    for (name, _) in meridian_sim::PlantedBug::ALL {
        assert!(out.contains(name), "swarm --help lacks {name}:\n{out}");
    }
    let out = stdout_of(&["run", "--help"], 0);
    for value in [
        "[default: txn]",
        "--trace-filter",
        "kind=send|deliver|client|fault|role",
    ] {
        assert!(out.contains(value), "run --help lacks {value}:\n{out}");
    }
}

#[test]
fn a_planted_bug_is_refused_on_a_layer_where_it_does_not_act() {
    let msg = "--planted-bug no-wound acts only in the txn and cluster layers";
    refused(
        &["swarm", "--layer", "paxos", "--planted-bug", "no-wound"],
        msg,
    );
    refused(
        &[
            "run",
            "--seed",
            "1",
            "--layer",
            "paxos",
            "--planted-bug",
            "no-wound",
        ],
        msg,
    );
    refused(
        &[
            "run",
            "--seed",
            "1",
            "--layer",
            "paxos",
            "--planted-bug",
            "skip-commit-wait",
        ],
        "acts only in the txn and cluster layers",
    );
}

#[test]
fn black_box_is_refused_on_the_paxos_layer() {
    let msg = "the paxos layer has none";
    refused(
        &["run", "--seed", "1", "--layer", "paxos", "--black-box"],
        msg,
    );
    refused(&["swarm", "--layer", "paxos", "--black-box"], msg);
}

#[test]
fn zero_and_overflowing_counts_are_refused() {
    refused(&["swarm", "--seeds", "0"], "must be at least 1");
    refused(
        &["swarm", "--start", "18446744073709551614", "--seeds", "3"],
        "would run past the last seed",
    );
    refused(&["swarm", "--seeds", "18446744073709551616"], "--seeds");
    refused(
        &["run", "--seed", "1", "--fault-phase-ms", "0"],
        "must be at least 1",
    );
    refused(
        &["run", "--seed", "1", "--fault-phase-ms", "18446744073709"],
        "must be at most 300000",
    );
    refused(
        &["swarm", "--fault-phase-ms", "300001"],
        "must be at most 300000",
    );
}

#[test]
fn unknown_names_are_refused_with_the_known_ones() {
    refused(
        &["swarm", "--layer", "raft"],
        "[possible values: paxos, txn, cluster]",
    );
    refused(&["swarm", "--planted-bug", "typo"], "lease-overlap");
    refused(
        &["run", "--seed", "1", "--trace-filter", "colour=red"],
        "unknown key",
    );
    refused(
        &["run", "--seed", "1", "--trace-filter", "kind=tick"],
        "unknown kind",
    );
    refused(&["run"], "--seed");
}

#[test]
fn a_planted_bug_swarm_says_on_how_many_seeds_it_was_caught() {
    let out = stdout_of(
        &[
            "swarm",
            "--seeds",
            "5",
            "--planted-bug",
            "no-wound",
            "--fault-phase-ms",
            "1000",
        ],
        0,
    );
    let last = out.lines().last().expect("a summary");
    assert!(
        last.starts_with("planted no-wound: caught on ") && last.contains("/5 seeds; first seed"),
        "{out}"
    );
    assert!(last.contains("wound-wait"), "the rules that fired: {out}");
    // A few failures in full, not one per failing run.
    assert!(
        out.lines().filter(|l| l.starts_with("FAIL")).count() <= 3,
        "{out}"
    );
    // The bug acts only in the transaction layers, so only those ran.
    let seeds_line = out
        .lines()
        .find(|l| l.starts_with("seeds=5 failures="))
        .expect("the seeds line");
    assert!(seeds_line.contains(" layers=txn,cluster "), "{seeds_line}");
    // Totals count the failing runs too (up to their violation).
    assert!(!seeds_line.contains(" commits=0 "), "{seeds_line}");
    let caught: u64 = last["planted no-wound: caught on ".len()..]
        .split('/')
        .next()
        .and_then(|k| k.parse().ok())
        .expect("K in K/N");
    assert!(
        seeds_line.starts_with(&format!("seeds=5 failures={caught} ")),
        "failures counts the same failing seeds: {out}"
    );
}

#[test]
fn a_planted_bug_that_is_never_caught_exits_one() {
    // A single short run on which the lease bug does not show.
    let out = stdout_of(
        &[
            "swarm",
            "--seeds",
            "1",
            "--layer",
            "paxos",
            "--planted-bug",
            "lease-overlap",
            "--fault-phase-ms",
            "200",
        ],
        1,
    );
    assert!(
        out.ends_with("planted lease-overlap: caught on 0/1 seeds; the checkers missed it\n"),
        "{out}"
    );
}

#[test]
fn failures_count_seeds_not_runs() {
    // Find a seed on which a Paxos bug fails both layers (the seed moves
    // whenever the simulator's random draws change): two failing runs, one
    // failing seed.
    for bug in ["lease-overlap", "forget-promise"] {
        for seed in 0..100 {
            let start = seed.to_string();
            let args = [
                "swarm",
                "--seeds",
                "1",
                "--start",
                start.as_str(),
                "--planted-bug",
                bug,
            ];
            let out = sim().args(args).output().expect("runs");
            let out = String::from_utf8(out.stdout).expect("utf-8 output");
            let failed_runs = out.matches(&format!("FAIL seed {seed} ")).count();
            if failed_runs < 2 {
                continue;
            }
            assert!(out.contains("seeds=1 failures=1 "), "{out}");
            // The rules line counts runs per rule: one rule caught on every
            // failing run, or several rules sharing them.
            assert!(
                out.contains(&format!(" ({failed_runs} runs)")) || out.contains("); "),
                "{out}"
            );
            assert!(
                out.contains(&format!("planted {bug}: caught on 1/1 seeds")),
                "{out}"
            );
            return;
        }
    }
    panic!("no seed below 100 fails in both layers");
}

#[test]
fn cc_is_refused_only_where_no_transaction_runs() {
    refused(
        &["swarm", "--layer", "paxos", "--cc", "occ"],
        "--cc occ sets how transactions control concurrency; the paxos layer runs none",
    );
    refused(
        &["run", "--seed", "1", "--layer", "paxos", "--cc", "2pl"],
        "the paxos layer runs none",
    );
    refused(
        &["swarm", "--cc", "optimistic"],
        "[possible values: 2pl, occ, mixed]",
    );
    let out = stdout_of(&["swarm", "--seeds", "1", "--cc", "occ"], 0);
    assert!(out.contains("layers=paxos,txn,cluster "), "{out}");
    let out = stdout_of(
        &["run", "--seed", "3", "--layer", "cluster", "--cc", "2pl"],
        0,
    );
    assert!(out.starts_with("seed=3 layer=cluster ok"), "{out}");
}

#[test]
fn fail_fast_stops_at_the_first_failing_run() {
    let out = stdout_of(
        &[
            "swarm",
            "--seeds",
            "50",
            "--planted-bug",
            "no-wound",
            "--fault-phase-ms",
            "1000",
            "--fail-fast",
        ],
        0,
    );
    // It stops at the first failing seed, whichever that is.
    let seed: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("FAIL seed "))
        .and_then(|l| l.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("a failing seed");
    assert_eq!(out.matches("FAIL seed").count(), 1, "{out}");
    assert!(
        out.contains(&format!("seeds={} failures=1 ", seed + 1)),
        "{out}"
    );
    assert!(
        out.contains(&format!("caught on 1/{} seeds", seed + 1)),
        "{out}"
    );
}

#[test]
fn each_shown_failure_prints_a_command_that_replays_it() {
    let out = stdout_of(
        &[
            "swarm",
            "--seeds",
            "2",
            "--planted-bug",
            "no-wound",
            "--fault-phase-ms",
            "1000",
        ],
        0,
    );
    let fail = out
        .lines()
        .find(|l| l.starts_with("FAIL seed "))
        .expect("a failure");
    let replay = out
        .lines()
        .find_map(|l| l.strip_prefix("  replay: cargo run --release -p meridian-sim -- "))
        .expect("a replay command");
    assert!(
        replay.ends_with(" --planted-bug no-wound --fault-phase-ms 1000")
            && (replay.contains(" --layer txn ") || replay.contains(" --layer cluster ")),
        "{replay}"
    );
    // The replay fails the same way.
    let again = stdout_of(&replay.split(' ').collect::<Vec<_>>(), 0);
    let why = fail.split_once(": ").expect("FAIL seed S layer L: why").1;
    assert!(again.contains(why), "{fail}\n{again}");
}

#[test]
fn a_bug_free_swarm_summarises_every_run() {
    let out = stdout_of(
        &[
            "swarm",
            "--seeds",
            "2",
            "--layer",
            "paxos",
            "--fault-phase-ms",
            "300",
        ],
        0,
    );
    assert!(out.starts_with("seeds=2 failures=0 commits="), "{out}");
    assert!(out.contains(" layers=paxos elapsed="), "{out}");
}

#[test]
fn a_swarm_prints_the_same_on_one_thread_as_on_several() {
    // Seeds run in parallel are reported in seed order: the output is a
    // serial run's, apart from the elapsed time. A planted bug makes some
    // seeds fail, so their reports' order is checked too.
    let without_elapsed = |out: String| -> String {
        out.lines()
            .map(|l| l.split(" elapsed=").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for extra in [&[][..], &["--planted-bug", "no-wound"][..]] {
        let mut args = vec!["swarm", "--seeds", "6", "--fault-phase-ms", "600"];
        args.extend_from_slice(extra);
        let run = |jobs: &str| {
            let mut a = args.clone();
            a.extend_from_slice(&["--jobs", jobs]);
            let out = sim().args(&a).output().expect("runs");
            if extra.is_empty() {
                assert!(out.status.success(), "{out:?}");
            }
            without_elapsed(String::from_utf8(out.stdout).expect("utf-8"))
        };
        let one = run("1");
        assert!(one.contains("seeds=6 failures="), "{one}");
        assert!(
            one.contains("windows opened (cluster runs/faults aimed): "),
            "{one}"
        );
        assert_eq!(one, run("2"), "--jobs 2 against --jobs 1");
        assert_eq!(one, run("3"), "--jobs 3 against --jobs 1");
    }
    refused(&["swarm", "--jobs", "0"], "must be at least 1");
}

#[test]
fn run_names_the_two_phase_commit_windows_a_cluster_seed_opened() {
    let out = stdout_of(
        &[
            "run",
            "--seed",
            "3",
            "--layer",
            "cluster",
            "--fault-phase-ms",
            "300",
        ],
        0,
    );
    let windows = out
        .split(" windows=")
        .nth(1)
        .and_then(|w| w.split(' ').next())
        .expect("a windows= field");
    for w in windows.split(',').filter(|w| *w != "-") {
        assert!(
            meridian_sim::windows::Window::ALL
                .iter()
                .any(|k| k.name() == w),
            "{w}"
        );
    }
}

#[test]
fn run_replays_a_seed_identically() {
    let args = [
        "run",
        "--seed",
        "5",
        "--layer",
        "paxos",
        "--fault-phase-ms",
        "300",
    ];
    let a = stdout_of(&args, 0);
    let b = stdout_of(&args, 0);
    assert!(a.starts_with("seed=5 layer=paxos ok "), "{a}");
    assert!(a.contains(" digest="), "{a}");
    assert_eq!(a, b);
}

#[test]
fn a_caught_planted_run_reports_the_violation_and_exits_zero() {
    let out = stdout_of(&["run", "--seed", "3", "--planted-bug", "no-wound"], 0);
    let mut lines = out.lines();
    let first = lines.next().expect("the run line");
    assert!(first.starts_with("seed=3 layer=txn FAIL commits="), "{out}");
    let why = lines.next().expect("the violation");
    assert!(
        why.contains("wound-wait leaves no waits-for cycle, at +"),
        "{out}"
    );
    assert!(!why.contains("TxnId {"), "ids print with Display: {out}");
    assert!(
        lines
            .next()
            .expect("the summary")
            .starts_with("planted no-wound: caught on 1/1 seeds")
    );
}

#[test]
fn a_trace_goes_to_stdout_with_relative_times_and_sends() {
    let out = sim()
        .args([
            "run",
            "--seed",
            "2",
            "--layer",
            "txn",
            "--fault-phase-ms",
            "300",
            "--trace",
        ])
        .assert()
        .success()
        .stderr(predicate::str::is_empty())
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).expect("utf-8");
    let header = out.lines().next().expect("a header");
    assert!(
        header.starts_with("seed 2 layer txn: 3 replicas"),
        "{header}"
    );
    assert!(
        !out.contains("membership"),
        "the txn layer never changes membership"
    );
    let events: Vec<&str> = out.lines().filter(|l| l.starts_with(" +")).collect();
    assert!(events.len() > 100, "{out}");
    assert!(events[0].starts_with(" +0.0"), "{}", events[0]);
    for kind in [
        " send    n",
        " deliver n",
        " send    c",
        " deliver c",
        " role    n",
    ] {
        assert!(events.iter().any(|l| l.contains(kind)), "no {kind:?} line");
    }
    assert!(
        !out.contains("TxnId {") && !out.contains("Message {"),
        "no Debug dumps"
    );
    assert!(out.contains(" begun txn "), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("seed=2 layer=txn ok ")
    );
}

#[test]
fn a_trace_filter_keeps_only_matching_lines() {
    let out = stdout_of(
        &[
            "run",
            "--seed",
            "1",
            "--layer",
            "paxos",
            "--fault-phase-ms",
            "300",
            "--trace-filter",
            "node=2",
            "--trace-filter",
            "kind=send|role",
        ],
        0,
    );
    let events: Vec<&str> = out.lines().filter(|l| l.starts_with(" +")).collect();
    assert!(!events.is_empty(), "{out}");
    for l in &events {
        assert!(l.contains("n2"), "{l}");
        assert!(l.contains(" send ") || l.contains(" role "), "{l}");
    }
    assert!(events.iter().any(|l| l.contains(" send    n")), "{out}");
    assert!(
        out.contains("membership churn"),
        "the paxos header names churn"
    );
}

#[test]
fn latency_prints_each_participant_count_beside_spanner_table_4() {
    let out = stdout_of(&["latency", "--txns", "3", "--participants", "1,2"], 0);
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("latency model: one-way 1 ms"), "{out}");
    assert!(rows[1].starts_with("participants  meridian mean"), "{out}");
    assert!(
        rows[2].starts_with("1 ") && rows[2].contains("17.0 ±1.4"),
        "{out}"
    );
    assert!(
        rows[3].starts_with("2 ") && rows[3].contains("24.5 ±2.5"),
        "{out}"
    );
    refused(&["latency", "--participants", "0"], "must be 1 to 1000");
    refused(&["latency", "--participants", "1001"], "must be 1 to 1000");
    refused(&["latency", "--txns", "0"], "must be at least 1");
}
