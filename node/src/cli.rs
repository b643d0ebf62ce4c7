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

/// Arguments of `meridian cluster run`.
#[derive(Debug, clap::Args)]
pub struct ClusterRunArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=MAX_LOCAL_NODES))]
    pub nodes: u64,
    /// Number of groups.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=MAX_LOCAL_GROUPS))]
    pub groups: u64,
    /// Directory of the cluster; reused if it already holds one (a restart).
    /// Default: a new directory under the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// gRPC port of node 1 (default: free ports chosen by the system).
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Clock uncertainty bound ε in milliseconds.
    #[arg(long, default_value_t = 1.0)]
    pub epsilon_ms: f64,
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
            reads: crate::config::ReadsConfig::default(),
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

/// Runs `meridian cluster init`.
pub fn cluster_init(args: &ClusterInitArgs) -> ExitCode {
    let ports: Vec<(u16, u16)> = (0..args.nodes as u16)
        .map(|i| (args.base_port + i, args.base_port + 100 + i))
        .collect();
    if ports.iter().any(|(a, b)| *a == 0 || *b < *a) {
        eprintln!(
            "meridian: --base-port leaves no room for {} nodes",
            args.nodes
        );
        return ExitCode::from(2);
    }
    let dir = absolute(&args.dir);
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
    let existing: Vec<PathBuf> = (1..=args.nodes)
        .map(|i| dir.join(format!("node-{i}")).join(CONFIG_FILE))
        .collect();
    let paths = if existing.iter().all(|p| p.exists()) {
        existing
    } else {
        let ports = match args.base_port {
            Some(p) => (0..args.nodes as u16)
                .map(|i| (p + i, p + 100 + i))
                .collect::<Vec<_>>(),
            None => match crate::local::free_ports(2 * args.nodes as usize) {
                Ok(f) => f.chunks(2).map(|c| (c[0], c[1])).collect(),
                Err(e) => {
                    eprintln!("meridian: cannot find free ports: {e}");
                    return ExitCode::from(1);
                }
            },
        };
        let cfgs = local_configs(&dir, args.nodes, args.groups, &ports, args.epsilon_ms);
        match write_configs(&dir, &cfgs) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("meridian: cannot write configs in {}: {e}", dir.display());
                return ExitCode::from(1);
            }
        }
    };
    let mut cfgs = Vec::new();
    for p in &paths {
        match NodeConfig::load(p) {
            Ok(c) => cfgs.push(c),
            Err(e) => {
                eprintln!("meridian: {e}");
                return ExitCode::from(2);
            }
        }
    }
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
