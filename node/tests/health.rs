//! The metrics endpoint's `/health` and `/ready` (docs/operations.md
//! "Health and readiness"), and its 404 for unknown paths.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meridian_node::local::{LocalCluster, LocalOptions};

/// Status code and body of `METHOD path` at `addr`.
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("metrics endpoint listens");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("answer");
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {out:?}"));
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    (code, body)
}

/// Polls `path` at `addr` until it answers `code`, and returns the body.
async fn wait_for(addr: SocketAddr, path: &str, code: u16, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (c, body) = http(addr, "GET", path);
        if c == code {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{addr}{path} still answers {c} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_needs_every_replica_in_safe_time_bound_and_health_only_a_live_process() {
    let mut cluster = LocalCluster::start(LocalOptions::default())
        .await
        .expect("cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(30))
        .await
        .expect("leaders");
    let addrs: Vec<SocketAddr> = (1..=3)
        .map(|i| {
            cluster
                .node(i)
                .and_then(|n| n.metrics_addr())
                .expect("metrics endpoint")
        })
        .collect();
    for (i, a) in addrs.iter().enumerate() {
        let (code, body) = http(*a, "GET", "/health");
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["alive"], true);
        assert_eq!(v["node"], i as u64 + 1);
        // An idle cluster is ready everywhere: followers' safe time
        // advances with their leaders'.
        let body = wait_for(*a, "/ready", 200, Duration::from_secs(15)).await;
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["ready"], true, "{body}");
        assert_eq!(wait_for(*a, "/health?ready=1", 200, Duration::ZERO).await, body);
        assert_eq!(http(*a, "GET", "/nope").0, 404);
        assert_eq!(http(*a, "GET", "/metricsx").0, 404);
        assert_eq!(http(*a, "GET", "/").0, 404);
        assert_eq!(http(*a, "POST", "/metrics").0, 405);
        assert_eq!(http(*a, "GET", "/metrics?x=1").0, 200);
    }

    // Without a majority, node 1's replicas get no leader: their safe time
    // stops and, past the threshold (2 s), node 1 is alive but not ready.
    cluster.kill(2);
    cluster.kill(3);
    let body = wait_for(addrs[0], "/ready", 503, Duration::from_secs(15)).await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["ready"], false);
    let reasons = v["reasons"].to_string();
    assert!(
        reasons.contains("group 1") && reasons.contains("behind the clock"),
        "{reasons}"
    );
    assert_eq!(http(addrs[0], "GET", "/health").0, 200);

    // Back with a majority, ready again.
    cluster.restart(2).await.expect("node 2 restarts");
    wait_for(addrs[0], "/ready", 200, Duration::from_secs(30)).await;
    cluster.shutdown().await;
}
