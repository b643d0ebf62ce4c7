//! `meridian-ycsb load` and `run` against an existing cluster
//! (`--endpoints`): here a local cluster started by the test, which the
//! binary reaches over gRPC like any other.

use std::process::{Command, Output};
use std::time::Duration;

use meridian_node::local::{LocalCluster, LocalOptions};
use serde_json::Value;

mod common;
use common::parse_ycsb_csv;

async fn ycsb(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_meridian-ycsb"))
            .args(&args)
            .arg("--no-progress")
            .output()
            .expect("the binary runs")
    })
    .await
    .expect("the command's thread")
}

fn args(s: &[&str]) -> Vec<String> {
    s.iter().map(|a| a.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_then_run_transfer_against_an_existing_cluster() {
    let cluster = LocalCluster::start(LocalOptions::default())
        .await
        .expect("the cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(60))
        .await
        .expect("leaders");
    let endpoints = cluster.endpoints().join(",");
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("run.json");
    let common = [
        "--workload",
        "transfer",
        "--records",
        "40",
        "--threads",
        "4",
    ];

    let mut load = args(&["load"]);
    load.extend(args(&common));
    load.extend(args(&["--endpoints", &endpoints]));
    let out = ycsb(load).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = parse_ycsb_csv(&stdout);
    assert_eq!(
        report[&("LOAD".to_string(), "Records".to_string())],
        "40",
        "{stdout}"
    );

    let mut run = args(&["run"]);
    run.extend(args(&common));
    run.extend(args(&[
        "--endpoints",
        &endpoints,
        "--operations",
        "40",
        "--cc",
        "occ",
        "--json",
        json.to_str().expect("utf-8 path"),
    ]));
    let out = ycsb(run).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = parse_ycsb_csv(&stdout);
    assert_eq!(
        report[&("TRANSFER".to_string(), "Return=OK".to_string())],
        "40"
    );
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON");
    assert_eq!(v["settings"]["embedded"], Value::Bool(false));
    assert!(v["load"].is_null(), "run --endpoints does not load");
    let check = &v["transfer_check"];
    assert_eq!(check["passed"], Value::Bool(true), "{check}");
    assert_eq!(check["total_before"].as_i64(), Some(40 * 1000), "{check}");
    assert_eq!(check["total_after"].as_i64(), Some(40 * 1000), "{check}");
    assert!(check["expected_total"].is_null());
    assert_eq!(v["operations"]["TRANSFER"]["count"].as_u64(), Some(40));
    assert!(v["commit_wait"]["mean_us"].is_null());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_against_a_cluster_without_the_records_asked_for_is_refused() {
    let cluster = LocalCluster::start(LocalOptions::default())
        .await
        .expect("the cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(60))
        .await
        .expect("leaders");
    let endpoints = cluster.endpoints().join(",");
    let refused = |out: &Output, needle: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(needle), "{needle:?} missing: {stderr}");
        assert!(
            !stderr.contains("running workload"),
            "refused before the run: {stderr}"
        );
        assert!(out.stdout.is_empty(), "no report");
    };

    // An empty cluster: transfer has no accounts, workload C no records.
    let out = ycsb(args(&[
        "run",
        "--workload",
        "transfer",
        "--records",
        "20",
        "--operations",
        "10",
        "--endpoints",
        &endpoints,
    ]))
    .await;
    refused(&out, "holds no accounts");
    let out = ycsb(args(&[
        "run",
        "--workload",
        "c",
        "--records",
        "20",
        "--operations",
        "10",
        "--endpoints",
        &endpoints,
    ]))
    .await;
    refused(&out, "does not hold record 19");

    // Loaded with fewer records than the run asks for.
    let out = ycsb(args(&[
        "load",
        "--workload",
        "transfer",
        "--records",
        "10",
        "--threads",
        "2",
        "--endpoints",
        &endpoints,
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ycsb(args(&[
        "run",
        "--workload",
        "transfer",
        "--records",
        "20",
        "--operations",
        "10",
        "--endpoints",
        &endpoints,
    ]))
    .await;
    refused(&out, "holds 10 of the 20 accounts");
    let out = ycsb(args(&[
        "run",
        "--workload",
        "c",
        "--records",
        "20",
        "--operations",
        "10",
        "--endpoints",
        &endpoints,
    ]))
    .await;
    refused(&out, "does not hold record 19");

    // The records it holds run.
    let out = ycsb(args(&[
        "run",
        "--workload",
        "transfer",
        "--records",
        "10",
        "--operations",
        "10",
        "--threads",
        "2",
        "--endpoints",
        &endpoints,
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster.shutdown().await;
}
