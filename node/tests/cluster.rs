//! A three-node cluster in one process, over real gRPC and real logs:
//! one-shot writes, cross-group transactions, strong reads, refusals.

use std::time::Duration;

use bytes::Bytes;
use meridian_node::local::{LocalCluster, LocalOptions};
use meridian_proto::pb;
use meridian_proto::pb::meridian_client::MeridianClient;
use tonic::transport::Channel;

struct Harness {
    cluster: LocalCluster,
    header: pb::Header,
}

impl Harness {
    async fn start() -> Harness {
        let cluster = LocalCluster::start(LocalOptions::default())
            .await
            .expect("cluster starts");
        cluster
            .wait_for_leaders(Duration::from_secs(30))
            .await
            .expect("leaders");
        let c = cluster.config(1);
        let header = pb::Header {
            cluster_id: c.cluster_id,
            epoch: c.epoch,
        };
        Harness { cluster, header }
    }

    async fn clients(&self) -> Vec<MeridianClient<Channel>> {
        let mut v = Vec::new();
        for e in self.cluster.endpoints() {
            // A stopped node's endpoint refuses: the others serve.
            if let Ok(c) = MeridianClient::connect(format!("http://{e}")).await {
                v.push(c);
            }
        }
        assert!(!v.is_empty(), "no node accepts connections");
        v
    }

    fn group_of(&self, key: &[u8]) -> u64 {
        self.cluster.config(1).group_of(key).expect("tiled").id
    }
}

fn not_leader(e: &Option<pb::Error>) -> bool {
    matches!(
        e.as_ref().and_then(|e| e.kind.as_ref()),
        Some(pb::error::Kind::NotLeader(_)) | Some(pb::error::Kind::LeaderNotReady(_))
    )
}

/// Tries every node until one leads `group` and answers.
async fn commit_one_shot(h: &Harness, key: &str, value: &str) -> pb::CommitResponse {
    let group = h.group_of(key.as_bytes());
    for _ in 0..100 {
        for mut c in h.clients().await {
            let r = c
                .commit(pb::CommitRequest {
                    header: Some(h.header),
                    group,
                    txn: None,
                    writes: vec![pb::Write {
                        key: Bytes::copy_from_slice(key.as_bytes()),
                        value: Some(Bytes::copy_from_slice(value.as_bytes())),
                    }],
                    participants: vec![],
                    mode: 0,
                })
                .await
                .expect("rpc")
                .into_inner();
            if !not_leader(&r.error) {
                return r;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader for group {group}");
}

async fn strong_read(h: &Harness, key: &str) -> Option<Bytes> {
    let group = h.group_of(key.as_bytes());
    for mut c in h.clients().await {
        let r = c
            .read_only(pb::ReadOnlyRequest {
                header: Some(h.header),
                group,
                at: Some(pb::read_only_request::At::Strong(pb::Empty {})),
                reads: vec![pb::ReadOp {
                    op: Some(pb::read_op::Op::Get(Bytes::copy_from_slice(key.as_bytes()))),
                }],
            })
            .await
            .expect("rpc")
            .into_inner();
        if r.error.is_none() {
            match r.results[0].result.clone() {
                Some(pb::read_result::Result::Value(v)) => return v.value,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    panic!("no replica served a strong read of {key}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_commit_and_strong_reads_see_them_over_grpc() {
    let h = Harness::start().await;
    for (k, v) in [("apple", "1"), ("Banana", "2"), ("42", "3")] {
        let r = commit_one_shot(&h, k, v).await;
        assert!(r.error.is_none(), "{:?}", r.error);
        assert!(r.commit_ts > 0);
    }
    assert_eq!(
        strong_read(&h, "apple").await,
        Some(Bytes::from_static(b"1"))
    );
    assert_eq!(
        strong_read(&h, "Banana").await,
        Some(Bytes::from_static(b"2"))
    );
    assert_eq!(strong_read(&h, "nothing").await, None);
    h.cluster.shutdown().await;
}

/// docs/operations.md "Monitoring": every histogram an operator is told
/// to watch is fed by real traffic, not merely declared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_feed_every_latency_metric() {
    let h = Harness::start().await;
    for i in 0..20 {
        let r = commit_one_shot(&h, &format!("metric-{i}"), "v").await;
        assert!(r.error.is_none(), "{:?}", r.error);
    }
    // Views (and so t_safe samples) are published at least every 100 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sum = |f: &dyn Fn(&meridian_node::metrics::Metrics) -> u64| -> u64 {
        (1..=3)
            .filter_map(|i| h.cluster.node(i))
            .map(|n| f(n.metrics()))
            .sum()
    };
    assert!(sum(&|m| m.commit_latency.count()) >= 20);
    assert!(sum(&|m| m.commit_wait.count()) >= 20);
    assert!(sum(&|m| m.fsync_latency.count()) > 0);
    assert!(
        sum(&|m| m.paxos_round_trip.count()) > 0,
        "no Paxos round trip observed"
    );
    assert!(sum(&|m| m.t_safe_lag.count()) > 0, "no t_safe lag sampled");
    assert!(sum(&|m| m.commits.get()) >= 20);
    let text = h.cluster.node(1).expect("node 1").metrics().render();
    for name in [
        "meridian_paxos_round_trip_seconds_count",
        "meridian_t_safe_lag_seconds_count",
        "meridian_wal_fsync_seconds_count",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    h.cluster.shutdown().await;
}

/// docs/operations.md "Drain": a node stopped by SIGTERM hands the
/// leadership of its groups to other voters, so they have new leaders at
/// once instead of after an election timeout (500 ms at the least).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_hands_its_groups_leadership_over() {
    let mut h = Harness::start().await;
    let led: Vec<(u64, Vec<u64>)> = (1..=3)
        .map(|i| (i, h.cluster.node(i).expect("up").leading_groups()))
        .collect();
    let (node, groups) = led
        .into_iter()
        .max_by_key(|(_, g)| g.len())
        .expect("three nodes");
    assert!(!groups.is_empty(), "some node leads a group");
    let started = std::time::Instant::now();
    h.cluster.drain(node).await;
    let drained = started.elapsed();
    assert!(
        drained < meridian_node::server::DRAIN_HAND_OVER_TIMEOUT,
        "the drain waited {drained:?}: leadership was not handed over"
    );
    // Well inside the followers' election timeout.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let others: Vec<u64> = (1..=3).filter(|i| *i != node).collect();
    for g in groups {
        assert!(
            others.iter().any(|i| h
                .cluster
                .node(*i)
                .expect("up")
                .leading_groups()
                .contains(&g)),
            "group {g} has no leader 400 ms after node {node} drained"
        );
    }
    // And it serves again once the old lease has run out.
    let r = commit_one_shot(&h, "after-drain", "v").await;
    assert!(r.error.is_none(), "{:?}", r.error);
    h.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_another_cluster_or_the_wrong_group_are_refused() {
    let h = Harness::start().await;
    let mut c = h.clients().await.remove(0);
    let wrong_cluster = pb::Header {
        cluster_id: h.header.cluster_id + 1,
        epoch: 1,
    };
    let r = c
        .commit(pb::CommitRequest {
            header: Some(wrong_cluster),
            group: 1,
            writes: vec![pb::Write {
                key: Bytes::from_static(b"k"),
                value: None,
            }],
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    assert!(matches!(
        r.error.and_then(|e| e.kind),
        Some(pb::error::Kind::ClusterMismatch(_))
    ));
    // "apple" is not in group 1's range: the refusal carries what group 1
    // serves, for the client's range map.
    let r = c
        .commit(pb::CommitRequest {
            header: Some(h.header),
            group: 1,
            writes: vec![pb::Write {
                key: Bytes::from_static(b"apple"),
                value: None,
            }],
            ..Default::default()
        })
        .await
        .expect("rpc")
        .into_inner();
    match r.error.and_then(|e| e.kind) {
        Some(pb::error::Kind::OutsideRange(d)) => {
            assert_eq!(d.group, 1);
            let apple = b"apple".as_slice();
            let inside = d.start.as_ref() <= apple && d.end.as_ref().is_none_or(|e| apple < e);
            assert!(!inside, "{d:?}");
        }
        other => panic!("expected OutsideRange, got {other:?}"),
    }
    let s = c
        .status(pb::StatusRequest { header: None })
        .await
        .expect("rpc")
        .into_inner();
    assert_eq!(s.groups.len(), 3);
    assert_eq!(s.nodes.len(), 3);
    h.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_node_refuses_bad_requests_and_makes_a_new_node_known() {
    let h = Harness::start().await;
    let e = h.cluster.endpoints()[0].clone();
    let mut admin = pb::admin_client::AdminClient::connect(format!("http://{e}"))
        .await
        .expect("connects");
    let add = |header: Option<pb::Header>, id: u64, address: &str| pb::AddNodeRequest {
        header,
        node: Some(pb::NodeInfo {
            id,
            address: address.to_string(),
            ..Default::default()
        }),
    };
    let refused = |r: pb::AddNodeResponse| r.error.map(|e| e.message).unwrap_or_default();
    let header = Some(h.header);
    let own = h.cluster.config(1).listen.clone();
    let two = h.cluster.config(2).listen.clone();
    for (req, want) in [
        (add(header, 1, "127.0.0.1:9"), "is this node"),
        (add(header, 0, "127.0.0.1:9"), "outside"),
        (add(header, 4, "no-port"), "bad address"),
        (add(header, 4, "127.0.0.1:0"), "bad address"),
        (add(header, 2, "127.0.0.1:9"), "already known"),
        (add(header, 4, &own), "belongs to node 1"),
        (
            add(
                Some(pb::Header {
                    cluster_id: h.header.cluster_id + 1,
                    epoch: 1,
                }),
                4,
                "127.0.0.1:9",
            ),
            "cluster",
        ),
        (pb::AddNodeRequest { header, node: None }, "no node"),
    ] {
        let r = admin.add_node(req).await.expect("rpc").into_inner();
        let m = refused(r);
        assert!(m.contains(want), "want {want:?}, got {m:?}");
    }
    // Node 2 at its own address is already known: nothing changes.
    let r = admin
        .add_node(add(header, 2, &two))
        .await
        .expect("rpc")
        .into_inner();
    assert!(r.error.is_none() && r.already_known, "{r:?}");
    // A membership change naming an unknown node is refused.
    let r = admin
        .change_membership(pb::ChangeMembershipRequest {
            header,
            group: 1,
            change: Some(pb::change_membership_request::Change::Add(4)),
        })
        .await
        .expect("rpc")
        .into_inner();
    assert!(
        r.error
            .as_ref()
            .is_some_and(|e| e.message.contains("not known")),
        "{r:?}"
    );
    // A new node is known at once, in status, and recorded.
    let r = admin
        .add_node(add(header, 4, "127.0.0.1:9"))
        .await
        .expect("rpc")
        .into_inner();
    assert!(r.error.is_none() && !r.already_known, "{r:?}");
    let mut c = h.clients().await.remove(0);
    let s = c
        .status(pb::StatusRequest { header: None })
        .await
        .expect("rpc")
        .into_inner();
    assert!(
        s.nodes
            .iter()
            .any(|n| n.id == 4 && n.address == "127.0.0.1:9"),
        "{:?}",
        s.nodes
    );
    assert!(s.groups.iter().all(|g| g.local_replica));
    let recorded = std::fs::read_to_string(
        h.cluster
            .config(1)
            .data_dir
            .join(meridian_node::members::PEERS_FILE),
    )
    .expect("peers file");
    assert!(recorded.contains("127.0.0.1:9"), "{recorded}");
    h.cluster.shutdown().await;
}

/// docs/design.md §6: calls on a `Calls` stream are answered as their
/// unary forms are, by id, and a node that stops ends its streams (a client
/// would otherwise keep talking to the stopped node's services for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_on_one_stream_are_answered_by_id_and_a_stopping_node_ends_the_stream() {
    let mut h = Harness::start().await;
    commit_one_shot(&h, "streamed", "v").await;
    let mut client = h.clients().await.remove(0);
    let (out, out_rx) = tokio::sync::mpsc::unbounded_channel();
    let now = |id| pb::Call {
        id,
        body: Some(pb::call::Body::Now(pb::NowRequest {
            header: Some(h.header),
        })),
        timeout_micros: Some(5_000_000),
    };
    // Two calls in one batch, one without a body, one of another cluster.
    let foreign = pb::Call {
        id: 9,
        body: Some(pb::call::Body::Now(pb::NowRequest {
            header: Some(pb::Header {
                cluster_id: h.header.cluster_id + 1,
                epoch: h.header.epoch,
            }),
        })),
        timeout_micros: None,
    };
    let empty = pb::Call {
        id: 8,
        body: None,
        timeout_micros: None,
    };
    out.send(pb::CallBatch {
        calls: vec![now(7), empty, foreign, now(3)],
    })
    .unwrap();
    let mut inbound = client
        .calls(tokio_stream::wrappers::UnboundedReceiverStream::new(out_rx))
        .await
        .expect("the stream opens")
        .into_inner();
    let mut replies = std::collections::BTreeMap::new();
    while replies.len() < 4 {
        let batch = tokio::time::timeout(Duration::from_secs(10), inbound.message())
            .await
            .expect("answered in time")
            .expect("the stream holds")
            .expect("not ended");
        for r in batch.replies {
            replies.insert(r.id, r.body.expect("a body"));
        }
    }
    for id in [3, 7] {
        match &replies[&id] {
            pb::reply::Body::Now(n) => assert!(n.error.is_none() && n.earliest <= n.latest),
            other => panic!("call {id} answered {other:?}"),
        }
    }
    match &replies[&8] {
        pb::reply::Body::Status(s) => {
            assert_eq!(s.code, tonic::Code::InvalidArgument as i32)
        }
        other => panic!("an empty call answered {other:?}"),
    }
    match &replies[&9] {
        pb::reply::Body::Now(n) => assert!(matches!(
            n.error.as_ref().and_then(|e| e.kind.as_ref()),
            Some(pb::error::Kind::ClusterMismatch(_))
        )),
        other => panic!("another cluster's call answered {other:?}"),
    }
    // The node the stream goes to stops: the stream ends, though the
    // client keeps its side open.
    h.cluster.kill(1);
    let ended = tokio::time::timeout(Duration::from_secs(5), inbound.message()).await;
    assert!(
        matches!(ended, Ok(Ok(None)) | Ok(Err(_))),
        "the stream outlived its node: {ended:?}"
    );
    drop(out);
    h.cluster.shutdown().await;
}

/// A snapshot read of `key` at `ts` at every node until one answers
/// without `NotYetSafe`/not-leader trouble: the response.
async fn snapshot_read(h: &Harness, key: &str, ts: u64) -> pb::ReadOnlyResponse {
    let group = h.group_of(key.as_bytes());
    let mut last = None;
    for _ in 0..100 {
        for mut c in h.clients().await {
            let r = c
                .read_only(pb::ReadOnlyRequest {
                    header: Some(h.header),
                    group,
                    at: Some(pb::read_only_request::At::Exact(ts)),
                    reads: vec![pb::ReadOp {
                        op: Some(pb::read_op::Op::Get(Bytes::copy_from_slice(key.as_bytes()))),
                    }],
                })
                .await
                .expect("rpc")
                .into_inner();
            let retry = matches!(
                r.error.as_ref().and_then(|e| e.kind.as_ref()),
                Some(pb::error::Kind::NotYetSafe(_)) | Some(pb::error::Kind::NoReplica(_))
            );
            if !retry {
                return r;
            }
            last = Some(r);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no replica served a snapshot read of {key} at {ts}: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn design_s5_3_a_snapshot_read_below_the_clusters_birth_is_refused_naming_the_birth() {
    let h = Harness::start().await;
    let birth = h
        .cluster
        .config(1)
        .birth_ns
        .expect("a new cluster records its birth");
    for id in 2..=3 {
        assert_eq!(h.cluster.config(id).birth_ns, Some(birth), "every node");
    }
    let joining = h.cluster.joining_config().expect("joining config");
    assert_eq!(joining.birth_ns, Some(birth), "a joining node carries it");
    let w = commit_one_shot(&h, "born", "v").await;
    assert!(w.error.is_none(), "{:?}", w.error);
    assert!(w.commit_ts >= birth, "commits come after the birth");

    // Below the birth: refused, with the birth named, not "no value".
    for ts in [1, birth - 1] {
        let r = snapshot_read(&h, "born", ts).await;
        match r.error.and_then(|e| e.kind) {
            Some(pb::error::Kind::ReadBelowClusterBirth(b)) => {
                assert_eq!((b.read_ts, b.birth), (ts, birth));
            }
            other => panic!("read at {ts} below the birth {birth}: {other:?}"),
        }
    }
    // At the birth: served, nothing there yet; at the commit: the value.
    let r = snapshot_read(&h, "born", birth).await;
    assert!(r.error.is_none(), "{:?}", r.error);
    assert!(
        matches!(
            r.results[0].result.clone(),
            Some(pb::read_result::Result::Value(pb::MaybeValue {
                value: None
            }))
        ),
        "{:?}",
        r.results
    );
    let r = snapshot_read(&h, "born", w.commit_ts).await;
    assert!(r.error.is_none(), "{:?}", r.error);
    assert!(
        matches!(
            r.results[0].result.clone(),
            Some(pb::read_result::Result::Value(pb::MaybeValue { value: Some(v) })) if v == "v"
        ),
        "{:?}",
        r.results
    );
}
