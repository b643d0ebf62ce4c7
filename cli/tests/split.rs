//! `meridian admin split KEY` through the binary, against an in-process
//! cluster of three nodes: a split in text and in JSON, reads through both
//! halves after it, and bad input (a boundary, the system keyspace) exits 2
//! with nothing changed.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

use meridian_node::local::{LEADER_WAIT, LocalCluster, LocalOptions};

struct Fixture {
    cluster: Option<LocalCluster>,
    endpoints: String,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn start() -> Fixture {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let cluster = rt.block_on(async {
            let c = LocalCluster::start(LocalOptions {
                nodes: 3,
                groups: 1,
                ..LocalOptions::default()
            })
            .await
            .expect("cluster starts");
            c.wait_for_leaders(LEADER_WAIT).await.expect("leaders");
            c
        });
        let endpoints = cluster.endpoints().join(",");
        Fixture {
            cluster: Some(cluster),
            endpoints,
            rt,
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("meridian").expect("binary");
        c.env_remove("MERIDIAN_ENDPOINTS").args([
            "--endpoints",
            &self.endpoints,
            "--timeout",
            "10s",
        ]);
        c
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(c) = self.cluster.take() {
            self.rt.block_on(c.shutdown());
        }
    }
}

#[test]
fn admin_split_splits_a_range_and_refuses_bad_keys_with_exit_2() {
    let f = Fixture::start();
    f.cmd().args(["put", "apple", "red"]).assert().success();
    f.cmd().args(["put", "peach", "orange"]).assert().success();
    f.cmd()
        .args(["admin", "split", "m"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("split at m: group 1"))
        .stderr(predicate::str::contains("allocated group id 2"))
        .stderr(predicate::str::contains("directory updated"));
    let out = f
        .cmd()
        .args(["--output", "json", "admin", "split", "t"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).expect("one JSON object");
    assert_eq!(v["split"], true);
    assert_eq!(v["left"]["group"], 2, "{v}");
    assert_eq!(v["left"]["end"], "t", "{v}");
    assert_eq!(v["right"]["group"], 3, "{v}");
    assert_eq!(v["right"]["start"], "t", "{v}");
    assert_eq!(v["recorded"], true);

    // On a boundary: refused by the range's leader or before, exit 2.
    f.cmd()
        .args(["admin", "split", "m"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("split refused"));
    // In the system keyspace: refused before anything is sent.
    f.cmd()
        .args(["admin", "split", r#""\x00\x00dir""#])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("system keyspace"));
    // A user's script naming a system key: exit 2, nothing sent.
    f.cmd()
        .args(["txn", "-"])
        .write_stdin("put \"\\x00\\x00dir/next-group-id\" \"x\"\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("system keyspace"));

    // Both halves serve through a fresh CLI client.
    f.cmd()
        .args(["get", "apple"])
        .assert()
        .success()
        .stdout("red\n");
    f.cmd()
        .args(["get", "peach"])
        .assert()
        .success()
        .stdout("orange\n");
    f.cmd().args(["put", "zebra", "striped"]).assert().success();
    f.cmd()
        .args(["scan", ""])
        .assert()
        .success()
        .stdout(predicate::str::contains("apple"))
        .stdout(predicate::str::contains("peach"))
        .stdout(predicate::str::contains("zebra"));
}
