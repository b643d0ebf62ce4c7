//! Lock table tests beyond the scenario files in `testdata/lock_table`:
//! random operation sequences that check the invariants after every step
//! and that wound-wait leaves no deadlock (Spanner §4.2.1).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use meridian_truetime::Timestamp;
use proptest::prelude::*;

use super::*;

const TXNS: u64 = 6;
const KEYS: [&[u8]; 3] = [b"a", b"b", b"c"];

/// Fixed priorities, with ties (broken by transaction id).
fn prio(txn: u64) -> Priority {
    const PRIOS: [u64; TXNS as usize] = [30, 10, 50, 20, 10, 40];
    Priority::new(Timestamp::from_nanos(PRIOS[txn as usize]))
}

#[derive(Debug, Clone)]
enum Op {
    Acquire {
        txn: u64,
        key: usize,
        mode: LockMode,
    },
    TryAcquire {
        txn: u64,
        key: usize,
        mode: LockMode,
    },
    Release {
        txn: u64,
        key: usize,
    },
    ReleaseAll {
        txn: u64,
    },
    Prepare {
        txn: u64,
    },
}

fn mode() -> impl Strategy<Value = LockMode> {
    prop_oneof![Just(LockMode::Shared), Just(LockMode::Exclusive)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..TXNS, 0..KEYS.len(), mode())
            .prop_map(|(txn, key, mode)| Op::Acquire { txn, key, mode }),
        1 => (0..TXNS, 0..KEYS.len(), mode())
            .prop_map(|(txn, key, mode)| Op::TryAcquire { txn, key, mode }),
        2 => (0..TXNS, 0..KEYS.len()).prop_map(|(txn, key)| Op::Release { txn, key }),
        3 => (0..TXNS).prop_map(|txn| Op::ReleaseAll { txn }),
        1 => (0..TXNS).prop_map(|txn| Op::Prepare { txn }),
    ]
}

/// Each grant is a lock the transaction now holds in a covering mode.
fn check_grants(table: &LockTable, grants: &[Grant]) -> Result<(), TestCaseError> {
    for g in grants {
        let held = table.locks_held_by(g.txn);
        prop_assert!(
            held.iter().any(|(k, m)| *k == g.key && m.covers(g.mode)),
            "grant {:?} not reflected in {:?}",
            g,
            held
        );
    }
    Ok(())
}

/// No cycle in the waits-for graph among transactions that are not
/// wounded (a cycle through a wounded one is broken by its abort).
fn check_acyclic(table: &LockTable) -> Result<(), TestCaseError> {
    let mut graph: BTreeMap<TxnId, BTreeSet<TxnId>> = BTreeMap::new();
    for e in table.waits_for() {
        if !table.is_wounded(e.waiter) && !table.is_wounded(e.blocker) {
            graph.entry(e.waiter).or_default().insert(e.blocker);
        }
    }
    // Kahn-style: repeatedly drop nodes with no outgoing edges.
    loop {
        let sinks: Vec<TxnId> = graph
            .iter()
            .filter(|(_, out)| out.iter().all(|b| !graph.contains_key(b)))
            .map(|(t, _)| *t)
            .collect();
        if sinks.is_empty() {
            break;
        }
        for t in sinks {
            graph.remove(&t);
        }
    }
    prop_assert!(graph.is_empty(), "waits-for cycle among {:?}", graph);
    Ok(())
}

/// Plays the participant until the table is empty: aborts wounded
/// transactions, commits any transaction that is not waiting. If neither
/// exists while locks are held, the transactions are deadlocked.
fn drain(table: &mut LockTable) -> Result<(), TestCaseError> {
    for _ in 0..(4 * TXNS) {
        let live: Vec<TxnId> = (0..TXNS)
            .map(TxnId::local)
            .filter(|t| !table.locks_held_by(*t).is_empty() || table.is_wounded(*t))
            .collect();
        if live.is_empty() && table.waiter_count() == 0 {
            prop_assert_eq!(table.locked_key_count(), 0);
            return Ok(());
        }
        let waiting: BTreeSet<TxnId> = table.waits_for().iter().map(|e| e.waiter).collect();
        let next = live
            .iter()
            .find(|t| table.is_wounded(**t))
            .or_else(|| live.iter().find(|t| !waiting.contains(t)))
            .copied();
        let Some(txn) = next else {
            return Err(TestCaseError::fail(format!(
                "deadlock: every transaction waits: {:?}",
                table.waits_for()
            )));
        };
        let grants = table.release_all(txn);
        table.assert_invariants();
        check_grants(table, &grants)?;
    }
    Err(TestCaseError::fail("drain did not finish"))
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut table = LockTable::new(LockLimits {
        max_waiters_per_key: 4,
        max_total_waiters: 8,
    });
    let key = |i: usize| Bytes::from_static(KEYS[i]);
    for op in ops {
        match *op {
            Op::Acquire { txn, key: k, mode } => {
                match table.acquire(TxnId::local(txn), prio(txn), &key(k), mode) {
                    Ok(Acquire::Granted) => {
                        prop_assert!(
                            table
                                .locks_held_by(TxnId::local(txn))
                                .iter()
                                .any(|(held, m)| *held == key(k) && m.covers(mode))
                        );
                    }
                    Ok(Acquire::Waiting { wounded }) => {
                        prop_assert!(table.waiters(KEYS[k]).iter().any(|(t, _)| t.seq == txn));
                        for w in wounded {
                            prop_assert!(table.is_wounded(w));
                            prop_assert!(!table.is_prepared(w));
                            prop_assert!(prio(txn).is_older(TxnId::local(txn), prio(w.seq), w));
                        }
                    }
                    Err(
                        LockError::Wounded { .. }
                        | LockError::AlreadyPrepared { .. }
                        | LockError::AlreadyWaiting { .. }
                        | LockError::QueueFull { .. }
                        | LockError::TooManyWaiters { .. },
                    ) => {}
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
            }
            Op::TryAcquire { txn, key: k, mode } => {
                let waiters = table.waiter_count();
                let _ = table.try_acquire(TxnId::local(txn), prio(txn), &key(k), mode);
                prop_assert_eq!(waiters, table.waiter_count(), "try_acquire queued");
            }
            Op::Release { txn, key: k } => {
                let grants = table.release(TxnId::local(txn), KEYS[k]);
                check_grants(&table, &grants)?;
            }
            Op::ReleaseAll { txn } => {
                let grants = table.release_all(TxnId::local(txn));
                prop_assert!(table.locks_held_by(TxnId::local(txn)).is_empty());
                check_grants(&table, &grants)?;
            }
            Op::Prepare { txn } => {
                if table.mark_prepared(TxnId::local(txn)).is_ok() {
                    prop_assert!(table.is_prepared(TxnId::local(txn)));
                }
            }
        }
        table.assert_invariants();
        check_acyclic(&table)?;
    }
    drain(&mut table)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Spanner §4.2.1: with wound-wait, whatever the interleaving, the
    /// table's invariants hold after every operation, the waits-for graph
    /// of live transactions has no cycle, and aborting the wounded and
    /// committing the unblocked always empties the table.
    #[test]
    fn wound_wait_keeps_invariants_and_never_deadlocks(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        run(&ops)?;
    }
}

#[test]
fn uncontended_acquire_and_release_leave_nothing_behind() {
    let mut table = LockTable::default();
    let k = Bytes::from_static(b"k");
    for i in 0..1000 {
        assert_eq!(
            table.acquire(TxnId::local(i), prio(0), &k, LockMode::Exclusive),
            Ok(Acquire::Granted)
        );
        assert!(table.release_all(TxnId::local(i)).is_empty());
    }
    assert_eq!(table.locked_key_count(), 0);
    assert_eq!(table.waiter_count(), 0);
    assert!(table.txns.is_empty());
    assert!(table.keys.is_empty());
}

#[test]
fn release_of_last_lock_forgets_an_unmarked_transaction() {
    let mut table = LockTable::default();
    let k = Bytes::from_static(b"k");
    table
        .acquire(TxnId::local(1), prio(1), &k, LockMode::Shared)
        .unwrap();
    table.release(TxnId::local(1), b"k");
    assert!(table.txns.is_empty());
    // A prepared one is kept until release_all.
    table
        .acquire(TxnId::local(1), prio(1), &k, LockMode::Shared)
        .unwrap();
    table.mark_prepared(TxnId::local(1)).unwrap();
    table.mark_prepared(TxnId::local(1)).unwrap();
    table.release(TxnId::local(1), b"k");
    assert!(table.is_prepared(TxnId::local(1)));
    table.release_all(TxnId::local(1));
    assert!(!table.is_prepared(TxnId::local(1)));
}

#[test]
fn inline_vec_keeps_first_inline_and_removes_any() {
    let mut v = InlineVec::new();
    assert!(v.is_empty());
    for i in 0..5 {
        v.push(i);
    }
    assert_eq!(v.len(), 5);
    assert_eq!(v.remove_where(|x| *x == 0), Some(0));
    assert_eq!(v.remove_where(|x| *x == 3), Some(3));
    assert_eq!(v.remove_where(|x| *x == 9), None);
    let mut rest: Vec<i32> = v.iter().copied().collect();
    rest.sort();
    assert_eq!(rest, vec![1, 2, 4]);
    let mut all: Vec<i32> = v.into_iter().collect();
    all.sort();
    assert_eq!(all, vec![1, 2, 4]);
}

/// A deterministic stress run: many transactions over a few hot keys,
/// driven like a participant would (wounded ones abort and retry with their
/// old priority; finished ones commit). Checks the invariants at every step
/// and that every transaction eventually commits (no starvation: the oldest
/// transaction always makes progress).
#[test]
fn spanner_s4_2_1_wound_wait_is_starvation_free_under_contention() {
    const SLOTS: usize = 12;
    const LOCKS_PER_TXN: usize = 3;
    const COMMITS: usize = 2_000;
    const MAX_STEPS: usize = 200_000;
    let keys: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("k{i}"))).collect();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };

    #[derive(Clone)]
    struct Slot {
        txn: TxnId,
        prio: Priority,
        plan: Vec<(usize, LockMode)>,
        granted: usize,
        blocked: bool,
        attempts: u32,
    }
    let mut table = LockTable::default();
    let mut next_txn = 0u64;
    let mut clock = 0u64;
    let mut new_slot = |next: &mut dyn FnMut() -> u64, prio: Option<Priority>| {
        next_txn += 1;
        clock += 1;
        Slot {
            txn: TxnId::local(next_txn),
            prio: prio.unwrap_or(Priority::new(Timestamp::from_nanos(clock))),
            plan: (0..LOCKS_PER_TXN)
                .map(|_| {
                    let r = next();
                    let mode = if r & 1 == 0 {
                        LockMode::Shared
                    } else {
                        LockMode::Exclusive
                    };
                    ((r >> 8) as usize % 5, mode)
                })
                .collect(),
            granted: 0,
            blocked: false,
            attempts: 1,
        }
    };
    let mut slots: Vec<Slot> = (0..SLOTS).map(|_| new_slot(&mut next, None)).collect();
    let mut commits = 0;
    let mut max_attempts = 0;
    let mut steps = 0;
    while commits < COMMITS {
        steps += 1;
        assert!(steps < MAX_STEPS, "no progress: livelock or starvation");
        let runnable: Vec<usize> = (0..SLOTS).filter(|&i| !slots[i].blocked).collect();
        assert!(
            !runnable.is_empty(),
            "deadlock: every transaction is blocked: {:?}",
            table.waits_for()
        );
        let i = runnable[next() as usize % runnable.len()];
        let mut grants = Vec::new();
        let mut wounded = Vec::new();
        if slots[i].granted == LOCKS_PER_TXN {
            grants.extend(table.release_all(slots[i].txn));
            commits += 1;
            max_attempts = max_attempts.max(slots[i].attempts);
            slots[i] = new_slot(&mut next, None);
        } else {
            let (k, mode) = slots[i].plan[slots[i].granted];
            match table.acquire(slots[i].txn, slots[i].prio, &keys[k], mode) {
                Ok(Acquire::Granted) => slots[i].granted += 1,
                Ok(Acquire::Waiting { wounded: w }) => {
                    slots[i].blocked = true;
                    wounded.extend(w);
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        // The participant aborts every wounded transaction; it retries
        // under a new id with its original priority.
        while let Some(w) = wounded.pop() {
            let j = slots
                .iter()
                .position(|s| s.txn == w)
                .expect("wounded txn is live");
            grants.extend(table.release_all(w));
            let (prio, attempts) = (slots[j].prio, slots[j].attempts);
            slots[j] = new_slot(&mut next, Some(prio));
            slots[j].attempts = attempts + 1;
        }
        for g in grants {
            if let Some(s) = slots.iter_mut().find(|s| s.txn == g.txn) {
                assert!(s.blocked, "grant to a transaction that was not waiting");
                s.blocked = false;
                s.granted += 1;
            }
        }
        table.assert_invariants();
    }
    // Starvation-freedom in practice: no transaction needed more than a
    // handful of attempts.
    assert!(
        max_attempts < 50,
        "a transaction needed {max_attempts} attempts"
    );
}
