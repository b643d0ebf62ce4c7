//! `Status` as one node sees the cluster (docs/operations.md "Status"):
//! every node's liveness and metrics address, and the answering node's
//! replicas with their role, progress and safe-time lag.

use std::time::{Duration, Instant};

use meridian_node::liveness::LIVENESS_TIMEOUT;
use meridian_node::local::{LocalCluster, LocalOptions};
use meridian_proto::pb;

async fn status_of(cluster: &LocalCluster, node: u64) -> pb::StatusResponse {
    let e = &cluster.endpoints()[(node - 1) as usize];
    let mut c = pb::meridian_client::MeridianClient::connect(format!("http://{e}"))
        .await
        .expect("connects");
    let cfg = cluster.config(node);
    c.status(pb::StatusRequest {
        header: Some(pb::Header {
            cluster_id: cfg.cluster_id,
            epoch: cfg.epoch,
        }),
    })
    .await
    .expect("status")
    .into_inner()
}

fn liveness(s: &pb::StatusResponse, id: u64) -> (pb::Liveness, Option<u64>, Option<String>) {
    let n = s.nodes.iter().find(|n| n.id == id).expect("listed");
    (
        pb::Liveness::try_from(n.liveness).expect("known state"),
        n.last_contact_ms,
        n.metrics_address.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_each_nodes_liveness_as_the_answering_node_sees_it() {
    let mut cluster = LocalCluster::start(LocalOptions::default())
        .await
        .expect("cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(30))
        .await
        .expect("leaders");
    // Views are republished at least every 100 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = status_of(&cluster, 1).await;
    assert_eq!(s.node, 1);
    let (state, contact, metrics) = liveness(&s, 1);
    assert_eq!(state, pb::Liveness::Self_);
    assert_eq!(contact, Some(0));
    assert_eq!(metrics, cluster.config(1).metrics_listen);
    for peer in [2, 3] {
        let (state, contact, metrics) = liveness(&s, peer);
        assert_eq!(state, pb::Liveness::Live, "node {peer}");
        assert!(contact.is_some_and(|ms| ms <= LIVENESS_TIMEOUT.as_millis() as u64));
        // Learnt from the peer's hello.
        assert_eq!(metrics, cluster.config(peer).metrics_listen, "node {peer}");
    }
    // The answering node's replicas: a role each, progress, safe-time lag.
    let mut leaders = 0;
    for g in &s.groups {
        assert!(g.local_replica);
        assert!(
            ["leader", "follower", "candidate"].contains(&g.role.as_str()),
            "{g:?}"
        );
        assert!(g.applied > 0 && g.chosen >= g.applied, "{g:?}");
        assert!(
            g.safe_time_lag_micros.is_some_and(|l| l < 2_000_000),
            "{g:?}"
        );
        if g.local_leader {
            assert_eq!(g.role, "leader");
            leaders += 1;
        }
    }
    let from_2 = status_of(&cluster, 2).await;
    assert_eq!(from_2.node, 2);
    assert_eq!(liveness(&from_2, 2).0, pb::Liveness::Self_);
    let all_leaders: usize = [&s, &from_2, &status_of(&cluster, 3).await]
        .iter()
        .map(|s| s.groups.iter().filter(|g| g.local_leader).count())
        .sum();
    assert_eq!(all_leaders, 3, "one leader per group ({leaders} at node 1)");

    // Node 3 dies: node 1 reports it down after the liveness timeout, with
    // the time since its last contact; node 2 stays live.
    cluster.kill(3);
    let killed = Instant::now();
    let deadline = killed + LIVENESS_TIMEOUT + Duration::from_secs(5);
    loop {
        let s = status_of(&cluster, 1).await;
        let (state, contact, _) = liveness(&s, 3);
        if state == pb::Liveness::Down {
            assert!(
                killed.elapsed() >= LIVENESS_TIMEOUT - Duration::from_secs(1),
                "down too soon"
            );
            assert!(contact.is_some_and(|ms| ms > LIVENESS_TIMEOUT.as_millis() as u64));
            assert_eq!(liveness(&s, 2).0, pb::Liveness::Live);
            break;
        }
        assert!(Instant::now() < deadline, "node 3 still {state:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.shutdown().await;
}
