//! The Meridian client library (`meridian_client`, docs/design.md §7);
//! operations such as replacing a node online are in [`admin`], and the
//! exit codes the command-line tools map its errors to in [`exit`].
//!
//! The crate depends on the wire protocol (`meridian-proto`), tokio and
//! tonic only: an application that uses it does not build the server. The
//! `meridian` binary (server, local cluster, admin and client subcommands)
//! is the `meridian-cli` crate.
//!
//! A [`Client`] learns the cluster from any node (`Status`): its id and
//! configuration epoch, its nodes, and its groups with their key ranges,
//! replicas and leaders. It routes each request by key to the group that
//! holds it and to that group's leader (or, for lock-free reads, any
//! replica), follows "not the leader" hints, refreshes the range map when a
//! node says it is stale, and backs off when a group is busy.
//!
//! Read-write transactions (docs/design.md §5.1, §5.4) run in
//! [`Client::transaction`]: writes are buffered in the client and sent at
//! commit, reads see the transaction's own writes, and a retryable failure
//! (a wound, an OCC conflict, a leader change) runs the closure again as a
//! new attempt with the first attempt's wound-wait priority (Spanner
//! §4.2.1). A commit whose outcome could not be learned is reported as
//! [`Error::OutcomeUnknown`] — never as success or failure, and never
//! retried as a new attempt. The closure is an async closure borrowing the
//! transaction (`async |txn| { .. }`); [`Client::transact`] takes one that
//! fails with the application's own error type ([`TransactError`]), whose
//! own errors are never retried. Keys and values are [`IntoBytes`]: owned
//! or borrowed bytes and text. A [`Txn`] dropped without commit or abort
//! is aborted in the background.
//!
//! `client/examples/bank.rs` is a small application: concurrent transfers
//! with the bank's own error for insufficient funds, on an embedded
//! cluster (`cargo run -p meridian-client --example bank`) or a running one
//! (`-- --endpoints HOST:PORT,...`).
//!
//! Lock-free reads (docs/design.md §5.2, §5.3): [`Client::read_only`]
//! (strong), [`Client::snapshot_read`] and [`Client::read_stale`], served
//! by any replica.
//!
//! The limits of docs/design.md §6 (key 1–4096 bytes, value ≤ 256 KiB,
//! ≤ 1000 operations per transaction) are checked in the client, with the
//! core's own checks, before anything is sent. Keys below `b"\x00\x01"`
//! (the system keyspace) belong to the range directory ([`directory`]):
//! requests naming one are refused with [`Error::SystemKey`], and a scan
//! from the first key starts past them.
//!
//! This example starts three real nodes in this process
//! (`meridian_node::local::LocalCluster`, from the `meridian-node` crate:
//! each with its own write-ahead log and gRPC server on loopback), writes
//! across two groups in one transaction, and reads both keys back in a
//! strong read-only transaction:
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use meridian_client::{Client, ReadOp, ReadResult};
//! use meridian_node::local::{LocalCluster, LocalOptions};
//!
//! let cluster = LocalCluster::start(LocalOptions::default()).await?;
//! cluster.wait_for_leaders(std::time::Duration::from_secs(30)).await?;
//! let client = Client::connect(cluster.endpoints()).await?;
//!
//! // "Apple" and "apple" live in different groups: a two-phase commit.
//! let (old, committed) = client
//!     .transaction(async |txn| {
//!         let old = txn.get("Apple").await?;
//!         txn.put("Apple", "red")?;
//!         txn.put("apple", "green")?;
//!         Ok(old)
//!     })
//!     .await?;
//! assert_eq!(old, None);
//!
//! let read = client
//!     .read_only(vec![ReadOp::Get("Apple".into()), ReadOp::Get("apple".into())])
//!     .await?;
//! assert!(read.read_ts >= committed.commit_ts);
//! assert_eq!(read.results[0], ReadResult::Value(Some("red".into())));
//! assert_eq!(read.results[1], ReadResult::Value(Some("green".into())));
//! cluster.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

// The README's client snippet is this crate's doc-test: it compiles as
// shown there.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

pub mod admin;
pub mod directory;
mod error;
pub mod exit;
mod keys;
mod options;
mod pipe;
mod route;
/// An in-process fake cluster for tests (cargo feature `testing`; not part
/// of the API).
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
mod txn;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use meridian_proto::convert::{read_at_to_pb, read_op_to_pb, read_result_from_pb, txn_to_pb};
use meridian_proto::pb;

pub use error::{Error, TransactError};
pub use keys::{IntoBytes, KeyRange};
pub use meridian_participant::TxnId;
pub use meridian_proto::RemoteError;
pub use meridian_truetime::{MAX_CLOCK_DRIFT_PPM, Timestamp, TtInterval};
use meridian_truetime::{RawInstant, aged_latest_nanos};
pub use meridian_txn::api::{MAX_KEY_BYTES, MAX_TXN_OPERATIONS, MAX_VALUE_BYTES};
pub use meridian_txn::{AbortReason, CcMode, GroupId, InvalidRequest, ReadAt, ReadOp, ReadResult};
pub use options::{ClientOptions, DEFAULT_RESERVE_IDS, TlsOptions, TxnOptions};
pub use route::GroupInfo;
pub use txn::{Committed, Txn};

use route::{Inner, Resend, Route};

/// A node's id.
pub type NodeId = u64;

/// A connection to a Meridian cluster. Cheap to clone; every clone shares
/// the range map and the per-node connections, and may be used from many
/// tasks at once.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.inner.view();
        f.debug_struct("Client")
            .field("cluster_id", &v.cluster_id)
            .field("epoch", &v.epoch)
            .field("nodes", &v.nodes.len())
            .field("groups", &v.groups.len())
            .finish()
    }
}

/// What became of a transaction, as its home group's leader knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    /// Committed at this timestamp.
    Committed {
        /// The commit timestamp.
        commit_ts: Timestamp,
    },
    /// Aborted: nothing it wrote is visible.
    Aborted,
    /// Still running or committing.
    InProgress,
    /// The leader has no record of it (yet).
    Unknown,
}

/// The answer to a lock-free read: one result per [`ReadOp`], in order,
/// all at `read_ts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOnlyResult {
    /// The timestamp every read saw the database at.
    pub read_ts: Timestamp,
    /// One result per read asked for.
    pub results: Vec<ReadResult>,
}

/// One group as a node reports it in [`Client::status`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// Range, replicas and leader.
    pub info: GroupInfo,
    /// Whether the answering node's replica leads the group and serves.
    pub local_leader: bool,
    /// Whether the answering node hosts a replica of the group (a voter,
    /// or one waiting to be added).
    pub local_replica: bool,
    /// The answering node's replica: slots chosen.
    pub chosen: u64,
    /// The answering node's replica: slots applied.
    pub applied: u64,
    /// The answering node's replica: its safe time.
    pub t_safe: Timestamp,
    /// Transactions active at the answering node's replica.
    pub active_txns: u64,
    /// The answering node's replica's role; `None` without a local
    /// replica (or from a node that does not report it).
    pub role: Option<ReplicaRole>,
    /// How far the answering node's replica's safe time trails its clock;
    /// `None` without a local replica or before it has a safe time.
    pub safe_time_lag: Option<Duration>,
    /// The answering node's replica's size: bytes of the newest version
    /// of each key that is not a delete (key + value); `None` without a
    /// local replica (or from a node that does not report it).
    pub bytes: Option<u64>,
    /// The range's generation (1 as `cluster init` laid it out); `None`
    /// from a node that does not report it.
    pub generation: Option<u64>,
}

/// The role of a group replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaRole {
    /// It leads the group.
    Leader,
    /// It is trying to become the leader.
    Candidate,
    /// It follows a leader.
    Follower,
    /// It is not (yet) a voter: a replica waiting to be added.
    Learner,
}

impl ReplicaRole {
    /// The role's name: `leader`, `candidate`, `follower`, `learner`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaRole::Leader => "leader",
            ReplicaRole::Candidate => "candidate",
            ReplicaRole::Follower => "follower",
            ReplicaRole::Learner => "learner",
        }
    }

    fn from_name(name: &str) -> Option<ReplicaRole> {
        match name {
            "leader" => Some(ReplicaRole::Leader),
            "candidate" => Some(ReplicaRole::Candidate),
            "follower" => Some(ReplicaRole::Follower),
            "learner" => Some(ReplicaRole::Learner),
            _ => None,
        }
    }
}

/// A node's liveness as the node that answered a status sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// The answering node itself.
    Answering,
    /// It answered the answering node's hello (every second) recently.
    Live,
    /// Not heard from recently, or never.
    Down,
    /// Not reported (the answering node does not say).
    Unknown,
}

impl Liveness {
    /// The state's name: `self`, `live`, `down`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Answering => "self",
            Liveness::Live => "live",
            Liveness::Down => "down",
            Liveness::Unknown => "unknown",
        }
    }
}

/// One node as a node reports it in [`Client::status`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// Its id.
    pub id: NodeId,
    /// `host:port` of its gRPC server.
    pub address: String,
    /// `host:port` of its metrics endpoint, if known to the answering node.
    pub metrics_address: Option<String>,
    /// Its liveness as the answering node sees it.
    pub liveness: Liveness,
    /// How long ago the answering node last heard from it; `None` if never.
    pub last_contact: Option<Duration>,
}

/// The cluster as one node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The cluster's id.
    pub cluster_id: u64,
    /// Its configuration epoch.
    pub epoch: u64,
    /// The node that answered.
    pub node: NodeId,
    /// Every node, with its liveness as the answering node sees it.
    pub nodes: Vec<NodeStatus>,
    /// Every group, in key order.
    pub groups: Vec<GroupStatus>,
    /// `TT.now()` at the answering node.
    pub now: TtInterval,
    /// Whether the answering node's clock is within its bound.
    pub clock_ok: bool,
    /// The clock's state in words.
    pub clock_detail: String,
    /// The answering node's version.
    pub version: String,
}

/// A node's `Status` answer as the client reports it.
fn cluster_status(s: pb::StatusResponse) -> ClusterStatus {
    let mut groups: Vec<GroupStatus> = s
        .groups
        .iter()
        .map(|g| GroupStatus {
            info: GroupInfo {
                id: g.id,
                start: g.start.clone(),
                end: g.end.clone(),
                replicas: g.replicas.clone(),
                leader: g.leader,
            },
            local_leader: g.local_leader,
            local_replica: g.local_replica,
            chosen: g.chosen,
            applied: g.applied,
            t_safe: Timestamp::from_nanos(g.t_safe),
            active_txns: g.active_txns,
            role: ReplicaRole::from_name(&g.role),
            safe_time_lag: g.safe_time_lag_micros.map(Duration::from_micros),
            bytes: g.bytes.filter(|_| g.local_replica),
            generation: g.generation,
        })
        .collect();
    groups.sort_by(|a, b| a.info.start.cmp(&b.info.start));
    let nodes = s
        .nodes
        .iter()
        .map(|n| NodeStatus {
            id: n.id,
            address: n.address.clone(),
            metrics_address: n.metrics_address.clone(),
            liveness: match pb::Liveness::try_from(n.liveness) {
                Ok(pb::Liveness::Self_) => Liveness::Answering,
                Ok(pb::Liveness::Live) => Liveness::Live,
                Ok(pb::Liveness::Down) => Liveness::Down,
                Ok(pb::Liveness::Unknown) | Err(_) => Liveness::Unknown,
            },
            last_contact: n.last_contact_ms.map(Duration::from_millis),
        })
        .collect();
    ClusterStatus {
        cluster_id: s.cluster_id,
        epoch: s.epoch,
        node: s.node,
        nodes,
        groups,
        now: TtInterval::new(
            Timestamp::from_nanos(s.now_earliest),
            Timestamp::from_nanos(s.now_latest),
        ),
        clock_ok: s.clock_ok,
        clock_detail: s.clock_detail,
        version: s.version,
    }
}

/// The home group of a transaction, from its id: the node runtime's
/// leaders issue origins `round << 44 | node << 32 | group`
/// (`meridian_txn`'s leader). `None` for a plain numbered id.
fn home_group_of(txn: TxnId) -> Option<GroupId> {
    match txn.origin & meridian_txn::MAX_GROUP_ID {
        0 => None,
        g => Some(g),
    }
}

/// Parses a transaction id in its `Display` form: `origin_hex.seq`, or
/// `seq` for origin 0.
pub fn parse_txn_id(s: &str) -> Result<TxnId, Error> {
    let bad = || {
        Error::Invalid(format!(
            "bad transaction id {s:?}: expected ORIGIN_HEX.SEQ or SEQ"
        ))
    };
    match s.trim().split_once('.') {
        Some((origin, seq)) => Ok(TxnId::new(
            u64::from_str_radix(origin, 16).map_err(|_| bad())?,
            seq.parse().map_err(|_| bad())?,
        )),
        None => Ok(TxnId::local(s.trim().parse().map_err(|_| bad())?)),
    }
}

/// Bytes as text for messages: UTF-8 as is, anything else escaped.
pub(crate) fn show_bytes(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

impl Client {
    /// Connects with [`ClientOptions::default`]: see [`Client::connect_with`].
    pub async fn connect(
        endpoints: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Client, Error> {
        Client::connect_with(endpoints, ClientOptions::default()).await
    }

    /// Connects to the cluster through the first of `endpoints`
    /// (`host:port`, optionally with `http://` or `https://`) that answers
    /// `Status`, and learns the cluster's id, epoch, nodes and groups from
    /// it. [`Error::Config`] for an endpoint that cannot be parsed or a TLS
    /// file that cannot be read; [`Error::Unavailable`] if none answers.
    pub async fn connect_with(
        endpoints: impl IntoIterator<Item = impl AsRef<str>>,
        options: ClientOptions,
    ) -> Result<Client, Error> {
        let tls = options.tls.is_some();
        let seeds = endpoints
            .into_iter()
            .map(|e| route::endpoint_uri(e.as_ref(), tls))
            .collect::<Result<Vec<_>, _>>()?;
        if seeds.is_empty() {
            return Err(Error::Config("no endpoints given".into()));
        }
        if options.clock_drift_ppm > meridian_truetime::DRIFT_PPM_LIMIT {
            return Err(Error::Config(format!(
                "clock drift bound {} ppm is over {} ppm: a clock could stand still",
                options.clock_drift_ppm,
                meridian_truetime::DRIFT_PPM_LIMIT
            )));
        }
        let client = Client {
            inner: Arc::new(Inner::new(options, seeds)?),
        };
        client.inner.refresh().await?;
        Ok(client)
    }

    /// The options the client was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// The cluster's id.
    pub fn cluster_id(&self) -> u64 {
        self.inner.view().cluster_id
    }

    /// The configuration epoch the client knows.
    pub fn epoch(&self) -> u64 {
        self.inner.view().epoch
    }

    /// The groups the client knows, in key order.
    pub fn groups(&self) -> Vec<GroupInfo> {
        self.inner.view().groups
    }

    /// The group whose range holds `key`, as the client knows it.
    pub fn group_of(&self, key: impl AsRef<[u8]>) -> Result<GroupId, Error> {
        self.inner.view().group_of(key.as_ref())
    }

    /// Asks a node for the cluster's state, and refreshes the client's
    /// range map with it.
    pub async fn status(&self) -> Result<ClusterStatus, Error> {
        let s = self.inner.refresh().await?;
        Ok(cluster_status(s))
    }

    /// Asks node `node` for the cluster's state as it sees it (its
    /// address learnt from the cluster). An id that is not a node of the
    /// cluster is [`Error::Invalid`].
    pub async fn status_of(&self, node: NodeId) -> Result<ClusterStatus, Error> {
        let s = self.inner.refresh().await?;
        if s.node == node {
            return Ok(cluster_status(s));
        }
        let Some(n) = s.nodes.iter().find(|n| n.id == node) else {
            let known: Vec<String> = s.nodes.iter().map(|n| n.id.to_string()).collect();
            return Err(Error::Invalid(format!(
                "node {node} is not a node of cluster {:#x} (its nodes: {})",
                s.cluster_id,
                known.join(", ")
            )));
        };
        Ok(cluster_status(
            self.inner.status_of(node, &n.address).await?,
        ))
    }

    /// `TT.now()` at some node of the cluster.
    pub async fn now(&self) -> Result<TtInterval, Error> {
        let r = self
            .inner
            .call_any(|header| pb::NowRequest {
                header: Some(header),
            })
            .await?;
        Ok(TtInterval::new(
            Timestamp::from_nanos(r.earliest),
            Timestamp::from_nanos(r.latest),
        ))
    }

    /// An upper bound on the present, `TT.now().latest`, for a read across
    /// groups: from a reading taken within [`ClientOptions::clock_reuse`],
    /// aged by the time since its request was sent (true time then was at
    /// most the answered `latest`, since the node read its clock after the
    /// request left), or else from a new reading.
    async fn latest_now(&self) -> Result<Timestamp, Error> {
        let reuse = self.inner.opts.clock_reuse;
        let asked = RawInstant::now();
        let cached = *self.inner.clock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((sent, latest)) = cached {
            let age = asked.saturating_duration_since(sent);
            if !reuse.is_zero() && age <= reuse {
                let nanos = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
                let aged =
                    aged_latest_nanos(latest.as_nanos(), nanos, self.inner.opts.clock_drift_ppm);
                return Ok(Timestamp::from_nanos(aged));
            }
        }
        let latest = self.now().await?.latest;
        let mut clock = self.inner.clock.lock().unwrap_or_else(|e| e.into_inner());
        if clock.is_none_or(|(sent, _)| sent < asked) {
            *clock = Some((asked, latest));
        }
        Ok(latest)
    }

    /// Runs a read-write transaction under [`ClientOptions::default_mode`]:
    /// see [`Client::transaction_with`]. For a closure that fails with the
    /// application's own error type, [`Client::transact`].
    ///
    /// ```no_run
    /// # async fn demo(client: meridian_client::Client) -> Result<(), meridian_client::Error> {
    /// // Move 10 from one account to another, atomically.
    /// let parse = |v: Option<bytes::Bytes>| -> i64 {
    ///     v.and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok()).unwrap_or(0)
    /// };
    /// let (from, to) = (String::from("acct/a"), String::from("acct/b"));
    /// let ((), committed) = client
    ///     .transaction(async |txn| {
    ///         let a = parse(txn.get(&from).await?);
    ///         let b = parse(txn.get(&to).await?);
    ///         txn.put(&from, (a - 10).to_string())?;
    ///         txn.put(&to, (b + 10).to_string())?;
    ///         Ok(())
    ///     })
    ///     .await?;
    /// println!("committed at {}", committed.commit_ts);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn transaction<T, F>(&self, f: F) -> Result<(T, Committed), Error>
    where
        F: AsyncFnMut(&mut Txn) -> Result<T, Error>,
    {
        self.transact(f).await
    }

    /// Runs a read-write transaction: calls `f` with a fresh [`Txn`], then
    /// commits what it wrote, and answers `f`'s value with the commit.
    ///
    /// `f` is an async closure (`async |txn| { ... }`) that borrows the
    /// [`Txn`] and fails with [`Error`] (its `?` needs no annotation);
    /// [`Client::transact_with`] is the same for a closure that fails with
    /// the application's own error type.
    ///
    /// If `f` or the commit fails with a retryable error
    /// ([`Error::is_retryable`]: wounded, OCC conflict, leader change,
    /// unreachable replica), the attempt is aborted (best effort), and
    /// after a backoff (exponential with jitter, bounded by
    /// [`ClientOptions::backoff_max`]) `f` runs again as a new attempt with
    /// the first attempt's wound-wait priority, so the transaction only
    /// grows older and eventually wins (Spanner §4.2.1). At most
    /// [`ClientOptions::max_txn_attempts`] attempts within
    /// [`ClientOptions::retry_budget`]. `f` may therefore run several
    /// times: it should have no effects outside the transaction. Any other
    /// failure of `f` aborts the attempt and is answered at once.
    ///
    /// [`Error::OutcomeUnknown`] is never retried: the commit may have taken
    /// effect.
    ///
    /// The future is `Send` (it may be given to `tokio::spawn`) when the
    /// closure owns what it captures — `async move |txn| { .. }` — and all
    /// of it is `Send`, as is everything the closure holds across an
    /// `.await`. (A closure that borrows from the spawned block is refused
    /// by rustc's "implementation of `Send` is not general enough", a
    /// limitation of its auto-trait check; awaited in place, it needs no
    /// `move`.)
    ///
    /// ```no_run
    /// # async fn demo(client: meridian_client::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let key = String::from("counter");
    /// let task = tokio::spawn(async move {
    ///     client
    ///         .transaction(async move |txn| {
    ///             let n: u64 = match txn.get(&key).await? {
    ///                 Some(v) => String::from_utf8_lossy(&v).parse().unwrap_or(0),
    ///                 None => 0,
    ///             };
    ///             txn.put(&key, (n + 1).to_string())?;
    ///             Ok(n + 1)
    ///         })
    ///         .await
    /// });
    /// let (n, _) = task.await??;
    /// println!("counter is now {n}");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// ```no_run
    /// # async fn demo(client: meridian_client::Client) -> Result<(), meridian_client::Error> {
    /// use meridian_client::{CcMode, TxnOptions};
    ///
    /// let opts = TxnOptions { mode: CcMode::Optimistic, ..Default::default() };
    /// let (rows, _) = client
    ///     .transaction_with(opts, async |txn| {
    ///         let rows = txn.scan("user/".."user0", 100).await?;
    ///         txn.put("user/count", rows.len().to_string())?;
    ///         Ok(rows)
    ///     })
    ///     .await?;
    /// # let _ = rows;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn transaction_with<T, F>(
        &self,
        opts: TxnOptions,
        f: F,
    ) -> Result<(T, Committed), Error>
    where
        F: AsyncFnMut(&mut Txn) -> Result<T, Error>,
    {
        self.transact_with(opts, f).await
    }

    /// [`Client::transact_with`] under [`ClientOptions::default_mode`].
    pub async fn transact<T, E, F>(&self, f: F) -> Result<(T, Committed), E>
    where
        F: AsyncFnMut(&mut Txn) -> Result<T, E>,
        E: TransactError,
    {
        let opts = TxnOptions {
            mode: self.inner.opts.default_mode,
        };
        self.transact_with(opts, f).await
    }

    /// [`Client::transaction_with`] for a closure that fails with the
    /// application's own error type `E` (as `foundationdb`'s `transact`).
    ///
    /// `E` is [`TransactError`]: `From<Error>`, so that the closure's `?`
    /// on a Meridian operation (and a failed commit) becomes an `E`, and
    /// able to say whether an `E` is a Meridian error. The retry loop runs
    /// the closure again only for a retryable Meridian error
    /// ([`Error::is_retryable`]); the application's own error aborts the
    /// attempt and is answered as it is, after one run. [`Error`] itself
    /// is a `TransactError`: [`Client::transaction_with`] is this with
    /// `E = Error`.
    ///
    /// ```no_run
    /// # async fn demo(client: meridian_client::Client) {
    /// use meridian_client::{Error, TransactError, TxnOptions};
    ///
    /// #[derive(Debug)]
    /// enum Withdraw {
    ///     Insufficient { balance: u64 },
    ///     Meridian(Error),
    /// }
    /// impl From<Error> for Withdraw {
    ///     fn from(e: Error) -> Withdraw {
    ///         Withdraw::Meridian(e)
    ///     }
    /// }
    /// impl TransactError for Withdraw {
    ///     fn meridian_error(&self) -> Option<&Error> {
    ///         match self {
    ///             Withdraw::Meridian(e) => Some(e),
    ///             Withdraw::Insufficient { .. } => None,
    ///         }
    ///     }
    /// }
    ///
    /// let amount = 30;
    /// let done = client
    ///     .transact_with(TxnOptions::default(), async |txn| -> Result<u64, Withdraw> {
    ///         let balance: u64 = match txn.get("acct/a").await? {
    ///             Some(v) => String::from_utf8_lossy(&v).parse().unwrap_or(0),
    ///             None => 0,
    ///         };
    ///         if balance < amount {
    ///             return Err(Withdraw::Insufficient { balance });
    ///         }
    ///         txn.put("acct/a", (balance - amount).to_string())?;
    ///         Ok(balance - amount)
    ///     })
    ///     .await;
    /// match done {
    ///     Ok((left, _)) => println!("{left} left"),
    ///     Err(Withdraw::Insufficient { balance }) => println!("only {balance}"),
    ///     Err(Withdraw::Meridian(e)) => println!("failed: {e}"),
    /// }
    /// # }
    /// ```
    pub async fn transact_with<T, E, F>(&self, opts: TxnOptions, f: F) -> Result<(T, Committed), E>
    where
        F: AsyncFnMut(&mut Txn) -> Result<T, E>,
        E: TransactError,
    {
        self.run_transaction(opts, false, f).await
    }

    /// [`Client::transaction_with`]; `system`: the range directory's own
    /// transaction, allowed system keys.
    pub(crate) async fn run_transaction<T, E, F>(
        &self,
        opts: TxnOptions,
        system: bool,
        mut f: F,
    ) -> Result<(T, Committed), E>
    where
        F: AsyncFnMut(&mut Txn) -> Result<T, E>,
        E: TransactError,
    {
        let started = Instant::now();
        let mut priority: Option<Timestamp> = None;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut txn = if system {
                Txn::new_system(self.clone(), opts.mode, priority)
            } else {
                Txn::new(self.clone(), opts.mode, priority)
            };
            let e: E = match f(&mut txn).await {
                Ok(value) => {
                    priority = txn.priority().or(priority);
                    match txn.commit().await {
                        Ok(c) => return Ok((value, c)),
                        Err(e) => E::from(e),
                    }
                }
                Err(e) => {
                    priority = txn.priority().or(priority);
                    txn.abort().await;
                    e
                }
            };
            let Some(meridian) = e.meridian_error() else {
                // The application's own error: never retried.
                return Err(e);
            };
            let retryable = meridian.is_retryable();
            if matches!(
                meridian,
                Error::Unavailable { .. } | Error::Remote(RemoteError::WrongGroup { .. })
            ) && self.inner.view().gap(b"", None).is_some()
            {
                // The range map misses a range (a split's child the node
                // asked does not list): refresh it and learn the directory's
                // newer ranges before the next attempt.
                if let Err(e) = self.refresh_routing().await {
                    tracing::debug!(error = %e, "range map not refreshed");
                }
            }
            let out_of_budget = attempt >= self.inner.opts.max_txn_attempts
                || started.elapsed() >= self.inner.opts.retry_budget;
            if !retryable || out_of_budget {
                return Err(e);
            }
            if let Some(m) = e.meridian_error() {
                tracing::debug!(attempt, error = %m, "transaction attempt failed; retrying");
            }
            tokio::time::sleep(self.inner.backoff(attempt - 1)).await;
        }
    }

    /// Begins a read-write transaction to drive by hand (with
    /// [`Txn::commit`] or [`Txn::abort`]), under
    /// [`ClientOptions::default_mode`]. Nothing is sent until its first
    /// read or its commit. No retries: a retryable error is returned to the
    /// caller.
    pub fn begin(&self) -> Txn {
        Txn::new(self.clone(), self.inner.opts.default_mode, None)
    }

    /// [`Client::begin`] with explicit options.
    ///
    /// ```no_run
    /// # async fn demo(client: meridian_client::Client) -> Result<(), meridian_client::Error> {
    /// use meridian_client::TxnOptions;
    ///
    /// let mut txn = client.begin_with(TxnOptions::optimistic());
    /// let seen = txn.get("config/version").await?;
    /// if seen.is_none() {
    ///     txn.put("config/version", "1")?;
    ///     let committed = txn.commit().await?;
    ///     println!("created by {:?} at {}", committed.txn, committed.commit_ts);
    /// } else {
    ///     txn.abort().await;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn begin_with(&self, opts: TxnOptions) -> Txn {
        Txn::new(self.clone(), opts.mode, None)
    }

    /// Asks the transaction's home group's leader what became of `txn`
    /// (the home group is in the id; for a plain numbered id every group
    /// is asked, and the first definite answer wins).
    pub async fn txn_status(&self, txn: TxnId) -> Result<TxnStatus, Error> {
        let groups: Vec<GroupId> = match home_group_of(txn) {
            Some(g) => vec![g],
            None => self.groups().iter().map(|g| g.id).collect(),
        };
        let mut answer = TxnStatus::Unknown;
        for group in groups {
            let s = self.txn_status_at(group, txn).await?;
            match s {
                TxnStatus::Committed { .. } | TxnStatus::Aborted => return Ok(s),
                TxnStatus::InProgress => answer = s,
                TxnStatus::Unknown => {}
            }
        }
        Ok(answer)
    }

    pub(crate) async fn txn_status_at(
        &self,
        group: GroupId,
        txn: TxnId,
    ) -> Result<TxnStatus, Error> {
        use pb::txn_status_response::Status;
        let (r, _) = self
            .inner
            .call_group(group, Route::Leader, Resend::Safe, |header| {
                pb::TxnStatusRequest {
                    header: Some(header),
                    group,
                    txn: Some(txn_to_pb(txn)),
                }
            })
            .await?;
        Ok(match r.status {
            Some(Status::Committed(ts)) => TxnStatus::Committed {
                commit_ts: Timestamp::from_nanos(ts),
            },
            Some(Status::Aborted(_)) => TxnStatus::Aborted,
            Some(Status::InProgress(_)) => TxnStatus::InProgress,
            Some(Status::Unknown(_)) | None => TxnStatus::Unknown,
        })
    }

    /// A strong read-only transaction (Spanner §4.2.2): sees every
    /// transaction committed before it was issued, takes no locks, and is
    /// served by any replica. Within one group the replica picks `s_read`;
    /// across groups the client reads every group at `TT.now().latest` from
    /// a node.
    ///
    /// ```no_run
    /// # async fn demo(client: meridian_client::Client) -> Result<(), meridian_client::Error> {
    /// use meridian_client::{ReadOp, ReadResult};
    ///
    /// let r = client
    ///     .read_only(vec![
    ///         ReadOp::Get("acct/a".into()),
    ///         ReadOp::Scan { start: "acct/".into(), end: Some("acct0".into()), limit: 100 },
    ///     ])
    ///     .await?;
    /// if let ReadResult::Rows(rows) = &r.results[1] {
    ///     println!("{} accounts at {}", rows.len(), r.read_ts);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read_only(&self, reads: Vec<ReadOp>) -> Result<ReadOnlyResult, Error> {
        self.read_at(ReadAt::Strong, reads).await
    }

    /// A snapshot read at `ts` (Spanner §4.2.3), at any replica. Below the
    /// GC horizon: [`Error::Remote`] with `BelowGcHorizon`; below the
    /// cluster's birth: [`Error::Remote`] with `ReadBelowClusterBirth`
    /// (neither retried). A `ts` ahead
    /// of the replica's clock by more than its L (10 ms) waits until it is
    /// within L; by more than its M (1 s) it fails with
    /// [`Error::ReadTimestampTooFarAhead`] (docs/operations.md).
    pub async fn snapshot_read(
        &self,
        ts: Timestamp,
        reads: Vec<ReadOp>,
    ) -> Result<ReadOnlyResult, Error> {
        self.read_at(ReadAt::Exact(ts), reads).await
    }

    /// A bounded-staleness read: at most `max_staleness` old, at any
    /// replica. Within one group the replica picks the newest timestamp it
    /// can serve; across groups every group is read at
    /// `TT.now().latest - max_staleness`.
    pub async fn read_stale(
        &self,
        max_staleness: Duration,
        reads: Vec<ReadOp>,
    ) -> Result<ReadOnlyResult, Error> {
        let nanos = u64::try_from(max_staleness.as_nanos()).unwrap_or(u64::MAX);
        self.read_at(ReadAt::MaxStaleness(nanos), reads).await
    }

    /// The value of `key` by a strong read-only read.
    pub async fn get(&self, key: impl IntoBytes) -> Result<Option<Bytes>, Error> {
        let r = self.read_only(vec![ReadOp::Get(key.into_bytes())]).await?;
        match r.results.into_iter().next() {
            Some(ReadResult::Value(v)) => Ok(v),
            other => Err(Error::Invalid(format!("a get answered with {other:?}"))),
        }
    }

    /// Writes `key` in a transaction of its own (a one-shot commit).
    pub async fn put(
        &self,
        key: impl IntoBytes,
        value: impl IntoBytes,
    ) -> Result<Committed, Error> {
        let (key, value) = (key.into_bytes(), value.into_bytes());
        let ((), c) = self
            .transaction(async move |txn| txn.put(&key, &value))
            .await?;
        Ok(c)
    }

    /// Deletes `key` in a transaction of its own (a one-shot commit).
    pub async fn delete(&self, key: impl IntoBytes) -> Result<Committed, Error> {
        let key = key.into_bytes();
        let ((), c) = self.transaction(async move |txn| txn.delete(&key)).await?;
        Ok(c)
    }

    async fn read_at(&self, at: ReadAt, reads: Vec<ReadOp>) -> Result<ReadOnlyResult, Error> {
        let reads = meridian_txn::api::check_user_reads(&reads)?;
        self.read_at_checked(at, reads).await
    }

    /// [`Client::read_at`] without the user's checks: the range
    /// directory's reads of system keys.
    pub(crate) async fn read_at_checked(
        &self,
        at: ReadAt,
        reads: Vec<ReadOp>,
    ) -> Result<ReadOnlyResult, Error> {
        meridian_txn::api::check_reads(&reads)?;
        let mut last = None;
        for _ in 0..self.inner.opts.max_request_tries.max(1) {
            if self.inner.view().misses(&reads) {
                // A range the map does not know (a split's child that the
                // node asked does not list): the directory knows it.
                self.refresh_routing().await?;
            }
            match self.read_at_once(at, &reads).await {
                Err(e @ Error::Remote(RemoteError::WrongGroup { .. })) => {
                    // The map was refreshed from a node's `Status`; a range
                    // it still misses is the directory's to tell.
                    if self.inner.view().misses(&reads) {
                        if let Err(e) = self.directory().await {
                            tracing::debug!(error = %e, "range directory not read");
                        }
                    }
                    last = Some(e)
                }
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| Error::Timeout("range map kept changing".into())))
    }

    /// One plan of a lock-free read over the range map as it is now: each
    /// get to its key's group, each scan to every group its range overlaps
    /// (bounds clipped to the group's range), one request per group.
    async fn read_at_once(&self, at: ReadAt, reads: &[ReadOp]) -> Result<ReadOnlyResult, Error> {
        let view = self.inner.view();
        // (group, [(read index, op)]) in the order first met.
        let mut parts: Vec<(GroupId, Vec<(usize, ReadOp)>)> = Vec::new();
        let mut add = |g: GroupId, i: usize, op: ReadOp| match parts.iter_mut().find(|p| p.0 == g) {
            Some(p) => p.1.push((i, op)),
            None => parts.push((g, vec![(i, op)])),
        };
        for (i, op) in reads.iter().enumerate() {
            match op {
                ReadOp::Get(k) => add(view.group_of(k)?, i, op.clone()),
                ReadOp::Scan { start, end, limit } => {
                    if let Some(k) = view.gap(start, end.as_deref()) {
                        return Err(Error::Unavailable {
                            detail: format!("no known range holds key {}", show_bytes(&k)),
                        });
                    }
                    for g in view.groups_overlapping(start, end.as_deref()) {
                        let (s, e) = txn::clip(start, end.as_ref(), &g);
                        add(
                            g.id,
                            i,
                            ReadOp::Scan {
                                start: s,
                                end: e,
                                limit: *limit,
                            },
                        );
                    }
                }
            }
        }
        let strong = at == ReadAt::Strong;
        let at = match (parts.len(), at) {
            (0 | 1, at) => at,
            // One timestamp for every group, without negotiating
            // (Spanner §4.2.2).
            (_, ReadAt::Strong) => ReadAt::Exact(self.latest_now().await?),
            (_, ReadAt::MaxStaleness(n)) => {
                ReadAt::Exact(self.latest_now().await?.saturating_sub(n))
            }
            (_, exact) => exact,
        };
        // A strong read goes to the leaders. One group's leader serves it
        // at once at its log's last timestamp (Spanner §4.2.2's LastTS); a
        // follower would read at `TT.now().latest` and wait for its safe
        // time to get there. Across groups the read is at
        // `TT.now().latest`, which a leader closes at once by raising its
        // timestamp floor (no Paxos round) where a follower would wait for
        // the leader's next entry. Reads at a timestamp go to any replica.
        let route = if strong {
            Route::Leader
        } else {
            Route::AnyReplica
        };
        let mut results: Vec<Option<ReadResult>> = vec![None; reads.len()];
        let mut read_ts = match at {
            ReadAt::Exact(ts) => ts,
            _ => Timestamp::ZERO,
        };
        // The groups are asked at once; their answers are merged in order.
        let calls: Vec<_> = parts
            .iter()
            .map(|(group, ops)| {
                let wire: Vec<pb::ReadOp> = ops.iter().map(|(_, op)| read_op_to_pb(op)).collect();
                self.read_group(*group, route, at, wire)
            })
            .collect();
        let answers = join_all(calls).await;
        for ((group, ops), answer) in parts.into_iter().zip(answers) {
            let r = answer?;
            if r.results.len() != ops.len() {
                return Err(Error::Invalid(format!(
                    "group {group} answered {} results to {} reads",
                    r.results.len(),
                    ops.len()
                )));
            }
            read_ts = read_ts.max(Timestamp::from_nanos(r.read_ts));
            for ((i, _), res) in ops.into_iter().zip(r.results) {
                let res = read_result_from_pb(res).map_err(Error::from)?;
                results[i] = Some(match (results[i].take(), res) {
                    (None, res) => res,
                    (Some(ReadResult::Rows(mut a)), ReadResult::Rows(b)) => {
                        // Groups are asked in key order: their rows follow
                        // each other.
                        a.extend(b);
                        ReadResult::Rows(a)
                    }
                    (Some(a), b) => {
                        return Err(Error::Invalid(format!(
                            "read {i} answered both {a:?} and {b:?}"
                        )));
                    }
                });
            }
        }
        let results = reads
            .iter()
            .zip(results)
            .map(|(op, r)| match (op, r) {
                (ReadOp::Scan { limit, .. }, Some(ReadResult::Rows(mut rows))) => {
                    rows.sort();
                    rows.truncate(*limit);
                    ReadResult::Rows(rows)
                }
                // A scan whose range no group holds.
                (ReadOp::Scan { .. }, None) => ReadResult::Rows(Vec::new()),
                (_, Some(r)) => r,
                (ReadOp::Get(_), None) => ReadResult::Value(None),
            })
            .collect();
        Ok(ReadOnlyResult { read_ts, results })
    }

    /// One group's part of a lock-free read.
    async fn read_group(
        &self,
        group: GroupId,
        route: Route,
        at: ReadAt,
        wire: Vec<pb::ReadOp>,
    ) -> Result<pb::ReadOnlyResponse, Error> {
        let (r, _) = self
            .inner
            .call_group(group, route, Resend::Safe, |header| pb::ReadOnlyRequest {
                header: Some(header),
                group,
                at: Some(read_at_to_pb(at)),
                reads: wire.clone(),
            })
            .await?;
        Ok(r)
    }
}

/// Runs `futures` concurrently on the calling task (no spawn) and answers
/// their outputs in order.
pub(crate) async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Transaction ids name their home group in the origin's low 32 bits
    /// (`round << 44 | node << 32 | group`): a group id beyond 16 bits is
    /// found whole, and an id printed is parsed back.
    #[test]
    fn a_txn_ids_home_group_is_its_origins_low_32_bits() {
        let group = 0xABCD_0001;
        let origin = (3 << (meridian_txn::ORIGIN_GROUP_BITS + meridian_txn::ORIGIN_NODE_BITS))
            | (7 << meridian_txn::ORIGIN_GROUP_BITS)
            | group;
        let txn = TxnId::new(origin, 9);
        assert_eq!(home_group_of(txn), Some(group));
        assert_eq!(parse_txn_id(&txn.to_string()).expect("parses"), txn);
        assert_eq!(home_group_of(TxnId::new(0, 5)), None);
    }
}
