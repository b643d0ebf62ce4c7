//! Lock table costs (docs/design.md §4, Spanner §4.2.1): an uncontended acquire
//! plus release, the path every read-write transaction takes on every key
//! (target ≤ 150 ns), and the table under a contended zipfian workload
//! driven like a participant drives it (wounded transactions abort and
//! retry with their first priority; finished ones commit). Results and the
//! command that produced them are in `participant/BENCHMARKS.md`.

mod common;

use std::hint::black_box;

use bytes::Bytes;
use common::{XorShift, Zipf};
use criterion::Criterion;
use meridian_participant::{Acquire, LockMode, LockTable, Priority, TxnId};
use meridian_truetime::Timestamp;

/// Distinct keys cycled through by the uncontended benches.
const UNCONTENDED_KEYS: usize = 4096;
/// Keys in the zipfian workload.
const ZIPF_KEYS: u64 = 10_000;
/// Zipfian skew (YCSB's default).
const ZIPF_THETA: f64 = 0.99;
/// Concurrently active transactions in the zipfian workload.
const ZIPF_TXNS: usize = 32;
/// Locks each transaction takes before committing.
const LOCKS_PER_TXN: usize = 4;
/// One request in this many is exclusive, the rest shared.
const EXCLUSIVE_ONE_IN: u64 = 4;

fn keys(n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("user{i:012}")))
        .collect()
}

fn uncontended(c: &mut Criterion) {
    let keys = keys(UNCONTENDED_KEYS);
    let mut group = c.benchmark_group("locks");
    for (name, mode) in [
        ("exclusive", LockMode::Exclusive),
        ("shared", LockMode::Shared),
    ] {
        group.bench_function(format!("uncontended_acquire_release_all/{name}"), |b| {
            let mut table = LockTable::default();
            let mut n = 0u64;
            b.iter(|| {
                n += 1;
                let txn = TxnId::local(n);
                let prio = Priority::new(Timestamp::from_nanos(n));
                let key = &keys[n as usize & (UNCONTENDED_KEYS - 1)];
                let acquired = table.acquire(txn, prio, key, mode);
                debug_assert_eq!(acquired, Ok(Acquire::Granted));
                black_box(acquired.is_ok());
                black_box(table.release_all(txn));
            })
        });
    }
    group.bench_function("uncontended_acquire_release_one/exclusive", |b| {
        let mut table = LockTable::default();
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            let txn = TxnId::local(n);
            let prio = Priority::new(Timestamp::from_nanos(n));
            let key = &keys[n as usize & (UNCONTENDED_KEYS - 1)];
            black_box(table.acquire(txn, prio, key, LockMode::Exclusive).is_ok());
            black_box(table.release(txn, key));
        })
    });
    group.finish();
}

/// One active transaction of the zipfian workload.
struct Slot {
    txn: TxnId,
    prio: Priority,
    plan: [(usize, LockMode); LOCKS_PER_TXN],
    granted: usize,
    blocked: bool,
}

/// A participant-like driver of the lock table: `ZIPF_TXNS` transactions,
/// each taking `LOCKS_PER_TXN` zipfian-chosen locks one at a time and then
/// committing. A step runs one unblocked transaction one request further
/// (or commits it), aborts whatever that wounded, and resumes whatever the
/// releases granted.
struct Workload {
    table: LockTable,
    keys: Vec<Bytes>,
    zipf: Zipf,
    rng: XorShift,
    slots: Vec<Slot>,
    next_txn: u64,
    clock: u64,
    stats: Stats,
    runnable: Vec<usize>,
}

#[derive(Debug, Default)]
struct Stats {
    steps: u64,
    commits: u64,
    waits: u64,
    wounds: u64,
}

impl Workload {
    fn new() -> Self {
        let mut w = Workload {
            table: LockTable::default(),
            keys: keys(ZIPF_KEYS as usize),
            zipf: Zipf::new(ZIPF_KEYS, ZIPF_THETA),
            rng: XorShift::new(0x10c4_7ab1e),
            slots: Vec::new(),
            next_txn: 0,
            clock: 0,
            stats: Stats::default(),
            runnable: Vec::with_capacity(ZIPF_TXNS),
        };
        for _ in 0..ZIPF_TXNS {
            let slot = w.new_txn(None);
            w.slots.push(slot);
        }
        w
    }

    fn new_txn(&mut self, retry_prio: Option<Priority>) -> Slot {
        self.next_txn += 1;
        self.clock += 1;
        let mut plan = [(0, LockMode::Shared); LOCKS_PER_TXN];
        for p in &mut plan {
            let key = self.zipf.sample(&mut self.rng) as usize;
            let mode = if self.rng.below(EXCLUSIVE_ONE_IN) == 0 {
                LockMode::Exclusive
            } else {
                LockMode::Shared
            };
            *p = (key, mode);
        }
        Slot {
            txn: TxnId::local(self.next_txn),
            prio: retry_prio.unwrap_or(Priority::new(Timestamp::from_nanos(self.clock))),
            plan,
            granted: 0,
            blocked: false,
        }
    }

    fn step(&mut self) {
        self.stats.steps += 1;
        self.runnable.clear();
        self.runnable
            .extend((0..ZIPF_TXNS).filter(|&i| !self.slots[i].blocked));
        assert!(
            !self.runnable.is_empty(),
            "deadlock: every transaction waits"
        );
        let i = self.runnable[self.rng.below(self.runnable.len() as u64) as usize];
        let mut grants = Vec::new();
        let mut wounded = Vec::new();
        if self.slots[i].granted == LOCKS_PER_TXN {
            grants = self.table.release_all(self.slots[i].txn);
            self.stats.commits += 1;
            self.slots[i] = self.new_txn(None);
        } else {
            let slot = &self.slots[i];
            let (k, mode) = slot.plan[slot.granted];
            match self.table.acquire(slot.txn, slot.prio, &self.keys[k], mode) {
                Ok(Acquire::Granted) => self.slots[i].granted += 1,
                Ok(Acquire::GrantedWounding { wounded: w }) => {
                    self.slots[i].granted += 1;
                    wounded = w;
                }
                Ok(Acquire::Waiting { wounded: w }) => {
                    self.stats.waits += 1;
                    self.slots[i].blocked = true;
                    wounded = w;
                }
                Err(e) => panic!("unexpected lock error: {e}"),
            }
        }
        for w in wounded {
            self.stats.wounds += 1;
            let j = self
                .slots
                .iter()
                .position(|s| s.txn == w)
                .expect("wounded txn is active");
            grants.extend(self.table.release_all(w));
            let prio = self.slots[j].prio;
            self.slots[j] = self.new_txn(Some(prio));
        }
        for g in grants {
            if let Some(s) = self.slots.iter_mut().find(|s| s.txn == g.txn) {
                s.blocked = false;
                s.granted += 1;
            }
        }
    }
}

fn zipfian(c: &mut Criterion) {
    // One untimed run to report what the workload does.
    let mut probe = Workload::new();
    for _ in 0..1_000_000 {
        probe.step();
    }
    eprintln!(
        "zipfian workload, {} keys, theta {ZIPF_THETA}, {ZIPF_TXNS} txns x {LOCKS_PER_TXN} locks: {:?}",
        ZIPF_KEYS, probe.stats
    );

    let mut group = c.benchmark_group("locks");
    group.bench_function("zipf_0.99_10k_keys_32_txns/step", |b| {
        let mut w = Workload::new();
        b.iter(|| w.step())
    });
    group.finish();
}

// `criterion_group!` generates an undocumented `pub fn`, which the
// workspace's `missing_docs = "deny"` rejects; this is what it expands to.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    uncontended(&mut c);
    zipfian(&mut c);
    c.final_summary();
}
