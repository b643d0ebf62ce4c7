//! The web console of the metrics endpoint (docs/operations.md "Console"):
//! its JSON against a running cluster, its page, and the Grafana
//! dashboard's metrics (docs/operations.md "Grafana") against `/metrics`.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meridian_node::local::{LocalCluster, LocalOptions};
use meridian_proto::pb;
use serde_json::Value as Json;

/// Status code, head and body of `GET path` at `addr`.
fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("metrics endpoint listens");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("answer");
    let (head, body) = out.split_once("\r\n\r\n").expect("a head and a body");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (code, head.to_string(), body.to_string())
}

fn api(addr: SocketAddr) -> Json {
    let (code, head, body) = get(addr, "/console/api");
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("Content-Type: application/json"), "{head}");
    serde_json::from_str(&body).expect("console JSON")
}

fn metrics_addr(cluster: &LocalCluster, id: u64) -> SocketAddr {
    cluster
        .node(id)
        .and_then(|n| n.metrics_addr())
        .expect("metrics endpoint")
}

/// The node's view of the cluster as the console JSON's `status` carries
/// it: a 64-bit figure as protobuf's JSON mapping writes it, a string.
fn u64_of(v: &Json) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a 64-bit integer as a string: {v}"))
}

/// Polls node `id`'s console JSON until `what` holds of it.
async fn wait_for_api(
    cluster: &LocalCluster,
    id: u64,
    within: Duration,
    what: impl Fn(&Json) -> bool,
) -> Json {
    let deadline = Instant::now() + within;
    loop {
        let v = api(metrics_addr(cluster, id));
        if what(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "console never got there: {v:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_json_is_the_status_schema_with_lock_waits_and_latency_history() {
    let cluster = LocalCluster::start(LocalOptions::default())
        .await
        .expect("cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(30))
        .await
        .expect("leaders");
    let cfg = cluster.config(1).clone();
    let header = pb::Header {
        cluster_id: cfg.cluster_id,
        epoch: cfg.epoch,
    };
    let key = bytes::Bytes::from_static(b"\x01k");

    // At group 1's leader, an older transaction reads a key (a shared
    // lock) and a younger one's commit that writes it queues behind it
    // (wound-wait: the younger waits).
    let mut found = None;
    'find: for _ in 0..100 {
        for (i, e) in cluster.endpoints().into_iter().enumerate() {
            let Ok(mut c) =
                pb::meridian_client::MeridianClient::connect(format!("http://{e}")).await
            else {
                continue;
            };
            let begin = pb::BeginRequest {
                header: Some(header),
                group: 1,
                priority: None,
                mode: pb::CcMode::Locking as i32,
                reserve: 0,
            };
            let older = c.begin(begin).await.expect("rpc").into_inner();
            if older.error.is_some() {
                continue;
            }
            let r = c
                .read(pb::ReadRequest {
                    header: Some(header),
                    group: 1,
                    txn: older.txn,
                    keys: vec![key.clone()],
                    guest: None,
                })
                .await
                .expect("rpc")
                .into_inner();
            assert!(r.error.is_none(), "{:?}", r.error);
            found = Some((i as u64 + 1, c, older.txn.expect("an id")));
            break 'find;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (leader, mut c, older) = found.expect("group 1 has a leader");
    let younger = c
        .begin(pb::BeginRequest {
            header: Some(header),
            group: 1,
            priority: None,
            mode: pb::CcMode::Locking as i32,
            reserve: 0,
        })
        .await
        .expect("rpc")
        .into_inner()
        .txn
        .expect("an id");
    // Its write needs the key exclusively; the older's shared lock holds.
    let mut waiting = c.clone();
    let blocked = tokio::spawn(async move {
        waiting
            .commit(pb::CommitRequest {
                header: Some(header),
                group: 1,
                txn: Some(younger),
                writes: vec![pb::Write {
                    key,
                    value: Some(bytes::Bytes::from_static(b"v")),
                }],
                participants: vec![],
                mode: pb::CcMode::Locking as i32,
            })
            .await
    });

    let txn = |t: pb::TxnId| (t.origin.to_string(), t.seq.to_string());
    let v = wait_for_api(&cluster, leader, Duration::from_secs(10), |v| {
        v["waits_for"]["edges"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    })
    .await;
    assert_eq!(v["schema_version"], 1);
    assert_eq!(u64_of(&v["node"]), leader);
    assert_eq!(v["waits_for"]["ok"], true);
    assert_eq!(v["waits_for"]["count"], 1, "{v:#}");
    let edge = &v["waits_for"]["edges"][0];
    assert_eq!(u64_of(&edge["group"]), 1);
    assert_eq!(edge["key"], "AWs=", "the key in base64");
    let of = |t: &Json| {
        (
            t["origin"].as_str().unwrap_or_default().to_string(),
            t["seq"].as_str().unwrap_or_default().to_string(),
        )
    };
    assert_eq!(of(&edge["waiter"]), txn(younger), "{edge}");
    assert_eq!(of(&edge["holder"]), txn(older), "{edge}");

    // `status` is StatusResponse: the nodes with their liveness, every
    // group with its range, replicas, leader and this replica's figures.
    let v = wait_for_api(&cluster, leader, Duration::from_secs(10), |v| {
        v["status"]["nodes"].as_array().is_some_and(|n| {
            n.iter()
                .all(|n| n["liveness"] == "LIVENESS_SELF" || n["liveness"] == "LIVENESS_LIVE")
        })
    })
    .await;
    let st = &v["status"];
    assert_eq!(u64_of(&st["cluster_id"]), cfg.cluster_id);
    assert_eq!(st["clock_ok"], true);
    assert_eq!(st["version"], env!("CARGO_PKG_VERSION"));
    let nodes = st["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        let id = u64_of(&n["id"]);
        let me = id == leader;
        assert_eq!(
            n["liveness"],
            if me { "LIVENESS_SELF" } else { "LIVENESS_LIVE" }
        );
        assert!(n["address"].as_str().is_some_and(|a| !a.is_empty()), "{n}");
        assert!(n["metrics_address"].is_string(), "{n}");
        assert!(n["last_contact_ms"].is_string(), "{n}");
    }
    let groups = st["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 3);
    for g in groups {
        assert!(g["start"].is_string(), "{g}");
        assert!(g["end"].is_string() || g["end"].is_null(), "{g}");
        assert_eq!(g["replicas"].as_array().map(Vec::len), Some(3), "{g}");
        assert!(g["leader"].is_string(), "every group has a leader: {g}");
        assert_eq!(g["local_replica"], true);
        assert!(
            ["leader", "follower", "candidate"].contains(&g["role"].as_str().unwrap_or("")),
            "{g}"
        );
        assert!(g["safe_time_lag_micros"].is_string(), "{g}");
        assert!(g["bytes"].is_string(), "{g}");
        assert_eq!(u64_of(&g["generation"]), 1, "{g}");
    }
    let g1 = groups
        .iter()
        .find(|g| u64_of(&g["id"]) == 1)
        .expect("group 1");
    assert_eq!(u64_of(&g1["leader"]), leader);
    assert_eq!(g1["local_leader"], true);
    u64_of(&g1["active_txns"]);
    assert!(
        u64_of(&g1["applied"]) > 0 && u64_of(&g1["t_safe"]) > 0,
        "{g1}"
    );

    // The latency history: five minutes of 10 s intervals, per series.
    let lat = &v["latency"];
    assert_eq!(lat["interval_ms"], 10_000);
    assert_eq!(lat["window_ms"], 300_000);
    for s in ["commit", "read", "lock_wait"] {
        assert!(lat["series"][s].is_array(), "{lat}");
    }

    // The page: HTML whose script polls the JSON, at `/` and `/console`.
    for path in ["/", "/console"] {
        let (code, head, body) = get(metrics_addr(&cluster, 2), path);
        assert_eq!(code, 200);
        assert!(
            head.contains("Content-Type: text/html; charset=utf-8"),
            "{head}"
        );
        assert!(body.starts_with("<!doctype html>"));
        assert!(body.contains("<script>") && body.contains("\"/console/api\""));
    }
    let (_, head, _) = get(metrics_addr(&cluster, 2), "/console/api");
    assert!(head.contains("Access-Control-Allow-Origin: *"), "{head}");

    // The older transaction's abort lets the younger commit.
    c.abort(pb::AbortRequest {
        header: Some(header),
        group: 1,
        txn: Some(older),
    })
    .await
    .expect("rpc");
    let r = tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .expect("the waiter is granted")
        .expect("task")
        .expect("rpc")
        .into_inner();
    assert!(r.error.is_none(), "{:?}", r.error);
    assert!(r.commit_ts > 0);
    cluster.shutdown().await;
}

/// Names of the series `text` (Prometheus text format) declares, with a
/// histogram's `_bucket`, `_sum` and `_count`.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut w = rest.split_whitespace();
        let (Some(name), Some(kind)) = (w.next(), w.next()) else {
            continue;
        };
        names.insert(name.to_string());
        if kind == "histogram" || kind == "summary" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

/// PromQL's keywords and aggregation operators (`sum by (le) (…)` puts
/// the grouping between operator and parenthesis): a bare word that is one
/// of them names no metric.
const PROMQL_KEYWORDS: [&str; 26] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
];

/// The metric names a PromQL expression uses: its bare identifiers, less
/// function names (followed by `(`), keywords, label names and values
/// (inside `{}`, or the lists of `by (…)` and friends), strings, ranges
/// (`[5m]`) and Grafana variables (`$x`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    i += 1;
                }
                i += 1;
            }
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                // A number (with an exponent or a duration's unit).
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let lower = word.to_ascii_lowercase();
                if [
                    "by",
                    "without",
                    "on",
                    "ignoring",
                    "group_left",
                    "group_right",
                ]
                .contains(&lower.as_str())
                {
                    // A list of label names may follow.
                    if chars.get(j) == Some(&'(') {
                        i = j;
                        while i < chars.len() && chars[i] != ')' {
                            i += 1;
                        }
                        i += 1;
                    }
                } else if chars.get(j) == Some(&'(') || PROMQL_KEYWORDS.contains(&lower.as_str()) {
                    // A function or an aggregation, or a keyword.
                } else {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn promql_metric_names_skip_functions_labels_ranges_and_variables() {
    let e = r#"histogram_quantile(0.99, sum by (le, instance) (rate(meridian_commit_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval]))) * 1e3 + on (group) group_left max(x_total offset 5m) / bool up"#;
    let names: Vec<String> = metric_names(e).into_iter().collect();
    assert_eq!(
        names,
        ["meridian_commit_latency_seconds_bucket", "up", "x_total"]
    );
}

/// Every PromQL expression of the dashboard: its panels' targets (nested
/// rows' too) and its template variables' queries.
fn expressions(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", Json::String(e)) => out.push(e.clone()),
                    ("query", Json::String(q)) if q.starts_with("label_values(") => {
                        let inner = q.trim_start_matches("label_values(");
                        let metric = inner.split([',', ')']).next().unwrap_or_default();
                        out.push(metric.trim().to_string());
                    }
                    _ => expressions(x, out),
                }
            }
        }
        Json::Array(a) => a.iter().for_each(|x| expressions(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_dashboard_queries_only_metrics_a_node_exports() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grafana/meridian.json");
    let text = std::fs::read_to_string(path).expect("the dashboard");
    let dashboard: Json = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(dashboard["title"].is_string());
    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();

    let cluster = LocalCluster::start(LocalOptions {
        nodes: 1,
        groups: 1,
        ..LocalOptions::default()
    })
    .await
    .expect("cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(30))
        .await
        .expect("leaders");
    let (code, _, body) = get(metrics_addr(&cluster, 1), "/metrics");
    assert_eq!(code, 200);
    let have = exported(&body);
    let missing: Vec<&String> = used.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics no node exports: {missing:?}"
    );
    // What an operator looks at first is there.
    for name in [
        "meridian_commit_latency_seconds_bucket",
        "meridian_read_latency_seconds_bucket",
        "meridian_commits_total",
        "meridian_group_leader",
        "meridian_group_safe_time_lag_seconds",
        "meridian_wal_fsync_seconds_bucket",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(used.contains(name), "the dashboard shows {name}");
    }
    cluster.shutdown().await;
}
