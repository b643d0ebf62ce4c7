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
                    Ok(Acquire::GrantedWounding { wounded }) => {
                        prop_assert!(
                            table
                                .locks_held_by(TxnId::local(txn))
                                .iter()
                                .any(|(held, m)| *held == key(k) && m.covers(mode))
                        );
                        for w in wounded {
                            prop_assert!(table.is_wounded(w));
                            prop_assert!(prio(txn).is_older(TxnId::local(txn), prio(w.seq), w));
                        }
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
                Ok(Acquire::GrantedWounding { wounded: w }) => {
                    slots[i].granted += 1;
                    wounded.extend(w);
                }
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

// Deterministic wound-wait rules (Spanner §4.2.1), one per test. `t(n)`
// has priority `at(n)`: its first start timestamp, lower = older.

fn t(n: u64) -> TxnId {
    TxnId::local(n)
}

fn at(ns: u64) -> Priority {
    Priority::new(Timestamp::from_nanos(ns))
}

fn k(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn waiting(wounded: &[u64]) -> Result<Acquire, LockError> {
    Ok(Acquire::Waiting {
        wounded: wounded.iter().map(|n| t(*n)).collect(),
    })
}

fn grant(txn: u64, key: &'static str, mode: LockMode) -> Grant {
    Grant {
        txn: t(txn),
        key: k(key),
        mode,
        span: LockSpan::Key,
    }
}

fn edge(key: &'static str, waiter: u64, blocker: u64) -> WaitsFor {
    WaitsFor {
        key: k(key),
        waiter: t(waiter),
        blocker: t(blocker),
        span: LockSpan::Key,
    }
}

use LockMode::{Exclusive as X, Shared as S};

#[test]
fn spanner_s4_2_1_wound_wait_older_requester_wounds_younger_holder() {
    let mut table = LockTable::default();
    assert_eq!(
        table.acquire(t(2), at(20), &k("x"), X),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.acquire(t(1), at(10), &k("x"), X), waiting(&[2]));
    assert!(table.is_wounded(t(2)));
    assert!(!table.is_wounded(t(1)));
    assert_eq!(table.waits_for(), vec![edge("x", 1, 2)]);
    assert_eq!(
        table.acquire(t(2), at(20), &k("y"), S),
        Err(LockError::Wounded { txn: t(2) })
    );
    assert_eq!(table.release_all(t(2)), vec![grant(1, "x", X)]);
    assert_eq!(table.locks_held_by(t(1)), vec![(k("x"), X)]);
    table.assert_invariants();
}

#[test]
fn spanner_s4_2_1_wound_wait_younger_requester_waits_for_older_holder() {
    let mut table = LockTable::default();
    assert_eq!(
        table.acquire(t(1), at(10), &k("x"), S),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.acquire(t(2), at(20), &k("x"), X), waiting(&[]));
    assert!(!table.is_wounded(t(1)), "a younger requester wounds nobody");
    assert_eq!(table.waits_for(), vec![edge("x", 2, 1)]);
    // The older holder goes on taking locks, and the younger one waits.
    assert_eq!(
        table.acquire(t(1), at(10), &k("y"), X),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.release_all(t(1)), vec![grant(2, "x", X)]);
    table.assert_invariants();
}

#[test]
fn spanner_s4_2_1_wound_wait_equal_priorities_are_ordered_by_txn_id() {
    let mut table = LockTable::default();
    // Same first start timestamp: the lower id is the older.
    assert_eq!(
        table.acquire(t(1), at(10), &k("x"), X),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.acquire(t(2), at(10), &k("x"), X), waiting(&[]));
    assert_eq!(
        table.acquire(t(4), at(10), &k("y"), X),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.acquire(t(3), at(10), &k("y"), X), waiting(&[4]));
    // The start timestamp decides before the id does.
    assert_eq!(table.acquire(t(5), at(9), &k("z"), X), Ok(Acquire::Granted));
    assert_eq!(table.acquire(t(6), at(8), &k("z"), X), waiting(&[5]));
    table.assert_invariants();
}

#[test]
fn spanner_s4_2_1_wound_wait_spares_a_prepared_holder_but_wounds_an_unprepared_one() {
    let mut table = LockTable::default();
    assert_eq!(
        table.acquire(t(5), at(50), &k("x"), S),
        Ok(Acquire::Granted)
    );
    assert_eq!(
        table.acquire(t(6), at(60), &k("x"), S),
        Ok(Acquire::Granted)
    );
    table.mark_prepared(t(5)).unwrap();
    assert_eq!(table.acquire(t(1), at(10), &k("x"), X), waiting(&[6]));
    assert!(
        !table.is_wounded(t(5)),
        "a prepared holder cannot be wounded"
    );
    assert!(table.is_prepared(t(5)));
    assert_eq!(table.waits_for(), vec![edge("x", 1, 5), edge("x", 1, 6)]);
    assert_eq!(
        table.release_all(t(6)),
        vec![],
        "the prepared one still holds"
    );
    assert_eq!(table.release_all(t(5)), vec![grant(1, "x", X)]);
    table.assert_invariants();
}

#[test]
fn spanner_s4_2_1_wound_wait_older_requester_wounds_a_younger_waiter_ahead_of_it() {
    let mut table = LockTable::default();
    assert_eq!(
        table.acquire(t(2), at(20), &k("x"), X),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.acquire(t(4), at(40), &k("x"), S), waiting(&[]));
    // t3 waits for the older holder t2 and wounds t4, which is queued
    // ahead of it with a conflicting request.
    assert_eq!(table.acquire(t(3), at(30), &k("x"), X), waiting(&[4]));
    assert_eq!(
        table.waits_for(),
        vec![edge("x", 3, 2), edge("x", 3, 4), edge("x", 4, 2)]
    );
    assert_eq!(table.release_all(t(4)), vec![]);
    assert_eq!(table.waiters(b"x"), vec![(t(3), X)]);
    assert_eq!(table.release_all(t(2)), vec![grant(3, "x", X)]);
    table.assert_invariants();
}

#[test]
fn queue_bounds_are_exact_and_a_refused_request_changes_nothing() {
    let limits = LockLimits {
        max_waiters_per_key: 2,
        max_total_waiters: 3,
    };
    let mut table = LockTable::new(limits);
    assert_eq!(table.limits(), limits);
    assert_eq!(
        table.acquire(t(1), at(10), &k("a"), X),
        Ok(Acquire::Granted)
    );
    assert_eq!(
        table.acquire(t(1), at(10), &k("b"), X),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.acquire(t(2), at(20), &k("a"), X), waiting(&[]));
    assert_eq!(table.acquire(t(3), at(30), &k("a"), S), waiting(&[]));
    // A third waiter on `a`, younger than its last waiter, is refused: it
    // displaces nobody and is not recorded.
    assert_eq!(
        table.acquire(t(4), at(40), &k("a"), S),
        Err(LockError::QueueFull {
            key: k("a"),
            limit: 2
        })
    );
    assert!(table.txns().all(|x| x != t(4)));
    assert_eq!(table.waiters(b"a"), vec![(t(2), X), (t(3), S)]);
    // The table-wide bound: the third waiter is fine, the fourth is not
    // (every queue's last waiter is older than it).
    assert_eq!(table.acquire(t(5), at(50), &k("b"), S), waiting(&[]));
    assert_eq!(table.waiter_count(), 3);
    assert_eq!(
        table.acquire(t(6), at(60), &k("b"), S),
        Err(LockError::TooManyWaiters { limit: 3 })
    );
    assert_eq!(table.waiters(b"b"), vec![(t(5), S)]);
    assert_eq!(table.waiters(b"a"), vec![(t(2), X), (t(3), S)]);
    assert!(table.txns().all(|x| x != t(6)));
    assert!(!table.is_wounded(t(3)) && !table.is_wounded(t(5)));
    table.assert_invariants();
    // try_acquire never queues, so no bound applies to it.
    assert_eq!(table.try_acquire(t(6), at(60), &k("c"), X), Ok(true));
    assert_eq!(table.try_acquire(t(7), at(70), &k("c"), S), Ok(false));
    assert_eq!(table.waiter_count(), 3);
}

#[test]
fn waiters_are_granted_in_fifo_order_and_a_compatible_newcomer_queues_behind() {
    let mut table = LockTable::default();
    assert_eq!(
        table.acquire(t(1), at(10), &k("x"), X),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.acquire(t(2), at(20), &k("x"), S), waiting(&[]));
    assert_eq!(table.acquire(t(3), at(30), &k("x"), S), waiting(&[]));
    assert_eq!(table.acquire(t(4), at(40), &k("x"), X), waiting(&[]));
    assert_eq!(table.acquire(t(5), at(50), &k("x"), S), waiting(&[]));
    // The run of shared waiters at the head is granted together; the
    // shared t5 stays behind the exclusive t4.
    assert_eq!(
        table.release_all(t(1)),
        vec![grant(2, "x", S), grant(3, "x", S)]
    );
    assert_eq!(table.holders(b"x"), vec![(t(2), S), (t(3), S)]);
    // A shared request compatible with the holders still queues behind
    // the exclusive waiter, so readers cannot starve a writer.
    assert_eq!(table.acquire(t(6), at(60), &k("x"), S), waiting(&[]));
    assert_eq!(
        table.waits_for(),
        vec![
            edge("x", 4, 2),
            edge("x", 4, 3),
            edge("x", 5, 4),
            edge("x", 6, 4),
        ]
    );
    assert_eq!(table.release(t(2), b"x"), vec![]);
    assert_eq!(table.release(t(3), b"x"), vec![grant(4, "x", X)]);
    assert_eq!(
        table.release_all(t(4)),
        vec![grant(5, "x", S), grant(6, "x", S)]
    );
    table.assert_invariants();
}

#[test]
fn release_all_grants_in_key_order_and_withdraws_queued_requests() {
    let mut table = LockTable::default();
    assert_eq!(
        table.acquire(t(1), at(10), &k("b"), X),
        Ok(Acquire::Granted)
    );
    assert_eq!(
        table.acquire(t(1), at(10), &k("a"), X),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.acquire(t(3), at(30), &k("b"), X), waiting(&[]));
    assert_eq!(table.acquire(t(2), at(20), &k("a"), X), waiting(&[]));
    assert_eq!(
        table.acquire(t(3), at(30), &k("c"), X),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.acquire(t(4), at(40), &k("c"), S), waiting(&[]));
    assert_eq!(
        table.release_all(t(1)),
        vec![grant(2, "a", X), grant(3, "b", X)]
    );
    // t3's release grants c to t4; t2 never waited on t3.
    assert_eq!(table.release_all(t(3)), vec![grant(4, "c", S)]);
    assert_eq!(table.waiter_count(), 0);
    // A waiter that gives up (release on the key it waits for) is dequeued
    // without a grant to anyone.
    assert_eq!(table.acquire(t(5), at(50), &k("a"), X), waiting(&[]));
    assert_eq!(table.release(t(5), b"a"), vec![]);
    assert_eq!(table.waiters(b"a"), vec![]);
    assert_eq!(table.waiter_count(), 0);
    table.assert_invariants();
}

#[test]
fn a_sole_shared_holder_upgrades_at_once_and_a_shared_co_holder_queues_ahead_of_younger_waiters() {
    let mut table = LockTable::default();
    assert_eq!(
        table.acquire(t(3), at(30), &k("x"), S),
        Ok(Acquire::Granted)
    );
    assert_eq!(
        table.acquire(t(3), at(30), &k("x"), X),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.holders(b"x"), vec![(t(3), X)]);
    assert_eq!(
        table.acquire(t(3), at(30), &k("x"), S),
        Ok(Acquire::Granted)
    );
    assert_eq!(
        table.holders(b"x"),
        vec![(t(3), X)],
        "exclusive covers shared"
    );

    assert_eq!(
        table.acquire(t(2), at(20), &k("y"), S),
        Ok(Acquire::Granted)
    );
    assert_eq!(
        table.acquire(t(3), at(30), &k("y"), S),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.acquire(t(4), at(40), &k("y"), X), waiting(&[]));
    // t3's upgrade waits for the older t2 and goes ahead of the younger t4.
    assert_eq!(table.acquire(t(3), at(30), &k("y"), X), waiting(&[]));
    assert_eq!(table.waiters(b"y"), vec![(t(3), X), (t(4), X)]);
    assert_eq!(
        table.acquire(t(3), at(30), &k("y"), X),
        Err(LockError::AlreadyWaiting {
            txn: t(3),
            key: k("y")
        })
    );
    assert_eq!(table.release_all(t(2)), vec![grant(3, "y", X)]);
    assert_eq!(table.holders(b"y"), vec![(t(3), X)]);
    assert_eq!(table.waiters(b"y"), vec![(t(4), X)]);
    table.assert_invariants();
}

#[test]
fn spanner_s4_2_1_a_transaction_keeps_one_priority_in_the_table() {
    let mut table = LockTable::default();
    assert_eq!(
        table.acquire(t(1), at(10), &k("x"), S),
        Ok(Acquire::Granted)
    );
    assert_eq!(
        table.acquire(t(1), at(11), &k("y"), S),
        Err(LockError::PriorityMismatch {
            txn: t(1),
            known: at(10),
            given: at(11)
        })
    );
    assert_eq!(table.locks_held_by(t(1)), vec![(k("x"), S)]);
    assert_eq!(table.locked_key_count(), 1);
    // Once it has ended the id is free again.
    table.release_all(t(1));
    assert_eq!(
        table.acquire(t(1), at(11), &k("y"), S),
        Ok(Acquire::Granted)
    );
}

#[test]
fn lock_modes_print_as_their_names() {
    // Operators read these in the who-waits-for-whom listing and in errors.
    assert_eq!(S.to_string(), "shared");
    assert_eq!(X.to_string(), "exclusive");
}

#[test]
fn the_table_lists_every_transaction_it_knows_until_each_ends() {
    // The transaction layer checks that no lock outlives its transaction
    // by walking this list; an empty list would check nothing.
    let mut table = LockTable::default();
    let (t, at) = (TxnId::local, |n: u64| Priority(Timestamp(n)));
    let k = |s: &'static str| Bytes::from_static(s.as_bytes());
    table.acquire(t(1), at(10), &k("x"), X).unwrap();
    table.acquire(t(2), at(20), &k("x"), X).unwrap();
    table.acquire(t(3), at(30), &k("y"), S).unwrap();
    let listed: BTreeSet<TxnId> = table.txns().collect();
    assert_eq!(listed, BTreeSet::from([t(1), t(2), t(3)]));
    table.release_all(t(1));
    table.release_all(t(3));
    assert_eq!(table.txns().collect::<Vec<_>>(), vec![t(2)]);
}
