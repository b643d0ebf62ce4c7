//! Tests of the group state machine, named after the rules they check.

use std::ops::Bound;

use bytes::Bytes;
use meridian_paxos::{Ballot, Entry, Payload};
use meridian_truetime::Timestamp;

use super::*;
use crate::command::{Command, Decision, Write};

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn entry(slot: u64, at: u64, cmd: &Command) -> Entry {
    Entry {
        slot,
        ballot: Ballot::new(1, 1),
        ts: ts(at),
        payload: Payload::Command(cmd.encode()),
    }
}

fn noop(slot: u64) -> Entry {
    Entry {
        slot,
        ballot: Ballot::new(1, 1),
        ts: Timestamp::ZERO,
        payload: Payload::Noop,
    }
}

fn commit(txn: u64, writes: &[(&str, Option<&str>)]) -> Command {
    Command::Commit {
        txn: TxnId::local(txn),
        writes: writes
            .iter()
            .map(|(k, v)| Write {
                key: b(k),
                value: v.map(b),
            })
            .collect(),
    }
}

/// A prepare deadline later than any entry of these tests.
const FAR_DEADLINE: u64 = 1_000_000;

/// A prepare record of `txn` writing `writes` for `coordinator`, with no
/// reads and a deadline past every test's entries.
fn prepare_writes(txn: TxnId, writes: Vec<Write>, coordinator: u64) -> Command {
    Command::Prepare {
        txn,
        coordinator,
        priority: Priority::new(ts(1)),
        deadline: ts(FAR_DEADLINE),
        writes,
        reads: vec![],
        ranges: vec![],
    }
}

fn value_at(s: &GroupState, key: &str, at: u64) -> Option<String> {
    s.read(key.as_bytes(), ts(at))
        .unwrap()
        .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap())
}

#[test]
fn spanner_s4_1_2_one_phase_commit_applies_at_its_paxos_timestamp() {
    let mut s = GroupState::default();
    assert_eq!(s.apply(&noop(1)), Ok(Applied::Nothing));
    let got = s.apply(&entry(2, 100, &commit(7, &[("a", Some("1")), ("b", None)])));
    assert_eq!(
        got,
        Ok(Applied::Committed {
            txn: TxnId::local(7),
            ts: ts(100)
        })
    );
    assert_eq!(value_at(&s, "a", 99), None);
    assert_eq!(value_at(&s, "a", 100).as_deref(), Some("1"));
    assert_eq!(s.last_commit_ts(), ts(100));
    assert_eq!(s.committed(TxnId::local(7)), Some(ts(100)));
    assert_eq!(s.read_latest(b"a").map(|(t, _)| t), Some(ts(100)));
}

#[test]
fn spanner_s4_1_3_t_paxos_safe_is_the_highest_applied_paxos_timestamp() {
    let mut s = GroupState::default();
    s.apply(&entry(1, 100, &commit(1, &[("a", Some("1"))])))
        .unwrap();
    assert_eq!(s.t_paxos_safe(), ts(100));
    assert_eq!(s.t_safe(), ts(100));
    assert_eq!(
        s.read(b"a", ts(101)),
        Err(ReadError::NotYetSafe {
            read_ts: ts(101),
            t_safe: ts(100)
        })
    );
    // A no-op (ts 0) does not move safe time.
    s.apply(&noop(2)).unwrap();
    assert_eq!(s.t_paxos_safe(), ts(100));
}

#[test]
fn spanner_s4_1_3_closed_timestamp_advances_t_safe_without_writes() {
    let mut s = GroupState::default();
    s.apply(&entry(1, 100, &commit(1, &[("a", Some("1"))])))
        .unwrap();
    assert_eq!(
        s.apply(&entry(2, 500, &Command::CloseTimestamp)),
        Ok(Applied::Nothing)
    );
    assert_eq!(s.t_safe(), ts(500));
    assert_eq!(value_at(&s, "a", 500).as_deref(), Some("1"));
    assert_eq!(s.last_commit_ts(), ts(100), "LastTS counts commits only");
}

#[test]
fn spanner_s4_1_3_t_tm_safe_stays_below_the_earliest_prepared_transaction() {
    let mut s = GroupState::default();
    let prepare = |txn: u64, key: &str| {
        prepare_writes(TxnId::local(txn), vec![Write::put(b(key), b("p"))], 9)
    };
    assert_eq!(
        s.apply(&entry(1, 100, &prepare(1, "x"))),
        Ok(Applied::Prepared {
            txn: TxnId::local(1),
            prepare_ts: ts(100)
        })
    );
    s.apply(&entry(2, 200, &prepare(2, "y"))).unwrap();
    s.apply(&entry(3, 300, &Command::CloseTimestamp)).unwrap();
    assert_eq!(s.t_paxos_safe(), ts(300));
    assert_eq!(s.t_tm_safe(), ts(99));
    assert_eq!(s.t_safe(), ts(99), "t_safe = min(t_paxos_safe, t_tm_safe)");
    assert!(s.has_prepared());
    // Txn 1 commits at 250 (above its prepare timestamp): visible at 250.
    let commit = decide(TxnId::local(1), Decision::Commit(ts(250)));
    assert_eq!(
        s.apply(&entry(4, 400, &commit)),
        Ok(Applied::Committed {
            txn: TxnId::local(1),
            ts: ts(250)
        })
    );
    assert_eq!(s.t_safe(), ts(199), "txn 2 still prepared at 200");
    assert_eq!(value_at(&s, "x", 199), None);
    assert!(
        matches!(s.read(b"y", ts(250)), Err(ReadError::NotYetSafe { .. })),
        "y is held back by txn 2, prepared at 200"
    );
    assert_eq!(value_at(&s, "x", 250).as_deref(), Some("p"), "x is not");
    let abort = decide(TxnId::local(2), Decision::Abort);
    assert_eq!(
        s.apply(&entry(5, 500, &abort)),
        Ok(Applied::Aborted {
            txn: TxnId::local(2)
        })
    );
    assert_eq!(s.t_safe(), ts(500));
    assert_eq!(value_at(&s, "x", 250).as_deref(), Some("p"));
    assert_eq!(value_at(&s, "y", 500), None, "aborted writes never apply");
}

#[test]
fn spanner_s4_2_1_commit_below_a_prepare_timestamp_is_refused() {
    let mut s = GroupState::default();
    s.apply(&entry(1, 100, &prepare_writes(TxnId::local(1), vec![], 1)))
        .unwrap();
    let below = decide(TxnId::local(1), Decision::Commit(ts(99)));
    assert!(matches!(
        s.apply(&entry(2, 200, &below)),
        Err(ApplyError::CommitBelowPrepare { .. })
    ));
}

#[test]
fn spanner_s4_1_2_entries_apply_in_order_with_rising_timestamps() {
    let mut s = GroupState::default();
    assert_eq!(
        s.apply(&noop(2)),
        Err(ApplyError::OutOfOrder { applied: 0, got: 2 })
    );
    s.apply(&entry(1, 100, &Command::CloseTimestamp)).unwrap();
    assert!(matches!(
        s.apply(&entry(2, 100, &Command::CloseTimestamp)),
        Err(ApplyError::TimestampNotRising { .. })
    ));
}

#[test]
fn corrupt_record_is_an_apply_error_not_a_silent_skip() {
    let mut s = GroupState::default();
    let e = Entry {
        slot: 1,
        ballot: Ballot::new(1, 1),
        ts: ts(5),
        payload: Payload::Command(Bytes::from_static(&[1, 99])),
    };
    assert!(matches!(
        s.apply(&e),
        Err(ApplyError::Decode { slot: 1, .. })
    ));
    assert_eq!(s.applied_slot(), 0);
}

#[test]
fn design_s4_read_below_gc_horizon_is_a_typed_error_and_gc_stops_at_t_safe() {
    let mut s = GroupState::default();
    s.apply(&entry(1, 100, &commit(1, &[("a", Some("1"))])))
        .unwrap();
    s.apply(&entry(2, 200, &commit(2, &[("a", Some("2"))])))
        .unwrap();
    assert_eq!(s.gc(ts(10_000)), ts(200), "clamped to t_safe");
    assert!(matches!(
        s.read(b"a", ts(150)),
        Err(ReadError::Mvcc(MvccError::BelowGcHorizon { .. }))
    ));
    assert_eq!(value_at(&s, "a", 200).as_deref(), Some("2"));
}

#[test]
fn commit_records_are_remembered_for_the_retention_then_pruned() {
    let mut s = GroupState::new(1_000);
    let c = |origin: u64, seq: u64| Command::Commit {
        txn: TxnId::new(origin, seq),
        writes: vec![],
    };
    s.apply(&entry(1, 100, &c(5, 1))).unwrap();
    s.apply(&entry(2, 1_100, &c(7, 2))).unwrap();
    assert_eq!(s.committed(TxnId::new(5, 1)), Some(ts(100)));
    assert!(
        !s.may_have_forgotten(TxnId::new(5, 9)),
        "nothing pruned yet"
    );
    s.apply(&entry(3, 1_101, &c(7, 3))).unwrap();
    assert_eq!(s.committed(TxnId::new(5, 1)), None);
    assert_eq!(s.committed(TxnId::new(7, 2)), Some(ts(1_100)));
    // No record of origin 5 means nothing any more; of origin 7 it still does.
    assert!(s.may_have_forgotten(TxnId::new(5, 2)));
    assert!(s.may_have_forgotten(TxnId::new(4, 1)));
    assert!(!s.may_have_forgotten(TxnId::new(7, 9)));
    let r = GroupState::decode(&s.encode(), 1_000).unwrap();
    assert!(r.may_have_forgotten(TxnId::new(5, 2)), "kept in snapshots");
}

#[test]
fn snapshot_round_trips_every_part_of_the_state() {
    let mut s = GroupState::default();
    s.apply(&noop(1)).unwrap();
    s.apply(&entry(
        2,
        100,
        &commit(1, &[("a", Some("1")), ("b", Some("x"))]),
    ))
    .unwrap();
    s.apply(&entry(3, 200, &commit(2, &[("a", Some("2")), ("b", None)])))
        .unwrap();
    s.apply(&entry(
        4,
        300,
        &Command::Prepare {
            txn: TxnId::new(5, 6),
            coordinator: 4,
            priority: Priority::new(ts(7)),
            deadline: ts(900),
            writes: vec![Write::put(b("c"), b("3"))],
            reads: vec![b("a")],
            ranges: vec![(b("k"), Some(b("m"))), (b("q"), None)],
        },
    ))
    .unwrap();
    s.gc(ts(150));
    let data = s.encode();
    let r = GroupState::decode(&data, DEFAULT_COMMIT_RECORD_RETENTION_NANOS).unwrap();
    assert_eq!(r.applied_slot(), 4);
    assert_eq!(r.t_paxos_safe(), s.t_paxos_safe());
    assert_eq!(r.t_tm_safe(), ts(299));
    assert_eq!(r.last_commit_ts(), ts(200));
    assert_eq!(r.gc_horizon(), ts(150));
    assert_eq!(r.committed(TxnId::local(2)), Some(ts(200)));
    assert_eq!(r.version_count(), s.version_count());
    for at in [150, 199, 200, 299] {
        assert_eq!(
            r.scan(Bound::Unbounded, Bound::Unbounded, ts(at), 10),
            s.scan(Bound::Unbounded, Bound::Unbounded, ts(at), 10)
        );
    }
    assert_eq!(r.encode(), data, "encoding is canonical");
    let (txn, p) = r.prepared().next().unwrap();
    assert_eq!((txn, p), s.prepared().next().unwrap());
    assert_eq!(
        (
            *txn,
            p.prepare_ts,
            p.coordinator,
            p.deadline,
            p.reads.clone(),
            p.ranges.clone()
        ),
        (
            TxnId::new(5, 6),
            ts(300),
            4,
            ts(900),
            vec![b("a")],
            vec![(b("k"), Some(b("m"))), (b("q"), None)]
        )
    );
    assert!(GroupState::decode(&data.slice(..data.len() - 1), 0).is_err());
}

fn prepare(txn: TxnId, key: &str) -> Command {
    prepare_writes(txn, vec![Write::put(b(key), b("p"))], 9)
}

fn decide(txn: TxnId, decision: Decision) -> Command {
    Command::Decide {
        txn,
        decision,
        deadline: ts(FAR_DEADLINE),
    }
}

fn not_yet_safe(s: &GroupState, at: u64) -> bool {
    matches!(s.read(b"x", ts(at)), Err(ReadError::NotYetSafe { .. }))
}

#[test]
fn spanner_s4_1_3_t_safe_is_held_exactly_one_below_a_prepare_until_it_commits() {
    let mut s = GroupState::default();
    let txn = TxnId::new(3, 1);
    s.apply(&entry(1, 100, &prepare(txn, "x"))).unwrap();
    s.apply(&entry(2, 300, &Command::CloseTimestamp)).unwrap();
    // The transaction may still commit at its prepare timestamp 100, so
    // nothing at or above 100 is final, however far Paxos time has moved.
    assert_eq!(s.t_paxos_safe(), ts(300));
    assert_eq!(s.t_tm_safe(), ts(99), "t_tm_safe = prepare_ts - 1");
    assert_eq!(s.t_safe(), ts(99));
    assert_eq!(
        value_at(&s, "x", 99),
        None,
        "a read at prepare_ts - 1 is served"
    );
    assert_eq!(
        s.read(b"x", ts(100)),
        Err(ReadError::NotYetSafe {
            read_ts: ts(100),
            t_safe: ts(99)
        }),
        "a read at the prepare timestamp must wait for the decision"
    );
    assert_eq!(s.gc(ts(10_000)), ts(99), "GC stops below the prepare too");
    // Closing later timestamps does not release it either.
    s.apply(&entry(3, 400, &Command::CloseTimestamp)).unwrap();
    assert_eq!(s.t_safe(), ts(99));
    // It commits at its prepare timestamp (the lowest it may): the bound
    // goes, and the commit is visible exactly from 100.
    assert_eq!(
        s.apply(&entry(4, 500, &decide(txn, Decision::Commit(ts(100))))),
        Ok(Applied::Committed { txn, ts: ts(100) })
    );
    assert!(!s.has_prepared());
    assert_eq!(s.t_tm_safe(), Timestamp::MAX);
    assert_eq!(s.t_safe(), ts(500));
    assert_eq!(value_at(&s, "x", 99), None);
    assert_eq!(value_at(&s, "x", 100).as_deref(), Some("p"));
    assert_eq!(s.committed(txn), Some(ts(100)));
}

#[test]
fn spanner_s4_1_3_t_safe_is_released_when_a_prepared_transaction_aborts() {
    let mut s = GroupState::default();
    let txn = TxnId::new(3, 1);
    s.apply(&entry(1, 100, &prepare(txn, "x"))).unwrap();
    s.apply(&entry(2, 200, &Command::CloseTimestamp)).unwrap();
    assert_eq!(s.t_safe(), ts(99));
    assert!(not_yet_safe(&s, 100));
    assert_eq!(
        s.apply(&entry(3, 300, &decide(txn, Decision::Abort))),
        Ok(Applied::Aborted { txn })
    );
    assert!(!s.has_prepared());
    assert_eq!(s.t_tm_safe(), Timestamp::MAX);
    assert_eq!(
        s.t_safe(),
        ts(300),
        "nothing prepared: t_safe = t_paxos_safe"
    );
    assert_eq!(value_at(&s, "x", 300), None);
    assert_eq!(s.committed(txn), None);
    // A decision for a transaction no longer prepared changes nothing.
    assert_eq!(
        s.apply(&entry(4, 400, &decide(txn, Decision::Commit(ts(350))))),
        Ok(Applied::Nothing)
    );
    assert_eq!(value_at(&s, "x", 400), None);
    assert_eq!(s.t_safe(), ts(400));
}

#[test]
fn spanner_s4_1_3_a_duplicate_prepare_record_leaves_no_stale_bound() {
    let mut s = GroupState::default();
    let txn = TxnId::new(3, 1);
    s.apply(&entry(1, 100, &prepare(txn, "x"))).unwrap();
    // A prepare logged twice (a retried request): the first one stands.
    assert_eq!(
        s.apply(&entry(2, 200, &prepare(txn, "x"))),
        Ok(Applied::Nothing)
    );
    assert_eq!(s.t_tm_safe(), ts(99));
    s.apply(&entry(3, 300, &decide(txn, Decision::Commit(ts(250)))))
        .unwrap();
    assert_eq!(
        s.t_safe(),
        ts(300),
        "the decision releases every bound of txn"
    );
    // A prepare arriving after the commit applied is void: the
    // participant must not vote on it again.
    assert_eq!(
        s.apply(&entry(4, 400, &prepare(txn, "x"))),
        Ok(Applied::PrepareVoid { txn })
    );
    assert!(!s.has_prepared());
    assert_eq!(s.t_safe(), ts(400));
}

#[test]
fn spanner_s4_1_3_a_restored_snapshot_keeps_t_safe_below_a_prepare() {
    let mut s = GroupState::default();
    let txn = TxnId::new(3, 1);
    s.apply(&entry(1, 100, &prepare(txn, "x"))).unwrap();
    s.apply(&entry(2, 200, &Command::CloseTimestamp)).unwrap();
    let mut r = GroupState::decode(&s.encode(), DEFAULT_COMMIT_RECORD_RETENTION_NANOS).unwrap();
    assert_eq!(r.t_safe(), ts(99));
    r.apply(&entry(3, 300, &decide(txn, Decision::Abort)))
        .unwrap();
    assert_eq!(
        r.t_safe(),
        ts(300),
        "the restored bound is released as well"
    );
}

#[test]
fn design_s5_5_a_commit_record_at_exactly_the_retention_cutoff_is_kept() {
    // Retention 1000: applying an entry at `t` forgets the records of
    // entries strictly below `t - 1000`.
    let mut s = GroupState::new(1_000);
    let c = |origin: u64, seq: u64| Command::Commit {
        txn: TxnId::new(origin, seq),
        writes: vec![],
    };
    let first = TxnId::new(5, 1);
    s.apply(&entry(1, 100, &c(5, 1))).unwrap();
    assert!(!s.may_have_forgotten(TxnId::local(1)), "nothing pruned yet");
    s.apply(&entry(2, 1_099, &c(6, 1))).unwrap();
    s.apply(&entry(3, 1_100, &c(6, 2))).unwrap();
    // Cutoff 100: the record of the entry at 100 is exactly at it and kept.
    assert_eq!(s.committed(first), Some(ts(100)));
    assert!(!s.may_have_forgotten(first));
    assert!(!s.may_have_forgotten(TxnId::new(4, 1)));
    assert!(
        !s.may_have_forgotten(TxnId::local(1)),
        "origin 0 is no exception"
    );
    // Cutoff 101: one nanosecond later it is gone, and the state says so.
    s.apply(&entry(4, 1_101, &c(6, 3))).unwrap();
    assert_eq!(s.committed(first), None);
    assert!(s.may_have_forgotten(first));
    assert!(
        s.may_have_forgotten(TxnId::new(5, 99)),
        "any txn of origin 5"
    );
    assert!(
        s.may_have_forgotten(TxnId::new(4, 1)),
        "and of older origins"
    );
    assert!(
        !s.may_have_forgotten(TxnId::new(6, 99)),
        "origin 6 still has every record"
    );
    assert_eq!(s.committed(TxnId::new(6, 1)), Some(ts(1_099)));
    // Several records older than the cutoff go at once.
    s.apply(&entry(5, 2_102, &c(7, 1))).unwrap();
    for seq in 1..=3 {
        assert_eq!(s.committed(TxnId::new(6, seq)), None);
    }
    assert!(s.may_have_forgotten(TxnId::new(6, 99)));
    assert!(!s.may_have_forgotten(TxnId::new(7, 2)));
    assert_eq!(s.committed(TxnId::new(7, 1)), Some(ts(2_102)));
}

#[test]
fn design_s5_5_a_two_phase_commit_record_is_kept_for_the_retention_after_its_decision() {
    // The retention counts from the decision's entry, not from the
    // (earlier) commit timestamp the coordinator chose.
    let mut s = GroupState::new(1_000);
    let txn = TxnId::new(5, 1);
    s.apply(&entry(1, 100, &prepare(txn, "x"))).unwrap();
    s.apply(&entry(2, 2_000, &decide(txn, Decision::Commit(ts(150)))))
        .unwrap();
    s.apply(&entry(3, 3_000, &Command::CloseTimestamp)).unwrap();
    let later = Command::Commit {
        txn: TxnId::new(6, 1),
        writes: vec![],
    };
    s.apply(&entry(4, 3_000 + 1, &later)).unwrap();
    // Cutoff 2001: the decision at 2000 is just below it.
    assert_eq!(s.committed(txn), None);
    assert!(s.may_have_forgotten(txn));

    let mut s = GroupState::new(1_000);
    s.apply(&entry(1, 100, &prepare(txn, "x"))).unwrap();
    s.apply(&entry(2, 2_000, &decide(txn, Decision::Commit(ts(150)))))
        .unwrap();
    s.apply(&entry(3, 3_000, &later)).unwrap();
    // Cutoff 2000: kept, though its commit timestamp 150 is far older.
    assert_eq!(s.committed(txn), Some(ts(150)));
    assert!(!s.may_have_forgotten(txn));
}

/// A prepare record of `txn` writing `key`, due by `deadline`.
fn prepare_due(txn: TxnId, key: &str, deadline: u64) -> Command {
    Command::Prepare {
        txn,
        coordinator: 9,
        priority: Priority::new(ts(1)),
        deadline: ts(deadline),
        writes: vec![Write::put(b(key), b("p"))],
        reads: vec![b("r")],
        ranges: vec![],
    }
}

#[test]
fn design_s5_1_a_prepare_record_past_its_deadline_is_void() {
    let mut s = GroupState::default();
    let txn = TxnId::new(3, 1);
    assert_eq!(
        s.apply(&entry(1, 501, &prepare_due(txn, "x", 500))),
        Ok(Applied::PrepareVoid { txn })
    );
    assert!(!s.has_prepared());
    assert_eq!(s.t_safe_for_key(b"x"), ts(501));
    // At the deadline itself it still counts.
    let txn2 = TxnId::new(3, 2);
    assert_eq!(
        s.apply(&entry(2, 600, &prepare_due(txn2, "x", 600))),
        Ok(Applied::Prepared {
            txn: txn2,
            prepare_ts: ts(600)
        })
    );
}

#[test]
fn design_s5_1_a_decision_logged_before_its_prepare_voids_the_prepare() {
    // The coordinator aborted before this participant's prepare record
    // was chosen (a deposed leader's proposal chosen late): the prepare
    // must not resurrect the transaction, however it is ordered.
    let mut s = GroupState::default();
    let txn = TxnId::new(3, 1);
    let abort = Command::Decide {
        txn,
        decision: Decision::Abort,
        deadline: ts(900),
    };
    assert_eq!(s.apply(&entry(1, 100, &abort)), Ok(Applied::Nothing));
    assert_eq!(s.decided(txn), Some(Decision::Abort));
    assert_eq!(
        s.apply(&entry(2, 200, &prepare_due(txn, "x", 900))),
        Ok(Applied::PrepareVoid { txn })
    );
    assert!(!s.has_prepared());
    assert_eq!(s.t_safe(), ts(200), "nothing holds reads back");
    // Past the deadline the decision is forgotten, and the deadline alone
    // keeps voiding prepares.
    s.apply(&entry(3, 901, &Command::CloseTimestamp)).unwrap();
    assert_eq!(s.decided(txn), None);
    assert_eq!(
        s.apply(&entry(4, 902, &prepare_due(txn, "x", 900))),
        Ok(Applied::PrepareVoid { txn })
    );
}

#[test]
fn design_s5_1_a_prepare_replayed_after_its_commit_record_is_pruned_is_void() {
    let mut s = GroupState::new(100);
    let txn = TxnId::new(3, 1);
    s.apply(&entry(1, 100, &prepare_due(txn, "x", 300)))
        .unwrap();
    s.apply(&entry(2, 200, &decide(txn, Decision::Commit(ts(150)))))
        .unwrap();
    s.apply(&entry(3, 1_000, &commit(7, &[("y", Some("1"))])))
        .unwrap();
    assert_eq!(s.committed(txn), None, "the commit record was pruned");
    assert_eq!(s.decided(txn), None, "and the decision, past its deadline");
    assert_eq!(
        s.apply(&entry(4, 1_100, &prepare_due(txn, "x", 300))),
        Ok(Applied::PrepareVoid { txn })
    );
    assert_eq!(value_at(&s, "x", 1_100).as_deref(), Some("p"));
    assert_eq!(s.t_safe(), ts(1_100));
}

#[test]
fn spanner_s4_2_4_a_prepared_transaction_holds_back_only_reads_of_what_it_writes() {
    let mut s = GroupState::default();
    s.apply(&entry(
        1,
        50,
        &commit(1, &[("a", Some("1")), ("m", Some("1"))]),
    ))
    .unwrap();
    let txn = TxnId::new(3, 1);
    s.apply(&entry(2, 100, &prepare(txn, "m"))).unwrap();
    s.apply(&entry(3, 300, &Command::CloseTimestamp)).unwrap();
    assert_eq!(s.t_safe(), ts(99), "the group-wide bound");
    assert_eq!(s.t_safe_for_key(b"m"), ts(99));
    assert_eq!(s.t_safe_for_key(b"a"), ts(300), "txn does not write a");
    assert_eq!(value_at(&s, "a", 250).as_deref(), Some("1"));
    assert!(matches!(
        s.read(b"m", ts(100)),
        Err(ReadError::NotYetSafe { .. })
    ));
    let range = |lo: &'static [u8], hi: &'static [u8]| (Bound::Included(lo), Bound::Excluded(hi));
    let (lo, hi) = range(b"a", b"m");
    assert_eq!(s.t_safe_for_range(lo, hi), ts(300), "[a, m) misses m");
    assert_eq!(s.scan(lo, hi, ts(300), 10).unwrap().len(), 1);
    let (lo, hi) = range(b"a", b"n");
    assert_eq!(s.t_safe_for_range(lo, hi), ts(99));
    assert!(s.scan(lo, hi, ts(100), 10).is_err());
    assert_eq!(
        s.t_safe_for_range(Bound::Included(b"z"), Bound::Excluded(b"a")),
        ts(300),
        "an inverted range reads nothing"
    );
    s.apply(&entry(4, 400, &decide(txn, Decision::Commit(ts(120)))))
        .unwrap();
    assert_eq!(s.t_safe_for_key(b"m"), ts(400));
    assert_eq!(value_at(&s, "m", 120).as_deref(), Some("p"));
}

fn coordinator_commit(txn: TxnId, key: &str, participants: Vec<u64>) -> Command {
    Command::CoordinatorCommit {
        txn,
        writes: vec![Write::put(b(key), b("c"))],
        participants,
    }
}

#[test]
fn design_s5_1_a_coordinator_decision_is_kept_until_every_participant_acknowledged() {
    // Presumed abort: no record means abort, so a commit decision is never
    // dropped by age, only when every participant has it.
    let mut s = GroupState::new(10);
    let txn = TxnId::new(3, 1);
    assert_eq!(
        s.apply(&entry(1, 100, &coordinator_commit(txn, "k", vec![2, 5]))),
        Ok(Applied::Committed { txn, ts: ts(100) })
    );
    assert_eq!(value_at(&s, "k", 100).as_deref(), Some("c"));
    // A duplicate record writes nothing twice.
    assert_eq!(
        s.apply(&entry(2, 105, &coordinator_commit(txn, "k", vec![2, 5]))),
        Ok(Applied::Nothing)
    );
    s.apply(&entry(3, 10_000, &commit(7, &[("y", Some("1"))])))
        .unwrap();
    assert_eq!(s.committed(txn), None, "the age-pruned record is gone");
    let kept = s.coordinated_txn(txn).expect("the decision is kept");
    assert_eq!(
        (kept.commit_ts, kept.participants.clone()),
        (ts(100), vec![2, 5])
    );
    let restored = GroupState::decode(&s.encode(), 10).unwrap();
    assert_eq!(restored.coordinated_txn(txn), s.coordinated_txn(txn));
    s.apply(&entry(4, 10_001, &Command::Forget { txns: vec![txn] }))
        .unwrap();
    assert_eq!(s.coordinated().count(), 0);
}

#[test]
fn snapshot_keeps_decisions_until_their_deadline() {
    let mut s = GroupState::default();
    let txn = TxnId::new(3, 1);
    let abort = Command::Decide {
        txn,
        decision: Decision::Abort,
        deadline: ts(900),
    };
    s.apply(&entry(1, 100, &abort)).unwrap();
    let mut r = GroupState::decode(&s.encode(), DEFAULT_COMMIT_RECORD_RETENTION_NANOS).unwrap();
    assert_eq!(r.decided(txn), Some(Decision::Abort));
    assert_eq!(r.encode(), s.encode());
    assert_eq!(
        r.apply(&entry(2, 200, &prepare_due(txn, "x", 900))),
        Ok(Applied::PrepareVoid { txn })
    );
}

/// A tiny deterministic generator (xorshift), so the test needs no RNG
/// crate and replays exactly.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[test]
fn range_bytes_count_the_newest_live_versions_exactly_through_writes_deletes_gc_and_snapshots() {
    for seed in 1..=20u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut s = GroupState::default();
        let mut at = 10;
        for slot in 1..=200 {
            // One write per key and commit.
            let writes: std::collections::BTreeMap<String, Option<String>> = (0..1 + rng.next(4))
                .map(|_| {
                    let key = format!("k{}", rng.next(12));
                    let value = (rng.next(4) != 0).then(|| "v".repeat(rng.next(30) as usize));
                    (key, value)
                })
                .collect();
            let writes: Vec<(&str, Option<&str>)> = writes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .collect();
            at += 1 + rng.next(5);
            s.apply(&entry(slot, at, &commit(slot, &writes)))
                .expect("applies");
            if rng.next(10) == 0 {
                s.gc(ts(at - rng.next(10)));
            }
            assert_eq!(
                s.range_bytes(),
                s.store.recount_live_bytes(),
                "seed {seed} slot {slot}"
            );
        }
        // By hand: the newest version of each key, deletes counting zero.
        let by_hand: u64 = (0..12)
            .map(|k| format!("k{k}"))
            .filter_map(|k| s.read_latest(k.as_bytes()).map(|(_, v)| k.len() + v.len()))
            .map(|n| n as u64)
            .sum();
        assert_eq!(s.range_bytes(), by_hand, "seed {seed}");
        let restored = GroupState::decode(&s.encode(), 1_000).expect("decodes");
        assert_eq!(restored.range_bytes(), s.range_bytes(), "seed {seed}");
    }
}
