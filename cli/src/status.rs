//! The output of `meridian status`: its JSON schema (version
//! [`STATUS_SCHEMA_VERSION`], documented in docs/operations.md "Status")
//! and its text form.

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::{bound, json_bytes};
use meridian_client::{ClusterStatus, Liveness, NodeStatus};

/// Version of the JSON schema of `meridian status --output json`. Fields
/// are only added within a version; a removal or a change of meaning
/// raises it.
pub const STATUS_SCHEMA_VERSION: u64 = 1;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The status as one JSON object (schema [`STATUS_SCHEMA_VERSION`]).
pub fn to_json(s: &ClusterStatus) -> Json {
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
            })
        })
        .collect();
    let ranges: Vec<Json> = s
        .groups
        .iter()
        .map(|g| {
            let mut obj = serde_json::Map::new();
            obj.insert("group".into(), json!(g.info.id));
            json_bytes(&mut obj, "start", Some(&g.info.start));
            json_bytes(&mut obj, "end", g.info.end.as_deref());
            obj.insert("replicas".into(), json!(g.info.replicas));
            obj.insert("leader".into(), json!(g.info.leader));
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

/// The status as lines of text.
pub fn to_text(s: &ClusterStatus) -> Vec<String> {
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
    for g in &s.groups {
        let replicas: Vec<String> = g.info.replicas.iter().map(u64::to_string).collect();
        out.push(format!(
            "  {:>4}  [{}, {})  replicas {}  leader {}",
            g.info.id,
            bound(Some(&g.info.start), "-∞"),
            bound(g.info.end.as_deref(), "+∞"),
            replicas.join(","),
            g.info.leader.map_or("?".to_string(), |l| l.to_string()),
        ));
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
