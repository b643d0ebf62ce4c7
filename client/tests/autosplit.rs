//! Automatic splits on an in-process cluster of five nodes with three
//! replicas per group: ranges grown past `splits.bytes` split by
//! themselves until every range is under it, every key stays readable at
//! its value, a scan over the whole key space sees each key once, and the
//! directory records every range a split made; a range under sustained
//! load splits at a key inside the load, never by size.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use meridian_client::{Client, ClientOptions, ReadOp, ReadResult};
use meridian_node::config::SplitsConfig;
use meridian_node::local::{LEADER_WAIT, LocalCluster, LocalOptions};

const NODES: u64 = 5;
const SPLIT_BYTES: u64 = 48 << 10;
const KEYS: usize = 1_200;
const VALUE_BYTES: usize = 200;
/// Most bytes of directory record per range, generously.
const DIRECTORY_BYTES_PER_RANGE: u64 = 256;
/// Longest the splits may take to settle.
const SETTLE: Duration = Duration::from_secs(90);

fn opts() -> ClientOptions {
    ClientOptions::default()
        .with_request_timeout(Duration::from_secs(5))
        .with_backoff(Duration::from_millis(5), Duration::from_millis(100))
}

/// A started cluster once every group has a leader, and a client of it.
async fn serving(opts: LocalOptions) -> (LocalCluster, Client) {
    let cluster = LocalCluster::start(opts).await.expect("cluster starts");
    cluster
        .wait_for_leaders(LEADER_WAIT)
        .await
        .expect("leaders");
    let client = connect(&cluster).await;
    (cluster, client)
}

/// A new client of `cluster`.
async fn connect(cluster: &LocalCluster) -> Client {
    Client::connect_with(cluster.endpoints(), opts())
        .await
        .expect("connect")
}

fn value(i: usize) -> String {
    format!("{i:0width$}", width = VALUE_BYTES)
}

fn key(i: usize) -> String {
    format!("user{i:06}")
}

/// Every range as its leader reports it: group → (start, end,
/// generation, bytes).
type Ranges = BTreeMap<u64, (Bytes, Option<Bytes>, u64, u64)>;

async fn led_ranges(client: &Client) -> Ranges {
    let mut out = Ranges::new();
    for node in 1..=NODES {
        let Ok(s) = client.status_of(node).await else {
            continue;
        };
        for g in s.groups.iter().filter(|g| g.local_leader) {
            out.insert(
                g.info.id,
                (
                    g.info.start.clone(),
                    g.info.end.clone(),
                    g.generation.unwrap_or(0),
                    g.bytes.unwrap_or(0),
                ),
            );
        }
    }
    out
}

/// Whether `ranges` tile the key space: the first starts at the empty
/// key, each next one where the previous ends, the last unbounded.
fn tiles(ranges: &Ranges) -> bool {
    let mut spans: Vec<_> = ranges.values().collect();
    spans.sort_by(|a, b| a.0.cmp(&b.0));
    let mut at = Some(Bytes::new());
    for (start, end, _, _) in spans {
        if at.as_ref() != Some(start) {
            return false;
        }
        at = end.clone();
    }
    at.is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autosplit_by_size_splits_until_every_range_is_under_split_bytes_and_loses_nothing() {
    let (cluster, client) = serving(LocalOptions {
        nodes: NODES,
        groups: 2,
        replicas: Some(3),
        splits: SplitsConfig {
            bytes: SPLIT_BYTES,
            load_qps: 0,
            ..SplitsConfig::default()
        },
        ..LocalOptions::default()
    })
    .await;
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(50) {
        let puts: Vec<_> = chunk
            .iter()
            .map(|i| {
                let (c, i) = (client.clone(), *i);
                tokio::spawn(async move { c.put(key(i), value(i)).await })
            })
            .collect();
        for p in puts {
            p.await.expect("task").expect("put while ranges split");
        }
    }
    let total = (KEYS * (key(0).len() + VALUE_BYTES)) as u64;
    let deadline = Instant::now() + SETTLE;
    let ranges = loop {
        let r = led_ranges(&client).await;
        if tiles(&r) && r.values().all(|(_, _, _, b)| *b <= SPLIT_BYTES) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "ranges never settled under {SPLIT_BYTES} bytes: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        ranges.len() as u64 >= total / SPLIT_BYTES,
        "{} ranges for {total} bytes",
        ranges.len()
    );
    // Bytes per range add up to what was written, and the directory's
    // records (system keys, in the first range): one small record per
    // range and the id counter.
    let counted = ranges.values().map(|r| r.3).sum::<u64>();
    assert!(
        counted >= total && counted - total <= DIRECTORY_BYTES_PER_RANGE * ranges.len() as u64,
        "{counted} bytes counted for {total} written over {} ranges",
        ranges.len()
    );
    // Every key at its value, through a fresh client.
    let fresh = connect(&cluster).await;
    for i in (0..KEYS).step_by(7) {
        let got = fresh.get(key(i)).await.expect("get");
        assert_eq!(got.as_deref(), Some(value(i).as_bytes()), "key {}", key(i));
    }
    let r = fresh
        .read_only(vec![ReadOp::Scan {
            start: Bytes::from_static(b"user"),
            end: Some(Bytes::from_static(b"v")),
            limit: KEYS + 10,
        }])
        .await
        .expect("scan");
    let Some(ReadResult::Rows(rows)) = r.results.first() else {
        panic!("no rows: {r:?}");
    };
    assert_eq!(
        rows.len(),
        KEYS,
        "a scan across every range sees each key once"
    );
    // The directory records every range a split made, at its generation.
    let deadline = Instant::now() + SETTLE;
    loop {
        let dir = fresh.directory().await.expect("directory");
        let recorded: BTreeMap<u64, u64> = dir
            .records
            .iter()
            .map(|r| (r.descriptor.group, r.descriptor.generation))
            .collect();
        let missing: Vec<_> = ranges
            .iter()
            .filter(|(g, r)| r.2 > 1 && recorded.get(g) != Some(&r.2))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the directory misses {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autosplit_by_load_splits_a_busy_range_inside_its_load_and_not_by_size() {
    let (_cluster, client) = serving(LocalOptions {
        nodes: 3,
        groups: 1,
        splits: SplitsConfig {
            bytes: 0,
            load_qps: 100,
            load_sustain_ms: 2_000,
            min_range_bytes: 0,
            ..SplitsConfig::default()
        },
        ..LocalOptions::default()
    })
    .await;
    // Reads spread evenly over "load000".."load099", well over 100/s.
    let deadline = Instant::now() + SETTLE;
    let mut i = 0usize;
    loop {
        let gets: Vec<_> = (0..20)
            .map(|j| {
                let c = client.clone();
                tokio::spawn(async move { c.get(format!("load{:03}", (i + j * 5) % 100)).await })
            })
            .collect();
        for g in gets {
            g.await.expect("task").expect("get under load");
        }
        i += 1;
        if i % 50 == 0 {
            let r = led_ranges(&client).await;
            if r.len() >= 2 && tiles(&r) {
                let boundary = r
                    .values()
                    .find(|(s, ..)| !s.is_empty())
                    .map(|(s, ..)| s.clone())
                    .expect("a second range");
                assert!(
                    boundary.as_ref() > &b"load000"[..] && boundary.as_ref() <= &b"load099"[..],
                    "the load split key {boundary:?} lies inside the load"
                );
                return;
            }
        }
        assert!(Instant::now() < deadline, "no load split");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autosplit_repairs_a_directory_that_missed_a_split_it_did_not_make() {
    // Size splits at the default (never reached here), load off: only the
    // directory repair acts.
    let (_cluster, client) = serving(LocalOptions {
        nodes: 3,
        groups: 1,
        splits: SplitsConfig {
            load_qps: 0,
            ..SplitsConfig::default()
        },
        ..LocalOptions::default()
    })
    .await;
    // A split applied at the leader with no directory record written (as
    // when whoever split crashed between the two steps).
    let child = client.allocate_group_id().await.expect("an id");
    let (left, right) = meridian_client::admin::split(&client, Bytes::from_static(b"m"), child)
        .await
        .expect("split");
    let deadline = Instant::now() + SETTLE;
    loop {
        let dir = client.directory().await.expect("directory");
        let has = |d: &meridian_participant::RangeDescriptor| {
            dir.records.iter().any(|r| r.descriptor == *d)
        };
        if has(&left) && has(&right) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the directory never recorded {left} and {right}: {dir:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
