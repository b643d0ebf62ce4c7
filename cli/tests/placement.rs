//! A cluster of more nodes than replicas (docs/operations.md "Placement"
//! and "Status"): five nodes, three replicas of each of five groups. Each
//! node hosts only its groups and serves them; clients route every group to
//! its own replicas; `/ready` asks nothing of groups a node does not host;
//! `status` reports each range's replicas, leader and bytes, and the bytes
//! of every node.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meridian_cli::status::{Sizes, gather_sizes, to_json, to_text};
use meridian_client::Client;
use meridian_node::local::{LocalCluster, LocalOptions};

const NODES: u64 = 5;
const REPLICAS: u64 = 3;
const GROUPS: u64 = 5;

/// Status code and body of `GET path` at `addr`.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("metrics endpoint listens");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("answer");
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_three_replicas_each_node_hosts_and_serves_only_its_groups_and_status_reports_bytes()
 {
    let cluster = LocalCluster::start(LocalOptions {
        nodes: NODES,
        groups: GROUPS,
        replicas: Some(REPLICAS),
        ..LocalOptions::default()
    })
    .await
    .expect("cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(60))
        .await
        .expect("leaders");
    let cfg = cluster.config(1).clone();
    // Placement: three replicas of each group, three per node.
    for n in 1..=NODES {
        let held = cfg
            .groups
            .iter()
            .filter(|g| g.replicas.contains(&n))
            .count() as u64;
        assert_eq!(held, GROUPS * REPLICAS / NODES, "node {n}");
    }

    // Writes and reads in every group, routed to its replicas.
    let client = Client::connect(cluster.endpoints()).await.expect("client");
    let keys: Vec<String> = (0..40)
        .map(|i| format!("{}key{i}", char::from(b'!' + i * 2)))
        .collect();
    for k in &keys {
        client
            .put(k.clone(), format!("value-of-{k}"))
            .await
            .expect("put");
    }
    for k in &keys {
        let v = client.get(k.clone()).await.expect("get");
        assert_eq!(
            v.as_deref(),
            Some(format!("value-of-{k}").as_bytes()),
            "{k}"
        );
    }
    let touched: std::collections::BTreeSet<u64> = keys
        .iter()
        .map(|k| cfg.group_of(k.as_bytes()).expect("tiled").id)
        .collect();
    assert_eq!(touched.len() as u64, GROUPS);

    // Every node is ready: it needs a leader only for the groups it hosts.
    for n in 1..=NODES {
        let addr: SocketAddr = cluster
            .config(n)
            .metrics_listen
            .as_deref()
            .expect("metrics endpoint")
            .parse()
            .expect("address");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, body) = get(addr, "/ready");
            if code == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "node {n} not ready: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Status: each node reports its own replicas only, with their bytes.
    // Followers apply a moment after the leader: wait until every replica
    // of a range reports the same size.
    let expected_range = |g: u64| -> u64 {
        keys.iter()
            .filter(|k| cfg.group_of(k.as_bytes()).map(|e| e.id) == Some(g))
            .map(|k| (k.len() + format!("value-of-{k}").len()) as u64)
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, sizes) = loop {
        let s = client.status().await.expect("status");
        let sizes: Sizes = gather_sizes(&client, &s).await;
        let settled = cfg.groups.iter().all(|g| {
            g.replicas.iter().all(|n| {
                sizes.by_node.get(n).and_then(|m| m.get(&g.id)) == Some(&expected_range(g.id))
            })
        });
        if settled {
            break (s, sizes);
        }
        assert!(Instant::now() < deadline, "sizes never settled: {sizes:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for g in &cfg.groups {
        assert_eq!(
            sizes.by_range.get(&g.id),
            Some(&expected_range(g.id)),
            "group {}",
            g.id
        );
    }
    for n in 1..=NODES {
        let hosted: Vec<u64> = cfg
            .groups
            .iter()
            .filter(|g| g.replicas.contains(&n))
            .map(|g| g.id)
            .collect();
        let mine: Vec<u64> = sizes.by_node[&n].keys().copied().collect();
        assert_eq!(mine, hosted, "node {n} reports exactly its replicas");
        assert_eq!(
            sizes.node_bytes(n),
            Some(hosted.iter().map(|g| expected_range(*g)).sum()),
            "node {n}"
        );
    }
    let json = to_json(&status, &sizes);
    let ranges = json["ranges"].as_array().expect("ranges");
    assert_eq!(ranges.len() as u64, GROUPS);
    for r in ranges {
        let g = r["group"].as_u64().expect("group");
        assert_eq!(
            r["replicas"].as_array().expect("replicas").len() as u64,
            REPLICAS
        );
        assert!(r["leader"].as_u64().is_some(), "{r}");
        assert_eq!(r["generation"], 1);
        assert_eq!(r["bytes"].as_u64(), Some(expected_range(g)));
    }
    for n in json["nodes"].as_array().expect("nodes") {
        assert_eq!(n["ranges"].as_u64(), Some(GROUPS * REPLICAS / NODES), "{n}");
        assert!(n["bytes"].as_u64().is_some_and(|b| b > 0), "{n}");
    }
    let text = to_text(&status, &sizes).join("\n");
    assert!(text.contains("bytes per node"), "{text}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_leads_the_groups_it_is_the_preferred_leader_of_when_the_cluster_starts() {
    let cluster = LocalCluster::start(LocalOptions {
        nodes: 6,
        groups: 6,
        replicas: Some(3),
        ..LocalOptions::default()
    })
    .await
    .expect("cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(60))
        .await
        .expect("leaders");
    let client = Client::connect(cluster.endpoints()).await.expect("client");
    let cfg = cluster.config(1).clone();
    // Ask each group's preferred leader whether it leads.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut leaders = Vec::new();
        for g in &cfg.groups {
            let s = client.status_of(g.replicas[0]).await.expect("status");
            let mine = s.groups.iter().find(|x| x.info.id == g.id).expect("listed");
            leaders.push(mine.local_leader);
        }
        if leaders.iter().all(|l| *l) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every preferred replica leads: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.shutdown().await;
}
