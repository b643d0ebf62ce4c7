//! Protocol rules of the Paxos core, one test each, named after the rule
//! and citing the paper section it checks (Lamport, "Paxos Made Simple",
//! PMS; Spanner OSDI'12; Raft dissertation where the mechanism is Raft's).

mod common;

use common::*;
use meridian_paxos::testkit::LocalGroup;
use meridian_paxos::{
    Ballot, Body, Config, Input, LeaseStatus, MemStorage, MembershipChange, Message, Output,
    Payload, ProposeError, Recovered, Replica, Role, Storage,
};
use meridian_truetime::{Timestamp, TtInterval};
use rand::SeedableRng;
use rand::rngs::SmallRng;

#[test]
fn pms_s2_one_value_chosen_per_slot_across_leader_change() {
    let mut g = group(3);
    g.elect(1);
    for i in 0..5 {
        g.propose(1, cmd(i)).unwrap();
    }
    g.run();
    g.isolate(1);
    // Proposals the isolated leader takes can never be chosen.
    g.propose(1, cmd(100)).unwrap();
    g.elect(2);
    run_for(&mut g, 2_500 * MS);
    for i in 5..10 {
        g.propose(2, cmd(i)).unwrap();
    }
    g.heal();
    run_for(&mut g, 500 * MS);
    let a1 = g.applied(1).to_vec();
    let a2 = g.applied(2).to_vec();
    let a3 = g.applied(3).to_vec();
    assert_eq!(a1, a2);
    assert_eq!(a2, a3);
    let ids: Vec<u64> = commands(&a1).into_iter().map(|(i, _)| i).collect();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
}

#[test]
fn pms_s3_phase1_runs_once_per_leadership() {
    let mut g = group(3);
    g.elect(1);
    g.record_messages(true);
    for i in 0..100 {
        g.propose(1, cmd(i)).unwrap();
        g.run();
    }
    run_for(&mut g, 300 * MS);
    let sent = g.take_sent();
    assert!(sent.iter().all(|m| !matches!(m.body, Body::Prepare { .. })));
    assert!(sent.iter().any(|m| matches!(m.body, Body::Accept { .. })));
    assert_eq!(g.applied(3).len(), 101, "noop + 100 commands");
}

#[test]
fn pms_s3_accepts_are_batched_and_pipelined() {
    let mut g = LocalGroup::new(3, T0, EPS, |c| {
        c.max_batch_entries = 16;
        c.max_inflight = 4;
    });
    g.advance(3_000 * MS);
    g.elect(1);
    g.record_messages(true);
    g.propose_batch(1, (0..100).map(cmd)).unwrap();
    let sent = g.take_sent();
    let to2: Vec<_> = sent
        .iter()
        .filter_map(|m| match &m.body {
            Body::Accept { entries, .. } if m.to == 2 => Some(entries.len()),
            _ => None,
        })
        .collect();
    // Four batches of 16 in flight before any answer arrives.
    assert_eq!(to2, vec![16, 16, 16, 16]);
    g.run();
    assert_eq!(commands(g.applied(1)).len(), 100);
}

#[test]
fn pms_s3_acceptor_answers_only_after_persisting() {
    let mut g = group(3);
    g.elect(1);
    let before = g.applied(1).len();
    g.hold_persists(true);
    g.record_messages(true);
    g.propose(1, cmd(7)).unwrap();
    g.run();
    let accepted = g
        .take_sent()
        .into_iter()
        .filter(|m| matches!(m.body, Body::Accepted { .. }))
        .count();
    assert_eq!(accepted, 0, "no Accepted before the entry is durable");
    assert_eq!(
        g.applied(1).len(),
        before,
        "nothing chosen before it is durable"
    );
    g.hold_persists(false);
    g.release_persists();
    g.run();
    assert_eq!(g.applied(1).len(), before + 1);
}

#[test]
fn pms_s3_lagging_replica_catches_up() {
    let mut g = group(3);
    g.elect(1);
    g.isolate(3);
    for i in 0..50 {
        g.propose(1, cmd(i)).unwrap();
    }
    g.run();
    assert!(g.applied(3).len() <= 1);
    g.heal();
    run_for(&mut g, 300 * MS);
    assert_eq!(g.applied(3), g.applied(1));
}

#[test]
fn pms_s3_snapshot_installed_when_log_was_compacted() {
    let mut g = group(3);
    g.elect(1);
    g.isolate(3);
    for i in 0..50 {
        g.propose(1, cmd(i)).unwrap();
    }
    g.run();
    run_for(&mut g, 100 * MS);
    g.compact(1);
    g.compact(2);
    assert!(g.replica(1).first_slot() > 2);
    g.heal();
    run_for(&mut g, 300 * MS);
    assert_eq!(g.snapshots_restored(3), 1);
    assert_eq!(g.replica(3).applied(), g.replica(1).applied());
    g.propose(1, cmd(99)).unwrap();
    run_for(&mut g, 200 * MS);
    assert_eq!(g.replica(3).applied(), g.replica(1).applied());
}

#[test]
fn spanner_s4_1_1_new_leader_waits_out_old_lease() {
    let mut g = group(3);
    g.elect(1);
    assert!(g.replica(1).has_lease(g.now()));
    g.isolate(1);
    g.elect(2);
    assert_eq!(g.replica(2).role(), Role::Leader);
    // The deposed leader does not know yet and still holds its lease...
    assert!(g.replica(1).has_lease(g.now()));
    // ...so the new one must wait it out.
    assert!(matches!(
        g.replica(2).lease_status(g.now()),
        LeaseStatus::WaitingOutPrevious { .. }
    ));
    assert!(
        g.propose(2, cmd(1)).is_ok(),
        "proposals queue while waiting"
    );
    assert_eq!(g.replica(2).pending_len(), 1, "no timestamp assigned yet");
    run_for(&mut g, 2_500 * MS);
    assert!(!g.replica(1).has_lease(g.now()));
    assert!(g.replica(2).has_lease(g.now()));
    assert_eq!(g.replica(2).pending_len(), 0);
}

#[test]
fn spanner_s4_1_1_lease_is_extended_by_quorum_rounds() {
    let mut g = group(3);
    g.elect(1);
    // Five lease lengths of heartbeats: the lease never lapses.
    for _ in 0..100 {
        run_for(&mut g, 100 * MS);
        assert!(g.replica(1).has_lease(g.now()));
    }
}

#[test]
fn spanner_s4_1_1_lease_lapses_without_a_quorum() {
    let mut g = group(3);
    g.elect(1);
    g.isolate(1);
    run_for(&mut g, 2_200 * MS);
    assert!(!g.replica(1).has_lease(g.now()));
    // Check quorum: it also stopped calling itself leader.
    assert_ne!(g.replica(1).role(), Role::Leader);
}

#[test]
fn spanner_s4_1_2_timestamps_rise_across_leader_changes() {
    let mut g = group(3);
    g.elect(1);
    for i in 0..5 {
        g.propose(1, cmd(i)).unwrap();
    }
    g.run();
    let old_max = g.replica(1).last_assigned_ts();
    g.isolate(1);
    g.elect(2);
    run_for(&mut g, 2_500 * MS);
    for i in 5..10 {
        g.propose(2, cmd(i)).unwrap();
    }
    g.run();
    run_for(&mut g, 100 * MS);
    let cmds = commands(g.applied(3));
    assert_eq!(cmds.len(), 10);
    assert!(cmds.windows(2).all(|w| w[0].1 < w[1].1), "{cmds:?}");
    // The new leader's first timestamp is past the old leader's lease.
    assert!(cmds[5].1 > old_max);
}

#[test]
fn spanner_s4_1_2_timestamps_are_inside_the_lease_and_at_least_now_latest() {
    let mut g = group(3);
    g.elect(1);
    let now = g.now();
    g.propose(1, cmd(1)).unwrap();
    g.run();
    let LeaseStatus::Valid { end } = g.replica(1).lease_status(now) else {
        panic!("leader must hold its lease");
    };
    let (_, ts) = commands(g.applied(1))[0];
    assert!(ts >= now.latest && ts < end);
}

#[test]
fn raft_s4_1_membership_add_voter_catches_up_and_votes() {
    let mut g = LocalGroup::with_learners(3, 1, T0, EPS, |_| {});
    g.advance(3_000 * MS);
    g.elect(1);
    for i in 0..10 {
        g.propose(1, cmd(i)).unwrap();
    }
    g.run();
    g.propose_membership(1, MembershipChange::AddVoter(4))
        .unwrap();
    run_for(&mut g, 300 * MS);
    assert_eq!(g.replica(4).membership().voters, vec![1, 2, 3, 4]);
    assert_eq!(g.replica(4).applied(), g.replica(1).applied());
    // With four voters a quorum is three: 2 can only win with 4's promise.
    g.isolate(1);
    g.isolate(3);
    g.elect(2);
    assert_ne!(g.replica(2).role(), Role::Leader);
    g.heal();
    g.isolate(1);
    g.elect(2);
    assert_eq!(g.replica(2).role(), Role::Leader);
}

#[test]
fn raft_s4_1_membership_remove_voter() {
    let mut g = group(3);
    g.elect(1);
    g.propose_membership(1, MembershipChange::RemoveVoter(3))
        .unwrap();
    run_for(&mut g, 300 * MS);
    assert_eq!(g.replica(2).membership().voters, vec![1, 2]);
    assert_eq!(g.replica(2).membership().epoch, 1);
    // The removed replica no longer campaigns.
    g.isolate(1);
    g.isolate(2);
    run_for(&mut g, 2_000 * MS);
    assert_ne!(g.replica(3).role(), Role::Leader);
}

#[test]
fn raft_s4_1_one_membership_change_at_a_time() {
    let mut g = LocalGroup::with_learners(3, 2, T0, EPS, |_| {});
    g.advance(3_000 * MS);
    g.elect(1);
    g.hold_persists(true);
    g.propose_membership(1, MembershipChange::AddVoter(4))
        .unwrap();
    assert_eq!(
        g.propose_membership(1, MembershipChange::AddVoter(5)),
        Err(ProposeError::ChangeInProgress)
    );
    assert_eq!(
        g.propose_membership(2, MembershipChange::AddVoter(5)),
        Err(ProposeError::NotLeader { leader: Some(1) })
    );
}

#[test]
fn design_s3_stale_epoch_prepare_is_refused() {
    let mut g = group(3);
    g.elect(1);
    g.propose_membership(1, MembershipChange::RemoveVoter(3))
        .unwrap();
    run_for(&mut g, 300 * MS);
    g.advance(2_000 * MS); // past stickiness
    g.record_messages(true);
    let last = g.replica(2).last_slot();
    g.deliver(msg(
        3,
        2,
        Ballot::new(99, 3),
        Body::Prepare {
            last_slot: last + 10,
            last_ballot: Ballot::new(98, 3),
            pre_vote: false,
            hand_over: false,
        },
    ));
    assert!(
        g.take_sent().is_empty(),
        "stale-epoch candidate gets no answer"
    );
    assert!(g.replica(2).promised() < Ballot::new(99, 3));
}

#[test]
fn design_s3_other_cluster_messages_are_refused() {
    let mut g = group(3);
    g.elect(1);
    g.record_messages(true);
    let promised = g.replica(2).promised();
    g.deliver(Message {
        cluster_id: 77,
        ..msg(
            3,
            2,
            Ballot::new(50, 3),
            Body::Accept {
                prev_slot: 0,
                prev_ballot: Ballot::ZERO,
                entries: vec![],
                commit: 0,
                lease_start: Timestamp::ZERO,
            },
        )
    });
    assert!(g.take_sent().is_empty());
    assert_eq!(g.replica(2).promised(), promised);
}

#[test]
fn pms_s3_candidate_with_stale_log_gets_no_promise() {
    let mut g = group(3);
    g.elect(1);
    for i in 0..5 {
        g.propose(1, cmd(i)).unwrap();
    }
    g.run();
    g.advance(2_000 * MS); // past stickiness
    g.record_messages(true);
    g.deliver(msg(
        3,
        2,
        Ballot::new(50, 3),
        Body::Prepare {
            last_slot: 1,
            last_ballot: Ballot::ZERO,
            pre_vote: false,
            hand_over: false,
        },
    ));
    let sent = g.take_sent();
    assert!(matches!(
        sent.as_slice(),
        [Message {
            body: Body::Promise { granted: false, .. },
            ..
        }]
    ));
}

#[test]
fn raft_thesis_s4_2_3_leader_stickiness_ignores_disruptive_prepare() {
    let mut g = group(3);
    g.elect(1);
    g.record_messages(true);
    let tip = g.replica(2).last_slot();
    g.deliver(msg(
        3,
        2,
        Ballot::new(50, 3),
        Body::Prepare {
            last_slot: tip,
            last_ballot: g.replica(2).promised(),
            pre_vote: false,
            hand_over: false,
        },
    ));
    assert!(g.take_sent().is_empty());
    assert_eq!(g.replica(2).leader(), Some(1));
}

#[test]
fn pms_s3_promised_ballot_is_durable_before_promise_and_survives_restart() {
    let now = TtInterval::around(T0, EPS);
    let mut storage = MemStorage::new();
    let mut r = replica(2, Recovered::default(), 1, now);
    let later = TtInterval::around(T0.saturating_add(5_000 * MS), EPS);
    let mut out = Vec::new();
    r.step(
        later,
        Input::Message(msg(
            1,
            2,
            Ballot::new(5, 1),
            Body::Prepare {
                last_slot: 0,
                last_ballot: Ballot::ZERO,
                pre_vote: false,
                hand_over: false,
            },
        )),
        &mut out,
    );
    assert!(
        !out.iter().any(|o| matches!(o, Output::Send(_))),
        "promise gated on persist"
    );
    let Some(Output::Persist(req)) = out.iter().find(|o| matches!(o, Output::Persist(_))) else {
        panic!("promise must be persisted");
    };
    assert_eq!(req.hard_state.map(|h| h.promised), Some(Ballot::new(5, 1)));
    storage.write(req).unwrap();
    storage.sync().unwrap();
    let mut out2 = Vec::new();
    r.step(later, Input::Persisted { seq: req.seq }, &mut out2);
    assert!(out2.iter().any(|o| matches!(
        o,
        Output::Send(Message {
            body: Body::Promise { granted: true, .. },
            ..
        })
    )));
    // Crash and restart: the promise holds, a lower ballot is refused.
    storage.crash(0);
    let mut r = replica(2, storage.load().unwrap(), 2, later);
    assert_eq!(r.promised(), Ballot::new(5, 1));
    let mut out3 = Vec::new();
    r.step(
        later,
        Input::Message(msg(
            3,
            2,
            Ballot::new(4, 3),
            Body::Accept {
                prev_slot: 0,
                prev_ballot: Ballot::ZERO,
                entries: vec![],
                commit: 0,
                lease_start: later.earliest,
            },
        )),
        &mut out3,
    );
    assert!(out3.iter().any(|o| matches!(
        o,
        Output::Send(Message {
            body: Body::Accepted { ok: false, .. },
            ..
        })
    )));
}

#[test]
fn spanner_s4_1_1_restarted_replica_reports_a_full_lease_in_its_promise() {
    let now = TtInterval::around(T0, EPS);
    let r = replica(2, Recovered::default(), 1, now);
    assert_eq!(
        r.lease_granted_until(),
        now.latest
            .saturating_add(Config::new(2, vec![]).lease_nanos)
    );
}

#[test]
fn election_timeouts_are_randomized_by_the_injected_rng() {
    let now = TtInterval::around(T0, EPS);
    let a = replica(1, Recovered::default(), 1, now).next_deadline();
    let b = replica(1, Recovered::default(), 2, now).next_deadline();
    let a2 = replica(1, Recovered::default(), 1, now).next_deadline();
    assert_ne!(a, b);
    assert_eq!(a, a2);
}

#[test]
fn raft_thesis_s9_6_pre_vote_isolated_replica_does_not_depose_leader() {
    let mut g = group(3);
    g.elect(1);
    g.isolate(3);
    // Many election timeouts pass for the isolated replica.
    run_for(&mut g, 5_000 * MS);
    let round_before = g.replica(1).promised().round;
    assert!(
        g.replica(3).promised().round <= round_before,
        "pre-votes raise no ballot"
    );
    g.heal();
    run_for(&mut g, 500 * MS);
    assert_eq!(g.replica(1).role(), Role::Leader);
    assert_eq!(g.replica(1).promised().round, round_before);
    assert_eq!(g.replica(3).leader(), Some(1));
}

#[test]
fn pms_s3_value_is_chosen_only_by_a_quorum() {
    let mut g = group(3);
    g.elect(1);
    let before = g.applied(1).len();
    g.isolate(2);
    g.isolate(3);
    g.propose(1, cmd(1)).unwrap();
    g.run();
    assert_eq!(g.applied(1).len(), before, "a leader alone is no quorum");
    g.heal();
    g.isolate(3);
    run_for(&mut g, 100 * MS);
    assert_eq!(
        g.applied(1).len(),
        before + 1,
        "leader + one acceptor is a quorum"
    );
    assert_eq!(g.replica(1).chosen(), g.replica(1).last_slot());
}

#[test]
fn pms_s3_leader_counts_its_own_accept_only_once_durable() {
    let mut g = group(3);
    g.elect(1);
    g.isolate(3);
    let before = g.applied(1).len();
    g.hold_persists(true);
    g.propose(1, cmd(1)).unwrap();
    g.run();
    assert_eq!(g.applied(1).len(), before);
    g.hold_persists(false);
    g.release_persists();
    g.run();
    assert_eq!(g.applied(1).len(), before + 1);
}

#[test]
fn spanner_s4_1_2_proposal_reports_its_slot_and_paxos_timestamp() {
    let mut g = group(3);
    g.elect(1);
    g.take_proposal_events();
    let id = g.propose(1, cmd(42)).unwrap();
    g.run();
    let events = g.take_proposal_events();
    let [(1, Output::Proposed { id: got, slot, ts })] = events.as_slice() else {
        panic!("expected one Proposed from replica 1, got {events:?}");
    };
    assert_eq!(*got, id);
    let e = g
        .applied(1)
        .iter()
        .find(|e| e.slot == *slot)
        .expect("slot applied at the leader");
    assert_eq!(e.ts, *ts);
    assert_eq!(e.payload, Payload::Command(cmd(42)));
    assert!(
        *ts >= g.now().latest,
        "Spanner §4.1.2: ts >= TT.now().latest"
    );
}

#[test]
fn proposals_waiting_for_the_lease_are_dropped_when_the_leader_steps_down() {
    let mut g = group(3);
    g.elect(1);
    g.isolate(1);
    g.elect(2);
    // Replica 2 leads but must wait out replica 1's lease: the proposal
    // waits in its queue, outside the log.
    assert!(matches!(
        g.replica(2).lease_status(g.now()),
        LeaseStatus::WaitingOutPrevious { .. }
    ));
    g.take_proposal_events();
    let id = g.propose(2, cmd(1)).unwrap();
    assert!(g.take_proposal_events().is_empty());
    // Cut off from its followers too, it steps down (check-quorum) before
    // the old lease is over, and reports the proposal dropped.
    g.heal();
    g.isolate(2);
    run_for(&mut g, 1_200 * MS);
    assert_ne!(g.replica(2).role(), Role::Leader);
    let events = g.take_proposal_events();
    assert!(
        events
            .iter()
            .any(|(n, o)| *n == 2 && matches!(o, Output::Dropped(ids) if ids == &vec![id])),
        "{events:?}"
    );
}

#[test]
fn new_leader_term_starts_once_its_own_noop_is_applied() {
    let mut g = group(3);
    g.elect(1);
    assert!(g.replica(1).term_started());
    assert!(!g.replica(2).term_started(), "followers never start a term");
    g.isolate(1);
    // Every write is held on its way to disk: replica 2 wins only as the
    // held promises are released, and then its no-op is not yet durable
    // anywhere, so not chosen.
    g.hold_persists(true);
    g.elect(2);
    for _ in 0..10 {
        if g.replica(2).role() == Role::Leader {
            break;
        }
        g.release_persists();
        g.run();
    }
    assert_eq!(g.replica(2).role(), Role::Leader);
    assert!(!g.replica(2).term_started());
    g.hold_persists(false);
    g.release_persists();
    g.run();
    assert!(g.replica(2).term_started());
}

// ---------------------------------------------------------------------
// Ballots are (round, node) pairs, compared whole: two candidates of one
// round hold different ballots, and only the higher one may win.
// ---------------------------------------------------------------------

#[test]
fn pms_s2_acceptor_refuses_a_different_node_in_the_same_round() {
    let now = TtInterval::around(T0, EPS);
    let mut r = replica(3, Recovered::default(), 1, now);
    let (b51, b52) = (Ballot::new(5, 1), Ballot::new(5, 2));
    let empty = (0, Ballot::ZERO);
    let p = |from, b, pre| Input::Message(prepare(from, 3, b, empty, pre));
    assert!(granted(&step_durable(&mut r, now, p(1, b51, false))));
    // PMS §2: ballots are unique per proposer; (5, 2) is above (5, 1)...
    // (asked once replica 1's campaign has had its election timeout: until
    // then a pre-vote of another candidate is refused to let it finish)
    let now = TtInterval::around(T0.saturating_add(2_000 * MS), EPS);
    assert!(granted(&step_durable(&mut r, now, p(2, b52, true))));
    assert!(granted(&step_durable(&mut r, now, p(2, b52, false))));
    assert_eq!(r.promised(), b52);
    // ...so once (5, 2) is promised, (5, 1) gets no promise again, nor a
    // pre-vote: two candidates of round 5 must not both win.
    assert!(!granted(&step_durable(&mut r, now, p(1, b51, true))));
    assert!(!granted(&step_durable(&mut r, now, p(1, b51, false))));
    assert_eq!(r.promised(), b52);
    // A delayed Accept of (5, 1) is refused and leaves the log alone: it
    // could otherwise overwrite what (5, 2) counts as chosen.
    let late = accept(1, 3, b51, empty, vec![entry(1, b51, 1)]);
    let (ok, _, ballot) = accepted(&step_durable(&mut r, now, Input::Message(late)));
    assert!(!ok, "an Accept below the promised ballot is refused");
    assert_eq!(ballot, b52, "the refusal names the promised ballot");
    assert_eq!(r.last_slot(), 0);
    assert_eq!(r.promised(), b52);
}

#[test]
fn pms_s3_log_matching_compares_whole_ballots_in_the_same_round() {
    let now = TtInterval::around(T0, EPS);
    let mut r = replica(3, Recovered::default(), 1, now);
    let (b51, b52) = (Ballot::new(5, 1), Ballot::new(5, 2));
    let first = accept(
        1,
        3,
        b51,
        (0, Ballot::ZERO),
        vec![entry(1, b51, 1), entry(2, b51, 2)],
    );
    assert_eq!(
        accepted(&step_durable(&mut r, now, Input::Message(first))),
        (true, 2, b51)
    );
    // The next leader of round 5 is (5, 2). Its Accept implicitly promises
    // its ballot; its log tip (2 at (5, 2)) does not match ours (2 at
    // (5, 1)), so nothing is acknowledged as matching.
    let probe = accept(2, 3, b52, (2, b52), vec![]);
    let (ok, _, ballot) = accepted(&step_durable(&mut r, now, Input::Message(probe)));
    assert!(!ok, "slot 2 holds (5, 1), not (5, 2): no match");
    assert_eq!(ballot, b52);
    assert_eq!(
        r.promised(),
        b52,
        "a higher ballot's Accept raises the promise"
    );
    // Its own value for slot 1 replaces the (5, 1) one and cuts the rest.
    let fix = accept(2, 3, b52, (0, Ballot::ZERO), vec![entry(1, b52, 10)]);
    assert_eq!(
        accepted(&step_durable(&mut r, now, Input::Message(fix))),
        (true, 1, b52)
    );
    assert_eq!(r.entries(1, 9), vec![entry(1, b52, 10)]);
}

#[test]
fn pms_s3_promise_needs_a_log_as_up_to_date_by_whole_last_ballot() {
    let now = TtInterval::around(T0, EPS);
    let mut r = replica(3, Recovered::default(), 1, now);
    let (b51, b52) = (Ballot::new(5, 1), Ballot::new(5, 2));
    let from2 = accept(2, 3, b52, (0, Ballot::ZERO), vec![entry(1, b52, 1)]);
    assert!(accepted(&step_durable(&mut r, now, Input::Message(from2))).0);
    // Past leader stickiness.
    let later = TtInterval::around(T0.saturating_add(2_000 * MS), EPS);
    // A longer log that ends in (5, 1) lacks what (5, 2) may have chosen.
    for pre in [true, false] {
        let stale = prepare(1, 3, Ballot::new(6, 1), (3, b51), pre);
        assert!(
            !granted(&step_durable(&mut r, later, Input::Message(stale))),
            "pre_vote={pre}"
        );
    }
    assert_eq!(r.promised(), b52);
    // The same tip as ours is up to date.
    for pre in [true, false] {
        let current = prepare(1, 3, Ballot::new(7, 1), (1, b52), pre);
        assert!(
            granted(&step_durable(&mut r, later, Input::Message(current))),
            "pre_vote={pre}"
        );
    }
    assert_eq!(r.promised(), Ballot::new(7, 1));
}

#[test]
fn pms_s3_leader_steps_down_when_refused_by_a_higher_node_of_its_round() {
    let mut g = group(3);
    g.elect(1);
    let b = g.replica(1).promised();
    // Replica 2 campaigned in the same round and won replica 3's promise.
    g.deliver(msg(
        3,
        1,
        Ballot::new(b.round, 2),
        Body::Accepted {
            ok: false,
            upto: 0,
            lease_start: Timestamp::ZERO,
        },
    ));
    assert_eq!(g.replica(1).role(), Role::Follower);
    assert!(!g.replica(1).has_lease(g.now()));
}

// ---------------------------------------------------------------------
// Raft §5.4.2 (Figure 8): a leader chooses by counting only entries of
// its own ballot.
// ---------------------------------------------------------------------

/// Hands over what the replicas sent, wave after wave, while `allow` lets
/// it through; the rest is lost. Every replica is isolated, so nothing
/// travels through the group's own queue.
fn pump(g: &mut LocalGroup, allow: &impl Fn(&LocalGroup, &Message) -> bool) {
    loop {
        let sent = g.take_sent();
        if sent.is_empty() {
            return;
        }
        for m in sent {
            if allow(g, &m) {
                g.deliver(m);
            }
        }
    }
}

/// Ticks `id` at each of its deadlines, handing over what `allow` lets
/// through, until it leads at a ballot above `above`.
fn win_above(
    g: &mut LocalGroup,
    id: u64,
    above: Ballot,
    allow: &impl Fn(&LocalGroup, &Message) -> bool,
) {
    for _ in 0..200 {
        if g.replica(id).role() == Role::Leader && g.replica(id).promised() > above {
            return;
        }
        let deadline = g.replica(id).next_deadline();
        let mid = g.now().midpoint();
        if deadline > mid {
            g.advance(deadline.nanos_since(mid));
        }
        g.tick(id);
        pump(g, allow);
    }
    panic!("replica {id} did not win a ballot above {above:?}");
}

fn between(a: u64, b: u64, m: &Message) -> bool {
    (m.from == a && m.to == b) || (m.from == b && m.to == a)
}

#[test]
fn raft_s5_4_2_leader_never_commits_an_old_ballot_entry_by_counting() {
    // One entry per Accept, so a follower can hold the old entry without
    // the new leader's no-op behind it.
    let mut g = LocalGroup::new(3, T0, EPS, |c| c.max_batch_entries = 1);
    g.advance(3_000 * MS);
    g.elect(1);
    let b1 = g.replica(1).promised();
    for id in 1..=3 {
        g.isolate(id);
    }
    g.record_messages(true);
    // L1 (b1) writes X to slot 2 on its own disk only.
    g.propose(1, cmd(7)).unwrap();
    g.take_sent();
    assert_eq!(g.replica(1).entries(2, 2)[0].ballot, b1);
    // L2 (b2) wins with 3's promise; its no-op for slot 2 stays with it.
    win_above(&mut g, 2, b1, &|_, m| {
        between(2, 3, m) && !matches!(m.body, Body::Accept { .. })
    });
    let b2 = g.replica(2).promised();
    // L1 comes back with b3 and brings X to 3: now a quorum holds X at
    // slot 2, but at b1, while L1's own no-op (slot 3, b3) is still only
    // its own.
    win_above(&mut g, 1, b2, &|g, m| {
        let carries_own_noop = matches!(&m.body, Body::Accept { entries, .. }
            if entries.iter().any(|e| e.slot == 3));
        between(1, 3, m) && !(carries_own_noop && g.replica(3).last_slot() >= 2)
    });
    let b3 = g.replica(1).promised();
    assert_eq!(
        g.replica(3).entries(2, 2)[0].payload,
        Payload::Command(cmd(7))
    );
    assert_eq!(g.replica(1).entries(3, 3)[0].ballot, b3);
    assert_eq!(
        g.replica(1).chosen(),
        1,
        "slot 2 is held by a quorum, but at b1 < b3: not chosen by counting"
    );
    assert!(commands(g.applied(1)).is_empty());
    // Why: L1 stops, and L2, whose last entry (b2) is above 3's (b1),
    // wins 3's promise and overwrites slot 2 with its no-op.
    win_above(&mut g, 2, b3, &|_, m| between(2, 3, m));
    assert_eq!(g.replica(3).entries(2, 2)[0].ballot, b2);
    g.record_messages(false);
    g.heal();
    run_for(&mut g, 1_000 * MS);
    assert_eq!(g.replica(2).role(), Role::Leader);
    assert_eq!(g.applied(1), g.applied(2));
    assert_eq!(g.applied(3), g.applied(2));
    assert_eq!(g.applied(1)[1].payload, Payload::Noop);
}

// ---------------------------------------------------------------------
// Spanner §4.1.1 with a wide TrueTime interval: lease votes run from
// `TT.now().latest`, the leader's lease from `TT.now().earliest`.
// ---------------------------------------------------------------------

/// ε wide enough that earliest, midpoint and latest differ by 50 ms.
const WIDE_EPS: u64 = 50 * MS;

fn lease_nanos() -> u64 {
    Config::new(1, vec![]).lease_nanos
}

#[test]
fn spanner_s4_1_1_lease_vote_runs_to_latest_plus_lease_and_the_next_leader_waits_it_out() {
    let mut g = LocalGroup::new(3, T0, WIDE_EPS, |_| {});
    g.advance(3_000 * MS);
    g.elect(1);
    // One heartbeat round at a known reading: the last leader message 2
    // and 3 accept.
    g.advance(100 * MS);
    g.tick(1);
    g.run();
    let sent_at = g.now();
    let vote_end = sent_at.latest.saturating_add(lease_nanos());
    assert_eq!(g.replica(2).lease_granted_until(), vote_end);
    assert_eq!(g.replica(3).lease_granted_until(), vote_end);
    g.isolate(1);
    g.record_messages(true);
    g.elect(2);
    assert_eq!(g.replica(2).role(), Role::Leader);
    let reported: Vec<Timestamp> = g
        .take_sent()
        .into_iter()
        .filter_map(|m| match m.body {
            Body::Promise {
                granted: true,
                pre_vote: false,
                lease_until,
            } => Some(lease_until),
            _ => None,
        })
        .collect();
    assert_eq!(reported, vec![vote_end], "the promise reports the vote");
    assert_eq!(
        g.replica(2).lease_status(g.now()),
        LeaseStatus::WaitingOutPrevious {
            wait_until: vote_end
        }
    );
    // No timestamp until TT.after(vote_end), i.e. earliest > vote_end.
    g.propose(2, cmd(1)).unwrap();
    while g.now().earliest.saturating_add(100 * MS) < vote_end {
        run_for(&mut g, 50 * MS);
    }
    g.advance(vote_end.nanos_since(g.now().earliest));
    assert_eq!(g.now().earliest, vote_end);
    g.tick(2);
    g.run();
    assert!(!g.replica(2).has_lease(g.now()));
    assert_eq!(
        g.replica(2).pending_len(),
        1,
        "TT.after(end) is not yet true"
    );
    g.advance(1);
    g.tick(2);
    g.run();
    assert!(g.replica(2).has_lease(g.now()));
    assert_eq!(g.replica(2).pending_len(), 0);
    let (_, ts) = commands(g.applied(2))[0];
    assert!(ts > vote_end);
}

#[test]
fn spanner_s4_1_1_candidate_counts_its_own_lease_vote() {
    let mut g = group(3);
    g.elect(1);
    // 3 hears the leader last at t1, 2 at t2 > t1.
    g.isolate(3);
    g.advance(100 * MS);
    g.tick(1);
    g.run();
    let own = g.replica(2).lease_granted_until();
    assert!(own > g.replica(3).lease_granted_until());
    g.heal();
    g.isolate(1);
    g.elect(2);
    assert_eq!(
        g.replica(2).lease_status(g.now()),
        LeaseStatus::WaitingOutPrevious { wait_until: own }
    );
}

#[test]
fn spanner_s4_1_1_leader_lease_runs_from_earliest_send_time_in_a_one_voter_group() {
    // One voter: the leader's own vote alone is the quorum.
    let mut g = LocalGroup::new(1, T0, WIDE_EPS, |_| {});
    g.advance(3_000 * MS);
    g.elect(1);
    g.advance(100 * MS);
    g.tick(1);
    let sent_at = g.now();
    let end = sent_at.earliest.saturating_add(lease_nanos());
    assert_eq!(
        g.replica(1).lease_status(g.now()),
        LeaseStatus::Valid { end }
    );
    // Its own vote, like any acceptor's, is reported as running to
    // latest + lease, past the lease it backs.
    assert_eq!(
        g.replica(1).lease_granted_until(),
        sent_at.latest.saturating_add(lease_nanos())
    );
    // TT.before(end) means latest < end.
    g.advance(end.nanos_since(g.now().latest) - 1);
    assert!(g.replica(1).has_lease(g.now()));
    g.advance(1);
    assert_eq!(g.now().latest, end);
    assert_eq!(g.replica(1).lease_status(g.now()), LeaseStatus::Expired);
}

#[test]
fn spanner_s4_1_1_leader_lease_runs_from_earliest_send_time() {
    let mut g = LocalGroup::new(3, T0, WIDE_EPS, |_| {});
    g.advance(3_000 * MS);
    g.elect(1);
    g.advance(100 * MS);
    g.tick(1);
    g.run();
    let end = g.now().earliest.saturating_add(lease_nanos());
    assert_eq!(
        g.replica(1).lease_status(g.now()),
        LeaseStatus::Valid { end }
    );
    // The lease ends before any vote a follower granted for it.
    assert!(end < g.replica(2).lease_granted_until());
}

// ---------------------------------------------------------------------
// Raft thesis §9.6: pre-vote applies the log check of a real vote.
// ---------------------------------------------------------------------

#[test]
fn raft_thesis_s9_6_pre_vote_refuses_a_candidate_whose_log_is_behind() {
    let mut g = group(3);
    g.elect(1);
    let ballot = g.replica(1).promised();
    g.isolate(3);
    for i in 0..5 {
        g.propose(1, cmd(i)).unwrap();
    }
    g.run();
    assert!(g.replica(3).last_slot() < g.replica(2).last_slot());
    // The leader is silent long enough that stickiness holds no one back,
    // and the lagging replica's election timer fires first.
    g.advance(Config::new(1, vec![]).election_min_nanos);
    g.heal();
    g.record_messages(true);
    g.elect(3);
    let answers: Vec<bool> = g
        .take_sent()
        .into_iter()
        .filter_map(|m| match m.body {
            Body::Promise {
                granted,
                pre_vote: true,
                ..
            } if m.to == 3 => Some(granted),
            _ => None,
        })
        .collect();
    assert_eq!(answers, vec![false, false], "both refuse the stale log");
    assert_eq!(g.replica(3).promised(), ballot, "no real ballot was raised");
    // The leader speaks again and keeps its leadership and ballot.
    g.tick(1);
    g.run();
    run_for(&mut g, 500 * MS);
    assert_eq!(g.replica(1).role(), Role::Leader);
    assert_eq!(g.replica(1).promised(), ballot);
    assert_eq!(g.replica(3).leader(), Some(1));
    assert_eq!(g.replica(3).applied(), g.replica(1).applied());
}

// ---------------------------------------------------------------------
// Boundaries of the commit index, membership changes and timestamps.
// ---------------------------------------------------------------------

#[test]
fn pms_s3_follower_marks_chosen_only_what_matches_the_leader() {
    let now = TtInterval::around(T0, EPS);
    let mut r = replica(3, Recovered::default(), 1, now);
    let (b5, b6) = (Ballot::new(5, 1), Ballot::new(6, 2));
    let old = accept(
        1,
        3,
        b5,
        (0, Ballot::ZERO),
        (1..=3).map(|s| entry(s, b5, s)).collect(),
    );
    assert!(accepted(&step_durable(&mut r, now, Input::Message(old))).0);
    // The next leader chose slot 2 with its own value; its heartbeat
    // matches our log only up to slot 1.
    let heartbeat = msg(
        2,
        3,
        b6,
        Body::Accept {
            prev_slot: 1,
            prev_ballot: b5,
            entries: vec![],
            commit: 2,
            lease_start: Timestamp::ZERO,
        },
    );
    assert_eq!(
        accepted(&step_durable(&mut r, now, Input::Message(heartbeat))),
        (true, 1, b6)
    );
    assert_eq!(r.chosen(), 1, "our slot 2 is not the leader's");
    let fix = msg(
        2,
        3,
        b6,
        Body::Accept {
            prev_slot: 1,
            prev_ballot: b5,
            entries: vec![entry(2, b6, 20)],
            commit: 2,
            lease_start: Timestamp::ZERO,
        },
    );
    assert!(accepted(&step_durable(&mut r, now, Input::Message(fix))).0);
    assert_eq!(r.chosen(), 2);
    assert_eq!(r.entries(1, 9), vec![entry(1, b5, 1), entry(2, b6, 20)]);
}

#[test]
fn raft_s4_1_membership_change_waits_for_an_entry_of_the_leaders_own_ballot() {
    let mut g = group(3);
    g.elect(1);
    g.isolate(1);
    // Replica 2 wins while its no-op is not yet durable, so not chosen.
    g.hold_persists(true);
    g.elect(2);
    for _ in 0..10 {
        if g.replica(2).role() == Role::Leader {
            break;
        }
        g.release_persists();
        g.run();
    }
    assert_eq!(g.replica(2).role(), Role::Leader);
    assert_eq!(
        g.propose_membership(2, MembershipChange::RemoveVoter(1)),
        Err(ProposeError::ChangeInProgress)
    );
    g.hold_persists(false);
    g.release_persists();
    g.run();
    assert!(
        g.propose_membership(2, MembershipChange::RemoveVoter(1))
            .is_ok()
    );
}

#[test]
fn spanner_s4_1_2_timestamps_stay_strictly_inside_the_lease() {
    let mut r = Replica::new(
        Config::new(1, vec![1]),
        Recovered::default(),
        Box::new(SmallRng::seed_from_u64(1)),
    );
    r.start(TtInterval::around(T0, EPS), &mut Vec::new());
    let now = TtInterval::around(T0.saturating_add(3_000 * MS), EPS);
    step_durable(&mut r, now, Input::Tick);
    let LeaseStatus::Valid { end } = r.lease_status(now) else {
        panic!("a one-voter leader holds its lease at once");
    };
    // Close enough to the lease's end that a minimum timestamp there is not
    // held back as far-future.
    let now = TtInterval::around(
        end.saturating_sub(meridian_paxos::FUTURE_TS_LEAD_NANOS / 2 + EPS),
        EPS,
    );
    let mut out = Vec::new();
    let last = r
        .propose_at_least(now, cmd(1), end.prev(), &mut out)
        .unwrap();
    let at_end = r.propose_at_least(now, cmd(2), end, &mut out).unwrap();
    let proposed: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Proposed { id, ts, .. } => Some((*id, *ts)),
            _ => None,
        })
        .collect();
    assert_eq!(proposed, vec![(last, end.prev())]);
    assert!(at_end > last);
    assert_eq!(r.pending_len(), 1, "a timestamp at the lease end waits");
}

/// An acceptor that accepted slots 1..=4 at (5, 1), then is sent a
/// snapshot up to slot 2 whose last entry has `snap_ballot`.
fn install_over_old_log(snap_ballot: Ballot) -> Replica {
    let now = TtInterval::around(T0, EPS);
    let mut r = replica(3, Recovered::default(), 1, now);
    let b5 = Ballot::new(5, 1);
    let old = accept(
        1,
        3,
        b5,
        (0, Ballot::ZERO),
        (1..=4).map(|s| entry(s, b5, s)).collect(),
    );
    assert!(accepted(&step_durable(&mut r, now, Input::Message(old))).0);
    let snapshot = meridian_paxos::Snapshot {
        last_slot: 2,
        last_ballot: snap_ballot,
        membership: meridian_paxos::Membership::new(0, vec![1, 2, 3]),
        ..meridian_paxos::Snapshot::default()
    };
    let install = msg(
        2,
        3,
        Ballot::new(6, 2),
        Body::InstallSnapshot {
            snapshot,
            lease_start: Timestamp::ZERO,
        },
    );
    assert_eq!(
        accepted(&step_durable(&mut r, now, Input::Message(install))),
        (true, 2, Ballot::new(6, 2))
    );
    assert_eq!((r.first_slot(), r.chosen(), r.applied()), (3, 2, 2));
    r
}

#[test]
fn raft_s7_snapshot_keeps_the_log_after_it_only_if_its_last_entry_matches() {
    let b5 = Ballot::new(5, 1);
    // The snapshot's slot 2 is our slot 2: what follows stays.
    let r = install_over_old_log(b5);
    assert_eq!(r.entries(1, 9), vec![entry(3, b5, 3), entry(4, b5, 4)]);
    // The snapshot's slot 2 was chosen at another ballot: our later
    // entries followed a different value and are dropped.
    let r = install_over_old_log(Ballot::new(6, 2));
    assert_eq!(r.last_slot(), 2);
    assert!(r.entries(1, 9).is_empty());
}

#[test]
fn pms_s2_a_duplicated_promise_counts_once() {
    // Five voters: a quorum is three. A candidate that counted one
    // acceptor's duplicated promise twice would win with two real votes.
    let t = TtInterval::around(T0, EPS);
    let mut r = Replica::new(
        Config::new(1, vec![1, 2, 3, 4, 5]),
        Recovered::default(),
        Box::new(SmallRng::seed_from_u64(3)),
    );
    r.start(t, &mut Vec::new());
    // Past any election timeout: the replica asks for pre-votes.
    let later = TtInterval::around(T0.saturating_add(2_000 * MS), EPS);
    let sent = step_durable(&mut r, later, Input::Tick);
    let ballot = sent
        .iter()
        .find_map(|m| match m.body {
            Body::Prepare { pre_vote: true, .. } => Some(m.ballot),
            _ => None,
        })
        .expect("a pre-vote went out");
    let promise = |pre_vote| {
        msg(
            2,
            1,
            ballot,
            Body::Promise {
                granted: true,
                pre_vote,
                lease_until: Timestamp::ZERO,
            },
        )
    };
    for _ in 0..3 {
        let sent = step_durable(&mut r, later, Input::Message(promise(true)));
        assert!(
            !sent.iter().any(|m| matches!(
                m.body,
                Body::Prepare {
                    pre_vote: false,
                    ..
                }
            )),
            "one acceptor's pre-votes, however often repeated, started a campaign"
        );
    }
    assert_eq!(r.role(), Role::Candidate);
    assert!(r.promised() < ballot, "no ballot was raised");
}

#[test]
fn pms_s3_a_candidate_told_of_a_higher_promise_campaigns_above_it_instead_of_leading() {
    // Three voters. Replica 3 promised itself ballot 9 in a campaign that
    // went nowhere and kept the promise across a crash. A candidate that
    // wins replica 2's promise at a lower ballot after 3's refusal named
    // ballot 9 would lead only until 3 refused its first Accept, then sit
    // out an election timeout: one more election. It campaigns above 9 at
    // once instead.
    let t = TtInterval::around(T0, EPS);
    let mut r = Replica::new(
        Config::new(1, vec![1, 2, 3]),
        Recovered::default(),
        Box::new(SmallRng::seed_from_u64(3)),
    );
    r.start(t, &mut Vec::new());
    let later = TtInterval::around(T0.saturating_add(2_000 * MS), EPS);
    let sent = step_durable(&mut r, later, Input::Tick);
    let pre = sent
        .iter()
        .find_map(|m| match m.body {
            Body::Prepare { pre_vote: true, .. } => Some(m.ballot),
            _ => None,
        })
        .expect("a pre-vote went out");
    let promise = |from, ballot, granted, pre_vote| {
        Input::Message(msg(
            from,
            1,
            ballot,
            Body::Promise {
                granted,
                pre_vote,
                lease_until: Timestamp::ZERO,
            },
        ))
    };
    step_durable(&mut r, later, promise(2, pre, true, true));
    let ballot = r.promised();
    assert_eq!(r.role(), Role::Candidate);
    assert!(
        ballot.round < 9,
        "the first campaign's ballot is {ballot:?}"
    );
    // Replica 3 refuses, naming its promise; replica 2 grants.
    step_durable(&mut r, later, promise(3, Ballot::new(9, 3), false, false));
    let sent = step_durable(&mut r, later, promise(2, ballot, true, false));
    assert_eq!(
        r.role(),
        Role::Candidate,
        "not a leader at a refused ballot"
    );
    let again = sent
        .iter()
        .find_map(|m| match m.body {
            Body::Prepare {
                pre_vote: false, ..
            } => Some(m.ballot),
            _ => None,
        })
        .expect("a new campaign went out at once");
    assert!(again.round > 9, "campaigned at {again:?}");
    // With the quorum's promises for it, it leads.
    step_durable(&mut r, later, promise(2, again, true, false));
    assert_eq!(r.role(), Role::Leader);
    assert_eq!(r.promised(), again);
}

#[test]
fn spanner_s4_2_1_a_far_future_minimum_timestamp_does_not_hold_back_later_proposals() {
    let mut r = Replica::new(
        Config::new(1, vec![1]),
        Recovered::default(),
        Box::new(SmallRng::seed_from_u64(1)),
    );
    r.start(TtInterval::around(T0, EPS), &mut Vec::new());
    let now = TtInterval::around(T0.saturating_add(3_000 * MS), EPS);
    step_durable(&mut r, now, Input::Tick);
    assert!(r.has_lease(now));
    // A commit whose floor lies 200 ms ahead (a participant's clock runs
    // ahead), then an ordinary write.
    let far = now.latest.saturating_add(200 * MS);
    let mut out = Vec::new();
    let late = r.propose_at_least(now, cmd(1), far, &mut out).unwrap();
    let next = r.propose(now, cmd(2), &mut out).unwrap();
    let placed = |out: &[Output]| -> Vec<(u64, Timestamp)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Proposed { id, ts, .. } => Some((*id, *ts)),
                _ => None,
            })
            .collect()
    };
    // The ordinary write goes first, at a timestamp of now, not of `far`.
    let first = placed(&out);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].0, next);
    assert!(first[0].1 < far, "held back behind the far-future floor");
    assert_eq!(r.pending_len(), 1);
    // The replica asks to be woken when the floor comes within reach, and
    // then places the held-back proposal at its floor.
    let wake = r.next_deadline();
    assert!(
        wake < now.midpoint().saturating_add(200 * MS),
        "woken in time"
    );
    let then = TtInterval::around(
        far.saturating_sub(meridian_paxos::FUTURE_TS_LEAD_NANOS + EPS),
        EPS,
    );
    let mut out = Vec::new();
    r.step(then, Input::Tick, &mut out);
    let second = placed(&out);
    assert_eq!(second, vec![(late, far)]);
}

#[test]
fn raft_s9_6_a_replica_that_just_promised_a_candidate_refuses_other_pre_votes_for_a_while() {
    // Otherwise a second candidate, pre-voted in the moment before the
    // first one wins, deposes it at once: one more election round.
    let now = TtInterval::around(T0, EPS);
    let mut r = replica(3, Recovered::default(), 1, now);
    let empty = (0, Ballot::ZERO);
    let p = |from, b, pre| Input::Message(prepare(from, 3, b, empty, pre));
    assert!(granted(&step_durable(
        &mut r,
        now,
        p(1, Ballot::new(5, 1), false)
    )));
    // Another candidate's pre-vote, right after: refused; the first
    // candidate's own pre-vote for a later ballot is still granted.
    assert!(!granted(&step_durable(
        &mut r,
        now,
        p(2, Ballot::new(6, 2), true)
    )));
    assert!(granted(&step_durable(
        &mut r,
        now,
        p(1, Ballot::new(6, 1), true)
    )));
    // A real prepare is answered on ballots alone (safety is untouched).
    assert!(granted(&step_durable(
        &mut r,
        now,
        p(2, Ballot::new(6, 2), false)
    )));
    // Once an election timeout has passed, pre-votes are granted again.
    let later = TtInterval::around(T0.saturating_add(2_000 * MS), EPS);
    assert!(granted(&step_durable(
        &mut r,
        later,
        p(1, Ballot::new(7, 1), true)
    )));
}

#[test]
fn raft_s9_6_a_follower_that_grants_a_pre_vote_waits_a_full_election_timeout_before_campaigning() {
    // Followers that lost the same leader time out close together; one
    // that starts its own campaign just after backing another's makes a
    // duel, one more election round.
    let now = TtInterval::around(T0, EPS);
    let mut r = replica(3, Recovered::default(), 1, now);
    let own = r.next_deadline();
    let min = Config::new(3, vec![1, 2, 3]).election_min_nanos;
    let asked = TtInterval::around(own.saturating_sub(MS), EPS);
    let empty = (0, Ballot::ZERO);
    let pre_vote = Input::Message(prepare(1, 3, Ballot::new(5, 1), empty, true));
    assert!(granted(&step_durable(&mut r, asked, pre_vote)));
    assert!(
        r.next_deadline() >= asked.midpoint().saturating_add(min),
        "campaigns at {} though it backed a candidate at {}",
        r.next_deadline(),
        asked.midpoint()
    );
    // Its old deadline passes without a campaign.
    let past = TtInterval::around(own.saturating_add(MS), EPS);
    step_durable(&mut r, past, Input::Tick);
    assert_eq!(r.role(), Role::Follower);
}

/// Spanner §4.2.1: a prepare timestamp need only exceed the timestamps
/// assigned before it, and a commit timestamp's clock bound is the one at
/// the commit's arrival, which the caller gives as `min_ts`. So a record
/// proposed with `propose_above` takes the next timestamp above everything
/// assigned or promised — the log, the raised floor, every earlier
/// leader's lease — and `min_ts`, without reaching `TT.now().latest`.
#[test]
fn spanner_s4_2_1_a_record_proposed_above_takes_the_next_timestamp_without_reading_the_clock() {
    let mut g = group(3);
    g.elect(1);
    g.propose(1, cmd(1)).unwrap();
    g.run();
    let first = commands(g.applied(1))[0].1;
    g.advance(20 * MS);
    g.tick_all();
    g.run();
    let now = g.now();
    // Not the clock: the next timestamp after the last one.
    g.propose_above(1, cmd(2), Timestamp::ZERO).unwrap();
    g.run();
    let second = commands(g.applied(1))[1].1;
    assert_eq!(second, first.next(), "now.latest {:?}", now.latest);
    assert!(second < now.latest);
    // At least min_ts.
    let min = first.saturating_add(5 * MS);
    g.propose_above(1, cmd(3), min).unwrap();
    g.run();
    assert_eq!(commands(g.applied(1))[2].1, min);
    // Above a raised floor (a read served there must not see it).
    let floor = min.saturating_add(MS);
    assert!(g.raise_ts_floor(1, floor).is_some());
    g.propose_above(1, cmd(4), Timestamp::ZERO).unwrap();
    g.run();
    assert_eq!(commands(g.applied(1))[3].1, floor.next());
    // A clock-bound proposal still reaches TT.now().latest.
    g.propose(1, cmd(5)).unwrap();
    g.run();
    assert!(commands(g.applied(1))[4].1 >= g.now().latest);
    // A new leader's first such record lies past the old leader's lease,
    // inside which the old leader may have served reads.
    let LeaseStatus::Valid { end: old_lease } = g.replica(1).lease_status(g.now()) else {
        panic!("leader 1 holds its lease");
    };
    g.isolate(1);
    g.elect(2);
    run_for(&mut g, 2_500 * MS);
    g.propose_above(2, cmd(6), Timestamp::ZERO).unwrap();
    g.run();
    run_for(&mut g, 100 * MS);
    let (id, ts) = *commands(g.applied(2)).last().unwrap();
    assert_eq!(id, 6);
    assert!(
        ts > old_lease,
        "{ts:?} inside the old lease ending {old_lease:?}"
    );
}

// ---------------------------------------------------------------------
// One leader per round (docs/paxos.md): two candidates that campaign in
// one round make one leader, not a duel.
// ---------------------------------------------------------------------

/// Replica `id` of {1, 2, 3}, started at `T0`, campaigning with another
/// replica's pre-vote: the replica, its campaign's ballot (not yet won),
/// and now.
fn campaigning(id: u64) -> (Replica, Ballot, TtInterval) {
    let granter = if id == 1 { 2 } else { 1 };
    let mut r = replica(id, Recovered::default(), 3, TtInterval::around(T0, EPS));
    let now = TtInterval::around(T0.saturating_add(2_000 * MS), EPS);
    let sent = step_durable(&mut r, now, Input::Tick);
    let pre = sent
        .iter()
        .find_map(|m| match m.body {
            Body::Prepare { pre_vote: true, .. } => Some(m.ballot),
            _ => None,
        })
        .expect("a pre-vote went out");
    let grant = msg(
        granter,
        id,
        pre,
        Body::Promise {
            granted: true,
            pre_vote: true,
            lease_until: Timestamp::ZERO,
        },
    );
    step_durable(&mut r, now, Input::Message(grant));
    assert_eq!(r.role(), Role::Candidate);
    let own = r.promised();
    assert_eq!(own.node, id);
    (r, own, now)
}

/// An `Accept` from the leader at `ballot` (replica `ballot.node`) to
/// replica 3 carrying its no-op for slot 1.
fn leader_accept(ballot: Ballot) -> Input {
    let noop = meridian_paxos::Entry {
        slot: 1,
        ballot,
        ts: Timestamp::ZERO,
        payload: Payload::Noop,
    };
    Input::Message(accept(
        ballot.node,
        3,
        ballot,
        (0, Ballot::ZERO),
        vec![noop],
    ))
}

#[test]
fn pms_s3_a_candidate_yields_to_the_leader_of_its_own_round() {
    // Replica 2 won round r at (r, 2) while replica 3's campaign at
    // (r, 3) went unanswered. Refusing (r, 2)'s Accept as below its own
    // promise, replica 3 would depose that leader and cost one more
    // election: it yields instead. Safe: that promise was to itself alone
    // (its campaign's round is above every ballot it promised before),
    // it never led at it, and it gives that campaign up for good.
    let (mut r, own, now) = campaigning(3);
    let leader = Ballot::new(own.round, 2);
    let (ok, upto, ballot) = accepted(&step_durable(&mut r, now, leader_accept(leader)));
    assert!(ok, "a candidate of the leader's round accepts its entries");
    assert_eq!((upto, ballot), (1, leader));
    assert_eq!(r.role(), Role::Follower);
    assert_eq!(r.leader(), Some(2));
    assert_eq!(r.promised(), leader, "its own campaign is given up");
    // A leader of an earlier round is still refused.
    let stale = Ballot::new(own.round - 1, 2);
    let (ok, _, ballot) = accepted(&step_durable(&mut r, now, leader_accept(stale)));
    assert!(!ok);
    assert_eq!(ballot, leader);
}

#[test]
fn pms_s3_a_replica_that_may_have_led_at_its_promise_never_yields() {
    // After a restart a replica cannot tell whether its campaign at its
    // promised ballot won and had values chosen: it keeps the promise.
    let (r, own, now) = campaigning(3);
    drop(r);
    let state = Recovered {
        hard_state: meridian_paxos::HardState { promised: own },
        ..Recovered::default()
    };
    let mut r = replica(3, state, 4, now);
    let leader = Ballot::new(own.round, 2);
    let (ok, _, ballot) = accepted(&step_durable(&mut r, now, leader_accept(leader)));
    assert!(!ok, "a promise that may have been led at is kept");
    assert_eq!(ballot, own);
    assert_eq!(r.promised(), own);
}

#[test]
fn raft_s5_2_a_fresh_promise_refuses_another_candidate_of_its_round() {
    // One promise per round, for an election timeout (Raft's one vote per
    // term): with (5, 1) just promised, (5, 2) is refused though higher,
    // so two candidates of round 5 cannot both win; a later round is
    // still answered on ballots alone.
    let now = TtInterval::around(T0, EPS);
    let mut r = replica(3, Recovered::default(), 1, now);
    let empty = (0, Ballot::ZERO);
    let p = |from, b| Input::Message(prepare(from, 3, b, empty, false));
    assert!(granted(&step_durable(&mut r, now, p(1, Ballot::new(5, 1)))));
    assert!(!granted(&step_durable(
        &mut r,
        now,
        p(2, Ballot::new(5, 2))
    )));
    assert_eq!(r.promised(), Ballot::new(5, 1));
    assert!(granted(&step_durable(&mut r, now, p(2, Ballot::new(6, 2)))));
    assert_eq!(r.promised(), Ballot::new(6, 2));
}

#[test]
fn pms_s3_a_candidate_outbid_in_its_own_round_campaigns_above_it_instead_of_leading() {
    // Replica 1 campaigns at (r, 1); replica 3 refuses, naming (r, 3), a
    // promise it made to its own campaign and may have kept across a
    // crash; replica 2 grants. Leading at (r, 1), replica 3's first
    // refusal of an Accept would depose it and cost one more election: it
    // campaigns above at once instead, while replica 2 is listening.
    let (mut r, own, now) = campaigning(1);
    let above = Ballot::new(own.round, 3);
    let answer = |from, ballot, granted| {
        Input::Message(msg(
            from,
            1,
            ballot,
            Body::Promise {
                granted,
                pre_vote: false,
                lease_until: Timestamp::ZERO,
            },
        ))
    };
    step_durable(&mut r, now, answer(3, above, false));
    let sent = step_durable(&mut r, now, answer(2, own, true));
    assert_eq!(
        r.role(),
        Role::Candidate,
        "not a leader at an outbid ballot"
    );
    let again = sent
        .iter()
        .find_map(|m| match m.body {
            Body::Prepare {
                pre_vote: false, ..
            } => Some(m.ballot),
            _ => None,
        })
        .expect("a new campaign went out at once");
    assert_eq!(again.round, own.round + 1);
}

#[test]
fn raft_s9_6_a_granted_pre_vote_holds_off_other_candidates_pre_votes_briefly() {
    // A replica that just backed one candidate's pre-vote refuses
    // another's until the first one's real Prepare has had time to come:
    // otherwise both campaign, and a stale-logged one may win only to be
    // deposed by the other (one more election). The hold is short, so
    // candidates backed in turn cannot hold each other off for good.
    let now = TtInterval::around(T0, EPS);
    let mut r = replica(3, Recovered::default(), 1, now);
    let empty = (0, Ballot::ZERO);
    let p = |from, b| Input::Message(prepare(from, 3, b, empty, true));
    assert!(granted(&step_durable(&mut r, now, p(1, Ballot::new(5, 1)))));
    assert!(!granted(&step_durable(
        &mut r,
        now,
        p(2, Ballot::new(5, 2))
    )));
    // The backed candidate may ask again.
    assert!(granted(&step_durable(&mut r, now, p(1, Ballot::new(5, 1)))));
    let min = Config::new(3, vec![1, 2, 3]).election_min_nanos;
    let hold = min / meridian_paxos::PRE_VOTE_BACKING_DIVISOR;
    let later = TtInterval::around(T0.saturating_add(hold + MS), EPS);
    assert!(granted(&step_durable(
        &mut r,
        later,
        p(2, Ballot::new(5, 2))
    )));
}
