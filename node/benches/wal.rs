//! Group commit across groups: append + `fdatasync` of batches for three
//! groups, (a) sharing one write-ahead log with one fsync per batch, and
//! (b) each with its own log, fsyncing its own share, one log after the
//! other on one thread, or (c) the three at once on three threads.
//!
//! The logs live under Cargo's target tmp directory, on the same disk as
//! the build (a tmpfs `/tmp` would make `fdatasync` free).
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use meridian_node::storage::{Wal, WalOptions};
use meridian_paxos::{Ballot, Entry, HardState, Payload, PersistRequest};
use meridian_truetime::Timestamp;

const GROUPS: u64 = 3;
const COMMAND_BYTES: usize = 100;
const BATCHES: [u64; 4] = [1, 16, 64, 256];

fn request(next: &mut u64, n: u64) -> PersistRequest {
    let command = Bytes::from(vec![7u8; COMMAND_BYTES]);
    let entries = (*next..*next + n)
        .map(|slot| Entry {
            slot,
            ballot: Ballot::new(1, 1),
            ts: Timestamp::from_nanos(slot),
            payload: Payload::Command(command.clone()),
        })
        .collect();
    *next += n;
    PersistRequest {
        entries,
        hard_state: Some(HardState {
            promised: Ballot::new(1, 1),
        }),
        ..PersistRequest::default()
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir")
}

fn group_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_append_fdatasync");
    for n in BATCHES {
        g.throughput(Throughput::Elements(n * GROUPS));
        g.bench_with_input(BenchmarkId::new("one_wal_3_groups", n), &n, |b, &n| {
            let dir = tmp();
            let (mut wal, _) = Wal::open(dir.path(), WalOptions::default()).expect("open");
            let mut next = [1u64; GROUPS as usize];
            b.iter(|| {
                for (group, next) in next.iter_mut().enumerate() {
                    wal.write(group as u64, &request(next, n)).expect("write");
                }
                black_box(wal.sync().expect("sync"))
            });
        });
        g.bench_with_input(BenchmarkId::new("three_wals_1_group", n), &n, |b, &n| {
            let dirs: Vec<_> = (0..GROUPS).map(|_| tmp()).collect();
            let mut wals: Vec<Wal> = dirs
                .iter()
                .map(|d| Wal::open(d.path(), WalOptions::default()).expect("open").0)
                .collect();
            let mut next = [1u64; GROUPS as usize];
            b.iter(|| {
                for (group, (wal, next)) in wals.iter_mut().zip(next.iter_mut()).enumerate() {
                    wal.write(group as u64, &request(next, n)).expect("write");
                    black_box(wal.sync().expect("sync"));
                }
            });
        });
        g.bench_with_input(
            BenchmarkId::new("three_wals_1_group_parallel", n),
            &n,
            |b, &n| {
                let dirs: Vec<_> = (0..GROUPS).map(|_| tmp()).collect();
                let mut wals: Vec<Wal> = dirs
                    .iter()
                    .map(|d| Wal::open(d.path(), WalOptions::default()).expect("open").0)
                    .collect();
                let mut next = [1u64; GROUPS as usize];
                b.iter(|| {
                    std::thread::scope(|s| {
                        for (group, (wal, next)) in wals.iter_mut().zip(next.iter_mut()).enumerate()
                        {
                            s.spawn(move || {
                                wal.write(group as u64, &request(next, n)).expect("write");
                                black_box(wal.sync().expect("sync"));
                            });
                        }
                    });
                });
            },
        );
    }
    g.finish();
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
