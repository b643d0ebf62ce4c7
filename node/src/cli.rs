//! The server half of the `meridian` command line: `meridian node` runs a
//! node from its configuration file; `meridian cluster init` writes the
//! configurations of a local cluster and `meridian cluster run` starts one
//! as child processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::config::{self, ClockConfig, NodeConfig, NodeEntry, PaxosConfig};
use crate::{Node, StartOptions};

/// Most nodes `cluster init` lays out.
pub const MAX_LOCAL_NODES: u64 = 9;
/// Most groups `cluster init` lays out.
pub const MAX_LOCAL_GROUPS: u64 = 64;
/// How long `cluster run` waits for every node to answer.
pub const CLUSTER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// The name of each node's configuration file in its directory.
pub const CONFIG_FILE: &str = "meridian.toml";

/// Arguments of `meridian node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node's configuration file (TOML; see docs/operations.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// `meridian cluster ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Writes the configuration files of a local cluster: DIR/node-<i>/meridian.toml.
    Init(ClusterInitArgs),
    /// Starts a local cluster as child processes (one replica of every group
    /// per node) and prints `endpoints: HOST:PORT,...`; Ctrl-C stops it.
    Run(ClusterRunArgs),
}

/// Arguments of `meridian cluster init`.
#[derive(Debug, clap::Args)]
pub struct ClusterInitArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=MAX_LOCAL_NODES))]
    pub nodes: u64,
    /// Number of groups (key ranges split evenly by first byte over printable ASCII).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=MAX_LOCAL_GROUPS))]
    pub groups: u64,
    /// Directory to write into.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// gRPC port of node 1; node i listens on P + i - 1, its metrics on P + 100 + i - 1.
    #[arg(long, default_value_t = 7101)]
    pub base_port: u16,
    /// Clock uncertainty bound ε in milliseconds.
    #[arg(long, default_value_t = 1.0)]
    pub epsilon_ms: f64,
}

/// Nodes of a local cluster when `--nodes` is not given.
pub const DEFAULT_LOCAL_NODES: u64 = 3;
/// Groups of a local cluster when `--groups` is not given.
pub const DEFAULT_LOCAL_GROUPS: u64 = 3;
/// Clock uncertainty bound of a local cluster when `--epsilon-ms` is not
/// given, in milliseconds.
pub const DEFAULT_LOCAL_EPSILON_MS: f64 = 1.0;

/// Arguments of `meridian cluster run`.
#[derive(Debug, clap::Args)]
pub struct ClusterRunArgs {
    /// Number of nodes [default: 3]. On an existing --dir, must match it.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_LOCAL_NODES))]
    pub nodes: Option<u64>,
    /// Number of groups [default: 3]. On an existing --dir, must match it.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_LOCAL_GROUPS))]
    pub groups: Option<u64>,
    /// Directory of the cluster, kept on exit. If it already holds a
    /// cluster, that cluster is restarted as configured (options that
    /// contradict it are refused). Default: a new directory under the
    /// system's temporary directory, removed on exit.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// gRPC port of node 1 (default: free ports chosen by the system). On
    /// an existing --dir, must match it.
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Clock uncertainty bound ε in milliseconds [default: 1]. On an
    /// existing --dir, must match it.
    #[arg(long)]
    pub epsilon_ms: Option<f64>,
}

/// Runs `meridian node`: starts the node, serves until SIGTERM or Ctrl-C,
/// then drains. Exit 0 after a clean drain, 1 if the node could not start,
/// 2 for a bad configuration.
pub fn run_node(args: &NodeArgs) -> ExitCode {
    let cfg = match NodeConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("meridian: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("meridian-io")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meridian: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let node = match Node::start(cfg, StartOptions::default()).await {
            Ok(n) => n,
            Err(e) => {
                eprintln!("meridian: node cannot start: {e}");
                return ExitCode::from(1);
            }
        };
        wait_for_signal().await;
        tracing::info!("draining");
        node.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The configurations of a local cluster of `nodes` nodes and `groups`
/// groups in `dir`, node i listening on `ports[i - 1]`.
pub fn local_configs(
    dir: &Path,
    nodes: u64,
    groups: u64,
    ports: &[(u16, u16)],
    epsilon_ms: f64,
) -> Vec<NodeConfig> {
    let cluster_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 | 1);
    let entries: Vec<NodeEntry> = (1..=nodes)
        .map(|id| NodeEntry {
            id,
            address: format!("127.0.0.1:{}", ports[(id - 1) as usize].0),
        })
        .collect();
    let groups = config::default_groups(nodes, groups);
    (1..=nodes)
        .map(|id| NodeConfig {
            cluster_id,
            epoch: 1,
            node_id: id,
            listen: entries[(id - 1) as usize].address.clone(),
            data_dir: dir.join(format!("node-{id}")).join("data"),
            metrics_listen: Some(format!("127.0.0.1:{}", ports[(id - 1) as usize].1)),
            clock: ClockConfig {
                epsilon_ms,
                ..ClockConfig::default()
            },
            paxos: PaxosConfig::default(),
            tls: None,
            nodes: entries.clone(),
            groups: groups.clone(),
        })
        .collect()
}

fn write_configs(dir: &Path, cfgs: &[NodeConfig]) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for c in cfgs {
        let d = dir.join(format!("node-{}", c.node_id));
        std::fs::create_dir_all(&d)?;
        let p = d.join(CONFIG_FILE);
        std::fs::write(&p, c.to_toml())?;
        paths.push(p);
    }
    Ok(paths)
}

/// Runs `meridian cluster init`. A directory that already holds a
/// cluster's configuration is refused (exit 2): new configurations would
/// name a new cluster id, and its nodes' data directories would refuse them.
pub fn cluster_init(args: &ClusterInitArgs) -> ExitCode {
    let Some(ports) = fixed_ports(args.base_port, args.nodes) else {
        eprintln!(
            "meridian: --base-port leaves no room for {} nodes",
            args.nodes
        );
        return ExitCode::from(2);
    };
    let dir = absolute(&args.dir);
    match existing_cluster(&dir) {
        Ok(None) => {}
        Ok(Some(held)) => {
            eprintln!(
                "meridian: {} already holds {}; choose another --dir (or remove it to start over)",
                dir.display(),
                held.describe()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("meridian: {e}");
            return ExitCode::from(2);
        }
    }
    let cfgs = local_configs(&dir, args.nodes, args.groups, &ports, args.epsilon_ms);
    if let Err(e) = cfgs[0].validate() {
        eprintln!("meridian: {e}");
        return ExitCode::from(2);
    }
    match write_configs(&dir, &cfgs) {
        Ok(paths) => {
            for p in paths {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("meridian: cannot write configs in {}: {e}", dir.display());
            ExitCode::from(1)
        }
    }
}

/// The local cluster a directory holds: every `node-<i>/meridian.toml`.
pub struct HeldCluster {
    /// Each node's configuration file and configuration, by node id.
    pub nodes: Vec<(PathBuf, NodeConfig)>,
}

impl HeldCluster {
    /// The cluster in words, for messages.
    pub fn describe(&self) -> String {
        let c = &self.nodes[0].1;
        format!(
            "cluster {:#x} ({} nodes, {} groups)",
            c.cluster_id,
            self.nodes.len(),
            c.groups.len()
        )
    }

    /// The options of `cluster run` given explicitly that contradict this
    /// cluster, each as a sentence.
    pub fn contradictions(&self, args: &ClusterRunArgs) -> Vec<String> {
        let c = &self.nodes[0].1;
        let mut out = Vec::new();
        if let Some(n) = args.nodes {
            if n != self.nodes.len() as u64 {
                out.push(format!(
                    "--nodes {n}, but it has {} nodes",
                    self.nodes.len()
                ));
            }
        }
        if let Some(g) = args.groups {
            if g != c.groups.len() as u64 {
                out.push(format!(
                    "--groups {g}, but it has {} groups",
                    c.groups.len()
                ));
            }
        }
        if let Some(e) = args.epsilon_ms {
            if e != c.clock.epsilon_ms {
                out.push(format!(
                    "--epsilon-ms {e}, but its nodes use {}",
                    c.clock.epsilon_ms
                ));
            }
        }
        if let Some(p) = args.base_port {
            let port = c
                .listen
                .parse::<std::net::SocketAddr>()
                .map(|a| a.port())
                .ok();
            if port != Some(p) {
                out.push(format!(
                    "--base-port {p}, but node 1 listens on {}",
                    c.listen
                ));
            }
        }
        out
    }
}

/// The cluster `dir` holds, if any: the configurations of its
/// `node-<i>` subdirectories, which must be one cluster's nodes 1..=n.
pub fn existing_cluster(dir: &Path) -> Result<Option<HeldCluster>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut ids = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_prefix("node-"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if e.path().join(CONFIG_FILE).exists() {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Ok(None);
    }
    ids.sort_unstable();
    let mut nodes = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if *id != i as u64 + 1 {
            return Err(format!(
                "{} holds configurations of nodes {ids:?}, not of nodes 1..={}: not a cluster `cluster run` can restart",
                dir.display(),
                ids.len()
            ));
        }
        let p = dir.join(format!("node-{id}")).join(CONFIG_FILE);
        let c = NodeConfig::load(&p).map_err(|e| e.to_string())?;
        if let Some((_, first)) = nodes.first() {
            let first: &NodeConfig = first;
            if c.cluster_id != first.cluster_id {
                return Err(format!(
                    "{} mixes clusters: node 1 is of cluster {:#x}, node {id} of cluster {:#x}",
                    dir.display(),
                    first.cluster_id,
                    c.cluster_id
                ));
            }
        }
        nodes.push((p, c));
    }
    Ok(Some(HeldCluster { nodes }))
}

/// Offset of node i's metrics port from its gRPC port in a layout from
/// `--base-port`.
const METRICS_PORT_OFFSET: u32 = 100;

/// The ports of `nodes` nodes from `--base-port P`: node i on `P + i - 1`,
/// its metrics on `P + 100 + i - 1`; `None` if they do not fit.
fn fixed_ports(base: u16, nodes: u64) -> Option<Vec<(u16, u16)>> {
    if base == 0 {
        return None;
    }
    (0..nodes as u32)
        .map(|i| {
            let grpc = u16::try_from(u32::from(base) + i).ok()?;
            let metrics = u16::try_from(u32::from(base) + METRICS_PORT_OFFSET + i).ok()?;
            Some((grpc, metrics))
        })
        .collect()
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Runs `meridian cluster run`: (re)uses or writes the configs, starts one
/// child process per node, waits until every node listens, prints the
/// endpoints, and stops the children on SIGTERM or Ctrl-C.
pub fn cluster_run(args: &ClusterRunArgs) -> ExitCode {
    let dir = match &args.dir {
        Some(d) => absolute(d),
        None => std::env::temp_dir().join(format!("meridian-cluster-{}", std::process::id())),
    };
    let held = match existing_cluster(&dir) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("meridian: {e}");
            return ExitCode::from(2);
        }
    };
    let (paths, cfgs): (Vec<PathBuf>, Vec<NodeConfig>) = match held {
        Some(held) => {
            let wrong = held.contradictions(args);
            if !wrong.is_empty() {
                eprintln!(
                    "meridian: {} holds {}, which these options contradict: {}. Omit them to restart that cluster as configured, or choose another --dir.",
                    dir.display(),
                    held.describe(),
                    wrong.join("; ")
                );
                return ExitCode::from(2);
            }
            println!("restarting {} from {}", held.describe(), dir.display());
            held.nodes.into_iter().unzip()
        }
        None => {
            let nodes = args.nodes.unwrap_or(DEFAULT_LOCAL_NODES);
            let groups = args.groups.unwrap_or(DEFAULT_LOCAL_GROUPS);
            let epsilon_ms = args.epsilon_ms.unwrap_or(DEFAULT_LOCAL_EPSILON_MS);
            let ports = match args.base_port {
                Some(p) => match fixed_ports(p, nodes) {
                    Some(ports) => ports,
                    None => {
                        eprintln!("meridian: --base-port leaves no room for {nodes} nodes");
                        return ExitCode::from(2);
                    }
                },
                None => match crate::local::free_ports(2 * nodes as usize) {
                    Ok(f) => f.chunks(2).map(|c| (c[0], c[1])).collect(),
                    Err(e) => {
                        eprintln!("meridian: cannot find free ports: {e}");
                        return ExitCode::from(1);
                    }
                },
            };
            let cfgs = local_configs(&dir, nodes, groups, &ports, epsilon_ms);
            if let Err(e) = cfgs[0].validate() {
                eprintln!("meridian: {e}");
                return ExitCode::from(2);
            }
            match write_configs(&dir, &cfgs) {
                Ok(p) => (p, cfgs),
                Err(e) => {
                    eprintln!("meridian: cannot write configs in {}: {e}", dir.display());
                    return ExitCode::from(1);
                }
            }
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("meridian: cannot find this program's path: {e}");
            return ExitCode::from(1);
        }
    };
    let mut children: Vec<Child> = Vec::new();
    for (p, c) in paths.iter().zip(&cfgs) {
        let log = dir.join(format!("node-{}", c.node_id)).join("node.log");
        let stderr = match std::fs::File::create(&log) {
            Ok(f) => Stdio::from(f),
            Err(_) => Stdio::inherit(),
        };
        match Command::new(&exe)
            .arg("node")
            .arg("--config")
            .arg(p)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
        {
            Ok(ch) => children.push(ch),
            Err(e) => {
                eprintln!("meridian: cannot start node {}: {e}", c.node_id);
                stop_all(&mut children);
                return ExitCode::from(1);
            }
        }
    }
    let endpoints: Vec<String> = cfgs.iter().map(|c| c.listen.clone()).collect();
    let deadline = Instant::now() + CLUSTER_START_TIMEOUT;
    for (i, e) in endpoints.iter().enumerate() {
        loop {
            if std::net::TcpStream::connect(e).is_ok() {
                break;
            }
            if let Ok(Some(status)) = children[i].try_wait() {
                eprintln!(
                    "meridian: node {} exited ({status}); see {}",
                    i + 1,
                    dir.join(format!("node-{}", i + 1))
                        .join("node.log")
                        .display()
                );
                stop_all(&mut children);
                return ExitCode::from(1);
            }
            if Instant::now() > deadline {
                eprintln!("meridian: node {} did not start listening on {e}", i + 1);
                stop_all(&mut children);
                return ExitCode::from(1);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    println!("endpoints: {}", endpoints.join(","));
    println!("data: {}", dir.display());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meridian: {e}");
            stop_all(&mut children);
            return ExitCode::from(1);
        }
    };
    // Wait for a signal, or for a child to die.
    let code = rt.block_on(async {
        let mut poll = tokio::time::interval(Duration::from_millis(200));
        let signal = wait_for_signal();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                _ = &mut signal => return ExitCode::SUCCESS,
                _ = poll.tick() => {
                    for (i, ch) in children.iter_mut().enumerate() {
                        if let Ok(Some(status)) = ch.try_wait() {
                            eprintln!("meridian: node {} exited ({status})", i + 1);
                            return ExitCode::from(1);
                        }
                    }
                }
            }
        }
    });
    stop_all(&mut children);
    code
}

/// Sends SIGTERM to every child and waits for them (SIGKILL after a bound).
fn stop_all(children: &mut [Child]) {
    for ch in children.iter() {
        // SAFETY: kill(2) on a child's pid has no memory-safety effects.
        unsafe {
            libc::kill(ch.id() as libc::pid_t, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for ch in children.iter_mut() {
        loop {
            match ch.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = ch.kill();
                    let _ = ch.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}
