//! Replacing a dead node online, on real nodes (in one process, over gRPC
//! and real logs): three nodes and three groups, node 3 killed, node 4
//! started from a configuration that lists it as joining, `replace_node`
//! moves every group to {1, 2, 4}; then node 1 dies too and the data is
//! still read and new transactions still commit, on nodes 2 and 4 alone.
//! Once with node 4 catching up from the log, once from a snapshot.

use std::time::Duration;

use bytes::Bytes;
use meridian_client::admin::{self, AdminError, Progress, ReplaceOptions};
use meridian_client::{Client, ClientOptions};
use meridian_node::local::{LocalCluster, LocalOptions};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn options() -> ClientOptions {
    let mut o = ClientOptions::default()
        .with_request_timeout(Duration::from_secs(3))
        .with_connect_timeout(Duration::from_millis(500));
    o.retry_budget = Duration::from_secs(30);
    o
}

/// Keys spread over the three groups of the default layout.
const KEYS: [&str; 6] = ["0zero", "Apple", "Mango", "apple", "kiwi", "~tilde"];

async fn voters_everywhere(client: &Client) -> Vec<(u64, Vec<u64>)> {
    let s = client.status().await.expect("status");
    let mut v: Vec<(u64, Vec<u64>)> = s
        .groups
        .iter()
        .map(|g| {
            let mut r = g.info.replicas.clone();
            r.sort_unstable();
            (g.info.id, r)
        })
        .collect();
    v.sort_unstable();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_replaced_online_and_the_new_node_votes_with_the_data() {
    replace_a_dead_node(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_behind_a_compacted_log_catches_up_from_a_snapshot() {
    // Every group snapshots every 20 entries: by the time node 4 is added
    // the leaders' logs no longer start at slot 1, so it is sent a
    // snapshot.
    replace_a_dead_node(Some(20)).await;
}

async fn replace_a_dead_node(compact_every: Option<u64>) {
    let mut cluster = LocalCluster::start(LocalOptions {
        compact_every,
        ..LocalOptions::default()
    })
    .await
    .expect("cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(30))
        .await
        .expect("leaders");
    let client = Client::connect_with(cluster.endpoints(), options())
        .await
        .expect("connects");
    let groups: std::collections::BTreeSet<u64> = KEYS
        .iter()
        .map(|k| client.group_of(k.as_bytes()).expect("group"))
        .collect();
    assert_eq!(groups.len(), 3, "the keys cover every group");
    for (i, k) in KEYS.iter().enumerate() {
        client.put(b(k), b(&format!("v{i}"))).await.expect("put");
    }
    // A cross-group transaction too.
    client
        .transaction(async |txn| {
            txn.put(b("apple"), b("cross"))?;
            txn.put(b("Apple"), b("cross"))?;
            Ok(())
        })
        .await
        .expect("cross-group commit");

    if compact_every.is_some() {
        // More entries (leases, safe time) than one snapshot interval.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // Node 3 dies; node 4 starts, joining every group.
    cluster.kill(3);
    let cfg = cluster.joining_config().expect("config");
    let address = cfg.listen.clone();
    assert_eq!(cluster.start_extra(cfg).await.expect("node 4 starts"), 4);

    let mut events = Vec::new();
    let opts = ReplaceOptions {
        catch_up_timeout: Duration::from_secs(60),
        ..ReplaceOptions::default()
    };
    let report = admin::replace_node(&client, 3, 4, &address, &opts, &mut |e| events.push(e))
        .await
        .expect("replace-node");
    assert_eq!(report.told, vec![1, 2]);
    assert_eq!(
        report.not_told.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        vec![3]
    );
    let moved: Vec<(u64, Vec<u64>)> = report
        .groups
        .iter()
        .map(|(g, v)| {
            let mut v = v.clone();
            v.sort_unstable();
            (*g, v)
        })
        .collect();
    assert_eq!(
        moved,
        vec![(1, vec![1, 2, 4]), (2, vec![1, 2, 4]), (3, vec![1, 2, 4])]
    );
    let restored = cluster
        .node(4)
        .expect("node 4 runs")
        .metrics()
        .snapshots_restored
        .get();
    if compact_every.is_some() {
        assert!(restored > 0, "node 4 caught up without a snapshot");
    }
    for g in 1..=3 {
        assert!(
            events.contains(&Progress::Added {
                group: g,
                already: false
            }),
            "{events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Progress::CaughtUp { group, .. } if *group == g)),
            "{events:?}"
        );
    }

    // Every node's view agrees, and the clients learn node 4's address.
    let status = client.status().await.expect("status");
    assert!(
        status
            .nodes
            .iter()
            .any(|n| n.id == 4 && n.address == address),
        "{:?}",
        status.nodes
    );
    for (g, v) in voters_everywhere(&client).await {
        assert_eq!(v, vec![1, 2, 4], "group {g}");
    }

    // Run again: nothing left to do, nothing changes.
    let again = admin::replace_node(&client, 3, 4, &address, &opts, &mut |_| {})
        .await
        .expect("a second run is a no-op");
    assert_eq!(again.groups.len(), 3);

    // Node 1 dies too: nodes 2 and 4 are a majority of {1, 2, 4} only if
    // node 4 really votes and has the data.
    cluster.kill(1);
    let survivors = vec![
        cluster.config(2).listen.clone(),
        cluster.config(4).listen.clone(),
    ];
    let client = Client::connect_with(&survivors, options())
        .await
        .expect("connects to 2 and 4");
    for (i, k) in KEYS.iter().enumerate() {
        let want = if *k == "apple" || *k == "Apple" {
            "cross".to_string()
        } else {
            format!("v{i}")
        };
        assert_eq!(
            client
                .get(b(k))
                .await
                .expect("read after the loss of 1 and 3"),
            Some(b(&want)),
            "{k}"
        );
    }
    client
        .put(b("after"), b("both gone"))
        .await
        .expect("a write commits on 2 and 4");
    client
        .transaction(async |txn| {
            txn.put(b("kiwi"), b("new"))?;
            txn.put(b("0zero"), b("new"))?;
            txn.put(b("Mango"), b("new"))?;
            Ok(())
        })
        .await
        .expect("a cross-group commit on 2 and 4");
    assert_eq!(client.get(b("Mango")).await.unwrap(), Some(b("new")));

    // Node 4 remembers node-added peers across a restart (it knew them
    // from its configuration; nodes 1 and 2 from their peers file): node 2
    // restarted still reaches node 4, and the group still commits.
    cluster.kill(2);
    cluster.restart(2).await.expect("node 2 restarts");
    let client = Client::connect_with(&survivors, options())
        .await
        .expect("reconnects");
    client
        .put(b("restart"), b("ok"))
        .await
        .expect("a write commits after node 2 restarts");
    assert_eq!(client.get(b("after")).await.unwrap(), Some(b("both gone")));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_node_refuses_unknown_nodes_conflicts_and_a_new_node_that_is_not_up() {
    let cluster = LocalCluster::start(LocalOptions::default())
        .await
        .expect("cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(30))
        .await
        .expect("leaders");
    let client = Client::connect_with(cluster.endpoints(), options())
        .await
        .expect("connects");
    let opts = ReplaceOptions::default();
    let run = |old, new, address: &'static str| {
        let client = client.clone();
        let opts = opts.clone();
        async move { admin::replace_node(&client, old, new, address, &opts, &mut |_| {}).await }
    };
    let e = run(9, 4, "127.0.0.1:1").await.unwrap_err();
    assert!(
        matches!(&e, AdminError::Refused(m) if m.contains("node 9")),
        "{e}"
    );
    assert_eq!(e.exit_code(), 1);
    let e = run(3, 3, "127.0.0.1:1").await.unwrap_err();
    assert!(matches!(e, AdminError::Invalid(_)), "{e}");
    assert_eq!(e.exit_code(), 2);
    let e = run(3, 4, "nowhere").await.unwrap_err();
    assert!(matches!(e, AdminError::Invalid(_)), "{e}");
    // Node 2 is known at another address.
    let e = run(3, 2, "127.0.0.1:1").await.unwrap_err();
    assert!(
        matches!(&e, AdminError::Refused(m) if m.contains("already known")),
        "{e}"
    );
    // Node 4 is not running: the nodes learn its address, nothing moves.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: &'static str = Box::leak(free.local_addr().unwrap().to_string().into_boxed_str());
    drop(free);
    let e = run(3, 4, addr).await.unwrap_err();
    assert!(matches!(e, AdminError::Unreachable(_)), "{e}");
    assert_eq!(e.exit_code(), 4);
    for (g, v) in voters_everywhere(&client).await {
        assert_eq!(v, vec![1, 2, 3], "group {g}");
    }
    // The address is now known: adding node 4 elsewhere is refused by the
    // nodes.
    let e = admin::add_node(&client, 4, "127.0.0.1:2")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AdminError::Refused(m) if m.contains("already known")),
        "{e}"
    );
    cluster.shutdown().await;
}
