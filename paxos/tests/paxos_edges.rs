//! Protocol rules of the Paxos core at their edges: larger groups than
//! three, stale and misrouted messages, compaction and snapshots that meet
//! configuration entries, and the role changes a driver observes. Each test
//! names the rule it checks, as in `paxos_rules.rs`; `docs/verification.md`
//! lists the mutants of `replica.rs` each one kills.

mod common;

use common::*;
use meridian_paxos::testkit::LocalGroup;
use meridian_paxos::{
    Ballot, Body, Config, Input, Membership, MembershipChange, Output, Payload, Recovered, Replica,
    Role, Snapshot,
};
use meridian_truetime::{Timestamp, TtInterval};
use rand::SeedableRng;
use rand::rngs::SmallRng;

/// A time step that divides no timeout of the default configuration, so a
/// check of `>` against `==` at a timeout cannot pass by landing on it.
const ODD_STEP: u64 = 7 * MS;

/// `n` voters past the start-up lease, replica 1 elected.
fn led_group(n: u64) -> LocalGroup {
    let mut g = group(n);
    g.elect(1);
    assert_eq!(g.replica(1).role(), Role::Leader);
    g
}

/// Time `ms` milliseconds after [`T0`].
fn at(ms: u64) -> TtInterval {
    TtInterval::around(T0.saturating_add(ms * MS), EPS)
}

/// The ballot of the one `Prepare` among `sent`, checking whether it is a
/// pre-vote.
fn prepare_ballot(sent: &[meridian_paxos::Message], pre_vote: bool) -> Ballot {
    sent.iter()
        .find_map(|m| match m.body {
            Body::Prepare { pre_vote: p, .. } if p == pre_vote => Some(m.ballot),
            _ => None,
        })
        .expect("a Prepare went out")
}

/// A granted promise for `ballot` from `from` to replica 1.
fn promise(from: u64, ballot: Ballot, pre_vote: bool) -> meridian_paxos::Message {
    msg(
        from,
        1,
        ballot,
        Body::Promise {
            granted: true,
            pre_vote,
            lease_until: Timestamp::ZERO,
        },
    )
}

/// Runs one election round at replica 1 up to the real `Prepare`s at `ms`:
/// its timer fires, replica 2 grants the pre-vote, it raises its ballot.
/// Returns that ballot.
fn campaign_once(r: &mut Replica, ms: u64) -> Ballot {
    let pre = prepare_ballot(&step_durable(r, at(ms), Input::Tick), true);
    let sent = step_durable(r, at(ms), Input::Message(promise(2, pre, true)));
    let ballot = prepare_ballot(&sent, false);
    assert_eq!(r.promised(), ballot);
    assert_eq!(r.role(), Role::Candidate);
    ballot
}

#[test]
fn pms_s3_a_promise_for_an_earlier_ballot_is_not_counted() {
    // A promise for our previous ballot says nothing about the current
    // one: its sender may have promised a higher ballot since.
    let mut r = replica(1, Recovered::default(), 5, at(0));
    let first = campaign_once(&mut r, 2_000);
    let second = campaign_once(&mut r, 4_000);
    assert!(second > first);
    step_durable(&mut r, at(4_000), Input::Message(promise(3, first, false)));
    assert_eq!(r.role(), Role::Candidate, "a stale promise made a leader");
    step_durable(&mut r, at(4_000), Input::Message(promise(3, second, false)));
    assert_eq!(r.role(), Role::Leader, "the current promise counts");
}

#[test]
fn pms_s3_value_is_chosen_only_by_a_quorum_of_five() {
    // In five voters each follower must be counted as itself: two
    // acceptors (leader included) are no quorum, three are.
    let mut g = led_group(5);
    let chosen = g.replica(1).chosen();
    for id in 3..=5 {
        g.isolate(id);
    }
    g.propose(1, cmd(1)).unwrap();
    run_for(&mut g, 200 * MS);
    assert_eq!(g.replica(1).chosen(), chosen, "leader + one is no quorum");
    g.heal();
    g.isolate(4);
    g.isolate(5);
    run_for(&mut g, 200 * MS);
    assert_eq!(g.replica(1).chosen(), g.replica(1).last_slot());
}

#[test]
fn raft_s7_snapshot_carries_the_largest_timestamp_it_covers() {
    // A replica restored from a snapshot must still know the timestamps
    // assigned in the slots it covers (Spanner §4.1.2 monotonicity).
    let mut g = led_group(3);
    g.isolate(3);
    for i in 0..5 {
        g.propose(1, cmd(i)).unwrap();
    }
    g.run();
    let last_ts = g.replica(1).last_assigned_ts();
    assert!(last_ts > Timestamp::ZERO);
    assert!(g.replica(3).last_assigned_ts() < last_ts);
    g.compact(1);
    g.heal();
    run_for(&mut g, 300 * MS);
    assert_eq!(g.snapshots_restored(3), 1);
    assert_eq!(g.replica(3).last_assigned_ts(), last_ts);
}

#[test]
fn raft_s4_1_compaction_keeps_a_configuration_entry_above_its_snapshot() {
    // The leader's configuration is the newest one in its log, chosen or
    // not; compacting below it must not bring back the older one.
    let mut g = led_group(3);
    for i in 0..3 {
        g.propose(1, cmd(i)).unwrap();
    }
    g.run();
    g.isolate(2);
    g.isolate(3);
    g.propose_membership(1, MembershipChange::RemoveVoter(3))
        .unwrap();
    g.run();
    assert!(g.replica(1).applied() < g.replica(1).last_slot());
    g.compact(1);
    assert_eq!(g.replica(1).membership(), &Membership::new(1, vec![1, 2]));
    g.heal();
    run_for(&mut g, 300 * MS);
    assert_eq!(g.replica(2).membership(), &Membership::new(1, vec![1, 2]));
}

#[test]
fn raft_s4_1_the_next_change_may_start_once_the_last_is_chosen() {
    let mut g = LocalGroup::with_learners(3, 2, T0, EPS, |_| {});
    g.advance(3_000 * MS);
    g.elect(1);
    g.propose_membership(1, MembershipChange::AddVoter(4))
        .unwrap();
    run_for(&mut g, 300 * MS);
    let leader = g.replica(1);
    assert_eq!(leader.chosen(), leader.last_slot(), "the change is chosen");
    assert!(
        g.propose_membership(1, MembershipChange::AddVoter(5))
            .is_ok()
    );
}

/// A follower (replica 3) that accepted slots 1..=4 at (5, 1), slot 4 a
/// configuration adding voter 4, and knows slots up to `chosen` chosen.
fn follower_with_log(chosen: u64) -> Replica {
    follower_with_config_at(4, chosen)
}

/// The configuration the followers' logs hold: voter 4 added.
fn four_voters() -> Membership {
    Membership::new(1, vec![1, 2, 3, 4])
}

/// A follower (replica 3) that accepted slots 1..=4 at (5, 1), slot
/// `config_slot` the configuration [`four_voters`], the others commands,
/// and knows slots up to `chosen` chosen.
fn follower_with_config_at(config_slot: u64, chosen: u64) -> Replica {
    let now = at(0);
    let mut r = replica(3, Recovered::default(), 1, now);
    let b5 = Ballot::new(5, 1);
    let entries = (1..=4)
        .map(|s| {
            if s == config_slot {
                meridian_paxos::Entry {
                    slot: s,
                    ballot: b5,
                    ts: Timestamp::ZERO,
                    payload: Payload::Config(four_voters()),
                }
            } else {
                entry(s, b5, s)
            }
        })
        .collect();
    let m = msg(
        1,
        3,
        b5,
        Body::Accept {
            prev_slot: 0,
            prev_ballot: Ballot::ZERO,
            entries,
            commit: chosen,
            lease_start: Timestamp::ZERO,
        },
    );
    assert_eq!(
        accepted(&step_durable(&mut r, now, Input::Message(m))),
        (true, 4, b5)
    );
    assert_eq!(r.chosen(), chosen);
    assert_eq!(r.membership(), &four_voters());
    r
}

/// Replica 2's `Accept` at (6, 2) of `entries` after `prev`, committing
/// `commit`.
fn accept_from_next_leader(
    prev: (u64, Ballot),
    entries: Vec<meridian_paxos::Entry>,
    commit: u64,
) -> meridian_paxos::Message {
    msg(
        2,
        3,
        Ballot::new(6, 2),
        Body::Accept {
            prev_slot: prev.0,
            prev_ballot: prev.1,
            entries,
            commit,
            lease_start: Timestamp::ZERO,
        },
    )
}

#[test]
fn pms_s3_log_matching_trusts_slots_already_chosen() {
    // Slot 3 is chosen here at (5, 1); the next leader re-proposed the
    // same value at (6, 2). A chosen slot matches whatever ballot the
    // leader holds it at.
    let b6 = Ballot::new(6, 2);
    let mut r = follower_with_log(3);
    let m = accept_from_next_leader((3, b6), vec![entry(4, b6, 40)], 4);
    assert_eq!(
        accepted(&step_durable(&mut r, at(0), Input::Message(m))),
        (true, 4, b6)
    );
    assert_eq!(r.chosen(), 4);
}

#[test]
fn pms_s3_a_log_mismatch_is_refused_from_the_first_slot_not_known_chosen() {
    let b6 = Ballot::new(6, 2);
    let mut r = follower_with_log(2);
    let m = accept_from_next_leader((3, b6), vec![entry(4, b6, 40)], 4);
    assert_eq!(
        accepted(&step_durable(&mut r, at(0), Input::Message(m))),
        (false, 3, b6),
        "the leader is told to resend from slot 3"
    );
    assert_eq!(r.last_slot(), 4, "nothing was truncated");
}

/// Replica 2's `InstallSnapshot` at (6, 2) up to slot 2, whose last entry
/// has `last_ballot`, of the original three voters.
fn snapshot_to_2(last_ballot: Ballot) -> meridian_paxos::Message {
    msg(
        2,
        3,
        Ballot::new(6, 2),
        Body::InstallSnapshot {
            snapshot: Snapshot {
                last_slot: 2,
                last_ballot,
                membership: Membership::new(0, vec![1, 2, 3]),
                ..Snapshot::default()
            },
            lease_start: Timestamp::ZERO,
        },
    )
}

#[test]
fn raft_s7_a_snapshot_no_newer_than_what_is_chosen_changes_nothing() {
    let mut r = follower_with_log(2);
    let before = r.entries(1, 9);
    let m = snapshot_to_2(Ballot::new(6, 2));
    let outputs = step_outputs(&mut r, at(0), Input::Message(m));
    assert!(
        !outputs
            .iter()
            .any(|o| matches!(o, Output::RestoreSnapshot(_))),
        "a snapshot of chosen slots was restored again"
    );
    assert_eq!(r.entries(1, 9), before, "the unchosen suffix was dropped");
}

#[test]
fn raft_s7_snapshot_install_keeps_the_configuration_of_the_log_it_keeps() {
    // The snapshot's slot 2 is ours: slots 3 and 4 stay, and so does the
    // configuration entry at slot 4.
    let mut r = follower_with_log(1);
    step_durable(
        &mut r,
        at(0),
        Input::Message(snapshot_to_2(Ballot::new(5, 1))),
    );
    assert_eq!(r.last_slot(), 4);
    assert_eq!(r.membership(), &four_voters());
}

#[test]
fn raft_s7_snapshot_install_drops_the_configuration_of_the_log_it_drops() {
    // The snapshot's slot 2 was chosen at another ballot: slots 3 and 4
    // go, and with them the configuration entry at slot 4.
    let mut r = follower_with_log(1);
    step_durable(
        &mut r,
        at(0),
        Input::Message(snapshot_to_2(Ballot::new(6, 2))),
    );
    assert_eq!(r.last_slot(), 2);
    assert_eq!(r.membership(), &Membership::new(0, vec![1, 2, 3]));
}

#[test]
fn raft_thesis_s6_2_leader_cut_off_from_a_quorum_steps_down() {
    // Check quorum: a leader that heard from no quorum for an election
    // timeout gives up, so that a reachable replica can lead.
    let cfg = Config::new(1, vec![1, 2, 3]);
    // By the longest election timeout plus a heartbeat it has noticed.
    let bound = cfg.election_max_nanos + cfg.heartbeat_nanos;
    let mut g = led_group(3);
    g.isolate(1);
    let mut waited = 0;
    while g.replica(1).role() == Role::Leader {
        assert!(
            waited <= bound,
            "the leader held on for {waited} ns without a quorum"
        );
        g.advance(ODD_STEP);
        g.tick(1);
        waited += ODD_STEP;
    }
    assert!(waited > cfg.election_max_nanos - ODD_STEP);
}

#[test]
fn raft_thesis_s4_2_3_leader_with_a_bare_quorum_ignores_a_disruptive_prepare() {
    // The leader and one follower in contact are a quorum of three: the
    // leader counts itself, and a candidate it cannot hear from is ignored.
    let mut g = led_group(3);
    g.isolate(3);
    // Past the stickiness window for replica 3, within it for replica 2.
    run_for(
        &mut g,
        Config::new(1, vec![1]).election_min_nanos + 100 * MS,
    );
    g.record_messages(true);
    let tip = (g.replica(3).last_slot(), Ballot::ZERO);
    g.deliver(prepare(3, 1, Ballot::new(90, 3), tip, false));
    assert!(g.take_sent().is_empty(), "the leader answered a candidate");
    assert_eq!(g.replica(1).role(), Role::Leader);
}

#[test]
fn design_s3_a_message_for_another_replica_is_ignored() {
    let mut r = replica(2, Recovered::default(), 1, at(0));
    let promised = r.promised();
    let misrouted = prepare(3, 1, Ballot::new(9, 3), (5, Ballot::new(8, 3)), false);
    assert!(step_outputs(&mut r, at(3_000), Input::Message(misrouted)).is_empty());
    assert_eq!(r.promised(), promised);
}

/// The `RoleChanged` outputs among `outputs`.
fn role_changes(outputs: &[Output]) -> Vec<(Role, Option<u64>)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::RoleChanged { role, leader } => Some((*role, *leader)),
            _ => None,
        })
        .collect()
}

#[test]
fn replica_reports_each_role_or_leader_change_once() {
    // Drivers route requests by these outputs: each change is reported,
    // and nothing that is not a change.
    let mut r = Replica::new(
        Config::new(1, vec![1, 2, 3]),
        Recovered::default(),
        Box::new(SmallRng::seed_from_u64(7)),
    );
    r.start(at(0), &mut Vec::new());
    let mut seen = Vec::new();
    let mut step = |r: &mut Replica, ms: u64, input: Input| {
        seen.push(role_changes(&step_outputs(r, at(ms), input)));
    };
    // Its timer fires twice: one change, to candidate.
    step(&mut r, 2_000, Input::Tick);
    step(&mut r, 4_000, Input::Tick);
    // A higher candidate's prepare, granted: a follower of nobody yet.
    step(
        &mut r,
        4_000,
        Input::Message(prepare(3, 1, Ballot::new(20, 3), (0, Ballot::ZERO), false)),
    );
    // Replica 2 leads at a higher ballot; its heartbeat comes twice.
    let heartbeat = |from, round| {
        Input::Message(msg(
            from,
            1,
            Ballot::new(round, from),
            Body::Accept {
                prev_slot: 0,
                prev_ballot: Ballot::ZERO,
                entries: vec![],
                commit: 0,
                lease_start: Timestamp::ZERO,
            },
        ))
    };
    step(&mut r, 4_000, heartbeat(2, 21));
    step(&mut r, 4_000, heartbeat(2, 21));
    // Then replica 3 at a higher one.
    step(&mut r, 4_000, heartbeat(3, 22));
    assert_eq!(
        seen,
        vec![
            vec![(Role::Candidate, None)],
            vec![],
            vec![(Role::Follower, None)],
            vec![(Role::Follower, Some(2))],
            vec![],
            vec![(Role::Follower, Some(3))],
        ]
    );
}

#[test]
fn raft_s7_a_lagging_follower_is_sent_one_snapshot() {
    // A snapshot is the whole state: the leader sends it once per catch-up
    // and follows it with entries, not with copies of itself.
    let mut g = led_group(3);
    g.isolate(3);
    for i in 0..10 {
        g.propose(1, cmd(i)).unwrap();
    }
    g.run();
    g.compact(1);
    g.propose(1, cmd(10)).unwrap();
    g.run();
    g.heal();
    g.record_messages(true);
    run_for(&mut g, 300 * MS);
    let snapshots = g
        .take_sent()
        .iter()
        .filter(|m| m.to == 3 && matches!(m.body, Body::InstallSnapshot { .. }))
        .count();
    assert_eq!(snapshots, 1);
    assert_eq!(g.snapshots_restored(3), 1);
    assert_eq!(g.replica(3).applied(), g.replica(1).applied());
}

#[test]
fn raft_s4_1_truncating_a_configuration_entry_restores_the_one_before() {
    // The next leader chose another value for slot 3: our slots 3 and 4,
    // the configuration among them, are gone, and the initial voters rule.
    let b6 = Ballot::new(6, 2);
    let mut r = follower_with_config_at(4, 2);
    let m = accept_from_next_leader((2, Ballot::new(5, 1)), vec![entry(3, b6, 30)], 2);
    assert!(accepted(&step_durable(&mut r, at(0), Input::Message(m))).0);
    assert_eq!(r.last_slot(), 3);
    assert_eq!(r.membership(), &Membership::new(0, vec![1, 2, 3]));
}

#[test]
fn raft_s4_1_truncation_keeps_the_configuration_entries_before_it() {
    // Slot 4 is replaced; the configuration at slot 2 stays in force.
    let b6 = Ballot::new(6, 2);
    let mut r = follower_with_config_at(2, 1);
    let m = accept_from_next_leader((3, Ballot::new(5, 1)), vec![entry(4, b6, 40)], 1);
    assert!(accepted(&step_durable(&mut r, at(0), Input::Message(m))).0);
    assert_eq!(r.last_slot(), 4);
    assert_eq!(r.membership(), &four_voters());
}

/// Steps `r` once, leaving every write it issues in flight.
fn step_held(r: &mut Replica, now: TtInterval, input: Input) -> Vec<Output> {
    let mut out = Vec::new();
    r.step(now, input, &mut out);
    out
}

/// Replica 1 accepts slots 1..=4 at (5, 2), then replica 3, leading at
/// (6, 3), replaces slots 3 and 4 with one entry at slot 3. With
/// `settle_first` the first accept is durable before the second arrives;
/// without it both are in flight until replica 1 next persists. Then
/// replica 1 wins an election (its promise durable, so both writes are),
/// appends its no-op at slot 4 and is told by replica 2 that slot 4 is
/// accepted there, while its own no-op is not yet durable.
fn leader_after_truncation(settle_first: bool) -> Replica {
    let mut r = replica(1, Recovered::default(), 5, at(0));
    let (b5, b6) = (Ballot::new(5, 2), Ballot::new(6, 3));
    let old = msg(
        2,
        1,
        b5,
        Body::Accept {
            prev_slot: 0,
            prev_ballot: Ballot::ZERO,
            entries: (1..=4).map(|s| entry(s, b5, s)).collect(),
            commit: 2,
            lease_start: Timestamp::ZERO,
        },
    );
    let replace = msg(
        3,
        1,
        b6,
        Body::Accept {
            prev_slot: 2,
            prev_ballot: b5,
            entries: vec![entry(3, b6, 30)],
            commit: 2,
            lease_start: Timestamp::ZERO,
        },
    );
    if settle_first {
        step_durable(&mut r, at(0), Input::Message(old));
    } else {
        step_held(&mut r, at(0), Input::Message(old));
    }
    step_held(&mut r, at(0), Input::Message(replace));
    let ballot = campaign_once(&mut r, 3_000);
    step_held(&mut r, at(3_000), Input::Message(promise(2, ballot, false)));
    assert_eq!(r.role(), Role::Leader);
    assert_eq!(r.last_slot(), 4, "slots 1, 2, 3 and the no-op");
    let ack = msg(
        2,
        1,
        ballot,
        Body::Accepted {
            ok: true,
            upto: 4,
            lease_start: Timestamp::ZERO,
        },
    );
    step_held(&mut r, at(3_000), Input::Message(ack));
    r
}

#[test]
fn pms_s3_a_truncated_slot_does_not_count_as_durable_when_refilled() {
    // Slot 4 was durable before the truncation; the no-op now at slot 4 is
    // not. Counting the leader's stale durability for it would choose the
    // no-op on one acceptor's word (ack before persist, in disguise).
    for settle_first in [true, false] {
        let r = leader_after_truncation(settle_first);
        assert!(
            r.chosen() < 4,
            "slot 4 chosen before the leader persisted it (settle_first {settle_first})"
        );
    }
}

#[test]
fn raft_s4_1_a_configuration_entry_truncated_at_its_own_slot_is_gone() {
    let b6 = Ballot::new(6, 2);
    let mut r = follower_with_config_at(3, 2);
    let m = accept_from_next_leader((2, Ballot::new(5, 1)), vec![entry(3, b6, 30)], 2);
    assert!(accepted(&step_durable(&mut r, at(0), Input::Message(m))).0);
    assert_eq!(r.membership(), &Membership::new(0, vec![1, 2, 3]));
}

#[test]
fn raft_s4_1_leader_tracks_each_new_voter_once_and_never_itself() {
    let mut g = LocalGroup::with_learners(3, 1, T0, EPS, |_| {});
    g.advance(3_000 * MS);
    g.elect(1);
    g.propose_membership(1, MembershipChange::AddVoter(4))
        .unwrap();
    run_for(&mut g, 300 * MS);
    g.record_messages(true);
    // One heartbeat round: one message to each other voter.
    g.advance(Config::new(1, vec![1]).heartbeat_nanos);
    g.tick(1);
    let mut to: Vec<u64> = g
        .take_sent()
        .iter()
        .filter(|m| m.from == 1 && matches!(m.body, Body::Accept { .. }))
        .map(|m| m.to)
        .collect();
    to.sort_unstable();
    assert_eq!(to, vec![2, 3, 4]);
}

#[test]
fn raft_s4_2_2_a_leader_that_removes_itself_leads_until_the_removal_is_chosen() {
    let mut g = led_group(3);
    g.isolate(2);
    g.isolate(3);
    g.propose_membership(1, MembershipChange::RemoveVoter(1))
        .unwrap();
    g.run();
    assert_eq!(g.replica(1).membership(), &Membership::new(1, vec![2, 3]));
    assert_eq!(
        g.replica(1).role(),
        Role::Leader,
        "it still has to get its removal chosen"
    );
    g.heal();
    run_for(&mut g, 200 * MS);
    assert_eq!(g.replica(1).role(), Role::Follower, "chosen: it hands over");
    assert_eq!(g.replica(2).membership(), &Membership::new(1, vec![2, 3]));
}
