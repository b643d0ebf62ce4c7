//! Protocol rules of online range splits (docs/design.md §9), one test
//! each, named after the rule. Driven by `meridian_txn::testkit::LocalCluster`:
//! a split applied at a replica creates the child group's replica on the
//! same node, as a node driver does.

use bytes::Bytes;
use meridian_participant::{RangeDescriptor, TxnId, Write};
use meridian_truetime::Timestamp;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{
    CcMode, GroupMessage, Participant, ReadAt, ReadOp, ReadResult, Request, Response, TxnError,
};

const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);
const MS: u64 = 1_000_000;
const EPS: u64 = MS;
const RESEND: u64 = 20 * MS;
/// Long enough for followers to learn of every chosen entry (a heartbeat
/// or an idle close carries the commit index).
const CATCH_UP: u64 = 150 * MS;
/// Commit records kept briefly, so that an outcome query that comes after
/// the coordinator forgot a decision meets presumed abort, not the record.
const SHORT_RETENTION: u64 = 100 * MS;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A deliberate bug to plant (simulator feature only), or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bug {
    None,
    #[cfg(feature = "planted-bugs")]
    Txn(meridian_txn::PlantedBug),
    #[cfg(feature = "planted-bugs")]
    Paxos(meridian_paxos::PlantedBug),
}

fn cluster(groups: u64) -> LocalCluster {
    cluster_with(groups, Bug::None)
}

fn cluster_with(groups: u64, bug: Bug) -> LocalCluster {
    let mut c = LocalCluster::with_groups(groups, 3, T0, EPS, move |cfg| {
        cfg.resend_interval_nanos = RESEND;
        cfg.commit_record_retention_nanos = SHORT_RETENTION;
        cfg.prepare_timeout_nanos = 300 * MS;
        match bug {
            Bug::None => {}
            #[cfg(feature = "planted-bugs")]
            Bug::Txn(b) => cfg.planted_bug = Some(b),
            #[cfg(feature = "planted-bugs")]
            Bug::Paxos(b) => cfg.paxos.planted_bug = Some(b),
        }
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

/// Rule `split-child-lease-overlap` (docs/design.md §9): each child replica
/// starts with its node's parent-replica promise and lease grant, so a
/// candidate other than the inherited leader waits out the inherited
/// lease: no two replicas of the child hold a lease at one true time.
/// Checked with the inherited leader cut off from its child before it says
/// anything there, and another replica campaigning at once.
fn check_child_lease_overlap(bug: Bug) -> Result<(), String> {
    let mut c = cluster_with(1, bug);
    let l = leader(&c, 1);
    let other = l % 3 + 1;
    // The parent leader's child is cut off from its first breath.
    c.isolate_in(2, l);
    split(&mut c, 1, "m", 2);
    if c.serving_leader_in(2) != Some(l) {
        return Err(format!("the parent leader {l} does not lead the child"));
    }
    // The followers apply the split (told by the next accept) and create
    // their child replicas.
    c.run_for(CATCH_UP);
    let deadline = c.replica_in(2, other).paxos().next_deadline();
    let mid = c.now().midpoint();
    if deadline > mid {
        c.advance(deadline.nanos_since(mid));
    }
    c.tick_in(2, other);
    for _ in 0..3_000 {
        let holders: Vec<u64> = (1..=3)
            .filter(|&id| c.has_replica(2, id))
            .filter(|&id| c.replica_in(2, id).paxos().has_lease(c.now_at(id)))
            .collect();
        if holders.len() > 1 {
            return Err(format!(
                "two leaseholders of the child at once: {holders:?}"
            ));
        }
        c.run_for(MS);
    }
    if c.serving_leader_in(2) != Some(other) {
        return Err(format!("replica {other} never took over the child"));
    }
    Ok(())
}

#[test]
fn split_child_lease_overlap_other_candidates_wait_out_the_inherited_lease() {
    check_child_lease_overlap(Bug::None).unwrap();
}

#[cfg(feature = "planted-bugs")]
#[test]
fn planted_split_child_lease_overlap_is_caught() {
    let bug = Bug::Paxos(meridian_paxos::PlantedBug::SplitChildLeaseOverlap);
    let caught = check_child_lease_overlap(bug).expect_err("the planted bug breaks the rule");
    eprintln!("caught: {caught}");
}

/// Rule `split-child-safe-time-from-zero` (docs/design.md §9): in the step
/// in which the parent's leader applies the split, the child's timestamp
/// floor becomes the parent leader's, reads it served included: a read of
/// a right-half key the parent served at `t` (ahead of the log, through
/// its timestamp cache) stays repeatable, as every write of the child
/// lands above `t`.
fn check_child_safe_time(bug: Bug) -> Result<(), String> {
    let mut c = cluster_with(1, bug);
    put(&mut c, 1, &[("z", "1")]);
    let l = leader(&c, 1);
    // Served at once, 9 ms ahead of the clock (within the read lead L).
    let t = c.now().latest.saturating_add(9 * MS);
    let before = snapshot_get(&mut c, 1, l, "z", t).map_err(|e| format!("read at t: {e}"))?;
    if before != Some(b("1")) {
        return Err(format!("read at t saw {before:?}"));
    }
    split(&mut c, 1, "m", 2);
    let commit_ts = put(&mut c, 2, &[("z", "2")]);
    if commit_ts <= t {
        return Err(format!(
            "the child wrote z at {commit_ts}, at or below the read served at {t}"
        ));
    }
    let l2 = leader(&c, 2);
    let again = snapshot_get(&mut c, 2, l2, "z", t).map_err(|e| e.to_string())?;
    if again != before {
        return Err(format!(
            "the read at t is not repeatable: {before:?} then {again:?}"
        ));
    }
    Ok(())
}

#[test]
fn split_child_safe_time_from_zero_child_writes_land_above_the_parents_reads() {
    check_child_safe_time(Bug::None).unwrap();
}

#[cfg(feature = "planted-bugs")]
#[test]
fn planted_split_child_safe_time_from_zero_is_caught() {
    let bug = Bug::Txn(meridian_txn::PlantedBug::SplitChildSafeTimeFromZero);
    let caught = check_child_safe_time(bug).expect_err("the planted bug breaks the rule");
    eprintln!("caught: {caught}");
}

/// Rules `split-drops-prepared` and `split-ack-before-child-decides`
/// (docs/design.md §9): a transaction prepared at the parent, spanning the
/// split key, moves its right-half part (record and locks) to the child;
/// the coordinator's decision, sent to the parent, is forwarded, and the
/// parent acknowledges it only once the child applied it. Both halves
/// commit; the coordinator forgets the decision only after.
fn check_prepared_moves(bug: Bug) -> Result<(), String> {
    let mut c = cluster_with(2, bug);
    // Group 2 coordinates; group 1 (split later into 1 and 3) prepares.
    // Its decision is held back until after the split, and outcome
    // queries are lost until the end: the decision reaches the child only
    // through the parent.
    c.drop_group_messages(|g, m| {
        matches!(m, GroupMessage::Query { .. })
            || g == 1 && matches!(m, GroupMessage::Decide { .. })
    });
    let txn = begin(&mut c, 2);
    let commit = Request::Commit {
        txn,
        writes: vec![Write::put(b("k"), b("home"))],
        participants: vec![Participant {
            group: 1,
            term: None,
            writes: vec![
                Write::put(b("b"), b("left")),
                Write::put(b("z"), b("right")),
            ],
        }],
    };
    let l2 = leader(&c, 2);
    let commit_ts = match c.call_in(2, l2, commit) {
        Ok(Response::Committed { commit_ts }) => commit_ts,
        other => return Err(format!("commit: {other:?}")),
    };
    let l1 = leader(&c, 1);
    if c.replica_in(1, l1).state().prepared_txn(txn).is_none() {
        return Err("not prepared at group 1".into());
    }
    split(&mut c, 1, "m", 3);
    c.run_for(CATCH_UP);
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Query { .. }));
    for _ in 0..500 {
        c.run_for(MS);
        // The coordinator keeps its decision until the child holds it.
        let forgotten = c.replica_in(2, l2).state().coordinated_txn(txn).is_none();
        let child_undecided = (1..=3)
            .filter(|&id| c.has_replica(3, id))
            .all(|id| c.replica_in(3, id).state().prepared_txn(txn).is_some());
        let child_holds = (1..=3)
            .filter(|&id| c.has_replica(3, id))
            .any(|id| c.replica_in(3, id).state().prepared_txn(txn).is_some());
        if forgotten && child_undecided && child_holds {
            return Err("the coordinator forgot the decision before the child applied it".into());
        }
    }
    c.deliver_all_group_messages();
    c.run_for(CATCH_UP);
    let l1 = leader(&c, 1);
    let l3 = leader(&c, 3);
    let left = snapshot_get(&mut c, 1, l1, "b", commit_ts).map_err(|e| e.to_string())?;
    let right = snapshot_get(&mut c, 3, l3, "z", commit_ts).map_err(|e| e.to_string())?;
    if (left.as_deref(), right.as_deref()) != (Some(&b"left"[..]), Some(&b"right"[..])) {
        return Err(format!("after the commit: b = {left:?}, z = {right:?}"));
    }
    Ok(())
}

#[test]
fn split_drops_prepared_a_spanning_prepared_txn_commits_in_both_halves() {
    check_prepared_moves(Bug::None).unwrap();
}

#[test]
fn split_ack_before_child_decides_the_parent_acks_only_after_the_child_applied() {
    check_prepared_moves(Bug::None).unwrap();
}

#[cfg(feature = "planted-bugs")]
#[test]
fn planted_split_drops_prepared_is_caught() {
    let bug = Bug::Txn(meridian_txn::PlantedBug::SplitDropsPrepared);
    let caught = check_prepared_moves(bug).expect_err("the planted bug breaks the rule");
    eprintln!("caught: {caught}");
}

#[cfg(feature = "planted-bugs")]
#[test]
fn planted_split_ack_before_child_decides_is_caught() {
    let bug = Bug::Txn(meridian_txn::PlantedBug::SplitAckBeforeChildDecides);
    let caught = check_prepared_moves(bug).expect_err("the planted bug breaks the rule");
    eprintln!("caught: {caught}");
}

/// Rule `stale-descriptor-served` (docs/design.md §9): a replica serves
/// only its applied descriptor's keys. A follower that has not applied the
/// split yet answers a right-half read only at a timestamp it has applied
/// through (below the split's), where the child answers the same; once it
/// applies the split it refuses them. No read of a key is answered by two
/// groups differently, or by none.
fn check_stale_descriptor(bug: Bug) -> Result<(), String> {
    let mut c = cluster_with(1, bug);
    let ts = put(&mut c, 1, &[("z", "1")]);
    c.run_for(CATCH_UP);
    let l = leader(&c, 1);
    let lagging = l % 3 + 1;
    c.isolate_in(1, lagging);
    split(&mut c, 1, "m", 2);
    let after = c.now().latest;
    // The lagging follower, at a timestamp past what it applied: it waits
    // (and gives up), it does not answer from its old range.
    match snapshot_get(&mut c, 1, lagging, "z", after) {
        Err(TxnError::NotYetSafe { .. } | TxnError::OutsideRange { .. }) => {}
        other => return Err(format!("lagging replica answered {other:?}")),
    }
    match snapshot_get(&mut c, 1, lagging, "z", ts) {
        Ok(v) if v == Some(b("1")) => {}
        other => return Err(format!("lagging replica at its applied ts: {other:?}")),
    }
    c.heal();
    c.run_for(CATCH_UP);
    for node in 1..=3 {
        for at in [ts, after] {
            let child = snapshot_get(&mut c, 2, node, "z", at).map_err(|e| e.to_string())?;
            if child != Some(b("1")) {
                return Err(format!("child replica {node} at {at}: {child:?}"));
            }
            match snapshot_get(&mut c, 1, node, "z", at) {
                Err(TxnError::OutsideRange { descriptor }) if descriptor.end == Some(b("m")) => {}
                other => return Err(format!("parent replica {node} at {at}: {other:?}")),
            }
        }
    }
    // Locking requests at the parent's leader are refused too.
    let txn = begin(&mut c, 1);
    let l = leader(&c, 1);
    let read = Request::Read {
        txn,
        keys: vec![b("z")],
        guest: None,
    };
    match c.call_in(1, l, read) {
        Err(TxnError::OutsideRange { .. }) => Ok(()),
        other => Err(format!("a locking read of a moved key: {other:?}")),
    }
}

#[test]
fn stale_descriptor_served_a_replica_serves_only_its_applied_range() {
    check_stale_descriptor(Bug::None).unwrap();
}

#[cfg(feature = "planted-bugs")]
#[test]
fn planted_stale_descriptor_served_is_caught() {
    let bug = Bug::Txn(meridian_txn::PlantedBug::StaleDescriptorServed);
    let caught = check_stale_descriptor(bug).expect_err("the planted bug breaks the rule");
    eprintln!("caught: {caught}");
}

/// Crashes (docs/design.md §9): a node that crashed after applying the
/// split, before its child's first state was durable, replays the parent's
/// log, which creates the child again; a node that kept its child ignores
/// the re-emitted seed.
#[test]
fn split_crash_replaying_the_parent_log_recovers_both_halves() {
    let mut c = cluster(1);
    let ts = put(&mut c, 1, &[("a", "1"), ("z", "2")]);
    split(&mut c, 1, "m", 2);
    c.run_for(CATCH_UP);
    let l = leader(&c, 1);
    let f = l % 3 + 1;
    let g = f % 3 + 1;
    c.restart_in(1, f, true);
    c.restart_in(1, g, false);
    c.run_for(CATCH_UP);
    for node in [f, g] {
        assert!(c.has_replica(2, node), "node {node} has the child again");
        assert_eq!(snapshot_get(&mut c, 2, node, "z", ts), Ok(Some(b("2"))));
        assert_eq!(snapshot_get(&mut c, 1, node, "a", ts), Ok(Some(b("1"))));
    }
    // The recreated child takes part in the child's consensus.
    let before = c.replica_in(2, f).state().applied_slot();
    put(&mut c, 2, &[("q", "3")]);
    c.run_for(CATCH_UP);
    let r = c.replica_in(2, f);
    assert!(
        r.state().applied_slot() > before,
        "{before} {:?} {:?} leader {:?}",
        r.paxos(),
        r.state().applied_slot(),
        c.serving_leader_in(2)
    );
}

#[test]
fn split_requests_with_bad_keys_or_during_another_split_change_nothing() {
    let mut c = cluster(1);
    let l = leader(&c, 1);
    let d = c.replica_in(1, l).state().descriptor().clone();
    // The range's start (the empty key is not a key either), then outside.
    match c.call_in(
        1,
        l,
        Request::Split {
            key: b(""),
            child: 2,
        },
    ) {
        Err(TxnError::Invalid(_) | TxnError::BadSplitKey { .. }) => {}
        other => panic!("{other:?}"),
    }
    split(&mut c, 1, "m", 2);
    match c.call_in(
        1,
        l,
        Request::Split {
            key: b("q"),
            child: 3,
        },
    ) {
        Err(TxnError::BadSplitKey { descriptor, .. }) => assert_eq!(descriptor.end, Some(b("m"))),
        other => panic!("{other:?}"),
    }
    match c.call_in(
        1,
        l,
        Request::Split {
            key: b("m"),
            child: 3,
        },
    ) {
        Err(TxnError::BadSplitKey { .. }) => {}
        other => panic!("{other:?}"),
    }
    // Two splits at once: the second is refused while the first is in flight.
    let first = c.submit_in(
        1,
        l,
        Request::Split {
            key: b("f"),
            child: 3,
        },
    );
    let second = c.submit_in(
        1,
        l,
        Request::Split {
            key: b("c"),
            child: 4,
        },
    );
    assert_eq!(
        c.take_reply(second),
        Some(Err(TxnError::RangeChangeInProgress))
    );
    c.run_for(20 * MS);
    assert!(matches!(
        c.take_reply(first),
        Some(Ok(Response::Split { .. }))
    ));
    assert_eq!(
        c.replica_in(1, l).state().descriptor().generation,
        d.generation + 2
    );
}

/// A replica that learns of a split from a snapshot of the parent (its
/// log was truncated past the split before it caught up) creates a blank
/// child, which catches up by snapshot from the child's leader.
#[test]
fn split_learned_from_a_snapshot_creates_a_child_that_catches_up() {
    let mut c = LocalCluster::with_groups(1, 3, T0, EPS, |cfg| cfg.compact_every = 1);
    c.await_leaders();
    let ts = put(&mut c, 1, &[("a", "1"), ("z", "2")]);
    c.run_for(CATCH_UP);
    let l = leader(&c, 1);
    let f = l % 3 + 1;
    c.isolate(f);
    split(&mut c, 1, "m", 2);
    put(&mut c, 1, &[("b", "3")]);
    c.run_for(CATCH_UP);
    assert!(!c.has_replica(2, f));
    assert!(c.replica_in(1, l).paxos().first_slot() > c.replica_in(1, f).paxos().last_slot() + 1);
    c.heal();
    c.run_for(3 * CATCH_UP);
    assert!(
        c.has_replica(2, f),
        "the snapshot's split created the child"
    );
    assert_eq!(snapshot_get(&mut c, 2, f, "z", ts), Ok(Some(b("2"))));
    assert!(matches!(
        snapshot_get(&mut c, 1, f, "z", ts),
        Err(TxnError::OutsideRange { .. })
    ));
}

#[test]
fn split_retried_after_it_applied_gets_the_same_answer() {
    let mut c = cluster(1);
    let (_, right) = split(&mut c, 1, "m", 2);
    let (left, again) = split(&mut c, 1, "m", 2);
    assert_eq!(again, right);
    assert_eq!(left.end, Some(b("m")));
}

/// Rule (docs/design.md §9, transactions): at the split, the parent
/// leader wounds every unprepared transaction that holds a lock in the
/// right half, holds a range lock reaching past the split key, or read
/// there optimistically; the others go on.
#[test]
fn split_wounds_unprepared_holders_of_the_right_half() {
    let mut c = cluster(1);
    put(&mut c, 1, &[("a", "1"), ("z", "1")]);
    let l = leader(&c, 1);
    let read = |c: &mut LocalCluster, txn: TxnId, key: &str| {
        c.call_in(
            1,
            l,
            Request::Read {
                txn,
                keys: vec![b(key)],
                guest: None,
            },
        )
    };
    let right = begin(&mut c, 1);
    assert!(read(&mut c, right, "z").is_ok());
    let left = begin(&mut c, 1);
    assert!(read(&mut c, left, "a").is_ok());
    let spanning = begin(&mut c, 1);
    let scan = Request::Scan {
        txn: spanning,
        start: b("a"),
        end: Some(b("q")),
        limit: 10,
        guest: None,
    };
    assert!(c.call_in(1, l, scan).is_ok());
    let optimistic = match c.call_in(
        1,
        l,
        Request::Begin {
            priority: None,
            mode: CcMode::Optimistic,
            reserve: 0,
        },
    ) {
        Ok(Response::Begun { txn, .. }) => txn,
        other => panic!("{other:?}"),
    };
    assert!(read(&mut c, optimistic, "z").is_ok());
    split(&mut c, 1, "m", 2);
    for txn in [right, spanning, optimistic] {
        match read(&mut c, txn, "a") {
            Err(TxnError::Aborted { reason, .. }) => {
                assert_eq!(reason, meridian_txn::AbortReason::Wounded, "{txn}")
            }
            other => panic!("{txn} was not wounded: {other:?}"),
        }
    }
    let commit = Request::Commit {
        txn: left,
        writes: vec![Write::put(b("a"), b("2"))],
        participants: vec![],
    };
    assert!(matches!(
        c.call_in(1, l, commit),
        Ok(Response::Committed { .. })
    ));
}

/// A transaction this group coordinates scanned across the split key and
/// is still collecting votes when the split applies: its range lock is the
/// parent leader's alone, which the child does not inherit, so it is
/// wounded rather than commit past the split with a scan the child no
/// longer protects (docs/design.md §9; cluster seed 246).
#[test]
fn split_a_coordinator_collecting_votes_with_a_lock_in_the_right_half_is_wounded() {
    let mut c = cluster(2);
    put(&mut c, 1, &[("a", "1"), ("z", "1")]);
    let l = leader(&c, 1);
    let txn = begin(&mut c, 1);
    let scan = Request::Scan {
        txn,
        start: b("a"),
        end: Some(b("q")),
        limit: 10,
        guest: None,
    };
    assert!(c.call_in(1, l, scan).is_ok());
    // The participant's vote is held back: the coordinator keeps
    // collecting votes across the split.
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Vote { .. }));
    let commit = c.submit_in(
        1,
        l,
        Request::Commit {
            txn,
            writes: vec![],
            participants: vec![Participant {
                group: 2,
                term: None,
                writes: vec![Write::put(b("p"), b("1"))],
            }],
        },
    );
    c.run();
    assert!(c.reply(commit).is_none(), "the commit waits for its vote");
    split(&mut c, 1, "m", 3);
    c.deliver_all_group_messages();
    c.run_for(500 * MS);
    match c.take_reply(commit) {
        Some(Err(TxnError::Aborted { reason, .. })) => {
            assert_eq!(reason, meridian_txn::AbortReason::Wounded)
        }
        other => panic!("a coordinator scanning across the split committed past it: {other:?}"),
    }
}
