//! Commands committed per second through a 3-replica Paxos group driven in
//! memory without faults (no I/O: storage completions are reported at once).
//!
//! Run: `cargo bench -p meridian-paxos --bench paxos_core`
#![allow(missing_docs)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meridian_paxos::testkit::LocalGroup;
use meridian_truetime::Timestamp;

const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);
const LEADER: u64 = 1;

fn ready_group() -> LocalGroup {
    let mut g = LocalGroup::new(3, T0, 1_000_000, |c| {
        c.max_batch_entries = 1024;
        c.max_inflight = 64;
    });
    g.count_only();
    g.compact_every(100_000);
    // Wait out the start-up lease every replica assumes it granted.
    g.advance(3_000_000_000);
    g.elect(LEADER);
    assert!(
        g.replica(LEADER).has_lease(g.now()),
        "leader must hold its lease"
    );
    g
}

fn commit_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("paxos_commit");
    for batch in [1u64, 64] {
        group.throughput(Throughput::Elements(batch));
        let payload = Bytes::from_static(b"0123456789abcdef");
        let mut g = ready_group();
        group.bench_function(format!("3_replicas_batch_{batch}"), |b| {
            b.iter(|| {
                let before = g.applied_count(LEADER);
                g.propose_batch(LEADER, (0..batch).map(|_| payload.clone()))
                    .expect("leader accepts");
                g.run();
                g.advance(1_000);
                assert_eq!(g.applied_count(LEADER), before + batch);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, commit_throughput);
criterion_main!(benches);
