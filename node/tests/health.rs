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
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
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
        assert_eq!(
            wait_for(*a, "/health?ready=1", 200, Duration::ZERO).await,
            body
        );
        assert_eq!(http(*a, "GET", "/nope").0, 404);
        assert_eq!(http(*a, "GET", "/metricsx").0, 404);
        assert_eq!(http(*a, "GET", "/consolex").0, 404);
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
        // Whichever of its groups lags first: the ones whose leader was
        // killed stop at once, the one it leads once it steps down.
        reasons.contains("group ") && reasons.contains("behind the clock"),
        "{reasons}"
    );
    assert_eq!(http(addrs[0], "GET", "/health").0, 200);

    // Back with a majority, ready again.
    cluster.restart(2).await.expect("node 2 restarts");
    wait_for(addrs[0], "/ready", 200, Duration::from_secs(30)).await;
    cluster.shutdown().await;
}

/// The value of the series `series` (name and labels, exactly) in `text`.
fn series(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_label_group_figures_show_roles_the_build_and_the_process() {
    use meridian_proto::pb;
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
    // One uncontended locking read at group 1's leader: a lock wait of
    // (nearly) nothing, which the histogram records too.
    let mut read_at = None;
    'find: for _ in 0..100 {
        for e in cluster.endpoints() {
            let Ok(mut c) =
                pb::meridian_client::MeridianClient::connect(format!("http://{e}")).await
            else {
                continue;
            };
            let b = c
                .begin(pb::BeginRequest {
                    header: Some(header),
                    group: 1,
                    priority: None,
                    mode: 0,
                    reserve: 0,
                })
                .await
                .expect("rpc")
                .into_inner();
            if b.error.is_some() {
                continue;
            }
            let r = c
                .read(pb::ReadRequest {
                    header: Some(header),
                    group: 1,
                    txn: b.txn,
                    keys: vec![bytes::Bytes::from_static(b"\x01k")],
                    guest: None,
                })
                .await
                .expect("rpc")
                .into_inner();
            assert!(r.error.is_none(), "{:?}", r.error);
            read_at = Some(e);
            break 'find;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let read_at = read_at.expect("group 1 has a leader");
    // Views are republished at least every 100 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut leaders = [0.0; 3];
    let mut read_seen = false;
    for i in 1..=3u64 {
        let node = cluster.node(i).expect("running");
        let (code, text) = http(node.metrics_addr().expect("metrics"), "GET", "/metrics");
        assert_eq!(code, 200);
        assert_eq!(
            series(
                &text,
                &format!(
                    "meridian_build_info{{version=\"{}\",node=\"{i}\"}}",
                    env!("CARGO_PKG_VERSION")
                )
            ),
            Some(1.0),
            "{text}"
        );
        for name in [
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_threads",
        ] {
            assert!(
                series(&text, name).is_some_and(|v| v > 0.0),
                "{name} in\n{text}"
            );
        }
        assert!(
            series(&text, "process_cpu_seconds_total").is_some(),
            "{text}"
        );
        assert!(series(&text, "process_start_time_seconds").is_some_and(|v| v > 1.7e9));
        assert_eq!(series(&text, "meridian_ready"), Some(1.0), "{text}");
        for g in 1..=3u64 {
            let leader = series(&text, &format!("meridian_group_leader{{group=\"{g}\"}}"))
                .unwrap_or_else(|| panic!("no leader gauge of group {g}:\n{text}"));
            leaders[(g - 1) as usize] += leader;
            let roles: Vec<f64> = ["leader", "candidate", "follower", "learner"]
                .iter()
                .map(|r| {
                    series(
                        &text,
                        &format!("meridian_group_role{{group=\"{g}\",role=\"{r}\"}}"),
                    )
                    .expect("every role's series")
                })
                .collect();
            assert_eq!(roles.iter().sum::<f64>(), 1.0, "one role: {roles:?}");
            if leader == 1.0 {
                assert_eq!(roles[0], 1.0, "the serving leader has the leader role");
            }
            assert!(
                series(
                    &text,
                    &format!("meridian_group_applied_slot{{group=\"{g}\"}}")
                )
                .is_some()
            );
            assert!(
                series(
                    &text,
                    &format!("meridian_group_safe_time_lag_seconds{{group=\"{g}\"}}")
                )
                .is_some_and(|l| l < 2.0),
                "{text}"
            );
            assert_eq!(
                series(&text, &format!("meridian_group_voters{{group=\"{g}\"}}")),
                Some(3.0)
            );
        }
        if node.local_addr().to_string() == read_at {
            read_seen = true;
            assert_eq!(
                series(&text, "meridian_lock_wait_seconds_count"),
                Some(1.0),
                "every locking read is recorded:\n{text}"
            );
        }
    }
    assert!(read_seen, "no node at {read_at}");
    assert_eq!(leaders, [1.0; 3], "one serving leader per group");
    let elections: u64 = (1..=3u64)
        .map(|i| cluster.node(i).expect("running").metrics().elections.get())
        .sum();
    assert!(elections >= 3, "every group elected a leader");
    cluster.shutdown().await;
}
