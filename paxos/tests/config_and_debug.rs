//! A replica refuses a configuration that cannot work, and prints what an
//! operator needs to tell replicas apart.

use meridian_paxos::{Config, Recovered, Replica, Role};
use rand::SeedableRng;
use rand::rngs::SmallRng;

fn replica(cfg: Config) -> Replica {
    Replica::new(
        cfg,
        Recovered::default(),
        Box::new(SmallRng::seed_from_u64(1)),
    )
}

#[test]
fn a_valid_configuration_is_accepted() {
    let r = replica(Config::new(1, vec![1, 2, 3]));
    assert_eq!(r.role(), Role::Follower);
}

#[test]
#[should_panic(expected = "heartbeat must be positive")]
fn a_zero_heartbeat_is_refused() {
    let mut c = Config::new(1, vec![1, 2, 3]);
    c.heartbeat_nanos = 0;
    replica(c);
}

#[test]
#[should_panic(expected = "need heartbeat < election_min < election_max")]
fn an_election_timeout_not_above_the_heartbeat_is_refused() {
    let mut c = Config::new(1, vec![1, 2, 3]);
    c.election_min_nanos = c.heartbeat_nanos;
    replica(c);
}

#[test]
#[should_panic(expected = "need heartbeat < election_min < election_max")]
fn an_empty_election_window_is_refused() {
    let mut c = Config::new(1, vec![1, 2, 3]);
    c.election_max_nanos = c.election_min_nanos;
    replica(c);
}

#[test]
#[should_panic(expected = "lease must be positive")]
fn a_zero_lease_is_refused() {
    let mut c = Config::new(1, vec![1, 2, 3]);
    c.lease_nanos = 0;
    replica(c);
}

#[test]
#[should_panic]
fn empty_batches_are_refused() {
    let mut c = Config::new(1, vec![1, 2, 3]);
    c.max_batch_entries = 0;
    replica(c);
}

#[test]
#[should_panic]
fn no_accepts_in_flight_is_refused() {
    let mut c = Config::new(1, vec![1, 2, 3]);
    c.max_inflight = 0;
    replica(c);
}

#[test]
fn debug_output_names_the_replica_and_its_state() {
    let r = replica(Config::new(7, vec![7, 8, 9]));
    let s = format!("{r:?}");
    for part in [
        "Replica",
        "id: 7",
        "role: Follower",
        "promised",
        "chosen: 0",
        "last_slot: 0",
    ] {
        assert!(s.contains(part), "{s:?} lacks {part:?}");
    }
}
