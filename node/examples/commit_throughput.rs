//! Single-key commits/s and latency percentiles from concurrent clients
//! against an in-process local cluster (3 nodes, real gRPC on loopback,
//! real write-ahead logs with fdatasync).
//!
//! `cargo run --release -p meridian-node --example commit_throughput -- [CLIENTS] [SECONDS] [GROUPS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use meridian_node::local::{LocalCluster, LocalOptions};
use meridian_proto::pb;
use meridian_proto::pb::meridian_client::MeridianClient;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let clients: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let groups: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3);
    let cluster = LocalCluster::start(LocalOptions {
        groups,
        ..LocalOptions::default()
    })
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
    let endpoints = cluster.endpoints();
    let mut chans = Vec::new();
    for e in &endpoints {
        chans.push(
            tonic::transport::Endpoint::from_shared(format!("http://{e}"))
                .expect("uri")
                .tcp_nodelay(true)
                .connect()
                .await
                .expect("connects"),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let start = Instant::now();
    for c in 0..clients {
        let chans = chans.clone();
        let stop = stop.clone();
        let cfg = cfg.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut leader: Vec<usize> = vec![0; cfg.groups.len() + 1];
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("{}key{c}-{i}", (b'!' + (i % 90) as u8) as char);
                i += 1;
                let group = cfg.group_of(key.as_bytes()).expect("tiled").id;
                let t = Instant::now();
                loop {
                    let n = leader[group as usize];
                    let mut client = MeridianClient::new(chans[n].clone());
                    let r = client
                        .commit(pb::CommitRequest {
                            header: Some(header),
                            group,
                            txn: None,
                            writes: vec![pb::Write {
                                key: Bytes::from(key.clone()),
                                value: Some(Bytes::from_static(&[7u8; 100])),
                            }],
                            participants: vec![],
                            mode: 0,
                        })
                        .await
                        .expect("rpc")
                        .into_inner();
                    match r.error.and_then(|e| e.kind) {
                        None => break,
                        Some(pb::error::Kind::NotLeader(pb::NotLeader { leader: Some(l) })) => {
                            leader[group as usize] = (l - 1) as usize;
                        }
                        Some(_) => {
                            leader[group as usize] = (n + 1) % chans.len();
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let took = start.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "clients={clients} groups={groups} commits={} secs={:.1} commits/s={:.0} p50={:?} p99={:?} max={:?}",
        all.len(),
        took.as_secs_f64(),
        all.len() as f64 / took.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        all.last().copied().unwrap_or_default()
    );
    cluster.shutdown().await;
}
