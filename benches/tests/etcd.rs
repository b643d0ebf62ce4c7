//! `meridian-ycsb --target etcd` against a real etcd (cargo feature
//! `etcd`): a one-member etcd on loopback started by the test, loaded and
//! run with `transfer` (whose total must be unchanged) and YCSB-F. The
//! etcd binary comes from `$MERIDIAN_TEST_ETCD` or `PATH`
//! (`scripts/compare-etcd.sh` installs one under the target directory);
//! without one the tests say so and pass.
#![cfg(feature = "etcd")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long etcd may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(20);

struct Etcd {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn etcd_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MERIDIAN_TEST_ETCD").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
}

fn start_etcd() -> Option<Etcd> {
    let Some(bin) = etcd_binary() else {
        eprintln!("no etcd binary (set MERIDIAN_TEST_ETCD): skipped");
        return None;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = meridian_node::local::free_ports(2).expect("two free ports");
    let (client, peer) = (ports[0], ports[1]);
    let endpoint = format!("127.0.0.1:{client}");
    let child = Command::new(bin)
        .args([
            "--data-dir",
            &dir.path().join("data").display().to_string(),
            "--listen-client-urls",
            &format!("http://{endpoint}"),
            "--advertise-client-urls",
            &format!("http://{endpoint}"),
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--initial-cluster",
            &format!("default=http://127.0.0.1:{peer}"),
            "--log-level",
            "error",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd starts");
    let deadline = Instant::now() + START_TIMEOUT;
    while std::net::TcpStream::connect(&endpoint).is_err() {
        assert!(Instant::now() < deadline, "etcd did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Etcd {
        child,
        endpoint,
        _dir: dir,
    })
}

fn ycsb(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meridian-ycsb"))
        .args(args)
        .arg("--no-progress")
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn load_and_run(etcd: &Etcd, workload: &[&str], json: &std::path::Path) -> Value {
    let mut load = vec!["load", "--target", "etcd", "--endpoints", &etcd.endpoint];
    load.extend(workload);
    let (code, out, err) = ycsb(&load);
    assert_eq!(code, 0, "{out}{err}");
    let json_arg = json.display().to_string();
    let mut run = vec![
        "run",
        "--target",
        "etcd",
        "--endpoints",
        &etcd.endpoint,
        "--json",
        &json_arg,
    ];
    run.extend(workload);
    let (code, out, err) = ycsb(&run);
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&std::fs::read_to_string(json).expect("the report")).expect("JSON")
}

#[test]
fn transfer_against_etcd_keeps_the_total() {
    let Some(etcd) = start_etcd() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let r = load_and_run(
        &etcd,
        &[
            "--workload",
            "transfer",
            "--records",
            "20",
            "--threads",
            "8",
            "--operations",
            "300",
        ],
        &dir.path().join("t.json"),
    );
    assert_eq!(r["settings"]["target"], "etcd");
    assert_eq!(r["transfer_check"]["passed"], true, "{r}");
    assert_eq!(r["transfer_check"]["total_after"], 20 * 1000);
    assert_eq!(r["operations"]["TRANSFER"]["count"], 300, "{r}");
    // Eight threads over twenty accounts conflict: the compares catch it.
    assert!(r["retries"].as_u64().expect("retries") > 0, "{r}");
}

#[test]
fn ycsb_f_against_etcd_reads_and_rewrites() {
    let Some(etcd) = start_etcd() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let r = load_and_run(
        &etcd,
        &[
            "--workload",
            "f",
            "--records",
            "200",
            "--threads",
            "4",
            "--operations",
            "400",
        ],
        &dir.path().join("f.json"),
    );
    let ops = &r["operations"];
    let done = ops["READ"]["count"].as_u64().unwrap_or(0)
        + ops["READ-MODIFY-WRITE"]["count"].as_u64().unwrap_or(0);
    assert_eq!(done, 400, "{r}");
    assert_eq!(r["aborts"], 0, "{r}");
}
