//! The range directory on an in-process cluster of three nodes: the
//! system keyspace is refused to user requests, group ids allocated by
//! concurrent transactions never collide, `Client::split` splits a range
//! and records both halves by generation, a fresh client routes across
//! both halves, and bad split input changes nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use meridian_client::directory::{DirectoryRecord, SplitStep, plan_split, range_record_key};
use meridian_client::{Client, ClientOptions, Error, ReadOp, ReadResult, exit};
use meridian_node::local::{LEADER_WAIT, LocalCluster, LocalOptions};
use meridian_participant::RangeDescriptor;
use meridian_txn::api::{SYSTEM_KEY_PREFIX, SYSTEM_KEYS_END};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn opts() -> ClientOptions {
    ClientOptions::default()
        .with_request_timeout(Duration::from_secs(5))
        .with_backoff(Duration::from_millis(5), Duration::from_millis(100))
}

async fn cluster(groups: u64) -> LocalCluster {
    let cluster = LocalCluster::start(LocalOptions {
        nodes: 3,
        groups,
        ..LocalOptions::default()
    })
    .await
    .expect("cluster starts");
    cluster
        .wait_for_leaders(LEADER_WAIT)
        .await
        .expect("leaders");
    cluster
}

fn no_progress(_: &SplitStep) {}

fn system_key(rest: &str) -> Bytes {
    let mut k = SYSTEM_KEY_PREFIX.to_vec();
    k.extend_from_slice(rest.as_bytes());
    Bytes::from(k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_system_keys_are_refused_to_users_and_hidden_from_their_scans() {
    let cluster = cluster(2).await;
    let client = Client::connect_with(cluster.endpoints(), opts())
        .await
        .expect("connect");
    // The directory writes its counter in the system keyspace.
    let id = client.allocate_group_id().await.expect("allocate");
    assert_eq!(id, 3, "one above the configured groups 1 and 2");
    client.put("apple", "red").await.expect("user put");

    for key in [system_key("x"), Bytes::from_static(b"\x00")] {
        let put = client.put(key.clone(), "v").await;
        assert!(matches!(put, Err(Error::SystemKey { .. })), "{put:?}");
        assert_eq!(
            exit::exit_code(put.as_ref().expect_err("refused")),
            exit::EXIT_USAGE
        );
        let get = client.get(key.clone()).await;
        assert!(matches!(get, Err(Error::SystemKey { .. })), "{get:?}");
        let in_txn = client.transaction(async |txn| txn.get(&key).await).await;
        assert!(matches!(in_txn, Err(Error::SystemKey { .. })), "{in_txn:?}");
        let scan = client
            .read_only(vec![ReadOp::Scan {
                start: key.clone(),
                end: None,
                limit: 10,
            }])
            .await;
        assert!(matches!(scan, Err(Error::SystemKey { .. })), "{scan:?}");
    }
    // A scan from the first key starts past the system keyspace: the
    // counter the allocation wrote is not in it.
    let all = client
        .read_only(vec![ReadOp::Scan {
            start: Bytes::new(),
            end: None,
            limit: 100,
        }])
        .await
        .expect("scan");
    let ReadResult::Rows(rows) = &all.results[0] else {
        panic!("rows: {:?}", all.results);
    };
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows.iter().all(|(k, _)| &k[..] >= SYSTEM_KEYS_END));
    let in_txn = client
        .transaction(async |txn| txn.scan_bounds("", None, 100).await)
        .await
        .expect("txn scan")
        .0;
    assert_eq!(in_txn.len(), 1, "{in_txn:?}");
    // The directory itself reads them.
    let dir = client.directory().await.expect("directory");
    assert_eq!(dir.next_group_id, Some(4));
    assert!(dir.records.is_empty(), "no split yet: the bootstrap layout");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_concurrent_allocations_give_distinct_ids() {
    const TASKS: usize = 6;
    const EACH: usize = 4;
    let cluster = cluster(2).await;
    let client = Client::connect_with(cluster.endpoints(), opts())
        .await
        .expect("connect");
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        // Clients of their own: no state shared but the cluster.
        let c = Client::connect_with(cluster.endpoints(), opts())
            .await
            .expect("connect");
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..EACH {
                ids.push(c.allocate_group_id().await.expect("allocate"));
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.expect("task"));
    }
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "an id handed out twice: {ids:?}");
    // Every id was handed out once, from one above the configured groups,
    // with no gap (no allocation failed).
    let expected: BTreeSet<u64> = (3..3 + (TASKS * EACH) as u64).collect();
    assert_eq!(distinct, expected);
    let dir = client.directory().await.expect("directory");
    assert_eq!(dir.next_group_id, Some(3 + (TASKS * EACH) as u64));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_split_is_recorded_and_a_fresh_client_routes_across_both_halves() {
    let cluster = cluster(1).await;
    let client = Client::connect_with(cluster.endpoints(), opts())
        .await
        .expect("connect");
    let before = ["apple", "kiwi", "mango", "peach", "zebra"];
    for k in before {
        client.put(k, format!("{k}-0")).await.expect("put before");
    }
    let mut steps = Vec::new();
    let report = client
        .split("m", &mut |s: &SplitStep| steps.push(s.clone()))
        .await
        .expect("split");
    assert_eq!(
        (report.left.group, report.left.end.clone()),
        (1, Some(b("m")))
    );
    let child = report.right.group;
    assert_eq!(child, 2, "the first id allocated");
    assert_eq!(
        (report.right.start.clone(), report.right.end.clone()),
        (b("m"), None)
    );
    assert_eq!(report.left.generation, report.right.generation);
    assert!(report.recorded);
    assert_eq!(steps.len(), 4, "{steps:?}");

    // The directory holds both halves; the counter moved on.
    let dir = client.directory().await.expect("directory");
    assert_eq!(dir.next_group_id, Some(3));
    let recorded: Vec<RangeDescriptor> = dir.records.iter().map(|r| r.descriptor.clone()).collect();
    assert_eq!(recorded, vec![report.left.clone(), report.right.clone()]);

    // A lagging writer (the same generation again, or an older one)
    // changes nothing.
    let stale = DirectoryRecord {
        descriptor: RangeDescriptor {
            end: None,
            generation: report.left.generation,
            ..report.left.clone()
        },
        replicas: vec![1, 2, 3],
    };
    assert_eq!(
        client.record_ranges(&[stale]).await.expect("cas"),
        vec![false]
    );
    let again = client.directory().await.expect("directory");
    assert_eq!(again.records, dir.records);

    // A fresh client reads and writes both halves and scans across them.
    let fresh = Client::connect_with(cluster.endpoints(), opts())
        .await
        .expect("connect");
    for k in before {
        assert_eq!(
            fresh.get(k).await.expect("get"),
            Some(b(&format!("{k}-0"))),
            "{k}"
        );
    }
    for k in ["lime", "melon", "zz"] {
        fresh.put(k, "new").await.expect("put after");
    }
    let scan = fresh
        .read_only(vec![ReadOp::Scan {
            start: Bytes::new(),
            end: None,
            limit: 100,
        }])
        .await
        .expect("scan");
    let ReadResult::Rows(rows) = &scan.results[0] else {
        panic!("rows: {:?}", scan.results);
    };
    let keys: Vec<&[u8]> = rows.iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(keys.len(), before.len() + 3, "{keys:?}");
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(fresh.group_of("apple").expect("routed"), 1);
    assert_eq!(fresh.group_of("peach").expect("routed"), child);
    // A transaction across both halves.
    fresh
        .transaction(async |txn| {
            txn.put("apple", "both")?;
            txn.put("zebra", "both")?;
            Ok(())
        })
        .await
        .expect("txn across the split");
    assert_eq!(fresh.get("zebra").await.expect("get"), Some(b("both")));

    // A client whose map knows only the bootstrap range learns the child
    // from the directory.
    let lagging = Client::connect_with(cluster.endpoints(), opts())
        .await
        .expect("connect");
    lagging.directory().await.expect("directory");
    assert_eq!(lagging.group_of("peach").expect("routed"), child);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_bad_split_input_changes_nothing() {
    let cluster = cluster(2).await;
    let client = Client::connect_with(cluster.endpoints(), opts())
        .await
        .expect("connect");
    let boundary = client.groups()[1].start.clone();
    let groups_before = client.groups();
    for key in [
        system_key("dir"),
        Bytes::from_static(b"\x00"),
        boundary.clone(),
        Bytes::new(),
    ] {
        let r = client.split(key.clone(), &mut no_progress).await;
        let e = r.expect_err("refused");
        assert_eq!(exit::exit_code(&e), exit::EXIT_USAGE, "{key:?}: {e}");
    }
    // Refused before an id was allocated: the counter was never written.
    let dir = client.directory().await.expect("directory");
    assert_eq!(dir.next_group_id, None);
    assert!(dir.records.is_empty());
    assert_eq!(
        client
            .groups()
            .iter()
            .map(|g| (g.id, g.start.clone(), g.end.clone()))
            .collect::<Vec<_>>(),
        groups_before
            .iter()
            .map(|g| (g.id, g.start.clone(), g.end.clone()))
            .collect::<Vec<_>>()
    );

    // Two splits of the same range at the same key at once: one is
    // applied, the other is refused (another change of the range in
    // progress, or the key is now a boundary) and changes nothing.
    let (c1, c2) = (client.clone(), client.clone());
    let (r1, r2) = tokio::join!(
        async move { c1.split("e", &mut no_progress).await },
        async move { c2.split("e", &mut no_progress).await },
    );
    let (ok, refused) = match (r1, r2) {
        (Ok(a), Err(e)) | (Err(e), Ok(a)) => (a, e),
        other => panic!("exactly one split applies: {other:?}"),
    };
    assert!(matches!(refused, Error::BadSplit(_)), "{refused}");
    assert_eq!(exit::exit_code(&refused), exit::EXIT_USAGE);
    let dir = client.directory().await.expect("directory");
    assert_eq!(
        dir.records
            .iter()
            .map(|r| r.descriptor.clone())
            .collect::<Vec<_>>(),
        vec![ok.left.clone(), ok.right.clone()]
    );
    // The refused split's id, if it got one, is wasted.
    assert!(
        matches!(dir.next_group_id, Some(4 | 5)),
        "{:?}",
        dir.next_group_id
    );
    let value = client
        .get(range_record_key(ok.right.group))
        .await
        .expect_err("a system key");
    assert!(matches!(value, Error::SystemKey { .. }));
    cluster.shutdown().await;
}

#[test]
fn directory_plan_split_refuses_keys_outside_every_range_and_on_boundaries() {
    let r = |g: u64, s: &str, e: Option<&str>| RangeDescriptor {
        group: g,
        start: b(s),
        end: e.map(b),
        generation: 1,
    };
    // A layout with a gap between "f" and "k".
    let ranges = [r(1, "", Some("f")), r(2, "k", None)];
    assert!(matches!(plan_split(&ranges, b"g"), Err(Error::BadSplit(_))));
    assert!(matches!(plan_split(&ranges, b"k"), Err(Error::BadSplit(_))));
    assert!(matches!(
        plan_split(&ranges, &system_key("a")),
        Err(Error::BadSplit(_))
    ));
    assert_eq!(plan_split(&ranges, b"c").expect("inside").group, 1);
    assert_eq!(plan_split(&ranges, b"z").expect("inside").group, 2);
}

#[test]
fn directory_records_round_trip_and_refuse_garbage() {
    let rec = DirectoryRecord {
        descriptor: RangeDescriptor {
            group: 7,
            start: b("m"),
            end: Some(Bytes::from_static(b"\xff\x00")),
            generation: 3,
        },
        replicas: vec![1, 4, 5],
    };
    assert_eq!(DirectoryRecord::decode(7, &rec.encode()), Ok(rec.clone()));
    let open = DirectoryRecord {
        descriptor: RangeDescriptor::whole(9),
        replicas: vec![],
    };
    assert_eq!(DirectoryRecord::decode(9, &open.encode()), Ok(open));
    assert!(
        DirectoryRecord::decode(8, &rec.encode()).is_err(),
        "another group's"
    );
    let bytes = rec.encode();
    assert!(DirectoryRecord::decode(7, &bytes[..bytes.len() - 1]).is_err());
    assert!(DirectoryRecord::decode(7, b"").is_err());
    let mut future = bytes.to_vec();
    future[0] = 99;
    assert!(DirectoryRecord::decode(7, &future).is_err());
}
