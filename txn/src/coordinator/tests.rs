//! The coordinator's rules (docs/design.md §5.1; Spanner §4.2.1), one
//! test each.

use super::*;

const T0: u64 = 1_767_225_600_000_000_000;
const MS: u64 = 1_000_000;
const EPS: u64 = MS;

fn at(ms: u64) -> TtInterval {
    TtInterval::around(Timestamp::from_nanos(T0 + ms * MS), EPS)
}

fn ts(ms: u64) -> Timestamp {
    Timestamp::from_nanos(T0 + ms * MS)
}

const TXN: TxnId = TxnId::new(7, 1);

/// A coordinator that began `TXN` over groups 2 and 3 at time 0.
fn begun() -> (Coordinator, Vec<Action>) {
    let mut c = Coordinator::new(1_000 * MS, 100 * MS);
    let mut out = Vec::new();
    c.begin(at(0), TXN, vec![2, 3], &mut out);
    (c, out)
}

fn proposed_min_ts(out: &[Action]) -> Option<Timestamp> {
    out.iter().find_map(|a| match a {
        Action::ProposeCommit { min_ts, .. } => Some(*min_ts),
        _ => None,
    })
}

fn decisions_to(out: &[Action]) -> Vec<(GroupId, Decision)> {
    out.iter()
        .filter_map(|a| match a {
            Action::SendDecision {
                group, decision, ..
            } => Some((*group, *decision)),
            _ => None,
        })
        .collect()
}

/// `TXN` with both votes yes and its record applied at `s`.
fn committed_at(s: Timestamp) -> Coordinator {
    let (mut c, _) = begun();
    let mut out = Vec::new();
    c.on_vote(TXN, 2, Vote::Yes(ts(1)), &mut out);
    c.on_vote(TXN, 3, Vote::Yes(ts(2)), &mut out);
    c.on_commit_applied(TXN, s, &mut out);
    c
}

#[test]
fn spanner_s4_2_1_prepare_goes_to_every_participant_with_one_deadline() {
    let (_, out) = begun();
    let deadline = at(0).latest.saturating_add(1_000 * MS);
    assert_eq!(
        out,
        vec![
            Action::SendPrepare {
                group: 2,
                txn: TXN,
                deadline
            },
            Action::SendPrepare {
                group: 3,
                txn: TXN,
                deadline
            },
        ]
    );
}

#[test]
fn spanner_s4_2_1_commit_timestamp_is_at_least_every_prepare_timestamp() {
    let (mut c, _) = begun();
    let mut out = Vec::new();
    c.on_vote(TXN, 3, Vote::Yes(ts(40)), &mut out);
    assert_eq!(proposed_min_ts(&out), None, "one vote is not all");
    c.on_vote(TXN, 2, Vote::Yes(ts(25)), &mut out);
    assert_eq!(proposed_min_ts(&out), Some(ts(40)));
    assert!(c.is_committing(TXN));
}

#[test]
fn spanner_s4_1_2_commit_timestamp_is_above_now_latest_at_the_request() {
    // Prepare timestamps below the request's TT.now().latest do not pull
    // s below it (the start rule).
    let (mut c, _) = begun();
    let mut out = Vec::new();
    c.on_vote(TXN, 2, Vote::Yes(ts(0).saturating_sub(5 * MS)), &mut out);
    c.on_vote(TXN, 3, Vote::Yes(ts(0).saturating_sub(3 * MS)), &mut out);
    assert_eq!(proposed_min_ts(&out), Some(at(0).latest.next()));
}

#[test]
fn spanner_s4_2_1_one_no_vote_aborts_and_every_participant_hears_it() {
    let (mut c, _) = begun();
    let mut out = Vec::new();
    c.on_vote(TXN, 2, Vote::Yes(ts(1)), &mut out);
    c.on_vote(TXN, 3, Vote::No(AbortReason::Wounded), &mut out);
    assert!(out.contains(&Action::Aborted {
        txn: TXN,
        reason: AbortReason::Wounded
    }));
    assert_eq!(
        decisions_to(&out),
        vec![(2, Decision::Abort), (3, Decision::Abort)]
    );
    assert_eq!(c.decision(TXN), Some(Decision::Abort));
    // A yes arriving afterwards changes nothing.
    let mut late = Vec::new();
    c.on_vote(TXN, 3, Vote::Yes(ts(2)), &mut late);
    assert!(late.is_empty());
}

#[test]
fn pms_a_repeated_or_foreign_vote_is_counted_once_or_not_at_all() {
    let (mut c, _) = begun();
    let mut out = Vec::new();
    c.on_vote(TXN, 2, Vote::Yes(ts(1)), &mut out);
    c.on_vote(TXN, 2, Vote::Yes(ts(1)), &mut out);
    c.on_vote(TXN, 9, Vote::Yes(ts(1)), &mut out);
    assert_eq!(proposed_min_ts(&out), None, "group 3 has not voted");
}

#[test]
fn spanner_s4_2_1_the_client_hears_of_the_commit_only_once_its_record_applied() {
    let (mut c, _) = begun();
    let mut out = Vec::new();
    c.on_vote(TXN, 2, Vote::Yes(ts(1)), &mut out);
    c.on_vote(TXN, 3, Vote::Yes(ts(2)), &mut out);
    assert!(!out.iter().any(|a| matches!(a, Action::Committed { .. })));
    assert_eq!(decisions_to(&out), vec![], "no decision before the record");
    out.clear();
    c.on_commit_applied(TXN, ts(3), &mut out);
    assert_eq!(
        out[0],
        Action::Committed {
            txn: TXN,
            commit_ts: ts(3)
        }
    );
    assert_eq!(
        decisions_to(&out),
        vec![(2, Decision::Commit(ts(3))), (3, Decision::Commit(ts(3)))]
    );
    assert!(
        !c.wound(TXN, &mut out),
        "a decided transaction is not wounded"
    );
}

#[test]
fn design_s5_1_decisions_are_resent_until_acknowledged_then_forgotten() {
    let mut c = committed_at(ts(3));
    let mut out = Vec::new();
    c.on_ack(TXN, 2, &mut out);
    c.tick(at(150), &mut out);
    assert_eq!(decisions_to(&out), vec![(3, Decision::Commit(ts(3)))]);
    out.clear();
    c.on_ack(TXN, 3, &mut out);
    assert_eq!(c.decision(TXN), None, "nothing left to keep");
    c.tick(at(300), &mut out);
    assert_eq!(out, vec![Action::ProposeForget { txns: vec![TXN] }]);
    assert!(c.is_empty());
}

#[test]
fn design_s5_1_unanswered_prepares_are_resent_to_the_silent_only() {
    let (mut c, _) = begun();
    let mut out = Vec::new();
    c.on_vote(TXN, 2, Vote::Yes(ts(1)), &mut out);
    c.tick(at(50), &mut out);
    assert!(out.is_empty(), "not yet the resend interval");
    c.tick(at(150), &mut out);
    assert_eq!(
        out,
        vec![Action::SendPrepare {
            group: 3,
            txn: TXN,
            deadline: at(0).latest.saturating_add(1_000 * MS)
        }]
    );
}

#[test]
fn design_s5_1_votes_missing_at_the_deadline_abort_the_transaction() {
    let (mut c, _) = begun();
    let mut out = Vec::new();
    c.on_vote(TXN, 2, Vote::Yes(ts(1)), &mut out);
    // At the deadline itself a vote may still come.
    c.tick(at(1_000), &mut out);
    assert!(!out.iter().any(|a| matches!(a, Action::Aborted { .. })));
    c.tick(at(1_003), &mut out);
    assert!(out.contains(&Action::Aborted {
        txn: TXN,
        reason: AbortReason::Inactive
    }));
}

#[test]
fn design_s5_1_aborts_are_resent_until_every_participant_has_them() {
    let (mut c, _) = begun();
    let mut out = Vec::new();
    assert!(c.wound(TXN, &mut out), "wound-wait across groups");
    c.on_ack(TXN, 3, &mut out);
    out.clear();
    c.tick(at(150), &mut out);
    assert_eq!(decisions_to(&out), vec![(2, Decision::Abort)]);
    c.on_ack(TXN, 2, &mut out);
    assert!(c.is_empty());
}

#[test]
fn design_s5_1_a_commit_never_proposed_aborts_but_a_proposed_one_cannot_be_wounded() {
    let (mut c, _) = begun();
    let mut out = Vec::new();
    c.on_vote(TXN, 2, Vote::Yes(ts(1)), &mut out);
    c.on_vote(TXN, 3, Vote::Yes(ts(2)), &mut out);
    assert!(!c.wound(TXN, &mut out));
    c.on_commit_not_proposed(TXN, AbortReason::Overloaded, &mut out);
    assert!(out.contains(&Action::Aborted {
        txn: TXN,
        reason: AbortReason::Overloaded
    }));
}

#[test]
fn design_s5_1_a_new_leader_resumes_sending_kept_decisions() {
    let mut c = Coordinator::default();
    let mut out = Vec::new();
    c.resume_decided(at(0), [(TXN, ts(3), vec![4, 5], ts(900))], &mut out);
    assert_eq!(
        decisions_to(&out),
        vec![(4, Decision::Commit(ts(3))), (5, Decision::Commit(ts(3)))]
    );
    assert_eq!(c.decision(TXN), Some(Decision::Commit(ts(3))));
    c.on_ack(TXN, 4, &mut out);
    c.on_ack(TXN, 5, &mut out);
    out.clear();
    c.tick(at(1), &mut out);
    assert_eq!(out, vec![Action::ProposeForget { txns: vec![TXN] }]);
}
