//! Leadership hand-over (docs/design.md §3): a leader that is asked to
//! (`Input::HandOver`, a node draining before it shuts down) passes its
//! leadership to a caught-up voter without an election timeout, and leases
//! stay disjoint exactly as at any change of leader. These tests name the
//! rules.

mod common;

use common::*;
use meridian_paxos::{Ballot, Body, Config, LeaseStatus, ProposeError, Role};

/// The default election timeout's upper bound, after which a hand-over
/// that has not completed is abandoned.
fn election_max() -> u64 {
    Config::new(1, vec![1, 2, 3]).election_max_nanos
}

#[test]
fn hand_over_moves_leadership_to_the_caught_up_target() {
    let mut g = group(3);
    g.elect(1);
    for i in 1..=3 {
        g.propose(1, cmd(i)).unwrap();
    }
    g.run();
    let before = g.replica(1).promised();
    g.hand_over(1, Some(3));
    // No election timeout passed: the old leader stepped down at once,
    // naming the target, and the target won at a higher ballot.
    assert_eq!(g.replica(1).role(), Role::Follower);
    assert_eq!(g.replica(3).role(), Role::Leader);
    assert!(g.replica(3).promised() > before);
    for id in [1, 2] {
        assert_eq!(g.replica(id).leader(), Some(3));
    }
    // Everything the old leader had is still there, and the new one
    // commits after it once it holds its lease.
    run_for(&mut g, 2_500 * MS);
    g.propose(3, cmd(4)).unwrap();
    run_for(&mut g, 200 * MS);
    for id in 1..=3 {
        let got: Vec<u64> = commands(g.applied(id)).into_iter().map(|c| c.0).collect();
        assert_eq!(got, vec![1, 2, 3, 4], "replica {id}");
    }
}

#[test]
fn hand_over_without_a_target_picks_the_most_caught_up_voter() {
    let mut g = group(3);
    g.elect(1);
    // 2 misses the latest entries; 3 has them all.
    g.isolate(2);
    g.propose(1, cmd(1)).unwrap();
    g.run();
    g.heal();
    g.hand_over(1, None);
    assert_eq!(g.replica(3).role(), Role::Leader);
    assert_eq!(g.replica(1).role(), Role::Follower);
}

#[test]
fn hand_over_waits_for_the_target_to_catch_up_and_refuses_proposals_meanwhile() {
    let mut g = group(3);
    g.elect(1);
    g.isolate(3);
    g.propose(1, cmd(1)).unwrap();
    g.run();
    g.hand_over(1, Some(3));
    // 3 lacks the last entry: 1 still leads, but takes no proposals and
    // names the target.
    assert_eq!(g.replica(1).role(), Role::Leader);
    assert_eq!(g.replica(1).handing_over_to(), Some(3));
    assert_eq!(
        g.propose(1, cmd(2)),
        Err(ProposeError::NotLeader { leader: Some(3) })
    );
    // Reachable again, 3 catches up at the next heartbeat and takes over.
    g.heal();
    g.advance(100 * MS);
    g.tick(1);
    g.run();
    assert_eq!(g.replica(3).role(), Role::Leader);
    assert_eq!(g.replica(1).role(), Role::Follower);
    assert_eq!(g.replica(1).handing_over_to(), None);
}

#[test]
fn hand_over_never_overlaps_leases() {
    let mut g = group(3);
    g.elect(1);
    g.propose(1, cmd(1)).unwrap();
    g.run();
    let LeaseStatus::Valid { end: old_end } = g.replica(1).lease_status(g.now()) else {
        panic!("the leader holds a lease");
    };
    g.hand_over(1, Some(2));
    // The old leader serves nothing from the moment it steps down...
    assert_eq!(g.replica(1).lease_status(g.now()), LeaseStatus::NotLeader);
    assert!(!g.replica(1).has_lease(g.now()));
    // ...and the new one still waits out every lease its promisers
    // granted, the old leader's included (Spanner §4.1.1).
    assert_eq!(g.replica(2).role(), Role::Leader);
    match g.replica(2).lease_status(g.now()) {
        LeaseStatus::WaitingOutPrevious { wait_until } => assert!(wait_until >= old_end),
        other => panic!("the new leader must wait out the old lease: {other:?}"),
    }
    // It takes proposals meanwhile but assigns no timestamp before then.
    g.propose(2, cmd(2)).unwrap();
    assert_eq!(g.replica(2).pending_len(), 1);
    run_for(&mut g, 2_500 * MS);
    assert!(g.replica(2).has_lease(g.now()));
    assert_eq!(g.replica(2).pending_len(), 0);
    let ts: Vec<_> = commands(g.applied(2)).into_iter().map(|c| c.1).collect();
    assert!(
        ts[1] > old_end,
        "the new leader's timestamps follow the old lease"
    );
}

#[test]
fn hand_over_times_out_and_resumes() {
    let mut g = group(3);
    g.elect(1);
    g.isolate(3);
    g.propose(1, cmd(1)).unwrap();
    g.run();
    g.hand_over(1, Some(3));
    assert!(g.propose(1, cmd(2)).is_err());
    // 3 stays cut off: after an election timeout the leader gives up and
    // leads on, taking proposals again.
    run_for(&mut g, election_max() + 100 * MS);
    assert_eq!(g.replica(1).role(), Role::Leader);
    assert_eq!(g.replica(1).handing_over_to(), None);
    g.propose(1, cmd(2)).unwrap();
    run_for(&mut g, 100 * MS);
    for id in [1, 2] {
        assert_eq!(commands(g.applied(id)).len(), 2, "replica {id}");
    }
}

#[test]
fn take_over_from_a_stale_ballot_is_ignored() {
    let mut g = group(3);
    g.elect(1);
    g.propose(1, cmd(1)).unwrap();
    g.run();
    let promised = g.replica(2).promised();
    let last = g.replica(2).last_slot();
    g.record_messages(true);
    // From the leader, but at a ballot below the current one.
    let stale = Ballot::new(promised.round - 1, 1);
    g.deliver(msg(1, 2, stale, Body::TakeOver { last_slot: last }));
    // From a replica that is not the leader, at the current ballot.
    g.deliver(msg(3, 2, promised, Body::TakeOver { last_slot: last }));
    // From the leader, for a log 2 does not hold.
    g.deliver(msg(
        1,
        2,
        promised,
        Body::TakeOver {
            last_slot: last + 5,
        },
    ));
    assert_eq!(g.replica(2).role(), Role::Follower);
    assert_eq!(g.replica(2).promised(), promised);
    assert!(g.take_sent().is_empty(), "no campaign started");
    // The real one is acted on.
    g.deliver(msg(1, 2, promised, Body::TakeOver { last_slot: last }));
    assert_eq!(g.replica(2).role(), Role::Candidate);
    assert!(g.replica(2).promised() > promised);
}

#[test]
fn a_take_over_prepare_skips_leader_stickiness_and_nothing_else() {
    let mut g = group(3);
    g.elect(1);
    g.propose(1, cmd(1)).unwrap();
    g.run();
    let (last, tip) = (g.replica(3).last_slot(), g.replica(3).promised());
    let b = |round| Ballot::new(round, 2);
    let round = tip.round;
    g.record_messages(true);
    // 3 heard from its leader just now: an ordinary prepare is ignored.
    g.deliver(prepare(2, 3, b(round + 1), (last, tip), false));
    assert!(g.take_sent().is_empty(), "stickiness holds");
    // A taking-over prepare whose log is behind is refused...
    let mut behind = prepare(2, 3, b(round + 2), (last - 1, tip), false);
    if let Body::Prepare { hand_over, .. } = &mut behind.body {
        *hand_over = true;
    }
    g.deliver(behind);
    assert!(!granted(&g.take_sent()), "the log check stays");
    // ...and one with a ballot not above the promise too...
    let mut low = prepare(2, 3, tip, (last, tip), false);
    if let Body::Prepare { hand_over, .. } = &mut low.body {
        *hand_over = true;
    }
    g.deliver(low);
    assert!(!granted(&g.take_sent()), "the ballot check stays");
    // ...while an up-to-date one is granted despite the live leader.
    let mut ok = prepare(2, 3, b(round + 3), (last, tip), false);
    if let Body::Prepare { hand_over, .. } = &mut ok.body {
        *hand_over = true;
    }
    g.deliver(ok);
    assert!(granted(&g.take_sent()));
    assert_eq!(g.replica(3).promised(), b(round + 3));
}

#[test]
fn hand_over_is_ignored_by_a_non_leader_and_for_a_non_voter() {
    let mut g = group(3);
    g.elect(1);
    g.record_messages(true);
    g.hand_over(2, None);
    g.hand_over(3, Some(1));
    assert!(g.take_sent().is_empty());
    assert_eq!(g.replica(1).role(), Role::Leader);
    // A target that is not another voter: the leader leads on, unchanged.
    g.hand_over(1, Some(7));
    g.hand_over(1, Some(1));
    assert_eq!(g.replica(1).role(), Role::Leader);
    assert_eq!(g.replica(1).handing_over_to(), None);
    g.propose(1, cmd(1)).unwrap();
}
