//! `meridian cluster init|run` through the binary: a directory holds one
//! cluster, which `cluster run` restarts as configured.

use assert_cmd::Command;
use predicates::prelude::*;

fn meridian() -> Command {
    let mut c = Command::cargo_bin("meridian").expect("binary");
    c.env_remove("MERIDIAN_ENDPOINTS");
    c
}

#[test]
fn a_cluster_directory_is_not_overwritten_by_contradicting_options() {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path().to_str().expect("utf-8 path");
    meridian()
        .args([
            "cluster", "init", "--nodes", "3", "--groups", "2", "--dir", dir,
        ])
        .args(["--base-port", "17101"])
        .assert()
        .success();
    let cfg1 = d.path().join("node-1").join("meridian.toml");
    let before = std::fs::read_to_string(&cfg1).expect("written");

    // init again: refused, nothing rewritten.
    meridian()
        .args(["cluster", "init", "--nodes", "3", "--dir", dir])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already holds cluster"));
    // run with options that contradict the cluster: refused before
    // anything starts, naming each contradiction.
    meridian()
        .args([
            "cluster", "run", "--nodes", "5", "--groups", "4", "--dir", dir,
        ])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("3 nodes, 2 groups"))
        .stderr(predicate::str::contains("--nodes 5, but it has 3 nodes"))
        .stderr(predicate::str::contains("--groups 4, but it has 2 groups"));
    meridian()
        .args(["cluster", "run", "--base-port", "17201", "--dir", dir])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--base-port 17201, but node 1 listens on 127.0.0.1:17101",
        ));
    assert_eq!(std::fs::read_to_string(&cfg1).expect("kept"), before);
    assert!(!d.path().join("node-4").exists());
}
