//! The Multi-Paxos replica state machine.

use std::collections::VecDeque;

use bytes::Bytes;
use meridian_truetime::{Timestamp, TtInterval};
use rand::{Rng, RngCore};

use crate::storage::{PersistRequest, Recovered};
use crate::types::{
    Ballot, Body, Entry, HardState, Membership, Message, NodeId, Payload, Slot, Snapshot,
};

/// Default heartbeat interval: 100 ms.
pub const DEFAULT_HEARTBEAT_NANOS: u64 = 100_000_000;
/// Default lower bound of the randomized election timeout: 500 ms.
pub const DEFAULT_ELECTION_MIN_NANOS: u64 = 500_000_000;
/// Default upper bound of the randomized election timeout: 1 s.
pub const DEFAULT_ELECTION_MAX_NANOS: u64 = 1_000_000_000;
/// Default leader lease: 2 s (docs/design.md §3).
pub const DEFAULT_LEASE_NANOS: u64 = 2_000_000_000;
/// Default most entries in one `Accept`.
pub const DEFAULT_MAX_BATCH_ENTRIES: usize = 256;
/// Default most unacknowledged `Accept`s in flight to one follower.
pub const DEFAULT_MAX_INFLIGHT: usize = 32;
/// Default most proposals queued at a leader waiting for its lease.
pub const DEFAULT_MAX_PENDING: usize = 100_000;
/// A proposal whose minimum timestamp is further ahead of `TT.now().latest`
/// than this waits in the queue, and later proposals go first (a
/// two-phase commit whose participant's clock runs ahead must not push
/// every later write of its group to that timestamp and its commit wait).
/// It is placed once `TT.now().latest` is within this of its minimum:
/// its own commit wait (until `TT.after(min_ts)`) still ends later than a
/// Paxos round placed then would, so waiting costs it nothing.
pub const FUTURE_TS_LEAD_NANOS: u64 = 10_000_000;

/// A replica that granted a candidate's pre-vote refuses other candidates'
/// pre-votes for `election_min` divided by this: time for that candidate's
/// real `Prepare` to arrive (a round trip and a disk sync), short enough
/// that candidates backed in turn cannot hold each other off round after
/// round.
pub const PRE_VOTE_BACKING_DIVISOR: u64 = 4;

/// Static configuration of one replica.
#[derive(Clone, Debug)]
pub struct Config {
    /// This replica's id.
    pub id: NodeId,
    /// Messages with another cluster id are dropped.
    pub cluster_id: u64,
    /// The membership before any configuration entry. A replica added later
    /// starts with an empty list and learns its membership from the leader.
    pub initial_voters: Vec<NodeId>,
    /// Interval between leader heartbeats.
    pub heartbeat_nanos: u64,
    /// Lower bound of the randomized election timeout.
    pub election_min_nanos: u64,
    /// Upper bound of the randomized election timeout.
    pub election_max_nanos: u64,
    /// Length of a leader lease (Spanner §4.1.1).
    pub lease_nanos: u64,
    /// Most entries in one `Accept` message.
    pub max_batch_entries: usize,
    /// Most unacknowledged `Accept`s in flight to one follower.
    pub max_inflight: usize,
    /// Most proposals a leader queues while it waits for its lease.
    pub max_pending: usize,
    /// A deliberate bug to exhibit (simulator only).
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<crate::PlantedBug>,
}

impl Config {
    /// A configuration with default timing for replica `id` of a group whose
    /// initial voters are `voters`.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            cluster_id: 0,
            initial_voters: voters,
            heartbeat_nanos: DEFAULT_HEARTBEAT_NANOS,
            election_min_nanos: DEFAULT_ELECTION_MIN_NANOS,
            election_max_nanos: DEFAULT_ELECTION_MAX_NANOS,
            lease_nanos: DEFAULT_LEASE_NANOS,
            max_batch_entries: DEFAULT_MAX_BATCH_ENTRIES,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            max_pending: DEFAULT_MAX_PENDING,
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
        }
    }

    fn validate(&self) {
        assert!(self.heartbeat_nanos > 0, "heartbeat must be positive");
        assert!(
            self.election_min_nanos > self.heartbeat_nanos
                && self.election_max_nanos > self.election_min_nanos,
            "need heartbeat < election_min < election_max"
        );
        assert!(self.lease_nanos > 0, "lease must be positive");
        assert!(self.max_batch_entries > 0 && self.max_inflight > 0);
    }
}

/// What drives a replica.
#[derive(Clone, Debug)]
pub enum Input {
    /// Time passed; the replica checks its timers.
    Tick,
    /// A message from a peer.
    Message(Message),
    /// Every [`PersistRequest`] with `seq` at most this is durable.
    Persisted {
        /// Highest durable sequence number.
        seq: u64,
    },
    /// The driver's verdict on this node's clock (docs/design.md §2): `ok`
    /// while its measured offset from its peers is within the ε bound.
    /// While not `ok` the replica does not lead: it steps down, starts no
    /// campaign and promises nothing (no pre-vote, no prepare) — its lease
    /// arithmetic and the lease grants it would report are judged on a
    /// clock that cannot be trusted. It still accepts a leader's entries
    /// (and so votes for its lease); when the clock is back it reports a
    /// grant of a full lease from then in any promise, as after a restart,
    /// which covers every vote it gave meanwhile. A new replica starts
    /// healthy.
    ClockHealth {
        /// Whether the clock is within its bound.
        ok: bool,
    },
    /// Hand leadership to another voter (docs/design.md §3), for a node
    /// that is shutting down: ignored unless this replica leads and is not
    /// already handing over. The leader picks the target — `to` if it is
    /// another voter (otherwise the input is ignored), or, for `None`, the
    /// other voter most caught up among those heard from within
    /// `election_min_nanos` — and refuses proposals from then on
    /// ([`ProposeError::NotLeader`] naming the target). Once the target's
    /// log matches the leader's last slot, the leader sends it
    /// [`Body::TakeOver`] and steps down; the target campaigns at once.
    /// If that has not happened within `election_max_nanos`, the leader
    /// abandons the hand-over and accepts proposals again. Leases are kept
    /// as at any change of leader: the new leader waits out every lease
    /// its promisers granted, the old one's included.
    HandOver {
        /// The voter to hand over to; `None` lets the leader choose.
        to: Option<NodeId>,
    },
}

/// What a replica asks of its driver.
#[derive(Clone, Debug)]
pub enum Output {
    /// Send a message (best effort: drops and duplicates are tolerated).
    Send(Message),
    /// Write (then sync and report [`Input::Persisted`]) in order.
    Persist(PersistRequest),
    /// Chosen entries, in slot order, to apply to the state machine.
    Apply(Vec<Entry>),
    /// Replace the state machine's state with this snapshot.
    RestoreSnapshot(Snapshot),
    /// A proposal entered the log at `slot` with Paxos write timestamp `ts`
    /// (zero for configuration entries). It is chosen only if that slot is
    /// later applied with this proposal's payload: a leader that steps down
    /// may see the slot overwritten by its successor.
    Proposed {
        /// The id [`Replica::propose`] (or a sibling) returned.
        id: ProposalId,
        /// The slot it occupies.
        slot: Slot,
        /// Its Paxos write timestamp (Spanner §4.1.2).
        ts: Timestamp,
    },
    /// Proposals that never entered the log and never will: the leader
    /// stepped down while they waited for its lease. They were not chosen.
    Dropped(Vec<ProposalId>),
    /// This replica's role or known leader changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The leader this replica now follows, if known.
        leader: Option<NodeId>,
    },
}

/// A replica's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Accepts what a leader sends.
    Follower,
    /// Gathering promises for its ballot.
    Candidate,
    /// Won phase 1; proposes and commits.
    Leader,
}

/// A one-at-a-time membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Add a voter (it catches up from the leader).
    AddVoter(NodeId),
    /// Remove a voter.
    RemoveVoter(NodeId),
}

/// Why a proposal was refused. Nothing was appended when this is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader proposes.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this replica believes in, if any.
        leader: Option<NodeId>,
    },
    /// The queue of proposals waiting for the lease is full.
    #[error("proposal queue full ({0} waiting)")]
    QueueFull(usize),
    /// A membership change is still uncommitted, or the leader has not yet
    /// committed an entry of its own ballot (Raft §4.1's safety condition).
    #[error("a membership change is already in progress")]
    ChangeInProgress,
    /// The change makes no difference or would leave no voters.
    #[error("invalid membership change: {0}")]
    InvalidChange(&'static str),
}

/// The leader's lease, as seen by the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Not the leader.
    NotLeader,
    /// Leader, but waiting out the previous leader's lease (until
    /// `TT.after(wait_until)`).
    WaitingOutPrevious {
        /// The latest lease end any promiser reported.
        wait_until: Timestamp,
    },
    /// Leader without a current quorum of lease votes.
    Expired,
    /// Leader holding a lease until `end` (`TT.before(end)`).
    Valid {
        /// The lease's end.
        end: Timestamp,
    },
}

/// The leader's view of one follower (etcd's `Progress`).
#[derive(Clone, Debug)]
struct Progress {
    id: NodeId,
    /// Next slot to send.
    next: Slot,
    /// Highest slot known durable at the follower and matching our log.
    matched: Slot,
    /// Accepts in flight.
    inflight: usize,
    /// After a rejection: one message at a time until a match.
    probing: bool,
    /// Latest `lease_start` the follower echoed at our ballot.
    lease_ack: Timestamp,
    /// Local time of the last reply at our ballot.
    last_contact: Timestamp,
}

impl Progress {
    /// A follower we know nothing about yet: probe from `next`.
    fn new(id: NodeId, next: Slot, last_contact: Timestamp) -> Progress {
        Progress {
            id,
            next,
            matched: 0,
            inflight: 0,
            probing: true,
            lease_ack: Timestamp::ZERO,
            last_contact,
        }
    }
}

/// A hand-over in progress at the leader ([`Input::HandOver`]).
#[derive(Clone, Copy, Debug)]
struct HandOver {
    /// The voter that is to take over.
    to: NodeId,
    /// Local time at which the leader gives up and serves on.
    deadline: Timestamp,
}

/// Identifies a proposal to its proposer: returned by [`Replica::propose`]
/// and its siblings, reported again in [`Output::Proposed`] or
/// [`Output::Dropped`]. Unique within one `Replica` value (a restarted
/// replica counts afresh).
pub type ProposalId = u64;

/// A proposal waiting for the lease.
#[derive(Clone, Debug)]
struct Pending {
    id: ProposalId,
    payload: Payload,
    min_ts: Timestamp,
    /// Whether its timestamp must reach `TT.now().latest` when it is
    /// assigned (every proposal but [`Replica::propose_above`]'s).
    clock_bound: bool,
}

/// A Multi-Paxos replica. See the crate documentation for the protocol.
pub struct Replica {
    cfg: Config,
    rng: Box<dyn RngCore + Send>,

    // --- durable (mirrors what was sent to storage) ---
    promised: Ballot,
    snapshot: Snapshot,
    log: VecDeque<Entry>,

    // --- volatile ---
    role: Role,
    leader: Option<NodeId>,
    /// Highest round observed in any message, so the next ballot is higher.
    max_round_seen: u64,
    /// Membership history: (slot of the config entry, membership); the first
    /// element is the snapshot's (or initial) membership at slot 0/snapshot.
    memberships: Vec<(Slot, Membership)>,
    /// Highest slot known chosen.
    chosen: Slot,
    /// Highest slot handed to the state machine.
    applied: Slot,
    /// Largest Paxos write timestamp in the log (assigned or received).
    last_ts: Timestamp,
    /// Timestamp every command this leader assigns from now on exceeds
    /// ([`Replica::raise_ts_floor`]); below its lease end when raised.
    ts_floor: Timestamp,

    // timers, in local time (the interval's midpoint)
    election_deadline: Timestamp,
    heartbeat_deadline: Timestamp,
    /// Local time we last heard from a leader at our promised ballot.
    last_leader_contact: Timestamp,
    /// Local time and candidate of the last promise this replica made (to
    /// itself when it campaigns): for that long it refuses pre-votes of
    /// other candidates.
    last_promise: Option<(Timestamp, NodeId)>,
    /// Local time and candidate of the last pre-vote this replica granted:
    /// for [`PRE_VOTE_BACKING_DIVISOR`]th of an election timeout it refuses
    /// other candidates' pre-votes too.
    last_pre_vote_granted: Option<(Timestamp, NodeId)>,

    // leases
    /// Spanner §4.1.1: the latest lease end this replica granted any leader.
    lease_granted_until: Timestamp,
    /// As leader: the new leader waits until `TT.after(wait_until)`.
    lease_wait_until: Timestamp,
    /// As leader: the lease end established by a quorum of votes.
    lease_end: Timestamp,
    /// As leader: our own latest `lease_start` (self vote).
    self_lease_ack: Timestamp,

    // candidate state
    /// The ballot of a pre-vote in progress (Raft §9.6).
    pre_vote: Option<Ballot>,
    /// The ballot of this replica's last campaign, until it wins: no
    /// `Accept` was ever sent at it, so while it is still the promise a
    /// leader of its round may be yielded to (see `accept_leader`).
    /// Volatile: after a restart a replica does not know whether it led.
    unwon_campaign: Option<Ballot>,
    /// A voter refused the campaign in progress naming a higher ballot of
    /// its own round (it promised that ballot: it will refuse ours).
    outbid_in_round: bool,
    votes: Vec<NodeId>,
    promised_lease_max: Timestamp,

    // leader state
    progress: Vec<Progress>,
    pending: VecDeque<Pending>,
    /// Local time at which the earliest proposal held back for its
    /// far-future minimum timestamp may be placed.
    deferred_wake: Option<Timestamp>,
    /// The id the next proposal gets.
    next_proposal: ProposalId,
    /// A hand-over in progress: no proposals are accepted meanwhile.
    hand_over: Option<HandOver>,
    /// As candidate: this campaign answers a [`Body::TakeOver`].
    taking_over: bool,

    // persistence pipeline
    next_seq: u64,
    durable_seq: u64,
    /// (seq, last log slot at issue) for requests not yet durable.
    inflight_persists: VecDeque<(u64, Slot)>,
    /// Highest slot whose entry (and all before) is durable locally.
    durable_slot: Slot,
    staged: Option<PersistRequest>,
    /// Messages waiting until the given seq is durable.
    gated: VecDeque<(u64, Message)>,
    /// Whether the driver last reported the clock within its bound.
    clock_ok: bool,
    /// Created from a parent group's replica at a split
    /// ([`Replica::from_inheritance`]): its lease grant is inherited, not
    /// assumed at [`Replica::start`]; `Some` lead until `start` takes it up.
    inherited: Option<Option<InheritedLead>>,
}

/// What a replica of a group created by a split inherits from its node's
/// replica of the parent group (docs/design.md §9, rule
/// `split-child-lease-overlap`): the parent replica's promise, its lease
/// grant, and, at the parent's leader, its leadership and lease.
///
/// Every child replica reports a lease grant at least the parent replica's
/// and at least the split entry's timestamp plus a lease; the child leader
/// holds a lease no longer than either. So any other candidate in the
/// child waits out every lease the child leader holds, and no key has two
/// leaseholders at one true time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inheritance {
    /// The parent replica's promised ballot.
    pub promised: Ballot,
    /// The latest lease end the child replica counts as granted.
    pub lease_granted_until: Timestamp,
    /// The leader the parent replica followed, if it led at the split
    /// entry's ballot.
    pub leader: Option<NodeId>,
    /// At the parent's leader that proposed the split in its current term:
    /// its leadership, carried into the child without a new election.
    pub lead: Option<InheritedLead>,
}

/// The leadership a parent leader hands its child replica at a split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InheritedLead {
    /// The lease end the child leader holds (at most the parent's, at most
    /// the split's timestamp plus a lease).
    pub lease_end: Timestamp,
    /// The parent leader's wait for its predecessors' leases.
    pub lease_wait_until: Timestamp,
    /// The parent leader's own lease vote.
    pub self_lease_ack: Timestamp,
    /// The largest Paxos write timestamp the parent leader assigned.
    pub last_ts: Timestamp,
    /// The parent leader's timestamp floor ([`Replica::raise_ts_floor`]).
    pub ts_floor: Timestamp,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.cfg.id)
            .field("role", &self.role)
            .field("promised", &self.promised)
            .field("chosen", &self.chosen)
            .field("last_slot", &self.last_slot())
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// A replica recovered from `state` (use `Recovered::default()` for a
    /// fresh one). Call [`Replica::start`] before anything else.
    pub fn new(cfg: Config, state: Recovered, rng: Box<dyn RngCore + Send>) -> Replica {
        cfg.validate();
        let snapshot = state.snapshot.unwrap_or_else(|| Snapshot {
            membership: Membership::new(0, cfg.initial_voters.clone()),
            ..Snapshot::default()
        });
        let mut memberships = vec![(snapshot.last_slot, snapshot.membership.clone())];
        let mut last_ts = snapshot.last_ts;
        for e in &state.entries {
            if let Payload::Config(m) = &e.payload {
                memberships.push((e.slot, m.clone()));
            }
            last_ts = last_ts.max(e.ts);
        }
        if let Some(first) = state.entries.first() {
            assert_eq!(
                first.slot,
                snapshot.last_slot + 1,
                "log does not follow snapshot"
            );
        }
        let log: VecDeque<Entry> = state.entries.into();
        let last_slot = log.back().map_or(snapshot.last_slot, |e| e.slot);
        Replica {
            promised: state.hard_state.promised,
            max_round_seen: state.hard_state.promised.round,
            chosen: snapshot.last_slot,
            applied: snapshot.last_slot,
            durable_slot: last_slot,
            snapshot,
            log,
            role: Role::Follower,
            leader: None,
            memberships,
            last_ts,
            ts_floor: Timestamp::ZERO,
            election_deadline: Timestamp::ZERO,
            heartbeat_deadline: Timestamp::ZERO,
            last_leader_contact: Timestamp::ZERO,
            last_promise: None,
            last_pre_vote_granted: None,
            lease_granted_until: Timestamp::ZERO,
            lease_wait_until: Timestamp::ZERO,
            lease_end: Timestamp::ZERO,
            self_lease_ack: Timestamp::ZERO,
            pre_vote: None,
            unwon_campaign: None,
            outbid_in_round: false,
            votes: Vec::new(),
            promised_lease_max: Timestamp::ZERO,
            progress: Vec::new(),
            pending: VecDeque::new(),
            deferred_wake: None,
            next_proposal: 1,
            hand_over: None,
            taking_over: false,
            next_seq: 1,
            durable_seq: 0,
            inflight_persists: VecDeque::new(),
            staged: None,
            gated: VecDeque::new(),
            clock_ok: true,
            inherited: None,
            cfg,
            rng,
        }
    }

    /// What a child replica created on this node by a split applied at
    /// `split_ballot` (the split entry's ballot) and `split_ts` (its Paxos
    /// write timestamp) inherits from this replica of the parent (docs/design.md
    /// §9). Only the leader whose ballot proposed the split hands over its
    /// leadership: the child's acceptors all promised at least that ballot
    /// before applying the split, so it leads the child without a new
    /// phase 1, and no other replica does.
    pub fn inheritance(&self, split_ballot: Ballot, split_ts: Timestamp) -> Inheritance {
        let cap = split_ts.saturating_add(self.cfg.lease_nanos);
        let same_term = self.promised == split_ballot;
        let lead = (self.role == Role::Leader && same_term).then(|| InheritedLead {
            lease_end: self.lease_end.min(cap),
            lease_wait_until: self.lease_wait_until,
            self_lease_ack: self.self_lease_ack,
            last_ts: self.last_ts,
            ts_floor: self.ts_floor,
        });
        let lease_granted_until = if self.bug(bug::SPLIT_CHILD_LEASE_OVERLAP) {
            // The bug: the child claims no lease grant, so any candidate
            // there leads at once, beside the inherited leader.
            Timestamp::ZERO
        } else {
            self.lease_granted_until.max(cap)
        };
        Inheritance {
            promised: self.promised,
            lease_granted_until,
            leader: self.leader.filter(|_| same_term),
            lead,
        }
    }

    /// A replica of a group created by a split: its log starts after
    /// `snapshot` (the child's initial state, at the split's slot), with
    /// what it inherits from this node's replica of the parent. Call
    /// [`Replica::start`] next: it hands over the snapshot and emits the
    /// first [`Output::Persist`] (snapshot and promise), which the driver
    /// must make durable before the child answers anything.
    pub fn from_inheritance(
        cfg: Config,
        snapshot: Snapshot,
        inheritance: Inheritance,
        rng: Box<dyn RngCore + Send>,
    ) -> Replica {
        let promised = inheritance.promised;
        let state = Recovered {
            hard_state: HardState { promised },
            snapshot: Some(snapshot.clone()),
            entries: Vec::new(),
        };
        let mut r = Replica::new(cfg, state, rng);
        r.lease_granted_until = inheritance.lease_granted_until;
        r.leader = inheritance.leader;
        if let Some(lead) = &inheritance.lead {
            r.last_ts = r.last_ts.max(lead.last_ts);
            r.ts_floor = lead.ts_floor;
        }
        r.inherited = Some(inheritance.lead);
        let staged = r.stage();
        staged.snapshot = Some(snapshot);
        staged.hard_state = Some(HardState { promised });
        r
    }

    /// Starts the replica: hands a recovered snapshot to the state machine
    /// and arms the election timer.
    ///
    /// Spanner §4.1.1: the replica does not remember which lease votes it
    /// gave before a restart, so it assumes it gave one ending a full lease
    /// from now and reports that in any promise.
    pub fn start(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        if self.snapshot.last_slot > 0 {
            out.push(Output::RestoreSnapshot(self.snapshot.clone()));
        }
        self.reset_election_timer(now);
        let Some(lead) = self.inherited.take() else {
            self.lease_granted_until = now.latest.saturating_add(self.cfg.lease_nanos);
            return;
        };
        // A child created by a split: its grant is inherited (docs/design.md
        // §9), and its initial state is persisted first.
        self.flush_staged(out);
        if let Some(lead) = lead {
            self.role = Role::Leader;
            self.leader = Some(self.cfg.id);
            self.lease_end = lead.lease_end;
            self.lease_wait_until = lead.lease_wait_until;
            self.self_lease_ack = lead.self_lease_ack;
            let local = Self::local(now);
            let next = self.last_slot() + 1;
            self.progress = self
                .membership()
                .voters
                .iter()
                .filter(|v| **v != self.cfg.id)
                .map(|&id| Progress::new(id, next, local))
                .collect();
            out.push(Output::RoleChanged {
                role: Role::Leader,
                leader: Some(self.cfg.id),
            });
        } else if self.leader.is_some() {
            out.push(Output::RoleChanged {
                role: Role::Follower,
                leader: self.leader,
            });
        }
    }

    // ------------------------------------------------------------------
    // Queries
    // ------------------------------------------------------------------

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader this replica follows (itself if leader).
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// The highest ballot promised.
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// The highest slot known chosen.
    pub fn chosen(&self) -> Slot {
        self.chosen
    }

    /// The highest slot handed to the state machine.
    pub fn applied(&self) -> Slot {
        self.applied
    }

    /// The last slot in the log.
    pub fn last_slot(&self) -> Slot {
        self.log.back().map_or(self.snapshot.last_slot, |e| e.slot)
    }

    /// The first slot still in the log (after the snapshot).
    pub fn first_slot(&self) -> Slot {
        self.snapshot.last_slot + 1
    }

    /// The membership in force (the latest in the log).
    pub fn membership(&self) -> &Membership {
        &self
            .memberships
            .last()
            .expect("membership history is never empty")
            .1
    }

    /// The largest Paxos write timestamp this replica has assigned or seen.
    pub fn last_assigned_ts(&self) -> Timestamp {
        self.last_ts
    }

    /// Spanner §4.1.3, at the leader: promises that every command this
    /// leader assigns a timestamp from now on gets one above `ts`, so that
    /// nothing later in the log (this leader's entries, or a successor's,
    /// which come after this lease ends) falls at or below `ts`. Answers
    /// the last slot in the log now: once everything up to it has applied,
    /// no entry at or below `ts` remains to apply, and `ts` is closed
    /// without a Paxos round. `None` (nothing promised) unless this
    /// replica leads with its lease at `now` and `ts` is inside it.
    pub fn raise_ts_floor(&mut self, now: TtInterval, ts: Timestamp) -> Option<Slot> {
        if self.role != Role::Leader || !self.has_lease(now) || ts >= self.lease_end {
            return None;
        }
        self.ts_floor = self.ts_floor.max(ts);
        Some(self.last_slot())
    }

    /// The latest lease end this replica granted to any leader.
    pub fn lease_granted_until(&self) -> Timestamp {
        self.lease_granted_until
    }

    /// The leader's lease at `now` (Spanner §4.1.1).
    pub fn lease_status(&self, now: TtInterval) -> LeaseStatus {
        if self.role != Role::Leader {
            return LeaseStatus::NotLeader;
        }
        if !now.after(self.lease_wait_until) {
            return LeaseStatus::WaitingOutPrevious {
                wait_until: self.lease_wait_until,
            };
        }
        if now.before(self.lease_end) {
            LeaseStatus::Valid {
                end: self.lease_end,
            }
        } else {
            LeaseStatus::Expired
        }
    }

    /// Whether this replica leads and has applied an entry of its own
    /// ballot (the no-op it commits on election), and so has applied every
    /// entry chosen under earlier leaders. State built from the applied log
    /// is complete only from then on: a new leader serves nothing that
    /// depends on it before.
    pub fn term_started(&self) -> bool {
        self.role == Role::Leader && self.ballot_at(self.applied) == Some(self.promised)
    }

    /// Whether this replica is a leader holding a valid lease at `now`: it
    /// may assign timestamps and serve lease reads.
    pub fn has_lease(&self, now: TtInterval) -> bool {
        matches!(self.lease_status(now), LeaseStatus::Valid { .. })
    }

    /// The local time at which the replica next needs a [`Input::Tick`].
    pub fn next_deadline(&self) -> Timestamp {
        match self.role {
            Role::Leader => {
                let hb = self
                    .deferred_wake
                    .map_or(self.heartbeat_deadline, |w| w.min(self.heartbeat_deadline));
                self.hand_over.map_or(hb, |h| h.deadline.min(hb))
            }
            _ => self.election_deadline,
        }
    }

    /// Entries in `from..=to` still in the log (for tests and tools).
    pub fn entries(&self, from: Slot, to: Slot) -> Vec<Entry> {
        (from.max(self.first_slot())..=to.min(self.last_slot()))
            .filter_map(|s| self.entry(s).cloned())
            .collect()
    }

    /// Proposals queued at the leader waiting for its lease.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The voter this leader is handing leadership to, while a hand-over
    /// ([`Input::HandOver`]) is in progress.
    pub fn handing_over_to(&self) -> Option<NodeId> {
        self.hand_over.map(|h| h.to)
    }

    #[cfg(feature = "planted-bugs")]
    fn bug(&self, b: crate::PlantedBug) -> bool {
        self.cfg.planted_bug == Some(b)
    }

    #[cfg(not(feature = "planted-bugs"))]
    #[inline(always)]
    fn bug(&self, _b: BugStub) -> bool {
        false
    }

    // ------------------------------------------------------------------
    // Driving
    // ------------------------------------------------------------------

    /// Feeds one input; outputs are appended to `out`.
    pub fn step(&mut self, now: TtInterval, input: Input, out: &mut Vec<Output>) {
        match input {
            Input::Tick => self.tick(now, out),
            Input::Message(m) => self.handle_message(now, m, out),
            Input::Persisted { seq } => self.handle_persisted(seq),
            Input::ClockHealth { ok } => self.set_clock_health(now, ok, out),
            Input::HandOver { to } => self.start_hand_over(now, to, out),
        }
        self.finish(now, out);
    }

    /// docs/design.md §2: a replica whose clock is outside its bound does
    /// not lead. It steps down at once (its lease, judged on that clock,
    /// lapses; another replica takes over after the lease); back in bound,
    /// it assumes it granted a lease vote ending a full lease from now, as
    /// [`Replica::start`] does, because the grants it recorded while out of
    /// bound were computed on a clock that may have run behind.
    fn set_clock_health(&mut self, now: TtInterval, ok: bool, out: &mut Vec<Output>) {
        if ok == self.clock_ok {
            return;
        }
        self.clock_ok = ok;
        if ok {
            self.lease_granted_until = self
                .lease_granted_until
                .max(now.latest.saturating_add(self.cfg.lease_nanos));
            self.reset_election_timer(now);
        } else if self.role != Role::Follower {
            self.become_follower(now, None, out);
        }
    }

    /// Whether the driver last reported this replica's clock within its
    /// bound ([`Input::ClockHealth`]).
    pub fn clock_healthy(&self) -> bool {
        self.clock_ok
    }

    /// Proposes a command. It gets a timestamp above every timestamp
    /// assigned before, once the leader holds its lease. Its fate is
    /// reported by [`Output::Proposed`] (then the slot's [`Output::Apply`])
    /// or [`Output::Dropped`].
    pub fn propose(
        &mut self,
        now: TtInterval,
        command: Bytes,
        out: &mut Vec<Output>,
    ) -> Result<ProposalId, ProposeError> {
        self.propose_at_least(now, command, Timestamp::ZERO, out)
    }

    /// Like [`Replica::propose`], with a timestamp of at least `min_ts`
    /// (a transaction's commit timestamp must exceed its prepare
    /// timestamps, Spanner §4.2.1).
    pub fn propose_at_least(
        &mut self,
        now: TtInterval,
        command: Bytes,
        min_ts: Timestamp,
        out: &mut Vec<Output>,
    ) -> Result<ProposalId, ProposeError> {
        self.propose_command(now, command, min_ts, true, out)
    }

    /// Like [`Replica::propose_at_least`], but the timestamp need not reach
    /// `TT.now().latest`: it is above every timestamp assigned or promised
    /// in this group (this leader's, its raised floor, and every earlier
    /// leader's lease, which ended before this one began) and at least
    /// `min_ts`, and no more. For records whose clock bound is the
    /// caller's to give (Spanner §4.2.1): a prepare timestamp need only
    /// exceed the timestamps assigned before it, and a commit timestamp
    /// must reach `TT.now().latest` as of the commit's arrival, which the
    /// coordinator puts in `min_ts`, not as of the moment the record is
    /// logged. Commit wait then overlaps the prepare and commit rounds
    /// instead of following them.
    pub fn propose_above(
        &mut self,
        now: TtInterval,
        command: Bytes,
        min_ts: Timestamp,
        out: &mut Vec<Output>,
    ) -> Result<ProposalId, ProposeError> {
        self.propose_command(now, command, min_ts, false, out)
    }

    fn propose_command(
        &mut self,
        now: TtInterval,
        command: Bytes,
        min_ts: Timestamp,
        clock_bound: bool,
        out: &mut Vec<Output>,
    ) -> Result<ProposalId, ProposeError> {
        let id = self.enqueue(Payload::Command(command), min_ts, clock_bound)?;
        self.finish(now, out);
        Ok(id)
    }

    /// Proposes many commands at once (one batch, one persist request).
    /// Returns the ids of the proposals, consecutive, in order.
    pub fn propose_batch(
        &mut self,
        now: TtInterval,
        commands: impl IntoIterator<Item = Bytes>,
        out: &mut Vec<Output>,
    ) -> Result<std::ops::Range<ProposalId>, ProposeError> {
        self.check_can_propose()?;
        let commands: Vec<Bytes> = commands.into_iter().collect();
        // All or nothing: never queue part of a batch.
        if self.pending.len() + commands.len() > self.cfg.max_pending {
            return Err(ProposeError::QueueFull(self.pending.len()));
        }
        let first = self.next_proposal;
        for c in commands {
            let id = self.next_proposal;
            self.next_proposal += 1;
            self.pending.push_back(Pending {
                id,
                payload: Payload::Command(c),
                min_ts: Timestamp::ZERO,
                clock_bound: true,
            });
        }
        self.finish(now, out);
        Ok(first..self.next_proposal)
    }

    /// Proposes a one-at-a-time membership change.
    pub fn propose_membership(
        &mut self,
        now: TtInterval,
        change: MembershipChange,
        out: &mut Vec<Output>,
    ) -> Result<ProposalId, ProposeError> {
        self.check_can_propose()?;
        let latest_config_slot = self.memberships.last().map_or(0, |(s, _)| *s);
        let own_ballot_chosen = self.ballot_at(self.chosen) == Some(self.promised);
        if latest_config_slot > self.chosen
            || !own_ballot_chosen
            || self
                .pending
                .iter()
                .any(|p| matches!(p.payload, Payload::Config(_)))
        {
            return Err(ProposeError::ChangeInProgress);
        }
        let cur = self.membership().clone();
        let mut voters = cur.voters.clone();
        match change {
            MembershipChange::AddVoter(id) => {
                if cur.contains(id) {
                    return Err(ProposeError::InvalidChange("already a voter"));
                }
                voters.push(id);
            }
            MembershipChange::RemoveVoter(id) => {
                if !cur.contains(id) {
                    return Err(ProposeError::InvalidChange("not a voter"));
                }
                if voters.len() == 1 {
                    return Err(ProposeError::InvalidChange("would leave no voters"));
                }
                voters.retain(|v| *v != id);
            }
        }
        let id = self.enqueue(
            Payload::Config(Membership::new(cur.epoch + 1, voters)),
            Timestamp::ZERO,
            true,
        )?;
        self.finish(now, out);
        Ok(id)
    }

    /// Compacts the log up to `upto` (which must be applied) into a snapshot
    /// whose state-machine part is `data`.
    pub fn compact(&mut self, upto: Slot, data: Bytes, out: &mut Vec<Output>) {
        assert!(
            upto <= self.applied,
            "cannot snapshot unapplied slot {upto}"
        );
        if upto <= self.snapshot.last_slot {
            return;
        }
        let e = self
            .entry(upto)
            .expect("applied slot is in the log")
            .clone();
        let membership = self.membership_at(upto).clone();
        let last_ts = self
            .log
            .iter()
            .take_while(|x| x.slot <= upto)
            .map(|x| x.ts)
            .fold(self.snapshot.last_ts, Timestamp::max);
        let snap = Snapshot {
            last_slot: upto,
            last_ballot: e.ballot,
            last_ts,
            membership: membership.clone(),
            data,
        };
        while self.log.front().is_some_and(|x| x.slot <= upto) {
            self.log.pop_front();
        }
        let keep_from = self
            .memberships
            .iter()
            .rposition(|(s, _)| *s <= upto)
            .unwrap_or(0);
        self.memberships.drain(..keep_from);
        self.memberships[0] = (upto, membership);
        self.snapshot = snap.clone();
        self.stage().snapshot = Some(snap);
        self.flush_staged(out);
    }

    // ------------------------------------------------------------------
    // Timers
    // ------------------------------------------------------------------

    fn local(now: TtInterval) -> Timestamp {
        now.midpoint()
    }

    fn reset_election_timer(&mut self, now: TtInterval) {
        let jitter = self
            .rng
            .random_range(self.cfg.election_min_nanos..=self.cfg.election_max_nanos);
        self.election_deadline = Self::local(now).saturating_add(jitter);
    }

    fn tick(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        let local = Self::local(now);
        match self.role {
            Role::Leader => {
                if local >= self.heartbeat_deadline {
                    self.broadcast(now, true, out);
                }
                // Check quorum: a leader cut off from a quorum for a whole
                // election timeout steps down so a reachable one can rise.
                let quorum_contact = self.quorum_value(local, |p| p.last_contact);
                if local.nanos_since(quorum_contact) > self.cfg.election_max_nanos {
                    self.become_follower(now, None, out);
                } else if self.hand_over.is_some_and(|h| local >= h.deadline) {
                    // The target did not catch up in time: lead on.
                    self.hand_over = None;
                }
            }
            Role::Follower | Role::Candidate => {
                if local >= self.election_deadline {
                    // A clock out of bound campaigns for nothing.
                    if self.clock_ok && self.membership().contains(self.cfg.id) {
                        self.pre_campaign(now, out);
                    } else {
                        self.reset_election_timer(now);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------
    // Phase 1
    // ------------------------------------------------------------------

    /// Raft §9.6 pre-vote: ask whether a quorum would promise before
    /// raising any ballot.
    fn pre_campaign(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        let ballot = Ballot::new(
            self.max_round_seen.max(self.promised.round) + 1,
            self.cfg.id,
        );
        if self.role != Role::Candidate {
            out.push(Output::RoleChanged {
                role: Role::Candidate,
                leader: None,
            });
        }
        self.role = Role::Candidate;
        self.pre_vote = Some(ballot);
        self.leader = None;
        self.votes = vec![self.cfg.id];
        self.reset_election_timer(now);
        self.taking_over = false;
        for m in self.prepares(ballot, true, false) {
            out.push(Output::Send(m));
        }
        self.maybe_win(now, out);
    }

    /// `Prepare` messages for `ballot` to every other voter.
    fn prepares(&self, ballot: Ballot, pre_vote: bool, hand_over: bool) -> Vec<Message> {
        let body = Body::Prepare {
            last_slot: self.last_slot(),
            last_ballot: self.last_ballot(),
            pre_vote,
            hand_over,
        };
        self.membership()
            .voters
            .iter()
            .filter(|v| **v != self.cfg.id)
            .map(|v| self.msg(*v, ballot, body.clone()))
            .collect()
    }

    /// Phase 1 for a fresh ballot; `hand_over` when the leader handed
    /// leadership to this replica ([`Body::TakeOver`]).
    fn campaign(&mut self, now: TtInterval, hand_over: bool, out: &mut Vec<Output>) {
        let round = self.max_round_seen.max(self.promised.round) + 1;
        let ballot = Ballot::new(round, self.cfg.id);
        self.max_round_seen = round;
        self.set_promised(ballot);
        self.unwon_campaign = Some(ballot);
        self.outbid_in_round = false;
        self.last_promise = Some((Self::local(now), self.cfg.id));
        self.pre_vote = None;
        if self.role != Role::Candidate {
            out.push(Output::RoleChanged {
                role: Role::Candidate,
                leader: None,
            });
        }
        self.role = Role::Candidate;
        self.leader = None;
        self.taking_over = hand_over;
        self.votes = vec![self.cfg.id];
        self.promised_lease_max = self.lease_granted_until;
        self.reset_election_timer(now);
        // Gated: our own promise must be durable before anyone acts on
        // this ballot.
        for m in self.prepares(ballot, false, hand_over) {
            self.send_durable(m, out);
        }
        self.maybe_win(now, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_prepare(
        &mut self,
        now: TtInterval,
        m: &Message,
        last_slot: Slot,
        last_ballot: Ballot,
        pre_vote: bool,
        hand_over: bool,
        out: &mut Vec<Output>,
    ) {
        // A candidate whose configuration is older than one this replica
        // knows is chosen missed a change that removed or added voters. A
        // configuration this replica merely holds uncommitted is no reason
        // to refuse: its entry may never be chosen, and refusing on it can
        // leave no candidate able to win.
        if m.epoch < self.membership_at(self.chosen).epoch {
            return; // candidate with a stale configuration
        }
        if !self.clock_ok {
            // docs/design.md §2: no promise, and no pre-vote, from a clock
            // out of bound — the lease grant a promise reports was judged
            // on it.
            return;
        }
        // Leader stickiness: while a leader is known to be alive, ignore
        // candidates (prevents a partitioned replica from deposing it).
        let local = Self::local(now);
        let recently_heard = match self.role {
            Role::Follower => {
                self.leader.is_some()
                    && local.nanos_since(self.last_leader_contact) < self.cfg.election_min_nanos
            }
            Role::Leader => {
                let q = self.membership().quorum();
                let alive = 1 + self
                    .progress
                    .iter()
                    .filter(|p| {
                        self.membership().contains(p.id)
                            && local.nanos_since(p.last_contact) < self.cfg.election_min_nanos
                    })
                    .count();
                alive >= q
            }
            Role::Candidate => false,
        };
        // A candidate the leader handed over to is let through: the leader
        // it would depose has stepped down. Only stickiness is skipped.
        let handed_over = hand_over && !pre_vote;
        if recently_heard && self.leader != Some(m.from) && !handed_over {
            return;
        }
        let up_to_date = (last_ballot, last_slot) >= (self.last_ballot(), self.last_slot());
        if pre_vote {
            // Answer what we would do, changing nothing — except that a
            // replica that just promised another candidate (or itself, by
            // campaigning) lets that campaign finish first: a pre-vote
            // granted now would let a second candidate depose the leader
            // the first campaign is about to make, one more election
            // round (liveness only; a real prepare is still answered).
            let promised_other = self.last_promise.is_some_and(|(at, to)| {
                to != m.from && local.nanos_since(at) < self.cfg.election_min_nanos
            }) || self.last_pre_vote_granted.is_some_and(|(at, to)| {
                to != m.from
                    && local.nanos_since(at)
                        < self.cfg.election_min_nanos / PRE_VOTE_BACKING_DIVISOR
            });
            let above = if self.bug(bug::SAME_ROUND_BALLOT) {
                m.ballot.round >= self.promised.round
            } else {
                m.ballot > self.promised
            };
            let granted = above && up_to_date && !promised_other;
            if granted {
                self.last_pre_vote_granted = Some((local, m.from));
            }
            if granted && self.role != Role::Leader {
                // A follower (or a candidate whose own campaign stalled)
                // backing a candidate gives its campaign a full election
                // timeout before starting its own: followers that lost
                // the same leader time out close together, and each
                // campaign started in the meantime is one more duel.
                self.reset_election_timer(now);
            }
            let reply = self.msg(
                m.from,
                m.ballot,
                Body::Promise {
                    granted,
                    pre_vote: true,
                    lease_until: Timestamp::ZERO,
                },
            );
            out.push(Output::Send(reply));
            return;
        }
        // One promise per round (Raft §5.2's one vote per term, for a
        // while): a candidate of the round of a fresh promise to another
        // is refused, so of two candidates campaigning in one round at
        // most one wins. Liveness only: refusing a prepare is always safe.
        let round_taken = m.ballot.round == self.promised.round
            && self.last_promise.is_some_and(|(at, to)| {
                to == self.promised.node
                    && to != m.from
                    && local.nanos_since(at) < self.cfg.election_min_nanos
            });
        let above = if self.bug(bug::SAME_ROUND_BALLOT) {
            // Rounds alone, except that a candidate keeps its own vote.
            m.ballot.round > self.promised.round
                || (m.ballot.round == self.promised.round
                    && m.ballot != self.promised
                    && self.unwon_campaign != Some(self.promised))
        } else {
            m.ballot > self.promised && !round_taken
        };
        if above && up_to_date {
            self.set_promised(m.ballot);
            self.last_promise = Some((local, m.from));
            if self.role != Role::Follower || self.leader.is_some() {
                self.become_follower(now, None, out);
            }
            self.reset_election_timer(now);
            let reply = self.msg(
                m.from,
                m.ballot,
                Body::Promise {
                    granted: true,
                    pre_vote: false,
                    lease_until: self.lease_granted_until,
                },
            );
            self.send_durable(reply, out);
        } else {
            let reply = self.msg(
                m.from,
                self.promised.max(m.ballot),
                Body::Promise {
                    granted: false,
                    pre_vote: false,
                    lease_until: Timestamp::ZERO,
                },
            );
            self.send_durable(reply, out);
        }
    }

    fn handle_promise(
        &mut self,
        now: TtInterval,
        m: &Message,
        granted: bool,
        pre_vote: bool,
        lease_until: Timestamp,
        out: &mut Vec<Output>,
    ) {
        if self.role != Role::Candidate {
            return;
        }
        let current = if pre_vote {
            self.pre_vote == Some(m.ballot)
        } else {
            self.pre_vote.is_none() && m.ballot == self.promised
        };
        // A refusal names the refuser's promise when it is above our
        // ballot. In a higher round `max_round_seen` shows it; in our own
        // round it is a duel we have lost at that voter.
        if !granted
            && !pre_vote
            && self.pre_vote.is_none()
            && m.ballot.round == self.promised.round
            && m.ballot > self.promised
        {
            self.outbid_in_round = true;
        }
        if !current || !granted {
            return;
        }
        if !self.votes.contains(&m.from) && self.membership().contains(m.from) {
            self.votes.push(m.from);
            self.promised_lease_max = self.promised_lease_max.max(lease_until);
        }
        self.maybe_win(now, out);
    }

    fn maybe_win(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        if !self.clock_ok {
            return;
        }
        let q = self.membership().quorum();
        let n = self
            .votes
            .iter()
            .filter(|v| self.membership().contains(**v))
            .count();
        if n >= q {
            if self.pre_vote.is_some() {
                self.campaign(now, false, out);
            } else if self.max_round_seen > self.promised.round || self.outbid_in_round {
                // A voter refused us naming a higher ballot it promised
                // (say its own campaign's, kept across a crash, in a later
                // round or in ours): leading at ours, its first refusal
                // would depose us and cost an election timeout. Campaign
                // again above it at once, while the quorum that just
                // granted is listening.
                let hand_over = self.taking_over;
                self.campaign(now, hand_over, out);
            } else {
                self.become_leader(now, out);
            }
        }
    }

    fn become_leader(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        self.pre_vote = None;
        self.unwon_campaign = None;
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        // Spanner §4.1.1 disjointness: wait out every lease a promiser may
        // have granted to a previous leader.
        self.lease_wait_until = if self.bug(bug::LEASE_OVERLAP)
            || (self.taking_over && self.bug(bug::HAND_OVER_SKIPS_LEASE_WAIT))
        {
            Timestamp::ZERO
        } else {
            self.promised_lease_max
        };
        self.taking_over = false;
        self.hand_over = None;
        self.lease_end = Timestamp::ZERO;
        self.self_lease_ack = Timestamp::ZERO;
        let local = Self::local(now);
        let next = self.last_slot() + 1;
        self.progress = self
            .membership()
            .voters
            .iter()
            .filter(|v| **v != self.cfg.id)
            .map(|&id| Progress::new(id, next, local))
            .collect();
        out.push(Output::RoleChanged {
            role: Role::Leader,
            leader: Some(self.cfg.id),
        });
        // Commit everything before us by committing an entry of our ballot.
        self.append(Payload::Noop, Timestamp::ZERO);
        self.broadcast(now, true, out);
    }

    fn become_follower(&mut self, now: TtInterval, leader: Option<NodeId>, out: &mut Vec<Output>) {
        let changed = self.role != Role::Follower || self.leader != leader;
        self.role = Role::Follower;
        self.leader = leader;
        self.progress.clear();
        if !self.pending.is_empty() {
            out.push(Output::Dropped(
                self.pending.drain(..).map(|p| p.id).collect(),
            ));
        }
        self.votes.clear();
        self.pre_vote = None;
        self.taking_over = false;
        self.hand_over = None;
        self.lease_end = Timestamp::ZERO;
        self.reset_election_timer(now);
        if changed {
            out.push(Output::RoleChanged {
                role: Role::Follower,
                leader,
            });
        }
    }

    // ------------------------------------------------------------------
    // Hand-over
    // ------------------------------------------------------------------

    /// docs/design.md §3, [`Input::HandOver`]: a leader picks the voter to
    /// hand over to, stops taking proposals and hands over as soon as that
    /// voter's log matches its own.
    fn start_hand_over(&mut self, now: TtInterval, to: Option<NodeId>, out: &mut Vec<Output>) {
        if self.role != Role::Leader || self.hand_over.is_some() {
            return;
        }
        let local = Self::local(now);
        let target = match to {
            Some(t) => (t != self.cfg.id && self.membership().contains(t)).then_some(t),
            None => self
                .progress
                .iter()
                .filter(|p| {
                    self.membership().contains(p.id)
                        && local.nanos_since(p.last_contact) < self.cfg.election_min_nanos
                })
                // Most caught up, then most recently heard from, then the
                // lowest id (deterministic).
                .max_by_key(|p| (p.matched, p.last_contact, std::cmp::Reverse(p.id)))
                .map(|p| p.id),
        };
        let Some(to) = target else {
            return;
        };
        self.hand_over = Some(HandOver {
            to,
            deadline: local.saturating_add(self.cfg.election_max_nanos),
        });
        // Whatever the target lacks goes now, not at the next heartbeat.
        self.send_to(now, to, true, out);
        self.maybe_take_over(now, out);
    }

    /// Completes a hand-over once the target's log matches the leader's
    /// last slot (its acknowledgement means those entries are durable
    /// there): sends it [`Body::TakeOver`] and steps down, naming it as
    /// the leader to try. From here on this replica serves nothing; the
    /// target waits out this replica's lease, as any new leader does.
    fn maybe_take_over(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        let Some(h) = self.hand_over else {
            return;
        };
        if self.role != Role::Leader {
            return;
        }
        let last = self.last_slot();
        let caught_up = self
            .progress
            .iter()
            .any(|p| p.id == h.to && p.matched >= last);
        if !caught_up {
            return;
        }
        let m = self.msg(h.to, self.promised, Body::TakeOver { last_slot: last });
        out.push(Output::Send(m));
        self.become_follower(now, Some(h.to), out);
    }

    /// At the target of a hand-over: campaign at once, skipping the
    /// pre-vote, if the message comes from the leader this replica follows
    /// at its current ballot and this replica holds the leader's log. A
    /// stale or foreign take-over is ignored.
    fn handle_take_over(
        &mut self,
        now: TtInterval,
        m: &Message,
        last_slot: Slot,
        out: &mut Vec<Output>,
    ) {
        let current =
            self.role == Role::Follower && self.leader == Some(m.from) && m.ballot == self.promised;
        if !current
            || self.last_slot() < last_slot
            || !self.clock_ok
            || !self.membership().contains(self.cfg.id)
        {
            return;
        }
        self.campaign(now, true, out);
    }

    // ------------------------------------------------------------------
    // Phase 2
    // ------------------------------------------------------------------

    fn handle_message(&mut self, now: TtInterval, m: Message, out: &mut Vec<Output>) {
        if m.cluster_id != self.cfg.cluster_id || m.to != self.cfg.id || m.from == self.cfg.id {
            return;
        }
        // A pre-vote changes nothing, not even the rounds we have seen.
        if !matches!(m.body, Body::Prepare { pre_vote: true, .. }) {
            self.max_round_seen = self.max_round_seen.max(m.ballot.round);
        }
        match m.body {
            Body::Prepare {
                last_slot,
                last_ballot,
                pre_vote,
                hand_over,
            } => self.handle_prepare(now, &m, last_slot, last_ballot, pre_vote, hand_over, out),
            Body::TakeOver { last_slot } => self.handle_take_over(now, &m, last_slot, out),
            Body::Promise {
                granted,
                pre_vote,
                lease_until,
            } => self.handle_promise(now, &m, granted, pre_vote, lease_until, out),
            Body::Accept {
                prev_slot,
                prev_ballot,
                ref entries,
                commit,
                lease_start,
            } => {
                if let Some(reply) = self.handle_accept(
                    now,
                    &m,
                    prev_slot,
                    prev_ballot,
                    entries,
                    commit,
                    lease_start,
                    out,
                ) {
                    self.send_durable(reply, out);
                }
            }
            Body::InstallSnapshot {
                ref snapshot,
                lease_start,
            } => {
                if let Some(reply) = self.handle_snapshot(now, &m, snapshot, lease_start, out) {
                    self.send_durable(reply, out);
                }
            }
            Body::Accepted {
                ok,
                upto,
                lease_start,
            } => self.handle_accepted(now, &m, ok, upto, lease_start, out),
        }
    }

    /// Common acceptor prologue for leader messages: refuse lower ballots,
    /// adopt higher ones, record the leader and grant it a lease vote.
    fn accept_leader(
        &mut self,
        now: TtInterval,
        m: &Message,
        lease_start: Timestamp,
        out: &mut Vec<Output>,
    ) -> Option<Message> {
        let below = if self.bug(bug::SAME_ROUND_BALLOT) {
            m.ballot.round < self.promised.round
                || (m.ballot.round == self.promised.round
                    && m.ballot != self.promised
                    && self.unwon_campaign == Some(self.promised))
        } else {
            m.ballot < self.promised && !self.yields_to(m.ballot)
        };
        if below {
            return Some(self.msg(
                m.from,
                self.promised,
                Body::Accepted {
                    ok: false,
                    upto: 0,
                    lease_start,
                },
            ));
        }
        if m.ballot != self.promised {
            // A higher ballot, or the leader of our own unwon campaign's
            // round that we yield to (our promise goes down to its ballot).
            self.set_promised(m.ballot);
            self.unwon_campaign = None;
        }
        if self.role != Role::Follower || self.leader != Some(m.from) {
            self.become_follower(now, Some(m.from), out);
        }
        self.last_leader_contact = Self::local(now);
        self.reset_election_timer(now);
        // Spanner §4.1.1 lease vote: no promise to another leader is given
        // without reporting this grant.
        let from = if self.bug(bug::LEASE_VOTE_FROM_EARLIEST) {
            now.earliest
        } else {
            now.latest
        };
        self.lease_granted_until = self
            .lease_granted_until
            .max(from.saturating_add(self.cfg.lease_nanos));
        None
    }

    /// Whether a leader's message at `ballot`, below our promise, comes
    /// from the leader of the round of our own campaign, one we have not
    /// won: then we yield to it instead of refusing (a same-round duel,
    /// docs/paxos.md "One leader per round"). Only `Accept` and
    /// `InstallSnapshot`, which a replica sends only after winning
    /// `ballot`, count as word of a leader. Safe because our promise is
    /// to ourselves alone (a campaign's round is above every ballot we
    /// promised before it) and we never send an `Accept` at it: the
    /// campaign is abandoned for good.
    fn yields_to(&self, ballot: Ballot) -> bool {
        self.unwon_campaign == Some(self.promised)
            && ballot.round == self.promised.round
            && ballot < self.promised
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_accept(
        &mut self,
        now: TtInterval,
        m: &Message,
        prev_slot: Slot,
        prev_ballot: Ballot,
        entries: &[Entry],
        commit: Slot,
        lease_start: Timestamp,
        out: &mut Vec<Output>,
    ) -> Option<Message> {
        if let Some(nack) = self.accept_leader(now, m, lease_start, out) {
            return Some(nack);
        }
        let reject = |this: &Self, hint: Slot| {
            this.msg(
                m.from,
                this.promised,
                Body::Accepted {
                    ok: false,
                    upto: hint,
                    lease_start,
                },
            )
        };
        // Log matching on (prev_slot, prev_ballot). Slots at or below our
        // chosen index match by Paxos safety.
        if prev_slot > self.last_slot() {
            return Some(reject(self, self.last_slot() + 1));
        }
        if prev_slot > self.chosen && self.ballot_at(prev_slot) != Some(prev_ballot) {
            return Some(reject(self, self.chosen + 1));
        }
        for e in entries {
            if e.slot <= self.chosen {
                continue;
            }
            match self.ballot_at(e.slot) {
                Some(b) if b == e.ballot => continue,
                Some(_) => {
                    assert!(e.slot > self.chosen, "truncating a chosen slot");
                    self.truncate_from(e.slot);
                    self.push_entry(e.clone());
                }
                None => self.push_entry(e.clone()),
            }
        }
        let matched = prev_slot + entries.len() as Slot;
        let new_chosen = commit.min(matched);
        if new_chosen > self.chosen {
            self.chosen = new_chosen;
        }
        Some(self.msg(
            m.from,
            self.promised,
            Body::Accepted {
                ok: true,
                upto: matched,
                lease_start,
            },
        ))
    }

    fn handle_snapshot(
        &mut self,
        now: TtInterval,
        m: &Message,
        snap: &Snapshot,
        lease_start: Timestamp,
        out: &mut Vec<Output>,
    ) -> Option<Message> {
        if let Some(nack) = self.accept_leader(now, m, lease_start, out) {
            return Some(nack);
        }
        if snap.last_slot > self.chosen {
            let keep_suffix = self.ballot_at(snap.last_slot) == Some(snap.last_ballot);
            if keep_suffix {
                while self.log.front().is_some_and(|x| x.slot <= snap.last_slot) {
                    self.log.pop_front();
                }
            } else {
                self.log.clear();
            }
            self.memberships
                .retain(|(s, _)| keep_suffix && *s > snap.last_slot);
            self.memberships
                .insert(0, (snap.last_slot, snap.membership.clone()));
            self.snapshot = snap.clone();
            self.chosen = snap.last_slot;
            self.applied = snap.last_slot;
            self.last_ts = self.last_ts.max(snap.last_ts);
            self.durable_slot = self.durable_slot.min(snap.last_slot);
            for p in self.inflight_persists.iter_mut() {
                p.1 = p.1.min(snap.last_slot);
            }
            let st = self.stage();
            st.entries.clear();
            st.truncate_from = None;
            st.snapshot = Some(snap.clone());
            if !keep_suffix {
                st.truncate_from = Some(snap.last_slot + 1);
            }
            out.push(Output::RestoreSnapshot(snap.clone()));
        }
        Some(self.msg(
            m.from,
            self.promised,
            Body::Accepted {
                ok: true,
                upto: snap.last_slot,
                lease_start,
            },
        ))
    }

    fn handle_accepted(
        &mut self,
        now: TtInterval,
        m: &Message,
        ok: bool,
        upto: Slot,
        lease_start: Timestamp,
        out: &mut Vec<Output>,
    ) {
        if m.ballot > self.promised {
            // Someone promised a higher ballot: we are deposed.
            if self.role != Role::Follower {
                self.become_follower(now, None, out);
            }
            return;
        }
        if self.role != Role::Leader || m.ballot != self.promised {
            return;
        }
        let local = Self::local(now);
        let Some(p) = self.progress.iter_mut().find(|p| p.id == m.from) else {
            return;
        };
        p.last_contact = local;
        p.lease_ack = p.lease_ack.max(lease_start);
        if ok {
            // Only an answer that moves `matched` retires an in-flight
            // Accept; heartbeat answers and duplicates do not.
            if upto > p.matched {
                p.inflight = p.inflight.saturating_sub(1);
            }
            p.matched = p.matched.max(upto);
            p.next = p.next.max(p.matched + 1);
            p.probing = false;
        } else {
            // Resend from the follower's hint. A hint at or below `matched`
            // comes from a stale (reordered) rejection; lowering `matched`
            // only delays commits, never makes them unsafe.
            p.matched = p.matched.min(upto.saturating_sub(1));
            p.next = upto.max(1);
            p.inflight = 0;
            p.probing = true;
        }
        // Commit before answering so the index travels with what we send;
        // the lease is recomputed once at the end of the step.
        self.advance_commit();
        let id = m.from;
        self.send_to(now, id, false, out);
        self.maybe_take_over(now, out);
    }

    fn update_lease(&mut self) {
        let kth = self.quorum_value(self.self_lease_ack, |p| p.lease_ack);
        if kth > Timestamp::ZERO {
            self.lease_end = self.lease_end.max(kth.saturating_add(self.cfg.lease_nanos));
        }
    }

    /// The value a quorum of voters has reached: the quorum-th largest of
    /// every voter's value (ours is `own`; a follower's is read by `of`,
    /// and one we have no progress for counts as the default).
    fn quorum_value<T: Copy + Ord + Default>(&self, own: T, of: impl Fn(&Progress) -> T) -> T {
        let m = self.membership();
        if m.voters.is_empty() {
            return T::default();
        }
        let mut values: Vec<T> = m
            .voters
            .iter()
            .map(|v| {
                if *v == self.cfg.id {
                    own
                } else {
                    self.progress
                        .iter()
                        .find(|p| p.id == *v)
                        .map_or_else(T::default, &of)
                }
            })
            .collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        values[m.quorum() - 1]
    }

    fn advance_commit(&mut self) {
        let self_match = if self.bug(bug::ACK_BEFORE_PERSIST) {
            self.last_slot()
        } else {
            self.durable_slot
        };
        let c = self.quorum_value(self_match, |p| p.matched);
        // Only an entry of our own ballot is committed by counting
        // (Raft §5.4.2); earlier ones follow by log matching.
        if c > self.chosen
            && (self.ballot_at(c) == Some(self.promised) || self.bug(bug::COUNT_OLD_BALLOT))
        {
            self.chosen = c;
        }
    }

    // ------------------------------------------------------------------
    // Leader: proposing and sending
    // ------------------------------------------------------------------

    fn check_can_propose(&self) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if let Some(h) = self.hand_over {
            return Err(ProposeError::NotLeader { leader: Some(h.to) });
        }
        if self.pending.len() >= self.cfg.max_pending {
            return Err(ProposeError::QueueFull(self.pending.len()));
        }
        Ok(())
    }

    fn enqueue(
        &mut self,
        payload: Payload,
        min_ts: Timestamp,
        clock_bound: bool,
    ) -> Result<ProposalId, ProposeError> {
        self.check_can_propose()?;
        let id = self.next_proposal;
        self.next_proposal += 1;
        self.pending.push_back(Pending {
            id,
            payload,
            min_ts,
            clock_bound,
        });
        Ok(id)
    }

    /// Moves pending proposals into the log while the lease allows, in
    /// order, except that one whose minimum timestamp is more than
    /// [`FUTURE_TS_LEAD_NANOS`] ahead of `TT.now().latest` waits and lets
    /// the later ones go first.
    fn flush_pending(&mut self, now: TtInterval, out: &mut Vec<Output>) -> bool {
        self.deferred_wake = None;
        if self.role != Role::Leader || self.pending.is_empty() {
            return false;
        }
        let mut appended = false;
        let horizon = now.latest.saturating_add(FUTURE_TS_LEAD_NANOS);
        let mut i = 0;
        while let Some(p) = self.pending.get(i) {
            let ts = match p.payload {
                Payload::Command(_) => {
                    if !self.has_lease(now) {
                        break;
                    }
                    if p.min_ts > horizon {
                        let wake = Self::local(now).saturating_add(p.min_ts.nanos_since(horizon));
                        self.deferred_wake = Some(self.deferred_wake.map_or(wake, |w| w.min(wake)));
                        i += 1;
                        continue;
                    }
                    // Spanner §4.1.2: above every timestamp assigned
                    // before, by us (the log, the raised floor) and by
                    // earlier leaders (their leases ended before ours
                    // began: their reads too lie below), at least
                    // TT.now().latest unless the caller gives the clock
                    // bound in `min_ts`, and inside our lease.
                    let above = self
                        .last_ts
                        .max(self.ts_floor)
                        .max(self.lease_wait_until)
                        .next()
                        .max(p.min_ts);
                    let ts = if p.clock_bound {
                        above.max(now.latest)
                    } else {
                        above
                    };
                    if ts >= self.lease_end {
                        break;
                    }
                    ts
                }
                _ => Timestamp::ZERO,
            };
            let p = self.pending.remove(i).expect("looked up above");
            self.append(p.payload, ts);
            out.push(Output::Proposed {
                id: p.id,
                slot: self.last_slot(),
                ts,
            });
            appended = true;
        }
        appended
    }

    fn append(&mut self, payload: Payload, ts: Timestamp) {
        assert_eq!(self.role, Role::Leader);
        let slot = self.last_slot() + 1;
        if ts > Timestamp::ZERO {
            assert!(ts > self.last_ts, "Paxos write timestamps must rise");
            assert!(ts > self.ts_floor, "a raised timestamp floor must hold");
        }
        let e = Entry {
            slot,
            ballot: self.promised,
            ts,
            payload,
        };
        self.push_entry(e);
    }

    fn broadcast(&mut self, now: TtInterval, heartbeat: bool, out: &mut Vec<Output>) {
        self.heartbeat_deadline = Self::local(now).saturating_add(self.cfg.heartbeat_nanos);
        let ids: Vec<NodeId> = self.progress.iter().map(|p| p.id).collect();
        if heartbeat {
            for p in self.progress.iter_mut() {
                // Resend anything unacknowledged: messages may have been
                // lost. A probe keeps its position.
                if !p.probing {
                    p.next = p.matched + 1;
                }
                p.inflight = 0;
            }
        }
        self.cast_self_lease_vote(now);
        for id in ids {
            self.send_to(now, id, heartbeat, out);
        }
    }

    fn send_to(&mut self, now: TtInterval, id: NodeId, force: bool, out: &mut Vec<Output>) {
        let lease_start = now.earliest;
        let Some(idx) = self.progress.iter().position(|p| p.id == id) else {
            return;
        };
        let mut sent_any = false;
        loop {
            let p = &self.progress[idx];
            let limit = if p.probing { 1 } else { self.cfg.max_inflight };
            if p.inflight >= limit {
                break;
            }
            if p.next < self.first_slot() {
                let body = Body::InstallSnapshot {
                    snapshot: self.snapshot.clone(),
                    lease_start,
                };
                let m = self.msg(id, self.promised, body);
                let p = &mut self.progress[idx];
                p.next = self.snapshot.last_slot + 1;
                p.inflight += 1;
                out.push(Output::Send(m));
                sent_any = true;
                continue;
            }
            let next = p.next;
            let last = self.last_slot();
            if next > last && (sent_any || !force) {
                break;
            }
            let end = last.min(next + self.cfg.max_batch_entries as Slot - 1);
            let entries = self.entries(next, end);
            let prev_ballot = self
                .ballot_at(next - 1)
                .expect("prev slot is in log or snapshot");
            let n = entries.len() as Slot;
            let m = self.msg(
                id,
                self.promised,
                Body::Accept {
                    prev_slot: next - 1,
                    prev_ballot,
                    entries,
                    commit: self.chosen,
                    lease_start,
                },
            );
            out.push(Output::Send(m));
            sent_any = true;
            let p = &mut self.progress[idx];
            p.next += n;
            if n == 0 {
                break;
            }
            p.inflight += 1;
        }
        if sent_any {
            self.cast_self_lease_vote(now);
        }
    }

    /// The leader's own lease vote, cast whenever it asks for theirs.
    fn cast_self_lease_vote(&mut self, now: TtInterval) {
        self.self_lease_ack = self.self_lease_ack.max(now.earliest);
        self.lease_granted_until = self
            .lease_granted_until
            .max(now.latest.saturating_add(self.cfg.lease_nanos));
    }

    // ------------------------------------------------------------------
    // Persistence pipeline
    // ------------------------------------------------------------------

    fn handle_persisted(&mut self, seq: u64) {
        if seq <= self.durable_seq {
            return;
        }
        self.durable_seq = seq;
        while let Some(&(s, slot)) = self.inflight_persists.front() {
            if s > seq {
                break;
            }
            self.durable_slot = self.durable_slot.max(slot);
            self.inflight_persists.pop_front();
        }
        // The commit index moves in `finish`, at the end of this step.
    }

    fn stage(&mut self) -> &mut PersistRequest {
        self.staged.get_or_insert_with(PersistRequest::default)
    }

    fn set_promised(&mut self, b: Ballot) {
        // It falls only when an unwon campaign yields to the leader of its
        // round: that promise was to ourselves, and is given up for good.
        assert!(
            b >= self.promised || self.yields_to(b) || self.bug(bug::SAME_ROUND_BALLOT),
            "promised ballot must not fall"
        );
        self.promised = b;
        if !self.bug(bug::FORGET_PROMISE) {
            self.stage().hard_state = Some(HardState { promised: b });
        }
    }

    fn push_entry(&mut self, e: Entry) {
        assert_eq!(e.slot, self.last_slot() + 1, "log must stay contiguous");
        if let Payload::Config(m) = &e.payload {
            self.memberships.push((e.slot, m.clone()));
            if self.role == Role::Leader {
                self.sync_progress_with_membership();
            }
        }
        self.last_ts = self.last_ts.max(e.ts);
        self.stage().entries.push(e.clone());
        self.log.push_back(e);
    }

    fn truncate_from(&mut self, slot: Slot) {
        assert!(slot > self.chosen, "cannot truncate chosen slot {slot}");
        while self.log.back().is_some_and(|e| e.slot >= slot) {
            self.log.pop_back();
        }
        self.memberships
            .retain(|(s, _)| *s < slot || *s == self.snapshot.last_slot);
        self.last_ts = self
            .log
            .iter()
            .map(|e| e.ts)
            .fold(self.snapshot.last_ts, Timestamp::max);
        self.durable_slot = self.durable_slot.min(slot - 1);
        for p in self.inflight_persists.iter_mut() {
            p.1 = p.1.min(slot - 1);
        }
        let st = self.stage();
        st.entries.retain(|e| e.slot < slot);
        st.truncate_from = Some(st.truncate_from.map_or(slot, |t| t.min(slot)));
    }

    fn sync_progress_with_membership(&mut self) {
        let voters = self.membership().voters.clone();
        let next = self.last_slot() + 1;
        for v in voters {
            if v != self.cfg.id && !self.progress.iter().any(|p| p.id == v) {
                self.progress.push(Progress::new(v, next, Timestamp::ZERO));
            }
        }
    }

    /// Emits the staged persist request, if any, with the next sequence.
    fn flush_staged(&mut self, out: &mut Vec<Output>) {
        if let Some(mut req) = self.staged.take() {
            if req.is_empty() {
                return;
            }
            req.seq = self.next_seq;
            self.next_seq += 1;
            self.inflight_persists
                .push_back((req.seq, self.last_slot()));
            if self.bug(bug::ACK_BEFORE_PERSIST) {
                self.durable_slot = self.last_slot();
            }
            out.push(Output::Persist(req));
        }
    }

    /// Sends `m` once everything staged or issued so far is durable.
    fn send_durable(&mut self, m: Message, out: &mut Vec<Output>) {
        if self.bug(bug::ACK_BEFORE_PERSIST) && matches!(m.body, Body::Accepted { .. }) {
            out.push(Output::Send(m));
            return;
        }
        let need = if self.staged.as_ref().is_some_and(|s| !s.is_empty()) {
            self.next_seq
        } else {
            self.next_seq - 1
        };
        if need <= self.durable_seq {
            out.push(Output::Send(m));
        } else {
            self.gated.push_back((need, m));
        }
    }

    /// End of every input: assign pending proposals, send new entries,
    /// apply chosen entries, emit persistence, release gated messages.
    fn finish(&mut self, now: TtInterval, out: &mut Vec<Output>) {
        if self.role == Role::Leader {
            self.update_lease();
            let appended = self.flush_pending(now, out);
            if appended || self.staged.as_ref().is_some_and(|s| !s.entries.is_empty()) {
                let ids: Vec<NodeId> = self.progress.iter().map(|p| p.id).collect();
                for id in ids {
                    self.send_to(now, id, false, out);
                }
            }
            self.advance_commit();
            // A removed leader hands over once its removal is chosen.
            if !self.membership().contains(self.cfg.id)
                && self
                    .memberships
                    .last()
                    .is_some_and(|(s, _)| *s <= self.chosen)
            {
                self.become_follower(now, None, out);
            }
        }
        self.flush_staged(out);
        while let Some((need, _)) = self.gated.front() {
            if *need > self.durable_seq {
                break;
            }
            let (_, m) = self.gated.pop_front().expect("front exists");
            out.push(Output::Send(m));
        }
        self.apply_chosen(out);
    }

    fn apply_chosen(&mut self, out: &mut Vec<Output>) {
        let upto = self.chosen.min(self.last_slot());
        if upto <= self.applied {
            return;
        }
        let entries = self.entries(self.applied + 1, upto);
        debug_assert_eq!(entries.len() as Slot, upto - self.applied);
        self.applied = upto;
        out.push(Output::Apply(entries));
    }

    // ------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------

    fn msg(&self, to: NodeId, ballot: Ballot, body: Body) -> Message {
        Message {
            cluster_id: self.cfg.cluster_id,
            epoch: self.membership().epoch,
            from: self.cfg.id,
            to,
            ballot,
            body,
        }
    }

    fn entry(&self, slot: Slot) -> Option<&Entry> {
        let first = self.first_slot();
        if slot < first {
            return None;
        }
        self.log.get((slot - first) as usize)
    }

    fn ballot_at(&self, slot: Slot) -> Option<Ballot> {
        if slot == self.snapshot.last_slot {
            return Some(self.snapshot.last_ballot);
        }
        self.entry(slot).map(|e| e.ballot)
    }

    fn last_ballot(&self) -> Ballot {
        self.log
            .back()
            .map_or(self.snapshot.last_ballot, |e| e.ballot)
    }

    fn membership_at(&self, slot: Slot) -> &Membership {
        &self
            .memberships
            .iter()
            .rev()
            .find(|(s, _)| *s <= slot)
            .unwrap_or(&self.memberships[0])
            .1
    }
}

/// Names for the planted bugs, usable whether or not the feature is on.
#[cfg(feature = "planted-bugs")]
mod bug {
    use crate::PlantedBug;
    pub(super) const LEASE_OVERLAP: PlantedBug = PlantedBug::LeaseOverlap;
    pub(super) const ACK_BEFORE_PERSIST: PlantedBug = PlantedBug::AckBeforePersist;
    pub(super) const FORGET_PROMISE: PlantedBug = PlantedBug::ForgetPromise;
    pub(super) const HAND_OVER_SKIPS_LEASE_WAIT: PlantedBug = PlantedBug::HandOverSkipsLeaseWait;
    pub(super) const SAME_ROUND_BALLOT: PlantedBug = PlantedBug::SameRoundBallot;
    pub(super) const LEASE_VOTE_FROM_EARLIEST: PlantedBug = PlantedBug::LeaseVoteFromEarliest;
    pub(super) const COUNT_OLD_BALLOT: PlantedBug = PlantedBug::CountOldBallot;
    pub(super) const SPLIT_CHILD_LEASE_OVERLAP: PlantedBug = PlantedBug::SplitChildLeaseOverlap;
}

#[cfg(not(feature = "planted-bugs"))]
#[derive(Clone, Copy)]
struct BugStub;

#[cfg(not(feature = "planted-bugs"))]
mod bug {
    pub(super) const LEASE_OVERLAP: super::BugStub = super::BugStub;
    pub(super) const ACK_BEFORE_PERSIST: super::BugStub = super::BugStub;
    pub(super) const FORGET_PROMISE: super::BugStub = super::BugStub;
    pub(super) const HAND_OVER_SKIPS_LEASE_WAIT: super::BugStub = super::BugStub;
    pub(super) const SAME_ROUND_BALLOT: super::BugStub = super::BugStub;
    pub(super) const LEASE_VOTE_FROM_EARLIEST: super::BugStub = super::BugStub;
    pub(super) const COUNT_OLD_BALLOT: super::BugStub = super::BugStub;
    pub(super) const SPLIT_CHILD_LEASE_OVERLAP: super::BugStub = super::BugStub;
}
