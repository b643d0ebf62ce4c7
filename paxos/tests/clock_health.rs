//! A replica whose clock is outside its ε bound neither leads nor
//! promises (docs/design.md §2: a node whose clock is out of bound refuses
//! to lead; CockroachDB's behaviour on clock offset). The driver measures
//! the clock and reports `Input::ClockHealth`; these tests name the rules.

mod common;

use common::*;
use meridian_paxos::{LeaseStatus, Role};

#[test]
fn design_s2_a_leader_whose_clock_leaves_its_bound_steps_down_at_once() {
    let mut g = group(3);
    g.elect(1);
    assert!(g.replica(1).has_lease(g.now()));
    g.propose(1, cmd(1)).unwrap();
    g.set_clock_health(1, false);
    assert_eq!(g.replica(1).role(), Role::Follower);
    assert!(!g.replica(1).clock_healthy());
    assert_eq!(g.replica(1).lease_status(g.now()), LeaseStatus::NotLeader);
    assert!(g.propose(1, cmd(2)).is_err(), "it proposes nothing");
}

#[test]
fn design_s2_a_replica_whose_clock_is_out_of_bound_never_campaigns() {
    let mut g = group(3);
    g.set_clock_health(1, false);
    g.isolate(2);
    g.isolate(3);
    // Its election timer fires again and again; it stays a follower.
    run_for(&mut g, 5_000 * MS);
    assert_eq!(g.replica(1).role(), Role::Follower);
    assert_eq!(g.replica(1).promised().round, 0, "it raised no ballot");
}

#[test]
fn design_s2_a_replica_whose_clock_is_out_of_bound_promises_nothing() {
    let mut g = group(3);
    g.elect(1);
    g.isolate(1);
    g.set_clock_health(3, false);
    // 2 needs 3's promise (1 is cut off): none comes, no pre-vote either.
    run_for(&mut g, 5_000 * MS);
    assert_ne!(g.replica(2).role(), Role::Leader);
    assert_ne!(g.replica(3).role(), Role::Leader);
    // Still a follower that accepts the leader it knows: its log is intact.
    assert_eq!(g.replica(3).role(), Role::Follower);
}

#[test]
fn design_s2_back_in_bound_a_replica_reports_a_full_lease_vote_and_the_next_leader_waits_it_out() {
    let mut g = group(3);
    g.elect(1);
    g.set_clock_health(3, false);
    g.propose(1, cmd(1)).unwrap();
    g.run();
    g.isolate(1);
    run_for(&mut g, 3_000 * MS); // 1's lease is long over
    // The lease votes 3 gave while out of bound were judged on a clock that
    // may have run behind: back in bound, it assumes it just gave a full one.
    let back = g.now();
    g.set_clock_health(3, true);
    let lease = meridian_paxos::Config::new(3, vec![1, 2, 3]).lease_nanos;
    assert!(g.replica(3).lease_granted_until() >= back.latest.saturating_add(lease));
    // It promises again, and the next leader waits that grant out before it
    // holds a lease.
    let mut leader = None;
    for _ in 0..200 {
        run_for(&mut g, 50 * MS);
        leader = [2, 3]
            .into_iter()
            .find(|id| g.replica(*id).role() == Role::Leader);
        if leader.is_some() {
            break;
        }
    }
    let leader = leader.expect("a leader once 3 is back in bound");
    match g.replica(leader).lease_status(g.now()) {
        LeaseStatus::WaitingOutPrevious { wait_until } => {
            assert!(wait_until >= back.latest.saturating_add(lease))
        }
        other if !g.now().after(back.latest.saturating_add(lease)) => {
            panic!("a lease before the grant ran out: {other:?}")
        }
        _ => {}
    }
    run_for(&mut g, 2_500 * MS);
    assert!(g.replica(leader).has_lease(g.now()), "and then serves");
    g.heal();
    run_for(&mut g, 500 * MS);
    assert_eq!(commands(g.applied(3)), commands(g.applied(2)));
    assert_eq!(commands(g.applied(3)).len(), 1);
}
