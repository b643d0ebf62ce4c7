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
    meridian()
        .args(["cluster", "run", "--replicas", "2", "--dir", dir])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--replicas 2, but its groups have 3",
        ));
    assert_eq!(std::fs::read_to_string(&cfg1).expect("kept"), before);
    assert!(!d.path().join("node-4").exists());
}

#[test]
fn cluster_init_refuses_more_replicas_than_nodes_and_zero_replicas_with_exit_2() {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path().join("c");
    let dir = dir.to_str().expect("utf-8 path");
    meridian()
        .args([
            "cluster",
            "init",
            "--nodes",
            "3",
            "--replicas",
            "4",
            "--dir",
            dir,
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--replicas 4 exceeds --nodes 3: each replica of a group needs its own node",
        ));
    meridian()
        .args([
            "cluster",
            "init",
            "--nodes",
            "3",
            "--replicas",
            "0",
            "--dir",
            dir,
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--replicas must be at least 1"));
    assert!(!d.path().join("c").join("node-1").exists());
    meridian()
        .args([
            "cluster",
            "init",
            "--nodes",
            "5",
            "--replicas",
            "3",
            "--dir",
            dir,
        ])
        .args(["--base-port", "17501"])
        .assert()
        .success();
    // Three replicas of each of the default three groups over five
    // nodes: distinct nodes, and at most ⌈9/5⌉ = 2 replicas a node.
    let cfg = meridian_node::config::NodeConfig::load(
        &d.path().join("c").join("node-5").join("meridian.toml"),
    )
    .expect("loads");
    for g in &cfg.groups {
        let distinct: std::collections::BTreeSet<u64> = g.replicas.iter().copied().collect();
        assert_eq!(distinct.len(), 3, "{g:?}");
    }
    for n in 1..=5 {
        let held = cfg
            .groups
            .iter()
            .filter(|g| g.replicas.contains(&n))
            .count();
        assert!((1..=2).contains(&held), "node {n} holds {held}");
    }
}

/// The console of a `cluster run` child: its stdin, and its stdout lines
/// read by a thread.
struct Console {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Console {
    fn start(args: &[&str]) -> Console {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("meridian"))
            .args(["cluster", "run"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("cluster run starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Console {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line that starts with `prefix`, and returns it.
    fn expect(&mut self, prefix: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                }
                Err(_) => panic!("no line {prefix:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn send(&mut self, line: &str) {
        use std::io::Write as _;
        writeln!(self.stdin, "{line}").expect("stdin open");
        self.stdin.flush().expect("flush");
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(address).expect("metrics listens");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("answer");
    out
}

#[test]
fn cluster_run_survives_a_dead_node_and_stops_and_restarts_one_from_stdin() {
    let mut c = Console::start(&["--nodes", "3", "--groups", "1"]);
    let mut metrics = Vec::new();
    for i in 1..=3 {
        let l = c.expect(&format!("node {i}: "));
        let m = l
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .and_then(|w| w.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("no metrics address in {l:?}"))
            .to_string();
        let pid: i32 = l
            .split("pid ")
            .nth(1)
            .and_then(|p| p.split(')').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {l:?}"));
        metrics.push((m, pid));
    }
    let endpoints = c.expect("endpoints: ")["endpoints: ".len()..].to_string();
    let data = std::path::PathBuf::from(&c.expect("data: ")["data: ".len()..]);
    assert!(data.join("node-1").join("meridian.toml").exists());
    for (m, _) in &metrics {
        assert!(http_get(m, "/metrics").starts_with("HTTP/1.1 200"));
    }

    // A node dies: reported, and the other two keep serving.
    // SAFETY: kill(2) on a child's pid.
    unsafe {
        libc::kill(metrics[1].1, libc::SIGKILL);
    }
    c.expect("node 2 exited");
    let put = || {
        meridian()
            .args([
                "--endpoints",
                &endpoints,
                "--timeout",
                "20s",
                "put",
                "k",
                "v",
            ])
            .timeout(std::time::Duration::from_secs(40))
            .assert()
            .success();
    };
    put();
    c.send("restart 2");
    c.expect("node 2 restarted");
    assert!(http_get(&metrics[1].0, "/metrics").starts_with("HTTP/1.1 200"));
    c.send("stop 1");
    c.expect("node 1 stopped");
    c.send("nodes");
    let l = c.expect("node 1: ");
    assert!(l.contains("stopped"), "{l}");
    put();
    c.send("frobnicate");
    c.expect("unknown command");
    c.send("quit");
    c.expect(&format!("removed {}", data.display()));
    let status = c.child.wait().expect("exits");
    assert!(status.success(), "{status}");
    assert!(!data.exists(), "{} left behind", data.display());
}

#[test]
fn cluster_run_keeps_a_directory_it_was_given_and_restarts_its_cluster() {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path().to_str().expect("utf-8 path");
    let mut c = Console::start(&["--nodes", "1", "--groups", "1", "--dir", dir]);
    c.expect("endpoints: ");
    c.send("quit");
    c.expect("data kept in ");
    assert!(c.child.wait().expect("exits").success());
    let mut c = Console::start(&["--dir", dir]);
    c.expect("restarting cluster");
    c.expect("endpoints: ");
    c.send("quit");
    c.expect("data kept in ");
    assert!(c.child.wait().expect("exits").success());
}

#[test]
fn a_node_refuses_a_data_directory_of_another_cluster_and_cluster_run_says_why() {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path().to_str().expect("utf-8 path");
    let mut c = Console::start(&["--nodes", "1", "--groups", "1", "--dir", dir]);
    c.expect("endpoints: ");
    c.send("quit");
    c.expect("data kept in ");
    assert!(c.child.wait().expect("exits").success());
    // The configuration now names another cluster: its data refuses it.
    let cfg = d.path().join("node-1").join("meridian.toml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    let id_line = text
        .lines()
        .find(|l| l.starts_with("cluster_id = "))
        .expect("cluster_id");
    std::fs::write(&cfg, text.replace(id_line, "cluster_id = 12345")).expect("rewrite");
    meridian()
        .args(["cluster", "run", "--dir", dir])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("node 1 exited"))
        .stderr(predicate::str::contains("belongs to cluster"))
        .stderr(predicate::str::contains(
            "configured as cluster 0x3039 node 1",
        ));
}
