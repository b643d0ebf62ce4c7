//! Helpers shared by the Paxos protocol-rule tests: a clock origin, a
//! ready-made group, raw messages and a replica stepped with every write
//! durable at once.
#![allow(dead_code)] // each test file uses a different subset

use bytes::Bytes;
use meridian_paxos::testkit::LocalGroup;
use meridian_paxos::{Ballot, Body, Config, Input, Message, Output, Payload, Recovered, Replica};
use meridian_truetime::{Timestamp, TtInterval};
use rand::SeedableRng;
use rand::rngs::SmallRng;

pub const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);
pub const MS: u64 = 1_000_000;
pub const EPS: u64 = MS;

/// A 3-replica group past the start-up lease every replica assumes it gave.
pub fn group(n: u64) -> LocalGroup {
    let mut g = LocalGroup::new(n, T0, EPS, |_| {});
    g.advance(3_000 * MS);
    g
}

/// Advances time in heartbeat-sized steps, ticking everyone.
pub fn run_for(g: &mut LocalGroup, nanos: u64) {
    let step = 50 * MS;
    let mut t = 0;
    while t < nanos {
        g.advance(step);
        g.tick_all();
        t += step;
    }
}

/// A message in cluster 0 at membership epoch 0.
pub fn msg(from: u64, to: u64, ballot: Ballot, body: Body) -> Message {
    Message {
        cluster_id: 0,
        epoch: 0,
        from,
        to,
        ballot,
        body,
    }
}

/// Command number `i`, as 8 little-endian bytes.
pub fn cmd(i: u64) -> Bytes {
    Bytes::copy_from_slice(&i.to_le_bytes())
}

/// The commands among `entries`, decoded, with their Paxos timestamps.
pub fn commands(entries: &[meridian_paxos::Entry]) -> Vec<(u64, Timestamp)> {
    entries
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Command(b) => Some((u64::from_le_bytes(b[..8].try_into().unwrap()), e.ts)),
            _ => None,
        })
        .collect()
}

/// Replica `id` of the group {1, 2, 3}, started at `now`.
pub fn replica(id: u64, state: Recovered, seed: u64, now: TtInterval) -> Replica {
    let mut r = Replica::new(
        Config::new(id, vec![1, 2, 3]),
        state,
        Box::new(SmallRng::seed_from_u64(seed)),
    );
    r.start(now, &mut Vec::new());
    r
}

/// Steps `r` at `now`, reporting each write durable as soon as it is
/// issued, and returns every output (the persists included).
pub fn step_outputs(r: &mut Replica, now: TtInterval, input: Input) -> Vec<Output> {
    let mut all = Vec::new();
    let mut next = Some(input);
    while let Some(input) = next.take() {
        let mut out = Vec::new();
        r.step(now, input, &mut out);
        for o in out {
            if let Output::Persist(req) = &o {
                next = Some(Input::Persisted { seq: req.seq });
            }
            all.push(o);
        }
    }
    all
}

/// Like [`step_outputs`], returning only the messages sent.
pub fn step_durable(r: &mut Replica, now: TtInterval, input: Input) -> Vec<Message> {
    step_outputs(r, now, input)
        .into_iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// A `Prepare` from `from` to `to` for `ballot` by a candidate whose log
/// ends at `tip` (slot, ballot).
pub fn prepare(from: u64, to: u64, ballot: Ballot, tip: (u64, Ballot), pre_vote: bool) -> Message {
    msg(
        from,
        to,
        ballot,
        Body::Prepare {
            last_slot: tip.0,
            last_ballot: tip.1,
            pre_vote,
            hand_over: false,
        },
    )
}

/// An `Accept` of `entries` after `prev` (slot, ballot), committing nothing.
pub fn accept(
    from: u64,
    to: u64,
    ballot: Ballot,
    prev: (u64, Ballot),
    entries: Vec<meridian_paxos::Entry>,
) -> Message {
    msg(
        from,
        to,
        ballot,
        Body::Accept {
            prev_slot: prev.0,
            prev_ballot: prev.1,
            entries,
            commit: 0,
            lease_start: Timestamp::ZERO,
        },
    )
}

/// A command entry for `slot` accepted at `ballot`, without a timestamp.
pub fn entry(slot: u64, ballot: Ballot, i: u64) -> meridian_paxos::Entry {
    meridian_paxos::Entry {
        slot,
        ballot,
        ts: Timestamp::ZERO,
        payload: Payload::Command(cmd(i)),
    }
}

/// Whether the one `Promise` in `sent` was granted.
pub fn granted(sent: &[Message]) -> bool {
    match sent {
        [
            Message {
                body: Body::Promise { granted, .. },
                ..
            },
        ] => *granted,
        _ => panic!("expected one Promise, got {sent:?}"),
    }
}

/// The one `Accepted` in `sent`: (ok, upto, the ballot it carries).
pub fn accepted(sent: &[Message]) -> (bool, u64, Ballot) {
    match sent {
        [
            Message {
                ballot,
                body: Body::Accepted { ok, upto, .. },
                ..
            },
        ] => (*ok, *upto, *ballot),
        _ => panic!("expected one Accepted, got {sent:?}"),
    }
}
