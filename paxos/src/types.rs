//! The values Paxos replicas agree on and the messages they exchange.

use bytes::Bytes;
use meridian_truetime::Timestamp;

/// A replica's identity, unique within a cluster.
pub type NodeId = u64;

/// A position in the replicated log. Slot 0 is "before the first entry";
/// the first real entry is slot 1.
pub type Slot = u64;

/// A Paxos ballot (Lamport's proposal number): ordered by round, then by the
/// proposing node, so no two leaders ever share one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ballot {
    /// Increases with each election attempt.
    pub round: u64,
    /// The node that proposed this ballot; breaks ties between rounds.
    pub node: NodeId,
}

impl Ballot {
    /// The ballot below every real one.
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    /// A ballot of `round` proposed by `node`.
    pub const fn new(round: u64, node: NodeId) -> Ballot {
        Ballot { round, node }
    }
}

/// The voting members of a group (one-at-a-time changes, docs/design.md §3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Membership {
    /// Counts configuration changes; messages carry it so that replicas can
    /// refuse candidates with a stale configuration.
    pub epoch: u64,
    /// Voting replicas, sorted and unique.
    pub voters: Vec<NodeId>,
}

impl Membership {
    /// A membership with the given voters at `epoch`.
    pub fn new(epoch: u64, mut voters: Vec<NodeId>) -> Membership {
        voters.sort_unstable();
        voters.dedup();
        Membership { epoch, voters }
    }

    /// Whether `id` votes.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok()
    }

    /// Votes needed for a majority.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Payload {
    /// Written by a new leader to commit everything before it (no timestamp).
    Noop,
    /// An opaque command for the state machine above.
    Command(Bytes),
    /// A new membership, effective as soon as it is in a replica's log.
    Config(Membership),
}

/// One slot's value, as accepted at `ballot`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The slot this entry occupies.
    pub slot: Slot,
    /// The ballot of the leader that proposed it.
    pub ballot: Ballot,
    /// Spanner §4.1.2: the Paxos write timestamp, assigned by the leader
    /// inside its lease; strictly increasing over commands in slot order.
    /// [`Timestamp::ZERO`] for no-ops and configuration entries.
    pub ts: Timestamp,
    /// The value.
    pub payload: Payload,
}

/// State that must be durable before a replica answers: the highest ballot
/// it promised (Paxos phase 1b).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    /// The highest ballot this acceptor promised; it accepts nothing lower.
    pub promised: Ballot,
}

/// A state-machine snapshot covering every slot up to `last_slot`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The last slot the snapshot covers.
    pub last_slot: Slot,
    /// The ballot of that slot's entry, for log matching.
    pub last_ballot: Ballot,
    /// The largest Paxos write timestamp covered.
    pub last_ts: Timestamp,
    /// The membership in force at `last_slot`.
    pub membership: Membership,
    /// The state machine's own encoding of its state.
    pub data: Bytes,
}

/// A message between replicas of one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Replicas refuse messages from other clusters.
    pub cluster_id: u64,
    /// The sender's membership epoch.
    pub epoch: u64,
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// The sender's ballot: the one it leads or campaigns with, or, on a
    /// reply, the highest it has promised.
    pub ballot: Ballot,
    /// What the message says.
    pub body: Body,
}

/// The kinds of Paxos message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Phase 1a. Carries the candidate's log tip: acceptors promise only a
    /// candidate whose log is at least as up to date as their own, so the
    /// new leader already holds every chosen value.
    Prepare {
        /// The candidate's last slot.
        last_slot: Slot,
        /// The ballot of the candidate's last entry.
        last_ballot: Ballot,
        /// A pre-vote (Raft §9.6): "would you promise?" — answered without
        /// changing any state, so a replica that was cut off cannot depose a
        /// healthy leader by campaigning with ever higher ballots.
        pre_vote: bool,
        /// The candidate campaigns because its leader handed leadership
        /// over to it ([`Body::TakeOver`]): acceptors skip leader
        /// stickiness for it — and only that; every other condition of a
        /// promise still holds. Never set on a pre-vote.
        hand_over: bool,
    },
    /// Phase 1b, or its refusal.
    Promise {
        /// Whether the promise was (or, for a pre-vote, would be) given.
        granted: bool,
        /// Answers a pre-vote.
        pre_vote: bool,
        /// Spanner §4.1.1: the end of the latest lease this acceptor granted
        /// to any leader; a new leader waits until `TT.after` of the maximum.
        lease_until: Timestamp,
    },
    /// Phase 2a for a run of slots, and the leader's heartbeat.
    Accept {
        /// The slot before `entries[0]` (log matching).
        prev_slot: Slot,
        /// The ballot of that slot's entry at the leader.
        prev_ballot: Ballot,
        /// Entries for `prev_slot + 1 ..`; empty for a heartbeat.
        entries: Vec<Entry>,
        /// The leader's chosen (commit) index.
        commit: Slot,
        /// `TT.now().earliest` at the leader when sent; echoed back to
        /// extend the leader's lease.
        lease_start: Timestamp,
    },
    /// Phase 2b: sent only once the accepted entries are durable.
    Accepted {
        /// Whether the log matched.
        ok: bool,
        /// If `ok`, the last slot now known to match the leader's log; if
        /// not, the slot the leader should resend from.
        upto: Slot,
        /// The echoed `lease_start` of the message answered.
        lease_start: Timestamp,
    },
    /// A leader handing over (docs/design.md §3) tells the follower it
    /// chose, once that follower's log matches its own, to campaign at
    /// once; the leader has already stepped down. Acted on only by a
    /// follower of the sender at the message's ballot.
    TakeOver {
        /// The leader's last slot when it stepped down; the target
        /// campaigns only if its log reaches it.
        last_slot: Slot,
    },
    /// Catch-up of a replica whose missing slots were compacted away.
    InstallSnapshot {
        /// The leader's snapshot.
        snapshot: Snapshot,
        /// As in [`Body::Accept`].
        lease_start: Timestamp,
    },
}
