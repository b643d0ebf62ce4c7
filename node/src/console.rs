//! The web console (docs/operations.md "Console"), served by the metrics
//! endpoint, as CockroachDB's DB Console or TiDB Dashboard: one static page
//! ([`PAGE`], at `/` and [`PAGE_PATH`]) that polls this node's JSON
//! ([`API_PATH`], schema [`CONSOLE_SCHEMA_VERSION`]) and its live peers'.
//!
//! The JSON adds nothing to the cluster's status schema but what status
//! does not carry: its `status` is the node's [`crate::status::status`]
//! (`StatusResponse` of `meridian.proto`, in protobuf's JSON mapping with
//! the proto field names), its `waits_for` the admin API's
//! `WaitsForEdge`s, and its `latency` the commit, read and lock-wait
//! latency of the last [`HISTORY_INTERVALS`] intervals of
//! [`HISTORY_INTERVAL`], differences of the metrics' histograms sampled by
//! the endpoint ([`LatencyHistory`]).

use std::collections::VecDeque;
use std::time::Duration;

use meridian_proto::pb;
use serde_json::{Value as Json, json};
use tokio::sync::oneshot;

use crate::health::Answer;
use crate::metrics::{HistogramSnapshot, Metrics};
use crate::runtime::Event;
use crate::service::Shared;

/// Version of the console JSON's schema. Fields are only added within a
/// version; a removal or a change of meaning raises it.
pub const CONSOLE_SCHEMA_VERSION: u64 = 1;

/// Path of the console's page (also served at `/`).
pub const PAGE_PATH: &str = "/console";

/// Path of the console's JSON.
pub const API_PATH: &str = "/console/api";

/// The console's page: HTML and vanilla JavaScript, no external resource.
pub const PAGE: &str = include_str!("console.html");

/// Length of one interval of the latency history.
pub const HISTORY_INTERVAL: Duration = Duration::from_secs(10);

/// Intervals the latency history keeps: five minutes of
/// [`HISTORY_INTERVAL`].
pub const HISTORY_INTERVALS: usize = 30;

/// Longest the JSON waits for the loop's waits-for edges before it answers
/// without them.
pub const WAITS_FOR_TIMEOUT: Duration = Duration::from_millis(500);

/// Most waits-for edges the JSON lists (the count is always given).
pub const MAX_WAITS_FOR_EDGES: usize = 200;

/// Picks one histogram out of the metrics.
type Pick = fn(&Metrics) -> &crate::metrics::Histogram;

/// The latency series of the history: name and histogram.
const SERIES: [(&str, Pick); 3] = [
    ("commit", |m| &m.commit_latency),
    ("read", |m| &m.read_latency),
    ("lock_wait", |m| &m.lock_wait),
];

/// The quantiles each interval reports, and their names.
const QUANTILES: [(f64, &str); 3] = [(0.5, "p50_ms"), (0.9, "p90_ms"), (0.99, "p99_ms")];

/// One series' figures over one interval.
#[derive(Clone, Debug, PartialEq)]
pub struct IntervalFigures {
    /// Values recorded in the interval.
    pub count: u64,
    /// Their mean, ms (`None` without values).
    pub mean_ms: Option<f64>,
    /// The p50, p90 and p99, ms (`None` without values).
    pub quantiles_ms: [Option<f64>; QUANTILES.len()],
}

impl IntervalFigures {
    fn of(d: &HistogramSnapshot) -> IntervalFigures {
        // µs to ms, to the µs.
        let ms = |us: f64| us.round() / 1e3;
        IntervalFigures {
            count: d.count,
            mean_ms: (d.count > 0).then(|| ms(d.sum as f64 / d.count as f64)),
            quantiles_ms: QUANTILES.map(|(q, _)| d.quantile(q).map(ms)),
        }
    }
}

/// One interval of the history: when it ended and each series' figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// Its end, ms since the Unix epoch.
    pub end_unix_ms: u64,
    /// Its length, ms.
    pub length_ms: u64,
    /// The figures of each series: commit, read, lock wait.
    pub series: [IntervalFigures; SERIES.len()],
}

#[derive(Debug, Default)]
struct HistoryState {
    /// The histograms at the last sample, and when it was taken.
    last: Option<(u64, Vec<HistogramSnapshot>)>,
    /// The newest [`HISTORY_INTERVALS`] intervals, oldest first.
    intervals: VecDeque<Interval>,
}

/// Commit, read and lock-wait latency of the last [`HISTORY_INTERVALS`]
/// intervals: each the difference of two snapshots of the metrics'
/// histograms. Sampling takes a lock the request path never takes.
#[derive(Debug, Default)]
pub struct LatencyHistory(parking_lot::Mutex<HistoryState>);

impl LatencyHistory {
    /// Closes the interval since the last sample at `now_unix_ms` (the
    /// first sample only starts one).
    pub fn sample(&self, m: &Metrics, now_unix_ms: u64) {
        let snaps: Vec<HistogramSnapshot> = SERIES.iter().map(|(_, h)| h(m).snapshot()).collect();
        let mut st = self.0.lock();
        if let Some((at, last)) = &st.last {
            let series: [IntervalFigures; SERIES.len()] =
                std::array::from_fn(|i| IntervalFigures::of(&snaps[i].since(&last[i])));
            let interval = Interval {
                end_unix_ms: now_unix_ms,
                length_ms: now_unix_ms.saturating_sub(*at),
                series,
            };
            st.intervals.push_back(interval);
            while st.intervals.len() > HISTORY_INTERVALS {
                st.intervals.pop_front();
            }
        }
        st.last = Some((now_unix_ms, snaps));
        debug_assert!(st.intervals.len() <= HISTORY_INTERVALS);
    }

    /// The intervals, oldest first.
    pub fn intervals(&self) -> Vec<Interval> {
        self.0.lock().intervals.iter().cloned().collect()
    }

    /// The history as the console JSON's `latency`.
    pub fn to_json(&self) -> Json {
        let intervals = self.intervals();
        let mut series = serde_json::Map::new();
        for (i, (name, _)) in SERIES.iter().enumerate() {
            let points: Vec<Json> = intervals
                .iter()
                .map(|iv| {
                    let f = &iv.series[i];
                    let mut p = serde_json::Map::new();
                    p.insert("end_unix_ms".into(), json!(iv.end_unix_ms));
                    p.insert("count".into(), json!(f.count));
                    p.insert(
                        "per_second".into(),
                        json!(if iv.length_ms > 0 {
                            (f.count as f64 * 1e3 / iv.length_ms as f64 * 10.0).round() / 10.0
                        } else {
                            0.0
                        }),
                    );
                    p.insert("mean_ms".into(), json!(f.mean_ms));
                    for (j, (_, qname)) in QUANTILES.iter().enumerate() {
                        p.insert((*qname).into(), json!(f.quantiles_ms[j]));
                    }
                    Json::Object(p)
                })
                .collect();
            series.insert((*name).into(), Json::Array(points));
        }
        json!({
            "interval_ms": HISTORY_INTERVAL.as_millis() as u64,
            "window_ms": (HISTORY_INTERVAL * HISTORY_INTERVALS as u32).as_millis() as u64,
            "series": series,
        })
    }
}

/// Milliseconds since the Unix epoch by the system clock (what the page
/// plots against; not a TrueTime reading).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(u128::from(u64::MAX)) as u64)
}

/// `GET /` and `GET /console`: the page.
pub fn page_answer() -> Answer {
    ("200 OK", "text/html; charset=utf-8", PAGE.to_string())
}

/// `GET /console/api`: the console JSON.
pub async fn api_answer(s: &Shared) -> Answer {
    let body = api(s).await;
    ("200 OK", "application/json", format!("{body}\n"))
}

/// The console JSON of the node behind `s` (docs/operations.md "Console").
pub async fn api(s: &Shared) -> Json {
    let waits_for = waits_for(s).await;
    json!({
        "schema_version": CONSOLE_SCHEMA_VERSION,
        "node": u64_json(s.cfg.node_id),
        "now_unix_ms": unix_ms(),
        "status": status_json(&crate::status::status(s)),
        "waits_for": waits_for,
        "latency": s.metrics.history.to_json(),
    })
}

/// Who waits for whom in the groups this node leads, asked of the loop
/// (which walks its lock tables once) within [`WAITS_FOR_TIMEOUT`].
async fn waits_for(s: &Shared) -> Json {
    let (tx, rx) = oneshot::channel();
    let edges = if s.inbox.try_send(Event::WaitsFor(tx)).is_err() {
        None
    } else {
        tokio::time::timeout(WAITS_FOR_TIMEOUT, rx)
            .await
            .ok()
            .and_then(Result::ok)
    };
    match edges {
        None => json!({ "ok": false, "count": 0, "edges": [] }),
        Some(edges) => json!({
            "ok": true,
            "count": edges.len(),
            "edges": edges
                .iter()
                .take(MAX_WAITS_FOR_EDGES)
                .map(|(group, w)| json!({
                    "group": u64_json(*group),
                    "waiter": txn_json(w.waiter),
                    "holder": txn_json(w.blocker),
                    "key": bytes_json(&w.key),
                }))
                .collect::<Vec<_>>(),
        }),
    }
}

/// A 64-bit integer in protobuf's JSON mapping: a decimal string (a JSON
/// number loses precision above 2^53, as a cluster id or a timestamp in
/// ns would).
fn u64_json(n: u64) -> Json {
    Json::String(n.to_string())
}

fn opt_u64_json(n: Option<u64>) -> Json {
    n.map_or(Json::Null, u64_json)
}

/// Bytes in protobuf's JSON mapping: standard base64 with padding.
fn bytes_json(b: &[u8]) -> Json {
    Json::String(base64(b))
}

fn txn_json(t: meridian_participant::TxnId) -> Json {
    let t = meridian_proto::convert::txn_to_pb(t);
    json!({ "origin": u64_json(t.origin), "seq": u64_json(t.seq) })
}

/// Standard base64 (RFC 4648 §4) with padding.
fn base64(b: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | u32::from(c) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `StatusResponse` in protobuf's JSON mapping with the proto field names:
/// 64-bit integers as strings, bytes in base64, enums by name, every field
/// present (an absent optional one as `null`).
pub fn status_json(s: &pb::StatusResponse) -> Json {
    let nodes: Vec<Json> = s
        .nodes
        .iter()
        .map(|n| {
            json!({
                "id": u64_json(n.id),
                "address": n.address,
                "metrics_address": n.metrics_address,
                "liveness": pb::Liveness::try_from(n.liveness)
                    .unwrap_or(pb::Liveness::Unknown)
                    .as_str_name(),
                "last_contact_ms": opt_u64_json(n.last_contact_ms),
            })
        })
        .collect();
    let groups: Vec<Json> = s
        .groups
        .iter()
        .map(|g| {
            json!({
                "id": u64_json(g.id),
                "start": bytes_json(&g.start),
                "end": g.end.as_deref().map_or(Json::Null, bytes_json),
                "replicas": g.replicas.iter().map(|r| u64_json(*r)).collect::<Vec<_>>(),
                "leader": opt_u64_json(g.leader),
                "local_leader": g.local_leader,
                "chosen": u64_json(g.chosen),
                "applied": u64_json(g.applied),
                "t_safe": u64_json(g.t_safe),
                "active_txns": u64_json(g.active_txns),
                "local_replica": g.local_replica,
                "role": g.role,
                "safe_time_lag_micros": opt_u64_json(g.safe_time_lag_micros),
                "bytes": opt_u64_json(g.bytes),
                "generation": opt_u64_json(g.generation),
            })
        })
        .collect();
    json!({
        "error": Json::Null,
        "cluster_id": u64_json(s.cluster_id),
        "epoch": u64_json(s.epoch),
        "node": u64_json(s.node),
        "nodes": nodes,
        "groups": groups,
        "now_earliest": u64_json(s.now_earliest),
        "now_latest": u64_json(s.now_latest),
        "clock_ok": s.clock_ok,
        "clock_detail": s.clock_detail,
        "version": s.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn console_json_says_lock_waits_unknown_when_the_loop_does_not_answer() {
        let d = tempfile::tempdir().expect("tempdir");
        // A node whose loop is gone: its inbox has no receiver.
        let s = crate::health::tests::shared(d.path());
        let now = s.clock.now().earliest;
        crate::health::tests::publish(&s, now);
        let v = api(&s).await;
        assert_eq!(v["schema_version"], CONSOLE_SCHEMA_VERSION);
        assert_eq!(v["node"], "1");
        assert_eq!(
            v["waits_for"],
            json!({ "ok": false, "count": 0, "edges": [] })
        );
        let g = &v["status"]["groups"][0];
        assert_eq!(g["id"], "1");
        assert_eq!(g["replicas"], json!(["1"]));
        assert_eq!(g["local_replica"], true);
        assert!(g["safe_time_lag_micros"].is_string(), "{g}");
        assert_eq!(v["status"]["nodes"][0]["liveness"], "LIVENESS_SELF");
        assert_eq!(v["latency"]["series"]["commit"], json!([]));
        let (status, content_type, body) = api_answer(&s).await;
        assert_eq!((status, content_type), ("200 OK", "application/json"));
        assert!(body.ends_with("}\n"));
    }

    #[test]
    fn base64_is_rfc4648_standard_with_padding() {
        for (raw, enc) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
            (&[0xff, 0xfe, 0x00], "//4A"),
        ] {
            assert_eq!(base64(raw), enc, "{raw:?}");
        }
    }

    #[test]
    fn history_intervals_are_differences_of_samples_and_keep_five_minutes() {
        let m = Metrics::default();
        let h = &m.history;
        h.sample(&m, 0);
        assert!(h.intervals().is_empty(), "the first sample only starts one");
        // 90 commits at 1 ms, 10 at 100 ms: p50 within (500 µs, 1 ms], p99
        // within (50, 100] ms.
        for _ in 0..90 {
            m.commit_latency.observe(1_000);
        }
        for _ in 0..10 {
            m.commit_latency.observe(100_000);
        }
        m.read_latency.observe(200);
        h.sample(&m, 10_000);
        let iv = &h.intervals()[0];
        assert_eq!((iv.end_unix_ms, iv.length_ms), (10_000, 10_000));
        let commit = &iv.series[0];
        assert_eq!(commit.count, 100);
        let p50 = commit.quantiles_ms[0].expect("p50");
        let p99 = commit.quantiles_ms[2].expect("p99");
        assert!(p50 > 0.5 && p50 <= 1.0, "{p50}");
        assert!(p99 > 50.0 && p99 <= 100.0, "{p99}");
        assert_eq!(commit.mean_ms, Some(10.9));
        assert_eq!(iv.series[1].count, 1);
        assert_eq!(iv.series[2].count, 0);
        assert_eq!(iv.series[2].quantiles_ms, [None, None, None]);
        // The next interval holds only what came after.
        m.commit_latency.observe(1_000);
        h.sample(&m, 20_000);
        assert_eq!(h.intervals()[1].series[0].count, 1);
        let json = h.to_json();
        assert_eq!(json["series"]["commit"][0]["per_second"], 10.0);
        assert_eq!(json["series"]["commit"][1]["count"], 1);
        assert_eq!(json["interval_ms"], 10_000);
        for t in 3..100 {
            h.sample(&m, t * 10_000);
        }
        let all = h.intervals();
        assert_eq!(all.len(), HISTORY_INTERVALS);
        assert_eq!(all.last().map(|i| i.end_unix_ms), Some(990_000));
    }

    #[test]
    fn quantiles_interpolate_within_buckets_as_histogram_quantile_does() {
        let h = HistogramSnapshot {
            bounds: &[10, 20],
            counts: vec![0, 4, 0],
            sum: 60,
            count: 4,
        };
        assert_eq!(h.quantile(0.5), Some(15.0));
        assert_eq!(h.quantile(1.0), Some(20.0));
        let above = HistogramSnapshot {
            bounds: &[10, 20],
            counts: vec![0, 0, 3],
            sum: 90,
            count: 3,
        };
        assert_eq!(above.quantile(0.5), Some(20.0), "above every bound");
        let empty = HistogramSnapshot {
            bounds: &[10],
            counts: vec![0, 0],
            sum: 0,
            count: 0,
        };
        assert_eq!(empty.quantile(0.5), None);
    }
}
