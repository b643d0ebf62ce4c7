//! Sans-IO Multi-Paxos replica with TrueTime leader leases (docs/design.md §3;
//! Spanner §4.1.1; Lamport, "Paxos Made Simple" §3).
//!
//! A [`Replica`] is a state machine. The driver feeds it [`Input`]s — a
//! message, a tick, a storage completion — together with the current
//! [`meridian_truetime::TtInterval`], and receives [`Output`]s: messages to
//! send, [`PersistRequest`]s to write and sync, chosen entries to apply.
//! It reads no clock, draws randomness only from the RNG it was given, and
//! does no I/O, so the node runtime and the deterministic simulator run the
//! same code and one seed replays one bug.
//!
//! Protocol summary (see `docs/paxos.md` for the full account):
//! - **Phase 1 once per leadership.** A candidate picks a ballot above any
//!   it has seen and sends `Prepare` with its log tip. An acceptor promises
//!   only a higher ballot from a candidate whose log is at least as up to
//!   date as its own, so a new leader already holds every chosen value.
//! - **Phase 2 per slot, pipelined and batched.** The leader sends runs of
//!   entries with log-matching (`prev_slot`, `prev_ballot`); acceptors
//!   answer only once the entries are durable. A slot is chosen when a
//!   quorum holds it at the leader's ballot; a new leader first commits a
//!   no-op to commit everything before it.
//! - **Leases.** Every accepted leader message grants the leader a lease
//!   vote until `TT.now().latest + lease` at the acceptor; the leader holds
//!   a lease until `lease_start + lease` for a quorum of echoed send times.
//!   A promise reports the latest grant the acceptor made, and a new leader
//!   neither assigns timestamps nor serves lease reads before
//!   `TT.after(max reported grant)`: lease intervals are disjoint.
//! - **Timestamps.** Commands get a Paxos write timestamp inside the lease,
//!   strictly above every timestamp assigned before, by any leader.
//!
//! # Example
//!
//! [`testkit::LocalGroup`] drives three real replicas in memory (messages
//! through a queue, storage that syncs at once, one clock reading set by
//! hand). A replica elects itself, waits out the lease every replica
//! assumes it granted before a start, and commits a command; the entry
//! applies everywhere with its Paxos write timestamp:
//!
//! ```
//! use bytes::Bytes;
//! use meridian_paxos::testkit::LocalGroup;
//! use meridian_paxos::{Payload, Role};
//! use meridian_truetime::Timestamp;
//!
//! const MS: u64 = 1_000_000;
//! let t0 = Timestamp::from_nanos(1_767_225_600_000_000_000);
//! let mut g = LocalGroup::new(3, t0, MS, |_| {}); // ε = 1 ms, default timing
//! g.advance(3_000 * MS); // past the 2 s start-up lease
//! g.elect(1);
//! assert_eq!(g.replica(1).role(), Role::Leader);
//! assert!(g.replica(1).has_lease(g.now()));
//!
//! let cmd = Bytes::from_static(b"x := 1");
//! let at = g.now();
//! g.propose(1, cmd.clone()).expect("the leader accepts proposals");
//! g.run(); // accepts out, acknowledgements back: chosen at the leader
//! assert_eq!(g.replica(1).chosen(), 2); // the leader's no-op, then the command
//!
//! // Followers learn the chosen index from the next heartbeat.
//! g.advance(100 * MS);
//! g.tick_all();
//! for id in 1..=3 {
//!     let e = g.applied(id).last().expect("applied");
//!     assert_eq!(e.payload, Payload::Command(cmd.clone()));
//!     assert!(e.ts >= at.latest); // Spanner §4.1.2: at least TT.now().latest
//! }
//! ```
#![deny(missing_docs)]

mod replica;
mod storage;
pub mod testkit;
mod types;

pub use replica::{
    Config, FUTURE_TS_LEAD_NANOS, Inheritance, InheritedLead, Input, LeaseStatus, MembershipChange,
    Output, PRE_VOTE_BACKING_DIVISOR, ProposalId, ProposeError, Replica, Role,
};
pub use storage::{MemStorage, NoError, PersistRequest, Recovered, Storage};
pub use types::{
    Ballot, Body, Entry, HardState, Membership, Message, NodeId, Payload, Slot, Snapshot,
};

/// Deliberate protocol bugs the simulator must catch (docs/design.md §8).
#[cfg(feature = "planted-bugs")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlantedBug {
    /// A new leader uses its lease without waiting out the old leader's.
    LeaseOverlap,
    /// Acceptors acknowledge, and the leader counts itself, before entries
    /// are durable.
    AckBeforePersist,
    /// The promised ballot is never persisted.
    ForgetPromise,
    /// A replica that takes over from a leader handing over leads at once,
    /// without waiting out the leases its promisers granted.
    HandOverSkipsLeaseWait,
    /// Acceptors compare ballots by round alone: they promise a candidate
    /// of a round at least their promised one and accept from a leader of
    /// such a round, so two candidates of one round both lead.
    SameRoundBallot,
    /// An acceptor's lease vote runs to `TT.now().earliest + lease`
    /// instead of `latest + lease`: up to 2ε short.
    LeaseVoteFromEarliest,
    /// A leader marks a slot chosen once a quorum holds it, even if the
    /// entry there is of an older ballot (Raft §5.4.2, Figure 8).
    CountOldBallot,
    /// A replica of a group created by a split claims no lease grant
    /// instead of its parent replica's: another candidate in the child
    /// leads at once while the parent's leader, leading the child, still
    /// holds its inherited lease (two leaseholders of one key).
    SplitChildLeaseOverlap,
}

#[cfg(feature = "planted-bugs")]
impl PlantedBug {
    /// Every planted bug, with its command-line name.
    pub const ALL: [(&'static str, PlantedBug); 8] = [
        ("lease-overlap", PlantedBug::LeaseOverlap),
        ("ack-before-persist", PlantedBug::AckBeforePersist),
        ("forget-promise", PlantedBug::ForgetPromise),
        (
            "hand-over-skips-lease-wait",
            PlantedBug::HandOverSkipsLeaseWait,
        ),
        ("same-round-ballot", PlantedBug::SameRoundBallot),
        (
            "lease-vote-from-earliest",
            PlantedBug::LeaseVoteFromEarliest,
        ),
        ("count-old-ballot", PlantedBug::CountOldBallot),
        (
            "split-child-lease-overlap",
            PlantedBug::SplitChildLeaseOverlap,
        ),
    ];

    /// Looks a bug up by its command-line name.
    pub fn from_name(name: &str) -> Option<PlantedBug> {
        PlantedBug::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
    }
}
