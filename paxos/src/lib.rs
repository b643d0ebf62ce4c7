//! Sans-IO Multi-Paxos replica with TrueTime leader leases (DESIGN.md §3;
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
#![deny(missing_docs)]

mod replica;
mod storage;
pub mod testkit;
mod types;

pub use replica::{
    Config, Input, LeaseStatus, MembershipChange, Output, ProposalId, ProposeError, Replica, Role,
};
pub use storage::{MemStorage, NoError, PersistRequest, Recovered, Storage};
pub use types::{
    Ballot, Body, Entry, HardState, Membership, Message, NodeId, Payload, Slot, Snapshot,
};

/// Deliberate protocol bugs the simulator must catch (DESIGN.md §8).
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
}

#[cfg(feature = "planted-bugs")]
impl PlantedBug {
    /// Every planted bug, with its command-line name.
    pub const ALL: [(&'static str, PlantedBug); 3] = [
        ("lease-overlap", PlantedBug::LeaseOverlap),
        ("ack-before-persist", PlantedBug::AckBeforePersist),
        ("forget-promise", PlantedBug::ForgetPromise),
    ];

    /// Looks a bug up by its command-line name.
    pub fn from_name(name: &str) -> Option<PlantedBug> {
        PlantedBug::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
    }
}
