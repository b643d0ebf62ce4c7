//! Protocol rules of scans inside read-write transactions (`Request::Scan`),
//! one test each, named after the rule and the paper section it checks:
//! phantom protection under two-phase locking (shared range locks under
//! wound-wait, Spanner OSDI'12 §2.1, §4.2.1), under optimistic concurrency
//! control (the scan's rows are validated at commit, FaRM SOSP'15 §4),
//! across groups (a guest scan's range lock is held to the outcome and
//! survives a participant failover through the prepare record,
//! docs/design.md §5.1), and the request's limits (§6). Driven by
//! `meridian_txn::testkit::LocalCluster`: real replicas, no faults but the
//! lost messages and leader changes a test asks for.

mod common;

use bytes::Bytes;
use common::*;
use meridian_participant::{Command, TxnId, Write};
use meridian_paxos::{Entry, Payload};
use meridian_truetime::Timestamp;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{
    AbortReason, CcMode, GroupMessage, Guest, InvalidRequest, Participant, Reply, Request,
    Response, TxnError,
};

/// Two-phase resends and outcome queries, shortened so tests run quickly.
const RESEND: u64 = 20 * MS;

/// Three replicas of one group, replica 1 serving as leader.
fn cluster() -> LocalCluster {
    let mut c = LocalCluster::new(3, T0, EPS, |_| {});
    c.elect(1);
    c
}

/// Three groups of three replicas, each with a serving leader.
fn groups() -> LocalCluster {
    let mut c = LocalCluster::with_groups(3, 3, T0, EPS, |cfg| {
        cfg.resend_interval_nanos = RESEND;
        cfg.prepare_timeout_nanos = 300 * MS;
    });
    c.await_leaders();
    c
}

fn scan_req(
    txn: TxnId,
    start: &str,
    end: Option<&str>,
    limit: usize,
    guest: Option<Guest>,
) -> Request {
    Request::Scan {
        txn,
        start: b(start),
        end: end.map(b),
        limit,
        guest,
    }
}

/// The rows of a scan's answer, as strings.
fn rows(r: &Reply) -> Vec<(String, String)> {
    match r {
        Ok(Response::Rows { rows, .. }) => rows
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect(),
        other => panic!("scan failed: {other:?}"),
    }
}

fn row(k: &str, v: &str) -> (String, String) {
    (k.into(), v.into())
}

fn wait_for(c: &mut LocalCluster, id: u64, max_ms: u64) -> Option<Reply> {
    for _ in 0..max_ms {
        if let Some(r) = c.take_reply(id) {
            return Some(r);
        }
        c.run_for(MS);
    }
    None
}

#[test]
fn spanner_s4_2_1_an_insert_into_a_range_a_locking_scan_read_waits_for_the_scanner() {
    let mut c = cluster();
    put(&mut c, &[("a", "1"), ("c", "3")]);
    let scanner = begin(&mut c, CcMode::Locking, Some(10));
    let r = c.call(1, scan_req(scanner, "a", Some("c"), 10, None));
    assert_eq!(rows(&r), vec![row("a", "1")]);
    // A younger transaction inserts b into the scanned range: it must wait
    // for the scanner's range lock, which is held until the scanner ends.
    let inserter = begin(&mut c, CcMode::Locking, Some(20));
    let id = c.submit(1, commit_req(inserter, &[("b", "2")]));
    c.run_for(50 * MS);
    assert!(
        c.reply(id).is_none(),
        "an insert into a range a locking scan read must wait (no phantom)"
    );
    // The scan repeats: no phantom appeared.
    let again = c.call(1, scan_req(scanner, "a", Some("c"), 10, None));
    assert_eq!(rows(&again), vec![row("a", "1")]);
    // Writes outside the range are not held up.
    put(&mut c, &[("c", "33")]);
    let s = commit_ts(&c.call(1, commit_req(scanner, &[])));
    let r = wait_for(&mut c, id, 1_000).expect("the inserter proceeds once the scanner ends");
    assert!(commit_ts(&r) > s, "the insert is serialized after the scan");
}

#[test]
fn spanner_s4_2_1_an_older_inserter_wounds_a_younger_scanner() {
    let mut c = cluster();
    put(&mut c, &[("a", "1")]);
    let scanner = begin(&mut c, CcMode::Locking, Some(20));
    rows(&c.call(1, scan_req(scanner, "a", None, 10, None)));
    let inserter = begin(&mut c, CcMode::Locking, Some(10));
    commit_ts(&c.call(1, commit_req(inserter, &[("b", "2")])));
    assert_eq!(
        aborted(&c.call(1, scan_req(scanner, "a", None, 10, None))),
        AbortReason::Wounded
    );
}

#[test]
fn spanner_s4_2_1_a_locking_scan_waits_for_a_writer_inside_its_range_and_reads_its_write() {
    let mut c = cluster();
    let writer = begin(&mut c, CcMode::Locking, Some(10));
    // The writer holds b exclusively from its commit until the commit has
    // applied (after its commit wait).
    let w = c.submit(1, commit_req(writer, &[("b", "2")]));
    let scanner = begin(&mut c, CcMode::Locking, Some(20));
    let s = c.submit(1, scan_req(scanner, "a", Some("z"), 10, None));
    let committed = commit_ts(&wait_for(&mut c, w, 1_000).expect("the writer commits"));
    assert!(committed > Timestamp::ZERO);
    let r = wait_for(&mut c, s, 1_000).expect("the scan is answered once the writer ends");
    assert_eq!(rows(&r), vec![row("b", "2")]);
}

#[test]
fn farm_s4_an_insert_into_a_range_an_optimistic_scan_read_fails_its_validation() {
    let mut c = cluster();
    put(&mut c, &[("a", "1")]);
    let t = begin(&mut c, CcMode::Optimistic, None);
    // Lock-free: answered at once.
    let r = c.call_now(1, scan_req(t, "a", Some("c"), 10, None));
    assert_eq!(rows(&r), vec![row("a", "1")]);
    assert!(c.replica(1).waits_for().is_empty());
    // A phantom appears between the scan and the commit.
    put(&mut c, &[("b", "2")]);
    assert_eq!(
        aborted(&c.call(1, commit_req(t, &[("z", "x")]))),
        AbortReason::Conflict
    );
    // Without writes too (the read-only path validates at commit).
    let t = begin(&mut c, CcMode::Optimistic, None);
    rows(&c.call(1, scan_req(t, "a", Some("c"), 10, None)));
    put(&mut c, &[("a", "11")]);
    assert_eq!(
        aborted(&c.call(1, commit_req(t, &[]))),
        AbortReason::Conflict
    );
    // A write outside the range, or past a limit-truncated scan's last
    // row, changes nothing the scan saw.
    let t = begin(&mut c, CcMode::Optimistic, None);
    rows(&c.call(1, scan_req(t, "a", Some("z"), 1, None)));
    put(&mut c, &[("zz", "0"), ("b", "22")]);
    commit_ts(&c.call(1, commit_req(t, &[("y", "1")])));
}

#[test]
fn farm_s4_a_validated_scan_holds_its_range_until_the_outcome() {
    // A 50 ms uncertainty keeps the committing scanner in its commit wait.
    let mut c = LocalCluster::new(3, T0, 50 * MS, |_| {});
    c.elect(1);
    let t = begin(&mut c, CcMode::Optimistic, Some(20));
    rows(&c.call(1, scan_req(t, "a", Some("c"), 10, None)));
    let id = c.submit(1, commit_req(t, &[("z", "1")]));
    c.run_for(2 * MS);
    assert!(c.reply(id).is_none(), "still in its commit wait");
    let older = begin(&mut c, CcMode::Locking, Some(10));
    let w = c.submit(1, commit_req(older, &[("b", "2")]));
    c.run_for(2 * MS);
    assert!(
        c.reply(w).is_none(),
        "an insert into a validated range waits for the outcome"
    );
    let s = commit_ts(&wait_for(&mut c, id, 1_000).expect("the scanner commits"));
    let r = wait_for(&mut c, w, 1_000).expect("the inserter follows");
    assert!(commit_ts(&r) > s);
}

fn command(e: &Entry) -> Option<Command> {
    match &e.payload {
        Payload::Command(data) => Command::decode(data).ok(),
        _ => None,
    }
}

#[test]
fn design_s5_1_a_prepare_record_holds_the_scanned_ranges_and_a_new_participant_leader_rebuilds_them()
 {
    let mut c = groups();
    let (t1, p1) = begin_in(&mut c, 1, CcMode::Locking, None);
    let l2 = leader(&c, 2);
    let guest = Guest {
        priority: p1,
        term: None,
        mode: CcMode::Locking,
    };
    let r = c.call_in(2, l2, scan_req(t1, "a", Some("c"), 10, Some(guest)));
    let Ok(Response::Rows { rows: got, term }) = r else {
        panic!("guest scan failed: {r:?}");
    };
    assert!(got.is_empty());
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Decide { .. }));
    let id = c.submit_in(
        1,
        leader(&c, 1),
        Request::Commit {
            txn: t1,
            writes: vec![Write::put(b("x"), b("1"))],
            participants: vec![Participant {
                group: 2,
                term: Some(term),
                writes: vec![],
            }],
        },
    );
    commit_ts(&wait_for(&mut c, id, 1_000).expect("t1 commits at its coordinator"));
    let ranges = c
        .applied_in(2, l2)
        .iter()
        .find_map(|e| match command(e) {
            Some(Command::Prepare { txn, ranges, .. }) if txn == t1 => Some(ranges),
            _ => None,
        })
        .expect("group 2 logged t1's prepare record");
    assert_eq!(ranges, vec![(b("a"), Some(b("c")))]);
    // Group 2 fails over while t1 is prepared there: the new leader
    // rebuilds the range lock, and an insert into the range waits.
    let new2 = l2 % 3 + 1;
    c.isolate_in(2, l2);
    c.elect_in(2, new2);
    c.heal();
    assert!(c.replica_in(2, new2).state().prepared_txn(t1).is_some());
    let (t2, _) = begin_in(&mut c, 2, CcMode::Locking, None);
    let w = c.submit_in(2, new2, commit_req(t2, &[("b", "2")]));
    c.run_for(5 * RESEND);
    assert!(
        c.reply(w).is_none(),
        "the scanned range must stay locked across the failover"
    );
    c.deliver_all_group_messages();
    let r = wait_for(&mut c, w, 1_000).expect("the insert proceeds after the outcome");
    commit_ts(&r);
}

#[test]
fn design_s5_1_a_participant_that_scanned_only_an_empty_range_prepares_and_survives_failover() {
    let mut c = groups();
    let (t1, p1) = begin_in(&mut c, 1, CcMode::Locking, None);
    let l2 = leader(&c, 2);
    let guest = Guest {
        priority: p1,
        term: None,
        mode: CcMode::Locking,
    };
    // An inverted range: no rows, and nothing to lock.
    let r = c.call_in(2, l2, scan_req(t1, "z", Some("a"), 10, Some(guest)));
    let Ok(Response::Rows { rows: got, term }) = r else {
        panic!("guest scan failed: {r:?}");
    };
    assert!(got.is_empty());
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Decide { .. }));
    let id = c.submit_in(
        1,
        leader(&c, 1),
        Request::Commit {
            txn: t1,
            writes: vec![Write::put(b("x"), b("1"))],
            participants: vec![Participant {
                group: 2,
                term: Some(term),
                writes: vec![],
            }],
        },
    );
    commit_ts(&wait_for(&mut c, id, 1_000).expect("t1 commits"));
    // A new leader of group 2 rebuilds a prepared transaction that holds
    // nothing there.
    let new2 = l2 % 3 + 1;
    c.isolate_in(2, l2);
    c.elect_in(2, new2);
    c.heal();
    assert!(c.replica_in(2, new2).state().prepared_txn(t1).is_some());
    c.deliver_all_group_messages();
    c.run_for(10 * RESEND);
    assert!(c.replica_in(2, new2).state().prepared_txn(t1).is_none());
}

#[test]
fn spanner_s4_2_1_a_guest_scan_holds_its_range_at_the_other_group_until_the_outcome() {
    let mut c = groups();
    let (t1, p1) = begin_in(&mut c, 1, CcMode::Locking, None);
    let l2 = leader(&c, 2);
    let guest = Guest {
        priority: p1,
        term: None,
        mode: CcMode::Locking,
    };
    let r = c.call_in(2, l2, scan_req(t1, "a", None, 10, Some(guest)));
    assert!(matches!(r, Ok(Response::Rows { .. })), "{r:?}");
    // A younger insert at group 2 waits for t1 to end.
    let (t2, _) = begin_in(&mut c, 2, CcMode::Locking, None);
    let w = c.submit_in(2, l2, commit_req(t2, &[("q", "1")]));
    c.run_for(5 * RESEND);
    assert!(
        c.reply(w).is_none(),
        "the guest's range lock holds the insert"
    );
    let abort = c.call_in(1, leader(&c, 1), Request::Abort { txn: t1 });
    assert!(matches!(abort, Ok(Response::Aborted)), "{abort:?}");
    let r = c.call_in(2, l2, Request::Abort { txn: t1 });
    assert!(matches!(r, Ok(Response::Aborted)), "{r:?}");
    commit_ts(&wait_for(&mut c, w, 1_000).expect("the insert proceeds"));
}

#[test]
fn design_s6_scan_bounds_and_limits_get_typed_errors_and_change_nothing() {
    let mut c = cluster();
    put(&mut c, &[("a", "1")]);
    let t = begin(&mut c, CcMode::Locking, None);
    let long = "k".repeat(4097);
    let limit = meridian_participant::mvcc::MAX_SCAN_ROWS;
    for (req, what) in [
        (scan_req(t, &long, None, 10, None), "start too long"),
        (scan_req(t, "a", Some(""), 10, None), "empty end"),
        (scan_req(t, "a", Some(&long), 10, None), "end too long"),
        (scan_req(t, "a", None, limit + 1, None), "limit too large"),
    ] {
        let r = c.call(1, req);
        assert!(matches!(r, Err(TxnError::Invalid(_))), "{what}: {r:?}");
        assert!(!r.as_ref().unwrap_err().is_retryable());
    }
    assert_eq!(
        c.call(1, scan_req(t, "a", None, limit + 1, None)),
        Err(TxnError::Invalid(InvalidRequest::ScanLimitTooLarge {
            limit: limit + 1,
            max: limit
        }))
    );
    assert!(c.replica(1).waits_for().is_empty());
    // An empty start scans from the first key; an inverted range is empty.
    assert_eq!(
        rows(&c.call(1, scan_req(t, "", None, limit, None))),
        vec![row("a", "1")]
    );
    assert!(rows(&c.call(1, scan_req(t, "z", Some("a"), 10, None))).is_empty());
    // A scan counts one operation plus one per row.
    let keys: Vec<Bytes> = (0..996).map(|i| b(&format!("k{i}"))).collect();
    let r = c.call(
        1,
        Request::Read {
            txn: t,
            keys,
            guest: None,
        },
    );
    assert!(matches!(r, Ok(Response::Read { .. })), "{r:?}");
    // Two scans (one row, no row) and 996 keys: 999 operations; a scan of
    // one more row would make 1001.
    assert!(matches!(
        c.call(1, scan_req(t, "a", Some("b"), 10, None)),
        Err(TxnError::Invalid(InvalidRequest::TooManyOperations {
            count: 1001,
            ..
        }))
    ));
    assert!(matches!(
        c.call(1, scan_req(t, "b", Some("c"), 10, None)),
        Ok(Response::Rows { .. })
    ));
    // The transaction lives on.
    commit_ts(&c.call(1, commit_req(t, &[])));
}
