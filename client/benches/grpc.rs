//! The gRPC round trip on loopback: the client library's `Now` call to a
//! real node (its gRPC server, HTTP/2 over TCP on 127.0.0.1, the header
//! check, `TT.now()`, the answer), one at a time and 64 at once on one
//! connection. This is the floor under every client operation; a commit
//! adds Paxos rounds, fsync and commit wait to it.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meridian_client::Client;
use meridian_node::local::{LocalCluster, LocalOptions};

/// Calls in flight at once in the concurrent bench.
const CONCURRENT: usize = 64;

/// How long the node may take to start and lead its group.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (cluster, client) = rt.block_on(async {
        let cluster = LocalCluster::start(LocalOptions {
            nodes: 1,
            groups: 1,
            ..LocalOptions::default()
        })
        .await
        .expect("the node starts");
        cluster
            .wait_for_leaders(START_TIMEOUT)
            .await
            .expect("the node leads its group");
        let client = Client::connect(&cluster.endpoints())
            .await
            .expect("the client connects");
        (cluster, client)
    });

    let mut g = c.benchmark_group("grpc_round_trip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("now_sequential", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    client.now().await.expect("now");
                }
                start.elapsed()
            })
        })
    });
    g.throughput(Throughput::Elements(CONCURRENT as u64));
    g.bench_function("now_64_concurrent", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let calls = (0..CONCURRENT).map(|_| {
                        let client = client.clone();
                        tokio::spawn(async move { client.now().await.expect("now") })
                    });
                    for call in calls.collect::<Vec<_>>() {
                        call.await.expect("the call's task");
                    }
                }
                start.elapsed()
            })
        })
    });
    g.finish();
    rt.block_on(cluster.shutdown());
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
