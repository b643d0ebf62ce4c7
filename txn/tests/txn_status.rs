//! `Request::TxnStatus` (docs/design.md §5.5): a client whose commit's
//! outcome is unknown asks the transaction's home group what happened.
//! One test per answer and per rule, named after the section; the safety
//! rule is that an `Aborted` answer is final — no commit record of the
//! transaction can be chosen after it, across leader changes too.

use bytes::Bytes;
use meridian_participant::{Priority, TxnId, Write};
use meridian_truetime::Timestamp;
use meridian_txn::testkit::LocalCluster;
use meridian_txn::{
    CcMode, GroupMessage, Guest, InvalidRequest, Participant, Reply, Request, Response, TxnError,
    TxnStatus,
};

const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);
const MS: u64 = 1_000_000;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn begin_in(c: &mut LocalCluster, group: u64, node: u64) -> (TxnId, Priority) {
    let begin = Request::Begin {
        priority: None,
        mode: CcMode::Locking,
        reserve: 0,
    };
    match c.call_in(group, node, begin) {
        Ok(Response::Begun { txn, priority, .. }) => (txn, priority),
        other => panic!("begin failed: {other:?}"),
    }
}

fn begin(c: &mut LocalCluster, node: u64) -> TxnId {
    begin_in(c, 1, node).0
}

fn commit_req(txn: TxnId, writes: &[(&str, &str)]) -> Request {
    Request::Commit {
        txn,
        writes: writes.iter().map(|(k, v)| Write::put(b(k), b(v))).collect(),
        participants: vec![],
    }
}

fn commit_ts(r: &Reply) -> Timestamp {
    match r {
        Ok(Response::Committed { commit_ts }) => *commit_ts,
        other => panic!("commit failed: {other:?}"),
    }
}

fn status_in(c: &mut LocalCluster, group: u64, node: u64, txn: TxnId) -> Reply {
    c.call_in(group, node, Request::TxnStatus { txn })
}

fn status(c: &mut LocalCluster, node: u64, txn: TxnId) -> Reply {
    status_in(c, 1, node, txn)
}

fn answer(r: Reply) -> TxnStatus {
    match r {
        Ok(Response::TxnStatus(s)) => s,
        other => panic!("txn status failed: {other:?}"),
    }
}

/// Three replicas of one group, replica 1 serving; ε = `eps`.
fn cluster(eps: u64, configure: impl Fn(&mut meridian_txn::Config)) -> LocalCluster {
    let mut c = LocalCluster::new(3, T0, eps, configure);
    c.elect(1);
    c
}

#[test]
fn design_s5_5_txn_status_reports_a_commit_at_its_timestamp_from_the_commit_records() {
    let mut c = cluster(MS, |_| {});
    let txn = begin(&mut c, 1);
    let s = commit_ts(&c.call(1, commit_req(txn, &[("k", "v")])));
    assert_eq!(answer(status(&mut c, 1, txn)), TxnStatus::Committed(s));
    assert!(c.now().after(s), "told only after commit wait");
    // Only the serving leader answers; a follower redirects.
    assert!(matches!(
        status(&mut c, 2, txn),
        Err(TxnError::NotLeader { leader: Some(1) })
    ));
    // A transaction of another group: its home group alone knows.
    let foreign = TxnId::new((1 << 44) | (1 << 32) | 2, 1);
    assert_eq!(
        status(&mut c, 1, foreign),
        Err(TxnError::Invalid(InvalidRequest::NotHomeGroup { home: 2 }))
    );
}

#[test]
fn design_s5_5_txn_status_is_in_progress_while_the_transaction_is_active_or_committing() {
    // ε = 50 ms: the commit waits far longer than its Paxos round.
    let mut c = cluster(50 * MS, |_| {});
    let txn = begin(&mut c, 1);
    assert_eq!(answer(status(&mut c, 1, txn)), TxnStatus::InProgress);
    let id = c.submit(1, commit_req(txn, &[("k", "v")]));
    c.run_for(2 * MS);
    assert!(c.reply(id).is_none(), "still in its commit wait");
    assert_eq!(
        c.call_now(1, Request::TxnStatus { txn }),
        Ok(Response::TxnStatus(TxnStatus::InProgress)),
        "its record is chosen but not applied: it may yet be reported committed"
    );
    c.run_for(200 * MS);
    let s = commit_ts(c.reply(id).expect("answered after commit wait"));
    assert_eq!(answer(status(&mut c, 1, txn)), TxnStatus::Committed(s));
}

#[test]
fn design_s5_5_txn_status_reports_aborted_once_the_transaction_ended_without_a_record() {
    let mut c = cluster(MS, |cfg| cfg.inactivity_timeout_nanos = 200 * MS);
    let txn = begin(&mut c, 1);
    assert_eq!(c.call(1, Request::Abort { txn }), Ok(Response::Aborted));
    assert_eq!(answer(status(&mut c, 1, txn)), TxnStatus::Aborted);
    // A transaction the leader aborted itself (wounded, inactive, ...):
    // the same; and a commit refused is no commit.
    let txn = begin(&mut c, 1);
    assert_eq!(answer(status(&mut c, 1, txn)), TxnStatus::InProgress);
    c.run_for(300 * MS); // past the inactivity timeout
    assert_eq!(answer(status(&mut c, 1, txn)), TxnStatus::Aborted);
    assert!(matches!(
        c.call(1, commit_req(txn, &[("k", "late")])),
        Err(TxnError::Aborted { .. })
    ));
    assert_eq!(answer(status(&mut c, 1, txn)), TxnStatus::Aborted);
}

#[test]
fn design_s5_5_txn_status_is_unknown_once_the_commit_record_may_have_been_pruned() {
    let mut c = cluster(MS, |cfg| cfg.commit_record_retention_nanos = 100 * MS);
    let txn = begin(&mut c, 1);
    let s = commit_ts(&c.call(1, commit_req(txn, &[("k", "v")])));
    assert_eq!(answer(status(&mut c, 1, txn)), TxnStatus::Committed(s));
    c.run_for(200 * MS);
    let later = begin(&mut c, 1);
    commit_ts(&c.call(1, commit_req(later, &[("j", "w")]))); // prunes the record
    assert_eq!(
        answer(status(&mut c, 1, txn)),
        TxnStatus::Unknown,
        "never Aborted: the record may have been pruned"
    );
}

#[test]
fn design_s5_5_txn_status_across_a_leader_change_waits_for_the_old_terms_commit_in_flight() {
    // ε = 50 ms: the commit record is chosen at once but applies only after
    // its commit wait. The leader is cut off meanwhile.
    let mut c = cluster(50 * MS, |_| {});
    let txn = begin(&mut c, 1);
    let id = c.submit(1, commit_req(txn, &[("k", "v")]));
    c.run_for(2 * MS);
    assert!(c.reply(id).is_none());
    c.isolate(1);
    // Replica 2 campaigns and wins, but has not applied the old term's
    // entries (nor waited out the old lease): it must not say "aborted".
    let deadline = c.replica(2).paxos().next_deadline();
    c.advance(deadline.nanos_since(c.now().midpoint()));
    c.tick(2);
    assert_eq!(c.replica(2).paxos().role(), meridian_paxos::Role::Leader);
    assert_eq!(
        c.call_now(2, Request::TxnStatus { txn }),
        Err(TxnError::LeaderNotReady)
    );
    // Once it serves, the old term's record has applied: committed.
    c.elect(2);
    let s = match answer(status(&mut c, 2, txn)) {
        TxnStatus::Committed(s) => s,
        other => panic!("the chosen commit record decides, got {other:?}"),
    };
    c.heal();
    c.run_for(500 * MS);
    assert_eq!(commit_ts(c.reply(id).expect("the old leader answers")), s);
}

#[test]
fn design_s5_5_txn_status_aborted_is_final_a_commit_never_chosen_never_lands() {
    let mut c = cluster(MS, |_| {});
    let txn = begin(&mut c, 1);
    // The leader is cut off before its commit record reaches anyone.
    c.isolate(1);
    let id = c.submit(1, commit_req(txn, &[("k", "ghost")]));
    assert_eq!(
        c.call_now(1, Request::TxnStatus { txn }),
        Ok(Response::TxnStatus(TxnStatus::InProgress)),
        "the old leader still holds its lease: its commit may land"
    );
    c.elect(2);
    assert_eq!(
        answer(status(&mut c, 2, txn)),
        TxnStatus::Aborted,
        "an earlier term's record not applied by a serving leader never will be"
    );
    c.heal();
    c.run_for(1_000 * MS);
    assert!(
        matches!(c.reply(id), Some(Err(TxnError::Aborted { .. }))),
        "the old leader's commit was overwritten: {:?}",
        c.reply(id)
    );
    assert_eq!(answer(status(&mut c, 2, txn)), TxnStatus::Aborted);
    for id in 1..=3 {
        assert_eq!(c.replica(id).state().committed(txn), None);
    }
}

#[test]
fn design_s5_5_txn_status_of_a_cross_group_transaction_is_its_coordinators_decision() {
    let mut c = LocalCluster::with_groups(3, 3, T0, MS, |cfg| {
        cfg.resend_interval_nanos = 20 * MS;
        cfg.prepare_timeout_nanos = 300 * MS;
    });
    c.await_leaders();
    let l1 = c.serving_leader_in(1).expect("group 1 serves");
    let l2 = c.serving_leader_in(2).expect("group 2 serves");
    // A committed one: the coordinator's decision record answers.
    let (txn, priority) = begin_in(&mut c, 1, l1);
    let guest = Guest {
        priority,
        term: None,
        mode: CcMode::Locking,
    };
    let read = Request::Read {
        txn,
        keys: vec![b("g2")],
        guest: Some(guest),
    };
    let term = match c.call_in(2, l2, read) {
        Ok(Response::Read { term, .. }) => term,
        other => panic!("guest read failed: {other:?}"),
    };
    let commit = Request::Commit {
        txn,
        writes: vec![Write::put(b("g1"), b("v"))],
        participants: vec![Participant {
            group: 2,
            term: Some(term),
            writes: vec![Write::put(b("g2"), b("v"))],
        }],
    };
    let s = commit_ts(&c.call_in(1, l1, commit));
    assert_eq!(
        answer(status_in(&mut c, 1, l1, txn)),
        TxnStatus::Committed(s)
    );
    assert_eq!(
        status_in(&mut c, 2, l2, txn),
        Err(TxnError::Invalid(InvalidRequest::NotHomeGroup { home: 1 })),
        "a participant does not decide"
    );
    // One whose votes never arrive: in progress while the coordinator
    // collects them, aborted once it gives up at the deadline.
    let (txn, _) = begin_in(&mut c, 1, l1);
    c.drop_group_messages(|_, m| matches!(m, GroupMessage::Vote { .. }));
    let commit = Request::Commit {
        txn,
        writes: vec![Write::put(b("g1"), b("w"))],
        participants: vec![Participant {
            group: 2,
            term: None,
            writes: vec![Write::put(b("g2"), b("w"))],
        }],
    };
    let id = c.submit_in(1, l1, commit);
    c.run_for(10 * MS);
    assert_eq!(answer(status_in(&mut c, 1, l1, txn)), TxnStatus::InProgress);
    c.run_for(400 * MS);
    assert!(matches!(c.reply(id), Some(Err(TxnError::Aborted { .. }))));
    assert_eq!(answer(status_in(&mut c, 1, l1, txn)), TxnStatus::Aborted);
    c.deliver_all_group_messages();
}
