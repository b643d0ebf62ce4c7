//! An in-process fake of a Meridian cluster for the client's tests: tonic
//! servers implementing the client API ([`pb::meridian_server::Meridian`])
//! over one shared in-memory map, with the routing behaviour of real nodes
//! (cluster id and epoch checks, `NotLeader` with a hint, `WrongGroup`,
//! `NoReplica`) and scripted faults (an error answer, a lost answer after
//! the request took effect, a dropped request, a delay). It records every
//! request so tests can assert what was sent — and that nothing was.
//!
//! It is no transaction engine: no locks, no MVCC history (a snapshot read
//! sees the newest values), commits apply at once. Not part of the API.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use meridian_participant::TxnId;
use meridian_proto::RemoteError;
use meridian_proto::convert::{Answer, txn_to_pb};
use meridian_proto::pb;
use meridian_proto::pb::meridian_server::{Meridian, MeridianServer};
use meridian_txn::{AbortReason, GroupId, TxnError};
use tonic::{Request, Response, Status};

use crate::NodeId;

/// An RPC of the client API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rpc {
    /// `Begin`.
    Begin,
    /// `Read`.
    Read,
    /// `Scan`.
    Scan,
    /// `Commit`.
    Commit,
    /// `Abort`.
    Abort,
    /// `Heartbeat`.
    Heartbeat,
    /// `ReadOnly`.
    ReadOnly,
    /// `TxnStatus`.
    TxnStatus,
    /// `Now`.
    Now,
    /// `Status`.
    Status,
}

/// A request the fake received, as sent.
#[derive(Clone, Debug)]
pub enum Logged {
    /// A `Begin`.
    Begin(pb::BeginRequest),
    /// A `Read`.
    Read(pb::ReadRequest),
    /// A `Scan`.
    Scan(pb::ScanRequest),
    /// A `Commit`.
    Commit(pb::CommitRequest),
    /// An `Abort`.
    Abort(pb::AbortRequest),
    /// A `Heartbeat`.
    Heartbeat(pb::HeartbeatRequest),
    /// A `ReadOnly`.
    ReadOnly(pb::ReadOnlyRequest),
    /// A `TxnStatus`.
    TxnStatus(pb::TxnStatusRequest),
    /// A `Now`.
    Now,
    /// A `Status`.
    Status,
}

impl Logged {
    /// Which RPC.
    pub fn rpc(&self) -> Rpc {
        match self {
            Logged::Begin(_) => Rpc::Begin,
            Logged::Read(_) => Rpc::Read,
            Logged::Scan(_) => Rpc::Scan,
            Logged::Commit(_) => Rpc::Commit,
            Logged::Abort(_) => Rpc::Abort,
            Logged::Heartbeat(_) => Rpc::Heartbeat,
            Logged::ReadOnly(_) => Rpc::ReadOnly,
            Logged::TxnStatus(_) => Rpc::TxnStatus,
            Logged::Now => Rpc::Now,
            Logged::Status => Rpc::Status,
        }
    }
}

/// One request received: by which node.
#[derive(Clone, Debug)]
pub struct Call {
    /// The node that received it.
    pub node: NodeId,
    /// The request.
    pub req: Logged,
    /// Whether it carried a deadline (`grpc-timeout`).
    pub deadline: bool,
}

/// What a scripted fault does.
#[derive(Clone, Debug)]
pub enum FaultAction {
    /// Answer this error instead of serving.
    Error(RemoteError),
    /// Serve the request, then lose the answer (a broken connection).
    Lose,
    /// Drop the request unserved (a broken connection).
    Drop,
    /// Serve after this delay.
    Delay(Duration),
    /// Break the `Calls` stream the request came on, unanswered (a
    /// connection reset under every call in flight on it); on a unary call,
    /// as [`FaultAction::Drop`].
    BreakStream,
}

/// A fault for the next `times` requests of `rpc` (at `node`, or any).
#[derive(Clone, Debug)]
pub struct Fault {
    /// The RPC it hits.
    pub rpc: Rpc,
    /// The node it hits; `None`: any.
    pub node: Option<NodeId>,
    /// What it does.
    pub action: FaultAction,
    /// How many requests it hits.
    pub times: usize,
}

/// A group of the fake cluster.
#[derive(Clone, Debug)]
pub struct FakeGroup {
    /// Its id.
    pub id: GroupId,
    /// Range start.
    pub start: Bytes,
    /// Range end (`None`: unbounded).
    pub end: Option<Bytes>,
    /// Replica nodes.
    pub replicas: Vec<NodeId>,
    /// The node that actually leads.
    pub leader: NodeId,
    /// The leader `Status` reports (may be stale or wrong).
    pub hint: Option<NodeId>,
    /// The leader's term.
    pub term: u64,
}

impl FakeGroup {
    fn contains(&self, key: &[u8]) -> bool {
        key >= &self.start[..] && self.end.as_ref().is_none_or(|e| key < &e[..])
    }
}

/// A transaction as the fake knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeTxnState {
    /// Begun, not ended.
    InProgress,
    /// Committed at this timestamp.
    Committed(u64),
    /// Aborted.
    Aborted,
}

/// The whole fake cluster's state, shared by its nodes.
#[derive(Debug)]
pub struct FakeState {
    /// The cluster id.
    pub cluster_id: u64,
    /// The configuration epoch.
    pub epoch: u64,
    /// Nodes and addresses (dead ones included).
    pub nodes: Vec<(NodeId, String)>,
    /// Groups in key order.
    pub groups: Vec<FakeGroup>,
    /// The committed data.
    pub data: BTreeMap<Bytes, Bytes>,
    /// The clock (ns), advanced by commits and `Now`.
    pub clock: u64,
    /// Transactions and their priorities.
    pub txns: HashMap<TxnId, (FakeTxnState, u64)>,
    /// Ids reserved at a `Begin` that no request has begun yet.
    pub reserved: std::collections::HashSet<TxnId>,
    next_seq: u64,
    /// Scripted faults, consumed in order.
    pub faults: Vec<Fault>,
    /// Every request received.
    pub calls: Vec<Call>,
    /// `Calls` streams opened, at any node.
    pub streams: usize,
    /// The number of calls in each batch received, in order of arrival.
    pub batches: Vec<usize>,
}

impl FakeState {
    fn group(&self, id: GroupId) -> Option<&FakeGroup> {
        self.groups.iter().find(|g| g.id == id)
    }

    fn take_fault(&mut self, rpc: Rpc, node: NodeId) -> Option<FaultAction> {
        let i = self
            .faults
            .iter()
            .position(|f| f.rpc == rpc && f.node.is_none_or(|n| n == node) && f.times > 0)?;
        self.faults[i].times -= 1;
        let action = self.faults[i].action.clone();
        if self.faults[i].times == 0 {
            self.faults.remove(i);
        }
        Some(action)
    }

    /// The header and group checks of a real node; `leader_only` for the
    /// requests only a leader serves.
    fn check(
        &self,
        node: NodeId,
        header: Option<&pb::Header>,
        group: Option<GroupId>,
        leader_only: bool,
    ) -> Result<(), RemoteError> {
        let h = header.copied().unwrap_or_default();
        if h.cluster_id != self.cluster_id {
            return Err(RemoteError::ClusterMismatch {
                expected: self.cluster_id,
                got: h.cluster_id,
            });
        }
        if h.epoch < self.epoch {
            return Err(RemoteError::StaleEpoch { epoch: self.epoch });
        }
        if let Some(g) = group {
            let Some(grp) = self.group(g).filter(|grp| grp.replicas.contains(&node)) else {
                return Err(RemoteError::NoReplica { group: g });
            };
            if leader_only && grp.leader != node {
                return Err(RemoteError::Txn(TxnError::NotLeader {
                    leader: Some(grp.leader),
                }));
            }
        }
        Ok(())
    }

    fn keys_in(&self, group: GroupId, keys: &[&Bytes]) -> Result<(), RemoteError> {
        let g = self.group(group).expect("checked");
        if keys.iter().all(|k| g.contains(k)) {
            Ok(())
        } else {
            Err(RemoteError::WrongGroup { group })
        }
    }

    fn range_in(
        &self,
        group: GroupId,
        start: &Bytes,
        end: Option<&Bytes>,
    ) -> Result<(), RemoteError> {
        let g = self.group(group).expect("checked");
        let start_ok = start[..] >= g.start[..];
        let end_ok = match (end, &g.end) {
            (_, None) => true,
            (Some(e), Some(ge)) => e <= ge,
            (None, Some(_)) => false,
        };
        if start_ok && end_ok {
            Ok(())
        } else {
            Err(RemoteError::WrongGroup { group })
        }
    }

    fn new_txn(&mut self, group: GroupId, node: NodeId, priority: Option<u64>) -> TxnId {
        let term = self.group(group).map_or(1, |g| g.term);
        self.next_seq += 1;
        let txn = TxnId::new(
            (term << (meridian_txn::ORIGIN_GROUP_BITS + meridian_txn::ORIGIN_NODE_BITS))
                | (node << meridian_txn::ORIGIN_GROUP_BITS)
                | group,
            self.next_seq,
        );
        self.clock += 1;
        let p = priority.unwrap_or(self.clock);
        self.txns.insert(txn, (FakeTxnState::InProgress, p));
        txn
    }

    /// Reserves `n` ids after `txn` (at most the nodes' 64): how many.
    fn reserve(&mut self, txn: TxnId, n: u32) -> u32 {
        let n = n.min(meridian_txn::MAX_RESERVE_PER_BEGIN);
        for i in 1..=u64::from(n) {
            self.reserved.insert(TxnId::new(txn.origin, txn.seq + i));
        }
        self.next_seq += u64::from(n);
        n
    }

    /// Begins a reserved id named by its first request, a guest's that
    /// has met no term (docs/design.md §5.1).
    fn begin_reserved(&mut self, txn: Option<&pb::TxnId>, guest: Option<&pb::Guest>) {
        let Some(t) = txn.map(|t| TxnId::new(t.origin, t.seq)) else {
            return;
        };
        if let Some(g) = guest.filter(|g| g.term.is_none()) {
            if self.reserved.remove(&t) {
                self.txns.insert(t, (FakeTxnState::InProgress, g.priority));
            }
        }
    }

    fn live_txn(&self, txn: Option<&pb::TxnId>) -> Result<TxnId, RemoteError> {
        let t = txn.map_or(TxnId::new(0, 0), |t| TxnId::new(t.origin, t.seq));
        match self.txns.get(&t) {
            Some((FakeTxnState::InProgress, _)) => Ok(t),
            _ => Err(RemoteError::Txn(TxnError::Aborted {
                txn: t,
                reason: AbortReason::Unknown,
            })),
        }
    }

    fn rows(&self, start: &Bytes, end: Option<&Bytes>, limit: u64) -> Vec<pb::Row> {
        self.data
            .range(start.clone()..)
            .take_while(|(k, _)| end.is_none_or(|e| *k < e))
            .take(limit as usize)
            .map(|(k, v)| pb::Row {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    }
}

/// One node of the fake cluster.
#[derive(Clone)]
struct FakeNode {
    id: NodeId,
    state: Arc<Mutex<FakeState>>,
    /// Breaks the node's `Calls` stream.
    breaks: Arc<tokio::sync::Notify>,
}

/// A fake cluster: live nodes serving on loopback, and its shared state.
pub struct FakeCluster {
    /// The shared state: inspect it, script faults, change the layout.
    pub state: Arc<Mutex<FakeState>>,
    addrs: Vec<String>,
    shutdown: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl FakeCluster {
    /// Starts `nodes` nodes (ids 1..=nodes) and `splits.len() + 1` groups
    /// (ids from 1) with ranges split at `splits`, each replicated on every
    /// node and led by node `(id - 1) % nodes + 1`.
    pub async fn start(nodes: usize, splits: &[&str]) -> FakeCluster {
        FakeCluster::start_with(nodes, splits, None).await
    }

    /// [`FakeCluster::start`], serving TLS (mutual, if `tls` names client
    /// CAs) when `tls` is given.
    pub async fn start_with(
        nodes: usize,
        splits: &[&str],
        tls: Option<tonic::transport::ServerTlsConfig>,
    ) -> FakeCluster {
        let mut listeners = Vec::new();
        let mut node_list = Vec::new();
        for i in 0..nodes {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind loopback");
            let addr: SocketAddr = l.local_addr().expect("local addr");
            node_list.push((i as u64 + 1, addr.to_string()));
            listeners.push(l);
        }
        let mut bounds: Vec<Bytes> = vec![Bytes::new()];
        bounds.extend(splits.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())));
        let groups = (0..bounds.len())
            .map(|i| {
                let leader = (i as u64 % nodes as u64) + 1;
                FakeGroup {
                    id: i as u64 + 1,
                    start: bounds[i].clone(),
                    end: bounds.get(i + 1).cloned(),
                    replicas: (1..=nodes as u64).collect(),
                    leader,
                    hint: Some(leader),
                    term: 1,
                }
            })
            .collect();
        let state = Arc::new(Mutex::new(FakeState {
            cluster_id: 0xC1,
            epoch: 1,
            nodes: node_list.clone(),
            groups,
            data: BTreeMap::new(),
            clock: 1_000_000,
            txns: HashMap::new(),
            reserved: std::collections::HashSet::new(),
            next_seq: 0,
            faults: Vec::new(),
            calls: Vec::new(),
            streams: 0,
            batches: Vec::new(),
        }));
        let mut shutdown = Vec::new();
        for (l, (id, _)) in listeners.into_iter().zip(&node_list) {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let node = FakeNode {
                id: *id,
                state: state.clone(),
                breaks: Arc::new(tokio::sync::Notify::new()),
            };
            let mut server = tonic::transport::Server::builder();
            if let Some(tls) = &tls {
                server = server.tls_config(tls.clone()).expect("server TLS");
            }
            tokio::spawn(async move {
                let incoming =
                    tonic::transport::server::TcpIncoming::from(l).with_nodelay(Some(true));
                let _ = server
                    .add_service(MeridianServer::new(node))
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = rx.await;
                    })
                    .await;
            });
            shutdown.push(tx);
        }
        FakeCluster {
            state,
            addrs: node_list.into_iter().map(|(_, a)| a).collect(),
            shutdown,
        }
    }

    /// The live nodes' `host:port` addresses.
    pub fn endpoints(&self) -> Vec<String> {
        self.addrs.clone()
    }

    /// The live nodes' addresses, comma-separated (for `--endpoints`).
    pub fn endpoints_arg(&self) -> String {
        self.addrs.join(",")
    }

    /// Locks the shared state.
    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state poisoned")
    }

    /// Adds a fault.
    pub fn fault(&self, rpc: Rpc, node: Option<NodeId>, action: FaultAction, times: usize) {
        self.state().faults.push(Fault {
            rpc,
            node,
            action,
            times,
        });
    }

    /// Requests received so far of `rpc`.
    pub fn count(&self, rpc: Rpc) -> usize {
        self.state()
            .calls
            .iter()
            .filter(|c| c.req.rpc() == rpc)
            .count()
    }

    /// Requests received so far other than `Status` and `Now`.
    pub fn data_calls(&self) -> usize {
        self.state()
            .calls
            .iter()
            .filter(|c| !matches!(c.req.rpc(), Rpc::Status | Rpc::Now))
            .count()
    }

    /// Every request received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_calls(&self) {
        self.state().calls.clear();
    }

    /// Adds a node to the membership, and to every group's replicas, whose
    /// address nothing listens on; answers its id.
    pub async fn add_dead_node(&self) -> NodeId {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = l.local_addr().expect("local addr").to_string();
        drop(l);
        let mut s = self.state();
        let id = s.nodes.len() as u64 + 1;
        s.nodes.push((id, addr));
        for g in &mut s.groups {
            g.replicas.insert(0, id);
        }
        id
    }

    /// Writes a value directly into the committed data.
    pub fn insert(&self, key: &str, value: &str) {
        self.state().data.insert(
            Bytes::copy_from_slice(key.as_bytes()),
            Bytes::copy_from_slice(value.as_bytes()),
        );
    }

    /// The committed value of `key`, as text.
    pub fn value(&self, key: &str) -> Option<String> {
        self.state()
            .data
            .get(key.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
    }
}

macro_rules! refuse {
    ($resp:ty, $e:expr) => {
        Ok(Response::new(<$resp>::failed(&$e)))
    };
}

/// What the fault machinery says before a request is served.
enum Gate {
    Serve { lose: bool },
    Refuse(RemoteError),
    Drop,
}

impl FakeNode {
    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state poisoned")
    }

    async fn gate(&self, logged: Logged, deadline: bool) -> Gate {
        let rpc = logged.rpc();
        let action = {
            let mut s = self.state();
            s.calls.push(Call {
                node: self.id,
                req: logged,
                deadline,
            });
            s.take_fault(rpc, self.id)
        };
        match action {
            None => Gate::Serve { lose: false },
            Some(FaultAction::Error(e)) => Gate::Refuse(e),
            Some(FaultAction::Lose) => Gate::Serve { lose: true },
            Some(FaultAction::Drop) => Gate::Drop,
            Some(FaultAction::BreakStream) => {
                self.breaks.notify_one();
                // The break reaches the client before this call would end.
                tokio::time::sleep(BREAK_GRACE).await;
                Gate::Drop
            }
            Some(FaultAction::Delay(d)) => {
                tokio::time::sleep(d).await;
                Gate::Serve { lose: false }
            }
        }
    }
}

/// How long a call that breaks its stream waits before it ends itself.
const BREAK_GRACE: Duration = Duration::from_millis(100);

fn lost() -> Status {
    Status::unavailable("fake: connection lost")
}

/// Serves a request through its gate: refusals and drops as scripted, the
/// answer of `serve` otherwise (lost if so scripted).
macro_rules! serve {
    ($self:ident, $logged:expr, $deadline:expr, $resp:ty, $serve:expr) => {{
        match $self.gate($logged, $deadline).await {
            Gate::Refuse(e) => refuse!($resp, e),
            Gate::Drop => Err(lost()),
            Gate::Serve { lose } => {
                let r: Result<$resp, RemoteError> = $serve;
                let r = match r {
                    Ok(r) => r,
                    Err(e) => <$resp>::failed(&e),
                };
                if lose {
                    Err(lost())
                } else {
                    Ok(Response::new(r))
                }
            }
        }
    }};
}

#[tonic::async_trait]
impl Meridian for FakeNode {
    type CallsStream = meridian_proto::calls::ReplyStream;

    async fn calls(
        &self,
        request: Request<tonic::Streaming<pb::CallBatch>>,
    ) -> Result<Response<Self::CallsStream>, Status> {
        let state = self.state.clone();
        state.lock().expect("fake state poisoned").streams += 1;
        // Each batch that arrives is counted by its calls.
        let inbound = tokio_stream::StreamExt::map(request.into_inner(), move |b| {
            if let Ok(b) = &b {
                let mut s = state.lock().expect("fake state poisoned");
                s.batches.push(b.calls.len());
            }
            b
        });
        let mut replies =
            meridian_proto::calls::serve(Arc::new(self.clone()), inbound, std::future::pending());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let breaks = self.breaks.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = tokio_stream::StreamExt::next(&mut replies) => {
                        let Some(r) = r else { return };
                        if tx.send(r).is_err() {
                            return;
                        }
                    }
                    () = breaks.notified() => {
                        let _ = tx.send(Err(Status::unavailable("fake: stream broken")));
                        return;
                    }
                }
            }
        });
        Ok(Response::new(
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
        ))
    }

    async fn begin(
        &self,
        request: Request<pb::BeginRequest>,
    ) -> Result<Response<pb::BeginResponse>, Status> {
        let deadline = request.metadata().get("grpc-timeout").is_some();
        let r = request.into_inner();
        serve!(self, Logged::Begin(r), deadline, pb::BeginResponse, {
            let mut s = self.state();
            s.check(self.id, r.header.as_ref(), Some(r.group), true)
                .map(|()| {
                    let txn = s.new_txn(r.group, self.id, r.priority);
                    let priority = s.txns[&txn].1;
                    let reserved = s.reserve(txn, r.reserve);
                    pb::BeginResponse {
                        error: None,
                        txn: Some(txn_to_pb(txn)),
                        priority,
                        reserved,
                    }
                })
        })
    }

    async fn read(
        &self,
        request: Request<pb::ReadRequest>,
    ) -> Result<Response<pb::ReadResponse>, Status> {
        let deadline = request.metadata().get("grpc-timeout").is_some();
        let r = request.into_inner();
        serve!(self, Logged::Read(r.clone()), deadline, pb::ReadResponse, {
            let mut s = self.state();
            s.check(self.id, r.header.as_ref(), Some(r.group), true)
                .and_then(|()| s.keys_in(r.group, &r.keys.iter().collect::<Vec<_>>()))
                .map(|()| s.begin_reserved(r.txn.as_ref(), r.guest.as_ref()))
                .and_then(|()| s.live_txn(r.txn.as_ref()))
                .map(|_| pb::ReadResponse {
                    error: None,
                    values: r
                        .keys
                        .iter()
                        .map(|k| pb::MaybeValue {
                            value: s.data.get(k).cloned(),
                        })
                        .collect(),
                    term: s.group(r.group).map_or(0, |g| g.term),
                })
        })
    }

    async fn scan(
        &self,
        request: Request<pb::ScanRequest>,
    ) -> Result<Response<pb::ScanResponse>, Status> {
        let deadline = request.metadata().get("grpc-timeout").is_some();
        let r = request.into_inner();
        serve!(self, Logged::Scan(r.clone()), deadline, pb::ScanResponse, {
            let mut s = self.state();
            s.check(self.id, r.header.as_ref(), Some(r.group), true)
                .and_then(|()| s.range_in(r.group, &r.start, r.end.as_ref()))
                .map(|()| s.begin_reserved(r.txn.as_ref(), r.guest.as_ref()))
                .and_then(|()| s.live_txn(r.txn.as_ref()))
                .map(|_| pb::ScanResponse {
                    error: None,
                    rows: s.rows(&r.start, r.end.as_ref(), r.limit),
                    term: s.group(r.group).map_or(0, |g| g.term),
                })
        })
    }

    async fn commit(
        &self,
        request: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let deadline = request.metadata().get("grpc-timeout").is_some();
        let r = request.into_inner();
        serve!(
            self,
            Logged::Commit(r.clone()),
            deadline,
            pb::CommitResponse,
            {
                let mut s = self.state();
                (|| {
                    s.check(self.id, r.header.as_ref(), Some(r.group), true)?;
                    s.keys_in(
                        r.group,
                        &r.writes.iter().map(|w| &w.key).collect::<Vec<_>>(),
                    )?;
                    for p in &r.participants {
                        if s.group(p.group).is_none() || p.group == r.group {
                            return Err(RemoteError::Invalid(format!(
                                "bad participant {}",
                                p.group
                            )));
                        }
                        s.keys_in(
                            p.group,
                            &p.writes.iter().map(|w| &w.key).collect::<Vec<_>>(),
                        )?;
                    }
                    let txn = match &r.txn {
                        None => s.new_txn(r.group, self.id, None),
                        Some(t) => {
                            let t = TxnId::new(t.origin, t.seq);
                            match s.txns.get(&t) {
                                Some((FakeTxnState::Committed(ts), _)) => {
                                    // A retried commit: the same answer.
                                    return Ok(pb::CommitResponse {
                                        error: None,
                                        commit_ts: *ts,
                                        txn: Some(txn_to_pb(t)),
                                    });
                                }
                                Some((FakeTxnState::InProgress, _)) => t,
                                _ => {
                                    return Err(RemoteError::Txn(TxnError::Aborted {
                                        txn: t,
                                        reason: AbortReason::Unknown,
                                    }));
                                }
                            }
                        }
                    };
                    s.clock += 1000;
                    let ts = s.clock;
                    let writes: Vec<pb::Write> = r
                        .writes
                        .iter()
                        .chain(r.participants.iter().flat_map(|p| p.writes.iter()))
                        .cloned()
                        .collect();
                    for w in writes {
                        match w.value {
                            Some(v) => s.data.insert(w.key, v),
                            None => s.data.remove(&w.key),
                        };
                    }
                    if let Some(e) = s.txns.get_mut(&txn) {
                        e.0 = FakeTxnState::Committed(ts);
                    }
                    Ok(pb::CommitResponse {
                        error: None,
                        commit_ts: ts,
                        txn: Some(txn_to_pb(txn)),
                    })
                })()
            }
        )
    }

    async fn abort(
        &self,
        request: Request<pb::AbortRequest>,
    ) -> Result<Response<pb::AbortResponse>, Status> {
        let deadline = request.metadata().get("grpc-timeout").is_some();
        let r = request.into_inner();
        serve!(self, Logged::Abort(r), deadline, pb::AbortResponse, {
            let mut s = self.state();
            s.check(self.id, r.header.as_ref(), Some(r.group), true)
                .and_then(|()| {
                    let t = r
                        .txn
                        .map_or(TxnId::new(0, 0), |t| TxnId::new(t.origin, t.seq));
                    match s.txns.get_mut(&t) {
                        Some((FakeTxnState::Committed(_), _)) => {
                            Err(RemoteError::Txn(TxnError::TooLateToAbort { txn: t }))
                        }
                        Some(e) => {
                            e.0 = FakeTxnState::Aborted;
                            Ok(pb::AbortResponse::default())
                        }
                        None => Ok(pb::AbortResponse::default()),
                    }
                })
        })
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let deadline = request.metadata().get("grpc-timeout").is_some();
        let r = request.into_inner();
        serve!(
            self,
            Logged::Heartbeat(r),
            deadline,
            pb::HeartbeatResponse,
            {
                let s = self.state();
                s.check(self.id, r.header.as_ref(), Some(r.group), true)
                    .and_then(|()| s.live_txn(r.txn.as_ref()))
                    .map(|_| pb::HeartbeatResponse::default())
            }
        )
    }

    async fn read_only(
        &self,
        request: Request<pb::ReadOnlyRequest>,
    ) -> Result<Response<pb::ReadOnlyResponse>, Status> {
        use pb::read_only_request::At;
        use pb::read_op::Op;
        use pb::read_result::Result as R;
        let deadline = request.metadata().get("grpc-timeout").is_some();
        let r = request.into_inner();
        serve!(
            self,
            Logged::ReadOnly(r.clone()),
            deadline,
            pb::ReadOnlyResponse,
            {
                let s = self.state();
                (|| {
                    s.check(self.id, r.header.as_ref(), Some(r.group), false)?;
                    let mut results = Vec::new();
                    for op in &r.reads {
                        match &op.op {
                            Some(Op::Get(k)) => {
                                s.keys_in(r.group, &[k])?;
                                results.push(pb::ReadResult {
                                    result: Some(R::Value(pb::MaybeValue {
                                        value: s.data.get(k).cloned(),
                                    })),
                                });
                            }
                            Some(Op::Scan(sc)) => {
                                s.range_in(r.group, &sc.start, sc.end.as_ref())?;
                                results.push(pb::ReadResult {
                                    result: Some(R::Rows(pb::Rows {
                                        rows: s.rows(&sc.start, sc.end.as_ref(), sc.limit),
                                    })),
                                });
                            }
                            None => return Err(RemoteError::Invalid("missing read".into())),
                        }
                    }
                    let read_ts = match &r.at {
                        Some(At::Exact(ts)) => *ts,
                        _ => s.clock,
                    };
                    Ok(pb::ReadOnlyResponse {
                        error: None,
                        read_ts,
                        results,
                    })
                })()
            }
        )
    }

    async fn txn_status(
        &self,
        request: Request<pb::TxnStatusRequest>,
    ) -> Result<Response<pb::TxnStatusResponse>, Status> {
        use pb::txn_status_response::Status as S;
        let deadline = request.metadata().get("grpc-timeout").is_some();
        let r = request.into_inner();
        serve!(
            self,
            Logged::TxnStatus(r),
            deadline,
            pb::TxnStatusResponse,
            {
                let s = self.state();
                s.check(self.id, r.header.as_ref(), Some(r.group), true)
                    .map(|()| {
                        let t = r
                            .txn
                            .map_or(TxnId::new(0, 0), |t| TxnId::new(t.origin, t.seq));
                        let status = match s.txns.get(&t) {
                            Some((FakeTxnState::Committed(ts), _)) => S::Committed(*ts),
                            Some((FakeTxnState::Aborted, _)) => S::Aborted(pb::Empty {}),
                            Some((FakeTxnState::InProgress, _)) => S::InProgress(pb::Empty {}),
                            None => S::Unknown(pb::Empty {}),
                        };
                        pb::TxnStatusResponse {
                            error: None,
                            status: Some(status),
                        }
                    })
            }
        )
    }

    async fn now(
        &self,
        request: Request<pb::NowRequest>,
    ) -> Result<Response<pb::NowResponse>, Status> {
        let deadline = request.metadata().get("grpc-timeout").is_some();
        let r = request.into_inner();
        serve!(self, Logged::Now, deadline, pb::NowResponse, {
            let mut s = self.state();
            s.check(self.id, r.header.as_ref(), None, false).map(|()| {
                s.clock += 1;
                pb::NowResponse {
                    error: None,
                    earliest: s.clock - 10,
                    latest: s.clock + 10,
                }
            })
        })
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let deadline = request.metadata().get("grpc-timeout").is_some();
        let r = request.into_inner();
        serve!(self, Logged::Status, deadline, pb::StatusResponse, {
            let s = self.state();
            let h = r.header.unwrap_or_default();
            let discovery = h.cluster_id == 0 && h.epoch == 0;
            let checked = if discovery {
                Ok(())
            } else {
                s.check(self.id, Some(&h), None, false)
            };
            checked.map(|()| pb::StatusResponse {
                error: None,
                cluster_id: s.cluster_id,
                epoch: s.epoch,
                node: self.id,
                nodes: s
                    .nodes
                    .iter()
                    .map(|(id, address)| pb::NodeInfo {
                        id: *id,
                        address: address.clone(),
                        metrics_address: Some(format!("metrics-of-{id}:9")),
                        liveness: if *id == self.id {
                            pb::Liveness::Self_
                        } else {
                            pb::Liveness::Live
                        } as i32,
                        last_contact_ms: Some(if *id == self.id { 0 } else { 250 }),
                    })
                    .collect(),
                groups: s
                    .groups
                    .iter()
                    .map(|g| pb::GroupInfo {
                        id: g.id,
                        start: g.start.clone(),
                        end: g.end.clone(),
                        replicas: g.replicas.clone(),
                        leader: g.hint,
                        local_leader: g.leader == self.id,
                        chosen: 10,
                        applied: 10,
                        t_safe: s.clock,
                        active_txns: 0,
                        local_replica: g.replicas.contains(&self.id),
                        role: if !g.replicas.contains(&self.id) {
                            String::new()
                        } else if g.leader == self.id {
                            "leader".into()
                        } else {
                            "follower".into()
                        },
                        safe_time_lag_micros: g.replicas.contains(&self.id).then_some(10),
                        bytes: g.replicas.contains(&self.id).then_some(0),
                        generation: Some(1),
                    })
                    .collect(),
                now_earliest: s.clock - 10,
                now_latest: s.clock + 10,
                clock_ok: true,
                clock_detail: "fake clock".into(),
                version: "fake".into(),
            })
        })
    }
}
