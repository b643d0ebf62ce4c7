//! Protocol rules of cross-group transactions (two-phase commit over Paxos
//! groups), one test each, named after the rule and the paper section it
//! checks (Spanner OSDI'12 §4.2.1; docs/design.md §5.1). Driven by
//! `meridian_txn::testkit::LocalCluster` with three groups of three
//! replicas; faults are lost two-phase-commit messages and leader changes
//! a test asks for.

use bytes::Bytes;
use meridian_participant::{Command, Decision, Priority, TxnId, Write};
use meridian_paxos::{Entry, Payload};
use meridian_truetime::Timestamp;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{
    AbortReason, CcMode, GroupMessage, Guest, InvalidRequest, Participant, ReadAt, ReadOp,
    ReadResult, Request, Response, TxnError, Vote,
};

const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);
const MS: u64 = 1_000_000;
const EPS: u64 = MS;
/// Resends and outcome queries, shortened so tests run quickly.
const RESEND: u64 = 20 * MS;
/// Prepare deadline after the coordinator starts.
const PREPARE_TIMEOUT: u64 = 300 * MS;

/// Three groups of three replicas, each with a serving leader.
fn cluster() -> LocalCluster {
    let mut c = LocalCluster::with_groups(3, 3, T0, EPS, |cfg| {
        cfg.resend_interval_nanos = RESEND;
        cfg.prepare_timeout_nanos = PREPARE_TIMEOUT;
    });
    c.await_leaders();
    c
}

/// Moves `group`'s leadership to another replica; returns it.
fn fail_over(c: &mut LocalCluster, group: u64) -> u64 {
    let old = leader(c, group);
    let new = old % 3 + 1;
    c.isolate_in(group, old);
    c.elect_in(group, new);
    c.heal();
    new
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn leader(c: &LocalCluster, group: u64) -> u64 {
    c.serving_leader_in(group)
        .unwrap_or_else(|| panic!("group {group} has no serving leader"))
}

fn begin(c: &mut LocalCluster, group: u64) -> (TxnId, Priority) {
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
        Ok(Response::Begun { txn, priority, .. }) => (txn, priority),
        other => panic!("begin failed: {other:?}"),
    }
}

/// Reads `key` at `group` as a guest (first request there); returns the
/// value and the group's term.
fn guest_read(
    c: &mut LocalCluster,
    group: u64,
    txn: TxnId,
    priority: Priority,
    key: &str,
) -> (Option<Bytes>, u64) {
    let l = leader(c, group);
    let req = Request::Read {
        txn,
        keys: vec![b(key)],
        guest: Some(Guest {
            priority,
            term: None,
            mode: CcMode::Locking,
        }),
    };
    match c.call_in(group, l, req) {
        Ok(Response::Read { mut values, term }) => (values.remove(0), term),
        other => panic!("guest read failed: {other:?}"),
    }
}

fn put(k: &str, v: &str) -> Write {
    Write::put(b(k), b(v))
}

fn part(group: u64, term: Option<u64>, writes: Vec<Write>) -> Participant {
    Participant {
        group,
        term,
        writes,
    }
}

fn commit_req(txn: TxnId, writes: Vec<Write>, participants: Vec<Participant>) -> Request {
    Request::Commit {
        txn,
        writes,
        participants,
    }
}

/// A snapshot read of `key` at `ts` at replica `node` of `group`.
fn read_at(c: &mut LocalCluster, group: u64, node: u64, key: &str, ts: Timestamp) -> Option<Bytes> {
    let req = Request::ReadOnly {
        at: ReadAt::Exact(ts),
        reads: vec![ReadOp::Get(b(key))],
    };
    match c.call_in(group, node, req) {
        Ok(Response::ReadOnly { results, .. }) => match &results[0] {
            ReadResult::Value(v) => v.clone(),
            other => panic!("a get returned {other:?}"),
        },
        other => panic!("snapshot read failed: {other:?}"),
    }
}

fn command(e: &Entry) -> Option<Command> {
    match &e.payload {
        Payload::Command(data) => Command::decode(data).ok(),
        _ => None,
    }
}

/// The Paxos timestamp of `txn`'s prepare record in `group`'s log at
/// replica `node`.
fn prepare_ts(c: &LocalCluster, group: u64, node: u64, txn: TxnId) -> Option<Timestamp> {
    c.applied_in(group, node)
        .iter()
        .find(|e| matches!(command(e), Some(Command::Prepare { txn: t, .. }) if t == txn))
        .map(|e| e.ts)
}

/// Begins at group 1, reads `x` there and `y` at group 2, and commits
/// writes to all three groups. Returns the transaction, its commit request
/// and group 2's term.
fn three_group_commit(c: &mut LocalCluster) -> (TxnId, u64, u64) {
    let (txn, priority) = begin(c, 1);
    let l1 = leader(c, 1);
    let r = c.call_in(
        1,
        l1,
        Request::Read {
            txn,
            keys: vec![b("x")],
            guest: None,
        },
    );
    assert!(matches!(r, Ok(Response::Read { .. })), "{r:?}");
    let (_, term2) = guest_read(c, 2, txn, priority, "y");
    let req = commit_req(
        txn,
        vec![put("x", "1")],
        vec![
            part(2, Some(term2), vec![put("y", "2")]),
            part(3, None, vec![put("z", "3")]),
        ],
    );
    let id = c.submit_in(1, l1, req);
    (txn, id, term2)
}

fn wait_for(c: &mut LocalCluster, id: u64, max_ms: u64) -> Option<meridian_txn::Reply> {
    for _ in 0..max_ms {
        if let Some(r) = c.take_reply(id) {
            return Some(r);
        }
        c.run_for(MS);
    }
    None
}

#[test]
fn spanner_s4_2_1_a_cross_group_commit_applies_at_one_timestamp_at_least_every_prepare() {
    let mut c = cluster();
    let (txn, id, _) = three_group_commit(&mut c);
    let Some(Ok(Response::Committed { commit_ts })) = wait_for(&mut c, id, 1_000) else {
        panic!("the transaction should commit");
    };
    assert!(c.now().after(commit_ts), "commit wait before the answer");
    for g in [2, 3] {
        let p = prepare_ts(&c, g, leader(&c, g), txn)
            .expect("each participant logged a prepare record");
        assert!(
            p <= commit_ts,
            "s {commit_ts:?} below group {g}'s prepare {p:?}"
        );
    }
    c.run_for(100 * MS);
    for (g, k, v) in [(1, "x", "1"), (2, "y", "2"), (3, "z", "3")] {
        // Every replica of every group, at exactly s, and nothing below.
        for node in 1..=3 {
            assert_eq!(
                read_at(&mut c, g, node, k, commit_ts),
                Some(b(v)),
                "{g}/{node}"
            );
            assert_eq!(read_at(&mut c, g, node, k, commit_ts.prev()), None);
        }
    }
}

#[test]
fn design_s5_1_a_commit_request_names_each_participant_once_and_never_the_home_group() {
    let mut c = cluster();
    let (txn, _) = begin(&mut c, 1);
    for parts in [
        vec![part(1, None, vec![put("a", "1")])],
        vec![part(2, None, vec![]), part(2, None, vec![])],
        vec![part(meridian_txn::MAX_GROUP_ID + 1, None, vec![])],
    ] {
        let r = c.call_in(1, leader(&c, 1), commit_req(txn, vec![], parts));
        assert!(
            matches!(
                r,
                Err(TxnError::Invalid(InvalidRequest::BadParticipant { .. }))
            ),
            "{r:?}"
        );
    }
    // Refused whole: the transaction is intact and commits.
    let r = c.call_in(
        1,
        leader(&c, 1),
        commit_req(txn, vec![put("a", "1")], vec![]),
    );
    assert!(matches!(r, Ok(Response::Committed { .. })), "{r:?}");
}

#[test]
fn design_s5_1_a_guest_whose_group_changed_leader_cannot_prepare() {
    let mut c = cluster();
    let (txn, priority) = begin(&mut c, 1);
    let (_, term2) = guest_read(&mut c, 2, txn, priority, "y");
    // Group 2's leader changes: the shared lock on y died with its term.
    let new2 = fail_over(&mut c, 2);
    let req = commit_req(txn, vec![], vec![part(2, Some(term2), vec![put("y", "2")])]);
    let r = c.call_in(1, leader(&c, 1), req);
    assert_eq!(
        r,
        Err(TxnError::Aborted {
            txn,
            reason: AbortReason::LeaderChanged
        })
    );
    // A later guest read with the stale term is refused too.
    let stale = Request::Read {
        txn,
        keys: vec![b("y")],
        guest: Some(Guest {
            priority,
            term: Some(term2),
            mode: CcMode::Locking,
        }),
    };
    let r = c.call_in(2, new2, stale);
    assert!(
        matches!(
            r,
            Err(TxnError::Aborted {
                reason: AbortReason::LeaderChanged,
                ..
            })
        ),
        "{r:?}"
    );
}

#[test]
fn spanner_s4_2_1_a_participant_holds_its_read_locks_until_the_outcome() {
    let mut c = cluster();
    let (t1, p1) = begin(&mut c, 1);
    let (_, term2) = guest_read(&mut c, 2, t1, p1, "y");
    // Decisions are lost for now: t1 stays prepared at group 2.
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Decide { .. }));
    let id1 = c.submit_in(
        1,
        leader(&c, 1),
        commit_req(t1, vec![put("x", "1")], vec![part(2, Some(term2), vec![])]),
    );
    let Some(Ok(Response::Committed { .. })) = wait_for(&mut c, id1, 1_000) else {
        panic!("t1 commits at its coordinator");
    };
    assert!(
        c.replica_in(2, leader(&c, 2))
            .state()
            .prepared_txn(t1)
            .is_some()
    );
    // A younger transaction at group 2 wants to write y: it must wait for
    // the prepared reader's outcome.
    let (t2, _) = begin(&mut c, 2);
    let id2 = c.submit_in(
        2,
        leader(&c, 2),
        commit_req(t2, vec![put("y", "late")], vec![]),
    );
    c.run_for(3 * RESEND);
    assert!(
        c.reply(id2).is_none(),
        "a write under a prepared read lock must wait"
    );
    c.deliver_all_group_messages();
    let r = wait_for(&mut c, id2, 1_000);
    assert!(matches!(r, Some(Ok(Response::Committed { .. }))), "{r:?}");
    assert!(
        c.replica_in(2, leader(&c, 2))
            .state()
            .prepared_txn(t1)
            .is_none()
    );
}

#[test]
fn design_s5_1_a_new_participant_leader_rebuilds_prepared_locks_from_the_log() {
    let mut c = cluster();
    let (t1, p1) = begin(&mut c, 1);
    let (_, term2) = guest_read(&mut c, 2, t1, p1, "r");
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Decide { .. }));
    let id1 = c.submit_in(
        1,
        leader(&c, 1),
        commit_req(t1, vec![], vec![part(2, Some(term2), vec![put("w", "1")])]),
    );
    let Some(Ok(Response::Committed { commit_ts })) = wait_for(&mut c, id1, 1_000) else {
        panic!("t1 commits");
    };
    // Group 2 fails over while t1 is prepared there.
    let new2 = fail_over(&mut c, 2);
    let l = c.replica_in(2, new2);
    assert!(l.state().prepared_txn(t1).is_some());
    // The rebuilt exclusive lock on w and shared lock on r hold off a
    // younger writer of either.
    for key in ["w", "r"] {
        let (t, _) = begin(&mut c, 2);
        let id = c.submit_in(2, new2, commit_req(t, vec![put(key, "x")], vec![]));
        c.run_for(5 * RESEND);
        assert!(
            c.reply(id).is_none(),
            "{key} must stay locked across the failover"
        );
    }
    c.deliver_all_group_messages();
    c.run_for(10 * RESEND);
    assert!(c.replica_in(2, new2).state().prepared_txn(t1).is_none());
    assert_eq!(read_at(&mut c, 2, 1, "w", commit_ts), Some(b("1")));
}

#[test]
fn design_s5_1_presumed_abort_a_prepared_participant_that_hears_nothing_asks_and_aborts() {
    let mut c = cluster();
    // A prepare from group 1 for a transaction group 1 never coordinated
    // (its coordinator lost it in a failover): group 1's log has no commit
    // record, so the answer is abort.
    let txn = TxnId::new(1, 77);
    let deadline = c.now().latest.saturating_add(10_000 * MS);
    c.send_to_group(
        1,
        2,
        GroupMessage::Prepare {
            txn,
            coordinator: 1,
            priority: Priority::new(c.now().latest),
            term: None,
            mode: CcMode::Locking,
            deadline,
            writes: vec![put("k", "v")],
        },
    );
    c.run_for(5 * MS);
    assert!(
        c.replica_in(2, leader(&c, 2))
            .state()
            .prepared_txn(txn)
            .is_some(),
        "group 2 prepared"
    );
    c.run_for(10 * RESEND);
    let s = c.replica_in(2, leader(&c, 2)).state();
    assert!(
        s.prepared_txn(txn).is_none(),
        "the query's answer aborted it"
    );
    assert_eq!(s.decided(txn), Some(Decision::Abort));
    assert!(
        !c.replica_in(2, leader(&c, 2))
            .waits_for()
            .iter()
            .any(|e| e.blocker == txn)
    );
}

#[test]
fn design_s5_1_votes_missing_at_the_deadline_abort_the_transaction_everywhere() {
    let mut c = cluster();
    let (txn, _) = begin(&mut c, 1);
    c.drop_group_messages(|g, m| g == 1 && matches!(m, GroupMessage::Vote { from: 3, .. }));
    let id = c.submit_in(
        1,
        leader(&c, 1),
        commit_req(
            txn,
            vec![put("a", "1")],
            vec![
                part(2, None, vec![put("b", "2")]),
                part(3, None, vec![put("c", "3")]),
            ],
        ),
    );
    let r = wait_for(&mut c, id, 2 * PREPARE_TIMEOUT / MS);
    assert_eq!(
        r,
        Some(Err(TxnError::Aborted {
            txn,
            reason: AbortReason::Inactive
        }))
    );
    c.deliver_all_group_messages();
    c.run_for(10 * RESEND);
    for g in [2, 3] {
        let s = c.replica_in(g, leader(&c, g)).state();
        assert!(s.prepared_txn(txn).is_none(), "group {g} still prepared");
    }
    // Nothing of it is visible anywhere.
    let now = c.now().earliest;
    for (g, k) in [(1, "a"), (2, "b"), (3, "c")] {
        for node in 1..=3 {
            assert_eq!(read_at(&mut c, g, node, k, now), None, "{g}/{node}");
        }
    }
}

#[test]
fn design_s5_1_a_new_coordinator_leader_resends_decisions_and_forgets_them_once_acked() {
    let mut c = cluster();
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Decide { .. }));
    let (txn, id, _) = three_group_commit(&mut c);
    let Some(Ok(Response::Committed { commit_ts })) = wait_for(&mut c, id, 1_000) else {
        panic!("commits");
    };
    // The decision is kept while participants have not acknowledged it,
    // however long that takes.
    c.run_for(20 * RESEND);
    assert!(
        c.replica_in(1, leader(&c, 1))
            .state()
            .coordinated_txn(txn)
            .is_some()
    );
    // The coordinator group fails over; its new leader resends.
    let new1 = fail_over(&mut c, 1);
    c.deliver_all_group_messages();
    c.run_for(20 * RESEND);
    for (g, k, v) in [(2, "y", "2"), (3, "z", "3")] {
        assert!(
            c.replica_in(g, leader(&c, g))
                .state()
                .prepared_txn(txn)
                .is_none()
        );
        assert_eq!(read_at(&mut c, g, 1, k, commit_ts), Some(b(v)));
    }
    assert!(
        c.replica_in(1, new1).state().coordinated_txn(txn).is_none(),
        "acknowledged decisions are forgotten"
    );
}

#[test]
fn spanner_s4_2_1_a_participant_votes_once_its_prepare_is_chosen_not_after_its_commit_wait() {
    // With ε = 50 ms a prepare record's own commit wait is ~100 ms; the
    // vote must not wait for it (waits must not stack).
    let mut c = LocalCluster::with_groups(2, 3, T0, 50 * MS, |cfg| {
        cfg.resend_interval_nanos = RESEND;
    });
    c.await_leaders();
    let votes = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = votes.clone();
    c.drop_group_messages(move |_, m| {
        if let GroupMessage::Vote { vote, .. } = m {
            seen.borrow_mut().push(*vote);
        }
        false
    });
    let (txn, _) = begin(&mut c, 1);
    let _ = c.submit_in(
        1,
        leader(&c, 1),
        commit_req(txn, vec![], vec![part(2, None, vec![put("k", "v")])]),
    );
    let v = votes.borrow().clone();
    assert!(
        matches!(v.as_slice(), [Vote::Yes(_)]),
        "a yes vote with no time passing: {v:?}"
    );
}

#[test]
fn spanner_s4_2_4_a_prepared_transaction_holds_back_only_reads_of_the_keys_it_writes() {
    let mut c = cluster();
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Decide { .. }));
    let (txn, _) = begin(&mut c, 1);
    let l1 = leader(&c, 1);
    let id = c.submit_in(
        1,
        l1,
        commit_req(txn, vec![], vec![part(2, None, vec![put("held", "1")])]),
    );
    let Some(Ok(Response::Committed { commit_ts })) = wait_for(&mut c, id, 1_000) else {
        panic!("commits");
    };
    // Group 2 stays prepared (its decision is lost). A strong read of
    // another key there is served at once; one of the prepared key waits.
    let l2 = leader(&c, 2);
    let follower = l2 % 3 + 1;
    let strong = |key: &str| Request::ReadOnly {
        at: ReadAt::Exact(commit_ts),
        reads: vec![ReadOp::Get(b(key))],
    };
    c.run_for(20 * MS);
    let free = c.submit_in(2, follower, strong("free"));
    // Closed timestamps (every 50 ms) carry the group past s.
    c.run_for(200 * MS);
    assert!(
        matches!(c.reply(free), Some(Ok(Response::ReadOnly { .. }))),
        "{:?}",
        c.reply(free)
    );
    let held = c.submit_in(2, follower, strong("held"));
    c.run_for(20 * MS);
    assert!(
        c.reply(held).is_none(),
        "a read of a prepared key waits for the outcome"
    );
    c.deliver_all_group_messages();
    let r = wait_for(&mut c, held, 1_000);
    let Some(Ok(Response::ReadOnly { results, .. })) = r else {
        panic!("{r:?}");
    };
    assert_eq!(results, vec![ReadResult::Value(Some(b("1")))]);
}

#[test]
fn spanner_s4_1_2_a_commit_without_writes_is_timestamped_after_a_commit_that_ended_elsewhere() {
    // Group 1 is idle (closed timestamps only every second), so the newest
    // timestamp in its log lags true time; a transaction that only reads
    // there must still get a timestamp above one that ended in group 2
    // before it began (the start rule, across groups).
    let mut c = LocalCluster::with_groups(2, 3, T0, EPS, |cfg| {
        cfg.close_interval_nanos = 1_000 * MS;
    });
    c.await_leaders();
    c.run_for(300 * MS);
    let (t1, _) = begin(&mut c, 2);
    let l2 = leader(&c, 2);
    let Ok(Response::Committed { commit_ts: s1 }) =
        c.call_in(2, l2, commit_req(t1, vec![put("b", "1")], vec![]))
    else {
        panic!("t1 commits");
    };
    let (t2, _) = begin(&mut c, 1);
    let l1 = leader(&c, 1);
    let read = Request::Read {
        txn: t2,
        keys: vec![b("a")],
        guest: None,
    };
    assert!(matches!(c.call_in(1, l1, read), Ok(Response::Read { .. })));
    let Ok(Response::Committed { commit_ts: s2 }) =
        c.call_in(1, l1, commit_req(t2, vec![], vec![]))
    else {
        panic!("t2 commits");
    };
    assert!(s2 > s1, "t2 began after t1 ended, yet {s2:?} <= {s1:?}");
    assert!(c.now().after(s2), "answered after its commit wait");
}

#[test]
fn spanner_s4_2_1_commit_timestamp_is_at_least_a_prepare_timestamp_from_a_clock_running_ahead() {
    let mut c = cluster();
    let l1 = leader(&c, 1);
    let mut l2 = leader(&c, 2);
    if l2 == l1 {
        l2 = fail_over(&mut c, 2);
    }
    // Group 2's leader's clock runs ε ahead (still within TrueTime's
    // bound): its prepare timestamp is above anything the coordinator's own
    // clock would give the commit.
    c.set_offset(l2, EPS as i64);
    c.run_for(5 * MS);
    let (txn, _) = begin(&mut c, 1);
    let id = c.submit_in(
        1,
        l1,
        commit_req(txn, vec![], vec![part(2, None, vec![put("k", "v")])]),
    );
    let Some(Ok(Response::Committed { commit_ts })) = wait_for(&mut c, id, 1_000) else {
        panic!("the transaction should commit");
    };
    let p = prepare_ts(&c, 2, l2, txn).expect("group 2 logged a prepare record");
    assert!(p <= commit_ts, "s {commit_ts:?} below the prepare {p:?}");
    c.run_for(100 * MS);
    for node in 1..=3 {
        assert_eq!(read_at(&mut c, 2, node, "k", commit_ts), Some(b("v")));
    }
}

/// An older transaction at group `at` wants `key`, which a younger
/// transaction coordinated by group 1 holds prepared while its votes are
/// lost; returns the cluster, the younger one's commit request, the older
/// one's and the younger's id.
fn older_waits_for_prepared_younger(at: u64, key: &'static str) -> (LocalCluster, u64, u64, TxnId) {
    older_asks_behind_prepared_younger(at, |old| commit_req(old, vec![put(key, "old")], vec![]))
}

/// A younger transaction prepared at every group, collecting votes, and an
/// older one (begun before it at group `at`) sending `request(old)` there.
fn older_asks_behind_prepared_younger(
    at: u64,
    request: impl FnOnce(TxnId) -> Request,
) -> (LocalCluster, u64, u64, TxnId) {
    let mut c = cluster();
    let (old, _) = begin(&mut c, at);
    c.run_for(5 * MS);
    let (young, _) = begin(&mut c, 1);
    // The younger one's votes from group 3 never arrive: it stays
    // prepared everywhere, collecting votes, until its deadline.
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Vote { from: 3, .. }));
    let l1 = leader(&c, 1);
    let young_id = c.submit_in(
        1,
        l1,
        commit_req(
            young,
            vec![put("k1", "young")],
            vec![
                part(2, None, vec![put("k2", "young")]),
                part(3, None, vec![put("k3", "young")]),
            ],
        ),
    );
    c.run_for(5 * MS);
    assert!(
        c.reply(young_id).is_none(),
        "the younger one is still preparing"
    );
    let la = leader(&c, at);
    let old_id = c.submit_in(at, la, request(old));
    (c, young_id, old_id, young)
}

/// 30 ms on (well before the younger transaction's prepare deadline): the
/// older request was served (`served` says how), and the younger
/// transaction was wounded through its coordinator.
fn assert_older_served_younger_wounded(
    c: &mut LocalCluster,
    old_id: u64,
    young_id: u64,
    young: TxnId,
    served: impl Fn(&Response) -> bool,
) {
    c.run_for(30 * MS);
    assert!(
        matches!(c.reply(old_id), Some(Ok(r)) if served(r)),
        "{:?}",
        c.reply(old_id)
    );
    assert_eq!(
        c.reply(young_id),
        Some(&Err(TxnError::Aborted {
            txn: young,
            reason: AbortReason::Wounded
        }))
    );
}

#[test]
fn spanner_s4_2_1_wound_wait_holds_across_groups_at_the_coordinator() {
    let (mut c, young_id, old_id, young) = older_waits_for_prepared_younger(1, "k1");
    // Well before the younger one's deadline, the older one commits: its
    // wound reached the younger one's coordinator, which aborted it.
    assert_older_served_younger_wounded(&mut c, old_id, young_id, young, |r| {
        matches!(r, Response::Committed { .. })
    });
}

#[test]
fn spanner_s4_2_1_wound_wait_holds_across_groups_at_a_participant() {
    let (mut c, young_id, old_id, young) = older_waits_for_prepared_younger(2, "k2");
    assert_older_served_younger_wounded(&mut c, old_id, young_id, young, |r| {
        matches!(r, Response::Committed { .. })
    });
}

#[test]
fn spanner_s4_2_1_a_commit_timestamp_is_the_clock_at_the_commits_arrival_not_after_the_prepare_round()
 {
    // The start rule asks s > TT.now().latest as the commit arrived, and a
    // prepare timestamp need only exceed what its group assigned before:
    // neither reads the clock again once the prepares are done, so commit
    // wait (until TT.after(s)) runs alongside the prepare round instead of
    // starting after it. Here the prepare round takes 30 ms (the first
    // prepares are lost; the coordinator resends them).
    let mut c = LocalCluster::with_groups(2, 3, T0, EPS, |cfg| {
        cfg.resend_interval_nanos = RESEND;
        cfg.close_interval_nanos = 1_000 * MS;
    });
    c.await_leaders();
    let (txn, _) = begin(&mut c, 1);
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Prepare { .. }));
    let arrival = c.now();
    let id = c.submit_in(
        1,
        leader(&c, 1),
        commit_req(
            txn,
            vec![put("a", "1")],
            vec![part(2, None, vec![put("k", "v")])],
        ),
    );
    c.run_for(30 * MS);
    c.deliver_all_group_messages();
    let Some(Ok(Response::Committed { commit_ts })) = wait_for(&mut c, id, 2_000) else {
        panic!("commits");
    };
    assert!(commit_ts > arrival.latest, "the start rule holds");
    assert!(
        commit_ts <= arrival.latest.saturating_add(MS),
        "s = {commit_ts:?} was read from the clock after the prepare round, \
         not at the commit's arrival ({:?})",
        arrival.latest
    );
    assert!(c.now().after(commit_ts), "answered after its commit wait");
}

#[test]
fn spanner_s4_2_1_wound_wait_holds_across_groups_for_a_scan_waiting_on_a_prepared_key() {
    // The older transaction's scan at group 2 waits for k2, which the
    // younger one holds prepared there: the wound goes to the younger
    // one's coordinator as for a key request. Without it, the two wait for
    // each other whenever the younger one in turn waits for a lock of the
    // older one (here it waits only for votes, until its deadline).
    let (mut c, young_id, old_id, young) =
        older_asks_behind_prepared_younger(2, |old| Request::Scan {
            txn: old,
            start: b("k"),
            end: Some(b("l")),
            limit: 10,
            guest: None,
        });
    assert_older_served_younger_wounded(&mut c, old_id, young_id, young, |r| {
        matches!(r, Response::Rows { .. })
    });
}

#[test]
fn spanner_s4_2_1_wound_wait_holds_across_groups_for_a_write_waiting_on_a_prepared_range() {
    // The younger transaction scanned [k, l) at group 2 and is prepared
    // there with that range lock; the older one's write of k5 there waits
    // for the range, and wounds the younger one through its coordinator.
    let mut c = cluster();
    let (old, _) = begin(&mut c, 2);
    c.run_for(5 * MS);
    let (young, young_priority) = begin(&mut c, 1);
    let l2 = leader(&c, 2);
    let scan = Request::Scan {
        txn: young,
        start: b("k"),
        end: Some(b("l")),
        limit: 10,
        guest: Some(Guest {
            priority: young_priority,
            term: None,
            mode: CcMode::Locking,
        }),
    };
    let Ok(Response::Rows { term, .. }) = c.call_in(2, l2, scan) else {
        panic!("the younger one's scan is served");
    };
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Vote { from: 3, .. }));
    let l1 = leader(&c, 1);
    let young_id = c.submit_in(
        1,
        l1,
        commit_req(
            young,
            vec![put("k1", "young")],
            vec![
                part(2, Some(term), vec![]),
                part(3, None, vec![put("k3", "young")]),
            ],
        ),
    );
    c.run_for(5 * MS);
    assert!(c.reply(young_id).is_none(), "the younger one is preparing");
    let old_id = c.submit_in(2, l2, commit_req(old, vec![put("k5", "old")], vec![]));
    assert_older_served_younger_wounded(&mut c, old_id, young_id, young, |r| {
        matches!(r, Response::Committed { .. })
    });
}

#[test]
fn spanner_s4_1_2_a_commit_without_writes_promises_its_timestamp_to_later_prepares() {
    // A transaction that only read commits without a log record, at s1
    // above TT.now().latest, and holds its read locks until TT.after(s1).
    // A prepare timestamp reads no clock, so the leader must have promised
    // s1: a writer of what it read, waiting behind those locks, prepares
    // and commits above s1, or it would be serialized before a read that
    // did not see it.
    let mut c = LocalCluster::with_groups(2, 3, T0, EPS, |cfg| {
        cfg.resend_interval_nanos = RESEND;
        cfg.close_interval_nanos = 1_000 * MS;
    });
    c.await_leaders();
    let l2 = leader(&c, 2);
    let (reader, _) = begin(&mut c, 2);
    let read = Request::Read {
        txn: reader,
        keys: vec![b("x")],
        guest: None,
    };
    assert!(matches!(c.call_in(2, l2, read), Ok(Response::Read { .. })));
    let (writer, _) = begin(&mut c, 1);
    let r = c.submit_in(2, l2, commit_req(reader, vec![], vec![]));
    let w = c.submit_in(
        1,
        leader(&c, 1),
        commit_req(
            writer,
            vec![put("a", "1")],
            vec![part(2, None, vec![put("x", "1")])],
        ),
    );
    let Some(Ok(Response::Committed { commit_ts: s1 })) = wait_for(&mut c, r, 1_000) else {
        panic!("the reader commits");
    };
    let Some(Ok(Response::Committed { commit_ts: s2 })) = wait_for(&mut c, w, 1_000) else {
        panic!("the writer commits");
    };
    assert!(
        s2 > s1,
        "the writer of x at {s2:?} is not after its reader at {s1:?}"
    );
}

#[test]
fn a_prepare_and_a_coordinator_commit_take_timestamps_above_every_read_of_their_keys() {
    let mut c = cluster();
    // Snapshot reads within L ahead of the clock, served by the leaders of
    // the coordinator's group (x) and of a participant (z) through their
    // timestamp caches.
    let at = c
        .now()
        .latest
        .saturating_add(meridian_txn::DEFAULT_READ_LEAD_NANOS - 2 * MS);
    for (g, k) in [(1, "x"), (3, "z")] {
        let l = leader(&c, g);
        assert_eq!(read_at(&mut c, g, l, k, at), None);
    }
    let (txn, id, _) = three_group_commit(&mut c);
    let Some(Ok(Response::Committed { commit_ts })) = wait_for(&mut c, id, 1_000) else {
        panic!("the transaction should commit");
    };
    let p = prepare_ts(&c, 3, leader(&c, 3), txn).expect("group 3 logged a prepare record");
    assert!(
        p > at,
        "a prepare of z at {p:?}, at or below a read of z at {at:?}"
    );
    assert!(commit_ts > at);
    c.run_for(100 * MS);
    // The reads stay repeatable at every replica.
    for (g, k) in [(1, "x"), (3, "z")] {
        for node in 1..=3 {
            assert_eq!(read_at(&mut c, g, node, k, at), None, "{g}/{node}");
        }
    }
}

#[test]
fn spanner_s4_2_1_a_participant_acknowledges_a_decision_only_once_its_record_is_chosen_and_durable()
{
    // The coordinator forgets a transaction once every participant has
    // acknowledged its decision. A participant that acknowledged before its
    // own decision record was chosen (a quorum has it on disk) and then
    // lost its leader would leave a successor that finds the transaction
    // prepared, asks, and is told to abort a commit (presumed abort).
    let mut c = cluster();
    let acks = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let (t1, p1) = begin(&mut c, 1);
    let (_, term2) = guest_read(&mut c, 2, t1, p1, "y");
    // Decisions are lost for now: t1 stays prepared at group 2.
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Decide { .. }));
    let id1 = c.submit_in(
        1,
        leader(&c, 1),
        commit_req(
            t1,
            vec![put("x", "1")],
            vec![part(2, Some(term2), vec![put("y", "1")])],
        ),
    );
    let Some(Ok(Response::Committed { .. })) = wait_for(&mut c, id1, 1_000) else {
        panic!("t1 commits at its coordinator");
    };
    let l2 = leader(&c, 2);
    assert!(c.replica_in(2, l2).state().prepared_txn(t1).is_some());
    // Group 2's leader is cut off from its followers: what it proposes is
    // not chosen. The decision now reaches it (resent by the coordinator).
    for f in (1..=3).filter(|&f| f != l2) {
        c.isolate_in(2, f);
    }
    let seen = acks.clone();
    c.drop_group_messages(move |_, m| {
        if let GroupMessage::Ack { txn, from } = m {
            seen.borrow_mut().push((*txn, *from));
        }
        false
    });
    c.run_for(5 * RESEND);
    assert!(
        c.replica_in(2, l2).state().decided(t1).is_none(),
        "the decision record cannot be chosen without a quorum"
    );
    assert!(
        !acks.borrow().contains(&(t1, 2)),
        "group 2 acknowledged a decision it has not made durable: {:?}",
        acks.borrow()
    );
    // Once its followers hear it, the record is chosen and applied, and
    // only then acknowledged.
    c.heal();
    for _ in 0..1_000 {
        if acks.borrow().contains(&(t1, 2)) {
            break;
        }
        c.run_for(MS);
    }
    assert!(
        acks.borrow().contains(&(t1, 2)),
        "a durable decision is acknowledged"
    );
    let l2 = leader(&c, 2);
    assert!(c.replica_in(2, l2).state().decided(t1).is_some());
}
