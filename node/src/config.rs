//! A node's configuration (docs/operations.md): one TOML file per node,
//! checked whole before anything starts, with errors that name the field.
//!
//! ```toml
//! cluster_id = 7
//! epoch = 1
//! birth_ns = 1796659200000000000      # the cluster's birth (ns since the Unix epoch); optional
//! node_id = 1
//! listen = "127.0.0.1:7101"
//! data_dir = "data/node-1"
//! metrics_listen = "127.0.0.1:9101"   # optional
//!
//! [clock]
//! backend = "system"                  # or "kernel": ε from adjtimex
//! epsilon_ms = 1.0                    # system backend; kernel: the most ε accepted
//!
//! [paxos]                             # optional; defaults shown
//! lease_ms = 2000
//! heartbeat_ms = 100
//! election_min_ms = 500
//! election_max_ms = 1000
//!
//! [health]                            # optional; default shown
//! ready_max_safe_time_lag_ms = 2000   # GET /ready: most safe-time lag of a ready replica
//! [reads]                             # optional; defaults shown
//! lead_ms = 10                        # L: a read this far ahead of the clock is served as it comes
//! max_lead_ms = 1000                  # M: further ahead fails (ReadTimestampTooFarAhead)
//! [splits]                            # optional; defaults shown (0 turns a trigger off)
//! bytes = 67108864                    # split a range over 64 MiB of newest versions
//! load_qps = 0                        # by load: off (2500: over 2,500 requests/s ...
//! load_sustain_ms = 10000             # ... for 10 s, at the key halving its load)
//! min_range_bytes = 1048576           # never split a range under 1 MiB
//! max_ranges_per_node = 64            # nor on a node holding 64 ranges
//!
//! [tls]                               # optional: mutual TLS for peers and clients
//! ca = "certs/ca.pem"
//! cert = "certs/node-1.pem"
//! key = "certs/node-1.key"
//!
//! [[nodes]]
//! id = 1
//! address = "127.0.0.1:7101"
//! # ... one [[nodes]] per node
//!
//! [[groups]]
//! id = 1
//! start = ""                          # first key (inclusive); "" = from the first key
//! end = "?"                           # bound after the last key; omitted = no bound
//! replicas = [1, 2, 3]
//! # ... one [[groups]] per group; the ranges tile the key space
//! ```

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Largest ε accepted in the configuration: 1 s. A bound this wide makes
/// commit wait dominate every write; larger values are almost certainly a
/// unit mistake.
pub const MAX_EPSILON_MS: f64 = 1000.0;

/// A configuration that cannot run, naming what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a node configuration.
    #[error("config file {path} is malformed: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the line and field).
        message: String,
    },
    /// The values break a rule.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Which TrueTime backend a node uses (docs/design.md §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockBackend {
    /// The system clock ± a configured ε.
    #[default]
    System,
    /// The system clock with ε read from the kernel (`adjtimex` maxerror),
    /// refused when the kernel clock is unsynchronised.
    Kernel,
}

/// The clock section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    /// The backend.
    #[serde(default)]
    pub backend: ClockBackend,
    /// ε in milliseconds for the system backend; for the kernel backend,
    /// the largest ε accepted.
    #[serde(default = "default_epsilon_ms")]
    pub epsilon_ms: f64,
}

fn default_epsilon_ms() -> f64 {
    1.0
}

impl Default for ClockConfig {
    fn default() -> Self {
        ClockConfig {
            backend: ClockBackend::System,
            epsilon_ms: default_epsilon_ms(),
        }
    }
}

impl ClockConfig {
    /// ε in nanoseconds.
    pub fn epsilon_nanos(&self) -> u64 {
        (self.epsilon_ms * 1e6).round() as u64
    }
}

/// Paxos timing, in milliseconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaxosConfig {
    /// Leader lease length (Spanner §4.1.1).
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// Interval between leader heartbeats.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// Lower bound of the randomized election timeout.
    #[serde(default = "default_election_min_ms")]
    pub election_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    #[serde(default = "default_election_max_ms")]
    pub election_max_ms: u64,
}

fn default_lease_ms() -> u64 {
    2000
}
fn default_heartbeat_ms() -> u64 {
    100
}
fn default_election_min_ms() -> u64 {
    500
}
fn default_election_max_ms() -> u64 {
    1000
}

/// How far ahead of the clock a snapshot read's timestamp may be, in
/// milliseconds (docs/operations.md, "Reads at future timestamps").
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadsConfig {
    /// L: a read at most this far ahead of `TT.now().latest` is served as
    /// it comes; one further ahead waits until it is within L.
    #[serde(default = "default_read_lead_ms")]
    pub lead_ms: u64,
    /// M: a read further ahead than this fails at once with
    /// `ReadTimestampTooFarAhead` (exit 2 in the CLI). At least `lead_ms`.
    #[serde(default = "default_max_read_lead_ms")]
    pub max_lead_ms: u64,
}

fn default_read_lead_ms() -> u64 {
    meridian_txn::DEFAULT_READ_LEAD_NANOS / 1_000_000
}
fn default_max_read_lead_ms() -> u64 {
    meridian_txn::DEFAULT_MAX_READ_LEAD_NANOS / 1_000_000
}

/// Automatic range splits (docs/operations.md, "Automatic splits"): by
/// size (on by default) and by load (off by default: until replicas and
/// leaders can move, a split by load leaves the load on the same nodes and
/// only adds a range, while its split stalls the node's loop for a moment;
/// [`meridian_txn::split_policy::DEFAULT_SPLIT_LOAD_QPS`] is the threshold
/// to turn it on with). A trigger set to 0 is off; both off, the node never
/// splits by itself (`meridian admin split` still does).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitsConfig {
    /// Split a range whose newest live versions exceed this many bytes; 0:
    /// never by size.
    #[serde(default = "default_split_bytes")]
    pub bytes: u64,
    /// Split a range serving more requests per second than this for
    /// `load_sustain_ms`; 0 (the default): never by load.
    #[serde(default = "default_split_load_qps")]
    pub load_qps: u64,
    /// How long the load must stay over `load_qps`, ms.
    #[serde(default = "default_split_load_sustain_ms")]
    pub load_sustain_ms: u64,
    /// Never split a range smaller than this many bytes.
    #[serde(default = "default_min_range_bytes")]
    pub min_range_bytes: u64,
    /// Never split a range of a node holding this many ranges.
    #[serde(default = "default_max_ranges_per_node")]
    pub max_ranges_per_node: u64,
}

fn default_split_bytes() -> u64 {
    meridian_txn::split_policy::DEFAULT_SPLIT_BYTES
}
fn default_split_load_qps() -> u64 {
    0
}
fn default_split_load_sustain_ms() -> u64 {
    meridian_txn::split_policy::DEFAULT_LOAD_SUSTAIN_NANOS / 1_000_000
}
fn default_min_range_bytes() -> u64 {
    meridian_txn::split_policy::DEFAULT_MIN_RANGE_BYTES
}
fn default_max_ranges_per_node() -> u64 {
    meridian_txn::split_policy::DEFAULT_MAX_RANGES_PER_NODE
}

/// Parses a size: a whole number of bytes, or one followed by `B`, `KiB`,
/// `MiB` or `GiB` (case-insensitive; `K`, `M`, `G` and `KB`, `MB`, `GB`
/// mean the same powers of 1024), as `--split-bytes 8MiB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 1048576, 64MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        u => {
            return Err(format!(
                "unknown size unit {u:?} in {text:?} (B, KiB, MiB, GiB)"
            ));
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

impl Default for SplitsConfig {
    fn default() -> Self {
        SplitsConfig {
            bytes: default_split_bytes(),
            load_qps: default_split_load_qps(),
            load_sustain_ms: default_split_load_sustain_ms(),
            min_range_bytes: default_min_range_bytes(),
            max_ranges_per_node: default_max_ranges_per_node(),
        }
    }
}

impl SplitsConfig {
    /// No automatic splits at all.
    pub fn off() -> SplitsConfig {
        SplitsConfig {
            bytes: 0,
            load_qps: 0,
            ..SplitsConfig::default()
        }
    }

    /// The policy's thresholds; `None` when both triggers are off.
    pub fn policy(&self) -> Option<meridian_txn::split_policy::SplitPolicyConfig> {
        if self.bytes == 0 && self.load_qps == 0 {
            return None;
        }
        Some(meridian_txn::split_policy::SplitPolicyConfig {
            split_bytes: if self.bytes == 0 {
                u64::MAX
            } else {
                self.bytes
            },
            load_qps: if self.load_qps == 0 {
                f64::INFINITY
            } else {
                self.load_qps as f64
            },
            load_sustain_nanos: self.load_sustain_ms.saturating_mul(1_000_000),
            // A split size set below the minimum range size lowers it: the
            // operator asked for ranges that small.
            min_range_bytes: if self.bytes == 0 {
                self.min_range_bytes
            } else {
                self.min_range_bytes.min(self.bytes)
            },
            max_ranges_per_node: self.max_ranges_per_node,
        })
    }
}

impl Default for ReadsConfig {
    fn default() -> Self {
        ReadsConfig {
            lead_ms: default_read_lead_ms(),
            max_lead_ms: default_max_read_lead_ms(),
        }
    }
}

impl Default for PaxosConfig {
    fn default() -> Self {
        PaxosConfig {
            lease_ms: default_lease_ms(),
            heartbeat_ms: default_heartbeat_ms(),
            election_min_ms: default_election_min_ms(),
            election_max_ms: default_election_max_ms(),
        }
    }
}

/// Default of [`HealthConfig::ready_max_safe_time_lag_ms`]: 2 s, the
/// default leader lease. A replica whose safe time trails its clock by more
/// has had no leader (or no contact with it) for about a lease.
pub const DEFAULT_READY_MAX_SAFE_TIME_LAG_MS: u64 = 2000;

/// What the metrics endpoint's `GET /ready` requires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Most a ready node's replicas' safe time may trail its clock, ms.
    #[serde(default = "default_ready_max_safe_time_lag_ms")]
    pub ready_max_safe_time_lag_ms: u64,
}

fn default_ready_max_safe_time_lag_ms() -> u64 {
    DEFAULT_READY_MAX_SAFE_TIME_LAG_MS
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            ready_max_safe_time_lag_ms: DEFAULT_READY_MAX_SAFE_TIME_LAG_MS,
        }
    }
}

/// TLS files (PEM). With them, peers and clients must present a
/// certificate signed by `ca` (mutual TLS).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate authority that signs every node and client.
    pub ca: PathBuf,
    /// This node's certificate.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

/// A node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Its id (1..=[`meridian_txn::MAX_NODE_ID`]).
    pub id: u64,
    /// `host:port` of its gRPC server.
    pub address: String,
}

/// A group: a key range and the nodes holding its replicas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    /// Its id (1..=[`meridian_txn::MAX_GROUP_ID`]); never reused.
    pub id: u64,
    /// First key of the range ("" = from the first key).
    #[serde(default)]
    pub start: String,
    /// Bound after the last key; absent = no bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Nodes holding its replicas (the initial voters).
    pub replicas: Vec<u64>,
    /// Nodes that host a replica that is not (yet) a voter: it starts with
    /// no membership and learns it from the leader once an operator adds it
    /// (`meridian admin change-membership --add`). For replacing a node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joining: Vec<u64>,
}

impl GroupEntry {
    /// Whether `key` falls in this group's range.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_bytes() && self.end.as_ref().is_none_or(|e| key < e.as_bytes())
    }

    /// The range's start as bytes.
    pub fn start_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.start.as_bytes())
    }

    /// The range's end as bytes.
    pub fn end_bytes(&self) -> Option<Bytes> {
        self.end
            .as_ref()
            .map(|e| Bytes::copy_from_slice(e.as_bytes()))
    }

    /// The group's bootstrap descriptor: its configured range at the
    /// initial generation.
    pub fn descriptor(&self) -> meridian_participant::RangeDescriptor {
        meridian_participant::RangeDescriptor {
            group: self.id,
            start: self.start_bytes(),
            end: self.end_bytes(),
            generation: meridian_participant::INITIAL_GENERATION,
        }
    }
}

/// A node's whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The cluster's id: messages of other clusters are refused.
    pub cluster_id: u64,
    /// The configuration epoch; raised when the layout changes.
    #[serde(default = "default_epoch")]
    pub epoch: u64,
    /// The cluster's birth in nanoseconds since the Unix epoch, written
    /// by `meridian cluster init` (and the local cluster) into every
    /// node's configuration: a snapshot read at an earlier timestamp is
    /// refused with `ReadBelowClusterBirth` (nothing was stored then).
    /// Absent (a configuration written before births were recorded): no
    /// such check. A node that joins or replaces another carries the same
    /// value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_ns: Option<u64>,
    /// This node's id.
    pub node_id: u64,
    /// Address the gRPC server listens on.
    pub listen: String,
    /// Directory of the write-ahead log and snapshots (locked while the
    /// node runs).
    pub data_dir: PathBuf,
    /// Address of the Prometheus metrics endpoint, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    /// The clock.
    #[serde(default)]
    pub clock: ClockConfig,
    /// Paxos timing.
    #[serde(default)]
    pub paxos: PaxosConfig,
    /// What `GET /ready` requires.
    #[serde(default)]
    pub health: HealthConfig,
    /// Bounds on snapshot reads at future timestamps.
    #[serde(default)]
    pub reads: ReadsConfig,
    /// Automatic range splits.
    #[serde(default)]
    pub splits: SplitsConfig,
    /// Mutual TLS, if configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Every node of the cluster, this one included.
    pub nodes: Vec<NodeEntry>,
    /// Every group of the cluster.
    pub groups: Vec<GroupEntry>,
}

fn default_epoch() -> u64 {
    1
}

impl NodeConfig {
    /// Reads and checks a configuration file. Relative paths in it are
    /// taken relative to the file's directory.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        rebase(&mut cfg.data_dir);
        if let Some(tls) = &mut cfg.tls {
            rebase(&mut tls.ca);
            rebase(&mut tls.cert);
            rebase(&mut tls.key);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a node configuration always serialises")
    }

    /// Checks every rule; the first broken one is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.cluster_id == 0 {
            return bad("cluster_id must be positive".into());
        }
        if self.epoch == 0 {
            return bad("epoch must be positive".into());
        }
        let max_id = meridian_txn::MAX_NODE_ID;
        let mut ids = BTreeSet::new();
        for n in &self.nodes {
            if n.id == 0 || n.id > max_id {
                return bad(format!("node id {} is outside 1..={max_id}", n.id));
            }
            if !ids.insert(n.id) {
                return bad(format!("node {} is listed twice", n.id));
            }
            if n.address.parse::<SocketAddr>().is_err() && !n.address.contains(':') {
                return bad(format!(
                    "node {} has address {:?}; expected host:port",
                    n.id, n.address
                ));
            }
        }
        if !ids.contains(&self.node_id) {
            return bad(format!("node_id {} is not among [[nodes]]", self.node_id));
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            return bad(format!(
                "listen {:?} is not an ip:port address",
                self.listen
            ));
        }
        if let Some(m) = &self.metrics_listen {
            if m.parse::<SocketAddr>().is_err() {
                return bad(format!("metrics_listen {m:?} is not an ip:port address"));
            }
        }
        let eps = self.clock.epsilon_ms;
        if !(eps > 0.0 && eps <= MAX_EPSILON_MS) {
            return bad(format!(
                "clock.epsilon_ms {eps} is outside (0, {MAX_EPSILON_MS}]"
            ));
        }
        let p = &self.paxos;
        if !(p.heartbeat_ms > 0
            && p.heartbeat_ms < p.election_min_ms
            && p.election_min_ms < p.election_max_ms)
        {
            return bad(
                "paxos timing needs 0 < heartbeat_ms < election_min_ms < election_max_ms".into(),
            );
        }
        if p.lease_ms <= p.heartbeat_ms {
            return bad("paxos.lease_ms must exceed paxos.heartbeat_ms".into());
        }
        if self.health.ready_max_safe_time_lag_ms == 0 {
            return bad("health.ready_max_safe_time_lag_ms must be positive".into());
        }
        if self.reads.lead_ms > self.reads.max_lead_ms {
            return bad("reads.lead_ms must not exceed reads.max_lead_ms".into());
        }
        if self.groups.is_empty() {
            return bad("no [[groups]]".into());
        }
        let mut gids = BTreeSet::new();
        for g in &self.groups {
            if g.id == 0 || g.id > meridian_txn::MAX_GROUP_ID {
                return bad(format!(
                    "group id {} is outside 1..={}",
                    g.id,
                    meridian_txn::MAX_GROUP_ID
                ));
            }
            if !gids.insert(g.id) {
                return bad(format!("group {} is listed twice", g.id));
            }
            if g.replicas.is_empty() {
                return bad(format!("group {} has no replicas", g.id));
            }
            if let Some(r) = g
                .replicas
                .iter()
                .chain(&g.joining)
                .find(|r| !ids.contains(r))
            {
                return bad(format!(
                    "group {} names node {r}, which is not among [[nodes]]",
                    g.id
                ));
            }
            if let Some(end) = &g.end {
                if end.as_str() <= g.start.as_str() {
                    return bad(format!(
                        "group {} has an empty range [{:?}, {end:?})",
                        g.id, g.start
                    ));
                }
            }
        }
        // The ranges must tile the key space: sorted by start, each one
        // starting where the previous ended, the first at "" and the last
        // unbounded.
        let mut sorted: Vec<&GroupEntry> = self.groups.iter().collect();
        sorted.sort_by(|a, b| a.start.cmp(&b.start));
        if !sorted[0].start.is_empty() {
            return bad("the first group's range must start at \"\"".into());
        }
        for w in sorted.windows(2) {
            if w[0].end.as_deref() != Some(w[1].start.as_str()) {
                return bad(format!(
                    "groups {} and {} leave a gap or overlap: {:?} then {:?}",
                    w[0].id, w[1].id, w[0].end, w[1].start
                ));
            }
        }
        if sorted.last().is_some_and(|g| g.end.is_some()) {
            return bad("the last group's range must have no end".into());
        }
        Ok(())
    }

    /// The group whose range holds `key`.
    pub fn group_of(&self, key: &[u8]) -> Option<&GroupEntry> {
        self.groups.iter().find(|g| g.contains(key))
    }

    /// This node's entry.
    pub fn me(&self) -> &NodeEntry {
        self.nodes
            .iter()
            .find(|n| n.id == self.node_id)
            .expect("validated: node_id is among the nodes")
    }

    /// The groups this node holds a replica of (as an initial voter or
    /// joining).
    pub fn local_groups(&self) -> impl Iterator<Item = &GroupEntry> {
        self.groups
            .iter()
            .filter(|g| g.replicas.contains(&self.node_id) || g.joining.contains(&self.node_id))
    }
}

/// First printable ASCII byte (space).
const FIRST_PRINTABLE: u8 = 0x20;
/// Last printable ASCII byte (`~`).
const LAST_PRINTABLE: u8 = 0x7e;

/// Default split points for `groups` groups: keys are split evenly by their
/// first byte over printable ASCII, so ordinary text keys spread over all
/// groups. Returns `groups - 1` one-byte boundaries.
pub fn default_split_points(groups: u64) -> Vec<String> {
    let span = u64::from(LAST_PRINTABLE - FIRST_PRINTABLE) + 1;
    (1..groups)
        .map(|i| {
            let b = FIRST_PRINTABLE as u64 + i * span / groups;
            char::from(b as u8).to_string()
        })
        .collect()
}

/// Replicas of each group when `--replicas` is not given: three, so a
/// group survives the loss of one node (a majority of two stays).
pub const DEFAULT_REPLICAS: u64 = 3;

/// A replica count that cannot be placed on the nodes given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Zero replicas per group.
    #[error("--replicas must be at least 1")]
    NoReplicas,
    /// More replicas per group than nodes: two replicas of one group would
    /// share a node.
    #[error(
        "--replicas {replicas} exceeds --nodes {nodes}: each replica of a group needs its own node"
    )]
    MoreReplicasThanNodes {
        /// Replicas asked for.
        replicas: u64,
        /// Nodes available.
        nodes: u64,
    },
}

/// Places `replicas` replicas of each of `groups` groups on nodes
/// `1..=nodes`: the replica lists of the groups, in group order, the first
/// replica of each list being the group's preferred (initial) leader.
///
/// Rule (docs/operations.md, "Placement"): every group's replicas are on
/// distinct nodes; each node holds ⌊G·R/N⌋ or ⌈G·R/N⌉ replicas; each node
/// is the preferred leader of ⌊G/N⌋ or ⌈G/N⌉ groups; the same arguments
/// always give the same placement.
///
/// How: the G·R replicas are dealt round-robin over the nodes in group
/// order (group i takes the R consecutive nodes from `i·R mod N`), which
/// balances replicas; then each group, in order, prefers the node of its
/// R that leads the fewest groups so far (the earliest of them on a tie),
/// which balances leaders.
pub fn place_replicas(
    nodes: u64,
    groups: u64,
    replicas: u64,
) -> Result<Vec<Vec<u64>>, PlacementError> {
    if replicas == 0 {
        return Err(PlacementError::NoReplicas);
    }
    if replicas > nodes {
        return Err(PlacementError::MoreReplicasThanNodes { replicas, nodes });
    }
    let mut leads = vec![0u64; nodes as usize];
    Ok((0..groups)
        .map(|i| {
            let block: Vec<u64> = (0..replicas).map(|j| (i * replicas + j) % nodes).collect();
            let first = (0..block.len())
                .min_by_key(|&j| (leads[block[j] as usize], j))
                .expect("at least one replica");
            leads[block[first] as usize] += 1;
            std::iter::once(block[first])
                .chain(
                    block
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != first)
                        .map(|(_, n)| *n),
                )
                .map(|n| n + 1)
                .collect()
        })
        .collect())
}

/// The default layout of `groups` groups over nodes `1..=nodes` with
/// `replicas` replicas each, placed by [`place_replicas`]: the key ranges
/// of [`default_split_points`], each group's preferred leader first in its
/// `replicas`.
pub fn default_groups(
    nodes: u64,
    groups: u64,
    replicas: u64,
) -> Result<Vec<GroupEntry>, PlacementError> {
    let splits = default_split_points(groups);
    let placed = place_replicas(nodes, groups, replicas)?;
    Ok(placed
        .into_iter()
        .enumerate()
        .map(|(i, replicas)| GroupEntry {
            id: i as u64 + 1,
            start: if i == 0 {
                String::new()
            } else {
                splits[i - 1].clone()
            },
            end: splits.get(i).cloned(),
            replicas,
            joining: Vec::new(),
        })
        .collect())
}

/// The node a group's replicas let campaign first when they start: the
/// first of its configured `replicas` (see [`place_replicas`]).
pub fn preferred_leader(g: &GroupEntry) -> Option<u64> {
    g.replicas.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NodeConfig {
        NodeConfig {
            cluster_id: 7,
            epoch: 1,
            birth_ns: Some(1_796_659_200_000_000_000),
            node_id: 1,
            listen: "127.0.0.1:7101".into(),
            data_dir: "d".into(),
            metrics_listen: None,
            clock: ClockConfig::default(),
            paxos: PaxosConfig::default(),
            health: HealthConfig::default(),
            reads: ReadsConfig::default(),
            splits: SplitsConfig::default(),
            tls: None,
            nodes: (1..=3)
                .map(|id| NodeEntry {
                    id,
                    address: format!("127.0.0.1:{}", 7100 + id),
                })
                .collect(),
            groups: default_groups(3, 3, 3).expect("placeable"),
        }
    }

    proptest::proptest! {
        /// The placement rule: distinct nodes per group, replicas and
        /// preferred leaders spread to within one of even, deterministic.
        #[test]
        fn placement_puts_each_group_on_distinct_nodes_and_spreads_replicas_and_leaders_to_within_one(
            nodes in 1u64..=12,
            groups in 1u64..=128,
            replicas_seed in 0u64..12,
        ) {
            let replicas = 1 + replicas_seed % nodes;
            let placed = place_replicas(nodes, groups, replicas).expect("R <= N");
            proptest::prop_assert_eq!(placed.len() as u64, groups);
            let mut held = vec![0u64; nodes as usize + 1];
            let mut leads = vec![0u64; nodes as usize + 1];
            for g in &placed {
                let distinct: BTreeSet<u64> = g.iter().copied().collect();
                proptest::prop_assert_eq!(distinct.len() as u64, replicas, "{:?}", g);
                proptest::prop_assert!(g.iter().all(|n| (1..=nodes).contains(n)));
                for n in g {
                    held[*n as usize] += 1;
                }
                leads[g[0] as usize] += 1;
            }
            let (lo, hi) = ((groups * replicas) / nodes, (groups * replicas).div_ceil(nodes));
            let (llo, lhi) = (groups / nodes, groups.div_ceil(nodes));
            for n in 1..=nodes as usize {
                proptest::prop_assert!((lo..=hi).contains(&held[n]), "node {} holds {}", n, held[n]);
                proptest::prop_assert!((llo..=lhi).contains(&leads[n]), "node {} leads {}", n, leads[n]);
            }
            proptest::prop_assert_eq!(place_replicas(nodes, groups, replicas).expect("R <= N"), placed);
        }
    }

    #[test]
    fn placement_refuses_zero_replicas_and_more_replicas_than_nodes() {
        assert_eq!(place_replicas(3, 3, 0), Err(PlacementError::NoReplicas));
        assert_eq!(
            place_replicas(3, 3, 4),
            Err(PlacementError::MoreReplicasThanNodes {
                replicas: 4,
                nodes: 3
            })
        );
        // Six nodes, three replicas, six groups: three replicas and one
        // preferred leader per node.
        let g = default_groups(6, 6, 3).expect("placeable");
        for n in 1..=6 {
            assert_eq!(g.iter().filter(|g| g.replicas.contains(&n)).count(), 3);
            assert_eq!(
                g.iter().filter(|g| preferred_leader(g) == Some(n)).count(),
                1
            );
        }
    }

    #[test]
    fn sizes_parse_with_binary_units_and_bad_ones_are_refused() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("64mb"), Ok(64 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "MiB", "8 parsecs", "-1", "99999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn splits_default_to_64_mib_by_size_and_none_by_load_and_zero_turns_a_trigger_off() {
        let c = SplitsConfig::default();
        let p = c.policy().expect("on by default");
        assert_eq!(p.split_bytes, 64 << 20);
        assert!(p.load_qps.is_infinite(), "no splits by load by default");
        let by_load = SplitsConfig {
            load_qps: 2_500,
            ..SplitsConfig::default()
        };
        assert_eq!(by_load.policy().map(|p| p.load_qps), Some(2_500.0));
        assert_eq!(SplitsConfig::off().policy(), None);
        let size_only = SplitsConfig {
            load_qps: 0,
            bytes: 8 << 10,
            ..SplitsConfig::default()
        };
        let p = size_only.policy().expect("size on");
        assert!(p.load_qps.is_infinite());
        // A split size under the minimum range size lowers the minimum.
        assert_eq!(p.min_range_bytes, 8 << 10);
        let text = "[splits]\nbytes = 0\n";
        let parsed: SplitsConfig = toml::from_str::<toml::Table>(text)
            .ok()
            .and_then(|t| t.get("splits").cloned())
            .and_then(|v| v.try_into().ok())
            .expect("a splits table");
        assert_eq!(parsed.bytes, 0);
        assert_eq!(parsed.load_qps, 0);
        assert_eq!(parsed.policy(), None, "both off: no automatic splits");
    }

    #[test]
    fn reads_bounds_default_to_l_10_ms_and_m_1_s_and_l_may_not_exceed_m() {
        let c = sample();
        assert_eq!((c.reads.lead_ms, c.reads.max_lead_ms), (10, 1000));
        let parsed: ReadsConfig = toml::from_str("lead_ms = 5").expect("parses");
        assert_eq!((parsed.lead_ms, parsed.max_lead_ms), (5, 1000));
        let mut bad = sample();
        bad.reads.lead_ms = 2000;
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("reads.lead_ms")
        );
    }

    #[test]
    fn default_ranges_tile_printable_ascii_evenly() {
        let c = sample();
        c.validate().expect("valid");
        assert_eq!(
            default_split_points(3),
            vec!["?".to_string(), "_".to_string()]
        );
        // Ordinary text keys land in every group.
        let groups: BTreeSet<u64> = ["Apple", "banana", "42", "user1", "Zed"]
            .iter()
            .map(|k| c.group_of(k.as_bytes()).expect("tiled").id)
            .collect();
        assert_eq!(groups.len(), 3);
        assert_eq!(c.group_of(b"").map(|g| g.id), Some(1));
        assert_eq!(c.group_of(&[0xff]).map(|g| g.id), Some(3));
        for n in 1..=20 {
            let g = default_groups(3, n, 3).expect("placeable");
            assert_eq!(g.len() as u64, n);
            let mut cfg = sample();
            cfg.groups = g;
            cfg.validate().expect("every default layout is valid");
        }
    }

    #[test]
    fn toml_round_trips_and_bad_values_name_the_field() {
        let c = sample();
        let text = c.to_toml();
        let back: NodeConfig = toml::from_str(&text).expect("parses");
        assert_eq!(back.groups, c.groups);
        let mut bad = sample();
        bad.node_id = 9;
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("node_id 9")
        );
        let mut gap = sample();
        gap.groups[1].start = "A".into();
        assert!(gap.validate().unwrap_err().to_string().contains("gap"));
        let mut eps = sample();
        eps.clock.epsilon_ms = 0.0;
        assert!(
            eps.validate()
                .unwrap_err()
                .to_string()
                .contains("epsilon_ms")
        );
        let unknown = format!("{text}\nbogus = 1\n");
        assert!(toml::from_str::<NodeConfig>(&unknown).is_err());
    }

    #[test]
    fn cluster_init_refuses_more_replicas_than_nodes_or_none_with_exit_2_and_places_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args = |replicas, sub: &str| crate::cli::ClusterInitArgs {
            nodes: 5,
            groups: 5,
            replicas,
            dir: dir.path().join(sub),
            base_port: 17_401,
            epsilon_ms: 1.0,
            split_bytes: None,
        };
        for (r, sub) in [(Some(6), "six"), (Some(0), "zero")] {
            assert_eq!(
                crate::cli::cluster_init(&args(r, sub)),
                std::process::ExitCode::from(2)
            );
            assert!(!dir.path().join(sub).join("node-1").exists());
        }
        let ok = args(None, "default");
        assert_eq!(
            crate::cli::cluster_init(&ok),
            std::process::ExitCode::SUCCESS
        );
        let cfg = NodeConfig::load(&ok.dir.join("node-1").join("meridian.toml")).expect("loads");
        // Three replicas by default; five groups of three over five nodes:
        // three replicas and one preferred leader per node.
        assert!(cfg.groups.iter().all(|g| g.replicas.len() == 3));
        for n in 1..=5 {
            assert_eq!(
                cfg.groups
                    .iter()
                    .filter(|g| g.replicas.contains(&n))
                    .count(),
                3
            );
            assert_eq!(cfg.groups.iter().filter(|g| g.replicas[0] == n).count(), 1);
        }
    }

    #[test]
    fn cluster_init_writes_one_birth_into_every_config_and_an_old_config_without_it_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as u64;
        let args = crate::cli::ClusterInitArgs {
            nodes: 3,
            groups: 1,
            replicas: None,
            dir: dir.path().join("c"),
            base_port: 17_301,
            epsilon_ms: 1.0,
            split_bytes: None,
        };
        assert_eq!(
            crate::cli::cluster_init(&args),
            std::process::ExitCode::SUCCESS
        );
        let mut births = BTreeSet::new();
        for id in 1..=3 {
            let path = args.dir.join(format!("node-{id}")).join("meridian.toml");
            let text = std::fs::read_to_string(&path).expect("written");
            assert!(text.contains("birth_ns = "), "{text}");
            births.insert(NodeConfig::load(&path).expect("loads").birth_ns);
        }
        assert_eq!(
            births.len(),
            1,
            "one birth for the whole cluster: {births:?}"
        );
        let birth = births.into_iter().next().flatten().expect("recorded");
        // This machine's clock less ε (1 ms) when the configs were written.
        assert!(birth + 1_000_000 >= before, "{birth} vs {before}");
        assert!(birth <= before + 60_000_000_000, "{birth} vs {before}");

        // A configuration written before births were recorded: no check.
        let old_path = dir.path().join("old.toml");
        let old: String = std::fs::read_to_string(args.dir.join("node-1").join("meridian.toml"))
            .expect("written")
            .lines()
            .filter(|l| !l.starts_with("birth_ns"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&old_path, old).expect("write");
        assert_eq!(NodeConfig::load(&old_path).expect("loads").birth_ns, None);
        let mut none = sample();
        none.birth_ns = None;
        assert!(!none.to_toml().contains("birth_ns"));
    }
}
