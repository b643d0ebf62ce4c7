//! Single-group transactions through three replicas driven in memory
//! without faults: the transaction core and the Paxos core, no I/O (storage
//! completions reported at once, messages through an in-memory queue).
//! What it measures is the CPU cost of the protocol, as its name says; the
//! clock is advanced by hand past each commit wait.
//!
//! Run: `cargo bench -p meridian-txn --bench txn_core`
#![allow(missing_docs)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meridian_participant::{TxnId, Write};
use meridian_truetime::Timestamp;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{CcMode, ReadAt, ReadOp, Request, Response};

const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);
const LEADER: u64 = 1;
/// Clock uncertainty: small, so a commit wait is a few clock steps.
const EPS: u64 = 1_000;
/// Keys the transactions spread over.
const KEYS: u64 = 1_000;

fn ready_cluster() -> LocalCluster {
    let mut c = LocalCluster::new(3, T0, EPS, |_| {});
    c.count_only();
    c.elect(LEADER);
    c
}

/// Submits at the leader and returns the answer, advancing the clock by
/// `EPS` steps and ticking until it arrives (commit wait).
fn call(c: &mut LocalCluster, request: Request) -> Response {
    let id = c.submit(LEADER, request);
    loop {
        if let Some(r) = c.take_reply(id) {
            return r.expect("the request succeeds");
        }
        c.advance(EPS);
        c.tick_all();
    }
}

fn key(i: u64) -> Bytes {
    Bytes::from(format!("user{:08}", i % KEYS))
}

fn one_key_transaction(c: &mut Criterion) {
    let mut group = c.benchmark_group("txn_core_in_memory");
    group.throughput(Throughput::Elements(1));
    let mut cluster = ready_cluster();
    let mut i = 0u64;
    group.bench_function("begin_read_commit_3_replicas", |b| {
        b.iter(|| {
            i += 1;
            let Response::Begun { txn, .. } = call(
                &mut cluster,
                Request::Begin {
                    priority: None,
                    mode: CcMode::Locking,
                    reserve: 0,
                },
            ) else {
                unreachable!("begin answers Begun")
            };
            let k = key(i);
            call(&mut cluster, read(txn, &k));
            let writes = vec![Write::put(k, Bytes::from_static(b"0123456789abcdef"))];
            call(
                &mut cluster,
                Request::Commit {
                    txn,
                    writes,
                    participants: vec![],
                },
            )
        });
    });
    group.bench_function("strong_read_at_leader_3_replicas", |b| {
        b.iter(|| {
            i += 1;
            call(
                &mut cluster,
                Request::ReadOnly {
                    at: ReadAt::Strong,
                    reads: vec![ReadOp::Get(key(i))],
                },
            )
        });
    });
    group.finish();
}

fn read(txn: TxnId, k: &Bytes) -> Request {
    Request::Read {
        txn,
        keys: vec![k.clone()],
        guest: None,
    }
}

criterion_group!(benches, one_key_transaction);
criterion_main!(benches);
