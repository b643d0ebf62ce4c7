//! OCC validation cost (docs/design.md §5.4): a participant leader checking
//! a transaction's 10-key read set against the applied state and its lock
//! table, the work FaRM's validate phase adds to every optimistic commit.
//! All reads are current (the common, successful case, which checks every
//! key); the lock table holds exclusive locks of other transactions on
//! other keys, as under load.

use std::hint::black_box;

use bytes::Bytes;
use criterion::Criterion;
use meridian_participant::occ::validate;
use meridian_participant::{
    Command, GroupState, LockMode, LockTable, Priority, ReadVersion, TxnId, Write,
};
use meridian_paxos::{Ballot, Entry, Payload};
use meridian_truetime::Timestamp;

/// Keys in the group's state.
const KEYS: usize = 100_000;
/// Keys each commit record writes while loading the state.
const KEYS_PER_LOAD_COMMIT: usize = 1_000;
/// Keys in the validated read set.
const READ_SET: usize = 10;
/// Read sets cycled through, so reads do not hit one cache line.
const READ_SETS: usize = 1_024;
/// Exclusive locks other transactions hold during validation.
const FOREIGN_LOCKS: usize = 256;

fn key(i: usize) -> Bytes {
    Bytes::from(format!("user{i:012}"))
}

/// A state holding `KEYS` keys, written by commits at timestamps 1, 2, ...
fn loaded_state() -> GroupState {
    let mut s = GroupState::default();
    for (n, chunk) in (0..KEYS)
        .collect::<Vec<_>>()
        .chunks(KEYS_PER_LOAD_COMMIT)
        .enumerate()
    {
        let writes = chunk.iter().map(|&i| Write::put(key(i), key(i))).collect();
        let cmd = Command::Commit {
            txn: TxnId::local(n as u64 + 1),
            writes,
        };
        s.apply(&Entry {
            slot: n as u64 + 1,
            ballot: Ballot::new(1, 1),
            ts: Timestamp::from_nanos(n as u64 + 1),
            payload: Payload::Command(cmd.encode()),
        })
        .expect("the load applies");
    }
    s
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let state = loaded_state();
    let mut locks = LockTable::default();
    for i in 0..FOREIGN_LOCKS {
        let holder = TxnId::local(1_000_000 + i as u64);
        let prio = Priority::new(Timestamp::from_nanos(i as u64 + 1));
        locks
            .acquire(holder, prio, &key(KEYS - 1 - i), LockMode::Exclusive)
            .expect("uncontended");
    }
    // Read sets spread over the keys (stride coprime with KEYS), each key
    // recorded at the version the state holds: every validation succeeds.
    let read_sets: Vec<Vec<ReadVersion>> = (0..READ_SETS)
        .map(|s| {
            (0..READ_SET)
                .map(|j| {
                    let k = key((s * READ_SET + j) * 7_919 % (KEYS - FOREIGN_LOCKS));
                    let seen = state.latest_version(&k);
                    ReadVersion { key: k, seen }
                })
                .collect()
        })
        .collect();
    let me = TxnId::local(42);
    let mut group = c.benchmark_group("occ");
    group.bench_function("validate_10_key_read_set/100k_keys", |b| {
        let mut n = 0;
        b.iter(|| {
            n = (n + 1) % READ_SETS;
            black_box(validate(&state, &locks, me, black_box(&read_sets[n]))).expect("current")
        })
    });
    group.finish();
    c.final_summary();
}
