//! Range lock tests: shared range locks over `[start, end)` for scans in
//! read-write transactions (Spanner §2.1: the lock table "maps ranges of
//! keys to lock states"), under the same wound-wait rules as key locks
//! (§4.2.1). Deterministic rules one per test, then a property test that
//! mixes key and range requests.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use meridian_truetime::Timestamp;
use proptest::prelude::*;

use super::*;

use LockMode::{Exclusive as X, Shared as S};

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

fn key_grant(txn: u64, key: &'static str, mode: LockMode) -> Grant {
    Grant {
        txn: t(txn),
        key: k(key),
        mode,
        span: LockSpan::Key,
    }
}

fn range_grant(txn: u64, start: &'static str, end: Option<&'static str>) -> Grant {
    Grant {
        txn: t(txn),
        key: k(start),
        mode: S,
        span: LockSpan::Range { end: end.map(k) },
    }
}

fn key_edge(key: &'static str, waiter: u64, blocker: u64) -> WaitsFor {
    WaitsFor {
        key: k(key),
        waiter: t(waiter),
        blocker: t(blocker),
        span: LockSpan::Key,
    }
}

fn range_edge(
    start: &'static str,
    end: Option<&'static str>,
    waiter: u64,
    blocker: u64,
) -> WaitsFor {
    WaitsFor {
        key: k(start),
        waiter: t(waiter),
        blocker: t(blocker),
        span: LockSpan::Range { end: end.map(k) },
    }
}

/// `txn` (priority `prio`) asks for the range `[start, end)`.
fn range(
    table: &mut LockTable,
    txn: u64,
    prio: u64,
    start: &'static str,
    end: Option<&'static str>,
) -> Result<Acquire, LockError> {
    let end = end.map(k);
    let outcome = table.acquire_range(t(txn), at(prio), &k(start), end.as_ref());
    table.assert_invariants();
    outcome
}

/// `txn` (priority `prio`) asks for `key` in `mode`.
fn key(
    table: &mut LockTable,
    txn: u64,
    prio: u64,
    key: &'static str,
    mode: LockMode,
) -> Result<Acquire, LockError> {
    let outcome = table.acquire(t(txn), at(prio), &k(key), mode);
    table.assert_invariants();
    outcome
}

fn release_all(table: &mut LockTable, txn: u64) -> Vec<Grant> {
    let grants = table.release_all(t(txn));
    table.assert_invariants();
    grants
}

#[test]
fn a_younger_writer_inside_a_held_range_waits_and_writers_outside_are_granted() {
    let mut table = LockTable::default();
    assert_eq!(
        range(&mut table, 1, 10, "b", Some("d")),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.ranges_held_by(t(1)), vec![(k("b"), Some(k("d")))]);
    // Inside, start included: the younger writer waits, wounding nobody.
    assert_eq!(key(&mut table, 2, 20, "b", X), waiting(&[]));
    assert_eq!(key(&mut table, 3, 30, "c", X), waiting(&[]));
    assert!(!table.is_wounded(t(1)));
    // Outside, end excluded: granted.
    assert_eq!(key(&mut table, 4, 40, "a", X), Ok(Acquire::Granted));
    assert_eq!(key(&mut table, 5, 50, "d", X), Ok(Acquire::Granted));
    // Readers inside share the range.
    assert_eq!(key(&mut table, 6, 60, "bb", S), Ok(Acquire::Granted));
    assert_eq!(
        table.waits_for(),
        vec![key_edge("b", 2, 1), key_edge("c", 3, 1)]
    );
    // The waiting keys have queues but no holder.
    assert_eq!(table.holders(b"c"), vec![]);
    assert_eq!(table.waiters(b"c"), vec![(t(3), X)]);
    assert_eq!(table.locked_key_count(), 3);
    assert_eq!(
        release_all(&mut table, 1),
        vec![key_grant(2, "b", X), key_grant(3, "c", X)]
    );
    assert_eq!(table.holders(b"c"), vec![(t(3), X)]);
    assert!(
        table.ranges.is_none(),
        "range state dropped with the last range"
    );
}

#[test]
fn an_older_writer_inside_a_range_wounds_an_unprepared_range_holder() {
    let mut table = LockTable::default();
    assert_eq!(
        range(&mut table, 2, 20, "b", Some("d")),
        Ok(Acquire::Granted)
    );
    assert_eq!(key(&mut table, 1, 10, "c", X), waiting(&[2]));
    assert!(table.is_wounded(t(2)));
    assert_eq!(table.waits_for(), vec![key_edge("c", 1, 2)]);
    // The wounded scanner can take no more locks and cannot prepare.
    assert_eq!(
        range(&mut table, 2, 20, "x", None),
        Err(LockError::Wounded { txn: t(2) })
    );
    assert_eq!(
        table.mark_prepared(t(2)),
        Err(LockError::Wounded { txn: t(2) })
    );
    assert_eq!(release_all(&mut table, 2), vec![key_grant(1, "c", X)]);
    assert!(table.ranges_held_by(t(2)).is_empty());
}

#[test]
fn an_unbounded_range_covers_every_key_from_its_start() {
    let mut table = LockTable::default();
    assert_eq!(range(&mut table, 1, 10, "m", None), Ok(Acquire::Granted));
    assert_eq!(table.ranges_held_by(t(1)), vec![(k("m"), None)]);
    assert_eq!(key(&mut table, 2, 20, "m", X), waiting(&[]));
    assert_eq!(
        key(&mut table, 3, 30, "\u{7f}\u{7f}\u{7f}", X),
        waiting(&[])
    );
    assert_eq!(key(&mut table, 4, 40, "lzzz", X), Ok(Acquire::Granted));
    assert_eq!(table.waiter_count(), 2);
    assert_eq!(release_all(&mut table, 1).len(), 2);
}

#[test]
fn an_empty_start_range_covers_every_key_below_its_end() {
    let mut table = LockTable::default();
    assert_eq!(
        range(&mut table, 1, 10, "", Some("m")),
        Ok(Acquire::Granted)
    );
    assert_eq!(key(&mut table, 2, 20, "\0", X), waiting(&[]));
    assert_eq!(key(&mut table, 3, 30, "a", X), waiting(&[]));
    assert_eq!(key(&mut table, 4, 40, "m", X), Ok(Acquire::Granted));
    // The whole key space, and an empty range, which locks nothing.
    assert_eq!(range(&mut table, 5, 50, "", None), waiting(&[]));
    assert_eq!(
        range(&mut table, 6, 60, "q", Some("q")),
        Ok(Acquire::Granted)
    );
    assert!(table.ranges_held_by(t(6)).is_empty());
    assert_eq!(
        table.waits_for(),
        vec![
            range_edge("", None, 5, 2),
            range_edge("", None, 5, 3),
            range_edge("", None, 5, 4),
            key_edge("\0", 2, 1),
            key_edge("a", 3, 1),
        ]
    );
}

#[test]
fn a_range_request_over_an_exclusively_held_key_waits_for_an_older_holder() {
    let mut table = LockTable::default();
    assert_eq!(key(&mut table, 1, 10, "c", X), Ok(Acquire::Granted));
    assert_eq!(range(&mut table, 2, 20, "a", Some("z")), waiting(&[]));
    assert!(!table.is_wounded(t(1)));
    assert_eq!(table.waits_for(), vec![range_edge("a", Some("z"), 2, 1)]);
    assert_eq!(table.waiter_count(), 1);
    assert_eq!(
        table.mark_prepared(t(2)),
        Err(LockError::PrepareWhileWaiting {
            txn: t(2),
            key: k("a")
        })
    );
    assert_eq!(
        range(&mut table, 2, 20, "a", Some("z")),
        Err(LockError::AlreadyWaiting {
            txn: t(2),
            key: k("a")
        })
    );
    // A shared lock inside does not stand in a range's way.
    assert_eq!(key(&mut table, 3, 30, "d", S), Ok(Acquire::Granted));
    assert_eq!(
        release_all(&mut table, 1),
        vec![range_grant(2, "a", Some("z"))]
    );
    assert_eq!(table.ranges_held_by(t(2)), vec![(k("a"), Some(k("z")))]);
    assert_eq!(table.waiter_count(), 0);
}

#[test]
fn an_older_range_request_wounds_younger_writers_inside_held_or_queued() {
    let mut table = LockTable::default();
    assert_eq!(key(&mut table, 3, 30, "c", X), Ok(Acquire::Granted));
    assert_eq!(key(&mut table, 4, 40, "c", X), waiting(&[]));
    assert_eq!(key(&mut table, 5, 50, "x", X), Ok(Acquire::Granted));
    // Writers inside [a, m) are in the way, held (3) or queued (4); 5 is not.
    assert_eq!(range(&mut table, 1, 10, "a", Some("m")), waiting(&[3, 4]));
    assert!(!table.is_wounded(t(5)));
    assert_eq!(release_all(&mut table, 4), vec![]);
    assert_eq!(
        release_all(&mut table, 3),
        vec![range_grant(1, "a", Some("m"))]
    );
}

#[test]
fn prepared_holders_are_never_wounded_by_ranges_or_by_writers_inside_a_range() {
    let mut table = LockTable::default();
    // A prepared writer is not wounded by an older range request.
    assert_eq!(key(&mut table, 5, 50, "c", X), Ok(Acquire::Granted));
    table.mark_prepared(t(5)).unwrap();
    assert_eq!(range(&mut table, 1, 10, "a", Some("m")), waiting(&[]));
    assert!(!table.is_wounded(t(5)));
    assert_eq!(table.waits_for(), vec![range_edge("a", Some("m"), 1, 5)]);
    assert_eq!(
        release_all(&mut table, 5),
        vec![range_grant(1, "a", Some("m"))]
    );

    // A prepared range holder is not wounded by an older writer inside.
    assert_eq!(range(&mut table, 6, 60, "p", None), Ok(Acquire::Granted));
    table.mark_prepared(t(6)).unwrap();
    assert!(table.is_prepared(t(6)));
    assert_eq!(key(&mut table, 2, 20, "q", X), waiting(&[]));
    assert!(!table.is_wounded(t(6)));
    // Nor by an older upgrade inside.
    assert_eq!(key(&mut table, 3, 30, "r", S), Ok(Acquire::Granted));
    assert_eq!(key(&mut table, 3, 30, "r", X), waiting(&[]));
    assert!(!table.is_wounded(t(6)));
    assert_eq!(
        table.waits_for(),
        vec![key_edge("q", 2, 6), key_edge("r", 3, 6)]
    );
    assert_eq!(
        release_all(&mut table, 6),
        vec![key_grant(2, "q", X), key_grant(3, "r", X)]
    );
    assert_eq!(table.holders(b"r"), vec![(t(3), X)]);
}

#[test]
fn release_grants_waiting_ranges_and_waiting_writers_in_fifo_order() {
    let mut table = LockTable::default();
    assert_eq!(key(&mut table, 1, 10, "c", X), Ok(Acquire::Granted));
    // The scan waits for the writer of c.
    assert_eq!(range(&mut table, 2, 20, "a", Some("z")), waiting(&[]));
    // A writer of the free key d queues behind the scan that came first...
    assert_eq!(key(&mut table, 3, 30, "d", X), waiting(&[]));
    // ...a reader of d behind that writer...
    assert_eq!(key(&mut table, 4, 40, "d", S), waiting(&[]));
    // ...and a second scan behind the writer of d, though the first scan
    // does not stand in its way.
    assert_eq!(range(&mut table, 5, 50, "d", Some("e")), waiting(&[]));
    assert_eq!(
        table.waits_for(),
        vec![
            range_edge("a", Some("z"), 2, 1),
            key_edge("d", 3, 2),
            key_edge("d", 4, 3),
            range_edge("d", Some("e"), 5, 3),
        ]
    );
    assert_eq!(
        release_all(&mut table, 1),
        vec![range_grant(2, "a", Some("z"))]
    );
    assert_eq!(table.waiter_count(), 3);
    assert_eq!(
        release_all(&mut table, 2),
        vec![key_grant(3, "d", X)],
        "the writer goes first; the reader and the scan stay behind it"
    );
    assert_eq!(
        release_all(&mut table, 3),
        vec![key_grant(4, "d", S), range_grant(5, "d", Some("e"))]
    );
    assert_eq!(table.waiter_count(), 0);
    assert_eq!(table.ranges_held_by(t(5)), vec![(k("d"), Some(k("e")))]);
}

#[test]
fn try_acquire_range_never_waits_or_wounds() {
    let mut table = LockTable::default();
    assert_eq!(key(&mut table, 2, 20, "c", X), Ok(Acquire::Granted));
    assert_eq!(key(&mut table, 3, 30, "e", X), Ok(Acquire::Granted));
    assert_eq!(key(&mut table, 4, 40, "e", X), waiting(&[]));
    let (a, z, d) = (k("a"), k("z"), k("d"));
    // Older than the writers in the way, yet it neither waits nor wounds.
    assert_eq!(
        table.try_acquire_range(t(1), at(10), &a, Some(&z)),
        Ok(false)
    );
    assert_eq!(table.try_acquire_range(t(1), at(10), &d, None), Ok(false));
    assert!(!table.is_wounded(t(2)) && !table.is_wounded(t(3)) && !table.is_wounded(t(4)));
    assert_eq!(table.waiter_count(), 1);
    assert!(
        table.ranges.is_none(),
        "a refused try leaves no range state"
    );
    table.assert_invariants();
    // Nothing in the way: held.
    assert_eq!(
        table.try_acquire_range(t(1), at(10), &a, Some(&k("c"))),
        Ok(true)
    );
    assert_eq!(table.ranges_held_by(t(1)), vec![(a.clone(), Some(k("c")))]);
    // try_acquire of a key inside another's range does not wound either.
    assert_eq!(table.try_acquire(t(0), at(5), &k("b"), X), Ok(false));
    assert!(!table.is_wounded(t(1)));
    assert_eq!(table.waiter_count(), 1);
    table.assert_invariants();
}

#[test]
fn a_transaction_s_own_locks_never_conflict_and_ranges_share() {
    let mut table = LockTable::default();
    assert_eq!(key(&mut table, 1, 10, "c", X), Ok(Acquire::Granted));
    assert_eq!(
        range(&mut table, 1, 10, "a", Some("m")),
        Ok(Acquire::Granted)
    );
    assert_eq!(key(&mut table, 1, 10, "d", X), Ok(Acquire::Granted));
    // A range inside a held one is held already.
    assert_eq!(
        range(&mut table, 1, 10, "b", Some("c")),
        Ok(Acquire::Granted)
    );
    assert_eq!(table.ranges_held_by(t(1)), vec![(k("a"), Some(k("m")))]);
    // Other transactions' ranges share with each other and with readers.
    assert_eq!(range(&mut table, 2, 20, "m", None), Ok(Acquire::Granted));
    assert_eq!(
        range(&mut table, 3, 30, "n", Some("p")),
        Ok(Acquire::Granted)
    );
    assert_eq!(key(&mut table, 4, 40, "n", S), Ok(Acquire::Granted));
    // Overlapping my own range is fine; overlapping another's writer is not.
    assert_eq!(range(&mut table, 2, 20, "a", Some("z")), waiting(&[]));
    assert_eq!(
        release_all(&mut table, 1),
        vec![range_grant(2, "a", Some("z"))]
    );
    assert_eq!(
        table.ranges_held_by(t(2)),
        vec![(k("a"), Some(k("z"))), (k("m"), None)]
    );
}

#[test]
fn range_requests_are_bounded_and_an_older_one_displaces_a_younger_one() {
    let mut table = LockTable::new(LockLimits {
        max_waiters_per_key: 1,
        max_total_waiters: 3,
    });
    assert_eq!(key(&mut table, 9, 5, "c", X), Ok(Acquire::Granted));
    table.mark_prepared(t(9)).unwrap();
    assert_eq!(range(&mut table, 3, 30, "a", Some("d")), waiting(&[]));
    // The queue of range requests holds one: a younger one is refused.
    assert_eq!(
        range(&mut table, 4, 40, "b", None),
        Err(LockError::QueueFull {
            key: k("b"),
            limit: 1
        })
    );
    assert!(table.txns().all(|x| x != t(4)));
    // An older one takes the younger one's place, wounding it.
    assert_eq!(range(&mut table, 2, 20, "c", Some("e")), waiting(&[3]));
    assert!(table.is_wounded(t(3)));
    assert_eq!(table.waiter_count(), 1);
    assert_eq!(table.waits_for(), vec![range_edge("c", Some("e"), 2, 9)]);

    // The table's bound: an older key request takes the place of the
    // youngest waiter that nobody waits behind, here a range request.
    let mut table = LockTable::new(LockLimits {
        max_waiters_per_key: 4,
        max_total_waiters: 2,
    });
    assert_eq!(key(&mut table, 9, 5, "c", X), Ok(Acquire::Granted));
    table.mark_prepared(t(9)).unwrap();
    assert_eq!(range(&mut table, 8, 80, "a", Some("d")), waiting(&[]));
    assert_eq!(key(&mut table, 5, 50, "x", X), Ok(Acquire::Granted));
    assert_eq!(key(&mut table, 6, 60, "x", X), waiting(&[]));
    assert_eq!(key(&mut table, 7, 70, "y", X), Ok(Acquire::Granted));
    assert_eq!(key(&mut table, 1, 10, "y", S), waiting(&[8, 7]));
    assert!(table.ranges.is_none(), "the only range request is gone");
    assert_eq!(table.waiter_count(), 2);
    assert_eq!(
        range(&mut table, 8, 80, "a", Some("d")),
        Err(LockError::Wounded { txn: t(8) })
    );

    // A writer queued behind a range request pins it: the range request
    // cannot be displaced without granting the writer.
    let mut table = LockTable::new(LockLimits {
        max_waiters_per_key: 4,
        max_total_waiters: 2,
    });
    assert_eq!(key(&mut table, 9, 5, "c", X), Ok(Acquire::Granted));
    assert_eq!(range(&mut table, 3, 30, "a", Some("d")), waiting(&[]));
    assert_eq!(key(&mut table, 4, 40, "b", X), waiting(&[]));
    assert_eq!(
        range(&mut table, 1, 10, "x", Some("y")),
        Ok(Acquire::Granted)
    );
    assert_eq!(
        key(&mut table, 2, 20, "b", S),
        Err(LockError::TooManyWaiters { limit: 2 }),
        "the scan has a writer behind it, and the writer is on the key asked for"
    );
    assert!(!table.is_wounded(t(3)) && !table.is_wounded(t(4)));
    // Elsewhere the writer, which nobody waits behind, is displaced.
    assert_eq!(key(&mut table, 2, 20, "c", S), waiting(&[4]));
    assert!(!table.is_wounded(t(3)));
    assert_eq!(release_all(&mut table, 4), vec![]);
}

#[test]
fn an_upgrade_inside_another_s_range_waits_for_it() {
    let mut table = LockTable::default();
    assert_eq!(key(&mut table, 2, 20, "c", S), Ok(Acquire::Granted));
    assert_eq!(
        range(&mut table, 1, 10, "a", Some("z")),
        Ok(Acquire::Granted)
    );
    // The sole shared holder of c cannot upgrade while 1 scans over it.
    assert_eq!(key(&mut table, 2, 20, "c", X), waiting(&[]));
    assert_eq!(table.holders(b"c"), vec![(t(2), S)]);
    assert_eq!(table.waits_for(), vec![key_edge("c", 2, 1)]);
    assert_eq!(release_all(&mut table, 1), vec![key_grant(2, "c", X)]);
    assert_eq!(table.holders(b"c"), vec![(t(2), X)]);
}

#[test]
fn releasing_one_key_lets_a_waiting_range_go_and_withdrawing_a_writer_too() {
    let mut table = LockTable::default();
    assert_eq!(key(&mut table, 1, 10, "c", X), Ok(Acquire::Granted));
    assert_eq!(key(&mut table, 3, 30, "c", X), waiting(&[]));
    assert_eq!(range(&mut table, 4, 40, "a", Some("d")), waiting(&[]));
    assert_eq!(table.release(t(1), b"c"), vec![key_grant(3, "c", X)]);
    table.assert_invariants();
    // Releasing the next writer's lock lets the range go.
    assert_eq!(
        table.release(t(3), b"c"),
        vec![range_grant(4, "a", Some("d"))]
    );
    table.assert_invariants();
    // A writer that withdraws its queued request also unblocks a range
    // request behind it.
    assert_eq!(key(&mut table, 5, 50, "x", X), Ok(Acquire::Granted));
    assert_eq!(key(&mut table, 6, 60, "x", X), waiting(&[]));
    assert_eq!(range(&mut table, 7, 70, "w", Some("y")), waiting(&[]));
    assert_eq!(table.release(t(6), b"x"), vec![]);
    table.assert_invariants();
    assert_eq!(table.waits_for(), vec![range_edge("w", Some("y"), 7, 5)]);
    assert_eq!(
        release_all(&mut table, 5),
        vec![range_grant(7, "w", Some("y"))]
    );
}

// A property test mixing key and range requests among a few transactions
// with fixed priorities (ties broken by id).

const TXNS: u64 = 6;
const KEYS: [&[u8]; 5] = [b"a", b"b", b"c", b"d", b"e"];
/// Range bounds: every key, the empty key and keys between and beyond.
const BOUNDS: [&[u8]; 8] = [b"", b"a", b"b", b"bb", b"c", b"d", b"e", b"f"];

fn prio(txn: u64) -> Priority {
    const PRIOS: [u64; TXNS as usize] = [30, 10, 50, 20, 10, 40];
    at(PRIOS[txn as usize])
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
    AcquireRange {
        txn: u64,
        start: usize,
        end: Option<usize>,
    },
    TryAcquireRange {
        txn: u64,
        start: usize,
        end: Option<usize>,
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
    prop_oneof![Just(S), Just(X)]
}

fn bounds() -> impl Strategy<Value = (usize, Option<usize>)> {
    (
        0..BOUNDS.len(),
        proptest::option::weighted(0.8, 0..BOUNDS.len()),
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..TXNS, 0..KEYS.len(), mode())
            .prop_map(|(txn, key, mode)| Op::Acquire { txn, key, mode }),
        1 => (0..TXNS, 0..KEYS.len(), mode())
            .prop_map(|(txn, key, mode)| Op::TryAcquire { txn, key, mode }),
        4 => (0..TXNS, bounds())
            .prop_map(|(txn, (start, end))| Op::AcquireRange { txn, start, end }),
        1 => (0..TXNS, bounds())
            .prop_map(|(txn, (start, end))| Op::TryAcquireRange { txn, start, end }),
        2 => (0..TXNS, 0..KEYS.len()).prop_map(|(txn, key)| Op::Release { txn, key }),
        3 => (0..TXNS).prop_map(|txn| Op::ReleaseAll { txn }),
        1 => (0..TXNS).prop_map(|txn| Op::Prepare { txn }),
    ]
}

/// Each grant is a lock the transaction now holds.
fn check_grants(table: &LockTable, grants: &[Grant]) -> Result<(), TestCaseError> {
    for g in grants {
        match &g.span {
            LockSpan::Key => {
                let held = table.locks_held_by(g.txn);
                prop_assert!(
                    held.iter().any(|(k, m)| *k == g.key && m.covers(g.mode)),
                    "grant {:?} not reflected in {:?}",
                    g,
                    held
                );
            }
            LockSpan::Range { end } => {
                let held = table.ranges_held_by(g.txn);
                prop_assert!(
                    held.contains(&(g.key.clone(), end.clone())),
                    "grant {:?} not reflected in {:?}",
                    g,
                    held
                );
            }
        }
    }
    Ok(())
}

/// The point of range locks: no transaction holds an exclusive lock on a
/// key inside a range another transaction holds. Checked from the public
/// API, apart from `assert_invariants`.
fn check_no_conflicting_holds(table: &LockTable) -> Result<(), TestCaseError> {
    for a in 0..TXNS {
        let writes: Vec<Bytes> = table
            .locks_held_by(t(a))
            .into_iter()
            .filter(|(_, m)| *m == X)
            .map(|(k, _)| k)
            .collect();
        for b in (0..TXNS).filter(|b| *b != a) {
            for (start, end) in table.ranges_held_by(t(b)) {
                for w in &writes {
                    prop_assert!(
                        !(*w >= start && end.as_ref().is_none_or(|e| w < e)),
                        "txn {} holds {:?} exclusive inside txn {}'s range {:?}..{:?}",
                        a,
                        w,
                        b,
                        start,
                        end
                    );
                }
            }
        }
    }
    Ok(())
}

/// No cycle in the waits-for graph among transactions that are not
/// wounded; every edge points from a younger waiter to an older, prepared
/// or wounded blocker.
fn check_waits_for(table: &LockTable) -> Result<(), TestCaseError> {
    let mut graph: BTreeMap<TxnId, BTreeSet<TxnId>> = BTreeMap::new();
    for e in table.waits_for() {
        if table.is_wounded(e.waiter) || table.is_wounded(e.blocker) {
            continue;
        }
        prop_assert!(
            prio(e.blocker.seq).is_older(e.blocker, prio(e.waiter.seq), e.waiter)
                || table.is_prepared(e.blocker),
            "old-to-young edge {:?}",
            e
        );
        graph.entry(e.waiter).or_default().insert(e.blocker);
    }
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

/// Aborts the wounded and commits the unblocked until the table is empty.
fn drain(table: &mut LockTable) -> Result<(), TestCaseError> {
    for _ in 0..(4 * TXNS) {
        let live: Vec<TxnId> = table.txns().collect();
        if live.is_empty() {
            prop_assert_eq!(table.locked_key_count(), 0);
            prop_assert_eq!(table.waiter_count(), 0);
            prop_assert!(table.keys.is_empty() && table.ranges.is_none());
            return Ok(());
        }
        let waiting: BTreeSet<TxnId> = table.waits_for().iter().map(|e| e.waiter).collect();
        let next = live
            .iter()
            .filter(|t| table.is_wounded(**t))
            .chain(live.iter().filter(|t| !waiting.contains(t)))
            .min()
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
        check_no_conflicting_holds(table)?;
    }
    Err(TestCaseError::fail("drain did not finish"))
}

fn check_acquired(
    table: &LockTable,
    txn: u64,
    outcome: Result<Acquire, LockError>,
    held: impl Fn(&LockTable) -> bool,
) -> Result<(), TestCaseError> {
    let me = t(txn);
    let wounded = match outcome {
        Ok(Acquire::Granted) => {
            prop_assert!(held(table), "granted but not held");
            vec![]
        }
        Ok(Acquire::GrantedWounding { wounded }) => {
            prop_assert!(held(table), "granted but not held");
            wounded
        }
        Ok(Acquire::Waiting { wounded }) => {
            prop_assert!(table.waits_for().iter().any(|e| e.waiter == me));
            wounded
        }
        Err(
            LockError::Wounded { .. }
            | LockError::AlreadyPrepared { .. }
            | LockError::AlreadyWaiting { .. }
            | LockError::QueueFull { .. }
            | LockError::TooManyWaiters { .. },
        ) => vec![],
        Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
    };
    for w in wounded {
        prop_assert!(table.is_wounded(w));
        prop_assert!(!table.is_prepared(w));
        prop_assert!(prio(txn).is_older(me, prio(w.seq), w));
    }
    Ok(())
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut table = LockTable::new(LockLimits {
        max_waiters_per_key: 3,
        max_total_waiters: 6,
    });
    let key = |i: usize| Bytes::from_static(KEYS[i]);
    let bound = |i: usize| Bytes::from_static(BOUNDS[i]);
    for op in ops {
        match *op {
            Op::Acquire { txn, key: k, mode } => {
                let outcome = table.acquire(t(txn), prio(txn), &key(k), mode);
                check_acquired(&table, txn, outcome, |table| {
                    table
                        .locks_held_by(t(txn))
                        .iter()
                        .any(|(held, m)| *held == key(k) && m.covers(mode))
                })?;
            }
            Op::TryAcquire { txn, key: k, mode } => {
                let (waiters, wounded) = (table.waiter_count(), wounded_set(&table));
                let _ = table.try_acquire(t(txn), prio(txn), &key(k), mode);
                prop_assert_eq!(waiters, table.waiter_count(), "try_acquire queued");
                prop_assert_eq!(wounded, wounded_set(&table), "try_acquire wounded");
            }
            Op::AcquireRange { txn, start, end } => {
                let (s, e) = (bound(start), end.map(bound));
                let outcome = table.acquire_range(t(txn), prio(txn), &s, e.as_ref());
                let empty = e.as_ref().is_some_and(|e| *e <= s);
                check_acquired(&table, txn, outcome, |table| {
                    empty
                        || table.ranges_held_by(t(txn)).iter().any(|(hs, he)| {
                            *hs <= s
                                && match (he, &e) {
                                    (None, _) => true,
                                    (Some(_), None) => false,
                                    (Some(he), Some(e)) => e <= he,
                                }
                        })
                })?;
            }
            Op::TryAcquireRange { txn, start, end } => {
                let (s, e) = (bound(start), end.map(bound));
                let (waiters, wounded) = (table.waiter_count(), wounded_set(&table));
                let held = table.try_acquire_range(t(txn), prio(txn), &s, e.as_ref());
                prop_assert_eq!(waiters, table.waiter_count(), "try_acquire_range queued");
                prop_assert_eq!(wounded, wounded_set(&table), "try_acquire_range wounded");
                if held == Ok(true) && e.as_ref().is_none_or(|e| *e > s) {
                    prop_assert!(!table.ranges_held_by(t(txn)).is_empty());
                }
            }
            Op::Release { txn, key: k } => {
                let grants = table.release(t(txn), KEYS[k]);
                check_grants(&table, &grants)?;
            }
            Op::ReleaseAll { txn } => {
                let grants = table.release_all(t(txn));
                prop_assert!(table.locks_held_by(t(txn)).is_empty());
                prop_assert!(table.ranges_held_by(t(txn)).is_empty());
                check_grants(&table, &grants)?;
            }
            Op::Prepare { txn } => {
                if table.mark_prepared(t(txn)).is_ok() {
                    prop_assert!(table.is_prepared(t(txn)));
                }
            }
        }
        table.assert_invariants();
        check_no_conflicting_holds(&table)?;
        check_waits_for(&table)?;
    }
    drain(&mut table)
}

fn wounded_set(table: &LockTable) -> BTreeSet<TxnId> {
    table.txns().filter(|t| table.is_wounded(*t)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Key and range requests mixed at random, with random releases and
    /// prepares: after every step the table's invariants hold (wound-wait's
    /// edge property over range waits included), no transaction holds an
    /// exclusive lock inside another's held range, the waits-for graph of
    /// live transactions has no cycle, and aborting the wounded and
    /// committing the unblocked always empties the table.
    #[test]
    fn range_and_key_locks_keep_invariants_never_conflict_and_never_deadlock(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        run(&ops)?;
    }
}

#[test]
fn spanner_s4_2_1_a_full_queue_never_refuses_an_older_request_a_younger_waiter_could_make_room_for()
{
    // One waiter per key. A prepared holder of k; young 10 waits on k; a
    // younger range request waits behind 10 (so 10 cannot simply leave
    // the queue); then older 5 asks for k.
    let mut lt = LockTable::new(LockLimits {
        max_waiters_per_key: 1,
        max_total_waiters: 16,
    });
    assert_eq!(lt.acquire(t(1), at(1), &k("k"), X), Ok(Acquire::Granted));
    lt.mark_prepared(t(1)).unwrap();
    assert_eq!(lt.acquire(t(10), at(10), &k("k"), X), waiting(&[]));
    assert_eq!(
        lt.acquire_range(t(11), at(11), &k("a"), Some(&k("z"))),
        waiting(&[])
    );
    lt.assert_invariants();
    // The older request wounds the younger last waiter (and the younger
    // range request in its way) and waits past the bound rather than
    // failing with QueueFull (it would starve).
    assert_eq!(lt.acquire(t(5), at(5), &k("k"), X), waiting(&[10, 11]));
    lt.assert_invariants();
    // The wounded waiters' aborts bring the queue back within its bound.
    let _ = lt.release_all(t(10));
    let _ = lt.release_all(t(11));
    lt.assert_invariants();
    assert_eq!(lt.waiters(&k("k")), vec![(t(5), X)]);
}
