//! A data directory belongs to one cluster and one node
//! (docs/operations.md "Data directories").

use std::time::Duration;

use meridian_node::local::{LocalCluster, LocalOptions};
use meridian_node::{Node, StartError, StartOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_refuses_another_cluster_or_another_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = LocalCluster::start(LocalOptions {
        dir: Some(dir.path().to_path_buf()),
        ..LocalOptions::default()
    })
    .await
    .expect("cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(30))
        .await
        .expect("leaders");
    let cfg = cluster.config(1).clone();
    let other = cluster.config(2).clone();
    cluster.shutdown().await;
    let recorded = std::fs::read_to_string(cfg.data_dir.join("identity.toml")).expect("recorded");
    assert!(
        recorded.contains(&format!("cluster_id = {}", cfg.cluster_id)),
        "{recorded}"
    );
    assert!(recorded.contains("node_id = 1"), "{recorded}");

    // Another cluster's node 1 on node 1's data: refused, naming both.
    let mut foreign = cfg.clone();
    foreign.cluster_id = cfg.cluster_id ^ 0xff00;
    match Node::start(foreign.clone(), StartOptions::default()).await {
        Err(StartError::DataDir(e)) => {
            let m = e.to_string();
            assert!(
                m.contains(&format!("cluster {:#x} node 1", cfg.cluster_id))
                    && m.contains(&format!("cluster {:#x} node 1", foreign.cluster_id)),
                "{m}"
            );
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("started on another cluster's data"),
    }

    // Node 2 pointed at node 1's data: refused.
    let mut swapped = other;
    swapped.data_dir = cfg.data_dir.clone();
    match Node::start(swapped, StartOptions::default()).await {
        Err(StartError::DataDir(e)) => {
            let m = e.to_string();
            assert!(m.contains("node 1") && m.contains("node 2"), "{m}");
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("node 2 started on node 1's data"),
    }
    // The refusals left the identity as it was.
    assert_eq!(
        std::fs::read_to_string(cfg.data_dir.join("identity.toml")).expect("still there"),
        recorded
    );
}
