//! Leadership hand-over under transactions (docs/design.md §3): a leader
//! that hands over behaves, for the transactions it holds, exactly as at
//! any step-down — unprepared ones abort retryably, a commit already in
//! the log keeps its outcome — and nothing committed is lost or doubled.

mod common;

use common::*;
use meridian_paxos::Role;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{
    AbortReason, CcMode, ReadAt, ReadOp, ReadResult, Reply, Request, Response, TxnError,
};

fn cluster() -> LocalCluster {
    let mut c = LocalCluster::new(3, T0, EPS, |_| {});
    c.elect(1);
    c
}

fn read(c: &mut LocalCluster, node: u64, txn: meridian_participant::TxnId, k: &str) -> Reply {
    c.call(
        node,
        Request::Read {
            txn,
            keys: vec![b(k)],
            guest: None,
        },
    )
}

/// The value of `k` by a strong read-only transaction at `node`.
fn strong(c: &mut LocalCluster, node: u64, k: &str) -> Option<bytes::Bytes> {
    match c.call(
        node,
        Request::ReadOnly {
            at: ReadAt::Strong,
            reads: vec![ReadOp::Get(b(k))],
        },
    ) {
        Ok(Response::ReadOnly { results, .. }) => match &results[0] {
            ReadResult::Value(v) => v.clone(),
            other => panic!("a get returned {other:?}"),
        },
        other => panic!("strong read failed: {other:?}"),
    }
}

#[test]
fn hand_over_with_transactions_in_flight_keeps_them_correct() {
    let mut c = cluster();
    put(&mut c, &[("a", "0"), ("b", "0")]);
    // Two transactions hold read locks at the leader.
    let t1 = begin(&mut c, CcMode::Locking, None);
    let t2 = begin(&mut c, CcMode::Locking, None);
    assert!(read(&mut c, 1, t1, "a").is_ok());
    assert!(read(&mut c, 1, t2, "b").is_ok());
    // 3 is cut off and misses a commit: the hand-over waits for it, and
    // meanwhile the leader proposes nothing, so t2's commit aborts,
    // retryably.
    c.isolate(3);
    put(&mut c, &[("c", "0")]);
    c.hand_over(1, Some(3));
    assert_eq!(c.replica(1).paxos().handing_over_to(), Some(3));
    let r = c.call(1, commit_req(t2, &[("b", "2")]));
    assert_eq!(aborted(&r), AbortReason::LeaderChanged);
    assert!(r.unwrap_err().is_retryable());
    // 3 catches up and takes over; 1 has stepped down and names it.
    c.heal();
    c.run_for(200 * MS);
    assert_eq!(c.replica(3).paxos().role(), Role::Leader);
    assert_eq!(c.replica(1).paxos().role(), Role::Follower);
    assert!(!c.replica(1).is_leading());
    assert_eq!(
        c.call(1, commit_req(t1, &[("a", "1")])),
        Err(TxnError::NotLeader { leader: Some(3) })
    );
    // 3 serves only once the old lease is over...
    assert_eq!(
        c.call_now(3, commit_req(t1, &[("a", "1")])),
        Err(TxnError::LeaderNotReady)
    );
    c.run_for(2_500 * MS);
    assert_eq!(c.serving_leader(), Some(3));
    // ...and its term does not know t1: the commit there aborts. Retries
    // commit, and nothing of the aborted attempts is visible.
    assert_eq!(
        aborted(&c.call(3, commit_req(t1, &[("a", "1")]))),
        AbortReason::LeaderChanged
    );
    assert_eq!(strong(&mut c, 3, "a"), Some(b("0")));
    assert_eq!(strong(&mut c, 3, "b"), Some(b("0")));
    let retry = begin(&mut c, CcMode::Locking, None);
    assert!(read(&mut c, 3, retry, "a").is_ok());
    commit_ts(&c.call(3, commit_req(retry, &[("a", "1"), ("b", "2")])));
    assert_eq!(strong(&mut c, 3, "a"), Some(b("1")));
    assert_eq!(strong(&mut c, 3, "b"), Some(b("2")));
}

#[test]
fn a_commit_in_the_log_when_the_leader_hands_over_keeps_its_outcome() {
    let mut c = cluster();
    let t = begin(&mut c, CcMode::Locking, None);
    assert!(read(&mut c, 1, t, "k").is_ok());
    // The commit record is proposed and chosen; its reply waits for commit
    // wait. The hand-over completes at once (every follower holds the log).
    let id = c.submit(1, commit_req(t, &[("k", "v")]));
    c.hand_over(1, None);
    assert_eq!(c.replica(1).paxos().role(), Role::Follower);
    c.run_for(3_000 * MS);
    let leader = c.serving_leader().expect("the target serves");
    assert_ne!(leader, 1);
    let v = strong(&mut c, leader, "k");
    // Chosen before the step-down, it is answered committed by the old
    // leader once its commit wait is over, and the new leader holds it.
    assert!(
        matches!(c.reply(id), Some(Ok(Response::Committed { .. }))),
        "{:?}",
        c.reply(id)
    );
    assert_eq!(v, Some(b("v")));
}
