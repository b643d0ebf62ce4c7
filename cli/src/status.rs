//! The output of `meridian status`: its JSON schema (version
//! [`STATUS_SCHEMA_VERSION`], documented in docs/operations.md "Status")
//! and its text form.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value as Json, json};

use super::{bound, json_bytes};
use meridian_client::{Client, ClusterStatus, GroupStatus, Liveness, NodeId, NodeStatus};

/// How long `status` waits for each other node's report of its replicas'
/// sizes before it reports that node's bytes as unknown.
pub const SIZE_REPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// Sizes of ranges and nodes, and leaders, gathered from every node that
/// answered: a node knows only its own replicas' sizes, and the leaders of
/// the groups it hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    /// Per group: the node whose replica reports that it leads, else the
    /// leader a replica of the group knows of.
    pub leaders: BTreeMap<u64, NodeId>,
    /// Per node that answered: its replicas' bytes, by group.
    pub by_node: BTreeMap<NodeId, BTreeMap<u64, u64>>,
    /// Per group: the bytes its leader's replica reports, or, without one
    /// that answered, those of the replica that has applied most.
    pub by_range: BTreeMap<u64, u64>,
    /// Per group: the group as a node hosting a replica of it reports it
    /// (its leader's report, else the newest generation's): the range that
    /// replica applied. Groups a split created on other nodes than the
    /// answering one are known only from here.
    pub hosted: BTreeMap<u64, GroupStatus>,
}

impl Sizes {
    /// The sizes in the reports `reports` (one per node that answered).
    pub fn from_reports<'a>(reports: impl IntoIterator<Item = &'a ClusterStatus>) -> Sizes {
        let mut sizes = Sizes::default();
        // Per group: (leads, applied, bytes) of the best replica so far.
        let mut best: BTreeMap<u64, (bool, u64, u64)> = BTreeMap::new();
        for r in reports {
            let mine = sizes.by_node.entry(r.node).or_default();
            for g in r.groups.iter().filter(|g| g.local_replica) {
                if g.local_leader {
                    sizes.leaders.insert(g.info.id, r.node);
                } else if let Some(l) = g.info.leader {
                    sizes.leaders.entry(g.info.id).or_insert(l);
                }
                let rank = |g: &GroupStatus| (g.local_leader, g.generation, g.applied);
                match sizes.hosted.get(&g.info.id) {
                    Some(h) if rank(h) >= rank(g) => {}
                    _ => {
                        sizes.hosted.insert(g.info.id, g.clone());
                    }
                }
                let Some(bytes) = g.bytes else { continue };
                mine.insert(g.info.id, bytes);
                let candidate = (g.local_leader, g.applied, bytes);
                let e = best.entry(g.info.id).or_insert(candidate);
                if (candidate.0, candidate.1) > (e.0, e.1) {
                    *e = candidate;
                }
            }
        }
        sizes.by_range = best.into_iter().map(|(g, (_, _, b))| (g, b)).collect();
        sizes
    }

    /// Node `id`'s bytes, the sum over its replicas; `None` if it did not
    /// answer.
    pub fn node_bytes(&self, id: NodeId) -> Option<u64> {
        self.by_node.get(&id).map(|m| m.values().sum())
    }
}

/// Asks every node `s` lists (but the one that answered it, and those it
/// sees down) for its own report, all at once and each within
/// [`SIZE_REPORT_TIMEOUT`], and gathers the sizes of all the reports.
pub async fn gather_sizes(client: &Client, s: &ClusterStatus) -> Sizes {
    let mut asks = tokio::task::JoinSet::new();
    for n in s
        .nodes
        .iter()
        .filter(|n| n.id != s.node && n.liveness != Liveness::Down)
    {
        let (client, id) = (client.clone(), n.id);
        asks.spawn(
            async move { tokio::time::timeout(SIZE_REPORT_TIMEOUT, client.status_of(id)).await },
        );
    }
    let mut reports = vec![s.clone()];
    while let Some(r) = asks.join_next().await {
        if let Ok(Ok(Ok(r))) = r {
            reports.push(r);
        }
    }
    Sizes::from_reports(&reports)
}

/// Every range in key order: each group as a node hosting it reports it
/// ([`Sizes::hosted`]), else as the answering node knows it (a group
/// whose hosts did not answer).
pub fn ranges(s: &ClusterStatus, sizes: &Sizes) -> Vec<GroupStatus> {
    let mut all: BTreeMap<u64, GroupStatus> =
        s.groups.iter().map(|g| (g.info.id, g.clone())).collect();
    for (id, g) in &sizes.hosted {
        all.insert(*id, g.clone());
    }
    let mut out: Vec<GroupStatus> = all.into_values().collect();
    out.sort_by(|a, b| (&a.info.start, a.info.id).cmp(&(&b.info.start, b.info.id)));
    out
}

/// The leader of group `g`: as a replica of it reported, else as the
/// answering node knows it.
fn leader(g: &GroupStatus, sizes: &Sizes) -> Option<NodeId> {
    sizes.leaders.get(&g.info.id).copied().or(g.info.leader)
}

/// A byte count for people: B, KiB, MiB, GiB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Version of the JSON schema of `meridian status --output json`. Fields
/// are only added within a version; a removal or a change of meaning
/// raises it.
pub const STATUS_SCHEMA_VERSION: u64 = 1;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The status as one JSON object (schema [`STATUS_SCHEMA_VERSION`]), with
/// the sizes gathered from the nodes that answered.
pub fn to_json(s: &ClusterStatus, sizes: &Sizes) -> Json {
    let replicas: Vec<Json> = s
        .groups
        .iter()
        .filter(|g| g.local_replica)
        .map(|g| {
            json!({
                "group": g.info.id,
                "role": g.role.map(|r| r.as_str()),
                "chosen": g.chosen,
                "applied": g.applied,
                "active_txns": g.active_txns,
                "safe_time_lag_ms": g.safe_time_lag.map(ms),
                "t_safe": g.t_safe.as_nanos(),
                "bytes": g.bytes,
            })
        })
        .collect();
    let nodes: Vec<Json> = s
        .nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "address": n.address,
                "metrics_address": n.metrics_address,
                "liveness": {
                    "state": n.liveness.as_str(),
                    "last_contact_ms": n.last_contact.map(|d| d.as_millis() as u64),
                },
                // Only the answering node reports its replicas; ask
                // another with --node.
                "replicas": if n.id == s.node { Json::from(replicas.clone()) } else { Json::Null },
                // Its replicas' bytes, if it answered.
                "bytes": sizes.node_bytes(n.id),
                "ranges": sizes.by_node.get(&n.id).map(|m| m.len()),
            })
        })
        .collect();
    let ranges: Vec<Json> = ranges(s, sizes)
        .iter()
        .map(|g| {
            let mut obj = serde_json::Map::new();
            obj.insert("group".into(), json!(g.info.id));
            json_bytes(&mut obj, "start", Some(&g.info.start));
            json_bytes(&mut obj, "end", g.info.end.as_deref());
            obj.insert("replicas".into(), json!(g.info.replicas));
            obj.insert("leader".into(), json!(leader(g, sizes)));
            obj.insert("generation".into(), json!(g.generation));
            obj.insert("bytes".into(), json!(sizes.by_range.get(&g.info.id)));
            Json::Object(obj)
        })
        .collect();
    json!({
        "schema_version": STATUS_SCHEMA_VERSION,
        "cluster_id": s.cluster_id,
        "epoch": s.epoch,
        "answered_by": s.node,
        "version": s.version,
        "clock": {
            "ok": s.clock_ok,
            "detail": s.clock_detail,
            "now_earliest": s.now.earliest.as_nanos(),
            "now_latest": s.now.latest.as_nanos(),
        },
        "nodes": nodes,
        "ranges": ranges,
    })
}

fn liveness_text(n: &NodeStatus) -> String {
    let ago = |d: Duration| {
        if d < Duration::from_secs(10) {
            format!("{} ms ago", d.as_millis())
        } else {
            format!("{:.1} s ago", d.as_secs_f64())
        }
    };
    match (n.liveness, n.last_contact) {
        (Liveness::Answering, _) => "self (answering)".to_string(),
        (state, Some(d)) => format!("{} (last contact {})", state.as_str(), ago(d)),
        (Liveness::Down, None) => "down (never heard from)".to_string(),
        (state, None) => state.as_str().to_string(),
    }
}

/// The status as lines of text, with the sizes gathered from the nodes
/// that answered.
pub fn to_text(s: &ClusterStatus, sizes: &Sizes) -> Vec<String> {
    let mut out = vec![
        format!(
            "cluster {:#x}, epoch {}, answered by node {} (version {})",
            s.cluster_id, s.epoch, s.node, s.version
        ),
        format!(
            "clock: {} (ε {} ns), {}{}",
            s.now.midpoint(),
            s.now.epsilon_nanos(),
            if s.clock_ok { "ok" } else { "UNHEALTHY" },
            if s.clock_detail.is_empty() {
                String::new()
            } else {
                format!(": {}", s.clock_detail)
            }
        ),
        format!("nodes, as node {} sees them:", s.node),
        format!(
            "  {:>4}  {:<22} {:<22} LIVENESS",
            "ID", "ADDRESS", "METRICS"
        ),
    ];
    for n in &s.nodes {
        out.push(format!(
            "  {:>4}  {:<22} {:<22} {}",
            n.id,
            n.address,
            n.metrics_address.as_deref().unwrap_or("-"),
            liveness_text(n)
        ));
    }
    out.push("ranges:".to_string());
    for g in &ranges(s, sizes) {
        let replicas: Vec<String> = g.info.replicas.iter().map(u64::to_string).collect();
        out.push(format!(
            "  {:>4}  [{}, {})  replicas {}  leader {}  {}",
            g.info.id,
            bound(Some(&g.info.start), "-∞"),
            bound(g.info.end.as_deref(), "+∞"),
            replicas.join(","),
            leader(g, sizes).map_or("?".to_string(), |l| l.to_string()),
            sizes
                .by_range
                .get(&g.info.id)
                .map_or("? bytes".to_string(), |b| human_bytes(*b)),
        ));
    }
    out.push("bytes per node (its replicas' ranges):".to_string());
    for n in &s.nodes {
        out.push(match sizes.by_node.get(&n.id) {
            Some(m) => format!(
                "  {:>4}  {} in {} ranges",
                n.id,
                human_bytes(m.values().sum()),
                m.len()
            ),
            None => format!("  {:>4}  ? (did not answer)", n.id),
        });
    }
    out.push(format!("replicas at node {}:", s.node));
    out.push(format!(
        "  {:>5}  {:<9} {:>10} {:>10} {:>7}  SAFE-TIME LAG",
        "GROUP", "ROLE", "CHOSEN", "APPLIED", "ACTIVE"
    ));
    for g in s.groups.iter().filter(|g| g.local_replica) {
        out.push(format!(
            "  {:>5}  {:<9} {:>10} {:>10} {:>7}  {}",
            g.info.id,
            g.role.map_or("?", |r| r.as_str()),
            g.chosen,
            g.applied,
            g.active_txns,
            g.safe_time_lag
                .map_or("-".to_string(), |d| format!("{:.3} ms", ms(d)))
        ));
    }
    out
}
