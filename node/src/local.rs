//! An in-process local cluster: several [`Node`]s in one process, each with
//! its own data directory, write-ahead log with real `fdatasync`, and gRPC
//! server on loopback. Nodes talk to each other and to clients only through
//! gRPC, exactly as separate processes do. For tests, examples and the
//! embedded benchmark.

use std::path::{Path, PathBuf};
use std::time::Duration;

use meridian_proto::pb;

use crate::cli::local_configs;
use crate::config::NodeConfig;
use crate::{Node, StartError, StartOptions};

/// How long [`LocalCluster::wait_for_leaders`] waits by default.
pub const LEADER_WAIT: Duration = Duration::from_secs(20);

/// Deadline of one probe of [`LocalCluster::wait_for_leaders`].
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Several nodes in one process.
pub struct LocalCluster {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    configs: Vec<NodeConfig>,
    nodes: Vec<Option<Node>>,
    start: StartOptions,
}

/// Options of a local cluster.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// Number of nodes.
    pub nodes: u64,
    /// Number of groups.
    pub groups: u64,
    /// Replicas of each group, placed by
    /// [`crate::config::place_replicas`] (at most `nodes`); `None`: one on
    /// every node.
    pub replicas: Option<u64>,
    /// Clock uncertainty ε in milliseconds.
    pub epsilon_ms: f64,
    /// Where the data directories go (default: a new temporary directory,
    /// removed when the cluster is dropped).
    pub dir: Option<PathBuf>,
    /// Mutual TLS for every node (one CA; each node uses the same
    /// certificate, which must name 127.0.0.1).
    pub tls: Option<crate::config::TlsConfig>,
    /// Entries each group applies between snapshots (default: the core's);
    /// see [`StartOptions::compact_every`].
    pub compact_every: Option<u64>,
    /// Automatic splits (default: on, with the node's defaults).
    pub splits: crate::config::SplitsConfig,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            nodes: 3,
            groups: 3,
            replicas: None,
            epsilon_ms: 1.0,
            dir: None,
            tls: None,
            compact_every: None,
            splits: crate::config::SplitsConfig::default(),
        }
    }
}

impl LocalCluster {
    /// Starts a cluster on free loopback ports.
    pub async fn start(opts: LocalOptions) -> Result<LocalCluster, StartError> {
        let (tmp, dir) = match &opts.dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("meridian-local-")
                    .tempdir()
                    .map_err(|e| StartError::Storage(format!("temporary directory: {e}")))?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let ports = free_ports(2 * opts.nodes as usize)
            .map_err(|e| StartError::Other(format!("no free ports: {e}")))?;
        let pairs: Vec<(u16, u16)> = ports.chunks(2).map(|c| (c[0], c[1])).collect();
        let replicas = opts.replicas.unwrap_or(opts.nodes);
        let mut configs = local_configs(
            &dir,
            opts.nodes,
            opts.groups,
            replicas,
            &pairs,
            opts.epsilon_ms,
        )
        .map_err(|e| StartError::Other(e.to_string()))?;
        for c in &mut configs {
            c.tls = opts.tls.clone();
            c.splits = opts.splits.clone();
        }
        let mut c = LocalCluster {
            dir,
            _tmp: tmp,
            configs,
            nodes: Vec::new(),
            start: StartOptions {
                compact_every: opts.compact_every,
                ..StartOptions::default()
            },
        };
        // Start all nodes concurrently: each one's start-up hello waits for
        // its peers.
        let starts = c
            .configs
            .iter()
            .cloned()
            .map(|cfg| tokio::spawn(Node::start(cfg, c.start.clone())));
        let starts: Vec<_> = starts.collect();
        for s in starts {
            let node = s
                .await
                .map_err(|e| StartError::Other(format!("start task: {e}")))??;
            c.nodes.push(Some(node));
        }
        Ok(c)
    }

    /// The nodes' gRPC addresses, `host:port`.
    pub fn endpoints(&self) -> Vec<String> {
        self.configs.iter().map(|c| c.listen.clone()).collect()
    }

    /// The directory holding the nodes' data.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration of node `id` (1-based).
    pub fn config(&self, id: u64) -> &NodeConfig {
        &self.configs[(id - 1) as usize]
    }

    /// Node `id` (1-based), if running.
    pub fn node(&self, id: u64) -> Option<&Node> {
        self.nodes.get((id - 1) as usize).and_then(|n| n.as_ref())
    }

    /// Stops node `id` at once, as a crash would (unsynced writes are not
    /// lost, since the process lives; what was in flight is).
    pub fn kill(&mut self, id: u64) {
        if let Some(n) = self.nodes[(id - 1) as usize].take() {
            n.kill();
        }
    }

    /// Stops node `id` as SIGTERM would: it hands over the leadership of
    /// its groups, answers what is in flight, then stops.
    pub async fn drain(&mut self, id: u64) {
        if let Some(n) = self.nodes[(id - 1) as usize].take() {
            n.shutdown().await;
        }
    }

    /// Restarts node `id` from its data directory.
    pub async fn restart(&mut self, id: u64) -> Result<(), StartError> {
        let cfg = self.configs[(id - 1) as usize].clone();
        let n = Node::start(cfg, self.start.clone()).await?;
        self.nodes[(id - 1) as usize] = Some(n);
        Ok(())
    }

    /// The configuration of a new node for this cluster, as an operator
    /// would write it to replace a node: every existing node plus the new
    /// one in `[[nodes]]`, and the new node under `joining` in every group
    /// (its replicas start with no voters and wait to be added). Free
    /// loopback ports; its data under the cluster's directory.
    pub fn joining_config(&self) -> Result<NodeConfig, StartError> {
        let id = self.configs.len() as u64 + 1;
        let ports = free_ports(2).map_err(|e| StartError::Other(format!("no free ports: {e}")))?;
        let mut cfg = self.configs[0].clone();
        cfg.node_id = id;
        cfg.listen = format!("127.0.0.1:{}", ports[0]);
        cfg.metrics_listen = Some(format!("127.0.0.1:{}", ports[1]));
        cfg.data_dir = self.dir.join(format!("node-{id}")).join("data");
        cfg.nodes.push(crate::config::NodeEntry {
            id,
            address: cfg.listen.clone(),
        });
        for g in &mut cfg.groups {
            g.joining.push(id);
        }
        Ok(cfg)
    }

    /// Starts a node from `cfg` (from [`LocalCluster::joining_config`])
    /// as node `cfg.node_id`, which must be the next id; [`LocalCluster::kill`],
    /// [`LocalCluster::restart`] and [`LocalCluster::endpoints`] then cover
    /// it too.
    pub async fn start_extra(&mut self, cfg: NodeConfig) -> Result<u64, StartError> {
        let id = cfg.node_id;
        if id != self.configs.len() as u64 + 1 {
            return Err(StartError::Other(format!(
                "the next node of this cluster is {}, not {id}",
                self.configs.len() + 1
            )));
        }
        let n = Node::start(cfg.clone(), self.start.clone()).await?;
        self.configs.push(cfg);
        self.nodes.push(Some(n));
        Ok(id)
    }

    /// Waits until every group has a leader that serves: a strong read-only
    /// request for a key of the group succeeds at some node.
    pub async fn wait_for_leaders(&self, within: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        let cfg = &self.configs[0];
        for g in &cfg.groups {
            let key = if g.start.is_empty() {
                bytes::Bytes::from_static(b"\x01")
            } else {
                g.start_bytes()
            };
            'group: loop {
                for e in self.endpoints() {
                    if let Ok(mut c) = self.admin_client(&e).await {
                        let req = pb::ReadOnlyRequest {
                            header: Some(pb::Header {
                                cluster_id: cfg.cluster_id,
                                epoch: cfg.epoch,
                            }),
                            group: g.id,
                            at: Some(pb::read_only_request::At::Strong(pb::Empty {})),
                            reads: vec![pb::ReadOp {
                                op: Some(pb::read_op::Op::Get(key.clone())),
                            }],
                        };
                        let mut req = tonic::Request::new(req);
                        req.set_timeout(PROBE_TIMEOUT);
                        if let Ok(r) = c.read_only(req).await {
                            if r.into_inner().error.is_none() {
                                break 'group;
                            }
                        }
                    }
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(format!("group {} has no serving leader", g.id));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// A raw gRPC client of node address `e`, with the cluster's TLS
    /// identity when it has one.
    async fn admin_client(
        &self,
        e: &str,
    ) -> Result<pb::meridian_client::MeridianClient<tonic::transport::Channel>, String> {
        let tls = match &self.configs[0].tls {
            None => None,
            Some(t) => Some(
                crate::server::tls_configs(t)
                    .map_err(|err| err.to_string())?
                    .1,
            ),
        };
        let chan = crate::peer::channel(e, tls.as_ref())?;
        Ok(pb::meridian_client::MeridianClient::new(chan))
    }

    /// Drains and stops every node.
    pub async fn shutdown(mut self) {
        for n in self.nodes.iter_mut() {
            if let Some(n) = n.take() {
                n.shutdown().await;
            }
        }
    }
}

/// Lowest port [`free_ports`] hands out.
const LOCAL_PORT_FLOOR: u32 = 10_000;

/// Fewest ports [`free_ports`] needs between its floor and the kernel's
/// ephemeral range to stay below it; with fewer it uses the ports above.
const LOCAL_PORT_SPAN_MIN: u32 = 2_000;

/// Where the kernel states its ephemeral port range.
const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// The ephemeral range when the kernel does not say (Linux's default).
const EPHEMERAL_RANGE_DEFAULT: (u32, u32) = (32_768, 60_999);

/// Free loopback ports for nodes to listen on.
///
/// They are taken outside the kernel's ephemeral range, so the source port
/// of some outgoing connection cannot take one between this answer and the
/// node's bind, and from a cursor shared by the process (started at an
/// offset drawn from the process id), so concurrent clusters of one test
/// binary never get the same port. Each port is checked free by binding it.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CURSOR: AtomicU32 = AtomicU32::new(0);
    let (lo, hi) = local_port_range();
    let span = hi - lo;
    let _ = CURSOR.compare_exchange(
        0,
        1 + std::process::id().wrapping_mul(7_919) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let mut listeners = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    let mut tried = 0;
    while ports.len() < n {
        if tried >= span {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("no {n} free loopback ports in {lo}..{hi}"),
            ));
        }
        tried += 1;
        let port = (lo + CURSOR.fetch_add(1, Ordering::Relaxed) % span) as u16;
        // Held until the end, so one call never answers a port twice.
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            ports.push(port);
            listeners.push(l);
        }
    }
    Ok(ports)
}

/// The ports [`free_ports`] draws from, `lo..hi`: below the kernel's
/// ephemeral range where there is room, above it otherwise.
fn local_port_range() -> (u32, u32) {
    let (eph_lo, eph_hi) = std::fs::read_to_string(EPHEMERAL_RANGE_FILE)
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|w| w.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or(EPHEMERAL_RANGE_DEFAULT);
    if eph_lo >= LOCAL_PORT_FLOOR + LOCAL_PORT_SPAN_MIN {
        (LOCAL_PORT_FLOOR, eph_lo)
    } else if eph_hi + LOCAL_PORT_SPAN_MIN <= u32::from(u16::MAX) {
        (eph_hi + 1, u32::from(u16::MAX) + 1)
    } else {
        // The kernel hands out nearly every port: share its range.
        (LOCAL_PORT_FLOOR, u32::from(u16::MAX) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_outside_the_ephemeral_range_and_bindable() {
        let (lo, hi) = local_port_range();
        let a = free_ports(8).expect("ports");
        let b = free_ports(8).expect("ports");
        let all: std::collections::BTreeSet<u16> = a.iter().chain(&b).copied().collect();
        assert_eq!(all.len(), 16, "{a:?} {b:?}");
        for p in all {
            assert!((lo..hi).contains(&u32::from(p)), "{p} outside {lo}..{hi}");
            std::net::TcpListener::bind(("127.0.0.1", p)).expect("bindable");
        }
    }
}
