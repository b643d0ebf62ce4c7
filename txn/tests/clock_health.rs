//! A node whose clock is outside its ε bound refuses to lead or serve
//! (docs/design.md §2; CockroachDB's behaviour on clock offset). The driver
//! measures the clock against its peers and reports `Input::ClockHealth`;
//! these tests name the rules the group replica keeps.

use bytes::Bytes;
use meridian_participant::{TxnId, Write};
use meridian_truetime::Timestamp;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{
    CcMode, ReadAt, ReadOp, ReadResult, Reply, Request, Response, TxnError, TxnStatus,
};

const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);
const MS: u64 = 1_000_000;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn cluster() -> LocalCluster {
    let mut c = LocalCluster::new(3, T0, MS, |_| {});
    c.elect(1);
    c
}

fn begin_req() -> Request {
    Request::Begin {
        priority: None,
        mode: CcMode::Locking,
        reserve: 0,
    }
}

fn begin(c: &mut LocalCluster, node: u64) -> TxnId {
    match c.call(node, begin_req()) {
        Ok(Response::Begun { txn, .. }) => txn,
        other => panic!("begin failed: {other:?}"),
    }
}

fn commit_req(txn: TxnId, k: &str, v: &str) -> Request {
    Request::Commit {
        txn,
        writes: vec![Write::put(b(k), b(v))],
        participants: vec![],
    }
}

fn strong_get(k: &str) -> Request {
    Request::ReadOnly {
        at: ReadAt::Strong,
        reads: vec![ReadOp::Get(b(k))],
    }
}

fn value(r: &Reply) -> Option<Bytes> {
    match r {
        Ok(Response::ReadOnly { results, .. }) => match &results[0] {
            ReadResult::Value(v) => v.clone(),
            other => panic!("a get returned {other:?}"),
        },
        other => panic!("read failed: {other:?}"),
    }
}

fn is_clock_unhealthy(r: &Reply) -> bool {
    matches!(r, Err(e @ TxnError::ClockUnhealthy { .. }) if e.is_retryable())
}

/// Runs until some replica serves; returns it.
fn await_leader(c: &mut LocalCluster) -> u64 {
    for _ in 0..10_000 {
        if let Some(l) = c.serving_leader() {
            return l;
        }
        c.run_for(MS);
    }
    panic!("no replica became a serving leader");
}

#[test]
fn design_s2_a_leader_whose_clock_leaves_its_bound_steps_down_and_refuses_every_request() {
    let mut c = cluster();
    let txn = begin(&mut c, 1);
    c.set_clock_health(1, false);
    assert!(!c.replica(1).is_leading(), "it steps down at once");
    assert!(!c.replica(1).clock_healthy());
    for req in [
        begin_req(),
        commit_req(txn, "k", "v"),
        strong_get("k"),
        Request::TxnStatus { txn },
    ] {
        let r = c.call_now(1, req);
        assert!(is_clock_unhealthy(&r), "{r:?}");
    }
    // Another replica takes over once the lease has lapsed; the old
    // term's unprepared transaction is gone with its locks.
    let l = await_leader(&mut c);
    assert_ne!(l, 1, "a replica whose clock is out of bound never leads");
    assert_eq!(
        c.call(l, Request::TxnStatus { txn }),
        Ok(Response::TxnStatus(TxnStatus::Aborted))
    );
    let t = begin(&mut c, l);
    assert!(matches!(
        c.call(l, commit_req(t, "k", "v")),
        Ok(Response::Committed { .. })
    ));
    c.run_for(3_000 * MS);
    assert!(!c.replica(1).is_leading());
    assert!(matches!(
        c.call_now(1, strong_get("k")),
        Err(TxnError::ClockUnhealthy { .. })
    ));
}

#[test]
fn design_s2_a_replica_whose_clock_is_out_of_bound_applies_nothing_and_serves_no_read() {
    let mut c = cluster();
    c.set_clock_health(3, false);
    let applied = c.replica(3).state().applied_slot();
    let txn = begin(&mut c, 1);
    assert!(matches!(
        c.call(1, commit_req(txn, "k", "v")),
        Ok(Response::Committed { .. })
    ));
    c.run_for(500 * MS);
    // Commit wait is judged on its clock: it applies nothing, and shows
    // nothing, while that clock is out of bound.
    assert_eq!(c.replica(3).state().applied_slot(), applied);
    assert!(c.replica(3).unapplied_len() > 0, "it still accepts entries");
    assert!(is_clock_unhealthy(&c.call_now(3, strong_get("k"))));
    c.set_clock_health(3, true);
    c.run_for(100 * MS);
    assert!(c.replica(3).state().applied_slot() > applied);
    assert_eq!(value(&c.call(3, strong_get("k"))), Some(b("v")));
}

#[test]
fn design_s2_a_read_waiting_for_safe_time_fails_when_the_clock_leaves_its_bound() {
    let mut c = cluster();
    let later = c.now().latest.saturating_add(200 * MS);
    let id = c.submit(
        3,
        Request::ReadOnly {
            at: ReadAt::Exact(later),
            reads: vec![ReadOp::Get(b("k"))],
        },
    );
    assert!(c.reply(id).is_none(), "it waits for safe time");
    c.set_clock_health(3, false);
    assert!(is_clock_unhealthy(c.reply(id).expect("answered at once")));
}

#[test]
fn design_s2_back_in_bound_a_replica_leads_and_serves_again() {
    let mut c = cluster();
    c.set_clock_health(1, false);
    let l = await_leader(&mut c);
    c.set_clock_health(1, true);
    assert!(c.replica(1).clock_healthy());
    c.run_for(100 * MS);
    assert!(matches!(
        c.call(
            1,
            Request::TxnStatus {
                txn: TxnId::new(1, 1)
            }
        ),
        Err(TxnError::NotLeader { .. })
    ));
    // It may lead again: elected, it serves once the leases are out.
    c.isolate(l);
    c.elect(1);
    let txn = begin(&mut c, 1);
    assert!(matches!(
        c.call(1, commit_req(txn, "k", "again")),
        Ok(Response::Committed { .. })
    ));
    assert_eq!(value(&c.call(1, strong_get("k"))), Some(b("again")));
}
