//! Short end-to-end runs of `meridian-ycsb` on its embedded cluster
//! (three real nodes in the process, with write-ahead logs and gRPC on
//! loopback).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;
use common::parse_ycsb_csv;

/// Runs the binary with `args` plus `--json FILE`; answers the exit code,
/// stdout and the JSON report.
fn run(args: &[&str], dir: &Path) -> (Option<i32>, String, Value) {
    let json = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_meridian-ycsb"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .arg("--no-progress")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stdout:\n{stdout}\nstderr:\n{stderr}"));
    let v: Value = serde_json::from_str(&text).expect("the report is JSON");
    (out.status.code(), stdout, v)
}

#[test]
fn transfer_conserves_the_total_across_groups() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, stdout, v) = run(
        &[
            "run",
            "--workload",
            "transfer",
            "--duration",
            "3",
            "--threads",
            "4",
            "--records",
            "50",
        ],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert!(v["throughput_ops_s"].as_f64().expect("throughput") > 0.0);
    let check = &v["transfer_check"];
    assert_eq!(check["passed"], Value::Bool(true), "{check}");
    assert_eq!(check["expected_total"].as_i64(), Some(50 * 1000));
    assert_eq!(check["total_after"].as_i64(), Some(50 * 1000));
    assert_eq!(check["accounts_after"].as_u64(), Some(50));
    let t = &v["operations"]["TRANSFER"];
    assert!(t["count"].as_u64().expect("count") > 0);
    assert!(t["p99_us"].as_u64().expect("p99") >= t["p50_us"].as_u64().expect("p50"));
    assert!(
        v["commit_wait"]["mean_us"].as_f64().is_some(),
        "{}",
        v["commit_wait"]
    );
    assert!(
        v["wal_fsync"]["count"].as_u64().expect("fsyncs") > 0,
        "{}",
        v["wal_fsync"]
    );
    let report = parse_ycsb_csv(&stdout);
    let get = |s: &str, m: &str| report.get(&(s.to_string(), m.to_string())).cloned();
    assert_eq!(get("TRANSFER-CHECK", "Result").as_deref(), Some("PASSED"));
    assert_eq!(get("SETTINGS", "Workload").as_deref(), Some("transfer"));
    assert_eq!(v["settings"]["groups"].as_u64(), Some(3));
}

#[test]
fn workload_a_reads_and_updates_and_plots() {
    let dir = tempfile::tempdir().expect("temp dir");
    let svg = dir.path().join("a.svg");
    let (code, stdout, v) = run(
        &[
            "run",
            "--workload",
            "a",
            "--records",
            "200",
            "--duration",
            "2",
            "--threads",
            "8",
            "--plot",
            svg.to_str().expect("utf-8 path"),
        ],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert!(v["throughput_ops_s"].as_f64().expect("throughput") > 0.0);
    assert_eq!(v["load"]["records"].as_u64(), Some(200));
    for op in ["READ", "UPDATE"] {
        let o = &v["operations"][op];
        assert!(o["count"].as_u64().expect("count") > 0, "{op}: {o}");
        assert_eq!(o["failed"].as_u64(), Some(0), "{op}: {o}");
        for p in ["mean_us", "p50_us", "p95_us", "p99_us", "p999_us", "max_us"] {
            assert!(o[p].as_f64().is_some(), "{op} {p}: {o}");
        }
    }
    // Every line of the real report is a YCSB CSV row, and the
    // operations' sections hold what YCSB's do.
    let report = parse_ycsb_csv(&stdout);
    for op in ["READ", "UPDATE"] {
        for metric in [
            "Operations",
            "AverageLatency(us)",
            "90thPercentileLatency(us)",
            "99thPercentileLatency(us)",
            "99.99PercentileLatency(us)",
            "Return=OK",
        ] {
            assert!(
                report.contains_key(&(op.to_string(), metric.to_string())),
                "[{op}], {metric} missing:\n{stdout}"
            );
        }
        assert_eq!(
            report[&(op.to_string(), "Return=OK".to_string())],
            report[&(op.to_string(), "Operations".to_string())]
        );
    }
    assert_eq!(report[&("LOAD".to_string(), "Records".to_string())], "200");
    let plot = std::fs::read_to_string(&svg).expect("the plot was written");
    assert!(plot.contains("<svg") && plot.contains("polyline"), "{plot}");
    for legend in ["READ", "UPDATE", "p99 (us)"] {
        assert!(plot.contains(legend), "{legend} missing from the plot");
    }
}

#[test]
fn workloads_e_f_and_ro_sum_run_by_operation_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, stdout, v) = run(
        &[
            "run",
            "--workload",
            "e",
            "--records",
            "300",
            "--operations",
            "150",
            "--threads",
            "4",
        ],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{stdout}");
    let scans = v["operations"]["SCAN"]["count"].as_u64().unwrap_or(0);
    let inserts = v["operations"]["INSERT"]["count"].as_u64().unwrap_or(0);
    assert_eq!(scans + inserts, 150, "{}", v["operations"]);

    let (code, stdout, v) = run(
        &[
            "run",
            "--workload",
            "f",
            "--cc",
            "occ",
            "--records",
            "100",
            "--operations",
            "100",
            "--threads",
            "4",
        ],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        v["operations"]["READ-MODIFY-WRITE"]["count"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    assert_eq!(v["settings"]["cc"], "occ");

    let (code, stdout, v) = run(
        &[
            "run",
            "--workload",
            "ro-sum",
            "--records",
            "100",
            "--keys",
            "10",
            "--operations",
            "40",
            "--threads",
            "4",
        ],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(v["operations"]["RO-SUM"]["count"].as_u64(), Some(40));
    assert_eq!(v["ro_sum_mismatches"].as_u64(), Some(0));
}
