//! Protocol rules of online range splits (docs/design.md §9), one test
//! each, named after the rule. Driven by `meridian_txn::testkit::LocalCluster`:
//! a split applied at a replica creates the child group's replica on the
//! same node, as a node driver does.

use bytes::Bytes;
use meridian_participant::{RangeDescriptor, TxnId, Write};
use meridian_truetime::Timestamp;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{CcMode, ReadAt, ReadOp, ReadResult, Request, Response, TxnError};

const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);
const MS: u64 = 1_000_000;
const EPS: u64 = MS;
const RESEND: u64 = 20 * MS;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn cluster(groups: u64) -> LocalCluster {
    let mut c = LocalCluster::with_groups(groups, 3, T0, EPS, |cfg| {
        cfg.resend_interval_nanos = RESEND;
        cfg.prepare_timeout_nanos = 300 * MS;
    });
    c.await_leaders();
    c
}

fn leader(c: &LocalCluster, group: u64) -> u64 {
    c.serving_leader_in(group)
        .unwrap_or_else(|| panic!("group {group} has no serving leader"))
}

fn begin(c: &mut LocalCluster, group: u64) -> TxnId {
    let l = leader(c, group);
    match c.call_in(
        group,
        l,
        Request::Begin {
            priority: None,
            mode: CcMode::Locking,
            reserve: 0,
        },
    ) {
        Ok(Response::Begun { txn, .. }) => txn,
        other => panic!("begin: {other:?}"),
    }
}

/// Commits `writes` in one transaction at `group`'s leader.
fn put(c: &mut LocalCluster, group: u64, writes: &[(&str, &str)]) -> Timestamp {
    let txn = begin(c, group);
    let writes = writes.iter().map(|(k, v)| Write::put(b(k), b(v))).collect();
    let l = leader(c, group);
    match c.call_in(
        group,
        l,
        Request::Commit {
            txn,
            writes,
            participants: vec![],
        },
    ) {
        Ok(Response::Committed { commit_ts }) => commit_ts,
        other => panic!("commit: {other:?}"),
    }
}

fn split(
    c: &mut LocalCluster,
    group: u64,
    key: &str,
    child: u64,
) -> (RangeDescriptor, RangeDescriptor) {
    let l = leader(c, group);
    match c.call_in(group, l, Request::Split { key: b(key), child }) {
        Ok(Response::Split { left, right }) => (left, right),
        other => panic!("split: {other:?}"),
    }
}

fn snapshot_get(
    c: &mut LocalCluster,
    group: u64,
    node: u64,
    key: &str,
    at: Timestamp,
) -> Result<Option<Bytes>, TxnError> {
    let reads = vec![ReadOp::Get(b(key))];
    match c.call_in(
        group,
        node,
        Request::ReadOnly {
            at: ReadAt::Exact(at),
            reads,
        },
    ) {
        Ok(Response::ReadOnly { results, .. }) => match &results[..] {
            [ReadResult::Value(v)] => Ok(v.clone()),
            other => panic!("results {other:?}"),
        },
        Ok(other) => panic!("read-only: {other:?}"),
        Err(e) => Err(e),
    }
}

#[test]
fn split_moves_the_right_half_to_a_child_that_serves_it() {
    let mut c = cluster(1);
    let ts = put(&mut c, 1, &[("a", "1"), ("z", "2")]);
    let (left, right) = split(&mut c, 1, "m", 2);
    assert_eq!(
        (left.group, left.end.as_deref(), left.generation),
        (1, Some(&b"m"[..]), 2)
    );
    assert_eq!(
        (right.group, &right.start[..], right.end.as_deref()),
        (2, &b"m"[..], None)
    );
    c.run_for(50 * MS);
    for node in 1..=3 {
        assert!(c.has_replica(2, node), "node {node} has the child");
        assert_eq!(c.replica_in(2, node).state().descriptor(), &right);
        assert_eq!(c.replica_in(1, node).state().descriptor(), &left);
    }
    // History moved with the keys: a read at the old timestamp works there.
    for node in 1..=3 {
        assert_eq!(snapshot_get(&mut c, 2, node, "z", ts), Ok(Some(b("2"))));
        assert!(matches!(
            snapshot_get(&mut c, 1, node, "z", ts),
            Err(TxnError::OutsideRange { .. })
        ));
        assert_eq!(snapshot_get(&mut c, 1, node, "a", ts), Ok(Some(b("1"))));
    }
    c.await_leaders();
    put(&mut c, 2, &[("q", "3")]);
    put(&mut c, 1, &[("b", "4")]);
}
