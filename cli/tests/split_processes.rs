//! Online splits on real processes: five `meridian node` child processes
//! laid out by `cluster init --nodes 5 --replicas 3` (three groups, each
//! on three of the five nodes) run the bank workload (concurrent clients
//! moving money between accounts spread over the whole key space) while
//! `Client::split` (the library behind `meridian admin split`: the range
//! found from the directory and `Status`, a child id allocated in the
//! system range, the split at the parent's leader, both halves recorded)
//! splits ranges under it:
//!
//! 1. a split with no fault;
//! 2. a split during which a follower replica of the parent is SIGKILLed
//!    the moment the child's id is allocated (just before the leader is
//!    asked), and restarted from its data directory 1.5 s later;
//! 3. the same with the parent's leader killed instead. The split may then
//!    fail or its answer be lost; it is asked again once the node is back
//!    (a key already on a boundary means it applied).
//!
//! Afterwards, at one snapshot: every acknowledged transfer is there (each
//! writes a marker `<p>t/<id>` in its source account's range, in the same
//! transaction), none that definitely failed is, every balance is its
//! initial value moved by the transfers whose markers are there, the total
//! is conserved; the nodes hosting each range agree on its bounds, it has
//! a leader and serves a strong read; and every node restarted hosts the
//! children of the splits its parent replica applied.
//!
//! About 35 s. Nodes listen on loopback; every child process is killed
//! when the test ends, panics included. Nodes' logs go to files in the
//! test's directory; on a failure their tails are printed and the
//! directory is kept (`MERIDIAN_KEEP_FAULT_DIR=1` keeps it after a success
//! too). `MERIDIAN_FAULT_SEED=N` replays the transfers' choices.
//!
//! ```text
//! cargo test -p meridian-cli --test split_processes -- --nocapture
//! ```

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use meridian_client::directory::SplitStep;
use meridian_client::{Client, Error, GroupStatus, ReadOp, ReadResult, TxnId, TxnStatus};
use meridian_node::NodeConfig;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use common::{
    connect, elapsed_since, exe, marker_key, open_balances, parse_balance, read_balances,
    seed_from_env, tail,
};

/// Node processes.
const NODES: usize = 5;
/// Replicas of each group.
const REPLICAS: usize = 3;
/// Groups `cluster init` lays out: the key space cut at `?` and `_`.
const GROUPS: usize = 3;
/// First bytes of the accounts, two per initial range, so that each split
/// key below falls between two of them.
const PREFIXES: [char; 6] = ['0', '7', 'A', 'P', 'a', 'p'];
/// Split keys, in order: each inside one initial range, between the two
/// prefixes of that range.
const SPLIT_KEYS: [&str; 3] = ["5", "M", "m"];
/// Accounts per prefix.
const ACCOUNTS_PER_PREFIX: usize = 5;
/// Every account's balance before the first transfer.
const INITIAL_BALANCE: i64 = 100;
/// Concurrent clients moving money.
const WORKERS: usize = 4;
/// How long the workload runs.
const WORKLOAD: Duration = Duration::from_secs(20);
/// When each split starts, from the workload's start.
const SPLIT_AT: [Duration; 3] = [
    Duration::from_secs(3),
    Duration::from_secs(7),
    Duration::from_secs(12),
];
/// How long a killed node stays down.
const DOWN_FOR: Duration = Duration::from_millis(1500);
/// How long a split (asked again after a fault) may take to apply.
const SPLIT_BOUND: Duration = Duration::from_secs(20);
/// How long the cluster may take to serve a strong read after a fault.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);
/// How long the nodes may take to come up and elect leaders.
const START_BOUND: Duration = Duration::from_secs(30);
/// How long the workers may take to finish after the workload ends.
const DRAIN_BOUND: Duration = Duration::from_secs(60);
/// Lines of each node's log printed on a failure.
const LOG_TAIL_LINES: usize = 40;
/// Most markers one scan of a prefix reads back.
const MAX_MARKERS_PER_PREFIX: usize = 9_000;

// ---------------------------------------------------------------------------
// Node processes.

struct NodeProc {
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// The nodes as child processes; every one is killed on drop (a panic
/// included), and on a failure their logs' tails are printed and the
/// directory is kept.
struct Procs {
    dir: PathBuf,
    nodes: Vec<NodeProc>,
    endpoints: Vec<String>,
}

impl Procs {
    /// Writes the configurations with `cluster init` and moves each node to
    /// a free loopback port.
    fn init(dir: &Path) -> Procs {
        std::fs::create_dir_all(dir).expect("test directory");
        let out = Command::new(exe())
            .args(["cluster", "init", "--nodes", &NODES.to_string()])
            .args(["--replicas", &REPLICAS.to_string()])
            .args(["--groups", &GROUPS.to_string(), "--base-port", "7201"])
            .arg("--dir")
            .arg(dir)
            .output()
            .expect("meridian cluster init runs");
        assert!(
            out.status.success(),
            "cluster init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ports = meridian_node::local::free_ports(NODES).expect("free ports");
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut nodes = Vec::new();
        for (i, address) in addresses.iter().enumerate() {
            let node_dir = dir.join(format!("node-{}", i + 1));
            let config = node_dir.join("meridian.toml");
            let mut cfg = NodeConfig::load(&config).expect("cluster init wrote a valid config");
            cfg.listen = address.clone();
            cfg.metrics_listen = None;
            for (e, a) in cfg.nodes.iter_mut().zip(&addresses) {
                e.address = a.clone();
            }
            for g in &cfg.groups {
                assert_eq!(g.replicas.len(), REPLICAS, "group {} placement", g.id);
            }
            cfg.validate().expect("rewritten config is valid");
            std::fs::write(&config, cfg.to_toml()).expect("config written");
            nodes.push(NodeProc {
                config,
                log: node_dir.join("node.log"),
                child: None,
            });
        }
        Procs {
            dir: dir.to_path_buf(),
            nodes,
            endpoints: addresses,
        }
    }

    fn start(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        assert!(n.child.is_none(), "node {} is already running", i + 1);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .expect("node log opens");
        let _ = writeln!(log, "==== test: starting node {}", i + 1);
        let child = Command::new(exe())
            .arg("node")
            .arg("--config")
            .arg(&n.config)
            .env("MERIDIAN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("node process starts");
        n.child = Some(child);
    }

    /// SIGKILL, and wait for the process.
    fn kill(&mut self, i: usize) {
        let mut c = self.nodes[i].child.take().expect("node is running");
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Panics if a node ended by itself.
    fn check_alive(&mut self) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if let Some(c) = n.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("node {} exited by itself: {status}", i + 1);
                }
            }
        }
    }

    fn print_log_tails(&self) {
        for (i, n) in self.nodes.iter().enumerate() {
            eprintln!("---- node {} log tail ({}):", i + 1, n.log.display());
            eprintln!("{}", tail(&n.log, LOG_TAIL_LINES));
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            self.print_log_tails();
            eprintln!("test directory kept: {}", self.dir.display());
        } else if std::env::var_os("MERIDIAN_KEEP_FAULT_DIR").is_some() {
            println!("test directory kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------
// The ranges as the nodes hosting them report them.

/// One range as its hosting nodes report it.
#[derive(Clone, Debug, Default)]
struct Range {
    start: Bytes,
    end: Option<Bytes>,
    /// The nodes reporting a local replica.
    hosts: BTreeSet<u64>,
    /// The bounds each hosting node reports.
    bounds: BTreeSet<(Bytes, Option<Bytes>)>,
    /// A node that says its replica leads.
    leader: Option<u64>,
    generation: Option<u64>,
    bytes: Option<u64>,
}

/// Every group some live node hosts, merged over the nodes' `Status`
/// (each node lists its own replicas with the range they applied).
async fn hosted_ranges(client: &Client) -> BTreeMap<u64, Range> {
    let mut out: BTreeMap<u64, Range> = BTreeMap::new();
    for node in 1..=NODES as u64 {
        let Ok(s) = client.status_of(node).await else {
            continue;
        };
        for g in s.groups.iter().filter(|g| g.local_replica) {
            merge_range(out.entry(g.info.id).or_default(), node, g);
        }
    }
    out
}

fn merge_range(r: &mut Range, node: u64, g: &GroupStatus) {
    r.hosts.insert(node);
    r.bounds.insert((g.info.start.clone(), g.info.end.clone()));
    // A range only shrinks: the narrowest report is the newest.
    if r.hosts.len() == 1 || g.generation > r.generation {
        r.start = g.info.start.clone();
        r.end = g.info.end.clone();
        r.generation = g.generation;
        r.bytes = g.bytes;
    }
    if g.local_leader {
        r.leader = Some(node);
    }
}

/// The cluster's endpoints as `--endpoints` takes them.
async fn client_endpoints(client: &Client) -> String {
    let s = client.status().await.expect("status");
    s.nodes
        .iter()
        .map(|n| n.address.clone())
        .collect::<Vec<_>>()
        .join(",")
}

/// The group hosting `key` and its range, from the hosting nodes.
async fn range_of(client: &Client, key: &[u8]) -> Option<(u64, Range)> {
    hosted_ranges(client)
        .await
        .into_iter()
        .find(|(_, r)| key >= &r.start[..] && r.end.as_ref().is_none_or(|e| key < &e[..]))
}

// ---------------------------------------------------------------------------
// The bank.

fn accounts() -> Vec<String> {
    PREFIXES
        .iter()
        .flat_map(|p| (0..ACCOUNTS_PER_PREFIX).map(move |i| format!("{p}/acct/{i:02}")))
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The commit was acknowledged.
    Acked,
    /// Certainly not committed.
    Failed,
    /// May or may not have committed.
    Unknown,
}

#[derive(Clone, Debug)]
struct Transfer {
    id: u64,
    from: String,
    to: String,
    amount: i64,
    outcome: Outcome,
    error: Option<String>,
    /// The id of a transaction whose outcome is unknown, to ask about.
    txn: Option<TxnId>,
}

impl Transfer {
    fn marker_value(&self) -> String {
        format!("{},{},{}", self.from, self.to, self.amount)
    }
}

/// Moves money between two accounts of different prefixes until `stop`.
async fn worker(
    client: Client,
    seed: u64,
    next_id: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Vec<Transfer> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut done = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let p_from = rng.random_range(0..PREFIXES.len());
        let p_to = (p_from + rng.random_range(1..PREFIXES.len())) % PREFIXES.len();
        let account = |p: usize, rng: &mut SmallRng| {
            format!(
                "{}/acct/{:02}",
                PREFIXES[p],
                rng.random_range(0..ACCOUNTS_PER_PREFIX)
            )
        };
        let mut t = Transfer {
            id,
            from: account(p_from, &mut rng),
            to: account(p_to, &mut rng),
            amount: rng.random_range(1..=20i64),
            outcome: Outcome::Unknown,
            error: None,
            txn: None,
        };
        let (from, to, marker, value, amount) = (
            t.from.clone(),
            t.to.clone(),
            marker_key(&t.from, id),
            t.marker_value(),
            t.amount,
        );
        let r = client
            .transaction(async move |txn| {
                let v = txn.get_many([&from, &to]).await?;
                let a = parse_balance(&from, v[0].as_ref());
                let b = parse_balance(&to, v[1].as_ref());
                txn.put(&from, (a - amount).to_string())?;
                txn.put(&to, (b + amount).to_string())?;
                txn.put(&marker, &value)?;
                Ok(())
            })
            .await;
        t.outcome = match &r {
            Ok(_) => Outcome::Acked,
            Err(e) if e.is_definitely_not_committed() => Outcome::Failed,
            Err(_) => Outcome::Unknown,
        };
        if let Err(Error::OutcomeUnknown { txn }) = &r {
            t.txn = *txn;
        }
        t.error = r.err().map(|e| e.to_string());
        done.push(t);
    }
    done
}

/// Waits until every group has a leader its hosts report, then writes the
/// initial balances (in one transaction; written again after a failure,
/// which is harmless before any transfer).
async fn open_accounts(client: &Client) {
    let t0 = Instant::now();
    loop {
        let ranges = hosted_ranges(client).await;
        if ranges.len() == GROUPS && ranges.values().all(|r| r.leader.is_some()) {
            break;
        }
        assert!(t0.elapsed() < START_BOUND, "no leader for every group");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    open_balances(client, &accounts(), INITIAL_BALANCE, t0, START_BOUND).await;
}

/// Every account by a strong read: the read's timestamp and the balances.
async fn read_accounts(client: &Client) -> Result<(meridian_client::Timestamp, Vec<i64>), Error> {
    read_balances(client, &accounts()).await
}

/// How long until a strong read of every account succeeds; panics past
/// [`RECOVERY_BOUND`].
async fn wait_serving(client: &Client, from: Instant, what: &str) -> Duration {
    loop {
        match read_accounts(client).await {
            Ok(_) => return from.elapsed(),
            Err(e) if from.elapsed() > RECOVERY_BOUND => {
                for node in 1..=NODES as u64 {
                    if let Ok(s) = client.status_of(node).await {
                        for g in s.groups.iter().filter(|g| g.local_replica) {
                            eprintln!(
                                "node {node} group {} [{:?}, {:?}) role {:?} t_safe {} applied {}",
                                g.info.id, g.info.start, g.info.end, g.role, g.t_safe, g.applied
                            );
                        }
                    }
                }
                panic!("the cluster does not serve {RECOVERY_BOUND:?} after {what}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

// ---------------------------------------------------------------------------
// Splits.

/// Whom a split's fault kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Victim {
    /// Nobody.
    None,
    /// A replica of the parent that does not lead it.
    Follower,
    /// The parent's leader.
    Leader,
}

/// Splits at `key`; with a victim, SIGKILLs it the moment the child's id
/// is allocated and restarts it after [`DOWN_FOR`]. Asks again until the
/// split is known to have applied. Answers the node killed, if any.
async fn split_with_fault(
    procs: &mut Procs,
    client: &Client,
    key: &'static str,
    victim: Victim,
    t0: Instant,
) -> Option<usize> {
    let (parent, range) = range_of(client, key.as_bytes())
        .await
        .unwrap_or_else(|| panic!("no range hosts {key:?}"));
    let target = match victim {
        Victim::None => None,
        Victim::Leader => range.leader,
        Victim::Follower => range
            .hosts
            .iter()
            .copied()
            .find(|n| Some(*n) != range.leader),
    };
    println!(
        "{} split at {key:?} of group {parent} (hosts {:?}, leader {:?}); kill {victim:?} {target:?}",
        elapsed_since(t0),
        range.hosts,
        range.leader
    );
    let allocated = Arc::new(AtomicBool::new(false));
    let task = {
        let client = client.clone();
        let allocated = allocated.clone();
        tokio::spawn(async move {
            let mut progress = |step: &SplitStep| {
                if matches!(step, SplitStep::Allocated { .. }) {
                    allocated.store(true, Ordering::SeqCst);
                }
            };
            client.split(key, &mut progress).await
        })
    };
    let mut killed = None;
    if let Some(n) = target {
        let i = (n - 1) as usize;
        let waited = Instant::now();
        while !allocated.load(Ordering::SeqCst) && !task.is_finished() {
            assert!(
                waited.elapsed() < SPLIT_BOUND,
                "the split at {key:?} allocated no id"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        procs.kill(i);
        println!("{} killed node {n} mid-split", elapsed_since(t0));
        tokio::time::sleep(DOWN_FOR).await;
        procs.start(i);
        println!("{} restarted node {n}", elapsed_since(t0));
        killed = Some(i);
    }
    let first = task.await.expect("split task");
    let mut outcome = first.map(|r| (r.left, r.right));
    let asked = Instant::now();
    loop {
        match outcome {
            Ok((left, right)) => {
                println!("{} split applied: {left} | {right}", elapsed_since(t0));
                break;
            }
            Err(Error::BadSplit(m)) if killed.is_some() && m.contains("boundary") => {
                println!("{} split had applied: {m}", elapsed_since(t0));
                break;
            }
            Err(e) => {
                assert!(
                    killed.is_some() && asked.elapsed() < SPLIT_BOUND,
                    "the split at {key:?} failed: {e}"
                );
                println!("{} split at {key:?}: {e}; asking again", elapsed_since(t0));
                tokio::time::sleep(Duration::from_millis(300)).await;
                outcome = client
                    .split(key, &mut |_: &SplitStep| {})
                    .await
                    .map(|r| (r.left, r.right));
            }
        }
    }
    killed
}

// ---------------------------------------------------------------------------
// The run and its checks.

#[test]
fn bank_conserves_money_while_ranges_split_and_a_node_dies_mid_split() {
    let seed = seed_from_env();
    println!("seed {seed} (MERIDIAN_FAULT_SEED={seed} replays the transfers' choices)");
    let dir = std::env::temp_dir().join(format!("meridian-split-processes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut procs = Procs::init(&dir);
    for i in 0..NODES {
        procs.start(i);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(drive(seed, &mut procs));
    drop(rt);
    drop(procs);
}

async fn drive(seed: u64, procs: &mut Procs) {
    let t0 = Instant::now();
    let client = connect(&procs.endpoints, START_BOUND).await;
    open_accounts(&client).await;
    println!("{} cluster up, accounts open", elapsed_since(t0));

    let stop = Arc::new(AtomicBool::new(false));
    let next_id = Arc::new(AtomicU64::new(1));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(worker(
                client.clone(),
                seed ^ (w as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                next_id.clone(),
                stop.clone(),
            ))
        })
        .collect();

    let started = Instant::now();
    let victims = [Victim::None, Victim::Follower, Victim::Leader];
    let mut restarted = Vec::new();
    for ((key, at), victim) in SPLIT_KEYS.iter().zip(SPLIT_AT).zip(victims) {
        tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
        if let Some(i) = split_with_fault(procs, &client, key, victim, t0).await {
            restarted.push(i);
            procs.check_alive();
            let took = wait_serving(&client, Instant::now(), "a kill mid-split").await;
            println!(
                "{} serving again after {:.2}s",
                elapsed_since(t0),
                took.as_secs_f64()
            );
        }
    }
    tokio::time::sleep(WORKLOAD.saturating_sub(started.elapsed())).await;
    stop.store(true, Ordering::Relaxed);
    println!(
        "{} workload over; waiting for the clients",
        elapsed_since(t0)
    );

    let mut transfers: Vec<Transfer> = Vec::new();
    for w in workers {
        match tokio::time::timeout(DRAIN_BOUND, w).await {
            Ok(Ok(t)) => transfers.extend(t),
            Ok(Err(e)) => panic!("a client task failed: {e}"),
            Err(_) => {
                panic!("a client did not finish within {DRAIN_BOUND:?} of the workload's end")
            }
        }
    }
    procs.check_alive();
    wait_serving(&client, Instant::now(), "the workload's end").await;
    check_ranges(&client, &restarted).await;
    check_bank(&client, &transfers).await;
    println!("{} done", elapsed_since(t0));
}

/// Every range has split as asked, its hosts agree on its bounds, it has a
/// leader and serves a strong read; the ranges tile the key space; each
/// restarted node hosts the children of its parents.
async fn check_ranges(client: &Client, restarted: &[usize]) {
    let t0 = Instant::now();
    let ranges = loop {
        let ranges = hosted_ranges(client).await;
        let settled = ranges.len() == GROUPS + SPLIT_KEYS.len()
            && ranges
                .values()
                .all(|r| r.leader.is_some() && r.bounds.len() == 1 && r.hosts.len() == REPLICAS);
        if settled {
            break ranges;
        }
        assert!(
            t0.elapsed() < RECOVERY_BOUND,
            "the ranges did not settle: {ranges:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut tiles: Vec<(&Bytes, Option<&Bytes>)> = ranges
        .values()
        .map(|r| (&r.start, r.end.as_ref()))
        .collect();
    tiles.sort();
    assert!(tiles[0].0.is_empty(), "no range starts at the first key");
    for w in tiles.windows(2) {
        assert_eq!(w[0].1, Some(w[1].0), "ranges do not tile: {tiles:?}");
    }
    assert!(tiles[tiles.len() - 1].1.is_none(), "no range is unbounded");
    for key in SPLIT_KEYS {
        assert!(
            tiles.iter().any(|(s, _)| s.as_ref() == key.as_bytes()),
            "no range starts at the split key {key:?}: {tiles:?}"
        );
    }
    for (id, r) in &ranges {
        // A user key of the range: its start, or the first user key.
        let key: Bytes = if r.start.is_empty() {
            Bytes::from_static(b"0")
        } else {
            r.start.clone()
        };
        client
            .read_only(vec![ReadOp::Get(key.clone())])
            .await
            .unwrap_or_else(|e| panic!("group {id} does not serve {key:?}: {e}"));
        println!(
            "  group {id}: [{:?}, {:?}) gen {:?} hosts {:?} leader {:?} bytes {:?}",
            r.start, r.end, r.generation, r.hosts, r.leader, r.bytes
        );
    }
    // `meridian status` lists every range, children made on other nodes
    // than the answering one included, each with a leader and its bytes.
    let out = Command::new(exe())
        .args(["--endpoints", &client_endpoints(client).await])
        .args(["--timeout", "10s", "--output", "json", "status"])
        .output()
        .expect("meridian status runs");
    assert!(
        out.status.success(),
        "meridian status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("status prints JSON");
    let listed = status["ranges"].as_array().expect("status lists ranges");
    let listed_ids: BTreeSet<u64> = listed.iter().filter_map(|r| r["group"].as_u64()).collect();
    assert_eq!(
        listed_ids,
        ranges.keys().copied().collect::<BTreeSet<u64>>(),
        "status lists other ranges: {status}"
    );
    for r in listed {
        assert!(
            r["leader"].as_u64().is_some() && r["bytes"].as_u64().is_some(),
            "a range without leader or bytes in status: {r}"
        );
    }
    // A restarted node that hosts a parent also hosts its child (the split
    // applies at every replica of the parent, creating the child there).
    for i in restarted {
        let node = *i as u64 + 1;
        let s = client
            .status_of(node)
            .await
            .expect("restarted node answers");
        let mine: BTreeSet<u64> = s
            .groups
            .iter()
            .filter(|g| g.local_replica)
            .map(|g| g.info.id)
            .collect();
        for (id, r) in &ranges {
            assert_eq!(
                r.hosts.contains(&node),
                mine.contains(id),
                "node {node} and the merged view disagree on group {id}"
            );
        }
        assert!(
            mine.iter().any(|g| *g > GROUPS as u64),
            "restarted node {node} hosts no split child: {mine:?}"
        );
    }
}

/// Every acknowledged transfer is there and none that definitely failed;
/// each balance is its initial value moved by the transfers that committed;
/// the total is conserved.
async fn check_bank(client: &Client, transfers: &[Transfer]) {
    let keys = accounts();
    let (read_ts, balances) = read_accounts(client).await.expect("strong read");
    let scans = PREFIXES
        .iter()
        .map(|p| ReadOp::Scan {
            start: format!("{p}t/").into(),
            end: Some(format!("{p}t0").into()),
            limit: MAX_MARKERS_PER_PREFIX + 1,
        })
        .collect();
    let r = client
        .snapshot_read(read_ts, scans)
        .await
        .expect("markers at the accounts' timestamp");
    let mut markers: BTreeMap<u64, String> = BTreeMap::new();
    for res in r.results {
        let ReadResult::Rows(rows) = res else {
            panic!("a scan answered {res:?}");
        };
        assert!(rows.len() <= MAX_MARKERS_PER_PREFIX, "too many markers");
        for (k, v) in rows {
            let k = String::from_utf8_lossy(&k).into_owned();
            let id: u64 = k[3..].parse().unwrap_or_else(|_| panic!("marker key {k}"));
            markers.insert(id, String::from_utf8_lossy(&v).into_owned());
        }
    }
    let by_id: BTreeMap<u64, &Transfer> = transfers.iter().map(|t| (t.id, t)).collect();
    let mut problems = Vec::new();
    for (id, v) in &markers {
        match by_id.get(id) {
            None => problems.push(format!("marker of transfer {id} that was never tried: {v}")),
            Some(t) if *v != t.marker_value() => problems.push(format!(
                "transfer {id}: marker {v}, expected {}",
                t.marker_value()
            )),
            Some(_) => {}
        }
    }
    let count = |o: Outcome| transfers.iter().filter(|t| t.outcome == o).count();
    for t in transfers {
        match (t.outcome, markers.contains_key(&t.id)) {
            (Outcome::Acked, false) => problems.push(format!(
                "acknowledged transfer {} ({}) is missing",
                t.id,
                t.marker_value()
            )),
            (Outcome::Failed, true) => problems.push(format!(
                "transfer {} ({}) failed definitely ({}) but committed",
                t.id,
                t.marker_value(),
                t.error.as_deref().unwrap_or("")
            )),
            _ => {}
        }
    }
    for t in transfers.iter().filter(|t| t.outcome == Outcome::Unknown) {
        let present = markers.contains_key(&t.id);
        let status = match t.txn {
            Some(id) => client.txn_status(id).await.ok(),
            None => None,
        };
        match status {
            Some(TxnStatus::Committed { .. }) if !present => problems.push(format!(
                "transfer {}: its home group says committed, but its marker is missing",
                t.id
            )),
            Some(TxnStatus::Aborted) if present => problems.push(format!(
                "transfer {}: its home group says aborted, but its marker is there",
                t.id
            )),
            _ => {}
        }
    }
    let mut expected: BTreeMap<&str, i64> =
        keys.iter().map(|k| (k.as_str(), INITIAL_BALANCE)).collect();
    for id in markers.keys() {
        if let Some(t) = by_id.get(id) {
            *expected.get_mut(t.from.as_str()).expect("known account") -= t.amount;
            *expected.get_mut(t.to.as_str()).expect("known account") += t.amount;
        }
    }
    for (k, b) in keys.iter().zip(&balances) {
        if expected[k.as_str()] != *b {
            problems.push(format!(
                "account {k}: balance {b}, the committed transfers make it {}",
                expected[k.as_str()]
            ));
        }
    }
    let total: i64 = balances.iter().sum();
    let want = INITIAL_BALANCE * keys.len() as i64;
    if total != want {
        problems.push(format!("total {total}, expected {want}"));
    }
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for t in transfers.iter().filter(|t| t.outcome != Outcome::Acked) {
        let e = t.error.clone().unwrap_or_default();
        let short: Vec<&str> = e
            .split(' ')
            .map(|w| {
                if w.contains(|c: char| c.is_ascii_digit()) {
                    "#"
                } else {
                    w
                }
            })
            .collect();
        *errors
            .entry(format!("{:?}: {}", t.outcome, short.join(" ")))
            .or_default() += 1;
    }
    println!(
        "transfers: {} acknowledged, {} failed, {} unknown; {} markers",
        count(Outcome::Acked),
        count(Outcome::Failed),
        count(Outcome::Unknown),
        markers.len()
    );
    for (e, n) in &errors {
        println!("  {n:5} × {e}");
    }
    assert!(
        count(Outcome::Acked) > 0,
        "no transfer was acknowledged at all"
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
