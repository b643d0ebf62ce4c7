//! Helpers shared by the transaction rule tests that drive
//! `meridian_txn::testkit::LocalCluster` with both concurrency modes.

#![allow(dead_code)]

use bytes::Bytes;
use meridian_participant::{Priority, TxnId, Write};
use meridian_truetime::Timestamp;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{AbortReason, CcMode, Reply, Request, Response, TxnError};

/// The tests' start of time.
pub const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);
/// A millisecond in nanoseconds.
pub const MS: u64 = 1_000_000;
/// Clock uncertainty of the default clusters.
pub const EPS: u64 = MS;

pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The serving leader of `group`.
pub fn leader(c: &LocalCluster, group: u64) -> u64 {
    c.serving_leader_in(group)
        .unwrap_or_else(|| panic!("group {group} has no serving leader"))
}

/// Begins a transaction at `group`'s leader, with an explicit wound-wait
/// priority (lower is older) if given.
pub fn begin_in(
    c: &mut LocalCluster,
    group: u64,
    mode: CcMode,
    priority: Option<u64>,
) -> (TxnId, Priority) {
    let priority = priority.map(|p| Priority::new(Timestamp(p)));
    let l = leader(c, group);
    match c.call_in(
        group,
        l,
        Request::Begin {
            priority,
            mode,
            reserve: 0,
        },
    ) {
        Ok(Response::Begun { txn, priority, .. }) => (txn, priority),
        other => panic!("begin failed: {other:?}"),
    }
}

/// Begins a transaction at group 1's leader.
pub fn begin(c: &mut LocalCluster, mode: CcMode, priority: Option<u64>) -> TxnId {
    begin_in(c, 1, mode, priority).0
}

/// Puts of `(key, value)` pairs.
pub fn puts(writes: &[(&str, &str)]) -> Vec<Write> {
    writes.iter().map(|(k, v)| Write::put(b(k), b(v))).collect()
}

/// A one-group commit of `writes`.
pub fn commit_req(txn: TxnId, writes: &[(&str, &str)]) -> Request {
    Request::Commit {
        txn,
        writes: puts(writes),
        participants: vec![],
    }
}

/// The commit timestamp of a committed answer.
pub fn commit_ts(r: &Reply) -> Timestamp {
    match r {
        Ok(Response::Committed { commit_ts }) => *commit_ts,
        other => panic!("commit failed: {other:?}"),
    }
}

/// Why an aborted answer aborted.
pub fn aborted(r: &Reply) -> AbortReason {
    match r {
        Err(TxnError::Aborted { reason, .. }) => *reason,
        other => panic!("expected an abort, got {other:?}"),
    }
}

/// Commits `writes` at group 1 in a fresh locking transaction.
pub fn put(c: &mut LocalCluster, writes: &[(&str, &str)]) -> Timestamp {
    let txn = begin(c, CcMode::Locking, None);
    commit_ts(&c.call(1, commit_req(txn, writes)))
}
