//! The `meridian` binary's client subcommands against the in-process fake
//! cluster: output in both formats, and every exit code.

use assert_cmd::Command;
use meridian_client::RemoteError;
use meridian_client::testing::{FakeCluster, FaultAction, Rpc};
use meridian_txn::TxnError;
use predicates::prelude::*;
use serde_json::Value;

/// A fake cluster served by a runtime of its own, so the test thread can
/// run the binary and wait for it.
struct Fixture {
    cluster: FakeCluster,
    _rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn start(nodes: usize, splits: &[&str]) -> Fixture {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cluster = rt.block_on(FakeCluster::start(nodes, splits));
        Fixture { cluster, _rt: rt }
    }

    fn cmd(&self, json: bool) -> Command {
        let mut cmd = Command::cargo_bin("meridian").unwrap();
        cmd.env_remove("MERIDIAN_ENDPOINTS")
            .arg("--endpoints")
            .arg(self.cluster.endpoints_arg())
            .arg("--timeout")
            .arg("2s");
        if json {
            cmd.arg("--output").arg("json");
        }
        cmd
    }
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn put_get_delete_in_text() {
    let f = Fixture::start(2, &["m"]);
    f.cmd(false)
        .args(["put", "greeting", "hello world"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("committed at "));
    assert_eq!(f.cluster.value("greeting").as_deref(), Some("hello world"));
    f.cmd(false)
        .args(["get", "greeting"])
        .assert()
        .success()
        .stdout("hello world\n");
    f.cmd(false).args(["delete", "greeting"]).assert().success();
    // As etcdctl: a missing key prints nothing and exits 0.
    f.cmd(false)
        .args(["get", "greeting"])
        .assert()
        .success()
        .stdout("");
}

#[test]
fn json_shapes_of_reads_and_commits() {
    let f = Fixture::start(2, &["m"]);
    let out = f.cmd(true).args(["put", "k", "v"]).assert().success();
    let lines = json_lines(&out.get_output().stdout);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["committed"], true);
    assert!(lines[0]["commit_ts"].as_u64().unwrap() > 0);
    let txn = lines[0]["txn"].as_str().unwrap().to_string();

    let out = f.cmd(true).args(["get", "k"]).assert().success();
    assert_eq!(
        json_lines(&out.get_output().stdout),
        vec![serde_json::json!({"key": "k", "value": "v"})]
    );
    let out = f.cmd(true).args(["get", "nope"]).assert().success();
    assert_eq!(
        json_lines(&out.get_output().stdout),
        vec![serde_json::json!({"key": "nope", "value": null})]
    );

    let out = f.cmd(true).args(["txn-status", &txn]).assert().success();
    let s = &json_lines(&out.get_output().stdout)[0];
    assert_eq!(s["status"], "committed");
    assert_eq!(s["txn"], txn.as_str());
}

#[test]
fn a_txn_id_prints_the_same_in_the_cli_as_in_debug_and_display() {
    let f = Fixture::start(1, &[]);
    let out = f.cmd(false).args(["put", "k", "v"]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).expect("utf-8");
    let (_, shown) = text
        .trim()
        .rsplit_once(", txn ")
        .expect("the commit names its transaction");
    let id = meridian_client::parse_txn_id(shown).expect("the CLI's id parses back");
    assert_eq!(id.to_string(), shown);
    assert_eq!(format!("{id:?}"), shown);
    let out = f.cmd(false).args(["txn-status", shown]).assert().success();
    let status = String::from_utf8(out.get_output().stdout.clone()).expect("utf-8");
    assert!(
        status.starts_with(&format!("txn {shown}: committed")),
        "{status}"
    );
}

#[test]
fn non_utf8_values_are_base64_in_json() {
    let f = Fixture::start(1, &[]);
    f.cluster.state().data.insert(
        bytes::Bytes::from_static(b"bin"),
        bytes::Bytes::from_static(&[0xff, 0xfe]),
    );
    let out = f.cmd(true).args(["get", "bin"]).assert().success();
    assert_eq!(
        json_lines(&out.get_output().stdout),
        vec![serde_json::json!({"key": "bin", "value_base64": "//4="})]
    );
    f.cmd(false)
        .args(["get", "bin"])
        .assert()
        .success()
        .stdout("\\xff\\xfe\n");
}

#[test]
fn scan_lists_rows_across_groups_up_to_the_limit() {
    let f = Fixture::start(2, &["m"]);
    for k in ["a", "b", "n", "o"] {
        f.cluster.insert(k, &format!("v{k}"));
    }
    f.cmd(false)
        .args(["scan", "a"])
        .assert()
        .success()
        .stdout("a = va\nb = vb\nn = vn\no = vo\n");
    let out = f
        .cmd(true)
        .args(["scan", "b", "z", "--limit", "2"])
        .assert()
        .success();
    assert_eq!(
        json_lines(&out.get_output().stdout),
        vec![
            serde_json::json!({"key": "b", "value": "vb"}),
            serde_json::json!({"key": "n", "value": "vn"}),
        ]
    );
}

#[test]
fn a_txn_script_reads_its_own_writes_and_commits_once() {
    let f = Fixture::start(2, &["m"]);
    f.cluster.insert("x", "old");
    let script = "# move x to y\nget x\nput y the value of x\ndelete x\nget x\nget y\n";
    let out = f
        .cmd(true)
        .arg("txn")
        .write_stdin(script)
        .assert()
        .success();
    let lines = json_lines(&out.get_output().stdout);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0], serde_json::json!({"key": "x", "value": "old"}));
    assert_eq!(lines[1], serde_json::json!({"key": "x", "value": null}));
    assert_eq!(
        lines[2],
        serde_json::json!({"key": "y", "value": "the value of x"})
    );
    assert_eq!(lines[3]["committed"], true);
    assert_eq!(f.cluster.count(Rpc::Commit), 1);
    assert_eq!(f.cluster.value("x"), None);
    assert_eq!(f.cluster.value("y").as_deref(), Some("the value of x"));
}

#[test]
fn a_txn_script_from_a_file_in_text() {
    let f = Fixture::start(1, &[]);
    let dir = std::env::temp_dir().join(format!("meridian-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("script.txt");
    std::fs::write(&path, "put a 1\nget a\n").unwrap();
    f.cmd(false)
        .arg("txn")
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("a = 1\ncommitted at "));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_malformed_txn_script_exits_2_and_sends_nothing() {
    let f = Fixture::start(1, &[]);
    f.cmd(false)
        .arg("txn")
        .write_stdin("put a 1\nfrobnicate a\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("line 2: unknown operation"));
    let long_key = format!("get {}\n", "k".repeat(4097));
    f.cmd(true)
        .arg("txn")
        .write_stdin(long_key)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("\"exit_code\":2"));
    assert!(f.cluster.calls().is_empty(), "{:?}", f.cluster.calls());
}

#[test]
fn limits_exit_2_and_send_nothing() {
    let f = Fixture::start(1, &[]);
    f.cmd(false)
        .args(["put", "", "v"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("empty key"));
    f.cmd(false)
        .args(["get", &"k".repeat(4097)])
        .assert()
        .code(2);
    assert_eq!(f.cluster.data_calls(), 0);
}

#[test]
fn read_only_prints_reads_and_their_timestamp() {
    let f = Fixture::start(2, &["m"]);
    f.cluster.insert("a", "1");
    f.cluster.insert("z", "2");
    let out = f
        .cmd(true)
        .args(["read-only", "a", "z", "q"])
        .assert()
        .success();
    let lines = json_lines(&out.get_output().stdout);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0], serde_json::json!({"key": "a", "value": "1"}));
    assert_eq!(lines[1], serde_json::json!({"key": "z", "value": "2"}));
    assert_eq!(lines[2], serde_json::json!({"key": "q", "value": null}));
    assert!(lines[3]["read_ts"].as_u64().unwrap() > 0);

    let out = f
        .cmd(true)
        .args(["read-only", "--at", "12345", "a"])
        .assert()
        .success();
    assert_eq!(json_lines(&out.get_output().stdout)[1]["read_ts"], 12345);
    f.cmd(false)
        .args(["read-only", "--max-staleness", "500ms", "a", "z"])
        .assert()
        .success()
        .stdout(predicate::str::contains("a = 1\nz = 2\nread at "));
    f.cmd(false)
        .args(["read-only", "--max-staleness", "soon", "a"])
        .assert()
        .code(2);
}

#[test]
fn status_shows_nodes_liveness_ranges_leaders_and_replicas() {
    let f = Fixture::start(2, &["m"]);
    f.cmd(false)
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "cluster 0xc1, epoch 1, answered by node 1",
        ))
        .stdout(predicate::str::contains("[-∞, \"m\")"))
        .stdout(predicate::str::contains("[\"m\", +∞)"))
        .stdout(predicate::str::contains("leader 2"))
        .stdout(predicate::str::contains("self (answering)"))
        .stdout(predicate::str::contains("live (last contact 250 ms ago)"))
        .stdout(predicate::str::contains("replicas at node 1:"))
        .stdout(predicate::str::is_match(r"(?m)^ +1 +leader +10 +10 +0  0\.010 ms$").unwrap());
    let out = f.cmd(true).arg("status").assert().success();
    let s = &json_lines(&out.get_output().stdout)[0];
    assert_eq!(s["schema_version"], 1);
    assert_eq!(s["cluster_id"], 0xC1);
    assert_eq!(s["answered_by"], 1);
    let nodes = s["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["liveness"]["state"], "self");
    assert_eq!(nodes[0]["liveness"]["last_contact_ms"], 0);
    assert_eq!(nodes[1]["liveness"]["state"], "live");
    assert_eq!(nodes[1]["liveness"]["last_contact_ms"], 250);
    assert_eq!(nodes[1]["metrics_address"], "metrics-of-2:9");
    // Only the answering node reports its replicas.
    assert_eq!(nodes[1]["replicas"], Value::Null);
    let replicas = nodes[0]["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 2);
    assert_eq!(replicas[0]["group"], 1);
    assert_eq!(replicas[0]["role"], "leader");
    assert_eq!(replicas[1]["role"], "follower");
    assert_eq!(replicas[0]["chosen"], 10);
    assert_eq!(replicas[0]["applied"], 10);
    assert_eq!(replicas[0]["active_txns"], 0);
    assert_eq!(replicas[0]["safe_time_lag_ms"], 0.01);
    assert_eq!(s["ranges"][1]["start"], "m");
    assert_eq!(s["ranges"][1]["end"], Value::Null);
    assert_eq!(s["ranges"][0]["leader"], 1);
    assert_eq!(s["ranges"][0]["replicas"], serde_json::json!([1, 2]));
    assert_eq!(s["clock"]["ok"], true);

    // --node asks another node; an id not in the cluster is bad input.
    let out = f
        .cmd(true)
        .args(["status", "--node", "2"])
        .assert()
        .success();
    let s = &json_lines(&out.get_output().stdout)[0];
    assert_eq!(s["answered_by"], 2);
    assert_eq!(s["nodes"][1]["liveness"]["state"], "self");
    assert_eq!(s["nodes"][1]["replicas"][1]["role"], "leader");
    f.cmd(false)
        .args(["status", "--node", "9"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "node 9 is not a node of cluster 0xc1",
        ));
}

#[test]
fn an_aborted_or_refused_commit_exits_1() {
    let f = Fixture::start(1, &[]);
    let busy = RemoteError::Txn(TxnError::TxnBusy {
        txn: meridian_client::TxnId::new(0, 1),
    });
    f.cluster
        .fault(Rpc::Commit, None, FaultAction::Error(busy), 1);
    f.cmd(false)
        .args(["put", "k", "v"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("error: "));
    assert_eq!(f.cluster.value("k"), None);
}

#[test]
fn an_unknown_outcome_exits_3() {
    let f = Fixture::start(1, &[]);
    f.cluster.fault(Rpc::Commit, None, FaultAction::Lose, 1);
    f.cmd(true)
        .args(["put", "k", "v"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("unknown"));
}

#[test]
fn unreachable_or_unparsable_endpoints() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    Command::cargo_bin("meridian")
        .unwrap()
        .args(["--endpoints", &addr, "--timeout", "1s", "get", "k"])
        .assert()
        .code(4)
        .stderr(predicate::str::starts_with("error: cluster unavailable"));
    Command::cargo_bin("meridian")
        .unwrap()
        .args(["--endpoints", "no-port-here", "get", "k"])
        .assert()
        .code(2);
    // Endpoints from the environment.
    Command::cargo_bin("meridian")
        .unwrap()
        .env("MERIDIAN_ENDPOINTS", &addr)
        .args(["--timeout", "1s", "status"])
        .assert()
        .code(4);
}

#[test]
fn bad_usage_exits_2() {
    Command::cargo_bin("meridian")
        .unwrap()
        .env_remove("MERIDIAN_ENDPOINTS")
        .args(["get", "k"])
        .assert()
        .code(2);
    Command::cargo_bin("meridian")
        .unwrap()
        .args(["--endpoints", "127.0.0.1:1", "frobnicate"])
        .assert()
        .code(2);
    Command::cargo_bin("meridian")
        .unwrap()
        .args(["--endpoints", "127.0.0.1:1", "txn-status", "zz.top"])
        .assert()
        .code(2);
}

#[test]
fn unreadable_tls_files_exit_2() {
    Command::cargo_bin("meridian")
        .unwrap()
        .args([
            "--endpoints",
            "127.0.0.1:1",
            "--tls-ca",
            "/nonexistent/ca.pem",
            "--tls-cert",
            "/nonexistent/client.pem",
            "--tls-key",
            "/nonexistent/client.key",
            "status",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/ca.pem"));
}

#[test]
fn missing_endpoints_exit_2_with_a_hint() {
    Command::cargo_bin("meridian")
        .unwrap()
        .env_remove("MERIDIAN_ENDPOINTS")
        .args(["status"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("MERIDIAN_ENDPOINTS"));
}

#[test]
fn replace_node_refuses_bad_input() {
    let f = Fixture::start(3, &["m"]);
    // An unknown node: the cluster says no (exit 1).
    f.cmd(false)
        .args([
            "admin",
            "replace-node",
            "--old",
            "9",
            "--new",
            "4",
            "--address",
            "127.0.0.1:7999",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("node 9 is not a node of cluster"));
    // The same node twice, and bad addresses: refused before anything is
    // sent (exit 2).
    f.cmd(false)
        .args([
            "admin",
            "replace-node",
            "--old",
            "3",
            "--new",
            "3",
            "--address",
            "127.0.0.1:7999",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot replace itself"));
    for bad in [
        "nowhere",
        "127.0.0.1:notaport",
        "http://127.0.0.1:7999",
        ":7999",
    ] {
        let out = f
            .cmd(true)
            .args([
                "admin",
                "replace-node",
                "--old",
                "3",
                "--new",
                "4",
                "--address",
                bad,
            ])
            .assert()
            .code(2);
        let err = json_lines(&out.get_output().stderr);
        assert_eq!(err[0]["exit_code"], 2, "{bad}");
        assert!(
            err[0]["error"].as_str().unwrap().contains("bad address"),
            "{bad}: {err:?}"
        );
    }
    // A node id out of range, and a missing argument (clap: exit 2).
    f.cmd(false)
        .args([
            "admin",
            "replace-node",
            "--old",
            "0",
            "--new",
            "4",
            "--address",
            "127.0.0.1:7999",
        ])
        .assert()
        .code(2);
    f.cmd(false)
        .args(["admin", "replace-node", "--old", "3", "--new", "4"])
        .assert()
        .code(2);
    // An unreachable cluster (exit 4).
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    Command::cargo_bin("meridian")
        .unwrap()
        .env_remove("MERIDIAN_ENDPOINTS")
        .args([
            "--endpoints",
            &addr,
            "--timeout",
            "1s",
            "admin",
            "replace-node",
            "--old",
            "3",
            "--new",
            "4",
            "--address",
            "127.0.0.1:7999",
        ])
        .assert()
        .code(4);
}

#[test]
fn a_missing_key_is_told_apart_from_a_stored_value_in_text() {
    let f = Fixture::start(1, &[]);
    // A value that reads like the old "no value" marker.
    f.cluster.insert("odd", "(no value)");
    f.cmd(false)
        .args(["get", "odd"])
        .assert()
        .success()
        .stdout("(no value)\n");
    f.cmd(false)
        .args(["get", "nope"])
        .assert()
        .success()
        .stdout("");
    // Labelled reads list the keys found only.
    f.cmd(false)
        .args(["read-only", "odd", "nope"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("odd = (no value)\nread at "));
}

#[test]
fn global_flags_go_anywhere_on_the_line() {
    let f = Fixture::start(1, &[]);
    f.cluster.insert("k", "v");
    let out = Command::cargo_bin("meridian")
        .unwrap()
        .env_remove("MERIDIAN_ENDPOINTS")
        .args(["get", "k", "--output", "json", "--endpoints"])
        .arg(f.cluster.endpoints_arg())
        .args(["--timeout", "2s"])
        .assert()
        .success();
    assert_eq!(
        json_lines(&out.get_output().stdout),
        vec![serde_json::json!({"key": "k", "value": "v"})]
    );
}

#[test]
fn every_global_flag_has_an_environment_variable() {
    let f = Fixture::start(1, &[]);
    f.cluster.insert("k", "v");
    let out = Command::cargo_bin("meridian")
        .unwrap()
        .env("MERIDIAN_ENDPOINTS", f.cluster.endpoints_arg())
        .env("MERIDIAN_OUTPUT", "json")
        .env("MERIDIAN_TIMEOUT", "2s")
        .args(["get", "k"])
        .assert()
        .success();
    assert_eq!(json_lines(&out.get_output().stdout)[0]["value"], "v");
    // A flag beats its variable.
    Command::cargo_bin("meridian")
        .unwrap()
        .env("MERIDIAN_ENDPOINTS", f.cluster.endpoints_arg())
        .env("MERIDIAN_OUTPUT", "json")
        .args(["get", "k", "--output", "text"])
        .assert()
        .success()
        .stdout("v\n");
    // A bad value in a variable is a usage error.
    Command::cargo_bin("meridian")
        .unwrap()
        .env("MERIDIAN_ENDPOINTS", f.cluster.endpoints_arg())
        .env("MERIDIAN_TIMEOUT", "soon")
        .args(["get", "k"])
        .assert()
        .code(2);
    let help = Command::cargo_bin("meridian")
        .unwrap()
        .args(["get", "--help"])
        .assert()
        .success();
    let help = String::from_utf8_lossy(&help.get_output().stdout).to_string();
    for var in [
        "MERIDIAN_ENDPOINTS",
        "MERIDIAN_OUTPUT",
        "MERIDIAN_TIMEOUT",
        "MERIDIAN_TLS_CA",
        "MERIDIAN_TLS_CERT",
        "MERIDIAN_TLS_KEY",
    ] {
        assert!(help.contains(var), "{var} missing from:\n{help}");
    }
}

#[test]
fn put_without_a_value_reads_it_from_stdin_past_the_argument_limit() {
    let f = Fixture::start(1, &[]);
    // Larger than one argument may be on Linux (MAX_ARG_STRLEN, 128 KiB).
    let big = "x".repeat(200 * 1024);
    f.cmd(false)
        .args(["put", "big"])
        .write_stdin(big.clone())
        .assert()
        .success()
        .stdout(predicate::str::starts_with("committed at "));
    assert_eq!(f.cluster.value("big").as_deref(), Some(big.as_str()));
    // Byte for byte: the newline is kept.
    f.cmd(false)
        .args(["put", "line"])
        .write_stdin("hello\n")
        .assert()
        .success();
    assert_eq!(f.cluster.value("line").as_deref(), Some("hello\n"));
    // Over the limit: exit 2, nothing sent.
    let calls = f.cluster.data_calls();
    f.cmd(true)
        .args(["put", "huge"])
        .write_stdin("x".repeat(meridian_txn::api::MAX_VALUE_BYTES + 1))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("\"exit_code\":2"));
    assert_eq!(f.cluster.data_calls(), calls);
}

#[test]
fn txn_scripts_take_quoted_keys_and_values_with_escapes() {
    let f = Fixture::start(1, &[]);
    let script = concat!(
        "put \"a b\" 1\n",
        "put q \"two\\nlines \\\"quoted\\\" \\x41\"  # a comment\n",
        "put plain the rest of the line # kept\n",
        "get \"a b\"\n",
    );
    let out = f
        .cmd(true)
        .arg("txn")
        .write_stdin(script)
        .assert()
        .success();
    let lines = json_lines(&out.get_output().stdout);
    assert_eq!(lines[0], serde_json::json!({"key": "a b", "value": "1"}));
    assert_eq!(lines[1]["committed"], true);
    assert_eq!(f.cluster.value("a b").as_deref(), Some("1"));
    assert_eq!(
        f.cluster.value("q").as_deref(),
        Some("two\nlines \"quoted\" A")
    );
    assert_eq!(
        f.cluster.value("plain").as_deref(),
        Some("the rest of the line # kept")
    );
    for (bad, why) in [
        ("put \"open 1\n", "unterminated"),
        ("put k \"v\" extra\n", "after the quoted value"),
        ("get \"k\\q\"\n", "unknown escape"),
        ("put k \"\\x4\"\n", "two hex digits"),
    ] {
        f.cmd(false)
            .arg("txn")
            .write_stdin(bad)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(why));
    }
}

#[test]
fn txn_help_gives_the_script_grammar() {
    Command::cargo_bin("meridian")
        .unwrap()
        .args(["txn", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("put KEY VALUE"))
        .stdout(predicate::str::contains("\\xNN"))
        .stdout(predicate::str::contains("quoted string"));
}

#[test]
fn an_empty_txn_script_is_refused_and_never_committed() {
    let f = Fixture::start(1, &[]);
    for script in ["", "# only a comment\n\n"] {
        f.cmd(false)
            .arg("txn")
            .write_stdin(script)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains("no operation"));
    }
    assert!(f.cluster.calls().is_empty(), "{:?}", f.cluster.calls());
}

#[test]
fn read_only_at_too_far_ahead_exits_2_before_connecting() {
    let f = Fixture::start(1, &[]);
    f.cmd(false)
        .args(["read-only", "--at", "2030-01-01T00:00:00Z", "k"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("too far ahead"));
    f.cmd(true)
        .args(["read-only", "--at", "2030-01-01T00:00:00Z", "k"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("\"exit_code\":2"));
    assert!(f.cluster.calls().is_empty(), "{:?}", f.cluster.calls());
}

#[test]
fn bad_input_exits_2_before_connecting() {
    let f = Fixture::start(1, &[]);
    let long = "k".repeat(4097);
    for args in [
        vec!["get", ""],
        vec!["put", "", "v"],
        vec!["delete", &long],
        vec!["read-only", "a", ""],
        vec!["scan", "a", &long],
    ] {
        f.cmd(false).args(&args).assert().code(2);
    }
    // Not even the cluster's status was asked.
    assert!(f.cluster.calls().is_empty(), "{:?}", f.cluster.calls());
    // `https://` without a CA.
    Command::cargo_bin("meridian")
        .unwrap()
        .args(["get", "k", "--endpoints", "https://127.0.0.1:1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--tls-ca"));
}

#[test]
fn a_group_that_does_not_exist_exits_2() {
    let f = Fixture::start(3, &["m"]);
    f.cmd(false)
        .args(["admin", "change-membership", "--group", "99", "--add", "3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("group 99 does not exist"));
}

#[test]
fn timeout_bounds_the_whole_command() {
    let f = Fixture::start(1, &[]);
    // A group that keeps electing (no majority): every read is refused
    // with no leader hint, and the client keeps retrying.
    let electing = RemoteError::Txn(TxnError::NotLeader { leader: None });
    f.cluster
        .fault(Rpc::ReadOnly, None, FaultAction::Error(electing), 1_000_000);
    let started = std::time::Instant::now();
    Command::cargo_bin("meridian")
        .unwrap()
        .env_remove("MERIDIAN_ENDPOINTS")
        .args(["--endpoints", &f.cluster.endpoints_arg()])
        .args(["get", "k", "--timeout", "1s"])
        .assert()
        .code(4);
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_millis(2500),
        "took {took:?}"
    );
    // A node that never answers.
    let f = Fixture::start(1, &[]);
    f.cluster.fault(
        Rpc::ReadOnly,
        None,
        FaultAction::Delay(std::time::Duration::from_secs(30)),
        100,
    );
    let started = std::time::Instant::now();
    Command::cargo_bin("meridian")
        .unwrap()
        .env_remove("MERIDIAN_ENDPOINTS")
        .args(["--endpoints", &f.cluster.endpoints_arg()])
        .args(["--output", "json", "--timeout", "1s", "get", "k"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("\"exit_code\":4"));
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_millis(2500),
        "took {took:?}"
    );
}

#[test]
fn usage_errors_under_json_output_are_json() {
    for args in [
        vec!["--output", "json", "get"],
        vec!["get", "--output", "json", "--frobnicate"],
        vec!["--output=json", "frobnicate"],
    ] {
        let out = Command::cargo_bin("meridian")
            .unwrap()
            .env("MERIDIAN_ENDPOINTS", "127.0.0.1:1")
            .args(&args)
            .assert()
            .code(2);
        let err = json_lines(&out.get_output().stderr);
        assert_eq!(err.len(), 1, "{args:?}");
        assert_eq!(err[0]["exit_code"], 2, "{args:?}");
        assert!(err[0]["error"].as_str().unwrap().len() > 5, "{args:?}");
    }
    // From the environment too.
    let out = Command::cargo_bin("meridian")
        .unwrap()
        .env("MERIDIAN_OUTPUT", "json")
        .args(["put"])
        .assert()
        .code(2);
    assert_eq!(json_lines(&out.get_output().stderr)[0]["exit_code"], 2);
}

#[test]
fn help_texts_are_for_users() {
    let help = |args: &[&str]| {
        let out = Command::cargo_bin("meridian")
            .unwrap()
            .args(args)
            .arg("--help")
            .assert()
            .success();
        String::from_utf8_lossy(&out.get_output().stdout).to_string()
    };
    let top = help(&[]);
    assert!(top.contains("key-value store"), "{top}");
    for args in [
        &[][..],
        &["get"],
        &["put"],
        &["scan"],
        &["txn"],
        &["read-only"],
        &["status"],
        &["txn-status"],
        &["admin"],
        &["admin", "replace-node"],
        &["admin", "change-membership"],
        &["cluster", "run"],
        &["cluster", "init"],
        &["node"],
        &["cert"],
        &["cert", "create-node"],
    ] {
        let text = help(args);
        for internal in ["[`", "`]", "crate::", "module docs", "::cli", "rustdoc"] {
            assert!(
                !text.contains(internal),
                "`meridian {} --help` shows {internal:?}:\n{text}",
                args.join(" ")
            );
        }
    }
}

#[test]
fn a_node_refusing_a_read_timestamp_too_far_ahead_exits_2() {
    // The node judges by its own clock, which may run behind the CLI's.
    let f = Fixture::start(1, &[]);
    let ts = meridian_truetime::Timestamp::from_nanos(5);
    let refused = RemoteError::Txn(TxnError::ReadTimestampTooFarAhead {
        read_ts: ts,
        now_latest: ts,
        max_lead_nanos: 1,
    });
    f.cluster
        .fault(Rpc::ReadOnly, None, FaultAction::Error(refused), 10);
    f.cmd(false)
        .args(["read-only", "--at", "12345", "k"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("too far ahead"));
    assert_eq!(f.cluster.count(Rpc::ReadOnly), 1, "not retried");
}

#[test]
fn a_read_below_the_clusters_birth_is_refused_with_the_birth_and_exits_1_as_below_the_gc_horizon() {
    // The cluster refuses it (the CLI does not know the birth): exit 1,
    // as for a read below the GC horizon, and not retried.
    let f = Fixture::start(1, &[]);
    let refused = RemoteError::Txn(TxnError::ReadBelowClusterBirth {
        read_ts: meridian_truetime::Timestamp::from_nanos(1_000_000_000),
        birth: meridian_truetime::Timestamp::from_nanos(1_796_659_200_000_000_000),
    });
    f.cluster
        .fault(Rpc::ReadOnly, None, FaultAction::Error(refused), 10);
    f.cmd(false)
        .args(["read-only", "--at", "1970-01-01T00:00:01Z", "k"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("read at 1970-01-01T00:00:01"))
        .stderr(predicate::str::contains(
            "is below the cluster's birth (2026-12-07T16:00:00.000000000Z)",
        ))
        .stderr(predicate::str::contains("nothing was stored then"));
    assert_eq!(f.cluster.count(Rpc::ReadOnly), 1, "not retried");
}
