//! Reserved transaction ids (docs/design.md §5.1): a `Begin` may reserve
//! further ids for its client's later transactions, and a reserved id is
//! begun by its first request at its home group (a read or scan naming
//! it as a guest), which saves the `Begin` round trip. The rule under
//! test: the leader that reserved an id begins it at most once, so no
//! copy of a first request, however late, revives a transaction that
//! ended; a reserved id dies with its term; and a status answer for one
//! never begun is final.

mod common;

use common::{EPS, MS, T0, aborted, b};
use meridian_participant::{Priority, TxnId};
use meridian_truetime::Timestamp;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{
    AbortReason, CcMode, Guest, MAX_RESERVE_PER_BEGIN, Reply, Request, Response, TxnStatus,
};

/// Three replicas with replica 1 serving as leader.
fn cluster() -> LocalCluster {
    let mut c = LocalCluster::new(3, T0, EPS, |_| {});
    c.elect(1);
    c
}

/// Begins a transaction at `node` reserving `reserve` more ids: the
/// transaction, its priority and the reserved ids.
fn begin(c: &mut LocalCluster, node: u64, reserve: u32) -> (TxnId, Priority, Vec<TxnId>) {
    let begin = Request::Begin {
        priority: None,
        mode: CcMode::Locking,
        reserve,
    };
    match c.call(node, begin) {
        Ok(Response::Begun {
            txn,
            priority,
            reserved,
        }) => {
            let ids = (1..=u64::from(reserved))
                .map(|i| TxnId::new(txn.origin, txn.seq + i))
                .collect();
            (txn, priority, ids)
        }
        other => panic!("begin failed: {other:?}"),
    }
}

/// A first request at the home group: a read of `keys` naming `txn` as a
/// guest that has met no term there yet.
fn first_read(c: &mut LocalCluster, node: u64, txn: TxnId, keys: &[&str]) -> Reply {
    c.call(
        node,
        Request::Read {
            txn,
            keys: keys.iter().map(|k| b(k)).collect(),
            guest: Some(Guest {
                priority: Priority::new(Timestamp(T0.as_nanos() + txn.seq)),
                term: None,
                mode: CcMode::Locking,
            }),
        },
    )
}

fn commit(c: &mut LocalCluster, node: u64, txn: TxnId, writes: &[(&str, &str)]) -> Reply {
    c.call(node, common::commit_req(txn, writes))
}

#[test]
fn design_s5_1_a_begin_reserves_the_ids_it_names_up_to_the_bound() {
    let mut c = cluster();
    let (t, _, ids) = begin(&mut c, 1, 3);
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|i| i.origin == t.origin));
    // The next Begin's id comes after the reserved ones.
    let (next, _, none) = begin(&mut c, 1, 0);
    assert!(none.is_empty());
    assert_eq!(next.seq, t.seq + 4);
    let (_, _, many) = begin(&mut c, 1, 10_000);
    assert_eq!(many.len(), MAX_RESERVE_PER_BEGIN as usize);
}

#[test]
fn design_s5_1_a_reserved_id_is_begun_by_its_first_request_and_commits() {
    let mut c = cluster();
    let (_, _, ids) = begin(&mut c, 1, 2);
    let txn = ids[0];
    match first_read(&mut c, 1, txn, &["k"]) {
        Ok(Response::Read { values, .. }) => assert_eq!(values, vec![None]),
        other => panic!("the first request should begin the reserved id: {other:?}"),
    }
    // Begun: its later requests name it as the home group's own.
    assert_eq!(c.replica(1).active_txns(), 2);
    match commit(&mut c, 1, txn, &[("k", "v")]) {
        Ok(Response::Committed { .. }) => {}
        other => panic!("commit failed: {other:?}"),
    }
}

#[test]
fn design_s5_1_a_reserved_id_is_begun_at_most_once() {
    let mut c = cluster();
    let (t, _, ids) = begin(&mut c, 1, 2);
    assert_eq!(c.call(1, Request::Abort { txn: t }), Ok(Response::Aborted));
    let txn = ids[0];
    first_read(&mut c, 1, txn, &["k"]).expect("begun");
    commit(&mut c, 1, txn, &[("k", "v")]).expect("committed");
    // A late copy of its first request must not begin it again: the
    // transaction committed (its record is kept, not its table entry).
    assert_eq!(
        aborted(&first_read(&mut c, 1, txn, &["k"])),
        AbortReason::Unknown
    );
    assert_eq!(c.replica(1).active_txns(), 0);
    // Nor may one that aborted, or an id never issued.
    let other = ids[1];
    first_read(&mut c, 1, other, &["j"]).expect("begun");
    assert_eq!(
        c.call(1, Request::Abort { txn: other }),
        Ok(Response::Aborted)
    );
    assert_eq!(
        aborted(&first_read(&mut c, 1, other, &["j"])),
        AbortReason::ClientAbort
    );
    let unissued = TxnId::new(txn.origin, txn.seq + 100);
    aborted(&first_read(&mut c, 1, unissued, &["j"]));
    assert_eq!(c.replica(1).active_txns(), 0);
}

#[test]
fn design_s5_1_reserved_ids_die_with_their_term() {
    let mut c = cluster();
    let (_, _, ids) = begin(&mut c, 1, 1);
    c.isolate(1);
    c.elect(2);
    assert_eq!(
        aborted(&first_read(&mut c, 2, ids[0], &["k"])),
        AbortReason::LeaderChanged
    );
    assert_eq!(c.replica(2).active_txns(), 0);
}

#[test]
fn design_s5_1_aborting_a_reserved_id_never_begun_retires_it() {
    let mut c = cluster();
    let (t, _, ids) = begin(&mut c, 1, 1);
    assert_eq!(c.call(1, Request::Abort { txn: t }), Ok(Response::Aborted));
    let txn = ids[0];
    assert_eq!(c.call(1, Request::Abort { txn }), Ok(Response::Aborted));
    // A first read still in flight when the client aborted must not begin
    // the transaction and hold its locks until the inactivity timeout.
    aborted(&first_read(&mut c, 1, txn, &["k"]));
    assert_eq!(c.replica(1).active_txns(), 0);
    // So another transaction takes the key's lock at once.
    let (other, _, _) = begin(&mut c, 1, 0);
    match c.call(
        1,
        Request::Read {
            txn: other,
            keys: vec![b("k")],
            guest: None,
        },
    ) {
        Ok(Response::Read { .. }) => {}
        reply => panic!("the retired id's read held the lock: {reply:?}"),
    }
    assert_eq!(
        c.call(1, Request::TxnStatus { txn }),
        Ok(Response::TxnStatus(TxnStatus::Aborted))
    );
}

#[test]
fn design_s5_5_status_of_a_reserved_id_never_begun_is_aborted_for_good() {
    let mut c = cluster();
    let (_, _, ids) = begin(&mut c, 1, 1);
    let txn = ids[0];
    assert_eq!(
        c.call(1, Request::TxnStatus { txn }),
        Ok(Response::TxnStatus(TxnStatus::Aborted))
    );
    // The answer holds: the id can no longer be begun.
    aborted(&first_read(&mut c, 1, txn, &["k"]));
    c.run_for(10 * MS);
    assert_eq!(
        c.call(1, Request::TxnStatus { txn }),
        Ok(Response::TxnStatus(TxnStatus::Aborted))
    );
}
