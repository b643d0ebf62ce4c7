//! A range split online on an in-process cluster of three nodes: the data
//! written before is readable after on both halves, clients with a stale
//! range map keep working across it (refusals carry the group's new
//! descriptor; retryable requests are retried transparently), a scan across
//! the new boundary is split per range at one read timestamp, and every
//! node's status shows both ranges, also after a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use meridian_client::{Client, ClientOptions, ReadOp, ReadResult, admin};
use meridian_node::local::{LEADER_WAIT, LocalCluster, LocalOptions};

/// The child's id: the test allocates it, once.
const CHILD: u64 = 70_001;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn opts() -> ClientOptions {
    ClientOptions::default()
        .with_request_timeout(Duration::from_secs(5))
        .with_backoff(Duration::from_millis(5), Duration::from_millis(100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_online_keeps_both_halves_readable_and_clients_working() {
    let mut cluster = LocalCluster::start(LocalOptions {
        nodes: 3,
        groups: 1,
        ..LocalOptions::default()
    })
    .await
    .expect("cluster starts");
    cluster
        .wait_for_leaders(LEADER_WAIT)
        .await
        .expect("leaders");
    let client = Client::connect_with(cluster.endpoints(), opts())
        .await
        .expect("connect");
    let before = ["apple", "kiwi", "lemon", "mango", "peach", "zebra"];
    for k in before {
        client.put(k, format!("{k}-0")).await.expect("put before");
    }
    // A client whose range map predates the split.
    let stale = Client::connect_with(cluster.endpoints(), opts())
        .await
        .expect("connect");
    assert_eq!(stale.groups().len(), 1);

    // Writers on both halves run across the split; none may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let c = stale.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut written = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                for prefix in ["b", "x"] {
                    let k = format!("{prefix}{i:04}");
                    c.put(k.clone(), k.clone())
                        .await
                        .unwrap_or_else(|e| panic!("put {k} across the split: {e}"));
                    written.push(k);
                }
                i += 1;
            }
            written
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (left, right) = admin::split(&client, b("m"), CHILD).await.expect("split");
    assert_eq!((left.group, left.end.clone()), (1, Some(b("m"))));
    assert_eq!(
        (right.group, right.start.clone(), right.end.clone()),
        (CHILD, b("m"), None)
    );
    assert_eq!(left.generation, right.generation);
    assert!(left.generation > 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.expect("writer");
    assert!(written.len() >= 4, "the writer ran: {written:?}");

    // Data written before is readable after on both halves, through the
    // stale client too.
    for c in [&client, &stale] {
        for k in before {
            assert_eq!(
                c.get(k).await.expect("get"),
                Some(b(&format!("{k}-0"))),
                "{k}"
            );
        }
    }
    for k in &written {
        assert_eq!(stale.get(k.clone()).await.expect("get"), Some(b(k)), "{k}");
    }
    // New writes on both halves.
    for k in ["lime", "melon", "mz", "zz"] {
        stale.put(k, "new").await.expect("put after");
    }
    // A scan across the boundary: one read timestamp, both groups.
    let scan = stale
        .read_only(vec![ReadOp::Scan {
            start: b("a"),
            end: None,
            limit: 10_000,
        }])
        .await
        .expect("scan");
    let ReadResult::Rows(rows) = &scan.results[0] else {
        panic!("a scan answers rows: {:?}", scan.results);
    };
    let keys: Vec<&[u8]> = rows.iter().map(|(k, _)| k.as_ref()).collect();
    for k in before.iter().chain(&["lime", "melon", "mz", "zz"]) {
        assert!(keys.contains(&k.as_bytes()), "{k} in the scan");
    }
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "rows in key order");
    assert_eq!(stale.group_of("apple").expect("routed"), 1);
    assert_eq!(stale.group_of("peach").expect("routed"), CHILD);

    // Every node's status shows both ranges.
    for node in 1..=3 {
        let s = client.status_of(node).await.expect("status");
        let ranges: Vec<(u64, Bytes, Option<Bytes>)> = s
            .groups
            .iter()
            .map(|g| (g.info.id, g.info.start.clone(), g.info.end.clone()))
            .collect();
        assert!(
            ranges.contains(&(1, Bytes::new(), Some(b("m")))),
            "node {node}: {ranges:?}"
        );
        assert!(
            ranges.contains(&(CHILD, b("m"), None)),
            "node {node}: {ranges:?}"
        );
    }

    // Bad input changes nothing: a key on the child's start, an id in use.
    assert!(matches!(
        admin::split(&client, b("m"), CHILD + 1).await,
        Err(admin::AdminError::Refused(_))
    ));
    assert!(matches!(
        admin::split(&client, b(""), CHILD + 2).await,
        Err(admin::AdminError::Invalid(_))
    ));
    // The same split again (a retry after it applied) is answered again.
    let again = admin::split(&client, b("m"), CHILD)
        .await
        .expect("the same split");
    assert_eq!(again, (left.clone(), right.clone()));
    match admin::split(&client, b("d"), CHILD).await {
        Err(admin::AdminError::Refused(m)) => assert!(m.contains("in use"), "{m}"),
        other => panic!("a child id in use is refused: {other:?}"),
    }

    // A restarted node recovers the child from its own log.
    cluster.kill(3);
    cluster.restart(3).await.expect("restart");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let hosted = cluster
            .node(3)
            .expect("running")
            .replicas()
            .get(&CHILD)
            .and_then(|v| v.descriptor.clone());
        if hosted.is_some_and(|d| d.start == b("m")) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 3 lost the child"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stale.get("peach").await.expect("get"), Some(b("peach-0")));
    cluster.shutdown().await;
}
