//! A replica refuses a configuration that cannot work, keeps its proposal
//! queue within its bound, and prints what an operator needs to tell
//! replicas apart.

use bytes::Bytes;
use meridian_paxos::{Config, Input, Output, ProposeError, Recovered, Replica, Role};
use meridian_truetime::{Timestamp, TtInterval};
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

const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);
const MS: u64 = 1_000_000;

/// A one-voter group's leader whose queue holds at most `max_pending`.
fn leader(max_pending: usize) -> (Replica, TtInterval) {
    let mut c = Config::new(1, vec![1]);
    c.max_pending = max_pending;
    let mut r = replica(c);
    r.start(TtInterval::around(T0, MS), &mut Vec::new());
    let now = TtInterval::around(T0.saturating_add(3_000 * MS), MS);
    let mut next = Some(Input::Tick);
    while let Some(input) = next.take() {
        let mut out = Vec::new();
        r.step(now, input, &mut out);
        for o in out {
            if let Output::Persist(req) = o {
                next = Some(Input::Persisted { seq: req.seq });
            }
        }
    }
    assert_eq!(r.role(), Role::Leader);
    (r, now)
}

fn batch(n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("c{i}"))).collect()
}

#[test]
fn a_batch_that_fills_the_queue_exactly_is_taken_whole() {
    let (mut r, now) = leader(4);
    let ids = r.propose_batch(now, batch(4), &mut Vec::new()).unwrap();
    assert_eq!(ids.end - ids.start, 4);
}

#[test]
fn a_batch_one_over_the_queue_bound_is_refused_whole() {
    let (mut r, now) = leader(4);
    assert!(matches!(
        r.propose_batch(now, batch(5), &mut Vec::new()),
        Err(ProposeError::QueueFull(_))
    ));
    // Nothing of it was queued: a batch that fits still goes through.
    let ids = r.propose_batch(now, batch(4), &mut Vec::new()).unwrap();
    assert_eq!(ids.end - ids.start, 4);
}
