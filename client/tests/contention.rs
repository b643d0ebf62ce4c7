//! Liveness under contention, on three real nodes in one process: bank
//! transfers across groups over a handful of hot accounts, no faults.
//! Wound-wait aborts and retries are expected; a transfer stalled for
//! seconds is not — that is the signature of a lock left behind by an
//! attempt nobody will finish, held until the inactivity timeout.

use std::time::{Duration, Instant};

use bytes::Bytes;
use meridian_client::{Client, ClientOptions};
use meridian_node::local::{LocalCluster, LocalOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Concurrent clients.
const WORKERS: u64 = 6;
/// Accounts per group: few, so that transfers collide often.
const ACCOUNTS_PER_GROUP: usize = 5;
/// One first byte per group of the default three-group split.
const PREFIXES: [char; 3] = ['0', 'A', 'a'];
/// How long the workers run.
const WORKLOAD: Duration = Duration::from_secs(4);
/// The longest one transfer (retries included) may take. Half the
/// participants' inactivity timeout: a transfer that waited for an
/// abandoned lock would take about the whole timeout.
const STALL_BOUND: Duration = Duration::from_secs(5);

fn balance(v: Option<&Bytes>) -> i64 {
    v.map_or(0, |b| {
        std::str::from_utf8(b)
            .expect("utf-8 balance")
            .parse()
            .expect("numeric balance")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contended_cross_group_transfers_never_stall() {
    let cluster = LocalCluster::start(LocalOptions::default())
        .await
        .expect("cluster starts");
    cluster
        .wait_for_leaders(Duration::from_secs(30))
        .await
        .expect("leaders");
    let client = Client::connect_with(cluster.endpoints(), ClientOptions::default())
        .await
        .expect("connects");
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let client = client.clone();
        workers.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(w);
            let mut took = Vec::new();
            while t0.elapsed() < WORKLOAD {
                let g = rng.random_range(0..PREFIXES.len());
                let h = (g + rng.random_range(1..PREFIXES.len())) % PREFIXES.len();
                let from = format!(
                    "{}/acct/{}",
                    PREFIXES[g],
                    rng.random_range(0..ACCOUNTS_PER_GROUP)
                );
                let to = format!(
                    "{}/acct/{}",
                    PREFIXES[h],
                    rng.random_range(0..ACCOUNTS_PER_GROUP)
                );
                let started = Instant::now();
                client
                    .transaction(async move |txn| {
                        let v = txn.get_many([&from, &to]).await?;
                        let (a, b) = (balance(v[0].as_ref()), balance(v[1].as_ref()));
                        txn.put(&from, (a - 1).to_string())?;
                        txn.put(&to, (b + 1).to_string())?;
                        Ok(())
                    })
                    .await
                    .expect("a transfer commits within its retries");
                took.push(started.elapsed());
            }
            took
        }));
    }
    let mut took = Vec::new();
    for w in workers {
        took.extend(w.await.expect("worker"));
    }
    let slowest = took.iter().max().copied().unwrap_or_default();
    println!("{} transfers, slowest {slowest:?}", took.len());
    assert!(
        slowest < STALL_BOUND,
        "a transfer took {slowest:?}: something waited for an abandoned lock"
    );
    // The money is all there.
    let keys: Vec<String> = PREFIXES
        .iter()
        .flat_map(|p| (0..ACCOUNTS_PER_GROUP).map(move |i| format!("{p}/acct/{i}")))
        .collect();
    let ((), _) = client
        .transaction(async |txn| {
            let v = txn.get_many(&keys).await?;
            assert_eq!(v.iter().map(|b| balance(b.as_ref())).sum::<i64>(), 0);
            Ok(())
        })
        .await
        .expect("the audit commits");
    cluster.shutdown().await;
}
