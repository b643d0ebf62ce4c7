//! The Elle list-append adapter against hand-made histories with known
//! verdicts: valid serial and concurrent histories pass; write skew, a
//! lost update, a stale read against real time and an aborted read fail
//! with adya's name for them; a read of a value never appended fails as
//! the adapter's own `garbage-read`; transactions of unknown outcome are
//! allowed either way; a history with nothing committed, or from which no
//! dependency can be inferred, never passes; malformed histories are
//! refused.
//!
//! Times are virtual nanoseconds. Keys are small integers; appended values
//! are unique per key.

use meridian_sim::elle::{
    ElleError, ElleOpts, ElleSummary, GARBAGE_READ, ListOp, ListOutcome, ListTxn, check_list_append,
};

const X: u64 = 1;
const Y: u64 = 2;

fn append(key: u64, value: u64) -> ListOp {
    ListOp::Append { key, value }
}

fn read(key: u64, list: &[u64]) -> ListOp {
    ListOp::Read {
        key,
        list: Some(list.to_vec()),
    }
}

fn txn(process: u64, (from, to): (u64, u64), outcome: ListOutcome, ops: Vec<ListOp>) -> ListTxn {
    ListTxn {
        process,
        ops,
        invoked_at: from,
        completed_at: to,
        outcome,
    }
}

fn ok(process: u64, at: (u64, u64), ops: Vec<ListOp>) -> ListTxn {
    txn(process, at, ListOutcome::Committed, ops)
}

fn check(txns: &[ListTxn]) -> Result<ElleSummary, ElleError> {
    check_list_append(txns, &ElleOpts::default())
}

/// Checks `txns` passes, with `committed` committed transactions.
fn accepted(txns: &[ListTxn], committed: usize) {
    match check(txns) {
        Ok(s) => {
            assert_eq!(s.transactions, txns.len());
            assert_eq!(s.committed, committed);
        }
        Err(e) => panic!("a valid history was rejected: {e}"),
    }
}

/// Checks `txns` fails with anomalies including `expected`; returns the
/// error's text.
fn rejected_with(txns: &[ListTxn], expected: &str) -> String {
    match check(txns) {
        Ok(s) => panic!("history with {expected} accepted: {s:?}"),
        Err(e @ ElleError::Anomalies { .. }) => {
            let ElleError::Anomalies {
                anomaly_types,
                explanation,
                ..
            } = &e
            else {
                unreachable!()
            };
            assert!(
                anomaly_types.iter().any(|t| t == expected),
                "expected {expected}, got {e}"
            );
            assert!(!explanation.is_empty());
            e.to_string()
        }
        Err(e) => panic!("expected anomaly {expected}, got: {e}"),
    }
}

#[test]
fn serial_history_is_accepted() {
    accepted(
        &[
            ok(0, (0, 10), vec![append(X, 1), read(X, &[1])]),
            ok(1, (20, 30), vec![read(X, &[1]), append(X, 2), append(Y, 1)]),
            ok(0, (40, 50), vec![read(X, &[1, 2]), read(Y, &[1])]),
            ok(1, (60, 70), vec![append(Y, 2), read(Y, &[1, 2])]),
        ],
        4,
    );
}

#[test]
fn concurrent_serializable_history_is_accepted() {
    // All three overlap in time; the serial order T2, T0, T1 explains every
    // read. A fourth transaction after all of them sees everything.
    accepted(
        &[
            ok(0, (0, 20), vec![append(X, 1)]),
            ok(1, (5, 25), vec![read(X, &[1]), append(Y, 2)]),
            ok(2, (10, 30), vec![read(Y, &[]), read(X, &[])]),
            ok(0, (40, 50), vec![read(X, &[1]), read(Y, &[2])]),
        ],
        4,
    );
}

#[test]
fn write_skew_is_rejected() {
    // Each reads both keys as empty and appends to a different one.
    let text = rejected_with(
        &[
            ok(0, (0, 20), vec![read(X, &[]), read(Y, &[]), append(X, 1)]),
            ok(1, (5, 25), vec![read(X, &[]), read(Y, &[]), append(Y, 1)]),
        ],
        "G2-item",
    );
    assert!(text.contains("strict-serializable"), "{text}");
}

#[test]
fn lost_update_is_rejected() {
    // T1 and T2 both read [1] and append; every later read misses T2's 3.
    rejected_with(
        &[
            ok(0, (0, 10), vec![append(X, 1)]),
            ok(1, (20, 40), vec![read(X, &[1]), append(X, 2)]),
            ok(2, (25, 45), vec![read(X, &[1]), append(X, 3)]),
            ok(0, (50, 60), vec![read(X, &[1, 2])]),
        ],
        "lost-update",
    );
}

#[test]
fn lost_update_is_rejected_even_when_both_appends_survive() {
    // Both appends are in the final list, but T2 appended 3 after 2 having
    // read [1]: its update was based on a stale read.
    rejected_with(
        &[
            ok(0, (0, 10), vec![append(X, 1)]),
            ok(1, (20, 40), vec![read(X, &[1]), append(X, 2)]),
            ok(2, (25, 45), vec![read(X, &[1]), append(X, 3)]),
            ok(0, (50, 60), vec![read(X, &[1, 2, 3])]),
        ],
        "lost-update",
    );
}

#[test]
fn stale_read_after_a_completed_append_is_rejected() {
    // T0 completes at 10; T1 starts at 20 and still reads X as empty.
    // Serializable (T1 then T0), not strictly serializable.
    let stale = [
        ok(0, (0, 10), vec![append(X, 1)]),
        ok(1, (20, 30), vec![read(X, &[])]),
    ];
    let text = rejected_with(&stale, "G-single-item-realtime");
    assert!(text.contains("completed"), "{text}");
}

#[test]
fn stale_read_overlapping_the_append_is_accepted() {
    // The same two transactions, overlapping in time: T1 may serialize
    // first.
    accepted(
        &[
            ok(0, (0, 10), vec![append(X, 1)]),
            ok(1, (5, 30), vec![read(X, &[])]),
        ],
        2,
    );
}

#[test]
fn completion_and_invocation_at_one_instant_are_concurrent() {
    // T1 is invoked at the instant T0 completes: no real-time edge is
    // invented, so reading the old state is allowed.
    accepted(
        &[
            ok(0, (0, 10), vec![append(X, 1)]),
            ok(1, (10, 30), vec![read(X, &[])]),
        ],
        2,
    );
}

#[test]
fn one_client_back_to_back_at_one_instant_is_paired_correctly() {
    // One client whose next transaction starts at the instant the previous
    // one completes; the read sees the append.
    accepted(
        &[
            ok(0, (0, 10), vec![append(X, 1)]),
            ok(0, (10, 20), vec![read(X, &[1]), append(X, 2)]),
            ok(0, (20, 30), vec![read(X, &[1, 2])]),
        ],
        3,
    );
}

#[test]
fn concurrent_read_before_a_back_to_back_transaction_is_accepted() {
    // T1 overlaps T0's append and reads X as empty; its client starts T2 at
    // the instant T1 completes. Pairing invocations with completions per
    // client in event order (adya's own pairing) would pair T1's completion
    // with T2's invocation, date T1 from T2's start, and invent the edge
    // T0 -> T1.
    accepted(
        &[
            ok(0, (0, 8), vec![append(X, 1)]),
            ok(1, (7, 10), vec![read(X, &[])]),
            ok(1, (10, 20), vec![read(X, &[1])]),
        ],
        3,
    );
}

#[test]
fn read_of_an_aborted_append_is_rejected() {
    rejected_with(
        &[
            txn(0, (0, 10), ListOutcome::Aborted, vec![append(X, 1)]),
            ok(1, (20, 30), vec![read(X, &[1])]),
        ],
        "G1a",
    );
}

#[test]
fn read_of_a_value_never_appended_is_rejected() {
    // adya alone would accept this: 7 fits the version order [1, 7].
    let text = rejected_with(
        &[
            ok(0, (0, 10), vec![append(X, 1)]),
            ok(1, (20, 30), vec![read(X, &[1, 7])]),
        ],
        GARBAGE_READ,
    );
    assert!(text.contains("no transaction appended 7"), "{text}");
}

#[test]
fn unknown_transaction_whose_append_is_read_is_accepted() {
    // The read shows the unknown transaction did commit.
    accepted(
        &[
            txn(0, (0, 10), ListOutcome::Unknown, vec![append(X, 1)]),
            ok(1, (20, 30), vec![read(X, &[1]), append(X, 2)]),
            ok(1, (40, 50), vec![read(X, &[1, 2])]),
        ],
        2,
    );
}

#[test]
fn unknown_transaction_whose_append_is_never_read_is_accepted() {
    // It may not have committed; nothing says it did.
    accepted(
        &[
            ok(0, (0, 10), vec![append(X, 1)]),
            txn(1, (20, 30), ListOutcome::Unknown, vec![append(X, 2)]),
            ok(0, (40, 50), vec![read(X, &[1])]),
        ],
        2,
    );
}

#[test]
fn unknown_transaction_with_stale_reads_is_accepted() {
    // Its reads could never have been served by a serial execution, but as
    // it may not have committed, they prove nothing.
    accepted(
        &[
            ok(0, (0, 10), vec![append(X, 1)]),
            txn(
                1,
                (20, 30),
                ListOutcome::Unknown,
                vec![read(X, &[]), append(Y, 1)],
            ),
            ok(0, (40, 50), vec![read(X, &[1]), read(Y, &[])]),
        ],
        2,
    );
}

#[test]
fn empty_history_is_refused() {
    assert_eq!(
        check(&[]),
        Err(ElleError::NothingCommitted { transactions: 0 })
    );
}

#[test]
fn history_with_nothing_committed_is_refused() {
    let e = check(&[
        txn(0, (0, 10), ListOutcome::Aborted, vec![append(X, 1)]),
        txn(1, (0, 10), ListOutcome::Unknown, vec![append(X, 2)]),
    ]);
    assert_eq!(e, Err(ElleError::NothingCommitted { transactions: 2 }));
}

#[test]
fn history_without_dependencies_is_inconclusive() {
    // One committed transaction alone: adya infers no edge at all.
    match check(&[ok(0, (0, 10), vec![append(X, 1), read(X, &[1])])]) {
        Err(ElleError::Inconclusive { anomaly_types, .. }) => {
            assert_eq!(anomaly_types, ["empty-transaction-graph"]);
        }
        other => panic!("expected an inconclusive verdict, got {other:?}"),
    }
}

#[test]
fn duplicate_append_is_malformed() {
    // adya alone would flag this but still call the history valid.
    let e = check(&[
        ok(0, (0, 10), vec![append(X, 1)]),
        ok(1, (20, 30), vec![read(X, &[1]), append(X, 1)]),
    ]);
    assert!(
        matches!(e, Err(ElleError::Malformed { txn: 1, .. })),
        "{e:?}"
    );
}

#[test]
fn completion_before_invocation_is_malformed() {
    let e = check(&[ok(0, (10, 5), vec![append(X, 1)])]);
    assert!(
        matches!(e, Err(ElleError::Malformed { txn: 0, .. })),
        "{e:?}"
    );
}

#[test]
fn committed_read_without_a_list_is_malformed() {
    let e = check(&[
        ok(0, (0, 10), vec![append(X, 1)]),
        ok(1, (20, 30), vec![ListOp::Read { key: X, list: None }]),
    ]);
    assert!(
        matches!(e, Err(ElleError::Malformed { txn: 1, .. })),
        "{e:?}"
    );
}

#[test]
fn numbers_beyond_i64_are_malformed() {
    let e = check(&[ok(0, (0, 10), vec![append(u64::MAX, 1)])]);
    assert!(
        matches!(e, Err(ElleError::Malformed { txn: 0, .. })),
        "{e:?}"
    );
}

#[test]
fn larger_serial_history_is_accepted() {
    // Many clients, each in turn appending to a few keys and reading them
    // back: enough transactions for a dense dependency graph.
    const CLIENTS: u64 = 5;
    const ROUNDS: u64 = 40;
    const KEYS: u64 = 4;
    const SPAN: u64 = 10;
    let mut lists: Vec<Vec<u64>> = vec![Vec::new(); KEYS as usize];
    let mut txns = Vec::new();
    for r in 0..ROUNDS {
        let client = r % CLIENTS;
        let key = r % KEYS;
        let mut ops = vec![read(key, &lists[key as usize])];
        lists[key as usize].push(r);
        ops.push(append(key, r));
        let other = (key + 1) % KEYS;
        ops.push(read(other, &lists[other as usize]));
        txns.push(ok(client, (r * 2 * SPAN, r * 2 * SPAN + SPAN), ops));
    }
    accepted(&txns, ROUNDS as usize);

    // Now make one read in the middle stale by one element: rejected.
    let mid = (ROUNDS / 2) as usize;
    let ListOp::Read { list: Some(l), .. } = &mut txns[mid].ops[0] else {
        unreachable!()
    };
    assert!(l.pop().is_some());
    let e = check(&txns).expect_err("a stale read went unnoticed");
    assert!(matches!(e, ElleError::Anomalies { .. }), "{e}");
}
