//! Invariant checkers for simulated Paxos groups.
//!
//! Checked after every event:
//! - **One value per slot** (Paxos safety): every entry any replica applies
//!   at slot `s` equals every other entry applied at `s`, by any replica, at
//!   any time — including entries restored from snapshots.
//! - **Applied sequences are prefixes of one sequence**: replicas apply
//!   slots in order with no gaps, so with the rule above every replica's
//!   applied sequence is a prefix of the one chosen sequence.
//! - **Lease disjointness** (Spanner §4.1.1): at no true time do two
//!   replicas both believe they hold a valid leader lease.
//! - **Timestamps rise across leaders** (Spanner §4.1.2): every Paxos write
//!   timestamp a leader assigns exceeds every timestamp assigned before it
//!   in true time, by any leader; commands apply in timestamp order.
//!
//! Checked at the end of a run:
//! - **No acknowledged command is lost**: every command that any replica
//!   applied (the client was told it committed) is in every voter's state.
//! - **Liveness**: once faults stop, a command proposed afterwards is
//!   applied everywhere within a bounded virtual time.

use std::collections::HashMap;

use meridian_paxos::{Entry, NodeId, Payload, Slot};
use meridian_truetime::Timestamp;

/// A broken invariant: which rule, when (virtual true time), and details.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{rule} violated at t={at_nanos}ns: {detail}")]
pub struct Violation {
    /// The rule's name.
    pub rule: &'static str,
    /// Virtual true time of detection, nanoseconds since the run began.
    pub at_nanos: u64,
    /// What was seen.
    pub detail: String,
}

/// Rule names, as printed in violations.
pub mod rules {
    /// Two different values chosen for one slot.
    pub const ONE_VALUE_PER_SLOT: &str = "paxos: one value per slot";
    /// A replica applied slots out of order or with a gap.
    pub const APPLIED_PREFIX: &str = "paxos: applied sequence is a prefix";
    /// Two leaders held a lease at the same true time.
    pub const LEASE_DISJOINT: &str = "spanner 4.1.1: leader leases are disjoint";
    /// A leader assigned a timestamp not above an earlier one.
    pub const TS_MONOTONIC: &str = "spanner 4.1.2: paxos timestamps rise across leaders";
    /// An acknowledged command is missing at the end.
    pub const ACKED_NOT_LOST: &str = "paxos: acknowledged command never lost";
    /// No progress after faults stopped.
    pub const LIVENESS: &str = "paxos: progress after faults stop";
    /// A core panicked (a failed assertion is a found bug).
    pub const CORE_ASSERTION: &str = "core assertion";
    /// A client learned of a commit before its timestamp passed.
    pub const COMMIT_WAIT: &str =
        "spanner 4.1.2: commit wait (no commit at s is acknowledged before TT.after(s))";
    /// The leader's waits-for graph has a cycle.
    pub const NO_DEADLOCK: &str = "spanner 4.2.1: wound-wait leaves no waits-for cycle";
    /// A replica's safe time fell.
    pub const T_SAFE_MONOTONE: &str = "spanner 4.1.3: t_safe never falls";
    /// An acknowledged commit is not in the log at its timestamp.
    pub const ACKED_IN_LOG: &str = "txn: every acknowledged commit is in the log at its timestamp";
    /// A transaction reported aborted committed.
    pub const ABORTED_NO_EFFECT: &str = "txn: a transaction reported aborted never commits";
    /// docs/design.md §5.5: a `TxnStatus` answer is final.
    pub const TXN_STATUS: &str =
        "design 5.5: a status query's committed or aborted answer is the transaction's outcome";
    /// A read-write transaction's reads are not the state just before it.
    pub const SERIALIZABLE: &str =
        "txn: a read-write transaction reads the state just before its commit timestamp";
    /// A locking read missed a commit acknowledged before it was sent.
    pub const FRESH_LOCKING_READ: &str =
        "spanner 4.2.1: a locking read at the leader sees every acknowledged commit";
    /// A read at `t` saw a value newer than `t` or missed one at or below.
    pub const SNAPSHOT_READ: &str =
        "spanner 4.1.3: a read at t sees exactly the commits at or before t";
    /// Timestamps disagree with real-time order.
    pub const REAL_TIME: &str = "spanner 4.1.2: external consistency (an operation that starts after another ends has a later timestamp)";
    /// A read-only snapshot's balances do not sum to the bank's total.
    pub const BANK_TOTAL: &str = "bank: every snapshot conserves the total balance";
    /// Replicas disagree at the end.
    pub const CONVERGE: &str = "txn: replicas converge on the committed state";
    /// A request was never answered, or answered twice.
    pub const ONE_REPLY: &str = "txn: a live replica answers every request exactly once";
    /// No transaction committed after the faults stopped.
    pub const TXN_LIVENESS: &str = "txn: progress after faults stop";
    /// A replica's safe time lagged the clock long after the heal.
    pub const SAFE_TIME_LAG: &str =
        "spanner 4.1.3: every replica's safe time keeps up with the clock after faults stop";
    /// A client committed nothing in the bound after the heal.
    pub const CLIENT_LIVENESS: &str = "txn: every client commits soon after faults stop";
    /// The oldest live transaction kept aborting after the heal.
    pub const OLDEST_COMMITS: &str =
        "wound-wait: the oldest transaction commits within a bounded number of attempts";
    /// More elections than healing needs.
    pub const ELECTIONS_AFTER_HEAL: &str = "paxos: at most two elections after faults stop";
    /// Nobody on duty: write skew.
    pub const ROSTER: &str = "roster: someone is always on duty (no write skew)";
    /// Every group a transaction commits at applies it at one timestamp.
    pub const ATOMIC_COMMIT: &str =
        "spanner 4.2.1: a two-phase commit applies at one timestamp in every group";
    /// The list-append transactions pass the external Elle-style checker
    /// (adya) for strict serializability.
    pub const ELLE_LIST_APPEND: &str =
        "elle: list-append history is strictly serializable (external checker)";
}

/// Global knowledge of what was chosen, built from what replicas apply.
#[derive(Debug, Default)]
pub struct ChosenLog {
    slots: HashMap<Slot, Entry>,
    /// Command ids known committed (applied somewhere).
    pub acked: HashMap<u64, Slot>,
}

/// Decodes a simulated command's id.
pub fn command_id(payload: &Payload) -> Option<u64> {
    match payload {
        Payload::Command(b) if b.len() == 8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Some(u64::from_le_bytes(a))
        }
        _ => None,
    }
}

impl ChosenLog {
    /// Records that `node` applied `e`; fails if another value was applied
    /// at the same slot.
    pub fn observe(&mut self, node: NodeId, e: &Entry, at: u64) -> Result<(), Violation> {
        match self.slots.get(&e.slot) {
            Some(prev) if prev != e => Err(Violation {
                rule: rules::ONE_VALUE_PER_SLOT,
                at_nanos: at,
                detail: format!(
                    "slot {}: node {node} applied {:?}@{:?} ts={} but {:?}@{:?} ts={} was applied before",
                    e.slot, e.payload, e.ballot, e.ts.0, prev.payload, prev.ballot, prev.ts.0
                ),
            }),
            Some(_) => Ok(()),
            None => {
                if let Some(id) = command_id(&e.payload) {
                    if let Some(other) = self.acked.insert(id, e.slot) {
                        if other != e.slot {
                            return Err(Violation {
                                rule: rules::ONE_VALUE_PER_SLOT,
                                at_nanos: at,
                                detail: format!(
                                    "command {id} chosen at slots {other} and {}",
                                    e.slot
                                ),
                            });
                        }
                    }
                }
                self.slots.insert(e.slot, e.clone());
                Ok(())
            }
        }
    }

    /// The entry chosen at `slot`, if known.
    pub fn get(&self, slot: Slot) -> Option<&Entry> {
        self.slots.get(&slot)
    }
}

/// A simulated replica's state machine: the commands it applied, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMachine {
    /// Last applied slot.
    pub last_slot: Slot,
    /// Timestamp of the last applied command.
    pub last_ts: Timestamp,
    /// (slot, command id) of every command applied.
    pub commands: Vec<(Slot, u64)>,
}

impl StateMachine {
    /// Applies one chosen entry, checking order and timestamps.
    pub fn apply(&mut self, node: NodeId, e: &Entry, at: u64) -> Result<(), Violation> {
        if e.slot != self.last_slot + 1 {
            return Err(Violation {
                rule: rules::APPLIED_PREFIX,
                at_nanos: at,
                detail: format!(
                    "node {node} applied slot {} after {}",
                    e.slot, self.last_slot
                ),
            });
        }
        self.last_slot = e.slot;
        if let Some(id) = command_id(&e.payload) {
            if e.ts <= self.last_ts {
                return Err(Violation {
                    rule: rules::TS_MONOTONIC,
                    at_nanos: at,
                    detail: format!(
                        "node {node}: command at slot {} has ts {} not above previous {}",
                        e.slot, e.ts.0, self.last_ts.0
                    ),
                });
            }
            self.last_ts = e.ts;
            self.commands.push((e.slot, id));
        }
        Ok(())
    }

    /// Encodes the state for a snapshot.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24 + self.commands.len() * 16);
        v.extend_from_slice(&self.last_slot.to_le_bytes());
        v.extend_from_slice(&self.last_ts.0.to_le_bytes());
        for (s, id) in &self.commands {
            v.extend_from_slice(&s.to_le_bytes());
            v.extend_from_slice(&id.to_le_bytes());
        }
        v
    }

    /// Decodes a snapshot's state.
    pub fn decode(data: &[u8]) -> StateMachine {
        let word = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&data[i * 8..i * 8 + 8]);
            u64::from_le_bytes(a)
        };
        assert!(
            data.len() >= 16 && data.len() % 16 == 0,
            "corrupt simulated snapshot"
        );
        let commands = (1..data.len() / 16)
            .map(|k| (word(2 * k), word(2 * k + 1)))
            .collect();
        StateMachine {
            last_slot: word(0),
            last_ts: Timestamp(word(1)),
            commands,
        }
    }

    /// Checks a restored snapshot against what is known chosen.
    pub fn check_restored(
        &self,
        node: NodeId,
        chosen: &ChosenLog,
        at: u64,
    ) -> Result<(), Violation> {
        for (slot, id) in &self.commands {
            if let Some(e) = chosen.get(*slot) {
                if command_id(&e.payload) != Some(*id) {
                    return Err(Violation {
                        rule: rules::ONE_VALUE_PER_SLOT,
                        at_nanos: at,
                        detail: format!(
                            "node {node} restored command {id} at slot {slot}, but {:?} was chosen",
                            e.payload
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use meridian_paxos::Ballot;

    fn cmd(slot: Slot, id: u64, ts: u64) -> Entry {
        Entry {
            slot,
            ballot: Ballot::new(1, 1),
            ts: Timestamp(ts),
            payload: Payload::Command(Bytes::copy_from_slice(&id.to_le_bytes())),
        }
    }

    #[test]
    fn checker_flags_two_values_in_one_slot() {
        let mut c = ChosenLog::default();
        c.observe(1, &cmd(1, 10, 5), 0).unwrap();
        c.observe(2, &cmd(1, 10, 5), 0).unwrap();
        let v = c.observe(3, &cmd(1, 11, 5), 0).unwrap_err();
        assert_eq!(v.rule, rules::ONE_VALUE_PER_SLOT);
    }

    #[test]
    fn checker_flags_gaps_and_falling_timestamps() {
        let mut sm = StateMachine::default();
        sm.apply(1, &cmd(1, 1, 10), 0).unwrap();
        assert_eq!(
            sm.apply(1, &cmd(3, 2, 20), 0).unwrap_err().rule,
            rules::APPLIED_PREFIX
        );
        let mut sm = StateMachine::default();
        sm.apply(1, &cmd(1, 1, 10), 0).unwrap();
        assert_eq!(
            sm.apply(1, &cmd(2, 2, 10), 0).unwrap_err().rule,
            rules::TS_MONOTONIC
        );
    }

    #[test]
    fn state_machine_snapshot_round_trips() {
        let mut sm = StateMachine::default();
        sm.apply(1, &cmd(1, 7, 10), 0).unwrap();
        sm.apply(1, &cmd(2, 8, 11), 0).unwrap();
        assert_eq!(StateMachine::decode(&sm.encode()), sm);
    }
}
