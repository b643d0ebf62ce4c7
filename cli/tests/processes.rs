//! Fault tests with real processes: three `meridian node` child processes
//! host three groups while concurrent clients move money between accounts
//! of different groups, and nodes are killed and restarted (SIGKILL, same
//! data directory), paused (SIGSTOP, then SIGCONT) and cut off the network.
//! Leaders are picked on purpose. Afterwards the cluster must serve a
//! strong read within 10 s of each heal, and at one snapshot:
//!
//! - the total over all accounts is what it was;
//! - every transfer whose commit was acknowledged is there, and none that
//!   definitely failed (each transfer writes a marker `<p>t/<id>` in its
//!   home group, in the same transaction);
//! - every balance is exactly its initial value moved by the transfers
//!   whose markers are there (those with unknown outcomes may be either
//!   way, but all or nothing, and the home group's `TxnStatus` must agree
//!   with the data once it knows).
//!
//! Two tests:
//!
//! - `bank_survives_kill_stop_and_partition`: about 30 s of workload with
//!   one kill and restart, one stop and continue and, when network
//!   namespaces are available, one partition. Runs in every `cargo test`.
//! - `bank_survives_a_fault_every_five_seconds`: 60 s of workload with a
//!   fault every ~5 s drawn from kill/restart, stop/continue and
//!   partition. It returns at once unless `MERIDIAN_LONG_FAULTS=1`:
//!
//!   ```text
//!   MERIDIAN_LONG_FAULTS=1 cargo test -p meridian-cli --test processes \
//!       bank_survives_a_fault_every_five_seconds -- --nocapture
//!   ```
//!
//!   `MERIDIAN_FAULT_SEED=N` replays a schedule of faults and transfers
//!   (the timing of the processes is not replayed).
//!
//! Partitions need root, `ip` and `ip netns add`: each node then runs in a
//! network namespace of its own, joined by a veth pair to a bridge in the
//! root namespace (where the client runs), and a partition takes the
//! node's end of the link down, cutting it off from its peers and from the
//! client. Without them (or with `MERIDIAN_NO_NETNS=1`) the nodes listen on
//! loopback and the partition is skipped with a printed note.
//!
//! Every child process is killed when the test ends, panics included, and
//! the namespaces are removed. Nodes' logs go to files in the test's
//! directory; on a failure their tails are printed and the directory is
//! kept (`MERIDIAN_KEEP_FAULT_DIR=1` keeps it after a success too).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meridian_client::{Client, Error, ReadOp, ReadResult, TxnId, TxnStatus};
use meridian_node::NodeConfig;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use common::{
    connect, elapsed_since, exe, marker_key, open_balances, parse_balance, read_balances,
    seed_from_env, tail,
};

/// Nodes, each holding a replica of every group.
const NODES: usize = 3;
/// Groups; `cluster init` splits the key space at `?` and `_`.
const GROUPS: u64 = 3;
/// One first byte per group: `0` < `?` ≤ `A` < `_` ≤ `a`.
const PREFIXES: [char; 3] = ['0', 'A', 'a'];
/// Accounts per group.
const ACCOUNTS_PER_GROUP: usize = 10;
/// Every account's balance before the first transfer.
const INITIAL_BALANCE: i64 = 100;
/// Concurrent clients moving money.
const WORKERS: usize = 6;
/// How long the cluster may take to serve a strong read after a heal.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);
/// How long the nodes may take to come up and elect leaders.
const START_BOUND: Duration = Duration::from_secs(30);
/// How long the workers may take to finish after the workload ends
/// (their retry budget and the resolution of lost commit answers).
const DRAIN_BOUND: Duration = Duration::from_secs(60);
/// Lines of each node's log printed on a failure.
const LOG_TAIL_LINES: usize = 40;
/// Most markers one scan of a group reads back.
const MAX_MARKERS_PER_GROUP: usize = 9_000;

/// The two tests share the machine's network namespaces and ports: one at
/// a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

// ---------------------------------------------------------------------------
// Network namespaces.

/// One network namespace per node, joined to a bridge in the root
/// namespace by veth pairs; removed on drop.
struct Netns {
    /// The bridge, once made.
    bridge: Option<String>,
    namespaces: Vec<String>,
    /// The root-namespace end of each node's veth pair.
    links: Vec<String>,
    /// Each node's address.
    ips: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Sets up the namespaces, or says why they cannot be.
    fn setup(tag: char) -> Result<Netns, String> {
        reap_stale_namespaces();
        let pid = std::process::id();
        // Interface names are at most 15 bytes: pids have at most 7 digits.
        let base = format!("mrd{pid}{tag}");
        // A /24 of its own per test process and test.
        let octet = (pid % 100) * 2 + u32::from(tag == 'l');
        let bridge = format!("{base}br");
        let mut n = Netns {
            bridge: None,
            namespaces: Vec::new(),
            links: Vec::new(),
            ips: Vec::new(),
        };
        let bridge_ip = format!("10.213.{octet}.1/24");
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        n.bridge = Some(bridge.clone());
        ip(&["addr", "add", &bridge_ip, "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 1..=NODES {
            let ns = format!("{base}n{i}");
            ip(&["netns", "add", &ns])?;
            n.namespaces.push(ns.clone());
            let link = format!("{base}v{i}");
            ip(&[
                "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            n.links.push(link.clone());
            ip(&["link", "set", &link, "master", &bridge])?;
            ip(&["link", "set", &link, "up"])?;
            let addr = format!("10.213.{octet}.{}", 10 + i);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            n.ips.push(addr);
        }
        Ok(n)
    }

    /// Cuts node `i` (0-based) off the network, or joins it again.
    fn set_link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        if let Err(e) = ip(&["link", "set", &self.links[i], state]) {
            panic!("cannot set node {}'s link {state}: {e}", i + 1);
        }
    }
}

/// The pid in a name this test gave, if that process is gone.
fn stale_pid(name: &str) -> Option<u32> {
    let digits: String = name
        .strip_prefix("mrd")?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let pid: u32 = digits.parse().ok()?;
    let gone = pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists();
    gone.then_some(pid)
}

/// Removes the namespaces and bridges of earlier runs that were killed
/// before they could clean up.
fn reap_stale_namespaces() {
    let list = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    for line in list(&["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if stale_pid(name).is_some() {
            let _ = ip(&["netns", "del", name]);
        }
    }
    // `ip -o link show type bridge`: "7: NAME: <FLAGS> ...".
    for line in list(&["-o", "link", "show", "type", "bridge"]).lines() {
        let name = line.split(": ").nth(1).unwrap_or("");
        if stale_pid(name).is_some() {
            let _ = ip(&["link", "del", name]);
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with
        // it the pair.
        for ns in &self.namespaces {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
        if let Some(b) = &self.bridge {
            if let Err(e) = ip(&["link", "del", b]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Node processes.

/// One node: its configuration, log, namespace and process.
struct NodeProc {
    config: PathBuf,
    log: PathBuf,
    netns: Option<String>,
    child: Option<Child>,
    stopped: bool,
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
    /// Writes the configurations with `cluster init` and moves each node
    /// to its address (its namespace's, or loopback with a free port).
    fn init(dir: &Path, net: Option<&Netns>) -> Procs {
        std::fs::create_dir_all(dir).expect("test directory");
        let out = Command::new(exe())
            .args(["cluster", "init", "--nodes", &NODES.to_string()])
            .args(["--groups", &GROUPS.to_string(), "--base-port", "7101"])
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
        let addresses: Vec<String> = (0..NODES)
            .map(|i| match net {
                Some(n) => format!("{}:{}", n.ips[i], ports[i]),
                None => format!("127.0.0.1:{}", ports[i]),
            })
            .collect();
        let mut nodes = Vec::new();
        for i in 0..NODES {
            let node_dir = dir.join(format!("node-{}", i + 1));
            let config = node_dir.join("meridian.toml");
            let mut cfg = NodeConfig::load(&config).expect("cluster init wrote a valid config");
            cfg.listen = addresses[i].clone();
            cfg.metrics_listen = None;
            for (e, a) in cfg.nodes.iter_mut().zip(&addresses) {
                e.address = a.clone();
            }
            cfg.validate().expect("rewritten config is valid");
            std::fs::write(&config, cfg.to_toml()).expect("config written");
            nodes.push(NodeProc {
                config,
                log: node_dir.join("node.log"),
                netns: net.map(|n| n.namespaces[i].clone()),
                child: None,
                stopped: false,
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
        let mut cmd = match &n.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                // `ip netns exec` execs the program: the child is the node.
                c.args(["netns", "exec", ns, exe()]);
                c
            }
            None => Command::new(exe()),
        };
        cmd.arg("node")
            .arg("--config")
            .arg(&n.config)
            .env("MERIDIAN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log));
        n.child = Some(cmd.spawn().expect("node process starts"));
        n.stopped = false;
    }

    fn pid(&self, i: usize) -> libc::pid_t {
        let c = self.nodes[i].child.as_ref().expect("node is running");
        c.id() as libc::pid_t
    }

    fn signal(&self, i: usize, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let r = unsafe { libc::kill(self.pid(i), sig) };
        assert_eq!(r, 0, "kill({}, {sig}) failed", self.pid(i));
    }

    /// SIGKILL, and wait for the process.
    fn kill(&mut self, i: usize) {
        let mut c = self.nodes[i].child.take().expect("node is running");
        let _ = c.kill();
        let _ = c.wait();
        self.nodes[i].stopped = false;
    }

    fn stop(&mut self, i: usize) {
        self.signal(i, libc::SIGSTOP);
        self.nodes[i].stopped = true;
    }

    fn cont(&mut self, i: usize) {
        self.signal(i, libc::SIGCONT);
        self.nodes[i].stopped = false;
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
// The bank.

fn accounts() -> Vec<String> {
    PREFIXES
        .iter()
        .flat_map(|p| (0..ACCOUNTS_PER_GROUP).map(move |i| format!("{p}/acct/{i:02}")))
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
    /// When it began, from the workload's start, and how long it took.
    began: Duration,
    took: Duration,
}

impl Transfer {
    fn marker_value(&self) -> String {
        format!("{},{},{}", self.from, self.to, self.amount)
    }
}

/// Moves money between two accounts of different groups until `stop`.
async fn worker(
    client: Client,
    seed: u64,
    next_id: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    t0: Instant,
) -> Vec<Transfer> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut done = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let g_from = rng.random_range(0..PREFIXES.len());
        let g_to = (g_from + rng.random_range(1..PREFIXES.len())) % PREFIXES.len();
        let from = format!(
            "{}/acct/{:02}",
            PREFIXES[g_from],
            rng.random_range(0..ACCOUNTS_PER_GROUP)
        );
        let to = format!(
            "{}/acct/{:02}",
            PREFIXES[g_to],
            rng.random_range(0..ACCOUNTS_PER_GROUP)
        );
        let amount = rng.random_range(1..=20i64);
        let mut t = Transfer {
            id,
            from,
            to,
            amount,
            outcome: Outcome::Unknown,
            error: None,
            txn: None,
            began: t0.elapsed(),
            took: Duration::ZERO,
        };
        let (from, to, marker, value) = (
            t.from.clone(),
            t.to.clone(),
            marker_key(&t.from, id),
            t.marker_value(),
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
        t.took = t0.elapsed() - t.began;
        done.push(t);
    }
    done
}

/// Waits until every group has a leader, then writes the initial balances
/// (all in one transaction; written again after a failure, which is
/// harmless before any transfer).
async fn open_accounts(client: &Client) {
    let t0 = Instant::now();
    loop {
        if let Ok(s) = client.status().await {
            if s.groups.len() == GROUPS as usize && s.groups.iter().all(|g| g.info.leader.is_some())
            {
                break;
            }
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
async fn wait_serving(client: &Client, healed: Instant, what: &str) -> Duration {
    loop {
        match read_accounts(client).await {
            Ok(_) => return healed.elapsed(),
            Err(e) if healed.elapsed() > RECOVERY_BOUND => {
                panic!("the cluster does not serve {RECOVERY_BOUND:?} after {what}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

// ---------------------------------------------------------------------------
// Faults.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// SIGKILL, then a restart from the same data directory after a pause.
    KillRestart,
    /// SIGSTOP, then SIGCONT.
    StopContinue,
    /// The node's link down, then up.
    Partition,
}

/// The node (0-based) leading some group, as a node reports it; `None`
/// when no leader is known.
async fn some_leader(client: &Client, rng: &mut SmallRng) -> Option<usize> {
    let s = client.status().await.ok()?;
    let leaders: BTreeSet<u64> = s.groups.iter().filter_map(|g| g.info.leader).collect();
    let leaders: Vec<u64> = leaders.into_iter().collect();
    if leaders.is_empty() {
        return None;
    }
    let l = leaders[rng.random_range(0..leaders.len())];
    (l as usize).checked_sub(1).filter(|&i| i < NODES)
}

/// Injects `fault` at node `i` for `hold`, heals it, and returns how long
/// the cluster took to serve again after the heal.
async fn inject(
    procs: &mut Procs,
    net: Option<&Netns>,
    client: &Client,
    fault: Fault,
    i: usize,
    hold: Duration,
    t0: Instant,
) -> Duration {
    println!(
        "{} {fault:?} node {} for {:.1}s",
        elapsed_since(t0),
        i + 1,
        hold.as_secs_f64()
    );
    match fault {
        Fault::KillRestart => {
            procs.kill(i);
            tokio::time::sleep(hold).await;
            procs.start(i);
        }
        Fault::StopContinue => {
            procs.stop(i);
            tokio::time::sleep(hold).await;
            procs.cont(i);
        }
        Fault::Partition => {
            let net = net.expect("partitions need namespaces");
            net.set_link(i, false);
            tokio::time::sleep(hold).await;
            net.set_link(i, true);
        }
    }
    let healed = Instant::now();
    procs.check_alive();
    let took = wait_serving(client, healed, &format!("{fault:?} of node {}", i + 1)).await;
    println!(
        "{} healed; serving again after {:.2}s",
        elapsed_since(t0),
        took.as_secs_f64()
    );
    took
}

// ---------------------------------------------------------------------------
// The run and its checks.

struct Plan {
    tag: char,
    workload: Duration,
    seed: u64,
    /// Faults at fixed times (short), or `None`: one every ~5 s drawn at
    /// random (long).
    schedule: Option<Vec<(Duration, Fault)>>,
}

fn run(plan: Plan) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    println!(
        "seed {} (MERIDIAN_FAULT_SEED={} replays the schedule)",
        plan.seed, plan.seed
    );
    let net = if std::env::var_os("MERIDIAN_NO_NETNS").is_some() {
        println!("NOTE: MERIDIAN_NO_NETNS is set: nodes on loopback, partitions skipped");
        None
    } else {
        match Netns::setup(plan.tag) {
            Ok(n) => Some(n),
            Err(e) => {
                println!("NOTE: network namespaces unavailable ({e}); partitions are skipped");
                None
            }
        }
    };
    let dir = std::env::temp_dir().join(format!(
        "meridian-processes-{}-{}",
        std::process::id(),
        plan.tag
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut procs = Procs::init(&dir, net.as_ref());
    for i in 0..NODES {
        procs.start(i);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(drive(plan, &mut procs, net.as_ref()));
    drop(rt);
    // `procs` goes before `net`: the nodes die before their namespaces.
    drop(procs);
    drop(net);
}

async fn drive(plan: Plan, procs: &mut Procs, net: Option<&Netns>) {
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
                plan.seed ^ (w as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                next_id.clone(),
                stop.clone(),
                t0,
            ))
        })
        .collect();

    let mut rng = SmallRng::seed_from_u64(plan.seed);
    let started = Instant::now();
    let mut recoveries: Vec<(Fault, Duration)> = Vec::new();
    let faults: Vec<Fault> = if net.is_some() {
        vec![Fault::KillRestart, Fault::StopContinue, Fault::Partition]
    } else {
        vec![Fault::KillRestart, Fault::StopContinue]
    };
    match &plan.schedule {
        Some(schedule) => {
            for &(at, fault) in schedule {
                if fault == Fault::Partition && net.is_none() {
                    println!("NOTE: partition skipped: no network namespaces");
                    continue;
                }
                tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
                let i = match some_leader(&client, &mut rng).await {
                    Some(i) => i,
                    None => rng.random_range(0..NODES),
                };
                let hold = match fault {
                    Fault::KillRestart => Duration::from_secs(2),
                    Fault::StopContinue | Fault::Partition => Duration::from_secs(4),
                };
                let took = inject(procs, net, &client, fault, i, hold, t0).await;
                recoveries.push((fault, took));
            }
        }
        None => {
            let mut next = Duration::from_secs(3);
            while next + Duration::from_secs(5) < plan.workload {
                tokio::time::sleep(next.saturating_sub(started.elapsed())).await;
                let fault = faults[rng.random_range(0..faults.len())];
                // Leaders two times in three.
                let leader = if rng.random_bool(2.0 / 3.0) {
                    some_leader(&client, &mut rng).await
                } else {
                    None
                };
                let i = leader.unwrap_or_else(|| rng.random_range(0..NODES));
                let hold = Duration::from_millis(match fault {
                    Fault::KillRestart => rng.random_range(500..3000),
                    Fault::StopContinue | Fault::Partition => rng.random_range(1000..5000),
                });
                let at = started.elapsed();
                let took = inject(procs, net, &client, fault, i, hold, t0).await;
                recoveries.push((fault, took));
                next =
                    (at + Duration::from_secs(5)).max(started.elapsed() + Duration::from_secs(1));
            }
        }
    }
    tokio::time::sleep(plan.workload.saturating_sub(started.elapsed())).await;
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
    let last_heal = Instant::now();
    wait_serving(&client, last_heal, "the workload's end").await;
    check(&client, &transfers).await;
    println!(
        "{} done; recoveries: {}",
        elapsed_since(t0),
        recoveries
            .iter()
            .map(|(f, d)| format!("{f:?} {:.2}s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The checks of the module doc, at one snapshot.
async fn check(client: &Client, transfers: &[Transfer]) {
    let keys = accounts();
    let (read_ts, balances) = read_accounts(client).await.expect("strong read after heal");
    let scans = PREFIXES
        .iter()
        .map(|p| ReadOp::Scan {
            start: format!("{p}t/").into(),
            end: Some(format!("{p}t0").into()),
            limit: MAX_MARKERS_PER_GROUP + 1,
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
        assert!(rows.len() <= MAX_MARKERS_PER_GROUP, "too many markers");
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
    let mut unknown_committed = 0;
    for t in transfers {
        let present = markers.contains_key(&t.id);
        match (t.outcome, present) {
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
            (Outcome::Unknown, true) => unknown_committed += 1,
            _ => {}
        }
    }
    // Unknown to the client, but the home group's leader must know by
    // now, and its answer must agree with the data.
    let mut unresolved = 0;
    for t in transfers.iter().filter(|t| t.outcome == Outcome::Unknown) {
        let present = markers.contains_key(&t.id);
        let status = match t.txn {
            Some(id) => client.txn_status(id).await.ok(),
            None => None,
        };
        match status {
            Some(TxnStatus::Committed { .. }) if !present => problems.push(format!(
                "transfer {} ({:?}): its home group says committed, but its marker is missing",
                t.id, t.txn
            )),
            Some(TxnStatus::Aborted) if present => problems.push(format!(
                "transfer {} ({:?}): its home group says aborted, but its marker is there",
                t.id, t.txn
            )),
            Some(TxnStatus::Committed { .. } | TxnStatus::Aborted) => {}
            _ => unresolved += 1,
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
        // Group by the message with ids, addresses and times left out.
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
        let short = short.join(" ");
        *errors
            .entry(format!("{:?}: {short}", t.outcome))
            .or_default() += 1;
    }
    println!(
        "transfers: {} acknowledged, {} failed, {} unknown ({} of them committed, {} not \
         resolved by TxnStatus); {} markers",
        count(Outcome::Acked),
        count(Outcome::Failed),
        count(Outcome::Unknown),
        unknown_committed,
        unresolved,
        markers.len()
    );
    for (e, n) in &errors {
        println!("  {n:5} × {e}");
    }
    let mut slow: Vec<&Transfer> = transfers.iter().collect();
    slow.sort_by_key(|t| std::cmp::Reverse(t.took));
    for t in slow.iter().take(3) {
        println!(
            "  slowest: transfer {} began at {:.1}s, took {:.1}s: {:?} {}",
            t.id,
            t.began.as_secs_f64(),
            t.took.as_secs_f64(),
            t.outcome,
            t.error.as_deref().unwrap_or("")
        );
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

#[test]
fn bank_survives_kill_stop_and_partition() {
    run(Plan {
        tag: 's',
        workload: Duration::from_secs(30),
        seed: seed_from_env(),
        schedule: Some(vec![
            (Duration::from_secs(3), Fault::KillRestart),
            (Duration::from_secs(11), Fault::StopContinue),
            (Duration::from_secs(20), Fault::Partition),
        ]),
    });
}

#[test]
fn bank_survives_a_fault_every_five_seconds() {
    if std::env::var("MERIDIAN_LONG_FAULTS").as_deref() != Ok("1") {
        println!("skipped: set MERIDIAN_LONG_FAULTS=1 to run the long fault test");
        return;
    }
    run(Plan {
        tag: 'l',
        workload: Duration::from_secs(60),
        seed: seed_from_env(),
        schedule: None,
    });
}
