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
    /// Writes the configuration files of a local cluster:
    /// `DIR/node-N/meridian.toml` (refused if DIR already holds a cluster).
    Init(ClusterInitArgs),
    /// Starts a local cluster as child processes (each group's replicas on
    /// `--replicas` of the nodes) and prints each node's addresses and `endpoints:
    /// HOST:PORT,...`. A node that dies is reported and the others keep
    /// running; type `stop N`, `kill N` or `restart N` on standard input to
    /// stop, kill or restart node N, `nodes` to list them, `quit` (or
    /// Ctrl-C) to stop the cluster.
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
    /// Replicas of each group, each on its own node, spread evenly over
    /// the nodes (docs/operations.md, "Placement") [default: 3, or
    /// --nodes if fewer]. More than --nodes, or 0, is refused.
    #[arg(long)]
    pub replicas: Option<u64>,
    /// Directory to write into.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// gRPC port of node 1; node i listens on P + i - 1, its metrics on P + 100 + i - 1.
    #[arg(long, default_value_t = 7101)]
    pub base_port: u16,
    /// Clock uncertainty bound ε in milliseconds.
    #[arg(long, default_value_t = 1.0)]
    pub epsilon_ms: f64,
    /// Split a range automatically once its newest versions exceed this
    /// size (bytes, or with a KiB, MiB or GiB suffix); 0 turns size-based
    /// splits off [default: 64MiB].
    #[arg(long, value_name = "SIZE", value_parser = config::parse_size)]
    pub split_bytes: Option<u64>,
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
    /// Replicas of each group [default: 3, or --nodes if fewer]; see
    /// `cluster init`. On an existing --dir, must match it.
    #[arg(long)]
    pub replicas: Option<u64>,
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
    /// Split a range automatically once its newest versions exceed this
    /// size (bytes, or with a KiB, MiB or GiB suffix); 0 turns size-based
    /// splits off [default: 64MiB]. Only for a new --dir.
    #[arg(long, value_name = "SIZE", value_parser = config::parse_size)]
    pub split_bytes: Option<u64>,
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

/// The replicas per group of a cluster of `nodes` nodes when `--replicas`
/// is not given: [`config::DEFAULT_REPLICAS`], or every node if there are
/// fewer.
pub fn default_replicas(nodes: u64) -> u64 {
    config::DEFAULT_REPLICAS.min(nodes)
}

/// The configurations of a local cluster of `nodes` nodes and `groups`
/// groups of `replicas` replicas each (placed by
/// [`config::place_replicas`]) in `dir`, node i listening on
/// `ports[i - 1]`.
pub fn local_configs(
    dir: &Path,
    nodes: u64,
    groups: u64,
    replicas: u64,
    ports: &[(u16, u16)],
    epsilon_ms: f64,
) -> Result<Vec<NodeConfig>, config::PlacementError> {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let cluster_id = since_epoch.as_nanos() as u64 | 1;
    // The cluster's birth: this machine's `TT.now().earliest`, so that no
    // node whose clock is in bound commits below it.
    let birth_ns = meridian_truetime::TrueTime::now(&meridian_truetime::SystemTrueTime::new(
        epsilon_nanos(epsilon_ms),
    ))
    .earliest
    .as_nanos();
    let entries: Vec<NodeEntry> = (1..=nodes)
        .map(|id| NodeEntry {
            id,
            address: format!("127.0.0.1:{}", ports[(id - 1) as usize].0),
        })
        .collect();
    let groups = config::default_groups(nodes, groups, replicas)?;
    Ok((1..=nodes)
        .map(|id| NodeConfig {
            cluster_id,
            epoch: 1,
            birth_ns: Some(birth_ns),
            node_id: id,
            listen: entries[(id - 1) as usize].address.clone(),
            data_dir: dir.join(format!("node-{id}")).join("data"),
            metrics_listen: Some(format!("127.0.0.1:{}", ports[(id - 1) as usize].1)),
            clock: ClockConfig {
                epsilon_ms,
                ..ClockConfig::default()
            },
            paxos: PaxosConfig::default(),
            health: config::HealthConfig::default(),
            reads: crate::config::ReadsConfig::default(),
            splits: crate::config::SplitsConfig::default(),
            tls: None,
            nodes: entries.clone(),
            groups: groups.clone(),
        })
        .collect())
}

/// `epsilon_ms` in nanoseconds (a negative or non-finite one as 0).
fn epsilon_nanos(epsilon_ms: f64) -> u64 {
    if epsilon_ms.is_finite() && epsilon_ms > 0.0 {
        (epsilon_ms * 1e6) as u64
    } else {
        0
    }
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
    let replicas = args.replicas.unwrap_or(default_replicas(args.nodes));
    let cfgs = match local_configs(
        &dir,
        args.nodes,
        args.groups,
        replicas,
        &ports,
        args.epsilon_ms,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("meridian: {e}");
            return ExitCode::from(2);
        }
    };
    let mut cfgs = cfgs;
    if let Some(b) = args.split_bytes {
        for c in &mut cfgs {
            c.splits.bytes = b;
        }
    }
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

/// The local cluster a directory holds: every `node-N/meridian.toml`.
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
        if let Some(r) = args.replicas {
            let held = c.groups.first().map_or(0, |g| g.replicas.len() as u64);
            if r != held {
                out.push(format!("--replicas {r}, but its groups have {held}"));
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
/// `node-N` subdirectories, which must be one cluster's nodes 1..=n.
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

/// Runs `meridian cluster run`: restarts the cluster `--dir` holds or
/// writes a new one's configurations, starts one child process per node,
/// waits until every node listens, prints each node's addresses and the
/// endpoints, then supervises them: a node that dies is reported and the
/// others keep running, and the commands of [`CLUSTER_RUN_COMMANDS`] on
/// standard input stop, kill or restart one node. On SIGTERM, Ctrl-C or
/// `quit` it stops every node, then removes its temporary directory (a
/// `--dir` given is kept, and said so).
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
            let replicas = args.replicas.unwrap_or(default_replicas(nodes));
            let mut cfgs = match local_configs(&dir, nodes, groups, replicas, &ports, epsilon_ms) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("meridian: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(b) = args.split_bytes {
                for c in &mut cfgs {
                    c.splits.bytes = b;
                }
            }
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
    let mut sup = Supervisor {
        exe,
        nodes: paths
            .into_iter()
            .zip(cfgs)
            .map(|(path, cfg)| Supervised {
                log: path.with_file_name(NODE_LOG_FILE),
                path,
                cfg,
                child: None,
            })
            .collect(),
    };
    let temporary = args.dir.is_none();
    let code = supervise(&mut sup, &dir);
    sup.stop_all();
    if temporary {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => println!("removed {}", dir.display()),
            Err(e) => println!(
                "could not remove {}: {e}; remove it yourself",
                dir.display()
            ),
        }
    } else {
        println!(
            "data kept in {}; `meridian cluster run --dir {}` restarts this cluster",
            dir.display(),
            dir.display()
        );
    }
    code
}

/// Each node's log file in its directory (the child's stderr, appended to
/// across restarts).
pub const NODE_LOG_FILE: &str = "node.log";

/// How long `stop N` (and the final stop) waits for a node to drain before
/// killing it.
pub const NODE_STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// How often `cluster run` looks for nodes that died.
const CHILD_POLL: Duration = Duration::from_millis(200);

/// How long `cluster run` waits before reading its standard input again
/// after a failed read (in the background of a shell).
const STDIN_RETRY: Duration = Duration::from_secs(1);

/// Lines of a dead node's log that `cluster run` prints.
const LOG_TAIL_LINES: usize = 5;

/// The commands `cluster run` reads on its standard input.
pub const CLUSTER_RUN_COMMANDS: &str = "stop N | kill N | restart N | nodes | help | quit";

/// One node of `cluster run`.
struct Supervised {
    path: PathBuf,
    cfg: NodeConfig,
    log: PathBuf,
    child: Option<Child>,
}

/// The child processes of `cluster run`.
struct Supervisor {
    exe: PathBuf,
    nodes: Vec<Supervised>,
}

impl Supervisor {
    /// Node `id`, if the cluster has it.
    fn node(&mut self, id: u64) -> Option<&mut Supervised> {
        let i = usize::try_from(id).ok()?.checked_sub(1)?;
        self.nodes.get_mut(i)
    }

    /// Starts node `id` and waits until it serves. On failure the error
    /// says why, with the end of its log.
    fn start(&mut self, id: u64) -> Result<(), String> {
        self.spawn(id)?;
        self.wait_serving(id)
    }

    /// Starts node `id`'s process.
    fn spawn(&mut self, id: u64) -> Result<(), String> {
        let exe = self.exe.clone();
        let Some(n) = self.node(id) else {
            return Err(format!("there is no node {id}"));
        };
        if n.child.is_some() {
            return Err(format!("node {id} is running"));
        }
        let stderr = match std::fs::File::options()
            .create(true)
            .append(true)
            .open(&n.log)
        {
            Ok(f) => Stdio::from(f),
            Err(_) => Stdio::inherit(),
        };
        let child = Command::new(&exe)
            .arg("node")
            .arg("--config")
            .arg(&n.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start node {id}: {e}"))?;
        n.child = Some(child);
        Ok(())
    }

    /// Waits until node `id`, just spawned, serves.
    fn wait_serving(&mut self, id: u64) -> Result<(), String> {
        let Some(n) = self.node(id) else {
            return Err(format!("there is no node {id}"));
        };
        let deadline = Instant::now() + CLUSTER_START_TIMEOUT;
        loop {
            // The gRPC port is bound early in a node's start; the metrics
            // port last, once the node serves.
            let serving = std::net::TcpStream::connect(&n.cfg.listen).is_ok()
                && n.cfg
                    .metrics_listen
                    .as_ref()
                    .is_none_or(|m| std::net::TcpStream::connect(m).is_ok());
            if serving {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = n.child.as_mut().map(Child::try_wait) {
                n.child = None;
                return Err(format!(
                    "node {id} exited ({status}) at start; the end of {}:\n{}",
                    n.log.display(),
                    tail(&n.log, LOG_TAIL_LINES)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node {id} did not start listening on {} within {CLUSTER_START_TIMEOUT:?}; see {}",
                    n.cfg.listen,
                    n.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops node `id` with `signal` (SIGTERM drains it) and waits for it
    /// (SIGKILL after [`NODE_STOP_TIMEOUT`]). False if it was not running.
    fn stop(&mut self, id: u64, signal: libc::c_int) -> bool {
        let Some(mut child) = self.node(id).and_then(|n| n.child.take()) else {
            return false;
        };
        stop_child(&mut child, signal);
        true
    }

    /// Stops every running node at once (each drains).
    fn stop_all(&mut self) {
        let mut children: Vec<Child> = self
            .nodes
            .iter_mut()
            .filter_map(|n| n.child.take())
            .collect();
        stop_all(&mut children);
    }

    /// Reaps the nodes that died by themselves and reports them.
    fn reap(&mut self) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            let Some(Ok(Some(status))) = n.child.as_mut().map(Child::try_wait) else {
                continue;
            };
            n.child = None;
            println!(
                "node {} exited ({status}); the other nodes keep running; `restart {}` starts it again. The end of {}:\n{}",
                i + 1,
                i + 1,
                n.log.display(),
                tail(&n.log, LOG_TAIL_LINES)
            );
            flush();
        }
    }

    /// One line per node: id, gRPC address, metrics and console URLs, state.
    fn print_nodes(&self) {
        for (i, n) in self.nodes.iter().enumerate() {
            let state = match &n.child {
                Some(c) => format!("running (pid {})", c.id()),
                None => "stopped".to_string(),
            };
            let (metrics, console) = match &n.cfg.metrics_listen {
                Some(m) => (
                    format!("http://{m}/metrics"),
                    format!("http://{m}{}", crate::console::PAGE_PATH),
                ),
                None => ("-".to_string(), "-".to_string()),
            };
            println!(
                "node {}: {}  metrics {metrics}  console {console}  {state}  log {}",
                i + 1,
                n.cfg.listen,
                n.log.display()
            );
        }
        flush();
    }

    /// Runs one command typed on standard input; false to quit.
    fn command(&mut self, line: &str) -> bool {
        let words: Vec<&str> = line.split_whitespace().collect();
        let id = |w: Option<&&str>| w.and_then(|w| w.parse::<u64>().ok());
        match (words.first().copied(), id(words.get(1))) {
            (None, _) => {}
            (Some("quit" | "exit"), _) => return false,
            (Some("help" | "?"), _) => println!("commands: {CLUSTER_RUN_COMMANDS}"),
            (Some("nodes" | "status"), _) => self.print_nodes(),
            (Some(cmd @ ("stop" | "kill")), Some(n)) if self.node(n).is_some() => {
                let (signal, done) = if cmd == "stop" {
                    (libc::SIGTERM, "stopped")
                } else {
                    (libc::SIGKILL, "killed")
                };
                if self.stop(n, signal) {
                    println!("node {n} {done}");
                } else {
                    println!("node {n} is not running");
                }
            }
            (Some("restart" | "start"), Some(n)) if self.node(n).is_some() => {
                if self.stop(n, libc::SIGTERM) {
                    println!("node {n} stopped");
                }
                match self.start(n) {
                    Ok(()) => println!("node {n} restarted"),
                    Err(e) => println!("{e}"),
                }
            }
            (Some("stop" | "kill" | "restart" | "start"), _) => println!(
                "which node? `{} N` with N from 1 to {}",
                words[0],
                self.nodes.len()
            ),
            (Some(other), _) => {
                println!("unknown command {other:?}; commands: {CLUSTER_RUN_COMMANDS}")
            }
        }
        flush();
        true
    }
}

fn flush() {
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

/// The last `lines` lines of `path`, indented.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts every node, prints where they are, then serves the commands on
/// standard input until a signal or `quit`. A node that dies is reported;
/// the others keep running.
fn supervise(sup: &mut Supervisor, dir: &Path) -> ExitCode {
    // All at once: each node's start-up hello waits for its peers.
    let ids = 1..=sup.nodes.len() as u64;
    if let Err(e) = ids.clone().try_for_each(|id| sup.spawn(id)) {
        eprintln!("meridian: {e}");
        return ExitCode::from(1);
    }
    if let Err(e) = ids.into_iter().try_for_each(|id| sup.wait_serving(id)) {
        eprintln!("meridian: {e}");
        return ExitCode::from(1);
    }
    sup.print_nodes();
    let endpoints: Vec<String> = sup.nodes.iter().map(|n| n.cfg.listen.clone()).collect();
    println!("endpoints: {}", endpoints.join(","));
    println!("data: {}", dir.display());
    println!("commands on standard input: {CLUSTER_RUN_COMMANDS}");
    flush();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meridian: {e}");
            return ExitCode::from(1);
        }
    };
    // Standard input is read by a thread of its own (a blocking read); at
    // its end the cluster keeps running. Run in the background of a shell
    // (`meridian cluster run &`), a read of the terminal would stop the
    // whole process group, nodes included, with SIGTTIN: ignored, the read
    // fails instead, and is tried again later (the job may come back to
    // the foreground).
    // SAFETY: setting a signal's disposition to SIG_IGN runs no code.
    unsafe {
        libc::signal(libc::SIGTTIN, libc::SIG_IGN);
    }
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let _ = std::thread::Builder::new()
        .name("meridian-stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut line = String::new();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        if lines_tx.send(line.trim_end().to_string()).is_err() {
                            break;
                        }
                    }
                    Err(_) => std::thread::sleep(STDIN_RETRY),
                }
            }
        });
    rt.block_on(async {
        let mut poll = tokio::time::interval(CHILD_POLL);
        let signal = wait_for_signal();
        tokio::pin!(signal);
        let mut stdin_open = true;
        loop {
            tokio::select! {
                _ = &mut signal => return ExitCode::SUCCESS,
                _ = poll.tick() => sup.reap(),
                line = lines.recv(), if stdin_open => match line {
                    Some(line) => {
                        sup.reap();
                        if !sup.command(&line) {
                            return ExitCode::SUCCESS;
                        }
                    }
                    None => stdin_open = false,
                },
            }
        }
    })
}

/// Sends `signal` to a child and waits for it (SIGKILL after
/// [`NODE_STOP_TIMEOUT`]).
fn stop_child(child: &mut Child, signal: libc::c_int) {
    stop_all_with(std::slice::from_mut(child), signal);
}

/// Sends SIGTERM to every child and waits for them (SIGKILL after a bound).
fn stop_all(children: &mut [Child]) {
    stop_all_with(children, libc::SIGTERM);
}

/// Sends `signal` to every child and waits for them (SIGKILL after
/// [`NODE_STOP_TIMEOUT`]).
fn stop_all_with(children: &mut [Child], signal: libc::c_int) {
    for ch in children.iter() {
        // SAFETY: kill(2) on a child's pid has no memory-safety effects.
        unsafe {
            libc::kill(ch.id() as libc::pid_t, signal);
        }
    }
    let deadline = Instant::now() + NODE_STOP_TIMEOUT;
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
