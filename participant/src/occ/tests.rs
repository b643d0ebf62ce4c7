//! OCC validation rules (docs/design.md §5.4), one test each.

use bytes::Bytes;
use meridian_paxos::{Ballot, Entry, Payload};
use meridian_truetime::Timestamp;

use super::*;
use crate::command::{Command, Write};
use crate::locks::{Acquire, LockMode};
use crate::types::Priority;

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n)
}

fn key(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A state with one-phase commits applied: each `(slot, at, writes)`.
fn state(commits: &[(u64, &[Write])]) -> GroupState {
    let mut s = GroupState::default();
    for (i, (at, writes)) in commits.iter().enumerate() {
        let cmd = Command::Commit {
            txn: TxnId::local(i as u64 + 100),
            writes: writes.to_vec(),
        };
        let e = Entry {
            slot: i as u64 + 1,
            ballot: Ballot::new(1, 1),
            ts: ts(*at),
            payload: Payload::Command(cmd.encode()),
        };
        s.apply(&e).unwrap();
    }
    s
}

fn saw(k: &str, at: Option<u64>) -> ReadVersion {
    ReadVersion {
        key: key(k),
        seen: at.map(ts),
    }
}

const ME: TxnId = TxnId::new(0, 1);
const OTHER: TxnId = TxnId::new(0, 2);

fn lock(table: &mut LockTable, txn: TxnId, k: &str, mode: LockMode) {
    let got = table.acquire(txn, Priority::new(ts(txn.seq)), &key(k), mode);
    assert_eq!(got, Ok(Acquire::Granted));
}

#[test]
fn farm_s4_reads_still_current_validate() {
    let s = state(&[(
        10,
        &[Write::put(key("a"), key("1")), Write::delete(key("d"))],
    )]);
    let reads = [saw("a", Some(10)), saw("d", Some(10)), saw("never", None)];
    assert_eq!(validate(&s, &LockTable::default(), ME, &reads), Ok(()));
}

#[test]
fn farm_s4_a_key_overwritten_since_the_read_fails() {
    let s = state(&[
        (10, &[Write::put(key("a"), key("1"))]),
        (20, &[Write::put(key("a"), key("2"))]),
    ]);
    assert_eq!(
        validate(&s, &LockTable::default(), ME, &[saw("a", Some(10))]),
        Err(Conflict::Changed {
            key: key("a"),
            seen: Some(ts(10)),
            latest: Some(ts(20)),
        })
    );
}

#[test]
fn farm_s4_a_key_deleted_or_inserted_since_the_read_fails() {
    let s = state(&[
        (10, &[Write::put(key("a"), key("1"))]),
        (
            20,
            &[Write::delete(key("a")), Write::put(key("new"), key("n"))],
        ),
    ]);
    let table = LockTable::default();
    assert!(validate(&s, &table, ME, &[saw("a", Some(10))]).is_err());
    assert!(
        validate(&s, &table, ME, &[saw("new", None)]).is_err(),
        "an insert into what read as absent is a conflict (a phantom of one key)"
    );
}

#[test]
fn farm_s4_a_key_another_transaction_holds_exclusively_fails() {
    let s = state(&[(10, &[Write::put(key("a"), key("1"))])]);
    let mut table = LockTable::default();
    lock(&mut table, OTHER, "a", LockMode::Exclusive);
    assert_eq!(
        validate(&s, &table, ME, &[saw("a", Some(10))]),
        Err(Conflict::Locked {
            key: key("a"),
            holder: OTHER
        })
    );
}

#[test]
fn farm_s4_shared_holders_and_the_transactions_own_write_locks_do_not_conflict() {
    let s = state(&[(
        10,
        &[
            Write::put(key("a"), key("1")),
            Write::put(key("b"), key("1")),
        ],
    )]);
    let mut table = LockTable::default();
    lock(&mut table, OTHER, "a", LockMode::Shared);
    lock(&mut table, ME, "b", LockMode::Exclusive);
    let reads = [saw("a", Some(10)), saw("b", Some(10))];
    assert_eq!(validate(&s, &table, ME, &reads), Ok(()));
}

#[test]
fn farm_s4_a_tombstone_collected_since_the_read_fails_safe() {
    let mut s = state(&[
        (10, &[Write::put(key("a"), key("1"))]),
        (20, &[Write::delete(key("a"))]),
        (30, &[Write::put(key("z"), key("1"))]),
    ]);
    s.gc(ts(25));
    assert_eq!(s.latest_version(b"a"), None, "GC dropped the old tombstone");
    assert!(validate(&s, &LockTable::default(), ME, &[saw("a", Some(20))]).is_err());
}

fn scan_of(start: &str, end: &str, limit: usize, rows: &[(&str, u64)]) -> ScanVersions {
    ScanVersions {
        start: key(start),
        end: Some(key(end)),
        limit,
        rows: rows.iter().map(|(k, t)| (key(k), ts(*t))).collect(),
    }
}

#[test]
fn farm_s4_a_scan_whose_rows_are_unchanged_validates() {
    let s = state(&[(
        10,
        &[
            Write::put(key("a"), key("1")),
            Write::put(key("c"), key("3")),
        ],
    )]);
    let scan = scan_of("a", "z", 10, &[("a", 10), ("c", 10)]);
    assert_eq!(validate_scan(&s, &scan), Ok(()));
    // A limit-truncated scan ignores what lies past its last row.
    let s2 = state(&[
        (
            10,
            &[
                Write::put(key("a"), key("1")),
                Write::put(key("c"), key("3")),
            ],
        ),
        (20, &[Write::put(key("d"), key("4"))]),
    ]);
    let first = scan_of("a", "z", 1, &[("a", 10)]);
    assert_eq!(validate_scan(&s2, &first), Ok(()));
}

#[test]
fn farm_s4_a_scan_fails_on_a_phantom_a_changed_row_or_a_deleted_row() {
    let seen = scan_of("a", "z", 10, &[("a", 10), ("c", 10)]);
    let base: &[Write] = &[
        Write::put(key("a"), key("1")),
        Write::put(key("c"), key("3")),
    ];
    for (later, what) in [
        (Write::put(key("b"), key("2")), "an inserted key"),
        (Write::put(key("c"), key("9")), "a changed row"),
        (Write::delete(key("a")), "a deleted row"),
    ] {
        let s = state(&[(10, base), (20, &[later])]);
        assert!(
            matches!(validate_scan(&s, &seen), Err(Conflict::ScanChanged { .. })),
            "{what} must fail validation"
        );
    }
    // Outside the range nothing matters.
    let s = state(&[(10, base), (20, &[Write::put(key("zz"), key("0"))])]);
    assert_eq!(validate_scan(&s, &seen), Ok(()));
}
