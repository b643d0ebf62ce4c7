//! Starting and stopping a node: the clock, the log, the loop, the peer
//! streams, the gRPC server, the metrics endpoint and the clock check.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use meridian_paxos::{NodeId, Recovered};
use meridian_proto::pb;
use meridian_truetime::{KernelTrueTime, SystemTrueTime, TrueTime};
use meridian_txn::GroupId;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, ClientTlsConfig, Server, ServerTlsConfig};

use crate::config::{ClockBackend, NodeConfig, TlsConfig};
use crate::liveness::Liveness;
use crate::members::Members;
use crate::metrics::Metrics;
use crate::peer::{self, HelloError, Identity, PeerService};
use crate::runtime::{self, Event, FatalHandler, LoopHandle, LoopSetup};
use crate::service::{ClientService, Shared};

/// Interval between clock checks against the peers.
pub const CLOCK_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How long start-up tries to reach the peers to check their cluster id
/// (peers not up yet are fine: they are checked when they come).
pub const STARTUP_HELLO_WINDOW: Duration = Duration::from_millis(1500);

/// Longest a drain waits for in-flight calls.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a drain waits for its groups' leadership to move to other
/// nodes. Bounded well below [`DRAIN_TIMEOUT`]: when every node stops at
/// once, leadership can only move among draining nodes, and each gives up
/// after this long.
pub const DRAIN_HAND_OVER_TIMEOUT: Duration = Duration::from_secs(4);

/// How often a drain asks its leaders again to hand over (a hand-over that
/// found no caught-up target in an election timeout is dropped).
const HAND_OVER_RETRY: Duration = Duration::from_millis(500);

/// How often a drain looks at its progress.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// How long a stopping server may take to finish its connections.
const SERVER_STOP_GRACE: Duration = Duration::from_millis(500);

/// HTTP/2 keepalive of the server side.
const SERVER_KEEPALIVE: Duration = Duration::from_secs(1);

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The clock backend is unusable.
    #[error("clock: {0}")]
    Clock(String),
    /// The data directory could not be opened or recovered.
    #[error("storage: {0}")]
    Storage(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory belongs to another cluster or another node.
    #[error("{0}")]
    DataDir(#[from] crate::identity::IdentityError),
    /// A configured peer belongs to another cluster.
    #[error("refusing to join: {0}")]
    ClusterMismatch(String),
    /// TLS files could not be read or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// Something else.
    #[error("{0}")]
    Other(String),
}

/// How many of its longest election timeouts a group's preferred leader
/// has to campaign before the node's other replicas of the group tick at
/// all (see [`crate::runtime::LoopSetup::campaign_holds`]): its own timer
/// falls due within one, the second covers the nodes' start-up skew and
/// the election's round trips and fsyncs.
pub const PREFERRED_LEADER_HEAD_START_TIMEOUTS: u64 = 2;

/// Options of a node beyond its configuration file.
#[derive(Clone)]
pub struct StartOptions {
    /// What happens when the node cannot go on (default: exit the process).
    pub fatal: FatalHandler,
    /// Entries each group applies between snapshots of its state (default:
    /// the core's, [`meridian_txn::DEFAULT_COMPACT_EVERY`]). Small values
    /// let tests make a leader compact its log, so that a replica behind it
    /// catches up from a snapshot.
    pub compact_every: Option<u64>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            fatal: runtime::exit_on_fatal(),
            compact_every: None,
        }
    }
}

/// A running node.
pub struct Node {
    shared: Arc<Shared>,
    handle: Option<LoopHandle>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, StartError> {
    std::fs::read(path).map_err(|e| StartError::Tls(format!("cannot read {}: {e}", path.display())))
}

/// The server and client sides of mutual TLS from the configured files:
/// this node's identity, and the CA every peer and client must chain to.
pub fn tls_configs(t: &TlsConfig) -> Result<(ServerTlsConfig, ClientTlsConfig), StartError> {
    let ca = Certificate::from_pem(read_pem(&t.ca)?);
    let id = tonic::transport::Identity::from_pem(read_pem(&t.cert)?, read_pem(&t.key)?);
    Ok((
        ServerTlsConfig::new()
            .identity(id.clone())
            .client_ca_root(ca.clone()),
        ClientTlsConfig::new().ca_certificate(ca).identity(id),
    ))
}

impl Node {
    /// Starts a node from its configuration.
    pub async fn start(cfg: NodeConfig, opts: StartOptions) -> Result<Node, StartError> {
        cfg.validate()
            .map_err(|e| StartError::Other(e.to_string()))?;
        // The node's own certificate is checked before anything else: one
        // its peers would refuse stops the start with the reason.
        let (server_tls, client_tls) = match &cfg.tls {
            None => (None, None),
            Some(t) => {
                let files = crate::tls::TlsFiles::load(t).map_err(StartError::Tls)?;
                let own = cfg
                    .nodes
                    .iter()
                    .find(|n| n.id == cfg.node_id)
                    .map(|n| n.address.as_str());
                crate::tls::check_own_certificate(
                    t,
                    &files,
                    own,
                    rustls::pki_types::UnixTime::now(),
                )
                .map_err(StartError::Tls)?;
                let server = crate::tls::server_config(&files).map_err(StartError::Tls)?;
                let (_, client) = tls_configs(t)?;
                (Some(server), Some(client))
            }
        };
        let epsilon = cfg.clock.epsilon_nanos();
        let clock: Arc<dyn TrueTime> = match cfg.clock.backend {
            ClockBackend::System => Arc::new(SystemTrueTime::new(epsilon)),
            ClockBackend::Kernel => Arc::new(
                KernelTrueTime::with_max_epsilon(epsilon)
                    .map_err(|e| StartError::Clock(e.to_string()))?,
            ),
        };
        let (log, mut recovered) = crate::storage_glue::open(&cfg)?;
        let listener =
            TcpListener::bind(&cfg.listen)
                .await
                .map_err(|source| StartError::Listen {
                    address: cfg.listen.clone(),
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Other(e.to_string()))?;

        let me = Identity {
            node: cfg.node_id,
            cluster_id: cfg.cluster_id,
            epoch: cfg.epoch,
        };
        let metrics = Arc::new(Metrics::default());
        // The configured nodes and those added at run time before a restart.
        let members = Arc::new(
            Members::open(cfg.node_id, &cfg.nodes, &cfg.data_dir, client_tls.clone())
                .map_err(StartError::Storage)?,
        );
        let channels: HashMap<NodeId, tonic::transport::Channel> =
            members.channels().into_iter().collect();
        let liveness = Arc::new(Liveness::default());
        check_peers(&me, &channels, clock.as_ref(), epsilon, &liveness).await?;

        let mut queues = HashMap::new();
        let mut tasks = Vec::new();
        for (&id, chan) in &channels {
            let (tx, rx) = mpsc::channel(peer::PEER_QUEUE);
            queues.insert(id, tx);
            tasks.push(tokio::spawn(peer::run_sender(
                me.clone(),
                id,
                chan.clone(),
                rx,
                metrics.clone(),
            )));
        }

        let mut replicas = Vec::new();
        let mut group_nodes = BTreeMap::new();
        for g in &cfg.groups {
            let mut nodes = g.replicas.clone();
            nodes.extend(&g.joining);
            group_nodes.insert(g.id, nodes);
        }
        let template = replica_template(&cfg, &opts);
        // Each group's preferred leader (the first of its configured
        // replicas) campaigns first: the node's other replicas hold their
        // timers for a few election timeouts, so when the cluster starts
        // its leaders come up spread as placed (docs/operations.md,
        // "Placement"). Timing only: no Paxos rule changes.
        let head_start =
            Duration::from_millis(cfg.paxos.election_max_ms * PREFERRED_LEADER_HEAD_START_TIMEOUTS);
        let campaign_holds: BTreeMap<_, _> = cfg
            .local_groups()
            .filter(|g| {
                g.replicas.len() > 1
                    && crate::config::preferred_leader(g).is_some_and(|p| p != cfg.node_id)
            })
            .map(|g| (g.id, head_start))
            .collect();
        for g in cfg.local_groups() {
            // A joining replica starts with no voters and learns its
            // membership from the leader's log.
            let voters = if g.replicas.contains(&cfg.node_id) {
                g.replicas.clone()
            } else {
                Vec::new()
            };
            let mut c = template.clone();
            c.group = g.id;
            c.paxos.initial_voters = voters;
            // A bootstrap fact; the replica's snapshot, once it has one,
            // carries the descriptor it applied since (splits).
            c.descriptor = g.descriptor();
            replicas.push((
                c,
                recovered.remove(&g.id).unwrap_or_else(Recovered::default),
            ));
        }
        // Groups the log holds that the configuration does not name were
        // created at run time (a split's child, an added group): recreated
        // from their own records, their membership and state from their
        // snapshot.
        for (group, state) in std::mem::take(&mut recovered) {
            tracing::info!(group, "recreating a replica created at run time");
            let mut c = template.clone();
            c.group = group;
            // Its snapshot (the first thing it persisted) carries its
            // descriptor; until read, it serves nothing.
            c.descriptor = meridian_participant::RangeDescriptor {
                group,
                start: bytes::Bytes::new(),
                end: Some(bytes::Bytes::new()),
                generation: 0,
            };
            replicas.push((c, state));
        }
        let handle = runtime::start(LoopSetup {
            node: cfg.node_id,
            replicas,
            group_nodes,
            clock: clock.clone(),
            log,
            peers: queues,
            fatal: opts.fatal.clone(),
            metrics: metrics.clone(),
            template,
            campaign_holds,
            splits: cfg.splits.policy(),
        })
        .map_err(|e| StartError::Other(format!("cannot start the loop threads: {e}")))?;

        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            members: members.clone(),
            inbox: handle.inbox.clone(),
            views: handle.views.clone(),
            clock: clock.clone(),
            clock_ok: handle.clock_ok.clone(),
            clock_detail: parking_lot::Mutex::new(String::new()),
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            metrics: metrics.clone(),
            stopping: stop_rx.clone(),
            liveness,
        });

        let mut builder = Server::builder()
            .http2_keepalive_interval(Some(SERVER_KEEPALIVE))
            .http2_keepalive_timeout(Some(peer::KEEPALIVE_TIMEOUT))
            .initial_stream_window_size(Some(meridian_proto::calls::STREAM_WINDOW_BYTES))
            .initial_connection_window_size(Some(meridian_proto::calls::CONNECTION_WINDOW_BYTES));
        let max = meridian_proto::MAX_MESSAGE_BYTES;
        let router = builder
            .add_service(
                pb::meridian_server::MeridianServer::new(ClientService(shared.clone()))
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
            )
            .add_service(pb::admin_server::AdminServer::new(
                crate::admin::AdminService(shared.clone()),
            ))
            .add_service(
                pb::peer_server::PeerServer::new(PeerService {
                    me: me.clone(),
                    inbox: handle.inbox.clone(),
                    clock: clock.clone(),
                    epsilon,
                    metrics_address: cfg.metrics_listen.clone().unwrap_or_default(),
                })
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            );
        // Server::tcp_nodelay is ignored for a stream of our own: set it on
        // every accepted socket, or Nagle's algorithm holds back small
        // answers behind the peer's delayed acknowledgement (40 ms) as soon
        // as several calls share a connection.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let mut stop_signal = stop_rx.clone();
        let shutdown = async move {
            let _ = stop_signal.wait_for(|s| *s).await;
        };
        // With TLS the node handshakes itself (tonic would drop a failed
        // handshake silently): each failure is logged with the peer's
        // address and the reason.
        let server = match server_tls {
            None => tokio::spawn(async move {
                if let Err(e) = router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
                {
                    tracing::error!(error = %e, "gRPC server stopped");
                }
            }),
            Some(tls) => {
                let (incoming, accept) = crate::tls::accept_tls(incoming, tls, stop_rx.clone());
                tasks.push(accept);
                tokio::spawn(async move {
                    if let Err(e) = router
                        .serve_with_incoming_shutdown(incoming, shutdown)
                        .await
                    {
                        tracing::error!(error = %e, "gRPC server stopped");
                    }
                })
            }
        };

        let mut metrics_addr = None;
        if let Some(m) = &cfg.metrics_listen {
            let l = TcpListener::bind(m)
                .await
                .map_err(|source| StartError::Listen {
                    address: m.clone(),
                    source,
                })?;
            metrics_addr = l.local_addr().ok();
            tasks.push(tokio::spawn(crate::metrics::serve(l, shared.clone())));
        }
        if cfg.splits.policy().is_some() {
            tasks.push(tokio::spawn(crate::autosplit::run(
                shared.clone(),
                crate::autosplit::SplitTarget::of(&shared, addr),
                stop_rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(clock_check(
            me.clone(),
            clock.clone(),
            epsilon,
            shared.clone(),
        )));
        tracing::info!(node = cfg.node_id, %addr, "node started");
        Ok(Node {
            shared,
            handle: Some(handle),
            stop,
            server,
            tasks,
            addr,
            metrics_addr,
        })
    }

    /// The address the gRPC server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics endpoint's address, if configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Drains and stops: new calls are refused; every group this node
    /// leads hands its leadership to another voter (up to
    /// [`DRAIN_HAND_OVER_TIMEOUT`]), so the group serves again after the
    /// old lease rather than after an election timeout; calls in flight
    /// are answered (up to [`DRAIN_TIMEOUT`]); then the server, the loop
    /// and the log stop.
    pub async fn shutdown(mut self) {
        self.shared.draining.store(true, Ordering::Release);
        let started = tokio::time::Instant::now();
        let mut asked: Option<tokio::time::Instant> = None;
        loop {
            let now = tokio::time::Instant::now();
            let leading = self.leading_groups();
            let hand_over = !leading.is_empty() && now < started + DRAIN_HAND_OVER_TIMEOUT;
            let busy =
                self.shared.in_flight.load(Ordering::Acquire) > 0 && now < started + DRAIN_TIMEOUT;
            if !hand_over && !busy {
                if !leading.is_empty() {
                    tracing::warn!(
                        groups = ?leading,
                        "drain: leadership not handed over in time; the groups will elect"
                    );
                }
                break;
            }
            if hand_over && asked.is_none_or(|t| now >= t + HAND_OVER_RETRY) {
                let _ = self.shared.inbox.send(Event::HandOver);
                asked = Some(now);
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
        let _ = self.stop.send(true);
        // Peer streams never end on their own: give the server a moment to
        // finish answering, then close what is left.
        if tokio::time::timeout(SERVER_STOP_GRACE, &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
        for t in &self.tasks {
            t.abort();
        }
        if let Some(h) = self.handle.take() {
            let _ = tokio::task::spawn_blocking(move || h.shutdown()).await;
        }
    }

    /// Creates a replica of a new group on this node from `seed`
    /// ([`Event::AddReplica`]); returns once its initial state is durable
    /// and the replica runs.
    pub async fn add_replica(
        &self,
        seed: runtime::ReplicaSeed,
    ) -> Result<(), runtime::ReplicaError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.shared
            .inbox
            .send(Event::AddReplica {
                seed: Box::new(seed),
                reply,
            })
            .map_err(|_| runtime::ReplicaError::Log("the loop has stopped".into()))?;
        rx.await
            .map_err(|_| runtime::ReplicaError::Log("the loop has stopped".into()))?
    }

    /// Drops this node's replica of `group` ([`Event::DropReplica`]);
    /// returns once the drop is durable.
    pub async fn drop_replica(&self, group: GroupId) -> Result<(), runtime::ReplicaError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.shared
            .inbox
            .send(Event::DropReplica { group, reply })
            .map_err(|_| runtime::ReplicaError::Log("the loop has stopped".into()))?;
        rx.await
            .map_err(|_| runtime::ReplicaError::Log("the loop has stopped".into()))?
    }

    /// The views of the replicas this node hosts, as last published.
    pub fn replicas(&self) -> BTreeMap<GroupId, runtime::GroupView> {
        self.shared.views.read().clone()
    }

    /// The groups whose replica on this node leads, as last published.
    pub fn leading_groups(&self) -> Vec<GroupId> {
        self.shared
            .views
            .read()
            .values()
            .filter(|v| v.leading || v.leader == Some(self.shared.cfg.node_id))
            .map(|v| v.group)
            .collect()
    }

    /// Stops at once, as a crash would (for tests): nothing is drained.
    pub fn kill(mut self) {
        let _ = self.stop.send(true);
        self.server.abort();
        for t in &self.tasks {
            t.abort();
        }
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
    }
}

/// Says hello to every peer for a short while; a peer of another cluster
/// stops the start.
async fn check_peers(
    me: &Identity,
    channels: &HashMap<NodeId, tonic::transport::Channel>,
    clock: &dyn TrueTime,
    epsilon: u64,
    liveness: &Liveness,
) -> Result<(), StartError> {
    let deadline = tokio::time::Instant::now() + STARTUP_HELLO_WINDOW;
    let mut waiting: Vec<NodeId> = channels.keys().copied().collect();
    while !waiting.is_empty() && tokio::time::Instant::now() < deadline {
        let mut still = Vec::new();
        for id in waiting {
            match peer::hello(me, channels[&id].clone(), clock, epsilon).await {
                Ok(a) => liveness.heard(id, a.metrics_address),
                Err(HelloError::Mismatch(m)) => {
                    return Err(StartError::ClusterMismatch(format!(
                        "configured peer node {id} answered: {m}"
                    )));
                }
                Err(HelloError::Unreachable(_)) => still.push(id),
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Samples the peers' clocks every [`CLOCK_CHECK_INTERVAL`] and tells the
/// loop when this node's clock leaves (or re-enters) its bound.
async fn clock_check(me: Identity, clock: Arc<dyn TrueTime>, epsilon: u64, shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(CLOCK_CHECK_INTERVAL);
    loop {
        ticker.tick().await;
        let mut samples = Vec::new();
        // Read each round: nodes added at run time are checked too.
        for (id, chan) in shared.members.channels() {
            match peer::hello(&me, chan, clock.as_ref(), epsilon).await {
                Ok(a) => {
                    shared.liveness.heard(id, a.metrics_address);
                    samples.push(a.sample);
                }
                Err(HelloError::Mismatch(m)) => {
                    tracing::error!(message = %m, "a peer belongs to another cluster");
                }
                Err(HelloError::Unreachable(_)) => {}
            }
        }
        let verdict = peer::clock_verdict(&samples, epsilon);
        let ok = verdict.is_ok();
        let was = shared.clock_ok.load(Ordering::Relaxed);
        *shared.clock_detail.lock() = verdict.clone().err().unwrap_or_default();
        if ok != was {
            match &verdict {
                Err(why) => tracing::error!(%why, "clock out of bound: refusing to lead or serve"),
                Ok(()) => tracing::info!("clock back within bound"),
            }
            let reason = verdict.err().unwrap_or_default();
            let _ = shared.inbox.send(Event::ClockHealth { ok, reason });
        }
    }
}

/// The configuration of this node's replicas, its group id and voters
/// left to fill in: the node's Paxos, read and compaction settings.
fn replica_template(cfg: &NodeConfig, opts: &StartOptions) -> meridian_txn::Config {
    let mut p = meridian_paxos::Config::new(cfg.node_id, Vec::new());
    p.cluster_id = cfg.cluster_id;
    let ms = 1_000_000;
    p.lease_nanos = cfg.paxos.lease_ms * ms;
    p.heartbeat_nanos = cfg.paxos.heartbeat_ms * ms;
    p.election_min_nanos = cfg.paxos.election_min_ms * ms;
    p.election_max_nanos = cfg.paxos.election_max_ms * ms;
    let mut c = meridian_txn::Config::new(0, p);
    c.read_lead_nanos = cfg.reads.lead_ms * ms;
    c.max_read_lead_nanos = cfg.reads.max_lead_ms * ms;
    c.birth = cfg.birth_ns.map(meridian_truetime::Timestamp::from_nanos);
    if let Some(n) = opts.compact_every {
        c.compact_every = n;
    }
    c
}
