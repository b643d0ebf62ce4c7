//! Argument validation of the `meridian-ycsb` binary: bad input exits
//! with code 2 and a clear message, an unreachable cluster fails quickly.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn ycsb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian-ycsb"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let out = ycsb(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: stderr should mention {needle:?}: {stderr}"
    );
}

#[test]
fn unknown_workload_exits_2() {
    assert_usage_error(&["run", "--workload", "z"], "invalid value 'z'");
}

#[test]
fn zero_threads_exits_2() {
    assert_usage_error(&["run", "--threads", "0"], "--threads");
}

#[test]
fn zero_records_exits_2() {
    assert_usage_error(&["run", "--records", "0"], "--records");
}

#[test]
fn zipf_out_of_range_exits_2() {
    assert_usage_error(&["run", "--zipf", "1.5"], "strictly between 0 and 1");
    assert_usage_error(&["run", "--zipf", "0"], "strictly between 0 and 1");
}

#[test]
fn load_without_endpoints_exits_2() {
    assert_usage_error(&["load", "--workload", "a"], "`load` needs --endpoints");
}

#[test]
#[cfg(not(feature = "etcd"))]
fn etcd_target_without_the_feature_is_refused() {
    assert_usage_error(
        &["run", "--target", "etcd", "--endpoints", "127.0.0.1:2379"],
        "built without the etcd feature",
    );
}

#[test]
#[cfg(feature = "etcd")]
fn etcd_target_needs_endpoints() {
    assert_usage_error(
        &["run", "--target", "etcd"],
        "--target etcd needs --endpoints",
    );
}

#[test]
#[cfg(feature = "etcd")]
fn unreachable_etcd_exits_4() {
    let out = ycsb(&[
        "run",
        "--target",
        "etcd",
        "--endpoints",
        "127.0.0.1:1",
        "--no-progress",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("cannot reach etcd"), "{stderr}");
}

#[test]
fn operations_and_duration_conflict() {
    assert_usage_error(
        &["run", "--operations", "10", "--duration", "5"],
        "cannot be used with",
    );
}

#[test]
fn ro_sum_with_more_keys_than_records_exits_2() {
    assert_usage_error(
        &[
            "run",
            "--workload",
            "ro-sum",
            "--records",
            "5",
            "--keys",
            "6",
        ],
        "distinct accounts",
    );
}

#[test]
fn unreachable_endpoints_fail_quickly() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let endpoint = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let out = ycsb(&[
        "run",
        "--workload",
        "c",
        "--endpoints",
        &endpoint,
        "--duration",
        "1",
    ]);
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("cannot reach the cluster"), "{stderr}");
    assert!(stderr.contains(&endpoint), "{stderr}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn an_unwritable_json_or_plot_path_is_refused_before_the_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-dir").join("report.json");
    let missing = missing.to_str().expect("utf-8 path");
    let a_dir = dir.path().to_str().expect("utf-8 path");
    for (flag, path, needle) in [
        ("--json", missing, "cannot write"),
        ("--plot", missing, "cannot write"),
        ("--json", a_dir, "is a directory"),
    ] {
        let start = Instant::now();
        let out = ycsb(&["run", "--operations", "10", flag, path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {path}: {stderr}");
        assert!(stderr.contains(flag) && stderr.contains(needle), "{stderr}");
        assert!(
            !stderr.contains("starting an embedded cluster"),
            "nothing runs: {stderr}"
        );
        assert!(out.stdout.is_empty(), "no report");
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn help_explains_the_report_that_holds_no_prose() {
    let out = ycsb(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{help}");
    for needle in [
        "[SECTION], Metric, Value",
        "Return=",
        "-FAILED]",
        "[COMMIT-WAIT]",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}: {help}");
    }
}
