//! Automatic range splits (docs/design.md §9, "Automatic splits"): the
//! driver loop keeps a [`SplitWatch`] that counts each leader's requests
//! and asks the sans-IO [`SplitPolicy`] every [`SPLIT_CHECK_INTERVAL`]
//! whether its range should split, and where; the answer is published in
//! the replica's view. A task of the node ([`run`]) reads the views and
//! makes each split the way an operator's `meridian admin split` does
//! ([`meridian_client::Client::split`]: a child id allocated in the
//! directory, the split applied in the parent's log, both halves recorded
//! in the directory, conditional on their generation). The same task
//! repairs the directory when a split applied but its record was not
//! written (the node crashed, or the system range was unreachable, between
//! the two steps): the leader of every range whose applied generation is
//! newer than its directory record writes it.
//!
//! Splitting is safe whoever asks and however often (the parent's log
//! orders splits; a stale request is refused with nothing changed), so
//! nothing here is needed for safety: the policy only decides when.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use meridian_client::directory::DirectoryRecord;
use meridian_client::{Client, ClientOptions, TlsOptions};
use meridian_participant::INITIAL_GENERATION;
use meridian_truetime::Timestamp;
use meridian_txn::split_policy::{RangeFacts, SplitDecision, SplitPolicy, SplitPolicyConfig};
use meridian_txn::{GroupId, GroupReplica, ReadOp, Request};

use crate::service::Shared;

/// How often each leader's split policy is asked whether to split, and
/// how often the node's split task looks at the answers.
pub const SPLIT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How long a range whose automatic split failed waits before another.
pub const SPLIT_RETRY_BACKOFF: Duration = Duration::from_secs(10);

/// How often the split task checks that the directory records the ranges
/// this node leads, at their applied generation.
pub const DIRECTORY_REPAIR_INTERVAL: Duration = Duration::from_secs(5);

/// What the driver loop keeps for automatic splits: one policy per range
/// this node leads, reset whenever the range's generation changes (after
/// a split both halves start afresh).
pub struct SplitWatch {
    cfg: SplitPolicyConfig,
    /// Per led group: the descriptor generation the policy was made for,
    /// and the policy.
    policies: HashMap<GroupId, (u64, SplitPolicy)>,
    /// The last answers, by group.
    decisions: BTreeMap<GroupId, SplitDecision>,
    last_check: Option<Instant>,
    /// State of the xorshift generator that feeds the reservoir samples.
    rng: u64,
}

/// The key a request touches first, for the load sample: the first key
/// read or written, or a scan's start. Requests without a key (begin,
/// heartbeat, abort, status, split) are not load.
fn request_key(request: &Request) -> Option<&[u8]> {
    match request {
        Request::Read { keys, .. } => keys.first().map(|k| k.as_ref()),
        Request::Scan { start, .. } => Some(start.as_ref()),
        Request::Commit { writes, .. } => writes.first().map(|w| w.key.as_ref()),
        Request::ReadOnly { reads, .. } => reads.first().map(|r| match r {
            ReadOp::Get(k) => k.as_ref(),
            ReadOp::Scan { start, .. } => start.as_ref(),
        }),
        _ => None,
    }
}

impl SplitWatch {
    /// A watch with thresholds `cfg`, seeded by `seed` (the reservoir's
    /// randomness only).
    pub fn new(cfg: SplitPolicyConfig, seed: u64) -> SplitWatch {
        SplitWatch {
            cfg,
            policies: HashMap::new(),
            decisions: BTreeMap::new(),
            last_check: None,
            rng: seed | 1,
        }
    }

    /// Counts `request` for `group` at local time `now`, if this node
    /// leads the group (a policy exists only for led groups).
    pub fn record(&mut self, group: GroupId, now: Timestamp, request: &Request) {
        let Some((_, policy)) = self.policies.get_mut(&group) else {
            return;
        };
        let Some(key) = request_key(request) else {
            return;
        };
        // xorshift64: cheap, and only the reservoir's slots depend on it.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        policy.record(now, key, self.rng);
    }

    /// Whether a check is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.last_check
            .is_none_or(|t| now.duration_since(t) >= SPLIT_CHECK_INTERVAL)
    }

    /// Asks each led range's policy whether to split it; answers whether
    /// any answer changed. Ranges this node no longer leads lose their
    /// policy.
    pub fn check(
        &mut self,
        at: Instant,
        now: Timestamp,
        replicas: &BTreeMap<GroupId, GroupReplica>,
    ) -> bool {
        self.last_check = Some(at);
        self.policies
            .retain(|g, _| replicas.get(g).is_some_and(|r| r.is_leading()));
        let ranges_on_node = replicas.len() as u64;
        let mut decisions = BTreeMap::new();
        for (g, r) in replicas {
            if !r.is_leading() {
                continue;
            }
            let d = r.state().descriptor();
            let entry = self
                .policies
                .entry(*g)
                .or_insert_with(|| (d.generation, SplitPolicy::new(self.cfg.clone())));
            if entry.0 != d.generation {
                *entry = (d.generation, SplitPolicy::new(self.cfg.clone()));
            }
            let bytes = r.state().range_bytes();
            // The midpoint costs a scan of half the range: only for a
            // range that would split by size.
            let by_size = bytes > self.cfg.split_bytes
                && bytes >= self.cfg.min_range_bytes
                && ranges_on_node < self.cfg.max_ranges_per_node;
            let facts = RangeFacts {
                start: d.start.clone(),
                end: d.end.clone(),
                bytes,
                size_midpoint: if by_size {
                    r.state().size_midpoint()
                } else {
                    None
                },
                ranges_on_node,
            };
            // The system keyspace never splits: a split key is a user key.
            if let Some(decision) = entry
                .1
                .decide(now, &facts)
                .filter(|d| !meridian_txn::api::is_system_key(split_key(d)))
            {
                decisions.insert(*g, decision);
            }
        }
        let changed = decisions != self.decisions;
        self.decisions = decisions;
        changed
    }

    /// The last answer for `group`.
    pub fn decision(&self, group: GroupId) -> Option<&SplitDecision> {
        self.decisions.get(&group)
    }
}

/// The key a decision splits at.
pub fn split_key(d: &SplitDecision) -> &Bytes {
    match d {
        SplitDecision::BySize { key } | SplitDecision::ByLoad { key } => key,
    }
}

/// The reason a decision names, as logs and status print it.
pub fn split_reason(d: &SplitDecision) -> &'static str {
    match d {
        SplitDecision::BySize { .. } => "size",
        SplitDecision::ByLoad { .. } => "load",
    }
}

/// Where the split task reaches the cluster: this node's own address
/// first, then every configured node's.
pub struct SplitTarget {
    /// Endpoints, `host:port`.
    pub endpoints: Vec<String>,
    /// The client's options (TLS as the node's, if configured).
    pub options: ClientOptions,
}

impl SplitTarget {
    /// The target of node `shared` listening on `own`.
    pub fn of(shared: &Shared, own: std::net::SocketAddr) -> SplitTarget {
        let mut endpoints = vec![own.to_string()];
        endpoints.extend(
            shared
                .cfg
                .nodes
                .iter()
                .filter(|n| n.id != shared.cfg.node_id)
                .map(|n| n.address.clone()),
        );
        let mut options = ClientOptions::default();
        if let Some(tls) = &shared.cfg.tls {
            // A node's certificate serves as a client certificate too:
            // the peers already connect with it.
            options = options.with_tls(TlsOptions {
                ca_cert: tls.ca.clone(),
                client_cert: Some(tls.cert.clone()),
                client_key: Some(tls.key.clone()),
                domain: None,
            });
        }
        SplitTarget { endpoints, options }
    }
}

/// The split task: every [`SPLIT_CHECK_INTERVAL`], splits one range this
/// node leads whose policy asks for it (one at a time, so a node never
/// floods its directory), and every [`DIRECTORY_REPAIR_INTERVAL`] records
/// in the directory the ranges it leads whose applied generation is newer
/// than their record. Ends when the node stops.
pub async fn run(
    shared: Arc<Shared>,
    target: SplitTarget,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut task = SplitTask {
        shared,
        target,
        client: None,
        backoff: HashMap::new(),
        recorded: HashMap::new(),
        last_repair: None,
    };
    let mut tick = tokio::time::interval(SPLIT_CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        task.split_one().await;
        task.repair_directory().await;
    }
}

struct SplitTask {
    shared: Arc<Shared>,
    target: SplitTarget,
    client: Option<Client>,
    /// Ranges whose last automatic split failed, until when they wait.
    backoff: HashMap<GroupId, Instant>,
    /// Per led group, the generation known to be in the directory.
    recorded: HashMap<GroupId, u64>,
    last_repair: Option<Instant>,
}

impl SplitTask {
    /// The task's client, connected on first use.
    async fn client(&mut self) -> Option<&Client> {
        if self.client.is_none() {
            match Client::connect_with(&self.target.endpoints, self.target.options.clone()).await {
                Ok(c) => self.client = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "automatic splits: cannot reach the cluster");
                    return None;
                }
            }
        }
        self.client.as_ref()
    }

    /// Splits the first led range whose policy asks for a split and is
    /// not backing off.
    async fn split_one(&mut self) {
        let now = Instant::now();
        self.backoff.retain(|_, until| *until > now);
        let wanted = {
            let views = self.shared.views.read();
            views
                .values()
                .filter(|v| v.leading && !self.backoff.contains_key(&v.group))
                .find_map(|v| v.split.clone().map(|d| (v.group, d)))
        };
        let Some((group, decision)) = wanted else {
            return;
        };
        let key = split_key(&decision).clone();
        let reason = split_reason(&decision);
        let Some(client) = self.client().await else {
            self.backoff.insert(group, now + SPLIT_RETRY_BACKOFF);
            return;
        };
        let started = Instant::now();
        match client
            .split(key.clone(), &mut |step| {
                tracing::debug!(group, %step, "automatic split");
            })
            .await
        {
            Ok(report) => {
                tracing::info!(
                    group,
                    reason,
                    left = %report.left,
                    right = %report.right,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "automatic split"
                );
                self.shared.metrics.count_split(reason);
                for d in [&report.left, &report.right] {
                    if report.recorded {
                        self.recorded.insert(d.group, d.generation);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(group, reason, key = ?key, error = %e, "automatic split failed");
                self.backoff.insert(group, now + SPLIT_RETRY_BACKOFF);
            }
        }
    }

    /// Records in the directory each led range whose applied generation
    /// is newer than the directory's record of it.
    async fn repair_directory(&mut self) {
        let now = Instant::now();
        if self
            .last_repair
            .is_some_and(|t| now.duration_since(t) < DIRECTORY_REPAIR_INTERVAL)
        {
            return;
        }
        self.last_repair = Some(now);
        // Bootstrap ranges need no record (every node's configuration
        // names them); a range a split changed does.
        let unconfirmed: Vec<DirectoryRecord> = {
            let views = self.shared.views.read();
            views
                .values()
                .filter(|v| v.leading)
                .filter_map(|v| {
                    let d = v.descriptor.as_ref()?;
                    let known = self.recorded.get(&d.group).copied().unwrap_or(0);
                    (d.generation > INITIAL_GENERATION && d.generation > known).then(|| {
                        DirectoryRecord {
                            descriptor: d.clone(),
                            replicas: v.voters.clone(),
                        }
                    })
                })
                .collect()
        };
        if unconfirmed.is_empty() {
            return;
        }
        let Some(client) = self.client().await else {
            return;
        };
        let dir = match client.directory().await {
            Ok(dir) => dir,
            Err(e) => {
                tracing::debug!(error = %e, "directory repair: directory not read");
                return;
            }
        };
        let stale: Vec<DirectoryRecord> = unconfirmed
            .into_iter()
            .filter(|u| {
                !dir.records.iter().any(|r| {
                    r.descriptor.group == u.descriptor.group
                        && r.descriptor.generation >= u.descriptor.generation
                })
            })
            .collect();
        let confirmed: Vec<(GroupId, u64)> = dir
            .records
            .iter()
            .map(|r| (r.descriptor.group, r.descriptor.generation))
            .collect();
        if !stale.is_empty() {
            match client.record_ranges(&stale).await {
                Ok(written) => {
                    for (rec, w) in stale.iter().zip(written) {
                        tracing::info!(
                            range = %rec.descriptor,
                            written = w,
                            "directory repair: range recorded"
                        );
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "directory repair: not written");
                    return;
                }
            }
            for rec in &stale {
                self.recorded
                    .insert(rec.descriptor.group, rec.descriptor.generation);
            }
        }
        for (g, generation) in confirmed {
            let e = self.recorded.entry(g).or_insert(0);
            *e = (*e).max(generation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_s_load_key_is_the_first_key_it_reads_or_writes() {
        let k = |s: &'static str| Bytes::from_static(s.as_bytes());
        let txn = meridian_participant::TxnId::new(1, 7);
        let read = Request::Read {
            txn,
            keys: vec![k("b"), k("a")],
            guest: None,
        };
        assert_eq!(request_key(&read), Some(&b"b"[..]));
        let ro = Request::ReadOnly {
            at: meridian_txn::ReadAt::Strong,
            reads: vec![ReadOp::Scan {
                start: k("s"),
                end: None,
                limit: 10,
            }],
        };
        assert_eq!(request_key(&ro), Some(&b"s"[..]));
        assert_eq!(request_key(&Request::Abort { txn }), None);
    }
}
